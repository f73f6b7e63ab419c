-- taskflow extension script, part 25: run-and-wait in one call.
-- Owner: the engine (see docs/operations.md).
--
--   CALL taskflow.run('flow', bizdate => '2020-06-01');
--
-- run_flow() and wait_run() cannot share a transaction: a run starts only
-- once the transaction that created it commits.  This procedure creates the
-- run, COMMITs, waits, and raises an error naming the failed nodes when the
-- run fails or is canceled.  It must be called outside an explicit
-- transaction block (CALL at top level), as any procedure that commits.
--
-- A procedure that commits cannot pin search_path (SET clauses forbid
-- transaction control), so the procedure is C (src/run_call.c): it runs two
-- schema-qualified, exactly typed queries; waiting and the error report are
-- _run_outcome, which pins search_path.

-- The final state of a run after waiting up to 'timeout'; an ERROR when the
-- run failed or was canceled, with the failed nodes' errors as the DETAIL and
-- the first failed node's SQLSTATE (57014 for a cancel).
CREATE OR REPLACE FUNCTION taskflow._run_outcome(run_id bigint, timeout interval)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st     text := taskflow.wait_run(run_id, timeout);
    fname  text;
    detail text;
    code   text;
BEGIN
    IF st NOT IN ('failed', 'canceled') THEN
        RETURN st;
    END IF;
    SELECT f.name INTO fname
      FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
     WHERE r.id = _run_outcome.run_id;
    SELECT string_agg(format('node "%s" %s%s', h.node, h.state,
                             CASE WHEN h.error IS NOT NULL
                                  THEN format(': %s%s', h.error,
                                              CASE WHEN h.sqlstate IS NOT NULL
                                                   THEN format(' (SQLSTATE %s)', h.sqlstate) END)
                             END), E'\n' ORDER BY h.node_run_id),
           (array_agg(h.sqlstate ORDER BY h.node_run_id)
                FILTER (WHERE h.state = 'failed' AND h.sqlstate ~ '^[0-9A-Z]{5}$'))[1]
      INTO detail, code
      FROM taskflow.node_run_history h
     WHERE h.run_id = _run_outcome.run_id
       AND h.state IN ('failed', 'upstream_failed', 'canceled');
    RAISE EXCEPTION 'run % of flow "%" %', run_id, fname, st
        USING ERRCODE = CASE WHEN st = 'canceled' THEN '57014' ELSE coalesce(code, 'P0001') END,
              DETAIL = coalesce(detail, 'no node failed; see the run''s message in taskflow.run_history'),
              HINT = format('SELECT node, state, error, log FROM taskflow.node_run_history WHERE run_id = %s;', run_id);
END
$$;

CREATE OR REPLACE PROCEDURE taskflow.run(flow text, bizdate date DEFAULT NULL,
                                         params jsonb DEFAULT '{}',
                                         wait boolean DEFAULT true,
                                         timeout interval DEFAULT '1 hour',
                                         INOUT run_id bigint DEFAULT NULL,
                                         INOUT state text DEFAULT NULL)
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_run_procedure';
COMMENT ON PROCEDURE taskflow.run(text, date, jsonb, boolean, interval, bigint, text) IS
    'start a run, commit, wait for it (wait => true) and raise if it fails; CALL at top level';
