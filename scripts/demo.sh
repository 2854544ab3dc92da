#!/usr/bin/env bash
# The first README command: installs, builds, and runs the main job on an embedded default: a backup of the
# sample data, verified with a dry run, restored into a scratch directory, and compared with the source.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
bin=${NIGHTJAR_BUILD_DIR:-$root/build}
# shellcheck source=lib/services.sh
. "$root/scripts/lib/services.sh"
work=$(mktemp -d /tmp/nightjar-demo-XXXXXX)
cleanup() { services_stop; rm -rf "$work"; }
trap cleanup EXIT
services_start

step() { printf '\n== %s\n' "$*"; }
# git keeps no permission bits but the executable one: give the sample secret its real mode.
chmod 600 "$root/samples/config-tree/app/app.env"
redis_port=$NIGHTJAR_TEST_REDIS_PORT
redis_target=$NIGHTJAR_TEST_REDIS_TARGET_PORT
step "seed the throwaway Redis (127.0.0.1:$redis_port) with samples/redis/seed.txt"
redis-cli -p "$redis_port" < "$root/samples/redis/seed.txt" >/dev/null
redis-cli -p "$redis_port" info keyspace | grep '^db'
cat > "$work/nightjar.json" <<JSON
{
  "backup_dir": "$work/backups",
  "files": { "paths": ["$root/samples/config-tree"], "exclude": ["*.swp"] },
  "redis": { "host": "127.0.0.1", "port": $redis_port }
}
JSON

step "dry run: validate the config, the sources and the backup dir (writes nothing)"
"$bin/backup/nightjar-backup" --config "$work/nightjar.json" --dry-run

step "backup"
"$bin/backup/nightjar-backup" --config "$work/nightjar.json"

step "list backups"
"$bin/restore/nightjar-restore" --list --backup-dir "$work/backups"

step "verify without touching anything (restore --dry-run)"
"$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" --dry-run --target-dir "$work/restored" \
  --redis-port "$redis_target"

step "restore: files into a scratch directory, Redis live into a second throwaway server (127.0.0.1:$redis_target)"
"$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" --target-dir "$work/restored" \
  --redis-port "$redis_target"

step "restore Redis as a file for a stopped server (file mode)"
"$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" --skip-config --redis-rdb-path "$work/dump.rdb"

step "compare restored files with the source"
restored="$work/restored$root/samples/config-tree"
diff -r --no-dereference --exclude='*.swp' "$root/samples/config-tree" "$restored"
echo "files: identical (content, symlinks)"
[ "$(stat -c %a "$restored/app/app.env")" = "600" ] || { echo "demo: app.env lost its mode" >&2; exit 1; }
echo "files: modes preserved (app.env is 600)"

step "compare the restored Redis with the source"
for db in 0 1; do
  a=$(redis-cli -p "$redis_port" -n "$db" dbsize) b=$(redis-cli -p "$redis_target" -n "$db" dbsize)
  echo "redis db$db: source $a keys, restored $b keys"
  [ "$a" = "$b" ]
done
src_digest=$(redis-cli -p "$redis_port" debug digest) dst_digest=$(redis-cli -p "$redis_target" debug digest)
echo "redis DEBUG DIGEST: source $src_digest, restored $dst_digest"
[ "$src_digest" = "$dst_digest" ] && echo "redis: identical"
echo "redis file mode: $(redis-check-rdb "$work/dump.rdb" | grep -a "looks OK")"

step "demo complete"
