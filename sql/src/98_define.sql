-- taskflow extension script, part 98: the declarative definition API
-- (replayable).  Owner: define (issue 11).  See docs/reference.md
-- ("apply_flow") and docs/performance.md ("Defining flows").
--
-- taskflow.apply_flow(definition jsonb, name text DEFAULT NULL) defines a
-- whole flow in one call from the shape taskflow.flow_definition() returns
-- ({"flow": settings, "nodes": {name: ...}, "edges": [{"from", "to",
-- "branch"}], "variables": {name: ...}}; "version" is ignored; a node may
-- also list its upstream nodes in "after").  It creates the flow if it does
-- not exist, and otherwise changes only what differs: an identical
-- definition changes nothing and records no new version.
--
-- taskflow.apply_flow is C (src/define_create.c): a new flow of a plain
-- definition (no variables, ${...}, archive/branch nodes, finalizers,
-- labelled edges, owner/start/end dates) is created there directly, checked
-- once with the API's checks, inserted as the caller (privileges and row
-- level security apply), with the same rows, history and wake as the API
-- path gives.  Everything else, and any definition it finds wrong (its work
-- is rolled back first), goes to taskflow._apply_flow_api below.
--
-- _apply_flow_api makes every change through the public definition API
-- (create_flow, alter_flow, add_node, alter_node, drop_node, add_edge,
-- drop_edge, set_variable, drop_variable): the same validation, errors,
-- permissions, row level security, ownership rules and catalog guard;
-- nothing is bypassed.  One statement: an error undoes everything it did.

-- Check one JSON object of a definition: an object (or NULL), only the
-- allowed keys, each value of its JSON type (or null).  22023 otherwise.
CREATE OR REPLACE FUNCTION taskflow._apply_check_object(obj jsonb, keys text[], types text[], what text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    i integer;
    t text;
BEGIN
    IF obj IS NULL OR jsonb_typeof(obj) = 'null' THEN
        RETURN '{}';
    END IF;
    IF jsonb_typeof(obj) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object, not %', what, jsonb_typeof(obj)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'taskflow.flow_definition() shows the shape apply_flow takes.';
    END IF;
    FOR k IN SELECT jsonb_object_keys(obj) LOOP
        i := array_position(keys, k);
        IF i IS NULL THEN
            RAISE EXCEPTION 'unknown key "%" in %', k, what
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Keys of %s: %s.', what, array_to_string(keys, ', '));
        END IF;
        t := jsonb_typeof(obj->k);
        IF t <> 'null' AND t <> types[i] THEN
            RAISE EXCEPTION 'key "%" of % must be a JSON %, not %', k, what, types[i], t
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'taskflow.flow_definition() shows the shape apply_flow takes.';
        END IF;
    END LOOP;
    RETURN obj;
END
$$;

CREATE OR REPLACE FUNCTION taskflow._apply_flow_api(definition jsonb, name text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    fd      jsonb;          -- flow settings as given
    nd      jsonb;          -- nodes as given
    vd      jsonb;          -- variables as given
    te      jsonb := '{}';  -- target edges: {"from>to": branch}
    ce      jsonb := '{}';  -- current edges, the same
    cn      jsonb := '{}';  -- current nodes: {name: image}
    cv      jsonb := '{}';  -- current variables: {name: image}
    cur     jsonb;
    fname   text;
    f       taskflow.flows;
    fid     bigint;
    what    text := 'flow settings';
    k       text;
    v       jsonb;
    e       jsonb;
    n       jsonb;
    ups     text[];
    lbl     jsonb;
    pending text[];
    added   text[] := '{}';
    progress boolean;
    created  boolean := false;  -- a new flow: nothing to compare, change or drop
    ekey    text;
    -- alter_flow arguments (NULL: unchanged)
    a_sched text; a_tz text; a_desc text; a_catchup boolean; a_mar integer;
    a_enabled boolean; a_start timestamptz; a_end timestamptz; a_owner regrole;
    a_saf integer; a_prio integer; changed boolean := false;
    e_state  text;
    e_msg    text;
    e_detail text;
    e_hint   text;
BEGIN
    ------------------------------------------------------------------
    -- the shape
    ------------------------------------------------------------------
    what := 'the definition';
    IF _apply_flow_api.definition IS NULL THEN
        RAISE EXCEPTION 'definition must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass a definition as taskflow.flow_definition() returns it.';
    END IF;
    PERFORM taskflow._apply_check_object(_apply_flow_api.definition,
        '{version,flow,nodes,edges,variables}', '{number,object,object,array,object}', 'the definition');
    fd := taskflow._apply_check_object(_apply_flow_api.definition->'flow',
        '{name,owner,schedule,timezone,description,enabled,catchup,max_active_runs,start_date,end_date,suspend_after_failures,priority}',
        '{string,string,string,string,string,boolean,boolean,number,string,string,number,number}',
        'the flow settings ("flow")');
    fname := coalesce(_apply_flow_api.name, fd->>'name');
    IF fname IS NULL THEN
        RAISE EXCEPTION 'the definition names no flow'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Give "flow": {"name": ...} in the definition, or pass name => ''...''.';
    END IF;
    PERFORM taskflow._check_name('flow', fname);
    nd := coalesce(_apply_flow_api.definition->'nodes', '{}');
    FOR k, v IN SELECT * FROM jsonb_each(nd) LOOP
        PERFORM taskflow._apply_check_object(v,
            '{kind,body,options,retries,retry_delay,timeout,trigger_rule,finalizer,after}',
            '{string,string,object,number,string,string,string,boolean,array}',
            format('node "%s"', k));
        IF jsonb_typeof(v) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'node "%" must be a JSON object', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'e.g. "nodes": {"load": {"kind": "sql", "body": "SELECT 1"}}.';
        END IF;
        FOR e IN SELECT * FROM jsonb_array_elements(coalesce(v->'after', '[]')) LOOP
            IF jsonb_typeof(e) <> 'string' THEN
                RAISE EXCEPTION '"after" of node "%" must be an array of node names', k
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'e.g. "after": ["extract"].';
            END IF;
            -- (a name is checked here: "a>b" would split into another edge)
            PERFORM taskflow._check_name('node', e #>> '{}');
            te := te || jsonb_build_object((e #>> '{}') || '>' || k, 'null'::jsonb);
        END LOOP;
    END LOOP;
    FOR e IN SELECT * FROM jsonb_array_elements(coalesce(_apply_flow_api.definition->'edges', '[]')) LOOP
        PERFORM taskflow._apply_check_object(e, '{from,to,branch}', '{string,string,boolean}', 'an edge');
        IF e->>'from' IS NULL OR e->>'to' IS NULL OR jsonb_typeof(e) <> 'object' THEN
            RAISE EXCEPTION 'an edge needs "from" and "to"'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'e.g. "edges": [{"from": "extract", "to": "load"}].';
        END IF;
        PERFORM taskflow._check_name('node', e->>'from');
        PERFORM taskflow._check_name('node', e->>'to');
        te := te || jsonb_build_object((e->>'from') || '>' || (e->>'to'), coalesce(e->'branch', 'null'));
    END LOOP;
    vd := coalesce(_apply_flow_api.definition->'variables', '{}');
    FOR k, v IN SELECT * FROM jsonb_each(vd) LOOP
        PERFORM taskflow._apply_check_object(v, '{definition,is_constant}', '{string,boolean}',
                                             format('variable "%s"', k));
        IF jsonb_typeof(v) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'variable "%" must be a JSON object', k
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'e.g. "variables": {"day": {"definition": "yyyymmdd of bizdate"}}.';
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- the flow: create it, or change the settings that differ
    ------------------------------------------------------------------
    what := 'flow settings';
    SELECT * INTO f FROM taskflow.flows x WHERE x.name = fname;     -- (row level security)
    IF NOT FOUND THEN
        what := 'creating the flow';
        created := true;
        fid := taskflow.create_flow(fname,
                   schedule => fd->>'schedule',
                   timezone => coalesce(fd->>'timezone', current_setting('TimeZone')),
                   description => fd->>'description',
                   catchup => (fd->>'catchup')::boolean,
                   max_active_runs => (fd->>'max_active_runs')::integer,
                   enabled => (fd->>'enabled')::boolean,
                   start_date => (fd->>'start_date')::timestamptz,
                   end_date => (fd->>'end_date')::timestamptz,
                   owner => (fd->>'owner')::regrole,
                   suspend_after_failures => (fd->>'suspend_after_failures')::integer,
                   priority => (fd->>'priority')::integer);
    ELSE
        fid := f.id;
        cur := to_jsonb(f);
        IF fd ? 'schedule' AND nullif(btrim(fd->>'schedule'), '') IS DISTINCT FROM cur->>'schedule' THEN
            a_sched := coalesce(fd->>'schedule', ''); changed := true;
        END IF;
        IF fd->>'timezone' IS NOT NULL AND fd->>'timezone' <> f.timezone THEN
            a_tz := fd->>'timezone'; changed := true;
        END IF;
        IF fd ? 'description' AND nullif(fd->>'description', '') IS DISTINCT FROM f.description THEN
            a_desc := coalesce(fd->>'description', ''); changed := true;
        END IF;
        IF (fd->>'catchup')::boolean IS DISTINCT FROM f.catchup AND fd->>'catchup' IS NOT NULL THEN
            a_catchup := (fd->>'catchup')::boolean; changed := true;
        END IF;
        IF (fd->>'enabled')::boolean IS DISTINCT FROM f.enabled AND fd->>'enabled' IS NOT NULL THEN
            a_enabled := (fd->>'enabled')::boolean; changed := true;
        END IF;
        IF (fd->>'max_active_runs')::integer IS DISTINCT FROM f.max_active_runs AND fd->>'max_active_runs' IS NOT NULL THEN
            a_mar := (fd->>'max_active_runs')::integer; changed := true;
        END IF;
        IF fd ? 'start_date' AND (fd->>'start_date')::timestamptz IS DISTINCT FROM f.start_date THEN
            a_start := coalesce((fd->>'start_date')::timestamptz, '-infinity'); changed := true;
        END IF;
        IF fd ? 'end_date' AND (fd->>'end_date')::timestamptz IS DISTINCT FROM f.end_date THEN
            a_end := coalesce((fd->>'end_date')::timestamptz, 'infinity'); changed := true;
        END IF;
        IF fd->>'owner' IS NOT NULL AND (fd->>'owner')::regrole IS DISTINCT FROM f.owner THEN
            a_owner := (fd->>'owner')::regrole; changed := true;
        END IF;
        IF fd ? 'suspend_after_failures'
           AND nullif((fd->>'suspend_after_failures')::integer, 0) IS DISTINCT FROM (cur->>'suspend_after_failures')::integer THEN
            a_saf := coalesce((fd->>'suspend_after_failures')::integer, 0); changed := true;
        END IF;
        IF (fd->>'priority')::integer IS DISTINCT FROM (cur->>'priority')::integer AND fd->>'priority' IS NOT NULL THEN
            a_prio := (fd->>'priority')::integer; changed := true;
        END IF;
        IF changed THEN
            PERFORM taskflow.alter_flow(fname, schedule => a_sched, timezone => a_tz,
                        description => a_desc, catchup => a_catchup, max_active_runs => a_mar,
                        enabled => a_enabled, start_date => a_start, end_date => a_end,
                        owner => a_owner, suspend_after_failures => a_saf, priority => a_prio);
        END IF;
        -- what is there now: images as flow_definition() shows them
        SELECT coalesce(jsonb_object_agg(x.name, to_jsonb(x) - '{id,flow_id,created_at,updated_at,name}'::text[]), '{}')
          INTO cn FROM taskflow.nodes x WHERE x.flow_id = fid;
        SELECT coalesce(jsonb_object_agg(a.name || '>' || b.name, to_jsonb(x)->'branch'), '{}')
          INTO ce FROM taskflow.edges x
          JOIN taskflow.nodes a ON a.id = x.from_node JOIN taskflow.nodes b ON b.id = x.to_node
         WHERE x.flow_id = fid;
        SELECT coalesce(jsonb_object_agg(x.name, jsonb_build_object('definition', x.definition,
                                                                    'is_constant', x.is_constant)), '{}')
          INTO cv FROM taskflow.variables x WHERE x.flow_id = fid;
    END IF;

    ------------------------------------------------------------------
    -- variables first (new nodes may use them)
    ------------------------------------------------------------------
    FOR k, v IN SELECT * FROM jsonb_each(vd) LOOP
        what := format('variable "%s"', k);
        IF NOT cv ? k OR cv->k->>'definition' IS DISTINCT FROM v->>'definition'
           OR (cv->k->>'is_constant')::boolean IS DISTINCT FROM coalesce((v->>'is_constant')::boolean, false) THEN
            PERFORM taskflow.set_variable(fname, k, v->>'definition', coalesce((v->>'is_constant')::boolean, false));
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- nodes whose kind changes are replaced
    ------------------------------------------------------------------
    FOR k, v IN SELECT * FROM jsonb_each(nd) WHERE NOT created LOOP
        IF cn ? k AND v->>'kind' IS NOT NULL AND lower(btrim(v->>'kind')) <> cn->k->>'kind' THEN
            what := format('node "%s"', k);
            PERFORM taskflow.drop_node(fname, k);
            cn := cn - k;
            SELECT coalesce(jsonb_object_agg(x.key, x.value), '{}') INTO ce
              FROM jsonb_each(ce) x WHERE split_part(x.key, '>', 1) <> k AND split_part(x.key, '>', 2) <> k;
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- new nodes, upstream first, with their incoming edges
    ------------------------------------------------------------------
    SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO pending
      FROM jsonb_object_keys(nd) x WHERE NOT cn ? x;
    WHILE cardinality(pending) > 0 LOOP
        progress := false;
        FOREACH k IN ARRAY pending LOOP
            -- upstream nodes of k in the target; all of them there already?
            SELECT coalesce(array_agg(split_part(x.key, '>', 1) ORDER BY x.key), '{}') INTO ups
              FROM jsonb_each(te) x WHERE split_part(x.key, '>', 2) = k;
            IF EXISTS (SELECT 1 FROM unnest(ups) u WHERE NOT cn ? u)
               AND EXISTS (SELECT 1 FROM unnest(ups) u WHERE u = ANY (pending)) THEN
                CONTINUE;
            END IF;
            what := format('node "%s"', k);
            n := nd->k;
            -- one labelled upstream edge: add_node's branch; unlabelled ones: after
            lbl := NULL;
            IF cardinality(ups) = 1 AND te->(ups[1] || '>' || k) <> 'null' THEN
                lbl := te->(ups[1] || '>' || k);
            ELSE
                SELECT coalesce(array_agg(u ORDER BY u), '{}') INTO ups
                  FROM unnest(ups) u WHERE te->(u || '>' || k) = 'null' AND cn ? u;
            END IF;
            PERFORM taskflow.add_node(fname, k, n->>'kind', n->>'body',
                        options => coalesce(n->'options', '{}'),
                        retries => (n->>'retries')::integer,
                        retry_delay => (n->>'retry_delay')::interval,
                        timeout => (n->>'timeout')::interval,
                        after => nullif(ups, '{}'),
                        trigger_rule => n->>'trigger_rule',
                        finalizer => (n->>'finalizer')::boolean,
                        branch => (lbl #>> '{}')::boolean);
            cn := cn || jsonb_build_object(k, n);
            added := added || k;
            FOREACH ekey IN ARRAY ups LOOP
                ce := ce || jsonb_build_object(ekey || '>' || k, coalesce(lbl, 'null'));
            END LOOP;
            pending := array_remove(pending, k);
            progress := true;
        END LOOP;
        IF NOT progress THEN
            -- a cycle among the new nodes: add them without edges; add_edge
            -- below reports the cycle
            FOREACH k IN ARRAY pending LOOP
                what := format('node "%s"', k);
                n := nd->k;
                PERFORM taskflow.add_node(fname, k, n->>'kind', n->>'body',
                            options => coalesce(n->'options', '{}'),
                            retries => (n->>'retries')::integer,
                            retry_delay => (n->>'retry_delay')::interval,
                            timeout => (n->>'timeout')::interval,
                            trigger_rule => n->>'trigger_rule',
                            finalizer => (n->>'finalizer')::boolean);
                cn := cn || jsonb_build_object(k, n);
                added := added || k;
            END LOOP;
            pending := '{}';
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- missing edges; changed branch labels
    ------------------------------------------------------------------
    FOR ekey, lbl IN SELECT x.key, x.value FROM jsonb_each(te) x
                      WHERE NOT (ce ? x.key AND ce->x.key = x.value) ORDER BY 1 LOOP
        what := format('edge %s -> %s', split_part(ekey, '>', 1), split_part(ekey, '>', 2));
        IF NOT ce ? ekey THEN
            PERFORM taskflow.add_edge(fname, split_part(ekey, '>', 1), split_part(ekey, '>', 2),
                                      branch => (lbl #>> '{}')::boolean);
        ELSIF ce->ekey IS DISTINCT FROM lbl THEN
            -- (a direct UPDATE as the caller: the edge triggers check it)
            UPDATE taskflow.edges x SET branch = (lbl #>> '{}')::boolean
              FROM taskflow.nodes a, taskflow.nodes b
             WHERE x.flow_id = fid AND a.id = x.from_node AND b.id = x.to_node
               AND a.name = split_part(ekey, '>', 1) AND b.name = split_part(ekey, '>', 2);
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- changed nodes (after the edges: ${node.column} needs its upstream)
    ------------------------------------------------------------------
    FOR k, n IN SELECT * FROM jsonb_each(nd) WHERE NOT created LOOP
        cur := cn->k;
        IF k = ANY (added) THEN
            CONTINUE;           -- added above
        END IF;
        what := format('node "%s"', k);
        IF (n ? 'body' AND nullif(n->>'body', '') IS DISTINCT FROM cur->>'body')
           OR (n ? 'options' AND coalesce(n->'options', '{}') IS DISTINCT FROM cur->'options')
           OR (n->>'retries' IS NOT NULL AND (n->>'retries')::integer IS DISTINCT FROM (cur->>'retries')::integer)
           OR (n->>'retry_delay' IS NOT NULL AND (n->>'retry_delay')::interval IS DISTINCT FROM (cur->>'retry_delay')::interval)
           OR (n ? 'timeout' AND nullif((n->>'timeout')::interval, interval '0') IS DISTINCT FROM (cur->>'timeout')::interval)
           OR (n->>'trigger_rule' IS NOT NULL AND n->>'trigger_rule' IS DISTINCT FROM cur->>'trigger_rule')
           OR (n->>'finalizer' IS NOT NULL AND (n->>'finalizer')::boolean IS DISTINCT FROM (cur->>'finalizer')::boolean) THEN
            PERFORM taskflow.alter_node(fname, k,
                        body => CASE WHEN n ? 'body' THEN coalesce(n->>'body', '') END,
                        options => CASE WHEN n ? 'options' THEN coalesce(n->'options', '{}') END,
                        retries => (n->>'retries')::integer,
                        retry_delay => (n->>'retry_delay')::interval,
                        timeout => CASE WHEN n ? 'timeout' THEN coalesce((n->>'timeout')::interval, interval '0') END,
                        trigger_rule => n->>'trigger_rule',
                        finalizer => (n->>'finalizer')::boolean);
        END IF;
    END LOOP;

    ------------------------------------------------------------------
    -- what the definition no longer has: edges, nodes (downstream
    -- first), variables
    ------------------------------------------------------------------
    IF created THEN
        RETURN 1;               -- (all of it is the flow's first version)
    END IF;
    FOR ekey IN SELECT x FROM jsonb_object_keys(ce) x WHERE NOT te ? x ORDER BY 1 LOOP
        IF cn ? split_part(ekey, '>', 1) AND nd ? split_part(ekey, '>', 1)
           AND nd ? split_part(ekey, '>', 2) THEN
            what := format('edge %s -> %s', split_part(ekey, '>', 1), split_part(ekey, '>', 2));
            PERFORM taskflow.drop_edge(fname, split_part(ekey, '>', 1), split_part(ekey, '>', 2));
        END IF;
    END LOOP;
    SELECT coalesce(array_agg(x ORDER BY x), '{}') INTO pending
      FROM jsonb_object_keys(cn) x WHERE NOT nd ? x;
    WHILE cardinality(pending) > 0 LOOP
        -- a removed node none of whose downstream nodes is still to be removed
        SELECT p INTO k FROM unnest(pending) p
         WHERE NOT EXISTS (SELECT 1 FROM jsonb_object_keys(ce) x
                            WHERE split_part(x, '>', 1) = p AND split_part(x, '>', 2) = ANY (pending))
         ORDER BY p LIMIT 1;
        k := coalesce(k, pending[1]);
        what := format('node "%s"', k);
        PERFORM taskflow.drop_node(fname, k);
        pending := array_remove(pending, k);
    END LOOP;
    FOR k IN SELECT x FROM jsonb_object_keys(cv) x WHERE NOT vd ? x ORDER BY 1 LOOP
        what := format('variable "%s"', k);
        PERFORM taskflow.drop_variable(fname, k);
    END LOOP;

    RETURN (SELECT coalesce(max(x.version), 0) FROM taskflow.flow_versions x WHERE x.flow_id = fid);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    IF e_state = '42710' AND what = 'creating the flow' THEN
        -- another owner's flow of that name: as for every other call on it
        e_state := '42704';
        e_msg := format('flow "%s" does not exist', fname);
        e_detail := NULL;
        e_hint := 'Either there is no such flow or you are not a member of its owner; '
                  'SELECT name FROM taskflow.flows lists the flows you can use.';
    END IF;
    PERFORM taskflow._raise(e_state, e_msg, e_detail, e_hint,
                            format('taskflow.apply_flow: flow "%s", %s',
                                   coalesce(fname, _apply_flow_api.name, '?'), what));
END
$$;

CREATE OR REPLACE FUNCTION taskflow.apply_flow(definition jsonb, name text DEFAULT NULL)
RETURNS integer
LANGUAGE C AS 'MODULE_PATHNAME', 'tf_apply_flow';
