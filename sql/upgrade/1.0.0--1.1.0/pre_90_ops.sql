-- taskflow 1.0.0 -> 1.1.0, run operations delta (part 90_ops).

-- rerun gained from_node (a changed signature: the 2-argument one goes)
DROP FUNCTION IF EXISTS taskflow.rerun(bigint, boolean);

-- create_flow / alter_flow gained suspend_after_failures
DROP FUNCTION IF EXISTS taskflow.create_flow(text, text, text, text, boolean, integer, boolean,
                                             timestamptz, timestamptz, regrole);
DROP FUNCTION IF EXISTS taskflow.alter_flow(text, text, text, text, boolean, integer, boolean,
                                            timestamptz, timestamptz, regrole, text);

-- twin of sql/src/90_ops.once.sql
ALTER TABLE taskflow.flows ADD COLUMN suspend_after_failures integer
    CHECK (suspend_after_failures BETWEEN 1 AND 1000);
ALTER TABLE taskflow.flows ADD COLUMN suspended_reason text;
ALTER TABLE taskflow.flows ADD COLUMN resumed_at timestamptz;
GRANT INSERT (suspend_after_failures) ON taskflow.flows TO PUBLIC;
GRANT UPDATE (suspend_after_failures) ON taskflow.flows TO PUBLIC;
