# Review of 1.5: two more database/role defaults that stopped the engine's
# own sessions (session_pin.c; docs/security.md, "Review of 1.5").
#
# - exit_on_error = on (PGC_USERSET: a database owner sets it with ALTER
#   DATABASE) turns every ERROR into FATAL, also inside PG_TRY and PL/pgSQL
#   exception blocks: a failing node's worker exited before recording the
#   error (the run showed "exited without recording a result", the message
#   was lost), and any error a scheduler pass catches ended the scheduler.
# - session_replication_role = replica (a superuser's ALTER DATABASE /
#   ALTER ROLE ... SET) skipped the engine's own triggers: the change queue
#   of part 51, so a run advanced only at the 60 s safety sweep (a 3-node
#   chain took 1-2 minutes instead of well under a second).
#
# The engine's sessions now pin exit_on_error = off and
# session_replication_role = origin at PGC_S_OVERRIDE, like the settings of
# the review of 1.4 (081_session_settings.pl).  No tight timing: the chain
# gets 45 s (it takes well under a second; on 1.5 it needed >= 60 s).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('sessguards');

$node->safe_psql('postgres', q{
CREATE ROLE dbo LOGIN;
CREATE ROLE alice LOGIN;
CREATE DATABASE gdb OWNER dbo;
});
$node->safe_psql('gdb', q{
CREATE EXTENSION taskflow;
CREATE TABLE public.marks (node text, srr text, eoe text);
GRANT INSERT, SELECT ON public.marks TO alice;
SET ROLE alice;
SELECT taskflow.create_flow('chain');
SELECT taskflow.add_node('chain', 'a', 'sql',
  $$INSERT INTO public.marks VALUES ('a', current_setting('session_replication_role'), current_setting('exit_on_error'))$$);
SELECT taskflow.add_node('chain', 'b', 'sql',
  $$INSERT INTO public.marks VALUES ('b', current_setting('session_replication_role'), current_setting('exit_on_error'))$$, after => '{a}');
SELECT taskflow.add_node('chain', 'c', 'sql',
  $$INSERT INTO public.marks VALUES ('c', current_setting('session_replication_role'), current_setting('exit_on_error'))$$, after => '{b}');
SELECT taskflow.create_flow('bad');
SELECT taskflow.add_node('bad', 'boom', 'sql', 'SELECT 1 / 0');
});

# the database owner (not a superuser) and a superuser's defaults
$node->safe_psql('gdb', q{
SET ROLE dbo;
ALTER DATABASE gdb SET exit_on_error = on;
RESET ROLE;
ALTER DATABASE gdb SET session_replication_role = replica;
ALTER ROLE alice SET session_replication_role = replica;
});
is($node->safe_psql('gdb', 'SHOW exit_on_error'), 'on', 'a new session of gdb has exit_on_error on');
is($node->safe_psql('gdb', 'SHOW session_replication_role'), 'replica', 'and session_replication_role replica');

# a scheduler and workers that connect with these defaults
$node->restart;
TaskflowTest->wait_scheduler($node, 'gdb');

# (this test's own sessions set them back: run_flow's rows must queue)
my $own = q{SET exit_on_error = off; SET session_replication_role = origin; SET ROLE alice; };
my $run = $node->safe_psql('gdb', $own . q{SELECT taskflow.run_flow('chain')});
my $state = $node->safe_psql('gdb', $own . "SELECT taskflow.wait_run($run, '45 seconds')");
is($state, 'succeeded', 'the 3-node chain finished within 45 s (not at the 60 s safety sweep)');
is($node->safe_psql('gdb', $own . "SELECT string_agg(node || ':' || srr || ':' || eoe, ',' ORDER BY node) FROM public.marks"),
	'a:origin:off,b:origin:off,c:origin:off', "the nodes' SQL starts from origin and exit_on_error off");

my $bad = $node->safe_psql('gdb', $own . q{SELECT taskflow.run_flow('bad')});
is($node->safe_psql('gdb', $own . "SELECT taskflow.wait_run($bad, '90 seconds')"), 'failed', 'the failing node failed');
like($node->safe_psql('gdb', $own . "SELECT error FROM taskflow.node_run_history WHERE run_id = $bad"),
	qr/division by zero/, "its error was recorded (the worker did not exit with it)");

# (on 1.5 the worker logged the node error as FATAL and exited)
my $log = slurp_file($node->logfile);
unlike($log, qr/FATAL:\s+division by zero/, 'no node error became FATAL');

done_testing();
