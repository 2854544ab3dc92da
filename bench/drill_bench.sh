#!/usr/bin/env bash
# Restore drill benchmark: `nightjar-restore drill` of the benchmark database against a plain
# `nightjar-restore` of the same backup, in one run.
#   data:    pgbench -i -s $BENCH_SCALE (default 20) + $BENCH_ROWS (default 1.5M) rows of random text/jsonb/bytea/
#            timestamps (about 700 MB of table data at the defaults; the same data as bench/postgres_bench.sh), in
#            a throwaway cluster, backed up once by nightjar-backup
#   restore: nightjar-restore latest --db-name bench=bench_nj (verify + restore + row counts, default jobs)
#   drill:   nightjar-restore drill latest (clean up, initdb + start a throwaway server, verify + restore into it,
#            row counts and sample fingerprints of every table, stop and remove the server, write the record)
# Both run $BENCH_REPEAT (default 3) times, interleaved; the fastest run counts. Prints wall time and peak RSS
# (/usr/bin/time -v: the max over nightjar and the children it waits for, pg_restore included; the drill's
# postgres server is started by pg_ctl and is not counted) and the ratio the target is stated in (<= 1.3), and
# the drill's own breakdown (restore time, checks, server start/stop) from its --json report.
# Everything it creates is deleted at the end; BENCH_LOG_DIR=DIR keeps the log lines of the fastest run of each.
# Usage: bench/drill_bench.sh   (after scripts/build.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${NIGHTJAR_BUILD_DIR:-$root/build}
scale=${BENCH_SCALE:-20}
rows=${BENCH_ROWS:-1500000}
repeat=${BENCH_REPEAT:-3}
[ -x "$bin/restore/nightjar-restore" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

# shellcheck source=../scripts/lib/services.sh
. "$root/scripts/lib/services.sh"
# shellcheck source=lib.sh
. "$root/bench/lib.sh"
work=$(mktemp -d /tmp/nightjar-bench-drill-XXXXXX)
chmod 755 "$work"
NIGHTJAR_TEST_RUNDIR="$work/run"
mkdir -p "$NIGHTJAR_TEST_RUNDIR"
export NIGHTJAR_TEST_RUNDIR
# The drill's state dir directly under /tmp (the postgres service user must reach it when we are root).
export NIGHTJAR_DRILL_DIR="/tmp/nightjar-bench-drill-state-$$"
cleanup() { services_stop; rm -rf "$work" "$NIGHTJAR_DRILL_DIR"; }
trap cleanup EXIT
# Copies of the binaries: a rebuild during the run does not change what is measured.
mkdir -p "$work/bin"
cp "$bin/backup/nightjar-backup" "$bin/restore/nightjar-restore" "$work/bin/"
bench_start_postgres
out="$work/out"
mkdir -p "$out"
chmod 777 "$out"

bench_load_database "$scale" "$rows"
dbsize=$("$pgbin/psql" -X -A -t -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")
echo "bench: database size $dbsize" >&2

cat > "$work/nightjar.json" <<JSON
{ "backup_dir": "$out/backups",
  "postgres": { "host": "$PGHOST", "port": $PGPORT, "user": "$PGUSER", "databases": ["bench"] } }
JSON
echo "bench: nightjar-backup ..." >&2
"$work/bin/nightjar-backup" --config "$work/nightjar.json" -q
stored=$(du -sb "$out/backups" | cut -f1)

# measure NAME CMD...: wall seconds and peak RSS (KiB) of CMD; the fastest wall time and the largest RSS of the
# runs with the same NAME are kept, every time is listed. The command's stdout goes to $work/stdout.NAME.
declare -A wall rss all
measure() {
  local name=$1; shift
  sync
  "$pgbin/psql" -X -q -d postgres -c CHECKPOINT
  /usr/bin/time -v -o "$work/time.$name" "$@" >"$work/stdout.$name" 2>"$work/err.$name" || {
    echo "bench: $name failed:" >&2; tail -5 "$work/err.$name" >&2; exit 1; }
  local w r
  w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$work/time.$name")
  r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.$name")
  all[$name]="${all[$name]:-}${all[$name]:+ }$w"
  if [ -z "${wall[$name]:-}" ] || awk -v a="$w" -v b="${wall[$name]}" 'BEGIN { exit !(a < b) }'; then
    wall[$name]=$w
    cp "$work/stdout.$name" "$work/best.$name"
    if [ -n "${BENCH_LOG_DIR:-}" ]; then mkdir -p "$BENCH_LOG_DIR"; cp "$work/err.$name" "$BENCH_LOG_DIR/$name.log"; fi
  fi
  if [ -z "${rss[$name]:-}" ] || [ "$r" -gt "${rss[$name]}" ]; then rss[$name]=$r; fi
  echo "bench: $name $w s, peak RSS $((r / 1024)) MiB" >&2
}

for i in $(seq "$repeat"); do  # interleaved, so a busy spell on the machine hits both sides
  "$pgbin/dropdb" --if-exists bench_nj
  measure nightjar_restore "$work/bin/nightjar-restore" latest --backup-dir "$out/backups" --db-name bench=bench_nj
  # Dropped at once: autovacuum of 3.5M freshly loaded rows would otherwise run during the drill beside it.
  "$pgbin/dropdb" bench_nj
  measure nightjar_drill "$work/bin/nightjar-restore" drill latest --backup-dir "$out/backups" --json
done
python3 - "$work/best.nightjar_drill" > "$work/drill_summary" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"], r["reason"]
checks = sum(len(c["checks"]) for c in r["components"])
print(f'drill report: ok, rto_seconds {r["rto_seconds"]} (verify + restore), wall_seconds {r["wall_seconds"]} '
      f'(+ server start/stop, {checks} checks, record)')
PY

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "Drill benchmark: pgbench -s $scale + $rows random rows, database $dbsize, backup $stored bytes stored, $(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(seconds: the fastest of $repeat interleaved runs)"
printf '%-18s %9s %12s  %s\n' "run" "seconds" "peak RSS MiB" "all runs (s)"
for n in nightjar_restore nightjar_drill; do
  printf '%-18s %9s %12s  %s\n' "$n" "${wall[$n]}" "$((rss[$n] / 1024))" "${all[$n]}"
done
echo
cat "$work/drill_summary"
echo "drill time   drill / nightjar-restore : $(ratio "${wall[nightjar_drill]}" "${wall[nightjar_restore]}")  (target <= 1.3)"
echo "peak RSS     drill / restore          : $((rss[nightjar_drill] / 1024)) / $((rss[nightjar_restore] / 1024)) MiB  (target < 100; the max over nightjar and its pg_restore)"
