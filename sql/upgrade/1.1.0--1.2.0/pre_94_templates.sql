-- taskflow 1.1.0 -> 1.2.0, catalog delta of part 94 (users' templates): the
-- twin of sql/src/94_templates.once.sql.
CREATE TABLE taskflow.user_templates (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$'),
    owner       regrole NOT NULL DEFAULT current_user::regrole,
    description text NOT NULL DEFAULT '',
    parameters  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(parameters) = 'object'),
    definition  jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE taskflow.user_templates ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_templates_member ON taskflow.user_templates
    USING (taskflow._is_member(owner)) WITH CHECK (taskflow._is_member(owner));
GRANT SELECT, DELETE ON taskflow.user_templates TO PUBLIC;
GRANT INSERT (name, owner, description, parameters, definition),
      UPDATE (name, owner, description, parameters, definition) ON taskflow.user_templates TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('taskflow.user_templates', '');
