#!/bin/bash
# test/bench/dispatch_bench.sh — dispatch latency of taskflow against pg_cron, measured
# in the same run on the same throwaway cluster (both preloaded).  Not a timed test.
#
# Workload: JOBS jobs scheduled '* * * * *' in each system (first pg_cron alone, then
# taskflow alone, so they never compete for the 2 cores), each running
# `INSERT INTO bench_log VALUES ('<system>', clock_timestamp())`, observed for MINUTES
# minute boundaries.  Latency = the moment the job's SQL runs minus its due time (the
# minute boundary), measured the same way for both systems.
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
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 64
taskflow.max_workers = 16
cron.max_running_jobs = 16
CONF

psql_ >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_cron;
CREATE EXTENSION taskflow;
CREATE TABLE bench_log (system text, at timestamptz);
SELECT cron.schedule('cron_' || g, '* * * * *',
                     \$\$INSERT INTO bench_log VALUES ('pg_cron', clock_timestamp())\$\$)
  FROM generate_series(1, $JOBS) g;
SQL
# phase 1: pg_cron alone; phase 2: taskflow alone (so they never compete for the CPUs)
wait_boundaries() {
  local left
  left=$(psql_ -c "SELECT ceil(extract(epoch FROM date_trunc('minute', now()) + interval '$MINUTES min' + interval '5 s' - now()))")
  sleep "$left"
}
start=$(psql_ -c "SELECT now()")
echo "dispatch bench: $JOBS jobs per system, '* * * * *', $MINUTES minute boundaries each, one system at a time"
wait_boundaries
psql_ -c "SELECT count(cron.unschedule(jobid)) FROM cron.job" >/dev/null
# flows created now: nothing before this moment is due (no catch-up)
psql_ >/dev/null <<SQL
SELECT taskflow.create_flow('tf_' || g, schedule => '* * * * *', timezone => 'UTC', catchup => false)
  FROM generate_series(1, $JOBS) g;
SELECT taskflow.add_node('tf_' || g, 'n', 'sql',
                         \$\$INSERT INTO bench_log VALUES ('taskflow', clock_timestamp())\$\$)
  FROM generate_series(1, $JOBS) g;
SQL
wait_boundaries

psql_ <<SQL
\pset footer off
\pset format aligned
\pset tuples_only off
WITH l AS (
  SELECT system, extract(epoch FROM at - date_trunc('minute', at)) * 1000 AS ms
  FROM bench_log WHERE at > '$start'),
s AS (
  SELECT system, count(*) AS samples, round(avg(ms)::numeric, 1) AS mean_ms,
         round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p95_ms,
         round(max(ms)::numeric, 1) AS max_ms
  FROM l GROUP BY system)
SELECT *, round(mean_ms / nullif((SELECT mean_ms FROM s WHERE system = 'pg_cron'), 0), 2)
         AS ratio_vs_pg_cron
FROM s ORDER BY system;
SELECT 'expected samples per system: ' || $JOBS * $MINUTES;
SQL
