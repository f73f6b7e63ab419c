# A plain role's direct inserts (1.7, src/define_direct.c) follow what OTHER
# sessions change, at once: a session of the plain role defines flows (the
# shipped policies: directly, without statements), then a superuser in
# another session commits
#  - a stricter WITH CHECK on flows, a restrictive policy on nodes,
#  - a column privilege revoked from PUBLIC, and one held only through a
#    role membership that is then revoked;
# and the plain role's very next apply_flow obeys each (refused with the
# error of an INSERT, or taken by the INSERT statements), nothing left behind;
# once the shipped policy is back, the direct form again.
# (test/sql/define5_rls.sql has the same within one session.)
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use TaskflowTest;

my $node = TaskflowTest->start_node('define5_rls');

sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1(q{
CREATE ROLE d5p LOGIN;
CREATE ROLE d5grp;
CREATE FUNCTION public.d5_try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION public.d5_try(text) TO PUBLIC;
-- statements on flows, counted (the direct form makes none)
CREATE TABLE public.d5_stmts (n int);
GRANT INSERT, SELECT ON public.d5_stmts TO PUBLIC;
CREATE FUNCTION public.d5_stmt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.d5_stmts VALUES (1);
    RETURN NULL;
END $$;
CREATE TRIGGER zz_d5_stmt AFTER INSERT ON taskflow.flows FOR EACH STATEMENT
    EXECUTE FUNCTION public.d5_stmt();
ALTER TABLE taskflow.flows ENABLE ALWAYS TRIGGER zz_d5_stmt;
});

my $bg = $node->background_psql('postgres');
$bg->query_safe('SET ROLE d5p');

sub apply
{
	my ($name, $body) = @_;
	$body //= 'SELECT 1';
	my $out = $bg->query_safe(
		qq{SELECT public.d5_try(\$q\$SELECT taskflow.apply_flow('{"flow": {"name": "$name"}, "nodes": {"a": {"kind": "sql", "body": "$body"}}}')\$q\$)});
	chomp $out;
	return $out;
}
sub statements { return q1('SELECT count(*) FROM public.d5_stmts'); }
sub exists_flow { return q1("SELECT count(*) FROM taskflow.flows WHERE name = '$_[0]'"); }

# warm: the shipped policies, directly
is(apply('d5_a'), 'ok', 'the plain role defines a flow');
is(apply('d5_b'), 'ok', 'and another');
is(statements(), '0', 'directly: no INSERT statement on flows');
is(q1("SELECT owner::text FROM taskflow.flows WHERE name = 'd5_b'"), 'd5p', 'owned by the plain role');

# a stricter WITH CHECK, committed by another session
q1(q{ALTER POLICY flows_member ON taskflow.flows
       WITH CHECK (taskflow._is_member(owner) AND name NOT LIKE 'd5\_deny%')});
like(apply('d5_deny1'), qr/^42501 new row violates row-level security policy for table "flows"/,
	'a stricter WITH CHECK from another session applies at once');
is(exists_flow('d5_deny1'), '0', 'nothing left behind');
is(apply('d5_c'), 'ok', 'an allowed name is defined');
is(statements(), '1', 'by the INSERT statement (the policy is not the shipped one)');
q1(q{ALTER POLICY flows_member ON taskflow.flows WITH CHECK (taskflow._is_member(owner))});
is(apply('d5_d'), 'ok', 'the shipped policy back');
is(statements(), '1', 'directly again');

# a restrictive policy on nodes
q1(q{CREATE POLICY d5_no_666 ON taskflow.nodes AS RESTRICTIVE FOR INSERT
       WITH CHECK (body IS DISTINCT FROM 'SELECT 666')});
like(apply('d5_e', 'SELECT 666'), qr/^42501 new row violates row-level security policy "d5_no_666" for table "nodes"/,
	'a restrictive policy on nodes from another session applies at once');
is(exists_flow('d5_e'), '0', 'nothing left behind');
is(apply('d5_f', 'SELECT 7'), 'ok', 'another body passes it');
q1(q{DROP POLICY d5_no_666 ON taskflow.nodes});

# a column privilege revoked from PUBLIC, then held through a role only
q1(q{REVOKE INSERT (priority) ON taskflow.flows FROM PUBLIC});
like(apply('d5_g'), qr/^42501 permission denied for table flows/,
	'a column privilege revoked in another session applies at once');
is(exists_flow('d5_g'), '0', 'nothing left behind');
q1(q{GRANT INSERT (priority) ON taskflow.flows TO d5grp; GRANT d5grp TO d5p});
is(apply('d5_h'), 'ok', 'the privilege through a role');
is(apply('d5_i'), 'ok', 'again (the check that passed is kept)');
q1(q{REVOKE d5grp FROM d5p});
like(apply('d5_j'), qr/^42501 permission denied for table flows/,
	'the role membership revoked in another session applies at once');
is(exists_flow('d5_j'), '0', 'nothing left behind');
q1(q{GRANT INSERT (priority) ON taskflow.flows TO PUBLIC; REVOKE INSERT (priority) ON taskflow.flows FROM d5grp});
is(apply('d5_k'), 'ok', 'the privilege back');
is(statements(), '1', 'every successful definition since the shipped policy came back was direct');

$bg->quit;
q1(q{
DROP TRIGGER zz_d5_stmt ON taskflow.flows;
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'd5\_%';
});
is(q1(q{SELECT count(*) FROM taskflow.flows WHERE name LIKE 'd5\_%'}), '0', 'cleaned up');

done_testing();
