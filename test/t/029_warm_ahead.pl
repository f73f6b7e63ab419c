# Warm workers kept ahead of a known due time (worker.c tf_worker_due_soon,
# taskflow._owner_due_soon): an idle worker whose idle timeout is up stays
# for another period when a flow of its owner is due within it, so a
# scheduled flow finds a warm worker (same pid) instead of forking one; an
# owner with nothing due soon still sees its idle workers exit.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('warm_ahead', max_workers => 4,
	conf => "taskflow.worker_idle_timeout = 2\n");

$node->safe_psql('postgres', q{
CREATE ROLE carol LOGIN;
CREATE TABLE public.seen (at timestamptz, pid int);
GRANT ALL ON public.seen TO PUBLIC;
-- due every 3 s: longer than the idle timeout (2 s), within two of them
SELECT taskflow.create_flow('tick', schedule => 'every 3 seconds', owner => 'carol',
                            catchup => false);
SELECT taskflow.add_node('tick', 'n', 'sql',
                         $$INSERT INTO public.seen VALUES (clock_timestamp(), pg_backend_pid())$$);
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

ok(TaskflowTest->poll($node, 'postgres', q{SELECT count(*) >= 5 FROM public.seen}, 120),
	'the flow ran 5 times');
# (a worker is recycled only after taskflow.worker_max_nodes or an error)
is(q1(q{SELECT count(DISTINCT pid) FROM (SELECT pid FROM public.seen ORDER BY at LIMIT 5) s}),
	'1', 'one warm worker served 5 runs 3 s apart, with an idle timeout of 2 s');

# nothing due any more: the idle worker leaves after its timeout
q1(q{SELECT taskflow.disable_flow('tick')});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow node'}, 60),
	'with nothing due, the idle worker exited');

$node->stop;
done_testing();
