-- taskflow extension script, part 91_outvars (replayable): output variables
-- of sql nodes and the check nodes' catalog side.
--
--   * output variables: a sql node's first result row becomes
--     ${node.column} for the nodes downstream of it (docs/variables.md,
--     "Output variables"): recorded by the worker (_node_outputs, in the
--     node's transaction), read for an attempt (_output_variables),
--     checked at definition (_check_node_outputs: the node exists and is
--     upstream), shown in node_run_history.outputs and by
--     render(..., run_id => ...);
--   * check nodes (src/node_check.c): _check_flow (the condition of a
--     check_flow node, run as the flow owner) and _validate_check_flow.

------------------------------------------------------------------------------
-- output variables
------------------------------------------------------------------------------

-- render() without a run: output variables stay as written (variables.c)
CREATE OR REPLACE FUNCTION taskflow._render_text_dry(template text, vars jsonb, what text DEFAULT 'template')
RETURNS text
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'tf_render_text_dry';

-- Record the outputs of a node run (the worker, with its success record).
CREATE OR REPLACE FUNCTION taskflow._node_outputs(p_node_run_id bigint, p_outputs jsonb)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE taskflow.node_runs SET outputs = p_outputs
     WHERE id = p_node_run_id AND state = 'succeeded';
$$;
REVOKE ALL ON FUNCTION taskflow._node_outputs(bigint, jsonb) FROM PUBLIC;

-- The output variables a node of run p_run_id sees: {"up.column": value}
-- for every node upstream of it (transitively) whose node run in that run
-- succeeded, or was taken over from the rerun's old run ('skipped', with the
-- outputs copied), and recorded outputs.
CREATE OR REPLACE FUNCTION taskflow._output_variables(p_run_id bigint, p_node_id bigint)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE fl AS (SELECT n.flow_id FROM taskflow.nodes n WHERE n.id = p_node_id),
    up(id) AS (
        SELECT e.from_node FROM taskflow.edges e, fl
         WHERE e.flow_id = fl.flow_id AND e.to_node = p_node_id
        UNION
        SELECT e.from_node FROM taskflow.edges e JOIN up ON e.to_node = up.id, fl
         WHERE e.flow_id = fl.flow_id)
    SELECT coalesce(jsonb_object_agg(n.name || '.' || o.key, o.value), '{}')
      FROM up
      JOIN taskflow.nodes n ON n.id = up.id
      JOIN taskflow.node_runs nr ON nr.run_id = p_run_id AND nr.node_id = up.id
                                AND nr.state IN ('succeeded', 'skipped')
                                AND nr.outputs IS NOT NULL
      CROSS JOIN LATERAL jsonb_each(nr.outputs) o
$$;

-- The output variable references (node.column) of a template.
CREATE OR REPLACE FUNCTION taskflow._output_refs(template text)
RETURNS TABLE (ref text, node text, col text)
LANGUAGE sql IMMUTABLE ROWS 3
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v, split_part(v, '.', 1), split_part(v, '.', 2)
      FROM taskflow._template_vars(template) v
     WHERE strpos(v, '.') > 0
$$;

-- Check the output variable references of a node of flow f: each names
-- another node of the flow that is upstream of it (with p_node_id; without,
-- when the node's edges are not known yet, only that the node exists).
-- culprit NULL: the node itself is being defined (22023); else the change
-- that would break the references of this other node (2BP01).
CREATE OR REPLACE FUNCTION taskflow._check_node_outputs(f taskflow.flows, p_node_id bigint,
                                                        node text, body text, options jsonb,
                                                        culprit text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t        record;
    r        record;
    need     text[] := '{}';
    frontier bigint[];
    seen     bigint[];
    nxt      bigint[];
    names    text;
BEGIN
    -- most nodes use no output variables: a cheap test first
    IF coalesce(body, '') || coalesce(options::text, '') !~ E'\\$\\{[A-Za-z_][A-Za-z0-9_-]*\\.' THEN
        RETURN;
    END IF;
    -- (one template at a time: a join of the two set-returning functions
    -- is estimated at a million rows, which would start JIT compilation)
    FOR t IN SELECT * FROM taskflow._node_templates(node, body, options) LOOP
    FOR r IN SELECT t.what, o.ref, o.node AS up
               FROM taskflow._output_refs(t.template) o ORDER BY o.ref LOOP
        IF r.up = node THEN
            RAISE EXCEPTION 'node "%" cannot use its own output ${%} in %', node, r.ref, r.what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Output variables reach the nodes downstream of the node that made them.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM taskflow.nodes n WHERE n.flow_id = f.id AND n.name = r.up) THEN
            SELECT string_agg(n.name, ', ' ORDER BY n.name) INTO names
              FROM taskflow.nodes n WHERE n.flow_id = f.id AND (culprit IS NOT NULL OR n.name <> node);
            RAISE EXCEPTION '%unknown node "%" in output variable ${%} in %',
                            CASE WHEN culprit IS NULL THEN '' ELSE culprit || ' would leave an ' END,
                            r.up, r.ref, r.what
                USING ERRCODE = CASE WHEN culprit IS NULL THEN 'invalid_parameter_value'
                                     ELSE 'dependent_objects_still_exist' END,
                      DETAIL = format('Nodes of flow "%s": %s.', f.name, coalesce(names, '(none)')),
                      HINT = CASE WHEN culprit IS NULL
                                  THEN 'Write ${node.column} with the name of an upstream node.'
                                  ELSE format('Change or drop node "%s" first (taskflow.alter_node / taskflow.drop_node).', node) END;
        END IF;
        IF r.up <> ALL (need) THEN
            need := need || r.up;
        END IF;
    END LOOP;
    END LOOP;
    IF p_node_id IS NULL OR cardinality(need) = 0 THEN
        RETURN;
    END IF;

    -- upward from the node, level by level, until every referenced node is
    -- found (edges (flow_id, to_node) index)
    frontier := ARRAY[p_node_id];
    seen := frontier;
    WHILE cardinality(need) > 0 AND cardinality(frontier) > 0 LOOP
        SELECT array_agg(DISTINCT e.from_node) INTO nxt
          FROM taskflow.edges e
         WHERE e.flow_id = f.id AND e.to_node = ANY (frontier) AND e.from_node <> ALL (seen);
        EXIT WHEN nxt IS NULL;
        seen := seen || nxt;
        need := ARRAY(SELECT x FROM unnest(need) x
                       WHERE x NOT IN (SELECT n.name FROM taskflow.nodes n WHERE n.id = ANY (nxt)));
        frontier := nxt;
    END LOOP;

    FOR t IN SELECT * FROM taskflow._node_templates(node, body, options) LOOP
    FOR r IN SELECT t.what, o.ref, o.node AS up
               FROM taskflow._output_refs(t.template) o
              WHERE o.node = ANY (need) ORDER BY o.ref LOOP
        IF culprit IS NULL THEN
            RAISE EXCEPTION 'node "%" is not upstream of node "%": ${%} in %', r.up, node, r.ref, r.what
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A node sees the outputs of the nodes it depends on (directly or through other nodes).',
                      HINT = format('Add the edge first: taskflow.add_edge(%L, %L, %L), or add_node(..., after => ARRAY[%L]).',
                                    f.name, r.up, node, r.up);
        ELSE
            RAISE EXCEPTION '% would leave ${%} in % without its upstream node "%"', culprit, r.ref, r.what, r.up
                USING ERRCODE = 'dependent_objects_still_exist',
                      DETAIL = format('Node "%s" would no longer depend on node "%s".', node, r.up),
                      HINT = format('Change node "%s" first (taskflow.alter_node), or keep a path from "%s" to it.', node, r.up);
        END IF;
    END LOOP;
    END LOOP;
END
$$;

-- After a change to flow f that can take upstream nodes away (drop_edge,
-- drop_node, a renamed node): check the nodes that use output variables
-- (of node 'of' only, when given); culprit words the change.
CREATE OR REPLACE FUNCTION taskflow._check_flow_outputs(f taskflow.flows, culprit text, of text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n taskflow.nodes;
BEGIN
    FOR n IN SELECT * FROM taskflow.nodes x
              WHERE x.flow_id = f.id
                AND (coalesce(x.body, '') || x.options::text)
                    ~ CASE WHEN of IS NULL THEN E'\\$\\{[A-Za-z_][A-Za-z0-9_-]*\\.'
                           ELSE E'\\$\\{' || regexp_replace(of, '([^A-Za-z0-9_])', E'\\\\\\1', 'g') || E'\\.' END
              ORDER BY x.name LOOP
        PERFORM taskflow._check_node_outputs(f, n.id, n.name, n.body, n.options, culprit);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- check nodes (src/node_check.c)
------------------------------------------------------------------------------

-- The condition of a check_flow node: has a run of flow 'flow' for bizdate
-- succeeded?  Runs as the flow owner (SECURITY INVOKER): row level security
-- hides the flows the owner may not see, and those look exactly like flows
-- that do not exist.
CREATE OR REPLACE FUNCTION taskflow._check_flow(flow text, bizdate date) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fid bigint;
BEGIN
    SELECT x.id INTO fid FROM taskflow.flows x WHERE x.name = _check_flow.flow;
    IF fid IS NULL THEN
        RAISE EXCEPTION 'flow "%" does not exist', _check_flow.flow
            USING ERRCODE = 'undefined_object',
                  HINT = 'Either there is no such flow or the owner of this flow is not a member of its owner.';
    END IF;
    RETURN EXISTS (SELECT 1 FROM taskflow.runs r
                    WHERE r.flow_id = fid AND r.bizdate = _check_flow.bizdate
                      AND r.state = 'succeeded');
END
$$;

-- Definition of a check_flow node of flow f: the flow it waits for exists
-- and its owner may see it (as _check_flow will see it at run time).
CREATE OR REPLACE FUNCTION taskflow._validate_check_flow(f taskflow.flows, node text, body text, o jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF o->>'flow' = f.name THEN
        RAISE EXCEPTION 'check_flow node "%" waits for its own flow "%"', node, f.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A run cannot wait for a run of its own flow to succeed; name another flow.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM taskflow.flows y
                    WHERE y.name = o->>'flow'
                      AND pg_has_role(f.owner, y.owner, 'MEMBER')) THEN
        RAISE EXCEPTION 'flow "%" does not exist', o->>'flow'
            USING ERRCODE = 'undefined_object',
                  HINT = 'Either there is no such flow or the owner of this flow is not a member of its owner.';
    END IF;
END
$$;

------------------------------------------------------------------------------
-- history: node_run_history (defined here, after part 91_outvars.once adds
-- node_runs.outputs, its last column)
------------------------------------------------------------------------------

CREATE OR REPLACE VIEW taskflow.node_run_history WITH (security_invoker = true) AS
SELECT nr.id AS node_run_id,
       nr.run_id,
       f.name AS flow,
       n.name AS node,
       n.kind,
       r.bizdate,
       nr.state,
       nr.attempt AS attempts,
       nr.started_at,
       nr.finished_at,
       nr.finished_at - nr.started_at AS duration,
       nr.not_before,
       nr.rows,
       nr.bytes,
       nr.message AS error,
       nr.sqlstate,
       nr.rendered,
       nr.log,
       nr.worker_pid,
       nr.outputs
  FROM taskflow.node_runs nr
  JOIN taskflow.runs r ON r.id = nr.run_id
  JOIN taskflow.flows f ON f.id = r.flow_id
  JOIN taskflow.nodes n ON n.id = nr.node_id;
GRANT SELECT ON taskflow.node_run_history TO PUBLIC;

------------------------------------------------------------------------------
-- the catalog guard for output variables (direct DELETE/UPDATE)
------------------------------------------------------------------------------

-- Users may DELETE edges and nodes and UPDATE edges and node names
-- directly (part 00 grants); after such a write, the nodes of the flow that
-- use output variables must still name upstream nodes, as after drop_edge,
-- drop_node and alter_node(new_name => ...).  Superusers are trusted (part
-- 15); rows deleted with their flow (drop_flow) or edges deleted with their
-- node (drop_node: the node's own check covers them) are skipped.
CREATE OR REPLACE FUNCTION taskflow._outputs_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    a text;
    b text;
BEGIN
    IF taskflow._guard_trusted() THEN
        RETURN NULL;
    END IF;
    SELECT * INTO f FROM taskflow.flows x WHERE x.id = OLD.flow_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'edges' THEN
        SELECT n.name INTO a FROM taskflow.nodes n WHERE n.id = OLD.from_node;
        SELECT n.name INTO b FROM taskflow.nodes n WHERE n.id = OLD.to_node;
        IF a IS NOT NULL AND b IS NOT NULL THEN
            PERFORM taskflow._check_flow_outputs(f, format('dropping edge %s -> %s', a, b));
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM taskflow._check_flow_outputs(f, format('dropping node "%s"', OLD.name), OLD.name);
    ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
        PERFORM taskflow._check_flow_outputs(f, format('renaming node "%s" to "%s"', OLD.name, NEW.name),
                                             OLD.name);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER edges_outputs_guard AFTER DELETE OR UPDATE ON taskflow.edges
    FOR EACH ROW EXECUTE FUNCTION taskflow._outputs_guard();
CREATE OR REPLACE TRIGGER nodes_outputs_guard AFTER DELETE OR UPDATE OF name ON taskflow.nodes
    FOR EACH ROW EXECUTE FUNCTION taskflow._outputs_guard();
