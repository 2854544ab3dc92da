#!/usr/bin/env bash
# A throwaway Ceph cluster for the S3 tests: one monitor, one memstore OSD and radosgw, on loopback, in a
# temporary directory, on free ports, no systemd. Source this file, call `ceph_start`, and `ceph_stop` from a
# trap (services_start/services_stop in scripts/lib/services.sh do both). Exports:
#   NIGHTJAR_TEST_S3_ENDPOINT (http://127.0.0.1:PORT), NIGHTJAR_TEST_S3_REGION, NIGHTJAR_TEST_S3_BUCKET,
#   NIGHTJAR_TEST_S3_LOCK_BUCKET (object lock enabled), NIGHTJAR_TEST_S3_ACCESS_KEY_ID,
#   NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE (mode 0600; the secret itself is never exported),
#   NIGHTJAR_TEST_CEPH_DIR, NIGHTJAR_TEST_S3_START_SECONDS (how long the bring-up took).
# The settings and their reasons: /work/shared/reference/object-storage.md.

# shellcheck source=ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

ceph_require() {
  local b
  for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool; do
    command -v "$b" >/dev/null 2>&1 || {
      echo "ceph: $b not found: run scripts/install-deps.sh (packages ceph-mon ceph-osd radosgw)" >&2
      return 1
    }
  done
}

# ceph_wait SECONDS COMMAND...: retries COMMAND every 0.05 s until it succeeds or SECONDS pass.
ceph_wait() {
  local deadline=$(($(date +%s%N) + $1 * 1000000000))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

ceph_dump_logs() {
  local f
  for f in "$NIGHTJAR_TEST_CEPH_DIR"/log/*.log "$NIGHTJAR_TEST_CEPH_DIR"/*.out; do
    [ -f "$f" ] || continue
    echo "---- $f (last 20 lines)" >&2
    tail -n 20 "$f" >&2
  done
}

ceph_osd_up() {
  ceph -c "$NIGHTJAR_TEST_CEPH_DIR/ceph.conf" osd dump 2>/dev/null | grep -q "^osd\.$1 up"
}

ceph_rgw_up() {
  curl -s -o /dev/null --max-time 1 "$NIGHTJAR_TEST_S3_ENDPOINT/"
}

# aws CLI against the test radosgw with the test user (credentials through the environment of this call only).
ceph_aws() {
  AWS_ACCESS_KEY_ID=$NIGHTJAR_TEST_S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$(cat "$NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE") \
    AWS_DEFAULT_REGION=$NIGHTJAR_TEST_S3_REGION AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null /usr/bin/aws --endpoint-url "$NIGHTJAR_TEST_S3_ENDPOINT" "$@"
}

# ceph_s3_create_bucket NAME [HEADER...]: a signed PUT /NAME with curl (awscli takes ~2 s a call to start).
# The credentials reach curl on stdin (-K -), never in argv.
ceph_s3_create_bucket() {
  local name=$1 h args=() status
  shift
  for h in "$@"; do args+=(-H "$h"); done
  status=$(printf 'user = "%s:%s"\n' "$NIGHTJAR_TEST_S3_ACCESS_KEY_ID" "$(cat "$NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")" |
    curl -sS -K - -o "$NIGHTJAR_TEST_CEPH_DIR/bucket-$name.out" -w '%{http_code}' -X PUT \
      --aws-sigv4 "aws:amz:$NIGHTJAR_TEST_S3_REGION:s3" \
      -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
      "${args[@]}" "$NIGHTJAR_TEST_S3_ENDPOINT/$name")
  [ "$status" = 200 ] || {
    echo "ceph: creating bucket $name failed: HTTP $status" >&2
    cat "$NIGHTJAR_TEST_CEPH_DIR/bucket-$name.out" >&2
    return 1
  }
}

ceph_start() {
  ceph_require || return 1
  local t0 dir fsid mon_port rgw_port range uuid osd_id conf
  t0=$(date +%s%N)
  dir=$(mktemp -d /tmp/nightjar-ceph-XXXXXX)
  NIGHTJAR_TEST_CEPH_DIR=$dir
  export NIGHTJAR_TEST_CEPH_DIR
  mkdir -p "$dir"/{mon,osd,run,log,crash}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  range=$(free_port_range 20) || { echo "ceph: no free port range" >&2; return 1; }
  conf="$dir/ceph.conf"
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
ms bind msgr1 = false
ms bind msgr2 = true
ms bind port min = ${range% *}
ms bind port max = ${range#* }
auth cluster required = none
auth service required = none
auth client required = none
ms client mode = crc
ms mon client mode = crc
ms service mode = crc
ms cluster mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
run dir = $dir/run
admin socket = $dir/run/\$cluster-\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/crash
keyring = $dir/keyring
mon data = $dir/mon/\$id
osd data = $dir/osd/\$id
paxos propose interval = 0.05
paxos min wait = 0.01
osd objectstore = memstore
memstore device bytes = 4294967296
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mgr initial modules =
rgw gc obj min wait = 1
rgw gc processor period = 5
debug ms = 0

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = 127.0.0.1
rgw data = $dir/rgw
EOF
  NIGHTJAR_TEST_S3_ENDPOINT="http://127.0.0.1:$rgw_port"
  export NIGHTJAR_TEST_S3_ENDPOINT
  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null || return 1
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null || return 1
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >"$dir/mon-mkfs.out" 2>&1 || { ceph_dump_logs; return 1; }
  ceph-mon -c "$conf" -i a >"$dir/mon.out" 2>&1 || { ceph_dump_logs; return 1; }
  uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(ceph -c "$conf" --connect-timeout 20 osd new "$uuid" 2>"$dir/osd-new.out") || { ceph_dump_logs; return 1; }
  mkdir -p "$dir/osd/$osd_id"
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$uuid" >"$dir/osd-mkfs.out" 2>&1 || { ceph_dump_logs; return 1; }
  ceph-osd -c "$conf" -i "$osd_id" >"$dir/osd.out" 2>&1 || { ceph_dump_logs; return 1; }
  ceph_wait 30 ceph_osd_up "$osd_id" || { echo "ceph: osd.$osd_id did not come up" >&2; ceph_dump_logs; return 1; }
  mkdir -p "$dir/rgw"
  # In a subshell, so radosgw is not a job of the caller's shell (no "Killed" notice at ceph_stop).
  (radosgw -c "$conf" -n client.rgw.a -f >"$dir/rgw.out" 2>&1 &
    echo $! >"$dir/run/rgw.pid.bg")
  ceph_wait 60 ceph_rgw_up || { echo "ceph: radosgw did not answer on $NIGHTJAR_TEST_S3_ENDPOINT" >&2; ceph_dump_logs; return 1; }

  # A user with random keys; the secret goes to a 0600 file only.
  NIGHTJAR_TEST_S3_ACCESS_KEY_ID="NJ$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
  NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE="$dir/s3-secret"
  (umask 077 && od -An -N30 -tx1 /dev/urandom | tr -d ' \n' >"$NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")
  chmod 600 "$NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE"
  # radosgw-admin takes the key in argv: acceptable for a throwaway loopback test user, never for a real one.
  radosgw-admin -c "$conf" user create --uid nightjar-test --display-name "nightjar test" \
    --access-key "$NIGHTJAR_TEST_S3_ACCESS_KEY_ID" \
    --secret-key "$(cat "$NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE")" >"$dir/user.out" 2>&1 \
    || { echo "ceph: radosgw-admin user create failed" >&2; ceph_dump_logs; return 1; }
  NIGHTJAR_TEST_S3_REGION=default
  NIGHTJAR_TEST_S3_BUCKET=nightjar-test
  NIGHTJAR_TEST_S3_LOCK_BUCKET=nightjar-test-locked
  export NIGHTJAR_TEST_S3_ACCESS_KEY_ID NIGHTJAR_TEST_S3_SECRET_ACCESS_KEY_FILE NIGHTJAR_TEST_S3_REGION
  export NIGHTJAR_TEST_S3_BUCKET NIGHTJAR_TEST_S3_LOCK_BUCKET
  ceph_s3_create_bucket "$NIGHTJAR_TEST_S3_BUCKET" || return 1
  ceph_s3_create_bucket "$NIGHTJAR_TEST_S3_LOCK_BUCKET" "x-amz-bucket-object-lock-enabled: true" || return 1
  NIGHTJAR_TEST_S3_START_SECONDS=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
  export NIGHTJAR_TEST_S3_START_SECONDS
  echo "services: ceph $(ceph-mon --version | awk '{print $3}') radosgw on $NIGHTJAR_TEST_S3_ENDPOINT" \
    "(buckets $NIGHTJAR_TEST_S3_BUCKET, $NIGHTJAR_TEST_S3_LOCK_BUCKET; up in ${NIGHTJAR_TEST_S3_START_SECONDS} s)"
}

# True while PID is a live process (a zombie counts as gone).
ceph_pid_alive() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$stat" ] && [ "${stat#Z}" = "$stat" ]
}

ceph_stop() {
  local dir=${NIGHTJAR_TEST_CEPH_DIR:-} f pid pids=()
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  for f in "$dir"/run/*.pid "$dir"/run/rgw.pid.bg; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    [ -n "$pid" ] && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do ceph_pid_alive "$pid" || break; sleep 0.05; done
    ceph_pid_alive "$pid" && echo "ceph: process $pid still running after SIGKILL" >&2
  done
  rm -rf "$dir"
  unset NIGHTJAR_TEST_CEPH_DIR
}
