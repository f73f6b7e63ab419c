-- taskflow extension script, part 51: what wakes the scheduler, and what
-- it looks at when it wakes (replayable).  Owner: the scheduler
-- (src/scheduler.c; its passes are taskflow._sched_tick in part 20).
-- See docs/operations.md ("Scheduler") and docs/performance.md.
--
-- A pass is incremental: it looks at the flows that are due or changed
-- (flows.next_due, part 50) and at the runs noted in taskflow.sched_queue.
--   * node_runs_sched / runs_sched note a run whose node run finished, that
--     was created, or whose state changed, in the changing transaction (a
--     finishing node worker's, a run operation's, the scheduler's own);
--   * flows_wake / flows_wake_new wake the scheduler when a flow changed
--     (flows_watermark reset its next_due) and may be due within the
--     scheduler's longest sleep, or has runs waiting for promotion; any
--     other changed flow is looked at by the next pass, well before it is
--     due.  Changes that do not touch scheduling (updated_at, description,
--     a node's body) wake nothing;
--   * nodes_wake / edges_wake: a deleted node or edge can finish a running
--     run or make a node ready: the flow's running runs are noted.  Adding
--     or changing nodes and edges needs no pass (a run's node runs are made
--     when it is created).
-- runs and node_runs are written only by superusers (the engine, the gate);
-- users fire flows_wake (SECURITY INVOKER: what it reads, it reads under
-- row level security) and nodes_wake / edges_wake, whose function is the
-- one SECURITY DEFINER here: it only notes the running runs of the flows
-- whose nodes or edges the caller deleted (the queue has no grants).
-- search_path is pinned; none is executable by PUBLIC.

CREATE OR REPLACE FUNCTION taskflow._sched_note_run() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO taskflow.sched_queue (run_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._sched_note_node_run() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO taskflow.sched_queue (run_id) VALUES (NEW.run_id);
    RETURN NULL;
END
$$;

-- a run was created (its flow may promote it) or changed state
CREATE OR REPLACE TRIGGER runs_sched_new AFTER INSERT ON taskflow.runs
    FOR EACH ROW EXECUTE FUNCTION taskflow._sched_note_run();
CREATE OR REPLACE TRIGGER runs_sched AFTER UPDATE OF state ON taskflow.runs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION taskflow._sched_note_run();
-- a node run finished (its run may finish, its downstream fail)
CREATE OR REPLACE TRIGGER node_runs_sched AFTER UPDATE OF state ON taskflow.node_runs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state
                       AND NEW.state IN ('succeeded', 'failed', 'upstream_failed', 'skipped',
                                         'canceled'))
    EXECUTE FUNCTION taskflow._sched_note_node_run();

-- A flow changed in a way the scheduler reads (its next_due was reset):
-- wake the scheduler if the flow may be due within 2 minutes (the scheduler
-- sleeps at most 60 s, so any later flow is looked at in time without a
-- wake), or if it has scheduled runs (max_active_runs may have grown).
CREATE OR REPLACE FUNCTION taskflow._flows_wake() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nxt timestamptz;
BEGIN
    IF NEW.enabled AND NEW.schedule IS NOT NULL THEN
        nxt := taskflow._next_run_safe(NEW.schedule,
                                       greatest(coalesce(NEW.scheduled_until, NEW.created_at),
                                                NEW.start_date - interval '1 microsecond'),
                                       NEW.timezone);
        -- (NULL: it never fires, or cannot be computed: let the scheduler say so)
        IF nxt IS NULL OR nxt <= taskflow._now() + interval '2 minutes' THEN
            PERFORM taskflow._wake();
            RETURN NULL;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE'
       AND EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.flow_id = NEW.id AND r.state = 'scheduled') THEN
        PERFORM taskflow._wake();
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER flows_wake_new AFTER INSERT ON taskflow.flows
    FOR EACH ROW WHEN (NEW.next_due IS NULL AND NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._flows_wake();
-- (decided again only when the reset happens or what it depends on changes:
-- updated_at bumps by definition changes cost nothing)
CREATE OR REPLACE TRIGGER flows_wake AFTER UPDATE ON taskflow.flows
    FOR EACH ROW WHEN (NEW.next_due IS NULL
                       AND (OLD.next_due IS NOT NULL
                            OR (NEW.schedule, NEW.timezone, NEW.enabled, NEW.start_date,
                                NEW.end_date, NEW.max_active_runs, NEW.scheduled_until)
                               IS DISTINCT FROM
                               (OLD.schedule, OLD.timezone, OLD.enabled, OLD.start_date,
                                OLD.end_date, OLD.max_active_runs, OLD.scheduled_until)))
    EXECUTE FUNCTION taskflow._flows_wake();

-- Nodes or edges deleted: note the running runs of their flows.
CREATE OR REPLACE FUNCTION taskflow._sched_note_definition() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO taskflow.sched_queue (run_id)
    SELECT r.id FROM taskflow.runs r
     WHERE r.state = 'running' AND r.flow_id IN (SELECT g.flow_id FROM gone g);
    IF FOUND THEN
        PERFORM taskflow._wake();
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER nodes_wake AFTER DELETE ON taskflow.nodes
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION taskflow._sched_note_definition();
CREATE OR REPLACE TRIGGER edges_wake AFTER DELETE ON taskflow.edges
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION taskflow._sched_note_definition();

REVOKE ALL ON FUNCTION
    taskflow._sched_note_run(),
    taskflow._sched_note_node_run(),
    taskflow._flows_wake(),
    taskflow._sched_note_definition()
FROM PUBLIC;
