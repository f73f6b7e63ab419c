-- taskflow extension script, part 99_review5: hardening of the 1.8.0 review
-- of what 1.7 added (replayable).  Owner: review5.  See docs/security.md
-- ("Review of 1.7").

-- Each scheduler pass: what an earlier pass could not do at once (part
-- 99_deferred), tried again -- replaces 99_deferred's version.  That one
-- took every entry and tried each again: an event or alert whose parent row
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

-- Each scheduler pass: SLA alerts of active runs past their deadline --
-- replaces 95_alerts' version, with one condition more: a run whose SLA
-- delivery is deferred already (its alert's or flow's row held by an open
-- transaction: part 99_deferred) is left to _deferred_pass.  1.7 queued it
-- again at every pass: each such run cost the parents' SKIP LOCKED probe
-- and _defer's scan of the whole deferred table, every pass.  A role with
-- an SLA alert on a flow whose runs queue up (max_active_runs, a long node)
-- that kept its alert's DELETE open made every pass of the database slow
-- for every owner: 3,000 overdue runs took 2-4 s a pass (docs/security.md,
-- "Review of 1.7").  Otherwise as in part 95_alerts.
CREATE OR REPLACE FUNCTION taskflow._alerts_pass(now timestamptz,
                                                 OUT next_sla timestamptz, OUT due boolean,
                                                 OUT sending boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
BEGIN
    -- what an earlier pass could not do at once (part 99_deferred); while
    -- some is left, the next pass comes within a second
    IF taskflow._deferred_pass() THEN
        next_sla := now + interval '1 second';
    END IF;
    IF EXISTS (SELECT 1 FROM taskflow.alerts WHERE event = 'sla') THEN
        FOR c IN
            SELECT a, r, d.deadline
              FROM taskflow.runs r
              JOIN taskflow.flows f ON f.id = r.flow_id
              JOIN taskflow.alerts a ON a.flow_id = r.flow_id AND a.event = 'sla'
             CROSS JOIN LATERAL (SELECT taskflow._alert_deadline(a.sla_time, a.sla_after,
                                                                  r.scheduled_for, f.timezone)
                                        AS deadline) d
             WHERE r.state IN ('scheduled', 'running') AND r.trigger = 'schedule'
               AND r.created_at >= a.created_at
               AND NOT EXISTS (SELECT 1 FROM taskflow.alert_deliveries x
                                WHERE x.alert_id = a.id AND x.run_id = r.id)
               -- (review of 1.7) deferred already: _deferred_pass has it
               AND NOT EXISTS (SELECT 1 FROM taskflow.deferred x
                                WHERE x.kind = 'alert' AND x.alert_id = a.id AND x.run_id = r.id)
        LOOP
            IF c.deadline <= now THEN
                BEGIN
                    PERFORM taskflow._alert_queue(c.a, c.r, 'sla', c.deadline);
                EXCEPTION WHEN OTHERS THEN
                    RAISE WARNING 'taskflow: SLA alert % of run % not queued: %',
                        (c.a).id, (c.r).id, SQLERRM;
                END;
            ELSIF next_sla IS NULL OR c.deadline < next_sla THEN
                next_sla := c.deadline;
            END IF;
        END LOOP;
    END IF;
    due := EXISTS (SELECT 1 FROM taskflow.alert_deliveries
                    WHERE state = 'pending' AND next_attempt_at <= clock_timestamp());
    -- being sent, or left so by a delivery worker that died
    sending := EXISTS (SELECT 1 FROM taskflow.alert_deliveries
                        WHERE state = 'sending' AND next_attempt_at <= clock_timestamp());
END
$$;

REVOKE ALL ON FUNCTION taskflow._alerts_pass(timestamptz) FROM PUBLIC;
