# Crash matrix of the archive node: the node worker is killed (kill -9, so
# the postmaster crash-restarts the cluster) at every phase boundary of an
# archive with source "delete" (before_upload, mid_upload, after_delete,
# after_parts, after_manifest, after_success, after_commit), on file:// and
# on S3, and of partition drop/detach at the riskiest points (17 points),
# deterministically:
# taskflow.test_pause_at makes the worker log "taskflow test pause at <phase>
# (pid N)" and sleep there until we kill it.  For every point:
#   - right after the crash: rows in the table + rows of complete archives
#     (_SUCCESS present) = the original rows, none twice; before the commit
#     window nothing is visible to a glob reader (part-* files, completed S3
#     objects); in the commit window only what docs/archive.md allows;
#   - an ordinary rerun (run_flow for the same bizdate) converges to
#     exactly-once: the table has no row of the day, the visible parts hold
#     each original row once, _SUCCESS and the manifest are there, no
#     temporary file or in-progress multipart upload is left.
use strict;
use warnings;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TaskflowS3;
use TaskflowTest;

my $t_start = time;
my $node = TaskflowTest->start_node('archcrash', conf => "restart_after_crash = on\n");
my $dir = $PostgreSQL::Test::Utils::tmp_check . '/crash_files';
my $s3 = TaskflowS3->start(buckets => ['cbkt']);
$s3->create_server($node, 'c_s3', bucket => 'cbkt', options => { max_retries => '1' });

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(qq{CREATE SERVER c_file FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$dir')});
q1(q{
CREATE TABLE orders (id bigint PRIMARY KEY, day date, amount numeric);
INSERT INTO orders SELECT g, date '2020-06-01' + (g % 30), round(g * 1.37, 2)
  FROM generate_series(1, 9000) g;
});
for my $be (qw(file s3))
{
	q1(qq{SELECT taskflow.create_flow('crash_$be');
SELECT taskflow.set_variable('crash_$be', 'year',  'yyyy of bizdate');
SELECT taskflow.set_variable('crash_$be', 'month', 'mm of bizdate');
SELECT taskflow.set_variable('crash_$be', 'day',   'dd of bizdate');
SELECT taskflow.add_node('crash_$be', 'archive', 'archive', options => '{
  "server": "c_$be", "path": "orders/y=\${year}/m=\${month}/d=\${day}/", "table": "orders",
  "where": "day = \${bizdate:literal}", "format": "csv.gz", "max_file_size": "1kB",
  "source": "delete"}')});
}
# a partitioned table whose daily partitions are dropped / detached
q1(q{
CREATE TABLE sales (id bigint, day date, amount numeric) PARTITION BY RANGE (day);
SELECT format('CREATE TABLE sales_%s PARTITION OF sales FOR VALUES FROM (%L) TO (%L)',
              to_char(d, 'YYYYMMDD'), d, d + 1)
  FROM generate_series(0, 29) i, LATERAL (SELECT date '2020-06-01' + i AS d) x \gexec
INSERT INTO sales SELECT g, date '2020-06-01' + (g % 30), g * 0.5 FROM generate_series(1, 6000) g;
});
for my $kind (qw(drop detach))
{
	for my $be (qw(file s3))
	{
		my $f = "crash_${kind}_$be";
		q1(qq{SELECT taskflow.create_flow('$f');
SELECT taskflow.set_variable('$f', 'year',  'yyyy of bizdate');
SELECT taskflow.set_variable('$f', 'month', 'mm of bizdate');
SELECT taskflow.set_variable('$f', 'day',   'dd of bizdate');
SELECT taskflow.add_node('$f', 'archive', 'archive', options => '{
  "server": "c_$be", "path": "sales/y=\${year}/m=\${month}/d=\${day}/",
  "table": "sales_\${year}\${month}\${day}", "format": "csv.gz", "max_file_size": "1kB",
  "source": "$kind"}')});
	}
}
our $base = 'orders';    # table and path of the current matrix point

# the day's partition directory: file:// directory, or the S3 server's
# on-disk bucket (completed objects are "<key>._S3rver_object" files there;
# in-progress multipart uploads live elsewhere)
sub pdir
{
	my ($be, $day) = @_;
	my ($y, $m, $d) = split /-/, $day;
	my $p = "$base/y=$y/m=$m/d=$d";
	return $be eq 'file' ? "$dir/$p" : $s3->dir . "/cbkt/$p";
}

sub objname
{
	my ($be, $name) = @_;
	return $be eq 'file' ? $name : "$name._S3rver_object";
}

# ids in the visible part-* objects (what a glob reader over part-* sees)
sub visible_ids
{
	my ($be, $day) = @_;
	my $pat = pdir($be, $day) . '/' . objname($be, 'part-*');
	my @ids;
	for my $f (sort glob($pat))
	{
		my $csv;
		gunzip($f => \$csv, MultiStream => 1) or die "gunzip $f: $GunzipError";
		my @lines = split /\n/, $csv;
		shift @lines;    # header
		push @ids, map { (split /,/)[0] } @lines;
	}
	return @ids;
}

sub complete
{
	my ($be, $day) = @_;
	return -e pdir($be, $day) . '/' . objname($be, '_SUCCESS');
}

sub table_ids
{
	my ($day) = @_;
	return split /,/, q1("SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM $base WHERE day = '$day'");
}

sub temp_files
{
	my ($be, $day) = @_;
	return 0 unless $be eq 'file';
	my @t = glob(pdir($be, $day) . '/.*.tmp.*');
	return scalar @t;
}

sub set_pause
{
	my ($phase) = @_;
	if (defined $phase)
	{
		q1("ALTER SYSTEM SET taskflow.test_pause_at = '$phase'");
	}
	else
	{
		q1('ALTER SYSTEM RESET taskflow.test_pause_at');
	}
	q1('SELECT pg_reload_conf()');
	my $want = $phase // '';
	TaskflowTest->poll($node, 'postgres',
		"SELECT current_setting('taskflow.test_pause_at') = '$want'", 30)
	  or die "taskflow.test_pause_at did not become '$want'";
	return;
}

sub wait_up
{
	TaskflowTest->poll($node, 'postgres', 'SELECT true', 60) or die 'server did not come back';
	TaskflowTest->wait_scheduler($node, 'postgres', 60);
}

sub uniq_count { my %h = map { $_ => 1 } @_; return scalar keys %h; }

my @matrix = (
	# backend, phase, what a glob reader may see right after the crash
	[ 'file', 'before_upload',  'nothing' ],
	[ 'file', 'mid_upload',     'nothing' ],
	[ 'file', 'after_delete',   'nothing' ],
	[ 'file', 'after_parts',    'window' ],
	[ 'file', 'after_manifest', 'window' ],
	[ 'file', 'after_success',  'window' ],
	[ 'file', 'after_commit',   'done' ],
	[ 's3',   'mid_upload',     'nothing' ],
	[ 's3',   'before_upload',  'nothing' ],
	[ 's3',   'after_delete',   'nothing' ],
	[ 's3',   'after_parts',    'window' ],
	[ 's3',   'after_manifest', 'window' ],
	[ 's3',   'after_success',  'window' ],
	[ 's3',   'after_commit',   'done' ],
	# partitions: dropped / detached (rows "in the table" = rows under the parent)
	[ 'file', 'after_delete',   'nothing', 'drop' ],
	[ 'file', 'after_success',  'window',  'drop' ],
	[ 's3',   'after_success',  'window',  'detach' ],
);

my $day_no = 0;
my (%used, %orders_days);
my %timing;
for my $m (@matrix)
{
	my ($be, $phase, $expect, $kind) = @$m;
	$kind //= 'delete';
	local $base = $kind eq 'delete' ? 'orders' : 'sales';
	my $flow = $kind eq 'delete' ? "crash_$be" : "crash_${kind}_$be";
	my $t0 = time;
	my $day = q1("SELECT (date '2020-06-01' + $day_no)::text");
	$day_no++;
	push @{ $used{$base} }, "'$day'";
	push @{ $orders_days{$be} }, "'$day'" if $kind eq 'delete';
	my $label = "$be $phase" . ($kind eq 'delete' ? '' : " ($kind)");
	my @orig = table_ids($day);
	$s3->reset_stats;

	set_pause($phase);
	my $offset = -s $node->logfile;
	my $run = TaskflowTest->run_flow($node, $flow, bizdate => $day);
	$offset = $node->wait_for_log(qr/taskflow test pause at \Q$phase\E \(pid \d+\)/, $offset);
	my ($pid) = slurp_file($node->logfile) =~ /.*taskflow test pause at \Q$phase\E \(pid (\d+)\)/s;
	ok($pid && kill('KILL', $pid), "$label: worker paused at $phase, killed (pid $pid)");
	# the postmaster notices the death, restarts everything: wait for both
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	wait_up();
	set_pause(undef);
	ok(TaskflowTest->poll($node, 'postgres',
			"SELECT state IN ('failed', 'succeeded') FROM taskflow.runs WHERE id = $run", 60),
		"$label: the killed run finished");

	# ---- right after the crash
	my @tab = table_ids($day);
	my @vis = visible_ids($be, $day);
	my @arch = complete($be, $day) ? @vis : ();
	if ($expect ne 'window' || $phase ne 'after_success')
	{
		is(join(',', sort { $a <=> $b } (@tab, @arch)), join(',', @orig),
			"$label: rows in the table + rows in complete archives = the original rows, once each");
	}
	else
	{
		# the one state with rows twice: archive complete, delete not
		# committed; the rerun below resolves it (finishes the delete)
		is(join(',', sort { $a <=> $b } @tab) . ' / ' . join(',', sort { $a <=> $b } @arch),
			join(',', @orig) . ' / ' . join(',', @orig),
			"$label: (commit window) complete archive and every row still in the table");
	}
	if ($expect eq 'nothing')
	{
		is(scalar(@vis) . '|' . (complete($be, $day) ? 1 : 0), '0|0',
			"$label: nothing visible to a glob reader, no _SUCCESS");
		is(scalar(@tab), scalar(@orig), "$label: every row still in the table");
		if ($phase eq 'mid_upload')
		{
			# the killed attempt's data is there, but hidden
			ok(($be eq 'file' ? temp_files($be, $day) : $s3->pending_uploads('cbkt')) > 0,
				"$label: the killed attempt left " . ($be eq 'file' ? 'hidden temporary files' : 'in-progress multipart uploads'));
		}
	}
	elsif ($expect eq 'window')
	{
		# the commit window: parts complete, the delete not committed
		is(join(',', sort { $a <=> $b } @vis), join(',', @orig),
			"$label: (commit window) the published parts hold the rows, which are still in the table");
		is(complete($be, $day) ? 1 : 0, $phase eq 'after_success' ? 1 : 0,
			"$label: _SUCCESS " . ($phase eq 'after_success' ? 'written' : 'not yet written'));
	}
	else
	{
		is(scalar(@tab), 0, "$label: committed: no row left in the table");
		ok(complete($be, $day), "$label: committed: the archive is complete");
	}

	if ($be eq 'file' && $phase eq 'after_success' && $kind eq 'delete')
	{
		# a row for the day that is not in the archive: the rerun refuses
		q1("INSERT INTO orders VALUES (100000, '$day', 1)");
		my ($r2, $s2) = TaskflowTest->run_and_wait($node, 'crash_file', bizdate => $day);
		is($s2, 'failed', "$label: rerun with an extra source row fails");
		like(q1("SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $r2"),
			qr/^55000 .*already holds a completed archive of \d+ rows, and the source has other rows.*DETAIL: The source has \d+ rows for this path \(rows_digest \w+\), the archive \d+ rows/s,
			"$label: 55000 with both counts and digests");
		q1("DELETE FROM orders WHERE id = 100000");
		# a damaged archive (a part gone): the rerun refuses to delete
		my $part = pdir($be, $day) . '/part-00000.csv.gz';
		rename($part, "$part.saved") or die "rename: $!";
		($r2, $s2) = TaskflowTest->run_and_wait($node, 'crash_file', bizdate => $day);
		like(q1("SELECT state || ' ' || sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $r2"),
			qr/^failed XX001 object ".*part-00000\.csv\.gz" listed in the manifest is missing/,
			"$label: rerun with a part missing from the archive fails (XX001), rows kept");
		is(scalar(table_ids($day)), scalar(@orig), "$label: ... and every row is still in the table");
		rename("$part.saved", $part) or die "rename: $!";
	}

	# ---- an ordinary rerun converges to exactly-once
	$s3->reset_stats;
	my ($rerun, $state) = TaskflowTest->run_and_wait($node, $flow, bizdate => $day);
	is($state, 'succeeded', "$label: rerun succeeded")
	  or diag(q1("SELECT error FROM taskflow.node_run_history WHERE run_id = $rerun"));
	@tab = table_ids($day);
	@vis = visible_ids($be, $day);
	is(scalar(@tab), 0, "$label: after the rerun no row of the day is in the table");
	is(join(',', sort { $a <=> $b } @vis), join(',', @orig),
		"$label: after the rerun the visible parts hold every original row exactly once");
	ok(complete($be, $day) && -e pdir($be, $day) . '/' . objname($be, '_manifest.json'),
		"$label: _SUCCESS and manifest present");
	is(temp_files($be, $day) . '|' . $s3->pending_uploads('cbkt'), '0|0',
		"$label: no temporary file, no in-progress multipart upload left");
	my $log = q1("SELECT log FROM taskflow.node_run_history WHERE run_id = $rerun");
	if ($phase eq 'after_success')
	{
		like($log, qr/rows_digest \w+ match.*finishing its source action without rewriting.*(deleted \d+ rows|dropped partition|detached partition)/s,
			"$label: the rerun found the archive matching the source and only deleted");
		is($s3->count('PUT') + $s3->count('POST'), 0, "$label: nothing rewritten") if $be eq 's3';
	}
	elsif ($phase eq 'after_commit')
	{
		like($log, qr/nothing to archive/, "$label: the rerun had nothing to do");
	}
	elsif ($phase eq 'mid_upload')
	{
		like($log, qr/removed \d+ unfinished upload\(s\) of an earlier attempt/,
			"$label: the rerun removed what the killed attempt left");
	}
	$timing{$label} = time - $t0;
}

note(join(', ', map { sprintf('%s %.1fs', $_, $timing{$_}) } sort keys %timing));
note(sprintf('crash matrix total %.1fs', time - $t_start));

# DuckDB, an independent glob reader (part-*), over every partition of
# orders on file:// and on the S3 server's disk (completed objects only):
# each archived day once
for my $be (qw(file s3))
{
	my $root = $be eq 'file' ? "$dir/orders" : $s3->dir . '/cbkt/orders';
	my $out = `SUM_COL=amount node '@{[TaskflowS3->root]}/test/s3/duck_check.mjs' '$root' 2>&1`;
	my ($duck_rows) = $out =~ /.*"rows":\s*(\d+)/s;
	my $days = join(',', @{ $orders_days{$be} });
	is($duck_rows, q1("SELECT count(*) FROM generate_series(1, 9000) g WHERE date '2020-06-01' + (g % 30) IN ($days)"),
		"DuckDB over $be reads exactly the archived rows, each once") or diag($out);
}
is(q1("SELECT count(*) FROM orders WHERE day IN (" . join(',', @{ $used{orders} }) . ")")
	  . '|' . q1("SELECT count(*) FROM sales WHERE day IN (" . join(',', @{ $used{sales} }) . ")"),
	'0|0', 'no archived day has rows left in orders or under sales');
$node->stop;
done_testing();
