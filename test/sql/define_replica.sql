-- The C create path (src/define_create.c, run_plan) writes its own catalog
-- rows with SessionReplicationRole = replica (the C variable, not the GUC),
-- so that PostgreSQL skips every ORIGIN-enabled trigger of those tables,
-- the foreign-key checks included.  Checked here: what that relies on (no
-- rules; the triggers and foreign keys it skips are the known ones), that
-- the role is replica only inside its own statements and origin again after
-- them (also after errors, rethrown or handed to the API path), that what
-- is not a trigger still applies, that add_node locks the upstream nodes as
-- the foreign-key check would, and that a plain role reaches none of it.
SET timezone = 'UTC';
SET track_functions = 'all';
\set SHOW_CONTEXT never
\set VERBOSITY terse

-- what the path relies on: no rules on the tables it writes (the GUC's
-- assign hook resets the plan cache for rules that fire by replication role)
SELECT count(*) AS rules FROM pg_rewrite
 WHERE ev_class IN ('taskflow.flows'::regclass, 'taskflow.nodes'::regclass, 'taskflow.edges'::regclass,
                    'taskflow.flow_versions'::regclass, 'taskflow.definition_changes'::regclass);
-- the triggers on INSERT or UPDATE of those tables that it skips: all of them
-- ORIGIN-enabled, and each one's work done by define_create.c itself (a new
-- trigger here would be skipped by that path too: do its work there as well)
SELECT tgrelid::regclass AS "table", tgname, tgenabled
  FROM pg_trigger
 WHERE tgrelid IN ('taskflow.flows'::regclass, 'taskflow.nodes'::regclass, 'taskflow.edges'::regclass,
                   'taskflow.flow_versions'::regclass, 'taskflow.definition_changes'::regclass)
   AND NOT tgisinternal AND (tgtype & (4 | 16)) <> 0
 ORDER BY 1::text, 2;
-- the foreign keys whose checks it skips (their parent rows are its own or
-- locked by it; see run_plan)
SELECT conrelid::regclass AS "table", conname FROM pg_constraint
 WHERE contype = 'f'
   AND conrelid IN ('taskflow.flows'::regclass, 'taskflow.nodes'::regclass, 'taskflow.edges'::regclass,
                    'taskflow.flow_versions'::regclass, 'taskflow.definition_changes'::regclass)
 ORDER BY 1::text, 2;

-- what the writes of the C path see: an ALWAYS trigger fires under the
-- replica role (an ORIGIN one does not), and logs the role and the flag
CREATE TABLE public.dr_log (n serial, tab text, trg text, role text, flag boolean);
GRANT INSERT, SELECT ON public.dr_log TO PUBLIC;
GRANT USAGE ON SEQUENCE public.dr_log_n_seq TO PUBLIC;
CREATE FUNCTION public.dr_seen() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.dr_log (tab, trg, role, flag)
    VALUES (TG_TABLE_NAME, TG_NAME, current_setting('session_replication_role'), taskflow._define_internal());
    IF to_jsonb(NEW)->>'name' = 'boom' THEN
        RAISE EXCEPTION 'boom';
    ELSIF to_jsonb(NEW)->>'name' = 'cancel' THEN
        RAISE EXCEPTION 'cancelled' USING ERRCODE = 'query_canceled';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER zz_dr_always BEFORE INSERT ON taskflow.nodes FOR EACH ROW EXECUTE FUNCTION public.dr_seen();
ALTER TABLE taskflow.nodes ENABLE ALWAYS TRIGGER zz_dr_always;
CREATE TRIGGER zz_dr_origin BEFORE INSERT ON taskflow.nodes FOR EACH ROW EXECUTE FUNCTION public.dr_seen();
CREATE TRIGGER zz_dr_always BEFORE INSERT ON taskflow.definition_changes FOR EACH ROW EXECUTE FUNCTION public.dr_seen();
ALTER TABLE taskflow.definition_changes ENABLE ALWAYS TRIGGER zz_dr_always;

-- the C path: apply_flow, create_flow, add_node (one node with an edge)
SELECT taskflow.apply_flow('{"flow": {"name": "dr_a"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}');
SELECT taskflow.create_flow('dr_b') > 0 AS created, taskflow.add_node('dr_b', 'a', 'sql', 'SELECT 1') > 0 AS a,
       taskflow.add_node('dr_b', 'b', 'sql', 'SELECT 2', after => ARRAY['a']) > 0 AS b;
SELECT tab, trg, role, flag, count(*) FROM public.dr_log GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3;
-- ... and back to origin after them
SHOW session_replication_role;
SELECT taskflow._define_internal() AS flag;
TRUNCATE public.dr_log;
-- the API path (a finalizer): apply_flow calls create_flow and add_node,
-- whose C paths take the flow and node a; node z (a finalizer) is written
-- by the PL/pgSQL path, its ORIGIN triggers fire, under origin
SELECT taskflow.apply_flow('{"flow": {"name": "dr_c"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"},
                             "z": {"kind": "sql", "body": "SELECT 2", "finalizer": true}}}');
SELECT tab, trg, role, flag, count(*) FROM public.dr_log GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3;
TRUNCATE public.dr_log;

-- an error inside the C path's insert: handed to the API path (which gets
-- the same error from the trigger), or rethrown as it is (a cancel); the
-- role and the flag are restored either way, nothing is left
SELECT taskflow.apply_flow('{"flow": {"name": "dr_boom"}, "nodes": {"boom": {"kind": "sql", "body": "SELECT 1"}}}');
SHOW session_replication_role;
SELECT taskflow.apply_flow('{"flow": {"name": "dr_cancel"}, "nodes": {"cancel": {"kind": "sql", "body": "SELECT 1"}}}');
SHOW session_replication_role;
SELECT taskflow._define_internal() AS flag;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name IN ('dr_boom', 'dr_cancel');
-- the same inside a transaction that goes on, then a direct write in it:
-- the ORIGIN triggers fire on it again
BEGIN;
SAVEPOINT s;
SELECT taskflow.add_node('dr_b', 'cancel', 'sql', 'SELECT 1');
ROLLBACK TO SAVEPOINT s;
SHOW session_replication_role;
TRUNCATE public.dr_log;
INSERT INTO taskflow.nodes (flow_id, name, kind, body)
SELECT id, 'x', 'sql', 'SELECT 1' FROM taskflow.flows WHERE name = 'dr_b';
SELECT tab, trg, role, flag, count(*) FROM public.dr_log GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3;
ROLLBACK;
DROP TRIGGER zz_dr_always ON taskflow.nodes;
DROP TRIGGER zz_dr_origin ON taskflow.nodes;
DROP TRIGGER zz_dr_always ON taskflow.definition_changes;

-- add_node locks its upstream nodes FOR KEY SHARE (the lock of the skipped
-- foreign-key check of its edges): held by this transaction until it ends
BEGIN;
SELECT taskflow.add_node('dr_b', 'c', 'sql', 'SELECT 3', after => ARRAY['b']) > 0 AS c;
SELECT n.name, taskflow._row_is_mine(n.xmax) AS locked_by_me
  FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'dr_b' ORDER BY 1;
COMMIT;
-- what is not a trigger still applies to the C path's rows: the unique
-- name (a flow of that name exists but is not the caller's: see below)
-- and, nothing dangling: every edge's nodes, node's flow, change's version
SELECT (SELECT count(*) FROM taskflow.edges e WHERE NOT EXISTS
          (SELECT 1 FROM taskflow.nodes n WHERE n.flow_id = e.flow_id AND n.id IN (e.from_node, e.to_node)
           HAVING count(*) = 2)) AS dangling_edges,
       (SELECT count(*) FROM taskflow.nodes n WHERE NOT EXISTS
          (SELECT 1 FROM taskflow.flows f WHERE f.id = n.flow_id)) AS dangling_nodes,
       (SELECT count(*) FROM taskflow.definition_changes c WHERE NOT EXISTS
          (SELECT 1 FROM taskflow.flow_versions v WHERE v.flow_id = c.flow_id AND v.version = c.version)) AS dangling_changes;

-- add_node reads the flow's last version with its node's insert: a new
-- version in a new transaction, the transaction's own in the same one; the
-- same history as the PL/pgSQL path's
SELECT taskflow.create_flow('dr_vc') > 0 AS c, taskflow._create_flow_api('dr_vp') > 0 AS p;
SELECT taskflow.add_node('dr_vc', 'a', 'sql', 'SELECT 1') > 0 AS c, taskflow._add_node_api('dr_vp', 'a', 'sql', 'SELECT 1') > 0 AS p;
BEGIN;
SELECT taskflow.add_node('dr_vc', 'b', 'sql', 'SELECT 2', after => ARRAY['a']) > 0 AS c;
SELECT taskflow.add_node('dr_vc', 'c', 'sql', 'SELECT 3', after => ARRAY['a', 'b']) > 0 AS c;
SELECT taskflow._add_node_api('dr_vp', 'b', 'sql', 'SELECT 2', after => ARRAY['a']) > 0 AS p;
SELECT taskflow._add_node_api('dr_vp', 'c', 'sql', 'SELECT 3', after => ARRAY['a', 'b']) > 0 AS p;
COMMIT;
SELECT f.name, v.version, string_agg(c.kind || ' ' || c.op, ', ' ORDER BY c.id) AS changes
  FROM taskflow.flows f JOIN taskflow.flow_versions v ON v.flow_id = f.id
  JOIN taskflow.definition_changes c ON c.flow_id = f.id AND c.version = v.version
 WHERE f.name IN ('dr_vc', 'dr_vp') GROUP BY 1, 2 ORDER BY 1, 2;

------------------------------------------------------------------------------
-- a plain role cannot reach the replica role, nor add code to these tables
------------------------------------------------------------------------------
CREATE ROLE regress_tf_dr_mallory;
SET ROLE regress_tf_dr_mallory;
SET session_replication_role = replica;
CREATE TRIGGER mallory BEFORE INSERT ON taskflow.nodes FOR EACH ROW EXECUTE FUNCTION public.dr_seen();
ALTER TABLE taskflow.nodes ENABLE ALWAYS TRIGGER nodes_guard;
ALTER TABLE taskflow.nodes DISABLE TRIGGER nodes_guard;
CREATE RULE mallory AS ON INSERT TO taskflow.flows DO ALSO INSERT INTO public.dr_log (tab) VALUES ('rule');
CREATE POLICY mallory ON taskflow.flows USING (true);
-- the name of a flow mallory cannot see: the unique index applies (through
-- the API path's error, as before)
SELECT taskflow.apply_flow('{"flow": {"name": "dr_a"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}');
-- its own function defining a flow through the C path, then writing
-- directly in the same statement: the role is origin again, and the
-- cycle check, the guard, the edge check and the foreign keys' cascade
-- fire on its own writes
CREATE FUNCTION pg_temp.sneak(what text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    fid bigint;
    c0 bigint := (SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions
                   WHERE schemaname = 'taskflow' AND funcname = '_apply_flow_api');
BEGIN
    PERFORM taskflow.apply_flow('{"nodes": {"a": {"kind": "sql", "body": "SELECT 1"},
                                  "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}', 'dr_m_' || what);
    SELECT id INTO fid FROM taskflow.flows WHERE name = 'dr_m_' || what;
    IF what = 'role' THEN
        RETURN current_setting('session_replication_role') || ', API path calls: '
            || (SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions
                 WHERE schemaname = 'taskflow' AND funcname = '_apply_flow_api') - c0;
    ELSIF what = 'cycle' THEN
        INSERT INTO taskflow.edges (flow_id, from_node, to_node)
        SELECT fid, b.id, a.id FROM taskflow.nodes a, taskflow.nodes b
         WHERE a.flow_id = fid AND a.name = 'a' AND b.flow_id = fid AND b.name = 'b';
    ELSIF what = 'guard' THEN
        INSERT INTO taskflow.nodes (flow_id, name, kind, body) VALUES (fid, 'x', 'sql', 'SELEC 1');
    ELSIF what = 'edge' THEN
        INSERT INTO taskflow.edges (flow_id, from_node, to_node)
        SELECT fid, a.id, -1 FROM taskflow.nodes a WHERE a.flow_id = fid AND a.name = 'a';
    ELSIF what = 'cascade' THEN
        DELETE FROM taskflow.flows WHERE id = fid;
        RETURN (SELECT count(*) FROM taskflow.nodes WHERE flow_id = fid) || ' nodes, '
            || (SELECT count(*) FROM taskflow.edges WHERE flow_id = fid) || ' edges, '
            || (SELECT count(*) FROM taskflow.flow_versions WHERE flow_id = fid) || ' versions left';
    END IF;
    RETURN 'no error';
END $$;
SELECT pg_temp.sneak('role');
SELECT pg_temp.sneak('cycle');
SELECT pg_temp.sneak('guard');
SELECT pg_temp.sneak('edge');
SELECT pg_temp.sneak('cascade');
SELECT count(*) AS mallory_flows FROM taskflow.flows;
RESET ROLE;
SELECT name, (SELECT count(*) FROM taskflow.edges e WHERE e.flow_id = f.id) AS edges
  FROM taskflow.flows f WHERE name LIKE 'dr\_m\_%';

-- cleanup
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'dr\_%' ORDER BY name;
DROP FUNCTION pg_temp.sneak(text);
DROP FUNCTION public.dr_seen();
DROP TABLE public.dr_log;
DROP ROLE regress_tf_dr_mallory;
RESET track_functions;
