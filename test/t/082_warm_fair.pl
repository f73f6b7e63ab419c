# Warm workers started ahead of a due time (scheduler.c,
# tf_prestart_workers) are shared fairly between the owners with flows due
# soon: 1.4 gave each owner one idle worker per flow due, up to
# taskflow.max_workers, in whatever order the query returned the owners, so
# an owner with many flows due filled the pool and another owner's first
# node waited for one of them to exit and a fork.  Now at most
# max_workers / (owners with flows due soon) each, at least one (review of
# 1.4, docs/security.md).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TaskflowTest;

my $node = TaskflowTest->start_node('warm_fair', max_workers => 4,
	conf => "taskflow.worker_idle_timeout = 120\n");

# a clock that stands still 30 s before a minute: every flow below is due
# at that minute, within the idle timeout, and never comes due
TaskflowTest->set_clock($node, '2030-01-01 00:00:30+00');
$node->safe_psql('postgres', q{
CREATE ROLE ann LOGIN;
CREATE ROLE bob LOGIN;
BEGIN;   -- (one due time, seen by one pass)
SELECT taskflow.create_flow('ann' || i, schedule => '* * * * *', owner => 'ann', catchup => false,
                            start_date => '2030-01-01 00:00:45+00')
  FROM generate_series(1, 6) i;
SELECT taskflow.add_node('ann' || i, 'n', 'sql', 'SELECT 1') FROM generate_series(1, 6) i;
SELECT taskflow.create_flow('bob1', schedule => '* * * * *', owner => 'bob', catchup => false,
                            start_date => '2030-01-01 00:00:45+00');
SELECT taskflow.add_node('bob1', 'n', 'sql', 'SELECT 1');
COMMIT;
});
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(DISTINCT next_due) = 1 AND count(next_due) = 7 AND min(next_due) = '2030-01-01 00:01:00+00' FROM taskflow.flows}, 60),
	'the 7 flows are due at the same time, 30 s ahead');

my $idle = q{SELECT count(*) FILTER (WHERE usename = 'ann') || ' ' || count(*) FILTER (WHERE usename = 'bob')
               FROM pg_stat_activity WHERE application_name = 'taskflow idle worker'};
ok(TaskflowTest->poll($node, 'postgres',
	q{SELECT count(*) FILTER (WHERE usename = 'bob') >= 1 AND count(*) >= 3
        FROM pg_stat_activity WHERE application_name = 'taskflow idle worker'}, 60),
	'warm workers were started ahead, one of them for bob');
usleep(2_000_000);				# (nothing more is started for this due time)
my ($ann, $bob) = split / /, $node->safe_psql('postgres', $idle);
cmp_ok($ann, '<=', 2, "ann, with 6 flows due, got at most a fair share (4 workers / 2 owners) ($ann)");
is($bob, '1', 'bob got its one');
is($node->safe_psql('postgres', 'SELECT count(*) FROM taskflow.runs'), '0', '(no flow came due)');

$node->stop;
done_testing();
