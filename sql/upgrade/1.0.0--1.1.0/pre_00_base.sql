-- taskflow 1.0.0 -> 1.1.0, catalog delta (runs before the replayable parts).
-- Every change to an install-only part (sql/src/*.once.sql) has its twin
-- here; test/t/090_upgrade.pl checks that an updated 1.0.0 has the same
-- schema as a fresh 1.1.0.

-- every foreign key is indexed (drop_flow, history purge: ON DELETE actions)
CREATE INDEX ON taskflow.node_runs (node_id);
CREATE INDEX ON taskflow.runs (rerun_of) WHERE rerun_of IS NOT NULL;
-- the orderings O&M pages sort and page by
CREATE INDEX ON taskflow.runs (started_at);
CREATE INDEX ON taskflow.node_runs (started_at);
