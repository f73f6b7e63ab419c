/*-------------------------------------------------------------------------
 *
 * crossdb.c
 *	  Cross-database sql nodes (option "database"): a background worker is
 *	  connected to one database for life, so the node worker of the flow's
 *	  database (worker.c, "phase 1") renders the script there, then starts a
 *	  second, short-lived background worker connected to the target
 *	  database ("phase 2", tf_crossdb_main) and waits for it.  Phase 2 runs
 *	  the script in one transaction as the flow owner (or, in autocommit
 *	  mode, each statement in a transaction of its own: node_sql.c decides,
 *	  from option "autocommit" passed along and the script) and hands the outcome
 *	  (ok, rows, message, detail, SQLSTATE, captured log) back through a
 *	  dynamic shared memory segment; phase 1 records it in the flow's
 *	  database.  The record is therefore not atomic with the script: a
 *	  crash between the commit in the target database and the record makes
 *	  the node run be retried (at-least-once).
 *
 *	  Identity in the target database is chosen like the node worker's:
 *	  connect as the owner when it can log in (and no connection limit is
 *	  in the way), else as the bootstrap superuser and switch with
 *	  SetUserIdAndSecContext(owner, SECURITY_LOCAL_USERID_CHANGE).  Either
 *	  way the owner must have CONNECT on the target database (checked here,
 *	  before phase 2 starts: tf_crossdb_target).
 *
 *	  Phase 2 does not take a taskflow.max_workers slot (phase 1 holds one);
 *	  it records its pid in phase 1's slot so that DROP DATABASE of the
 *	  target database can evict it (shmem.c).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#define TF_XDB_MSG		8192
#define TF_XDB_LOG		(72 * 1024)
/* room for the output variables (JSON text) after the body */
#define TF_XDB_OUTPUTS	(TF_OUTPUT_MAX_TOTAL + TF_OUTPUT_MAX_TOTAL / 2)

/* the segment shared by phase 1 and phase 2 */
typedef struct TfCrossDbShared
{
	/* set by phase 1 */
	Oid			dboid;
	Oid			owner;
	bool		owner_login;
	int64		timeout_ms;
	int			autocommit;		/* option "autocommit": TF_AUTOCOMMIT_* */
	int			slot;			/* phase 1's worker slot */
	uint32		generation;
	char		title[128];
	char		appname[NAMEDATALEN];	/* neutral: no flow/node names */
	Size		body_len;

	/* set by phase 2 */
	bool		done;			/* an outcome was written */
	bool		ok;
	int64		rows;
	char		sqlstate[6];
	char		message[TF_XDB_MSG];
	char		detail[TF_XDB_MSG];
	char		log[TF_XDB_LOG];
	bool		has_outputs;	/* outputs (JSON text) at body + body_len + 1 */
	char		body[FLEXIBLE_ARRAY_MEMBER];
} TfCrossDbShared;

/* phase 1: the running phase 2 worker, terminated if phase 1 exits early */
static BackgroundWorkerHandle *xdb_handle = NULL;
static bool xdb_exit_cb = false;

/* phase 2: our segment */
static TfCrossDbShared *xdb_shared = NULL;

/*
 * Resolve the target database and how to connect to it as 'owner'; run in
 * a transaction of the flow's database.  ERROR if it does not exist, takes
 * no connections, or the owner lacks CONNECT.
 */
void
tf_crossdb_target(const char *database, Oid owner, TfCrossDbTarget *t)
{
	Oid			argtypes[2] = {TEXTOID, OIDOID};
	Datum		values[2];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *rolname;

	values[0] = CStringGetTextDatum(database);
	values[1] = ObjectIdGetDatum(owner);
	/*
	 * This runs as superuser under the session's search_path, which the
	 * owner may control (ALTER ROLE ... SET search_path, when the worker
	 * connected as the owner): every function, operator and type is
	 * schema-qualified so none of the owner's objects can be picked up.
	 */
	if (SPI_execute_with_args("SELECT d.oid, d.datallowconn AND NOT d.datistemplate, "
							  "pg_catalog.has_database_privilege(a.oid, d.oid, 'CONNECT'), "
							  "a.rolcanlogin AND a.rolconnlimit OPERATOR(pg_catalog.<) 0 "
							  "AND d.datconnlimit OPERATOR(pg_catalog.<) 0, "
							  "a.rolname::pg_catalog.text "
							  "FROM pg_catalog.pg_database d, pg_catalog.pg_authid a "
							  "WHERE d.datname OPERATOR(pg_catalog.=) $1::pg_catalog.name "
							  "AND a.oid OPERATOR(pg_catalog.=) $2",
							  2, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look up database \"%s\"", database);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_DATABASE),
				 errmsg("database \"%s\" of option \"database\" does not exist", database),
				 errhint("Create the database, or change the node with taskflow.alter_node().")));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	rolname = SPI_getvalue(tup, desc, 5);
	t->dboid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
	if (!DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("database \"%s\" does not accept connections", database),
				 errhint("A template database, or ALTER DATABASE ... ALLOW_CONNECTIONS false.")));
	if (!DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("flow owner \"%s\" has no CONNECT privilege on database \"%s\"",
						rolname, database),
				 errhint("GRANT CONNECT ON DATABASE %s TO %s;",
						 quote_identifier(database), quote_identifier(rolname))));
	t->owner_login = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	strlcpy(t->dbname, database, NAMEDATALEN);
}

static void
tf_crossdb_on_exit(int code, Datum arg)
{
	if (xdb_handle != NULL)
		TerminateBackgroundWorker(xdb_handle);
}

static dsm_segment *
tf_crossdb_segment(TfNodeExec *x, const TfCrossDbTarget *t, int64 timeout_ms,
				   int slot, uint32 generation)
{
	Size		body_len = strlen(x->rendered);
	dsm_segment *seg;
	TfCrossDbShared *sh;

	seg = dsm_create(add_size(add_size(offsetof(TfCrossDbShared, body), body_len + 1),
							  TF_XDB_OUTPUTS), 0);
	dsm_pin_mapping(seg);		/* outlives transactions / resource owners */
	sh = dsm_segment_address(seg);
	memset(sh, 0, offsetof(TfCrossDbShared, body));
	sh->dboid = t->dboid;
	sh->owner = x->owner;
	sh->owner_login = t->owner_login;
	sh->timeout_ms = timeout_ms;
	sh->autocommit = tf_sql_autocommit_option(x->options);
	sh->slot = slot;
	sh->generation = generation;
	snprintf(sh->title, sizeof(sh->title), "taskflow node %s.%s run " INT64_FORMAT " in %s",
			 x->flow_name, x->node_name, x->run_id, t->dbname);
	snprintf(sh->appname, sizeof(sh->appname), "taskflow node run " INT64_FORMAT,
			 x->node_run_id);
	sh->body_len = body_len;
	memcpy(sh->body, x->rendered, body_len + 1);
	return seg;
}

static void
tf_crossdb_start(dsm_segment *seg, const char *title)
{
	BackgroundWorker worker;

	tf_bgworker_init(&worker, "tf_crossdb_main", "taskflow node", title);
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &xdb_handle))
	{
		xdb_handle = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker for the cross-database node"),
				 errhint("Raise max_worker_processes: a cross-database sql node uses two background workers.")));
	}
}

/* take phase 2's outcome into x; ERROR (re-raised) if it failed */
static void
tf_crossdb_collect(TfNodeExec *x, TfCrossDbShared *sh, const char *dbname)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (sh->log[0] != '\0')
		appendStringInfoString(&x->log, sh->log);
	MemoryContextSwitchTo(old);
	if (!sh->done)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("the worker running the node in database \"%s\" exited without reporting a result",
						dbname),
				 errdetail("It may have been unable to connect, or have been terminated; whether the script committed is unknown."),
				 errhint("See the server log.")));
	if (!sh->ok)
	{
		char		st[6];

		memcpy(st, sh->sqlstate, 5);
		st[5] = '\0';
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(st[0], st[1], st[2], st[3], st[4])),
				 errmsg("%s", sh->message),
				 sh->detail[0] ? errdetail("%s", sh->detail) : 0));
	}
	x->rows = sh->rows;
	if (sh->has_outputs)
		x->outputs = MemoryContextStrdup(tf_node_memory ? tf_node_memory : TopMemoryContext,
										 sh->body + sh->body_len + 1);
}

/*
 * Phase 1: run x->rendered in the target database and wait for the outcome.
 * Call outside a transaction.  On success x->rows and x->log are filled; on
 * failure the target's error (message, detail, SQLSTATE) is re-raised here.
 */
void
tf_crossdb_run(TfNodeExec *x, const TfCrossDbTarget *t, int64 timeout_ms,
			   int slot, uint32 generation)
{
	dsm_segment *seg;
	TfCrossDbShared *sh;

	if (!xdb_exit_cb)
	{
		before_shmem_exit(tf_crossdb_on_exit, (Datum) 0);
		xdb_exit_cb = true;
	}
	seg = tf_crossdb_segment(x, t, timeout_ms, slot, generation);
	sh = dsm_segment_address(seg);
	tf_node_log(x, "running in database \"%s\" as %s", t->dbname,
				t->owner_login ? "the owner (login)" : "superuser switched to the owner");
	PG_TRY();
	{
		tf_crossdb_start(seg, sh->title);
		/* interruptible; a cancel (SIGTERM) ends us, and on_exit ends phase 2 */
		(void) WaitForBackgroundWorkerShutdown(xdb_handle);
		pfree(xdb_handle);
		xdb_handle = NULL;
		pg_read_barrier();
		tf_crossdb_collect(x, sh, t->dbname);
	}
	PG_FINALLY();
	{
		if (xdb_handle != NULL)
		{
			TerminateBackgroundWorker(xdb_handle);
			pfree(xdb_handle);
			xdb_handle = NULL;
		}
		dsm_detach(seg);
	}
	PG_END_TRY();
}

/* ---- phase 2 ---- */

static void
tf_crossdb_set_remote_pid(TfCrossDbShared *sh, pid_t pid)
{
	TfWorkerSlot *w;

	if (sh->slot < 0 || sh->slot >= TF_MAX_WORKERS)
		return;
	w = &tf_shared->workers[sh->slot];
	SpinLockAcquire(&tf_shared->mutex);
	if (w->in_use && w->generation == sh->generation)
	{
		w->remote_dboid = pid ? sh->dboid : InvalidOid;
		w->remote_pid = pid;
	}
	SpinLockRelease(&tf_shared->mutex);
}

static void
tf_crossdb_clear_remote_pid(int code, Datum arg)
{
	if (xdb_shared != NULL)
		tf_crossdb_set_remote_pid(xdb_shared, 0);
}

/* autocommit mode: each statement in a transaction of its own; fills x */
static void
tf_crossdb_autocommit(TfCrossDbShared *sh, TfNodeExec *x, const char *reason)
{
	tf_node_log(x, "autocommit mode (%s): each statement commits on its own", reason);
	SetUserIdAndSecContext(sh->owner,
						   sh->owner_login ? 0 : SECURITY_LOCAL_USERID_CHANGE);
	if (sh->timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(sh->timeout_ms, INT_MAX));
	tf_capture_begin(x);
	tf_exec_sql_autocommit(x, sh->body);
	CHECK_FOR_INTERRUPTS();		/* a timeout that fired during the last commit */
	tf_capture_end();
	disable_timeout(STATEMENT_TIMEOUT, false);
}

/*
 * Run the script as the owner, in one transaction (or in autocommit mode,
 * see node_sql.c); fills x.
 */
static void
tf_crossdb_execute(TfCrossDbShared *sh, TfNodeExec *x)
{
	const char *reason;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	SetUserIdAndSecContext(sh->owner,
						   sh->owner_login ? 0 : SECURITY_LOCAL_USERID_CHANGE);
	if (tf_sql_autocommit(sh->body, sh->autocommit, &reason))
	{
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		tf_crossdb_autocommit(sh, x, reason);
		return;
	}
	if (sh->timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(sh->timeout_ms, INT_MAX));
	tf_capture_begin(x);
	x->rendered = sh->body;
	tf_exec_sql(x);
	tf_capture_end();
	disable_timeout(STATEMENT_TIMEOUT, false);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

void
tf_crossdb_main(Datum arg)
{
	dsm_segment *seg;
	TfCrossDbShared *sh;
	TfNodeExec *x;
	char		appname[NAMEDATALEN];

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	seg = dsm_attach(DatumGetUInt32(arg));
	if (seg == NULL)
		proc_exit(0);			/* phase 1 is gone */
	sh = dsm_segment_address(seg);
	xdb_shared = sh;
	tf_crossdb_set_remote_pid(sh, MyProcPid);
	before_shmem_exit(tf_crossdb_clear_remote_pid, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(sh->dboid,
											  sh->owner_login ? sh->owner : InvalidOid,
											  0);
	SetConfigOption("log_min_messages", "info", PGC_SUSET, PGC_S_OVERRIDE);
	set_ps_display(sh->title);
	strlcpy(appname, sh->appname, sizeof(appname));	/* see worker.c */
	SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname(appname);
	pgstat_report_activity(STATE_RUNNING, sh->title);

	x = MemoryContextAllocZero(TopMemoryContext, sizeof(TfNodeExec));
	x->node_name = "";
	x->rows = -1;
	x->bytes = -1;
	x->owner = sh->owner;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&x->log);
		MemoryContextSwitchTo(old);
	}

	PG_TRY();
	{
		tf_crossdb_execute(sh, x);
		sh->ok = true;
		sh->rows = x->rows;
		/* output variables, for phase 1 to record */
		if (x->outputs && strlen(x->outputs) < TF_XDB_OUTPUTS)
		{
			strlcpy(sh->body + sh->body_len + 1, x->outputs, TF_XDB_OUTPUTS);
			sh->has_outputs = true;
		}
		else if (x->outputs)
			tf_node_log(x, "outputs not recorded: more than %d bytes of JSON", TF_XDB_OUTPUTS);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		tf_capture_end();
		disable_timeout(STATEMENT_TIMEOUT, false);
		QueryCancelPending = false;
		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		sh->ok = false;
		memcpy(sh->sqlstate, unpack_sql_state(edata->sqlerrcode), 5);
		strlcpy(sh->message, edata->message ? edata->message : "unknown error",
				TF_XDB_MSG);
		if (edata->detail)
			strlcpy(sh->detail, edata->detail, TF_XDB_MSG);
	}
	PG_END_TRY();

	strlcpy(sh->log, x->log.data, TF_XDB_LOG);
	pg_write_barrier();
	sh->done = true;
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
