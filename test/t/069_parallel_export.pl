# Parallel export of one table (parexport.c), on file:// and on the local S3
# server:
# - export(..., '{"parallel": 3}') gives the same rows (count + row digest of
#   the manifest) as a serial export, more than one process exported rows,
#   part names are distinct and the manifest lists every part; import() and
#   DuckDB read every row back;
# - a query that cannot be split (ORDER BY) or a selective index scan runs
#   serially and still exports every row;
# - an ERROR in a parallel worker fails the whole export: nothing becomes
#   visible (no part, no manifest, no _SUCCESS, no pending multipart upload,
#   no temporary file) and the rows stay in the table;
# - an archive node with parallel = 3 and source delete: every row archived
#   once, deleted in its one transaction, read back by import().
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $root = TaskflowS3->root;
my $node = TaskflowTest->start_node('parexp');
my $s3 = TaskflowS3->start(buckets => ['par']);
$s3->create_server($node, 'par_s3', bucket => 'par', prefix => 'base',
	options => { part_size => '5MB', max_retries => '1' });
my $fdir = "$PostgreSQL::Test::Utils::tmp_check/par_files";
mkdir $fdir;
chmod 0777, $fdir;

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(qq{CREATE SERVER par_files FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$fdir')});
q1(q{
CREATE TABLE src (order_id bigint, product_name varchar(32), price double precision,
                  total_amount double precision, created_date date, note text);
INSERT INTO src
  SELECT g, 'product ' || (g % 97), (g % 1000) / 4.0, (g % 3333) * 1.25,
         date '2020-01-01' + (g % 366),
         CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN '' ELSE md5(g::text) || ', "x"' || E'\n' || 'é' END
    FROM generate_series(1, 200000) g;
CREATE INDEX ON src (created_date);
VACUUM ANALYZE src;
CREATE TABLE back (LIKE src);
});
my $diff_sql = q{SELECT count(*) FROM ((TABLE src EXCEPT ALL TABLE back) UNION ALL (TABLE back EXCEPT ALL TABLE src)) s};

sub manifest
{
	my ($server, $path) = @_;
	return decode_json(q1(qq{SELECT convert_from(taskflow.get_object('$server', '$path/_manifest.json'), 'UTF8')}));
}

# run an export with client_min_messages = debug1: (result, stderr)
sub export_dbg
{
	my ($sql, %o) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		($o{quiet} ? '' : "SET client_min_messages = debug1; ")
		  . ($o{pause} ? "SET taskflow.test_pause_at = '$o{pause}'; " : '')
		  . $sql);
	return ($ret, $out, $err);
}

sub listing
{
	my ($server, $path) = @_;
	return q1(qq{SELECT coalesce(string_agg(key, ',' ORDER BY key), '') FROM taskflow.list_objects('$server', '$path/')});
}

for my $be ([ 'file', 'par_files' ], [ 's3', 'par_s3' ])
{
	my ($name, $server) = @$be;
	for my $fmt ('csv', 'csv.gz')
	{
		my $tag = "$name $fmt";
		my $ser = q1(qq{SELECT objects || '|' || rows FROM taskflow.export('SELECT * FROM src', '$server', '$name/ser_$fmt', '$fmt', '{"parallel": 1, "max_file_size": "2MB"}')});
		like($ser, qr/^\d+\|200000$/, "$tag: serial export ($ser)");
		my ($ret, $out, $err) = export_dbg(qq{SELECT objects || '|' || rows FROM taskflow.export('SELECT * FROM src', '$server', '$name/par_$fmt', '$fmt', '{"parallel": 3, "max_file_size": "2MB"}')},
			pause => 'parallel_attach');
		is($ret, 0, "$tag: parallel export succeeds") or diag($err);
		like($out, qr/^\d+\|200000$/, "$tag: parallel export exported every row ($out)");
		my ($procs, $rows) = $err =~ /parallel export of src: (\d+) processes \(3 planned\).*rows per process: ([\d, ]+)/;
		ok(defined $procs && $procs >= 2, "$tag: more than one process exported (" . ($procs // 'none') . ")")
		  or diag($err);
		my @per = split /, /, ($rows // '');
		my $busy = grep { $_ > 0 } @per;
		cmp_ok($busy, '>=', 2, "$tag: rows came from several processes ($rows)") if defined $rows;

		my $ms = manifest($server, "$name/ser_$fmt");
		my $mp = manifest($server, "$name/par_$fmt");
		is($mp->{rows}, 200000, "$tag: manifest row count");
		is($mp->{rows_digest}, $ms->{rows_digest}, "$tag: same row digest as the serial export");
		my %names = map { $_->{name} => 1 } @{ $mp->{parts} };
		is(scalar(keys %names), scalar(@{ $mp->{parts} }), "$tag: part names are distinct");
		is($mp->{objects}, scalar(@{ $mp->{parts} }), "$tag: objects = parts listed");
		my $sum = 0;
		$sum += $_->{rows} for @{ $mp->{parts} };
		is($sum, 200000, "$tag: the parts' rows add up");
		my $ext = $fmt eq 'csv' ? '.csv' : '.csv.gz';
		my @have = sort split /,/, listing($server, "$name/par_$fmt");
		my @want = sort((map { "$name/par_$fmt/$_" } keys %names),
			"$name/par_$fmt/_SUCCESS", "$name/par_$fmt/_manifest.json");
		is("@have", "@want", "$tag: the manifest lists every part and nothing else is there");
		q1('TRUNCATE back');
		is(q1(qq{SELECT taskflow.import('$server', '$name/par_$fmt/', 'back', '$fmt')}), '200000',
			"$tag: import reads every row");
		is(q1($diff_sql), '0', "$tag: round trip is exact");
	}
}

# DuckDB reads a parallel csv.gz export on file://
{
	is(q1(q{SELECT rows FROM taskflow.export('SELECT * FROM src', 'par_files', 'duck/y=2020/m=01/d=01', 'csv.gz', '{"parallel": 3, "max_file_size": "2MB"}')}),
		'200000', 'parallel export to a Hive-partitioned path');
	my $out = `SUM_COL=total_amount node '$root/test/s3/duck_check.mjs' '$fdir/duck' 2>&1`;
	is($?, 0, 'DuckDB reads the parallel export') or diag($out);
	my $d = eval { decode_json((split /\n/, $out)[-1]) } // {};
	is($d->{rows}, 200000, 'DuckDB: every row');
	is($d->{sum}, q1(q{SELECT round(sum(total_amount)::numeric, 2) FROM src}) + 0, 'DuckDB: sum equals the source');
}

# serial fallbacks: a query that cannot be split, a selective index scan
{
	my ($ret, $out, $err) = export_dbg(q{SELECT rows FROM taskflow.export('SELECT * FROM src ORDER BY order_id', 'par_files', 'fb/order', 'csv', '{"parallel": 3}')});
	is($out, '200000', 'ORDER BY: every row');
	like($err, qr/export runs serially: the query is more than a scan/, 'ORDER BY: serial, with a notice');
	($ret, $out, $err) = export_dbg(q{SELECT rows FROM taskflow.export($$SELECT * FROM src WHERE created_date = '2020-02-01'$$, 'par_files', 'fb/idx', 'csv', '{"parallel": 3}')});
	is($out, q1(q{SELECT count(*) FROM src WHERE created_date = '2020-02-01'}), 'index scan: every row');
	like($err, qr/export runs serially: the planner reads the table through an index/, 'index scan: serial');
	($ret, $out, $err) = export_dbg(q{SELECT rows FROM taskflow.export('SELECT * FROM src', 'par_files', 'fb/auto', 'csv')});
	is($out, '200000', 'automatic choice: every row');
	unlike($err, qr/parallel export of src/, 'automatic choice: a small export stays serial');
}

# an ERROR in a worker fails the whole export and leaves nothing visible
for my $be ([ 'file', 'par_files' ], [ 's3', 'par_s3' ])
{
	my ($name, $server) = @$be;
	my ($ret, $out, $err) = export_dbg(qq{SELECT rows FROM taskflow.export('SELECT * FROM src', '$server', '$name/fail', 'csv', '{"parallel": 3, "max_file_size": "1MB"}')},
		pause => 'parallel_worker_error', quiet => 1);
	isnt($ret, 0, "$name: the export fails when a worker fails");
	like($err, qr/taskflow test error in parallel export worker/, "$name: the worker's error is reported")
	  or diag(join('', grep { /ERROR|FATAL|parallel|exited/ } split /^/, slurp_file($node->logfile)));
	is(listing($server, "$name/fail"), '', "$name: no object is visible");
	is(q1('SELECT count(*) FROM src'), '200000', "$name: the rows are still there");
	if ($name eq 's3')
	{
		is($s3->pending_uploads('par'), 0, 's3: no multipart upload is left pending');
	}
	else
	{
		my @tmp = glob("$fdir/file/fail/.* $fdir/file/fail/*");
		@tmp = grep { !m{/\.\.?$} } @tmp;
		is(scalar(@tmp), 0, 'file: no temporary file is left') or diag(join(' ', @tmp));
	}
}

# option validation
{
	my ($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM taskflow.export('SELECT 1', 'par_files', 'v', 'csv', '{"parallel": 65}')});
	like($err, qr/parallel must be an integer between 0 and 64/, 'export: parallel is bounded');
	($ret, $out, $err) = $node->psql('postgres', q{SELECT taskflow.create_flow('bad_par'); SELECT taskflow.add_node('bad_par', 'a', 'archive', options => '{"server": "par_files", "path": "x/", "table": "src", "parallel": -1}')});
	like($err, qr/parallel/, 'archive node: parallel is validated when the node is added');
}

# an archive node, parallel = 3, source delete
{
	q1(q{CREATE TABLE arch AS SELECT * FROM src WHERE created_date < '2020-07-01'});
	my $n = q1('SELECT count(*) FROM arch');
	q1(q{SELECT taskflow.create_flow('par_arch');
	     SELECT taskflow.add_node('par_arch', 'a', 'archive',
	       options => '{"server": "par_s3", "path": "arch/", "table": "arch", "format": "csv.gz",
	                    "max_file_size": "1MB", "parallel": 3, "source": "delete"}')});
	my ($run, $state) = TaskflowTest->run_and_wait($node, 'par_arch', timeout => 180);
	is($state, 'succeeded', 'archive node: succeeded')
	  or diag(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $run"));
	is(q1('SELECT count(*) FROM arch'), '0', 'archive node: the rows were deleted');
	my $m = manifest('par_s3', 'arch');
	is($m->{rows}, $n, 'archive node: the manifest counts every row');
	like(q1("SELECT log FROM taskflow.node_run_history WHERE run_id = $run"),
		qr/uploaded \d+ object\(s\).*\d processes\)/, 'archive node: the export ran in several processes');
	q1('TRUNCATE back');
	is(q1(q{SELECT taskflow.import('par_s3', 'arch/', 'back', 'csv.gz')}), $n, 'archive node: import reads every row back');
	is(q1(q{SELECT count(*) FROM ((SELECT * FROM src WHERE created_date < '2020-07-01' EXCEPT ALL TABLE back)
	        UNION ALL (TABLE back EXCEPT ALL SELECT * FROM src WHERE created_date < '2020-07-01')) s}),
		'0', 'archive node: archived rows equal the source rows');
}

done_testing();
