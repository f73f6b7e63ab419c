/*-------------------------------------------------------------------------
 *
 * define_create.c
 *	  The C create path of the definition API (issue 11: defining 10,000
 *	  flows in no more time than pg_cron defining 10,000 jobs).  See
 *	  docs/performance.md ("1.4: a C create path"), docs/reference.md
 *	  ("apply_flow") and docs/security.md (the catalog guard).
 *
 *	  taskflow.apply_flow(definition jsonb, name text) -> integer
 *	      creates a new flow of a plain definition directly: it checks the
 *	      definition once, with the same checks as the API (names, schedule,
 *	      time zone, settings, the node-kind registry, the SQL parse of
 *	      bodies, trigger rules, edges between known nodes, no cycle), then
 *	      inserts the flow, its nodes and its edges as the caller (privileges
 *	      and row level security apply as to any INSERT), writes the flow's
 *	      first definition version (one flow_versions row and one
 *	      definition_changes row per object, as the history trigger would,
 *	      in the same order) and decides the scheduler wake once.
 *	      Everything else -- an existing flow, variables, ${...} in a body or
 *	      option, kinds with catalog checks (archive, ...), branch nodes,
 *	      finalizers, labelled edges, owner/start_date/end_date, a schedule
 *	      that never fires (a WARNING), and any definition this path finds
 *	      wrong -- goes to the PL/pgSQL path through the public API
 *	      (taskflow._apply_flow_api, sql/src/98_define.sql), which gives the
 *	      errors, hints and warnings.  The fast path runs in a subtransaction:
 *	      whatever it did is rolled back before the API path runs, so a bad
 *	      definition changes nothing and gets exactly the API's error.
 *
 *	  taskflow.create_flow(...) -> bigint, taskflow.add_node(...) -> bigint
 *	      the same for one flow (owned by the caller, without dates) and one
 *	      node (add_node's flow lock and updated_at bump once per
 *	      transaction, the history in the transaction's version of the
 *	      flow); otherwise taskflow._create_flow_api / _add_node_api
 *	      (sql/src/10_api.sql).
 *
 *	  The triggers of the rows this path writes (the catalog guard, the
 *	  flow-logic and cycle checks, the history trigger, the wake, and the
 *	  foreign-key checks) do not fire: this file's own catalog statements
 *	  run with SessionReplicationRole = replica (run_plan: why that is
 *	  sound, and why nothing of a user can run or be left with it).  The
 *	  rows were checked before; their history and wake are written here
 *	  once.  A user's own INSERT/UPDATE never runs so, and is validated by
 *	  the guard as before (test/sql/define_replica.sql).
 *
 *	  taskflow._define_internal() -> boolean
 *	      true only while those statements run (a static flag, set and reset
 *	      here around them, also on error; no GUC, nothing a user can set).
 *	      The definition's per-row triggers keep WHEN (NOT
 *	      taskflow._define_internal()) as a second guard.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"
#include "engine.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/rls.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/xid8.h"

#include "define_direct.h"

PG_FUNCTION_INFO_V1(tf_apply_flow);
PG_FUNCTION_INFO_V1(tf_add_node);
PG_FUNCTION_INFO_V1(tf_create_flow);
PG_FUNCTION_INFO_V1(tf_define_internal);

/* node_kinds.c, validate.c (SQL-callable C functions of this library) */
extern PGDLLEXPORT Datum tf_kind_validate_sql(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum tf_kind_body_sql(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum tf_tz_canonical(PG_FUNCTION_ARGS);

/* set only around this file's catalog INSERTs (see the banner) */
static bool define_internal = false;

/* run_fast's search_path pinned for the saved plans (run_plan) */
static bool path_pinned = false;

/* saved plans (prepared and run under a pinned search_path: run_fast) */
static SPIPlanPtr plan_flow = NULL;
static SPIPlanPtr plan_nodes = NULL;
static SPIPlanPtr plan_edges = NULL;
static SPIPlanPtr plan_history = NULL;
static SPIPlanPtr plan_history_add = NULL;
static SPIPlanPtr plan_node_settings = NULL;
static SPIPlanPtr plan_flow_mine = NULL;
static SPIPlanPtr plan_flow_bump = NULL;
static SPIPlanPtr plan_upstream = NULL;

/*
 * The same inserts of one row (one node, edge, history row: add_node,
 * create_flow, a 1-node flow): the same parameters, read as $n[1] -- no
 * function scan of unnest and no sort in the plan.
 */
static SPIPlanPtr plan_node1 = NULL;
static SPIPlanPtr plan_edge1 = NULL;
static SPIPlanPtr plan_history1 = NULL;
static SPIPlanPtr plan_history_add1 = NULL;
/* add_node's node, returning also the flow's last version and whose it is */
static SPIPlanPtr plan_node_add = NULL;
/*
 * (1.7) the same for a caller to whom row level security applies: the node
 * alone, and the flow's last version read by plan_last_version as the
 * bootstrap superuser (the policy of flow_versions, "EXISTS (the flow,
 * visible)", made a hashed subplan of plan_node_add's subqueries, a scan of
 * every flow in each add_node)
 */
static SPIPlanPtr plan_node_add_rls = NULL;
static SPIPlanPtr plan_last_version = NULL;

/* the columns the history leaves out of images (taskflow._defhist_row) */
#define FLOW_HIDDEN "{id,created_at,updated_at,scheduled_until,next_due,schedule_error,suspended_reason,resumed_at}"
#define NODE_HIDDEN "{id,flow_id,created_at,updated_at}"

/*
 * The nodes' INSERT of the statement forms: its columns, and one node of
 * the arrays $2..$9 (the flow $1) with its history image; node_arg_types
 * gives the nine parameters' types.
 */
#define NODE_INSERT "INSERT INTO taskflow.nodes AS n (flow_id, name, kind, body, options, " \
	"retries, retry_delay, timeout, trigger_rule, finalizer) "
#define NODE_INSERT_ONE NODE_INSERT \
	"VALUES ($1, $2[1], $3[1], $4[1], $5[1], $6[1], $7[1], $8[1], $9[1], false) " \
	"RETURNING n.id, to_jsonb(n) - '" NODE_HIDDEN "'::text[]"
#define NODE_NARGS 9

static void
node_arg_types(Oid *t)
{
	t[0] = INT8OID;
	t[1] = t[2] = t[3] = TEXTARRAYOID;
	t[4] = get_array_type(JSONBOID);
	t[5] = INT4ARRAYOID;
	t[6] = t[7] = get_array_type(INTERVALOID);
	t[8] = TEXTARRAYOID;
}

/* the trigger rules of taskflow._fl_rules() (another rule: the API path) */
static const char *const known_rules[] = {
	"all_success", "all_done", "one_failed", "all_failed", "always",
	"none_failed_min_one_success"
};

typedef struct DefNode
{
	char	   *name;
	JsonbContainer *nc;			/* its JSON object */
	char	   *kind;
	char	   *body;			/* NULL: none */
	Jsonb	   *options;
	bool		has_retries;
	int32		retries;
	bool		has_retry_delay;
	Datum		retry_delay;
	bool		has_timeout;	/* a non-null timeout given */
	Datum		timeout;		/* NULL when 0 */
	bool		timeout_null;
	char	   *trigger_rule;
	bool		added;
	int64		id;
	Datum		img;			/* its history image */
} DefNode;

typedef struct DefEdge
{
	int			from;			/* index into nodes */
	int			to;
} DefEdge;

Datum
tf_define_internal(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(define_internal);
}

/* ---------------------------------------------------------------------
 * small helpers
 * ---------------------------------------------------------------------
 */

/* a key of a JSON object, or NULL when absent or JSON null */
static JsonbValue *
jfield(JsonbContainer *c, const char *key, JsonbValue *buf)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), buf);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	return v;
}

/* the container of an object/array value, or NULL */
static JsonbContainer *
jcontainer(JsonbValue *v, bool object)
{
	if (v == NULL || v->type != jbvBinary)
		return NULL;
	if (object ? !JsonContainerIsObject(v->val.binary.data)
		: !JsonContainerIsArray(v->val.binary.data))
		return NULL;
	return v->val.binary.data;
}

static char *
jstring(JsonbValue *v)
{
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Does every key of object c name one of keys[], with a value of the type
 * types[] gives ('s'tring, 'n'umber, 'b'oolean, 'o'bject, 'a'rray, or '0':
 * JSON null only), or JSON null (not for an upper-case type: apply_flow
 * turns JSON null there into an error)?  (What _apply_check_object
 * accepts, minus what this path leaves to the API.)
 */
static bool
keys_ok(JsonbContainer *c, const char *const *keys, const char *types)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			want = -1;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			want = -1;
			for (int i = 0; keys[i] != NULL; i++)
				if (strlen(keys[i]) == v.val.string.len &&
					memcmp(keys[i], v.val.string.val, v.val.string.len) == 0)
					want = i;
			if (want < 0)
				return false;
		}
		else if (tok == WJB_VALUE)
		{
			char		t = types[want];

			if (v.type == jbvNull)
			{
				/* (upper case: JSON null is an error of the API path) */
				if (t >= 'A' && t <= 'Z')
					return false;
				continue;
			}
			t = pg_ascii_tolower((unsigned char) t);
			if ((t == 's' && v.type != jbvString) ||
				(t == 'n' && v.type != jbvNumeric) ||
				(t == 'b' && v.type != jbvBool) ||
				(t == 'o' && jcontainer(&v, true) == NULL) ||
				(t == 'a' && jcontainer(&v, false) == NULL) ||
				t == '0')
				return false;
		}
	}
	return true;
}

/* (x->>'key')::integer of a JSON number (errors as the cast's) */
static int32
jint(JsonbValue *v)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
														NumericGetDatum(v->val.numeric)));

	return DatumGetInt32(DirectFunctionCall1(int4in, CStringGetDatum(s)));
}

/* a name of _check_name's rule: [A-Za-z_][A-Za-z0-9_<extra>]{0,62} */
static bool
name_ok(const char *s, const char *extra)
{
	int			n = strlen(s);

	if (n < 1 || n > 63)
		return false;
	for (int i = 0; i < n; i++)
	{
		unsigned char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_')
			continue;
		if (i > 0 && ((c >= '0' && c <= '9') || strchr(extra, c) != NULL) && c != '\0')
			continue;
		return false;
	}
	return true;
}

/* btrim(s) (spaces only, as SQL's btrim) */
static char *
trim_spaces(const char *s)
{
	const char *e = s + strlen(s);

	while (*s == ' ')
		s++;
	while (e > s && e[-1] == ' ')
		e--;
	return pnstrdup(s, e - s);
}

/* call a C function of this library that may return NULL */
static Datum
call_nullable(PGFunction fn, int nargs, Datum *args, bool *nulls, bool *isnull)
{
	LOCAL_FCINFO(fcinfo, 4);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, nargs, DEFAULT_COLLATION_OID, NULL, NULL);
	for (int i = 0; i < nargs; i++)
	{
		fcinfo->args[i].value = args[i];
		fcinfo->args[i].isnull = nulls[i];
	}
	result = (*fn) (fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

/* "now" as the scheduler sees it: taskflow._now() (define_fast.c) */
static TimestampTz
sched_now(void)
{
	if (tf_test_clock != NULL && tf_test_clock[0] != '\0')
		return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
													   CStringGetDatum(tf_test_clock),
													   ObjectIdGetDatum(InvalidOid),
													   Int32GetDatum(-1)));
	return GetCurrentTransactionStartTimestamp();
}

static int
name_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *) a;
	const char *y = *(const char *const *) b;

	/* ORDER BY of a text column: the database's default collation */
	return varstr_cmp(x, strlen(x), y, strlen(y), DEFAULT_COLLATION_OID);
}

static SPIPlanPtr
prepare(const char *sql, int nargs, Oid *types)
{
	int			nest = NewGUCNestLevel();
	SPIPlanPtr	plan;

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* generic plans: planned once, not for every call's parameters */
	plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "taskflow: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	AtEOXact_GUC(true, nest);
	return plan;
}

static void
prepare_plans(void)
{
	if (plan_flow == NULL)
	{
		Oid			t[] = {TEXTOID, REGROLEOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID, BOOLOID,
		INT4OID, INT4OID, INT4OID};

		/* the columns create_flow inserts */
		plan_flow = prepare("INSERT INTO taskflow.flows AS f (name, owner, schedule, timezone, "
							"description, enabled, catchup, max_active_runs, start_date, end_date, "
							"suspend_after_failures, priority) "
							"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $10) "
							"RETURNING f.id, to_jsonb(f) - '" FLOW_HIDDEN "'::text[]", lengthof(t), t);
	}
	if (plan_nodes == NULL)
	{
		Oid			t[NODE_NARGS];

		node_arg_types(t);

		/* the columns add_node inserts, one row per node in the API's order */
		plan_nodes = prepare(NODE_INSERT "SELECT $1, x.name, x.kind, x.body, x.options, x.retries, x.retry_delay, "
							 "x.timeout, x.trigger_rule, false "
							 "FROM unnest($2, $3, $4, $5, $6, $7, $8, $9) WITH ORDINALITY "
							 "AS x(name, kind, body, options, retries, retry_delay, timeout, trigger_rule, ord) "
							 "ORDER BY x.ord RETURNING n.id, to_jsonb(n) - '" NODE_HIDDEN "'::text[]", lengthof(t), t);
	}
	if (plan_edges == NULL)
	{
		Oid			t[] = {INT8OID, INT8ARRAYOID, INT8ARRAYOID};

		plan_edges = prepare("INSERT INTO taskflow.edges (flow_id, from_node, to_node) "
							 "SELECT $1, x.a, x.b FROM unnest($2, $3) WITH ORDINALITY AS x(a, b, ord) "
							 "ORDER BY x.ord RETURNING to_jsonb(edges) - '{flow_id}'::text[]", lengthof(t), t);
	}
	if (plan_history == NULL)
	{
		Oid			t[] = {INT8OID, NAMEOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, 0};

		/*
		 * what taskflow._defhist_row() writes for these inserts: a new
		 * version of the flow (the first change of the transaction to it;
		 * the caller holds the flow's row lock) and one change per object,
		 * its image as the insert returned it (the same columns left out)
		 */
		t[5] = get_array_type(JSONBOID);
		plan_history = prepare("WITH v AS (INSERT INTO taskflow.flow_versions "
							   "(flow_id, version, changed_at, session_role, changed_by, xid) "
							   "VALUES ($1, $5, now(), session_user, $2, pg_current_xact_id()) "
							   "RETURNING version) "
							   "INSERT INTO taskflow.definition_changes "
							   "(flow_id, version, kind, op, object_key, old, new, session_role, changed_by) "
							   "SELECT $1, v.version, k.kind, 'insert', k.key, NULL, k.img, session_user, $2 "
							   "FROM v, unnest($3, $4, $6) WITH ORDINALITY AS k(kind, key, img, ord) "
							   "ORDER BY k.ord", lengthof(t), t);
	}
	if (plan_history_add == NULL)
	{
		Oid			t[] = {INT8OID, NAMEOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, 0};

		/* the later changes of a transaction to a flow: its version */
		t[5] = get_array_type(JSONBOID);
		plan_history_add = prepare("INSERT INTO taskflow.definition_changes "
								   "(flow_id, version, kind, op, object_key, old, new, session_role, changed_by) "
								   "SELECT $1, $5, k.kind, 'insert', k.key, NULL, k.img, session_user, $2 "
								   "FROM unnest($3, $4, $6) WITH ORDINALITY AS k(kind, key, img, ord) "
								   "ORDER BY k.ord", lengthof(t), t);
	}
	if (plan_node_settings == NULL)
	{
		Oid			t[] = {TEXTOID, INT4OID, INTERVALOID, INTERVALOID};

		plan_node_settings = prepare("SELECT taskflow._check_node_settings($1, $2, $3, $4)",
									 lengthof(t), t);
	}
	if (plan_flow_mine == NULL)
	{
		Oid			t[] = {TEXTOID};

		/* taskflow._flow_for_update: this transaction wrote the row already */
		plan_flow_mine = prepare("SELECT x.id FROM taskflow.flows x WHERE x.name = $1 "
								 "AND x.updated_at = now() AND taskflow._row_is_mine(x.xmin)",
								 lengthof(t), t);
	}
	if (plan_flow_bump == NULL)
	{
		Oid			t[] = {TEXTOID};

		plan_flow_bump = prepare("UPDATE taskflow.flows SET updated_at = now() "
								 "WHERE flows.name = $1 RETURNING flows.id", lengthof(t), t);
	}
	if (plan_upstream == NULL)
	{
		Oid			t[] = {INT8OID, TEXTARRAYOID};

		/*
		 * locked FOR KEY SHARE: the lock the edges' foreign-key checks
		 * would take (they are skipped: run_plan), so that no node an edge
		 * refers to can be deleted before this transaction ends
		 */
		plan_upstream = prepare("SELECT n.id, n.name, n.finalizer OR n.kind = 'branch' "
								"FROM taskflow.nodes n WHERE n.flow_id = $1 AND n.name = ANY ($2) "
								"FOR KEY SHARE OF n",
								lengthof(t), t);
	}
	if (plan_node1 == NULL)
	{
		Oid			t[NODE_NARGS];

		node_arg_types(t);

		plan_node1 = prepare(NODE_INSERT_ONE, lengthof(t), t);
	}
	if (plan_node_add == NULL)
	{
		Oid			t[NODE_NARGS];

		node_arg_types(t);

		/*
		 * (after the flow's row lock: a new statement's snapshot sees every
		 * version committed before it; read as the caller, who sees the
		 * flow, so all its versions)
		 */
		plan_node_add = prepare(NODE_INSERT_ONE ", "
								"(SELECT x.version FROM taskflow.flow_versions x WHERE x.flow_id = $1 "
								"ORDER BY x.version DESC LIMIT 1), "
								"(SELECT x.xid = pg_current_xact_id() FROM taskflow.flow_versions x "
								"WHERE x.flow_id = $1 ORDER BY x.version DESC LIMIT 1)", lengthof(t), t);
	}
	if (plan_node_add_rls == NULL)
	{
		Oid			t[NODE_NARGS];

		node_arg_types(t);

		plan_node_add_rls = prepare(NODE_INSERT_ONE, lengthof(t), t);
	}
	if (plan_last_version == NULL)
	{
		Oid			t[] = {INT8OID};

		plan_last_version = prepare("SELECT x.version, x.xid = pg_current_xact_id() "
									"FROM taskflow.flow_versions x WHERE x.flow_id = $1 "
									"ORDER BY x.version DESC LIMIT 1", lengthof(t), t);
	}
	if (plan_edge1 == NULL)
	{
		Oid			t[] = {INT8OID, INT8ARRAYOID, INT8ARRAYOID};

		plan_edge1 = prepare("INSERT INTO taskflow.edges (flow_id, from_node, to_node) "
							 "VALUES ($1, $2[1], $3[1]) "
							 "RETURNING to_jsonb(edges) - '{flow_id}'::text[]", lengthof(t), t);
	}
	if (plan_history1 == NULL)
	{
		Oid			t[] = {INT8OID, NAMEOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, 0};

		t[5] = get_array_type(JSONBOID);
		plan_history1 = prepare("WITH v AS (INSERT INTO taskflow.flow_versions "
								"(flow_id, version, changed_at, session_role, changed_by, xid) "
								"VALUES ($1, $5, now(), session_user, $2, pg_current_xact_id()) "
								"RETURNING version) "
								"INSERT INTO taskflow.definition_changes "
								"(flow_id, version, kind, op, object_key, old, new, session_role, changed_by) "
								"SELECT $1, v.version, $3[1], 'insert', $4[1], NULL, $6[1], session_user, $2 "
								"FROM v", lengthof(t), t);
	}
	if (plan_history_add1 == NULL)
	{
		Oid			t[] = {INT8OID, NAMEOID, TEXTARRAYOID, TEXTARRAYOID, INT4OID, 0};

		t[5] = get_array_type(JSONBOID);
		plan_history_add1 = prepare("INSERT INTO taskflow.definition_changes "
									"(flow_id, version, kind, op, object_key, old, new, session_role, changed_by) "
									"VALUES ($1, $5, $3[1], 'insert', $4[1], NULL, $6[1], session_user, $2)",
									lengthof(t), t);
	}
}

static ArrayType *
text_array(char **v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * (n + 1));
	bool	   *nulls = palloc(sizeof(bool) * (n + 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = v[i] == NULL;
		d[i] = v[i] ? CStringGetTextDatum(v[i]) : (Datum) 0;
	}
	return construct_md_array(d, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
}

static ArrayType *
datum_array(Datum *d, bool *nulls, int n, Oid type)
{
	int16		len;
	bool		byval;
	char		align;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &len, &byval, &align);
	return construct_md_array(d, nulls, 1, dims, lbs, type, len, byval, align);
}

/* column col of row i of the last SPI result, a jsonb copied out of it */
static Datum
spi_jsonb(uint64 i, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, col, &isnull);

	if (isnull)
		elog(ERROR, "taskflow: no image of an inserted row");
	return PointerGetDatum(DatumGetJsonbPCopy(d));
}

/*
 * Run a saved plan.  internal: one of this file's own catalog writes (the
 * flow, nodes, edges, the flow's updated_at bump, the history), whose rows
 * were checked before and are consistent by construction; it runs with the
 * flag set and with SessionReplicationRole = replica, so that PostgreSQL
 * skips every ORIGIN-enabled trigger of those tables, the foreign-key checks
 * included, before it even looks at a WHEN clause (TriggerEnabled):
 *
 * - the guard, flow-logic, cycle, history and wake triggers: their work is
 *   done here, once per call (see the banner);
 * - the foreign keys: every parent row is ours or locked by us -- a new
 *   flow's id and its nodes' ids come from the RETURNING of our own
 *   inserts in this subtransaction (invisible to others until commit);
 *   add_node's flow row was written (locked) by this transaction
 *   (plan_flow_mine, plan_flow_bump) and its upstream nodes are locked FOR
 *   KEY SHARE by plan_upstream, the lock the foreign-key check would take;
 *   the history's version row is inserted by the same statement or is this
 *   transaction's own (plan_node_add).
 *
 * CHECK constraints, NOT NULL, unique indexes, privileges and row level
 * security are not triggers: they apply as always (the inserts run as the
 * caller).  The C variable is set, not the GUC: the GUC's assign hook
 * resets the whole plan cache (for rules that fire by replication role; the
 * tables written here have none, test/sql/define_replica.sql checks that),
 * and only superusers may set the GUC, so nothing a user runs can set it.
 * Nothing of a user's runs inside: the statements are this file's, under a
 * pinned search_path; what they call (defaults, CHECKs, the policies'
 * taskflow._is_member, to_jsonb) is the extension's or built in, and a
 * plain role can add no trigger, rule or policy to these tables.  Both are
 * restored when the statement ends, also on error (PG_FINALLY).
 */
static void
run_plan(SPIPlanPtr *planp, Datum *values, char *nulls, bool internal, int expect)
{
	int			rc;
	bool		save = define_internal;
	int			save_role = SessionReplicationRole;
	SPIPlanPtr	plan;

	/*
	 * (1.7: the saved plans are prepared when the first of them runs, not
	 * at every backend's first call: the direct inserts need none of them)
	 */
	if (*planp == NULL)
		prepare_plans();
	plan = *planp;

	if (!path_pinned)
	{
		/*
		 * The saved plans run under a pinned search_path, as the API's
		 * functions do: a plan cache re-parses a plan under the caller's
		 * search_path when it differs from the one it was parsed with (and
		 * the caller's could shadow an operator).  Set at run_fast's GUC
		 * nest level, once per call and only when a plan runs (the direct
		 * inserts look nothing up by name); restored by run_fast, or by
		 * the subtransaction's abort.
		 */
		(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		path_pinned = true;
	}
	define_internal = internal;
	if (internal)
		SessionReplicationRole = SESSION_REPLICATION_ROLE_REPLICA;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		define_internal = save;
		SessionReplicationRole = save_role;
	}
	PG_END_TRY();
	if (rc != expect)
		elog(ERROR, "taskflow: unexpected SPI result %d", rc);
}

/*
 * The direct form of run_plan (define_direct.c): the rows of one table
 * inserted without a statement, under the same flag and replication role
 * (the same reasoning: run_plan), restored also on error.  begin: NULL when
 * the direct form is not possible for the current user (row level
 * security applies, a privilege is missing: the saved plan's INSERT is
 * used, with its policies and its errors).
 */
typedef struct DirectRows
{
	const char *rel;
	const char *const *cols;
	const Oid  *types;
	int			ncols;
	int			nrows;
	Datum	   *values;			/* nrows x ncols */
	bool	   *nulls;
	const char *id;				/* a column to return of each row (NULL: none) */
	const char *hidden;			/* the image: to_jsonb(row) - hidden (NULL: none) */
	TfDirectRls rls;			/* how row level security is met where it applies */
	int64	   *ids;			/* out */
	Datum	   *imgs;			/* out */
} DirectRows;

static bool
direct_insert(DirectRows *r)
{
	TfDirect   *volatile d = NULL;
	bool		save = define_internal;
	int			save_role = SessionReplicationRole;

	define_internal = true;
	SessionReplicationRole = SESSION_REPLICATION_ROLE_REPLICA;
	PG_TRY();
	{
		d = tf_direct_begin(r->rel, r->cols, r->types, r->ncols, r->rls);
		if (d != NULL)
		{
			for (int i = 0; i < r->nrows; i++)
			{
				tf_direct_insert(d, r->values + i * r->ncols, r->nulls + i * r->ncols);
				if (r->id != NULL)
				{
					bool		isnull;

					r->ids[i] = DatumGetInt64(tf_direct_value(d, r->id, &isnull));
				}
				if (r->hidden != NULL)
					r->imgs[i] = tf_direct_image(d, r->hidden);
			}
			tf_direct_end(d);
		}
	}
	PG_FINALLY();
	{
		define_internal = save;
		SessionReplicationRole = save_role;
	}
	PG_END_TRY();
	return d != NULL;
}

/*
 * write_history's rows inserted directly (as the history statements insert
 * them: the version row unless the transaction has it, then the changes in
 * order); false: not possible, the statements run
 */
static bool
write_history_direct(int64 fid, int32 version, bool mine, Name whoname,
					 char **hkind, char **hkey, Datum *himg, int nh)
{
	static const char *const vcols[] = {"flow_id", "version", "changed_at", "session_role",
	"changed_by", "xid"};
	static const Oid vtypes[] = {INT8OID, INT4OID, TIMESTAMPTZOID, NAMEOID, NAMEOID, XID8OID};
	static const char *const ccols[] = {"flow_id", "version", "kind", "op", "object_key", "old",
	"new", "session_role", "changed_by"};
	static const Oid ctypes[] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID,
	NAMEOID, NAMEOID};
	Name		session = palloc0(NAMEDATALEN);
	DirectRows	r;

	namestrcpy(session, GetUserNameFromId(GetSessionUserId(), false));
	if (!mine)
	{
		Datum		v[6];
		bool		n[6] = {false, false, false, false, false, false};

		v[0] = Int64GetDatum(fid);
		v[1] = Int32GetDatum(version);
		v[2] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		v[3] = NameGetDatum(session);
		v[4] = NameGetDatum(whoname);
		v[5] = FullTransactionIdGetDatum(GetTopFullTransactionId());
		memset(&r, 0, sizeof(r));
		r.rel = "flow_versions";
		r.cols = vcols;
		r.types = vtypes;
		r.ncols = lengthof(vcols);
		r.nrows = 1;
		r.values = v;
		r.nulls = n;
		if (!direct_insert(&r))
			return false;
	}
	memset(&r, 0, sizeof(r));
	r.rel = "definition_changes";
	r.cols = ccols;
	r.types = ctypes;
	r.ncols = lengthof(ccols);
	r.nrows = nh;
	r.values = palloc(sizeof(Datum) * nh * r.ncols);
	r.nulls = palloc0(sizeof(bool) * nh * r.ncols);
	for (int i = 0; i < nh; i++)
	{
		Datum	   *v = r.values + i * r.ncols;

		v[0] = Int64GetDatum(fid);
		v[1] = Int32GetDatum(version);
		v[2] = CStringGetTextDatum(hkind[i]);
		v[3] = CStringGetTextDatum("insert");
		v[4] = CStringGetTextDatum(hkey[i]);
		r.nulls[i * r.ncols + 5] = true;
		v[6] = himg[i];
		v[7] = NameGetDatum(session);
		v[8] = NameGetDatum(whoname);
	}
	if (!direct_insert(&r))
	{
		/* (the version row written above: the plan without it) */
		if (!mine)
			elog(ERROR, "taskflow: the definition history could not be written");
		return false;
	}
	return true;
}

/*
 * The definition history of the inserts of flow fid (kinds, keys and
 * images in the order the history trigger would have seen them), written
 * as that trigger writes it: as the bootstrap superuser (users cannot
 * write history), recording the changing role (GetUserId()), in version
 * 'version' of the flow: the transaction's own (mine: its flow_versions row
 * is there), or a new one (a new flow: 1; else the last one + 1).
 */
static void
write_history(int64 fid, int32 version, bool mine, char **hkind, char **hkey, Datum *himg, int nh)
{
	Datum		hv[6];
	char		hn[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Oid			save_userid;
	int			save_sec;
	Name		whoname = palloc0(NAMEDATALEN);
	bool	   *nonull = palloc0(sizeof(bool) * nh);

	namestrcpy(whoname, GetUserNameFromId(GetUserId(), false));
	hv[0] = Int64GetDatum(fid);
	hv[1] = NameGetDatum(whoname);
	hv[2] = PointerGetDatum(text_array(hkind, nh));
	hv[3] = PointerGetDatum(text_array(hkey, nh));
	hv[4] = Int32GetDatum(version);
	hv[5] = PointerGetDatum(datum_array(himg, nonull, nh, JSONBOID));
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		if (!write_history_direct(fid, version, mine, whoname, hkind, hkey, himg, nh))
			run_plan(mine ? (nh == 1 ? &plan_history_add1 : &plan_history_add)
					 : (nh == 1 ? &plan_history1 : &plan_history), hv, hn, true, SPI_OK_INSERT);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
}

/* ---------------------------------------------------------------------
 * the create path
 * ---------------------------------------------------------------------
 */

/* this definition is not for this path: the API path takes it (DEBUG2) */
#define NOT_TAKEN() \
	do { \
		elog(DEBUG2, "taskflow.apply_flow: the API path (define_create.c:%d)", __LINE__); \
		return false; \
	} while (0)

static int
node_index(DefNode *nodes, int nn, const char *name)
{
	for (int i = 0; i < nn; i++)
		if (strcmp(nodes[i].name, name) == 0)
			return i;
	return -1;
}

/* add edge from -> to unless there (the API path keys edges by "from>to") */
static bool
add_edge(DefEdge **edges, int *ne, int *emax, int from, int to)
{
	if (from < 0 || to < 0 || from == to)
		return false;			/* unknown node, a self-loop: the API's error */
	for (int i = 0; i < *ne; i++)
		if ((*edges)[i].from == from && (*edges)[i].to == to)
			return true;
	if (*ne == *emax)
		*edges = repalloc(*edges, sizeof(DefEdge) * (*emax *= 2));
	(*edges)[*ne].from = from;
	(*edges)[*ne].to = to;
	(*ne)++;
	return true;
}

/*
 * Check one node as add_node (and the guard) would: n has its name, kind
 * (as given), body, options, trigger rule (NULL: the default) and the
 * settings given.  false: the API path.
 */
static bool
validate_node(DefNode *n)
{
	char	   *what;
	Datum		args[4];
	bool		nulls[4] = {false, false, false, false};
	bool		isnull;
	Datum		res;
	Interval   *d;

	if (n->kind == NULL || !name_ok(n->name, "_-"))
		NOT_TAKEN();
	/* lower(btrim(kind)): a kind given in lower case (else the API path) */
	n->kind = trim_spaces(n->kind);
	for (char *p = n->kind; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			NOT_TAKEN();
	/* branch nodes: edge labels and their warnings, the API path */
	if (strcmp(n->kind, "branch") == 0)
		NOT_TAKEN();
	if (n->body != NULL && *n->body == '\0')
		n->body = NULL;
	if (n->options == NULL)
		n->options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	/* variables, output variables ${node.column}: the API path */
	if ((n->body != NULL && strstr(n->body, "${") != NULL) ||
		strstr(JsonbToCString(NULL, &n->options->root, VARSIZE(n->options)), "${") != NULL)
		NOT_TAKEN();
	if (n->trigger_rule == NULL)
		n->trigger_rule = "all_success";
	else
	{
		bool		known = false;

		for (int r = 0; r < lengthof(known_rules); r++)
			known |= strcmp(known_rules[r], n->trigger_rule) == 0;
		if (!known)
			NOT_TAKEN();
	}
	if (!n->has_retries)
		n->retries = 0;
	else if (n->retries < 0 || n->retries > 100)
		NOT_TAKEN();
	if (!n->has_retry_delay)
		n->retry_delay = DirectFunctionCall3(interval_in, CStringGetDatum("1 min"),
											 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	/*
	 * add_node's own check of retry_delay and timeout (not needed for the
	 * default delay, exactly 1 minute)
	 */
	d = DatumGetIntervalP(n->retry_delay);
	if (n->has_timeout || (n->has_retry_delay && !(d->month == 0 && d->day == 0 &&
												   d->time == 60 * USECS_PER_SEC)))
	{
		Datum		sv[4];
		char		sn[4] = {' ', ' ', ' ', n->has_timeout ? ' ' : 'n'};

		sv[0] = CStringGetTextDatum(n->name);
		sv[1] = Int32GetDatum(n->retries);
		sv[2] = n->retry_delay;
		sv[3] = n->has_timeout ? n->timeout : (Datum) 0;
		run_plan(&plan_node_settings, sv, sn, false, SPI_OK_SELECT);
	}
	/* nullif(timeout, '0') */
	n->timeout_null = true;
	if (n->has_timeout)
	{
		Datum		zero = DirectFunctionCall3(interval_in, CStringGetDatum("0"),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));

		n->timeout_null = DatumGetBool(DirectFunctionCall2(interval_eq, n->timeout, zero));
	}

	/* _validate_node: the registry (kind, options, the kind's own check) */
	what = psprintf("%s node \"%s\"", n->kind, n->name);
	args[0] = CStringGetTextDatum(n->kind);
	args[1] = CStringGetTextDatum(n->name);
	args[2] = n->body ? CStringGetTextDatum(n->body) : (Datum) 0;
	nulls[2] = n->body == NULL;
	args[3] = JsonbPGetDatum(n->options);
	(void) call_nullable(tf_kind_validate_sql, 4, args, nulls, &isnull);
	if (!isnull)
		NOT_TAKEN();			/* a further check in SQL (archive, ...): the API path */
	/* the SQL parses (not run) */
	res = call_nullable(tf_kind_body_sql, 1, args, nulls, &isnull);
	if (!isnull && n->body != NULL)
	{
		Datum		cargs[3];
		bool		cnulls[3] = {false, false, false};

		cargs[0] = CStringGetTextDatum(n->body);
		cargs[1] = CStringGetTextDatum(psprintf("%s body", what));
		cargs[2] = BoolGetDatum(strcmp(TextDatumGetCString(res), "expression") == 0);
		(void) call_nullable(tf_check_sql, 3, cargs, cnulls, &isnull);
	}
	return true;
}

/* a node of a definition ("nodes": {name: {...}}), as apply_flow reads it */
static bool
check_node(DefNode *n)
{
	static const char *const node_keys[] = {"kind", "body", "options", "retries", "retry_delay",
	"timeout", "trigger_rule", "finalizer", "after", NULL};
	JsonbValue	buf;
	JsonbValue *v;

	if (!keys_ok(n->nc, node_keys, "ssOnsssbA"))
		NOT_TAKEN();
	if ((v = jfield(n->nc, "kind", &buf)) != NULL)
		n->kind = jstring(v);
	if ((v = jfield(n->nc, "body", &buf)) != NULL)
		n->body = jstring(v);
	if ((v = jfield(n->nc, "options", &buf)) != NULL)
		n->options = JsonbValueToJsonb(v);
	if ((v = jfield(n->nc, "finalizer", &buf)) != NULL && v->val.boolean)
		NOT_TAKEN();			/* a finalizer: the API path */
	if ((v = jfield(n->nc, "trigger_rule", &buf)) != NULL)
		n->trigger_rule = jstring(v);
	if ((v = jfield(n->nc, "retries", &buf)) != NULL)
	{
		n->has_retries = true;
		n->retries = jint(v);
	}
	if ((v = jfield(n->nc, "retry_delay", &buf)) != NULL)
	{
		n->has_retry_delay = true;
		n->retry_delay = DirectFunctionCall3(interval_in, CStringGetDatum(jstring(v)),
											 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	if ((v = jfield(n->nc, "timeout", &buf)) != NULL)
	{
		n->has_timeout = true;
		n->timeout = DirectFunctionCall3(interval_in, CStringGetDatum(jstring(v)),
										 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	return validate_node(n);
}

/* a new flow's settings (create_flow's arguments) */
typedef struct DefFlow
{
	char	   *name;
	char	   *schedule;		/* as given (NULL: none) */
	char	   *tz;				/* as given (NULL: the session's) */
	char	   *description;
	bool		enabled;
	bool		catchup;
	int32		mar;
	int32		saf;			/* 0: none */
	int32		prio;
	bool		has_next;		/* next: the schedule's next fire time ... */
	TimestampTz next_from;		/* ... after this time */
	TimestampTz next;
} DefFlow;

/*
 * Check the settings of a new flow as create_flow does (schedule trimmed,
 * time zone canonical) and insert it as the caller (privileges, row level
 * security).  false: the API path.
 */
static bool
insert_flow(DefFlow *df, int64 *fid, Datum *img, bool *direct)
{
	char	   *session_tz = GetConfigOptionByName("TimeZone", NULL, false);
	TimestampTz next;
	Datum		fv[10];
	char		fn[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	if (df->name == NULL || !name_ok(df->name, "_.-"))
		NOT_TAKEN();
	if (df->schedule != NULL)
	{
		df->schedule = trim_spaces(df->schedule);
		if (*df->schedule == '\0')
			df->schedule = NULL;
		else
			tf_schedule_validate(df->schedule);
	}
	/* _check_timezone */
	if (df->tz == NULL)
		df->tz = session_tz;
	else if (strcmp(df->tz, session_tz) != 0)
	{
		Datum		arg = CStringGetTextDatum(df->tz);
		bool		argnull = false;
		Datum		canon = call_nullable(tf_tz_canonical, 1, &arg, &argnull, &isnull);

		if (isnull)
			NOT_TAKEN();		/* an invalid time zone: the API's error */
		df->tz = TextDatumGetCString(canon);
	}
	if (df->description != NULL && *df->description == '\0')
		df->description = NULL;
	if (df->mar < 1 || (df->saf != 0 && (df->saf < 1 || df->saf > 1000)) ||
		df->prio < 1 || df->prio > 10)
		NOT_TAKEN();
	/* a schedule that never fires: the API path warns */
	if (df->schedule != NULL)
	{
		df->next_from = sched_now();
		if (!tf_schedule_next(df->schedule, df->tz, df->next_from, &next))
			NOT_TAKEN();
		df->has_next = true;
		df->next = next;
	}

	fv[0] = CStringGetTextDatum(df->name);
	fv[1] = ObjectIdGetDatum(GetUserId());
	fv[2] = df->schedule ? CStringGetTextDatum(df->schedule) : (Datum) 0;
	fn[2] = df->schedule ? ' ' : 'n';
	fv[3] = CStringGetTextDatum(df->tz);
	fv[4] = df->description ? CStringGetTextDatum(df->description) : (Datum) 0;
	fn[4] = df->description ? ' ' : 'n';
	fv[5] = BoolGetDatum(df->enabled);
	fv[6] = BoolGetDatum(df->catchup);
	fv[7] = Int32GetDatum(df->mar);
	fv[8] = Int32GetDatum(df->saf);
	fn[8] = df->saf == 0 ? 'n' : ' ';
	fv[9] = Int32GetDatum(df->prio);
	/* directly (define_direct.c), else plan_flow's INSERT */
	{
		static const char *const cols[] = {"name", "owner", "schedule", "timezone",
			"description", "enabled", "catchup", "max_active_runs", "start_date", "end_date",
		"suspend_after_failures", "priority"};
		static const Oid types[] = {TEXTOID, REGROLEOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID,
		BOOLOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID, INT4OID};
		static const int from[] = {0, 1, 2, 3, 4, 5, 6, 7, -1, -1, 8, 9};
		Datum		v[lengthof(cols)];
		bool		n[lengthof(cols)];
		DirectRows	r;

		for (int i = 0; i < lengthof(cols); i++)
		{
			v[i] = from[i] < 0 ? (Datum) 0 : fv[from[i]];
			n[i] = from[i] < 0 || fn[from[i]] == 'n';
		}
		memset(&r, 0, sizeof(r));
		r.rel = "flows";
		r.cols = cols;
		r.types = types;
		r.ncols = lengthof(cols);
		r.nrows = 1;
		r.values = v;
		r.nulls = n;
		r.id = "id";
		r.hidden = FLOW_HIDDEN;
		r.ids = fid;
		r.imgs = img;
		/* (a plain role: the policy's WITH CHECK evaluated on the row) */
		r.rls = TF_RLS_CHECK;
		*direct = direct_insert(&r);
		if (*direct)
			return true;
	}
	run_plan(&plan_flow, fv, fn, true, SPI_OK_INSERT_RETURNING);
	if (SPI_processed != 1)
		NOT_TAKEN();
	*fid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*img = spi_jsonb(0, 2);
	return true;
}

/*
 * The wake of a new flow (taskflow._flows_wake): wake the scheduler at
 * commit when the flow may fire within 2 minutes; a later one is looked at
 * by its next pass.
 */
static void
wake_flow(DefFlow *df)
{
	TimestampTz from = GetCurrentTransactionStartTimestamp();
	TimestampTz next;

	if (!df->enabled || df->schedule == NULL)
		return;
	/* (the next fire time insert_flow computed, when from the same time) */
	if (df->has_next && df->next_from == from)
		next = df->next;
	else if (!tf_schedule_next(df->schedule, df->tz, from, &next))
	{
		tf_wake_at_commit(false, true);
		return;
	}
	if (next <= sched_now() + 2 * 60 * USECS_PER_SEC)
		tf_wake_at_commit(false, true);
}

/*
 * The nodes of a new flow (in 'order') inserted directly, their ids and
 * images set; false: not possible (plan_nodes' INSERT)
 */
static bool
insert_nodes_direct(int64 fid, bool flow_direct, DefNode *nodes, int *order, int nn)
{
	static const char *const cols[] = {"flow_id", "name", "kind", "body", "options", "retries",
	"retry_delay", "timeout", "trigger_rule", "finalizer"};
	static const Oid types[] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, INT4OID,
	INTERVALOID, INTERVALOID, TEXTOID, BOOLOID};
	DirectRows	r;
	int			nc = lengthof(cols);

	memset(&r, 0, sizeof(r));
	r.rel = "nodes";
	/* (row level security: the rows of the flow just inserted directly) */
	r.rls = flow_direct ? TF_RLS_NEW_FLOW : TF_RLS_NONE;
	r.cols = cols;
	r.types = types;
	r.ncols = nc;
	r.nrows = nn;
	r.values = palloc(sizeof(Datum) * nn * nc);
	r.nulls = palloc0(sizeof(bool) * nn * nc);
	r.id = "id";
	r.hidden = NODE_HIDDEN;
	r.ids = palloc(sizeof(int64) * nn);
	r.imgs = palloc(sizeof(Datum) * nn);
	for (int i = 0; i < nn; i++)
	{
		DefNode    *n = &nodes[order[i]];
		Datum	   *v = r.values + i * nc;
		bool	   *isnull = r.nulls + i * nc;

		v[0] = Int64GetDatum(fid);
		v[1] = CStringGetTextDatum(n->name);
		v[2] = CStringGetTextDatum(n->kind);
		v[3] = n->body ? CStringGetTextDatum(n->body) : (Datum) 0;
		isnull[3] = n->body == NULL;
		v[4] = JsonbPGetDatum(n->options);
		v[5] = Int32GetDatum(n->retries);
		v[6] = n->retry_delay;
		v[7] = n->timeout_null ? (Datum) 0 : n->timeout;
		isnull[7] = n->timeout_null;
		v[8] = CStringGetTextDatum(n->trigger_rule);
		v[9] = BoolGetDatum(false);
	}
	if (!direct_insert(&r))
		return false;
	for (int i = 0; i < nn; i++)
	{
		nodes[order[i]].id = r.ids[i];
		nodes[order[i]].img = r.imgs[i];
	}
	return true;
}

/* edges a[i] -> b[i] of flow fid inserted directly, their images in img */
static bool
insert_edges_direct(int64 fid, bool flow_direct, Datum *a, Datum *b, int ne, Datum *img)
{
	static const char *const cols[] = {"flow_id", "from_node", "to_node"};
	static const Oid types[] = {INT8OID, INT8OID, INT8OID};
	DirectRows	r;

	memset(&r, 0, sizeof(r));
	r.rel = "edges";
	r.rls = flow_direct ? TF_RLS_NEW_FLOW : TF_RLS_NONE;
	r.cols = cols;
	r.types = types;
	r.ncols = 3;
	r.nrows = ne;
	r.values = palloc(sizeof(Datum) * ne * 3);
	r.nulls = palloc0(sizeof(bool) * ne * 3);
	r.hidden = "{flow_id}";
	r.imgs = img;
	for (int i = 0; i < ne; i++)
	{
		r.values[i * 3] = Int64GetDatum(fid);
		r.values[i * 3 + 1] = a[i];
		r.values[i * 3 + 2] = b[i];
	}
	return direct_insert(&r);
}

/*
 * Create the flow of 'def' (named name_arg, or "flow"."name").  false: this
 * path does not take the definition (the caller rolls back what it did and
 * runs the API path); an error: the same.
 */
static bool
define_create(Jsonb *def, text *name_arg)
{
	static const char *const top_keys[] = {"version", "flow", "nodes", "edges", "variables", NULL};
	static const char *const flow_keys[] = {"name", "owner", "schedule", "timezone", "description",
		"enabled", "catchup", "max_active_runs", "start_date", "end_date",
	"suspend_after_failures", "priority", NULL};
	static const char *const edge_keys[] = {"from", "to", "branch", NULL};
	JsonbValue	buf;
	JsonbValue *v;
	JsonbContainer *fd = NULL;
	JsonbContainer *nd = NULL;
	JsonbContainer *ed = NULL;
	DefNode    *nodes;
	int			nn = 0;
	DefEdge    *edges;
	int			ne = 0;
	int			emax = 16;
	int		   *order;			/* node indexes in the order the API adds them */
	int			norder = 0;
	char	  **hkind;			/* history rows: kind, key */
	char	  **hkey;
	int			nh = 0;
	int64		fid;
	Datum		fimg;
	Datum	   *himg;
	int		   *hedge;			/* history rows of edges: the edge's index */
	DefFlow		df;
	bool		flow_direct = false;	/* the flow inserted directly (insert_flow) */

	/* ---- the shape (anything else: the API path and its errors) ---- */
	if (!JB_ROOT_IS_OBJECT(def) || !keys_ok(&def->root, top_keys, "noOAO"))
		NOT_TAKEN();
	if ((v = jfield(&def->root, "flow", &buf)) != NULL)
		fd = jcontainer(v, true);
	if ((v = jfield(&def->root, "nodes", &buf)) != NULL)
		nd = jcontainer(v, true);
	if ((v = jfield(&def->root, "edges", &buf)) != NULL)
		ed = jcontainer(v, false);
	if ((v = jfield(&def->root, "variables", &buf)) != NULL &&
		JsonContainerSize(jcontainer(v, true)) > 0)
		NOT_TAKEN();			/* variables: the API path */
	/* owner, start_date, end_date: the API path ('0': JSON null only) */
	if (fd != NULL && !keys_ok(fd, flow_keys, "s0sssbbn00nn"))
		NOT_TAKEN();

	/* ---- the flow's settings, as apply_flow passes them to create_flow ---- */
	memset(&df, 0, sizeof(df));
	df.enabled = df.catchup = true;
	df.mar = 1;
	df.prio = 5;
	if (name_arg != NULL)
		df.name = text_to_cstring(name_arg);
	else if (fd != NULL && (v = jfield(fd, "name", &buf)) != NULL)
		df.name = jstring(v);
	else
		NOT_TAKEN();
	if (fd != NULL && (v = jfield(fd, "schedule", &buf)) != NULL)
		df.schedule = jstring(v);
	if (fd != NULL && (v = jfield(fd, "timezone", &buf)) != NULL)
		df.tz = jstring(v);
	if (fd != NULL && (v = jfield(fd, "description", &buf)) != NULL)
		df.description = jstring(v);
	if (fd != NULL && (v = jfield(fd, "enabled", &buf)) != NULL)
		df.enabled = v->val.boolean;
	if (fd != NULL && (v = jfield(fd, "catchup", &buf)) != NULL)
		df.catchup = v->val.boolean;
	if (fd != NULL && (v = jfield(fd, "max_active_runs", &buf)) != NULL)
		df.mar = jint(v);
	if (fd != NULL && (v = jfield(fd, "suspend_after_failures", &buf)) != NULL)
		df.saf = jint(v);
	if (fd != NULL && (v = jfield(fd, "priority", &buf)) != NULL)
		df.prio = jint(v);
	/* ---- the flow (first: an existing name fails here, cheaply) ---- */
	if (!insert_flow(&df, &fid, &fimg, &flow_direct))
		return false;

	/* ---- the nodes and edges ---- */
	if (nd != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(nd);
		JsonbValue	jv;
		JsonbIteratorToken tok;

		nodes = palloc0(sizeof(DefNode) * (JsonContainerSize(nd) + 1));
		while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				nodes[nn].name = jstring(&jv);
			else if (tok == WJB_VALUE)
			{
				if ((nodes[nn].nc = jcontainer(&jv, true)) == NULL)
					NOT_TAKEN();
				nn++;
			}
		}
	}
	else
		nodes = palloc0(sizeof(DefNode));
	edges = palloc(sizeof(DefEdge) * emax);
	for (int i = 0; i < nn; i++)
	{
		if (!check_node(&nodes[i]))
			NOT_TAKEN();
		if ((v = jfield(nodes[i].nc, "after", &buf)) != NULL)
		{
			JsonbIterator *it = JsonbIteratorInit(jcontainer(v, false));
			JsonbValue	av;
			JsonbIteratorToken tok;

			while ((tok = JsonbIteratorNext(&it, &av, true)) != WJB_DONE)
			{
				if (tok != WJB_ELEM)
					continue;
				if (av.type != jbvString ||
					!add_edge(&edges, &ne, &emax, node_index(nodes, nn, jstring(&av)), i))
					NOT_TAKEN();
			}
		}
	}
	if (ed != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(ed);
		JsonbValue	ev;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &ev, true)) != WJB_DONE)
		{
			JsonbContainer *ec;
			JsonbValue *a;
			JsonbValue *b;
			JsonbValue	abuf;
			JsonbValue	bbuf;

			if (tok != WJB_ELEM)
				continue;
			/* labelled edges: the API path */
			if ((ec = jcontainer(&ev, true)) == NULL || !keys_ok(ec, edge_keys, "ss0") ||
				(a = jfield(ec, "from", &abuf)) == NULL || (b = jfield(ec, "to", &bbuf)) == NULL ||
				!add_edge(&edges, &ne, &emax, node_index(nodes, nn, jstring(a)),
						  node_index(nodes, nn, jstring(b))))
				NOT_TAKEN();
		}
	}

	/*
	 * The order apply_flow adds them in: passes over the names in collation
	 * order, each adding the nodes whose upstream nodes are all there; no
	 * progress: a cycle (the API path reports it).
	 */
	order = palloc(sizeof(int) * (nn + 1));
	{
		char	  **names = palloc(sizeof(char *) * (nn + 1));

		for (int i = 0; i < nn; i++)
			names[i] = nodes[i].name;
		qsort(names, nn, sizeof(char *), name_cmp);
		while (norder < nn)
		{
			bool		progress = false;

			for (int s = 0; s < nn; s++)
			{
				int			k = node_index(nodes, nn, names[s]);
				bool		ready = !nodes[k].added;

				for (int e = 0; e < ne && ready; e++)
					if (edges[e].to == k && !nodes[edges[e].from].added)
						ready = false;
				if (ready)
				{
					nodes[k].added = true;
					order[norder++] = k;
					progress = true;
				}
			}
			if (!progress)
				NOT_TAKEN();
		}
	}

	if (nn > 0)
	{
		char	  **nname = palloc(sizeof(char *) * nn);
		char	  **nkind = palloc(sizeof(char *) * nn);
		char	  **nbody = palloc(sizeof(char *) * nn);
		char	  **nrule = palloc(sizeof(char *) * nn);
		Datum	   *nopt = palloc(sizeof(Datum) * nn);
		Datum	   *nret = palloc(sizeof(Datum) * nn);
		Datum	   *ndelay = palloc(sizeof(Datum) * nn);
		Datum	   *ntimeout = palloc(sizeof(Datum) * nn);
		bool	   *nonull = palloc0(sizeof(bool) * nn);
		bool	   *tnull = palloc0(sizeof(bool) * nn);
		Datum		pv[9];
		char		pn[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		for (int i = 0; i < nn; i++)
		{
			DefNode    *n = &nodes[order[i]];

			nname[i] = n->name;
			nkind[i] = n->kind;
			nbody[i] = n->body;
			nrule[i] = n->trigger_rule;
			nopt[i] = JsonbPGetDatum(n->options);
			nret[i] = Int32GetDatum(n->retries);
			ndelay[i] = n->retry_delay;
			ntimeout[i] = n->timeout_null ? (Datum) 0 : n->timeout;
			tnull[i] = n->timeout_null;
		}
		if (insert_nodes_direct(fid, flow_direct, nodes, order, nn))
			goto nodes_done;
		pv[0] = Int64GetDatum(fid);
		pv[1] = PointerGetDatum(text_array(nname, nn));
		pv[2] = PointerGetDatum(text_array(nkind, nn));
		pv[3] = PointerGetDatum(text_array(nbody, nn));
		pv[4] = PointerGetDatum(datum_array(nopt, nonull, nn, JSONBOID));
		pv[5] = PointerGetDatum(datum_array(nret, nonull, nn, INT4OID));
		pv[6] = PointerGetDatum(datum_array(ndelay, nonull, nn, INTERVALOID));
		pv[7] = PointerGetDatum(datum_array(ntimeout, tnull, nn, INTERVALOID));
		pv[8] = PointerGetDatum(text_array(nrule, nn));
		run_plan(nn == 1 ? &plan_node1 : &plan_nodes, pv, pn, true, SPI_OK_INSERT_RETURNING);
		if (SPI_processed != (uint64) nn)
			NOT_TAKEN();
		/* RETURNING gives the rows in the order inserted */
		for (int i = 0; i < nn; i++)
		{
			bool		isnull;

			nodes[order[i]].id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 1, &isnull));
			nodes[order[i]].img = spi_jsonb(i, 2);
		}
	}
nodes_done:

	/*
	 * Edges as add_node(after => ...) adds them, after each node its
	 * incoming edges in the order of the upstream names; the history rows
	 * in the order the trigger would have written them.
	 */
	hkind = palloc(sizeof(char *) * (1 + nn + ne));
	hkey = palloc(sizeof(char *) * (1 + nn + ne));
	himg = palloc(sizeof(Datum) * (1 + nn + ne));
	hedge = palloc(sizeof(int) * (1 + nn + ne));
	hedge[nh] = -1;
	himg[nh] = fimg;
	hkind[nh] = "flow";
	hkey[nh++] = "flow";
	if (nn > 0)
	{
		Datum	   *ea = palloc(sizeof(Datum) * (ne + 1));
		Datum	   *eb = palloc(sizeof(Datum) * (ne + 1));
		bool	   *enull = palloc0(sizeof(bool) * (ne + 1));
		int			nedge = 0;
		int		   *ups = palloc(sizeof(int) * (nn + 1));

		for (int i = 0; i < nn; i++)
		{
			int			k = order[i];
			int			nup = 0;

			hedge[nh] = -1;
			himg[nh] = nodes[k].img;
			hkind[nh] = "node";
			hkey[nh++] = psprintf(INT64_FORMAT, nodes[k].id);
			for (int e = 0; e < ne; e++)
				if (edges[e].to == k)
					ups[nup++] = edges[e].from;
			/* by upstream name (insertion sort: few) */
			for (int a = 1; a < nup; a++)
				for (int b = a; b > 0 && name_cmp(&nodes[ups[b - 1]].name, &nodes[ups[b]].name) > 0; b--)
				{
					int			t = ups[b];

					ups[b] = ups[b - 1];
					ups[b - 1] = t;
				}
			for (int u = 0; u < nup; u++)
			{
				ea[nedge] = Int64GetDatum(nodes[ups[u]].id);
				eb[nedge] = Int64GetDatum(nodes[k].id);
				hedge[nh] = nedge++;
				hkind[nh] = "edge";
				hkey[nh++] = psprintf(INT64_FORMAT ">" INT64_FORMAT, nodes[ups[u]].id, nodes[k].id);
			}
		}
		if (nedge > 0)
		{
			Datum		pv[3];
			char		pn[3] = {' ', ' ', ' '};

			Datum	   *eimg = palloc(sizeof(Datum) * nedge);

			if (!insert_edges_direct(fid, flow_direct, ea, eb, nedge, eimg))
			{
				pv[0] = Int64GetDatum(fid);
				pv[1] = PointerGetDatum(datum_array(ea, enull, nedge, INT8OID));
				pv[2] = PointerGetDatum(datum_array(eb, enull, nedge, INT8OID));
				run_plan(nedge == 1 ? &plan_edge1 : &plan_edges, pv, pn, true, SPI_OK_INSERT_RETURNING);
				if (SPI_processed != (uint64) nedge)
					NOT_TAKEN();
				/* (RETURNING: in the order inserted) */
				for (int e = 0; e < nedge; e++)
					eimg[e] = spi_jsonb(e, 1);
			}
			for (int h = 0; h < nh; h++)
				if (hedge[h] >= 0)
					himg[h] = eimg[hedge[h]];
		}
	}

	/* the definition history: the flow's first version */
	write_history(fid, 1, false, hkind, hkey, himg, nh);

	wake_flow(&df);
	return true;
}

/*
 * Errors the fast path passes on instead of handing the definition to the
 * API path: cancel, shutdown, resources, serialization and internal errors.
 */
static bool
must_rethrow(int code)
{
	switch (ERRCODE_TO_CATEGORY(code))
	{
		case ERRCODE_TO_CATEGORY(ERRCODE_QUERY_CANCELED):	/* 57 */
		case ERRCODE_TO_CATEGORY(ERRCODE_T_R_SERIALIZATION_FAILURE):	/* 40 */
		case ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES):	/* 53 */
		case ERRCODE_TO_CATEGORY(ERRCODE_PROGRAM_LIMIT_EXCEEDED):	/* 54 */
		case ERRCODE_TO_CATEGORY(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE):	/* 55 */
		case ERRCODE_TO_CATEGORY(ERRCODE_SYSTEM_ERROR):	/* 58 */
		case ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR):	/* XX */
		case ERRCODE_TO_CATEGORY(ERRCODE_CONNECTION_EXCEPTION):	/* 08 */
			return true;
		default:
			return false;
	}
}

/* a fast path: true and *result when it did the call's work */
typedef bool (*FastPath) (FunctionCallInfo fcinfo, Datum *result);

/*
 * Run a fast path in a subtransaction: released when it did the work;
 * rolled back when it did not take the call or raised an error (which the
 * API path then reports as always; cancels and the like pass on).
 */
static bool
run_fast(FastPath fn, FunctionCallInfo fcinfo, Datum *result)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool done = false;
	bool		save_pinned = path_pinned;

	/*
	 * A BYPASSRLS role that is not a superuser: the API path, whose
	 * statements fire the catalog's triggers (taskflow._bypassrls_guard:
	 * only the flows of owners it is a member of; bypassrls.c)
	 */
	if (tf_role_bypasses_rls())
		return false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int			nest = NewGUCNestLevel();

		/* (pinned at this nest level by the first saved plan run: run_plan) */
		path_pinned = false;
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "taskflow: SPI_connect failed");
		done = fn(fcinfo, result);
		SPI_finish();
		AtEOXact_GUC(true, nest);
		path_pinned = save_pinned;
		if (done)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		path_pinned = save_pinned;
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (must_rethrow(edata->sqlerrcode))
			ReThrowError(edata);
		elog(DEBUG2, "taskflow: the API path (%s)", edata->message);
		FreeErrorData(edata);
		done = false;
	}
	PG_END_TRY();
	return done;
}

/* call taskflow.<name> (the PL/pgSQL API path) with this call's arguments */
static Datum
call_api(FunctionCallInfo fcinfo, const char *name)
{
	Oid		   *types;
	int			nargs;
	Oid			api;
	FmgrInfo	flinfo;
	FunctionCallInfo inner;
	Datum		result;

	(void) get_func_signature(fcinfo->flinfo->fn_oid, &types, &nargs);
	api = LookupFuncName(list_make2(makeString(TASKFLOW_SCHEMA), makeString(unconstify(char *, name))),
						 nargs, types, false);
	fmgr_info(api, &flinfo);
	inner = palloc0(SizeForFunctionCallInfo(nargs));
	InitFunctionCallInfoData(*inner, &flinfo, nargs, PG_GET_COLLATION(), NULL, NULL);
	for (int i = 0; i < nargs; i++)
		inner->args[i] = fcinfo->args[i];
	result = FunctionCallInvoke(inner);
	fcinfo->isnull = inner->isnull;
	return result;
}

static bool
apply_fast(FunctionCallInfo fcinfo, Datum *result)
{
	if (!define_create(PG_GETARG_JSONB_P(0), PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1)))
		return false;
	*result = Int32GetDatum(1);
	return true;
}

/*
 * taskflow.apply_flow(definition jsonb, name text DEFAULT NULL) RETURNS
 * integer: a new flow through the create path above (its version 1);
 * otherwise taskflow._apply_flow_api.
 */
Datum
tf_apply_flow(PG_FUNCTION_ARGS)
{
	Datum		result;

	if (!PG_ARGISNULL(0) && run_fast(apply_fast, fcinfo, &result))
		PG_RETURN_DATUM(result);
	return call_api(fcinfo, "_apply_flow_api");
}

/*
 * add_node of a plain node (see the banner) to an existing flow, as
 * taskflow._add_node_api does it: the flow locked and its updated_at bumped
 * (once per transaction), the node checked, inserted, its edges from the
 * upstream nodes inserted (no cycle possible: the new node has no
 * downstream), the history recorded in the transaction's version of the
 * flow.
 */
static bool
add_node_fast(FunctionCallInfo fcinfo, Datum *result)
{
	DefNode		n;
	char	   *fname;
	int64		fid = 0;
	int			nup = 0;
	char	  **ups = NULL;
	int64	   *upid = NULL;
	char	  **hkind;
	char	  **hkey;
	Datum	   *himg;
	int			nh = 0;
	bool		isnull;
	int32		version = 1;
	bool		mine = false;
	int			vcol = 3;		/* the last version's column in the result */
	bool		rls;			/* row level security applies to the history */

	/* flow, name, kind; after, trigger_rule, finalizer, branch */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || !PG_ARGISNULL(11) ||
		(!PG_ARGISNULL(10) && PG_GETARG_BOOL(10)))
		NOT_TAKEN();
	memset(&n, 0, sizeof(n));
	fname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	n.name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	n.kind = text_to_cstring(PG_GETARG_TEXT_PP(2));
	n.body = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	n.options = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	n.has_retries = !PG_ARGISNULL(5);
	n.retries = n.has_retries ? PG_GETARG_INT32(5) : 0;
	n.has_retry_delay = !PG_ARGISNULL(6);
	n.retry_delay = n.has_retry_delay ? PG_GETARG_DATUM(6) : (Datum) 0;
	n.has_timeout = !PG_ARGISNULL(7);
	n.timeout = n.has_timeout ? PG_GETARG_DATUM(7) : (Datum) 0;
	n.trigger_rule = PG_ARGISNULL(9) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(9));
	if (!validate_node(&n))
		return false;
	/* the upstream nodes: distinct, in name order (the API adds the edges so) */
	if (!PG_ARGISNULL(8))
	{
		ArrayType  *a = PG_GETARG_ARRAYTYPE_P(8);
		Datum	   *d;
		bool	   *dn;
		int			cnt;

		if (ARR_NDIM(a) > 1)
			NOT_TAKEN();
		deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &d, &dn, &cnt);
		ups = palloc(sizeof(char *) * (cnt + 1));
		for (int i = 0; i < cnt; i++)
		{
			bool		dup = false;
			char	   *u;

			if (dn[i])
				NOT_TAKEN();
			u = TextDatumGetCString(d[i]);
			for (int j = 0; j < nup; j++)
				dup |= strcmp(ups[j], u) == 0;
			if (!dup)
				ups[nup++] = u;
		}
		qsort(ups, nup, sizeof(char *), name_cmp);
	}

	/* the flow, as _flow_for_update: locked, updated_at bumped once per transaction */
	{
		Datum		fv[1];
		char		fn[1] = {' '};

		fv[0] = CStringGetTextDatum(fname);
		run_plan(&plan_flow_mine, fv, fn, false, SPI_OK_SELECT);
		if (SPI_processed != 1)
		{
			/*
			 * (only updated_at changes: the guard and watermark triggers,
			 * skipped under the flag, would change and check nothing)
			 */
			run_plan(&plan_flow_bump, fv, fn, true, SPI_OK_UPDATE_RETURNING);
			if (SPI_processed != 1)
				NOT_TAKEN();	/* no such flow (to the caller) */
		}
		fid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	/* the upstream nodes exist; none a finalizer or a branch node */
	if (nup > 0)
	{
		Datum		uv[2];
		char		un[2] = {' ', ' '};

		uv[0] = Int64GetDatum(fid);
		uv[1] = PointerGetDatum(text_array(ups, nup));
		run_plan(&plan_upstream, uv, un, false, SPI_OK_SELECT);
		if (SPI_processed != (uint64) nup)
			NOT_TAKEN();
		upid = palloc(sizeof(int64) * nup);
		for (int i = 0; i < nup; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			char	   *uname = TextDatumGetCString(SPI_getbinval(t, td, 2, &isnull));
			int			j;

			if (DatumGetBool(SPI_getbinval(t, td, 3, &isnull)))
				NOT_TAKEN();
			for (j = 0; j < nup && strcmp(ups[j], uname) != 0; j++)
				;
			if (j == nup)
				NOT_TAKEN();
			upid[j] = DatumGetInt64(SPI_getbinval(t, td, 1, &isnull));
		}
	}

	/* the node */
	{
		Datum		pv[9];
		char		pn[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
		bool		f = false;
		bool		t = true;
		Datum		tmo = n.timeout_null ? (Datum) 0 : n.timeout;

		pv[0] = Int64GetDatum(fid);
		pv[1] = PointerGetDatum(text_array(&n.name, 1));
		pv[2] = PointerGetDatum(text_array(&n.kind, 1));
		pv[3] = PointerGetDatum(text_array(&n.body, 1));
		pv[4] = PointerGetDatum(datum_array((Datum[]) {JsonbPGetDatum(n.options)}, &f, 1, JSONBOID));
		pv[5] = PointerGetDatum(datum_array((Datum[]) {Int32GetDatum(n.retries)}, &f, 1, INT4OID));
		pv[6] = PointerGetDatum(datum_array(&n.retry_delay, &f, 1, INTERVALOID));
		pv[7] = PointerGetDatum(datum_array(&tmo, n.timeout_null ? &t : &f, 1, INTERVALOID));
		pv[8] = PointerGetDatum(text_array(&n.trigger_rule, 1));
		rls = check_enable_rls(get_relname_relid("flow_versions",
												 get_namespace_oid(TASKFLOW_SCHEMA, false)),
							   InvalidOid, true) == RLS_ENABLED;
		if (!rls)
			run_plan(&plan_node_add, pv, pn, true, SPI_OK_INSERT_RETURNING);
		else
			run_plan(&plan_node_add_rls, pv, pn, true, SPI_OK_INSERT_RETURNING);
		if (SPI_processed != 1)
			NOT_TAKEN();
		n.id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		n.img = spi_jsonb(0, 2);
		if (rls)
		{
			/*
			 * the flow's versions, all of them (a new statement after the
			 * flow's row lock: every version committed before it), as the
			 * history is written: as the bootstrap superuser
			 */
			Datum		lv[1];
			char		ln[1] = {' '};
			Oid			save_userid;
			int			save_sec;

			lv[0] = Int64GetDatum(fid);
			GetUserIdAndSecContext(&save_userid, &save_sec);
			SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
			PG_TRY();
			{
				run_plan(&plan_last_version, lv, ln, false, SPI_OK_SELECT);
			}
			PG_FINALLY();
			{
				SetUserIdAndSecContext(save_userid, save_sec);
			}
			PG_END_TRY();
			vcol = 1;
		}
		/* the flow's last version: this transaction's (mine), or a new one */
		isnull = SPI_processed == 0;
		if (!isnull)
			version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, vcol, &isnull));
		if (isnull)
			version = 1;
		else
		{
			mine = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, vcol + 1, &isnull));
			if (!mine)
				version++;
		}
	}
	hkind = palloc(sizeof(char *) * (nup + 1));
	hkey = palloc(sizeof(char *) * (nup + 1));
	himg = palloc(sizeof(Datum) * (nup + 1));
	himg[nh] = n.img;
	hkind[nh] = "node";
	hkey[nh++] = psprintf(INT64_FORMAT, n.id);
	/* its edges */
	if (nup > 0)
	{
		Datum	   *ea = palloc(sizeof(Datum) * nup);
		Datum	   *eb = palloc(sizeof(Datum) * nup);
		bool	   *enull = palloc0(sizeof(bool) * nup);
		Datum		pv[3];
		char		pn[3] = {' ', ' ', ' '};

		for (int i = 0; i < nup; i++)
		{
			ea[i] = Int64GetDatum(upid[i]);
			eb[i] = Int64GetDatum(n.id);
			hkind[nh] = "edge";
			hkey[nh++] = psprintf(INT64_FORMAT ">" INT64_FORMAT, upid[i], n.id);
		}
		pv[0] = Int64GetDatum(fid);
		pv[1] = PointerGetDatum(datum_array(ea, enull, nup, INT8OID));
		pv[2] = PointerGetDatum(datum_array(eb, enull, nup, INT8OID));
		run_plan(nup == 1 ? &plan_edge1 : &plan_edges, pv, pn, true, SPI_OK_INSERT_RETURNING);
		if (SPI_processed != (uint64) nup)
			NOT_TAKEN();
		for (int i = 0; i < nup; i++)
			himg[1 + i] = spi_jsonb(i, 1);
	}
	write_history(fid, version, mine, hkind, hkey, himg, nh);
	*result = Int64GetDatum(n.id);
	return true;
}

/*
 * taskflow.add_node(flow, name, kind, body, options, retries, retry_delay,
 * timeout, after, trigger_rule, finalizer, branch) RETURNS bigint: a plain
 * node through the path above; otherwise taskflow._add_node_api.
 */
Datum
tf_add_node(PG_FUNCTION_ARGS)
{
	Datum		result;

	if (run_fast(add_node_fast, fcinfo, &result))
		PG_RETURN_DATUM(result);
	return call_api(fcinfo, "_add_node_api");
}

/*
 * create_flow of a flow owned by the caller without start or end date, as
 * taskflow._create_flow_api does it: checked, inserted, its first version
 * recorded, the scheduler woken when it may fire soon.
 */
static bool
create_flow_fast(FunctionCallInfo fcinfo, Datum *result)
{
	DefFlow		df;
	int64		fid;
	Datum		img;
	char	   *flow = "flow";
	bool		flow_direct;

	/* name; start_date, end_date, owner: the API path */
	if (PG_ARGISNULL(0) || !PG_ARGISNULL(7) || !PG_ARGISNULL(8) || !PG_ARGISNULL(9))
		NOT_TAKEN();
	memset(&df, 0, sizeof(df));
	df.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	df.schedule = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	df.tz = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	df.description = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	df.catchup = PG_ARGISNULL(4) ? true : PG_GETARG_BOOL(4);
	df.mar = PG_ARGISNULL(5) ? 1 : PG_GETARG_INT32(5);
	df.enabled = PG_ARGISNULL(6) ? true : PG_GETARG_BOOL(6);
	df.saf = PG_ARGISNULL(10) ? 0 : PG_GETARG_INT32(10);
	df.prio = PG_ARGISNULL(11) ? 5 : PG_GETARG_INT32(11);
	if (!insert_flow(&df, &fid, &img, &flow_direct))
		return false;
	write_history(fid, 1, false, &flow, &flow, &img, 1);
	wake_flow(&df);
	*result = Int64GetDatum(fid);
	return true;
}

/*
 * taskflow.create_flow(name, schedule, timezone, description, catchup,
 * max_active_runs, enabled, start_date, end_date, owner,
 * suspend_after_failures, priority) RETURNS bigint: through the path
 * above; otherwise taskflow._create_flow_api.
 */
Datum
tf_create_flow(PG_FUNCTION_ARGS)
{
	Datum		result;

	if (run_fast(create_flow_fast, fcinfo, &result))
		PG_RETURN_DATUM(result);
	return call_api(fcinfo, "_create_flow_api");
}
