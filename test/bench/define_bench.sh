#!/bin/bash
# test/bench/define_bench.sh — how long defining N flows takes, against pg_cron defining
# N jobs, in the same run on the same throwaway cluster (both preloaded). Not a timed test.
#
# taskflow: N × (create_flow with a schedule in a time zone other than the session's +
# 3 add_node forming a chain), each call its own statement/transaction, through one psql
# session — what a provisioning script does. pg_cron: N × cron.schedule, likewise.
# Also samples the CPU time the taskflow scheduler of the database burns meanwhile, and
# until it has looked at every new flow (flows.next_due set: a flow due hours away does
# not wake it, its next pass, <= 60 s later, does that work). Prints seconds for each
# and the ratio.
# Then the declarative form: N × taskflow.apply_flow(definition) of the same 3-node chain
# (one statement per flow), and N × apply_flow of a 1-node flow (the exact equivalent of a
# pg_cron job: a schedule and one SQL command).
#
#   sudo test/bench/define_bench.sh            # FLOWS=10000
# Uses the PostgreSQL of pg_config on PATH (PATH=/path/to/pg/bin:$PATH to pick one).
set -eu
cd "$(dirname "$0")/../.."
FLOWS=${FLOWS:-10000}
DIR=${BENCH_DIR:-/tmp/taskflow-define-bench}
PORT=${BENCH_PORT:-54349}
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow,pg_cron'
cron.database_name = 'postgres'
max_worker_processes = 32
timezone = 'UTC'
CONF
psql_ -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION taskflow" >/dev/null
sleep 1

cpu_of() {  # utime+stime of a pid in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
sched=$(psql_ -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'")

gen_cron() {
  for i in $(seq 1 "$FLOWS"); do
    echo "SELECT cron.schedule('job_$i', '0 5 * * *', 'SELECT 1');"
  done
}
gen_taskflow() {
  for i in $(seq 1 "$FLOWS"); do
    echo "SELECT taskflow.create_flow('flow_$i', schedule => '0 5 * * *', timezone => 'Asia/Shanghai');"
    echo "SELECT taskflow.add_node('flow_$i', 'a', 'sql', 'SELECT 1');"
    echo "SELECT taskflow.add_node('flow_$i', 'b', 'sql', 'SELECT 2', after => ARRAY['a']);"
    echo "SELECT taskflow.add_node('flow_$i', 'c', 'sql', 'SELECT 3', after => ARRAY['b']);"
  done
}
# the same definitions, one transaction per flow (as a deploy script with one
# BEGIN ... COMMIT per flow, or psql --single-transaction per file, would run them)
gen_taskflow_tx() {
  gen_taskflow | sed 's/flow_/flowtx_/' | awk 'NR % 4 == 1 {print "BEGIN;"} {print} NR % 4 == 0 {print "COMMIT;"}'
}
# one apply_flow per flow: the 3-node chain, and a 1-node flow
gen_apply3() {
  for i in $(seq 1 "$FLOWS"); do
    echo "SELECT taskflow.apply_flow('{\"flow\": {\"name\": \"flowap_$i\", \"schedule\": \"0 5 * * *\", \"timezone\": \"Asia/Shanghai\"}, \"nodes\": {\"a\": {\"kind\": \"sql\", \"body\": \"SELECT 1\"}, \"b\": {\"kind\": \"sql\", \"body\": \"SELECT 2\", \"after\": [\"a\"]}, \"c\": {\"kind\": \"sql\", \"body\": \"SELECT 3\", \"after\": [\"b\"]}}}');"
  done
}
gen_apply1() {
  for i in $(seq 1 "$FLOWS"); do
    echo "SELECT taskflow.apply_flow('{\"flow\": {\"name\": \"flowa1_$i\", \"schedule\": \"0 5 * * *\", \"timezone\": \"Asia/Shanghai\"}, \"nodes\": {\"a\": {\"kind\": \"sql\", \"body\": \"SELECT 1\"}}}');"
  done
}
gen_cron > "$DIR/cron.sql"; gen_taskflow > "$DIR/taskflow.sql"; gen_taskflow_tx > "$DIR/taskflow_tx.sql"
gen_apply3 > "$DIR/apply3.sql"; gen_apply1 > "$DIR/apply1.sql"
chown postgres "$DIR"/*.sql

t0=$(date +%s.%N); psql_ -f "$DIR/cron.sql" >/dev/null; t1=$(date +%s.%N)
c0=$(cpu_of "$sched")
t2=$(date +%s.%N); psql_ -f "$DIR/taskflow.sql" >/dev/null; t3=$(date +%s.%N)
c1=$(cpu_of "$sched")
for _ in $(seq 1 90); do
  [ "$(psql_ -c "SELECT count(*) FROM taskflow.flows WHERE next_due IS NULL")" = 0 ] && break
  sleep 1
done
c2=$(cpu_of "$sched")
t4=$(date +%s.%N); psql_ -f "$DIR/taskflow_tx.sql" >/dev/null; t5=$(date +%s.%N)
t6=$(date +%s.%N); psql_ -f "$DIR/apply3.sql" >/dev/null; t7=$(date +%s.%N)
t8=$(date +%s.%N); psql_ -f "$DIR/apply1.sql" >/dev/null; t9=$(date +%s.%N)
# the same flows, defined either way
[ "$(psql_ -c "SELECT count(DISTINCT (taskflow.flow_definition(name) - '{version,flow}'::text[])::text)
                 FROM taskflow.flows WHERE name IN ('flow_1', 'flowtx_1', 'flowap_1')")" = 1 ] ||
  { echo "define bench: apply_flow defined another flow than the API calls" >&2; exit 1; }
awk -v n="$FLOWS" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" -v s0="$c0" -v s1="$c1" -v s2="$c2" \
    -v g="$t6" -v h="$t7" -v i="$t8" -v j="$t9" \
    -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  cron = b - a; tf = d - c;
  printf "define bench: %d flows (create_flow + 3 add_node) vs %d pg_cron jobs (cron.schedule), load %s\n", n, n, load;
  tx = f - e;
  printf "  pg_cron   %8.1f s\n  taskflow  %8.1f s   ratio taskflow/pg_cron %.2f (lower is better; 4 statements and 4 commits per flow)\n", cron, tf, tf / cron;
  printf "  taskflow, one transaction per flow  %8.1f s   ratio %.2f (4 statements, 1 commit per flow, as one cron.schedule)\n", tx, tx / cron;
  printf "  taskflow apply_flow, 3-node chain    %8.1f s   ratio %.2f (1 statement per flow)\n", h - g, (h - g) / cron;
  printf "  taskflow apply_flow, 1-node flow     %8.1f s   ratio %.2f (1 statement per flow: the equivalent of a pg_cron job)\n", j - i, (j - i) / cron;
  printf "  taskflow scheduler CPU while defining: %.2f s; until it looked at every new flow: %.2f s\n", s1 - s0, s2 - s0;
}'
