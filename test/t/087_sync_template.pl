# The "sync_table_daily" template: a flow with one incremental copy node that
# syncs a table to another database of the cluster by a watermark column
# (upsert on key), run on two days with inserts and an update in between;
# bad parameters are refused with a hint and create nothing.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('synctpl');
$node->safe_psql('postgres', q{
CREATE ROLE carol LOGIN;
CREATE DATABASE reporting;
CREATE TABLE public.events (id int PRIMARY KEY, v text, changed_at timestamptz NOT NULL);
ALTER TABLE public.events OWNER TO carol;
INSERT INTO public.events SELECT g, 'v' || g, '2020-06-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 500) g;
});
$node->safe_psql('reporting', q{
CREATE TABLE public.events (id int PRIMARY KEY, v text, changed_at timestamptz NOT NULL);
ALTER TABLE public.events OWNER TO carol;
});

my ($ret, $out, $err) = $node->psql('postgres', q{SET ROLE carol;
	SELECT taskflow.create_flow_from_template('sync_table_daily', 'sync_events',
	  '{"table": "events", "watermark": "changed_at", "key": "id"}')});
like($err, qr/needs parameter "target_database" or "target_server".*HINT:  Name a database/s,
	'a target is required, with a hint');
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE carol;
	SELECT taskflow.create_flow_from_template('sync_table_daily', 'sync_events',
	  '{"table": "events", "watermark": "changd_at", "key": "id", "target_database": "reporting"}')});
like($err, qr/column "changd_at" of relation "public.events" does not exist.*HINT:  Parameter "watermark"/s,
	'an unknown watermark column is refused naming the parameter') or diag($err);
is($node->safe_psql('postgres', q{SELECT count(*) FROM taskflow.flows WHERE name = 'sync_events'}),
	'0', 'the refused calls created no flow');

$node->safe_psql('postgres', q{SET ROLE carol;
	SELECT taskflow.create_flow_from_template('sync_table_daily', 'sync_events',
	  '{"table": "events", "watermark": "changed_at", "key": "id", "target_database": "reporting",
	    "schedule": "", "lookback": "1 hour"}')});
is($node->safe_psql('postgres', q{SELECT kind || ' ' || (options->>'mode') || ' ' || (options->>'target_database')
	FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'sync_events'}),
	'copy incremental reporting', 'the template made one incremental copy node');

sub same
{
	my $q = q{SELECT count(*) || ':' || md5(string_agg(e::text, ';' ORDER BY e.id)) FROM public.events e};
	return ($node->safe_psql('postgres', $q), $node->safe_psql('reporting', $q));
}

my (undef, $st) = TaskflowTest->run_and_wait($node, 'sync_events', user => 'carol', bizdate => '2020-06-01');
is($st, 'succeeded', 'first run');
my ($a, $b) = same();
is($b, $a, 'the target equals the source after the first run');

# new rows, and an update that moves a row's watermark forward
$node->safe_psql('postgres', q{
	INSERT INTO public.events SELECT g, 'v' || g, '2020-06-02'::timestamptz + g * interval '1 minute'
	  FROM generate_series(501, 700) g;
	UPDATE public.events SET v = 'changed', changed_at = '2020-06-03' WHERE id = 7;
});
(undef, $st) = TaskflowTest->run_and_wait($node, 'sync_events', user => 'carol', bizdate => '2020-06-02');
is($st, 'succeeded', 'second run');
($a, $b) = same();
is($b, $a, 'the target equals the source after the second run (inserts and the update)');
like($node->safe_psql('postgres', q{SELECT rows FROM taskflow.node_run_history WHERE flow = 'sync_events' ORDER BY node_run_id DESC LIMIT 1}),
	qr/^\d+$/, 'rows moved are recorded');
cmp_ok($node->safe_psql('postgres', q{SELECT rows FROM taskflow.node_run_history WHERE flow = 'sync_events' ORDER BY node_run_id DESC LIMIT 1}),
	'<', 700, 'the second run copied only what is new (plus the lookback), not the whole table');

$node->stop;
done_testing();
