/*-------------------------------------------------------------------------
 *
 * run_call.c
 *	  CALL taskflow.run(flow, bizdate, params, wait, timeout): start a run,
 *	  commit, wait for it and raise when it fails -- the one-call form of
 *	  run_flow() + wait_run(), which cannot share a transaction (a run starts
 *	  only once the transaction that created it commits).
 *
 *	  A procedure that commits cannot pin search_path (SET clauses forbid
 *	  transaction control), so this is a C procedure: it runs only the two
 *	  schema-qualified, exactly typed queries below, through SPI in
 *	  non-atomic mode, and commits in between.  Waiting and the error report
 *	  are taskflow._run_outcome() (SQL, search_path pinned).
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(tf_run_procedure);

Datum
tf_run_procedure(PG_FUNCTION_ARGS)
{
	bool		nonatomic = fcinfo->context != NULL &&
		IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	bool		wait = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
	Oid			argtypes[3] = {TEXTOID, DATEOID, JSONBOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	Datum		result[2];
	bool		result_null[2] = {false, false};
	TupleDesc	tupdesc;
	bool		isnull;
	int64		run_id;
	char	   *state = "scheduled";

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("flow must not be null")));
	if (wait && !nonatomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("taskflow.run(wait => true) cannot be called inside a transaction block"),
				 errdetail("It commits the new run before waiting for it."),
				 errhint("CALL it at top level, or pass wait => false and call taskflow.wait_run() after your transaction commits.")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "taskflow.run: return type must be a row type");

	values[0] = PG_GETARG_DATUM(0);
	values[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[2] = PG_ARGISNULL(2) ? DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))
		: PG_GETARG_DATUM(2);

	SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0);
	if (SPI_execute_with_args("SELECT taskflow.run_flow($1, $2, $3)",
							  3, argtypes, values, nulls, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow.run: run_flow returned no run");
	run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	if (wait)
	{
		Oid			wtypes[2] = {INT8OID, INTERVALOID};
		Datum		wvalues[2];
		char		wnulls[2] = {' ', ' '};
		char	   *s;

		SPI_commit();
		wvalues[0] = Int64GetDatum(run_id);
		wvalues[1] = PG_ARGISNULL(4)
			? DirectFunctionCall3(interval_in, CStringGetDatum("1 hour"),
								  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1))
			: PG_GETARG_DATUM(4);
		if (SPI_execute_with_args("SELECT taskflow._run_outcome($1, $2)",
								  2, wtypes, wvalues, wnulls, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "taskflow.run: no outcome for run " INT64_FORMAT, run_id);
		s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		/* in the caller's context: SPI's is gone after SPI_finish */
		state = s ? (char *) SPI_palloc(strlen(s) + 1) : NULL;
		if (s)
			strcpy(state, s);
	}
	SPI_finish();

	result[0] = Int64GetDatum(run_id);
	result[1] = state ? CStringGetTextDatum(state) : (Datum) 0;
	result_null[1] = (state == NULL);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), result, result_null)));
}
