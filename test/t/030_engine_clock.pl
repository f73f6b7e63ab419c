# Scheduling against the test clock (taskflow.test_clock): a daily
# '0 5 * * *' Asia/Shanghai flow fires once per simulated day with the right
# bizdate over a simulated week; catch-up after a simulated outage (3 missed
# days: 3 runs oldest first; with catchup off only the latest); real-time
# latency from due time to node start.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('clock');
TaskflowTest->set_clock($node, '2030-03-01 04:00:00+08');

$node->safe_psql('postgres', q{
CREATE TABLE public.loads (flow text, bizdate date, run_id bigint);
SELECT taskflow.create_flow('daily', schedule => '0 5 * * *', timezone => 'Asia/Shanghai',
                            start_date => '2030-03-01 00:00+08');
SELECT taskflow.add_node('daily', 'load', 'sql',
  $$INSERT INTO public.loads VALUES ('${flow}', '${bizdate}', ${run_id})$$);
SELECT taskflow.create_flow('daily_nocatch', schedule => '0 5 * * *', timezone => 'Asia/Shanghai',
                            start_date => '2030-03-01 00:00+08', catchup => false);
SELECT taskflow.add_node('daily_nocatch', 'load', 'sql',
  $$INSERT INTO public.loads VALUES ('${flow}', '${bizdate}', ${run_id})$$);
});

sub runs_of
{
	my ($flow) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = '$flow'");
}

is(runs_of('daily'), '0', 'nothing fires before 05:00');
is($node->safe_psql('postgres', "SELECT next_run AT TIME ZONE 'Asia/Shanghai' FROM taskflow.flow_status WHERE flow = 'daily'"),
	'2030-03-01 05:00:00', 'flow_status.next_run follows the test clock');

# a simulated week: 05:00:01 and 23:00 of each day
for my $day (1 .. 7)
{
	my $d = sprintf('2030-03-%02d', $day);
	TaskflowTest->set_clock($node, "$d 05:00:01+08");
	ok(TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) = $day FROM public.loads WHERE flow = 'daily'", 30),
		"day $day: daily run executed");
	TaskflowTest->set_clock($node, "$d 23:00:00+08");
}
# make sure the scheduler has seen the last clock (a manual run goes through it)
my $probe = TaskflowTest->run_flow($node, 'daily', bizdate => '2000-01-01');
TaskflowTest->wait_run($node, $probe);
is(runs_of('daily'), '8', 'exactly one scheduled run per simulated day (+1 manual)');
is($node->safe_psql('postgres', q{SELECT string_agg(bizdate::text, ',' ORDER BY run_id) FROM public.loads WHERE flow = 'daily' AND bizdate > '2001-01-01'}),
	'2030-02-28,2030-03-01,2030-03-02,2030-03-03,2030-03-04,2030-03-05,2030-03-06',
	'bizdate = day before the scheduled time, in the flow time zone');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT to_char(scheduled_for AT TIME ZONE 'Asia/Shanghai', 'HH24:MI') || '/' || trigger, ',') FROM taskflow.runs r WHERE trigger = 'schedule' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'daily')}),
	'05:00/schedule', 'scheduled_for is 05:00 Shanghai');
is($node->safe_psql('postgres', q{SELECT scheduled_until AT TIME ZONE 'Asia/Shanghai' FROM taskflow.flows WHERE name = 'daily'}),
	'2030-03-07 05:00:00', 'watermark advanced to the last period');
is(runs_of('daily_nocatch'), '7', 'catchup-off flow also fired daily while the clock moved day by day');

# outage: stop at day 7 23:00, come back 3 days later (after day 10's 05:00)
$node->safe_psql('postgres', "ALTER SYSTEM SET taskflow.test_clock = '2030-03-10 06:00:00+08'");
$node->stop;
$node->start;
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 10 FROM public.loads WHERE flow = 'daily' AND bizdate > '2001-01-01'", 60),
	'catch-up: the 3 missed periods ran');
is($node->safe_psql('postgres', q{SELECT string_agg(bizdate::text, ',' ORDER BY run_id) FROM (SELECT * FROM public.loads WHERE flow = 'daily' ORDER BY run_id DESC LIMIT 3) x}),
	'2030-03-07,2030-03-08,2030-03-09', 'caught up oldest first');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 8 FROM public.loads WHERE flow = 'daily_nocatch'", 60),
	'catchup off: one run after the outage');
is($node->safe_psql('postgres', q{SELECT bizdate FROM public.loads WHERE flow = 'daily_nocatch' ORDER BY run_id DESC LIMIT 1}),
	'2030-03-09', 'catchup off: only the latest missed period');
is($node->safe_psql('postgres', q{SELECT count(*) FROM taskflow.runs GROUP BY flow_id, scheduled_for HAVING count(*) > 1}),
	'', 'no period ran twice');

# disabled flows do not fire; end_date stops a flow
$node->safe_psql('postgres', q{SELECT taskflow.disable_flow('daily_nocatch');
UPDATE taskflow.flows SET end_date = '2030-03-12 00:00+08' WHERE name = 'daily'});
TaskflowTest->set_clock($node, '2030-03-13 06:00:00+08');
$probe = TaskflowTest->run_flow($node, 'daily', bizdate => '2000-01-02');
TaskflowTest->wait_run($node, $probe);
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 11 FROM public.loads WHERE flow = 'daily' AND bizdate > '2001-01-01'", 30),
	'period before end_date ran');
is($node->safe_psql('postgres', q{SELECT max(bizdate) FROM public.loads WHERE flow = 'daily' AND bizdate > '2001-01-01'}),
	'2030-03-10', 'nothing after end_date');
is(runs_of('daily_nocatch'), '8', 'disabled flow did not fire');

# watermark: a manual-only flow that gets a schedule starts from the time the
# schedule was set (created_at is real time, years before the test clock: a
# catch-up from there would create hundreds of runs); a later start_date
# skips periods; enable after a disable catches up the missed periods.
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('late', timezone => 'Asia/Shanghai');
SELECT taskflow.add_node('late', 'load', 'sql',
  $$INSERT INTO public.loads VALUES ('${flow}', '${bizdate}', ${run_id})$$);
});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT taskflow._now() = '2030-03-13 06:00:00+08'}, 10), 'sessions see the test clock');
$node->safe_psql('postgres', q{SELECT taskflow.alter_flow('late', schedule => '0 5 * * *')});
is($node->safe_psql('postgres', q{SELECT scheduled_until AT TIME ZONE 'Asia/Shanghai' FROM taskflow.flows WHERE name = 'late'}),
	'2030-03-13 06:00:00', 'setting a schedule moves the watermark to now (test clock)');
is($node->safe_psql('postgres', q{SELECT next_run AT TIME ZONE 'Asia/Shanghai' FROM taskflow.flow_status WHERE flow = 'late'}),
	'2030-03-14 05:00:00', 'next run is the first period after the schedule was set');
TaskflowTest->set_clock($node, '2030-03-14 05:00:01+08');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 1 FROM public.loads WHERE flow = 'late'", 30),
	'the first period after the change ran');
$probe = TaskflowTest->run_flow($node, 'late', bizdate => '2000-01-03');
TaskflowTest->wait_run($node, $probe);
is($node->safe_psql('postgres', q{SELECT count(*) || ',' || min(bizdate) FROM taskflow.runs WHERE trigger = 'schedule' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'late')}),
	'1,2030-03-13', 'no catch-up of the periods before the schedule was set');
# start_date moved past the next period: that period is skipped
$node->safe_psql('postgres', q{SELECT taskflow.alter_flow('late', start_date => '2030-03-16 00:00+08')});
TaskflowTest->set_clock($node, '2030-03-16 05:00:01+08');
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 2 FROM public.loads WHERE flow = 'late' AND bizdate > '2001-01-01'", 30),
	'first period after the new start_date ran');
# disabled for two periods, then enabled: catch-up runs the missed ones
$node->safe_psql('postgres', q{SELECT taskflow.disable_flow('late')});
TaskflowTest->set_clock($node, '2030-03-18 05:00:01+08');
$node->safe_psql('postgres', q{SELECT taskflow.enable_flow('late')});
ok(TaskflowTest->poll($node, 'postgres',
	"SELECT count(*) = 4 FROM public.loads WHERE flow = 'late' AND bizdate > '2001-01-01'", 30),
	'enable after a disable caught up the missed periods');
is($node->safe_psql('postgres', q{SELECT string_agg(bizdate::text, ',' ORDER BY run_id) FROM public.loads WHERE flow = 'late' AND bizdate > '2001-01-01'}),
	'2030-03-13,2030-03-15,2030-03-16,2030-03-17',
	'start_date skipped bizdate 2030-03-14; the disabled days were caught up');
# manual-only for a week, then scheduled again: no catch-up of that week
$node->safe_psql('postgres', q{SELECT taskflow.alter_flow('late', schedule => '')});
TaskflowTest->set_clock($node, '2030-03-25 05:00:01+08');
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT taskflow._now() = '2030-03-25 05:00:01+08'}, 10), 'sessions see the new test clock');
$node->safe_psql('postgres', q{SELECT taskflow.alter_flow('late', schedule => '0 5 * * *')});
is($node->safe_psql('postgres', q{SELECT (scheduled_until AT TIME ZONE 'Asia/Shanghai') || ' ' || (SELECT next_run AT TIME ZONE 'Asia/Shanghai' FROM taskflow.flow_status WHERE flow = 'late') FROM taskflow.flows WHERE name = 'late'}),
	'2030-03-25 05:00:01 2030-03-26 05:00:00', 'schedule set again: watermark moved past the manual-only week');
$probe = TaskflowTest->run_flow($node, 'late', bizdate => '2000-01-04');
TaskflowTest->wait_run($node, $probe);
is($node->safe_psql('postgres', q{SELECT count(*) FROM taskflow.runs WHERE trigger = 'schedule' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'late')}),
	'4', 'no runs for the manual-only week');
$node->safe_psql('postgres', q{SELECT taskflow.disable_flow('late')});

# real time: due time -> node start
TaskflowTest->set_clock($node, undef);
$node->safe_psql('postgres', q{
SELECT taskflow.create_flow('ticker', schedule => 'every 1 second');
SELECT taskflow.add_node('ticker', 'n1', 'sql', 'SELECT 1');
SELECT taskflow.add_node('ticker', 'n2', 'sql', 'SELECT 2', after => ARRAY['n1']);
});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) >= 5 FROM taskflow.run_history WHERE flow = 'ticker' AND state = 'succeeded'}, 30),
	'every-second flow fires');
$node->safe_psql('postgres', q{SELECT taskflow.disable_flow('ticker')});
my $lat = $node->safe_psql('postgres', q{
WITH n AS (SELECT h.*, r.scheduled_for FROM taskflow.node_run_history h JOIN taskflow.runs r ON r.id = h.run_id
            WHERE h.flow = 'ticker' AND h.state = 'succeeded')
SELECT round(avg(extract(epoch FROM n1.started_at - n1.scheduled_for)) * 1000, 1) || ' ' ||
       round(max(extract(epoch FROM n1.started_at - n1.scheduled_for)) * 1000, 1) || ' ' ||
       round(avg(extract(epoch FROM n2.started_at - n1.finished_at)) * 1000, 1)
  FROM n n1 JOIN n n2 ON n2.run_id = n1.run_id AND n1.node = 'n1' AND n2.node = 'n2'});
my ($due_avg, $due_max, $hop) = split / /, $lat;
diag("latency: due time -> first node start avg $due_avg ms (max $due_max ms); node end -> next node start avg $hop ms");
# typical figures are ~15 ms; the bounds leave room for a busy 2-core machine
# (a run of an every-second flow that takes over a second delays the next one)
cmp_ok($due_avg, '<', 500, 'scheduled nodes start on average within 0.5 s of the due time');
cmp_ok($due_max, '<', 3000, 'and every one within 3 s');

$node->stop;
done_testing();
