# Due runs prepared ahead (scheduler.c, taskflow.scheduler_prepare_due) and
# the owner pull only on a backlog (TfDbSlot.backlog, worker.c):
#  - the scheduler creates the runs of a due time shortly before it, in a
#    transaction it commits at that time: some runs are created before
#    their scheduled_for, yet no node starts (and no statement runs) before
#    its run's scheduled_for, and each period has exactly one run per flow;
#  - with the setting off, no run is created before its due time;
#  - warm workers whose run has nothing more ready do not look for another
#    run's ready node (taskflow._node_next_for_owner) while the scheduler
#    handed out every ready node, and do when it held some back (a cap).
# Behaviour only: no latency bound is asserted (test/bench/dispatch_ab.sh).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('due_prepared', max_workers => 16,
	conf => "track_functions = 'all'\n");

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE ROLE dora LOGIN;
CREATE TABLE public.seen (run_id bigint, at timestamptz);
GRANT ALL ON public.seen TO PUBLIC;
-- the flows and their nodes in one transaction: a due time between the two
-- made a run of a flow without nodes (succeeded, no statement)
BEGIN;
SELECT taskflow.create_flow('p' || g, schedule => 'every 2 seconds', owner => 'dora',
                            catchup => false)
  FROM generate_series(1, 6) g;
SELECT taskflow.add_node('p' || g, 'n', 'sql',
                         $$INSERT INTO public.seen VALUES (${run_id}, clock_timestamp())$$)
  FROM generate_series(1, 6) g;
COMMIT;
});

# ---- prepared ahead, never started early ----
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 6 FROM taskflow.runs r
	   WHERE r.state = 'succeeded' AND r.created_at < r.scheduled_for}, 180),
	'runs of a due time are created before it (prepared ahead)');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 48 FROM taskflow.runs WHERE state = 'succeeded'}, 180),
	'8 due times of 6 flows ran');
is(q1(q{SELECT count(*) FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id
         WHERE nr.started_at < r.scheduled_for}),
	'0', 'no node of a prepared run started before its due time');
is(q1(q{SELECT count(*) FROM public.seen s JOIN taskflow.runs r ON r.id = s.run_id
         WHERE s.at < r.scheduled_for}),
	'0', 'no statement ran before its due time');
ok(q1(q{SELECT count(*) FROM public.seen}) >= 48, 'the statements ran');
is(q1(q{SELECT count(*) FROM (SELECT flow_id, scheduled_for FROM taskflow.runs
                                GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'one run per flow and period');
is(q1(q{SELECT count(*) FROM taskflow.runs WHERE state NOT IN ('succeeded', 'running')}),
	'0', 'every run succeeded (or runs)');

# ---- the owner pull: not while every ready node was handed out ----
# (the warm workers are started and warmed up by now: their warm-up's read
# of _node_next_for_owner is counted; count from here on)
my $workers = q1(q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
                    WHERE backend_type = 'taskflow node'});
sub pulls
{
	return q1(q{SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
	             WHERE funcname = '_node_next_for_owner'});
}
sleep 3;
my $pulls0 = pulls();
my $runs0 = q1(q{SELECT count(*) FROM taskflow.runs WHERE state = 'succeeded'});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) >= $runs0 + 36 FROM taskflow.runs WHERE state = 'succeeded'", 180),
	'6 more due times ran');
sleep 3;
my $workers1 = q1(q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
                     WHERE backend_type = 'taskflow node'});
SKIP:
{
	skip 'a node worker was replaced (its warm-up reads the function)', 1
	  if $workers ne $workers1;
	# 1.5 pulled after every node (>= 36 here); a due time that overran on
	# busy cores may leave work for the next pass (the backlog hint set for
	# a moment, a pull or two: seen once in a full suite run), and since 1.8
	# a wake's read hands at most max_workers ahead (7 pulls seen once in
	# CI): at most two due times' worth, a third of one pull per node
	cmp_ok(pulls() - $pulls0, '<', 12,
		'no worker looked for another run\'s ready node: every ready node was handed out');
}

# ---- ... but while ready nodes are held back (2 workers for 6 flows due) ----
q1(q{ALTER SYSTEM SET taskflow.max_workers = 2});
q1(q{SELECT pg_reload_conf()});
sleep 2;
my $pulls1 = pulls();
my $taken1 = q1(q{SELECT taskflow._ahead_taken()});
my $runs1 = q1(q{SELECT count(*) FROM taskflow.runs WHERE state = 'succeeded'});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) >= $runs1 + 24 FROM taskflow.runs WHERE state = 'succeeded'", 180),
	'4 due times ran on 2 workers');
# (1.7: mostly off the list the scheduler handed ahead, else by the query)
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT coalesce(sum(calls), 0) > $pulls1 OR taskflow._ahead_taken() > $taken1
	   FROM pg_stat_user_functions WHERE funcname = '_node_next_for_owner'", 60),
	'with ready nodes held back, workers took the next ones themselves');
q1(q{ALTER SYSTEM RESET taskflow.max_workers});

# ---- setting off: created at (after) the due time ----
q1(q{ALTER SYSTEM SET taskflow.scheduler_prepare_due = off});
q1(q{SELECT pg_reload_conf()});
my $t0 = q1(q{SELECT clock_timestamp() + interval '3 seconds'});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) >= 24 FROM taskflow.runs WHERE state = 'succeeded'
	   AND scheduled_for > '$t0'", 180),
	'4 more due times ran with the setting off');
is(q1(qq{SELECT count(*) FROM taskflow.runs
          WHERE scheduled_for > '$t0' AND created_at < scheduled_for}),
	'0', 'setting off: no run created before its due time');

$node->stop;
done_testing();
