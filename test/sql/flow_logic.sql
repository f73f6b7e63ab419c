-- Flow logic (docs/flow_logic.md): trigger rules, the finalizer, branch
-- nodes and their labelled edges: the API, its validation (SQLSTATE + hint,
-- nothing changed), flow_graph, and the engine's decisions on a run whose
-- node states are set by hand in a transaction that is rolled back.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\set VERBOSITY default

SELECT taskflow.create_flow('fl', description => 'flow logic') > 0 AS created;
SELECT taskflow.add_node('fl', 'extract', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow.add_node('fl', 'is_full', 'branch', '${mode:literal} = ''full''',
                         after => ARRAY['extract']) > 0 AS added;
SELECT taskflow.set_variable('fl', 'mode', 'full', constant => true);
SELECT taskflow.add_node('fl', 'is_full', 'branch', '${mode:literal} = ''full''',
                         after => ARRAY['extract']) > 0 AS added;
SELECT taskflow.add_node('fl', 'full_load', 'sql', 'SELECT 2', after => ARRAY['is_full'],
                         branch => true) > 0 AS added;
SELECT taskflow.add_node('fl', 'delta_load', 'sql', 'SELECT 3') > 0 AS added;
SELECT taskflow.add_edge('fl', 'is_full', 'delta_load', branch => false);
SELECT taskflow.add_node('fl', 'publish', 'sql', 'SELECT 4', after => ARRAY['full_load', 'delta_load'],
                         trigger_rule => 'none_failed_min_one_success') > 0 AS added;
SELECT taskflow.add_node('fl', 'cleanup', 'sql', 'SELECT 5', after => ARRAY['publish'],
                         trigger_rule => 'all_done') > 0 AS added;
SELECT taskflow.add_node('fl', 'alert', 'notify', options => '{"channel": "fl"}',
                         after => ARRAY['extract', 'publish'], trigger_rule => 'one_failed') > 0 AS added;
SELECT taskflow.add_node('fl', 'report', 'sql', 'SELECT 6', finalizer => true) > 0 AS added;
SELECT n.name, n.kind, n.trigger_rule, n.finalizer
  FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'fl' ORDER BY n.name;
SELECT a.name AS from_node, b.name AS to_node, e.branch
  FROM taskflow.edges e JOIN taskflow.nodes a ON a.id = e.from_node JOIN taskflow.nodes b ON b.id = e.to_node
 ORDER BY 1, 2;
-- a branch renders like any body
SELECT taskflow.render('fl', 'is_full', '2024-01-01');
SELECT taskflow.render('fl', 'is_full', '2024-01-01', params => '{"mode": "delta"}');
SELECT taskflow.flow_graph('fl');
SELECT taskflow.flow_graph('fl', 'mermaid');

-- an unlabelled edge out of a branch: allowed, with a warning
SELECT taskflow.add_node('fl', 'log_choice', 'sql', 'SELECT 7', after => ARRAY['is_full']) > 0 AS added;
SELECT taskflow.drop_node('fl', 'log_choice');

-- the state every failing call must leave untouched
CREATE TEMP VIEW st AS
SELECT (SELECT count(*) FROM taskflow.nodes) AS nodes,
       (SELECT count(*) FROM taskflow.edges) AS edges,
       (SELECT string_agg(format('%s:%s:%s', name, trigger_rule, finalizer), ' ' ORDER BY name)
          FROM taskflow.nodes) AS rules,
       (SELECT count(*) FILTER (WHERE branch IS NOT NULL) FROM taskflow.edges) AS labelled;
SELECT * FROM st \gset before_

-- bad input: SQLSTATE + hint, nothing changed
-- (regress.try, from 00_smoke: SQLSTATE, message, detail, hint)
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'sql', 'SELECT 1', trigger_rule => 'one_success')$q$);
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'sql', 'SELECT 1', trigger_rule => '', after => ARRAY['extract'])$q$);
SELECT regress.try($q$SELECT taskflow.alter_node('fl', 'cleanup', trigger_rule => 'sometimes')$q$);
-- a label only on edges out of a branch node
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'sql', 'SELECT 1', after => ARRAY['extract'], branch => true)$q$);
SELECT regress.try($q$SELECT taskflow.add_edge('fl', 'extract', 'cleanup', branch => false)$q$);
-- branch => needs exactly one upstream
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'sql', 'SELECT 1', branch => true)$q$);
-- a branch needs its condition, which must parse as one expression
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'branch')$q$);
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'branch', 'SELECT 1; SELECT 2')$q$);
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'branch', '${nope} > 0')$q$);
-- one finalizer per flow, without edges, without a trigger rule
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'sql', 'SELECT 1', finalizer => true)$q$);
SELECT regress.try($q$SELECT taskflow.add_edge('fl', 'cleanup', 'report')$q$);
SELECT regress.try($q$SELECT taskflow.add_node('fl', 'x', 'sql', 'SELECT 1', after => ARRAY['report'])$q$);
SELECT regress.try($q$SELECT taskflow.alter_node('fl', 'cleanup', finalizer => true)$q$);
SELECT regress.try($q$SELECT taskflow.alter_node('fl', 'extract', finalizer => true)$q$);
SELECT regress.try($q$SELECT taskflow.alter_node('fl', 'report', trigger_rule => 'all_done')$q$);
-- direct writes get the same checks
SELECT regress.try($q$UPDATE taskflow.nodes SET trigger_rule = 'never' WHERE name = 'cleanup'$q$);
SELECT regress.try($q$UPDATE taskflow.edges SET branch = true
 WHERE from_node = (SELECT id FROM taskflow.nodes WHERE name = 'extract')$q$);
SELECT regress.try($q$UPDATE taskflow.nodes SET kind = 'sql' WHERE name = 'is_full'$q$);
SELECT * FROM st \gset after_
SELECT :'before_rules' = :'after_rules' AND :before_nodes = :after_nodes
       AND :before_edges = :after_edges AND :before_labelled = :after_labelled AS unchanged;

-- alter_node round trips; a finalizer can be given up and taken by another node
SELECT taskflow.alter_node('fl', 'cleanup', trigger_rule => 'always');
SELECT taskflow.alter_node('fl', 'report', finalizer => false);
SELECT taskflow.alter_node('fl', 'report', finalizer => true);
SELECT taskflow.alter_node('fl', 'cleanup', trigger_rule => 'all_done');
SELECT name, trigger_rule, finalizer FROM taskflow.nodes WHERE name IN ('cleanup', 'report') ORDER BY 1;

-- the rules, as a truth table over (edges, succeeded, skipped, failed, pending)
SELECT r AS rule,
       taskflow._fl_rule(r, 2, 2, 0, 0, 0) AS all_ok,
       taskflow._fl_rule(r, 2, 1, 0, 0, 1) AS one_ok_one_pending,
       taskflow._fl_rule(r, 2, 1, 0, 1, 0) AS one_ok_one_failed,
       taskflow._fl_rule(r, 2, 0, 0, 1, 1) AS one_failed_one_pending,
       taskflow._fl_rule(r, 2, 0, 0, 2, 0) AS all_failed,
       taskflow._fl_rule(r, 2, 1, 1, 0, 0) AS one_ok_one_skipped,
       taskflow._fl_rule(r, 2, 0, 2, 0, 0) AS all_skipped,
       taskflow._fl_rule(r, 0, 0, 0, 0, 0) AS no_upstream
  FROM unnest(taskflow._fl_rules()) r;

-- the engine's decisions on a run (states set by hand, as the worker would;
-- in one transaction, rolled back: the scheduler never sees this run)
BEGIN;
SELECT taskflow.run_flow('fl', bizdate => '2024-01-01') AS rid \gset
UPDATE taskflow.runs SET state = 'running' WHERE id = :rid;
CREATE TEMP VIEW rs AS
SELECT n.name, nr.state, nr.skip_propagates, taskflow._fl_decide(nr.run_id, nr.node_id) AS decision,
       nr.id IN (SELECT taskflow._fl_ready_ids(:rid)) AS ready
  FROM taskflow.node_runs nr JOIN taskflow.nodes n ON n.id = nr.node_id
 WHERE nr.run_id = :rid ORDER BY n.name;
CREATE FUNCTION set_state(node text, st text, r bigint DEFAULT NULL) RETURNS void LANGUAGE sql AS $$
    UPDATE taskflow.node_runs nr SET state = st, rows = r
      FROM taskflow.nodes n WHERE n.id = nr.node_id AND n.name = node
       AND nr.run_id = (SELECT max(id) FROM taskflow.runs)
$$;
SELECT * FROM rs;
SELECT set_state('extract', 'succeeded');
SELECT set_state('is_full', 'succeeded', 1);    -- the branch chose true
SELECT taskflow._fl_settle(ARRAY[:rid]::bigint[]) AS settled;
SELECT * FROM rs;
SELECT set_state('full_load', 'failed');
SELECT taskflow._fl_settle(ARRAY[:rid]::bigint[]) AS settled;
SELECT * FROM rs;
SELECT set_state('alert', 'succeeded');
SELECT set_state('cleanup', 'succeeded');
SELECT * FROM rs;
SELECT set_state('report', 'succeeded');
SELECT taskflow._sched_advance(:rid);
SELECT state FROM taskflow.runs WHERE id = :rid;
-- the failure message of CALL taskflow.run / wait_run names the failed node only
SELECT node, state FROM taskflow.node_run_history WHERE run_id = :rid
   AND state IN ('failed', 'upstream_failed', 'canceled') ORDER BY node;
ROLLBACK;

-- leave nothing behind for the other tests of this database
DROP VIEW st;
SELECT taskflow.drop_flow('fl');
