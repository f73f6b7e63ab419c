#!/bin/bash
# test/bench/dispatch_bench.sh — due time → first statement, taskflow against pg_cron in
# both of its modes, measured in the same run on the same throwaway cluster (both
# preloaded).  Not a timed test.
#
# For each N in COUNTS (1 10 100), N jobs due at the same second, each running
# `INSERT INTO bench_log VALUES (<system>, N, clock_timestamp())`; latency = the moment
# that statement runs minus the job's due time, measured the same way for every system:
#   pg_cron   N jobs '* * * * *' for MINUTES minute boundaries (due = the minute);
#             first in background-worker mode (cron.use_background_workers = on, the
#             process model of taskflow), then, after a restart, in libpq mode (off)
#   taskflow  N flows of one sql node, 'every 5 seconds' over one minute in which no
#             pg_cron job is scheduled (start_date/end_date: 11 due times per flow,
#             :05 .. :55; due = the 5-second boundary), warm node workers (the default)
# Never both at once, so they never compete for the cores.  Same caps on both sides:
# taskflow.max_workers = cron.max_running_jobs = WORKERS.
# Prints p50 / p99 / max per system and N, and the ratio p50 taskflow / pg_cron per mode
# (below 1: taskflow dispatches sooner).
#
#   sudo test/bench/dispatch_bench.sh            # COUNTS="1 10 100" MINUTES=3 WORKERS=16
# SYSTEMS="taskflow" measures taskflow alone (no pg_cron phase, no ratio): the A/B rounds
# of two builds (dispatch_ab.sh); KEEP_LOG=1 keeps bench_log in $DIR/bench_log.csv.
set -eu
cd "$(dirname "$0")/../.."
COUNTS=${COUNTS:-1 10 100}
MINUTES=${MINUTES:-3}
WORKERS=${WORKERS:-16}
SYSTEMS=${SYSTEMS:-taskflow pg_cron}
DIR=${BENCH_DIR:-/tmp/taskflow-dispatch-bench}
PORT=${BENCH_PORT:-54339}
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
. test/bench/lib.sh
KEEP_SAVED=${KEEP:-}
KEEP=1	# restarted below (pg_cron's mode is a server setting); stopped at the end
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
cron.host = '$DIR'
max_worker_processes = 64
max_connections = 200
taskflow.max_workers = $WORKERS
cron.max_running_jobs = $WORKERS
CONF
[ -n "$KEEP_SAVED" ] || trap 'as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null' EXIT

psql_ >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION taskflow;
CREATE TABLE bench_log (system text, n int, at timestamptz);
SQL

# sleep until SECS seconds after the minute boundary that is MIN minutes ahead
sleep_until() {
  local left
  left=$(psql_ -c "SELECT greatest(0, extract(epoch FROM date_trunc('minute', clock_timestamp()) + interval '$1 min' + interval '$2 s' - clock_timestamp()))")
  sleep "$left"
}

pg_cron_phase() {	# label
  local n
  for n in $COUNTS; do
    psql_ >/dev/null <<SQL
SELECT cron.schedule('cron_' || g, '* * * * *',
                     \$\$INSERT INTO bench_log VALUES ('$1', $n, clock_timestamp())\$\$)
  FROM generate_series(1, $n) g;
SQL
    sleep_until "$MINUTES" 10
    psql_ -c "SELECT count(cron.unschedule(jobid)) FROM cron.job" >/dev/null
    echo "  $1: $n job(s) done"
  done
}

taskflow_phase() {
  local n from
  for n in $COUNTS; do
    # one whole minute ahead, away from any pg_cron boundary: :05 .. :55
    from=$(psql_ -c "SELECT date_trunc('minute', clock_timestamp()) + interval '1 min'")
    psql_ >/dev/null <<SQL
SELECT taskflow.create_flow('tf_' || g, schedule => 'every 5 seconds', timezone => 'UTC',
                            catchup => false,
                            start_date => timestamptz '$from' + interval '5 s',
                            end_date => timestamptz '$from' + interval '56 s')
  FROM generate_series(1, $n) g;
SELECT taskflow.add_node('tf_' || g, 'n', 'sql',
                         \$\$INSERT INTO bench_log VALUES ('taskflow', $n, clock_timestamp())\$\$)
  FROM generate_series(1, $n) g;
SQL
    sleep_until 1 59
    psql_ -c "SELECT taskflow.drop_flow(name) FROM taskflow.flows" >/dev/null
    echo "  taskflow: $n flow(s) done"
  done
}

echo "dispatch bench: $COUNTS job(s) due at once; pg_cron $MINUTES minute boundaries per count and mode, taskflow 11 due times per count; max_workers = cron.max_running_jobs = $WORKERS; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
case " $SYSTEMS " in *" pg_cron "*)
  sleep_until 1 2
  pg_cron_phase pg_cron_bgw
esac
taskflow_phase
case " $SYSTEMS " in *" pg_cron "*)
  as_pg "$BIN/psql" -X -q -h "$DIR" -p "$PORT" -d postgres \
    -c "ALTER SYSTEM SET cron.use_background_workers = off" >/dev/null
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w restart -l "$DIR/server.log" >/dev/null
  sleep_until 1 2
  pg_cron_phase pg_cron_libpq
esac
[ -z "${KEEP_LOG:-}" ] || psql_ -c "COPY (SELECT system, n, extract(epoch FROM at) FROM bench_log) TO STDOUT WITH CSV" > "$DIR/bench_log.csv"

psql_ <<SQL
\pset footer off
\pset format aligned
\pset tuples_only off
WITH l AS (
  SELECT system, n,
         extract(epoch FROM at - CASE WHEN system = 'taskflow'
                                      THEN to_timestamp(floor(extract(epoch FROM at) / 5) * 5)
                                      ELSE date_trunc('minute', at) END) * 1000 AS ms
  FROM bench_log),
s AS (
  SELECT system, n AS jobs, count(*) AS samples,
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
         round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p99_ms,
         round(max(ms)::numeric, 1) AS max_ms
  FROM l GROUP BY system, n)
SELECT s.*,
       round(s.p50_ms / nullif((SELECT p50_ms FROM s b WHERE b.system = 'pg_cron_bgw' AND b.jobs = s.jobs), 0), 2)
         AS p50_vs_bgw,
       round(s.p50_ms / nullif((SELECT p50_ms FROM s b WHERE b.system = 'pg_cron_libpq' AND b.jobs = s.jobs), 0), 2)
         AS p50_vs_libpq
FROM s ORDER BY jobs, system;
SQL
