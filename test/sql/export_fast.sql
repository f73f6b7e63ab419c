-- export()'s inlined formatting of int2/int4/int8, float4/float8, date and
-- text/varchar/bpchar (format.c, TfColKind) against COPY TO, under every
-- setting the output functions read (extra_float_digits, DateStyle), with
-- toasted (compressed and external) text, domains, and the one-column "\."
-- rule; and the two-lane row digest against hashtextextended().
SET client_min_messages = warning;
DROP SERVER IF EXISTS regress_fast_srv CASCADE;
CREATE SERVER regress_fast_srv FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress_fast');
RESET client_min_messages;
SELECT count(taskflow.delete_object('regress_fast_srv', key)) >= 0 AS cleaned
  FROM taskflow.list_objects('regress_fast_srv', '');

CREATE DOMAIN fast_i8 AS bigint;
CREATE DOMAIN fast_txt AS text;
CREATE TABLE fast (
    id   int,
    i2   smallint,
    i8   bigint,
    f4   real,
    f8   double precision,
    d    date,
    t    text,
    vc   varchar(40),
    bc   char(6),
    di8  fast_i8,
    dt   fast_txt
);
ALTER TABLE fast ALTER COLUMN t SET STORAGE EXTERNAL;   -- a long t is toasted uncompressed
INSERT INTO fast VALUES
 (1, 0, 0, 0, 0, '2020-06-01', '', '', '', 0, ''),
 (2, -32768, -9223372036854775808, -3.4e38, -1.7976931348623157e308, '4713-01-01 BC', 'a,b', 'say "hi"', 'x', -1, E'l1\nl2'),
 (3, 32767, 9223372036854775807, 3.4e38, 1.7976931348623157e308, '5874897-12-31', '"', '""', '"', 1, E'cr\r'),
 (4, NULL, NULL, 'NaN', 'NaN', 'infinity', NULL, NULL, NULL, NULL, NULL),
 (5, 7, 42, 'Infinity', 'Infinity', '-infinity', '\.', '\.', '\.', 42, '\.'),
 (6, -7, -42, '-Infinity', '-Infinity', '1999-12-31', ' lead', 'trail ', 'ab', -42, ' '),
 (7, 1, 1, 1e-45, 5e-324, '2000-02-29', 'ünïcödé — 中文', 'ß', 'é', 1, '🎉'),
 (8, 2, 2, 0.1, 0.1, '0001-01-01', repeat('x,y', 3000), repeat('v', 40), 'abcdef', 2, repeat('compressible ', 500)),
 (9, 3, 3, -0.0, -0.0, '2038-01-19', md5('a') || repeat(md5('b'), 200), 'tab	tab', 'a"b', 3, 'back\slash'),
 (10, 4, 4, 1.5e-7, 123456789012345678, '1970-01-01', 'NULL', '\N', ',', 4, ',');
-- the long values really are toasted: external (9) and compressed (8, dt)
SELECT id, pg_column_size(t) < octet_length(t) AS t_compressed, pg_column_size(dt) < octet_length(dt) AS dt_compressed
  FROM fast WHERE id IN (8, 9) ORDER BY id;

-- compare one export with COPY's bytes under the current settings
CREATE FUNCTION fast_same(q text, path text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM * FROM taskflow.export(q, 'regress_fast_srv', path);
  EXECUTE format('COPY (%s) TO %L (FORMAT csv, HEADER)', q, '/tmp/taskflow_regress_fast_copy.csv');
  RETURN pg_read_binary_file('/tmp/taskflow_regress_fast_copy.csv')
         = taskflow.get_object('regress_fast_srv', path || 'part-00000.csv');
END $f$;

SELECT fast_same('SELECT * FROM fast ORDER BY id', 'default/') AS same_default;
SET extra_float_digits = 3;
SELECT fast_same('SELECT * FROM fast ORDER BY id', 'efd3/') AS same_efd3;
SET extra_float_digits = 0;
SELECT fast_same('SELECT * FROM fast ORDER BY id', 'efd0/') AS same_efd0;
SET extra_float_digits = -15;
SELECT fast_same('SELECT * FROM fast ORDER BY id', 'efdm15/') AS same_efdm15;
RESET extra_float_digits;
-- the floats really differ between the settings (the test sees the setting)
SELECT convert_from(taskflow.get_object('regress_fast_srv', 'efd0/part-00000.csv'), 'UTF8')
       <> convert_from(taskflow.get_object('regress_fast_srv', 'default/part-00000.csv'), 'UTF8') AS efd_matters;
SET DateStyle = 'SQL, DMY';
SELECT fast_same('SELECT * FROM fast ORDER BY id', 'sqldmy/') AS same_sql_dmy;
SET DateStyle = 'German';
SELECT fast_same('SELECT * FROM fast ORDER BY id', 'german/') AS same_german;
SET DateStyle = 'Postgres, MDY';
SELECT fast_same('SELECT * FROM fast ORDER BY id', 'pgmdy/') AS same_postgres_mdy;
SELECT convert_from(taskflow.get_object('regress_fast_srv', 'pgmdy/part-00000.csv'), 'UTF8') ~ '06-01-2020' AS postgres_style_seen;
RESET DateStyle;
-- a date column's last text is reused only under the same DateStyle and
-- DateOrder: the same date on every row, the style changed between rows
SELECT fast_same($$SELECT d, set_config('datestyle', CASE WHEN g % 3 = 0 THEN 'German'
                                                       WHEN g % 3 = 1 THEN 'ISO, MDY' ELSE 'SQL, MDY' END, true) AS s
                   FROM (SELECT g, date '2020-06-01' AS d FROM generate_series(1, 9) g) x$$, 'dstyle/') AS same_style_per_row;
SELECT fast_same($$SELECT d, set_config('datestyle', CASE WHEN g % 2 = 0 THEN 'SQL, DMY' ELSE 'SQL, MDY' END, true) AS s
                   FROM (SELECT g, date '2020-06-01' AS d FROM generate_series(1, 6) g) x$$, 'dorder/') AS same_order_per_row;
SELECT convert_from(taskflow.get_object('regress_fast_srv', 'dorder/part-00000.csv'), 'UTF8') ~ '01/06/2020' AND
       convert_from(taskflow.get_object('regress_fast_srv', 'dorder/part-00000.csv'), 'UTF8') ~ '06/01/2020' AS both_orders_seen;
RESET DateStyle;
-- one column: "\." alone is quoted for every kind of text
SELECT fast_same('SELECT t FROM fast ORDER BY id', 'one_t/') AS same_one_text,
       fast_same('SELECT vc FROM fast ORDER BY id', 'one_vc/') AS same_one_varchar,
       fast_same('SELECT bc FROM fast ORDER BY id', 'one_bc/') AS same_one_bpchar,
       fast_same('SELECT dt FROM fast ORDER BY id', 'one_dt/') AS same_one_domain;
SELECT convert_from(taskflow.get_object('regress_fast_srv', 'one_t/part-00000.csv'), 'UTF8') ~ '\n"\\\."\n' AS quoted_backslash_dot;
-- a generic column (numeric) next to the inlined ones
SELECT fast_same('SELECT id, i8::numeric / 7 AS n, f8, d FROM fast ORDER BY id', 'mixed/') AS same_mixed;

-- float8's short-decimal path (tf_float8_short) against float8out: short
-- decimals of every scale and size, around its bounds (1e-4, 2e9, 15 digits,
-- 6 decimals), and arbitrary doubles that must go to d2s
SELECT setseed(0.42);
CREATE TABLE fast_f8 AS
  SELECT (CASE WHEN g % 2 = 0 THEN 1 ELSE -1 END *
          round((random() * 10 ^ (g % 16 - 5))::numeric, (g / 16) % 9))::float8 AS f
    FROM generate_series(1, 60000) g
  UNION ALL SELECT random() * 10 ^ (g % 30 - 10) FROM generate_series(1, 20000) g
  UNION ALL SELECT g::float8 FROM generate_series(-2000, 2000) g
  UNION ALL SELECT unnest(ARRAY[1e-4, 9.9999e-5, 1.00001e-4, 0.000123, 0.00012345, 0.0001234567,
                                1999999999.999999, 2e9, 2e9 - 1, 1999999999.99, 123456789.123456,
                                12345678.1234567, 999999999999999, 0.1 + 0.2, 1 / 3.0, 2 / 3.0,
                                0.1, 0.5, 1e15, 1e14, 123456789012345, 1234567.891, 4.35, 0.07,
                                1e-5, 5e-324, 0.1::float8 + 0.2::float8, 1.1::float8 * 1.1::float8, 2.2250738585072014e-308, 1.7976931348623157e308,
                                -0.0, 0, 100, 1e6, 1e9, 0.999999, 0.9999995, 9.999999e8]::float8[]);
SELECT count(*) > 84000 AS many FROM fast_f8;
SELECT fast_same('SELECT f FROM fast_f8', 'f8/') AS same_f8;
SET extra_float_digits = 2;
SELECT fast_same('SELECT f FROM fast_f8', 'f8_efd2/') AS same_f8_efd2;
RESET extra_float_digits;

-- the manifest's rows_digest: per data line (with its LF) hash_bytes_extended
-- under the two seeds, summed mod 2^64; hashtextextended() is that function
-- over a text's bytes, so SQL computes the same digest from COPY's lines
-- (rows without an embedded newline, so that a line is a row)
SELECT * FROM taskflow.export('SELECT * FROM fast WHERE id <> 2 ORDER BY id', 'regress_fast_srv', 'digest/');
COPY (SELECT * FROM fast WHERE id <> 2 ORDER BY id) TO '/tmp/taskflow_regress_fast_copy.csv' (FORMAT csv);
CREATE FUNCTION fast_hex(s numeric) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(to_hex((CASE WHEN m >= 9223372036854775808 THEN m - 18446744073709551616 ELSE m END)::bigint), 16, '0')
    FROM (SELECT mod(mod(s, 18446744073709551616) + 18446744073709551616, 18446744073709551616) AS m) x $$;
WITH lines AS (
  SELECT l || E'\n' AS l
    FROM regexp_split_to_table(pg_read_file('/tmp/taskflow_regress_fast_copy.csv'), E'\n') l
   WHERE l <> ''),
sums AS (
  SELECT count(*) AS n,
         sum(hashtextextended(l, x'7461736b666c6f77'::bigint)::numeric) AS s1,
         sum(hashtextextended(l, x'6172636869766521'::bigint)::numeric) AS s2
    FROM lines)
SELECT n, m->>'rows' AS manifest_rows,
       m->>'rows_digest' = fast_hex(s1) || fast_hex(s2) AS digest_matches_sql
  FROM sums,
       (SELECT convert_from(taskflow.get_object('regress_fast_srv', 'digest/_manifest.json'), 'UTF8')::jsonb AS m) mm;
-- every line length 0-40 (each tail length of the 12-byte blocks) and long lines
CREATE TABLE fast_len AS SELECT g AS n, repeat('z', g) AS s FROM generate_series(0, 40) g
  UNION ALL SELECT 1000 + g, repeat('q', 1000 + g) FROM generate_series(0, 11) g;
SELECT * FROM taskflow.export('SELECT s FROM fast_len ORDER BY n', 'regress_fast_srv', 'len/');
COPY (SELECT s FROM fast_len ORDER BY n) TO '/tmp/taskflow_regress_fast_copy.csv' (FORMAT csv);
WITH lines AS (
  SELECT l || E'\n' AS l
    FROM regexp_split_to_table(rtrim(pg_read_file('/tmp/taskflow_regress_fast_copy.csv'), E'\n'), E'\n') l),
sums AS (
  SELECT count(*) AS n,
         sum(hashtextextended(l, x'7461736b666c6f77'::bigint)::numeric) AS s1,
         sum(hashtextextended(l, x'6172636869766521'::bigint)::numeric) AS s2
    FROM lines)
SELECT n, m->>'rows_digest' = fast_hex(s1) || fast_hex(s2) AS digest_matches_sql
  FROM sums,
       (SELECT convert_from(taskflow.get_object('regress_fast_srv', 'len/_manifest.json'), 'UTF8')::jsonb AS m) mm;
-- and import() verifies it: the rows come back
CREATE TABLE fast_back (LIKE fast);
SELECT taskflow.import('regress_fast_srv', 'default/', 'fast_back');
SELECT count(*) AS diff FROM ((SELECT x::text FROM fast x EXCEPT SELECT y::text FROM fast_back y)
                              UNION ALL (SELECT y::text FROM fast_back y EXCEPT SELECT x::text FROM fast x)) s;

DROP TABLE fast, fast_back, fast_len, fast_f8;
DROP FUNCTION fast_same(text, text);
DROP FUNCTION fast_hex(numeric);
DROP DOMAIN fast_i8;
DROP DOMAIN fast_txt;
SET client_min_messages = warning;
DROP SERVER regress_fast_srv CASCADE;
RESET client_min_messages;
