-- taskflow extension script, part 99: hardening of the 1.5.0 review of what
-- 1.4 added (replayable).  Owner: review2.  See docs/security.md ("Review
-- of 1.4").

-- The launcher's wake (re-read pg_database, look at this database again):
-- only the install script calls it (as the extension's owner); every role
-- could call it in a loop and keep the cluster's launcher and this
-- database's scheduler busy.  (taskflow._wake() stays executable: the
-- triggers on a user's own catalog writes call it as that user.)
REVOKE ALL ON FUNCTION taskflow._wake_launcher() FROM PUBLIC;
