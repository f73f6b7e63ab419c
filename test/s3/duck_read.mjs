// node test/s3/duck_read.mjs <dir> [--summary] — read a Hive-partitioned csv/csv.gz
// archive with DuckDB (an independent reader). Prints one line per partition
// (y, m, d, rows, total of total_amount); with --summary one line
// "rows=<n> total=<sum>" over the complete partitions (those with _SUCCESS).
import { DuckDBInstance } from '@duckdb/node-api';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

// part files under dir (recursive); names starting with '.' or '_' are not data
function parts(d) {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? parts(join(d, e.name))
      : /^part-.*\.csv(\.gz)?$/.test(e.name) ? [join(d, e.name)] : []);
}

const dir = process.argv[2];
const summary = process.argv.includes('--summary');
const inst = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false', autoload_known_extensions: 'false',
});
const con = await inst.connect();
// only partitions that carry _SUCCESS are complete (docs/archive.md)
const files = parts(dir).filter((f) => existsSync(f.replace(/[^/]+$/, '_SUCCESS')));
if (files.length === 0) { console.log(summary ? 'rows=0 total=0' : 'no complete partition'); process.exit(0); }
const list = files.map((f) => `'${f.replace(/'/g, "''")}'`).join(', ');
const q = summary
  ? `SELECT count(*) AS rows, round(sum(total_amount), 2) AS total
       FROM read_csv([${list}], hive_partitioning = true, header = true)`
  : `SELECT y, m, d, count(*) AS rows, round(sum(total_amount), 2) AS total
       FROM read_csv([${list}], hive_partitioning = true, header = true)
      GROUP BY ALL ORDER BY ALL`;
const rows = (await con.runAndReadAll(q)).getRowObjectsJson();
for (const r of rows)
  console.log(summary ? `rows=${r.rows} total=${Number(r.total).toFixed(2)}`
                      : `y=${r.y} m=${r.m} d=${r.d}: ${r.rows} rows, total_amount ${r.total}`);
