-- taskflow 1.0.0 -> 1.1.0, copy node delta (twin of sql/src/80_copy.once.sql).

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
