-- taskflow demo: the reference scenario, end to end.
-- Archive yesterday's orders to Hive-partitioned files every day at 05:00
-- (Asia/Shanghai), and delete them from the table once they are safely stored.
\set ON_ERROR_STOP on
\pset pager off
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS taskflow;

-- 1. a non-superuser owns the data and the flow; node SQL runs as this role
CREATE ROLE demo_owner LOGIN;
GRANT CREATE ON SCHEMA public TO demo_owner;

-- 2. the embedded default object store: a file:// server (superuser-only)
CREATE SERVER demo_archive FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url :'archive_url');
GRANT USAGE ON FOREIGN SERVER demo_archive TO demo_owner;

SET ROLE demo_owner;

-- 3. the orders table, three days of data
CREATE TABLE orders (
    order_id     bigint PRIMARY KEY,
    product_name varchar(32),
    price        double precision,
    total_amount double precision,
    created_date date
);
INSERT INTO orders
SELECT g, 'product-' || (g % 17), (g % 100) + 0.5, ((g % 100) + 0.5) * (1 + g % 3),
       date '2020-05-31' + (g % 3)
FROM generate_series(1, 30000) g;

\echo
\echo == orders per day before the run
SELECT created_date, count(*) AS rows, sum(total_amount) AS total
FROM orders GROUP BY 1 ORDER BY 1;

-- 4. the flow, from the template
SELECT taskflow.create_flow_from_template('archive_table_daily', 'orders_archive',
    jsonb_build_object('table', 'orders', 'date_column', 'created_date',
                       'server', 'demo_archive', 'path_prefix', 'dla_demo',
                       'format', 'csv.gz', 'timezone', 'Asia/Shanghai',
                       'schedule', '0 5 * * *', 'source', 'delete')) AS flow_id \gset

\echo
\echo == what the archive node would run for bizdate 2020-06-01
SELECT taskflow.render('orders_archive', 'archive', '2020-06-01');

\echo
\echo == the next fire times (05:00 Asia/Shanghai = 21:00 UTC the day before)
SELECT t AS next_runs_utc FROM taskflow.next_runs('0 5 * * *', '2020-06-01 00:00+00', 3, 'Asia/Shanghai') t;

\echo
\echo == the flow as a graph (mermaid)
SELECT taskflow.flow_graph('orders_archive', 'mermaid');

-- what the run must move: kept aside for demo/run's verdict
CREATE TABLE demo_expected AS
SELECT count(*) AS rows, round(sum(total_amount)::numeric, 2) AS total
FROM orders WHERE created_date = '2020-06-01';

-- 5. run it for bizdate 2020-06-01 (as the scheduler would at 2020-06-02 05:00)
SELECT taskflow.run_flow('orders_archive', bizdate => '2020-06-01') AS run_id \gset
SELECT taskflow.wait_run(:run_id, '5 minutes') AS final_state;

\echo
\echo == the run, as an O&M page shows it
SELECT flow, node, state, attempts, rows, bytes, duration < interval '1 min' AS quick, error
FROM taskflow.node_run_history WHERE run_id = :run_id;

\echo
\echo == the node log (node_runs.log)
SELECT regexp_replace(log, '^\S+ \S+ ', '', 'gn') AS log FROM taskflow.node_runs WHERE run_id = :run_id;

\echo
\echo == objects written
SELECT key, size FROM taskflow.list_objects('demo_archive', 'dla_demo/') ORDER BY key;

\echo
\echo == orders per day after the run (2020-06-01 is gone from the table)
SELECT created_date, count(*) AS rows FROM orders GROUP BY 1 ORDER BY 1;

\echo
\echo == flow status
SELECT flow, schedule, timezone, last_state, last_bizdate, next_run FROM taskflow.flow_status;
RESET ROLE;
