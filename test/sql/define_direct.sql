-- The C create path inserts its rows directly (src/define_direct.c:
-- ExecSimpleRelationInsert, no statement per table) where no row level
-- security applies to the caller and the privileges allow it; otherwise it
-- runs its INSERT statements.  Checked here: which callers take which form
-- (a statement-level ALWAYS trigger sees the statements, a row-level one
-- sees every row), that both give the rows and history of the API path,
-- that privileges still apply (same error), and that the CHECKs and
-- defaults it prepares once per backend follow the table's changes.
SET timezone = 'UTC';
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE FUNCTION public.dd_err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION public.dd_err(text) TO PUBLIC;

-- what is a statement and what a row
CREATE TABLE public.dd_log (n serial, tab text, lvl text, who text);
GRANT INSERT, SELECT ON public.dd_log TO PUBLIC;
GRANT USAGE ON SEQUENCE public.dd_log_n_seq TO PUBLIC;
CREATE FUNCTION public.dd_seen() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO public.dd_log (tab, lvl, who) VALUES (TG_TABLE_NAME, TG_LEVEL, current_user);
    RETURN NULL;
END $$;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['flows', 'nodes', 'edges', 'flow_versions', 'definition_changes'] LOOP
        EXECUTE format('CREATE TRIGGER zz_dd_stmt AFTER INSERT ON taskflow.%I FOR EACH STATEMENT EXECUTE FUNCTION public.dd_seen()', t);
        EXECUTE format('ALTER TABLE taskflow.%I ENABLE ALWAYS TRIGGER zz_dd_stmt', t);
        EXECUTE format('CREATE TRIGGER zz_dd_row AFTER INSERT ON taskflow.%I FOR EACH ROW EXECUTE FUNCTION public.dd_seen()', t);
        EXECUTE format('ALTER TABLE taskflow.%I ENABLE ALWAYS TRIGGER zz_dd_row', t);
    END LOOP;
END $$;

-- a superuser: every row directly (row triggers fire, no statement)
SELECT taskflow.apply_flow('{"flow": {"name": "dd_su", "schedule": "0 5 * * *", "timezone": "Asia/Shanghai"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}');
SELECT tab, lvl, who, count(*) FROM public.dd_log GROUP BY 1, 2, 3 ORDER BY 1, 2;
TRUNCATE public.dd_log;
SELECT taskflow.create_flow('dd_su_cf', schedule => '0 5 * * *');
SELECT tab, lvl, count(*) FROM public.dd_log GROUP BY 1, 2 ORDER BY 1, 2;
TRUNCATE public.dd_log;

-- a plain role (row level security applies): 1.7, the flow, nodes and edges
-- directly too, the shipped policies met as test/sql/define5_rls.sql shows
-- (1.6: by INSERT statements); the history directly (written as the
-- bootstrap superuser, as the history trigger writes it)
CREATE ROLE dd_plain;
CREATE ROLE dd_bypass BYPASSRLS;
-- (1.6: the direct form wanted INSERT on the table; 1.7: the column grants of
-- PUBLIC suffice, checked as an INSERT checks them)
GRANT INSERT ON taskflow.flows, taskflow.nodes TO dd_bypass;
SET ROLE dd_plain;
SELECT taskflow.apply_flow('{"flow": {"name": "dd_pl", "schedule": "0 5 * * *", "timezone": "Asia/Shanghai"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}');
RESET ROLE;
SELECT tab, lvl, who, count(*) FROM public.dd_log GROUP BY 1, 2, 3 ORDER BY 1, 2;
TRUNCATE public.dd_log;
-- a role that bypasses row level security, with INSERT on the tables: since
-- the review of 1.6 the API path (its statements fire the catalog's
-- triggers, taskflow._bypassrls_guard among them); only a superuser or the
-- tables' owner inserts directly
SET ROLE dd_bypass;
SELECT taskflow.apply_flow('{"flow": {"name": "dd_by", "schedule": "0 5 * * *", "timezone": "Asia/Shanghai"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}');
RESET ROLE;
SELECT tab, lvl, who, count(*) FROM public.dd_log GROUP BY 1, 2, 3 ORDER BY 1, 2;
TRUNCATE public.dd_log;

-- the same flows and history either way, and as the API path defines them
SELECT taskflow._apply_flow_api('{"flow": {"name": "dd_api", "schedule": "0 5 * * *", "timezone": "Asia/Shanghai"},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}');
SELECT count(DISTINCT (taskflow.flow_definition(name) - '{version,flow}'::text[])::text) AS definitions,
       count(DISTINCT (taskflow.flow_definition(name) -> 'flow') - 'name' - 'owner') AS flow_settings
  FROM taskflow.flows WHERE name IN ('dd_su', 'dd_pl', 'dd_by', 'dd_api');
SELECT f.name, f.owner, f.created_at = f.updated_at AS same_time,
       (SELECT array_agg(n.name || ':' || (n.created_at = f.created_at) ORDER BY n.name) FROM taskflow.nodes n WHERE n.flow_id = f.id) AS nodes
  FROM taskflow.flows f WHERE f.name IN ('dd_su', 'dd_pl', 'dd_by', 'dd_api') ORDER BY 1;
-- the history: one version, the changes in the same order, kinds, images
-- (ids aside), roles
SELECT f.name, v.version, v.session_role, v.changed_by, v.xid = pg_current_xact_id() AS this_xact,
       array_agg(c.kind || ':' || c.op || ':' || (c.new - '{id,from_node,to_node}'::text[])::text ORDER BY c.id) AS changes,
       bool_and(c.session_role = session_user AND c.changed_by = v.changed_by AND c.old IS NULL) AS roles
  FROM taskflow.flows f JOIN taskflow.flow_versions v ON v.flow_id = f.id
  JOIN taskflow.definition_changes c ON c.flow_id = f.id AND c.version = v.version
 WHERE f.name IN ('dd_su', 'dd_pl', 'dd_by', 'dd_api')
 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1;
-- the node and edge keys of the history are the rows' ids
SELECT count(*) AS wrong_keys FROM taskflow.definition_changes c JOIN taskflow.flows f ON f.id = c.flow_id
 WHERE f.name IN ('dd_su', 'dd_pl', 'dd_by')
   AND c.object_key <> CASE c.kind WHEN 'flow' THEN 'flow' WHEN 'node' THEN c.new->>'id'
                       ELSE (c.new->>'from_node') || '>' || (c.new->>'to_node') END
   AND NOT (c.kind = 'node' AND c.object_key IN (SELECT n.id::text FROM taskflow.nodes n WHERE n.flow_id = f.id));

-- privileges: without INSERT on the table, the column grants of PUBLIC
-- suffice (1.7: directly; 1.6: the INSERT statement) ...
TRUNCATE public.dd_log;
BEGIN;
REVOKE INSERT ON taskflow.flows FROM dd_bypass;
SET LOCAL ROLE dd_bypass;
SELECT public.dd_err($$SELECT taskflow.apply_flow('{"flow": {"name": "dd_cols"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
RESET ROLE;
SELECT tab, lvl, count(*) FROM public.dd_log GROUP BY 1, 2 ORDER BY 1, 2;
TRUNCATE public.dd_log;
ROLLBACK;
-- ... and without INSERT on a column the path writes, the error it always
-- got, and nothing is left
BEGIN;
REVOKE INSERT ON taskflow.flows FROM dd_bypass;
REVOKE INSERT (priority) ON taskflow.flows FROM PUBLIC;
SET LOCAL ROLE dd_bypass;
SELECT public.dd_err($$SELECT taskflow.apply_flow('{"flow": {"name": "dd_noins"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
SELECT public.dd_err($$SELECT taskflow.create_flow('dd_noins')$$);
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'dd_noins';
ROLLBACK;
BEGIN;
REVOKE INSERT ON taskflow.nodes FROM dd_bypass;
REVOKE INSERT (timeout) ON taskflow.nodes FROM PUBLIC;
SET LOCAL ROLE dd_bypass;
SELECT public.dd_err($$SELECT taskflow.apply_flow('{"flow": {"name": "dd_noins"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
RESET ROLE;
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'dd_noins';
ROLLBACK;
-- a plain role, a name taken by a flow it cannot see: the unique index
SET ROLE dd_plain;
SELECT public.dd_err($$SELECT taskflow.apply_flow('{"flow": {"name": "dd_su"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
RESET ROLE;
SELECT public.dd_err($$SELECT taskflow.apply_flow('{"flow": {"name": "dd_pl"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}')$$);
TRUNCATE public.dd_log;

-- the CHECKs and defaults prepared once per backend follow the table: a
-- CHECK added (and dropped again) applies at once, so does a default
BEGIN;
ALTER TABLE taskflow.nodes ADD CONSTRAINT dd_no_42 CHECK (body IS DISTINCT FROM 'SELECT 42');
SELECT public.dd_err($$SELECT taskflow.apply_flow('{"flow": {"name": "dd_chk"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 42"}}}')$$);
SELECT count(*) AS left_over FROM taskflow.flows WHERE name = 'dd_chk';
ROLLBACK;
SELECT taskflow.apply_flow('{"flow": {"name": "dd_chk"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 42"}}}');
BEGIN;
ALTER TABLE taskflow.flows ADD CONSTRAINT dd_desc CHECK (description IS DISTINCT FROM 'no');
SELECT public.dd_err($$SELECT taskflow.create_flow('dd_chk2', description => 'no')$$);
ROLLBACK;
BEGIN;
ALTER TABLE taskflow.nodes ALTER COLUMN created_at SET DEFAULT '2001-02-03 04:05:06+00';
SELECT taskflow.apply_flow('{"flow": {"name": "dd_def"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}');
SELECT n.created_at FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'dd_def';
ROLLBACK;
SELECT taskflow.apply_flow('{"flow": {"name": "dd_def"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}');
SELECT n.created_at > '2020-01-01' AS default_again FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'dd_def';
SELECT tab, lvl, count(*) FROM public.dd_log GROUP BY 1, 2 ORDER BY 1, 2;
-- a trigger (ALWAYS, a superuser's) that invalidates the relation cache and
-- defines another flow from inside the path's insert of a node: the outer
-- insert's prepared CHECKs and defaults stay valid until its transaction ends
CREATE TABLE public.dd_inval (a int);
CREATE FUNCTION public.dd_nest() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.name = 'nest' THEN
        ALTER TABLE public.dd_inval ADD COLUMN b int;
        PERFORM taskflow.apply_flow('{"flow": {"name": "dd_inner"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER zz_dd_nest BEFORE INSERT ON taskflow.nodes FOR EACH ROW EXECUTE FUNCTION public.dd_nest();
ALTER TABLE taskflow.nodes ENABLE ALWAYS TRIGGER zz_dd_nest;
SELECT taskflow.apply_flow('{"flow": {"name": "dd_outer"}, "nodes": {"nest": {"kind": "sql", "body": "SELECT 1"},
  "z": {"kind": "sql", "body": "SELECT 2", "retries": 3, "after": ["nest"]}}}');
SELECT f.name, array_agg(n.name || ':' || n.retries || ':' || n.options::text ORDER BY n.name) AS nodes,
       (SELECT count(*) FROM taskflow.definition_changes c WHERE c.flow_id = f.id) AS changes
  FROM taskflow.flows f JOIN taskflow.nodes n ON n.flow_id = f.id
 WHERE f.name IN ('dd_outer', 'dd_inner') GROUP BY f.id, f.name ORDER BY 1;
DROP TRIGGER zz_dd_nest ON taskflow.nodes;
DROP FUNCTION public.dd_nest();
DROP TABLE public.dd_inval;

-- the replication role is origin again after the direct inserts
SELECT current_setting('session_replication_role') AS role, taskflow._define_internal() AS flag;

-- clean up
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['flows', 'nodes', 'edges', 'flow_versions', 'definition_changes'] LOOP
        EXECUTE format('DROP TRIGGER zz_dd_stmt ON taskflow.%I', t);
        EXECUTE format('DROP TRIGGER zz_dd_row ON taskflow.%I', t);
    END LOOP;
END $$;
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'dd\_%' ORDER BY name;
DROP TABLE public.dd_log;
DROP FUNCTION public.dd_seen();
DROP FUNCTION public.dd_err(text);
REVOKE INSERT ON taskflow.flows, taskflow.nodes FROM dd_bypass;
DROP ROLE dd_plain;
DROP ROLE dd_bypass;
