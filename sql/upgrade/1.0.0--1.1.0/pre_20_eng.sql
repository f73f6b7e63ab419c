-- taskflow 1.0.0 -> 1.1.0, engine delta (twin of sql/src/15_engine.once.sql
-- and of the engine's signature changes).

ALTER TABLE taskflow.flows ADD COLUMN schedule_error text;
ALTER TABLE taskflow.node_runs ADD COLUMN wait_since timestamptz;

-- _node_begin returns two more columns (wait_ms, polls)
DROP FUNCTION IF EXISTS taskflow._node_begin(bigint, integer);
-- _sched_ready takes the owners of the running workers and returns the
-- owner cap, the candidate count and a dispatch sequence
DROP FUNCTION IF EXISTS taskflow._sched_ready(bigint[], integer);
-- _sched_advance takes an optional run / flow (row-by-row fallback)
DROP FUNCTION IF EXISTS taskflow._sched_advance();
