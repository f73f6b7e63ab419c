-- taskflow extension script, part 99: hardening of the 1.4.0 review
-- (replayable).  Owner: review.  See docs/security.md.

-- The owner of the flow of a node run (NULL: no such node run).  A node
-- worker serves one owner: after taskflow._node_begin has marked a node run
-- running and read the node's body, it checks in the same transaction, with
-- this newer snapshot, that the flow still belongs to that owner, and rolls
-- the begin back otherwise (the scheduler then hands the node run to a
-- worker of the new owner).  A body changed by a member of a new owner can
-- only have been read if the owner change committed before it, so this
-- later look sees the new owner.  No row lock: a user holding the flow's
-- row (an open transaction) cannot make workers wait.
-- (PL/pgSQL, plan cached per worker: as LANGUAGE sql with SET it was
-- planned again at every node begin, 0.34 ms; issue 11)
CREATE OR REPLACE FUNCTION taskflow._node_owner(p_node_run_id bigint) RETURNS oid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o oid;
BEGIN
    SELECT f.owner::oid INTO o
      FROM taskflow.node_runs nr
      JOIN taskflow.runs r ON r.id = nr.run_id
      JOIN taskflow.flows f ON f.id = r.flow_id
     WHERE nr.id = p_node_run_id;
    RETURN o;
END
$$;
REVOKE ALL ON FUNCTION taskflow._node_owner(bigint) FROM PUBLIC;
