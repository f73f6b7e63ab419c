#!/bin/bash
# test/bench/idle_bench.sh — what 10,000 idle flows cost the taskflow scheduler, against
# pg_cron with 10,000 idle jobs, in the same run on the same throwaway cluster (both
# preloaded, pg_cron in background-worker mode).  Not a timed test.
#
#   1. idle: FLOWS flows (3-node chain each) and FLOWS pg_cron jobs, all due hours away;
#      once the scheduler has looked at every new flow, the CPU time (utime + stime) of the
#      taskflow scheduler and of the pg_cron launcher over IDLE_S seconds, and their RSS;
#   2. dispatch beside them: JOBS '* * * * *' jobs in each system (pg_cron first, then
#      taskflow, never both at once), MINUTES minute boundaries each; latency = the moment
#      the job's statement runs minus the minute boundary (p50 / p99 / max).
# Prints the figures and the ratios taskflow / pg_cron (lower is better for taskflow).
#
#   sudo test/bench/idle_bench.sh      # FLOWS=10000 IDLE_S=60 JOBS=10 MINUTES=3
# Uses the PostgreSQL of pg_config on PATH (PATH=/path/to/pg/bin:$PATH to pick one).
set -eu
cd "$(dirname "$0")/../.."
FLOWS=${FLOWS:-10000}
IDLE_S=${IDLE_S:-60}
JOBS=${JOBS:-10}
MINUTES=${MINUTES:-3}
DIR=${BENCH_DIR:-/tmp/taskflow-idle-bench}
PORT=${BENCH_PORT:-54359}
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 64
taskflow.max_workers = 16
cron.max_running_jobs = 16
timezone = 'UTC'
CONF
psql_ -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION taskflow" \
      -c "CREATE TABLE bench_log (system text, at timestamptz)" >/dev/null
sleep 1

cpu_ms() {  # utime+stime of a pid in ms
  awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
pid_of() { psql_ -c "SELECT pid FROM pg_stat_activity WHERE backend_type = '$1'"; }

# due hours away: 3 hours after this hour, every day
hour=$(( ($(date -u +%-H) + 3) % 24 ))
echo "idle bench: $FLOWS flows (3-node chain, '0 $hour * * *' UTC) vs $FLOWS pg_cron jobs, machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
psql_ >/dev/null <<SQL
SELECT count(cron.schedule('idle_' || g, '0 $hour * * *', 'SELECT 1')) FROM generate_series(1, $FLOWS) g;
SELECT count(taskflow.create_flow('idle_' || g, schedule => '0 $hour * * *', timezone => 'UTC'))
  FROM generate_series(1, $FLOWS) g;
SELECT count(taskflow.add_node('idle_' || g, 'a', 'sql', 'SELECT 1')) FROM generate_series(1, $FLOWS) g;
SELECT count(taskflow.add_node('idle_' || g, 'b', 'sql', 'SELECT 2', after => ARRAY['a'])) FROM generate_series(1, $FLOWS) g;
SELECT count(taskflow.add_node('idle_' || g, 'c', 'sql', 'SELECT 3', after => ARRAY['b'])) FROM generate_series(1, $FLOWS) g;
SQL
sched=$(pid_of 'taskflow scheduler'); cron=$(pid_of 'pg_cron launcher')
# the scheduler looks at new flows due hours away at its next pass (<= 60 s)
for _ in $(seq 1 90); do
  [ "$(psql_ -c "SELECT count(*) FROM taskflow.flows WHERE next_due IS NULL")" = 0 ] && break
  sleep 1
done
sleep 2
s0=$(cpu_ms "$sched"); c0=$(cpu_ms "$cron")
sleep "$IDLE_S"
s1=$(cpu_ms "$sched"); c1=$(cpu_ms "$cron")
echo "  idle ${IDLE_S} s:   taskflow scheduler $((s1 - s0)) ms CPU, RSS $(rss_mb "$sched") MB"
echo "                pg_cron launcher   $((c1 - c0)) ms CPU, RSS $(rss_mb "$cron") MB"
awk -v t=$((s1 - s0)) -v c=$((c1 - c0)) 'BEGIN { printf "  ratio taskflow/pg_cron idle CPU %.2f (lower is better)\n", (c > 0 ? t / c : 0) }'

# dispatch latency of JOBS jobs beside the idle ones
wait_boundaries() {
  sleep "$(psql_ -c "SELECT ceil(extract(epoch FROM date_trunc('minute', now()) + interval '$MINUTES min' + interval '5 s' - now()))")"
}
start=$(psql_ -c "SELECT now()")
psql_ -c "SELECT count(cron.schedule('busy_' || g, '* * * * *', \$\$INSERT INTO bench_log VALUES ('pg_cron', clock_timestamp())\$\$)) FROM generate_series(1, $JOBS) g" >/dev/null
wait_boundaries
psql_ -c "SELECT count(cron.unschedule('busy_' || g)) FROM generate_series(1, $JOBS) g" >/dev/null
psql_ >/dev/null <<SQL
SELECT count(taskflow.create_flow('busy_' || g, schedule => '* * * * *', timezone => 'UTC', catchup => false))
  FROM generate_series(1, $JOBS) g;
SELECT count(taskflow.add_node('busy_' || g, 'n', 'sql',
                         \$\$INSERT INTO bench_log VALUES ('taskflow', clock_timestamp())\$\$))
  FROM generate_series(1, $JOBS) g;
SQL
wait_boundaries
echo "  dispatch: $JOBS jobs '* * * * *' beside the idle ones, $MINUTES minute boundaries per system"
psql_ <<SQL
\pset footer off
\pset format aligned
\pset tuples_only off
WITH l AS (
  SELECT system, extract(epoch FROM at - date_trunc('minute', at)) * 1000 AS ms
  FROM bench_log WHERE at > '$start'),
s AS (
  SELECT system, count(*) AS samples,
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
         round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p99_ms,
         round(max(ms)::numeric, 1) AS max_ms
  FROM l GROUP BY system)
SELECT *, round(p50_ms / nullif((SELECT p50_ms FROM s WHERE system = 'pg_cron'), 0), 2)
         AS p50_ratio_vs_pg_cron
FROM s ORDER BY system;
SQL
