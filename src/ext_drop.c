/*-------------------------------------------------------------------------
 *
 * ext_drop.c
 *	  DROP EXTENSION taskflow against the engine's own processes (race6,
 *	  1.8): the statement must not wait for long, and never fail, because
 *	  of taskflow's scheduler, alert worker or node workers.
 *
 *	  Every engine transaction takes a share lock on the extension before
 *	  anything else (tf_lock_extension, scheduler.c), so that DROP EXTENSION,
 *	  which locks the extension first and then its tables, waits for them up
 *	  front instead of deadlocking with them half-way (the scheduler's alert
 *	  step did not, until 1.8: "deadlock detected" in the user's DROP
 *	  EXTENSION, test 089).  The scheduler's and the alert worker's
 *	  transactions are short.  A node worker's holds that lock for as long as
 *	  its node runs: a DROP EXTENSION waited for the longest running node of
 *	  the database (minutes, hours).
 *
 *	  tf_ext_drop_clear_way(), from the ProcessUtility hook (shmem.c) before
 *	  a DROP EXTENSION that names taskflow: takes the extension's lock
 *	  without waiting if it can (the DROP then holds it already); otherwise
 *	  it waits up to TF_DROP_GRACE_MS for the short transactions to end,
 *	  then terminates the node workers of this database that run a node (as
 *	  cancel_run does: their runs go with the extension) and tries again,
 *	  terminating any started since once a second, for at most
 *	  TF_DROP_MAX_WAIT_MS; after that the DROP waits in the lock queue as it
 *	  would without us.  Only for a role that may drop the extension (its
 *	  owner or a superuser), checked before any lock or signal: any other
 *	  role's DROP fails its own permission check and stops nothing.  A DROP
 *	  EXTENSION that is rolled back afterwards (or fails on dependent objects)
 *	  has still stopped the running nodes (docs/operations.md).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include <signal.h>

#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/acl.h"

/* wait this long for the short engine transactions before stopping nodes */
#define TF_DROP_GRACE_MS	1000
/* and at most this long in all before waiting in the lock queue */
#define TF_DROP_MAX_WAIT_MS 10000
#define TF_DROP_POLL_MS		10

/* DROP EXTENSION naming taskflow? */
static bool
tf_drops_taskflow(Node *parsetree)
{
	ListCell   *lc;

	if (!IsA(parsetree, DropStmt) ||
		((DropStmt *) parsetree)->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, ((DropStmt *) parsetree)->objects)
	{
		Node	   *obj = lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), "taskflow") == 0)
			return true;
	}
	return false;
}

/* SIGTERM to the node workers of this database that run a node; how many */
static int
tf_terminate_node_workers(void)
{
	pid_t		pids[TF_MAX_WORKERS];
	int			npids = 0;
	int			i;

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_WORKERS; i++)
	{
		TfWorkerSlot *w = &tf_shared->workers[i];

		if (w->in_use && w->dboid == MyDatabaseId && w->pid != 0 && !w->idle)
			pids[npids++] = w->pid;
	}
	SpinLockRelease(&tf_shared->mutex);
	for (i = 0; i < npids; i++)
		(void) kill(pids[i], SIGTERM);
	return npids;
}

void
tf_ext_drop_clear_way(Node *parsetree)
{
	Oid			ext;
	LOCKTAG		tag;
	int			waited = 0;
	int			next_stop = TF_DROP_GRACE_MS;

	if (tf_shared == NULL || !tf_drops_taskflow(parsetree))
		return;
	ext = get_extension_oid("taskflow", true);
	if (!OidIsValid(ext) || !pg_extension_ownercheck(ext, GetUserId()))
		return;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, ExtensionRelationId, ext, 0);
	for (;;)
	{
		/* held to the end of the transaction, as the DROP's own lock */
		if (LockAcquire(&tag, AccessExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
			return;
		if (waited >= TF_DROP_MAX_WAIT_MS)
			return;
		if (waited >= next_stop)
		{
			int			n = tf_terminate_node_workers();

			if (n > 0)
				ereport(LOG,
						(errmsg("taskflow: DROP EXTENSION stops %d running node%s of database \"%s\"",
								n, n == 1 ? "" : "s", get_database_name(MyDatabaseId))));
			next_stop += 1000;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TF_DROP_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited += TF_DROP_POLL_MS;
	}
}
