-- taskflow extension script, part 92 (install-only): catalog columns of the
-- flow logic (owner: flowlogic; twin: sql/upgrade/1.1.0--1.2.0/pre_92_flowlogic.sql).
-- Trigger rules, the flow's finalizer node, branch nodes and their labelled
-- edges.  The rules themselves live in part 92_flowlogic.sql; see
-- docs/flow_logic.md.

-- When a node may start, given its upstream nodes' outcomes (Airflow's
-- trigger_rule).  Written by users (add_node / alter_node, column grants).
ALTER TABLE taskflow.nodes ADD COLUMN trigger_rule text NOT NULL DEFAULT 'all_success'
    CHECK (trigger_rule IN ('all_success', 'all_done', 'one_failed', 'all_failed', 'always',
                            'none_failed_min_one_success'));
-- The flow's finalizer (Snowflake FINALIZE): no edges, runs once every other
-- node of the run is done, whatever happened.  At most one per flow.
ALTER TABLE taskflow.nodes ADD COLUMN finalizer boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX nodes_one_finalizer ON taskflow.nodes (flow_id) WHERE finalizer;
GRANT INSERT (trigger_rule, finalizer) ON taskflow.nodes TO PUBLIC;
GRANT UPDATE (trigger_rule, finalizer) ON taskflow.nodes TO PUBLIC;

-- An edge out of a branch node followed only when the branch's result is
-- this value (NULL: always followed).  edges is user-writable as a whole.
ALTER TABLE taskflow.edges ADD COLUMN branch boolean;

-- skip_propagates: a node run skipped because no path to it was taken (a branch chose the
-- other way, or a trigger rule was not met): such a skip propagates.  A
-- rerun's carried-over node runs are 'skipped' with this false: they count
-- as succeeded for their downstream nodes.
ALTER TABLE taskflow.node_runs ADD COLUMN skip_propagates boolean NOT NULL DEFAULT false;
