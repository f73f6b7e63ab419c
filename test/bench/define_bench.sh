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
# For each: the wall clock and the CPU time of the backend that ran it (on a
# shared machine the commits' disk waits swing the wall clock; the CPU is the
# cost of the statements themselves); pg_cron is measured at the start and at
# the end, the ratios are against the mean of the two.
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
gen_cron > "$DIR/cron.sql"; gen_cron | sed 's/job_/job2_/' > "$DIR/cron2.sql"
gen_taskflow > "$DIR/taskflow.sql"; gen_taskflow_tx > "$DIR/taskflow_tx.sql"
gen_apply3 > "$DIR/apply3.sql"; gen_apply1 > "$DIR/apply1.sql"
chown postgres "$DIR"/*.sql

# timed NAME FILE: wall seconds and the CPU seconds of the backend that ran
# FILE (its /proc/self/stat before and after: commit waits on a shared disk
# swing the wall clock, the CPU is what each statement costs); "NAME wall cpu"
timed() {
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(psql_ -c "SELECT pg_read_file('/proc/self/stat')" -f "$2" -c "SELECT pg_read_file('/proc/self/stat')" |
        grep -E '^[0-9]+ \(postgres\)')
  t1=$(date +%s.%N)
  echo "$out" | awk -v name="$1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
    'NR == 1 {c0 = $14 + $15} NR == 2 {c1 = $14 + $15} END {printf "%s %.3f %.3f\n", name, t1 - t0, (c1 - c0) / hz}'
}

R=$(timed cron "$DIR/cron.sql")
c0=$(cpu_of "$sched")
R+=$'\n'$(timed tf "$DIR/taskflow.sql")
c1=$(cpu_of "$sched")
for _ in $(seq 1 90); do
  [ "$(psql_ -c "SELECT count(*) FROM taskflow.flows WHERE next_due IS NULL")" = 0 ] && break
  sleep 1
done
c2=$(cpu_of "$sched")
R+=$'\n'$(timed tx "$DIR/taskflow_tx.sql")
R+=$'\n'$(timed ap3 "$DIR/apply3.sql")
R+=$'\n'$(timed ap1 "$DIR/apply1.sql")
R+=$'\n'$(timed cron2 "$DIR/cron2.sql")
# the same flows, defined either way
[ "$(psql_ -c "SELECT count(DISTINCT (taskflow.flow_definition(name) - '{version,flow}'::text[])::text)
                 FROM taskflow.flows WHERE name IN ('flow_1', 'flowtx_1', 'flowap_1')")" = 1 ] ||
  { echo "define bench: apply_flow defined another flow than the API calls" >&2; exit 1; }
echo "$R" | awk -v n="$FLOWS" -v s0="$c0" -v s1="$c1" -v s2="$c2" \
    -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
  {w[$1] = $2; c[$1] = $3}
  END {
  # pg_cron: the mean of its runs at the start and at the end
  cw = (w["cron"] + w["cron2"]) / 2; cc = (c["cron"] + c["cron2"]) / 2;
  printf "define bench: %d flows vs %d pg_cron jobs (cron.schedule), load %s\n", n, n, load;
  printf "  %-40s %8s %6s %9s %6s\n", "", "wall s", "ratio", "backend", "ratio";
  printf "  %-40s %8.1f %6s %8.2fs %6s   (first %.1f s / %.2f s, last %.1f s / %.2f s)\n", "pg_cron", cw, "", cc, "", w["cron"], c["cron"], w["cron2"], c["cron2"];
  printf "  %-40s %8.1f %6.2f %8.2fs %6.2f\n", "taskflow 4 statements (4 commits)", w["tf"], w["tf"] / cw, c["tf"], c["tf"] / cc;
  printf "  %-40s %8.1f %6.2f %8.2fs %6.2f\n", "taskflow 4 statements, 1 transaction", w["tx"], w["tx"] / cw, c["tx"], c["tx"] / cc;
  printf "  %-40s %8.1f %6.2f %8.2fs %6.2f\n", "apply_flow, 3-node chain (1 statement)", w["ap3"], w["ap3"] / cw, c["ap3"], c["ap3"] / cc;
  printf "  %-40s %8.1f %6.2f %8.2fs %6.2f\n", "apply_flow, 1 node (= a pg_cron job)", w["ap1"], w["ap1"] / cw, c["ap1"], c["ap1"] / cc;
  printf "  taskflow scheduler CPU while defining: %.2f s; until it looked at every new flow: %.2f s\n", s1 - s0, s2 - s0;
}'
