#!/bin/bash
# test/bench/defhist_bench.sh — the cost of the definition history (part 94) on
# bulk definition: N × (create_flow + 3 add_node forming a chain, each call its
# own statement/transaction, one psql session, as a plain role) with the
# history triggers disabled (baseline) and enabled, in the same run on the same
# throwaway cluster; each measured ROUNDS (3) times, alternating which goes
# first, best kept. Prints wall and backend CPU seconds (the backend reads its
# own /proc/self/stat: robust on a busy machine), the ratios and the overhead
# per API call. Not a timed test.
#
#   sudo test/bench/defhist_bench.sh            # FLOWS=2000
# Uses the PostgreSQL of pg_config on PATH (PATH=/path/to/pg/bin:$PATH to pick one).
set -eu
cd "$(dirname "$0")/../.."
FLOWS=${FLOWS:-2000}
ROUNDS=${ROUNDS:-3}
DIR=${BENCH_DIR:-/tmp/taskflow-defhist-bench}
PORT=${BENCH_PORT:-54351}
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
timezone = 'UTC'
CONF
psql_ -c "CREATE EXTENSION taskflow" -c "CREATE ROLE bench_user LOGIN" >/dev/null

gen() {  # $1: flow name prefix; the last line prints the backend's CPU ticks
  echo "\\o /dev/null"
  echo "SET ROLE bench_user;"
  for i in $(seq 1 "$FLOWS"); do
    echo "SELECT taskflow.create_flow('$1_$i', schedule => '0 5 * * *', timezone => 'Asia/Shanghai');"
    echo "SELECT taskflow.add_node('$1_$i', 'a', 'sql', 'SELECT 1');"
    echo "SELECT taskflow.add_node('$1_$i', 'b', 'sql', 'SELECT 2', after => ARRAY['a']);"
    echo "SELECT taskflow.add_node('$1_$i', 'c', 'sql', 'SELECT 3', after => ARRAY['b']);"
  done
  echo "RESET ROLE;"
  echo "\\o"
  echo "SELECT split_part(pg_read_file('/proc/self/stat'), ' ', 14)::int + split_part(pg_read_file('/proc/self/stat'), ' ', 15)::int;"
}
hz=$(getconf CLK_TCK)
triggers() {  # ENABLE / DISABLE the history triggers
  for t in flows:flows_defhist flows:flows_defhist_upd nodes:nodes_defhist nodes:nodes_defhist_upd \
           edges:edges_defhist edges:edges_defhist_upd variables:variables_defhist \
           variables:variables_defhist_upd; do
    echo "ALTER TABLE taskflow.${t%%:*} $1 TRIGGER ${t#*:};"
  done | psql_ >/dev/null
}
min() { awk -v x="$1" -v y="$2" 'BEGIN {print (y < x) ? y : x}'; }
best_off=999999; best_on=999999; cpu_off=999999; cpu_on=999999
for round in $(seq 1 "$ROUNDS"); do
  order="off on"; [ $((round % 2)) = 0 ] && order="on off"   # alternate which goes first
  for mode in $order; do
    gen "${mode}${round}" > "$DIR/$mode$round.sql"; chown postgres "$DIR/$mode$round.sql"
    if [ $mode = off ]; then triggers DISABLE; else triggers ENABLE; fi
    t0=$(date +%s.%N); ticks=$(psql_ -f "$DIR/$mode$round.sql"); t1=$(date +%s.%N)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
    c=$(awk -v t="$ticks" -v hz="$hz" 'BEGIN {print t / hz}')
    if [ $mode = off ]; then best_off=$(min "$best_off" "$s"); cpu_off=$(min "$cpu_off" "$c")
    else best_on=$(min "$best_on" "$s"); cpu_on=$(min "$cpu_on" "$c"); fi
  done
done
triggers ENABLE
rows=$(psql_ -c "SELECT count(*) FROM taskflow.definition_changes")
awk -v n="$FLOWS" -v off="$best_off" -v on="$best_on" -v coff="$cpu_off" -v con="$cpu_on" \
    -v rows="$rows" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  calls = n * 4
  printf "flows: %d (%d API calls per run), load average %s\n", n, calls, load
  printf "history off: %.2f s wall, %.2f s backend CPU (%.3f ms CPU/call)\n", off, coff, coff * 1000 / calls
  printf "history on:  %.2f s wall, %.2f s backend CPU (%.3f ms CPU/call)\n", on, con, con * 1000 / calls
  printf "ratio on/off: wall %.2f, backend CPU %.2f; overhead %.3f ms backend CPU per API call; %d history rows written\n",
         on / off, con / coff, (con - coff) * 1000 / calls, rows
}'
