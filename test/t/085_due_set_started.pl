# The set-based step of a due time (taskflow._sched_due_set, part
# 99_dispatch5) starts the run it creates ('running', started_at set) when
# the tick's promotion would start it in the same tick (no run of the flow
# waits, max_active_runs not reached); otherwise the run is 'scheduled' and
# the promotion (_sched_advance_runs) starts it later, oldest first.
# What must hold:
#  - max_active_runs is never exceeded: a flow whose 1 (2) run(s) still run
#    at its next due time gets a 'scheduled' run, never a second (third)
#    running one, and the waiting runs start in order of scheduled_for;
#  - a run started by the step has started_at set, no node before its
#    scheduled_for, and the runs of a free flow all start and succeed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('due_set_started', max_workers => 8);

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE TABLE public.seen (flow text, run_id bigint, at timestamptz);
BEGIN;
SELECT taskflow.create_flow('slow1', schedule => 'every 2 seconds', catchup => false);
SELECT taskflow.add_node('slow1', 'n', 'sql',
    $$INSERT INTO public.seen VALUES ('slow1', ${run_id}, clock_timestamp()); SELECT pg_sleep(5)$$);
SELECT taskflow.create_flow('slow2', schedule => 'every 2 seconds', catchup => false,
                            max_active_runs => 2);
SELECT taskflow.add_node('slow2', 'n', 'sql',
    $$INSERT INTO public.seen VALUES ('slow2', ${run_id}, clock_timestamp()); SELECT pg_sleep(5)$$);
SELECT taskflow.create_flow('free', schedule => 'every 2 seconds', catchup => false);
SELECT taskflow.add_node('free', 'n', 'sql',
    $$INSERT INTO public.seen VALUES ('free', ${run_id}, clock_timestamp())$$);
COMMIT;
});

my $running = q{SELECT coalesce(max(n), 0) FROM (
                  SELECT f.name, count(*) AS n FROM taskflow.runs r
                    JOIN taskflow.flows f ON f.id = r.flow_id
                   WHERE r.state = 'running' AND f.name = '%s' GROUP BY 1) x};
my ($max1, $max2) = (0, 0);
for (1 .. 40)
{
	my $n1 = q1(sprintf($running, 'slow1'));
	my $n2 = q1(sprintf($running, 'slow2'));
	$max1 = $n1 if $n1 > $max1;
	$max2 = $n2 if $n2 > $max2;
	select(undef, undef, undef, 0.5);
}
is($max1, 1, 'max_active_runs 1: at most one run running at a time (and one did)');
is($max2, 2, 'max_active_runs 2: at most two runs running at a time (and two did)');
ok(q1(q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE f.name = 'slow1' AND r.state = 'scheduled'}) > 0,
	'runs due while the slow flow ran wait as scheduled');
is(q1(q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE f.name LIKE 'slow%' AND r.state = 'scheduled' AND r.started_at IS NOT NULL}),
	'0', 'a waiting run has no started_at');
# the waiting runs started oldest first: no run started before an older one of its flow
is(q1(q{SELECT count(*) FROM taskflow.runs a JOIN taskflow.runs b
           ON b.flow_id = a.flow_id AND b.scheduled_for < a.scheduled_for
         JOIN taskflow.flows f ON f.id = a.flow_id
        WHERE f.name = 'slow1' AND a.started_at IS NOT NULL
          AND (b.started_at IS NULL OR b.started_at > a.started_at)}),
	'0', 'max_active_runs 1: runs started in order of their scheduled time');

ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 10 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'free' AND r.state = 'succeeded'}, 120),
	'the free flow ran 10 times');
is(q1(q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE f.name = 'free' AND r.state IN ('succeeded', 'running')
           AND (r.started_at IS NULL OR r.started_at < r.created_at)}),
	'0', 'every run of the free flow has started_at, not before it was created');
is(q1(q{SELECT count(*) FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id
         WHERE nr.started_at < r.scheduled_for OR nr.started_at < r.started_at}),
	'0', 'no node started before its run was due and started');
is(q1(q{SELECT count(*) FROM public.seen s JOIN taskflow.runs r ON r.id = s.run_id
         WHERE s.at < r.scheduled_for}),
	'0', 'no statement ran before its due time');
is(q1(q{SELECT count(*) FROM (SELECT flow_id, scheduled_for FROM taskflow.runs
                                GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'one run per flow and period');
is(q1(q{SELECT count(*) FROM taskflow.runs WHERE state NOT IN ('succeeded', 'running', 'scheduled')}),
	'0', 'no run failed');

$node->stop;
done_testing();
