-- taskflow extension script, part 90 (install-only): catalog columns of the
-- run operations (owner: ops; twin: sql/upgrade/1.0.0--1.1.0/pre_90_ops.sql).
-- See docs/operations.md ("Auto-suspend").

-- Disable the flow after this many consecutive failed runs (NULL: never);
-- written by users (create_flow / alter_flow, column grants below),
-- re-checked by the catalog guard (part 15).
ALTER TABLE taskflow.flows ADD COLUMN suspend_after_failures integer
    CHECK (suspend_after_failures BETWEEN 1 AND 1000);
-- Why the engine disabled the flow (NULL when it did not); set by the
-- trigger runs_suspend (part 90), cleared when the flow is enabled again.
-- Not writable by users (no column privilege).
ALTER TABLE taskflow.flows ADD COLUMN suspended_reason text;
-- When the flow was last enabled again (trigger flows_resume): runs that
-- finished before do not count towards suspend_after_failures.
ALTER TABLE taskflow.flows ADD COLUMN resumed_at timestamptz;
GRANT INSERT (suspend_after_failures) ON taskflow.flows TO PUBLIC;
GRANT UPDATE (suspend_after_failures) ON taskflow.flows TO PUBLIC;
