-- taskflow extension script, part 50: the scheduler's catalog for incremental
-- passes.  An install-only part (*.once.sql); its twin for updates is
-- sql/upgrade/1.0.0--1.1.0/pre_50_sched.sql.  Owner: the scheduler
-- (src/scheduler.c, sql/src/20_engine.sql, sql/src/51_sched.sql).
-- See docs/operations.md ("Scheduler") and docs/performance.md.

-- When the scheduler must look at this flow next (scheduler clock): the next
-- fire time after the watermark, 'infinity' when the flow never fires again
-- (disabled, manual-only, past its end_date), NULL when it changed and has
-- not been looked at since.  Maintained by the scheduler; reset to NULL by
-- the BEFORE UPDATE trigger flows_watermark when anything scheduling reads
-- changes, and NULL for a new flow.  Users cannot write it (no column
-- privilege).  A pass looks only at flows with next_due <= now or NULL, and
-- sleeps until min(next_due): both are index lookups.
ALTER TABLE taskflow.flows ADD COLUMN next_due timestamptz;
CREATE INDEX ON taskflow.flows (next_due);

-- What changed since the scheduler's last pass: runs that were created or
-- changed state, or whose node runs finished (triggers of part 51, in the
-- changing transaction).  Each pass takes the entries off and advances only
-- those runs (and promotes runs of their flows).  No foreign key (an entry
-- for a run deleted meanwhile is skipped), no grants: only the engine
-- (superuser) and the trigger functions of part 51 write it.
CREATE TABLE taskflow.sched_queue (
    run_id bigint NOT NULL
);

-- the hot path of promotion: a flow's oldest scheduled runs, its running runs
CREATE INDEX ON taskflow.runs (flow_id, scheduled_for, id) WHERE state = 'scheduled';
CREATE INDEX ON taskflow.runs (flow_id) WHERE state = 'running';
-- ready nodes of running runs (a run with many nodes done)
CREATE INDEX ON taskflow.node_runs (run_id) WHERE state IN ('pending', 'retrying');
