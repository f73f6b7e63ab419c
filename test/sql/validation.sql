-- Flow definition API: every bad input raises a clear error (SQLSTATE,
-- message, detail, hint) and leaves the catalog unchanged.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never


-- the fixture
CREATE TABLE val_orders (id int, created_date date);
CREATE TABLE val_parted (d date) PARTITION BY RANGE (d);
CREATE TABLE val_parted_2020 PARTITION OF val_parted FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE SERVER val_store FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file:///tmp/taskflow_regress');
CREATE FOREIGN DATA WRAPPER val_dummy_fdw;
CREATE SERVER val_other FOREIGN DATA WRAPPER val_dummy_fdw;
SELECT taskflow.create_flow('val', start_date => '2020-01-01') > 0 AS created;
SELECT taskflow.create_flow('val2') > 0 AS created;
SELECT taskflow.set_variable('val', 'year', 'yyyy of bizdate');
SELECT taskflow.add_node('val', 'extract', 'sql', 'SELECT ${year}') > 0 AS added;
SELECT taskflow.add_node('val', 'arch', 'archive', after => ARRAY['extract'],
    options => '{"server": "val_store", "path": "v/${year}/", "table": "val_orders"}') > 0 AS added;
SELECT taskflow.add_node('val', 'later', 'wait', options => '{"delay": "1 min"}',
                         after => ARRAY['arch']) > 0 AS added;

-- the state every failing call must leave untouched (includes updated_at)
CREATE TEMP VIEW st AS
SELECT (SELECT count(*) FROM taskflow.flows) AS flows,
       (SELECT count(*) FROM taskflow.nodes) AS nodes,
       (SELECT count(*) FROM taskflow.edges) AS edges,
       (SELECT count(*) FROM taskflow.variables) AS variables,
       md5(concat_ws('|',
           (SELECT string_agg((to_jsonb(f) - 'next_due')::text, ',' ORDER BY f.id) FROM taskflow.flows f),
           (SELECT string_agg(n::text, ',' ORDER BY n.id) FROM taskflow.nodes n),
           (SELECT string_agg(e::text, ',' ORDER BY e.from_node, e.to_node) FROM taskflow.edges e),
           (SELECT string_agg(v::text, ',' ORDER BY v.flow_id, v.name) FROM taskflow.variables v))) AS digest;
SELECT digest AS base FROM st \gset
CREATE TEMP VIEW unchanged AS
SELECT format('%s flows, %s nodes, %s edges, %s variables: %s', flows, nodes, edges, variables,
              CASE WHEN digest = :'base' THEN 'unchanged' ELSE 'CHANGED' END) AS state
  FROM st;
TABLE unchanged;

------------------------------------------------------------------------------
-- flows
------------------------------------------------------------------------------
-- 1 duplicate flow name
SELECT regress.try($$ SELECT taskflow.create_flow('val') $$);
TABLE unchanged;
-- 2 invalid flow name
SELECT regress.try($$ SELECT taskflow.create_flow('bad name') $$);
TABLE unchanged;
-- 3 null flow name
SELECT regress.try($$ SELECT taskflow.create_flow(NULL) $$);
TABLE unchanged;
-- 4 bad cron schedule
SELECT regress.try($$ SELECT taskflow.create_flow('v3', schedule => '61 * * * *') $$);
TABLE unchanged;
-- 5 schedule that is no schedule at all
SELECT regress.try($$ SELECT taskflow.create_flow('v3', schedule => 'sometimes') $$);
TABLE unchanged;
-- 6 invalid time zone
SELECT regress.try($$ SELECT taskflow.create_flow('v3', timezone => 'Mars/Olympus_Mons') $$);
TABLE unchanged;
-- 7 max_active_runs < 1
SELECT regress.try($$ SELECT taskflow.create_flow('v3', max_active_runs => 0) $$);
TABLE unchanged;
-- 8 end_date before start_date
SELECT regress.try($$ SELECT taskflow.create_flow('v3', start_date => '2020-02-01', end_date => '2020-01-01') $$);
TABLE unchanged;
-- 9 alter an unknown flow
SELECT regress.try($$ SELECT taskflow.alter_flow('nope', enabled => false) $$);
TABLE unchanged;
-- 10 rename onto an existing flow
SELECT regress.try($$ SELECT taskflow.alter_flow('val', new_name => 'val2') $$);
TABLE unchanged;
-- 11 rename to an invalid name
SELECT regress.try($$ SELECT taskflow.alter_flow('val', new_name => '1st') $$);
TABLE unchanged;
-- 12 alter to a bad time zone (other settings in the same call are not applied)
SELECT regress.try($$ SELECT taskflow.alter_flow('val', description => 'x', timezone => 'UTC+25:00') $$);
TABLE unchanged;
-- 13 alter to a bad schedule
SELECT regress.try($$ SELECT taskflow.alter_flow('val', schedule => '* * * * * *') $$);
TABLE unchanged;
-- 14 alter max_active_runs below 1
SELECT regress.try($$ SELECT taskflow.alter_flow('val', max_active_runs => -1) $$);
TABLE unchanged;
-- 15 end_date before the stored start_date
SELECT regress.try($$ SELECT taskflow.alter_flow('val', end_date => '2019-12-31') $$);
TABLE unchanged;
-- 16 drop / enable / disable an unknown flow
SELECT regress.try($$ SELECT taskflow.drop_flow('nope') $$);
SELECT regress.try($$ SELECT taskflow.enable_flow('nope') $$);
SELECT regress.try($$ SELECT taskflow.disable_flow('nope') $$);
TABLE unchanged;

------------------------------------------------------------------------------
-- nodes
------------------------------------------------------------------------------
-- 17 add a node to an unknown flow
SELECT regress.try($$ SELECT taskflow.add_node('nope', 'n', 'sql', 'SELECT 1') $$);
TABLE unchanged;
-- 18 duplicate node name
SELECT regress.try($$ SELECT taskflow.add_node('val', 'extract', 'sql', 'SELECT 1') $$);
TABLE unchanged;
-- 19 invalid node name
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a.b', 'sql', 'SELECT 1') $$);
TABLE unchanged;
-- 20 unknown node kind
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'shell', 'SELECT 1') $$);
TABLE unchanged;
-- 21 sql node without body
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql') $$);
TABLE unchanged;
-- 22 unknown option for the kind
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', options => '{"host": "x"}') $$);
TABLE unchanged;
-- 23 option of the wrong JSON type
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', options => '{"database": 5}') $$);
TABLE unchanged;
-- 24 database that does not exist
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', options => '{"database": "no_such_db"}') $$);
TABLE unchanged;
-- 25 options that are not an object
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', options => '["database"]') $$);
TABLE unchanged;
-- 26 unknown variable in the body
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT ${yesterday}') $$);
TABLE unchanged;
-- 27 unknown variable in a quoted form
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT ${year}, ${month:literal}') $$);
TABLE unchanged;
-- 28 retries out of range, negative delay, negative timeout
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', retries => -1) $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', retries => 101) $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', retry_delay => '-1 min') $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', timeout => '-1 hour') $$);
TABLE unchanged;
-- 29 after => an unknown node: the new node is not kept either
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n', 'sql', 'SELECT 1', after => ARRAY['extract', 'ghost']) $$);
TABLE unchanged;

-- archive options
-- 30 archive takes no body
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive', 'SELECT 1',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders"}') $$);
TABLE unchanged;
-- 31 missing server
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive', options => '{"path": "p/", "table": "val_orders"}') $$);
TABLE unchanged;
-- 32 server that does not exist
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "nowhere", "path": "p/", "table": "val_orders"}') $$);
TABLE unchanged;
-- 33 server of another foreign-data wrapper
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_other", "path": "p/", "table": "val_orders"}') $$);
TABLE unchanged;
-- 34 missing or empty path
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive', options => '{"server": "val_store", "table": "val_orders"}') $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive', options => '{"server": "val_store", "path": " ", "table": "val_orders"}') $$);
TABLE unchanged;
-- 35 neither query nor table
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive', options => '{"server": "val_store", "path": "p/"}') $$);
TABLE unchanged;
-- 36 both query and table
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders", "query": "SELECT 1"}') $$);
TABLE unchanged;
-- 37 where without table
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "query": "SELECT 1", "where": "true"}') $$);
TABLE unchanged;
-- 38 unknown format
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders", "format": "parquet"}') $$);
TABLE unchanged;
-- 39 max_file_size that is no size, a fraction, zero, a boolean
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders", "max_file_size": "lots"}') $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders", "max_file_size": 1.5}') $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders", "max_file_size": "0"}') $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders", "max_file_size": true}') $$);
TABLE unchanged;
-- 40 unknown source action
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders", "source": "move"}') $$);
TABLE unchanged;
-- 41 source delete needs a table
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "query": "SELECT 1", "source": "delete"}') $$);
TABLE unchanged;
-- 42 source detach needs a partition (checked now for a schema-qualified table), and takes no where
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "public.val_orders", "source": "detach"}') $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "public.val_parted_2020", "where": "true", "source": "drop"}') $$);
TABLE unchanged;
-- 43 unknown variable in a string option
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/${yr}/", "table": "val_orders"}') $$);
TABLE unchanged;
-- 44 unknown archive option
SELECT regress.try($$ SELECT taskflow.add_node('val', 'a2', 'archive',
    options => '{"server": "val_store", "path": "p/", "table": "val_orders", "bucket": "b"}') $$);
TABLE unchanged;

-- wait and notify options
-- 45 wait with neither condition nor delay
SELECT regress.try($$ SELECT taskflow.add_node('val', 'w2', 'wait', options => '{"poll_interval": "1 min"}') $$);
TABLE unchanged;
-- 46 poll_interval that is no interval, or zero
SELECT regress.try($$ SELECT taskflow.add_node('val', 'w2', 'wait', 'true', options => '{"poll_interval": "soon"}') $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'w2', 'wait', 'true', options => '{"poll_interval": "0 s"}') $$);
TABLE unchanged;
-- 47 negative delay
SELECT regress.try($$ SELECT taskflow.add_node('val', 'w2', 'wait', options => '{"delay": "-5 min"}') $$);
TABLE unchanged;
-- 48 notify takes no body, needs a channel that fits an identifier
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n2', 'notify', 'hello', options => '{"channel": "c"}') $$);
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n2', 'notify', options => '{"payload": "hi"}') $$);
SELECT regress.try(format($$ SELECT taskflow.add_node('val', 'n2', 'notify', options => '{"channel": "%s"}') $$, repeat('c', 64)));
TABLE unchanged;
-- 49 unknown variable in the payload
SELECT regress.try($$ SELECT taskflow.add_node('val', 'n2', 'notify', options => '{"channel": "c", "payload": "${status}"}') $$);
TABLE unchanged;

-- alter_node / drop_node
-- 50 alter an unknown node
SELECT regress.try($$ SELECT taskflow.alter_node('val', 'ghost', body => 'SELECT 1') $$);
TABLE unchanged;
-- 51 rename a node onto another node
SELECT regress.try($$ SELECT taskflow.alter_node('val', 'extract', new_name => 'arch') $$);
TABLE unchanged;
-- 52 options of another kind
SELECT regress.try($$ SELECT taskflow.alter_node('val', 'extract', options => '{"server": "val_store", "path": "p/"}') $$);
TABLE unchanged;
-- 53 clearing the body of a sql node
SELECT regress.try($$ SELECT taskflow.alter_node('val', 'extract', body => '') $$);
TABLE unchanged;
-- 54 a new body with an unknown variable; other changes of the call are not applied
SELECT regress.try($$ SELECT taskflow.alter_node('val', 'extract', retries => 5, body => 'SELECT ${nope}') $$);
TABLE unchanged;
-- 55 drop an unknown node
SELECT regress.try($$ SELECT taskflow.drop_node('val', 'ghost') $$);
TABLE unchanged;

------------------------------------------------------------------------------
-- edges
------------------------------------------------------------------------------
-- 56 unknown node
SELECT regress.try($$ SELECT taskflow.add_edge('val', 'extract', 'ghost') $$);
TABLE unchanged;
-- 57 self edge
SELECT regress.try($$ SELECT taskflow.add_edge('val', 'arch', 'arch') $$);
TABLE unchanged;
-- 58 duplicate edge
SELECT regress.try($$ SELECT taskflow.add_edge('val', 'extract', 'arch') $$);
TABLE unchanged;
-- 59 an edge that closes a cycle names the path
SELECT regress.try($$ SELECT taskflow.add_edge('val', 'later', 'extract') $$);
TABLE unchanged;
-- 60 the same through a direct INSERT, and a self edge through a direct INSERT
SELECT regress.try($$ INSERT INTO taskflow.edges SELECT n1.flow_id, n1.id, n2.id
                        FROM taskflow.nodes n1 JOIN taskflow.nodes n2 USING (flow_id)
                       WHERE n1.name = 'later' AND n2.name = 'arch' $$);
SELECT regress.try($$ INSERT INTO taskflow.edges SELECT flow_id, id, id FROM taskflow.nodes WHERE name = 'later' $$);
TABLE unchanged;
-- 61 a multi-row INSERT whose rows together make a cycle
SELECT regress.try($$ INSERT INTO taskflow.edges
                      SELECT n1.flow_id, n1.id, n2.id
                        FROM taskflow.nodes n1 JOIN taskflow.nodes n2 USING (flow_id)
                       WHERE (n1.name, n2.name) IN (('extract', 'later'), ('later', 'extract')) $$);
TABLE unchanged;
-- 62 an edge between nodes of different flows
SELECT regress.try($$ INSERT INTO taskflow.edges SELECT f.id, n1.id, n2.id
                        FROM taskflow.flows f, taskflow.nodes n1, taskflow.nodes n2
                       WHERE f.name = 'val2' AND n1.name = 'extract' AND n2.name = 'arch' $$);
TABLE unchanged;
-- 63 drop an edge that does not exist
SELECT regress.try($$ SELECT taskflow.drop_edge('val', 'extract', 'later') $$);
TABLE unchanged;

------------------------------------------------------------------------------
-- variables
------------------------------------------------------------------------------
-- 64 reserved names
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'bizdate', 'yyyy of bizdate') $$);
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'run_id', '1', constant => true) $$);
TABLE unchanged;
-- 65 invalid name
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'my-var', 'yyyy of bizdate') $$);
TABLE unchanged;
-- 66 definition without base
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'v', 'yyyy') $$);
TABLE unchanged;
-- 67 empty pattern
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'v', ' of bizdate') $$);
TABLE unchanged;
-- 68 unknown base
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'v', 'yyyy of today') $$);
TABLE unchanged;
-- 69 offset that is no interval, offset without a sign
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'v', 'yyyy of bizdate - 3 fortnights') $$);
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'v', 'yyyy of bizdate 3 days') $$);
TABLE unchanged;
-- 70 null definition
SELECT regress.try($$ SELECT taskflow.set_variable('val', 'v', NULL) $$);
TABLE unchanged;
-- 71 unknown flow
SELECT regress.try($$ SELECT taskflow.set_variable('nope', 'v', 'yyyy of bizdate') $$);
TABLE unchanged;
-- 72 drop a variable a node still uses
SELECT regress.try($$ SELECT taskflow.drop_variable('val', 'year') $$);
TABLE unchanged;
-- 73 drop an unknown variable
SELECT regress.try($$ SELECT taskflow.drop_variable('val', 'month') $$);
TABLE unchanged;

------------------------------------------------------------------------------
-- render, flow_graph, _variables
------------------------------------------------------------------------------
-- 74 unknown node (the hint lists the flow's nodes)
SELECT regress.try($$ SELECT taskflow.render('val', 'ghost') $$);
-- 75 params cannot replace system or time variables, and must be an object
SELECT regress.try($$ SELECT taskflow.render('val', 'extract', '2020-06-01', '{"bizdate": "2020-01-01"}') $$);
SELECT regress.try($$ SELECT taskflow.render('val', 'extract', '2020-06-01', '{"year": "1999"}') $$);
SELECT regress.try($$ SELECT taskflow.render('val', 'extract', '2020-06-01', '[1]') $$);
-- 76 unknown graph format
SELECT regress.try($$ SELECT taskflow.flow_graph('val', 'svg') $$);
-- 77 _variables of an unknown flow id
SELECT regress.try($$ SELECT taskflow._variables(-1, '2020-06-01', NULL, 0, NULL, '{}') $$);
TABLE unchanged;

-- the good path still works after all that
SELECT taskflow.render('val', 'extract', '2020-06-01');
SELECT taskflow.render('val', 'arch', '2020-06-01');

-- clean up
SELECT taskflow.drop_flow('val');
SELECT taskflow.drop_flow('val2');
DROP SERVER val_other;
DROP FOREIGN DATA WRAPPER val_dummy_fdw;
DROP SERVER val_store;
DROP TABLE val_orders, val_parted;
