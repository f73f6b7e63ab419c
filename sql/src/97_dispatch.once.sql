-- taskflow extension script, part 97 (install-only): indexes of the O&M
-- pages and of the scheduler's per-flow reads (owner: dispatch, issue 11;
-- twin: sql/upgrade/1.1.0--1.2.0/pre_97_dispatch.sql).  See
-- docs/performance.md ("O&M pages").

-- a flow's runs newest first: flow_status's last run, its last succeeded
-- run, and its consecutive failures (failed runs after that one: without
-- the partial index the planner ANDs every failed run of the table in)
CREATE INDEX ON taskflow.runs (flow_id, id);
CREATE INDEX ON taskflow.runs (flow_id, id) WHERE state = 'failed';
-- "what failed lately": run_history / node_run_history
-- WHERE state = 'failed' ORDER BY started_at DESC LIMIT n read only failed rows
CREATE INDEX ON taskflow.runs (started_at) WHERE state = 'failed';
CREATE INDEX ON taskflow.node_runs (started_at) WHERE state = 'failed';
