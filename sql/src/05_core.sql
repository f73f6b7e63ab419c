-- taskflow extension script, part 05: schedules and variable rendering (C).
-- Owner: schedule.c / variables.c.  See docs/schedules.md, docs/variables.md.

-- Raises ERROR 22023 (naming the bad field) if the schedule is malformed.
-- NULL (manual runs only) is valid.
CREATE OR REPLACE FUNCTION taskflow._schedule_validate(schedule text) RETURNS void
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tf_schedule_validate_sql';

-- The next fire times of a schedule, strictly after "from", evaluated in
-- the given time zone.  A NULL schedule (manual only) gives no rows.
CREATE OR REPLACE FUNCTION taskflow.next_runs(schedule text,
                                   "from" timestamptz DEFAULT now(),
                                   count integer DEFAULT 5,
                                   timezone text DEFAULT current_setting('TimeZone'))
RETURNS SETOF timestamptz
LANGUAGE c STABLE PARALLEL SAFE ROWS 5
AS 'MODULE_PATHNAME', 'tf_next_runs';
COMMENT ON FUNCTION taskflow.next_runs(text, timestamptz, integer, text) IS
'next fire times of a schedule (cron, @shortcut, every N unit, timestamp) after "from"';

-- ${name}, ${name:literal}, ${name:ident} substitution ($${ = literal "${").
-- vars: jsonb object name -> value; what names the template in errors.
CREATE OR REPLACE FUNCTION taskflow._render_text(template text, vars jsonb, what text DEFAULT 'template')
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tf_render_text';

-- Distinct variable names a template references, in order of first appearance.
CREATE OR REPLACE FUNCTION taskflow._template_vars(template text) RETURNS SETOF text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE ROWS 5
AS 'MODULE_PATHNAME', 'tf_template_vars';
