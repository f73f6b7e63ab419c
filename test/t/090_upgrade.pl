# Release upgrade: install every released taskflow version (the frozen
# scripts: 1.0.0, 1.1.0, 1.2.0, 1.3.0, 1.4.0, 1.5.0, 1.6.0, 1.7.0) in a database of its own, fill each with flows and
# history, run ALTER EXTENSION taskflow UPDATE (from 1.0.0 PostgreSQL chains
# 1.0.0--1.1.0 and 1.1.0--<new>), and check that
#   - the scheduler does not run flows while the catalog is older than the
#     library (it logs a WARNING with a hint instead),
#   - after the update, definitions and history are intact and flows run,
#   - the updated schema is exactly the schema of a fresh install (functions
#     with their bodies and settings, tables, constraints, indexes,
#     policies, triggers, views, privileges).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('upgrade', extension => 0);
my $new = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'taskflow'");
my $newre = quotemeta($new);
isnt($new, '1.7.0', 'the library is newer than the last release');

my $describe = q{
	WITH ns AS (SELECT 'taskflow'::regnamespace AS oid)
	SELECT string_agg(line, E'\n' ORDER BY line) FROM (
	  SELECT 'function ' || p.oid::regprocedure::text || ' returns ' || pg_get_function_result(p.oid)
	         || ' args ' || pg_get_function_arguments(p.oid)
	         || ' lang ' || l.lanname || ' ' || p.provolatile::text || p.proisstrict::text || p.prosecdef::text
	         || ' config ' || coalesce(p.proconfig::text, '-') || ' acl ' || coalesce(p.proacl::text, '-')
	         || ' md5 ' || md5(p.prosrc) AS line
	    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang, ns WHERE p.pronamespace = ns.oid
	  UNION ALL
	  SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' rls ' || c.relrowsecurity::text
	         || ' acl ' || coalesce(c.relacl::text, '-')
	    FROM pg_class c, ns WHERE c.relnamespace = ns.oid AND c.relkind IN ('r', 'v', 'S')
	  UNION ALL
	  SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
	         || ' notnull ' || a.attnotnull::text || ' ' || a.attidentity::text
	         || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
	         || ' acl ' || coalesce(a.attacl::text, '-') || ' pos ' || a.attnum
	    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum, ns
	   WHERE c.relnamespace = ns.oid AND c.relkind IN ('r', 'v')
	  UNION ALL
	  SELECT 'constraint ' || k.conrelid::regclass::text || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
	    FROM pg_constraint k, ns WHERE k.connamespace = ns.oid
	  UNION ALL
	  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
	    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid, ns WHERE c.relnamespace = ns.oid
	  UNION ALL
	  SELECT 'policy ' || tablename || ' ' || policyname || ' ' || cmd || ' ' || roles::text || ' '
	         || coalesce(qual, '-') || ' ' || coalesce(with_check, '-')
	    FROM pg_policies WHERE schemaname = 'taskflow'
	  UNION ALL
	  SELECT 'trigger ' || pg_get_triggerdef(t.oid)
	    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid, ns
	   WHERE c.relnamespace = ns.oid AND NOT t.tgisinternal
	  UNION ALL
	  SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid) || ' ' || coalesce(c.reloptions::text, '-')
	    FROM pg_class c, ns WHERE c.relnamespace = ns.oid AND c.relkind = 'v'
	  UNION ALL
	  SELECT 'fdw ' || w.fdwname || ' ' || w.fdwvalidator::regproc::text || ' ' || coalesce(w.fdwhandler::regproc::text, '-')
	    FROM pg_foreign_data_wrapper w
	  UNION ALL
	  SELECT 'member ' || pg_describe_object(classid, objid, objsubid)
	    FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	     AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'taskflow')
	) s};

$node->safe_psql('postgres', 'CREATE ROLE alice LOGIN');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION taskflow');
my $fresh = $node->safe_psql('fresh', $describe);
ok(length($fresh) > 10000, 'the schema description is not empty');

sub upgrade_from
{
my ($db, $from) = @_;
$node->safe_psql('postgres', "CREATE DATABASE $db");

$node->safe_psql($db, "CREATE EXTENSION taskflow VERSION '$from'");
$node->safe_psql($db, q{
	CREATE TABLE public.t (bizdate date, note text);
	GRANT ALL ON public.t TO alice;
});
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'taskflow'"),
	$from, "$db: version $from installed");

# fill the old catalog: a flow with variables, a chain of nodes, history
$node->safe_psql($db, q{
	SET ROLE alice;
	SELECT taskflow.create_flow('daily', schedule => '0 5 * * *', timezone => 'UTC');
	SELECT taskflow.set_variable('daily', 'year', 'yyyy of bizdate');
	SELECT taskflow.add_node('daily', 'a', 'sql', $$INSERT INTO public.t VALUES (${bizdate:literal}, 'a ${year}')$$);
	SELECT taskflow.add_node('daily', 'b', 'sql', $$INSERT INTO public.t VALUES (${bizdate:literal}, 'b')$$, after => ARRAY['a']);
	SELECT taskflow.create_flow('manual_only');
	SELECT taskflow.add_node('manual_only', 'x', 'sql', 'SELECT 1');
});
# history of the old era (written as the old engine would have)
$node->safe_psql($db, q{
	INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, state, created_by, started_at, finished_at)
	SELECT id, date_trunc('day', now()) - interval '19 hours', '2020-06-01', 'schedule', 'succeeded',
	       'alice'::regrole, now() - interval '19 hours', now() - interval '19 hours'
	  FROM taskflow.flows WHERE name = 'daily';
	INSERT INTO taskflow.node_runs (run_id, node_id, attempt, state, started_at, finished_at, rows, rendered)
	SELECT r.id, n.id, 1, 'succeeded', r.started_at, r.finished_at, 1, 'INSERT ...'
	  FROM taskflow.runs r JOIN taskflow.nodes n ON n.flow_id = r.flow_id;
});

# the new library does not run flows against the old catalog
my $run = $node->safe_psql($db,
	"SET ROLE alice; SELECT taskflow.run_flow('daily', '2020-06-05')");
my $fromre = quotemeta($from);
ok($node->wait_for_log(qr/database "$db" has taskflow $fromre, the library is $newre; no flow runs until the extension is updated/),
	"$db: scheduler warns about the version mismatch");
sleep 2;
is($node->safe_psql($db, "SELECT state FROM taskflow.runs WHERE id = $run"),
	'scheduled', "$db: no run starts before ALTER EXTENSION UPDATE");

$node->safe_psql($db, 'ALTER EXTENSION taskflow UPDATE');
is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'taskflow'"),
	$new, "$db: updated from $from to $new");

# the waiting run now runs, as alice
is(TaskflowTest->wait_run($node, $run, db => $db), 'succeeded', "$db: the run queued before the update succeeds after it");
is($node->safe_psql($db, "SELECT string_agg(note, ',' ORDER BY note) FROM public.t WHERE bizdate = '2020-06-05'"),
	'a 2020,b', "$db: both nodes ran with their variables");

# definitions and history survived
is($node->safe_psql($db, q{
	SELECT string_agg(f.name || ':' || f.owner::text || ':' || coalesce(f.schedule, '-') || ':' ||
	       (SELECT count(*) FROM taskflow.nodes n WHERE n.flow_id = f.id) || ':' ||
	       (SELECT count(*) FROM taskflow.edges e WHERE e.flow_id = f.id) || ':' ||
	       (SELECT count(*) FROM taskflow.variables v WHERE v.flow_id = f.id), ' ' ORDER BY f.name)
	  FROM taskflow.flows f}),
	'daily:alice:0 5 * * *:2:1:1 manual_only:alice:-:1:0:0', "$db: flows, nodes, edges, variables intact");
is($node->safe_psql($db, q{
	SET ROLE alice;
	SELECT count(*) FILTER (WHERE bizdate = '2020-06-01' AND state = 'succeeded') || '/' || count(*)
	  FROM taskflow.run_history WHERE flow = 'daily'}),
	'1/2', "$db: the 1.0.0 history is visible to the owner through run_history");
is($node->safe_psql($db, q{
	SET ROLE alice;
	SELECT rendered FROM taskflow.node_run_history
	 WHERE flow = 'daily' AND bizdate = '2020-06-01' AND node = 'a'}),
	'INSERT ...', "$db: old node run history intact");

# the API of the new version works on the updated catalog
my ($run2, $state2) = TaskflowTest->run_and_wait($node, 'manual_only', user => 'alice', db => $db);
is($state2, 'succeeded', "$db: a new run after the update succeeds");
is($node->safe_psql($db, q{
	SET ROLE alice;
	SELECT taskflow.add_node('manual_only', 'y', 'sql', 'SELECT 2', after => ARRAY['x']) > 0}),
	't', "$db: definitions can change after the update");

# the updated schema equals a fresh install of the new version

my $upgraded = $node->safe_psql($db, $describe);
if ($upgraded eq $fresh)
{
	pass("$db: the schema updated from $from equals a fresh $new install");
}
else
{
	my %u = map { $_ => 1 } split /\n/, $upgraded;
	my %f = map { $_ => 1 } split /\n/, $fresh;
	diag("only after update: $_") for grep { !$f{$_} } sort keys %u;
	diag("only in fresh install: $_") for grep { !$u{$_} } sort keys %f;
	fail("$db: the schema updated from $from equals a fresh $new install");
}

}

upgrade_from('v100', '1.0.0');
upgrade_from('v110', '1.1.0');
upgrade_from('v120', '1.2.0');
upgrade_from('v130', '1.3.0');
upgrade_from('v140', '1.4.0');
upgrade_from('v150', '1.5.0');
upgrade_from('v160', '1.6.0');
upgrade_from('v170', '1.7.0');

$node->stop;
done_testing();
