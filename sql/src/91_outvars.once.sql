-- taskflow extension script, part 91_outvars (install-only): output
-- variables of sql nodes.  Twin: sql/upgrade/1.1.0--1.2.0/pre_91_outvars.sql.
--
-- node_runs.outputs: the first row of the last statement of an sql node's
-- script, as a JSON object of text values (null for SQL NULL), recorded with
-- the node's success in its transaction; copied by rerun to the nodes it
-- does not run again.  Downstream nodes read them as ${node.column}.
ALTER TABLE taskflow.node_runs ADD COLUMN outputs jsonb;
