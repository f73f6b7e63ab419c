// node test/s3/duck_check.mjs <objects_dir> [workdir]
//
// Independent read-back of an archive with DuckDB (@duckdb/node-api, offline).
// <objects_dir> is either a directory of plain objects (a file:// storage
// server) or the local S3 server's on-disk store for a bucket (objects are
// stored there as <key>._S3rver_object).  Objects are mirrored under their
// real key names into [workdir] (default: a fresh temp dir), then read with
// read_csv(..., hive_partitioning = true).
//
// Prints one JSON object:
//   {"files": [...], "columns": [{"name","type"}...],
//    "groups": [{"y","m","d","rows","sum"}...], "rows": N, "sum": X}
// where sum is round(sum(<SUM_COL>), 2) (env SUM_COL, default total_amount)
// and y/m/d are the Hive partition columns DuckDB derived from the paths.
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const src = path.resolve(process.argv[2] || '.');
const work = process.argv[3] ? path.resolve(process.argv[3])
  : fs.mkdtempSync(path.join(os.tmpdir(), 'tf_duck_'));
const sumCol = process.env.SUM_COL || 'total_amount';
const SUFFIX = '._S3rver_object';

// mirror part-* objects under their key names
const files = [];
const walk = (dir, rel) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { walk(p, path.join(rel, e.name)); continue; }
    let name = e.name;
    if (name.endsWith(SUFFIX)) name = name.slice(0, -SUFFIX.length);
    else if (name.includes('._S3rver_')) continue;   // metadata, md5 files
    if (!name.startsWith('part-')) continue;
    const out = path.join(work, rel, name);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.copyFileSync(p, out);
    files.push(path.join(rel, name));
  }
};
walk(src, '');
files.sort();
if (files.length === 0) {
  console.log(JSON.stringify({ files, columns: [], groups: [], rows: 0, sum: null }));
  process.exit(0);
}

const inst = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
  extension_directory: path.join(work, '.duckdb_ext'),
});
const con = await inst.connect();
const q = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJson();
const src_sql = `read_csv('${work}/**/part-*.csv*', hive_partitioning = true, header = true,
                          hive_types = {'y': VARCHAR, 'm': VARCHAR, 'd': VARCHAR})`;

const columns = (await q(`DESCRIBE SELECT * FROM ${src_sql}`))
  .map((r) => ({ name: r.column_name, type: r.column_type }));
const groups = await q(`SELECT y, m, d, count(*)::BIGINT AS rows,
                               round(sum("${sumCol}"), 2)::DOUBLE AS sum
                          FROM ${src_sql} GROUP BY ALL ORDER BY ALL`);
const [tot] = await q(`SELECT count(*)::BIGINT AS rows, round(sum("${sumCol}"), 2)::DOUBLE AS sum
                         FROM ${src_sql}`);
console.log(JSON.stringify({
  files, columns,
  groups: groups.map((g) => ({ ...g, rows: Number(g.rows), sum: Number(g.sum) })),
  rows: Number(tot.rows), sum: Number(tot.sum),
}));
