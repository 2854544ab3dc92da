#!/usr/bin/env bash
# The units run sandboxed as the nightjar user: `systemd-analyze security` scores the backup and watchdog
# units below 4.0, and the oneshot backup unit has no [Install] section that would run it at boot.
# Usage: units_security_test.sh SOURCE_DIR
set -euo pipefail
src=$1
. "$src/tests/package/lib.sh"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is not installed"
for unit in nightjar-backup.service nightjar-cdc-watch.service nightjar-drill.service; do
  file=$src/scripts/systemd/$unit
  grep -qx "User=nightjar" "$file" || fail "$unit does not run as the nightjar user"
  score=$(systemd-analyze security --offline=yes "$file" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
  [ -n "$score" ] || fail "no security score for $unit"
  echo "$unit: exposure $score"
  awk -v s="$score" 'BEGIN { exit !(s < 4.0) }' || fail "$unit scores $score, not below 4.0"
done
grep -q '^\[Install\]' "$src/scripts/systemd/nightjar-backup.service" && fail "the oneshot backup unit has an [Install] section"
echo "1 passed, 0 failed"
