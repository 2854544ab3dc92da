#!/usr/bin/env bash
# Offsite benchmark: the PostgreSQL benchmark data backed up straight into Ceph radosgw on loopback, against the
# local backup and against the awscli pipeline; then the restore from the store against the awscli pipeline.
#   data:    pgbench -i -s $BENCH_SCALE (default 20) + $BENCH_ROWS (default 1.5M) random rows, a throwaway cluster
#   backup:  nightjar-backup into the store | nightjar-backup into a local dir |
#            pg_dump -Fc -Z0 | zstd -T2 -3 | aws s3 cp - s3://...
#   restore: nightjar-restore --db-name from the store | aws s3 cp s3://... - | zstd -d | pg_restore -j2
# Runs $BENCH_REPEAT (default 3) times interleaved after an untimed warm-up dump; the fastest run counts. Prints wall
# time and peak RSS of each and the ratios the issue states its goals in (within 1.1x of the local backup, faster
# than awscli, peak RSS under 100 MB). Everything it creates is deleted at the end.
# Usage: bench/offsite_bench.sh   (after scripts/build.sh; needs awscli, /usr/bin/time and the Ceph packages)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${NIGHTJAR_BUILD_DIR:-$root/build}
scale=${BENCH_SCALE:-20}
rows=${BENCH_ROWS:-1500000}
repeat=${BENCH_REPEAT:-3}
[ -x "$bin/backup/nightjar-backup" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -x /usr/bin/aws ] || { echo "needs awscli (scripts/install-deps.sh)" >&2; exit 2; }

# shellcheck source=../scripts/lib/services.sh
. "$root/scripts/lib/services.sh"
# shellcheck source=lib.sh
. "$root/bench/lib.sh"
# shellcheck source=../scripts/lib/ceph.sh
. "$root/scripts/lib/ceph.sh"
work=$(mktemp -d /tmp/nightjar-offsite-bench-XXXXXX)
chmod 755 "$work"
NIGHTJAR_TEST_RUNDIR="$work/run"
mkdir -p "$NIGHTJAR_TEST_RUNDIR"
export NIGHTJAR_TEST_RUNDIR
cleanup() { ceph_stop || true; services_stop; rm -rf "$work"; }
trap cleanup EXIT
bench_start_postgres
ceph_start >&2
export AWS_ACCESS_KEY_ID=$NIGHTJAR_TEST_S3_ACCESS_KEY_ID AWS_REGION=$NIGHTJAR_TEST_S3_REGION
AWS_SECRET_ACCESS_KEY=$(cat "$NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")
export AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=$NIGHTJAR_TEST_S3_REGION AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
bucket=$NIGHTJAR_TEST_S3_BUCKET
endpoint=$NIGHTJAR_TEST_S3_ENDPOINT
out="$work/out"
mkdir -p "$out"

bench_load_database "$scale" "$rows"
dbsize=$("$pgbin/psql" -X -A -t -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")
echo "bench: database size $dbsize" >&2

declare -A wall rss all
measure() {  # measure NAME CMD...: wall seconds and peak RSS (KiB, the max over CMD and its children)
  local name=$1; shift
  sync
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

pg_section="\"postgres\": { \"host\": \"$PGHOST\", \"port\": $PGPORT, \"user\": \"$PGUSER\", \"databases\": [\"bench\"] }"
cat > "$work/local.json" <<JSON
{ "backup_dir": "$out/backups", $pg_section }
JSON
cat > "$work/s3.json" <<JSON
{ "repository": { "type": "s3", "endpoint": "$endpoint", "region": "$AWS_REGION", "bucket": "$bucket",
                  "prefix": "bench", "access_key_id": "$AWS_ACCESS_KEY_ID",
                  "secret_access_key_file": "$NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE" },
  $pg_section }
JSON

"$pgbin/pg_dump" -Fc -Z0 -d bench > /dev/null  # warm-up, untimed
s3() { /usr/bin/aws --endpoint-url "$endpoint" s3 "$@"; }
hand="set -o pipefail; '$pgbin/pg_dump' -Fc -Z0 -d bench | zstd -q -T2 -3 | /usr/bin/aws --endpoint-url '$endpoint' s3 cp - 's3://$bucket/hand/bench.dump.zst'"
for i in $(seq "$repeat"); do
  rm -rf "$out/backups"
  s3 rm --recursive --quiet "s3://$bucket/bench/" || true
  measure nightjar_s3 "$bin/backup/nightjar-backup" --config "$work/s3.json" -q
  measure nightjar_local "$bin/backup/nightjar-backup" --config "$work/local.json" -q
  measure awscli_pipeline bash -c "$hand"
done
stored=$(s3 ls --recursive "s3://$bucket/bench/" | awk '{s+=$3} END {print s}')

hand_restore="set -o pipefail; /usr/bin/aws --endpoint-url '$endpoint' s3 cp 's3://$bucket/hand/bench.dump.zst' - | zstd -q -d | '$pgbin/pg_restore' -j1 -d bench_aws"
for i in $(seq "$repeat"); do
  "$pgbin/dropdb" --if-exists bench_nj
  measure nightjar_restore_s3 "$bin/restore/nightjar-restore" latest --config "$work/s3.json" --db-name bench=bench_nj \
    --jobs 2 -q
  "$pgbin/dropdb" --if-exists bench_aws
  "$pgbin/createdb" bench_aws
  measure awscli_restore bash -c "$hand_restore"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "Offsite benchmark: pgbench -s $scale + $rows random rows, database $dbsize, radosgw on loopback (memstore),"
echo "$(nproc) cores, load average now $(cut -d' ' -f1-3 /proc/loadavg); the fastest of $repeat interleaved runs"
printf '%-20s %9s %12s  %s\n' "run" "seconds" "peak RSS MiB" "all runs (s)"
for n in nightjar_s3 nightjar_local awscli_pipeline nightjar_restore_s3 awscli_restore; do
  printf '%-20s %9s %12s  %s\n' "$n" "${wall[$n]}" "$((rss[$n] / 1024))" "${all[$n]}"
done
echo
echo "backup  nightjar to S3 / nightjar local : $(ratio "${wall[nightjar_s3]}" "${wall[nightjar_local]}")  (goal <= 1.10)"
echo "backup  nightjar to S3 / awscli pipeline: $(ratio "${wall[nightjar_s3]}" "${wall[awscli_pipeline]}")  (goal < 1.00)"
echo "restore nightjar from S3 / awscli + pg_restore (pg_restore -j1: it cannot seek a pipe): $(ratio "${wall[nightjar_restore_s3]}" "${wall[awscli_restore]}")"
echo "peak RSS nightjar backup / restore to and from S3: $((rss[nightjar_s3] / 1024)) / $((rss[nightjar_restore_s3] / 1024)) MiB  (goal < 100)"
echo "stored in the bucket: $stored bytes"
