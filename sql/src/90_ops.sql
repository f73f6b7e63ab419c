-- taskflow extension script, part 90: run operations on a finished run's
-- nodes (replayable).  Owner: ops.  See docs/operations.md ("Run
-- operations").
--
-- set_node_success: a failed node of a failed run is marked succeeded by
-- hand, its downstream nodes that ended upstream_failed become pending
-- again, and the run goes back to running: the state change notes the run
-- in taskflow.sched_queue (trigger runs_sched, part 51), so the scheduler's
-- next pass continues it.  Through the gate like the other run operations
-- (taskflow._gate, src/gate.c): _op_set_node_success runs as superuser,
-- checks the caller's membership itself and is revoked from PUBLIC.
-- search_path is pinned.

CREATE OR REPLACE FUNCTION taskflow._op_set_node_success(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r    taskflow.runs := taskflow._op_run(caller, (args->>'run_id')::bigint);
    node text := args->>'node';
    nr   taskflow.node_runs;
    msg  text;
    n    integer;
BEGIN
    IF node IS NULL THEN
        RAISE EXCEPTION 'node name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- lock the run: a concurrent operation on it (another set_node_success,
    -- a rerun reading it, the scheduler finishing it) is seen after the lock
    SELECT * INTO r FROM taskflow.runs WHERE id = r.id FOR UPDATE;
    SELECT x.* INTO nr
      FROM taskflow.node_runs x JOIN taskflow.nodes d ON d.id = x.node_id
     WHERE x.run_id = r.id AND d.name = node
       FOR UPDATE OF x;
    IF nr.id IS NULL THEN
        RAISE EXCEPTION 'node "%" does not exist in run %', node, r.id
            USING ERRCODE = 'undefined_object',
                  HINT = 'Give the name of a node of that run (taskflow.node_run_history).';
    END IF;
    IF r.state <> 'failed' THEN
        RAISE EXCEPTION 'run % is %, not failed', r.id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN r.state IN ('scheduled', 'running')
                              THEN 'Wait for it to finish (taskflow.wait_run) first.'
                              ELSE 'Only a node of a failed run can be marked succeeded; start a new run (taskflow.rerun) instead.' END;
    END IF;
    IF nr.state <> 'failed' THEN
        RAISE EXCEPTION 'node "%" of run % is %, not failed', node, r.id, nr.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN nr.state = 'upstream_failed'
                              THEN 'Mark the failed node upstream of it succeeded instead: its downstream nodes then run.'
                              ELSE 'Only a failed node can be marked succeeded.' END;
    END IF;
    msg := format('marked succeeded by %s at %s', caller, clock_timestamp());
    UPDATE taskflow.node_runs
       SET state = 'succeeded', finished_at = clock_timestamp(),
           message = msg || coalesce(format(' (it failed: %s)', message), '')
     WHERE id = nr.id;
    -- downstream nodes that did not run because of it run now (the scheduler
    -- marks upstream_failed again those that have another failed upstream)
    WITH RECURSIVE d(id) AS (
        SELECT e.to_node FROM taskflow.edges e
         WHERE e.flow_id = r.flow_id AND e.from_node = nr.node_id
        UNION
        SELECT e.to_node FROM taskflow.edges e JOIN d ON e.from_node = d.id
         WHERE e.flow_id = r.flow_id)
    UPDATE taskflow.node_runs x
       SET state = 'pending', started_at = NULL, finished_at = NULL, message = NULL,
           not_before = NULL
      FROM d
     WHERE x.run_id = r.id AND x.node_id = d.id AND x.state = 'upstream_failed';
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE taskflow.runs
       SET state = 'running', finished_at = NULL,
           message = format('node "%s" %s', node, msg)
     WHERE id = r.id;
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('pending', n);
END
$$;

REVOKE ALL ON FUNCTION taskflow._op_set_node_success(regrole, jsonb) FROM PUBLIC;

-- Mark a failed node of a failed run succeeded: its downstream nodes run and
-- the run continues.
CREATE OR REPLACE FUNCTION taskflow.set_node_success(run_id bigint, node text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void
      FROM taskflow._gate('set_node_success', jsonb_build_object('run_id', $1, 'node', $2))
$$;
