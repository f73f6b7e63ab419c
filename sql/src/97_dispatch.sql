-- taskflow extension script, part 97: helpers of the dispatch/definition
-- fast paths (replayable).  Owner: dispatch (issue 11).  See
-- docs/performance.md.

-- Did the current transaction (or one of its subtransactions) write the row
-- version with this xmin?  Then it holds the row's lock already (C,
-- define_fast.c).  The definition API locks a flow and bumps updated_at
-- once per transaction with it, not once per node and edge.
CREATE OR REPLACE FUNCTION taskflow._row_is_mine(xmin xid) RETURNS boolean
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_row_is_mine';

-- Is a flow of this owner due within the next 'within' seconds?  An idle
-- warm worker of the owner asks when its idle timeout is up, and stays for
-- another period if so (worker.c, tf_worker_due_soon): a flow due every
-- minute finds a warm worker instead of forking one.  One range scan of
-- the index on flows.next_due (next_due: the flow's next fire time).
-- (Not EXISTS: planned for unknown parameters -- a LANGUAGE sql function
-- with SET is never inlined; PL/pgSQL's plan cache goes generic -- an EXISTS
-- expects a match within the first rows of a sequential scan and reads
-- every flow when none is due: 537 pages, 1.5-3.9 ms at 10,000 flows, in
-- each idle worker whose timeout comes up, right around a due time; in
-- next_due order it is an index range scan whatever the plan.  Issue 11.)
CREATE OR REPLACE FUNCTION taskflow._owner_due_soon(p_owner oid, p_within integer)
RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM 1 FROM taskflow.flows f
      WHERE f.next_due <= now() + make_interval(secs => p_within * 2)
        AND f.owner = p_owner AND f.enabled
      ORDER BY f.next_due LIMIT 1;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION taskflow._owner_due_soon(oid, integer) FROM PUBLIC;

-- A warm worker's next node run when its own run has none ready: the oldest
-- ready node runs of the other running runs of the same owner (worker.c,
-- tf_worker_next_in_run), so that 100 flows due at once or a backlog of one
-- owner flow through its warm workers without a scheduler pass per node.
-- Readiness is _node_next_in_run's (one definition: _fl_ready_ids_in); the
-- runs are the 8 oldest running ones with a pending or retrying node run
-- not handed to a worker (p_exclude) among those that may have one ready
-- (the scheduler's ready set and change queue, part 99_ready: not every
-- running run of the owner): a bounded cost per node; when none of them
-- has a ready node (chains waiting on running upstreams) the worker goes
-- idle and the scheduler's ranking decides, as before.
-- (1.7: one query over the 8 runs, readiness judged for all of them in one
-- call; 1.6 called _node_next_in_run per run, a LANGUAGE sql function
-- planned again at every call: 16 ms per pull with 100 runs due at once,
-- most of a worker's time per node; and its 8 runs were often the ones
-- whose nodes other workers had just been handed, so it found nothing.
-- Issue 11.)
CREATE OR REPLACE FUNCTION taskflow._node_next_for_owner(p_owner oid, p_exclude bigint[],
                                                        p_limit integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    runs  bigint[];
    ready bigint[];
BEGIN
    runs := ARRAY(
        SELECT r.id
          FROM (SELECT s.run_id FROM taskflow.sched_ready s
                UNION
                SELECT q.run_id FROM (SELECT y.run_id FROM taskflow.sched_queue y
                                       LIMIT 2000) q) c
          JOIN taskflow.runs r ON r.id = c.run_id
          JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE r.state = 'running' AND f.owner = p_owner
           AND EXISTS (SELECT 1 FROM taskflow.node_runs nr
                        WHERE nr.run_id = r.id AND nr.state IN ('pending', 'retrying')
                          AND nr.id <> ALL (coalesce(p_exclude, '{}')))
         -- within one owner, as _sched_ready: higher flow priority first
         ORDER BY f.priority DESC, r.scheduled_for, r.id
         LIMIT 8);
    IF cardinality(runs) = 0 THEN
        RETURN;
    END IF;
    -- (into an array first: as "IN (SELECT srf(...))" the planner may call
    -- it again for every row of the join)
    ready := ARRAY(SELECT taskflow._fl_ready_ids_in(runs));   -- trigger rules (part 19)
    RETURN QUERY
    SELECT nr.id
      FROM unnest(runs) WITH ORDINALITY u(id, k)
      JOIN taskflow.node_runs nr ON nr.run_id = u.id
     WHERE (nr.state = 'pending'
            OR (nr.state = 'retrying' AND nr.not_before <= clock_timestamp()))
       AND nr.id <> ALL (coalesce(p_exclude, '{}'))
       AND nr.id = ANY (ready)
     ORDER BY u.k, nr.id
     LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION taskflow._node_next_for_owner(oid, bigint[], integer) FROM PUBLIC;
