function __rack-gateway-db_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __rack-gateway-db_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __rack-gateway-db_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __rack-gateway-db_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __rack-gateway-db_parse_tokens -S
    set -l unparsed_tokens (__rack-gateway-db_tokens -pc)
    switch $unparsed_tokens[1]
    case 'rack-gateway-db'
        __rack-gateway-db_parse_subcommand 0 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'migrate'
            __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'migrations=' 'dry-run' 'version' 'h/help'
        case 'status'
            __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'migrations=' 'version' 'h/help'
        case 'reset-db'
            __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'migrations=' 'version' 'h/help'
        case 'check'
            __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'migrations=' 'dir=' 's3-endpoint=' 'notify=+' 'webhook=+' 'max-backup-age=' 'metrics-file=' 'pushgateway=+' 'version' 'h/help'
        case 'backup'
            __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'dir=' 's3-endpoint=' 'prefix=' 'jobs=' 'compressors=' 'compress=' 'compress-level=' 'lock-timeout=' 'object-lock-days=' 'object-lock-mode=' 'sse=' 'sse-kms-key-id=' 'stall-timeout=' 'recipient=+' 'recipients-file=' 'sign-key=' 'metrics-file=' 'pushgateway=+' 'notify=+' 'webhook=+' 'max-shrink=' 'version' 'h/help'
        case 'verify'
            __rack-gateway-db_parse_subcommand 1 'latest' 'dir=' 's3-endpoint=' 'identity=' 'verify-key=' 'json' 'v/verbose' 'version' 'h/help'
        case 'rekey'
            __rack-gateway-db_parse_subcommand 1 'to=' 'dir=' 's3-endpoint=' 'identity=' 'verify-key=' 'recipient=+' 'recipients-file=' 'sign-key=' 'json' 'v/verbose' 'version' 'h/help'
        case 'list'
            __rack-gateway-db_parse_subcommand 0 'dir=' 's3-endpoint=' 'identity=' 'json' 'v/verbose' 'version' 'h/help'
        case 'prune'
            __rack-gateway-db_parse_subcommand 0 'dir=' 's3-endpoint=' 'keep-last=' 'keep-daily=' 'keep-weekly=' 'keep-monthly=' 'keep-yearly=' 'delete-suspect' 'keep-suspect-days=' 'dry-run' 'json' 'v/verbose' 'metrics-file=' 'pushgateway=+' 'notify=+' 'webhook=+' 'version' 'h/help'
        case 'report'
            __rack-gateway-db_parse_subcommand 0 'dir=' 's3-endpoint=' 'since=' 'format=' 'o/output=' 'identity=' 'version' 'h/help'
        case 'restore'
            __rack-gateway-db_parse_subcommand 1 'database-url=' 'json' 'v/verbose' 'stall-timeout=' 'dir=' 's3-endpoint=' 'latest' 'identity=' 'verify-key=' 'target-url=' 'clean' 'yes' 'jobs=' 'verify' 'create-missing-roles' 'allow-downgrade' 'maintenance-work-mem=' 'dry-run' 'convox-app=' 'service=' 'rack=' 'in-place' 'allow-autoscaled' 'stop-timeout=' 'scale-to=' 'migrations=' 'migrate-command=' 'migrate-timeout=' 'skip-migrate' 'metrics-file=' 'pushgateway=+' 'notify=+' 'webhook=+' 'version' 'h/help'
        case 'drill'
            __rack-gateway-db_parse_subcommand 1 'database-url=' 'json' 'v/verbose' 'dir=' 's3-endpoint=' 'latest' 'identity=' 'verify-key=' 'migrations=' 'migrate-command=' 'migrate-timeout=' 'audit-anchors=' 'scratch-url=' 'keep' 'allow-downgrade' 'jobs=' 'stall-timeout=' 'notify=+' 'webhook=+' 'metrics-file=' 'pushgateway=+' 'version' 'h/help'
        case 'diff'
            __rack-gateway-db_parse_subcommand 1 'against=' 'table=+' 'rows' 'limit=' 'database-url=' 'json' 'v/verbose' 'dir=' 's3-endpoint=' 'identity=' 'verify-key=' 'jobs=' 'version' 'h/help'
        case 'maint'
            __rack-gateway-db_parse_subcommand 0 'version' 'h/help'
            switch $unparsed_tokens[1]
            case 'sessions-cleanup'
                __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'older-than=' 'dry-run' 'version' 'h/help'
            case 'audit-volume'
                __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'days=' 'version' 'h/help'
            case 'audit-prune'
                __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'older-than=' 'dry-run' 'yes' 'version' 'h/help'
            case 'vacuum'
                __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'analyze' 'table=' 'full' 'yes' 'version' 'h/help'
            case 'connections'
                __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'version' 'h/help'
            case 'slow-queries'
                __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'min-duration=' 'cancel=' 'version' 'h/help'
            case 'size'
                __rack-gateway-db_parse_subcommand 0 'database-url=' 'json' 'v/verbose' 'version' 'h/help'
            end
        case 'help'
            __rack-gateway-db_parse_subcommand -r 1 'version'
        end
    end
end

function __rack-gateway-db_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __rack-gateway-db_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __rack-gateway-db_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __rack-gateway-db_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__rack-gateway-db_tokens -p)
    if test -z "$(__rack-gateway-db_tokens -t)"
        set -l index (count (__rack-gateway-db_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'rack-gateway-db' -f
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'migrate' -d 'Apply pending migrations in version order, each in its own transaction.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'status' -d 'Show applied and pending migrations, and applied versions that have no file.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'reset-db' -d 'Drop and recreate everything in the database, then migrate (development only).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'check' -d 'Check connectivity, TLS, server version, pg_dump, migrations and backup privileges.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'backup' -d 'Write one dated archive (<prefix>_<YYYYMMDD>T<HHMMSS>Z.sql.gz, or .sql.zst) of the database into --dir.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'verify' -d 'Check an archive offline: trailer, manifest, every member\'s CRC32 and size, row counts, fingerprints, the .sha256 sidecar.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'rekey' -d 'Copy an encrypted archive into --to with its file key wrapped for new age recipients, without re-encrypting.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'list' -d 'List the archives in --dir, newest first: time, size, tables, rows, and marks (encrypted, signed, verified, VERIFY-FAILED, drilled, DRILL-FAILED, SUSPECT).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'prune' -d 'Delete archives outside a retention policy (with their .sha256); never the newest one that verifies.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'report' -d 'Write the backup and restore evidence of --dir for an auditor: backups per day, drills, restores, retention, charts.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'restore' -d 'Load an archive (or a plain, gzip, custom or directory pg_dump) into a database.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'drill' -d 'Prove an archive restores: restore into a scratch database, check it, report, drop it.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'diff' -d 'Compare an archive with a database (or with a second archive): per table, rows in each and whether they are equal.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'maint' -d 'Routine maintenance: sessions, audit retention, vacuum, connections, slow queries, size.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db migrate" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db migrate" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db migrate" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db migrate" migrations' -l 'migrations' -d 'The database\'s migration set: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application\'s internal/gateway/db/migrations (default: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db migrate" dry-run' -l 'dry-run' -d 'List the migrations that would be applied; change nothing.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db migrate" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db migrate" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db status" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db status" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db status" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db status" migrations' -l 'migrations' -d 'The database\'s migration set: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application\'s internal/gateway/db/migrations (default: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db status" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db status" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db reset-db" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db reset-db" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db reset-db" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db reset-db" migrations' -l 'migrations' -d 'The database\'s migration set: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application\'s internal/gateway/db/migrations (default: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db reset-db" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db reset-db" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" migrations' -l 'migrations' -d 'The database\'s migration set: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application\'s internal/gateway/db/migrations (default: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check"' -l 'notify' -d 'Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io\'s convention; one run id on both), the summary and the last log lines as the body; repeatable (default: $RGW_NOTIFY_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check"' -l 'webhook' -d 'POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default: $RGW_WEBHOOK_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" max-backup-age' -l 'max-backup-age' -d 'Fail (exit 2) when the newest good archive in --dir is older, e.g. 26h.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" metrics-file' -l 'metrics-file' -d 'Write the run\'s metrics here in Prometheus text format, for node_exporter\'s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check"' -l 'pushgateway' -d 'Push the run\'s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default: $RGW_PUSHGATEWAY_URL). A failed push is a warning.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db check" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" prefix' -l 'prefix' -d 'File name prefix.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" jobs' -l 'jobs' -d 'Parallel COPY connections (default: the number of cores, within DB_MAX_OPEN_CONNS).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" compressors' -l 'compressors' -d 'Compression threads (default: the number of cores).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" compress' -l 'compress' -d 'gzip members (a .sql.gz, the default) or zstd frames (a .sql.zst, restored by stock tools with zstd -dc), with an optional level: gzip 0-12 (default 5), zstd 1-19 (default 1).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" compress-level' -l 'compress-level' -d 'The level when --compress names none: gzip 1 (fastest) to 12 (smallest), 0 stores the data uncompressed; zstd 1 to 19.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" lock-timeout' -l 'lock-timeout' -d 'Seconds to wait for a table lock before failing.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" object-lock-days' -l 'object-lock-days' -d 'With an s3:// --dir: S3 Object Lock retention in days on the archive and its sidecar (the bucket must have Object Lock enabled).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" object-lock-mode' -l 'object-lock-mode' -d 'With --object-lock-days: governance (privileged users may lift it; the default) or compliance (nobody can, not even the root account).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" sse' -l 'sse' -d 'With an s3:// --dir: server-side encryption, AES256 or aws:kms.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" sse-kms-key-id' -l 'sse-kms-key-id' -d 'With --sse aws:kms: the KMS key (id, alias or ARN; default: the account\'s aws/s3 key).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" stall-timeout' -l 'stall-timeout' -d 'Fail when nothing has moved for this long (no bytes, no server work), e.g. 5m; 0 never (default: 5m).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup"' -l 'recipient' -d 'Encrypt to this age recipient (age1..., a public key from age-keygen); repeat for more. The archive is NAME.sql.gz.age.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" recipients-file' -l 'recipients-file' -d 'Encrypt to the age recipients in this file, one per line (default: $RGW_AGE_RECIPIENTS_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" sign-key' -l 'sign-key' -d 'Sign the archive with this minisign secret key (made by minisign -G -W, without a password; mode 0600), writing NAME.minisig beside it (default: $RGW_SIGN_KEY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" metrics-file' -l 'metrics-file' -d 'Write the run\'s metrics here in Prometheus text format, for node_exporter\'s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup"' -l 'pushgateway' -d 'Push the run\'s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default: $RGW_PUSHGATEWAY_URL). A failed push is a warning.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup"' -l 'notify' -d 'Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io\'s convention; one run id on both), the summary and the last log lines as the body; repeatable (default: $RGW_NOTIFY_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup"' -l 'webhook' -d 'POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default: $RGW_WEBHOOK_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" max-shrink' -l 'max-shrink' -d 'Mark the archive suspect (exit 2, kept) when a table\'s rows or the whole data fell by more than this since the previous good archive; 100% turns it off.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db backup" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" latest' -l 'latest' -d 'Verify the newest archive in --dir (else RGW_BACKUP_DIR, else ./backups).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" identity' -l 'identity' -d 'age identity file (age-keygen\'s output, mode 0600) that decrypts .age archives (default: $RGW_AGE_IDENTITY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" verify-key' -l 'verify-key' -d 'minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default: $RGW_VERIFY_KEY).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db verify" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" to' -l 'to' -d 'Where the rekeyed copy goes: a directory or s3://bucket/prefix; the archive\'s name must not exist there.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" identity' -l 'identity' -d 'age identity file (age-keygen\'s output, mode 0600) that decrypts .age archives (default: $RGW_AGE_IDENTITY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" verify-key' -l 'verify-key' -d 'minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default: $RGW_VERIFY_KEY).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey"' -l 'recipient' -d 'Encrypt to this age recipient (age1..., a public key from age-keygen); repeat for more. The archive is NAME.sql.gz.age.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" recipients-file' -l 'recipients-file' -d 'Encrypt to the age recipients in this file, one per line (default: $RGW_AGE_RECIPIENTS_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" sign-key' -l 'sign-key' -d 'Sign the archive with this minisign secret key (made by minisign -G -W, without a password; mode 0600), writing NAME.minisig beside it (default: $RGW_SIGN_KEY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db rekey" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db list" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db list" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db list" identity' -l 'identity' -d 'age identity file (age-keygen\'s output, mode 0600) that decrypts .age archives (default: $RGW_AGE_IDENTITY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db list" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db list" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db list" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db list" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" keep-last' -l 'keep-last' -d 'Keep the newest N good archives.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" keep-daily' -l 'keep-daily' -d 'Keep the newest good archive of each of the last N UTC days that have one.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" keep-weekly' -l 'keep-weekly' -d 'Keep the newest good archive of each of the last N weeks that have one.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" keep-monthly' -l 'keep-monthly' -d 'Keep the newest good archive of each of the last N months that have one.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" keep-yearly' -l 'keep-yearly' -d 'Keep the newest good archive of each of the last N years that have one.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" delete-suspect' -l 'delete-suspect' -d 'Let the policy delete SUSPECT and VERIFY-FAILED archives too (they are kept by default).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" keep-suspect-days' -l 'keep-suspect-days' -d 'Keep SUSPECT and VERIFY-FAILED archives younger than N days, whatever the policy says (default: 35).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" dry-run' -l 'dry-run' -d 'Show what would be deleted; delete nothing.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" metrics-file' -l 'metrics-file' -d 'Write the run\'s metrics here in Prometheus text format, for node_exporter\'s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune"' -l 'pushgateway' -d 'Push the run\'s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default: $RGW_PUSHGATEWAY_URL). A failed push is a warning.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune"' -l 'notify' -d 'Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io\'s convention; one run id on both), the summary and the last log lines as the body; repeatable (default: $RGW_NOTIFY_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune"' -l 'webhook' -d 'POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default: $RGW_WEBHOOK_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db prune" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db report" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db report" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db report" since' -l 'since' -d 'The period, back from now: 90d, 12h, ...' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db report" format' -l 'format' -d 'md, html or json.' -rfka 'md html json'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db report" o output' -s 'o' -l 'output' -d 'Write the report here (md: the charts beside it, FILE\'s name with -sizes.svg and -rto.svg); default: standard output.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db report" identity' -l 'identity' -d 'age identity file (age-keygen\'s output, mode 0600) that decrypts .age archives (default: $RGW_AGE_IDENTITY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db report" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db report" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" stall-timeout' -l 'stall-timeout' -d 'Fail when nothing has moved for this long (no bytes, no server work), e.g. 5m; 0 never (default: 5m).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" latest' -l 'latest' -d 'The newest archive in --dir that verifies.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" identity' -l 'identity' -d 'age identity file (age-keygen\'s output, mode 0600) that decrypts .age archives (default: $RGW_AGE_IDENTITY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" verify-key' -l 'verify-key' -d 'minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default: $RGW_VERIFY_KEY).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" target-url' -l 'target-url' -d 'The database to restore into (default: the configured database); created when missing.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" clean' -l 'clean' -d 'Drop and recreate a target that already holds any object (ends its sessions).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" yes' -l 'yes' -d 'Do not ask: before --clean drops the target, or before the pipeline starts.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" jobs' -l 'jobs' -d 'Parallel connections (default: the number of cores, within DB_MAX_OPEN_CONNS).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" verify' -l 'verify' -d 'Re-read every restored table and compare row counts and fingerprints with the manifest.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" create-missing-roles' -l 'create-missing-roles' -d 'Create roles the archive references that the server lacks, NOLOGIN.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" allow-downgrade' -l 'allow-downgrade' -d 'Try an archive of a newer PostgreSQL major version on an older server (refused otherwise).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" maintenance-work-mem' -l 'maintenance-work-mem' -d 'maintenance_work_mem for index builds (e.g. 256MB); default: the server\'s.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" dry-run' -l 'dry-run' -d 'Print what would be done (archive checks, the target\'s state, what is dropped or created, tables, rows, bytes, roles; with --convox-app the pipeline\'s steps and commands); change nothing.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" convox-app' -l 'convox-app' -d 'Run the Convox pipeline for this app: scale down, restore into a new database, verify, migrate (--migrations DIR of the database\'s own set, --migrate-command, or --skip-migrate), swap, scale up.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" service' -l 'service' -d 'With --convox-app: the app\'s service that uses the database (default: gateway).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" rack' -l 'rack' -d 'With --convox-app: the Convox rack (default: the CLI\'s own choice).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" in-place' -l 'in-place' -d 'With --convox-app: back up the live database into --dir\'s folder pre-restore/, then restore over it (instead of the swap).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" allow-autoscaled' -l 'allow-autoscaled' -d 'With --convox-app: allow a service with MIN/MAX set.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" stop-timeout' -l 'stop-timeout' -d 'With --convox-app: seconds to wait for the service\'s processes to stop (default: 600).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" scale-to' -l 'scale-to' -d 'With --convox-app: the count to scale the service to afterwards (and if the restore is undone), instead of its count at preflight; required when the service is at 0.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" migrations' -l 'migrations' -d 'The database\'s migration set: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application\'s internal/gateway/db/migrations (default: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" migrate-command' -l 'migrate-command' -d 'Run the application\'s own migrate instead of a migration set (through /bin/sh; DATABASE_URL and RGW_DATABASE_URL name the restored database, the password is in PGPASSWORD), e.g. \'rack-gateway-api migrate\'.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" migrate-timeout' -l 'migrate-timeout' -d 'Stop --migrate-command after this long, e.g. 30m (default: 30m).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" skip-migrate' -l 'skip-migrate' -d 'With --convox-app: do not migrate the restored database (the report warns).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" metrics-file' -l 'metrics-file' -d 'Write the run\'s metrics here in Prometheus text format, for node_exporter\'s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore"' -l 'pushgateway' -d 'Push the run\'s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default: $RGW_PUSHGATEWAY_URL). A failed push is a warning.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore"' -l 'notify' -d 'Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io\'s convention; one run id on both), the summary and the last log lines as the body; repeatable (default: $RGW_NOTIFY_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore"' -l 'webhook' -d 'POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default: $RGW_WEBHOOK_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db restore" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" latest' -l 'latest' -d 'The newest archive in --dir that verifies.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" identity' -l 'identity' -d 'age identity file (age-keygen\'s output, mode 0600) that decrypts .age archives (default: $RGW_AGE_IDENTITY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" verify-key' -l 'verify-key' -d 'minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default: $RGW_VERIFY_KEY).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" migrations' -l 'migrations' -d 'The database\'s migration set: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application\'s internal/gateway/db/migrations (default: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" migrate-command' -l 'migrate-command' -d 'Run the application\'s own migrate instead of a migration set (through /bin/sh; DATABASE_URL and RGW_DATABASE_URL name the restored database, the password is in PGPASSWORD), e.g. \'rack-gateway-api migrate\'.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" migrate-timeout' -l 'migrate-timeout' -d 'Stop --migrate-command after this long, e.g. 30m (default: 30m).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" audit-anchors' -l 'audit-anchors' -d 'The application\'s WORM anchors to check the restored chain head against (default: from AUDIT_ANCHOR_BUCKET and AUDIT_ANCHOR_CHAIN_ID).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" scratch-url' -l 'scratch-url' -d 'Server for the scratch database (default: the configured database\'s server).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" keep' -l 'keep' -d 'Keep the scratch database afterwards.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" allow-downgrade' -l 'allow-downgrade' -d 'Try an archive of a newer PostgreSQL major version on an older scratch server.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" jobs' -l 'jobs' -d 'Parallel connections (default: the number of cores, within DB_MAX_OPEN_CONNS).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" stall-timeout' -l 'stall-timeout' -d 'Fail when nothing has moved for this long (no bytes, no server work), e.g. 5m; 0 never (default: 5m).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill"' -l 'notify' -d 'Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io\'s convention; one run id on both), the summary and the last log lines as the body; repeatable (default: $RGW_NOTIFY_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill"' -l 'webhook' -d 'POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default: $RGW_WEBHOOK_URL).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" metrics-file' -l 'metrics-file' -d 'Write the run\'s metrics here in Prometheus text format, for node_exporter\'s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill"' -l 'pushgateway' -d 'Push the run\'s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default: $RGW_PUSHGATEWAY_URL). A failed push is a warning.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db drill" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" against' -l 'against' -d 'Compare with this second archive instead of a database (no database is read).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff"' -l 'table' -d 'Compare only this table (repeatable; default: every table).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" rows' -l 'rows' -d 'For the tables that differ, show the rows added, removed and changed.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" limit' -l 'limit' -d 'With --rows, print at most this many rows of each kind per table (default: 20; --json lists them all).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" dir' -l 'dir' -d 'Archive directory, or s3://bucket/prefix (default: $RGW_BACKUP_DIR, else ./backups).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" s3-endpoint' -l 's3-endpoint' -d 'S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, else AWS\'s regional one).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" identity' -l 'identity' -d 'age identity file (age-keygen\'s output, mode 0600) that decrypts .age archives (default: $RGW_AGE_IDENTITY_FILE).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" verify-key' -l 'verify-key' -d 'minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default: $RGW_VERIFY_KEY).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" jobs' -l 'jobs' -d 'Parallel connections (default: the number of cores, within DB_MAX_OPEN_CONNS).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db diff" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db maint" -eq 1' -fa 'sessions-cleanup' -d 'Delete user sessions created before a cutoff, in small batches.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db maint" -eq 1' -fa 'audit-volume' -d 'Audit events per day, newest first, with the total and the table\'s size.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db maint" -eq 1' -fa 'audit-prune' -d 'Remove the oldest audit events (a prefix of the chain) older than a cutoff; the prune is recorded.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db maint" -eq 1' -fa 'vacuum' -d 'VACUUM the user tables (or one), one at a time.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db maint" -eq 1' -fa 'connections' -d 'Sessions on the database, against max_connections and DB_MAX_OPEN_CONNS.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db maint" -eq 1' -fa 'slow-queries' -d 'Active queries running longer than a threshold, longest first; --cancel PID cancels one.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_positional "rack-gateway-db maint" -eq 1' -fa 'size' -d 'Database size and per-table total size (table, indexes, TOAST), largest first.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint sessions-cleanup" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint sessions-cleanup" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint sessions-cleanup" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint sessions-cleanup" older-than' -l 'older-than' -d 'Age cutoff, e.g. 30d.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint sessions-cleanup" dry-run' -l 'dry-run' -d 'Count; delete nothing.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint sessions-cleanup" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint sessions-cleanup" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-volume" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-volume" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-volume" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-volume" days' -l 'days' -d 'Days to show (UTC days, today included).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-volume" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-volume" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-prune" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-prune" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-prune" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-prune" older-than' -l 'older-than' -d 'Age cutoff, e.g. 400d.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-prune" dry-run' -l 'dry-run' -d 'Count; prune nothing.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-prune" yes' -l 'yes' -d 'Do not ask for confirmation.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-prune" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint audit-prune" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" analyze' -l 'analyze' -d 'Also ANALYZE.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" table' -l 'table' -d 'Only this table (schema.table).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" full' -l 'full' -d 'VACUUM FULL: rewrites each table under an exclusive lock (needs --yes).'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" yes' -l 'yes' -d 'Confirm --full.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint vacuum" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint connections" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint connections" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint connections" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint connections" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint connections" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint slow-queries" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint slow-queries" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint slow-queries" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint slow-queries" min-duration' -l 'min-duration' -d 'Threshold, e.g. 1s or 5m.' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint slow-queries" cancel' -l 'cancel' -d 'Cancel this backend\'s query (pg_cancel_backend).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint slow-queries" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint slow-queries" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint size" database-url' -l 'database-url' -d 'PostgreSQL URL (postgres://user:password@host:port/db?sslmode=...).' -rfka ''
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint size" json' -l 'json' -d 'Print one machine-readable JSON report on stdout.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint size" v verbose' -l 'verbose' -s 'v' -d 'Log debug detail to stderr.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint size" version' -l 'version' -d 'Show the version.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db maint size" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'rack-gateway-db' -n '__rack-gateway-db_should_offer_completions_for_flags_or_options "rack-gateway-db help" version' -l 'version' -d 'Show the version.'
