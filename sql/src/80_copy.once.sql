-- copy nodes (src/copy.c): the high-water mark of each incremental copy
-- node, written by the node worker in the transaction that records the
-- node's success (so it advances only with a committed load).  Owners see
-- the marks of their nodes and may DELETE one (the next run copies all
-- rows again); only the worker writes them.
CREATE TABLE taskflow.copy_watermarks (
    node_id    bigint PRIMARY KEY REFERENCES taskflow.nodes (id) ON DELETE CASCADE,
    mark       text NOT NULL,
    mark_type  text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER TABLE taskflow.copy_watermarks ENABLE ROW LEVEL SECURITY;
CREATE POLICY copy_watermarks_member ON taskflow.copy_watermarks
    USING (EXISTS (SELECT 1 FROM taskflow.nodes n WHERE n.id = node_id));
REVOKE ALL ON taskflow.copy_watermarks FROM PUBLIC;
GRANT SELECT, DELETE ON taskflow.copy_watermarks TO PUBLIC;
