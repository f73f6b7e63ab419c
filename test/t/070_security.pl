# Security suite (issue 9), end to end with the engine running.  Roles:
# sec_owner owns a flow, sec_member is a member of sec_owner, sec_stranger is
# the attacker (CREATE on its own schema and on a writable public).  Every
# attack is checked twice: it fails, and nothing changed hands (no superuser,
# owners unchanged, no run created, no lock queued, writers not blocked).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('sec');
my $dir = $PostgreSQL::Test::Utils::tmp_check . '/sec_files';

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# run SQL as a role; returns (exit code, stdout, stderr)
sub as
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE $role;\n$sql",
		on_error_stop => 1);
	return wantarray ? ($ret, $out, $err) : $ret;
}

sub is_superuser
{
	return q1("SELECT rolsuper FROM pg_roles WHERE rolname = '$_[0]'");
}

sub err_of { return q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $_[0]"); }

q1(qq{
CREATE ROLE sec_owner LOGIN;
CREATE ROLE sec_member LOGIN IN ROLE sec_owner;
CREATE ROLE sec_stranger LOGIN;
CREATE SCHEMA attacker AUTHORIZATION sec_stranger;
GRANT USAGE ON SCHEMA attacker TO PUBLIC;
GRANT CREATE ON SCHEMA public TO PUBLIC;
CREATE TABLE public.loot (who text, what text);
GRANT INSERT, SELECT ON public.loot TO PUBLIC;
CREATE SERVER files FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$dir');
GRANT USAGE ON FOREIGN SERVER files TO sec_owner, sec_stranger;
});

# the owner's flow and data; the stranger's own flow
as('sec_owner', q{
CREATE TABLE owner_sales (id int, day date) PARTITION BY RANGE (day);
CREATE TABLE owner_sales_1 PARTITION OF owner_sales FOR VALUES FROM ('2020-06-01') TO ('2020-06-02');
INSERT INTO owner_sales VALUES (1, '2020-06-01');
SELECT taskflow.create_flow('owner_flow');
SELECT taskflow.add_node('owner_flow', 'work', 'sql', 'SELECT 1');
}) == 0 or die 'owner setup';
my ($ret, $out, $err) = as('sec_stranger', q{
SELECT taskflow.create_flow('stranger_flow');
SELECT taskflow.add_node('stranger_flow', 'escalate', 'sql', 'ALTER ROLE sec_stranger SUPERUSER');
});
is($ret, 0, 'stranger defines its own flow') or diag($err);

my $owner_state = q1(q{SELECT string_agg(name || ':' || owner::text, ',' ORDER BY name) FROM taskflow.flows});
is($owner_state, 'owner_flow:sec_owner,stranger_flow:sec_stranger', 'flows and owners before the attacks');

######################################################################
# item 1: a shadowed pg_has_role must not open the policies
######################################################################
($ret, $out, $err) = as('sec_stranger', q{
CREATE FUNCTION attacker.pg_has_role(name, regrole, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION attacker.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.pg_has_role(name, regrole, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
});
is($ret, 0, 'stranger creates pg_has_role shadows') or diag($err);

($ret, $out, $err) = as('sec_stranger',
	"SET search_path = attacker, public, pg_catalog;\nSELECT pg_has_role(current_user, 'postgres'::regrole, 'MEMBER')");
is($out, 't', 'the shadow answers unqualified calls');
($ret, $out, $err) = as('sec_stranger',
	"SET search_path = attacker, public, pg_catalog;\nSELECT string_agg(name, ',' ORDER BY name) FROM taskflow.flows");
is($out, 'stranger_flow', 'shadowed pg_has_role: the stranger still sees only its own flow');
($ret, $out, $err) = as('sec_stranger',
	"SET search_path = attacker, public, pg_catalog;\nSELECT count(*) FROM taskflow.nodes");
is($out, '1', 'and only its own nodes');
($ret, $out, $err) = as('sec_stranger',
	"SET search_path = attacker, public, pg_catalog;\nUPDATE taskflow.flows SET owner = 'postgres' WHERE name = 'stranger_flow'");
isnt($ret, 0, 'handing its flow to postgres fails');
like($err, qr/is not a member of role "postgres"|row-level security/, '... with a privilege error');
($ret, $out, $err) = as('sec_stranger',
	"SET search_path = public;\nUPDATE taskflow.flows SET owner = 'postgres' WHERE name = 'stranger_flow'");
isnt($ret, 0, 'also with the shadow in a writable public on the default path');
is(q1(q{SELECT string_agg(name || ':' || owner::text, ',' ORDER BY name) FROM taskflow.flows}),
	$owner_state, 'no flow changed owner');
# its own node runs as itself
my ($run, $state) = TaskflowTest->run_and_wait($node, 'stranger_flow', user => 'sec_stranger');
is($state, 'failed', 'the stranger\'s ALTER ROLE ... SUPERUSER node fails');
like(err_of($run), qr/must be superuser|permission denied/, '... refused: it runs as the stranger');
is(is_superuser('sec_stranger'), 'f', 'the stranger is not a superuser');
my ($owner_run) = TaskflowTest->run_and_wait($node, 'owner_flow', user => 'sec_owner');
($ret, $out, $err) = as('sec_stranger',
	"SET search_path = attacker, public, pg_catalog;\nSELECT string_agg(DISTINCT flow, ',') FROM taskflow.run_history");
is($out, 'stranger_flow', 'shadowed pg_has_role: run_history shows only its own runs');
($ret, $out, $err) = as('sec_stranger',
	"SET search_path = attacker, public, pg_catalog;\nSELECT count(*) FROM taskflow.node_run_history WHERE flow = 'owner_flow'");
is($out, '0', '... node_run_history nothing of the owner\'s');
($ret, $out, $err) = as('sec_stranger',
	"SET search_path = attacker, public, pg_catalog;\nSELECT taskflow.rerun($owner_run)");
like($err, qr/run $owner_run does not exist/, '... and cannot rerun the owner\'s run');
($ret, $out, $err) = as('sec_stranger',
	"SET search_path = attacker, public, pg_catalog;\nSELECT taskflow.run_flow('owner_flow')");
isnt($ret, 0, 'the stranger cannot run the owner\'s flow');
is(q1(q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'owner_flow'}),
	'1', '... no new run of it exists');
q1(q{DROP FUNCTION public.pg_has_role(name, regrole, text)});

######################################################################
# item 2: a trojan operator in a writable public, a superuser's template
######################################################################
($ret, $out, $err) = as('sec_stranger', q{
CREATE FUNCTION public.trojan_eq(oid, regclass) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.loot VALUES (current_user, 'trojan');
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE sec_stranger SUPERUSER';
    END IF;
    RETURN $1 OPERATOR(pg_catalog.=) $2::pg_catalog.oid;
END
$$;
CREATE OPERATOR public.= (FUNCTION = public.trojan_eq, LEFTARG = oid, RIGHTARG = regclass);
});
is($ret, 0, 'stranger plants =(oid, regclass) in public') or diag($err);
q1(q{CREATE TABLE public.events (id int, happened date)});
($ret, $out, $err) = $node->psql('postgres', q{
SELECT taskflow.create_flow_from_template('purge_older_than', 'su_purge',
    '{"table": "events", "date_column": "happened", "keep": "30 days", "schedule": ""}')});
is($ret, 0, 'a superuser creates a flow from a template (unqualified table, default search_path)')
  or diag($err);
is(q1(q{SELECT count(*) FROM public.loot}), '0', 'the trojan operator never ran');
is(is_superuser('sec_stranger'), 'f', 'the stranger is not a superuser');
($run, $state) = TaskflowTest->run_and_wait($node, 'su_purge', bizdate => '2020-06-01');
is($state, 'succeeded', 'the template\'s nodes run (qualified SQL)') or diag(err_of($run));
is(q1(q{SELECT count(*) FROM public.loot}), '0', 'the trojan operator did not run in the nodes either');
q1(q{DROP OPERATOR public.= (oid, regclass); DROP FUNCTION public.trojan_eq(oid, regclass);
     SELECT taskflow.drop_flow('su_purge');});

######################################################################
# item 5: direct catalog writes
######################################################################
($ret, $out, $err) = as('sec_stranger', q{
INSERT INTO taskflow.flows (name, schedule, created_at) VALUES ('backdated', 'every 1 second', '2000-01-01')});
isnt($ret, 0, 'a backdated flow cannot be inserted');
like($err, qr/permission denied for table flows/, '... created_at is not insertable');
($ret, $out, $err) = as('sec_stranger', q{
UPDATE taskflow.flows SET scheduled_until = '2000-01-01', schedule = 'every 1 second' WHERE name = 'stranger_flow'});
isnt($ret, 0, 'the watermark cannot be moved back');
($ret, $out, $err) = as('sec_stranger', q{
INSERT INTO taskflow.flows (name, schedule, max_active_runs) VALUES ('bad', 'every 0 seconds', 1)});
isnt($ret, 0, 'an invalid schedule cannot be inserted directly');
like($err, qr/invalid schedule/, '... the API\'s validator refuses it');
($ret, $out, $err) = as('sec_stranger', q{
UPDATE taskflow.nodes SET kind = 'shell' WHERE name = 'escalate'});
like($err, qr/unknown node kind "shell"/, 'an invalid node kind cannot be written directly');
is(q1(q{SELECT string_agg(name || ':' || coalesce(schedule, '-') || ':' || coalesce(scheduled_until::text, '-')
               || ':' || (created_at > now() - interval '1 hour'), ',' ORDER BY name) FROM taskflow.flows}),
	'owner_flow:-:-:true,stranger_flow:-:-:true', 'flows unchanged (no schedule, no watermark, real creation time)');
is(q1(q{SELECT count(*) FROM taskflow.runs WHERE trigger = 'schedule'}), '0', 'no scheduled run was created');

# the group member: works through the API, gets the same checks directly
($ret, $out, $err) = as('sec_member', q{SELECT taskflow.alter_flow('owner_flow', description => 'by member')});
is($ret, 0, 'a member of the owner changes the flow through the API') or diag($err);
($ret, $out, $err) = as('sec_member', q{
INSERT INTO taskflow.nodes (flow_id, name, kind, body)
SELECT id, 'x', 'sql', 'SELECT ${nope}' FROM taskflow.flows WHERE name = 'owner_flow'});
like($err, qr/unknown variable "nope"/, 'a member\'s direct node insert is validated');
($ret, $out, $err) = as('sec_member', q{UPDATE taskflow.flows SET owner = 'postgres' WHERE name = 'owner_flow'});
like($err, qr/is not a member of role "postgres"/, 'a member cannot hand the flow to a superuser');
($ret, $out, $err) = as('sec_member', q{UPDATE taskflow.flows SET owner = 'sec_member' WHERE name = 'owner_flow'});
is($ret, 0, '... but may hand it to itself (it is a member of both)') or diag($err);
q1(q{UPDATE taskflow.flows SET owner = 'sec_owner' WHERE name = 'owner_flow'});
($ret, $out, $err) = as('sec_stranger', q{UPDATE taskflow.flows SET owner = 'sec_stranger' WHERE name = 'owner_flow'});
is($ret, 0, 'the stranger\'s update of the owner\'s flow ...');
is(q1(q{SELECT owner FROM taskflow.flows WHERE name = 'owner_flow'}), 'sec_owner', '... changes nothing (invisible row)');

######################################################################
# item 6: privileges before locks (archive table, import target)
######################################################################
# a writer of the owner's partition holds ROW EXCLUSIVE in an open transaction
my $writer = $node->background_psql('postgres');
$writer->query_safe(q{BEGIN; INSERT INTO owner_sales VALUES (2, '2020-06-01');});

($ret, $out, $err) = as('sec_stranger', q{
SELECT taskflow.add_node('stranger_flow', 'grab', 'archive', options => '{
  "server": "files", "path": "grab/", "table": "public.owner_sales_1", "source": "detach"}');
SELECT taskflow.drop_node('stranger_flow', 'escalate');});
is($ret, 0, 'stranger defines an archive node on the owner\'s partition') or diag($err);
($run, $state) = TaskflowTest->run_and_wait($node, 'stranger_flow', user => 'sec_stranger', timeout => 30);
is($state, 'failed', 'the archive node fails at once (it does not wait for the writer\'s lock)');
like(err_of($run), qr/must be owner of table owner_sales_1/, '... on the ownership check');
is(q1(q{SELECT count(*) FROM pg_locks l WHERE l.relation = 'owner_sales_1'::regclass AND NOT l.granted}),
	'0', 'no lock request is queued on the partition');
($ret, $out, $err) = $node->psql('postgres',
	q{SET lock_timeout = '10s'; INSERT INTO owner_sales VALUES (3, '2020-06-01')});
is($ret, 0, 'another writer is not blocked') or diag($err);
$writer->query_safe('COMMIT');
is(q1(q{SELECT count(*) FROM owner_sales_1}), '3', 'the partition keeps every row');
is(q1(q{SELECT count(*) FROM pg_inherits WHERE inhrelid = 'owner_sales_1'::regclass}), '1',
	'and is still attached');

# source keep without SELECT: refused before the export
as('sec_stranger', q{SELECT taskflow.alter_node('stranger_flow', 'grab', options => '{
  "server": "files", "path": "grab/", "table": "public.owner_sales_1"}')}) == 0 or die;
($run, $state) = TaskflowTest->run_and_wait($node, 'stranger_flow', user => 'sec_stranger', timeout => 30);
is($state, 'failed', 'archiving a table without SELECT fails');
like(err_of($run), qr/permission denied for table owner_sales_1/, '... permission denied');

# import(): the target in a schema the stranger has no USAGE on, by OID,
# while a session holds a SHARE lock on it
q1(q{CREATE SCHEMA hidden; CREATE TABLE hidden.target (id int);
     SELECT taskflow.put_object('files', 'imp/part-00000.csv', convert_to(E'id\n1\n', 'UTF8'));});
my $oid = q1(q{SELECT 'hidden.target'::regclass::oid});
my $locker = $node->background_psql('postgres');
$locker->query_safe(q{BEGIN; LOCK TABLE hidden.target IN SHARE MODE;});
($ret, $out, $err) = as('sec_stranger',
	"SET lock_timeout = '5s';\nSELECT taskflow.import('files', 'imp', $oid)");
isnt($ret, 0, 'import into a table of a schema without USAGE (numeric OID) fails');
like($err, qr/permission denied for schema hidden/, '... on the schema check, not a lock timeout');
q1(q{GRANT USAGE ON SCHEMA hidden TO sec_stranger});
($ret, $out, $err) = as('sec_stranger',
	"SET lock_timeout = '5s';\nSELECT taskflow.import('files', 'imp', 'hidden.target')");
like($err, qr/permission denied for table target/, 'import without INSERT fails before locking');
$locker->query_safe('COMMIT');
is(q1(q{SELECT count(*) FROM hidden.target}), '0', 'nothing was imported');
$writer->quit;
$locker->quit;

######################################################################
# item 7a: file:// storage never follows a symbolic link inside its directory
######################################################################
my $outside = $PostgreSQL::Test::Utils::tmp_check . '/sec_outside';
mkdir $outside or die "mkdir $outside: $!";
open(my $fh, '>', "$outside/secret") or die; print $fh "secret\n"; close $fh;
symlink($outside, "$dir/evil") or die "symlink: $!";
symlink("$outside/secret", "$dir/link.txt") or die "symlink: $!";

($ret, $out, $err) = as('sec_stranger', q{SELECT taskflow.put_object('files', 'evil/planted', 'x')});
like($err, qr/"evil" is a symbolic link/, 'writing through a linked directory is refused');
ok(!-e "$outside/planted", '... nothing was written outside the directory');
($ret, $out, $err) = as('sec_stranger', q{SELECT convert_from(taskflow.get_object('files', 'evil/secret'), 'UTF8')});
like($err, qr/"evil" is a symbolic link/, 'reading through a linked directory is refused');
unlike($out, qr/secret/, '... nothing was read');
($ret, $out, $err) = as('sec_stranger', q{SELECT convert_from(taskflow.get_object('files', 'link.txt'), 'UTF8')});
like($err, qr/"link.txt" is a symbolic link/, 'reading a linked object is refused');
($ret, $out, $err) = as('sec_stranger', q{SELECT taskflow.delete_object('files', 'evil/secret')});
like($err, qr/"evil" is a symbolic link/, 'deleting through a linked directory is refused');
ok(-e "$outside/secret", '... the file outside is still there');
($ret, $out, $err) = as('sec_stranger', q{SELECT string_agg(key, ',' ORDER BY key) FROM taskflow.list_objects('files')});
unlike($out, qr/secret|link\.txt/, 'listing does not follow links');
# writing a linked object replaces the link (temporary file + rename), never its target
($ret, $out, $err) = as('sec_stranger', q{SELECT taskflow.put_object('files', 'link.txt', 'new')});
is($ret, 0, 'writing over a linked object works') or diag($err);
ok(!-l "$dir/link.txt", '... the link was replaced by the object');
is(slurp_file("$outside/secret"), "secret\n", '... its target is unchanged');
# a link planted under the writer's temporary file name (O_EXCL)
my $bg = $node->background_psql('postgres');
$bg->query_safe('SET ROLE sec_stranger');
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
symlink("$outside/secret", "$dir/tmp_target.tmp.$pid") or die "symlink: $!";
$bg->query_safe(q{SELECT taskflow.put_object('files', 'tmp_target', 'mine')});
is(slurp_file("$outside/secret"), "secret\n", 'a link at the temporary file name is not written through');
is(slurp_file("$dir/tmp_target"), 'mine', '... the object was written in the directory');
$bg->quit;

######################################################################
# item 7b: pg_stat_activity does not show other owners' flow/node names
######################################################################
as('sec_owner', q{
SELECT taskflow.create_flow('secret_flow');
SELECT taskflow.add_node('secret_flow', 'secret_node', 'sql', 'SELECT pg_sleep(120)');}) == 0 or die;
my $long = TaskflowTest->run_flow($node, 'secret_flow', user => 'sec_owner');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node secret_flow.secret_node%'", 30),
	'the node runs (its details in the query column)');
($ret, $out, $err) = as('sec_stranger',
	"SELECT application_name || ' | ' || coalesce(query, '') FROM pg_stat_activity WHERE application_name LIKE 'taskflow node%'");
like($out, qr/^taskflow node run \d+ \| <insufficient privilege>$/, 'a stranger sees a neutral application_name only');
unlike($out, qr/secret/, '... no flow or node name');
($ret, $out, $err) = as('sec_member',
	"SELECT query FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND state = 'active'");
like($out, qr/^taskflow node secret_flow\.secret_node run $long$/, 'a member of the owner sees the details');
q1("SELECT taskflow.cancel_run($long)");
is(TaskflowTest->wait_run($node, $long), 'canceled', 'long run canceled');

######################################################################
# item 7c: the duplicate-name error does not reveal the owner
######################################################################
($ret, $out, $err) = as('sec_stranger', q{SELECT taskflow.create_flow('secret_flow')});
like($err, qr/flow "secret_flow" already exists/, 'duplicate flow name refused');
unlike($err, qr/owned|member/, '... without saying who owns it');

######################################################################
# nothing changed hands
######################################################################
is(is_superuser('sec_stranger'), 'f', 'finally: the stranger is not a superuser');
is(is_superuser('sec_owner'), 'f', 'the owner is not a superuser');
is(q1(q{SELECT string_agg(name || ':' || owner::text, ',' ORDER BY name) FROM taskflow.flows}),
	'owner_flow:sec_owner,secret_flow:sec_owner,stranger_flow:sec_stranger', 'owners unchanged');

$node->stop;
done_testing();
