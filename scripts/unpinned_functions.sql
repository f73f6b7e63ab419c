-- scripts/unpinned_functions.sql: every function of schema taskflow whose
-- proconfig does not pin search_path = pg_catalog, pg_temp, with its language,
-- SECURITY DEFINER and whether PUBLIC may execute it.  Review each one:
-- a C function must not look names up under the caller's search_path in SPI
-- it runs with other rights; a SQL/PL/pgSQL one must be taskflow._is_member
-- (inlined into the policies, every name qualified) — see docs/security.md.
--   psql -d <db with taskflow> -f scripts/unpinned_functions.sql
SELECT p.oid::regprocedure AS function,
       l.lanname AS language,
       p.prosecdef AS security_definer,
       pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       CASE WHEN l.lanname = 'c' THEN p.prosrc END AS c_symbol
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'taskflow'::regnamespace
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
 ORDER BY l.lanname <> 'c', 1;
