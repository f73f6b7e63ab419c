-- apply_flow's C create path (src/define_create.c): a new flow of a plain
-- definition is inserted directly, with the per-row triggers skipped by a
-- flag only that C code sets.  It must give the same rows, history and
-- errors as the API path, as a superuser and as a plain role, and the flag
-- must be out of users' reach.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never
\set VERBOSITY default

-- which path a call took: calls of the PL/pgSQL API path (counted in the
-- transaction: the difference within one transaction is exact)
SET track_functions = 'all';
CREATE FUNCTION pg_temp.api_calls() RETURNS bigint LANGUAGE sql AS $$
    SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions
     WHERE schemaname = 'taskflow' AND funcname IN ('_apply_flow_api', '_create_flow_api', '_add_node_api')
$$;
-- a flow's definition without its name, and its history without ids and times
CREATE FUNCTION pg_temp.def(flow text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT taskflow.flow_definition(flow) - '{version}'::text[] #- '{flow,name}'
$$;
CREATE FUNCTION pg_temp.hist(flow text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_agg(jsonb_build_array(v.version, v.session_role, v.changed_by,
                                       v.xid = pg_current_xact_id(), v.changed_at = now(),
                                       c.kind, c.op, c.old,
                                       c.new - '{name}'::text[] - '{from_node,to_node}'::text[],
                                       c.session_role, c.changed_by,
                                       -- keys: node ids and edges as node names
                                       CASE c.kind WHEN 'node' THEN (SELECT n.name FROM taskflow.nodes n WHERE n.id = c.object_key::bigint)
                                                   WHEN 'edge' THEN (SELECT a.name || '>' || b.name FROM taskflow.nodes a, taskflow.nodes b
                                                                      WHERE a.id = split_part(c.object_key, '>', 1)::bigint
                                                                        AND b.id = split_part(c.object_key, '>', 2)::bigint)
                                                   ELSE c.object_key END)
                     ORDER BY c.id)
      FROM taskflow.flows f
      JOIN taskflow.flow_versions v ON v.flow_id = f.id
      JOIN taskflow.definition_changes c ON c.flow_id = v.flow_id AND c.version = v.version
     WHERE f.name = flow
$$;

-- the same flow both ways, each in one transaction: the 3-node chain of the
-- benchmark with a fan-in, settings and node settings
BEGIN;
SELECT taskflow.create_flow('ff_api', schedule => ' 0 5 * * * ', timezone => 'asia/shanghai',
                            description => 'chain', max_active_runs => 2, priority => 7,
                            suspend_after_failures => 3, catchup => false) > 0 AS ok;
SELECT taskflow.add_node('ff_api', 'a', 'sql', 'SELECT 1', retries => 2, timeout => '5 min') > 0 AS ok;
SELECT taskflow.add_node('ff_api', 'b', 'SQL ', 'SELECT 2', after => ARRAY['a'], trigger_rule => 'all_done',
                         retry_delay => '10 s') > 0 AS ok;
SELECT taskflow.add_node('ff_api', 'c', 'sql', 'SELECT 3') > 0 AS ok;
SELECT taskflow.add_node('ff_api', 'd', 'sql', 'SELECT 4', after => ARRAY['c', 'b']) > 0 AS ok;
SELECT taskflow.add_node('ff_api', 'w', 'wait', 'true', options => '{"delay": "5 s"}') > 0 AS ok;
SELECT pg_temp.hist('ff_api') AS api_hist \gset
COMMIT;
-- the same through the PL/pgSQL API functions themselves (what create_flow
-- and add_node fall back to)
BEGIN;
SELECT pg_temp.api_calls() AS c0 \gset
SELECT taskflow._create_flow_api('ff_pl', schedule => ' 0 5 * * * ', timezone => 'asia/shanghai',
                            description => 'chain', max_active_runs => 2, priority => 7,
                            suspend_after_failures => 3, catchup => false) > 0 AS ok;
SELECT taskflow._add_node_api('ff_pl', 'a', 'sql', 'SELECT 1', retries => 2, timeout => '5 min') > 0 AS ok;
SELECT taskflow._add_node_api('ff_pl', 'b', 'SQL ', 'SELECT 2', after => ARRAY['a'], trigger_rule => 'all_done',
                         retry_delay => '10 s') > 0 AS ok;
SELECT taskflow._add_node_api('ff_pl', 'c', 'sql', 'SELECT 3') > 0 AS ok;
SELECT taskflow._add_node_api('ff_pl', 'd', 'sql', 'SELECT 4', after => ARRAY['c', 'b']) > 0 AS ok;
SELECT taskflow._add_node_api('ff_pl', 'w', 'wait', 'true', options => '{"delay": "5 s"}') > 0 AS ok;
SELECT pg_temp.hist('ff_pl') = :'api_hist' AS same_history_as_api_functions;
COMMIT;
SELECT pg_temp.def('ff_pl') = pg_temp.def('ff_api') AS same_definition_as_api_functions;
-- errors of create_flow and add_node: the API functions' own
CREATE FUNCTION pg_temp.err_sql(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hint text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || coalesce(E'\n  DETAIL: ' || nullif(det, ''), '')
           || coalesce(E'\n  HINT: ' || nullif(hint, ''), '');
END
$$;
SELECT count(*) AS changes FROM taskflow.definition_changes \gset
SELECT call, pg_temp.err_sql('SELECT taskflow.' || call) AS error,
       pg_temp.err_sql('SELECT taskflow.' || call) = pg_temp.err_sql('SELECT taskflow._' || replace(call, '(', '_api(')) AS same_as_api
  FROM (VALUES
    ($$create_flow('ff_api')$$),
    ($$create_flow('ff x')$$),
    ($$create_flow('ff_bad', schedule => '* * *')$$),
    ($$create_flow('ff_bad', timezone => 'Mars/Olympus')$$),
    ($$create_flow('ff_bad', max_active_runs => 0)$$),
    ($$create_flow('ff_bad', priority => 0)$$),
    ($$create_flow('ff_bad', suspend_after_failures => 1001)$$),
    ($$create_flow(NULL)$$),
    ($$add_node('ff_nope', 'x', 'sql', 'SELECT 1')$$),
    ($$add_node('ff_api', 'a', 'sql', 'SELECT 1')$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELECT 1', after => ARRAY['nope'])$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELECT 1', after => ARRAY['x'])$$),
    ($$add_node('ff_api', 'x', 'sqlx', 'SELECT 1')$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELEC 1')$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELECT ${nope}')$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELECT 1', retries => -1)$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELECT 1', retry_delay => '-1 s')$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELECT 1', timeout => '25 days')$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELECT 1', trigger_rule => 'some')$$),
    ($$add_node('ff_api', 'x', 'sql', 'SELECT 1', options => '{"autocommit": 1}')$$),
    ($$add_node('ff_api', 'x y', 'sql', 'SELECT 1')$$),
    ($$add_node('ff_api', 'x', NULL, 'SELECT 1')$$)
  ) AS t(call);
SELECT count(*) = :changes AS no_history_left FROM taskflow.definition_changes;
BEGIN;
SELECT pg_temp.api_calls() AS c0 \gset
SELECT taskflow.apply_flow($${
  "flow": {"name": "ff_fast", "schedule": " 0 5 * * * ", "timezone": "asia/shanghai",
           "description": "chain", "max_active_runs": 2, "priority": 7,
           "suspend_after_failures": 3, "catchup": false},
  "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "retries": 2, "timeout": "5 min"},
            "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"], "trigger_rule": "all_done",
                  "retry_delay": "10 s"},
            "c": {"kind": "sql", "body": "SELECT 3"},
            "d": {"kind": "sql", "body": "SELECT 4", "after": ["b"]},
            "w": {"kind": "wait", "body": "true", "options": {"delay": "5 s"}}},
  "edges": [{"from": "c", "to": "d"}]
}$$) AS version, pg_temp.api_calls() - :c0 AS api_calls;
SELECT pg_temp.hist('ff_fast') = :'api_hist' AS same_history;
COMMIT;
SELECT pg_temp.def('ff_fast') = pg_temp.def('ff_api') AS same_definition;
SELECT jsonb_pretty(taskflow.flow_definition('ff_fast'));
-- the rows themselves (ids, times and the flow's name aside)
SELECT (SELECT to_jsonb(f) - '{id,name,created_at,updated_at}'::text[] FROM taskflow.flows f WHERE f.name = 'ff_fast')
     = (SELECT to_jsonb(f) - '{id,name,created_at,updated_at}'::text[] FROM taskflow.flows f WHERE f.name = 'ff_api')
       AS same_flow_row,
       (SELECT jsonb_agg(to_jsonb(n) - '{id,flow_id,created_at,updated_at}'::text[] ORDER BY n.name)
          FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'ff_fast')
     = (SELECT jsonb_agg(to_jsonb(n) - '{id,flow_id,created_at,updated_at}'::text[] ORDER BY n.name)
          FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'ff_api')
       AS same_node_rows,
       (SELECT created_at = updated_at FROM taskflow.flows WHERE name = 'ff_fast') AS not_bumped;
-- the node ids follow the API's order of adding them (upstream first, by name)
SELECT string_agg(n.name, ',' ORDER BY n.id) FROM taskflow.nodes n
  JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'ff_fast';

-- a node added in a later transaction: a new version, the flow's updated_at
-- bumped, through add_node (C) and _add_node_api alike
BEGIN;
SELECT pg_temp.api_calls() AS c0 \gset
SELECT taskflow.add_node('ff_api', 'e', 'sql', 'SELECT 5', after => ARRAY['d', 'a', 'd']) > 0 AS ok,
       pg_temp.api_calls() - :c0 AS api_calls;
SELECT pg_temp.hist('ff_api') AS api_hist2 \gset
SELECT updated_at = now() AS bumped FROM taskflow.flows WHERE name = 'ff_api';
COMMIT;
BEGIN;
SELECT taskflow._add_node_api('ff_pl', 'e', 'sql', 'SELECT 5', after => ARRAY['d', 'a', 'd']) > 0 AS ok;
SELECT pg_temp.hist('ff_pl') = :'api_hist2' AS same_history;
COMMIT;
SELECT pg_temp.def('ff_pl') = pg_temp.def('ff_api') AS same_definition;
SELECT version, summary FROM taskflow.flow_versions('ff_api');

-- one node, no schedule, defaults; a flow without nodes; the name argument
BEGIN;
SELECT pg_temp.api_calls() AS c0 \gset
SELECT taskflow.apply_flow('{"nodes": {"only": {"kind": "sql", "body": "SELECT 1"}}}', name => 'ff_one'),
       taskflow.apply_flow('{"flow": {"name": "ff_empty", "enabled": false}, "version": 3}'),
       pg_temp.api_calls() - :c0 AS api_calls;
COMMIT;
SELECT name, schedule, timezone, enabled, catchup, max_active_runs, priority, suspend_after_failures
  FROM taskflow.flows WHERE name IN ('ff_one', 'ff_empty') ORDER BY name;
SELECT version, summary FROM taskflow.flow_versions('ff_one');
-- and again: an existing flow goes the API way, and changes nothing
BEGIN;
SELECT pg_temp.api_calls() AS c0 \gset
SELECT taskflow.apply_flow('{"nodes": {"only": {"kind": "sql", "body": "SELECT 1"}}}', name => 'ff_one'),
       pg_temp.api_calls() - :c0 AS api_calls;
COMMIT;
SELECT count(*) AS versions FROM taskflow.flow_versions('ff_one');

-- what the API path does: variables, ${...}, labelled edges, finalizers
BEGIN;
SELECT pg_temp.api_calls() AS c0 \gset
SELECT taskflow.apply_flow('{"flow": {"name": "ff_vars"}, "variables": {"d": {"definition": "yyyymmdd of bizdate"}},
                             "nodes": {"a": {"kind": "sql", "body": "SELECT ${d}"}}}'),
       pg_temp.api_calls() - :c0 AS api_calls;
COMMIT;

------------------------------------------------------------------------------
-- bad definitions: the API's errors (SQLSTATE, hint), nothing changed
------------------------------------------------------------------------------
-- each error of apply_flow next to the API path's own for the same input
CREATE FUNCTION pg_temp.err(api boolean, d jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hint text;
BEGIN
    IF api THEN
        PERFORM taskflow._apply_flow_api(d);
    ELSE
        PERFORM taskflow.apply_flow(d);
    END IF;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                            hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || coalesce(E'\n  DETAIL: ' || nullif(det, ''), '')
           || coalesce(E'\n  HINT: ' || nullif(hint, ''), '');
END
$$;
SELECT count(*) AS flows FROM taskflow.flows \gset
SELECT count(*) AS changes FROM taskflow.definition_changes \gset
SELECT what, pg_temp.err(false, d) AS error, pg_temp.err(false, d) = pg_temp.err(true, d) AS same_as_api
  FROM (VALUES
    ('bad cron', '{"flow": {"name": "ff_bad", "schedule": "0 25 * * *"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}'::jsonb),
    ('unknown kind', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sqll", "body": "SELECT 1"}}}'),
    ('body does not parse', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELEC 1"}}}'),
    ('cycle', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "after": ["b"]}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}'),
    ('cycle by edges', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}, "edges": [{"from": "b", "to": "a"}]}'),
    ('self', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "after": ["a"]}}}'),
    ('unknown upstream', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "after": ["x"]}}}'),
    ('unknown edge end', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}, "edges": [{"from": "a", "to": "z"}]}'),
    ('no body', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql"}}}'),
    ('unknown variable', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT ${nope}"}}}'),
    ('time zone', '{"flow": {"name": "ff_bad", "timezone": "Mars/Olympus"}}'),
    ('flow name', '{"flow": {"name": "1ff"}}'),
    ('no name', '{"nodes": {}}'),
    ('node name', '{"flow": {"name": "ff_bad"}, "nodes": {"a b": {"kind": "sql"}}}'),
    ('max_active_runs', '{"flow": {"name": "ff_bad", "max_active_runs": 0}}'),
    ('priority', '{"flow": {"name": "ff_bad", "priority": 11}}'),
    ('priority 1.5', '{"flow": {"name": "ff_bad", "priority": 1.5}}'),
    ('suspend_after_failures', '{"flow": {"name": "ff_bad", "suspend_after_failures": -1}}'),
    ('retries', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "retries": 101}}}'),
    ('timeout', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "timeout": "1 ms"}}}'),
    ('retry_delay', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "retry_delay": "soon"}}}'),
    ('trigger rule', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "trigger_rule": "most"}}}'),
    ('option', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "wait", "body": "true", "options": {"delay": "1000 days"}}}}'),
    ('unknown key', '{"flow": {"name": "ff_bad", "colour": "red"}}'),
    ('unknown node key', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "colour": "red"}}}'),
    ('options null', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "options": null}}}'),
    ('nodes null', '{"flow": {"name": "ff_bad"}, "nodes": null}'),
    ('after null', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "after": null}}}'),
    ('after not names', '{"flow": {"name": "ff_bad"}, "nodes": {"a": {"kind": "sql", "after": [1]}}}')
  ) AS t(what, d);
SELECT count(*) = :flows AS no_flow_left, (SELECT count(*) FROM taskflow.definition_changes) = :changes AS no_history_left
  FROM taskflow.flows;
-- (the flag is down again after all those errors)
SELECT taskflow._define_internal() AS flag_after_errors;
-- a schedule that never fires: the API path's WARNING, once
SELECT taskflow.apply_flow('{"flow": {"name": "ff_past", "schedule": "2001-01-01 00:00"}}');

------------------------------------------------------------------------------
-- as a plain role: privileges, row level security, the recorded role
------------------------------------------------------------------------------
CREATE ROLE regress_tf_def2_alice;
CREATE ROLE regress_tf_def2_mallory;
SET ROLE regress_tf_def2_alice;
BEGIN;
SELECT pg_temp.api_calls() AS c0 \gset
SELECT taskflow.apply_flow('{"flow": {"name": "ff_alice", "schedule": "@daily"},
                             "nodes": {"a": {"kind": "sql", "body": "SELECT 1"},
                                       "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}'),
       pg_temp.api_calls() - :c0 AS api_calls;
COMMIT;
SELECT f.owner, v.version, v.changed_by, (SELECT count(*) FROM taskflow.definition_changes c
                                            WHERE c.flow_id = f.id AND c.changed_by = 'regress_tf_def2_alice') AS changes
  FROM taskflow.flows f JOIN taskflow.flow_versions v ON v.flow_id = f.id WHERE f.name = 'ff_alice';
-- the name of a flow alice cannot see: "does not exist", as through the API
SELECT pg_temp.err(false, d), pg_temp.err(false, d) = pg_temp.err(true, d) AS same_as_api
  FROM (VALUES ('{"flow": {"name": "ff_one"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}'::jsonb)) t(d);
RESET ROLE;
SET ROLE regress_tf_def2_mallory;
SELECT count(*) AS mallory_sees FROM taskflow.flows WHERE name LIKE 'ff\_%';
-- the flag: read-only false, no setting, not a GUC
SELECT taskflow._define_internal() AS flag;
SET taskflow.define_internal = on;
SET taskflow._define_internal = on;
-- direct DML is still checked by the per-row triggers
INSERT INTO taskflow.flows (name, schedule) VALUES ('ff_direct', '61 * * * *');
INSERT INTO taskflow.flows (name, owner) VALUES ('ff_direct', 'regress_tf_def2_alice');
INSERT INTO taskflow.flows (name, timezone) VALUES ('ff_direct', 'Mars/Olympus');
INSERT INTO taskflow.flows (name, schedule) VALUES ('ff_direct', '@hourly');
INSERT INTO taskflow.nodes (flow_id, name, kind, body)
SELECT id, 'x', 'sql', 'SELEC 1' FROM taskflow.flows WHERE name = 'ff_direct';
INSERT INTO taskflow.nodes (flow_id, name, kind, body)
SELECT id, x, 'sql', 'SELECT 1' FROM taskflow.flows, (VALUES ('x'), ('y')) v(x) WHERE name = 'ff_direct';
INSERT INTO taskflow.edges (flow_id, from_node, to_node)
SELECT f.id, x.id, y.id FROM taskflow.flows f JOIN taskflow.nodes x ON x.flow_id = f.id AND x.name = 'x'
  JOIN taskflow.nodes y ON y.flow_id = f.id AND y.name = 'y' WHERE f.name = 'ff_direct';
INSERT INTO taskflow.edges (flow_id, from_node, to_node)
SELECT f.id, y.id, x.id FROM taskflow.flows f JOIN taskflow.nodes x ON x.flow_id = f.id AND x.name = 'x'
  JOIN taskflow.nodes y ON y.flow_id = f.id AND y.name = 'y' WHERE f.name = 'ff_direct';
-- ... and recorded by the history trigger
SELECT v.version, v.changed_by, count(c.*) AS changes
  FROM taskflow.flow_versions v JOIN taskflow.flows f ON f.id = v.flow_id
  JOIN taskflow.definition_changes c ON c.flow_id = v.flow_id AND c.version = v.version
 WHERE f.name = 'ff_direct' GROUP BY 1, 2 ORDER BY 1;
-- history cannot be written by users
INSERT INTO taskflow.flow_versions (flow_id, version, session_role, changed_by, xid)
SELECT id, 9, 'x', 'x', pg_current_xact_id() FROM taskflow.flows WHERE name = 'ff_direct';
RESET ROLE;
-- a superuser with a shadowing schema first on the search_path: the C path
-- runs its statements under a pinned search_path, as the API functions do
CREATE SCHEMA ff_evil;
CREATE TABLE ff_evil.loot (what text);
CREATE FUNCTION ff_evil.minus(jsonb, text[]) RETURNS jsonb LANGUAGE sql
    AS $$ INSERT INTO ff_evil.loot VALUES ('-(jsonb, text[])'); SELECT NULL::jsonb $$;
CREATE OPERATOR ff_evil.- (FUNCTION = ff_evil.minus, LEFTARG = jsonb, RIGHTARG = text[]);
CREATE FUNCTION ff_evil.to_jsonb(taskflow.flows) RETURNS jsonb LANGUAGE sql
    AS $$ INSERT INTO ff_evil.loot VALUES ('to_jsonb(flows)'); SELECT NULL::jsonb $$;
CREATE FUNCTION ff_evil.unnest(text[]) RETURNS SETOF text LANGUAGE sql
    AS $$ INSERT INTO ff_evil.loot VALUES ('unnest(text[])'); SELECT NULL::text $$;
SET search_path = ff_evil, public, pg_catalog;
BEGIN;
SELECT pg_temp.api_calls() AS c0 \gset
SELECT taskflow.apply_flow('{"flow": {"name": "ff_shadow"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"},
                             "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}') AS version,
       taskflow.create_flow('ff_shadow2') > 0 AS created,
       taskflow.add_node('ff_shadow2', 'a', 'sql', 'SELECT 1') > 0 AS added,
       pg_temp.api_calls() - :c0 AS api_calls;
COMMIT;
RESET search_path;
SELECT count(*) AS loot FROM ff_evil.loot;
SELECT version, summary FROM taskflow.flow_versions('ff_shadow');
SELECT version, summary FROM taskflow.flow_versions('ff_shadow2');
DROP SCHEMA ff_evil CASCADE;
-- cleanup
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'ff\_%' ORDER BY name;
DROP ROLE regress_tf_def2_alice;
DROP ROLE regress_tf_def2_mallory;
RESET track_functions;
