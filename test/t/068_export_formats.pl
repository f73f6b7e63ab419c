# Export formats and the overlapped S3 upload (format.c, s3.c):
# - csv.zst parts (one zstd frame each): zstd -d, DuckDB, import and a
#   foreign table read them back, rows and content equal to the source;
# - csv.gz parts are concatenations of gzip members (libdeflate blocks):
#   zcat / gzip -t, DuckDB and taskflow.import read them back, rows and
#   content equal to the source, at several compression levels;
# - a csv object of several multipart parts, each uploaded while the next
#   one is produced (two part buffers): content equal to the source, parts
#   in order, read back by DuckDB;
# - an archive node writing csv.zst, read back by import;
# - an S3 5xx on an overlapped part: retried (max_retries 1) and the export
#   is whole; with no retry left the export fails, nothing is completed and
#   the multipart upload is aborted.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $node = TaskflowTest->start_node('formats');
my $s3 = TaskflowS3->start(buckets => ['fmt']);
$s3->create_server($node, 'fmt_s3', bucket => 'fmt', prefix => 'base',
	options => { part_size => '5MB', max_retries => '1' });
my $root = TaskflowS3->root;

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# decompressed text of an object in the S3 server's store
sub obj_file { return $s3->dir . "/fmt/base/$_[0]._S3rver_object"; }

sub duck
{
	my ($dir) = @_;
	my $out = `node '$root/test/s3/duck_check.mjs' '$dir' 2>&1`;
	die "duck_check failed: $out" if $? != 0;
	return decode_json((split /\n/, $out)[-1]);
}

q1(q{
CREATE TABLE src (order_id bigint, product_name varchar(32), price double precision,
                  total_amount double precision, created_date date, note text);
INSERT INTO src
  SELECT g, 'product ' || (g % 97), (g % 1000) / 4.0, (g % 3333) * 1.25,
         date '2020-01-01' + (g % 366),
         CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN '' ELSE md5(g::text) || ', "x"' || E'\n' || 'é' END
    FROM generate_series(1, 200000) g;
CREATE TABLE back (LIKE src);
});
my $diff_sql = q{SELECT count(*) FROM ((TABLE src EXCEPT ALL TABLE back) UNION ALL (TABLE back EXCEPT ALL TABLE src)) s};
my $src_sum = q1(q{SELECT round(sum(total_amount)::numeric, 2) FROM src});

# ---- csv.gz: several parts of several gzip members each
for my $level (1, 6, 9)
{
	q1('TRUNCATE back');
	my $p = "gz$level/y=2020/m=01/d=01";
	my $r = q1(qq{SELECT objects || '|' || rows FROM taskflow.export('SELECT * FROM src', 'fmt_s3', '$p', 'csv.gz',
	             '{"max_file_size": "1MB", "compression_level": $level}')});
	like($r, qr/^\d+\|200000$/, "csv.gz level $level: export ($r objects|rows)");
	my ($nobj) = split /\|/, $r;
	cmp_ok($nobj, '>', 1, "csv.gz level $level: several parts");
	is(q1(qq{SELECT bool_and(size <= 1024 * 1024 + 64 * 1024) FROM taskflow.list_objects('fmt_s3', '$p/') WHERE key LIKE '%part-%'}),
		't', "csv.gz level $level: parts stay near max_file_size");
	is(q1(qq{SELECT taskflow.import('fmt_s3', '$p/', 'back', 'csv.gz')}), '200000',
		"csv.gz level $level: import reads every row");
	is(q1($diff_sql), '0', "csv.gz level $level: round trip is exact");

	# an independent gunzip: every part is a valid gzip file; more than one member
	my $f = obj_file("$p/part-00000.csv.gz");
	system('gzip', '-t', $f);
	is($?, 0, "csv.gz level $level: gzip -t accepts part 0");
	my $raw = slurp_file($f);
	my $members = () = $raw =~ /\x1f\x8b\x08/g;
	cmp_ok($members, '>', 1, "csv.gz level $level: part 0 holds several gzip members ($members)");
	my $lines = 0;
	for my $part (glob($s3->dir . "/fmt/base/$p/part-*.csv.gz._S3rver_object"))
	{
		my $txt = `zcat '$part'`;
		is($?, 0, "csv.gz level $level: zcat " . ($part =~ m{(part-\d+)})[0]);
		like($txt, qr/^order_id,product_name,price,total_amount,created_date,note\n/,
			"csv.gz level $level: header first in " . ($part =~ m{(part-\d+)})[0]);
		$lines += () = $txt =~ /\n/g;
	}
	# rows with a quoted newline count twice; headers once per part
	my $expect = q1(q{SELECT count(*) + count(*) FILTER (WHERE note LIKE E'%\n%') FROM src}) + $nobj;
	is($lines, $expect, "csv.gz level $level: zcat gives every line");
}

# DuckDB reads the gzip members (level 6 export above)
my $d = duck($s3->dir . '/fmt/base/gz6');
is($d->{rows}, 200000, 'DuckDB reads every row of the csv.gz parts');
is(sprintf('%.2f', $d->{sum}), $src_sum, 'DuckDB: total_amount sum equals the source');

# empty result: one part with the header, a valid gzip file
q1(q{SELECT * FROM taskflow.export('SELECT * FROM src WHERE false', 'fmt_s3', 'gzempty', 'csv.gz')});
is(`zcat '@{[obj_file('gzempty/part-00000.csv.gz')]}'`,
	"order_id,product_name,price,total_amount,created_date,note\n", 'empty csv.gz: header only');

# ---- csv.zst: one zstd frame per part
for my $level (1, 3, 9)
{
	q1('TRUNCATE back');
	my $p = "zst$level/y=2020/m=01/d=01";
	my $r = q1(qq{SELECT objects || '|' || rows FROM taskflow.export('SELECT * FROM src', 'fmt_s3', '$p', 'csv.zst',
	             '{"max_file_size": "1MB", "compression_level": $level}')});
	like($r, qr/^\d+\|200000$/, "csv.zst level $level: export ($r objects|rows)");
	my ($nobj) = split /\|/, $r;
	cmp_ok($nobj, '>', 1, "csv.zst level $level: several parts");
	is(q1(qq{SELECT bool_and(size <= 1024 * 1024 + 64 * 1024) FROM taskflow.list_objects('fmt_s3', '$p/') WHERE key LIKE '%part-%.csv.zst'}),
		't', "csv.zst level $level: parts stay near max_file_size");
	is(q1(qq{SELECT taskflow.import('fmt_s3', '$p/', 'back', 'csv.zst')}), '200000',
		"csv.zst level $level: import reads every row");
	is(q1($diff_sql), '0', "csv.zst level $level: round trip is exact");
	my $lines = 0;
	for my $part (glob($s3->dir . "/fmt/base/$p/part-*.csv.zst._S3rver_object"))
	{
		my $txt = `zstd -dcq '$part'`;
		is($?, 0, "csv.zst level $level: zstd -d " . ($part =~ m{(part-\d+)})[0]);
		$lines += () = $txt =~ /\n/g;
	}
	my $expect = q1(q{SELECT count(*) + count(*) FILTER (WHERE note LIKE E'%\n%') FROM src}) + $nobj;
	is($lines, $expect, "csv.zst level $level: zstd -d gives every line");
}
my $m = decode_json(q1(q{SELECT convert_from(taskflow.get_object('fmt_s3', 'zst3/y=2020/m=01/d=01/_manifest.json'), 'UTF8')}));
is("$m->{format} $m->{compression}", 'csv.zst zstd', 'csv.zst manifest: format and compression');
$d = duck($s3->dir . '/fmt/base/zst3');
is($d->{rows}, 200000, 'DuckDB reads every row of the csv.zst parts');
is(sprintf('%.2f', $d->{sum}), $src_sum, 'DuckDB (csv.zst): total_amount sum equals the source');
q1(q{CREATE FOREIGN TABLE zst_ft (order_id bigint, product_name varchar(32), price float8,
        total_amount float8, created_date date, note text, y text, m text, d text) SERVER fmt_s3 OPTIONS (path 'zst9/', format 'csv.zst', partition_columns 'y,m,d')});
is(q1(q{SELECT count(*) || ' ' || round(sum(total_amount)::numeric, 2) FROM zst_ft}), "200000 $src_sum",
	'csv.zst read through a foreign table');
q1(q{SELECT * FROM taskflow.export('SELECT * FROM src WHERE false', 'fmt_s3', 'zstempty', 'csv.zst')});
is(`zstd -dcq '@{[obj_file('zstempty/part-00000.csv.zst')]}'`,
	"order_id,product_name,price,total_amount,created_date,note\n", 'empty csv.zst: header only');
my ($zrc, $zout, $zerr) = $node->psql('postgres', q{SELECT taskflow.import('fmt_s3', 'zst1/y=2020/m=01/d=01/part-00000.csv.zst', 'back')});
like($zerr, qr/looks zstd-compressed but format is csv/, 'a .zst object read as csv is refused');

# ---- csv: one object of >= 3 multipart parts, overlapped
q1('TRUNCATE back');
$s3->reset_stats;
my $r = q1(q{SELECT objects || '|' || rows || '|' || bytes FROM taskflow.export('SELECT * FROM src, generate_series(1, 2)',
             'fmt_s3', 'big/y=2020/m=01/d=02', 'csv')});
my ($nobj, $rows, $bytes) = split /\|/, $r;
is("$nobj|$rows", '1|400000', 'csv export of 400000 rows into one object');
cmp_ok($bytes, '>', 3 * 5 * 1024 * 1024, "more than 3 parts of 5MB ($bytes bytes)");
my @log = @{ $s3->stats->{log} };
my @partnos = map { /partNumber=(\d+)&/ ? $1 : () } grep { /^PUT .*big.*partNumber=\d+&uploadId=.* 200$/ } @log;
cmp_ok(scalar(@partnos), '>=', 3, 'uploaded as >= 3 parts (' . scalar(@partnos) . ')');
is(join(',', @partnos), join(',', 1 .. scalar(@partnos)), 'parts uploaded in order');
like(join("\n", @log), qr{POST /fmt/base/big/y%3D2020/m%3D01/d%3D02/part-00000\.csv\?uploadId=.* 200},
	'multipart upload completed');
q1(q{CREATE TABLE back2 (LIKE src, g int)});
is(q1(q{SELECT taskflow.import('fmt_s3', 'big/y=2020/m=01/d=02/', 'back2')}), '400000', 'import of the big object');
is(q1(q{SELECT count(*) FROM ((SELECT * FROM src, generate_series(1, 2) EXCEPT ALL TABLE back2)
                          UNION ALL (TABLE back2 EXCEPT ALL SELECT * FROM src, generate_series(1, 2))) s}),
	'0', 'overlapped multipart upload: content equals the source');
$d = duck($s3->dir . '/fmt/base/big');
is($d->{rows}, 400000, 'DuckDB reads every row of the multipart csv');

# ---- a 5xx on an overlapped part (part 2, sent while part 3 is produced)
# one retry left: retried, the export is whole
$s3->reset_stats;
$s3->set_fault(status => 503, count => 1, match => 'partNumber=2&');
$r = q1(q{SELECT objects || '|' || rows FROM taskflow.export('SELECT * FROM src, generate_series(1, 2)',
          'fmt_s3', 'retry', 'csv')});
is($r, '1|400000', '503 on an overlapped part with a retry left: export succeeds');
is(scalar(grep { /partNumber=2&.* 503$/ } @{ $s3->stats->{log} }), 1, 'part 2 answered 503 once');
like(slurp_file($node->logfile), qr/S3 PUT s3:\/\/fmt\/base\/retry\/part-00000\.csv: 503 \S+, retrying \(1 of 1\)/,
	'the retry of the overlapped part is logged');
is(q1(q{SELECT size FROM taskflow.list_objects('fmt_s3', 'retry/') WHERE key LIKE '%part-00000.csv'}),
	$bytes, 'retried object has every byte');
$s3->clear_faults;

# no retry left: the export fails, nothing completed, the upload aborted
q1(q{ALTER SERVER fmt_s3 OPTIONS (SET max_retries '0')});
$s3->reset_stats;
$s3->set_fault(status => 500, count => 1, match => 'partNumber=2&');
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT * FROM taskflow.export('SELECT * FROM src, generate_series(1, 2)', 'fmt_s3', 'fail', 'csv')});
isnt($rc, 0, '500 on an overlapped part without retries: export fails');
like($err, qr/S3 PUT s3:\/\/fmt\/base\/fail\/part-00000\.csv failed: 500/, 'the error names the object and the status');
my @st = @{ $s3->stats->{log} };
ok(!grep({ /^POST .*fail.*uploadId=/ } @st), 'no CompleteMultipartUpload was sent');
ok(scalar(grep { /^DELETE .*fail\/part-00000\.csv\?uploadId=/ } @st) >= 1, 'the multipart upload was aborted');
is($s3->pending_uploads('fmt'), 0, 'no multipart upload left in progress');
is(q1(q{SELECT count(*) FROM taskflow.list_objects('fmt_s3', 'fail/')}), '0', 'nothing visible under the path');
$s3->clear_faults;

# a cancel while a part is in flight: the statement ends, the upload is aborted
q1(q{ALTER SERVER fmt_s3 OPTIONS (SET max_retries '1')});
$s3->set_fault(delay_ms => 30000, count => 1, match => 'partNumber=2&');
($rc, $out, $err) = $node->psql('postgres',
	q{SET statement_timeout = '3s'; SELECT * FROM taskflow.export('SELECT * FROM src, generate_series(1, 2)', 'fmt_s3', 'cancel', 'csv')});
like($err, qr/canceling statement due to statement timeout/, 'statement timeout while a part hangs: canceled');
$s3->clear_faults;
for (1 .. 300) { last if $s3->pending_uploads('fmt') == 0; select(undef, undef, undef, 0.1); }
is($s3->pending_uploads('fmt'), 0, 'the canceled upload was aborted');

# ---- an archive node writes csv.zst (and deletes what it archived)
q1(q{ALTER SERVER fmt_s3 OPTIONS (SET max_retries '1')});
q1(q{CREATE TABLE arch AS SELECT * FROM src WHERE order_id <= 50000});
q1(q{SELECT taskflow.create_flow('zst_arch')});
q1(q{SELECT taskflow.add_node('zst_arch', 'archive', 'archive', options => '{"server": "fmt_s3",
       "path": "arch/", "table": "arch", "format": "csv.zst", "source": "delete"}')});
my ($run, $state) = TaskflowTest->run_and_wait($node, 'zst_arch', timeout => 120);
is($state, 'succeeded', 'archive node with format csv.zst succeeded')
  or diag(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $run"));
is(q1(q{SELECT count(*) FROM arch}), '0', 'archive node: the archived rows were deleted');
is(q1(q{SELECT string_agg(key, ',' ORDER BY key) FROM taskflow.list_objects('fmt_s3', 'arch/')}),
	'arch/_SUCCESS,arch/_manifest.json,arch/part-00000.csv.zst', 'archive node: one csv.zst part, manifest, _SUCCESS');
q1(q{CREATE TABLE arch_back (LIKE src)});
is(q1(q{SELECT taskflow.import('fmt_s3', 'arch/', 'arch_back', 'csv.zst')}), '50000', 'archive node: import reads the csv.zst part');
is(q1(q{SELECT count(*) FROM ((SELECT * FROM src WHERE order_id <= 50000 EXCEPT ALL TABLE arch_back)
                          UNION ALL (TABLE arch_back EXCEPT ALL SELECT * FROM src WHERE order_id <= 50000)) s}),
	'0', 'archive node: csv.zst content equals the archived rows');

$s3->stop;
$node->stop;
done_testing();
