-- export()'s date slots and float8 digits (format.c, 1.6) against COPY TO:
-- a date column keeps the text of up to 64 recent dates in slots picked by
-- the date's low bits, so dates 64 days apart share a slot and must evict
-- each other; a slot is only reused under its DateStyle and DateOrder; the
-- short float8 path prints the integer part and six decimals from digit
-- pairs, around its bounds (ten-digit integer parts with and without a
-- sixth decimal, leading zeros of the decimals, trailing zeros cut).
SET client_min_messages = warning;
DROP SERVER IF EXISTS regress_slots_srv CASCADE;
CREATE SERVER regress_slots_srv FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress_slots');
RESET client_min_messages;
SELECT count(taskflow.delete_object('regress_slots_srv', key)) >= 0 AS cleaned
  FROM taskflow.list_objects('regress_slots_srv', '');

CREATE FUNCTION slots_same(q text, path text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM * FROM taskflow.export(q, 'regress_slots_srv', path);
  EXECUTE format('COPY (%s) TO %L (FORMAT csv, HEADER)', q, '/tmp/taskflow_regress_slots_copy.csv');
  RETURN pg_read_binary_file('/tmp/taskflow_regress_slots_copy.csv')
         = taskflow.get_object('regress_slots_srv', path || 'part-00000.csv');
END $f$;

-- dates that collide in a slot (64 and 128 days apart), alternating row by row
CREATE TABLE slots_d AS
  SELECT g, date '2020-06-01' + (g % 3) * 64 + (g % 5) * 128 AS d
    FROM generate_series(1, 300) g;
SELECT count(DISTINCT d) AS distinct_dates, count(DISTINCT (d - date '2000-01-01') % 64) AS slots_used FROM slots_d;
SELECT slots_same('SELECT * FROM slots_d ORDER BY g', 'collide/') AS same_colliding;
-- many distinct dates over centuries, BC and the infinities, in random order
SELECT setseed(0.7);
CREATE TABLE slots_many AS
  SELECT g, CASE WHEN g % 97 = 0 THEN 'infinity'::date WHEN g % 89 = 0 THEN '-infinity'::date
                 ELSE date '0001-01-01' + (random() * 800000)::int - 400000 END AS d
    FROM generate_series(1, 20000) g;
SELECT count(*) FILTER (WHERE d < date '0001-01-01') > 0 AS some_bc FROM slots_many;
SELECT slots_same('SELECT * FROM slots_many ORDER BY g', 'many/') AS same_many;
-- the same dates in slots made under another style: every style per row
SELECT slots_same($$SELECT d, set_config('datestyle', CASE WHEN g % 4 = 0 THEN 'German'
                                                        WHEN g % 4 = 1 THEN 'ISO, MDY'
                                                        WHEN g % 4 = 2 THEN 'SQL, DMY' ELSE 'Postgres, MDY' END, true) AS s
                    FROM slots_d ORDER BY g$$, 'styles/') AS same_style_per_row;
RESET DateStyle;
SET DateStyle = 'SQL, DMY';
SELECT slots_same('SELECT * FROM slots_d ORDER BY g', 'sqldmy/') AS same_sql_dmy;
RESET DateStyle;

-- float8: ten-digit integer parts (15 digits with 5 decimals: short; 16 with a
-- sixth: Ryu), decimals with leading zeros, trailing zeros, negatives
CREATE TABLE slots_f (f float8);
INSERT INTO slots_f
  SELECT unnest(ARRAY[1999999999.12345, 1999999999.123456, 1000000000.000001, 1000000000.00001,
                      1000000000.1, 1000000000, 1234567890.5, 1234567890.05, 1234567890.000005,
                      999999999.999999, 999999999.99999, 12.000001, 12.00001, 12.0001, 12.001,
                      0.000100, 0.00010000001, 0.001001, 0.010101, 0.1, 0.100001, 0.000999,
                      7.5, 70.05, 700.005, 7000.0005, 70000.00005, 700000.000005, 1.0000005]::float8[]);
INSERT INTO slots_f SELECT -f FROM slots_f;
INSERT INTO slots_f
  SELECT (g::bigint * 1000003 % 2000000000) + (g % 1000000) / 1e6 FROM generate_series(1, 20000) g;
SELECT slots_same('SELECT f FROM slots_f', 'f8/') AS same_f8;
SET extra_float_digits = 1;
SELECT slots_same('SELECT f FROM slots_f', 'f8_efd1/') AS same_f8_efd1;
RESET extra_float_digits;
SELECT convert_from(taskflow.get_object('regress_slots_srv', 'f8/part-00000.csv'), 'UTF8') ~ '\n1999999999\.12345\n'
       AND convert_from(taskflow.get_object('regress_slots_srv', 'f8/part-00000.csv'), 'UTF8') ~ '\n-0\.000999\n' AS digits_seen;

SELECT count(taskflow.delete_object('regress_slots_srv', key)) > 0 AS cleaned_up
  FROM taskflow.list_objects('regress_slots_srv', '');
DROP SERVER regress_slots_srv CASCADE;
DROP TABLE slots_d, slots_many, slots_f;
DROP FUNCTION slots_same(text, text);
