# Warm node workers (worker.c, scheduler.c tf_reserve_worker_slot):
#  - a worker that finished a node run takes the next one of the same owner
#    (same pid in node_runs.worker_pid), never one of another owner;
#  - the session is reset between node runs (settings, among them
#    default_transaction_read_only, role, temporary tables, prepared
#    statements, WITH HOLD cursors, advisory locks, sequence state): the
#    next node run on the same worker sees none of it (LISTEN is refused in
#    background workers);
#  - the owner checks run for every node run, not once per process;
#  - taskflow.worker_max_nodes recycles, taskflow.worker_idle_timeout ends
#    idle workers, taskflow.worker_reuse = off starts one worker per node;
#  - a pooled worker terminated or killed (-9) mid-node: the node run is
#    recovered; cancel_run terminates the worker of that run only, and a
#    worker that ran a node of the canceled run earlier and now serves
#    another run is left alone.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TaskflowTest;

my $node = TaskflowTest->start_node('pool', max_workers => 4,
	conf => "taskflow.worker_idle_timeout = 300\nrestart_after_crash = on\n");

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE extra NOLOGIN;
GRANT extra TO alice;
CREATE TABLE public.seen (flow text, node text, pid int, who text, role text);
CREATE TABLE public.probe (pid int, work_mem text, role text, who text, temp_gone boolean,
                           prepared bigint, cursors bigint, advisory bigint,
                           currval text);
CREATE SEQUENCE public.sq;
GRANT ALL ON public.seen, public.probe TO PUBLIC;
GRANT ALL ON SEQUENCE public.sq TO PUBLIC;
});

sub q1 { return $node->safe_psql('postgres', $_[0]); }

sub reload
{
	my ($name, $value) = @_;
	my $before = q1("SELECT current_setting('$name')");
	q1(defined $value ? "ALTER SYSTEM SET $name = '$value'" : "ALTER SYSTEM RESET $name");
	q1('SELECT pg_reload_conf()');
	# a new session sees the new value once the postmaster has reloaded,
	# and by then it has signalled every process: a worker applies the
	# setting before its next node run (was a 300 ms sleep: on busy cores
	# the postmaster may take longer)
	ok(TaskflowTest->poll($node, 'postgres', "SELECT current_setting('$name') <> '$before'", 30),
		"$name reloaded") or die "$name was not reloaded";
	return;
}

# a chain of $n trivial nodes owned by $owner that records who ran it
sub chain
{
	my ($flow, $owner, $n) = @_;
	q1(qq{SELECT taskflow.create_flow('$flow', owner => '$owner')});
	for my $i (1 .. $n)
	{
		my $after = $i > 1 ? ", after => ARRAY['n" . ($i - 1) . "']" : '';
		q1(qq{SELECT taskflow.add_node('$flow', 'n$i', 'sql',
  \$\$INSERT INTO public.seen VALUES ('$flow', 'n$i', pg_backend_pid(), current_user, current_setting('role'))\$\$$after)});
	}
	return;
}

# node runs per worker pid of a run: "pid:count,..." and the largest count
sub per_pid
{
	my ($run) = @_;
	my @c = split /,/, q1("SELECT string_agg(c::text, ',' ORDER BY c DESC) FROM (SELECT count(*) c FROM taskflow.node_runs WHERE run_id = $run GROUP BY worker_pid) x");
	return (scalar(@c), $c[0] // 0);
}

# --- 1. reuse within one owner
chain('ca', 'alice', 6);
my ($run, $state) = TaskflowTest->run_and_wait($node, 'ca');
is($state, 'succeeded', 'chain of 6 succeeded');
my ($npids, $most) = per_pid($run);
diag("chain of 6: $npids worker process(es), at most $most node runs on one");
cmp_ok($most, '>=', 2, 'a worker ran several node runs of the chain (reuse)');
cmp_ok($npids, '<', 6, 'fewer worker processes than node runs');
is(q1("SELECT count(*) FROM public.seen WHERE flow = 'ca' AND (who <> 'alice' OR role <> 'none')"), '0',
	'every node ran as the owner');

# --- 2. never across owners: two owners' chains interleaved
chain('cb', 'bob', 6);
for (1 .. 2)
{
	my $ra = TaskflowTest->run_flow($node, 'ca');
	my $rb = TaskflowTest->run_flow($node, 'cb');
	is(TaskflowTest->wait_run($node, $ra) . ',' . TaskflowTest->wait_run($node, $rb),
		'succeeded,succeeded', 'both owners\' chains succeeded');
}
is(q1(q{SELECT count(*) FROM (SELECT pid FROM public.seen GROUP BY pid HAVING count(DISTINCT who) > 1) x}), '0',
	'no worker process ran node runs of two owners');
is(q1(q{SELECT count(*) FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id
        JOIN taskflow.flows f ON f.id = r.flow_id
        WHERE nr.worker_pid IN (SELECT worker_pid FROM taskflow.node_runs nr2 JOIN taskflow.runs r2 ON r2.id = nr2.run_id
                                 JOIN taskflow.flows f2 ON f2.id = r2.flow_id WHERE f2.owner <> f.owner)}), '0',
	'node_runs.worker_pid never shared between owners');

# --- 3. no session state leaks from one node run to the next on a worker
q1(q{SELECT taskflow.create_flow('leak', owner => 'alice')});
q1(q{SELECT taskflow.add_node('leak', 'dirty', 'sql', $$
SET work_mem = '7777kB';
SET ROLE extra;
RESET ROLE;
SET ROLE extra;
CREATE TEMP TABLE tt (x int);
PREPARE pp AS SELECT 1;
DECLARE cc CURSOR WITH HOLD FOR SELECT 1;
SET default_transaction_read_only = on;
SELECT pg_advisory_lock(4242);
SELECT nextval('public.sq');
INSERT INTO public.seen VALUES ('leak', 'dirty', pg_backend_pid(), current_user, current_setting('role'));
$$)});
q1(q{SELECT taskflow.add_node('leak', 'check', 'sql', $$
DO $d$
DECLARE cv text;
BEGIN
    BEGIN
        cv := currval('public.sq')::text;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        cv := 'undefined';
    END;
    INSERT INTO public.probe
    SELECT pg_backend_pid(), current_setting('work_mem'), current_setting('role'), current_user,
           to_regclass('pg_temp.tt') IS NULL,
           (SELECT count(*) FROM pg_prepared_statements),
           (SELECT count(*) FROM pg_cursors),
           (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
           cv;
END $d$;
$$, after => ARRAY['dirty'])});
my $same = 0;
for my $try (1 .. 5)
{
	($run, $state) = TaskflowTest->run_and_wait($node, 'leak');
	is($state, 'succeeded', "leak run $try succeeded")
	  or diag(q1("SELECT string_agg(node || ': ' || coalesce(error, ''), E'\n') FROM taskflow.node_run_history WHERE run_id = $run"));
	my $pids = q1("SELECT count(DISTINCT worker_pid) FROM taskflow.node_runs WHERE run_id = $run");
	if ($pids eq '1')
	{
		$same++;
		last if $same >= 2;
	}
}
cmp_ok($same, '>=', 1, 'the check node ran on the worker that dirtied its session');
is(q1(q{SELECT string_agg(DISTINCT who || '/' || role, ',') FROM public.seen WHERE flow = 'leak'}), 'extra/extra',
	'the dirty node did change its role');
is(q1(q{SELECT string_agg(DISTINCT concat_ws(' ', work_mem, role, who, temp_gone, prepared, cursors, advisory, currval), ',')
          FROM public.probe p WHERE p.pid IN (SELECT pid FROM public.seen WHERE flow = 'leak')}),
	'4MB none alice t 0 0 0 undefined',
	'on the same worker: no setting, role, temp table, prepared statement, cursor, advisory lock or currval left');

# --- 4. the owner checks run for every node run
q1(q{SELECT taskflow.create_flow('expire', owner => 'alice')});
q1(q{SELECT taskflow.add_node('expire', 'first', 'sql', 'SELECT 1')});
q1(q{SELECT taskflow.add_node('expire', 'second', 'sql', 'SELECT 1', after => ARRAY['first'])});
# warm alice workers exist (they ran the chains above)
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND usename = 'alice' AND state = 'idle'}, 10),
	'an idle warm worker of alice is waiting');
q1(q{ALTER ROLE alice VALID UNTIL '2000-01-01'});
($run, $state) = TaskflowTest->run_and_wait($node, 'expire');
is($state, 'failed', 'the run of an expired owner failed');
like(q1("SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'first'"),
	qr/^28000 flow owner "alice" expired/, 'refused by the per-node owner check although a warm worker was connected as alice');
q1(q{ALTER ROLE alice VALID UNTIL 'infinity'});

# --- 5. recycle after taskflow.worker_max_nodes
reload('taskflow.worker_max_nodes', '3');
chain('long', 'alice', 10);
($run, $state) = TaskflowTest->run_and_wait($node, 'long');
is($state, 'succeeded', 'chain of 10 succeeded');
($npids, $most) = per_pid($run);
diag("worker_max_nodes = 3, chain of 10: $npids worker process(es), at most $most node runs on one");
cmp_ok($most, '<=', 3, 'no worker ran more than taskflow.worker_max_nodes node runs');
cmp_ok($npids, '>=', 4, 'so at least 4 processes ran the 10 nodes');
reload('taskflow.worker_max_nodes', undef);

# --- 6. taskflow.worker_reuse = off: one worker per node run
reload('taskflow.worker_reuse', 'off');
($run, $state) = TaskflowTest->run_and_wait($node, 'ca');
is($state, 'succeeded', 'chain without reuse succeeded');
($npids, $most) = per_pid($run);
is("$npids $most", '6 1', 'worker_reuse off: six processes for six node runs');
reload('taskflow.worker_reuse', undef);

# --- 7. cancel_run terminates the worker of that run only
q1(q{SELECT taskflow.create_flow('cx', owner => 'alice')});
q1(q{SELECT taskflow.add_node('cx', 'quick', 'sql', 'SELECT 1')});
q1(q{SELECT taskflow.add_node('cx', 'slow', 'sql', 'SELECT pg_sleep(60)')});
q1(q{SELECT taskflow.create_flow('cy', owner => 'alice')});
q1(q{SELECT taskflow.add_node('cy', 'mid', 'sql', 'SELECT pg_sleep(3)')});
my $rx = TaskflowTest->run_flow($node, 'cx');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.node_runs nr JOIN taskflow.nodes n ON n.id = nr.node_id WHERE nr.run_id = $rx AND n.name = 'quick' AND nr.state = 'succeeded'", 30)
	&& TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node cx.slow run $rx'", 30),
	'cx: quick done, slow running');
my $slow_pid = q1("SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node cx.slow run $rx'");
my $ry = TaskflowTest->run_flow($node, 'cy');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM taskflow.node_runs WHERE run_id = $ry AND state = 'running'", 30),
	'cy running');
my $quick_pid = q1("SELECT nr.worker_pid FROM taskflow.node_runs nr JOIN taskflow.nodes n ON n.id = nr.node_id WHERE nr.run_id = $rx AND n.name = 'quick'");
my $mid_pid = q1("SELECT worker_pid FROM taskflow.node_runs WHERE run_id = $ry");
diag("cx.quick ran on $quick_pid, cx.slow on $slow_pid, cy.mid on $mid_pid");
q1("SELECT taskflow.cancel_run($rx)");
is(TaskflowTest->wait_run($node, $rx), 'canceled', 'cx canceled');
ok(TaskflowTest->poll($node, 'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $slow_pid", 10),
	'the worker of cx.slow was terminated');
is(TaskflowTest->wait_run($node, $ry), 'succeeded',
	'cy (on a worker that may have run cx.quick before) was not touched by the cancel');
isnt($mid_pid, $slow_pid, 'cy ran on another worker than cx.slow');

# --- 8. a pooled worker terminated mid-node: its node run is recovered
q1(q{SELECT taskflow.create_flow('term', owner => 'alice')});
q1(q{SELECT taskflow.add_node('term', 'a', 'sql', 'SELECT 1')});
q1(q{SELECT taskflow.add_node('term', 'b', 'sql', 'SELECT pg_sleep(60)', after => ARRAY['a'])});
sub running_b
{
	my ($r) = @_;
	TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node term.b run $r'", 30)
	  or return undef;
	return q1("SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow node' AND query LIKE 'taskflow node term.b run $r'");
}
$run = TaskflowTest->run_flow($node, 'term');
my $pid = running_b($run);
ok($pid, 'term.b running');
q1("SELECT pg_terminate_backend($pid)");
is(TaskflowTest->wait_run($node, $run), 'failed', 'run failed after its worker was terminated');
like(q1("SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'b'"),
	qr/^57P01 node worker \(pid $pid\) exited without recording a result/, 'terminated node run recovered');

# kill -9 of a pooled worker mid-node (the postmaster restarts everything)
$run = TaskflowTest->run_flow($node, 'term');
$pid = running_b($run);
ok($pid, 'term.b running again');
diag('term: a ran on ' . q1("SELECT worker_pid FROM taskflow.node_run_history WHERE run_id = $run AND node = 'a'") . ", b on $pid");
my $sched = q1(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'});
kill 'KILL', $pid;
# the crash restart replaces every process: wait for a new scheduler
TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler' AND pid <> $sched", 60)
  or die 'server did not come back';
is(TaskflowTest->wait_run($node, $run), 'failed', 'run failed after its worker was killed');
like(q1("SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'b'"),
	qr/^57P01 node worker \(pid $pid\) exited without recording a result/, 'killed node run recovered after the restart');
($run, $state) = TaskflowTest->run_and_wait($node, 'ca');
is($state, 'succeeded', 'the pool works again after the restart');

# --- 9. idle workers exit after taskflow.worker_idle_timeout
reload('taskflow.worker_idle_timeout', '3s');
($run, $state) = TaskflowTest->run_and_wait($node, 'ca');
is($state, 'succeeded', 'chain succeeded');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'taskflow node'}, 30),
	'idle workers exited after the idle timeout');

$node->stop;
done_testing();
