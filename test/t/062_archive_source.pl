# Archive node source actions on a file:// server: detach and drop of a
# partition, delete whose row count does not match the export (rolled back),
# and the node running with the flow owner's privileges (no DELETE right:
# the delete fails and every row stays).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('archsrc');
my $dir = $PostgreSQL::Test::Utils::tmp_check . '/archive_files';

sub q1 { return $node->safe_psql('postgres', $_[0]); }

sub run_day
{
	my ($flow, $day) = @_;
	return TaskflowTest->run_and_wait($node, $flow, bizdate => $day, timeout => 60);
}

sub err { return q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $_[0]"); }

q1(qq{CREATE SERVER files FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$dir')});
q1(q{
CREATE TABLE sales (id bigint, amount numeric, day date) PARTITION BY RANGE (day);
CREATE TABLE sales_20200601 PARTITION OF sales FOR VALUES FROM ('2020-06-01') TO ('2020-06-02');
CREATE TABLE sales_20200602 PARTITION OF sales FOR VALUES FROM ('2020-06-02') TO ('2020-06-03');
CREATE TABLE sales_20200603 PARTITION OF sales FOR VALUES FROM ('2020-06-03') TO ('2020-06-04');
INSERT INTO sales SELECT g, g * 1.5, date '2020-06-01' + (g % 3) FROM generate_series(1, 3000) g;
SELECT taskflow.create_flow('parts');
SELECT taskflow.set_variable('parts', 'ymd', 'yyyymmdd of bizdate');
SELECT taskflow.add_node('parts', 'archive', 'archive', options => '{
  "server": "files", "path": "sales/${ymd}/", "table": "sales_${ymd}", "source": "detach"}');
});

# detach
my ($run, $state) = run_day('parts', '2020-06-01');
is($state, 'succeeded', 'detach run succeeded') or diag(err($run));
is(q1(q{SELECT count(*) FROM pg_inherits WHERE inhrelid = 'sales_20200601'::regclass}), '0',
	'partition detached');
is(q1(q{SELECT count(*) FROM sales_20200601}), '1000', 'the detached table keeps its rows');
is(q1(q{SELECT count(*) FROM sales}), '2000', 'parent no longer shows them');
ok(-f "$dir/sales/20200601/part-00000.csv" && -f "$dir/sales/20200601/_SUCCESS", 'objects written');
like(q1("SELECT log FROM taskflow.node_run_history WHERE run_id = $run"), qr/detached partition public\.sales_20200601/,
	'log names the detach');

# drop
q1(q{SELECT taskflow.alter_node('parts', 'archive', options => '{
  "server": "files", "path": "sales/${ymd}/", "table": "sales_${ymd}", "source": "drop"}')});
($run, $state) = run_day('parts', '2020-06-02');
is($state, 'succeeded', 'drop run succeeded') or diag(err($run));
is(q1(q{SELECT to_regclass('sales_20200602') IS NULL}), 't', 'partition dropped');
is(q1(q{SELECT count(*) FROM taskflow.import('files', 'sales/20200602', 'sales_20200601')}), '1',
	'dropped rows can be imported back from the archive');
is(q1(q{SELECT count(*) FROM sales_20200601 WHERE day = '2020-06-02'}), '1000', '1000 rows came back');

# detach/drop of something that is not a partition: error, nothing changes
q1(q{CREATE TABLE plain_20200603 AS SELECT * FROM sales_20200603;
     SELECT taskflow.alter_node('parts', 'archive', options => '{
       "server": "files", "path": "plain/${ymd}/", "table": "plain_${ymd}", "source": "drop"}')});
($run, $state) = run_day('parts', '2020-06-03');
is($state, 'failed', 'drop of a plain table fails');
like(err($run), qr/needs a partition, and public\.plain_20200603 is not one/, 'readable error');
is(q1(q{SELECT count(*) FROM plain_20200603}), '1000', 'plain table untouched');

# delete whose count differs from the export: rolled back
q1(q{
CREATE TABLE orders (id bigint, day date);
INSERT INTO orders SELECT g, date '2020-06-01' + (g % 2) FROM generate_series(1, 200) g;
CREATE FUNCTION keep_some() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN IF OLD.id % 10 = 0 THEN RETURN NULL; END IF; RETURN OLD; END $$;
CREATE TRIGGER keep_some BEFORE DELETE ON orders FOR EACH ROW EXECUTE FUNCTION keep_some();
SELECT taskflow.create_flow('del');
SELECT taskflow.add_node('del', 'archive', 'archive', options => '{
  "server": "files", "path": "orders/${bizdate}", "table": "orders",
  "where": "day = ${bizdate:literal}", "source": "delete"}');
});
($run, $state) = run_day('del', '2020-06-01');
is($state, 'failed', 'delete count mismatch fails the run');
like(err($run), qr/deleted 80 rows but exported 100/, 'error gives both counts');
is(q1(q{SELECT count(*) FROM orders WHERE day = '2020-06-01'}), '100', 'no row was deleted');
ok(!-e "$dir/orders/2020-06-01/_manifest.json" && !-e "$dir/orders/2020-06-01/_SUCCESS"
	  && !glob("$dir/orders/2020-06-01/part-*") && !glob("$dir/orders/2020-06-01/.*.tmp.*"),
	'nothing visible, no temporary file left (the source action failed before the parts were published)');

# the node runs as the flow owner: without DELETE on the table it fails, rows stay
q1(q{
DROP TRIGGER keep_some ON orders;
CREATE ROLE carol LOGIN;
GRANT SELECT ON orders TO carol;
GRANT USAGE ON FOREIGN SERVER files TO carol;
CREATE USER MAPPING FOR carol SERVER files;
SET ROLE carol;
SELECT taskflow.create_flow('carol_del');
SELECT taskflow.add_node('carol_del', 'archive', 'archive', options => '{
  "server": "files", "path": "carol/${bizdate}", "table": "orders",
  "where": "day = ${bizdate:literal}", "source": "delete"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'carol_del', bizdate => '2020-06-02', user => 'carol');
is($state, 'failed', 'owner without DELETE right: run fails');
like(err($run), qr/permission denied for table orders/, 'permission error');
is(q1(q{SELECT count(*) FROM orders WHERE day = '2020-06-02'}), '100', 'rows stay');
q1(q{GRANT DELETE ON orders TO carol});
($run, $state) = TaskflowTest->run_and_wait($node, 'carol_del', bizdate => '2020-06-02', user => 'carol');
is($state, 'succeeded', 'with DELETE granted the rerun overwrites the incomplete archive and succeeds')
  or diag(err($run));
is(q1(q{SELECT count(*) FROM orders WHERE day = '2020-06-02'}), '0', 'rows archived and deleted');

# a _SUCCESS without a manifest (another tool's completed dataset) counts as
# a completed archive: a destructive archive must not overwrite it
q1(q{RESET ROLE;
SELECT taskflow.put_object('files', 'foreign/2020-06-01/part-00000.csv', convert_to(E'x\nforeign\n', 'UTF8'));
SELECT taskflow.put_object('files', 'foreign/2020-06-01/_SUCCESS', '');
SELECT taskflow.create_flow('fdel');
SELECT taskflow.add_node('fdel', 'archive', 'archive', options => '{
  "server": "files", "path": "foreign/${bizdate}", "table": "orders",
  "where": "day = ${bizdate:literal}", "source": "delete"}');
});
($run, $state) = run_day('fdel', '2020-06-01');
is($state, 'failed', 'delete archive onto a foreign completed dataset fails');
like(err($run), qr/already holds a completed archive \(a _SUCCESS object without a manifest row count\)/,
	'error says why');
is(q1(q{SELECT count(*) FROM orders WHERE day = '2020-06-01'}), '100', 'no row was deleted');
is(q1(q{SELECT convert_from(taskflow.get_object('files', 'foreign/2020-06-01/part-00000.csv'), 'UTF8') = E'x\nforeign\n'}),
	't', 'the foreign part is not overwritten');

# drop of a partition partly hidden from its owner by FORCE ROW LEVEL
# SECURITY: the export sees half the rows, DROP TABLE would remove them all
q1(q{
CREATE ROLE dave LOGIN;
GRANT USAGE ON FOREIGN SERVER files TO dave;
CREATE TABLE ev (id int, day date) PARTITION BY RANGE (day);
CREATE TABLE ev_20200601 PARTITION OF ev FOR VALUES FROM ('2020-06-01') TO ('2020-06-02');
INSERT INTO ev SELECT g, '2020-06-01' FROM generate_series(1, 100) g;
ALTER TABLE ev OWNER TO dave;
ALTER TABLE ev_20200601 OWNER TO dave;
ALTER TABLE ev_20200601 ENABLE ROW LEVEL SECURITY;
ALTER TABLE ev_20200601 FORCE ROW LEVEL SECURITY;
CREATE POLICY even ON ev_20200601 USING (id % 2 = 0);
SET ROLE dave;
SELECT taskflow.create_flow('dave_drop');
SELECT taskflow.add_node('dave_drop', 'archive', 'archive', options => '{
  "server": "files", "path": "ev/${bizdate}", "table": "ev_20200601", "source": "drop"}');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'dave_drop', bizdate => '2020-06-01', user => 'dave');
is($state, 'failed', 'drop of a partition with rows hidden by RLS fails');
like(err($run), qr/partition public\.ev_20200601 now holds 100 rows but 50 were exported; not dropping it/,
	'error counts the hidden rows');
is(q1(q{ALTER TABLE ev_20200601 NO FORCE ROW LEVEL SECURITY; ALTER TABLE ev_20200601 DISABLE ROW LEVEL SECURITY;
        SELECT count(*) FROM ev_20200601}), '100', 'partition kept with every row');

# query mode, source keep: a rerun simply replaces the archive
q1(q{
SELECT taskflow.create_flow('q');
SELECT taskflow.add_node('q', 'archive', 'archive', options => '{
  "server": "files", "path": "q/${bizdate}/", "format": "csv.gz", "max_file_size": 2048,
  "query": "SELECT id, day, ${bizdate:literal}::date AS bizdate FROM orders ORDER BY id"}');
});
($run, $state) = run_day('q', '2020-06-01');
is($state, 'succeeded', 'query-mode archive succeeded') or diag(err($run));
like(q1("SELECT rendered FROM taskflow.node_run_history WHERE run_id = $run"),
	qr/'2020-06-01'::date AS bizdate/, 'rendered query has the variable substituted');
($run, $state) = run_day('q', '2020-06-01');
is($state, 'succeeded', 'rerun with source keep succeeded');
q1(q{CREATE TABLE q_back (id bigint, day date, bizdate date)});
is(q1(q{SELECT taskflow.import('files', 'q/2020-06-01', 'q_back', 'csv.gz')}),
	q1(q{SELECT count(*) FROM orders}), 'archive holds the rows once after the rerun');
is(q1(q{SELECT count(*) FROM q_back WHERE bizdate = '2020-06-01'}), q1(q{SELECT count(*) FROM orders}),
	'every row carries the rendered bizdate');

done_testing();
