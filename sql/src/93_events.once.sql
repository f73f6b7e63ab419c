-- taskflow extension script, part 93 (install-only): catalog of event
-- triggers across flows, suspended runs and flow priority (owner: events;
-- twin: sql/upgrade/1.1.0--1.2.0/pre_93_events.sql).  The functions are in
-- part 93_events.sql.  See docs/operations.md ("Event triggers across
-- flows", "Suspend and resume a run", "Priority").

-- A run created by an event trigger (an upstream flow's run for the same
-- bizdate succeeded): trigger 'event'.  A running run can be suspended
-- (suspend_run): state 'suspended', no new node starts until resume_run.
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
