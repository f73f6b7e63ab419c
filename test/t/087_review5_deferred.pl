# Review of 1.7 (docs/security.md): taskflow.deferred (part 99_deferred),
# the events and alert deliveries the scheduler's tick could not do at once
# because a user's open transaction held a parent row.  1.7 retried every
# entry at every pass, each attempt noting a still-blocked entry anew
# (lookups, the SKIP LOCKED probe, _defer's scan of the whole table): a role
# that kept its own downstream flow's row locked while its upstream flow ran
# (an entry per upstream run) made every pass of the database slow, for
# every owner.  Now (part 99_deferred) a blocked group (kind, flow, alert) is
# probed once per pass and its rows are left untouched.
#  1. 3,000 entries of mallory's blocked downstream flow (an hour of an
#     every-second upstream flow; made directly here): no pass rewrites
#     them (1.7: every pass deleted and inserted all 3,000 again, ~2.5 s a
#     pass on the development VM), alice's every-second flow goes on.
#  2. a real deferral joins them; once the lock is released the downstream
#     flow fires once per bizdate, never twice, and nothing is left.
#  3. an alert held locked: its delivery deferred, queued once on release.
#  4. an entry whose flow is gone is dropped (not left "blocked" forever).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('review5deferred', max_workers => 4);
sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE ROLE alice LOGIN;
CREATE ROLE mallory LOGIN;
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
SELECT taskflow.create_flow('ma');
SELECT taskflow.add_node('ma', 'x', 'sql', 'SELECT 1');
SELECT taskflow.add_alert('ma', 'success', notify_channel => 'r5_alerts');
});

sub beats_go_on
{
	my ($n) = @_;
	my $now = q1(q{SELECT count(*) FROM public.beats});
	return TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) >= $now + $n FROM public.beats", 30);
}
ok(beats_go_on(2), 'alice\'s every-second flow runs');

# mallory keeps its downstream flow's row locked and its alert's DELETE open
my $hold = $node->background_psql('postgres');
$hold->query_safe(q{SET ROLE mallory});
$hold->query_safe(q{BEGIN});
$hold->query_safe(q{SELECT id FROM taskflow.flows WHERE name = 'md' FOR UPDATE});
$hold->query_safe(q{DELETE FROM taskflow.alerts WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'ma')});

# 1. an hour of deferred events of md (succeeded runs of mu, bizdate 2026-11-01)
q1(q{
SET session_replication_role = replica;
WITH r AS (INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, state, created_by)
           SELECT f.id, now() - g * interval '1 second', '2026-11-01', 'manual', 'succeeded', 'mallory'
             FROM taskflow.flows f, generate_series(1, 3000) g WHERE f.name = 'mu' RETURNING id)
INSERT INTO taskflow.deferred (kind, flow_id, run_id)
SELECT 'event', (SELECT id FROM taskflow.flows WHERE name = 'md'), id FROM r;
});
my $max0 = q1(q{SELECT max(id) FROM taskflow.deferred});
ok(beats_go_on(6), 'alice\'s flow goes on with 3,000 blocked entries');
is(q1(q{SELECT count(*) || ' ' || max(id) FROM taskflow.deferred}), "3000 $max0",
	'no pass rewrote the blocked entries');
is(q1(q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE f.name = 'md'}), '0', 'md has not fired while its row is locked');

# 2. a real deferral joins them
my $run = TaskflowTest->run_flow($node, 'mu', bizdate => '2026-11-02', user => 'mallory');
is(TaskflowTest->wait_run($node, $run, timeout => 30), 'succeeded', 'mu runs');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.deferred WHERE kind = 'event' AND run_id = $run", 30),
	'its event is deferred');

# 3. the alert's delivery
my $arun = TaskflowTest->run_flow($node, 'ma', user => 'mallory');
is(TaskflowTest->wait_run($node, $arun, timeout => 30), 'succeeded', 'ma runs');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.deferred WHERE kind = 'alert' AND run_id = $arun", 30),
	'its alert is deferred');

# 4. an entry of a flow that is gone
q1(q{INSERT INTO taskflow.deferred (kind, flow_id, run_id) VALUES ('event', 999999, 1)});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 0 FROM taskflow.deferred WHERE flow_id = 999999}, 30),
	'an entry whose flow is gone is dropped');
ok(beats_go_on(2), 'alice\'s flow goes on');

$hold->query_safe(q{ROLLBACK});
$hold->quit;
ok(TaskflowTest->poll($node, 'postgres', q{SELECT count(*) = 0 FROM taskflow.deferred}, 60),
	'every entry is done once the locks are gone');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 2 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'md' AND r.trigger = 'event'}, 30),
	'md fired');
is(q1(q{SELECT string_agg(bizdate || ':' || n, ',' ORDER BY bizdate)
          FROM (SELECT r.bizdate, count(*) n FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
                 WHERE f.name = 'md' GROUP BY 1) x}),
	'2026-11-01:1,2026-11-02:1', 'once per bizdate, never twice');
is(q1("SELECT count(*) FROM taskflow.alert_deliveries WHERE run_id = $arun"), '1',
	'the alert is queued once');
sleep 2;
is(q1("SELECT count(*) FROM taskflow.alert_deliveries WHERE run_id = $arun"), '1',
	'and only once');

# 5. SLA alerts: mallory's flow whose runs queue up (max_active_runs 1, a
# long run), an SLA of 1 s, 3,000 overdue scheduled runs (made directly
# here), the alert's DELETE left open.  1.7 queued every overdue run's
# delivery again at every pass (probe + _defer's scan of the table, each
# noted in the log): 2-4 s a pass.  Now each is deferred once.
q1(q{SET ROLE mallory;
SELECT taskflow.create_flow('ms', max_active_runs => 1);
SELECT taskflow.add_node('ms', 'x', 'sql', 'SELECT pg_sleep(600)');
SELECT taskflow.add_alert('ms', 'sla', notify_channel => 'r5_sla', sla => '1 second');});
my $long = TaskflowTest->run_flow($node, 'ms', user => 'mallory');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.runs WHERE id = $long", 30), 'ms has a long run');
my $alert = q1(q{SELECT a.id FROM taskflow.alerts a JOIN taskflow.flows f ON f.id = a.flow_id WHERE f.name = 'ms'});
$hold = $node->background_psql('postgres');
$hold->query_safe(q{SET ROLE mallory});
$hold->query_safe(q{BEGIN});
$hold->query_safe("DELETE FROM taskflow.alerts WHERE id = $alert");
q1(q{SET session_replication_role = replica;
INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, state, created_by)
SELECT f.id, now() - g * interval '1 second', '2026-11-30', 'schedule', 'scheduled', 'mallory'
  FROM taskflow.flows f, generate_series(1, 3000) g WHERE f.name = 'ms';});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 3000 FROM taskflow.deferred WHERE alert_id = $alert", 60),
	'every overdue run\'s SLA delivery is deferred');
ok(beats_go_on(6), 'alice\'s flow goes on');
my $noted = () = slurp_file($node->logfile) =~ /alert $alert of flow \d+ has an uncommitted change/g;
cmp_ok($noted, '<=', 3000, "each was tried once, not at every pass ($noted)");
$hold->query_safe(q{ROLLBACK});
$hold->quit;
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM taskflow.deferred", 120), 'all done once the DELETE rolled back');
is(q1("SELECT count(*) || ' ' || count(DISTINCT run_id) FROM taskflow.alert_deliveries WHERE alert_id = $alert"),
	'3000 3000', 'one SLA delivery per overdue run');
ok(beats_go_on(2), 'alice\'s flow goes on');

$node->stop;
done_testing();
