-- copy nodes at definition: the registry (node_kinds.c) checks option names,
-- JSON types and values, and the copy kind's own rules; every bad input is
-- refused with SQLSTATE 22023 (3D000 for a missing database) and a hint,
-- and changes nothing.
\set SHOW_CONTEXT never
\set VERBOSITY default
SELECT taskflow.create_flow('cp') > 0 AS created;
SELECT 'copy' = ANY (taskflow._node_kinds()) AS registered;
SELECT taskflow._option_order('copy');

-- good definitions
SELECT taskflow.add_node('cp', 'inc', 'copy', options => '{
  "table": "orders", "source_database": "postgres", "target": "orders_copy",
  "mode": "incremental", "watermark": "updated_at"}') > 0 AS added;
SELECT taskflow.add_node('cp', 'ups', 'copy', options => '{
  "query": "SELECT * FROM orders WHERE day = ${bizdate:literal}", "target": "orders_copy",
  "mode": "upsert", "key": "region, id"}') > 0 AS added;
SELECT taskflow.add_node('cp', 'lb', 'copy', options => '{
  "table": "orders", "target": "orders_copy", "mode": "incremental", "watermark": "updated_at",
  "key": "id", "lookback": "1 hour"}') > 0 AS added;
SELECT taskflow.render('cp', 'ups', '2024-05-01');

-- bad ones
SELECT taskflow.add_node('cp', 'b1', 'copy', options => '{"table": "t"}');
SELECT taskflow.add_node('cp', 'b2', 'copy', options => '{"table": "t", "query": "SELECT 1", "target": "x"}');
SELECT taskflow.add_node('cp', 'b3', 'copy', options => '{"target": "x"}');
SELECT taskflow.add_node('cp', 'b4', 'copy', options => '{"table": "t", "target": "x", "mode": "merge"}');
SELECT taskflow.add_node('cp', 'b5', 'copy', options => '{"table": "t", "target": "x", "mode": "upsert"}');
SELECT taskflow.add_node('cp', 'b6', 'copy', options => '{"table": "t", "target": "x", "mode": "incremental"}');
SELECT taskflow.add_node('cp', 'b7', 'copy', options => '{"table": "t", "target": "x", "watermark": "id"}');
SELECT taskflow.add_node('cp', 'b8', 'copy', options => '{"table": "t", "target": "x", "mode": "incremental", "watermark": "id", "lookback": "soon", "key": "id"}');
SELECT taskflow.add_node('cp', 'b9', 'copy', options => '{"table": "t", "target": "x", "mode": "incremental", "watermark": "id", "lookback": "1 hour"}');
SELECT taskflow.add_node('cp', 'b10', 'copy', options => '{"table": "t", "target": "x", "target_database": "postgres", "mode": "incremental", "watermark": "id"}');
SELECT taskflow.add_node('cp', 'b11', 'copy', options => '{"table": "t", "target": "x", "source_database": "no_such_db"}');
SELECT taskflow.add_node('cp', 'b12', 'copy', options => '{"table": "t", "target": "x", "limit": 5}');
SELECT taskflow.add_node('cp', 'b13', 'copy', options => '{"table": 5, "target": "x"}');
SELECT taskflow.add_node('cp', 'b14', 'copy', 'SELECT 1', options => '{"table": "t", "target": "x"}');
SELECT taskflow.add_node('cp', 'b15', 'copy', options => '{"table": "t", "target": "x", "mode": "upsert", "key": "a,,b"}');
SELECT taskflow.add_node('cp', 'b16', 'copy', options => '{"table": "t", "target": "x", "key": "id"}');
SELECT taskflow.add_node('cp', 'b17', 'copy', options => '{"table": "t", "target": "${nope}"}');
SELECT count(*) AS nodes FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'cp';
-- remote servers (postgres_fdw servers)
SELECT taskflow.add_node('cp', 'r1', 'copy', options => '{"table": "t", "target": "x", "source_server": "no_such_server"}');
CREATE SERVER cp_store FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file:///tmp/taskflow_regress');
SELECT taskflow.add_node('cp', 'r2', 'copy', options => '{"table": "t", "target": "x", "target_server": "cp_store"}');
DROP SERVER cp_store;
SELECT taskflow.add_node('cp', 'r3', 'copy', options => '{"table": "t", "target": "x", "source_server": "s", "source_database": "postgres"}');
SELECT taskflow.add_node('cp', 'r4', 'copy', options => '{"table": "t", "target": "x", "target_server": "${srv}", "mode": "incremental", "watermark": "id"}');
-- unknown kinds name the registry's kinds
SELECT taskflow.add_node('cp', 'b19', 'kopy', options => '{}');
SELECT taskflow.drop_flow('cp');
