-- the extension installs and its schema exists
SELECT extname, extversion FROM pg_extension WHERE extname = 'taskflow';
SELECT count(*) > 0 AS has_tables FROM pg_tables WHERE schemaname = 'taskflow';
