#!/bin/bash
# test/bench/pool_bench.sh — warm node workers (taskflow.worker_reuse) on vs off, measured
# in the same run on the same throwaway cluster.  Not a timed test.
#
# Workloads (nodes owned by a LOGIN role, body 'SELECT 1'):
#   fan-out  one run of a flow of FAN independent nodes: trivial nodes/s
#            = FAN / (last node finished - run created)
#   chain    one run of a flow of CHAIN nodes, each after the previous one: handoff
#            = next node started - previous node finished (p50 / p99 / max over all
#            handoffs of all repeats, and the share of handoffs within 5 ms)
# Each workload runs REPEAT times per mode, first with taskflow.worker_reuse = off (a
# background worker forked per node attempt, the 1.0 model), then on.  Prints the
# figures per mode and the ratio on / off.
#
#   sudo test/bench/pool_bench.sh            # FAN=300 CHAIN=50 REPEAT=3 MAX_WORKERS=8
#   PG_CONFIG=/path/to/pg_config sudo -E test/bench/pool_bench.sh
#   MODES=on ...                             # warm workers only (A/B runs of two builds)
set -eu
cd "$(dirname "$0")/../.."
FAN=${FAN:-300}
CHAIN=${CHAIN:-50}
REPEAT=${REPEAT:-3}
MAX_WORKERS=${MAX_WORKERS:-8}
MODES=${MODES:-off on}
DIR=${BENCH_DIR:-/tmp/taskflow-pool-bench}
PORT=${BENCH_PORT:-54341}
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
max_worker_processes = 64
taskflow.max_workers = $MAX_WORKERS
fsync = off
CONF

psql_ >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION taskflow;
CREATE ROLE bench LOGIN;
SELECT taskflow.create_flow('fan', owner => 'bench');
SELECT taskflow.add_node('fan', 'n' || g, 'sql', 'SELECT 1') FROM generate_series(1, $FAN) g;
SELECT taskflow.create_flow('chain', owner => 'bench');
SELECT taskflow.add_node('chain', 'n1', 'sql', 'SELECT 1');
SELECT taskflow.add_node('chain', 'n' || g, 'sql', 'SELECT 1', after => ARRAY['n' || (g - 1)])
  FROM generate_series(2, $CHAIN) g;
CREATE TABLE bench_runs (mode text, kind text, run_id bigint);
SQL

run() {		# mode flow -> records the run
  local id state
  id=$(psql_ -c "SELECT taskflow.run_flow('$2')")
  state=$(psql_ -c "SELECT taskflow.wait_run($id, '10 minutes')")
  [ "$state" = succeeded ] || { echo "run $id of $2: $state" >&2; exit 1; }
  psql_ -c "INSERT INTO bench_runs VALUES ('$1', '$2', $id)"
}

echo "pool bench: fan-out of $FAN nodes, chain of $CHAIN nodes, $REPEAT runs each, taskflow.max_workers = $MAX_WORKERS, $(nproc) cores"
for mode in $MODES; do
  psql_ -c "ALTER SYSTEM SET taskflow.worker_reuse = $mode" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 2
  for _ in $(seq "$REPEAT"); do run "$mode" fan; done
  for _ in $(seq "$REPEAT"); do run "$mode" chain; done
done

psql_ <<'SQL'
\pset footer off
\pset format aligned
\pset tuples_only off
CREATE TEMP VIEW fan AS
SELECT b.mode, b.run_id,
       count(*) / extract(epoch FROM max(nr.finished_at) - r.created_at) AS nodes_per_s
  FROM bench_runs b JOIN taskflow.runs r ON r.id = b.run_id
  JOIN taskflow.node_runs nr ON nr.run_id = b.run_id
 WHERE b.kind = 'fan' GROUP BY b.mode, b.run_id, r.created_at;
CREATE TEMP VIEW hop AS
SELECT b.mode, extract(epoch FROM nx.started_at - pv.finished_at) * 1000 AS ms
  FROM bench_runs b
  JOIN taskflow.node_runs pv ON pv.run_id = b.run_id
  JOIN taskflow.edges e ON e.from_node = pv.node_id
  JOIN taskflow.node_runs nx ON nx.run_id = b.run_id AND nx.node_id = e.to_node
 WHERE b.kind = 'chain';
CREATE TEMP VIEW fig AS
SELECT f.mode,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY f.nodes_per_s)::numeric, 0) AS fanout_nodes_per_s,
       round(min(f.nodes_per_s)::numeric, 0) AS fanout_min,
       round(max(f.nodes_per_s)::numeric, 0) AS fanout_max,
       (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY h.ms)::numeric, 2) FROM hop h WHERE h.mode = f.mode) AS handoff_p50_ms,
       (SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY h.ms)::numeric, 2) FROM hop h WHERE h.mode = f.mode) AS handoff_p99_ms,
       (SELECT round(max(h.ms)::numeric, 2) FROM hop h WHERE h.mode = f.mode) AS handoff_max_ms,
       (SELECT round(100.0 * count(*) FILTER (WHERE h.ms <= 5) / count(*), 1) FROM hop h WHERE h.mode = f.mode) AS handoff_le_5ms_pct
  FROM fan f GROUP BY f.mode;
SELECT 'worker_reuse = ' || mode AS mode, fanout_nodes_per_s, fanout_min, fanout_max,
       handoff_p50_ms, handoff_p99_ms, handoff_max_ms, handoff_le_5ms_pct
  FROM fig ORDER BY mode;
SELECT round(n.fanout_nodes_per_s / nullif(f.fanout_nodes_per_s, 0), 2) AS "fan-out nodes/s on/off",
       round(f.handoff_p50_ms / nullif(n.handoff_p50_ms, 0), 2) AS "handoff p50 off/on",
       round(f.handoff_p99_ms / nullif(n.handoff_p99_ms, 0), 2) AS "handoff p99 off/on"
  FROM fig n, fig f WHERE n.mode = 'on' AND f.mode = 'off';
SQL
