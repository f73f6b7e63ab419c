#!/bin/bash
# test/bench/idle_bench.sh — what 10,000 idle flows cost the taskflow scheduler, against
# pg_cron with 10,000 idle jobs, in the same run on the same throwaway cluster (both
# preloaded, pg_cron in background-worker mode).  Not a timed test.
#
#   0. first, before any idle flow or job exists, taskflow's JOBS '* * * * *' flows alone
#      for MINUTES minute boundaries ("taskflow_alone"): the same-run baseline of the
#      question "do idle flows slow dispatch down?";
#   1. idle: FLOWS flows (3-node chain each) and FLOWS pg_cron jobs, all due hours away;
#      once the scheduler has looked at every new flow (and a CHECKPOINT wrote what
#      defining them dirtied), the CPU time (utime + stime) of the taskflow scheduler and
#      of the pg_cron launcher over IDLE_S seconds, and their RSS;
#   2. dispatch beside them: JOBS '* * * * *' jobs in each system (pg_cron first, then
#      taskflow, never both at once), MINUTES minute boundaries each; latency = the moment
#      the job's statement runs minus the minute boundary (p50 / p99 / max).
# Prints the figures, the ratios taskflow / pg_cron (lower is better for taskflow) and
# taskflow beside the idle flows / taskflow alone (1.0: no degradation); per system also
# the p50 of the first minute boundary (cold: new flows, new workers) and of the others,
# and for taskflow each of them against the same boundaries alone (first_min_vs_alone,
# later_min_vs_alone; MINUTES >= 2 for the second).
# RSS is split into private memory (RssAnon) and the shared buffers and shared memory
# the process has touched (RssShmem: shared by every backend, not the scheduler's own).
#
#   sudo test/bench/idle_bench.sh      # FLOWS=10000 IDLE_S=60 JOBS=10 MINUTES=3 ALONE=1
# (ALONE=0 skips phase 0)
# Uses the PostgreSQL of pg_config on PATH (PATH=/path/to/pg/bin:$PATH to pick one).
set -eu
cd "$(dirname "$0")/../.."
FLOWS=${FLOWS:-10000}
IDLE_S=${IDLE_S:-60}
JOBS=${JOBS:-10}
MINUTES=${MINUTES:-3}
ALONE=${ALONE:-1}
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
rss_mb() {
  awk '/VmRSS/ {r = $2} /RssAnon/ {a = $2} /RssShmem/ {s = $2}
       END {printf "%.1f (private %.1f, shared memory touched %.1f)", r / 1024, a / 1024, s / 1024}' "/proc/$1/status"
}
pid_of() { psql_ -c "SELECT pid FROM pg_stat_activity WHERE backend_type = '$1'"; }

wait_boundaries() {
  sleep "$(psql_ -c "SELECT ceil(extract(epoch FROM date_trunc('minute', now()) + interval '$MINUTES min' + interval '5 s' - now()))")"
}
busy_flows() {	# tag: JOBS taskflow flows '* * * * *' logging as <tag>
  psql_ >/dev/null <<SQL
SELECT count(taskflow.create_flow('busy_' || g, schedule => '* * * * *', timezone => 'UTC', catchup => false))
  FROM generate_series(1, $JOBS) g;
SELECT count(taskflow.add_node('busy_' || g, 'n', 'sql',
                         \$\$INSERT INTO bench_log VALUES ('$1', clock_timestamp())\$\$))
  FROM generate_series(1, $JOBS) g;
SQL
}
start=$(psql_ -c "SELECT now()")
if [ "$ALONE" = 1 ]; then
  echo "idle bench, phase 0: $JOBS taskflow flows alone (no idle flow or job yet), $MINUTES minute boundaries, load $(cut -d' ' -f1-3 /proc/loadavg)"
  busy_flows taskflow_alone
  wait_boundaries
  psql_ -c "SELECT count(taskflow.drop_flow('busy_' || g)) FROM generate_series(1, $JOBS) g" >/dev/null
fi

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
# the pages written by defining 20,000 jobs and flows go to disk now, not in a
# spread checkpoint during the dispatch rounds below (its writes made one
# fsync of a node's begin wait 230 ms in a run of this bench)
psql_ -c "CHECKPOINT"
sleep 2
s0=$(cpu_ms "$sched"); c0=$(cpu_ms "$cron")
sleep "$IDLE_S"
s1=$(cpu_ms "$sched"); c1=$(cpu_ms "$cron")
echo "  idle ${IDLE_S} s:   taskflow scheduler $((s1 - s0)) ms CPU, RSS $(rss_mb "$sched") MB"
echo "                pg_cron launcher   $((c1 - c0)) ms CPU, RSS $(rss_mb "$cron") MB"
awk -v t=$((s1 - s0)) -v c=$((c1 - c0)) 'BEGIN { printf "  ratio taskflow/pg_cron idle CPU %.2f (lower is better)\n", (c > 0 ? t / c : 0) }'

# dispatch latency of JOBS jobs beside the idle ones
psql_ -c "SELECT count(cron.schedule('busy_' || g, '* * * * *', \$\$INSERT INTO bench_log VALUES ('pg_cron', clock_timestamp())\$\$)) FROM generate_series(1, $JOBS) g" >/dev/null
wait_boundaries
psql_ -c "SELECT count(cron.unschedule('busy_' || g)) FROM generate_series(1, $JOBS) g" >/dev/null
busy_flows taskflow
wait_boundaries
echo "  dispatch: $JOBS jobs '* * * * *' beside the idle ones, $MINUTES minute boundaries per system"
psql_ <<SQL
\pset footer off
\pset format aligned
\pset tuples_only off
WITH l AS (
  SELECT system, extract(epoch FROM at - date_trunc('minute', at)) * 1000 AS ms,
         date_trunc('minute', at) = min(date_trunc('minute', at)) OVER (PARTITION BY system) AS first
  FROM bench_log WHERE at > '$start'),
s AS (
  SELECT system, count(*) AS samples,
         round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
         round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p99_ms,
         round(max(ms)::numeric, 1) AS max_ms,
         round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE first))::numeric, 1) AS p50_first_min,
         round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE NOT first))::numeric, 1) AS p50_later_min
  FROM l GROUP BY system)
SELECT *, round(p50_ms / nullif((SELECT p50_ms FROM s WHERE system = 'pg_cron'), 0), 2)
         AS p50_ratio_vs_pg_cron,
       CASE WHEN system = 'taskflow'
            THEN round(p50_ms / nullif((SELECT p50_ms FROM s WHERE system = 'taskflow_alone'), 0), 2)
       END AS p50_ratio_vs_alone,
       CASE WHEN system = 'taskflow'
            THEN round(p50_first_min / nullif((SELECT p50_first_min FROM s WHERE system = 'taskflow_alone'), 0), 2)
       END AS first_min_vs_alone,
       CASE WHEN system = 'taskflow'
            THEN round(p50_later_min / nullif((SELECT p50_later_min FROM s WHERE system = 'taskflow_alone'), 0), 2)
       END AS later_min_vs_alone
FROM s ORDER BY system;
SQL
