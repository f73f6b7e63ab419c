-- taskflow extension script, part 20: the engine's SQL side.
-- Owner: the engine (launcher.c, scheduler.c, worker.c, gate.c, shmem.c).
-- See docs/operations.md.
--
--   * wake plumbing (C): _wake(), _wake_launcher(), triggers on definitions
--   * the watermark trigger on flows (_flows_watermark)
--   * scheduler functions (_sched_*), run by the per-database scheduler as
--     superuser: recovery of dead node runs, creation of due runs (catch-up),
--     run promotion / upstream failure / finishing, ready nodes
--   * node worker book-keeping (_node_*), run by node workers as superuser
--   * run operations: run_flow, wait_run, cancel_run, rerun, backfill,
--     purge_history; the privileged part goes through the C gate _gate()
--     into _op_* functions (revoked from PUBLIC)
--   * views: run_history (node_run_history: part 91; security_invoker,
--     so the row level security of part 00 applies)
--
-- Internal functions pin search_path so that a caller's (or a node script's)
-- search_path can never redirect them.

------------------------------------------------------------------------------
-- wake plumbing
------------------------------------------------------------------------------

-- Wake this database's scheduler when the current transaction commits.
CREATE OR REPLACE FUNCTION taskflow._wake() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_sql_wake';

-- Ask the launcher to (re)check this database (at commit).
CREATE OR REPLACE FUNCTION taskflow._wake_launcher() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_sql_wake_launcher';

CREATE OR REPLACE FUNCTION taskflow._wake_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM taskflow._wake();
    RETURN NULL;
END
$$;

-- (The triggers that wake the scheduler on definition changes, flows_wake,
-- nodes_wake and edges_wake, are in part 51: they wake it only when a change
-- needs a pass soon.)

-- The C gate for privileged run operations (see gate.c).
CREATE OR REPLACE FUNCTION taskflow._gate(op text, args jsonb) RETURNS jsonb
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_sql_gate';

-- Terminate the node workers of this database running a node run of run
-- p_run_id, chosen by what their shared-memory slot runs now (a warm worker
-- goes from node run to node run: a pid recorded in node_runs may serve
-- another run by now); they never take another node run.  Returns how many
-- were signalled.  Superuser only (cancel_run, through the gate).
CREATE OR REPLACE FUNCTION taskflow._terminate_run_workers(p_run_id bigint) RETURNS integer
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'tf_sql_terminate_run_workers';
REVOKE ALL ON FUNCTION taskflow._terminate_run_workers(bigint) FROM PUBLIC;

------------------------------------------------------------------------------
-- helpers
------------------------------------------------------------------------------

-- "now" as the scheduler sees it: taskflow.test_clock when set (tests only),
-- else now().  C (define_fast.c): ~20 us a call as a SQL function.
CREATE OR REPLACE FUNCTION taskflow._now() RETURNS timestamptz
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_now';

-- The scheduler's watermark when a manual-only flow gets a schedule.
-- Users cannot write flows.scheduled_until (column privileges), but a
-- BEFORE trigger's changes to NEW are not privilege-checked.  A flow without
-- a schedule has no periods to catch up: the schedule applies from the time
-- it is set (taskflow._now(), test-clock aware), not from created_at (or an
-- old watermark from before the schedule was cleared).  Everything else
-- leaves the watermark alone: enabling a disabled flow catches up the
-- periods missed while disabled (documented behaviour); a changed schedule
-- or time zone continues from the last period created, so no period of the
-- new schedule after the last run is lost; start_date is a lower bound the
-- scheduler applies itself (_sched_flow).
-- It also resets flows.next_due (the scheduler's note of when to look at the
-- flow next) when a column the scheduler reads changes.
CREATE OR REPLACE FUNCTION taskflow._flows_watermark() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.schedule IS NULL AND NEW.schedule IS NOT NULL THEN
        NEW.scheduled_until := greatest(OLD.scheduled_until, taskflow._now());
    END IF;
    -- the scheduler looks at the flow again (flows.next_due, part 50) when
    -- anything it reads to schedule or promote its runs changes, unless the
    -- update sets next_due itself (the scheduler; users cannot write it)
    IF NEW.next_due IS NOT DISTINCT FROM OLD.next_due
       AND (NEW.schedule, NEW.timezone, NEW.enabled, NEW.catchup, NEW.start_date, NEW.end_date,
            NEW.max_active_runs, NEW.scheduled_until)
           IS DISTINCT FROM
           (OLD.schedule, OLD.timezone, OLD.enabled, OLD.catchup, OLD.start_date, OLD.end_date,
            OLD.max_active_runs, OLD.scheduled_until) THEN
        NEW.next_due := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER flows_watermark BEFORE UPDATE ON taskflow.flows
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._flows_watermark();

-- taskflow.history_retention as an interval: '30 days', '7' (days); NULL = keep forever.
CREATE OR REPLACE FUNCTION taskflow._retention_interval(setting text) RETURNS interval
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i interval;
BEGIN
    IF setting IS NULL OR btrim(setting) IN ('', '0', '-1') THEN
        RETURN NULL;
    END IF;
    IF btrim(setting) ~ '^[0-9]+$' THEN
        i := make_interval(days => btrim(setting)::int);
    ELSE
        i := setting::interval;
    END IF;
    RETURN CASE WHEN i <= interval '0' THEN NULL ELSE i END;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_text_representation THEN
    RAISE WARNING 'taskflow.history_retention = "%" is not an interval; keeping history', setting;
    RETURN NULL;
END
$$;

-- When a failed attempt may be retried: now + delay, or NULL when that is
-- beyond the timestamp range (a retry_delay of '300000 years' written into
-- the catalog): no retry then, instead of an error that would leave the node
-- run 'running' and fail every recovery pass.
CREATE OR REPLACE FUNCTION taskflow._retry_at(delay interval) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN clock_timestamp() + delay;
EXCEPTION WHEN datetime_field_overflow OR numeric_value_out_of_range OR invalid_parameter_value THEN
    RETURN NULL;
END
$$;

-- A role's setting (ALTER ROLE r [IN DATABASE this] SET name = value) as
-- stored in pg_db_role_setting: the one for this database wins over the one
-- for all databases; NULL when none.  Only superusers can store the
-- settings read this way (they are PGC_SUSET parameters).
CREATE OR REPLACE FUNCTION taskflow._role_setting(p_role oid, p_name text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
-- (PL/pgSQL for its plan cache: read per owner by every dispatch)
BEGIN
    RETURN (SELECT substr(c, length(p_name) + 2)
              FROM pg_db_role_setting s
             CROSS JOIN LATERAL unnest(s.setconfig) c
             WHERE s.setrole = p_role
               AND s.setdatabase IN (0, (SELECT d.oid FROM pg_database d
                                          WHERE d.datname = current_database()))
               AND left(c, length(p_name) + 1) = p_name || '='
             ORDER BY s.setdatabase DESC
             LIMIT 1);
END
$$;

-- The per-owner cap on running node workers (0: none): the owner's
-- taskflow.max_workers_per_owner, else the server's.
CREATE OR REPLACE FUNCTION taskflow._owner_cap(p_owner oid) RETURNS integer
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v text := taskflow._role_setting(p_owner, 'taskflow.max_workers_per_owner');
BEGIN
    IF v IS NULL OR btrim(v) !~ '^[0-9]{1,9}$' THEN
        v := current_setting('taskflow.max_workers_per_owner', true);
    END IF;
    RETURN CASE WHEN v ~ '^[0-9]{1,9}$' THEN v::integer ELSE 0 END;
END
$$;

-- Why the owner of a flow may not run its nodes now (NULL, NULL: it may).
-- A node runs only while its owner could connect to this database: the role
-- exists, may log in (a group role only with taskflow.allow_group_owner set
-- for it by a superuser), its CONNECTION LIMIT is not 0, VALID UNTIL is not
-- in the past, and it has CONNECT on the database.
CREATE OR REPLACE FUNCTION taskflow._owner_refusal(p_owner oid, OUT sqlstate text, OUT message text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a   pg_authid;
    db  text := current_database();
    grp text;
BEGIN
    SELECT * INTO a FROM pg_authid WHERE oid = p_owner;
    IF NOT FOUND THEN
        sqlstate := '28000';
        message := format('flow owner (role oid %s) does not exist', p_owner);
        RETURN;
    END IF;
    IF NOT a.rolcanlogin THEN
        grp := taskflow._role_setting(p_owner, 'taskflow.allow_group_owner');
        IF grp IS NULL OR lower(btrim(grp)) NOT IN ('on', 'true', 'yes', '1', 't', 'y') THEN
            sqlstate := '28000';
            message := format('flow owner "%s" is not permitted to log in (NOLOGIN); a group role owns running flows only with ALTER ROLE %s SET taskflow.allow_group_owner = on (by a superuser)',
                              a.rolname, quote_ident(a.rolname));
            RETURN;
        END IF;
    END IF;
    IF a.rolconnlimit = 0 AND NOT a.rolsuper THEN
        sqlstate := '28000';
        message := format('flow owner "%s" has CONNECTION LIMIT 0', a.rolname);
        RETURN;
    END IF;
    IF a.rolvaliduntil IS NOT NULL AND a.rolvaliduntil < clock_timestamp() THEN
        sqlstate := '28000';
        message := format('flow owner "%s" expired (VALID UNTIL %s)', a.rolname, a.rolvaliduntil);
        RETURN;
    END IF;
    IF NOT has_database_privilege(p_owner, (SELECT d.oid FROM pg_database d WHERE d.datname = db),
                                  'CONNECT') THEN
        sqlstate := '42501';
        message := format('flow owner "%s" has no CONNECT privilege on database "%s"', a.rolname, db);
        RETURN;
    END IF;
END
$$;

-- next_runs() that never fails (NULL instead): a flow with an invalid
-- schedule or time zone written into the catalog must not break the views.
CREATE OR REPLACE FUNCTION taskflow._next_run_safe(schedule text, after timestamptz, tz text)
RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN (SELECT x FROM taskflow.next_runs(schedule, after, 1, tz) x);
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END
$$;

-- Raise "does not exist" unless the caller may use flows of this owner.
CREATE OR REPLACE FUNCTION taskflow._op_check(caller regrole, owner regrole, what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF caller IS NULL OR owner IS NULL
       OR NOT (pg_has_role(caller, owner, 'MEMBER')
               OR (SELECT rolsuper FROM pg_roles WHERE oid = caller)) THEN
        RAISE EXCEPTION '% does not exist', what
            USING ERRCODE = 'undefined_object',
                  HINT = 'Either there is no such object or you are not a member of the owner of its flow.';
    END IF;
END
$$;

-- A flow by name for a run operation, checked against the caller.
CREATE OR REPLACE FUNCTION taskflow._op_flow(caller regrole, flow text) RETURNS taskflow.flows
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
BEGIN
    IF flow IS NULL THEN
        RAISE EXCEPTION 'flow name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO f FROM taskflow.flows x WHERE x.name = flow;
    PERFORM taskflow._op_check(caller, f.owner, format('flow "%s"', flow));
    RETURN f;
END
$$;

-- A run by id for a run operation, checked against the caller.
CREATE OR REPLACE FUNCTION taskflow._op_run(caller regrole, run_id bigint) RETURNS taskflow.runs
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r taskflow.runs;
    o regrole;
BEGIN
    IF run_id IS NULL THEN
        RAISE EXCEPTION 'run id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT x.* INTO r FROM taskflow.runs x WHERE x.id = run_id;
    SELECT f.owner INTO o FROM taskflow.flows f WHERE f.id = r.flow_id;
    PERFORM taskflow._op_check(caller, o, format('run %s', run_id));
    RETURN r;
END
$$;

-- Create a run and one pending node run per node (caller holds the
-- transaction).  NULL if that period already has a run.
CREATE OR REPLACE FUNCTION taskflow._create_run(p_flow_id bigint, p_scheduled_for timestamptz,
                                     p_bizdate date, p_trigger text, p_params jsonb,
                                     p_created_by regrole, p_rerun_of bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, params,
                               created_by, rerun_of, flow_version)
    VALUES (p_flow_id, p_scheduled_for, p_bizdate, p_trigger, coalesce(p_params, '{}'),
            p_created_by, p_rerun_of, taskflow._defhist_current(p_flow_id))  -- part 94
    ON CONFLICT (flow_id, scheduled_for) DO NOTHING
    RETURNING id INTO rid;
    IF rid IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO taskflow.node_runs (run_id, node_id)
    SELECT rid, n.id FROM taskflow.nodes n WHERE n.flow_id = p_flow_id ORDER BY n.id;
    RETURN rid;
END
$$;

------------------------------------------------------------------------------
-- scheduler
------------------------------------------------------------------------------

-- The latest fire time t of a schedule with after < t <= upto (or NULL).
-- Looks back over growing windows so dense schedules stay cheap; within a
-- window, pages of fire times growing from 16 to 1000 (the usual call, one
-- period due since the last run, reads one page of 16, not 1000 fire times:
-- 0.3-1 ms less per due flow on the due path; issue 11).
CREATE OR REPLACE FUNCTION taskflow._latest_fire(schedule text, tz text, after timestamptz,
                                      upto timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    w     interval;
    s     timestamptz;
    best  timestamptz;
    t     timestamptz;
    c     bigint;
    m     timestamptz;
    page  integer;
BEGIN
    IF upto IS NULL OR upto <= after THEN
        RETURN NULL;
    END IF;
    FOREACH w IN ARRAY ARRAY['1 hour', '2 days', '40 days', '400 days', '20 years']::interval[] LOOP
        s := greatest(after, upto - w);
        page := 16;
        LOOP
            SELECT max(x) FILTER (WHERE x <= upto), count(*), max(x) INTO t, c, m
              FROM taskflow.next_runs(schedule, s, page, tz) x;
            IF t IS NOT NULL THEN
                best := t;
            END IF;
            EXIT WHEN c < page OR m > upto;
            s := m;
            page := least(page * 4, 1000);
        END LOOP;
        IF best IS NOT NULL OR upto - w <= after THEN
            RETURN best;
        END IF;
    END LOOP;
    RETURN best;
END
$$;

-- How many fire times of a schedule fall in (after, upto], counting at most
-- lim of them (pages of next_runs, growing from 16 to 1000, stop as soon as
-- a page passes upto).
CREATE OR REPLACE FUNCTION taskflow._count_fires(schedule text, tz text, after timestamptz,
                                      upto timestamptz, lim bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n    bigint := 0;
    c    bigint;
    k    bigint;
    m    timestamptz;
    s    timestamptz := after;
    page integer := 16;
BEGIN
    WHILE n < lim LOOP
        page := least(page, lim - n)::integer;
        SELECT count(*) FILTER (WHERE x <= upto), count(*), max(x) INTO c, k, m
          FROM taskflow.next_runs(schedule, s, page, tz) x;
        n := n + c;
        EXIT WHEN k < page OR m > upto;
        s := m;
        page := least(page * 4, 1000);
    END LOOP;
    RETURN least(n, lim);
END
$$;

-- Create the due runs of one flow (catch-up or latest only) and advance its
-- watermark, all in the caller's transaction.  Returns the next due time.
CREATE OR REPLACE FUNCTION taskflow._sched_flow(f taskflow.flows, p_now timestamptz, p_max integer)
RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base  timestamptz;
    t     timestamptz;
    last  timestamptz;
    nxt   timestamptz;
    upto  timestamptz := CASE WHEN f.end_date IS NULL THEN p_now ELSE least(p_now, f.end_date) END;
    cap   integer;
    c     bigint;
    lo    timestamptz;
    hi    timestamptz;
    mid   timestamptz;
    note  text;
    rid   bigint;
    skip1 timestamptz;
    skipn timestamptz;
BEGIN
    -- after the watermark (or creation), never before start_date
    base := greatest(coalesce(f.scheduled_until, f.created_at),
                     f.start_date - interval '1 microsecond');
    -- fast path, taken by most passes: nothing due yet
    SELECT x INTO nxt FROM taskflow.next_runs(f.schedule, base, 1, f.timezone) x;
    IF nxt IS NULL OR nxt > upto THEN
        IF f.end_date IS NOT NULL AND nxt > f.end_date THEN
            nxt := NULL;
        END IF;
        RETURN nxt;
    END IF;
    IF f.catchup THEN
        -- More than taskflow.max_catchup_runs periods missed: keep the most
        -- recent ones, skip (and say so) the older ones.  Counting is bounded
        -- (at most cap + 1 periods are enumerated per probe); the start of
        -- the last cap periods is found by bisection between the watermark
        -- and now, never by enumerating every missed period.
        cap := greatest(coalesce(nullif(current_setting('taskflow.max_catchup_runs', true), '')::integer,
                                 1000), 1);
        c := taskflow._count_fires(f.schedule, f.timezone, base, upto, cap + 1);
        IF c > cap THEN
            lo := base;                 -- more than cap periods in (lo, upto]
            hi := upto;                 -- fewer than cap periods in (hi, upto]
            FOR i IN 1..200 LOOP
                -- (epoch arithmetic: interval days would follow DST)
                mid := to_timestamp(((extract(epoch FROM lo) + extract(epoch FROM hi)) / 2)::float8);
                c := taskflow._count_fires(f.schedule, f.timezone, mid, upto, cap + 1);
                EXIT WHEN c = cap OR extract(epoch FROM hi) - extract(epoch FROM lo) <= 0.000002;
                IF c > cap THEN
                    lo := mid;
                ELSE
                    hi := mid;
                END IF;
            END LOOP;
            skip1 := (SELECT x FROM taskflow.next_runs(f.schedule, base, 1, f.timezone) x);
            skipn := taskflow._latest_fire(f.schedule, f.timezone, base, mid);
            c := taskflow._count_fires(f.schedule, f.timezone, base, skipn, 100000);
            note := format('catch-up of flow "%s" skipped %s%s missed period(s) from %s to %s (taskflow.max_catchup_runs = %s: only the %s most recent periods run)',
                           f.name, CASE WHEN c >= 100000 THEN 'at least ' ELSE '' END, c,
                           skip1, skipn, cap, cap);
            RAISE WARNING '%', note;
            base := mid;
            c := p_max;
        END IF;
        -- (c periods are due when none was skipped: as many fire times, not p_max)
        FOR t IN SELECT x FROM taskflow.next_runs(f.schedule, base, least(p_max, c)::integer, f.timezone) x LOOP
            EXIT WHEN t > upto;
            rid := taskflow._create_run(f.id, t, (t AT TIME ZONE f.timezone)::date - 1,
                                        'schedule', '{}', f.owner);
            IF note IS NOT NULL AND rid IS NOT NULL THEN
                UPDATE taskflow.runs SET message = note WHERE id = rid;
                note := NULL;
            END IF;
            last := t;
        END LOOP;
    ELSE
        last := taskflow._latest_fire(f.schedule, f.timezone, base, upto);
        IF last IS NOT NULL THEN
            PERFORM taskflow._create_run(f.id, last, (last AT TIME ZONE f.timezone)::date - 1,
                                         'schedule', '{}', f.owner);
        END IF;
    END IF;
    IF last IS NOT NULL THEN
        base := last;
    END IF;
    SELECT x INTO nxt FROM taskflow.next_runs(f.schedule, base, 1, f.timezone) x;
    IF f.end_date IS NOT NULL AND nxt > f.end_date THEN
        nxt := NULL;
    END IF;
    IF last IS NOT NULL THEN
        -- the watermark and the scheduler's next look in one row version
        -- (setting next_due keeps flows_watermark from resetting it)
        UPDATE taskflow.flows SET scheduled_until = last, next_due = coalesce(nxt, 'infinity')
         WHERE id = f.id;
    END IF;
    RETURN nxt;
END
$$;

-- Node runs left 'running' by a worker that is gone (not in p_live, the
-- node runs with a live worker slot) become failed or retrying, each in a
-- subtransaction of its own: one bad row (say a retry_delay beyond the
-- timestamp range) fails only itself, never the whole pass.
CREATE OR REPLACE FUNCTION taskflow._sched_recover(p_live bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    x  record;
    nb timestamptz;
    n  integer := 0;
BEGIN
    FOR x IN SELECT nr.id, nr.attempt, nr.worker_pid, nd.retries, nd.retry_delay
               FROM taskflow.node_runs nr JOIN taskflow.nodes nd ON nd.id = nr.node_id
              WHERE nr.state = 'running'
                AND nr.id <> ALL (coalesce(p_live, '{}'))
                -- (read after this query's snapshot: part 99_ready)
                AND nr.id <> ALL (taskflow._live_node_runs())
              ORDER BY nr.id LOOP
        BEGIN
            nb := CASE WHEN x.attempt <= x.retries THEN taskflow._retry_at(x.retry_delay) END;
            UPDATE taskflow.node_runs
               SET state = CASE WHEN nb IS NOT NULL THEN 'retrying' ELSE 'failed' END,
                   not_before = nb, wait_since = NULL,
                   finished_at = clock_timestamp(),
                   message = format('node worker%s exited without recording a result (server crash, restart or termination)',
                                    coalesce(' (pid ' || x.worker_pid || ')', '')),
                   sqlstate = '57P01'
             WHERE id = x.id AND state = 'running';
            n := n + 1;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'taskflow: cannot recover node run %: %', x.id, SQLERRM;
            BEGIN
                UPDATE taskflow.node_runs
                   SET state = 'failed', not_before = NULL, wait_since = NULL,
                       finished_at = clock_timestamp(), sqlstate = '57P01',
                       message = format('node worker exited without recording a result; recovery failed: %s', SQLERRM)
                 WHERE id = x.id AND state = 'running';
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'taskflow: cannot mark node run % failed: %', x.id, SQLERRM;
            END;
        END;
    END LOOP;
    IF n > 0 THEN
        RAISE LOG 'taskflow: % node run(s) left running by a dead worker were marked failed/retrying', n;
    END IF;
    RETURN n;
END
$$;

-- Advance the runs and flows that changed, set-based:
--   * in the runs p_runs: a pending node whose upstream failed becomes
--     upstream_failed, one on a path not taken skipped, as its trigger rule
--     says (transitively); a running run with nothing pending,
--     running or retrying is finished;
--   * in the flows p_flows: scheduled runs become running, oldest period
--     first, while the flow has fewer than max_active_runs running runs.
-- Every query goes through an index from the given ids (O(what changed), not
-- O(all queued runs)).  The state changes this makes are noted in
-- taskflow.sched_queue by the triggers of part 51 (a finished run lets its
-- flow promote the next one; a promoted run may finish at once): the
-- scheduler's pass takes them in its next round.
CREATE OR REPLACE FUNCTION taskflow._sched_advance_runs(p_runs bigint[], p_flows bigint[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF cardinality(p_runs) > 0 THEN
        -- pending nodes that will not run: upstream_failed or skipped by
        -- their trigger rule and branches (part 19_flowlogic)
        LOOP
            EXIT WHEN taskflow._fl_settle(p_runs) = 0;
        END LOOP;

        UPDATE taskflow.runs r
           SET state = CASE
                   WHEN EXISTS (SELECT 1 FROM taskflow.node_runs x WHERE x.run_id = r.id
                                   AND x.state IN ('failed', 'upstream_failed')) THEN 'failed'
                   WHEN EXISTS (SELECT 1 FROM taskflow.node_runs x WHERE x.run_id = r.id
                                   AND x.state = 'canceled') THEN 'canceled'
                   ELSE 'succeeded' END,
               started_at = coalesce(r.started_at, clock_timestamp()),
               finished_at = clock_timestamp()
         WHERE r.id = ANY (p_runs) AND r.state = 'running'
           AND NOT EXISTS (SELECT 1 FROM taskflow.node_runs x WHERE x.run_id = r.id
                              AND x.state IN ('pending', 'running', 'retrying'));
    END IF;

    -- (only when a run of these flows waits: the runs of a due time start as
    -- 'running', part 99_dispatch5, and this statement's plan under stale
    -- statistics of runs took up to 2 s for 100 flows with nothing to start)
    IF cardinality(p_flows) > 0
       AND EXISTS (SELECT 1 FROM taskflow.runs w
                    WHERE w.state = 'scheduled' AND w.flow_id = ANY (p_flows)) THEN
        -- (the runs to promote into an array first, then by id: as one
        -- UPDATE ... FROM, the cached plan read every scheduled run and,
        -- for each, every given flow with both lateral subqueries -- 27,904
        -- of them for 436 scheduled runs and 64 flows, 1.3 s -- once a due
        -- time of 500 flows had its runs created together (_sched_due_set):
        -- the soak's scheduler CPU; 1.8, issue 11)
        UPDATE taskflow.runs r
           SET state = 'running', started_at = clock_timestamp()
         WHERE r.id = ANY (ARRAY(
                 SELECT s.id
                   FROM (SELECT s.id, s.flow_id,
                                row_number() OVER (PARTITION BY s.flow_id
                                                   ORDER BY s.scheduled_for, s.id) AS k
                           FROM taskflow.runs s
                          WHERE s.flow_id = ANY (p_flows) AND s.state = 'scheduled') s
                   -- (each flow's room once: OFFSET 0 keeps the count per flow)
                   JOIN (SELECT f.id,
                                f.max_active_runs
                                  - (SELECT count(*) FROM taskflow.runs a
                                      WHERE a.flow_id = f.id
                                        AND a.state IN ('running', 'suspended')) AS room
                           FROM taskflow.flows f
                          WHERE f.id = ANY (p_flows)
                         OFFSET 0) f ON f.id = s.flow_id
                  WHERE s.k <= f.room))
           AND r.state = 'scheduled';
    END IF;
END
$$;

-- The whole set (no argument: every running run, every flow with scheduled
-- runs), one run (p_run) or one flow (p_flow).
CREATE OR REPLACE FUNCTION taskflow._sched_advance(p_run bigint DEFAULT NULL, p_flow bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_run IS NULL AND p_flow IS NULL THEN
        PERFORM taskflow._sched_advance_runs(
            ARRAY(SELECT r.id FROM taskflow.runs r WHERE r.state = 'running'),
            ARRAY(SELECT DISTINCT r.flow_id FROM taskflow.runs r WHERE r.state = 'scheduled'));
    ELSE
        PERFORM taskflow._sched_advance_runs(array_remove(ARRAY[p_run], NULL),
                                             array_remove(ARRAY[p_flow], NULL));
    END IF;
END
$$;

-- _sched_advance_runs() failed as a whole: the same, run by run (then flow
-- by flow for promotion), each in a subtransaction.  A run that cannot be
-- advanced is marked failed with the error (if even that fails, it is
-- logged and left alone); the other runs go on.
CREATE OR REPLACE FUNCTION taskflow._sched_advance_each(p_runs bigint[], p_flows bigint[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    x   record;
    err text;
    st  text;
BEGIN
    FOR x IN SELECT id FROM taskflow.runs
              WHERE id = ANY (p_runs) AND state = 'running' ORDER BY id LOOP
        BEGIN
            PERFORM taskflow._sched_advance_runs(ARRAY[x.id], '{}');
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
            err := format('the scheduler cannot advance this run: %s (SQLSTATE %s)', SQLERRM, st);
            RAISE WARNING 'taskflow: run %: %', x.id, err;
            BEGIN
                UPDATE taskflow.node_runs
                   SET state = 'canceled', finished_at = clock_timestamp(), message = err
                 WHERE run_id = x.id AND state IN ('pending', 'retrying');
                UPDATE taskflow.runs
                   SET state = 'failed', started_at = coalesce(started_at, clock_timestamp()),
                       finished_at = clock_timestamp(), message = err
                 WHERE id = x.id AND state = 'running';
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'taskflow: cannot mark run % failed: %', x.id, SQLERRM;
            END;
        END;
    END LOOP;
    FOR x IN SELECT f.id AS flow_id, f.name FROM taskflow.flows f
              WHERE f.id = ANY (p_flows)
                AND EXISTS (SELECT 1 FROM taskflow.runs r
                             WHERE r.flow_id = f.id AND r.state = 'scheduled')
              ORDER BY f.id LOOP
        BEGIN
            PERFORM taskflow._sched_advance_runs('{}', ARRAY[x.flow_id]);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
            err := format('the scheduler cannot start this run: %s (SQLSTATE %s)', SQLERRM, st);
            RAISE WARNING 'taskflow: flow "%": %', x.name, err;
            -- the oldest scheduled run is the one promotion tried first
            BEGIN
                UPDATE taskflow.runs
                   SET state = 'failed', started_at = clock_timestamp(),
                       finished_at = clock_timestamp(), message = err
                 WHERE id = (SELECT id FROM taskflow.runs
                              WHERE flow_id = x.flow_id AND state = 'scheduled'
                              ORDER BY scheduled_for, id LIMIT 1);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'taskflow: cannot mark a run of flow "%" failed: %', x.name, SQLERRM;
            END;
        END;
    END LOOP;
END
$$;

-- Schedule one flow (the row locked by the caller) in a subtransaction of
-- its own and store when the scheduler must look at it next
-- (flows.next_due: the next fire time, 'infinity' if it never fires again
-- or is disabled or manual-only).  A flow whose row cannot be scheduled
-- (invalid schedule or time zone written into the catalog, ...) gets its
-- error in flows.schedule_error (logged once, when it changes) and is tried
-- again 10 s later (scheduler clock; a repair resets next_due at once).
-- Returns the new next_due.
CREATE OR REPLACE FUNCTION taskflow._sched_one(f taskflow.flows, p_now timestamptz, p_max_new integer)
RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d   timestamptz;
    err text;
    st  text;
BEGIN
    BEGIN
        IF f.enabled AND f.schedule IS NOT NULL THEN
            d := taskflow._sched_flow(f, p_now, p_max_new);
        END IF;
        d := coalesce(d, 'infinity');
        -- (not again when the row says so already: _sched_flow stored the
        -- next_due of a flow it created runs for, and a sweep finds most
        -- flows unchanged; an UPDATE costs the flows triggers and, for a
        -- sweep, a row version per flow)
        UPDATE taskflow.flows x SET next_due = d, schedule_error = NULL
         WHERE x.id = f.id AND (x.next_due IS DISTINCT FROM d OR x.schedule_error IS NOT NULL);
        IF f.schedule_error IS NOT NULL THEN
            RAISE LOG 'taskflow: flow "%" schedules again', f.name;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
        err := format('%s (SQLSTATE %s)', SQLERRM, st);
        IF f.schedule_error IS DISTINCT FROM err THEN
            RAISE WARNING 'taskflow: cannot schedule flow "%": %', f.name, err;
        END IF;
        d := p_now + interval '10 seconds';
        BEGIN
            UPDATE taskflow.flows SET schedule_error = err, next_due = d WHERE id = f.id;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'taskflow: cannot record the error of flow "%": %', f.name, SQLERRM;
        END;
    END;
    RETURN d;
END
$$;

-- One scheduler pass (everything but starting workers), in one transaction.
-- Incremental: it looks only at what is due or changed, through indexes:
--   1. node runs left 'running' by a dead worker (_sched_recover);
--   2. flows with next_due <= now (due) or NULL (changed since the last
--      look), at most p_limit of them, oldest due first; rows a user's open
--      transaction holds locked are left for a later pass;
--   3. with p_sweep_from (a flow id): also the next p_limit flows by id after
--      it, whatever their next_due (the scheduler's periodic safety sweep);
--      swept_to returns where to go on (NULL: the sweep is done);
--   4. the runs noted in taskflow.sched_queue (and, with p_sweep_runs, every
--      running run and every flow with scheduled runs): advanced in rounds
--      until nothing is left, at most 4 rounds of 4 * p_limit entries.
-- more: work is left that the next pass should do at once (a capped step,
-- catch-up runs beyond p_max_new per flow).  next_due: the earliest next_due
-- of any flow (scheduler clock); next_retry: the earliest retry (real clock).
-- Each step, and each flow, runs in a subtransaction of its own: one bad row
-- fails only itself.
CREATE OR REPLACE FUNCTION taskflow._sched_tick(p_now timestamptz, p_live bigint[], p_max_new integer,
                                     p_limit integer, p_sweep_from bigint, p_sweep_runs boolean,
                                     OUT next_due timestamptz, OUT next_retry timestamptz,
                                     OUT more boolean, OUT swept_to bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f       taskflow.flows;
    n       integer := 0;
    changed bigint[] := '{}';
    r_ids   bigint[];
    f_ids   bigint[];
BEGIN
    more := false;
    BEGIN
        PERFORM taskflow._sched_recover(p_live);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'taskflow: recovery of dead node runs failed: %', SQLERRM;
    END;

    -- (two queries, each an index scan whatever plan the cache settles on:
    -- the changed ones, then the due ones oldest first)
    FOR f IN SELECT * FROM taskflow.flows x
              WHERE x.next_due IS NULL
              LIMIT p_limit
                FOR NO KEY UPDATE SKIP LOCKED LOOP
        n := n + 1;
        changed := changed || f.id;         -- max_active_runs may have changed
        IF taskflow._sched_one(f, p_now, p_max_new) <= p_now THEN
            more := true;                   -- more catch-up runs are due
        END IF;
    END LOOP;
    IF n < p_limit THEN
        FOR f IN SELECT * FROM taskflow.flows x
                  WHERE x.next_due <= p_now
                  ORDER BY x.next_due
                  LIMIT p_limit - n
                    FOR NO KEY UPDATE SKIP LOCKED LOOP
            n := n + 1;
            IF taskflow._sched_one(f, p_now, p_max_new) <= p_now THEN
                more := true;
            END IF;
        END LOOP;
    END IF;
    IF n >= p_limit THEN
        more := true;
    END IF;

    IF p_sweep_from IS NOT NULL THEN
        n := 0;
        FOR f IN SELECT * FROM taskflow.flows x
                  WHERE x.id > p_sweep_from ORDER BY x.id LIMIT p_limit
                    FOR NO KEY UPDATE SKIP LOCKED LOOP
            n := n + 1;
            swept_to := f.id;
            IF taskflow._sched_one(f, p_now, p_max_new) <= p_now THEN
                more := true;
            END IF;
        END LOOP;
        IF n < p_limit THEN
            swept_to := NULL;
        END IF;
    END IF;

    FOR i IN 1..4 LOOP
        WITH q AS (
            DELETE FROM taskflow.sched_queue
             WHERE ctid = ANY (ARRAY(SELECT ctid FROM taskflow.sched_queue LIMIT 4 * p_limit))
            RETURNING run_id)
        SELECT coalesce(array_agg(DISTINCT r.id) FILTER (WHERE r.state = 'running'), '{}'),
               coalesce(array_agg(DISTINCT r.flow_id) FILTER (WHERE r.flow_id IS NOT NULL), '{}')
          INTO r_ids, f_ids
          FROM q LEFT JOIN taskflow.runs r ON r.id = q.run_id;
        IF i = 1 THEN
            f_ids := f_ids || changed;
            IF p_sweep_runs THEN
                r_ids := r_ids || ARRAY(SELECT r.id FROM taskflow.runs r WHERE r.state = 'running');
                f_ids := f_ids || ARRAY(SELECT DISTINCT r.flow_id FROM taskflow.runs r
                                         WHERE r.state = 'scheduled');
            END IF;
        END IF;
        EXIT WHEN cardinality(r_ids) = 0 AND cardinality(f_ids) = 0;
        BEGIN
            PERFORM taskflow._sched_advance_runs(r_ids, f_ids);
        EXCEPTION WHEN OTHERS THEN
            -- one bad run or flow: go one by one
            BEGIN
                PERFORM taskflow._sched_advance_each(r_ids, f_ids);
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'taskflow: advancing runs failed: %', SQLERRM;
            END;
        END;
        -- what the ready-node read looks at (part 99_ready)
        PERFORM taskflow._sched_ready_note(r_ids);
    END LOOP;
    more := more OR EXISTS (SELECT 1 FROM taskflow.sched_queue);

    SELECT x.next_due INTO next_due FROM taskflow.flows x
     WHERE x.next_due > p_now ORDER BY x.next_due LIMIT 1;
    IF next_due = 'infinity' THEN
        next_due := NULL;
    END IF;
    -- flows left due or changed (locked by a user's open transaction, or
    -- committed during this pass): look again in a second
    IF NOT more AND (EXISTS (SELECT 1 FROM taskflow.flows x WHERE x.next_due IS NULL)
                     OR (SELECT x.next_due FROM taskflow.flows x WHERE x.next_due IS NOT NULL
                          ORDER BY x.next_due LIMIT 1) <= p_now) THEN
        next_due := least(next_due, p_now + interval '1 second');
    END IF;

    -- (the earliest first, through the index on not_before of part 99_ready:
    -- not every retrying node run)
    SELECT nr.not_before INTO next_retry
      FROM taskflow.node_runs nr
     WHERE nr.state = 'retrying' AND nr.not_before IS NOT NULL
       AND EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = nr.run_id AND r.state = 'running')
     ORDER BY nr.not_before LIMIT 1;
END
$$;

-- Node runs ready to start: pending (or retrying and due) in a running run
-- among p_runs (the runs that changed, part 99_ready; _sched_ready: every
-- running run), its trigger rule met (taskflow._fl_ready_ids_in: by default
-- every upstream succeeded), not already handed to a worker.
--
-- Fair between owners: p_running holds the owner of every node worker
-- running in the cluster (one entry per worker, all databases); an owner's
-- k-th ready node ranks as (its running workers + k), so owners with fewer
-- workers go first and ready nodes of several owners interleave
-- (within an owner: higher flow priority first, then oldest period;
-- between owners priority counts for nothing, so that it never lets one
-- owner pass another: part 93, docs/operations.md "Priority").  An owner at its cap
-- (taskflow.max_workers_per_owner, per role or the server's) gets nothing.
-- owner_cap goes back to the scheduler, which enforces it again in shared
-- memory.  Rows of capped owners come last with eligible = false (at most
-- p_limit + 1 rows in all): they tell the scheduler that ready work is held
-- back, so that it asks to be woken when a worker slot frees; owner_running
-- (the owner's running workers once its ready nodes ranked before this one
-- have started) ranks this database's claim on the next free slot against
-- other databases' (see tf_reserve_worker_slot).
-- dispatch_seq changes with every attempt and every poll of a wait node
-- (the scheduler counts dispatches that never started per dispatch_seq).
-- (flows.priority comes with part 93_events.once, after this part: a
-- PL/pgSQL body is checked when it first runs, not when it is created.)
-- ready_runs (the same in every row): the runs among p_runs with a node run
-- ready (eligible or not, returned or beyond the limit), which the
-- scheduler keeps in its ready set (part 99_ready).
CREATE OR REPLACE FUNCTION taskflow._sched_ready_in(p_runs bigint[], p_exclude bigint[],
                                                    p_limit integer, p_running oid[])
RETURNS TABLE (node_run_id bigint, run_id bigint, owner oid, owner_login boolean,
               flow text, node text, dispatch_seq integer, owner_cap integer, eligible boolean,
               owner_running integer, ready_runs bigint[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
-- (PL/pgSQL for its plan cache: a LANGUAGE sql function that is not inlined
-- is planned again on every call, ~1 ms of every dispatch)
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH cand AS (
        SELECT nr.id, nr.run_id, f.owner::oid AS owner,
               CASE WHEN a.oid IS NULL THEN false  -- a dropped owner: refused by the worker
                    ELSE a.rolcanlogin AND a.rolconnlimit < 0 AND d.datconnlimit < 0
                         AND has_database_privilege(f.owner::oid, d.oid, 'CONNECT') END AS login,
               f.name AS flow, n.name AS node,
               (nr.attempt + CASE WHEN nr.wait_since IS NOT NULL
                                  THEN coalesce(nr.rows, 0) % 1000000 ELSE 0 END)::integer AS seq,
               r.scheduled_for, f.priority
          -- (r.id = ANY, not a join with unnest(): the cached plan reads only
          -- the given runs, not every running run; 1.7, issue 11)
          FROM taskflow.runs r
          -- (per given run, through the partial index on node_runs: the
          -- node runs of queued runs are never read)
          CROSS JOIN LATERAL (SELECT x.* FROM taskflow.node_runs x
                               WHERE x.run_id = r.id AND x.state IN ('pending', 'retrying')
                               OFFSET 0) nr
          JOIN taskflow.nodes n ON n.id = nr.node_id
          JOIN taskflow.flows f ON f.id = r.flow_id
          LEFT JOIN pg_authid a ON a.oid = f.owner
          JOIN pg_database d ON d.datname = current_database()
         WHERE r.id = ANY (p_runs) AND r.state = 'running'
           AND (nr.state = 'pending'
                OR (nr.state = 'retrying' AND nr.not_before <= clock_timestamp()))
           AND nr.id <> ALL (coalesce(p_exclude, '{}'))
           AND nr.id IN (SELECT taskflow._fl_ready_ids_in(p_runs))   -- trigger rules (part 19)
    -- (MATERIALIZED: once per owner; inlined, the planner evaluated the
    -- owner's cap -- two PL/pgSQL calls -- for every candidate row: ~100 per
    -- read in the 500-flow soak; 1.8, issue 11)
    ), own AS MATERIALIZED (
        SELECT o.owner,
               (SELECT count(*) FROM unnest(p_running) u WHERE u = o.owner) AS running,
               taskflow._owner_cap(o.owner) AS cap
          FROM (SELECT DISTINCT c.owner FROM cand c) o
    ), ranked AS (
        SELECT c.*, o.running, o.cap,
               row_number() OVER (PARTITION BY c.owner
                                  ORDER BY c.priority DESC, c.scheduled_for, c.run_id, c.id) AS k
          FROM cand c JOIN own o ON o.owner = c.owner
    )
    SELECT x.id, x.run_id, x.owner, x.login, x.flow, x.node, x.seq, x.cap,
           x.cap = 0 OR x.running + x.k <= x.cap, (x.running + x.k - 1)::integer,
           (SELECT array_agg(DISTINCT c.run_id) FROM cand c)
      FROM ranked x
     ORDER BY (x.cap = 0 OR x.running + x.k <= x.cap) DESC, x.running + x.k,
              x.scheduled_for, x.run_id, x.id
     LIMIT p_limit + 1;
END
$$;

-- The same over every running run (what the scheduler read before 1.5).
CREATE OR REPLACE FUNCTION taskflow._sched_ready(p_exclude bigint[], p_limit integer, p_running oid[])
RETURNS TABLE (node_run_id bigint, run_id bigint, owner oid, owner_login boolean,
               flow text, node text, dispatch_seq integer, owner_cap integer, eligible boolean,
               owner_running integer)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT x.node_run_id, x.run_id, x.owner, x.owner_login, x.flow, x.node, x.dispatch_seq,
           x.owner_cap, x.eligible, x.owner_running
      FROM taskflow._sched_ready_in(ARRAY(SELECT r.id FROM taskflow.runs r WHERE r.state = 'running'),
                                    p_exclude, p_limit, p_running) x;
END
$$;

-- A node run whose worker repeatedly failed to even start (e.g. the owner
-- cannot connect): fail it instead of trying forever.
CREATE OR REPLACE FUNCTION taskflow._sched_give_up(p_node_run_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE taskflow.node_runs
       SET state = 'failed', finished_at = clock_timestamp(), sqlstate = '58000',
           message = 'the node worker exited before starting the node several times; see the server log'
     WHERE id = p_node_run_id AND state IN ('pending', 'retrying');
$$;

------------------------------------------------------------------------------
-- node worker book-keeping
------------------------------------------------------------------------------

-- Mark a node run running (next attempt) and return what the worker needs;
-- no row if it is not runnable any more (canceled meanwhile, ...).
CREATE OR REPLACE FUNCTION taskflow._node_begin(p_node_run_id bigint, p_pid integer)
RETURNS TABLE (flow_id bigint, flow text, node_id bigint, node text, kind text, body text,
               options jsonb, run_id bigint, attempt integer, bizdate date,
               cyctime timestamptz, params jsonb, timeout_ms bigint, poll_ms bigint,
               delay_ms bigint, database text, wait_ms bigint, polls bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nr taskflow.node_runs;
BEGIN
    -- Lock the run against cancel_run (which locks it FOR UPDATE) until this
    -- commits: either cancel_run committed first and the run is not running
    -- any more, or it waits for us and then sees this node run 'running'
    -- with our pid, and terminates us.
    PERFORM 1 FROM taskflow.runs r
      WHERE r.id = (SELECT x.run_id FROM taskflow.node_runs x WHERE x.id = p_node_run_id)
        AND r.state = 'running'
        FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- a wait node coming back for its next poll (wait_since set) goes on
    -- with the same attempt, start time and poll count (rows)
    UPDATE taskflow.node_runs x
       SET state = 'running',
           attempt = x.attempt + CASE WHEN x.wait_since IS NULL THEN 1 ELSE 0 END,
           started_at = coalesce(x.wait_since, clock_timestamp()),
           finished_at = NULL, worker_pid = p_pid, not_before = NULL, message = NULL,
           sqlstate = NULL, rows = CASE WHEN x.wait_since IS NULL THEN NULL ELSE x.rows END,
           bytes = NULL, log = NULL
     WHERE x.id = p_node_run_id AND x.state IN ('pending', 'retrying')
       AND EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = x.run_id AND r.state = 'running')
    RETURNING * INTO nr;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT f.id, f.name, n.id, n.name, n.kind, n.body, n.options, r.id, nr.attempt,
           r.bizdate, r.scheduled_for, r.params,
           (extract(epoch FROM n.timeout) * 1000)::bigint,
           (extract(epoch FROM coalesce(nullif(n.options->>'poll_interval', '')::interval,
                                        interval '10 seconds')) * 1000)::bigint,
           (extract(epoch FROM coalesce(nullif(n.options->>'delay', '')::interval,
                                        interval '0')) * 1000)::bigint,
           n.options->>'database',     -- kinds with TF_KIND_CROSSDB (node_kinds.c)
           CASE WHEN nr.wait_since IS NULL THEN 0::bigint
                ELSE greatest((extract(epoch FROM clock_timestamp() - nr.wait_since) * 1000)::bigint, 0) END,
           CASE WHEN nr.wait_since IS NULL THEN 0::bigint ELSE coalesce(nr.rows, 0) END
      FROM taskflow.runs r
      JOIN taskflow.flows f ON f.id = r.flow_id
      JOIN taskflow.nodes n ON n.id = nr.node_id
     WHERE r.id = nr.run_id;
END
$$;

-- Record success in the node's own transaction.  false when the node run is
-- no longer 'running' (canceled or recovered meanwhile): the worker then
-- rolls the node's work back instead of committing it unrecorded.
-- (PL/pgSQL: its plan is cached per worker; a LANGUAGE sql function with SET
-- is never inlined and was planned again for every node: 0.30 ms of each
-- node on the dispatch path of its siblings, issue 11)
CREATE OR REPLACE FUNCTION taskflow._node_succeeded(p_node_run_id bigint, p_rows bigint, p_bytes bigint,
                                         p_rendered text, p_log text)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE taskflow.node_runs x
       SET state = 'succeeded', finished_at = clock_timestamp(), rows = p_rows,
           bytes = p_bytes, rendered = p_rendered, log = p_log, message = NULL,
           sqlstate = NULL, wait_since = NULL
     WHERE x.id = p_node_run_id AND x.state = 'running';
    RETURN FOUND;
END
$$;

-- A failed attempt: retrying (with not_before) while attempts remain, else
-- failed.  A retry_delay beyond the timestamp range means no retry (and says
-- so) rather than an error that would leave the node run 'running'.
CREATE OR REPLACE FUNCTION taskflow._node_failed(p_node_run_id bigint, p_message text, p_sqlstate text,
                                      p_rendered text, p_log text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH x AS (
        SELECT nr.id, CASE WHEN nr.attempt <= n.retries THEN taskflow._retry_at(n.retry_delay) END AS nb,
               nr.attempt <= n.retries AS may_retry
          FROM taskflow.node_runs nr JOIN taskflow.nodes n ON n.id = nr.node_id
         WHERE nr.id = p_node_run_id AND nr.state = 'running')
    UPDATE taskflow.node_runs nr
       SET state = CASE WHEN x.nb IS NOT NULL THEN 'retrying' ELSE 'failed' END,
           not_before = x.nb, wait_since = NULL,
           finished_at = clock_timestamp(),
           message = CASE WHEN x.may_retry AND x.nb IS NULL
                          THEN p_message || E'\n(not retried: retry_delay is beyond the timestamp range)'
                          ELSE p_message END,
           sqlstate = p_sqlstate,
           rendered = coalesce(p_rendered, nr.rendered), log = p_log
      FROM x
     WHERE nr.id = x.id AND nr.state = 'running';
$$;

-- A warm worker that just finished a node run of run p_run_id asks for the
-- next node runs of that run ready to start (lowest id first, at most
-- p_limit, not among p_exclude: node runs held by other workers); it takes
-- the first one no other worker claimed meanwhile (worker.c,
-- tf_worker_next_in_run).  It is called after every node.  1.7 judged the
-- readiness of every pending node run of the run (_fl_ready_ids_in, part
-- 19) and then kept p_limit of them: O(pending nodes) per call, O(n^2) per
-- run -- a 300-node fan-out judged ~45,000 node runs to start 300.  Here
-- the candidates are read in id order and judged one after the other
-- until p_limit are found: a fan-out's first candidates are ready, so a
-- call judges about p_limit node runs.
--
-- Readiness is _fl_ready_ids_in's, rule for rule (part 19; the same three
-- branches): a finalizer when no other node run of its run is left to
-- finish; an all_success node when every upstream succeeded (or was
-- skipped without propagating) and every labelled edge matches its
-- branch's result; any other rule through _fl_decide.
-- search_path pinned; not executable by PUBLIC.  (PL/pgSQL: plan cached per
-- worker; see docs/performance.md, "1.8: the ready path's CPU".)
CREATE OR REPLACE FUNCTION taskflow._node_next_in_run(p_run_id bigint, p_exclude bigint[],
                                           p_limit integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT c.id
      FROM (SELECT nr.id, nr.node_id, n.flow_id, n.trigger_rule, n.finalizer
              FROM taskflow.runs r
              JOIN taskflow.node_runs nr ON nr.run_id = r.id
              JOIN taskflow.nodes n ON n.id = nr.node_id
             WHERE r.id = p_run_id AND r.state = 'running'
               AND nr.state IN ('pending', 'retrying')
               AND (nr.state = 'pending' OR nr.not_before <= clock_timestamp())
               AND nr.id <> ALL (coalesce(p_exclude, '{}'))
             ORDER BY nr.id
            -- (OFFSET 0: the test below stays above the sort, evaluated
            -- row by row until the LIMIT is met)
            OFFSET 0) c
     WHERE CASE
             WHEN c.finalizer THEN
               NOT EXISTS (SELECT 1 FROM taskflow.node_runs o
                            WHERE o.run_id = p_run_id AND o.node_id <> c.node_id
                              AND o.state IN ('pending', 'running', 'retrying'))
             WHEN c.trigger_rule = 'all_success' THEN
               NOT EXISTS (SELECT 1
                             FROM taskflow.edges e
                             JOIN taskflow.node_runs up
                               ON up.run_id = p_run_id AND up.node_id = e.from_node
                            WHERE e.flow_id = c.flow_id AND e.to_node = c.node_id
                              AND NOT ((up.state = 'succeeded'
                                        OR (up.state = 'skipped' AND NOT up.skip_propagates))
                                       AND (e.branch IS NULL
                                            OR e.branch IS NOT DISTINCT FROM (up.rows = 1))))
             ELSE taskflow._fl_decide(p_run_id, c.node_id) = 'run'
           END
     LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION taskflow._node_next_in_run(bigint, bigint[], integer) FROM PUBLIC;

-- A node run whose row cannot be read into an attempt (a data exception in
-- _node_begin, e.g. an option written past the API that is no interval):
-- failed with that error, no retry.
CREATE OR REPLACE FUNCTION taskflow._node_unstartable(p_node_run_id bigint, p_message text, p_sqlstate text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE taskflow.node_runs
       SET state = 'failed', not_before = NULL, wait_since = NULL,
           started_at = coalesce(started_at, clock_timestamp()), finished_at = clock_timestamp(),
           message = 'the node cannot start: ' || p_message, sqlstate = p_sqlstate
     WHERE id = p_node_run_id AND state IN ('pending', 'retrying');
$$;

-- The owner may not run nodes (taskflow._owner_refusal): failed, no retry.
CREATE OR REPLACE FUNCTION taskflow._node_refused(p_node_run_id bigint, p_message text, p_sqlstate text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE taskflow.node_runs
       SET state = 'failed', not_before = NULL, wait_since = NULL,
           finished_at = clock_timestamp(), message = p_message, sqlstate = p_sqlstate
     WHERE id = p_node_run_id AND state = 'running';
$$;

-- A wait node whose condition is false gives its worker back until the next
-- poll: 'retrying' with not_before = the next poll, same attempt (wait_since
-- keeps the start of the wait, rows the polls so far).  false when the node
-- run is no longer running (canceled meanwhile).
CREATE OR REPLACE FUNCTION taskflow._node_wait_again(p_node_run_id bigint, p_polls bigint, p_next_ms bigint,
                                          p_rendered text, p_log text)
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH u AS (
        UPDATE taskflow.node_runs
           SET state = 'retrying',
               not_before = clock_timestamp() + make_interval(secs => p_next_ms / 1000.0),
               wait_since = coalesce(wait_since, started_at), rows = p_polls,
               worker_pid = NULL, finished_at = NULL, sqlstate = NULL,
               message = CASE WHEN p_polls = 0
                              THEN format('waiting: delay; first poll at %s',
                                          clock_timestamp() + make_interval(secs => p_next_ms / 1000.0))
                              ELSE format('waiting: condition false after %s poll(s); next poll at %s',
                                          p_polls, clock_timestamp() + make_interval(secs => p_next_ms / 1000.0))
                          END,
               rendered = coalesce(p_rendered, rendered), log = p_log
         WHERE id = p_node_run_id AND state = 'running'
        RETURNING 1)
    SELECT count(*) = 1 FROM u;
$$;

------------------------------------------------------------------------------
-- run operations (privileged part: _op_*, called through _gate)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._op_run_flow(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f   taskflow.flows := taskflow._op_flow(caller, args->>'flow');
    bd  date;
    p   jsonb := coalesce(args->'params', '{}');
    rid bigint;
BEGIN
    IF jsonb_typeof(p) = 'null' THEN
        p := '{}';
    ELSIF jsonb_typeof(p) <> 'object' THEN
        RAISE EXCEPTION 'run parameters must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Got %s.', p);
    END IF;
    bd := coalesce(taskflow._check_bizdate('bizdate', (args->>'bizdate')::date),
                   (now() AT TIME ZONE f.timezone)::date - 1);
    -- fail now, not in the worker, on bad params
    PERFORM taskflow._variables(f.id, bd, NULL, 0, NULL, p);
    -- scheduled_for is unique per flow: on the (microsecond) collision with a
    -- scheduled period or another manual run, take the next instant
    LOOP
        rid := taskflow._create_run(f.id, clock_timestamp(), bd, 'manual', p, caller);
        EXIT WHEN rid IS NOT NULL;
    END LOOP;
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('run_id', rid);
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_cancel_run(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r    taskflow.runs := taskflow._op_run(caller, (args->>'run_id')::bigint);
    n    integer;
BEGIN
    -- lock the run; a concurrent finish is seen after the lock
    SELECT * INTO r FROM taskflow.runs WHERE id = r.id FOR UPDATE;
    IF r.state NOT IN ('scheduled', 'running', 'suspended') THEN
        RAISE NOTICE 'run % is already %', r.id, r.state;
        RETURN jsonb_build_object('state', r.state, 'canceled', 0);
    END IF;
    UPDATE taskflow.runs
       SET state = 'canceled', finished_at = clock_timestamp(),
           started_at = coalesce(started_at, clock_timestamp()),
           message = format('canceled by %s', caller)
     WHERE id = r.id;
    UPDATE taskflow.node_runs
       SET state = 'canceled', finished_at = clock_timestamp(),
           message = format('canceled by %s', caller)
     WHERE run_id = r.id AND state IN ('pending', 'running', 'retrying');
    GET DIAGNOSTICS n = ROW_COUNT;
    -- terminate the node workers of this run (their work rolls back); by
    -- their worker slot, not node_runs.worker_pid: a warm worker that has
    -- moved on to a node run of another run is left alone
    PERFORM taskflow._terminate_run_workers(r.id);
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('state', 'canceled', 'canceled', n);
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_rerun(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old  taskflow.runs := taskflow._op_run(caller, (args->>'run_id')::bigint);
    only_f boolean := coalesce((args->>'only_failed')::boolean, true);
    from_n text := args->>'from_node';
    fid  bigint;
    down bigint[];
    bad  text;
    rid  bigint;
BEGIN
    IF old.state IN ('scheduled', 'running', 'suspended') THEN
        RAISE EXCEPTION 'run % is still %', old.id, old.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Wait for it (taskflow.wait_run) or cancel it (taskflow.cancel_run) first.';
    END IF;
    IF from_n IS NOT NULL THEN
        SELECT n.id INTO fid FROM taskflow.nodes n WHERE n.flow_id = old.flow_id AND n.name = from_n;
        IF fid IS NULL THEN
            RAISE EXCEPTION 'node "%" does not exist in the flow of run %', from_n, old.id
                USING ERRCODE = 'undefined_object',
                      HINT = 'Give the name of a node of that flow (taskflow.nodes).';
        END IF;
        -- the node and everything downstream of it run again
        WITH RECURSIVE d(id) AS (
            SELECT fid
            UNION
            SELECT e.to_node FROM taskflow.edges e JOIN d ON e.from_node = d.id
             WHERE e.flow_id = old.flow_id)
        SELECT array_agg(id) INTO down FROM d;
        -- everything upstream of it must have succeeded in the old run
        WITH RECURSIVE u(id) AS (
            SELECT e.from_node FROM taskflow.edges e
             WHERE e.flow_id = old.flow_id AND e.to_node = fid
            UNION
            SELECT e.from_node FROM taskflow.edges e JOIN u ON e.to_node = u.id
             WHERE e.flow_id = old.flow_id)
        SELECT string_agg(format('%s (%s)', n.name, coalesce(o.state, 'not in that run')), ', '
                          ORDER BY n.name)
          INTO bad
          FROM u JOIN taskflow.nodes n ON n.id = u.id
          LEFT JOIN taskflow.node_runs o ON o.run_id = old.id AND o.node_id = u.id
         WHERE o.state IS DISTINCT FROM 'succeeded' AND o.state IS DISTINCT FROM 'skipped';
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'cannot rerun run % from node "%": upstream nodes did not succeed in that run', old.id, from_n
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = format('Upstream: %s.', bad),
                      HINT = 'Rerun from an upstream node that failed, or rerun the failed nodes (taskflow.rerun(run_id)).';
        END IF;
    END IF;
    rid := taskflow._create_run(old.flow_id, clock_timestamp(), old.bizdate, 'rerun',
                                old.params, caller, old.id);
    IF only_f OR from_n IS NOT NULL THEN
        -- with from_node: every node outside it and its downstream that
        -- succeeded in the old run; else: every node that succeeded
        UPDATE taskflow.node_runs nr
           SET state = 'skipped', started_at = clock_timestamp(), finished_at = clock_timestamp(),
               rows = o.rows, bytes = o.bytes, skip_propagates = o.skip_propagates,
               outputs = o.outputs,  -- output variables (part 91)
               message = format('succeeded in run %s; not rerun', o.run_id)
          FROM taskflow.node_runs o
         WHERE nr.run_id = rid AND o.run_id = old.id AND o.node_id = nr.node_id
           AND o.state IN ('succeeded', 'skipped')
           AND (down IS NULL OR nr.node_id <> ALL (down));
    END IF;
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('run_id', rid);
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_backfill(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f     taskflow.flows := taskflow._op_flow(caller, args->>'flow');
    d1    date := (args->>'from_bizdate')::date;
    d2    date := (args->>'to_bizdate')::date;
    d     date;
    t     timestamptz;
    rid   bigint;
    other bigint;
    ids   bigint[] := '{}';
BEGIN
    IF d1 IS NULL OR d2 IS NULL THEN
        RAISE EXCEPTION 'from_bizdate and to_bizdate must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM taskflow._check_bizdate('from_bizdate', d1);
    PERFORM taskflow._check_bizdate('to_bizdate', d2);
    IF d1 > d2 THEN
        RAISE EXCEPTION 'from_bizdate % is after to_bizdate %', d1, d2
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the range oldest first.';
    END IF;
    IF d2 - d1 >= 3660 THEN
        RAISE EXCEPTION 'backfill of % days is too long', d2 - d1 + 1
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Backfill at most 3660 business dates at a time.';
    END IF;
    FOR d IN SELECT g::date FROM generate_series(d1, d2, interval '1 day') g LOOP
        t := taskflow._cyctime_for(f.id, d);
        SELECT id INTO other FROM taskflow.runs WHERE flow_id = f.id AND scheduled_for = t;
        IF FOUND THEN
            RAISE NOTICE 'flow "%": bizdate % already has run %, skipped', f.name, d, other;
            CONTINUE;
        END IF;
        rid := taskflow._create_run(f.id, t, d, 'backfill', '{}', caller);
        ids := ids || rid;
    END LOOP;
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('run_ids', to_jsonb(ids));
END
$$;

-- Delete finished runs (and their node runs) finished before now() - older_than,
-- of flows owned by roles p_caller is a member of (all flows when p_caller is
-- NULL or a superuser).
CREATE OR REPLACE FUNCTION taskflow._purge(p_caller regrole, p_older interval) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
    su boolean := p_caller IS NULL OR (SELECT rolsuper FROM pg_roles WHERE oid = p_caller);
BEGIN
    IF p_older IS NULL THEN
        RETURN 0;
    END IF;
    DELETE FROM taskflow.runs r
     USING taskflow.flows f
     WHERE f.id = r.flow_id
       AND r.state IN ('succeeded', 'failed', 'canceled')
       AND r.finished_at < now() - p_older
       AND (su OR pg_has_role(p_caller, f.owner, 'MEMBER'));
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        RAISE LOG 'taskflow: purged % run(s) finished before %', n, now() - p_older;
    END IF;
    RETURN n;
END
$$;

-- The scheduler's history purge, one bounded batch per transaction: the at
-- most p_limit oldest runs that finished before p_before (and their node
-- runs).  The scheduler calls it between passes, only while nothing is due,
-- until it returns fewer than p_limit (see tf_purge_step in scheduler.c).
CREATE OR REPLACE FUNCTION taskflow._purge_batch(p_before timestamptz, p_limit integer) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM taskflow.runs r
     WHERE r.id = ANY (ARRAY(SELECT x.id FROM taskflow.runs x
                              WHERE x.finished_at < p_before
                                AND x.state IN ('succeeded', 'failed', 'canceled')
                              ORDER BY x.finished_at
                              LIMIT p_limit));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._op_purge_history(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i interval := (args->>'older_than')::interval;
BEGIN
    IF i IS NULL OR i < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        PERFORM now() - i;
    EXCEPTION WHEN datetime_field_overflow THEN
        RAISE EXCEPTION 'invalid older_than for purge_history: % is out of range', i
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'Give an interval such as ''30 days'' or ''1 year''.';
    END;
    RETURN jsonb_build_object('deleted', taskflow._purge(caller, i));
END
$$;

REVOKE ALL ON FUNCTION taskflow._gate(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION taskflow._gate(text, jsonb) TO PUBLIC;
REVOKE ALL ON FUNCTION
    taskflow._op_check(regrole, regrole, text),
    taskflow._op_flow(regrole, text),
    taskflow._op_run(regrole, bigint),
    taskflow._create_run(bigint, timestamptz, date, text, jsonb, regrole, bigint),
    taskflow._sched_flow(taskflow.flows, timestamptz, integer),
    taskflow._sched_recover(bigint[]),
    taskflow._sched_advance(bigint, bigint),
    taskflow._sched_advance_runs(bigint[], bigint[]),
    taskflow._sched_advance_each(bigint[], bigint[]),
    taskflow._sched_one(taskflow.flows, timestamptz, integer),
    taskflow._sched_tick(timestamptz, bigint[], integer, integer, bigint, boolean),
    taskflow._purge_batch(timestamptz, integer),
    taskflow._sched_ready(bigint[], integer, oid[]),
    taskflow._sched_ready_in(bigint[], bigint[], integer, oid[]),
    taskflow._sched_give_up(bigint),
    taskflow._node_begin(bigint, integer),
    taskflow._node_succeeded(bigint, bigint, bigint, text, text),
    taskflow._node_failed(bigint, text, text, text, text),
    taskflow._node_refused(bigint, text, text),
    taskflow._node_unstartable(bigint, text, text),
    taskflow._node_wait_again(bigint, bigint, bigint, text, text),
    taskflow._retry_at(interval),
    taskflow._count_fires(text, text, timestamptz, timestamptz, bigint),
    taskflow._role_setting(oid, text),
    taskflow._owner_cap(oid),
    taskflow._owner_refusal(oid),
    taskflow._op_run_flow(regrole, jsonb),
    taskflow._op_cancel_run(regrole, jsonb),
    taskflow._op_rerun(regrole, jsonb),
    taskflow._op_backfill(regrole, jsonb),
    taskflow._purge(regrole, interval),
    taskflow._op_purge_history(regrole, jsonb)
FROM PUBLIC;

------------------------------------------------------------------------------
-- run operations (public)
------------------------------------------------------------------------------
-- Their search_path is pinned like the internal functions': what they call
-- must not depend on (or be redirected by) the caller's search_path.

-- Start a run of a flow now.  bizdate defaults to yesterday in the flow's time zone.
CREATE OR REPLACE FUNCTION taskflow.run_flow(flow text, bizdate date DEFAULT NULL,
                                  params jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT (taskflow._gate('run_flow',
                           jsonb_build_object('flow', $1, 'bizdate', $2, 'params', $3))
            ->> 'run_id')::bigint
$$;

-- Cancel a scheduled or running run: running node workers are terminated
-- (their work rolls back), every unfinished node run becomes canceled.
CREATE OR REPLACE FUNCTION taskflow.cancel_run(run_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void FROM taskflow._gate('cancel_run', jsonb_build_object('run_id', $1))
$$;

-- A new run of the same flow, bizdate and params (trigger 'rerun').  With
-- from_node: that node and everything downstream of it run again, the other
-- nodes that succeeded are skipped (only_failed is then ignored).
CREATE OR REPLACE FUNCTION taskflow.rerun(run_id bigint, only_failed boolean DEFAULT true,
                                          from_node text DEFAULT NULL) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT (taskflow._gate('rerun', jsonb_build_object('run_id', $1, 'only_failed', $2,
                                                       'from_node', $3))
            ->> 'run_id')::bigint
$$;

-- One run per business date in [from_bizdate, to_bizdate] (trigger 'backfill').
CREATE OR REPLACE FUNCTION taskflow.backfill(flow text, from_bizdate date, to_bizdate date)
RETURNS SETOF bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT x::bigint
      FROM jsonb_array_elements_text(
             taskflow._gate('backfill', jsonb_build_object('flow', $1, 'from_bizdate', $2,
                                                          'to_bizdate', $3)) -> 'run_ids') x
$$;

-- Delete finished runs older than older_than (flows you are a member of the
-- owner of; all flows for a superuser).  Returns the number of runs deleted.
CREATE OR REPLACE FUNCTION taskflow.purge_history(older_than interval) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT (taskflow._gate('purge_history', jsonb_build_object('older_than', $1))
            ->> 'deleted')::bigint
$$;

-- Block until a run has finished (or timeout passes); returns its state.
CREATE OR REPLACE FUNCTION taskflow.wait_run(run_id bigint, timeout interval DEFAULT '1 hour')
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st       text;
    mine     boolean;
    deadline timestamptz;
BEGIN
    BEGIN
        deadline := clock_timestamp() + coalesce(timeout, interval '0');
    EXCEPTION WHEN datetime_field_overflow THEN
        RAISE EXCEPTION 'invalid timeout for wait_run: % is out of range', timeout
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'Give a timeout such as ''10 min'' or ''1 hour''.';
    END;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wait_run needs READ COMMITTED isolation'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'A snapshot that never changes would never see the run finish.';
    END IF;
    LOOP
        SELECT r.state, r.xmin::text = (pg_current_xact_id_if_assigned()::text::bigint % 4294967296)::text
          INTO st, mine
          FROM taskflow.runs r WHERE r.id = wait_run.run_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'run % does not exist', run_id
                USING ERRCODE = 'undefined_object';
        END IF;
        IF st IN ('succeeded', 'failed', 'canceled') THEN
            RETURN st;
        END IF;
        IF mine THEN
            RAISE EXCEPTION 'run % was created in this transaction and cannot start before it commits', run_id
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Call run_flow() and wait_run() in separate statements, outside an explicit transaction block.';
        END IF;
        IF clock_timestamp() >= deadline THEN
            RAISE NOTICE 'wait_run: run % is still % after %', run_id, st, timeout;
            RETURN st;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- views (security_invoker: row level security applies to the reader)
------------------------------------------------------------------------------

-- flow_status: part 90 (its columns come from part 90_ops.once too)

CREATE OR REPLACE VIEW taskflow.run_history WITH (security_invoker = true) AS
SELECT r.id AS run_id,
       f.name AS flow,
       r.bizdate,
       r.scheduled_for,
       r.trigger,
       r.state,
       r.params,
       r.rerun_of,
       r.created_by,
       r.created_at,
       r.started_at,
       r.finished_at,
       r.finished_at - r.started_at AS duration,
       c.nodes,
       c.succeeded,
       c.failed,
       c.upstream_failed,
       c.running,
       c.waiting,
       c.skipped,
       c.canceled,
       r.message
  FROM taskflow.runs r
  JOIN taskflow.flows f ON f.id = r.flow_id
  LEFT JOIN LATERAL (
        SELECT count(*) AS nodes,
               count(*) FILTER (WHERE nr.state = 'succeeded') AS succeeded,
               count(*) FILTER (WHERE nr.state = 'failed') AS failed,
               count(*) FILTER (WHERE nr.state = 'upstream_failed') AS upstream_failed,
               count(*) FILTER (WHERE nr.state = 'running') AS running,
               count(*) FILTER (WHERE nr.state IN ('pending', 'retrying')) AS waiting,
               count(*) FILTER (WHERE nr.state = 'skipped') AS skipped,
               count(*) FILTER (WHERE nr.state = 'canceled') AS canceled
          FROM taskflow.node_runs nr WHERE nr.run_id = r.id) c ON true;

-- node_run_history: part 91_outvars (it shows node_runs.outputs, a 1.2 column)
GRANT SELECT ON taskflow.run_history TO PUBLIC;

-- the launcher learns about this database when CREATE EXTENSION commits
SELECT taskflow._wake_launcher();
