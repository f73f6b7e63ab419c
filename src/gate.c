/*-------------------------------------------------------------------------
 *
 * gate.c
 *	  The gate for privileged run operations.  Users may read runs and
 *	  node_runs but not write them; run_flow, cancel_run, rerun, backfill
 *	  and purge_history go through
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

PG_FUNCTION_INFO_V1(tf_sql_gate);

static const char *const tf_gate_ops[] = {
	"run_flow", "cancel_run", "rerun", "backfill", "purge_history", NULL
};

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
			 errhint("Operations: run_flow, cancel_run, rerun, backfill, purge_history.")));
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

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("taskflow._gate: operation and arguments must not be null")));
	op = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tf_gate_check_op(op);
	if (!tf_preloaded && strcmp(op, "cancel_run") != 0 && strcmp(op, "purge_history") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("taskflow cannot run flows: the library is not loaded through shared_preload_libraries"),
				 errdetail("Without the launcher and the schedulers the run would never start."),
				 errhint("Add taskflow to shared_preload_libraries in postgresql.conf and restart the server.")));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		Oid			argtypes[2] = {REGROLEOID, JSONBOID};
		Datum		values[2];
		char	   *query = psprintf("SELECT taskflow._op_%s($1, $2)", op);

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
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();

	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
