# The test S3 server's CompleteMultipartUpload, driven with curl --aws-sigv4
# (no PostgreSQL involved): it behaves as S3 does (multipart ETag
# "<md5 of the parts' binary md5s>-<N>", InvalidPart / InvalidPartOrder /
# EntityTooSmall refusals that leave the upload in progress, the object
# assembled byte for byte from the parts, the upload gone afterwards), while
# assembling the object without re-reading the parts through node.js.
use strict;
use warnings;
use Digest::MD5 qw(md5 md5_hex);
use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;

my $s3 = TaskflowS3->start(buckets => ['mpu']);
my $tmp = tempdir(CLEANUP => 1);
my $ep = $s3->endpoint;
my @curl = ('curl', '-sS', '--aws-sigv4', 'aws:amz:us-east-1:s3',
	'--user', $s3->access_key . ':' . $s3->secret_key,
	'-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '-o', "$tmp/body",
	'-D', "$tmp/headers", '-w', '%{http_code}');

# one signed request: (status, body, headers)
sub req
{
	my (@args) = @_;
	my ($out, $err) = run_command([ @curl, @args ]);
	my $body = slurp_file("$tmp/body");
	my $headers = slurp_file("$tmp/headers");
	return ($out, $body, $headers);
}

sub put_file
{
	my ($name, $bytes) = @_;
	open(my $fh, '>', "$tmp/$name") or die;
	binmode $fh;
	print $fh $bytes;
	close $fh;
	return "$tmp/$name";
}

sub create_upload
{
	my ($key) = @_;
	my ($st, $body) = req('-X', 'POST', "$ep/mpu/$key?uploads=");
	die "create upload: $st $body" unless $st eq '200' && $body =~ m{<UploadId>([^<]+)</UploadId>};
	return $1;
}

# UploadPart: the ETag S3 answers (the md5 of the part)
sub upload_part
{
	my ($key, $id, $n, $file) = @_;
	my ($st, $body, $h) = req('-T', $file, "$ep/mpu/$key?partNumber=$n&uploadId=$id");
	die "upload part $n: $st $body" unless $st eq '200' && $h =~ /^etag:\s*"?([0-9a-f]{32})"?/mi;
	return $1;
}

sub complete
{
	my ($key, $id, @parts) = @_;    # [n, etag], ...
	my $xml = '<CompleteMultipartUpload>'
	  . join('', map { "<Part><PartNumber>$_->[0]</PartNumber><ETag>\"$_->[1]\"</ETag></Part>" } @parts)
	  . '</CompleteMultipartUpload>';
	return req('-X', 'POST', '-H', 'Content-Type: application/xml', '--data-binary', $xml,
		"$ep/mpu/$key?uploadId=$id");
}

my $p1 = ('a' x 1000 . "\n") x 5300;    # 5,305,300 bytes: over the 5 MiB minimum
my $p2 = "the last part may be small\n";
my $p3 = ('b' x 999 . "\n") x 5243;     # 5,243,000 bytes
my $f1 = put_file('p1', $p1);
my $f2 = put_file('p2', $p2);
my $f3 = put_file('p3', $p3);

# an upload of parts 1 (p1), 2 (p3), 3 (p2, small: the last one listed) and
# 5 (p2 again, uploaded but left out of the list: S3 drops it)
my $id = create_upload('big.csv');
my $e1 = upload_part('big.csv', $id, 1, $f1);
my $e3 = upload_part('big.csv', $id, 3, $f2);
my $e2 = upload_part('big.csv', $id, 2, $f3);
my $e5 = upload_part('big.csv', $id, 5, $f2);
is($e1, md5_hex($p1), 'UploadPart answers the md5 of the part');

# refusals leave the upload in progress, and change nothing
my ($st, $body) = complete('big.csv', $id, [ 1, $e1 ], [ 2, md5_hex('other') ], [ 3, $e3 ]);
like("$st $body", qr{^400 .*<Code>InvalidPart</Code>}s, 'a wrong part ETag: 400 InvalidPart');
($st, $body) = complete('big.csv', $id, [ 1, $e1 ], [ 2, $e2 ], [ 4, $e3 ]);
like("$st $body", qr{^400 .*<Code>InvalidPart</Code>}s, 'a part never uploaded: 400 InvalidPart');
($st, $body) = complete('big.csv', $id, [ 1, $e1 ], [ 3, $e3 ], [ 2, $e2 ]);
like("$st $body", qr{^400 .*<Code>InvalidPartOrder</Code>}s, 'parts out of order: 400 InvalidPartOrder');
($st, $body) = complete('big.csv', $id, [ 1, $e1 ], [ 3, $e3 ], [ 5, $e5 ]);
like("$st $body", qr{^400 .*<Code>EntityTooSmall</Code>}s, 'a small part that is not the last: 400 EntityTooSmall');
is($s3->pending_uploads('mpu'), 1, 'the refused completions left the upload in progress');
($st) = req("$ep/mpu/big.csv");
is($st, '404', 'and no object');

my $all = $p1 . $p3 . $p2;
my $want = md5_hex(md5($p1) . md5($p3) . md5($p2)) . '-3';
($st, $body) = complete('big.csv', $id, [ 1, $e1 ], [ 2, $e2 ], [ 3, $e3 ]);
is($st, '200', 'CompleteMultipartUpload: 200');
like($body, qr{<ETag>(?:&quot;|")\Q$want\E(?:&quot;|")</ETag>},
	'its ETag is the md5 of the parts\' binary md5s, dash, the number of parts (as S3)');
is($s3->pending_uploads('mpu'), 0, 'the upload is gone');
my ($h);
($st, $body, $h) = req("$ep/mpu/big.csv");
is($st, '200', 'GET the object');
is(length($body), length($all), 'object size = the sum of the listed parts');
is(md5_hex($body), md5_hex($all), 'object bytes = the listed parts in part-number order');
like($h, qr/^etag:\s*"\Q$want\E"/mi, 'GET shows the multipart ETag');
($st, $body, $h) = req('-I', "$ep/mpu/big.csv");
like($h, qr/^etag:\s*"\Q$want\E"/mi, 'HEAD shows the multipart ETag');
($st, $body) = req('-r', '5305290-5305320', "$ep/mpu/big.csv");
is("$st $body", '206 ' . substr($all, 5305290, 31), 'a range across a part boundary');

# the completed upload takes no more parts and cannot be completed again
($st, $body) = req('-T', $f2, "$ep/mpu/big.csv?partNumber=4&uploadId=$id");
like("$st $body", qr{^404 .*<Code>NoSuchUpload</Code>}s, 'a part after completion: 404 NoSuchUpload');
($st, $body) = complete('big.csv', $id, [ 1, $e1 ]);
like("$st $body", qr{^404 .*<Code>NoSuchUpload</Code>}s, 'completing again: 404 NoSuchUpload');

# a one-part upload; overwriting an object keeps its key's listing single
$id = create_upload('big.csv');
$e2 = upload_part('big.csv', $id, 1, $f2);
($st, $body) = complete('big.csv', $id, [ 1, $e2 ]);
is($st, '200', 'a one-part upload replaces the object');
($st, $body, $h) = req("$ep/mpu/big.csv");
is($body, $p2, 'the new object holds its one part');
like($h, qr/^etag:\s*"\Q@{[md5_hex(md5($p2)) . '-1']}\E"/mi, 'one part: md5 of its md5, -1');
($st, $body) = req("$ep/mpu?list-type=2");
is(scalar(() = $body =~ /<Key>/g), 1, 'one object listed');

done_testing();
