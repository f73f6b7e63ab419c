-- Review of what 1.4 added, as an attacker (a plain role with the grants
-- every role has): docs/security.md, "Review of 1.4".
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_a14_alice;
CREATE ROLE regress_a14_mallory;
CREATE SCHEMA regress_a14_mal AUTHORIZATION regress_a14_mallory;

------------------------------------------------------------------------------
-- 1. The C create path (define_create.c: create_flow, add_node, apply_flow)
-- runs saved plans as the caller, one history statement as the bootstrap
-- superuser, and sets the flag that makes the catalog's per-row triggers
-- skip.  Under a search_path that puts the caller's own functions and
-- operators before pg_catalog, none of them runs (the plans are prepared
-- and run under a pinned search_path; every name is bound by OID).
------------------------------------------------------------------------------
SET ROLE regress_a14_mallory;
CREATE TABLE regress_a14_mal.fired (who name, what text, internal boolean);
GRANT INSERT ON regress_a14_mal.fired TO PUBLIC;
CREATE FUNCTION regress_a14_mal.note(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_a14_mal.fired VALUES (current_user, what, taskflow._define_internal());
END $$;
CREATE FUNCTION regress_a14_mal.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_a14_mal.note('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION regress_a14_mal.to_jsonb(anyelement) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_a14_mal.note('to_jsonb()'); RETURN pg_catalog.to_jsonb($1); END $$;
CREATE FUNCTION regress_a14_mal.pg_current_xact_id() RETURNS xid8 LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_a14_mal.note('pg_current_xact_id()'); RETURN pg_catalog.pg_current_xact_id(); END $$;
CREATE FUNCTION regress_a14_mal.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_a14_mal.note('=(text, text)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR regress_a14_mal.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_a14_mal.eq);
CREATE FUNCTION regress_a14_mal.minus(jsonb, text[]) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM regress_a14_mal.note('-(jsonb, text[])'); RETURN $1 OPERATOR(pg_catalog.-) $2; END $$;
CREATE OPERATOR regress_a14_mal.- (LEFTARG = jsonb, RIGHTARG = text[], FUNCTION = regress_a14_mal.minus);
SET search_path = regress_a14_mal, pg_catalog, public;
-- the traps are armed
SELECT 'a' = 'a' AS eq, '{"a": 1}'::jsonb - '{a}'::text[] AS minus, now() IS NOT NULL AS now;
SELECT string_agg(what, ', ' ORDER BY what) AS fired FROM regress_a14_mal.fired;
TRUNCATE regress_a14_mal.fired;

SELECT taskflow.create_flow('a14_m') > 0 AS created;
SELECT taskflow.add_node('a14_m', 'a', 'sql', 'SELECT 1') > 0 AS added;
SELECT taskflow.add_node('a14_m', 'b', 'sql', 'SELECT 2', after => '{a}') > 0 AS added;
SELECT taskflow.apply_flow('{"flow": {"name": "a14_apply", "schedule": "every 1 hour"},
  "nodes": {"x": {"kind": "sql", "body": "SELECT 1"},
            "y": {"kind": "sql", "body": "SELECT 2", "after": ["x"]}}}') AS version;
-- nothing of mallory's ran inside them
SELECT count(*) AS fired FROM regress_a14_mal.fired;
RESET search_path;
-- what they wrote: mallory's flows, their history as mallory
SELECT name, owner FROM taskflow.flows WHERE name LIKE 'a14%' ORDER BY name;
SELECT f.name, c.kind, c.op, c.changed_by, count(*)
  FROM taskflow.definition_changes c JOIN taskflow.flows f ON f.id = c.flow_id
 WHERE f.name LIKE 'a14%' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2;
RESET ROLE;

------------------------------------------------------------------------------
-- 2. The flag is set only around the C path's own INSERTs: it is off after
-- a call, after an error in the fast path (a duplicate name: the insert
-- fails with the flag set, the API path gives its error), and inside a
-- subtransaction that caught one; a direct INSERT then meets the guard.
------------------------------------------------------------------------------
SET ROLE regress_a14_mallory;
SELECT taskflow._define_internal() AS flag_after_calls;
SELECT regress.try($$ SELECT taskflow.create_flow('a14_m') $$) AS duplicate;
SELECT taskflow._define_internal() AS flag_after_error;
DO $$
BEGIN
    BEGIN
        PERFORM taskflow.apply_flow('{"flow": {"name": "a14_m"}, "nodes": {"z": {"kind": "sql", "body": "SELECT 1"}}}');
        PERFORM taskflow.create_flow('a14_m');
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'caught: %', SQLERRM;
    END;
    RAISE NOTICE 'flag after the caught error: %', taskflow._define_internal();
END $$;
-- a direct write is checked by the guard (an unknown kind)
SELECT regress.try($$ INSERT INTO taskflow.nodes (flow_id, name, kind)
                      SELECT id, 'direct', 'no_such_kind' FROM taskflow.flows WHERE name = 'a14_m' $$) AS direct;
RESET ROLE;

------------------------------------------------------------------------------
-- 3. The C path adds nodes to the caller's flows only: another owner's flow
-- "does not exist" (row level security on the lookup and the update), and
-- nothing was written to it.
------------------------------------------------------------------------------
SET ROLE regress_a14_alice;
SELECT taskflow.create_flow('a14_alice') > 0 AS created;
RESET ROLE;
SET ROLE regress_a14_mallory;
SELECT regress.try($$ SELECT taskflow.add_node('a14_alice', 'evil', 'sql', 'SELECT 1') $$) AS add_to_alice;
RESET ROLE;
SELECT count(*) AS alice_nodes FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id
 WHERE f.name = 'a14_alice';

------------------------------------------------------------------------------
-- 4. taskflow._wake_launcher() (have the cluster's launcher re-read
-- pg_database and look at this database again) was executable by every
-- role: a loop of it kept the launcher and the scheduler busy (one session:
-- 17,000 wakes/s, the launcher 16% and the scheduler 54% of a core).  Only
-- the install script calls it: revoked.  taskflow._wake() stays executable
-- (the triggers on a user's own catalog writes call it as that user, and
-- those writes wake the scheduler anyway): see docs/security.md.
------------------------------------------------------------------------------
SET ROLE regress_a14_mallory;
SELECT regress.try($$ SELECT taskflow._wake_launcher() $$) AS wake_launcher;
SELECT regress.try($$ SELECT taskflow._wake() $$) AS wake;
RESET ROLE;

-- clean up
SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'a14%' ORDER BY name;
DROP SCHEMA regress_a14_mal CASCADE;
DROP ROLE regress_a14_alice;
DROP ROLE regress_a14_mallory;
