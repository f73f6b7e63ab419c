# Flow logic on real runs (docs/flow_logic.md): a branch node takes its true
# or its false path and the other ends skipped, skipping propagates; each
# trigger rule (all_done cleanup after a failure, one_failed alert,
# all_failed, always, none_failed_min_one_success join); the finalizer runs
# last, whatever happened; the run's final state is that of its ordinary
# nodes, and a failing cleanup/finalizer fails the run.  Node code runs as
# the flow owner (alice).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('flowlogic');
$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE TABLE public.full_days (day date PRIMARY KEY);
INSERT INTO public.full_days VALUES ('2024-01-07');
CREATE TABLE public.done (node text, run_id bigint, who text DEFAULT current_user);
CREATE TABLE public.flag (name text PRIMARY KEY, fail boolean);
INSERT INTO public.flag VALUES ('a', true);
GRANT ALL ON public.full_days, public.done, public.flag TO alice;
SET ROLE alice;
-- branch: a full load on the days listed in full_days, else a delta load
SELECT taskflow.create_flow('br');
SELECT taskflow.add_node('br', 'start', 'sql', $$INSERT INTO public.done VALUES ('start', ${run_id})$$);
SELECT taskflow.add_node('br', 'is_full', 'branch',
    $$SELECT count(*) > 0 FROM public.full_days WHERE day = ${bizdate:literal}$$, after => ARRAY['start']);
SELECT taskflow.add_node('br', 'full', 'sql', $$INSERT INTO public.done VALUES ('full', ${run_id})$$,
    after => ARRAY['is_full'], branch => true);
SELECT taskflow.add_node('br', 'full_check', 'sql', $$INSERT INTO public.done VALUES ('full_check', ${run_id})$$,
    after => ARRAY['full']);
SELECT taskflow.add_node('br', 'delta', 'sql', $$INSERT INTO public.done VALUES ('delta', ${run_id})$$);
SELECT taskflow.add_edge('br', 'is_full', 'delta', branch => false);
SELECT taskflow.add_node('br', 'join', 'sql', $$INSERT INTO public.done VALUES ('join', ${run_id})$$,
    after => ARRAY['full_check', 'delta'], trigger_rule => 'none_failed_min_one_success');
SELECT taskflow.add_node('br', 'strict', 'sql', $$INSERT INTO public.done VALUES ('strict', ${run_id})$$,
    after => ARRAY['full_check', 'delta']);
-- trigger rules: a fails while flag a says so
SELECT taskflow.create_flow('tr');
SELECT taskflow.add_node('tr', 'a', 'sql', $q$INSERT INTO public.done VALUES ('a', ${run_id});
    DO $d$ BEGIN IF (SELECT fail FROM public.flag WHERE name = 'a') THEN RAISE EXCEPTION 'a broke'; END IF; END $d$$q$);
SELECT taskflow.add_node('tr', 'b', 'sql', $$INSERT INTO public.done VALUES ('b', ${run_id})$$);
SELECT taskflow.add_node('tr', 'down', 'sql', $$INSERT INTO public.done VALUES ('down', ${run_id})$$,
    after => ARRAY['a', 'b']);
SELECT taskflow.add_node('tr', 'cleanup', 'sql', $$INSERT INTO public.done VALUES ('cleanup', ${run_id})$$,
    after => ARRAY['a', 'b'], trigger_rule => 'all_done');
SELECT taskflow.add_node('tr', 'alert', 'sql', $$INSERT INTO public.done VALUES ('alert', ${run_id})$$,
    after => ARRAY['a', 'b'], trigger_rule => 'one_failed');
SELECT taskflow.add_node('tr', 'allfail', 'sql', $$INSERT INTO public.done VALUES ('allfail', ${run_id})$$,
    after => ARRAY['a'], trigger_rule => 'all_failed');
SELECT taskflow.add_node('tr', 'anyway', 'sql', $$INSERT INTO public.done VALUES ('anyway', ${run_id})$$,
    after => ARRAY['a'], trigger_rule => 'always');
SELECT taskflow.add_node('tr', 'fin', 'sql', $$INSERT INTO public.done VALUES ('fin', ${run_id})$$,
    finalizer => true);
-- a failing cleanup and a failing finalizer fail a run whose ordinary nodes succeeded
SELECT taskflow.create_flow('fc');
SELECT taskflow.add_node('fc', 'work', 'sql', $$INSERT INTO public.done VALUES ('work', ${run_id})$$);
SELECT taskflow.add_node('fc', 'cleanup', 'sql', 'SELECT 1/0', after => ARRAY['work'], trigger_rule => 'all_done');
-- a branch over a variable (a run parameter overrides it), and a branch that fails
SELECT taskflow.create_flow('bx');
SELECT taskflow.set_variable('bx', 'mode', 'full', constant => true);
SELECT taskflow.add_node('bx', 'pick', 'branch', $$${mode:literal} = 'full'$$);
SELECT taskflow.add_node('bx', 'f', 'sql', $$INSERT INTO public.done VALUES ('f', ${run_id})$$,
    after => ARRAY['pick'], branch => true);
SELECT taskflow.add_node('bx', 'd', 'sql', $$INSERT INTO public.done VALUES ('d', ${run_id})$$,
    after => ARRAY['pick'], branch => false);
SELECT taskflow.create_flow('bbad');
SELECT taskflow.add_node('bbad', 'pick', 'branch', 'SELECT g > 0 FROM generate_series(1, 2) g');
SELECT taskflow.add_node('bbad', 'f', 'sql', 'SELECT 1', after => ARRAY['pick'], branch => true);
SELECT taskflow.add_node('bbad', 'd', 'sql', 'SELECT 1', after => ARRAY['pick'], branch => false);
SELECT taskflow.create_flow('ff');
SELECT taskflow.add_node('ff', 'work', 'sql', $$INSERT INTO public.done VALUES ('work', ${run_id})$$);
SELECT taskflow.add_node('ff', 'fin', 'sql', $$SELECT 'x'::int$$, finalizer => true);
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub ran { return q1("SELECT string_agg(node, ',' ORDER BY node) FROM public.done WHERE run_id = $_[0]"); }

# ------------------------------------------------------------------ branch
my ($full, $st) = TaskflowTest->run_and_wait($node, 'br', user => 'alice', bizdate => '2024-01-07');
is($st, 'succeeded', 'branch, true path: the run succeeded');
is(TaskflowTest->node_states($node, $full),
	'delta=skipped,full=succeeded,full_check=succeeded,is_full=succeeded,join=succeeded,start=succeeded,strict=skipped',
	'true path: full ran, delta was skipped, strict (all_success) skipped by propagation, join ran');
is(ran($full), 'full,full_check,join,start', 'the skipped nodes did not run');
is(q1("SELECT rows || ' ' || (log LIKE '%branch result: true%') FROM taskflow.node_runs nr JOIN taskflow.nodes n ON n.id = nr.node_id WHERE run_id = $full AND n.name = 'is_full'"),
	'1 true', 'the branch result is recorded (rows = 1, in the log)');
like(q1("SELECT message FROM taskflow.node_runs nr JOIN taskflow.nodes n ON n.id = nr.node_id WHERE run_id = $full AND n.name = 'strict'"),
	qr/skipped: an upstream node was skipped/, 'a skipped node says why');
is(q1("SELECT count(*) FROM public.done WHERE run_id = $full AND who <> 'alice'"), '0', 'nodes ran as the flow owner');

my ($delta, $st2) = TaskflowTest->run_and_wait($node, 'br', user => 'alice', bizdate => '2024-01-08');
is($st2, 'succeeded', 'branch, false path: the run succeeded');
is(TaskflowTest->node_states($node, $delta),
	'delta=succeeded,full=skipped,full_check=skipped,is_full=succeeded,join=succeeded,start=succeeded,strict=skipped',
	'false path: delta ran, full and full_check (transitively) skipped');
is(ran($delta), 'delta,join,start', 'only the false path ran');

# a rerun from a node keeps the branch's choice and the skips of the old run
my $re = q1("SET ROLE alice; SELECT taskflow.rerun($full, from_node => 'full')");
is(TaskflowTest->wait_run($node, $re), 'succeeded', 'rerun from the true path succeeded');
is(TaskflowTest->node_states($node, $re),
	'delta=skipped,full=succeeded,full_check=succeeded,is_full=skipped,join=succeeded,start=skipped,strict=skipped',
	'rerun: the path not taken stays skipped and still propagates to strict');

my ($bx, $bxs) = TaskflowTest->run_and_wait($node, 'bx', user => 'alice', params => '{"mode": "delta"}');
is($bxs, 'succeeded', 'a branch over a variable: the run succeeded');
is(TaskflowTest->node_states($node, $bx), 'd=succeeded,f=skipped,pick=succeeded',
	'the run parameter chose the false path');
is(q1("SELECT rendered FROM taskflow.node_run_history WHERE run_id = $bx AND node = 'pick'"),
	q{'delta' = 'full'}, 'the rendered condition is recorded');
my ($bb, $bbs) = TaskflowTest->run_and_wait($node, 'bbad', user => 'alice');
is($bbs, 'failed', 'a branch whose query returns two rows fails the run');
is(TaskflowTest->node_states($node, $bb), 'd=upstream_failed,f=upstream_failed,pick=failed',
	'both paths are upstream_failed, not skipped');
like(q1("SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $bb AND node = 'pick'"),
	qr/^21000 more than one row/, 'with the error of the condition');

# ------------------------------------------------------------------ trigger rules
my ($t1, $s1) = TaskflowTest->run_and_wait($node, 'tr', user => 'alice');
is($s1, 'failed', 'a failed: the run failed, cleanup and alert notwithstanding');
is(TaskflowTest->node_states($node, $t1),
	'a=failed,alert=succeeded,allfail=succeeded,anyway=succeeded,b=succeeded,cleanup=succeeded,down=upstream_failed,fin=succeeded',
	'after a failure: all_done cleanup, one_failed alert, all_failed and always ran; all_success did not');
is(q1("SELECT (SELECT started_at FROM taskflow.node_run_history WHERE run_id = $t1 AND node = 'fin')
            >= (SELECT max(finished_at) FROM taskflow.node_run_history WHERE run_id = $t1 AND node <> 'fin')"),
	't', 'the finalizer started after every other node had finished');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT taskflow._run_outcome($t1, '1 second')");
like($err, qr/node "a" failed: a broke/, 'the failure report names the failed node');
unlike($err, qr/node "(cleanup|alert|fin)"/, 'and not the cleanup, alert or finalizer nodes');

# set success on the failed node: its downstream runs, the finalizer runs again
q1("SET ROLE alice; SELECT taskflow.set_node_success($t1, 'a')");
TaskflowTest->poll($node, 'postgres', "SELECT state IN ('succeeded', 'failed') FROM taskflow.runs WHERE id = $t1", 60)
  or diag('run did not finish after set_node_success');
is(q1("SELECT state FROM taskflow.runs WHERE id = $t1"), 'succeeded', 'after set_node_success the run succeeded');
is(q1("SELECT count(*) FROM public.done WHERE run_id = $t1 AND node = 'fin'"), '2', 'the finalizer ran again');
is(q1("SELECT (SELECT started_at FROM taskflow.node_run_history WHERE run_id = $t1 AND node = 'fin')
            >= (SELECT finished_at FROM taskflow.node_run_history WHERE run_id = $t1 AND node = 'down')"),
	't', '... after the node that ran late');

q1("UPDATE public.flag SET fail = false WHERE name = 'a'");
my ($t2, $s2) = TaskflowTest->run_and_wait($node, 'tr', user => 'alice');
is($s2, 'succeeded', 'nothing failed: the run succeeded');
is(TaskflowTest->node_states($node, $t2),
	'a=succeeded,alert=skipped,allfail=skipped,anyway=succeeded,b=succeeded,cleanup=succeeded,down=succeeded,fin=succeeded',
	'without a failure: one_failed and all_failed are skipped, the others ran');
is(ran($t2), 'a,anyway,b,cleanup,down,fin', 'the skipped alert did not run');

# ------------------------------------------------------------------ failing cleanup / finalizer
my ($c1, $cs) = TaskflowTest->run_and_wait($node, 'fc', user => 'alice');
is($cs, 'failed', 'a failing all_done cleanup fails the run');
is(TaskflowTest->node_states($node, $c1), 'cleanup=failed,work=succeeded', 'the work itself succeeded');

($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ROLE alice; CALL taskflow.run('ff', bizdate => '2024-01-01')");
isnt($ret, 0, 'CALL taskflow.run raises when the finalizer fails');
like($err, qr/22P02: run \d+ of flow "ff" failed/, 'with the finalizer\'s SQLSTATE');
like($err, qr/node "fin" failed: invalid input syntax for type integer/, 'naming the finalizer and its error');
is(q1("SELECT count(*) FROM public.done d JOIN taskflow.runs r ON r.id = d.run_id JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'ff'"),
	'1', 'the ordinary node ran before the finalizer');

done_testing();
