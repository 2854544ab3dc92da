#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis servers on loopback, in a temporary directory, on free ports.
# Source this file, call `services_start`, and `services_stop` from a trap. Exports:
#   NIGHTJAR_TEST_PGHOST, NIGHTJAR_TEST_PGPORT, NIGHTJAR_TEST_PGUSER, NIGHTJAR_TEST_PGPASSWORD,
#   NIGHTJAR_TEST_PG_BINDIR, NIGHTJAR_TEST_REDIS_PORT, NIGHTJAR_TEST_RUNDIR,
#   NIGHTJAR_TEST_REDIS_TARGET_PORT (an empty server to restore into),
#   NIGHTJAR_TEST_REDIS_AUTH_PORT + NIGHTJAR_TEST_REDIS_PASSWORD (requirepass),
#   NIGHTJAR_TEST_REDIS_ACL_PORT + NIGHTJAR_TEST_REDIS_ACL_PASSWORD (users "nosync": everything but
#   SYNC/PSYNC/REPLCONF; "weak": only PING and INFO)
# and, from scripts/lib/ceph.sh, a Ceph cluster with radosgw: NIGHTJAR_TEST_S3_* (see that file).

# shellcheck source=ceph.sh
. "$(dirname "${BASH_SOURCE[0]}")/ceph.sh"

services_pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$d/initdb" ] || { echo "services: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; return 1; }
  echo "$d"
}

# Runs a command as the postgres system user (initdb and postgres refuse to run as root).
services_as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

services_start_postgres() {
  local bindir port pgdata
  bindir=$(services_pg_bindir)
  port=$(free_port)
  pgdata="$NIGHTJAR_TEST_RUNDIR/pg"
  mkdir -p "$pgdata"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pgdata" "$NIGHTJAR_TEST_RUNDIR"
  local pwfile="$NIGHTJAR_TEST_RUNDIR/pg-superuser-password"
  NIGHTJAR_TEST_PGPASSWORD="nightjar-test-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s\n' "$NIGHTJAR_TEST_PGPASSWORD" > "$pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pwfile"
  services_as_postgres "$bindir/initdb" -D "$pgdata" -U nightjar --pwfile="$pwfile" -A scram-sha-256 \
    --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$NIGHTJAR_TEST_RUNDIR/initdb.log" 2>&1 \
    || { cat "$NIGHTJAR_TEST_RUNDIR/initdb.log" >&2; return 1; }
  services_as_postgres "$bindir/pg_ctl" -D "$pgdata" -w -t 60 -l "$NIGHTJAR_TEST_RUNDIR/postgres.log" \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pgdata -c fsync=off -c max_wal_senders=4 -c wal_level=logical" \
    start >/dev/null || { cat "$NIGHTJAR_TEST_RUNDIR/postgres.log" >&2; return 1; }
  export NIGHTJAR_TEST_PGHOST=127.0.0.1 NIGHTJAR_TEST_PGPORT=$port NIGHTJAR_TEST_PGUSER=nightjar
  export NIGHTJAR_TEST_PGPASSWORD NIGHTJAR_TEST_PG_BINDIR=$bindir
  echo "services: postgres $($bindir/postgres --version | awk '{print $3}') on 127.0.0.1:$port"
}

services_start_redis() {
  local port
  port=$(free_port)
  mkdir -p "$NIGHTJAR_TEST_RUNDIR/redis"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$NIGHTJAR_TEST_RUNDIR/redis" \
    --daemonize yes --pidfile "$NIGHTJAR_TEST_RUNDIR/redis/redis.pid" --logfile "$NIGHTJAR_TEST_RUNDIR/redis/redis.log" \
    --enable-debug-command local >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  redis-cli -p "$port" ping | grep -q PONG || { echo "services: redis did not start" >&2; return 1; }
  export NIGHTJAR_TEST_REDIS_PORT=$port
  echo "services: redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$port"
}

# services_start_redis_extra NAME CONF-LINES...: a redis-server configured by a file in its own directory;
# prints its port.
services_redis_with_conf() {
  local name=$1 port dir
  shift
  port=$(free_port)
  dir="$NIGHTJAR_TEST_RUNDIR/redis-$name"
  mkdir -p "$dir"
  {
    printf '%s\n' "port $port" "bind 127.0.0.1" 'save ""' "appendonly no" "dir $dir" "daemonize yes" \
      "pidfile $dir/redis.pid" "logfile $dir/redis.log" "enable-debug-command local"
    printf '%s\n' "$@"
  } > "$dir/redis.conf"
  chmod 600 "$dir/redis.conf"
  redis-server "$dir/redis.conf" >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -p "$port" ping 2>&1 | grep -q -e PONG -e NOAUTH && break
    sleep 0.1
  done
  echo "$port"
}

services_start_redis_extra() {
  NIGHTJAR_TEST_REDIS_TARGET_PORT=$(services_redis_with_conf target)
  NIGHTJAR_TEST_REDIS_PASSWORD="pw-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  NIGHTJAR_TEST_REDIS_AUTH_PORT=$(services_redis_with_conf auth "requirepass $NIGHTJAR_TEST_REDIS_PASSWORD")
  NIGHTJAR_TEST_REDIS_ACL_PASSWORD="acl-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  NIGHTJAR_TEST_REDIS_ACL_PORT=$(services_redis_with_conf acl \
    "user nosync on >$NIGHTJAR_TEST_REDIS_ACL_PASSWORD ~* &* +@all -sync -psync -replconf" \
    "user weak on >$NIGHTJAR_TEST_REDIS_ACL_PASSWORD ~* +ping +info")
  export NIGHTJAR_TEST_REDIS_TARGET_PORT NIGHTJAR_TEST_REDIS_PASSWORD NIGHTJAR_TEST_REDIS_AUTH_PORT
  export NIGHTJAR_TEST_REDIS_ACL_PORT NIGHTJAR_TEST_REDIS_ACL_PASSWORD
  echo "services: redis targets: restore 127.0.0.1:$NIGHTJAR_TEST_REDIS_TARGET_PORT," \
    "password 127.0.0.1:$NIGHTJAR_TEST_REDIS_AUTH_PORT, ACL 127.0.0.1:$NIGHTJAR_TEST_REDIS_ACL_PORT"
}

services_start() {
  NIGHTJAR_TEST_RUNDIR=$(mktemp -d /tmp/nightjar-services-XXXXXX)
  chmod 755 "$NIGHTJAR_TEST_RUNDIR"
  export NIGHTJAR_TEST_RUNDIR
  services_start_postgres
  services_start_redis
  services_start_redis_extra
  ceph_start || { echo "services: ceph did not start (see above); the S3 tests need it" >&2; return 1; }
}

services_stop() {
  ceph_stop
  [ -n "${NIGHTJAR_TEST_RUNDIR:-}" ] && [ -d "$NIGHTJAR_TEST_RUNDIR" ] || return 0
  if [ -f "$NIGHTJAR_TEST_RUNDIR/pg/postmaster.pid" ]; then
    services_as_postgres "$(services_pg_bindir)/pg_ctl" -D "$NIGHTJAR_TEST_RUNDIR/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  for pidfile in "$NIGHTJAR_TEST_RUNDIR"/redis*/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 0.2
  rm -rf "$NIGHTJAR_TEST_RUNDIR"
}
