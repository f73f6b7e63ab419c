-- the extension installs and its schema exists
SELECT extname, extversion FROM pg_extension WHERE extname = 'taskflow';
SELECT count(*) > 0 AS has_tables FROM pg_tables WHERE schemaname = 'taskflow';

-- Shared by the test files that follow (pg_regress runs them in order, in
-- this database): regress.try().
CREATE SCHEMA regress;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
-- try(sql): run a statement, return 'ok' or its error as
-- "SQLSTATE: message / DETAIL: ... / HINT: ..."
CREATE FUNCTION regress.try(cmd text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hin text;
BEGIN
    EXECUTE cmd;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg
           || CASE WHEN det <> '' THEN E'\nDETAIL: ' || det ELSE '' END
           || CASE WHEN hin <> '' THEN E'\nHINT: ' || hin ELSE '' END;
END
$$;
