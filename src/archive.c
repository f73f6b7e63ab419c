/*-------------------------------------------------------------------------
 *
 * archive.c
 *	  The archive node kind: tf_exec_archive().
 *
 *	  Runs inside the node worker's REPEATABLE READ transaction as the flow
 *	  owner.  Renders the options, then:
 *	    1. the completed-archive guard (destructive source actions): a
 *	       completed archive is never overwritten; if the source still holds
 *	       exactly its rows (count + rows_digest of the manifest: an attempt
 *	       killed between _SUCCESS and its commit) only the source action
 *	       runs now;
 *	    2. tf_export_stage(): stale uploads / temp files of killed attempts
 *	       are removed, the rows are written as staged parts (S3 multipart
 *	       uploads not completed, hidden temp files): nothing visible;
 *	    3. the source action, not yet committed:
 *	         keep    nothing
 *	         delete  DELETE FROM table WHERE where (same snapshot as the
 *	                 export); the deleted row count must equal the exported
 *	         detach  ALTER TABLE parent DETACH PARTITION table
 *	         drop    DROP TABLE table
 *	       For detach/drop the partition is locked ACCESS EXCLUSIVE and
 *	       scanned with the latest snapshot first, so rows committed after
 *	       the export's snapshot can never be detached or dropped unarchived;
 *	    4. tf_export_publish() (complete/rename the parts, verify, manifest),
 *	       then _SUCCESS; the worker commits right after.
 *	  Any ERROR rolls the whole transaction back (source untouched) and
 *	  aborts the staged parts.  taskflow.test_pause_at names a phase to
 *	  pause at (tests kill the worker there: test/t/065_archive_crash.pl).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/regproc.h"

#include "format.h"
#include "storage.h"
#include "taskflow.h"

typedef enum TfSourceAction
{
	TF_SOURCE_KEEP,
	TF_SOURCE_DELETE,
	TF_SOURCE_DETACH,
	TF_SOURCE_DROP
} TfSourceAction;

static const char *const tf_source_names[] = {"keep", "delete", "detach", "drop"};

typedef struct TfArchiveOpts
{
	char	   *server;
	char	   *path;
	char	   *query;
	char	   *table;
	char	   *where;
	char	   *format;
	char	   *max_file_size;
	char	   *parallel;		/* processes (parexport.c), NULL: automatic */
	TfSourceAction source;
} TfArchiveOpts;

/* render a template option; NULL stays NULL */
static char *
tf_archive_render(TfNodeExec *x, const char *tmpl, const char *opt)
{
	char	   *what;

	if (tmpl == NULL)
		return NULL;
	what = psprintf("node \"%s\" option \"%s\"", x->node_name, opt);
	return tf_render(tmpl, x->vars, what);
}

static void
tf_archive_parse(TfNodeExec *x, TfArchiveOpts *o)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	char	   *source = NULL;

	memset(o, 0, sizeof(*o));
	if (x->options == NULL || !JB_ROOT_IS_OBJECT(x->options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("archive node \"%s\" has no options", x->node_name)));

	it = JsonbIteratorInit(&x->options->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *val;

		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		val = tf_jsonb_scalar_text(&v, psprintf("archive option \"%s\"", key));
		if (strcmp(key, "server") == 0)
			o->server = val;
		else if (strcmp(key, "path") == 0)
			o->path = val;
		else if (strcmp(key, "query") == 0)
			o->query = val;
		else if (strcmp(key, "table") == 0)
			o->table = val;
		else if (strcmp(key, "where") == 0)
			o->where = val;
		else if (strcmp(key, "format") == 0)
			o->format = val;
		else if (strcmp(key, "max_file_size") == 0)
			o->max_file_size = val;
		else if (strcmp(key, "source") == 0)
			source = val;
		else if (strcmp(key, "parallel") == 0)
			o->parallel = val;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\" for archive node \"%s\"", key, x->node_name),
					 errhint("Archive options are server, path, query, table, where, format, max_file_size, source and parallel.")));
	}

	/* render every string option */
	o->server = tf_archive_render(x, o->server, "server");
	o->path = tf_archive_render(x, o->path, "path");
	o->query = tf_archive_render(x, o->query, "query");
	o->table = tf_archive_render(x, o->table, "table");
	o->where = tf_archive_render(x, o->where, "where");
	o->format = tf_archive_render(x, o->format, "format");
	o->max_file_size = tf_archive_render(x, o->max_file_size, "max_file_size");
	o->parallel = tf_archive_render(x, o->parallel, "parallel");
	source = tf_archive_render(x, source, "source");

	o->source = TF_SOURCE_KEEP;
	if (source)
	{
		int			i;

		for (i = 0; i < lengthof(tf_source_names); i++)
			if (pg_strcasecmp(source, tf_source_names[i]) == 0)
				break;
		if (i == lengthof(tf_source_names))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid source action \"%s\" for archive node \"%s\"", source, x->node_name),
					 errhint("Use keep, delete, detach or drop.")));
		o->source = (TfSourceAction) i;
	}

	if (o->server == NULL || o->path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("archive node \"%s\" needs the options \"server\" and \"path\"", x->node_name)));
	if ((o->query == NULL) == (o->table == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("archive node \"%s\" needs exactly one of \"query\" and \"table\"", x->node_name)));
	if (o->where && o->table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"where\" of archive node \"%s\" needs \"table\"", x->node_name)));
	if (o->source != TF_SOURCE_KEEP && o->table == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source \"%s\" of archive node \"%s\" needs the option \"table\"",
						tf_source_names[o->source], x->node_name),
				 errhint("With \"query\" only source \"keep\" is possible.")));
	if ((o->source == TF_SOURCE_DETACH || o->source == TF_SOURCE_DROP) && o->where)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source \"%s\" of archive node \"%s\" archives a whole partition and takes no \"where\"",
						tf_source_names[o->source], x->node_name)));
}

/*
 * RangeVarGetRelidExtended callback: the flow owner's privileges on the
 * table, checked before any lock is taken (a role without rights must not
 * be able to queue a lock that blocks the table's writers).  SELECT (on the
 * table or on some column; the export checks the rest), DELETE for source
 * delete, ownership for detach/drop (DETACH also checks the parent itself).
 */
static void
tf_archive_relation_check(const RangeVar *relation, Oid relId, Oid oldRelId, void *arg)
{
	TfSourceAction source = *(TfSourceAction *) arg;
	Oid			userid = GetUserId();
	const char *need = NULL;

	if (!OidIsValid(relId))
		return;					/* RangeVarGetRelidExtended reports it */
	if ((source == TF_SOURCE_DETACH || source == TF_SOURCE_DROP) &&
		!pg_class_ownercheck(relId, userid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s to %s it", relation->relname,
						tf_source_names[source]),
				 errhint("Archive nodes run as the flow owner; source \"%s\" needs a flow owned by the table's owner.",
						 tf_source_names[source])));
	if (pg_class_aclcheck(relId, userid, ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relId, userid, ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		need = "SELECT";
	else if (source == TF_SOURCE_DELETE &&
			 pg_class_aclcheck(relId, userid, ACL_DELETE) != ACLCHECK_OK)
		need = "DELETE";
	if (need)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", relation->relname),
				 errhint("Archive nodes run as the flow owner, which needs the %s privilege on the table.",
						 need)));
}

/*
 * Resolve a (possibly qualified) relation name to its OID and quoted name:
 * privileges first, then the lock (lockmode; NoLock: the export's query
 * takes its own).
 */
static Oid
tf_archive_relation(const char *name, TfSourceAction source, LOCKMODE lockmode, char **quoted)
{
	List	   *names = stringToQualifiedNameList(name);
	RangeVar   *rv = makeRangeVarFromNameList(names);
	Oid			relid = RangeVarGetRelidExtended(rv, lockmode, 0,
												 tf_archive_relation_check, &source);

	*quoted = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										 get_rel_name(relid));
	return relid;
}

static uint64
tf_archive_spi(const char *sql, int expect)
{
	int			rc;
	uint64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute(sql, false, 0);
	if (rc != expect)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("unexpected result %s of \"%s\"", SPI_result_code_string(rc), sql)));
	n = SPI_processed;
	SPI_finish();
	return n;
}

/* count rows of a relation with the latest snapshot (after locking it) */
static int64
tf_archive_count_latest(const char *qname)
{
	SPIPlanPtr	plan;
	int			rc;
	bool		isnull;
	int64		n;
	char	   *sql = psprintf("SELECT pg_catalog.count(*) FROM %s", qname);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\"", sql);
	CommandCounterIncrement();
	rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count rows of %s", qname);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return n;
}

/*
 * Scan the tables with storage under relid (itself, or the leaves of a
 * sub-partitioned partition) with the latest snapshot, bypassing row level
 * security: *total = tuples there now, *unseen = those of them that the
 * export's (transaction) snapshot could not see, i.e. rows inserted or
 * updated after the export's snapshot was taken.  Foreign-table leaves are
 * not scanned; *has_foreign tells the caller to count them through SQL.
 * The caller holds AccessExclusiveLock on relid (so on its leaves too).
 */
static void
tf_archive_scan_latest(Oid relid, int64 *total, int64 *unseen, bool *has_foreign)
{
	Snapshot	xact = GetTransactionSnapshot();
	Snapshot	latest;
	List	   *rels = find_all_inheritors(relid, AccessExclusiveLock, NULL);
	ListCell   *lc;

	*total = *unseen = 0;
	*has_foreign = false;
	CommandCounterIncrement();
	latest = RegisterSnapshot(GetLatestSnapshot());
	foreach(lc, rels)
	{
		Relation	rel = table_open(lfirst_oid(lc), NoLock);
		TableScanDesc scan;
		TupleTableSlot *slot;

		if (rel->rd_rel->relkind == RELKIND_FOREIGN_TABLE)
			*has_foreign = true;
		if (!RELKIND_HAS_TABLE_AM(rel->rd_rel->relkind))
		{
			table_close(rel, NoLock);
			continue;
		}
		slot = table_slot_create(rel, NULL);
		scan = table_beginscan(rel, latest, 0, NULL);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			CHECK_FOR_INTERRUPTS();
			(*total)++;
			if (!table_tuple_satisfies_snapshot(rel, slot, xact))
				(*unseen)++;
		}
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		table_close(rel, NoLock);
	}
	UnregisterSnapshot(latest);
}

static void
tf_archive_source(TfNodeExec *x, TfArchiveOpts *o, Oid relid, const char *qname,
				  int64 exported)
{
	if (o->source == TF_SOURCE_KEEP)
	{
		tf_node_log(x, "source kept (source = keep)");
		return;
	}

	if (o->source == TF_SOURCE_DELETE)
	{
		char	   *sql = o->where
			? psprintf("DELETE FROM %s WHERE (%s)", qname, o->where)
			: psprintf("DELETE FROM %s", qname);
		uint64		deleted = tf_archive_spi(sql, SPI_OK_DELETE);

		if ((int64) deleted != exported)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("archive node \"%s\": deleted %llu rows but exported %lld; rolling back the delete",
							x->node_name, (unsigned long long) deleted, (long long) exported),
					 errdetail("The objects were written, but no source row was deleted."),
					 errhint("Check that the table and where options select the same rows as the export.")));
		tf_node_log(x, "deleted %llu rows from %s (= rows exported)",
					(unsigned long long) deleted, qname);
		return;
	}

	/* detach / drop: the whole partition */
	{
		Oid			parent;
		int64		now_rows;
		int64		unseen;
		bool		has_foreign;

		if (!get_rel_relispartition(relid))
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("source \"%s\" of archive node \"%s\" needs a partition, and %s is not one",
							tf_source_names[o->source], x->node_name, qname)));
		parent = get_partition_parent(relid, false);

		LockRelationOid(relid, AccessExclusiveLock);

		/*
		 * Every row the partition holds now must be one the export saw: the
		 * export's snapshot may predate our ShareLock, so a row updated (or
		 * deleted and replaced) in between would keep the count equal while
		 * the archive holds its old version.  The scan also bypasses row
		 * level security, which filtered the export (FORCE ROW LEVEL
		 * SECURITY) but does not stop DROP TABLE.
		 */
		tf_archive_scan_latest(relid, &now_rows, &unseen, &has_foreign);
		if (unseen > 0)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("archive node \"%s\": %lld row(s) of partition %s were written after the export's snapshot; not %s it",
							x->node_name, (long long) unseen, qname,
							o->source == TF_SOURCE_DROP ? "dropping" : "detaching"),
					 errhint("Rerun the node.")));
		if (has_foreign)
			now_rows = tf_archive_count_latest(qname);
		if (now_rows != exported)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("archive node \"%s\": partition %s now holds %lld rows but %lld were exported; not %s it",
							x->node_name, qname, (long long) now_rows, (long long) exported,
							o->source == TF_SOURCE_DROP ? "dropping" : "detaching"),
					 errdetail("Rows hidden from the flow owner by row level security, or written to the partition during the export, would be lost."),
					 errhint("Rerun the node; make sure the flow owner sees every row of the partition.")));

		if (o->source == TF_SOURCE_DETACH)
		{
			char	   *pname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(parent)),
														   get_rel_name(parent));

			tf_archive_spi(psprintf("ALTER TABLE %s DETACH PARTITION %s", pname, qname),
						   SPI_OK_UTILITY);
			tf_node_log(x, "detached partition %s from %s", qname, pname);
		}
		else
		{
			tf_archive_spi(psprintf("DROP TABLE %s", qname), SPI_OK_UTILITY);
			tf_node_log(x, "dropped partition %s", qname);
		}
	}
}

/* does the export query return at least one row (same snapshot)? */
static bool
tf_archive_has_rows(const char *query)
{
	bool		isnull;
	bool		result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT EXISTS (%s)", query), true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not check the archive query for rows");
	result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return result;
}

/*
 * A destructive source action must never replace a completed archive that
 * holds rows: the new export would overwrite those objects and the archived
 * rows would exist nowhere.  A rerun of an archived day (nothing left in the
 * source) is a no-op.  Source rows that are exactly the archived ones (same
 * count and row digest as the manifest: an attempt stopped between writing
 * _SUCCESS and its commit) get the source action now, without rewriting.
 * Any other rows for an archived day are an error.  Returns true when the
 * node is done.
 */
static bool
tf_archive_guard_existing(TfNodeExec *x, TfArchiveOpts *o, TfStorage *st,
						  const char *prefix, const char *query,
						  const TfExportOptions *eo, Oid relid, const char *qname)
{
	int64		archived;
	char	   *what;
	char	   *detail = NULL;

	if (o->source == TF_SOURCE_KEEP)
		return false;
	archived = tf_export_completed_rows(st, prefix);
	/* not completed, or a completed archive known to hold no row */
	if (archived == -1 || archived == 0)
		return false;
	/* _SUCCESS without a readable row count: assume it holds rows */
	if (archived == TF_COMPLETED_ROWS_UNKNOWN)
		what = psprintf("%s already holds a completed archive (a _SUCCESS object without a manifest row count)",
						tf_storage_describe(st, prefix));
	else
		what = psprintf("%s already holds a completed archive of %lld rows",
						tf_storage_describe(st, prefix), (long long) archived);
	if (!tf_archive_has_rows(query))
	{
		tf_node_log(x, "nothing to archive: no source rows, and %s (kept)", what);
		return true;
	}

	if (archived > 0)
	{
		char	   *digest = tf_export_manifest_digest(st, prefix);
		int64		rows;
		char		now[33];

		if (digest == NULL)
			detail = "The manifest has no rows_digest (written by taskflow 1.0 or another tool), so the source rows cannot be compared with the archived ones.";
		else
		{
			tf_format_digest(query, eo, &rows, now);
			if (rows == archived && strcmp(now, digest) == 0)
			{
				tf_node_log(x, "%s whose %lld rows are still in the source (count and rows_digest %s match): an earlier attempt stopped between _SUCCESS and its commit; finishing its source action without rewriting",
							what, (long long) archived, digest);
				/* the archive must still be whole before the rows go */
				tf_export_check_manifest_parts(st, prefix, eo->format, x);
				tf_archive_source(x, o, relid, qname, archived);
				x->rows = archived;
				x->bytes = 0;
				return true;
			}
			detail = psprintf("The source has %lld rows for this path (rows_digest %s), the archive %lld rows (rows_digest %s).",
							  (long long) rows, now, (long long) archived, digest);
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("archive node \"%s\": %s, and the source has other rows for this path",
					x->node_name, what),
			 errdetail("%s%sArchiving them would overwrite the archived rows and source \"%s\" would then remove the new ones, so the archived rows would exist nowhere.",
					   detail ? detail : "", detail ? " " : "",
					   tf_source_names[o->source]),
			 errhint("Archive the new rows under another path; or, if the archive really is to be replaced, delete its _SUCCESS object with taskflow.delete_object() and rerun.")));
	return false;				/* keep compiler quiet */
}

/* taskflow.test_pause_at = 'after_commit': pause once the commit is done */
static bool tf_archive_pause_commit = false;
static bool tf_archive_xact_cb_registered = false;

static void
tf_archive_xact_cb(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && tf_archive_pause_commit)
	{
		tf_archive_pause_commit = false;
		tf_test_pause("after_commit");
	}
	else if (event == XACT_EVENT_ABORT)
		tf_archive_pause_commit = false;
}

void
tf_exec_archive(TfNodeExec *x)
{
	TfArchiveOpts o;
	TfExportOptions eo;
	TfStorage  *st;
	char	   *prefix;
	char	   *query;
	char	   *qname = NULL;
	Oid			relid = InvalidOid;
	TfExportResult *volatile res = NULL;
	StringInfoData r;

	tf_archive_parse(x, &o);

	tf_export_options_init(&eo);
	eo.format = tf_format_parse(o.format);
	if (o.max_file_size)
	{
		eo.max_file_size = tf_parse_size(o.max_file_size, "max_file_size");
		if (eo.max_file_size < TF_MIN_MAX_FILE_SIZE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_file_size must be at least %lld bytes",
							(long long) TF_MIN_MAX_FILE_SIZE)));
	}
	if (o.parallel)
	{
		char	   *end;
		long		n;

		errno = 0;
		n = strtol(o.parallel, &end, 10);
		if (end == o.parallel || *end != '\0' || errno != 0 || n < 0 || n > TF_PARALLEL_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"parallel\" of archive node \"%s\" must be an integer between 0 and %d, not %s",
							x->node_name, TF_PARALLEL_MAX, o.parallel),
					 errhint("0 or 1 archives serially; leave the option out for the automatic choice.")));
		eo.parallel = (int) n;
	}
	prefix = tf_export_normalize_prefix(o.path);

	/*
	 * The export and the source action must see the same rows: that takes
	 * one snapshot for the whole transaction (the worker sets REPEATABLE
	 * READ for archive nodes).  Refuse to remove anything without it.
	 */
	if (o.source != TF_SOURCE_KEEP && !IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("archive node \"%s\" with source \"%s\" must run in a REPEATABLE READ transaction",
						x->node_name, tf_source_names[o.source])));

	if (o.table)
	{
		/* keep writers off a partition we are going to detach/drop */
		relid = tf_archive_relation(o.table, o.source,
									(o.source == TF_SOURCE_DETACH || o.source == TF_SOURCE_DROP)
									? ShareLock : NoLock,
									&qname);
		query = o.where
			? psprintf("SELECT * FROM %s WHERE (%s)", qname, o.where)
			: psprintf("SELECT * FROM %s", qname);
	}
	else
		query = o.query;

	initStringInfo(&r);
	appendStringInfo(&r, "-- archive to server %s, path %s (%s)\n%s;\n",
					 quote_identifier(o.server), prefix, tf_format_name(eo.format), query);
	if (o.source == TF_SOURCE_DELETE)
		appendStringInfo(&r, "-- then, if the upload is verified:\nDELETE FROM %s%s%s%s;\n",
						 qname, o.where ? " WHERE (" : "", o.where ? o.where : "",
						 o.where ? ")" : "");
	else if (o.source == TF_SOURCE_DETACH)
		appendStringInfo(&r, "-- then, if the upload is verified: DETACH PARTITION %s\n", qname);
	else if (o.source == TF_SOURCE_DROP)
		appendStringInfo(&r, "-- then, if the upload is verified: DROP TABLE %s\n", qname);
	x->rendered = r.data;

	st = tf_storage_open(o.server);

	tf_node_log(x, "archiving to %s, format %s, source %s",
				tf_storage_describe(st, prefix), tf_format_name(eo.format),
				tf_source_names[o.source]);

	if (!tf_archive_guard_existing(x, &o, st, prefix, query, &eo, relid, qname))
	{
		PG_TRY();
		{
			/*
			 * 1. the parts, uploaded but invisible (S3 multipart uploads not
			 * completed, hidden temporary files);
			 */
			res = tf_export_stage(st, prefix, query, &eo, x);
			x->rows = res->rows;
			x->bytes = res->bytes;

			/*
			 * 2. the source action, not yet committed: a failing delete /
			 * detach / drop leaves nothing visible behind;
			 */
			tf_archive_source(x, &o, relid, qname, res->rows);
			tf_test_pause("after_delete");

			/*
			 * 3. the commit window: complete the parts, verify them, manifest,
			 * then _SUCCESS, then the worker commits.  A crash in here leaves
			 * complete parts with the rows still in the source; the rerun
			 * rewrites them (no _SUCCESS yet) or, past _SUCCESS, finds the
			 * archive matching the source rows and only runs the source
			 * action (tf_archive_guard_existing).
			 */
			tf_export_publish(st, prefix, &eo, res, x);
			tf_node_log(x, "export complete: %d object(s), %lld rows, %lld bytes",
						list_length(res->parts), (long long) res->rows, (long long) res->bytes);
			tf_export_write_success(st, prefix, x);
		}
		PG_CATCH();
		{
			tf_export_abort(res);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	else if (x->rows < 0)
	{
		x->rows = 0;
		x->bytes = 0;
	}

	if (tf_test_pause_at && strcmp(tf_test_pause_at, "after_commit") == 0)
	{
		if (!tf_archive_xact_cb_registered)
			RegisterXactCallback(tf_archive_xact_cb, NULL);
		tf_archive_xact_cb_registered = true;
		tf_archive_pause_commit = true;
	}
}
