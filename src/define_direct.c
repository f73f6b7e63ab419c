/*-------------------------------------------------------------------------
 *
 * define_direct.c
 *	  Direct inserts of the definition's catalog rows for the C create path
 *	  (define_create.c), as the logical-replication apply worker inserts
 *	  rows: no parse, plan, portal or executor start-up per statement; the
 *	  rows go through ExecSimpleRelationInsert (BEFORE/AFTER row triggers as
 *	  enabled, stored generated columns, NOT NULL and CHECK constraints,
 *	  the heap insert, the index inserts with their unique checks), the
 *	  columns not given get their defaults (identity, now(), ...) as an
 *	  INSERT would; statement-level triggers do not fire.  The rows' history
 *	  images are built from the slot as to_jsonb(row) - hidden builds them.
 *	  See docs/performance.md ("1.6: direct inserts") and docs/security.md.
 *
 *	  What the executor of an INSERT checks and this path checks itself
 *	  (tf_direct_begin):
 *	  - privileges: INSERT on the table or on every column given, and
 *	    SELECT on the table (the SPI form's RETURNING reads the row back;
 *	    pg_class_aclcheck / pg_attribute_aclcheck, before the lock), then
 *	    ExecCheckRTPerms on a range-table entry of the table with INSERT on
 *	    the columns given and SELECT of the row (as an INSERT naming them
 *	    ... RETURNING; the executor's hook included); missing: NULL, the
 *	    caller takes its SPI path (which raises the usual error);
 *	  - row level security (1.7, docs/performance.md "defining flows as a
 *	    plain role"): where none applies to the current user
 *	    (check_enable_rls: a superuser, a BYPASSRLS role, the table owner
 *	    without FORCE), or where the caller asks for it (TfDirectRls) and
 *	    the table's policies are exactly the ones the extension ships
 *	    (rls_verify: one permissive policy for ALL and PUBLIC, its USING
 *	    and WITH CHECK deparsed and compared with the shipped text, no
 *	    policy hook installed, row_security on; looked at again after
 *	    every relcache invalidation of the table, which CREATE, ALTER and
 *	    DROP POLICY and ALTER TABLE ... ROW LEVEL SECURITY all send, under
 *	    the lock this path takes): TF_RLS_CHECK evaluates the policy's own
 *	    WITH CHECK expression on every row before it is inserted (flows:
 *	    taskflow._is_member(owner); the error an INSERT raises when it
 *	    fails), TF_RLS_NEW_FLOW takes the caller's word that every row's
 *	    flow_id is the flow it has just inserted through this path in the
 *	    same call (nodes, edges: the shipped policy is "EXISTS (the flow,
 *	    visible to the caller)", true by construction); otherwise NULL,
 *	    the SPI path (whose INSERT applies the policies);
 *	  - the column types the caller passes must be the table's (else NULL).
 *
 *	  The tables' CHECK constraints and column defaults are prepared once
 *	  per backend (not read with stringToNode, planned, and for an identity
 *	  column looked up in pg_depend again for every statement), kept per
 *	  table while its relcache entry holds the same constraints and
 *	  defaults (their text compared on every use; any relcache
 *	  invalidation drops them all, their memory freed when the transaction
 *	  ends: an entry may still be in use until then).  What ExecInitExpr prepares for such
 *	  an expression (function lookups, constant arrays) lives in that
 *	  backend-lifetime context; CHECKs and defaults hold no subplans and
 *	  expression_planner makes no hashed IN lists, the only steps that
 *	  keep state in an EState's query memory.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "rewrite/rewriteHandler.h"
#include "rewrite/rowsecurity.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/ruleutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "define_direct.h"

typedef struct RelCache RelCache;

struct TfDirect
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	int			ncols;
	AttrNumber *attnum;			/* of the columns given */
	int			ndefaults;
	AttrNumber *defnum;			/* of the columns with a default */
	ExprState **defexpr;
	FmgrInfo	to_jsonb;		/* to_jsonb(the row type) */
	bool		has_jsonb;
	RelCache   *rc;
	const char *value_name;		/* tf_direct_value's column (the caller's string) ... */
	AttrNumber	value_att;		/* ... its number */
	const char *hidden;			/* the columns left out of the image ... */
	bool	   *skip;			/* ... by attnum - 1 */
	ExprState  *rls_check;		/* TF_RLS_CHECK: the policy's WITH CHECK */
};

/* ---------------------------------------------------------------------
 * CHECK constraints and column defaults, prepared once per backend and table
 * ---------------------------------------------------------------------
 */
struct RelCache
{
	Oid			relid;
	int			ncheck;
	char	  **ccbin;			/* the CHECK expressions' text, to compare */
	ExprState **check;
	int			ndefval;
	char	  **adbin;			/* the defaults' text (by attnum - 1), to compare */
	int			natts;
	ExprState **defexpr;		/* by attnum - 1; NULL: no default */
	const char *const *cols;	/* the columns a caller gives (its static array) ... */
	const Oid  *types;
	int			ncols;
	AttrNumber *attnum;			/* ... their numbers */
	char	   *jcat;			/* the image's form of each column (image_category) */
	FmgrInfo   *jout;			/* their output functions */
	char		rls;			/* 0: not looked at; else rls_verify's answer */
	ExprState  *rls_check;		/* ... TF_RLS_CHECK: the WITH CHECK, prepared ... */
	Oid			rls_user;		/* ... by and for this user */
	struct RelCache *next;
};

static MemoryContext rel_cxt = NULL;
static RelCache *rel_cache = NULL;
static bool rel_callback = false;

/*
 * Two small per-backend caches, emptied with rel_cache (see rel_cache_get):
 * the tables' oids by name (a table dropped, renamed or created sends a
 * relcache invalidation), and the privilege checks that passed, per table,
 * user and column list (GRANT and REVOKE on a table or a column change its
 * pg_class or pg_attribute row: a relcache invalidation of the table; a
 * role's membership or attributes: AUTHMEMROLEMEM, AUTHOID).  Only
 * positive answers are kept, and the check after the lock -- when the
 * invalidations sent before it have been received -- uses the cache only
 * when no ExecutorCheckPerms_hook is installed.
 */
#define TF_SMALL_CACHE 8
static struct
{
	const char *relname;		/* the caller's string */
	Oid			relid;
}			relid_cache[TF_SMALL_CACHE];
static int	relid_n = 0;
static struct
{
	Oid			relid;
	Oid			user;
	const char *const *cols;	/* the caller's static array */
	int			ncols;
}			priv_cache[TF_SMALL_CACHE];
static int	priv_n = 0;

/* contexts of dropped entries, deleted at the end of the transaction */
static MemoryContext rel_retired = NULL;

static void
role_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	priv_n = 0;
	/* (the prepared WITH CHECKs: EXECUTE through a role's membership) */
	rel_cache = NULL;
}

static void
rel_cache_inval(Datum arg, Oid relid)
{
	relid_n = 0;
	priv_n = 0;
	/*
	 * (the entries stay in memory until the transaction ends: one may be
	 * in use -- a TfDirect of this statement, or of a caller further up
	 * when a trigger inserts through this path again)
	 */
	rel_cache = NULL;
}

static void
rel_cache_proc_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	rel_cache = NULL;
}

static void
rel_cache_xact(XactEvent event, void *arg)
{
	if ((event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		 event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		 event == XACT_EVENT_PREPARE) && rel_retired != NULL)
		MemoryContextDeleteChildren(rel_retired);
}

/* the adbin of attnum among the table's defaults, or NULL */
static char *
rel_adbin(TupleConstr *constr, AttrNumber attnum)
{
	if (constr == NULL)
		return NULL;
	for (int i = 0; i < constr->num_defval; i++)
		if (constr->defval[i].adnum == attnum)
			return constr->defval[i].adbin;
	return NULL;
}

/* does the entry hold the table's current constraints and defaults? */
static bool
rel_cache_same(RelCache *c, Relation rel)
{
	TupleDesc	td = RelationGetDescr(rel);
	TupleConstr *constr = td->constr;

	if (c->natts != td->natts || c->ncheck != (constr ? constr->num_check : 0) ||
		c->ndefval != (constr ? constr->num_defval : 0))
		return false;
	for (int i = 0; i < c->ncheck; i++)
		if (strcmp(c->ccbin[i], constr->check[i].ccbin) != 0)
			return false;
	for (int k = 0; k < td->natts; k++)
	{
		char	   *a = rel_adbin(constr, k + 1);

		if ((a == NULL) != (c->adbin[k] == NULL) || (a != NULL && strcmp(a, c->adbin[k]) != 0))
			return false;
	}
	return true;
}

/* the invalidation callbacks of the caches above, once per backend */
static void
register_callbacks(void)
{
	if (rel_callback)
		return;
	rel_retired = AllocSetContextCreate(TopMemoryContext, "taskflow direct inserts, dropped",
										ALLOCSET_SMALL_SIZES);
	CacheRegisterRelcacheCallback(rel_cache_inval, (Datum) 0);
	/*
	 * a function replaced: a policy's WITH CHECK prepared here may have
	 * inlined it (taskflow._is_member), as a cached plan would have
	 */
	CacheRegisterSyscacheCallback(PROCOID, rel_cache_proc_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, role_inval, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, role_inval, (Datum) 0);
	RegisterXactCallback(rel_cache_xact, NULL);
	rel_callback = true;
}

static RelCache *
rel_cache_get(Relation rel)
{
	TupleDesc	td = RelationGetDescr(rel);
	TupleConstr *constr = td->constr;
	RelCache   *c;
	MemoryContext old;

	register_callbacks();
	if (rel_cache == NULL && rel_cxt != NULL)
	{
		/* after an invalidation: the entries retired, new ones built */
		MemoryContextSetParent(rel_cxt, rel_retired);
		rel_cxt = NULL;
	}
	for (c = rel_cache; c != NULL; c = c->next)
		if (c->relid == RelationGetRelid(rel))
			break;
	if (c != NULL && rel_cache_same(c, rel))
		return c;
	/* (a changed table: its old entry is left, unused, until the next reset) */
	if (rel_cxt == NULL)
		rel_cxt = AllocSetContextCreate(TopMemoryContext, "taskflow direct inserts",
										ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(rel_cxt);
	c = palloc0(sizeof(RelCache));
	c->relid = RelationGetRelid(rel);
	c->ncheck = constr ? constr->num_check : 0;
	c->ccbin = palloc(sizeof(char *) * (c->ncheck + 1));
	c->check = palloc(sizeof(ExprState *) * (c->ncheck + 1));
	for (int i = 0; i < c->ncheck; i++)
	{
		Expr	   *e = (Expr *) stringToNode(constr->check[i].ccbin);

		/* as ExecRelCheck prepares them (ExecPrepareExpr, without an EState) */
		c->ccbin[i] = pstrdup(constr->check[i].ccbin);
		c->check[i] = ExecInitExpr(expression_planner(e), NULL);
	}
	c->ndefval = constr ? constr->num_defval : 0;
	c->natts = td->natts;
	c->adbin = palloc0(sizeof(char *) * td->natts);
	c->defexpr = palloc0(sizeof(ExprState *) * td->natts);
	for (int k = 0; k < td->natts; k++)
	{
		Form_pg_attribute att = TupleDescAttr(td, k);
		char	   *a = rel_adbin(constr, k + 1);
		Node	   *def;

		c->adbin[k] = a ? pstrdup(a) : NULL;
		if (att->attisdropped || att->attgenerated)
			continue;
		/* (an identity column's: its sequence's nextval) */
		def = build_column_default(rel, att->attnum);
		if (def != NULL)
			c->defexpr[k] = ExecInitExpr(expression_planner((Expr *) def), NULL);
	}
	c->next = rel_cache;
	rel_cache = c;
	MemoryContextSwitchTo(old);
	return c;
}

/* ---------------------------------------------------------------------
 * row level security: the shipped policies
 * ---------------------------------------------------------------------
 */

/*
 * The policies sql/src/00_catalog.once.sql ships for the tables this path
 * may write as a role to which they apply, deparsed under the search_path
 * pg_catalog, pg_temp (as pg_get_expr shows them then), and the only mode
 * in which each may be met without a statement.
 */
static const struct
{
	const char *rel;
	const char *name;
	const char *qual;
	const char *check;			/* NULL: none (the USING applies to new rows) */
	TfDirectRls mode;
}			shipped_policies[] =
{
	{"flows", "flows_member", "taskflow._is_member(owner)", "taskflow._is_member(owner)",
	TF_RLS_CHECK},
	{"nodes", "nodes_member",
		"(EXISTS (SELECT 1 FROM taskflow.flows f WHERE (f.id = nodes.flow_id)))", NULL,
	TF_RLS_NEW_FLOW},
	{"edges", "edges_member",
		"(EXISTS (SELECT 1 FROM taskflow.flows f WHERE (f.id = edges.flow_id)))", NULL,
	TF_RLS_NEW_FLOW},
};

static char *
rls_deparse(Relation rel, Expr *e)
{
	return deparse_expression((Node *) e,
							  deparse_context_for(RelationGetRelationName(rel),
												  RelationGetRelid(rel)),
							  false, false);
}

/*
 * Does rel have exactly the policies the extension ships for it (and
 * nothing else that row level security would apply)?  The mode they may be
 * met in (TF_RLS_NONE: none, the SPI path); for TF_RLS_CHECK the WITH
 * CHECK expression prepared in rc->rls_check.  Kept in rc: any relcache
 * invalidation of any table drops rc (rel_cache_inval).
 */
static TfDirectRls
rls_verify(Relation rel, RelCache *rc)
{
	RowSecurityDesc *rs = rel->rd_rsdesc;
	RowSecurityPolicy *p;
	int			k;
	int			nest;
	char	   *qual;
	char	   *check;
	bool		ok;

	/*
	 * (the WITH CHECK is prepared as the user who evaluates it: whether
	 * taskflow._is_member is inlined, and the EXECUTE privileges that
	 * ExecInitExpr checks, are that user's, as in the user's own INSERT)
	 */
	if (rc->rls != 0 && (rc->rls_check == NULL || rc->rls_user == GetUserId()))
		return (TfDirectRls) (rc->rls - 1);
	rc->rls = 1 + TF_RLS_NONE;
	rc->rls_check = NULL;
	for (k = 0; k < lengthof(shipped_policies); k++)
		if (strcmp(shipped_policies[k].rel, RelationGetRelationName(rel)) == 0)
			break;
	if (k == lengthof(shipped_policies) || rs == NULL || list_length(rs->policies) != 1 ||
		row_security_policy_hook_permissive != NULL ||
		row_security_policy_hook_restrictive != NULL)
		return TF_RLS_NONE;
	p = (RowSecurityPolicy *) linitial(rs->policies);
	if (strcmp(p->policy_name, shipped_policies[k].name) != 0 || p->polcmd != '*' ||
		!p->permissive || p->qual == NULL ||
		(p->with_check_qual == NULL) != (shipped_policies[k].check == NULL) ||
		p->roles == NULL || ARR_NDIM(p->roles) != 1 || ARR_HASNULL(p->roles) ||
		ArrayGetNItems(ARR_NDIM(p->roles), ARR_DIMS(p->roles)) != 1 ||
		((Oid *) ARR_DATA_PTR(p->roles))[0] != ACL_ID_PUBLIC)
		return TF_RLS_NONE;
	/* their text, names qualified as under the API's pinned search_path */
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	qual = rls_deparse(rel, p->qual);
	check = p->with_check_qual ? rls_deparse(rel, p->with_check_qual) : NULL;
	AtEOXact_GUC(true, nest);
	elog(DEBUG2, "taskflow: direct inserts: the policy of %s: USING %s WITH CHECK %s",
		 RelationGetRelationName(rel), qual, check ? check : "(none)");
	ok = strcmp(qual, shipped_policies[k].qual) == 0 &&
		(check == NULL || strcmp(check, shipped_policies[k].check) == 0);
	if (!ok)
		return TF_RLS_NONE;
	if (shipped_policies[k].mode == TF_RLS_CHECK)
	{
		MemoryContext old;

		if (p->hassublinks)
			return TF_RLS_NONE;
		/* the policy's own expression, as the planner prepares a WITH CHECK */
		old = MemoryContextSwitchTo(GetMemoryChunkContext(rc));
		rc->rls_check = ExecInitQual(list_make1(expression_planner((Expr *) copyObject(p->with_check_qual))),
									 NULL);
		rc->rls_user = GetUserId();
		MemoryContextSwitchTo(old);
	}
	rc->rls = 1 + shipped_policies[k].mode;
	return shipped_policies[k].mode;
}

/* ---------------------------------------------------------------------
 * the inserts
 * ---------------------------------------------------------------------
 */

/*
 * Does any trigger of td fire under the current session_replication_role
 * (TriggerEnabled's rule for a row's trigger)?
 */
static bool
triggers_fire(TriggerDesc *td)
{
	for (int i = 0; i < td->numtriggers; i++)
	{
		char		e = td->triggers[i].tgenabled;

		if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA
			? (e == TRIGGER_FIRES_ON_REPLICA || e == TRIGGER_FIRES_ALWAYS)
			: (e == TRIGGER_FIRES_ON_ORIGIN || e == TRIGGER_FIRES_ALWAYS))
			return true;
	}
	return false;
}

/*
 * INSERT on the table or on each of the columns given, and SELECT on the
 * table, for the current user (before any lock: the catalogs' caches)
 */
static int
priv_cached(Oid relid, const char *const *cols, int ncols)
{
	Oid			user = GetUserId();

	for (int i = 0; i < priv_n; i++)
		if (priv_cache[i].relid == relid && priv_cache[i].user == user &&
			priv_cache[i].cols == cols && priv_cache[i].ncols == ncols)
			return i;
	return -1;
}

static bool
privileges_ok(Oid relid, const char *const *cols, int ncols)
{
	Oid			user = GetUserId();

	if (priv_cached(relid, cols, ncols) >= 0)
		return true;
	if (pg_class_aclcheck(relid, user, ACL_SELECT) != ACLCHECK_OK)
		return false;
	if (pg_class_aclcheck(relid, user, ACL_INSERT) == ACLCHECK_OK)
		return true;
	for (int i = 0; i < ncols; i++)
	{
		AttrNumber	a = get_attnum(relid, cols[i]);

		if (a == InvalidAttrNumber ||
			pg_attribute_aclcheck(relid, a, user, ACL_INSERT) != ACLCHECK_OK)
			return false;
	}
	return true;
}

/*
 * Prepare direct inserts into taskflow.<relname> of rows giving the columns
 * cols[] of the types types[] (the others get their defaults), as the
 * current user.  rls: how the caller may meet the table's row level
 * security when it applies to the current user (see the banner).  NULL: not
 * possible (privileges, row level security, a column or type that is not
 * the table's): use an INSERT statement.
 */
TfDirect *
tf_direct_begin(const char *relname, const char *const *cols, const Oid *types, int ncols,
				TfDirectRls rls)
{
	Oid			relid = InvalidOid;
	RangeTblEntry *rte;
	Relation	rel;
	TupleDesc	td;
	TfDirect   *d;
	Bitmapset  *given = NULL;
	RelCache   *rc;
	bool		rls_applies;
	int			i;

	register_callbacks();
	for (i = 0; i < relid_n; i++)
		if (relid_cache[i].relname == relname)
			relid = relid_cache[i].relid;
	if (!OidIsValid(relid))
	{
		relid = get_relname_relid(relname, get_namespace_oid(TASKFLOW_SCHEMA, false));
		if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION)
			return NULL;
		if (relid_n < TF_SMALL_CACHE)
		{
			relid_cache[relid_n].relname = relname;
			relid_cache[relid_n++].relid = relid;
		}
	}
	/*
	 * Before any lock: the privileges (a role without them takes the
	 * INSERT statement, which raises the error), and whether row level
	 * security applies (see the banner; with row_security off an INSERT
	 * raises an error then)
	 */
	if (!privileges_ok(relid, cols, ncols))
		return NULL;
	rls_applies = check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED;
	if (rls_applies && (rls == TF_RLS_NONE || !row_security))
		return NULL;

	rel = table_open(relid, RowExclusiveLock);
	td = RelationGetDescr(rel);
	rc = rel_cache_get(rel);
	/* (after the lock: the policies are the ones that apply to the insert) */
	if (rls_applies && rls_verify(rel, rc) != rls)
	{
		table_close(rel, RowExclusiveLock);
		return NULL;
	}
	d = palloc0(sizeof(TfDirect));
	d->rel = rel;
	d->rc = rc;
	if (rls_applies && rls == TF_RLS_CHECK)
		d->rls_check = rc->rls_check;
	d->ncols = ncols;
	d->attnum = palloc(sizeof(AttrNumber) * (ncols + 1));
	if (rc->cols != cols || rc->types != types || rc->ncols != ncols)
	{
		/* the columns given: their numbers, once per backend and caller */
		AttrNumber *an = MemoryContextAlloc(GetMemoryChunkContext(rc),
											sizeof(AttrNumber) * (ncols + 1));

		for (i = 0; i < ncols; i++)
		{
			AttrNumber	a = InvalidAttrNumber;

			for (int k = 0; k < td->natts; k++)
			{
				Form_pg_attribute att = TupleDescAttr(td, k);

				if (!att->attisdropped && strcmp(NameStr(att->attname), cols[i]) == 0)
				{
					if (att->atttypid == types[i] && !att->attgenerated)
						a = att->attnum;
					break;
				}
			}
			if (a == InvalidAttrNumber)
			{
				table_close(rel, RowExclusiveLock);
				return NULL;
			}
			an[i] = a;
		}
		rc->cols = cols;
		rc->types = types;
		rc->ncols = ncols;
		rc->attnum = an;
	}
	for (i = 0; i < ncols; i++)
	{
		d->attnum[i] = rc->attnum[i];
		given = bms_add_member(given, d->attnum[i] - FirstLowInvalidHeapAttributeNumber);
	}

	/* the executor's check too (its hook; the columns given) */
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	rte->requiredPerms = ACL_INSERT | ACL_SELECT;
	rte->checkAsUser = InvalidOid;
	rte->insertedCols = given;
	/* (the whole row: RETURNING to_jsonb(t)) */
	rte->selectedCols = bms_make_singleton(InvalidAttrNumber - FirstLowInvalidHeapAttributeNumber);
	if (ExecutorCheckPerms_hook != NULL || priv_cached(relid, cols, ncols) < 0)
	{
		if (!ExecCheckRTPerms(list_make1(rte), false))
		{
			table_close(rel, RowExclusiveLock);
			return NULL;
		}
		/* (after the lock: the invalidations sent before it are in) */
		if (priv_n < TF_SMALL_CACHE)
		{
			priv_cache[priv_n].relid = relid;
			priv_cache[priv_n].user = GetUserId();
			priv_cache[priv_n].cols = cols;
			priv_cache[priv_n++].ncols = ncols;
		}
	}

	d->estate = CreateExecutorState();
	ExecInitRangeTable(d->estate, list_make1(rte));
	d->rri = makeNode(ResultRelInfo);
	if (rel->trigdesc != NULL && !triggers_fire(rel->trigdesc))
	{
		/*
		 * No trigger of the table fires under the current replication role
		 * (the path's own: replica; every trigger ORIGIN-enabled or
		 * disabled): the ResultRelInfo without them, as for a table without
		 * triggers (InitResultRelInfo would copy them all, and each row
		 * would look at each of them)
		 */
		TriggerDesc *save = rel->trigdesc;

		rel->trigdesc = NULL;
		PG_TRY();
		{
			InitResultRelInfo(d->rri, rel, 1, NULL, 0);
		}
		PG_FINALLY();
		{
			rel->trigdesc = save;
		}
		PG_END_TRY();
	}
	else
		InitResultRelInfo(d->rri, rel, 1, NULL, 0);
	d->estate->es_output_cid = GetCurrentCommandId(true);
	d->estate->es_snapshot = GetActiveSnapshot();
	ExecOpenIndices(d->rri, false);
	/* the CHECKs prepared before, as ExecRelCheck would prepare them */
	if (rc->ncheck > 0)
		d->rri->ri_ConstraintExprs = rc->check;
	d->slot = ExecInitExtraTupleSlot(d->estate, td, &TTSOpsVirtual);

	/* the defaults of the other columns (as an INSERT evaluates them) */
	d->defnum = palloc(sizeof(AttrNumber) * td->natts);
	d->defexpr = palloc(sizeof(ExprState *) * td->natts);
	for (int k = 0; k < td->natts; k++)
	{
		Form_pg_attribute att = TupleDescAttr(td, k);

		if (rc->defexpr[k] == NULL ||
			bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, given))
			continue;
		d->defnum[d->ndefaults] = att->attnum;
		d->defexpr[d->ndefaults++] = rc->defexpr[k];
	}
	AfterTriggerBeginQuery();
	return d;
}

/*
 * Insert one row (values/nulls of the columns given to tf_direct_begin);
 * the row stays in the slot for tf_direct_value and tf_direct_image.
 */
void
tf_direct_insert(TfDirect *d, const Datum *values, const bool *nulls)
{
	TupleTableSlot *slot = d->slot;
	ExprContext *econtext = GetPerTupleExprContext(d->estate);
	int			natts = slot->tts_tupleDescriptor->natts;

	ResetPerTupleExprContext(d->estate);
	ExecClearTuple(slot);
	for (int k = 0; k < natts; k++)
	{
		slot->tts_values[k] = (Datum) 0;
		slot->tts_isnull[k] = true;
	}
	/* defaults in column order, as an INSERT's target list evaluates them */
	for (int k = 0; k < d->ndefaults; k++)
	{
		int			a = d->defnum[k] - 1;

		slot->tts_values[a] = ExecEvalExpr(d->defexpr[k], econtext, &slot->tts_isnull[a]);
	}
	for (int i = 0; i < d->ncols; i++)
	{
		slot->tts_values[d->attnum[i] - 1] = values[i];
		slot->tts_isnull[d->attnum[i] - 1] = nulls[i];
	}
	ExecStoreVirtualTuple(slot);
	if (d->rls_check != NULL)
	{
		/* the policy's WITH CHECK, before the row is inserted (as ExecInsert) */
		econtext->ecxt_scantuple = slot;
		if (!ExecQual(d->rls_check, econtext))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("new row violates row-level security policy for table \"%s\"",
							RelationGetRelationName(d->rel))));
	}
	ExecSimpleRelationInsert(d->rri, d->estate, slot);
}

/* column attname of the row inserted last */
Datum
tf_direct_value(TfDirect *d, const char *attname, bool *isnull)
{
	if (d->value_name != attname)
	{
		d->value_att = attnameAttNum(d->rel, attname, false);
		if (d->value_att <= 0)
			elog(ERROR, "taskflow: no column %s", attname);
		d->value_name = attname;
	}
	return slot_getattr(d->slot, d->value_att, isnull);
}

/*
 * How to_jsonb writes a column of the type typid (datum_to_jsonb's
 * categories, for the built-in types it handles without a lookup):
 * 'b'oolean, 'i'nteger (a JSON number), 't'imestamptz (ISO 8601, as
 * JsonEncodeDateTime), 'j'sonb (object or array: embedded), 's'tring (the
 * output function's text: text, name, reg*, interval, ...), or '?': not
 * handled here (arrays, composites, domains, json, floats, numeric, dates,
 * user types): the whole image by to_jsonb.
 */
static char
image_category(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
			return 'b';
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return 'i';
		case TIMESTAMPTZOID:
			return 't';
		case JSONBOID:
			return 'j';
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case REGROLEOID:
		case REGCLASSOID:
		case REGPROCOID:
		case OIDOID:
		case INTERVALOID:
		case XIDOID:
		case XID8OID:
		case UUIDOID:
			return 's';
		default:
			return '?';
	}
}

/*
 * The image of the row in the slot, built as to_jsonb(row) - hidden
 * builds it (the same keys, values and forms; jsonb sorts the keys), or
 * (Datum) 0 when a column it shows has a type image_category leaves to
 * to_jsonb.
 */
static Datum
image_direct(TfDirect *d)
{
	TupleTableSlot *slot = d->slot;
	TupleDesc	td = slot->tts_tupleDescriptor;
	RelCache   *rc = d->rc;
	JsonbParseState *state = NULL;
	JsonbValue *res;

	if (rc->jcat == NULL)
	{
		MemoryContext cxt = GetMemoryChunkContext(rc);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		char	   *jcat = palloc0(td->natts + 1);

		rc->jout = palloc0(sizeof(FmgrInfo) * td->natts);
		for (int k = 0; k < td->natts; k++)
		{
			Form_pg_attribute att = TupleDescAttr(td, k);

			jcat[k] = att->attisdropped ? '-' : image_category(att->atttypid);
			if (jcat[k] == 's')
			{
				Oid			out;
				bool		varlena;

				getTypeOutputInfo(att->atttypid, &out, &varlena);
				fmgr_info_cxt(out, &rc->jout[k], cxt);
			}
		}
		rc->jcat = jcat;
		MemoryContextSwitchTo(old);
	}
	slot_getallattrs(slot);
	for (int k = 0; k < td->natts; k++)
		if (rc->jcat[k] == '?' && !d->skip[k])
			return (Datum) 0;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int k = 0; k < td->natts; k++)
	{
		Form_pg_attribute att = TupleDescAttr(td, k);
		Datum		val = slot->tts_values[k];
		JsonbValue	key;
		JsonbValue	v;

		if (rc->jcat[k] == '-' || d->skip[k])
			continue;
		key.type = jbvString;
		key.val.string.val = NameStr(att->attname);
		key.val.string.len = strlen(NameStr(att->attname));
		pushJsonbValue(&state, WJB_KEY, &key);
		if (slot->tts_isnull[k])
		{
			v.type = jbvNull;
			pushJsonbValue(&state, WJB_VALUE, &v);
			continue;
		}
		switch (rc->jcat[k])
		{
			case 'b':
				v.type = jbvBool;
				v.val.boolean = DatumGetBool(val);
				break;
			case 'i':
				v.type = jbvNumeric;
				v.val.numeric = int64_to_numeric(att->atttypid == INT8OID ? DatumGetInt64(val) :
												 att->atttypid == INT4OID ? DatumGetInt32(val) :
												 DatumGetInt16(val));
				break;
			case 't':
				v.type = jbvString;
				v.val.string.val = JsonEncodeDateTime(NULL, val, TIMESTAMPTZOID, NULL);
				v.val.string.len = strlen(v.val.string.val);
				break;
			case 'j':
				{
					Jsonb	   *jb = DatumGetJsonbP(val);

					if (JB_ROOT_IS_SCALAR(jb))
						return (Datum) 0;	/* (to_jsonb: not in these tables) */
					v.type = jbvBinary;
					v.val.binary.data = &jb->root;
					v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
				}
				break;
			default:
				v.type = jbvString;
				v.val.string.val = OutputFunctionCall(&rc->jout[k], val);
				v.val.string.len = strlen(v.val.string.val);
				break;
		}
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/*
 * to_jsonb(the row inserted last) - hidden (a text[] literal of column
 * names): the image an INSERT ... RETURNING to_jsonb(t) - hidden returns
 */
Datum
tf_direct_image(TfDirect *d, const char *hidden)
{
	Datum		img;
	TupleDesc	td = RelationGetDescr(d->rel);

	if (d->skip == NULL || d->hidden != hidden)
	{
		/* the columns named in {a,b,...} */
		char	   *list = pstrdup(hidden ? hidden : "{}");
		char	   *tok;
		char	   *save;

		d->hidden = hidden;
		d->skip = palloc0(sizeof(bool) * td->natts);
		for (tok = strtok_r(list, "{,}", &save); tok != NULL; tok = strtok_r(NULL, "{,}", &save))
			for (int k = 0; k < td->natts; k++)
				if (strcmp(NameStr(TupleDescAttr(td, k)->attname), tok) == 0)
					d->skip[k] = true;
	}
	img = image_direct(d);
	if (img != (Datum) 0)
		return img;

	/* the general way: to_jsonb(row) - hidden */
	if (!d->has_jsonb)
	{
		FuncExpr   *fe;

		/* to_jsonb is polymorphic: it reads its argument's type from fn_expr */
		fmgr_info(F_TO_JSONB, &d->to_jsonb);
		fe = makeFuncExpr(F_TO_JSONB, JSONBOID,
						  list_make1(makeNullConst(RelationGetForm(d->rel)->reltype, -1, InvalidOid)),
						  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		d->to_jsonb.fn_expr = (Node *) fe;
		d->has_jsonb = true;
	}
	img = FunctionCall1(&d->to_jsonb, ExecFetchSlotHeapTupleDatum(d->slot));
	if (hidden != NULL)
		img = DirectFunctionCall2(jsonb_delete_array, img,
								  OidInputFunctionCall(F_ARRAY_IN, unconstify(char *, hidden),
													   TEXTOID, -1));
	return img;
}

/* the AFTER row triggers queued (those enabled), indexes closed, the rows visible */
void
tf_direct_end(TfDirect *d)
{
	AfterTriggerEndQuery(d->estate);
	/* (the relations the AFTER triggers' events opened, as the apply worker does) */
	ExecCloseResultRelations(d->estate);
	ExecCloseIndices(d->rri);
	ExecResetTupleTable(d->estate->es_tupleTable, false);
	FreeExecutorState(d->estate);
	table_close(d->rel, NoLock);
	CommandCounterIncrement();
}
