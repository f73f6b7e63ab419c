#!/bin/bash
# test/bench/soak_bench.sh — does the scheduler keep up with many frequent flows?  Not a
# timed test.
#
# FLOWS flows, each a chain of 3 trivial sql nodes scheduled 'every 10 seconds' (all due
# at the same instants), for DURATION seconds on a throwaway cluster (taskflow preloaded,
# taskflow.max_workers = WORKERS).  Then it waits GRACE seconds and reports:
#   - runs due in the window, runs done (succeeded) within GRACE seconds of their due
#     time, runs done at all, the worst lateness;
#   - the backlog when the window closes (runs still scheduled or running);
#   - the CPU time of the taskflow scheduler over the window + grace (and per run).
# The baseline is the due count itself (keeping up = every due run done within GRACE s);
# on 1.0, 500 flows collapsed to ~2 runs/s with the scheduler at 100 % of a core.
#
#   sudo test/bench/soak_bench.sh      # FLOWS=500 DURATION=60 GRACE=20 WORKERS=16
#   READY_INCREMENTAL=off ...          # the ready-node read of every running run (1.4)
# Uses the PostgreSQL of pg_config on PATH (PATH=/path/to/pg/bin:$PATH to pick one).
set -eu
cd "$(dirname "$0")/../.."
FLOWS=${FLOWS:-500}
DURATION=${DURATION:-60}
GRACE=${GRACE:-20}
WORKERS=${WORKERS:-16}
DIR=${BENCH_DIR:-/tmp/taskflow-soak-bench}
PORT=${BENCH_PORT:-54369}
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
max_worker_processes = $((WORKERS * 2 + 8))  # exited workers hold a slot until the postmaster reaps them
max_connections = $((WORKERS + 50))
taskflow.max_workers = $WORKERS
taskflow.scheduler_ready_incremental = ${READY_INCREMENTAL:-on}
timezone = 'UTC'
CONF
psql_ -c "SET client_min_messages = warning" -c "CREATE EXTENSION taskflow" >/dev/null
sleep 1

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
sched=$(psql_ -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'")

# the window starts at the next multiple of 10 s at least 20 s away
start=$(psql_ -c "SELECT to_timestamp(ceil(extract(epoch FROM now() + interval '20 s') / 10) * 10)")
stop=$(psql_ -c "SELECT '$start'::timestamptz + interval '$DURATION s'")
echo "soak bench: $FLOWS flows x 3-node chain every 10 s, window $DURATION s from $start, grace $GRACE s, max_workers $WORKERS, scheduler_ready_incremental ${READY_INCREMENTAL:-on}"
echo "  machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
psql_ >/dev/null <<SQL
SELECT count(taskflow.create_flow('soak_' || g, schedule => 'every 10 seconds', timezone => 'UTC',
                                  start_date => '$start'::timestamptz - interval '1 s',
                                  end_date => '$stop'::timestamptz - interval '1 s'))
  FROM generate_series(1, $FLOWS) g;
SELECT count(taskflow.add_node('soak_' || g, 'a', 'sql', 'SELECT 1')) FROM generate_series(1, $FLOWS) g;
SELECT count(taskflow.add_node('soak_' || g, 'b', 'sql', 'SELECT 2', after => ARRAY['a'])) FROM generate_series(1, $FLOWS) g;
SELECT count(taskflow.add_node('soak_' || g, 'c', 'sql', 'SELECT 3', after => ARRAY['b'])) FROM generate_series(1, $FLOWS) g;
SQL
sleep "$(psql_ -c "SELECT greatest(extract(epoch FROM '$start'::timestamptz - now()), 0)")"
c0=$(cpu_ms "$sched")
sleep "$DURATION"
backlog=$(psql_ -c "SELECT count(*) FROM taskflow.runs WHERE state IN ('scheduled', 'running')")
sleep "$GRACE"
c1=$(cpu_ms "$sched")
psql_ <<SQL
\pset footer off
\pset format aligned
\pset tuples_only off
SELECT $FLOWS * ($DURATION / 10) AS runs_due,
       count(*) AS runs_created,
       count(*) FILTER (WHERE state = 'succeeded' AND finished_at <= scheduled_for + interval '$GRACE s')
         AS done_within_${GRACE}s,
       count(*) FILTER (WHERE state = 'succeeded') AS done,
       count(*) FILTER (WHERE state NOT IN ('succeeded', 'scheduled', 'running')) AS failed,
       $backlog AS backlog_at_window_end,
       round(extract(epoch FROM max(coalesce(finished_at, now()) - scheduled_for))::numeric, 1) AS worst_lateness_s,
       round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY finished_at - scheduled_for))::numeric, 2) AS p50_lateness_s,
       $((c1 - c0)) AS scheduler_cpu_ms,
       round($((c1 - c0))::numeric / nullif(count(*), 0), 2) AS cpu_ms_per_run,
       round(100.0 * $((c1 - c0)) / (1000 * ($DURATION + $GRACE)), 1) AS scheduler_cpu_pct
  FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
 WHERE f.name LIKE 'soak_%' AND r.scheduled_for >= '$start' AND r.scheduled_for < '$stop';
SELECT 'not succeeded: ' || r.state || ' ' || coalesce(r.message, '') || ' ' ||
       coalesce((SELECT string_agg(nr.state || ' ' || coalesce(nr.message, ''), '; ') FROM taskflow.node_runs nr
                  WHERE nr.run_id = r.id AND nr.state <> 'succeeded'), '')
  FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
 WHERE f.name LIKE 'soak_%' AND r.scheduled_for >= '$start' AND r.scheduled_for < '$stop'
   AND r.state <> 'succeeded' LIMIT 5 \g (tuples_only=on)
SQL
