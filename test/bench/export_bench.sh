#!/bin/bash
# Export benchmark: taskflow.export() vs COPY and vs a hand-made pipeline.
#
#   test/bench/export_bench.sh              10M rows (several minutes)
#   N=1000000 test/bench/export_bench.sh    quicker run
#   KEEP=1 ...                              keep the cluster in $DIR
#
# Run as root from anywhere (the cluster runs as postgres, see lib.sh).
# Starts a throwaway cluster and the local S3 server (test/s3/server.js, a
# node.js process: it may itself be the bottleneck, so its raw PUT
# throughput is measured too), loads N rows of the orders shape, then times,
# each statement in a fresh session:
#   file://  COPY (...) TO 'file' (FORMAT csv, HEADER)        baseline csv
#            taskflow.export csv    to a file:// server
#            COPY (...) TO PROGRAM 'gzip > file'               baseline csv.gz
#            taskflow.export csv.gz to a file:// server (level 6, then 1)
#            COPY (...) TO PROGRAM 'zstd -o file'              baseline csv.zst
#            taskflow.export csv.zst to a file:// server
#   S3       curl PUT of the COPY output file (the server's raw throughput)
#            psql \copy | curl --aws-sigv4 -T -                baseline csv
#            taskflow.export csv    to S3
#            psql \copy | gzip | curl --aws-sigv4 -T -         baseline csv.gz
#            taskflow.export csv.gz to S3
#            psql \copy | zstd | curl --aws-sigv4 -T -         baseline csv.zst
#            taskflow.export csv.zst to S3
# and prints seconds, rows/s, output MB, speed vs the baseline of its group
# (baseline seconds / seconds: > 1 is faster), and the exporting backend's
# memory sampled every 0.1 s DURING the statement from /proc/<pid>/status:
# peak VmRSS (includes the shared buffers it touched) and peak RssAnon
# (private memory: buffers, libcurl, compressor); then the same exports as
# archive nodes run by a taskflow worker (timed from run_flow to wait_run,
# so including dispatch), the worker sampled the same way.  The load average is
# printed before and after (2 cores shared with others: read ratios, not
# absolute seconds).  Not part of the test suite.
set -eu
cd "$(dirname "$0")/../.."
N=${N:-10000000}
PORT=${PORT:-54987}
DIR=${DIR:-/tmp/tf_export_bench}
. test/bench/lib.sh
AK=benchkey SK=benchsecret0123456789

bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
shared_buffers = 256MB
max_wal_size = 4GB
CONF
OUT=$DIR/out S3DIR=$DIR/s3
mkdir -p "$OUT/objects" "$S3DIR"; chown -R postgres: "$OUT"

# the local S3 server, stopped at exit with the cluster
S3_PORT=0 S3_DIR=$S3DIR S3_ACCESS_KEY=$AK S3_SECRET_KEY=$SK S3_BUCKETS=bench \
  node --openssl-legacy-provider test/s3/server.js > "$DIR/s3.out" 2> "$DIR/s3.log" &
S3PID=$!
cleanup() {
  kill "$S3PID" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || { as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$OUT" "$S3DIR"; }
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q 'listening on' "$DIR/s3.out" 2>/dev/null && break; sleep 0.1; done
S3PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$DIR/s3.out")
[ -n "$S3PORT" ] || { echo "S3 server did not start"; cat "$DIR/s3.log"; exit 1; }
EP=http://127.0.0.1:$S3PORT

echo "loading $N rows ..."
psql_ >/dev/null <<EOF
CREATE EXTENSION taskflow;
CREATE SERVER bench FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$OUT/objects');
CREATE SERVER bench_s3 FOREIGN DATA WRAPPER taskflow_storage
  OPTIONS (url 's3://bench/tf', endpoint '$EP', region 'us-east-1', url_style 'path');
CREATE USER MAPPING FOR PUBLIC SERVER bench_s3
  OPTIONS (access_key_id '$AK', secret_access_key '$SK');
CREATE TABLE orders (order_id bigint, product_name varchar(32), price double precision,
                     total_amount double precision, created_date date);
INSERT INTO orders
  SELECT g, 'product ' || (g % 997), round((random() * 1000)::numeric, 2)::float8,
         round((random() * 5000)::numeric, 2)::float8, date '2020-06-01' + (g % 30)::int
    FROM generate_series(1, $N) g;
VACUUM (FREEZE, ANALYZE) orders;
SELECT count(*) FROM orders;
EOF

now() { date +%s.%N; }
# peak VmRSS / RssAnon (kB) of pid, sampled until the file $2 appears
sample() {
  local pid=$1 stop=$2 rss=0 anon=0 r a
  while [ ! -e "$stop" ] && [ -r "/proc/$pid/status" ]; do
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    a=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$rss" ] && rss=$r
    [ "${a:-0}" -gt "$anon" ] && anon=$a
    sleep 0.1
  done
  echo "$rss $anon"
}
# run one statement in a fresh session; print "seconds peak_rss_kB peak_anon_kB"
n=0
measure() {
  local sql=$1 t0 t1 pidf=$DIR/pid.$n stop=$DIR/stop.$n pid mem
  n=$((n + 1))
  rm -f "$pidf" "$stop"
  as_pg "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -d postgres \
     -c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(0.3)" -c "$sql" > "$pidf.out" &
  local job=$!
  for _ in $(seq 100); do [ -s "$pidf.out" ] && break; sleep 0.05; done
  pid=$(head -n 1 "$pidf.out")
  t0=$(now)
  sample "$pid" "$stop" > "$pidf.mem" &
  local sp=$!
  wait "$job"; t1=$(now); touch "$stop"; wait "$sp"
  mem=$(cat "$pidf.mem")
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a - 0.3}') $mem"
}
# time a shell pipeline; print "seconds 0 0"
measure_sh() {
  local t0 t1
  t0=$(now); bash -o pipefail -c "$1" > /dev/null; t1=$(now)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') 0 0"
}
size_of() { du -cb "$@" | tail -n 1 | cut -f1; }
s3_size() { size_of "$S3DIR/bench/$1"; }

Q="SELECT * FROM orders"
CURL="curl -sS --fail --aws-sigv4 aws:amz:us-east-1:s3 --user $AK:$SK -H x-amz-content-sha256:UNSIGNED-PAYLOAD"
COPYOUT="$BIN/psql -X -q -h $DIR -p $PORT -U postgres -d postgres -c '\\copy ($Q) TO STDOUT (FORMAT csv, HEADER)'"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-38s %8s %11s %8s %10s %9s %10s\n' method seconds rows/s MB speed peakRSS_MB peakAnon_MB
line() { # name secs rss anon bytes base_secs
  awk -v n="$1" -v s="$2" -v h="$3" -v a="$4" -v b="$5" -v base="$6" -v rows="$N" 'BEGIN {
    printf "%-38s %8.2f %11.0f %8.1f %9.2fx %9.1f %10.1f\n", n, s, rows / s, b / 1048576, base / s, h / 1024, a / 1024 }'
}

echo "-- file:// (speed vs COPY TO)"
read -r s_copy h a < <(measure "COPY ($Q) TO '$OUT/copy.csv' (FORMAT csv, HEADER)")
line "COPY TO file (csv)" "$s_copy" "$h" "$a" "$(size_of "$OUT/copy.csv")" "$s_copy"
read -r s h a < <(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'csv/', 'csv')")
line "taskflow.export csv -> file://" "$s" "$h" "$a" "$(size_of "$OUT"/objects/csv/part-*)" "$s_copy"
read -r s_copyz h a < <(measure "COPY ($Q) TO PROGRAM 'gzip > $OUT/copy.csv.gz' (FORMAT csv, HEADER)")
line "COPY TO PROGRAM gzip (csv.gz)" "$s_copyz" "$h" "$a" "$(size_of "$OUT/copy.csv.gz")" "$s_copyz"
read -r s h a < <(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'gz/', 'csv.gz')")
line "taskflow.export csv.gz -> file://" "$s" "$h" "$a" "$(size_of "$OUT"/objects/gz/part-*)" "$s_copyz"
read -r s h a < <(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'gz1/', 'csv.gz', '{\"compression_level\": 1}')")
line "taskflow.export csv.gz level 1 -> file://" "$s" "$h" "$a" "$(size_of "$OUT"/objects/gz1/part-*)" "$s_copyz"
read -r s_copyzst h a < <(measure "COPY ($Q) TO PROGRAM 'zstd -q -o $OUT/copy.csv.zst' (FORMAT csv, HEADER)")
line "COPY TO PROGRAM zstd (csv.zst)" "$s_copyzst" "$h" "$a" "$(size_of "$OUT/copy.csv.zst")" "$s_copyzst"
read -r s h a < <(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'zst/', 'csv.zst')")
line "taskflow.export csv.zst -> file://" "$s" "$h" "$a" "$(size_of "$OUT"/objects/zst/part-*)" "$s_copyzst"

echo "-- S3, local node.js server (speed vs psql | [gzip |] curl)"
read -r s_put h a < <(measure_sh "$CURL -T '$OUT/copy.csv' $EP/bench/raw/copy.csv")
line "raw curl PUT of the csv (server limit)" "$s_put" 0 0 "$(size_of "$OUT/copy.csv")" "$s_put"
read -r s_pipe h a < <(measure_sh "$COPYOUT | $CURL -T - $EP/bench/pipe/copy.csv")
line "psql \\copy | curl (csv)" "$s_pipe" 0 0 "$(s3_size pipe)" "$s_pipe"
read -r s h a < <(measure "SELECT * FROM taskflow.export('$Q', 'bench_s3', 'csv/', 'csv')")
line "taskflow.export csv -> S3" "$s" "$h" "$a" "$(s3_size tf/csv)" "$s_pipe"
read -r s_pipez h a < <(measure_sh "$COPYOUT | gzip | $CURL -T - $EP/bench/pipez/copy.csv.gz")
line "psql \\copy | gzip | curl (csv.gz)" "$s_pipez" 0 0 "$(s3_size pipez)" "$s_pipez"
read -r s h a < <(measure "SELECT * FROM taskflow.export('$Q', 'bench_s3', 'gz/', 'csv.gz')")
line "taskflow.export csv.gz -> S3" "$s" "$h" "$a" "$(s3_size tf/gz)" "$s_pipez"
read -r s_pipezst h a < <(measure_sh "$COPYOUT | zstd -q | $CURL -T - $EP/bench/pipezst/copy.csv.zst")
line "psql \\copy | zstd | curl (csv.zst)" "$s_pipezst" 0 0 "$(s3_size pipezst)" "$s_pipezst"
read -r s h a < <(measure "SELECT * FROM taskflow.export('$Q', 'bench_s3', 'zst/', 'csv.zst')")
line "taskflow.export csv.zst -> S3" "$s" "$h" "$a" "$(s3_size tf/zst)" "$s_pipezst"

echo "-- archive node (a taskflow worker, not a client backend) to S3, one run over all N rows"
psql_ >/dev/null <<EOF
SELECT taskflow.create_flow('bench_arch');
SELECT taskflow.add_node('bench_arch', 'archive', 'archive',
  options => '{"server": "bench_s3", "path": "arch/", "table": "orders", "format": "csv"}');
SELECT taskflow.create_flow('bench_archz');
SELECT taskflow.add_node('bench_archz', 'archive', 'archive',
  options => '{"server": "bench_s3", "path": "archz/", "table": "orders", "format": "csv.gz"}');
EOF
# peak VmRSS / RssAnon (kB) over the taskflow node workers, until $1 appears
sample_workers() {
  local stop=$1 rss=0 anon=0 pm p r a cmd
  pm=$(head -n 1 "$DIR/data/postmaster.pid")
  while [ ! -e "$stop" ]; do
    for p in $(pgrep -P "$pm"); do
      cmd=$( { tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null || true)
      case $cmd in *launcher*|*scheduler*) continue ;; *taskflow*) ;; *) continue ;; esac
      read -r r a < <(awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} END {print r + 0, a + 0}' "/proc/$p/status" 2>/dev/null || echo "0 0")
      [ "${r:-0}" -gt "$rss" ] && rss=$r
      [ "${a:-0}" -gt "$anon" ] && anon=$a
    done
    sleep 0.1
  done
  echo "$rss $anon"
}
measure_arch() { # flow -> "seconds rss anon"
  local stop=$DIR/stop.$1 t0 t1 run st sp
  rm -f "$stop"
  sample_workers "$stop" > "$DIR/$1.mem" &
  sp=$!
  t0=$(now)
  run=$(psql_ -c "SELECT taskflow.run_flow('$1')")
  st=$(psql_ -c "SELECT taskflow.wait_run($run, '30 minutes')")
  t1=$(now); touch "$stop"; wait "$sp"
  [ "$st" = succeeded ] || { echo "archive run $run: $st" >&2; psql_ -c "SELECT error FROM taskflow.node_run_history WHERE run_id = $run" >&2; }
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') $(cat "$DIR/$1.mem")"
}
read -r s h a < <(measure_arch bench_arch)
line "archive node csv -> S3" "$s" "$h" "$a" "$(s3_size tf/arch)" "$s_pipe"
read -r s h a < <(measure_arch bench_archz)
line "archive node csv.gz -> S3" "$s" "$h" "$a" "$(s3_size tf/archz)" "$s_pipez"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# the csv export is byte-identical to COPY's output (parts concatenated minus repeated headers)
first=1; : > "$OUT/joined.csv"
for f in "$OUT"/objects/csv/part-*.csv; do
  if [ $first = 1 ]; then cat "$f" >> "$OUT/joined.csv"; first=0; else tail -n +2 "$f" >> "$OUT/joined.csv"; fi
done
if cmp -s "$OUT/joined.csv" "$OUT/copy.csv"; then echo "csv parts == COPY output: yes"; else echo "csv parts == COPY output: NO"; fi
# the gzip parts (concatenated gzip members) decompress to the same rows
if [ "$(zcat "$OUT"/objects/gz/part-*.csv.gz | grep -vc '^order_id,')" = "$N" ]; then
  echo "csv.gz parts: zcat reads $N rows: yes"; else echo "csv.gz parts: zcat row count: NO"; fi
if [ "$(zstd -dcq "$OUT"/objects/zst/part-*.csv.zst | grep -vc '^order_id,')" = "$N" ]; then
  echo "csv.zst parts: zstd -d reads $N rows: yes"; else echo "csv.zst parts: zstd -d row count: NO"; fi
echo "parts: csv $(ls "$OUT"/objects/csv/part-* | wc -l), csv.gz $(ls "$OUT"/objects/gz/part-* | wc -l), csv.zst $(ls "$OUT"/objects/zst/part-* | wc -l)"
