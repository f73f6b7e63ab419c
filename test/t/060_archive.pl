# The reference archive scenario on the local S3 server: a daily flow from the
# archive_table_daily template moves one day of orders to
# dla_demo/y=2020/m=06/d=01/, DuckDB reads exactly those rows back (with the
# y/m/d partition columns), the table no longer holds them, other days are
# untouched, and a rerun does not duplicate.  Then the failure cases, each of
# which must leave every source row in place and a readable error: a wrong
# secret, S3 answering 500 past the retry budget, and the node worker killed
# in the middle of an upload.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $root = TaskflowS3->root;
# restart_after_crash: the kill -9 case below crash-restarts the cluster
my $node = TaskflowTest->start_node('archive', conf => "restart_after_crash = on\n");
my $s3 = TaskflowS3->start(buckets => ['dla']);
$s3->create_server($node, 'dla_s3', bucket => 'dla',
	options => { max_retries => '2', timeout => '60' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# DuckDB over the S3 server's on-disk objects under a key prefix
sub duck
{
	my ($prefix) = @_;
	my $dir = $s3->dir . "/dla/$prefix";
	my $out = `node '$root/test/s3/duck_check.mjs' '$dir' 2>&1`;
	die "duck_check failed: $out" if $? != 0;
	return decode_json($out);
}

# one day of orders: count|sum(total_amount)
sub day_stats
{
	my ($day) = @_;
	return q1("SELECT count(*) || '|' || coalesce(round(sum(total_amount)::numeric, 2), 0)
	             FROM orders WHERE created_date = '$day'");
}

sub run_day
{
	my ($flow, $day) = @_;
	my ($run, $state) = TaskflowTest->run_and_wait($node, $flow, bizdate => $day, timeout => 120);
	return ($run, $state);
}

sub node_info
{
	my ($run, $col) = @_;
	return q1("SELECT $col FROM taskflow.node_run_history WHERE run_id = $run AND node = 'archive'");
}

q1(q{
CREATE TABLE orders (order_id bigint PRIMARY KEY, product_name varchar(32),
                     price double precision, total_amount double precision, created_date date);
INSERT INTO orders
  SELECT g, 'product ' || (g % 50) || CASE WHEN g % 7 = 0 THEN ', "special"' ELSE '' END,
         (g % 100) + 0.25, ((g % 100) + 0.25) * (1 + g % 3), date '2020-05-30' + (g % 5)
    FROM generate_series(1, 5000) g;
});
my %before = map { $_ => day_stats($_) } qw(2020-05-30 2020-05-31 2020-06-01 2020-06-02 2020-06-03);
like($before{'2020-06-01'}, qr/^1000\|/, 'source has 1000 orders on 2020-06-01');

# ---- the reference scenario ----
q1(q{SELECT taskflow.create_flow_from_template('archive_table_daily', 'dla_orders',
       '{"table": "orders", "date_column": "created_date", "server": "dla_s3",
         "path_prefix": "dla_demo", "format": "csv.gz", "source": "delete",
         "schedule": "0 5 * * *", "timezone": "Asia/Shanghai"}')});
is(q1(q{SELECT schedule || ' ' || timezone FROM taskflow.flows WHERE name = 'dla_orders'}),
	'0 5 * * * Asia/Shanghai', 'flow scheduled daily at 05:00 Asia/Shanghai');
like(q1(q{SELECT options->>'path' FROM taskflow.nodes WHERE name = 'archive'}),
	qr{^dla_demo/y=\$\{year\}/m=\$\{month\}/d=\$\{day\}/$}, 'Hive path template');

my ($run, $state) = run_day('dla_orders', '2020-06-01');
is($state, 'succeeded', 'archive run for 2020-06-01 succeeded')
  or diag(q1("SELECT error || E'\n' || coalesce(log, '') FROM taskflow.node_run_history WHERE run_id = $run"));

is(q1(q{SELECT string_agg(key, ',' ORDER BY key) FROM taskflow.list_objects('dla_s3', 'dla_demo/')}),
	'dla_demo/y=2020/m=06/d=01/_SUCCESS,dla_demo/y=2020/m=06/d=01/_manifest.json,'
	  . 'dla_demo/y=2020/m=06/d=01/part-00000.csv.gz',
	'S3 holds the part, the manifest and _SUCCESS under dla_demo/y=2020/m=06/d=01/');
ok(-f $s3->dir . '/dla/dla_demo/y=2020/m=06/d=01/part-00000.csv.gz._S3rver_object',
	'object is on the S3 server\'s disk');

my $d = duck('dla_demo');
is(scalar @{ $d->{groups} }, 1, 'DuckDB sees one partition');
is_deeply([ @{ $d->{groups}[0] }{qw(y m d rows)} ], [ '2020', '06', '01', 1000 ],
	'DuckDB reads y=2020/m=06/d=01 with 1000 rows');
is(sprintf('%d|%.2f', $d->{rows}, $d->{sum}), $before{'2020-06-01'},
	'DuckDB count and sum(total_amount) equal the source day');
is(join(',', map { $_->{name} } @{ $d->{columns} }[0 .. 4]) . ' + ' . join(',', sort map { $_->{name} } @{ $d->{columns} }[5 .. 7]),
	'order_id,product_name,price,total_amount,created_date + d,m,y',
	'columns from the header plus the partition columns');

is(day_stats('2020-06-01'), '0|0', 'the archived day is gone from the table');
is(join(' ', map { day_stats($_) } qw(2020-05-30 2020-05-31 2020-06-02 2020-06-03)),
	join(' ', @before{qw(2020-05-30 2020-05-31 2020-06-02 2020-06-03)}), 'other days untouched');

is(node_info($run, q{rows || '|' || (bytes > 0)}), '1000|true', 'node run records rows and bytes');
like(node_info($run, 'rendered'), qr{dla_demo/y=2020/m=06/d=01/.*created_date OPERATOR\(pg_catalog\.=\) '2020-06-01'.*DELETE FROM}s,
	'rendered shows path, predicate and the delete');
like(node_info($run, 'log'), qr/deleted 1000 rows.*published 1 object.*verified dla_demo.*_SUCCESS/s,
	'log shows the delete (uncommitted), then publishing, verification and _SUCCESS');
my $manifest = decode_json(q1(q{SELECT convert_from(taskflow.get_object('dla_s3',
    'dla_demo/y=2020/m=06/d=01/_manifest.json'), 'UTF8')}));
is("$manifest->{rows} $manifest->{format} " . scalar(@{ $manifest->{parts} }), '1000 csv.gz 1',
	'manifest: rows, format, parts');
my $etag = $manifest->{parts}[0]{etag} // '';
# a part is a multipart upload (staged until published): S3's multipart etag,
# the md5 of the parts' binary md5s and their count; one part here
is($etag, md5_hex(pack('H*', $manifest->{parts}[0]{md5})) . '-1',
	'manifest etag is the multipart etag of the bytes written (md5 of the part md5s, -1)');

# rerun of an archived day: nothing left to archive, the archive stays
($run, $state) = run_day('dla_orders', '2020-06-01');
is($state, 'succeeded', 'rerun of 2020-06-01 succeeded');
like(node_info($run, 'log'), qr/nothing to archive/, 'rerun says there is nothing to archive');
$d = duck('dla_demo');
is(sprintf('%d|%.2f', $d->{rows}, $d->{sum}), $before{'2020-06-01'}, 'rerun did not duplicate or lose rows');

# a late row for an archived day is refused instead of overwriting the archive
q1(q{INSERT INTO orders VALUES (100001, 'late', 1, 1, '2020-06-01')});
($run, $state) = run_day('dla_orders', '2020-06-01');
is($state, 'failed', 'late row for an archived day: run fails');
like(node_info($run, 'error'), qr/already holds a completed archive of 1000 rows/, 'readable error');
is(day_stats('2020-06-01'), '1|1.00', 'the late row stays in the table');
q1(q{DELETE FROM orders WHERE order_id = 100001});

# ---- failure cases on 2020-06-02: every row must stay ----
sub check_failed
{
	my ($what, $run, $state, $err_re) = @_;
	is($state, 'failed', "$what: run failed");
	note("$what: " . node_info($run, "coalesce(error, '') || ' [' || coalesce(sqlstate, '') || ']'"));
	like(node_info($run, 'error'), $err_re, "$what: readable error in node_run_history");
	is(day_stats('2020-06-02'), $before{'2020-06-02'}, "$what: every source row is still there");
	ok(!-e $s3->dir . '/dla/dla_demo/y=2020/m=06/d=02/_SUCCESS._S3rver_object',
		"$what: no _SUCCESS");
	my $secret = $s3->secret_key;
	unlike(q1("SELECT coalesce(error, '') || coalesce(log, '') || coalesce(rendered, '')
	             FROM taskflow.node_run_history WHERE run_id = $run"),
		qr/\Q$secret\E|wrong-secret/, "$what: no secret in the node run");
}

# wrong secret in the user mapping
$s3->create_user_mapping($node, 'dla_s3', secret_key => 'wrong-secret-0123456789');
($run, $state) = run_day('dla_orders', '2020-06-02');
check_failed('wrong secret', $run, $state, qr/403|SignatureDoesNotMatch/);
$s3->create_user_mapping($node, 'dla_s3');

# S3 answers 500 to every PUT, more often than the retry budget
$s3->set_fault(status => 500, count => 1000, match => 'PUT');
($run, $state) = run_day('dla_orders', '2020-06-02');
check_failed('S3 500 past the retries', $run, $state, qr/500/);
$s3->clear_faults;

# the worker is terminated while its upload hangs in the S3 server
$s3->reset_stats;
$s3->set_fault(delay_ms => 20000, count => 1, match => 'PUT');
$run = TaskflowTest->run_flow($node, 'dla_orders', bizdate => '2020-06-02');
my $deadline = time + 60;
my $pid = '';
while (time < $deadline)
{
	$pid = q1("SELECT worker_pid FROM taskflow.node_run_history WHERE run_id = $run AND state = 'running'");
	last if $pid ne '' && $s3->stats->{faults} >= 1;
	select(undef, undef, undef, 0.1);
}
ok($pid ne '' && $s3->stats->{faults} >= 1, 'worker is uploading (PUT delayed by the S3 server)');
is(q1("SELECT pg_terminate_backend($pid)"), 't', 'terminated the node worker mid-upload');
$state = TaskflowTest->wait_run($node, $run, timeout => 60);
check_failed('worker killed mid-upload', $run, $state, qr/.+/);
$s3->clear_faults;

# the same with kill -9 (the postmaster restarts everything; the scheduler
# then finds the node run without a worker and fails it)
$s3->reset_stats;
$s3->set_fault(delay_ms => 20000, count => 1, match => 'PUT');
$run = TaskflowTest->run_flow($node, 'dla_orders', bizdate => '2020-06-02');
$deadline = time + 60;
$pid = '';
while (time < $deadline)
{
	$pid = q1("SELECT worker_pid FROM taskflow.node_run_history WHERE run_id = $run AND state = 'running'");
	last if $pid ne '' && $s3->stats->{faults} >= 1;
	select(undef, undef, undef, 0.1);
}
ok($pid ne '' && kill('KILL', $pid), 'kill -9 of the node worker mid-upload');
ok($node->poll_query_until('postgres',
		"SELECT state IN ('failed', 'succeeded') FROM taskflow.runs WHERE id = $run"),
	'run finished after the crash restart');
check_failed('worker kill -9 mid-upload', $run, q1("SELECT state FROM taskflow.runs WHERE id = $run"), qr/.+/);
$s3->clear_faults;

# after the failures a normal rerun archives the day exactly once
($run, $state) = run_day('dla_orders', '2020-06-02');
is($state, 'succeeded', 'rerun after the failures succeeded');
$d = duck('dla_demo');
is(join(' ', map { "$_->{d}:$_->{rows}" } @{ $d->{groups} }), '01:1000 02:1000',
	'DuckDB: both days once, no duplicates');
is(day_stats('2020-06-02'), '0|0', '2020-06-02 archived and deleted');
is($s3->pending_uploads('dla'), 0,
	'the multipart upload of the killed worker was aborted by the rerun');

# ---- the same by explicit calls: csv, split into several parts ----
q1(q{
SELECT taskflow.create_flow('dla_parts', schedule => '0 5 * * *', timezone => 'Asia/Shanghai');
SELECT taskflow.set_variable('dla_parts', 'year', 'yyyy of bizdate');
SELECT taskflow.set_variable('dla_parts', 'month', 'mm of bizdate');
SELECT taskflow.set_variable('dla_parts', 'day', 'dd of bizdate');
SELECT taskflow.add_node('dla_parts', 'archive', 'archive', options => '{
  "server": "dla_s3", "path": "dla_parts/y=${year}/m=${month}/d=${day}/",
  "table": "orders", "where": "created_date = ${bizdate:literal}",
  "format": "csv", "max_file_size": "16kB", "source": "delete"}');
});
($run, $state) = run_day('dla_parts', '2020-05-31');
is($state, 'succeeded', 'explicit flow with csv parts succeeded')
  or diag(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $run"));
my $nparts = q1(q{SELECT count(*) FROM taskflow.list_objects('dla_s3', 'dla_parts/y=2020/m=05/d=31/')
                  WHERE key LIKE '%/part-%.csv'});
cmp_ok($nparts, '>', 1, "split into several parts ($nparts)");
$d = duck('dla_parts');
is(sprintf('%s%s%s %d|%.2f', @{ $d->{groups}[0] }{qw(y m d)}, $d->{rows}, $d->{sum}),
	"20200531 $before{'2020-05-31'}", 'DuckDB reads all parts: same count and sum');
is(day_stats('2020-05-31'), '0|0', '2020-05-31 deleted from the table');

$s3->stop;
done_testing();
