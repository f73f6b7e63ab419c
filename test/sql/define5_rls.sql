-- 1.7: a plain role's apply_flow / create_flow insert the flow, its nodes
-- and edges directly (src/define_direct.c) when the tables' row level
-- security policies are exactly the shipped ones: the flow row through the
-- policy's own WITH CHECK, the nodes and edges as rows of the flow just
-- inserted.  Checked here: which form a plain role gets (a statement-level
-- ALWAYS trigger sees statements, a row-level one every row), the same rows
-- and history as the API path, and that nothing it could not insert by an
-- INSERT gets in: a policy made stricter (changed, added, restrictive), a
-- policy function replaced, another owner, column privileges revoked,
-- SELECT revoked, row_security off -- each at once, in the same session.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- (the ids this file takes are handed back at the end: later files show ids)
CREATE TABLE public.d5_seqs AS
  SELECT c.oid::regclass AS seq, pg_sequence_last_value(c.oid) AS last_value
    FROM pg_class c WHERE c.relkind = 'S' AND c.relnamespace = 'taskflow'::regnamespace;

CREATE FUNCTION public.d5_err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION public.d5_err(text) TO PUBLIC;

CREATE TABLE public.d5_log (n serial, tab text, lvl text, who text);
GRANT INSERT, SELECT ON public.d5_log TO PUBLIC;
GRANT USAGE ON SEQUENCE public.d5_log_n_seq TO PUBLIC;
CREATE FUNCTION public.d5_seen() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.d5_log (tab, lvl, who) VALUES (TG_TABLE_NAME, TG_LEVEL, current_user);
    RETURN NULL;
END $$;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['flows', 'nodes', 'edges'] LOOP
        EXECUTE format('CREATE TRIGGER zz_d5_stmt AFTER INSERT ON taskflow.%I FOR EACH STATEMENT EXECUTE FUNCTION public.d5_seen()', t);
        EXECUTE format('ALTER TABLE taskflow.%I ENABLE ALWAYS TRIGGER zz_d5_stmt', t);
        EXECUTE format('CREATE TRIGGER zz_d5_row AFTER INSERT ON taskflow.%I FOR EACH ROW EXECUTE FUNCTION public.d5_seen()', t);
        EXECUTE format('ALTER TABLE taskflow.%I ENABLE ALWAYS TRIGGER zz_d5_row', t);
    END LOOP;
END $$;
CREATE VIEW public.d5_forms AS
  SELECT tab, lvl, who, count(*) FROM public.d5_log GROUP BY 1, 2, 3 ORDER BY 1, 2;

CREATE ROLE d5_plain;
CREATE ROLE d5_other;
SELECT taskflow.create_flow('d5_su') > 0 AS created;
TRUNCATE public.d5_log;
-- the role is plain: row level security applies to it on all three tables
SET ROLE d5_plain;
SELECT c.relname, row_security_active(c.oid) FROM pg_class c
 WHERE c.oid IN ('taskflow.flows'::regclass, 'taskflow.nodes'::regclass, 'taskflow.edges'::regclass) ORDER BY 1;

-- 1. the shipped policies: every row directly (row triggers, no statement)
SELECT taskflow.apply_flow('{"flow": {"name": "d5_a", "schedule": "0 5 * * *", "timezone": "Asia/Shanghai"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]},
            "c": {"kind": "sql", "body": "SELECT 3", "after": ["a", "b"]}}}') > 0 AS defined;
SELECT taskflow.create_flow('d5_cf', schedule => '0 5 * * *') > 0 AS created;
RESET ROLE;
SELECT * FROM public.d5_forms;
TRUNCATE public.d5_log;
-- the same flow and history as the API path gives the same role
SET ROLE d5_plain;
SELECT taskflow._apply_flow_api('{"flow": {"name": "d5_api", "schedule": "0 5 * * *", "timezone": "Asia/Shanghai"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]},
            "c": {"kind": "sql", "body": "SELECT 3", "after": ["a", "b"]}}}') > 0 AS defined;
SELECT count(DISTINCT (taskflow.flow_definition(name) - '{version,flow}'::text[])::text) AS definitions,
       count(DISTINCT (taskflow.flow_definition(name) -> 'flow') - 'name') AS flow_settings
  FROM taskflow.flows WHERE name IN ('d5_a', 'd5_api');
SELECT count(DISTINCT h.changes) AS histories, min(h.n) AS changes, min(h.owner::text) AS owner,
       min(h.session_role) AS session_role, min(h.changed_by) AS changed_by, max(h.version) AS version
  FROM (SELECT f.name, f.owner, v.version, v.session_role, v.changed_by, count(*) AS n,
               array_agg(c.kind || ':' || c.op || ':' || (c.new - '{id,name,from_node,to_node}'::text[])::text ORDER BY c.id) AS changes
          FROM taskflow.flows f JOIN taskflow.flow_versions v ON v.flow_id = f.id
          JOIN taskflow.definition_changes c ON c.flow_id = f.id AND c.version = v.version
         WHERE f.name IN ('d5_a', 'd5_api') GROUP BY 1, 2, 3, 4, 5) h;
RESET ROLE;
-- another plain role does not see them
SET ROLE d5_other;
SELECT count(*) AS seen_by_other FROM taskflow.flows WHERE name LIKE 'd5\_%';
RESET ROLE;
TRUNCATE public.d5_log;

-- 2. a stricter WITH CHECK on flows, changed by a superuser after the path
-- has looked at the policies: applies at once (the statements, their error)
BEGIN;
ALTER POLICY flows_member ON taskflow.flows
  WITH CHECK (taskflow._is_member(owner) AND name NOT LIKE 'd5\_no%');
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no1"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
SELECT public.d5_err($$SELECT taskflow.create_flow('d5_no2')$$);
SELECT taskflow.apply_flow('{"flow": {"name": "d5_yes1"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}') > 0 AS defined;
RESET ROLE;
SELECT * FROM public.d5_forms;
SELECT name FROM taskflow.flows WHERE name LIKE 'd5\_no%' OR name = 'd5_yes1';
ROLLBACK;
-- and after the rollback, the direct form again
SET ROLE d5_plain;
SELECT taskflow.apply_flow('{"flow": {"name": "d5_b"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}') > 0 AS defined;
RESET ROLE;
SELECT * FROM public.d5_forms;
TRUNCATE public.d5_log;

-- 3. a restrictive policy added to nodes (and one to edges): applies at once
BEGIN;
CREATE POLICY d5_no_shell ON taskflow.nodes AS RESTRICTIVE FOR INSERT
  WITH CHECK (body NOT LIKE '%d5_forbidden%');
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no3"}, "nodes": {"a": {"kind": "sql", "body": "SELECT ''d5_forbidden''"}}}')$$);
SELECT taskflow.apply_flow('{"flow": {"name": "d5_yes2"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}') > 0 AS defined;
RESET ROLE;
SELECT * FROM public.d5_forms;
ROLLBACK;
TRUNCATE public.d5_log;
BEGIN;
CREATE POLICY d5_no_edges ON taskflow.edges AS RESTRICTIVE FOR INSERT WITH CHECK (false);
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no4"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}')$$);
-- (a flow without edges is still fine)
SELECT taskflow.apply_flow('{"flow": {"name": "d5_yes3"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}') > 0 AS defined;
RESET ROLE;
SELECT name FROM taskflow.flows WHERE name LIKE 'd5\_no%' OR name = 'd5_yes3';
ROLLBACK;
-- a policy only for the role, permissive: any change to the set falls back
BEGIN;
CREATE POLICY d5_more ON taskflow.flows FOR SELECT TO d5_plain USING (true);
SET LOCAL ROLE d5_plain;
SELECT taskflow.apply_flow('{"flow": {"name": "d5_yes4"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}') > 0 AS defined;
RESET ROLE;
SELECT * FROM public.d5_forms;
ROLLBACK;
TRUNCATE public.d5_log;

-- 4. the policy's function replaced (the WITH CHECK prepared by the path
-- inlines it): the new body decides at once
BEGIN;
CREATE OR REPLACE FUNCTION taskflow._is_member(owner regrole) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT pg_catalog.pg_has_role(CURRENT_USER, owner::pg_catalog.oid, 'MEMBER'::pg_catalog.text)
          AND pg_catalog.current_setting('d5.deny', true) IS DISTINCT FROM 'on' $$;
SET LOCAL d5.deny = 'on';
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no5"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
SELECT public.d5_err($$SELECT taskflow.create_flow('d5_no5')$$);
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'd5_no5';
ROLLBACK;

-- 4b. EXECUTE on the policy's function revoked (an INSERT evaluates the
-- policy with the caller's privileges): refused as by the API path, also
-- right after another role, which may execute it, has defined a flow
BEGIN;
REVOKE EXECUTE ON FUNCTION taskflow._is_member(regrole) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow._is_member(regrole) TO d5_other;
SET LOCAL ROLE d5_other;
SELECT taskflow.apply_flow('{"flow": {"name": "d5_oth"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}') > 0 AS defined;
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no12"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$) LIKE '42501%' AS refused,
       public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no12"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$)
     = public.d5_err($$SELECT taskflow._apply_flow_api('{"flow": {"name": "d5_no12"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$) AS same_error;
SELECT public.d5_err($$SELECT taskflow.create_flow('d5_no12')$$) LIKE '42501%' AS refused;
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'd5_no12';
ROLLBACK;

-- 5. a row for another owner: refused, as by the API path
SET ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no6", "owner": "d5_other"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$)
     = public.d5_err($$SELECT taskflow._apply_flow_api('{"flow": {"name": "d5_no6", "owner": "d5_other"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$) AS same_error;
SELECT public.d5_err($$SELECT taskflow.create_flow('d5_no6', owner => 'd5_other')$$) LIKE '42501%' AS refused;
-- nor can the role define nodes in a flow it does not own
SELECT public.d5_err($$SELECT taskflow.add_node('d5_su', 'x', 'sql', 'SELECT 1')$$) AS other_flow;
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'd5_no6';

-- 6. column privileges revoked: the error an INSERT raises, nothing left
BEGIN;
REVOKE INSERT (priority) ON taskflow.flows FROM PUBLIC;
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no7"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
SELECT public.d5_err($$SELECT taskflow.create_flow('d5_no7')$$);
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'd5_no7';
ROLLBACK;
BEGIN;
REVOKE INSERT (timeout) ON taskflow.nodes FROM PUBLIC;
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no8"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'd5_no8';
ROLLBACK;
BEGIN;
REVOKE INSERT ON taskflow.edges FROM PUBLIC;
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no9"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}')$$);
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'd5_no9';
ROLLBACK;
-- SELECT revoked (the INSERT ... RETURNING of the statements reads the row):
-- the same answer as the API path's
BEGIN;
REVOKE SELECT ON taskflow.flows FROM PUBLIC;
SET LOCAL ROLE d5_plain;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no10"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$) LIKE '42501%' AS refused;
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'd5_no10';
ROLLBACK;

-- 7. row_security off: an INSERT refuses, so does the path
SET ROLE d5_plain;
SET row_security = off;
SELECT public.d5_err($$SELECT taskflow.apply_flow('{"flow": {"name": "d5_no11"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$) LIKE '42501%' AS refused;
RESET row_security;
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'd5_no11';

-- 8. after all that, the shipped policies again: the direct form again
TRUNCATE public.d5_log;
SET ROLE d5_plain;
SELECT taskflow.apply_flow('{"flow": {"name": "d5_c"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}') > 0 AS defined;
RESET ROLE;
SELECT * FROM public.d5_forms;
SELECT current_setting('session_replication_role') AS role, taskflow._define_internal() AS flag;

-- 9. the literal form as a plain role (create_flow directly; add_node by its
-- statements, the flow's last version read as the history is written): the
-- same rows and versions as the API functions, one add_node per
-- transaction and two in one
SET ROLE d5_plain;
SELECT taskflow.create_flow('d5_lit', schedule => '0 5 * * *') > 0 AS created;
SELECT taskflow.add_node('d5_lit', 'a', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow.add_node('d5_lit', 'b', 'sql', 'SELECT 2', after => ARRAY['a']) > 0 AS added;
BEGIN;
SELECT taskflow.add_node('d5_lit', 'c', 'sql', 'SELECT 3', after => ARRAY['a']) > 0 AS added;
SELECT taskflow.add_node('d5_lit', 'd', 'sql', 'SELECT 4', after => ARRAY['b', 'c']) > 0 AS added;
COMMIT;
SELECT taskflow._create_flow_api('d5_lita', schedule => '0 5 * * *') > 0 AS created;
SELECT taskflow._add_node_api('d5_lita', 'a', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow._add_node_api('d5_lita', 'b', 'sql', 'SELECT 2', after => ARRAY['a']) > 0 AS added;
BEGIN;
SELECT taskflow._add_node_api('d5_lita', 'c', 'sql', 'SELECT 3', after => ARRAY['a']) > 0 AS added;
SELECT taskflow._add_node_api('d5_lita', 'd', 'sql', 'SELECT 4', after => ARRAY['b', 'c']) > 0 AS added;
COMMIT;
SELECT count(DISTINCT (taskflow.flow_definition(name) - '{version,flow}'::text[])::text) AS definitions
  FROM taskflow.flows WHERE name IN ('d5_lit', 'd5_lita');
SELECT f.name, array_agg(v.version || ':' || v.changed_by || ':' ||
         (SELECT count(*) FROM taskflow.definition_changes c WHERE c.flow_id = f.id AND c.version = v.version)
         ORDER BY v.version) AS versions
  FROM taskflow.flows f JOIN taskflow.flow_versions v ON v.flow_id = f.id
 WHERE f.name IN ('d5_lit', 'd5_lita') GROUP BY 1 ORDER BY 1;
RESET ROLE;

-- clean up
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['flows', 'nodes', 'edges'] LOOP
        EXECUTE format('DROP TRIGGER zz_d5_stmt ON taskflow.%I', t);
        EXECUTE format('DROP TRIGGER zz_d5_row ON taskflow.%I', t);
    END LOOP;
END $$;
SELECT count(*) > 0 AS dropped FROM (SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'd5\_%') d;
DROP VIEW public.d5_forms;
DROP TABLE public.d5_log;
DROP FUNCTION public.d5_seen();
DROP FUNCTION public.d5_err(text);
DROP ROLE d5_plain;
DROP ROLE d5_other;
SELECT count(*) > 0 AS ids_back
  FROM (SELECT CASE WHEN last_value IS NULL THEN setval(seq, 1, false) ELSE setval(seq, last_value) END
          FROM public.d5_seqs) s;
DROP TABLE public.d5_seqs;
