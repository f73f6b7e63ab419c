-- taskflow extension script, part 99_ready6: a warm worker's next node run
-- of its own run, judged lazily (replayable).  Owner: ready (issue 11,
-- 1.8).  Replaces the definition of taskflow._node_next_in_run of part 20.
-- See docs/performance.md ("1.8: the ready path's CPU (soak, fan-out)").
--
-- A warm worker that just finished a node run of run p_run_id asks for the
-- next node runs of that run ready to start (lowest id first, at most
-- p_limit, not among p_exclude: node runs held by other workers); it takes
-- the first one no other worker claimed meanwhile (worker.c,
-- tf_worker_next_in_run).  It is called after every node.  1.7 judged the
-- readiness of every pending node run of the run (_fl_ready_ids_in, part
-- 19) and then kept p_limit of them: O(pending nodes) per call, O(n^2) per
-- run -- a 300-node fan-out judged ~45,000 node runs to start 300.  Here
-- the candidates are read in id order and judged one after the other
-- until p_limit are found: a fan-out's first candidates are ready, so a
-- call judges about p_limit node runs.
--
-- Readiness is _fl_ready_ids_in's, rule for rule (part 19; the same three
-- branches): a finalizer when no other node run of its run is left to
-- finish; an all_success node when every upstream succeeded (or was
-- skipped without propagating) and every labelled edge matches its
-- branch's result; any other rule through _fl_decide.
-- search_path pinned; not executable by PUBLIC.
CREATE OR REPLACE FUNCTION taskflow._node_next_in_run(p_run_id bigint, p_exclude bigint[],
                                           p_limit integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT c.id
      FROM (SELECT nr.id, nr.node_id, n.flow_id, n.trigger_rule, n.finalizer
              FROM taskflow.runs r
              JOIN taskflow.node_runs nr ON nr.run_id = r.id
              JOIN taskflow.nodes n ON n.id = nr.node_id
             WHERE r.id = p_run_id AND r.state = 'running'
               AND nr.state IN ('pending', 'retrying')
               AND (nr.state = 'pending' OR nr.not_before <= clock_timestamp())
               AND nr.id <> ALL (coalesce(p_exclude, '{}'))
             ORDER BY nr.id
            -- (OFFSET 0: the test below stays above the sort, evaluated
            -- row by row until the LIMIT is met)
            OFFSET 0) c
     WHERE CASE
             WHEN c.finalizer THEN
               NOT EXISTS (SELECT 1 FROM taskflow.node_runs o
                            WHERE o.run_id = p_run_id AND o.node_id <> c.node_id
                              AND o.state IN ('pending', 'running', 'retrying'))
             WHEN c.trigger_rule = 'all_success' THEN
               NOT EXISTS (SELECT 1
                             FROM taskflow.edges e
                             JOIN taskflow.node_runs up
                               ON up.run_id = p_run_id AND up.node_id = e.from_node
                            WHERE e.flow_id = c.flow_id AND e.to_node = c.node_id
                              AND NOT ((up.state = 'succeeded'
                                        OR (up.state = 'skipped' AND NOT up.skip_propagates))
                                       AND (e.branch IS NULL
                                            OR e.branch IS NOT DISTINCT FROM (up.rows = 1))))
             ELSE taskflow._fl_decide(p_run_id, c.node_id) = 'run'
           END
     LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION taskflow._node_next_in_run(bigint, bigint[], integer) FROM PUBLIC;
