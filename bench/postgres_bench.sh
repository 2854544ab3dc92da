#!/usr/bin/env bash
# PostgreSQL backup/restore benchmark: nightjar against the standard tools, on the same data, in one run.
#   data:    pgbench -i -s $BENCH_SCALE (default 20) + $BENCH_ROWS (default 1.5M) rows of random text/jsonb/bytea/
#            timestamps (about 700 MB of table data at the defaults), in a throwaway cluster
#   backup:  nightjar-backup | pg_dump -Fc | pg_dump -Fd -j2 | pg_dump -Fc -Z0 | zstd -T2 -3 | tee >(sha256sum)
#   restore: nightjar-restore --db-name (verify + restore + row counts) | pg_restore -j2 of the pg_dump -Fc file
# Backups and restores run $BENCH_REPEAT (default 3) times, interleaved, after an untimed warm-up dump; the fastest run
# counts. Prints wall time, peak RSS and size of each, and the ratios the targets are stated in. Everything it creates
# (cluster, dumps, backups) is deleted at the end. Usage: bench/postgres_bench.sh   (after scripts/build.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${NIGHTJAR_BUILD_DIR:-$root/build}
scale=${BENCH_SCALE:-20}
rows=${BENCH_ROWS:-1500000}
[ -x "$bin/backup/nightjar-backup" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

# shellcheck source=../scripts/lib/services.sh
. "$root/scripts/lib/services.sh"
# shellcheck source=lib.sh
. "$root/bench/lib.sh"
work=$(mktemp -d /tmp/nightjar-bench-XXXXXX)
chmod 755 "$work"
NIGHTJAR_TEST_RUNDIR="$work/run"
mkdir -p "$NIGHTJAR_TEST_RUNDIR"
export NIGHTJAR_TEST_RUNDIR
cleanup() { services_stop; rm -rf "$work"; }
trap cleanup EXIT
bench_start_postgres
out="$work/out"
mkdir -p "$out"
chmod 777 "$out"

bench_load_database "$scale" "$rows"
dbsize=$("$pgbin/psql" -X -A -t -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")
echo "bench: database size $dbsize" >&2

# measure NAME CMD...: wall seconds and peak RSS (KiB) of CMD (and its children: /usr/bin/time -v reports the max).
# Runs repeated with the same NAME keep the fastest wall time (the run least disturbed by anything else on
# the machine) and the largest RSS; every time is listed in the log.
declare -A wall rss all
measure() {
  local name=$1; shift
  sync
  "$pgbin/psql" -X -q -d postgres -c CHECKPOINT
  /usr/bin/time -v -o "$work/time.$name" "$@" >/dev/null 2>"$work/err.$name" || {
    echo "bench: $name failed:" >&2; tail -5 "$work/err.$name" >&2; exit 1; }
  local w r
  w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$work/time.$name")
  r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.$name")
  all[$name]="${all[$name]:-}${all[$name]:+ }$w"
  if [ -z "${wall[$name]:-}" ] || awk -v a="$w" -v b="${wall[$name]}" 'BEGIN { exit !(a < b) }'; then wall[$name]=$w; fi
  if [ -z "${rss[$name]:-}" ] || [ "$r" -gt "${rss[$name]}" ]; then rss[$name]=$r; fi
  echo "bench: $name $w s, peak RSS $((r / 1024)) MiB" >&2
}
size_of() { du -sb "$1" | cut -f1; }
repeat=${BENCH_REPEAT:-3}

threads_field=${BENCH_THREADS:+, \"threads\": $BENCH_THREADS}
cat > "$work/nightjar.json" <<JSON
{ "backup_dir": "$out/backups",
  "compression": { "level": 3$threads_field },
  "postgres": { "host": "$PGHOST", "port": $PGPORT, "user": "$PGUSER", "databases": ["bench"] } }
JSON

# The encrypted row (issue 15): the same config with an encryption section (age to one recipient, the index
# signed with a key created in $work).
"$bin/backup/nightjar-backup" keygen -o "$work/bench-key.txt" > "$work/bench-key.pub"
bench_recipient=$(sed -n 's/^Public key: //p' "$work/bench-key.pub")
cat > "$work/nightjar-enc.json" <<JSON
{ "backup_dir": "$out/backups-enc",
  "compression": { "level": 3$threads_field },
  "postgres": { "host": "$PGHOST", "port": $PGPORT, "user": "$PGUSER", "databases": ["bench"] },
  "encryption": { "recipients": ["$bench_recipient"], "signing_key_file": "$work/bench-signing.key" } }
JSON

# Warm-up, untimed: the first read of freshly loaded tables sets hint bits and writes pages back; no timed run
# should pay for that.
"$pgbin/pg_dump" -Fc -Z0 -d bench > /dev/null

hand="set -o pipefail; '$pgbin/pg_dump' -Fc -Z0 -d bench | zstd -q -T2 -3 | tee >(sha256sum > '$out/hand.sha256') > '$out/hand.dump.zst'"
for i in $(seq "$repeat"); do  # interleaved, so a busy spell on the machine hits both sides
  rm -rf "$out/backups"
  measure nightjar_backup "$bin/backup/nightjar-backup" --config "$work/nightjar.json" -q
  measure hand_pipeline bash -c "$hand"
  rm -rf "$out/backups-enc"
  measure nightjar_backup_age "$bin/backup/nightjar-backup" --config "$work/nightjar-enc.json" -q
done
measure pg_dump_Fc "$pgbin/pg_dump" -Fc -d bench -f "$out/bench.dump"
measure pg_dump_Fd_j2 "$pgbin/pg_dump" -Fd -j2 -d bench -f "$out/bench.dir"

nj_file=$(ls "$out/backups/"2*/pg-bench.pgdump.zst)
nj_size=$(size_of "$nj_file")
fc_size=$(size_of "$out/bench.dump")
fd_size=$(size_of "$out/bench.dir")
hand_size=$(size_of "$out/hand.dump.zst")
nj_age_size=$(size_of "$(ls "$out/backups-enc/"2*/pg-bench.pgdump.zst.age)")
# The two dumps differ in pg_dump's timestamp, which moves a compressed size by a few bytes either way; the
# zstd tool on nightjar's own content is the exact comparison.
same_size=$(zstd -q -d -c "$nj_file" | zstd -q -T2 -3 | wc -c)

for i in $(seq "$repeat"); do
  "$pgbin/dropdb" --if-exists bench_nj
  measure nightjar_restore "$bin/restore/nightjar-restore" latest --backup-dir "$out/backups" --db-name bench=bench_nj \
    --jobs 2 -q
  "$pgbin/dropdb" --if-exists bench_pr
  "$pgbin/createdb" bench_pr
  measure pg_restore_j2 "$pgbin/pg_restore" -j2 -d bench_pr "$out/bench.dump"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "PostgreSQL benchmark: pgbench -s $scale + $rows random rows, database $dbsize, $(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(seconds: the fastest of $repeat interleaved runs for nightjar backup/restore, the hand pipeline and pg_restore -j2)"
printf '%-18s %9s %12s %14s  %s\n' "run" "seconds" "peak RSS MiB" "output bytes" "all runs (s)"
for n in nightjar_backup nightjar_backup_age pg_dump_Fc pg_dump_Fd_j2 hand_pipeline nightjar_restore pg_restore_j2; do
  case $n in
    nightjar_backup) s=$nj_size ;; nightjar_backup_age) s=$nj_age_size ;; pg_dump_Fc) s=$fc_size ;; pg_dump_Fd_j2) s=$fd_size ;; hand_pipeline) s=$hand_size ;;
    *) s="-" ;;
  esac
  printf '%-18s %9s %12s %14s  %s\n' "$n" "${wall[$n]}" "$((rss[$n] / 1024))" "$s" "${all[$n]}"
done
echo
echo "backup time  nightjar / hand pipeline : $(ratio "${wall[nightjar_backup]}" "${wall[hand_pipeline]}")  (target <= 1.05)"
echo "backup time  nightjar+age / nightjar  : $(ratio "${wall[nightjar_backup_age]}" "${wall[nightjar_backup]}")  (target <= 1.05; peak RSS $((rss[nightjar_backup_age] / 1024)) MiB, target < 100)"
echo "backup time  pg_dump -Fc / nightjar   : $(ratio "${wall[pg_dump_Fc]}" "${wall[nightjar_backup]}")  (speed-up over pg_dump -Fc)"
echo "backup time  pg_dump -Fd -j2 / nightjar: $(ratio "${wall[pg_dump_Fd_j2]}" "${wall[nightjar_backup]}")"
echo "artifact size nightjar / hand pipeline: $(ratio "$nj_size" "$hand_size")  (target <= 1.00; $nj_size vs $hand_size bytes)"
echo "artifact size nightjar / zstd -T2 -3 of the same content: $nj_size / $same_size bytes (the zstd tool adds a 4-byte XXH64 checksum; nightjar's frame has sha256 in the manifest instead)"
echo "restore time nightjar / pg_restore -j2: $(ratio "${wall[nightjar_restore]}" "${wall[pg_restore_j2]}")  (target <= 1.05)"
echo "peak RSS     nightjar backup / restore : $((rss[nightjar_backup] / 1024)) / $((rss[nightjar_restore] / 1024)) MiB  (target < 100; for restore this is the max over nightjar and its pg_restore)"
