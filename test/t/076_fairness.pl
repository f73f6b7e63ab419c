# Fairness between owners and databases, per-owner caps, wait nodes.
#  - wait nodes give their worker back between polls (same attempt, polls
#    counted, state 'retrying' with a "waiting" message);
#  - owner A hogs: 100 runs (max_active_runs 100, backfill) of a wait node
#    that never comes true; owner B's run (same database, then another
#    database) starts within a bound;
#  - taskflow.max_workers_per_owner: per role (ALTER ROLE, superuser only)
#    and server-wide; never more running than the cap;
#  - taskflow.wait_timeout: the default timeout of wait nodes; the node's
#    own timeout wins.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TaskflowTest;

my $node = TaskflowTest->start_node('fair', max_workers => 4);

$node->safe_psql('postgres', q{
CREATE ROLE a LOGIN;
CREATE ROLE b LOGIN;
CREATE DATABASE db2;
});
$node->safe_psql('db2', 'CREATE EXTENSION taskflow');
TaskflowTest->wait_scheduler($node, 'db2');

sub workers
{
	return $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND state = 'active'});
}

# --- wait nodes free their slot between polls
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('sensors', owner => 'a');
SELECT taskflow.add_node('sensors', 'w' || i, 'wait', 'false',
                         options => '{"poll_interval": "2 seconds"}') FROM generate_series(1, 3) i;
});
my $sensors = TaskflowTest->run_flow($node, 'sensors');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 3 FROM taskflow.node_runs WHERE run_id = $sensors AND rows >= 2 AND state = 'retrying'", 30),
	'three wait nodes polled twice each');
my ($samples, $idle) = (0, 0);
for (1 .. 30)
{
	$samples++;
	$idle++ if workers() eq '0';
	usleep(100_000);
}
diag("3 waiting wait nodes: no node worker in $idle of $samples samples");
cmp_ok($idle, '>=', $samples * 0.7, 'no worker held while wait nodes sleep between polls');
is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT state || ' ' || attempts, ',') FROM taskflow.node_run_history WHERE run_id = $sensors"),
	'retrying 1', 'still the first attempt');
like($node->safe_psql('postgres', "SELECT error FROM taskflow.node_run_history WHERE run_id = $sensors AND node = 'w1'"),
	qr/^waiting: condition false after \d+ poll\(s\); next poll at /, 'the node run says it is waiting');
$node->safe_psql('postgres', "SELECT taskflow.cancel_run($sensors)");
# a long delay is spent without a worker too
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('delayed', owner => 'a');
SELECT taskflow.add_node('delayed', 'w', 'wait', 'true', options => '{"delay": "2 seconds"}');
});
my $t_delay = time();
my $delayed = TaskflowTest->run_flow($node, 'delayed');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'retrying' AND message LIKE 'waiting: delay; first poll at %' FROM taskflow.node_runs WHERE run_id = $delayed", 30),
	'a wait node in its delay gives its worker back');
is(TaskflowTest->wait_run($node, $delayed), 'succeeded', 'and polls once the delay is over');
cmp_ok(time() - $t_delay, '>=', 2, 'not before the delay');
is($node->safe_psql('postgres', "SELECT attempts || ' ' || rows FROM taskflow.node_run_history WHERE run_id = $delayed"),
	'1 1', 'one attempt, one poll');

# --- owner A hogs every slot with never-true waits
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('hog', owner => 'a', schedule => '0 5 * * *', max_active_runs => 100);
SELECT taskflow.add_node('hog', 'never', 'wait', 'false', options => '{"poll_interval": "1 second"}');
SELECT count(*) FROM taskflow.backfill('hog', '2020-01-01', '2020-04-09');
});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 100 FROM taskflow.run_history WHERE flow = 'hog' AND state = 'running'}, 30),
	'100 hog runs running');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 50 FROM taskflow.node_run_history WHERE flow = 'hog' AND state = 'retrying'}, 30),
	'hog wait nodes cycling through the workers');
my $busy = 0;
for (1 .. 10) { $busy = workers() if workers() > $busy; usleep(50_000); }
diag("hog: up to $busy of 4 workers busy");

$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('bflow', owner => 'b');
SELECT taskflow.add_node('bflow', 'n', 'sql', 'SELECT 1');
});
$node->safe_psql('db2', q{
SELECT taskflow.create_flow('bflow2', owner => 'b');
SELECT taskflow.add_node('bflow2', 'n', 'sql', 'SELECT 1');
});

sub b_latency
{
	my ($db, $flow) = @_;
	my $run = TaskflowTest->run_flow($node, $flow, db => $db);
	my $state = TaskflowTest->wait_run($node, $run, db => $db, timeout => 30);
	my $lat = $node->safe_psql($db, qq{
SELECT round(extract(epoch FROM nr.started_at - r.created_at) * 1000)
  FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id WHERE r.id = $run});
	return ($state, $lat);
}

my @lat;
for my $i (1 .. 3)
{
	my ($state, $lat) = b_latency('postgres', 'bflow');
	is($state, 'succeeded', "B's run $i (same database) succeeded while A hogs");
	push @lat, $lat;
}
my @lat2;
for my $i (1 .. 3)
{
	my ($state, $lat) = b_latency('db2', 'bflow2');
	is($state, 'succeeded', "B's run $i (other database) succeeded while A hogs");
	push @lat2, $lat;
}
diag("B start latency while A hogs: same database @lat ms; other database @lat2 ms");
# A's hog never ends by itself: without fairness B would not start at all, so
# the bound is only there to fail fast; it is loose for a busy 2-core machine
cmp_ok((sort { $b <=> $a } @lat)[0], '<', 10000, "B starts within 10 s in A's database");
cmp_ok((sort { $b <=> $a } @lat2)[0], '<', 10000, 'B starts within 10 s in another database');
is($node->safe_psql('postgres', q{SELECT count(*) FROM taskflow.run_history WHERE flow = 'hog' AND state = 'running'}),
	'100', 'the hog runs are still running (waiting)');
$node->safe_psql('postgres', q{SELECT taskflow.cancel_run(run_id) FROM taskflow.run_history WHERE flow = 'hog' AND state = 'running'});
ok(TaskflowTest->poll($node, 'postgres', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND state = 'active'}, 30),
	'hog canceled, no worker busy');

# --- A's backlog of busy sql nodes fills every slot (no cap): B gets the next
# free slot, ahead of A's queue, in A's database and in another one
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('backlog', owner => 'a');
SELECT taskflow.add_node('backlog', 'n' || i, 'sql', 'SELECT pg_sleep(1)') FROM generate_series(1, 60) i;
});
my $rbl = TaskflowTest->run_flow($node, 'backlog');
ok(TaskflowTest->poll($node, 'postgres', q{SELECT count(*) = 4 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND state = 'active' AND usename = 'a'}, 30),
	"A's backlog takes all 4 workers");
my ($sb1, $lb1) = b_latency('postgres', 'bflow');
my ($sb2, $lb2) = b_latency('db2', 'bflow2');
my $left = $node->safe_psql('postgres', "SELECT count(*) FROM taskflow.node_runs WHERE run_id = $rbl AND state = 'pending'");
diag("B start latency behind A's busy backlog: same database $lb1 ms, other database $lb2 ms; A still had $left nodes queued");
is("$sb1,$sb2", 'succeeded,succeeded', "B's runs succeeded behind A's backlog");
# A's backlog takes 15 s to drain through 4 workers (60 x 1 s); behind it B
# would wait about that long. B finishing while A still has nodes queued (the
# next assertion) is the proof; the bounds are loose for a busy machine.
cmp_ok($lb1, '<', 7000, "B jumps A's queue in A's database");
cmp_ok($lb2, '<', 7000, "B jumps A's queue from another database");
cmp_ok($left, '>', 0, "A's backlog was still queued when B finished");
$node->safe_psql('postgres', "SELECT taskflow.cancel_run($rbl)");

# --- per-owner cap: a role setting (superuser only) and the server default
my ($ret, $out, $err) = $node->psql('postgres', 'SET ROLE a; ALTER ROLE a SET taskflow.max_workers_per_owner = 0');
like($err, qr/permission denied to set parameter/, 'a non-superuser cannot lift its own cap');
$node->safe_psql('postgres', 'ALTER ROLE a SET taskflow.max_workers_per_owner = 2');
for my $db ('postgres', 'db2')
{
	$node->safe_psql($db, q{
SELECT taskflow.create_flow('wide', owner => 'a');
SELECT taskflow.add_node('wide', 'n' || i, 'sql', 'SELECT pg_sleep(0.5)') FROM generate_series(1, 6) i;
});
}
$node->safe_psql('db2', q{
SELECT taskflow.create_flow('bwide', owner => 'b');
SELECT taskflow.add_node('bwide', 'n' || i, 'sql', 'SELECT pg_sleep(0.5)') FROM generate_series(1, 2) i;
});
my $r1 = TaskflowTest->run_flow($node, 'wide');
my $r2 = TaskflowTest->run_flow($node, 'wide', db => 'db2');
my $max_a = 0;
my $t0 = time();
while (time() - $t0 < 30)
{
	my $n = $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND state = 'active' AND usename = 'a'});
	$max_a = $n if $n > $max_a;
	last if $node->safe_psql('postgres', "SELECT state FROM taskflow.runs WHERE id = $r1") ne 'running'
	  && $node->safe_psql('db2', "SELECT state FROM taskflow.runs WHERE id = $r2") ne 'running';
	usleep(20_000);
}
is(TaskflowTest->wait_run($node, $r1) . ',' . TaskflowTest->wait_run($node, $r2, db => 'db2'),
	'succeeded,succeeded', "A's 12 capped nodes in two databases all ran");
cmp_ok($max_a, '<=', 2, "never more than 2 workers of A at once (sampled: $max_a)");
# peak overlap from the recorded intervals over both databases
my $iv = join(',', map {
	$node->safe_psql($_->[0], "SELECT string_agg(extract(epoch FROM started_at) || ':' || extract(epoch FROM finished_at), ',') FROM taskflow.node_runs WHERE run_id = $_->[1]")
} (['postgres', $r1], ['db2', $r2]));
my @iv = map { [split /:/] } split /,/, $iv;
my $peak = 0;
for my $s (@iv)
{
	my $c = grep { $_->[0] <= $s->[0] && $_->[1] > $s->[0] } @iv;
	$peak = $c if $c > $peak;
}
is($peak, 2, 'per-owner cap 2 over both databases: peak overlap 2');
# B is not capped by A's cap and runs next to A's capped work
my $r3 = TaskflowTest->run_flow($node, 'wide');
my ($rb, $sb) = TaskflowTest->run_and_wait($node, 'bwide', db => 'db2');
is($sb, 'succeeded', "B runs while A is at its cap");
is(TaskflowTest->wait_run($node, $r3), 'succeeded', "A's run finished");

# the server default (reload), and RESET of the role setting
$node->safe_psql('postgres', q{ALTER ROLE a RESET taskflow.max_workers_per_owner;
ALTER SYSTEM SET taskflow.max_workers_per_owner = 1; SELECT pg_reload_conf();});
ok(TaskflowTest->poll($node, 'postgres', q{SELECT current_setting('taskflow.max_workers_per_owner') = '1'}, 10),
	'server default reloaded');
($r1, my $s1) = TaskflowTest->run_and_wait($node, 'wide');
is($s1, 'succeeded', 'run under the server-wide cap 1 succeeded');
is($node->safe_psql('postgres', qq{
SELECT bool_and(NOT EXISTS (SELECT 1 FROM taskflow.node_runs o
                             WHERE o.run_id = $r1 AND o.id <> s.id
                               AND o.started_at < s.finished_at AND s.started_at < o.finished_at))
  FROM taskflow.node_runs s WHERE s.run_id = $r1}),
	't', 'server-wide cap 1: node runs of one owner never overlapped');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET taskflow.max_workers_per_owner; SELECT pg_reload_conf();});

# --- taskflow.wait_timeout: default timeout of wait nodes; the node's own wins
$node->safe_psql('postgres', q{ALTER SYSTEM SET taskflow.wait_timeout = '3s'; SELECT pg_reload_conf();
SELECT taskflow.create_flow('waits');
SELECT taskflow.add_node('waits', 'dflt', 'wait', 'false', options => '{"poll_interval": "1500 ms"}');
SELECT taskflow.add_node('waits', 'own', 'wait', 'false', options => '{"poll_interval": "1500 ms"}',
                         timeout => '5 seconds');
});
ok(TaskflowTest->poll($node, 'postgres', q{SELECT current_setting('taskflow.wait_timeout') = '3s'}, 10),
	'wait_timeout reloaded');
my ($rw, $sw) = TaskflowTest->run_and_wait($node, 'waits');
is($sw, 'failed', 'both waits timed out');
is($node->safe_psql('postgres', "SELECT string_agg(node || ' ' || sqlstate || ' ' || error || ' ' || attempts, ',' ORDER BY node) FROM taskflow.node_run_history WHERE run_id = $rw"),
	'dflt 57014 wait node "dflt" timed out after 3000 ms 1,own 57014 wait node "own" timed out after 5000 ms 1',
	'default timeout from taskflow.wait_timeout; the node\'s own timeout wins');
my $dur = $node->safe_psql('postgres', "SELECT round(extract(epoch FROM duration)) FROM taskflow.node_run_history WHERE run_id = $rw AND node = 'dflt'");
ok($dur >= 3 && $dur <= 5, "default timeout counted from the start of the wait over released polls ($dur s)");
$node->safe_psql('postgres', q{ALTER SYSTEM RESET taskflow.wait_timeout; SELECT pg_reload_conf();});

$node->stop;
done_testing();
