# CALL taskflow.run(...): start a run, commit, wait, and raise when it fails.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('runcall');
$node->safe_psql('postgres', q{
	CREATE ROLE bob LOGIN;
	CREATE TABLE public.t (d date);
	GRANT ALL ON public.t TO bob;
	SET ROLE bob;
	SELECT taskflow.create_flow('ok');
	SELECT taskflow.add_node('ok', 'a', 'sql', 'INSERT INTO public.t VALUES (${bizdate:literal})');
	SELECT taskflow.create_flow('bad');
	SELECT taskflow.add_node('bad', 'first', 'sql', 'SELECT 1');
	SELECT taskflow.add_node('bad', 'boom', 'sql', 'SELECT 1/0', after => ARRAY['first']);
	SELECT taskflow.add_node('bad', 'after_boom', 'sql', 'SELECT 2', after => ARRAY['boom']);
});

# success: the procedure returns the run id and its final state
my $out = $node->safe_psql('postgres',
	"SET ROLE bob; CALL taskflow.run('ok', bizdate => '2020-06-01')");
like($out, qr/^\d+\|succeeded$/, 'CALL taskflow.run returns (run_id, succeeded)');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.t WHERE d = '2020-06-01'"),
	'1', 'the run did its work');

# failure: an ERROR with the failed node, its error and its SQLSTATE
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ROLE bob; CALL taskflow.run('bad', bizdate => '2020-06-01')");
isnt($ret, 0, 'a failed run makes CALL fail');
like($stderr, qr/ERROR:  22012: run \d+ of flow "bad" failed/, 'the error names the run and carries the node\'s SQLSTATE');
like($stderr, qr/node "boom" failed: division by zero \(SQLSTATE 22012\)/, 'the detail names the failed node and its error');
like($stderr, qr/node "after_boom" upstream_failed/, 'and the nodes that did not run');
like($stderr, qr/HINT:  SELECT node, state, error, log FROM taskflow.node_run_history WHERE run_id = \d+/, 'the hint shows where to look');
is($node->safe_psql('postgres', q{SELECT state FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'bad'}),
	'failed', 'the failed run is committed in the history');

# search_path cannot redirect it: a C procedure with qualified queries
$node->safe_psql('postgres', q{
	CREATE SCHEMA evil; GRANT USAGE ON SCHEMA evil TO bob;
	CREATE FUNCTION evil.run_flow(text, date, jsonb) RETURNS bigint LANGUAGE sql AS 'SELECT -1::bigint';
});
$out = $node->safe_psql('postgres',
	"SET ROLE bob; SET search_path = evil, taskflow, pg_catalog; CALL taskflow.run('ok', bizdate => '2020-06-04')");
like($out, qr/^\d+\|succeeded$/, 'a shadowing function on the search_path is not used');

# no wait: just the run id, state scheduled
$out = $node->safe_psql('postgres',
	"SET ROLE bob; CALL taskflow.run('ok', bizdate => '2020-06-02', wait => false)");
like($out, qr/^(\d+)\|scheduled$/, 'wait => false returns at once');
my ($rid) = $out =~ /^(\d+)/;
is(TaskflowTest->wait_run($node, $rid), 'succeeded', 'and the run goes on');

# inside a transaction block the commit is refused and nothing is left behind
($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSET ROLE bob; BEGIN; CALL taskflow.run('ok', bizdate => '2020-06-03'); COMMIT;");
like($stderr, qr/ERROR:  2D000: taskflow.run\(wait => true\) cannot be called inside a transaction block/,
	'CALL inside BEGIN ... COMMIT is refused (2D000)');
like($stderr, qr/HINT:  CALL it at top level, or pass wait => false/, 'with a hint');
is($node->safe_psql('postgres', q{SELECT count(*) FROM taskflow.runs WHERE bizdate = '2020-06-03'}),
	'0', 'and creates no run');

$node->stop;
done_testing();
