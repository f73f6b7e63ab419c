#!/bin/bash
# test/bench/outvars_bench.sh — what output variables cost, against the same flows
# without them, in the same run on one throwaway cluster. Not a timed test.
#
#  1. definition: NODES × add_node of a chain whose bodies use ${prev.n} (each checked
#     against the DAG) vs the same chain with plain bodies;
#  2. run time: RUNS × CALL taskflow.run of a 2-node flow whose first node's last
#     statement returns a row that the second node uses (captured, recorded, looked up)
#     vs the same flow whose first node returns nothing and whose second uses a constant.
# Prints seconds for each and the ratios.
#
#   sudo test/bench/outvars_bench.sh            # NODES=2000 RUNS=200
# Uses the PostgreSQL of pg_config on PATH (or PG_CONFIG).
set -eu
cd "$(dirname "$0")/../.."
NODES=${NODES:-2000}
RUNS=${RUNS:-200}
DIR=${BENCH_DIR:-/tmp/taskflow-outvars-bench}
PORT=${BENCH_PORT:-54351}
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
max_worker_processes = 32
CONF
psql_ -c "CREATE EXTENSION taskflow" -c "CREATE TABLE sink (x int)" >/dev/null
sleep 1

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

gen_chain() {  # $1 flow, $2 1: bodies use ${prev.n}
  echo "SELECT taskflow.create_flow('$1');"
  echo "SELECT taskflow.add_node('$1', 'n1', 'sql', 'SELECT 1 AS n');"
  for i in $(seq 2 "$NODES"); do
    if [ "$2" = 1 ]; then body="SELECT \${n$((i - 1)).n}::int + 1 AS n"; else body="SELECT 1 + 1 AS n"; fi
    echo "SELECT taskflow.add_node('$1', 'n$i', 'sql', '$body', after => ARRAY['n$((i - 1))']);"
  done
}
# alternate the order (the second chain is defined next to the first one's nodes)
t0=$(now); gen_chain plain1 0 | psql_ >/dev/null; t1=$(now)
gen_chain outv1 1 | psql_ >/dev/null; t2=$(now)
gen_chain outv2 1 | psql_ >/dev/null; t3=$(now)
gen_chain plain2 0 | psql_ >/dev/null; t4=$(now)
d_plain=$(echo "$(secs "$t0" "$t1") + $(secs "$t3" "$t4")" | bc); d_outv=$(secs "$t1" "$t3")

psql_ >/dev/null <<'SQL'
SELECT taskflow.create_flow('run_plain');
SELECT taskflow.add_node('run_plain', 'a', 'sql', 'SELECT 42 AS n, ''x'' AS s WHERE false; INSERT INTO sink SELECT 0 WHERE false');
SELECT taskflow.add_node('run_plain', 'b', 'sql', 'INSERT INTO sink VALUES (42)', after => ARRAY['a']);
SELECT taskflow.create_flow('run_outv');
SELECT taskflow.add_node('run_outv', 'a', 'sql', 'INSERT INTO sink SELECT 0 WHERE false; SELECT 42 AS n, ''x'' AS s');
SELECT taskflow.add_node('run_outv', 'b', 'sql', 'INSERT INTO sink VALUES (${a.n})', after => ARRAY['a']);
SQL
runs() { for i in $(seq 1 "$RUNS"); do echo "CALL taskflow.run('$1', bizdate => date '2020-01-01' + $i);"; done; }
t0=$(now); runs run_plain | psql_ >/dev/null; t1=$(now)
runs run_outv | psql_ >/dev/null; t2=$(now)
r_plain=$(secs "$t0" "$t1"); r_outv=$(secs "$t1" "$t2")
recorded=$(psql_ -c "SELECT count(*) FROM taskflow.node_run_history WHERE flow = 'run_outv' AND node = 'a' AND outputs->>'n' = '42'")

printf 'define 2 chains of %d nodes: plain %.2f s, with ${prev.n} %.2f s, ratio %.2f\n' \
  "$NODES" "$d_plain" "$d_outv" "$(echo "$d_outv / $d_plain" | bc -l)"
printf 'run a 2-node flow %d times: plain %.2f s, with an output variable %.2f s, ratio %.2f (outputs recorded: %s)\n' \
  "$RUNS" "$r_plain" "$r_outv" "$(echo "$r_outv / $r_plain" | bc -l)" "$recorded"
