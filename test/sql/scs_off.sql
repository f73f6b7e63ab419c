-- Review of 1.5 (docs/security.md): the extension's SQL and PL/pgSQL bodies
-- mean the same under standard_conforming_strings = off, which every role
-- may set in its own session.  A body's string literals are parsed under
-- the caller's setting; '\$\{...' then lost its backslashes, so the
-- output-variable check of add_node never matched and a node using the
-- output of a node that is not upstream of it was accepted (1.5).  Every
-- literal with a backslash is now an E'' literal (the same under both).
SET standard_conforming_strings = off;
SET escape_string_warning = on;   -- (a non-E literal with a backslash would warn)
CREATE ROLE regress_scs LOGIN;
SET ROLE regress_scs;
SELECT taskflow.create_flow('scs_flow') > 0 AS created;
SELECT taskflow.add_node('scs_flow', 'a', 'sql', 'SELECT 1 AS x') > 0 AS a;
-- not upstream: refused (22023), nothing written
\set VERBOSITY terse
SELECT taskflow.add_node('scs_flow', 'c', 'sql', 'SELECT ${a.x}');
\set VERBOSITY default
SELECT count(*) AS nodes FROM taskflow.nodes n JOIN taskflow.flows f ON f.id = n.flow_id WHERE f.name = 'scs_flow';
-- downstream: accepted
SELECT taskflow.add_node('scs_flow', 'b', 'sql', 'SELECT ${a.x}', after => ARRAY['a']) > 0 AS b;
-- a renamed/dropped upstream is checked too (_check_flow_outputs)
\set VERBOSITY terse
SELECT taskflow.drop_edge('scs_flow', 'a', 'b');
\set VERBOSITY default
-- variable definitions parse the same ("... of bizdate")
SELECT taskflow.set_variable('scs_flow', 'yr', 'yyyy of bizdate');
SELECT definition FROM taskflow.variables v JOIN taskflow.flows f ON f.id = v.flow_id WHERE f.name = 'scs_flow';
SELECT taskflow.add_node('scs_flow', 'v', 'sql', 'SELECT ${yr}') > 0 AS v;
SELECT taskflow.render('scs_flow', 'v', bizdate => '2024-03-05');
-- flow_graph writes DOT's \n escapes, not newlines
SELECT strpos(g, E'\\n') > 0 AS dot_escape, strpos(g, E'[label="a\n') = 0 AS no_raw_newline
  FROM taskflow.flow_graph('scs_flow') g;
SELECT taskflow.drop_flow('scs_flow');
RESET ROLE;
DROP ROLE regress_scs;
RESET standard_conforming_strings;

-- no body of the extension has a non-E string literal with a backslash
-- (line comments left out; '' inside a literal is a quote)
WITH f AS (
  SELECT p.oid::regprocedure AS fn, regexp_replace(p.prosrc, '--[^\n]*', '', 'g') AS src
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
   WHERE p.pronamespace = 'taskflow'::regnamespace AND l.lanname IN ('sql', 'plpgsql'))
SELECT fn, m[3] AS literal
  FROM f, regexp_matches(f.src, '(^|[^A-Za-z0-9_])([Ee]?)''((?:[^'']|'''')*)''', 'g') m
 WHERE m[2] = '' AND strpos(m[3], E'\\') > 0
 ORDER BY 1::text, 2;
