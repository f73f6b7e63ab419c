# The scheduler's safety sweep over the running runs, on its timer (race6,
# 1.8): taskflow.run_sweep_interval (default 60 s, for tests and operators).
#
# The sweep advances every running run whatever taskflow.sched_queue says.
# A state only it repairs: a run left 'running' whose node runs are all done,
# with no note in the queue (here: a superuser's UPDATE of the run, and the
# note the trigger made deleted in the same transaction).  Passes woken for
# other reasons do not look at it; the sweep finishes it.  Before 1.8 no test
# exercised the timer itself (081 restarts the cluster, whose first pass is
# the same sweep).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TaskflowTest;

my $node = TaskflowTest->start_node('sweep', conf => "taskflow.run_sweep_interval = 3600\n");
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('f');
SELECT taskflow.add_node('f', 'a', 'sql', 'SELECT 1');
SELECT taskflow.add_node('f', 'b', 'sql', 'SELECT 2', after => ARRAY['a']);
});

# a finished run made 'running' again, without a note for the scheduler
sub unfinish
{
	my ($run) = @_;
	$node->safe_psql('postgres', qq{
BEGIN;
UPDATE taskflow.runs SET state = 'running', finished_at = NULL WHERE id = $run;
DELETE FROM taskflow.sched_queue WHERE run_id = $run;
COMMIT;});
	return $node->safe_psql('postgres', "SELECT state FROM taskflow.runs WHERE id = $run");
}

my ($run, $state) = TaskflowTest->run_and_wait($node, 'f');
is($state, 'succeeded', 'the run succeeded');
is(unfinish($run), 'running', 'the run is running again, its nodes all succeeded');

# other passes (woken, and a run of another flow) do not repair it
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('g');
SELECT taskflow.add_node('g', 'n', 'sql', 'SELECT 1');
});
my (undef, $gstate) = TaskflowTest->run_and_wait($node, 'g');
is($gstate, 'succeeded', 'another flow runs meanwhile');
$node->safe_psql('postgres', 'SELECT taskflow._wake()');
sleep 3;
is($node->safe_psql('postgres', "SELECT state FROM taskflow.runs WHERE id = $run"), 'running',
	'passes without a sweep leave it running (run_sweep_interval = 1 h)');

# a 2 s sweep interval: the sweep finishes it
$node->safe_psql('postgres', 'ALTER SYSTEM SET taskflow.run_sweep_interval = 2');
$node->reload;
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'succeeded' FROM taskflow.runs WHERE id = $run", 60),
	'the sweep finished the run');

# and on its timer, with nothing else waking the scheduler: the next one
# within the interval (2 s; 30 s allowed on busy cores, half the longest
# sleep: without the sweep's own wake the 60 s sleep brought it, ~55 s)
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT current_setting('taskflow.run_sweep_interval') = '2s'", 30), 'the setting is 2 s');
sleep 1;
is(unfinish($run), 'running', 'the run is running again');
my $t0 = time;
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'succeeded' FROM taskflow.runs WHERE id = $run", 30),
	'the next sweep, on its timer, finished it again (within 30 s)');
note(sprintf('the sweep finished the run after %.1f s', time - $t0));

# bounds of the setting
my ($rc, $out, $err) = $node->psql('postgres', 'ALTER SYSTEM SET taskflow.run_sweep_interval = 0');
like($err, qr/0 s is outside the valid range/, 'run_sweep_interval below 1 s is refused');
($rc, $out, $err) = $node->psql('postgres', "ALTER SYSTEM SET taskflow.run_sweep_interval = '2h'");
like($err, qr/outside the valid range/, 'run_sweep_interval above 1 h is refused');

$node->stop;
done_testing();
