-- Definition-time bounds and checks (issue 10 items 3 and 6, issue 15 item 5):
-- each bad input is refused when it is defined, with its SQLSTATE, a message
-- naming the argument and a hint, and changes nothing; API errors carry one
-- CONTEXT line naming the user's objects, no internal PL/pgSQL frames.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never

-- the fixture
CREATE TABLE vb_orders (id int, created_date date);
CREATE SERVER vb_store FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file:///tmp/taskflow_regress');
SELECT taskflow.create_flow('vb', start_date => '2020-01-01', end_date => '2030-01-01') > 0 AS created;
SELECT taskflow.set_variable('vb', 'year', 'yyyy of bizdate - 1 year');
SELECT taskflow.add_node('vb', 'extract', 'sql', 'SELECT ${year}', retries => 1,
                         retry_delay => '5 min', timeout => '1 hour') > 0 AS added;
SELECT taskflow.add_node('vb', 'arch', 'archive', after => ARRAY['extract'],
    options => '{"server": "vb_store", "path": "v/${year}/", "table": "vb_orders"}') > 0 AS added;
SELECT taskflow.add_node('vb', 'poll', 'wait', 'true',
                         options => '{"delay": "1 min", "poll_interval": "30 seconds"}') > 0 AS added;
SELECT taskflow.add_node('vb', 'tell', 'notify', options => '{"channel": "vb"}') > 0 AS added;

-- the state every failing call must leave untouched (includes updated_at)
CREATE TEMP VIEW vb_st AS
SELECT md5(concat_ws('|',
           (SELECT string_agg((to_jsonb(f) - 'next_due')::text, ',' ORDER BY f.id) FROM taskflow.flows f),
           (SELECT string_agg(n::text, ',' ORDER BY n.id) FROM taskflow.nodes n),
           (SELECT string_agg(e::text, ',' ORDER BY e.from_node, e.to_node) FROM taskflow.edges e),
           (SELECT string_agg(v::text, ',' ORDER BY v.flow_id, v.name) FROM taskflow.variables v),
           (SELECT count(*) FROM taskflow.runs)::text)) AS digest;
SELECT digest AS base FROM vb_st \gset
CREATE TEMP VIEW unchanged AS
SELECT CASE WHEN digest = :'base' THEN 'unchanged' ELSE 'CHANGED' END AS state FROM vb_st;

------------------------------------------------------------------------------
-- node settings: retry_delay 0..366 days, timeout 0 (none) or 1 second..24 days
------------------------------------------------------------------------------
-- 1 retry_delay that would overflow timestamps
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'sql', 'SELECT 1', retries => 1,
                                                retry_delay => '300000 years') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'extract', retry_delay => '367 days') $$);
-- 2 a timeout below 1 second (it would mean none) and above statement_timeout's range
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'sql', 'SELECT 1', timeout => '1 microsecond') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'extract', timeout => '25 days') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'extract', timeout => '1 year') $$);
TABLE unchanged;
SELECT name, retry_delay, timeout FROM taskflow.nodes WHERE name = 'extract';

------------------------------------------------------------------------------
-- variable shifts: at most 100 years either way
------------------------------------------------------------------------------
-- 3
SELECT regress.try($$ SELECT taskflow.set_variable('vb', 'year', 'yyyy of bizdate + 100000000 years') $$);
SELECT regress.try($$ SELECT taskflow.set_variable('vb', 'far', 'yyyymmdd of cyctime - 101 years') $$);
TABLE unchanged;
SELECT name, definition, shift FROM taskflow.variables WHERE name = 'year';
-- 4 a shift stored before the bound existed names the variable at render time
UPDATE taskflow.variables SET shift = interval '100000000 years', definition = 'yyyy of bizdate + 100000000 years'
 WHERE name = 'year';
SELECT regress.try($$ SELECT taskflow.render('vb', 'extract', '2020-06-01') $$);
UPDATE taskflow.variables SET shift = interval '-1 year', definition = 'yyyy of bizdate - 1 year'
 WHERE name = 'year';

------------------------------------------------------------------------------
-- archive options
------------------------------------------------------------------------------
-- 5 max_file_size below 1024 bytes (runs need at least 1kB), as a number and as text
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "v/", "table": "vb_orders", "max_file_size": 500}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "v/", "table": "vb_orders", "max_file_size": "1023 B"}') $$);
-- the node reads sizes its own way: units it does not know are refused here too
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "v/", "table": "vb_orders", "max_file_size": "1 PB"}') $$);
-- 6 key prefixes that leave the server's directory or are not relative paths
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "../escape/", "table": "vb_orders"}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "v/${year}/../../x/", "table": "vb_orders"}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "/abs/", "table": "vb_orders"}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "a\\b/", "table": "vb_orders"}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "a//b/", "table": "vb_orders"}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "a\tb/", "table": "vb_orders"}') $$);
TABLE unchanged;
SELECT name, options FROM taskflow.nodes WHERE name = 'arch';
-- 7 the template's path_prefix
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('archive_table_daily', 'vb_t',
    '{"table": "vb_orders", "date_column": "created_date", "server": "vb_store", "path_prefix": "../up"}') $$);
-- and its "keep" (purge_older_than), which is subtracted from bizdate when the node runs
SELECT regress.try($$ SELECT taskflow.create_flow_from_template('purge_older_than', 'vb_t',
    '{"table": "vb_orders", "date_column": "created_date", "keep": "100000000 years"}') $$);
TABLE unchanged;
-- 8 taskflow.export() refuses a leading "/" (it used to strip it)
SELECT regress.try($$ SELECT * FROM taskflow.export('SELECT 1', 'vb_store', '/abs/x') $$);

------------------------------------------------------------------------------
-- sql and wait bodies are parsed (not run) at definition
------------------------------------------------------------------------------
-- 9 transaction control: the engine owns the transactions
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'sql', 'BEGIN; SELECT 1; COMMIT') $$);
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'sql', E'DELETE FROM vb_orders;\nCOMMIT;') $$);
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'sql', 'SAVEPOINT a; SELECT 1',
                                                options => '{"autocommit": true}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'extract', body => 'START TRANSACTION') $$);
-- 10 syntax errors, with the position (characters, 1-based) and line in the body
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'sql', 'SELEC 1') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'extract',
    body => E'SELECT ${year:literal};\n  SELECT * FROM vb_orders WHERE id = ') $$);
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'sql', E'SELECT ''${bizdate}'' FROM WHERE') $$);
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'sql', 'FROM ${year} WHERE') $$);
-- 11 a wait condition is one boolean expression
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'wait', 'EXISTS (SELECT 1 FROM vb_orders') $$);
SELECT regress.try($$ SELECT taskflow.add_node('vb', 'n1', 'wait', 'true); SELECT (false') $$);
TABLE unchanged;
SELECT name, body FROM taskflow.nodes WHERE name = 'extract';

------------------------------------------------------------------------------
-- notify payload
------------------------------------------------------------------------------
-- 12 NOTIFY payloads are shorter than 8000 bytes
SELECT regress.try(format($$ SELECT taskflow.alter_node('vb', 'tell', options => '{"channel": "vb", "payload": "%s"}') $$,
                          repeat('x', 10000)));
TABLE unchanged;

------------------------------------------------------------------------------
-- wait options
------------------------------------------------------------------------------
-- 13 delay 0..366 days, poll_interval 10 ms..1 day
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'poll', options => '{"delay": "300000 years"}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'poll', options => '{"poll_interval": "1 microsecond"}') $$);
SELECT regress.try($$ SELECT taskflow.alter_node('vb', 'poll', options => '{"poll_interval": "2 days"}') $$);
TABLE unchanged;

------------------------------------------------------------------------------
-- business dates: finite, 0001-01-01 .. 9999-12-31
------------------------------------------------------------------------------
-- 14 run_flow, backfill, render
SELECT regress.try($$ SELECT taskflow.run_flow('vb', bizdate => 'infinity') $$);
SELECT regress.try($$ SELECT taskflow.run_flow('vb', bizdate => '-infinity') $$);
SELECT regress.try($$ SELECT taskflow.run_flow('vb', bizdate => '10000-01-01') $$);
SELECT regress.try($$ SELECT taskflow.backfill('vb', '2020-01-01', 'infinity') $$);
SELECT regress.try($$ SELECT taskflow.backfill('vb', '-infinity', '2020-01-01') $$);
SELECT regress.try($$ SELECT taskflow.render('vb', 'extract', 'infinity') $$);
SELECT regress.try($$ SELECT taskflow.render('vb', 'extract', '5000000-01-01') $$);
TABLE unchanged;
-- 15 intervals of run operations that would overflow
SELECT regress.try($$ SELECT taskflow.wait_run(-1, timeout => '178000000 years') $$);
SELECT regress.try($$ SELECT taskflow.purge_history('178000000 years') $$);

------------------------------------------------------------------------------
-- flow dates
------------------------------------------------------------------------------
-- 16 start_date 'infinity' and end_date '-infinity' would never run
SELECT regress.try($$ SELECT taskflow.create_flow('vb2', start_date => 'infinity') $$);
SELECT regress.try($$ SELECT taskflow.create_flow('vb2', end_date => '-infinity') $$);
SELECT regress.try($$ SELECT taskflow.alter_flow('vb', start_date => 'infinity') $$);
SELECT regress.try($$ SELECT taskflow.alter_flow('vb', end_date => '2019-01-01') $$);
TABLE unchanged;
SELECT name, start_date, end_date FROM taskflow.flows WHERE name = 'vb';

------------------------------------------------------------------------------
-- what is accepted
------------------------------------------------------------------------------
-- 17 boundaries
SELECT taskflow.add_node('vb', 'edge', 'sql', 'SELECT 1', retries => 1, retry_delay => '366 days',
                         timeout => '24 days') > 0 AS added;
SELECT taskflow.alter_node('vb', 'edge', timeout => '1 second', retry_delay => '0');
SELECT taskflow.alter_node('vb', 'edge', timeout => '0');     -- no timeout
SELECT name, retry_delay, timeout FROM taskflow.nodes WHERE name = 'edge';
SELECT taskflow.set_variable('vb', 'century', 'yyyy of bizdate - 100 years');
SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "v/${year}/", "table": "vb_orders", "max_file_size": "1kB"}');
SELECT taskflow.alter_node('vb', 'arch',
    options => '{"server": "vb_store", "path": "v/${year}/", "table": "vb_orders", "max_file_size": 1024}');
-- 18 bodies the parser cannot judge before the variables have values, and
-- statements that run in autocommit mode
SELECT taskflow.alter_node('vb', 'edge', body => $b$
    CREATE TABLE IF NOT EXISTS vb_${year} (d date);
    INSERT INTO vb_${year} SELECT ${bizdate:literal}::date WHERE '${bizdate}' <> ${year:literal};
    SELECT * FROM ${year:ident}.vb_orders LIMIT ${year};
    SELECT 2020${year}, '$${literal';
    VACUUM vb_orders;
    CREATE INDEX CONCURRENTLY IF NOT EXISTS vb_orders_id ON vb_orders (id)$b$);
SELECT taskflow.set_variable('vb', 'stmt', 'SELECT 1', constant => true);
SELECT taskflow.alter_node('vb', 'edge', body => '${stmt}');
SELECT taskflow.alter_node('vb', 'edge', body => 'SELECT 1 FROM vb_orders WHERE ${stmt}');
SELECT taskflow.alter_node('vb', 'poll', 'EXISTS (SELECT 1 FROM vb_orders WHERE created_date = ${bizdate:literal})');
SELECT taskflow.alter_flow('vb', start_date => '-infinity', end_date => 'infinity');   -- clear them
SELECT name, start_date, end_date FROM taskflow.flows WHERE name = 'vb';
SELECT taskflow.render('vb', 'extract', '9999-12-31');
-- 19 a schedule that never fires is accepted with a WARNING
SELECT taskflow.create_flow('vb_once', schedule => '2001-01-01 05:00') > 0 AS created;
SELECT taskflow.alter_flow('vb_once', schedule => '2002-02-02 02:00');

------------------------------------------------------------------------------
-- CONTEXT: one line naming the user's objects (issue 15 item 5)
------------------------------------------------------------------------------
SELECT digest AS base2 FROM vb_st \gset
\set SHOW_CONTEXT errors
SELECT taskflow.add_node('vb', 'n1', 'archive', options => '{"server": "nope", "path": "p/", "table": "t"}');
SELECT taskflow.add_node('vb', 'n1', 'sql', 'SELEC 1');
SELECT taskflow.set_variable('vb', 'year', 'yyyy of bizdate + 1000 years');
SELECT taskflow.add_edge('vb', 'extract', 'ghost');
SELECT taskflow.run_flow('vb', bizdate => 'infinity');
SELECT taskflow.create_flow_from_template('sql_daily', 'vb_t', '{"sql": "COMMIT"}');
-- a caller's own frames stay
DO $$ BEGIN PERFORM taskflow.alter_node('vb', 'extract', retries => -1); END $$;
\set SHOW_CONTEXT never
SELECT CASE WHEN digest = :'base2' THEN 'unchanged' ELSE 'CHANGED' END AS state FROM vb_st;

------------------------------------------------------------------------------
-- direct writes get the same bounds (the catalog guard runs the validators)
------------------------------------------------------------------------------
-- 20
CREATE ROLE regress_vb_user;
SET ROLE regress_vb_user;
SELECT taskflow.create_flow('vb_direct') > 0 AS created;
SELECT taskflow.add_node('vb_direct', 'n', 'sql', 'SELECT 1') > 0 AS added;
SELECT regress.try($$ UPDATE taskflow.nodes SET retry_delay = '300000 years'
                       WHERE name = 'n' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'vb_direct') $$);
SELECT regress.try($$ UPDATE taskflow.nodes SET body = 'SELECT 1; COMMIT'
                       WHERE name = 'n' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'vb_direct') $$);
SELECT regress.try($$ UPDATE taskflow.flows SET start_date = 'infinity' WHERE name = 'vb_direct' $$);
SELECT n.retry_delay, n.body, f.start_date
  FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'vb_direct';
SELECT taskflow.drop_flow('vb_direct');
RESET ROLE;
DROP ROLE regress_vb_user;

-- clean up
SELECT taskflow.drop_flow('vb');
SELECT taskflow.drop_flow('vb_once');
DROP SERVER vb_store;
DROP TABLE vb_orders;
