/*-------------------------------------------------------------------------
 *
 * node_branch.c
 *	  The branch node kind: its body is one SQL boolean (an expression over
 *	  variables, or a scalar query in parentheses-free form such as
 *	  "SELECT count(*) > 0 FROM t"), evaluated once as the flow owner in the
 *	  worker's transaction as SELECT (<body>)::boolean.  The result is
 *	  recorded with the node's success: node_runs.rows = 1 for true, 0 for
 *	  false or NULL.  Which downstream edges are then followed (edges.branch)
 *	  and how skipping propagates is decided by the engine
 *	  (sql/src/19_flowlogic.sql); see docs/flow_logic.md.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "executor/spi.h"
#include "utils/memutils.h"

/* definition time: a branch needs its condition */
void
tf_validate_branch_node(const char *what, const char *body, Jsonb *options)
{
	const char *p = body;

	while (p && *p && isspace((unsigned char) *p))
		p++;
	if (p == NULL || *p == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs a body (the boolean that chooses the path)", what),
				 errhint("e.g. body => '${mode:literal} = ''full''' or body => 'SELECT count(*) > 0 FROM loads WHERE day = ${bizdate:literal}'.")));
}

/* run time: evaluate the rendered condition once (as the owner, in a transaction) */
void
tf_exec_branch(TfNodeExec *x)
{
	char		what[NAMEDATALEN + 32];
	char	   *cond;
	bool		isnull;
	bool		result;
	Datum		d;

	snprintf(what, sizeof(what), "branch node \"%s\" body", x->node_name);
	cond = tf_render(x->body, x->vars, what);
	x->rendered = MemoryContextStrdup(tf_node_memory ? tf_node_memory : TopMemoryContext, cond);
	if (SPI_execute(psprintf("SELECT (%s)::boolean", cond), true, 2) != SPI_OK_SELECT ||
		SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("condition of branch node \"%s\" must return one boolean", x->node_name),
				 errhint("Write one boolean expression, or a query that returns one row with one boolean column.")));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = !isnull && DatumGetBool(d);
	x->rows = result ? 1 : 0;
	tf_node_log(x, "branch result: %s%s", result ? "true" : "false",
				isnull ? " (the condition was NULL)" : "");
}
