/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  taskflow's shared memory (database slots, node worker slots), the
 *	  "wake" plumbing that lets ordinary backends poke the launcher and the
 *	  schedulers, and the ProcessUtility hook that notices CREATE/DROP
 *	  EXTENSION taskflow, CREATE DATABASE and DROP DATABASE.
 *
 *	  Wakes requested inside a transaction are delivered at commit (an
 *	  XactCallback), so the woken process sees the committed change.
 *
 *	  SQL: taskflow._wake(), taskflow._wake_launcher(),
 *	  taskflow._terminate_run_workers() (cancel_run).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tf_sql_wake);
PG_FUNCTION_INFO_V1(tf_sql_wake_launcher);
PG_FUNCTION_INFO_V1(tf_sql_terminate_run_workers);

TfShared   *tf_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* wakes pending until this transaction commits */
static bool xact_cb_registered = false;
static bool pending_launcher = false;
static bool pending_scheduler = false;
static bool pending_rescan = false;

static void
tf_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(TfShared)));
}

static void
tf_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	tf_shared = ShmemInitStruct("taskflow", sizeof(TfShared), &found);
	if (!found)
	{
		memset(tf_shared, 0, sizeof(TfShared));
		SpinLockInit(&tf_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Describe one of our dynamic background workers (scheduler, node worker,
 * cross-database worker): database connection, never restarted.  The caller
 * sets bgw_main_arg, bgw_extra and bgw_notify_pid.
 */
void
tf_bgworker_init(BackgroundWorker *worker, const char *function,
				 const char *type, const char *name)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker->bgw_library_name, "taskflow", BGW_MAXLEN);
	strlcpy(worker->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker->bgw_type, type, BGW_MAXLEN);
	strlcpy(worker->bgw_name, name, BGW_MAXLEN);
}

/* ---- wakes ---- */

void
tf_wake_launcher_now(bool rescan)
{
	Latch	   *latch;

	if (tf_shared == NULL)
		return;
	SpinLockAcquire(&tf_shared->mutex);
	if (rescan)
		tf_shared->rescan = true;
	latch = tf_shared->launcher_latch;
	SpinLockRelease(&tf_shared->mutex);
	if (latch)
		SetLatch(latch);
}

void
tf_wake_scheduler_now(Oid dboid)
{
	Latch	   *latch = NULL;
	int			i;

	if (tf_shared == NULL)
		return;
	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_DBS; i++)
	{
		if (tf_shared->dbs[i].state != TF_DB_FREE &&
			tf_shared->dbs[i].dboid == dboid)
		{
			latch = tf_shared->dbs[i].latch;
			break;
		}
	}
	SpinLockRelease(&tf_shared->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * A node worker slot just freed: wake the schedulers of the other databases
 * that have ready nodes held back by taskflow.max_workers or a per-owner cap
 * (their "waiting" flag), so that they do not wait for their next timer.
 */
void
tf_wake_waiting_schedulers(Oid except)
{
	Latch	   *latches[TF_MAX_DBS];
	int			n = 0;
	int			i;

	if (tf_shared == NULL)
		return;
	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_DBS; i++)
	{
		TfDbSlot   *d = &tf_shared->dbs[i];

		if (d->state != TF_DB_FREE && d->waiting && d->dboid != except &&
			d->latch != NULL)
			latches[n++] = d->latch;
	}
	SpinLockRelease(&tf_shared->mutex);
	for (i = 0; i < n; i++)
		SetLatch(latches[i]);
}

/* mark this database's slot "look again" (extension created/dropped) */
static void
tf_hint_database(Oid dboid)
{
	int			i;

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_DBS; i++)
	{
		if (tf_shared->dbs[i].state != TF_DB_FREE &&
			tf_shared->dbs[i].dboid == dboid)
		{
			tf_shared->dbs[i].hint = true;
			break;
		}
	}
	/* not known yet: a rescan of pg_database will add it */
	tf_shared->rescan = true;
	SpinLockRelease(&tf_shared->mutex);
}

static void
tf_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (pending_launcher && tf_shared != NULL)
			{
				tf_hint_database(MyDatabaseId);
				tf_wake_launcher_now(true);
			}
			if (pending_scheduler)
				tf_wake_scheduler_now(MyDatabaseId);
			if (pending_rescan && !pending_launcher)
				tf_wake_launcher_now(true);
			pending_launcher = pending_scheduler = pending_rescan = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_launcher = pending_scheduler = pending_rescan = false;
			break;
		default:
			break;
	}
}

/*
 * Ask for the launcher (extension created/dropped here) and/or this
 * database's scheduler (catalog or run changed) to be woken when the current
 * transaction commits.  Outside a transaction, wake now.
 */
void
tf_wake_at_commit(bool launcher, bool scheduler)
{
	if (tf_shared == NULL)
		return;
	if (!IsTransactionState())
	{
		if (launcher)
		{
			tf_hint_database(MyDatabaseId);
			tf_wake_launcher_now(true);
		}
		if (scheduler)
			tf_wake_scheduler_now(MyDatabaseId);
		return;
	}
	if (!xact_cb_registered)
	{
		RegisterXactCallback(tf_xact_callback, NULL);
		xact_cb_registered = true;
	}
	pending_launcher |= launcher;
	pending_scheduler |= scheduler;
}

static void
tf_rescan_at_commit(void)
{
	if (tf_shared == NULL)
		return;
	if (!xact_cb_registered)
	{
		RegisterXactCallback(tf_xact_callback, NULL);
		xact_cb_registered = true;
	}
	pending_rescan = true;
}

/* node workers running (or starting) a node run; idle warm workers are not */
int
tf_workers_busy(void)
{
	int			n = 0;
	int			i;

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_WORKERS; i++)
		if (tf_shared->workers[i].in_use && !tf_shared->workers[i].idle)
			n++;
	SpinLockRelease(&tf_shared->mutex);
	return n;
}

/*
 * taskflow._terminate_run_workers(run_id): terminate the node workers of
 * this database running a node run of that run (cancel_run).  A warm worker
 * moves from node run to node run: it is chosen by what its slot says it
 * runs now, not by a pid recorded earlier, and it is marked exit_requested
 * under the same lock, so that it never takes another node run (it exits
 * after the current one at the latest); the SIGTERM can thus only reach a
 * worker that runs, or has just finished, a node run of this run.
 * Superuser only (called by _op_cancel_run through the gate).
 */
Datum
tf_sql_terminate_run_workers(PG_FUNCTION_ARGS)
{
	int64		run_id = PG_GETARG_INT64(0);
	pid_t		pids[TF_MAX_WORKERS];
	int			n = 0;
	int			i;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to terminate node workers")));
	if (tf_shared == NULL)
		PG_RETURN_INT32(0);
	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_WORKERS; i++)
	{
		TfWorkerSlot *w = &tf_shared->workers[i];

		if (w->in_use && !w->idle && w->dboid == MyDatabaseId && w->run_id == run_id)
		{
			w->exit_requested = true;
			if (w->pid != 0)
				pids[n++] = w->pid;
		}
	}
	SpinLockRelease(&tf_shared->mutex);
	for (i = 0; i < n; i++)
		kill(pids[i], SIGTERM);
	PG_RETURN_INT32(n);
}

/* ---- SQL ---- */

/* taskflow._wake(): wake this database's scheduler at commit */
Datum
tf_sql_wake(PG_FUNCTION_ARGS)
{
	tf_wake_at_commit(false, true);
	PG_RETURN_VOID();
}

/* taskflow._wake_launcher(): have the launcher look at this database again */
Datum
tf_sql_wake_launcher(PG_FUNCTION_ARGS)
{
	tf_wake_at_commit(true, true);
	PG_RETURN_VOID();
}

/* ---- DROP DATABASE / CREATE DATABASE ... TEMPLATE: get out of the way ---- */

/*
 * DROP DATABASE (and CREATE DATABASE from a template) fail while other
 * sessions are connected to that database.  Block the launcher from
 * (re)starting a scheduler there for a while, terminate the scheduler, the
 * alert delivery worker and the node workers of that database (and the second workers of
 * cross-database nodes running there, crossdb.c), and wait (up to 5 s)
 * until they are gone.  tf_unblock_db() lifts the block once the command is done; if the
 * backend dies in between, the block expires after 30 s.
 */
static void
tf_evict_db(Oid dboid)
{
	int			waited;

	if (!OidIsValid(dboid) || tf_shared == NULL)
		return;

	for (waited = 0; waited < 500; waited++)
	{
		pid_t		pids[TF_MAX_WORKERS + 2];
		int			npids = 0;
		int			i;

		SpinLockAcquire(&tf_shared->mutex);
		for (i = 0; i < TF_MAX_DBS; i++)
		{
			TfDbSlot   *d = &tf_shared->dbs[i];

			if (d->state == TF_DB_FREE || d->dboid != dboid)
				continue;
			d->blocked_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														   30000);
			if (d->pid != 0)
				pids[npids++] = d->pid;
			if (d->alerts_pid != 0)
				pids[npids++] = d->alerts_pid;	/* alerts.c */
		}
		for (i = 0; i < TF_MAX_WORKERS && npids <= TF_MAX_WORKERS; i++)
		{
			TfWorkerSlot *w = &tf_shared->workers[i];

			if (w->in_use && w->dboid == dboid && w->pid != 0)
				pids[npids++] = w->pid;
			/* the second worker of a cross-database node running there */
			else if (w->in_use && w->remote_dboid == dboid && w->remote_pid != 0)
				pids[npids++] = w->remote_pid;
		}
		SpinLockRelease(&tf_shared->mutex);
		if (npids == 0)
			break;
		for (i = 0; i < npids; i++)
			kill(pids[i], SIGTERM);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
tf_unblock_db(Oid dboid)
{
	int			i;

	if (!OidIsValid(dboid) || tf_shared == NULL)
		return;
	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_DBS; i++)
		if (tf_shared->dbs[i].state != TF_DB_FREE && tf_shared->dbs[i].dboid == dboid)
		{
			tf_shared->dbs[i].blocked_until = 0;
			tf_shared->dbs[i].hint = true;	/* restart without backoff */
		}
	tf_shared->rescan = true;
	SpinLockRelease(&tf_shared->mutex);
}

/* the database a CREATE DATABASE copies (TEMPLATE option), if any */
static Oid
tf_createdb_template(CreatedbStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "template") == 0 && def->arg != NULL)
			return get_database_oid(defGetString(def), true);
	}
	return InvalidOid;
}

/* ALTER DATABASE x SET TABLESPACE y (needs x to be unused, like DROP) */
static bool
tf_alterdb_moves_tablespace(AlterDatabaseStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "tablespace") == 0)
			return true;
	}
	return false;
}

/*
 * The database (if any) whose scheduler and node workers must get out of
 * the way of this utility statement, because the command fails while other
 * sessions use it: DROP DATABASE, CREATE DATABASE ... TEMPLATE x, ALTER
 * DATABASE ... RENAME / SET TABLESPACE.
 *
 * Only when the current user owns that database (all of these commands
 * require it; a superuser owns everything): otherwise the command is bound
 * to fail its permission check, and any role could stop the schedulers and
 * kill the running nodes of any database just by trying.
 */
static Oid
tf_database_to_evict(Node *parsetree)
{
	Oid			dboid = InvalidOid;

	if (IsA(parsetree, DropdbStmt))
		dboid = get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
	else if (IsA(parsetree, CreatedbStmt))
		dboid = tf_createdb_template((CreatedbStmt *) parsetree);
	else if (IsA(parsetree, RenameStmt) &&
			 ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		dboid = get_database_oid(((RenameStmt *) parsetree)->subname, true);
	else if (IsA(parsetree, AlterDatabaseStmt) &&
			 tf_alterdb_moves_tablespace((AlterDatabaseStmt *) parsetree))
		dboid = get_database_oid(((AlterDatabaseStmt *) parsetree)->dbname, true);

	if (!OidIsValid(dboid) || dboid == MyDatabaseId ||
		!pg_database_ownercheck(dboid, GetUserId()))
		return InvalidOid;
	return dboid;
}

static bool
tf_is_our_extension_stmt(Node *parsetree)
{
	if (IsA(parsetree, CreateExtensionStmt))
		return strcmp(((CreateExtensionStmt *) parsetree)->extname, "taskflow") == 0;
	if (IsA(parsetree, AlterExtensionStmt))
		return strcmp(((AlterExtensionStmt *) parsetree)->extname, "taskflow") == 0;
	if (IsA(parsetree, DropStmt) &&
		((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION)
	{
		ListCell   *lc;

		foreach(lc, ((DropStmt *) parsetree)->objects)
		{
			Node	   *obj = lfirst(lc);

			if (IsA(obj, String) && strcmp(strVal(obj), "taskflow") == 0)
				return true;
		}
	}
	return false;
}

static void
tf_process_utility(PlannedStmt *pstmt, const char *queryString,
				   bool readOnlyTree, ProcessUtilityContext context,
				   ParamListInfo params, QueryEnvironment *queryEnv,
				   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	Oid			evicted = tf_database_to_evict(parsetree);

	if (tf_is_our_extension_stmt(parsetree))
		tf_wake_at_commit(true, true);
	if (OidIsValid(evicted))
		tf_evict_db(evicted);
	tf_lock_guard_before(parsetree);	/* lock_guard.c */
	tf_ext_drop_clear_way(parsetree);	/* ext_drop.c */

	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		/* the command failed: the database's scheduler may come back */
		if (OidIsValid(evicted))
			tf_unblock_db(evicted);
		PG_RE_THROW();
	}
	PG_END_TRY();
	tf_lock_guard_after(parsetree);

	/*
	 * Template copied, database renamed or moved: its scheduler may come back
	 * (a dropped database stays blocked).
	 */
	if (OidIsValid(evicted) && !IsA(parsetree, DropdbStmt))
		tf_unblock_db(evicted);

	/*
	 * New database (maybe from a template with taskflow) / dropped / renamed
	 * one: the launcher re-reads pg_database once this commits.
	 */
	if (IsA(parsetree, CreatedbStmt) || IsA(parsetree, DropdbStmt) ||
		(IsA(parsetree, RenameStmt) &&
		 ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE))
		tf_rescan_at_commit();
}

void
tf_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tf_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tf_shmem_startup;
}

void
tf_hooks_init(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = tf_process_utility;
}
