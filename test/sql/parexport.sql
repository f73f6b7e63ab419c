-- The option "parallel" (parexport.c): bounds on export() and on the archive
-- node (checked when the node is added), and small exports with it.
SET client_min_messages = warning;
DROP SERVER IF EXISTS regress_parexp_srv CASCADE;
CREATE SERVER regress_parexp_srv FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress_parexport');
RESET client_min_messages;
SELECT count(taskflow.delete_object('regress_parexp_srv', key)) >= 0 AS cleaned
  FROM taskflow.list_objects('regress_parexp_srv', '');

CREATE TABLE parexp_src AS SELECT g AS id, 'row ' || g AS t FROM generate_series(1, 5000) g;

-- export(): 0..64, an integer
SELECT * FROM taskflow.export('SELECT * FROM parexp_src', 'regress_parexp_srv', 'a', 'csv', '{"parallel": 65}');
SELECT * FROM taskflow.export('SELECT * FROM parexp_src', 'regress_parexp_srv', 'a', 'csv', '{"parallel": -1}');
SELECT * FROM taskflow.export('SELECT * FROM parexp_src', 'regress_parexp_srv', 'a', 'csv', '{"parallel": "two"}');
-- null is the automatic choice; 0 and 1 are serial
SELECT objects, rows FROM taskflow.export('SELECT * FROM parexp_src', 'regress_parexp_srv', 'auto', 'csv', '{"parallel": null}');
SELECT objects, rows FROM taskflow.export('SELECT * FROM parexp_src', 'regress_parexp_srv', 'serial', 'csv', '{"parallel": 0}');
-- a query that cannot be split runs serially, with a notice
SELECT objects, rows FROM taskflow.export('SELECT id, count(*) FROM parexp_src GROUP BY id', 'regress_parexp_srv', 'agg', 'csv', '{"parallel": 4}');
SELECT objects, rows FROM taskflow.export('SELECT * FROM parexp_src a JOIN parexp_src b USING (id)', 'regress_parexp_srv', 'join', 'csv', '{"parallel": 4}');
-- a sub-select may read a temporary table, which parallel workers cannot: serial
CREATE TEMP TABLE parexp_ids AS SELECT g AS id FROM generate_series(1, 5000, 2) g;
SELECT objects, rows FROM taskflow.export('SELECT * FROM parexp_src WHERE id IN (SELECT id FROM parexp_ids)', 'regress_parexp_srv', 'sub', 'csv', '{"parallel": 4}');
-- split: every row once
SELECT rows FROM taskflow.export('SELECT * FROM parexp_src', 'regress_parexp_srv', 'par', 'csv', '{"parallel": 2, "max_file_size": "4kB"}');
CREATE TABLE parexp_back (LIKE parexp_src);
SELECT taskflow.import('regress_parexp_srv', 'par/', 'parexp_back');
SELECT count(*) AS missing_or_extra FROM ((TABLE parexp_src EXCEPT ALL TABLE parexp_back)
    UNION ALL (TABLE parexp_back EXCEPT ALL TABLE parexp_src)) s;

-- the archive node: validated when it is added
SELECT taskflow.create_flow('regress_parexp_flow') IS NOT NULL AS created;
SELECT taskflow.add_node('regress_parexp_flow', 'a', 'archive',
    options => '{"server": "regress_parexp_srv", "path": "x/", "table": "parexp_src", "parallel": 65}');
SELECT taskflow.add_node('regress_parexp_flow', 'a', 'archive',
    options => '{"server": "regress_parexp_srv", "path": "x/", "table": "parexp_src", "parallel": "many"}');
SELECT taskflow.add_node('regress_parexp_flow', 'a', 'archive',
    options => '{"server": "regress_parexp_srv", "path": "x/", "table": "parexp_src", "parallel": 4}') IS NOT NULL AS added;
SELECT taskflow.drop_flow('regress_parexp_flow');

SELECT count(taskflow.delete_object('regress_parexp_srv', key)) >= 0 AS cleaned
  FROM taskflow.list_objects('regress_parexp_srv', '');
DROP TABLE parexp_src, parexp_back;
SET client_min_messages = warning;
DROP SERVER regress_parexp_srv CASCADE;
