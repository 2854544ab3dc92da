#!/usr/bin/env bash
# Every flag that --help lists appears in the generated man page, and the pages render without warnings.
# Usage: man_pages_test.sh BUILD_DIR
set -euo pipefail
build=$1
. "$(dirname "$0")/lib.sh"
checked=0
for bin in nightjar-backup nightjar-restore; do
  page=$build/scripts/man/$bin.1.gz
  [ -s "$page" ] || fail "no man page $page"
  MANWIDTH=200 man -l "$page" 2>"$tmp/warn" | col -b > "$tmp/$bin.txt"
  [ -s "$tmp/warn" ] && fail "$bin.1 renders with warnings: $(cat "$tmp/warn")"
  flags=$("$build/$( [ $bin = nightjar-backup ] && echo backup || echo restore)/$bin" --help |
          grep -oE -- '(^|[ ,])--[A-Za-z][A-Za-z0-9-]*' | tr -d ' ,' | sort -u)
  [ -n "$flags" ] || fail "$bin --help lists no flags"
  for f in $flags; do
    grep -qF -- "$f" "$tmp/$bin.txt" || fail "$bin(1) does not mention $f"
    checked=$((checked + 1))
  done
  for section in "EXIT STATUS" "SEE ALSO"; do grep -q "^$section" "$tmp/$bin.txt" || fail "$bin(1) has no $section"; done
done
MANWIDTH=200 man -l "$build/scripts/man/nightjar.json.5.gz" 2>"$tmp/warn" | col -b > "$tmp/json.txt"
[ -s "$tmp/warn" ] && fail "nightjar.json.5 renders with warnings: $(cat "$tmp/warn")"
for key in backup_dir compression.level postgres redis retention monitoring cdc hooks; do
  grep -q "$key" "$tmp/json.txt" || fail "nightjar.json(5) does not mention $key"
done
echo "man pages: $checked flags found in the pages"
echo "1 passed, 0 failed"
