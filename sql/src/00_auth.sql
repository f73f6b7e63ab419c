-- taskflow extension script, part 00_auth: the membership test of the row
-- level security policies (replayable: runs on CREATE and on UPDATE).
--
-- Is the current role a member of (or the same as) the flow owner?
-- Superusers bypass RLS anyway; this is what the policies use.
CREATE OR REPLACE FUNCTION taskflow._is_member(owner regrole) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT pg_has_role(current_user, owner, 'MEMBER') $$;
