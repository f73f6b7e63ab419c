-- taskflow extension script, part 40: export / import of query results to
-- object storage as CSV or CSV.gz parts (format.c, export.c).  See docs/archive.md.

CREATE OR REPLACE FUNCTION taskflow.export(query text, server text, path text,
                                format text DEFAULT 'csv', options jsonb DEFAULT '{}')
    RETURNS TABLE (objects integer, rows bigint, bytes bigint)
    AS 'MODULE_PATHNAME', 'tf_export_sql' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION taskflow.export(text, text, text, text, jsonb) IS
    'write the result of a query as part-NNNNN.csv[.gz] objects + _manifest.json + _SUCCESS under path';

CREATE OR REPLACE FUNCTION taskflow.import(server text, path text, target regclass,
                                format text DEFAULT 'csv')
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'tf_import_sql' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION taskflow.import(text, text, regclass, text) IS
    'load every part under path (by _manifest.json if present), or the one object path names, into target through COPY FROM';
