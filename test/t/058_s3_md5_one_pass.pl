# S3 exports with payload_signing 'off': the writer computes each part's
# Content-MD5 and the object's md5 (the manifest's) in one pass (md5x2.c).
# The md5 in the manifest must be the md5 of the object's bytes as stored,
# for a one-PUT object, a multipart object (several parts, the last one
# short), a part size that is not a multiple of 64 (the two digests then go
# one after the other), a parallel export, and against payload_signing 'on'
# (where PostgreSQL's own MD5 computes it); the server saw a Content-MD5 on
# every PUT of 'off' (and refuses a body that does not match it).
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $node = TaskflowTest->start_node('md5pass');
my $s3 = TaskflowS3->start(buckets => ['md5']);
$s3->create_server($node, 'off_s3', bucket => 'md5', prefix => 'off',
	options => { part_size => '5MB', payload_signing => 'off', max_retries => '1' });
$s3->create_server($node, 'odd_s3', bucket => 'md5', prefix => 'odd',
	options => { part_size => '5242881', payload_signing => 'off', max_retries => '1' });
$s3->create_server($node, 'on_s3', bucket => 'md5', prefix => 'on',
	options => { part_size => '5MB', payload_signing => 'on', max_retries => '1' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE TABLE t (id bigint, name text, price float8, d date);
INSERT INTO t SELECT g, 'name ' || (g % 991) || repeat('x', g % 17), g / 7.0, date '2020-01-01' + (g % 300)
  FROM generate_series(1, 300000) g;
ANALYZE t;
});

# every part of path: manifest md5 = md5 of the stored bytes; returns the count
sub check_parts
{
	my ($srv, $path, $what) = @_;
	my $m = decode_json(q1(qq{SELECT convert_from(taskflow.get_object('$srv', '$path/_manifest.json'), 'UTF8')}));
	my ($n, $bad) = (0, 0);
	for my $p (@{ $m->{parts} })
	{
		my $stored = q1(qq{SELECT md5(taskflow.get_object('$srv', '$path/$p->{name}'))});
		$n++;
		if ($stored ne $p->{md5})
		{
			$bad++;
			diag("$what: $p->{name}: manifest md5 $p->{md5}, stored bytes $stored");
		}
	}
	is($bad, 0, "$what: manifest md5 = md5 of the stored bytes ($n parts)");
	return $n;
}

# one object of about 13 MB: 3 parts of 5 MB, the last one short
$s3->reset_stats;
is(q1(q{SELECT objects || '|' || rows || '|' || (bytes > 10 * 1024 * 1024)
          FROM taskflow.export('SELECT * FROM t', 'off_s3', 'big', 'csv', '{"parallel": 1}')}),
	'1|300000|true', 'off: one multipart object');
check_parts('off_s3', 'big', 'off, multipart');
my @puts = grep { $_->{req} =~ /^PUT .*partNumber=/ } @{ $s3->stats->{auth} };
cmp_ok(scalar(@puts), ">=", 3, 'off: several parts uploaded');
is(scalar(grep { ($_->{md5} // '') =~ m{^[A-Za-z0-9+/]{22}==$} && $_->{payload} eq 'UNSIGNED-PAYLOAD' } @puts),
	scalar(@puts), 'off: every part carried UNSIGNED-PAYLOAD and a Content-MD5 (checked by the server)');

# small objects (one PUT each), several of them
is(q1(q{SELECT objects > 1 FROM taskflow.export('SELECT * FROM t WHERE id <= 20000', 'off_s3', 'small', 'csv',
          '{"parallel": 1, "max_file_size": "100kB"}')}), 't', 'off: small objects');
check_parts('off_s3', 'small', 'off, one PUT per object');

# a part size that is not a multiple of 64 bytes
q1(q{SELECT * FROM taskflow.export('SELECT * FROM t', 'odd_s3', 'big', 'csv', '{"parallel": 1}')});
check_parts('odd_s3', 'big', 'off, part size 5242881');

# parallel: each process's objects
my $r = q1(q{SELECT objects || '|' || rows FROM taskflow.export('SELECT * FROM t', 'off_s3', 'par', 'csv', '{"parallel": 3}')});
like($r, qr/^\d+\|300000$/, "off: parallel export ($r)");
check_parts('off_s3', 'par', 'off, parallel');

# csv.gz: the compressed bytes
q1(q{SELECT * FROM taskflow.export('SELECT * FROM t', 'off_s3', 'gz', 'csv.gz', '{"parallel": 1}')});
check_parts('off_s3', 'gz', 'off, csv.gz');

# the same object through payload_signing 'on' has the same md5
q1(q{SELECT * FROM taskflow.export('SELECT * FROM t', 'on_s3', 'big', 'csv', '{"parallel": 1}')});
check_parts('on_s3', 'big', 'on, multipart');
is(q1(q{SELECT convert_from(taskflow.get_object('on_s3', 'big/_manifest.json'), 'UTF8')::jsonb #>> '{parts,0,md5}'}),
	q1(q{SELECT convert_from(taskflow.get_object('off_s3', 'big/_manifest.json'), 'UTF8')::jsonb #>> '{parts,0,md5}'}),
	'the same bytes: the same md5 with payload signing on and off');

# a body damaged in transit is still refused (Content-MD5 of the one pass)
$s3->set_fault(corrupt => 1, match => 'partNumber=2', count => 1);
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT * FROM taskflow.export('SELECT * FROM t', 'off_s3', 'bad', 'csv', '{"parallel": 1}')});
like($err, qr/BadDigest/, 'off: a corrupted part is refused (BadDigest)');
$s3->clear_faults;

done_testing();
