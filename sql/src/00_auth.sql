-- taskflow extension script, part 00_auth: the membership test of the row
-- level security policies (replayable: runs on CREATE and on UPDATE).
--
-- Is the current role a member of (or the same as) the flow owner?
-- Superusers bypass RLS anyway; this is what the policies use.
--
-- Security: this function is inlined into every policy expression and so is
-- planned under the *caller's* search_path; it must not pin search_path
-- (that would stop the inlining) and therefore qualifies every function,
-- operator and type it uses with pg_catalog.  An unqualified pg_has_role
-- would resolve to a caller's own pg_has_role(name, regrole, text) (an exact
-- match beats pg_catalog's (name, oid, text)) and open every flow to it.
-- test/sql/security.sql checks that every unpinned function stays qualified.
CREATE OR REPLACE FUNCTION taskflow._is_member(owner regrole) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT pg_catalog.pg_has_role(CURRENT_USER, owner::pg_catalog.oid, 'MEMBER'::pg_catalog.text) $$;
