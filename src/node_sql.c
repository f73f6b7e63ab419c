/*-------------------------------------------------------------------------
 *
 * node_sql.c
 *	  The built-in node kinds that need no storage: sql (a script run through
 *	  SPI in the worker's transaction), notify (pg_notify on a channel, sent
 *	  at commit) and the condition check of wait nodes; plus the capture of
 *	  NOTICE/INFO/WARNING messages raised by a node into node_runs.log
 *	  (an emit_log_hook; NOTICE and INFO are kept out of the server log).
 *
 *	  All of these run as the flow owner inside a transaction the worker
 *	  (worker.c) started.  What they render is kept in TopMemoryContext so
 *	  the worker can record it even after an abort.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#define TF_MAX_LOG_BYTES (64 * 1024)

static TfNodeExec *capture_x = NULL;
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
	return s ? MemoryContextStrdup(TopMemoryContext, s) : NULL;
}

/* sql: run the rendered script; rows = rows of its last statement */
void
tf_exec_sql(TfNodeExec *x)
{
	char		what[NAMEDATALEN + 32];
	int			rc;

	snprintf(what, sizeof(what), "node \"%s\" body", x->node_name);
	x->rendered = tf_keep(tf_render(x->body, x->vars, what));
	rc = SPI_execute(x->rendered, false, 0);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("SPI_execute failed: %s", SPI_result_code_string(rc))));
	x->rows = (int64) SPI_processed;
	tf_node_log(x, "%s, " UINT64_FORMAT " row(s)", SPI_result_code_string(rc),
				SPI_processed);
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
