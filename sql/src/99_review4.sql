-- taskflow extension script, part 99: hardening of the 1.7.0 review of what
-- 1.6 added (replayable).  Owner: review4.  See docs/security.md ("Review
-- of 1.6").

-- The engine's own transaction locks (src/lock_guard.c), in a key space no
-- role's pg_advisory_lock reaches: part 93's event firing and trigger-link
-- changes used pg_advisory_xact_lock, whose keys any role could hold (idle,
-- in a session lock) and so stop the scheduler's tick of its database.
CREATE OR REPLACE FUNCTION taskflow._xact_lock(key1 integer, key2 integer) RETURNS void
LANGUAGE C STRICT VOLATILE AS 'MODULE_PATHNAME', 'tf_xact_lock';
REVOKE ALL ON FUNCTION taskflow._xact_lock(integer, integer) FROM PUBLIC;

-- A role with BYPASSRLS that is not a superuser skips the policies that keep
-- every role to the flows of the owners it is a member of: it could add or
-- change a node (or a variable its body renders, an edge) of a superuser's
-- flow, and the node then ran as that superuser.  These triggers check
-- membership of the row's owner for such a role, as the policies would;
-- for every other role their WHEN is false (src/bypassrls.c).  Reading stays
-- what BYPASSRLS grants.
CREATE OR REPLACE FUNCTION taskflow._rls_bypassed() RETURNS boolean
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_rls_bypassed';

CREATE OR REPLACE FUNCTION taskflow._bypassrls_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fid bigint;
    fname text;
    o regrole;
BEGIN
    FOR i IN 1..2 LOOP
        CONTINUE WHEN (i = 1 AND TG_OP = 'INSERT') OR (i = 2 AND TG_OP = 'DELETE');
        IF TG_TABLE_NAME = 'flows' THEN
            IF i = 1 THEN fname := OLD.name; o := OLD.owner;
            ELSE fname := NEW.name; o := NEW.owner; END IF;
        ELSE
            fid := CASE WHEN i = 1 THEN OLD.flow_id ELSE NEW.flow_id END;
            SELECT f.name, f.owner INTO fname, o FROM taskflow.flows f WHERE f.id = fid;
        END IF;
        IF o IS NOT NULL AND NOT taskflow._is_member(o) THEN
            RAISE EXCEPTION 'permission denied to change flow "%" of owner %', fname, o
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('%s is not a member of %s; BYPASSRLS lets a role read '
                                      'every flow, not change it.', current_user, o),
                      HINT = 'Change the flows of the owners your role is a member of.';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE OR REPLACE TRIGGER flows_bypassrls BEFORE INSERT OR UPDATE OR DELETE ON taskflow.flows
    FOR EACH ROW WHEN (taskflow._rls_bypassed()) EXECUTE FUNCTION taskflow._bypassrls_guard();
CREATE OR REPLACE TRIGGER nodes_bypassrls BEFORE INSERT OR UPDATE OR DELETE ON taskflow.nodes
    FOR EACH ROW WHEN (taskflow._rls_bypassed()) EXECUTE FUNCTION taskflow._bypassrls_guard();
CREATE OR REPLACE TRIGGER edges_bypassrls BEFORE INSERT OR UPDATE OR DELETE ON taskflow.edges
    FOR EACH ROW WHEN (taskflow._rls_bypassed()) EXECUTE FUNCTION taskflow._bypassrls_guard();
CREATE OR REPLACE TRIGGER variables_bypassrls BEFORE INSERT OR UPDATE OR DELETE ON taskflow.variables
    FOR EACH ROW WHEN (taskflow._rls_bypassed()) EXECUTE FUNCTION taskflow._bypassrls_guard();
