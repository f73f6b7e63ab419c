# sql nodes in autocommit mode: a script with a statement that cannot run in
# a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, ...) or with option
# "autocommit": true runs each statement in a transaction of its own, as the
# flow owner.  A failing statement fails the node (its SQLSTATE) and leaves
# the earlier statements committed; a plain script still runs in one
# transaction; timeout and cancel work; transaction control statements are
# refused; the same for cross-database nodes.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('autocommit');

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE team NOLOGIN;
-- a group owner's flows run only once a superuser allows it (docs/operations.md)
ALTER ROLE team SET taskflow.allow_group_owner = on;
GRANT team TO alice;
GRANT CREATE ON SCHEMA public TO alice, team;
SET ROLE alice;
CREATE TABLE public.t (v int);
INSERT INTO public.t SELECT g FROM generate_series(1, 1000) g;
DELETE FROM public.t WHERE v > 500;
CREATE PROCEDURE public.two_xacts() LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.t VALUES (9201);
    COMMIT;
    INSERT INTO public.t VALUES (9202);
END $$;
RESET ROLE;
CREATE TABLE public.not_alices (v int);
SET ROLE team;
CREATE TABLE public.team_t (v int);
INSERT INTO public.team_t VALUES (1);
RESET ROLE;
CREATE DATABASE db2;
});
$node->safe_psql('db2', q{
GRANT CREATE ON SCHEMA public TO alice;
SET ROLE alice;
CREATE TABLE public.t2 (v int);
INSERT INTO public.t2 SELECT generate_series(1, 100);
});

# state|sqlstate|error of the only node run of a run
sub outcome
{
	my ($run) = @_;
	return $node->safe_psql('postgres',
		"SELECT state || '|' || coalesce(sqlstate, '') || '|' || coalesce(error, '') FROM taskflow.node_run_history WHERE run_id = $run");
}

sub node_log
{
	my ($run) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(log, '') FROM taskflow.node_run_history WHERE run_id = $run");
}

sub has_v
{
	my ($v) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM public.t WHERE v = $v");
}

# one flow per case, owned by $owner, with one sql node
sub flow
{
	my ($name, $body, %opt) = @_;
	my $owner = $opt{owner} // 'alice';
	my $options = $opt{options} // '{}';
	my $timeout = defined $opt{timeout} ? "'$opt{timeout}'" : 'NULL';
	$node->safe_psql('postgres', qq{
SET ROLE alice;
SELECT taskflow.create_flow('$name', owner => '$owner');
SELECT taskflow.add_node('$name', 'n', 'sql', \$body\$$body\$body\$,
                         options => '$options', timeout => $timeout);
});
	return;
}

# 1. VACUUM ANALYZE (detected): succeeds, statistics show it
flow('vac', 'VACUUM ANALYZE public.t');
my ($run, $state) = TaskflowTest->run_and_wait($node, 'vac', user => 'alice');
is($state, 'succeeded', 'VACUUM ANALYZE node succeeded');
like(node_log($run), qr/autocommit mode \(VACUUM\).*statement 1: VACUUM, 0 row\(s\), committed/s,
	'log says autocommit mode and the statement');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 't'", 10),
	'pg_stat_user_tables shows last_vacuum and last_analyze');

# 2. CREATE INDEX CONCURRENTLY (detected), with a variable, rows summed
flow('cic', q{INSERT INTO public.t VALUES (601), (602);
CREATE INDEX CONCURRENTLY t_v_idx ON public.t (v);
INSERT INTO public.t VALUES (603)});
# not wait_run(): CREATE INDEX CONCURRENTLY waits for every older snapshot,
# including that of a session blocked in wait_run() (see docs/operations.md)
$run = TaskflowTest->run_flow($node, 'cic', user => 'alice');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state IN ('succeeded', 'failed') FROM taskflow.run_history WHERE run_id = $run", 60),
	'CREATE INDEX CONCURRENTLY run finished');
is(outcome($run), 'succeeded||', 'CREATE INDEX CONCURRENTLY node succeeded');
is($node->safe_psql('postgres', q{SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = 'public.t_v_idx'::regclass}),
	't', 'the index exists and is valid');
is($node->safe_psql('postgres', "SELECT rows FROM taskflow.node_run_history WHERE run_id = $run"),
	'3', 'rows are summed over the statements');

# REINDEX ... CONCURRENTLY and DROP INDEX CONCURRENTLY are detected too
flow('reidx', q{REINDEX INDEX CONCURRENTLY public.t_v_idx; DROP INDEX CONCURRENTLY public.t_v_idx});
$run = TaskflowTest->run_flow($node, 'reidx', user => 'alice');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state IN ('succeeded', 'failed') FROM taskflow.run_history WHERE run_id = $run", 60),
	'REINDEX/DROP INDEX CONCURRENTLY run finished');
is(outcome($run), 'succeeded||', 'REINDEX/DROP INDEX CONCURRENTLY node succeeded');
like(node_log($run), qr/autocommit mode \(REINDEX\).*statement 2: DROP INDEX/s, 'both statements ran');
is($node->safe_psql('postgres', q{SELECT to_regclass('public.t_v_idx') IS NULL}), 't', 'the index is gone');

# 3. second statement fails: the first stays committed, the node fails
flow('partial', q{INSERT INTO public.t VALUES (9101); INSERT INTO public.t VALUES (1/0)},
	options => '{"autocommit": true}');
($run, $state) = TaskflowTest->run_and_wait($node, 'partial', user => 'alice');
is($state, 'failed', 'run failed');
like(outcome($run), qr/^failed\|22012\|division by zero/, 'node failed with the statement\'s SQLSTATE');
is(has_v(9101), '1', 'the first statement stayed committed');

flow('partial_vac', q{INSERT INTO public.t VALUES (9102); VACUUM public.t; SELECT 1/0});
($run, $state) = TaskflowTest->run_and_wait($node, 'partial_vac', user => 'alice');
like(outcome($run), qr/^failed\|22012\|/, 'detected autocommit: third statement fails the node');
is(has_v(9102), '1', 'the statements before it stayed committed');
like(node_log($run), qr/statement 2: VACUUM/, 'the VACUUM ran before the failure');

# 4. a plain script still rolls back entirely
flow('atomic', q{INSERT INTO public.t VALUES (9103); SELECT 1/0});
($run, $state) = TaskflowTest->run_and_wait($node, 'atomic', user => 'alice');
like(outcome($run), qr/^failed\|22012\|/, 'plain script failed');
is(has_v(9103), '0', 'plain script rolled back entirely');
unlike(node_log($run), qr/autocommit/, 'plain script did not use autocommit mode');

# autocommit false forces one transaction: VACUUM then fails as before
flow('forced_off', 'VACUUM public.t', options => '{"autocommit": "false"}');
($run, $state) = TaskflowTest->run_and_wait($node, 'forced_off', user => 'alice');
like(outcome($run), qr/^failed\|25001\|VACUUM cannot be executed from a function/,
	'autocommit false: VACUUM refused in the transaction');

# 5. VACUUM of a table the owner does not own: WARNING in node_runs.log
flow('vac_other', 'VACUUM public.not_alices');
($run, $state) = TaskflowTest->run_and_wait($node, 'vac_other', user => 'alice');
is($state, 'succeeded', 'VACUUM of a foreign table succeeds (skipped)');
like(node_log($run), qr/WARNING: (skipping "not_alices" --- only table or database owner can vacuum it|permission denied to vacuum "not_alices")/,
	'the WARNING is in node_runs.log');

# NOLOGIN owner allowed by a superuser (superuser connection switched to the owner)
flow('vac_team', q{VACUUM ANALYZE public.team_t;
DO $$BEGIN IF current_user <> 'team' THEN RAISE EXCEPTION 'ran as %', current_user; END IF; END$$},
	owner => 'team');
($run, $state) = TaskflowTest->run_and_wait($node, 'vac_team', user => 'alice');
is($state, 'succeeded', 'NOLOGIN owner: VACUUM ANALYZE as the owner succeeded');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'team_t'", 10),
	'NOLOGIN owner: the table was vacuumed');

# a procedure with COMMIT runs non-atomically in autocommit mode
flow('proc', 'CALL public.two_xacts()', options => '{"autocommit": true}');
($run, $state) = TaskflowTest->run_and_wait($node, 'proc', user => 'alice');
is($state, 'succeeded', 'CALL of a procedure that commits succeeded');
is(has_v(9201) + has_v(9202), 2, 'both of its transactions committed');

# session settings changed by an autocommit script do not reach the record
flow('sets_ok', q{SET default_transaction_read_only = on; SET lock_timeout = 1;
SET search_path = pg_temp; SELECT 1}, options => '{"autocommit": true}');
($run, $state) = TaskflowTest->run_and_wait($node, 'sets_ok', user => 'alice');
is(outcome($run), 'succeeded||', 'success recorded after the script SET read-only');
flow('sets_fail', q{SET default_transaction_read_only = on; SELECT 1/0},
	options => '{"autocommit": true}');
($run, $state) = TaskflowTest->run_and_wait($node, 'sets_fail', user => 'alice');
like(outcome($run), qr/^failed\|22012\|/, 'failure recorded after the script SET read-only');

# 6. timeout on a long statement in autocommit mode
flow('slow', q{INSERT INTO public.t VALUES (9104); SELECT pg_sleep(30)},
	options => '{"autocommit": true}', timeout => '1 second');
my $t0 = time();
($run, $state) = TaskflowTest->run_and_wait($node, 'slow', user => 'alice');
like(outcome($run), qr/^failed\|57014\|node timed out after 1000 ms/, 'timeout enforced in autocommit mode');
ok(time() - $t0 < 20, 'timed out well before the statement would have ended');
is(has_v(9104), '1', 'statement before the timeout stayed committed');

# 7. cancel in autocommit mode
flow('long', q{INSERT INTO public.t VALUES (9105); SELECT pg_sleep(60)},
	options => '{"autocommit": true}');
$run = TaskflowTest->run_flow($node, 'long', user => 'alice');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND wait_event = 'PgSleep'", 30),
	'autocommit node is sleeping');
my $sleeper = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND wait_event = 'PgSleep'");
$node->safe_psql('postgres', "SELECT taskflow.cancel_run($run)");
is(TaskflowTest->wait_run($node, $run), 'canceled', 'autocommit run canceled');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $sleeper", 10),
	'worker terminated');
is(has_v(9105), '1', 'statement before the cancel stayed committed');

# 8. transaction control statements are refused (both modes): at definition
# when the body says so, and when the node runs if a variable renders them
my ($rc, $o, $e) = $node->psql('postgres', q{SET ROLE alice;
SELECT taskflow.create_flow('txn0');
SELECT taskflow.add_node('txn0', 'n', 'sql', 'BEGIN; INSERT INTO public.t VALUES (9106); COMMIT')});
like($e, qr/sql node "n" body contains a transaction control statement \(BEGIN\)/,
	'transaction control refused by add_node');
$node->safe_psql('postgres', q{SET ROLE alice;
SELECT taskflow.create_flow('txn', owner => 'alice');
SELECT taskflow.set_variable('txn', 'b', 'BEGIN', constant => true);
SELECT taskflow.set_variable('txn', 'c', 'COMMIT', constant => true);
SELECT taskflow.add_node('txn', 'n', 'sql', '${b}; INSERT INTO public.t VALUES (9106); ${c}')});
($run, $state) = TaskflowTest->run_and_wait($node, 'txn', user => 'alice');
like(outcome($run), qr/^failed\|2D000\|an sql node's script may not contain transaction control statements \(BEGIN\)/,
	'transaction control refused');
is(has_v(9106), '0', 'nothing of it ran');

# 9. validation of the option
my ($ret, $out, $err) = $node->psql('postgres', q{SET ROLE alice;
SELECT taskflow.add_node('vac', 'bad', 'sql', 'VACUUM', options => '{"autocommit": 1}')});
like($err, qr/option "autocommit" of sql node "bad" must be a JSON boolean/, 'autocommit must be a boolean');
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE alice;
SELECT taskflow.add_node('vac', 'bad', 'sql', 'VACUUM', options => '{"autocommit": "yes"}')});
like($err, qr/must be a JSON boolean/, 'autocommit string other than true/false refused');

# 10. cross-database: VACUUM and a partial failure in db2
flow('xdb_vac', 'VACUUM ANALYZE public.t2', options => '{"database": "db2"}');
($run, $state) = TaskflowTest->run_and_wait($node, 'xdb_vac', user => 'alice');
is($state, 'succeeded', 'cross-database VACUUM ANALYZE succeeded');
like(node_log($run), qr/autocommit mode \(VACUUM\)/, 'cross-database log says autocommit mode');
ok(TaskflowTest->poll($node, 'db2',
	"SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 't2'", 10),
	'db2 statistics show the VACUUM ANALYZE');
flow('xdb_partial', q{INSERT INTO public.t2 VALUES (1001); SELECT 1/0},
	options => '{"database": "db2", "autocommit": true}');
($run, $state) = TaskflowTest->run_and_wait($node, 'xdb_partial', user => 'alice');
like(outcome($run), qr/^failed\|22012\|/, 'cross-database autocommit failure recorded');
is($node->safe_psql('db2', 'SELECT count(*) FROM public.t2 WHERE v = 1001'), '1',
	'cross-database: the first statement stayed committed');

$node->stop;
done_testing();
