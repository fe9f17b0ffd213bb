#!/bin/bash

__rack-gateway-db_cursor_index_in_current_word() {
    local remaining="${COMP_LINE}"

    local word
    for word in "${COMP_WORDS[@]::COMP_CWORD}"; do
        remaining="${remaining##*([[:space:]])"${word}"*([[:space:]])}"
    done

    local -ir index="$((COMP_POINT - ${#COMP_LINE} + ${#remaining}))"
    if [[ "${index}" -le 0 ]]; then
        printf 0
    else
        printf %s "${index}"
    fi
}

# positional arguments:
#
# - 1: the current (sub)command's count of positional arguments
#
# required variables:
#
# - repeating_flags: the repeating flags that the current (sub)command can accept
# - non_repeating_flags: the non-repeating flags that the current (sub)command can accept
# - repeating_options: the repeating options that the current (sub)command can accept
# - non_repeating_options: the non-repeating options that the current (sub)command can accept
# - positional_number: value ignored
# - unparsed_words: unparsed words from the current command line
#
# modified variables:
#
# - non_repeating_flags: remove flags for this (sub)command that are already on the command line
# - non_repeating_options: remove options for this (sub)command that are already on the command line
# - positional_number: set to the current positional number
# - unparsed_words: remove all flags, options, and option values for this (sub)command
__rack-gateway-db_offer_flags_options() {
    local -ir positional_count="${1}"
    positional_number=0

    local was_flag_option_terminator_seen=false
    local is_parsing_option_value=false

    local -ar unparsed_word_indices=("${!unparsed_words[@]}")
    local -i word_index
    for word_index in "${unparsed_word_indices[@]}"; do
        if "${is_parsing_option_value}"; then
            # This word is an option value:
            # Reset marker for next word iff not currently the last word
            [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]] && is_parsing_option_value=false
            unset "unparsed_words[${word_index}]"
            # Do not process this word as a flag or an option
            continue
        fi

        local word="${unparsed_words["${word_index}"]}"
        if ! "${was_flag_option_terminator_seen}"; then
            case "${word}" in
            --)
                unset "unparsed_words[${word_index}]"
                # by itself -- is a flag/option terminator, but if it is the last word, it is the start of a completion
                if [[ "${word_index}" -ne "${unparsed_word_indices[${#unparsed_word_indices[@]} - 1]}" ]]; then
                    was_flag_option_terminator_seen=true
                fi
                continue
                ;;
            -*)
                # ${word} is a flag or an option
                # If ${word} is an option, mark that the next word to be parsed is an option value
                local option
                for option in "${repeating_options[@]}" "${non_repeating_options[@]}"; do
                    [[ "${word}" = "${option}" ]] && is_parsing_option_value=true && break
                done

                # Remove ${word} from ${non_repeating_flags} or ${non_repeating_options} so it isn't offered again
                local not_found=true
                local -i index
                for index in "${!non_repeating_flags[@]}"; do
                    if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                        unset "non_repeating_flags[${index}]"
                        non_repeating_flags=("${non_repeating_flags[@]}")
                        not_found=false
                        break
                    fi
                done
                if "${not_found}"; then
                    for index in "${!non_repeating_flags[@]}"; do
                        if [[ "${non_repeating_flags[${index}]}" = "${word}" ]]; then
                            unset "non_repeating_flags[${index}]"
                            non_repeating_flags=("${non_repeating_flags[@]}")
                            break
                        fi
                    done
                fi
                unset "unparsed_words[${word_index}]"
                continue
                ;;
            esac
        fi

        # ${word} is neither a flag, nor an option, nor an option value
        if [[ "${positional_number}" -lt "${positional_count}" || "${positional_count}" -lt 0 ]]; then
            # ${word} is a positional
            ((positional_number++))
            unset "unparsed_words[${word_index}]"
        else
            if [[ -z "${word}" ]]; then
                # Could be completing a flag, option, or subcommand
                positional_number=-1
            else
                # ${word} is a subcommand or invalid, so stop processing this (sub)command
                positional_number=-2
            fi
            break
        fi
    done

    unparsed_words=("${unparsed_words[@]}")

    if\
        ! "${was_flag_option_terminator_seen}"\
        && ! "${is_parsing_option_value}"\
        && [[ ("${cur}" = -* && "${positional_number}" -ge 0) || "${positional_number}" -eq -1 ]]
    then
        COMPREPLY+=($(compgen -W "${repeating_flags[*]} ${non_repeating_flags[*]} ${repeating_options[*]} ${non_repeating_options[*]}" -- "${cur}"))
    fi
}

__rack-gateway-db_add_completions() {
    local completion
    while IFS='' read -r completion; do
        COMPREPLY+=("${completion}")
    done < <(IFS=$'\n' compgen "${@}" -- "${cur}")
}

__rack-gateway-db_custom_complete() {
    if [[ -n "${cur}" || -z ${COMP_WORDS[${COMP_CWORD}]} || "${COMP_LINE:${COMP_POINT}:1}" != ' ' ]]; then
        local -ar words=("${COMP_WORDS[@]}")
    else
        local -ar words=("${COMP_WORDS[@]::${COMP_CWORD}}" '' "${COMP_WORDS[@]:${COMP_CWORD}}")
    fi

    "${COMP_WORDS[0]}" "${@}" "${words[@]}"
}

_rack-gateway-db() {
    local state
    state="$(shopt -p;shopt -po)"
    trap "${state//$'\n'/;}" RETURN
    shopt -s extglob
    set +o history +o posix

    local -xr SAP_SHELL=bash
    local -x SAP_SHELL_VERSION
    SAP_SHELL_VERSION="$(IFS='.';printf %s "${BASH_VERSINFO[*]}")"
    local -r SAP_SHELL_VERSION

    local -r cur="${2}"
    local -r prev="${3}"

    local -i positional_number
    local -a unparsed_words=("${COMP_WORDS[@]:1:${COMP_CWORD}}")

    local -a repeating_flags=()
    local -a non_repeating_flags=(--version -h --help)
    local -a repeating_options=()
    local -a non_repeating_options=()
    __rack-gateway-db_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    migrate|status|reset-db|check|backup|verify|inspect|extract|rekey|copy|list|prune|report|restore|drill|diff|maint|help)
        # Offer subcommand argument completions
        "_rack-gateway-db_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'migrate status reset-db check backup verify inspect extract rekey copy list prune report restore drill diff maint help' -- "${cur}"))
        ;;
    esac
}

_rack-gateway-db_migrate() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --dry-run --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --migrations)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--migrations')
        return
        ;;
    esac
}

_rack-gateway-db_status() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --migrations)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--migrations')
        return
        ;;
    esac
}

_rack-gateway-db_reset-db() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --migrations)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--migrations')
        return
        ;;
    esac
}

_rack-gateway-db_check() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=(--notify --webhook --pushgateway)
    non_repeating_options=(--database-url --migrations --dir --s3-endpoint --max-backup-age --metrics-file)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--migrations')
        return
        ;;
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--notify')
        return
        ;;
    '--webhook')
        return
        ;;
    '--max-backup-age')
        return
        ;;
    '--metrics-file')
        return
        ;;
    '--pushgateway')
        return
        ;;
    esac
}

_rack-gateway-db_backup() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=(--copy-to --recipient --pushgateway --notify --webhook)
    non_repeating_options=(--database-url --dir --s3-endpoint --prefix --jobs --compressors --compress --compress-level --lock-timeout --object-lock-days --object-lock-mode --sse --sse-kms-key-id --stall-timeout --recipients-file --sign-key --metrics-file --max-shrink)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--prefix')
        return
        ;;
    '--jobs')
        return
        ;;
    '--compressors')
        return
        ;;
    '--compress')
        return
        ;;
    '--compress-level')
        return
        ;;
    '--lock-timeout')
        return
        ;;
    '--object-lock-days')
        return
        ;;
    '--object-lock-mode')
        return
        ;;
    '--sse')
        return
        ;;
    '--sse-kms-key-id')
        return
        ;;
    '--copy-to')
        return
        ;;
    '--stall-timeout')
        return
        ;;
    '--recipient')
        return
        ;;
    '--recipients-file')
        return
        ;;
    '--sign-key')
        return
        ;;
    '--metrics-file')
        return
        ;;
    '--pushgateway')
        return
        ;;
    '--notify')
        return
        ;;
    '--webhook')
        return
        ;;
    '--max-shrink')
        return
        ;;
    esac
}

_rack-gateway-db_verify() {
    repeating_flags=()
    non_repeating_flags=(--latest --json --verbose -v --version -h --help)
    repeating_options=(--pushgateway --notify --webhook)
    non_repeating_options=(--sample --seed --dir --s3-endpoint --identity --verify-key --metrics-file)
    __rack-gateway-db_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--sample')
        return
        ;;
    '--seed')
        return
        ;;
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--identity')
        return
        ;;
    '--verify-key')
        return
        ;;
    '--metrics-file')
        return
        ;;
    '--pushgateway')
        return
        ;;
    '--notify')
        return
        ;;
    '--webhook')
        return
        ;;
    esac
}

_rack-gateway-db_inspect() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--dir --s3-endpoint --identity --verify-key)
    __rack-gateway-db_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--identity')
        return
        ;;
    '--verify-key')
        return
        ;;
    esac
}

_rack-gateway-db_extract() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=(--table)
    non_repeating_options=(--format -o --output --dir --s3-endpoint --identity --verify-key)
    __rack-gateway-db_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--table')
        return
        ;;
    '--format')
        __rack-gateway-db_add_completions -W 'csv'$'\n''json'$'\n''copy'
        return
        ;;
    '-o'|'--output')
        return
        ;;
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--identity')
        return
        ;;
    '--verify-key')
        return
        ;;
    esac
}

_rack-gateway-db_rekey() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=(--recipient)
    non_repeating_options=(--to --dir --s3-endpoint --identity --verify-key --recipients-file --sign-key)
    __rack-gateway-db_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--to')
        return
        ;;
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--identity')
        return
        ;;
    '--verify-key')
        return
        ;;
    '--recipient')
        return
        ;;
    '--recipients-file')
        return
        ;;
    '--sign-key')
        return
        ;;
    esac
}

_rack-gateway-db_copy() {
    repeating_flags=()
    non_repeating_flags=(--latest --forget --json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--from --to --since --object-lock-days --object-lock-mode --sse --sse-kms-key-id --identity --verify-key --s3-endpoint)
    __rack-gateway-db_offer_flags_options -1

    # Offer option value completions
    case "${prev}" in
    '--from')
        return
        ;;
    '--to')
        return
        ;;
    '--since')
        return
        ;;
    '--object-lock-days')
        return
        ;;
    '--object-lock-mode')
        return
        ;;
    '--sse')
        return
        ;;
    '--sse-kms-key-id')
        return
        ;;
    '--identity')
        return
        ;;
    '--verify-key')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    esac
}

_rack-gateway-db_list() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--dir --s3-endpoint --identity)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--identity')
        return
        ;;
    esac
}

_rack-gateway-db_prune() {
    repeating_flags=()
    non_repeating_flags=(--delete-suspect --dry-run --json --verbose -v --version -h --help)
    repeating_options=(--pushgateway --notify --webhook)
    non_repeating_options=(--dir --s3-endpoint --keep-last --keep-daily --keep-weekly --keep-monthly --keep-yearly --keep-suspect-days --metrics-file)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--keep-last')
        return
        ;;
    '--keep-daily')
        return
        ;;
    '--keep-weekly')
        return
        ;;
    '--keep-monthly')
        return
        ;;
    '--keep-yearly')
        return
        ;;
    '--keep-suspect-days')
        return
        ;;
    '--metrics-file')
        return
        ;;
    '--pushgateway')
        return
        ;;
    '--notify')
        return
        ;;
    '--webhook')
        return
        ;;
    esac
}

_rack-gateway-db_report() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=(--dir --s3-endpoint --since --format -o --output --identity)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--since')
        return
        ;;
    '--format')
        __rack-gateway-db_add_completions -W 'md'$'\n''html'$'\n''json'
        return
        ;;
    '-o'|'--output')
        return
        ;;
    '--identity')
        return
        ;;
    esac
}

_rack-gateway-db_restore() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --latest --clean --yes --verify --create-missing-roles --allow-downgrade --dry-run --in-place --allow-autoscaled --skip-migrate --with-triggers --with-privileges --version -h --help)
    repeating_options=(--table --schema --pushgateway --notify --webhook)
    non_repeating_options=(--database-url --stall-timeout --dir --s3-endpoint --identity --verify-key --target-url --jobs --maintenance-work-mem --convox-app --service --rack --stop-timeout --scale-to --migrations --migrate-command --migrate-timeout --into-schema --copy-back-sql --metrics-file)
    __rack-gateway-db_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--stall-timeout')
        return
        ;;
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--identity')
        return
        ;;
    '--verify-key')
        return
        ;;
    '--target-url')
        return
        ;;
    '--jobs')
        return
        ;;
    '--maintenance-work-mem')
        return
        ;;
    '--convox-app')
        return
        ;;
    '--service')
        return
        ;;
    '--rack')
        return
        ;;
    '--stop-timeout')
        return
        ;;
    '--scale-to')
        return
        ;;
    '--migrations')
        return
        ;;
    '--migrate-command')
        return
        ;;
    '--migrate-timeout')
        return
        ;;
    '--table')
        return
        ;;
    '--schema')
        return
        ;;
    '--into-schema')
        return
        ;;
    '--copy-back-sql')
        return
        ;;
    '--metrics-file')
        return
        ;;
    '--pushgateway')
        return
        ;;
    '--notify')
        return
        ;;
    '--webhook')
        return
        ;;
    esac
}

_rack-gateway-db_drill() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --latest --keep --allow-downgrade --version -h --help)
    repeating_options=(--notify --webhook --pushgateway)
    non_repeating_options=(--database-url --dir --s3-endpoint --identity --verify-key --migrations --migrate-command --migrate-timeout --audit-anchors --existing-url --scratch-url --jobs --stall-timeout --metrics-file)
    __rack-gateway-db_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--identity')
        return
        ;;
    '--verify-key')
        return
        ;;
    '--migrations')
        return
        ;;
    '--migrate-command')
        return
        ;;
    '--migrate-timeout')
        return
        ;;
    '--audit-anchors')
        return
        ;;
    '--existing-url')
        return
        ;;
    '--scratch-url')
        return
        ;;
    '--jobs')
        return
        ;;
    '--stall-timeout')
        return
        ;;
    '--notify')
        return
        ;;
    '--webhook')
        return
        ;;
    '--metrics-file')
        return
        ;;
    '--pushgateway')
        return
        ;;
    esac
}

_rack-gateway-db_diff() {
    repeating_flags=()
    non_repeating_flags=(--rows --json --verbose -v --version -h --help)
    repeating_options=(--table)
    non_repeating_options=(--against --limit --database-url --dir --s3-endpoint --identity --verify-key --jobs)
    __rack-gateway-db_offer_flags_options 1

    # Offer option value completions
    case "${prev}" in
    '--against')
        return
        ;;
    '--table')
        return
        ;;
    '--limit')
        return
        ;;
    '--database-url')
        return
        ;;
    '--dir')
        return
        ;;
    '--s3-endpoint')
        return
        ;;
    '--identity')
        return
        ;;
    '--verify-key')
        return
        ;;
    '--jobs')
        return
        ;;
    esac
}

_rack-gateway-db_maint() {
    repeating_flags=()
    non_repeating_flags=(--version -h --help)
    repeating_options=()
    non_repeating_options=()
    __rack-gateway-db_offer_flags_options 0

    # Offer subcommand / subcommand argument completions
    local -r subcommand="${unparsed_words[0]}"
    unset 'unparsed_words[0]'
    unparsed_words=("${unparsed_words[@]}")
    case "${subcommand}" in
    sessions-cleanup|audit-volume|audit-prune|vacuum|connections|slow-queries|size)
        # Offer subcommand argument completions
        "_rack-gateway-db_maint_${subcommand}"
        ;;
    *)
        # Offer subcommand completions
        COMPREPLY+=($(compgen -W 'sessions-cleanup audit-volume audit-prune vacuum connections slow-queries size' -- "${cur}"))
        ;;
    esac
}

_rack-gateway-db_maint_sessions-cleanup() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --dry-run --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --older-than)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--older-than')
        return
        ;;
    esac
}

_rack-gateway-db_maint_audit-volume() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --days)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--days')
        return
        ;;
    esac
}

_rack-gateway-db_maint_audit-prune() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --dry-run --yes --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --older-than)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--older-than')
        return
        ;;
    esac
}

_rack-gateway-db_maint_vacuum() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --analyze --full --yes --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --table)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--table')
        return
        ;;
    esac
}

_rack-gateway-db_maint_connections() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    esac
}

_rack-gateway-db_maint_slow-queries() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url --min-duration --cancel)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    '--min-duration')
        return
        ;;
    '--cancel')
        return
        ;;
    esac
}

_rack-gateway-db_maint_size() {
    repeating_flags=()
    non_repeating_flags=(--json --verbose -v --version -h --help)
    repeating_options=()
    non_repeating_options=(--database-url)
    __rack-gateway-db_offer_flags_options 0

    # Offer option value completions
    case "${prev}" in
    '--database-url')
        return
        ;;
    esac
}

_rack-gateway-db_help() {
    repeating_flags=()
    non_repeating_flags=(--version)
    repeating_options=()
    non_repeating_options=()
    __rack-gateway-db_offer_flags_options -1
}

complete -o filenames -F _rack-gateway-db rack-gateway-db
