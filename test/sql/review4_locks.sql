-- Review of 1.6 (docs/security.md): a role that is not a superuser cannot
-- LOCK taskflow's shared catalog tables in a mode that blocks other roles'
-- writes (every role holds table-level UPDATE or DELETE on flows, nodes,
-- edges and variables, which LOCK TABLE accepts; an idle transaction
-- holding such a lock stopped the database's scheduler and every owner).
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_r4_mallory;
CREATE SCHEMA regress_r4_mal AUTHORIZATION regress_r4_mallory;

SET ROLE regress_r4_mallory;
-- 1. named directly: refused before any lock is taken
BEGIN;
LOCK TABLE taskflow.flows IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
SELECT m, t, left(regress.try(format('LOCK TABLE taskflow.%I IN %s MODE', t, m)), 5) AS sqlstate
  FROM unnest(ARRAY['flows', 'nodes', 'edges', 'variables']) AS t,
       unnest(ARRAY['SHARE UPDATE EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE',
                    'ACCESS EXCLUSIVE']) AS m
 ORDER BY t, m;
-- the modes that do not block other roles' writes stay allowed
SELECT m, regress.try(format('LOCK TABLE taskflow.flows IN %s MODE', m)) AS result
  FROM unnest(ARRAY['ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE']) AS m ORDER BY m;
-- 2. through a view of the role's own (LOCK of a view locks what it reads)
-- (refused before any lock: the views are followed in pg_depend, a view of a
-- view too)
CREATE VIEW regress_r4_mal.v AS SELECT f.id FROM taskflow.flows f;
CREATE VIEW regress_r4_mal.vv AS SELECT v.id FROM regress_r4_mal.v v;
SELECT regress.try('LOCK TABLE regress_r4_mal.v IN ACCESS EXCLUSIVE MODE') AS via_view;
SELECT regress.try('LOCK TABLE regress_r4_mal.vv IN SHARE MODE') AS via_view_of_view;
-- and nothing is left held
SELECT count(*) AS strong_locks_left FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'relation'
   AND mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock');
-- a table of the role's own: as always
CREATE TABLE regress_r4_mal.mine (x int);
SELECT regress.try('LOCK TABLE regress_r4_mal.mine IN ACCESS EXCLUSIVE MODE') AS own_table;
RESET ROLE;

-- 3. a superuser may
BEGIN;
LOCK TABLE taskflow.flows IN ACCESS EXCLUSIVE MODE;
ROLLBACK;

-- 4. the engine takes no lock in the key space of pg_advisory_lock, which any
-- role can hold (the event triggers did: test/t/086_review4_locks.pl); its
-- own locks go through taskflow._xact_lock, which PUBLIC cannot execute
SELECT p.oid::regprocedure AS uses_sql_advisory_locks
  FROM pg_proc p
 WHERE p.pronamespace = 'taskflow'::regnamespace AND p.prosrc ~ 'pg_(try_)?advisory'
 ORDER BY 1::text;
SELECT has_function_privilege('public', 'taskflow._xact_lock(integer, integer)', 'EXECUTE')
       AS public_may_xact_lock;

DROP SCHEMA regress_r4_mal CASCADE;
DROP ROLE regress_r4_mallory;
