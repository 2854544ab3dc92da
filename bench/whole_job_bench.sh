#!/usr/bin/env bash
# The whole nightly backup (files + PostgreSQL + Redis with its default diskless delay) against the sequential
# hand pipeline of issue 19 on the same data, in one run:
#   nightjar: nightjar-backup with the config's defaults (components concurrently, "parallel" auto)
#             and with "parallel": 1 (one after another, for reference)
#   hand:     pg_dump -Fc -Z0 | zstd -T2 -3 | tee >(sha256sum) > file, then redis-cli --rdb + zstd -T2 -3 +
#             sha256sum, then tar -cf - | zstd -T2 -3 | tee >(sha256sum) > file (one after another)
#   hold:     the same nightjar-backup with a sink connector on the Kafka Connect emulator: how long the
#             connector was held (cdc.hold "snapshot", the sinks' default) against the whole run
# Data: pgbench -i -s $BENCH_SCALE (default 10) + $BENCH_ROWS (default 400k) random rows (~300 MB database),
# $BENCH_KEYS (default 300k) Redis keys, a $BENCH_FILES-file (default 429) config tree of ~20 MB.
# Runs $BENCH_REPEAT (default 3) times, interleaved; the fastest run counts, RSS is the largest seen (of the
# whole process tree: /usr/bin/time -v). Prints wall times, ratios, peak RSS and the hold time.
# Everything it creates lives in a temp dir removed at the end. Usage: bench/whole_job_bench.sh (after a build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${NIGHTJAR_BUILD_DIR:-$root/build}
scale=${BENCH_SCALE:-10}
rows=${BENCH_ROWS:-400000}
keys=${BENCH_KEYS:-300000}
nfiles=${BENCH_FILES:-429}
repeat=${BENCH_REPEAT:-3}
[ -x "$bin/backup/nightjar-backup" ] || { echo "build first: cmake --build build" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

# shellcheck source=../scripts/lib/services.sh
. "$root/scripts/lib/services.sh"
# shellcheck source=lib.sh
. "$root/bench/lib.sh"
work=$(mktemp -d /tmp/nightjar-whole-bench-XXXXXX)
chmod 755 "$work"
NIGHTJAR_TEST_RUNDIR="$work/run"
mkdir -p "$NIGHTJAR_TEST_RUNDIR"
export NIGHTJAR_TEST_RUNDIR
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  services_stop
  rm -rf "$work"
}
trap cleanup EXIT
bench_start_postgres
now() { date +%s.%N; }

bench_load_database "$scale" "$rows"
dbsize=$("$pgbin/psql" -X -A -t -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")

# Redis with its defaults for replication (repl-diskless-sync yes, repl-diskless-sync-delay 5).
rport=$(free_port)
mkdir -p "$work/redis"
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/redis" \
  --logfile "$work/redis/redis.log" --enable-debug-command local &
pids+=($!)
until [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = "PONG" ]; do sleep 0.05; done
redis-cli -p "$rport" debug populate "$keys" key 64 >/dev/null
delay=$(redis-cli -p "$rport" config get repl-diskless-sync-delay | tail -1)

echo "bench: a config tree of $nfiles files ..." >&2
python3 - "$work/etc" "$nfiles" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(19)
words = ["listen", "server", "timeout", "worker", "include", "location", "proxy_pass", "upstream", "=", "{", "}"]
for i in range(n):
    d = os.path.join(root, f"app{i % 23}", f"conf.d{i % 3}")
    os.makedirs(d, exist_ok=True)
    size = random.choice([800, 4000, 20000, 150000])
    with open(os.path.join(d, f"f{i}.conf"), "w") as f:
        out, have = [], 0
        while have < size:
            out.append(" ".join(random.choice(words) for _ in range(8)) + f" {random.randint(0, 99999)};\n")
            have += len(out[-1])
        f.write("".join(out))
PY
files_size=$(du -sh "$work/etc" | cut -f1)

# The Kafka Connect emulator with one sink connector (cdc.hold defaults to "snapshot" for sinks).
python3 "$root/tests/support/kafka_connect_emulator.py" --port 0 --port-file "$work/emu.port" \
  --connectors "" --tasks 1 --transition-delay 0.1 2>"$work/emu.log" &
pids+=($!)
until [ -s "$work/emu.port" ]; do sleep 0.05; done
emu="http://127.0.0.1:$(cat "$work/emu.port")"
curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"name": "jdbc-sink", "type": "sink", "config": {"topics": "app.rows"}}' "$emu/_emulator/connectors" >/dev/null

write_config() {  # write_config FILE PARALLEL [cdc [noredis]]
  local cdc="" redis=", \"redis\": { \"port\": $rport }"
  [ "${4:-}" = noredis ] && redis=""
  if [ "${3:-}" = cdc ]; then
    cdc=", \"cdc\": {\"kafka_connect\": {\"url\": \"$emu\", \"connectors\": [\"jdbc-sink\"]},
           \"state_dir\": \"$work/cdc-state\", \"retry\": {\"initial_backoff_s\": 0.05, \"max_backoff_s\": 0.2}}"
  fi
  cat > "$1" <<JSON
{ "backup_dir": "$work/backups", "parallel": $2,
  "files": { "paths": ["$work/etc"] },
  "postgres": { "host": "$PGHOST", "port": $PGPORT, "user": "$PGUSER", "databases": ["bench"] }$redis$cdc }
JSON
}
write_config "$work/auto.json" 0
write_config "$work/seq.json" 1
# The same with the disk SYNC form (redis.transfer; `auto` picks it for a server that saves on a schedule, which
# this one, started with --save "", does not): the server sends at once instead of after its delay.
sed 's/"port": '"$rport"' }/"port": '"$rport"', "transfer": "disk" }/' "$work/auto.json" > "$work/disk.json"
write_config "$work/cdc.json" 0 cdc
write_config "$work/cdc-noredis.json" 0 cdc noredis

hand() {
  local out=$work/hand
  rm -rf "$out"
  mkdir -p "$out"
  "$pgbin/pg_dump" -Fc -Z0 bench | zstd -q -T2 -3 | tee >(sha256sum > "$out/pg.sha") > "$out/pg.dump.zst"
  redis-cli -p "$rport" --rdb "$out/r.rdb" >/dev/null 2>&1
  sha256sum "$out/r.rdb" > "$out/r.sha"
  zstd -q -T2 -3 "$out/r.rdb" -o "$out/r.rdb.zst"
  sha256sum "$out/r.rdb.zst" >> "$out/r.sha"
  tar -C "$work" -cf - etc | zstd -q -T2 -3 | tee >(sha256sum > "$out/f.sha") > "$out/files.tar.zst"
  wait
}
export -f hand
export work pgbin rport

declare -A best rss
measure() {  # measure NAME CMD...
  local name=$1
  shift
  sync
  rm -rf "$work/backups"
  local t0 t1
  t0=$(now)
  /usr/bin/time -v -o "$work/time.$name" "$@" >"$work/out.$name" 2>"$work/err.$name" || {
    echo "bench: $name failed:" >&2
    tail -20 "$work/err.$name" >&2
    exit 1
  }
  t1=$(now)
  local s kb
  s=$(python3 -c "print(f'{$t1-$t0:.2f}')")
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.$name")
  echo "bench: $name ${s} s, peak ${kb} KB" >&2
  if [ -z "${best[$name]:-}" ] || python3 -c "import sys; sys.exit(0 if $s < ${best[$name]} else 1)"; then
    best[$name]=$s
  fi
  if [ -z "${rss[$name]:-}" ] || [ "$kb" -gt "${rss[$name]}" ]; then rss[$name]=$kb; fi
}

echo "bench: database $dbsize, $keys Redis keys (repl-diskless-sync-delay $delay s), files $files_size" >&2
"$bin/backup/nightjar-backup" -c "$work/auto.json" -q >/dev/null 2>&1  # warm-up, untimed
rm -rf "$work/backups"
for i in $(seq 1 "$repeat"); do
  echo "bench: round $i of $repeat" >&2
  measure nightjar "$bin/backup/nightjar-backup" -c "$work/auto.json" -q
  measure hand bash -c hand
  measure nightjar_parallel1 "$bin/backup/nightjar-backup" -c "$work/seq.json" -q
  measure nightjar_disk "$bin/backup/nightjar-backup" -c "$work/disk.json" -q
done

# The hold: a run with the sink connector, its held_seconds against the run's wall time. With Redis in the run
# the hold lasts until Redis has forked its snapshot (after its diskless delay); without, until the
# database's snapshot is exported.
hold() {  # hold CONFIG -> "held_s run_s"
  rm -rf "$work/backups"
  local t0 t1
  t0=$(now)
  "$bin/backup/nightjar-backup" -c "$1" -q >/dev/null 2>"$work/cdc.err"
  t1=$(now)
  python3 - "$work/backups" "$t0" "$t1" <<'PY'
import glob, json, sys
m = json.load(open(sorted(glob.glob(sys.argv[1] + "/manifest_*.json"))[-1]))
c = [c for c in m["cdc"]["connectors"] if c["name"] == "jdbc-sink"][0]
print(f'{c["held_seconds"]:.2f} s ({c["hold"]}) of a {float(sys.argv[3]) - float(sys.argv[2]):.2f} s run')
PY
}
held=$(hold "$work/cdc.json")
held_noredis=$(hold "$work/cdc-noredis.json")

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo
echo "== whole nightly backup: database $dbsize, $keys Redis keys (diskless delay $delay s), $nfiles files ($files_size); fastest of $repeat, interleaved"
printf '%-48s %7s s  peak %7s KB\n' "nightjar-backup (parallel auto)" "${best[nightjar]}" "${rss[nightjar]}"
printf '%-48s %7s s  peak %7s KB\n' "nightjar-backup (parallel 1)" "${best[nightjar_parallel1]}" "${rss[nightjar_parallel1]}"
printf '%-48s %7s s  peak %7s KB\n' "nightjar-backup (parallel auto, transfer disk)" "${best[nightjar_disk]}" "${rss[nightjar_disk]}"
printf '%-48s %7s s  peak %7s KB\n' "sequential hand pipeline" "${best[hand]}" "${rss[hand]}"
echo "ratio nightjar (parallel auto) / hand pipeline: $(ratio "${best[nightjar]}" "${best[hand]}")"
echo "ratio nightjar (parallel 1) / hand pipeline:    $(ratio "${best[nightjar_parallel1]}" "${best[hand]}")"
echo "ratio nightjar (transfer disk) / hand pipeline: $(ratio "${best[nightjar_disk]}" "${best[hand]}")"
echo "connector held, files + PostgreSQL + Redis: $held"
echo "connector held, files + PostgreSQL:         $held_noredis"
