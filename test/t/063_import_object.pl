# taskflow.import(server, key, target, format) of one object that another tool
# put in the bucket (not an archive prefix): keys with spaces, '+' and UTF-8,
# csv and csv.gz, on S3 and file://; a prefix still imports an archive.
use strict;
use warnings;
use utf8;
use IO::Compress::Gzip qw(gzip $GzipError);
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $node = TaskflowTest->start_node('importobj');
my $s3 = TaskflowS3->start(buckets => ['inbox']);
$s3->create_server($node, 'inbox_s3', bucket => 'inbox', prefix => 'landing');
my $dir = $node->basedir . '/files';
mkdir $dir;
$node->safe_psql('postgres', qq{
	CREATE SERVER inbox_file FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$dir');
	CREATE TABLE t (id int, name text, amount numeric);
});

my $csv = "id,name,amount\n1,\"a, b\",1.5\n2,ü ö,2\n3,,\n";
my $csv_hex = unpack('H*', do { my $b = $csv; utf8::encode($b); $b });
my $gz_hex;
{
	my $bytes = $csv;
	utf8::encode($bytes);
	my $z;
	gzip(\$bytes => \$z) or die $GzipError;
	$gz_hex = unpack('H*', $z);
}

for my $srv ('inbox_s3', 'inbox_file')
{
	my $key = 'from other tool/2020 06 01+orders ümlaut.csv';
	$node->safe_psql('postgres', qq{
		TRUNCATE t;
		SELECT taskflow.put_object('$srv', '$key', '\\x$csv_hex'::bytea);
		SELECT taskflow.put_object('$srv', '$key.gz', '\\x$gz_hex'::bytea);
	});
	is($node->safe_psql('postgres', qq{SELECT taskflow.import('$srv', '$key', 't')}),
		'3', "$srv: one csv object with spaces, + and UTF-8 in its key");
	is($node->safe_psql('postgres', qq{SELECT taskflow.import('$srv', '$key.gz', 't', 'csv.gz')}),
		'3', "$srv: one csv.gz object");
	my $want = '1:a, b:1.5 1:a, b:1.5 2:ü ö:2 2:ü ö:2 3:-:- 3:-:-';
	utf8::encode($want);		# psql's output is bytes
	is($node->safe_psql('postgres', q{SELECT string_agg(id || ':' || coalesce(name, '-') || ':' || coalesce(amount::text, '-'), ' ' ORDER BY id, name) FROM t}),
		$want, "$srv: the rows, quoting and NULLs as COPY reads them");
	my ($ret, $out, $err) = $node->psql('postgres', qq{SELECT taskflow.import('$srv', '$key.gz', 't')});
	like($err, qr/looks gzip-compressed but format is csv.*\n.*HINT:  Pass format => 'csv.gz'/s,
		"$srv: a .gz object read as csv is refused with a hint");
	($ret, $out, $err) = $node->psql('postgres', qq{SELECT taskflow.import('$srv', 'from other tool/missing.csv', 't')});
	like($err, qr/no csv parts found/, "$srv: a missing key is neither an object nor a prefix with parts");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), '6', "$srv: failed imports add nothing");

	# a prefix is still an archive
	$node->safe_psql('postgres', qq{SELECT taskflow.export('SELECT * FROM t', '$srv', 'arch/')});
	is($node->safe_psql('postgres', qq{SELECT taskflow.import('$srv', 'arch', 't')}),
		'6', "$srv: a prefix imports the archive's parts");
}

$node->stop;
done_testing();
