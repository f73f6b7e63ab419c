-- foreign tables of taskflow_storage: option validation (storage_fdw.c)
CREATE SERVER fdw_files FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress_no_such_dir');

-- path is required, relative, without . / .. / empty components
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files;
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path '/abs/');
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'a/../b');
-- format, header, require_success, partition_columns
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'x', format 'parquet');
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'x', header 'maybe');
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'x', require_success 'sometimes');
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'x', partition_columns ' , ');
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'x', partition_columns 'y=2020');
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'x', partition_columns 'y,m,y');
-- unknown options, here and on columns
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'x', bogus '1');
CREATE FOREIGN TABLE ft_bad (a int OPTIONS (bogus '1')) SERVER fdw_files OPTIONS (path 'x');
-- server options are not table options and vice versa
CREATE FOREIGN TABLE ft_bad (a int) SERVER fdw_files OPTIONS (path 'x', url 'file:///tmp');
CREATE SERVER fdw_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file:///tmp', path 'x');

-- a valid table; nothing archived yet: no rows, EXPLAIN shows the (empty) listing
CREATE FOREIGN TABLE ft_orders (order_id bigint, total_amount float8, y text, m text, d text)
    SERVER fdw_files
    OPTIONS (path 'dla_demo', format 'csv.gz', partition_columns 'y, m, d');
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'ft_orders'::regclass;
SELECT count(*), sum(total_amount) FROM ft_orders WHERE y = '2020' AND m = '06';
EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(total_amount) FROM ft_orders WHERE y = '2020' AND m = '06';
-- ALTER keeps the rules
ALTER FOREIGN TABLE ft_orders OPTIONS (DROP path);
ALTER FOREIGN TABLE ft_orders OPTIONS (SET format 'csv');
-- a partition column that is not a column is found when the table is used
ALTER FOREIGN TABLE ft_orders OPTIONS (SET partition_columns 'y,month');
SELECT * FROM ft_orders;
-- read only
INSERT INTO ft_orders VALUES (1, 1, '2020', '06', '01');
-- IMPORT FOREIGN SCHEMA wants a path and no options
IMPORT FOREIGN SCHEMA "dla_demo" FROM SERVER fdw_files INTO public OPTIONS (format 'csv');
IMPORT FOREIGN SCHEMA "dla_demo" FROM SERVER fdw_files INTO public;

DROP SERVER fdw_files CASCADE;
