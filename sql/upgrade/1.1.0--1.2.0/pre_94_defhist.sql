-- taskflow 1.1.0 -> 1.2.0, catalog delta of part 94 (defhist): the twin of
-- sql/src/94_defhist.once.sql, then version 1 of every existing flow.
-- See docs/operations.md ("Definition history") and sql/src/94_defhist.sql.
--
-- Every change to a flow, node, edge or variable is one row of
-- definition_changes; the changes one transaction makes to one flow share a
-- version (flow_versions).  Written only by the trigger defhist (part 94,
-- through the C trigger taskflow._defhist_trigger, which records the
-- changing role and then writes as the bootstrap superuser): no user has
-- INSERT/UPDATE/DELETE on them.  Readable under row level security like the
-- other catalog tables.  A dropped flow's history goes with it (ON DELETE
-- CASCADE), like its runs.

CREATE TABLE taskflow.flow_versions (
    flow_id      bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version >= 1),
    changed_at   timestamptz NOT NULL DEFAULT now(),
    session_role name NOT NULL,            -- session_user of the changing transaction
    changed_by   name NOT NULL,            -- current_user at its first change
    xid          xid8 NOT NULL,            -- the changing transaction
    PRIMARY KEY (flow_id, version)
);

CREATE TABLE taskflow.definition_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id      bigint NOT NULL,
    version      integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('flow', 'node', 'edge', 'variable')),
    op           text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    -- the object: 'flow' for the flow, a node's id, an edge's 'from_id>to_id',
    -- a variable's name
    object_key   text NOT NULL,
    old          jsonb,                    -- the object before (NULL for insert)
    new          jsonb,                    -- the object after (NULL for delete)
    changed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    session_role name NOT NULL,            -- session_user
    changed_by   name NOT NULL,            -- current_user
    FOREIGN KEY (flow_id, version) REFERENCES taskflow.flow_versions (flow_id, version)
        ON DELETE CASCADE
);
CREATE INDEX ON taskflow.definition_changes (flow_id, version);

-- the definition version a run ran (NULL: created before 1.2.0)
ALTER TABLE taskflow.runs ADD COLUMN flow_version integer;

ALTER TABLE taskflow.flow_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.definition_changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY flow_versions_member ON taskflow.flow_versions FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY definition_changes_member ON taskflow.definition_changes FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
GRANT SELECT ON taskflow.flow_versions, taskflow.definition_changes TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('taskflow.flow_versions', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.definition_changes', '');
-- The identity sequences too: without them a restored database hands out ids
-- that the restored rows already have (a restored flow's history, and any
-- new flow, node or run, would collide).  (flows, nodes, runs, node_runs:
-- the same fix for the tables of part 00.)
SELECT pg_catalog.pg_extension_config_dump('taskflow.definition_changes_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.flows_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.nodes_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.node_runs_id_seq', '');

-- (update only) flows defined before 1.2.0 start with version 1: their
-- definition as it is now, recorded as added by the role running the update
INSERT INTO taskflow.flow_versions (flow_id, version, changed_at, session_role, changed_by, xid)
SELECT f.id, 1, now(), session_user, current_user, pg_current_xact_id() FROM taskflow.flows f;
INSERT INTO taskflow.definition_changes (flow_id, version, kind, op, object_key, new, session_role, changed_by)
SELECT f.id, 1, 'flow', 'insert', 'flow',
       to_jsonb(f) - '{id,created_at,updated_at,scheduled_until,next_due,schedule_error,suspended_reason,resumed_at}'::text[],
       session_user, current_user
  FROM taskflow.flows f
UNION ALL
SELECT n.flow_id, 1, 'node', 'insert', n.id::text,
       to_jsonb(n) - '{id,flow_id,created_at,updated_at}'::text[], session_user, current_user
  FROM taskflow.nodes n
UNION ALL
SELECT e.flow_id, 1, 'edge', 'insert', e.from_node || '>' || e.to_node,
       to_jsonb(e) - '{flow_id}'::text[], session_user, current_user
  FROM taskflow.edges e
UNION ALL
SELECT v.flow_id, 1, 'variable', 'insert', v.name,
       to_jsonb(v) - '{flow_id,pattern,base,shift}'::text[], session_user, current_user
  FROM taskflow.variables v;
