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
    IF n > 0 THEN
        PERFORM taskflow._fl_reopen_finalizer(r.id);   -- part 19_flowlogic
    END IF;
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

------------------------------------------------------------------------------
-- auto-suspend: a flow is disabled after N consecutive failed runs
------------------------------------------------------------------------------
-- flows.suspend_after_failures (part 90_ops.once) is N.  When a run ends
-- failed (the scheduler's transaction, or any other that marks a run
-- failed) and the flow's last N finished runs (succeeded or failed, by
-- period; canceled runs do not count) all failed, the flow is disabled with
-- flows.suspended_reason.  Enabling the flow (enable_flow, alter_flow
-- enabled => true) clears the reason and starts counting again from there.
-- The flow's row is locked NOWAIT: a user's transaction holding it must not
-- block the scheduler; then the flow is suspended at its next failed run
-- (logged).

CREATE OR REPLACE FUNCTION taskflow._check_suspend_after(n integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF n IS NOT NULL AND (n < 1 OR n > 1000) THEN
        RAISE EXCEPTION 'invalid suspend_after_failures: %', n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a number of consecutive failed runs from 1 to 1000, or 0 / NULL for never.';
    END IF;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._runs_suspend() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f      taskflow.flows;
    failed bigint;
BEGIN
    SELECT * INTO f FROM taskflow.flows WHERE id = NEW.flow_id;
    IF f.suspend_after_failures IS NULL OR NOT f.enabled THEN
        RETURN NULL;
    END IF;
    -- the last N finished runs since the flow was last enabled again
    SELECT count(*) FILTER (WHERE x.state = 'failed') INTO failed
      FROM (SELECT r.state FROM taskflow.runs r
             WHERE r.flow_id = f.id AND r.state IN ('succeeded', 'failed')
               AND r.finished_at >= coalesce(f.resumed_at, '-infinity')
             ORDER BY r.scheduled_for DESC, r.id DESC
             LIMIT f.suspend_after_failures) x;
    IF failed < f.suspend_after_failures THEN
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM 1 FROM taskflow.flows WHERE id = f.id FOR UPDATE NOWAIT;
        UPDATE taskflow.flows
           SET enabled = false,
               suspended_reason = format('suspended at %s after %s consecutive failed runs (the last: run %s)',
                                         clock_timestamp(), failed, NEW.id)
         WHERE id = f.id AND enabled;
        RAISE LOG 'taskflow: flow "%" suspended after % consecutive failed runs', f.name, failed;
    EXCEPTION WHEN lock_not_available THEN
        RAISE LOG 'taskflow: flow "%" is locked: not suspended now (after % failed runs)', f.name, failed;
    END;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER runs_suspend AFTER UPDATE OF state ON taskflow.runs
    FOR EACH ROW WHEN (NEW.state = 'failed' AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION taskflow._runs_suspend();

-- enabling a flow clears why it was suspended and restarts the count
CREATE OR REPLACE FUNCTION taskflow._flows_resume() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.enabled AND NOT OLD.enabled THEN
        NEW.suspended_reason := NULL;
        NEW.resumed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER flows_resume BEFORE UPDATE OF enabled ON taskflow.flows
    FOR EACH ROW WHEN (NEW.enabled AND NOT OLD.enabled)
    EXECUTE FUNCTION taskflow._flows_resume();

REVOKE ALL ON FUNCTION taskflow._runs_suspend(), taskflow._flows_resume() FROM PUBLIC;

------------------------------------------------------------------------------
-- flow_status (here, not in part 20: it shows columns of part 90_ops.once)
------------------------------------------------------------------------------

CREATE OR REPLACE VIEW taskflow.flow_status WITH (security_invoker = true) AS
SELECT f.id AS flow_id,
       f.name AS flow,
       f.owner,
       f.schedule,
       f.timezone,
       f.enabled,
       lr.id AS last_run_id,
       lr.state AS last_state,
       lr.bizdate AS last_bizdate,
       lr.finished_at AS last_finished_at,
       (SELECT count(*) FROM taskflow.runs r
         WHERE r.flow_id = f.id AND r.state = 'running') AS running_runs,
       (SELECT count(*) FROM taskflow.runs r
         WHERE r.flow_id = f.id AND r.state = 'failed'
           AND r.id > coalesce((SELECT max(s.id) FROM taskflow.runs s
                                 WHERE s.flow_id = f.id AND s.state = 'succeeded'), 0))
         AS consecutive_failures,
       CASE WHEN f.enabled AND f.schedule IS NOT NULL THEN
           (SELECT x FROM taskflow._next_run_safe(f.schedule,
                                                  greatest(f.scheduled_until, f.created_at,
                                                           f.start_date - interval '1 microsecond',
                                                           taskflow._now()),
                                                  f.timezone) x
             WHERE f.end_date IS NULL OR x <= f.end_date)
       END AS next_run,
       f.schedule_error,
       f.suspend_after_failures,
       f.suspended_reason,
       (SELECT count(*) FROM taskflow.runs r
         WHERE r.flow_id = f.id AND r.state = 'suspended') AS suspended_runs
  FROM taskflow.flows f
  -- (named columns, not r.*: a column added to runs by a later once part
  -- would otherwise be in the updated view only)
  LEFT JOIN LATERAL (SELECT r.id, r.state, r.bizdate, r.finished_at FROM taskflow.runs r
                      WHERE r.flow_id = f.id ORDER BY r.id DESC LIMIT 1) lr ON true;

GRANT SELECT ON taskflow.flow_status TO PUBLIC;
