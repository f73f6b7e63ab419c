# The runs of a due time created set-based (taskflow._sched_due_set, part
# 99_dispatch5; called by the scheduler's tick before the per-flow path):
#  - against the test clock: flows with exactly one period due get it from
#    the set-based step (one INSERT for all of them), with the same run as the
#    per-flow path would make (scheduled_for = the fire time, bizdate = the
#    day before in the flow's time zone, trigger 'schedule', one pending
#    node run per node, the watermark and next_due advanced; 'infinity'
#    past end_date); flows with several periods due (catch-up) still go
#    through the per-flow path (every missed period with catchup on, only
#    the latest with it off);
#  - when the set-based step fails (here: a trigger that rejects one
#    flow's run), nothing of it stays, the per-flow path schedules the
#    flows, and the bad flow fails only itself (schedule_error);
#  - on the real clock with the due time prepared ahead: every run of a due
#    time of 40 flows (5 times taskflow.max_workers) is created before the
#    due time, not only the first batch, and still no node and no statement
#    starts before it, one run per flow and period; the ready nodes beyond
#    the free workers are handed ahead (taskflow._ahead_taken() grows).
# Behaviour only, no latency bound (test/bench/dispatch_ab.sh).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('dispatch5_due_set', max_workers => 8);

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# every INSERT statement into taskflow.runs that inserted rows, with how
# many (the set-based step inserts the runs of all its flows in one)
q1(q{
CREATE TABLE public.run_inserts (id serial, n bigint);
CREATE FUNCTION public.note_run_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.run_inserts (n) SELECT count(*) FROM nt HAVING count(*) > 0;
    RETURN NULL;
END $$;
CREATE TRIGGER note_run_insert AFTER INSERT ON taskflow.runs
    REFERENCING NEW TABLE AS nt FOR EACH STATEMENT EXECUTE FUNCTION public.note_run_insert();
});
sub inserts_since
{
	return q1("SELECT coalesce(string_agg(n::text, ',' ORDER BY id), '') FROM public.run_inserts WHERE id > $_[0]");
}
sub last_insert { return q1(q{SELECT coalesce(max(id), 0) FROM public.run_inserts}); }

# ---- test clock: one period due -> set-based; several -> per flow ----
TaskflowTest->set_clock($node, '2030-06-01 10:00:30+00');
q1(q{
CREATE TABLE public.ticks (flow text, bizdate date, run_id bigint);
GRANT ALL ON public.ticks TO PUBLIC;
SELECT taskflow.create_flow('tk_catch', schedule => '0 * * * *', timezone => 'Asia/Tokyo',
                            start_date => '2030-06-01 10:00:30+00');
SELECT taskflow.create_flow('tk_nocatch', schedule => '0 * * * *', timezone => 'Asia/Tokyo',
                            start_date => '2030-06-01 10:00:30+00', catchup => false);
SELECT taskflow.create_flow('tk_end', schedule => '0 * * * *', timezone => 'UTC',
                            start_date => '2030-06-01 10:00:30+00',
                            end_date => '2030-06-01 11:30+00');
SELECT taskflow.add_node(f, n, 'sql',
         $$INSERT INTO public.ticks VALUES ('${flow}', '${bizdate}', ${run_id})$$)
  FROM unnest(ARRAY['tk_catch', 'tk_nocatch', 'tk_end']) f, unnest(ARRAY['a', 'b']) n;
SELECT taskflow.add_edge('tk_catch', 'a', 'b');
});
# (the first look of the scheduler at a new flow is per flow: next_due NULL)
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 3 FROM taskflow.flows
	   WHERE name LIKE 'tk_%' AND next_due = '2030-06-01 11:00+00'}, 60),
	'the scheduler looked at the new flows: next_due 11:00');
my $mark0 = last_insert();

TaskflowTest->set_clock($node, '2030-06-01 11:00:01+00');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 6 FROM public.ticks}, 60),
	'11:00: one run per flow, both nodes ran');
is(inserts_since($mark0), '3',
	'one period due: the runs of the three flows were created by one statement (set-based)');
is(q1(q{SELECT string_agg(format('%s %s %s %s %s', f.name, r.scheduled_for AT TIME ZONE 'UTC',
                                 r.bizdate, r.trigger, r.created_by::regrole::text), ', '
                          ORDER BY f.name)
          FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id}),
	'tk_catch 2030-06-01 11:00:00 2030-05-31 schedule postgres, '
	  . 'tk_end 2030-06-01 11:00:00 2030-05-31 schedule postgres, '
	  . 'tk_nocatch 2030-06-01 11:00:00 2030-05-31 schedule postgres',
	'scheduled_for, bizdate (the day before, in the flow\'s time zone), trigger, created_by');
is(q1(q{SELECT string_agg(format('%s %s', f.name, (SELECT count(*) FROM taskflow.node_runs nr
                                                    JOIN taskflow.runs r ON r.id = nr.run_id
                                                   WHERE r.flow_id = f.id)), ', ' ORDER BY f.name)
          FROM taskflow.flows f WHERE f.name LIKE 'tk_%'}),
	'tk_catch 2, tk_end 2, tk_nocatch 2', 'one node run per node');
is(q1(q{SELECT string_agg(format('%s %s %s', name, scheduled_until AT TIME ZONE 'UTC',
                                 CASE WHEN next_due = 'infinity' THEN 'infinity'
                                      ELSE (next_due AT TIME ZONE 'UTC')::text END), ', '
                          ORDER BY name)
          FROM taskflow.flows WHERE name LIKE 'tk_%'}),
	'tk_catch 2030-06-01 11:00:00 2030-06-01 12:00:00, '
	  . 'tk_end 2030-06-01 11:00:00 infinity, '
	  . 'tk_nocatch 2030-06-01 11:00:00 2030-06-01 12:00:00',
	'watermark and next_due advanced; past end_date: infinity');
is(q1(q{SELECT string_agg(DISTINCT bizdate::text, ',') FROM public.ticks}), '2030-05-31',
	'the nodes saw the bizdate');

# next_due written directly to a time that is no fire time: it only picks
# the flow for a look; the period comes from the watermark (none due yet)
my $mark_direct = last_insert();
q1(q{UPDATE taskflow.flows SET next_due = '2030-06-01 11:30+00' WHERE name = 'tk_nocatch'});
TaskflowTest->set_clock($node, '2030-06-01 11:40:01+00');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT next_due = '2030-06-01 12:00+00' FROM taskflow.flows WHERE name = 'tk_nocatch'}, 90),
	'a next_due written directly is looked at and set back to the next fire time');
is(inserts_since($mark_direct), '', '... and makes no run');

# three periods due at once: per flow, catch-up rules
my $mark1 = last_insert();
TaskflowTest->set_clock($node, '2030-06-01 14:00:01+00');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 3 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'tk_catch' AND r.state = 'succeeded' AND r.scheduled_for > '2030-06-01 11:00+00'}, 60),
	'catch-up on: every missed period got a run');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 1 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'tk_nocatch' AND r.state = 'succeeded' AND r.scheduled_for > '2030-06-01 11:00+00'}, 60),
	'catch-up off: one run');
is(q1(q{SELECT r.scheduled_for AT TIME ZONE 'UTC' FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE f.name = 'tk_nocatch' AND r.scheduled_for > '2030-06-01 11:00+00'}),
	'2030-06-01 14:00:00', '... the latest period');
# (tk_end: past its end_date, nothing; the others one statement per run)
is(inserts_since($mark1), '1,1,1,1', 'several periods due: the per-flow path created them, one by one');
is(q1(q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE f.name = 'tk_end'}), '1', 'nothing past end_date');

# ---- the set-based step fails: per flow, the bad flow fails only itself ----
q1(q{
CREATE FUNCTION public.reject_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT name FROM taskflow.flows WHERE id = NEW.flow_id) = 'tk_nocatch' THEN
        RAISE EXCEPTION 'rejected by the test';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reject_run BEFORE INSERT ON taskflow.runs
    FOR EACH ROW EXECUTE FUNCTION public.reject_run();
});
my $mark2 = last_insert();
TaskflowTest->set_clock($node, '2030-06-01 15:00:01+00');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 1 FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
	   WHERE f.name = 'tk_catch' AND r.state = 'succeeded' AND r.scheduled_for = '2030-06-01 15:00+00'}, 60),
	'set-based step failed: the good flow still got its run');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT schedule_error LIKE '%rejected by the test%' FROM taskflow.flows WHERE name = 'tk_nocatch'}, 60),
	'the bad flow fails only itself (schedule_error)');
is(inserts_since($mark2), '1', '... through the per-flow path (one statement, one run)');
is(q1(q{SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE f.name = 'tk_nocatch' AND r.scheduled_for = '2030-06-01 15:00+00'}), '0',
	'no run of the rejected flow');
ok($node->log_contains('scheduling the due flows together failed, one by one instead'),
	'the failure of the set-based step is logged');
q1(q{DROP TRIGGER reject_run ON taskflow.runs; DROP FUNCTION public.reject_run();
     DROP TRIGGER note_run_insert ON taskflow.runs; DROP FUNCTION public.note_run_insert()});
q1(q{SELECT taskflow.drop_flow(name) FROM taskflow.flows});
TaskflowTest->set_clock($node, undef);
# (the scheduler has seen the real clock once a manual run went through it)
q1(q{SELECT taskflow.create_flow('probe');
     SELECT taskflow.add_node('probe', 'n', 'sql', 'SELECT 1')});
TaskflowTest->run_and_wait($node, 'probe');
q1(q{SELECT taskflow.drop_flow('probe')});

# ---- real clock, prepared ahead: the whole due time, not one batch ----
q1(q{
CREATE ROLE dora LOGIN;
CREATE TABLE public.seen (run_id bigint, at timestamptz);
GRANT ALL ON public.seen TO PUBLIC;
SELECT taskflow.create_flow('p' || g, schedule => 'every 3 seconds', owner => 'dora',
                            catchup => false)
  FROM generate_series(1, 40) g;
SELECT taskflow.add_node('p' || g, 'n', 'sql',
                         $$INSERT INTO public.seen VALUES (${run_id}, clock_timestamp())$$)
  FROM generate_series(1, 40) g;
});
my $taken0 = q1(q{SELECT taskflow._ahead_taken()});
# more than one batch (max_workers = 8) of one due time created before it
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) > 0 FROM (SELECT r.scheduled_for FROM taskflow.runs r
	                             WHERE r.created_at < r.scheduled_for
	                             GROUP BY 1 HAVING count(*) > 8) x}, 240),
	'a due time of 40 flows was prepared ahead as a whole (more than one batch)');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 160 FROM taskflow.runs WHERE state = 'succeeded'}, 240),
	'4 due times of 40 flows ran');
cmp_ok(q1(q{SELECT taskflow._ahead_taken()}), '>', $taken0,
	'40 ready nodes on 8 workers: workers took node runs the scheduler handed ahead');
q1(q{SELECT taskflow.alter_flow('p' || g, enabled => false) FROM generate_series(1, 40) g});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) = 0 FROM taskflow.runs WHERE state IN ('scheduled', 'running')}, 120),
	'nothing left running');
is(q1(q{SELECT count(*) FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id
         WHERE nr.started_at < r.scheduled_for}),
	'0', 'no node of a prepared run started before its due time');
is(q1(q{SELECT count(*) FROM public.seen s JOIN taskflow.runs r ON r.id = s.run_id
         WHERE s.at < r.scheduled_for}),
	'0', 'no statement ran before its due time');
is(q1(q{SELECT count(*) FROM (SELECT flow_id, scheduled_for FROM taskflow.runs
                                GROUP BY 1, 2 HAVING count(*) > 1) d}),
	'0', 'one run per flow and period');
is(q1(q{SELECT count(*) FROM taskflow.runs WHERE state <> 'succeeded'}),
	'0', 'every run succeeded');
is(q1(q{SELECT count(*) FROM public.seen}), q1(q{SELECT count(*) FROM taskflow.runs}),
	'one statement per run');

$node->stop;
done_testing();
