# S3 storage against the project's local S3 server (test/s3/server.js), which
# verifies SigV4 signatures and injects faults: put/get/head/list, pagination,
# multipart, awkward keys, virtual-host style, session tokens, a wrong secret,
# retries (500, 503 SlowDown, timeouts, dropped connections), giving up, and
# cancel / error in the middle of a multipart upload (aborted, nothing left).
use strict;
use warnings;

use Encode qw(decode_utf8 encode_utf8);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TaskflowS3;
use TaskflowTest;

my $s3 = TaskflowS3->start(buckets => ['tfbkt']);

my $node = PostgreSQL::Test::Cluster->new('s3');
TaskflowTest->init_node($node);    # (initdb template)
$node->append_conf('postgresql.conf', <<'EOC');
shared_preload_libraries = 'taskflow'
log_min_messages = info
EOC
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION taskflow');

$s3->create_server($node, 'arch', prefix => 'pre',
	options => { part_size => '5MB', max_retries => '3', list_page_size => '100' });

sub sql
{
	my ($sql) = @_;
	return decode_utf8($node->safe_psql('postgres', encode_utf8($sql)));
}

sub lit { return TaskflowS3::quote_lit($_[0]); }

# ---------------------------------------------------------------------------
# basic operations
sql("SELECT taskflow.put_object('arch', 'hello.txt', 'hello world')");
is(sql("SELECT convert_from(taskflow.get_object('arch', 'hello.txt'), 'UTF8')"),
	'hello world', 'put then get');
is(sql("SELECT key || ' ' || size || ' ' || (etag ~ '^[0-9a-f]{32}\$')::text || ' ' || (last_modified > now() - interval '5 min')::text
      FROM taskflow.list_objects('arch')"),
	'hello.txt 11 true true', 'list shows key (relative to the prefix), size, etag, last_modified');
ok(-f "$s3->{dir}/tfbkt/pre/hello.txt._S3rver_object", 'object stored under the url prefix');
my $st = $s3->stats;
ok($st->{methods}{HEAD} >= 1, 'get_object starts with a HEAD');
is(sql("SELECT count(*) FROM taskflow.list_objects('arch', 'nothing/')"), '0', 'empty prefix listing');
sql("SELECT taskflow.put_object('arch', 'empty.txt', '')");
is(sql("SELECT length(taskflow.get_object('arch', 'empty.txt'))"), '0', 'empty object round trip');
sql("SELECT taskflow.delete_object('arch', 'empty.txt')");
sql("SELECT taskflow.delete_object('arch', 'empty.txt')");
my ($ret, $out, $err) = $node->psql('postgres', "SELECT taskflow.get_object('arch', 'empty.txt')");
like($err, qr/object s3:\/\/tfbkt\/pre\/empty\.txt does not exist/, 'deleted object is gone (twice is fine)');

# awkward keys: '=', spaces, unicode, '+', '&', quotes, '%'
my @keys = ('y=2020/m=06/d=01/part 0.csv', "\x{fc}n\x{ef}/\x{2102} \x{2603}/a+b&c=d.txt",
	"it's 100%/<x>.csv");
for my $k (@keys)
{
	sql("SELECT taskflow.put_object('arch', " . lit($k) . ", convert_to(" . lit("data of $k") . ", 'UTF8'))");
	is(sql("SELECT convert_from(taskflow.get_object('arch', " . lit($k) . "), 'UTF8')"),
		"data of $k", "round trip of key '$k'");
	is(sql("SELECT count(*) FROM taskflow.list_objects('arch') WHERE key = " . lit($k)),
		'1', "list returns key '$k' decoded");
}
ok((grep { m{^PUT /tfbkt/pre/y%3D2020/m%3D06/d%3D01/part%200\.csv } } @{ $s3->stats->{log} }),
	'keys are percent-encoded on the wire (y%3D2020, %20)');

# ---------------------------------------------------------------------------
# pagination: 250 keys, list_page_size 100 -> 3 ListObjectsV2 pages
sql("SELECT count(taskflow.put_object('arch', format('many/k%s', lpad(i::text, 4, '0')), 'v'))
     FROM generate_series(1, 250) i");
$s3->reset_stats;
is(sql("SELECT count(*) || ' ' || count(DISTINCT key) || ' ' || min(key) || ' ' || max(key)
      FROM taskflow.list_objects('arch', 'many/')"),
	'250 250 many/k0001 many/k0250', 'paginated listing returns every key once');
my @lists = grep { /list-type=2/ } @{ $s3->stats->{log} };
is(scalar @lists, 3, 'three list pages');
is(scalar(grep { /continuation-token=/ } @lists), 2, 'continuation tokens used');

# ---------------------------------------------------------------------------
# multipart: 12 MiB with 5 MB parts
$s3->reset_stats;
my $big = "convert_to(repeat('0123456789abcdef', 12 * 1024 * 1024 / 16), 'UTF8')";
sql("SELECT taskflow.put_object('arch', 'big.bin', $big)");
my @log = @{ $s3->stats->{log} };
is(scalar(grep { m{^POST /tfbkt/pre/big\.bin\?uploads= 200} } @log), 1, 'CreateMultipartUpload');
is(scalar(grep { m{^PUT /tfbkt/pre/big\.bin\?partNumber=\d&uploadId=\w+ 200} } @log), 3, 'three parts (5+5+2 MiB)');
is(scalar(grep { m{^POST /tfbkt/pre/big\.bin\?uploadId=\w+ 200} } @log), 1, 'CompleteMultipartUpload');
is(sql("SELECT size FROM taskflow.list_objects('arch', 'big.bin')"), 12 * 1024 * 1024, 'multipart object size');
$s3->reset_stats;
is(sql("SELECT md5(taskflow.get_object('arch', 'big.bin')) = md5($big)"), 't',
	'multipart object reads back identical');
is(scalar(grep { m{^GET /tfbkt/pre/big\.bin 206} } @{ $s3->stats->{log} }), 3,
	'streaming reader uses part-size ranged GETs');
is($s3->pending_uploads('tfbkt'), 0, 'no multipart upload left open');

# ---------------------------------------------------------------------------
# virtual-host style (bucket.s3.localhost)
$s3->create_server($node, 'vhost', prefix => 'vh', endpoint => 'http://s3.localhost:' . $s3->port,
	options => { url_style => 'virtual' });
$s3->reset_stats;
sql("SELECT taskflow.put_object('vhost', 'v=1.txt', 'virtual')");
is(sql("SELECT convert_from(taskflow.get_object('vhost', 'v=1.txt'), 'UTF8')"), 'virtual',
	'virtual-host style put/get');
ok((grep { m{^PUT /vh/v%3D1\.txt 200} } @{ $s3->stats->{log} }), 'bucket not in the path with virtual-host style');
is(sql("SELECT string_agg(key, ',') FROM taskflow.list_objects('vhost')"), 'v=1.txt', 'virtual-host style list');

# ---------------------------------------------------------------------------
# session token (a second server that requires one)
my $s3t = TaskflowS3->start(buckets => ['tokbkt'], session_token => 'SESSION-tok/123+=');
$s3t->create_server($node, 'tok', session_token => 'SESSION-tok/123+=');
sql("SELECT taskflow.put_object('tok', 't.txt', 'tok')");
is(sql("SELECT convert_from(taskflow.get_object('tok', 't.txt'), 'UTF8')"), 'tok', 'session token is sent and signed');
$s3t->create_user_mapping($node, 'tok');
($ret, $out, $err) = $node->psql('postgres', "SELECT taskflow.put_object('tok', 't.txt', 'x')");
like($err, qr/403 InvalidToken/, 'missing session token refused');
$s3t->stop;

# ---------------------------------------------------------------------------
# wrong secret: 403 SignatureDoesNotMatch, and no secret anywhere in the log
my $wrong = 'WRONG-secret-' . int(rand(1e9));
sql("CREATE ROLE s3user LOGIN; GRANT USAGE ON FOREIGN SERVER arch TO s3user");
$s3->create_user_mapping($node, 'arch', role => 's3user', secret_key => $wrong);
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE s3user; SELECT taskflow.put_object('arch', 'x.txt', 'x')");
like($err,
	qr/S3 PUT s3:\/\/tfbkt\/pre\/x\.txt failed: 403 SignatureDoesNotMatch: The request signature we calculated does not match/,
	'wrong secret: 403 SignatureDoesNotMatch with S3 code and message');
unlike($err, qr/\Q$wrong\E/, 'error does not contain the secret');
unlike($err, qr/CanonicalRequest|Credential=/, 'error does not contain signing material');
($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE s3user; SELECT count(*) FROM taskflow.list_objects('arch')");
like($err, qr/403 SignatureDoesNotMatch/, 'list with a wrong secret fails too');

# ---------------------------------------------------------------------------
# retries
$s3->reset_stats;
$s3->set_fault(status => 500, count => 2, match => 'PUT');
sql("SELECT taskflow.put_object('arch', 'retry.txt', 'after two 500s')");
is(sql("SELECT convert_from(taskflow.get_object('arch', 'retry.txt'), 'UTF8')"), 'after two 500s',
	'500, 500, then success');
is($s3->stats->{faults}, 2, 'both faults were hit');

$s3->set_fault(status => 500, count => 100, match => 'PUT');
($ret, $out, $err) = $node->psql('postgres', "SELECT taskflow.put_object('arch', 'retry2.txt', 'x')");
like($err, qr/S3 PUT s3:\/\/tfbkt\/pre\/retry2\.txt failed: 500 InternalError: We encountered an internal error/,
	'500 past the retry budget is an error');
like($err, qr/Gave up after 4 attempts/, 'max_retries 3 = 4 attempts');
$s3->clear_faults;

$s3->set_fault(status => 503, count => 2, match => 'GET');
is(sql("SELECT convert_from(taskflow.get_object('arch', 'retry.txt'), 'UTF8')"), 'after two 500s',
	'503 SlowDown retried');

$s3->set_fault(drop => 1, match => 'PUT');
sql("SELECT taskflow.put_object('arch', 'drop.txt', 'dropped once')");
is(sql("SELECT convert_from(taskflow.get_object('arch', 'drop.txt'), 'UTF8')"), 'dropped once',
	'dropped connection retried');
ok((grep { /dropped/ } @{ $s3->stats->{log} }), 'the connection was really dropped');

$s3->set_fault(truncate => 200, match => 'list-type=2');
($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM taskflow.list_objects('arch')");
like($err, qr/S3 list .* incomplete answer/, 'a listing cut short is an error, not a shorter listing');
ok((grep { /truncated/ } @{ $s3->stats->{log} }), 'the listing was really truncated');
$s3->clear_faults;

# timeouts: no progress for 'timeout' seconds aborts the attempt
sql("ALTER SERVER arch OPTIONS (ADD timeout '1')");
# (a stall of 10 s: "cut at the 1 s timeout" (< 4 s, not libcurl's 5 s
# low-speed window) gets room on busy cores)
$s3->set_fault(delay_ms => 10000, count => 1, match => 'GET');
my $t0 = time;
is(sql("SELECT convert_from(taskflow.get_object('arch', 'drop.txt'), 'UTF8')"), 'dropped once',
	'slow answer: timeout, then retry succeeds');
my $cut = time - $t0;
ok($cut >= 1 && $cut < 4, sprintf('the slow attempt was cut at the timeout (%.2f s)', $cut));
$s3->set_fault(delay_ms => 3000, count => 100, match => 'GET');
$t0 = time;
($ret, $out, $err) = $node->psql('postgres', "SELECT taskflow.get_object('arch', 'drop.txt')");
like($err, qr/S3 GET s3:\/\/tfbkt\/pre\/drop\.txt failed: timeout/, 'always slow: timeout error');
ok(time - $t0 < 12, 'gave up in bounded time');
$s3->clear_faults;
sql("ALTER SERVER arch OPTIONS (DROP timeout)");

like(slurp_file($node->logfile), qr/S3 PUT s3:\/\/tfbkt\/pre\/retry\.txt: 500 InternalError, retrying \(1 of 3\)/,
	'retries are logged');

# ---------------------------------------------------------------------------
# an ERROR in the middle of a multipart upload aborts it
$s3->reset_stats;
$s3->set_fault(status => 400, count => 1, match => 'partNumber=2');
($ret, $out, $err) = $node->psql('postgres', "SELECT taskflow.put_object('arch', 'failed.bin', $big)");
like($err, qr/S3 PUT s3:\/\/tfbkt\/pre\/failed\.bin failed: 400 InjectedBadRequest/, 'part upload 4xx is an error');
is($s3->stats->{aborts}, 1, 'AbortMultipartUpload was called');
is($s3->pending_uploads('tfbkt'), 0, 'no multipart upload left behind');
is(sql("SELECT count(*) FROM taskflow.list_objects('arch', 'failed')"), '0', 'no object completed');

# the part limit (10,000 on S3; lowered here) stops an upload before it is exceeded
$s3->reset_stats;
($ret, $out, $err) = $node->psql('postgres',
	"SET taskflow.s3_max_parts = 2; SELECT taskflow.put_object('arch', 'toolarge.bin', $big)");
like($err, qr/object s3:\/\/tfbkt\/pre\/toolarge\.bin is too large for part size 5242880: at most 2 parts/,
	'part limit is an error');
is(scalar(grep { /partNumber=3/ } @{ $s3->stats->{log} }), 0, 'the part over the limit is never sent');
is($s3->stats->{aborts}, 1, 'upload aborted at the part limit');
is(sql("SELECT count(*) FROM taskflow.list_objects('arch', 'toolarge')"), '0', 'no object at the part limit');

# cancel in the middle of a multipart upload: prompt, aborted, nothing left
$s3->reset_stats;
$s3->set_fault(delay_ms => 60000, count => 1, match => 'partNumber=2');
my ($cout, $cerr) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'),
	  '-c', "SET application_name = 'tf_cancel'; SELECT taskflow.put_object('arch', 'cancelled.bin', $big)" ],
	'>', \$cout, '2>', \$cerr);
my $deadline = time + 30;
usleep(50_000) while @{ decode_rules($s3) } && time < $deadline;
ok(!@{ decode_rules($s3) }, 'part 2 upload is hanging');
$t0 = time;
sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'tf_cancel'");
$h->finish;
my $took = time - $t0;
like($cerr, qr/canceling statement due to user request/, 'upload canceled');
ok($took < 5, sprintf('cancel returned promptly (%.1fs)', $took));
is($s3->stats->{aborts}, 1, 'AbortMultipartUpload was called after cancel');
is($s3->pending_uploads('tfbkt'), 0, 'no multipart upload left after cancel');
is(sql("SELECT count(*) FROM taskflow.list_objects('arch', 'cancelled')"), '0', 'no object completed after cancel');
$s3->clear_faults;

# ---------------------------------------------------------------------------
# secrets never reach the server log
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$wrong\E/, 'wrong secret not in the server log');
my $secret = $s3->secret_key;
unlike($log, qr/\Q$secret\E/, 'real secret not in the server log');
unlike($log, qr/AWS4-HMAC-SHA256|Authorization:/i, 'no Authorization header in the server log');

$node->stop;
$s3->stop;
done_testing();

# the fault rules still pending on the server (a consumed rule disappears)
sub decode_rules
{
	my ($srv) = @_;
	my $r = $srv->{http}->get($srv->url('/__faults'));
	return JSON::PP::decode_json($r->{content})->{rules};
}
