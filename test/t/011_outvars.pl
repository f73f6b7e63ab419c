# Output variables at run time: a sql node's first result row becomes
# ${node.column} downstream (plain, :literal with quotes, :ident), recorded
# in node_run_history.outputs with the node's success, shown by
# render(run_id => ...), seen again by a rerun (only_failed and from_node);
# check nodes (check_rows, check_flow) succeed when their condition holds
# and time out otherwise; a stranger's flow looks like no flow.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('outvars');
sub q1 { return $node->safe_psql('postgres', $_[0]); }

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE TABLE public.src (who text, n int);
INSERT INTO public.src VALUES ('O''Brien', 3), ('Smith', 4);
CREATE TABLE public.sink (node text, v text, n int);
CREATE TABLE public."Daily Sum" (x int);
CREATE TABLE public.gate (ok boolean);
INSERT INTO public.gate VALUES (false);
GRANT SELECT ON public.src, public.gate TO alice;
GRANT INSERT, SELECT ON public.sink, public."Daily Sum" TO alice;
});

# ---------------------------------------------------------------- outputs flow downstream
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('ov');
-- two statements: the last one's first row counts; a column that is no
-- variable name is left out
SELECT taskflow.add_node('ov', 'pick', 'sql',
  $$SELECT 42 AS first_statement; SELECT who, n, NULL::text AS gone, 'Daily Sum' AS tbl, 1 + 1 FROM public.src ORDER BY n$$);
SELECT taskflow.add_node('ov', 'use', 'sql',
  $$INSERT INTO public.sink VALUES ('use', ${pick.who:literal}, ${pick.n} * 10);
    INSERT INTO public.${pick.tbl:ident} VALUES (${pick.n});
    INSERT INTO public.sink VALUES ('null', ${pick.gone:literal}, NULL);
    SELECT 'x' || ${pick.n} AS tag$$, after => ARRAY['pick']);
-- transitively downstream, and a node that fails until gate.ok
SELECT taskflow.add_node('ov', 'late', 'sql',
  $$INSERT INTO public.sink SELECT 'late', ${use.tag:literal} || '/' || ${pick.who:literal}, 1 FROM public.gate WHERE ok;
    SELECT 1 / (SELECT count(*)::int FROM public.gate WHERE ok) AS ok$$, after => ARRAY['use']);
});

my ($run, $state) = TaskflowTest->run_and_wait($node, 'ov', bizdate => '2026-03-01', user => 'alice');
is($state, 'failed', 'first run fails at "late" (gate closed)');
is(TaskflowTest->node_states($node, $run), 'late=failed,pick=succeeded,use=succeeded',
	'pick and use succeeded');
is(q1("SELECT v || '|' || n FROM public.sink WHERE node = 'use'"), "O'Brien|30",
	'a value with a quote arrives quoted by :literal, a number as plain text');
is(q1('SELECT x FROM public."Daily Sum"'), '3', ':ident quotes a table name');
is(q1("SELECT coalesce(v, 'SQL NULL') FROM public.sink WHERE node = 'null'"), 'SQL NULL',
	'a NULL output is NULL as :literal');
is(q1("SELECT outputs::text FROM taskflow.node_run_history WHERE run_id = $run AND node = 'pick'"),
	'{"n": "3", "tbl": "Daily Sum", "who": "O\'Brien", "gone": null}',
	'outputs recorded in history: first row of the last statement, as text');
like(q1("SELECT log FROM taskflow.node_run_history WHERE run_id = $run AND node = 'pick'"),
	qr/output column "\?column\?" not recorded: not a variable name.*outputs: the first of 2 rows/s,
	'the log says which column was left out and that the first of 2 rows counted');
like(q1("SELECT rendered FROM taskflow.node_run_history WHERE run_id = $run AND node = 'use'"),
	qr/VALUES \('use', 'O''Brien', 3 \* 10\)/, 'the rendered body shows the values');
is(q1("SET ROLE alice; SELECT taskflow.render('ov', 'late', run_id => $run)"),
	"INSERT INTO public.sink SELECT 'late', 'x3' || '/' || 'O''Brien', 1 FROM public.gate WHERE ok;\n    SELECT 1 / (SELECT count(*)::int FROM public.gate WHERE ok) AS ok",
	'render(run_id) shows the text with the outputs recorded in that run');
like(q1("SET ROLE alice; SELECT taskflow.render('ov', 'late')"), qr/\$\{use\.tag:literal\}/,
	'render() without a run keeps output variables as written');
my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE bob; SELECT taskflow.render('ov', 'late', run_id => $run)");
like($err, qr/flow "ov" does not exist/, 'a stranger cannot render alice\'s run');

# ---------------------------------------------------------------- reruns see the outputs
# the outputs change in the source; a rerun of the failed node must see the
# outputs of the attempt that succeeded in the old run
$node->safe_psql('postgres', q{UPDATE public.gate SET ok = true; UPDATE public.src SET who = 'changed'});
my $run2 = q1("SET ROLE alice; SELECT taskflow.rerun($run)");
is(TaskflowTest->wait_run($node, $run2), 'succeeded', 'rerun (only_failed) succeeded');
is(q1("SELECT v FROM public.sink WHERE node = 'late'"), "x3/O'Brien",
	'the rerun node saw the outputs recorded by the old run');
is(q1("SELECT string_agg(node || '=' || state || ':' || (outputs IS NOT NULL), ',' ORDER BY node) FROM taskflow.node_run_history WHERE run_id = $run2"),
	'late=succeeded:true,pick=skipped:true,use=skipped:true',
	'skipped nodes carry their outputs into the rerun; late recorded its own');
# from_node: use runs again and sees pick's outputs from the old run
$node->safe_psql('postgres', q{DELETE FROM public.sink});
my $run3 = q1("SET ROLE alice; SELECT taskflow.rerun($run2, from_node => 'use')");
is(TaskflowTest->wait_run($node, $run3), 'succeeded', 'rerun from a node succeeded');
is(q1("SELECT string_agg(node || '=' || v, ',' ORDER BY node) FROM public.sink WHERE node IN ('use', 'late')"),
	"late=x3/O'Brien,use=O'Brien", 'rerun from_node: downstream nodes saw the carried outputs');

# a fresh run takes the new values
$node->safe_psql('postgres', q{DELETE FROM public.sink});
($run, $state) = TaskflowTest->run_and_wait($node, 'ov', bizdate => '2026-03-02', user => 'alice');
is($state, 'succeeded', 'a new run succeeded');
is(q1("SELECT v FROM public.sink WHERE node = 'late'"), 'x3/changed', 'a new run sees new outputs');

# an sql node whose upstream recorded no such column fails with a clear error
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('ov2');
SELECT taskflow.add_node('ov2', 'a', 'sql', 'SELECT n FROM public.src WHERE false');
SELECT taskflow.add_node('ov2', 'b', 'sql', $$INSERT INTO public.sink VALUES ('b', ${a.n:literal}, 0)$$, after => ARRAY['a']);
SELECT taskflow.add_node('ov2', 'c', 'sql', $$SELECT ${b.n}$$, after => ARRAY['b']);
});
($run, $state) = TaskflowTest->run_and_wait($node, 'ov2', user => 'alice');
is(q1("SELECT count(*) FROM public.sink WHERE node = 'b' AND v IS NULL"), '1',
	'no row: the columns are NULL (like SELECT INTO without STRICT)');
is(q1("SELECT outputs::text FROM taskflow.node_run_history WHERE run_id = $run AND node = 'a'"),
	'{"n": null}', 'no row recorded as nulls');
like(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'c'"),
	qr/output variable "b.n" has no value.*no outputs/s,
	'an INSERT records no outputs: the downstream reference fails clearly');

# autocommit mode: the last statement's first row, recorded after the script
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('ov3');
SELECT taskflow.add_node('ov3', 'ac', 'sql', $$SELECT 1 AS a; SELECT 'it''s' AS b, 2 AS c FROM generate_series(1, 3)$$,
  options => '{"autocommit": true}');
SELECT taskflow.add_node('ov3', 'use', 'sql', $$INSERT INTO public.sink VALUES ('ac', ${ac.b:literal}, ${ac.c})$$,
  after => ARRAY['ac']);
});
($run, $state) = TaskflowTest->run_and_wait($node, 'ov3', user => 'alice');
is($state, 'succeeded', 'autocommit run succeeded');
is(q1("SELECT outputs::text FROM taskflow.node_run_history WHERE run_id = $run AND node = 'ac'"),
	'{"b": "it\'s", "c": "2"}', 'autocommit mode: outputs of the last statement');
is(q1("SELECT v || '|' || n FROM public.sink WHERE node = 'ac'"), "it's|2",
	'autocommit outputs reach the downstream node');

# a retried node: the downstream node sees the outputs of the attempt that succeeded
$node->safe_psql('postgres', q{
CREATE SEQUENCE public.tries;
GRANT USAGE ON SEQUENCE public.tries TO alice;
SET ROLE alice;
SELECT taskflow.create_flow('ov4');
SELECT taskflow.add_node('ov4', 'flaky', 'sql', $$SELECT 7 * (1 / (nextval('public.tries') - 1))::int AS v$$,
  retries => 1, retry_delay => '1 second');
SELECT taskflow.add_node('ov4', 'use', 'sql', $$INSERT INTO public.sink VALUES ('retry', ${flaky.v:literal}, ${flaky.v})$$,
  after => ARRAY['flaky']);
});
($run, $state) = TaskflowTest->run_and_wait($node, 'ov4', user => 'alice');
is($state, 'succeeded', 'run with a retried upstream node succeeded');
is(q1("SELECT attempts || ':' || outputs::text FROM taskflow.node_run_history WHERE run_id = $run AND node = 'flaky'"),
	'2:{"v": "7"}', 'outputs of the second (succeeded) attempt recorded');
is(q1("SELECT v || '|' || n FROM public.sink WHERE node = 'retry'"), '7|7',
	'the downstream node used them');

# option "server": the remote script's last statement's first row (a
# loopback postgres_fdw server: this cluster, as alice)
my ($host, $port) = ($node->host, $node->port);
$node->safe_psql('postgres', qq{
CREATE EXTENSION postgres_fdw;
CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname 'postgres');
GRANT USAGE ON FOREIGN SERVER loop TO alice;
CREATE USER MAPPING FOR alice SERVER loop OPTIONS (user 'alice', password_required 'false');
});
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('ov5');
SELECT taskflow.add_node('ov5', 'remote', 'sql', $$SELECT 1 AS first; SELECT current_user AS who, NULL::int AS z, 'O''Hara' AS q$$,
  options => '{"server": "loop"}');
SELECT taskflow.add_node('ov5', 'use', 'sql', $$INSERT INTO public.sink VALUES ('remote', ${remote.who:literal} || '/' || ${remote.q:literal}, ${remote.z:literal})$$,
  after => ARRAY['remote']);
});
($run, $state) = TaskflowTest->run_and_wait($node, 'ov5', user => 'alice');
is($state, 'succeeded', 'run with a remote sql node succeeded');
is(q1("SELECT outputs::text FROM taskflow.node_run_history WHERE run_id = $run AND node = 'remote'"),
	'{"q": "O\'Hara", "z": null, "who": "alice"}', 'option "server": outputs of the remote script');
is(q1("SELECT v || '|' || coalesce(n::text, 'null') FROM public.sink WHERE node = 'remote'"), "alice/O'Hara|null",
	'remote outputs reach the downstream node');

# option "database": run in another database of the cluster, recorded here
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('ov6');
SELECT taskflow.add_node('ov6', 'there', 'sql', $$SELECT current_database() AS db, 6 AS n$$,
  options => '{"database": "other"}');
SELECT taskflow.add_node('ov6', 'use', 'sql', $$INSERT INTO public.sink VALUES ('xdb', ${there.db:literal}, ${there.n})$$,
  after => ARRAY['there']);
});
($run, $state) = TaskflowTest->run_and_wait($node, 'ov6', user => 'alice');
is($state, 'succeeded', 'run with a cross-database sql node succeeded');
is(q1("SELECT outputs::text FROM taskflow.node_run_history WHERE run_id = $run AND node = 'there'"),
	'{"n": "6", "db": "other"}', 'option "database": outputs passed back and recorded');
is(q1("SELECT v || '|' || n FROM public.sink WHERE node = 'xdb'"), 'other|6',
	'cross-database outputs reach the downstream node');

# ---------------------------------------------------------------- check nodes
$node->safe_psql('postgres', q{
CREATE TABLE public.loads (day date, n int);
GRANT SELECT ON public.loads TO alice;
SET ROLE alice;
SELECT taskflow.create_flow('chk');
SELECT taskflow.add_node('chk', 'rows', 'check_rows',
  options => '{"table": "public.loads", "column": "day", "poll_interval": "2 seconds"}');
SELECT taskflow.add_node('chk', 'flow', 'check_flow',
  options => '{"flow": "ov", "poll_interval": "200 ms"}');
SELECT taskflow.add_node('chk', 'done', 'sql', $$INSERT INTO public.sink VALUES ('chk', '${bizdate}', 0)$$,
  after => ARRAY['rows', 'flow']);
});
# ov succeeded for 2026-03-02 (above); loads gets its rows a little later
my $crun = TaskflowTest->run_flow($node, 'chk', bizdate => '2026-03-02', user => 'alice');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) >= 2 FROM taskflow.node_runs WHERE run_id = $crun AND state IN ('running', 'retrying', 'succeeded')", 60),
	'check nodes started');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'succeeded' FROM taskflow.node_run_history WHERE run_id = $crun AND node = 'flow'", 60),
	'check_flow succeeded: flow ov has a succeeded run for that bizdate');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'retrying' AND error LIKE 'waiting: condition false%' FROM taskflow.node_run_history WHERE run_id = $crun AND node = 'rows'", 60),
	'check_rows keeps waiting (and gives its worker back) while the table has no rows for the day');
$node->safe_psql('postgres', q{INSERT INTO public.loads VALUES ('2026-03-01', 1), ('2026-03-02 00:00', 1)});
is(TaskflowTest->wait_run($node, $crun), 'succeeded', 'check_rows succeeded once rows for the bizdate arrived');
is(q1("SELECT count(*) FROM public.sink WHERE node = 'chk' AND v = '2026-03-02'"), '1', 'the downstream node ran');

# timeouts; a stranger's flow is no flow
$node->safe_psql('postgres', q{
SET ROLE bob;
SELECT taskflow.create_flow('bobs');
});
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('chk2');
SELECT taskflow.add_node('chk2', 'rows', 'check_rows',
  options => '{"table": "public.loads", "where": "day = ${bizdate:literal} AND n > 5", "poll_interval": "200 ms"}',
  timeout => '2 seconds');
SELECT taskflow.add_node('chk2', 'flow', 'check_flow',
  options => '{"flow": "ov", "poll_interval": "200 ms"}', timeout => '2 seconds');
});
($ret, $out, $err) = $node->psql('postgres',
	q{SET ROLE alice; SELECT taskflow.add_node('chk2', 'strange', 'check_flow', options => '{"flow": "bobs"}')});
like($err, qr/flow "bobs" does not exist/, 'check_flow on a stranger\'s flow: "does not exist"');
($run, $state) = TaskflowTest->run_and_wait($node, 'chk2', bizdate => '2026-03-09', user => 'alice');
is($state, 'failed', 'checks that never hold fail');
is(q1("SELECT string_agg(node || '=' || state || ':' || (error ~ ('^' || kind || ' node \"' || node || '\" timed out after 2000 ms')), ',' ORDER BY node) FROM taskflow.node_run_history WHERE run_id = $run"),
	'flow=failed:true,rows=failed:true', 'both check nodes timed out (the error names the kind)');
# the flow check at run time runs as the owner: a flow that became
# invisible (owner changed to bob) is "does not exist", not a hang
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('mine');
SELECT taskflow.create_flow('chk3');
SELECT taskflow.add_node('chk3', 'flow', 'check_flow', options => '{"flow": "mine", "poll_interval": "200 ms"}', timeout => '30 seconds');
RESET ROLE;
GRANT bob TO alice;
SET ROLE alice;
SELECT taskflow.alter_flow('mine', owner => 'bob');
RESET ROLE;
REVOKE bob FROM alice;
});
($run, $state) = TaskflowTest->run_and_wait($node, 'chk3', user => 'alice');
like(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'flow'"),
	qr/flow "mine" does not exist/, 'at run time, a flow the owner cannot see does not exist');

$node->stop;
done_testing();
