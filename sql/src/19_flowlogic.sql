-- taskflow extension script, part 19: flow logic (replayable).  Owner:
-- flowlogic.  Catalog: part 92_flowlogic.once (nodes.trigger_rule,
-- nodes.finalizer, edges.branch, node_runs.skip_propagates).  See
-- docs/flow_logic.md.
--
-- What this part owns:
--   * when a pending node run may start, must wait, is skipped or is
--     upstream_failed, from its node's trigger rule and the outcomes of its
--     upstream node runs along each edge (_fl_decide); the engine asks it in
--     _sched_ready / _node_next_in_run (_fl_ready_ids) and settles pending
--     node runs with it in _sched_advance_runs (_fl_settle);
--   * the finalizer: waits for every other node run of the run;
--   * definition checks of trigger rules, finalizers and branch labels
--     (triggers on nodes and edges: the API and direct writes alike);
--   * small API helpers used by add_node / alter_node / add_edge / flow_graph.
-- The functions are plpgsql: they read columns of part 92 (an install-only
-- part that comes later in name order), resolved when called.

------------------------------------------------------------------------------
-- the rules
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._fl_rules() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY['all_success', 'all_done', 'one_failed', 'all_failed', 'always',
                 'none_failed_min_one_success']
$$;

-- The decision of trigger rule p_rule given the outcomes along the node's
-- incoming edges: n edges, of which succ succeeded, skip skipped (not taken),
-- fail failed (failed, upstream_failed, canceled), pend not finished.
-- 'run', 'wait', 'skipped' or 'upstream_failed'.  Airflow's semantics
-- (airflow/ti_deps/deps/trigger_rule_dep.py).
CREATE OR REPLACE FUNCTION taskflow._fl_rule(p_rule text, n bigint, succ bigint, skip bigint,
                                             fail bigint, pend bigint)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN n = 0 OR p_rule = 'always' THEN 'run'
        WHEN p_rule = 'all_success' THEN
            CASE WHEN fail > 0 THEN 'upstream_failed' WHEN skip > 0 THEN 'skipped'
                 WHEN pend > 0 THEN 'wait' ELSE 'run' END
        WHEN p_rule = 'all_done' THEN
            CASE WHEN pend > 0 THEN 'wait' ELSE 'run' END
        WHEN p_rule = 'one_failed' THEN
            CASE WHEN fail > 0 THEN 'run' WHEN pend > 0 THEN 'wait' ELSE 'skipped' END
        WHEN p_rule = 'all_failed' THEN
            CASE WHEN succ + skip > 0 THEN 'skipped' WHEN pend > 0 THEN 'wait' ELSE 'run' END
        WHEN p_rule = 'none_failed_min_one_success' THEN
            CASE WHEN fail > 0 THEN 'upstream_failed' WHEN pend > 0 THEN 'wait'
                 WHEN succ > 0 THEN 'run' ELSE 'skipped' END
        ELSE 'wait' END
$$;

-- What pending node run (p_run, p_node) does now.  Along each incoming edge
-- the upstream node run counts as:
--   succeeded: succeeded, or skipped as carried over by a rerun
--              (skip_propagates false), and for an edge labelled with a
--              branch value, only when the branch's result (rows: 1 true,
--              0 false, NULL unknown) equals the label; else skipped;
--   skipped:   skipped with skip_propagates (a path not taken);
--   failed:    failed, upstream_failed, canceled;
--   pending:   pending, running, retrying.
-- The finalizer waits until every other node run of the run is done.
CREATE OR REPLACE FUNCTION taskflow._fl_decide(p_run bigint, p_node bigint) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nd record;
    c  record;
BEGIN
    SELECT x.flow_id, x.trigger_rule, x.finalizer INTO nd FROM taskflow.nodes x WHERE x.id = p_node;
    IF NOT FOUND THEN
        RETURN 'wait';
    END IF;
    IF nd.finalizer THEN
        RETURN CASE WHEN EXISTS (SELECT 1 FROM taskflow.node_runs o
                                  WHERE o.run_id = p_run AND o.node_id <> p_node
                                    AND o.state IN ('pending', 'running', 'retrying'))
                    THEN 'wait' ELSE 'run' END;
    END IF;
    SELECT count(*) AS n,
           count(*) FILTER (WHERE s = 'succeeded') AS succ,
           count(*) FILTER (WHERE s = 'skipped') AS skip,
           count(*) FILTER (WHERE s = 'failed') AS fail,
           count(*) FILTER (WHERE s = 'pending') AS pend
      INTO c
      FROM (SELECT CASE
                       WHEN up.state = 'succeeded' OR (up.state = 'skipped' AND NOT up.skip_propagates) THEN
                           CASE WHEN e.branch IS NOT NULL AND e.branch IS DISTINCT FROM (up.rows = 1)
                                THEN 'skipped' ELSE 'succeeded' END
                       WHEN up.state = 'skipped' THEN 'skipped'
                       WHEN up.state IN ('failed', 'upstream_failed', 'canceled') THEN 'failed'
                       ELSE 'pending' END AS s
              FROM taskflow.edges e
              JOIN taskflow.node_runs up ON up.run_id = p_run AND up.node_id = e.from_node
             WHERE e.flow_id = nd.flow_id AND e.to_node = p_node) x;
    RETURN taskflow._fl_rule(nd.trigger_rule, c.n, c.succ, c.skip, c.fail, c.pend);
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_decide(bigint, bigint) FROM PUBLIC;

-- The node runs that may start now as far as their upstream nodes go:
-- pending or retrying node runs of the running runs among p_runs whose
-- trigger rule says 'run' (one probe per run: the scheduler passes the runs
-- that changed, part 99_ready).  Set-based: the engine asks it once
-- per query (_sched_ready, _node_next_in_run: "nr.id IN (SELECT ...)"),
-- not once per node run.  An all_success node (the common case) is judged
-- inline: no upstream that did not succeed (a rerun's carried-over skip
-- counts as success) and no labelled edge whose label is not its branch's
-- result; the finalizer: no other node run of its run left to finish; the
-- other rules through _fl_decide.
CREATE OR REPLACE FUNCTION taskflow._fl_ready_ids_in(p_runs bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- three queries, so that the planner can make the common one an anti-join
    RETURN QUERY
    -- (r.id = ANY: the plan cached for unknown arrays reads only the given
    -- runs; a join with unnest() read every running run and matched each
    -- against the array: 2 ms per call with 100 runs running, called per
    -- node by the warm workers; 1.7, issue 11)
    WITH x AS MATERIALIZED (
        SELECT nr.id, nr.run_id, nr.node_id, n.flow_id, n.trigger_rule, n.finalizer
          FROM taskflow.runs r
          CROSS JOIN LATERAL (SELECT y.id, y.run_id, y.node_id FROM taskflow.node_runs y
                               WHERE y.run_id = r.id AND y.state IN ('pending', 'retrying')
                              OFFSET 0) nr
          JOIN taskflow.nodes n ON n.id = nr.node_id
         WHERE r.id = ANY (p_runs) AND r.state = 'running')
    SELECT x.id FROM x
     WHERE x.trigger_rule = 'all_success' AND NOT x.finalizer
       AND NOT EXISTS (SELECT 1
                         FROM taskflow.edges e
                         JOIN taskflow.node_runs up
                           ON up.run_id = x.run_id AND up.node_id = e.from_node
                        WHERE e.flow_id = x.flow_id AND e.to_node = x.node_id
                          AND NOT ((up.state = 'succeeded'
                                    OR (up.state = 'skipped' AND NOT up.skip_propagates))
                                   AND (e.branch IS NULL
                                        OR e.branch IS NOT DISTINCT FROM (up.rows = 1))))
    UNION ALL
    SELECT x.id FROM x
     WHERE x.finalizer
       AND NOT EXISTS (SELECT 1 FROM taskflow.node_runs o
                        WHERE o.run_id = x.run_id AND o.node_id <> x.node_id
                          AND o.state IN ('pending', 'running', 'retrying'))
    UNION ALL
    SELECT x.id FROM x
     WHERE x.trigger_rule <> 'all_success' AND NOT x.finalizer
       AND taskflow._fl_decide(x.run_id, x.node_id) = 'run';
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_ready_ids_in(bigint[]) FROM PUBLIC;

-- The same for run p_run, or (NULL) for every running run.
CREATE OR REPLACE FUNCTION taskflow._fl_ready_ids(p_run bigint DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_run IS NOT NULL THEN
        RETURN QUERY SELECT taskflow._fl_ready_ids_in(ARRAY[p_run]);
    ELSE
        RETURN QUERY SELECT taskflow._fl_ready_ids_in(
            ARRAY(SELECT r.id FROM taskflow.runs r WHERE r.state = 'running'));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_ready_ids(bigint) FROM PUBLIC;

-- One round of settling the pending node runs of the running runs p_runs:
-- those whose rule says skipped or upstream_failed get that state.  The
-- number of node runs changed (_sched_advance_runs repeats until 0, so that
-- skips and failures propagate transitively).  Set-based for all_success
-- nodes (semi-joins, as in 1.1); only the node runs of other rules go
-- through _fl_decide.
CREATE OR REPLACE FUNCTION taskflow._fl_settle(p_runs bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
-- (the decisions into arrays first, then the UPDATE by id, and none when
-- nothing is decided -- the common case: as one UPDATE ... FROM, the cached
-- plan could scan every pending node run of the database and evaluate the
-- whole decision subquery for each (1,500 x 1,500 upstream probes, 9 s,
-- once a due time of 500 flows had its node runs created together); 1.8,
-- issue 11)
DECLARE
    k     integer;
    ids   bigint[];
    decs  text[];
    rules text[];
BEGIN
    SELECT array_agg(d.id), array_agg(d.decision), array_agg(d.rule)
      INTO ids, decs, rules
      FROM (WITH x AS MATERIALIZED (
                SELECT y.id, y.run_id, y.node_id, n.flow_id, n.trigger_rule
                  FROM taskflow.runs r
                  JOIN taskflow.node_runs y ON y.run_id = r.id AND y.state = 'pending'
                  JOIN taskflow.nodes n ON n.id = y.node_id
                 WHERE r.id = ANY (p_runs) AND r.state = 'running'
                   AND NOT n.finalizer)          -- (a finalizer only waits, then runs)
            -- all_success: an upstream failed ...
            SELECT x.id, x.trigger_rule AS rule, 'upstream_failed' AS decision FROM x
             WHERE x.trigger_rule = 'all_success'
               AND EXISTS (SELECT 1
                             FROM taskflow.edges e
                             JOIN taskflow.node_runs up
                               ON up.run_id = x.run_id AND up.node_id = e.from_node
                            WHERE e.flow_id = x.flow_id AND e.to_node = x.node_id
                              AND up.state IN ('failed', 'upstream_failed', 'canceled'))
            UNION ALL
            -- ... else one was not taken (skipped, or the branch chose the other label)
            SELECT x.id, x.trigger_rule, 'skipped' FROM x
             WHERE x.trigger_rule = 'all_success'
               AND EXISTS (SELECT 1
                             FROM taskflow.edges e
                             JOIN taskflow.node_runs up
                               ON up.run_id = x.run_id AND up.node_id = e.from_node
                            WHERE e.flow_id = x.flow_id AND e.to_node = x.node_id
                              AND ((up.state = 'skipped' AND up.skip_propagates)
                                   OR (e.branch IS NOT NULL
                                       AND up.state IN ('succeeded', 'skipped')
                                       AND e.branch IS DISTINCT FROM (up.rows = 1))))
               AND NOT EXISTS (SELECT 1
                                 FROM taskflow.edges e
                                 JOIN taskflow.node_runs up
                                   ON up.run_id = x.run_id AND up.node_id = e.from_node
                                WHERE e.flow_id = x.flow_id AND e.to_node = x.node_id
                                  AND up.state IN ('failed', 'upstream_failed', 'canceled'))
            UNION ALL
            -- the other rules
            SELECT x.id, x.trigger_rule, taskflow._fl_decide(x.run_id, x.node_id) FROM x
             WHERE x.trigger_rule <> 'all_success') d
     WHERE d.decision IN ('skipped', 'upstream_failed');
    IF ids IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE taskflow.node_runs nr
       SET state = d.decision, finished_at = clock_timestamp(),
           skip_propagates = (d.decision = 'skipped'),
           message = CASE
               WHEN d.decision = 'upstream_failed' THEN 'an upstream node did not succeed'
               WHEN d.rule = 'all_success' THEN 'skipped: an upstream node was skipped (a branch took the other path)'
               WHEN d.rule = 'one_failed' THEN 'skipped: trigger rule one_failed not met (no upstream node failed)'
               WHEN d.rule = 'all_failed' THEN 'skipped: trigger rule all_failed not met (an upstream node succeeded or was skipped)'
               ELSE format('skipped: trigger rule %s not met (every upstream node was skipped)', d.rule) END
      FROM unnest(ids, decs, rules) d(id, decision, rule)
     WHERE nr.id = d.id AND nr.state = 'pending';
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_settle(bigint[]) FROM PUBLIC;

-- set_node_success let some nodes of run p_run run again: its finalizer,
-- which ran already, runs again after them.
CREATE OR REPLACE FUNCTION taskflow._fl_reopen_finalizer(p_run bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE taskflow.node_runs x
       SET state = 'pending', started_at = NULL, finished_at = NULL, not_before = NULL,
           message = 'runs again: a node of the run was marked succeeded'
      FROM taskflow.nodes n
     WHERE x.run_id = p_run AND n.id = x.node_id AND n.finalizer
       AND x.state IN ('succeeded', 'failed', 'upstream_failed', 'skipped');
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_reopen_finalizer(bigint) FROM PUBLIC;

------------------------------------------------------------------------------
-- definition checks (API and direct writes)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._fl_check_rule(p_node text, p_rule text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_rule IS NULL OR NOT p_rule = ANY (taskflow._fl_rules()) THEN
        RAISE EXCEPTION 'unknown trigger rule "%" for node "%"', p_rule, p_node
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Trigger rules are: ' || array_to_string(taskflow._fl_rules(), ', ') || '.';
    END IF;
    RETURN p_rule;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._fl_nodes_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    other text;
BEGIN
    PERFORM taskflow._fl_check_rule(NEW.name, NEW.trigger_rule);
    IF NEW.finalizer THEN
        IF NEW.trigger_rule <> 'all_success' THEN
            RAISE EXCEPTION 'node "%" is the finalizer: it takes no trigger rule', NEW.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A finalizer runs once every other node of the run is done, whatever happened; leave trigger_rule at its default.';
        END IF;
        IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM taskflow.edges e
                                         WHERE e.flow_id = NEW.flow_id
                                           AND (e.from_node = NEW.id OR e.to_node = NEW.id)) THEN
            RAISE EXCEPTION 'node "%" has edges: it cannot be the finalizer', NEW.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A finalizer has no upstream or downstream nodes (it follows every node); drop its edges (taskflow.drop_edge) first.';
        END IF;
        SELECT x.name INTO other FROM taskflow.nodes x
         WHERE x.flow_id = NEW.flow_id AND x.finalizer AND x.id IS DISTINCT FROM NEW.id;
        IF other IS NOT NULL THEN
            RAISE EXCEPTION 'flow already has a finalizer: node "%"', other
                USING ERRCODE = 'duplicate_object',
                      HINT = 'A flow has at most one finalizer; alter_node(..., finalizer => false) the other one first.';
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.kind = 'branch' AND NEW.kind IS DISTINCT FROM 'branch'
       AND EXISTS (SELECT 1 FROM taskflow.edges e
                    WHERE e.flow_id = NEW.flow_id AND e.from_node = NEW.id AND e.branch IS NOT NULL) THEN
        RAISE EXCEPTION 'node "%" has edges labelled with a branch value: it must stay a branch node', NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Drop its labelled edges first.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER nodes_flowlogic BEFORE INSERT OR UPDATE ON taskflow.nodes
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._fl_nodes_check();

CREATE OR REPLACE FUNCTION taskflow._fl_edges_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a taskflow.nodes;
    b taskflow.nodes;
BEGIN
    SELECT * INTO a FROM taskflow.nodes x WHERE x.id = NEW.from_node;
    SELECT * INTO b FROM taskflow.nodes x WHERE x.id = NEW.to_node;
    IF a.finalizer OR b.finalizer THEN
        RAISE EXCEPTION 'node "%" is the finalizer of its flow: it has no edges',
                        CASE WHEN a.finalizer THEN a.name ELSE b.name END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A finalizer runs once every other node is done, whatever happened; use a node with trigger_rule => ''all_done'' to follow given nodes.';
    END IF;
    IF NEW.branch IS NOT NULL AND a.kind IS DISTINCT FROM 'branch' THEN
        RAISE EXCEPTION 'edge % -> % has a branch label, but "%" is a % node, not a branch node',
                        a.name, b.name, a.name, a.kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only edges out of a branch node carry branch => true or false.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER edges_flowlogic BEFORE INSERT OR UPDATE ON taskflow.edges
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._fl_edges_check();

-- Label the edge a -> b of flow f with p_branch (API: add_edge, add_node's
-- after).  An unlabelled edge out of a branch node is followed whatever the
-- result: allowed, with a WARNING, since it is usually a forgotten label.
CREATE OR REPLACE FUNCTION taskflow._fl_label_edge(f taskflow.flows, a text, b text, p_branch boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    na taskflow.nodes;
    nb taskflow.nodes;
BEGIN
    SELECT * INTO na FROM taskflow.nodes x WHERE x.flow_id = f.id AND x.name = a;
    SELECT * INTO nb FROM taskflow.nodes x WHERE x.flow_id = f.id AND x.name = b;
    IF p_branch IS NOT NULL THEN
        UPDATE taskflow.edges e SET branch = p_branch
         WHERE e.flow_id = f.id AND e.from_node = na.id AND e.to_node = nb.id;
    ELSIF na.kind = 'branch' THEN
        RAISE WARNING 'edge % -> % out of branch node "%" has no branch label: it is followed whatever the result', a, b, a
            USING HINT = 'Give branch => true or branch => false to follow it only on that result.';
    END IF;
END
$$;
