# The scheduler (and the alert worker) is a bootstrap-superuser session in
# every database with taskflow; its search_path came from the database's
# settings, which the database's owner controls (ALTER DATABASE ... SET
# search_path; public is the owner's schema).  1.3's warm-ahead query
# compared "a.oid = f.owner" (oid = regrole): an operator =(oid, regrole)
# of the owner's, an exact match, beat pg_catalog's and ran as superuser
# at every due time; a schema put before pg_catalog on the database's
# search_path took over now() and <= too.  (1.4 review: a database owner
# became superuser.)  Now the scheduler and the alert worker pin
# search_path = pg_catalog, pg_temp and the query is qualified.  Last, the
# same kind of attack on a node worker's book-keeping (see below).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('schedpath', conf => "taskflow.history_purge_interval = 1\n");

$node->safe_psql('postgres', q{
CREATE ROLE dbo LOGIN;
CREATE DATABASE evildb OWNER dbo;
});
$node->safe_psql('evildb', 'CREATE EXTENSION taskflow');
TaskflowTest->wait_scheduler($node, 'evildb');

# the database owner's traps: every call records current_user
$node->safe_psql('evildb', q{
SET ROLE dbo;
CREATE TABLE public.pwned (who name, what text);
GRANT INSERT ON public.pwned TO PUBLIC;
CREATE FUNCTION public.tf_eq(oid, regrole) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.pwned VALUES (current_user, '=(oid, regrole)');
  RETURN $1 OPERATOR(pg_catalog.=) $2::oid;
END $$;
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regrole, FUNCTION = public.tf_eq);
CREATE SCHEMA evil;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.pwned VALUES (current_user, 'now()');
  RETURN pg_catalog.now();
END $$;
CREATE FUNCTION evil.tf_le(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.pwned VALUES (current_user, '<=(timestamptz, timestamptz)');
  RETURN $1 OPERATOR(pg_catalog.<=) $2;
END $$;
CREATE OPERATOR evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.tf_le);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
ALTER DATABASE evildb SET search_path = evil, pg_catalog, public;
});

# the traps are armed: in the owner's own session they fire
is($node->safe_psql('evildb', q{SET ROLE dbo; SELECT 1::oid = 'dbo'::regrole, now() <= now(); SELECT string_agg(DISTINCT what, ', ' ORDER BY what) FROM public.pwned WHERE who = 'dbo'}),
	"f|t\n<=(timestamptz, timestamptz), =(oid, regrole), now()", 'the traps fire in a session with that search_path');

# a new scheduler (reads the database's settings), a flow due soon (warm
# workers started ahead of it: the 1.3 query), purges every second
$node->restart;
TaskflowTest->wait_scheduler($node, 'evildb');
$node->safe_psql('evildb', q{
SET ROLE dbo;
SELECT taskflow.create_flow('soon', schedule => 'every 2 seconds');
SELECT taskflow.add_node('soon', 'n', 'sql', 'SELECT 1');
});
ok(TaskflowTest->poll($node, 'evildb',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = 'evildb' AND application_name = 'taskflow idle worker'}, 60),
	'a warm worker was started ahead of the due flow (the scheduler ran that query)');
ok(TaskflowTest->poll($node, 'evildb',
	q{SELECT count(*) > 0 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'soon' AND r.state = 'succeeded'}, 90),
	'the flow ran (scheduler passes, purges)');
is($node->safe_psql('evildb', q{SELECT coalesce(string_agg(DISTINCT who || ': ' || what, ', '), '') FROM public.pwned WHERE who <> 'dbo'}),
	'', "nothing of the database owner's ran as another role (the scheduler's superuser)");
is($node->safe_psql('evildb', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'dbo'}), 'f', 'dbo is no superuser');

# A node worker records an sql node's outputs as superuser, in the node's
# transaction, under the search_path the node left: a flow owner's node
# that put its own schema before pg_catalog got its domain "jsonb" (CHECK
# calling its function) for the cast $2::jsonb of that call, run as
# superuser.  The cast is qualified now.
$node->safe_psql('postgres', q{
CREATE ROLE eve LOGIN;
CREATE SCHEMA evil AUTHORIZATION eve;
CREATE TABLE public.pwned (who name);
GRANT INSERT ON public.pwned TO PUBLIC;
SET ROLE eve;
CREATE FUNCTION evil.trap(pg_catalog.jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.pwned VALUES (current_user); RETURN true; END $$;
CREATE DOMAIN evil.jsonb AS pg_catalog.jsonb CHECK (evil.trap(VALUE));
SELECT taskflow.create_flow('dom');
SELECT taskflow.add_node('dom', 'n', 'sql', 'SET search_path = evil, pg_catalog; SELECT 1 AS x');
});
is($node->safe_psql('postgres', q{SET ROLE eve; SET search_path = evil, pg_catalog; SELECT '{}'::jsonb; RESET ROLE; SELECT string_agg(who, ',') FROM public.pwned}),
	"{}
eve", 'the domain trap fires in a session with that search_path');
$node->safe_psql('postgres', 'TRUNCATE public.pwned');
my ($run, $state) = TaskflowTest->run_and_wait($node, 'dom', user => 'eve');
is($state, 'succeeded', 'the node ran');
is($node->safe_psql('postgres', q{SELECT outputs FROM taskflow.node_runs WHERE run_id = } . $run),
	'{"x": "1"}', 'its outputs were recorded');
is($node->safe_psql('postgres', q{SELECT coalesce(string_agg(who, ','), '') FROM public.pwned}),
	'', "the owner's domain check did not run as superuser (nor at all)");
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'eve'}), 'f', 'eve is no superuser');

done_testing();
