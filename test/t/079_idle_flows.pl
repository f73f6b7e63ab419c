# Idle flows cost nothing per pass or per node handoff (issue 11, "no
# degradation from idle flows"), checked where it could be lost without a
# failing figure:
#   * the scheduler's sweep of every flow (at start, after SIGHUP) does not
#     write flows whose next_due it finds right (taskflow._sched_one): no new
#     row version per idle flow;
#   * taskflow._owner_due_soon (an idle worker whose timeout is up) reads the
#     flows due soon through the index on next_due, never every flow, and
#     still answers right.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('idle_flows', max_workers => 2);

sub q1 { return $node->safe_psql('postgres', $_[0]); }

my $flows = 2000;
my $hour = (gmtime(time() + 3 * 3600))[2];
q1(qq{
CREATE ROLE idle_owner LOGIN;
CREATE ROLE busy_owner LOGIN;
SELECT count(taskflow.create_flow('idle_' || g, schedule => '0 $hour * * *', timezone => 'UTC',
                                  owner => 'idle_owner'))
  FROM generate_series(1, $flows) g;
});
# flows due in hours wake nothing (part 51): the next pass looks at them, up
# to the scheduler's longest sleep (60 s) later; wake it instead of waiting
q1('SELECT taskflow._wake()');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 0 FROM taskflow.flows WHERE next_due IS NULL}, 120),
	'the scheduler looked at every new flow');

# the sweep after SIGHUP: a sentinel (the last flow by id, which the sweep
# reaches last) gets a wrong next_due written behind the scheduler's back;
# once the sweep has put it right, it has looked at every flow
q1(q{
CREATE TABLE public.before AS SELECT id, xmin::text AS x FROM taskflow.flows;
UPDATE taskflow.flows SET next_due = 'infinity' WHERE id = (SELECT max(id) FROM taskflow.flows);
SELECT pg_reload_conf();
});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT next_due <> 'infinity' FROM taskflow.flows WHERE id = (SELECT max(id) FROM taskflow.flows)}, 120),
	'the sweep after SIGHUP reached the last flow');
is(q1(q{SELECT count(*) FROM taskflow.flows f JOIN public.before b USING (id)
         WHERE f.xmin::text <> b.x AND f.id <> (SELECT max(id) FROM taskflow.flows)}),
	'0', "the sweep wrote none of the $flows unchanged idle flows");

# _owner_due_soon: right answers, through the index (this transaction's scans)
q1(q{SELECT taskflow.create_flow('soon', schedule => 'every 30 seconds', owner => 'busy_owner')});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT next_due IS NOT NULL FROM taskflow.flows WHERE name = 'soon'}, 60),
	'the flow due soon has its next_due');
my $r = q1(q{
BEGIN;
SELECT string_agg(taskflow._owner_due_soon('busy_owner'::regrole, 60)::text || '/'
                  || taskflow._owner_due_soon('idle_owner'::regrole, 60)::text, ',')
  FROM generate_series(1, 10);
SELECT seq_scan, idx_scan > 0 FROM pg_stat_xact_user_tables WHERE relid = 'taskflow.flows'::regclass;
COMMIT;
});
my @l = split /\n/, $r;
is($l[0], join(',', ('true/false') x 10),
	'due soon: the owner of a flow due within the window, not the owner of idle flows');
is($l[1], '0|t', "no sequential scan of the $flows flows, index scans only");

$node->stop;
done_testing();
