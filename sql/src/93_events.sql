-- taskflow extension script, part 93: event triggers across flows, suspend /
-- resume of a running run, flow priority (replayable).  Owner: events.
-- Catalog: part 93_events.once.  See docs/operations.md ("Event triggers
-- across flows", "Suspend and resume a run", "Priority").
--
-- Event triggers: taskflow.flow_triggers links a flow to its upstream
-- flows.  When a run of an upstream flow becomes succeeded, the trigger
-- runs_event (in that same transaction: nothing is lost across a crash)
-- creates a run of every downstream flow whose upstream flows all have a
-- succeeded run for that bizdate: trigger 'event', the same bizdate, at most
-- once per (flow, bizdate) (unique index runs_event_once; a rerun of an
-- upstream that succeeds again does not trigger again).  A disabled
-- downstream flow is not triggered (nothing is queued for it).  Across
-- owners only where the upstream's owner allowed it (allow_trigger), checked
-- when the link is made and again when it fires.  Cycles are refused.
--
-- Suspend / resume: a running run becomes 'suspended': the scheduler and the
-- warm workers start no node of it (they take node runs of 'running' runs
-- only), node runs already running finish; it keeps its place among the
-- flow's max_active_runs.  resume_run makes it 'running' again.
--
-- The write operations go through the gate (taskflow._gate, src/gate.c):
-- the _op_ functions run as superuser, check the caller themselves and are
-- revoked from PUBLIC.  search_path is pinned everywhere.

------------------------------------------------------------------------------
-- priority
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._check_priority(p integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p IS NULL OR p < 1 OR p > 10 THEN
        RAISE EXCEPTION 'invalid priority: %', coalesce(p::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a priority from 1 (lowest) to 10 (highest); the default is 5.';
    END IF;
    RETURN p;
END
$$;

-- create_flow / alter_flow (part 10) check priority with _check_priority;
-- direct DML on flows.priority gets the same check (after flows_guard)
CREATE OR REPLACE FUNCTION taskflow._flows_guard_events() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF taskflow._guard_trusted() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.priority IS DISTINCT FROM OLD.priority THEN
        PERFORM taskflow._check_priority(NEW.priority);
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER flows_guard_events BEFORE INSERT OR UPDATE ON taskflow.flows
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._flows_guard_events();

------------------------------------------------------------------------------
-- event triggers: permissions and links
------------------------------------------------------------------------------

-- May flows owned by down_owner be triggered by flow p_up?  Yes when
-- down_owner is a member of p_up's owner, or of a role p_up's owner allowed
-- (trigger_grants).  Reads as the engine (no row level security).
CREATE OR REPLACE FUNCTION taskflow._trigger_allowed(down_owner regrole, p_up bigint) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    up_owner regrole;
BEGIN
    SELECT u.owner INTO up_owner FROM taskflow.flows u WHERE u.id = p_up;
    IF up_owner IS NULL OR down_owner IS NULL
       OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE oid = down_owner) THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE oid = up_owner)
       AND pg_has_role(down_owner, up_owner, 'MEMBER') THEN
        RETURN true;
    END IF;
    RETURN EXISTS (SELECT 1 FROM taskflow.trigger_grants g
                    JOIN pg_roles ro ON ro.oid = g.grantee
                   WHERE g.flow_id = p_up AND pg_has_role(down_owner, g.grantee, 'MEMBER'));
END
$$;

-- The upstream flow of a link, by name, as the caller may name it: a flow
-- the caller cannot see and that does not allow f's owner "does not exist".
CREATE OR REPLACE FUNCTION taskflow._op_upstream(caller regrole, f taskflow.flows, upstream text)
RETURNS taskflow.flows
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u taskflow.flows;
BEGIN
    IF upstream IS NULL THEN
        RAISE EXCEPTION 'upstream flow name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO u FROM taskflow.flows x WHERE x.name = upstream;
    IF u.id IS NOT NULL AND taskflow._trigger_allowed(f.owner, u.id) THEN
        RETURN u;
    END IF;
    -- the caller may see it (a member of both owners): say why
    IF u.id IS NOT NULL
       AND (pg_has_role(caller, u.owner, 'MEMBER')
            OR (SELECT rolsuper FROM pg_roles WHERE oid = caller)) THEN
        RAISE EXCEPTION 'flow "%" may not be triggered by flow "%"', f.name, u.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Flow "%s" is owned by %s, flow "%s" by %s.', f.name, f.owner, u.name, u.owner),
                  HINT = format('The owner of "%s" can allow it: SELECT taskflow.allow_trigger(%L, %L);',
                                u.name, u.name, f.owner::text);
    END IF;
    RAISE EXCEPTION 'flow "%" does not exist', upstream
        USING ERRCODE = 'undefined_object',
              HINT = 'Either there is no such flow or its owner has not allowed your flow''s owner '
                     'to be triggered by it (taskflow.allow_trigger).';
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_add_flow_trigger(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._op_flow(caller, args->>'flow');
    u taskflow.flows := taskflow._op_upstream(caller, f, args->>'upstream');
BEGIN
    IF u.id = f.id THEN
        RAISE EXCEPTION 'flow "%" cannot trigger itself', f.name
            USING ERRCODE = 'invalid_object_definition',
                  HINT = 'Name another flow as the upstream.';
    END IF;
    -- one link change at a time (the cycle check reads every link)
    PERFORM taskflow._xact_lock(hashtext('taskflow.flow_triggers'), 0);
    -- a cycle: f is upstream of u already (directly or transitively)
    IF EXISTS (WITH RECURSIVE up(id) AS (
                   SELECT u.id
                   UNION
                   SELECT t.upstream_id FROM taskflow.flow_triggers t JOIN up ON t.flow_id = up.id)
               SELECT 1 FROM up WHERE up.id = f.id) THEN
        RAISE EXCEPTION 'flow "%" cannot be triggered by flow "%": that would make a cycle', f.name, u.name
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = format('Flow "%s" already runs (directly or through other flows) after flow "%s".',
                                  u.name, f.name),
                  HINT = 'Event triggers between flows must form no cycle; drop the other link first (taskflow.drop_flow_trigger).';
    END IF;
    INSERT INTO taskflow.flow_triggers (flow_id, upstream_id, created_by)
    VALUES (f.id, u.id, caller)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RAISE NOTICE 'flow "%" is already triggered by flow "%"', f.name, u.name;
    END IF;
    RETURN jsonb_build_object('added', FOUND);
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_drop_flow_trigger(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._op_flow(caller, args->>'flow');
    upstream text := args->>'upstream';
BEGIN
    IF upstream IS NULL THEN
        RAISE EXCEPTION 'upstream flow name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM taskflow.flow_triggers t
     USING taskflow.flows u
     WHERE t.flow_id = f.id AND t.upstream_id = u.id AND u.name = upstream;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flow "%" is not triggered by flow "%"', f.name, upstream
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT upstream FROM taskflow.event_triggers lists the links of your flows.';
    END IF;
    RETURN jsonb_build_object('dropped', true);
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_allow_trigger(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._op_flow(caller, args->>'flow');
    g regrole := (args->>'role')::oid::regrole;
BEGIN
    IF g IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE oid = g) THEN
        RAISE EXCEPTION 'role must be an existing role' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO taskflow.trigger_grants (flow_id, grantee, granted_by)
    VALUES (f.id, g, caller)
    ON CONFLICT DO NOTHING;
    RETURN jsonb_build_object('added', FOUND);
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_disallow_trigger(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._op_flow(caller, args->>'flow');
    g regrole := (args->>'role')::oid::regrole;
BEGIN
    IF g IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    DELETE FROM taskflow.trigger_grants WHERE flow_id = f.id AND grantee = g;
    IF NOT FOUND THEN
        RAISE NOTICE 'flow "%" has no trigger permission for %', f.name, g;
    END IF;
    RETURN jsonb_build_object('removed', FOUND);
END
$$;

-- Run flow when upstream's run for a bizdate succeeded (and every other
-- upstream of flow has a succeeded run for that bizdate too).
CREATE OR REPLACE FUNCTION taskflow.add_flow_trigger(flow text, upstream text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void
      FROM taskflow._gate('add_flow_trigger', jsonb_build_object('flow', $1, 'upstream', $2))
$$;

CREATE OR REPLACE FUNCTION taskflow.drop_flow_trigger(flow text, upstream text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void
      FROM taskflow._gate('drop_flow_trigger', jsonb_build_object('flow', $1, 'upstream', $2))
$$;

-- Let flows of role (and of its members) be triggered by flow.
CREATE OR REPLACE FUNCTION taskflow.allow_trigger(flow text, role regrole) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void
      FROM taskflow._gate('allow_trigger', jsonb_build_object('flow', $1, 'role', $2::oid))
$$;

CREATE OR REPLACE FUNCTION taskflow.disallow_trigger(flow text, role regrole) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void
      FROM taskflow._gate('disallow_trigger', jsonb_build_object('flow', $1, 'role', $2::oid))
$$;

-- The links of the flows you are a member of the owner of, with the
-- upstream's name (also another owner's flow, which you named) and whether
-- the link may fire now (the same test as _trigger_allowed).  Not
-- security_invoker: it reads the names of other owners' upstream flows;
-- rows are filtered by membership of the downstream flow's owner.  A
-- security barrier: a reader's own (leaky) function in a WHERE clause on the
-- view must not see rows before that filter (it would be pushed down to the
-- scan of all flows and see every flow's name and owner).
CREATE OR REPLACE VIEW taskflow.event_triggers WITH (security_barrier) AS
SELECT d.name AS flow,
       u.name AS upstream,
       u.owner AS upstream_owner,
       CASE WHEN NOT EXISTS (SELECT 1 FROM pg_roles ro WHERE ro.oid = d.owner) THEN false
            WHEN EXISTS (SELECT 1 FROM pg_roles ro WHERE ro.oid = u.owner)
                 AND pg_has_role(d.owner, u.owner, 'MEMBER') THEN true
            ELSE EXISTS (SELECT 1 FROM taskflow.trigger_grants g
                           JOIN pg_roles ro ON ro.oid = g.grantee
                          WHERE g.flow_id = u.id AND pg_has_role(d.owner, g.grantee, 'MEMBER'))
       END AS allowed,
       t.created_by,
       t.created_at
  FROM taskflow.flow_triggers t
  JOIN taskflow.flows d ON d.id = t.flow_id
  JOIN taskflow.flows u ON u.id = t.upstream_id
 WHERE pg_has_role(CURRENT_USER, d.owner, 'MEMBER');
GRANT SELECT ON taskflow.event_triggers TO PUBLIC;

------------------------------------------------------------------------------
-- event triggers: firing (in the transaction that marks the upstream succeeded)
------------------------------------------------------------------------------

-- Fire the event trigger of downstream flow p_down for the upstream run up
-- (succeeded): the id of the run created, NULL when none is due (disabled,
-- fired already, an upstream still waiting, the link gone) or when the
-- flow's rows have an uncommitted change -- then the attempt is deferred to
-- the scheduler's next pass (taskflow.deferred, part 99_deferred), not lost
-- and not waited for.
CREATE OR REPLACE FUNCTION taskflow._event_fire(p_down bigint, up taskflow.runs) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d       record;
    waiting text;
    rid     bigint;
BEGIN
    SELECT f.id, f.name, f.owner, f.enabled, u.name AS upstream INTO d
      FROM taskflow.flow_triggers t
      JOIN taskflow.flows f ON f.id = t.flow_id
      JOIN taskflow.flows u ON u.id = t.upstream_id
     WHERE t.upstream_id = up.flow_id AND t.flow_id = p_down;
    IF NOT FOUND THEN
        RETURN NULL;                    -- the link or a flow is gone
    END IF;
    IF NOT d.enabled THEN
        RAISE LOG 'taskflow: flow "%" is disabled: not triggered by run % of flow "%" (bizdate %)',
            d.name, up.id, d.upstream, up.bizdate;
        RETURN NULL;
    END IF;
    -- the downstream flow's row and its nodes' locked without waiting
    -- (review of 1.6: an open transaction of its owner that drops or
    -- changes the flow must not hold up the scheduler's tick, and with
    -- it every owner's runs; taskflow._lock_parents): tried again at the
    -- scheduler's next pass
    IF NOT taskflow._lock_parents(d.id, true, NULL) THEN
        PERFORM taskflow._defer('event', d.id, up.id, NULL, NULL, NULL);
        RAISE LOG 'taskflow: flow "%" has an uncommitted change: its trigger by run % of flow "%" (bizdate %) is tried again at the next pass',
            d.name, up.id, d.upstream, up.bizdate;
        RETURN NULL;
    END IF;
    -- one transaction at a time per (flow, bizdate): the one that
    -- comes second sees the other's upstream success
    PERFORM taskflow._xact_lock(hashtext('taskflow.event'),
                                  hashtext(d.id::text || ' ' || up.bizdate::text));
    IF EXISTS (SELECT 1 FROM taskflow.runs r
                WHERE r.flow_id = d.id AND r.bizdate = up.bizdate AND r.trigger = 'event') THEN
        RETURN NULL;                    -- fired already (a rerun succeeded again)
    END IF;
    -- every upstream allowed and succeeded for this bizdate
    SELECT string_agg(format('"%s"', u.name), ', ' ORDER BY u.name) INTO waiting
      FROM taskflow.flow_triggers t JOIN taskflow.flows u ON u.id = t.upstream_id
     WHERE t.flow_id = d.id
       AND NOT (taskflow._trigger_allowed(d.owner, u.id)
                AND EXISTS (SELECT 1 FROM taskflow.runs r
                             WHERE r.flow_id = u.id AND r.bizdate = up.bizdate
                               AND r.state = 'succeeded'));
    IF waiting IS NOT NULL THEN
        RETURN NULL;
    END IF;
    LOOP
        rid := taskflow._create_run(d.id, clock_timestamp(), up.bizdate, 'event', '{}',
                                    d.owner);
        EXIT WHEN rid IS NOT NULL;
    END LOOP;
    UPDATE taskflow.runs
       SET message = format('triggered by run %s of flow "%s"', up.id, d.upstream)
     WHERE id = rid;
    RAISE LOG 'taskflow: run % of flow "%" (bizdate %) triggered by run % of flow "%"',
        rid, d.name, up.bizdate, up.id, d.upstream;
    RETURN rid;
END
$$;
REVOKE ALL ON FUNCTION taskflow._event_fire(bigint, taskflow.runs) FROM PUBLIC;

CREATE OR REPLACE FUNCTION taskflow._runs_event() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d       record;
    rid     bigint;
    fired   boolean := false;
BEGIN
    FOR d IN SELECT f.id, f.name, u.name AS upstream
               FROM taskflow.flow_triggers t
               JOIN taskflow.flows f ON f.id = t.flow_id
               JOIN taskflow.flows u ON u.id = t.upstream_id
              WHERE t.upstream_id = NEW.flow_id
              ORDER BY f.id LOOP
        BEGIN
            rid := taskflow._event_fire(d.id, NEW);
            fired := fired OR rid IS NOT NULL;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'taskflow: flow "%" cannot be triggered by run % of flow "%": %',
                d.name, NEW.id, d.upstream, SQLERRM;
        END;
    END LOOP;
    IF fired THEN
        PERFORM taskflow._wake();
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER runs_event AFTER UPDATE OF state ON taskflow.runs
    FOR EACH ROW WHEN (NEW.state = 'succeeded' AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION taskflow._runs_event();

------------------------------------------------------------------------------
-- suspend / resume a running run
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._op_suspend_run(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r taskflow.runs := taskflow._op_run(caller, (args->>'run_id')::bigint);
BEGIN
    -- lock the run: a node worker starting a node of it (_node_begin locks
    -- it FOR KEY SHARE) either started before or sees it suspended
    SELECT * INTO r FROM taskflow.runs WHERE id = r.id FOR UPDATE;
    IF r.state = 'suspended' THEN
        RAISE NOTICE 'run % is already suspended', r.id;
        RETURN jsonb_build_object('state', r.state);
    END IF;
    IF r.state <> 'running' THEN
        RAISE EXCEPTION 'run % is %, not running', r.id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN r.state = 'scheduled'
                              THEN 'A run that has not started can be canceled (taskflow.cancel_run); taskflow.disable_flow holds a flow''s scheduling.'
                              ELSE 'Only a running run can be suspended.' END;
    END IF;
    UPDATE taskflow.runs
       SET state = 'suspended', message = format('suspended by %s at %s', caller, clock_timestamp())
     WHERE id = r.id;
    RETURN jsonb_build_object('state', 'suspended');
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_resume_run(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r taskflow.runs := taskflow._op_run(caller, (args->>'run_id')::bigint);
BEGIN
    SELECT * INTO r FROM taskflow.runs WHERE id = r.id FOR UPDATE;
    IF r.state <> 'suspended' THEN
        RAISE EXCEPTION 'run % is %, not suspended', r.id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a run suspended with taskflow.suspend_run can be resumed.';
    END IF;
    -- the state change notes the run for the scheduler (trigger runs_sched)
    UPDATE taskflow.runs
       SET state = 'running',
           message = format('resumed by %s at %s (%s)', caller, clock_timestamp(), r.message)
     WHERE id = r.id;
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('state', 'running');
END
$$;

-- Start no new node of a running run (running nodes finish).
CREATE OR REPLACE FUNCTION taskflow.suspend_run(run_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void FROM taskflow._gate('suspend_run', jsonb_build_object('run_id', $1))
$$;

-- Continue a suspended run.
CREATE OR REPLACE FUNCTION taskflow.resume_run(run_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void FROM taskflow._gate('resume_run', jsonb_build_object('run_id', $1))
$$;

REVOKE ALL ON FUNCTION
    taskflow._trigger_allowed(regrole, bigint),
    taskflow._op_upstream(regrole, taskflow.flows, text),
    taskflow._op_add_flow_trigger(regrole, jsonb),
    taskflow._op_drop_flow_trigger(regrole, jsonb),
    taskflow._op_allow_trigger(regrole, jsonb),
    taskflow._op_disallow_trigger(regrole, jsonb),
    taskflow._runs_event(),
    taskflow._flows_guard_events(),
    taskflow._op_suspend_run(regrole, jsonb),
    taskflow._op_resume_run(regrole, jsonb)
FROM PUBLIC;
