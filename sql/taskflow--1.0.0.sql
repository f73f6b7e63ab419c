-- taskflow extension script, part 00: catalog tables, row level security, grants.
-- (sql/taskflow--1.0.0.sql is assembled from sql/src/*.sql in name order.)

\echo Use "CREATE EXTENSION taskflow" to load this file. \quit

-- Is the current role a member of (or the same as) the flow owner?
-- Superusers bypass RLS anyway; this is what the policies use.
CREATE FUNCTION taskflow._is_member(owner regrole) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT pg_has_role(current_user, owner, 'MEMBER') $$;

CREATE TABLE taskflow.flows (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$'),
    owner           regrole NOT NULL DEFAULT current_user::regrole,
    schedule        text,
    timezone        text NOT NULL DEFAULT current_setting('TimeZone'),
    description     text,
    enabled         boolean NOT NULL DEFAULT true,
    catchup         boolean NOT NULL DEFAULT true,
    max_active_runs integer NOT NULL DEFAULT 1 CHECK (max_active_runs >= 1),
    start_date      timestamptz,
    end_date        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- the scheduler's watermark: the last cyctime it has created a run for
    -- (NULL: none yet; scheduling starts at greatest(created_at, start_date))
    scheduled_until timestamptz
);

CREATE TABLE taskflow.nodes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id     bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_-]{0,62}$'),
    kind        text NOT NULL,
    body        text,
    options     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    retries     integer NOT NULL DEFAULT 0 CHECK (retries BETWEEN 0 AND 100),
    retry_delay interval NOT NULL DEFAULT '1 min' CHECK (retry_delay >= '0'),
    timeout     interval CHECK (timeout > '0'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (flow_id, name),
    UNIQUE (flow_id, id)
);

CREATE TABLE taskflow.edges (
    flow_id   bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    from_node bigint NOT NULL,
    to_node   bigint NOT NULL,
    PRIMARY KEY (flow_id, from_node, to_node),
    FOREIGN KEY (flow_id, from_node) REFERENCES taskflow.nodes(flow_id, id) ON DELETE CASCADE,
    FOREIGN KEY (flow_id, to_node) REFERENCES taskflow.nodes(flow_id, id) ON DELETE CASCADE,
    CHECK (from_node <> to_node)
);
CREATE INDEX ON taskflow.edges (flow_id, to_node);

CREATE TABLE taskflow.variables (
    flow_id     bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$'),
    definition  text NOT NULL,
    is_constant boolean NOT NULL DEFAULT false,
    -- parsed form of a time variable: to_char(base + shift, pattern)
    pattern     text,
    base        text CHECK (base IN ('bizdate', 'cyctime')),
    shift       interval,
    PRIMARY KEY (flow_id, name)
);

CREATE TABLE taskflow.runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id       bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    scheduled_for timestamptz NOT NULL,          -- cyctime
    bizdate       date NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'backfill', 'rerun')),
    state         text NOT NULL DEFAULT 'scheduled'
                  CHECK (state IN ('scheduled', 'running', 'succeeded', 'failed', 'canceled')),
    params        jsonb NOT NULL DEFAULT '{}',
    rerun_of      bigint REFERENCES taskflow.runs(id) ON DELETE SET NULL,
    created_by    regrole NOT NULL DEFAULT current_user::regrole,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    message       text,
    UNIQUE (flow_id, scheduled_for)
);
CREATE INDEX ON taskflow.runs (state) WHERE state IN ('scheduled', 'running');
CREATE INDEX ON taskflow.runs (flow_id, bizdate);
CREATE INDEX ON taskflow.runs (finished_at);

CREATE TABLE taskflow.node_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES taskflow.runs(id) ON DELETE CASCADE,
    node_id     bigint NOT NULL REFERENCES taskflow.nodes(id) ON DELETE CASCADE,
    attempt     integer NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'retrying', 'succeeded', 'failed',
                                 'upstream_failed', 'skipped', 'canceled')),
    not_before  timestamptz,                     -- earliest start of the next attempt
    started_at  timestamptz,
    finished_at timestamptz,
    rows        bigint,
    bytes       bigint,
    rendered    text,
    message     text,
    sqlstate    text,
    log         text,
    worker_pid  integer,
    UNIQUE (run_id, node_id)
);
CREATE INDEX ON taskflow.node_runs (state) WHERE state IN ('pending', 'running', 'retrying');

-- Row level security: a role sees and changes only flows owned by roles it
-- is a member of.  Superusers (and the extension owner) bypass RLS.
ALTER TABLE taskflow.flows ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.edges ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.variables ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.node_runs ENABLE ROW LEVEL SECURITY;

CREATE POLICY flows_member ON taskflow.flows
    USING (taskflow._is_member(owner)) WITH CHECK (taskflow._is_member(owner));
CREATE POLICY nodes_member ON taskflow.nodes
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY edges_member ON taskflow.edges
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY variables_member ON taskflow.variables
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY runs_member ON taskflow.runs FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY node_runs_member ON taskflow.node_runs FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = run_id));

-- Definitions are changed through the API functions (SECURITY INVOKER, so
-- RLS applies); runs and node_runs are written only by the engine and by
-- the privileged run operations (gate.c), never directly by users.
GRANT USAGE ON SCHEMA taskflow TO PUBLIC;
GRANT SELECT ON taskflow.flows, taskflow.nodes, taskflow.edges, taskflow.variables,
                taskflow.runs, taskflow.node_runs TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON taskflow.flows, taskflow.nodes, taskflow.edges,
                taskflow.variables TO PUBLIC;
-- scheduler-owned column: users cannot move the watermark
REVOKE UPDATE ON taskflow.flows FROM PUBLIC;
GRANT UPDATE (name, owner, schedule, timezone, description, enabled, catchup,
              max_active_runs, start_date, end_date, updated_at) ON taskflow.flows TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('taskflow.flows', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.nodes', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.edges', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.variables', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.runs', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.node_runs', '');
-- taskflow extension script, part 05: schedules and variable rendering (C).
-- Owner: schedule.c / variables.c.  See docs/schedules.md, docs/variables.md.

-- Raises ERROR 22023 (naming the bad field) if the schedule is malformed.
-- NULL (manual runs only) is valid.
CREATE FUNCTION taskflow._schedule_validate(schedule text) RETURNS void
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tf_schedule_validate_sql';

-- The next fire times of a schedule, strictly after "from", evaluated in
-- the given time zone.  A NULL schedule (manual only) gives no rows.
CREATE FUNCTION taskflow.next_runs(schedule text,
                                   "from" timestamptz DEFAULT now(),
                                   count integer DEFAULT 5,
                                   timezone text DEFAULT current_setting('TimeZone'))
RETURNS SETOF timestamptz
LANGUAGE c STABLE PARALLEL SAFE ROWS 5
AS 'MODULE_PATHNAME', 'tf_next_runs';
COMMENT ON FUNCTION taskflow.next_runs(text, timestamptz, integer, text) IS
'next fire times of a schedule (cron, @shortcut, every N unit, timestamp) after "from"';

-- ${name}, ${name:literal}, ${name:ident} substitution ($${ = literal "${").
-- vars: jsonb object name -> value; what names the template in errors.
CREATE FUNCTION taskflow._render_text(template text, vars jsonb, what text DEFAULT 'template')
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tf_render_text';

-- Distinct variable names a template references, in order of first appearance.
CREATE FUNCTION taskflow._template_vars(template text) RETURNS SETOF text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE ROWS 5
AS 'MODULE_PATHNAME', 'tf_template_vars';
-- taskflow extension script, part 10: the flow definition API.
--
-- Owns: create/alter/drop/enable/disable flows, nodes, edges, variables,
-- their validation (names, schedules, time zones, node kinds and options,
-- variable references), the acyclic-edges trigger, variable resolution for
-- the engine (_variables, _cyctime_for), render(), flow_graph() and flow
-- templates.
--
-- Every function here is SECURITY INVOKER: the row level security policies
-- of part 00 decide which flows a caller can see and change.  Every bad input
-- raises an error with an SQLSTATE, a detail and/or a hint, before anything
-- is changed (or the statement's error rolls the change back).
--
-- Concurrency: every change to a flow's definition first updates the flow row
-- (updated_at), which locks it; so definition changes of one flow are
-- serialized and the cycle check of edges sees every committed edge.

-- nodes get their own change timestamp
ALTER TABLE taskflow.nodes ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

------------------------------------------------------------------------------
-- small validation helpers
------------------------------------------------------------------------------

-- Names of system variables; they cannot be declared or overridden.
CREATE FUNCTION taskflow._system_variables() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS
$$ SELECT ARRAY['bizdate', 'cyctime', 'run_id', 'flow', 'node'] $$;

-- The node kinds of this version.
CREATE FUNCTION taskflow._node_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS
$$ SELECT ARRAY['sql', 'archive', 'wait', 'notify'] $$;

-- Check an object name against the rule of its catalog column.
CREATE FUNCTION taskflow._check_name(what text, name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    re   text;
    rule text;
BEGIN
    CASE what
        WHEN 'flow' THEN
            re := '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$';
            rule := 'letters, digits, "_", "." and "-"';
        WHEN 'node' THEN
            re := '^[A-Za-z_][A-Za-z0-9_-]{0,62}$';
            rule := 'letters, digits, "_" and "-"';
        ELSE
            re := '^[A-Za-z_][A-Za-z0-9_]{0,62}$';
            rule := 'letters, digits and "_"';
    END CASE;
    IF name IS NULL THEN
        RAISE EXCEPTION '% name must not be null', what
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF name !~ re THEN
        RAISE EXCEPTION 'invalid % name "%"', what, name
            USING ERRCODE = 'invalid_name',
                  DETAIL = format('A %s name starts with a letter or "_", has at most 63 characters and contains only %s.',
                                  what, rule);
    END IF;
    RETURN name;
END
$$;

-- Validate a schedule; '' means manual only and is returned as NULL.
CREATE FUNCTION taskflow._check_schedule(schedule text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    schedule := nullif(btrim(schedule), '');
    IF schedule IS NOT NULL THEN
        PERFORM taskflow._schedule_validate(schedule);
    END IF;
    RETURN schedule;
END
$$;

-- Validate a time zone name; returns its canonical spelling.
CREATE FUNCTION taskflow._check_timezone(timezone text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    canonical text;
BEGIN
    IF timezone IS NULL OR timezone = current_setting('TimeZone') THEN
        RETURN coalesce(timezone, current_setting('TimeZone'));
    END IF;
    SELECT z.name INTO canonical
      FROM pg_catalog.pg_timezone_names z
     WHERE lower(z.name) = lower(btrim(_check_timezone.timezone))
     ORDER BY z.name = btrim(_check_timezone.timezone) DESC, z.name
     LIMIT 1;
    IF canonical IS NULL THEN
        RAISE EXCEPTION 'invalid time zone "%"', timezone
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a time zone name listed in pg_timezone_names, e.g. ''UTC'' or ''Europe/Berlin''.';
    END IF;
    RETURN canonical;
END
$$;

-- The owner of a new or altered flow: the caller or a role the caller is a
-- member of.
CREATE FUNCTION taskflow._check_owner(owner regrole) RETURNS regrole
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF owner IS NULL THEN
        RETURN current_user::regrole;
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user, owner::oid, 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" is not a member of role "%"', current_user, owner
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A flow can be owned only by your own role or by a role you are a member of.',
                  HINT = format('Ask an administrator to GRANT %s TO %s, or omit owner.',
                                owner, quote_ident(current_user));
    END IF;
    RETURN owner;
END
$$;

-- Checks of the numeric/time settings of a flow.
CREATE FUNCTION taskflow._check_flow_settings(max_active_runs integer,
                                              start_date timestamptz,
                                              end_date timestamptz) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF max_active_runs IS NOT NULL AND max_active_runs < 1 THEN
        RAISE EXCEPTION 'max_active_runs must be at least 1, not %', max_active_runs
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'max_active_runs limits how many runs of the flow may be active at once.';
    END IF;
    IF start_date IS NOT NULL AND end_date IS NOT NULL AND end_date <= start_date THEN
        RAISE EXCEPTION 'end_date % is not after start_date %', end_date, start_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Checks of the retry/timeout settings of a node.
CREATE FUNCTION taskflow._check_node_settings(node text, retries integer,
                                              retry_delay interval,
                                              timeout interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF retries IS NOT NULL AND (retries < 0 OR retries > 100) THEN
        RAISE EXCEPTION 'retries of node "%" must be between 0 and 100, not %', node, retries
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retry_delay IS NOT NULL AND retry_delay < interval '0' THEN
        RAISE EXCEPTION 'retry_delay of node "%" must not be negative', node
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF timeout IS NOT NULL AND timeout < interval '0' THEN
        RAISE EXCEPTION 'timeout of node "%" must be positive', node
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use timeout => ''0'' for no timeout.';
    END IF;
END
$$;

------------------------------------------------------------------------------
-- lookups
------------------------------------------------------------------------------

CREATE FUNCTION taskflow._no_such_flow(flow text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'flow "%" does not exist', flow
        USING ERRCODE = 'undefined_object',
              HINT = 'Either there is no such flow or you are not a member of its owner; '
                     'SELECT name FROM taskflow.flows lists the flows you can use.';
END
$$;

-- A flow by name, for reading (render, flow_graph, ...).
CREATE FUNCTION taskflow._flow(flow text) RETURNS taskflow.flows
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
BEGIN
    SELECT * INTO f FROM taskflow.flows WHERE flows.name = _flow.flow;
    IF NOT FOUND THEN
        PERFORM taskflow._no_such_flow(flow);
    END IF;
    RETURN f;
END
$$;

-- A flow by name, for changing its definition: locks the row and bumps
-- updated_at.
CREATE FUNCTION taskflow._flow_for_update(flow text) RETURNS taskflow.flows
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
BEGIN
    UPDATE taskflow.flows SET updated_at = now()
     WHERE flows.name = _flow_for_update.flow
    RETURNING * INTO f;
    IF NOT FOUND THEN
        PERFORM taskflow._no_such_flow(flow);
    END IF;
    RETURN f;
END
$$;

-- A node of a flow by name.
CREATE FUNCTION taskflow._node(f taskflow.flows, node text) RETURNS taskflow.nodes
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n     taskflow.nodes;
    names text;
BEGIN
    SELECT * INTO n FROM taskflow.nodes
     WHERE nodes.flow_id = f.id AND nodes.name = _node.node;
    IF NOT FOUND THEN
        SELECT string_agg(nodes.name, ', ' ORDER BY nodes.name) INTO names
          FROM taskflow.nodes WHERE nodes.flow_id = f.id;
        RAISE EXCEPTION 'node "%" does not exist in flow "%"', node, f.name
            USING ERRCODE = 'undefined_object',
                  HINT = CASE WHEN names IS NULL
                              THEN format('Flow "%s" has no nodes yet; add them with taskflow.add_node().', f.name)
                              ELSE format('Nodes of flow "%s": %s.', f.name, names) END;
    END IF;
    RETURN n;
END
$$;

------------------------------------------------------------------------------
-- variable references
------------------------------------------------------------------------------

-- Raise an error if template references a name that is neither a system
-- variable nor a variable declared for the flow.
CREATE FUNCTION taskflow._check_vars(flow_id bigint, template text, what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unknown text;
    declared text;
BEGIN
    IF template IS NULL THEN
        RETURN;
    END IF;
    SELECT v INTO unknown
      FROM taskflow._template_vars(template) v
     WHERE v <> ALL (taskflow._system_variables())
       AND NOT EXISTS (SELECT 1 FROM taskflow.variables x
                        WHERE x.flow_id = _check_vars.flow_id AND x.name = v)
     ORDER BY v LIMIT 1;
    IF unknown IS NOT NULL THEN
        SELECT string_agg(x.name, ', ' ORDER BY x.name) INTO declared
          FROM taskflow.variables x WHERE x.flow_id = _check_vars.flow_id;
        RAISE EXCEPTION 'unknown variable "%" in %', unknown, what
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'System variables: ' || array_to_string(taskflow._system_variables(), ', ')
                           || '; flow variables: ' || coalesce(declared, '(none)') || '.',
                  HINT = format('Declare it first, e.g. taskflow.set_variable(flow, %L, ''yyyymmdd of bizdate''), '
                                'or write $' || '${ for a literal "${".', unknown);
    END IF;
END
$$;

-- The template texts of a node: its body and every string option, as
-- (what, template) pairs.
CREATE FUNCTION taskflow._node_templates(node text, body text, options jsonb)
RETURNS TABLE (what text, template text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('node "%s" body', node), body WHERE body IS NOT NULL
    UNION ALL
    SELECT format('node "%s" option "%s"', node, o.key), o.value #>> '{}'
      FROM jsonb_each(coalesce(options, '{}')) o
     WHERE jsonb_typeof(o.value) = 'string'
$$;

------------------------------------------------------------------------------
-- node validation (kinds and options)
------------------------------------------------------------------------------

-- Parse an interval option value or raise a friendly error.
CREATE FUNCTION taskflow._option_interval(what text, value text) RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN value::interval;
EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow
              OR invalid_parameter_value THEN
    RAISE EXCEPTION 'invalid interval "%" for %', value, what
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use a PostgreSQL interval such as ''10 seconds'', ''5 min'' or ''1 hour''.';
END
$$;

CREATE FUNCTION taskflow._validate_storage_server(f taskflow.flows, node text, server text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    srv oid;
    fdw name;
BEGIN
    SELECT s.oid, w.fdwname INTO srv, fdw
      FROM pg_catalog.pg_foreign_server s
      JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
     WHERE s.srvname = server;
    IF srv IS NULL THEN
        RAISE EXCEPTION 'storage server "%" of node "%" does not exist', server, node
            USING ERRCODE = 'undefined_object',
                  HINT = format('Create it first: CREATE SERVER %s FOREIGN DATA WRAPPER taskflow_storage '
                                'OPTIONS (url ''s3://bucket/prefix'');', quote_ident(server));
    END IF;
    IF fdw <> 'taskflow_storage' THEN
        RAISE EXCEPTION 'server "%" of node "%" is not a taskflow storage server', server, node
            USING ERRCODE = 'undefined_object',
                  DETAIL = format('It uses foreign-data wrapper "%s".', fdw),
                  HINT = 'Create a server with CREATE SERVER ... FOREIGN DATA WRAPPER taskflow_storage.';
    END IF;
    IF NOT pg_catalog.has_server_privilege(f.owner::oid, srv, 'USAGE') THEN
        RAISE EXCEPTION 'owner "%" of flow "%" has no USAGE privilege on storage server "%"',
                        f.owner, f.name, server
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Nodes run with the privileges of the flow owner.',
                  HINT = format('GRANT USAGE ON FOREIGN SERVER %s TO %s;', quote_ident(server), f.owner);
    END IF;
END
$$;

-- Validate the options of an archive node.
CREATE FUNCTION taskflow._validate_archive(f taskflow.flows, node text, body text, o jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what   text := format('archive node "%s"', node);
    source text := coalesce(o->>'source', 'keep');
    rel    regclass;
    size   numeric;
BEGIN
    IF body IS NOT NULL THEN
        RAISE EXCEPTION '% takes no body', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the rows to archive in options: {"query": "SELECT ..."} or {"table": "t", "where": "..."}.';
    END IF;
    IF NOT o ? 'server' THEN
        RAISE EXCEPTION '% needs option "server"', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'e.g. options => ''{"server": "archive", "path": "orders/y=${year}/", "table": "orders"}''.';
    END IF;
    PERFORM taskflow._validate_storage_server(f, node, o->>'server');
    IF coalesce(btrim(o->>'path'), '') = '' THEN
        RAISE EXCEPTION '% needs a non-empty option "path"', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The path is the key prefix of the files, e.g. "orders/y=${year}/m=${month}/d=${day}/".';
    END IF;
    IF o ? 'query' AND o ? 'table' THEN
        RAISE EXCEPTION '% has both option "query" and option "table"', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give either a query, or a table with an optional "where" predicate.';
    END IF;
    IF NOT o ? 'query' AND NOT o ? 'table' THEN
        RAISE EXCEPTION '% needs option "query" or option "table"', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give either a query, or a table with an optional "where" predicate.';
    END IF;
    IF coalesce(btrim(o->>'query'), btrim(o->>'table')) = '' THEN
        RAISE EXCEPTION 'option "%" of % is empty', CASE WHEN o ? 'query' THEN 'query' ELSE 'table' END, what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF o ? 'where' AND NOT o ? 'table' THEN
        RAISE EXCEPTION 'option "where" of % needs option "table"', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'With a query, put the predicate into the query.';
    END IF;
    IF o ? 'format' AND o->>'format' NOT IN ('csv', 'csv.gz') THEN
        RAISE EXCEPTION 'unknown format "%" for %', o->>'format', what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Formats: csv, csv.gz.';
    END IF;
    IF o ? 'max_file_size' THEN
        BEGIN
            IF jsonb_typeof(o->'max_file_size') = 'number' THEN
                size := (o->>'max_file_size')::numeric;
                IF size <> trunc(size) THEN
                    RAISE invalid_parameter_value;
                END IF;
            ELSE
                size := pg_catalog.pg_size_bytes(o->>'max_file_size');
            END IF;
        EXCEPTION WHEN invalid_parameter_value OR numeric_value_out_of_range THEN
            RAISE EXCEPTION 'invalid max_file_size % for %', o->'max_file_size', what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use a number of bytes (268435456) or a size such as "256MB" or "1GB".';
        END;
        IF size < 1 THEN
            RAISE EXCEPTION 'max_file_size of % must be positive', what
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    IF source NOT IN ('keep', 'delete', 'detach', 'drop') THEN
        RAISE EXCEPTION 'unknown source action "%" for %', source, what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'source is one of keep (default), delete, detach, drop.';
    END IF;
    IF source <> 'keep' AND NOT o ? 'table' THEN
        RAISE EXCEPTION '"source": "%" of % needs option "table"', source, what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The archived rows can be removed only from a table, not from a query result.';
    END IF;
    IF source IN ('detach', 'drop') THEN
        IF o ? 'where' THEN
            RAISE EXCEPTION '"source": "%" of % archives a whole partition and takes no "where"', source, what
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        -- checked here when the name is fixed and resolves without a search_path
        -- (schema-qualified); the node checks again when it runs
        IF position('${' IN o->>'table') = 0 THEN
            rel := to_regclass(o->>'table');
            IF rel IS NOT NULL AND NOT (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = rel) THEN
                RAISE EXCEPTION '"source": "%" of % needs a partition, and "%" is not one', source, what, o->>'table'
                    USING ERRCODE = 'wrong_object_type',
                          HINT = 'Use "source": "delete" for a table that is not a partition.';
            END IF;
        END IF;
    END IF;
END
$$;

-- Validate kind, body and options of a node of flow f; the checks are those
-- of the shared contract.  Raises on the first problem.
CREATE FUNCTION taskflow._validate_node(f taskflow.flows, node text, kind text, body text, options jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what    text := format('%s node "%s"', kind, node);
    allowed text[];
    k       text;
    v       jsonb;
    t       record;
BEGIN
    IF kind IS NULL OR NOT kind = ANY (taskflow._node_kinds()) THEN
        RAISE EXCEPTION 'unknown node kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Node kinds are: ' || array_to_string(taskflow._node_kinds(), ', ') || '.';
    END IF;
    IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'options of % must be a JSON object', what
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(options::text, 'NULL'));
    END IF;
    allowed := CASE kind
        WHEN 'sql' THEN ARRAY['database', 'autocommit']
        WHEN 'archive' THEN ARRAY['server', 'path', 'query', 'table', 'where', 'format',
                                  'max_file_size', 'source']
        WHEN 'wait' THEN ARRAY['poll_interval', 'delay']
        ELSE ARRAY['channel', 'payload'] END;
    FOR k, v IN SELECT o.key, o.value FROM jsonb_each(options) o ORDER BY o.key LOOP
        IF NOT k = ANY (allowed) THEN
            RAISE EXCEPTION 'unknown option "%" for %', k, what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Options of %s nodes: %s.', kind, array_to_string(allowed, ', '));
        END IF;
        IF k = 'autocommit' THEN
            IF NOT (jsonb_typeof(v) = 'boolean' OR v = '"true"' OR v = '"false"') THEN
                RAISE EXCEPTION 'option "autocommit" of % must be a JSON boolean', what
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = format('Got %s %s.', jsonb_typeof(v), v),
                          HINT = 'Use true or false (the strings "true" and "false" are accepted too).';
            END IF;
        ELSIF jsonb_typeof(v) <> 'string'
           AND NOT (k = 'max_file_size' AND jsonb_typeof(v) = 'number') THEN
            RAISE EXCEPTION 'option "%" of % must be a JSON %', k, what,
                            CASE WHEN k = 'max_file_size' THEN 'number or string' ELSE 'string' END
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Got %s %s.', jsonb_typeof(v), v);
        END IF;
    END LOOP;

    CASE kind
    WHEN 'sql' THEN
        IF coalesce(btrim(body), '') = '' THEN
            RAISE EXCEPTION '% needs a body', what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The body is the SQL script to run, e.g. body => ''ANALYZE orders''.';
        END IF;
        IF options ? 'database' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_database d
                                                 WHERE d.datname = options->>'database') THEN
            RAISE EXCEPTION 'database "%" of % does not exist', options->>'database', what
                USING ERRCODE = 'invalid_catalog_name',
                      HINT = 'Option "database" names another database of this cluster.';
        END IF;
    WHEN 'archive' THEN
        PERFORM taskflow._validate_archive(f, node, body, options);
    WHEN 'wait' THEN
        IF options ? 'poll_interval'
           AND taskflow._option_interval(format('option "poll_interval" of %s', what),
                                         options->>'poll_interval') <= interval '0' THEN
            RAISE EXCEPTION 'option "poll_interval" of % must be positive', what
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF options ? 'delay'
           AND taskflow._option_interval(format('option "delay" of %s', what),
                                         options->>'delay') < interval '0' THEN
            RAISE EXCEPTION 'option "delay" of % must not be negative', what
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF body IS NULL AND NOT options ? 'delay' THEN
            RAISE EXCEPTION '% needs a body (a condition to wait for) or option "delay"', what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'e.g. body => ''EXISTS (SELECT 1 FROM loads WHERE day = ${bizdate:literal})'' or options => ''{"delay": "10 min"}''.';
        END IF;
    WHEN 'notify' THEN
        IF body IS NOT NULL THEN
            RAISE EXCEPTION '% takes no body', what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Put the message into option "payload".';
        END IF;
        IF coalesce(options->>'channel', '') = '' THEN
            RAISE EXCEPTION '% needs option "channel"', what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'e.g. options => ''{"channel": "etl", "payload": "${flow} done for ${bizdate}"}''.';
        END IF;
        IF octet_length(options->>'channel') > 63 THEN
            RAISE EXCEPTION 'channel name of % is too long', what
                USING ERRCODE = 'name_too_long',
                      DETAIL = 'A channel name has at most 63 bytes.';
        END IF;
    END CASE;

    -- variables referenced by the body and the string options
    FOR t IN SELECT * FROM taskflow._node_templates(node, body, options) LOOP
        PERFORM taskflow._check_vars(f.id, t.template, t.what);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- edges: no cycles (also for direct INSERT/UPDATE)
------------------------------------------------------------------------------

-- Names of node ids, in order, joined by ' -> '.
CREATE FUNCTION taskflow._node_path(ids bigint[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(n.name, ' -> ' ORDER BY i.ord)
      FROM unnest(ids) WITH ORDINALITY AS i(id, ord)
      JOIN taskflow.nodes n ON n.id = i.id
$$;

CREATE FUNCTION taskflow._edges_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    visited  bigint[];
    frontier bigint[];
    nxt      bigint[];
    parent   jsonb := '{}';
    path     bigint[];
    cur      bigint;
    e        record;
    fname    text;
BEGIN
    -- serialize definition changes of the flow; keeps updated_at current
    UPDATE taskflow.flows SET updated_at = now() WHERE id = NEW.flow_id
    RETURNING name INTO fname;

    IF fname IS NULL THEN
        RAISE EXCEPTION 'the flow of the new edge does not exist'
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Either there is no such flow or you are not a member of its owner.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM taskflow.nodes n WHERE n.id = NEW.from_node AND n.flow_id = NEW.flow_id)
       OR NOT EXISTS (SELECT 1 FROM taskflow.nodes n WHERE n.id = NEW.to_node AND n.flow_id = NEW.flow_id) THEN
        RAISE EXCEPTION 'edge % -> % connects nodes that are not both in flow "%"',
                        coalesce(taskflow._node_path(ARRAY[NEW.from_node]), '?'),
                        coalesce(taskflow._node_path(ARRAY[NEW.to_node]), '?'), fname
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Both ends of an edge must be nodes of the edge''s flow.';
    END IF;

    IF NEW.from_node = NEW.to_node THEN
        RAISE EXCEPTION 'edge % -> % would create a cycle: a node cannot depend on itself',
                        taskflow._node_path(ARRAY[NEW.from_node]), taskflow._node_path(ARRAY[NEW.to_node])
            USING ERRCODE = 'invalid_object_definition';
    END IF;

    -- breadth-first search from to_node; reaching from_node means a cycle
    visited := ARRAY[NEW.to_node];
    frontier := ARRAY[NEW.to_node];
    WHILE cardinality(frontier) > 0 AND path IS NULL LOOP
        nxt := '{}';
        FOR e IN SELECT DISTINCT ON (x.to_node) x.from_node, x.to_node
                   FROM taskflow.edges x
                  WHERE x.flow_id = NEW.flow_id
                    AND x.from_node = ANY (frontier)
                    AND x.to_node <> ALL (visited)
                    AND NOT (TG_OP = 'UPDATE' AND x.from_node = OLD.from_node AND x.to_node = OLD.to_node)
                  ORDER BY x.to_node, x.from_node LOOP
            parent := parent || jsonb_build_object(e.to_node::text, e.from_node);
            visited := visited || e.to_node;
            nxt := nxt || e.to_node;
            IF e.to_node = NEW.from_node THEN
                -- walk back to to_node
                cur := e.to_node;
                path := ARRAY[cur];
                WHILE cur <> NEW.to_node LOOP
                    cur := (parent->>cur::text)::bigint;
                    path := cur || path;
                END LOOP;
                EXIT;
            END IF;
        END LOOP;
        frontier := nxt;
    END LOOP;

    IF path IS NOT NULL THEN
        RAISE EXCEPTION 'edge % -> % would create a cycle: %',
                        taskflow._node_path(ARRAY[NEW.from_node]), taskflow._node_path(ARRAY[NEW.to_node]),
                        taskflow._node_path(path)
            USING ERRCODE = 'invalid_object_definition',
                  DETAIL = format('Flow "%s" already has the path %s.', fname, taskflow._node_path(path)),
                  HINT = 'The nodes and edges of a flow must form a directed acyclic graph.';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER edges_no_cycle BEFORE INSERT OR UPDATE ON taskflow.edges
    FOR EACH ROW EXECUTE FUNCTION taskflow._edges_check();

-- add an edge between two nodes of flow f (already locked)
CREATE FUNCTION taskflow._add_edge(f taskflow.flows, from_node text, to_node text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a taskflow.nodes := taskflow._node(f, from_node);
    b taskflow.nodes := taskflow._node(f, to_node);
BEGIN
    IF a.id = b.id THEN
        RAISE EXCEPTION 'edge % -> % would create a cycle: a node cannot depend on itself', a.name, b.name
            USING ERRCODE = 'invalid_object_definition';
    END IF;
    IF EXISTS (SELECT 1 FROM taskflow.edges e
                WHERE e.flow_id = f.id AND e.from_node = a.id AND e.to_node = b.id) THEN
        RAISE EXCEPTION 'edge % -> % already exists in flow "%"', a.name, b.name, f.name
            USING ERRCODE = 'duplicate_object';
    END IF;
    INSERT INTO taskflow.edges (flow_id, from_node, to_node) VALUES (f.id, a.id, b.id);
END
$$;

------------------------------------------------------------------------------
-- flows
------------------------------------------------------------------------------

CREATE FUNCTION taskflow.create_flow(name text,
                                     schedule text DEFAULT NULL,
                                     timezone text DEFAULT current_setting('TimeZone'),
                                     description text DEFAULT NULL,
                                     catchup boolean DEFAULT true,
                                     max_active_runs integer DEFAULT 1,
                                     enabled boolean DEFAULT true,
                                     start_date timestamptz DEFAULT NULL,
                                     end_date timestamptz DEFAULT NULL,
                                     owner regrole DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_id bigint;
BEGIN
    PERFORM taskflow._check_name('flow', create_flow.name);
    create_flow.schedule := taskflow._check_schedule(create_flow.schedule);
    create_flow.timezone := taskflow._check_timezone(create_flow.timezone);
    create_flow.owner := taskflow._check_owner(create_flow.owner);
    PERFORM taskflow._check_flow_settings(create_flow.max_active_runs,
                                          create_flow.start_date, create_flow.end_date);
    BEGIN
        INSERT INTO taskflow.flows AS f (name, owner, schedule, timezone, description, enabled,
                                         catchup, max_active_runs, start_date, end_date)
        VALUES (create_flow.name, create_flow.owner, create_flow.schedule, create_flow.timezone,
                nullif(create_flow.description, ''), coalesce(create_flow.enabled, true),
                coalesce(create_flow.catchup, true), coalesce(create_flow.max_active_runs, 1),
                create_flow.start_date, create_flow.end_date)
        RETURNING f.id INTO new_id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'flow "%" already exists', create_flow.name
            USING ERRCODE = 'duplicate_object',
                  HINT = CASE WHEN EXISTS (SELECT 1 FROM taskflow.flows x WHERE x.name = create_flow.name)
                              THEN 'Use taskflow.alter_flow() to change it, or pick another name.'
                              ELSE 'Flow names are unique in a database; this one is owned by a role you are not a member of.'
                         END;
    END;
    RETURN new_id;
END
$$;

CREATE FUNCTION taskflow.alter_flow(name text,
                                    schedule text DEFAULT NULL,
                                    timezone text DEFAULT NULL,
                                    description text DEFAULT NULL,
                                    catchup boolean DEFAULT NULL,
                                    max_active_runs integer DEFAULT NULL,
                                    enabled boolean DEFAULT NULL,
                                    start_date timestamptz DEFAULT NULL,
                                    end_date timestamptz DEFAULT NULL,
                                    owner regrole DEFAULT NULL,
                                    new_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow_for_update(alter_flow.name);
BEGIN
    IF alter_flow.new_name IS NOT NULL THEN
        f.name := taskflow._check_name('flow', alter_flow.new_name);
    END IF;
    IF alter_flow.schedule IS NOT NULL THEN
        f.schedule := taskflow._check_schedule(alter_flow.schedule);
    END IF;
    IF alter_flow.timezone IS NOT NULL THEN
        f.timezone := taskflow._check_timezone(alter_flow.timezone);
    END IF;
    IF alter_flow.description IS NOT NULL THEN
        f.description := nullif(alter_flow.description, '');
    END IF;
    f.catchup := coalesce(alter_flow.catchup, f.catchup);
    f.max_active_runs := coalesce(alter_flow.max_active_runs, f.max_active_runs);
    f.enabled := coalesce(alter_flow.enabled, f.enabled);
    -- '-infinity' / 'infinity' clear start_date / end_date
    IF alter_flow.start_date IS NOT NULL THEN
        f.start_date := CASE WHEN isfinite(alter_flow.start_date) THEN alter_flow.start_date END;
    END IF;
    IF alter_flow.end_date IS NOT NULL THEN
        f.end_date := CASE WHEN isfinite(alter_flow.end_date) THEN alter_flow.end_date END;
    END IF;
    IF alter_flow.owner IS NOT NULL THEN
        f.owner := taskflow._check_owner(alter_flow.owner);
    END IF;
    PERFORM taskflow._check_flow_settings(f.max_active_runs, f.start_date, f.end_date);
    BEGIN
        UPDATE taskflow.flows x
           SET name = f.name, schedule = f.schedule, timezone = f.timezone,
               description = f.description, catchup = f.catchup,
               max_active_runs = f.max_active_runs, enabled = f.enabled,
               start_date = f.start_date, end_date = f.end_date, owner = f.owner,
               updated_at = now()
         WHERE x.id = f.id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'flow "%" already exists', f.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Pick another new_name.';
    END;
END
$$;

CREATE FUNCTION taskflow.drop_flow(name text, force boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow_for_update(drop_flow.name);
    active bigint;
BEGIN
    SELECT count(*) INTO active FROM taskflow.runs r
     WHERE r.flow_id = f.id AND r.state IN ('scheduled', 'running');
    IF active > 0 AND NOT coalesce(drop_flow.force, false) THEN
        RAISE EXCEPTION 'flow "%" has % active run(s)', f.name, active
            USING ERRCODE = 'object_in_use',
                  HINT = 'Wait for them or cancel them with taskflow.cancel_run(), '
                         'or drop the flow anyway with drop_flow(name, force => true).';
    END IF;
    -- force: stop the node workers of active runs before the rows go away
    PERFORM taskflow.cancel_run(r.id)
       FROM taskflow.runs r
      WHERE r.flow_id = f.id AND r.state IN ('scheduled', 'running');
    DELETE FROM taskflow.flows x WHERE x.id = f.id;
END
$$;

CREATE FUNCTION taskflow.enable_flow(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow_for_update(enable_flow.name);
BEGIN
    UPDATE taskflow.flows x SET enabled = true WHERE x.id = f.id;
END
$$;

CREATE FUNCTION taskflow.disable_flow(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow_for_update(disable_flow.name);
BEGIN
    UPDATE taskflow.flows x SET enabled = false WHERE x.id = f.id;
END
$$;

------------------------------------------------------------------------------
-- nodes
------------------------------------------------------------------------------

CREATE FUNCTION taskflow.add_node(flow text,
                                  name text,
                                  kind text,
                                  body text DEFAULT NULL,
                                  options jsonb DEFAULT '{}',
                                  retries integer DEFAULT 0,
                                  retry_delay interval DEFAULT '1 min',
                                  timeout interval DEFAULT NULL,
                                  after text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f      taskflow.flows := taskflow._flow_for_update(add_node.flow);
    new_id bigint;
    up     text;
BEGIN
    PERFORM taskflow._check_name('node', add_node.name);
    add_node.kind := lower(btrim(add_node.kind));
    add_node.body := nullif(add_node.body, '');
    add_node.options := coalesce(add_node.options, '{}');
    PERFORM taskflow._check_node_settings(add_node.name, add_node.retries,
                                          add_node.retry_delay, add_node.timeout);
    IF EXISTS (SELECT 1 FROM taskflow.nodes n WHERE n.flow_id = f.id AND n.name = add_node.name) THEN
        RAISE EXCEPTION 'node "%" already exists in flow "%"', add_node.name, f.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use taskflow.alter_node() to change it, or pick another name.';
    END IF;
    PERFORM taskflow._validate_node(f, add_node.name, add_node.kind, add_node.body, add_node.options);
    FOR up IN SELECT u FROM unnest(add_node.after) u LOOP
        PERFORM taskflow._node(f, up);      -- upstream nodes must exist
    END LOOP;

    INSERT INTO taskflow.nodes AS n (flow_id, name, kind, body, options, retries, retry_delay, timeout)
    VALUES (f.id, add_node.name, add_node.kind, add_node.body, add_node.options,
            coalesce(add_node.retries, 0), coalesce(add_node.retry_delay, interval '1 min'),
            nullif(add_node.timeout, interval '0'))
    RETURNING n.id INTO new_id;

    FOR up IN SELECT DISTINCT u FROM unnest(add_node.after) u ORDER BY u LOOP
        PERFORM taskflow._add_edge(f, up, add_node.name);
    END LOOP;
    RETURN new_id;
END
$$;

CREATE FUNCTION taskflow.alter_node(flow text,
                                    name text,
                                    body text DEFAULT NULL,
                                    options jsonb DEFAULT NULL,
                                    retries integer DEFAULT NULL,
                                    retry_delay interval DEFAULT NULL,
                                    timeout interval DEFAULT NULL,
                                    new_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow_for_update(alter_node.flow);
    n taskflow.nodes := taskflow._node(f, alter_node.name);
BEGIN
    IF alter_node.new_name IS NOT NULL AND alter_node.new_name <> n.name THEN
        n.name := taskflow._check_name('node', alter_node.new_name);
        IF EXISTS (SELECT 1 FROM taskflow.nodes x WHERE x.flow_id = f.id AND x.name = n.name) THEN
            RAISE EXCEPTION 'node "%" already exists in flow "%"', n.name, f.name
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Pick another new_name.';
        END IF;
    END IF;
    -- body => '' clears the body; options replace the old ones as a whole
    IF alter_node.body IS NOT NULL THEN
        n.body := nullif(alter_node.body, '');
    END IF;
    n.options := coalesce(alter_node.options, n.options);
    PERFORM taskflow._check_node_settings(n.name, alter_node.retries,
                                          alter_node.retry_delay, alter_node.timeout);
    n.retries := coalesce(alter_node.retries, n.retries);
    n.retry_delay := coalesce(alter_node.retry_delay, n.retry_delay);
    IF alter_node.timeout IS NOT NULL THEN
        n.timeout := nullif(alter_node.timeout, interval '0');
    END IF;
    PERFORM taskflow._validate_node(f, n.name, n.kind, n.body, n.options);

    UPDATE taskflow.nodes x
       SET name = n.name, body = n.body, options = n.options, retries = n.retries,
           retry_delay = n.retry_delay, timeout = n.timeout, updated_at = now()
     WHERE x.id = n.id;
END
$$;

CREATE FUNCTION taskflow.drop_node(flow text, name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow_for_update(drop_node.flow);
    n taskflow.nodes := taskflow._node(f, drop_node.name);
BEGIN
    IF EXISTS (SELECT 1 FROM taskflow.node_runs nr
                WHERE nr.node_id = n.id AND nr.state IN ('pending', 'running', 'retrying')) THEN
        RAISE EXCEPTION 'node "%" of flow "%" is part of an active run', n.name, f.name
            USING ERRCODE = 'object_in_use',
                  HINT = 'Wait for the run to finish or cancel it with taskflow.cancel_run().';
    END IF;
    -- its edges go with it (ON DELETE CASCADE)
    DELETE FROM taskflow.nodes x WHERE x.id = n.id;
END
$$;

------------------------------------------------------------------------------
-- edges
------------------------------------------------------------------------------

CREATE FUNCTION taskflow.add_edge(flow text, from_node text, to_node text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM taskflow._add_edge(taskflow._flow_for_update(add_edge.flow),
                               add_edge.from_node, add_edge.to_node);
END
$$;

CREATE FUNCTION taskflow.drop_edge(flow text, from_node text, to_node text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow_for_update(drop_edge.flow);
    a taskflow.nodes := taskflow._node(f, drop_edge.from_node);
    b taskflow.nodes := taskflow._node(f, drop_edge.to_node);
BEGIN
    DELETE FROM taskflow.edges e WHERE e.flow_id = f.id AND e.from_node = a.id AND e.to_node = b.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'edge % -> % does not exist in flow "%"', a.name, b.name, f.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

------------------------------------------------------------------------------
-- variables
------------------------------------------------------------------------------

CREATE FUNCTION taskflow.set_variable(flow text, name text, definition text,
                                      constant boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f   taskflow.flows := taskflow._flow_for_update(set_variable.flow);
    m   text[];
    pat text;
    bas text;
    shf interval;
BEGIN
    PERFORM taskflow._check_name('variable', set_variable.name);
    IF set_variable.name = ANY (taskflow._system_variables()) THEN
        RAISE EXCEPTION 'variable name "%" is reserved', set_variable.name
            USING ERRCODE = 'reserved_name',
                  DETAIL = 'System variables: ' || array_to_string(taskflow._system_variables(), ', ') || '.',
                  HINT = 'Pick another name; run parameters cannot replace system variables either.';
    END IF;
    IF set_variable.definition IS NULL THEN
        RAISE EXCEPTION 'definition of variable "%" must not be null', set_variable.name
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    IF NOT coalesce(set_variable.constant, false) THEN
        m := regexp_match(set_variable.definition,
                          '^\s*(.*\S)\s+of\s+(bizdate|cyctime)(?:\s*([-+])\s*(\S.*?))?\s*$', 'i');
        IF m IS NULL THEN
            RAISE EXCEPTION 'invalid time variable definition "%"', set_variable.definition
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = CASE WHEN set_variable.definition ~* '^\s*of\s+(bizdate|cyctime)'
                                    THEN 'The to_char pattern is empty.'
                                    ELSE 'Expected a to_char pattern, "of", bizdate or cyctime, and an optional signed interval.' END,
                      HINT = 'Write ''<to_char pattern> of bizdate|cyctime [+|- <interval>]'', e.g. '
                             '''yyyymmdd of bizdate - 7 days''; for a fixed value pass constant => true.';
        END IF;
        pat := m[1];
        bas := lower(m[2]);
        IF m[3] IS NOT NULL THEN
            BEGIN
                shf := (m[3] || ' ' || btrim(m[4]))::interval;
            EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
                RAISE EXCEPTION 'invalid interval "%" in definition of variable "%"', btrim(m[4]), set_variable.name
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Use a PostgreSQL interval such as ''7 days'', ''6 months'' or ''1 hour''.';
            END;
        END IF;
    END IF;

    INSERT INTO taskflow.variables AS v (flow_id, name, definition, is_constant, pattern, base, shift)
    VALUES (f.id, set_variable.name, set_variable.definition, coalesce(set_variable.constant, false),
            pat, bas, shf)
    ON CONFLICT ON CONSTRAINT variables_pkey DO UPDATE
       SET definition = excluded.definition, is_constant = excluded.is_constant,
           pattern = excluded.pattern, base = excluded.base, shift = excluded.shift;
END
$$;

CREATE FUNCTION taskflow.drop_variable(flow text, name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f     taskflow.flows := taskflow._flow_for_update(drop_variable.flow);
    users text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM taskflow.variables v
                    WHERE v.flow_id = f.id AND v.name = drop_variable.name) THEN
        RAISE EXCEPTION 'variable "%" does not exist in flow "%"', drop_variable.name, f.name
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT string_agg(DISTINCT format('"%s"', n.name), ', ') INTO users
      FROM taskflow.nodes n,
           LATERAL taskflow._node_templates(n.name, n.body, n.options) t,
           LATERAL taskflow._template_vars(t.template) ref
     WHERE n.flow_id = f.id AND ref = drop_variable.name;
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'variable "%" is used by node % of flow "%"', drop_variable.name, users, f.name
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Change or drop those nodes first (taskflow.alter_node / taskflow.drop_node).';
    END IF;
    DELETE FROM taskflow.variables v WHERE v.flow_id = f.id AND v.name = drop_variable.name;
END
$$;

------------------------------------------------------------------------------
-- variable values (used by the engine and by render)
------------------------------------------------------------------------------

-- The natural scheduled time (cyctime) of a business date: the first fire
-- time of the schedule on day bizdate + 1 in the flow's time zone, or
-- bizdate + 1 00:00 there for a manual-only flow (or a day the schedule does
-- not fire on).
CREATE FUNCTION taskflow._cyctime_for(flow_id bigint, bizdate date) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f     taskflow.flows;
    day0  timestamptz;
    first timestamptz;
BEGIN
    SELECT * INTO f FROM taskflow.flows x WHERE x.id = _cyctime_for.flow_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flow with id % does not exist', flow_id
            USING ERRCODE = 'undefined_object';
    END IF;
    day0 := (bizdate + 1)::timestamp AT TIME ZONE f.timezone;
    IF f.schedule IS NULL THEN
        RETURN day0;
    END IF;
    SELECT t INTO first
      FROM taskflow.next_runs(f.schedule, day0 - interval '1 microsecond', 1, f.timezone) t;
    IF first IS NULL OR (first AT TIME ZONE f.timezone)::date <> bizdate + 1 THEN
        RETURN day0;
    END IF;
    RETURN first;
END
$$;

-- Every variable's value for one node attempt (see the shared contract): text,
-- except run parameters, which keep their JSON type (null, numbers, ...);
-- system variables, flow time variables, flow constants overridden by
-- params, and params that add names.
CREATE FUNCTION taskflow._variables(flow_id bigint, bizdate date, cyctime timestamptz,
                                    run_id bigint, node text, params jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f      taskflow.flows;
    ct     timestamptz;
    vars   jsonb;
    v      taskflow.variables;
    k      text;
    p      jsonb;
BEGIN
    SELECT * INTO f FROM taskflow.flows x WHERE x.id = _variables.flow_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flow with id % does not exist', flow_id
            USING ERRCODE = 'undefined_object';
    END IF;
    IF bizdate IS NULL THEN
        RAISE EXCEPTION 'bizdate must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    p := coalesce(params, '{}');
    IF jsonb_typeof(p) <> 'object' THEN
        RAISE EXCEPTION 'run parameters must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', p);
    END IF;
    ct := coalesce(cyctime, taskflow._cyctime_for(f.id, bizdate));
    vars := jsonb_build_object('bizdate', to_char(bizdate, 'YYYY-MM-DD'),
                               'cyctime', to_char(ct AT TIME ZONE f.timezone, 'YYYY-MM-DD HH24:MI:SS'),
                               'run_id', coalesce(run_id, 0)::text,
                               'flow', f.name,
                               'node', coalesce(node, ''));
    FOR v IN SELECT * FROM taskflow.variables x WHERE x.flow_id = f.id ORDER BY x.name LOOP
        IF v.is_constant THEN
            -- a parameter keeps its JSON type (see _render_text for null, numbers)
            vars := vars || jsonb_build_object(v.name, coalesce(p->v.name, to_jsonb(v.definition)));
        ELSE
            vars := vars || jsonb_build_object(v.name,
                to_char(CASE v.base WHEN 'bizdate' THEN bizdate::timestamp
                                    ELSE ct AT TIME ZONE f.timezone END
                        + coalesce(v.shift, interval '0'), v.pattern));
        END IF;
    END LOOP;
    FOR k IN SELECT jsonb_object_keys(p) ORDER BY 1 LOOP
        IF k = ANY (taskflow._system_variables()) THEN
            RAISE EXCEPTION 'run parameter "%" cannot replace a system variable', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass the business date as the bizdate argument of run_flow() or render().';
        END IF;
        IF EXISTS (SELECT 1 FROM taskflow.variables x
                    WHERE x.flow_id = f.id AND x.name = k AND NOT x.is_constant) THEN
            RAISE EXCEPTION 'run parameter "%" cannot replace time variable "%" of flow "%"', k, k, f.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Parameters replace constants (set_variable(..., constant => true)) or add names.';
        END IF;
        IF NOT vars ? k THEN
            vars := vars || jsonb_build_object(k, p->k);
        END IF;
    END LOOP;
    RETURN vars;
END
$$;

------------------------------------------------------------------------------
-- render (dry run)
------------------------------------------------------------------------------

-- The options of each kind in the order render() shows them.
CREATE FUNCTION taskflow._option_order(kind text) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE kind
        WHEN 'archive' THEN ARRAY['server', 'path', 'query', 'table', 'where', 'format',
                                  'max_file_size', 'source']
        WHEN 'notify' THEN ARRAY['channel', 'payload']
        WHEN 'wait' THEN ARRAY['delay', 'poll_interval']
        ELSE ARRAY['database'] END
$$;

CREATE FUNCTION taskflow.render(flow text, node text,
                                bizdate date DEFAULT current_date - 1,
                                params jsonb DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f    taskflow.flows := taskflow._flow(render.flow);
    n    taskflow.nodes := taskflow._node(f, render.node);
    vars jsonb;
    lines text[] := '{}';
    k    text;
    v    jsonb;
BEGIN
    vars := taskflow._variables(f.id, coalesce(render.bizdate, current_date - 1),
                                NULL, 0, n.name, render.params);
    IF n.kind IN ('sql', 'wait') AND n.body IS NOT NULL THEN
        RETURN taskflow._render_text(n.body, vars, format('node "%s" body', n.name));
    END IF;
    FOREACH k IN ARRAY taskflow._option_order(n.kind) LOOP
        v := n.options->k;
        CONTINUE WHEN v IS NULL;
        lines := lines || (k || ': ' ||
            CASE WHEN jsonb_typeof(v) = 'string'
                 THEN taskflow._render_text(v #>> '{}', vars,
                                            format('node "%s" option "%s"', n.name, k))
                 ELSE v::text END);
    END LOOP;
    RETURN array_to_string(lines, E'\n');
END
$$;

------------------------------------------------------------------------------
-- flow_graph
------------------------------------------------------------------------------

CREATE FUNCTION taskflow.flow_graph(flow text, format text DEFAULT 'dot') RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f     taskflow.flows := taskflow._flow(flow_graph.flow);
    fmt   text := lower(flow_graph.format);
    lines text[];
BEGIN
    IF fmt = 'dot' THEN
        lines := ARRAY[format('digraph "%s" {', f.name), '  rankdir=LR;', '  node [shape=box];'];
        lines := lines || ARRAY(
            SELECT format('  "%s" [label="%s\n(%s)"];', n.name, n.name, n.kind)
              FROM taskflow.nodes n WHERE n.flow_id = f.id ORDER BY n.name);
        lines := lines || ARRAY(
            SELECT format('  "%s" -> "%s";', a.name, b.name)
              FROM taskflow.edges e
              JOIN taskflow.nodes a ON a.id = e.from_node
              JOIN taskflow.nodes b ON b.id = e.to_node
             WHERE e.flow_id = f.id ORDER BY a.name, b.name);
        lines := lines || '}'::text;
    ELSIF fmt = 'mermaid' THEN
        -- node ids n1, n2, ... in name order: names may be mermaid keywords
        WITH ids AS (
            SELECT n.id, n.name, n.kind, 'n' || row_number() OVER (ORDER BY n.name) AS mid
              FROM taskflow.nodes n WHERE n.flow_id = f.id)
        SELECT ARRAY['flowchart LR']
               || ARRAY(SELECT format('    %s["%s<br/>(%s)"]', i.mid, i.name, i.kind)
                          FROM ids i ORDER BY i.name)
               || ARRAY(SELECT format('    %s --> %s', a.mid, b.mid)
                          FROM taskflow.edges e
                          JOIN ids a ON a.id = e.from_node
                          JOIN ids b ON b.id = e.to_node
                         ORDER BY a.name, b.name)
          INTO lines;
    ELSE
        RAISE EXCEPTION 'unknown graph format "%"', flow_graph.format
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Formats: dot, mermaid.';
    END IF;
    RETURN array_to_string(lines, E'\n');
END
$$;

------------------------------------------------------------------------------
-- templates
------------------------------------------------------------------------------

CREATE FUNCTION taskflow.templates()
RETURNS TABLE (name text, description text, parameters jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    VALUES
    ('archive_table_daily',
     'Every day, archive the previous day''s rows of a table (date_column = bizdate) to object '
     'storage under <path_prefix>/y=YYYY/m=MM/d=DD/, then remove them from the table (source).',
     jsonb_build_object(
        'table', jsonb_build_object('required', true, 'description', 'table to archive (may be schema-qualified)'),
        'date_column', jsonb_build_object('required', true, 'description', 'date column that selects one day'),
        'server', jsonb_build_object('required', true, 'description', 'taskflow_storage server to write to'),
        'path_prefix', jsonb_build_object('required', false, 'default', null, 'description', 'key prefix; default: the table name'),
        'format', jsonb_build_object('required', false, 'default', 'csv.gz', 'description', 'csv or csv.gz'),
        'source', jsonb_build_object('required', false, 'default', 'delete', 'description', 'keep or delete the archived rows'),
        'schedule', jsonb_build_object('required', false, 'default', '0 5 * * *', 'description', 'when to run; '''' for manual only'),
        'timezone', jsonb_build_object('required', false, 'default', null, 'description', 'time zone of the schedule; default: the current TimeZone'),
        'enabled', jsonb_build_object('required', false, 'default', true, 'description', 'create the flow enabled'))),
    ('purge_older_than',
     'Every day, delete the rows of a table older than bizdate - keep, then ANALYZE it.',
     jsonb_build_object(
        'table', jsonb_build_object('required', true, 'description', 'table to purge (may be schema-qualified)'),
        'date_column', jsonb_build_object('required', true, 'description', 'date or timestamp column'),
        'keep', jsonb_build_object('required', true, 'description', 'interval of rows to keep, e.g. 90 days'),
        'schedule', jsonb_build_object('required', false, 'default', '0 3 * * *', 'description', 'when to run; '''' for manual only'),
        'timezone', jsonb_build_object('required', false, 'default', null, 'description', 'time zone of the schedule; default: the current TimeZone'),
        'enabled', jsonb_build_object('required', false, 'default', true, 'description', 'create the flow enabled'))),
    ('sql_daily',
     'Run one SQL script every day (a single sql node named "sql").',
     jsonb_build_object(
        'sql', jsonb_build_object('required', true, 'description', 'the SQL script (may use ${bizdate} and the other system variables)'),
        'schedule', jsonb_build_object('required', false, 'default', '0 5 * * *', 'description', 'when to run; '''' for manual only'),
        'timezone', jsonb_build_object('required', false, 'default', null, 'description', 'time zone of the schedule; default: the current TimeZone'),
        'enabled', jsonb_build_object('required', false, 'default', true, 'description', 'create the flow enabled')))
$$;

-- A table and one of its columns, for templates: returns the qualified,
-- quoted table name and the relation name.
CREATE FUNCTION taskflow._template_table(template text, tab text, col text,
                                         OUT qualified text, OUT relname text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    rel regclass;
BEGIN
    BEGIN
        rel := pg_catalog.to_regclass(tab);
    EXCEPTION WHEN invalid_name OR syntax_error THEN
        rel := NULL;
    END;
    IF rel IS NULL THEN
        RAISE EXCEPTION 'relation "%" does not exist', tab
            USING ERRCODE = 'undefined_table',
                  HINT = pg_catalog.format('Parameter "table" of template "%s" names an existing table '
                                '(schema-qualified if it is not on your search_path).', template);
    END IF;
    IF col IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                        WHERE a.attrelid = rel AND a.attname = col
                                          AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, tab
            USING ERRCODE = 'undefined_column',
                  HINT = 'Parameter "date_column" is a column name as stored (case-sensitive, unquoted).';
    END IF;
    SELECT pg_catalog.format('%I.%I', ns.nspname, c.relname), c.relname INTO qualified, relname
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
     WHERE c.oid = rel;
END
$$;

CREATE FUNCTION taskflow.create_flow_from_template(template text, name text, params jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    spec    jsonb;
    p       jsonb := coalesce(params, '{}');
    k       text;
    t       record;
    enabled boolean;
    new_id  bigint;
    keep    interval;
BEGIN
    SELECT x.parameters INTO spec FROM taskflow.templates() x WHERE x.name = template;
    IF spec IS NULL THEN
        RAISE EXCEPTION 'template "%" does not exist', template
            USING ERRCODE = 'undefined_object',
                  HINT = 'Templates: ' || (SELECT pg_catalog.string_agg(x.name, ', ' ORDER BY x.name)
                                             FROM taskflow.templates() x) || '.';
    END IF;
    IF pg_catalog.jsonb_typeof(p) <> 'object' THEN
        RAISE EXCEPTION 'parameters of template "%" must be a JSON object', template
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(p) ORDER BY 1 LOOP
        IF NOT spec ? k THEN
            RAISE EXCEPTION 'unknown parameter "%" for template "%"', k, template
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Parameters: ' || (SELECT pg_catalog.string_agg(s, ', ' ORDER BY s)
                                                  FROM pg_catalog.jsonb_object_keys(spec) s) || '.';
        END IF;
        IF pg_catalog.jsonb_typeof(p->k) NOT IN ('string', 'number', 'boolean') THEN
            RAISE EXCEPTION 'parameter "%" of template "%" must be a string', k, template
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = pg_catalog.format('Got %s.', p->k);
        END IF;
    END LOOP;
    FOR k IN SELECT s FROM pg_catalog.jsonb_object_keys(spec) s ORDER BY 1 LOOP
        IF (spec->k->>'required')::boolean AND coalesce(p->>k, '') = '' THEN
            RAISE EXCEPTION 'template "%" needs parameter "%"', template, k
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = pg_catalog.format('"%s": %s.', k, spec->k->>'description');
        END IF;
        IF NOT p ? k AND spec->k->'default' <> 'null' THEN
            p := p || pg_catalog.jsonb_build_object(k, spec->k->'default');
        END IF;
    END LOOP;
    BEGIN
        enabled := (p->>'enabled')::boolean;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'parameter "enabled" of template "%" must be true or false', template
            USING ERRCODE = 'invalid_parameter_value';
    END;

    new_id := taskflow.create_flow(create_flow_from_template.name,
                                   schedule => coalesce(p->>'schedule', ''),
                                   timezone => coalesce(p->>'timezone', pg_catalog.current_setting('TimeZone')),
                                   description => pg_catalog.format('created from template %s', template),
                                   enabled => enabled);
    CASE template
    WHEN 'archive_table_daily' THEN
        SELECT * INTO t FROM taskflow._template_table(template, p->>'table', p->>'date_column');
        PERFORM taskflow.set_variable(create_flow_from_template.name, 'year', 'yyyy of bizdate');
        PERFORM taskflow.set_variable(create_flow_from_template.name, 'month', 'mm of bizdate');
        PERFORM taskflow.set_variable(create_flow_from_template.name, 'day', 'dd of bizdate');
        PERFORM taskflow.add_node(create_flow_from_template.name, 'archive', 'archive',
            options => pg_catalog.jsonb_build_object(
                'server', p->>'server',
                'path', pg_catalog.rtrim(coalesce(nullif(p->>'path_prefix', ''), t.relname), '/')
                        || '/y=${year}/m=${month}/d=${day}/',
                'table', t.qualified,
                'where', pg_catalog.format('%I = ${bizdate:literal}', p->>'date_column'),
                'format', p->>'format',
                'source', p->>'source'));
    WHEN 'purge_older_than' THEN
        SELECT * INTO t FROM taskflow._template_table(template, p->>'table', p->>'date_column');
        BEGIN
            keep := (p->>'keep')::interval;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            keep := NULL;
        END;
        IF keep IS NULL OR keep <= interval '0' THEN
            RAISE EXCEPTION 'invalid keep interval "%" for template "%"', p->>'keep', template
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use a positive PostgreSQL interval such as ''90 days'' or ''1 year''.';
        END IF;
        PERFORM taskflow.add_node(create_flow_from_template.name, 'purge', 'sql',
            body => pg_catalog.format('DELETE FROM %s WHERE %I < ${bizdate:literal}::date - interval %L',
                           t.qualified, p->>'date_column', p->>'keep'));
        PERFORM taskflow.add_node(create_flow_from_template.name, 'analyze', 'sql',
            body => pg_catalog.format('ANALYZE %s', t.qualified), after => ARRAY['purge']);
    WHEN 'sql_daily' THEN
        PERFORM taskflow.add_node(create_flow_from_template.name, 'sql', 'sql', body => p->>'sql');
    END CASE;
    RETURN new_id;
END
$$;
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
--   * views: flow_status, run_history, node_run_history (security_invoker,
--     so the row level security of part 00 applies)
--
-- Internal functions pin search_path so that a caller's (or a node script's)
-- search_path can never redirect them.

------------------------------------------------------------------------------
-- wake plumbing
------------------------------------------------------------------------------

-- Wake this database's scheduler when the current transaction commits.
CREATE FUNCTION taskflow._wake() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_sql_wake';

-- Ask the launcher to (re)check this database (at commit).
CREATE FUNCTION taskflow._wake_launcher() RETURNS void
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_sql_wake_launcher';

CREATE FUNCTION taskflow._wake_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM taskflow._wake();
    RETURN NULL;
END
$$;

CREATE TRIGGER flows_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskflow.flows
    FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake_trigger();
CREATE TRIGGER nodes_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskflow.nodes
    FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake_trigger();
CREATE TRIGGER edges_wake AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskflow.edges
    FOR EACH STATEMENT EXECUTE FUNCTION taskflow._wake_trigger();

-- The C gate for privileged run operations (see gate.c).
CREATE FUNCTION taskflow._gate(op text, args jsonb) RETURNS jsonb
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_sql_gate';

------------------------------------------------------------------------------
-- helpers
------------------------------------------------------------------------------

-- "now" as the scheduler sees it: taskflow.test_clock when set (tests only).
CREATE FUNCTION taskflow._now() RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(nullif(current_setting('taskflow.test_clock', true), '')::timestamptz, now())
$$;

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
CREATE FUNCTION taskflow._flows_watermark() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.schedule IS NULL AND NEW.schedule IS NOT NULL THEN
        NEW.scheduled_until := greatest(OLD.scheduled_until, taskflow._now());
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER flows_watermark BEFORE UPDATE ON taskflow.flows
    FOR EACH ROW EXECUTE FUNCTION taskflow._flows_watermark();

-- taskflow.history_retention as an interval: '30 days', '7' (days); NULL = keep forever.
CREATE FUNCTION taskflow._retention_interval(setting text) RETURNS interval
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

-- Raise "does not exist" unless the caller may use flows of this owner.
CREATE FUNCTION taskflow._op_check(caller regrole, owner regrole, what text) RETURNS void
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
CREATE FUNCTION taskflow._op_flow(caller regrole, flow text) RETURNS taskflow.flows
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
CREATE FUNCTION taskflow._op_run(caller regrole, run_id bigint) RETURNS taskflow.runs
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
CREATE FUNCTION taskflow._create_run(p_flow_id bigint, p_scheduled_for timestamptz,
                                     p_bizdate date, p_trigger text, p_params jsonb,
                                     p_created_by regrole, p_rerun_of bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rid bigint;
BEGIN
    INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, params,
                               created_by, rerun_of)
    VALUES (p_flow_id, p_scheduled_for, p_bizdate, p_trigger, coalesce(p_params, '{}'),
            p_created_by, p_rerun_of)
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
-- Looks back over growing windows so dense schedules stay cheap.
CREATE FUNCTION taskflow._latest_fire(schedule text, tz text, after timestamptz,
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
BEGIN
    IF upto IS NULL OR upto <= after THEN
        RETURN NULL;
    END IF;
    FOREACH w IN ARRAY ARRAY['1 hour', '2 days', '40 days', '400 days', '20 years']::interval[] LOOP
        s := greatest(after, upto - w);
        LOOP
            SELECT max(x) FILTER (WHERE x <= upto), count(*), max(x) INTO t, c, m
              FROM taskflow.next_runs(schedule, s, 1000, tz) x;
            IF t IS NOT NULL THEN
                best := t;
            END IF;
            EXIT WHEN c < 1000 OR m > upto;
            s := m;
        END LOOP;
        IF best IS NOT NULL OR upto - w <= after THEN
            RETURN best;
        END IF;
    END LOOP;
    RETURN best;
END
$$;

-- Create the due runs of one flow (catch-up or latest only) and advance its
-- watermark, all in the caller's transaction.  Returns the next due time.
CREATE FUNCTION taskflow._sched_flow(f taskflow.flows, p_now timestamptz, p_max integer)
RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base  timestamptz;
    t     timestamptz;
    last  timestamptz;
    nxt   timestamptz;
    upto  timestamptz := CASE WHEN f.end_date IS NULL THEN p_now ELSE least(p_now, f.end_date) END;
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
        FOR t IN SELECT x FROM taskflow.next_runs(f.schedule, base, p_max, f.timezone) x LOOP
            EXIT WHEN t > upto;
            PERFORM taskflow._create_run(f.id, t, (t AT TIME ZONE f.timezone)::date - 1,
                                         'schedule', '{}', f.owner);
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
        UPDATE taskflow.flows SET scheduled_until = last WHERE id = f.id;
        base := last;
    END IF;
    SELECT x INTO nxt FROM taskflow.next_runs(f.schedule, base, 1, f.timezone) x;
    IF f.end_date IS NOT NULL AND nxt > f.end_date THEN
        nxt := NULL;
    END IF;
    RETURN nxt;
END
$$;

-- Node runs left 'running' by a worker that is gone (not in p_live, the
-- node runs with a live worker slot) become failed or retrying.
CREATE FUNCTION taskflow._sched_recover(p_live bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE taskflow.node_runs nr
       SET state = CASE WHEN nr.attempt <= nd.retries THEN 'retrying' ELSE 'failed' END,
           not_before = CASE WHEN nr.attempt <= nd.retries
                             THEN clock_timestamp() + nd.retry_delay END,
           finished_at = clock_timestamp(),
           message = format('node worker%s exited without recording a result (server crash, restart or termination)',
                            coalesce(' (pid ' || nr.worker_pid || ')', '')),
           sqlstate = '57P01'
      FROM taskflow.nodes nd
     WHERE nd.id = nr.node_id
       AND nr.state = 'running'
       AND nr.id <> ALL (coalesce(p_live, '{}'));
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        RAISE LOG 'taskflow: % node run(s) left running by a dead worker were marked failed/retrying', n;
    END IF;
    RETURN n;
END
$$;

-- Propagate upstream failures, finish runs with nothing left to do, promote
-- scheduled runs within max_active_runs (oldest period first).
CREATE FUNCTION taskflow._sched_advance() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    LOOP
        UPDATE taskflow.node_runs nr
           SET state = 'upstream_failed', finished_at = clock_timestamp(),
               message = 'an upstream node did not succeed'
         WHERE nr.state = 'pending'
           AND EXISTS (SELECT 1
                         FROM taskflow.edges e
                         JOIN taskflow.node_runs up
                           ON up.run_id = nr.run_id AND up.node_id = e.from_node
                        WHERE e.to_node = nr.node_id
                          AND up.state IN ('failed', 'upstream_failed', 'canceled'));
        EXIT WHEN NOT FOUND;
    END LOOP;

    FOR i IN 1..2 LOOP
        UPDATE taskflow.runs r
           SET state = CASE
                   WHEN EXISTS (SELECT 1 FROM taskflow.node_runs x WHERE x.run_id = r.id
                                   AND x.state IN ('failed', 'upstream_failed')) THEN 'failed'
                   WHEN EXISTS (SELECT 1 FROM taskflow.node_runs x WHERE x.run_id = r.id
                                   AND x.state = 'canceled') THEN 'canceled'
                   ELSE 'succeeded' END,
               started_at = coalesce(r.started_at, clock_timestamp()),
               finished_at = clock_timestamp()
         WHERE r.state = 'running'
           AND NOT EXISTS (SELECT 1 FROM taskflow.node_runs x WHERE x.run_id = r.id
                              AND x.state IN ('pending', 'running', 'retrying'));
        EXIT WHEN i = 2;

        UPDATE taskflow.runs r
           SET state = 'running', started_at = clock_timestamp()
          FROM (SELECT s.id,
                       row_number() OVER (PARTITION BY s.flow_id ORDER BY s.scheduled_for, s.id) AS rn,
                       f.max_active_runs,
                       (SELECT count(*) FROM taskflow.runs a
                         WHERE a.flow_id = s.flow_id AND a.state = 'running') AS active
                  FROM taskflow.runs s JOIN taskflow.flows f ON f.id = s.flow_id
                 WHERE s.state = 'scheduled') p
         WHERE r.id = p.id AND p.rn + p.active <= p.max_active_runs;
    END LOOP;
END
$$;

-- One scheduler pass (everything but starting workers), in one transaction.
CREATE FUNCTION taskflow._sched_tick(p_now timestamptz, p_live bigint[], p_max_new integer,
                                     OUT next_due timestamptz, OUT next_retry timestamptz)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    d timestamptz;
BEGIN
    PERFORM taskflow._sched_recover(p_live);
    FOR f IN SELECT * FROM taskflow.flows
              WHERE enabled AND schedule IS NOT NULL ORDER BY id LOOP
        BEGIN
            d := taskflow._sched_flow(f, p_now, p_max_new);
            next_due := least(next_due, d);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'taskflow: cannot schedule flow "%": %', f.name, SQLERRM;
        END;
    END LOOP;
    PERFORM taskflow._sched_advance();
    SELECT min(nr.not_before) INTO next_retry
      FROM taskflow.node_runs nr JOIN taskflow.runs r ON r.id = nr.run_id
     WHERE nr.state = 'retrying' AND r.state = 'running';
END
$$;

-- Node runs ready to start: pending (or retrying and due) in a running run,
-- every upstream succeeded (or skipped), not already handed to a worker.
CREATE FUNCTION taskflow._sched_ready(p_exclude bigint[], p_limit integer)
RETURNS TABLE (node_run_id bigint, run_id bigint, owner oid, owner_login boolean,
               flow text, node text, attempt integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT nr.id, nr.run_id, f.owner::oid,
           a.rolcanlogin AND a.rolconnlimit < 0 AND d.datconnlimit < 0
             AND has_database_privilege(f.owner::oid, d.oid, 'CONNECT'),
           f.name, n.name, nr.attempt
      FROM taskflow.node_runs nr
      JOIN taskflow.runs r ON r.id = nr.run_id AND r.state = 'running'
      JOIN taskflow.nodes n ON n.id = nr.node_id
      JOIN taskflow.flows f ON f.id = r.flow_id
      JOIN pg_authid a ON a.oid = f.owner
      JOIN pg_database d ON d.datname = current_database()
     WHERE (nr.state = 'pending'
            OR (nr.state = 'retrying' AND nr.not_before <= clock_timestamp()))
       AND nr.id <> ALL (coalesce(p_exclude, '{}'))
       AND NOT EXISTS (SELECT 1
                         FROM taskflow.edges e
                         JOIN taskflow.node_runs up
                           ON up.run_id = nr.run_id AND up.node_id = e.from_node
                        WHERE e.to_node = nr.node_id
                          AND up.state NOT IN ('succeeded', 'skipped'))
     ORDER BY r.scheduled_for, r.id, nr.id
     LIMIT p_limit
$$;

-- A node run whose worker repeatedly failed to even start (e.g. the owner
-- cannot connect): fail it instead of trying forever.
CREATE FUNCTION taskflow._sched_give_up(p_node_run_id bigint) RETURNS void
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
CREATE FUNCTION taskflow._node_begin(p_node_run_id bigint, p_pid integer)
RETURNS TABLE (flow_id bigint, flow text, node_id bigint, node text, kind text, body text,
               options jsonb, run_id bigint, attempt integer, bizdate date,
               cyctime timestamptz, params jsonb, timeout_ms bigint, poll_ms bigint,
               delay_ms bigint, database text)
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
    UPDATE taskflow.node_runs x
       SET state = 'running', attempt = x.attempt + 1, started_at = clock_timestamp(),
           finished_at = NULL, worker_pid = p_pid, not_before = NULL, message = NULL,
           sqlstate = NULL, rows = NULL, bytes = NULL, log = NULL
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
           CASE WHEN n.kind = 'sql' THEN n.options->>'database' END
      FROM taskflow.runs r
      JOIN taskflow.flows f ON f.id = r.flow_id
      JOIN taskflow.nodes n ON n.id = nr.node_id
     WHERE r.id = nr.run_id;
END
$$;

-- Record success in the node's own transaction.  false when the node run is
-- no longer 'running' (canceled or recovered meanwhile): the worker then
-- rolls the node's work back instead of committing it unrecorded.
CREATE FUNCTION taskflow._node_succeeded(p_node_run_id bigint, p_rows bigint, p_bytes bigint,
                                         p_rendered text, p_log text)
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    WITH u AS (
        UPDATE taskflow.node_runs
           SET state = 'succeeded', finished_at = clock_timestamp(), rows = p_rows,
               bytes = p_bytes, rendered = p_rendered, log = p_log, message = NULL,
               sqlstate = NULL
         WHERE id = p_node_run_id AND state = 'running'
        RETURNING 1)
    SELECT count(*) = 1 FROM u;
$$;

-- A failed attempt: retrying (with not_before) while attempts remain, else failed.
CREATE FUNCTION taskflow._node_failed(p_node_run_id bigint, p_message text, p_sqlstate text,
                                      p_rendered text, p_log text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE taskflow.node_runs nr
       SET state = CASE WHEN nr.attempt <= n.retries THEN 'retrying' ELSE 'failed' END,
           not_before = CASE WHEN nr.attempt <= n.retries
                             THEN clock_timestamp() + n.retry_delay END,
           finished_at = clock_timestamp(), message = p_message, sqlstate = p_sqlstate,
           rendered = coalesce(p_rendered, nr.rendered), log = p_log
      FROM taskflow.nodes n
     WHERE n.id = nr.node_id AND nr.id = p_node_run_id AND nr.state = 'running';
$$;

------------------------------------------------------------------------------
-- run operations (privileged part: _op_*, called through _gate)
------------------------------------------------------------------------------

CREATE FUNCTION taskflow._op_run_flow(caller regrole, args jsonb) RETURNS jsonb
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
    bd := coalesce((args->>'bizdate')::date, (now() AT TIME ZONE f.timezone)::date - 1);
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

CREATE FUNCTION taskflow._op_cancel_run(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r    taskflow.runs := taskflow._op_run(caller, (args->>'run_id')::bigint);
    pids integer[];
    n    integer;
BEGIN
    -- lock the run; a concurrent finish is seen after the lock
    SELECT * INTO r FROM taskflow.runs WHERE id = r.id FOR UPDATE;
    IF r.state NOT IN ('scheduled', 'running') THEN
        RAISE NOTICE 'run % is already %', r.id, r.state;
        RETURN jsonb_build_object('state', r.state, 'canceled', 0);
    END IF;
    UPDATE taskflow.runs
       SET state = 'canceled', finished_at = clock_timestamp(),
           started_at = coalesce(started_at, clock_timestamp()),
           message = format('canceled by %s', caller)
     WHERE id = r.id;
    SELECT array_agg(worker_pid) INTO pids FROM taskflow.node_runs
     WHERE run_id = r.id AND state = 'running' AND worker_pid IS NOT NULL;
    UPDATE taskflow.node_runs
       SET state = 'canceled', finished_at = clock_timestamp(),
           message = format('canceled by %s', caller)
     WHERE run_id = r.id AND state IN ('pending', 'running', 'retrying');
    GET DIAGNOSTICS n = ROW_COUNT;
    -- terminate the node workers of this run (their work rolls back)
    PERFORM pg_terminate_backend(a.pid)
       FROM pg_stat_activity a
      WHERE a.pid = ANY (coalesce(pids, '{}')) AND a.backend_type = 'taskflow node';
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('state', 'canceled', 'canceled', n);
END
$$;

CREATE FUNCTION taskflow._op_rerun(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old  taskflow.runs := taskflow._op_run(caller, (args->>'run_id')::bigint);
    only_f boolean := coalesce((args->>'only_failed')::boolean, true);
    rid  bigint;
BEGIN
    IF old.state IN ('scheduled', 'running') THEN
        RAISE EXCEPTION 'run % is still %', old.id, old.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Wait for it (taskflow.wait_run) or cancel it (taskflow.cancel_run) first.';
    END IF;
    rid := taskflow._create_run(old.flow_id, clock_timestamp(), old.bizdate, 'rerun',
                                old.params, caller, old.id);
    IF only_f THEN
        UPDATE taskflow.node_runs nr
           SET state = 'skipped', started_at = clock_timestamp(), finished_at = clock_timestamp(),
               rows = o.rows, bytes = o.bytes,
               message = format('succeeded in run %s; not rerun', o.run_id)
          FROM taskflow.node_runs o
         WHERE nr.run_id = rid AND o.run_id = old.id AND o.node_id = nr.node_id
           AND o.state IN ('succeeded', 'skipped');
    END IF;
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('run_id', rid);
END
$$;

CREATE FUNCTION taskflow._op_backfill(caller regrole, args jsonb) RETURNS jsonb
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
CREATE FUNCTION taskflow._purge(p_caller regrole, p_older interval) RETURNS bigint
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

CREATE FUNCTION taskflow._op_purge_history(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    i interval := (args->>'older_than')::interval;
BEGIN
    IF i IS NULL OR i < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
    taskflow._sched_advance(),
    taskflow._sched_tick(timestamptz, bigint[], integer),
    taskflow._sched_ready(bigint[], integer),
    taskflow._sched_give_up(bigint),
    taskflow._node_begin(bigint, integer),
    taskflow._node_succeeded(bigint, bigint, bigint, text, text),
    taskflow._node_failed(bigint, text, text, text, text),
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
CREATE FUNCTION taskflow.run_flow(flow text, bizdate date DEFAULT NULL,
                                  params jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT (taskflow._gate('run_flow',
                           jsonb_build_object('flow', $1, 'bizdate', $2, 'params', $3))
            ->> 'run_id')::bigint
$$;

-- Cancel a scheduled or running run: running node workers are terminated
-- (their work rolls back), every unfinished node run becomes canceled.
CREATE FUNCTION taskflow.cancel_run(run_id bigint) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void FROM taskflow._gate('cancel_run', jsonb_build_object('run_id', $1))
$$;

-- A new run of the same flow, bizdate and params (trigger 'rerun').
CREATE FUNCTION taskflow.rerun(run_id bigint, only_failed boolean DEFAULT true) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT (taskflow._gate('rerun', jsonb_build_object('run_id', $1, 'only_failed', $2))
            ->> 'run_id')::bigint
$$;

-- One run per business date in [from_bizdate, to_bizdate] (trigger 'backfill').
CREATE FUNCTION taskflow.backfill(flow text, from_bizdate date, to_bizdate date)
RETURNS SETOF bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT x::bigint
      FROM jsonb_array_elements_text(
             taskflow._gate('backfill', jsonb_build_object('flow', $1, 'from_bizdate', $2,
                                                          'to_bizdate', $3)) -> 'run_ids') x
$$;

-- Delete finished runs older than older_than (flows you are a member of the
-- owner of; all flows for a superuser).  Returns the number of runs deleted.
CREATE FUNCTION taskflow.purge_history(older_than interval) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT (taskflow._gate('purge_history', jsonb_build_object('older_than', $1))
            ->> 'deleted')::bigint
$$;

-- Block until a run has finished (or timeout passes); returns its state.
CREATE FUNCTION taskflow.wait_run(run_id bigint, timeout interval DEFAULT '1 hour')
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st       text;
    mine     boolean;
    deadline timestamptz := clock_timestamp() + timeout;
BEGIN
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

CREATE VIEW taskflow.flow_status WITH (security_invoker = true) AS
SELECT f.id AS flow_id,
       f.name AS flow,
       f.owner,
       f.schedule,
       f.timezone,
       f.enabled,
       lr.id AS last_run_id,
       lr.state AS last_state,
       lr.bizdate AS last_bizdate,
       lr.finished_at AS last_finished_at,
       (SELECT count(*) FROM taskflow.runs r
         WHERE r.flow_id = f.id AND r.state = 'running') AS running_runs,
       (SELECT count(*) FROM taskflow.runs r
         WHERE r.flow_id = f.id AND r.state = 'failed'
           AND r.id > coalesce((SELECT max(s.id) FROM taskflow.runs s
                                 WHERE s.flow_id = f.id AND s.state = 'succeeded'), 0))
         AS consecutive_failures,
       CASE WHEN f.enabled AND f.schedule IS NOT NULL THEN
           (SELECT x FROM taskflow.next_runs(f.schedule,
                                             greatest(f.scheduled_until, f.created_at,
                                                      f.start_date - interval '1 microsecond',
                                                      taskflow._now()),
                                             1, f.timezone) x
             WHERE f.end_date IS NULL OR x <= f.end_date)
       END AS next_run
  FROM taskflow.flows f
  LEFT JOIN LATERAL (SELECT r.* FROM taskflow.runs r WHERE r.flow_id = f.id
                      ORDER BY r.id DESC LIMIT 1) lr ON true;

CREATE VIEW taskflow.run_history WITH (security_invoker = true) AS
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

CREATE VIEW taskflow.node_run_history WITH (security_invoker = true) AS
SELECT nr.id AS node_run_id,
       nr.run_id,
       f.name AS flow,
       n.name AS node,
       n.kind,
       r.bizdate,
       nr.state,
       nr.attempt AS attempts,
       nr.started_at,
       nr.finished_at,
       nr.finished_at - nr.started_at AS duration,
       nr.not_before,
       nr.rows,
       nr.bytes,
       nr.message AS error,
       nr.sqlstate,
       nr.rendered,
       nr.log,
       nr.worker_pid
  FROM taskflow.node_runs nr
  JOIN taskflow.runs r ON r.id = nr.run_id
  JOIN taskflow.flows f ON f.id = r.flow_id
  JOIN taskflow.nodes n ON n.id = nr.node_id;

GRANT SELECT ON taskflow.flow_status, taskflow.run_history, taskflow.node_run_history TO PUBLIC;

-- the launcher learns about this database when CREATE EXTENSION commits
SELECT taskflow._wake_launcher();
-- taskflow extension script, part 30: object storage (storage.c, s3.c).
-- Storage servers are foreign servers of the taskflow_storage wrapper:
--   CREATE SERVER archive FOREIGN DATA WRAPPER taskflow_storage
--       OPTIONS (url 's3://bucket/prefix', endpoint 'http://127.0.0.1:9000');
--   CREATE USER MAPPING FOR alice SERVER archive
--       OPTIONS (access_key_id '...', secret_access_key '...');
-- USAGE on the server is the permission to use it.  See docs/storage.md.

CREATE FUNCTION taskflow._storage_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_storage_validator' LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER taskflow_storage VALIDATOR taskflow._storage_validator;
COMMENT ON FOREIGN DATA WRAPPER taskflow_storage IS
    'taskflow object storage servers (s3:// or file://); see taskflow docs/storage.md';

CREATE FUNCTION taskflow.list_objects(server text, prefix text DEFAULT '')
    RETURNS TABLE (key text, size bigint, last_modified timestamptz, etag text)
    AS 'MODULE_PATHNAME', 'tf_list_objects' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.list_objects(text, text) IS
    'objects under a key prefix of a storage server (needs USAGE on the server)';

CREATE FUNCTION taskflow.put_object(server text, key text, data bytea) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_put_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.put_object(text, text, bytea) IS
    'write one object (streaming writer; multipart on S3 when large)';

CREATE FUNCTION taskflow.get_object(server text, key text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tf_get_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.get_object(text, text) IS
    'read one object (at most 1 GB)';

CREATE FUNCTION taskflow.delete_object(server text, key text) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_delete_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.delete_object(text, text) IS
    'delete one object (a missing object is not an error)';
-- taskflow extension script, part 40: export / import of query results to
-- object storage as CSV or CSV.gz parts (format.c, export.c).  See docs/archive.md.

CREATE FUNCTION taskflow.export(query text, server text, path text,
                                format text DEFAULT 'csv', options jsonb DEFAULT '{}')
    RETURNS TABLE (objects integer, rows bigint, bytes bigint)
    AS 'MODULE_PATHNAME', 'tf_export_sql' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION taskflow.export(text, text, text, text, jsonb) IS
    'write the result of a query as part-NNNNN.csv[.gz] objects + _manifest.json + _SUCCESS under path';

CREATE FUNCTION taskflow.import(server text, path text, target regclass,
                                format text DEFAULT 'csv')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'tf_import_sql' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION taskflow.import(text, text, regclass, text) IS
    'load every part under path (by _manifest.json if present) into target through COPY FROM';
