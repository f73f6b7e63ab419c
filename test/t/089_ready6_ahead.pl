# The ready path under a backlog, 1.8 (issue 11; docs/performance.md "1.8:
# the ready path's CPU"): the handed-ahead list ranks at most
# taskflow.max_workers node runs beyond the free workers (was 64), the
# ready-node read before the tick is skipped while every worker is busy,
# and a warm worker's next node of its own run is judged lazily
# (_node_next_in_run, part 20_engine).  With two owners' runs queued on a
# pool of 2 workers:
#  - every run succeeds, every node ran exactly once (one attempt, one
#    statement), as its flow's owner, chains in order;
#  - workers took node runs off the handed-ahead list (_ahead_taken grows);
#  - runs canceled while held back (their first node ready, maybe on the
#    handed-ahead list) never start a node.
# Behaviour only, no timing bound (test/bench/soak_bench.sh, pool_bench.sh).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('ready6_ahead', max_workers => 2);

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE ROLE ann LOGIN;
CREATE ROLE bob LOGIN;
CREATE TABLE public.ran (run_id bigint, node text, who text, at timestamptz DEFAULT clock_timestamp());
GRANT ALL ON public.ran TO PUBLIC;
SELECT taskflow.create_flow(o || g, owner => o::regrole)
  FROM unnest(ARRAY['ann', 'bob']) o, generate_series(1, 12) g;
SELECT taskflow.add_node(o || g, 'a', 'sql',
                         $$INSERT INTO public.ran (run_id, node, who) VALUES (${run_id}, 'a', current_user)$$)
  FROM unnest(ARRAY['ann', 'bob']) o, generate_series(1, 12) g;
SELECT taskflow.add_node(o || g, 'b', 'sql',
                         $$INSERT INTO public.ran (run_id, node, who) VALUES (${run_id}, 'b', current_user)$$,
                         after => ARRAY['a'])
  FROM unnest(ARRAY['ann', 'bob']) o, generate_series(1, 12) g;
});

# ---- 24 runs of two owners at once on 2 workers ----
my $taken0 = q1(q{SELECT taskflow._ahead_taken()});
q1(q{SELECT count(taskflow.run_flow(o || g)) FROM unnest(ARRAY['ann', 'bob']) o, generate_series(1, 12) g});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 24 FROM taskflow.runs WHERE state NOT IN ('scheduled', 'running')}, 240),
	'24 runs on 2 workers finished');
is(q1(q{SELECT string_agg(DISTINCT state, ',') FROM taskflow.runs}), 'succeeded', 'every run succeeded');
is(q1(q{SELECT count(*) FROM (SELECT run_id, node FROM public.ran GROUP BY 1, 2 HAVING count(*) <> 1) x}),
	'0', 'no node ran twice');
is(q1(q{SELECT count(*) FROM public.ran}), '48', 'every node ran once');
is(q1(q{SELECT count(*) FROM taskflow.node_runs WHERE attempt <> 1}), '0', 'one attempt per node run');
is(q1(q{SELECT count(*) FROM public.ran x JOIN taskflow.runs r ON r.id = x.run_id
          JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE x.who <> f.owner::regrole::text}),
	'0', "every node ran as its flow's owner");
is(q1(q{SELECT count(*) FROM public.ran a JOIN public.ran b ON b.run_id = a.run_id
         WHERE a.node = 'a' AND b.node = 'b' AND b.at < a.at}),
	'0', 'chains in order');
cmp_ok(q1(q{SELECT taskflow._ahead_taken()}), '>', $taken0,
	'workers took node runs off the handed-ahead list');

# ---- runs canceled while held back never start a node ----
q1(q{
SELECT taskflow.create_flow('slow' || g, owner => 'ann') FROM generate_series(1, 2) g;
SELECT taskflow.add_node('slow' || g, 's', 'sql', 'SELECT pg_sleep(8)') FROM generate_series(1, 2) g;
TRUNCATE public.ran;
});
# both workers busy for a while, then 10 runs held back
my @slow = map { TaskflowTest->run_flow($node, "slow$_") } 1 .. 2;
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 2 FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id
       JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name LIKE 'slow_' AND nr.state = 'running'}, 120),
	'both workers run a slow node');
my @held = split /\n/,
	q1(q{SELECT taskflow.run_flow('ann' || g) FROM generate_series(1, 10) g ORDER BY g});
my @cancel = @held[0, 2, 4, 6];
# (the runs went through the scheduler's read: it may have handed them ahead;
# the slow nodes hold both workers for seconds more)
usleep(300_000);
q1(join(';', map { "SELECT taskflow.cancel_run($_)" } @cancel));
TaskflowTest->wait_run($node, $_, timeout => 120) for (@slow, @held);
my $cancel_list = join(',', @cancel);
is(q1("SELECT string_agg(DISTINCT state, ',') FROM taskflow.runs WHERE id IN ($cancel_list)"),
	'canceled', 'the held-back runs canceled');
is(q1("SELECT count(*) FROM public.ran WHERE run_id IN ($cancel_list)"), '0',
	'no node of a canceled held-back run ran');
is(q1("SELECT count(*) FROM taskflow.node_runs WHERE run_id IN ($cancel_list) AND started_at IS NOT NULL"),
	'0', 'no node run of a canceled held-back run started');
my $rest = join(',', grep { my $x = $_; !grep { $_ == $x } @cancel } @held);
is(q1("SELECT string_agg(DISTINCT state, ',') FROM taskflow.runs WHERE id IN ($rest)"),
	'succeeded', 'the other held-back runs succeeded');
is(q1("SELECT count(*) FROM public.ran WHERE run_id IN ($rest)"), '12',
	'each of their nodes ran once');

$node->stop;
done_testing();
