# Engine hardening (review fixes):
#  - a node cannot get code run as the superuser at commit (deferred
#    constraint triggers, WITH HOLD cursors) for login and NOLOGIN owners;
#  - a node with retries >= 3 gets all its attempts (the "never started"
#    counter counts dispatches of one attempt, not of the node run);
#  - a node run that was canceled while its worker ran rolls the work back;
#  - the superuser-run lookup of a cross-database node cannot be redirected
#    by an owner's search_path (operators / functions in its own schema);
#  - a DROP DATABASE that fails its permission check does not stop the
#    scheduler of that database;
#  - DROP EXTENSION + CREATE EXTENSION in quick succession keeps a scheduler.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('hard');
$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE team NOLOGIN;
ALTER ROLE team SET taskflow.allow_group_owner = on;
CREATE ROLE bob LOGIN;
GRANT team TO alice;
CREATE SCHEMA s AUTHORIZATION alice;
GRANT USAGE, CREATE ON SCHEMA s TO team;
CREATE TABLE public.seen (what text, who text);
GRANT INSERT, SELECT ON public.seen TO PUBLIC;
CREATE SEQUENCE public.tries;
GRANT USAGE ON public.tries TO PUBLIC;
CREATE TABLE public.work (x int);
GRANT INSERT, SELECT ON public.work TO PUBLIC;
});

# --- 1. nothing of the node's runs as superuser at commit
# The trigger function and the cursor's function record current_user and try
# to make their caller a superuser; both run at commit of the node.
for my $owner ('alice', 'team')
{
	$node->safe_psql('postgres', qq{
SET ROLE alice;
CREATE FUNCTION s.${owner}_escalate() RETURNS int LANGUAGE plpgsql AS \$f\$
BEGIN
    INSERT INTO public.seen VALUES ('$owner', current_user);
    BEGIN
        EXECUTE 'ALTER ROLE $owner SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN 1;
END \$f\$;
CREATE FUNCTION s.${owner}_trg() RETURNS trigger LANGUAGE plpgsql AS \$f\$
BEGIN PERFORM s.${owner}_escalate(); RETURN NULL; END \$f\$;
SELECT taskflow.create_flow('${owner}_deferred', owner => '$owner');
SELECT taskflow.add_node('${owner}_deferred', 'n', 'sql', \$b\$
  CREATE TABLE s.${owner}_t (x int);
  CREATE CONSTRAINT TRIGGER ${owner}_ct AFTER INSERT ON s.${owner}_t
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION s.${owner}_trg();
  INSERT INTO s.${owner}_t VALUES (1);
\$b\$);
SELECT taskflow.create_flow('${owner}_cursor', owner => '$owner');
SELECT taskflow.add_node('${owner}_cursor', 'n', 'sql', \$b\$
  DECLARE c CURSOR WITH HOLD FOR SELECT s.${owner}_escalate() FROM generate_series(1, 1);
\$b\$);
});
	for my $flow ("${owner}_deferred", "${owner}_cursor")
	{
		my ($run, $state) = TaskflowTest->run_and_wait($node, $flow, user => 'alice');
		is($state, 'succeeded', "$flow: run succeeded");
	}
	is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT who, ',') FROM public.seen WHERE what = '$owner'"),
		$owner, "$owner: commit-time code of the node ran as the owner");
	is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = '$owner'"),
		'f', "$owner: did not become superuser");
}

# --- 2. retries >= 3: every attempt runs
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('many_retries');
SELECT taskflow.add_node('many_retries', 'flaky', 'sql', $$
  SELECT 1 / (nextval('public.tries') / 5)   -- division by zero 4 times
$$, retries => 5, retry_delay => '0');
});
my ($run, $state) = TaskflowTest->run_and_wait($node, 'many_retries', user => 'alice');
is($state, 'succeeded', 'node with 4 failing attempts and retries => 5 succeeds');
is($node->safe_psql('postgres', "SELECT attempts || ',' || state FROM taskflow.node_run_history WHERE run_id = $run"),
	'5,succeeded', 'five attempts recorded');

# --- 3. a node run canceled while its worker runs: the work is rolled back
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('late_cancel');
SELECT taskflow.add_node('late_cancel', 'n', 'sql', $$
  INSERT INTO public.work VALUES (1); SELECT pg_sleep(2)
$$);
});
$run = TaskflowTest->run_flow($node, 'late_cancel', user => 'alice');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.node_runs WHERE run_id = $run", 30),
	'late_cancel: node running');
# what a cancel_run that missed the worker leaves behind (worker not terminated)
$node->safe_psql('postgres', qq{
UPDATE taskflow.runs SET state = 'canceled', finished_at = now() WHERE id = $run;
UPDATE taskflow.node_runs SET state = 'canceled', finished_at = now() WHERE run_id = $run});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND state = 'active'", 30),
	'late_cancel: worker finished');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.work'), '0',
	'the work of a node run canceled while running was rolled back');
is($node->safe_psql('postgres', "SELECT state FROM taskflow.node_runs WHERE run_id = $run"),
	'canceled', 'node run stays canceled');

# --- 4. cross-database lookup is immune to the owner's search_path
$node->safe_psql('postgres', q{
CREATE DATABASE db2;
GRANT CONNECT ON DATABASE db2 TO alice;
ALTER ROLE alice SET search_path = s, pg_catalog;
});
$node->safe_psql('db2', q{CREATE TABLE public.hits (who text); GRANT INSERT ON public.hits TO alice;});
$node->safe_psql('postgres', q{
SET ROLE alice;
CREATE FUNCTION s.int4lt(int4, int4) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.seen VALUES ('operator', current_user);
    RETURN $1 OPERATOR(pg_catalog.<) $2;
END $f$;
CREATE OPERATOR s.< (LEFTARG = int4, RIGHTARG = int4, FUNCTION = s.int4lt);
CREATE FUNCTION s.has_database_privilege(oid, oid, text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.seen VALUES ('function', current_user);
    RETURN pg_catalog.has_database_privilege($1, $2, $3);
END $f$;
SELECT taskflow.create_flow('xdb');
SELECT taskflow.add_node('xdb', 'n', 'sql', $$INSERT INTO public.hits VALUES (current_user)$$,
                         options => '{"database": "db2"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'xdb', user => 'alice');
is($state, 'succeeded', 'cross-database node succeeded');
is($node->safe_psql('db2', 'SELECT string_agg(who, \',\') FROM public.hits'), 'alice',
	'cross-database node ran as the owner');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.seen WHERE what IN ('operator', 'function')"),
	'0', 'the owner\'s operator/function shadowing pg_catalog was not used by the superuser lookup');
$node->safe_psql('postgres', 'ALTER ROLE alice RESET search_path');

# --- 5. a DROP DATABASE refused for lack of ownership does not stop the scheduler
$node->safe_psql('db2', 'CREATE EXTENSION taskflow');
TaskflowTest->wait_scheduler($node, 'db2');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' AND datname = 'db2'");
my ($ret, $out, $err) = $node->psql('postgres', 'SET ROLE bob; DROP DATABASE db2');
like($err, qr/must be owner of database db2/, 'bob may not drop db2');
is($node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' AND datname = 'db2'"),
	$pid, 'the scheduler of db2 was not stopped by the refused DROP DATABASE');

# --- 6. DROP + CREATE EXTENSION in quick succession: a scheduler keeps running
# (a statement of the cycle that fails is tried again, at most twice, and
# its error shown: one CI run of 1.7 died here once, and the error was not
# kept; what this part checks is the scheduler after the cycles)
sub retried
{
	my ($sql) = @_;
	for my $try (1 .. 3)
	{
		my ($rc, $o, $e) = $node->psql('db2', $sql);
		return if $rc == 0;
		diag("$sql (try $try): $e");
	}
	BAIL_OUT("$sql failed three times");
}
for my $i (1 .. 20)
{
	retried('DROP EXTENSION taskflow');
	retried('CREATE EXTENSION taskflow');
}
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' AND datname = 'db2'", 30),
	'one scheduler in db2 after quick DROP/CREATE EXTENSION cycles');
$node->safe_psql('db2', q{
SELECT taskflow.create_flow('after_cycles');
SELECT taskflow.add_node('after_cycles', 'n', 'sql', 'SELECT 1');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'after_cycles', db => 'db2');
is($state, 'succeeded', 'db2 runs flows after the cycles');

$node->stop;
done_testing();
