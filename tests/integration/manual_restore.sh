#!/usr/bin/env bash
# The README's "Restoring without nightjar", run as written: a real backup made by nightjar-backup (config files,
# one PostgreSQL database, Redis) is verified with sha256sum and jq, and restored with tar, zstd, pg_restore,
# redis-check-rdb and a stock redis-server; each result is compared with its source.
# Usage: manual_restore.sh NIGHTJAR-BACKUP-BINARY   (needs the NIGHTJAR_TEST_PG* servers of scripts/lib/services.sh)
set -euo pipefail

backup_bin=${1:?usage: manual_restore.sh NIGHTJAR-BACKUP-BINARY}
for v in NIGHTJAR_TEST_PGHOST NIGHTJAR_TEST_PGPORT NIGHTJAR_TEST_PGUSER NIGHTJAR_TEST_PGPASSWORD NIGHTJAR_TEST_PG_BINDIR; do
  [ -n "${!v:-}" ] || { echo "manual_restore: $v is not set: start the servers with scripts/lib/services.sh" >&2; exit 1; }
done
export PATH="$NIGHTJAR_TEST_PG_BINDIR:$PATH" PGHOST=$NIGHTJAR_TEST_PGHOST PGPORT=$NIGHTJAR_TEST_PGPORT
export PGUSER=$NIGHTJAR_TEST_PGUSER PGPASSWORD=$NIGHTJAR_TEST_PGPASSWORD

work=$(mktemp -d /tmp/nightjar-manual-XXXXXX)
db="manual_$$"
redis_pids=()
cleanup() {
  for p in "${redis_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ${db}_restored WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "manual_restore: FAIL: $*" >&2; exit 1; }
# shellcheck source=../../scripts/lib/ports.sh
. "$(dirname "$0")/../../scripts/lib/ports.sh"
start_redis() {  # start_redis PORT DIR DBFILENAME: a stock server, no persistence of its own
  redis-server --port "$1" --bind 127.0.0.1 --dir "$2" --dbfilename "$3" --save "" --appendonly no \
    --enable-debug-command local --daemonize no >"$2/redis-$1.log" 2>&1 &
  redis_pids+=($!)
  for _ in $(seq 1 100); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
  fail "redis-server on port $1 did not start: $(cat "$2/redis-$1.log")"
}

# --- The sources -------------------------------------------------------------------------------------------
mkdir -p "$work/src/etc/app/conf.d" "$work/redis-src"
printf 'listen = 8080\n' >"$work/src/etc/app/app.conf"
printf 'secret = s3\n' >"$work/src/etc/app/conf.d/secret.conf"
chmod 0600 "$work/src/etc/app/conf.d/secret.conf"
ln -s app.conf "$work/src/etc/app/current.conf"

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "
  CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2));
  INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, 5000) g;
  CREATE INDEX items_name ON items (name);
  CREATE VIEW cheap AS SELECT * FROM items WHERE price < 10;"

redis_src=$(free_port)
start_redis "$redis_src" "$work/redis-src" dump.rdb
for i in $(seq 1 200); do redis-cli -p "$redis_src" SET "key:$i" "value $i" >/dev/null; done
redis-cli -p "$redis_src" HSET user:1 name alice role admin >/dev/null
redis-cli -p "$redis_src" RPUSH queue a b c >/dev/null
redis-cli -p "$redis_src" -n 2 SADD tags x y z >/dev/null
redis_digest=$(redis-cli -p "$redis_src" DEBUG DIGEST)

# --- A real backup by nightjar-backup ----------------------------------------------------------------------
cat >"$work/nightjar.json" <<EOF
{
  "backup_dir": "$work/backups",
  "files": {"paths": ["$work/src/etc/app"]},
  "postgres": {"host": "$PGHOST", "port": $PGPORT, "user": "$PGUSER", "databases": ["$db"]},
  "redis": {"port": $redis_src}
}
EOF
"$backup_bin" --config "$work/nightjar.json" -q || fail "nightjar-backup exited $?"

# --- The README's recipe, command for command --------------------------------------------------------------
cd "$work/backups"
manifest=$(ls manifest_*.json | sort | tail -n 1)
jq -r '.status' "$manifest" | grep -qx complete || fail "the backup is not complete"
# 1. Every artifact's stored bytes against the manifest.
jq -r '.artifacts[] | "\(.sha256)  \(.path)"' "$manifest" | sha256sum -c - || fail "sha256sum -c"
# ... and the decompressed content too.
jq -r '.artifacts[] | "\(.content_sha256) \(.path)"' "$manifest" | while read -r sum path; do
  [ "$(zstd -dc "$path" | sha256sum | cut -d' ' -f1)" = "$sum" ] || fail "content digest of $path"
done
artifact() { jq -r --arg c "$1" '.artifacts[] | select(.component == $c) | .path' "$manifest"; }

# 2. Config files: tar keeps modes, owners and symlinks; paths are stored without the leading /.
mkdir -p "$work/restored-files"
tar --zstd -xpf "$(artifact files)" -C "$work/restored-files"
diff -r --no-dereference "$work/src/etc/app" "$work/restored-files/${work#/}/src/etc/app" || fail "restored files differ"
[ "$(stat -c %a "$work/restored-files/${work#/}/src/etc/app/conf.d/secret.conf")" = 600 ] || fail "file mode not kept"
[ "$(readlink "$work/restored-files/${work#/}/src/etc/app/current.conf")" = app.conf ] || fail "symlink not kept"

# 3. PostgreSQL: a custom-format pg_dump archive, restored by stock pg_restore into a new database.
pg_artifact=$(jq -r '.artifacts[] | select(.component == "postgres" and .format == "pg_dump-custom") | .path' "$manifest")
createdb "${db}_restored"
zstd -dc "$pg_artifact" | pg_restore --no-owner -d "${db}_restored" || fail "pg_restore"
for q in "SELECT count(*), sum(price), md5(string_agg(id || name, ',' ORDER BY id)) FROM items" \
         "SELECT count(*) FROM cheap" "SELECT indexname FROM pg_indexes WHERE tablename = 'items' ORDER BY 1"; do
  [ "$(psql -X -A -t -d "$db" -c "$q")" = "$(psql -X -A -t -d "${db}_restored" -c "$q")" ] || fail "postgres: $q differs"
done

# 4. Redis: an RDB file; check it, then start a stock server on it.
mkdir -p "$work/redis-restored"
zstd -dc "$(artifact redis)" >"$work/redis-restored/dump.rdb"
redis-check-rdb "$work/redis-restored/dump.rdb" >/dev/null || fail "redis-check-rdb"
redis_restored=$(free_port)
start_redis "$redis_restored" "$work/redis-restored" dump.rdb
[ "$(redis-cli -p "$redis_restored" DEBUG DIGEST)" = "$redis_digest" ] || fail "redis: the restored server's digest differs"
[ "$(redis-cli -p "$redis_restored" -n 2 SCARD tags)" = 3 ] || fail "redis: db 2"

echo "manual_restore: ok: files, postgres and redis restored by stock tools match their sources"
