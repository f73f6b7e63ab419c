-- taskflow extension script, part 95 (install-only): the catalog of alerts
-- (owner: alerts; twin: sql/upgrade/1.1.0--1.2.0/pre_95_alerts.sql).
-- See docs/alerts.md.
--
-- alerts            what to send when a run of a flow fails, succeeds or
--                   misses its SLA: a NOTIFY channel and/or a webhook server
--                   (a foreign server of the taskflow_webhook wrapper, part
--                   95_alerts_fdw.once).  Written by add_alert / drop_alert
--                   (SECURITY INVOKER: RLS applies, as for variables).
-- alert_deliveries  the outbox: one row per (alert, run, target), filled in
--                   the transaction that ends the run (trigger runs_alert)
--                   or by the scheduler when an SLA passes; drained by the
--                   delivery worker (src/alerts.c), which records attempts,
--                   HTTP status, last error and delivered_at.  Read-only for
--                   users (RLS: the flows they can see).

CREATE TABLE taskflow.alerts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id        bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    event          text NOT NULL CHECK (event IN ('failure', 'success', 'sla')),
    notify_channel text CHECK (notify_channel ~ '^[a-z_][a-z0-9_$]{0,62}$'),
    server         text,
    sla_time       time,
    sla_after      interval CHECK (sla_after > '0'),
    created_by     regrole NOT NULL DEFAULT current_user::regrole,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (notify_channel IS NOT NULL OR server IS NOT NULL),
    CHECK ((event = 'sla') = (sla_time IS NOT NULL OR sla_after IS NOT NULL)),
    CHECK (sla_time IS NULL OR sla_after IS NULL)
);
CREATE INDEX ON taskflow.alerts (flow_id);

CREATE TABLE taskflow.alert_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES taskflow.alerts(id) ON DELETE CASCADE,
    flow_id         bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    run_id          bigint NOT NULL REFERENCES taskflow.runs(id) ON DELETE CASCADE,
    event           text NOT NULL,
    target          text NOT NULL CHECK (target IN ('notify', 'webhook')),
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    http_status     integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    UNIQUE (alert_id, run_id, target)
);
CREATE INDEX ON taskflow.alert_deliveries (next_attempt_at)
    WHERE state IN ('pending', 'sending');
CREATE INDEX ON taskflow.alert_deliveries (run_id);
CREATE INDEX ON taskflow.alert_deliveries (flow_id);

ALTER TABLE taskflow.alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.alert_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY alerts_member ON taskflow.alerts
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY alert_deliveries_member ON taskflow.alert_deliveries FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));

GRANT SELECT ON taskflow.alerts, taskflow.alert_deliveries TO PUBLIC;
GRANT DELETE ON taskflow.alerts TO PUBLIC;
GRANT INSERT (flow_id, event, notify_channel, server, sla_time, sla_after)
    ON taskflow.alerts TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('taskflow.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.alert_deliveries', '');
