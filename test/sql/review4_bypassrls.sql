-- Review of 1.6 (docs/security.md): a role with BYPASSRLS that is not a
-- superuser skips row level security, which keeps every role to the flows
-- of the owners it is a member of.  It could add or change a node (or a
-- variable its body renders, an edge) of a superuser's flow -- through the
-- API, whose C create path inserted directly, or a direct INSERT -- and the
-- node ran as that superuser.  Now: 42501 for the flows of owners it is not
-- a member of; its own flows as before; reading stays what BYPASSRLS grants.
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_r4_byp BYPASSRLS;
SELECT 'created' FROM taskflow.create_flow('r4_su');
SELECT 'added' FROM taskflow.add_node('r4_su', 'a', 'sql', 'SELECT 1');
SELECT 'set' FROM taskflow.set_variable('r4_su', 'v', '1', constant => true);
SELECT 'added' FROM taskflow.add_node('r4_su', 'b', 'sql', 'SELECT ${v}', after => ARRAY['a']);

SET ROLE regress_r4_byp;
-- it sees the superuser's flow (BYPASSRLS)
SELECT name, owner FROM taskflow.flows WHERE name = 'r4_su';
SELECT regress.try($$ SELECT taskflow.add_node('r4_su', 'evil', 'sql', 'ALTER ROLE regress_r4_byp SUPERUSER') $$) AS add_node;
SELECT regress.try($$ SELECT taskflow.add_node('r4_su', 'evil', 'sql', 'ALTER ROLE regress_r4_byp SUPERUSER', after => ARRAY['a']) $$) AS add_node_after;
SELECT regress.try($$ INSERT INTO taskflow.nodes (flow_id, name, kind, body)
                      SELECT id, 'evil', 'sql', 'ALTER ROLE regress_r4_byp SUPERUSER'
                        FROM taskflow.flows WHERE name = 'r4_su' $$) AS insert_node;
SELECT regress.try($$ SELECT taskflow.alter_node('r4_su', 'a', body => 'ALTER ROLE regress_r4_byp SUPERUSER') $$) AS alter_node;
SELECT regress.try($$ UPDATE taskflow.nodes SET body = 'ALTER ROLE regress_r4_byp SUPERUSER'
                       WHERE name = 'a' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'r4_su') $$) AS update_node;
SELECT regress.try($$ SELECT taskflow.set_variable('r4_su', 'v', '1; ALTER ROLE regress_r4_byp SUPERUSER', constant => true) $$) AS set_variable;
SELECT regress.try($$ SELECT taskflow.drop_node('r4_su', 'b') $$) AS drop_node;
SELECT regress.try($$ DELETE FROM taskflow.edges WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'r4_su') $$) AS delete_edges;
SELECT regress.try($$ SELECT taskflow.alter_flow('r4_su', enabled => false) $$) AS alter_flow;
SELECT regress.try($$ SELECT taskflow.apply_flow('{"nodes": {"evil": {"kind": "sql", "body": "SELECT 1"}}}', 'r4_su') $$) AS apply_flow;
SELECT regress.try($$ SELECT taskflow.drop_flow('r4_su') $$) AS drop_flow;
-- its own flows: as before (also through the C create path's callers)
SELECT regress.try($$ SELECT taskflow.create_flow('r4_byp_own') $$) AS create_own;
SELECT regress.try($$ SELECT taskflow.add_node('r4_byp_own', 'x', 'sql', 'SELECT 1') $$) AS add_own;
SELECT regress.try($$ SELECT taskflow.apply_flow('{"nodes": {"y": {"kind": "sql", "body": "SELECT 2"}}}', 'r4_byp_apply') $$) AS apply_own;
SELECT regress.try($$ SELECT taskflow.alter_node('r4_byp_own', 'x', body => 'SELECT 3') $$) AS alter_own;
SELECT regress.try($$ SELECT taskflow.drop_flow('r4_byp_own') $$) AS drop_own;
SELECT regress.try($$ SELECT taskflow.drop_flow('r4_byp_apply') $$) AS drop_own_applied;
RESET ROLE;

-- the superuser's flow is as it was
SELECT n.name, n.body FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id
 WHERE f.name = 'r4_su' ORDER BY n.name;
SELECT v.name, v.definition FROM taskflow.variables v JOIN taskflow.flows f ON f.id = v.flow_id
 WHERE f.name = 'r4_su';
SELECT enabled FROM taskflow.flows WHERE name = 'r4_su';
SELECT count(*) AS edges FROM taskflow.edges e JOIN taskflow.flows f ON f.id = e.flow_id WHERE f.name = 'r4_su';
-- the engine's triggers do not fire for other roles (WHEN false)
SELECT taskflow._rls_bypassed() AS superuser_bypassed;

SELECT taskflow.drop_flow('r4_su');
DROP ROLE regress_r4_byp;
