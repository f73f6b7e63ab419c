# Review of 1.6 (docs/security.md): locks a plain role could take and hold
# to stop the scheduler of its database -- every owner's flows there.
#  1. pg_advisory_lock on the key the event triggers (part 93) serialized
#     their firing with: the key of the role's own downstream flow and a
#     bizdate; the scheduler's tick that marked the upstream run succeeded
#     waited for it (as long as the role's session lived).  The engine's
#     locks are in a key space of their own now (taskflow._xact_lock).
#  2. LOCK TABLE taskflow.flows IN SHARE MODE (any role holds table-level
#     DELETE on flows, which LOCK TABLE accepts): refused now.
#  3. an open DELETE of the role's own alert while its flow's run ends: the
#     tick queued the alert's delivery, whose foreign key waited for the
#     deleting transaction.  The alert's row is locked SKIP LOCKED now.
#  4. an open drop_flow of the role's own downstream flow while its upstream
#     run ends: the event trigger created the downstream run in the tick,
#     and its foreign key waited.  The same.  The event or alert is
#     deferred to the next pass (taskflow.deferred), not lost: it fires once
#     the transaction rolled back, and is dropped with a flow that was.
# Each part checks that another owner's every-second flow goes on running
# while the role holds what it could take.  Loose bounds (busy cores): the
# beats must go on within 30 s.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('review4locks', max_workers => 4);
sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE ROLE alice LOGIN;
CREATE ROLE mallory LOGIN;
CREATE SCHEMA mal AUTHORIZATION mallory;
CREATE TABLE public.beats (who text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.beats TO PUBLIC;
SET ROLE alice;
SELECT taskflow.create_flow('a_beat', schedule => 'every 1 second');
SELECT taskflow.add_node('a_beat', 'b', 'sql', $$INSERT INTO public.beats (who) VALUES ('alice')$$);
RESET ROLE;
SET ROLE mallory;
SELECT taskflow.create_flow('mu');
SELECT taskflow.add_node('mu', 'x', 'sql', 'SELECT 1');
SELECT taskflow.create_flow('md');
SELECT taskflow.add_node('md', 'x', 'sql', 'SELECT 1');
SELECT taskflow.add_flow_trigger('md', 'mu');
});

# alice's flow beats: n more beats than now within 30 s
sub beats_go_on
{
	my ($n) = @_;
	my $now = q1(q{SELECT count(*) FROM public.beats});
	return TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) >= $now + $n FROM public.beats", 30);
}
ok(beats_go_on(2), 'alice\'s every-second flow runs');

# 1. the event key of mallory's own downstream flow, held in a session lock
my $md = q1(q{SELECT id FROM taskflow.flows WHERE name = 'md'});
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_safe(q{SET ROLE mallory});
$bg->query_safe("SELECT pg_advisory_lock(hashtext('taskflow.event'), hashtext('$md 2026-11-30'))");
my $run = TaskflowTest->run_flow($node, 'mu', bizdate => '2026-11-30', user => 'mallory');
is(TaskflowTest->wait_run($node, $run, timeout => 30), 'succeeded',
	'the upstream run is marked succeeded while mallory holds the old event key');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 1 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'md' AND r.trigger = 'event' AND r.bizdate = '2026-11-30'}, 30),
	'the downstream flow is triggered');
ok(beats_go_on(3), 'alice\'s flow goes on meanwhile');
is(q1(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'
         AND wait_event_type = 'Lock'}), '0', 'the scheduler waits for no lock');
# mallory cannot take the engine's own locks either
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET ROLE mallory; SELECT taskflow._xact_lock(1, 2)});
like($err, qr/permission denied/, 'taskflow._xact_lock is not executable by a plain role');
$bg->query_safe(q{SELECT pg_advisory_unlock_all()});

# 2. a table lock of the shared catalog, held in an open transaction
$bg->query_safe(q{BEGIN});
$out = $bg->query(q{LOCK TABLE taskflow.flows IN SHARE MODE});
like($bg->{stderr} // '', qr/permission denied to lock taskflow\.flows/,
	'LOCK TABLE taskflow.flows IN SHARE MODE is refused to a plain role');
ok(beats_go_on(3), 'alice\'s flow goes on while mallory\'s transaction is open');
$bg->{stderr} = '';
$bg->query_safe(q{ROLLBACK});

# 2b. the same through a view of mallory's own, while another session holds an
# ACCESS SHARE lock of flows (any open transaction that read it): refused at
# once, not queued (a queued ACCESS EXCLUSIVE request holds up every later
# request of the table, the scheduler's too)
q1(q{SET ROLE mallory; CREATE VIEW mal.v AS SELECT id FROM taskflow.flows});
my $reader = $node->background_psql('postgres');
$reader->query_safe(q{BEGIN});
$reader->query_safe(q{SELECT count(*) FROM taskflow.flows});
($ret, $out, $err) = $node->psql('postgres',
	q{SET ROLE mallory; SET statement_timeout = '5s'; LOCK TABLE mal.v IN ACCESS EXCLUSIVE MODE});
like($err, qr/permission denied to lock taskflow\.flows/,
	'LOCK of a view over the catalog is refused at once, not queued behind a reader');
ok(beats_go_on(2), 'alice\'s flow goes on');
$reader->query_safe(q{ROLLBACK});
$reader->quit;

# 3. mallory's own alert, its DELETE left open
q1(q{SET ROLE mallory;
SELECT taskflow.create_flow('ma');
SELECT taskflow.add_node('ma', 'x', 'sql', 'SELECT 1');
SELECT taskflow.add_alert('ma', 'success', notify_channel => 'r4_alerts');});
$bg->query_safe(q{BEGIN});
$bg->query_safe(q{DELETE FROM taskflow.alerts WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'ma')});
$run = TaskflowTest->run_flow($node, 'ma', user => 'mallory');
is(TaskflowTest->wait_run($node, $run, timeout => 30), 'succeeded',
	'a run ends while its alert\'s DELETE is open');
ok(beats_go_on(3), 'alice\'s flow goes on meanwhile (alert)');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.deferred WHERE kind = 'alert' AND run_id = $run", 30),
	'the alert\'s delivery is deferred, not lost');
is(q1("SELECT count(*) FROM taskflow.alert_deliveries WHERE run_id = $run"), '0',
	'and not queued while the DELETE is open');
$bg->query_safe(q{ROLLBACK});
# the DELETE rolled back: the next pass queues the delivery
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.alert_deliveries WHERE run_id = $run AND target = 'notify'", 30),
	'the deferred alert is queued once the DELETE rolled back');
is(q1("SELECT count(*) FROM taskflow.deferred"), '0', 'nothing is left deferred (alert)');

# 4. mallory's own downstream flow, its drop_flow left open
$bg->query_safe(q{BEGIN});
$bg->query_safe(q{SELECT taskflow.drop_flow('md')});
$run = TaskflowTest->run_flow($node, 'mu', bizdate => '2026-11-29', user => 'mallory');
is(TaskflowTest->wait_run($node, $run, timeout => 30), 'succeeded',
	'the upstream run ends while its downstream flow\'s drop_flow is open');
ok(beats_go_on(3), 'alice\'s flow goes on meanwhile (event)');
is(q1(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'
         AND wait_event_type = 'Lock'}), '0', 'the scheduler waits for no lock (alert, event)');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.deferred WHERE kind = 'event' AND run_id = $run", 30),
	'the event is deferred, not lost');
$bg->query_safe(q{ROLLBACK});
# the drop rolled back: the next pass fires the deferred event
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 1 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'md' AND r.trigger = 'event' AND r.bizdate = '2026-11-29'}, 30),
	'the deferred event fires once the drop_flow rolled back');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 1 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'md' AND r.trigger = 'event' AND r.bizdate = '2026-11-29'
	     AND r.state = 'succeeded'}, 30),
	'and its run succeeds');
is(q1("SELECT count(*) FROM taskflow.deferred"), '0', 'nothing is left deferred (event)');
# the flow is back, and triggered again by the next upstream success
$run = TaskflowTest->run_flow($node, 'mu', bizdate => '2026-11-28', user => 'mallory');
is(TaskflowTest->wait_run($node, $run, timeout => 30), 'succeeded', 'the upstream runs again');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 1 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'md' AND r.trigger = 'event' AND r.bizdate = '2026-11-28'}, 30),
	'and the downstream flow is triggered again');

# 5. the same, but the drop_flow commits: the deferred event is dropped with
# its flow (no run of a dropped flow, nothing left behind)
q1(q{SET ROLE mallory;
SELECT taskflow.create_flow('md2');
SELECT taskflow.add_node('md2', 'x', 'sql', 'SELECT 1');
SELECT taskflow.add_flow_trigger('md2', 'mu');});
$bg->query_safe(q{BEGIN});
$bg->query_safe(q{SELECT taskflow.drop_flow('md2')});
$run = TaskflowTest->run_flow($node, 'mu', bizdate => '2026-11-27', user => 'mallory');
is(TaskflowTest->wait_run($node, $run, timeout => 30), 'succeeded', 'the upstream runs (md2 being dropped)');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.deferred WHERE kind = 'event' AND run_id = $run", 30),
	'md2\'s event is deferred');
$bg->query_safe(q{COMMIT});
ok(TaskflowTest->poll($node, 'postgres', "SELECT count(*) = 0 FROM taskflow.deferred", 30),
	'the deferred event of the dropped flow is dropped');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 1 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'md' AND r.trigger = 'event' AND r.bizdate = '2026-11-27'}, 30),
	'md, not being dropped, was triggered at once');
is(q1(q{SELECT count(*) FROM taskflow.flows WHERE name = 'md2'}), '0', 'md2 is gone');
$bg->quit;

done_testing();
