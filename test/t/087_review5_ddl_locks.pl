# Review of 1.7 (docs/security.md): DDL that PostgreSQL runs with a lock of a
# relation it names taken *before* its privilege check.  A plain role that
# names a table of taskflow's catalog there -- CREATE TABLE ... PARTITION OF,
# ALTER TABLE ... ATTACH / DETACH PARTITION, CREATE RULE (ACCESS EXCLUSIVE),
# CREATE TRIGGER, a FOREIGN KEY's REFERENCES (SHARE ROW EXCLUSIVE) -- fails
# once the lock is granted; but while it waits for it, behind any open
# transaction that read or wrote the table (the role's own: every role may
# DELETE its own flows), the request stays in the lock queue and every later
# conflicting request waits behind it: the scheduler (every owner's runs),
# node workers, every role's reads.  src/lock_guard.c refuses these
# statements before PostgreSQL locks anything.
# Loose bounds (busy cores): the beats must go on within 30 s.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('review5ddl', max_workers => 4);
sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE ROLE alice LOGIN;
CREATE ROLE mallory LOGIN;
CREATE SCHEMA mal AUTHORIZATION mallory;
CREATE TABLE public.beats (who text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.beats TO PUBLIC;
SET ROLE alice;
SELECT taskflow.create_flow('a_beat', schedule => 'every 1 second');
SELECT taskflow.add_node('a_beat', 'b', 'sql', $$INSERT INTO public.beats (who) VALUES ('alice')$$);
RESET ROLE;
SET ROLE mallory;
CREATE TABLE mal.parted (id bigint) PARTITION BY LIST (id);
CREATE TABLE mal.plain (id bigint);
});

sub beats_go_on
{
	my ($n) = @_;
	my $now = q1(q{SELECT count(*) FROM public.beats});
	return TaskflowTest->poll($node, 'postgres',
		"SELECT count(*) >= $now + $n FROM public.beats", 30);
}
ok(beats_go_on(2), 'alice\'s every-second flow runs');

# mallory's own open transaction: ROW EXCLUSIVE on flows and edges (DELETE of
# its own rows, here none), ACCESS SHARE on runs and node_runs
my $hold = $node->background_psql('postgres');
$hold->query_safe(q{SET ROLE mallory});
$hold->query_safe(q{BEGIN});
$hold->query_safe(q{DELETE FROM taskflow.flows WHERE false});
$hold->query_safe(q{DELETE FROM taskflow.edges WHERE false});
$hold->query_safe(q{SELECT count(*) FROM taskflow.runs, taskflow.node_runs});

# 1. the worst: a queued ACCESS EXCLUSIVE request of flows, left waiting
my $b = $node->background_psql('postgres', on_error_stop => 0);
$b->query_safe(q{SET ROLE mallory});
$b->query_until(qr/go/, "\\echo go\nCREATE TABLE mal.p0 PARTITION OF taskflow.flows FOR VALUES IN (1);\n");
ok(beats_go_on(3), 'alice\'s flow goes on while mallory\'s PARTITION OF taskflow.flows is sent');
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET lock_timeout = '5s'; SELECT count(*) >= 0 FROM taskflow.flows});
is($out, 't', 'a superuser reads flows meanwhile');
$b->query(q{SELECT 1});
like($b->{stderr}, qr/must be owner of table flows/,
	'PARTITION OF taskflow.flows is refused');
$b->{stderr} = '';

# 2. each statement: refused at once (with a lock_timeout: on a queued
# request it would be "canceling statement due to lock timeout"), and no
# request of it left waiting
$b->query_safe(q{SET lock_timeout = '4s'});
for my $stmt (
	q{CREATE TABLE mal.p1 PARTITION OF taskflow.runs FOR VALUES IN (1)},
	q{CREATE TABLE mal.p2 (x bigint REFERENCES taskflow.flows (id))},
	q{CREATE TABLE mal.p3 (x bigint, FOREIGN KEY (x) REFERENCES taskflow.flows (id))},
	q{ALTER TABLE mal.plain ADD FOREIGN KEY (id) REFERENCES taskflow.flows (id)},
	q{ALTER TABLE mal.plain ADD COLUMN y bigint REFERENCES taskflow.edges (flow_id)},
	q{ALTER TABLE mal.parted ATTACH PARTITION taskflow.node_runs FOR VALUES IN (1)},
	q{ALTER TABLE mal.parted DETACH PARTITION taskflow.runs},
	q{ALTER TABLE mal.parted DETACH PARTITION taskflow.flows FINALIZE},
	q{CREATE TRIGGER t AFTER INSERT ON taskflow.flows FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()},
	q{CREATE TRIGGER t AFTER INSERT ON taskflow.edges FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()},
	q{CREATE RULE r AS ON INSERT TO taskflow.flows DO NOTHING},
	q{CREATE RULE r AS ON INSERT TO taskflow.runs DO NOTHING},
	q{DO $$BEGIN EXECUTE 'CREATE TABLE mal.p4 PARTITION OF taskflow.flows FOR VALUES IN (2)'; END$$})
{
	$b->query($stmt);
	ok($b->{stderr} =~ /(?:must be owner of|permission denied for) table \w+/
		  && $b->{stderr} !~ /lock timeout/,
		"refused before any lock: $stmt") or diag($b->{stderr});
	$b->{stderr} = '';
	is(q1(q{SELECT count(*) FROM pg_locks WHERE NOT granted}), '0', "no lock request waits: $stmt");
}
ok(beats_go_on(2), 'alice\'s flow goes on');

# 3. what stays allowed: the role's own tables, a superuser
$b->query_safe(q{CREATE TABLE mal.own (id bigint PRIMARY KEY)});
$b->query_safe(q{CREATE TABLE mal.ref (x bigint REFERENCES mal.own (id))});
$b->query_safe(q{CREATE TABLE mal.p5 PARTITION OF mal.parted FOR VALUES IN (5)});
$b->query_safe(q{CREATE TABLE mal.like_flows (LIKE taskflow.flows)});
$b->quit;
$hold->query_safe(q{ROLLBACK});
$hold->quit;
q1(q{CREATE TABLE public.su_ref (x bigint REFERENCES taskflow.flows (id)); DROP TABLE public.su_ref});
pass('a superuser may still reference the catalog');

$node->stop;
done_testing();
