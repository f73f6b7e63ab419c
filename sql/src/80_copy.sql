------------------------------------------------------------------------------
-- copy nodes (src/copy.c): book-keeping of the watermark of incremental copy
-- nodes, called by the node worker as the bootstrap superuser.
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION taskflow._copy_mark(p_node_id bigint)
RETURNS TABLE (mark text, mark_type text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT w.mark, w.mark_type FROM taskflow.copy_watermarks w WHERE w.node_id = p_node_id
$$;

CREATE OR REPLACE FUNCTION taskflow._copy_set_mark(p_node_id bigint, p_mark text, p_mark_type text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO taskflow.copy_watermarks AS w (node_id, mark, mark_type)
    VALUES (p_node_id, p_mark, p_mark_type)
    ON CONFLICT (node_id) DO UPDATE
       SET mark = EXCLUDED.mark, mark_type = EXCLUDED.mark_type, updated_at = pg_catalog.now()
$$;

REVOKE ALL ON FUNCTION
    taskflow._copy_mark(bigint),
    taskflow._copy_set_mark(bigint, text, text)
FROM PUBLIC;
