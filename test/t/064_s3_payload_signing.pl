# The server option payload_signing (src/s3.c, src/storage.c):
# - 'off': PUT object and UploadPart go with x-amz-content-sha256:
#   UNSIGNED-PAYLOAD and a Content-MD5 that is part of the signature
#   (SignedHeaders has content-md5); 'on' (and 'auto' over http) sign the hex
#   SHA-256 of every body and send no Content-MD5.  Both export the same rows
#   (manifest row digest, import() round trip).
# - A body damaged in transit under 'off' is refused by the store (400
#   BadDigest, test/s3/server.js checks Content-MD5 like S3): the export
#   fails, no object is visible, no upload is left pending, an archive node
#   with source delete fails and keeps its rows.
# - A bad value is refused at CREATE SERVER and ALTER SERVER with SQLSTATE
#   22023 and a hint, and changes nothing.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $node = TaskflowTest->start_node('paysign');
my $s3 = TaskflowS3->start(buckets => ['psign']);
my %opt = (part_size => '5MB', max_retries => '1');
$s3->create_server($node, 'ps_off', bucket => 'psign', prefix => 'off',
	options => { %opt, payload_signing => 'off' });
$s3->create_server($node, 'ps_on', bucket => 'psign', prefix => 'on',
	options => { %opt, payload_signing => 'on' });
$s3->create_server($node, 'ps_auto', bucket => 'psign', prefix => 'auto', options => {%opt});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

sub try_sql
{
	my ($q) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$q");
	return ($ret == 0, $err);
}

q1(q{
CREATE TABLE src (id bigint, name text, amount double precision, day date, note text);
INSERT INTO src
  SELECT g, 'name ' || (g % 97), (g % 1000) / 4.0, date '2020-01-01' + (g % 366),
         CASE WHEN g % 10 = 0 THEN NULL ELSE md5(g::text) || ', "q"' || E'\n' || 'é' END
    FROM generate_series(1, 120000) g;
CREATE TABLE back (LIKE src);
});
my $diff_sql = q{SELECT count(*) FROM ((TABLE src EXCEPT ALL TABLE back) UNION ALL (TABLE back EXCEPT ALL TABLE src)) s};

sub manifest
{
	my ($server, $path) = @_;
	return decode_json(q1(qq{SELECT convert_from(taskflow.get_object('$server', '$path/_manifest.json'), 'UTF8')}));
}

sub listing
{
	my ($server, $path) = @_;
	return q1(qq{SELECT coalesce(string_agg(key, ',' ORDER BY key), '') FROM taskflow.list_objects('$server', '$path/')});
}

# the signing of the PUTs since the last reset_stats: [req, payload, signed, md5]
sub puts
{
	return grep { $_->{req} =~ /^PUT / } @{ $s3->stats->{auth} };
}

my %digest;
for my $mode ('off', 'on', 'auto')
{
	my $server = "ps_$mode";
	$s3->reset_stats;
	# objects of about 6 MB: a 5 MB part + a smaller one each, and a small
	# last object (single PUT) besides the manifest and _SUCCESS
	is(q1(qq{SELECT rows FROM taskflow.export('SELECT * FROM src', '$server', 'x', 'csv', '{"max_file_size": "6MB"}')}),
		'120000', "$mode: export succeeds");
	my @puts = puts();
	my @parts = grep { $_->{req} =~ /partNumber=/ } @puts;
	my @single = grep { $_->{req} !~ /partNumber=/ } @puts;
	cmp_ok(scalar(@parts), '>=', 2, "$mode: parts were uploaded (" . scalar(@parts) . ')');
	cmp_ok(scalar(@single), '>=', 2, "$mode: single PUTs too (" . scalar(@single) . ')');
	if ($mode eq 'off')
	{
		is(scalar(grep { $_->{payload} ne 'UNSIGNED-PAYLOAD' } @puts), 0,
			'off: every PUT has x-amz-content-sha256 UNSIGNED-PAYLOAD');
		is(scalar(grep { ($_->{signed} // '') !~ /(^|;)content-md5(;|$)/ } @puts), 0,
			'off: content-md5 is a signed header of every PUT');
		is(scalar(grep { ($_->{md5} // '') !~ m{^[A-Za-z0-9+/]{22}==$} } @puts), 0,
			'off: every PUT carries a base64 Content-MD5');
	}
	else
	{
		is(scalar(grep { $_->{payload} !~ /^[0-9a-f]{64}$/ } @puts), 0,
			"$mode: every PUT signs the hex SHA-256 of its body");
		is(scalar(grep { defined $_->{md5} } @puts), 0, "$mode: no Content-MD5");
	}
	# requests without a body sign the empty payload in every mode
	my @gets = grep { $_->{req} =~ /^(GET|HEAD) / } @{ $s3->stats->{auth} };
	is(scalar(grep { $_->{payload} !~ /^[0-9a-f]{64}$/ } @gets), 0, "$mode: GET/HEAD sign their (empty) payload");

	my $m = manifest($server, 'x');
	is($m->{rows}, 120000, "$mode: manifest row count");
	$digest{$mode} = $m->{rows_digest};
	q1('TRUNCATE back');
	is(q1(qq{SELECT taskflow.import('$server', 'x/', 'back', 'csv')}), '120000', "$mode: import reads every row");
	is(q1($diff_sql), '0', "$mode: round trip is exact");
}
is($digest{off}, $digest{on}, 'off and on: same row digest');
is($digest{auto}, $digest{on}, 'auto and on: same row digest');

# a body damaged in transit: BadDigest, nothing visible
{
	$s3->reset_stats;
	$s3->set_fault(corrupt => 1, count => 1, match => 'partNumber=2');
	my ($ok, $err) = try_sql(q{SELECT rows FROM taskflow.export('SELECT * FROM src', 'ps_off', 'bad', 'csv', '{"max_file_size": "6MB"}')});
	ok(!$ok, 'corrupted part: the export fails');
	like($err, qr/ERROR:  38000: S3 PUT s3:\/\/psign\/off\/bad\/\S+ failed: 400 BadDigest: The Content-MD5 you specified did not match what we received/,
		'corrupted part: 400 BadDigest with the S3 message');
	is($s3->stats->{faults}, 1, 'the corruption fault was served');
	is(listing('ps_off', 'bad'), '', 'corrupted part: no object is visible');
	is($s3->pending_uploads('psign'), 0, 'corrupted part: no multipart upload is left pending');

	# a single PUT (small object): the old object stays as it was
	q1(q{SELECT taskflow.put_object('ps_off', 'keep.txt', 'old content')});
	$s3->set_fault(corrupt => 1, count => 1, match => 'keep.txt');
	($ok, $err) = try_sql(q{SELECT taskflow.put_object('ps_off', 'keep.txt', 'new content')});
	like($err, qr/ERROR:  38000: S3 PUT s3:\/\/psign\/off\/keep\.txt failed: 400 BadDigest/,
		'corrupted single PUT: BadDigest');
	is(q1(q{SELECT convert_from(taskflow.get_object('ps_off', 'keep.txt'), 'UTF8')}), 'old content',
		'corrupted single PUT: the previous object is kept');

	# an archive node with source delete: fails, the rows stay
	q1(q{CREATE TABLE arch AS SELECT * FROM src WHERE id <= 60000});
	q1(q{SELECT taskflow.create_flow('ps_arch');
	     SELECT taskflow.add_node('ps_arch', 'a', 'archive',
	       options => '{"server": "ps_off", "path": "arch/", "table": "arch", "format": "csv", "source": "delete"}')});
	$s3->set_fault(corrupt => 1, count => 1, match => 'PUT /psign/off/arch/');
	my ($run, $state) = TaskflowTest->run_and_wait($node, 'ps_arch', timeout => 180);
	is($state, 'failed', 'archive node with a corrupted body: failed');
	like(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $run"), qr/BadDigest/,
		'archive node: the error names BadDigest');
	is(q1('SELECT count(*) FROM arch'), '60000', 'archive node: the rows stay');
	is(listing('ps_off', 'arch'), '', 'archive node: no object is visible');
	$s3->clear_faults;
}

# option validation
{
	my ($ok, $err) = try_sql(qq{CREATE SERVER ps_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://psign', payload_signing 'maybe')});
	ok(!$ok, 'CREATE SERVER with payload_signing maybe fails');
	like($err, qr/ERROR:  22023: invalid value for option "payload_signing": "maybe"/, 'CREATE SERVER: SQLSTATE 22023 and the value');
	like($err, qr/HINT:  Valid values are "auto" \(off over https, on over http\), "on" .* and "off"/, 'CREATE SERVER: the hint lists the values');
	is(q1(q{SELECT count(*) FROM pg_foreign_server WHERE srvname = 'ps_bad'}), '0', 'CREATE SERVER: no server was created');
	($ok, $err) = try_sql(q{ALTER SERVER ps_off OPTIONS (SET payload_signing 'ON')});
	like($err, qr/ERROR:  22023: invalid value for option "payload_signing": "ON".*\n(.*\n)*HINT:  Valid values/,
		'ALTER SERVER: SQLSTATE 22023 and the hint');
	is(q1(q{SELECT array_to_string(srvoptions, ',') FROM pg_foreign_server WHERE srvname = 'ps_off'}) =~ /payload_signing=off/ ? 1 : 0,
		1, 'ALTER SERVER: the option is unchanged');
	q1(q{ALTER SERVER ps_off OPTIONS (SET payload_signing 'on')});
	q1(q{ALTER SERVER ps_off OPTIONS (SET payload_signing 'off')});
	pass('ALTER SERVER accepts on and off');
}

done_testing();
