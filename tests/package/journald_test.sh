#!/usr/bin/env bash
# Under systemd, stderr is the journal (JOURNAL_STREAM names its device:inode): lines then carry the syslog
# priority instead of a timestamp, and --log-format json lines carry structured fields. A file stands in for
# the journal's stream: JOURNAL_STREAM is set to that file's device and inode, which is what systemd does.
# Usage: journald_test.sh BUILD_DIR
set -euo pipefail
build=$1
. "$(dirname "$0")/lib.sh"
passed=0
for bin in "$build/backup/nightjar-backup" "$build/restore/nightjar-restore"; do
  name=$(basename "$bin")
  args=""
  [ "$name" = nightjar-restore ] && args="--list"
  err="$tmp/$name.err"
  : > "$err"
  stream=$(stat -c '%d:%i' "$err")
  # An unreadable config: one error line, exit 2.
  set +e
  JOURNAL_STREAM=$stream "$bin" --config "$tmp/missing.json" $args 2>>"$err" >/dev/null
  rc=$?
  set -e
  [ "$rc" = 2 ] || fail "$name exited $rc on a missing config, expected 2"
  line=$(head -n 1 "$err")
  [[ $line == "<3>config: cannot read $tmp/missing.json"* ]] || fail "$name journal line: $line"
  # The same with the stream of another file: not the journal, so a timestamped line.
  : > "$err"
  set +e
  JOURNAL_STREAM=$(stat -c "%d:%i" "$tmp") "$bin" --config "$tmp/missing.json" $args 2>>"$err" >/dev/null
  set -e
  line=$(head -n 1 "$err")
  [[ $line =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\ ERROR\ config: ]] || fail "$name non-journal line: $line"
  # JSON lines in the journal: the priority, then an object with the error's kind and no time field.
  : > "$err"
  set +e
  JOURNAL_STREAM=$stream "$bin" --config "$tmp/missing.json" $args --log-format json 2>>"$err" >/dev/null
  set -e
  line=$(head -n 1 "$err")
  [[ $line == "<3>{"* ]] || fail "$name journal JSON line: $line"
  python3 - "${line#<3>}" <<'PY' || fail "$name journal JSON fields: $line"
import json, sys
j = json.loads(sys.argv[1])
assert j["level"] == "ERROR", j
assert j["error_kind"] == "config", j
assert "time" not in j, j
assert j["message"].startswith("config: cannot read"), j
PY
  passed=$((passed + 3))
done
echo "$passed passed, 0 failed"
