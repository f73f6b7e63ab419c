-- taskflow extension script, part 94: the definition history (replayable).
-- Owner: defhist.  Catalog: part 94_defhist.once.sql; the trigger's C half:
-- src/defhist.c.  See docs/operations.md ("Definition history").
--
-- Every change to a flow (its settings), node, edge or variable — through
-- the API or through direct DML the catalog guard allows — is recorded by
-- the AFTER ROW triggers *_defhist below: one definition_changes row with
-- the object's image before and after, who (session_user and the current
-- user) and when.  The changes one transaction makes to one flow share one
-- version: the first change of a transaction to a flow adds a flow_versions
-- row (version + 1), the later ones reuse it.  Images hold what users
-- define: engine-owned columns (ids, created_at, updated_at, the
-- scheduler's and auto-suspend's columns, the parsed variable columns) are
-- left out, and an UPDATE that changes only those records nothing (the
-- triggers' WHEN clauses and _defhist_row keep the same lists of columns).  A run records the
-- version it was created from (runs.flow_version, set by _create_run).
-- A dropped flow's history is deleted with it, like its runs; history is
-- otherwise kept (taskflow.history_retention applies to runs only).
--
-- Reading: flow_versions(flow), flow_definition(flow, version),
-- flow_diff(flow, from_version, to_version), SECURITY INVOKER under row
-- level security (a stranger sees no history and gets "does not exist").

CREATE OR REPLACE FUNCTION taskflow._defhist_caller() RETURNS regrole
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'tf_defhist_caller';

CREATE OR REPLACE FUNCTION taskflow._defhist_trigger() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'tf_defhist_trigger';

-- The trigger body, called by taskflow._defhist_trigger() (C) as the
-- bootstrap superuser with the changing role in taskflow._defhist_caller().
CREATE OR REPLACE FUNCTION taskflow._defhist_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    kind  text;
    ro    jsonb;
    rn    jsonb;
    io    jsonb;
    inew  jsonb;
    ko    text;
    kn    text;
    fid   bigint;
    v     integer;
    vx    xid8;
    me    xid8;
    who   name;
    drop_keys text[];
BEGIN
    -- What users define of each kind: the row without these columns (keep in
    -- step with the WHEN clauses of the *_defhist_upd triggers below; a SQL
    -- helper would be planned anew in every transaction: this is inline)
    CASE TG_TABLE_NAME
    WHEN 'flows' THEN
        kind := 'flow';
        drop_keys := '{id,created_at,updated_at,scheduled_until,next_due,schedule_error,suspended_reason,resumed_at}';
    WHEN 'nodes' THEN
        kind := 'node';
        drop_keys := '{id,flow_id,created_at,updated_at}';
    WHEN 'edges' THEN
        kind := 'edge';
        drop_keys := '{flow_id}';
    ELSE
        kind := 'variable';
        drop_keys := '{flow_id,pattern,base,shift}';
    END CASE;
    IF TG_OP <> 'INSERT' THEN
        ro := to_jsonb(OLD);
        io := ro - drop_keys;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        rn := to_jsonb(NEW);
        inew := rn - drop_keys;
    END IF;
    IF io IS NOT DISTINCT FROM inew THEN
        RETURN NULL;
    END IF;
    CASE kind
    WHEN 'flow' THEN
        fid := (rn->>'id')::bigint;
        ko := 'flow';
        kn := 'flow';
    WHEN 'node' THEN
        fid := (coalesce(rn, ro)->>'flow_id')::bigint;
        ko := ro->>'id';
        kn := rn->>'id';
    WHEN 'edge' THEN
        fid := (coalesce(rn, ro)->>'flow_id')::bigint;
        ko := (ro->>'from_node') || '>' || (ro->>'to_node');
        kn := (rn->>'from_node') || '>' || (rn->>'to_node');
    ELSE
        fid := (coalesce(rn, ro)->>'flow_id')::bigint;
        ko := ro->>'name';
        kn := rn->>'name';
    END CASE;
    me := pg_current_xact_id();
    who := coalesce(pg_get_userbyid(taskflow._defhist_caller()::oid), current_user);
    SELECT x.version, x.xid INTO v, vx
      FROM taskflow.flow_versions x WHERE x.flow_id = fid ORDER BY x.version DESC LIMIT 1;
    IF vx IS DISTINCT FROM me THEN
        -- the first change of this transaction to the flow: a new version
        -- (the row lock serializes concurrent writers of one flow)
        PERFORM 1 FROM taskflow.flows f WHERE f.id = fid FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;        -- the flow is being dropped: its history goes with it
        END IF;
        SELECT x.version INTO v
          FROM taskflow.flow_versions x WHERE x.flow_id = fid ORDER BY x.version DESC LIMIT 1;
        v := coalesce(v, 0) + 1;
        INSERT INTO taskflow.flow_versions (flow_id, version, changed_at, session_role, changed_by, xid)
        VALUES (fid, v, now(), session_user, who, me);
    END IF;
    IF TG_OP = 'UPDATE' AND ko <> kn THEN
        -- a renamed variable, a moved edge: the old object goes, a new one comes
        INSERT INTO taskflow.definition_changes
               (flow_id, version, kind, op, object_key, old, new, session_role, changed_by)
        VALUES (fid, v, kind, 'delete', ko, io, NULL, session_user, who),
               (fid, v, kind, 'insert', kn, NULL, inew, session_user, who);
    ELSE
        INSERT INTO taskflow.definition_changes
               (flow_id, version, kind, op, object_key, old, new, session_role, changed_by)
        VALUES (fid, v, kind, lower(TG_OP), coalesce(kn, ko), io, inew, session_user, who);
    END IF;
    RETURN NULL;
END
$$;

-- (a flow's DELETE is not recorded: its history is deleted with it)
CREATE OR REPLACE TRIGGER flows_defhist AFTER INSERT ON taskflow.flows
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER flows_defhist_upd AFTER UPDATE ON taskflow.flows
    FOR EACH ROW
    WHEN ((pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) '{id,created_at,updated_at,scheduled_until,next_due,schedule_error,suspended_reason,resumed_at}'::pg_catalog.text[])
          IS DISTINCT FROM
          (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) '{id,created_at,updated_at,scheduled_until,next_due,schedule_error,suspended_reason,resumed_at}'::pg_catalog.text[]))
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER nodes_defhist AFTER INSERT OR DELETE ON taskflow.nodes
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER nodes_defhist_upd AFTER UPDATE ON taskflow.nodes
    FOR EACH ROW
    WHEN ((pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) '{updated_at}'::pg_catalog.text[])
          IS DISTINCT FROM (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) '{updated_at}'::pg_catalog.text[]))
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER edges_defhist AFTER INSERT OR DELETE ON taskflow.edges
    FOR EACH ROW WHEN (NOT taskflow._define_internal())
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER edges_defhist_upd AFTER UPDATE ON taskflow.edges
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER variables_defhist AFTER INSERT OR DELETE ON taskflow.variables
    FOR EACH ROW EXECUTE FUNCTION taskflow._defhist_trigger();
CREATE OR REPLACE TRIGGER variables_defhist_upd AFTER UPDATE ON taskflow.variables
    FOR EACH ROW
    WHEN ((OLD.name, OLD.definition, OLD.is_constant) IS DISTINCT FROM (NEW.name, NEW.definition, NEW.is_constant)
          OR (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.-) '{pattern,base,shift}'::pg_catalog.text[])
             IS DISTINCT FROM (pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.-) '{pattern,base,shift}'::pg_catalog.text[]))
    EXECUTE FUNCTION taskflow._defhist_trigger();

REVOKE ALL ON FUNCTION taskflow._defhist_caller(), taskflow._defhist_trigger(),
                       taskflow._defhist_row() FROM PUBLIC;

------------------------------------------------------------------------------
-- reading the history
------------------------------------------------------------------------------

-- The flow's current version (0: no history, e.g. nothing recorded yet).
CREATE OR REPLACE FUNCTION taskflow._defhist_current(fid bigint) RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(max(v.version), 0) FROM taskflow.flow_versions v WHERE v.flow_id = fid
$$;

-- Every object of a flow as it was at version ver: kind, key, name, image.
-- Edges are named "from -> to" by their nodes' names at that version.
CREATE OR REPLACE FUNCTION taskflow._defhist_state(fid bigint, ver integer)
RETURNS TABLE (kind text, object_key text, object text, image jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    WITH last AS (
        SELECT DISTINCT ON (c.kind, c.object_key) c.kind, c.object_key, c.new
          FROM taskflow.definition_changes c
         WHERE c.flow_id = fid AND c.version <= ver
         ORDER BY c.kind, c.object_key, c.version DESC, c.id DESC
    ), live AS (
        SELECT * FROM last WHERE new IS NOT NULL
    )
    SELECT l.kind, l.object_key,
           CASE l.kind WHEN 'edge' THEN e.src || ' -> ' || e.dst ELSE l.new->>'name' END,
           CASE l.kind WHEN 'edge'
                THEN (l.new - '{from_node,to_node}'::text[]) || jsonb_build_object('from', e.src, 'to', e.dst)
                ELSE l.new END
      FROM live l
      LEFT JOIN LATERAL (
          SELECT coalesce((SELECT a.new->>'name' FROM live a
                            WHERE a.kind = 'node' AND a.object_key = l.new->>'from_node'),
                          '#' || (l.new->>'from_node')) AS src,
                 coalesce((SELECT b.new->>'name' FROM live b
                            WHERE b.kind = 'node' AND b.object_key = l.new->>'to_node'),
                          '#' || (l.new->>'to_node')) AS dst
           WHERE l.kind = 'edge') e ON true
$$;

-- a version of flow f, checked (NULL: the current one)
CREATE OR REPLACE FUNCTION taskflow._defhist_version(f taskflow.flows, ver integer, what text,
                                                     zero_ok boolean)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cur    integer := taskflow._defhist_current(f.id);
    lowest integer := CASE WHEN zero_ok THEN 0 ELSE 1 END;
BEGIN
    IF ver IS NULL THEN
        RETURN cur;
    END IF;
    IF ver > cur OR ver < lowest THEN
        RAISE EXCEPTION '% % of flow "%" does not exist', what, ver, f.name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('Flow "%s" has versions 1 to %s.', f.name, cur),
                  HINT = CASE WHEN zero_ok THEN 'Version 0 is the empty flow; see taskflow.flow_versions().'
                              ELSE 'See taskflow.flow_versions().' END;
    END IF;
    RETURN ver;
END
$$;

-- An edge's 'from_id>to_id' as "from -> to", by the nodes' last names up to
-- version ver.
CREATE OR REPLACE FUNCTION taskflow._defhist_edge_name(fid bigint, edge_key text, ver integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(coalesce((SELECT coalesce(c.new->>'name', c.old->>'name')
                                  FROM taskflow.definition_changes c
                                 WHERE c.flow_id = fid AND c.kind = 'node' AND c.object_key = k.id
                                   AND c.version <= ver
                                 ORDER BY c.version DESC, c.id DESC LIMIT 1),
                               '#' || k.id), ' -> ' ORDER BY k.n)
      FROM unnest(string_to_array(edge_key, '>')) WITH ORDINALITY AS k(id, n)
$$;

-- One row per version of a flow: when, who, and what changed.
CREATE OR REPLACE FUNCTION taskflow.flow_versions(flow text)
RETURNS TABLE (version integer, changed_at timestamptz, session_role name, changed_by name,
               changes bigint, summary text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.version, v.changed_at, v.session_role, v.changed_by,
           (SELECT count(*) FROM taskflow.definition_changes c
             WHERE c.flow_id = v.flow_id AND c.version = v.version),
           (SELECT string_agg(format('%s %s %s',
                                     CASE c.op WHEN 'insert' THEN 'added' WHEN 'delete' THEN 'removed'
                                               ELSE 'changed' END,
                                     c.kind,
                                     CASE c.kind WHEN 'edge' THEN taskflow._defhist_edge_name(c.flow_id, c.object_key, c.version)
                                                 ELSE coalesce(c.new->>'name', c.old->>'name') END),
                              ', ' ORDER BY c.id)
              FROM taskflow.definition_changes c
             WHERE c.flow_id = v.flow_id AND c.version = v.version)
      FROM taskflow.flow_versions v
     WHERE v.flow_id = (taskflow._flow(flow)).id
     ORDER BY v.version
$$;

-- The whole definition of a flow at a version (default: the current one) as
-- jsonb: {"version", "flow": settings, "nodes": {name: ...},
-- "edges": [{"from", "to"}], "variables": {name: ...}}.
CREATE OR REPLACE FUNCTION taskflow.flow_definition(flow text, version integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f taskflow.flows := taskflow._flow(flow);
    v integer := taskflow._defhist_version(f, version, 'version', false);
BEGIN
    RETURN (
        WITH s AS (SELECT * FROM taskflow._defhist_state(f.id, v))
        SELECT jsonb_build_object(
            'version', v,
            'flow', (SELECT s.image FROM s WHERE s.kind = 'flow'),
            'nodes', coalesce((SELECT jsonb_object_agg(s.object, s.image - 'name' ORDER BY s.object)
                                 FROM s WHERE s.kind = 'node'), '{}'),
            'edges', coalesce((SELECT jsonb_agg(s.image ORDER BY s.object)
                                 FROM s WHERE s.kind = 'edge'), '[]'),
            'variables', coalesce((SELECT jsonb_object_agg(s.object, s.image - 'name' ORDER BY s.object)
                                     FROM s WHERE s.kind = 'variable'), '{}')));
END
$$;

-- The differences between two versions of a flow (default to_version: the
-- current one; from_version 0 is the empty flow), one row per added or
-- removed object and per changed field of a changed object.
CREATE OR REPLACE FUNCTION taskflow.flow_diff(flow text, from_version integer,
                                              to_version integer DEFAULT NULL)
RETURNS TABLE (kind text, object text, change text, field text, old_value jsonb, new_value jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    f  taskflow.flows := taskflow._flow(flow);
    v1 integer;
    v2 integer;
BEGIN
    IF from_version IS NULL THEN
        RAISE EXCEPTION 'from_version must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'See taskflow.flow_versions(); 0 is the empty flow.';
    END IF;
    v1 := taskflow._defhist_version(f, from_version, 'from_version', true);
    v2 := taskflow._defhist_version(f, to_version, 'to_version', true);
    RETURN QUERY
    SELECT d.* FROM (
    WITH a AS (SELECT * FROM taskflow._defhist_state(f.id, v1)),
         b AS (SELECT * FROM taskflow._defhist_state(f.id, v2)),
         j AS (SELECT coalesce(b.kind, a.kind) AS kind, coalesce(b.object, a.object) AS object,
                      a.image AS o, b.image AS n
                 FROM a FULL JOIN b ON a.kind = b.kind AND a.object_key = b.object_key)
    SELECT j.kind, j.object, 'added', NULL::text, NULL::jsonb, j.n FROM j WHERE j.o IS NULL
    UNION ALL
    SELECT j.kind, j.object, 'removed', NULL, j.o, NULL FROM j WHERE j.n IS NULL
    UNION ALL
    SELECT j.kind, j.object, 'changed', k.key, j.o->k.key, j.n->k.key
      FROM j, LATERAL (SELECT x FROM jsonb_object_keys(j.o) x
                       UNION SELECT y FROM jsonb_object_keys(j.n) y) AS k(key)
     WHERE j.o IS NOT NULL AND j.n IS NOT NULL AND (j.o->k.key) IS DISTINCT FROM (j.n->k.key)
    ) AS d (kind, object, change, field, old_value, new_value)
    ORDER BY array_position(ARRAY['flow', 'variable', 'node', 'edge'], d.kind), d.object,
             d.change, d.field;
END
$$;
