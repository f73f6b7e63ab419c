# The scheduler's tick commits asynchronously (src/scheduler.c, tf_pass_tick;
# docs/performance.md "Durability of the tick").  kill -9 of the postmaster
# right after a due tick, with wal_writer_delay at 10 s so that the tick's
# commit is likely still unflushed:
#   A. the due run's node is held back (the owner's cap is taken): after the
#      restart there is exactly one run for that scheduled_for (the tick's,
#      or, if the crash lost it, the one the restarted scheduler creates
#      again) and its node ran once;
#   B. the due run's node has started (its _node_begin committed, which
#      flushes the tick before it): after the restart the run is still the
#      same one, the node is not run again (retries = 0: failed by
#      recovery), and no second run appears for that scheduled_for.
# Nothing is left 'running' either way.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TaskflowTest;

my $node = TaskflowTest->start_node('tickcrash', conf => <<'EOC');
restart_after_crash = on
wal_writer_delay = 10000ms
taskflow.max_workers_per_owner = 1
EOC

TaskflowTest->set_clock($node, '2030-01-01 00:30:00+00');
$node->safe_psql('postgres', q{
CREATE TABLE public.fired (flow text, cyctime timestamptz, run_id bigint);
SELECT taskflow.create_flow('blocker');
SELECT taskflow.add_node('blocker', 'hang', 'sql', $$SELECT pg_sleep(300)$$);
SELECT taskflow.create_flow('hourly', schedule => '0 * * * *', timezone => 'UTC',
                            start_date => '2030-01-01 00:45+00');
SELECT taskflow.add_node('hourly', 'n', 'sql',
  $$INSERT INTO public.fired VALUES ('${flow}', '${cyctime}', ${run_id})$$);
SELECT taskflow.create_flow('slow', schedule => '0 * * * *', timezone => 'UTC',
                            start_date => '2030-01-01 01:30+00');
SELECT taskflow.add_node('slow', 'n', 'sql',
  $$INSERT INTO public.fired VALUES ('${flow}', '${cyctime}', ${run_id}); SELECT pg_sleep(300)$$);
});

# the postmaster and every process it had, gone; then start again
sub crash_and_restart
{
	my @kids = split /\n/, $node->safe_psql('postgres',
		'SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()');
	$node->kill9;
	for my $pid (@kids)
	{
		my $n = 0;
		usleep(100_000) while kill(0, $pid) && $n++ < 300;
	}
	# the server may log that the old postmaster.pid is stale: fine
	$node->start;
	TaskflowTest->poll($node, 'postgres', 'SELECT true', 60) or die 'server did not come back';
	TaskflowTest->wait_scheduler($node, 'postgres', 60);
}

sub node_running
{
	my ($flow) = @_;
	return TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node $flow.%'", 60);
}

sub runs_for
{
	my ($flow, $at) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = '$flow' AND r.scheduled_for = '$at'");
}

# A. the blocker takes the owner's only slot; 'hourly' becomes due at 01:00
is($node->safe_psql('postgres', 'SELECT count(*) FROM taskflow.runs'), '0', 'nothing due before 01:00');
my $blocker = TaskflowTest->run_flow($node, 'blocker');
ok(node_running('blocker'), 'blocker holds the owner\'s only worker slot');
TaskflowTest->set_clock($node, '2030-01-01 01:00:01+00');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'hourly' AND r.scheduled_for = '2030-01-01 01:00+00' AND r.state = 'running'", 60),
	'the due tick created and started the 01:00 run');
my $run_a = $node->safe_psql('postgres',
	"SELECT r.id FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'hourly' AND r.scheduled_for = '2030-01-01 01:00+00'");
is($node->safe_psql('postgres', "SELECT count(*) FROM public.fired"), '0',
	'its node is held back by the cap');
crash_and_restart();

is(TaskflowTest->wait_run($node, $blocker), 'failed', 'blocker failed by recovery');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM public.fired WHERE flow = 'hourly' AND cyctime = '2030-01-01 01:00+00'", 60),
	'after the restart the 01:00 node ran');
my $after_a = $node->safe_psql('postgres',
	"SELECT r.id FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'hourly' AND r.scheduled_for = '2030-01-01 01:00+00'");
note($after_a eq $run_a ? 'the tick\'s commit survived the crash (flushed meanwhile)'
	: "the crash lost the tick's commit: run $run_a created again as run $after_a");
is(runs_for('hourly', '2030-01-01 01:00+00'), '1', 'exactly one run for 01:00 after the restart');
is(TaskflowTest->wait_run($node, $after_a), 'succeeded', 'that run succeeded');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.fired WHERE flow = 'hourly'"), '1',
	'the node ran exactly once');

# B. no cap in the way: 'slow' (first due at 02:00) becomes due and its node starts
$node->safe_psql('postgres', "SELECT taskflow.disable_flow('hourly')");
TaskflowTest->set_clock($node, '2030-01-01 02:00:01+00');
ok(node_running('slow'), 'the 02:00 node of slow started');
my $run_b = $node->safe_psql('postgres',
	"SELECT r.id FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'slow' AND r.scheduled_for = '2030-01-01 02:00+00'");
crash_and_restart();

is(TaskflowTest->wait_run($node, $run_b), 'failed',
	'the started run survived the crash (the node\'s begin flushed the tick) and failed by recovery');
# (the tick that failed it is the one that would have created a second run:
# recovery and due flows are one tick; one more second for good measure)
sleep(1);
is(runs_for('slow', '2030-01-01 02:00+00'), '1', 'no second run for 02:00');
is($node->safe_psql('postgres',
	"SELECT attempts || ',' || state FROM taskflow.node_run_history WHERE run_id = $run_b"),
	'1,failed', 'its node was not run again (one attempt)');

is($node->safe_psql('postgres',
	"SELECT count(*) FROM taskflow.node_runs WHERE state = 'running'"), '0',
	'nothing left running');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM taskflow.runs WHERE state IN ('running', 'scheduled')"), '0',
	'no run left running or scheduled');

$node->stop;
done_testing();
