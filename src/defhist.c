/*-------------------------------------------------------------------------
 *
 * defhist.c
 *	  The definition history's trigger (docs/operations.md, "Definition
 *	  history"; catalog: sql/src/94_defhist.once.sql; logic:
 *	  sql/src/94_defhist.sql).
 *
 *	  taskflow._defhist_trigger() is the AFTER ROW trigger of flows, nodes,
 *	  edges and variables.  It records the role that made the change (the
 *	  current user as the executor sees it: GetUserId(), right also inside
 *	  SECURITY DEFINER functions and under the node workers' user switch,
 *	  where neither current_user in a SECURITY DEFINER trigger function nor
 *	  the "role" setting would be), then switches to the bootstrap
 *	  superuser and hands the same trigger call to the pinned PL/pgSQL
 *	  function taskflow._defhist_row(), which writes flow_versions and
 *	  definition_changes.  Users hold no write privilege on those tables,
 *	  so history is written only here; the changing role is read by
 *	  _defhist_row() through taskflow._defhist_caller(), which returns NULL
 *	  outside this trigger.  Both functions are revoked from PUBLIC (no one
 *	  can attach them to a table of their own), and the trigger refuses any
 *	  relation but the four catalog tables.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(tf_defhist_trigger);
PG_FUNCTION_INFO_V1(tf_defhist_caller);

/* the changing role while _defhist_row() runs (else InvalidOid) */
static Oid	defhist_caller = InvalidOid;

/* is the statement being run a COPY (the client's query text)? */
static bool
tf_defhist_is_copy(void)
{
	const char *q = debug_query_string;

	if (q == NULL)
		return false;
	while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
		q++;
	return pg_strncasecmp(q, "copy", 4) == 0 && (q[4] == ' ' || q[4] == '\t' || q[4] == '\n');
}

Datum
tf_defhist_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *relname;
	Oid			row_fn;
	Oid			save_userid;
	int			save_sec;
	Oid			save_caller = defhist_caller;
	FmgrInfo	flinfo;
	volatile Datum result = (Datum) 0;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskflow._defhist_trigger() must be an AFTER ROW trigger")));
	relname = RelationGetRelationName(trigdata->tg_relation);
	if (strcmp(get_namespace_name(RelationGetNamespace(trigdata->tg_relation)),
			   TASKFLOW_SCHEMA) != 0 ||
		(strcmp(relname, "flows") != 0 && strcmp(relname, "nodes") != 0 &&
		 strcmp(relname, "edges") != 0 && strcmp(relname, "variables") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskflow._defhist_trigger() records changes of taskflow's catalog tables only")));

	/*
	 * A superuser's COPY into the catalog is pg_restore (or psql's \copy of
	 * a dump) restoring the rows together with their history (the history
	 * tables are dumped as extension configuration too): recording the
	 * restored rows again would collide with the restored history.
	 * Superusers are trusted, as the catalog guard trusts them.
	 */
	if (tf_defhist_is_copy() && superuser_arg(GetUserId()))
		return PointerGetDatum(NULL);

	row_fn = LookupFuncName(list_make2(makeString(TASKFLOW_SCHEMA), makeString("_defhist_row")),
							0, NULL, false);
	fmgr_info(row_fn, &flinfo);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	defhist_caller = save_userid;
	PG_TRY();
	{
		LOCAL_FCINFO(inner, 0);

		InitFunctionCallInfoData(*inner, &flinfo, 0, InvalidOid, fcinfo->context, NULL);
		result = FunctionCallInvoke(inner);
	}
	PG_FINALLY();
	{
		defhist_caller = save_caller;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	return result;
}

/* taskflow._defhist_caller() → regrole: the changing role, NULL outside the trigger */
Datum
tf_defhist_caller(PG_FUNCTION_ARGS)
{
	if (!OidIsValid(defhist_caller))
		PG_RETURN_NULL();
	PG_RETURN_OID(defhist_caller);
}
