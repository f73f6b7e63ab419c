-- taskflow extension script, part 99_deferred (replayable): what the
-- scheduler's tick could not do at once for a user's flow -- an
-- event-triggered run, an alert's delivery -- because a parent row had an
-- uncommitted change (taskflow._lock_parents, part 99_review4), kept in
-- taskflow.deferred (part 99_deferred.once) and tried again at every pass
-- (taskflow._alerts_pass calls _deferred_pass) until it is done or its
-- flow, run or alert is gone.  Before 1.7 the tick waited for that
-- transaction (every owner's runs with it); the first 1.7 fix skipped the
-- event with a WARNING (lost).  See docs/operations.md ("Event triggers
-- across flows").

-- Note one thing to try again (once: the same kind, flow, run and alert
-- noted twice is one entry).
CREATE OR REPLACE FUNCTION taskflow._defer(p_kind text, p_flow bigint, p_run bigint,
                                           p_alert bigint, p_event text, p_deadline timestamptz)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO taskflow.deferred (kind, flow_id, run_id, alert_id, event, deadline)
    SELECT p_kind, p_flow, p_run, p_alert, p_event, p_deadline
     WHERE NOT EXISTS (SELECT 1 FROM taskflow.deferred x
                        WHERE x.kind OPERATOR(pg_catalog.=) p_kind
                          AND x.flow_id OPERATOR(pg_catalog.=) p_flow
                          AND x.run_id OPERATOR(pg_catalog.=) p_run
                          AND x.alert_id IS NOT DISTINCT FROM p_alert)
$$;
REVOKE ALL ON FUNCTION taskflow._defer(text, bigint, bigint, bigint, text, timestamptz) FROM PUBLIC;

-- Each scheduler pass: what an earlier pass could not do at once, tried
-- again.  1.7 took every entry and tried each again: an event or alert whose parent row
-- a user's transaction still held was noted anew by the attempt, each
-- costing a lookup, the parents' SKIP LOCKED probe and _defer's scan of the
-- whole table.  A role that kept its own downstream flow's row (or its
-- alert's) locked while its upstream flow ran -- an entry per upstream run,
-- every second for an every-second flow -- made every pass of the database
-- slower by that much, quadratically: 3,000 entries took ~2.5 s per pass
-- and another owner's every-second flow fell behind (docs/security.md).
-- Now the entries are grouped by what blocks them (kind, flow, alert): a
-- group's parents are probed once, and a group still blocked is left as it
-- is, untouched (no rewrite of its rows); at most 64 groups per pass, in
-- random order (so that many blocked groups cannot keep the others from
-- being tried; the rest come at the next pass, within a second), and at
-- most 500 entries done per pass (3,000 SLA deliveries released at once
-- took one pass of ~15 s: every owner's tick waited for it).  A group
-- whose flow or alert is gone is taken, and its entries dropped as before.
-- An entry is done once: the group's rows are deleted in the same
-- transaction that fires or queues them (_event_fire: once per flow and
-- bizdate; _alert_queue: once per alert, run and target).  True when some
-- are left for the next pass.
CREATE OR REPLACE FUNCTION taskflow._deferred_pass() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g     record;
    x     taskflow.deferred;
    r     taskflow.runs;
    a     taskflow.alerts;
    fired boolean := false;
    budget integer := 500;
    blocked boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM taskflow.deferred) THEN
        RETURN false;
    END IF;
    FOR g IN SELECT d.kind, d.flow_id, d.alert_id
               FROM taskflow.deferred d
              GROUP BY d.kind, d.flow_id, d.alert_id
              ORDER BY random()
              LIMIT 64 LOOP
        EXIT WHEN budget <= 0;
        -- still blocked (the flow, alert still there, one of them locked):
        -- left for a later pass, untouched.  (A probe that fails lets the
        -- group be tried below, where a failure is reported and dropped:
        -- nothing here may fail the pass, every owner's tick.)
        BEGIN
            blocked := EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = g.flow_id)
                       AND (g.alert_id IS NULL
                            OR EXISTS (SELECT 1 FROM taskflow.alerts y WHERE y.id = g.alert_id))
                       AND NOT taskflow._lock_parents(g.flow_id, g.kind = 'event', g.alert_id);
        EXCEPTION WHEN OTHERS THEN
            blocked := false;
        END;
        CONTINUE WHEN blocked;
        FOR x IN WITH t AS (DELETE FROM taskflow.deferred d
                             WHERE d.id IN (SELECT y.id FROM taskflow.deferred y
                                             WHERE y.kind = g.kind AND y.flow_id = g.flow_id
                                               AND y.alert_id IS NOT DISTINCT FROM g.alert_id
                                             ORDER BY y.id LIMIT budget)
                            RETURNING *)
                 SELECT * FROM t ORDER BY id LOOP
            budget := budget - 1;
            BEGIN
                SELECT * INTO r FROM taskflow.runs WHERE id = x.run_id;
                CONTINUE WHEN NOT FOUND;                    -- purged
                IF x.kind = 'event' THEN
                    fired := taskflow._event_fire(x.flow_id, r) IS NOT NULL OR fired;
                ELSE
                    SELECT * INTO a FROM taskflow.alerts WHERE id = x.alert_id;
                    CONTINUE WHEN NOT FOUND;                -- dropped
                    PERFORM taskflow._alert_queue(a, r, x.event, x.deadline);
                END IF;
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'taskflow: deferred % of run % (flow %) not done: %',
                    x.kind, x.run_id, x.flow_id, SQLERRM;
            END;
        END LOOP;
    END LOOP;
    IF fired THEN
        PERFORM taskflow._wake();
    END IF;
    RETURN EXISTS (SELECT 1 FROM taskflow.deferred);
END
$$;
REVOKE ALL ON FUNCTION taskflow._deferred_pass() FROM PUBLIC;
