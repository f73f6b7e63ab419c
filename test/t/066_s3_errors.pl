# S3 errors without a body, and the 'timeout' option.
#
# - A HEAD answer never has a body: a 403 or 503 on HEAD must still give the
#   S3-style code, the SQLSTATE and the hint of the GET/PUT path.
# - 'timeout' means "no byte sent or received for that long": a stalled
#   request is cut within about a second of it (libcurl's low-speed check,
#   which averages over 5 s, used to let a 6 s stall pass a 2 s timeout).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TaskflowS3;
use TaskflowTest;

my $node = TaskflowTest->start_node('s3err', extension => 1);
my $s3 = TaskflowS3->start(buckets => ['errbkt']);
$s3->create_server($node, 'e3', bucket => 'errbkt',
	options => { max_retries => '2', timeout => '2' });

sub sql { return $node->safe_psql('postgres', $_[0]); }

# psql with verbose errors: (ok, stderr) -- stderr has "ERROR:  CODE: msg", DETAIL, HINT
sub try_sql
{
	my ($q) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$q");
	return ($ret == 0, $err);
}

sql("SELECT taskflow.put_object('e3', 'obj.txt', 'hello')");

# ---- HEAD 403: no body, same message shape, SQLSTATE and hint as GET/PUT
$s3->set_fault(status => 403, count => 1, match => 'HEAD');
my ($ok, $err) = try_sql("SELECT taskflow.get_object('e3', 'obj.txt')");
ok(!$ok, 'HEAD 403 is an error');
like($err, qr/ERROR:  42501: S3 HEAD s3:\/\/errbkt\/obj\.txt failed: 403 AccessDenied/,
	'HEAD 403: SQLSTATE 42501 and the S3 code AccessDenied');
like($err, qr/DETAIL:  The answer had no error body \(HEAD answers never have one\)/,
	'HEAD 403: detail says the code comes from the status');
like($err, qr/HINT:  Check the access_key_id \/ secret_access_key of the user mapping/,
	'HEAD 403: the credentials hint');
# the GET/PUT path, for comparison: the same code, SQLSTATE and hint
$s3->set_fault(status => 403, count => 1, match => 'PUT');
($ok, $err) = try_sql("SELECT taskflow.put_object('e3', 'x.txt', 'x')");
like($err, qr/ERROR:  42501: S3 PUT s3:\/\/errbkt\/x\.txt failed: 403 AccessDenied: Access Denied/,
	'PUT 403: same code and SQLSTATE, with the body\'s message');
like($err, qr/HINT:  Check the access_key_id \/ secret_access_key/, 'PUT 403: same hint');

# ---- HEAD 503: retried, then a clear error
$s3->reset_stats;
$s3->set_fault(status => 503, count => 2, match => 'HEAD');
is(sql("SELECT convert_from(taskflow.get_object('e3', 'obj.txt'), 'UTF8')"), 'hello',
	'HEAD 503 twice: retried, then succeeded');
is($s3->stats->{faults}, 2, 'both 503 answers were served');
$s3->set_fault(status => 503, count => 100, match => 'HEAD');
($ok, $err) = try_sql("SELECT taskflow.get_object('e3', 'obj.txt')");
like($err, qr/ERROR:  58030: S3 HEAD s3:\/\/errbkt\/obj\.txt failed: 503 ServiceUnavailable/,
	'HEAD 503 past the retries: SQLSTATE 58030 and the code ServiceUnavailable');
like($err, qr/DETAIL:  .*Gave up after 3 attempts\./, 'HEAD 503: attempts in the detail');
like($err, qr/HINT:  The storage service is unavailable or throttling requests; the request was tried 3 time\(s\)/,
	'HEAD 503: the retry hint');
$s3->clear_faults;
like(slurp_file($node->logfile), qr/S3 HEAD s3:\/\/errbkt\/obj\.txt: HTTP 503, retrying \(1 of 2\)/,
	'the HEAD retries are logged');

# ---- timeout 2 s against a 6 s stall
sql("ALTER SERVER e3 OPTIONS (SET max_retries '0')");
# a PUT whose body was sent, then the answer stalls (the late case)
$s3->set_fault(delay_ms => 6000, count => 1, match => 'PUT');
my $t0 = time;
($ok, $err) = try_sql("SELECT taskflow.put_object('e3', 'slow.txt', repeat('x', 100000)::bytea)");
my $el = time - $t0;
like($err, qr/ERROR:  08006: S3 PUT s3:\/\/errbkt\/slow\.txt failed: timeout \(no progress for 2 s\)/,
	'PUT stalled 6 s: timeout error');
ok($el >= 1.9 && $el < 3.5, sprintf('PUT: timeout 2 s tripped after %.2f s', $el));
# a GET stalled before the answer
$s3->set_fault(delay_ms => 6000, count => 1, match => 'GET');
$t0 = time;
($ok, $err) = try_sql("SELECT taskflow.get_object('e3', 'obj.txt')");
$el = time - $t0;
like($err, qr/failed: timeout \(no progress for 2 s\)/, 'GET stalled 6 s: timeout error');
ok($el >= 1.9 && $el < 3.5, sprintf('GET: timeout 2 s tripped after %.2f s', $el));
# with a retry left, the stalled attempt is cut and the retry succeeds
sql("ALTER SERVER e3 OPTIONS (SET max_retries '1')");
$s3->set_fault(delay_ms => 6000, count => 1, match => 'PUT');
$t0 = time;
sql("SELECT taskflow.put_object('e3', 'slow.txt', 'second try')");
$el = time - $t0;
is(sql("SELECT convert_from(taskflow.get_object('e3', 'slow.txt'), 'UTF8')"), 'second try',
	'stalled PUT retried after the timeout');
ok($el < 4.5, sprintf('stall cut and retried in %.2f s', $el));
$s3->clear_faults;

# ---- staged export parts on S3
sql("ALTER SERVER e3 OPTIONS (SET max_retries '2', SET timeout '30')");
# a query error after some parts were uploaded: nothing completed, all aborted
$s3->reset_stats;
($ok, $err) = try_sql(q{SELECT * FROM taskflow.export(
  $$SELECT g, repeat('x', 500) AS pad, 1 / (g - 300) AS boom FROM generate_series(1, 400) g$$,
  'e3', 'failing/', 'csv', '{"max_file_size": "8kB"}')});
like($err, qr/division by zero/, 'export failing mid-stream: the query error');
my $st = $s3->stats;
ok(scalar(grep { /partNumber=1&uploadId=.* 200$/ } @{ $st->{log} }) > 1, 'several parts had been uploaded');
is(sql("SELECT count(*) FROM taskflow.list_objects('e3', 'failing/')"), '0',
	'nothing visible under the path');
is($s3->pending_uploads('errbkt'), 0, 'every upload of the failed export was aborted');
ok(!grep({ /POST .*uploadId=/ } @{ $st->{log} }), 'no CompleteMultipartUpload was sent');

# ListMultipartUploads refused (403): the export goes on, with a WARNING
$s3->set_fault(status => 403, count => 1, match => 'GET /errbkt?prefix=');
my ($ret, $out, $stderr) = $node->psql('postgres',
	"SELECT objects FROM taskflow.export('SELECT 1 AS a', 'e3', 'nolist/')");
is($out, '1', 'export succeeds without the right to list uploads');
like($stderr, qr/WARNING:  could not list in-progress multipart uploads under s3:\/\/errbkt\/nolist\/ \(HTTP 403\)/,
	'... with a WARNING');
$s3->clear_faults;

$node->stop;
done_testing();
