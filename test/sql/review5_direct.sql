-- Review of 1.7 (docs/security.md): the direct catalog inserts a plain role's
-- create_flow / add_node / apply_flow take (src/define_direct.c, 1.7) accept
-- and refuse exactly what the statement path does.  Every definition below
-- runs as a plain role twice in one transaction: through the direct inserts
-- (the shipped policies), then with the three policies replaced by
-- equivalent text (... AND true: the direct path is not taken, every call
-- runs the statements and their policies and guard triggers); each attempt
-- is rolled back (regress_r5d.try raises at the end), and the two results
-- must be the same for every definition.  Nothing is left changed.
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_r5d_user;
CREATE ROLE regress_r5d_team;
CREATE ROLE regress_r5d_other;
GRANT regress_r5d_team TO regress_r5d_user;
CREATE SCHEMA regress_r5d;
GRANT USAGE ON SCHEMA regress_r5d TO PUBLIC;
-- the outcome of cmd, its work rolled back (ids left out: sequences move on)
CREATE FUNCTION regress_r5d.try(cmd text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE st text; msg text; r text;
BEGIN
    BEGIN
        EXECUTE cmd INTO r;
        RAISE EXCEPTION 'regress_r5d ok' USING ERRCODE = 'P0099';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        RETURN CASE WHEN st = 'P0099' THEN 'ok' ELSE st || ': ' || msg END;
    END;
END $f$;
CREATE TABLE regress_r5d.cases (n serial, cmd text);
INSERT INTO regress_r5d.cases (cmd) VALUES
($$SELECT taskflow.create_flow('d1', owner => 'postgres')::text$$),
($$SELECT taskflow.create_flow('d1', owner => 'regress_r5d_team')::text$$),
($$SELECT taskflow.create_flow('d1', owner => 'regress_r5d_other')::text$$),
($$SELECT taskflow.create_flow('d1', schedule => 'every 0 seconds')::text$$),
($$SELECT taskflow.create_flow('d1', timezone => 'Mars/Olympus')::text$$),
($$SELECT taskflow.create_flow('d1', max_active_runs => -1)::text$$),
($$SELECT taskflow.create_flow('d1', priority => 99)::text$$),
($$SELECT taskflow.create_flow('', schedule => NULL)::text$$),
($$SELECT taskflow.create_flow(repeat('x', 300))::text$$),
($$SELECT taskflow.create_flow('d1', suspend_after_failures => -3)::text$$),
($$SELECT taskflow.create_flow('d1', start_date => '2030-01-01', end_date => '2020-01-01')::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', NULL))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'nosuchkind', 'x'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', 'SELECT 1', retries => -1))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', 'SELECT 1', timeout => '-1 s'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', 'SELECT 1', after => '{zz}'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', 'SELECT 1', trigger_rule => 'bogus'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', 'SELECT 1', options => '{"database": "template1"}'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', 'SELECT 1', options => '{"bogus": 1}'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', 'SELECT 1', options => '[1]'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'bad name!', 'sql', 'SELECT 1'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'wait', 'SELECT 1', options => '{"poll_interval": "-5 s"}'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'sql', 'SELECT 1', finalizer => true, after => '{}'))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'notify', NULL))::text$$),
($$SELECT (taskflow.create_flow('d1') + taskflow.add_node('d1', 'n', 'archive', 'x'))::text$$),
($$SELECT taskflow.apply_flow('{"owner":"postgres","nodes":{"a":{"kind":"sql","body":"SELECT 1"}}}', 'd2')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1","after":["b"]},"b":{"kind":"sql","body":"SELECT 1","after":["a"]}}}', 'd2')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1","after":["zz"]}}}', 'd2')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1","options":{"database":"template1"}}}}', 'd2')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"archive","body":"x"}}}', 'd2')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1"}}}', 'regress_r5d_other_flow')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1","retries":-2}}}', 'd2')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1"}}}', 'd2')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1"},"b":{"kind":"sql","body":"SELECT 2","after":["a"]}}}', 'regress_r5d_own_flow')::text$$),
($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1"}}}', 'bad name!')::text$$),
($$SELECT (taskflow.create_flow('d3', owner => 'regress_r5d_team') + taskflow.add_node('d3', 'n', 'sql', 'SELECT 1'))::text$$),
($$SELECT taskflow.add_node('regress_r5d_other_flow', 'n2', 'sql', 'SELECT 1')::text$$),
($$SELECT taskflow.add_node('regress_r5d_own_flow', 'n2', 'sql', 'SELECT 1', after => '{x}')::text$$),
($$SELECT taskflow.add_node('regress_r5d_own_flow', 'x', 'sql', 'SELECT 1')::text$$);
CREATE TABLE regress_r5d.results (n int, path text, result text);
GRANT SELECT ON regress_r5d.cases TO PUBLIC;
GRANT INSERT ON regress_r5d.results TO PUBLIC;
SET ROLE regress_r5d_other;
SELECT taskflow.create_flow('regress_r5d_other_flow') > 0 AS other;
RESET ROLE;
SET ROLE regress_r5d_user;
SELECT taskflow.apply_flow('{"nodes":{"x":{"kind":"sql","body":"SELECT 1"}}}', 'regress_r5d_own_flow') AS own;
RESET ROLE;

BEGIN;
-- (which path ran: an INSERT statement into flows fires this; the direct
-- inserts fire no statement-level trigger)
-- (sequences: try rolls every attempt back, nextval stays)
CREATE SEQUENCE regress_r5d.direct;
CREATE SEQUENCE regress_r5d.statements;
CREATE SEQUENCE regress_r5d.none;
GRANT USAGE ON SEQUENCE regress_r5d.direct, regress_r5d.statements, regress_r5d.none TO PUBLIC;
CREATE FUNCTION regress_r5d.note() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM nextval(('regress_r5d.' || current_setting('regress_r5d.path'))::regclass);
    RETURN NULL;
END $f$;
CREATE TRIGGER regress_r5d_stmt AFTER INSERT ON taskflow.flows
    FOR EACH STATEMENT EXECUTE FUNCTION regress_r5d.note();
ALTER TABLE taskflow.flows ENABLE ALWAYS TRIGGER regress_r5d_stmt;
SET LOCAL client_min_messages = error;
SET LOCAL regress_r5d.path = 'none';
SET LOCAL ROLE regress_r5d_user;
INSERT INTO regress_r5d.results SELECT n, 'direct', regress_r5d.try(cmd) FROM regress_r5d.cases ORDER BY n;
-- (a refused definition runs the statements too, for the API's exact error;
-- an accepted one of the caller's own only the direct inserts)
SET LOCAL regress_r5d.path = 'direct';
SELECT regress_r5d.try($$SELECT taskflow.create_flow('d9')::text$$) AS create_flow,
       regress_r5d.try($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1"}}}', 'd8')::text$$) AS apply_flow;
RESET ROLE;
ALTER POLICY flows_member ON taskflow.flows
    USING (taskflow._is_member(owner) AND true) WITH CHECK (taskflow._is_member(owner) AND true);
ALTER POLICY nodes_member ON taskflow.nodes
    USING ((EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = nodes.flow_id)) AND true);
ALTER POLICY edges_member ON taskflow.edges
    USING ((EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = edges.flow_id)) AND true);
SET LOCAL regress_r5d.path = 'statements';
SET LOCAL regress_r5d.path = 'none';
SET LOCAL ROLE regress_r5d_user;
INSERT INTO regress_r5d.results SELECT n, 'statements', regress_r5d.try(cmd) FROM regress_r5d.cases ORDER BY n;
SET LOCAL regress_r5d.path = 'statements';
SELECT regress_r5d.try($$SELECT taskflow.create_flow('d9')::text$$) AS create_flow,
       regress_r5d.try($$SELECT taskflow.apply_flow('{"nodes":{"a":{"kind":"sql","body":"SELECT 1"}}}', 'd8')::text$$) AS apply_flow;
RESET ROLE;
-- INSERT statements into flows for the two: none with the shipped policies
SELECT (SELECT is_called FROM regress_r5d.direct) AS direct_ran_statements,
       (SELECT is_called FROM regress_r5d.statements) AS statements_ran_statements;
SELECT count(*) AS definitions, count(*) FILTER (WHERE result = 'ok') AS accepted
  FROM regress_r5d.results WHERE path = 'direct';
-- no definition with another outcome through the statements
SELECT d.n, c.cmd, d.result AS direct, s.result AS statements
  FROM regress_r5d.results d
  JOIN regress_r5d.results s ON s.n = d.n AND s.path = 'statements'
  JOIN regress_r5d.cases c ON c.n = d.n
 WHERE d.path = 'direct' AND d.result IS DISTINCT FROM s.result;
SELECT n, left(result, 90) AS result FROM regress_r5d.results WHERE path = 'direct' ORDER BY n;
-- (the policies as shipped again)
ROLLBACK;
SELECT count(*) AS policies_as_shipped FROM pg_policy
 WHERE polrelid IN ('taskflow.flows'::regclass, 'taskflow.nodes'::regclass, 'taskflow.edges'::regclass)
   AND pg_get_expr(polqual, polrelid) NOT LIKE '%AND true%';

SELECT taskflow.drop_flow('regress_r5d_other_flow');
SELECT taskflow.drop_flow('regress_r5d_own_flow');
DROP SCHEMA regress_r5d CASCADE;
DROP ROLE regress_r5d_user;
DROP ROLE regress_r5d_team;
DROP ROLE regress_r5d_other;
