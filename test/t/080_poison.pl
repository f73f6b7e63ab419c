# One bad row must not stop scheduling for the whole database.  Rows a
# superuser writes straight into the catalog (past the API's checks): a
# retry_delay of 300000 years (failed attempt, and a node run left
# 'running' by a killed worker), an invalid schedule, an unknown time zone,
# a variable shifted by 300000 years.  Next to them a healthy hourly flow
# keeps its schedule under taskflow.test_clock; the poisoned ones end failed
# with their error in history / flows.schedule_error and a log line.
# Catch-up cap: an every-second flow whose watermark is 30 days back creates
# only taskflow.max_catchup_runs runs, says what it skipped, fast.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TaskflowTest;

my $node = TaskflowTest->start_node('poison');
TaskflowTest->set_clock($node, '2030-01-01 00:30:00+00');
ok(TaskflowTest->poll($node, 'postgres', q{SELECT taskflow._now() = '2030-01-01 00:30:00+00'}, 10),
	'sessions see the test clock');

$node->safe_psql('postgres', q{
CREATE TABLE public.beats (flow text, cyctime text);
-- manual-only first, then the schedule: the watermark starts at the test clock
SELECT taskflow.create_flow('healthy', timezone => 'UTC');
SELECT taskflow.add_node('healthy', 'beat', 'sql', $$INSERT INTO public.beats VALUES ('${flow}', '${cyctime}')$$);
SELECT taskflow.alter_flow('healthy', schedule => '0 * * * *');
SELECT taskflow.create_flow('p_var', timezone => 'UTC');
INSERT INTO taskflow.variables (flow_id, name, definition, pattern, base, shift)
SELECT id, 'far', 'yyyymmdd of bizdate + 300000 years', 'yyyymmdd', 'bizdate', '300000 years'
  FROM taskflow.flows WHERE name = 'p_var';
SELECT taskflow.add_node('p_var', 'n', 'sql', $$SELECT '${far}'$$);
SELECT taskflow.alter_flow('p_var', schedule => '0 * * * *');
SELECT taskflow.create_flow('p_sched', timezone => 'UTC');
SELECT taskflow.add_node('p_sched', 'n', 'sql', 'SELECT 1');
SELECT taskflow.alter_flow('p_sched', schedule => '0 * * * *');
SELECT taskflow.create_flow('p_tz', timezone => 'UTC');
SELECT taskflow.add_node('p_tz', 'n', 'sql', 'SELECT 1');
SELECT taskflow.alter_flow('p_tz', schedule => '0 * * * *');
-- written past the API
UPDATE taskflow.flows SET schedule = 'every blue moon' WHERE name = 'p_sched';
UPDATE taskflow.flows SET timezone = 'Mars/Olympus_Mons' WHERE name = 'p_tz';
SELECT taskflow.create_flow('p_retry');
SELECT taskflow.add_node('p_retry', 'boom', 'sql', 'SELECT 1/0', retries => 1);
SELECT taskflow.add_node('p_retry', 'after', 'sql', 'SELECT 1', after => ARRAY['boom']);
UPDATE taskflow.nodes SET retry_delay = '300000 years'
 WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'p_retry');
SELECT taskflow.create_flow('p_killed');
SELECT taskflow.add_node('p_killed', 'sleepy', 'sql', 'SELECT pg_sleep(60)', retries => 1);
UPDATE taskflow.nodes SET retry_delay = '300000 years'
 WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'p_killed');
});

# a failing node whose retry would be 300000 years away
my ($run, $state) = TaskflowTest->run_and_wait($node, 'p_retry');
is($state, 'failed', 'huge retry_delay: the run ends failed');
like($node->safe_psql('postgres', "SELECT state || ' ' || sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'boom'"),
	qr/^failed 22012 division by zero\n\(not retried: retry_delay is beyond the timestamp range\)/,
	'huge retry_delay: failed, not retried, says why');

# a wait node with a delay and poll interval of 300000 years (its timeout wins)
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('p_wait');
SELECT taskflow.add_node('p_wait', 'w', 'wait', 'false', timeout => '2 seconds');
UPDATE taskflow.nodes SET options = '{"poll_interval": "300000 years", "delay": "300000 years"}'
 WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'p_wait');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'p_wait');
is($node->safe_psql('postgres', "SELECT state || ' ' || sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	'failed 57014 wait node "w" timed out after 2000 ms', 'huge delay and poll interval: the wait times out');

# an option that is no interval: the node cannot start, fails with the error
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('p_opt');
SELECT taskflow.add_node('p_opt', 'w', 'wait', 'true');
UPDATE taskflow.nodes SET options = '{"poll_interval": "every now and then"}'
 WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'p_opt');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'p_opt');
is($state, 'failed', 'unreadable option: the run ends failed');
like($node->safe_psql('postgres', "SELECT state || ' ' || sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	qr/^failed 22007 the node cannot start: invalid input syntax for type interval/, 'with the error, at once');

# a node run left 'running' by a killed worker, retry 300000 years away
my $killed = TaskflowTest->run_flow($node, 'p_killed');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.node_runs WHERE run_id = $killed", 30), 'sleepy node running');
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'taskflow node'});
is(TaskflowTest->wait_run($node, $killed), 'failed', 'recovery of the killed node run: run failed');
like($node->safe_psql('postgres', "SELECT state || ' ' || sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $killed"),
	qr/^failed 57P01 node worker .*exited without recording a result/, 'recovered node run failed (no retry)');

# the hourly schedule goes on, hour by hour, next to the poisoned flows
for my $h (1 .. 3)
{
	TaskflowTest->set_clock($node, sprintf('2030-01-01 %02d:00:01+00', $h));
	ok(TaskflowTest->poll($node, 'postgres', "SELECT count(*) = $h FROM public.beats WHERE flow = 'healthy'", 30),
		"healthy flow ran for hour $h");
	ok(TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) = $h FROM taskflow.run_history WHERE flow = 'p_var' AND state = 'failed'", 30),
		"p_var: hour $h run failed");
}
is($node->safe_psql('postgres', q{SELECT string_agg(cyctime, ',' ORDER BY cyctime) FROM public.beats}),
	'2030-01-01 01:00:00,2030-01-01 02:00:00,2030-01-01 03:00:00', 'healthy: one run per hour, on time');
like($node->safe_psql('postgres', q{SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE flow = 'p_var' LIMIT 1}),
	qr/^22008 .*out of range/, 'p_var: the overflow is in node_run history');
like($node->safe_psql('postgres', q{SELECT schedule_error FROM taskflow.flows WHERE name = 'p_sched'}),
	qr/every blue moon.*SQLSTATE/, 'p_sched: schedule_error recorded');
like($node->safe_psql('postgres', q{SELECT schedule_error FROM taskflow.flow_status WHERE flow = 'p_tz'}),
	qr/Mars\/Olympus_Mons.*SQLSTATE/, 'p_tz: schedule_error in flow_status');
is($node->safe_psql('postgres', q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name IN ('p_sched', 'p_tz')}),
	'0', 'no runs for the unschedulable flows');
is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || count(next_run) FROM taskflow.flow_status}),
	'8 2', 'flow_status still answers for every flow (next_run NULL where it cannot be computed)');
ok($node->log_contains(qr/WARNING:  taskflow: cannot schedule flow "p_sched": .*every blue moon/),
	'p_sched: logged');
my $log = slurp_file($node->logfile);
my $n = () = $log =~ /cannot schedule flow "p_tz"/g;
is($n, 1, 'the error is logged once, not on every pass');

# repaired: the flow schedules again and the error is cleared
$node->safe_psql('postgres', q{UPDATE taskflow.flows SET timezone = 'UTC' WHERE name = 'p_tz'});
ok(TaskflowTest->poll($node, 'postgres', q{SELECT schedule_error IS NULL FROM taskflow.flows WHERE name = 'p_tz'}, 30),
	'p_tz repaired: schedule_error cleared');

# --- a run the scheduler cannot advance (a trigger a superuser put on runs)
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('p_start');
SELECT taskflow.add_node('p_start', 'n', 'sql', 'SELECT 1');
SELECT taskflow.create_flow('p_finish');
SELECT taskflow.add_node('p_finish', 'n', 'sql', 'SELECT 1');
SELECT taskflow.create_flow('fine');
SELECT taskflow.add_node('fine', 'n', 'sql', 'SELECT 1');
CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT name FROM taskflow.flows WHERE id = NEW.flow_id) = 'p_start' AND NEW.state = 'running'
       OR (SELECT name FROM taskflow.flows WHERE id = NEW.flow_id) = 'p_finish' AND NEW.state = 'succeeded' THEN
        RAISE EXCEPTION 'poisoned run %', NEW.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER poison BEFORE UPDATE ON taskflow.runs FOR EACH ROW EXECUTE FUNCTION public.poison();
});
my $rs = TaskflowTest->run_flow($node, 'p_start');
my $rf = TaskflowTest->run_flow($node, 'p_finish');
my $ok = TaskflowTest->run_flow($node, 'fine');
is(TaskflowTest->wait_run($node, $ok), 'succeeded', 'a healthy run next to runs that cannot be advanced succeeds');
is(TaskflowTest->wait_run($node, $rs), 'failed', 'the run that cannot start ended failed');
like($node->safe_psql('postgres', "SELECT message FROM taskflow.runs WHERE id = $rs"),
	qr/^the scheduler cannot start this run: poisoned run $rs \(SQLSTATE P0001\)/, 'with its error');
is(TaskflowTest->wait_run($node, $rf), 'failed', 'the run that cannot finish ended failed');
like($node->safe_psql('postgres', "SELECT message FROM taskflow.runs WHERE id = $rf"),
	qr/^the scheduler cannot advance this run: poisoned run $rf \(SQLSTATE P0001\)/, 'with its error');
ok($node->log_contains(qr/WARNING:  taskflow: run $rf: the scheduler cannot advance this run/), 'logged');
$node->safe_psql('postgres', 'DROP TRIGGER poison ON taskflow.runs');

# --- catch-up cap
$node->safe_psql('postgres', q{ALTER SYSTEM SET taskflow.max_catchup_runs = 5; SELECT pg_reload_conf();
SELECT taskflow.create_flow('ticker', timezone => 'UTC');
SELECT taskflow.add_node('ticker', 'n', 'sql', 'SELECT 1');
});
ok(TaskflowTest->poll($node, 'postgres', q{SELECT current_setting('taskflow.max_catchup_runs') = '5'}, 10),
	'max_catchup_runs reloaded');
my $t0 = time();
$node->safe_psql('postgres', q{
SELECT taskflow.alter_flow('ticker', schedule => 'every 1 second');
UPDATE taskflow.flows SET scheduled_until = taskflow._now() - interval '30 days' WHERE name = 'ticker';
});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 5 FROM taskflow.run_history WHERE flow = 'ticker' AND state = 'succeeded'}, 60),
	'5 catch-up runs ran');
my $took = time() - $t0;
is($node->safe_psql('postgres', q{SELECT count(*) FROM taskflow.run_history WHERE flow = 'ticker'}),
	'5', 'only taskflow.max_catchup_runs runs were created');
is($node->safe_psql('postgres', q{SELECT string_agg(to_char(scheduled_for AT TIME ZONE 'UTC', 'HH24:MI:SS'), ',' ORDER BY scheduled_for) FROM taskflow.run_history WHERE flow = 'ticker'}),
	'02:59:57,02:59:58,02:59:59,03:00:00,03:00:01', 'the most recent periods');
like($node->safe_psql('postgres', q{SELECT message FROM taskflow.run_history WHERE flow = 'ticker' ORDER BY scheduled_for LIMIT 1}),
	qr/^catch-up of flow "ticker" skipped at least 100000 missed period\(s\) from 2029-12-02 03:00:02\+00 to 2030-01-01 02:59:56\+00 \(taskflow.max_catchup_runs = 5/,
	'the first run created says what was skipped');
ok($node->log_contains(qr/WARNING:  catch-up of flow "ticker" skipped at least 100000 missed period\(s\) from 2029-12-02 03:00:02/),
	'the skip is logged');
cmp_ok($took, '<', 20, sprintf('2.6 million missed periods handled in %.1f s', $took));

# an exact count below the enumeration bound
$node->safe_psql('postgres', q{SELECT taskflow.disable_flow('ticker')});
TaskflowTest->set_clock($node, '2030-01-01 03:10:01+00');
ok(TaskflowTest->poll($node, 'postgres', q{SELECT taskflow._now() = '2030-01-01 03:10:01+00'}, 10),
	'sessions see the new test clock');
$node->safe_psql('postgres', q{
UPDATE taskflow.flows SET scheduled_until = taskflow._now() - interval '1 minute' WHERE name = 'ticker';
SELECT taskflow.enable_flow('ticker');});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 10 FROM taskflow.run_history WHERE flow = 'ticker' AND state = 'succeeded'}, 60),
	'5 more catch-up runs ran');
like($node->safe_psql('postgres', q{SELECT message FROM taskflow.run_history WHERE flow = 'ticker' AND message IS NOT NULL ORDER BY scheduled_for DESC LIMIT 1}),
	qr/^catch-up of flow "ticker" skipped 55 missed period\(s\) from 2030-01-01 03:09:02\+00 to 2030-01-01 03:09:56\+00/,
	'exact count of a short skip');

$node->stop;
done_testing();
