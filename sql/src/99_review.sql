-- taskflow extension script, part 99: hardening of the 1.4.0 review
-- (replayable).  Owner: review.  See docs/security.md.

-- The owner of the flow of a node run, with the flow's row locked FOR SHARE
-- until the caller's transaction ends (NULL: no such node run).  A node
-- worker serves one owner; before it marks a node run running and reads the
-- node's body (taskflow._node_begin, same transaction) it checks that the
-- flow still belongs to that owner.  The lock keeps an owner change (and
-- with it any change by the new owner's members: the definition API locks
-- the flow row) from committing in between, so a body is never run with the
-- identity of an owner the flow had before.
CREATE OR REPLACE FUNCTION taskflow._node_owner_lock(p_node_run_id bigint) RETURNS oid
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT f.owner::oid
      FROM taskflow.node_runs nr
      JOIN taskflow.runs r ON r.id = nr.run_id
      JOIN taskflow.flows f ON f.id = r.flow_id
     WHERE nr.id = p_node_run_id
       FOR SHARE OF f
$$;
REVOKE ALL ON FUNCTION taskflow._node_owner_lock(bigint) FROM PUBLIC;
