-- A warm worker's next node run of its own run (taskflow._node_next_in_run,
-- part 20_engine): judged lazily, candidate by candidate in id order, it
-- must return exactly what the one definition of readiness says
-- (_fl_ready_ids, part 19) -- the lowest ids first, at most p_limit, none of
-- p_exclude -- for every trigger rule, branch labels, the finalizer and
-- retries, at every step of a run.  States are set by hand in a transaction
-- that is rolled back (the scheduler never sees this run).
SET timezone = 'UTC';
\set SHOW_CONTEXT never

SELECT taskflow.create_flow('nx') > 0 AS created;
SELECT taskflow.set_variable('nx', 'mode', 'full', constant => true);
SELECT taskflow.add_node('nx', 'extract', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow.add_node('nx', 'side', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow.add_node('nx', 'is_full', 'branch', '${mode:literal} = ''full''',
                         after => ARRAY['extract']) > 0 AS added;
SELECT taskflow.add_node('nx', 'full_load', 'sql', 'SELECT 2', after => ARRAY['is_full'],
                         branch => true) > 0 AS added;
SELECT taskflow.add_node('nx', 'delta_load', 'sql', 'SELECT 3') > 0 AS added;
SELECT taskflow.add_edge('nx', 'is_full', 'delta_load', branch => false);
SELECT taskflow.add_node('nx', 'publish', 'sql', 'SELECT 4', after => ARRAY['full_load', 'delta_load'],
                         trigger_rule => 'none_failed_min_one_success') > 0 AS added;
SELECT taskflow.add_node('nx', 'cleanup', 'sql', 'SELECT 5', after => ARRAY['publish'],
                         trigger_rule => 'all_done') > 0 AS added;
SELECT taskflow.add_node('nx', 'alert', 'sql', 'SELECT 6', after => ARRAY['extract', 'publish'],
                         trigger_rule => 'one_failed') > 0 AS added;
SELECT taskflow.add_node('nx', 'report', 'sql', 'SELECT 7', finalizer => true) > 0 AS added;
SELECT count(taskflow.add_node('nx', 'f' || g, 'sql', 'SELECT 8', after => ARRAY['side']))
  FROM generate_series(1, 12) g;

BEGIN;
SELECT taskflow.run_flow('nx', bizdate => '2024-01-01') AS rid \gset
UPDATE taskflow.runs SET state = 'running' WHERE id = :rid;
CREATE FUNCTION pg_temp.set_state(node text, st text, r bigint DEFAULT NULL) RETURNS void LANGUAGE sql AS $$
    UPDATE taskflow.node_runs nr SET state = st, rows = r,
           not_before = CASE WHEN st = 'retrying' THEN clock_timestamp() - interval '1 s' END
      FROM taskflow.nodes n WHERE n.id = nr.node_id AND n.name = node
       AND nr.run_id = (SELECT max(id) FROM taskflow.runs)
$$;
-- what the one definition says (ready, and startable now), in id order
CREATE TEMP VIEW want AS
SELECT nr.id, n.name FROM taskflow.node_runs nr JOIN taskflow.nodes n ON n.id = nr.node_id
 WHERE nr.run_id = (SELECT max(id) FROM taskflow.runs)
   AND (nr.state = 'pending' OR (nr.state = 'retrying' AND nr.not_before <= clock_timestamp()))
   AND nr.id IN (SELECT taskflow._fl_ready_ids((SELECT max(id) FROM taskflow.runs)));
-- one line per step: the ready names, and whether the lazy read agrees with
-- the definition (all, and the first 3 without the lowest one)
CREATE TEMP VIEW step AS
SELECT (SELECT string_agg(w.name, ' ' ORDER BY w.id) FROM want w) AS ready,
       ARRAY(SELECT taskflow._node_next_in_run(r.id, '{}', 1000))
         = ARRAY(SELECT w.id FROM want w ORDER BY w.id) AS same_all,
       ARRAY(SELECT taskflow._node_next_in_run(r.id, ARRAY(SELECT min(w.id) FROM want w), 3))
         = ARRAY(SELECT w.id FROM want w WHERE w.id > (SELECT min(x.id) FROM want x)
                  ORDER BY w.id LIMIT 3) AS same_excl_limit
  FROM (SELECT max(id) AS id FROM taskflow.runs) r;
SELECT * FROM step;
SELECT pg_temp.set_state('extract', 'succeeded');
SELECT * FROM step;
SELECT pg_temp.set_state('side', 'running');
SELECT * FROM step;
SELECT pg_temp.set_state('side', 'succeeded');
SELECT * FROM step;
SELECT pg_temp.set_state('is_full', 'succeeded', 1);    -- the branch chose true
SELECT taskflow._fl_settle(ARRAY[:rid]::bigint[]) AS settled;
SELECT * FROM step;
SELECT pg_temp.set_state('full_load', 'retrying');       -- a due retry is startable
SELECT * FROM step;
UPDATE taskflow.node_runs SET not_before = clock_timestamp() + interval '1 hour'
 WHERE run_id = :rid AND state = 'retrying';             -- one not due yet is not
SELECT * FROM step;
SELECT pg_temp.set_state('full_load', 'failed');
SELECT taskflow._fl_settle(ARRAY[:rid]::bigint[]) AS settled;
SELECT * FROM step;
SELECT count(*) AS set FROM (SELECT pg_temp.set_state('f' || g, 'succeeded') FROM generate_series(1, 12) g) x;
SELECT pg_temp.set_state('alert', 'succeeded');
SELECT pg_temp.set_state('cleanup', 'succeeded');
SELECT * FROM step;                                      -- the finalizer, last
-- a run that is not running has nothing ready
UPDATE taskflow.runs SET state = 'canceled' WHERE id = :rid;
SELECT count(*) AS none FROM taskflow._node_next_in_run(:rid, '{}', 1000);
ROLLBACK;

SELECT taskflow.drop_flow('nx');
