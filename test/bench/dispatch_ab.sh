#!/bin/bash
# test/bench/dispatch_ab.sh — due time → first statement of two taskflow builds (A, B)
# and of pg_cron in both of its modes, interleaved minute by minute on the same machine.
# Not a timed test: it prints medians and spreads, and the ratios B / A, B / pg_cron.
#
# Two throwaway clusters run side by side (A: $DIR/a on $PORT+1, B: $DIR/b on $PORT),
# both preloading taskflow and pg_cron (same settings, taskflow.max_workers =
# cron.max_running_jobs = WORKERS); A's pg_cron runs in background-worker mode, B's in
# libpq mode.  For each N in COUNTS, ROUNDS rounds of two minutes (m1, m2):
#   :00       pg_cron: N jobs '* * * * *' fire (m1: A's, bgw; m2: B's, libpq)
#   :05-:25   taskflow of one cluster (m1: A, m2: B): N flows of one sql node,
#             'every 5 seconds' over that window (5 due times)
#   :30-:55   taskflow of the other (m1: B, m2: A) (6 due times)
# so that every system is measured in the same minutes as the others, never two at once,
# and A and B take turns at both halves of the minute.  Each job runs
# `INSERT INTO bench_log VALUES (<system>, N, <round>, clock_timestamp())`; latency = that
# moment minus the due time (the 5-second boundary, or the minute).
#
#   sudo A_PG_CONFIG=/opt/pg-base/.../pg_config A_SRC=/tmp/base-tree \
#        PG_CONFIG=/opt/pg-mine/.../pg_config test/bench/dispatch_ab.sh
# A_SRC: A's source tree (built and installed into A_PG_CONFIG's PostgreSQL); B is this
# tree, built into PG_CONFIG's.  COUNTS="10 100 1" ROUNDS=2 WORKERS=16 by default.
# EXTRA_CONF: one more postgresql.conf line for both clusters (say
# "log_min_messages = debug1": B's scheduler then logs each prepared due time's
# timings); KEEP=1 leaves both clusters running (logs in $DIR/a, $DIR/b).
set -eu
cd "$(dirname "$0")/../.."
COUNTS=${COUNTS:-10 100 1}
ROUNDS=${ROUNDS:-2}
WORKERS=${WORKERS:-16}
BASE=${BENCH_DIR:-/tmp/taskflow-dispatch-ab}
PORT_B=${BENCH_PORT:-54341}
PORT_A=$((PORT_B + 1))
PG_CONFIG=${PG_CONFIG:-pg_config}
A_PG_CONFIG=${A_PG_CONFIG:?A_PG_CONFIG: the pg_config of the PostgreSQL holding build A}
A_SRC=${A_SRC:?A_SRC: the source tree of build A}
BIN_A=$("$A_PG_CONFIG" --bindir)
BIN_B=$("$PG_CONFIG" --bindir)
as_pg() { runuser -u postgres -- "$@"; }
psql_a() { as_pg "$BIN_A/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$BASE/a" -p "$PORT_A" -d postgres "$@"; }
psql_b() { as_pg "$BIN_B/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$BASE/b" -p "$PORT_B" -d postgres "$@"; }

(cd "$A_SRC" && PG_CONFIG=$A_PG_CONFIG scripts/build >/dev/null)
PG_CONFIG=$PG_CONFIG scripts/build >/dev/null

start_cluster() {	# bin dir port cron_bgw
  local bin=$1 dir=$2 port=$3
  [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"; mkdir -p "$dir"; chown postgres: "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  printf '%s\n' "shared_preload_libraries = 'taskflow,pg_cron'" "cron.database_name = 'postgres'" \
      "cron.use_background_workers = $4" "cron.host = '$dir'" "max_worker_processes = 64" \
      "max_connections = 200" "taskflow.max_workers = $WORKERS" "cron.max_running_jobs = $WORKERS" \
      "port = $port" "listen_addresses = ''" "unix_socket_directories = '$dir'" \
      ${EXTRA_CONF:+"$EXTRA_CONF"} >> "$dir/data/postgresql.conf"
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}
stop_all() {
  as_pg "$BIN_A/pg_ctl" -D "$BASE/a/data" -m fast stop >/dev/null 2>&1 || true
  as_pg "$BIN_B/pg_ctl" -D "$BASE/b/data" -m fast stop >/dev/null 2>&1 || true
}
[ -n "${KEEP:-}" ] || trap stop_all EXIT
start_cluster "$BIN_A" "$BASE/a" "$PORT_A" on
start_cluster "$BIN_B" "$BASE/b" "$PORT_B" off
for q in psql_a psql_b; do
  $q >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION taskflow;
CREATE TABLE bench_log (system text, n int, round int, at timestamptz);
SQL
done

# seconds until SECS seconds after the minute boundary MIN minutes ahead
sleep_until() {
  sleep "$(psql_b -c "SELECT greatest(0, extract(epoch FROM date_trunc('minute', clock_timestamp()) + interval '$1 min' + interval '$2 s' - clock_timestamp()))")"
}

flows() {	# psql label n round from(minute) first_s last_s
  local q=$1 label=$2 n=$3 round=$4 from=$5
  $q >/dev/null <<SQL
SELECT taskflow.create_flow('${label}_' || g, schedule => 'every 5 seconds', timezone => 'UTC',
                            catchup => false, start_date => timestamptz '$from' + interval '$6 s',
                            end_date => timestamptz '$from' + interval '$7 s')
  FROM generate_series(1, $n) g;
SELECT taskflow.add_node('${label}_' || g, 'n', 'sql',
                         \$\$INSERT INTO bench_log VALUES ('taskflow_$8', $n, $round, clock_timestamp())\$\$)
  FROM generate_series(1, $n) g;
SQL
}
cron_jobs() {	# psql system n round
  $1 >/dev/null <<SQL
SELECT cron.schedule('cron_' || g, '* * * * *',
                     \$\$INSERT INTO bench_log VALUES ('$2', $3, $4, clock_timestamp())\$\$)
  FROM generate_series(1, $3) g;
SQL
}
uncron() { $1 -c "SELECT count(cron.unschedule(jobid)) FROM cron.job" >/dev/null; }

echo "dispatch A/B: counts $COUNTS, $ROUNDS round(s) of 2 minutes each; max_workers = cron.max_running_jobs = $WORKERS; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for n in $COUNTS; do
  for r in $(seq 1 "$ROUNDS"); do
    # the next :30 at least 2 s away
    sleep "$(psql_b -c "SELECT extract(epoch FROM t - clock_timestamp()) FROM (SELECT date_trunc('minute', clock_timestamp()) + CASE WHEN clock_timestamp() > date_trunc('minute', clock_timestamp()) + interval '28 s' THEN interval '90 s' ELSE interval '30 s' END AS t) x")"
    m1=$(psql_b -c "SELECT date_trunc('minute', clock_timestamp()) + interval '1 min'")
    m2=$(psql_b -c "SELECT timestamptz '$m1' + interval '1 min'")
    flows psql_a a1 "$n" "$r" "$m1" 5 26 A;  flows psql_b b1 "$n" "$r" "$m1" 30 56 B
    flows psql_b b2 "$n" "$r" "$m2" 5 26 B;  flows psql_a a2 "$n" "$r" "$m2" 30 56 A
    cron_jobs psql_a pg_cron_bgw "$n" "$r"
    sleep_until 1 10
    uncron psql_a
    cron_jobs psql_b pg_cron_libpq "$n" "$r"
    sleep_until 1 10
    uncron psql_b
    sleep_until 0 58
    for q in psql_a psql_b; do $q -c "SELECT count(taskflow.drop_flow(name)) FROM taskflow.flows" >/dev/null; done
    echo "  $n job(s), round $r done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done

psql_a -c "COPY bench_log TO STDOUT" | psql_b -c "COPY bench_log FROM STDIN"
psql_b <<'SQL'
\pset footer off
\pset format aligned
\pset tuples_only off
WITH l AS (
  SELECT system, n, round,
         extract(epoch FROM at - CASE WHEN system LIKE 'taskflow%'
                                      THEN to_timestamp(floor(extract(epoch FROM at) / 5) * 5)
                                      ELSE date_trunc('minute', at) END) * 1000 AS ms
  FROM bench_log),
pr AS (	-- per round
  SELECT system, n, round, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50
  FROM l GROUP BY 1, 2, 3),
s AS (
  SELECT l.system, l.n AS jobs, count(*) AS samples,
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
         round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p99_ms,
         round(max(ms)::numeric, 1) AS max_ms,
         (SELECT string_agg(round(p50::numeric, 1)::text, ' ' ORDER BY round) FROM pr
           WHERE pr.system = l.system AND pr.n = l.n) AS p50_by_round
  FROM l GROUP BY 1, 2)
SELECT s.*,
       round(s.p50_ms / nullif((SELECT p50_ms FROM s b WHERE b.system = 'taskflow_A' AND b.jobs = s.jobs), 0), 2) AS vs_A,
       round(s.p50_ms / nullif((SELECT p50_ms FROM s b WHERE b.system = 'pg_cron_bgw' AND b.jobs = s.jobs), 0), 2) AS vs_bgw,
       round(s.p50_ms / nullif((SELECT p50_ms FROM s b WHERE b.system = 'pg_cron_libpq' AND b.jobs = s.jobs), 0), 2) AS vs_libpq
FROM s ORDER BY jobs, system;
SQL
