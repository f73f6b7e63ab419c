# A node run is never run with the identity of an owner its flow had
# before (1.4 review).  A node worker serves one owner; a warm worker takes
# the next node run of the run it just served (worker.c,
# tf_worker_next_in_run) without a scheduler pass.  If the flow changed
# owner meanwhile (alter_flow(owner => ...)), a member of the new owner may
# already have changed the next node's body: run by the old owner's worker,
# that body would run with the old owner's privileges.  The worker checks
# the flow's owner after it read the node's body (newer snapshot, no row
# lock) and rolls the begin back on a mismatch: the node run stays pending
# and the scheduler hands it to a worker of the new owner.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('ownchg');

$node->safe_psql('postgres', q{
CREATE TABLE public.log (node text, who text, note text);
GRANT INSERT ON public.log TO PUBLIC;
CREATE TABLE public.gate (x int);
GRANT SELECT ON public.gate TO PUBLIC;
CREATE ROLE alice LOGIN;
CREATE ROLE team LOGIN;
CREATE ROLE bob LOGIN;
GRANT team TO alice, bob;
SET ROLE alice;
SELECT taskflow.create_flow('oc');
-- n1 waits until the test opens the gate
SELECT taskflow.add_node('oc', 'n1', 'sql', $$
DO $d$ BEGIN
  WHILE NOT EXISTS (SELECT 1 FROM public.gate) LOOP PERFORM pg_sleep(0.05); END LOOP;
END $d$;
INSERT INTO public.log VALUES ('n1', current_user, 'alice')$$);
SELECT taskflow.add_node('oc', 'n2', 'sql', $$INSERT INTO public.log VALUES ('n2', current_user, 'alice')$$,
                         after => ARRAY['n1']);
});

my $run = TaskflowTest->run_flow($node, 'oc', user => 'alice');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.node_runs nr JOIN taskflow.nodes n ON n.id = nr.node_id WHERE nr.run_id = $run AND n.name = 'n1'", 60),
	'n1 runs (as alice)');

# alice gives the flow to the team; bob (team, not alice) changes n2
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.alter_flow('oc', owner => 'team');
});
$node->safe_psql('postgres', q{
SET ROLE bob;
SELECT taskflow.alter_node('oc', 'n2', body => $$INSERT INTO public.log VALUES ('n2', current_user, 'bob')$$);
});
$node->safe_psql('postgres', 'INSERT INTO public.gate VALUES (1)');

is(TaskflowTest->wait_run($node, $run, timeout => 120), 'succeeded', 'the run succeeds');
is($node->safe_psql('postgres', q{SELECT who || ' ' || note FROM public.log WHERE node = 'n1'}),
	'alice alice', 'n1 ran as alice (the owner when it started)');
is($node->safe_psql('postgres', q{SELECT string_agg(who || ' ' || note, ',') FROM public.log WHERE node = 'n2'}),
	'team bob', "bob's body of n2 ran as the new owner, not as alice");

# and a run after the change runs as the team throughout
$node->safe_psql('postgres', 'TRUNCATE public.log');
my ($run2, $state2) = TaskflowTest->run_and_wait($node, 'oc', user => 'bob');
is($state2, 'succeeded', 'a later run succeeds');
is($node->safe_psql('postgres', q{SELECT string_agg(node || ' ' || who, ',' ORDER BY node) FROM public.log}),
	'n1 team,n2 team', 'a later run runs as the team');

# The check takes no row lock: a member keeping the flow's row locked in an
# open transaction does not make the workers of its runs wait (they would
# hold pool slots: starving other owners).
my $locker = $node->background_psql('postgres');
$locker->query_safe(q{SET ROLE bob; BEGIN; UPDATE taskflow.flows SET description = 'locked' WHERE name = 'oc'});
$node->safe_psql('postgres', 'TRUNCATE public.log');
my ($run3, $state3) = TaskflowTest->run_and_wait($node, 'oc', user => 'bob', timeout => 60);
is($state3, 'succeeded', "a run succeeds while a member holds the flow's row");
$locker->query_safe('ROLLBACK');
$locker->quit;

done_testing();
