-- taskflow.apply_flow(definition jsonb, name text): a whole flow in one call,
-- in the shape taskflow.flow_definition() returns.  Creates the flow, changes
-- only what differs (an identical definition records no new version), goes
-- through the public API (same checks, errors and permissions), and is
-- all-or-nothing.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never

-- a fingerprint of everything a flow's definition holds (to show that a
-- failed call changed nothing)
CREATE FUNCTION pg_temp.fp(flow text) RETURNS text LANGUAGE sql AS $$
    SELECT md5(coalesce((SELECT (taskflow.flow_definition(flow))::text
                          WHERE EXISTS (SELECT 1 FROM taskflow.flows f WHERE f.name = flow)), 'none'))
           || ' v' || (SELECT count(*) FROM taskflow.flow_versions v
                         JOIN taskflow.flows f ON f.id = v.flow_id WHERE f.name = flow)
$$;

-- create: settings, variables, nodes with "after" and with "edges"
SELECT taskflow.apply_flow($${
  "flow": {"name": "af", "schedule": "0 5 * * *", "timezone": "asia/shanghai",
           "description": "declared", "max_active_runs": 2},
  "variables": {"day": {"definition": "yyyymmdd of bizdate"},
                "k": {"definition": "42", "is_constant": true}},
  "nodes": {"extract": {"kind": "sql", "body": "SELECT ${day}"},
            "load": {"kind": "sql", "body": "SELECT ${k}", "retries": 2, "timeout": "5 min",
                     "after": ["extract"]},
            "report": {"kind": "sql", "body": "SELECT 3", "trigger_rule": "all_done"}},
  "edges": [{"from": "load", "to": "report"}]
}$$) AS version;
SELECT jsonb_pretty(taskflow.flow_definition('af'));
SELECT version, summary FROM taskflow.flow_versions('af');

-- idempotent: the same definition again changes nothing, no new version
SELECT pg_temp.fp('af') AS before \gset
SELECT taskflow.apply_flow(taskflow.flow_definition('af')) AS version;
SELECT taskflow.apply_flow(taskflow.flow_definition('af') - 'version') AS version;
SELECT pg_temp.fp('af') = :'before' AS unchanged;

-- round trip: the definition under another name is an identical flow
SELECT taskflow.apply_flow(taskflow.flow_definition('af'), name => 'af_copy') AS version;
SELECT (taskflow.flow_definition('af') - '{version,flow}'::text[])
       = (taskflow.flow_definition('af_copy') - '{version,flow}'::text[]) AS same_graph,
       (taskflow.flow_definition('af')->'flow') - 'name'
       = (taskflow.flow_definition('af_copy')->'flow') - 'name' AS same_settings;
-- and after drop_flow, from the saved definition
CREATE TEMP TABLE saved AS SELECT taskflow.flow_definition('af_copy') AS d;
SELECT taskflow.drop_flow('af_copy');
SELECT taskflow.apply_flow(d) AS version FROM saved;
SELECT taskflow.flow_definition('af_copy') - 'version' = d - 'version' AS identical FROM saved;

-- change a node body, the schedule, a variable; add an edge; one version
SELECT taskflow.apply_flow(
    jsonb_set(jsonb_set(jsonb_set(jsonb_set(taskflow.flow_definition('af'),
        '{nodes,load,body}', '"SELECT ${k}, ${day}"'),
        '{flow,schedule}', '"30 6 * * *"'),
        '{variables,day,definition}', '"yyyy-mm-dd of bizdate"'),
        '{edges}', (taskflow.flow_definition('af')->'edges') || '[{"from": "extract", "to": "report"}]'))
    AS version;
SELECT * FROM taskflow.flow_diff('af', 1);
-- keys left out keep their values; null clears (timeout), "after" adds edges
SELECT taskflow.apply_flow($${"flow": {"name": "af"},
  "nodes": {"extract": {"kind": "sql"}, "load": {"timeout": null}, "report": {}},
  "edges": [{"from": "extract", "to": "load"}, {"from": "load", "to": "report"},
            {"from": "extract", "to": "report"}],
  "variables": {"day": {"definition": "yyyy-mm-dd of bizdate"}, "k": {"definition": "42", "is_constant": true}}}$$)
    AS version;
SELECT * FROM taskflow.flow_diff('af', 2);
-- remove a node (its edges go with it) and a variable no node uses any more
SELECT taskflow.apply_flow($${"flow": {"name": "af"},
  "nodes": {"extract": {"kind": "sql", "body": "SELECT ${day}"},
            "load": {"kind": "sql", "body": "SELECT 1", "after": ["extract"]}},
  "variables": {"day": {"definition": "yyyy-mm-dd of bizdate"}}}$$) AS version;
SELECT * FROM taskflow.flow_diff('af', 3);
-- a changed kind replaces the node
SELECT taskflow.apply_flow($${"flow": {"name": "af"},
  "nodes": {"extract": {"kind": "sql", "body": "SELECT ${day}"},
            "load": {"kind": "wait", "body": "true", "after": ["extract"]}},
  "variables": {"day": {"definition": "yyyy-mm-dd of bizdate"}}}$$) AS version;
SELECT kind, object, change, field FROM taskflow.flow_diff('af', 4);

-- branch labels round-trip and change in place
SELECT taskflow.apply_flow($${"flow": {"name": "af_branch"},
  "nodes": {"decide": {"kind": "branch", "body": "true"},
            "yes": {"kind": "sql", "body": "SELECT 1"}, "no": {"kind": "sql", "body": "SELECT 2"}},
  "edges": [{"from": "decide", "to": "yes", "branch": true}, {"from": "decide", "to": "no", "branch": false}]}$$)
    AS version;
SELECT taskflow.apply_flow(taskflow.flow_definition('af_branch'), name => 'af_branch2') AS version;
SELECT taskflow.flow_definition('af_branch')->'edges' = taskflow.flow_definition('af_branch2')->'edges' AS same_edges;
SELECT taskflow.apply_flow(jsonb_set(taskflow.flow_definition('af_branch'), '{edges}',
    '[{"from": "decide", "to": "yes", "branch": false}, {"from": "decide", "to": "no", "branch": true}]')) AS version;
SELECT * FROM taskflow.flow_diff('af_branch', 1);

-- every error changes nothing: same SQLSTATE, message and hint as the API
SELECT pg_temp.fp('af') AS before \gset
SELECT regress.try($$ SELECT taskflow.apply_flow(jsonb_set(taskflow.flow_definition('af'), '{flow,schedule}', '"61 * * * *"')) $$);
SELECT regress.try($$ SELECT taskflow.apply_flow(taskflow.flow_definition('af')
    || '{"edges": [{"from": "extract", "to": "load"}, {"from": "load", "to": "extract"}]}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow(jsonb_set(taskflow.flow_definition('af'), '{nodes,new}',
    '{"kind": "sqlx", "body": "SELECT 1"}')) $$);
SELECT regress.try($$ SELECT taskflow.apply_flow(jsonb_set(taskflow.flow_definition('af'), '{nodes,extract,body}',
    '"SELECT ${nope}"')) $$);
-- a variable still used cannot go
SELECT regress.try($$ SELECT taskflow.apply_flow(taskflow.flow_definition('af') - 'variables') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow(jsonb_set(taskflow.flow_definition('af'), '{nodes,extract,retries}', '101')) $$);
SELECT regress.try($$ SELECT taskflow.apply_flow(jsonb_set(taskflow.flow_definition('af'), '{nodes,load,after}', '["ghost"]')) $$);
SELECT pg_temp.fp('af') = :'before' AS unchanged;
-- the CONTEXT names the flow and the node being defined
\set SHOW_CONTEXT errors
SELECT taskflow.apply_flow(jsonb_set(taskflow.flow_definition('af'), '{nodes,extract,body}', '"SELEC 1"'));
\set SHOW_CONTEXT never
-- bad JSON shapes and wrong types
SELECT regress.try($$ SELECT taskflow.apply_flow(NULL) $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('[]') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"nodes": {}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af"}, "node": {}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af", "cron": "* * * * *"}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af"}, "nodes": {"extract": {"kind": "sql", "bdy": "x"}}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af"}, "nodes": {"extract": "SELECT 1"}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af", "enabled": "yes"}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af", "max_active_runs": 1.5}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af"}, "nodes": {"extract": {"retries": "2"}}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af"}, "nodes": {"extract": {"retry_delay": "soon"}}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af"}, "edges": [{"from": "extract"}]}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af"}, "nodes": {"load": {"after": [1]}}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "bad name"}}') $$);
SELECT pg_temp.fp('af') = :'before' AS unchanged;
-- a failed create leaves no flow behind
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af_new"},
    "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]},
              "c": {"kind": "sql", "body": "SELECT (", "after": ["b"]}}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af_new"},
    "nodes": {"a": {"kind": "sql", "body": "SELECT 1", "after": ["b"]}, "b": {"kind": "sql", "body": "SELECT 2", "after": ["a"]}}}') $$);
SELECT count(*) AS af_new_flows FROM taskflow.flows WHERE name = 'af_new';

-- permissions: a plain role, through the same API and guard
CREATE ROLE regress_af_alice;
CREATE ROLE regress_af_mallory;
SET ROLE regress_af_alice;
SELECT taskflow.apply_flow('{"flow": {"name": "af_alice"}, "nodes": {"a": {"kind": "sql", "body": "SELECT 1"}}}') AS version;
SELECT owner FROM taskflow.flows WHERE name = 'af_alice';
-- she cannot create a flow owned by someone else, nor give hers away
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af_gift", "owner": "regress_af_mallory"}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af_alice", "owner": "regress_af_mallory"}}') $$);
-- nor skip the checks the guard would make on her direct writes
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af_alice", "schedule": "every 0 minutes"}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af_alice"}, "nodes": {"a": {"timeout": "25 days"}}}') $$);
RESET ROLE;
-- another owner's flow is "does not exist" to mallory, whatever she sends
SET ROLE regress_af_mallory;
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af_alice"}, "nodes": {}}') $$);
SELECT regress.try($$ SELECT taskflow.apply_flow('{"flow": {"name": "af"}, "nodes": {"x": {"kind": "sql", "body": "SELECT 1"}}}') $$);
SELECT count(*) AS mallory_sees FROM taskflow.flows;
RESET ROLE;
SELECT name, owner, (SELECT count(*) FROM taskflow.nodes n WHERE n.flow_id = f.id) AS nodes
  FROM taskflow.flows f WHERE name LIKE 'af%' ORDER BY name;

SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'af%' ORDER BY name;
DROP ROLE regress_af_alice, regress_af_mallory;
