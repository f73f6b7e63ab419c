/*-------------------------------------------------------------------------
 *
 * node_check.c
 *	  The check node kinds, conveniences over the wait kind (docs/
 *	  node_kinds.md, "Check nodes"):
 *	    check_rows  "table X has rows for ${bizdate}": options table, and
 *	                where (a condition) or column (a date/timestamp column
 *	                within the bizdate), min_rows
 *	    check_flow  "flow Y succeeded for this bizdate": option flow
 *	  Each builds a wait condition from its options and hands it to the wait
 *	  executor (worker.c): polls every poll_interval as the flow owner, gives
 *	  its worker back between polls, fails at the node's timeout (else
 *	  taskflow.wait_timeout).  check_flow reads taskflow.flows and runs as
 *	  the owner through taskflow._check_flow(), so row level security hides
 *	  flows the owner may not see: they look like flows that do not exist.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/namespace.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/regproc.h"

/*
 * The condition of a check_rows node as a template (rendered by the wait
 * executor): the table and the where option are SQL text written by the
 * owner (they may hold ${...}); column is quoted as an identifier.
 */
static char *
tf_check_rows_condition(Jsonb *options)
{
	char	   *table = tf_node_option(options, "table");
	char	   *where = tf_node_option(options, "where");
	char	   *column = tf_node_option(options, "column");
	char	   *min = tf_node_option(options, "min_rows");
	long		n = 1;
	char	   *filter;

	if (min == NULL)
	{
		/* a JSON number */
		JsonbValue	k;
		JsonbValue *v;

		k.type = jbvString;
		k.val.string.val = "min_rows";
		k.val.string.len = strlen("min_rows");
		v = options ? findJsonbValueFromContainer(&options->root, JB_FOBJECT, &k) : NULL;
		if (v && v->type == jbvNumeric)
			min = tf_jsonb_scalar_text(v, "option \"min_rows\"");
	}
	if (min)
		n = strtol(min, NULL, 10);
	if (n < 1)
		n = 1;
	if (where)
		filter = psprintf(" WHERE (%s)", where);
	else if (column)
		filter = psprintf(" WHERE %s >= ${bizdate:literal}::date AND %s < ${bizdate:literal}::date + 1",
						  quote_identifier(column), quote_identifier(column));
	else
		filter = "";
	if (n == 1)
		return psprintf("EXISTS (SELECT FROM %s%s)", table ? table : "?", filter);
	return psprintf("(SELECT count(*) FROM (SELECT FROM %s%s LIMIT %ld) tf_check) >= %ld",
					table ? table : "?", filter, n, n);
}

static char *
tf_check_flow_condition(Jsonb *options)
{
	char	   *flow = tf_node_option(options, "flow");

	return psprintf("taskflow._check_flow(%s, ${bizdate:literal}::date)",
					quote_literal_cstr(flow ? flow : ""));
}

/* definition: options that make sense together; the condition parses */
void
tf_validate_check_rows(const char *what, const char *body, Jsonb *options)
{
	char	   *table = tf_node_option(options, "table");
	char	   *cond;

	if (body != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s takes no body", what),
				 errhint("Give the table in options, e.g. {\"table\": \"orders\", \"column\": \"order_date\"}; for any other condition use a wait node.")));
	if (table == NULL || table[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs option \"table\"", what),
				 errhint("e.g. options => '{\"table\": \"sales.orders\", \"column\": \"order_date\"}'.")));
	if (tf_node_option(options, "where") && tf_node_option(options, "column"))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has both option \"where\" and option \"column\"", what),
				 errhint("\"column\" is short for \"where\": \"column >= bizdate AND column < bizdate + 1\"; give one of them.")));
	if (strstr(table, "${") == NULL)
	{
		/* a (qualified) table name as SQL writes it; raises on bad syntax */
		List	   *names = stringToQualifiedNameList(table);

		if (list_length(names) > 3)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"table\" of %s is not a table name: \"%s\"", what, table),
					 errhint("Write a table name such as orders or sales.orders.")));
	}
	cond = tf_check_rows_condition(options);
	DirectFunctionCall3(tf_check_sql, CStringGetTextDatum(cond),
						CStringGetTextDatum(psprintf("condition of %s", what)),
						BoolGetDatum(true));
}

void
tf_validate_check_flow(const char *what, const char *body, Jsonb *options)
{
	char	   *flow = tf_node_option(options, "flow");

	if (body != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s takes no body", what),
				 errhint("Name the flow in options, e.g. {\"flow\": \"load_orders\"}.")));
	if (flow == NULL || flow[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs option \"flow\"", what),
				 errhint("e.g. options => '{\"flow\": \"load_orders\"}': the node waits until a run of that flow for the same bizdate has succeeded.")));
	if (strstr(flow, "${") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"flow\" of %s cannot hold variables", what),
				 errhint("Name the flow itself; the bizdate is the run's.")));
}

void
tf_exec_check_rows(TfNodeExec *x)
{
	tf_worker_run_wait_on(x, tf_check_rows_condition(x->options));
}

void
tf_exec_check_flow(TfNodeExec *x)
{
	tf_worker_run_wait_on(x, tf_check_flow_condition(x->options));
}
