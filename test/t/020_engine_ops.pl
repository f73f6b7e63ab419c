# Run operations and failure handling: retries, timeout, cancel, rerun of
# failed nodes only, backfill (bizdate order, max_active_runs, skip existing),
# wait and notify nodes, purge_history.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use TaskflowTest;

my $node = TaskflowTest->start_node('ops');
$node->safe_psql('postgres', q{
CREATE SEQUENCE public.attempts;
CREATE TABLE public.counter (n int);
CREATE TABLE public.flag (ok boolean);
INSERT INTO public.flag VALUES (false);
CREATE TABLE public.done (bizdate date, run_id bigint, at timestamptz DEFAULT clock_timestamp());
});

# --- retries: fails twice, then succeeds
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('retry');
SELECT taskflow.add_node('retry', 'flaky', 'sql', $$
  INSERT INTO public.counter VALUES (nextval('public.attempts'));
  DO $d$ BEGIN IF (SELECT max(n) FROM public.counter) < 3 THEN RAISE EXCEPTION 'not yet' USING ERRCODE = '55000'; END IF; END $d$;
$$, retries => 3, retry_delay => '200 ms');
});
my ($run, $state) = TaskflowTest->run_and_wait($node, 'retry');
is($state, 'succeeded', 'flaky node succeeded after retries');
is($node->safe_psql('postgres', "SELECT attempts || ',' || state FROM taskflow.node_run_history WHERE run_id = $run"),
	'3,succeeded', 'three attempts recorded');
# the failed attempts raised after their INSERT in the same transaction
is($node->safe_psql('postgres', 'SELECT string_agg(n::text, \',\') FROM public.counter'), '3',
	'failed attempts rolled back (script and success record are one transaction)');

# --- retries exhausted
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('always_fails');
SELECT taskflow.add_node('always_fails', 'boom', 'sql', $$SELECT 1/0$$, retries => 1, retry_delay => '0');
});
($run, $state) = TaskflowTest->run_and_wait($node, 'always_fails');
is($state, 'failed', 'node failing every attempt fails the run');
is($node->safe_psql('postgres', "SELECT attempts || ',' || sqlstate || ',' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	'2,22012,division by zero', 'attempts = 1 + retries; error recorded');

# --- timeout
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('slow');
SELECT taskflow.add_node('slow', 'sleepy', 'sql', $$SELECT pg_sleep(30)$$, timeout => '1 second');
});
my $t0 = time();
($run, $state) = TaskflowTest->run_and_wait($node, 'slow');
my $took = time() - $t0;
is($state, 'failed', 'timed out node fails');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run"),
	qr/^57014 node timed out after 1000 ms/, 'timeout recorded as 57014');
cmp_ok($took, '<', 10, 'timeout enforced promptly');

# --- cancel
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('cancelme');
SELECT taskflow.add_node('cancelme', 'long', 'sql', $$SELECT pg_sleep(60)$$);
SELECT taskflow.add_node('cancelme', 'next', 'sql', $$SELECT 1$$, after => ARRAY['long']);
});
$run = TaskflowTest->run_flow($node, 'cancelme');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node cancelme.long run $run'", 30),
	'long node is running (visible in pg_stat_activity)');
my $long_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node cancelme.long run $run'");
$node->safe_psql('postgres', "SELECT taskflow.cancel_run($run)");
is(TaskflowTest->wait_run($node, $run), 'canceled', 'run canceled');
is(TaskflowTest->node_states($node, $run), 'long=canceled,next=canceled', 'node runs canceled');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $long_pid", 10),
	'node worker terminated');

# --- rerun of failed nodes only
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('partial');
SELECT taskflow.add_node('partial', 'good', 'sql', $$INSERT INTO public.done(bizdate, run_id) VALUES ('${bizdate}', ${run_id})$$);
SELECT taskflow.add_node('partial', 'check', 'sql', $$DO $d$ BEGIN IF NOT (SELECT ok FROM public.flag) THEN RAISE EXCEPTION 'flag not set'; END IF; END $d$; $$);
SELECT taskflow.add_node('partial', 'final', 'sql', $$SELECT 1$$, after => ARRAY['good', 'check']);
});
($run, $state) = TaskflowTest->run_and_wait($node, 'partial', bizdate => '2024-01-10');
is($state, 'failed', 'partial flow failed first');
is(TaskflowTest->node_states($node, $run), 'check=failed,final=upstream_failed,good=succeeded',
	'independent branch still finished');
$node->safe_psql('postgres', 'UPDATE public.flag SET ok = true');
my $rerun = $node->safe_psql('postgres', "SELECT taskflow.rerun($run)");
is(TaskflowTest->wait_run($node, $rerun), 'succeeded', 'rerun succeeded');
is(TaskflowTest->node_states($node, $rerun), 'check=succeeded,final=succeeded,good=skipped',
	'succeeded node skipped, failed ones re-executed');
is($node->safe_psql('postgres', "SELECT trigger || ',' || rerun_of || ',' || bizdate FROM taskflow.runs WHERE id = $rerun"),
	"rerun,$run,2024-01-10", 'rerun keeps bizdate and links the old run');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.done WHERE bizdate = '2024-01-10'"), '1',
	'good node ran once');
my ($ret, $out, $err) = $node->psql('postgres', "SELECT taskflow.rerun($rerun, false)");
my $full = $out;
is(TaskflowTest->wait_run($node, $full), 'succeeded', 'full rerun succeeded');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.done WHERE bizdate = '2024-01-10'"), '2',
	'full rerun re-executed every node');

# --- backfill: one run per bizdate, in order, one at a time (max_active_runs 1)
$node->safe_psql('postgres', q{
TRUNCATE public.done;
SELECT taskflow.create_flow('daily', schedule => '0 5 * * *', timezone => 'Asia/Shanghai', enabled => false);
SELECT taskflow.add_node('daily', 'load', 'sql', $$SELECT pg_sleep(0.2); INSERT INTO public.done(bizdate, run_id) VALUES ('${bizdate}', ${run_id})$$);
});
my $ids = $node->safe_psql('postgres', "SELECT string_agg(x::text, ',') FROM taskflow.backfill('daily', '2024-02-01', '2024-02-04') x");
my @ids = split /,/, $ids;
is(scalar(@ids), 4, 'backfill created 4 runs');
TaskflowTest->wait_run($node, $_) for @ids;
is($node->safe_psql('postgres', "SELECT string_agg(state, ',' ORDER BY bizdate) FROM taskflow.runs WHERE id IN ($ids)"),
	'succeeded,succeeded,succeeded,succeeded', 'backfill runs succeeded');
is($node->safe_psql('postgres', "SELECT string_agg(to_char(scheduled_for AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI') || '/' || trigger, ',' ORDER BY bizdate) FROM taskflow.runs WHERE id IN ($ids)"),
	'02-02 05:00/backfill,02-03 05:00/backfill,02-04 05:00/backfill,02-05 05:00/backfill',
	'scheduled_for is the natural cyctime of each bizdate');
is($node->safe_psql('postgres', 'SELECT string_agg(bizdate::text, \',\' ORDER BY at) FROM public.done'),
	'2024-02-01,2024-02-02,2024-02-03,2024-02-04', 'executed in bizdate order');
is($node->safe_psql('postgres', "SELECT bool_and(r2.started_at >= r1.finished_at) FROM taskflow.runs r1 JOIN taskflow.runs r2 ON r2.flow_id = r1.flow_id AND r2.bizdate = r1.bizdate + 1 WHERE r1.id IN ($ids) AND r2.id IN ($ids)"),
	't', 'max_active_runs = 1: runs did not overlap');
($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM taskflow.backfill('daily', '2024-02-03', '2024-02-05')");
is($out, '1', 'overlapping backfill creates only the missing period');
like($err, qr/bizdate 2024-02-03 already has run/, 'skipped periods get a NOTICE');
($ret, $out, $err) = $node->psql('postgres', "SELECT taskflow.backfill('daily', '2024-02-05', '2024-02-01')");
like($err, qr/is after to_bizdate/, 'reversed range rejected');

# --- wait and notify nodes
$node->safe_psql('postgres', q{
CREATE TABLE public.ready (ok boolean);
SELECT taskflow.create_flow('sensor');
SELECT taskflow.add_node('sensor', 'wait_ready', 'wait', $$EXISTS (SELECT 1 FROM public.ready WHERE ok)$$, options => '{"poll_interval": "100 ms", "delay": "200 ms"}');
SELECT taskflow.add_node('sensor', 'tell', 'notify', options => '{"channel": "tf_test", "payload": "${flow} done for ${bizdate}"}', after => ARRAY['wait_ready']);
SELECT taskflow.add_node('sensor', 'never', 'wait', $$false$$, options => '{"poll_interval": "100 ms"}', timeout => '1 second');
});
$run = TaskflowTest->run_flow($node, 'sensor', bizdate => '2024-05-05');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.node_run_history WHERE run_id = $run AND node = 'wait_ready'", 30),
	'wait node running');
$node->safe_psql('postgres', 'INSERT INTO public.ready VALUES (true)');
is(TaskflowTest->wait_run($node, $run), 'failed', 'sensor run: never-true wait timed out');
is(TaskflowTest->node_states($node, $run), 'never=failed,tell=succeeded,wait_ready=succeeded',
	'wait node met its condition, notify ran, the other wait timed out');
like($node->safe_psql('postgres', "SELECT rendered FROM taskflow.node_run_history WHERE run_id = $run AND node = 'tell'"),
	qr/NOTIFY tf_test, 'sensor done for 2024-05-05'/, 'notify payload rendered');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'never'"),
	qr/^57014 wait node "never" timed out/, 'wait timeout recorded');

# --- purge_history
my $finished = $node->safe_psql('postgres', "SELECT count(*) FROM taskflow.runs WHERE state IN ('succeeded','failed','canceled')");
is($node->safe_psql('postgres', "SELECT taskflow.purge_history('1 hour')"), '0', 'nothing older than an hour');
is($node->safe_psql('postgres', "SELECT taskflow.purge_history('0')"), $finished,
	'purge_history(0) deletes every finished run');
is($node->safe_psql('postgres', 'SELECT count(*) FROM taskflow.node_runs'), '0', 'node runs went with them');

# --- drop_flow(force => true) while a node runs: the worker is stopped first
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('doomed');
SELECT taskflow.add_node('doomed', 'slow', 'sql', 'SELECT pg_sleep(60)');
});
$run = TaskflowTest->run_flow($node, 'doomed');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE 'taskflow node doomed.slow%'", 30),
	'doomed node is running');
my ($drc, $dout, $derr) = $node->psql('postgres', q{SELECT taskflow.drop_flow('doomed')});
like($derr, qr/has 1 active run/, 'drop_flow refuses a flow with an active run');
$node->safe_psql('postgres', q{SELECT taskflow.drop_flow('doomed', force => true)});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE 'taskflow node doomed.slow%'", 10),
	'drop_flow(force) terminated the node worker');
is($node->safe_psql('postgres', "SELECT count(*) FROM taskflow.flows WHERE name = 'doomed'"), '0',
	'the flow is gone');

$node->stop;
done_testing();
