#!/usr/bin/env bash
# Redis capture and restore, nightjar against the standard tools, on ~1,000,000 mixed keys in one run:
#   capture: nightjar-backup (SYNC + CRC64 check + sha256 + zstd)  vs  redis-cli --rdb alone,
#            and redis-cli --rdb + zstd + sha256sum (the same job done with the standard tools)
#   restore: nightjar-restore --redis-mode live into an empty server (DUMP/RESTORE), with --redis-flush into a
#            server holding keys (by replication), and with --redis-merge into a server holding other keys
#            (DUMP/RESTORE, pipelined)  vs  a fresh redis-server started on the file
# Goals (issue 19): --redis-flush <= 1.5x the fresh server, merge <= 4x.
# Prints wall times, ratios and peak RSS (/usr/bin/time -v). Everything lives in a temp dir removed at the end.
# Usage: bench/redis_bench.sh [keys]     (needs a build in build/ or $NIGHTJAR_BUILD_DIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${NIGHTJAR_BUILD_DIR:-$root/build}
keys=${1:-1000000}
work=$(mktemp -d /tmp/nightjar-redis-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=../scripts/lib/ports.sh
. "$root/scripts/lib/ports.sh"
# start_server NAME PORT [extra args]: a throwaway redis-server in $work/NAME
start_server() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$work/$name"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/$name" \
    --logfile "$work/$name/redis.log" --enable-debug-command local "$@" &
  pids+=($!)
  until [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ]; do sleep 0.05; done
}
now() { date +%s.%N; }
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }
peak_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

src=$(free_port)
start_server source "$src"
echo "== seeding $keys mixed keys (70% strings, 10% hashes, 10% lists, 5% sets, 5% sorted sets; 2% of the non-strings with a TTL)"
strings=$((keys * 70 / 100)) rest=$((keys - keys * 70 / 100))
redis-cli -p "$src" debug populate "$strings" str 48 >/dev/null
python3 - "$rest" <<'PY' | redis-cli -p "$src" --pipe >/dev/null
import sys
n = int(sys.argv[1]); out = sys.stdout
def cmd(*a):
    out.write("*%d\r\n" % len(a))
    for x in a:
        x = str(x); out.write("$%d\r\n%s\r\n" % (len(x.encode()), x))
for i in range(n):
    k = i % 6
    if k < 2: cmd("HSET", f"h:{i}", "name", f"user{i}", "email", f"u{i}@example.com", "visits", i)
    elif k < 4: cmd("RPUSH", f"l:{i}", *[f"item{j}" for j in range(5)])
    elif k == 4: cmd("SADD", f"s:{i}", *[f"m{j}" for j in range(4)])
    else: cmd("ZADD", f"z:{i}", *[x for j in range(4) for x in (j * 1.5, f"z{j}")])
    if i % 50 == 0: cmd("PEXPIRE", f"{'h' if k < 2 else 'l' if k < 4 else 's' if k == 4 else 'z'}:{i}", 86400000)
PY
redis-cli -p "$src" info keyspace | grep '^db'
echo "used_memory: $(redis-cli -p "$src" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"

cat > "$work/nightjar.json" <<JSON
{ "backup_dir": "$work/backups", "redis": { "port": $src } }
JSON

echo "== capture: redis-cli --rdb alone"
t0=$(now); /usr/bin/time -v -o "$work/t-cli" redis-cli -p "$src" --rdb "$work/cli.rdb" >/dev/null 2>&1; t1=$(now)
cli=$(python3 -c "print($t1-$t0)")
rdb_size=$(stat -c %s "$work/cli.rdb")
echo "== capture: redis-cli --rdb + zstd -3 -T0 + sha256sum (RDB and .zst)"
rm -f "$work/cli.rdb"
t0=$(now)
redis-cli -p "$src" --rdb "$work/cli.rdb" >/dev/null 2>&1
sha256sum "$work/cli.rdb" >/dev/null
zstd -q -3 -T0 "$work/cli.rdb" -o "$work/cli.rdb.zst"
sha256sum "$work/cli.rdb.zst" >/dev/null
t1=$(now)
cli_job=$(python3 -c "print($t1-$t0)")
rm -f "$work/cli.rdb" "$work/cli.rdb.zst"
echo "== capture: nightjar-backup"
t0=$(now); /usr/bin/time -v -o "$work/t-nj" "$bin/backup/nightjar-backup" -c "$work/nightjar.json" -q; t1=$(now)
nj=$(python3 -c "print($t1-$t0)")
stored=$(du -b "$work"/backups/*/redis.rdb.zst | awk '{print $1}')

tgt=$(free_port)
start_server target "$tgt"
echo "== restore: nightjar-restore --redis-mode live into an empty server"
t0=$(now)
/usr/bin/time -v -o "$work/t-nj-restore" "$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" \
  --redis-port "$tgt" -q
t1=$(now)
nj_restore=$(python3 -c "print($t1-$t0)")
[ "$(redis-cli -p "$src" debug digest)" = "$(redis-cli -p "$tgt" debug digest)" ] && echo "digest: target equals source"

# live_restore NAME FLAG: a target holding 10,000 keys of its own, restored into with FLAG
live_restore() {
  local name=$1 flag=$2 port
  port=$(free_port)
  start_server "$name" "$port"
  redis-cli -p "$port" debug populate 10000 theirs 32 >/dev/null
  t0=$(now)
  /usr/bin/time -v -o "$work/t-$name" "$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" \
    --redis-port "$port" "$flag" 2>"$work/err-$name" >/dev/null || { cat "$work/err-$name" >&2; exit 1; }
  t1=$(now)
  eval "t_$name=$(python3 -c "print($t1-$t0)")"
  grep -E 'by replication|key by key' "$work/err-$name" | sed 's/^/  /' || true
  if [ "$flag" = --redis-flush ]; then
    [ "$(redis-cli -p "$src" debug digest)" = "$(redis-cli -p "$port" debug digest)" ] && echo "digest: target equals source"
  else
    redis-cli -p "$port" info keyspace | grep '^db' | sed 's/^/  after merge: /'
  fi
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
}
echo "== restore: nightjar-restore --redis-flush into a server holding 10,000 keys"
live_restore flush --redis-flush
echo "== restore: nightjar-restore --redis-merge into a server holding 10,000 other keys"
live_restore merge --redis-merge

echo "== restore: a fresh redis-server started on the file (until it answers and has loaded)"
"$bin/restore/nightjar-restore" latest --backup-dir "$work/backups" --redis-rdb-path "$work/fresh.rdb" -q
mkdir -p "$work/fresh"
mv "$work/fresh.rdb" "$work/fresh/dump.rdb"
fport=$(free_port)
t0=$(now)
redis-server --port "$fport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/fresh" \
  --logfile "$work/fresh/redis.log" --enable-debug-command local &
pids+=($!)
until [ "$(redis-cli -p "$fport" ping 2>/dev/null)" = "PONG" ]; do sleep 0.02; done
t1=$(now)
fresh=$(python3 -c "print($t1-$t0)")
[ "$(redis-cli -p "$src" debug digest)" = "$(redis-cli -p "$fport" debug digest)" ] && echo "digest: fresh server equals source"

echo
echo "== results ($keys keys, RDB $(numfmt --to=iec "$rdb_size"), stored $(numfmt --to=iec "$stored") zstd)"
printf '%-52s %8.2f s  peak %6d KB\n' "redis-cli --rdb" "$cli" "$(peak_kb "$work/t-cli")"
printf '%-52s %8.2f s\n' "redis-cli --rdb + sha256sum + zstd -3 -T0 + sha256sum" "$cli_job"
printf '%-52s %8.2f s  peak %6d KB\n' "nightjar-backup (redis)" "$nj" "$(peak_kb "$work/t-nj")"
printf '%-52s %8.2f s  peak %6d KB (incl. its temporary redis-server)\n' "nightjar-restore live" "$nj_restore" \
  "$(peak_kb "$work/t-nj-restore")"
printf '%-52s %8.2f s  peak %6d KB\n' "nightjar-restore live --redis-flush (replication)" "$t_flush" \
  "$(peak_kb "$work/t-flush")"
printf '%-52s %8.2f s  peak %6d KB\n' "nightjar-restore live --redis-merge" "$t_merge" "$(peak_kb "$work/t-merge")"
printf '%-52s %8.2f s\n' "fresh redis-server on the file" "$fresh"
echo "ratio capture nightjar / redis-cli --rdb:          $(ratio "$nj" "$cli")"
echo "ratio capture nightjar / redis-cli+zstd+sha256sum: $(ratio "$nj" "$cli_job")"
echo "ratio restore nightjar live / fresh server:        $(ratio "$nj_restore" "$fresh")"
echo "ratio restore --redis-flush / fresh server:        $(ratio "$t_flush" "$fresh")  (goal <= 1.5)"
echo "ratio restore --redis-merge / fresh server:        $(ratio "$t_merge" "$fresh")  (goal <= 4)"
