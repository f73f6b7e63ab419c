# Incremental scheduler passes (issue 11): what a pass looks at and what
# wakes it.
#   * flows.next_due: the scheduler notes each flow's next fire time
#     ('infinity' for manual-only / disabled flows); a change the scheduler
#     reads resets it to NULL and the scheduler looks again;
#   * definition changes that do not touch scheduling (nodes, edges,
#     descriptions, flows due hours away) do not wake the scheduler;
#   * runs advance through the change queue: a backlog under max_active_runs
#     drains in order, raising max_active_runs promotes at once, deleting an
#     edge or a node of a running run lets it go on / finish;
#   * a flow whose row a user holds locked does not stall the others, and is
#     scheduled once the lock goes;
#   * the history purge goes in batches (1200 expired runs), keeps running
#     and recent runs.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('incremental');
sub q1 { return $node->safe_psql('postgres', $_[0]); }
# a pass now: a manual run wakes the scheduler (flows that changed but are not
# due soon wake nothing; they are looked at by the next pass, whatever wakes it)
sub kick
{
	q1(q{SELECT taskflow.create_flow('kick'); SELECT taskflow.add_node('kick', 'n', 'sql', 'SELECT 1');})
	  unless q1(q{SELECT count(*) FROM taskflow.flows WHERE name = 'kick'});
	my (undef, $state) = TaskflowTest->run_and_wait($node, 'kick');
	return $state eq 'succeeded';
}

# --- next_due
TaskflowTest->set_clock($node, '2030-01-01 00:30:00+00');
ok(TaskflowTest->poll($node, 'postgres', q{SELECT taskflow._now() = '2030-01-01 00:30:00+00'}, 10),
	'sessions see the test clock');
q1(q{
CREATE TABLE public.beats (flow text, cyctime text);
SELECT taskflow.create_flow('hourly', timezone => 'UTC');
SELECT taskflow.add_node('hourly', 'beat', 'sql', $$INSERT INTO public.beats VALUES ('${flow}', '${cyctime}')$$);
SELECT taskflow.alter_flow('hourly', schedule => '0 * * * *');
SELECT taskflow.create_flow('manual');
SELECT taskflow.add_node('manual', 'n', 'sql', 'SELECT 1');
});
is(q1(q{SELECT count(*) FROM taskflow.flows WHERE name IN ('hourly', 'manual') AND next_due IS NULL}),
	'2', 'new or changed flows: next_due NULL');
ok(kick(), 'a pass');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT next_due = '2030-01-01 01:00:00+00' FROM taskflow.flows WHERE name = 'hourly'}, 30),
	'the scheduler notes the next fire time of a scheduled flow');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT next_due = 'infinity' FROM taskflow.flows WHERE name = 'manual'}, 30),
	'and infinity for a manual-only flow');
q1(q{SELECT taskflow.alter_flow('hourly', description => 'only a description')});
is(q1(q{SELECT next_due FROM taskflow.flows WHERE name = 'hourly'}), '2030-01-01 01:00:00+00',
	'a description change keeps next_due');
like(q1(q{BEGIN;
SELECT taskflow.alter_flow('hourly', schedule => '30 * * * *');
SELECT 'reset: ' || (next_due IS NULL)::text FROM taskflow.flows WHERE name = 'hourly';
ROLLBACK;}), qr/^reset: true$/m, 'a schedule change resets next_due');
TaskflowTest->set_clock($node, '2030-01-01 01:00:01+00');
ok(TaskflowTest->poll($node, 'postgres', q{SELECT count(*) = 1 FROM public.beats}, 30),
	'the flow runs when due');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT next_due = '2030-01-01 02:00:00+00' FROM taskflow.flows WHERE name = 'hourly'}, 30),
	'next_due moves to the next period');
q1(q{SELECT taskflow.disable_flow('hourly')});
ok(kick(), 'a pass');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT next_due = 'infinity' FROM taskflow.flows WHERE name = 'hourly'}, 30),
	'disabled: infinity');
TaskflowTest->set_clock($node, undef);

# --- definition changes that need no pass do not wake the scheduler
my $off = -s $node->logfile;
q1(q{ALTER SYSTEM SET log_min_messages = debug2; SELECT pg_reload_conf();});
ok(TaskflowTest->poll($node, 'postgres', q{SELECT current_setting('log_min_messages') = 'debug2'}, 10),
	'debug2 logging on');
# the pass after the reload (the scheduler's first debug2 line): waited for,
# not slept for, so that it is never counted below
$off = $node->wait_for_log(qr/taskflow scheduler: pass at/, $off);
q1(q{
SELECT taskflow.create_flow('later_' || i, schedule => '0 0 1 1 *', timezone => 'UTC') FROM generate_series(1, 20) i;
SELECT taskflow.add_node('later_' || i, 'a', 'sql', 'SELECT 1') FROM generate_series(1, 20) i;
SELECT taskflow.add_node('later_' || i, 'b', 'sql', 'SELECT 2', after => ARRAY['a']) FROM generate_series(1, 20) i;
SELECT taskflow.alter_node('later_' || i, 'b', body => 'SELECT 3') FROM generate_series(1, 20) i;
SELECT taskflow.alter_flow('later_' || i, description => 'x') FROM generate_series(1, 20) i;
SELECT taskflow.drop_node('later_' || i, 'b') FROM generate_series(1, 20) i;
});
# one statement per call, each its own transaction
q1(join("\n", map { "SELECT taskflow.add_node('later_$_', 'c', 'sql', 'SELECT 4');" } 1 .. 20));
my $passes = () = slurp_file($node->logfile, $off) =~ /taskflow scheduler: pass at/g;
cmp_ok($passes, '<=', 3, "160 definition changes of flows due in months: $passes scheduler pass(es)");
q1(q{ALTER SYSTEM RESET log_min_messages; SELECT pg_reload_conf();});
ok(kick(), 'a pass');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 20 FROM taskflow.flows WHERE name LIKE 'later_%' AND next_due > now() AND next_due < 'infinity'}, 30),
	'the new flows got their next_due at the next pass');

# --- runs advance through the change queue
q1(q{
SELECT taskflow.create_flow('queue', max_active_runs => 1);
SELECT taskflow.add_node('queue', 'a', 'sql', 'SELECT pg_sleep(0.2)');
SELECT taskflow.add_node('queue', 'b', 'sql', 'SELECT 1', after => ARRAY['a']);
});
my @runs = map { TaskflowTest->run_flow($node, 'queue') } 1 .. 4;
is(TaskflowTest->wait_run($node, $runs[-1]), 'succeeded', 'a backlog of 4 runs (max_active_runs 1) drains');
is(q1(qq{SELECT count(*) FROM taskflow.runs WHERE id IN (@{[join ',', @runs]}) AND state = 'succeeded'}),
	'4', 'every run of the backlog succeeded');
is(q1(qq{SELECT count(*) FROM taskflow.runs a JOIN taskflow.runs b ON a.id < b.id
          WHERE a.id IN (@{[join ',', @runs]}) AND b.id IN (@{[join ',', @runs]})
            AND b.started_at < a.finished_at}),
	'0', 'one at a time, oldest first');

q1(q{SELECT taskflow.alter_node('queue', 'a', body => 'SELECT pg_sleep(30)')});
@runs = map { TaskflowTest->run_flow($node, 'queue') } 1 .. 3;
ok(TaskflowTest->poll($node, 'postgres', "SELECT state = 'running' FROM taskflow.runs WHERE id = $runs[0]", 30),
	'first run of the second backlog running');
is(q1("SELECT string_agg(state, ',' ORDER BY id) FROM taskflow.runs WHERE id IN ($runs[1], $runs[2])"),
	'scheduled,scheduled', 'the others wait (max_active_runs 1)');
q1(q{SELECT taskflow.alter_flow('queue', max_active_runs => 3)});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 3 FROM taskflow.runs WHERE id IN (@{[join ',', @runs]}) AND state = 'running'", 20),
	'raising max_active_runs starts the waiting runs at once');
q1("SELECT taskflow.cancel_run(id) FROM taskflow.runs WHERE id IN (@{[join ',', @runs]})");

# deleting an edge / a node of a running run (past the API, which refuses)
q1(q{
SELECT taskflow.create_flow('cut');
SELECT taskflow.add_node('cut', 'w', 'wait', 'false', options => '{"poll_interval": "1 hour"}');
SELECT taskflow.add_node('cut', 'b', 'sql', 'SELECT 1', after => ARRAY['w']);
});
my $cut = TaskflowTest->run_flow($node, 'cut');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'retrying' FROM taskflow.node_run_history WHERE run_id = $cut AND node = 'w'", 30),
	'the wait node waits for its next poll in an hour');
q1(q{DELETE FROM taskflow.edges WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'cut')});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'succeeded' FROM taskflow.node_run_history WHERE run_id = $cut AND node = 'b'", 20),
	'edge deleted: the downstream node runs');
q1(q{DELETE FROM taskflow.nodes WHERE name = 'w' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'cut')});
ok(TaskflowTest->poll($node, 'postgres', "SELECT state = 'succeeded' FROM taskflow.runs WHERE id = $cut", 20),
	'node deleted: the run finishes');
is(q1(q{SELECT count(*) FROM taskflow.sched_queue}), '0', 'the change queue is empty when idle');

# --- a flow locked by a user's open transaction does not stall the others
q1(q{
SELECT taskflow.create_flow('lockme', schedule => 'every 1 second');
SELECT taskflow.add_node('lockme', 'n', 'sql', 'SELECT 1');
SELECT taskflow.create_flow('free', schedule => 'every 1 second');
SELECT taskflow.add_node('free', 'n', 'sql', 'SELECT 1');
});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 2 FROM taskflow.run_history WHERE flow = 'lockme' AND state = 'succeeded'}, 30),
	'every-second flow runs');
my $locker = $node->background_psql('postgres');
$locker->query_safe(q{BEGIN; UPDATE taskflow.flows SET description = 'locked' WHERE name = 'lockme';});
my $t_lock = q1('SELECT clock_timestamp()');
my $runs_since = qq{
SELECT count(*) FILTER (WHERE f.name = 'lockme') || '|' || count(*) FILTER (WHERE f.name = 'free')
  FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
 WHERE r.created_at > '$t_lock'::timestamptz + interval '1 second'};
# (polled, was a 4 s sleep: on busy cores the passes may come later)
ok(TaskflowTest->poll($node, 'postgres',
	qq{SELECT split_part(($runs_since), '|', 2)::int >= 2}, 30),
	'the other flow goes on while one is locked (2 runs)');
my ($locked_runs, $free_runs) = split /\|/, q1($runs_since);
is($locked_runs, '0', 'the locked flow is left alone (no run, the scheduler does not wait for the lock)');
$locker->query_safe('COMMIT');
$locker->quit;
my $t_free = q1('SELECT clock_timestamp()');
ok(TaskflowTest->poll($node, 'postgres',
	qq{SELECT count(*) > 0 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	    WHERE f.name = 'lockme' AND r.created_at > '$t_free'}, 20),
	'once the lock goes, the flow is scheduled again');
q1(q{SELECT taskflow.disable_flow('lockme'); SELECT taskflow.disable_flow('free');});

# --- history purge in batches
q1(q{
SELECT taskflow.create_flow('old');
SELECT taskflow.add_node('old', 'n', 'sql', 'SELECT 1');
WITH r AS (
  INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, state, started_at, finished_at)
  SELECT f.id, timestamptz '2000-01-01' + i * interval '1 hour', '2000-01-01', 'manual', 'succeeded',
         now() - interval '2 days', now() - interval '2 days'
    FROM taskflow.flows f, generate_series(1, 1200) i WHERE f.name = 'old'
  RETURNING id)
INSERT INTO taskflow.node_runs (run_id, node_id, state)
SELECT r.id, n.id, 'succeeded' FROM r, taskflow.nodes n
 WHERE n.flow_id = (SELECT id FROM taskflow.flows WHERE name = 'old');
});
my ($recent) = TaskflowTest->run_and_wait($node, 'old');
q1(q{SELECT taskflow.create_flow('long');
SELECT taskflow.add_node('long', 'n', 'sql', 'SELECT pg_sleep(60)');});
my $long = TaskflowTest->run_flow($node, 'long');
$off = -s $node->logfile;
q1(q{ALTER SYSTEM SET taskflow.history_retention = '1 day';
ALTER SYSTEM SET taskflow.history_purge_interval = '1s';
SELECT pg_reload_conf();});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 0 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'old' AND r.finished_at < now() - interval '1 day'}, 60),
	'1200 expired runs purged');
is(q1("SELECT string_agg(state, ',' ORDER BY id) FROM taskflow.runs WHERE id IN ($recent, $long)"),
	'succeeded,running', 'recent and running runs kept');
is(q1(q{SELECT count(*) FROM taskflow.node_runs nr WHERE NOT EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = nr.run_id)}),
	'0', 'no node run left without its run');
my $purged;
for (1 .. 100)
{
	($purged) = slurp_file($node->logfile, $off) =~ /taskflow: purged (\d+) run\(s\) finished before/;
	last if defined $purged;
	select(undef, undef, undef, 0.1);
}
is($purged, '1200', 'one log line for the whole purge (3 batches of at most 500)');
q1("SELECT taskflow.cancel_run($long)");
q1(q{ALTER SYSTEM RESET taskflow.history_retention; ALTER SYSTEM RESET taskflow.history_purge_interval;
SELECT pg_reload_conf();});

$node->stop;
done_testing();
