#!/bin/bash
# Export benchmark: taskflow.export() vs COPY, on a table of the orders shape.
#
#   test/bench/export_bench.sh              10M rows (takes a few minutes)
#   N=1000000 test/bench/export_bench.sh    quicker run
#   KEEP=1 ...                              keep the cluster and files in $BENCH_DIR
#
# Starts a throwaway cluster (as postgres when run as root), loads N rows,
# then times, each in a fresh session:
#   COPY (SELECT ...) TO '/tmp/.../copy.csv' (FORMAT csv, HEADER)     baseline csv
#   taskflow.export(..., 'csv')  to a file:// server
#   COPY (SELECT ...) TO PROGRAM 'gzip > ...' (FORMAT csv, HEADER)     baseline csv.gz
#   taskflow.export(..., 'csv.gz')
# and prints seconds, rows/s, output MB, the ratio vs the baseline, and the
# exporting backend's memory from /proc/<pid>/status: VmHWM (peak RSS; it
# includes the shared buffers the backend touched, so compare against the
# COPY line) and RssAnon after the statement (private heap, which malloc
# keeps, so it reflects the peak of palloc'd memory).
# Not part of the test suite.
set -eu
N=${N:-10000000}
PORT=${PORT:-54987}
BASE=${BENCH_DIR:-/tmp/tf_export_bench}
BIN=$(pg_config --bindir)
SELF=$(readlink -f "$0")

if [ "$(id -u)" = 0 ]; then
  rm -rf "$BASE"; mkdir -p "$BASE"; chown postgres: "$BASE"
  exec runuser -u postgres -- env N="$N" PORT="$PORT" BENCH_DIR="$BASE" BENCH_AS_USER=1 KEEP="${KEEP:-}" "$SELF"
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
shared_preload_libraries = 'taskflow'
EOF
"$BIN/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w start >/dev/null
trap '"$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$DATA" "$OUT"' EXIT

psql() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "loading $N rows ..."
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
SELECT count(*) FROM orders;
EOF

# run one statement in a fresh session; print "seconds vmhwm_kB"
measure() {
  local sql=$1 out
  out=$(psql -At <<EOF
SELECT pg_backend_pid() AS pid \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$sql;
SELECT extract(epoch FROM clock_timestamp()) - :t0,
       (regexp_match(pg_read_file('/proc/' || :pid || '/status'), 'VmHWM:\s+(\d+)'))[1],
       (regexp_match(pg_read_file('/proc/' || :pid || '/status'), 'RssAnon:\s+(\d+)'))[1];
EOF
)
  echo "$out" | tail -n 1 | tr '|' ' '
}

Q="SELECT * FROM orders"
printf '\n%-34s %9s %12s %9s %8s %11s %12s\n' method seconds rows/s MB ratio VmHWM_MB RssAnon_MB
line() { # name secs hwm anon bytes base_secs
  awk -v n="$1" -v s="$2" -v h="$3" -v a="$4" -v b="$5" -v base="$6" -v rows="$N" 'BEGIN {
    printf "%-34s %9.2f %12.0f %9.1f %8.2f %11.1f %12.1f\n", n, s, rows / s, b / 1048576, s / base, h / 1024, a / 1024 }'
}
size_of() { du -cb "$@" | tail -n 1 | cut -f1; }

read -r s_copy h_copy a_copy < <(measure "COPY ($Q) TO '$OUT/copy.csv' (FORMAT csv, HEADER)")
line "COPY TO file (csv)" "$s_copy" "$h_copy" "$a_copy" "$(size_of "$OUT/copy.csv")" "$s_copy"

read -r s_exp h_exp a_exp < <(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'csv/', 'csv')")
line "taskflow.export csv" "$s_exp" "$h_exp" "$a_exp" "$(size_of "$OUT"/objects/csv/part-*)" "$s_copy"

read -r s_copyz h_copyz a_copyz < <(measure "COPY ($Q) TO PROGRAM 'gzip > $OUT/copy.csv.gz' (FORMAT csv, HEADER)")
line "COPY TO PROGRAM gzip (csv.gz)" "$s_copyz" "$h_copyz" "$a_copyz" "$(size_of "$OUT/copy.csv.gz")" "$s_copyz"

read -r s_expz h_expz a_expz < <(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'gz/', 'csv.gz')")
line "taskflow.export csv.gz" "$s_expz" "$h_expz" "$a_expz" "$(size_of "$OUT"/objects/gz/part-*)" "$s_copyz"

# the csv export is byte-identical to COPY's output (parts concatenated minus repeated headers)
first=1; : > "$OUT/joined.csv"
for f in "$OUT"/objects/csv/part-*.csv; do
  if [ $first = 1 ]; then cat "$f" >> "$OUT/joined.csv"; first=0; else tail -n +2 "$f" >> "$OUT/joined.csv"; fi
done
if cmp -s "$OUT/joined.csv" "$OUT/copy.csv"; then echo "csv parts == COPY output: yes"; else echo "csv parts == COPY output: NO"; fi
echo "parts: csv $(ls "$OUT"/objects/csv/part-* | wc -l), csv.gz $(ls "$OUT"/objects/gz/part-* | wc -l)"
rm -rf "$OUT"
