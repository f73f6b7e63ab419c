-- Output variables ${node.column} (definition-time checks, rendering, render()
-- of a past run) and the definition of check nodes.  (owner: 91_outvars.sql,
-- variables.c, node_check.c)  Flows here never run: they have no schedule.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never
\pset null '(null)'

-- the template syntax: ${node.column}, node names with "-", the forms
SELECT taskflow._render_text('n=${count.n} lit=${count.n:literal} id=${my-node.tbl:ident}',
  '{"count.n": "42", "my-node.tbl": "Daily Sum"}', 'node "x" body');
SELECT taskflow._template_vars('${a.b} ${bizdate} ${a-b.c_1} ${a.b}');
-- null values: empty text, NULL literal, no identifier
SELECT taskflow._render_text('[${a.z}] [${a.z:literal}]', '{"a.z": null}', 't');
SELECT taskflow._render_text('${a.z:ident}', '{"a.z": null}', 't');
-- a value with quotes, safely quoted
SELECT taskflow._render_text('WHERE who = ${a.who:literal}', '{"a.who": "O''Brien; DROP TABLE x --"}', 't');
-- malformed references
SELECT taskflow._render_text('${a.}', '{}', 't');
SELECT taskflow._render_text('${a.1x}', '{}', 't');
SELECT taskflow._render_text('${a.b.c}', '{}', 't');
SELECT taskflow._render_text('${a-b}', '{"a": 1}', 't');
-- an output that was not recorded: says which outputs the node has
SELECT taskflow._render_text('${count.m}', '{"count.n": "1", "count.k": "2"}', 'node "use" body');
SELECT taskflow._render_text('${count.m}', '{"bizdate": "2026-01-01"}', 'node "use" body');
-- dry rendering keeps output variables as written
SELECT taskflow._render_text_dry('x = ${count.n:literal} AND d = ${bizdate:literal}', '{"bizdate": "2026-01-01"}', 't');

-- definition-time checks
SELECT taskflow.create_flow('ov', description => 'output variables') > 0 AS ok;
SELECT taskflow.add_node('ov', 'count', 'sql', 'SELECT count(*) AS n, max(relname) AS last FROM pg_class') > 0 AS ok;
SELECT taskflow.add_node('ov', 'other', 'sql', 'SELECT 1 AS one') > 0 AS ok;
-- downstream: fine, also transitively and in options
SELECT taskflow.add_node('ov', 'use', 'sql', 'SELECT ${count.n}::int + 1 AS m, ${count.last:literal} AS l', after => ARRAY['count']) > 0 AS ok;
SELECT taskflow.add_node('ov', 'use2', 'sql', 'SELECT ${count.n:literal}, ${use.m}', after => ARRAY['use']) > 0 AS ok;
SELECT taskflow.add_node('ov', 'tell', 'notify', options => '{"channel": "ov", "payload": "${count.n} rows; ${use.m}"}', after => ARRAY['use']) > 0 AS ok;
-- unknown node, a node that is not upstream, the node itself: nothing changes
SELECT taskflow.add_node('ov', 'bad', 'sql', 'SELECT ${nosuch.n}', after => ARRAY['count']);
SELECT taskflow.add_node('ov', 'bad', 'sql', 'SELECT ${other.one}', after => ARRAY['count']);
SELECT taskflow.add_node('ov', 'bad', 'sql', 'SELECT ${bad.x}');
SELECT count(*) AS nodes FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'ov';
-- alter_node: the new body must name upstream nodes too
SELECT taskflow.alter_node('ov', 'use', body => 'SELECT ${other.one}');
SELECT taskflow.alter_node('ov', 'use', body => 'SELECT ${count.n} AS m, 1 AS x');
-- drop_edge / drop_node / rename that would leave a reference dangling
SELECT taskflow.drop_edge('ov', 'count', 'use');
SELECT taskflow.drop_node('ov', 'count');
SELECT taskflow.alter_node('ov', 'count', new_name => 'counted');
SELECT taskflow.alter_node('ov', 'use', new_name => 'used');
-- a second path keeps use2 downstream of count: that edge may go
SELECT taskflow.add_edge('ov', 'count', 'use2');
SELECT taskflow.drop_edge('ov', 'use', 'use2');
SELECT taskflow.drop_edge('ov', 'count', 'use2');
-- nothing changed by the refused calls
SELECT n.name, n.body FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id
 WHERE f.name = 'ov' ORDER BY n.name;
SELECT e.a || ' -> ' || e.b AS edge
  FROM (SELECT a.name AS a, b.name AS b FROM taskflow.edges x
          JOIN taskflow.nodes a ON a.id = x.from_node JOIN taskflow.nodes b ON b.id = x.to_node
          JOIN taskflow.flows f ON f.id = x.flow_id WHERE f.name = 'ov') e ORDER BY 1;

-- render(): a dry run keeps output variables; with run_id, the recorded outputs
SELECT taskflow.render('ov', 'use', bizdate => '2026-03-01');
SELECT taskflow.render('ov', 'tell', bizdate => '2026-03-01');
-- a past run, as the engine records it (the engine is not running here)
CREATE FUNCTION pg_temp.fake_run(flow text, bizdate date) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE rid bigint;
BEGIN
    INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, state, params)
    SELECT id, bizdate + 1, bizdate, 'manual', 'succeeded', '{}' FROM taskflow.flows WHERE name = flow
    RETURNING id INTO rid;
    INSERT INTO taskflow.node_runs (run_id, node_id, attempt, state)
    SELECT rid, n.id, 1, 'succeeded' FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id
     WHERE f.name = flow;
    RETURN rid;
END $$;
SELECT pg_temp.fake_run('ov', '2026-03-02') AS rid \gset
UPDATE taskflow.node_runs nr SET outputs = '{"n": 7, "last": "it''s"}'
  FROM taskflow.nodes n WHERE n.id = nr.node_id AND n.name = 'count' AND nr.run_id = :rid;
UPDATE taskflow.node_runs nr SET outputs = '{"m": "8", "x": null}'
  FROM taskflow.nodes n WHERE n.id = nr.node_id AND n.name = 'use' AND nr.run_id = :rid;
SELECT taskflow.render('ov', 'use2', run_id => :rid);
SELECT taskflow.render('ov', 'tell', run_id => :rid);
-- only upstream outputs are variables of a node
SELECT taskflow._output_variables(:rid, (SELECT id FROM taskflow.nodes WHERE name = 'use2'));
SELECT taskflow._output_variables(:rid, (SELECT id FROM taskflow.nodes WHERE name = 'count'));
-- history shows them
SELECT node, outputs FROM taskflow.node_run_history WHERE run_id = :rid ORDER BY node;
-- a node whose upstream recorded no such column fails to render (at run time: the node fails)
UPDATE taskflow.node_runs nr SET outputs = '{"m": "8"}'
  FROM taskflow.nodes n WHERE n.id = nr.node_id AND n.name = 'count' AND nr.run_id = :rid;
SELECT taskflow.render('ov', 'use2', run_id => :rid);
-- a run of another flow, or none
SELECT taskflow.render('ov', 'use2', run_id => -1);

-- check nodes: definition
SELECT taskflow.create_flow('chk') > 0 AS ok;
CREATE TABLE loads (day date, n int);
SELECT taskflow.add_node('chk', 'rows1', 'check_rows', options => '{"table": "loads", "column": "day"}') > 0 AS ok;
SELECT taskflow.add_node('chk', 'rows2', 'check_rows', options => '{"table": "public.loads", "where": "day = ${bizdate:literal} AND n > 0", "min_rows": 2, "poll_interval": "1 min"}') > 0 AS ok;
SELECT taskflow.add_node('chk', 'flow1', 'check_flow', options => '{"flow": "ov", "poll_interval": "5 min"}', timeout => '2 hours') > 0 AS ok;
SELECT taskflow.render('chk', 'rows2', bizdate => '2026-03-01');
SELECT taskflow.add_node('chk', 'bad', 'check_rows', options => '{}');
SELECT taskflow.add_node('chk', 'bad', 'check_rows', options => '{"table": "loads", "column": "day", "where": "true"}');
SELECT taskflow.add_node('chk', 'bad', 'check_rows', options => '{"table": "a.b.c.d"}');
SELECT taskflow.add_node('chk', 'bad', 'check_rows', options => '{"table": "loads", "where": "day = = 1"}');
SELECT taskflow.add_node('chk', 'bad', 'check_rows', options => '{"table": "loads", "min_rows": 0}');
SELECT taskflow.add_node('chk', 'bad', 'check_rows', 'SELECT 1', options => '{"table": "loads"}');
SELECT taskflow.add_node('chk', 'bad', 'check_rows', options => '{"table": "loads", "where": "day = ${nosuch:literal}"}');
SELECT taskflow.add_node('chk', 'bad', 'check_flow', options => '{}');
SELECT taskflow.add_node('chk', 'bad', 'check_flow', options => '{"flow": "nosuch"}');
SELECT taskflow.add_node('chk', 'bad', 'check_flow', options => '{"flow": "${flow}"}');
-- a flow the owner may not see looks exactly like one that does not exist
CREATE ROLE ov_alice;
CREATE ROLE ov_bob;
SELECT taskflow.create_flow('bobs', owner => 'ov_bob') > 0 AS ok;
SELECT taskflow.create_flow('alices', owner => 'ov_alice') > 0 AS ok;
SELECT taskflow.add_node('alices', 'bad', 'check_flow', options => '{"flow": "bobs"}');
SELECT taskflow.add_node('alices', 'bad', 'check_flow', options => '{"flow": "nosuch"}');
SELECT taskflow.add_node('alices', 'self', 'check_flow', options => '{"flow": "alices"}');
SELECT taskflow.create_flow('alices_load', owner => 'ov_alice') > 0 AS ok;
SELECT taskflow.add_node('alices', 'own', 'check_flow', options => '{"flow": "alices_load"}') > 0 AS ok;
SELECT taskflow.add_node('alices', 'a', 'sql', 'SELECT 1 AS x') > 0 AS ok;
SELECT taskflow.add_node('alices', 'b', 'sql', 'SELECT 2 AS y') > 0 AS ok;
SELECT taskflow.add_node('alices', 'c', 'sql', 'SELECT ${a.x}', after => ARRAY['a']) > 0 AS ok;
SET ROLE ov_alice;
-- direct writes (not a superuser): the catalog guard checks that the node
-- exists, and on UPDATE that it is upstream
UPDATE taskflow.nodes SET body = 'SELECT ${b.y}'
 WHERE name = 'c' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'alices');
INSERT INTO taskflow.nodes (flow_id, name, kind, body)
SELECT id, 'direct', 'sql', 'SELECT ${ghost.x}' FROM taskflow.flows WHERE name = 'alices';
UPDATE taskflow.nodes SET body = 'SELECT ${a.x} + 1'
 WHERE name = 'c' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'alices');
-- direct DELETE / UPDATE of edges and nodes: the same checks as drop_edge, drop_node, rename
DELETE FROM taskflow.edges WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'alices');
DELETE FROM taskflow.nodes WHERE name = 'a' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'alices');
UPDATE taskflow.nodes SET name = 'a2' WHERE name = 'a' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'alices');
SELECT count(*) AS edges_left FROM taskflow.edges WHERE flow_id = (SELECT id FROM taskflow.flows WHERE name = 'alices');
-- a node that uses no outputs may go; so may a flow with its nodes
DELETE FROM taskflow.nodes WHERE name = 'b' AND flow_id = (SELECT id FROM taskflow.flows WHERE name = 'alices');
SELECT taskflow.create_flow('alices2') > 0 AS ok;
SELECT taskflow.add_node('alices2', 'a', 'sql', 'SELECT 1 AS x') > 0 AS ok;
SELECT taskflow.add_node('alices2', 'c', 'sql', 'SELECT ${a.x}', after => ARRAY['a']) > 0 AS ok;
SELECT taskflow.drop_node('alices2', 'a');
SELECT taskflow.drop_flow('alices2');
-- at run time (as the owner), a stranger's flow looks like no flow
SELECT taskflow._check_flow('alices_load', '2026-03-01');
SELECT taskflow._check_flow('bobs', '2026-03-01');
SELECT taskflow._check_flow('nosuch', '2026-03-01');
RESET ROLE;
SELECT taskflow._check_flow('ov', '2026-03-02') AS ov_succeeded, taskflow._check_flow('ov', '2026-03-03') AS not_that_day;

SELECT taskflow.drop_flow(x, force => true) FROM unnest(ARRAY['ov', 'chk', 'bobs', 'alices', 'alices_load']) x;
DROP TABLE loads;
DROP ROLE ov_alice;
DROP ROLE ov_bob;
