-- ${var} rendering: _render_text() and _template_vars().  (owner: variables.c)
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\pset null '(null)'

-- plain, literal and identifier forms
SELECT taskflow._render_text(
  'DELETE FROM ${tbl:ident} WHERE created_date = ${bizdate:literal} AND who = ${name:literal}; -- ${name} ${bizdate}',
  '{"bizdate": "2026-06-01", "name": "O''Brien", "tbl": "Order Items"}', 'node "purge" body');
-- identifier quoting: only when needed, embedded quotes doubled
SELECT v AS value, taskflow._render_text('${v:ident}', jsonb_build_object('v', v), 't') AS ident,
       taskflow._render_text('${v:literal}', jsonb_build_object('v', v), 't') AS literal
FROM unnest(ARRAY['orders', 'Orders', 'order items', 'we"ird', 'select', '_x1', 'ünïcode', 'back\slash', 'it''s']) v;
-- schema-qualified: quote each part
SELECT taskflow._render_text('${s:ident}.${t:ident}', '{"s": "public", "t": "Sales 2026"}', 't');
-- Hive-style path from time variables
SELECT taskflow._render_text('dla_demo/y=${year}/m=${month}/d=${day}/', '{"year": "2020", "month": "06", "day": "01"}', 'node "archive" option "path"');

-- value types: strings as-is, numbers/booleans as JSON text, null, arrays/objects as JSON
SELECT taskflow._render_text('[${n}] [${f}] [${b}] [${z}] [${a}] [${o}]',
  '{"n": 42, "f": 1.50, "b": false, "z": null, "a": [1, "x"], "o": {"k": "v"}}', 't');
SELECT taskflow._render_text('[${n:literal}] [${b:literal}] [${z:literal}] [${a:literal}]',
  '{"n": 42, "b": true, "z": null, "a": [1, "x"]}', 't');
SELECT taskflow._render_text('${n:ident}', '{"n": 42}', 't');

-- escapes and text that only looks like variables
SELECT taskflow._render_text('$${bizdate} is written as $${name}; ${bizdate}', '{"bizdate": "2026-06-01"}', 't');
SELECT taskflow._render_text('cost $5, $1 placeholders, $$ dollar quotes $$, $tag$ x $tag$, {braces}, $ {x}', '{}', 't');
SELECT taskflow._render_text('DO $$ BEGIN RAISE NOTICE ''%'', ${v:literal}; END $$', '{"v": "hi"}', 't');
SELECT taskflow._render_text('${a}${b}${a}', '{"a": "A", "b": "B"}', 't');
SELECT taskflow._render_text('', '{}', 't');
SELECT taskflow._render_text('no variables', NULL, NULL);
SELECT taskflow._render_text(NULL, '{}', 't');
-- case matters
SELECT taskflow._render_text('${Name}', '{"Name": "upper", "name": "lower"}', 't');
-- multibyte text around variables
SELECT taskflow._render_text('日期=${bizdate} 表=${t:ident}', '{"bizdate": "2026-06-01", "t": "订单"}', 't');

-- names referenced by a template: distinct, in order of first appearance
SELECT * FROM taskflow._template_vars('SELECT ${b}, ${a:literal}, $${c}, ${b:ident}, ${_x1}, ${a}');
SELECT count(*) FROM taskflow._template_vars('no variables here, $${x}');
SELECT count(*) FROM taskflow._template_vars(NULL);

-- errors (22023), with the variable, what and position
\set VERBOSITY default
SELECT taskflow._render_text('SELECT ${foo}', '{"bizdate": "x", "run_id": "1", "flow": "f"}', 'node "extract" body');
SELECT taskflow._render_text('SELECT ${foo}', '{}', 'node "extract" body');
SELECT taskflow._render_text('SELECT ${foo}', NULL, NULL);
SELECT taskflow._render_text('SELECT ${a:quoted}', '{"a": 1}', 'node "x" body');
SELECT taskflow._render_text('SELECT ${a', '{"a": 1}', 'node "x" body');
SELECT taskflow._render_text('SELECT 1; ${', '{"a": 1}', 'node "x" body');
SELECT taskflow._render_text('SELECT ${a:literal', '{"a": 1}', 'node "x" body');
SELECT taskflow._render_text('äöü ${1a}', '{"a": 1}', 'node "x" body');
SELECT taskflow._render_text('${}', '{"a": 1}', 'node "x" body');
SELECT taskflow._render_text('${a b}', '{"a": 1}', 'node "x" body');
SELECT taskflow._render_text('${a-b}', '{"a": 1}', 'node "x" body');
SELECT taskflow._render_text('${z:ident}', '{"z": null}', 'node "x" body');
SELECT taskflow._render_text('${z:ident}', '{"z": ""}', 'node "x" body');
SELECT taskflow._render_text('x', '[1, 2]', 't');
SELECT * FROM taskflow._template_vars('${ok} ${bad');
SELECT * FROM taskflow._template_vars('${ok:upper}');
