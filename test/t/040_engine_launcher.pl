# The launcher keeps one scheduler per database with the extension:
# CREATE/DROP EXTENSION, CREATE DATABASE (also from a template that has
# taskflow) and DROP DATABASE are noticed within ~2 s, without waiting for
# the safety rescan (set to 1 hour here to prove it).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TaskflowTest;

my $node = TaskflowTest->start_node('launcher', extension => 0,
	conf => "taskflow.launcher_rescan_interval = 3600\n");

sub schedulers
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'"
		  . (defined $db ? " AND datname = '$db'" : ''));
}

sub wait_schedulers
{
	my ($db, $n, $what) = @_;
	my $t0 = time();
	my $ok = TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) = $n FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' AND datname = '$db'",
		30);
	my $ms = int((time() - $t0) * 1000);
	ok($ok, "$what ($ms ms)");
	# (prompt: woken, not the 1-hour safety rescan; loose for 2 busy cores)
	cmp_ok($ms, '<', 15000, "$what within 15 s");
	return $ms;
}

ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow launcher'", 10),
	'launcher running');
# the probe schedulers of databases without the extension exit at once
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'", 10),
	'no scheduler without the extension');

$node->safe_psql('postgres', 'CREATE DATABASE db2');
# the probe of the new database comes and goes (polled: on busy cores it
# may still be there after a second; one that stayed fails here)
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' AND datname = 'db2'", 30),
	'new database without taskflow: no scheduler');

my $t_create = wait_schedulers('db2', 1, 'CREATE EXTENSION noticed') if $node->safe_psql('db2', 'CREATE EXTENSION taskflow') || 1;
my $t_drop = wait_schedulers('db2', 0, 'DROP EXTENSION noticed') if $node->safe_psql('db2', 'DROP EXTENSION taskflow') || 1;
wait_schedulers('db2', 1, 'CREATE EXTENSION again noticed') if $node->safe_psql('db2', 'CREATE EXTENSION taskflow') || 1;
diag("launcher: CREATE EXTENSION -> scheduler up in $t_create ms; DROP EXTENSION -> scheduler gone in $t_drop ms");

# a flow in db2 runs there
$node->safe_psql('db2', q{
CREATE TABLE t (db text);
SELECT taskflow.create_flow('f2');
SELECT taskflow.add_node('f2', 'n', 'sql', 'INSERT INTO t SELECT current_database()');
});
my (undef, $state) = TaskflowTest->run_and_wait($node, 'f2', db => 'db2');
is($state, 'succeeded', 'flow in db2 ran');
is($node->safe_psql('db2', 'SELECT db FROM t'), 'db2', 'in database db2');

# CREATE DATABASE ... TEMPLATE db2 works although db2 has a scheduler, and the
# copy gets its own scheduler
my $t0 = time();
$node->safe_psql('postgres', 'CREATE DATABASE db3 TEMPLATE db2');
ok(1, 'CREATE DATABASE from a template with a scheduler succeeded');
wait_schedulers('db3', 1, 'copy of a taskflow database gets a scheduler');
wait_schedulers('db2', 1, 'template database gets its scheduler back');

# DROP DATABASE is not blocked by the scheduler
$t0 = time();
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE db3');
my $drop_ms = int((time() - $t0) * 1000);
is($ret, 0, "DROP DATABASE of a taskflow database succeeded ($drop_ms ms)") or diag($err);
# (a scheduler that does not leave makes DROP DATABASE wait 5 s for it and fail;
# one that leaves late, nearly as long: below that, with room for busy cores)
cmp_ok($drop_ms, '<', 4500, 'DROP DATABASE did not wait long');
is(schedulers('db3'), '0', 'no scheduler for the dropped database');

# a database created while the extension exists in postgres
$node->safe_psql('postgres', 'CREATE EXTENSION taskflow');
wait_schedulers('postgres', 1, 'scheduler in postgres');
is(schedulers(), '2', 'two schedulers: postgres and db2');

$node->stop;
done_testing();
