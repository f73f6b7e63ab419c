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

------------------------------------------------------------------------------
-- small validation helpers
------------------------------------------------------------------------------

-- Is the running statement one of apply_flow's own catalog INSERTs (its C
-- create path, src/define_create.c)?  A flag of that C code, set only around
-- those statements (rows it checked before; it writes their history and wake
-- itself); nothing a user can set.  The definition's per-row triggers (guard,
-- flow logic, cycle check, history, wake) skip those rows WHEN it is true.
CREATE OR REPLACE FUNCTION taskflow._define_internal() RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'tf_define_internal';

-- Names of system variables; they cannot be declared or overridden.
CREATE OR REPLACE FUNCTION taskflow._system_variables() RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS
$$ SELECT ARRAY['bizdate', 'cyctime', 'run_id', 'flow', 'node'] $$;

-- The node kinds of this version (the registry, node_kinds.c).
CREATE OR REPLACE FUNCTION taskflow._node_kinds() RETURNS text[]
LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'tf_node_kinds_sql';

-- Check a node against the registry (node_kinds.c): kind, option names,
-- JSON types and values (bounds read by the parsers the node uses at run
-- time), then the kind's own checks.  Returns the name of the kind's
-- further check in SQL (a taskflow function (f, node, body, options)), or
-- NULL.
CREATE OR REPLACE FUNCTION taskflow._kind_validate(kind text, node text, body text, options jsonb)
RETURNS text
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_kind_validate_sql';

-- What the body of a kind is: 'sql' (a script), 'expression' (a condition)
-- or NULL (no SQL body).
CREATE OR REPLACE FUNCTION taskflow._kind_body(kind text) RETURNS text
LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'tf_kind_body_sql';

-- Re-raise an error caught by a top-level API function (validate.c): the
-- error keeps its SQLSTATE, message, detail and hint; its CONTEXT becomes
-- one line naming the user's objects instead of the frames of taskflow's
-- internal PL/pgSQL functions (and of the SQL function 'wrapper' that
-- called the raising function, if given).  Never returns.
CREATE OR REPLACE FUNCTION taskflow._raise(sqlstate text, message text, detail text,
                                          hint text, context text, wrapper text DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'tf_raise';

-- Parse an sql node's body (expression: a wait node's condition) without
-- running it; every ${...} stands in as a neutral token (validate.c).
-- Raises 42601 on a syntax error, 2D000 on transaction control statements.
CREATE OR REPLACE FUNCTION taskflow._check_sql(body text, what text, expression boolean)
RETURNS void
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_check_sql';

-- A size in bytes as the archive/export code reads it (an integer, or a
-- number with a unit: B, kB, MB, GB, TB); 22023 naming 'what' otherwise.
CREATE OR REPLACE FUNCTION taskflow._size_bytes(value text, what text) RETURNS bigint
LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'tf_size_bytes';

-- A business date argument (run_flow, backfill, render): finite, within
-- 0001-01-01 .. 9999-12-31, so that its time variables and cyctime exist.
CREATE OR REPLACE FUNCTION taskflow._check_bizdate(what text, d date) RETURNS date
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF d IS NOT NULL AND (NOT isfinite(d) OR d < date '0001-01-01' OR d > date '9999-12-31') THEN
        RAISE EXCEPTION 'invalid %: % is out of range', what, d
            USING ERRCODE = 'datetime_field_overflow',
                  DETAIL = 'A business date lies between 0001-01-01 and 9999-12-31.',
                  HINT = format('Pass a finite date as %s, e.g. %s => ''2024-01-31''.', what, what);
    END IF;
    RETURN d;
END
$$;

-- start_date / end_date of a flow: '-infinity' as start_date and 'infinity'
-- as end_date mean "none" (NULL); the opposite infinities would mean "never"
-- and are refused.
CREATE OR REPLACE FUNCTION taskflow._check_flow_date(what text, value timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF value IS NULL OR isfinite(value) THEN
        RETURN value;
    END IF;
    IF (what = 'start_date') = (value = '-infinity'::timestamptz) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'invalid %: % would never let the flow run', what, value
        USING ERRCODE = 'datetime_field_overflow',
              HINT = format('Give a finite %s, or %L for none.', what,
                            CASE what WHEN 'start_date' THEN '-infinity' ELSE 'infinity' END);
END
$$;

-- Check an object name against the rule of its catalog column.
CREATE OR REPLACE FUNCTION taskflow._check_name(what text, name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    re      text;
    rule    text;
    example text;
BEGIN
    CASE what
        WHEN 'flow' THEN
            re := '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$';
            rule := 'letters, digits, "_", "." and "-"';
            example := '"archive_orders" or "etl.daily-load"';
        WHEN 'node' THEN
            re := '^[A-Za-z_][A-Za-z0-9_-]{0,62}$';
            rule := 'letters, digits, "_" and "-"';
            example := '"extract" or "load-orders"';
        ELSE
            re := '^[A-Za-z_][A-Za-z0-9_]{0,62}$';
            rule := 'letters, digits and "_"';
            example := '"region" or "batch_size"';
    END CASE;
    IF name IS NULL THEN
        RAISE EXCEPTION '% name must not be null', what
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = format('Pass a %s name, e.g. %s.', what, example);
    END IF;
    IF name !~ re THEN
        RAISE EXCEPTION 'invalid % name "%"', what, name
            USING ERRCODE = 'invalid_name',
                  DETAIL = format('A %s name starts with a letter or "_", has at most 63 characters and contains only %s.',
                                  what, rule),
                  HINT = format('Use a name such as %s.', example);
    END IF;
    RETURN name;
END
$$;

-- Validate a schedule; '' means manual only and is returned as NULL.
CREATE OR REPLACE FUNCTION taskflow._check_schedule(schedule text) RETURNS text
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

-- A schedule that will never fire (a one-shot time in the past) is accepted
-- with a WARNING.
CREATE OR REPLACE FUNCTION taskflow._warn_never_fires(flow text, schedule text, timezone text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF schedule IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM taskflow.next_runs(schedule, taskflow._now(), 1, timezone)) THEN
        RAISE WARNING 'schedule "%" of flow "%" will never fire', schedule, flow
            USING DETAIL = 'It has no fire time after now (a one-shot time in the past).',
                  HINT = 'The flow runs only when started with taskflow.run_flow(); give a future time or a cron expression to schedule it.';
    END IF;
END
$$;

-- Validate a time zone name; returns its canonical spelling.
-- The canonical spelling of a zone of pg_timezone_names, or NULL (schedule.c).
CREATE OR REPLACE FUNCTION taskflow._tz_canonical(name text) RETURNS text
LANGUAGE c STRICT STABLE AS 'MODULE_PATHNAME', 'tf_tz_canonical';

CREATE OR REPLACE FUNCTION taskflow._check_timezone(timezone text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    canonical text;
BEGIN
    IF timezone IS NULL OR timezone = current_setting('TimeZone') THEN
        RETURN coalesce(timezone, current_setting('TimeZone'));
    END IF;
    -- the names of pg_timezone_names, read once per backend (C)
    canonical := taskflow._tz_canonical(timezone);
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
CREATE OR REPLACE FUNCTION taskflow._check_owner(owner regrole) RETURNS regrole
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
CREATE OR REPLACE FUNCTION taskflow._check_flow_settings(max_active_runs integer,
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
    -- (create_flow / alter_flow turn '-infinity' / 'infinity' into NULL first)
    IF start_date = 'infinity'::timestamptz OR end_date = '-infinity'::timestamptz THEN
        RAISE EXCEPTION 'invalid %: % would never let the flow run',
                        CASE WHEN start_date = 'infinity'::timestamptz THEN 'start_date' ELSE 'end_date' END,
                        CASE WHEN start_date = 'infinity'::timestamptz THEN start_date ELSE end_date END
            USING ERRCODE = 'datetime_field_overflow',
                  HINT = 'Give finite dates, or NULL for none.';
    END IF;
    IF start_date IS NOT NULL AND end_date IS NOT NULL AND end_date <= start_date THEN
        RAISE EXCEPTION 'end_date % is not after start_date %', end_date, start_date
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- Checks of the retry/timeout settings of a node.
CREATE OR REPLACE FUNCTION taskflow._check_node_settings(node text, retries integer,
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
    IF retry_delay IS NOT NULL AND extract(epoch FROM retry_delay) > 366 * 86400 THEN
        RAISE EXCEPTION 'retry_delay of node "%" must be at most 366 days, not %', node, retry_delay
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'retry_delay is the pause before each retry: between 0 and 366 days.';
    END IF;
    IF timeout IS NOT NULL AND timeout < interval '0' THEN
        RAISE EXCEPTION 'timeout of node "%" must be positive', node
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use timeout => ''0'' for no timeout.';
    END IF;
    IF timeout IS NOT NULL AND timeout <> interval '0' AND extract(epoch FROM timeout) < 1 THEN
        RAISE EXCEPTION 'timeout of node "%" must be at least 1 second, not %', node, timeout
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use timeout => ''0'' for no timeout, or between 1 second and 24 days.';
    END IF;
    IF timeout IS NOT NULL AND extract(epoch FROM timeout) > 24 * 86400 THEN
        RAISE EXCEPTION 'timeout of node "%" must be at most 24 days, not %', node, timeout
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A node timeout is a statement timeout, counted in milliseconds up to 2147483647 (about 24.8 days).',
                  HINT = 'Use timeout => ''0'' for no timeout, or between 1 second and 24 days.';
    END IF;
END
$$;

------------------------------------------------------------------------------
-- lookups
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._no_such_flow(flow text) RETURNS void
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
CREATE OR REPLACE FUNCTION taskflow._flow(flow text) RETURNS taskflow.flows
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
CREATE OR REPLACE FUNCTION taskflow._flow_for_update(flow text) RETURNS taskflow.flows
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
BEGIN
    -- this transaction wrote the row already (create_flow, add_node, ...):
    -- it holds the lock and updated_at is now(); no new row version
    SELECT x.* INTO f FROM taskflow.flows x
     WHERE x.name = _flow_for_update.flow AND x.updated_at = now()
       AND taskflow._row_is_mine(x.xmin);
    IF FOUND THEN
        RETURN f;
    END IF;
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
CREATE OR REPLACE FUNCTION taskflow._node(f taskflow.flows, node text) RETURNS taskflow.nodes
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
CREATE OR REPLACE FUNCTION taskflow._check_vars(flow_id bigint, template text, what text) RETURNS void
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
       AND strpos(v, '.') = 0       -- ${node.column}: taskflow._check_node_outputs
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
CREATE OR REPLACE FUNCTION taskflow._node_templates(node text, body text, options jsonb)
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
CREATE OR REPLACE FUNCTION taskflow._option_interval(what text, value text) RETURNS interval
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

CREATE OR REPLACE FUNCTION taskflow._validate_storage_server(f taskflow.flows, node text, server text)
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

-- Check the fixed text of an object key prefix (archive option "path",
-- template parameter "path_prefix"): a relative path without "." or ".."
-- components, empty components, backslashes or control characters.  The
-- values of ${...} references are checked again when the node runs.
CREATE OR REPLACE FUNCTION taskflow._check_key_prefix(what text, path text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    why text;
BEGIN
    IF path IS NULL THEN
        RETURN;
    END IF;
    why := CASE
        WHEN path ~ E'[\\x01-\\x1f\\x7f]' THEN 'it contains a control character'
        WHEN position(E'\\' IN path) > 0 THEN 'it contains a backslash'
        WHEN left(path, 1) = '/' THEN 'it starts with "/"'
        WHEN path ~ E'(^|/)\\.\\.?(/|$)' THEN 'it has a "." or ".." component'
        WHEN path ~ '//' THEN 'it has an empty component ("//")'
        END;
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'invalid % "%": %', what, path, why
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'An object key prefix is a relative path under the storage server''s url.',
                  HINT = 'Use "/"-separated names without "." or "..", e.g. "orders/y=${year}/m=${month}/".';
    END IF;
END
$$;

-- Validate the options of an archive node.
CREATE OR REPLACE FUNCTION taskflow._validate_archive(f taskflow.flows, node text, body text, o jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what   text := format('archive node "%s"', node);
    source text := coalesce(o->>'source', 'keep');
    rel    regclass;
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
    PERFORM taskflow._check_key_prefix(format('option "path" of %s', what), o->>'path');
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
    -- format, max_file_size and source values: the registry (node_kinds.c)
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
CREATE OR REPLACE FUNCTION taskflow._validate_node(f taskflow.flows, node text, kind text, body text, options jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    what  text := format('%s node "%s"', kind, node);
    chk   text;
    t     record;
BEGIN
    -- the registry: kind, option grammar, the kind's own checks
    chk := taskflow._kind_validate(kind, node, body, options);
    IF chk IS NOT NULL THEN
        EXECUTE format('SELECT taskflow.%I($1, $2, $3, $4)', chk) USING f, node, body, options;
    END IF;

    -- variables referenced by the body and the string options (none
    -- without a "${" anywhere: skip the per-template queries)
    IF strpos(coalesce(body, '') || coalesce(options::text, ''), '${') > 0 THEN
        FOR t IN SELECT * FROM taskflow._node_templates(node, body, options) LOOP
            PERFORM taskflow._check_vars(f.id, t.template, t.what);
        END LOOP;
    END IF;

    -- the SQL parses (not run; see validate.c)
    IF taskflow._kind_body(kind) IS NOT NULL AND body IS NOT NULL THEN
        PERFORM taskflow._check_sql(body, format('%s body', what), taskflow._kind_body(kind) = 'expression');
    END IF;
END
$$;

------------------------------------------------------------------------------
-- edges: no cycles (also for direct INSERT/UPDATE)
------------------------------------------------------------------------------

-- Names of node ids, in order, joined by ' -> '.
CREATE OR REPLACE FUNCTION taskflow._node_path(ids bigint[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(n.name, ' -> ' ORDER BY i.ord)
      FROM unnest(ids) WITH ORDINALITY AS i(id, ord)
      JOIN taskflow.nodes n ON n.id = i.id
$$;

CREATE OR REPLACE FUNCTION taskflow._edges_check() RETURNS trigger
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
    -- (once per transaction: a row version it wrote is locked already)
    SELECT x.name INTO fname FROM taskflow.flows x
     WHERE x.id = NEW.flow_id AND x.updated_at = now() AND taskflow._row_is_mine(x.xmin);
    IF fname IS NULL THEN
        UPDATE taskflow.flows SET updated_at = now() WHERE id = NEW.flow_id
        RETURNING name INTO fname;
    END IF;

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

CREATE OR REPLACE TRIGGER edges_no_cycle BEFORE INSERT OR UPDATE ON taskflow.edges
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._edges_check();

-- add an edge between two nodes of flow f (already locked)
CREATE OR REPLACE FUNCTION taskflow._add_edge(f taskflow.flows, from_node text, to_node text) RETURNS void
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

CREATE OR REPLACE FUNCTION taskflow._create_flow_api(name text,
                                     schedule text DEFAULT NULL,
                                     timezone text DEFAULT current_setting('TimeZone'),
                                     description text DEFAULT NULL,
                                     catchup boolean DEFAULT true,
                                     max_active_runs integer DEFAULT 1,
                                     enabled boolean DEFAULT true,
                                     start_date timestamptz DEFAULT NULL,
                                     end_date timestamptz DEFAULT NULL,
                                     owner regrole DEFAULT NULL,
                                     suspend_after_failures integer DEFAULT NULL,
                                     priority integer DEFAULT 5)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_id bigint;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    PERFORM taskflow._check_name('flow', _create_flow_api.name);
    _create_flow_api.schedule := taskflow._check_schedule(_create_flow_api.schedule);
    _create_flow_api.timezone := taskflow._check_timezone(_create_flow_api.timezone);
    _create_flow_api.owner := taskflow._check_owner(_create_flow_api.owner);
    _create_flow_api.start_date := taskflow._check_flow_date('start_date', _create_flow_api.start_date);
    _create_flow_api.end_date := taskflow._check_flow_date('end_date', _create_flow_api.end_date);
    PERFORM taskflow._check_flow_settings(_create_flow_api.max_active_runs,
                                          _create_flow_api.start_date, _create_flow_api.end_date);
    _create_flow_api.suspend_after_failures :=
        taskflow._check_suspend_after(nullif(_create_flow_api.suspend_after_failures, 0));
    -- (part 93_events)
    _create_flow_api.priority := taskflow._check_priority(coalesce(_create_flow_api.priority, 5));
    BEGIN
        INSERT INTO taskflow.flows AS f (name, owner, schedule, timezone, description, enabled,
                                         catchup, max_active_runs, start_date, end_date,
                                         suspend_after_failures, priority)
        VALUES (_create_flow_api.name, _create_flow_api.owner, _create_flow_api.schedule, _create_flow_api.timezone,
                nullif(_create_flow_api.description, ''), coalesce(_create_flow_api.enabled, true),
                coalesce(_create_flow_api.catchup, true), coalesce(_create_flow_api.max_active_runs, 1),
                _create_flow_api.start_date, _create_flow_api.end_date, _create_flow_api.suspend_after_failures,
                _create_flow_api.priority)
        RETURNING f.id INTO new_id;
        PERFORM taskflow._warn_never_fires(_create_flow_api.name, _create_flow_api.schedule, _create_flow_api.timezone);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'flow "%" already exists', _create_flow_api.name
            USING ERRCODE = 'duplicate_object',
                  -- the same hint whoever owns it: the name's owner is not revealed
                  HINT = 'Flow names are unique per database, whoever owns the flow; pick another name.';
    END;
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.create_flow: flow "%s"', _create_flow_api.name));
END
$$;

-- create_flow is C (src/define_create.c): a flow owned by the caller without
-- start or end date is checked with the same checks and inserted directly
-- (the same row, history and wake as below); anything else, and any error,
-- is rolled back and taskflow._create_flow_api does it.  A check added to
-- _create_flow_api (or to the flow triggers) needs its twin in
-- define_create.c (insert_flow), or a condition there that leaves such calls
-- to _create_flow_api.
CREATE OR REPLACE FUNCTION taskflow.create_flow(name text,
                                     schedule text DEFAULT NULL,
                                     timezone text DEFAULT current_setting('TimeZone'),
                                     description text DEFAULT NULL,
                                     catchup boolean DEFAULT true,
                                     max_active_runs integer DEFAULT 1,
                                     enabled boolean DEFAULT true,
                                     start_date timestamptz DEFAULT NULL,
                                     end_date timestamptz DEFAULT NULL,
                                     owner regrole DEFAULT NULL,
                                     suspend_after_failures integer DEFAULT NULL,
                                     priority integer DEFAULT 5)
RETURNS bigint
LANGUAGE C AS 'MODULE_PATHNAME', 'tf_create_flow';

CREATE OR REPLACE FUNCTION taskflow.alter_flow(name text,
                                    schedule text DEFAULT NULL,
                                    timezone text DEFAULT NULL,
                                    description text DEFAULT NULL,
                                    catchup boolean DEFAULT NULL,
                                    max_active_runs integer DEFAULT NULL,
                                    enabled boolean DEFAULT NULL,
                                    start_date timestamptz DEFAULT NULL,
                                    end_date timestamptz DEFAULT NULL,
                                    owner regrole DEFAULT NULL,
                                    new_name text DEFAULT NULL,
                                    suspend_after_failures integer DEFAULT NULL,
                                    priority integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(alter_flow.name);
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
    -- start_date => '-infinity' / end_date => 'infinity' clear them; the
    -- opposite infinities are refused
    IF alter_flow.start_date IS NOT NULL THEN
        f.start_date := taskflow._check_flow_date('start_date', alter_flow.start_date);
    END IF;
    IF alter_flow.end_date IS NOT NULL THEN
        f.end_date := taskflow._check_flow_date('end_date', alter_flow.end_date);
    END IF;
    IF alter_flow.owner IS NOT NULL THEN
        f.owner := taskflow._check_owner(alter_flow.owner);
    END IF;
    PERFORM taskflow._check_flow_settings(f.max_active_runs, f.start_date, f.end_date);
    -- 0 clears it (never suspend)
    IF alter_flow.suspend_after_failures IS NOT NULL THEN
        f.suspend_after_failures :=
            taskflow._check_suspend_after(nullif(alter_flow.suspend_after_failures, 0));
    END IF;
    IF alter_flow.priority IS NOT NULL THEN     -- (part 93_events)
        f.priority := taskflow._check_priority(alter_flow.priority);
    END IF;
    BEGIN
        UPDATE taskflow.flows x
           SET name = f.name, schedule = f.schedule, timezone = f.timezone,
               description = f.description, catchup = f.catchup,
               max_active_runs = f.max_active_runs, enabled = f.enabled,
               start_date = f.start_date, end_date = f.end_date, owner = f.owner,
               suspend_after_failures = f.suspend_after_failures,
               priority = f.priority,
               updated_at = now()
         WHERE x.id = f.id;
        IF alter_flow.schedule IS NOT NULL OR alter_flow.timezone IS NOT NULL THEN
            PERFORM taskflow._warn_never_fires(f.name, f.schedule, f.timezone);
        END IF;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'flow "%" already exists', f.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Pick another new_name.';
    END;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.alter_flow: flow "%s"', alter_flow.name));
END
$$;

CREATE OR REPLACE FUNCTION taskflow.drop_flow(name text, force boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    active bigint;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(drop_flow.name);
    SELECT count(*) INTO active FROM taskflow.runs r
     WHERE r.flow_id = f.id AND r.state IN ('scheduled', 'running', 'suspended');
    IF active > 0 AND NOT coalesce(drop_flow.force, false) THEN
        RAISE EXCEPTION 'flow "%" has % active run(s)', f.name, active
            USING ERRCODE = 'object_in_use',
                  HINT = 'Wait for them or cancel them with taskflow.cancel_run(), '
                         'or drop the flow anyway with drop_flow(name, force => true).';
    END IF;
    -- force: stop the node workers of active runs before the rows go away
    PERFORM taskflow.cancel_run(r.id)
       FROM taskflow.runs r
      WHERE r.flow_id = f.id AND r.state IN ('scheduled', 'running', 'suspended');
    DELETE FROM taskflow.flows x WHERE x.id = f.id;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.drop_flow: flow "%s"', drop_flow.name));
END
$$;

CREATE OR REPLACE FUNCTION taskflow.enable_flow(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(enable_flow.name);
    UPDATE taskflow.flows x SET enabled = true WHERE x.id = f.id;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.enable_flow: flow "%s"', enable_flow.name));
END
$$;

CREATE OR REPLACE FUNCTION taskflow.disable_flow(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(disable_flow.name);
    UPDATE taskflow.flows x SET enabled = false WHERE x.id = f.id;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.disable_flow: flow "%s"', disable_flow.name));
END
$$;

------------------------------------------------------------------------------
-- nodes
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._add_node_api(flow text,
                                  name text,
                                  kind text,
                                  body text DEFAULT NULL,
                                  options jsonb DEFAULT '{}',
                                  retries integer DEFAULT 0,
                                  retry_delay interval DEFAULT '1 min',
                                  timeout interval DEFAULT NULL,
                                  after text[] DEFAULT NULL,
                                  trigger_rule text DEFAULT 'all_success',
                                  finalizer boolean DEFAULT false,
                                  branch boolean DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f      taskflow.flows;
    new_id bigint;
    up     text;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(_add_node_api.flow);
    PERFORM taskflow._check_name('node', _add_node_api.name);
    _add_node_api.kind := lower(btrim(_add_node_api.kind));
    _add_node_api.body := nullif(_add_node_api.body, '');
    _add_node_api.options := coalesce(_add_node_api.options, '{}');
    PERFORM taskflow._check_node_settings(_add_node_api.name, _add_node_api.retries,
                                          _add_node_api.retry_delay, _add_node_api.timeout);
    IF EXISTS (SELECT 1 FROM taskflow.nodes n WHERE n.flow_id = f.id AND n.name = _add_node_api.name) THEN
        RAISE EXCEPTION 'node "%" already exists in flow "%"', _add_node_api.name, f.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use taskflow.alter_node() to change it, or pick another name.';
    END IF;
    PERFORM taskflow._validate_node(f, _add_node_api.name, _add_node_api.kind, _add_node_api.body, _add_node_api.options);
    FOR up IN SELECT u FROM unnest(_add_node_api.after) u LOOP
        PERFORM taskflow._node(f, up);      -- upstream nodes must exist
    END LOOP;

    INSERT INTO taskflow.nodes AS n (flow_id, name, kind, body, options, retries, retry_delay, timeout,
                                     trigger_rule, finalizer)
    VALUES (f.id, _add_node_api.name, _add_node_api.kind, _add_node_api.body, _add_node_api.options,
            coalesce(_add_node_api.retries, 0), coalesce(_add_node_api.retry_delay, interval '1 min'),
            nullif(_add_node_api.timeout, interval '0'),
            taskflow._fl_check_rule(_add_node_api.name, coalesce(_add_node_api.trigger_rule, 'all_success')),
            coalesce(_add_node_api.finalizer, false))
    RETURNING n.id INTO new_id;

    FOR up IN SELECT DISTINCT u FROM unnest(_add_node_api.after) u ORDER BY u LOOP
        PERFORM taskflow._add_edge(f, up, _add_node_api.name);
        -- branch labels (part 19_flowlogic)
        PERFORM taskflow._fl_label_edge(f, up, _add_node_api.name, _add_node_api.branch);
    END LOOP;
    IF _add_node_api.branch IS NOT NULL AND cardinality(_add_node_api.after) IS DISTINCT FROM 1 THEN
        RAISE EXCEPTION 'branch => % needs exactly one upstream node in after', _add_node_api.branch::text
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give after => ARRAY[''<branch node>''], or label edges one by one with taskflow.add_edge(..., branch => true|false).';
    END IF;
    -- output variables ${node.column} name upstream nodes (part 91)
    PERFORM taskflow._check_node_outputs(f, new_id, _add_node_api.name, _add_node_api.body, _add_node_api.options);
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.add_node: flow "%s", node "%s"', _add_node_api.flow, _add_node_api.name));
END
$$;

-- add_node is C (src/define_create.c): a plain node (no ${...}, archive or
-- branch node, finalizer, branch label) is checked with the same checks and
-- inserted directly (its rows, history and flow lock as below); anything
-- else, and any error, is rolled back and taskflow._add_node_api does it.
-- A check added to _add_node_api (or to the node triggers) needs its twin in
-- define_create.c (validate_node), or a condition there that leaves such
-- calls to _add_node_api.
CREATE OR REPLACE FUNCTION taskflow.add_node(flow text,
                                  name text,
                                  kind text,
                                  body text DEFAULT NULL,
                                  options jsonb DEFAULT '{}',
                                  retries integer DEFAULT 0,
                                  retry_delay interval DEFAULT '1 min',
                                  timeout interval DEFAULT NULL,
                                  after text[] DEFAULT NULL,
                                  trigger_rule text DEFAULT 'all_success',
                                  finalizer boolean DEFAULT false,
                                  branch boolean DEFAULT NULL)
RETURNS bigint
LANGUAGE C AS 'MODULE_PATHNAME', 'tf_add_node';

CREATE OR REPLACE FUNCTION taskflow.alter_node(flow text,
                                    name text,
                                    body text DEFAULT NULL,
                                    options jsonb DEFAULT NULL,
                                    retries integer DEFAULT NULL,
                                    retry_delay interval DEFAULT NULL,
                                    timeout interval DEFAULT NULL,
                                    new_name text DEFAULT NULL,
                                    trigger_rule text DEFAULT NULL,
                                    finalizer boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    n taskflow.nodes;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(alter_node.flow);
    n := taskflow._node(f, alter_node.name);
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

    -- trigger rule and finalizer: checked by trigger nodes_flowlogic (part 19)
    UPDATE taskflow.nodes x
       SET name = n.name, body = n.body, options = n.options, retries = n.retries,
           retry_delay = n.retry_delay, timeout = n.timeout, updated_at = now(),
           trigger_rule = taskflow._fl_check_rule(n.name, coalesce(alter_node.trigger_rule, x.trigger_rule)),
           finalizer = coalesce(alter_node.finalizer, x.finalizer)
     WHERE x.id = n.id;
    -- output variables ${node.column} name upstream nodes (part 91)
    PERFORM taskflow._check_node_outputs(f, n.id, n.name, n.body, n.options);
    IF n.name <> alter_node.name THEN
        PERFORM taskflow._check_flow_outputs(f, format('renaming node "%s" to "%s"', alter_node.name, n.name),
                                             alter_node.name);
    END IF;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.alter_node: flow "%s", node "%s"', alter_node.flow, alter_node.name));
END
$$;

CREATE OR REPLACE FUNCTION taskflow.drop_node(flow text, name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    n taskflow.nodes;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(drop_node.flow);
    n := taskflow._node(f, drop_node.name);
    IF EXISTS (SELECT 1 FROM taskflow.node_runs nr
                WHERE nr.node_id = n.id AND nr.state IN ('pending', 'running', 'retrying')) THEN
        RAISE EXCEPTION 'node "%" of flow "%" is part of an active run', n.name, f.name
            USING ERRCODE = 'object_in_use',
                  HINT = 'Wait for the run to finish or cancel it with taskflow.cancel_run().';
    END IF;
    -- its edges go with it (ON DELETE CASCADE)
    DELETE FROM taskflow.nodes x WHERE x.id = n.id;
    PERFORM taskflow._check_flow_outputs(f, format('dropping node "%s"', n.name), n.name);
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.drop_node: flow "%s", node "%s"', drop_node.flow, drop_node.name));
END
$$;

------------------------------------------------------------------------------
-- edges
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow.add_edge(flow text, from_node text, to_node text,
                                             branch boolean DEFAULT NULL) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f        taskflow.flows;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(add_edge.flow);
    PERFORM taskflow._add_edge(f, add_edge.from_node, add_edge.to_node);
    -- branch label (part 19_flowlogic)
    PERFORM taskflow._fl_label_edge(f, add_edge.from_node, add_edge.to_node, add_edge.branch);
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.add_edge: flow "%s", edge %s -> %s', add_edge.flow, add_edge.from_node, add_edge.to_node));
END
$$;

CREATE OR REPLACE FUNCTION taskflow.drop_edge(flow text, from_node text, to_node text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    a taskflow.nodes;
    b taskflow.nodes;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(drop_edge.flow);
    a := taskflow._node(f, drop_edge.from_node);
    b := taskflow._node(f, drop_edge.to_node);
    DELETE FROM taskflow.edges e WHERE e.flow_id = f.id AND e.from_node = a.id AND e.to_node = b.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'edge % -> % does not exist in flow "%"', a.name, b.name, f.name
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM taskflow._check_flow_outputs(f, format('dropping edge %s -> %s', a.name, b.name));
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.drop_edge: flow "%s", edge %s -> %s', drop_edge.flow, drop_edge.from_node, drop_edge.to_node));
END
$$;

------------------------------------------------------------------------------
-- variables
------------------------------------------------------------------------------

-- Parse a variable definition: a constant (pattern, base and shift NULL) or
-- '<to_char pattern> of bizdate|cyctime [+|- <interval>]'.  Used by
-- set_variable and by the catalog guard on direct writes (part 15).
CREATE OR REPLACE FUNCTION taskflow._parse_variable(name text, definition text, constant boolean,
                                                   OUT pattern text, OUT base text, OUT shift interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m text[];
BEGIN
    PERFORM taskflow._check_name('variable', _parse_variable.name);
    IF _parse_variable.name = ANY (taskflow._system_variables()) THEN
        RAISE EXCEPTION 'variable name "%" is reserved', _parse_variable.name
            USING ERRCODE = 'reserved_name',
                  DETAIL = 'System variables: ' || array_to_string(taskflow._system_variables(), ', ') || '.',
                  HINT = 'Pick another name; run parameters cannot replace system variables either.';
    END IF;
    IF _parse_variable.definition IS NULL THEN
        RAISE EXCEPTION 'definition of variable "%" must not be null', _parse_variable.name
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF coalesce(_parse_variable.constant, false) THEN
        RETURN;
    END IF;
    m := regexp_match(_parse_variable.definition,
                      E'^\\s*(.*\\S)\\s+of\\s+(bizdate|cyctime)(?:\\s*([-+])\\s*(\\S.*?))?\\s*$', 'i');
    IF m IS NULL THEN
        RAISE EXCEPTION 'invalid time variable definition "%"', _parse_variable.definition
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = CASE WHEN _parse_variable.definition ~* E'^\\s*of\\s+(bizdate|cyctime)'
                                THEN 'The to_char pattern is empty.'
                                ELSE 'Expected a to_char pattern, "of", bizdate or cyctime, and an optional signed interval.' END,
                  HINT = 'Write ''<to_char pattern> of bizdate|cyctime [+|- <interval>]'', e.g. '
                         '''yyyymmdd of bizdate - 7 days''; for a fixed value pass constant => true.';
    END IF;
    pattern := m[1];
    base := lower(m[2]);
    IF m[3] IS NOT NULL THEN
        BEGIN
            shift := (m[3] || ' ' || btrim(m[4]))::interval;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            RAISE EXCEPTION 'invalid interval "%" in definition of variable "%"', btrim(m[4]), _parse_variable.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use a PostgreSQL interval such as ''7 days'', ''6 months'' or ''1 hour''.';
        END;
        IF abs(extract(epoch FROM shift)) > extract(epoch FROM interval '100 years') THEN
            RAISE EXCEPTION 'shift "% %" of variable "%" is out of range', m[3], btrim(m[4]), _parse_variable.name
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A time variable shifts bizdate or cyctime by at most 100 years either way.',
                      HINT = 'e.g. ''yyyymmdd of bizdate - 7 days'' or ''yyyy of bizdate + 1 year''.';
        END IF;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION taskflow.set_variable(flow text, name text, definition text,
                                      constant boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f   taskflow.flows;
    pat text;
    bas text;
    shf interval;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(set_variable.flow);
    SELECT p.pattern, p.base, p.shift INTO pat, bas, shf
      FROM taskflow._parse_variable(set_variable.name, set_variable.definition,
                                    set_variable.constant) p;

    INSERT INTO taskflow.variables AS v (flow_id, name, definition, is_constant, pattern, base, shift)
    VALUES (f.id, set_variable.name, set_variable.definition, coalesce(set_variable.constant, false),
            pat, bas, shf)
    ON CONFLICT ON CONSTRAINT variables_pkey DO UPDATE
       SET definition = excluded.definition, is_constant = excluded.is_constant,
           pattern = excluded.pattern, base = excluded.base, shift = excluded.shift;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.set_variable: flow "%s", variable "%s"', set_variable.flow, set_variable.name));
END
$$;

CREATE OR REPLACE FUNCTION taskflow.drop_variable(flow text, name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f     taskflow.flows;
    users text;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow_for_update(drop_variable.flow);
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
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.drop_variable: flow "%s", variable "%s"', drop_variable.flow, drop_variable.name));
END
$$;

------------------------------------------------------------------------------
-- variable values (used by the engine and by render)
------------------------------------------------------------------------------

-- The natural scheduled time (cyctime) of a business date: the first fire
-- time of the schedule on day bizdate + 1 in the flow's time zone, or
-- bizdate + 1 00:00 there for a manual-only flow (or a day the schedule does
-- not fire on).
CREATE OR REPLACE FUNCTION taskflow._cyctime_for(flow_id bigint, bizdate date) RETURNS timestamptz
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
CREATE OR REPLACE FUNCTION taskflow._variables(flow_id bigint, bizdate date, cyctime timestamptz,
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
    PERFORM taskflow._check_bizdate('bizdate', bizdate);
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
        ELSIF v.shift IS NOT NULL
              AND abs(extract(epoch FROM v.shift)) > extract(epoch FROM interval '100 years') THEN
            -- defined before the bound existed (set_variable refuses it now)
            RAISE EXCEPTION 'variable "%" of flow "%" is out of range for bizdate %', v.name, f.name, bizdate
                USING ERRCODE = 'datetime_field_overflow',
                      DETAIL = format('Its definition "%s" shifts by more than 100 years.', v.definition),
                      HINT = format('Redefine it with taskflow.set_variable(%L, %L, ...).', f.name, v.name);
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

-- The options of each kind in the order render() shows them (the registry,
-- node_kinds.c).
CREATE OR REPLACE FUNCTION taskflow._option_order(kind text) RETURNS text[]
LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'tf_option_order_sql';

-- With run_id: as that run saw it (its bizdate, cyctime and params, and the
-- output variables recorded in it); else a dry run in which output
-- variables ${node.column} stay as written.
CREATE OR REPLACE FUNCTION taskflow.render(flow text, node text,
                                bizdate date DEFAULT current_date - 1,
                                params jsonb DEFAULT '{}',
                                run_id bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f    taskflow.flows;
    n    taskflow.nodes;
    r    taskflow.runs;
    vars jsonb;
    dry  boolean := true;
    lines text[] := '{}';
    k    text;
    v    jsonb;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow(render.flow);
    n := taskflow._node(f, render.node);
    IF render.run_id IS NOT NULL THEN
        SELECT * INTO r FROM taskflow.runs x WHERE x.id = render.run_id AND x.flow_id = f.id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'run % of flow "%" does not exist', render.run_id, f.name
                USING ERRCODE = 'undefined_object',
                      HINT = format('SELECT run_id FROM taskflow.run_history WHERE flow = %L;', f.name);
        END IF;
        vars := taskflow._variables(f.id, r.bizdate, r.scheduled_for, r.id, n.name, r.params)
                || taskflow._output_variables(r.id, n.id);
        dry := false;
    ELSE
        PERFORM taskflow._check_bizdate('bizdate', render.bizdate);
        vars := taskflow._variables(f.id, coalesce(render.bizdate, current_date - 1),
                                    NULL, 0, n.name, render.params);
    END IF;
    IF taskflow._kind_body(n.kind) IS NOT NULL AND n.body IS NOT NULL THEN
        RETURN CASE WHEN dry THEN taskflow._render_text_dry(n.body, vars, format('node "%s" body', n.name))
                    ELSE taskflow._render_text(n.body, vars, format('node "%s" body', n.name)) END;
    END IF;
    FOREACH k IN ARRAY taskflow._option_order(n.kind) LOOP
        v := n.options->k;
        CONTINUE WHEN v IS NULL;
        lines := lines || (k || ': ' ||
            CASE WHEN jsonb_typeof(v) = 'string'
                 THEN CASE WHEN dry
                           THEN taskflow._render_text_dry(v #>> '{}', vars,
                                                          format('node "%s" option "%s"', n.name, k))
                           ELSE taskflow._render_text(v #>> '{}', vars,
                                                      format('node "%s" option "%s"', n.name, k)) END
                 ELSE v::text END);
    END LOOP;
    RETURN array_to_string(lines, E'\n');
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.render: flow "%s", node "%s", bizdate %s', render.flow, render.node, render.bizdate));
END
$$;

------------------------------------------------------------------------------
-- flow_graph
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow.flow_graph(flow text, format text DEFAULT 'dot') RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f     taskflow.flows;
    fmt   text := lower(flow_graph.format);
    lines text[];
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    f := taskflow._flow(flow_graph.flow);
    IF fmt = 'dot' THEN
        lines := ARRAY[format('digraph "%s" {', f.name), '  rankdir=LR;', '  node [shape=box];'];
        -- (flow logic, part 19: a branch is a diamond, a finalizer doubly
        -- framed, a trigger rule other than all_success shown in brackets
        -- with dashed edges into its node, branch edges labelled true/false,
        -- dotted edges from the last nodes to the finalizer)
        lines := lines || ARRAY(
            SELECT format(E'  "%s" [label="%s\\n(%s)%s"%s];', n.name, n.name,
                          n.kind || CASE WHEN n.finalizer THEN ', finalizer' ELSE '' END,
                          CASE WHEN n.trigger_rule <> 'all_success' THEN E'\\n[' || n.trigger_rule || ']' ELSE '' END,
                          CASE WHEN n.kind = 'branch' THEN ', shape=diamond'
                               WHEN n.finalizer THEN ', peripheries=2' ELSE '' END)
              FROM taskflow.nodes n WHERE n.flow_id = f.id ORDER BY n.name);
        lines := lines || ARRAY(
            SELECT format('  "%s" -> "%s"%s;', a.name, b.name,
                          CASE WHEN e.branch IS NOT NULL OR b.trigger_rule <> 'all_success'
                               THEN ' [' || concat_ws(', ',
                                       CASE WHEN e.branch IS NOT NULL THEN format('label="%s"', e.branch::text) END,
                                       CASE WHEN b.trigger_rule <> 'all_success' THEN 'style=dashed' END) || ']'
                               ELSE '' END)
              FROM taskflow.edges e
              JOIN taskflow.nodes a ON a.id = e.from_node
              JOIN taskflow.nodes b ON b.id = e.to_node
             WHERE e.flow_id = f.id ORDER BY a.name, b.name);
        lines := lines || ARRAY(
            SELECT format('  "%s" -> "%s" [style=dotted, label="finally"];', a.name, z.name)
              FROM taskflow.nodes z
              JOIN taskflow.nodes a ON a.flow_id = z.flow_id AND a.id <> z.id
             WHERE z.flow_id = f.id AND z.finalizer
               AND NOT EXISTS (SELECT 1 FROM taskflow.edges e WHERE e.flow_id = f.id AND e.from_node = a.id)
             ORDER BY a.name);
        lines := lines || '}'::text;
    ELSIF fmt = 'mermaid' THEN
        -- node ids n1, n2, ... in name order: names may be mermaid keywords
        -- (flow logic as in dot: branch {diamond}, finalizer [[framed]],
        -- -.-> into a node with a trigger rule, |true| / |false| labels)
        WITH ids AS (
            SELECT n.id, n.name, n.kind, n.trigger_rule, n.finalizer,
                   'n' || row_number() OVER (ORDER BY n.name) AS mid
              FROM taskflow.nodes n WHERE n.flow_id = f.id)
        SELECT ARRAY['flowchart LR']
               || ARRAY(SELECT format(CASE WHEN i.kind = 'branch' THEN '    %s{"%s<br/>(%s)%s"}'
                                           WHEN i.finalizer THEN '    %s[["%s<br/>(%s)%s"]]'
                                           ELSE '    %s["%s<br/>(%s)%s"]' END,
                                      i.mid, i.name,
                                      i.kind || CASE WHEN i.finalizer THEN ', finalizer' ELSE '' END,
                                      CASE WHEN i.trigger_rule <> 'all_success'
                                           THEN '<br/>[' || i.trigger_rule || ']' ELSE '' END)
                          FROM ids i ORDER BY i.name)
               || ARRAY(SELECT format('    %s %s%s %s', a.mid,
                                      CASE WHEN b.trigger_rule <> 'all_success' THEN '-.->' ELSE '-->' END,
                                      CASE WHEN e.branch IS NOT NULL THEN format('|%s|', e.branch::text) ELSE '' END,
                                      b.mid)
                          FROM taskflow.edges e
                          JOIN ids a ON a.id = e.from_node
                          JOIN ids b ON b.id = e.to_node
                         ORDER BY a.name, b.name)
               || ARRAY(SELECT format('    %s -.->|finally| %s', a.mid, z.mid)
                          FROM ids z JOIN ids a ON a.id <> z.id
                         WHERE z.finalizer
                           AND NOT EXISTS (SELECT 1 FROM taskflow.edges e
                                            WHERE e.flow_id = f.id AND e.from_node = a.id)
                         ORDER BY a.name)
          INTO lines;
    ELSE
        RAISE EXCEPTION 'unknown graph format "%"', flow_graph.format
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Formats: dot, mermaid.';
    END IF;
    RETURN array_to_string(lines, E'\n');
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.flow_graph: flow "%s"', flow_graph.flow));
END
$$;

------------------------------------------------------------------------------
-- templates
------------------------------------------------------------------------------

-- (more templates and the users' own: taskflow._templates_more(), part 94)
CREATE OR REPLACE FUNCTION taskflow.templates()
RETURNS TABLE (name text, description text, parameters jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
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
        'batch_size', jsonb_build_object('required', false, 'default', null, 'description', 'delete in batches of this many rows, each committed on its own (default: one DELETE)'),
        'schedule', jsonb_build_object('required', false, 'default', '0 3 * * *', 'description', 'when to run; '''' for manual only'),
        'timezone', jsonb_build_object('required', false, 'default', null, 'description', 'time zone of the schedule; default: the current TimeZone'),
        'enabled', jsonb_build_object('required', false, 'default', true, 'description', 'create the flow enabled'))),
    ('sync_table_daily',
     'Every day, copy the rows of a table that are new since the last run (by a watermark '
     'column) to a table in another database of the cluster or on a remote server (a copy '
     'node named "sync", mode incremental; upserted on key when given).',
     jsonb_build_object(
        'table', jsonb_build_object('required', true, 'description', 'source table (may be schema-qualified)'),
        'watermark', jsonb_build_object('required', true, 'description', 'ever-increasing column (timestamp, id) that selects the new rows'),
        'key', jsonb_build_object('required', false, 'default', null, 'description', 'key columns (comma-separated): upsert on them; required when the target is in another database or server'),
        'target', jsonb_build_object('required', false, 'default', null, 'description', 'target table; default: the source table''s schema-qualified name'),
        'target_database', jsonb_build_object('required', false, 'default', null, 'description', 'database of this cluster to copy to'),
        'target_server', jsonb_build_object('required', false, 'default', null, 'description', 'postgres_fdw server to copy to (the owner''s user mapping)'),
        'lookback', jsonb_build_object('required', false, 'default', null, 'description', 'also copy again rows up to this far below the watermark (late arrivals; needs key)'),
        'schedule', jsonb_build_object('required', false, 'default', '0 2 * * *', 'description', 'when to run; '''' for manual only'),
        'timezone', jsonb_build_object('required', false, 'default', null, 'description', 'time zone of the schedule; default: the current TimeZone'),
        'enabled', jsonb_build_object('required', false, 'default', true, 'description', 'create the flow enabled'))),
    ('sql_daily',
     'Run one SQL script every day (a single sql node named "sql").',
     jsonb_build_object(
        'sql', jsonb_build_object('required', true, 'description', 'the SQL script (may use ${bizdate} and the other system variables)'),
        'schedule', jsonb_build_object('required', false, 'default', '0 5 * * *', 'description', 'when to run; '''' for manual only'),
        'timezone', jsonb_build_object('required', false, 'default', null, 'description', 'time zone of the schedule; default: the current TimeZone'),
        'enabled', jsonb_build_object('required', false, 'default', true, 'description', 'create the flow enabled')));
    RETURN QUERY SELECT * FROM taskflow._templates_more();
END
$$;

-- A relation name resolved under a given search_path (the caller's, see
-- create_flow_from_template); NULL if there is no such relation.  Only the
-- C-level name lookup of to_regclass runs under that search_path.
CREATE OR REPLACE FUNCTION taskflow._regclass_in(tab text, caller_search_path text) RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel regclass;
BEGIN
    -- restored when this function returns (its own SET clause) or fails
    PERFORM pg_catalog.set_config('search_path', coalesce(caller_search_path, ''), true);
    rel := pg_catalog.to_regclass(tab);
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    RETURN rel;
EXCEPTION WHEN invalid_name OR syntax_error OR invalid_parameter_value THEN
    RETURN NULL;
END
$$;

-- A table and one of its columns, for templates: returns the qualified,
-- quoted table name and the relation name.  tab is resolved under the
-- pinned search_path (pg_catalog, pg_temp): pass a qualified name (see
-- _regclass_in).
CREATE OR REPLACE FUNCTION taskflow._template_table(template text, tab text, col text,
                                         OUT qualified text, OUT relname text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
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
                                        WHERE a.attrelid OPERATOR(pg_catalog.=) rel::pg_catalog.oid
                                          AND a.attname OPERATOR(pg_catalog.=) col::pg_catalog.name
                                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, tab
            USING ERRCODE = 'undefined_column',
                  HINT = pg_catalog.format('Parameter "%s" is a column name as stored (case-sensitive, unquoted).',
                                           CASE WHEN template OPERATOR(pg_catalog.=) 'sync_table_daily'
                                                THEN 'watermark' ELSE 'date_column' END);
    END IF;
    SELECT pg_catalog.format('%I.%I', ns.nspname, c.relname), c.relname INTO qualified, relname
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns ON ns.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) rel::pg_catalog.oid;
END
$$;

-- The implementation of create_flow_from_template (pinned search_path);
-- caller_search_path is the caller's, used only to resolve the table name.
CREATE OR REPLACE FUNCTION taskflow._create_flow_from_template(template text, name text, params jsonb,
                                                    caller_search_path text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    spec    jsonb;
    p       jsonb := coalesce(params, '{}');
    k       text;
    t       record;
    enabled boolean;
    new_id  bigint;
    keep    interval;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
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
            RAISE EXCEPTION 'parameter "%" of template "%" must be a string, number or boolean', k, template
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

    IF template = 'archive_table_daily' THEN
        PERFORM taskflow._check_key_prefix(pg_catalog.format('parameter "path_prefix" of template "%s"', template),
                                           pg_catalog.rtrim(p->>'path_prefix', '/'));
    END IF;

    new_id := taskflow.create_flow(_create_flow_from_template.name,
                                   schedule => coalesce(p->>'schedule', ''),
                                   timezone => coalesce(p->>'timezone', pg_catalog.current_setting('TimeZone')),
                                   description => pg_catalog.format('created from template %s', template),
                                   enabled => enabled,
                                   owner => taskflow._template_owner(template));  -- part 94
    CASE template
    WHEN 'archive_table_daily' THEN
        SELECT * INTO t FROM taskflow._template_table(template,
            coalesce(taskflow._regclass_in(p->>'table', caller_search_path)::text, p->>'table'),
            p->>'date_column');
        PERFORM taskflow.set_variable(_create_flow_from_template.name, 'year', 'yyyy of bizdate');
        PERFORM taskflow.set_variable(_create_flow_from_template.name, 'month', 'mm of bizdate');
        PERFORM taskflow.set_variable(_create_flow_from_template.name, 'day', 'dd of bizdate');
        PERFORM taskflow.add_node(_create_flow_from_template.name, 'archive', 'archive',
            options => pg_catalog.jsonb_build_object(
                'server', p->>'server',
                'path', pg_catalog.rtrim(coalesce(nullif(p->>'path_prefix', ''), t.relname), '/')
                        || '/y=${year}/m=${month}/d=${day}/',
                'table', t.qualified,
                'where', pg_catalog.format('%I OPERATOR(pg_catalog.=) ${bizdate:literal}', p->>'date_column'),
                'format', p->>'format',
                'source', p->>'source'));
    WHEN 'purge_older_than' THEN
        SELECT * INTO t FROM taskflow._template_table(template,
            coalesce(taskflow._regclass_in(p->>'table', caller_search_path)::text, p->>'table'),
            p->>'date_column');
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
        -- like a variable shift: bizdate - keep must stay a date
        IF pg_catalog.date_part('epoch', keep) > pg_catalog.date_part('epoch', interval '100 years') THEN
            RAISE EXCEPTION 'keep interval "%" for template "%" is out of range', p->>'keep', template
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Parameter "keep" is at most 100 years.',
                      HINT = 'Use a positive PostgreSQL interval such as ''90 days'' or ''1 year''.';
        END IF;
        IF p ? 'batch_size' THEN    -- part 94
            PERFORM taskflow._template_purge_batched(_create_flow_from_template.name, t.qualified, p);
        ELSE
        PERFORM taskflow.add_node(_create_flow_from_template.name, 'purge', 'sql',
            body => pg_catalog.format('DELETE FROM %s WHERE %I OPERATOR(pg_catalog.<) '
                                      '(${bizdate:literal}::pg_catalog.date OPERATOR(pg_catalog.-) %L::pg_catalog.interval)',
                           t.qualified, p->>'date_column', p->>'keep'));
        END IF;
        PERFORM taskflow.add_node(_create_flow_from_template.name, 'analyze', 'sql',
            body => pg_catalog.format('ANALYZE %s', t.qualified), after => ARRAY['purge']);
    WHEN 'sql_daily' THEN
        PERFORM taskflow.add_node(_create_flow_from_template.name, 'sql', 'sql', body => p->>'sql');
    WHEN 'sync_table_daily' THEN
        IF (p->>'target_database') IS NULL AND (p->>'target_server') IS NULL THEN
            RAISE EXCEPTION 'template "%" needs parameter "target_database" or "target_server"', template
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name a database of this cluster, or a postgres_fdw server with your user mapping.';
        END IF;
        SELECT * INTO t FROM taskflow._template_table(template,
            coalesce(taskflow._regclass_in(p->>'table', caller_search_path)::text, p->>'table'),
            p->>'watermark');
        -- the copy node's own validation checks the rest (key, lookback, servers)
        PERFORM taskflow.add_node(_create_flow_from_template.name, 'sync', 'copy',
            options => pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'table', t.qualified,
                'target', coalesce(p->>'target', t.qualified),
                'target_database', p->>'target_database',
                'target_server', p->>'target_server',
                'mode', 'incremental',
                'watermark', p->>'watermark',
                'key', p->>'key',
                'lookback', p->>'lookback')));
    ELSE
        -- more templates and the users' own (part 94)
        PERFORM taskflow._create_flow_more(template, _create_flow_from_template.name, p,
                                           caller_search_path);
    END CASE;
    RETURN new_id;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            pg_catalog.format('taskflow.create_flow_from_template: template "%s", flow "%s"',
                                              _create_flow_from_template.template, _create_flow_from_template.name),
                            'create_flow_from_template');
END
$$;

-- The caller's search_path resolves the table name (an unqualified "orders"
-- is the caller's orders); everything else runs in the pinned
-- implementation.  Not pinned itself (it must see the caller's search_path),
-- so its body qualifies every name (checked by test/sql/security.sql).
CREATE OR REPLACE FUNCTION taskflow.create_flow_from_template(template text, name text, params jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'tf_create_flow_from_template';
