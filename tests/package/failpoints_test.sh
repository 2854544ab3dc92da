#!/usr/bin/env bash
# The shipped binaries carry no test hook: NIGHTJAR_FAILPOINT has no effect on them, while the test copies
# (tests/armed/) die at the named point. A real files-only backup is the probe.
# Usage: failpoints_test.sh BUILD_DIR
set -euo pipefail
build=$1
. "$(dirname "$0")/lib.sh"
grep -qa NIGHTJAR_FAILPOINT "$build/backup/nightjar-backup" && fail "the shipped nightjar-backup reads NIGHTJAR_FAILPOINT"
grep -qa NIGHTJAR_FAILPOINT "$build/restore/nightjar-restore" && fail "the shipped nightjar-restore reads NIGHTJAR_FAILPOINT"
grep -qa NIGHTJAR_FAILPOINT "$build/tests/armed/nightjar-backup" || fail "the armed copy has no fail points"
mkdir -p "$tmp/src"
echo hello > "$tmp/src/a.conf"
run() {  # run BINARY BACKUP_DIR: exit code of a backup with the publish fail point armed
  printf '{"backup_dir": "%s", "files": {"paths": ["%s"]}}\n' "$2" "$tmp/src" > "$tmp/c.json"
  set +e
  NIGHTJAR_FAILPOINT=publish:before-manifest-rename "$1" --config "$tmp/c.json" -q >/dev/null 2>&1
  echo $?
  set -e
}
rc=$(run "$build/backup/nightjar-backup" "$tmp/shipped")
[ "$rc" = 0 ] || fail "the shipped binary exited $rc with a fail point named"
ls "$tmp/shipped"/manifest_*.json >/dev/null || fail "the shipped binary published nothing"
rc=$(run "$build/tests/armed/nightjar-backup" "$tmp/armed")
[ "$rc" = 137 ] || fail "the armed binary exited $rc, expected 137 (SIGKILL at the fail point)"
echo "1 passed, 0 failed"
