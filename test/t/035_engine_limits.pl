# Limits and housekeeping: taskflow.max_workers under contention (5
# independent 1-second nodes with max_workers = 2: never more than 2 at once,
# all finish) and automatic retention (taskflow.history_retention with a
# short taskflow.history_purge_interval: old finished runs disappear,
# running and recent ones stay).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TaskflowTest;

my $node = TaskflowTest->start_node('limits', max_workers => 2);

# --- max_workers = 2
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('wide');
SELECT taskflow.add_node('wide', 'n' || i, 'sql', $$SELECT pg_sleep(1)$$)
  FROM generate_series(1, 5) i;
});
my $t0 = time();
my ($run, $state) = TaskflowTest->run_and_wait($node, 'wide');
my $took = time() - $t0;
is($state, 'succeeded', 'all 5 nodes finished');
is($node->safe_psql('postgres', "SELECT count(*) FROM taskflow.node_run_history WHERE run_id = $run AND state = 'succeeded'"),
	'5', '5 node runs succeeded');
# the most node runs whose [started_at, finished_at) intervals overlap at any start
my $peak = $node->safe_psql('postgres', qq{
SELECT max(c) FROM (
  SELECT (SELECT count(*) FROM taskflow.node_runs o
           WHERE o.run_id = $run AND o.started_at <= s.started_at
             AND o.finished_at > s.started_at) AS c
    FROM taskflow.node_runs s WHERE s.run_id = $run) x});
is($peak, '2', 'never more than max_workers = 2 node runs at once (and 2 were used)');
cmp_ok($took, '>=', 3, sprintf('5 x 1 s nodes on 2 workers took %.1f s (>= 3 waves)', $took));

# the cap is cluster-wide and follows a reload
$node->safe_psql('postgres', q{ALTER SYSTEM SET taskflow.max_workers = 1; SELECT pg_reload_conf();});
($run, $state) = TaskflowTest->run_and_wait($node, 'wide');
is($state, 'succeeded', 'run with max_workers = 1 finished');
is($node->safe_psql('postgres', qq{
SELECT bool_and(NOT EXISTS (SELECT 1 FROM taskflow.node_runs o
                             WHERE o.run_id = $run AND o.id <> s.id
                               AND o.started_at < s.finished_at AND s.started_at < o.finished_at))
  FROM taskflow.node_runs s WHERE s.run_id = $run}),
	't', 'max_workers = 1: node runs never overlapped');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET taskflow.max_workers; SELECT pg_reload_conf();});

# --- automatic retention
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('quick');
SELECT taskflow.add_node('quick', 'n', 'sql', 'SELECT 1');
SELECT taskflow.create_flow('long');
SELECT taskflow.add_node('long', 'n', 'sql', 'SELECT pg_sleep(60)');
});
my ($old) = TaskflowTest->run_and_wait($node, 'quick');
# the second finished run is 3 s younger than the first
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT clock_timestamp() > finished_at + interval '3 seconds' FROM taskflow.runs WHERE id = $old", 30),
	'first run is 3 s old');
my ($recent) = TaskflowTest->run_and_wait($node, 'quick');
my $running = TaskflowTest->run_flow($node, 'long');
ok(TaskflowTest->poll($node, 'postgres', "SELECT state = 'running' FROM taskflow.runs WHERE id = $running", 30),
	'long run is running');
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM taskflow.runs');
$node->safe_psql('postgres', q{
ALTER SYSTEM SET taskflow.history_retention = '6 seconds';
ALTER SYSTEM SET taskflow.history_purge_interval = '1s';
SELECT pg_reload_conf();
});
ok(TaskflowTest->poll($node, 'postgres', "SELECT count(*) = 0 FROM taskflow.runs WHERE id = $old", 30),
	'a finished run older than the retention was purged by the scheduler');
is($node->safe_psql('postgres', "SELECT string_agg(id::text || '=' || state, ',' ORDER BY id) FROM taskflow.runs WHERE id IN ($recent, $running)"),
	"$recent=succeeded,$running=running", 'the recent finished run and the running run stayed');
is($node->safe_psql('postgres', "SELECT count(*) FROM taskflow.node_runs nr WHERE NOT EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = nr.run_id)"),
	'0', 'node runs went with their runs');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM taskflow.runs'), '<', $before,
	'older runs (the max_workers ones) were purged too');
ok($node->log_contains(qr/taskflow: purged \d+ run\(s\) finished before/), 'purge logged');
$node->safe_psql('postgres', "SELECT taskflow.cancel_run($running)");

$node->stop;
done_testing();
