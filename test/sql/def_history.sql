-- Definition history (part 94): a row per change of a flow, node, edge or
-- variable — through the API and through direct DML — with who and when; one
-- version per transaction; flow_versions / flow_definition / flow_diff; row
-- level security; history is written only by the trigger; runs record the
-- version they were created from.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never

CREATE ROLE regress_dh_owner;
CREATE ROLE regress_dh_member IN ROLE regress_dh_owner;
CREATE ROLE regress_dh_stranger;
CREATE TEMP VIEW changes AS
SELECT c.version, c.kind, c.op, coalesce(c.new->>'name', c.old->>'name', '(edge)') AS object,
       c.session_role, c.changed_by
  FROM taskflow.definition_changes c JOIN taskflow.flows f ON f.id = c.flow_id
 WHERE f.name = 'dh' ORDER BY c.id;
GRANT SELECT ON changes TO PUBLIC;

SET ROLE regress_dh_owner;
-- version 1: one transaction creates the flow, two nodes, an edge, a variable
BEGIN;
SELECT taskflow.create_flow('dh', schedule => '0 5 * * *', description => 'first') > 0 AS created;
SELECT taskflow.add_node('dh', 'extract', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow.set_variable('dh', 'day', 'yyyymmdd of bizdate');
SELECT taskflow.add_node('dh', 'load', 'sql', 'SELECT ${day}', after => ARRAY['extract']) > 0 AS added;
COMMIT;
-- 2 .. 5: one API call each (each its own transaction)
SELECT taskflow.alter_node('dh', 'load', body => 'SELECT ${day}, 2', retries => 2);
SELECT taskflow.alter_flow('dh', schedule => '0 6 * * *');
SELECT taskflow.set_variable('dh', 'day', 'yyyy-mm-dd of bizdate');
SELECT taskflow.add_node('dh', 'report', 'sql', 'SELECT 3', after => ARRAY['load']) > 0 AS added;
-- a SECURITY DEFINER function of the owner, for the member below
CREATE FUNCTION pg_temp.dh_bump() RETURNS void LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT taskflow.alter_node('dh', 'report', retries => 1) $$;
RESET ROLE;
-- 6: direct DML the guard allows, by a member, in one transaction of three statements
SET ROLE regress_dh_member;
BEGIN;
UPDATE taskflow.nodes SET timeout = '10 min' WHERE name = 'extract'
   AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'dh');
UPDATE taskflow.flows SET description = 'changed directly' WHERE name = 'dh';
DELETE FROM taskflow.edges WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'dh')
   AND to_node = (SELECT id FROM taskflow.nodes WHERE name = 'report');
COMMIT;
-- 7: the member through the owner's SECURITY DEFINER function: changed_by
-- is the owner (the role in effect), session_role the login
SELECT pg_temp.dh_bump();
-- 8: drop a node (its edge goes with it: both recorded); 9: drop the variable
-- after its user is changed
SELECT taskflow.drop_node('dh', 'extract');
BEGIN;
SELECT taskflow.alter_node('dh', 'load', body => 'SELECT 2');
SELECT taskflow.drop_variable('dh', 'day');
COMMIT;
-- 10: a node renamed by direct DML (matched by id: a changed name), a
-- variable renamed (its key: the old one removed, the new one added)
SELECT taskflow.set_variable('dh', 'region', 'eu', constant => true);
BEGIN;
UPDATE taskflow.nodes SET name = 'load_all' WHERE name = 'load'
   AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'dh');
UPDATE taskflow.variables SET name = 'zone' WHERE name = 'region';
COMMIT;
SELECT * FROM taskflow.flow_diff('dh', 10);
-- changes that define nothing record nothing: the scheduler's columns, a
-- failed change (rolled back), an update to the same values
RESET ROLE;
UPDATE taskflow.flows SET next_due = now(), updated_at = now() WHERE name = 'dh';
SET ROLE regress_dh_owner;
SELECT regress.try($$ SELECT taskflow.alter_node('dh', 'load_all', retries => -1) $$);
UPDATE taskflow.nodes SET body = body WHERE name = 'load_all';
SELECT * FROM changes;

-- one version per transaction and flow
SELECT version, session_role, changed_by, changes, summary FROM taskflow.flow_versions('dh');

-- the definition at a version, and now
SELECT jsonb_pretty(taskflow.flow_definition('dh', 1));
SELECT taskflow.flow_definition('dh') -> 'nodes' AS nodes_now, taskflow.flow_definition('dh') -> 'edges' AS edges_now;
-- diffs: 1 -> 6, 0 -> 1 (everything added), the current one against 6
SELECT * FROM taskflow.flow_diff('dh', 1, 6);
SELECT kind, object, change FROM taskflow.flow_diff('dh', 0, 1);
SELECT * FROM taskflow.flow_diff('dh', 6);
-- a version against itself: no difference
SELECT count(*) AS no_diff FROM taskflow.flow_diff('dh', 3, 3);
-- bad versions: SQLSTATE, detail, hint
SELECT regress.try($$ SELECT taskflow.flow_diff('dh', 1, 99) $$);
SELECT regress.try($$ SELECT taskflow.flow_definition('dh', 0) $$);
SELECT regress.try($$ SELECT taskflow.flow_diff('dh', NULL) $$);
RESET ROLE;

-- row level security: a stranger sees no history and no flow
SET ROLE regress_dh_stranger;
SELECT count(*) AS stranger_versions FROM taskflow.flow_versions;
SELECT count(*) AS stranger_changes FROM taskflow.definition_changes;
SELECT regress.try($$ SELECT taskflow.flow_diff('dh', 0) $$);
-- nobody writes history but the trigger
SELECT regress.try($$ INSERT INTO taskflow.flow_versions (flow_id, version, session_role, changed_by, xid)
                      SELECT id, 100, 'x', 'y', '1' FROM taskflow.flows $$);
SET ROLE regress_dh_owner;
SELECT regress.try($$ DELETE FROM taskflow.definition_changes $$);
SELECT regress.try($$ UPDATE taskflow.flow_versions SET changed_by = 'x' $$);
SELECT regress.try($$ SELECT taskflow._defhist_row() $$);
RESET ROLE;
-- the C trigger refuses other tables even for a superuser
CREATE TABLE dh_fake (id bigint);
CREATE TRIGGER dh_fake AFTER INSERT ON dh_fake FOR EACH ROW EXECUTE FUNCTION taskflow._defhist_trigger();
SELECT regress.try($$ INSERT INTO dh_fake VALUES (1) $$);
DROP TABLE dh_fake;
SELECT taskflow._defhist_caller() IS NULL AS no_caller_outside_the_trigger;

-- a run records the version it was created from
SELECT taskflow.create_flow('dh_run', enabled => false) > 0 AS created;
SELECT taskflow.add_node('dh_run', 'a', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow._create_run(id, now() + interval '1 day', current_date, 'manual', '{}', 'postgres') > 0 AS run
  FROM taskflow.flows WHERE name = 'dh_run';
SELECT r.flow_version, (SELECT max(version) FROM taskflow.flow_versions v WHERE v.flow_id = r.flow_id) AS current
  FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = 'dh_run' ORDER BY r.id;

-- a dropped flow takes its history with it
SELECT taskflow.drop_flow('dh_run', force => true);
SELECT taskflow.drop_flow('dh');
SELECT count(*) AS changes_left FROM taskflow.definition_changes c
 WHERE NOT EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = c.flow_id);
SELECT count(*) AS versions_left FROM taskflow.flow_versions v
 WHERE NOT EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = v.flow_id);
DROP FUNCTION pg_temp.dh_bump();
DROP ROLE regress_dh_member, regress_dh_owner, regress_dh_stranger;
