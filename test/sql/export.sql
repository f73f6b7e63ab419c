-- taskflow.export() / taskflow.import() against a file:// storage server:
-- COPY-identical CSV, csv.gz, split into parts, stale part removal, the
-- manifest, errors and privileges.
SET client_min_messages = warning;
DROP SERVER IF EXISTS regress_export_srv CASCADE;
CREATE SERVER regress_export_srv FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress_export');
RESET client_min_messages;
-- start from an empty directory (a previous run may have left objects)
SELECT count(taskflow.delete_object('regress_export_srv', key)) >= 0 AS cleaned
  FROM taskflow.list_objects('regress_export_srv', '');

-- every common type, and the values CSV quoting has to get right
CREATE TABLE tricky (
    id      int PRIMARY KEY,
    t       text,
    vc      varchar(20),
    ch      char(4),
    i8      bigint,
    nm      numeric(12,3),
    f8      double precision,
    f4      real,
    b       boolean,
    d       date,
    ts      timestamp,
    tstz    timestamptz,
    iv      interval,
    tm      time,
    u       uuid,
    jb      jsonb,
    js      json,
    ba      bytea,
    arr     text[],
    ip      inet
);
INSERT INTO tricky VALUES
 (1, NULL, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (2, '', 'x', 'ab', 0, 0, 0, 0, false, '2020-06-01', '2020-06-01 00:00:00', '2020-06-01 00:00:00+08', '0', '00:00', '00000000-0000-0000-0000-000000000000', '{}', '[]', '\x', '{}', '0.0.0.0'),
 (3, 'say "hi"', 'a,b', '"q"', 9223372036854775807, -123456789.125, 1.5e300, -3.25, true, '1999-12-31', '2038-01-19 03:14:07.123456', '2020-06-01 23:59:59.999+00', '1 year 2 mons 3 days 04:05:06', '23:59:59.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": "x,y", "b": [1, null, "\""]}', '{"k" : "v" }', '\xdeadbeef00', '{"a b","c,d","e\"f",NULL,""}', '192.168.0.1/24'),
 (4, E'line1\nline2', E'cr\rhere', E'\t', -1, 0.001, 'NaN', 'Infinity', NULL, 'infinity', '-infinity', NULL, '-1 day', NULL, NULL, 'null', 'null', NULL, '{NULL}', '::1'),
 (5, E'crlf\r\nend', ' lead', 'tr  ', NULL, NULL, '-Infinity', '-0', true, '2020-02-29', NULL, NULL, NULL, NULL, NULL, '"str"', '"str"', NULL, NULL, NULL),
 (6, '\.', '\.', '\.', NULL, NULL, 1e-300, 1e-30, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '1.50', '1.50', '\x5c2e', NULL, NULL),
 (7, 'ünïcödé — 中文 🎉', 'ß', 'é', NULL, NULL, 0.1, 0.1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{"ü": "🎉"}', '{"ü": "🎉"}', NULL, '{ü,🎉}', NULL),
 (8, '"', '""', ',', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (9, ' ', 'NULL', '\N', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (10, E'back\\slash', 'tab	tab', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- plain csv, one part
SELECT * FROM taskflow.export('SELECT * FROM tricky ORDER BY id', 'regress_export_srv', 'tricky/');
SELECT key, size FROM taskflow.list_objects('regress_export_srv', 'tricky/') ORDER BY key;

-- byte-identical to COPY ... TO (FORMAT csv, HEADER)
COPY (SELECT * FROM tricky ORDER BY id) TO '/tmp/taskflow_regress_export_copy.csv' (FORMAT csv, HEADER);
SELECT pg_read_binary_file('/tmp/taskflow_regress_export_copy.csv')
       = taskflow.get_object('regress_export_srv', 'tricky/part-00000.csv') AS same_as_copy;
-- a single column: "\." alone on a line is quoted, exactly like COPY
SELECT * FROM taskflow.export('SELECT t FROM tricky ORDER BY id', 'regress_export_srv', 'single/');
COPY (SELECT t FROM tricky ORDER BY id) TO '/tmp/taskflow_regress_export_copy1.csv' (FORMAT csv, HEADER);
SELECT pg_read_binary_file('/tmp/taskflow_regress_export_copy1.csv')
       = taskflow.get_object('regress_export_srv', 'single/part-00000.csv') AS same_as_copy;
SELECT convert_from(taskflow.get_object('regress_export_srv', 'single/part-00000.csv'), 'UTF8');
-- quoted column names in the header
SELECT convert_from(taskflow.get_object('regress_export_srv', 'names/part-00000.csv'), 'UTF8')
  FROM taskflow.export($$SELECT 1 AS "a,b", 2 AS "say ""x""", NULL::int AS "ok", '' AS e$$,
                       'regress_export_srv', 'names');

-- import back and compare both ways (row text form works for every type)
CREATE TABLE tricky_back (LIKE tricky);
SELECT taskflow.import('regress_export_srv', 'tricky/', 'tricky_back');
SELECT count(*) AS missing FROM (SELECT x::text FROM tricky x EXCEPT SELECT y::text FROM tricky_back y) s;
SELECT count(*) AS extra FROM (SELECT y::text FROM tricky_back y EXCEPT SELECT x::text FROM tricky x) s;
-- NULL and empty string stay different
SELECT id, t IS NULL AS t_null, t = '' AS t_empty, vc IS NULL AS vc_null, vc = '' AS vc_empty
  FROM tricky_back WHERE id IN (1, 2) ORDER BY id;

-- the manifest
SELECT m->>'version' AS version, m->>'format' AS format, m->'compression' AS compression,
       m->>'header' AS header, m->>'rows' AS rows, m->>'objects' AS objects,
       m->>'bytes' = (SELECT size::text FROM taskflow.list_objects('regress_export_srv', 'tricky/part-00000.csv')) AS bytes_ok,
       jsonb_array_length(m->'columns') AS ncols, m->'columns'->3 AS col3, m->'columns'->5 AS col5,
       m->'parts'->0->>'key' AS part_key, m->'parts'->0->>'rows' AS part_rows,
       m->'parts'->0->>'md5' = md5(taskflow.get_object('regress_export_srv', 'tricky/part-00000.csv')) AS md5_ok,
       m->>'created_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$' AS created_at_ok
  FROM (SELECT convert_from(taskflow.get_object('regress_export_srv', 'tricky/_manifest.json'), 'UTF8')::jsonb AS m) s;
SELECT length(taskflow.get_object('regress_export_srv', 'tricky/_SUCCESS')) AS success_len;

-- csv.gz: a gzip stream that imports back to the same rows
SELECT * FROM taskflow.export('SELECT * FROM tricky ORDER BY id', 'regress_export_srv', 'tricky_gz/', 'csv.gz');
SELECT key FROM taskflow.list_objects('regress_export_srv', 'tricky_gz/') ORDER BY key;
SELECT substr(taskflow.get_object('regress_export_srv', 'tricky_gz/part-00000.csv.gz'), 1, 3) AS gzip_magic;
TRUNCATE tricky_back;
SELECT taskflow.import('regress_export_srv', 'tricky_gz', 'tricky_back', 'csv.gz');
SELECT count(*) AS diff FROM ((SELECT x::text FROM tricky x EXCEPT SELECT y::text FROM tricky_back y)
                              UNION ALL (SELECT y::text FROM tricky_back y EXCEPT SELECT x::text FROM tricky x)) s;
-- the wrong format is refused with a hint
SELECT taskflow.import('regress_export_srv', 'tricky_gz', 'tricky_back');

-- split into parts by max_file_size; each part is a complete CSV with header
CREATE TABLE orders AS
  SELECT g AS order_id, 'product ' || (g % 97) AS product_name, (g % 1000) / 10.0 AS price,
         (g % 333) * 1.25 AS total_amount, date '2020-06-01' + (g % 3) AS created_date
    FROM generate_series(1, 5000) g;
SELECT * FROM taskflow.export('SELECT * FROM orders ORDER BY order_id', 'regress_export_srv', 'split',
                              options => '{"max_file_size": "32kB"}');
SELECT count(*) AS parts, bool_and(size <= 32 * 1024 + 200) AS near_limit,
       min(key) AS first, max(key) AS last
  FROM taskflow.list_objects('regress_export_srv', 'split/') WHERE key LIKE 'split/part-%';
SELECT bool_and(convert_from(substr(taskflow.get_object('regress_export_srv', key), 1, 60), 'UTF8')
                LIKE 'order_id,product_name,price,total_amount,created_date' || chr(10) || '%') AS all_have_header
  FROM taskflow.list_objects('regress_export_srv', 'split/') WHERE key LIKE 'split/part-%';
SELECT sum((p->>'rows')::bigint) AS manifest_rows, count(*) AS manifest_parts
  FROM jsonb_array_elements(convert_from(taskflow.get_object('regress_export_srv', 'split/_manifest.json'), 'UTF8')::jsonb->'parts') p;
CREATE TABLE orders_back (LIKE orders);
SELECT taskflow.import('regress_export_srv', 'split/', 'orders_back');
SELECT count(*) AS diff FROM ((TABLE orders EXCEPT TABLE orders_back) UNION ALL (TABLE orders_back EXCEPT TABLE orders)) s;

-- csv.gz split: sizes are measured on the compressed bytes
SELECT objects > 1 AS several, rows, bytes < 60000 AS compressed
  FROM taskflow.export('SELECT * FROM orders ORDER BY order_id', 'regress_export_srv', 'split_gz', 'csv.gz',
                       '{"max_file_size": 8192, "checksum": "sha256"}');
SELECT bool_and(size <= 8192 + 1024) AS near_limit
  FROM taskflow.list_objects('regress_export_srv', 'split_gz/') WHERE key LIKE 'split_gz/part-%';
SELECT bool_and(length(p->>'sha256') = 64) AS sha256_present
  FROM jsonb_array_elements(convert_from(taskflow.get_object('regress_export_srv', 'split_gz/_manifest.json'), 'UTF8')::jsonb->'parts') p;
TRUNCATE orders_back;
SELECT taskflow.import('regress_export_srv', 'split_gz/', 'orders_back', 'csv.gz');
SELECT count(*) AS diff FROM ((TABLE orders EXCEPT TABLE orders_back) UNION ALL (TABLE orders_back EXCEPT TABLE orders)) s;

-- a rerun into the same path overwrites and removes stale parts; a foreign
-- object that is not a part is left alone
SELECT taskflow.put_object('regress_export_srv', 'split/notes.txt', 'keep me');
SELECT * FROM taskflow.export('SELECT * FROM orders WHERE order_id <= 100', 'regress_export_srv', 'split/');
SELECT key FROM taskflow.list_objects('regress_export_srv', 'split/') ORDER BY key;
TRUNCATE orders_back;
SELECT taskflow.import('regress_export_srv', 'split/', 'orders_back');
-- a rewrite that fails while writing (error after some new parts were
-- uploaded) replaces nothing: new parts are staged (hidden temporary files,
-- S3 multipart uploads not completed) until every part is written, so the
-- old archive stays complete and importable (once publishing starts,
-- _SUCCESS goes first and the old manifest stays until a new one replaces
-- it, so import fails the old checksums instead of reading a mix)
SELECT objects > 2 AS several FROM taskflow.export('SELECT * FROM orders ORDER BY order_id',
  'regress_export_srv', 'mixed', options => '{"max_file_size": "32kB"}');
SELECT * FROM taskflow.export($$SELECT g + 100000 AS order_id, 'new' AS product_name, 1.0 AS price,
    2.0 + 0 * (1 / (g - 4000)) AS total_amount, date '2020-06-01' AS created_date
  FROM generate_series(1, 5000) g$$, 'regress_export_srv', 'mixed', options => '{"max_file_size": "32kB"}');
SELECT count(*) FILTER (WHERE key = 'mixed/_SUCCESS') AS success,
       count(*) FILTER (WHERE key = 'mixed/_manifest.json') AS manifest
  FROM taskflow.list_objects('regress_export_srv', 'mixed/');
TRUNCATE orders_back;
SELECT taskflow.import('regress_export_srv', 'mixed/', 'orders_back');
SELECT count(*) AS old_archive_rows FROM orders_back;
-- and the failed attempt left no temporary file behind
SELECT count(*) AS temp_files FROM pg_ls_dir('/tmp/taskflow_regress_export/mixed') f
 WHERE f LIKE '.%';
-- without a manifest import lists part-* in order
SELECT taskflow.delete_object('regress_export_srv', 'split_gz/_manifest.json');
TRUNCATE orders_back;
SELECT taskflow.import('regress_export_srv', 'split_gz/', 'orders_back', 'csv.gz');

-- an empty result still writes one part with the header
SELECT * FROM taskflow.export('SELECT * FROM orders WHERE false', 'regress_export_srv', 'empty');
SELECT convert_from(taskflow.get_object('regress_export_srv', 'empty/part-00000.csv'), 'UTF8');
-- header => false
SELECT * FROM taskflow.export('SELECT 1 AS a, 2 AS b', 'regress_export_srv', 'nohdr', options => '{"header": false}');
SELECT convert_from(taskflow.get_object('regress_export_srv', 'nohdr/part-00000.csv'), 'UTF8');
CREATE TABLE ab (a int, b int);
SELECT taskflow.import('regress_export_srv', 'nohdr', 'ab');
TABLE ab;

-- a corrupted part is detected on import (md5 from the manifest)
SELECT taskflow.put_object('regress_export_srv', 'nohdr/part-00000.csv', convert_to(E'1,3\n', 'UTF8'));
SELECT taskflow.import('regress_export_srv', 'nohdr', 'ab');

-- bad input: clear errors, nothing written
SELECT * FROM taskflow.export('SELECT 1', 'regress_export_srv', 'x', 'parquet');
SELECT * FROM taskflow.export('SELECT 1', 'regress_export_srv', 'x', options => '{"max_file_sise": 1}');
SELECT * FROM taskflow.export('SELECT 1', 'regress_export_srv', 'x', options => '{"max_file_size": "lots"}');
SELECT * FROM taskflow.export('SELECT 1', 'regress_export_srv', 'x', options => '{"max_file_size": 10}');
SELECT * FROM taskflow.export('SELEKT 1', 'regress_export_srv', 'x');
SELECT * FROM taskflow.export('DELETE FROM ab', 'regress_export_srv', 'x');
SELECT * FROM taskflow.export('SELECT 1; SELECT 2', 'regress_export_srv', 'x');
SELECT * FROM taskflow.export('SELECT 1/0', 'regress_export_srv', 'x');
SELECT * FROM taskflow.export('SELECT 1', 'no_such_server', 'x');
SELECT * FROM taskflow.export('SELECT 1', 'regress_export_srv', 'a/../b');
SELECT * FROM taskflow.export(NULL, 'regress_export_srv', 'x');
SELECT taskflow.import('regress_export_srv', 'nothing/here', 'ab');
SELECT count(*) AS leftovers FROM taskflow.list_objects('regress_export_srv', 'x/');
SELECT count(*) AS ab_unchanged FROM ab;

-- privileges: USAGE on the server to export, INSERT on the target to import
CREATE ROLE regress_export_user;
GRANT SELECT ON orders TO regress_export_user;
CREATE USER MAPPING FOR PUBLIC SERVER regress_export_srv;
SET ROLE regress_export_user;
SELECT * FROM taskflow.export('SELECT 1', 'regress_export_srv', 'priv');
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER regress_export_srv TO regress_export_user;
SET ROLE regress_export_user;
SELECT * FROM taskflow.export('SELECT count(*) FROM orders', 'regress_export_srv', 'priv');
SELECT taskflow.import('regress_export_srv', 'priv', 'orders_back');
RESET ROLE;

-- clean up
SELECT count(taskflow.delete_object('regress_export_srv', key)) > 0 AS cleaned
  FROM taskflow.list_objects('regress_export_srv', '');
DROP TABLE tricky, tricky_back, orders, orders_back, ab;
DROP OWNED BY regress_export_user;
DROP ROLE regress_export_user;
DROP SERVER regress_export_srv CASCADE;
