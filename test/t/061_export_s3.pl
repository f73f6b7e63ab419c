# taskflow.export() / taskflow.import() against the local S3 server:
# multipart uploads (etag with '-'), csv.gz parts, round trip through
# import, stale part removal on S3, and a query error in the middle of a
# multipart upload (the upload is aborted, nothing is marked complete).
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $node = TaskflowTest->start_node('exports3');
my $s3 = TaskflowS3->start(buckets => ['exp']);
$s3->create_server($node, 'exp_s3', bucket => 'exp', prefix => 'base',
	options => { part_size => '5MB', max_retries => '1' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE TABLE big (order_id bigint, product_name varchar(32), price double precision,
                  total_amount double precision, created_date date, note text);
INSERT INTO big
  SELECT g, 'product ' || (g % 97), (g % 1000) / 4.0, (g % 3333) * 1.25,
         date '2020-01-01' + (g % 366),
         CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN '' ELSE md5(g::text) || ', "x"' END
    FROM generate_series(1, 150000) g;
CREATE TABLE back (LIKE big);
});
my $diff_sql = q{SELECT count(*) FROM ((TABLE big EXCEPT ALL TABLE back) UNION ALL (TABLE back EXCEPT ALL TABLE big)) s};

# one big csv part: a multipart upload
is(q1(q{SELECT objects || '|' || rows || '|' || (bytes > 5 * 1024 * 1024)
          FROM taskflow.export('SELECT * FROM big ORDER BY order_id', 'exp_s3', 'one')}),
	'1|150000|true', 'export of 150000 rows into one object larger than a multipart part');
ok(-f $s3->dir . '/exp/base/one/part-00000.csv._S3rver_object', 'object under the server prefix');
my $log = join("\n", @{ $s3->stats->{log} });
like($log, qr{POST /exp/base/one/part-00000\.csv\?uploads.*partNumber=2.*HEAD /exp/base/one/part-00000\.csv 200}s,
	'uploaded as a multipart upload, then verified with HEAD');
my $m = decode_json(q1(q{SELECT convert_from(taskflow.get_object('exp_s3', 'one/_manifest.json'), 'UTF8')}));
ok(defined $m->{parts}[0]{etag} && $m->{parts}[0]{md5} =~ /^[0-9a-f]{32}$/, 'etag and md5 in the manifest');
is(q1(q{SELECT taskflow.import('exp_s3', 'one', 'back')}), '150000', 'import from S3');
is(q1($diff_sql), '0', 'round trip is exact (EXCEPT ALL both ways)');

# csv.gz, several parts
q1('TRUNCATE back');
my $r = q1(q{SELECT objects || '|' || rows FROM taskflow.export('SELECT * FROM big', 'exp_s3', 'gz', 'csv.gz',
             '{"max_file_size": "1MB"}')});
like($r, qr/^\d+\|150000$/, "csv.gz export ($r objects|rows)");
my ($nobj) = split /\|/, $r;
cmp_ok($nobj, '>', 1, 'split into several gzip parts');
is(q1(q{SELECT bool_and(size <= 1024 * 1024 + 64 * 1024) FROM taskflow.list_objects('exp_s3', 'gz/') WHERE key LIKE '%part-%'}),
	't', 'parts stay near max_file_size (compressed bytes)');
is(q1(q{SELECT taskflow.import('exp_s3', 'gz/', 'back', 'csv.gz')}), '150000', 'import of the gzip parts');
is(q1($diff_sql), '0', 'csv.gz round trip is exact');

# stale parts on S3: a smaller rerun removes the parts it did not write
q1(q{SELECT * FROM taskflow.export('SELECT * FROM big WHERE order_id <= 10', 'exp_s3', 'gz', 'csv.gz')});
is(q1(q{SELECT string_agg(key, ',' ORDER BY key) FROM taskflow.list_objects('exp_s3', 'gz/')}),
	'gz/_SUCCESS,gz/_manifest.json,gz/part-00000.csv.gz', 'stale parts removed on rerun');

# a query error in the middle of a multipart upload
$s3->reset_stats;
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT * FROM taskflow.export('SELECT *, 1 / (order_id - 140000) AS boom FROM big',
	                                'exp_s3', 'broken')});
isnt($ret, 0, 'export fails');
like($err, qr/division by zero/, 'with the query error');
is($s3->pending_uploads('exp'), 0, 'the multipart upload was aborted');
cmp_ok($s3->stats->{aborts}, '>=', 1, 'S3 saw AbortMultipartUpload')
  or diag(explain($s3->stats));
is(q1(q{SELECT count(*) FROM taskflow.list_objects('exp_s3', 'broken/')}), '0', 'nothing left under the path');

# a user needs USAGE on the server and a user mapping of its own (or PUBLIC)
q1(q{CREATE ROLE bob LOGIN; GRANT SELECT ON big TO bob});
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE bob; SELECT * FROM taskflow.export('SELECT 1', 'exp_s3', 'bob')});
like($err, qr/permission denied for storage server "exp_s3"/, 'no USAGE: refused');
q1(q{GRANT USAGE ON FOREIGN SERVER exp_s3 TO bob});
$s3->create_user_mapping($node, 'exp_s3', role => 'bob');
is(q1(q{SET ROLE bob; SELECT rows FROM taskflow.export('SELECT count(*) FROM big', 'exp_s3', 'bob')}), '1',
	'with USAGE and a user mapping the export works');
is(q1(q{SELECT convert_from(taskflow.get_object('exp_s3', 'bob/part-00000.csv'), 'UTF8')}), "count\n150000\n",
	'content written as bob');

$s3->stop;
done_testing();
