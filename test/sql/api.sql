-- Flow definition API: the reference scenario (archive yesterday's orders to
-- dla_demo/y=YYYY/m=MM/d=DD/), render, next_runs, flow_graph, and
-- alter/enable/disable/drop round trips.  Flows here never run: they are
-- created disabled or without a schedule.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never

CREATE TABLE orders (
    id           bigint PRIMARY KEY,
    created_date date NOT NULL,
    amount       numeric(10, 2)
);
CREATE SERVER archive FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress');

-- the reference scenario
SELECT taskflow.create_flow('dla_demo', schedule => '0 5 * * *', timezone => 'Asia/Shanghai',
                            description => 'archive yesterday''s orders',
                            enabled => false) > 0 AS created;
SELECT taskflow.set_variable('dla_demo', 'year', 'yyyy of bizdate');
SELECT taskflow.set_variable('dla_demo', 'month', 'mm of bizdate');
SELECT taskflow.set_variable('dla_demo', 'day', 'dd of bizdate');
SELECT taskflow.add_node('dla_demo', 'archive_orders', 'archive', options => '{
    "server": "archive",
    "path": "dla_demo/y=${year}/m=${month}/d=${day}/",
    "query": "SELECT * FROM orders WHERE created_date = ${bizdate:literal}",
    "format": "csv.gz"
  }') > 0 AS added;
SELECT taskflow.add_node('dla_demo', 'purge', 'sql',
    body => 'DELETE FROM orders WHERE created_date = ${bizdate:literal}',
    retries => 2, retry_delay => '5 min', timeout => '1 hour',
    after => ARRAY['archive_orders']) > 0 AS added;

SELECT name, owner = current_user::regrole AS mine, schedule, timezone, description,
       enabled, catchup, max_active_runs, start_date, end_date
  FROM taskflow.flows;
SELECT n.name, n.kind, n.body, n.options, n.retries, n.retry_delay, n.timeout
  FROM taskflow.nodes n ORDER BY n.name;
SELECT a.name AS from_node, b.name AS to_node
  FROM taskflow.edges e JOIN taskflow.nodes a ON a.id = e.from_node
  JOIN taskflow.nodes b ON b.id = e.to_node;
SELECT name, definition, is_constant, pattern, base, shift
  FROM taskflow.variables ORDER BY name;

-- what the nodes would run for bizdate 2020-06-01
SELECT taskflow.render('dla_demo', 'archive_orders', '2020-06-01');
SELECT taskflow.render('dla_demo', 'purge', bizdate => '2020-06-01');

-- variables: time variables with offsets, cyctime base, constants and params
SELECT taskflow.set_variable('dla_demo', 'week_ago', 'yyyymmdd of bizdate - 7 days');
SELECT taskflow.set_variable('dla_demo', 'next_month', 'yyyy-mm of bizdate + 1 month');
SELECT taskflow.set_variable('dla_demo', 'cyc_hour', 'HH24:MI of CYCTIME');
SELECT taskflow.set_variable('dla_demo', 'prev_hour', 'hh24 of cyctime - 1 hour');
SELECT taskflow.set_variable('dla_demo', 'region', 'eu', constant => true);
SELECT name, definition, is_constant, pattern, base, shift
  FROM taskflow.variables ORDER BY name;
-- the 05:00 run in Asia/Shanghai: cyctime is 2020-06-02 05:00 +08
SELECT c AS cyctime, c AT TIME ZONE timezone AS local_time
  FROM taskflow.flows, taskflow._cyctime_for(id, '2020-06-01') c WHERE name = 'dla_demo';
SELECT key, value
  FROM taskflow.flows f,
       jsonb_each_text(taskflow._variables(f.id, '2020-06-01', NULL, 42, 'purge', '{}'))
 WHERE f.name = 'dla_demo' ORDER BY key;
-- params replace constants and may add names
SELECT key, value
  FROM taskflow.flows f,
       jsonb_each_text(taskflow._variables(f.id, '2020-02-29', '2020-03-01 05:00+08', 7, NULL,
                                           '{"region": "us", "extra": 5}'))
 WHERE f.name = 'dla_demo' AND key IN ('region', 'extra', 'week_ago', 'next_month', 'node', 'run_id')
 ORDER BY key;
SELECT taskflow.alter_node('dla_demo', 'purge',
    body => $b$DELETE FROM orders WHERE created_date = ${bizdate:literal} -- ${region} ${week_ago} ${cyc_hour} ${prev_hour} ${flow}.${node} run ${run_id} $${kept}$b$);
SELECT taskflow.render('dla_demo', 'purge', '2020-06-01');
SELECT taskflow.render('dla_demo', 'purge', '2020-06-01', params => '{"region": "ap"}');
-- a constant can be redefined as a time variable and back
SELECT taskflow.set_variable('dla_demo', 'region', 'yyyy of bizdate');
SELECT taskflow.render('dla_demo', 'purge', '2021-12-31');
SELECT taskflow.set_variable('dla_demo', 'region', 'eu', constant => true);

-- the schedule through the flow: next runs after 2020-06-01 in the flow's zone
SELECT t AS next_run, t AT TIME ZONE f.timezone AS local_time,
       (t AT TIME ZONE f.timezone)::date - 1 AS bizdate
  FROM taskflow.flows f, taskflow.next_runs(f.schedule, '2020-06-01 00:00+08', 3, f.timezone) t
 WHERE f.name = 'dla_demo';

-- archive node options: table + where + source, and render of each option
SELECT taskflow.add_node('dla_demo', 'archive_table', 'archive', options => '{
    "server": "archive", "path": "orders/${year}${month}${day}/",
    "table": "orders", "where": "created_date = ${bizdate:literal}",
    "max_file_size": "64MB", "source": "delete"}') > 0 AS added;
SELECT taskflow.render('dla_demo', 'archive_table', '2020-06-01');
SELECT taskflow.alter_node('dla_demo', 'archive_table',
    options => '{"server": "archive", "path": "o/", "table": "orders", "max_file_size": 1048576}');
SELECT taskflow.render('dla_demo', 'archive_table', '2020-06-01');
SELECT taskflow.drop_node('dla_demo', 'archive_table');

-- wait and notify nodes
SELECT taskflow.add_node('dla_demo', 'settle', 'wait', options => '{"delay": "10 min"}',
                         after => ARRAY['purge']) > 0 AS added;
SELECT taskflow.render('dla_demo', 'settle', '2020-06-01');
SELECT taskflow.alter_node('dla_demo', 'settle',
    body => 'EXISTS (SELECT 1 FROM orders WHERE created_date > ${bizdate:literal})',
    options => '{"poll_interval": "30 seconds"}');
SELECT taskflow.render('dla_demo', 'settle', '2020-06-01');
SELECT taskflow.add_node('dla_demo', 'tell', 'notify',
    options => '{"channel": "etl", "payload": "${flow} done for ${bizdate}"}',
    after => ARRAY['settle']) > 0 AS added;
SELECT taskflow.render('dla_demo', 'tell', '2020-06-01');

-- graph export (dot and mermaid)
SELECT taskflow.flow_graph('dla_demo');
SELECT taskflow.flow_graph('dla_demo', 'mermaid');

-- a diamond: a -> b, a -> c, b -> d, c -> d
SELECT taskflow.create_flow('diamond') > 0 AS created;
SELECT taskflow.add_node('diamond', 'a', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow.add_node('diamond', 'b', 'sql', 'SELECT 2', after => ARRAY['a']) > 0 AS added;
SELECT taskflow.add_node('diamond', 'c', 'sql', 'SELECT 3') > 0 AS added;
SELECT taskflow.add_edge('diamond', 'a', 'c');
SELECT taskflow.add_node('diamond', 'd', 'wait', 'true', after => ARRAY['c', 'b']) > 0 AS added;
SELECT taskflow.flow_graph('diamond', 'dot');
SELECT taskflow.flow_graph('diamond', 'MERMAID');
-- the diamond cannot be closed into a cycle, directly or through the API
SELECT taskflow.add_edge('diamond', 'd', 'a');
INSERT INTO taskflow.edges (flow_id, from_node, to_node)
SELECT f.id, d.id, b.id FROM taskflow.flows f
  JOIN taskflow.nodes d ON d.flow_id = f.id AND d.name = 'd'
  JOIN taskflow.nodes b ON b.flow_id = f.id AND b.name = 'b'
 WHERE f.name = 'diamond';
-- ... nor by updating an edge
UPDATE taskflow.edges e SET from_node = (SELECT id FROM taskflow.nodes WHERE name = 'd' AND flow_id = e.flow_id)
 WHERE to_node = (SELECT id FROM taskflow.nodes WHERE name = 'c' AND flow_id = e.flow_id);
-- redundant edges are fine (a -> d besides a -> b -> d)
SELECT taskflow.add_edge('diamond', 'a', 'd');
SELECT taskflow.drop_edge('diamond', 'a', 'd');
-- dropping a node removes its edges
SELECT taskflow.drop_node('diamond', 'b');
SELECT taskflow.flow_graph('diamond');
SELECT taskflow.drop_edge('diamond', 'c', 'd');
SELECT taskflow.flow_graph('diamond', 'mermaid');
-- an empty flow has an empty graph
SELECT taskflow.create_flow('empty') > 0 AS created;
SELECT taskflow.flow_graph('empty');
SELECT taskflow.flow_graph('empty', 'mermaid');

-- alter_flow round trips; NULL arguments leave a setting unchanged
SELECT updated_at AS before FROM taskflow.flows WHERE name = 'diamond' \gset
SELECT taskflow.alter_flow('diamond', schedule => '@daily', timezone => 'europe/berlin',
                           description => 'four nodes', catchup => false,
                           max_active_runs => 3, enabled => false,
                           start_date => '2020-01-01', end_date => '2021-01-01');
SELECT name, schedule, timezone, description, enabled, catchup, max_active_runs,
       start_date, end_date, updated_at > :'before' AS touched
  FROM taskflow.flows WHERE name = 'diamond';
SELECT taskflow.alter_flow('diamond', max_active_runs => 2);
SELECT name, schedule, timezone, description, enabled, catchup, max_active_runs,
       start_date, end_date
  FROM taskflow.flows WHERE name = 'diamond';
-- '' clears schedule and description, -infinity / infinity clear the dates
SELECT taskflow.alter_flow('diamond', schedule => '', description => '',
                           start_date => '-infinity', end_date => 'infinity');
SELECT name, schedule, description, start_date, end_date
  FROM taskflow.flows WHERE name = 'diamond';
SELECT taskflow.alter_flow('diamond', new_name => 'rhombus');
SELECT name FROM taskflow.flows ORDER BY name;
SELECT taskflow.enable_flow('rhombus');
SELECT enabled FROM taskflow.flows WHERE name = 'rhombus';
SELECT taskflow.disable_flow('rhombus');
SELECT enabled FROM taskflow.flows WHERE name = 'rhombus';
SELECT taskflow.alter_flow('rhombus', owner => current_user::regrole);

-- alter_node round trips
SELECT taskflow.alter_node('rhombus', 'a', body => 'SELECT 10', retries => 3,
                           retry_delay => '30 seconds', timeout => '10 min',
                           new_name => 'first');
SELECT name, body, retries, retry_delay, timeout FROM taskflow.nodes
 WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'rhombus') ORDER BY name;
SELECT taskflow.alter_node('rhombus', 'first', timeout => '0');
SELECT name, body, retries, retry_delay, timeout FROM taskflow.nodes
 WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'rhombus') ORDER BY name;
SELECT taskflow.flow_graph('rhombus');

-- drop_variable once nothing uses it
SELECT taskflow.set_variable('dla_demo', 'unused', 'yyyy of bizdate');
SELECT taskflow.drop_variable('dla_demo', 'unused');
SELECT count(*) FROM taskflow.variables WHERE name = 'unused';

-- the functions pin their search_path: a caller's objects cannot hijack them
CREATE FUNCTION public.to_char(date, text) RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked' $$;
SELECT taskflow.render('dla_demo', 'purge', '2020-06-01');
DROP FUNCTION public.to_char(date, text);

-- drop_flow removes nodes, edges and variables
SELECT taskflow.drop_flow('rhombus');
SELECT taskflow.drop_flow('empty');
SELECT taskflow.drop_flow('dla_demo');
SELECT (SELECT count(*) FROM taskflow.flows) AS flows,
       (SELECT count(*) FROM taskflow.nodes) AS nodes,
       (SELECT count(*) FROM taskflow.edges) AS edges,
       (SELECT count(*) FROM taskflow.variables) AS variables;

DROP SERVER archive;
DROP TABLE orders;
