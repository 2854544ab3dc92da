#!/usr/bin/env bash
# Sources the bash completion and completes a few words against the built binaries.
# Usage: completion_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
. "$src/tests/package/lib.sh"
complete_words() {  # complete_words WORD... : the completions of the last word
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _nightjar; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$src/scripts/completion/nightjar.bash" "$@"
}
backup=$build/backup/nightjar-backup restore=$build/restore/nightjar-restore
expect() {  # expect WANTED WORD...
  local want=$1; shift
  complete_words "$@" | grep -qxF -- "$want" || fail "completing '$*' did not offer $want (got: $(complete_words "$@" | tr '\n' ' '))"
}
expect --dry-run "$backup" --dry
expect --prune-only "$backup" --prune-o
expect cdc "$backup" c
expect status "$backup" cdc st
expect --window "$backup" cdc pause --wi
expect encryption "$backup" encr
expect add-recipient "$backup" encryption add
expect --recipients-file "$backup" encryption add-recipient --recipients-f
expect --redis-mode "$restore" --redis-m
expect latest "$restore" la
expect json "$restore" --log-format j
[ -z "$(complete_words "$backup" --no-such-fla)" ] || fail "an unknown prefix was completed"
echo "1 passed, 0 failed"
