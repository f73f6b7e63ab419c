/*-------------------------------------------------------------------------
 *
 * copy.c
 *	  The copy node kind: rows of a query (option "query") or of a whole
 *	  table ("table") from a source database ("source_database", default:
 *	  the flow's) into a target table ("target") of a target database
 *	  ("target_database", default: the flow's), in one of four modes:
 *	    append       insert the rows;
 *	    replace      TRUNCATE the target and load it, in one transaction
 *	                 (readers see the old rows or the new ones);
 *	    upsert       load a staging temp table, then INSERT ... ON CONFLICT
 *	                 (option "key") DO UPDATE into the target;
 *	    incremental  only rows whose "watermark" column is above the mark
 *	                 kept in taskflow.copy_watermarks (minus "lookback"),
 *	                 through a staging table (upsert on "key" when given);
 *	                 the new mark is the largest value loaded.
 *
 *	  How the rows move (always streamed, never materialised):
 *	    - both sides in the flow's database: INSERT INTO ... SELECT in the
 *	      node's transaction (SPI);
 *	    - source elsewhere, target here: COPY (...) TO STDOUT on a libpq
 *	      connection to the source database, fed into CopyFrom() in this
 *	      process (as logical replication's table sync does) in the node's
 *	      transaction;
 *	    - target elsewhere: libpq connections to both databases, COPY TO
 *	      STDOUT piped into COPY FROM STDIN, in a transaction of the target
 *	      database that commits before the node's success (and the new
 *	      mark) are recorded here.
 *	  With the target in the flow's database, the load, the new mark and
 *	  the success record commit together: a failed or killed attempt leaves
 *	  neither rows nor a mark behind, and the retry neither skips nor
 *	  duplicates rows.  With the target elsewhere, a crash between the two
 *	  commits makes the retry load the same rows again, so incremental mode
 *	  there needs option "key" (an upsert makes the retry harmless).
 *
 *	  Identity: libpq connections go over the cluster's Unix socket as the
 *	  flow owner's role (no password is sent: pg_hba.conf must let the
 *	  owner in on local connections without one, e.g. trust, or peer with a
 *	  user map); the server checks LOGIN and CONNECT.  All waits are latch
 *	  waits (interruptible: cancel, node timeout, shutdown); connections are
 *	  closed on every path.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"
#include "pqclient.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "utils/regproc.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#define TF_COPY_STAGE	"pg_temp.taskflow_copy_stage"

typedef enum TfCopyMode
{
	TF_COPY_APPEND,
	TF_COPY_REPLACE,
	TF_COPY_UPSERT,
	TF_COPY_INCREMENTAL
} TfCopyMode;


/* a copy node's options, rendered */
typedef struct TfCopyOpts
{
	char	   *query;
	char	   *table;
	char	   *source_db;		/* NULL: the flow's database */
	char	   *target;
	char	   *target_db;		/* NULL: the flow's database */
	TfCopyMode	mode;
	char	   *key;
	char	   *watermark;
	char	   *lookback;
	char	   *source_server;	/* postgres_fdw servers (remote) */
	char	   *target_server;
	char	   *owner;			/* role name of the flow owner */
	char	   *this_db;		/* the flow's database */
	bool		local_source;	/* the flow's database: SPI */
	bool		local_target;
	TfConnParams src;			/* libpq sides (when not local) */
	TfConnParams dst;
} TfCopyOpts;

/* libpq connections of the running attempt (closed on every path) */
static PGconn *src_conn = NULL;
static PGconn *dst_conn = NULL;

/* CopyFrom's data source: the rest of the current row from src_conn */
static char *cb_buf = NULL;
static int	cb_len = 0;
static int	cb_off = 0;
static bool cb_done = false;
static int64 cb_bytes = 0;

static void
tf_copy_close(void)
{
	if (cb_buf)
		PQfreemem(cb_buf);
	cb_buf = NULL;
	tf_pq_close(src_conn);
	src_conn = NULL;
	tf_pq_close(dst_conn);
	dst_conn = NULL;
}

/* ---- definition-time check (node_kinds.c calls it) ---- */

void
tf_validate_copy_node(const char *what, const char *body, Jsonb *options)
{
	char	   *query = tf_node_option(options, "query");
	char	   *table = tf_node_option(options, "table");
	char	   *target = tf_node_option(options, "target");
	char	   *mode = tf_node_option(options, "mode");
	char	   *key = tf_node_option(options, "key");
	char	   *watermark = tf_node_option(options, "watermark");
	char	   *db;

	if (body != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s takes no body", what),
				 errhint("Give the source rows in options: {\"query\": \"SELECT ...\"} or {\"table\": \"t\"}.")));
	if ((query != NULL) == (table != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs exactly one of option \"query\" and option \"table\"", what),
				 errhint("e.g. options => '{\"table\": \"orders\", \"target\": \"orders\", \"target_database\": \"reporting\"}'.")));
	if ((query && query[strspn(query, " \t\r\n")] == '\0') ||
		(table && table[strspn(table, " \t\r\n")] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" of %s is empty", query ? "query" : "table", what)));
	if (target == NULL || target[strspn(target, " \t\r\n")] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s needs option \"target\"", what),
				 errhint("\"target\" is the table the rows go to, e.g. \"reporting.orders\".")));
	if (mode == NULL)
		mode = "append";
	if (strcmp(mode, "upsert") == 0 && key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s in mode upsert needs option \"key\"", what),
				 errhint("\"key\" lists the columns of a unique index of the target, e.g. \"id\" or \"region, id\".")));
	if (strcmp(mode, "incremental") == 0 && watermark == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s in mode incremental needs option \"watermark\"", what),
				 errhint("\"watermark\" is a column that grows with new rows, e.g. \"updated_at\" or \"id\".")));
	if (strcmp(mode, "incremental") != 0 &&
		(watermark != NULL || tf_node_option(options, "lookback") != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"watermark\" and \"lookback\" of %s need mode incremental", what)));
	if (key != NULL && strcmp(mode, "upsert") != 0 && strcmp(mode, "incremental") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"key\" of %s needs mode upsert or incremental", what)));
	if (key && strstr(key, "${") == NULL)
	{
		List	   *cols;
		char	   *copy = pstrdup(key);

		if (!SplitIdentifierString(copy, ',', &cols) || cols == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid key \"%s\" for %s", key, what),
					 errhint("List column names separated by commas, e.g. \"region, id\".")));
	}
	if (strcmp(mode, "incremental") == 0 && key == NULL &&
		tf_node_option(options, "lookback") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"lookback\" of %s needs option \"key\"", what),
				 errhint("Rows re-read within the lookback are merged on the key; without one they would be loaded twice.")));
	for (int i = 0; i < 2; i++)
	{
		const char *side = i == 0 ? "source" : "target";
		char	   *server = tf_node_option(options, i == 0 ? "source_server" : "target_server");

		if (server == NULL)
			continue;
		if (tf_node_option(options, i == 0 ? "source_database" : "target_database"))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s has both option \"%s_server\" and option \"%s_database\"", what, side, side),
					 errhint("A side is either a database of this cluster or a remote server.")));
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
	db = tf_node_option(options, "target_database");
	if (db == NULL)
		db = tf_node_option(options, "target_server");
	if (db && strcmp(mode, "incremental") == 0 && key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s in mode incremental into another database or server needs option \"key\"", what),
				 errhint("The load there commits before the new watermark is recorded here; a retry after a crash between the two loads rows again, and the key merges them.")));
	for (int i = 0; i < 2; i++)
	{
		db = tf_node_option(options, i == 0 ? "source_database" : "target_database");
		if (db && strstr(db, "${") == NULL && !OidIsValid(get_database_oid(db, true)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_DATABASE),
					 errmsg("database \"%s\" of %s does not exist", db, what),
					 errhint("Options \"source_database\" and \"target_database\" name databases of this cluster.")));
	}
}

/*
 * The next chunk (row) of COPY data from src_conn into cb_buf: 1 when there
 * is one, 0 when none is buffered yet and !wait, -1 at the end of the COPY
 * (whose result is checked).
 */
static int
tf_copy_chunk(const char *dbname, bool wait)
{
	for (;;)
	{
		int			len = PQgetCopyData(src_conn, &cb_buf, 1);

		if (len > 0)
		{
			cb_len = len;
			cb_off = 0;
			cb_bytes += len;
			return 1;
		}
		if (len == 0)
		{
			if (!wait)
				return 0;
			tf_pq_wait(src_conn, WL_SOCKET_READABLE, 1000);
			if (!PQconsumeInput(src_conn))
				tf_pq_error(src_conn, NULL, dbname, "reading the source rows");
			continue;
		}
		if (len == -1)
		{
			PGresult   *r = tf_pq_next_result(src_conn, dbname);

			if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
				tf_pq_error(src_conn, r, dbname, "reading the source rows");
			PQclear(r);
			while ((r = tf_pq_next_result(src_conn, dbname)) != NULL)
				PQclear(r);
			return -1;
		}
		tf_pq_error(src_conn, NULL, dbname, "reading the source rows");
	}
}

static bool
tf_copy_next_chunk(const char *dbname)
{
	return tf_copy_chunk(dbname, true) > 0;
}

static const char *cb_dbname = NULL;

/*
 * CopyFrom's data source callback: at least minread bytes (unless at the
 * end), and as many more, up to maxread, as are already buffered.
 */
static int
tf_copy_source_cb(void *outbuf, int minread, int maxread)
{
	int			n = 0;

	while (n < maxread && !cb_done)
	{
		int			take;

		if (cb_buf == NULL || cb_off >= cb_len)
		{
			int			got;

			if (cb_buf)
				PQfreemem(cb_buf);
			cb_buf = NULL;
			got = tf_copy_chunk(cb_dbname, n < minread);
			if (got == 0)
				break;
			if (got < 0)
			{
				cb_done = true;
				break;
			}
		}
		take = Min(cb_len - cb_off, maxread - n);
		memcpy((char *) outbuf + n, cb_buf + cb_off, take);
		cb_off += take;
		n += take;
	}
	return n;
}

/* ---- the node ---- */

static char *
tf_copy_render(TfNodeExec *x, Jsonb *options, const char *key)
{
	char	   *v = tf_node_option(options, key);
	char	   *what;

	if (v == NULL)
		return NULL;
	what = psprintf("node \"%s\" option \"%s\"", x->node_name, key);
	return MemoryContextStrdup(TopMemoryContext, tf_render(v, x->vars, what));
}

static void
tf_copy_parse(TfNodeExec *x, TfCopyOpts *o)
{
	char	   *mode = tf_copy_render(x, x->options, "mode");

	memset(o, 0, sizeof(*o));
	o->query = tf_copy_render(x, x->options, "query");
	o->table = tf_copy_render(x, x->options, "table");
	o->source_db = tf_copy_render(x, x->options, "source_database");
	o->target = tf_copy_render(x, x->options, "target");
	o->target_db = tf_copy_render(x, x->options, "target_database");
	o->source_server = tf_copy_render(x, x->options, "source_server");
	o->target_server = tf_copy_render(x, x->options, "target_server");
	o->key = tf_copy_render(x, x->options, "key");
	o->watermark = tf_copy_render(x, x->options, "watermark");
	o->lookback = tf_copy_render(x, x->options, "lookback");
	if (mode == NULL || strcmp(mode, "append") == 0)
		o->mode = TF_COPY_APPEND;
	else if (strcmp(mode, "replace") == 0)
		o->mode = TF_COPY_REPLACE;
	else if (strcmp(mode, "upsert") == 0)
		o->mode = TF_COPY_UPSERT;
	else if (strcmp(mode, "incremental") == 0)
		o->mode = TF_COPY_INCREMENTAL;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown mode \"%s\" for copy node \"%s\"", mode, x->node_name)));
	if (o->target == NULL || (o->query == NULL && o->table == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("copy node \"%s\" needs a source and a target", x->node_name)));
	o->owner = MemoryContextStrdup(TopMemoryContext, GetUserNameFromId(x->owner, false));
	o->this_db = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	/* "the flow's database" spelled out counts as the flow's database */
	if (o->source_db && strcmp(o->source_db, get_database_name(MyDatabaseId)) == 0)
		o->source_db = NULL;
	if (o->target_db && strcmp(o->target_db, get_database_name(MyDatabaseId)) == 0)
		o->target_db = NULL;
	o->local_source = o->source_db == NULL && o->source_server == NULL;
	o->local_target = o->target_db == NULL && o->target_server == NULL;
	/* connection parameters (catalog lookups: here, in the transaction) */
	if (o->source_server)
		tf_conn_server(&o->src, o->source_server, x->owner);
	else
		tf_conn_local(&o->src, o->source_db ? o->source_db : o->this_db, o->owner);
	if (o->target_server)
		tf_conn_server(&o->dst, o->target_server, x->owner);
	else if (o->target_db)
		tf_conn_local(&o->dst, o->target_db, o->owner);
}

/* the SELECT of the source rows, with the watermark filter */
static char *
tf_copy_source_sql(TfCopyOpts *o, const char *mark, const char *mark_type)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfo(&s, "SELECT * FROM (%s) AS taskflow_src",
					 o->query ? o->query : psprintf("SELECT * FROM %s", o->table));
	if (o->mode == TF_COPY_INCREMENTAL && mark != NULL)
	{
		appendStringInfo(&s, " WHERE taskflow_src.%s > %s::%s",
						 quote_identifier(o->watermark), quote_literal_cstr(mark), mark_type);
		if (o->lookback)
			appendStringInfo(&s, " - %s::interval", quote_literal_cstr(o->lookback));
	}
	return s.data;
}

/* the key columns, quoted and comma-separated */
static char *
tf_copy_key_list(TfCopyOpts *o, List **names)
{
	char	   *copy = pstrdup(o->key);
	List	   *cols;
	ListCell   *lc;
	StringInfoData s;

	if (!SplitIdentifierString(copy, ',', &cols) || cols == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid key \"%s\"", o->key)));
	initStringInfo(&s);
	foreach(lc, cols)
		appendStringInfo(&s, "%s%s", s.len ? ", " : "", quote_identifier(lfirst(lc)));
	*names = cols;
	return s.data;
}

/* SQL that lists the target's updatable non-key columns as "c = EXCLUDED.c" */
static char *
tf_copy_set_list_sql(TfCopyOpts *o, List *keys)
{
	StringInfoData s;
	ListCell   *lc;

	initStringInfo(&s);
	appendStringInfo(&s, "SELECT string_agg(format('%%I = EXCLUDED.%%I', a.attname, a.attname), ', ' ORDER BY a.attnum) "
					 "FROM pg_catalog.pg_attribute a WHERE a.attrelid = %s::pg_catalog.regclass "
					 "AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
					 "AND a.attname::text <> ALL (ARRAY[",
					 quote_literal_cstr(o->target));
	foreach(lc, keys)
		appendStringInfo(&s, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_literal_cstr(lfirst(lc)));
	appendStringInfoString(&s, "]::text[])");
	return s.data;
}

/* the statement that merges the staging table into the target */
static char *
tf_copy_merge_sql(TfCopyOpts *o, const char *set_list, const char *key_list)
{
	if (o->key == NULL)
		return psprintf("INSERT INTO %s SELECT * FROM " TF_COPY_STAGE, o->target);
	if (set_list == NULL)
		return psprintf("INSERT INTO %s SELECT * FROM " TF_COPY_STAGE " ON CONFLICT (%s) DO NOTHING",
						o->target, key_list);
	return psprintf("INSERT INTO %s SELECT * FROM " TF_COPY_STAGE " ON CONFLICT (%s) DO UPDATE SET %s",
					o->target, key_list, set_list);
}

static bool
tf_copy_staged(TfCopyOpts *o)
{
	return o->mode == TF_COPY_UPSERT || o->mode == TF_COPY_INCREMENTAL;
}

/* ---- target in the flow's database (inside the node's transaction) ---- */

static void
tf_spi_exec(const char *sql, int expect)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expect)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("copy node: \"%s\" failed: %s", sql, SPI_result_code_string(rc))));
}

static char *
tf_spi_value(const char *sql)
{
	char	   *v;

	if (SPI_execute(sql, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		return NULL;
	v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return v;
}

/* CopyFrom() from src_conn into relation 'name' (checked like COPY FROM) */
static uint64
tf_copy_into_local(const char *name, const char *dbname)
{
	RangeVar   *rv = makeRangeVarFromNameList(stringToQualifiedNameList(name));
	Oid			relid = RangeVarGetRelid(rv, NoLock, false);
	AclResult	acl;
	Relation	rel;
	ParseState *pstate;
	CopyFromState cstate;
	uint64		n;

	/* privileges before the lock */
	acl = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, get_relkind_objtype(get_rel_relkind(relid)), get_rel_name(relid));
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("copy node cannot load table \"%s\": it has row-level security enabled",
						get_rel_name(relid)),
				 errhint("COPY FROM is not supported with row-level security; load a table without it.")));
	rel = table_open(relid, RowExclusiveLock);
	pstate = make_parsestate(NULL);
	(void) addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	cb_dbname = dbname;
	cb_done = false;
	cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, tf_copy_source_cb, NIL, NIL);
	n = CopyFrom(cstate);
	EndCopyFrom(cstate);
	free_parsestate(pstate);
	table_close(rel, NoLock);
	return n;
}

/* ---- the executor ---- */

static void
tf_copy_read_mark(TfNodeExec *x, char **mark, char **mark_type)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(x->node_id)};

	*mark = *mark_type = NULL;
	if (SPI_execute_with_args("SELECT mark, mark_type FROM taskflow._copy_mark($1)",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._copy_mark failed");
	if (SPI_processed == 1)
	{
		char	   *m = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *t = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		*mark = m ? MemoryContextStrdup(TopMemoryContext, m) : NULL;
		*mark_type = t ? MemoryContextStrdup(TopMemoryContext, t) : NULL;
	}
}

static void
tf_copy_write_mark(TfNodeExec *x, const char *mark, const char *mark_type)
{
	Oid			argtypes[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	Oid			save_userid;
	int			save_sec;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	tf_node_as_superuser();
	values[0] = Int64GetDatum(x->node_id);
	values[1] = CStringGetTextDatum(mark);
	values[2] = CStringGetTextDatum(mark_type);
	if (SPI_execute_with_args("SELECT taskflow._copy_set_mark($1, $2, $3)",
							  3, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._copy_set_mark failed");
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * Load into the target in the flow's database, in the current transaction
 * (as the owner): returns the new mark (incremental) or NULL.
 */
static void
tf_copy_local_target(TfNodeExec *x, TfCopyOpts *o, const char *src_sql,
					 char **new_mark, char **new_type)
{
	const char *dest = tf_copy_staged(o) ? TF_COPY_STAGE : o->target;
	List	   *keys = NIL;
	char	   *key_list = o->key ? tf_copy_key_list(o, &keys) : NULL;

	if (tf_copy_staged(o))
		tf_spi_exec(psprintf("CREATE TEMP TABLE taskflow_copy_stage (LIKE %s) ON COMMIT DROP",
							 o->target), SPI_OK_UTILITY);
	if (o->mode == TF_COPY_REPLACE)
		tf_spi_exec(psprintf("TRUNCATE %s", o->target), SPI_OK_UTILITY);

	if (o->local_source)
	{
		tf_spi_exec(psprintf("INSERT INTO %s %s", dest, src_sql), SPI_OK_INSERT);
		x->rows = (int64) SPI_processed;
	}
	else
	{
		PGresult   *r;

		const char *srcl = o->src.label;

		src_conn = tf_pq_connect(&o->src, x->node_run_id);
		PQclear(tf_pq_exec(src_conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", srcl, "starting"));
		r = tf_pq_exec(src_conn, psprintf("COPY (%s) TO STDOUT", src_sql), srcl,
					   "reading the source rows");
		if (r == NULL || PQresultStatus(r) != PGRES_COPY_OUT)
			tf_pq_error(src_conn, r, srcl, "reading the source rows");
		PQclear(r);
		cb_bytes = 0;
		x->rows = (int64) tf_copy_into_local(dest, srcl);
		x->bytes = cb_bytes;
		tf_copy_close();
	}

	if (o->mode == TF_COPY_INCREMENTAL)
	{
		if (SPI_execute(psprintf("SELECT max(%s)::text, pg_catalog.pg_typeof(max(%s))::text FROM " TF_COPY_STAGE,
								 quote_identifier(o->watermark), quote_identifier(o->watermark)),
						false, 1) != SPI_OK_SELECT)
			elog(ERROR, "copy node: reading the new watermark failed");
		*new_mark = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		*new_type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	if (tf_copy_staged(o))
	{
		char	   *set_list = o->key ? tf_spi_value(tf_copy_set_list_sql(o, keys)) : NULL;

		tf_spi_exec(tf_copy_merge_sql(o, set_list, key_list), SPI_OK_INSERT);
	}
}

/*
 * Load into a target in another database over libpq, in a transaction of
 * its own there that commits here; returns the new mark (incremental).
 */
static void
tf_copy_remote_target(TfNodeExec *x, TfCopyOpts *o, const char *src_sql,
					  char **new_mark, char **new_type)
{
	const char *srcdb = o->src.label;
	const char *dstl = o->dst.label;
	const char *dest = tf_copy_staged(o) ? TF_COPY_STAGE : o->target;
	List	   *keys = NIL;
	char	   *key_list = o->key ? tf_copy_key_list(o, &keys) : NULL;
	PGresult   *r;
	char	   *tag;

	src_conn = tf_pq_connect(&o->src, x->node_run_id);
	dst_conn = tf_pq_connect(&o->dst, x->node_run_id);

	PQclear(tf_pq_exec(dst_conn, "BEGIN", dstl, "starting"));
	if (tf_copy_staged(o))
		PQclear(tf_pq_exec(dst_conn, psprintf("CREATE TEMP TABLE taskflow_copy_stage (LIKE %s) ON COMMIT DROP",
											  o->target), dstl, "creating the staging table"));
	if (o->mode == TF_COPY_REPLACE)
		PQclear(tf_pq_exec(dst_conn, psprintf("TRUNCATE %s", o->target), dstl,
						   "truncating the target"));

	PQclear(tf_pq_exec(src_conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", srcdb, "starting"));
	r = tf_pq_exec(src_conn, psprintf("COPY (%s) TO STDOUT", src_sql), srcdb, "reading the source rows");
	if (r == NULL || PQresultStatus(r) != PGRES_COPY_OUT)
		tf_pq_error(src_conn, r, srcdb, "reading the source rows");
	PQclear(r);
	r = tf_pq_exec(dst_conn, psprintf("COPY %s FROM STDIN", dest), dstl, "loading the rows");
	if (r == NULL || PQresultStatus(r) != PGRES_COPY_IN)
		tf_pq_error(dst_conn, r, dstl, "loading the rows");
	PQclear(r);

	cb_bytes = 0;
	for (;;)
	{
		if (!tf_copy_next_chunk(srcdb))
			break;
		if (PQputCopyData(dst_conn, cb_buf, cb_len) != 1)
			tf_pq_error(dst_conn, NULL, dstl, "loading the rows");
		PQfreemem(cb_buf);
		cb_buf = NULL;
	}
	if (PQputCopyEnd(dst_conn, NULL) != 1)
		tf_pq_error(dst_conn, NULL, dstl, "loading the rows");
	r = tf_pq_next_result(dst_conn, dstl);
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
		tf_pq_error(dst_conn, r, dstl, "loading the rows");
	tag = PQcmdTuples(r);
	x->rows = tag && *tag ? strtoll(tag, NULL, 10) : 0;
	x->bytes = cb_bytes;
	PQclear(r);
	while ((r = tf_pq_next_result(dst_conn, dstl)) != NULL)
		PQclear(r);

	if (o->mode == TF_COPY_INCREMENTAL)
	{
		char	   *v;

		v = tf_pq_value(dst_conn, psprintf("SELECT max(%s)::text FROM " TF_COPY_STAGE,
										   quote_identifier(o->watermark)),
						dstl, "reading the new watermark");
		*new_mark = v ? MemoryContextStrdup(TopMemoryContext, v) : NULL;
		v = tf_pq_value(dst_conn, psprintf("SELECT pg_catalog.pg_typeof(max(%s))::text FROM " TF_COPY_STAGE,
										   quote_identifier(o->watermark)),
						dstl, "reading the new watermark");
		*new_type = v ? MemoryContextStrdup(TopMemoryContext, v) : NULL;
	}
	if (tf_copy_staged(o))
	{
		char	   *set_list = o->key ? tf_pq_value(dst_conn, tf_copy_set_list_sql(o, keys),
													dstl, "reading the target's columns") : NULL;

		PQclear(tf_pq_exec(dst_conn, tf_copy_merge_sql(o, set_list, key_list), o->target_db,
						   "merging the rows"));
	}
	PQclear(tf_pq_exec(dst_conn, "COMMIT", dstl, "committing"));
	tf_copy_close();
}

static void
tf_copy_log_result(TfNodeExec *x, TfCopyOpts *o, const char *mark, const char *new_mark)
{
	if (x->bytes >= 0)
		tf_node_log(x, INT64_FORMAT " row(s), " INT64_FORMAT " byte(s) copied into %s%s%s",
					x->rows, x->bytes, o->target, o->local_target ? "" : " of ",
					o->local_target ? "" : o->dst.label);
	else
		tf_node_log(x, INT64_FORMAT " row(s) copied into %s", x->rows, o->target);
	if (o->mode == TF_COPY_INCREMENTAL)
		tf_node_log(x, "watermark %s: %s -> %s", o->watermark, mark ? mark : "(none)",
					new_mark ? new_mark : (mark ? mark : "(none)"));
}

/*
 * The copy executor (TF_XACT_OWN): see the banner for the transactions.
 */
void
tf_exec_copy(TfNodeExec *x)
{
	TfCopyOpts	o;
	char	   *mark = NULL;
	char	   *mark_type = NULL;
	char	   *new_mark = NULL;
	char	   *new_type = NULL;
	char	   *src_sql;

	PG_TRY();
	{
		tf_node_xact_begin(false);
		tf_node_as_superuser();
		tf_copy_read_mark(x, &mark, &mark_type);
		tf_node_as_owner();
		x->vars = tf_node_vars(x);
		tf_copy_parse(x, &o);
		src_sql = MemoryContextStrdup(TopMemoryContext, tf_copy_source_sql(&o, mark, mark_type));
		x->rendered = src_sql;
		tf_node_arm_timeout(x);
		tf_capture_begin(x);

		if (o.local_target)
		{
			/* one transaction: load, new mark, success */
			tf_copy_local_target(x, &o, src_sql, &new_mark, &new_type);
			tf_capture_end();
			tf_node_disarm_timeout();
			tf_copy_log_result(x, &o, mark, new_mark);
			if (new_mark)
				tf_copy_write_mark(x, new_mark, new_type);
			tf_node_succeeded_in_xact(x, true, NULL);
			tf_node_xact_commit();
		}
		else
		{
			tf_node_xact_commit();
			x->vars = NULL;		/* freed with the transaction */
			tf_copy_remote_target(x, &o, src_sql, &new_mark, &new_type);
			tf_capture_end();
			tf_node_disarm_timeout();
			tf_copy_log_result(x, &o, mark, new_mark);
			tf_node_xact_begin(false);
			if (new_mark)
				tf_copy_write_mark(x, new_mark, new_type);
			tf_node_succeeded_in_xact(x, false, "in the target");
			tf_node_xact_commit();
		}
	}
	PG_FINALLY();
	{
		tf_copy_close();
	}
	PG_END_TRY();
}
