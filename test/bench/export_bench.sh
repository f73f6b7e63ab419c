#!/bin/bash
# Export benchmark: taskflow.export() vs COPY and vs a hand-made pipeline.
#
#   test/bench/export_bench.sh              10M rows (several minutes)
#   N=1000000 test/bench/export_bench.sh    quicker run
#   REPEAT=3 ...                            every method 3 times, best time kept
#   KEEP=1 ...                              keep the cluster in $DIR
#   ONLY=s3 ...                             only COPY TO file (csv) and the
#                                           csv exports to S3 (quicker)
#
# Run as root from anywhere (the cluster runs as postgres, see lib.sh).
# Starts a throwaway cluster and the local S3 server (test/s3/server.js, a
# node.js process: it may itself be the bottleneck, so its raw PUT
# throughput is measured too), loads N rows of the orders shape, then times,
# each statement in a fresh session:
#   file://  COPY (...) TO 'file' (FORMAT csv, HEADER)        baseline csv
#            the same followed by an fsync of the file (export() fsyncs
#            every part: the like-for-like baseline)
#            taskflow.export csv    to a file:// server
#            COPY (...) TO PROGRAM 'gzip > file'               baseline csv.gz
#            taskflow.export csv.gz to a file:// server (level 6, then 1)
#            COPY (...) TO PROGRAM 'zstd -o file'              baseline csv.zst
#            taskflow.export csv.zst to a file:// server
#   S3       curl PUT of the COPY output file (the server's raw throughput)
#            psql \copy | curl --aws-sigv4 -T -                baseline csv
#            psql \copy | dd bs=64k | curl ... -T -   the same re-blocked to
#                                     64 kB HTTP chunks (the stronger baseline)
#            taskflow.export csv    to S3 (payload_signing 'off': the
#            pipeline's own mode, UNSIGNED-PAYLOAD + signed Content-MD5;
#            one line each, serial and parallel, with 'on' for comparison)
#            psql \copy | gzip | curl --aws-sigv4 -T -         baseline csv.gz
#            taskflow.export csv.gz to S3
#            psql \copy | zstd | curl --aws-sigv4 -T -         baseline csv.zst
#            taskflow.export csv.zst to S3
# every taskflow export twice: serial ('{"parallel": 1}') and parallel (the
# automatic choice, PAR='{"parallel": N}' to force N processes: the leader
# and N-1 parallel workers, see docs/archive.md "Parallel export"),
# and prints seconds, rows/s, output MB, speed vs the baseline of its group
# (baseline seconds / seconds: > 1 is faster), and the exporting backend's
# memory sampled every 0.1 s DURING the statement from /proc/<pid>/status
# (of the backend and of its parallel workers; the highest of any one
# process): peak VmRSS (includes the shared buffers it touched) and peak
# RssAnon (private memory: buffers, libcurl, compressor); then the same exports as
# archive nodes run by a taskflow worker (timed from run_flow to wait_run,
# so including dispatch), the worker sampled the same way.  The load average is
# printed before and after (2 cores shared with others: read ratios, not
# absolute seconds).  For the S3 methods the CPU seconds the node.js S3
# server spent meanwhile are printed too (srvCPU_s, utime + stime from
# /proc/<pid>/stat, with its reaped children: the cat(1) that assembles a
# completed multipart upload): the single-process server shares the 2 cores.
# Not part of the test suite.
set -eu
cd "$(dirname "$0")/../.."
N=${N:-10000000}
REPEAT=${REPEAT:-1}
PORT=${PORT:-54987}
DIR=${DIR:-/tmp/tf_export_bench}
PAR=${PAR:-'{}'}          # options of the parallel runs ('{}': automatic)
SER='{"parallel": 1}'    # options of the serial runs
ONLY=${ONLY:-}
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
  OPTIONS (url 's3://bench/tf', endpoint '$EP', region 'us-east-1', url_style 'path',
           payload_signing 'off');
CREATE USER MAPPING FOR PUBLIC SERVER bench_s3
  OPTIONS (access_key_id '$AK', secret_access_key '$SK');
CREATE SERVER bench_s3_on FOREIGN DATA WRAPPER taskflow_storage
  OPTIONS (url 's3://bench/tfon', endpoint '$EP', region 'us-east-1', url_style 'path',
           payload_signing 'on');
CREATE USER MAPPING FOR PUBLIC SERVER bench_s3_on
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
# peak VmRSS / RssAnon (kB) of pid and of its parallel workers (the highest
# of any one process), sampled until the file $2 appears
sample() {
  local pid=$1 stop=$2 rss=0 anon=0 r a p pm
  pm=$(head -n 1 "$DIR/data/postmaster.pid")
  while [ ! -e "$stop" ] && [ -r "/proc/$pid/status" ]; do
    for p in $pid $(pgrep -P "$pm" -f "parallel worker for PID $pid" || true); do
      read -r r a < <(awk '/^VmRSS:/ {r = $2} /^RssAnon:/ {a = $2} END {print r + 0, a + 0}' "/proc/$p/status" 2>/dev/null || echo "0 0")
      [ "${r:-0}" -gt "$rss" ] && rss=$r
      [ "${a:-0}" -gt "$anon" ] && anon=$a
    done
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
# CPU seconds (utime + stime) of the S3 server so far, with its reaped
# children (cutime + cstime: the cat(1) that assembles multipart objects)
srv_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$S3PID/stat"; }
# an S3 method: "seconds rss anon" of the measure* command, and the server's
# CPU seconds meanwhile into $DIR/srvcpu (rec ... s3 keeps it)
declare -A C
s3m() { # measure-function argument
  local c0 r
  c0=$(srv_cpu); r=$("$1" "$2")
  awk -v a="$c0" -v b="$(srv_cpu)" 'BEGIN {print b - a}' > "$DIR/srvcpu"
  echo "$r"
}
s3_size() { size_of "$S3DIR/bench/$1"; }

Q="SELECT * FROM orders"
CURL="curl -sS --fail --aws-sigv4 aws:amz:us-east-1:s3 --user $AK:$SK -H x-amz-content-sha256:UNSIGNED-PAYLOAD"
COPYOUT="$BIN/psql -X -q -h $DIR -p $PORT -U postgres -d postgres -c '\\copy ($Q) TO STDOUT (FORMAT csv, HEADER)'"

# peak VmRSS / RssAnon (kB) over the taskflow node workers, until $1 appears
sample_workers() {
  local stop=$1 rss=0 anon=0 pm p r a cmd
  pm=$(head -n 1 "$DIR/data/postmaster.pid")
  while [ ! -e "$stop" ]; do
    for p in $(pgrep -P "$pm"); do
      cmd=$( { tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null || true)
      case $cmd in *launcher*|*scheduler*) continue ;; *taskflow*|*"parallel worker"*) ;; *) continue ;; esac
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
psql_ >/dev/null <<EOF
SELECT taskflow.create_flow('bench_arch');
SELECT taskflow.add_node('bench_arch', 'archive', 'archive',
  options => '{"server": "bench_s3", "path": "arch/", "table": "orders", "format": "csv", "parallel": 1}');
SELECT taskflow.create_flow('bench_archz');
SELECT taskflow.add_node('bench_archz', 'archive', 'archive',
  options => '{"server": "bench_s3", "path": "archz/", "table": "orders", "format": "csv.gz", "parallel": 1}');
SELECT taskflow.create_flow('bench_parch');
SELECT taskflow.add_node('bench_parch', 'archive', 'archive',
  options => '{"server": "bench_s3", "path": "parch/", "table": "orders", "format": "csv"}'::jsonb || '$PAR'::jsonb);
SELECT taskflow.create_flow('bench_parchz');
SELECT taskflow.add_node('bench_parchz', 'archive', 'archive',
  options => '{"server": "bench_s3", "path": "parchz/", "table": "orders", "format": "csv.gz"}'::jsonb || '$PAR'::jsonb);
EOF

# every method REPEAT times, round after round (so a burst of load hits one
# round, not one method); per method the fastest time and the highest memory
declare -A S H A B BASE
ORDER=()
rec() { # label base_label "secs rss anon" bytes [s3: keep the server's CPU]
  local l=$1 s h a c=
  read -r s h a <<< "$3"
  [ "${5:-}" = s3 ] && c=$(cat "$DIR/srvcpu")
  if [ -z "${S[$l]:-}" ]; then
    ORDER+=("$l"); S[$l]=$s; H[$l]=$h; A[$l]=$a; C[$l]=$c
  else
    if awk -v x="$s" -v y="${S[$l]}" 'BEGIN {exit !(x < y)}'; then S[$l]=$s; C[$l]=$c; fi
    [ "$h" -gt "${H[$l]}" ] && H[$l]=$h
    [ "$a" -gt "${A[$l]}" ] && A[$l]=$a
  fi
  BASE[$l]=$2; B[$l]=$4
}
group() { [ -n "${S[$1]:-}" ] || { ORDER+=("$1"); S[$1]=0; }; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$REPEAT"); do
  echo "round $round of $REPEAT ..."
  group "-- file:// (speed vs COPY TO)"
  r=$(measure "COPY ($Q) TO '$OUT/copy.csv' (FORMAT csv, HEADER)")
  rec "COPY TO file (csv)" "COPY TO file (csv)" "$r" "$(size_of "$OUT/copy.csv")"
  if [ "$ONLY" != s3 ]; then
  # export() fsyncs every part before it counts as written (the archive
  # deletes the source after that): the like-for-like baseline syncs too
  read -r fs _ < <(measure_sh "sync '$OUT/copy.csv'")
  rec "COPY TO file, then fsync (csv)" "COPY TO file (csv)" \
    "$(echo "$r" | awk -v f="$fs" '{print $1 + f, $2, $3}')" "$(size_of "$OUT/copy.csv")"
  r=$(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'csv/', 'csv', '$SER')")
  rec "taskflow.export csv -> file://" "COPY TO file (csv)" "$r" "$(size_of "$OUT"/objects/csv/part-*)"
  rec "  the same, vs COPY TO file + fsync" "COPY TO file, then fsync (csv)" "$r" "$(size_of "$OUT"/objects/csv/part-*)"
  r=$(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'pcsv/', 'csv', '$PAR')")
  rec "  parallel export csv -> file://" "COPY TO file (csv)" "$r" "$(size_of "$OUT"/objects/pcsv/part-*)"
  rec "  parallel, vs COPY TO file + fsync" "COPY TO file, then fsync (csv)" "$r" "$(size_of "$OUT"/objects/pcsv/part-*)"
  rec "COPY TO PROGRAM gzip (csv.gz)" "COPY TO PROGRAM gzip (csv.gz)" \
    "$(measure "COPY ($Q) TO PROGRAM 'gzip > $OUT/copy.csv.gz' (FORMAT csv, HEADER)")" "$(size_of "$OUT/copy.csv.gz")"
  rec "taskflow.export csv.gz -> file://" "COPY TO PROGRAM gzip (csv.gz)" \
    "$(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'gz/', 'csv.gz', '$SER')")" "$(size_of "$OUT"/objects/gz/part-*)"
  rec "  parallel export csv.gz -> file://" "COPY TO PROGRAM gzip (csv.gz)" \
    "$(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'pgz/', 'csv.gz', '$PAR')")" "$(size_of "$OUT"/objects/pgz/part-*)"
  rec "taskflow.export csv.gz level 1 -> file://" "COPY TO PROGRAM gzip (csv.gz)" \
    "$(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'gz1/', 'csv.gz', '{\"compression_level\": 1, \"parallel\": 1}')")" "$(size_of "$OUT"/objects/gz1/part-*)"
  rec "COPY TO PROGRAM zstd (csv.zst)" "COPY TO PROGRAM zstd (csv.zst)" \
    "$(measure "COPY ($Q) TO PROGRAM 'zstd -q -f -o $OUT/copy.csv.zst' (FORMAT csv, HEADER)")" "$(size_of "$OUT/copy.csv.zst")"
  rec "taskflow.export csv.zst -> file://" "COPY TO PROGRAM zstd (csv.zst)" \
    "$(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'zst/', 'csv.zst', '$SER')")" "$(size_of "$OUT"/objects/zst/part-*)"
  rec "  parallel export csv.zst -> file://" "COPY TO PROGRAM zstd (csv.zst)" \
    "$(measure "SELECT * FROM taskflow.export('$Q', 'bench', 'pzst/', 'csv.zst', '$PAR')")" "$(size_of "$OUT"/objects/pzst/part-*)"
  fi

  group "-- S3, local node.js server (speed vs psql | [gzip |] curl; taskflow: payload_signing 'off')"
  rec "raw curl PUT of the csv (server limit)" "raw curl PUT of the csv (server limit)" \
    "$(s3m measure_sh "$CURL -T '$OUT/copy.csv' $EP/bench/raw/copy.csv")" "$(size_of "$OUT/copy.csv")" s3
  rec "psql \\copy | curl (csv)" "psql \\copy | curl (csv)" \
    "$(s3m measure_sh "$COPYOUT | $CURL -T - $EP/bench/pipe/copy.csv")" "$(s3_size pipe)" s3
  # the same pipeline re-blocked to 64 kB HTTP chunks (see export_s3_pairs.sh):
  # cheaper for the node.js server, the stronger hand-made baseline
  rec "psql \\copy | dd 64k | curl (csv)" "psql \\copy | dd 64k | curl (csv)" \
    "$(s3m measure_sh "$COPYOUT | dd bs=64k iflag=fullblock status=none | $CURL -T - $EP/bench/pipe2/copy.csv")" "$(s3_size pipe2)" s3
  rec "taskflow.export csv -> S3" "psql \\copy | curl (csv)" \
    "$(s3m measure "SELECT * FROM taskflow.export('$Q', 'bench_s3', 'csv/', 'csv', '$SER')")" "$(s3_size tf/csv)" s3
  rec "  the same, payload_signing on" "psql \\copy | curl (csv)" \
    "$(s3m measure "SELECT * FROM taskflow.export('$Q', 'bench_s3_on', 'csv/', 'csv', '$SER')")" "$(s3_size tfon/csv)" s3
  r=$(s3m measure "SELECT * FROM taskflow.export('$Q', 'bench_s3', 'pcsv/', 'csv', '$PAR')")
  rec "  parallel export csv -> S3" "psql \\copy | curl (csv)" "$r" "$(s3_size tf/pcsv)" s3
  rec "  parallel, vs the re-blocked pipeline" "psql \\copy | dd 64k | curl (csv)" "$r" "$(s3_size tf/pcsv)" s3
  rec "  parallel, payload_signing on" "psql \\copy | curl (csv)" \
    "$(s3m measure "SELECT * FROM taskflow.export('$Q', 'bench_s3_on', 'pcsv/', 'csv', '$PAR')")" "$(s3_size tfon/pcsv)" s3
  [ "$ONLY" = s3 ] && continue
  rec "psql \\copy | gzip | curl (csv.gz)" "psql \\copy | gzip | curl (csv.gz)" \
    "$(s3m measure_sh "$COPYOUT | gzip | $CURL -T - $EP/bench/pipez/copy.csv.gz")" "$(s3_size pipez)" s3
  rec "taskflow.export csv.gz -> S3" "psql \\copy | gzip | curl (csv.gz)" \
    "$(s3m measure "SELECT * FROM taskflow.export('$Q', 'bench_s3', 'gz/', 'csv.gz', '$SER')")" "$(s3_size tf/gz)" s3
  rec "  parallel export csv.gz -> S3" "psql \\copy | gzip | curl (csv.gz)" \
    "$(s3m measure "SELECT * FROM taskflow.export('$Q', 'bench_s3', 'pgz/', 'csv.gz', '$PAR')")" "$(s3_size tf/pgz)" s3
  rec "psql \\copy | zstd | curl (csv.zst)" "psql \\copy | zstd | curl (csv.zst)" \
    "$(s3m measure_sh "$COPYOUT | zstd -q | $CURL -T - $EP/bench/pipezst/copy.csv.zst")" "$(s3_size pipezst)" s3
  rec "taskflow.export csv.zst -> S3" "psql \\copy | zstd | curl (csv.zst)" \
    "$(s3m measure "SELECT * FROM taskflow.export('$Q', 'bench_s3', 'zst/', 'csv.zst', '$SER')")" "$(s3_size tf/zst)" s3

  group "-- archive node (a taskflow worker) to S3, one run over all N rows (speed vs the pipeline)"
  rec "archive node csv -> S3" "psql \\copy | curl (csv)" "$(measure_arch bench_arch)" "$(s3_size tf/arch)"
  rec "  parallel archive node csv -> S3" "psql \\copy | curl (csv)" "$(measure_arch bench_parch)" "$(s3_size tf/parch)"
  rec "archive node csv.gz -> S3" "psql \\copy | gzip | curl (csv.gz)" "$(measure_arch bench_archz)" "$(s3_size tf/archz)"
  rec "  parallel archive node csv.gz -> S3" "psql \\copy | gzip | curl (csv.gz)" "$(measure_arch bench_parchz)" "$(s3_size tf/parchz)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

line() { # name secs rss_kB anon_kB bytes base_secs [server_cpu_s]
  awk -v n="$1" -v s="$2" -v h="$3" -v a="$4" -v b="$5" -v base="$6" -v c="${7:-}" -v rows="$N" 'BEGIN {
    printf "%-42s %8.2f %11.0f %8.1f %9.2fx %9.1f %10.1f", n, s, rows / s, b / 1048576, base / s, h / 1024, a / 1024
    if (c != "") printf " %9.2f", c
    printf "\n" }'
}
echo
echo "S3: taskflow's exports to bench_s3 use payload_signing 'off' (x-amz-content-sha256: UNSIGNED-PAYLOAD,"
echo "    signed Content-MD5 per PUT, like the curl pipeline's UNSIGNED-PAYLOAD); 'payload_signing on' lines sign"
echo "    the SHA-256 of every body.  srvCPU_s: CPU seconds of the node.js S3 server during the method."
printf '%-42s %8s %11s %8s %10s %9s %10s %9s\n' "method (best of $REPEAT)" seconds rows/s MB speed peakRSS_MB peakAnon_MB srvCPU_s
for l in "${ORDER[@]}"; do
  case $l in "-- "*) echo "$l"; continue ;; esac
  line "$l" "${S[$l]}" "${H[$l]}" "${A[$l]}" "${B[$l]}" "${S[${BASE[$l]}]}" "${C[$l]:-}"
done

[ "$ONLY" = s3 ] && exit 0
# the csv export is byte-identical to COPY's output (parts concatenated minus repeated headers)
first=1; : > "$OUT/joined.csv"
for f in "$OUT"/objects/csv/part-*.csv; do
  if [ $first = 1 ]; then cat "$f" >> "$OUT/joined.csv"; first=0; else tail -n +2 "$f" >> "$OUT/joined.csv"; fi
done
if cmp -s "$OUT/joined.csv" "$OUT/copy.csv"; then echo "csv parts == COPY output: yes"; else echo "csv parts == COPY output: NO"; fi
# the parallel csv parts hold the same rows (in another order)
if [ "$( { for f in "$OUT"/objects/pcsv/part-*.csv; do tail -n +2 "$f"; done; } | sort | md5sum)" = "$(tail -n +2 "$OUT/copy.csv" | sort | md5sum)" ]; then
  echo "parallel csv parts: same rows as COPY: yes"; else echo "parallel csv parts: same rows as COPY: NO"; fi
# the gzip parts (concatenated gzip members) decompress to the same rows
if [ "$(zcat "$OUT"/objects/gz/part-*.csv.gz | grep -vc '^order_id,')" = "$N" ]; then
  echo "csv.gz parts: zcat reads $N rows: yes"; else echo "csv.gz parts: zcat row count: NO"; fi
if [ "$(zstd -dcq "$OUT"/objects/zst/part-*.csv.zst | grep -vc '^order_id,')" = "$N" ]; then
  echo "csv.zst parts: zstd -d reads $N rows: yes"; else echo "csv.zst parts: zstd -d row count: NO"; fi
echo "parts: parallel csv $(ls "$OUT"/objects/pcsv/part-* | wc -l), csv.gz $(ls "$OUT"/objects/pgz/part-* | wc -l)"
echo "parts: csv $(ls "$OUT"/objects/csv/part-* | wc -l), csv.gz $(ls "$OUT"/objects/gz/part-* | wc -l), csv.zst $(ls "$OUT"/objects/zst/part-* | wc -l)"
