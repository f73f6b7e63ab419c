\echo Use "ALTER EXTENSION taskflow UPDATE" to load this file. \quit
-- taskflow 1.6.0 -> 1.7.0, catalog delta (runs before the replayable parts).
-- Each change to a *.once.sql part of sql/src has its twin here, in a file of
-- its own per concern (pre_NN_name.sql, name order); test/t/090_upgrade.pl
-- checks that an updated catalog equals a fresh 1.7.0 install.
-- taskflow 1.6.0 -> 1.7.0: the twin of sql/src/99_deferred.once.sql (what the
-- scheduler could not do at once because a row had an uncommitted change).

-- An event-triggered run of a downstream flow (kind 'event': flow_id the
-- downstream flow, run_id the upstream run that succeeded) or an alert's
-- delivery (kind 'alert': run_id the run, alert_id, event, deadline), whose
-- parent rows the scheduler's tick found locked by an open transaction
-- (taskflow._lock_parents: it must not wait for it, every owner's runs
-- would).  Each scheduler pass takes them all and tries again; one whose
-- flow, run or alert is gone by then is dropped.  No foreign keys (they
-- would wait for the same transaction), no grants: only the engine
-- (superuser) reads and writes it.
CREATE TABLE taskflow.deferred (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('event', 'alert')),
    flow_id    bigint NOT NULL,
    run_id     bigint NOT NULL,
    alert_id   bigint,
    event      text,
    deadline   timestamptz,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- taskflow extension script, part 00_auth: the membership test of the row
-- level security policies (replayable: runs on CREATE and on UPDATE).
--
-- Is the current role a member of (or the same as) the flow owner?
-- Superusers bypass RLS anyway; this is what the policies use.
--
-- Security: this function is inlined into every policy expression and so is
-- planned under the *caller's* search_path; it must not pin search_path
-- (that would stop the inlining) and therefore qualifies every function,
-- operator and type it uses with pg_catalog.  An unqualified pg_has_role
-- would resolve to a caller's own pg_has_role(name, regrole, text) (an exact
-- match beats pg_catalog's (name, oid, text)) and open every flow to it.
-- test/sql/security.sql checks that every unpinned function stays qualified.
CREATE OR REPLACE FUNCTION taskflow._is_member(owner regrole) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT pg_catalog.pg_has_role(CURRENT_USER, owner::pg_catalog.oid, 'MEMBER'::pg_catalog.text) $$;
-- taskflow extension script, part 05: schedules and variable rendering (C).
-- Owner: schedule.c / variables.c.  See docs/schedules.md, docs/variables.md.

-- Raises ERROR 22023 (naming the bad field) if the schedule is malformed.
-- NULL (manual runs only) is valid.
CREATE OR REPLACE FUNCTION taskflow._schedule_validate(schedule text) RETURNS void
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tf_schedule_validate_sql';

-- The next fire times of a schedule, strictly after "from", evaluated in
-- the given time zone.  A NULL schedule (manual only) gives no rows.
CREATE OR REPLACE FUNCTION taskflow.next_runs(schedule text,
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
CREATE OR REPLACE FUNCTION taskflow._render_text(template text, vars jsonb, what text DEFAULT 'template')
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tf_render_text';

-- Distinct variable names a template references, in order of first appearance.
CREATE OR REPLACE FUNCTION taskflow._template_vars(template text) RETURNS SETOF text
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
-- taskflow extension script, part 19: flow logic (replayable).  Owner:
-- flowlogic.  Catalog: part 92_flowlogic.once (nodes.trigger_rule,
-- nodes.finalizer, edges.branch, node_runs.skip_propagates).  See
-- docs/flow_logic.md.
--
-- What this part owns:
--   * when a pending node run may start, must wait, is skipped or is
--     upstream_failed, from its node's trigger rule and the outcomes of its
--     upstream node runs along each edge (_fl_decide); the engine asks it in
--     _sched_ready / _node_next_in_run (_fl_ready_ids) and settles pending
--     node runs with it in _sched_advance_runs (_fl_settle);
--   * the finalizer: waits for every other node run of the run;
--   * definition checks of trigger rules, finalizers and branch labels
--     (triggers on nodes and edges: the API and direct writes alike);
--   * small API helpers used by add_node / alter_node / add_edge / flow_graph.
-- The functions are plpgsql: they read columns of part 92 (an install-only
-- part that comes later in name order), resolved when called.

------------------------------------------------------------------------------
-- the rules
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._fl_rules() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT ARRAY['all_success', 'all_done', 'one_failed', 'all_failed', 'always',
                 'none_failed_min_one_success']
$$;

-- The decision of trigger rule p_rule given the outcomes along the node's
-- incoming edges: n edges, of which succ succeeded, skip skipped (not taken),
-- fail failed (failed, upstream_failed, canceled), pend not finished.
-- 'run', 'wait', 'skipped' or 'upstream_failed'.  Airflow's semantics
-- (airflow/ti_deps/deps/trigger_rule_dep.py).
CREATE OR REPLACE FUNCTION taskflow._fl_rule(p_rule text, n bigint, succ bigint, skip bigint,
                                             fail bigint, pend bigint)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN n = 0 OR p_rule = 'always' THEN 'run'
        WHEN p_rule = 'all_success' THEN
            CASE WHEN fail > 0 THEN 'upstream_failed' WHEN skip > 0 THEN 'skipped'
                 WHEN pend > 0 THEN 'wait' ELSE 'run' END
        WHEN p_rule = 'all_done' THEN
            CASE WHEN pend > 0 THEN 'wait' ELSE 'run' END
        WHEN p_rule = 'one_failed' THEN
            CASE WHEN fail > 0 THEN 'run' WHEN pend > 0 THEN 'wait' ELSE 'skipped' END
        WHEN p_rule = 'all_failed' THEN
            CASE WHEN succ + skip > 0 THEN 'skipped' WHEN pend > 0 THEN 'wait' ELSE 'run' END
        WHEN p_rule = 'none_failed_min_one_success' THEN
            CASE WHEN fail > 0 THEN 'upstream_failed' WHEN pend > 0 THEN 'wait'
                 WHEN succ > 0 THEN 'run' ELSE 'skipped' END
        ELSE 'wait' END
$$;

-- What pending node run (p_run, p_node) does now.  Along each incoming edge
-- the upstream node run counts as:
--   succeeded: succeeded, or skipped as carried over by a rerun
--              (skip_propagates false), and for an edge labelled with a
--              branch value, only when the branch's result (rows: 1 true,
--              0 false, NULL unknown) equals the label; else skipped;
--   skipped:   skipped with skip_propagates (a path not taken);
--   failed:    failed, upstream_failed, canceled;
--   pending:   pending, running, retrying.
-- The finalizer waits until every other node run of the run is done.
CREATE OR REPLACE FUNCTION taskflow._fl_decide(p_run bigint, p_node bigint) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    nd record;
    c  record;
BEGIN
    SELECT x.flow_id, x.trigger_rule, x.finalizer INTO nd FROM taskflow.nodes x WHERE x.id = p_node;
    IF NOT FOUND THEN
        RETURN 'wait';
    END IF;
    IF nd.finalizer THEN
        RETURN CASE WHEN EXISTS (SELECT 1 FROM taskflow.node_runs o
                                  WHERE o.run_id = p_run AND o.node_id <> p_node
                                    AND o.state IN ('pending', 'running', 'retrying'))
                    THEN 'wait' ELSE 'run' END;
    END IF;
    SELECT count(*) AS n,
           count(*) FILTER (WHERE s = 'succeeded') AS succ,
           count(*) FILTER (WHERE s = 'skipped') AS skip,
           count(*) FILTER (WHERE s = 'failed') AS fail,
           count(*) FILTER (WHERE s = 'pending') AS pend
      INTO c
      FROM (SELECT CASE
                       WHEN up.state = 'succeeded' OR (up.state = 'skipped' AND NOT up.skip_propagates) THEN
                           CASE WHEN e.branch IS NOT NULL AND e.branch IS DISTINCT FROM (up.rows = 1)
                                THEN 'skipped' ELSE 'succeeded' END
                       WHEN up.state = 'skipped' THEN 'skipped'
                       WHEN up.state IN ('failed', 'upstream_failed', 'canceled') THEN 'failed'
                       ELSE 'pending' END AS s
              FROM taskflow.edges e
              JOIN taskflow.node_runs up ON up.run_id = p_run AND up.node_id = e.from_node
             WHERE e.flow_id = nd.flow_id AND e.to_node = p_node) x;
    RETURN taskflow._fl_rule(nd.trigger_rule, c.n, c.succ, c.skip, c.fail, c.pend);
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_decide(bigint, bigint) FROM PUBLIC;

-- The node runs that may start now as far as their upstream nodes go:
-- pending or retrying node runs of the running runs among p_runs whose
-- trigger rule says 'run' (one probe per run: the scheduler passes the runs
-- that changed, part 99_ready).  Set-based: the engine asks it once
-- per query (_sched_ready, _node_next_in_run: "nr.id IN (SELECT ...)"),
-- not once per node run.  An all_success node (the common case) is judged
-- inline: no upstream that did not succeed (a rerun's carried-over skip
-- counts as success) and no labelled edge whose label is not its branch's
-- result; the finalizer: no other node run of its run left to finish; the
-- other rules through _fl_decide.
CREATE OR REPLACE FUNCTION taskflow._fl_ready_ids_in(p_runs bigint[])
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- three queries, so that the planner can make the common one an anti-join
    RETURN QUERY
    -- (r.id = ANY: the plan cached for unknown arrays reads only the given
    -- runs; a join with unnest() read every running run and matched each
    -- against the array: 2 ms per call with 100 runs running, called per
    -- node by the warm workers; 1.7, issue 11)
    WITH x AS MATERIALIZED (
        SELECT nr.id, nr.run_id, nr.node_id, n.flow_id, n.trigger_rule, n.finalizer
          FROM taskflow.runs r
          CROSS JOIN LATERAL (SELECT y.id, y.run_id, y.node_id FROM taskflow.node_runs y
                               WHERE y.run_id = r.id AND y.state IN ('pending', 'retrying')
                              OFFSET 0) nr
          JOIN taskflow.nodes n ON n.id = nr.node_id
         WHERE r.id = ANY (p_runs) AND r.state = 'running')
    SELECT x.id FROM x
     WHERE x.trigger_rule = 'all_success' AND NOT x.finalizer
       AND NOT EXISTS (SELECT 1
                         FROM taskflow.edges e
                         JOIN taskflow.node_runs up
                           ON up.run_id = x.run_id AND up.node_id = e.from_node
                        WHERE e.flow_id = x.flow_id AND e.to_node = x.node_id
                          AND NOT ((up.state = 'succeeded'
                                    OR (up.state = 'skipped' AND NOT up.skip_propagates))
                                   AND (e.branch IS NULL
                                        OR e.branch IS NOT DISTINCT FROM (up.rows = 1))))
    UNION ALL
    SELECT x.id FROM x
     WHERE x.finalizer
       AND NOT EXISTS (SELECT 1 FROM taskflow.node_runs o
                        WHERE o.run_id = x.run_id AND o.node_id <> x.node_id
                          AND o.state IN ('pending', 'running', 'retrying'))
    UNION ALL
    SELECT x.id FROM x
     WHERE x.trigger_rule <> 'all_success' AND NOT x.finalizer
       AND taskflow._fl_decide(x.run_id, x.node_id) = 'run';
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_ready_ids_in(bigint[]) FROM PUBLIC;

-- The same for run p_run, or (NULL) for every running run.
CREATE OR REPLACE FUNCTION taskflow._fl_ready_ids(p_run bigint DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_run IS NOT NULL THEN
        RETURN QUERY SELECT taskflow._fl_ready_ids_in(ARRAY[p_run]);
    ELSE
        RETURN QUERY SELECT taskflow._fl_ready_ids_in(
            ARRAY(SELECT r.id FROM taskflow.runs r WHERE r.state = 'running'));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_ready_ids(bigint) FROM PUBLIC;

-- One round of settling the pending node runs of the running runs p_runs:
-- those whose rule says skipped or upstream_failed get that state.  The
-- number of node runs changed (_sched_advance_runs repeats until 0, so that
-- skips and failures propagate transitively).  Set-based for all_success
-- nodes (semi-joins, as in 1.1); only the node runs of other rules go
-- through _fl_decide.
CREATE OR REPLACE FUNCTION taskflow._fl_settle(p_runs bigint[]) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k integer;
BEGIN
    UPDATE taskflow.node_runs nr
       SET state = d.decision, finished_at = clock_timestamp(),
           skip_propagates = (d.decision = 'skipped'),
           message = CASE
               WHEN d.decision = 'upstream_failed' THEN 'an upstream node did not succeed'
               WHEN d.rule = 'all_success' THEN 'skipped: an upstream node was skipped (a branch took the other path)'
               WHEN d.rule = 'one_failed' THEN 'skipped: trigger rule one_failed not met (no upstream node failed)'
               WHEN d.rule = 'all_failed' THEN 'skipped: trigger rule all_failed not met (an upstream node succeeded or was skipped)'
               ELSE format('skipped: trigger rule %s not met (every upstream node was skipped)', d.rule) END
      FROM (WITH x AS MATERIALIZED (
                SELECT y.id, y.run_id, y.node_id, n.flow_id, n.trigger_rule
                  FROM taskflow.runs r
                  JOIN taskflow.node_runs y ON y.run_id = r.id AND y.state = 'pending'
                  JOIN taskflow.nodes n ON n.id = y.node_id
                 WHERE r.id = ANY (p_runs) AND r.state = 'running'
                   AND NOT n.finalizer)          -- (a finalizer only waits, then runs)
            -- all_success: an upstream failed ...
            SELECT x.id, x.trigger_rule AS rule, 'upstream_failed' AS decision FROM x
             WHERE x.trigger_rule = 'all_success'
               AND EXISTS (SELECT 1
                             FROM taskflow.edges e
                             JOIN taskflow.node_runs up
                               ON up.run_id = x.run_id AND up.node_id = e.from_node
                            WHERE e.flow_id = x.flow_id AND e.to_node = x.node_id
                              AND up.state IN ('failed', 'upstream_failed', 'canceled'))
            UNION ALL
            -- ... else one was not taken (skipped, or the branch chose the other label)
            SELECT x.id, x.trigger_rule, 'skipped' FROM x
             WHERE x.trigger_rule = 'all_success'
               AND EXISTS (SELECT 1
                             FROM taskflow.edges e
                             JOIN taskflow.node_runs up
                               ON up.run_id = x.run_id AND up.node_id = e.from_node
                            WHERE e.flow_id = x.flow_id AND e.to_node = x.node_id
                              AND ((up.state = 'skipped' AND up.skip_propagates)
                                   OR (e.branch IS NOT NULL
                                       AND up.state IN ('succeeded', 'skipped')
                                       AND e.branch IS DISTINCT FROM (up.rows = 1))))
               AND NOT EXISTS (SELECT 1
                                 FROM taskflow.edges e
                                 JOIN taskflow.node_runs up
                                   ON up.run_id = x.run_id AND up.node_id = e.from_node
                                WHERE e.flow_id = x.flow_id AND e.to_node = x.node_id
                                  AND up.state IN ('failed', 'upstream_failed', 'canceled'))
            UNION ALL
            -- the other rules
            SELECT x.id, x.trigger_rule, taskflow._fl_decide(x.run_id, x.node_id) FROM x
             WHERE x.trigger_rule <> 'all_success') d
     WHERE nr.id = d.id AND nr.state = 'pending'
       AND d.decision IN ('skipped', 'upstream_failed');
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_settle(bigint[]) FROM PUBLIC;

-- set_node_success let some nodes of run p_run run again: its finalizer,
-- which ran already, runs again after them.
CREATE OR REPLACE FUNCTION taskflow._fl_reopen_finalizer(p_run bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE taskflow.node_runs x
       SET state = 'pending', started_at = NULL, finished_at = NULL, not_before = NULL,
           message = 'runs again: a node of the run was marked succeeded'
      FROM taskflow.nodes n
     WHERE x.run_id = p_run AND n.id = x.node_id AND n.finalizer
       AND x.state IN ('succeeded', 'failed', 'upstream_failed', 'skipped');
END
$$;
REVOKE ALL ON FUNCTION taskflow._fl_reopen_finalizer(bigint) FROM PUBLIC;

------------------------------------------------------------------------------
-- definition checks (API and direct writes)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._fl_check_rule(p_node text, p_rule text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_rule IS NULL OR NOT p_rule = ANY (taskflow._fl_rules()) THEN
        RAISE EXCEPTION 'unknown trigger rule "%" for node "%"', p_rule, p_node
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Trigger rules are: ' || array_to_string(taskflow._fl_rules(), ', ') || '.';
    END IF;
    RETURN p_rule;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._fl_nodes_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    other text;
BEGIN
    PERFORM taskflow._fl_check_rule(NEW.name, NEW.trigger_rule);
    IF NEW.finalizer THEN
        IF NEW.trigger_rule <> 'all_success' THEN
            RAISE EXCEPTION 'node "%" is the finalizer: it takes no trigger rule', NEW.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A finalizer runs once every other node of the run is done, whatever happened; leave trigger_rule at its default.';
        END IF;
        IF TG_OP = 'UPDATE' AND EXISTS (SELECT 1 FROM taskflow.edges e
                                         WHERE e.flow_id = NEW.flow_id
                                           AND (e.from_node = NEW.id OR e.to_node = NEW.id)) THEN
            RAISE EXCEPTION 'node "%" has edges: it cannot be the finalizer', NEW.name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A finalizer has no upstream or downstream nodes (it follows every node); drop its edges (taskflow.drop_edge) first.';
        END IF;
        SELECT x.name INTO other FROM taskflow.nodes x
         WHERE x.flow_id = NEW.flow_id AND x.finalizer AND x.id IS DISTINCT FROM NEW.id;
        IF other IS NOT NULL THEN
            RAISE EXCEPTION 'flow already has a finalizer: node "%"', other
                USING ERRCODE = 'duplicate_object',
                      HINT = 'A flow has at most one finalizer; alter_node(..., finalizer => false) the other one first.';
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.kind = 'branch' AND NEW.kind IS DISTINCT FROM 'branch'
       AND EXISTS (SELECT 1 FROM taskflow.edges e
                    WHERE e.flow_id = NEW.flow_id AND e.from_node = NEW.id AND e.branch IS NOT NULL) THEN
        RAISE EXCEPTION 'node "%" has edges labelled with a branch value: it must stay a branch node', NEW.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Drop its labelled edges first.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER nodes_flowlogic BEFORE INSERT OR UPDATE ON taskflow.nodes
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._fl_nodes_check();

CREATE OR REPLACE FUNCTION taskflow._fl_edges_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a taskflow.nodes;
    b taskflow.nodes;
BEGIN
    SELECT * INTO a FROM taskflow.nodes x WHERE x.id = NEW.from_node;
    SELECT * INTO b FROM taskflow.nodes x WHERE x.id = NEW.to_node;
    IF a.finalizer OR b.finalizer THEN
        RAISE EXCEPTION 'node "%" is the finalizer of its flow: it has no edges',
                        CASE WHEN a.finalizer THEN a.name ELSE b.name END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A finalizer runs once every other node is done, whatever happened; use a node with trigger_rule => ''all_done'' to follow given nodes.';
    END IF;
    IF NEW.branch IS NOT NULL AND a.kind IS DISTINCT FROM 'branch' THEN
        RAISE EXCEPTION 'edge % -> % has a branch label, but "%" is a % node, not a branch node',
                        a.name, b.name, a.name, a.kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only edges out of a branch node carry branch => true or false.';
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER edges_flowlogic BEFORE INSERT OR UPDATE ON taskflow.edges
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._fl_edges_check();

-- Label the edge a -> b of flow f with p_branch (API: add_edge, add_node's
-- after).  An unlabelled edge out of a branch node is followed whatever the
-- result: allowed, with a WARNING, since it is usually a forgotten label.
CREATE OR REPLACE FUNCTION taskflow._fl_label_edge(f taskflow.flows, a text, b text, p_branch boolean)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    na taskflow.nodes;
    nb taskflow.nodes;
BEGIN
    SELECT * INTO na FROM taskflow.nodes x WHERE x.flow_id = f.id AND x.name = a;
    SELECT * INTO nb FROM taskflow.nodes x WHERE x.flow_id = f.id AND x.name = b;
    IF p_branch IS NOT NULL THEN
        UPDATE taskflow.edges e SET branch = p_branch
         WHERE e.flow_id = f.id AND e.from_node = na.id AND e.to_node = nb.id;
    ELSIF na.kind = 'branch' THEN
        RAISE WARNING 'edge % -> % out of branch node "%" has no branch label: it is followed whatever the result', a, b, a
            USING HINT = 'Give branch => true or branch => false to follow it only on that result.';
    END IF;
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

    IF cardinality(p_flows) > 0 THEN
        UPDATE taskflow.runs r
           SET state = 'running', started_at = clock_timestamp()
          FROM (SELECT s.id
                  FROM taskflow.flows f
                 CROSS JOIN LATERAL (SELECT count(*) AS n FROM taskflow.runs a
                                      WHERE a.flow_id = f.id
                                        AND a.state IN ('running', 'suspended')) a
                 CROSS JOIN LATERAL (SELECT s.id FROM taskflow.runs s
                                      WHERE s.flow_id = f.id AND s.state = 'scheduled'
                                      ORDER BY s.scheduled_for, s.id
                                      LIMIT greatest(f.max_active_runs - a.n, 0)) s
                 WHERE f.id = ANY (p_flows)) p
         WHERE r.id = p.id AND r.state = 'scheduled';
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
    ), own AS (
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

-- A warm worker that just finished a node run of run p_run_id: the next node
-- runs of that run ready to start (as _sched_ready judges it; lowest id
-- first, at most p_limit), not among p_exclude (node runs handed to a
-- worker).  The worker takes the first one no other worker claimed
-- meanwhile, when no scheduler waits for a worker slot for another owner,
-- and wakes the scheduler for the rest (worker.c).
CREATE OR REPLACE FUNCTION taskflow._node_next_in_run(p_run_id bigint, p_exclude bigint[],
                                           p_limit integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
-- (PL/pgSQL, plan cached per worker: as LANGUAGE sql with SET it was planned
-- again at every call, and it is called after every node; the ready ids
-- into an array first: as "IN (SELECT srf(...))" the planner may call the
-- function again for every row of the join; 1.7, issue 11)
DECLARE
    ready bigint[] := ARRAY(SELECT taskflow._fl_ready_ids_in(ARRAY[p_run_id]));  -- part 19
BEGIN
    IF cardinality(ready) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT nr.id
      FROM taskflow.node_runs nr
      JOIN taskflow.runs r ON r.id = nr.run_id AND r.state = 'running'
     WHERE nr.run_id = p_run_id
       AND (nr.state = 'pending'
            OR (nr.state = 'retrying' AND nr.not_before <= clock_timestamp()))
       AND nr.id <> ALL (coalesce(p_exclude, '{}'))
       AND nr.id = ANY (ready)                 -- trigger rules
     ORDER BY nr.id
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
-- taskflow extension script, part 25: run-and-wait in one call.
-- Owner: the engine (see docs/operations.md).
--
--   CALL taskflow.run('flow', bizdate => '2020-06-01');
--
-- run_flow() and wait_run() cannot share a transaction: a run starts only
-- once the transaction that created it commits.  This procedure creates the
-- run, COMMITs, waits, and raises an error naming the failed nodes when the
-- run fails or is canceled.  It must be called outside an explicit
-- transaction block (CALL at top level), as any procedure that commits.
--
-- A procedure that commits cannot pin search_path (SET clauses forbid
-- transaction control), so the procedure is C (src/run_call.c): it runs two
-- schema-qualified, exactly typed queries; waiting and the error report are
-- _run_outcome, which pins search_path.

-- The final state of a run after waiting up to 'timeout'; an ERROR when the
-- run failed or was canceled, with the failed nodes' errors as the DETAIL and
-- the first failed node's SQLSTATE (57014 for a cancel).
CREATE OR REPLACE FUNCTION taskflow._run_outcome(run_id bigint, timeout interval)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    st     text := taskflow.wait_run(run_id, timeout);
    fname  text;
    detail text;
    code   text;
BEGIN
    IF st NOT IN ('failed', 'canceled') THEN
        RETURN st;
    END IF;
    SELECT f.name INTO fname
      FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
     WHERE r.id = _run_outcome.run_id;
    SELECT string_agg(format('node "%s" %s%s', h.node, h.state,
                             CASE WHEN h.error IS NOT NULL
                                  THEN format(': %s%s', h.error,
                                              CASE WHEN h.sqlstate IS NOT NULL
                                                   THEN format(' (SQLSTATE %s)', h.sqlstate) END)
                             END), E'\n' ORDER BY h.node_run_id),
           (array_agg(h.sqlstate ORDER BY h.node_run_id)
                FILTER (WHERE h.state = 'failed' AND h.sqlstate ~ '^[0-9A-Z]{5}$'))[1]
      INTO detail, code
      FROM taskflow.node_run_history h
     WHERE h.run_id = _run_outcome.run_id
       AND h.state IN ('failed', 'upstream_failed', 'canceled');
    RAISE EXCEPTION 'run % of flow "%" %', run_id, fname, st
        USING ERRCODE = CASE WHEN st = 'canceled' THEN '57014' ELSE coalesce(code, 'P0001') END,
              DETAIL = coalesce(detail, 'no node failed; see the run''s message in taskflow.run_history'),
              HINT = format('SELECT node, state, error, log FROM taskflow.node_run_history WHERE run_id = %s;', run_id);
END
$$;

CREATE OR REPLACE PROCEDURE taskflow.run(flow text, bizdate date DEFAULT NULL,
                                         params jsonb DEFAULT '{}',
                                         wait boolean DEFAULT true,
                                         timeout interval DEFAULT '1 hour',
                                         INOUT run_id bigint DEFAULT NULL,
                                         INOUT state text DEFAULT NULL)
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_run_procedure';
COMMENT ON PROCEDURE taskflow.run(text, date, jsonb, boolean, interval, bigint, text) IS
    'start a run, commit, wait for it (wait => true) and raise if it fails; CALL at top level';
-- taskflow extension script, part 30: object storage (storage.c, s3.c).
-- Storage servers are foreign servers of the taskflow_storage wrapper:
--   CREATE SERVER archive FOREIGN DATA WRAPPER taskflow_storage
--       OPTIONS (url 's3://bucket/prefix', endpoint 'http://127.0.0.1:9000');
--   CREATE USER MAPPING FOR alice SERVER archive
--       OPTIONS (access_key_id '...', secret_access_key '...');
-- USAGE on the server is the permission to use it.  See docs/storage.md.

CREATE OR REPLACE FUNCTION taskflow._storage_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_storage_validator' LANGUAGE C STRICT;

-- read-only foreign tables over Hive-partitioned archives (storage_fdw.c)
CREATE OR REPLACE FUNCTION taskflow._storage_handler() RETURNS fdw_handler
    AS 'MODULE_PATHNAME', 'tf_storage_handler' LANGUAGE C STRICT;

CREATE OR REPLACE FUNCTION taskflow.list_objects(server text, prefix text DEFAULT '')
    RETURNS TABLE (key text, size bigint, last_modified timestamptz, etag text)
    AS 'MODULE_PATHNAME', 'tf_list_objects' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.list_objects(text, text) IS
    'objects under a key prefix of a storage server (needs USAGE on the server)';

CREATE OR REPLACE FUNCTION taskflow.put_object(server text, key text, data bytea) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_put_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.put_object(text, text, bytea) IS
    'write one object (streaming writer; multipart on S3 when large)';

CREATE OR REPLACE FUNCTION taskflow.get_object(server text, key text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tf_get_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.get_object(text, text) IS
    'read one object (at most 1 GB)';

CREATE OR REPLACE FUNCTION taskflow.delete_object(server text, key text) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_delete_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.delete_object(text, text) IS
    'delete one object (a missing object is not an error)';
-- taskflow extension script, part 40: export / import of query results to
-- object storage as CSV or CSV.gz parts (format.c, export.c).  See docs/archive.md.

CREATE OR REPLACE FUNCTION taskflow.export(query text, server text, path text,
                                format text DEFAULT 'csv', options jsonb DEFAULT '{}')
    RETURNS TABLE (objects integer, rows bigint, bytes bigint)
    AS 'MODULE_PATHNAME', 'tf_export_sql' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION taskflow.export(text, text, text, text, jsonb) IS
    'write the result of a query as part-NNNNN.csv[.gz] objects + _manifest.json + _SUCCESS under path';

CREATE OR REPLACE FUNCTION taskflow.import(server text, path text, target regclass,
                                format text DEFAULT 'csv')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'tf_import_sql' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION taskflow.import(text, text, regclass, text) IS
    'load every part under path (by _manifest.json if present), or the one object path names, into target through COPY FROM';
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
------------------------------------------------------------------------------
-- copy nodes (src/copy.c): book-keeping of the watermark of incremental copy
-- nodes, called by the node worker as the bootstrap superuser.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._copy_mark(p_node_id bigint)
RETURNS TABLE (mark text, mark_type text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT w.mark, w.mark_type FROM taskflow.copy_watermarks w WHERE w.node_id = p_node_id
$$;

CREATE OR REPLACE FUNCTION taskflow._copy_set_mark(p_node_id bigint, p_mark text, p_mark_type text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO taskflow.copy_watermarks AS w (node_id, mark, mark_type)
    VALUES (p_node_id, p_mark, p_mark_type)
    ON CONFLICT (node_id) DO UPDATE
       SET mark = EXCLUDED.mark, mark_type = EXCLUDED.mark_type, updated_at = pg_catalog.now()
$$;

REVOKE ALL ON FUNCTION
    taskflow._copy_mark(bigint),
    taskflow._copy_set_mark(bigint, text, text)
FROM PUBLIC;
-- taskflow extension script, part 90: run operations on a finished run's
-- nodes (replayable).  Owner: ops.  See docs/operations.md ("Run
-- operations").
--
-- set_node_success: a failed node of a failed run is marked succeeded by
-- hand, its downstream nodes that ended upstream_failed become pending
-- again, and the run goes back to running: the state change notes the run
-- in taskflow.sched_queue (trigger runs_sched, part 51), so the scheduler's
-- next pass continues it.  Through the gate like the other run operations
-- (taskflow._gate, src/gate.c): _op_set_node_success runs as superuser,
-- checks the caller's membership itself and is revoked from PUBLIC.
-- search_path is pinned.

CREATE OR REPLACE FUNCTION taskflow._op_set_node_success(caller regrole, args jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r    taskflow.runs := taskflow._op_run(caller, (args->>'run_id')::bigint);
    node text := args->>'node';
    nr   taskflow.node_runs;
    msg  text;
    n    integer;
BEGIN
    IF node IS NULL THEN
        RAISE EXCEPTION 'node name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- lock the run: a concurrent operation on it (another set_node_success,
    -- a rerun reading it, the scheduler finishing it) is seen after the lock
    SELECT * INTO r FROM taskflow.runs WHERE id = r.id FOR UPDATE;
    SELECT x.* INTO nr
      FROM taskflow.node_runs x JOIN taskflow.nodes d ON d.id = x.node_id
     WHERE x.run_id = r.id AND d.name = node
       FOR UPDATE OF x;
    IF nr.id IS NULL THEN
        RAISE EXCEPTION 'node "%" does not exist in run %', node, r.id
            USING ERRCODE = 'undefined_object',
                  HINT = 'Give the name of a node of that run (taskflow.node_run_history).';
    END IF;
    IF r.state <> 'failed' THEN
        RAISE EXCEPTION 'run % is %, not failed', r.id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN r.state IN ('scheduled', 'running')
                              THEN 'Wait for it to finish (taskflow.wait_run) first.'
                              ELSE 'Only a node of a failed run can be marked succeeded; start a new run (taskflow.rerun) instead.' END;
    END IF;
    IF nr.state <> 'failed' THEN
        RAISE EXCEPTION 'node "%" of run % is %, not failed', node, r.id, nr.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN nr.state = 'upstream_failed'
                              THEN 'Mark the failed node upstream of it succeeded instead: its downstream nodes then run.'
                              ELSE 'Only a failed node can be marked succeeded.' END;
    END IF;
    msg := format('marked succeeded by %s at %s', caller, clock_timestamp());
    UPDATE taskflow.node_runs
       SET state = 'succeeded', finished_at = clock_timestamp(),
           message = msg || coalesce(format(' (it failed: %s)', message), '')
     WHERE id = nr.id;
    -- downstream nodes that did not run because of it run now (the scheduler
    -- marks upstream_failed again those that have another failed upstream)
    WITH RECURSIVE d(id) AS (
        SELECT e.to_node FROM taskflow.edges e
         WHERE e.flow_id = r.flow_id AND e.from_node = nr.node_id
        UNION
        SELECT e.to_node FROM taskflow.edges e JOIN d ON e.from_node = d.id
         WHERE e.flow_id = r.flow_id)
    UPDATE taskflow.node_runs x
       SET state = 'pending', started_at = NULL, finished_at = NULL, message = NULL,
           not_before = NULL
      FROM d
     WHERE x.run_id = r.id AND x.node_id = d.id AND x.state = 'upstream_failed';
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM taskflow._fl_reopen_finalizer(r.id);   -- part 19_flowlogic
    END IF;
    UPDATE taskflow.runs
       SET state = 'running', finished_at = NULL,
           message = format('node "%s" %s', node, msg)
     WHERE id = r.id;
    PERFORM taskflow._wake();
    RETURN jsonb_build_object('pending', n);
END
$$;

REVOKE ALL ON FUNCTION taskflow._op_set_node_success(regrole, jsonb) FROM PUBLIC;

-- Mark a failed node of a failed run succeeded: its downstream nodes run and
-- the run continues.
CREATE OR REPLACE FUNCTION taskflow.set_node_success(run_id bigint, node text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    SELECT NULL::void
      FROM taskflow._gate('set_node_success', jsonb_build_object('run_id', $1, 'node', $2))
$$;

------------------------------------------------------------------------------
-- auto-suspend: a flow is disabled after N consecutive failed runs
------------------------------------------------------------------------------
-- flows.suspend_after_failures (part 90_ops.once) is N.  When a run ends
-- failed (the scheduler's transaction, or any other that marks a run
-- failed) and the flow's last N finished runs (succeeded or failed, by
-- period; canceled runs do not count) all failed, the flow is disabled with
-- flows.suspended_reason.  Enabling the flow (enable_flow, alter_flow
-- enabled => true) clears the reason and starts counting again from there.
-- The flow's row is locked NOWAIT: a user's transaction holding it must not
-- block the scheduler; then the flow is suspended at its next failed run
-- (logged).

CREATE OR REPLACE FUNCTION taskflow._check_suspend_after(n integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF n IS NOT NULL AND (n < 1 OR n > 1000) THEN
        RAISE EXCEPTION 'invalid suspend_after_failures: %', n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a number of consecutive failed runs from 1 to 1000, or 0 / NULL for never.';
    END IF;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._runs_suspend() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f      taskflow.flows;
    failed bigint;
BEGIN
    SELECT * INTO f FROM taskflow.flows WHERE id = NEW.flow_id;
    IF f.suspend_after_failures IS NULL OR NOT f.enabled THEN
        RETURN NULL;
    END IF;
    -- the last N finished runs since the flow was last enabled again
    SELECT count(*) FILTER (WHERE x.state = 'failed') INTO failed
      FROM (SELECT r.state FROM taskflow.runs r
             WHERE r.flow_id = f.id AND r.state IN ('succeeded', 'failed')
               AND r.finished_at >= coalesce(f.resumed_at, '-infinity')
             ORDER BY r.scheduled_for DESC, r.id DESC
             LIMIT f.suspend_after_failures) x;
    IF failed < f.suspend_after_failures THEN
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM 1 FROM taskflow.flows WHERE id = f.id FOR UPDATE NOWAIT;
        UPDATE taskflow.flows
           SET enabled = false,
               suspended_reason = format('suspended at %s after %s consecutive failed runs (the last: run %s)',
                                         clock_timestamp(), failed, NEW.id)
         WHERE id = f.id AND enabled;
        RAISE LOG 'taskflow: flow "%" suspended after % consecutive failed runs', f.name, failed;
    EXCEPTION WHEN lock_not_available THEN
        RAISE LOG 'taskflow: flow "%" is locked: not suspended now (after % failed runs)', f.name, failed;
    END;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER runs_suspend AFTER UPDATE OF state ON taskflow.runs
    FOR EACH ROW WHEN (NEW.state = 'failed' AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION taskflow._runs_suspend();

-- enabling a flow clears why it was suspended and restarts the count
CREATE OR REPLACE FUNCTION taskflow._flows_resume() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.enabled AND NOT OLD.enabled THEN
        NEW.suspended_reason := NULL;
        NEW.resumed_at := clock_timestamp();
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER flows_resume BEFORE UPDATE OF enabled ON taskflow.flows
    FOR EACH ROW WHEN (NEW.enabled AND NOT OLD.enabled)
    EXECUTE FUNCTION taskflow._flows_resume();

REVOKE ALL ON FUNCTION taskflow._runs_suspend(), taskflow._flows_resume() FROM PUBLIC;

------------------------------------------------------------------------------
-- flow_status (here, not in part 20: it shows columns of part 90_ops.once)
------------------------------------------------------------------------------

CREATE OR REPLACE VIEW taskflow.flow_status WITH (security_invoker = true) AS
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
           (SELECT x FROM taskflow._next_run_safe(f.schedule,
                                                  greatest(f.scheduled_until, f.created_at,
                                                           f.start_date - interval '1 microsecond',
                                                           taskflow._now()),
                                                  f.timezone) x
             WHERE f.end_date IS NULL OR x <= f.end_date)
       END AS next_run,
       f.schedule_error,
       f.suspend_after_failures,
       f.suspended_reason,
       (SELECT count(*) FROM taskflow.runs r
         WHERE r.flow_id = f.id AND r.state = 'suspended') AS suspended_runs
  FROM taskflow.flows f
  -- (named columns, not r.*: a column added to runs by a later once part
  -- would otherwise be in the updated view only)
  LEFT JOIN LATERAL (SELECT r.id, r.state, r.bizdate, r.finished_at FROM taskflow.runs r
                      WHERE r.flow_id = f.id ORDER BY r.id DESC LIMIT 1) lr ON true;

GRANT SELECT ON taskflow.flow_status TO PUBLIC;
-- taskflow extension script, part 91_outvars (replayable): output variables
-- of sql nodes and the check nodes' catalog side.
--
--   * output variables: a sql node's first result row becomes
--     ${node.column} for the nodes downstream of it (docs/variables.md,
--     "Output variables"): recorded by the worker (_node_outputs, in the
--     node's transaction), read for an attempt (_output_variables),
--     checked at definition (_check_node_outputs: the node exists and is
--     upstream), shown in node_run_history.outputs and by
--     render(..., run_id => ...);
--   * check nodes (src/node_check.c): _check_flow (the condition of a
--     check_flow node, run as the flow owner) and _validate_check_flow.

------------------------------------------------------------------------------
-- output variables
------------------------------------------------------------------------------

-- render() without a run: output variables stay as written (variables.c)
CREATE OR REPLACE FUNCTION taskflow._render_text_dry(template text, vars jsonb, what text DEFAULT 'template')
RETURNS text
LANGUAGE C STABLE
AS 'MODULE_PATHNAME', 'tf_render_text_dry';

-- Record the outputs of a node run (the worker, with its success record).
CREATE OR REPLACE FUNCTION taskflow._node_outputs(p_node_run_id bigint, p_outputs jsonb)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE taskflow.node_runs SET outputs = p_outputs
     WHERE id = p_node_run_id AND state = 'succeeded';
$$;
REVOKE ALL ON FUNCTION taskflow._node_outputs(bigint, jsonb) FROM PUBLIC;

-- The output variables a node of run p_run_id sees: {"up.column": value}
-- for every node upstream of it (transitively) whose node run in that run
-- succeeded, or was taken over from the rerun's old run ('skipped', with the
-- outputs copied), and recorded outputs.
CREATE OR REPLACE FUNCTION taskflow._output_variables(p_run_id bigint, p_node_id bigint)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE fl AS (SELECT n.flow_id FROM taskflow.nodes n WHERE n.id = p_node_id),
    up(id) AS (
        SELECT e.from_node FROM taskflow.edges e, fl
         WHERE e.flow_id = fl.flow_id AND e.to_node = p_node_id
        UNION
        SELECT e.from_node FROM taskflow.edges e JOIN up ON e.to_node = up.id, fl
         WHERE e.flow_id = fl.flow_id)
    SELECT coalesce(jsonb_object_agg(n.name || '.' || o.key, o.value), '{}')
      FROM up
      JOIN taskflow.nodes n ON n.id = up.id
      JOIN taskflow.node_runs nr ON nr.run_id = p_run_id AND nr.node_id = up.id
                                AND nr.state IN ('succeeded', 'skipped')
                                AND nr.outputs IS NOT NULL
      CROSS JOIN LATERAL jsonb_each(nr.outputs) o
$$;

-- The output variable references (node.column) of a template.
CREATE OR REPLACE FUNCTION taskflow._output_refs(template text)
RETURNS TABLE (ref text, node text, col text)
LANGUAGE sql IMMUTABLE ROWS 3
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v, split_part(v, '.', 1), split_part(v, '.', 2)
      FROM taskflow._template_vars(template) v
     WHERE strpos(v, '.') > 0
$$;

-- Check the output variable references of a node of flow f: each names
-- another node of the flow that is upstream of it (with p_node_id; without,
-- when the node's edges are not known yet, only that the node exists).
-- culprit NULL: the node itself is being defined (22023); else the change
-- that would break the references of this other node (2BP01).
CREATE OR REPLACE FUNCTION taskflow._check_node_outputs(f taskflow.flows, p_node_id bigint,
                                                        node text, body text, options jsonb,
                                                        culprit text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t        record;
    r        record;
    need     text[] := '{}';
    frontier bigint[];
    seen     bigint[];
    nxt      bigint[];
    names    text;
BEGIN
    -- most nodes use no output variables: a cheap test first
    IF coalesce(body, '') || coalesce(options::text, '') !~ E'\\$\\{[A-Za-z_][A-Za-z0-9_-]*\\.' THEN
        RETURN;
    END IF;
    -- (one template at a time: a join of the two set-returning functions
    -- is estimated at a million rows, which would start JIT compilation)
    FOR t IN SELECT * FROM taskflow._node_templates(node, body, options) LOOP
    FOR r IN SELECT t.what, o.ref, o.node AS up
               FROM taskflow._output_refs(t.template) o ORDER BY o.ref LOOP
        IF r.up = node THEN
            RAISE EXCEPTION 'node "%" cannot use its own output ${%} in %', node, r.ref, r.what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Output variables reach the nodes downstream of the node that made them.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM taskflow.nodes n WHERE n.flow_id = f.id AND n.name = r.up) THEN
            SELECT string_agg(n.name, ', ' ORDER BY n.name) INTO names
              FROM taskflow.nodes n WHERE n.flow_id = f.id AND (culprit IS NOT NULL OR n.name <> node);
            RAISE EXCEPTION '%unknown node "%" in output variable ${%} in %',
                            CASE WHEN culprit IS NULL THEN '' ELSE culprit || ' would leave an ' END,
                            r.up, r.ref, r.what
                USING ERRCODE = CASE WHEN culprit IS NULL THEN 'invalid_parameter_value'
                                     ELSE 'dependent_objects_still_exist' END,
                      DETAIL = format('Nodes of flow "%s": %s.', f.name, coalesce(names, '(none)')),
                      HINT = CASE WHEN culprit IS NULL
                                  THEN 'Write ${node.column} with the name of an upstream node.'
                                  ELSE format('Change or drop node "%s" first (taskflow.alter_node / taskflow.drop_node).', node) END;
        END IF;
        IF r.up <> ALL (need) THEN
            need := need || r.up;
        END IF;
    END LOOP;
    END LOOP;
    IF p_node_id IS NULL OR cardinality(need) = 0 THEN
        RETURN;
    END IF;

    -- upward from the node, level by level, until every referenced node is
    -- found (edges (flow_id, to_node) index)
    frontier := ARRAY[p_node_id];
    seen := frontier;
    WHILE cardinality(need) > 0 AND cardinality(frontier) > 0 LOOP
        SELECT array_agg(DISTINCT e.from_node) INTO nxt
          FROM taskflow.edges e
         WHERE e.flow_id = f.id AND e.to_node = ANY (frontier) AND e.from_node <> ALL (seen);
        EXIT WHEN nxt IS NULL;
        seen := seen || nxt;
        need := ARRAY(SELECT x FROM unnest(need) x
                       WHERE x NOT IN (SELECT n.name FROM taskflow.nodes n WHERE n.id = ANY (nxt)));
        frontier := nxt;
    END LOOP;

    FOR t IN SELECT * FROM taskflow._node_templates(node, body, options) LOOP
    FOR r IN SELECT t.what, o.ref, o.node AS up
               FROM taskflow._output_refs(t.template) o
              WHERE o.node = ANY (need) ORDER BY o.ref LOOP
        IF culprit IS NULL THEN
            RAISE EXCEPTION 'node "%" is not upstream of node "%": ${%} in %', r.up, node, r.ref, r.what
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'A node sees the outputs of the nodes it depends on (directly or through other nodes).',
                      HINT = format('Add the edge first: taskflow.add_edge(%L, %L, %L), or add_node(..., after => ARRAY[%L]).',
                                    f.name, r.up, node, r.up);
        ELSE
            RAISE EXCEPTION '% would leave ${%} in % without its upstream node "%"', culprit, r.ref, r.what, r.up
                USING ERRCODE = 'dependent_objects_still_exist',
                      DETAIL = format('Node "%s" would no longer depend on node "%s".', node, r.up),
                      HINT = format('Change node "%s" first (taskflow.alter_node), or keep a path from "%s" to it.', node, r.up);
        END IF;
    END LOOP;
    END LOOP;
END
$$;

-- After a change to flow f that can take upstream nodes away (drop_edge,
-- drop_node, a renamed node): check the nodes that use output variables
-- (of node 'of' only, when given); culprit words the change.
CREATE OR REPLACE FUNCTION taskflow._check_flow_outputs(f taskflow.flows, culprit text, of text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n taskflow.nodes;
BEGIN
    FOR n IN SELECT * FROM taskflow.nodes x
              WHERE x.flow_id = f.id
                AND (coalesce(x.body, '') || x.options::text)
                    ~ CASE WHEN of IS NULL THEN E'\\$\\{[A-Za-z_][A-Za-z0-9_-]*\\.'
                           ELSE E'\\$\\{' || regexp_replace(of, '([^A-Za-z0-9_])', E'\\\\\\1', 'g') || E'\\.' END
              ORDER BY x.name LOOP
        PERFORM taskflow._check_node_outputs(f, n.id, n.name, n.body, n.options, culprit);
    END LOOP;
END
$$;

------------------------------------------------------------------------------
-- check nodes (src/node_check.c)
------------------------------------------------------------------------------

-- The condition of a check_flow node: has a run of flow 'flow' for bizdate
-- succeeded?  Runs as the flow owner (SECURITY INVOKER): row level security
-- hides the flows the owner may not see, and those look exactly like flows
-- that do not exist.
CREATE OR REPLACE FUNCTION taskflow._check_flow(flow text, bizdate date) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fid bigint;
BEGIN
    SELECT x.id INTO fid FROM taskflow.flows x WHERE x.name = _check_flow.flow;
    IF fid IS NULL THEN
        RAISE EXCEPTION 'flow "%" does not exist', _check_flow.flow
            USING ERRCODE = 'undefined_object',
                  HINT = 'Either there is no such flow or the owner of this flow is not a member of its owner.';
    END IF;
    RETURN EXISTS (SELECT 1 FROM taskflow.runs r
                    WHERE r.flow_id = fid AND r.bizdate = _check_flow.bizdate
                      AND r.state = 'succeeded');
END
$$;

-- Definition of a check_flow node of flow f: the flow it waits for exists
-- and its owner may see it (as _check_flow will see it at run time).
CREATE OR REPLACE FUNCTION taskflow._validate_check_flow(f taskflow.flows, node text, body text, o jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF o->>'flow' = f.name THEN
        RAISE EXCEPTION 'check_flow node "%" waits for its own flow "%"', node, f.name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A run cannot wait for a run of its own flow to succeed; name another flow.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM taskflow.flows y
                    WHERE y.name = o->>'flow'
                      AND pg_has_role(f.owner, y.owner, 'MEMBER')) THEN
        RAISE EXCEPTION 'flow "%" does not exist', o->>'flow'
            USING ERRCODE = 'undefined_object',
                  HINT = 'Either there is no such flow or the owner of this flow is not a member of its owner.';
    END IF;
END
$$;

------------------------------------------------------------------------------
-- history: node_run_history (defined here, after part 91_outvars.once adds
-- node_runs.outputs, its last column)
------------------------------------------------------------------------------

CREATE OR REPLACE VIEW taskflow.node_run_history WITH (security_invoker = true) AS
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
       nr.worker_pid,
       nr.outputs
  FROM taskflow.node_runs nr
  JOIN taskflow.runs r ON r.id = nr.run_id
  JOIN taskflow.flows f ON f.id = r.flow_id
  JOIN taskflow.nodes n ON n.id = nr.node_id;
GRANT SELECT ON taskflow.node_run_history TO PUBLIC;

------------------------------------------------------------------------------
-- the catalog guard for output variables (direct DELETE/UPDATE)
------------------------------------------------------------------------------

-- Users may DELETE edges and nodes and UPDATE edges and node names
-- directly (part 00 grants); after such a write, the nodes of the flow that
-- use output variables must still name upstream nodes, as after drop_edge,
-- drop_node and alter_node(new_name => ...).  Superusers are trusted (part
-- 15); rows deleted with their flow (drop_flow) or edges deleted with their
-- node (drop_node: the node's own check covers them) are skipped.
CREATE OR REPLACE FUNCTION taskflow._outputs_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows;
    a text;
    b text;
BEGIN
    IF taskflow._guard_trusted() THEN
        RETURN NULL;
    END IF;
    SELECT * INTO f FROM taskflow.flows x WHERE x.id = OLD.flow_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'edges' THEN
        SELECT n.name INTO a FROM taskflow.nodes n WHERE n.id = OLD.from_node;
        SELECT n.name INTO b FROM taskflow.nodes n WHERE n.id = OLD.to_node;
        IF a IS NOT NULL AND b IS NOT NULL THEN
            PERFORM taskflow._check_flow_outputs(f, format('dropping edge %s -> %s', a, b));
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM taskflow._check_flow_outputs(f, format('dropping node "%s"', OLD.name), OLD.name);
    ELSIF NEW.name IS DISTINCT FROM OLD.name THEN
        PERFORM taskflow._check_flow_outputs(f, format('renaming node "%s" to "%s"', OLD.name, NEW.name),
                                             OLD.name);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER edges_outputs_guard AFTER DELETE OR UPDATE ON taskflow.edges
    FOR EACH ROW EXECUTE FUNCTION taskflow._outputs_guard();
CREATE OR REPLACE TRIGGER nodes_outputs_guard AFTER DELETE OR UPDATE OF name ON taskflow.nodes
    FOR EACH ROW EXECUTE FUNCTION taskflow._outputs_guard();
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
-- taskflow extension script, part 94: the definition history (replayable).
-- Owner: defhist.  Catalog: part 94_defhist.once.sql; the trigger's C half:
-- src/defhist.c.  See docs/operations.md ("Definition history").
--
-- Every change to a flow (its settings), node, edge or variable — through
-- the API or through direct DML the catalog guard allows — is recorded by
-- the AFTER ROW triggers *_defhist below: one definition_changes row with
-- the object's image before and after, who (session_user and the current
-- user) and when.  The changes one transaction makes to one flow share one
-- version: the first change of a transaction to a flow adds a flow_versions
-- row (version + 1), the later ones reuse it.  Images hold what users
-- define: engine-owned columns (ids, created_at, updated_at, the
-- scheduler's and auto-suspend's columns, the parsed variable columns) are
-- left out, and an UPDATE that changes only those records nothing (the
-- triggers' WHEN clauses and _defhist_row keep the same lists of columns).  A run records the
-- version it was created from (runs.flow_version, set by _create_run).
-- A dropped flow's history is deleted with it, like its runs; history is
-- otherwise kept (taskflow.history_retention applies to runs only).
--
-- Reading: flow_versions(flow), flow_definition(flow, version),
-- flow_diff(flow, from_version, to_version), SECURITY INVOKER under row
-- level security (a stranger sees no history and gets "does not exist").

CREATE OR REPLACE FUNCTION taskflow._defhist_caller() RETURNS regrole
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'tf_defhist_caller';

CREATE OR REPLACE FUNCTION taskflow._defhist_trigger() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_defhist_trigger';

-- The trigger body, called by taskflow._defhist_trigger() (C) as the
-- bootstrap superuser with the changing role in taskflow._defhist_caller().
CREATE OR REPLACE FUNCTION taskflow._defhist_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind  text;
    ro    jsonb;
    rn    jsonb;
    io    jsonb;
    inew  jsonb;
    ko    text;
    kn    text;
    fid   bigint;
    v     integer;
    vx    xid8;
    me    xid8;
    who   name;
    drop_keys text[];
BEGIN
    -- What users define of each kind: the row without these columns (keep in
    -- step with the WHEN clauses of the *_defhist_upd triggers below; a SQL
    -- helper would be planned anew in every transaction: this is inline)
    CASE TG_TABLE_NAME
    WHEN 'flows' THEN
        kind := 'flow';
        drop_keys := '{id,created_at,updated_at,scheduled_until,next_due,schedule_error,suspended_reason,resumed_at}';
    WHEN 'nodes' THEN
        kind := 'node';
        drop_keys := '{id,flow_id,created_at,updated_at}';
    WHEN 'edges' THEN
        kind := 'edge';
        drop_keys := '{flow_id}';
    ELSE
        kind := 'variable';
        drop_keys := '{flow_id,pattern,base,shift}';
    END CASE;
    IF TG_OP <> 'INSERT' THEN
        ro := to_jsonb(OLD);
        io := ro - drop_keys;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        rn := to_jsonb(NEW);
        inew := rn - drop_keys;
    END IF;
    IF io IS NOT DISTINCT FROM inew THEN
        RETURN NULL;
    END IF;
    CASE kind
    WHEN 'flow' THEN
        fid := (rn->>'id')::bigint;
        ko := 'flow';
        kn := 'flow';
    WHEN 'node' THEN
        fid := (coalesce(rn, ro)->>'flow_id')::bigint;
        ko := ro->>'id';
        kn := rn->>'id';
    WHEN 'edge' THEN
        fid := (coalesce(rn, ro)->>'flow_id')::bigint;
        ko := (ro->>'from_node') || '>' || (ro->>'to_node');
        kn := (rn->>'from_node') || '>' || (rn->>'to_node');
    ELSE
        fid := (coalesce(rn, ro)->>'flow_id')::bigint;
        ko := ro->>'name';
        kn := rn->>'name';
    END CASE;
    me := pg_current_xact_id();
    who := coalesce(pg_get_userbyid(taskflow._defhist_caller()::oid), current_user);
    SELECT x.version, x.xid INTO v, vx
      FROM taskflow.flow_versions x WHERE x.flow_id = fid ORDER BY x.version DESC LIMIT 1;
    IF vx IS DISTINCT FROM me THEN
        -- the first change of this transaction to the flow: a new version
        -- (the row lock serializes concurrent writers of one flow)
        PERFORM 1 FROM taskflow.flows f WHERE f.id = fid FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;        -- the flow is being dropped: its history goes with it
        END IF;
        SELECT x.version INTO v
          FROM taskflow.flow_versions x WHERE x.flow_id = fid ORDER BY x.version DESC LIMIT 1;
        v := coalesce(v, 0) + 1;
        INSERT INTO taskflow.flow_versions (flow_id, version, changed_at, session_role, changed_by, xid)
        VALUES (fid, v, now(), session_user, who, me);
    END IF;
    IF TG_OP = 'UPDATE' AND ko <> kn THEN
        -- a renamed variable, a moved edge: the old object goes, a new one comes
        INSERT INTO taskflow.definition_changes
               (flow_id, version, kind, op, object_key, old, new, session_role, changed_by)
        VALUES (fid, v, kind, 'delete', ko, io, NULL, session_user, who),
               (fid, v, kind, 'insert', kn, NULL, inew, session_user, who);
    ELSE
        INSERT INTO taskflow.definition_changes
               (flow_id, version, kind, op, object_key, old, new, session_role, changed_by)
        VALUES (fid, v, kind, lower(TG_OP), coalesce(kn, ko), io, inew, session_user, who);
    END IF;
    RETURN NULL;
END
$$;

-- (a flow's DELETE is not recorded: its history is deleted with it)
CREATE OR REPLACE TRIGGER flows_defhist AFTER INSERT ON taskflow.flows
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER flows_defhist_upd AFTER UPDATE ON taskflow.flows
    FOR EACH ROW
    WHEN ((pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) '{id,created_at,updated_at,scheduled_until,next_due,schedule_error,suspended_reason,resumed_at}'::pg_catalog.text[])
          IS DISTINCT FROM
          (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) '{id,created_at,updated_at,scheduled_until,next_due,schedule_error,suspended_reason,resumed_at}'::pg_catalog.text[]))
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER nodes_defhist AFTER INSERT OR DELETE ON taskflow.nodes
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER nodes_defhist_upd AFTER UPDATE ON taskflow.nodes
    FOR EACH ROW
    WHEN ((pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) '{updated_at}'::pg_catalog.text[])
          IS DISTINCT FROM (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) '{updated_at}'::pg_catalog.text[]))
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER edges_defhist AFTER INSERT OR DELETE ON taskflow.edges
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER edges_defhist_upd AFTER UPDATE ON taskflow.edges
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER variables_defhist AFTER INSERT OR DELETE ON taskflow.variables
    FOR EACH ROW EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER variables_defhist_upd AFTER UPDATE ON taskflow.variables
    FOR EACH ROW
    WHEN ((OLD.name, OLD.definition, OLD.is_constant) IS DISTINCT FROM (NEW.name, NEW.definition, NEW.is_constant)
          OR (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) '{pattern,base,shift}'::pg_catalog.text[])
             IS DISTINCT FROM (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) '{pattern,base,shift}'::pg_catalog.text[]))
    EXECUTE FUNCTION taskflow._defhist_trigger();

REVOKE ALL ON FUNCTION taskflow._defhist_caller(), taskflow._defhist_trigger(),
                       taskflow._defhist_row() FROM PUBLIC;

------------------------------------------------------------------------------
-- reading the history
------------------------------------------------------------------------------

-- The flow's current version (0: no history, e.g. nothing recorded yet).
CREATE OR REPLACE FUNCTION taskflow._defhist_current(fid bigint) RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(v.version), 0) FROM taskflow.flow_versions v WHERE v.flow_id = fid
$$;

-- Every object of a flow as it was at version ver: kind, key, name, image.
-- Edges are named "from -> to" by their nodes' names at that version.
CREATE OR REPLACE FUNCTION taskflow._defhist_state(fid bigint, ver integer)
RETURNS TABLE (kind text, object_key text, object text, image jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    WITH last AS (
        SELECT DISTINCT ON (c.kind, c.object_key) c.kind, c.object_key, c.new
          FROM taskflow.definition_changes c
         WHERE c.flow_id = fid AND c.version <= ver
         ORDER BY c.kind, c.object_key, c.version DESC, c.id DESC
    ), live AS (
        SELECT * FROM last WHERE new IS NOT NULL
    )
    SELECT l.kind, l.object_key,
           CASE l.kind WHEN 'edge' THEN e.src || ' -> ' || e.dst ELSE l.new->>'name' END,
           CASE l.kind WHEN 'edge'
                THEN (l.new - '{from_node,to_node}'::text[]) || jsonb_build_object('from', e.src, 'to', e.dst)
                ELSE l.new END
      FROM live l
      LEFT JOIN LATERAL (
          SELECT coalesce((SELECT a.new->>'name' FROM live a
                            WHERE a.kind = 'node' AND a.object_key = l.new->>'from_node'),
                          '#' || (l.new->>'from_node')) AS src,
                 coalesce((SELECT b.new->>'name' FROM live b
                            WHERE b.kind = 'node' AND b.object_key = l.new->>'to_node'),
                          '#' || (l.new->>'to_node')) AS dst
           WHERE l.kind = 'edge') e ON true
$$;

-- a version of flow f, checked (NULL: the current one)
CREATE OR REPLACE FUNCTION taskflow._defhist_version(f taskflow.flows, ver integer, what text,
                                                     zero_ok boolean)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur    integer := taskflow._defhist_current(f.id);
    lowest integer := CASE WHEN zero_ok THEN 0 ELSE 1 END;
BEGIN
    IF ver IS NULL THEN
        RETURN cur;
    END IF;
    IF ver > cur OR ver < lowest THEN
        RAISE EXCEPTION '% % of flow "%" does not exist', what, ver, f.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('Flow "%s" has versions 1 to %s.', f.name, cur),
                  HINT = CASE WHEN zero_ok THEN 'Version 0 is the empty flow; see taskflow.flow_versions().'
                              ELSE 'See taskflow.flow_versions().' END;
    END IF;
    RETURN ver;
END
$$;

-- An edge's 'from_id>to_id' as "from -> to", by the nodes' last names up to
-- version ver.
CREATE OR REPLACE FUNCTION taskflow._defhist_edge_name(fid bigint, edge_key text, ver integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(coalesce((SELECT coalesce(c.new->>'name', c.old->>'name')
                                  FROM taskflow.definition_changes c
                                 WHERE c.flow_id = fid AND c.kind = 'node' AND c.object_key = k.id
                                   AND c.version <= ver
                                 ORDER BY c.version DESC, c.id DESC LIMIT 1),
                               '#' || k.id), ' -> ' ORDER BY k.n)
      FROM unnest(string_to_array(edge_key, '>')) WITH ORDINALITY AS k(id, n)
$$;

-- One row per version of a flow: when, who, and what changed.
CREATE OR REPLACE FUNCTION taskflow.flow_versions(flow text)
RETURNS TABLE (version integer, changed_at timestamptz, session_role name, changed_by name,
               changes bigint, summary text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.version, v.changed_at, v.session_role, v.changed_by,
           (SELECT count(*) FROM taskflow.definition_changes c
             WHERE c.flow_id = v.flow_id AND c.version = v.version),
           (SELECT string_agg(format('%s %s %s',
                                     CASE c.op WHEN 'insert' THEN 'added' WHEN 'delete' THEN 'removed'
                                               ELSE 'changed' END,
                                     c.kind,
                                     CASE c.kind WHEN 'edge' THEN taskflow._defhist_edge_name(c.flow_id, c.object_key, c.version)
                                                 ELSE coalesce(c.new->>'name', c.old->>'name') END),
                              ', ' ORDER BY c.id)
              FROM taskflow.definition_changes c
             WHERE c.flow_id = v.flow_id AND c.version = v.version)
      FROM taskflow.flow_versions v
     WHERE v.flow_id = (taskflow._flow(flow)).id
     ORDER BY v.version
$$;

-- The whole definition of a flow at a version (default: the current one) as
-- jsonb: {"version", "flow": settings, "nodes": {name: ...},
-- "edges": [{"from", "to"}], "variables": {name: ...}}.
CREATE OR REPLACE FUNCTION taskflow.flow_definition(flow text, version integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow(flow);
    v integer := taskflow._defhist_version(f, version, 'version', false);
BEGIN
    RETURN (
        WITH s AS (SELECT * FROM taskflow._defhist_state(f.id, v))
        SELECT jsonb_build_object(
            'version', v,
            'flow', (SELECT s.image FROM s WHERE s.kind = 'flow'),
            'nodes', coalesce((SELECT jsonb_object_agg(s.object, s.image - 'name' ORDER BY s.object)
                                 FROM s WHERE s.kind = 'node'), '{}'),
            'edges', coalesce((SELECT jsonb_agg(s.image ORDER BY s.object)
                                 FROM s WHERE s.kind = 'edge'), '[]'),
            'variables', coalesce((SELECT jsonb_object_agg(s.object, s.image - 'name' ORDER BY s.object)
                                     FROM s WHERE s.kind = 'variable'), '{}')));
END
$$;

-- The differences between two versions of a flow (default to_version: the
-- current one; from_version 0 is the empty flow), one row per added or
-- removed object and per changed field of a changed object.
CREATE OR REPLACE FUNCTION taskflow.flow_diff(flow text, from_version integer,
                                              to_version integer DEFAULT NULL)
RETURNS TABLE (kind text, object text, change text, field text, old_value jsonb, new_value jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    f  taskflow.flows := taskflow._flow(flow);
    v1 integer;
    v2 integer;
BEGIN
    IF from_version IS NULL THEN
        RAISE EXCEPTION 'from_version must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'See taskflow.flow_versions(); 0 is the empty flow.';
    END IF;
    v1 := taskflow._defhist_version(f, from_version, 'from_version', true);
    v2 := taskflow._defhist_version(f, to_version, 'to_version', true);
    RETURN QUERY
    SELECT d.* FROM (
    WITH a AS (SELECT * FROM taskflow._defhist_state(f.id, v1)),
         b AS (SELECT * FROM taskflow._defhist_state(f.id, v2)),
         j AS (SELECT coalesce(b.kind, a.kind) AS kind, coalesce(b.object, a.object) AS object,
                      a.image AS o, b.image AS n
                 FROM a FULL JOIN b ON a.kind = b.kind AND a.object_key = b.object_key)
    SELECT j.kind, j.object, 'added', NULL::text, NULL::jsonb, j.n FROM j WHERE j.o IS NULL
    UNION ALL
    SELECT j.kind, j.object, 'removed', NULL, j.o, NULL FROM j WHERE j.n IS NULL
    UNION ALL
    SELECT j.kind, j.object, 'changed', k.key, j.o->k.key, j.n->k.key
      FROM j, LATERAL (SELECT x FROM jsonb_object_keys(j.o) x
                       UNION SELECT y FROM jsonb_object_keys(j.n) y) AS k(key)
     WHERE j.o IS NOT NULL AND j.n IS NOT NULL AND (j.o->k.key) IS DISTINCT FROM (j.n->k.key)
    ) AS d (kind, object, change, field, old_value, new_value)
    ORDER BY array_position(ARRAY['flow', 'variable', 'node', 'edge'], d.kind), d.object,
             d.change, d.field;
END
$$;
-- taskflow extension script, part 94: more flow templates and the users' own
-- (replayable).  Owner: defhist.  Hooks in part 10: templates() appends
-- _templates_more(), _create_flow_from_template() hands templates it does
-- not know to _create_flow_more(), creates the flow with owner
-- _template_owner(template) (the owner of a user's template, else the
-- caller), and purge_older_than with batch_size to _template_purge_batched.
-- Parameters are checked by _create_flow_from_template (unknown, missing,
-- types, defaults) before anything here runs.  See docs/reference.md
-- ("Templates") and docs/security.md ("Users' templates").
--
-- Generated SQL qualifies its operators, functions and types (it runs as the
-- flow owner under the owner's search_path); tables are resolved on the
-- caller's search_path (C lookup only, _regclass_in) and stored qualified.

CREATE OR REPLACE FUNCTION taskflow._tpl_param(required boolean, dflt jsonb, descr text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN required THEN jsonb_build_object('required', true, 'description', descr)
                ELSE jsonb_build_object('required', false, 'default', dflt, 'description', descr) END
$$;

-- the parameters every template has
CREATE OR REPLACE FUNCTION taskflow._tpl_common(schedule text, timezone text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'schedule', taskflow._tpl_param(false, to_jsonb(schedule), 'when to run; '''' for manual only'),
        'timezone', taskflow._tpl_param(false, to_jsonb(timezone), 'time zone of the schedule; default: the current TimeZone'),
        'enabled', taskflow._tpl_param(false, 'true', 'create the flow enabled'))
$$;

CREATE OR REPLACE FUNCTION taskflow._templates_more()
RETURNS TABLE (name text, description text, parameters jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    VALUES
    ('maintain_tables',
     'Every day, VACUUM (ANALYZE) — or only ANALYZE — a list of tables (one sql node "maintain", '
     'autocommit mode: each table in a transaction of its own).',
     jsonb_build_object(
        'tables', taskflow._tpl_param(true, NULL, 'tables, comma-separated (may be schema-qualified)'),
        'vacuum', taskflow._tpl_param(false, 'true', 'VACUUM (ANALYZE) the tables; false: only ANALYZE')
     ) || taskflow._tpl_common('30 3 * * *')),
    ('refresh_matviews',
     'Every day, refresh materialized views in dependency order: one sql node per view, an edge '
     'from each view to the views that read it (also through plain views); CONCURRENTLY when the '
     'view has a unique index and is populated.',
     jsonb_build_object(
        'views', taskflow._tpl_param(false, NULL, 'materialized views, comma-separated (or: schema)'),
        'schema', taskflow._tpl_param(false, NULL, 'every materialized view of this schema (or: views)')
     ) || taskflow._tpl_common('0 4 * * *')),
    ('rollup_daily_users',
     'Every day, count the distinct users and the rows of a table for bizdate into a summary '
     'table (bizdate, unique_users, events), replacing that day''s row: idempotent per bizdate.',
     jsonb_build_object(
        'table', taskflow._tpl_param(true, NULL, 'table of events (may be schema-qualified)'),
        'time_column', taskflow._tpl_param(true, NULL, 'date or timestamp column; a day is [bizdate, bizdate + 1)'),
        'user_column', taskflow._tpl_param(true, NULL, 'column identifying the user'),
        'target', taskflow._tpl_param(false, NULL, 'summary table; created when missing; default: <table>_daily_users beside the table')
     ) || taskflow._tpl_common('15 0 * * *'))
    UNION ALL
    SELECT u.name, u.description,
           u.parameters || taskflow._tpl_common(coalesce(u.definition->>'schedule', ''),
                                                u.definition->>'timezone')
      FROM taskflow.user_templates u
$$;

-- The owner of a user's template (the flows made from it are its), else NULL.
CREATE OR REPLACE FUNCTION taskflow._template_owner(template text) RETURNS regrole
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.owner FROM taskflow.user_templates u WHERE u.name = template
$$;

-- A comma-separated list of relations, resolved on the caller's search_path,
-- of the given relkinds: their oids (in list order, no duplicates).
CREATE OR REPLACE FUNCTION taskflow._template_rels(template text, param text, list text,
                                                   caller_search_path text, kinds text, what text)
RETURNS oid[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    item text;
    rel  regclass;
    res  oid[] := '{}';
BEGIN
    FOREACH item IN ARRAY string_to_array(list, ',') LOOP
        item := btrim(item);
        CONTINUE WHEN item = '';
        rel := taskflow._regclass_in(item, caller_search_path);
        IF rel IS NULL THEN
            RAISE EXCEPTION 'relation "%" does not exist', item
                USING ERRCODE = 'undefined_table',
                      HINT = format('Parameter "%s" of template "%s" lists existing %s, comma-separated '
                                    '(schema-qualified if not on your search_path).', param, template, what);
        END IF;
        IF (SELECT c.relkind::text FROM pg_class c WHERE c.oid = rel) <> ALL (string_to_array(kinds, ',')) THEN
            RAISE EXCEPTION '"%" is not one of the % that parameter "%" of template "%" lists', item, what, param, template
                USING ERRCODE = 'wrong_object_type',
                      HINT = format('Parameter "%s" lists %s only.', param, what);
        END IF;
        IF NOT rel::oid = ANY (res) THEN
            res := res || rel::oid;
        END IF;
    END LOOP;
    IF cardinality(res) = 0 THEN
        RAISE EXCEPTION 'parameter "%" of template "%" lists no %', param, template, what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name at least one, comma-separated.';
    END IF;
    RETURN res;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._template_qualified(rel oid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel
$$;

-- a positive integer parameter
CREATE OR REPLACE FUNCTION taskflow._template_int(template text, param text, value text,
                                                  lo bigint, hi bigint)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    BEGIN
        n := value::bigint;
    EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
        n := NULL;
    END;
    IF n IS NULL OR n < lo OR n > hi THEN
        RAISE EXCEPTION 'parameter "%" of template "%" must be an integer between % and %, not "%"',
                        param, template, lo, hi, value
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('E.g. "%s": %s.', param, lo * 10);
    END IF;
    RETURN n;
END
$$;

-- purge_older_than with batch_size: a DO block in autocommit mode that
-- deletes batch_size rows at a time (by tableoid + ctid, so partitioned
-- tables work) and commits after each batch.
CREATE OR REPLACE FUNCTION taskflow._template_purge_batched(flow text, qualified text, p jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    n bigint := taskflow._template_int('purge_older_than', 'batch_size', p->>'batch_size', 1, 100000000);
BEGIN
    PERFORM taskflow.add_node(flow, 'purge', 'sql',
        body => format($body$DO $taskflow$
#variable_conflict use_column
DECLARE
    tf_n pg_catalog.int8;
    tf_total pg_catalog.int8 := 0;
    tf_batches pg_catalog.int8 := 0;
BEGIN
    LOOP
        DELETE FROM %1$s AS tf_t
         USING (SELECT tf_s.tableoid AS tf_o, tf_s.ctid AS tf_c FROM %1$s AS tf_s
                 WHERE tf_s.%2$I OPERATOR(pg_catalog.<)
                       (${bizdate:literal}::pg_catalog.date OPERATOR(pg_catalog.-) %3$L::pg_catalog.interval)
                 LIMIT %4$s) AS tf_b
         WHERE tf_t.tableoid OPERATOR(pg_catalog.=) tf_b.tf_o AND tf_t.ctid OPERATOR(pg_catalog.=) tf_b.tf_c;
        GET DIAGNOSTICS tf_n = ROW_COUNT;
        tf_total := tf_total OPERATOR(pg_catalog.+) tf_n;
        tf_batches := tf_batches OPERATOR(pg_catalog.+) 1;
        COMMIT;
        EXIT WHEN tf_n OPERATOR(pg_catalog.<) %4$s;
    END LOOP;
    RAISE NOTICE 'purged %% row(s) in %% batch(es) of at most %4$s', tf_total, tf_batches;
END
$taskflow$$body$, qualified, p->>'date_column', p->>'keep', n),
        options => '{"autocommit": true}');
END
$fn$;

-- a node name from a relation name
CREATE OR REPLACE FUNCTION taskflow._template_node_name(prefix text, relname text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT left(prefix || regexp_replace(relname, '[^A-Za-z0-9_-]', '_', 'g'), 63)
$$;

-- The templates of this part and the users' own (p: the checked parameters
-- with defaults; the flow exists, with schedule, time zone and enabled).
CREATE OR REPLACE FUNCTION taskflow._create_flow_more(template text, flow text, p jsonb,
                                                      caller_search_path text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rels    oid[];
    body    text;
    vac     boolean;
    mv      record;
    t       record;
    tgt     regclass;
    tgt_q   text;
    parts   text[];
    u       taskflow.user_templates;
BEGIN
    CASE template
    WHEN 'maintain_tables' THEN
        rels := taskflow._template_rels(template, 'tables', p->>'tables', caller_search_path,
                                        'r,p,m', 'tables');
        BEGIN
            vac := (p->>'vacuum')::boolean;
        EXCEPTION WHEN invalid_text_representation THEN
            RAISE EXCEPTION 'parameter "vacuum" of template "%" must be true or false', template
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'false runs only ANALYZE.';
        END;
        SELECT string_agg(format(CASE WHEN vac THEN 'VACUUM (ANALYZE) %s' ELSE 'ANALYZE %s' END,
                                 taskflow._template_qualified(x.rel)), E';\n' ORDER BY x.n)
          INTO body FROM unnest(rels) WITH ORDINALITY AS x(rel, n);
        PERFORM taskflow.add_node(flow, 'maintain', 'sql', body => body,
                                  options => jsonb_build_object('autocommit', true));
    WHEN 'refresh_matviews' THEN
        IF ((p->>'views') IS NULL) = ((p->>'schema') IS NULL) THEN
            RAISE EXCEPTION 'template "%" needs parameter "views" or parameter "schema" (one of them)', template
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'E.g. {"views": "sales.daily, sales.monthly"} or {"schema": "sales"}.';
        END IF;
        IF p ? 'views' THEN
            rels := taskflow._template_rels(template, 'views', p->>'views', caller_search_path,
                                            'm', 'materialized views');
        ELSE
            SELECT coalesce(array_agg(c.oid ORDER BY c.relname), '{}') INTO rels
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = p->>'schema' AND c.relkind = 'm';
            IF cardinality(rels) = 0 THEN
                RAISE EXCEPTION 'schema "%" has no materialized views', p->>'schema'
                    USING ERRCODE = 'undefined_object',
                          HINT = 'Parameter "schema" names a schema with materialized views (case-sensitive).';
            END IF;
        END IF;
        -- one node per view; CONCURRENTLY when a plain unique index exists
        -- and the view is populated (REFRESH ... CONCURRENTLY needs both)
        CREATE TEMP TABLE IF NOT EXISTS tf_tpl_mv (rel oid, node text) ON COMMIT DROP;
        TRUNCATE tf_tpl_mv;
        INSERT INTO tf_tpl_mv
        SELECT x.rel, CASE WHEN count(*) OVER (PARTITION BY taskflow._template_node_name('refresh_', c.relname)) > 1
                           THEN taskflow._template_node_name('refresh_' || ns.nspname || '_', c.relname)
                           ELSE taskflow._template_node_name('refresh_', c.relname) END
          FROM unnest(rels) AS x(rel) JOIN pg_class c ON c.oid = x.rel
          JOIN pg_namespace ns ON ns.oid = c.relnamespace;
        FOR mv IN
            -- the views in dependency order (upstream first), with their
            -- upstream views among the chosen ones, found through pg_rewrite
            -- and pg_depend, also through plain views and views not chosen
            WITH RECURSIVE dep(rel, dep) AS (
                SELECT DISTINCT rw.ev_class, d.refobjid
                  FROM pg_rewrite rw JOIN pg_depend d
                       ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> rw.ev_class
            ), reach(root, rel) AS (
                SELECT m.rel, d.dep FROM tf_tpl_mv m JOIN dep d ON d.rel = m.rel
                UNION
                SELECT r.root, d.dep FROM reach r JOIN dep d ON d.rel = r.rel
                 WHERE NOT EXISTS (SELECT 1 FROM tf_tpl_mv m WHERE m.rel = r.rel)
                   AND (SELECT c.relkind FROM pg_class c WHERE c.oid = r.rel) IN ('v', 'm')
            ), up AS (
                SELECT DISTINCT r.root, m.node AS upstream
                  FROM reach r JOIN tf_tpl_mv m ON m.rel = r.rel WHERE r.rel <> r.root
            ), depth(rel, d) AS (
                SELECT m.rel, 0 FROM tf_tpl_mv m
                UNION ALL
                SELECT r.root, x.d + 1 FROM depth x JOIN reach r ON r.rel = x.rel
                  JOIN tf_tpl_mv m ON m.rel = r.root WHERE r.rel <> r.root AND x.d < 1000
            )
            SELECT m.rel, m.node,
                   (SELECT array_agg(w.upstream ORDER BY w.upstream) FROM up w WHERE w.root = m.rel) AS after,
                   (SELECT max(x.d) FROM depth x WHERE x.rel = m.rel) AS level
              FROM tf_tpl_mv m
             ORDER BY level, m.node
        LOOP
            SELECT c.relispopulated
                   AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique
                                  AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL) AS conc
              INTO t FROM pg_class c WHERE c.oid = mv.rel;
            PERFORM taskflow.add_node(flow, mv.node, 'sql',
                body => format('REFRESH MATERIALIZED VIEW %s%s',
                               CASE WHEN t.conc THEN 'CONCURRENTLY ' ELSE '' END,
                               taskflow._template_qualified(mv.rel)),
                after => mv.after);
        END LOOP;
        DROP TABLE tf_tpl_mv;
    WHEN 'rollup_daily_users' THEN
        SELECT * INTO t FROM taskflow._template_table(template,
            coalesce(taskflow._regclass_in(p->>'table', caller_search_path)::text, p->>'table'),
            p->>'time_column');
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a
                        WHERE a.attrelid = to_regclass(t.qualified) AND a.attname = p->>'user_column'
                          AND a.attnum > 0 AND NOT a.attisdropped) THEN
            RAISE EXCEPTION 'column "%" of relation "%" does not exist', p->>'user_column', t.qualified
                USING ERRCODE = 'undefined_column',
                      HINT = 'Parameter "user_column" is a column name as stored (case-sensitive, unquoted).';
        END IF;
        IF p ? 'target' THEN
            BEGIN
                tgt := taskflow._regclass_in(p->>'target', caller_search_path);
            EXCEPTION WHEN feature_not_supported THEN   -- a.b.c
                RAISE EXCEPTION 'invalid target table name "%"', p->>'target'
                    USING ERRCODE = 'invalid_name',
                          HINT = 'Parameter "target" is a table name, optionally schema-qualified.';
            END;
            IF tgt IS NULL THEN
                BEGIN
                    parts := parse_ident(p->>'target');
                EXCEPTION WHEN invalid_parameter_value THEN
                    parts := NULL;
                END;
                IF cardinality(parts) NOT IN (1, 2) THEN
                    RAISE EXCEPTION 'invalid target table name "%"', p->>'target'
                        USING ERRCODE = 'invalid_name',
                              HINT = 'Parameter "target" is a table name, optionally schema-qualified.';
                END IF;
                -- a new table: in the given schema, else beside the source table
                tgt_q := CASE cardinality(parts)
                         WHEN 2 THEN format('%I.%I', parts[1], parts[2])
                         ELSE format('%s.%I', split_part(t.qualified, '.', 1), parts[1]) END;
            END IF;
        ELSE
            tgt_q := format('%s.%I', split_part(t.qualified, '.', 1), left(t.relname || '_daily_users', 63));
            tgt := to_regclass(tgt_q);
        END IF;
        IF tgt IS NULL THEN
            -- created now, as the caller (the flow's owner writes it)
            EXECUTE format('CREATE TABLE %s (bizdate pg_catalog.date PRIMARY KEY, '
                           'unique_users pg_catalog.int8 NOT NULL, events pg_catalog.int8 NOT NULL, '
                           'computed_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now())', tgt_q);
            tgt := to_regclass(tgt_q);
        ELSE
            tgt_q := taskflow._template_qualified(tgt);
            IF (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = tgt AND a.attnum > 0
                   AND NOT a.attisdropped AND a.attname IN ('bizdate', 'unique_users', 'events')) <> 3 THEN
                RAISE EXCEPTION 'target table % lacks columns bizdate, unique_users, events', tgt_q
                    USING ERRCODE = 'undefined_column',
                          HINT = 'Name a new table (it is created) or one with columns (bizdate date, unique_users bigint, events bigint).';
            END IF;
        END IF;
        PERFORM taskflow.add_node(flow, 'rollup', 'sql', body => format(
            $body$DELETE FROM %1$s WHERE bizdate OPERATOR(pg_catalog.=) ${bizdate:literal}::pg_catalog.date;
INSERT INTO %1$s (bizdate, unique_users, events)
SELECT ${bizdate:literal}::pg_catalog.date, pg_catalog.count(DISTINCT %3$I), pg_catalog.count(*)
  FROM %2$s
 WHERE %4$I OPERATOR(pg_catalog.>=) ${bizdate:literal}::pg_catalog.date
   AND %4$I OPERATOR(pg_catalog.<) (${bizdate:literal}::pg_catalog.date OPERATOR(pg_catalog.+) 1)$body$,
            tgt_q, t.qualified, p->>'user_column', p->>'time_column'));
    ELSE
        SELECT * INTO u FROM taskflow.user_templates x WHERE x.name = template;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'template "%" does not exist', template USING ERRCODE = 'undefined_object';
        END IF;
        PERFORM taskflow._create_flow_user(u, flow, p);
    END CASE;
END
$$;

------------------------------------------------------------------------------
-- users' own templates
------------------------------------------------------------------------------

-- {{param}} (raw), {{param:literal}}, {{param:ident}} in every string of a
-- definition, replaced by the parameter's value (missing: empty).
CREATE OR REPLACE FUNCTION taskflow._tpl_subst(def jsonb, p jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    txt text := def::text;
    m   text[];
    val text;
BEGIN
    FOR m IN SELECT DISTINCT x FROM regexp_matches(txt, E'\\{\\{([A-Za-z_][A-Za-z0-9_]*)(?::(literal|ident))?\\}\\}', 'g') x LOOP
        val := coalesce(p->>m[1], '');
        val := CASE m[2] WHEN 'literal' THEN quote_literal(val) WHEN 'ident' THEN quote_ident(val) ELSE val END;
        val := to_jsonb(val)::text;
        txt := replace(txt, '{{' || m[1] || coalesce(':' || m[2], '') || '}}', substr(val, 2, length(val) - 2));
    END LOOP;
    RETURN txt::jsonb;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._create_flow_user(u taskflow.user_templates, flow text, p jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    def jsonb := taskflow._tpl_subst(u.definition, p);
    v   record;
    n   jsonb;
BEGIN
    IF def ? 'description' OR def ? 'catchup' OR def ? 'max_active_runs' THEN
        PERFORM taskflow.alter_flow(flow, description => def->>'description',
                                    catchup => (def->>'catchup')::boolean,
                                    max_active_runs => (def->>'max_active_runs')::integer);
    END IF;
    FOR v IN SELECT * FROM jsonb_each_text(coalesce(def->'variables', '{}')) LOOP
        PERFORM taskflow.set_variable(flow, v.key, v.value);
    END LOOP;
    FOR n IN SELECT x FROM jsonb_array_elements(def->'nodes') x LOOP
        PERFORM taskflow.add_node(flow, n->>'name', n->>'kind', n->>'body',
                                  coalesce(n->'options', '{}'),
                                  coalesce((n->>'retries')::integer, 0),
                                  coalesce((n->>'retry_delay')::interval, '1 min'),
                                  (n->>'timeout')::interval,
                                  (SELECT array_agg(a ORDER BY o) FROM jsonb_array_elements_text(n->'after')
                                          WITH ORDINALITY AS y(a, o)),
                                  coalesce(n->>'trigger_rule', 'all_success'),
                                  coalesce((n->>'finalizer')::boolean, false),
                                  (n->>'branch')::boolean);
    END LOOP;
END
$$;

-- Check a template definition and its parameters (register_template).
CREATE OR REPLACE FUNCTION taskflow._check_user_template(name text, definition jsonb, parameters jsonb)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k    text;
    n    jsonb;
    used text;
BEGIN
    IF name IS NULL OR name !~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid template name "%"', name
            USING ERRCODE = 'invalid_name',
                  HINT = 'A template name starts with a letter or _, then letters, digits, _, . or -, at most 63 characters.';
    END IF;
    -- a built-in template's name (listed by templates(), not as one of the
    -- user templates the caller sees; a user template of that name would
    -- also decide the owner of the built-in template's flows)
    IF EXISTS (SELECT 1 FROM taskflow.templates() x WHERE x.name = _check_user_template.name)
       AND NOT EXISTS (SELECT 1 FROM taskflow.user_templates u WHERE u.name = _check_user_template.name) THEN
        RAISE EXCEPTION 'template "%" is built in', name
            USING ERRCODE = 'duplicate_object', HINT = 'Choose another name.';
    END IF;
    IF jsonb_typeof(parameters) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'parameters of template "%" must be a JSON object', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'E.g. {"table": {"required": true, "description": "..."}, "days": {"default": "30"}}.';
    END IF;
    FOR k, n IN SELECT * FROM jsonb_each(parameters) LOOP
        IF k !~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$' OR k IN ('schedule', 'timezone', 'enabled') THEN
            RAISE EXCEPTION 'invalid parameter name "%" in template "%"', k, name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Parameter names are identifiers; schedule, timezone and enabled are every template''s (set "schedule" in the definition).';
        END IF;
        IF jsonb_typeof(n) <> 'object' OR EXISTS (SELECT 1 FROM jsonb_object_keys(n) x
                                                  WHERE x NOT IN ('required', 'default', 'description'))
           OR jsonb_typeof(coalesce(n->'required', 'false')) <> 'boolean'
           OR jsonb_typeof(coalesce(n->'default', 'null')) NOT IN ('string', 'number', 'boolean', 'null') THEN
            RAISE EXCEPTION 'invalid specification of parameter "%" in template "%"', k, name
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Got %s.', n),
                      HINT = 'A parameter is {"required": true|false, "default": a string, number or boolean, "description": "..."}.';
        END IF;
    END LOOP;
    IF jsonb_typeof(definition) IS DISTINCT FROM 'object'
       OR EXISTS (SELECT 1 FROM jsonb_object_keys(definition) x
                   WHERE x NOT IN ('description', 'schedule', 'timezone', 'catchup', 'max_active_runs',
                                   'variables', 'nodes')) THEN
        RAISE EXCEPTION 'invalid definition of template "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A definition is {"nodes": [...], "variables": {...}, "schedule", "timezone", "description", "catchup", "max_active_runs"}; see docs/reference.md.';
    END IF;
    IF jsonb_typeof(definition->'nodes') IS DISTINCT FROM 'array' OR jsonb_array_length(definition->'nodes') = 0
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(definition->'nodes') x
                   WHERE jsonb_typeof(x) <> 'object' OR NOT x ? 'name' OR NOT x ? 'kind'
                      OR EXISTS (SELECT 1 FROM jsonb_object_keys(x) y
                                  WHERE y NOT IN ('name', 'kind', 'body', 'options', 'retries',
                                                  'retry_delay', 'timeout', 'after', 'trigger_rule',
                                                  'finalizer', 'branch'))) THEN
        RAISE EXCEPTION 'template "%" needs "nodes": a non-empty array of nodes', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A node is {"name", "kind", "body", "options", "retries", "retry_delay", "timeout", "after": [...], "trigger_rule", "finalizer", "branch"}, as add_node takes them.';
    END IF;
    IF definition ? 'variables' AND (jsonb_typeof(definition->'variables') <> 'object'
        OR EXISTS (SELECT 1 FROM jsonb_each(definition->'variables') x WHERE jsonb_typeof(x.value) <> 'string')) THEN
        RAISE EXCEPTION 'template "%": "variables" must map names to definitions', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'E.g. "variables": {"day": "yyyymmdd of bizdate"}.';
    END IF;
    SELECT m[1] INTO used
      FROM regexp_matches(definition::text, E'\\{\\{([A-Za-z_][A-Za-z0-9_]*)(?::(literal|ident))?\\}\\}', 'g') m
     WHERE NOT parameters ? m[1] LIMIT 1;
    IF used IS NOT NULL THEN
        RAISE EXCEPTION 'template "%" uses undeclared parameter "%"', name, used
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Declare it in parameters, e.g. {"' || used || '": {"required": true}}.';
    END IF;
END
$$;

-- Register (or, with replace, change) a template of your own: a flow
-- definition with {{parameter}} placeholders.  The flows made from it are
-- owned by the template's owner (you, or the role given), whoever makes them.
CREATE OR REPLACE FUNCTION taskflow.register_template(name text, definition jsonb,
                                                      parameters jsonb DEFAULT '{}',
                                                      description text DEFAULT '',
                                                      owner regrole DEFAULT NULL,
                                                      replace boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
    o regrole;
BEGIN
    o := coalesce(owner, current_user::regrole);
    PERFORM taskflow._check_user_template(name, definition, parameters);
    o := taskflow._check_owner(o);
    -- stored complete: {"required", "default" (if any), "description"}
    SELECT coalesce(jsonb_object_agg(x.key, jsonb_build_object('required', coalesce((x.value->>'required')::boolean, false),
                                                               'description', coalesce(x.value->>'description', ''))
                                            || CASE WHEN x.value ? 'default' THEN jsonb_build_object('default', x.value->'default')
                                                    ELSE '{}' END), '{}')
      INTO parameters FROM jsonb_each(parameters) x;
    IF replace THEN
        UPDATE taskflow.user_templates u
           SET definition = register_template.definition, parameters = register_template.parameters,
               description = coalesce(register_template.description, ''), owner = o
         WHERE u.name = register_template.name;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    BEGIN
        INSERT INTO taskflow.user_templates (name, owner, description, parameters, definition)
        VALUES (name, o, coalesce(description, ''), parameters, definition);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'template "%" already exists', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Pass replace => true to change your own template, or choose another name.';
    END;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.register_template: template "%s"', register_template.name));
END
$$;

-- Direct writes to user_templates get the same checks (a built-in name
-- included): the catalog guard's way (part 15).
CREATE OR REPLACE FUNCTION taskflow._user_templates_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.name IS DISTINCT FROM OLD.name
       OR NEW.definition IS DISTINCT FROM OLD.definition OR NEW.parameters IS DISTINCT FROM OLD.parameters THEN
        PERFORM taskflow._check_user_template(NEW.name, NEW.definition, NEW.parameters);
    END IF;
    IF TG_OP = 'INSERT' OR NEW.owner IS DISTINCT FROM OLD.owner THEN
        NEW.owner := taskflow._check_owner(NEW.owner);
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.created_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER user_templates_guard BEFORE INSERT OR UPDATE ON taskflow.user_templates
    FOR EACH ROW EXECUTE FUNCTION taskflow._user_templates_guard();

CREATE OR REPLACE FUNCTION taskflow.drop_template(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    DELETE FROM taskflow.user_templates u WHERE u.name = drop_template.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'template "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'Only your own templates (of roles you are a member of) can be dropped; SELECT name FROM taskflow.user_templates lists them.';
    END IF;
EXCEPTION WHEN OTHERS THEN
    -- the error as the caller sees it: no frames of internal functions
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.drop_template: template "%s"', drop_template.name));
END
$$;
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
-- taskflow extension script, part 97: helpers of the dispatch/definition
-- fast paths (replayable).  Owner: dispatch (issue 11).  See
-- docs/performance.md.

-- Did the current transaction (or one of its subtransactions) write the row
-- version with this xmin?  Then it holds the row's lock already (C,
-- define_fast.c).  The definition API locks a flow and bumps updated_at
-- once per transaction with it, not once per node and edge.
CREATE OR REPLACE FUNCTION taskflow._row_is_mine(xmin xid) RETURNS boolean
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_row_is_mine';

-- Is a flow of this owner due within the next 'within' seconds?  An idle
-- warm worker of the owner asks when its idle timeout is up, and stays for
-- another period if so (worker.c, tf_worker_due_soon): a flow due every
-- minute finds a warm worker instead of forking one.  One range scan of
-- the index on flows.next_due (next_due: the flow's next fire time).
-- (Not EXISTS: planned for unknown parameters -- a LANGUAGE sql function
-- with SET is never inlined; PL/pgSQL's plan cache goes generic -- an EXISTS
-- expects a match within the first rows of a sequential scan and reads
-- every flow when none is due: 537 pages, 1.5-3.9 ms at 10,000 flows, in
-- each idle worker whose timeout comes up, right around a due time; in
-- next_due order it is an index range scan whatever the plan.  Issue 11.)
CREATE OR REPLACE FUNCTION taskflow._owner_due_soon(p_owner oid, p_within integer)
RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM 1 FROM taskflow.flows f
      WHERE f.next_due <= now() + make_interval(secs => p_within * 2)
        AND f.owner = p_owner AND f.enabled
      ORDER BY f.next_due LIMIT 1;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION taskflow._owner_due_soon(oid, integer) FROM PUBLIC;

-- A warm worker's next node run when its own run has none ready: the oldest
-- ready node runs of the other running runs of the same owner (worker.c,
-- tf_worker_next_in_run), so that 100 flows due at once or a backlog of one
-- owner flow through its warm workers without a scheduler pass per node.
-- Readiness is _node_next_in_run's (one definition: _fl_ready_ids_in); the
-- runs are the 8 oldest running ones with a pending or retrying node run
-- not handed to a worker (p_exclude) among those that may have one ready
-- (the scheduler's ready set and change queue, part 99_ready: not every
-- running run of the owner): a bounded cost per node; when none of them
-- has a ready node (chains waiting on running upstreams) the worker goes
-- idle and the scheduler's ranking decides, as before.
-- (1.7: one query over the 8 runs, readiness judged for all of them in one
-- call; 1.6 called _node_next_in_run per run, a LANGUAGE sql function
-- planned again at every call: 16 ms per pull with 100 runs due at once,
-- most of a worker's time per node; and its 8 runs were often the ones
-- whose nodes other workers had just been handed, so it found nothing.
-- Issue 11.)
CREATE OR REPLACE FUNCTION taskflow._node_next_for_owner(p_owner oid, p_exclude bigint[],
                                                        p_limit integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    runs  bigint[];
    ready bigint[];
BEGIN
    runs := ARRAY(
        SELECT r.id
          FROM (SELECT s.run_id FROM taskflow.sched_ready s
                UNION
                SELECT q.run_id FROM (SELECT y.run_id FROM taskflow.sched_queue y
                                       LIMIT 2000) q) c
          JOIN taskflow.runs r ON r.id = c.run_id
          JOIN taskflow.flows f ON f.id = r.flow_id
         WHERE r.state = 'running' AND f.owner = p_owner
           AND EXISTS (SELECT 1 FROM taskflow.node_runs nr
                        WHERE nr.run_id = r.id AND nr.state IN ('pending', 'retrying')
                          AND nr.id <> ALL (coalesce(p_exclude, '{}')))
         -- within one owner, as _sched_ready: higher flow priority first
         ORDER BY f.priority DESC, r.scheduled_for, r.id
         LIMIT 8);
    IF cardinality(runs) = 0 THEN
        RETURN;
    END IF;
    -- (into an array first: as "IN (SELECT srf(...))" the planner may call
    -- it again for every row of the join)
    ready := ARRAY(SELECT taskflow._fl_ready_ids_in(runs));   -- trigger rules (part 19)
    RETURN QUERY
    SELECT nr.id
      FROM unnest(runs) WITH ORDINALITY u(id, k)
      JOIN taskflow.node_runs nr ON nr.run_id = u.id
     WHERE (nr.state = 'pending'
            OR (nr.state = 'retrying' AND nr.not_before <= clock_timestamp()))
       AND nr.id <> ALL (coalesce(p_exclude, '{}'))
       AND nr.id = ANY (ready)
     ORDER BY u.k, nr.id
     LIMIT p_limit;
END
$$;
REVOKE ALL ON FUNCTION taskflow._node_next_for_owner(oid, bigint[], integer) FROM PUBLIC;
-- taskflow extension script, part 98: the declarative definition API
-- (replayable).  Owner: define (issue 11).  See docs/reference.md
-- ("apply_flow") and docs/performance.md ("Defining flows").
--
-- taskflow.apply_flow(definition jsonb, name text DEFAULT NULL) defines a
-- whole flow in one call from the shape taskflow.flow_definition() returns
-- ({"flow": settings, "nodes": {name: ...}, "edges": [{"from", "to",
-- "branch"}], "variables": {name: ...}}; "version" is ignored; a node may
-- also list its upstream nodes in "after").  It creates the flow if it does
-- not exist, and otherwise changes only what differs: an identical
-- definition changes nothing and records no new version.
--
-- taskflow.apply_flow is C (src/define_create.c): a new flow of a plain
-- definition (no variables, ${...}, archive/branch nodes, finalizers,
-- labelled edges, owner/start/end dates) is created there directly, checked
-- once with the API's checks, inserted as the caller (privileges and row
-- level security apply), with the same rows, history and wake as the API
-- path gives.  Everything else, and any definition it finds wrong (its work
-- is rolled back first), goes to taskflow._apply_flow_api below.
--
-- _apply_flow_api makes every change through the public definition API
-- (create_flow, alter_flow, add_node, alter_node, drop_node, add_edge,
-- drop_edge, set_variable, drop_variable): the same validation, errors,
-- permissions, row level security, ownership rules and catalog guard;
-- nothing is bypassed.  One statement: an error undoes everything it did.

-- Check one JSON object of a definition: an object (or NULL), only the
-- allowed keys, each value of its JSON type (or null).  22023 otherwise.
CREATE OR REPLACE FUNCTION taskflow._apply_check_object(obj jsonb, keys text[], types text[], what text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    i integer;
    t text;
BEGIN
    IF obj IS NULL OR jsonb_typeof(obj) = 'null' THEN
        RETURN '{}';
    END IF;
    IF jsonb_typeof(obj) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object, not %', what, jsonb_typeof(obj)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'taskflow.flow_definition() shows the shape apply_flow takes.';
    END IF;
    FOR k IN SELECT jsonb_object_keys(obj) LOOP
        i := array_position(keys, k);
        IF i IS NULL THEN
            RAISE EXCEPTION 'unknown key "%" in %', k, what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Keys of %s: %s.', what, array_to_string(keys, ', '));
        END IF;
        t := jsonb_typeof(obj->k);
        IF t <> 'null' AND t <> types[i] THEN
            RAISE EXCEPTION 'key "%" of % must be a JSON %, not %', k, what, types[i], t
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'taskflow.flow_definition() shows the shape apply_flow takes.';
        END IF;
    END LOOP;
    RETURN obj;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._apply_flow_api(definition jsonb, name text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fd      jsonb;          -- flow settings as given
    nd      jsonb;          -- nodes as given
    vd      jsonb;          -- variables as given
    te      jsonb := '{}';  -- target edges: {"from>to": branch}
    ce      jsonb := '{}';  -- current edges, the same
    cn      jsonb := '{}';  -- current nodes: {name: image}
    cv      jsonb := '{}';  -- current variables: {name: image}
    cur     jsonb;
    fname   text;
    f       taskflow.flows;
    fid     bigint;
    what    text := 'flow settings';
    k       text;
    v       jsonb;
    e       jsonb;
    n       jsonb;
    ups     text[];
    lbl     jsonb;
    pending text[];
    added   text[] := '{}';
    progress boolean;
    created  boolean := false;  -- a new flow: nothing to compare, change or drop
    ekey    text;
    -- alter_flow arguments (NULL: unchanged)
    a_sched text; a_tz text; a_desc text; a_catchup boolean; a_mar integer;
    a_enabled boolean; a_start timestamptz; a_end timestamptz; a_owner regrole;
    a_saf integer; a_prio integer; changed boolean := false;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    ------------------------------------------------------------------
    -- the shape
    ------------------------------------------------------------------
    what := 'the definition';
    IF _apply_flow_api.definition IS NULL THEN
        RAISE EXCEPTION 'definition must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a definition as taskflow.flow_definition() returns it.';
    END IF;
    PERFORM taskflow._apply_check_object(_apply_flow_api.definition,
        '{version,flow,nodes,edges,variables}', '{number,object,object,array,object}', 'the definition');
    fd := taskflow._apply_check_object(_apply_flow_api.definition->'flow',
        '{name,owner,schedule,timezone,description,enabled,catchup,max_active_runs,start_date,end_date,suspend_after_failures,priority}',
        '{string,string,string,string,string,boolean,boolean,number,string,string,number,number}',
        'the flow settings ("flow")');
    fname := coalesce(_apply_flow_api.name, fd->>'name');
    IF fname IS NULL THEN
        RAISE EXCEPTION 'the definition names no flow'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give "flow": {"name": ...} in the definition, or pass name => ''...''.';
    END IF;
    PERFORM taskflow._check_name('flow', fname);
    nd := coalesce(_apply_flow_api.definition->'nodes', '{}');
    FOR k, v IN SELECT * FROM jsonb_each(nd) LOOP
        PERFORM taskflow._apply_check_object(v,
            '{kind,body,options,retries,retry_delay,timeout,trigger_rule,finalizer,after}',
            '{string,string,object,number,string,string,string,boolean,array}',
            format('node "%s"', k));
        IF jsonb_typeof(v) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'node "%" must be a JSON object', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'e.g. "nodes": {"load": {"kind": "sql", "body": "SELECT 1"}}.';
        END IF;
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(v->'after', '[]')) LOOP
            IF jsonb_typeof(e) <> 'string' THEN
                RAISE EXCEPTION '"after" of node "%" must be an array of node names', k
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'e.g. "after": ["extract"].';
            END IF;
            -- (a name is checked here: "a>b" would split into another edge)
            PERFORM taskflow._check_name('node', e #>> '{}');
            te := te || jsonb_build_object((e #>> '{}') || '>' || k, 'null'::jsonb);
        END LOOP;
    END LOOP;
    FOR e IN SELECT * FROM jsonb_array_elements(coalesce(_apply_flow_api.definition->'edges', '[]')) LOOP
        PERFORM taskflow._apply_check_object(e, '{from,to,branch}', '{string,string,boolean}', 'an edge');
        IF e->>'from' IS NULL OR e->>'to' IS NULL OR jsonb_typeof(e) <> 'object' THEN
            RAISE EXCEPTION 'an edge needs "from" and "to"'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'e.g. "edges": [{"from": "extract", "to": "load"}].';
        END IF;
        PERFORM taskflow._check_name('node', e->>'from');
        PERFORM taskflow._check_name('node', e->>'to');
        te := te || jsonb_build_object((e->>'from') || '>' || (e->>'to'), coalesce(e->'branch', 'null'));
    END LOOP;
    vd := coalesce(_apply_flow_api.definition->'variables', '{}');
    FOR k, v IN SELECT * FROM jsonb_each(vd) LOOP
        PERFORM taskflow._apply_check_object(v, '{definition,is_constant}', '{string,boolean}',
                                             format('variable "%s"', k));
        IF jsonb_typeof(v) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'variable "%" must be a JSON object', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'e.g. "variables": {"day": {"definition": "yyyymmdd of bizdate"}}.';
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- the flow: create it, or change the settings that differ
    ------------------------------------------------------------------
    what := 'flow settings';
    SELECT * INTO f FROM taskflow.flows x WHERE x.name = fname;     -- (row level security)
    IF NOT FOUND THEN
        what := 'creating the flow';
        created := true;
        fid := taskflow.create_flow(fname,
                   schedule => fd->>'schedule',
                   timezone => coalesce(fd->>'timezone', current_setting('TimeZone')),
                   description => fd->>'description',
                   catchup => (fd->>'catchup')::boolean,
                   max_active_runs => (fd->>'max_active_runs')::integer,
                   enabled => (fd->>'enabled')::boolean,
                   start_date => (fd->>'start_date')::timestamptz,
                   end_date => (fd->>'end_date')::timestamptz,
                   owner => (fd->>'owner')::regrole,
                   suspend_after_failures => (fd->>'suspend_after_failures')::integer,
                   priority => (fd->>'priority')::integer);
    ELSE
        fid := f.id;
        cur := to_jsonb(f);
        IF fd ? 'schedule' AND nullif(btrim(fd->>'schedule'), '') IS DISTINCT FROM cur->>'schedule' THEN
            a_sched := coalesce(fd->>'schedule', ''); changed := true;
        END IF;
        IF fd->>'timezone' IS NOT NULL AND fd->>'timezone' <> f.timezone THEN
            a_tz := fd->>'timezone'; changed := true;
        END IF;
        IF fd ? 'description' AND nullif(fd->>'description', '') IS DISTINCT FROM f.description THEN
            a_desc := coalesce(fd->>'description', ''); changed := true;
        END IF;
        IF (fd->>'catchup')::boolean IS DISTINCT FROM f.catchup AND fd->>'catchup' IS NOT NULL THEN
            a_catchup := (fd->>'catchup')::boolean; changed := true;
        END IF;
        IF (fd->>'enabled')::boolean IS DISTINCT FROM f.enabled AND fd->>'enabled' IS NOT NULL THEN
            a_enabled := (fd->>'enabled')::boolean; changed := true;
        END IF;
        IF (fd->>'max_active_runs')::integer IS DISTINCT FROM f.max_active_runs AND fd->>'max_active_runs' IS NOT NULL THEN
            a_mar := (fd->>'max_active_runs')::integer; changed := true;
        END IF;
        IF fd ? 'start_date' AND (fd->>'start_date')::timestamptz IS DISTINCT FROM f.start_date THEN
            a_start := coalesce((fd->>'start_date')::timestamptz, '-infinity'); changed := true;
        END IF;
        IF fd ? 'end_date' AND (fd->>'end_date')::timestamptz IS DISTINCT FROM f.end_date THEN
            a_end := coalesce((fd->>'end_date')::timestamptz, 'infinity'); changed := true;
        END IF;
        IF fd->>'owner' IS NOT NULL AND (fd->>'owner')::regrole IS DISTINCT FROM f.owner THEN
            a_owner := (fd->>'owner')::regrole; changed := true;
        END IF;
        IF fd ? 'suspend_after_failures'
           AND nullif((fd->>'suspend_after_failures')::integer, 0) IS DISTINCT FROM (cur->>'suspend_after_failures')::integer THEN
            a_saf := coalesce((fd->>'suspend_after_failures')::integer, 0); changed := true;
        END IF;
        IF (fd->>'priority')::integer IS DISTINCT FROM (cur->>'priority')::integer AND fd->>'priority' IS NOT NULL THEN
            a_prio := (fd->>'priority')::integer; changed := true;
        END IF;
        IF changed THEN
            PERFORM taskflow.alter_flow(fname, schedule => a_sched, timezone => a_tz,
                        description => a_desc, catchup => a_catchup, max_active_runs => a_mar,
                        enabled => a_enabled, start_date => a_start, end_date => a_end,
                        owner => a_owner, suspend_after_failures => a_saf, priority => a_prio);
        END IF;
        -- what is there now: images as flow_definition() shows them
        SELECT coalesce(jsonb_object_agg(x.name, to_jsonb(x) - '{id,flow_id,created_at,updated_at,name}'::text[]), '{}')
          INTO cn FROM taskflow.nodes x WHERE x.flow_id = fid;
        SELECT coalesce(jsonb_object_agg(a.name || '>' || b.name, to_jsonb(x)->'branch'), '{}')
          INTO ce FROM taskflow.edges x
          JOIN taskflow.nodes a ON a.id = x.from_node JOIN taskflow.nodes b ON b.id = x.to_node
         WHERE x.flow_id = fid;
        SELECT coalesce(jsonb_object_agg(x.name, jsonb_build_object('definition', x.definition,
                                                                    'is_constant', x.is_constant)), '{}')
          INTO cv FROM taskflow.variables x WHERE x.flow_id = fid;
    END IF;

    ------------------------------------------------------------------
    -- variables first (new nodes may use them)
    ------------------------------------------------------------------
    FOR k, v IN SELECT * FROM jsonb_each(vd) LOOP
        what := format('variable "%s"', k);
        IF NOT cv ? k OR cv->k->>'definition' IS DISTINCT FROM v->>'definition'
           OR (cv->k->>'is_constant')::boolean IS DISTINCT FROM coalesce((v->>'is_constant')::boolean, false) THEN
            PERFORM taskflow.set_variable(fname, k, v->>'definition', coalesce((v->>'is_constant')::boolean, false));
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- nodes whose kind changes are replaced
    ------------------------------------------------------------------
    FOR k, v IN SELECT * FROM jsonb_each(nd) WHERE NOT created LOOP
        IF cn ? k AND v->>'kind' IS NOT NULL AND lower(btrim(v->>'kind')) <> cn->k->>'kind' THEN
            what := format('node "%s"', k);
            PERFORM taskflow.drop_node(fname, k);
            cn := cn - k;
            SELECT coalesce(jsonb_object_agg(x.key, x.value), '{}') INTO ce
              FROM jsonb_each(ce) x WHERE split_part(x.key, '>', 1) <> k AND split_part(x.key, '>', 2) <> k;
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- new nodes, upstream first, with their incoming edges
    ------------------------------------------------------------------
    SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO pending
      FROM jsonb_object_keys(nd) x WHERE NOT cn ? x;
    WHILE cardinality(pending) > 0 LOOP
        progress := false;
        FOREACH k IN ARRAY pending LOOP
            -- upstream nodes of k in the target; all of them there already?
            SELECT coalesce(array_agg(split_part(x.key, '>', 1) ORDER BY x.key), '{}') INTO ups
              FROM jsonb_each(te) x WHERE split_part(x.key, '>', 2) = k;
            IF EXISTS (SELECT 1 FROM unnest(ups) u WHERE NOT cn ? u)
               AND EXISTS (SELECT 1 FROM unnest(ups) u WHERE u = ANY (pending)) THEN
                CONTINUE;
            END IF;
            what := format('node "%s"', k);
            n := nd->k;
            -- one labelled upstream edge: add_node's branch; unlabelled ones: after
            lbl := NULL;
            IF cardinality(ups) = 1 AND te->(ups[1] || '>' || k) <> 'null' THEN
                lbl := te->(ups[1] || '>' || k);
            ELSE
                SELECT coalesce(array_agg(u ORDER BY u), '{}') INTO ups
                  FROM unnest(ups) u WHERE te->(u || '>' || k) = 'null' AND cn ? u;
            END IF;
            PERFORM taskflow.add_node(fname, k, n->>'kind', n->>'body',
                        options => coalesce(n->'options', '{}'),
                        retries => (n->>'retries')::integer,
                        retry_delay => (n->>'retry_delay')::interval,
                        timeout => (n->>'timeout')::interval,
                        after => nullif(ups, '{}'),
                        trigger_rule => n->>'trigger_rule',
                        finalizer => (n->>'finalizer')::boolean,
                        branch => (lbl #>> '{}')::boolean);
            cn := cn || jsonb_build_object(k, n);
            added := added || k;
            FOREACH ekey IN ARRAY ups LOOP
                ce := ce || jsonb_build_object(ekey || '>' || k, coalesce(lbl, 'null'));
            END LOOP;
            pending := array_remove(pending, k);
            progress := true;
        END LOOP;
        IF NOT progress THEN
            -- a cycle among the new nodes: add them without edges; add_edge
            -- below reports the cycle
            FOREACH k IN ARRAY pending LOOP
                what := format('node "%s"', k);
                n := nd->k;
                PERFORM taskflow.add_node(fname, k, n->>'kind', n->>'body',
                            options => coalesce(n->'options', '{}'),
                            retries => (n->>'retries')::integer,
                            retry_delay => (n->>'retry_delay')::interval,
                            timeout => (n->>'timeout')::interval,
                            trigger_rule => n->>'trigger_rule',
                            finalizer => (n->>'finalizer')::boolean);
                cn := cn || jsonb_build_object(k, n);
                added := added || k;
            END LOOP;
            pending := '{}';
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- missing edges; changed branch labels
    ------------------------------------------------------------------
    FOR ekey, lbl IN SELECT x.key, x.value FROM jsonb_each(te) x
                      WHERE NOT (ce ? x.key AND ce->x.key = x.value) ORDER BY 1 LOOP
        what := format('edge %s -> %s', split_part(ekey, '>', 1), split_part(ekey, '>', 2));
        IF NOT ce ? ekey THEN
            PERFORM taskflow.add_edge(fname, split_part(ekey, '>', 1), split_part(ekey, '>', 2),
                                      branch => (lbl #>> '{}')::boolean);
        ELSIF ce->ekey IS DISTINCT FROM lbl THEN
            -- (a direct UPDATE as the caller: the edge triggers check it)
            UPDATE taskflow.edges x SET branch = (lbl #>> '{}')::boolean
              FROM taskflow.nodes a, taskflow.nodes b
             WHERE x.flow_id = fid AND a.id = x.from_node AND b.id = x.to_node
               AND a.name = split_part(ekey, '>', 1) AND b.name = split_part(ekey, '>', 2);
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- changed nodes (after the edges: ${node.column} needs its upstream)
    ------------------------------------------------------------------
    FOR k, n IN SELECT * FROM jsonb_each(nd) WHERE NOT created LOOP
        cur := cn->k;
        IF k = ANY (added) THEN
            CONTINUE;           -- added above
        END IF;
        what := format('node "%s"', k);
        IF (n ? 'body' AND nullif(n->>'body', '') IS DISTINCT FROM cur->>'body')
           OR (n ? 'options' AND coalesce(n->'options', '{}') IS DISTINCT FROM cur->'options')
           OR (n->>'retries' IS NOT NULL AND (n->>'retries')::integer IS DISTINCT FROM (cur->>'retries')::integer)
           OR (n->>'retry_delay' IS NOT NULL AND (n->>'retry_delay')::interval IS DISTINCT FROM (cur->>'retry_delay')::interval)
           OR (n ? 'timeout' AND nullif((n->>'timeout')::interval, interval '0') IS DISTINCT FROM (cur->>'timeout')::interval)
           OR (n->>'trigger_rule' IS NOT NULL AND n->>'trigger_rule' IS DISTINCT FROM cur->>'trigger_rule')
           OR (n->>'finalizer' IS NOT NULL AND (n->>'finalizer')::boolean IS DISTINCT FROM (cur->>'finalizer')::boolean) THEN
            PERFORM taskflow.alter_node(fname, k,
                        body => CASE WHEN n ? 'body' THEN coalesce(n->>'body', '') END,
                        options => CASE WHEN n ? 'options' THEN coalesce(n->'options', '{}') END,
                        retries => (n->>'retries')::integer,
                        retry_delay => (n->>'retry_delay')::interval,
                        timeout => CASE WHEN n ? 'timeout' THEN coalesce((n->>'timeout')::interval, interval '0') END,
                        trigger_rule => n->>'trigger_rule',
                        finalizer => (n->>'finalizer')::boolean);
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- what the definition no longer has: edges, nodes (downstream
    -- first), variables
    ------------------------------------------------------------------
    IF created THEN
        RETURN 1;               -- (all of it is the flow's first version)
    END IF;
    FOR ekey IN SELECT x FROM jsonb_object_keys(ce) x WHERE NOT te ? x ORDER BY 1 LOOP
        IF cn ? split_part(ekey, '>', 1) AND nd ? split_part(ekey, '>', 1)
           AND nd ? split_part(ekey, '>', 2) THEN
            what := format('edge %s -> %s', split_part(ekey, '>', 1), split_part(ekey, '>', 2));
            PERFORM taskflow.drop_edge(fname, split_part(ekey, '>', 1), split_part(ekey, '>', 2));
        END IF;
    END LOOP;
    SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO pending
      FROM jsonb_object_keys(cn) x WHERE NOT nd ? x;
    WHILE cardinality(pending) > 0 LOOP
        -- a removed node none of whose downstream nodes is still to be removed
        SELECT p INTO k FROM unnest(pending) p
         WHERE NOT EXISTS (SELECT 1 FROM jsonb_object_keys(ce) x
                            WHERE split_part(x, '>', 1) = p AND split_part(x, '>', 2) = ANY (pending))
         ORDER BY p LIMIT 1;
        k := coalesce(k, pending[1]);
        what := format('node "%s"', k);
        PERFORM taskflow.drop_node(fname, k);
        pending := array_remove(pending, k);
    END LOOP;
    FOR k IN SELECT x FROM jsonb_object_keys(cv) x WHERE NOT vd ? x ORDER BY 1 LOOP
        what := format('variable "%s"', k);
        PERFORM taskflow.drop_variable(fname, k);
    END LOOP;

    RETURN (SELECT coalesce(max(x.version), 0) FROM taskflow.flow_versions x WHERE x.flow_id = fid);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    IF e_state = '42710' AND what = 'creating the flow' THEN
        -- another owner's flow of that name: as for every other call on it
        e_state := '42704';
        e_msg := format('flow "%s" does not exist', fname);
        e_detail := NULL;
        e_hint := 'Either there is no such flow or you are not a member of its owner; '
                  'SELECT name FROM taskflow.flows lists the flows you can use.';
    END IF;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.apply_flow: flow "%s", %s',
                                   coalesce(fname, _apply_flow_api.name, '?'), what));
END
$$;

CREATE OR REPLACE FUNCTION taskflow.apply_flow(definition jsonb, name text DEFAULT NULL)
RETURNS integer
LANGUAGE C AS 'MODULE_PATHNAME', 'tf_apply_flow';
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
-- 'schedule', created_by the owner, one pending node run per node;
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
            SELECT f.id, f.owner, f.timezone, f.schedule, f.end_date,
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
        ), ins AS (
            INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, params,
                                       created_by, flow_version)
            SELECT o.id, o.t, (o.t AT TIME ZONE o.timezone)::date - 1, 'schedule', '{}',
                   o.owner, taskflow._defhist_current(o.id)       -- part 94
              FROM one o
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
-- taskflow extension script, part 99_ready: the scheduler's ready-node read
-- over what changed (replayable).  Owner: ready (issue 11).  Catalog: part
-- 99_ready.once (taskflow.sched_ready).  See docs/performance.md ("Ready
-- nodes: what changed, not every running run").
--
-- A node run becomes ready only when something happens to its run: the run
-- starts running (created, promoted, rerun), an upstream node run finishes
-- (or is settled skipped / upstream_failed: trigger rules, branches, the
-- finalizer), a retry or a wait node's next poll comes due, or the worker it
-- was handed to leaves before starting it.  The first two are noted in
-- taskflow.sched_queue by the triggers of part 51 in the changing
-- transaction; the scheduler's tick takes them off and keeps the running
-- ones in taskflow.sched_ready (_sched_ready_note).  The ready-node read
-- (_sched_ready_next) looks only at the runs of sched_ready, of the queue
-- (not yet taken: the read before the tick), with a retry due, or with a
-- node run whose worker left; it keeps in sched_ready the runs that still
-- have a node run ready (held back: no free worker, an owner at its cap)
-- and drops the others.  The safety sweep of the tick (every running run,
-- every 60 s, and at scheduler start) puts every running run in, so that a
-- missed note delays a node, never loses it.  With
-- taskflow.scheduler_ready_incremental off the read looks at every running
-- run (as before 1.5).  search_path pinned; not executable by PUBLIC.

-- The node runs of this database held by a live (or starting) worker, read
-- from shared memory when called (scheduler.c): _sched_recover reads it
-- after its snapshot, so that a node run a warm worker claimed and began
-- after the scheduler's pass started is never taken for one left by a dead
-- worker.
CREATE OR REPLACE FUNCTION taskflow._live_node_runs() RETURNS bigint[]
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'tf_sql_live_node_runs';

-- The running runs among p_runs (advanced by the tick) may have a ready node.
CREATE OR REPLACE FUNCTION taskflow._sched_ready_note(p_runs bigint[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF cardinality(p_runs) > 0 THEN
        INSERT INTO taskflow.sched_ready (run_id)
        SELECT r.id FROM taskflow.runs r
         WHERE r.id = ANY (p_runs) AND r.state = 'running'
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

-- The runs whose node runs may be ready: the ready set, the queue (at most
-- p_queue entries of it), runs with a retry or poll due, runs of the node
-- runs p_released (handed to a worker at the last read, whose worker is gone
-- now) still pending; with p_full every running run as well.
CREATE OR REPLACE FUNCTION taskflow._sched_ready_runs(p_released bigint[], p_full boolean)
RETURNS bigint[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_full THEN
        RETURN ARRAY(SELECT r.id FROM taskflow.runs r WHERE r.state = 'running'
                     UNION SELECT s.run_id FROM taskflow.sched_ready s);
    END IF;
    RETURN ARRAY(SELECT s.run_id FROM taskflow.sched_ready s
                 UNION
                 SELECT q.run_id FROM (SELECT x.run_id FROM taskflow.sched_queue x LIMIT 2000) q
                 UNION
                 SELECT nr.run_id FROM taskflow.node_runs nr
                  WHERE nr.state = 'retrying' AND nr.not_before <= clock_timestamp()
                 UNION
                 SELECT nr.run_id FROM taskflow.node_runs nr
                  WHERE nr.id = ANY (coalesce(p_released, '{}'))
                    AND nr.state IN ('pending', 'retrying'));
END
$$;

-- The scheduler's ready-node read (scheduler.c, tf_pass_dispatch): the rows
-- of _sched_ready_in (part 20: readiness, fairness, caps) over the runs of
-- _sched_ready_runs; then the ready set keeps the runs with a node run
-- ready (those handed out now are dropped by the next read: running, or
-- excluded as handed to a live worker) and drops the rest.
CREATE OR REPLACE FUNCTION taskflow._sched_ready_next(p_released bigint[], p_full boolean,
                                                      p_exclude bigint[], p_limit integer,
                                                      p_running oid[])
RETURNS TABLE (node_run_id bigint, run_id bigint, owner oid, owner_login boolean,
               flow text, node text, dispatch_seq integer, owner_cap integer, eligible boolean,
               owner_running integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    cands bigint[] := taskflow._sched_ready_runs(p_released, p_full);
    ready bigint[];
    seen  boolean := false;
    x     record;
BEGIN
    FOR x IN SELECT * FROM taskflow._sched_ready_in(cands, p_exclude, p_limit, p_running) LOOP
        IF NOT seen THEN
            ready := x.ready_runs;
            seen := true;
        END IF;
        node_run_id := x.node_run_id;
        run_id := x.run_id;
        owner := x.owner;
        owner_login := x.owner_login;
        flow := x.flow;
        node := x.node;
        dispatch_seq := x.dispatch_seq;
        owner_cap := x.owner_cap;
        eligible := x.eligible;
        owner_running := x.owner_running;
        RETURN NEXT;
    END LOOP;
    DELETE FROM taskflow.sched_ready s
     WHERE s.run_id = ANY (cands) AND s.run_id <> ALL (coalesce(ready, '{}'));
    -- (only what changes: a read that changes nothing writes nothing)
    IF cardinality(ready) > 0 THEN
        INSERT INTO taskflow.sched_ready (run_id)
        SELECT u.id FROM unnest(ready) u(id)
         WHERE NOT EXISTS (SELECT 1 FROM taskflow.sched_ready s WHERE s.run_id = u.id)
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION
    taskflow._live_node_runs(),
    taskflow._sched_ready_note(bigint[]),
    taskflow._sched_ready_runs(bigint[], boolean),
    taskflow._sched_ready_next(bigint[], boolean, bigint[], integer, oid[])
FROM PUBLIC;
-- taskflow extension script, part 99: hardening of the 1.4.0 review
-- (replayable).  Owner: review.  See docs/security.md.

-- The owner of the flow of a node run (NULL: no such node run).  A node
-- worker serves one owner: after taskflow._node_begin has marked a node run
-- running and read the node's body, it checks in the same transaction, with
-- this newer snapshot, that the flow still belongs to that owner, and rolls
-- the begin back otherwise (the scheduler then hands the node run to a
-- worker of the new owner).  A body changed by a member of a new owner can
-- only have been read if the owner change committed before it, so this
-- later look sees the new owner.  No row lock: a user holding the flow's
-- row (an open transaction) cannot make workers wait.
-- (PL/pgSQL, plan cached per worker: as LANGUAGE sql with SET it was
-- planned again at every node begin, 0.34 ms; issue 11)
CREATE OR REPLACE FUNCTION taskflow._node_owner(p_node_run_id bigint) RETURNS oid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o oid;
BEGIN
    SELECT f.owner::oid INTO o
      FROM taskflow.node_runs nr
      JOIN taskflow.runs r ON r.id = nr.run_id
      JOIN taskflow.flows f ON f.id = r.flow_id
     WHERE nr.id = p_node_run_id;
    RETURN o;
END
$$;
REVOKE ALL ON FUNCTION taskflow._node_owner(bigint) FROM PUBLIC;
-- taskflow extension script, part 99: hardening of the 1.5.0 review of what
-- 1.4 added (replayable).  Owner: review2.  See docs/security.md ("Review
-- of 1.4").

-- The launcher's wake (re-read pg_database, look at this database again):
-- only the install script calls it (as the extension's owner); every role
-- could call it in a loop and keep the cluster's launcher and this
-- database's scheduler busy.  (taskflow._wake() stays executable: the
-- triggers on a user's own catalog writes call it as that user.)
REVOKE ALL ON FUNCTION taskflow._wake_launcher() FROM PUBLIC;
-- taskflow extension script, part 99: hardening of the 1.7.0 review of what
-- 1.6 added (replayable).  Owner: review4.  See docs/security.md ("Review
-- of 1.6").

-- The engine's own transaction locks (src/lock_guard.c), in a key space no
-- role's pg_advisory_lock reaches: part 93's event firing and trigger-link
-- changes used pg_advisory_xact_lock, whose keys any role could hold (idle,
-- in a session lock) and so stop the scheduler's tick of its database.
CREATE OR REPLACE FUNCTION taskflow._xact_lock(key1 integer, key2 integer) RETURNS void
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'tf_xact_lock';
REVOKE ALL ON FUNCTION taskflow._xact_lock(integer, integer) FROM PUBLIC;

-- A role with BYPASSRLS that is not a superuser skips the policies that keep
-- every role to the flows of the owners it is a member of: it could add or
-- change a node (or a variable its body renders, an edge) of a superuser's
-- flow, and the node then ran as that superuser.  These triggers check
-- membership of the row's owner for such a role, as the policies would;
-- for every other role their WHEN is false (src/bypassrls.c).  Reading stays
-- what BYPASSRLS grants.
CREATE OR REPLACE FUNCTION taskflow._rls_bypassed() RETURNS boolean
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_rls_bypassed';

CREATE OR REPLACE FUNCTION taskflow._bypassrls_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fid bigint;
    fname text;
    o regrole;
BEGIN
    FOR i IN 1..2 LOOP
        CONTINUE WHEN (i = 1 AND TG_OP = 'INSERT') OR (i = 2 AND TG_OP = 'DELETE');
        IF TG_TABLE_NAME = 'flows' THEN
            IF i = 1 THEN fname := OLD.name; o := OLD.owner;
            ELSE fname := NEW.name; o := NEW.owner; END IF;
        ELSE
            fid := CASE WHEN i = 1 THEN OLD.flow_id ELSE NEW.flow_id END;
            SELECT f.name, f.owner INTO fname, o FROM taskflow.flows f WHERE f.id = fid;
        END IF;
        IF o IS NOT NULL AND NOT taskflow._is_member(o) THEN
            RAISE EXCEPTION 'permission denied to change flow "%" of owner %', fname, o
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('%s is not a member of %s; BYPASSRLS lets a role read '
                                      'every flow, not change it.', current_user, o),
                      HINT = 'Change the flows of the owners your role is a member of.';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE OR REPLACE TRIGGER flows_bypassrls BEFORE INSERT OR UPDATE OR DELETE ON taskflow.flows
    FOR EACH ROW WHEN (taskflow._rls_bypassed()) EXECUTE FUNCTION taskflow._bypassrls_guard();
CREATE OR REPLACE TRIGGER nodes_bypassrls BEFORE INSERT OR UPDATE OR DELETE ON taskflow.nodes
    FOR EACH ROW WHEN (taskflow._rls_bypassed()) EXECUTE FUNCTION taskflow._bypassrls_guard();
CREATE OR REPLACE TRIGGER edges_bypassrls BEFORE INSERT OR UPDATE OR DELETE ON taskflow.edges
    FOR EACH ROW WHEN (taskflow._rls_bypassed()) EXECUTE FUNCTION taskflow._bypassrls_guard();
CREATE OR REPLACE TRIGGER variables_bypassrls BEFORE INSERT OR UPDATE OR DELETE ON taskflow.variables
    FOR EACH ROW WHEN (taskflow._rls_bypassed()) EXECUTE FUNCTION taskflow._bypassrls_guard();

-- The parent rows of what the scheduler's transaction inserts for a user's
-- flow outside its own flow lock -- an event-triggered run (its flow and
-- nodes), an alert's delivery (the alert and the flow) -- locked FOR SHARE
-- SKIP LOCKED: false, at once, when any of them has an uncommitted change.
-- The foreign keys' FOR KEY SHARE waited for an open transaction of the
-- owner that dropped the flow, a node or the alert, and the scheduler's
-- tick with it: every owner's runs of the database.  Not FOR KEY SHARE SKIP
-- LOCKED: PostgreSQL waits regardless for a newer version of a row
-- (drop_flow updates the flow's row, then deletes it).  The caller skips
-- the event or alert with a WARNING.  Only in the scheduler: elsewhere (a
-- run operation through the gate) true at once, the foreign keys wait as
-- before -- for the caller's own operation.
CREATE OR REPLACE FUNCTION taskflow._in_scheduler() RETURNS boolean
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_in_scheduler';

CREATE OR REPLACE FUNCTION taskflow._lock_parents(p_flow bigint, p_nodes boolean, p_alert bigint)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT taskflow._in_scheduler() THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM taskflow.flows x WHERE x.id = p_flow FOR SHARE SKIP LOCKED) THEN
        RETURN false;
    END IF;
    IF p_nodes AND (SELECT count(*) FROM taskflow.nodes n WHERE n.flow_id = p_flow)
                   > (SELECT count(*) FROM (SELECT 1 FROM taskflow.nodes n WHERE n.flow_id = p_flow
                                             FOR SHARE SKIP LOCKED) l) THEN
        RETURN false;
    END IF;
    IF p_alert IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM taskflow.alerts x WHERE x.id = p_alert FOR SHARE SKIP LOCKED) THEN
        RETURN false;
    END IF;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION taskflow._lock_parents(bigint, boolean, bigint) FROM PUBLIC;
