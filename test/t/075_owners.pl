# Locked-out owners: a flow's node runs only while its owner could connect
# to the database.  NOLOGIN, CONNECTION LIMIT 0, no CONNECT (revoked from
# PUBLIC, granted to the others), VALID UNTIL in the past and a dropped role
# each refuse the node before any of its code runs: failed, no retry, the
# rule and a SQLSTATE in node_run history, the run failed.  A group role
# owns running flows only while a superuser set taskflow.allow_group_owner
# for it (ALTER ROLE ... SET; RESET revokes it); non-superusers cannot set
# it.  A superuser-owned flow still runs.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('owners');

$node->safe_psql('postgres', q{
CREATE TABLE public.log (flow text, who text);
GRANT INSERT ON public.log TO PUBLIC;
CREATE ROLE u_ok LOGIN;
CREATE ROLE u_nologin LOGIN;
CREATE ROLE u_connlimit LOGIN;
CREATE ROLE u_noconnect LOGIN;
CREATE ROLE u_expired LOGIN;
CREATE ROLE u_gone LOGIN;
CREATE ROLE team NOLOGIN;
CREATE ROLE mgr LOGIN CREATEROLE;
GRANT team TO u_ok;
});
for my $o (qw(u_ok u_nologin u_connlimit u_noconnect u_expired u_gone team postgres))
{
	$node->safe_psql('postgres', qq{
SELECT taskflow.create_flow('f_$o', owner => '$o');
SELECT taskflow.add_node('f_$o', 'n', 'sql', \$\$INSERT INTO public.log VALUES ('f_$o', current_user)\$\$,
                         retries => 3, retry_delay => '1 second');
SELECT taskflow.add_node('f_$o', 'after', 'sql', 'SELECT 1', after => ARRAY['n']);
});
}

# everybody (but the group) runs before the lock-outs
for my $o (qw(u_ok u_nologin u_connlimit u_noconnect u_expired u_gone postgres))
{
	my ($run, $state) = TaskflowTest->run_and_wait($node, "f_$o");
	is($state, 'succeeded', "$o: runs while it may connect");
}

# lock them out
$node->safe_psql('postgres', q{
ALTER ROLE u_nologin NOLOGIN;
ALTER ROLE u_connlimit CONNECTION LIMIT 0;
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
GRANT CONNECT ON DATABASE postgres TO u_ok, u_nologin, u_connlimit, u_expired, team, mgr;
ALTER ROLE u_expired VALID UNTIL '2000-01-01';
DROP ROLE u_gone;
TRUNCATE public.log;
});

sub refused
{
	my ($o, $code, $re, $what) = @_;
	my ($run, $state) = TaskflowTest->run_and_wait($node, "f_$o");
	is($state, 'failed', "$what: run failed");
	is($node->safe_psql('postgres',
		"SELECT state || ' ' || attempts || ' ' || sqlstate FROM taskflow.node_run_history WHERE run_id = $run AND node = 'n'"),
		"failed 1 $code", "$what: node failed at once (no retry), SQLSTATE $code");
	like($node->safe_psql('postgres',
		"SELECT error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'n'"),
		$re, "$what: the message names the rule");
	is(TaskflowTest->node_states($node, $run), 'after=upstream_failed,n=failed',
		"$what: downstream upstream_failed");
	is($node->safe_psql('postgres', "SELECT count(*) FROM public.log WHERE flow = 'f_$o'"),
		'0', "$what: none of the node's code ran");
	return $run;
}

refused('u_nologin', '28000', qr/flow owner "u_nologin" is not permitted to log in \(NOLOGIN\)/, 'NOLOGIN');
refused('u_connlimit', '28000', qr/flow owner "u_connlimit" has CONNECTION LIMIT 0/, 'CONNECTION LIMIT 0');
refused('u_noconnect', '42501', qr/flow owner "u_noconnect" has no CONNECT privilege on database "postgres"/,
	'no CONNECT');
refused('u_expired', '28000', qr/flow owner "u_expired" expired \(VALID UNTIL 2000-01-01/, 'VALID UNTIL past');
refused('u_gone', '28000', qr/flow owner \(role oid \d+\) does not exist/, 'dropped owner');
refused('team', '28000', qr/flow owner "team" is not permitted to log in \(NOLOGIN\).*taskflow\.allow_group_owner/,
	'group role without allow_group_owner');
ok($node->log_contains(qr/taskflow node f_u_nologin\.n \(run \d+\): refused: flow owner "u_nologin"/),
	'refusal logged');

# still fine: a login role with CONNECT, and a superuser
my ($run, $state) = TaskflowTest->run_and_wait($node, 'f_u_ok');
is($state, 'succeeded', 'login owner with CONNECT granted still runs');
($run, $state) = TaskflowTest->run_and_wait($node, 'f_postgres');
is($state, 'succeeded', 'superuser-owned flow runs');

# non-superusers cannot allow a group role (nor themselves)
my ($ret, $out, $err) = $node->psql('postgres',
	'SET ROLE u_ok; ALTER ROLE u_ok SET taskflow.allow_group_owner = on');
like($err, qr/permission denied to set parameter "taskflow.allow_group_owner"/,
	'a non-superuser cannot set allow_group_owner on its own role');
($ret, $out, $err) = $node->psql('postgres',
	'SET ROLE mgr; ALTER ROLE team SET taskflow.allow_group_owner = on');
like($err, qr/permission denied/, 'a CREATEROLE role cannot set it on a group role');
($ret, $out, $err) = $node->psql('postgres', 'SET ROLE u_ok; SET taskflow.allow_group_owner = on');
like($err, qr/permission denied to set parameter/, 'nor in a session');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_db_role_setting WHERE setrole IN ('team'::regrole, 'u_ok'::regrole)}),
	'0', 'nothing stored');

# a superuser allows the group (all databases), then revokes it (RESET)
$node->safe_psql('postgres', 'ALTER ROLE team SET taskflow.allow_group_owner = on');
($run, $state) = TaskflowTest->run_and_wait($node, 'f_team');
is($state, 'succeeded', 'group owner allowed by a superuser: runs');
is($node->safe_psql('postgres', "SELECT who FROM public.log WHERE flow = 'f_team'"), 'team',
	'as the group role');
$node->safe_psql('postgres', 'ALTER ROLE team RESET taskflow.allow_group_owner');
($run, $state) = TaskflowTest->run_and_wait($node, 'f_team');
is($state, 'failed', 'RESET revokes it');
# per database: set for another database only -> still refused here
$node->safe_psql('postgres', q{CREATE DATABASE other;
ALTER ROLE team IN DATABASE other SET taskflow.allow_group_owner = on});
($run, $state) = TaskflowTest->run_and_wait($node, 'f_team');
is($state, 'failed', 'allowed in another database only: refused here');
$node->safe_psql('postgres', q{ALTER ROLE team IN DATABASE postgres SET taskflow.allow_group_owner = on});
($run, $state) = TaskflowTest->run_and_wait($node, 'f_team');
is($state, 'succeeded', 'allowed in this database: runs');
$node->safe_psql('postgres', q{ALTER ROLE team IN DATABASE postgres SET taskflow.allow_group_owner = off;
ALTER ROLE team SET taskflow.allow_group_owner = on});
($run, $state) = TaskflowTest->run_and_wait($node, 'f_team');
is($state, 'failed', 'the database-specific setting wins over the all-databases one');

# the lock-out lifted: runs again
$node->safe_psql('postgres', 'ALTER ROLE u_nologin LOGIN; ALTER ROLE u_connlimit CONNECTION LIMIT -1');
($run, $state) = TaskflowTest->run_and_wait($node, 'f_u_nologin');
is($state, 'succeeded', 'LOGIN again: runs again');
($run, $state) = TaskflowTest->run_and_wait($node, 'f_u_connlimit');
is($state, 'succeeded', 'CONNECTION LIMIT lifted: runs again');

$node->stop;
done_testing();
