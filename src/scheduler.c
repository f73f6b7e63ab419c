/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The per-database scheduler: a dynamic background worker started by
 *	  the launcher.  It sleeps on its latch until the next due time (the
 *	  earliest flows.next_due; no fixed tick; at most 60 s), and on each
 *	  pass, in SQL functions of sql/src/20_engine.sql, looks only at what is
 *	  due or changed (incremental passes, docs/performance.md):
 *	    - marks node runs left 'running' by a dead worker failed/retrying
 *	      (taskflow._sched_tick -> _sched_recover; a worker is alive while
 *	      its shared-memory slot is in use),
 *	    - creates due runs of the flows whose next_due has come or is NULL
 *	      (changed), at most TF_PASS_LIMIT flows per pass (run + node runs +
 *	      watermark + next_due in one transaction),
 *	    - advances the runs noted in taskflow.sched_queue (by triggers, in
 *	      the transactions that changed them): propagates upstream failures,
 *	      finishes runs with nothing left to do, promotes runs within
 *	      max_active_runs; a safety sweep does it for every active run every
 *	      taskflow.run_sweep_interval (60 s), and every flow is looked at
 *	      once at start and after each SIGHUP (flow_sweep_from),
 *	    - hands each ready node (taskflow._sched_ready_next: over the runs
 *	      that changed since the last read and those whose ready nodes were
 *	      held back, the ready set of part 99_ready) to an idle warm
 *	      worker of the same database and owner, or starts a node worker
 *	      for it, or reclaims an idle worker of another owner/database when
 *	      every place is taken (tf_reserve_worker_slot; also once before the
 *	      tick), up to taskflow.max_workers cluster-wide and the owner's
 *	      taskflow.max_workers_per_owner, fairly: owners with fewer running
 *	      workers first; ready nodes held back set this database's
 *	      "waiting" flag, so that any exiting worker wakes us, and other
 *	      databases leave the last free slots to a waiting database whose
 *	      owner has fewer running workers (tf_reserve_worker_slot).
 *	  A due time is prepared (taskflow.scheduler_prepare_due): the scheduler
 *	  wakes shortly before it, runs that time's tick and the ready-node read
 *	  in one transaction, holds it open until the time comes, commits and
 *	  hands the nodes out (tf_pass_tick, tf_hold_until): at the due time only
 *	  the commit and the hand-offs are left.  Whether ready work was left
 *	  behind (TfDbSlot.backlog) tells warm workers whether to look for it.
 *	  A capped step (a backlog) makes the next pass follow at once.
 *	  Between passes, while nothing is due and nothing woke it, it purges
 *	  history older than taskflow.history_retention (every
 *	  taskflow.history_purge_interval, in batches of TF_PURGE_BATCH runs,
 *	  one transaction each; tf_purge_while_idle).
 *	  Per-row work runs in subtransactions (sql/src/20_engine.sql): one bad
 *	  flow, run or node run fails only itself.
 *	  It is woken by flow changes that may be due soon, run operations, node
 *	  definitions deleted under a running run (triggers of part 51, at
 *	  commit), by finishing node workers (of any database, while we wait for
 *	  a slot), and by SIGHUP.
 *
 *	  "Now" for schedules is taskflow.test_clock when set (tests only).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define TF_MAX_SLEEP_MS		60000L
#define TF_MAX_NEW_RUNS		50		/* catch-up runs created per flow per pass */
#define TF_MAX_DISPATCH_TRIES 3		/* worker never started the node: give up */
#define TF_PASS_LIMIT		500		/* flows per pass (and 4 x 4 x this queue
									 * entries): a backlog takes several passes,
									 * with dispatch in between */
#define TF_PURGE_BATCH		500		/* runs deleted per purge transaction */
#define TF_PURGE_BUSY_MS	10000L	/* never idle: a purge batch this often */
#define TF_REHEARSE_MS		30000L	/* at most one rehearsal of a due time this often */
#define TF_REHEARSE_AHEAD_MS 2000L	/* ... this long before the due time */
#define TF_REHEARSE_LEAD_MS	200L	/* ... and never closer to it than this */
#define TF_START_RETRY_MIN_MS 250L	/* no process slot for a node worker: */
#define TF_START_RETRY_MAX_MS 8000L /* ... try again after 0.25, 0.5, ... 8 s */

static int	my_slot = -1;
static Oid	my_dboid = InvalidOid;

/* workers we started, by worker slot */
static BackgroundWorkerHandle *worker_handle[TF_MAX_WORKERS];
static uint32 worker_gen[TF_MAX_WORKERS];

/*
 * Dispatches of one attempt of a node run (node run id, attempts recorded
 * when it was dispatched).  A worker that starts the node bumps the attempt,
 * so only dispatches whose worker never marked the node run running count.
 */
typedef struct
{
	int64		node_run_id;
	int			attempt;
	int			tries;
} TfDispatchTry;
static TfDispatchTry dispatch_tries[TF_MAX_WORKERS * 2];

/*
 * The node runs live (handed to a worker) at the last ready-node read, and
 * those handed out after it: one that is no longer live at the next read
 * has either started (its run is noted when it finishes) or was given back
 * unstarted (the worker left): the read looks at its run again
 * (taskflow._sched_ready_runs, p_released).
 */
static int64 handed_ids[TF_MAX_WORKERS * 2];
static int	handed_n = 0;

/*
 * A node worker could not be started (RegisterDynamicBackgroundWorker
 * failed: every max_worker_processes slot taken, e.g. by parallel query
 * workers or another extension's): the next pass comes after this many ms
 * (doubling up to TF_START_RETRY_MAX_MS), 0 when the last start succeeded.
 * Nothing wakes the scheduler when a process slot that is not taskflow's
 * frees, so without it the ready node waited for the next wake, up to
 * TF_MAX_SLEEP_MS (review of 1.5, test/t/084_start_retry.pl).
 */
static long start_retry_ms = 0;

static TimestampTz last_purge = 0;
static TimestampTz purge_before = 0;	/* cut-off of the purge under way, or 0 */
static int64 purge_total = 0;

/*
 * The safety sweeps.  Flows: every flow is looked at (in pages of
 * TF_PASS_LIMIT by id, from flow_sweep_from) when the scheduler starts and
 * after each SIGHUP (taskflow.test_clock may have moved); -1: none under way.
 * Runs: every taskflow.run_sweep_interval (60 s), every running run is
 * advanced and every flow with scheduled runs is promoted, whatever the
 * change queue says.
 */
static int64 flow_sweep_from = 0;
static TimestampTz last_run_sweep = 0;

/* per-pass memory, reset at the top of each pass */
static MemoryContext pass_cxt = NULL;

/*
 * The last sleep ended by its timeout, not by the latch: no worker finished
 * meanwhile, so the pass goes straight to the tick (a due time came).
 */
static bool woke_by_timeout = false;

/* the passes after a due wake that left due flows for later (a burst) */
static bool in_burst = false;

/*
 * The tick of this pass (or, before it, of the last one) left work for the
 * next pass (a capped step: due runs not created yet): part of the backlog
 * hint (tf_set_backlog).
 */
static bool pass_more = false;

/*
 * Due runs prepared ahead (taskflow.scheduler_prepare_due): the tick of a
 * due time runs shortly before it, with now = that time, and holds its
 * transaction open until the time comes (tf_pass_tick): at the due time
 * only the commit and the hand-offs are left.  expected_due: the next due
 * time the last tick returned (scheduler clock); prepare_ms: how long the
 * prepared ticks took (the longest, decaying by a quarter per tick), from
 * which the lead is set (three times that plus 10 ms, within
 * TF_PREPARE_MIN_MS .. TF_PREPARE_MAX_MS: a busy machine stretches the
 * tick); prepare_start: when the tick under way began.
 */
#define TF_PREPARE_MIN_MS	20L
#define TF_PREPARE_MAX_MS	1000L
#define TF_PREPARE_FLOWS	128		/* flows of the set-based step prepared ahead */
static TimestampTz expected_due = 0;
static double prepare_ms = 0;
static TimestampTz prepare_start = 0;
static TimestampTz prepare_done = 0;	/* when its tick and read were done */
static long prepare_lead = 0;	/* the lead it was woken for (ms) */

/*
 * The rehearsal of a due time (tf_rehearse_due) runs the same set-based step
 * for the same flows shortly before it, so its duration predicts that due
 * time's prepared tick better than the ticks before it do: the first due
 * time of a burst (100 flows due after a pause: ~80-110 ms of tick on 2 busy
 * cores) came after warm ticks of a few flows (a 20 ms lead) and committed
 * ~90 ms late, every one of its runs with it (the 100-job p99 of
 * dispatch_ab.sh).  rehearsed_due (scheduler clock) and rehearsal_ms: the due
 * time rehearsed last and how long that took (0: failed or none); the lead
 * of that due time covers it as it covers prepare_ms (tf_prepare_lead_ms).
 * Only of that due time: the later ones go by their own prepared ticks.
 */
static TimestampTz rehearsed_due = 0;
static double rehearsal_ms = 0;

static bool
tf_prepare_enabled(void)
{
	/* not under taskflow.test_clock: its due times are not the real clock's */
	return tf_scheduler_prepare_due && (tf_test_clock == NULL || tf_test_clock[0] == '\0');
}

static long
tf_prepare_lead_ms(void)
{
	double		ms = prepare_ms;

	/* the due time coming next was rehearsed: its rehearsal's time too */
	if (expected_due != 0 && expected_due == rehearsed_due)
		ms = Max(ms, rehearsal_ms);
	return Min(TF_PREPARE_MAX_MS, Max(TF_PREPARE_MIN_MS, (long) (3 * ms) + 10));
}

static void
tf_note_prepare_time(TimestampTz done)
{
	double		ms = (double) (done - prepare_start) / 1000.0;

	prepare_done = done;
	prepare_ms = Max(ms, prepare_ms * 0.75);
}

TimestampTz
tf_scheduler_now(void)
{
	if (tf_test_clock != NULL && tf_test_clock[0] != '\0')
		return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
													   CStringGetDatum(tf_test_clock),
													   ObjectIdGetDatum(InvalidOid),
													   Int32GetDatum(-1)));
	return GetCurrentTimestamp();
}

static void
tf_scheduler_detach(int code, Datum arg)
{
	SpinLockAcquire(&tf_shared->mutex);
	if (tf_shared->dbs[my_slot].pid == MyProcPid)
	{
		tf_shared->dbs[my_slot].pid = 0;
		tf_shared->dbs[my_slot].latch = NULL;
		tf_shared->dbs[my_slot].waiting = false;
		tf_shared->dbs[my_slot].backlog = false;
		tf_shared->dbs[my_slot].nahead = 0;
		tf_shared->dbs[my_slot].ahead_taken = 0;
	}
	SpinLockRelease(&tf_shared->mutex);
	tf_wake_launcher_now(false);
}

static void
tf_set_db_state(TfDbState state)
{
	SpinLockAcquire(&tf_shared->mutex);
	tf_shared->dbs[my_slot].state = state;
	SpinLockRelease(&tf_shared->mutex);
}

/* ---- transactions ---- */

/*
 * Take a share lock on the extension (pg_extension row) for the current
 * transaction; false if the extension is not installed (any more).
 *
 * DROP EXTENSION locks the extension first (AccessExclusiveLock) and only
 * then its tables.  Engine transactions that touch the extension's tables
 * take this lock before anything else, so a DROP EXTENSION waits for them
 * up front (or they wait for it, and then find the extension gone) instead
 * of deadlocking with them half-way (which made the user's DROP EXTENSION
 * fail with "deadlock detected" now and then).
 */
bool
tf_lock_extension(void)
{
	Oid			ext = get_extension_oid("taskflow", true);

	if (!OidIsValid(ext))
		return false;
	LockDatabaseObject(ExtensionRelationId, ext, 0, AccessShareLock);
	/* a DROP EXTENSION we waited for has committed: look again */
	return get_extension_name(ext) != NULL;
}

static void
tf_extension_gone(void)
{
	ereport(LOG, (errmsg("taskflow scheduler: extension dropped in database \"%s\", exiting",
						 get_database_name(MyDatabaseId))));
	tf_set_db_state(TF_DB_ABSENT);
	proc_exit(0);
}

static void
tf_begin(const char *what)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!tf_lock_extension())
		tf_extension_gone();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
}

static void
tf_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(pass_cxt);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * The installed version of the extension's SQL objects matches this library
 * (TF_EXTVERSION)?  Between installing a new library and ALTER EXTENSION
 * taskflow UPDATE the catalog is the old one; the scheduler then waits
 * instead of running the new engine against it (logged once per mismatch).
 */
static bool
tf_extension_version_ok(void)
{
	static char reported[64] = "";
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	char	   *version = NULL;
	bool		ok;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("taskflow"));
	rel = table_open(ExtensionRelationId, AccessShareLock);
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	ok = version != NULL && strcmp(version, TF_EXTVERSION) == 0;
	if (!ok && version != NULL && strcmp(reported, version) != 0)
	{
		strlcpy(reported, version, sizeof(reported));
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("taskflow scheduler: database \"%s\" has taskflow %s, the library is %s; no flow runs until the extension is updated",
						get_database_name(MyDatabaseId), version, TF_EXTVERSION),
				 errhint("Run ALTER EXTENSION taskflow UPDATE in that database.")));
	}
	else if (ok)
		reported[0] = '\0';
	return ok;
}

/* present: 1, absent: 0, present at another version: -1 */
static int
tf_extension_present(void)
{
	int			present;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	present = tf_lock_extension() ? 1 : 0;
	if (present && !tf_extension_version_ok())
		present = -1;
	CommitTransactionCommand();
	MemoryContextSwitchTo(pass_cxt);
	return present;
}

/*
 * The backlog hint of this database (TfDbSlot.backlog): set when the last
 * dispatch held ready nodes back or the tick left due runs for the next
 * pass; cleared when a dispatch handed out everything that was ready.  A
 * warm worker whose own run has nothing more ready pulls the next ready
 * node run of another run of its owner (taskflow._node_next_for_owner,
 * 0.6 ms) only while it is set: with every ready node handed out there is
 * nothing to pull, and the query ran in every worker right when its
 * siblings due at the same second were beginning theirs (issue 11: 10 flows
 * due at once, ~6 ms of CPU in that window on 2 cores).  A hint only: a
 * ready node that no worker pulls is handed out by the pass the idle
 * worker wakes.
 */
static void
tf_set_backlog(bool backlog)
{
	SpinLockAcquire(&tf_shared->mutex);
	tf_shared->dbs[my_slot].backlog = backlog;
	SpinLockRelease(&tf_shared->mutex);
}

/* ---- worker slots ---- */

/* forget workers that stopped; free slots whose worker never started */
static void
tf_reap_workers(void)
{
	int			i;
	bool		freed = false;

	for (i = 0; i < TF_MAX_WORKERS; i++)
	{
		pid_t		pid;

		if (worker_handle[i] == NULL)
			continue;
		if (GetBackgroundWorkerPid(worker_handle[i], &pid) != BGWH_STOPPED)
			continue;
		pfree(worker_handle[i]);
		worker_handle[i] = NULL;
		SpinLockAcquire(&tf_shared->mutex);
		if (tf_shared->workers[i].in_use &&
			tf_shared->workers[i].generation == worker_gen[i])
		{
			tf_shared->workers[i].in_use = false;
			freed = true;
		}
		SpinLockRelease(&tf_shared->mutex);
	}
	/* a worker that never detached itself: its slot is free for others too */
	if (freed)
		tf_wake_waiting_schedulers(my_dboid);
}

/*
 * Slots of this database reserved by a previous scheduler whose worker never
 * started (postmaster could not fork it, or the scheduler died in between).
 * Checked every pass: a slot reserved less than 30 s before this scheduler
 * started may be orphaned too, and would otherwise hide its node run from
 * dispatch (and take a taskflow.max_workers place) forever.
 */
static void
tf_free_orphan_slots(void)
{
	TimestampTz limit = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -30000);
	int			i;

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_WORKERS; i++)
	{
		TfWorkerSlot *w = &tf_shared->workers[i];

		if (w->in_use && w->dboid == my_dboid && w->pid == 0 &&
			w->scheduler_pid != MyProcPid && w->reserved_at < limit)
			w->in_use = false;
	}
	SpinLockRelease(&tf_shared->mutex);
}

/* node_run ids handled by a live (or starting) worker in database dboid */
static int
tf_live_node_run_ids_of(Oid dboid, int64 *ids)
{
	int			n = 0;
	int			i;

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_WORKERS; i++)
		if (tf_shared->workers[i].in_use && !tf_shared->workers[i].idle &&
			tf_shared->workers[i].dboid == dboid)
			ids[n++] = tf_shared->workers[i].node_run_id;
	SpinLockRelease(&tf_shared->mutex);
	return n;
}

static int
tf_live_node_run_ids(int64 *ids)
{
	return tf_live_node_run_ids_of(my_dboid, ids);
}

static Datum
tf_int8_array(const int64 *ids, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

static Datum
tf_live_node_runs(void)
{
	int64		ids[TF_MAX_WORKERS];

	return tf_int8_array(ids, tf_live_node_run_ids(ids));
}

/*
 * taskflow._live_node_runs(): the node runs of this database held by a live
 * (or starting) worker, read when called.  Recovery (_sched_recover) reads
 * it inside its query, after its snapshot: a node run 'running' in the
 * snapshot was claimed in its worker's slot before its worker committed it
 * running, so the slot shows it.  (The array read before the query missed
 * a node run that a warm worker claimed and began in between -- the next
 * node of its chain -- and recovery marked it dead under a live worker.)
 */
PG_FUNCTION_INFO_V1(tf_sql_live_node_runs);
Datum
tf_sql_live_node_runs(PG_FUNCTION_ARGS)
{
	int64		ids[TF_MAX_WORKERS];
	int			n = 0;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _live_node_runs")));
	if (tf_shared != NULL)
		n = tf_live_node_run_ids_of(MyDatabaseId, ids);
	PG_RETURN_DATUM(tf_int8_array(ids, n));
}

/*
 * taskflow._ahead_taken(): how many node runs the warm workers of this
 * database took off the scheduler's handed-ahead list (TfDbSlot.ahead_id)
 * since its scheduler started.  Superuser only (as _live_node_runs).
 */
PG_FUNCTION_INFO_V1(tf_sql_ahead_taken);
Datum
tf_sql_ahead_taken(PG_FUNCTION_ARGS)
{
	uint64		n = 0;
	int			i;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function _ahead_taken")));
	if (tf_shared != NULL)
	{
		SpinLockAcquire(&tf_shared->mutex);
		for (i = 0; i < TF_MAX_DBS; i++)
			if (tf_shared->dbs[i].state != TF_DB_FREE &&
				tf_shared->dbs[i].dboid == MyDatabaseId)
				n += tf_shared->dbs[i].ahead_taken;
		SpinLockRelease(&tf_shared->mutex);
	}
	PG_RETURN_INT64((int64) n);
}

/*
 * owners of the node workers running a node in the cluster, one entry per
 * worker (idle warm workers do not count: they are reused or reclaimed)
 */
static Datum
tf_running_owners(void)
{
	Datum		ids[TF_MAX_WORKERS];
	int			n = 0;
	int			i;

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_WORKERS; i++)
		if (tf_shared->workers[i].in_use && !tf_shared->workers[i].idle)
			ids[n++] = ObjectIdGetDatum(tf_shared->workers[i].owner);
	SpinLockRelease(&tf_shared->mutex);
	return PointerGetDatum(construct_array(ids, n, OIDOID, sizeof(Oid), true,
										   TYPALIGN_INT));
}

/*
 * Ready nodes held back by a cap: wake me when a slot frees anywhere.
 * rank: how many workers the owner of the first node held back has running
 * (INT_MAX when only owners at their own cap wait); rank_owner: that owner
 * (InvalidOid when owners tie).
 */
static void
tf_set_waiting(bool waiting, int rank, Oid rank_owner)
{
	bool		was;
	int			was_rank;

	SpinLockAcquire(&tf_shared->mutex);
	was = tf_shared->dbs[my_slot].waiting;
	was_rank = tf_shared->dbs[my_slot].waiting_rank;
	tf_shared->dbs[my_slot].waiting = waiting;
	tf_shared->dbs[my_slot].waiting_rank = waiting ? rank : INT_MAX;
	tf_shared->dbs[my_slot].waiting_owner = waiting ? rank_owner : InvalidOid;
	SpinLockRelease(&tf_shared->mutex);

	/*
	 * Other databases may have left a free slot to us (our claim was
	 * better than theirs): now that we claim less, let them look again.
	 */
	if (was && (!waiting || rank > was_rank))
		tf_wake_waiting_schedulers(my_dboid);
}

#define TF_SLOT_CLUSTER_FULL	(-1)	/* taskflow.max_workers reached */
#define TF_SLOT_OWNER_FULL		(-2)	/* the owner's cap reached */

/*
 * Find a worker for a node run: the cluster-wide cap (taskflow.max_workers)
 * and the owner's cap (owner_cap, 0: none) are checked under the same
 * spinlock, so that schedulers of several databases never exceed either.
 * Both count workers running a node run (busy); idle warm workers are
 * spare capacity.
 *
 * Fairness between databases: other databases waiting for a slot for an
 * owner with fewer running workers than this one's keep the last free slots
 * (as many as there are such databases); their schedulers were woken when
 * the slot freed and take it.
 *
 * Within the caps, in this order:
 *  - an idle warm worker of this database and the same owner (connected the
 *    same way, 'login') is handed the node run (*handed = true; the caller
 *    sets its latch): no process starts;
 *  - else a free slot is reserved for a new worker, unless the node worker
 *    processes (busy + idle) already reach taskflow.max_workers;
 *  - else an idle worker of another owner or database is told to exit (the
 *    oldest one; not when one is exiting already) and the node run
 *    waits for its slot (TF_SLOT_CLUSTER_FULL; its exit wakes us).
 */
static int
tf_reserve_worker_slot(int64 node_run_id, int64 run_id, Oid owner, bool login,
					   int owner_cap, bool *handed, Latch **latch)
{
	int			busy = 0;
	int			procs = 0;
	int			owned = 0;
	int			deserving = 0;
	int			freeslot = -1;
	int			warm = -1;
	int			victim = -1;
	bool		exiting = false;
	int			i;

	*handed = false;
	*latch = NULL;
	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_WORKERS; i++)
	{
		TfWorkerSlot *w = &tf_shared->workers[i];

		if (!w->in_use)
		{
			if (freeslot < 0)
				freeslot = i;
			continue;
		}
		procs++;
		if (!w->idle)
		{
			busy++;
			if (w->owner == owner)
				owned++;
			continue;
		}
		if (w->exit_requested || w->latch == NULL)
		{
			exiting = true;
			continue;
		}
		if (w->dboid == my_dboid && w->owner == owner && w->owner_login == login)
		{
			if (warm < 0 || w->nodes < tf_shared->workers[warm].nodes)
				warm = i;
		}
		else if (victim < 0 || w->reserved_at < tf_shared->workers[victim].reserved_at)
			victim = i;
	}
	for (i = 0; i < TF_MAX_DBS; i++)
	{
		TfDbSlot   *d = &tf_shared->dbs[i];

		if (i != my_slot && d->state != TF_DB_FREE && d->waiting &&
			d->pid != 0 && d->waiting_rank < owned)
			deserving++;
	}
	if (busy >= tf_max_workers || tf_max_workers - busy <= deserving)
		freeslot = TF_SLOT_CLUSTER_FULL;
	else if (owner_cap > 0 && owned >= owner_cap)
		freeslot = TF_SLOT_OWNER_FULL;
	else if (warm >= 0 && tf_worker_reuse)
	{
		TfWorkerSlot *w = &tf_shared->workers[warm];

		w->idle = false;
		w->node_run_id = node_run_id;
		w->run_id = run_id;
		w->nodes++;
		w->scheduler_pid = MyProcPid;
		*latch = w->latch;
		*handed = true;
		freeslot = warm;
	}
	else if (procs >= tf_max_workers || freeslot < 0)
	{
		/* all processes taken: reclaim an idle one for this node run */
		if (victim < 0 && warm >= 0)
			victim = warm;		/* taskflow.worker_reuse was turned off */
		if (victim >= 0 && !exiting)
		{
			tf_shared->workers[victim].exit_requested = true;
			*latch = tf_shared->workers[victim].latch;
		}
		freeslot = TF_SLOT_CLUSTER_FULL;
	}
	else
	{
		TfWorkerSlot *w = &tf_shared->workers[freeslot];
		uint32		gen = w->generation + 1;

		memset(w, 0, sizeof(TfWorkerSlot));
		w->in_use = true;
		w->generation = gen;
		w->dboid = my_dboid;
		w->owner = owner;
		w->owner_login = login;
		w->scheduler_pid = MyProcPid;
		w->node_run_id = node_run_id;
		w->run_id = run_id;
		w->nodes = 1;
		w->reserved_at = GetCurrentTimestamp();
		worker_gen[freeslot] = gen;
	}
	SpinLockRelease(&tf_shared->mutex);
	return freeslot;
}

static void
tf_release_worker_slot(int slot)
{
	SpinLockAcquire(&tf_shared->mutex);
	if (tf_shared->workers[slot].generation == worker_gen[slot])
		tf_shared->workers[slot].in_use = false;
	SpinLockRelease(&tf_shared->mutex);
}

/*
 * Dispatches of this attempt of a node run: true when it should be given up
 * (workers exited before starting it TF_MAX_DISPATCH_TRIES times); with
 * 'count', record one more dispatch.  Only dispatches that handed the node
 * run to a worker count (a node run held back by a cap in shared memory is
 * not a try).  Retries of a node that did start are new attempts.
 */
static bool
tf_dispatch_tries(int64 node_run_id, int attempt, bool count)
{
	int			i;
	int			victim = 0;

	for (i = 0; i < lengthof(dispatch_tries); i++)
	{
		TfDispatchTry *t = &dispatch_tries[i];

		if (t->node_run_id == node_run_id)
		{
			if (t->attempt != attempt)
			{
				t->attempt = attempt;
				t->tries = 0;
			}
			if (count)
				t->tries++;
			return t->tries >= TF_MAX_DISPATCH_TRIES;
		}
		if (t->tries < dispatch_tries[victim].tries)
			victim = i;
	}
	if (!count)
		return false;
	dispatch_tries[victim].node_run_id = node_run_id;
	dispatch_tries[victim].attempt = attempt;
	dispatch_tries[victim].tries = 1;
	return false;
}

static bool
tf_start_worker(int slot, const char *flow, const char *node, int64 run_id)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	bool		ok;

	/* warm workers run many nodes: the ps title names each (worker.c) */
	tf_bgworker_init(&worker, "tf_worker_main", "taskflow node",
					 tf_worker_reuse ? "taskflow node worker" :
					 psprintf("taskflow node %s.%s run " INT64_FORMAT, flow, node, run_id));
	worker.bgw_main_arg = Int32GetDatum(slot);
	memcpy(worker.bgw_extra, &worker_gen[slot], sizeof(uint32));
	worker.bgw_notify_pid = MyProcPid;

	/* the handle outlives this pass */
	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&worker, &handle);
	MemoryContextSwitchTo(old);
	if (!ok)
		return false;
	if (worker_handle[slot] != NULL)
		pfree(worker_handle[slot]);
	worker_handle[slot] = handle;
	return true;
}

/* ---- one pass ---- */

typedef struct TfReady
{
	int64		node_run_id;
	int64		run_id;
	Oid			owner;
	bool		login;
	char	   *flow;
	char	   *node;
	int			attempt;		/* dispatch sequence (attempt, wait polls) */
	int			owner_cap;
	int			owner_running;	/* the owner's running workers (cluster) */
} TfReady;

struct TfDispatchRead;
static void tf_dispatch_read(struct TfDispatchRead *d, MemoryContext outer, bool due_time);
static void tf_set_ahead(struct TfDispatchRead *d);

/*
 * Wait until 'until' (real clock) with the transaction open: the held tick
 * (tf_pass_tick).  Interrupts are served (SIGTERM aborts it: nothing of it
 * stays); a latch set meanwhile (a worker finished, a flow changed) is set
 * again afterwards, for the pass after this one.
 */
static void
tf_hold_until(TimestampTz until)
{
	bool		latched = false;

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (now >= until)
			break;
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   TimestampDifferenceMilliseconds(now, until), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latched = true;
		}
	}
	if (latched)
		SetLatch(MyLatch);
}

/*
 * Recover, create due runs, advance what changed (taskflow._sched_tick).
 * Returns the next due time (scheduler clock) in *next_due and the next retry
 * (real clock) in *next_retry, 0 when none; true when work is left that the
 * next pass should do at once.
 *
 * hold_until (0: none): the tick of a due time that has not come yet (now =
 * that time), done ahead: the ready-node read follows in the same
 * transaction (into *read), and the transaction commits at hold_until, not
 * before (tf_scheduler_pass, "Due runs prepared ahead").
 */
static bool
tf_pass_tick(TimestampTz now, TimestampTz *next_due, TimestampTz *next_retry, int limit,
			 TimestampTz hold_until, struct TfDispatchRead *read)
{
	Oid			argtypes[6] = {TIMESTAMPTZOID, INT8ARRAYOID, INT4OID, INT4OID, INT8OID, BOOLOID};
	Oid			argtypes_due[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[6];
	char		nulls[6] = "      ";
	bool		sweep_runs;
	bool		more;
	int64		swept_to;
	bool		isnull;
	Datum		d;
	HeapTuple	tup;
	TupleDesc	desc;

	*next_due = *next_retry = 0;
	sweep_runs = TimestampDifferenceExceeds(last_run_sweep, GetCurrentTimestamp(),
											tf_run_sweep_interval * 1000);
	tf_begin("taskflow scheduler: tick");

	/*
	 * The tick commits without waiting for its WAL flush (an fsync, the
	 * larger part of due -> first statement for one job).  Safe because a
	 * crash that loses this commit loses all of it: the runs it created and
	 * the schedule advance (flows.next_due, scheduled_until) are in this one
	 * transaction, so the restarted scheduler creates the same runs for the
	 * same scheduled_for; and nothing outside the database acts on it before
	 * a synchronous commit that follows it in the WAL (a node worker's
	 * _node_begin, forced synchronous in worker.c; the alert worker's claim),
	 * and WAL is flushed in order.  docs/performance.md, "Durability of the
	 * tick".
	 */
	(void) set_config_option("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	values[0] = TimestampTzGetDatum(now);

	/*
	 * The flows with exactly one period due, set-based, before the tick's
	 * per-flow path takes the rest (taskflow._sched_due_set, part
	 * 99_dispatch5): a prepared due time takes up to TF_PREPARE_FLOWS of
	 * them, so that every run of a due time of that size is committed at
	 * it, not only the first batch.  Not more: the scheduler dispatches
	 * nothing while it holds the prepared tick, and 500 flows prepared
	 * every 10 s (soak_bench.sh) held it up to its 1 s lead each time.
	 */
	values[1] = Int32GetDatum(hold_until != 0 ? TF_PREPARE_FLOWS : Min(4 * limit, TF_PASS_LIMIT));
	if (SPI_execute_with_args("SELECT taskflow._sched_due_set($1, $2)",
							  2, argtypes_due, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._sched_due_set failed");
	values[1] = tf_live_node_runs();
	values[2] = Int32GetDatum(TF_MAX_NEW_RUNS);
	values[3] = Int32GetDatum(limit);
	values[4] = Int64GetDatum(flow_sweep_from);
	if (flow_sweep_from < 0)
		nulls[4] = 'n';
	values[5] = BoolGetDatum(sweep_runs);
	if (SPI_execute_with_args("SELECT next_due, next_retry, more, swept_to "
							  "FROM taskflow._sched_tick($1, $2, $3, $4, $5, $6)",
							  6, argtypes, values, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow._sched_tick failed");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(tup, desc, 1, &isnull);
	if (!isnull)
		*next_due = DatumGetTimestampTz(d);
	d = SPI_getbinval(tup, desc, 2, &isnull);
	if (!isnull)
		*next_retry = DatumGetTimestampTz(d);
	more = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
	d = SPI_getbinval(tup, desc, 4, &isnull);
	swept_to = isnull ? -1 : DatumGetInt64(d);
	if (hold_until != 0)
	{
		/* what the tick made ready, read now; handed out at the due time */
		tf_dispatch_read(read, pass_cxt, true);
		tf_note_prepare_time(GetCurrentTimestamp());
		tf_hold_until(hold_until);
	}
	tf_commit();

	/* only once committed: an error retries the same sweep step */
	if (flow_sweep_from >= 0)
		flow_sweep_from = swept_to;
	if (sweep_runs)
		last_run_sweep = GetCurrentTimestamp();
	return more || flow_sweep_from >= 0;
}

static void
tf_give_up_node_run(int64 node_run_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(node_run_id)};

	tf_begin("taskflow scheduler: give up");
	SPI_execute_with_args("SELECT taskflow._sched_give_up($1)", 1, argtypes, values,
						  NULL, false, 0);
	tf_commit();
}

/*
 * A ready-node read (taskflow._sched_ready_next) waiting for its hand-off:
 * what it returned and what it saw of the worker slots.
 */
typedef struct TfDispatchRead
{
	List	   *ready;			/* TfReady, at most room of them */
	bool		held;			/* ready nodes left over (room, a cap) */
	int			rank;
	Oid			rank_owner;
	int64		live[TF_MAX_WORKERS];	/* live node runs at the read */
	int			nlive;
	int			nahead;			/* ready beyond the free slots, eligible */
	int64		ahead_id[TF_READY_AHEAD];
	Oid			ahead_owner[TF_READY_AHEAD];
} TfDispatchRead;

/*
 * How many ready node runs a read ranks beyond the free slots, for the
 * handed-ahead list: only a busy worker takes one (when its own run has
 * nothing more ready), and the next read replaces the list; at a wake,
 * about one per worker is taken before that.  The read of a prepared due
 * time (once per due time: many flows' first nodes at once) ranks
 * TF_READY_AHEAD (64), as 1.7 did at every read, whatever the pool's size
 * (1.8, issue 11: docs/performance.md, "1.8: the ready path's CPU").
 */
static int
tf_read_ahead(bool due_time)
{
	return due_time ? TF_READY_AHEAD : Min(TF_READY_AHEAD, Max(tf_max_workers, 1));
}

/*
 * The ready-node read, in the open transaction (which must commit before
 * tf_dispatch_hand); the list is allocated in 'outer'.  due_time: the read
 * of a prepared due time (tf_pass_tick).
 */
static void
tf_dispatch_read(TfDispatchRead *d, MemoryContext outer, bool due_time)
{
	int			ahead = tf_read_ahead(due_time);
	Oid			argtypes[5] = {INT8ARRAYOID, BOOLOID, INT8ARRAYOID, INT4OID, OIDARRAYOID};
	Datum		values[5];
	int64		released[TF_MAX_WORKERS * 2];
	int			nreleased = 0;
	int			room = tf_max_workers - tf_workers_busy();
	uint64		i;

	d->ready = NIL;
	d->held = false;
	d->rank = INT_MAX;
	d->rank_owner = InvalidOid;
	d->nahead = 0;

	/*
	 * No room: still look (one row) whether something is ready here, and
	 * for which owner, to claim the next free slot (tf_set_waiting).
	 */
	if (room < 0)
		room = 0;

	/*
	 * The read writes only the ready set (taskflow.sched_ready), which is a
	 * hint: a crash that loses its last changes loses nothing, since the
	 * restarted scheduler's first tick puts every running run in (the
	 * safety sweep).  No WAL flush to wait for on the dispatch path.
	 */
	(void) set_config_option("synchronous_commit", "off", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	d->nlive = tf_live_node_run_ids(d->live);
	for (i = 0; i < (uint64) handed_n; i++)
	{
		int			j;

		for (j = 0; j < d->nlive && d->live[j] != handed_ids[i]; j++)
			;
		if (j == d->nlive)
			released[nreleased++] = handed_ids[i];
	}
	values[0] = tf_int8_array(released, nreleased);
	values[1] = BoolGetDatum(!tf_scheduler_ready_incremental);
	values[2] = tf_int8_array(d->live, d->nlive);
	/*
	 * (and up to tf_read_ahead() more, handed ahead: tf_dispatch_hand)
	 */
	values[3] = Int32GetDatum(room + ahead);
	values[4] = tf_running_owners();
	if (SPI_execute_with_args("SELECT node_run_id, run_id, owner, owner_login, flow, node, "
							  "dispatch_seq, owner_cap, eligible, owner_running "
							  "FROM taskflow._sched_ready_next($1, $2, $3, $4, $5)",
							  5, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._sched_ready_next failed");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old;
		TfReady    *r;
		bool		isnull;

		/* more ready nodes than room, or an owner at its cap: held back */
		if (i >= (uint64) room ||
			!DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull)))
		{
			bool		eligible = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));

			if (!d->held && eligible)
			{
				d->rank = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
				d->rank_owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
			}
			d->held = true;
			/*
			 * Eligible ones beyond the room, in the read's order: handed
			 * ahead to the warm workers of their owner (the rows of owners
			 * at their cap come last: none of them).
			 */
			if (!eligible || d->nahead >= ahead)
				break;
			d->ahead_id[d->nahead] = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			d->ahead_owner[d->nahead] = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
			d->nahead++;
			continue;
		}
		old = MemoryContextSwitchTo(outer);
		r = palloc0(sizeof(TfReady));
		r->node_run_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		r->run_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		r->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		r->login = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		r->flow = SPI_getvalue(tup, desc, 5);
		r->node = SPI_getvalue(tup, desc, 6);
		r->attempt = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
		r->owner_cap = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
		r->owner_running = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
		d->ready = lappend(d->ready, r);
		MemoryContextSwitchTo(old);
	}
}

/*
 * Hand out what a committed read returned: a warm worker's latch, or a new
 * worker, per ready node run; returns true if it handed out any.
 */
static bool
tf_dispatch_hand(TfDispatchRead *d)
{
	ListCell   *lc;
	bool		started = false;
	bool		held = d->held;
	int			rank = d->rank;
	Oid			rank_owner = d->rank_owner;

	/* (only once the read committed: it dropped their runs from the ready set) */
	memcpy(handed_ids, d->live, sizeof(int64) * d->nlive);
	handed_n = d->nlive;

	foreach(lc, d->ready)
	{
		TfReady    *r = lfirst(lc);
		int			slot;
		bool		handed;
		Latch	   *latch;

		if (tf_dispatch_tries(r->node_run_id, r->attempt, false))
		{
			tf_give_up_node_run(r->node_run_id);
			continue;
		}
		slot = tf_reserve_worker_slot(r->node_run_id, r->run_id, r->owner, r->login,
									  r->owner_cap, &handed, &latch);
		if (latch != NULL)
			SetLatch(latch);	/* the warm worker's next node run, or exit */
		if ((slot >= 0 || handed) && handed_n < (int) lengthof(handed_ids))
			handed_ids[handed_n++] = r->node_run_id;
		if (handed)
		{
			(void) tf_dispatch_tries(r->node_run_id, r->attempt, true);
			started = true;
			continue;
		}
		if (slot == TF_SLOT_OWNER_FULL)
		{
			held = true;		/* the owner's cap (another database took it) */
			continue;
		}
		if (slot < 0)
		{
			held = true;		/* cluster-wide cap reached (or yielded) */
			if (r->owner_running < rank)
				rank_owner = r->owner;
			else if (r->owner_running == rank && rank_owner != r->owner)
				rank_owner = InvalidOid;
			rank = Min(rank, r->owner_running);
			break;
		}
		if (!tf_start_worker(slot, r->flow, r->node, r->run_id))
		{
			tf_release_worker_slot(slot);
			ereport(WARNING,
					(errmsg("taskflow scheduler: could not start a node worker"),
					 errhint("Raise max_worker_processes (it must exceed taskflow.max_workers plus one scheduler per database plus the launcher).")));
			held = true;
			start_retry_ms = start_retry_ms == 0 ? TF_START_RETRY_MIN_MS
				: Min(start_retry_ms * 2, TF_START_RETRY_MAX_MS);
			break;
		}
		start_retry_ms = 0;
		(void) tf_dispatch_tries(r->node_run_id, r->attempt, true);
		started = true;
	}
	if (d->ready == NIL)
		start_retry_ms = 0;		/* nothing ready (any more) to start */
	list_free_deep(d->ready);
	d->ready = NIL;

	/*
	 * Ready nodes left over (a cap, or fewer slots than ready nodes): ask to
	 * be woken when a worker slot frees in any database.
	 */
	tf_set_waiting(held, rank, rank_owner);
	tf_set_backlog(held || pass_more);
	tf_set_ahead(d);
	return started;
}

/*
 * Publish what the read ranked beyond the free slots (TfDbSlot.ahead_id,
 * engine.h), replacing what the last read published: a warm worker of the
 * owner takes the first one when its own run has nothing more ready, with
 * no query (worker.c, tf_worker_next_in_run).  A worker that finds one
 * begun by another worker meanwhile gets nothing from _node_begin and goes
 * on; one that dies before its begin leaves the node run pending, which
 * the next read sees (not live any more).
 */
static void
tf_set_ahead(TfDispatchRead *d)
{
	TfDbSlot   *db = &tf_shared->dbs[my_slot];

	SpinLockAcquire(&tf_shared->mutex);
	memcpy(db->ahead_id, d->ahead_id, sizeof(int64) * d->nahead);
	memcpy(db->ahead_owner, d->ahead_owner, sizeof(Oid) * d->nahead);
	db->nahead = d->nahead;
	SpinLockRelease(&tf_shared->mutex);
	d->nahead = 0;
}

/*
 * Start workers for ready nodes; returns true if it started any.  early:
 * the read before the tick (tf_scheduler_pass), which only hands what is
 * ready already to free workers: skipped while every worker is busy (the
 * read after the tick looks all the same, and refreshes the handed-ahead
 * list; with a backlog every wake of a busy pool read the ready set twice:
 * 1.8, issue 11).
 */
static bool
tf_pass_dispatch(bool early)
{
	TfDispatchRead d;
	MemoryContext outer = CurrentMemoryContext;

	if (early && tf_workers_busy() >= tf_max_workers)
		return false;
	tf_begin("taskflow scheduler: dispatch");
	tf_dispatch_read(&d, outer, false);
	tf_commit();
	return tf_dispatch_hand(&d);
}

/*
 * Warm workers started ahead of a due time.  The owner of flows due within
 * the next taskflow.worker_idle_timeout gets as many node workers in this
 * database as it has such flows (at most taskflow.max_workers and the
 * server-wide taskflow.max_workers_per_owner; of the 64 soonest), started
 * now, idle (node_run_id 0, it connects and waits on its latch: worker.c),
 * so that the first runs of flows due at the same time are handed to warm
 * processes instead of waiting for a fork and a connection (10-20 ms here).
 * The idle worker counts as a process of the pool, not as a busy one: the caps
 * (taskflow.max_workers, max_workers_per_owner) are checked when a node run
 * is handed to it, as for any warm worker, and the scheduler reclaims it for
 * another owner when the pool is full.  At most taskflow.max_workers / (the
 * owners with flows due soon here) per owner, at least one.  Only where a process slot is free;
 * an idle worker with nothing due within its next idle period leaves
 * (tf_worker_due_soon).  One query per new next due time.
 */
static void
tf_prestart_workers(TimestampTz now, TimestampTz next_due)
{
	static TimestampTz last_due = 0;
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	uint64		i;

	if (!tf_worker_reuse || tf_worker_idle_timeout <= 0 || next_due == 0 ||
		next_due == last_due ||
		next_due > TimestampTzPlusMilliseconds(now, (int64) tf_worker_idle_timeout * 1000))
		return;

	tf_begin("taskflow scheduler: warm workers ahead");
	values[0] = TimestampTzGetDatum(TimestampTzPlusMilliseconds(now, (int64) tf_worker_idle_timeout * 1000));
	/* 'login' as taskflow._sched_ready computes it (the warm worker must match) */
	/* (every operator and function qualified: runs as superuser) */
	if (SPI_execute_with_args("SELECT f.owner::pg_catalog.oid, "
							  "a.rolcanlogin AND a.rolconnlimit OPERATOR(pg_catalog.<) 0 "
							  "AND d.datconnlimit OPERATOR(pg_catalog.<) 0 "
							  "AND pg_catalog.has_database_privilege(f.owner::pg_catalog.oid, d.oid, "
							  "'CONNECT'::pg_catalog.text), "
							  "pg_catalog.count(*)::pg_catalog.int4 "
							  "FROM (SELECT x.owner FROM taskflow.flows x "
							  "WHERE x.next_due OPERATOR(pg_catalog.<=) $1 AND x.enabled "
							  "ORDER BY x.next_due LIMIT 64) f "
							  "JOIN pg_catalog.pg_authid a ON a.oid OPERATOR(pg_catalog.=) f.owner::pg_catalog.oid "
							  "JOIN pg_catalog.pg_database d "
							  "ON d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() "
							  "GROUP BY 1, 2",
							  1, argtypes, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow scheduler: reading the owners of due flows failed");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));
		bool		login = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 2, &isnull));
		int			want = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 3, &isnull));
		bool		full = false;

		/*
		 * one per flow due (they may be due at the same second), within the
		 * caps and a fair share of the pool: an owner with many flows due
		 * soon no longer fills every free slot with idle workers that the
		 * other owners' first nodes must wait for (an exit and a fork;
		 * review of 1.4)
		 */
		want = Min(want, tf_max_workers);
		want = Min(want, Max(1, tf_max_workers / (int) SPI_processed));
		if (tf_max_workers_per_owner > 0)
			want = Min(want, tf_max_workers_per_owner);
		for (;;)
		{
			int			procs = 0;
			int			freeslot = -1;
			int			have = 0;
			int			j;

			SpinLockAcquire(&tf_shared->mutex);
			for (j = 0; j < TF_MAX_WORKERS; j++)
			{
				TfWorkerSlot *w = &tf_shared->workers[j];

				if (!w->in_use)
				{
					if (freeslot < 0)
						freeslot = j;
					continue;
				}
				procs++;
				if (w->dboid == my_dboid && w->owner == owner && w->owner_login == login &&
					!w->exit_requested)
					have++;
			}
			if (have < want && freeslot >= 0 && procs < tf_max_workers)
			{
				TfWorkerSlot *w = &tf_shared->workers[freeslot];
				uint32		gen = w->generation + 1;

				memset(w, 0, sizeof(TfWorkerSlot));
				w->in_use = true;
				w->generation = gen;
				w->dboid = my_dboid;
				w->owner = owner;
				w->owner_login = login;
				w->scheduler_pid = MyProcPid;
				w->idle = true;		/* handed nothing until it set its latch */
				w->reserved_at = GetCurrentTimestamp();
				worker_gen[freeslot] = gen;
			}
			else
			{
				full = (have < want);
				freeslot = -1;
			}
			SpinLockRelease(&tf_shared->mutex);
			if (freeslot < 0)
				break;
			if (!tf_start_worker(freeslot, "", "", 0))
			{
				tf_release_worker_slot(freeslot);
				full = true;
				break;
			}
		}
		if (full)
			break;				/* no process slot left for the next owners */
	}
	tf_commit();
	/* done for this due time (a failed query is tried again next pass) */
	last_due = next_due;
}

/*
 * Rehearse a due time: the tick of the coming due time (p_now = that time;
 * the set-based step, taskflow._sched_due_set, then at most one batch of
 * flows per flow) and the ready-node read after it, in a
 * transaction that is rolled back.  Nothing of it stays (runs, node runs,
 * queue entries, wakes registered for commit are discarded; only sequence
 * values are used up), but the plans of every statement on the way from a
 * due time to a handed-out node (run creation, promotion, advancing, the
 * trigger functions, _sched_ready) are built and the catalog caches they
 * need are loaded before the due time instead of at it: the first run after
 * the scheduler started, after new flows, or after the plans were
 * invalidated (autovacuum's ANALYZE of the catalog tables) no longer pays
 * 5-20 ms of planning on the due path (issue 11: the first minute of "10
 * jobs beside 10,000 idle flows").  It runs TF_REHEARSE_AHEAD_MS before the
 * due time (close to it, so that an ANALYZE in between is unlikely; the
 * returned time, scheduler clock, is when to wake for it, 0: no wake), at
 * most once per TF_REHEARSE_MS and once per due time, never closer to the
 * due time than TF_REHEARSE_LEAD_MS.  Its messages are not logged (the real
 * pass logs them); an error only ends the rehearsal.
 */
static TimestampTz
tf_rehearse_due(TimestampTz now, TimestampTz next_due)
{
	static TimestampTz last_rehearsal = 0;
	volatile bool ok = false;
	Oid			argtypes[4] = {TIMESTAMPTZOID, INT8ARRAYOID, INT4OID, INT4OID};
	Oid			rargtypes[5] = {INT8ARRAYOID, BOOLOID, INT8ARRAYOID, INT4OID, OIDARRAYOID};
	Oid			dargtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[5];
	int			batch = Max(Min(tf_max_workers, TF_PASS_LIMIT), 8);
	MemoryContext old = CurrentMemoryContext;

	if (!tf_scheduler_rehearsal || next_due == 0 || next_due == rehearsed_due ||
		next_due < TimestampTzPlusMilliseconds(now, TF_REHEARSE_LEAD_MS) ||
		!TimestampDifferenceExceeds(last_rehearsal, GetCurrentTimestamp(), TF_REHEARSE_MS))
		return 0;
	if (next_due > TimestampTzPlusMilliseconds(now, TF_REHEARSE_AHEAD_MS))
		return TimestampTzPlusMilliseconds(next_due, -TF_REHEARSE_AHEAD_MS);
	last_rehearsal = GetCurrentTimestamp();
	rehearsed_due = next_due;
	rehearsal_ms = 0;

	PG_TRY();
	{
		tf_begin("taskflow scheduler: rehearsal of the next due time");
		(void) set_config_option("log_min_messages", "error", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		values[0] = TimestampTzGetDatum(next_due);
		/*
		 * the set-based step first, as tf_pass_tick (its plans above all),
		 * with the prepared tick's cap: its time is that tick's forecast
		 */
		values[1] = Int32GetDatum(tf_prepare_enabled() ? TF_PREPARE_FLOWS : TF_PASS_LIMIT);
		if (SPI_execute_with_args("SELECT taskflow._sched_due_set($1, $2)",
								  2, dargtypes, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "taskflow._sched_due_set failed");
		values[1] = tf_live_node_runs();
		values[2] = Int32GetDatum(TF_MAX_NEW_RUNS);
		values[3] = Int32GetDatum(batch);
		if (SPI_execute_with_args("SELECT 1 FROM taskflow._sched_tick($1, $2, $3, $4, NULL, false)",
								  4, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "taskflow._sched_tick failed");
		values[0] = PointerGetDatum(construct_empty_array(INT8OID));
		values[1] = BoolGetDatum(!tf_scheduler_ready_incremental);
		values[2] = tf_live_node_runs();
		values[3] = Int32GetDatum(batch + TF_READY_AHEAD);
		values[4] = tf_running_owners();
		if (SPI_execute_with_args("SELECT 1 FROM taskflow._sched_ready_next($1, $2, $3, $4, $5)",
								  5, rargtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "taskflow._sched_ready_next failed");
		SPI_finish();
		PopActiveSnapshot();
		AbortCurrentTransaction();
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		elog(DEBUG1, "taskflow scheduler: rehearsal of the next due time failed: %s",
			 edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(pass_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	if (ok)
		rehearsal_ms = (double) (GetCurrentTimestamp() - last_rehearsal) / 1000.0;
	elog(DEBUG1, "taskflow scheduler: rehearsal of the due time %s: %.1f ms",
		 timestamptz_to_str(next_due), rehearsal_ms);
	return 0;
}

/*
 * History purge (taskflow.history_retention), off the dispatch path: every
 * taskflow.history_purge_interval a purge starts with a fixed cut-off and
 * goes on in batches of TF_PURGE_BATCH runs, one transaction each, only
 * while the scheduler has nothing else to do: between batches it yields to
 * a wake (a finishing node, a run operation, a catalog change) and to the
 * next due time, and picks up again after the pass.
 */
static void
tf_purge_begin(void)
{
	TimestampTz now = GetCurrentTimestamp();
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	if (purge_before != 0 ||
		!TimestampDifferenceExceeds(last_purge, now, tf_history_purge_interval * 1000))
		return;
	last_purge = now;
	tf_begin("taskflow scheduler: purge");
	values[0] = CStringGetTextDatum(tf_history_retention ? tf_history_retention : "");
	if (SPI_execute_with_args("SELECT pg_catalog.now() OPERATOR(pg_catalog.-) taskflow._retention_interval($1)",
							  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow._retention_interval failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	tf_commit();
	if (!isnull)
	{
		purge_before = DatumGetTimestampTz(d);
		purge_total = 0;
	}
}

/* one batch of the purge under way; false when it is done */
static bool
tf_purge_step(void)
{
	TimestampTz before = purge_before;
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2];
	bool		isnull;
	int			n;

	/* an error abandons this purge (until the next interval) */
	purge_before = 0;
	tf_begin("taskflow scheduler: purge");
	values[0] = TimestampTzGetDatum(before);
	values[1] = Int32GetDatum(TF_PURGE_BATCH);
	if (SPI_execute_with_args("SELECT taskflow._purge_batch($1, $2)",
							  2, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow._purge_batch failed");
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	tf_commit();
	purge_total += n;
	if (n >= TF_PURGE_BATCH)
	{
		purge_before = before;
		return true;
	}
	if (purge_total > 0)
		ereport(LOG,
				(errmsg("taskflow: purged " INT64_FORMAT " run(s) finished before %s",
						purge_total, timestamptz_to_str(before))));
	return false;
}

/*
 * Purge while idle: batches until the purge is done, the latch is set (work
 * came in) or sleep_ms have passed (work is due).  A scheduler that is never
 * idle (sleep_ms 0 pass after pass) still does one batch every
 * TF_PURGE_BUSY_MS, so that a steady load cannot starve the purge.  Returns
 * how much of sleep_ms is left.
 */
static long
tf_purge_while_idle(long sleep_ms)
{
	static TimestampTz last_step = 0;
	TimestampTz deadline;

	tf_purge_begin();
	if (purge_before == 0)
		return sleep_ms;
	if (sleep_ms <= 0)
	{
		if (TimestampDifferenceExceeds(last_step, GetCurrentTimestamp(), TF_PURGE_BUSY_MS))
		{
			last_step = GetCurrentTimestamp();
			tf_purge_step();
		}
		return sleep_ms;
	}
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), sleep_ms);
	while (purge_before != 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (MyLatch->is_set || ConfigReloadPending || GetCurrentTimestamp() >= deadline)
			break;
		MemoryContextReset(pass_cxt);
		last_step = GetCurrentTimestamp();
		tf_purge_step();
	}
	return Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline), 0);
}

/* one full pass; returns how long to sleep (ms) */
static long
tf_scheduler_pass(void)
{
	TimestampTz now;
	TimestampTz next_due;
	TimestampTz next_retry;
	TimestampTz real_start;
	long		sleep_ms = TF_MAX_SLEEP_MS;
	bool		more;
	TimestampTz rehearse_at;
	TimestampTz hold = 0;
	TfDispatchRead held_read;

	tf_reap_workers();
	tf_free_orphan_slots();

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	now = tf_scheduler_now();
	real_start = GetCurrentTimestamp();	/* the real time of 'now' (or just after) */
	CommitTransactionCommand();
	MemoryContextSwitchTo(pass_cxt);

	/*
	 * The next due time is less than the lead away: this pass is that due
	 * time's, prepared ahead (the tick holds its commit until then).  Only
	 * on the real clock, where 'now' is real_start.
	 */
	if (tf_prepare_enabled() && expected_due > real_start &&
		expected_due <= TimestampTzPlusMilliseconds(real_start, tf_prepare_lead_ms()))
	{
		prepare_lead = tf_prepare_lead_ms();
		hold = expected_due;
		now = real_start = hold;
	}
	elog(DEBUG2, "taskflow scheduler: pass at %s", timestamptz_to_str(now));

	/*
	 * Hand what is ready already (a finished node's successor, the rest of a
	 * fan-out) to the idle warm workers before the tick: _sched_ready judges
	 * readiness from the node runs themselves, and a node handoff then waits
	 * for one query instead of a whole pass.  The dispatch after the tick
	 * takes what the tick made ready (new runs, retries).
	 */
	/*
	 * Woken by a due time: the first batch of due flows small (as many as
	 * there are workers), committed and dispatched before the rest, so that
	 * with 100 flows due at once the first nodes start after a few run
	 * creations, not after all of them (the rest follow at once: 'more').
	 */
	/*
	 * The rest of such a burst goes on in batches of twice that, each
	 * committed (and its nodes handed out) before the next: the warm workers
	 * run the first nodes while the scheduler creates the next runs, instead
	 * of waiting idle for one long tick (100 flows: ~70 ms here).  Not while
	 * a safety sweep is under way (it goes by TF_PASS_LIMIT).
	 */
	if (!woke_by_timeout)
		tf_pass_dispatch(true);
	/*
	 * Prepared ahead (hold): one such batch, as many flows as there are
	 * workers (what the workers can take at the due time; the passes after
	 * it create the rest, as after a due wake).  Not more: a longer prepared
	 * tick holds more flows locked for longer and, when the machine is busy,
	 * overruns its lead more often (64 flows took 200-1,000 ms on 2 busy
	 * cores, and every node of the due time waits for its commit), and past
	 * 64 subtransactions the held transaction's subtransaction cache
	 * overflows, which slows every other session's snapshots.
	 */
	{
		int			batch = Max(Min(tf_max_workers, TF_PASS_LIMIT), 8);
		bool		small = woke_by_timeout || in_burst || hold != 0;

		if (hold != 0)
			prepare_start = GetCurrentTimestamp();
		more = tf_pass_tick(now, &next_due, &next_retry,
							hold != 0 || woke_by_timeout ? batch :
							in_burst ? 2 * batch : TF_PASS_LIMIT,
							hold, &held_read);
		in_burst = small && more && flow_sweep_from < 0;
		pass_more = more;
		if (more)
			tf_set_backlog(true);	/* the first runs' workers pull the rest */
	}
	expected_due = next_due;
	woke_by_timeout = false;

	/*
	 * Nodes with zero work (or fast ones) may already be done when this
	 * returns; a worker wakes us when it finishes anyway.
	 */
	if (hold != 0)
	{
		TimestampTz committed = GetCurrentTimestamp();

		(void) tf_dispatch_hand(&held_read);
		/* where the time of a prepared due time went (benchmarks) */
		elog(DEBUG1, "taskflow scheduler: prepared due time %s: tick and read %.1f ms, "
			 "lead %.1f ms (planned %ld ms), committed %.1f ms after it, handed out %.1f ms after it",
			 timestamptz_to_str(hold), (double) (prepare_done - prepare_start) / 1000.0,
			 (double) (hold - prepare_start) / 1000.0, prepare_lead,
			 (double) (committed - hold) / 1000.0,
			 (double) (GetCurrentTimestamp() - hold) / 1000.0);
	}
	else
		(void) tf_pass_dispatch(false);

	/*
	 * a warm worker for the owners of flows due soon that have none (once
	 * the tick has seen every changed flow: their owners share the pool)
	 */
	if (!more)
		tf_prestart_workers(now, next_due);
	/* and the scheduler's own plans for that due time (or when to) */
	rehearse_at = tf_rehearse_due(now, next_due);

	/* alerts: SLA misses, start the delivery worker (alerts.c) */
	{
		TimestampTz next_sla;

		tf_alerts_pass(now, &next_sla);
		if (next_sla != 0 && (next_due == 0 || next_sla < next_due))
			next_due = next_sla;
	}

	/* a capped step left work (a backlog, a sweep): go on at once */
	if (more)
		return 0;

	if (next_due != 0)
	{
		/*
		 * The pass itself took time: measure the wait from now, not from the
		 * pass start, or every run would start late by a pass's duration.
		 * (Distances, so that this also holds under taskflow.test_clock.)
		 * Aimed at the microsecond and rounded up to the next millisecond
		 * (TimestampDifferenceMilliseconds): the wake comes at most 1 ms
		 * after the due time, never before it (which would cost a pass).
		 */
		if (next_due <= now)
			sleep_ms = 0;
		else
		{
			TimestampTz wake_at = real_start + (next_due - now);

			/* the due time's tick is prepared ahead: wake the lead before it */
			if (tf_prepare_enabled() && next_due == expected_due)
				wake_at = TimestampTzPlusMilliseconds(wake_at, -tf_prepare_lead_ms());
			sleep_ms = Min(sleep_ms,
						   Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), wake_at), 0));
		}
	}
	/* the rehearsal of the next due time (scheduler clock, as next_due) */
	if (rehearse_at != 0)
	{
		TimestampTz wake_at = real_start + (rehearse_at - now);

		sleep_ms = Min(sleep_ms,
					   Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), wake_at), 0));
	}
	/* the next purge (real clock) */
	{
		TimestampTz purge_at = TimestampTzPlusMilliseconds(last_purge,
														   tf_history_purge_interval * 1000L);

		sleep_ms = Min(sleep_ms,
					   TimestampDifferenceMilliseconds(GetCurrentTimestamp(), purge_at) + 1);
	}
	if (next_retry != 0)
	{
		TimestampTz real = GetCurrentTimestamp();

		if (next_retry <= real)
			sleep_ms = Min(sleep_ms, 100);
		else
			sleep_ms = Min(sleep_ms, TimestampDifferenceMilliseconds(real, next_retry) + 1);
	}

	/*
	 * The next safety sweep, when taskflow.run_sweep_interval is shorter than
	 * the longest sleep (at the default the longest sleep brings it).
	 */
	if (tf_run_sweep_interval * 1000L < TF_MAX_SLEEP_MS)
		sleep_ms = Min(sleep_ms,
					   TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
													   TimestampTzPlusMilliseconds(last_run_sweep,
																				   tf_run_sweep_interval * 1000L)) + 1);

	/* a node worker could not be started: try again soon (start_retry_ms) */
	if (start_retry_ms > 0)
		sleep_ms = Min(sleep_ms, start_retry_ms);

	/*
	 * Long timeouts can overshoot in proportion to their length (about 0.1%
	 * on the virtual machines this was measured on: 35 ms late after a 35 s
	 * wait).  Wake a little early instead; the next pass re-aims with a
	 * short, precise wait.
	 */
	if (sleep_ms > 1000)
		sleep_ms -= sleep_ms / 128;
	return sleep_ms;
}

void
tf_scheduler_main(Datum arg)
{
	bool		ok = true;
	char		dbname[NAMEDATALEN];

	my_slot = DatumGetInt32(arg);

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&tf_shared->mutex);
	if (tf_shared->dbs[my_slot].state == TF_DB_FREE ||
		tf_shared->dbs[my_slot].pid != 0)
		ok = false;
	else
	{
		my_dboid = tf_shared->dbs[my_slot].dboid;
		tf_shared->dbs[my_slot].pid = MyProcPid;
		tf_shared->dbs[my_slot].latch = MyLatch;
	}
	strlcpy(dbname, tf_shared->dbs[my_slot].dbname, NAMEDATALEN);
	SpinLockRelease(&tf_shared->mutex);
	if (!ok)
		proc_exit(0);
	before_shmem_exit(tf_scheduler_detach, (Datum) 0);
	pass_cxt = AllocSetContextCreate(TopMemoryContext, "taskflow scheduler pass",
									 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(pass_cxt);

	BackgroundWorkerInitializeConnectionByOid(my_dboid, InvalidOid, 0);

	/*
	 * This session is the bootstrap superuser and runs no user code: its own
	 * queries resolve names in pg_catalog only, whatever search_path the
	 * database's owner set for it (ALTER DATABASE ... SET search_path, or an
	 * operator of their own in public): see docs/security.md.
	 */
	tf_pin_session_settings(true);	/* and what would stop its passes */
	{
		char		appname[NAMEDATALEN];

		snprintf(appname, sizeof(appname), "taskflow scheduler %s", dbname);
		SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_SESSION);
		pgstat_report_appname(appname);
	}

	if (tf_extension_present() == 0)
	{
		tf_set_db_state(TF_DB_ABSENT);
		proc_exit(0);
	}
	tf_set_db_state(TF_DB_PRESENT);
	ereport(LOG, (errmsg("taskflow scheduler started for database \"%s\"", dbname)));

	for (;;)
	{
		long		sleep_ms = 5000;
		int			present;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(pass_cxt);
		MemoryContextReset(pass_cxt);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* taskflow.test_clock may have moved: look at every flow */
			flow_sweep_from = 0;
		}
		present = tf_extension_present();
		if (present == 0)
		{
			ereport(LOG, (errmsg("taskflow scheduler: extension dropped in database \"%s\", exiting",
								 dbname)));
			tf_set_db_state(TF_DB_ABSENT);
			proc_exit(0);
		}

		PG_TRY();
		{
			sleep_ms = present > 0 ? tf_purge_while_idle(tf_scheduler_pass()) : 5000;
		}
		PG_CATCH();
		{
			/* log, clean up, and try again a bit later */
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			MemoryContextSwitchTo(pass_cxt);
			pgstat_report_activity(STATE_IDLE, NULL);
			sleep_ms = 5000;
		}
		PG_END_TRY();

		if (sleep_ms > 0)
		{
			int			rc;

			elog(DEBUG2, "taskflow scheduler: sleeping %ld ms", sleep_ms);
			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						   sleep_ms, PG_WAIT_EXTENSION);
			woke_by_timeout = (rc & WL_TIMEOUT) != 0 && (rc & WL_LATCH_SET) == 0;
			ResetLatch(MyLatch);
		}
	}
}
