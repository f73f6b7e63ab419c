# Run operations on a finished run's nodes: rerun from a node (it and
# everything downstream), set success on a failed node (its downstream nodes
# continue); a stranger is refused and changes nothing.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('runops');
$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE TABLE public.flag (name text PRIMARY KEY, ok boolean);
INSERT INTO public.flag VALUES ('b', false), ('x', false), ('m1', false), ('m2', false);
CREATE TABLE public.done (node text, run_id bigint);
GRANT ALL ON public.flag, public.done TO alice;
SET ROLE alice;
SELECT taskflow.create_flow('chain');
SELECT taskflow.add_node('chain', 'a', 'sql', $$INSERT INTO public.done VALUES ('a', ${run_id})$$);
SELECT taskflow.add_node('chain', 's', 'sql', $$INSERT INTO public.done VALUES ('s', ${run_id})$$);
SELECT taskflow.add_node('chain', 'b', 'sql', $$DO $d$ BEGIN IF NOT (SELECT ok FROM public.flag WHERE name = 'b') THEN RAISE EXCEPTION 'b not ready'; END IF; END $d$; INSERT INTO public.done VALUES ('b', ${run_id})$$, after => ARRAY['a']);
SELECT taskflow.add_node('chain', 'c', 'sql', $$INSERT INTO public.done VALUES ('c', ${run_id})$$, after => ARRAY['b']);
SELECT taskflow.add_node('chain', 'd', 'sql', $$INSERT INTO public.done VALUES ('d', ${run_id})$$, after => ARRAY['c']);
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub done_count { return q1("SELECT count(*) FROM public.done WHERE node = '$_[0]'"); }
sub nruns { return q1('SELECT count(*) FROM taskflow.runs'); }

# ---------------------------------------------------------------- rerun from a node
my ($run1, $state) = TaskflowTest->run_and_wait($node, 'chain', user => 'alice');
is($state, 'failed', 'chain: first run failed');
is(TaskflowTest->node_states($node, $run1), 'a=succeeded,b=failed,c=upstream_failed,d=upstream_failed,s=succeeded',
	'chain: b failed, c and d did not run');

my $before = nruns();
my ($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ROLE alice; SELECT taskflow.rerun($run1, from_node => 'c')");
isnt($ret, 0, 'rerun from a node whose upstream failed is refused');
like($err, qr/55000: cannot rerun run $run1 from node "c": upstream nodes did not succeed/, 'the error says why (55000)');
like($err, qr/DETAIL:  Upstream: b \(failed\)\./, 'the detail names the upstream node and its state');
like($err, qr/HINT:  Rerun from an upstream node/, 'with a hint');
is(nruns(), $before, 'no run was created');

($ret, $out, $err) = $node->psql('postgres', "SET ROLE alice; SELECT taskflow.rerun($run1, from_node => 'zz')");
like($err, qr/node "zz" does not exist in the flow of run $run1/, 'an unknown node is refused');
is(nruns(), $before, 'no run was created');

# a stranger: "does not exist", nothing created
($ret, $out, $err) = $node->psql('postgres', "SET ROLE bob; SELECT taskflow.rerun($run1, from_node => 'b')");
like($err, qr/run $run1 does not exist/, 'a stranger cannot rerun from a node');
is(nruns(), $before, 'the stranger created no run');

q1(q{UPDATE public.flag SET ok = true WHERE name = 'b'});
my $run2 = q1("SET ROLE alice; SELECT taskflow.rerun($run1, from_node => 'b')");
is(TaskflowTest->wait_run($node, $run2), 'succeeded', 'rerun from b succeeded');
is(TaskflowTest->node_states($node, $run2), 'a=skipped,b=succeeded,c=succeeded,d=succeeded,s=skipped',
	'b and its downstream ran; the others were skipped');
is(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $run2 AND node = 'a'"),
	"succeeded in run $run1; not rerun", 'skipped nodes say where they succeeded');
is(q1("SELECT trigger || ',' || rerun_of FROM taskflow.runs WHERE id = $run2"), "rerun,$run1",
	'trigger rerun, rerun_of the old run');
is(done_count('a') . ',' . done_count('s'), '1,1', 'a and s ran only once');

# from a node in the middle of a succeeded run: upstream skipped (they
# succeeded or were skipped), it and its downstream run again
my $run3 = q1("SET ROLE alice; SELECT taskflow.rerun($run2, from_node => 'c')");
is(TaskflowTest->wait_run($node, $run3), 'succeeded', 'rerun from c succeeded');
is(TaskflowTest->node_states($node, $run3), 'a=skipped,b=skipped,c=succeeded,d=succeeded,s=skipped',
	'only c and d ran');
is(join(',', map { done_count($_) } qw(a b c d s)), '1,1,2,2,1', 'c and d ran again, nothing else');

# the leaf: only_failed is ignored with from_node
my $run4 = q1("SET ROLE alice; SELECT taskflow.rerun($run3, only_failed => false, from_node => 'd')");
is(TaskflowTest->wait_run($node, $run4), 'succeeded', 'rerun from the leaf succeeded');
is(TaskflowTest->node_states($node, $run4), 'a=skipped,b=skipped,c=skipped,d=succeeded,s=skipped',
	'only the leaf ran');

# ---------------------------------------------------------------- set_node_success
q1(q{
SET ROLE alice;
SELECT taskflow.create_flow('fix');
SELECT taskflow.add_node('fix', 'p', 'sql', $$INSERT INTO public.done VALUES ('p', ${run_id})$$);
SELECT taskflow.add_node('fix', 'x', 'sql', $$DO $d$ BEGIN IF NOT (SELECT ok FROM public.flag WHERE name = 'x') THEN RAISE EXCEPTION 'x not ready' USING ERRCODE = '22023'; END IF; END $d$; $$);
SELECT taskflow.add_node('fix', 'y', 'sql', $$INSERT INTO public.done VALUES ('y', ${run_id})$$, after => ARRAY['x']);
SELECT taskflow.add_node('fix', 'z', 'sql', $$INSERT INTO public.done VALUES ('z', ${run_id})$$, after => ARRAY['y', 'p']);
});
my $fr;
($fr, $state) = TaskflowTest->run_and_wait($node, 'fix', user => 'alice');
is($state, 'failed', 'fix: run failed');
is(TaskflowTest->node_states($node, $fr), 'p=succeeded,x=failed,y=upstream_failed,z=upstream_failed',
	'fix: x failed, y and z did not run');

# refusals, each changing nothing
my $snap_sql = "SELECT r.state || ':' || (r.finished_at IS NOT NULL) || ':' || "
	. "(SELECT string_agg(nr.state || '/' || coalesce(nr.message, ''), ',' ORDER BY nr.id) FROM taskflow.node_runs nr WHERE nr.run_id = r.id) "
	. "FROM taskflow.runs r WHERE r.id = $fr";
my $snap = q1($snap_sql);
($ret, $out, $err) = $node->psql('postgres', "SET ROLE bob; SELECT taskflow.set_node_success($fr, 'x')");
like($err, qr/run $fr does not exist/, 'a stranger cannot set success');
($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ROLE alice; SELECT taskflow.set_node_success($fr, 'y')");
like($err, qr/55000: node "y" of run $fr is upstream_failed, not failed/, 'an upstream_failed node is refused (55000)');
like($err, qr/HINT:  Mark the failed node upstream of it succeeded instead/, 'with a hint');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE alice; SELECT taskflow.set_node_success($fr, 'nope')");
like($err, qr/node "nope" does not exist in run $fr/, 'an unknown node is refused');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE alice; SELECT taskflow.set_node_success($fr, NULL)");
like($err, qr/node name must not be null/, 'a null node is refused');
is(q1($snap_sql), $snap, 'the refusals changed nothing');

# alice marks x succeeded: y and z run, the run succeeds
q1("SET ROLE alice; SELECT taskflow.set_node_success($fr, 'x')");
is(TaskflowTest->wait_run($node, $fr), 'succeeded', 'the run continued and succeeded');
is(TaskflowTest->node_states($node, $fr), 'p=succeeded,x=succeeded,y=succeeded,z=succeeded',
	'downstream nodes ran');
like(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $fr AND node = 'x'"),
	qr/^marked succeeded by alice at .* \(it failed: x not ready\)$/, 'who marked it is recorded, and the old error');
like(q1("SELECT message FROM taskflow.runs WHERE id = $fr"), qr/^node "x" marked succeeded by alice at /,
	'the run records it too');
is(done_count('y') . ',' . done_count('z') . ',' . done_count('p'), '1,1,1', 'y and z ran once; p not again');

# a succeeded run: refused
($ret, $out, $err) = $node->psql('postgres', "SET ROLE alice; SELECT taskflow.set_node_success($fr, 'x')");
like($err, qr/run $fr is succeeded, not failed/, 'a succeeded run is refused');

# two failed upstreams: marking one succeeded lets the run end failed again
q1(q{
SET ROLE alice;
SELECT taskflow.create_flow('two');
SELECT taskflow.add_node('two', 'm1', 'sql', $$SELECT 1/0$$);
SELECT taskflow.add_node('two', 'm2', 'sql', $$SELECT 1/0$$);
SELECT taskflow.add_node('two', 'j', 'sql', $$INSERT INTO public.done VALUES ('j', ${run_id})$$, after => ARRAY['m1', 'm2']);
});
my $tr;
($tr, $state) = TaskflowTest->run_and_wait($node, 'two', user => 'alice');
is($state, 'failed', 'two: run failed');
q1("SET ROLE alice; SELECT taskflow.set_node_success($tr, 'm1')");
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT finished_at IS NOT NULL FROM taskflow.runs WHERE id = $tr", 60), 'two: run finished again');
is(TaskflowTest->wait_run($node, $tr), 'failed', 'two: still failed (m2 failed)');
is(TaskflowTest->node_states($node, $tr), 'j=upstream_failed,m1=succeeded,m2=failed',
	'j did not run: its other upstream failed');
q1("SET ROLE alice; SELECT taskflow.set_node_success($tr, 'm2')");
is(TaskflowTest->wait_run($node, $tr), 'succeeded', 'two: with m2 marked too the run succeeded');
is(done_count('j'), '1', 'j ran once');

# ---------------------------------------------------------------- auto-suspend
q1(q{
INSERT INTO public.flag VALUES ('f', false);
SET ROLE alice;
SELECT taskflow.create_flow('flaky', suspend_after_failures => 2);
SELECT taskflow.add_node('flaky', 'f', 'sql', $$DO $d$ BEGIN IF NOT (SELECT ok FROM public.flag WHERE name = 'f') THEN RAISE EXCEPTION 'f not ready'; END IF; END $d$; $$);
});
my $st_sql = q{SELECT enabled || ':' || coalesce(suspend_after_failures::text, '-') || ':' || coalesce(suspended_reason, '-') FROM taskflow.flow_status WHERE flow = 'flaky'};
is(q1($st_sql), 'true:2:-', 'flaky: enabled, suspends after 2 failures');

# bad settings are refused and change nothing
($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ROLE alice; SELECT taskflow.create_flow('bad_s', suspend_after_failures => -1)");
like($err, qr/22023: invalid suspend_after_failures: -1/, 'create_flow refuses a negative count (22023)');
($ret, $out, $err) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ROLE alice; UPDATE taskflow.flows SET suspend_after_failures = 5000 WHERE name = 'flaky'");
like($err, qr/22023: invalid suspend_after_failures: 5000/, 'the catalog guard refuses a direct write out of bounds');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE alice; UPDATE taskflow.flows SET suspended_reason = 'x' WHERE name = 'flaky'");
like($err, qr/permission denied/, 'users cannot write suspended_reason');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE bob; SELECT taskflow.alter_flow('flaky', suspend_after_failures => 1)");
like($err, qr/flow "flaky" does not exist/, 'a stranger cannot change it');
is(q1($st_sql), 'true:2:-', 'the refusals changed nothing');

# failed, succeeded, failed: not 2 consecutive
my $fl;
($fl, $state) = TaskflowTest->run_and_wait($node, 'flaky', user => 'alice');
is($state . ':' . q1($st_sql), 'failed:true:2:-', 'one failed run: still enabled');
q1(q{UPDATE public.flag SET ok = true WHERE name = 'f'});
($fl, $state) = TaskflowTest->run_and_wait($node, 'flaky', user => 'alice');
q1(q{UPDATE public.flag SET ok = false WHERE name = 'f'});
($fl, $state) = TaskflowTest->run_and_wait($node, 'flaky', user => 'alice');
is($state . ':' . q1($st_sql), 'failed:true:2:-', 'a success between two failures: still enabled');
($fl, $state) = TaskflowTest->run_and_wait($node, 'flaky', user => 'alice');
is($state, 'failed', 'second consecutive failure');
like(q1($st_sql), qr/^false:2:suspended at .* after 2 consecutive failed runs \(the last: run $fl\)$/,
	'the flow is suspended, with the reason in flow_status');

# enable_flow clears the reason and restarts the count
q1(q{SET ROLE alice; SELECT taskflow.enable_flow('flaky')});
is(q1($st_sql), 'true:2:-', 'enable_flow clears the reason');
($fl, $state) = TaskflowTest->run_and_wait($node, 'flaky', user => 'alice');
is($state . ':' . q1($st_sql), 'failed:true:2:-', 'one failure after enabling: still enabled');
# 0 clears the setting: never suspended
q1(q{SET ROLE alice; SELECT taskflow.alter_flow('flaky', suspend_after_failures => 0)});
($fl, $state) = TaskflowTest->run_and_wait($node, 'flaky', user => 'alice');
is($state . ':' . q1($st_sql), 'failed:true:-:-', 'suspend_after_failures => 0: never suspended');

done_testing();
