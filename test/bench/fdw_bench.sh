#!/bin/bash
# Querying archives in place: a foreign table of taskflow_storage over a
# Hive-partitioned csv.gz archive vs import() into a temp table vs DuckDB.
#
#   test/bench/fdw_bench.sh              10M rows over 30 days (takes minutes)
#   N=1000000 test/bench/fdw_bench.sh    quicker run
#   KEEP=1 ...                           keep the cluster and files in $BENCH_DIR
#
# Starts a throwaway cluster (as postgres when run as root), loads N orders
# rows over 30 days, exports each day with taskflow.export() to
# dla_demo/y=2020/m=06/d=DD/ on a file:// server (csv.gz, manifest,
# _SUCCESS: the archive node's layout), then times, each in a fresh session:
#   SELECT count(*), sum(total_amount) FROM orders          heap table (baseline)
#   the same over the foreign table oss_orders               full scan of the archive
#   import() of the 30 days into a temp table, then the query
#   DuckDB (test/s3/duck_read.mjs --summary) over the same files, if available
#   one day (y, m, d =) through the foreign table vs the full scan
# and prints seconds, rows/s, the ratio vs the baseline and the backend's
# peak RSS (VmHWM, includes shared buffers touched) / RssAnon (private heap,
# which malloc keeps: it reflects the peak).  No parallel query, no JIT.
# Not part of the test suite.
set -eu
N=${N:-10000000}
PORT=${PORT:-54988}
BASE=${BENCH_DIR:-/tmp/tf_fdw_bench}
BIN=$(pg_config --bindir)
SELF=$(readlink -f "$0")
ROOT=$(dirname "$(dirname "$(dirname "$SELF")")")

if [ "$(id -u)" = 0 ]; then
  rm -rf "$BASE"; mkdir -p "$BASE"; chown postgres: "$BASE"
  exec runuser -u postgres -- env N="$N" PORT="$PORT" BENCH_DIR="$BASE" BENCH_AS_USER=1 KEEP="${KEEP:-}" PATH="$PATH" "$SELF"
fi
[ -n "${BENCH_AS_USER:-}" ] || { rm -rf "$BASE"; mkdir -p "$BASE"; }

DATA=$BASE/data
OUT=$BASE/out
mkdir -p "$OUT"
export PGHOST=$BASE PGPORT=$PORT PGDATABASE=postgres

"$BIN/initdb" -D "$DATA" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$BASE'
shared_buffers = 256MB
max_wal_size = 4GB
max_parallel_workers_per_gather = 0
# JIT (LLVM) would add ~10 MB of RssAnon to every plan above jit_above_cost
jit = off
shared_preload_libraries = 'taskflow'
EOF
"$BIN/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w start >/dev/null
trap '"$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$DATA" "$OUT"' EXIT

psql() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "loading $N rows, archiving 30 days ..."
psql <<EOF
CREATE EXTENSION taskflow;
CREATE SERVER bench FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$OUT/objects');
CREATE TABLE orders (order_id bigint, product_name varchar(32), price double precision,
                     total_amount double precision, created_date date);
INSERT INTO orders
  SELECT g, 'product ' || (g % 997), round((random() * 1000)::numeric, 2)::float8,
         round((random() * 5000)::numeric, 2)::float8, date '2020-06-01' + (g % 30)::int
    FROM generate_series(1, $N) g;
VACUUM (FREEZE, ANALYZE) orders;
SELECT sum(e.rows) AS archived_rows
  FROM generate_series(date '2020-06-01', date '2020-06-30', '1 day') d,
       taskflow.export(format('SELECT * FROM orders WHERE created_date = %L', d::date), 'bench',
                       to_char(d, '"dla_demo/y="YYYY"/m="MM"/d="DD"/"'), 'csv.gz') e;
CREATE FOREIGN TABLE oss_orders (order_id bigint, product_name varchar(32), price float8,
    total_amount float8, created_date date, y text, m text, d text)
    SERVER bench OPTIONS (path 'dla_demo/', format 'csv.gz', partition_columns 'y,m,d');
CREATE TABLE orders_import (LIKE orders);
EOF

# run statements in a fresh session; print "seconds vmhwm_kB rssanon_kB result"
measure() {
  local sql=$1 out
  out=$(psql -At <<EOF
SELECT pg_backend_pid() AS pid \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$sql \gset r_
SELECT extract(epoch FROM clock_timestamp()) - :t0,
       (regexp_match(pg_read_file('/proc/' || :pid || '/status'), 'VmHWM:\s+(\d+)'))[1],
       (regexp_match(pg_read_file('/proc/' || :pid || '/status'), 'RssAnon:\s+(\d+)'))[1],
       :'r_res';
EOF
)
  echo "$out" | tail -n 1 | tr '|' ' '
}
line() { # name secs hwm anon rows base_secs result
  awk -v n="$1" -v s="$2" -v h="$3" -v a="$4" -v rows="$5" -v base="$6" -v r="$7" 'BEGIN {
    printf "%-40s %9.2f %12.0f %8.2f %9.1f %10.1f  %s\n", n, s, rows / s, s / base, h / 1024, a / 1024, r }'
}
AGG="count(*) || '/' || round(sum(total_amount)::numeric, 2) AS res"
printf '\n%-40s %9s %12s %8s %9s %10s  %s\n' method seconds rows/s ratio VmHWM_MB RssAnon_MB result

read -r s_heap h a r < <(measure "SELECT $AGG FROM orders")
line "heap table (baseline)" "$s_heap" "$h" "$a" "$N" "$s_heap" "$r"

read -r s_ft h a r < <(measure "SELECT $AGG FROM oss_orders")
line "foreign table, full scan" "$s_ft" "$h" "$a" "$N" "$s_heap" "$r"

read -r s_imp h a r < <(measure "SELECT sum(taskflow.import('bench', to_char(d, '\"dla_demo/y=\"YYYY\"/m=\"MM\"/d=\"DD\"/\"'), 'orders_import', 'csv.gz')) AS n FROM generate_series(date '2020-06-01', date '2020-06-30', '1 day') d \\gset
SELECT $AGG FROM orders_import")
line "import() 30 days + query" "$s_imp" "$h" "$a" "$N" "$s_heap" "$r"

if [ -d "$ROOT/test/s3/node_modules/@duckdb" ] && command -v node >/dev/null; then
  t0=$(date +%s.%N)
  r=$(node "$ROOT/test/s3/duck_read.mjs" "$OUT/objects/dla_demo" --summary)
  t1=$(date +%s.%N)
  line "DuckDB read_csv (hive, all threads)" "$(echo "$t1 - $t0" | bc)" 0 0 "$N" "$s_heap" "$r"
else
  echo "DuckDB: skipped (no node / test/s3/node_modules)"
fi

read -r s_day h a r < <(measure "SELECT $AGG FROM oss_orders WHERE y = '2020' AND m = '06' AND d = '15'")
line "foreign table, one day (y/m/d =)" "$s_day" "$h" "$a" "$((N / 30))" "$s_heap" "$r"
awk -v d="$s_day" -v f="$s_ft" 'BEGIN { printf "one day vs full scan through the foreign table: %.3f (%.1fx faster)\n", d / f, f / d }'
psql -At -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(total_amount) FROM oss_orders WHERE y = '2020' AND m = '06' AND d = '15'" | grep -E 'Partitions|Objects|Prefix'
echo "archive: $(du -sb "$OUT/objects" | cut -f1) bytes in $(find "$OUT/objects" -name 'part-*' | wc -l) parts"
