# TaskflowTest — shared helpers for taskflow's TAP tests (owned by the engine).
#
#   use lib 'test/perl';   # (make prove adds -I test/perl)
#   use TaskflowTest;
#   my $node = TaskflowTest->start_node('main');          # preloaded, extension created
#   my $run  = TaskflowTest->run_flow($node, 'myflow');   # run_flow(), returns run id
#   is(TaskflowTest->wait_run($node, $run), 'succeeded');
#
# Functions take the cluster ($node) first; every query runs in database
# 'postgres' unless a db => ... option says otherwise.  Keep this API stable:
# other test files use it.
package TaskflowTest;

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

# Start a new cluster with taskflow preloaded and sane settings.
#   TaskflowTest->start_node($name, conf => "extra lines\n",
#                            extension => 1 (CREATE EXTENSION in postgres),
#                            max_workers => 8)
sub start_node
{
	my ($class, $name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$class->init_node($node);
	my $max_workers = $opt{max_workers} // 8;
	$node->append_conf('postgresql.conf', <<"EOC");
shared_preload_libraries = 'taskflow'
max_worker_processes = 32
taskflow.max_workers = $max_workers
log_min_messages = info
log_line_prefix = '%m [%p] %b '
EOC
	$node->append_conf('postgresql.conf', $opt{conf}) if $opt{conf};
	$node->start;
	if ($opt{extension} // 1)
	{
		$node->safe_psql('postgres', 'CREATE EXTENSION taskflow');
		$class->wait_scheduler($node, 'postgres');
	}
	return $node;
}

# $node->init(%params), with the data directory copied from an initdb
# template made once per test run (tmp_check/initdb_template) instead of a
# fresh initdb per cluster (what PostgreSQL 16's Cluster.pm does with
# INITDB_TEMPLATE): initdb is ~1-2 s of every test file on 2 busy cores, a
# copy ~0.1 s.  Only the plain "initdb -D dir -A trust -N" of init() is
# replaced (init(extra => [...]) runs initdb itself); the rest of init()
# (pg_hba, the appended settings) is unchanged.  TASKFLOW_TEST_NO_TEMPLATE=1
# turns it off.
sub init_node
{
	my ($class, $node, %params) = @_;
	return $node->init(%params)
	  if $ENV{TASKFLOW_TEST_NO_TEMPLATE} || $params{extra};
	my $tmpl = "$PostgreSQL::Test::Utils::tmp_check/initdb_template";
	my $orig = \&PostgreSQL::Test::Utils::system_or_bail;
	no warnings 'redefine';
	local *PostgreSQL::Test::Utils::system_or_bail = sub {
		my @cmd = @_;
		return $orig->(@cmd)
		  unless @cmd == 6 && $cmd[0] eq 'initdb' && $cmd[1] eq '-D'
		  && "@cmd[3..5]" eq '-A trust -N';
		my $pgdata = $cmd[2];
		if (!-d $tmpl)
		{
			# made aside and renamed: a concurrent file (prove -j) either
			# sees the whole template or none
			my $tmp = "$tmpl.$$";
			$orig->('initdb', '-D', $tmp, '-A', 'trust', '-N');
			rename($tmp, $tmpl) or PostgreSQL::Test::Utils::system_log('rm', '-rf', $tmp);
		}
		$orig->('cp', '-RPp', $tmpl, $pgdata);
		return;
	};
	return $node->init(%params);
}

# Wait until a scheduler runs in database $db (default postgres); dies on timeout.
sub wait_scheduler
{
	my ($class, $node, $db, $timeout) = @_;
	$db //= 'postgres';
	$class->poll($node, 'postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' AND datname = '$db'",
		$timeout // 30)
	  or die "no taskflow scheduler in database $db";
	return 1;
}

# After a kill -9 of one of the cluster's processes (restart_after_crash = on):
# wait until the postmaster has noticed the death and reinitialized, then
# until the server answers and a scheduler runs.  Take $offset (-s
# $node->logfile) before the kill.  (Polling "SELECT true" alone can succeed
# before the postmaster has even noticed the death, on busy cores; the next
# statement then meets the crash restart.)
sub wait_crash_restart
{
	my ($class, $node, $offset, $timeout) = @_;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$class->poll($node, 'postgres', 'SELECT true', $timeout // 60)
	  or die 'server did not come back';
	$class->wait_scheduler($node, 'postgres', $timeout // 60);
	return 1;
}

# Poll $sql (must return t/f) until true or $timeout seconds; returns success.
sub poll
{
	my ($class, $node, $db, $sql, $timeout) = @_;
	$timeout //= 60;
	my $deadline = time() + $timeout;
	while (time() < $deadline)
	{
		my ($ret, $out, $err) = $node->psql($db, $sql);
		return 1 if $ret == 0 && $out eq 't';
		usleep(50_000);
	}
	return 0;
}

# Start a manual run; returns the run id.
#   run_flow($node, $flow, bizdate => 'yyyy-mm-dd', params => '{"a":"b"}', db => ..., user => ...)
sub run_flow
{
	my ($class, $node, $flow, %opt) = @_;
	my $bd = defined $opt{bizdate} ? "'$opt{bizdate}'::date" : 'NULL';
	my $params = defined $opt{params} ? "'$opt{params}'::jsonb" : "'{}'::jsonb";
	my $sql = "SELECT taskflow.run_flow('$flow', $bd, $params)";
	$sql = "SET ROLE $opt{user}; $sql" if $opt{user};
	return $node->safe_psql($opt{db} // 'postgres', $sql);
}

# Wait for a run to finish; returns its final state ('' if it does not exist).
sub wait_run
{
	my ($class, $node, $run_id, %opt) = @_;
	my $timeout = $opt{timeout} // 60;
	return $node->safe_psql($opt{db} // 'postgres',
		"SELECT taskflow.wait_run($run_id, '$timeout seconds')");
}

# Run a flow and wait for it; returns (run id, final state).
sub run_and_wait
{
	my ($class, $node, $flow, %opt) = @_;
	my $run = $class->run_flow($node, $flow, %opt);
	return ($run, $class->wait_run($node, $run, %opt));
}

# Node run states of a run as "node=state,node=state" (ordered by node name).
sub node_states
{
	my ($class, $node, $run_id, %opt) = @_;
	return $node->safe_psql($opt{db} // 'postgres',
		"SELECT string_agg(node || '=' || state, ',' ORDER BY node) FROM taskflow.node_run_history WHERE run_id = $run_id");
}

# Set (or clear with undef) taskflow.test_clock and wait until the scheduler saw it.
sub set_clock
{
	my ($class, $node, $ts) = @_;
	if (defined $ts)
	{
		$node->safe_psql('postgres', "ALTER SYSTEM SET taskflow.test_clock = '$ts'");
	}
	else
	{
		$node->safe_psql('postgres', 'ALTER SYSTEM RESET taskflow.test_clock');
	}
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	return 1;
}

1;
