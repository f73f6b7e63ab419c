#!/bin/bash
# csv export to S3 against the hand-made pipeline, in interleaved pairs, with
# the CPU of every side (issue 11: "≥ 1.5× the hand-made pipeline to S3").
#
#   test/bench/export_s3_pairs.sh               10M rows, 5 pairs
#   PAIRS=7 N=3000000 test/bench/export_s3_pairs.sh
#   KEEP=1 ...     leave the cluster (and its loaded table) in $DIR
#   REUSE=1 ...    use the cluster KEEP left in $DIR (no reload; same N)
#   OPTS='{"parallel": 1}' ...   export() options (default '{}': automatic)
#   SIGN=on ...    taskflow with payload_signing 'on' (default 'off')
#
# Run as root.  One run = PAIRS rounds, each "pipeline, re-blocked pipeline,
# taskflow" (interleaved, so that a burst of load hits one round):
#   pipeline  psql -c '\copy (SELECT * FROM orders) TO STDOUT (FORMAT csv,
#             HEADER)' | curl --aws-sigv4 ... -H 'x-amz-content-sha256:
#             UNSIGNED-PAYLOAD' -T -      (issue 11's pipeline: one streamed,
#             chunked PUT of the whole CSV; its best signing mode: curl
#             cannot hash a stream it has not read, so it does not sign the
#             body)
#   reblocked the same with "| dd bs=64k iflag=fullblock |" between psql and
#             curl: curl sends what each read() of its stdin returns as one
#             HTTP chunk, and psql writes the pipe in small stdio blocks, so
#             the plain pipeline arrives in many small chunks, which cost
#             the one-threaded node.js server 1.5-2x the CPU; re-blocked to
#             64 kB chunks the server's CPU for it drops by a third.  The
#             stronger of the two hand-made pipelines; both are printed.
#   taskflow  psql -c "SELECT ... FROM taskflow.export('SELECT * FROM orders',
#             'bench_s3', ..., 'csv', OPTS)"  (payload_signing 'off': the
#             same UNSIGNED-PAYLOAD, plus a signed Content-MD5 per request)
# Both write the same 10M rows (same query, same bytes: checked at the end),
# both are timed from the start of their psql to its exit (connection
# included).  Per measurement it prints the wall time and the CPU seconds
# (utime + stime) of:
#   db      the postmaster's reaped children meanwhile: the \copy backend, or
#           the exporting backend and its parallel workers (autovacuum is off,
#           nothing else connects)
#   client  psql + curl of the pipeline (the reaped children of its shell)
#   server  the node.js S3 server and its children (the cat of a multipart
#           completion)
#   other   everything else the 2 cores ran meanwhile (/proc/stat busy minus
#           the three above): the load of the other users of the machine
# then per round the ratios (baseline seconds / taskflow seconds: > 1 is
# faster; and the same for the total CPU), and the median, min and max.
set -eu
cd "$(dirname "$0")/../.."
N=${N:-10000000}
PAIRS=${PAIRS:-5}
PORT=${BENCH_PORT:-${PORT:-54988}}
DIR=${BENCH_DIR:-${DIR:-/tmp/tf_export_pairs}}
OPTS=${OPTS:-'{}'}
SIGN=${SIGN:-off}
. test/bench/lib.sh
AK=benchkey SK=benchsecret0123456789
HZ=$(getconf CLK_TCK)

if [ -n "${REUSE:-}" ] && [ -d "$DIR/data" ]; then
  scripts/build >/dev/null
  as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1 ||
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w restart -l "$DIR/server.log" >/dev/null
  [ -n "${KEEP:-}" ] || { BENCH_STOP=1; trap bench_exit EXIT; }
  LOAD=
else
  bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
shared_buffers = 256MB
max_wal_size = 4GB
autovacuum = off
CONF
  LOAD=1
fi
S3DIR=$DIR/s3
rm -rf "$S3DIR"; mkdir -p "$S3DIR"
S3_PORT=0 S3_DIR=$S3DIR S3_ACCESS_KEY=$AK S3_SECRET_KEY=$SK S3_BUCKETS=bench \
  node --openssl-legacy-provider test/s3/server.js > "$DIR/s3.out" 2> "$DIR/s3.log" &
S3PID=$!
bench_at_exit "kill $S3PID 2>/dev/null"
for _ in $(seq 100); do grep -q 'listening on' "$DIR/s3.out" 2>/dev/null && break; sleep 0.1; done
S3PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$DIR/s3.out")
[ -n "$S3PORT" ] || { echo "S3 server did not start"; cat "$DIR/s3.log"; exit 1; }
EP=http://127.0.0.1:$S3PORT

if [ -n "$LOAD" ]; then
  echo "loading $N rows ..."
  psql_ >/dev/null <<EOF
CREATE EXTENSION taskflow;
CREATE TABLE orders (order_id bigint, product_name varchar(32), price double precision,
                     total_amount double precision, created_date date);
INSERT INTO orders
  SELECT g, 'product ' || (g % 997), round((random() * 1000)::numeric, 2)::float8,
         round((random() * 5000)::numeric, 2)::float8, date '2020-06-01' + (g % 30)::int
    FROM generate_series(1, $N) g;
VACUUM (FREEZE, ANALYZE) orders;
EOF
fi
psql_ >/dev/null <<EOF
DROP SERVER IF EXISTS bench_s3 CASCADE;
CREATE SERVER bench_s3 FOREIGN DATA WRAPPER taskflow_storage
  OPTIONS (url 's3://bench/tf', endpoint '$EP', region 'us-east-1', url_style 'path',
           payload_signing '$SIGN');
CREATE USER MAPPING FOR PUBLIC SERVER bench_s3
  OPTIONS (access_key_id '$AK', secret_access_key '$SK');
EOF
ROWS=$(psql_ -c "SELECT count(*) FROM orders")
# warm the shared buffers / page cache the same way for both sides
psql_ -c "SELECT count(*) FROM orders" >/dev/null

Q="SELECT * FROM orders"
PSQL="$BIN/psql -X -q -h $DIR -p $PORT -U postgres -d postgres"
CURL="curl -sS --fail --aws-sigv4 aws:amz:us-east-1:s3 --user $AK:$SK -H x-amz-content-sha256:UNSIGNED-PAYLOAD"
PM=$(head -n 1 "$DIR/data/postmaster.pid")

now() { date +%s.%N; }
# CPU seconds of a pid: own (14,15) + reaped children (16,17)
cpu_all() { awk -v hz="$HZ" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$1/stat"; }
# busy seconds of the whole machine (all cores): user..steal minus idle, iowait
busy() { awk -v hz="$HZ" '/^cpu / {print ($2 + $3 + $4 + $7 + $8 + $9) / hz}' /proc/stat; }
# wait until the postmaster has no more children than before (reaped backends)
settle() {
  for _ in $(seq 100); do [ "$(pgrep -c -P "$PM")" -le "$1" ] && return; sleep 0.05; done
  echo "warning: a backend did not exit" >&2
}
NKIDS=$(pgrep -c -P "$PM")

# one measurement: label command -> "wall db client server other"
run() {
  local cmd=$1 t0 t1 d0 d1 s0 s1 b0 b1 c
  settle "$NKIDS"
  sleep 0.5
  d0=$(cpu_all "$PM"); s0=$(cpu_all "$S3PID"); b0=$(busy)
  t0=$(now)
  # client CPU: the reaped children of this shell (psql, curl; psql alone for taskflow)
  c=$(bash -o pipefail -c "$cmd > /dev/null && awk -v hz=$HZ '{print (\$16 + \$17) / hz}' /proc/\$\$/stat")
  t1=$(now)
  settle "$NKIDS"
  d1=$(cpu_all "$PM"); s1=$(cpu_all "$S3PID"); b1=$(busy)
  awk -v t0="$t0" -v t1="$t1" -v d0="$d0" -v d1="$d1" -v s0="$s0" -v s1="$s1" \
      -v b0="$b0" -v b1="$b1" -v c="$c" 'BEGIN {
    db = d1 - d0; sv = s1 - s0; o = (b1 - b0) - db - sv - c; if (o < 0) o = 0
    printf "%.3f %.2f %.2f %.2f %.2f\n", t1 - t0, db, c, sv, o }'
}

BASE="$PSQL -c '\\copy ($Q) TO STDOUT (FORMAT csv, HEADER)' | $CURL -T - $EP/bench/pipe/copy.csv"
BASE2="$PSQL -c '\\copy ($Q) TO STDOUT (FORMAT csv, HEADER)' | dd bs=64k iflag=fullblock status=none | $CURL -T - $EP/bench/pipe2/copy.csv"
TF="$PSQL -At -c \"SELECT count(*) FROM taskflow.export('$Q', 'bench_s3', 'csv/', 'csv', '${OPTS//\"/\\\"}')\""

echo "N = $ROWS rows; taskflow: export(..., 'csv', '$OPTS'), payload_signing '$SIGN'"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-9s %8s %7s %8s %8s %7s %8s\n' pair side wall_s db_cpu client server other total_cpu
RATIOS=() CR=() RATIOS2=() CR2=()
line() { # pair side wall db client server other
  printf '%-5s %-9s %8.2f %7.2f %8.2f %8.2f %7.2f %8.2f\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" \
    "$(echo "$4 $5 $6" | awk '{print $1 + $2 + $3}')"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
cpuratio() { awk -v a="$1" -v b="$2" 'BEGIN {split(a, x); split(b, y); printf "%.3f", (x[1] + x[2] + x[3]) / (y[1] + y[2] + y[3])}'; }
for i in $(seq "$PAIRS"); do
  read -r bw bd bc bs bo < <(run "$BASE")
  line "$i" pipeline "$bw" "$bd" "$bc" "$bs" "$bo"
  read -r rw rd rc rs ro < <(run "$BASE2")
  line "$i" reblocked "$rw" "$rd" "$rc" "$rs" "$ro"
  read -r tw td tc ts to < <(run "$TF")
  line "$i" taskflow "$tw" "$td" "$tc" "$ts" "$to"
  RATIOS+=("$(ratio "$bw" "$tw")"); CR+=("$(cpuratio "$bd $bc $bs" "$td $tc $ts")")
  RATIOS2+=("$(ratio "$rw" "$tw")"); CR2+=("$(cpuratio "$rd $rc $rs" "$td $tc $ts")")
  echo "      vs pipeline ${RATIOS[-1]}x (CPU ${CR[-1]}x), vs reblocked ${RATIOS2[-1]}x (CPU ${CR2[-1]}x)"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {
  m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
  printf "median %.2fx, min %.2fx, max %.2fx (%d rounds)", m, v[1], v[NR], NR }'; }
echo "vs pipeline   wall-time ratio (its s / taskflow s): $(stats "${RATIOS[@]}")"
echo "              total-CPU ratio (db + client + server): $(stats "${CR[@]}")"
echo "vs reblocked  wall-time ratio: $(stats "${RATIOS2[@]}")"
echo "              total-CPU ratio: $(stats "${CR2[@]}")"

# same bytes: the parts (headers after the first dropped) == the pipeline's object
# (s3rver keeps an object's bytes in <key>._S3rver_object)
obj=$S3DIR/bench/pipe/copy.csv._S3rver_object
tfsum=$(for f in "$S3DIR"/bench/tf/csv/part-*.csv._S3rver_object; do tail -n +2 "$f"; done | sort | md5sum)
pisum=$(tail -n +2 "$obj" | sort | md5sum)
[ "$tfsum" = "$pisum" ] && echo "same rows in both uploads: yes" || echo "same rows in both uploads: NO"
cmp -s "$obj" "$S3DIR/bench/pipe2/copy.csv._S3rver_object" && echo "re-blocked upload == plain upload: yes" || echo "re-blocked upload == plain upload: NO"
