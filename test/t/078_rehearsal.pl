# The scheduler rehearses the next due time (scheduler.c, tf_rehearse_due):
# ahead of it, it runs the tick for that time and the ready-node read in a
# transaction it rolls back, so that its plans are built before the due time.
# What must hold: nothing of a rehearsal stays or runs (every run is created
# once per scheduled time, by the real pass; every node ran once, for a run
# that exists), and a rehearsal did happen (the only trace it leaves is a run
# id it used up: the sequence is ahead of the number of runs); with
# taskflow.scheduler_rehearsal = off no id is used up.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('rehearsal', max_workers => 4);

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE TABLE public.seen (run_id bigint, at timestamptz DEFAULT clock_timestamp());
SELECT taskflow.create_flow('rh', schedule => 'every 3 seconds', catchup => false);
SELECT taskflow.add_node('rh', 'n', 'sql', $$INSERT INTO public.seen (run_id) VALUES (${run_id})$$);
});

# run ids used up by transactions that were rolled back (no run is deleted here)
my $gap = q{SELECT (SELECT last_value FROM taskflow.runs_id_seq) - (SELECT count(*) FROM taskflow.runs)};
ok(TaskflowTest->poll($node, 'postgres', "SELECT ($gap) > 0", 60),
	'a rehearsal ran (and rolled back the run it created)');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 3 FROM taskflow.runs WHERE state = 'succeeded'}, 90),
	'the flow ran three times');

sub check_runs
{
	my ($what) = @_;
	is(q1(q{SELECT count(*) - count(DISTINCT scheduled_for) FROM taskflow.runs}), '0',
		"$what: one run per scheduled time");
	is(q1(q{SELECT count(*) FROM public.seen s
	         WHERE NOT EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = s.run_id)}), '0',
		"$what: every node ran for a run that exists (none for a rehearsed one)");
	is(q1(q{SELECT count(*) - count(DISTINCT run_id) FROM public.seen}), '0',
		"$what: each run's node ran once");
	is(q1(q{SELECT count(*) FROM taskflow.runs
	         WHERE state NOT IN ('succeeded', 'running', 'scheduled')}), '0',
		"$what: no run failed");
	is(q1(q{SELECT count(*) FROM taskflow.runs r
	         WHERE r.state = 'succeeded' AND NOT EXISTS (SELECT 1 FROM public.seen s WHERE s.run_id = r.id)}),
		'0', "$what: every succeeded run's node ran");
}
check_runs('rehearsal on');

# off (a restart: the first rehearsal comes right after the scheduler starts)
$node->append_conf('postgresql.conf', "taskflow.scheduler_rehearsal = off\n");
$node->restart;
TaskflowTest->wait_scheduler($node, 'postgres');
my $runs = q1(q{SELECT count(*) FROM taskflow.runs});
my $before = q1($gap);
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) >= $runs + 3 FROM taskflow.runs WHERE state = 'succeeded'", 90),
	'rehearsal off: the flow ran three more times');
is(q1($gap), $before, 'rehearsal off: no run id used up');
check_runs('rehearsal off');

$node->stop;
done_testing();
