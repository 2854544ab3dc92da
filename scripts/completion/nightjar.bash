# bash completion for nightjar-backup and nightjar-restore.
# Flags are read from the binary's own --help (CLI11), so the completion never falls behind the CLI.

_nightjar_flags() {
    # $1: the command words before the current one (binary and subcommands)
    "$@" --help 2>/dev/null | grep -oE -- '(^|[ ,])--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' ,' | sort -u
}

# Space-separated, so a word can be looked up as " $w ".
_nightjar_subcommands() {
    "$@" --help 2>/dev/null | awk '/^Subcommands:/ {on = 1; next} on && /^ +[a-z]/ {print $1} on && /^$/ {on = 0}' | tr '\n' ' '
}

_nightjar() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    case "$prev" in
        --config | --log-file | --target-dir | --redis-rdb-path | --backup-dir | --identity | --recipients-file | -o | --output)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        --log-format)
            COMPREPLY=($(compgen -W "text json" -- "$cur"))
            return
            ;;
        --redis-mode)
            COMPREPLY=($(compgen -W "live file" -- "$cur"))
            return
            ;;
        --cdc)
            COMPREPLY=($(compgen -W "auto replay reanchor none" -- "$cur"))
            return
            ;;
    esac
    # The command so far: the binary and the subcommands typed before the current word.
    local -a cmd=("${COMP_WORDS[0]}")
    local i w subs
    subs=$(_nightjar_subcommands "${cmd[@]}")
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ " $subs " == *" $w "* ]]; then
            cmd+=("$w")
            subs=$(_nightjar_subcommands "${cmd[@]}")
        fi
    done
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_nightjar_flags "${cmd[@]}")" -- "$cur"))
    else
        local words="$subs"
        [ "${cmd[0]##*/}" = nightjar-restore ] && [ ${#cmd[@]} -eq 1 ] && words+=" latest"
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}

complete -F _nightjar nightjar-backup nightjar-restore
