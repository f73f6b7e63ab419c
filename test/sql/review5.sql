-- Review of 1.7 (docs/security.md): what a plain role reaches of what 1.7
-- added, and DDL that PostgreSQL runs with a lock of a table it names taken
-- before its privilege check (src/lock_guard.c refuses it for taskflow's
-- catalog: a request waiting for that lock holds up every later one of the
-- table, the scheduler's too; test/t/087_review5_ddl_locks.pl shows that).
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_r5_mallory;
CREATE SCHEMA regress_r5_mal AUTHORIZATION regress_r5_mallory;

-- 1. taskflow.deferred and the functions of 1.7: no plain role reads, writes
-- or calls them
SELECT p, has_table_privilege('regress_r5_mallory', 'taskflow.deferred', p) AS granted
  FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p;
SELECT f, has_function_privilege('regress_r5_mallory', f, 'EXECUTE') AS granted
  FROM unnest(ARRAY['taskflow._defer(text,bigint,bigint,bigint,text,timestamptz)',
                    'taskflow._deferred_pass()',
                    'taskflow._lock_parents(bigint,boolean,bigint)',
                    'taskflow._sched_due_set(timestamptz,integer)',
                    'taskflow._ahead_taken()',
                    'taskflow._xact_lock(integer,integer)',
                    'taskflow._node_owner(bigint)']::regprocedure[]) f;
-- every function of the extension not in C pins its search_path, but
-- _is_member (inlined into the policies, names qualified); the one SECURITY
-- DEFINER function is a trigger's (it notes running runs in sched_queue,
-- which no role may write)
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'taskflow'::regnamespace AND l.lanname <> 'c'
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);
SELECT oid::regprocedure AS security_definer, prorettype::regtype
  FROM pg_proc WHERE pronamespace = 'taskflow'::regnamespace AND prosecdef;

-- 2. DDL that would lock a catalog table before PostgreSQL checks privileges
SET ROLE regress_r5_mallory;
CREATE TABLE regress_r5_mal.parted (id bigint) PARTITION BY LIST (id);
CREATE TABLE regress_r5_mal.plain (id bigint);
CREATE INDEX parted_id_idx ON regress_r5_mal.parted (id);
CREATE TABLE regress_r5_mal.p0 PARTITION OF taskflow.flows FOR VALUES IN (1);
SELECT s, left(regress.try(s), 48) AS result
  FROM unnest(ARRAY[
    'CREATE TABLE regress_r5_mal.p1 PARTITION OF taskflow.runs FOR VALUES IN (1)',
    'CREATE FOREIGN TABLE regress_r5_mal.p1 PARTITION OF taskflow.runs FOR VALUES IN (1) SERVER x',
    'CREATE TABLE regress_r5_mal.p2 (x bigint REFERENCES taskflow.flows (id))',
    'CREATE TABLE regress_r5_mal.p3 (x bigint, FOREIGN KEY (x) REFERENCES taskflow.nodes (id))',
    'ALTER TABLE regress_r5_mal.plain ADD FOREIGN KEY (id) REFERENCES taskflow.flows (id)',
    'ALTER TABLE regress_r5_mal.plain ADD COLUMN y bigint REFERENCES taskflow.edges (flow_id)',
    'ALTER TABLE regress_r5_mal.parted ATTACH PARTITION taskflow.node_runs FOR VALUES IN (1)',
    'ALTER TABLE regress_r5_mal.parted DETACH PARTITION taskflow.runs',
    'ALTER TABLE regress_r5_mal.parted DETACH PARTITION taskflow.runs FINALIZE',
    'ALTER INDEX regress_r5_mal.parted_id_idx ATTACH PARTITION taskflow.flows_pkey',
    'CREATE TRIGGER t AFTER INSERT ON taskflow.variables FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()',
    'CREATE RULE r AS ON INSERT TO taskflow.flows DO NOTHING',
    'CREATE RULE r AS ON INSERT TO taskflow.deferred DO NOTHING']) s;
-- what PostgreSQL checks before locking stays as it was
SELECT s, regress.try(s) AS result
  FROM unnest(ARRAY[
    'CREATE TABLE regress_r5_mal.p4 () INHERITS (taskflow.flows)',
    'ALTER TABLE regress_r5_mal.plain INHERIT taskflow.flows',
    'LOCK TABLE ONLY taskflow.flows IN SHARE MODE',
    'TRUNCATE taskflow.edges',
    'CREATE INDEX ON taskflow.flows (name)',
    'ALTER TABLE taskflow.flows DISABLE TRIGGER flows_bypassrls',
    'DROP TRIGGER flows_bypassrls ON taskflow.flows',
    'DROP POLICY flows_member ON taskflow.flows',
    'CREATE POLICY p ON taskflow.flows USING (true)']) s;
-- the role's own tables, and a temporary table named like a catalog table
SELECT regress.try('CREATE TABLE regress_r5_mal.own (id bigint PRIMARY KEY)') AS own,
       regress.try('CREATE TABLE regress_r5_mal.ref (x bigint REFERENCES regress_r5_mal.own (id))') AS ref,
       regress.try('CREATE TABLE regress_r5_mal.p5 PARTITION OF regress_r5_mal.parted FOR VALUES IN (5)') AS part,
       regress.try('CREATE TABLE regress_r5_mal.l (LIKE taskflow.flows)') AS "like";
CREATE TEMP TABLE flows (id bigint);
SET search_path = pg_temp, public;
SELECT regress.try('CREATE TRIGGER t AFTER INSERT ON flows FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()') AS temp_trigger;
RESET search_path;
DROP TABLE pg_temp.flows;
RESET ROLE;
-- a superuser may
CREATE TABLE regress_r5_mal.su_ref (x bigint REFERENCES taskflow.flows (id));
DROP TABLE regress_r5_mal.su_ref;

DROP SCHEMA regress_r5_mal CASCADE;
DROP ROLE regress_r5_mallory;
