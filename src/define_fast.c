/*-------------------------------------------------------------------------
 *
 * define_fast.c
 *	  C helpers of the definition path's hottest checks (issue 11: defining
 *	  10,000 flows), each replacing a SQL query that ran several times per
 *	  API call:
 *
 *	  taskflow._guard_trusted() -> boolean
 *	      is the current user (GetUserId(): also right under the gate's and
 *	      the node workers' user switches) a superuser?  The catalog guard
 *	      (sql/src/15_guard.sql) trusts superusers; this was a query of
 *	      pg_roles per guarded row.
 *
 *	  taskflow._now() -> timestamptz
 *	      "now" as the scheduler sees it: taskflow.test_clock when set (tests
 *	      only), else now() (the transaction's start).  Was a SQL function
 *	      with a pinned search_path (not inlinable: ~20 us a call), called
 *	      twice per create_flow (the wake trigger, the never-fires warning).
 *
 *	  taskflow._row_is_mine(xid) -> boolean
 *	      did the current transaction (or one of its subtransactions) write
 *	      the row version with this xmin?  Then it already holds the row's
 *	      lock: the definition API's "lock the flow and bump updated_at" is
 *	      needed once per transaction, not once per node and edge.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"
#include "engine.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tf_guard_trusted);
PG_FUNCTION_INFO_V1(tf_row_is_mine);
PG_FUNCTION_INFO_V1(tf_now);

Datum
tf_guard_trusted(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(superuser());
}

Datum
tf_row_is_mine(PG_FUNCTION_ARGS)
{
	TransactionId xmin;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	xmin = DatumGetTransactionId(PG_GETARG_DATUM(0));
	PG_RETURN_BOOL(TransactionIdIsNormal(xmin) &&
				   TransactionIdIsCurrentTransactionId(xmin));
}

Datum
tf_now(PG_FUNCTION_ARGS)
{
	if (tf_test_clock != NULL && tf_test_clock[0] != '\0')
		PG_RETURN_DATUM(DirectFunctionCall3(timestamptz_in,
											CStringGetDatum(tf_test_clock),
											ObjectIdGetDatum(InvalidOid),
											Int32GetDatum(-1)));
	PG_RETURN_TIMESTAMPTZ(GetCurrentTransactionStartTimestamp());
}
