# Event triggers across flows, suspend/resume of a running run, priority
# under a worker shortage (sql/src/93_events.sql; docs/operations.md).
#  - a flow runs (trigger 'event') when all of its upstream flows have a
#    succeeded run for the same bizdate: created in the transaction that
#    marks the upstream succeeded, exactly once per (flow, bizdate), also
#    when the upstream is rerun and across an immediate restart;
#  - a disabled downstream flow is not triggered;
#  - across owners only where the upstream's owner allowed it;
#  - suspend_run: no node of the run starts while suspended, running nodes
#    finish; resume_run: the run finishes;
#  - priority: with one worker, the ready nodes of high-priority flows start
#    before those of older low-priority runs (same owner).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

# one worker: a worker shortage whenever two nodes are ready
my $node = TaskflowTest->start_node('events', max_workers => 1);

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE TABLE public.ev_log (flow text, bizdate date, at timestamptz DEFAULT clock_timestamp(),
                            seq bigserial);
GRANT INSERT, SELECT ON public.ev_log TO PUBLIC;
GRANT USAGE ON SEQUENCE public.ev_log_seq_seq TO PUBLIC;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
});

# a flow with one node that logs its flow and bizdate
sub logging_flow
{
	my ($name, %opt) = @_;
	my $owner = $opt{owner} ? ", owner => '$opt{owner}'" : '';
	my $lock = $opt{lock} ? "SELECT pg_advisory_xact_lock($opt{lock}); " : '';
	q1(qq{
SELECT taskflow.create_flow('$name'$owner);
SELECT taskflow.add_node('$name', 'n', 'sql',
    \$\$${lock}INSERT INTO public.ev_log (flow, bizdate) VALUES ('\${flow}', '\${bizdate}')\$\$,
    retries => 2, retry_delay => '1 second');
});
}

sub event_runs
{
	my ($flow, $bizdate) = @_;
	return q1(qq{SELECT count(*) FROM taskflow.run_history
	              WHERE flow = '$flow' AND bizdate = '$bizdate' AND trigger = 'event'});
}

sub logged
{
	my ($flow, $bizdate) = @_;
	return q1(qq{SELECT count(*) FROM public.ev_log WHERE flow = '$flow' AND bizdate = '$bizdate'});
}

# wait for the event run of $flow for $bizdate; its final state
sub wait_event_run
{
	my ($flow, $bizdate) = @_;
	TaskflowTest->poll($node, 'postgres',
		qq{SELECT count(*) = 1 FROM taskflow.run_history
		    WHERE flow = '$flow' AND bizdate = '$bizdate' AND trigger = 'event'}, 30);
	my $id = q1(qq{SELECT run_id FROM taskflow.run_history
	                WHERE flow = '$flow' AND bizdate = '$bizdate' AND trigger = 'event'});
	return $id eq '' ? 'none' : TaskflowTest->wait_run($node, $id);
}

# ---------------------------------------------------------------- events
logging_flow('up1');
logging_flow('up2');
logging_flow('down');
logging_flow('single', lock => 777);
q1(q{
SELECT taskflow.add_flow_trigger('down', 'up1');
SELECT taskflow.add_flow_trigger('down', 'up2');
SELECT taskflow.add_flow_trigger('single', 'up1');
});

my ($r1, $st) = TaskflowTest->run_and_wait($node, 'up1', bizdate => '2024-01-01');
is($st, 'succeeded', 'upstream up1 succeeded');
# created in the transaction that marked up1 succeeded: there at once
is(event_runs('single', '2024-01-01'), '1', 'the downstream with one upstream has its event run at once');
is(event_runs('down', '2024-01-01'), '0', 'the downstream of two upstreams waits for the second');
is(wait_event_run('single', '2024-01-01'), 'succeeded', 'the event run succeeded');
like(q1(q{SELECT message FROM taskflow.run_history WHERE flow = 'single' AND trigger = 'event'}),
	qr/^triggered by run $r1 of flow "up1"/, 'the event run names the run that triggered it');
is(q1(q{SELECT bizdate FROM taskflow.run_history WHERE flow = 'single' AND trigger = 'event'}),
	'2024-01-01', 'same bizdate');

(undef, $st) = TaskflowTest->run_and_wait($node, 'up2', bizdate => '2024-01-01');
is($st, 'succeeded', 'upstream up2 succeeded');
is(event_runs('down', '2024-01-01'), '1', 'both upstreams succeeded: the downstream runs');
is(wait_event_run('down', '2024-01-01'), 'succeeded', 'and succeeds');
is(logged('down', '2024-01-01'), '1', 'its node ran once');

# a rerun of the upstream that succeeds again does not trigger again
my $rr = q1("SELECT taskflow.rerun($r1, only_failed => false)");
is(TaskflowTest->wait_run($node, $rr), 'succeeded', 'upstream rerun succeeded');
is(event_runs('single', '2024-01-01') . event_runs('down', '2024-01-01'), '11',
	'still one event run per (flow, bizdate) after the rerun');

# a disabled downstream flow is not triggered
q1(q{SELECT taskflow.disable_flow('single')});
(undef, $st) = TaskflowTest->run_and_wait($node, 'up1', bizdate => '2024-01-03');
is(event_runs('single', '2024-01-03'), '0', 'a disabled downstream is not triggered');
q1(q{SELECT taskflow.enable_flow('single')});

# --- across an immediate restart: the upstream's success and the event run
# commit together; after the restart the event run goes on (its node is
# retried) and no second one appears
my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(777)');
(my $r2, $st) = TaskflowTest->run_and_wait($node, 'up1', bizdate => '2024-01-02');
is($st, 'succeeded', 'upstream succeeded for 2024-01-02');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 1 FROM taskflow.node_run_history
	   WHERE flow = 'single' AND bizdate = '2024-01-02' AND state = 'running'}, 30),
	'the event run is running (blocked) when the server stops');
$node->stop('immediate');
eval { $locker->quit; };
$node->start;
TaskflowTest->wait_scheduler($node);
is(wait_event_run('single', '2024-01-02'), 'succeeded', 'after the restart the event run finishes');
is(event_runs('single', '2024-01-02'), '1', 'exactly one event run after the restart');
is(logged('single', '2024-01-02'), '1', 'its node ran (committed) once');
$rr = q1("SELECT taskflow.rerun($r2, only_failed => false)");
is(TaskflowTest->wait_run($node, $rr), 'succeeded', 'upstream rerun after the restart');
is(event_runs('single', '2024-01-02'), '1', 'still exactly one event run');
# the other upstream of "down" completes 2024-01-02 after the restart
(undef, $st) = TaskflowTest->run_and_wait($node, 'up2', bizdate => '2024-01-02');
is(wait_event_run('down', '2024-01-02'), 'succeeded',
	'an upstream success from before the restart counts for a later one');

# --- across owners
logging_flow('a_up', owner => 'alice');
logging_flow('b_down', owner => 'bob');
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET ROLE bob; SELECT taskflow.add_flow_trigger('b_down', 'a_up')});
like($err, qr/flow "a_up" does not exist/, 'a stranger\'s flow cannot be named (it "does not exist")');
q1(q{SET ROLE alice; SELECT taskflow.allow_trigger('a_up', 'bob')});
q1(q{SET ROLE bob; SELECT taskflow.add_flow_trigger('b_down', 'a_up')});
(undef, $st) = TaskflowTest->run_and_wait($node, 'a_up', bizdate => '2024-02-01', user => 'alice');
is($st, 'succeeded', 'alice\'s upstream succeeded');
is(wait_event_run('b_down', '2024-02-01'), 'succeeded', 'allowed: bob\'s flow ran after it');
is(q1(q{SELECT created_by || ' ' || who FROM taskflow.run_history h,
          LATERAL (SELECT string_agg(DISTINCT f.owner::text, ',') AS who FROM taskflow.flows f
                    WHERE f.name = h.flow) o
        WHERE flow = 'b_down' AND trigger = 'event'}),
	'bob bob', 'the event run is bob\'s');
q1(q{SET ROLE alice; SELECT taskflow.disallow_trigger('a_up', 'bob')});
(undef, $st) = TaskflowTest->run_and_wait($node, 'a_up', bizdate => '2024-02-02', user => 'alice');
is($st, 'succeeded', 'alice\'s upstream succeeded again');
is(event_runs('b_down', '2024-02-02'), '0', 'permission taken back: bob\'s flow is not triggered');
is(q1(q{SET ROLE bob; SELECT allowed FROM taskflow.event_triggers WHERE flow = 'b_down'}), 'f',
	'bob sees that his link may not fire');

# ---------------------------------------------------------------- suspend
q1(q{
SELECT taskflow.create_flow('susp');
SELECT taskflow.add_node('susp', 'a', 'sql', 'SELECT pg_advisory_xact_lock(888)');
SELECT taskflow.add_node('susp', 'b', 'sql', $$INSERT INTO public.ev_log (flow) VALUES ('susp')$$, after => ARRAY['a']);
SELECT taskflow.add_node('susp', 'c', 'sql', $$INSERT INTO public.ev_log (flow) VALUES ('susp')$$, after => ARRAY['a']);
});
$locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(888)');
my $sr = TaskflowTest->run_flow($node, 'susp');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.node_run_history WHERE run_id = $sr AND node = 'a'", 30),
	'node a runs');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE bob; SELECT taskflow.suspend_run($sr)");
like($err, qr/run $sr does not exist/, 'a stranger cannot suspend the run');
q1("SELECT taskflow.suspend_run($sr)");
is(q1("SELECT state FROM taskflow.run_history WHERE run_id = $sr"), 'suspended', 'run_history shows it suspended');
is(q1(q{SELECT running_runs || ' ' || suspended_runs FROM taskflow.flow_status WHERE flow = 'susp'}),
	'0 1', 'flow_status counts it');
$locker->query_safe('SELECT pg_advisory_unlock(888)');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'succeeded' FROM taskflow.node_run_history WHERE run_id = $sr AND node = 'a'", 30),
	'the running node finishes while the run is suspended');
sleep 3;
is(TaskflowTest->node_states($node, $sr), 'a=succeeded,b=pending,c=pending',
	'no node starts while the run is suspended');
is(q1(q{SELECT count(*) FROM public.ev_log WHERE flow = 'susp'}), '0', 'nothing ran');
is(q1("SELECT state FROM taskflow.runs WHERE id = $sr"), 'suspended', 'the run stays suspended');
q1("SELECT taskflow.resume_run($sr)");
is(TaskflowTest->wait_run($node, $sr), 'succeeded', 'after resume_run the run finishes');
is(q1(q{SELECT count(*) FROM public.ev_log WHERE flow = 'susp'}), '2', 'its remaining nodes ran');
$locker->quit;
# a suspended run can be canceled
$locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(888)');
$sr = TaskflowTest->run_flow($node, 'susp');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.node_run_history WHERE run_id = $sr AND node = 'a'", 30),
	'node a runs again');
q1("SELECT taskflow.suspend_run($sr)");
q1("SELECT taskflow.cancel_run($sr)");
is(TaskflowTest->wait_run($node, $sr), 'canceled', 'a suspended run can be canceled');
$locker->quit;

# ---------------------------------------------------------------- priority
# one worker, held by a blocker; three older runs of low-priority flows and
# three newer runs of high-priority flows become ready together
q1(q{
SELECT taskflow.create_flow('blocker');
SELECT taskflow.add_node('blocker', 'n', 'sql', 'SELECT pg_advisory_xact_lock(999)');
});
for my $i (1 .. 3)
{
	logging_flow("p_low$i");
	logging_flow("p_high$i");
	q1(qq{SELECT taskflow.alter_flow('p_low$i', priority => 2);
	      SELECT taskflow.alter_flow('p_high$i', priority => 9)});
}
$locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(999)');
my $br = TaskflowTest->run_flow($node, 'blocker');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.node_run_history WHERE run_id = $br", 30),
	'the blocker holds the only worker');
my $t0 = q1('SELECT clock_timestamp()');
TaskflowTest->run_flow($node, "p_low$_", bizdate => '2024-03-01') for 1 .. 3;
TaskflowTest->run_flow($node, "p_high$_", bizdate => '2024-03-01') for 1 .. 3;
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 6 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name LIKE 'p\_%' AND r.state = 'running'}, 30),
	'six runs wait for the worker');
$locker->query_safe('SELECT pg_advisory_unlock(999)');
$locker->quit;
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 6 FROM public.ev_log WHERE flow LIKE 'p\_%'}, 60),
	'all six ran');
my $order = q1(q{SELECT string_agg(flow, ' ' ORDER BY seq) FROM public.ev_log WHERE flow LIKE 'p\_%'});
diag("start order with one worker: $order");
my @order = split / /, $order;
is(scalar(grep { /^p_high/ } @order[0 .. 2]), 3, 'the three high-priority flows ran first');
is(join(' ', @order[3 .. 5]), 'p_low1 p_low2 p_low3', 'then the low ones, oldest first');

# priority orders an owner's own nodes, never one owner before another:
# bob's older runs of priority 1 are not passed by alice's newer ones of 10
logging_flow('o_bob', owner => 'bob');
logging_flow('o_alice', owner => 'alice');
q1(q{SELECT taskflow.alter_flow('o_bob', priority => 1, max_active_runs => 5);
     SELECT taskflow.alter_flow('o_alice', priority => 10, max_active_runs => 5)});
$locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(999)');
$br = TaskflowTest->run_flow($node, 'blocker');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT state = 'running' FROM taskflow.node_run_history WHERE run_id = $br", 30),
	'the blocker holds the only worker again');
TaskflowTest->run_flow($node, 'o_bob', bizdate => "2024-04-0$_", user => 'bob') for 1 .. 2;
TaskflowTest->run_flow($node, 'o_alice', bizdate => "2024-04-0$_", user => 'alice') for 1 .. 2;
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 4 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name LIKE 'o\_%' AND r.state = 'running'}, 30),
	'four runs of two owners wait for the worker');
$locker->query_safe('SELECT pg_advisory_unlock(999)');
$locker->quit;
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 4 FROM public.ev_log WHERE flow LIKE 'o\_%'}, 60),
	'all four ran');
$order = q1(q{SELECT string_agg(flow, ' ' ORDER BY seq) FROM public.ev_log WHERE flow LIKE 'o\_%'});
diag("start order of two owners with one worker: $order");
like($order, qr/^o_bob/, 'alice\'s priority 10 does not pass bob\'s older priority-1 node');

done_testing();
