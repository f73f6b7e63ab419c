-- taskflow extension script, part 97: helpers of the dispatch/definition
-- fast paths (replayable).  Owner: dispatch (issue 11).  See
-- docs/performance.md.

-- Did the current transaction (or one of its subtransactions) write the row
-- version with this xmin?  Then it holds the row's lock already (C,
-- define_fast.c).  The definition API locks a flow and bumps updated_at
-- once per transaction with it, not once per node and edge.
CREATE OR REPLACE FUNCTION taskflow._row_is_mine(xmin xid) RETURNS boolean
LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'tf_row_is_mine';
