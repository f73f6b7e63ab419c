#!/bin/bash
# test/bench/ready_bench.sh — the scheduler's ready-node read over what changed
# (taskflow.scheduler_ready_incremental = on, 1.5) against the read of every running run
# (off, as 1.4), measured in the same run on the same throwaway cluster, beside BLOCKED
# running runs that have nothing ready (each waits an hour for a retry: the runs every
# read of 1.4 probed).  Not a timed test.
#
# Per mode (MODES: off, on, off, on):
#   read       the ready-node read itself (taskflow._sched_ready_next, as the
#              scheduler calls it, nothing ready), mean of 50 calls
#   chains     RUNS flows of a 3-node chain started at once: wall time, scheduler CPU
#              ms per run
#   handoff    REPEAT runs of a CHAIN-node chain: next node started - previous node
#              finished, p50 / p99
#   fan-out    REPEAT runs of a flow of FAN independent nodes: nodes/s
#   dispatch   for N in COUNTS, N flows 'every 5 seconds' for WINDOW seconds: due time
#              -> first statement, p50 / p99 (as dispatch_bench.sh)
# Once: the warm worker's read of its owner's next node (taskflow._node_next_for_owner)
# against the 1.4 query over every running run of the owner.
# Prints the figures per mode and the ratios off / on.  The soak (500 flows x 3-node
# chain every 10 s) is soak_bench.sh with READY_INCREMENTAL=off / on.
#
#   sudo test/bench/ready_bench.sh     # BLOCKED=500 RUNS=200 CHAIN=50 FAN=300 REPEAT=3
#                                      # COUNTS="1 10 100" WINDOW=30 MAX_WORKERS=8
#                                      # MODES="off on off on" (figures: mean / pooled)
#                                      # PHASES="read chains pool dispatch"
set -eu
cd "$(dirname "$0")/../.."
BLOCKED=${BLOCKED:-500}
RUNS=${RUNS:-200}
CHAIN=${CHAIN:-50}
FAN=${FAN:-300}
REPEAT=${REPEAT:-3}
COUNTS=${COUNTS:-1 10 100}
WINDOW=${WINDOW:-30}
MAX_WORKERS=${MAX_WORKERS:-8}
MODES=${MODES:-off on off on}	# interleaved: the others' load on the machine varies
PHASES=${PHASES:-read chains pool dispatch}	# pool: the handoff and fan-out runs
DIR=${BENCH_DIR:-/tmp/taskflow-ready-bench}
PORT=${BENCH_PORT:-54343}
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
max_worker_processes = 64
max_connections = 200
taskflow.max_workers = $MAX_WORKERS
timezone = 'UTC'
CONF

psql_ >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION taskflow;
CREATE ROLE bench LOGIN;
CREATE TABLE bench_log (mode text, n int, at timestamptz);
GRANT INSERT ON bench_log TO bench;
CREATE TABLE bench_runs (mode text, kind text, run_id bigint);
CREATE TABLE bench_fig (mode text, what text, value numeric);
SELECT count(taskflow.create_flow('blk_' || g, owner => 'bench')) FROM generate_series(1, $BLOCKED) g;
SELECT count(taskflow.add_node('blk_' || g, 'a', 'sql', 'SELECT 1/0', retries => 1,
                               retry_delay => '1 hour')) FROM generate_series(1, $BLOCKED) g;
SELECT count(taskflow.add_node('blk_' || g, 'b', 'sql', 'SELECT 1', after => ARRAY['a']))
  FROM generate_series(1, $BLOCKED) g;
SELECT count(taskflow.create_flow('ch_' || g, owner => 'bench')) FROM generate_series(1, $RUNS) g;
SELECT count(taskflow.add_node('ch_' || g, 'a', 'sql', 'SELECT 1')) FROM generate_series(1, $RUNS) g;
SELECT count(taskflow.add_node('ch_' || g, 'b', 'sql', 'SELECT 2', after => ARRAY['a'])) FROM generate_series(1, $RUNS) g;
SELECT count(taskflow.add_node('ch_' || g, 'c', 'sql', 'SELECT 3', after => ARRAY['b'])) FROM generate_series(1, $RUNS) g;
SELECT taskflow.create_flow('fan', owner => 'bench');
SELECT count(taskflow.add_node('fan', 'n' || g, 'sql', 'SELECT 1')) FROM generate_series(1, $FAN) g;
SELECT taskflow.create_flow('chain', owner => 'bench');
SELECT taskflow.add_node('chain', 'n1', 'sql', 'SELECT 1');
SELECT count(taskflow.add_node('chain', 'n' || g, 'sql', 'SELECT 1', after => ARRAY['n' || (g - 1)]))
  FROM generate_series(2, $CHAIN) g;
SELECT count(taskflow.run_flow('blk_' || g)) FROM generate_series(1, $BLOCKED) g;
SQL
# the blocked runs: running, their first node waiting an hour for its retry
for _ in $(seq 120); do
  [ "$(psql_ -c "SELECT count(*) FROM taskflow.node_runs WHERE state = 'retrying'")" -ge "$BLOCKED" ] && break
  sleep 1
done
sched=$(psql_ -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'")
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{printf "%d", ($14 + $15) * 1000 / hz}' "/proc/$1/stat"; }
fig() { psql_ -c "INSERT INTO bench_fig VALUES ('$1', '$2', $3)"; }

run() {		# mode flow -> records the run
  local id state
  id=$(psql_ -c "SELECT taskflow.run_flow('$2')")
  state=$(psql_ -c "SELECT taskflow.wait_run($id, '10 minutes')")
  [ "$state" = succeeded ] || { echo "run $id of $2: $state" >&2; exit 1; }
  psql_ -c "INSERT INTO bench_runs VALUES ('$1', '$2', $id)"
}

# the warm worker's read: 1.5 (the ready set) against 1.4's query (every running run)
owner=$(psql_ -c "SELECT 'bench'::regrole::oid")
psql_ >/dev/null <<SQL
DO \$\$
DECLARE t timestamptz; n int;
BEGIN
  t := clock_timestamp();
  FOR i IN 1..50 LOOP
    PERFORM * FROM taskflow._node_next_for_owner($owner, '{}', 3);
  END LOOP;
  INSERT INTO bench_fig VALUES ('-', 'worker read ms (1.5)', extract(epoch FROM clock_timestamp() - t) * 1000 / 50);
  t := clock_timestamp();
  FOR i IN 1..50 LOOP
    PERFORM x.x
      FROM (SELECT r.id, r.scheduled_for FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
             WHERE r.state = 'running' AND f.owner = $owner
               AND EXISTS (SELECT 1 FROM taskflow.node_runs nr
                            WHERE nr.run_id = r.id AND nr.state IN ('pending', 'retrying'))
             ORDER BY f.priority DESC, r.scheduled_for, r.id LIMIT 8) rr
     CROSS JOIN LATERAL taskflow._node_next_in_run(rr.id, '{}', 3) x(x) LIMIT 3;
  END LOOP;
  INSERT INTO bench_fig VALUES ('-', 'worker read ms (1.4 query)', extract(epoch FROM clock_timestamp() - t) * 1000 / 50);
END
\$\$;
SQL

echo "ready bench: $BLOCKED blocked running runs; $RUNS 3-node chains, $REPEAT x chain of $CHAIN, $REPEAT x fan-out of $FAN, dispatch of $COUNTS flows over $WINDOW s; max_workers $MAX_WORKERS; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in $MODES; do
  psql_ -c "ALTER SYSTEM SET taskflow.scheduler_ready_incremental = $mode" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 2
  full=$([ "$mode" = off ] && echo true || echo false)
  case " $PHASES " in *" read "*)
  psql_ >/dev/null <<SQL
DO \$\$
DECLARE t timestamptz;
BEGIN
  t := clock_timestamp();
  FOR i IN 1..50 LOOP
    PERFORM * FROM taskflow._sched_ready_next('{}', $full, '{}', 8, '{}');
  END LOOP;
  INSERT INTO bench_fig VALUES ('$mode', 'read ms', extract(epoch FROM clock_timestamp() - t) * 1000 / 50);
END
\$\$;
SQL
  ;; esac
  case " $PHASES " in *" chains "*)
  # chains started at once
  c0=$(cpu_ms "$sched")
  t0=$(date +%s.%N)
  psql_ -c "SELECT count(taskflow.run_flow('ch_' || g)) FROM generate_series(1, $RUNS) g" >/dev/null
  for _ in $(seq 600); do
    [ "$(psql_ -c "SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
                   WHERE f.name LIKE 'ch\_%' AND r.state IN ('scheduled', 'running')")" = 0 ] && break
    sleep 0.2
  done
  t1=$(date +%s.%N)
  c1=$(cpu_ms "$sched")
  fig "$mode" "chains wall s" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
  fig "$mode" "scheduler cpu ms/run" "$((c1 - c0)) / $RUNS.0"
  ;; esac
  case " $PHASES " in *" pool "*)
  for _ in $(seq "$REPEAT"); do run "$mode" chain; done
  for _ in $(seq "$REPEAT"); do run "$mode" fan; done
  ;; esac
  # dispatch: N flows due at once every 5 s
  case " $PHASES " in *" dispatch "*) ;; *) COUNTS_RUN= ;; esac
  for n in ${COUNTS_RUN-$COUNTS}; do
    from=$(psql_ -c "SELECT to_timestamp(ceil(extract(epoch FROM clock_timestamp() + interval '3 s') / 5) * 5)")
    psql_ >/dev/null <<SQL
SELECT count(taskflow.create_flow('d_' || g, schedule => 'every 5 seconds', timezone => 'UTC',
                                  catchup => false, owner => 'bench',
                                  start_date => timestamptz '$from' + interval '5 s',
                                  end_date => timestamptz '$from' + interval '$WINDOW s' + interval '1 s'))
  FROM generate_series(1, $n) g;
SELECT count(taskflow.add_node('d_' || g, 'n', 'sql',
                               \$\$INSERT INTO public.bench_log VALUES ('$mode', $n, clock_timestamp())\$\$))
  FROM generate_series(1, $n) g;
SQL
    sleep "$(psql_ -c "SELECT greatest(extract(epoch FROM timestamptz '$from' + interval '$WINDOW s' + interval '4 s' - clock_timestamp()), 0)")"
    psql_ -c "SELECT count(taskflow.drop_flow(name)) FROM taskflow.flows WHERE name LIKE 'd\_%'" >/dev/null
  done
  echo "  $mode: done"
done

psql_ <<'SQL'
\pset footer off
\pset format aligned
\pset tuples_only off
INSERT INTO bench_fig
SELECT b.mode, 'fan-out nodes/s',
       percentile_cont(0.5) WITHIN GROUP (ORDER BY x.nodes_per_s)
  FROM (SELECT b.mode, b.run_id,
               count(*) / extract(epoch FROM max(nr.finished_at) - r.created_at) AS nodes_per_s
          FROM bench_runs b JOIN taskflow.runs r ON r.id = b.run_id
          JOIN taskflow.node_runs nr ON nr.run_id = b.run_id
         WHERE b.kind = 'fan' GROUP BY b.mode, b.run_id, r.created_at) x
  JOIN (SELECT DISTINCT mode FROM bench_runs) b ON b.mode = x.mode
 GROUP BY b.mode;
INSERT INTO bench_fig
SELECT h.mode, q.what, percentile_cont(q.p) WITHIN GROUP (ORDER BY h.ms)
  FROM (SELECT b.mode, extract(epoch FROM nx.started_at - pv.finished_at) * 1000 AS ms
          FROM bench_runs b
          JOIN taskflow.node_runs pv ON pv.run_id = b.run_id
          JOIN taskflow.edges e ON e.from_node = pv.node_id
          JOIN taskflow.node_runs nx ON nx.run_id = b.run_id AND nx.node_id = e.to_node
         WHERE b.kind = 'chain') h
 CROSS JOIN (VALUES ('handoff p50 ms', 0.5), ('handoff p99 ms', 0.99)) q(what, p)
 GROUP BY h.mode, q.what, q.p;
INSERT INTO bench_fig
SELECT l.mode, format('dispatch %s %s ms', l.n, q.what), percentile_cont(q.p) WITHIN GROUP (ORDER BY l.ms)
  FROM (SELECT mode, n, extract(epoch FROM at - to_timestamp(floor(extract(epoch FROM at) / 5) * 5)) * 1000 AS ms
          FROM bench_log) l
 CROSS JOIN (VALUES ('p50', 0.5), ('p99', 0.99)) q(what, p)
 GROUP BY l.mode, l.n, q.what, q.p;
CREATE TEMP VIEW fig AS SELECT mode, what, avg(value) AS value FROM bench_fig GROUP BY mode, what;
SELECT f.what, round(f.value, 2) AS "old (off)", round(n.value, 2) AS "new (on)",
       round(f.value / nullif(n.value, 0), 2) AS "off / on"
  FROM fig f JOIN fig n ON n.what = f.what AND n.mode = 'on'
 WHERE f.mode = 'off'
 ORDER BY f.what;
SELECT what, round(value, 3) AS value FROM bench_fig WHERE mode = '-' ORDER BY what;
SQL
