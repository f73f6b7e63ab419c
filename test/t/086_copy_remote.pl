# copy nodes with a remote PostgreSQL server: source_server / target_server
# name a postgres_fdw FOREIGN SERVER and the owner's USER MAPPING (as dblink
# reads them).  A second cluster on another port is the remote, with
# password (SCRAM) authentication for its role.  Incremental sync from it
# (three runs, identical tables), replace into it; a remote that is down, a
# wrong password, a mapping without a password and an owner without USAGE
# fail cleanly with readable errors; the password never shows in the
# history, the views or the server log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('copy_local');

my $remote = PostgreSQL::Test::Cluster->new('copy_remote');
TaskflowTest->init_node($remote);    # (initdb template)
$remote->start;
$remote->safe_psql('postgres', q{
SET password_encryption = 'scram-sha-256';
CREATE ROLE rem LOGIN PASSWORD 'S3cret-pw';
CREATE TABLE public.orders (id int PRIMARY KEY, customer text, amount numeric);
GRANT SELECT ON public.orders TO rem;
CREATE TABLE public.pushed (id int PRIMARY KEY, v text);
GRANT SELECT, INSERT, TRUNCATE ON public.pushed TO rem;
INSERT INTO public.orders SELECT g, 'c' || g, g * 2 FROM generate_series(1, 300) g;
});
# the remote's role logs in with its password only
my $hba = $remote->data_dir . '/pg_hba.conf';
open my $fh, '<', $hba or die $!;
my $old = join '', <$fh>;
close $fh;
open $fh, '>', $hba or die $!;
print $fh "local all rem scram-sha-256\n", $old;
close $fh;
$remote->reload;

my ($rhost, $rport) = ($remote->host, $remote->port);
$node->safe_psql('postgres', qq{
CREATE EXTENSION postgres_fdw;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '$rhost', port '$rport', dbname 'postgres', connect_timeout '5');
GRANT USAGE ON FOREIGN SERVER remote TO alice;
CREATE USER MAPPING FOR alice SERVER remote OPTIONS (user 'rem', password 'S3cret-pw');
CREATE SERVER remote_badpw FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '$rhost', port '$rport', dbname 'postgres');
GRANT USAGE ON FOREIGN SERVER remote_badpw TO alice;
CREATE USER MAPPING FOR alice SERVER remote_badpw OPTIONS (user 'rem', password 'wrong-pw');
CREATE SERVER remote_nopw FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '$rhost', port '$rport', dbname 'postgres');
GRANT USAGE ON FOREIGN SERVER remote_nopw TO alice;
CREATE USER MAPPING FOR alice SERVER remote_nopw OPTIONS (user 'postgres');
CREATE USER MAPPING FOR bob SERVER remote OPTIONS (user 'rem', password 'S3cret-pw');
CREATE TABLE public.orders_copy (id int PRIMARY KEY, customer text, amount numeric);
GRANT SELECT, INSERT ON public.orders_copy TO alice, bob;
CREATE TABLE public.src (id int PRIMARY KEY, v text);
INSERT INTO public.src SELECT g, 'v' || g FROM generate_series(1, 50) g;
GRANT SELECT ON public.src TO alice;
});
# the server log from here on (the setup above logged its own statements)
my $log_offset = -s $node->logfile;

sub same
{
	my ($name) = @_;
	my $q = q{SELECT count(*) || ':' || md5(string_agg(x::text, ';' ORDER BY x.id)) FROM %s x};
	is($node->safe_psql('postgres', sprintf($q, 'public.orders_copy')),
		$remote->safe_psql('postgres', sprintf($q, 'public.orders')), $name);
}

# 1. incremental from the remote, three runs with inserts in between
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('pull');
SELECT taskflow.add_node('pull', 'orders', 'copy', options => '{
  "table": "public.orders", "source_server": "remote", "target": "public.orders_copy",
  "mode": "incremental", "watermark": "id"}');
});
my ($run, $state) = TaskflowTest->run_and_wait($node, 'pull', user => 'alice');
is($state, 'succeeded', 'pull run 1 succeeded');
same('pull run 1: identical');
$remote->safe_psql('postgres', q{INSERT INTO public.orders SELECT g, 'n' || g, g FROM generate_series(301, 420) g});
($run, $state) = TaskflowTest->run_and_wait($node, 'pull', user => 'alice');
is($node->safe_psql('postgres', "SELECT state || ',' || rows || ',' || (bytes > 0) FROM taskflow.node_run_history WHERE run_id = $run"),
	'succeeded,120,true', 'pull run 2: only the new rows');
$remote->safe_psql('postgres', q{INSERT INTO public.orders VALUES (421, 'last', 1)});
($run, $state) = TaskflowTest->run_and_wait($node, 'pull', user => 'alice');
is($node->safe_psql('postgres', "SELECT rows FROM taskflow.node_run_history WHERE run_id = $run"), '1',
	'pull run 3: one new row');
same('pull run 3: identical');

# 2. replace into the remote
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('push');
SELECT taskflow.add_node('push', 'n', 'copy', options => '{
  "table": "public.src", "target": "public.pushed", "target_server": "remote", "mode": "replace"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'push', user => 'alice');
is($state, 'succeeded', 'push succeeded');
is($remote->safe_psql('postgres', q{SELECT count(*) || ',' || max(v) FROM public.pushed}), '50,v9',
	'rows replaced in the remote');

# 3. failures: readable errors, SQLSTATEs kept
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('bad');
SELECT taskflow.add_node('bad', 'badpw', 'copy', options => '{"table": "public.orders", "source_server": "remote_badpw", "target": "public.orders_copy"}');
SELECT taskflow.add_node('bad', 'nopw', 'copy', options => '{"table": "public.orders", "source_server": "remote_nopw", "target": "public.orders_copy"}');
SELECT taskflow.add_node('bad', 'denied', 'copy', options => '{"table": "public.src", "target": "public.nope", "target_server": "remote"}');
SET ROLE bob;
SELECT taskflow.create_flow('bob_flow');
SELECT taskflow.add_node('bob_flow', 'n', 'copy', options => '{"table": "public.orders", "source_server": "remote", "target": "public.orders_copy"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'bad', user => 'alice');
my %err = map { $_ => $node->safe_psql('postgres',
	"SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = '$_'") }
  qw(badpw nopw denied);
like($err{badpw}, qr/^08001 could not connect to server "remote_badpw" as role "rem": .*password authentication failed for user "rem"/s,
	'wrong password: readable error');
like($err{nopw}, qr/^2F003 password is required/, 'mapping without a password: refused for a non-superuser');
like($err{denied}, qr/^42P01 relation "public.nope" does not exist/, 'remote error keeps its SQLSTATE and message');
($run, $state) = TaskflowTest->run_and_wait($node, 'bob_flow', user => 'bob');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	qr/^42501 permission denied for foreign server remote/, 'owner without USAGE on the server');

# 4. sql nodes with option "server": the script runs in one transaction on
#    the remote; its errors come back with their SQLSTATE; a failed script
#    commits nothing there
$remote->safe_psql('postgres', q{
CREATE TABLE public.log (n int, who text);
GRANT INSERT, SELECT ON public.log TO rem;
});
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('rsql');
SELECT taskflow.add_node('rsql', 'ok', 'sql',
  $$INSERT INTO public.log VALUES (1, current_user); INSERT INTO public.log SELECT 2, current_user; DO 'BEGIN RAISE NOTICE ''hello from the remote''; END'$$,
  options => '{"server": "remote"}');
SELECT taskflow.add_node('rsql', 'boom', 'sql',
  $$INSERT INTO public.log VALUES (3, 'boom'); SELECT 1/0$$, options => '{"server": "remote"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'rsql', user => 'alice');
is($remote->safe_psql('postgres', q{SELECT string_agg(n || ':' || who, ',' ORDER BY n) FROM public.log}), '1:rem,2:rem',
	'remote sql: the script ran there as the mapped role; the failed one committed nothing');
is($node->safe_psql('postgres', "SELECT state || '|' || (log LIKE '%NOTICE: hello from the remote%') FROM taskflow.node_run_history WHERE run_id = $run AND node = 'ok'"),
	'succeeded|true', 'remote sql: succeeded, remote NOTICE in the log');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'boom'"),
	qr/^22012 division by zero/, 'remote sql: the remote error keeps its SQLSTATE');

# 5. the remote is down
$remote->stop;
($run, $state) = TaskflowTest->run_and_wait($node, 'pull', user => 'alice');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	qr/^08001 could not connect to server "remote" as role "rem"/, 'remote down: readable error');

# 6. the password never shows (the log first: the query below names it)
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/S3cret-pw|wrong-pw/, 'no password in the server log');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM taskflow.node_run_history
 WHERE concat(error, log, rendered) LIKE '%S3cret%' OR concat(error, log, rendered) LIKE '%wrong-pw%'}), '0',
	'no password in the history');

done_testing();
