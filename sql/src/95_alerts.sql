-- taskflow extension script, part 95: alerts (replayable).  Owner: alerts.
-- See docs/alerts.md.  The catalog is part 95_alerts.once; the delivery
-- worker and the webhook client are src/alerts.c.
--
--   add_alert / drop_alert / the alerts view      the API (SECURITY INVOKER,
--                                                  RLS as for variables)
--   _runs_alert (trigger runs_alert on runs)       failure / success alerts
--                                                  and late-finish SLA misses:
--                                                  queued in the transaction
--                                                  that ends the run
--   _alerts_pass(now)                              the scheduler, each pass:
--                                                  SLA misses of active runs,
--                                                  the next SLA deadline, and
--                                                  whether deliveries wait
--   _alert_claim / _alert_record                   the delivery worker
-- Everything is pinned to search_path pg_catalog, pg_temp.

CREATE OR REPLACE FUNCTION taskflow._webhook_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_webhook_validator' LANGUAGE C STRICT;

------------------------------------------------------------------------------
-- SLA deadlines and payloads
------------------------------------------------------------------------------

-- The SLA deadline of run r for alert a: sla_after after the scheduled time,
-- or the first sla_time (wall clock, the flow's time zone) at or after it.
CREATE OR REPLACE FUNCTION taskflow._alert_deadline(sla_time time, sla_after interval,
                                                    scheduled_for timestamptz, tz text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d date;
    t timestamptz;
BEGIN
    IF sla_after IS NOT NULL THEN
        RETURN scheduled_for + sla_after;
    END IF;
    IF sla_time IS NULL THEN
        RETURN NULL;
    END IF;
    d := (scheduled_for AT TIME ZONE tz)::date;
    t := (d + sla_time) AT TIME ZONE tz;
    IF t < scheduled_for THEN
        t := ((d + 1) + sla_time) AT TIME ZONE tz;
    END IF;
    RETURN t;
END
$$;

-- The JSON body of an alert (also the NOTIFY payload): the run, its failed
-- nodes with their errors and SQLSTATEs.  Error texts are cut at 2000
-- characters so that a body stays small.
CREATE OR REPLACE FUNCTION taskflow._alert_payload(a taskflow.alerts, r taskflow.runs,
                                                   event text, deadline timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'alert_id', a.id,
        'event', event,
        'flow', f.name,
        'owner', f.owner::text,
        'run_id', r.id,
        'bizdate', r.bizdate,
        'scheduled_for', r.scheduled_for,
        'trigger', r.trigger,
        'state', r.state,
        'started_at', r.started_at,
        'finished_at', r.finished_at,
        'message', r.message,
        'sla_deadline', deadline,
        'failed_nodes', coalesce((
            SELECT jsonb_agg(jsonb_build_object(
                       'node', n.name, 'state', x.state, 'attempt', x.attempt,
                       'error', left(x.message, 2000), 'sqlstate', x.sqlstate,
                       'finished_at', x.finished_at)
                   ORDER BY x.finished_at, n.name)
              FROM taskflow.node_runs x JOIN taskflow.nodes n ON n.id = x.node_id
             WHERE x.run_id = r.id AND x.state = 'failed'), '[]'::jsonb)))
      FROM taskflow.flows f WHERE f.id = r.flow_id
$$;

-- Queue the deliveries of alert a for run r (one per target; a second call
-- for the same alert and run changes nothing).
CREATE OR REPLACE FUNCTION taskflow._alert_queue(a taskflow.alerts, r taskflow.runs,
                                                 event text, deadline timestamptz)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    body jsonb := taskflow._alert_payload(a, r, event, deadline);
    n    integer;
BEGIN
    -- the alert's and the flow's rows locked without waiting (review of
    -- 1.6: an open transaction of the owner that drops or changes either
    -- must not hold up the scheduler's tick, and with it every owner's runs;
    -- taskflow._lock_parents)
    IF NOT taskflow._lock_parents(r.flow_id, false, a.id) THEN
        -- tried again at the scheduler's next pass (part 99_deferred)
        PERFORM taskflow._defer('alert', r.flow_id, r.id, a.id, event, deadline);
        RAISE LOG 'taskflow: alert % of flow % has an uncommitted change: queued for run % at the next pass',
            a.id, r.flow_id, r.id;
        RETURN 0;
    END IF;
    INSERT INTO taskflow.alert_deliveries (alert_id, flow_id, run_id, event, target, payload)
    SELECT a.id, r.flow_id, r.id, event, t.target, body
      FROM (VALUES ('notify', a.notify_channel), ('webhook', a.server)) t(target, dest)
     WHERE t.dest IS NOT NULL
    ON CONFLICT (alert_id, run_id, target) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- A run ended (the scheduler's transaction, or a run operation's): queue its
-- failure or success alerts, and the SLA alerts it missed by finishing late
-- (a run still active at its deadline is caught by _alerts_pass).
CREATE OR REPLACE FUNCTION taskflow._runs_alert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a        taskflow.alerts;
    tz       text;
    deadline timestamptz;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM taskflow.alerts WHERE flow_id = NEW.flow_id) THEN
        RETURN NULL;
    END IF;
    -- an alert that cannot be queued must not keep the run from ending
    BEGIN
        FOR a IN SELECT * FROM taskflow.alerts WHERE flow_id = NEW.flow_id ORDER BY id LOOP
            IF a.event = 'failure' AND NEW.state = 'failed'
               OR a.event = 'success' AND NEW.state = 'succeeded' THEN
                PERFORM taskflow._alert_queue(a, NEW, a.event, NULL);
            ELSIF a.event = 'sla' AND NEW.trigger = 'schedule' AND NEW.created_at >= a.created_at THEN
                SELECT f.timezone INTO tz FROM taskflow.flows f WHERE f.id = NEW.flow_id;
                deadline := taskflow._alert_deadline(a.sla_time, a.sla_after, NEW.scheduled_for, tz);
                IF deadline <= taskflow._now() THEN
                    PERFORM taskflow._alert_queue(a, NEW, 'sla', deadline);
                END IF;
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'taskflow: alerts of run % not queued: %', NEW.id, SQLERRM;
    END;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER runs_alert AFTER UPDATE OF state ON taskflow.runs
    FOR EACH ROW WHEN (NEW.state IN ('failed', 'succeeded') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION taskflow._runs_alert();

------------------------------------------------------------------------------
-- the scheduler's and the delivery worker's side
------------------------------------------------------------------------------

-- Each scheduler pass (src/alerts.c, tf_alerts_pass): queue SLA alerts of
-- scheduled runs still active at their deadline (once per run: the outbox
-- is unique per alert, run and target); next_sla: the earliest deadline
-- still ahead (the scheduler wakes then); due: deliveries wait for the
-- delivery worker; sending: one is being sent (or its worker died).  Cheap when there are no alerts: an index probe.
-- A run whose SLA delivery is deferred already (its alert's or flow's row
-- held by an open transaction: part 99_deferred) is left to _deferred_pass:
-- 1.7 queued it again at every pass, each such run costing the parents'
-- SKIP LOCKED probe and _defer's lookup, every pass -- a role that kept its
-- alert's DELETE open made every pass slow for every owner (3,000 overdue
-- runs: 2-4 s a pass; docs/security.md, "Review of 1.7").
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

-- The delivery worker takes the next due delivery: marks it 'sending' and
-- counts the attempt (committed before the request is sent).  No row: none
-- due; next_at then says when the next one is (NULL: none pending).
CREATE OR REPLACE FUNCTION taskflow._alert_claim(
    OUT id bigint, OUT target text, OUT payload text, OUT owner oid, OUT server text,
    OUT channel text, OUT attempt integer, OUT next_at timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT d.id, d.target, d.payload::text, f.owner::oid, a.server, a.notify_channel,
           d.attempts + 1
      INTO id, target, payload, owner, server, channel, attempt
      FROM taskflow.alert_deliveries d
      JOIN taskflow.alerts a ON a.id = d.alert_id
      JOIN taskflow.flows f ON f.id = d.flow_id
     WHERE d.state = 'pending' AND d.next_attempt_at <= clock_timestamp()
     ORDER BY d.next_attempt_at, d.id
     LIMIT 1
       FOR UPDATE OF d SKIP LOCKED;
    IF id IS NOT NULL THEN
        UPDATE taskflow.alert_deliveries x
           SET state = 'sending', attempts = x.attempts + 1
         WHERE x.id = _alert_claim.id;
        RETURN;
    END IF;
    SELECT min(d.next_attempt_at) INTO next_at
      FROM taskflow.alert_deliveries d WHERE d.state = 'pending';
END
$$;

-- The outcome of an attempt.  Failed with attempts left: back to pending
-- after a backoff (1 s, 2 s, 4 s, ... at most 5 min); out of attempts
-- (retries + 1), or permanent: failed.
CREATE OR REPLACE FUNCTION taskflow._alert_record(id bigint, ok boolean, http_status integer,
                                                  error text, retries integer, permanent boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE taskflow.alert_deliveries d
       SET state = CASE WHEN ok THEN 'delivered'
                        WHEN permanent OR d.attempts > retries THEN 'failed'
                        ELSE 'pending' END,
           http_status = _alert_record.http_status,
           last_error = CASE WHEN ok THEN NULL ELSE left(error, 1000) END,
           delivered_at = CASE WHEN ok THEN clock_timestamp() END,
           next_attempt_at = clock_timestamp()
                             + least(interval '1 second' * power(2, greatest(d.attempts - 1, 0)),
                                     interval '5 minutes')
     WHERE d.id = _alert_record.id;
END
$$;

-- Deliveries left 'sending' by a delivery worker that died: send again.
CREATE OR REPLACE FUNCTION taskflow._alert_recover() RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE taskflow.alert_deliveries SET state = 'pending' WHERE state = 'sending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION taskflow._runs_alert(), taskflow._alerts_pass(timestamptz),
    taskflow._alert_claim(), taskflow._alert_record(bigint, boolean, integer, text, integer, boolean),
    taskflow._alert_recover(),
    taskflow._alert_queue(taskflow.alerts, taskflow.runs, text, timestamptz)
    FROM PUBLIC;

------------------------------------------------------------------------------
-- API
------------------------------------------------------------------------------

-- The webhook server of an alert: exists, is a taskflow_webhook server, and
-- the flow's owner has USAGE on it (alerts are sent with the owner's rights).
-- Used by add_alert and by the guard on direct INSERTs into taskflow.alerts.
CREATE OR REPLACE FUNCTION taskflow._alert_check_server(p_owner regrole, p_server text)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    srv record;
BEGIN
    IF p_server IS NOT NULL THEN
        SELECT s.oid, w.fdwname INTO srv
          FROM pg_catalog.pg_foreign_server s
          JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
         WHERE s.srvname = p_server;
        IF srv.oid IS NULL THEN
            RAISE EXCEPTION 'webhook server "%" does not exist', p_server
                USING ERRCODE = 'undefined_object',
                      HINT = 'A superuser creates it: CREATE SERVER ... FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url ''https://...'').';
        END IF;
        IF srv.fdwname <> 'taskflow_webhook' THEN
            RAISE EXCEPTION 'server "%" is not a taskflow webhook server', p_server
                USING ERRCODE = 'wrong_object_type',
                      DETAIL = format('It uses the foreign-data wrapper "%s", not taskflow_webhook.', srv.fdwname);
        END IF;
        IF NOT pg_catalog.has_server_privilege(p_owner::oid, srv.oid, 'USAGE') THEN
            RAISE EXCEPTION 'permission denied for webhook server "%"', p_server
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('Alerts are sent with the rights of the flow''s owner %s.', p_owner),
                      HINT = format('A superuser or the server''s owner can run: GRANT USAGE ON FOREIGN SERVER %I TO %I;',
                                    p_server, p_owner::text);
        END IF;
    END IF;
END
$$;

-- Direct INSERTs (column INSERT is granted so that RLS, not the API, is the
-- gate) get the checks of add_alert that the table's CHECK constraints
-- cannot express: the webhook server and the owner's USAGE on it.
CREATE OR REPLACE FUNCTION taskflow._alerts_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM taskflow._alert_check_server(
        (SELECT f.owner FROM taskflow.flows f WHERE f.id = NEW.flow_id), NEW.server);
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER alerts_guard BEFORE INSERT ON taskflow.alerts
    FOR EACH ROW EXECUTE FUNCTION taskflow._alerts_guard();

-- add_alert(flow, event, notify_channel, server, sla): what to send when a
-- run of the flow fails ('failure'), succeeds ('success') or is not done
-- by its deadline ('sla').  sla: a time of day 'HH:MM[:SS]' (the first such
-- wall-clock time, in the flow's time zone, at or after the run's scheduled
-- time) or an interval after the scheduled time.
CREATE OR REPLACE FUNCTION taskflow.add_alert(flow text, event text,
                                              notify_channel text DEFAULT NULL,
                                              server text DEFAULT NULL,
                                              sla text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
    f     taskflow.flows;
    stime time;
    safter interval;
    id    bigint;
BEGIN
    f := taskflow._flow(flow);
    IF event IS NULL OR event NOT IN ('failure', 'success', 'sla') THEN
        RAISE EXCEPTION 'invalid alert event: %', coalesce(quote_literal(event), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give event => ''failure'', ''success'' or ''sla''.';
    END IF;
    IF notify_channel IS NULL AND server IS NULL THEN
        RAISE EXCEPTION 'an alert needs notify_channel or server'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give notify_channel => ''channel'' (NOTIFY), server => ''hooks'' (a taskflow_webhook server), or both.';
    END IF;
    IF notify_channel IS NOT NULL AND notify_channel !~ '^[a-z_][a-z0-9_$]{0,62}$' THEN
        RAISE EXCEPTION 'invalid notify channel: %', quote_literal(notify_channel)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A channel is a lower-case identifier of at most 63 characters (what LISTEN name listens on).';
    END IF;
    IF event = 'sla' THEN
        IF sla IS NULL THEN
            RAISE EXCEPTION 'an sla alert needs sla'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give sla => ''06:30'' (a time of day in the flow''s time zone) or sla => ''2 hours'' (after the scheduled time).';
        END IF;
        BEGIN
            IF btrim(sla) ~ '^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$' THEN
                stime := btrim(sla)::time;
            ELSE
                safter := sla::interval;
                IF safter <= interval '0' THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
                END IF;
            END IF;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow
                       OR invalid_parameter_value THEN
            RAISE EXCEPTION 'invalid sla: %', quote_literal(sla)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Give a time of day ''HH:MM'' (00:00 to 23:59, the flow''s time zone) or a positive interval such as ''90 minutes''.';
        END;
    ELSIF sla IS NOT NULL THEN
        RAISE EXCEPTION 'sla is only for event => ''sla'''
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Add a separate alert with event => ''sla''.';
    END IF;
    -- the server is checked by the guard trigger alerts_guard
    INSERT INTO taskflow.alerts (flow_id, event, notify_channel, server, sla_time, sla_after)
    VALUES (f.id, event, notify_channel, server, stime, safter)
    RETURNING alerts.id INTO id;
    RETURN id;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.add_alert: flow "%s", event %s', add_alert.flow, add_alert.event));
END
$$;
COMMENT ON FUNCTION taskflow.add_alert(text, text, text, text, text) IS
    'send NOTIFY and/or a webhook POST when a run fails, succeeds or misses its SLA (docs/alerts.md)';

CREATE OR REPLACE FUNCTION taskflow.drop_alert(alert_id bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    DELETE FROM taskflow.alerts WHERE id = alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', alert_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT alert_id, flow, event FROM taskflow.alerts_status lists the alerts you can use.';
    END IF;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.drop_alert: alert %s', drop_alert.alert_id));
END
$$;
COMMENT ON FUNCTION taskflow.drop_alert(bigint) IS
    'drop an alert and its delivery records';

-- One row per alert with the outcome of its deliveries.
CREATE OR REPLACE VIEW taskflow.alerts_status WITH (security_invoker = true) AS
SELECT a.id AS alert_id,
       f.name AS flow,
       a.event,
       a.notify_channel,
       a.server,
       coalesce(a.sla_time::text, a.sla_after::text) AS sla,
       a.created_by,
       a.created_at,
       count(d.id) FILTER (WHERE d.state = 'delivered') AS delivered,
       count(d.id) FILTER (WHERE d.state = 'failed') AS failed,
       count(d.id) FILTER (WHERE d.state IN ('pending', 'sending')) AS pending,
       max(d.created_at) AS last_alert_at,
       (array_agg(d.state ORDER BY d.id DESC) FILTER (WHERE d.id IS NOT NULL))[1] AS last_state,
       (array_agg(d.last_error ORDER BY d.id DESC) FILTER (WHERE d.id IS NOT NULL))[1] AS last_error
  FROM taskflow.alerts a
  JOIN taskflow.flows f ON f.id = a.flow_id
  LEFT JOIN taskflow.alert_deliveries d ON d.alert_id = a.id
 GROUP BY a.id, f.name;

GRANT SELECT ON taskflow.alerts_status TO PUBLIC;
