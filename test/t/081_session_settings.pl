# The scheduler and the node workers connect to a database and took its
# and their role's defaults (ALTER DATABASE / ALTER ROLE ... SET), which a
# database owner or a flow owner sets.  With default_transaction_read_only
# = on every scheduler pass failed ("cannot execute SELECT FOR NO KEY
# UPDATE in a read-only transaction"): no run of any owner in that
# database started, also after the setting was reset, until the scheduler
# was restarted; a worker's _node_begin failed the same way.
# default_transaction_isolation and lock_timeout made the engine's own
# book-keeping fail under concurrency.  Now the engine's sessions pin them
# (session_pin.c; review of 1.4, docs/security.md).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('sessgucs');

$node->safe_psql('postgres', q{
CREATE ROLE dbo LOGIN;
CREATE ROLE alice LOGIN;
CREATE DATABASE gucdb OWNER dbo;
});
$node->safe_psql('gucdb', q{
CREATE EXTENSION taskflow;
CREATE TABLE public.marks (n int);
GRANT INSERT, SELECT ON public.marks TO alice;
SET ROLE alice;
SELECT taskflow.create_flow('w');
SELECT taskflow.add_node('w', 'a', 'sql', 'INSERT INTO public.marks VALUES (1)');
SELECT taskflow.add_node('w', 'b', 'sql', 'SELECT count(*) FROM public.marks', after => '{a}');
});

# the database owner's and the flow owner's defaults
$node->safe_psql('gucdb', q{
SET ROLE dbo;
ALTER DATABASE gucdb SET default_transaction_read_only = on;
ALTER DATABASE gucdb SET default_transaction_isolation = 'serializable';
ALTER DATABASE gucdb SET lock_timeout = '1ms';
RESET ROLE;
ALTER ROLE alice SET default_transaction_read_only = on;
});
is($node->safe_psql('gucdb', 'SHOW default_transaction_read_only'), 'on', 'a new session of gucdb is read-only by default');

# a scheduler that connects with these defaults
$node->restart;
TaskflowTest->wait_scheduler($node, 'gucdb');

# (this test's own sessions set them back)
my $rw = q{SET default_transaction_read_only = off; SET default_transaction_isolation = 'read committed'; SET lock_timeout = 0; SET ROLE alice; };
my $run = $node->safe_psql('gucdb', $rw . q{SELECT taskflow.run_flow('w')});
my $state = $node->safe_psql('gucdb', $rw . "SELECT taskflow.wait_run($run, '90 seconds')");
is($state, 'succeeded', 'the run succeeded: scheduler passes and node book-keeping were not read-only');
is($node->safe_psql('gucdb', "SELECT string_agg(node || '=' || state, ',' ORDER BY node) FROM taskflow.node_run_history WHERE run_id = $run"),
	'a=succeeded,b=succeeded', 'both nodes ran');
is($node->safe_psql('gucdb', 'SELECT count(*) FROM public.marks'), '1', "the node's write is there");

my $log = slurp_file($node->logfile);
unlike($log, qr/read-only transaction/, 'no read-only error in the server log');

# a scheduled flow fires too (a pass that creates the run)
$node->safe_psql('gucdb', $rw . q{
SELECT taskflow.create_flow('tick', schedule => 'every 2 seconds');
SELECT taskflow.add_node('tick', 'n', 'sql', 'SELECT 1');
});
ok(TaskflowTest->poll($node, 'gucdb',
	q{SELECT count(*) > 0 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'tick' AND r.state = 'succeeded'}, 120),
	'a scheduled run of that database ran');

done_testing();
