-- taskflow extension script, part 99_ready (install-only): the ready set of
-- the scheduler's ready-node read (owner: ready, issue 11; twin:
-- sql/upgrade/1.4.0--1.5.0/pre_99_ready.sql).  The functions that use it
-- are in part 99_ready.sql.  See docs/performance.md ("Ready nodes: what
-- changed, not every running run").

-- Runs that may have a node run ready to start: the running runs a pass of
-- the scheduler advanced (taken off taskflow.sched_queue: a node run of
-- theirs finished, or they were created, promoted or rerun), and the runs
-- whose ready node runs were held back at the last read (no free worker, an
-- owner at its cap).  The scheduler's ready-node read and a warm worker's
-- next node of its owner look only at these runs (plus the queue, due
-- retries and node runs whose worker left before starting them), not at
-- every running run; the read drops the runs that have nothing ready.
-- Every TF_RUN_SWEEP_MS (60 s) the scheduler's safety sweep puts every
-- running run in, so that a missed note only delays a node.  No foreign
-- key (an entry of a purged run is dropped by the next read), no grants:
-- only the engine (superuser) reads and writes it.
CREATE TABLE taskflow.sched_ready (
    run_id bigint PRIMARY KEY
);

-- Retries and wait-node polls that are due (the ready-node read) and the
-- earliest one (the scheduler's next wake): a range scan, not every
-- retrying node run (500 runs waiting an hour for a retry cost every read
-- 4 ms through the index on state).
CREATE INDEX ON taskflow.node_runs (not_before) WHERE state = 'retrying';
