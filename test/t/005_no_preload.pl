# taskflow loaded without shared_preload_libraries: the SQL side works, and the
# user is told clearly that scheduling needs preload.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
TaskflowTest->init_node($node);    # (initdb template)
$node->start;

my ($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION taskflow');
is($ret, 0, 'CREATE EXTENSION works without preload');
like($err, qr/WARNING:.*loaded without shared_preload_libraries/,
	'CREATE EXTENSION warns that flows will not run');
like($err, qr/HINT:.*shared_preload_libraries/, 'the warning has a hint');

# the definition API and dry runs work
$node->safe_psql('postgres', q{
	SELECT taskflow.create_flow('f', schedule => '0 5 * * *', timezone => 'Asia/Shanghai');
	SELECT taskflow.set_variable('f', 'day', 'dd of bizdate');
	SELECT taskflow.add_node('f', 'n', 'sql', 'SELECT ${day}');
});
is($node->safe_psql('postgres', q{SELECT taskflow.render('f', 'n', '2020-06-01')}),
	'SELECT 01', 'render works without preload');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM taskflow.next_runs('0 5 * * *', '2020-06-01', 3, 'Asia/Shanghai')}),
	'3', 'next_runs works without preload');

# no launcher, no scheduler
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'taskflow%'}),
	'0', 'no taskflow background workers without preload');

# a manual run is refused with a clear message rather than queued forever
($ret, $out, $err) = $node->psql('postgres', q{SELECT taskflow.run_flow('f')});
isnt($ret, 0, 'run_flow fails without preload');
like($err, qr/shared_preload_libraries/, 'run_flow says that scheduling needs preload');
is($node->safe_psql('postgres', 'SELECT count(*) FROM taskflow.runs'), '0',
	'no run was created');

$node->stop;
done_testing();
