#!/bin/bash
# test/bench/dispatch_bench.sh — dispatch latency of taskflow against pg_cron, measured
# in the same run on the same throwaway cluster (both preloaded).  Not a timed test.
#
# Workload: JOBS jobs scheduled '* * * * *' in each system, each running `SELECT 1`,
# observed for MINUTES minute boundaries.  Latency = start of the job's SQL minus its
# due time (the minute boundary):
#   pg_cron  : cron.job_run_details.start_time - date_trunc('minute', start_time)
#   taskflow : node_runs.started_at - runs.scheduled_for
# pg_cron runs in background-worker mode (cron.use_background_workers = on), the same
# process model as taskflow.  Prints mean / p95 / max per system and the ratio
# taskflow / pg_cron (lower is better for taskflow).
#
#   sudo test/bench/dispatch_bench.sh            # JOBS=10 MINUTES=3
set -eu
cd "$(dirname "$0")/../.."
JOBS=${JOBS:-10}
MINUTES=${MINUTES:-3}
DIR=${BENCH_DIR:-/tmp/taskflow-dispatch-bench}
PORT=${BENCH_PORT:-54339}
BIN=$(pg_config --bindir)
as_pg() { runuser -u postgres -- "$@"; }
psql_() { as_pg psql -X -q -At -h "$DIR" -p "$PORT" -d postgres "$@"; }

scripts/build >/dev/null
[ -f "$DIR/data/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres: "$DIR"
as_pg "$BIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
cat >> "$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'taskflow,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 64
taskflow.max_workers = 16
cron.max_running_jobs = 16
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
CONF
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null
trap 'as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null' EXIT

psql_ <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION taskflow;
SELECT cron.schedule('cron_' || g, '* * * * *', 'SELECT 1') FROM generate_series(1, $JOBS) g;
SELECT taskflow.create_flow('tf_' || g, schedule => '* * * * *', timezone => 'UTC', catchup => false)
  FROM generate_series(1, $JOBS) g;
SELECT taskflow.add_node('tf_' || g, 'n', 'sql', 'SELECT 1') FROM generate_series(1, $JOBS) g;
SQL
start=$(psql_ -c "SELECT now()")
echo "dispatch bench: $JOBS jobs per system, '* * * * *', $MINUTES minute boundaries (started $start)"
# wait for MINUTES boundaries after the start, plus a margin for the last jobs to finish
left=$(psql_ -c "SELECT ceil(extract(epoch FROM date_trunc('minute', now()) + interval '$MINUTES min' + interval '5 s' - now()))")
sleep "$left"

psql_ <<SQL
\pset footer off
\pset format aligned
\pset tuples_only off
WITH c AS (
  SELECT extract(epoch FROM start_time - date_trunc('minute', start_time)) * 1000 AS ms
  FROM cron.job_run_details WHERE start_time > '$start'),
t AS (
  SELECT extract(epoch FROM nr.started_at - r.scheduled_for) * 1000 AS ms
  FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id
  WHERE r.scheduled_for > '$start' AND nr.started_at IS NOT NULL),
s AS (
  SELECT 'pg_cron' AS system, count(*) AS samples, round(avg(ms)::numeric, 1) AS mean_ms,
         round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p95_ms,
         round(max(ms)::numeric, 1) AS max_ms FROM c
  UNION ALL
  SELECT 'taskflow', count(*), round(avg(ms)::numeric, 1),
         round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1),
         round(max(ms)::numeric, 1) FROM t)
SELECT *, round(mean_ms / nullif((SELECT mean_ms FROM s WHERE system = 'pg_cron'), 0), 2)
         AS ratio_vs_pg_cron
FROM s;
SQL
