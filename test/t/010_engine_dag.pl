# Engine basics: a diamond DAG runs with b and c in parallel, the views,
# node SQL runs as the flow owner (and fails with 42501 without rights),
# NOTICEs land in node_runs.log, wake-up latencies.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('dag');

$node->safe_psql('postgres', q{
CREATE ROLE alice LOGIN;
CREATE ROLE team NOLOGIN;
GRANT team TO alice;
CREATE TABLE public.log (node text, who text, sess text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.log TO alice, team;
CREATE TABLE public.secret (x int);
});

# diamond a -> b, a -> c, (b, c) -> d; owned by alice (a login role)
$node->safe_psql('postgres', q{
SET ROLE alice;
SELECT taskflow.create_flow('diamond');
SELECT taskflow.add_node('diamond', 'a', 'sql', $$INSERT INTO public.log(node, who, sess) VALUES ('a', current_user, session_user)$$);
SELECT taskflow.add_node('diamond', 'b', 'sql', $$SELECT pg_sleep(1); INSERT INTO public.log(node, who) VALUES ('b', current_user)$$, after => ARRAY['a']);
SELECT taskflow.add_node('diamond', 'c', 'sql', $$SELECT pg_sleep(1); INSERT INTO public.log(node, who) VALUES ('c', current_user)$$, after => ARRAY['a']);
SELECT taskflow.add_node('diamond', 'd', 'sql', $$DO $d$ BEGIN RAISE NOTICE 'hello from d on %', '${bizdate}'; END $d$; INSERT INTO public.log(node, who) SELECT 'd', current_user FROM generate_series(1, 3)$$, after => ARRAY['b', 'c']);
});

my ($run, $state) = TaskflowTest->run_and_wait($node, 'diamond', bizdate => '2024-03-01', user => 'alice');
is($state, 'succeeded', 'diamond run succeeded');
is(TaskflowTest->node_states($node, $run), 'a=succeeded,b=succeeded,c=succeeded,d=succeeded',
	'all four nodes succeeded');

# b and c overlap; d starts after both finished; a before both
my $overlap = $node->safe_psql('postgres', qq{
SELECT b.started_at < c.finished_at AND c.started_at < b.finished_at
  FROM taskflow.node_run_history b, taskflow.node_run_history c
 WHERE b.run_id = $run AND c.run_id = $run AND b.node = 'b' AND c.node = 'c'});
is($overlap, 't', 'b and c ran in parallel');
my $order = $node->safe_psql('postgres', qq{
SELECT d.started_at >= greatest(b.finished_at, c.finished_at)
       AND a.finished_at <= least(b.started_at, c.started_at)
  FROM taskflow.node_run_history a, taskflow.node_run_history b,
       taskflow.node_run_history c, taskflow.node_run_history d
 WHERE a.run_id = $run AND b.run_id = $run AND c.run_id = $run AND d.run_id = $run
   AND a.node = 'a' AND b.node = 'b' AND c.node = 'c' AND d.node = 'd'});
is($order, 't', 'a before b and c, d after both');

is($node->safe_psql('postgres', "SELECT string_agg(DISTINCT who, ',') FROM public.log"),
	'alice', 'node SQL ran as the flow owner');
is($node->safe_psql('postgres', "SELECT sess FROM public.log WHERE node = 'a'"),
	'alice', 'worker session user is the owner (login role)');

my $d = $node->safe_psql('postgres', qq{SELECT rows || '|' || (log LIKE '%NOTICE: hello from d on 2024-03-01%') || '|' || (rendered LIKE '%2024-03-01%')
  FROM taskflow.node_run_history WHERE run_id = $run AND node = 'd'});
is($d, '3|true|true', 'rows of last statement, NOTICE captured in log, rendered body recorded');

# views
is($node->safe_psql('postgres', qq{SELECT state || ',' || nodes || ',' || succeeded || ',' || trigger || ',' || bizdate || ',' || (duration > '1 second')
  FROM taskflow.run_history WHERE run_id = $run}),
	'succeeded,4,4,manual,2024-03-01,true', 'run_history row');
is($node->safe_psql('postgres', q{SELECT last_state || ',' || last_bizdate || ',' || running_runs || ',' || consecutive_failures || ',' || (next_run IS NULL)
  FROM taskflow.flow_status WHERE flow = 'diamond'}),
	'succeeded,2024-03-01,0,0,true', 'flow_status row (manual flow: no next run)');

# RLS: another role sees nothing
$node->safe_psql('postgres', 'CREATE ROLE bob LOGIN');
is($node->safe_psql('postgres', 'SET ROLE bob; SELECT count(*) FROM taskflow.run_history'),
	'0', 'bob sees no runs of alice');
my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE bob; SELECT taskflow.run_flow('diamond')");
like($err, qr/flow "diamond" does not exist/, 'bob cannot run alice\'s flow');
($ret, $out, $err) = $node->psql('postgres', "SET ROLE alice; UPDATE taskflow.runs SET state = 'failed'");
like($err, qr/permission denied/, 'users cannot write runs directly');

# a flow owned by a NOLOGIN group role (allowed by a superuser: see
# 075_owners.pl) runs as that role; no rights on a table -> 42501
$node->safe_psql('postgres', q{
ALTER ROLE team SET taskflow.allow_group_owner = on;
SET ROLE alice;
SELECT taskflow.create_flow('teamflow', owner => 'team');
SELECT taskflow.add_node('teamflow', 'who', 'sql', $$INSERT INTO public.log(node, who, sess) VALUES ('team', current_user, session_user)$$);
SELECT taskflow.add_node('teamflow', 'nope', 'sql', $$SELECT * FROM public.secret$$, after => ARRAY['who']);
SELECT taskflow.add_node('teamflow', 'after_nope', 'sql', $$SELECT 1$$, after => ARRAY['nope']);
});
($run, $state) = TaskflowTest->run_and_wait($node, 'teamflow', user => 'alice');
is($state, 'failed', 'run with a failing node failed');
is($node->safe_psql('postgres', "SELECT who FROM public.log WHERE node = 'team'"), 'team',
	'group-owned flow runs as the group role');
is(TaskflowTest->node_states($node, $run), 'after_nope=upstream_failed,nope=failed,who=succeeded',
	'failed node, downstream upstream_failed');
like($node->safe_psql('postgres', "SELECT sqlstate || ' ' || error FROM taskflow.node_run_history WHERE run_id = $run AND node = 'nope'"),
	qr/^42501 permission denied for table secret/, 'error and SQLSTATE recorded');
is($node->safe_psql('postgres', q{SELECT consecutive_failures FROM taskflow.flow_status WHERE flow = 'teamflow'}),
	'1', 'flow_status counts consecutive failures');

# latency: due time -> first node start, node end -> next node start
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('chain');
SELECT taskflow.add_node('chain', 'n1', 'sql', 'SELECT 1');
SELECT taskflow.add_node('chain', 'n2', 'sql', 'SELECT 2', after => ARRAY['n1']);
SELECT taskflow.add_node('chain', 'n3', 'sql', 'SELECT 3', after => ARRAY['n2']);
});
my @runs;
for (1 .. 5)
{
	my ($r, $s) = TaskflowTest->run_and_wait($node, 'chain');
	is($s, 'succeeded', "chain run $_");
	push @runs, $r;
}
my $ids = join(',', @runs);
my $lat = $node->safe_psql('postgres', qq{
WITH n AS (SELECT h.*, r.created_at FROM taskflow.node_run_history h JOIN taskflow.runs r ON r.id = h.run_id WHERE h.run_id IN ($ids))
SELECT round(avg(extract(epoch FROM n1.started_at - n1.created_at)) * 1000, 1) || ' ' ||
       round(avg(extract(epoch FROM n2.started_at - n1.finished_at)) * 1000, 1) || ' ' ||
       round(max(extract(epoch FROM n2.started_at - n1.finished_at)) * 1000, 1)
  FROM n n1 JOIN n n2 ON n2.run_id = n1.run_id AND n1.node = 'n1' AND n2.node = 'n2'});
my ($start_ms, $hop_ms, $hop_max) = split / /, $lat;
diag("latency: run created -> first node start avg $start_ms ms; node end -> next node start avg $hop_ms ms (max $hop_max ms)");
cmp_ok($hop_ms, '<', 1000, 'next node starts within 1 s of the previous one finishing');

# ps / pg_stat_activity names
like($node->safe_psql('postgres', "SELECT application_name FROM pg_stat_activity WHERE backend_type = 'taskflow scheduler'"),
	qr/^taskflow scheduler postgres$/, 'scheduler application_name');

$node->stop;
done_testing();
