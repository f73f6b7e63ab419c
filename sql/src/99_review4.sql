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

-- The parent rows of what the scheduler's transaction inserts for a user's
-- flow outside its own flow lock -- an event-triggered run (its flow and
-- nodes), an alert's delivery (the alert and the flow) -- locked FOR SHARE
-- SKIP LOCKED: false, at once, when any of them has an uncommitted change.
-- The foreign keys' FOR KEY SHARE waited for an open transaction of the
-- owner that dropped the flow, a node or the alert, and the scheduler's
-- tick with it: every owner's runs of the database.  Not FOR KEY SHARE SKIP
-- LOCKED: PostgreSQL waits regardless for a newer version of a row
-- (drop_flow updates the flow's row, then deletes it).  The caller skips
-- the event or alert with a WARNING.  Only in the scheduler: elsewhere (a
-- run operation through the gate) true at once, the foreign keys wait as
-- before -- for the caller's own operation.
CREATE OR REPLACE FUNCTION taskflow._in_scheduler() RETURNS boolean
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_in_scheduler';

CREATE OR REPLACE FUNCTION taskflow._lock_parents(p_flow bigint, p_nodes boolean, p_alert bigint)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT taskflow._in_scheduler() THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM taskflow.flows x WHERE x.id = p_flow FOR SHARE SKIP LOCKED) THEN
        RETURN false;
    END IF;
    IF p_nodes AND (SELECT count(*) FROM taskflow.nodes n WHERE n.flow_id = p_flow)
                   > (SELECT count(*) FROM (SELECT 1 FROM taskflow.nodes n WHERE n.flow_id = p_flow
                                             FOR SHARE SKIP LOCKED) l) THEN
        RETURN false;
    END IF;
    IF p_alert IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM taskflow.alerts x WHERE x.id = p_alert FOR SHARE SKIP LOCKED) THEN
        RETURN false;
    END IF;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION taskflow._lock_parents(bigint, boolean, bigint) FROM PUBLIC;
