-- Direct writes to taskflow.variables go through set_variable's parser (the
-- catalog guard, part 15): the parsed columns the engine renders from
-- (pattern, base, shift) are recomputed from the definition, bad definitions
-- and reserved names are refused with set_variable's errors, nothing changes.
SET intervalstyle = 'postgres';
CREATE ROLE regress_gv_owner LOGIN;
SET ROLE regress_gv_owner;
SELECT taskflow.create_flow('gv') > 0 AS created;
SELECT taskflow.set_variable('gv', 'year', 'yyyy of bizdate');
CREATE TEMP VIEW gv_vars AS
SELECT v.name, v.definition, v.is_constant, v.pattern, v.base, v.shift
  FROM taskflow.variables v JOIN taskflow.flows f ON f.id = v.flow_id WHERE f.name = 'gv'
 ORDER BY name;

-- a hand-written shift is replaced by the definition's (none here)
SELECT regress.try($$INSERT INTO taskflow.variables (flow_id, name, definition, pattern, base, shift)
                     SELECT id, 'sneaky', 'yyyymmdd of bizdate', 'yyyy', 'bizdate', '100000000 years'
                       FROM taskflow.flows WHERE name = 'gv'$$);
-- an UPDATE of the definition recomputes the parsed columns
SELECT regress.try($$UPDATE taskflow.variables SET definition = 'mm of cyctime - 1 hour'
                     WHERE name = 'year'$$);
SELECT * FROM gv_vars;

-- refused like set_variable: a shift out of range, a bad definition, a reserved name
SELECT regress.try($$UPDATE taskflow.variables SET definition = 'yyyy of bizdate + 100000000 years'
                     WHERE name = 'year'$$);
SELECT regress.try($$INSERT INTO taskflow.variables (flow_id, name, definition)
                     SELECT id, 'bad', 'yyyy of tomorrow' FROM taskflow.flows WHERE name = 'gv'$$);
SELECT regress.try($$INSERT INTO taskflow.variables (flow_id, name, definition, is_constant)
                     SELECT id, 'bizdate', '2020-01-01', true FROM taskflow.flows WHERE name = 'gv'$$);
-- a constant keeps no parsed columns
SELECT regress.try($$INSERT INTO taskflow.variables (flow_id, name, definition, is_constant, pattern)
                     SELECT id, 'region', 'eu', true, 'yyyy' FROM taskflow.flows WHERE name = 'gv'$$);
-- nothing of the refused writes is there
SELECT * FROM gv_vars;
-- renders with the recomputed columns
SELECT taskflow.add_node('gv', 'n', 'sql', 'SELECT ${sneaky:literal}, ${year:literal}, ${region:literal}') > 0 AS added;
SELECT taskflow.render('gv', 'n', '2020-06-01');

-- a variable cannot move to another flow
SELECT taskflow.create_flow('gv2') > 0 AS created;
SELECT regress.try($$UPDATE taskflow.variables SET flow_id = (SELECT id FROM taskflow.flows WHERE name = 'gv2')
                     WHERE name = 'region'$$);
DROP VIEW gv_vars;
RESET ROLE;
SELECT taskflow.drop_flow('gv');
SELECT taskflow.drop_flow('gv2');
DROP ROLE regress_gv_owner;
