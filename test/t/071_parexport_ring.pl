# A parallel export reads its chunks through a bulk-read buffer ring, as a
# Seq Scan (and COPY TO) of a table bigger than a quarter of shared_buffers
# does (parexport.c, tf_par_bulkread_walker):
# - after a parallel export of a table of about 1.3x shared_buffers from an
#   empty buffer pool, the table holds well under half of the pool (without
#   the ring the TID range scans evict the whole pool: about all of it);
# - the export still has every row, the same row digest as a serial export,
#   and more than one process exported rows;
# - a small table (under a quarter of shared_buffers) is read without a ring
#   and exported the same.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('parring', conf => "shared_buffers = 16MB\n");
my $fdir = "$PostgreSQL::Test::Utils::tmp_check/ring_files";
mkdir $fdir;
chmod 0777, $fdir;

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(qq{CREATE SERVER ring_files FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$fdir')});
q1('CREATE EXTENSION pg_buffercache');
q1(q{
CREATE TABLE big (order_id bigint, product_name varchar(32), price double precision,
                  total_amount double precision, created_date date);
INSERT INTO big
  SELECT g, 'product ' || (g % 97), (g % 1000) / 4.0, (g % 3333) * 1.25,
         date '2020-01-01' + (g % 366)
    FROM generate_series(1, 400000) g;
CREATE TABLE small AS SELECT * FROM big WHERE order_id <= 20000;
VACUUM ANALYZE big;
VACUUM ANALYZE small;
});
my $pool = q1(q{SELECT count(*) FROM pg_buffercache});
my $blocks = q1(q{SELECT pg_relation_size('big') / 8192});
cmp_ok($blocks, '>', $pool, "the table ($blocks blocks) is bigger than the pool ($pool buffers)");

sub manifest
{
	my ($path) = @_;
	return decode_json(q1(qq{SELECT convert_from(taskflow.get_object('ring_files', '$path/_manifest.json'), 'UTF8')}));
}

sub table_buffers
{
	my ($rel) = @_;
	return q1(qq{SELECT count(*) FROM pg_buffercache b JOIN pg_class c ON b.relfilenode = pg_relation_filenode(c.oid)
	             WHERE c.relname = '$rel' AND b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())});
}

# an empty pool (a restart), then the parallel export
$node->restart;
TaskflowTest->wait_scheduler($node, 'postgres');
is(table_buffers('big'), '0', 'no buffer of the table after the restart');
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET client_min_messages = debug1; SELECT rows FROM taskflow.export('SELECT * FROM big', 'ring_files', 'par', 'csv', '{"parallel": 3, "max_file_size": "4MB"}')});
is($ret, 0, 'parallel export succeeds') or diag($err);
is($out, '400000', 'parallel export has every row');
my ($procs) = $err =~ /parallel export of big: (\d+) processes/;
cmp_ok($procs // 0, '>', 1, 'more than one process exported rows') or diag($err);
my $after = table_buffers('big');
cmp_ok($after, '<', $pool / 2, "the table holds $after of $pool buffers after the parallel export (a ring per chunk)");

is(q1(q{SELECT rows FROM taskflow.export('SELECT * FROM big', 'ring_files', 'ser', 'csv', '{"parallel": 1}')}),
	'400000', 'serial export has every row');
is(manifest('par')->{rows_digest}, manifest('ser')->{rows_digest}, 'same row digest as the serial export');
is(manifest('par')->{rows}, 400000, 'the manifest counts every row');

# a table under a quarter of the pool: no ring, the same rows
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT rows FROM taskflow.export('SELECT * FROM small', 'ring_files', 'small_par', 'csv', '{"parallel": 3}')});
is($ret, 0, 'parallel export of a small table succeeds') or diag($err);
is($out, '20000', 'small table: every row');
is(q1(q{SELECT rows FROM taskflow.export('SELECT * FROM small', 'ring_files', 'small_ser', 'csv', '{"parallel": 1}')}),
	'20000', 'small table, serial');
is(manifest('small_par')->{rows_digest}, manifest('small_ser')->{rows_digest}, 'small table: same row digest');

done_testing();
