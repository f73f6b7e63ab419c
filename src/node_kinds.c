/*-------------------------------------------------------------------------
 *
 * node_kinds.c
 *	  The node-kind registry: one table (tf_kinds[]) that says, for every
 *	  node kind, its name, how the worker runs it (transaction mode), what
 *	  its body is, its options with their types and bounds, an optional
 *	  definition-time check in C (and, for checks that need the catalog, the
 *	  name of a check function in SQL), and its executor.
 *
 *	  Both sides go through it:
 *	    - the node worker (worker.c) dispatches an attempt by the entry's
 *	      transaction mode and executor;
 *	    - the definition API (sql/src/10_api.sql, taskflow._validate_node)
 *	      calls taskflow._kind_validate(), which checks the option grammar
 *	      (names, JSON types, bounds: the same parsers the executors use at
 *	      run time, e.g. tf_parse_size for sizes) and runs the kind's check;
 *	      taskflow._node_kinds(), _option_order() and _kind_body() answer
 *	      the rest of the API from the same table.
 *
 *	  Adding a kind: write its file (executor, and validate if needed), add
 *	  one line to tf_kinds[] (and its option table); see docs/node_kinds.md.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "foreign/foreign.h"
#include "fmgr.h"
#include "format.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tf_node_kinds_sql);
PG_FUNCTION_INFO_V1(tf_option_order_sql);
PG_FUNCTION_INFO_V1(tf_kind_validate_sql);
PG_FUNCTION_INFO_V1(tf_kind_body_sql);

static JsonbValue *tf_find_option(Jsonb *options, const char *key);

/* ---- definition-time checks of the built-in kinds ---- */

static void
tf_validate_sql_node(const char *what, const char *body, Jsonb *options)
{
	char	   *database = tf_node_option(options, "database");
	const char *p = body;

	while (p && *p && isspace((unsigned char) *p))
		p++;
	if (p == NULL || *p == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs a body", what),
				 errhint("The body is the SQL script to run, e.g. body => 'ANALYZE orders'.")));
	if (tf_node_option(options, "server"))
	{
		char	   *server = tf_node_option(options, "server");

		if (database)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s has both option \"database\" and option \"server\"", what),
					 errhint("\"database\" names a database of this cluster, \"server\" a postgres_fdw server.")));
		if (tf_find_option(options, "autocommit"))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"autocommit\" of %s is not supported with option \"server\"", what),
					 errhint("On a remote server the script runs in one transaction.")));
		if (strstr(server, "${") == NULL)
		{
			ForeignServer *srv = GetForeignServerByName(server, true);

			if (srv == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("server \"%s\" of %s does not exist", server, what),
						 errhint("Create it with CREATE SERVER ... FOREIGN DATA WRAPPER postgres_fdw, and a user mapping for the flow's owner.")));
			if (strcmp(GetForeignDataWrapper(srv->fdwid)->fdwname, "postgres_fdw") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_WRONG_OBJECT_TYPE),
						 errmsg("server \"%s\" of %s is not a postgres_fdw server", server, what),
						 errhint("Name a server created with FOREIGN DATA WRAPPER postgres_fdw.")));
		}
	}
	if (database && !OidIsValid(get_database_oid(database, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_DATABASE),
				 errmsg("database \"%s\" of %s does not exist", database, what),
				 errhint("Option \"database\" names another database of this cluster.")));
}

static void
tf_validate_wait_node(const char *what, const char *body, Jsonb *options)
{
	if (body == NULL && tf_node_option(options, "delay") == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs a body (a condition to wait for) or option \"delay\"", what),
				 errhint("e.g. body => 'EXISTS (SELECT 1 FROM loads WHERE day = ${bizdate:literal})' or options => '{\"delay\": \"10 min\"}'.")));
}

/*
 * Length of a ${name} / ${name:form} reference (with an optional extra
 * leading '$') at s, 0 if there is none.
 */
static int
tf_var_ref_len(const char *s)
{
	int			lead;

	for (lead = 1; lead >= 0; lead--)
	{
		const char *p = s;

		if (lead)
		{
			if (p[0] != '$')
				continue;
			p++;
		}
		if (p[0] != '$' || p[1] != '{')
			continue;
		p += 2;
		if (!(isalpha((unsigned char) *p) || *p == '_'))
			continue;
		while (isalnum((unsigned char) *p) || *p == '_' || *p == '-' || *p == '.')
			p++;
		if (*p == ':')
		{
			p++;
			while (isalpha((unsigned char) *p) || *p == '_')
				p++;
		}
		if (*p != '}')
			continue;
		return (int) (p + 1 - s);
	}
	return 0;
}

/* bytes of a template without its variable references */
static int
tf_fixed_text_len(const char *s)
{
	int			n = 0;

	while (*s)
	{
		int			r = tf_var_ref_len(s);

		if (r > 0)
			s += r;
		else
			s++, n++;
	}
	return n;
}

static void
tf_validate_notify_node(const char *what, const char *body, Jsonb *options)
{
	char	   *channel = tf_node_option(options, "channel");
	char	   *payload = tf_node_option(options, "payload");

	if (body != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s takes no body", what),
				 errhint("Put the message into option \"payload\".")));
	if (channel == NULL || channel[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs option \"channel\"", what),
				 errhint("e.g. options => '{\"channel\": \"etl\", \"payload\": \"${flow} done for ${bizdate}\"}'.")));
	if (strlen(channel) > 63)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("channel name of %s is too long", what),
				 errdetail("A channel name has at most 63 bytes.")));
	if (payload && tf_fixed_text_len(payload) >= 8000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"payload\" of %s is too long", what),
				 errdetail("Its fixed text has %d bytes; a NOTIFY payload must be shorter than 8000 bytes.",
						   tf_fixed_text_len(payload)),
				 errhint("Send a short message (e.g. a run id or a key) and keep the data in a table.")));
}

/* ---- the registry ---- */

static const TfOptionDef sql_options[] = {
	{"database", TF_OPT_TEXT},
	{"autocommit", TF_OPT_BOOL},
	{"server", TF_OPT_TEXT},
	{NULL}
};

static const TfOptionDef wait_options[] = {
	{"poll_interval", TF_OPT_INTERVAL, 0.01, 86400, "between 10 milliseconds and 1 day", NULL, NULL,
	"poll_interval is the pause between two checks of the condition, e.g. \"30 seconds\"."},
	{"delay", TF_OPT_INTERVAL, 0, 366 * 86400.0, "at most 366 days", NULL, NULL,
	"delay is the time the node waits before it checks its condition, between 0 and 366 days."},
	{NULL}
};
static const char *const wait_render[] = {"delay", "poll_interval", NULL};

static const TfOptionDef check_rows_options[] = {
	{"table", TF_OPT_TEXT},
	{"where", TF_OPT_TEXT},
	{"column", TF_OPT_TEXT},
	{"min_rows", TF_OPT_INT, 1, 1000000000, NULL, NULL, NULL,
	"min_rows is how many rows must be there, at least 1 (the default)."},
	{"poll_interval", TF_OPT_INTERVAL, 0.01, 86400, "between 10 milliseconds and 1 day", NULL, NULL,
	"poll_interval is the pause between two checks of the condition, e.g. \"30 seconds\"."},
	{"delay", TF_OPT_INTERVAL, 0, 366 * 86400.0, "at most 366 days", NULL, NULL,
	"delay is the time the node waits before it checks its condition, between 0 and 366 days."},
	{NULL}
};

static const TfOptionDef check_flow_options[] = {
	{"flow", TF_OPT_TEXT},
	{"poll_interval", TF_OPT_INTERVAL, 0.01, 86400, "between 10 milliseconds and 1 day", NULL, NULL,
	"poll_interval is the pause between two checks of the condition, e.g. \"30 seconds\"."},
	{"delay", TF_OPT_INTERVAL, 0, 366 * 86400.0, "at most 366 days", NULL, NULL,
	"delay is the time the node waits before it checks its condition, between 0 and 366 days."},
	{NULL}
};

static const TfOptionDef notify_options[] = {
	{"channel", TF_OPT_TEXT},
	{"payload", TF_OPT_TEXT},
	{NULL}
};

static const char *const archive_formats[] = {"csv", "csv.gz", "csv.zst", NULL};
static const char *const archive_sources[] = {"keep", "delete", "detach", "drop", NULL};
static const TfOptionDef archive_options[] = {
	{"server", TF_OPT_TEXT},
	{"path", TF_OPT_TEXT},
	{"query", TF_OPT_TEXT},
	{"table", TF_OPT_TEXT},
	{"where", TF_OPT_TEXT},
	{"format", TF_OPT_ENUM, 0, 0, NULL, archive_formats, "unknown format \"%s\" for %s",
	"Formats: csv, csv.gz, csv.zst."},
	{"max_file_size", TF_OPT_SIZE, (double) TF_MIN_MAX_FILE_SIZE, 0, NULL, NULL, NULL,
	"Parts are split at max_file_size; use at least \"1kB\" (the default is \"256MB\")."},
	{"source", TF_OPT_ENUM, 0, 0, NULL, archive_sources, "unknown source action \"%s\" for %s",
	"source is one of keep (default), delete, detach, drop."},
	{"parallel", TF_OPT_INT, 0, TF_PARALLEL_MAX, NULL, NULL, NULL,
	"parallel is the number of processes that export (0 or 1: serial); leave it out for the automatic choice."},
	{NULL}
};

static const char *const copy_modes[] = {"append", "replace", "upsert", "incremental", NULL};
static const TfOptionDef copy_options[] = {
	{"query", TF_OPT_TEXT},
	{"table", TF_OPT_TEXT},
	{"source_database", TF_OPT_TEXT},
	{"target", TF_OPT_TEXT},
	{"target_database", TF_OPT_TEXT},
	{"source_server", TF_OPT_TEXT},
	{"target_server", TF_OPT_TEXT},
	{"mode", TF_OPT_ENUM, 0, 0, NULL, copy_modes, "unknown mode \"%s\" for %s",
	"mode is one of append (default), replace, upsert, incremental."},
	{"key", TF_OPT_TEXT},
	{"watermark", TF_OPT_TEXT},
	{"lookback", TF_OPT_INTERVAL, 0, 366 * 86400.0, "at most 366 days", NULL, NULL,
	"lookback re-reads rows this far below the watermark (late arrivals), e.g. \"1 hour\"."},
	{NULL}
};

static const TfOptionDef branch_options[] = {
	{NULL}
};

static const TfNodeKind tf_kinds[] = {
	/* name, transaction mode, body, flags, options, render order, validate, sql_check, execute */
	{"sql", TF_XACT_OWN, TF_BODY_SQL, TF_KIND_CROSSDB, sql_options, NULL,
	tf_validate_sql_node, NULL, tf_worker_run_sql},
	{"archive", TF_XACT_ONE_RR, TF_BODY_NONE, TF_KIND_RENDERED_XACT, archive_options, NULL,
	NULL, "_validate_archive", tf_exec_archive},
	{"wait", TF_XACT_OWN, TF_BODY_EXPR, TF_KIND_OWN_TIMEOUT, wait_options, wait_render,
	tf_validate_wait_node, NULL, tf_worker_run_wait},
	{"notify", TF_XACT_ONE, TF_BODY_NONE, 0, notify_options, NULL,
	tf_validate_notify_node, NULL, tf_exec_notify},
	{"copy", TF_XACT_OWN, TF_BODY_NONE, 0, copy_options, NULL,
	tf_validate_copy_node, NULL, tf_exec_copy},
	{"branch", TF_XACT_ONE, TF_BODY_EXPR, 0, branch_options, NULL,
	tf_validate_branch_node, NULL, tf_exec_branch},
	{"check_rows", TF_XACT_OWN, TF_BODY_NONE, TF_KIND_OWN_TIMEOUT, check_rows_options, NULL,
	tf_validate_check_rows, NULL, tf_exec_check_rows},
	{"check_flow", TF_XACT_OWN, TF_BODY_NONE, TF_KIND_OWN_TIMEOUT, check_flow_options, NULL,
	tf_validate_check_flow, "_validate_check_flow", tf_exec_check_flow},
};

const TfNodeKind *
tf_node_kind(const char *kind)
{
	if (kind == NULL)
		return NULL;
	for (int i = 0; i < lengthof(tf_kinds); i++)
		if (strcmp(tf_kinds[i].name, kind) == 0)
			return &tf_kinds[i];
	return NULL;
}

static JsonbValue *
tf_find_option(Jsonb *options, const char *key)
{
	JsonbValue	k;

	if (options == NULL || !JB_ROOT_IS_OBJECT(options))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&options->root, JB_FOBJECT, &k);
}

char *
tf_node_option(Jsonb *options, const char *key)
{
	JsonbValue *v = tf_find_option(options, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* ---- the option grammar ---- */

static const char *
tf_jsonb_type_name(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "string";
		case jbvNumeric:
			return "number";
		case jbvBool:
			return "boolean";
		case jbvBinary:
			return (v->val.binary.data->header & JB_FARRAY) ? "array" : "object";
		default:
			return "unknown";
	}
}

static char *
tf_jsonb_value_text(JsonbValue *v)
{
	Jsonb	   *j = JsonbValueToJsonb(v);

	return JsonbToCString(NULL, &j->root, VARSIZE(j));
}

static StringInfo
tf_option_names(const TfNodeKind *k)
{
	StringInfo	s = makeStringInfo();

	for (const TfOptionDef *o = k->options; o->name; o++)
		appendStringInfo(s, "%s%s", s->len ? ", " : "", o->name);
	return s;
}

/* seconds of an interval option; ERROR naming 'what' if it is none */
static double
tf_option_interval_secs(const char *value, const char *what)
{
	Interval   *iv;
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool bad = false;

	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(value),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		if (e->sqlerrcode != ERRCODE_INVALID_DATETIME_FORMAT &&
			e->sqlerrcode != ERRCODE_DATETIME_FIELD_OVERFLOW &&
			e->sqlerrcode != ERRCODE_INTERVAL_FIELD_OVERFLOW &&
			e->sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE)
			PG_RE_THROW();
		FlushErrorState();
		bad = true;
		iv = NULL;
	}
	PG_END_TRY();
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid interval \"%s\" for %s", value, what),
				 errhint("Use a PostgreSQL interval such as '10 seconds', '5 min' or '1 hour'.")));
	/* as extract(epoch FROM iv) */
	return (double) iv->time / USECS_PER_SEC +
		((double) iv->month / MONTHS_PER_YEAR) * DAYS_PER_YEAR * SECS_PER_DAY +
		(double) iv->day * SECS_PER_DAY;
}

/*
 * A size option: a JSON number (whole bytes) or a string read by
 * tf_parse_size (the parser the executors use); -1 when it is no size.
 */
static int64
tf_option_size(JsonbValue *v)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int64 size = -1;

	if (v->type == jbvNumeric)
	{
		char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
															NumericGetDatum(v->val.numeric)));
		char	   *end;

		if (strspn(s, "0123456789") != strlen(s))
			return -1;
		errno = 0;
		size = strtoll(s, &end, 10);
		if (errno != 0 || size > INT64CONST(4611686018427387903))
			return -1;
		return size;
	}
	PG_TRY();
	{
		size = tf_parse_size(pnstrdup(v->val.string.val, v->val.string.len), "size");
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(cxt);
		e = CopyErrorData();
		if (e->sqlerrcode != ERRCODE_INVALID_PARAMETER_VALUE &&
			e->sqlerrcode != ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE)
			PG_RE_THROW();
		FlushErrorState();
		size = -1;
	}
	PG_END_TRY();
	return size;
}

/* check one option's value against its definition */
static void
tf_check_option_value(const TfOptionDef *o, JsonbValue *v, const char *what)
{
	char	   *value = v->type == jbvString ? pnstrdup(v->val.string.val, v->val.string.len) : NULL;
	char	   *owhat = psprintf("option \"%s\" of %s", o->name, what);

	switch (o->type)
	{
		case TF_OPT_TEXT:
			break;
		case TF_OPT_BOOL:
			break;
		case TF_OPT_ENUM:
			if (strstr(value, "${") == NULL)
			{
				bool		found = false;

				for (const char *const *e = o->values; *e; e++)
					if (strcmp(*e, value) == 0)
						found = true;
				if (!found)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 o->badvalue ? errmsg_internal(o->badvalue, value, what)
							 : errmsg("unknown value \"%s\" for %s", value, owhat),
							 o->hint ? errhint("%s", o->hint) : 0));
			}
			break;
		case TF_OPT_INT:
			if (value == NULL || strstr(value, "${") == NULL)
			{
				char	   *s = value ? value : tf_jsonb_value_text(v);
				char	   *end;
				long long	n;

				errno = 0;
				n = strtoll(s, &end, 10);
				if (end == s || *end != '\0' || errno != 0 || n < o->min ||
					(o->max > 0 && n > o->max))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s must be an integer between %.0f and %.0f, not %s",
									owhat, o->min, o->max, s),
							 o->hint ? errhint("%s", o->hint) : 0));
			}
			break;
		case TF_OPT_INTERVAL:
			{
				double		secs = tf_option_interval_secs(value, owhat);

				if (o->min > 0 && secs <= 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s must be positive", owhat)));
				if (secs < 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s must not be negative", owhat)));
				if (secs < o->min || (o->max > 0 && secs > o->max))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s must be %s, not %s", owhat, o->range, value),
							 o->hint ? errhint("%s", o->hint) : 0));
			}
			break;
		case TF_OPT_SIZE:
			/* a ${...} is checked at run */
			if (value == NULL || strstr(value, "${") == NULL)
			{
				int64		size = tf_option_size(v);
				char	   *shown = tf_jsonb_value_text(v);

				if (size < 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid %s %s for %s", o->name, shown, what),
							 errhint("Use a number of bytes (268435456) or a size such as \"256MB\" or \"1GB\".")));
				if (size < o->min)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s of %s must be at least %.0f bytes, not %s",
									o->name, what, o->min, shown),
							 o->hint ? errhint("%s", o->hint) : 0));
			}
			break;
	}
}

static int
tf_cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Definition-time check of a node: kind, options (names, JSON types,
 * values), then the kind's own check.  Returns the kind's entry.
 */
static const TfNodeKind *
tf_kind_validate(const char *kind, const char *node, const char *body, Jsonb *options)
{
	const TfNodeKind *k = tf_node_kind(kind);
	char	   *what;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	  **keys;
	int			nkeys = 0;

	if (k == NULL)
	{
		StringInfoData names;

		initStringInfo(&names);
		for (int i = 0; i < lengthof(tf_kinds); i++)
			appendStringInfo(&names, "%s%s", i ? ", " : "", tf_kinds[i].name);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown node kind \"%s\"", kind ? kind : "<NULL>"),
				 errhint("Node kinds are: %s.", names.data)));
	}
	what = psprintf("%s node \"%s\"", kind, node);
	if (options == NULL || !JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options of %s must be a JSON object", what),
				 errdetail("Got %s.", options ? JsonbToCString(NULL, &options->root, VARSIZE(options)) : "NULL")));

	/* the keys, sorted */
	keys = palloc(sizeof(char *) * (JsonContainerSize(&options->root) + 1));
	it = JsonbIteratorInit(&options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_KEY)
			keys[nkeys++] = pnstrdup(v.val.string.val, v.val.string.len);
	qsort(keys, nkeys, sizeof(char *), tf_cmp_cstr);

	for (int i = 0; i < nkeys; i++)
	{
		const TfOptionDef *o;
		JsonbValue *val = tf_find_option(options, keys[i]);

		for (o = k->options; o->name; o++)
			if (strcmp(o->name, keys[i]) == 0)
				break;
		if (o->name == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\" for %s", keys[i], what),
					 errhint("Options of %s nodes: %s.", kind, tf_option_names(k)->data)));
		if (o->type == TF_OPT_BOOL)
		{
			if (!(val->type == jbvBool ||
				  (val->type == jbvString && val->val.string.len == 4 &&
				   strncmp(val->val.string.val, "true", 4) == 0) ||
				  (val->type == jbvString && val->val.string.len == 5 &&
				   strncmp(val->val.string.val, "false", 5) == 0)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" of %s must be a JSON boolean", o->name, what),
						 errdetail("Got %s %s.", tf_jsonb_type_name(val), tf_jsonb_value_text(val)),
						 errhint("Use true or false (the strings \"true\" and \"false\" are accepted too).")));
		}
		else if (val->type != jbvString &&
				 !((o->type == TF_OPT_SIZE || o->type == TF_OPT_INT) && val->type == jbvNumeric))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" of %s must be a JSON %s", o->name, what,
							(o->type == TF_OPT_SIZE || o->type == TF_OPT_INT) ? "number or string" : "string"),
					 errdetail("Got %s %s.", tf_jsonb_type_name(val), tf_jsonb_value_text(val))));
	}

	/* values, in the order of the kind's option table */
	for (const TfOptionDef *o = k->options; o->name; o++)
	{
		JsonbValue *val = tf_find_option(options, o->name);

		if (val)
			tf_check_option_value(o, val, what);
	}

	if (k->validate)
		k->validate(what, body, options);
	return k;
}

/* ---- SQL interface ---- */

static ArrayType *
tf_text_array(const char *const *names, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(names[i]);
	return construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/* taskflow._node_kinds() RETURNS text[] */
Datum
tf_node_kinds_sql(PG_FUNCTION_ARGS)
{
	const char *names[lengthof(tf_kinds)];

	for (int i = 0; i < lengthof(tf_kinds); i++)
		names[i] = tf_kinds[i].name;
	PG_RETURN_ARRAYTYPE_P(tf_text_array(names, lengthof(tf_kinds)));
}

/* taskflow._option_order(kind text) RETURNS text[]: render()'s order */
Datum
tf_option_order_sql(PG_FUNCTION_ARGS)
{
	const TfNodeKind *k = PG_ARGISNULL(0) ? NULL : tf_node_kind(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	const char *names[64];
	int			n = 0;

	if (k == NULL)
		PG_RETURN_ARRAYTYPE_P(tf_text_array(names, 0));
	if (k->render_order)
		for (const char *const *r = k->render_order; *r && n < 64; r++)
			names[n++] = *r;
	else
		for (const TfOptionDef *o = k->options; o->name && n < 64; o++)
			names[n++] = o->name;
	PG_RETURN_ARRAYTYPE_P(tf_text_array(names, n));
}

/*
 * taskflow._kind_validate(kind text, node text, body text, options jsonb)
 * RETURNS text: checks the node (see tf_kind_validate); the result is the
 * name of the kind's further check in SQL (schema taskflow), or NULL.
 */
Datum
tf_kind_validate_sql(PG_FUNCTION_ARGS)
{
	const TfNodeKind *k;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("node name must not be NULL")));
	k = tf_kind_validate(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)),
						 text_to_cstring(PG_GETARG_TEXT_PP(1)),
						 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
						 PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3));
	if (k->sql_check == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(k->sql_check));
}

/*
 * taskflow._kind_body(kind text) RETURNS text: 'sql' (a script), 'expression'
 * (a condition), or NULL (no SQL body) -- for _check_sql and render().
 */
Datum
tf_kind_body_sql(PG_FUNCTION_ARGS)
{
	const TfNodeKind *k = PG_ARGISNULL(0) ? NULL : tf_node_kind(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (k == NULL || k->body == TF_BODY_NONE)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(k->body == TF_BODY_SQL ? "sql" : "expression"));
}
