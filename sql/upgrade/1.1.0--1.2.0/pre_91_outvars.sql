-- taskflow 1.1.0 -> 1.2.0: output variables (twin of sql/src/91_outvars.once.sql)
ALTER TABLE taskflow.node_runs ADD COLUMN outputs jsonb;

-- render() gained run_id (see sql/src/10_api.sql)
DROP FUNCTION taskflow.render(text, text, date, jsonb);
