-- taskflow extension script, part 99_dispatch5: the runs of a due time
-- created set-based (replayable).  Owner: dispatch (issue 11, 1.7).  Called
-- by the scheduler's tick (src/scheduler.c, tf_pass_tick) before
-- taskflow._sched_tick, in the same transaction.  See docs/performance.md
-- ("1.7: many jobs due at once").
--
-- _sched_tick schedules flow by flow (_sched_one: the schedule, _create_run,
-- the flow's update, each flow in a subtransaction): ~0.6-1 ms of the
-- scheduler's CPU per due flow, 60-100 ms of serial work when 100 flows are
-- due at the same second, and past 64 subtransactions a held (prepared)
-- tick overflows its subtransaction cache.  The common case -- a flow whose
-- next_due has come and that has exactly one period due (the first fire
-- time after its watermark has come, the one after it has not) needs none
-- of that.  These flows get their runs, node runs and new watermark in
-- three statements for all of them.  (next_due only picks the candidates,
-- as in _sched_tick; the period is found from the watermark, as
-- _sched_flow finds it: a superuser may write next_due directly.)  What is left -- flows changed since the last
-- look (next_due NULL), several periods due (catch-up), a schedule error,
-- past end_date -- goes through _sched_tick's per-flow path as before,
-- which also takes any flow whose set-based step failed: an error rolls the
-- whole step back (one subtransaction) and says so.
-- Same result as _sched_flow for these flows: run (flow, next_due) with
-- bizdate = the day before next_due in the flow's time zone, trigger
-- 'schedule', created_by the owner, one pending node run per node; the run
-- 'running' (started_at set) when the tick's promotion would start it
-- (no run of the flow waits, max_active_runs not reached; 1.8), else
-- 'scheduled' for the promotion;
-- scheduled_until = next_due, next_due = the next fire time ('infinity'
-- past end_date or never).  Rows a user's open transaction holds locked are
-- skipped (left for a later pass, as _sched_tick does).
-- Returns the number of flows scheduled.  search_path pinned; not
-- executable by PUBLIC.
CREATE OR REPLACE FUNCTION taskflow._sched_due_set(p_now timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := 0;
BEGIN
    BEGIN
        WITH due AS MATERIALIZED (
            SELECT f.id, f.owner, f.timezone, f.schedule, f.end_date, f.max_active_runs,
                   greatest(coalesce(f.scheduled_until, f.created_at),
                            f.start_date - interval '1 microsecond') AS base
              FROM taskflow.flows f
             WHERE f.next_due <= p_now
               AND f.enabled AND f.schedule IS NOT NULL AND f.schedule_error IS NULL
             ORDER BY f.next_due
             LIMIT p_limit
               FOR NO KEY UPDATE SKIP LOCKED
        ), fire AS MATERIALIZED (
            -- the first fire time after the watermark, as _sched_flow finds it
            -- (next_due only picks the candidates: a direct write may have
            -- set it to anything)
            SELECT d.*, (SELECT x FROM taskflow.next_runs(d.schedule, d.base, 1, d.timezone) x) AS t
              FROM due d
        ), one AS MATERIALIZED (
            -- exactly one period due (else: the per-flow path, catch-up rules)
            SELECT w.*
              FROM (SELECT c.*, (SELECT x FROM taskflow.next_runs(c.schedule, c.t, 1, c.timezone) x) AS nxt
                      FROM fire c
                     WHERE c.t <= p_now AND (c.end_date IS NULL OR c.t <= c.end_date)) w
             WHERE w.nxt IS NULL OR w.nxt > p_now
        ), act AS MATERIALIZED (
            -- their runs that count for max_active_runs, and those waiting
            -- for it, in one pass over the active runs (not one per flow)
            SELECT a.flow_id,
                   count(*) FILTER (WHERE a.state IN ('running', 'suspended')) AS active,
                   count(*) FILTER (WHERE a.state = 'scheduled') AS waiting
              FROM taskflow.runs a
             WHERE a.flow_id IN (SELECT o.id FROM one o)
               AND a.state IN ('scheduled', 'running', 'suspended')
             GROUP BY a.flow_id
        ), ins AS (
            -- started at once when the flow's promotion would start it in
            -- this same tick (_sched_advance_runs: nothing waits before it,
            -- max_active_runs not reached): the tick then has nothing to
            -- promote (its promotion statement took up to 2 s for 100 new
            -- runs when the statistics of runs predated them)
            INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, params,
                                       created_by, flow_version, state, started_at)
            SELECT o.id, o.t, (o.t AT TIME ZONE o.timezone)::date - 1, 'schedule', '{}',
                   o.owner, taskflow._defhist_current(o.id),      -- part 94
                   CASE WHEN s.go THEN 'running' ELSE 'scheduled' END,
                   CASE WHEN s.go THEN clock_timestamp() END
              FROM one o
              LEFT JOIN act a ON a.flow_id = o.id
             CROSS JOIN LATERAL (SELECT coalesce(a.waiting, 0) = 0
                                        AND coalesce(a.active, 0) < o.max_active_runs AS go) s
             ORDER BY o.t, o.id
            ON CONFLICT (flow_id, scheduled_for) DO NOTHING
            RETURNING id, flow_id
        ), nrs AS (
            INSERT INTO taskflow.node_runs (run_id, node_id)
            SELECT i.id, nd.id FROM ins i JOIN taskflow.nodes nd ON nd.flow_id = i.flow_id
             ORDER BY i.id, nd.id
        )
        -- the watermark and the scheduler's next look in one row version
        -- (setting next_due keeps flows_watermark from resetting it)
        UPDATE taskflow.flows f
           SET scheduled_until = o.t,
               next_due = CASE WHEN o.nxt IS NULL OR o.nxt > o.end_date THEN 'infinity'
                               ELSE o.nxt END
          FROM one o
         WHERE f.id = o.id;
        GET DIAGNOSTICS n = ROW_COUNT;
    EXCEPTION WHEN OTHERS THEN
        -- (nothing of it stays: _sched_tick schedules these flows one by one)
        RAISE WARNING 'taskflow: scheduling the due flows together failed, one by one instead: %',
                      SQLERRM;
        n := 0;
    END;
    RETURN n;
END
$$;

-- How many node runs this database's warm workers took off the scheduler's
-- handed-ahead list (ready node runs ranked beyond the free workers, in
-- shared memory: src/engine.h TfDbSlot.ahead_id) since its scheduler
-- started; 0 without the library preloaded.  Statistics for tests and
-- benchmarks (C, scheduler.c; superuser only).
CREATE OR REPLACE FUNCTION taskflow._ahead_taken() RETURNS bigint
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'tf_sql_ahead_taken';

REVOKE ALL ON FUNCTION
    taskflow._sched_due_set(timestamptz, integer),
    taskflow._ahead_taken()
FROM PUBLIC;
