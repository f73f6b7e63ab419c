# The lead of a rehearsed due time (scheduler.c, tf_prepare_lead_ms): the
# scheduler rehearses the next due time (tf_rehearse_due: the set-based step
# for the same flows, capped as the prepared tick is, rolled back) and wakes
# for that due time's prepared tick at least three times the rehearsal's
# duration ahead, so that the first due time of a burst, whose tick is far
# longer than the small ticks before it, is not committed late.
# What must hold:
#  - a rehearsed due time's prepared tick was planned with a lead of at least
#    3 x the rehearsal's time (capped at 1 s), read from the scheduler's
#    DEBUG1 lines;
#  - the longer hold changes nothing visible: no node and no statement before
#    its run's scheduled_for, one run per flow and period, every run of that
#    due time created before it (in the held transaction), all succeeded.
# Behaviour only: no latency bound is asserted (test/bench/dispatch_ab.sh).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('due_rehearsed_lead', max_workers => 16,
	conf => "log_min_messages = debug1\n");

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE ROLE rhea LOGIN;
CREATE TABLE public.seen (run_id bigint, at timestamptz);
GRANT ALL ON public.seen TO PUBLIC;
BEGIN;
SELECT taskflow.create_flow('l' || g, schedule => 'every 5 seconds', owner => 'rhea',
                            catchup => false)
  FROM generate_series(1, 40) g;
SELECT taskflow.add_node('l' || g, 'n', 'sql',
                         $$INSERT INTO public.seen VALUES (${run_id}, clock_timestamp())$$)
  FROM generate_series(1, 40) g;
COMMIT;
});

# a rehearsed due time followed by its prepared tick, from the log
my ($due, $rehearsal_ms, $planned);
for (my $i = 0; $i < 180 && !defined $planned; $i++)
{
	my $log = slurp_file($node->logfile);
	my %rehearsed;
	while ($log =~ /rehearsal of the due time ([^:]+:[^:]+:\S+): ([0-9.]+) ms/g)
	{
		$rehearsed{$1} = $2 if $2 > 0;
	}
	while ($log =~ /prepared due time ([^:]+:[^:]+:\S+): .*\(planned ([0-9]+) ms\)/g)
	{
		if (exists $rehearsed{$1})
		{
			($due, $rehearsal_ms, $planned) = ($1, $rehearsed{$1}, $2);
			last;
		}
	}
	sleep 1 unless defined $planned;
}
ok(defined $planned, 'a due time was rehearsed, then prepared');
SKIP:
{
	skip 'no rehearsed due time was prepared', 1 unless defined $planned;
	my $want = 3 * $rehearsal_ms;
	$want = 1000 if $want > 1000;
	cmp_ok($planned + 1, '>=', int($want),
		"its lead ($planned ms) covers 3 x its rehearsal ($rehearsal_ms ms)");
}

ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 160 FROM taskflow.runs WHERE state = 'succeeded'}, 180),
	'4 due times of 40 flows ran');
SKIP:
{
	skip 'no rehearsed due time was prepared', 1 unless defined $planned;
	ok(TaskflowTest->poll($node, 'postgres',
		qq{SELECT count(*) = 40 AND bool_and(created_at < scheduled_for)
		     FROM taskflow.runs WHERE scheduled_for = '$due' AND state = 'succeeded'}, 120),
		'the rehearsed due time: a run per flow, each created before it (held)');
}
is(q1(q{SELECT count(*) FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id
         WHERE nr.started_at < r.scheduled_for}),
	'0', 'no node started before its due time');
is(q1(q{SELECT count(*) FROM public.seen s JOIN taskflow.runs r ON r.id = s.run_id
         WHERE s.at < r.scheduled_for}),
	'0', 'no statement ran before its due time');
is(q1(q{SELECT count(*) FROM (SELECT flow_id, scheduled_for FROM taskflow.runs
                                GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'one run per flow and period');
is(q1(q{SELECT count(*) FROM taskflow.runs WHERE state NOT IN ('succeeded', 'running')}),
	'0', 'every run succeeded (or runs)');
is(q1(q{SELECT count(*) FROM public.seen s
         WHERE NOT EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = s.run_id)}),
	'0', 'every statement ran for a run that exists (none for a rehearsed one)');

$node->stop;
done_testing();
