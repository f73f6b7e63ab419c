-- Review of what 1.3 added, as an attacker (a plain role with the grants
-- every role has): the findings and their fixes (docs/security.md).
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_a13_alice;
CREATE ROLE regress_a13_mallory;
CREATE SCHEMA regress_a13_mal AUTHORIZATION regress_a13_mallory;

------------------------------------------------------------------------------
-- 1. taskflow.event_triggers is not security_invoker (it shows the upstream
-- flow's name across owners) and was no security barrier: a reader's cheap
-- function in the WHERE clause was pushed down to the scan of all flows and
-- saw every flow's name and owner.  Now a security barrier.
------------------------------------------------------------------------------
SET ROLE regress_a13_alice;
SELECT taskflow.create_flow('a13_secret_up') > 0 AS created,
       taskflow.create_flow('a13_secret_down') > 0 AS created,
       taskflow.create_flow('a13_unlinked') > 0 AS created;
SELECT taskflow.add_flow_trigger('a13_secret_down', 'a13_secret_up');
SELECT flow, upstream, upstream_owner, allowed FROM taskflow.event_triggers;
RESET ROLE;

SET ROLE regress_a13_mallory;
CREATE TABLE regress_a13_mal.seen (what text);
CREATE FUNCTION regress_a13_mal.leak(a text, b text) RETURNS boolean
LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
    INSERT INTO regress_a13_mal.seen VALUES (a || ' / ' || b);
    RETURN true;
END $$;
SELECT count(*) FROM taskflow.event_triggers
 WHERE regress_a13_mal.leak(upstream, upstream_owner::text);
SELECT count(*) FROM taskflow.event_triggers
 WHERE regress_a13_mal.leak(flow, upstream);
-- nothing of alice's was seen
SELECT count(*) AS leaked FROM regress_a13_mal.seen;
RESET ROLE;
SELECT (SELECT reloptions FROM pg_class WHERE oid = 'taskflow.event_triggers'::regclass) AS options;

------------------------------------------------------------------------------
-- 2. apply_flow: a node name in an edge or in "after" is checked before it
-- becomes part of a "from>to" key: {"from": "a>b", "to": "c"} made the edge
-- a -> b that nobody asked for.  Now 42602 (the name rule), nothing changed.
------------------------------------------------------------------------------
SET ROLE regress_a13_alice;
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "a13_gt"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 1"},
            "c": {"kind": "sql", "body": "SELECT 1"}},
  "edges": [{"from": "a>b", "to": "c"}]}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "a13_gt"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 1"},
            "c": {"kind": "sql", "body": "SELECT 1", "after": ["a>b"]}}}') $$);
SELECT count(*) AS flows FROM taskflow.flows WHERE name = 'a13_gt';
-- the valid form still works
SELECT taskflow.apply_flow('{"flow": {"name": "a13_gt"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 1"},
            "c": {"kind": "sql", "body": "SELECT 1", "after": ["b"]}},
  "edges": [{"from": "a", "to": "b"}]}') AS version;
SELECT taskflow.flow_definition('a13_gt')->'edges' AS edges;
-- another owner's flow: "does not exist", nothing learnt, nothing changed
RESET ROLE;
SET ROLE regress_a13_mallory;
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "a13_gt", "owner": "regress_a13_mallory"},
  "nodes": {"x": {"kind": "sql", "body": "SELECT 1"}}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "a13_m", "owner": "regress_a13_alice"}}') $$);
RESET ROLE;
SELECT owner, (SELECT count(*) FROM taskflow.nodes n WHERE n.flow_id = f.id) AS nodes
  FROM taskflow.flows f WHERE name = 'a13_gt';

------------------------------------------------------------------------------
-- 3. search_path sweep: every function of schema taskflow either is C or
-- pins search_path = pg_catalog, pg_temp; the only exception is
-- taskflow._is_member (inlined into the policies, every name qualified).
-- SECURITY DEFINER functions: pinned and not executable by PUBLIC.
------------------------------------------------------------------------------
SELECT p.oid::regprocedure AS unpinned, l.lanname
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'taskflow'::regnamespace AND l.lanname <> 'c'
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
 ORDER BY 1;
SELECT p.oid::regprocedure AS definer,
       'search_path=pg_catalog, pg_temp' = ANY (p.proconfig) AS pinned,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec
  FROM pg_proc p
 WHERE p.pronamespace = 'taskflow'::regnamespace AND p.prosecdef
 ORDER BY 1;
-- the worker's owner check is internal
SELECT has_function_privilege('regress_a13_mallory', 'taskflow._node_owner(bigint)', 'EXECUTE') AS mallory_may_call;

RESET ROLE;
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'a13\_%' ORDER BY name;
DROP SCHEMA regress_a13_mal CASCADE;
DROP ROLE regress_a13_alice, regress_a13_mallory;
