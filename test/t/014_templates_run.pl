# The templates of part 94, run by the engine: purge_older_than in batches
# (each committed), refresh_matviews in dependency order, rollup_daily_users
# (idempotent per bizdate), maintain_tables, and a user's own template used
# by a superuser (its node runs as the template's owner).  Runs record the
# definition version they ran (runs.flow_version).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('tplrun');
$node->safe_psql('postgres', q{
CREATE ROLE carol LOGIN;
GRANT CREATE ON SCHEMA public TO carol;
SET ROLE carol;
CREATE TABLE public.events (id serial PRIMARY KEY, uid int, at date);
INSERT INTO public.events (uid, at) SELECT g % 7, '2020-01-01' FROM generate_series(1, 1050) g;
INSERT INTO public.events (uid, at) SELECT g % 3, '2020-06-01' FROM generate_series(1, 20) g;
CREATE TABLE public.base (k int, v int);
CREATE MATERIALIZED VIEW public.mv_a AS SELECT k, sum(v) AS s FROM public.base GROUP BY k;
CREATE UNIQUE INDEX ON public.mv_a (k);
CREATE VIEW public.v_mid AS SELECT * FROM public.mv_a;
CREATE MATERIALIZED VIEW public.mv_b AS SELECT count(*) AS c, coalesce(sum(s), 0) AS total FROM public.v_mid;
CREATE MATERIALIZED VIEW public.mv_c AS SELECT b.total AS b_total, (SELECT count(*) FROM public.mv_a) AS a_rows FROM public.mv_b b;
CREATE TABLE public.who (role name, at timestamptz DEFAULT now());
});

# purge in batches of 100: 1050 old rows go in 11 batches, each committed
$node->safe_psql('postgres', q{SET ROLE carol;
	SELECT taskflow.create_flow_from_template('purge_older_than', 'purge_events',
	  '{"table": "events", "date_column": "at", "keep": "30 days", "batch_size": 100, "schedule": ""}')});
my ($run, $st) = TaskflowTest->run_and_wait($node, 'purge_events', user => 'carol', bizdate => '2020-06-02');
is($st, 'succeeded', 'the batched purge run succeeded');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.events'), '20', 'old rows purged, new ones kept');
like($node->safe_psql('postgres', qq{SELECT log FROM taskflow.node_run_history WHERE run_id = $run AND node = 'purge'}),
	qr/purged 1050 row\(s\) in 11 batch\(es\) of at most 100/, 'the purge deleted in 11 batches (node log)');
like($node->safe_psql('postgres', qq{SELECT log FROM taskflow.node_run_history WHERE run_id = $run AND node = 'purge'}),
	qr/autocommit mode/, 'in autocommit mode, so each batch committed on its own');
is($node->safe_psql('postgres', qq{SELECT state FROM taskflow.node_run_history WHERE run_id = $run AND node = 'analyze'}),
	'succeeded', 'then ANALYZE ran');

# refresh_matviews: the views are empty; after the run mv_c sees base's rows
# through mv_a and mv_b, which is only so when mv_a, then mv_b, then mv_c ran
$node->safe_psql('postgres', q{INSERT INTO public.base SELECT g % 5, g FROM generate_series(1, 100) g});
$node->safe_psql('postgres', q{SET ROLE carol;
	SELECT taskflow.create_flow_from_template('refresh_matviews', 'refresh_all',
	  '{"schema": "public", "schedule": ""}')});
($run, $st) = TaskflowTest->run_and_wait($node, 'refresh_all', user => 'carol', bizdate => '2020-06-02');
is($st, 'succeeded', 'the refresh run succeeded');
is($node->safe_psql('postgres', 'SELECT b_total || ' . "'/'" . ' || a_rows FROM public.mv_c'), '5050/5',
	'mv_c was refreshed after mv_b and mv_a (it sees the new rows)');
is($node->safe_psql('postgres', qq{
	SELECT bool_and(b.started_at >= a.finished_at) FROM taskflow.node_run_history a, taskflow.node_run_history b
	 WHERE a.run_id = $run AND b.run_id = $run
	   AND (a.node, b.node) IN (('refresh_mv_a', 'refresh_mv_b'), ('refresh_mv_b', 'refresh_mv_c'),
	                            ('refresh_mv_a', 'refresh_mv_c'))}),
	't', 'each view started after the views it reads finished');
like($node->safe_psql('postgres', qq{SELECT rendered FROM taskflow.node_run_history WHERE run_id = $run AND node = 'refresh_mv_a'}),
	qr/REFRESH MATERIALIZED VIEW CONCURRENTLY public\.mv_a/, 'mv_a (unique index) refreshed concurrently');

# rollup_daily_users: twice for the same bizdate gives one row
$node->safe_psql('postgres', q{SET ROLE carol;
	SELECT taskflow.create_flow_from_template('rollup_daily_users', 'daily_users',
	  '{"table": "events", "time_column": "at", "user_column": "uid", "schedule": ""}')});
($run, $st) = TaskflowTest->run_and_wait($node, 'daily_users', user => 'carol', bizdate => '2020-06-01');
is($st, 'succeeded', 'first roll-up run');
$node->safe_psql('postgres', q{INSERT INTO public.events (uid, at) VALUES (99, '2020-06-01')});
my $rerun = $node->safe_psql('postgres', qq{SET ROLE carol; SELECT taskflow.rerun($run, only_failed => false)});
is(TaskflowTest->wait_run($node, $rerun), 'succeeded', 'the roll-up ran again for the same bizdate');
is($node->safe_psql('postgres', q{SELECT string_agg(bizdate || ' ' || unique_users || ' ' || events, ';') FROM public.events_daily_users}),
	'2020-06-01 4 21', 'one row per bizdate, replaced by the second run');

# maintain_tables
$node->safe_psql('postgres', q{SET ROLE carol;
	SELECT taskflow.create_flow_from_template('maintain_tables', 'maint',
	  '{"tables": "events, base", "schedule": ""}')});
($run, $st) = TaskflowTest->run_and_wait($node, 'maint', user => 'carol', bizdate => '2020-06-02');
is($st, 'succeeded', 'the VACUUM (ANALYZE) run succeeded');
like($node->safe_psql('postgres', qq{SELECT log FROM taskflow.node_run_history WHERE run_id = $run}),
	qr/statement 2: VACUUM/, 'both tables vacuumed, each statement on its own');

# a user's template used by a superuser: the flow is carol's, its node runs as carol
$node->safe_psql('postgres', q{SET ROLE carol;
	SELECT taskflow.register_template('note_who', '{"nodes": [{"name": "note", "kind": "sql",
	    "body": "INSERT INTO {{table}} (role) SELECT current_user"}]}', '{"table": {"required": true}}')});
$node->safe_psql('postgres', q{SELECT taskflow.create_flow_from_template('note_who', 'su_made',
	'{"table": "public.who", "schedule": ""}')});
is($node->safe_psql('postgres', q{SELECT owner FROM taskflow.flows WHERE name = 'su_made'}), 'carol',
	'a flow made by a superuser from carol\'s template is owned by carol');
($run, $st) = TaskflowTest->run_and_wait($node, 'su_made', bizdate => '2020-06-02');
is($st, 'succeeded', 'its run succeeded');
is($node->safe_psql('postgres', 'SELECT string_agg(role, \',\') FROM public.who'), 'carol',
	'its node ran as carol, not as the superuser');

# runs record the definition version they ran
my $v1 = $node->safe_psql('postgres', q{SELECT max(version) FROM taskflow.flow_versions v JOIN taskflow.flows f ON f.id = v.flow_id WHERE f.name = 'su_made'});
$node->safe_psql('postgres', q{SELECT taskflow.alter_node('su_made', 'note', retries => 1)});
my ($run2, $st2) = TaskflowTest->run_and_wait($node, 'su_made', bizdate => '2020-06-03');
is($st2, 'succeeded', 'a run after a change succeeded');
is($node->safe_psql('postgres', qq{SELECT string_agg(flow_version::text, ',' ORDER BY id) FROM taskflow.runs WHERE id IN ($run, $run2)}),
	"$v1," . ($v1 + 1), 'each run recorded the version it was created from');
is($node->safe_psql('postgres', qq{SELECT string_agg(change || ' ' || field, ',') FROM taskflow.flow_diff('su_made', $v1, $v1 + 1)}),
	'changed retries', 'flow_diff between the two runs\' versions shows the change');
is($node->safe_psql('postgres', q{SELECT count(*) FROM taskflow.runs WHERE flow_version IS NULL}), '0',
	'every run has its version');

$node->stop;
done_testing();
