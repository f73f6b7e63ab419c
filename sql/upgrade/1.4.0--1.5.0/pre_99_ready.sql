-- taskflow 1.4.0 -> 1.5.0: twin of sql/src/99_ready.once.sql (the scheduler's
-- ready set; owner: ready, issue 11).  See that part.
CREATE TABLE taskflow.sched_ready (
    run_id bigint PRIMARY KEY
);
