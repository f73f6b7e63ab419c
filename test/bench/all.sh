#!/bin/bash
# test/bench/all.sh — every figure of issue 11 in one run, taskflow against its baseline
# (pg_cron, or the 1.0 process model) measured in the same run on the same machine.
# Runs the benchmarks one after the other (never two at once: 2 cores), keeps each
# one's full output in OUT (default /tmp/taskflow-bench-all), and prints them in order:
#
#   dispatch_bench.sh  due -> first statement, 1 / 10 / 100 jobs due at once, p50/p99/max,
#                      pg_cron in background-worker and in libpq mode        (~20 min)
#   pool_bench.sh      handoff p50/p99 on a 50-node chain, nodes/s on a 300-node fan-out,
#                      warm workers against a backend forked per node (1.0)  (~2 min)
#   define_bench.sh    create 10,000 flows vs 10,000 cron.schedule           (~2 min)
#   idle_bench.sh      scheduler CPU over 60 s idle, 10,000 flows vs 10,000 jobs, and
#                      10 jobs due beside them                                 (~8 min)
#   soak_bench.sh      500 flows x 3-node chain every 10 s: due vs done, scheduler CPU
#                                                                            (~2 min)
#   om_bench.sh        O&M pages at 10k flows / 1M runs / 3M node runs, plain owner vs
#                      superuser                                             (~3 min)
#   define_roles.sh    apply_flow vs cron.schedule as a plain role and as a superuser,
#                      rounds interleaved (not in the default set: ONLY=define_roles)
#                                                                            (~6 min)
#
# Each takes its own parameters from the environment (see its header); ONLY="a b"
# runs a subset (names without _bench.sh; a name without that script is taken as
# test/bench/NAME.sh).  Run as root:
#   sudo PG_CONFIG=/path/to/pg_config test/bench/all.sh
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/taskflow-bench-all}
ONLY=${ONLY:-dispatch pool define idle soak om}
mkdir -p "$OUT"
export PG_CONFIG=${PG_CONFIG:-pg_config}
PATH=$("$PG_CONFIG" --bindir):$PATH
export PATH
start=$(date +%s)
echo "taskflow benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo), PostgreSQL $("$PG_CONFIG" --version | awk '{print $2}'), load $(cut -d' ' -f1-3 /proc/loadavg)"
failed=0
for b in $ONLY; do
  echo
  script="test/bench/${b}_bench.sh"
  [ -x "$script" ] || script="test/bench/${b}.sh"
  echo "=== ${script#test/bench/} (load $(cut -d' ' -f1 /proc/loadavg))"
  if ! "$script" > "$OUT/$b.log" 2>&1; then
    echo "(failed: see $OUT/$b.log)"
    failed=$((failed + 1))
  fi
  cat "$OUT/$b.log"
done
echo
echo "all benchmarks: $(( ($(date +%s) - start) / 60 )) min, $failed failed; outputs in $OUT"
[ "$failed" = 0 ]
