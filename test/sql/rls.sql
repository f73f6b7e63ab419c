-- Row level security of the definition API: a role sees and changes only
-- flows owned by roles it is a member of.  alice owns a flow; bob is a member
-- of group team, which owns a flow; mallory is a stranger.  Nobody but the
-- engine writes runs and node_runs.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never

-- what the current role sees of the catalog
CREATE FUNCTION pg_temp.seen() RETURNS TABLE (flows text, nodes bigint, edges bigint,
                                              variables bigint, runs bigint, node_runs bigint)
LANGUAGE sql AS $$
    SELECT (SELECT string_agg(name, ', ' ORDER BY name) FROM taskflow.flows),
           (SELECT count(*) FROM taskflow.nodes), (SELECT count(*) FROM taskflow.edges),
           (SELECT count(*) FROM taskflow.variables), (SELECT count(*) FROM taskflow.runs),
           (SELECT count(*) FROM taskflow.node_runs)
$$;

CREATE ROLE regress_tf_alice;
CREATE ROLE regress_tf_team NOLOGIN;
CREATE ROLE regress_tf_bob IN ROLE regress_tf_team;
CREATE ROLE regress_tf_mallory;
CREATE SERVER rls_store FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress');
GRANT USAGE ON FOREIGN SERVER rls_store TO regress_tf_team;

-- alice defines her flow
SET ROLE regress_tf_alice;
SELECT taskflow.create_flow('alice_flow') > 0 AS created;
SELECT taskflow.set_variable('alice_flow', 'day', 'dd of bizdate');
SELECT taskflow.add_node('alice_flow', 'a', 'sql', 'SELECT ${day}') > 0 AS added;
SELECT taskflow.add_node('alice_flow', 'b', 'sql', 'SELECT 2', after => ARRAY['a']) > 0 AS added;
-- she may not give a flow to a group she is not in
SELECT regress.try($$ SELECT taskflow.create_flow('alice_team', owner => 'regress_tf_team') $$);
SELECT regress.try($$ SELECT taskflow.alter_flow('alice_flow', owner => 'regress_tf_mallory') $$);
-- her flow's owner has no USAGE on the storage server
SELECT regress.try($$ SELECT taskflow.add_node('alice_flow', 'arch', 'archive',
    options => '{"server": "rls_store", "path": "a/", "table": "t"}') $$);
SELECT * FROM pg_temp.seen();
RESET ROLE;

-- bob defines a flow owned by his group
SET ROLE regress_tf_bob;
SELECT taskflow.create_flow('team_flow', owner => 'regress_tf_team') > 0 AS created;
SELECT taskflow.add_node('team_flow', 'arch', 'archive',
    options => '{"server": "rls_store", "path": "t/${bizdate}/", "query": "SELECT 1"}') > 0 AS added;
SELECT taskflow.add_node('team_flow', 'after_arch', 'wait', options => '{"delay": "1 min"}',
                         after => ARRAY['arch']) > 0 AS added;
-- a flow of his own, handed to the team afterwards
SELECT taskflow.create_flow('bob_flow') > 0 AS created;
SELECT taskflow.alter_flow('bob_flow', owner => 'regress_tf_team');
SELECT regress.try($$ SELECT taskflow.create_flow('bob_alice', owner => 'regress_tf_alice') $$);
RESET ROLE;

SELECT name, owner FROM taskflow.flows ORDER BY name;

-- the engine records a finished run of each flow
INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, state)
SELECT id, '2020-06-02 05:00+00', '2020-06-01', 'manual', 'succeeded'
  FROM taskflow.flows WHERE name IN ('alice_flow', 'team_flow');
INSERT INTO taskflow.node_runs (run_id, node_id, state)
SELECT r.id, n.id, 'succeeded' FROM taskflow.runs r JOIN taskflow.nodes n USING (flow_id);

-- what each role sees
SELECT 'superuser' AS who, * FROM pg_temp.seen();
SET ROLE regress_tf_alice;
SELECT 'alice' AS who, * FROM pg_temp.seen();
SET ROLE regress_tf_bob;
SELECT 'bob' AS who, * FROM pg_temp.seen();
SET ROLE regress_tf_mallory;
SELECT 'mallory' AS who, * FROM pg_temp.seen();

-- the stranger can neither use nor change the others' flows
SELECT regress.try($$ SELECT taskflow.alter_flow('alice_flow', enabled => false) $$);
SELECT regress.try($$ SELECT taskflow.disable_flow('team_flow') $$);
SELECT regress.try($$ SELECT taskflow.drop_flow('alice_flow') $$);
SELECT regress.try($$ SELECT taskflow.add_node('alice_flow', 'm', 'sql', 'SELECT 1') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('team_flow', 'arch', retries => 3) $$);
SELECT regress.try($$ SELECT taskflow.drop_node('alice_flow', 'b') $$);
SELECT regress.try($$ SELECT taskflow.add_edge('alice_flow', 'b', 'a') $$);
SELECT regress.try($$ SELECT taskflow.set_variable('alice_flow', 'x', '1', constant => true) $$);
SELECT regress.try($$ SELECT taskflow.render('alice_flow', 'a', '2020-06-01') $$);
SELECT regress.try($$ SELECT taskflow.flow_graph('team_flow') $$);
-- ... nor through the tables
UPDATE taskflow.flows SET enabled = false;
DELETE FROM taskflow.nodes;
DELETE FROM taskflow.variables;
SELECT regress.try($$ INSERT INTO taskflow.nodes (flow_id, name, kind, body)
                      SELECT id, 'm', 'sql', 'SELECT 1' FROM taskflow.flows $$);
RESET ROLE;
SELECT f.id AS alice_flow_id, a.id AS alice_a, b.id AS alice_b
  FROM taskflow.flows f JOIN taskflow.nodes a ON a.flow_id = f.id AND a.name = 'a'
  JOIN taskflow.nodes b ON b.flow_id = f.id AND b.name = 'b'
 WHERE f.name = 'alice_flow' \gset
SET ROLE regress_tf_mallory;
SELECT regress.try(format($$ INSERT INTO taskflow.nodes (flow_id, name, kind, body)
                             VALUES (%s, 'm', 'sql', 'SELECT 1') $$, :alice_flow_id));
SELECT regress.try(format($$ INSERT INTO taskflow.variables (flow_id, name, definition, is_constant)
                             VALUES (%s, 'x', '1', true) $$, :alice_flow_id));
SELECT regress.try(format($$ INSERT INTO taskflow.edges VALUES (%s, %s, %s) $$,
                          :alice_flow_id, :alice_b, :alice_a));
SELECT regress.try(format($$ SELECT taskflow._variables(%s, '2020-06-01', NULL, 0, NULL, '{}') $$, :alice_flow_id)) ~ '^42704' AS hidden;
-- nor take over a name, nor create flows for others
SELECT regress.try($$ SELECT taskflow.create_flow('alice_flow') $$);
SELECT regress.try($$ SELECT taskflow.create_flow('mallory_flow', owner => 'regress_tf_alice') $$);
SELECT regress.try($$ SELECT taskflow.create_flow('mallory_flow', owner => 'regress_tf_team') $$);
RESET ROLE;
SELECT 'after mallory' AS who, * FROM pg_temp.seen();

-- a member of the owning group can use and change the group's flow
SET ROLE regress_tf_bob;
SELECT taskflow.render('team_flow', 'arch', '2020-06-01');
SELECT taskflow.alter_node('team_flow', 'after_arch', options => '{"delay": "2 min"}');
SELECT taskflow.add_node('team_flow', 'tell', 'notify', options => '{"channel": "team"}',
                         after => ARRAY['after_arch']) > 0 AS added;
SELECT taskflow.flow_graph('team_flow', 'mermaid');
SELECT regress.try($$ SELECT taskflow.render('alice_flow', 'a', '2020-06-01') $$);
RESET ROLE;
SET ROLE regress_tf_alice;
SELECT taskflow.render('alice_flow', 'a', '2020-06-01');
RESET ROLE;

-- nobody but the engine writes runs and node_runs, or moves the scheduler's watermark
SET ROLE regress_tf_alice;
SELECT regress.try($$ INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger)
                      SELECT id, now(), current_date, 'manual' FROM taskflow.flows $$);
SELECT regress.try($$ UPDATE taskflow.runs SET state = 'failed' $$);
SELECT regress.try($$ DELETE FROM taskflow.runs $$);
SELECT regress.try($$ INSERT INTO taskflow.node_runs (run_id, node_id)
                      SELECT r.id, n.id FROM taskflow.runs r, taskflow.nodes n $$);
SELECT regress.try($$ UPDATE taskflow.node_runs SET state = 'succeeded' $$);
SELECT regress.try($$ DELETE FROM taskflow.node_runs $$);
SELECT regress.try($$ UPDATE taskflow.flows SET scheduled_until = now() $$);
SELECT state FROM taskflow.runs;
-- she can drop her own flow; its history goes with it
SELECT taskflow.drop_flow('alice_flow');
SELECT 'alice' AS who, * FROM pg_temp.seen();
RESET ROLE;
SET ROLE regress_tf_bob;
SELECT taskflow.drop_flow('team_flow');
SELECT taskflow.drop_flow('bob_flow');
RESET ROLE;
SELECT 'superuser' AS who, * FROM pg_temp.seen();

DROP SERVER rls_store;
DROP ROLE regress_tf_alice, regress_tf_bob, regress_tf_team, regress_tf_mallory;
