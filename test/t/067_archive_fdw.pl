# Querying archives in place: foreign tables of taskflow_storage over the
# reference scenario's Hive layout, on the local S3 server and on file://.
# A week of orders is archived with archive nodes (file://: source keep,
# S3: source delete); the foreign tables return exactly the archived rows
# (digest equal to the source's before deletion), partition conditions
# prune the listing (EXPLAIN and the S3 server's request log show one
# partition read for one day), a partition without _SUCCESS is not read
# (unless require_success is off, which also reads a Hive layout without
# manifest), a damaged part is an error, a wrong secret is a clear error
# without the secret, and a role without USAGE on the server is refused.
use strict;
use warnings;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $node = TaskflowTest->start_node('fdw');
my $s3 = TaskflowS3->start(buckets => ['dla']);
$s3->create_server($node, 'dla_s3', bucket => 'dla');
my $fdir = PostgreSQL::Test::Utils::tempdir('archive');
chmod 0777, $fdir;

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(qq{CREATE SERVER dla_file FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$fdir')});
q1(q{
CREATE TABLE orders (order_id bigint PRIMARY KEY, product_name varchar(32),
                     price double precision, total_amount double precision, created_date date);
INSERT INTO orders
  SELECT g, 'product ' || (g % 50) || CASE WHEN g % 7 = 0 THEN ', "special"' ELSE '' END,
         (g % 100) + 0.25, ((g % 100) + 0.25) * (1 + g % 3) / 3.0, date '2020-06-01' + (g % 7)
    FROM generate_series(1, 7000) g;
});

# the digest of a set of orders rows (whatever their order)
my $digest_expr = q{md5(string_agg(order_id || '|' || coalesce(product_name, '') || '|' || price
                       || '|' || total_amount || '|' || created_date, E'\n' ORDER BY order_id))};
my $src_digest = q1("SELECT count(*) || ' ' || $digest_expr FROM orders");
my $day3 = q1("SELECT count(*) || ' ' || $digest_expr FROM orders WHERE created_date = '2020-06-03'");
my $june_sum = q1("SELECT round(sum(total_amount)::numeric, 4) FROM orders");
like($src_digest, qr/^7000 /, 'source: 7000 orders over a week');

# ---- archive the week: file:// keeps the rows, S3 deletes them ----
for my $t (['dla_file_flow', 'dla_file', 'keep'], ['dla_s3_flow', 'dla_s3', 'delete'])
{
	my ($flow, $server, $source) = @$t;
	q1(qq{SELECT taskflow.create_flow_from_template('archive_table_daily', '$flow',
	       '{"table": "orders", "date_column": "created_date", "server": "$server",
	         "path_prefix": "dla_demo", "format": "csv.gz", "source": "$source"}')});
	my @bad;
	for my $day (1 .. 7)
	{
		my ($run, $state) = TaskflowTest->run_and_wait($node, $flow,
			bizdate => sprintf('2020-06-%02d', $day), timeout => 120);
		push @bad, "$day:$state" if $state ne 'succeeded';
	}
	is("@bad", '', "$server: a week archived by archive nodes");
}
is(q1('SELECT count(*) FROM orders'), '0', 'S3 archive with source delete emptied the table');

my $cols = q{(order_id bigint, product_name varchar(32), price float8, total_amount float8,
              created_date date, y text, m text, d text)};
for my $server (qw(dla_s3 dla_file))
{
	q1(qq{CREATE FOREIGN TABLE oss_orders_$server $cols SERVER $server
	      OPTIONS (path 'dla_demo/', format 'csv.gz', partition_columns 'y,m,d')});
	my $ft = "oss_orders_$server";
	is(q1("SELECT count(*) || ' ' || $digest_expr FROM $ft"), $src_digest,
		"$server: the foreign table returns exactly the archived rows (digest)");
	is(q1("SELECT round(sum(total_amount)::numeric, 4) FROM $ft WHERE y = '2020' AND m = '06'"),
		$june_sum, "$server: sum(total_amount) for y=2020, m=06");
	is(q1("SELECT string_agg(DISTINCT y || m || d || '=' || to_char(created_date, 'YYYYMMDD'), ',')
	         FROM $ft WHERE d IN ('02', '05')"),
		'20200602=20200602,20200605=20200605', "$server: partition columns come from the path");
	is(q1("SELECT count(*) || ' ' || $digest_expr FROM $ft WHERE y = '2020' AND m = '06' AND d = '03'"),
		$day3, "$server: one day");

	my $x = q1("EXPLAIN (VERBOSE) SELECT sum(total_amount) FROM $ft WHERE y = '2020' AND m = '06' AND d = '03'");
	like($x, qr{Listing Prefix: dla_demo/y=2020/m=06/d=03/}, "$server: equalities become the listing prefix");
	like($x, qr/Partitions Scanned: 1\n.*Partitions Pruned: 0/s, "$server: one day scans one partition");
	like($x, qr{Scanned Partitions: y=2020/m=06/d=03/}, "$server: EXPLAIN VERBOSE names it");
	like($x, qr/Objects: 1\b/, "$server: one object");

	$x = q1("EXPLAIN SELECT * FROM $ft WHERE d IN ('01', '07') OR d > '05'");
	like($x, qr/Partitions Scanned: 3\n.*Partitions Pruned: 4/s, "$server: IN / OR / range prune at execution");
	$x = q1("EXPLAIN SELECT * FROM $ft");
	like($x, qr/Partitions Scanned: 7\n.*Partitions Pruned: 0\n.*Partitions Skipped: 0 \(no _SUCCESS/s,
		"$server: a full scan reads the 7 complete partitions");
	like($x, qr/rows=7000 /, "$server: the planner's row estimate comes from the manifests");
	is(q1("SELECT count(*) FROM $ft WHERE d::int + 0 = 4 AND order_id > 0"), '1000',
		"$server: conditions on other columns still filter");

	# two scans of the archive interleaved (nested loop), the inner one
	# rescanned with a parameter that prunes it at each rescan
	is(q1(qq{SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off;
	         SELECT count(*) || ' ' || sum((a.total_amount = b.total_amount)::int)
	           FROM $ft a JOIN $ft b ON b.d = a.d AND b.order_id = a.order_id
	          WHERE a.d = '01' AND a.order_id % 100 = 0}),
		'10 10', "$server: interleaved scans, parameterized rescans");
	is(q1("SELECT string_agg(a.d || ':' || (SELECT count(*) FROM $ft b WHERE b.d = a.d), ',' ORDER BY a.d)
	         FROM (VALUES ('01'), ('06'), ('09')) a(d)"),
		'01:1000,06:1000,09:0', "$server: a correlated subquery prunes by its parameter");
	my ($r, $o, $e) = $node->psql('postgres', "SELECT order_id FROM $ft LIMIT 3");
	is($r . ' ' . scalar(split /\n/, $o) . ' ' . $e, '0 3 ', "$server: LIMIT stops early without a warning");
}

# ---- IMPORT FOREIGN SCHEMA: the table from the manifest ----
q1('CREATE SCHEMA imp; IMPORT FOREIGN SCHEMA dla_demo FROM SERVER dla_file INTO imp');
is(q1(q{SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
          FROM pg_attribute WHERE attrelid = 'imp.dla_demo'::regclass AND attnum > 0}),
	'order_id bigint, product_name character varying(32), price double precision, '
	  . 'total_amount double precision, created_date date, y text, m text, d text',
	'IMPORT FOREIGN SCHEMA: columns from the manifest plus the partition columns');
is(q1(q{SELECT array_to_string(ftoptions, ' ') FROM pg_foreign_table WHERE ftrelid = 'imp.dla_demo'::regclass}),
	'path=dla_demo/ format=csv.gz partition_columns=y,m,d', 'IMPORT FOREIGN SCHEMA: options');
is(q1("SELECT count(*) || ' ' || $digest_expr FROM imp.dla_demo"), $src_digest,
	'IMPORT FOREIGN SCHEMA: the imported table reads the archive');

# ---- ANALYZE samples the archive ----
q1('ANALYZE oss_orders_dla_file');
is(q1(q{SELECT reltuples || ' ' || (SELECT n_distinct FROM pg_stats WHERE tablename = 'oss_orders_dla_file' AND attname = 'd')
          FROM pg_class WHERE relname = 'oss_orders_dla_file'}),
	'7000 7', 'ANALYZE: row count and statistics of the partition columns');

# ---- requests: a one-day query reads one part ----
$s3->reset_stats;
is(q1("SELECT count(*) FROM oss_orders_dla_s3 WHERE y = '2020' AND m = '06' AND d = '03'"), '1000',
	'S3: one-day query');
my @log = @{ $s3->stats->{log} };
my @part_gets = grep { m{^GET /dla/dla_demo/.*part-} } @log;
is(scalar(@part_gets), 1, 'S3: the one-day query GETs one part object') or diag(join("\n", @log));
like($part_gets[0] // '', qr{d(=|%3D)03/part-00000\.csv\.gz}, 'S3: the part of that day');
my @lists = grep { /list-type=2/ } @log;
ok(@lists && !(grep { !/prefix=dla_demo%2Fy%3D2020%2Fm%3D06%2Fd%3D03%2F/ } @lists),
	'S3: every listing is under the pruned prefix') or diag(join("\n", @log));

# ---- an incomplete partition is not read; require_success 'false' reads it ----
q1(q{SELECT taskflow.put_object('dla_s3', 'dla_demo/y=2020/m=06/d=08/part-00000.csv.gz',
        taskflow.get_object('dla_s3', 'dla_demo/y=2020/m=06/d=03/part-00000.csv.gz'))});
like(q1('EXPLAIN SELECT * FROM oss_orders_dla_s3'),
	qr/Partitions Scanned: 7\n.*Partitions Skipped: 1 \(no _SUCCESS/s,
	'a partition without _SUCCESS is skipped (EXPLAIN says so)');
is(q1("SELECT count(*) FROM oss_orders_dla_s3 WHERE d = '08'"), '0', 'and not read');
q1(q{CREATE FOREIGN TABLE hive_orders (order_id bigint, product_name varchar(32), price float8,
       total_amount float8, created_date date, y text, m text, d text)
     SERVER dla_s3 OPTIONS (path 'dla_demo', format 'csv.gz', partition_columns 'y, m, d',
                            require_success 'false')});
is(q1("SELECT count(*) || ' ' || min(d) FROM hive_orders WHERE d = '08'"), '1000 08',
	'require_success false: a partition without _SUCCESS nor manifest is read (other tools)');
is(q1("SELECT count(*) FROM hive_orders"), '8000', 'require_success false: all partitions');

# ---- a damaged part (size differs from the manifest) is an error ----
q1(q{SELECT taskflow.put_object('dla_s3', 'dla_demo/y=2020/m=06/d=01/part-00000.csv.gz',
        taskflow.get_object('dla_s3', 'dla_demo/y=2020/m=06/d=02/part-00000.csv.gz'))});
my ($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM oss_orders_dla_s3 WHERE d = '01'");
like($err, qr/part-00000\.csv\.gz" has \d+ bytes, the manifest says \d+|has md5 \w+, the manifest says/,
	'a part that does not match its manifest is an error');

# ---- permissions and secrets ----
q1(q{CREATE ROLE reader LOGIN; GRANT SELECT ON oss_orders_dla_s3 TO reader});
($ret, $out, $err) = $node->psql('postgres', 'SET ROLE reader; SELECT count(*) FROM oss_orders_dla_s3');
like($err, qr/permission denied for storage server "dla_s3"/, 'a role without USAGE on the server is refused');
q1(q{GRANT USAGE ON FOREIGN SERVER dla_s3 TO reader});
($ret, $out, $err) = $node->psql('postgres', 'SET ROLE reader; SELECT count(*) FROM oss_orders_dla_s3');
like($err, qr/no user mapping for role "reader" on storage server "dla_s3"/,
	'USAGE without a user mapping of the querying role is refused');
$s3->create_user_mapping($node, 'dla_s3', role => 'reader', secret_key => 'wrong-secret-0123456789');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE reader; SELECT count(*) FROM oss_orders_dla_s3 WHERE d = '02'");
like($err, qr/403|SignatureDoesNotMatch/, 'a wrong secret is a clear error');
unlike($err, qr/wrong-secret/, 'the error does not show the secret');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE reader; EXPLAIN SELECT 1 FROM oss_orders_dla_s3");
unlike("$out $err", qr/wrong-secret/, 'EXPLAIN does not show the secret');
$s3->create_user_mapping($node, 'dla_s3', role => 'reader');
is($node->safe_psql('postgres', "SET ROLE reader; SELECT count(*) FROM oss_orders_dla_s3 WHERE d = '02'"),
	'1000', 'with USAGE and its own user mapping the role reads the archive');

# through a view, the view owner's rights and user mapping count (as postgres_fdw)
q1(q{CREATE ROLE viewer LOGIN;
     CREATE VIEW reader_view AS SELECT order_id, d FROM oss_orders_dla_s3;
     ALTER VIEW reader_view OWNER TO reader; GRANT SELECT ON reader_view TO viewer});
is($node->safe_psql('postgres', "SET ROLE viewer; SELECT count(*) FROM reader_view WHERE d = '02'"),
	'1000', 'a view reads with its owner\'s USAGE and user mapping');
($ret, $out, $err) = $node->psql('postgres', 'SET ROLE viewer; SELECT count(*) FROM oss_orders_dla_s3');
like($err, qr/permission denied for (foreign table oss_orders_dla_s3|storage server "dla_s3")/,
	'the viewer cannot read the table itself');

# ---- a partition column that is not a column ----
q1(q{CREATE FOREIGN TABLE bad_orders (order_id bigint) SERVER dla_file
     OPTIONS (path 'dla_demo/', partition_columns 'y')});
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM bad_orders');
like($err, qr/partition column "y" is not a column of foreign table "bad_orders"/,
	'a partition column missing from the table is a clear error');

# ---- a parse error names the object ----
q1(q{CREATE FOREIGN TABLE bad_types (order_id bigint, product_name int, price float8,
       total_amount float8, created_date date, y text, m text, d text)
     SERVER dla_file OPTIONS (path 'dla_demo/', format 'csv.gz', partition_columns 'y,m,d')});
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM bad_types WHERE d = '04'");
like($err, qr/invalid input syntax for type integer.*archive object "file:.*dla_demo\/y=2020\/m=06\/d=04\/part-00000\.csv\.gz"/s,
	'a parse error names the archive object');

done_testing();
