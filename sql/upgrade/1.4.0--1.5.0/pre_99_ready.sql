-- taskflow 1.4.0 -> 1.5.0: twin of sql/src/99_ready.once.sql (the scheduler's
-- ready set; owner: ready, issue 11).  See that part.
CREATE TABLE taskflow.sched_ready (
    run_id bigint PRIMARY KEY
);

-- Retries and wait-node polls that are due (the ready-node read) and the
-- earliest one (the scheduler's next wake): a range scan, not every
-- retrying node run (500 runs waiting an hour for a retry cost every read
-- 4 ms through the index on state).
CREATE INDEX ON taskflow.node_runs (not_before) WHERE state = 'retrying';
