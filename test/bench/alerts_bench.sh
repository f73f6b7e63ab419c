#!/bin/bash
# test/bench/alerts_bench.sh — does alerting slow down scheduling?  Dispatch lag of
# FLOWS flows on 'every 1 second' (lag = the moment the node's SQL runs minus the run's
# scheduled time), measured twice in the same run on the same throwaway cluster:
#   baseline  no alerts;
#   hanging   every run of every flow queues a success alert to a webhook whose receiver
#             accepts connections and never answers (timeout 5 s, 20 retries), so the
#             delivery worker is stuck the whole time and the outbox only grows.
# Prints mean / p95 / max per phase and the ratio hanging / baseline (1.0: alerts cost
# the scheduler nothing), plus what the outbox holds at the end.  Not a timed test.
#
#   sudo test/bench/alerts_bench.sh            # FLOWS=20 SECONDS_PER_PHASE=30
set -eu
cd "$(dirname "$0")/../.."
FLOWS=${FLOWS:-20}
SECS=${SECONDS_PER_PHASE:-30}
DIR=${BENCH_DIR:-/tmp/taskflow-alerts-bench}
PORT=${BENCH_PORT:-54349}
HOOK_PORT=${HOOK_PORT:-54350}
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
max_worker_processes = 32
taskflow.max_workers = 8
CONF

# the hanging receiver: accepts, reads nothing, answers nothing
perl -MIO::Socket::INET -e '
  my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
                                Listen => 128, ReuseAddr => 1) or die "listen: $!";
  my @held; while (my $c = $s->accept) { push @held, $c; }' "$HOOK_PORT" &
bench_at_exit "kill $! 2>/dev/null"

psql_ >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION taskflow;
CREATE TABLE bench_log (phase text, flow text, due timestamptz, at timestamptz);
CREATE TABLE bench_phase (phase text);
INSERT INTO bench_phase VALUES ('baseline');
GRANT SELECT ON bench_phase TO PUBLIC;
CREATE SERVER hang FOREIGN DATA WRAPPER taskflow_webhook
    OPTIONS (url 'http://127.0.0.1:$HOOK_PORT/', timeout '5', retries '20');
SELECT taskflow.create_flow('f_' || g, schedule => 'every 1 second', catchup => false)
  FROM generate_series(1, $FLOWS) g;
SELECT taskflow.add_node('f_' || g, 'n', 'sql',
  \$\$INSERT INTO bench_log SELECT phase, '\${flow}', '\${cyctime}', clock_timestamp() FROM bench_phase\$\$)
  FROM generate_series(1, $FLOWS) g;
SQL
echo "alerts bench: $FLOWS flows every 1 second, $SECS s per phase"
sleep "$SECS"
psql_ >/dev/null <<SQL
UPDATE bench_phase SET phase = 'hanging';
SELECT taskflow.add_alert('f_' || g, 'success', server => 'hang') FROM generate_series(1, $FLOWS) g;
SQL
sleep "$SECS"
psql_ -c "UPDATE bench_phase SET phase = 'done'" >/dev/null

psql_ <<SQL
\pset footer off
\pset format aligned
\pset tuples_only off
WITH l AS (
  SELECT phase, extract(epoch FROM at - due) * 1000 AS ms FROM bench_log
   WHERE phase IN ('baseline', 'hanging')),
s AS (
  SELECT phase, count(*) AS samples, round(avg(ms)::numeric, 1) AS mean_ms,
         round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p95_ms,
         round(max(ms)::numeric, 1) AS max_ms
    FROM l GROUP BY phase)
SELECT *, round(mean_ms / nullif((SELECT mean_ms FROM s WHERE phase = 'baseline'), 0), 2)
         AS mean_ratio,
       round(p95_ms / nullif((SELECT p95_ms FROM s WHERE phase = 'baseline'), 0), 2)
         AS p95_ratio
  FROM s ORDER BY phase DESC;
SELECT state, count(*) AS deliveries, max(attempts) AS max_attempts
  FROM taskflow.alert_deliveries GROUP BY state ORDER BY state;
SELECT 'expected samples per phase: about ' || $FLOWS * $SECS;
SQL
