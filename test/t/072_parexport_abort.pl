# Parallel export (parexport.c): the leader's abort of the parts its workers
# handed over, when something fails while it adopts them (1.3 review):
# - a failure while adopting the k-th reported part: the parts adopted
#   before it are aborted once (with the leader's own parts), not a second
#   time by the abort pass (S3: one DELETE per multipart upload created, no
#   "could not abort multipart upload" for an upload already aborted);
# - a failure while aborting one part does not stop the abort of the others
#   (each part is aborted on its own; the failure is logged): nothing is
#   left pending (S3) and no hidden temporary file is left (file://);
# - the first error is the one reported, nothing is visible, rows stay.
# The failures are injected with taskflow.test_pause_at = 'parallel_adopt_error'
# (the adoption of the second reported part fails, then the abort of the
# first part the abort pass handles).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowS3;
use TaskflowTest;

my $node = TaskflowTest->start_node('parabort');
my $s3 = TaskflowS3->start(buckets => ['pab']);
$s3->create_server($node, 'pab_s3', bucket => 'pab', prefix => 'base',
	options => { part_size => '5MB', max_retries => '1' });
my $fdir = "$PostgreSQL::Test::Utils::tmp_check/pab_files";
mkdir $fdir;
chmod 0777, $fdir;

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(qq{CREATE SERVER pab_files FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://$fdir')});
q1(q{
CREATE TABLE src (id bigint, note text);
INSERT INTO src SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 150000) g;
VACUUM ANALYZE src;
});

sub listing
{
	my ($server, $path) = @_;
	return q1(qq{SELECT coalesce(string_agg(key, ',' ORDER BY key), '') FROM taskflow.list_objects('$server', '$path/')});
}

for my $be ([ 'file', 'pab_files' ], [ 's3', 'pab_s3' ])
{
	my ($name, $server) = @$be;
	$s3->reset_stats;
	my $logpos = -s $node->logfile;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET taskflow.test_pause_at = 'parallel_adopt_error'; "
		  . qq{SELECT rows FROM taskflow.export('SELECT * FROM src', '$server', '$name/ab', 'csv', '{"parallel": 3, "max_file_size": "1MB"}')});
	my $log = substr(slurp_file($node->logfile), $logpos);
	isnt($ret, 0, "$name: the export fails");
	like($err, qr/taskflow test error adopting a part of a parallel export/,
		"$name: the first error (the failed adoption) is reported") or diag($err);
	like($log, qr/parallel export: could not abort part "[^"]*part-[^"]*": taskflow test error aborting/,
		"$name: the failed abort of one part is logged, the abort pass goes on");
	is(listing($server, "$name/ab"), '', "$name: no object is visible");
	is(q1('SELECT count(*) FROM src'), '150000', "$name: the rows are still there");
	if ($name eq 's3')
	{
		is($s3->pending_uploads('pab'), 0, 's3: no multipart upload is left pending');
		my $created = $s3->count('POST');
		cmp_ok($created, '>=', 4, "s3: several staged uploads were created ($created)");
		is($s3->count('DELETE'), $created, 's3: every upload is aborted exactly once');
		unlike($log, qr/could not abort multipart upload/, 's3: no upload is aborted twice');
	}
	else
	{
		my @tmp = glob("$fdir/file/ab/.* $fdir/file/ab/*");
		@tmp = grep { !m{/\.\.?$} } @tmp;
		is(scalar(@tmp), 0, 'file: no temporary file is left') or diag(join(' ', @tmp));
	}
}

# The leader fails while worker 1 has reported its parts and worker 2 still
# runs: the leader terminates worker 2, whose "terminating background
# worker" message arrives while the leader aborts worker 1's parts.  It must
# not interrupt them (was raised at the first LOG/DEBUG1 line of an abort and
# stopped the others, silently): every part aborted, the leader's error
# reported.
for my $be ([ 'file', 'pab_files' ], [ 's3', 'pab_s3' ])
{
	my ($name, $server) = @$be;
	$s3->reset_stats;
	my $logpos = -s $node->logfile;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET taskflow.test_pause_at = 'parallel_leader_error'; SET client_min_messages = debug1; "
		  . qq{SELECT rows FROM taskflow.export('SELECT * FROM src', '$server', '$name/le', 'csv', '{"parallel": 3, "max_file_size": "1MB"}')});
	my $log = substr(slurp_file($node->logfile), $logpos);
	isnt($ret, 0, "$name, leader error: the export fails");
	like($err, qr/ERROR:  taskflow test error in the parallel export leader/,
		"$name, leader error: the leader's error is the one reported") or diag($err);
	unlike($log, qr/could not abort part/, "$name, leader error: no abort was interrupted");
	is(listing($server, "$name/le"), '', "$name, leader error: no object is visible");
	if ($name eq 's3')
	{
		is($s3->pending_uploads('pab'), 0, 's3, leader error: no multipart upload is left pending');
		is($s3->count('DELETE'), $s3->count('POST'), 's3, leader error: every upload is aborted exactly once');
	}
	else
	{
		my @tmp = glob("$fdir/file/le/.* $fdir/file/le/*");
		@tmp = grep { !m{/\.\.?$} } @tmp;
		is(scalar(@tmp), 0, 'file, leader error: no temporary file is left') or diag(join(' ', @tmp));
	}
}

# The leader is terminated (pg_terminate_backend; cancel_run does the same
# to an archive node's worker) while worker 1 has reported its parts and
# worker 2 still runs: a FATAL, no PG_CATCH runs.  The parts the workers
# reported are aborted all the same, when the transaction abort detaches
# the parallel context's segment (were left pending until the next attempt).
for my $be ([ 'file', 'pab_files' ], [ 's3', 'pab_s3' ])
{
	my ($name, $server) = @$be;
	my $logpos = -s $node->logfile;
	my $bg = $node->background_psql('postgres');
	$bg->query_until(qr/started/, "\\echo started\nSET taskflow.test_pause_at = 'parallel_leader';\n"
		  . qq{SELECT rows FROM taskflow.export('SELECT * FROM src', '$server', '$name/kl', 'csv', '{"parallel": 3, "max_file_size": "1MB"}');\n});
	$node->wait_for_log(qr/taskflow test pause at parallel_leader \(pid \d+\)/, $logpos);
	my ($pid) = substr(slurp_file($node->logfile), $logpos) =~ /taskflow test pause at parallel_leader \(pid (\d+)\)/;
	is(q1("SELECT pg_terminate_backend($pid)"), 't', "$name, leader terminated: pg_terminate_backend");
	ok(TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid OR backend_type = 'parallel worker'", 60),
		"$name, leader terminated: the leader and its workers are gone");
	eval { $bg->quit; };    # (psql has exited with the lost connection)
	is(listing($server, "$name/kl"), '', "$name, leader terminated: no object is visible");
	if ($name eq 's3')
	{
		is($s3->pending_uploads('pab'), 0, 's3, leader terminated: no multipart upload is left pending');
	}
	else
	{
		my @tmp = glob("$fdir/file/kl/.* $fdir/file/kl/*");
		@tmp = grep { !m{/\.\.?$} } @tmp;
		is(scalar(@tmp), 0, 'file, leader terminated: no temporary file is left') or diag(join(' ', @tmp));
	}
}

# Identity and row level security in the parallel workers: a plain role
# whose policy shows it a third of the rows (who = current_user) exports
# exactly those rows in parallel (the workers run as the leader's user,
# with its policies), the same as serially; a superuser (bypasses row level
# security) exports all.
q1(q{
CREATE ROLE rls_user LOGIN;
CREATE TABLE rls_src (id bigint, who name, note text);
INSERT INTO rls_src SELECT g, CASE WHEN g % 3 = 0 THEN 'rls_user' ELSE 'someone' END, md5(g::text) || md5(g::text)
  FROM generate_series(1, 150000) g;
ALTER TABLE rls_src ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON rls_src FOR SELECT USING (who = current_user);
GRANT SELECT ON rls_src TO rls_user;
GRANT USAGE ON FOREIGN SERVER pab_files TO rls_user;
VACUUM ANALYZE rls_src;
CREATE TABLE rls_back (id bigint, who name, note text);
});
{
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET ROLE rls_user; SET client_min_messages = debug1; "
		  . q{SELECT rows FROM taskflow.export('SELECT * FROM rls_src', 'pab_files', 'rls/par', 'csv', '{"parallel": 3}')});
	is($ret, 0, 'rls: the parallel export as a plain role succeeds') or diag($err);
	is($out, '50000', 'rls: it exports exactly the rows the policy shows');
	my ($procs) = $err =~ /parallel export of rls_src: (\d+) processes/;
	ok(defined $procs && $procs >= 2, 'rls: more than one process exported (' . ($procs // 'none') . ')');
	is(q1(q{SELECT taskflow.import('pab_files', 'rls/par/', 'rls_back', 'csv')}), '50000', 'rls: import reads them back');
	is(q1(q{SELECT count(*) FROM rls_back WHERE who <> 'rls_user' OR id % 3 <> 0}), '0', 'rls: no row of another role');
	is(q1(q{SELECT rows FROM taskflow.export('SELECT * FROM rls_src', 'pab_files', 'rls/ser', 'csv', '{"parallel": 1}')}),
		'150000', 'rls: a superuser (bypasses row level security) exports all');
}

# the same export without the fault: succeeds and is complete
for my $be ([ 'file', 'pab_files' ], [ 's3', 'pab_s3' ])
{
	my ($name, $server) = @$be;
	is(q1(qq{SELECT rows FROM taskflow.export('SELECT * FROM src', '$server', '$name/ok', 'csv', '{"parallel": 3, "max_file_size": "1MB"}')}),
		'150000', "$name: without the fault the export is complete");
}

done_testing();
