-- taskflow 1.1.0 -> 1.2.0: twin of sql/src/93_events.once.sql (event triggers,
-- suspended runs, flow priority).  Keep the statements identical; then the
-- DROPs of changed function signatures.
ALTER TABLE taskflow.runs DROP CONSTRAINT runs_trigger_check;
ALTER TABLE taskflow.runs ADD CONSTRAINT runs_trigger_check
    CHECK (trigger IN ('schedule', 'manual', 'backfill', 'rerun', 'event'));
ALTER TABLE taskflow.runs DROP CONSTRAINT runs_state_check;
ALTER TABLE taskflow.runs ADD CONSTRAINT runs_state_check
    CHECK (state IN ('scheduled', 'running', 'suspended', 'succeeded', 'failed', 'canceled'));
-- at most one event run per (flow, bizdate), whatever reruns of the
-- upstream flows do
CREATE UNIQUE INDEX runs_event_once ON taskflow.runs (flow_id, bizdate) WHERE trigger = 'event';

-- Dispatch priority 1 (lowest) .. 10 (highest) among the ready nodes of one
-- owner when more nodes are due than workers are free (_sched_ready).
-- Written by users (create_flow / alter_flow(..., priority => N), column
-- grants below), re-checked by the
-- trigger flows_guard_events (part 93) for direct DML.
ALTER TABLE taskflow.flows ADD COLUMN priority integer NOT NULL DEFAULT 5
    CHECK (priority BETWEEN 1 AND 10);
GRANT INSERT (priority) ON taskflow.flows TO PUBLIC;
GRANT UPDATE (priority) ON taskflow.flows TO PUBLIC;

-- Flow flow_id runs (trigger 'event') when every one of its upstream flows
-- has a succeeded run for the same bizdate.  Written only through the gate
-- (add_flow_trigger / drop_flow_trigger): naming another owner's flow needs
-- that owner's permission (trigger_grants).
CREATE TABLE taskflow.flow_triggers (
    flow_id     bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    upstream_id bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    created_by  regrole NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_id, upstream_id),
    CHECK (flow_id <> upstream_id)
);
CREATE INDEX ON taskflow.flow_triggers (upstream_id);

-- Flows of role grantee (and of its members) may be triggered by flow
-- flow_id although they are not owned by a member of its owner.  Written
-- only through the gate (allow_trigger / disallow_trigger) by members of
-- flow_id's owner.
CREATE TABLE taskflow.trigger_grants (
    flow_id    bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    grantee    regrole NOT NULL,
    granted_by regrole NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_id, grantee)
);

ALTER TABLE taskflow.flow_triggers ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.trigger_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY flow_triggers_member ON taskflow.flow_triggers FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY trigger_grants_member ON taskflow.trigger_grants FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
GRANT SELECT ON taskflow.flow_triggers, taskflow.trigger_grants TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('taskflow.flow_triggers', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.trigger_grants', '');

-- create_flow / alter_flow gained the argument priority (part 10): the old
-- signatures go first (IF EXISTS: another delta may have dropped them too)
DROP FUNCTION IF EXISTS taskflow.create_flow(text, text, text, text, boolean, integer, boolean,
                                             timestamptz, timestamptz, regrole, integer);
DROP FUNCTION IF EXISTS taskflow.alter_flow(text, text, text, text, boolean, integer, boolean,
                                            timestamptz, timestamptz, regrole, text, integer);
