/*-------------------------------------------------------------------------
 *
 * storage_fdw.c
 *	  Foreign tables over Hive-partitioned archives: the FDW handler of
 *	  taskflow_storage (read only) and the validation of foreign table
 *	  options (path, format, partition_columns, header, require_success).
 *
 *	  A foreign table's path is a key prefix ('dla_demo/') under which
 *	  partitions are directories col=value/... in partition_columns order,
 *	  each holding parts (*.csv / *.csv.gz / *.csv.zst), maybe a _manifest.json and a
 *	  _SUCCESS written last.  A scan:
 *	  - lists the objects under the longest prefix fixed by equality
 *	    conditions on the leading partition columns ('dla_demo/y=2020/m=06/'),
 *	  - prunes partitions with every condition that only involves partition
 *	    columns (=, IN, ranges, any expression), evaluated per partition,
 *	  - skips partitions without _SUCCESS (unless require_success 'false'),
 *	  - reads the parts named by the manifest (checking their sizes against
 *	    the listing, and size + md5 while reading), else every data file,
 *	  - streams each part through gunzip into COPY FROM (export.c's import
 *	    source), in bounded memory, adding the partition values.
 *	  Manifests' row counts and sizes feed the planner's estimates.
 *
 *	  Permissions: SELECT on the foreign table (PostgreSQL), USAGE on the
 *	  server and a user mapping of the querying role, or of a view's owner
 *	  when read through a view, as postgres_fdw (tf_storage_open_server).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/sampling.h"

#include "format.h"
#include "storage.h"

#define TF_SUCCESS_NAME		"_SUCCESS"
#define TF_MANIFEST_NAME	"_manifest.json"
#define TF_HIVE_DEFAULT		"__HIVE_DEFAULT_PARTITION__"
#define TF_MAX_PLAN_MANIFESTS	16	/* manifests read for estimates */
#define TF_MAX_EXPLAIN_PARTS	20	/* partitions named by EXPLAIN VERBOSE */

/* foreign table options */
typedef struct TfFdwOptions
{
	char	   *path;			/* normalized: "" or ends in '/' */
	TfFileFormat format;
	List	   *partcols;		/* char * names, in path order */
	bool		header;			/* without manifest; a manifest says itself */
	bool		require_success;
} TfFdwOptions;

/* one partition directory found in a listing */
typedef struct TfFdwPartition
{
	char	   *dir;			/* key prefix, ends in '/' */
	char	  **values;			/* decoded values, NULL for Hive's default */
	List	   *objects;		/* TfObjectInfo * of the data files */
	int64		bytes;
	bool		has_success;
	bool		has_manifest;
} TfFdwPartition;

typedef struct TfFdwScanState
{
	TfStorage  *st;
	TfFdwOptions opts;
	Relation	rel;
	char	   *listprefix;
	List	   *all;			/* TfFdwPartition *, complete or not */
	List	   *scan;			/* the ones to read */
	int			npruned;
	int			nincomplete;
	int64		nobjects;
	int64		nbytes;
	ExprState  *prune;			/* conditions on partition columns, or NULL */
	bool		exec_params;	/* they use executor parameters */
	bool		pruned;			/* scan / counts are valid */
	List	   *attnamelist;	/* data columns (String), table order */
	int			npartcols;
	AttrNumber *partattnums;
	FmgrInfo   *partin;
	Oid		   *partioparams;
	int32	   *parttypmods;

	/* progress */
	int			cur_part;		/* index in scan, -1 before the first */
	List	   *cur_parts;		/* TfImportPart * of the current partition */
	int			cur_obj;
	bool		cur_header;
	Datum	   *cur_values;		/* partition values converted, per partcol */
	bool	   *cur_nulls;
	MemoryContext prune_cxt;	/* the scan list, per (re)scan */
	MemoryContext part_cxt;		/* per partition */
	MemoryContext obj_cxt;		/* per object: reader, gunzip, COPY state */
	TfImportPart *obj;
	TfImportSource *src;
	CopyFromState cstate;
} TfFdwScanState;

/* ----------------------------------------------------------------
 * Options
 * ----------------------------------------------------------------
 */
static bool
parse_bool_option(DefElem *def)
{
	bool		b;

	if (!parse_bool(defGetString(def), &b))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", def->defname, defGetString(def)),
				 errhint("Valid values are true and false.")));
	return b;
}

static void
parse_fdw_options(List *options, TfFdwOptions *o)
{
	ListCell   *lc;

	memset(o, 0, sizeof(*o));
	o->format = TF_FORMAT_CSV;
	o->header = true;
	o->require_success = true;
	o->path = NULL;
	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);
		char	   *val = defGetString(def);

		if (strcmp(def->defname, "path") == 0)
			o->path = tf_export_normalize_prefix(val);
		else if (strcmp(def->defname, "format") == 0)
			o->format = tf_format_parse(val);
		else if (strcmp(def->defname, "header") == 0)
			o->header = parse_bool_option(def);
		else if (strcmp(def->defname, "require_success") == 0)
			o->require_success = parse_bool_option(def);
		else if (strcmp(def->defname, "partition_columns") == 0)
		{
			char	   *copy = pstrdup(val);
			char	   *tok;
			char	   *save = NULL;
			ListCell   *lc2;

			o->partcols = NIL;
			for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			{
				char	   *name = tok;
				size_t		n;

				while (*name == ' ' || *name == '\t')
					name++;
				n = strlen(name);
				while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
					name[--n] = '\0';
				if (n == 0 || strpbrk(name, "=/%\"") != NULL)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid value for option \"partition_columns\": \"%s\"", val),
							 errhint("List the partition columns in path order, separated by commas, e.g. 'y,m,d'.")));
				foreach(lc2, o->partcols)
					if (strcmp(lfirst(lc2), name) == 0)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("partition column \"%s\" is listed twice", name)));
				o->partcols = lappend(o->partcols, pstrdup(name));
			}
			if (o->partcols == NIL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"partition_columns\": \"%s\"", val),
						 errhint("List the partition columns in path order, separated by commas, e.g. 'y,m,d'.")));
		}
		else
			elog(ERROR, "unexpected foreign table option \"%s\"", def->defname);
	}
	if (o->path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a taskflow_storage foreign table needs the option \"path\""),
				 errhint("For example OPTIONS (path 'dla_demo/', format 'csv.gz', partition_columns 'y,m,d').")));
}

/* the validator's part for foreign tables (names were checked by storage.c) */
void
tf_storage_fdw_validate_options(List *options)
{
	TfFdwOptions o;

	parse_fdw_options(options, &o);
}

/* options of a foreign table, with its partition columns checked against it */
static void
get_table_options(Relation rel, TfFdwOptions *o)
{
	ForeignTable *ft = GetForeignTable(RelationGetRelid(rel));
	ListCell   *lc;

	parse_fdw_options(ft->options, o);
	foreach(lc, o->partcols)
	{
		AttrNumber	att = get_attnum(RelationGetRelid(rel), lfirst(lc));

		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("partition column \"%s\" is not a column of foreign table \"%s\"",
							(char *) lfirst(lc), RelationGetRelationName(rel)),
					 errhint("Add the column (e.g. %s text) or fix the option partition_columns.",
							 quote_identifier(lfirst(lc)))));
	}
}

/* ----------------------------------------------------------------
 * Listing: partitions under a prefix
 * ----------------------------------------------------------------
 */

/* Hive escapes special characters as %XX */
static char *
hive_decode(const char *s, size_t len)
{
	char	   *out = palloc(len + 1);
	size_t		o = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == '%' && i + 2 < len &&
			isxdigit((unsigned char) s[i + 1]) && isxdigit((unsigned char) s[i + 2]))
		{
			char		hex[3] = {s[i + 1], s[i + 2], '\0'};

			out[o++] = (char) strtol(hex, NULL, 16);
			i += 2;
		}
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* can value be put into a key prefix as is (no Hive escaping needed)? */
static bool
hive_plain(const char *value)
{
	return value[0] != '\0' &&
		strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789-_.+ ,;@~!$&()") == strlen(value);
}

/*
 * Group the objects under listprefix into partitions: keys
 * path col1=v1/.../colN=vN/name.  Other keys are ignored.
 */
static List *
list_partitions(TfStorage *st, const TfFdwOptions *o, const char *listprefix)
{
	List	   *objs = tf_storage_list(st, listprefix);
	List	   *parts = NIL;
	TfFdwPartition *cur = NULL;
	size_t		plen = strlen(o->path);
	int			ncols = list_length(o->partcols);
	const char *ext = tf_format_extension(o->format);
	size_t		elen = strlen(ext);
	ListCell   *lc;

	foreach(lc, objs)
	{
		TfObjectInfo *info = lfirst(lc);
		const char *rest = info->key + plen;
		const char *p = rest;
		const char *name;
		char	  **values;
		bool		ok = true;
		size_t		dirlen;
		size_t		nlen;
		ListCell   *lc2;

		if (strncmp(info->key, o->path, plen) != 0)
			continue;
		values = palloc0(sizeof(char *) * Max(ncols, 1));
		foreach(lc2, o->partcols)
		{
			const char *col = lfirst(lc2);
			size_t		clen = strlen(col);
			const char *slash = strchr(p, '/');

			if (slash == NULL || strncmp(p, col, clen) != 0 || p[clen] != '=')
			{
				ok = false;
				break;
			}
			values[foreach_current_index(lc2)] =
				(slash - (p + clen + 1) == (ptrdiff_t) strlen(TF_HIVE_DEFAULT) &&
				 strncmp(p + clen + 1, TF_HIVE_DEFAULT, strlen(TF_HIVE_DEFAULT)) == 0)
				? NULL : hive_decode(p + clen + 1, slash - (p + clen + 1));
			/* a value must be text of the database's encoding */
			if (values[foreach_current_index(lc2)] &&
				!pg_verifymbstr(values[foreach_current_index(lc2)],
								strlen(values[foreach_current_index(lc2)]), true))
			{
				ok = false;
				break;
			}
			p = slash + 1;
		}
		name = p;
		if (!ok || strchr(name, '/') != NULL || name[0] == '\0')
		{
			pfree(values);
			continue;			/* not in a partition directory (or deeper) */
		}
		dirlen = name - info->key;
		if (cur == NULL || strlen(cur->dir) != dirlen ||
			strncmp(cur->dir, info->key, dirlen) != 0)
		{
			/* a new directory (keys are sorted, so a directory is contiguous) */
			cur = palloc0(sizeof(TfFdwPartition));
			cur->dir = pnstrdup(info->key, dirlen);
			cur->values = values;
			parts = lappend(parts, cur);
		}
		if (strcmp(name, TF_SUCCESS_NAME) == 0)
			cur->has_success = true;
		else if (strcmp(name, TF_MANIFEST_NAME) == 0)
			cur->has_manifest = true;
		else if (name[0] == '_' || name[0] == '.')
			continue;			/* hidden, by Hive's rules */
		else if ((nlen = strlen(name)) > elen && strcmp(name + nlen - elen, ext) == 0)
		{
			cur->objects = lappend(cur->objects, info);
			cur->bytes += info->size;
		}
	}
	return parts;
}

/* ----------------------------------------------------------------
 * Planning
 * ----------------------------------------------------------------
 */

/* position of attnum in partattnums, -1 if not a partition column */
static int
partcol_index(Relation rel, const TfFdwOptions *o, AttrNumber attnum)
{
	ListCell   *lc;

	foreach(lc, o->partcols)
		if (get_attnum(RelationGetRelid(rel), lfirst(lc)) == attnum)
			return foreach_current_index(lc);
	return -1;
}

/* does the clause involve partition columns of this relation only? */
static bool
is_partition_clause(Relation rel, const TfFdwOptions *o, Index relid,
					RestrictInfo *ri)
{
	Bitmapset  *attrs = NULL;
	int			x = -1;
	Expr	   *clause = ri->clause;

	if (ri->pseudoconstant)
		return false;
	if (ri->security_level > 0 && contain_leaked_vars((Node *) clause))
		return false;
	if (contain_volatile_functions((Node *) clause) ||
		contain_subplans((Node *) clause))
		return false;
	pull_varattnos((Node *) clause, relid, &attrs);
	if (bms_is_empty(attrs))
		return false;
	while ((x = bms_next_member(attrs, x)) >= 0)
	{
		AttrNumber	att = x + FirstLowInvalidHeapAttributeNumber;

		if (att <= 0 || partcol_index(rel, o, att) < 0)
			return false;
	}
	return true;
}

/*
 * The listing prefix: path plus col=value/ for the leading partition
 * columns fixed by "col = constant" (text or varchar columns).  *used gets
 * the clauses used for it.
 */
static char *
listing_prefix(Relation rel, const TfFdwOptions *o, Index relid, List *clauses,
			   List **used)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoString(&buf, o->path);
	*used = NIL;
	foreach(lc, o->partcols)
	{
		AttrNumber	att = get_attnum(RelationGetRelid(rel), lfirst(lc));
		char	   *value = NULL;
		RestrictInfo *found = NULL;
		ListCell   *lc2;

		foreach(lc2, clauses)
		{
			RestrictInfo *ri = lfirst(lc2);
			OpExpr	   *op = (OpExpr *) ri->clause;
			Node	   *l,
					   *r;

			if (!IsA(op, OpExpr) || list_length(op->args) != 2 ||
				get_opcode(op->opno) != F_TEXTEQ)
				continue;
			l = strip_implicit_coercions(linitial(op->args));
			r = strip_implicit_coercions(lsecond(op->args));
			if (IsA(r, Var))
			{
				Node	   *t = l;

				l = r;
				r = t;
			}
			if (!IsA(l, Var) || ((Var *) l)->varno != relid ||
				((Var *) l)->varattno != att || ((Var *) l)->varlevelsup != 0 ||
				!IsA(r, Const) || ((Const *) r)->constisnull ||
				((Const *) r)->consttype != TEXTOID)
				continue;
			value = TextDatumGetCString(((Const *) r)->constvalue);
			found = ri;
			break;
		}
		if (value == NULL || !hive_plain(value))
			break;
		appendStringInfo(&buf, "%s=%s/", (char *) lfirst(lc), value);
		*used = lappend(*used, found);
	}
	return buf.data;
}

/* planner state kept in baserel->fdw_private */
typedef struct TfFdwPlanState
{
	char	   *listprefix;
	List	   *prune;			/* Expr * */
	int			npartitions;
	int64		nbytes;
} TfFdwPlanState;

/* rows of the manifest under dir, -1 if there is none or it has no count */
static int64
manifest_rows(TfStorage *st, const char *dir)
{
	Jsonb	   *jb = tf_export_read_manifest(st, dir);
	JsonbValue *v;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return -1;
	v = getKeyJsonValueFromContainer(&jb->root, "rows", 4, NULL);
	if (v == NULL || v->type != jbvNumeric)
		return -1;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
}

static void
tfGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	TfFdwPlanState *ps = palloc0(sizeof(TfFdwPlanState));
	Relation	rel = table_open(foreigntableid, NoLock);
	TfFdwOptions o;
	TfStorage  *st;
	List	   *used;
	List	   *parts;
	List	   *rest = NIL;
	ListCell   *lc;
	int64		mrows = 0,
				mbytes = 0;
	int			nmanifests = 0;
	double		rows;

	get_table_options(rel, &o);
	ps->listprefix = listing_prefix(rel, &o, baserel->relid,
									baserel->baserestrictinfo, &used);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = lfirst(lc);

		if (is_partition_clause(rel, &o, baserel->relid, ri))
			ps->prune = lappend(ps->prune, ri->clause);
		if (!list_member_ptr(used, ri))
			rest = lappend(rest, ri);
	}

	/* what is there: one listing, and a few manifests for row counts */
	st = tf_storage_open_server(GetForeignTable(foreigntableid)->serverid,
								OidIsValid(baserel->userid) ? baserel->userid : GetUserId());
	parts = list_partitions(st, &o, ps->listprefix);
	foreach(lc, parts)
	{
		TfFdwPartition *p = lfirst(lc);

		if (o.require_success && !p->has_success)
			continue;
		ps->npartitions++;
		ps->nbytes += p->bytes;
		if (p->has_manifest && nmanifests < TF_MAX_PLAN_MANIFESTS)
		{
			int64		r = manifest_rows(st, p->dir);

			nmanifests++;
			if (r >= 0)
			{
				mrows += r;
				mbytes += p->bytes;
			}
		}
	}
	if (mbytes > 0 || (mrows > 0 && ps->nbytes == mbytes))
		rows = ps->nbytes == mbytes ? (double) mrows
			: (double) mrows * ((double) ps->nbytes / (double) mbytes);
	else
	{
		/* no manifest: guess from the data width (csv.gz, csv.zst about 4:1) */
		int			width = Max(baserel->reltarget->width, 8) + 8;

		rows = (double) ps->nbytes * (o.format != TF_FORMAT_CSV ? 4 : 1) / width;
	}
	baserel->tuples = Max(rows, 1);
	baserel->rows = clamp_row_est(rows * clauselist_selectivity(root, rest, 0,
																JOIN_INNER, NULL));
	baserel->fdw_private = ps;
	table_close(rel, NoLock);
}

static void
tfGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	TfFdwPlanState *ps = baserel->fdw_private;
	Cost		startup = 100.0;	/* a listing request */
	Cost		run;

	/* reading and parsing: like a sequential scan of the bytes, plus network */
	run = seq_page_cost * 4 * ((double) ps->nbytes / BLCKSZ) +
		(cpu_tuple_cost * 10 + baserel->baserestrictcost.per_tuple) * baserel->tuples;
	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, startup + run,
									 NIL, NULL, NULL, NIL));
}

static ForeignScan *
tfGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				 ForeignPath *best_path, List *tlist, List *scan_clauses,
				 Plan *outer_plan)
{
	TfFdwPlanState *ps = baserel->fdw_private;

	/* every condition is still checked on every row */
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	return make_foreignscan(tlist, scan_clauses, baserel->relid,
							copyObject(ps->prune),
							list_make1(makeString(ps->listprefix)),
							NIL, NIL, outer_plan);
}

/* ----------------------------------------------------------------
 * Execution
 * ----------------------------------------------------------------
 */

/* partition values of p into the slot (other columns NULL) */
static void
store_partition_values(TfFdwScanState *ss, TfFdwPartition *p, TupleTableSlot *slot,
					   Datum *values, bool *nulls)
{
	for (int i = 0; i < ss->npartcols; i++)
	{
		nulls[i] = p->values[i] == NULL;
		values[i] = nulls[i] ? (Datum) 0
			: InputFunctionCall(&ss->partin[i], p->values[i],
								ss->partioparams[i], ss->parttypmods[i]);
	}
	if (slot)
	{
		ExecClearTuple(slot);
		memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
		for (int i = 0; i < ss->npartcols; i++)
		{
			slot->tts_values[ss->partattnums[i] - 1] = values[i];
			slot->tts_isnull[ss->partattnums[i] - 1] = nulls[i];
		}
		ExecStoreVirtualTuple(slot);
	}
}

static bool
has_exec_params(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		return true;
	return expression_tree_walker(node, has_exec_params, context);
}

/* choose the partitions to read: complete ones passing the conditions */
static void
prune_partitions(ForeignScanState *node, TfFdwScanState *ss)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	Datum	   *values;
	bool	   *nulls;
	ListCell   *lc;
	MemoryContext old;

	/* called from IterateForeignScan, in the per-tuple context: not there */
	MemoryContextReset(ss->prune_cxt);
	old = MemoryContextSwitchTo(ss->prune_cxt);
	values = palloc(sizeof(Datum) * Max(ss->npartcols, 1));
	nulls = palloc(sizeof(bool) * Max(ss->npartcols, 1));
	ss->scan = NIL;
	ss->npruned = ss->nincomplete = 0;
	ss->nobjects = ss->nbytes = 0;
	foreach(lc, ss->all)
	{
		TfFdwPartition *p = lfirst(lc);

		if (ss->prune)
		{
			bool		keep;

			CHECK_FOR_INTERRUPTS();
			store_partition_values(ss, p, slot, values, nulls);
			econtext->ecxt_scantuple = slot;
			keep = ExecQual(ss->prune, econtext);
			ResetExprContext(econtext);
			ExecClearTuple(slot);
			if (!keep)
			{
				ss->npruned++;
				continue;
			}
		}
		if (ss->opts.require_success && !p->has_success)
		{
			ss->nincomplete++;
			continue;
		}
		ss->scan = lappend(ss->scan, p);
		ss->nobjects += list_length(p->objects);
		ss->nbytes += p->bytes;
	}
	ss->pruned = true;
	MemoryContextSwitchTo(old);
}

/* scan state of rel, before listing (BeginForeignScan, ANALYZE) */
static TfFdwScanState *
scan_state_create(Relation rel, Oid userid)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	TfFdwScanState *ss = palloc0(sizeof(TfFdwScanState));
	ListCell   *lc;

	ss->rel = rel;
	get_table_options(rel, &ss->opts);
	ss->st = tf_storage_open_server(GetForeignTable(RelationGetRelid(rel))->serverid, userid);

	ss->npartcols = list_length(ss->opts.partcols);
	ss->partattnums = palloc0(sizeof(AttrNumber) * Max(ss->npartcols, 1));
	ss->partin = palloc0(sizeof(FmgrInfo) * Max(ss->npartcols, 1));
	ss->partioparams = palloc0(sizeof(Oid) * Max(ss->npartcols, 1));
	ss->parttypmods = palloc0(sizeof(int32) * Max(ss->npartcols, 1));
	ss->cur_values = palloc0(sizeof(Datum) * Max(ss->npartcols, 1));
	ss->cur_nulls = palloc0(sizeof(bool) * Max(ss->npartcols, 1));
	foreach(lc, ss->opts.partcols)
	{
		int			i = foreach_current_index(lc);
		AttrNumber	att = get_attnum(RelationGetRelid(rel), lfirst(lc));
		Form_pg_attribute a = TupleDescAttr(tupdesc, att - 1);
		Oid			infunc;

		ss->partattnums[i] = att;
		getTypeInputInfo(a->atttypid, &infunc, &ss->partioparams[i]);
		fmgr_info(infunc, &ss->partin[i]);
		ss->parttypmods[i] = a->atttypmod;
	}
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(tupdesc, i);
		bool		ispart = false;

		if (a->attisdropped)
			continue;
		for (int j = 0; j < ss->npartcols; j++)
			ispart |= (ss->partattnums[j] == a->attnum);
		if (!ispart)
			ss->attnamelist = lappend(ss->attnamelist, makeString(pstrdup(NameStr(a->attname))));
	}

	ss->prune_cxt = AllocSetContextCreate(CurrentMemoryContext, "taskflow archive scan list",
										  ALLOCSET_SMALL_SIZES);
	ss->part_cxt = AllocSetContextCreate(CurrentMemoryContext, "taskflow archive partition",
										 ALLOCSET_DEFAULT_SIZES);
	ss->obj_cxt = AllocSetContextCreate(CurrentMemoryContext, "taskflow archive object",
										ALLOCSET_DEFAULT_SIZES);
	ss->cur_part = -1;
	return ss;
}

static void
tfBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	RangeTblEntry *rte = exec_rt_fetch(plan->scan.scanrelid, node->ss.ps.state);
	/* the querying role, or the owner of a view the table is read through */
	TfFdwScanState *ss = scan_state_create(node->ss.ss_currentRelation,
										   OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId());

	node->fdw_state = ss;
	ss->listprefix = strVal(linitial(plan->fdw_private));
	if (plan->fdw_exprs != NIL)
		ss->prune = ExecInitQual(plan->fdw_exprs, &node->ss.ps);

	/*
	 * The listing, also for EXPLAIN (it shows what would be read).  Pruning
	 * waits for the first row: executor parameters (a correlated subquery's)
	 * have no value yet; EXPLAIN without ANALYZE prunes now if it can.
	 */
	ss->all = list_partitions(ss->st, &ss->opts, ss->listprefix);
	ss->exec_params = has_exec_params((Node *) plan->fdw_exprs, NULL);
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) && !ss->exec_params)
		prune_partitions(node, ss);
}

/* close the current object (after its end: verify it) */
static void
end_object(TfFdwScanState *ss, bool complete)
{
	if (ss->cstate)
	{
		EndCopyFrom(ss->cstate);
		ss->cstate = NULL;
	}
	if (ss->src && complete)
		tf_import_source_end(ss->st, ss->src, ss->obj);
	else if (ss->src)
		tf_import_source_close(ss->src);
	ss->src = NULL;
	ss->obj = NULL;
	MemoryContextReset(ss->obj_cxt);
}

/* the parts of partition p: from its manifest (checked against the listing) or the listing */
static List *
partition_parts(TfFdwScanState *ss, TfFdwPartition *p, bool *header)
{
	List	   *parts = NIL;
	ListCell   *lc;

	*header = ss->opts.header;
	if (p->has_manifest)
	{
		bool		found;

		parts = tf_import_parts_from_manifest(ss->st, p->dir, ss->opts.format, header, &found);
		if (found)
		{
			foreach(lc, parts)
			{
				TfImportPart *ip = lfirst(lc);
				TfObjectInfo *info = NULL;
				ListCell   *lc2;

				foreach(lc2, p->objects)
					if (strcmp(((TfObjectInfo *) lfirst(lc2))->key, ip->key) == 0)
						info = lfirst(lc2);
				if (info == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("object \"%s\" listed in the manifest is missing",
									tf_storage_describe(ss->st, ip->key)),
							 errhint("The archive under \"%s\" is damaged.",
									 tf_storage_describe(ss->st, p->dir))));
				if (ip->bytes >= 0 && info->size != ip->bytes)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("object \"%s\" has %lld bytes, the manifest says %lld",
									tf_storage_describe(ss->st, ip->key),
									(long long) info->size, (long long) ip->bytes),
							 errhint("The archive under \"%s\" is damaged.",
									 tf_storage_describe(ss->st, p->dir))));
			}
			return parts;
		}
	}
	foreach(lc, p->objects)
	{
		TfObjectInfo *info = lfirst(lc);
		TfImportPart *ip = palloc0(sizeof(TfImportPart));

		ip->key = info->key;
		ip->bytes = info->size;
		ip->gz = ss->opts.format == TF_FORMAT_CSV_GZ;
		ip->zst = ss->opts.format == TF_FORMAT_CSV_ZST;
		parts = lappend(parts, ip);
	}
	return parts;
}

/* open the next object to read; false at the end of the scan */
static bool
next_object(TfFdwScanState *ss)
{
	MemoryContext old;
	List	   *opts;

	while (ss->cur_part < 0 || ss->cur_obj >= list_length(ss->cur_parts))
	{
		TfFdwPartition *p;

		if (ss->cur_part + 1 >= list_length(ss->scan))
			return false;
		ss->cur_part++;
		MemoryContextReset(ss->part_cxt);
		p = list_nth(ss->scan, ss->cur_part);
		old = MemoryContextSwitchTo(ss->part_cxt);
		ss->cur_parts = partition_parts(ss, p, &ss->cur_header);
		store_partition_values(ss, p, NULL, ss->cur_values, ss->cur_nulls);
		MemoryContextSwitchTo(old);
		ss->cur_obj = 0;
	}
	ss->obj = list_nth(ss->cur_parts, ss->cur_obj++);
	old = MemoryContextSwitchTo(ss->obj_cxt);
	ss->src = tf_import_source_begin(ss->st, ss->obj);
	opts = list_make2(makeDefElem("format", (Node *) makeString("csv"), -1),
					  makeDefElem("header", (Node *) makeString(ss->cur_header ? "true" : "false"), -1));
	ss->cstate = BeginCopyFrom(NULL, ss->rel, NULL, NULL, false,
							   tf_import_source_activate(ss->src),
							   ss->attnamelist, opts);
	MemoryContextSwitchTo(old);
	return true;
}

/* errcontext: which object a parse or read error is about */
static void
object_error_context(void *arg)
{
	TfFdwScanState *ss = (TfFdwScanState *) arg;

	if (ss->obj)
		errcontext("archive object \"%s\"", tf_storage_describe(ss->st, ss->obj->key));
}

static TupleTableSlot *iterate(ForeignScanState *node);

static TupleTableSlot *
tfIterateForeignScan(ForeignScanState *node)
{
	ErrorContextCallback errcb;
	TupleTableSlot *slot;

	errcb.callback = object_error_context;
	errcb.arg = node->fdw_state;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	slot = iterate(node);
	error_context_stack = errcb.previous;
	return slot;
}

static TupleTableSlot *
iterate(ForeignScanState *node)
{
	TfFdwScanState *ss = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;

	if (!ss->pruned)
		prune_partitions(node, ss);
	ExecClearTuple(slot);
	for (;;)
	{
		bool		found;
		MemoryContext old;

		if (ss->cstate == NULL && !next_object(ss))
			return slot;
		CHECK_FOR_INTERRUPTS();
		/* another scan may have used the (argument-less) callback meanwhile */
		(void) tf_import_source_activate(ss->src);
		old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		found = NextCopyFrom(ss->cstate, econtext, slot->tts_values, slot->tts_isnull);
		MemoryContextSwitchTo(old);
		if (found)
		{
			for (int i = 0; i < ss->npartcols; i++)
			{
				slot->tts_values[ss->partattnums[i] - 1] = ss->cur_values[i];
				slot->tts_isnull[ss->partattnums[i] - 1] = ss->cur_nulls[i];
			}
			ExecStoreVirtualTuple(slot);
			return slot;
		}
		end_object(ss, true);
	}
}

static void
tfReScanForeignScan(ForeignScanState *node)
{
	TfFdwScanState *ss = node->fdw_state;

	end_object(ss, false);
	MemoryContextReset(ss->part_cxt);
	ss->cur_parts = NIL;
	ss->cur_part = -1;
	ss->cur_obj = 0;
	/* parameters of the conditions may have changed: prune again at the first row */
	ss->pruned = false;
}

static void
tfEndForeignScan(ForeignScanState *node)
{
	TfFdwScanState *ss = node->fdw_state;

	if (ss == NULL)
		return;
	end_object(ss, false);
}

static void
tfExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	TfFdwScanState *ss = node->fdw_state;

	ExplainPropertyText("Archive", tf_storage_describe(ss->st, ss->opts.path), es);
	ExplainPropertyText("Format", tf_format_name(ss->opts.format), es);
	if (es->verbose)
		ExplainPropertyText("Listing Prefix", ss->listprefix, es);
	if (!ss->pruned)
	{
		ExplainPropertyInteger("Partitions Listed", NULL, list_length(ss->all), es);
		ExplainPropertyText("Partitions Scanned", "decided at execution (conditions with parameters)", es);
		return;
	}
	ExplainPropertyInteger("Partitions Scanned", NULL, list_length(ss->scan), es);
	ExplainPropertyInteger("Partitions Pruned", NULL, ss->npruned, es);
	ExplainPropertyText("Partitions Skipped",
						ss->opts.require_success
						? psprintf("%d (no _SUCCESS: incomplete)", ss->nincomplete)
						: "0 (require_success off: partitions without _SUCCESS are read)",
						es);
	ExplainPropertyInteger("Objects", NULL, ss->nobjects, es);
	ExplainPropertyInteger("Object Bytes", "bytes", ss->nbytes, es);
	if (es->verbose)
	{
		StringInfoData buf;
		ListCell   *lc;

		initStringInfo(&buf);
		foreach(lc, ss->scan)
		{
			TfFdwPartition *p = lfirst(lc);

			if (foreach_current_index(lc) == TF_MAX_EXPLAIN_PARTS)
			{
				appendStringInfo(&buf, ", ... (%d more)",
								 list_length(ss->scan) - TF_MAX_EXPLAIN_PARTS);
				break;
			}
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "",
							 p->dir + strlen(ss->opts.path));
		}
		ExplainPropertyText("Scanned Partitions", buf.len ? buf.data : "(none)", es);
	}
}

/* ----------------------------------------------------------------
 * IMPORT FOREIGN SCHEMA "dla_demo" FROM SERVER s INTO public
 * ----------------------------------------------------------------
 */

/*
 * The remote schema is an archive path; the table (named after the path's
 * last component) gets the columns of a manifest of a complete partition
 * (types re-parsed: a manifest is data, never SQL), the partition columns
 * found in the key (text), the manifest's format.
 */
static List *
tfImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	char	   *path = tf_export_normalize_prefix(stmt->remote_schema);
	TfStorage  *st = tf_storage_open_server(serverOid, GetUserId());
	List	   *objs;
	char	   *mdir = NULL;
	bool		mdir_complete = false;
	Jsonb	   *jb;
	JsonbValue *v;
	JsonbIterator *it;
	JsonbValue	jv;
	JsonbIteratorToken tok;
	StringInfoData sql;
	StringInfoData pcols;
	char	   *tname;
	const char *p;
	char	   *key = NULL;
	bool		first = true;
	ListCell   *lc;

	if (path[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("IMPORT FOREIGN SCHEMA needs an archive path as the remote schema"),
				 errhint("For example IMPORT FOREIGN SCHEMA \"dla_demo\" FROM SERVER archive INTO public.")));
	foreach(lc, stmt->options)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA", lfirst_node(DefElem, lc)->defname),
				 errhint("taskflow_storage takes no import options; ALTER FOREIGN TABLE afterwards.")));

	/* a manifest, preferably of a complete partition */
	objs = tf_storage_list(st, path);
	foreach(lc, objs)
	{
		TfObjectInfo *info = lfirst(lc);
		size_t		klen = strlen(info->key);
		size_t		mlen = strlen(TF_MANIFEST_NAME);

		if (klen > mlen && strcmp(info->key + klen - mlen, TF_MANIFEST_NAME) == 0 &&
			info->key[klen - mlen - 1] == '/')
		{
			char	   *dir = pnstrdup(info->key, klen - mlen);
			bool		complete = tf_storage_head(st, psprintf("%s%s", dir, TF_SUCCESS_NAME), NULL);

			if (mdir == NULL || (complete && !mdir_complete))
			{
				mdir = dir;
				mdir_complete = complete;
			}
			if (complete)
				break;
		}
	}
	if (mdir == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("no _manifest.json under \"%s\"", tf_storage_describe(st, path)),
				 errhint("For an archive written by another tool, CREATE FOREIGN TABLE ... OPTIONS (path, format, partition_columns) yourself.")));
	jb = tf_export_read_manifest(st, mdir);
	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb) ||
		(v = getKeyJsonValueFromContainer(&jb->root, "columns", 7, NULL)) == NULL ||
		v->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("manifest \"%s\" has no columns", tf_storage_describe(st, psprintf("%s%s", mdir, TF_MANIFEST_NAME)))));

	/* table name: the path's last component */
	p = path + strlen(path) - 1;
	while (p > path && p[-1] != '/')
		p--;
	tname = pnstrdup(p, strlen(p) - 1);

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE FOREIGN TABLE %s (", quote_identifier(tname));
	it = JsonbIteratorInit(v->val.binary.data);
	{
		char	   *cname = NULL;
		char	   *ctype = NULL;

		while ((tok = JsonbIteratorNext(&it, &jv, false)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				key = pnstrdup(jv.val.string.val, jv.val.string.len);
			else if (tok == WJB_VALUE && key && jv.type == jbvString)
			{
				if (strcmp(key, "name") == 0)
					cname = pnstrdup(jv.val.string.val, jv.val.string.len);
				else if (strcmp(key, "type") == 0)
					ctype = pnstrdup(jv.val.string.val, jv.val.string.len);
			}
			else if (tok == WJB_END_OBJECT && cname)
			{
				Oid			typid = InvalidOid;
				int32		typmod = -1;

				/*
				 * a type name of this database (parsed as one, so a manifest
				 * cannot inject SQL), else text
				 */
				if (ctype != NULL)
					parseTypeString(ctype, &typid, &typmod, true);
				if (!OidIsValid(typid))
				{
					typid = TEXTOID;
					typmod = -1;
				}
				appendStringInfo(&sql, "%s%s %s", first ? "" : ", ", quote_identifier(cname),
								 format_type_with_typemod(typid, typmod));
				first = false;
				cname = ctype = NULL;
			}
		}
	}

	/* partition columns: col=value/ components between path and mdir */
	initStringInfo(&pcols);
	p = mdir + strlen(path);
	while (*p)
	{
		const char *eq = strchr(p, '=');
		const char *slash = strchr(p, '/');

		if (eq == NULL || slash == NULL || eq > slash)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
					 errmsg("\"%s\" is not a Hive partition directory under \"%s\"",
							mdir, path)));
		appendStringInfo(&pcols, "%s%.*s", pcols.len ? "," : "", (int) (eq - p), p);
		appendStringInfo(&sql, "%s%s text", first ? "" : ", ",
						 quote_identifier(pnstrdup(p, eq - p)));
		first = false;
		p = slash + 1;
	}
	appendStringInfo(&sql, ") SERVER %s OPTIONS (path %s",
					 quote_identifier(stmt->server_name), quote_literal_cstr(path));
	v = getKeyJsonValueFromContainer(&jb->root, "format", 6, NULL);
	if (v && v->type == jbvString)
	{
		char	   *f = pnstrdup(v->val.string.val, v->val.string.len);

		appendStringInfo(&sql, ", format %s", quote_literal_cstr(tf_format_name(tf_format_parse(f))));
	}
	if (pcols.len)
		appendStringInfo(&sql, ", partition_columns %s", quote_literal_cstr(pcols.data));
	appendStringInfoString(&sql, ")");
	return list_make1(sql.data);
}

/* ----------------------------------------------------------------
 * ANALYZE: a reservoir sample of every row of the complete partitions
 * ----------------------------------------------------------------
 */
static int
acquire_sample_rows(Relation rel, int elevel, HeapTuple *rows, int targrows,
					double *totalrows, double *totaldeadrows)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	TfFdwScanState *ss = scan_state_create(rel, GetUserId());
	Datum	   *values = palloc(sizeof(Datum) * tupdesc->natts);
	bool	   *nulls = palloc(sizeof(bool) * tupdesc->natts);
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	ReservoirStateData rstate;
	double		rowstoskip = -1;
	int			numrows = 0;
	ErrorContextCallback errcb;
	ListCell   *lc;

	ss->listprefix = ss->opts.path;
	ss->all = list_partitions(ss->st, &ss->opts, ss->listprefix);
	foreach(lc, ss->all)
	{
		TfFdwPartition *p = lfirst(lc);

		if (!ss->opts.require_success || p->has_success)
			ss->scan = lappend(ss->scan, p);
	}
	ss->pruned = true;

	*totalrows = 0;
	*totaldeadrows = 0;
	reservoir_init_selection_state(&rstate, targrows);
	errcb.callback = object_error_context;
	errcb.arg = ss;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	for (;;)
	{
		bool		found;
		MemoryContext old;

		vacuum_delay_point();
		if (ss->cstate == NULL && !next_object(ss))
			break;
		(void) tf_import_source_activate(ss->src);
		ResetExprContext(econtext);
		old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
		found = NextCopyFrom(ss->cstate, econtext, values, nulls);
		MemoryContextSwitchTo(old);
		if (!found)
		{
			end_object(ss, true);
			continue;
		}
		for (int i = 0; i < ss->npartcols; i++)
		{
			values[ss->partattnums[i] - 1] = ss->cur_values[i];
			nulls[ss->partattnums[i] - 1] = ss->cur_nulls[i];
		}
		if (numrows < targrows)
			rows[numrows++] = heap_form_tuple(tupdesc, values, nulls);
		else
		{
			if (rowstoskip < 0)
				rowstoskip = reservoir_get_next_S(&rstate, *totalrows, targrows);
			if (rowstoskip <= 0)
			{
				int			k = (int) (targrows * sampler_random_fract(&rstate.randstate));

				heap_freetuple(rows[k]);
				rows[k] = heap_form_tuple(tupdesc, values, nulls);
			}
			rowstoskip -= 1;
		}
		*totalrows += 1;
	}
	error_context_stack = errcb.previous;
	end_object(ss, false);
	FreeExecutorState(estate);
	ereport(elevel,
			(errmsg("\"%s\": archive has %d complete partitions, %.0f rows; %d rows in sample",
					RelationGetRelationName(rel), list_length(ss->scan), *totalrows, numrows)));
	return numrows;
}

static bool
tfAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
					  BlockNumber *totalpages)
{
	*func = acquire_sample_rows;
	*totalpages = 1;			/* only used for the progress report */
	return true;
}

PG_FUNCTION_INFO_V1(tf_storage_handler);

/* taskflow._storage_handler(): the FDW handler of taskflow_storage (read only) */
Datum
tf_storage_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	r->GetForeignRelSize = tfGetForeignRelSize;
	r->GetForeignPaths = tfGetForeignPaths;
	r->GetForeignPlan = tfGetForeignPlan;
	r->BeginForeignScan = tfBeginForeignScan;
	r->IterateForeignScan = tfIterateForeignScan;
	r->ReScanForeignScan = tfReScanForeignScan;
	r->EndForeignScan = tfEndForeignScan;
	r->ExplainForeignScan = tfExplainForeignScan;
	r->ImportForeignSchema = tfImportForeignSchema;
	r->AnalyzeForeignTable = tfAnalyzeForeignTable;
	PG_RETURN_POINTER(r);
}
