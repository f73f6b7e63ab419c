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
