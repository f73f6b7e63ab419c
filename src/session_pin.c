/*-------------------------------------------------------------------------
 *
 * session_pin.c
 *	  The settings of taskflow's own background sessions (the scheduler, the
 *	  alert delivery worker, the node workers).
 *
 *	  A background worker that connects to a database takes that database's
 *	  and its role's defaults (ALTER DATABASE / ALTER ROLE ... SET), which a
 *	  database owner or a flow owner controls, and keeps them for life.
 *	  Some of them would stop the engine's own book-keeping: with
 *	  default_transaction_read_only = on every pass of the scheduler failed
 *	  ("cannot execute SELECT FOR NO KEY UPDATE in a read-only
 *	  transaction") and no run of any owner in that database started, and it
 *	  went on failing after the setting was reset, until the scheduler was
 *	  restarted; default_transaction_isolation = serializable / repeatable
 *	  read made concurrent passes and workers fail each other's updates, and
 *	  a lock_timeout failed a pass or a worker's record of a finished node
 *	  run whenever the other held a row lock a bit longer (review of 1.4,
 *	  docs/security.md).
 *
 *	  Two more (review of 1.5): exit_on_error, which a database owner may set
 *	  (PGC_USERSET), turns every ERROR into FATAL, even inside PG_TRY and a
 *	  PL/pgSQL exception block: a failing node's worker exited before it
 *	  recorded the error ("exited without recording a result", the message
 *	  lost), and every error the scheduler's passes catch (a flow that
 *	  cannot be advanced, a failed dispatch) ended the scheduler; and
 *	  session_replication_role = replica (a superuser's ALTER DATABASE /
 *	  ALTER ROLE ... SET) skipped the engine's own triggers -- the change
 *	  queue of part 51, so a run advanced only at the 60 s safety sweep (a
 *	  3-node chain took 2 minutes instead of 65 ms) -- and the foreign-key
 *	  cascades of the scheduler's purge.
 *
 *	  tf_pin_session_settings() pins them (and search_path, see the review
 *	  of 1.3) at PGC_S_OVERRIDE right after the connection, above the
 *	  database's and role's defaults; RESET ALL (a warm worker's session
 *	  reset) returns to these values.  A node's own SQL can still SET them
 *	  for itself (its node timeout is the node's "timeout" option, see
 *	  worker.c; statement_timeout and idle_in_transaction_session_timeout
 *	  are not armed in a background worker anyway, but are pinned too so
 *	  that nothing depends on that).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "utils/guc.h"

void
tf_pin_session_settings(bool search_path)
{
	if (search_path)
		SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_deferrable", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("exit_on_error", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("session_replication_role", "origin", PGC_SUSET, PGC_S_OVERRIDE);
}
