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
CREATE OR REPLACE FUNCTION taskflow._owner_due_soon(p_owner oid, p_within integer)
RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM taskflow.flows f
                    WHERE f.next_due <= now() + make_interval(secs => p_within * 2)
                      AND f.owner = p_owner AND f.enabled)
$$;
REVOKE ALL ON FUNCTION taskflow._owner_due_soon(oid, integer) FROM PUBLIC;
