-- taskflow 1.0.0 -> 1.1.0, security delta (twin of the changes to
-- sql/src/00_catalog.once.sql; see docs/security.md).

-- column privileges: engine-owned columns of flows and nodes (id,
-- created_at, updated_at on INSERT, scheduled_until) are not writable by users
REVOKE INSERT, UPDATE ON taskflow.flows, taskflow.nodes FROM PUBLIC;
GRANT INSERT (name, owner, schedule, timezone, description, enabled, catchup,
              max_active_runs, start_date, end_date) ON taskflow.flows TO PUBLIC;
GRANT UPDATE (name, owner, schedule, timezone, description, enabled, catchup,
              max_active_runs, start_date, end_date, updated_at) ON taskflow.flows TO PUBLIC;
GRANT INSERT (flow_id, name, kind, body, options, retries, retry_delay, timeout)
    ON taskflow.nodes TO PUBLIC;
GRANT UPDATE (name, kind, body, options, retries, retry_delay, timeout, updated_at)
    ON taskflow.nodes TO PUBLIC;
