/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The node worker: a dynamic background worker (BGW_NEVER_RESTART) that
 *	  runs attempts of node runs and records their outcome.
 *
 *	  Warm workers (taskflow.worker_reuse, on by default): a worker serves
 *	  one database and one owner, connected the same way (see Identity), for
 *	  life.  After a node run it resets its session as DISCARD ALL does
 *	  (portals, session authorization, RESET ALL, prepared statements,
 *	  LISTEN, advisory locks, temporary objects, sequence caches;
 *	  cached plans are kept), marks its slot idle, wakes the scheduler
 *	  and waits on its latch; the scheduler hands it the next node run of the same owner
 *	  through the slot (scheduler.c, tf_reserve_worker_slot) or tells it to
 *	  exit (exit_requested: its slot is needed by another owner or database,
 *	  or cancel_run terminates it).  While no scheduler waits for a slot, it
 *	  takes the next ready node run of the same run itself (a chain's next
 *	  node; tf_worker_next_in_run) without going idle.  It exits after
 *	  taskflow.worker_idle_timeout idle (unless a flow of its owner is due
 *	  within another such period: tf_worker_due_soon), after
 *	  taskflow.worker_max_nodes node
 *	  runs, and after any node run that failed (an error path may leave state
 *	  behind), was refused, or ran in another database.  The owner checks,
 *	  the identity switches, application_name and the ps title are redone
 *	  for every node run.
 *
 *	  Owner check: before any of the node's code runs, the owner must be
 *	  able to connect to the database (taskflow._owner_refusal: exists,
 *	  LOGIN or a group role a superuser allowed with
 *	  taskflow.allow_group_owner, CONNECTION LIMIT not 0, VALID UNTIL not
 *	  past, CONNECT); otherwise the node run fails, without retries.
 *
 *	  Identity: it connects as the flow's owner when that role can log in
 *	  and connect to the database; otherwise (a NOLOGIN group role, say) it
 *	  connects as the bootstrap superuser and runs the node with
 *	  SetUserIdAndSecContext(owner, SECURITY_LOCAL_USERID_CHANGE), which also
 *	  forbids SET ROLE / SET SESSION AUTHORIZATION.  Either way the node's
 *	  code runs with current_user = owner.  Book-keeping (node_runs is not
 *	  writable by users) runs as the bootstrap superuser through
 *	  taskflow._node_* functions that pin their search_path.
 *
 *	  Dispatch: by the node-kind registry (node_kinds.c): kinds of
 *	  TF_XACT_ONE(_RR) run through tf_run_in_one_xact, TF_XACT_OWN kinds
 *	  (sql, wait, copy) through their executor, which uses the services
 *	  below (tf_node_xact_begin, tf_node_succeeded_in_xact, ...).
 *
 *	  Transactions: sql / notify / archive nodes run in one transaction that
 *	  also records their success (REPEATABLE READ for archive).  A failure
 *	  is caught, the transaction aborted, and failed/retrying recorded in a
 *	  new one.  wait nodes poll in short transactions of their own, and
 *	  between polls more than TF_WAIT_HOLD_MS apart give the worker back
 *	  (taskflow._node_wait_again: 'retrying' until the next poll, same
 *	  attempt).
 *
 *	  sql nodes in autocommit mode (option "autocommit": true, or a script
 *	  with a statement that cannot run in a transaction block, such as
 *	  VACUUM; decided after rendering, node_sql.c): the script is rendered
 *	  in a transaction, then each statement runs in a transaction of its own
 *	  as the owner (node timeout over the whole script), and the success is
 *	  recorded afterwards in another one: at-least-once, like cross-database
 *	  nodes.
 *
 *	  sql nodes with option "database" (another database): the variables
 *	  and the script are rendered here, in the flow's database, as the
 *	  owner; crossdb.c runs the script in the target database through a
 *	  second worker and hands the outcome back; it is recorded here in a
 *	  transaction of its own (at-least-once, see crossdb.c).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/portal.h"
#include "utils/ps_status.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

/* what _node_begin tells us about the attempt */
typedef struct TfAttempt
{
	int64		flow_id;
	char	   *flow;
	int64		node_id;
	char	   *node;
	char	   *kind;
	char	   *body;
	char	   *options;
	int64		run_id;
	int			attempt;
	char	   *bizdate;
	char	   *cyctime;
	char	   *params;
	int64		timeout_ms;		/* 0: none */
	int64		poll_ms;
	int64		delay_ms;
	char	   *database;
	int64		wait_ms;		/* wait node: how long it has waited already */
	int64		polls;			/* wait node: polls so far */
} TfAttempt;

/* what tf_node_begin found */
typedef enum TfBegin
{
	TF_BEGIN_GONE,				/* not runnable any more (canceled, ...) */
	TF_BEGIN_REFUSED,			/* the owner may not run nodes: failed */
	TF_BEGIN_FAILED,			/* its row cannot be read: failed */
	TF_BEGIN_RUN
} TfBegin;

/*
 * A wait node whose next poll is due within this many ms keeps its worker
 * (sleeps); a longer pause gives the worker back and the scheduler starts a
 * new one for the next poll.
 */
#define TF_WAIT_HOLD_MS		1000
#define TF_WAIT_MAX_MS		(INT64CONST(100) * 366 * 86400 * 1000)	/* a century */

static int	my_slot = -1;
static uint32 my_gen = 0;
static Oid	my_dboid;
static Oid	my_owner;
static bool my_owner_login;
static int64 my_node_run_id;
static int64 my_run_id;			/* run of the node run that ran last, or 0 */

/* memory of the node run in progress, reset after each (NULL: not a worker) */
MemoryContext tf_node_memory = NULL;

static void
tf_worker_detach(int code, Datum arg)
{
	SpinLockAcquire(&tf_shared->mutex);
	if (tf_shared->workers[my_slot].in_use &&
		tf_shared->workers[my_slot].generation == my_gen)
		tf_shared->workers[my_slot].in_use = false;
	SpinLockRelease(&tf_shared->mutex);
	tf_wake_scheduler_now(my_dboid);
	/* other databases with ready nodes held back by a cap */
	tf_wake_waiting_schedulers(my_dboid);
}

/* ---- identity switching ---- */

static void
tf_as_superuser(void)
{
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, SECURITY_LOCAL_USERID_CHANGE);
}

static void
tf_as_owner(void)
{
	if (my_owner_login)
		SetUserIdAndSecContext(my_owner, 0);
	else
		SetUserIdAndSecContext(my_owner, SECURITY_LOCAL_USERID_CHANGE);
}

static void
tf_xact_begin(bool repeatable_read)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (repeatable_read)
		XactIsoLevel = XACT_REPEATABLE_READ;
	/* against deadlocks with DROP EXTENSION (see tf_lock_extension) */
	if (!tf_lock_extension())
	{
		elog(LOG, "taskflow node worker: extension dropped, node run " INT64_FORMAT " is gone",
			 my_node_run_id);
		proc_exit(0);
	}
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
tf_xact_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* the commit left us in TopMemoryContext: back to the node run's */
	if (tf_node_memory != NULL)
		MemoryContextSwitchTo(tf_node_memory);
	pgstat_report_stat(false);
}

/* ---- book-keeping (as superuser, inside an open SPI transaction) ---- */

static char *
tf_copy_value(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

static int64
tf_int8_value(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * May the flow's owner run nodes now (taskflow._owner_refusal: it exists,
 * may log in, or is a group role a superuser allowed, CONNECTION LIMIT not
 * 0, VALID UNTIL not past, CONNECT on the database)?  If not, fail the node
 * run (no retry) with the rule that refused it.  Inside the begin
 * transaction, as superuser, before any of the owner's code runs.
 */
static bool
tf_owner_refused(TfAttempt *a)
{
	Oid			owner_type[1] = {OIDOID};
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char	   *sqlstate;
	char	   *message;

	values[0] = ObjectIdGetDatum(my_owner);
	if (SPI_execute_with_args("SELECT sqlstate, message FROM taskflow._owner_refusal($1)",
							  1, owner_type, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow._owner_refusal failed");
	sqlstate = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	message = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (message == NULL)
		return false;

	ereport(LOG,
			(errmsg("taskflow node %s.%s (run " INT64_FORMAT "): refused: %s",
					a->flow, a->node, a->run_id, message)));
	values[0] = Int64GetDatum(my_node_run_id);
	values[1] = CStringGetTextDatum(message);
	values[2] = CStringGetTextDatum(sqlstate ? sqlstate : "28000");
	if (SPI_execute_with_args("SELECT taskflow._node_refused($1, $2, $3)",
							  3, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._node_refused failed");
	return true;
}

/* mark the node run running and check its owner */
static TfBegin
tf_node_begin(TfAttempt *a, MemoryContext cxt)
{
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(my_node_run_id), Int32GetDatum(MyProcPid)};
	HeapTuple	tup;
	TupleDesc	desc;
	TfBegin		result = TF_BEGIN_GONE;

	tf_xact_begin(false);
	tf_as_superuser();

	/*
	 * This commit is durable before any of the node's work starts, whatever
	 * the owner's or database's synchronous_commit: cancel_run, crash
	 * recovery and retries = 0 rely on it, and so does the scheduler's tick,
	 * which commits asynchronously (scheduler.c, tf_pass_tick): flushing
	 * this commit flushes the tick's before it.
	 */
	if (synchronous_commit < SYNCHRONOUS_COMMIT_LOCAL_FLUSH)
		(void) set_config_option("synchronous_commit", "local", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	if (SPI_execute_with_args("SELECT flow_id, flow, node_id, node, kind, body, options, "
							  "run_id, attempt, bizdate, cyctime, params, timeout_ms, "
							  "poll_ms, delay_ms, database, wait_ms, polls "
							  "FROM taskflow._node_begin($1, $2)",
							  2, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._node_begin failed");
	if (SPI_processed == 1)
	{
		tup = SPI_tuptable->vals[0];
		desc = SPI_tuptable->tupdesc;
		a->flow_id = tf_int8_value(tup, desc, 1);
		a->flow = tf_copy_value(tup, desc, 2, cxt);
		a->node_id = tf_int8_value(tup, desc, 3);
		a->node = tf_copy_value(tup, desc, 4, cxt);
		a->kind = tf_copy_value(tup, desc, 5, cxt);
		a->body = tf_copy_value(tup, desc, 6, cxt);
		a->options = tf_copy_value(tup, desc, 7, cxt);
		a->run_id = tf_int8_value(tup, desc, 8);
		a->attempt = (int) tf_int8_value(tup, desc, 9);
		a->bizdate = tf_copy_value(tup, desc, 10, cxt);
		a->cyctime = tf_copy_value(tup, desc, 11, cxt);
		a->params = tf_copy_value(tup, desc, 12, cxt);
		a->timeout_ms = tf_int8_value(tup, desc, 13);
		a->poll_ms = tf_int8_value(tup, desc, 14);
		a->delay_ms = tf_int8_value(tup, desc, 15);
		a->database = tf_copy_value(tup, desc, 16, cxt);
		a->wait_ms = tf_int8_value(tup, desc, 17);
		a->polls = tf_int8_value(tup, desc, 18);

		/*
		 * The flow must still belong to this worker's owner: it can change
		 * owner between the hand-off and now, or between two node runs of
		 * one run that a warm worker takes.  Checked after the body was read,
		 * with a newer snapshot (taskflow._node_owner, 99_review.sql); on a
		 * mismatch the begin is rolled back, the node run stays pending and
		 * the scheduler hands it to a worker of the new owner.
		 */
		{
			Oid			owner_type[1] = {INT8OID};
			Datum		owner_value[1] = {Int64GetDatum(my_node_run_id)};
			bool		isnull = true;
			Oid			owner = InvalidOid;

			if (SPI_execute_with_args("SELECT taskflow._node_owner($1)",
									  1, owner_type, owner_value, NULL, false, 1) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "taskflow._node_owner failed");
			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
			if (isnull || owner != my_owner)
			{
				ereport(LOG,
						(errmsg("taskflow node worker: node run " INT64_FORMAT " belongs to another owner now (role %u, this worker serves role %u): left to the scheduler",
								my_node_run_id, isnull ? InvalidOid : owner, my_owner)));
				SPI_finish();
				PopActiveSnapshot();
				AbortCurrentTransaction();
				if (tf_node_memory != NULL)
					MemoryContextSwitchTo(tf_node_memory);
				return TF_BEGIN_GONE;
			}
		}
		result = tf_owner_refused(a) ? TF_BEGIN_REFUSED : TF_BEGIN_RUN;
	}
	tf_xact_commit();
	return result;
}

/*
 * tf_node_begin, but a node whose catalog row cannot even be read into an
 * attempt (a data exception, SQLSTATE class 22: say an option "poll_interval"
 * that is no interval, written past the API's checks) fails with that error
 * instead of making every worker exit before starting it.  Other errors
 * (a deadlock, ...) are thrown: the scheduler dispatches again
 * (TF_MAX_DISPATCH_TRIES).
 */
static TfBegin
tf_node_begin_or_fail(TfAttempt *a, MemoryContext cxt)
{
	MemoryContext old = CurrentMemoryContext;
	volatile TfBegin result = TF_BEGIN_GONE;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		result = tf_node_begin(a, cxt);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();

	if (edata == NULL)
		return result;
	MemoryContextSwitchTo(old);
	ereport(LOG,
			(errmsg("taskflow node worker: node run " INT64_FORMAT " cannot start: %s",
					my_node_run_id, edata->message)));
	{
		Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
		Datum		values[3];

		tf_xact_begin(false);
		tf_as_superuser();
		values[0] = Int64GetDatum(my_node_run_id);
		values[1] = CStringGetTextDatum(edata->message);
		values[2] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
		if (SPI_execute_with_args("SELECT taskflow._node_unstartable($1, $2, $3)",
								  3, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "taskflow._node_unstartable failed");
		tf_xact_commit();
	}
	return TF_BEGIN_FAILED;
}

/* bind rendered text and log (either may be absent) as SPI args 3 and 4 */
static void
tf_bind_rendered_log(TfNodeExec *x, Datum *values, char *nulls)
{
	if (x->rendered)
		values[3] = CStringGetTextDatum(x->rendered);
	else
		nulls[3] = 'n';
	if (x->log.data && x->log.len > 0)
		values[4] = CStringGetTextDatum(x->log.data);
	else
		nulls[4] = 'n';
}

/*
 * Record success; call inside the node's transaction.  The identity in
 * effect (the owner's, for the atomic kinds) is restored afterwards, so that
 * whatever the node left to run at commit (deferred constraint triggers,
 * WITH HOLD cursors) runs as the owner, never as the superuser.
 *
 * If the node run is no longer 'running' (cancel_run, or crash recovery,
 * changed it while the node ran), the node's work must not commit: ERROR
 * when 'atomic' (the caller's transaction, holding the work, rolls back);
 * else (cross-database node, or autocommit mode: the script already
 * committed 'where') only say so.
 */
static void
tf_node_succeeded(TfNodeExec *x, bool atomic, const char *where)
{
	Oid			argtypes[5] = {INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Oid			save_userid;
	int			save_sec;
	bool		isnull;
	bool		recorded;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	tf_as_superuser();
	values[0] = Int64GetDatum(x->node_run_id);
	values[1] = Int64GetDatum(x->rows);
	values[2] = Int64GetDatum(x->bytes);
	tf_bind_rendered_log(x, values, nulls);
	if (x->rows < 0)
		nulls[1] = 'n';
	if (x->bytes < 0)
		nulls[2] = 'n';
	if (SPI_execute_with_args("SELECT taskflow._node_succeeded($1, $2, $3, $4, $5)",
							  5, argtypes, values, nulls, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow._node_succeeded failed");
	recorded = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  1, &isnull));
	if (!isnull && recorded && x->outputs != NULL)
	{
		/* output variables: with the success, in its transaction */
		Oid			otypes[2] = {INT8OID, TEXTOID};
		Datum		ovalues[2];

		ovalues[0] = Int64GetDatum(x->node_run_id);
		ovalues[1] = CStringGetTextDatum(x->outputs);
		if (SPI_execute_with_args("SELECT taskflow._node_outputs($1, $2::pg_catalog.jsonb)",
								  2, otypes, ovalues, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "taskflow._node_outputs failed");
	}
	SetUserIdAndSecContext(save_userid, save_sec);
	if (!isnull && recorded)
		return;
	if (atomic)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("node run " INT64_FORMAT " is no longer running; its work is rolled back",
						x->node_run_id),
				 errdetail("The run was canceled (or the node run recovered) while the node ran.")));
	ereport(LOG,
			(errmsg("taskflow node %s.%s (run " INT64_FORMAT "): node run " INT64_FORMAT " is no longer running; the script committed %s is not recorded",
					x->flow_name, x->node_name, x->run_id, x->node_run_id, where)));
}

/* record failure (or retry) in a transaction of its own */
static void
tf_node_failed(TfNodeExec *x, const char *message, const char *sqlstate)
{
	Oid			argtypes[5] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	tf_xact_begin(false);
	tf_as_superuser();
	values[0] = Int64GetDatum(x->node_run_id);
	values[1] = CStringGetTextDatum(message ? message : "unknown error");
	values[2] = CStringGetTextDatum(sqlstate ? sqlstate : "XX000");
	tf_bind_rendered_log(x, values, nulls);
	if (SPI_execute_with_args("SELECT taskflow._node_failed($1, $2, $3, $4, $5)",
							  5, argtypes, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._node_failed failed");
	tf_xact_commit();
}

/* the node's variables, computed as the owner */
static Jsonb *
tf_node_variables(TfAttempt *a)
{
	Oid			argtypes[7] = {INT8OID, DATEOID, TIMESTAMPTZOID, INT8OID, TEXTOID, JSONBOID, INT8OID};
	Datum		values[7];
	bool		isnull;
	Datum		d;

	/* nothing to substitute: skip the catalog work (most maintenance nodes) */
	if ((a->body == NULL || strstr(a->body, "${") == NULL) &&
		(a->options == NULL || strstr(a->options, "${") == NULL))
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));

	values[0] = Int64GetDatum(a->flow_id);
	values[1] = DirectFunctionCall1(date_in, CStringGetDatum(a->bizdate));
	values[2] = DirectFunctionCall3(timestamptz_in, CStringGetDatum(a->cyctime),
									ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	values[3] = Int64GetDatum(a->run_id);
	values[4] = CStringGetTextDatum(a->node);
	values[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(a->params));
	values[6] = Int64GetDatum(a->node_id);
	/* output variables ${node.column} of upstream nodes (91_outvars.sql) */
	if (SPI_execute_with_args("SELECT taskflow._variables($1, $2, $3, $4, $5, $6)"
							  " OPERATOR(pg_catalog.||) taskflow._output_variables($4, $7)",
							  7, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow._variables failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		elog(ERROR, "taskflow._variables returned NULL");
	return DatumGetJsonbPCopy(d);
}

static void
tf_arm_timeout(TfAttempt *a)
{
	if (a->timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(a->timeout_ms, INT_MAX));
}

static void
tf_disarm_timeout(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
}

/* ---- kinds ---- */

/*
 * sql: render, then either run the script in the same transaction and
 * record its success there (atomic), or, in autocommit mode, commit, run
 * each statement in a transaction of its own and record the success in a
 * new one.
 */
void
tf_worker_run_sql(TfNodeExec *x)
{
	TfAttempt  *a = (TfAttempt *) x->worker_attempt;
	const char *reason;

	tf_xact_begin(false);
	tf_as_owner();
	x->vars = tf_node_variables(a);
	tf_render_sql(x);
	{
		char	   *server = tf_node_option(x->options, "server");

		if (server)
		{
			/* option "server": the script runs on a remote server */
			tf_exec_sql_remote(x, tf_render(server, x->vars, "option \"server\""));
			return;
		}
	}
	if (!tf_sql_autocommit(x->rendered, tf_sql_autocommit_option(x->options), &reason))
	{
		tf_arm_timeout(a);
		tf_capture_begin(x);
		tf_exec_sql(x);
		tf_capture_end();
		tf_disarm_timeout();
		tf_node_succeeded(x, true, NULL);
		tf_xact_commit();		/* as the owner: see tf_node_succeeded */
		return;
	}
	tf_xact_commit();
	x->vars = NULL;				/* freed with the transaction */

	tf_node_log(x, "autocommit mode (%s): each statement commits on its own", reason);
	tf_as_owner();
	tf_arm_timeout(a);
	tf_capture_begin(x);
	tf_exec_sql_autocommit(x, x->rendered);
	CHECK_FOR_INTERRUPTS();		/* a timeout that fired during the last commit */
	tf_capture_end();
	tf_disarm_timeout();

	tf_autocommit_reset_session();
	tf_xact_begin(false);
	tf_node_succeeded(x, false, "in autocommit mode");
	tf_xact_commit();
}

/*
 * Kinds of TF_XACT_ONE(_RR) (notify, archive, ...): one transaction, success
 * recorded inside it.
 */
static void
tf_run_in_one_xact(TfAttempt *a, TfNodeExec *x)
{
	tf_xact_begin(x->def->xact == TF_XACT_ONE_RR);
	tf_as_owner();
	x->vars = tf_node_variables(a);
	tf_arm_timeout(a);
	tf_capture_begin(x);
	x->def->execute(x);
	tf_capture_end();
	tf_disarm_timeout();
	tf_node_succeeded(x, true, NULL);
	tf_xact_commit();			/* as the owner: see tf_node_succeeded */
}

/* sql with option "database": render here, run there, record here */
static void
tf_run_other_db(TfAttempt *a, TfNodeExec *x)
{
	TfCrossDbTarget t;
	char		what[NAMEDATALEN + 32];
	char	   *rendered;

	tf_xact_begin(false);
	tf_as_owner();
	x->vars = tf_node_variables(a);
	snprintf(what, sizeof(what), "node \"%s\" body", a->node);
	rendered = tf_render(a->body, x->vars, what);
	x->rendered = MemoryContextStrdup(tf_node_memory, rendered);
	tf_as_superuser();
	tf_crossdb_target(a->database, my_owner, &t);
	tf_xact_commit();
	x->vars = NULL;				/* freed with the transaction */

	tf_crossdb_run(x, &t, a->timeout_ms, my_slot, my_gen);

	tf_xact_begin(false);
	tf_node_succeeded(x, false, "in the other database");
	tf_xact_commit();
}

/* true when option "database" names another database than ours */
static bool
tf_other_database(TfAttempt *a)
{
	bool		other;

	if (a->database == NULL)
		return false;
	StartTransactionCommand();
	other = strcmp(a->database, get_database_name(MyDatabaseId)) != 0;
	CommitTransactionCommand();
	return other;
}

/* sleep up to ms, waking for interrupts */
static void
tf_sleep_ms(long ms)
{
	if (ms <= 0)
		return;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
tf_wait_timed_out(TfAttempt *a)
{
	ereport(ERROR,
			(errcode(ERRCODE_QUERY_CANCELED),
			 errmsg("%s node \"%s\" timed out after " INT64_FORMAT " ms",
					a->kind, a->node, a->timeout_ms)));
}

/*
 * A wait node's pause until ms from now: short pauses sleep here; longer
 * ones record the node run 'retrying' until then (same attempt, the wait
 * goes on: taskflow._node_wait_again) and give the worker back; the
 * scheduler starts a new worker when it is due.  Returns false when the
 * worker must exit (the pause was handed to the scheduler, or the node run
 * was canceled meanwhile).  Outside a transaction.
 */
static bool
tf_wait_pause(TfNodeExec *x, int64 ms, int polls)
{
	Oid			argtypes[5] = {INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	if (ms <= TF_WAIT_HOLD_MS)
	{
		tf_sleep_ms((long) Max(ms, 1));
		return true;
	}
	tf_xact_begin(false);
	tf_as_superuser();
	values[0] = Int64GetDatum(x->node_run_id);
	values[1] = Int64GetDatum(polls);
	values[2] = Int64GetDatum(ms);
	tf_bind_rendered_log(x, values, nulls);
	if (SPI_execute_with_args("SELECT taskflow._node_wait_again($1, $2, $3, $4, $5)",
							  5, argtypes, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._node_wait_again failed");
	tf_xact_commit();
	return false;
}

/*
 * wait: delay, then poll the condition, each poll in its own transaction.
 * The wait started a->wait_ms ago (earlier workers of the same attempt);
 * its timeout (the node's, else taskflow.wait_timeout) counts from there.
 */
void
tf_worker_run_wait(TfNodeExec *x)
{
	TfAttempt  *a = (TfAttempt *) x->worker_attempt;
	TimestampTz start = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), -a->wait_ms);
	TimestampTz deadline;
	TimestampTz ready_at;
	char	   *condition = NULL;
	int			polls = (int) a->polls;

	/*
	 * Intervals written into the catalog past the API's checks can be huge:
	 * clamp them (to a century) so that the timestamp arithmetic below
	 * cannot overflow.
	 */
	a->poll_ms = Min(Max(a->poll_ms, 1), TF_WAIT_MAX_MS);
	a->delay_ms = Min(Max(a->delay_ms, 0), TF_WAIT_MAX_MS);
	a->timeout_ms = Min(a->timeout_ms, TF_WAIT_MAX_MS);
	if (a->timeout_ms <= 0 && tf_wait_timeout > 0)
		a->timeout_ms = (int64) tf_wait_timeout * 1000;
	deadline = a->timeout_ms > 0 ? TimestampTzPlusMilliseconds(start, a->timeout_ms) : 0;
	ready_at = TimestampTzPlusMilliseconds(start, a->delay_ms);

	/* the delay before the first poll */
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz until = deadline && deadline < ready_at ? deadline : ready_at;

		if (now >= ready_at)
			break;
		if (deadline && now >= deadline)
			tf_wait_timed_out(a);
		if (!tf_wait_pause(x, TimestampDifferenceMilliseconds(now, until) + 1, polls))
			return;
	}

	for (;;)
	{
		bool		done = true;
		TimestampTz now;
		TimestampTz next;

		if (deadline && GetCurrentTimestamp() >= deadline)
			tf_wait_timed_out(a);
		tf_xact_begin(false);
		tf_as_owner();
		if (x->vars == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(tf_node_memory);

			x->vars = tf_node_variables(a);
			MemoryContextSwitchTo(old);
		}
		if (a->body)
		{
			if (condition == NULL)
			{
				condition = tf_render(a->body, x->vars, "wait condition");
				condition = MemoryContextStrdup(tf_node_memory, condition);
				x->rendered = condition;
			}
			tf_arm_timeout(a);
			tf_capture_begin(x);
			done = tf_wait_check(x, condition);
			tf_capture_end();
			tf_disarm_timeout();
			polls++;
		}
		if (done)
		{
			tf_node_log(x, "condition met after %d poll(s)", polls);
			x->rows = polls;
			tf_node_succeeded(x, true, NULL);
			tf_xact_commit();
			return;
		}
		tf_xact_commit();

		/* the next poll, or the deadline if that comes first */
		now = GetCurrentTimestamp();
		next = TimestampTzPlusMilliseconds(now, a->poll_ms);
		if (deadline && next > deadline)
			next = deadline;
		if (!tf_wait_pause(x, TimestampDifferenceMilliseconds(now, next) + 1, polls))
			return;
	}
}

/*
 * Check nodes (node_check.c): the wait executor on a condition made from
 * the node's options instead of a body.
 */
void
tf_worker_run_wait_on(TfNodeExec *x, const char *condition)
{
	TfAttempt  *a = (TfAttempt *) x->worker_attempt;

	a->body = MemoryContextStrdup(tf_node_memory, condition);
	tf_worker_run_wait(x);
}

/* ---- services for the executors of TF_XACT_OWN kinds (engine.h) ---- */

void
tf_node_xact_begin(bool repeatable_read)
{
	tf_xact_begin(repeatable_read);
}

void
tf_node_xact_commit(void)
{
	tf_xact_commit();
}

void
tf_node_as_owner(void)
{
	tf_as_owner();
}

void
tf_node_as_superuser(void)
{
	tf_as_superuser();
}

Jsonb *
tf_node_vars(TfNodeExec *x)
{
	return tf_node_variables((TfAttempt *) x->worker_attempt);
}

void
tf_node_succeeded_in_xact(TfNodeExec *x, bool atomic, const char *where)
{
	tf_node_succeeded(x, atomic, where);
}

void
tf_node_arm_timeout(TfNodeExec *x)
{
	tf_arm_timeout((TfAttempt *) x->worker_attempt);
}

void
tf_node_disarm_timeout(void)
{
	tf_disarm_timeout();
}

/*
 * Run the attempt and record its outcome; in tf_node_memory.  Returns true
 * when this process may take another node run: the node ran here (not in
 * another database) and did not fail.
 */
static bool
tf_run_attempt(TfAttempt *a)
{
	TfNodeExec *x = MemoryContextAllocZero(tf_node_memory, sizeof(TfNodeExec));
	MemoryContext cxt = tf_node_memory;
	volatile bool reusable = true;

	x->run_id = a->run_id;
	x->node_run_id = my_node_run_id;
	x->node_id = a->node_id;
	x->attempt = a->attempt;
	x->flow_name = a->flow;
	x->node_name = a->node;
	x->kind = a->kind;
	x->owner = my_owner;
	x->body = a->body;
	x->options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(a->options)));
	x->rows = -1;
	x->bytes = -1;
	x->timeout_ms = a->timeout_ms;
	x->worker_attempt = a;
	{
		MemoryContext old = MemoryContextSwitchTo(tf_node_memory);

		initStringInfo(&x->log);
		MemoryContextSwitchTo(old);
	}

	PG_TRY();
	{
		/* dispatch through the node-kind registry (node_kinds.c) */
		x->def = tf_node_kind(a->kind);
		if (x->def == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown node kind \"%s\"", a->kind)));
		if ((x->def->flags & TF_KIND_CROSSDB) && tf_other_database(a))
		{
			reusable = false;	/* a second worker, crossdb.c's state */
			tf_run_other_db(a, x);
		}
		else if (x->def->xact == TF_XACT_OWN)
			x->def->execute(x);
		else
			tf_run_in_one_xact(a, x);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *message;

		reusable = false;
		tf_capture_end();
		tf_disarm_timeout();
		QueryCancelPending = false;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		tf_autocommit_reset_session();
		MemoryContextSwitchTo(cxt);
		/* other kinds may have rendered into memory the abort just freed */
		if (x->def && (x->def->flags & TF_KIND_RENDERED_XACT))
			x->rendered = NULL;

		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && a->timeout_ms > 0 &&
			!(x->def && (x->def->flags & TF_KIND_OWN_TIMEOUT)))
			message = psprintf("node timed out after " INT64_FORMAT " ms (%s)",
							   a->timeout_ms, edata->message);
		else if (edata->detail)
			message = psprintf("%s\nDETAIL: %s", edata->message, edata->detail);
		else
			message = edata->message;
		ereport(LOG,
				(errmsg("taskflow node %s.%s (run " INT64_FORMAT ", attempt %d) failed: %s",
						a->flow, a->node, a->run_id, a->attempt, edata->message)));
		tf_node_failed(x, message, unpack_sql_state(edata->sqlerrcode));
	}
	PG_END_TRY();
	return reusable;
}

/* pg_stat_activity.application_name: neutral (see tf_worker_run_one) */
static void
tf_set_appname(const char *appname)
{
	SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname(appname);
}

/*
 * Run the node run my_node_run_id (begin, owner checks, attempt, outcome);
 * in tf_node_memory.  Returns true when this process may take another one.
 */
static bool
tf_worker_run_one(void)
{
	TfAttempt	a;
	char		title[128];
	bool		reusable;

	memset(&a, 0, sizeof(a));
	my_run_id = 0;
	switch (tf_node_begin_or_fail(&a, tf_node_memory))
	{
		case TF_BEGIN_GONE:
			elog(DEBUG1, "taskflow node worker: node run " INT64_FORMAT " is not runnable any more", my_node_run_id);
			return true;		/* canceled or already handled */
		case TF_BEGIN_REFUSED:
			return false;		/* recorded and logged; the owner changed */
		case TF_BEGIN_FAILED:
			return true;		/* recorded and logged; nothing of it ran */
		case TF_BEGIN_RUN:
			break;
	}

	my_run_id = a.run_id;
	snprintf(title, sizeof(title), "taskflow node %s.%s run " INT64_FORMAT,
			 a.flow, a.node, a.run_id);
	/* the ps title (OS administrators) names the flow and node */
	set_ps_display(title);
	{
		char		appname[NAMEDATALEN];

		/*
		 * pg_stat_activity.application_name is visible to every role: a
		 * neutral name only (the node run id; see docs/security.md).  The
		 * names go to the query column, which only members of the owner
		 * (the worker's role), superusers and pg_read_all_stats see.
		 */
		snprintf(appname, sizeof(appname), "taskflow node run " INT64_FORMAT, my_node_run_id);
		tf_set_appname(appname);
	}
	pgstat_report_activity(STATE_RUNNING, title);

	reusable = tf_run_attempt(&a);

	pgstat_report_activity(STATE_IDLE, NULL);
	return reusable;
}

/*
 * Between two node runs: reset the session as DISCARD ALL does, outside any
 * transaction block, as the user the worker connected as (the owner, or the
 * bootstrap superuser for owners that cannot log in; identity is switched
 * again for every transaction of the next node run).  What the worker set
 * itself at PGC_S_OVERRIDE (log_min_messages) survives RESET ALL;
 * application_name is set again for each node run.  An error here is FATAL
 * (no handler): the worker exits and its slot frees.
 */
static void
tf_worker_reset_session(void)
{
	SetUserIdAndSecContext(my_owner_login ? my_owner : BOOTSTRAP_SUPERUSERID, 0);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* closing portals (WITH HOLD cursors) may run code: first */
	PortalHashTableDeleteAll();
	/* SET SESSION AUTHORIZATION / SET ROLE (only possible when connected as the owner) */
	if (my_owner_login)
		SetPGVariable("session_authorization", NIL, false);
	ResetAllOptions();
	DropAllPreparedStatements();
	Async_UnlistenAll();
	LockReleaseAll(USER_LOCKMETHOD, true);
	/*
	 * No ResetPlanCache(): the cached plans are taskflow's own book-keeping
	 * queries (_node_begin, _node_next_in_run, ...: re-planning them cost
	 * ~3 ms of every node run) and the owner's PL/pgSQL plans; PostgreSQL
	 * revalidates cached plans itself on DDL, search_path and role changes,
	 * and this process serves one owner only.
	 */
	ResetTempTableNamespace();
	ResetSequenceCaches();
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

/*
 * The first node run of our owner that the scheduler's last ready-node read
 * handed ahead (TfDbSlot.ahead_id, scheduler.c tf_set_ahead), taken off the
 * list and claimed in our slot, unless another worker of this database
 * holds it already.  No query: the read ranked it (fair share, priority)
 * and our slot stays busy for the same owner, so neither cap changes; a
 * node run begun meanwhile by another worker is not runnable any more
 * (_node_begin returns nothing).  Returns true with my_node_run_id set.
 */
static bool
tf_worker_take_ahead(bool *last)
{
	TfWorkerSlot *w = &tf_shared->workers[my_slot];
	bool		ok = false;
	int			i;

	*last = true;

	SpinLockAcquire(&tf_shared->mutex);
	if (w->in_use && w->generation == my_gen && !w->exit_requested && !w->idle)
	{
		for (i = 0; i < TF_MAX_DBS && !ok; i++)
		{
			TfDbSlot   *d = &tf_shared->dbs[i];
			int			k;

			if (d->state == TF_DB_FREE || d->dboid != my_dboid)
				continue;
			for (k = 0; k < d->nahead && !ok; k++)
			{
				bool		taken = false;
				int			j;

				if (d->ahead_owner[k] != my_owner)
					continue;
				for (j = 0; j < TF_MAX_WORKERS && !taken; j++)
				{
					TfWorkerSlot *o = &tf_shared->workers[j];

					taken = j != my_slot && o->in_use && !o->idle &&
						o->dboid == my_dboid && o->node_run_id == d->ahead_id[k];
				}
				if (!taken)
				{
					w->node_run_id = d->ahead_id[k];
					w->nodes++;
					my_node_run_id = d->ahead_id[k];
					d->ahead_taken++;
					ok = true;
				}
				/* taken by us or by another worker: off the list */
				memmove(&d->ahead_id[k], &d->ahead_id[k + 1],
						sizeof(int64) * (d->nahead - k - 1));
				memmove(&d->ahead_owner[k], &d->ahead_owner[k + 1],
						sizeof(Oid) * (d->nahead - k - 1));
				d->nahead--;
				k--;
			}
			/* another of our owner's is left on the list */
			for (k = 0; k < d->nahead && *last; k++)
				*last = d->ahead_owner[k] != my_owner;
		}
	}
	SpinLockRelease(&tf_shared->mutex);
	return ok;
}

/*
 * The fast path of a chain or a fan-out: the next node run of the run that
 * just ran here (ready as _sched_ready judges it), or, with none ready
 * there, of another running run of the same owner (many flows due at once:
 * taskflow._node_next_for_owner), claimed in our slot without a scheduler
 * pass.  Only while no scheduler waits for a worker slot
 * for another owner, or another database (the ready nodes held back for
 * want of a slot rank our owner first, or only owners at their own cap
 * wait): otherwise the worker goes back to the scheduler, whose ranking
 * decides who gets it.  Both caps are
 * unaffected (the slot stays busy, same owner).  A scheduler that picked the
 * same node run meanwhile hands it to another worker, which finds it taken
 * (_node_begin returns nothing).  Returns true with my_node_run_id set.
 */
static bool
tf_worker_next_in_run(void)
{
	TfWorkerSlot *w = &tf_shared->workers[my_slot];
	Datum		ids[TF_MAX_WORKERS];
	Oid			argtypes[3] = {INT8OID, INT8ARRAYOID, INT4OID};
	Datum		values[3];
	int64	   *cand = NULL;
	int			ncand = 0;
	int			n = 0;
	bool		waiting = false;
	bool		backlog = false;
	uint64		nrows = 0;
	bool		ok = false;
	bool		other_run = false;
	bool		last_ahead;
	int			i;
	int			c;

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_DBS; i++)
	{
		TfDbSlot   *d = &tf_shared->dbs[i];

		/*
		 * Held back for want of a free slot, and not (only) our owner's
		 * nodes in our database: the scheduler decides.  Owners held back
		 * only by their own cap (rank INT_MAX) gain nothing from our slot.
		 */
		if (d->state != TF_DB_FREE && d->waiting && d->waiting_rank != INT_MAX &&
			!(d->dboid == my_dboid && d->waiting_owner == my_owner))
			waiting = true;
		if (d->state != TF_DB_FREE && d->dboid == my_dboid && d->backlog)
			backlog = true;
	}
	for (i = 0; i < TF_MAX_WORKERS; i++)
	{
		TfWorkerSlot *o = &tf_shared->workers[i];

		if (i != my_slot && o->in_use && !o->idle && o->dboid == my_dboid)
			ids[n++] = Int64GetDatum(o->node_run_id);
	}
	SpinLockRelease(&tf_shared->mutex);
	if (waiting)
		return false;

	/*
	 * A chain or fan-out goes on in its own run first (the query below);
	 * a run whose node just ran was handed out by the scheduler's read,
	 * so a handed-ahead node run is taken only once its own run has none.
	 */
	/* the other busy workers may take some of them meanwhile: a few more */
	tf_xact_begin(false);
	tf_as_superuser();
	values[0] = Int64GetDatum(my_run_id);
	values[1] = PointerGetDatum(construct_array(ids, n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[2] = Int32GetDatum(n + 2);
	if (my_run_id != 0)
	{
		if (SPI_execute_with_args("SELECT * FROM taskflow._node_next_in_run($1, $2, $3)",
								  3, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "taskflow._node_next_in_run failed");
		nrows = SPI_processed;
	}
	if (nrows == 0 && tf_worker_take_ahead(&last_ahead))
	{
		/*
		 * Handed ahead by the scheduler's last read: no query.  The
		 * scheduler is woken (to finish our last run, and for a new list)
		 * once the list holds none of our owner's any more; until then the
		 * next of our owner's workers to finish takes the next one.  (1.7
		 * woke it at every take: a pass, and a ready read, per run of a
		 * backlog; 1.8, issue 11.)  A run finished meanwhile waits for
		 * that wake at most as long as the workers take to run the list.
		 */
		tf_xact_commit();
		if (last_ahead)
			tf_wake_scheduler_now(my_dboid);
		return true;
	}
	if (nrows == 0 && backlog)
	{
		/*
		 * Nothing more in this run: the oldest ready node run of another
		 * running run of the same owner (100 flows due at once, a backlog),
		 * without waiting for a scheduler pass.  The scheduler is woken
		 * all the same (below): it finishes the runs whose last node ran.
		 * Only while the scheduler left ready work behind (TfDbSlot.backlog,
		 * scheduler.c tf_set_backlog): otherwise it handed out every ready
		 * node and this read finds nothing, at the cost of its siblings'
		 * begins.
		 */
		Oid			oargtypes[3] = {OIDOID, INT8ARRAYOID, INT4OID};

		values[0] = ObjectIdGetDatum(my_owner);
		other_run = true;
		if (SPI_execute_with_args("SELECT * FROM taskflow._node_next_for_owner($1, $2, $3)",
								  3, oargtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "taskflow._node_next_for_owner failed");
		nrows = SPI_processed;
	}
	cand = MemoryContextAlloc(tf_node_memory, sizeof(int64) * (nrows + 1));
	for (i = 0; i < (int) nrows; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			cand[ncand++] = DatumGetInt64(d);
	}
	tf_xact_commit();
	if (ncand == 0)
		return false;

	/* the first candidate no other worker of this database claimed */
	SpinLockAcquire(&tf_shared->mutex);
	if (w->in_use && w->generation == my_gen && !w->exit_requested && !w->idle)
	{
		for (c = 0; c < ncand && !ok; c++)
		{
			bool		taken = false;

			for (i = 0; i < TF_MAX_WORKERS && !taken; i++)
			{
				TfWorkerSlot *o = &tf_shared->workers[i];

				taken = i != my_slot && o->in_use && !o->idle &&
					o->dboid == my_dboid && o->node_run_id == cand[c];
			}
			if (!taken)
			{
				w->node_run_id = cand[c];
				w->nodes++;
				my_node_run_id = cand[c];
				ok = true;
			}
		}
	}
	SpinLockRelease(&tf_shared->mutex);
	if (!ok)
		return false;

	/*
	 * More ready in this run (a fan-out): the scheduler hands out the rest,
	 * if it has a worker to give (not when every slot is busy).
	 */
	if (other_run || (c < ncand && tf_workers_busy() < tf_max_workers))
		tf_wake_scheduler_now(my_dboid);
	return true;
}

/*
 * Is a flow of our owner due within the next idle period
 * (taskflow._owner_due_soon, one index range scan of flows.next_due)?
 */
static bool
tf_worker_due_soon(void)
{
	Oid			argtypes[2] = {OIDOID, INT4OID};
	Datum		values[2];
	bool		soon = false;
	bool		isnull;
	MemoryContext old = CurrentMemoryContext;

	tf_xact_begin(false);
	tf_as_superuser();
	values[0] = ObjectIdGetDatum(my_owner);
	values[1] = Int32GetDatum(tf_worker_idle_timeout);
	if (SPI_execute_with_args("SELECT taskflow._owner_due_soon($1, $2)",
							  2, argtypes, values, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		soon = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										  &isnull)) && !isnull;
	tf_xact_commit();
	/* the identity of an idle worker (tf_worker_reset_session) */
	SetUserIdAndSecContext(my_owner_login ? my_owner : BOOTSTRAP_SUPERUSERID, 0);
	MemoryContextSwitchTo(old);
	return soon;
}

/*
 * Idle: mark the slot idle, wake the scheduler (and the schedulers waiting
 * for a slot elsewhere: this one can be reclaimed), reset the session and
 * wait on the latch for the next node run.  Returns true with my_node_run_id set when the
 * scheduler handed one; false when the worker must exit (asked to, idle
 * timeout, taskflow.worker_reuse turned off).
 */
static bool
tf_worker_wait_next(void)
{
	TfWorkerSlot *w = &tf_shared->workers[my_slot];
	TimestampTz idle_since = GetCurrentTimestamp();
	bool		ok = false;

	SpinLockAcquire(&tf_shared->mutex);
	if (w->in_use && w->generation == my_gen && !w->exit_requested)
	{
		/*
		 * A worker started ahead (my_node_run_id 0) publishes its latch when
		 * it attaches, so the scheduler may have handed it a node run while
		 * it connected and warmed up: take that one, do not mark the slot
		 * idle over it.
		 */
		if (my_node_run_id == 0 && !w->idle && w->node_run_id != 0)
		{
			my_node_run_id = w->node_run_id;
			SpinLockRelease(&tf_shared->mutex);
			return true;
		}
		w->idle = true;
		w->node_run_id = 0;
		w->run_id = 0;
		ok = true;
	}
	SpinLockRelease(&tf_shared->mutex);
	if (!ok)
		return false;
	my_node_run_id = 0;
	tf_wake_scheduler_now(my_dboid);
	tf_wake_waiting_schedulers(my_dboid);

	/*
	 * Reset while the scheduler runs its pass: a node run it hands us
	 * meanwhile waits in the slot until the session is clean.
	 */
	tf_worker_reset_session();

	set_ps_display("taskflow idle worker");
	tf_set_appname("taskflow idle worker");
	pgstat_report_activity(STATE_IDLE, NULL);

	for (;;)
	{
		TimestampTz deadline;
		TimestampTz now;
		bool		handed = false;
		bool		leave = false;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		deadline = TimestampTzPlusMilliseconds(idle_since,
											   (int64) tf_worker_idle_timeout * 1000);
		now = GetCurrentTimestamp();

		SpinLockAcquire(&tf_shared->mutex);
		if (!w->in_use || w->generation != my_gen || w->exit_requested)
			leave = true;
		else if (!w->idle)
		{
			handed = true;
			my_node_run_id = w->node_run_id;
		}
		else if (!tf_worker_reuse)
		{
			/* never handed anything from now on */
			w->exit_requested = true;
			leave = true;
		}
		SpinLockRelease(&tf_shared->mutex);
		if (handed)
			return true;
		if (leave)
			return false;
		if (now >= deadline)
		{
			/*
			 * Idle long enough: stay for another period only if a flow of
			 * our owner is due within it (a minute schedule then always
			 * finds a warm worker instead of one that left a moment
			 * before); else leave.  The scheduler can still ask us to
			 * leave (exit_requested) when another owner needs the slot.
			 */
			bool		stay = tf_worker_due_soon();

			SpinLockAcquire(&tf_shared->mutex);
			if (!w->in_use || w->generation != my_gen || w->exit_requested)
				leave = true;
			else if (!w->idle)
			{
				handed = true;
				my_node_run_id = w->node_run_id;
			}
			else if (!stay)
			{
				w->exit_requested = true;
				leave = true;
			}
			SpinLockRelease(&tf_shared->mutex);
			if (handed)
				return true;
			if (leave)
				return false;
			idle_since = now;
			continue;
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 TimestampDifferenceMilliseconds(now, deadline) + 1,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * A worker started ahead (no node run yet) warms what its first node run
 * needs besides _node_begin (warmed by tf_worker_main): the owner check, the
 * success record and the next-node reads -- catalog caches and compiled
 * PL/pgSQL bodies -- with node run 0, which does not exist, in a transaction
 * it rolls back (nothing would be written anyway).  A fresh worker's first
 * node took ~10 ms longer than a warm one's from begin to success here
 * (issue 11: the first minute of 10 flows due at once).  An error only ends
 * the warm-up.
 */
static void
tf_worker_warm_up(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(my_owner)};

	PG_TRY();
	{
		tf_xact_begin(false);
		tf_as_superuser();
		(void) SPI_execute_with_args("SELECT * FROM taskflow._owner_refusal($1)",
									 1, argtypes, values, NULL, true, 0);
		(void) SPI_execute("SELECT taskflow._node_succeeded(0, NULL, NULL, NULL, NULL)",
						   false, 0);
		(void) SPI_execute("SELECT * FROM taskflow._node_next_in_run(0, '{}', 1)", true, 0);
		(void) SPI_execute_with_args("SELECT * FROM taskflow._node_next_for_owner($1, '{}', 0)",
									 1, argtypes, values, NULL, true, 0);
		SPI_finish();
		PopActiveSnapshot();
		AbortCurrentTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

void
tf_worker_main(Datum arg)
{
	bool		ok = false;
	int			done = 0;

	my_slot = DatumGetInt32(arg);
	memcpy(&my_gen, MyBgworkerEntry->bgw_extra, sizeof(uint32));

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	SpinLockAcquire(&tf_shared->mutex);
	if (tf_shared->workers[my_slot].in_use &&
		tf_shared->workers[my_slot].generation == my_gen &&
		!tf_shared->workers[my_slot].exit_requested)
	{
		TfWorkerSlot *w = &tf_shared->workers[my_slot];

		w->pid = MyProcPid;
		w->latch = MyLatch;
		my_dboid = w->dboid;
		my_owner = w->owner;
		my_owner_login = w->owner_login;
		my_node_run_id = w->node_run_id;
		ok = true;
	}
	SpinLockRelease(&tf_shared->mutex);
	if (!ok)
	{
		elog(DEBUG1, "taskflow node worker: slot %d generation %u is not ours any more", my_slot, my_gen);
		proc_exit(0);
	}
	before_shmem_exit(tf_worker_detach, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(my_dboid,
											  my_owner_login ? my_owner : InvalidOid,
											  0);
	/* NOTICE/INFO go to node_runs.log (captured by node_sql.c), not the log */
	SetConfigOption("log_min_messages", "info", PGC_SUSET, PGC_S_OVERRIDE);
	/* the book-keeping shares the node's transaction: not read-only & co. */
	tf_pin_session_settings(false);
	tf_node_memory = AllocSetContextCreate(TopMemoryContext, "taskflow node run",
										   ALLOCSET_DEFAULT_SIZES);

	/*
	 * Started ahead of a due time (scheduler.c, tf_prestart_workers): no node
	 * run yet.  Warm the caches the first node run needs (catalog caches,
	 * _node_begin's compiled body: node run 0 does not exist, so nothing is
	 * written), then wait idle for it.
	 */
	if (my_node_run_id == 0)
	{
		TfAttempt	a;

		memset(&a, 0, sizeof(a));
		MemoryContextSwitchTo(tf_node_memory);
		(void) tf_node_begin(&a, tf_node_memory);
		tf_worker_warm_up();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(tf_node_memory);
		if (!tf_worker_wait_next())
			proc_exit(0);
	}

	for (;;)
	{
		bool		again;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(tf_node_memory);
		again = tf_worker_run_one();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(tf_node_memory);
		done++;
		if (!again || !tf_worker_reuse || done >= tf_worker_max_nodes ||
			tf_worker_idle_timeout <= 0)
			break;
		if (tf_worker_next_in_run())
		{
			tf_worker_reset_session();
			continue;
		}
		if (!tf_worker_wait_next())
			break;
	}
	proc_exit(0);
}
