/*-------------------------------------------------------------------------
 *
 * gate.c
 *	  The gate for privileged run operations.  Users may read runs and
 *	  node_runs but not write them; run_flow, cancel_run, rerun, backfill,
 *	  purge_history, set_node_success and the events operations
 *	  (add/drop_flow_trigger, allow/disallow_trigger, suspend/resume_run)
 *	  go through
 *
 *	      taskflow._gate(op text, args jsonb) RETURNS jsonb
 *
 *	  which captures the caller (GetUserId()), accepts only whitelisted
 *	  operations, switches to the bootstrap superuser with
 *	  SetUserIdAndSecContext(..., SECURITY_LOCAL_USERID_CHANGE) and calls
 *	  taskflow._op_<op>(caller regrole, args jsonb) through SPI.  The _op_
 *	  functions are revoked from PUBLIC and check themselves that the
 *	  caller is a member of the flow's owner (or a superuser).
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(tf_sql_gate);

static const char *const tf_gate_ops[] = {
	"run_flow", "cancel_run", "rerun", "backfill", "purge_history",
	"set_node_success",
	/* events (sql/src/93_events.sql) */
	"add_flow_trigger", "drop_flow_trigger", "allow_trigger", "disallow_trigger",
	"suspend_run", "resume_run",
	NULL
};

/* operations that only change definitions: fine without the scheduler */
static const char *const tf_gate_definition_ops[] = {
	"cancel_run", "purge_history",
	"add_flow_trigger", "drop_flow_trigger", "allow_trigger", "disallow_trigger",
	NULL
};

/*
 * Errors of an operation name what the user asked for ("taskflow.run_flow:
 * flow "x"") instead of the frames of the internal functions that ran it:
 * a marker frame separates the frames inside the gate from those of the
 * caller; the frames above it are replaced by one line.
 */
#define TF_GATE_MARK "taskflow gate"

static void
tf_gate_marker(void *arg)
{
	errcontext("%s", TF_GATE_MARK);
}

static char *
tf_gate_context(const char *op, Jsonb *args)
{
	StringInfoData buf;
	static const char *const keys[] = {"flow", "run_id", NULL};
	const char *sep = ": ";
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "taskflow.%s", op);
	for (i = 0; keys[i] != NULL; i++)
	{
		JsonbValue *v = getKeyJsonValueFromContainer(&args->root, keys[i],
													 strlen(keys[i]), NULL);

		if (v == NULL || v->type == jbvNull || v->type == jbvBinary)
			continue;
		if (i == 0)
			appendStringInfo(&buf, "%sflow \"%s\"", sep, tf_jsonb_scalar_text(v, keys[i]));
		else
			appendStringInfo(&buf, "%srun %s", sep, tf_jsonb_scalar_text(v, keys[i]));
		sep = ", ";
	}
	return buf.data;
}

static void
tf_gate_rewrite_context(ErrorData *edata, const char *op, Jsonb *args)
{
	const char *mark;
	const char *rest;
	char	   *skip;
	StringInfoData buf;

	if (edata->context == NULL ||
		(mark = strstr(edata->context, TF_GATE_MARK)) == NULL)
		return;
	rest = mark + strlen(TF_GATE_MARK);
	if (*rest == '\n')
		rest++;
	/* the SQL function (run_flow, ...) that called the gate */
	skip = psprintf("SQL function \"%s\"", op);
	if (strncmp(rest, skip, strlen(skip)) == 0)
		rest = strchr(rest, '\n') ? strchr(rest, '\n') + 1 : rest + strlen(rest);
	initStringInfo(&buf);
	appendStringInfoString(&buf, tf_gate_context(op, args));
	if (*rest)
		appendStringInfo(&buf, "\n%s", rest);
	edata->context = buf.data;
}

static void
tf_gate_check_op(const char *op)
{
	int			i;

	for (i = 0; tf_gate_ops[i] != NULL; i++)
		if (strcmp(op, tf_gate_ops[i]) == 0)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown taskflow operation \"%s\"", op),
			 errhint("Operations: run_flow, cancel_run, rerun, backfill, purge_history, set_node_success, "
					 "add_flow_trigger, drop_flow_trigger, allow_trigger, disallow_trigger, suspend_run, resume_run.")));
}

static bool
tf_gate_needs_scheduler(const char *op)
{
	int			i;

	for (i = 0; tf_gate_definition_ops[i] != NULL; i++)
		if (strcmp(op, tf_gate_definition_ops[i]) == 0)
			return false;
	return true;
}

Datum
tf_sql_gate(PG_FUNCTION_ARGS)
{
	char	   *op;
	Oid			caller = GetUserId();
	Oid			save_userid;
	int			save_sec;
	Datum		result = (Datum) 0;
	bool		isnull = true;
	MemoryContext cxt = CurrentMemoryContext;
	ErrorContextCallback marker;
	Jsonb	   *args;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("taskflow._gate: operation and arguments must not be null")));
	op = text_to_cstring(PG_GETARG_TEXT_PP(0));
	args = PG_GETARG_JSONB_P(1);
	tf_gate_check_op(op);
	if (!tf_preloaded && tf_gate_needs_scheduler(op))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("taskflow cannot run flows: the library is not loaded through shared_preload_libraries"),
				 errdetail("Without the launcher and the schedulers the run would never start."),
				 errhint("Add taskflow to shared_preload_libraries in postgresql.conf and restart the server.")));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	marker.callback = tf_gate_marker;
	marker.arg = NULL;
	marker.previous = error_context_stack;
	PG_TRY();
	{
		Oid			argtypes[2] = {REGROLEOID, JSONBOID};
		Datum		values[2];
		char	   *query = psprintf("SELECT taskflow._op_%s($1, $2)", op);

		error_context_stack = &marker;

		values[0] = ObjectIdGetDatum(caller);
		values[1] = PG_GETARG_DATUM(1);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args(query, 2, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "taskflow._op_%s failed", op);
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			result = SPI_datumTransfer(result, false, -1);
		SPI_finish();
		error_context_stack = marker.previous;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		SetUserIdAndSecContext(save_userid, save_sec);
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		tf_gate_rewrite_context(edata, op, args);
		ReThrowError(edata);
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_userid, save_sec);

	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
