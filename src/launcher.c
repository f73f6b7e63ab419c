/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The engine's entry point (tf_engine_init: GUCs, shared memory, hooks,
 *	  launcher registration) and the launcher: one static background worker
 *	  per cluster that keeps one scheduler per database where the extension
 *	  is installed.
 *
 *	  How the launcher knows where the extension is: it connects to no
 *	  database (shared catalogs only) and reads pg_database.  A database it
 *	  has not seen before is "probed": a scheduler is started there, and the
 *	  scheduler exits at once, marking its slot ABSENT, if the extension is
 *	  not installed (the pg_cron / TimescaleDB way).  Absent databases are not
 *	  probed again until a backend runs CREATE/ALTER EXTENSION taskflow there
 *	  (ProcessUtility hook or taskflow._wake_launcher(), delivered at commit);
 *	  DROP EXTENSION wakes the scheduler, which sees the extension gone and
 *	  exits.  A slow rescan (taskflow.launcher_rescan_interval, 60 s) re-reads
 *	  pg_database for new/dropped databases and restarts schedulers that died.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

int			tf_max_workers = 8;
char	   *tf_history_retention = NULL;
char	   *tf_test_clock = NULL;
int			tf_launcher_rescan_interval = 60;
int			tf_run_sweep_interval = 60;
int			tf_history_purge_interval = 3600;
int			tf_max_workers_per_owner = 0;
bool		tf_allow_group_owner = false;
int			tf_wait_timeout = 86400;
int			tf_max_catchup_runs = 1000;
bool		tf_worker_reuse = true;
int			tf_worker_idle_timeout = 60;
int			tf_worker_max_nodes = 1000;
bool		tf_scheduler_rehearsal = true;
bool		tf_scheduler_ready_incremental = true;
bool		tf_scheduler_prepare_due = true;

/* at most this many databases are probed at once */
#define TF_MAX_PROBES 4

/* launcher-local: handles of the schedulers we started, by db slot */
static BackgroundWorkerHandle *sched_handle[TF_MAX_DBS];
static TimestampTz restart_after[TF_MAX_DBS];

static void
tf_define_gucs(void)
{
	DefineCustomIntVariable("taskflow.max_workers",
							"Maximum number of node workers running at once in the cluster.",
							"Each running node is one background worker; also bounded by max_worker_processes.",
							&tf_max_workers, 8, 0, TF_MAX_WORKERS,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("taskflow.history_retention",
							   "How long finished runs are kept (interval, or a number of days; 0 keeps them forever).",
							   "Applied by each scheduler every taskflow.history_purge_interval (an hour).",
							   &tf_history_retention, "30 days",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.history_purge_interval",
							"Seconds between the schedulers' purges of history older than taskflow.history_retention.",
							"Mostly for tests; the default is an hour.",
							&tf_history_purge_interval, 3600, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomStringVariable("taskflow.test_clock",
							   "TEST ONLY: a timestamptz the schedulers use as the current time (empty: real time).",
							   "Set with ALTER SYSTEM and pg_reload_conf(); schedules fire as if it were that time.",
							   &tf_test_clock, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.launcher_rescan_interval",
							"Seconds between the launcher's safety rescans of pg_database.",
							NULL,
							&tf_launcher_rescan_interval, 60, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.run_sweep_interval",
							"Seconds between the schedulers' safety sweeps over every running run and every flow with scheduled runs.",
							"For tests and operators; the default is 60 s.  A sweep repairs what no change noted (docs/operations.md).",
							&tf_run_sweep_interval, 60, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	/*
	 * Per-owner settings: PGC_SUSET, so that only a superuser can set them
	 * for a role (ALTER ROLE x SET ...); the engine reads the owner's value
	 * from pg_db_role_setting (see taskflow._owner_settings), the value here
	 * is the cluster default.
	 */
	DefineCustomIntVariable("taskflow.max_workers_per_owner",
							"Maximum number of node workers running at once for the flows of one owner (0: no cap).",
							"Cluster-wide, over all databases.  A superuser can set it per role: ALTER ROLE x SET taskflow.max_workers_per_owner = N.",
							&tf_max_workers_per_owner, 0, 0, TF_MAX_WORKERS,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("taskflow.allow_group_owner",
							 "Let the flows of a role that cannot log in (a group role) run.",
							 "Meant per role, by a superuser: ALTER ROLE team SET taskflow.allow_group_owner = on (revoke with RESET).",
							 &tf_allow_group_owner, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.wait_timeout",
							"Default timeout of wait nodes without a timeout of their own (0: none).",
							NULL,
							&tf_wait_timeout, 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.max_catchup_runs",
							"Most missed periods of one flow that catch-up creates; older ones are skipped (logged, noted on the first run created).",
							NULL,
							&tf_max_catchup_runs, 1000, 1, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("taskflow.worker_reuse",
							 "Keep node workers warm: a worker that finished a node run waits for the next one of the same owner and database.",
							 "Off: one background worker per node attempt.",
							 &tf_worker_reuse, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.worker_idle_timeout",
							"Seconds a warm node worker waits for its next node run before it exits.",
							NULL,
							&tf_worker_idle_timeout, 60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("taskflow.scheduler_rehearsal",
							 "Rehearse the next due time: the scheduler runs its tick for it ahead, in a transaction it rolls back, so that its plans are ready when the time comes.",
							 "At most once a minute, one to taskflow.worker_idle_timeout seconds before a due time (docs/performance.md).",
							 &tf_scheduler_rehearsal, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("taskflow.scheduler_prepare_due",
							 "The scheduler creates the runs of a due time shortly before it, in a transaction it commits at that time, and hands their first nodes out then.",
							 "The lead is three times as long as the last such tick took plus 10 ms, 20 ms to 1 s; not under taskflow.test_clock (docs/performance.md).",
							 &tf_scheduler_prepare_due, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("taskflow.scheduler_ready_incremental",
							 "The scheduler's ready-node read looks only at the runs that changed since its last read (and the runs whose ready nodes it held back), not at every running run.",
							 "Every running run is looked at all the same every 60 s and at scheduler start (docs/performance.md). Off: every read looks at every running run, as before 1.5.",
							 &tf_scheduler_ready_incremental, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.worker_max_nodes",
							"Node runs one node worker process takes before it exits (and a fresh one is started).",
							NULL,
							&tf_worker_max_nodes, 1000, 1, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("taskflow");
}

void
tf_engine_init(void)
{
	BackgroundWorker worker;

	tf_define_gucs();

	if (!process_shared_preload_libraries_in_progress)
		return;

	tf_shmem_init();
	tf_hooks_init();

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "taskflow");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "tf_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "taskflow launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "taskflow launcher");
	RegisterBackgroundWorker(&worker);
}

static void
tf_launcher_detach(int code, Datum arg)
{
	SpinLockAcquire(&tf_shared->mutex);
	tf_shared->launcher_pid = 0;
	tf_shared->launcher_latch = NULL;
	SpinLockRelease(&tf_shared->mutex);
}

typedef struct TfDbInfo
{
	Oid			oid;
	char		name[NAMEDATALEN];
} TfDbInfo;

/* connectable, non-template databases, read from the shared catalog */
static List *
tf_database_list(void)
{
	List	   *res = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext outer = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database pgdb = (Form_pg_database) GETSTRUCT(tup);
		TfDbInfo   *info;
		MemoryContext old;

		if (!pgdb->datallowconn || pgdb->datistemplate)
			continue;
		old = MemoryContextSwitchTo(outer);
		info = palloc0(sizeof(TfDbInfo));
		info->oid = pgdb->oid;
		strlcpy(info->name, NameStr(pgdb->datname), NAMEDATALEN);
		res = lappend(res, info);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return res;
}

/* sync dbs[] with pg_database: add new databases, free dropped ones */
static void
tf_launcher_rescan(void)
{
	List	   *dbs = tf_database_list();
	ListCell   *lc;
	int			i;
	bool		dropped[TF_MAX_DBS] = {0};

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_DBS; i++)
	{
		TfDbSlot   *d = &tf_shared->dbs[i];
		bool		exists = false;

		if (d->state == TF_DB_FREE)
			continue;
		foreach(lc, dbs)
			if (((TfDbInfo *) lfirst(lc))->oid == d->dboid)
				exists = true;
		if (!exists && d->pid == 0)
		{
			/* database dropped */
			memset(d, 0, sizeof(TfDbSlot));
			dropped[i] = true;
		}
	}
	foreach(lc, dbs)
	{
		TfDbInfo   *info = lfirst(lc);
		int			freeslot = -1;
		bool		known = false;

		for (i = 0; i < TF_MAX_DBS; i++)
		{
			TfDbSlot   *d = &tf_shared->dbs[i];

			if (d->state == TF_DB_FREE)
			{
				if (freeslot < 0)
					freeslot = i;
			}
			else if (d->dboid == info->oid)
			{
				known = true;
				strlcpy(d->dbname, info->name, NAMEDATALEN);
			}
		}
		if (!known && freeslot >= 0)
		{
			TfDbSlot   *d = &tf_shared->dbs[freeslot];

			memset(d, 0, sizeof(TfDbSlot));
			d->dboid = info->oid;
			d->state = TF_DB_UNKNOWN;
			strlcpy(d->dbname, info->name, NAMEDATALEN);
			restart_after[freeslot] = 0;
		}
		else if (!known)
			elog(WARNING, "taskflow launcher: more than %d databases, ignoring \"%s\"",
				 TF_MAX_DBS, info->name);
	}
	SpinLockRelease(&tf_shared->mutex);
	list_free_deep(dbs);
	for (i = 0; i < TF_MAX_DBS; i++)
	{
		if (dropped[i] && sched_handle[i] != NULL)
		{
			pfree(sched_handle[i]);
			sched_handle[i] = NULL;
		}
	}
}

static bool
tf_start_scheduler(int slot, const char *dbname)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	tf_bgworker_init(&worker, "tf_scheduler_main", "taskflow scheduler",
					 psprintf("taskflow scheduler %s", dbname));
	worker.bgw_main_arg = Int32GetDatum(slot);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(WARNING,
				(errmsg("taskflow launcher: could not start a scheduler for database \"%s\"",
						dbname),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	sched_handle[slot] = handle;
	return true;
}

/*
 * One pass over the database slots: forget stopped schedulers, start the
 * ones that should run.  Returns milliseconds until something needs a look.
 */
static long
tf_launcher_pass(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		sleep_ms = tf_launcher_rescan_interval * 1000L;
	int			probing = 0;
	int			i;

	/* probes (schedulers of databases not known to have taskflow) in flight */
	for (i = 0; i < TF_MAX_DBS; i++)
		if (sched_handle[i] != NULL && tf_shared->dbs[i].state == TF_DB_UNKNOWN)
			probing++;

	for (i = 0; i < TF_MAX_DBS; i++)
	{
		TfDbSlot   *d = &tf_shared->dbs[i];
		pid_t		pid;
		TfDbState	state;
		bool		hint;
		TimestampTz blocked;
		char		dbname[NAMEDATALEN];

		if (sched_handle[i] != NULL &&
			GetBackgroundWorkerPid(sched_handle[i], &pid) == BGWH_STOPPED)
		{
			pfree(sched_handle[i]);
			sched_handle[i] = NULL;
		}

		/*
		 * A hint ("the extension changed here") is consumed only when no
		 * scheduler runs: a running scheduler (or probe) may have checked for
		 * the extension before the change committed and be about to mark the
		 * database ABSENT and exit; the hint must survive that to send us
		 * back to probing (DROP + CREATE EXTENSION, or CREATE DATABASE + CREATE
		 * EXTENSION, in quick succession).
		 */
		SpinLockAcquire(&tf_shared->mutex);
		state = d->state;
		pid = d->pid;
		hint = d->hint && pid == 0 && sched_handle[i] == NULL;
		if (hint)
			d->hint = false;
		if (hint && state == TF_DB_ABSENT)
			d->state = state = TF_DB_UNKNOWN;
		blocked = d->blocked_until;
		strlcpy(dbname, d->dbname, NAMEDATALEN);
		SpinLockRelease(&tf_shared->mutex);

		if (state == TF_DB_FREE || state == TF_DB_ABSENT)
			continue;
		if (sched_handle[i] != NULL || pid != 0)
			continue;			/* running (or starting) */
		if (hint)
			restart_after[i] = 0;
		if (blocked > now || restart_after[i] > now)
		{
			TimestampTz until = Max(blocked, restart_after[i]);
			long		ms = TimestampDifferenceMilliseconds(now, until) + 1;

			sleep_ms = Min(sleep_ms, ms);
			continue;
		}
		if (state == TF_DB_UNKNOWN && probing >= TF_MAX_PROBES)
		{
			sleep_ms = Min(sleep_ms, 100);	/* a probe exits quickly */
			continue;
		}
		if (tf_start_scheduler(i, dbname))
		{
			restart_after[i] = TimestampTzPlusMilliseconds(now, 5000);
			if (state == TF_DB_UNKNOWN)
				probing++;
		}
		else
		{
			restart_after[i] = TimestampTzPlusMilliseconds(now, 10000);
			sleep_ms = Min(sleep_ms, 10000);
		}
	}
	return sleep_ms;
}

void
tf_launcher_main(Datum arg)
{
	TimestampTz last_rescan = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("taskflow launcher");

	SpinLockAcquire(&tf_shared->mutex);
	tf_shared->launcher_pid = MyProcPid;
	tf_shared->launcher_latch = MyLatch;
	tf_shared->rescan = true;
	SpinLockRelease(&tf_shared->mutex);
	before_shmem_exit(tf_launcher_detach, (Datum) 0);

	ereport(LOG, (errmsg("taskflow launcher started")));

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		bool		rescan;
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		SpinLockAcquire(&tf_shared->mutex);
		rescan = tf_shared->rescan;
		tf_shared->rescan = false;
		SpinLockRelease(&tf_shared->mutex);
		if (rescan ||
			TimestampDifferenceExceeds(last_rescan, now,
									   tf_launcher_rescan_interval * 1000))
		{
			tf_launcher_rescan();
			last_rescan = now;
		}

		sleep_ms = tf_launcher_pass();
		sleep_ms = Min(sleep_ms,
					   TimestampDifferenceMilliseconds(now,
													   TimestampTzPlusMilliseconds(last_rescan,
																				   tf_launcher_rescan_interval * 1000L)) + 1);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(sleep_ms, 10L), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
