/*-------------------------------------------------------------------------
 *
 * api.c
 *	  C entry points of the definition API that cannot be SQL functions
 *	  with a pinned search_path:
 *
 *	  taskflow.create_flow_from_template(template, name, params) must
 *	  resolve an unqualified table name ("orders") under the caller's
 *	  search_path, yet nothing of the template may run under that path
 *	  (a caller's public.= operator would run as whoever uses the
 *	  template, a superuser included).  It reads the caller's search_path
 *	  and hands it to the pinned taskflow._create_flow_from_template, which
 *	  uses it only for the C name lookup of the table (docs/security.md).
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_FUNCTION_INFO_V1(tf_create_flow_from_template);

Datum
tf_create_flow_from_template(PG_FUNCTION_ARGS)
{
	Oid			argtypes[4] = {TEXTOID, TEXTOID, JSONBOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	char	   *search_path = GetConfigOptionByName("search_path", NULL, false);
	const char *query = "SELECT taskflow._create_flow_from_template($1, $2, $3, $4)";
	MemoryContext cxt = CurrentMemoryContext;
	Datum		result;
	bool		isnull;
	int			i;

	for (i = 0; i < 3; i++)
	{
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	values[3] = CStringGetTextDatum(search_path);

	SPI_connect();
	PG_TRY();
	{
		if (SPI_execute_with_args(query, 4, argtypes, values, nulls, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "taskflow._create_flow_from_template returned no row");
	}
	PG_CATCH();
	{
		/*
		 * The error as the caller sees it: without the frame of our own
		 * query (the implementation already names the template and flow).
		 */
		ErrorData  *edata;
		char	   *frame;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (edata->context &&
			(frame = strstr(edata->context, "SQL statement \"SELECT taskflow._create_flow_from_template(")) != NULL)
		{
			while (frame > edata->context && frame[-1] == '\n')
				frame--;
			*frame = '\0';
			if (edata->context[0] == '\0')
				edata->context = NULL;
		}
		ReThrowError(edata);
	}
	PG_END_TRY();
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);	/* int8 is pass-by-value */
}
