-- Flow templates: templates(), create_flow_from_template() for each
-- template, and its errors (each leaves nothing behind).  The flows are
-- created disabled or manual-only so that they never run here.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never

CREATE TEMP VIEW counts AS
SELECT format('%s flows, %s nodes, %s edges, %s variables',
              (SELECT count(*) FROM taskflow.flows), (SELECT count(*) FROM taskflow.nodes),
              (SELECT count(*) FROM taskflow.edges), (SELECT count(*) FROM taskflow.variables)) AS state;

CREATE SCHEMA tpl;
CREATE TABLE tpl."Orders" (id int, created_date date, "Created At" timestamptz);
CREATE TABLE tpl.events (id int, happened date);
CREATE SERVER tpl_store FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress');

-- what is available
SELECT name, description FROM taskflow.templates() ORDER BY name;
SELECT t.name, p.key AS parameter, (p.value->>'required')::boolean AS required,
       p.value->'default' AS "default"
  FROM taskflow.templates() t, jsonb_each(t.parameters) p
 ORDER BY t.name, required DESC, p.key;

-- archive_table_daily with defaults
SELECT taskflow.create_flow_from_template('archive_table_daily', 'tpl_archive',
    '{"table": "tpl.\"Orders\"", "date_column": "created_date", "server": "tpl_store",
      "enabled": false}') > 0 AS created;
SELECT name, schedule, timezone, enabled, description FROM taskflow.flows WHERE name = 'tpl_archive';
SELECT v.name, v.definition FROM taskflow.variables v JOIN taskflow.flows f ON f.id = v.flow_id
 WHERE f.name = 'tpl_archive' ORDER BY v.name;
SELECT n.name, n.kind, n.body, jsonb_pretty(n.options) AS options
  FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'tpl_archive';
SELECT taskflow.render('tpl_archive', 'archive', '2020-06-01');

-- archive_table_daily with every parameter
SELECT taskflow.create_flow_from_template('archive_table_daily', 'tpl_archive2',
    '{"table": "tpl.events", "date_column": "happened", "server": "tpl_store",
      "path_prefix": "dla_demo/", "format": "csv", "source": "keep",
      "schedule": "30 1 * * *", "timezone": "Asia/Shanghai", "enabled": "false"}') > 0 AS created;
SELECT name, schedule, timezone, enabled FROM taskflow.flows WHERE name = 'tpl_archive2';
SELECT taskflow.render('tpl_archive2', 'archive', '2020-06-01');

-- purge_older_than: two sql nodes, purge then analyze
SELECT taskflow.create_flow_from_template('purge_older_than', 'tpl_purge',
    '{"table": "tpl.\"Orders\"", "date_column": "Created At", "keep": "90 days",
      "enabled": false}') > 0 AS created;
SELECT name, schedule, enabled FROM taskflow.flows WHERE name = 'tpl_purge';
SELECT taskflow.render('tpl_purge', 'purge', '2020-06-01');
SELECT taskflow.render('tpl_purge', 'analyze', '2020-06-01');
SELECT taskflow.flow_graph('tpl_purge');
-- the rendered purge statement is valid SQL
DO $$ BEGIN EXECUTE taskflow.render('tpl_purge', 'purge', '2020-06-01'); END $$;

-- sql_daily, manual-only
SELECT taskflow.create_flow_from_template('sql_daily', 'tpl_sql',
    '{"sql": "INSERT INTO tpl.events VALUES (1, ${bizdate:literal})", "schedule": ""}') > 0 AS created;
SELECT name, schedule, enabled FROM taskflow.flows WHERE name = 'tpl_sql';
SELECT taskflow.render('tpl_sql', 'sql', '2020-06-01');
TABLE counts;

-- errors; none leaves a flow behind
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('copy_table', 'x', '{}') $$);
TABLE counts;
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'x',
    '{"table": "tpl.events", "server": "tpl_store"}') $$);
TABLE counts;
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'x',
    '{"table": "tpl.events", "date_column": "happened", "server": "tpl_store", "bucket": "b"}') $$);
TABLE counts;
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'x',
    '{"table": ["tpl.events"], "date_column": "happened", "server": "tpl_store"}') $$);
TABLE counts;
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'x', '"tpl.events"') $$);
TABLE counts;
-- table or column that does not exist
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'x',
    '{"table": "tpl.nothing", "date_column": "happened", "server": "tpl_store", "enabled": false}') $$);
TABLE counts;
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'x',
    '{"table": "tpl.events", "date_column": "created", "server": "tpl_store", "enabled": false}') $$);
TABLE counts;
-- a failing later step (missing server, bad format) undoes the flow created by an earlier one
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'x',
    '{"table": "tpl.events", "date_column": "happened", "server": "nowhere", "enabled": false}') $$);
TABLE counts;
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'x',
    '{"table": "tpl.events", "date_column": "happened", "server": "tpl_store", "format": "xlsx",
      "enabled": false}') $$);
TABLE counts;
-- bad schedule, time zone, flag, name
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('sql_daily', 'x',
    '{"sql": "SELECT 1", "schedule": "0 25 * * *"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('sql_daily', 'x',
    '{"sql": "SELECT 1", "timezone": "Atlantis/Capital", "enabled": false}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('sql_daily', 'x',
    '{"sql": "SELECT 1", "enabled": "maybe"}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('sql_daily', 'tpl_sql',
    '{"sql": "SELECT 1", "enabled": false}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('sql_daily', 'x y',
    '{"sql": "SELECT 1", "enabled": false}') $$);
TABLE counts;
-- unknown variable in the script, empty script
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('sql_daily', 'x',
    '{"sql": "SELECT ${yesterday}", "enabled": false}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('sql_daily', 'x',
    '{"sql": "", "enabled": false}') $$);
TABLE counts;
-- keep that is no positive interval
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('purge_older_than', 'x',
    '{"table": "tpl.events", "date_column": "happened", "keep": "ninety days", "enabled": false}') $$);
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('purge_older_than', 'x',
    '{"table": "tpl.events", "date_column": "happened", "keep": "-1 day", "enabled": false}') $$);
TABLE counts;

-- clean up
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'tpl%' ORDER BY name;
TABLE counts;
DROP SERVER tpl_store;
DROP SCHEMA tpl CASCADE;
