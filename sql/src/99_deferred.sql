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

-- Each scheduler pass: take every deferred entry and try it again (an entry
-- still blocked is noted anew by the attempt itself); true when some are
-- left for the next pass.  An attempt that fails is reported and dropped,
-- as the first attempt's failure is.
CREATE OR REPLACE FUNCTION taskflow._deferred_pass() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    x     taskflow.deferred;
    r     taskflow.runs;
    a     taskflow.alerts;
    fired boolean := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM taskflow.deferred) THEN
        RETURN false;
    END IF;
    FOR x IN WITH t AS (DELETE FROM taskflow.deferred RETURNING *) SELECT * FROM t ORDER BY id LOOP
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
    IF fired THEN
        PERFORM taskflow._wake();
    END IF;
    RETURN EXISTS (SELECT 1 FROM taskflow.deferred);
END
$$;
REVOKE ALL ON FUNCTION taskflow._deferred_pass() FROM PUBLIC;
