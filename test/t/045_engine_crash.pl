# Crash safety: kill -9 of a node worker, kill -9 of the scheduler, and an
# immediate shutdown of the postmaster, each mid-run.  Afterwards nothing is
# left 'running', a node killed mid-attempt is retried (or failed), no period
# of a scheduled flow ran twice and none was lost.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('crash', conf => "restart_after_crash = on\n");


# the first attempt of 'victim' hangs until killed, the retry does not
$node->safe_psql('postgres', q{
CREATE TABLE public.ticks (scheduled_for timestamptz, run_id bigint);
SELECT taskflow.create_flow('victim');
SELECT taskflow.add_node('victim', 'hang', 'sql',
  $$SELECT pg_sleep(CASE WHEN (SELECT attempts FROM taskflow.node_run_history WHERE run_id = ${run_id} AND node = 'hang') = 1 THEN 120 ELSE 0 END)$$, retries => 1, retry_delay => '0');
SELECT taskflow.add_node('victim', 'after', 'sql', $$SELECT 1$$, after => ARRAY['hang']);
SELECT taskflow.create_flow('doomed');
SELECT taskflow.add_node('doomed', 'hang', 'sql', $$SELECT pg_sleep(120)$$);
SELECT taskflow.create_flow('tick', schedule => 'every 1 second');
SELECT taskflow.add_node('tick', 'n', 'sql',
  $$INSERT INTO public.ticks VALUES ('${cyctime}', ${run_id})$$);
});

sub node_pid
{
	my ($flow) = @_;
	my $pid;
	TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node $flow.%'", 30)
	  or return undef;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node $flow.%'");
}

sub wait_up
{
	TaskflowTest->poll($node, 'postgres', 'SELECT true', 60) or die 'server did not come back';
	TaskflowTest->wait_scheduler($node, 'postgres', 60);
}

# 1. kill -9 of a node worker: the postmaster restarts everything; the killed
#    attempt is marked retrying and the retry succeeds.
my $run = TaskflowTest->run_flow($node, 'victim');
my $pid = node_pid('victim');
ok($pid, "victim node worker running (pid $pid)");
my $log_offset = -s $node->logfile;
kill 'KILL', $pid;
TaskflowTest->wait_crash_restart($node, $log_offset);
is(TaskflowTest->wait_run($node, $run), 'succeeded', 'after kill -9 of the node worker the run finished');
is($node->safe_psql('postgres', "SELECT attempts || ',' || state FROM taskflow.node_run_history WHERE run_id = $run AND node = 'hang'"),
	'2,succeeded', 'killed attempt was retried');

# 2. kill -9 of the scheduler while a node runs (no retries: it fails)
$run = TaskflowTest->run_flow($node, 'doomed');
ok(node_pid('doomed'), 'doomed node running');
my $sched = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'");
$log_offset = -s $node->logfile;
kill 'KILL', $sched;
TaskflowTest->wait_crash_restart($node, $log_offset);
is(TaskflowTest->wait_run($node, $run), 'failed', 'after kill -9 of the scheduler the run finished (failed)');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	qr/^57P01 node worker .*exited without recording a result/, 'dead worker recorded');

# 3. immediate shutdown mid-run
$run = TaskflowTest->run_flow($node, 'doomed');
ok(node_pid('doomed'), 'doomed node running again');
$node->stop('immediate');
sleep(2);    # the ticking flow misses some periods while down
$node->start;
wait_up();
is(TaskflowTest->wait_run($node, $run), 'failed', 'after immediate shutdown the run finished');

# let the ticker catch up (and tick a few times: the test may have run in
# less than 5 s so far), then stop it and check its periods
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) >= 6 FROM taskflow.runs WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'tick')", 30),
	'ticker running after the restarts');
$node->safe_psql('postgres', "SELECT taskflow.disable_flow('tick')");
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM taskflow.runs WHERE state IN ('scheduled', 'running')", 60),
	'no run left scheduled/running');
is($node->safe_psql('postgres', "SELECT count(*) FROM taskflow.node_runs WHERE state IN ('running', 'pending', 'retrying')"),
	'0', 'no node run stuck');
my $periods = $node->safe_psql('postgres', q{
SELECT count(*) || ',' || count(DISTINCT scheduled_for) || ',' ||
       (extract(epoch FROM max(scheduled_for) - min(scheduled_for)) + 1)::int
  FROM taskflow.runs WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'tick')});
my ($n, $distinct, $span) = split /,/, $periods;
cmp_ok($n, '>=', 5, "ticker created $n runs");
is($distinct, $n, 'no period twice');
is($span, $n, 'no period lost (one run per second from first to last)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM public.ticks GROUP BY scheduled_for HAVING count(*) > 1}),
	'', 'no period executed twice');

$node->stop;
done_testing();
