// node test/s3/duck_read.mjs <dir> — read a Hive-partitioned csv/csv.gz archive with
// DuckDB (an independent reader) and print per-partition row counts and sums.
import { DuckDBInstance } from '@duckdb/node-api';

const dir = process.argv[2];
const inst = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false', autoload_known_extensions: 'false',
});
const con = await inst.connect();
const rows = (await con.runAndReadAll(`
  SELECT y, m, d, count(*) AS rows, round(sum(total_amount), 2) AS total
  FROM read_csv('${dir}/**/part-*.csv*', hive_partitioning = true, header = true)
  GROUP BY ALL ORDER BY ALL`)).getRowObjectsJson();
for (const r of rows) console.log(JSON.stringify(r));
