-- taskflow extension script, part 00: catalog tables, row level security, grants.
-- An install-only part (*.once.sql): it runs when the extension is created,
-- not when it is updated; every change here needs its twin in the upgrade
-- script's delta (sql/upgrade/).  See sql/README.md.

CREATE TABLE taskflow.flows (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$'),
    owner           regrole NOT NULL DEFAULT current_user::regrole,
    schedule        text,
    timezone        text NOT NULL DEFAULT current_setting('TimeZone'),
    description     text,
    enabled         boolean NOT NULL DEFAULT true,
    catchup         boolean NOT NULL DEFAULT true,
    max_active_runs integer NOT NULL DEFAULT 1 CHECK (max_active_runs >= 1),
    start_date      timestamptz,
    end_date        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- the scheduler's watermark: the last cyctime it has created a run for
    -- (NULL: none yet; scheduling starts at greatest(created_at, start_date))
    scheduled_until timestamptz
);

CREATE TABLE taskflow.nodes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id     bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_-]{0,62}$'),
    kind        text NOT NULL,
    body        text,
    options     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    retries     integer NOT NULL DEFAULT 0 CHECK (retries BETWEEN 0 AND 100),
    retry_delay interval NOT NULL DEFAULT '1 min' CHECK (retry_delay >= '0'),
    timeout     interval CHECK (timeout > '0'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (flow_id, name),
    UNIQUE (flow_id, id)
);

CREATE TABLE taskflow.edges (
    flow_id   bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    from_node bigint NOT NULL,
    to_node   bigint NOT NULL,
    PRIMARY KEY (flow_id, from_node, to_node),
    FOREIGN KEY (flow_id, from_node) REFERENCES taskflow.nodes(flow_id, id) ON DELETE CASCADE,
    FOREIGN KEY (flow_id, to_node) REFERENCES taskflow.nodes(flow_id, id) ON DELETE CASCADE,
    CHECK (from_node <> to_node)
);
CREATE INDEX ON taskflow.edges (flow_id, to_node);

CREATE TABLE taskflow.variables (
    flow_id     bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$'),
    definition  text NOT NULL,
    is_constant boolean NOT NULL DEFAULT false,
    -- parsed form of a time variable: to_char(base + shift, pattern)
    pattern     text,
    base        text CHECK (base IN ('bizdate', 'cyctime')),
    shift       interval,
    PRIMARY KEY (flow_id, name)
);

CREATE TABLE taskflow.runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id       bigint NOT NULL REFERENCES taskflow.flows(id) ON DELETE CASCADE,
    scheduled_for timestamptz NOT NULL,          -- cyctime
    bizdate       date NOT NULL,
    trigger       text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'backfill', 'rerun')),
    state         text NOT NULL DEFAULT 'scheduled'
                  CHECK (state IN ('scheduled', 'running', 'succeeded', 'failed', 'canceled')),
    params        jsonb NOT NULL DEFAULT '{}',
    rerun_of      bigint REFERENCES taskflow.runs(id) ON DELETE SET NULL,
    created_by    regrole NOT NULL DEFAULT current_user::regrole,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    message       text,
    UNIQUE (flow_id, scheduled_for)
);
CREATE INDEX ON taskflow.runs (state) WHERE state IN ('scheduled', 'running');
CREATE INDEX ON taskflow.runs (flow_id, bizdate);
CREATE INDEX ON taskflow.runs (finished_at);

CREATE TABLE taskflow.node_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES taskflow.runs(id) ON DELETE CASCADE,
    node_id     bigint NOT NULL REFERENCES taskflow.nodes(id) ON DELETE CASCADE,
    attempt     integer NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'retrying', 'succeeded', 'failed',
                                 'upstream_failed', 'skipped', 'canceled')),
    not_before  timestamptz,                     -- earliest start of the next attempt
    started_at  timestamptz,
    finished_at timestamptz,
    rows        bigint,
    bytes       bigint,
    rendered    text,
    message     text,
    sqlstate    text,
    log         text,
    worker_pid  integer,
    UNIQUE (run_id, node_id)
);
CREATE INDEX ON taskflow.node_runs (state) WHERE state IN ('pending', 'running', 'retrying');
-- every foreign key is indexed (drop_flow, history purge: ON DELETE actions)
CREATE INDEX ON taskflow.node_runs (node_id);
CREATE INDEX ON taskflow.runs (rerun_of) WHERE rerun_of IS NOT NULL;
-- the orderings O&M pages sort and page by
CREATE INDEX ON taskflow.runs (started_at);
CREATE INDEX ON taskflow.node_runs (started_at);

-- Row level security: a role sees and changes only flows owned by roles it
-- is a member of.  Superusers (and the extension owner) bypass RLS.
ALTER TABLE taskflow.flows ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.edges ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.variables ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE taskflow.node_runs ENABLE ROW LEVEL SECURITY;

CREATE POLICY flows_member ON taskflow.flows
    USING (taskflow._is_member(owner)) WITH CHECK (taskflow._is_member(owner));
CREATE POLICY nodes_member ON taskflow.nodes
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY edges_member ON taskflow.edges
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY variables_member ON taskflow.variables
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY runs_member ON taskflow.runs FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.id = flow_id));
CREATE POLICY node_runs_member ON taskflow.node_runs FOR SELECT
    USING (EXISTS (SELECT 1 FROM taskflow.runs r WHERE r.id = run_id));

-- Definitions are changed through the API functions (SECURITY INVOKER, so
-- RLS applies); runs and node_runs are written only by the engine and by
-- the privileged run operations (gate.c), never directly by users.
GRANT USAGE ON SCHEMA taskflow TO PUBLIC;
GRANT SELECT ON taskflow.flows, taskflow.nodes, taskflow.edges, taskflow.variables,
                taskflow.runs, taskflow.node_runs TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON taskflow.edges, taskflow.variables TO PUBLIC;
GRANT DELETE ON taskflow.flows, taskflow.nodes TO PUBLIC;
-- engine-owned columns (id, created_at, updated_at, the scheduler's
-- watermark scheduled_until) cannot be inserted, created_at and
-- scheduled_until cannot be updated; the catalog guard (part 15) re-checks
-- what users write.  See docs/security.md.
GRANT INSERT (name, owner, schedule, timezone, description, enabled, catchup,
              max_active_runs, start_date, end_date) ON taskflow.flows TO PUBLIC;
GRANT UPDATE (name, owner, schedule, timezone, description, enabled, catchup,
              max_active_runs, start_date, end_date, updated_at) ON taskflow.flows TO PUBLIC;
GRANT INSERT (flow_id, name, kind, body, options, retries, retry_delay, timeout)
    ON taskflow.nodes TO PUBLIC;
GRANT UPDATE (name, kind, body, options, retries, retry_delay, timeout, updated_at)
    ON taskflow.nodes TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('taskflow.flows', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.nodes', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.edges', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.variables', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.runs', '');
SELECT pg_catalog.pg_extension_config_dump('taskflow.node_runs', '');
