/*-------------------------------------------------------------------------
 *
 * node_sql.c
 *	  The built-in node kinds that need no storage: sql (a script run through
 *	  SPI in the worker's transaction, or statement by statement in
 *	  autocommit mode), notify (pg_notify on a channel, sent at commit) and
 *	  the condition check of wait nodes; plus the capture of
 *	  NOTICE/INFO/WARNING messages raised by a node into node_runs.log
 *	  (an emit_log_hook; NOTICE and INFO are kept out of the server log).
 *
 *	  All of these run as the flow owner inside a transaction the worker
 *	  (worker.c) started, except an sql script in autocommit mode: that one
 *	  is called outside any transaction and runs each statement of the
 *	  script as a top-level statement in a transaction of its own, the way
 *	  exec_simple_query (tcop/postgres.c) and pg_cron's background-worker
 *	  mode do, so that VACUUM, CREATE INDEX CONCURRENTLY and the like work.
 *	  What they render is kept in TopMemoryContext so the worker can record
 *	  it even after an abort.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include <ctype.h>
#include "pqclient.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"

#define TF_MAX_LOG_BYTES (64 * 1024)

static TfNodeExec *capture_x = NULL;
static bool autocommit_ran = false;	/* session settings may have changed */
static bool hook_installed = false;
static emit_log_hook_type prev_emit_log_hook = NULL;

static const char *
tf_level_name(int elevel)
{
	switch (elevel)
	{
		case INFO:
			return "INFO";
		case NOTICE:
			return "NOTICE";
		case WARNING:
			return "WARNING";
		default:
			return "LOG";
	}
}

static void
tf_emit_log(ErrorData *edata)
{
	if (capture_x != NULL && edata->elevel >= INFO && edata->elevel < ERROR &&
		edata->elevel != LOG && edata->elevel != LOG_SERVER_ONLY)
	{
		TfNodeExec *x = capture_x;

		capture_x = NULL;		/* no recursion if logging itself complains */
		if (x->log.len < TF_MAX_LOG_BYTES)
			tf_node_log(x, "%s: %s", tf_level_name(edata->elevel),
						edata->message ? edata->message : "");
		capture_x = x;
		if (edata->elevel < WARNING)
			edata->output_to_server = false;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
tf_capture_begin(TfNodeExec *x)
{
	if (!hook_installed)
	{
		prev_emit_log_hook = emit_log_hook;
		emit_log_hook = tf_emit_log;
		hook_installed = true;
	}
	capture_x = x;
}

void
tf_capture_end(void)
{
	capture_x = NULL;
}

static char *
tf_option(TfNodeExec *x, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&x->options->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static char *
tf_keep(const char *s)
{
	return s ? MemoryContextStrdup(tf_node_memory ? tf_node_memory : TopMemoryContext, s) : NULL;
}

/* sql: render the script into x->rendered (as the owner, in a transaction) */
void
tf_render_sql(TfNodeExec *x)
{
	char		what[NAMEDATALEN + 32];

	snprintf(what, sizeof(what), "node \"%s\" body", x->node_name);
	x->rendered = tf_keep(tf_render(x->body, x->vars, what));
}

/* ---- output variables (docs/variables.md, "Output variables") ---- */


static bool
tf_output_name_ok(const char *name)
{
	const char *p = name;

	if (!(isalpha((unsigned char) *p) || *p == '_'))
		return false;
	for (p++; *p; p++)
		if (!(isalnum((unsigned char) *p) || *p == '_'))
			return false;
	return true;
}

/*
 * The outputs of an sql node: the first row of the last statement of its
 * script (when that statement returns rows), as a JSON object of text
 * values (SQL NULL -> JSON null; no row: every column null, the way
 * PL/pgSQL's SELECT INTO without STRICT assigns).  Values are the columns'
 * text output, computed here as the owner.  Columns whose name is no
 * variable name, repeated names and values past the size limits are left
 * out, each with a line in the node's log.  Kept in tf_node_memory: the
 * worker records it with the node's success, in the same transaction.
 */
static void
tf_outputs_build(TfNodeExec *x, int ncols, char *const *names, char *const *values,
				 uint64 processed)
{
	StringInfoData buf;
	List	   *seen = NIL;
	int64		total = 0;
	int			n = 0;
	MemoryContext old = MemoryContextSwitchTo(tf_node_memory ? tf_node_memory : TopMemoryContext);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < ncols; i++)
	{
		const char *name = names[i];
		char	   *value = values ? values[i] : NULL;
		ListCell   *lc;
		bool		dup = false;

		if (name == NULL)
			continue;
		if (!tf_output_name_ok(name))
		{
			tf_node_log(x, "output column \"%s\" not recorded: not a variable name (give it an alias such as AS total)", name);
			continue;
		}
		foreach(lc, seen)
			if (strcmp((char *) lfirst(lc), name) == 0)
				dup = true;
		if (dup)
		{
			tf_node_log(x, "output column \"%s\" not recorded again: the first column of that name counts", name);
			continue;
		}
		seen = lappend(seen, (char *) name);
		if (value && strlen(value) > TF_OUTPUT_MAX_VALUE)
		{
			tf_node_log(x, "output column \"%s\" not recorded: its value has %zu bytes, more than %d",
						name, strlen(value), TF_OUTPUT_MAX_VALUE);
			continue;
		}
		if (value && total + (int64) strlen(value) > TF_OUTPUT_MAX_TOTAL)
		{
			tf_node_log(x, "output column \"%s\" not recorded: the outputs would exceed %d bytes",
						name, TF_OUTPUT_MAX_TOTAL);
			continue;
		}
		if (n++ > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, name);
		appendStringInfoString(&buf, ": ");
		if (value)
		{
			escape_json(&buf, value);
			total += strlen(value);
		}
		else
			appendStringInfoString(&buf, "null");
	}
	appendStringInfoChar(&buf, '}');
	x->outputs = buf.data;
	if (processed == 0)
		tf_node_log(x, "outputs: no row, %d column(s) recorded as null", n);
	else if (processed > 1)
		tf_node_log(x, "outputs: the first of " UINT64_FORMAT " rows, %d column(s)", processed, n);
	list_free(seen);
	MemoryContextSwitchTo(old);
}

/* outputs from a row (NULL: none) of desc; text values as the owner */
static void
tf_outputs_from_tuple(TfNodeExec *x, TupleDesc desc, HeapTuple row, uint64 processed)
{
	MemoryContext old = MemoryContextSwitchTo(tf_node_memory ? tf_node_memory : TopMemoryContext);
	char	  **names = palloc0(sizeof(char *) * Max(desc->natts, 1));
	char	  **values = row ? palloc0(sizeof(char *) * Max(desc->natts, 1)) : NULL;

	for (int i = 0; i < desc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
			continue;
		names[i] = NameStr(TupleDescAttr(desc, i)->attname);
		if (row)
			values[i] = SPI_getvalue(row, desc, i + 1);
	}
	MemoryContextSwitchTo(old);
	tf_outputs_build(x, desc->natts, names, values, processed);
}

/* the outputs of the last statement run through SPI (tf_exec_sql) */
void
tf_capture_outputs(TfNodeExec *x, SPITupleTable *tt, uint64 processed)
{
	tf_outputs_from_tuple(x, tt->tupdesc, processed > 0 ? tt->vals[0] : NULL, processed);
}

/* the outputs of a remote script's last result (option "server") */
static void
tf_outputs_from_pgresult(TfNodeExec *x, PGresult *r)
{
	int			ncols = PQnfields(r);
	int			ntuples = PQntuples(r);
	MemoryContext old = MemoryContextSwitchTo(tf_node_memory ? tf_node_memory : TopMemoryContext);
	char	  **names = palloc0(sizeof(char *) * Max(ncols, 1));
	char	  **values = ntuples > 0 ? palloc0(sizeof(char *) * Max(ncols, 1)) : NULL;

	for (int i = 0; i < ncols; i++)
	{
		names[i] = pstrdup(PQfname(r, i));
		if (values && !PQgetisnull(r, 0, i))
			values[i] = pstrdup(PQgetvalue(r, 0, i));
	}
	MemoryContextSwitchTo(old);
	tf_outputs_build(x, ncols, names, values, (uint64) ntuples);
}

/*
 * Autocommit mode: a DestReceiver for a statement that returns rows; the
 * first row becomes the outputs (converted to text while the statement
 * runs, as the owner), the others are only counted by the portal.
 */
typedef struct TfOutputReceiver
{
	DestReceiver pub;
	TfNodeExec *x;
	TupleDesc	desc;
	bool		got;
} TfOutputReceiver;

static bool
tf_output_receive(TupleTableSlot *slot, DestReceiver *self)
{
	TfOutputReceiver *r = (TfOutputReceiver *) self;

	if (!r->got)
	{
		HeapTuple	tup = ExecCopySlotHeapTuple(slot);

		r->got = true;
		tf_outputs_from_tuple(r->x, r->desc, tup, 1);
		heap_freetuple(tup);
	}
	return true;
}

static void
tf_output_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	((TfOutputReceiver *) self)->desc = typeinfo;
}

static void
tf_output_shutdown(DestReceiver *self)
{
}

static void
tf_output_destroy(DestReceiver *self)
{
	pfree(self);
}

static TfOutputReceiver *
tf_output_receiver(TfNodeExec *x)
{
	TfOutputReceiver *r = palloc0(sizeof(TfOutputReceiver));

	r->pub.receiveSlot = tf_output_receive;
	r->pub.rStartup = tf_output_startup;
	r->pub.rShutdown = tf_output_shutdown;
	r->pub.rDestroy = tf_output_destroy;
	r->pub.mydest = DestNone;
	r->x = x;
	return r;
}

/* sql: run x->rendered through SPI; rows = rows of its last statement */
void
tf_exec_sql(TfNodeExec *x)
{
	int			rc;

	rc = SPI_execute(x->rendered, false, 0);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("SPI_execute failed: %s", SPI_result_code_string(rc))));
	x->rows = (int64) SPI_processed;
	tf_node_log(x, "%s, " UINT64_FORMAT " row(s)", SPI_result_code_string(rc),
				SPI_processed);
	if (SPI_tuptable != NULL)
		tf_capture_outputs(x, SPI_tuptable, SPI_processed);
}

/*
 * Option "autocommit" of an sql node: TF_AUTOCOMMIT_ON / _OFF when set (JSON
 * boolean, or the string "true" / "false"; validated at definition), else
 * TF_AUTOCOMMIT_AUTO.
 */
int
tf_sql_autocommit_option(Jsonb *options)
{
	JsonbValue	k;
	JsonbValue *v;

	if (options == NULL)
		return TF_AUTOCOMMIT_AUTO;
	k.type = jbvString;
	k.val.string.val = "autocommit";
	k.val.string.len = strlen("autocommit");
	v = findJsonbValueFromContainer(&options->root, JB_FOBJECT, &k);
	if (v == NULL)
		return TF_AUTOCOMMIT_AUTO;
	if (v->type == jbvBool)
		return v->val.boolean ? TF_AUTOCOMMIT_ON : TF_AUTOCOMMIT_OFF;
	if (v->type == jbvString && v->val.string.len == 4 &&
		strncmp(v->val.string.val, "true", 4) == 0)
		return TF_AUTOCOMMIT_ON;
	if (v->type == jbvString && v->val.string.len == 5 &&
		strncmp(v->val.string.val, "false", 5) == 0)
		return TF_AUTOCOMMIT_OFF;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("option \"autocommit\" of an sql node must be true or false")));
	return TF_AUTOCOMMIT_AUTO;	/* keep compiler quiet */
}

static bool
tf_defelem_true(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, name) == 0)
			return d->arg == NULL || defGetBoolean(d);
	}
	return false;
}

/* does this statement refuse to run inside a transaction block / function? */
static bool
tf_needs_own_xact(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_VacuumStmt:
			return ((VacuumStmt *) stmt)->is_vacuumcmd;
		case T_IndexStmt:
			return ((IndexStmt *) stmt)->concurrent;
		case T_ReindexStmt:
			{
				ReindexStmt *r = (ReindexStmt *) stmt;

				return r->kind == REINDEX_OBJECT_SCHEMA ||
					r->kind == REINDEX_OBJECT_SYSTEM ||
					r->kind == REINDEX_OBJECT_DATABASE ||
					tf_defelem_true(r->params, "concurrently");
			}
		case T_DropStmt:
			return ((DropStmt *) stmt)->concurrent;
		case T_ClusterStmt:
			return ((ClusterStmt *) stmt)->relation == NULL;
		case T_AlterTableStmt:
			{
				ListCell   *lc;

				foreach(lc, ((AlterTableStmt *) stmt)->cmds)
				{
					AlterTableCmd *c = lfirst_node(AlterTableCmd, lc);

					if (c->subtype == AT_DetachPartition &&
						((PartitionCmd *) c->def)->concurrent)
						return true;
				}
				return false;
			}
		case T_AlterDatabaseStmt:
			{
				ListCell   *lc;

				foreach(lc, ((AlterDatabaseStmt *) stmt)->options)
				{
					if (strcmp(lfirst_node(DefElem, lc)->defname, "tablespace") == 0)
						return true;
				}
				return false;
			}
		case T_DiscardStmt:
			return ((DiscardStmt *) stmt)->target == DISCARD_ALL;
		case T_AlterSystemStmt:
		case T_CreatedbStmt:
		case T_DropdbStmt:
		case T_CreateTableSpaceStmt:
		case T_DropTableSpaceStmt:
		case T_CreateSubscriptionStmt:
		case T_DropSubscriptionStmt:
			return true;
		default:
			return false;
	}
}

/*
 * Decide how the rendered script runs: true for autocommit mode, with
 * *reason saying why (the option, or the first statement that needs it).
 * Option "autocommit" (TF_AUTOCOMMIT_ON / _OFF) decides when set; else the
 * script does.  Transaction control statements are refused either way: the
 * engine owns the transactions.  Raises the script's syntax error, if any.
 */
bool
tf_sql_autocommit(const char *script, int option, const char **reason)
{
	List	   *raw = pg_parse_query(script);
	ListCell   *lc;
	const char *first = NULL;

	foreach(lc, raw)
	{
		Node	   *stmt = lfirst_node(RawStmt, lc)->stmt;

		if (IsA(stmt, TransactionStmt))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
					 errmsg("an sql node's script may not contain transaction control statements (%s)",
							GetCommandTagName(CreateCommandTag(stmt))),
					 errhint("The script runs in one transaction, or, in autocommit mode (option \"autocommit\", or a statement such as VACUUM), each statement in a transaction of its own; leave out BEGIN, COMMIT and ROLLBACK.")));
		if (first == NULL && tf_needs_own_xact(stmt))
			first = GetCommandTagName(CreateCommandTag(stmt));
	}
	list_free(raw);
	if (option != TF_AUTOCOMMIT_AUTO)
	{
		*reason = "option \"autocommit\"";
		return option == TF_AUTOCOMMIT_ON;
	}
	*reason = first;
	return first != NULL;
}

/*
 * Autocommit mode, one statement: a top-level statement (isTopLevel) in a
 * transaction command of its own, as exec_simple_query runs it.  Parse
 * analysis, plans and the portal's statements live in 'cxt', not in the
 * transaction: VACUUM and friends commit and restart it while they run.
 */
static void
tf_autocommit_statement(TfNodeExec *x, RawStmt *raw, const char *script,
						MemoryContext cxt, int n)
{
	CommandTag	tag = CreateCommandTag(raw->stmt);
	MemoryContext old = CurrentMemoryContext;
	bool		snapshot;
	List	   *plans;
	Portal		portal;
	DestReceiver *dest;
	TfOutputReceiver *out;
	QueryCompletion qc;

	CHECK_FOR_INTERRUPTS();
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	MemoryContextSwitchTo(cxt);
	snapshot = analyze_requires_snapshot(raw);
	if (snapshot)
		PushActiveSnapshot(GetTransactionSnapshot());
	plans = pg_plan_queries(pg_analyze_and_rewrite_fixedparams(raw, script, NULL, 0, NULL),
							script, CURSOR_OPT_PARALLEL_OK, NULL);
	if (snapshot)
		PopActiveSnapshot();
	CHECK_FOR_INTERRUPTS();

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, script, tag, plans, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	/* output variables: those of the last statement (none if it returns no rows) */
	x->outputs = NULL;
	out = portal->tupDesc ? tf_output_receiver(x) : NULL;
	dest = out ? (DestReceiver *) out : CreateDestReceiver(DestNone);
	InitializeQueryCompletion(&qc);
	(void) PortalRun(portal, FETCH_ALL, true, true, dest, dest, &qc);
	if (out && !out->got)
		tf_outputs_from_tuple(x, portal->tupDesc, NULL, 0);
	else if (out && qc.nprocessed > 1)
		tf_node_log(x, "outputs: the first of " UINT64_FORMAT " rows", qc.nprocessed);
	dest->rDestroy(dest);
	PortalDrop(portal, false);
	CommitTransactionCommand();
	MemoryContextSwitchTo(old);
	pgstat_report_stat(false);

	x->rows += (int64) qc.nprocessed;
	tf_node_log(x, "statement %d: %s, " UINT64_FORMAT " row(s), committed", n,
				GetCommandTagName(tag), qc.nprocessed);
}

/*
 * sql in autocommit mode: run each statement of 'script' in a transaction
 * of its own, as the current user (the caller switched to the owner).  Call
 * outside a transaction.  The first failing statement raises its error;
 * the statements before it stay committed.  rows = sum over statements.
 */
void
tf_exec_sql_autocommit(TfNodeExec *x, const char *script)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext,
											  "taskflow autocommit script",
											  ALLOCSET_DEFAULT_SIZES);

	Assert(!IsTransactionState());
	x->rows = 0;
	autocommit_ran = true;
	PG_TRY();
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		List	   *raw = pg_parse_query(script);
		MemoryContext stmt_cxt = AllocSetContextCreate(cxt,
													   "taskflow autocommit statement",
													   ALLOCSET_DEFAULT_SIZES);
		ListCell   *lc;
		int			n = 0;

		MemoryContextSwitchTo(old);
		foreach(lc, raw)
		{
			tf_autocommit_statement(x, lfirst_node(RawStmt, lc), script, stmt_cxt, ++n);
			MemoryContextReset(stmt_cxt);
		}
	}
	PG_CATCH();
	{
		/*
		 * The failed statement's portal still points into cxt until the
		 * caller aborts the transaction: let the abort free cxt after the
		 * portal (CleanupTransaction drops portals, then the memory).
		 */
		if (TopTransactionContext != NULL)
			MemoryContextSetParent(cxt, TopTransactionContext);
		else
			MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextDelete(cxt);
}

/* notify: pg_notify(channel, rendered payload), delivered at commit */
void
tf_exec_notify(TfNodeExec *x)
{
	char	   *channel = tf_option(x, "channel");
	char	   *payload = tf_option(x, "payload");
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	if (channel == NULL || channel[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("notify node \"%s\" has no channel", x->node_name)));
	channel = tf_render(channel, x->vars, "notify channel");
	payload = payload ? tf_render(payload, x->vars, "notify payload") : "";
	x->rendered = tf_keep(psprintf("NOTIFY %s, %s", quote_identifier(channel),
								   quote_literal_cstr(payload)));
	values[0] = CStringGetTextDatum(channel);
	values[1] = CStringGetTextDatum(payload);
	if (SPI_execute_with_args("SELECT pg_catalog.pg_notify($1, $2)", 2, argtypes, values,
							  NULL, false, 0) != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("pg_notify failed")));
	x->rows = 1;
}

/* wait: evaluate the rendered boolean condition once */
bool
tf_wait_check(TfNodeExec *x, const char *condition)
{
	char	   *q = psprintf("SELECT (%s)::boolean", condition);
	bool		isnull;
	Datum		d;

	if (SPI_execute(q, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wait condition of node \"%s\" must return one boolean", x->node_name)));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return !isnull && DatumGetBool(d);
}

/*
 * After an autocommit script (no-op otherwise), outside a transaction:
 * RESET ALL in a transaction of its own, so that what the script SET for
 * the session (default_transaction_read_only, lock_timeout, search_path,
 * ...) does not reach the book-keeping that follows.  The role (SET ROLE)
 * is not reset by RESET ALL; the book-keeping switches identity itself.
 * application_name, which names the node, is kept.
 */
void
tf_autocommit_reset_session(void)
{
	char	   *appname;

	if (!autocommit_ran)
		return;
	autocommit_ran = false;
	appname = pstrdup(GetConfigOption("application_name", false, false));
	StartTransactionCommand();
	ResetAllOptions();
	SetConfigOption("application_name", appname, PGC_USERSET, PGC_S_SESSION);
	CommitTransactionCommand();
	pfree(appname);
}

/* ---- sql nodes on a remote server (option "server") ---- */

static TfNodeExec *remote_x = NULL;

/* remote NOTICE/WARNING messages go to the node's log */
static void
tf_remote_notice(void *arg, const PGresult *r)
{
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	if (remote_x && msg)
		tf_node_log(remote_x, "%s: %s", sev ? sev : "NOTICE", msg);
}

/*
 * Run the rendered script of an sql node with option "server" in one
 * transaction on that postgres_fdw server (pqclient.c), then record the
 * success here in a transaction of its own (at-least-once, like
 * cross-database nodes: a crash between the remote COMMIT and the record
 * runs the script again).  Called inside the rendering transaction, as the
 * owner; returns outside any transaction.
 */
void
tf_exec_sql_remote(TfNodeExec *x, const char *server)
{
	TfConnParams *cp = MemoryContextAllocZero(TopMemoryContext, sizeof(TfConnParams));
	PGconn	   *volatile c = NULL;

	tf_conn_server(cp, server, x->owner);
	tf_node_xact_commit();
	x->vars = NULL;				/* freed with the transaction */

	PG_TRY();
	{
		PGresult   *r;
		char	   *tag;

		tf_node_arm_timeout(x);
		c = tf_pq_connect(cp, x->node_run_id);
		remote_x = x;
		PQsetNoticeReceiver(c, tf_remote_notice, NULL);
		tf_node_log(x, "running on %s", cp->label);
		PQclear(tf_pq_exec(c, "BEGIN", cp->label, "starting"));
		r = tf_pq_exec(c, x->rendered, cp->label, "running the script");
		tag = r ? PQcmdTuples(r) : NULL;
		x->rows = tag && *tag ? strtoll(tag, NULL, 10) : 0;
		/* output variables: the last statement's first row, if it returned rows */
		if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
			tf_outputs_from_pgresult(x, r);
		if (r)
			PQclear(r);
		PQclear(tf_pq_exec(c, "COMMIT", cp->label, "committing"));
		tf_node_disarm_timeout();
		CHECK_FOR_INTERRUPTS();
	}
	PG_FINALLY();
	{
		remote_x = NULL;
		tf_pq_close(c);
	}
	PG_END_TRY();

	tf_node_xact_begin(false);
	tf_node_succeeded_in_xact(x, false, "on the remote server");
	tf_node_xact_commit();
}
