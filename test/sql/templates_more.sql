-- More templates (part 94): maintain_tables, refresh_matviews (dependency
-- order, CONCURRENTLY), rollup_daily_users, purge_older_than with
-- batch_size, and users' own templates (register_template): each creates a
-- valid flow and refuses bad parameters with an SQLSTATE and a hint,
-- leaving nothing behind.  The flows are manual-only so that they never run
-- here (test/t/014_templates_run.pl runs them).
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

CREATE TEMP VIEW counts AS
SELECT format('%s flows, %s nodes, %s edges, %s templates',
              (SELECT count(*) FROM taskflow.flows), (SELECT count(*) FROM taskflow.nodes),
              (SELECT count(*) FROM taskflow.edges), (SELECT count(*) FROM taskflow.user_templates)) AS state;
CREATE TEMP VIEW nodes_of AS
SELECT f.name AS flow, n.name AS node, n.body, n.options,
       (SELECT string_agg(u.name, ',' ORDER BY u.name) FROM taskflow.edges e
          JOIN taskflow.nodes u ON u.id = e.from_node WHERE e.to_node = n.id) AS after
  FROM taskflow.flows f JOIN taskflow.nodes n ON n.flow_id = f.id;

CREATE SCHEMA tm;
CREATE TABLE tm.events (id serial PRIMARY KEY, uid int, at timestamptz);
CREATE TABLE tm."Base" (k int, v int);
CREATE MATERIALIZED VIEW tm.mv_a AS SELECT k, sum(v) AS s FROM tm."Base" GROUP BY k;
CREATE UNIQUE INDEX ON tm.mv_a (k);
CREATE VIEW tm.v_mid AS SELECT * FROM tm.mv_a;
CREATE MATERIALIZED VIEW tm.mv_b AS SELECT count(*) AS c FROM tm.v_mid;
CREATE MATERIALIZED VIEW tm.mv_c AS SELECT * FROM tm.mv_b, tm.mv_a;
CREATE MATERIALIZED VIEW tm.mv_empty AS SELECT 1 AS x WITH NO DATA;
CREATE UNIQUE INDEX ON tm.mv_empty (x);

SELECT name, description FROM taskflow.templates()
 WHERE name IN ('maintain_tables', 'refresh_matviews', 'rollup_daily_users') ORDER BY name;
SELECT t.name, p.key AS parameter, (p.value->>'required')::boolean AS required, p.value->'default' AS "default"
  FROM taskflow.templates() t, jsonb_each(t.parameters) p
 WHERE t.name IN ('maintain_tables', 'refresh_matviews', 'rollup_daily_users')
    OR (t.name = 'purge_older_than' AND p.key = 'batch_size')
 ORDER BY t.name, required DESC, p.key;

-- maintain_tables: one node, autocommit, each table qualified (resolved on
-- the caller's search_path)
SET search_path = tm, public;
SELECT taskflow.create_flow_from_template('maintain_tables', 'tm_maint',
    '{"tables": "events, tm.\"Base\"", "schedule": ""}') > 0 AS created;
SELECT taskflow.create_flow_from_template('maintain_tables', 'tm_analyze',
    '{"tables": "tm.events", "vacuum": false, "schedule": ""}') > 0 AS created;
RESET search_path;
SELECT node, body, options FROM nodes_of WHERE flow IN ('tm_maint', 'tm_analyze') ORDER BY flow, node;

-- refresh_matviews: a node per view, edges by dependency (mv_b reads mv_a
-- through the plain view v_mid), CONCURRENTLY only with a unique index on a
-- populated view
SELECT taskflow.create_flow_from_template('refresh_matviews', 'tm_mv',
    '{"schema": "tm", "schedule": ""}') > 0 AS created;
SELECT node, body, after FROM nodes_of WHERE flow = 'tm_mv' ORDER BY node;
SELECT taskflow.create_flow_from_template('refresh_matviews', 'tm_mv2',
    '{"views": "tm.mv_c, tm.mv_a", "schedule": ""}') > 0 AS created;
SELECT node, body, after FROM nodes_of WHERE flow = 'tm_mv2' ORDER BY node;

-- rollup_daily_users: creates the summary table; the rendered script runs and
-- is idempotent per bizdate
SELECT taskflow.create_flow_from_template('rollup_daily_users', 'tm_roll',
    '{"table": "tm.events", "time_column": "at", "user_column": "uid", "schedule": ""}') > 0 AS created;
SELECT taskflow.render('tm_roll', 'rollup', '2026-01-02');
INSERT INTO tm.events (uid, at) VALUES (1, '2026-01-02 01:00'), (1, '2026-01-02 02:00'),
                                       (2, '2026-01-02 23:59'), (3, '2026-01-03 00:00');
DO $$ BEGIN
    EXECUTE split_part(taskflow.render('tm_roll', 'rollup', '2026-01-02'), E';\n', 1);
    EXECUTE split_part(taskflow.render('tm_roll', 'rollup', '2026-01-02'), E';\n', 2);
    EXECUTE split_part(taskflow.render('tm_roll', 'rollup', '2026-01-02'), E';\n', 1);
    EXECUTE split_part(taskflow.render('tm_roll', 'rollup', '2026-01-02'), E';\n', 2);
END $$;
SELECT bizdate, unique_users, events FROM tm.events_daily_users;
-- an existing target must have the columns
CREATE TABLE tm.wrong (bizdate date);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('rollup_daily_users', 'x',
    '{"table": "tm.events", "time_column": "at", "user_column": "uid", "target": "tm.wrong"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('rollup_daily_users', 'x',
    '{"table": "tm.events", "time_column": "at", "user_column": "nope"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('rollup_daily_users', 'x',
    '{"table": "tm.events", "time_column": "at", "user_column": "uid", "target": "a.b.c"}') $$);

-- purge_older_than with batch_size: a DO block in autocommit mode
SELECT taskflow.create_flow_from_template('purge_older_than', 'tm_purge',
    '{"table": "tm.events", "date_column": "at", "keep": "30 days", "batch_size": 500, "schedule": ""}') > 0 AS created;
SELECT node, options, after FROM nodes_of WHERE flow = 'tm_purge' ORDER BY node;
SELECT taskflow.render('tm_purge', 'purge', '2026-02-15');

-- bad parameters: SQLSTATE + hint, nothing left behind
SELECT state FROM counts;
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('maintain_tables', 'x', '{"tables": "tm.nope"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('maintain_tables', 'x', '{"tables": " , "}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('maintain_tables', 'x', '{"tables": "tm.v_mid"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('maintain_tables', 'x', '{"tables": "tm.events", "vacuum": "maybe"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('refresh_matviews', 'x', '{}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('refresh_matviews', 'x', '{"views": "tm.mv_a", "schema": "tm"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('refresh_matviews', 'x', '{"views": "tm.\"Base\""}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('refresh_matviews', 'x', '{"schema": "public"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('rollup_daily_users', 'x', '{"table": "tm.events"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('purge_older_than', 'x',
    '{"table": "tm.events", "date_column": "at", "keep": "30 days", "batch_size": "0"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('purge_older_than', 'x',
    '{"table": "tm.events", "date_column": "at", "keep": "30 days", "batch_size": "lots"}') $$);
SELECT state FROM counts;

-- users' own templates
CREATE ROLE regress_tm_alice;
CREATE ROLE regress_tm_mallory;
GRANT USAGE ON SCHEMA tm TO regress_tm_alice, regress_tm_mallory;
SET ROLE regress_tm_alice;
SELECT taskflow.register_template('copy_day',
    definition => '{"schedule": "0 1 * * *", "description": "copy one day",
                    "variables": {"day": "yyyymmdd of bizdate"},
                    "nodes": [{"name": "load", "kind": "sql",
                               "body": "INSERT INTO {{target:ident}} SELECT * FROM {{source}} WHERE d = ${day:literal}"},
                              {"name": "check", "kind": "sql", "body": "SELECT {{min_rows}}",
                               "after": ["load"], "retries": 2}]}',
    parameters => '{"target": {"required": true, "description": "table to fill"},
                    "source": {"required": true}, "min_rows": {"default": 5}}',
    description => 'copy a day from source to target');
SELECT name, description, parameters FROM taskflow.templates() WHERE name = 'copy_day';
SELECT taskflow.create_flow_from_template('copy_day', 'tm_user',
    '{"target": "Target Table", "source": "tm.events", "schedule": ""}') > 0 AS created;
SELECT taskflow.render('tm_user', 'load', '2026-01-02') AS load, taskflow.render('tm_user', 'check', '2026-01-02') AS "check";
SELECT name, owner, description FROM taskflow.flows WHERE name = 'tm_user';
-- its errors
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('copy_day', 'x', '{"source": "s"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('copy_day', 'x', '{"target": "t", "source": "s", "other": 1}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('copy_day', '{"nodes": [{"name": "a", "kind": "sql", "body": "SELECT 1"}]}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('sql_daily', '{"nodes": [{"name": "a", "kind": "sql", "body": "SELECT 1"}]}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('t1', '{"nodes": [{"name": "a", "kind": "sql", "body": "SELECT {{x}}"}]}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('t1', '{"nodes": []}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('t1', '{"nodes": [{"name": "a", "kind": "sql", "sql": "x"}]}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('t1', '{"owner": "postgres", "nodes": [{"name": "a", "kind": "sql"}]}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('t1', '{"nodes": [{"name": "a", "kind": "sql"}]}', '{"schedule": {}}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('t1', '{"nodes": [{"name": "a", "kind": "sql"}]}', '{"x": {"required": "yes"}}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('bad name', '{"nodes": [{"name": "a", "kind": "sql"}]}') $$);
SELECT regress.try($$ SELECT taskflow.register_template('t1', '{"nodes": [{"name": "a", "kind": "sql"}]}', owner => 'regress_tm_mallory') $$);
-- a node the API refuses: the flow is not created
SELECT taskflow.register_template('t_badnode', '{"nodes": [{"name": "a", "kind": "nosuchkind"}]}');
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('t_badnode', 'x', '{}') $$);
SELECT count(*) AS x_flows FROM taskflow.flows WHERE name = 'x';
SELECT taskflow.drop_template('t_badnode');
-- flow logic in a template: a branch, labelled edges, a trigger rule, a finalizer
SELECT taskflow.register_template('t_logic', '{"nodes": [
    {"name": "is_weekday", "kind": "branch", "body": "extract(isodow FROM ${bizdate:literal}::date) < 6"},
    {"name": "load", "kind": "sql", "body": "SELECT 1", "after": ["is_weekday"], "branch": true},
    {"name": "rest", "kind": "sql", "body": "SELECT 2", "after": ["is_weekday"], "branch": false},
    {"name": "cleanup", "kind": "sql", "body": "SELECT 3", "after": ["load", "rest"], "trigger_rule": "all_done"},
    {"name": "last", "kind": "sql", "body": "SELECT 4", "finalizer": true}]}');
SELECT taskflow.create_flow_from_template('t_logic', 'tm_logic', '{"schedule": ""}') > 0 AS created;
SELECT n.name, n.kind, n.trigger_rule, n.finalizer,
       (SELECT string_agg(u.name || coalesce(':' || e.branch::text, ''), ',' ORDER BY u.name)
          FROM taskflow.edges e JOIN taskflow.nodes u ON u.id = e.from_node WHERE e.to_node = n.id) AS after
  FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id
 WHERE f.name = 'tm_logic' ORDER BY n.name;
-- values are checked by add_node when a flow is made from it: nothing is created
SELECT taskflow.register_template('t_badrule', '{"nodes": [{"name": "a", "kind": "sql", "body": "SELECT 1", "trigger_rule": "sometimes"}]}');
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('t_badrule', 'tm_badrule', '{"schedule": ""}') $$);
SELECT count(*) AS badrule_flows FROM taskflow.flows WHERE name = 'tm_badrule';
SELECT taskflow.drop_template('t_badrule');
SELECT taskflow.drop_template('t_logic');
-- replace
SELECT taskflow.register_template('copy_day', '{"nodes": [{"name": "only", "kind": "sql", "body": "SELECT 1"}]}',
                                  description => 'v2', replace => true);
SELECT description FROM taskflow.user_templates WHERE name = 'copy_day';
RESET ROLE;

-- security: a stranger neither sees nor uses nor drops alice's template
SET ROLE regress_tm_mallory;
SELECT count(*) AS mallory_sees FROM taskflow.templates() WHERE name = 'copy_day';
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('copy_day', 'tm_steal', '{}') $$);
SELECT regress.try($$ SELECT taskflow.drop_template('copy_day') $$);
WITH x AS (UPDATE taskflow.user_templates SET owner = 'regress_tm_mallory' RETURNING 1)
SELECT count(*) AS mallory_updated FROM x;
-- a user template named like a built-in one, written directly, would decide
-- the owner of that template's flows: refused
SELECT regress.try($$ INSERT INTO taskflow.user_templates (name, definition)
                      VALUES ('sql_daily', '{"nodes": [{"name": "a", "kind": "sql"}]}') $$);
SELECT regress.try($$ INSERT INTO taskflow.user_templates (name, definition)
                      VALUES ('m1', '{"nodes": [{"name": "a", "kind": "sql", "body": "{{nope}}"}]}') $$);
-- mallory's own template, whose node would make her a superuser if it ran as one
SELECT taskflow.register_template('innocent', '{"nodes": [{"name": "a", "kind": "sql",
    "body": "ALTER ROLE regress_tm_mallory SUPERUSER"}]}');
RESET ROLE;
-- a superuser using it gets a flow owned by mallory: the node runs as mallory
SELECT taskflow.create_flow_from_template('innocent', 'tm_su_uses', '{"schedule": ""}') > 0 AS created;
SELECT name, owner FROM taskflow.flows WHERE name = 'tm_su_uses';
-- templates hold data, not code: no function of a template's owner runs
-- while the flow is created (the definition has no place for one)
SELECT regress.try($$ SELECT taskflow.register_template('t2', '{"function": "public.f()", "nodes": [{"name": "a", "kind": "sql"}]}') $$);

-- clean up
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'tm\_%' ORDER BY name;
SELECT taskflow.drop_template(name) FROM taskflow.user_templates ORDER BY name;
SELECT state FROM counts;
DROP SCHEMA tm CASCADE;
DROP ROLE regress_tm_alice, regress_tm_mallory;
