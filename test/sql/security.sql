-- Security (issue 9): search_path hygiene of every SQL function of the
-- extension, the attacks it stops (a shadowed pg_has_role in the policies, a
-- trojan operator reached through the templates), and the catalog guard
-- (direct INSERT/UPDATE get the API's checks; engine-owned columns are out
-- of reach).  Roles: regress_sec_owner owns a flow, regress_sec_member is a
-- member of it, regress_sec_stranger is the attacker (CREATE on its own
-- schema and, for the test, on a writable public).
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never

CREATE ROLE regress_sec_owner;
CREATE ROLE regress_sec_member IN ROLE regress_sec_owner;
CREATE ROLE regress_sec_stranger;
CREATE SCHEMA attacker AUTHORIZATION regress_sec_stranger;
GRANT USAGE ON SCHEMA attacker TO PUBLIC;
GRANT CREATE ON SCHEMA public TO PUBLIC;       -- a writable public (pre-15 default)
-- what the shadows record when they are called, and by whom
CREATE TABLE public.loot (who text, what text);
GRANT INSERT, SELECT ON public.loot TO PUBLIC;

------------------------------------------------------------------------------
-- 1 generic: every SQL function of the extension pins search_path, except
--   inlinable helpers / caller-path wrappers, whose bodies qualify every name
------------------------------------------------------------------------------

-- problems of a SQL body run under a caller's search_path: unqualified
-- function calls, operators not written OPERATOR(pg_catalog.x), casts to
-- types not written pg_catalog.x
CREATE FUNCTION pg_temp.unqualified(src text) RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH s0 AS (SELECT regexp_replace(src, '''([^'']|'''')*''', '''''', 'g') AS s),   -- literals
         s1 AS (SELECT regexp_replace(regexp_replace(s, 'OPERATOR\(pg_catalog\.[^)]+\)', ' ', 'g'),
                                      '::pg_catalog\.\w+', ' ', 'g') AS s FROM s0)
    SELECT coalesce(array_agg(DISTINCT p ORDER BY p), '{}')
      FROM (SELECT m[1] || '()' AS p
              FROM s1, regexp_matches(s, '(?:^|[^.\w$])([A-Za-z_]\w*)\s*\(', 'g') m
             WHERE lower(m[1]) NOT IN ('select', 'exists', 'in', 'values', 'any', 'all', 'as', 'from',
                                       'where', 'and', 'or', 'not', 'on', 'over', 'filter', 'using')
            UNION ALL
            SELECT 'operator ' || m[1]
              FROM s1, regexp_matches(s, '([-+*/<>=~!@#%^&|`?]+|::)', 'g') m) x
$$;
-- the checker finds what it must find (the 1.0.0 bodies of the two fixed
-- functions)
SELECT pg_temp.unqualified($$ SELECT pg_has_role(current_user, owner, 'MEMBER') $$) AS old_is_member;
SELECT pg_temp.unqualified($$ SELECT 1 FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND x::oid IS NULL $$) AS old_template_table;

-- functions written in SQL or PL/pgSQL without a pinned search_path: only
-- the inlinable policy helper and the template wrapper
SELECT p.oid::regprocedure AS unpinned, l.lanname,
       pg_temp.unqualified(p.prosrc) AS unqualified_names
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'taskflow'::regnamespace
   AND l.lanname IN ('sql', 'plpgsql')
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                    WHERE c ~ '^search_path=pg_catalog, *pg_temp$')
 ORDER BY 1::text;

-- the extension's functions that the policies and views call are pinned or
-- in that list
SELECT DISTINCT coalesce(pol.polrelid::regclass::text, rw.ev_class::regclass::text) AS used_by,
       d.refobjid::regprocedure AS function,
       CASE WHEN l.lanname = 'c' THEN 'C'
            WHEN EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c ~ '^search_path=pg_catalog, *pg_temp$')
            THEN 'pinned' ELSE 'qualified (unpinned)' END AS search_path
  FROM pg_depend d
  JOIN pg_proc p ON p.oid = d.refobjid
  JOIN pg_language l ON l.oid = p.prolang
  LEFT JOIN pg_policy pol ON d.classid = 'pg_policy'::regclass AND pol.oid = d.objid
  LEFT JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND rw.oid = d.objid
 WHERE d.refclassid = 'pg_proc'::regclass
   AND p.pronamespace = 'taskflow'::regnamespace
   AND d.classid IN ('pg_policy'::regclass, 'pg_rewrite'::regclass)
 ORDER BY 1, 2;

-- every function executable by PUBLIC in taskflow that is not plain C
-- runs either pinned or fully qualified (so the list above is complete)
SELECT count(*) AS public_sql_functions,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                                       WHERE c ~ '^search_path=pg_catalog, *pg_temp$')) AS pinned
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'taskflow'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
   AND has_function_privilege('public', p.oid, 'EXECUTE') \gset
SELECT :public_sql_functions - :pinned AS unpinned_public_sql_functions;

------------------------------------------------------------------------------
-- owner's flow; the stranger has a flow of its own
------------------------------------------------------------------------------
CREATE SCHEMA sec;
CREATE TABLE sec.orders (id int, created_date date);
GRANT USAGE ON SCHEMA sec TO regress_sec_owner;
GRANT SELECT, DELETE ON sec.orders TO regress_sec_owner;
SET ROLE regress_sec_owner;
SELECT 'created' FROM taskflow.create_flow('sec_owner_flow', '0 5 * * *', enabled => false);
SELECT 'added' FROM taskflow.add_node('sec_owner_flow', 'work', 'sql', 'SELECT 1');
RESET ROLE;
SET ROLE regress_sec_stranger;
SELECT 'created' FROM taskflow.create_flow('sec_stranger_flow');
SELECT 'added' FROM taskflow.add_node('sec_stranger_flow', 'own', 'sql',
                                      'ALTER ROLE regress_sec_stranger SUPERUSER');
RESET ROLE;

CREATE TEMP VIEW state AS
SELECT f.name, f.owner, f.schedule, f.timezone, f.max_active_runs, f.start_date,
       f.created_at > now() - interval '1 hour' AS created_recently, f.scheduled_until,
       (SELECT string_agg(format('%s:%s:%s:%s', n.name, n.kind, n.retries, n.options), ' ' ORDER BY n.name)
          FROM taskflow.nodes n WHERE n.flow_id = f.id) AS nodes,
       (SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_sec_stranger') AS stranger_is_superuser
  FROM taskflow.flows f WHERE f.name LIKE 'sec\_%' ORDER BY f.name;
TABLE state;

------------------------------------------------------------------------------
-- 2 attack: a shadowed pg_has_role (item 1)
------------------------------------------------------------------------------
SET ROLE regress_sec_stranger;
CREATE FUNCTION attacker.pg_has_role(name, regrole, text) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION attacker.pg_has_role(name, oid, text) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
CREATE FUNCTION public.pg_has_role(name, regrole, text) RETURNS boolean
    LANGUAGE sql AS $$ SELECT true $$;
SET search_path = attacker, public, pg_catalog;
-- the shadow is live for unqualified calls ...
SELECT pg_has_role(current_user, 'regress_sec_owner'::regrole, 'MEMBER') AS shadow_answers;
-- ... but the policies do not use it: only its own flow is visible
SELECT name FROM taskflow.flows;
SELECT flow FROM taskflow.flow_status;
-- and the owner of its flow cannot become a role it is not a member of
SELECT regress.try($$ UPDATE taskflow.flows SET owner = 'regress_sec_owner' WHERE name = 'sec_stranger_flow' $$);
SELECT regress.try($$ UPDATE taskflow.flows SET schedule = 'every 1 minute' WHERE name = 'sec_owner_flow' $$);
SELECT regress.try($$ SELECT taskflow.alter_flow('sec_stranger_flow', owner => 'regress_sec_owner') $$);
SELECT regress.try($$ SELECT taskflow.run_flow('sec_owner_flow') $$);
RESET search_path;
-- the default search_path with a writable public: same
SELECT name FROM taskflow.flows;
RESET ROLE;
TABLE state;

------------------------------------------------------------------------------
-- 3 attack: a trojan operator in a writable public reached by a superuser
--   using a template (item 2)
------------------------------------------------------------------------------
SET ROLE regress_sec_stranger;
CREATE FUNCTION public.trojan_eq(oid, regclass) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.loot VALUES (current_user, '=(oid, regclass)');
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE regress_sec_stranger SUPERUSER';
    END IF;
    RETURN $1 OPERATOR(pg_catalog.=) $2::pg_catalog.oid;
END
$$;
CREATE OPERATOR public.= (FUNCTION = public.trojan_eq, LEFTARG = oid, RIGHTARG = regclass);
RESET ROLE;
-- the trojan is live for unqualified SQL (a member's own query)
SET ROLE regress_sec_member;
SELECT count(*) AS columns FROM pg_attribute a WHERE a.attrelid = 'sec.orders'::regclass AND a.attnum > 0;
RESET ROLE;
SELECT DISTINCT who, what FROM public.loot;
TRUNCATE public.loot;
-- a superuser creates flows from templates with the default search_path
SHOW search_path;
-- (the server does not exist: the error comes after the table lookup)
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'sec_tpl_archive',
    '{"table": "sec.orders", "date_column": "created_date", "server": "sec_none", "enabled": false}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('purge_older_than', 'sec_tpl_purge',
    '{"table": "sec.orders", "date_column": "created_date", "keep": "90 days", "schedule": ""}') $$);
-- an unqualified table name still resolves under the caller's search_path
SET search_path = sec, public;
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('purge_older_than', 'sec_tpl_purge2',
    '{"table": "orders", "date_column": "created_date", "keep": "90 days", "schedule": ""}') $$);
RESET search_path;
SELECT n.body FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id
 WHERE f.name IN ('sec_tpl_purge', 'sec_tpl_purge2') ORDER BY f.name, n.name;
SELECT who, what FROM public.loot;
SELECT rolsuper AS stranger_is_superuser FROM pg_roles WHERE rolname = 'regress_sec_stranger';
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name IN ('sec_tpl_purge', 'sec_tpl_purge2');
DROP OPERATOR public.= (oid, regclass);
DROP FUNCTION public.trojan_eq(oid, regclass);

------------------------------------------------------------------------------
-- 4 generic attack: the stranger shadows, in its own schema (first on the
--   search_path) and in public, every pg_catalog function the extension's
--   SQL bodies call and the common operators; a superuser then uses the
--   whole definition API with that search_path.  No shadow may run.
------------------------------------------------------------------------------
SET ROLE regress_sec_stranger;
DO $do$
DECLARE
    r record;
    n integer := 0;   -- operator function names
BEGIN
    -- functions named in the bodies, every pg_catalog overload we can mimic
    FOR r IN
        SELECT DISTINCT p.proname, pg_catalog.oidvectortypes(p.proargtypes) AS args,
               pg_catalog.format_type(p.prorettype, NULL) AS ret, p.proretset
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'pg_catalog'::regnamespace
           AND p.prokind = 'f' AND p.proargmodes IS NULL AND p.provariadic = 0
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t
                            WHERE t.oid = ANY (p.proargtypes::oid[] || p.prorettype) AND t.typtype = 'p')
           AND p.proname IN (
               SELECT DISTINCT lower(m[1])
                 FROM pg_catalog.pg_proc q,
                      regexp_matches(q.prosrc, '(?:^|[^.\w$])([A-Za-z_]\w*)\s*\(', 'g') m
                WHERE q.pronamespace = 'taskflow'::regnamespace
                  AND q.prolang IN (SELECT oid FROM pg_catalog.pg_language WHERE lanname IN ('sql', 'plpgsql')))
    LOOP
        EXECUTE format('CREATE OR REPLACE FUNCTION attacker.%I(%s) RETURNS %s%s LANGUAGE sql AS %L',
                       r.proname, r.args, CASE WHEN r.proretset THEN 'SETOF ' ELSE '' END, r.ret,
                       format('INSERT INTO public.loot VALUES (current_user, %L); SELECT NULL::%s',
                              r.proname || '(' || r.args || ')', r.ret));
    END LOOP;
    -- operators with the signatures of pg_catalog's
    FOR r IN
        SELECT o.oprname, pg_catalog.format_type(o.oprleft, NULL) AS l,
               pg_catalog.format_type(o.oprright, NULL) AS rt, pg_catalog.format_type(o.oprresult, NULL) AS ret
          FROM pg_catalog.pg_operator o
         WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprkind = 'b'
           AND o.oprname IN ('=', '<>', '<', '>', '<=', '>=', '||', '-', '+', '~', '!~', '~*', '?',
                             '->', '->>', '#>>', '@>')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t
                            WHERE t.oid IN (o.oprleft, o.oprright, o.oprresult) AND t.typtype = 'p')
    LOOP
        n := n + 1;
        EXECUTE format('CREATE FUNCTION attacker.op%s(%s, %s) RETURNS %s LANGUAGE sql AS %L',
                       n, r.l, r.rt, r.ret,
                       format('INSERT INTO public.loot VALUES (current_user, %L); SELECT NULL::%s',
                              r.oprname || '(' || r.l || ', ' || r.rt || ')', r.ret));
        EXECUTE format('CREATE OPERATOR attacker.%s (FUNCTION = attacker.op%s, LEFTARG = %s, RIGHTARG = %s)',
                       r.oprname, n, r.l, r.rt);
    END LOOP;
END
$do$;
-- operators with better-matching signatures than pg_catalog's
CREATE FUNCTION attacker.eq_oid_regclass(oid, regclass) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO public.loot VALUES (current_user, '=(oid, regclass)'); SELECT NULL::boolean $$;
CREATE OPERATOR attacker.= (FUNCTION = attacker.eq_oid_regclass, LEFTARG = oid, RIGHTARG = regclass);
CREATE OPERATOR public.= (FUNCTION = attacker.eq_oid_regclass, LEFTARG = oid, RIGHTARG = regclass);
CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO public.loot VALUES (current_user, 'lower(varchar)'); SELECT NULL::text $$;
RESET ROLE;
SELECT count(*) > 100 AS many_shadows FROM pg_proc WHERE pronamespace = 'attacker'::regnamespace;

-- a superuser, attacker first on the search_path, uses the API (top-level
-- statements here use no operator and no unqualified function)
SET search_path = attacker, public, pg_catalog;
SELECT 'created' FROM taskflow.create_flow('sec_su_flow', 'every 1 hour', 'Europe/Berlin',
                                           enabled => false);
SELECT 'altered' FROM taskflow.alter_flow('sec_su_flow', schedule => '0 6 * * *', timezone => 'UTC',
                                          max_active_runs => 2);
SELECT 'set' FROM taskflow.set_variable('sec_su_flow', 'ymd', 'yyyymmdd of bizdate - 1 day');
SELECT 'set' FROM taskflow.set_variable('sec_su_flow', 'k', 'v', constant => true);
SELECT 'added' FROM taskflow.add_node('sec_su_flow', 'a', 'sql', 'SELECT ${ymd:literal}, ${k}');
SELECT 'added' FROM taskflow.add_node('sec_su_flow', 'b', 'wait', options => '{"delay": "1 min"}',
                                      after => ARRAY['a']);
SELECT 'added' FROM taskflow.add_node('sec_su_flow', 'c', 'notify', options => '{"channel": "x"}');
SELECT 'added' FROM taskflow.add_edge('sec_su_flow', 'b', 'c');
SELECT 'altered' FROM taskflow.alter_node('sec_su_flow', 'a', body => 'SELECT ${ymd}', retries => 2);
SELECT taskflow.render('sec_su_flow', 'a', '2020-06-01');
SELECT taskflow.render('sec_su_flow', 'b', '2020-06-01');
SELECT taskflow.flow_graph('sec_su_flow', 'mermaid');
SELECT * FROM taskflow.next_runs('0 6 * * *', '2020-06-01 00:00+00', 1, 'UTC');
SELECT 'created' FROM taskflow.create_flow_from_template('purge_older_than', 'sec_su_tpl',
    '{"table": "sec.orders", "date_column": "created_date", "keep": "90 days", "schedule": ""}');
SELECT 'created' FROM taskflow.create_flow_from_template('sql_daily', 'sec_su_tpl2',
    '{"sql": "SELECT 1", "enabled": false}');
SELECT name FROM taskflow.templates();
SELECT flow, schedule, enabled FROM taskflow.flow_status WHERE flow LIKE 'sec\_su%' ORDER BY flow;
SELECT 'dropped' FROM taskflow.drop_edge('sec_su_flow', 'b', 'c');
SELECT 'dropped' FROM taskflow.drop_node('sec_su_flow', 'c');
SELECT 'dropped' FROM taskflow.drop_flow('sec_su_tpl');
SELECT 'dropped' FROM taskflow.drop_flow('sec_su_tpl2');
SELECT 'dropped' FROM taskflow.drop_flow('sec_su_flow');
RESET search_path;
-- the member and the stranger as well (nothing leaks to the stranger)
SET ROLE regress_sec_member;
SET search_path = attacker, public, pg_catalog;
SELECT 'added' FROM taskflow.add_node('sec_owner_flow', 'more', 'sql', 'SELECT 2', after => ARRAY['work']);
SELECT 'dropped' FROM taskflow.drop_node('sec_owner_flow', 'more');
SELECT taskflow.render('sec_owner_flow', 'work', '2020-06-01');
RESET search_path;
RESET ROLE;
SET ROLE regress_sec_stranger;
SET search_path = attacker, public, pg_catalog;
SELECT name FROM taskflow.flows;
SELECT taskflow.render('sec_owner_flow', 'work');
RESET search_path;
RESET ROLE;
SELECT who, what FROM public.loot ORDER BY 1, 2;
TABLE state;
SET client_min_messages = warning;
DROP SCHEMA attacker CASCADE;
RESET client_min_messages;
DROP OPERATOR public.= (oid, regclass);
DROP FUNCTION public.lower(varchar), public.pg_has_role(name, regrole, text);

------------------------------------------------------------------------------
-- 5 direct catalog writes (item 5): engine-owned columns are out of reach,
--   the rest gets the API's checks
------------------------------------------------------------------------------
SET ROLE regress_sec_stranger;
-- a flow that would make the scheduler create ~800 million catch-up periods
SELECT regress.try($$ INSERT INTO taskflow.flows (name, schedule, created_at)
                      VALUES ('sec_x', 'every 1 second', '2000-01-01') $$);
SELECT regress.try($$ INSERT INTO taskflow.flows (name, schedule, scheduled_until)
                      VALUES ('sec_x', 'every 1 second', '2000-01-01') $$);
SELECT regress.try($$ INSERT INTO taskflow.flows (name, updated_at) VALUES ('sec_x', '2000-01-01') $$);
SELECT regress.try($$ UPDATE taskflow.flows SET created_at = '2000-01-01' WHERE name = 'sec_stranger_flow' $$);
SELECT regress.try($$ UPDATE taskflow.flows SET scheduled_until = '2000-01-01' WHERE name = 'sec_stranger_flow' $$);
-- what the API would refuse
SELECT regress.try($$ INSERT INTO taskflow.flows (name, schedule) VALUES ('sec_x', 'every 0 seconds') $$);
SELECT regress.try($$ INSERT INTO taskflow.flows (name, schedule) VALUES ('sec_x', '61 * * * *') $$);
SELECT regress.try($$ INSERT INTO taskflow.flows (name, timezone) VALUES ('sec_x', 'Mars/Olympus') $$);
SELECT regress.try($$ INSERT INTO taskflow.flows (name, owner) VALUES ('sec_x', 'regress_sec_owner') $$);
SELECT regress.try($$ INSERT INTO taskflow.flows (name, start_date, end_date)
                      VALUES ('sec_x', '2020-02-01', '2020-01-01') $$);
SELECT regress.try($$ UPDATE taskflow.flows SET schedule = 'sometimes' WHERE name = 'sec_stranger_flow' $$);
SELECT regress.try($$ UPDATE taskflow.flows SET timezone = 'Nowhere' WHERE name = 'sec_stranger_flow' $$);
SELECT regress.try($$ UPDATE taskflow.flows SET end_date = '1999-01-01', start_date = '2000-01-01'
                       WHERE name = 'sec_stranger_flow' $$);
SELECT regress.try($$ UPDATE taskflow.flows SET max_active_runs = 0 WHERE name = 'sec_stranger_flow' $$);
-- nodes
SELECT id AS stranger_flow_id FROM taskflow.flows WHERE name = 'sec_stranger_flow' \gset
SELECT regress.try(format($$ INSERT INTO taskflow.nodes (flow_id, name, kind, body)
                             VALUES (%s, 'x', 'shell', 'rm -rf /') $$, :stranger_flow_id));
SELECT regress.try(format($$ INSERT INTO taskflow.nodes (flow_id, name, kind)
                             VALUES (%s, 'x', 'sql') $$, :stranger_flow_id));
SELECT regress.try(format($$ INSERT INTO taskflow.nodes (flow_id, name, kind, options)
                             VALUES (%s, 'x', 'wait', '{"delay": "-1 day"}') $$, :stranger_flow_id));
SELECT regress.try(format($$ INSERT INTO taskflow.nodes (flow_id, name, kind, body, options)
                             VALUES (%s, 'x', 'sql', 'SELECT 1', '{"shell": "yes"}') $$, :stranger_flow_id));
SELECT regress.try(format($$ INSERT INTO taskflow.nodes (flow_id, name, kind, body)
                             VALUES (%s, 'x', 'sql', 'SELECT ${undeclared}') $$, :stranger_flow_id));
SELECT regress.try(format($$ INSERT INTO taskflow.nodes (flow_id, name, kind, options)
                             VALUES (%s, 'x', 'archive', '{"server": "nowhere", "path": "p/", "query": "SELECT 1"}') $$,
                          :stranger_flow_id));
SELECT regress.try(format($$ INSERT INTO taskflow.nodes (flow_id, name, kind, body, created_at)
                             VALUES (%s, 'x', 'sql', 'SELECT 1', '2000-01-01') $$, :stranger_flow_id));
SELECT regress.try($$ UPDATE taskflow.nodes SET kind = 'shell' WHERE name = 'own' $$);
SELECT regress.try($$ UPDATE taskflow.nodes SET options = '{"database": "nowhere"}' WHERE name = 'own' $$);
SELECT regress.try($$ UPDATE taskflow.nodes SET retry_delay = '-1 min' WHERE name = 'own' $$);
SELECT regress.try($$ UPDATE taskflow.nodes SET created_at = '2000-01-01' WHERE name = 'own' $$);
SELECT regress.try(format($$ UPDATE taskflow.nodes SET flow_id = %s WHERE name = 'own' $$, :stranger_flow_id));
-- what is fine through the API is fine directly, with the API's normalization
SELECT regress.try($$ INSERT INTO taskflow.flows (name, schedule, timezone, enabled)
                      VALUES ('sec_direct', ' every 1 hour ', 'europe/berlin', false) $$);
SELECT regress.try($$ INSERT INTO taskflow.nodes (flow_id, name, kind, body)
                      SELECT id, 'n', 'sql', 'SELECT 1' FROM taskflow.flows WHERE name = 'sec_direct' $$);
SELECT regress.try($$ UPDATE taskflow.nodes SET retries = 3, body = 'SELECT 2' WHERE name = 'n' $$);
SELECT name, owner, schedule, timezone, scheduled_until, created_at > now() - interval '1 hour' AS created_now
  FROM taskflow.flows WHERE name = 'sec_direct';
SELECT 'dropped' FROM taskflow.drop_flow('sec_direct');
RESET ROLE;
-- nothing else changed hands or values
TABLE state;

------------------------------------------------------------------------------
-- 6 ${x:literal} inside a dollar-quoted string (item 7d): a value holding
--   the closing delimiter is refused; elsewhere it is an ordinary literal
------------------------------------------------------------------------------
SELECT regress.try($t$ SELECT taskflow._render_text(
    'DO $$ BEGIN RAISE NOTICE ''%'', ${v:literal}; END $$',
    '{"v": "x$$; END $$; ALTER ROLE me SUPERUSER; DO $$ BEGIN"}', 'node "n" body') $t$);
SELECT regress.try($t$ SELECT taskflow._render_text(
    'DO $body$ BEGIN PERFORM ${v:ident}; END $body$', '{"v": "a$body$b"}', 'node "n" body') $t$);
-- other tags, other places: fine
SELECT taskflow._render_text('DO $body$ BEGIN RAISE NOTICE ''%'', ${v:literal}; END $body$',
                             '{"v": "x$$y"}');
SELECT taskflow._render_text('SELECT ${v:literal}, ''$$'', "$$", $1 -- $$
SELECT /* $$ */ ${v:literal}, E''\'' $$'' || ${v:literal}', '{"v": "x$$y"}');
SELECT taskflow._render_text('DO $$ BEGIN RAISE NOTICE ''%'', ${v:literal}; END $$ ; SELECT ${v:literal}',
                             '{"v": "x$y"}');
SELECT taskflow._render_text('SELECT $$a$$ || ${v:literal}', '{"v": "$$"}');
SELECT taskflow._render_text('SELECT a$$b, ${v:literal}', '{"v": "$$"}');
-- the plain form is raw text by definition (docs/variables.md)
SELECT taskflow._render_text('DO $$ ${v} $$', '{"v": "$$"}');

------------------------------------------------------------------------------
-- clean up
------------------------------------------------------------------------------
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'sec\_%' ORDER BY name;
DROP TABLE public.loot;
DROP SCHEMA sec CASCADE;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DROP ROLE regress_sec_owner, regress_sec_member, regress_sec_stranger;
