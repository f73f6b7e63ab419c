# Cross-database sql nodes (option "database"): a flow defined in database
# postgres whose nodes write into database db2.  The outcome is recorded in
# the flow's database; the script runs in db2 as the flow owner (login and
# NOLOGIN owners), in one transaction; errors and SQLSTATEs come back;
# retries, timeout and cancel work; an owner without CONNECT gets a clear
# error.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('crossdb');

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE team NOLOGIN;
ALTER ROLE team SET taskflow.allow_group_owner = on;
CREATE ROLE carol LOGIN;
GRANT team TO alice;
CREATE DATABASE db2;
CREATE DATABASE db3;
REVOKE CONNECT ON DATABASE db3 FROM PUBLIC;
});
$node->safe_psql('db2', q{
CREATE TABLE public.t (node text, who text, sess text, bizdate date, db text,
                       at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.t TO alice, team;
CREATE SEQUENCE public.s;
GRANT USAGE ON SEQUENCE public.s TO alice;
});

# 1. a login owner: the row lands in db2, written as alice; the state is
#    recorded in postgres; a downstream local node runs afterwards
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('xdb');
SELECT taskflow.add_node('xdb', 'remote', 'sql',
  $$INSERT INTO public.t(node, who, sess, bizdate, db)
    VALUES ('remote', current_user, session_user, '${bizdate}', current_database())$$,
  options => '{"database": "db2"}');
SELECT taskflow.add_node('xdb', 'local', 'sql', $$SELECT current_database()$$,
  after => ARRAY['remote']);
});
my ($run, $state) = TaskflowTest->run_and_wait($node, 'xdb', bizdate => '2024-07-01', user => 'alice');
is($state, 'succeeded', 'cross-database run succeeded');
is(TaskflowTest->node_states($node, $run), 'local=succeeded,remote=succeeded',
	'both nodes recorded succeeded in the flow database');
is($node->safe_psql('db2', q{SELECT who || ',' || sess || ',' || bizdate || ',' || db FROM public.t WHERE node = 'remote'}),
	'alice,alice,2024-07-01,db2', 'row written in db2 as the owner, variables rendered');
is($node->safe_psql('postgres', "SELECT rows || '|' || (rendered LIKE '%2024-07-01%') || '|' || (log LIKE '%running in database \"db2\"%') FROM taskflow.node_run_history WHERE run_id = $run AND node = 'remote'"),
	'1|true|true', 'rows, rendered text and log recorded');
is($node->safe_psql('postgres', "SELECT bool_and(l.started_at >= r.finished_at) FROM taskflow.node_run_history r, taskflow.node_run_history l WHERE r.run_id = $run AND l.run_id = $run AND r.node = 'remote' AND l.node = 'local'"),
	't', 'downstream node started after the cross-database node was recorded');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_tables WHERE tablename = 't'}), '0',
	'nothing was written in the flow database');

# 2. a NOLOGIN group owner: superuser connection switched to the owner
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('xdb_team', owner => 'team');
SELECT taskflow.add_node('xdb_team', 'remote', 'sql',
  $$INSERT INTO public.t(node, who, sess, db) VALUES ('team', current_user, session_user, current_database())$$,
  options => '{"database": "db2"}');
SELECT taskflow.add_node('xdb_team', 'escape', 'sql', $$SET ROLE alice$$,
  options => '{"database": "db2"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'xdb_team', user => 'alice');
is($node->safe_psql('db2', q{SELECT who || ',' || (sess <> 'team') || ',' || db FROM public.t WHERE node = 'team'}),
	'team,true,db2', 'NOLOGIN owner: current_user is the owner in db2');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'escape'"),
	qr/^42501 /, 'NOLOGIN owner: SET ROLE is refused in db2 too');

# 3. failures: error + SQLSTATE recorded; attempts = 1 + retries; the script
#    rolled back in db2
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('xdb_fail');
SELECT taskflow.add_node('xdb_fail', 'boom', 'sql',
  $$INSERT INTO public.t(node) VALUES ('boom'); SELECT 1/0$$,
  options => '{"database": "db2"}', retries => 1, retry_delay => '0');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'xdb_fail', user => 'alice');
is($state, 'failed', 'failing cross-database node fails the run');
is($node->safe_psql('postgres', "SELECT attempts || ',' || sqlstate || ',' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	'2,22012,division by zero', 'error, SQLSTATE and attempts recorded in the flow database');
is($node->safe_psql('db2', q{SELECT count(*) FROM public.t WHERE node = 'boom'}), '0',
	'the failed script rolled back in db2');

# 4. retries honoured: the first attempt fails, the second succeeds
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('xdb_retry');
SELECT taskflow.add_node('xdb_retry', 'flaky', 'sql',
  $$SELECT 1 / (nextval('public.s') - 1);
    INSERT INTO public.t(node, who) VALUES ('flaky', current_user)$$,
  options => '{"database": "db2"}', retries => 2, retry_delay => '100 ms');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'xdb_retry', user => 'alice');
is($state, 'succeeded', 'flaky cross-database node succeeded on retry');
is($node->safe_psql('postgres', "SELECT attempts || ',' || state FROM taskflow.node_run_history WHERE run_id = $run"),
	'2,succeeded', 'two attempts recorded');
is($node->safe_psql('db2', q{SELECT count(*) FROM public.t WHERE node = 'flaky'}), '1',
	'exactly one committed row in db2');

# 5. the owner has no CONNECT on the target database
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('xdb_noconnect', owner => 'carol');
SELECT taskflow.add_node('xdb_noconnect', 'n', 'sql', 'SELECT 1', options => '{"database": "db3"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'xdb_noconnect');
is($state, 'failed', 'owner without CONNECT: run failed');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	qr/^42501 flow owner "carol" has no CONNECT privilege on database "db3"/,
	'clear CONNECT error');

# 6. timeout and cancel reach the worker in db2
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('xdb_slow');
SELECT taskflow.add_node('xdb_slow', 'sleepy', 'sql', $$SELECT pg_sleep(30)$$,
  options => '{"database": "db2"}', timeout => '1 second');
SELECT taskflow.create_flow('xdb_cancel');
SELECT taskflow.add_node('xdb_cancel', 'long', 'sql', $$SELECT pg_sleep(60)$$,
  options => '{"database": "db2"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'xdb_slow', user => 'alice');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	qr/^57014 node timed out after 1000 ms/, 'timeout enforced in db2');
$run = TaskflowTest->run_flow($node, 'xdb_cancel', user => 'alice');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'db2' AND query LIKE 'taskflow node xdb_cancel.long run $run in db2'", 30),
	'cross-database worker visible in db2');
$node->safe_psql('postgres', "SELECT taskflow.cancel_run($run)");
is(TaskflowTest->wait_run($node, $run), 'canceled', 'cross-database run canceled');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND state = 'active'", 10),
	'both workers terminated');

# 7. DROP DATABASE of the target is not blocked by a running node
$run = TaskflowTest->run_flow($node, 'xdb_cancel', user => 'alice');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'db2' AND backend_type = 'taskflow node'", 30),
	'cross-database worker running again');
$node->safe_psql('postgres', 'DROP DATABASE db2');
is(TaskflowTest->wait_run($node, $run), 'failed', 'run failed after its target database was dropped');

$node->stop;
done_testing();
