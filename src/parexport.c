/*-------------------------------------------------------------------------
 *
 * parexport.c
 *	  Parallel export of one table (or partition): tf_parexport_write().
 *
 *	  Built on PostgreSQL's parallel infrastructure (access/parallel.h), as
 *	  nbtree's parallel index build is: the leader (the backend calling
 *	  export(), or the node worker running an archive node) creates a
 *	  parallel context whose workers run tf_parexport_worker_main; they get
 *	  the leader's transaction and active snapshots, user and GUCs, and an
 *	  ERROR in a worker is re-raised in the leader.
 *
 *	  Splitting: the query must read exactly one plain heap table (no join, sub-select,
 *	  aggregate, ORDER BY, LIMIT, DISTINCT, set operation, CTE, row lock,
 *	  inheritance child, temporary table or parallel-unsafe function).  Its
 *	  blocks [0, nblocks) are handed out in chunks through an atomic counter
 *	  in the DSM; every participant (the leader too) runs the query with the
 *	  extra qual "ctid >= '(start,0)' AND ctid < '(end,0)'" (a TID range
 *	  scan) per chunk, the chunk reaching nblocks without an upper bound, and
 *	  feeds all its chunks into its own format state (format.c): its own
 *	  parts, numbered from a shared counter so that names are distinct.
 *
 *	  Only when the planner reads the whole table anyway (a Seq Scan: no
 *	  index or bitmap scan in the plan of the query as given) and estimates
 *	  enough output (automatic choice) is the export split: a selective
 *	  where clause on an indexed column (a small partition of a big table)
 *	  stays serial, since every chunk would scan the index range again or
 *	  the whole table would be read for a few rows.
 *
 *	  Results: a worker finishes its parts staged (invisible), hands each
 *	  one off (tf_storage_writer_handoff: S3 upload id + part etags, or the
 *	  hidden temporary file) and appends a record (name, rows, bytes, md5,
 *	  sha256, token) to an arena in the DSM, then its row count and digest
 *	  sums to its slot.  The leader adopts every reported part
 *	  (tf_storage_writer_adopt), so publish and abort work as for its own
 *	  parts; the caller (export.c) writes one manifest over all of them.
 *	  On any ERROR the leader stops the workers (their own staged parts are
 *	  aborted by their memory context resets) and aborts the parts already
 *	  reported (best effort); nothing is ever visible before publish.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/parallel.h"
#include "access/relation.h"
#include "access/sysattr.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "parser/parser.h"
#include "postmaster/bgworker.h"
#include "storage/bufmgr.h"
#include "storage/shm_toc.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "format.h"

#define TF_PAR_KEY_SHARED	UINT64CONST(0x7446504152000001)
#define TF_PAR_KEY_TEXT		UINT64CONST(0x7446504152000002)

/* automatic choice: one more process per factor 3 above 64 MB of output */
#define TF_PAR_MIN_BYTES	(INT64CONST(64) * 1024 * 1024)
#define TF_PAR_CHUNK_MAX	1024	/* blocks per chunk: 8 MB */

/* one participant's totals (slot 0 the leader, 1 + ParallelWorkerNumber) */
typedef struct TfParSlot
{
	bool		done;
	int64		rows;
	uint64		sum1;
	uint64		sum2;
} TfParSlot;

/* one part handed off by a worker, in the arena; size set last */
typedef struct TfParRecord
{
	Size		size;			/* MAXALIGNed length of the record, 0 = unwritten */
	int64		rows;
	int64		bytes;
	char		name[64];
	char		md5[33];
	char		sha256[65];
	char		token[FLEXIBLE_ARRAY_MEMBER];
} TfParRecord;

typedef struct TfParShared
{
	Oid			relid;
	BlockNumber nblocks;
	BlockNumber chunk;
	TfExportOptions opts;
	int			nslots;
	pg_atomic_uint64 next;		/* next block to hand out */
	pg_atomic_uint32 partno;	/* next part number */
	slock_t		mutex;			/* protects arena_used */
	Size		arena_size;
	Size		arena_used;
	Size		arena_off;		/* offset of the arena from this struct */
	TfParSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} TfParShared;

#define TF_PAR_ARENA(sh)	((char *) (sh) + (sh)->arena_off)

PGDLLEXPORT void tf_parexport_worker_main(dsm_segment *seg, shm_toc *toc);

/* ---------- the query and its chunks ---------- */

/* errors in the query look as they do from SPI (the serial export) */
static void
tf_par_error_callback(void *arg)
{
	const char *query = (const char *) arg;
	int			syntaxerrposition = geterrposition();

	if (syntaxerrposition > 0)
	{
		errposition(0);
		internalerrposition(syntaxerrposition);
		internalerrquery(query);
	}
	else
		errcontext("SQL statement \"%s\"", query);
}

/*
 * Parse, analyze and rewrite query; if it reads exactly one plain heap
 * table in a form that can be split by block ranges, return the Query and
 * set *relid, else NULL and *why.
 */
static Query *
tf_par_analyze(const char *query, Oid *relid, const char **why)
{
	ErrorContextCallback errcb;
	List	   *raw;
	List	   *qs;
	Query	   *q;
	RangeTblEntry *rte;
	RangeTblRef *rtr;
	Relation	rel;
	bool		ok;

	*relid = InvalidOid;
	errcb.callback = tf_par_error_callback;
	errcb.arg = unconstify(char *, query);
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	raw = raw_parser(query, RAW_PARSE_DEFAULT);
	/* only a SELECT is analyzed here (no lock taken for anything else) */
	if (list_length(raw) != 1 ||
		!IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt))
	{
		error_context_stack = errcb.previous;
		*why = "not a single SELECT statement";
		return NULL;
	}
	qs = pg_analyze_and_rewrite_fixedparams(linitial_node(RawStmt, raw), query,
											NULL, 0, NULL);
	error_context_stack = errcb.previous;
	if (list_length(qs) != 1)
	{
		*why = "the query is rewritten into several";
		return NULL;
	}
	q = linitial_node(Query, qs);
	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL ||
		q->hasAggs || q->hasWindowFuncs || q->hasTargetSRFs ||
		q->hasRecursive || q->hasModifyingCTE || q->hasForUpdate ||
		q->rowMarks != NIL || q->cteList != NIL || q->groupClause != NIL ||
		q->groupingSets != NIL || q->havingQual != NULL ||
		q->distinctClause != NIL || q->sortClause != NIL ||
		q->limitCount != NULL || q->limitOffset != NULL ||
		q->setOperations != NULL)
	{
		*why = "the query is more than a scan of one table (aggregate, ORDER BY, LIMIT, ...)";
		return NULL;
	}
	if (list_length(q->rtable) != 1 || q->jointree == NULL ||
		list_length(q->jointree->fromlist) != 1 ||
		!IsA(linitial(q->jointree->fromlist), RangeTblRef))
	{
		*why = "the query reads more than one table";
		return NULL;
	}
	rtr = linitial_node(RangeTblRef, q->jointree->fromlist);
	rte = rt_fetch(rtr->rtindex, q->rtable);
	if (rte->rtekind != RTE_RELATION || rte->tablesample != NULL ||
		rte->relkind != RELKIND_RELATION)
	{
		*why = "the query does not read a plain table";
		return NULL;
	}
	if (rte->inh && has_subclass(rte->relid))
	{
		*why = "the table has inheritance children";
		return NULL;
	}
	/*
	 * A sub-select (in the where clause or a row security policy) may read a
	 * temporary table, which parallel workers cannot: serial.
	 */
	if (q->hasSubLinks)
	{
		*why = "the query or a row security policy of its table has a sub-select";
		return NULL;
	}
	if (max_parallel_hazard(q) != PROPARALLEL_SAFE)
	{
		*why = "the query uses a function that is not parallel safe";
		return NULL;
	}
	/* already locked by the analysis */
	rel = relation_open(rte->relid, NoLock);
	ok = rel->rd_rel->relam == HEAP_TABLE_AM_OID &&
		rel->rd_rel->relpersistence != RELPERSISTENCE_TEMP;
	relation_close(rel, NoLock);
	if (!ok)
	{
		*why = "the table is temporary or not a heap table";
		return NULL;
	}
	*relid = rte->relid;
	return q;
}

static Const *
tf_par_tid(BlockNumber blk)
{
	ItemPointer tid = palloc(sizeof(ItemPointerData));

	ItemPointerSet(tid, blk, 0);
	return makeConst(TIDOID, -1, InvalidOid, sizeof(ItemPointerData),
					 PointerGetDatum(tid), false, false);
}

/* q restricted to the blocks [start, end) (end InvalidBlockNumber: no end) */
static Query *
tf_par_chunk_query(Query *q, BlockNumber start, BlockNumber end)
{
	Query	   *cq = copyObject(q);
	int			rtindex = linitial_node(RangeTblRef, cq->jointree->fromlist)->rtindex;
	Var		   *ctid = makeVar(rtindex, SelfItemPointerAttributeNumber, TIDOID, -1,
							   InvalidOid, 0);
	List	   *quals;

	quals = list_make1(make_opclause(TIDGreaterEqOperator, BOOLOID, false,
									 (Expr *) ctid, (Expr *) tf_par_tid(start),
									 InvalidOid, InvalidOid));
	if (end != InvalidBlockNumber)
		quals = lappend(quals,
						make_opclause(TIDLessOperator, BOOLOID, false,
									  (Expr *) copyObject(ctid), (Expr *) tf_par_tid(end),
									  InvalidOid, InvalidOid));
	if (cq->jointree->quals)
		quals = lappend(quals, cq->jointree->quals);
	cq->jointree->quals = (Node *) make_ands_explicit(quals);
	return cq;
}

/*
 * Read a chunk through a bulk-read buffer ring, as a Seq Scan of the table
 * does (and COPY TO with it): a TID range scan is begun without
 * SO_ALLOW_STRAT, so each chunk would go through the whole buffer pool,
 * evicting it, and every participant would take a page fault on each
 * shared buffer it touches for the first time (7.5 % of a parallel
 * export's CPU).  The TidRangeScan node begins its scan lazily; begun here
 * with SO_ALLOW_STRAT added, its first fetch rescans with the chunk's range
 * (table_rescan_tidrange), and that rescan (initscan) takes a BAS_BULKREAD
 * ring under the rule of a Seq Scan: only for a table of more than a
 * quarter of shared_buffers, not a temporary one.  The tuples and their
 * order are the same; heap_endscan frees the ring.
 */
static bool
tf_par_bulkread_walker(PlanState *ps, void *context)
{
	if (ps == NULL)
		return false;
	if (IsA(ps, TidRangeScanState) &&
		((TidRangeScanState *) ps)->ss.ss_currentScanDesc == NULL)
	{
		ScanState  *ss = &((TidRangeScanState *) ps)->ss;
		ItemPointerData first;
		TableScanDesc scan;

		/* a placeholder range: the node's first fetch sets the chunk's */
		ItemPointerSet(&first, 0, FirstOffsetNumber);
		scan = table_beginscan_tidrange(ss->ss_currentRelation,
										ps->state->es_snapshot,
										&first, &first);
		scan->rs_flags |= SO_ALLOW_STRAT;
		ss->ss_currentScanDesc = scan;
	}
	return planstate_tree_walker(ps, tf_par_bulkread_walker, context);
}

/* plan and run one chunk into dest, with the active snapshot */
static void
tf_par_run_chunk(Query *q, const char *src, BlockNumber start, BlockNumber end,
				 DestReceiver *dest)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "taskflow export chunk",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PlannedStmt *ps = pg_plan_query(tf_par_chunk_query(q, start, end), src, 0, NULL);
	QueryDesc  *qd = CreateQueryDesc(ps, src, GetActiveSnapshot(), InvalidSnapshot,
									 dest, NULL, NULL, 0);

	ExecutorStart(qd, 0);
	tf_par_bulkread_walker(qd->planstate, NULL);
	ExecutorRun(qd, ForwardScanDirection, 0, true);
	ExecutorFinish(qd);
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* does the plan read the table through an index (a selective query)? */
static bool
tf_par_plan_uses_index(Plan *plan)
{
	if (plan == NULL)
		return false;
	switch (nodeTag(plan))
	{
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapHeapScan:
		case T_BitmapIndexScan:
		case T_TidScan:
		case T_TidRangeScan:
			return true;
		default:
			break;
	}
	return tf_par_plan_uses_index(plan->lefttree) ||
		tf_par_plan_uses_index(plan->righttree);
}

/* ---------- one participant ---------- */

/*
 * Export chunks until none is left; a worker then hands its parts off to
 * the leader through the arena, the leader keeps its own.
 */
static TfExportResult *
tf_par_participate(TfParShared *sh, TfStorage *st, const char *prefix,
				   const char *query, int slot)
{
	TfFormatState *f = tf_format_begin(st, prefix, &sh->opts, &sh->partno);
	TfExportResult *res = NULL;
	Oid			relid;
	const char *why = NULL;
	Query	   *q = tf_par_analyze(query, &relid, &why);

	/* the same query as the leader's (search_path etc. are the leader's) */
	if (q == NULL || relid != sh->relid)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("parallel export: a worker sees another query than the leader")));
	/* tests: worker 2 keeps running until it is terminated (at most 60 s) */
	if (slot == 2 && tf_test_pause_at &&
		(strcmp(tf_test_pause_at, "parallel_leader_error") == 0 ||
		 strcmp(tf_test_pause_at, "parallel_leader") == 0))
		for (int i = 0; i < 6000; i++)
		{
			CHECK_FOR_INTERRUPTS();
			pg_usleep(10000L);
		}
	PG_TRY();
	{
		bool		first = true;

		for (;;)
		{
			uint64		start = pg_atomic_fetch_add_u64(&sh->next, sh->chunk);
			uint64		end = start + sh->chunk;

			if (start >= sh->nblocks)
				break;
			CHECK_FOR_INTERRUPTS();
			/* the last chunk is open-ended: nothing past nblocks is lost */
			tf_par_run_chunk(q, query, (BlockNumber) start,
							 end >= sh->nblocks ? InvalidBlockNumber : (BlockNumber) end,
							 tf_format_receiver(f));
			if (first && slot > 0 && tf_test_pause_at &&
				strcmp(tf_test_pause_at, "parallel_worker_error") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("taskflow test error in parallel export worker %d", slot)));
			first = false;
		}
		res = tf_format_finish(f, false);

		if (slot > 0)
		{
			ListCell   *lc;

			foreach(lc, res->parts)
			{
				TfPartInfo *p = lfirst(lc);
				char	   *token = tf_storage_writer_handoff(p->staged);
				Size		len = MAXALIGN(offsetof(TfParRecord, token) + strlen(token) + 1);
				Size		off;
				TfParRecord *r;

				p->staged = NULL;
				SpinLockAcquire(&sh->mutex);
				off = sh->arena_used;
				if (off + len <= sh->arena_size)
					sh->arena_used += len;
				SpinLockRelease(&sh->mutex);
				if (off + len > sh->arena_size)
				{
					/*
					 * Not reported, so the leader cannot abort it: take it
					 * back and abort it here (the parts reported before it
					 * are the leader's to abort).
					 */
					tf_storage_writer_abort(tf_storage_writer_adopt(st, p->key, token, p->bytes));
					ereport(ERROR,
							(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							 errmsg("parallel export: too many parts to report"),
							 errhint("Raise max_file_size or set the option parallel to 1.")));
				}
				r = (TfParRecord *) (TF_PAR_ARENA(sh) + off);
				r->rows = p->rows;
				r->bytes = p->bytes;
				strlcpy(r->name, p->name, sizeof(r->name));
				memcpy(r->md5, p->md5, sizeof(r->md5));
				memcpy(r->sha256, p->sha256, sizeof(r->sha256));
				strcpy(r->token, token);
				pg_write_barrier();
				r->size = len;
			}
		}
		sh->slots[slot].rows = res->rows;
		sh->slots[slot].sum1 = res->sum1;
		sh->slots[slot].sum2 = res->sum2;
		pg_write_barrier();
		sh->slots[slot].done = true;
	}
	PG_CATCH();
	{
		tf_format_abort(f);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return res;
}

void
tf_parexport_worker_main(dsm_segment *seg, shm_toc *toc)
{
	TfParShared *sh = shm_toc_lookup(toc, TF_PAR_KEY_SHARED, false);
	char	   *server = shm_toc_lookup(toc, TF_PAR_KEY_TEXT, false);
	char	   *prefix = server + strlen(server) + 1;
	char	   *query = prefix + strlen(prefix) + 1;
	TfStorage  *st = tf_storage_open(server);

	tf_par_participate(sh, st, prefix, query, ParallelWorkerNumber + 1);
}

/* ---------- the leader ---------- */

/* tests: a failure in the leader's adoption of reported parts */
static bool
tf_par_test_adopt_error(void)
{
	return tf_test_pause_at && strcmp(tf_test_pause_at, "parallel_adopt_error") == 0;
}

/*
 * Adopt the parts the workers reported, appending them to res->parts;
 * from *done on (records before it were adopted already).  *done moves past
 * a record only once its part is in res->parts (so the caller's abort of
 * res covers it and the abort pass below does not adopt it again).
 */
static void
tf_par_adopt(TfParShared *sh, TfStorage *st, const char *prefix,
			 TfExportResult *res, Size *done)
{
	while (*done < sh->arena_used)
	{
		TfParRecord *r = (TfParRecord *) (TF_PAR_ARENA(sh) + *done);
		TfPartInfo *p;

		pg_read_barrier();
		if (r->size == 0)
			break;				/* reserved, never written */
		if (*done > 0 && tf_par_test_adopt_error())
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("taskflow test error adopting a part of a parallel export")));
		p = palloc0(sizeof(TfPartInfo));
		p->name = pstrdup(r->name);
		p->key = psprintf("%s%s", prefix, r->name);
		p->rows = r->rows;
		p->bytes = r->bytes;
		memcpy(p->md5, r->md5, sizeof(p->md5));
		memcpy(p->sha256, r->sha256, sizeof(p->sha256));
		p->staged = tf_storage_writer_adopt(st, p->key, r->token, r->bytes);
		res->parts = lappend(res->parts, p);
		res->bytes += p->bytes;
		*done += r->size;
	}
}

/*
 * On an ERROR: abort every reported part from done on, each on its own;
 * a failure (logged) does not stop the others.
 */
static void
tf_par_abort_reported(TfParShared *sh, TfStorage *st, const char *prefix, Size done)
{
	bool		first = true;
	uint32		holdoff = InterruptHoldoffCount;

	while (done < sh->arena_used)
	{
		TfParRecord *r = (TfParRecord *) (TF_PAR_ARENA(sh) + done);
		MemoryContext cxt = CurrentMemoryContext;

		pg_read_barrier();
		if (r->size == 0)
			break;				/* reserved, never written */
		done += r->size;
		PG_TRY();
		{
			tf_storage_writer_abort(tf_storage_writer_adopt(st, psprintf("%s%s", prefix, r->name),
															r->token, r->bytes));
			if (first && tf_par_test_adopt_error())
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("taskflow test error aborting a part of a parallel export")));
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/* (an ERROR resets the holdoff count: the caller holds interrupts) */
			InterruptHoldoffCount = holdoff;
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			ereport(LOG,
					(errmsg("parallel export: could not abort part \"%s%s\": %s",
							prefix, r->name, edata->message)));
			FreeErrorData(edata);
		}
		PG_END_TRY();
		first = false;
	}
}

/*
 * The leader's note of what it adopted, for tf_par_on_detach: when the
 * leader's transaction ends without its PG_CATCH (a FATAL: the backend
 * terminated, cancel_run of an archive node), the parallel context is
 * destroyed during the abort and its segment detached; the parts the
 * workers reported and the leader had not adopted yet are aborted then.
 */
typedef struct TfParLeader
{
	ParallelContext *pcxt;
	TfParShared *sh;
	TfStorage  *st;
	const char *prefix;
	Size		done;			/* arena offset adopted (or aborted) up to */
	bool		armed;
} TfParLeader;

static void
tf_par_on_detach(dsm_segment *seg, Datum arg)
{
	TfParLeader *ls = (TfParLeader *) DatumGetPointer(arg);

	if (!ls->armed)
		return;
	ls->armed = false;
	HOLD_INTERRUPTS();
	/* (terminated already: wait, so that none reports a part after this) */
	for (int i = 0; i < ls->pcxt->nworkers_launched; i++)
		if (ls->pcxt->worker[i].bgwhandle)
		{
			TerminateBackgroundWorker(ls->pcxt->worker[i].bgwhandle);
			(void) WaitForBackgroundWorkerShutdown(ls->pcxt->worker[i].bgwhandle);
		}
	tf_par_abort_reported(ls->sh, ls->st, ls->prefix, ls->done);
	RESUME_INTERRUPTS();
}

static int
tf_par_part_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(((TfPartInfo *) lfirst(a))->name, ((TfPartInfo *) lfirst(b))->name);
}

/*
 * How many processes: 0/1 serial; -1 automatic: 1 below TF_PAR_MIN_BYTES of
 * estimated output, then one more per factor 3 (as PostgreSQL sizes a
 * parallel scan); always at most 1 + max_parallel_workers.
 */
static int
tf_par_participants(int want, double est_bytes)
{
	int			n;

	if (want == 0 || want == 1)
		return 1;
	if (want > 1)
		n = want;
	else if (est_bytes < (double) TF_PAR_MIN_BYTES)
		return 1;
	else
		n = 2 + (int) floor(log(est_bytes / (double) TF_PAR_MIN_BYTES) / log(3.0));
	return Min(n, 1 + max_parallel_workers);
}

TfExportResult *
tf_parexport_write(TfStorage *st, const char *prefix, const char *query,
				   const TfExportOptions *o)
{
	const char *server = tf_storage_name(st);
	Oid			relid;
	const char *why = NULL;
	Query	   *q;
	PlannedStmt *ps;
	double		est_bytes;
	int			nparticipants;
	Relation	rel;
	BlockNumber nblocks;
	ParallelContext *volatile pcxt = NULL;
	TfParShared *sh;
	Size		shsize,
				arena,
				textlen;
	char	   *text;
	TfExportResult *res = NULL;
	TfExportResult *volatile lres = NULL;
	TfParLeader *ls;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (o->parallel == 0 || o->parallel == 1)
		return NULL;
	if (IsInParallelMode() || !IsUnderPostmaster)
		return NULL;

	q = tf_par_analyze(query, &relid, &why);
	if (q == NULL)
	{
		if (o->parallel > 1)
			ereport(NOTICE,
					(errmsg("export runs serially: %s", why)));
		return NULL;
	}
	ps = pg_plan_query(copyObject(q), query, 0, NULL);
	if (tf_par_plan_uses_index(ps->planTree))
	{
		if (o->parallel > 1)
			ereport(NOTICE,
					(errmsg("export runs serially: the planner reads the table through an index"),
					 errdetail("A split by block ranges pays off when the whole table is read.")));
		return NULL;
	}
	est_bytes = ps->planTree->plan_rows * Max(ps->planTree->plan_width, 1);
	nparticipants = tf_par_participants(o->parallel, est_bytes);
	rel = relation_open(relid, NoLock);
	/* the snapshot first, then the size: rows it sees lie below nblocks */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	nblocks = RelationGetNumberOfBlocks(rel);
	relation_close(rel, NoLock);
	if (nparticipants < 2 || nblocks < (BlockNumber) nparticipants)
	{
		PopActiveSnapshot();
		return NULL;
	}

	EnterParallelMode();
	pcxt = CreateParallelContext("taskflow", "tf_parexport_worker_main",
								 nparticipants - 1);
	/* room for the parts reported: 8 kB each, twice the estimated count */
	arena = Max((Size) 1024 * 1024,
				(Size) (2 * (est_bytes / o->max_file_size + nparticipants)) * 8192);
	arena = Min(arena, (Size) 64 * 1024 * 1024);
	shsize = MAXALIGN(add_size(offsetof(TfParShared, slots),
							   mul_size(sizeof(TfParSlot), nparticipants)));
	textlen = strlen(server) + strlen(prefix) + strlen(query) + 3;
	shm_toc_estimate_chunk(&pcxt->estimator, add_size(shsize, arena));
	shm_toc_estimate_chunk(&pcxt->estimator, textlen);
	shm_toc_estimate_keys(&pcxt->estimator, 2);
	InitializeParallelDSM(pcxt);

	sh = shm_toc_allocate(pcxt->toc, add_size(shsize, arena));
	memset(sh, 0, add_size(shsize, arena));
	sh->relid = relid;
	sh->nblocks = nblocks;
	/* small chunks for a small table, so that every process gets some */
	sh->chunk = Max(1, Min(TF_PAR_CHUNK_MAX, nblocks / (nparticipants * 4)));
	sh->opts = *o;
	sh->opts.staged = true;
	sh->nslots = nparticipants;
	pg_atomic_init_u64(&sh->next, 0);
	pg_atomic_init_u32(&sh->partno, 0);
	SpinLockInit(&sh->mutex);
	sh->arena_size = arena;
	sh->arena_used = 0;
	sh->arena_off = shsize;
	shm_toc_insert(pcxt->toc, TF_PAR_KEY_SHARED, sh);
	text = shm_toc_allocate(pcxt->toc, textlen);
	strcpy(text, server);
	strcpy(text + strlen(server) + 1, prefix);
	strcpy(text + strlen(server) + strlen(prefix) + 2, query);
	shm_toc_insert(pcxt->toc, TF_PAR_KEY_TEXT, text);

	ls = palloc0(sizeof(TfParLeader));
	ls->pcxt = pcxt;
	ls->sh = sh;
	ls->st = st;
	ls->prefix = prefix;
	ls->done = 0;
	ls->armed = pcxt->seg != NULL;	/* (no segment: no workers either) */
	if (ls->armed)
		on_dsm_detach(pcxt->seg, tf_par_on_detach, PointerGetDatum(ls));

	LaunchParallelWorkers(pcxt);

	PG_TRY();
	{
		/* tests: every worker gets a chunk when the leader waits for them */
		if (tf_test_pause_at && pcxt->nworkers_launched > 0 &&
			(strcmp(tf_test_pause_at, "parallel_attach") == 0 ||
			 strcmp(tf_test_pause_at, "parallel_worker_error") == 0))
			WaitForParallelWorkersToAttach(pcxt);
		lres = tf_par_participate(sh, st, prefix, query, 0);
		/*
		 * tests: the leader fails once worker 1 has reported its parts,
		 * while worker 2 is still running (tf_par_participate)
		 */
		if (tf_test_pause_at && (strcmp(tf_test_pause_at, "parallel_leader_error") == 0 ||
								 strcmp(tf_test_pause_at, "parallel_leader") == 0))
		{
			for (int i = 0; i < 6000 && pcxt->nworkers_launched > 0 && !sh->slots[1].done; i++)
			{
				CHECK_FOR_INTERRUPTS();
				pg_usleep(10000L);
			}
			/* (parallel_leader: the test terminates this backend here) */
			tf_test_pause("parallel_leader");
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("taskflow test error in the parallel export leader")));
		}
		WaitForParallelWorkersToFinish(pcxt);
		for (int i = 0; i < pcxt->nworkers_launched; i++)
			if (!sh->slots[i + 1].done)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("parallel export worker %d did not finish its share", i + 1)));

		res = lres;
		tf_par_adopt(sh, st, prefix, res, &ls->done);
		for (int i = 1; i <= pcxt->nworkers_launched; i++)
		{
			res->rows += sh->slots[i].rows;
			res->sum1 += sh->slots[i].sum1;
			res->sum2 += sh->slots[i].sum2;
		}
		/* an empty result still gives one part holding the header */
		if (res->parts == NIL)
		{
			TfFormatState *f = tf_format_begin(st, prefix, &sh->opts, &sh->partno);
			TfExportResult *e;

			tf_par_run_chunk(q, query, 0, 0, tf_format_receiver(f));
			e = tf_format_finish(f, true);
			res->parts = e->parts;
			res->bytes += e->bytes;
		}
		list_sort(res->parts, tf_par_part_cmp);
		tf_format_digest_hex(res->sum1, res->sum2, res->digest);
		res->participants = 1 + pcxt->nworkers_launched;
		{
			StringInfoData b;

			initStringInfo(&b);
			for (int i = 0; i < res->participants; i++)
				appendStringInfo(&b, "%s" INT64_FORMAT, i ? ", " : "", sh->slots[i].rows);
			ereport(DEBUG1,
					(errmsg("parallel export of %s: %d processes (%d planned), %u blocks in chunks of %u, rows per process: %s",
							get_rel_name(relid), res->participants, nparticipants,
							nblocks, sh->chunk, b.data)));
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		uint32		holdoff;

		/*
		 * Stop the workers (their unreported staged parts go with their
		 * memory), then abort what they reported and the leader did not
		 * adopt yet; best effort, each part on its own, the first error is
		 * the one reported.
		 */
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		/*
		 * Interrupts are held throughout, as during a transaction abort: the
		 * terminated workers' messages ("terminating background worker",
		 * "lost connection to parallel worker") or a cancel would otherwise
		 * be raised at the next CHECK_FOR_INTERRUPTS (any LOG line) in the
		 * middle of the aborts and stop them; they are moot now, the first
		 * error is the one reported.  Each abort is bounded (S3: a 10 s
		 * timeout per request).
		 */
		HOLD_INTERRUPTS();
		holdoff = InterruptHoldoffCount;
		/* the leader's own parts and the adopted ones */
		PG_TRY();
		{
			tf_export_abort(lres);
		}
		PG_CATCH();
		{
			/* (an ERROR resets the holdoff count) */
			InterruptHoldoffCount = holdoff;
			MemoryContextSwitchTo(oldcxt);
			FlushErrorState();
		}
		PG_END_TRY();
		for (int i = 0; i < pcxt->nworkers_launched; i++)
			if (pcxt->worker[i].bgwhandle)
			{
				TerminateBackgroundWorker(pcxt->worker[i].bgwhandle);
				(void) WaitForBackgroundWorkerShutdown(pcxt->worker[i].bgwhandle);
			}
		ls->armed = false;
		tf_par_abort_reported(sh, st, prefix, ls->done);
		RESUME_INTERRUPTS();
		ReThrowError(edata);
	}
	PG_END_TRY();

	ls->armed = false;			/* every reported part is adopted */
	DestroyParallelContext(pcxt);
	ExitParallelMode();
	PopActiveSnapshot();
	return res;
}
