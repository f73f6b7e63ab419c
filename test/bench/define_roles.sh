#!/bin/bash
# test/bench/define_roles.sh — defining flows against pg_cron's cron.schedule, as a
# PLAIN role and as a superuser, in interleaved rounds. Not a timed test.
#
# Each round defines FLOWS 1-node flows (taskflow.apply_flow: a schedule in a time zone
# other than the session's and one SQL command, the exact equivalent of a pg_cron job)
# and FLOWS pg_cron jobs (cron.schedule), one statement (and commit) each through one
# psql session, for two callers:
#   plain: a LOGIN role that is no superuser, has no BYPASSRLS and owns nothing
#          (taskflow's row level security applies to it; pg_cron's cron.job policy
#          "username = current_user" applies to it too: GRANT USAGE ON SCHEMA cron);
#          it is granted pg_read_server_files and EXECUTE on pg_read_file only so that the script can read its
#          backend's /proc/self/stat (that role changes no privilege on either catalog);
#   super: the bootstrap superuser on both sides.
# The two sides alternate within each round and swap their order every round
# (taskflow first in odd rounds, pg_cron first in even ones), so that a burst of load
# on the shared machine hits both. For every phase: the wall clock and the CPU time of
# the backend that ran it (its /proc/self/stat before and after); per round the ratios
# taskflow/pg_cron, then their medians (lower is better; <= 1.0 is the goal).
#
#   sudo test/bench/define_roles.sh           # FLOWS=2000 ROUNDS=6
#   MODES="plain" ...                         # only the plain role (default "plain super")
#   FORM=4                                    # the literal form instead: create_flow + add_node
# Uses the PostgreSQL of pg_config on PATH (PATH=/path/to/pg/bin:$PATH to pick one).
set -eu
cd "$(dirname "$0")/../.."
FLOWS=${FLOWS:-2000}
ROUNDS=${ROUNDS:-6}
MODES=${MODES:-plain super}
FORM=${FORM:-1}
DIR=${BENCH_DIR:-/tmp/taskflow-define-roles}
PORT=${BENCH_PORT:-54351}
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow,pg_cron'
cron.database_name = 'postgres'
max_worker_processes = 32
timezone = 'UTC'
CONF
psql_ -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION taskflow" >/dev/null
psql_ >/dev/null <<'SQL'
CREATE ROLE bench_plain LOGIN;
GRANT USAGE ON SCHEMA cron TO bench_plain;
GRANT pg_read_server_files TO bench_plain;
GRANT EXECUTE ON FUNCTION pg_read_file(text) TO bench_plain;
SQL
# the plain role is what it says
[ "$(psql_ -c "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'bench_plain'")" = f ]
sleep 1

gen() {  # gen FORM PREFIX: the statements of one phase
  local i
  for i in $(seq 1 "$FLOWS"); do
    case $1 in
      cron) echo "SELECT cron.schedule('$2_$i', '0 5 * * *', 'SELECT 1');" ;;
      1) echo "SELECT taskflow.apply_flow('{\"flow\": {\"name\": \"$2_$i\", \"schedule\": \"0 5 * * *\", \"timezone\": \"Asia/Shanghai\"}, \"nodes\": {\"a\": {\"kind\": \"sql\", \"body\": \"SELECT 1\"}}}');" ;;
      4) echo "SELECT taskflow.create_flow('$2_$i', schedule => '0 5 * * *', timezone => 'Asia/Shanghai');"
         echo "SELECT taskflow.add_node('$2_$i', 'a', 'sql', 'SELECT 1');"
         echo "SELECT taskflow.add_node('$2_$i', 'b', 'sql', 'SELECT 2', after => ARRAY['a']);"
         echo "SELECT taskflow.add_node('$2_$i', 'c', 'sql', 'SELECT 3', after => ARRAY['b']);" ;;
    esac
  done
}

# timed USER FILE: "wall cpu" of one psql session running FILE as USER
timed() {
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(psql_ -U "$1" -c "SELECT pg_read_file('/proc/self/stat')" -f "$2" -c "SELECT pg_read_file('/proc/self/stat')" |
        grep -E '^[0-9]+ \(postgres\)')
  t1=$(date +%s.%N)
  echo "$out" | awk -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
    'NR == 1 {c0 = $14 + $15} NR == 2 {c1 = $14 + $15} END {printf "%.3f %.3f\n", t1 - t0, (c1 - c0) / hz}'
}

median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "define roles bench: $ROUNDS rounds x $FLOWS flows (form: $([ "$FORM" = 4 ] && echo 'create_flow + 3 add_node' || echo 'apply_flow, 1 node')) vs $FLOWS cron.schedule; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-6s %5s %9s %9s %9s %9s %8s %8s  %s\n' caller round "tf wall" "cron wall" "tf cpu" "cron cpu" "wall x" "cpu x" load
for mode in $MODES; do
  user=$([ "$mode" = plain ] && echo bench_plain || echo postgres)
  : > "$DIR/ratios_$mode"
  for r in $(seq 1 "$ROUNDS"); do
    gen "$FORM" "${mode}_f${r}" > "$DIR/tf.sql"; gen cron "${mode}_j${r}" > "$DIR/cron.sql"
    chown postgres "$DIR"/*.sql
    if [ $((r % 2)) = 1 ]; then
      tf=$(timed "$user" "$DIR/tf.sql"); cr=$(timed "$user" "$DIR/cron.sql")
    else
      cr=$(timed "$user" "$DIR/cron.sql"); tf=$(timed "$user" "$DIR/tf.sql")
    fi
    set -- $tf $cr
    echo "$1 $2 $3 $4" | awk -v m="$mode" -v r="$r" -v load="$(cut -d' ' -f1 /proc/loadavg)" \
      '{printf "  %-6s %5d %8.2fs %8.2fs %8.2fs %8.2fs %8.2f %8.2f  %s\n", m, r, $1, $3, $2, $4, $1 / $3, $2 / $4, load}'
    echo "$1 $2 $3 $4" | awk '{print $1 / $3, $2 / $4}' >> "$DIR/ratios_$mode"
  done
  printf '  %-6s median: wall %.2f, cpu %.2f (rounds: cpu %s)\n' "$mode" \
    "$(cut -d' ' -f1 "$DIR/ratios_$mode" | median)" "$(cut -d' ' -f2 "$DIR/ratios_$mode" | median)" \
    "$(cut -d' ' -f2 "$DIR/ratios_$mode" | awk '{s = s sep sprintf("%.2f", $1); sep = " "} END {print s}')"
done
# the plain role's flows are its own, with their history, and its jobs too
[ "$(psql_ -c "SELECT count(*) FROM taskflow.flows WHERE owner = 'bench_plain'::regrole")" = \
  "$(psql_ -c "SELECT count(*) FROM cron.job WHERE username = 'bench_plain'")" ] ||
  { echo "define roles bench: the plain role's flows and jobs differ in number" >&2; exit 1; }
