-- taskflow 1.1.0 -> 1.2.0, flow logic delta (part 92_flowlogic).

-- add_node / alter_node gained trigger_rule, finalizer (and add_node branch),
-- add_edge gained branch
DROP FUNCTION IF EXISTS taskflow.add_node(text, text, text, text, jsonb, integer, interval,
                                          interval, text[]);
DROP FUNCTION IF EXISTS taskflow.alter_node(text, text, text, jsonb, integer, interval,
                                            interval, text);
DROP FUNCTION IF EXISTS taskflow.add_edge(text, text, text);

-- twin of sql/src/92_flowlogic.once.sql
ALTER TABLE taskflow.nodes ADD COLUMN trigger_rule text NOT NULL DEFAULT 'all_success'
    CHECK (trigger_rule IN ('all_success', 'all_done', 'one_failed', 'all_failed', 'always',
                            'none_failed_min_one_success'));
ALTER TABLE taskflow.nodes ADD COLUMN finalizer boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX nodes_one_finalizer ON taskflow.nodes (flow_id) WHERE finalizer;
GRANT INSERT (trigger_rule, finalizer) ON taskflow.nodes TO PUBLIC;
GRANT UPDATE (trigger_rule, finalizer) ON taskflow.nodes TO PUBLIC;
ALTER TABLE taskflow.edges ADD COLUMN branch boolean;
ALTER TABLE taskflow.node_runs ADD COLUMN skip_propagates boolean NOT NULL DEFAULT false;
