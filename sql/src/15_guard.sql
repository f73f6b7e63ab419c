-- taskflow extension script, part 15: the catalog guard (replayable).
--
-- The definition API (part 10) is SECURITY INVOKER, so users hold INSERT /
-- UPDATE privileges on flows and nodes and could bypass it with plain DML.
-- The engine trusts what it reads there (a schedule it can parse, a time
-- zone, max_active_runs, start/end dates, node kinds and options, retry and
-- timeout bounds), so:
--   * column privileges (part 00, install-only) keep engine-owned columns
--     (id, created_at, updated_at on INSERT, scheduled_until) out of reach:
--     a flow's catch-up always starts at its real creation time;
--   * these BEFORE INSERT/UPDATE triggers give a direct INSERT/UPDATE of
--     flows, nodes and variables the same checks as the API, through the
--     API's own validators (variables: set_variable's parser recomputes
--     the parsed columns).
-- Superusers (the engine, pg_restore of a dump) are trusted and skip the
-- triggers' checks; they bypass row level security anyway.  See
-- docs/security.md.

-- Is the current role a superuser?  (GetUserId(): also right under the
-- gate's and the node workers' user switches.)  C (define_fast.c): it runs
-- once per guarded row, and a query of pg_roles cost 60 us of each.
CREATE OR REPLACE FUNCTION taskflow._guard_trusted() RETURNS boolean
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_guard_trusted';

CREATE OR REPLACE FUNCTION taskflow._flows_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF taskflow._guard_trusted() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- engine-owned columns (also kept out by column privileges)
        NEW.created_at := now();
        NEW.updated_at := now();
        NEW.scheduled_until := NULL;
    ELSIF NEW.created_at IS DISTINCT FROM OLD.created_at
          OR NEW.scheduled_until IS DISTINCT FROM OLD.scheduled_until THEN
        -- (fires before flows_watermark, which may move the watermark)
        RAISE EXCEPTION 'created_at and scheduled_until of flow "%" are maintained by taskflow', OLD.name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Change flows with taskflow.alter_flow().';
    END IF;
    IF TG_OP = 'INSERT' OR NEW.name IS DISTINCT FROM OLD.name THEN
        PERFORM taskflow._check_name('flow', NEW.name);
    END IF;
    IF TG_OP = 'INSERT' OR NEW.schedule IS DISTINCT FROM OLD.schedule THEN
        NEW.schedule := taskflow._check_schedule(NEW.schedule);
    END IF;
    IF TG_OP = 'INSERT' OR NEW.timezone IS DISTINCT FROM OLD.timezone THEN
        -- (microseconds: the zone names are read once per backend)
        NEW.timezone := taskflow._check_timezone(NEW.timezone);
    END IF;
    IF TG_OP = 'INSERT' OR NEW.owner IS DISTINCT FROM OLD.owner THEN
        NEW.owner := taskflow._check_owner(NEW.owner);
    END IF;
    IF TG_OP = 'INSERT' OR NEW.max_active_runs IS DISTINCT FROM OLD.max_active_runs
       OR NEW.start_date IS DISTINCT FROM OLD.start_date
       OR NEW.end_date IS DISTINCT FROM OLD.end_date THEN
        PERFORM taskflow._check_flow_settings(NEW.max_active_runs, NEW.start_date, NEW.end_date);
    END IF;
    IF TG_OP = 'INSERT' OR NEW.suspend_after_failures IS DISTINCT FROM OLD.suspend_after_failures THEN
        PERFORM taskflow._check_suspend_after(NEW.suspend_after_failures);
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER flows_guard BEFORE INSERT OR UPDATE ON taskflow.flows
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._flows_guard();

CREATE OR REPLACE FUNCTION taskflow._nodes_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
BEGIN
    IF taskflow._guard_trusted() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.created_at := now();
        NEW.updated_at := now();
    ELSIF NEW.flow_id IS DISTINCT FROM OLD.flow_id OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'flow_id and created_at of node "%" cannot change', OLD.name
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Drop the node and add it to the other flow with taskflow.add_node().';
    ELSIF NEW.name IS NOT DISTINCT FROM OLD.name AND NEW.kind IS NOT DISTINCT FROM OLD.kind
          AND NEW.body IS NOT DISTINCT FROM OLD.body AND NEW.options IS NOT DISTINCT FROM OLD.options
          AND NEW.retries IS NOT DISTINCT FROM OLD.retries
          AND NEW.retry_delay IS NOT DISTINCT FROM OLD.retry_delay
          AND NEW.timeout IS NOT DISTINCT FROM OLD.timeout THEN
        RETURN NEW;             -- nothing the engine reads has changed
    END IF;
    -- the flow as the caller sees it (row level security)
    SELECT * INTO f FROM taskflow.flows x WHERE x.id = NEW.flow_id;
    IF NOT FOUND THEN
        RETURN NEW;             -- refused by the policy (or the foreign key) next
    END IF;
    PERFORM taskflow._check_name('node', NEW.name);
    PERFORM taskflow._check_node_settings(NEW.name, NEW.retries, NEW.retry_delay, NEW.timeout);
    -- kind, body and options (and the variables they use) are checked together
    IF TG_OP = 'INSERT' OR NEW.kind IS DISTINCT FROM OLD.kind OR NEW.body IS DISTINCT FROM OLD.body
       OR NEW.options IS DISTINCT FROM OLD.options THEN
        PERFORM taskflow._validate_node(f, NEW.name, NEW.kind, NEW.body, NEW.options);
        -- ${node.column}: the node exists (and, on UPDATE, is upstream)
        PERFORM taskflow._check_node_outputs(f, CASE WHEN TG_OP = 'UPDATE' THEN NEW.id END,
                                             NEW.name, NEW.body, NEW.options);
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER nodes_guard BEFORE INSERT OR UPDATE ON taskflow.nodes
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._nodes_guard();

-- variables: the engine renders pattern/base/shift; a direct write gets them
-- recomputed from the definition by set_variable's own parser
CREATE OR REPLACE FUNCTION taskflow._variables_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF taskflow._guard_trusted() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.flow_id IS DISTINCT FROM OLD.flow_id THEN
        RAISE EXCEPTION 'a variable cannot move to another flow'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Use taskflow.drop_variable() and taskflow.set_variable().';
    END IF;
    SELECT p.pattern, p.base, p.shift INTO NEW.pattern, NEW.base, NEW.shift
      FROM taskflow._parse_variable(NEW.name, NEW.definition, NEW.is_constant) p;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER variables_guard BEFORE INSERT OR UPDATE ON taskflow.variables
    FOR EACH ROW EXECUTE FUNCTION taskflow._variables_guard();
