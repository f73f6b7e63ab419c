-- Review of 1.5 (docs/security.md): export()'s inlined formatting (format.c)
-- against COPY TO in the edge cases export_fast does not list: every
-- extra_float_digits from -15 to 3 over float4/float8 -0, NaN, +-Infinity,
-- subnormals, the 1e15/1e16/1e17 boundaries and the bounds of the
-- short-decimal path; dates +-infinity, BC, years past 9999 under every
-- DateStyle and DateOrder; domains over float8 and date; arrays of these
-- (the type's output function).  Each comparison is of the whole file,
-- byte for byte.
SET client_min_messages = warning;
DROP SERVER IF EXISTS regress_edges_srv CASCADE;
CREATE SERVER regress_edges_srv FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress_edges');
RESET client_min_messages;
SELECT count(taskflow.delete_object('regress_edges_srv', key)) >= 0 AS cleaned
  FROM taskflow.list_objects('regress_edges_srv', '');

CREATE FUNCTION edges_same(q text, path text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM * FROM taskflow.export(q, 'regress_edges_srv', path);
  EXECUTE format('COPY (%s) TO %L (FORMAT csv, HEADER)', q, '/tmp/taskflow_regress_edges_copy.csv');
  RETURN pg_read_binary_file('/tmp/taskflow_regress_edges_copy.csv')
         = taskflow.get_object('regress_edges_srv', path || 'part-00000.csv');
END $f$;

CREATE DOMAIN edges_f8 AS double precision;
CREATE DOMAIN edges_d AS date;
CREATE TABLE edges_f AS
SELECT x AS f8, x::edges_f8 AS df8, ARRAY[x, -x] AS af8,
       CASE WHEN x = 0 OR x <> x OR abs(x) = 'Infinity' OR abs(x) BETWEEN 1.5e-45 AND 3.4e38
            THEN x::real END AS f4
  FROM unnest(ARRAY['-0', 'NaN', 'Infinity', '-Infinity', 4.9e-324, 2.2250738585072014e-308,
                    2.225073858507201e-308, 1e15, 1e16, 1e17, 999999999999999, 9999999999999998,
                    1e15 + 1, 1e16 + 2, 123456789012345678, 1.401298464324817e-45,
                    1.1754943508222875e-38, 3.4028234663852886e38, 1e-4, 9.999999e-5, 1e-5,
                    2e9, 1999999999.999999, 1999999999.9999995, 0.1, 1 / 3.0, 100, 1e21, 1e22,
                    -2.5e-4, 123456.789012, 1.7976931348623157e308, 12345678901.5]::float8[]) x;
CREATE TABLE edges_f4 AS
SELECT x AS f4, ARRAY[x] AS af4
  FROM unnest(ARRAY['1.4e-45', '1.17549435e-38', '1.1754942e-38', '3.4028235e38', '-0', 'NaN',
                    '-Infinity', '1e15', '1e16', '1e17', '16777217', '0.1', '1e-4', '9.99e-5']::real[]) x;
-- every extra_float_digits: (-15..3) x 2 tables, all must be identical
CREATE TABLE edges_res (what text, ok boolean);
DO $$
BEGIN
  FOR e IN -15..3 LOOP
    PERFORM set_config('extra_float_digits', e::text, true);
    INSERT INTO edges_res SELECT 'efd ' || e, edges_same('SELECT * FROM edges_f', 'f' || e || '/')
                                               AND edges_same('SELECT * FROM edges_f4', 'g' || e || '/');
  END LOOP;
END $$;
SELECT count(*) AS settings, count(*) FILTER (WHERE ok) AS identical,
       string_agg(what, ', ') FILTER (WHERE NOT ok) AS differing
  FROM edges_res;
-- (the settings really change the text)
SELECT count(DISTINCT taskflow.get_object('regress_edges_srv', 'f' || e || '/part-00000.csv')) > 10 AS efd_matters
  FROM generate_series(-15, 3) e;

CREATE TABLE edges_dates AS
SELECT x AS d, x::edges_d AS dd, ARRAY[x, NULL] AS ad
  FROM unnest(ARRAY['infinity', '-infinity', '4713-01-01 BC', '0001-12-31 BC', '0044-03-15 BC',
                    '0001-01-01', '0099-12-31', '1582-10-15', '2000-02-29', '9999-12-31',
                    '10000-01-01', '275760-09-13', '5874897-12-31']::date[]) x;
TRUNCATE edges_res;
DO $$
DECLARE s text; o text;
BEGIN
  FOREACH s IN ARRAY ARRAY['ISO', 'SQL', 'Postgres', 'German'] LOOP
    FOREACH o IN ARRAY ARRAY['DMY', 'MDY', 'YMD'] LOOP
      PERFORM set_config('datestyle', s || ', ' || o, true);
      INSERT INTO edges_res SELECT s || ', ' || o, edges_same('SELECT * FROM edges_dates', 'd' || s || o || '/');
    END LOOP;
  END LOOP;
END $$;
SELECT count(*) AS settings, count(*) FILTER (WHERE ok) AS identical,
       string_agg(what, ', ') FILTER (WHERE NOT ok) AS differing
  FROM edges_res;
SELECT count(DISTINCT taskflow.get_object('regress_edges_srv', 'd' || s || o || '/part-00000.csv')) AS distinct_texts
  FROM unnest(ARRAY['ISO', 'SQL', 'Postgres', 'German']) s, unnest(ARRAY['DMY', 'MDY', 'YMD']) o;

-- one date column alone, BC and infinity, quoted like COPY ("\." rule not hit)
SELECT edges_same('SELECT d FROM edges_dates', 'one_d/') AS same_one_date;

DROP TABLE edges_f, edges_f4, edges_dates, edges_res;
DROP FUNCTION edges_same(text, text);
DROP DOMAIN edges_f8;
DROP DOMAIN edges_d;
SET client_min_messages = warning;
DROP SERVER regress_edges_srv CASCADE;
RESET client_min_messages;
