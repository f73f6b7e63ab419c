#!/bin/bash
# Copy node benchmark: a copy node moving N rows from database src to
# database dst of one cluster, against the psql pipe baseline
#   psql -d src -c "\copy (SELECT * FROM orders) TO STDOUT" | psql -d dst -c "\copy orders FROM STDIN"
# measured in the same run on the same tables.  Prints seconds, rows/s, the
# ratio (baseline time / copy node time: > 1 means the node is faster) and
# the node worker's VmHWM (peak RSS, sampled from /proc/<pid>/status while
# it runs; it includes the shared buffers it touched) to show that memory
# stays flat whatever N is.  Then the same against a second cluster on
# PORT+1 (the "remote": a postgres_fdw server, target_server), with its own
# psql pipe baseline.
#
#   test/bench/copy_bench.sh              10M rows (takes a few minutes)
#   N=1000000 test/bench/copy_bench.sh    quicker run
# Not part of the test suite.
set -eu
N=${N:-10000000}
PORT=${PORT:-54988}
BASE=${BENCH_DIR:-/tmp/tf_copy_bench}
BIN=$(pg_config --bindir)
SELF=$(readlink -f "$0")

if [ "$(id -u)" = 0 ]; then
  rm -rf "$BASE"; mkdir -p "$BASE"; chown postgres: "$BASE"
  exec runuser -u postgres -- env N="$N" PORT="$PORT" BENCH_DIR="$BASE" BENCH_AS_USER=1 PATH="$PATH" "$SELF"
fi
[ -n "${BENCH_AS_USER:-}" ] || { rm -rf "$BASE"; mkdir -p "$BASE"; }

DATA=$BASE/data
DATA2=$BASE/data2
PORT2=$((PORT + 1))
export PGHOST=$BASE PGPORT=$PORT PGDATABASE=postgres
"$BIN/initdb" -D "$DATA" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
"$BIN/initdb" -D "$DATA2" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$DATA2/postgresql.conf" <<EOF
port = $PORT2
listen_addresses = ''
unix_socket_directories = '$BASE'
shared_buffers = 256MB
max_wal_size = 4GB
EOF
"$BIN/pg_ctl" -D "$DATA2" -l "$BASE/server2.log" -w start >/dev/null
cat >> "$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$BASE'
shared_buffers = 256MB
max_wal_size = 4GB
shared_preload_libraries = 'taskflow'
EOF
"$BIN/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w start >/dev/null
trap '"$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true; "$BIN/pg_ctl" -D "$DATA2" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$DATA" "$DATA2"' EXIT

psql() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }

echo "loading $N rows ..."
psql -c "CREATE DATABASE src" -c "CREATE DATABASE dst" -c "CREATE EXTENSION taskflow"
psql -d src <<EOF
CREATE TABLE orders (order_id bigint, product_name varchar(32), price double precision,
                     total_amount double precision, created_date date);
INSERT INTO orders
  SELECT g, 'product ' || (g % 997), round((random() * 1000)::numeric, 2)::float8,
         round((random() * 5000)::numeric, 2)::float8, date '2020-06-01' + (g % 30)::int
    FROM generate_series(1, $N) g;
VACUUM ANALYZE orders;
EOF
psql -d dst -c "CREATE TABLE orders (order_id bigint, product_name varchar(32), price double precision, total_amount double precision, created_date date)"
psql -c "CREATE TABLE orders (order_id bigint, product_name varchar(32), price double precision, total_amount double precision, created_date date)"
psql -d dst -c "CHECKPOINT"

# baseline: psql pipe
t0=$(now)
psql -d src -c "\\copy (SELECT * FROM orders) TO STDOUT" | psql -d dst -c "\\copy orders FROM STDIN"
t1=$(now)
base=$(echo "$t1 - $t0" | bc)
psql -d dst -c "TRUNCATE orders" -c "CHECKPOINT"

# run flow $1, sampling the node worker's VmHWM; sets secs, hwm, state
run_node() {
  t0=$(now)
  run=$(psql -tA -c "SELECT taskflow.run_flow('$1')")
  hwm=0
  # one light query a second, so that sampling does not steal the CPU it measures
  while :; do
    IFS='|' read -r state pid <<<"$(psql -tA -c "SELECT r.state, (SELECT a.pid FROM pg_stat_activity a WHERE a.backend_type = 'taskflow node' LIMIT 1) FROM taskflow.runs r WHERE r.id = $run")"
    if [ -n "$pid" ] && [ -r /proc/$pid/status ]; then
      h=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0)
      [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    fi
    [ "$state" = running ] || break
    sleep 1
  done
  t1=$(now)
  # the node's own time (started_at .. finished_at): the wall time above
  # also includes dispatch and up to 1 s of sampling granularity
  secs=$(psql -tA -c "SELECT extract(epoch FROM finished_at - started_at) FROM taskflow.node_run_history WHERE run_id = $run")
  psql -c "SELECT rows, pg_size_pretty(bytes) AS moved, finished_at - started_at AS took FROM taskflow.node_run_history WHERE run_id = $run"
}

psql <<EOF
SELECT taskflow.create_flow('bench');
SELECT taskflow.add_node('bench', 'copy', 'copy', options => '{"table": "orders", "source_database": "src",
  "target": "orders", "target_database": "dst"}');
SELECT taskflow.create_flow('bench_here');
SELECT taskflow.add_node('bench_here', 'copy', 'copy', options => '{"table": "orders", "source_database": "src",
  "target": "orders"}');
EOF
# the copy node, target in another database (libpq on both sides)
run_node bench
node=$secs; node_hwm=$hwm
echo "state: $state, rows in target: $(psql -d dst -tA -c "SELECT count(*) FROM orders")"
psql -c "CHECKPOINT"
# the copy node, target in the flow's database (CopyFrom in the worker)
run_node bench_here
here=$secs; here_hwm=$hwm
echo "state: $state, rows in target: $(psql -tA -c "SELECT count(*) FROM orders")"

# the second cluster: baseline pipe, then the node with target_server
CREATE_T="CREATE TABLE orders (order_id bigint, product_name varchar(32), price double precision, total_amount double precision, created_date date)"
psql -p "$PORT2" -c "$CREATE_T" -c "CHECKPOINT"
t0=$(now)
psql -d src -c "\\copy (SELECT * FROM orders) TO STDOUT" | psql -p "$PORT2" -c "\\copy orders FROM STDIN"
t1=$(now)
base2=$(echo "$t1 - $t0" | bc)
psql -p "$PORT2" -c "TRUNCATE orders" -c "CHECKPOINT"
psql <<EOF
CREATE EXTENSION postgres_fdw;
CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$BASE', port '$PORT2', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER remote;
SELECT taskflow.create_flow('bench_remote');
SELECT taskflow.add_node('bench_remote', 'copy', 'copy', options => '{"table": "orders", "source_database": "src",
  "target": "orders", "target_server": "remote"}');
EOF
run_node bench_remote
remote=$secs; remote_hwm=$hwm
echo "state: $state, rows in target: $(psql -p "$PORT2" -tA -c "SELECT count(*) FROM orders")"

printf '%-32s %8.2f s %12.0f rows/s\n' "psql \\copy | psql \\copy" "$base" "$(echo "$N / $base" | bc -l)"
printf '%-32s %8.2f s %12.0f rows/s   ratio %.2fx   worker VmHWM %d kB\n' "copy node (src -> dst)" "$node" \
  "$(echo "$N / $node" | bc -l)" "$(echo "$base / $node" | bc -l)" "$node_hwm"
printf '%-32s %8.2f s %12.0f rows/s   ratio %.2fx   worker VmHWM %d kB\n' "copy node (src -> flow's db)" "$here" \
  "$(echo "$N / $here" | bc -l)" "$(echo "$base / $here" | bc -l)" "$here_hwm"
printf '%-32s %8.2f s %12.0f rows/s\n' "psql pipe to the 2nd cluster" "$base2" "$(echo "$N / $base2" | bc -l)"
printf '%-32s %8.2f s %12.0f rows/s   ratio %.2fx   worker VmHWM %d kB\n' "copy node (src -> 2nd cluster)" "$remote" \
  "$(echo "$N / $remote" | bc -l)" "$(echo "$base2 / $remote" | bc -l)" "$remote_hwm"
