-- taskflow extension script, part 15: the engine's catalog columns.
-- An install-only part (*.once.sql); its twin for updates is
-- sql/upgrade/1.0.0--1.1.0/pre_20_eng.sql.  Owner: the engine.

-- The scheduler's last error for this flow (invalid schedule or time zone,
-- a catch-up that had to skip periods, ...): set when it changes (and
-- logged then), cleared when the flow schedules cleanly again.
ALTER TABLE taskflow.flows ADD COLUMN schedule_error text;

-- A wait node between polls gives its worker back: the node run goes back
-- to 'retrying' with not_before = the next poll, and wait_since keeps the
-- start of the wait (its timeout counts from there; the attempt number does
-- not change).  NULL otherwise.
ALTER TABLE taskflow.node_runs ADD COLUMN wait_since timestamptz;
