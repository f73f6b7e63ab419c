# Review of 1.5 (docs/security.md): a node worker that cannot be started
# because every max_worker_processes slot is taken -- here by a parallel
# query's workers, as on a busy server -- is tried again within seconds once
# a slot frees.  Nothing wakes the scheduler when a process slot that is not
# taskflow's frees; before the fix the ready node waited for the scheduler's
# next wake, up to its 60 s maximum sleep (scheduler.c, start_retry_ms).
# No tight timing: the node must start within 30 s of the slots freeing
# (it takes at most ~8 s now, ~55 s before).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TaskflowTest;

# the logical replication launcher, taskflow's launcher and one scheduler
# take 3 process slots: 2 are free
my $node = TaskflowTest->start_node('startretry', max_workers => 2,
	conf => "max_worker_processes = 5\nmax_parallel_workers = 4\n");
sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE TABLE public.hold (i int, pad text) WITH (fillfactor = 10);
INSERT INTO public.hold SELECT g, repeat('x', 500) FROM generate_series(1, 300) g;
CREATE TABLE public.marks (at timestamptz);
SELECT taskflow.create_flow('one');
SELECT taskflow.add_node('one', 'n', 'sql', 'INSERT INTO public.marks VALUES (clock_timestamp())');
});
# a parallel query takes both free slots for ~15 s
# (on_error_stop off: it is canceled below, and must still read the \q of quit)
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/holding/, q{
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
\echo holding
SELECT count(*) FROM public.hold WHERE pg_sleep(0.1) IS NOT NULL;
});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'parallel worker'}, 30),
	'two parallel workers hold the free process slots');

my $log_from = -s $node->logfile;
my $run = TaskflowTest->run_flow($node, 'one');
ok(wait_log(qr/could not start a node worker/, 30), 'the node worker could not be started');
is(q1("SELECT state FROM taskflow.runs WHERE id = $run"), 'running', 'the run waits');

# the parallel query ends (canceled: it would take ~15 s): the slots are free
q1(q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
        AND query LIKE '%FROM public.hold WHERE pg_sleep%'});
$bg->quit;
my $freed = time();
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'parallel worker'}, 30),
	'the parallel workers are gone');
is(TaskflowTest->wait_run($node, $run, timeout => 30), 'succeeded',
	'the node ran within 30 s of the slots freeing (not at the 60 s wake)');
diag(sprintf('started %.1f s after the slots freed', time() - $freed));

sub wait_log
{
	my ($re, $timeout) = @_;
	my $deadline = time() + $timeout;
	while (time() < $deadline)
	{
		my $log = slurp_file($node->logfile, $log_from);
		return 1 if $log =~ $re;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

done_testing();
