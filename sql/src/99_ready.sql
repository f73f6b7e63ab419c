-- taskflow extension script, part 99_ready: the scheduler's ready-node read
-- over what changed (replayable).  Owner: ready (issue 11).  Catalog: part
-- 99_ready.once (taskflow.sched_ready).  See docs/performance.md ("Ready
-- nodes: what changed, not every running run").
--
-- A node run becomes ready only when something happens to its run: the run
-- starts running (created, promoted, rerun), an upstream node run finishes
-- (or is settled skipped / upstream_failed: trigger rules, branches, the
-- finalizer), a retry or a wait node's next poll comes due, or the worker it
-- was handed to leaves before starting it.  The first two are noted in
-- taskflow.sched_queue by the triggers of part 51 in the changing
-- transaction; the scheduler's tick takes them off and keeps the running
-- ones in taskflow.sched_ready (_sched_ready_note).  The ready-node read
-- (_sched_ready_next) looks only at the runs of sched_ready, of the queue
-- (not yet taken: the read before the tick), with a retry due, or with a
-- node run whose worker left; it keeps in sched_ready the runs that still
-- have a node run ready (held back: no free worker, an owner at its cap)
-- and drops the others.  The safety sweep of the tick (every running run,
-- every 60 s, and at scheduler start) puts every running run in, so that a
-- missed note delays a node, never loses it.  With
-- taskflow.scheduler_ready_incremental off the read looks at every running
-- run (as before 1.5).  search_path pinned; not executable by PUBLIC.

-- The node runs of this database held by a live (or starting) worker, read
-- from shared memory when called (scheduler.c): _sched_recover reads it
-- after its snapshot, so that a node run a warm worker claimed and began
-- after the scheduler's pass started is never taken for one left by a dead
-- worker.
CREATE OR REPLACE FUNCTION taskflow._live_node_runs() RETURNS bigint[]
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'tf_sql_live_node_runs';

-- The running runs among p_runs (advanced by the tick) may have a ready node.
CREATE OR REPLACE FUNCTION taskflow._sched_ready_note(p_runs bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF cardinality(p_runs) > 0 THEN
        INSERT INTO taskflow.sched_ready (run_id)
        SELECT r.id FROM taskflow.runs r
         WHERE r.id = ANY (p_runs) AND r.state = 'running'
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

-- The runs whose node runs may be ready: the ready set, the queue (at most
-- p_queue entries of it), runs with a retry or poll due, runs of the node
-- runs p_released (handed to a worker at the last read, whose worker is gone
-- now) still pending; with p_full every running run as well.
CREATE OR REPLACE FUNCTION taskflow._sched_ready_runs(p_released bigint[], p_full boolean)
RETURNS bigint[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_full THEN
        RETURN ARRAY(SELECT r.id FROM taskflow.runs r WHERE r.state = 'running'
                     UNION SELECT s.run_id FROM taskflow.sched_ready s);
    END IF;
    RETURN ARRAY(SELECT s.run_id FROM taskflow.sched_ready s
                 UNION
                 SELECT q.run_id FROM (SELECT x.run_id FROM taskflow.sched_queue x LIMIT 2000) q
                 UNION
                 SELECT nr.run_id FROM taskflow.node_runs nr
                  WHERE nr.state = 'retrying' AND nr.not_before <= clock_timestamp()
                 UNION
                 SELECT nr.run_id FROM taskflow.node_runs nr
                  WHERE nr.id = ANY (coalesce(p_released, '{}'))
                    AND nr.state IN ('pending', 'retrying'));
END
$$;

-- The scheduler's ready-node read (scheduler.c, tf_pass_dispatch): the rows
-- of _sched_ready_in (part 20: readiness, fairness, caps) over the runs of
-- _sched_ready_runs; then the ready set keeps the runs with a node run
-- ready (those handed out now are dropped by the next read: running, or
-- excluded as handed to a live worker) and drops the rest.
CREATE OR REPLACE FUNCTION taskflow._sched_ready_next(p_released bigint[], p_full boolean,
                                                      p_exclude bigint[], p_limit integer,
                                                      p_running oid[])
RETURNS TABLE (node_run_id bigint, run_id bigint, owner oid, owner_login boolean,
               flow text, node text, dispatch_seq integer, owner_cap integer, eligible boolean,
               owner_running integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    cands bigint[] := taskflow._sched_ready_runs(p_released, p_full);
    ready bigint[];
    seen  boolean := false;
    x     record;
BEGIN
    FOR x IN SELECT * FROM taskflow._sched_ready_in(cands, p_exclude, p_limit, p_running) LOOP
        IF NOT seen THEN
            ready := x.ready_runs;
            seen := true;
        END IF;
        node_run_id := x.node_run_id;
        run_id := x.run_id;
        owner := x.owner;
        owner_login := x.owner_login;
        flow := x.flow;
        node := x.node;
        dispatch_seq := x.dispatch_seq;
        owner_cap := x.owner_cap;
        eligible := x.eligible;
        owner_running := x.owner_running;
        RETURN NEXT;
    END LOOP;
    DELETE FROM taskflow.sched_ready s
     WHERE s.run_id = ANY (cands) AND s.run_id <> ALL (coalesce(ready, '{}'));
    -- (only what changes: a read that changes nothing writes nothing)
    IF cardinality(ready) > 0 THEN
        INSERT INTO taskflow.sched_ready (run_id)
        SELECT u.id FROM unnest(ready) u(id)
         WHERE NOT EXISTS (SELECT 1 FROM taskflow.sched_ready s WHERE s.run_id = u.id)
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION
    taskflow._live_node_runs(),
    taskflow._sched_ready_note(bigint[]),
    taskflow._sched_ready_runs(bigint[], boolean),
    taskflow._sched_ready_next(bigint[], boolean, bigint[], integer, oid[])
FROM PUBLIC;
