#!/usr/bin/env bash
# The first README command: installs, builds, and runs the main job on an embedded default: throwaway PostgreSQL
# and Redis servers seeded with sample data plus a sample config tree, backed up, verified with a dry run,
# restored (files to a scratch dir, Redis into a second server and as a file, the database under a new name),
# and compared with the source.
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
# PostgreSQL: the sample database in the throwaway server; the password reaches nightjar through PGPASSWORD only.
export PGPASSWORD=$NIGHTJAR_TEST_PGPASSWORD
pg() { "$NIGHTJAR_TEST_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$NIGHTJAR_TEST_PGHOST" -p "$NIGHTJAR_TEST_PGPORT" \
  -U "$NIGHTJAR_TEST_PGUSER" "$@"; }
pg -d postgres -c "CREATE DATABASE shop"
pg -d shop -f "$root/samples/postgres/seed.sql"
cat > "$work/nightjar.json" <<JSON
{
  "backup_dir": "$work/backups",
  "files": { "paths": ["$root/samples/config-tree"], "exclude": ["*.swp"] },
  "redis": { "host": "127.0.0.1", "port": $redis_port },
  "postgres": { "host": "$NIGHTJAR_TEST_PGHOST", "port": $NIGHTJAR_TEST_PGPORT, "user": "$NIGHTJAR_TEST_PGUSER",
                "databases": ["shop"], "globals": true }
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
  --redis-port "$redis_target" --db-name shop=shop_restored

step "restore: files into a scratch directory, Redis live into a second throwaway server (127.0.0.1:$redis_target), database shop into a new database shop_restored"
"$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" --target-dir "$work/restored" \
  --redis-port "$redis_target" --db-name shop=shop_restored

step "restore Redis as a file for a stopped server (file mode)"
"$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" --skip-config --skip-db --redis-rdb-path "$work/dump.rdb"

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

step "compare the restored database with the source (row counts per table)"
counts() { pg -d "$1" -A -t -c "SELECT format('%s.%s %s', schemaname, relname, n) FROM (SELECT schemaname, relname,
  (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', schemaname, relname), false, true,
  '')))[1]::text AS n FROM pg_stat_user_tables) t ORDER BY 1"; }
diff <(counts shop) <(counts shop_restored)
counts shop_restored | sed 's/^/postgres: shop_restored /'
echo "postgres: every table of shop_restored has the row count of shop"

# Offsite: the same sources backed up into the throwaway Ceph radosgw (services_start runs scripts/lib/ceph.sh), then
# listed, proven and restored from the bucket with no local copy.
cat > "$work/nightjar-s3.json" <<JSON
{
  "repository": { "type": "s3", "endpoint": "$NIGHTJAR_TEST_S3_ENDPOINT", "region": "$NIGHTJAR_TEST_S3_REGION",
                  "bucket": "$NIGHTJAR_TEST_S3_BUCKET", "prefix": "demo/",
                  "access_key_id": "$NIGHTJAR_TEST_S3_ACCESS_KEY_ID",
                  "secret_access_key_file": "$NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE" },
  "files": { "paths": ["$root/samples/config-tree"], "exclude": ["*.swp"] },
  "redis": { "host": "127.0.0.1", "port": $redis_port },
  "postgres": { "host": "$NIGHTJAR_TEST_PGHOST", "port": $NIGHTJAR_TEST_PGPORT, "user": "$NIGHTJAR_TEST_PGUSER",
                "databases": ["shop"] }
}
JSON
step "offsite: back up into s3://$NIGHTJAR_TEST_S3_BUCKET/demo on the local Ceph radosgw"
"$bin/backup/nightjar-backup" --config "$work/nightjar-s3.json"
step "offsite: list, dry run and restore from the bucket"
"$bin/restore/nightjar-restore" --list --config "$work/nightjar-s3.json"
"$bin/restore/nightjar-restore" latest --config "$work/nightjar-s3.json" --dry-run --target-dir "$work/restored-s3" \
  --redis-rdb-path "$work/dump-s3.rdb"
"$bin/restore/nightjar-restore" latest --config "$work/nightjar-s3.json" --target-dir "$work/restored-s3" \
  --redis-rdb-path "$work/dump-s3.rdb" --db-name shop=shop_s3
diff -r --no-dereference --exclude='*.swp' "$root/samples/config-tree" "$work/restored-s3$root/samples/config-tree"
echo "offsite files: identical"
diff <(counts shop) <(counts shop_s3)
echo "offsite postgres: every table of shop_s3 has the row count of shop"
step "restore drill: restore the backup into throwaway servers it starts, compare with the expectations recorded at capture, keep the evidence"
"$bin/restore/nightjar-restore" drill latest --backup-dir "$work/backups"
"$bin/restore/nightjar-restore" --list --backup-dir "$work/backups"

step "demo complete"
