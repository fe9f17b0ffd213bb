#compdef rack-gateway-db

__rack-gateway-db_complete() {
    local -ar non_empty_completions=("${@:#(|:*)}")
    local -ar empty_completions=("${(M)@:#(|:*)}")
    _describe -V '' non_empty_completions -- empty_completions -P $'\'\''
}

__rack-gateway-db_custom_complete() {
    local -a completions
    completions=("${(@f)"$("${command_name}" "${@}" "${command_line[@]}")"}")
    if [[ "${#completions[@]}" -gt 1 ]]; then
        __rack-gateway-db_complete "${completions[@]:0:-1}"
    fi
}

__rack-gateway-db_cursor_index_in_current_word() {
    if [[ -z "${QIPREFIX}${IPREFIX}${PREFIX}" ]]; then
        printf 0
    else
        printf %s "${#${(z)LBUFFER}[-1]}"
    fi
}

_rack-gateway-db() {
    emulate -RL zsh -G
    setopt extendedglob nullglob numericglobsort
    unsetopt aliases banghist

    local -xr SAP_SHELL=zsh
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(builtin emulate zsh -c 'printf %s "${ZSH_VERSION}"')"
    local -r SAP_SHELL_VERSION

    local context state state_descr line
    local -A opt_args

    local -r command_name="${words[1]}"
    local -ar command_line=("${words[@]}")
    local -ir current_word_index="$((CURRENT - 1))"

    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'migrate:Apply pending migrations in version order, each in its own transaction.'
            'status:Show applied and pending migrations, and applied versions that have no file.'
            'reset-db:Drop and recreate everything in the database, then migrate (development only).'
            'check:Check connectivity, TLS, server version, pg_dump, migrations and backup privileges.'
            'backup:Write one dated archive (<prefix>_<YYYYMMDD>T<HHMMSS>Z.sql.gz, or .sql.zst) of the database into --dir.'
            'verify:Check an archive offline: trailer, manifest, every member'\''s CRC32 and size, row counts, fingerprints, the .sha256 sidecar.'
            'inspect:Show what an archive holds without restoring it: time, source, versions, codec, encryption, and per table rows, bytes and fingerprint.'
            'extract:Write one table'\''s rows from an archive as CSV, JSON lines or COPY text, without a database.'
            'rekey:Copy an encrypted archive into --to with its file key wrapped for new age recipients, without re-encrypting.'
            'copy:Copy archives with their sidecars to a second directory or S3 prefix, and verify each copy there.'
            'list:List the archives in --dir, newest first: time, size, tables, rows, and marks (encrypted, signed, verified, VERIFY-FAILED, drilled, DRILL-FAILED, SUSPECT, re-read N%).'
            'prune:Delete archives outside a retention policy (with their .sha256); never the newest one that verifies.'
            'report:Write the backup and restore evidence of --dir for an auditor: backups per day, drills, restores, retention, charts.'
            'restore:Load an archive (or a plain, gzip, custom or directory pg_dump) into a database.'
            'drill:Prove an archive restores: restore into a scratch database, check it, report, drop it.'
            'diff:Compare an archive with a database (or with a second archive): per table, rows in each and whether they are equal.'
            'maint:Routine maintenance: sessions, audit retention, vacuum, connections, slow queries, size.'
            'help:Show subcommand help information.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        migrate|status|reset-db|check|backup|verify|inspect|extract|rekey|copy|list|prune|report|restore|drill|diff|maint|help)
            "_rack-gateway-db_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_rack-gateway-db_migrate() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--migrations[The database'\''s migration set\: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application'\''s internal/gateway/db/migrations (default\: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.]:dir:'
        '--dry-run[List the migrations that would be applied; change nothing.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_status() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--migrations[The database'\''s migration set\: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application'\''s internal/gateway/db/migrations (default\: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.]:dir:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_reset-db() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--migrations[The database'\''s migration set\: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application'\''s internal/gateway/db/migrations (default\: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.]:dir:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_check() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--migrations[The database'\''s migration set\: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application'\''s internal/gateway/db/migrations (default\: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.]:dir:'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '*--notify[Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io'\''s convention; one run id on both), the summary and the last log lines as the body; repeatable (default\: $RGW_NOTIFY_URL).]:url:'
        '*--webhook[POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default\: $RGW_WEBHOOK_URL).]:url:'
        '--max-backup-age[Fail (exit 2) when the newest good archive in --dir is older, e.g. 26h.]:age:'
        '--metrics-file[Write the run'\''s metrics here in Prometheus text format, for node_exporter'\''s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).]:path:'
        '*--pushgateway[Push the run'\''s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default\: $RGW_PUSHGATEWAY_URL). A failed push is a warning.]:url:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_backup() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--prefix[File name prefix.]:prefix:'
        '--jobs[Parallel COPY connections (default\: the number of cores, within DB_MAX_OPEN_CONNS).]:jobs:'
        '--compressors[Compression threads (default\: the number of cores).]:compressors:'
        '--compress[gzip members (a .sql.gz, the default) or zstd frames (a .sql.zst, restored by stock tools with zstd -dc), with an optional level\: gzip 0-12 (default 5), zstd 1-19 (default 1).]:gzip\[\:LEVEL\]|zstd\[\:LEVEL\]:'
        '--compress-level[The level when --compress names none\: gzip 1 (fastest) to 12 (smallest), 0 stores the data uncompressed; zstd 1 to 19.]:compress-level:'
        '--lock-timeout[Seconds to wait for a table lock before failing.]:lock-timeout:'
        '--object-lock-days[S3 Object Lock retention in days on the archives and sidecars written to S3 (the bucket must have Object Lock enabled).]:object-lock-days:'
        '--object-lock-mode[With --object-lock-days\: governance (privileged users may lift it; the default) or compliance (nobody can, not even the root account).]:object-lock-mode:'
        '--sse[Server-side encryption of what is written to S3, AES256 or aws\:kms.]:AES256|aws\:kms:'
        '--sse-kms-key-id[With --sse aws\:kms\: the KMS key (id, alias or ARN; default\: the account'\''s aws/s3 key).]:id:'
        '*--copy-to[After the backup, copy it with its sidecars to this directory or s3\://bucket/prefix and verify the copy there, as copy does; repeat for more (default\: $RGW_BACKUP_COPY_TO, absolute directories or s3\:// locations separated by spaces or commas). A directory must exist. Exits 4 (copy_failed) when the backup succeeded and a copy did not.]:dir:'
        '--stall-timeout[Fail when nothing has moved for this long (no bytes, no server work), e.g. 5m; 0 never (default\: 5m).]:duration:'
        '*--recipient[Encrypt to this age recipient (age1..., a public key from age-keygen); repeat for more. The archive is NAME.sql.gz.age.]:age1...:'
        '--recipients-file[Encrypt to the age recipients in this file, one per line (default\: $RGW_AGE_RECIPIENTS_FILE).]:file:'
        '--sign-key[Sign the archive with this minisign secret key (made by minisign -G -W, without a password; mode 0600), writing NAME.minisig beside it (default\: $RGW_SIGN_KEY_FILE).]:file:'
        '--metrics-file[Write the run'\''s metrics here in Prometheus text format, for node_exporter'\''s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).]:path:'
        '*--pushgateway[Push the run'\''s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default\: $RGW_PUSHGATEWAY_URL). A failed push is a warning.]:url:'
        '*--notify[Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io'\''s convention; one run id on both), the summary and the last log lines as the body; repeatable (default\: $RGW_NOTIFY_URL).]:url:'
        '*--webhook[POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default\: $RGW_WEBHOOK_URL).]:url:'
        '--max-shrink[Mark the archive suspect (exit 2, kept) when a table'\''s rows or the whole data fell by more than this since the previous good archive; 100% turns it off.]:percent:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_verify() {
    local -i ret=1
    local -ar arg_specs=(
        ':archive:'
        '--latest[Verify the newest archive in --dir (else RGW_BACKUP_DIR, else ./backups).]'
        '--sample[Re-read this share of every archive in --dir (over 0, at most 100)\: its trailer, manifest and schema members and that much of its data chunks, least recently read first.]:percent:'
        '--seed[With --sample\: the seed of the choice of chunks, which repeats it given the same verifications.jsonl (each run'\''s reads change what comes first; default\: a random seed per run, recorded in verifications.jsonl).]:n:'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--verify-key[minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default\: $RGW_VERIFY_KEY).]:key:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--metrics-file[Write the run'\''s metrics here in Prometheus text format, for node_exporter'\''s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).]:path:'
        '*--pushgateway[Push the run'\''s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default\: $RGW_PUSHGATEWAY_URL). A failed push is a warning.]:url:'
        '*--notify[Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io'\''s convention; one run id on both), the summary and the last log lines as the body; repeatable (default\: $RGW_NOTIFY_URL).]:url:'
        '*--webhook[POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default\: $RGW_WEBHOOK_URL).]:url:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_inspect() {
    local -i ret=1
    local -ar arg_specs=(
        ':archive:'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--verify-key[minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default\: $RGW_VERIFY_KEY).]:key:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_extract() {
    local -i ret=1
    local -ar ___format=('csv' 'json' 'copy')
    local -ar arg_specs=(
        ':archive:'
        '*--table[The table, as SCHEMA.NAME or "SCHEMA"."NAME" (a bare NAME when only one schema has it); one per extract.]:schema.name:'
        '--format[The rows'\'' format (jsonl\: json).]:format:{__rack-gateway-db_complete "${___format[@]}"}'
        '(-o --output)'{-o,--output}'[Write the rows to this file (mode 0600, written whole or not at all); default\: standard output.]:file:'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--verify-key[minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default\: $RGW_VERIFY_KEY).]:key:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_rekey() {
    local -i ret=1
    local -ar arg_specs=(
        ':archive:'
        '--to[Where the rekeyed copy goes\: a directory or s3\://bucket/prefix; the archive'\''s name must not exist there.]:dir:'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--verify-key[minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default\: $RGW_VERIFY_KEY).]:key:'
        '*--recipient[Encrypt to this age recipient (age1..., a public key from age-keygen); repeat for more. The archive is NAME.sql.gz.age.]:age1...:'
        '--recipients-file[Encrypt to the age recipients in this file, one per line (default\: $RGW_AGE_RECIPIENTS_FILE).]:file:'
        '--sign-key[Sign the archive with this minisign secret key (made by minisign -G -W, without a password; mode 0600), writing NAME.minisig beside it (default\: $RGW_SIGN_KEY_FILE).]:file:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_copy() {
    local -i ret=1
    local -ar arg_specs=(
        '--from[Where the archives are\: a directory or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR).]:dir:'
        '--to[Where the copies go\: a directory or s3\://bucket/prefix.]:dir:'
        '*:archive:'
        '--latest[Copy only the newest archive.]'
        '--forget[Copy nothing\: stop tracking --to in --from'\''s copies.jsonl (list, report and check there no longer name it) until a later copy to it.]'
        '--since[Copy only the archives of the last DURATION (by the time in their names), e.g. 7d, 12h.]:duration:'
        '--object-lock-days[S3 Object Lock retention in days on the archives and sidecars written to S3 (the bucket must have Object Lock enabled).]:object-lock-days:'
        '--object-lock-mode[With --object-lock-days\: governance (privileged users may lift it; the default) or compliance (nobody can, not even the root account).]:object-lock-mode:'
        '--sse[Server-side encryption of what is written to S3, AES256 or aws\:kms.]:AES256|aws\:kms:'
        '--sse-kms-key-id[With --sse aws\:kms\: the KMS key (id, alias or ARN; default\: the account'\''s aws/s3 key).]:id:'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--verify-key[minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default\: $RGW_VERIFY_KEY).]:key:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_list() {
    local -i ret=1
    local -ar arg_specs=(
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_prune() {
    local -i ret=1
    local -ar arg_specs=(
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--keep-last[Keep the newest N good archives.]:keep-last:'
        '--keep-daily[Keep the newest good archive of each of the last N UTC days that have one.]:keep-daily:'
        '--keep-weekly[Keep the newest good archive of each of the last N weeks that have one.]:keep-weekly:'
        '--keep-monthly[Keep the newest good archive of each of the last N months that have one.]:keep-monthly:'
        '--keep-yearly[Keep the newest good archive of each of the last N years that have one.]:keep-yearly:'
        '--delete-suspect[Let the policy delete SUSPECT and VERIFY-FAILED archives too (they are kept by default).]'
        '--keep-suspect-days[Keep SUSPECT and VERIFY-FAILED archives younger than N days, whatever the policy says (default\: 35).]:n:'
        '--dry-run[Show what would be deleted; delete nothing.]'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--metrics-file[Write the run'\''s metrics here in Prometheus text format, for node_exporter'\''s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).]:path:'
        '*--pushgateway[Push the run'\''s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default\: $RGW_PUSHGATEWAY_URL). A failed push is a warning.]:url:'
        '*--notify[Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io'\''s convention; one run id on both), the summary and the last log lines as the body; repeatable (default\: $RGW_NOTIFY_URL).]:url:'
        '*--webhook[POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default\: $RGW_WEBHOOK_URL).]:url:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_report() {
    local -i ret=1
    local -ar ___format=('md' 'html' 'json')
    local -ar arg_specs=(
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--since[The period, back from now\: 90d, 12h, ...]:duration:'
        '--format[md, html or json.]:format:{__rack-gateway-db_complete "${___format[@]}"}'
        '(-o --output)'{-o,--output}'[Write the report here (md\: the charts beside it, FILE'\''s name with -sizes.svg and -rto.svg); default\: standard output.]:file:'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_restore() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--stall-timeout[Fail when nothing has moved for this long (no bytes, no server work), e.g. 5m; 0 never (default\: 5m).]:duration:'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        ':archive:'
        '--latest[The newest archive in --dir that verifies.]'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--verify-key[minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default\: $RGW_VERIFY_KEY).]:key:'
        '--target-url[The database to restore into (default\: the configured database); created when missing.]:url:'
        '--clean[Drop and recreate a target that already holds any object (ends its sessions).]'
        '--yes[Do not ask\: before --clean drops the target, or before the pipeline starts.]'
        '--jobs[Parallel connections (default\: the number of cores, within DB_MAX_OPEN_CONNS).]:jobs:'
        '--verify[Re-read every restored table and compare row counts and fingerprints with the manifest.]'
        '--create-missing-roles[Create roles the archive references that the server lacks, NOLOGIN.]'
        '--allow-downgrade[Try an archive of a newer PostgreSQL major version on an older server (refused otherwise).]'
        '--maintenance-work-mem[maintenance_work_mem for index builds (e.g. 256MB); default\: the server'\''s.]:size:'
        '--dry-run[Print what would be done (archive checks, the target'\''s state, what is dropped or created, tables, rows, bytes, roles; with --convox-app the pipeline'\''s steps and commands); change nothing.]'
        '--convox-app[Run the Convox pipeline for this app\: scale down, restore into a new database, verify, migrate (--migrations DIR of the database'\''s own set, --migrate-command, or --skip-migrate), swap, scale up.]:app:'
        '--service[With --convox-app\: the app'\''s service that uses the database (default\: gateway).]:service:'
        '--rack[With --convox-app\: the Convox rack (default\: the CLI'\''s own choice).]:rack:'
        '--in-place[With --convox-app\: back up the live database into --dir'\''s folder pre-restore/, then restore over it (instead of the swap).]'
        '--allow-autoscaled[With --convox-app\: allow a service with MIN/MAX set.]'
        '--stop-timeout[With --convox-app\: seconds to wait for the service'\''s processes to stop (default\: 600).]:stop-timeout:'
        '--scale-to[With --convox-app\: the count to scale the service to afterwards (and if the restore is undone), instead of its count at preflight; required when the service is at 0.]:n:'
        '--migrations[The database'\''s migration set\: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application'\''s internal/gateway/db/migrations (default\: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.]:dir:'
        '--migrate-command[Run the application'\''s own migrate instead of a migration set (through /bin/sh; DATABASE_URL and RGW_DATABASE_URL name the restored database, the password is in PGPASSWORD), e.g. '\''rack-gateway-api migrate'\''.]:cmd:'
        '--migrate-timeout[Stop --migrate-command after this long, e.g. 30m (default\: 30m).]:duration:'
        '--skip-migrate[With --convox-app\: do not migrate the restored database (the report warns).]'
        '*--table[Restore only this table (repeatable)\: its columns, defaults, owned sequences at their archived values, keys, checks, indexes and comments; foreign keys only to tables restored with it. Into a database that may hold anything else.]:schema.name:'
        '*--schema[Restore every table of this schema (repeatable), as --table does.]:name:'
        '--into-schema[With --table/--schema\: create the tables in this schema (new, or empty) instead of where they were, and print the SQL that copies the rows the live tables lack back. Read as SQL reads a name\: Recovered is recovered, '\''"Recovered"'\'' keeps the capital.]:name:'
        '--with-triggers[With --table/--schema\: also create the tables'\'' triggers and rules.]'
        '--with-privileges[With --table/--schema\: also restore the tables'\'' owners, grants, row security and policies (the roles must exist).]'
        '--copy-back-sql[With --into-schema\: also write the copy-back SQL to this file (mode 0600).]:file:'
        '--metrics-file[Write the run'\''s metrics here in Prometheus text format, for node_exporter'\''s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).]:path:'
        '*--pushgateway[Push the run'\''s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default\: $RGW_PUSHGATEWAY_URL). A failed push is a warning.]:url:'
        '*--notify[Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io'\''s convention; one run id on both), the summary and the last log lines as the body; repeatable (default\: $RGW_NOTIFY_URL).]:url:'
        '*--webhook[POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default\: $RGW_WEBHOOK_URL).]:url:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_drill() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        ':archive:'
        '--latest[The newest archive in --dir that verifies.]'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--verify-key[minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default\: $RGW_VERIFY_KEY).]:key:'
        '--migrations[The database'\''s migration set\: a directory of YYYYMMDDHHMMSS_name.sql files, for production the application'\''s internal/gateway/db/migrations (default\: $RGW_MIGRATIONS_DIR, else the bundled set). A database migrated by another set is never migrated.]:dir:'
        '--migrate-command[Run the application'\''s own migrate instead of a migration set (through /bin/sh; DATABASE_URL and RGW_DATABASE_URL name the restored database, the password is in PGPASSWORD), e.g. '\''rack-gateway-api migrate'\''.]:cmd:'
        '--migrate-timeout[Stop --migrate-command after this long, e.g. 30m (default\: 30m).]:duration:'
        '--audit-anchors[The application'\''s WORM anchors to check the restored chain head against (default\: from AUDIT_ANCHOR_BUCKET and AUDIT_ANCHOR_CHAIN_ID).]:s3\://bucket/chain-id:'
        '--existing-url[Check this database, restored by something else (an RDS snapshot or point-in-time restore, a replica promoted by hand), in place and read-only instead of restoring an archive; ARCHIVE or --latest is then optional\: the audit history is checked against it.]:url:'
        '--scratch-url[Server for the scratch database (default\: the configured database'\''s server).]:url:'
        '--keep[Keep the scratch database afterwards.]'
        '--allow-downgrade[Try an archive of a newer PostgreSQL major version on an older scratch server.]'
        '--jobs[Parallel connections (default\: the number of cores, within DB_MAX_OPEN_CONNS).]:jobs:'
        '--stall-timeout[Fail when nothing has moved for this long (no bytes, no server work), e.g. 5m; 0 never (default\: 5m).]:duration:'
        '*--notify[Ping URL/start when the run starts, URL when it succeeds and URL/<exit status> when it fails (healthchecks.io'\''s convention; one run id on both), the summary and the last log lines as the body; repeatable (default\: $RGW_NOTIFY_URL).]:url:'
        '*--webhook[POST the --json report (or error document) with a one-line "text" summary (a Slack or Teams incoming webhook shows it) to URL at the end; repeatable (default\: $RGW_WEBHOOK_URL).]:url:'
        '--metrics-file[Write the run'\''s metrics here in Prometheus text format, for node_exporter'\''s textfile collector (atomically, mode 0644, in every outcome; other metrics in the file are kept).]:path:'
        '*--pushgateway[Push the run'\''s metrics to this Prometheus Pushgateway (job rack_gateway_db, grouped by command, database and directory; repeatable; default\: $RGW_PUSHGATEWAY_URL). A failed push is a warning.]:url:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_diff() {
    local -i ret=1
    local -ar arg_specs=(
        ':archive:'
        '--against[Compare with this second archive instead of a database (no database is read); its audit history is checked too\: the older archive'\''s events must be in the newer one as they were.]:archive:'
        '*--table[Compare only this table (repeatable; default\: every table).]:schema.name:'
        '--rows[For the tables that differ, show the rows added, removed and changed.]'
        '--limit[With --rows, print at most this many rows of each kind per table (default\: 20; --json lists them all).]:n:'
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--dir[Archive directory, or s3\://bucket/prefix (default\: $RGW_BACKUP_DIR, else ./backups).]:dir:'
        '--s3-endpoint[S3 endpoint URL (default\: AWS_ENDPOINT_URL_S3, else AWS'\''s regional one).]:url:'
        '--identity[age identity file (age-keygen'\''s output, mode 0600) that decrypts .age archives (default\: $RGW_AGE_IDENTITY_FILE).]:file:'
        '--verify-key[minisign public key (the RWQ... line, or the .pub file) every archive must be signed with; an unsigned or badly signed one is refused, exit 2 (default\: $RGW_VERIFY_KEY).]:key:'
        '--jobs[Parallel connections (default\: the number of cores, within DB_MAX_OPEN_CONNS).]:jobs:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_maint() {
    local -i ret=1
    local -ar arg_specs=(
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
        '(-): :->command'
        '(-)*:: :->arg'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0
    case "${state}" in
    command)
        local -ar subcommands=(
            'sessions-cleanup:Delete user sessions created before a cutoff, in small batches.'
            'audit-volume:Audit events per day, newest first, with the total and the table'\''s size.'
            'audit-prune:Remove the oldest audit events (a prefix of the chain) older than a cutoff; the prune is recorded.'
            'vacuum:VACUUM the user tables (or one), one at a time.'
            'connections:Sessions on the database, against max_connections and DB_MAX_OPEN_CONNS.'
            'slow-queries:Active queries running longer than a threshold, longest first; --cancel PID cancels one.'
            'size:Database size and per-table total size (table, indexes, TOAST), largest first.'
        )
        _describe -V subcommand subcommands && ret=0
        ;;
    arg)
        case "${words[1]}" in
        sessions-cleanup|audit-volume|audit-prune|vacuum|connections|slow-queries|size)
            "_rack-gateway-db_maint_${words[1]}" && ret=0
            ;;
        esac
        ;;
    esac

    return "${ret}"
}

_rack-gateway-db_maint_sessions-cleanup() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--older-than[Age cutoff, e.g. 30d.]:older-than:'
        '--dry-run[Count; delete nothing.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_maint_audit-volume() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--days[Days to show (UTC days, today included).]:days:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_maint_audit-prune() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--older-than[Age cutoff, e.g. 400d.]:older-than:'
        '--dry-run[Count; prune nothing.]'
        '--yes[Do not ask for confirmation.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_maint_vacuum() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--analyze[Also ANALYZE.]'
        '--table[Only this table (schema.table).]:table:'
        '--full[VACUUM FULL\: rewrites each table under an exclusive lock (needs --yes).]'
        '--yes[Confirm --full.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_maint_connections() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_maint_slow-queries() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--min-duration[Threshold, e.g. 1s or 5m.]:min-duration:'
        '--cancel[Cancel this backend'\''s query (pg_cancel_backend).]:cancel:'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_maint_size() {
    local -i ret=1
    local -ar arg_specs=(
        '--database-url[PostgreSQL URL (postgres\://user\:password@host\:port/db?sslmode=...).]:url:'
        '--json[Print one machine-readable JSON report on stdout.]'
        '(--verbose -v)'{--verbose,-v}'[Log debug detail to stderr.]'
        '--version[Show the version.]'
        '(-h --help)'{-h,--help}'[Show help information.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

_rack-gateway-db_help() {
    local -i ret=1
    local -ar arg_specs=(
        '*:subcommands:'
        '--version[Show the version.]'
    )
    _arguments -w -s -S : "${arg_specs[@]}" && ret=0

    return "${ret}"
}

if [[ "${funcstack[1]}" = _rack-gateway-db ]]; then
    _rack-gateway-db "${@}"
else
    compdef _rack-gateway-db rack-gateway-db
fi
