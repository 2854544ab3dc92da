#!/usr/bin/env bash
# What the benchmarks share: a throwaway PostgreSQL with the PG* environment pointing at it, and the benchmark
# database. Source after scripts/lib/services.sh.

# Starts the PostgreSQL of scripts/lib/services.sh; sets pgbin and exports PGHOST, PGPORT, PGUSER, PGPASSWORD and
# PGDATABASE=postgres for the standard tools.
bench_start_postgres() {
  services_start_postgres >&2
  pgbin=$NIGHTJAR_TEST_PG_BINDIR
  export PGHOST=$NIGHTJAR_TEST_PGHOST PGPORT=$NIGHTJAR_TEST_PGPORT PGUSER=$NIGHTJAR_TEST_PGUSER
  export PGPASSWORD=$NIGHTJAR_TEST_PGPASSWORD PGDATABASE=postgres
}

# bench_load_database SCALE ROWS: the database "bench": pgbench -i -s SCALE plus ROWS rows of random text, jsonb,
# bytea and timestamps (data that compresses like real rows, not like pgbench's padding).
bench_load_database() {
  local scale=$1 rows=$2
  echo "bench: loading pgbench -s $scale and $rows random rows ..." >&2
  "$pgbin/createdb" bench
  "$pgbin/pgbench" -q -i -s "$scale" bench >/dev/null 2>&1
  "$pgbin/psql" -X -q -d bench -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE random_data AS
SELECT g AS id,
       md5(random()::text) || md5(random()::text) || md5(random()::text) AS txt,
       jsonb_build_object('k', md5(random()::text), 'n', random(), 'arr', jsonb_build_array(random(), random())) AS doc,
       decode(md5(random()::text) || md5(random()::text), 'hex') AS bin,
       now() - random() * interval '3650 days' AS ts
FROM generate_series(1, $rows) AS g;
ALTER TABLE random_data ADD PRIMARY KEY (id);
VACUUM ANALYZE;
SQL
}
