-- taskflow extension script, part 99_deferred (install-only): what the
-- scheduler could not do at once for a user's flow because one of its rows
-- had an uncommitted change (owner: events/alerts, 1.7.0; twin:
-- sql/upgrade/1.6.0--1.7.0/pre_99_deferred.sql).  The functions that use it
-- are in part 99_deferred.sql.  See docs/operations.md ("Event triggers
-- across flows") and docs/security.md ("Review of 1.6").

-- An event-triggered run of a downstream flow (kind 'event': flow_id the
-- downstream flow, run_id the upstream run that succeeded) or an alert's
-- delivery (kind 'alert': run_id the run, alert_id, event, deadline), whose
-- parent rows the scheduler's tick found locked by an open transaction
-- (taskflow._lock_parents: it must not wait for it, every owner's runs
-- would).  Each scheduler pass takes them all and tries again; one whose
-- flow, run or alert is gone by then is dropped.  No foreign keys (they
-- would wait for the same transaction), no grants: only the engine
-- (superuser) reads and writes it.
CREATE TABLE taskflow.deferred (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('event', 'alert')),
    flow_id    bigint NOT NULL,
    run_id     bigint NOT NULL,
    alert_id   bigint,
    event      text,
    deadline   timestamptz,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
