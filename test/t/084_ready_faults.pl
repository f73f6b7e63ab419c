# Review of 1.5 (docs/security.md): operator actions around the ready set
# (taskflow.sched_ready, part 99_ready) while its runs' nodes are held back
# for want of a worker: a flow dropped (force) with runs in the set, and
# taskflow.scheduler_ready_incremental switched off and on again at
# runtime.  No run may be left stuck, no node may run twice, and the set
# keeps no entry of a run that is gone.  (kill -9 of a worker and of the
# scheduler, cancel_run and the setting off from the start:
# 081_ready_incremental.pl.)
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('readyfaults', max_workers => 2);
sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE TABLE public.ran (run_id bigint, node text);
CREATE FUNCTION public.make_flow(p text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM taskflow.create_flow(p, max_active_runs => 20);
    PERFORM taskflow.add_node(p, 's', 'sql',
        $$INSERT INTO public.ran VALUES (${run_id}, 's'); SELECT pg_sleep(1)$$);
    PERFORM taskflow.add_node(p, 't', 'sql', $$INSERT INTO public.ran VALUES (${run_id}, 't')$$,
        after => ARRAY['s']);
END
$f$;
SELECT public.make_flow('keep');
SELECT public.make_flow('victim');
});

my @victims = split /\n/, q1("SELECT taskflow.run_flow('victim') FROM generate_series(1, 4)");
my @keeps = split /\n/, q1("SELECT taskflow.run_flow('keep') FROM generate_series(1, 6)");
my $victims = join(',', @victims);
my $keeps = join(',', @keeps);

ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) > 0 FROM taskflow.sched_ready WHERE run_id IN ($victims)", 60),
	'runs of the victim flow wait in the ready set');
q1(q{SELECT taskflow.drop_flow('victim', force => true)});
is(q1("SELECT count(*) FROM taskflow.runs WHERE id IN ($victims)"), '0', 'the victim flow and its runs are gone');

# switched off and on again while the other runs' nodes are held back
q1(q{ALTER SYSTEM SET taskflow.scheduler_ready_incremental = off; SELECT pg_reload_conf()});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) >= 3 FROM taskflow.node_runs WHERE run_id IN ($keeps) AND state = 'succeeded'", 90),
	'runs go on with the setting off');
q1(q{ALTER SYSTEM RESET taskflow.scheduler_ready_incremental; SELECT pg_reload_conf()});

ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM taskflow.runs WHERE id IN ($keeps) AND state <> 'succeeded'", 120),
	'every run of the other flow succeeded (none stuck)')
  or diag(q1("SELECT string_agg(format('%s %s %s', run_id, node, state), ', ') FROM taskflow.node_run_history WHERE run_id IN ($keeps)"));
is(q1("SELECT count(*) FROM (SELECT run_id, node FROM public.ran WHERE run_id IN ($keeps) GROUP BY 1, 2 HAVING count(*) > 1) x"),
	'0', 'no node ran twice');
is(q1("SELECT count(*) FROM public.ran WHERE run_id IN ($keeps)"), 2 * scalar(@keeps), 'every node ran');
is(q1("SELECT count(*) FROM taskflow.node_runs WHERE run_id IN ($victims)"), '0',
	'no node run of the dropped flow is left');
ok(TaskflowTest->poll($node, 'postgres',
	'SELECT count(*) = 0 FROM taskflow.sched_ready s WHERE NOT EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = s.run_id)', 30),
	'the ready set keeps no entry of a run that is gone');
ok(TaskflowTest->poll($node, 'postgres', 'SELECT count(*) = 0 FROM taskflow.sched_ready', 30),
	'and empties once nothing is running');

done_testing();
