# Review of 1.7 (docs/security.md): one bad row in the set-based step of a
# due time (taskflow._sched_due_set, part 99_dispatch5) must not stop or
# keep slowing every other flow's scheduling.  A flow whose time zone was
# written directly (the guard bypassed by a superuser) with its next_due
# due makes the whole set-based step fail (one statement for every due
# flow); the per-flow path then schedules the others and gives the bad one
# its schedule_error, which keeps it out of the set-based step from then on
# (retried every 10 s by the per-flow path alone).  A flow whose owner role
# was dropped is scheduled like any other (its runs fail at the node
# worker: "flow owner (role oid N) does not exist", docs/operations.md).
# Loose bounds (busy cores).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('review5dueset', max_workers => 4);
sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN;
SET ROLE alice;
SELECT taskflow.create_flow('a1', schedule => 'every 1 second');
SELECT taskflow.add_node('a1', 'x', 'sql', 'SELECT 1');
SELECT taskflow.create_flow('a2', schedule => 'every 1 second');
SELECT taskflow.add_node('a2', 'x', 'sql', 'SELECT 1');
RESET ROLE;
SET ROLE bob;
SELECT taskflow.create_flow('b_bad', schedule => 'every 1 second');
SELECT taskflow.add_node('b_bad', 'x', 'sql', 'SELECT 1');
RESET ROLE;
SET ROLE carol;
SELECT taskflow.create_flow('c_gone', schedule => 'every 1 second');
SELECT taskflow.add_node('c_gone', 'x', 'sql', 'SELECT 1');
});

sub runs_of { return q1("SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = '$_[0]'"); }
sub runs_go_on
{
	my ($name, $n) = @_;
	my $now = runs_of($name);
	return TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) >= $now + $n FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = '$name'", 30);
}
ok(runs_go_on('a1', 2), 'a1 runs every second');

# carol is dropped (nothing keeps DROP ROLE from it: owner is a regrole column)
q1(q{DROP ROLE carol});
# b_bad: an unknown time zone written directly, due now
q1(q{SET session_replication_role = replica;
UPDATE taskflow.flows SET timezone = 'Mars/Olympus', next_due = now() - interval '1 second',
       schedule_error = NULL WHERE name = 'b_bad';});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT schedule_error LIKE '%Mars/Olympus%' FROM taskflow.flows WHERE name = 'b_bad'}, 30),
	'the bad flow gets its schedule_error');
my $bad_runs = runs_of('b_bad');
ok($node->log_contains('scheduling the due flows together failed, one by one instead'),
	'the set-based step failed on it once');
ok(runs_go_on('a1', 3), 'a1 goes on');
ok(runs_go_on('a2', 3), 'a2 goes on');
ok(runs_go_on('c_gone', 2), 'the dropped owner\'s flow is scheduled like any other');
my $log = slurp_file($node->logfile);
my $fails = () = $log =~ /scheduling the due flows together failed/g;
# past the bad flow's 10-s retry: the set-based step does not fail again
my $t0 = time;
ok(runs_go_on('a1', 12), 'a1 goes on for another 12 runs');
cmp_ok(time - $t0, '>=', 11, '(more than 10 s passed)');
$log = slurp_file($node->logfile);
my $fails2 = () = $log =~ /scheduling the due flows together failed/g;
is($fails2, $fails, 'the set-based step did not fail again: the bad flow stays out of it');
like($log, qr/cannot schedule flow "b_bad"/, 'the bad flow\'s error is logged');
is(runs_of('b_bad'), $bad_runs, 'the bad flow made no run since');
is(q1(q{SELECT count(*) FROM (SELECT flow_id, scheduled_for FROM taskflow.runs
         GROUP BY 1, 2 HAVING count(*) > 1) d}), '0', 'one run per flow and period');
# repaired: it schedules again
q1(q{SELECT taskflow.alter_flow('b_bad', timezone => 'UTC')});
ok(runs_go_on('b_bad', 2), 'the repaired flow runs again');
is(q1(q{SELECT schedule_error IS NULL FROM taskflow.flows WHERE name = 'b_bad'}), 't', 'its error is gone');

$node->stop;
done_testing();
