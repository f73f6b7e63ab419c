/*-------------------------------------------------------------------------
 *
 * export.c
 *	  The export pipeline shared by taskflow.export() and the archive node
 *	  (stage: abort leftovers of killed attempts, write staged, invisible
 *	  parts; publish: remove _SUCCESS, complete/rename the parts, verify,
 *	  remove stale parts, _manifest.json; then _SUCCESS), the row digest
 *	  checks of a rerun, the test pauses (taskflow.test_pause_at),
 *	  option parsing (sizes, export options), and the SQL functions
 *	  taskflow.export() and taskflow.import().
 *
 *	  import() feeds each part through COPY FROM (BeginCopyFrom with a data
 *	  source callback, CSV HEADER mode), gunzipping .gz parts (and
 *	  decompressing .zst ones) on the fly and checking each part's size and md5 against the manifest when present.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <zlib.h>
#include <zstd.h>

#include "access/sysattr.h"
#include "access/table.h"
#include "commands/copy.h"
#include "common/cryptohash.h"
#include "common/md5.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "pgtime.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "format.h"

#define TF_MANIFEST		"_manifest.json"
#define TF_SUCCESS		"_SUCCESS"

PG_FUNCTION_INFO_V1(tf_export_sql);
PG_FUNCTION_INFO_V1(tf_import_sql);

/* ---------- option parsing ---------- */

int64
tf_parse_size(const char *s, const char *what)
{
	const char *p = s;
	char	   *end;
	double		num;
	int64		mult = 1;

	while (isspace((unsigned char) *p))
		p++;
	errno = 0;
	num = strtod(p, &end);
	if (end == p || errno != 0 || num < 0)
		goto bad;
	p = end;
	while (isspace((unsigned char) *p))
		p++;
	if (*p)
	{
		static const struct
		{
			const char *unit;
			int64		mult;
		}			units[] =
		{
			{"b", 1}, {"bytes", 1},
			{"k", 1024}, {"kb", 1024}, {"kib", 1024},
			{"m", 1024 * 1024}, {"mb", 1024 * 1024}, {"mib", 1024 * 1024},
			{"g", INT64CONST(1024) * 1024 * 1024}, {"gb", INT64CONST(1024) * 1024 * 1024},
			{"gib", INT64CONST(1024) * 1024 * 1024},
			{"t", INT64CONST(1024) * 1024 * 1024 * 1024},
			{"tb", INT64CONST(1024) * 1024 * 1024 * 1024},
			{"tib", INT64CONST(1024) * 1024 * 1024 * 1024},
		};
		char	   *u = pstrdup(p);
		int			n = strlen(u);
		bool		found = false;

		while (n > 0 && isspace((unsigned char) u[n - 1]))
			u[--n] = '\0';
		for (int i = 0; i < lengthof(units); i++)
			if (pg_strcasecmp(u, units[i].unit) == 0)
			{
				mult = units[i].mult;
				found = true;
				break;
			}
		if (!found)
			goto bad;
	}
	num *= mult;
	if (num > (double) PG_INT64_MAX / 2)
		goto bad;
	return (int64) num;

bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid size \"%s\" for %s", s, what),
			 errhint("Give a number of bytes or a number with a unit: B, kB, MB, GB, TB (e.g. \"256MB\").")));
	return 0;					/* keep compiler quiet */
}

void
tf_export_options_apply(TfExportOptions *o, Jsonb *options)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (options == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("export options must be a JSON object")));

	it = JsonbIteratorInit(&options->root);
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
		val = tf_jsonb_scalar_text(&v, psprintf("export option \"%s\"", key));
		if (val == NULL)
			continue;			/* null = default */

		if (strcmp(key, "max_file_size") == 0)
		{
			o->max_file_size = tf_parse_size(val, "max_file_size");
			if (o->max_file_size < TF_MIN_MAX_FILE_SIZE)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("max_file_size must be at least %lld bytes",
								(long long) TF_MIN_MAX_FILE_SIZE)));
		}
		else if (strcmp(key, "header") == 0)
		{
			if (!parse_bool(val, &o->header))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("export option \"header\" must be a boolean")));
		}
		else if (strcmp(key, "compression_level") == 0)
		{
			int			lvl = pg_strtoint32(val);

			if (lvl < 1 || lvl > 9)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("compression_level must be between 1 and 9")));
			o->compression_level = lvl;
		}
		else if (strcmp(key, "checksum") == 0)
		{
			if (pg_strcasecmp(val, "md5") == 0)
				o->checksum = TF_CHECKSUM_MD5;
			else if (pg_strcasecmp(val, "sha256") == 0)
				o->checksum = TF_CHECKSUM_SHA256;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unsupported checksum \"%s\"", val),
						 errhint("Use \"md5\" or \"sha256\".")));
		}
		else if (strcmp(key, "parallel") == 0)
		{
			char	   *end;
			long		n;

			errno = 0;
			n = strtol(val, &end, 10);
			if (end == val || *end != '\0' || errno != 0 || n < 0 || n > TF_PARALLEL_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("parallel must be an integer between 0 and %d, not \"%s\"", TF_PARALLEL_MAX, val),
						 errhint("0 or 1 exports serially; omit the option (or pass null) for the automatic choice.")));
			o->parallel = (int) n;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown export option \"%s\"", key),
					 errhint("Valid options are max_file_size, header, compression_level, checksum and parallel.")));
	}
}

char *
tf_export_normalize_prefix(const char *path)
{
	StringInfoData buf;
	const char *p = path;

	/* keys are relative (docs/storage.md): a leading '/' is refused, not stripped */
	if (*p == '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid export path \"%s\"", path),
				 errdetail("A path is a relative key prefix; it must not start with \"/\"."),
				 errhint("Leave out the leading \"/\": the path is relative to the storage server's url.")));
	initStringInfo(&buf);
	appendStringInfoString(&buf, p);
	/* collapse a trailing run of '/' into one */
	while (buf.len > 0 && buf.data[buf.len - 1] == '/')
		buf.data[--buf.len] = '\0';
	if (buf.len == 0)
		return buf.data;
	if (strstr(buf.data, "//") != NULL ||
		strcmp(buf.data, ".") == 0 || strcmp(buf.data, "..") == 0 ||
		strncmp(buf.data, "./", 2) == 0 || strncmp(buf.data, "../", 3) == 0 ||
		strstr(buf.data, "/./") != NULL || strstr(buf.data, "/../") != NULL ||
		(buf.len >= 2 && strcmp(buf.data + buf.len - 2, "/.") == 0) ||
		(buf.len >= 3 && strcmp(buf.data + buf.len - 3, "/..") == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid export path \"%s\"", path),
				 errdetail("A path is a relative key prefix with no empty, \".\" or \"..\" components.")));
	appendStringInfoChar(&buf, '/');
	return buf.data;
}

/* ---------- pipeline ---------- */

static void
tf_log(TfNodeExec *x, const char *fmt,...) pg_attribute_printf(2, 3);

static void
tf_log(TfNodeExec *x, const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;
	int			needed;

	if (x == NULL)
		return;
	initStringInfo(&buf);
	for (;;)
	{
		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	tf_node_log(x, "%s", buf.data);
	pfree(buf.data);
}

static char *
tf_iso_now(void)
{
	TimestampTz now = GetCurrentTimestamp();
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(now, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup("");
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

static void
tf_verify_parts(TfStorage *st, TfExportResult *res, TfNodeExec *x)
{
	ListCell   *lc;

	foreach(lc, res->parts)
	{
		TfPartInfo *p = lfirst(lc);
		TfObjectInfo info;
		bool		etag_checked = false;

		CHECK_FOR_INTERRUPTS();
		memset(&info, 0, sizeof(info));
		if (!tf_storage_head(st, p->key, &info))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("verification failed: object \"%s\" is missing after upload",
							tf_storage_describe(st, p->key))));
		if (info.size != p->bytes)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("verification failed: object \"%s\" has %lld bytes, %lld were written",
							tf_storage_describe(st, p->key),
							(long long) info.size, (long long) p->bytes)));
		/* e.g. a non-multipart S3 etag is the md5 of the object */
		if (tf_storage_etag_is_md5(st, info.etag))
		{
			if (pg_strcasecmp(info.etag, p->md5) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("verification failed: object \"%s\" has etag %s, md5 of the bytes written is %s",
								tf_storage_describe(st, p->key), info.etag, p->md5)));
			etag_checked = true;
		}
		if (p->etag == NULL && info.etag)
			p->etag = pstrdup(info.etag);
		tf_log(x, "verified %s: %lld bytes%s", p->key, (long long) p->bytes,
			   etag_checked ? ", etag = md5" : "");
	}
}

static bool
tf_is_part_name(const char *name)
{
	return strncmp(name, "part-", 5) == 0 && strchr(name, '/') == NULL;
}

static int
tf_remove_stale(TfStorage *st, const char *prefix, TfExportResult *res,
				TfNodeExec *x)
{
	List	   *objs = tf_storage_list(st, prefix);
	size_t		plen = strlen(prefix);
	ListCell   *lc;
	int			removed = 0;

	foreach(lc, objs)
	{
		TfObjectInfo *o = lfirst(lc);
		const char *name;
		bool		ours = false;
		ListCell   *lc2;

		if (strncmp(o->key, prefix, plen) != 0)
			continue;
		name = o->key + plen;
		if (!tf_is_part_name(name))
			continue;
		foreach(lc2, res->parts)
		{
			if (strcmp(((TfPartInfo *) lfirst(lc2))->name, name) == 0)
			{
				ours = true;
				break;
			}
		}
		if (ours)
			continue;
		tf_storage_delete(st, o->key);
		tf_log(x, "removed stale %s from an earlier attempt", o->key);
		removed++;
	}
	return removed;
}

static char *
tf_manifest_json(const TfExportOptions *o, TfExportResult *res)
{
	StringInfoData b;
	ListCell   *lc;
	bool		first;

	initStringInfo(&b);
	appendStringInfo(&b, "{\n  \"version\": 1,\n  \"format\": \"%s\",\n"
					 "  \"compression\": %s,\n  \"header\": %s,\n"
					 "  \"delimiter\": \",\",\n  \"quote\": \"\\\"\",\n"
					 "  \"null\": \"\",\n  \"encoding\": ",
					 tf_format_name(o->format),
					 o->format == TF_FORMAT_CSV_GZ ? "\"gzip\"" :
					 o->format == TF_FORMAT_CSV_ZST ? "\"zstd\"" : "null",
					 o->header ? "true" : "false");
	escape_json(&b, GetDatabaseEncodingName());
	appendStringInfo(&b, ",\n  \"created_at\": \"%s\",\n  \"rows\": " INT64_FORMAT
					 ",\n  \"rows_digest\": \"%s\""
					 ",\n  \"bytes\": " INT64_FORMAT ",\n  \"objects\": %d,\n",
					 tf_iso_now(), res->rows, res->digest, res->bytes, list_length(res->parts));
	appendStringInfoString(&b, "  \"columns\": [");
	first = true;
	foreach(lc, res->columns)
	{
		TfColumnInfo *c = lfirst(lc);

		appendStringInfoString(&b, first ? "\n    {\"name\": " : ",\n    {\"name\": ");
		escape_json(&b, c->name);
		appendStringInfoString(&b, ", \"type\": ");
		escape_json(&b, c->type);
		appendStringInfoChar(&b, '}');
		first = false;
	}
	appendStringInfoString(&b, "\n  ],\n  \"parts\": [");
	first = true;
	foreach(lc, res->parts)
	{
		TfPartInfo *p = lfirst(lc);

		appendStringInfoString(&b, first ? "\n    {\"name\": " : ",\n    {\"name\": ");
		escape_json(&b, p->name);
		appendStringInfoString(&b, ", \"key\": ");
		escape_json(&b, p->key);
		appendStringInfo(&b, ", \"rows\": " INT64_FORMAT ", \"bytes\": " INT64_FORMAT
						 ", \"md5\": \"%s\"", p->rows, p->bytes, p->md5);
		if (p->sha256[0])
			appendStringInfo(&b, ", \"sha256\": \"%s\"", p->sha256);
		appendStringInfoString(&b, ", \"etag\": ");
		if (p->etag)
			escape_json(&b, p->etag);
		else
			appendStringInfoString(&b, "null");
		appendStringInfoChar(&b, '}');
		first = false;
	}
	appendStringInfoString(&b, "\n  ]\n}\n");
	return b.data;
}

/* ---------- test pauses ---------- */

char	   *tf_test_pause_at = NULL;

void
tf_test_pause(const char *phase)
{
	if (tf_test_pause_at == NULL || strcmp(tf_test_pause_at, phase) != 0)
		return;
	ereport(LOG,
			(errmsg("taskflow test pause at %s (pid %d)", phase, MyProcPid)));
	/* bounded: a forgotten setting slows a run down, it never hangs it */
	for (int i = 0; i < 600; i++)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* ---------- the export in two steps ---------- */

TfExportResult *
tf_export_stage(TfStorage *st, const char *prefix, const char *query,
				const TfExportOptions *o, TfNodeExec *x)
{
	TfExportOptions so = *o;
	TfExportResult *res;
	int			stale;

	/* what crashed attempts left: unfinished uploads, temporary files */
	stale = tf_storage_abort_stale(st, prefix);
	if (stale > 0)
		tf_log(x, "removed %d unfinished upload(s) of an earlier attempt under %s",
			   stale, prefix);

	tf_test_pause("before_upload");

	so.staged = true;
	res = tf_parexport_write(st, prefix, query, &so);
	if (res == NULL)
		res = tf_format_write(st, prefix, query, &so);
	tf_log(x, "uploaded %d object(s) to %s (not yet visible): %lld rows, %lld bytes (%s%s)",
		   list_length(res->parts), tf_storage_describe(st, prefix),
		   (long long) res->rows, (long long) res->bytes,
		   tf_format_name(o->format),
		   res->participants > 1 ? psprintf(", %d processes", res->participants) : "");
	return res;
}

void
tf_export_publish(TfStorage *st, const char *prefix, const TfExportOptions *o,
				  TfExportResult *res, TfNodeExec *x)
{
	ListCell   *lc;
	char	   *manifest;

	/*
	 * Until here an earlier archive under prefix is untouched (the new parts
	 * are staged), so a failed rewrite leaves it complete.  From here on
	 * parts are replaced one by one: an interrupted rewrite must not look
	 * complete, so _SUCCESS goes first.  The old manifest stays until the new
	 * one replaces it, so that import() of a half-rewritten prefix fails on
	 * the old parts' sizes and md5s instead of falling back to listing part-*
	 * objects and silently reading a mix of new and old parts.
	 */
	tf_storage_delete(st, psprintf("%s%s", prefix, TF_SUCCESS));

	foreach(lc, res->parts)
	{
		TfPartInfo *p = lfirst(lc);
		char	   *etag = NULL;

		CHECK_FOR_INTERRUPTS();
		if (p->staged == NULL)
			continue;
		tf_storage_writer_publish(p->staged, &etag);
		p->staged = NULL;
		if (etag)
			p->etag = etag;
	}
	tf_log(x, "published %d object(s) under %s", list_length(res->parts), prefix);

	tf_verify_parts(st, res, x);
	res->removed = tf_remove_stale(st, prefix, res, x);
	tf_test_pause("after_parts");

	manifest = tf_manifest_json(o, res);
	tf_storage_put(st, psprintf("%s%s", prefix, TF_MANIFEST), manifest, strlen(manifest));
	tf_log(x, "wrote %s%s", prefix, TF_MANIFEST);
	tf_test_pause("after_manifest");
}

void
tf_export_abort(TfExportResult *res)
{
	ListCell   *lc;

	if (res == NULL)
		return;
	foreach(lc, res->parts)
	{
		TfPartInfo *p = lfirst(lc);

		if (p->staged)
			tf_storage_writer_abort(p->staged);
		p->staged = NULL;
	}
}

TfExportResult *
tf_export_run(TfStorage *st, const char *prefix, const char *query,
			  const TfExportOptions *o, TfNodeExec *x, bool write_success)
{
	TfExportResult *volatile res = NULL;

	PG_TRY();
	{
		res = tf_export_stage(st, prefix, query, o, x);
		tf_export_publish(st, prefix, o, res, x);
	}
	PG_CATCH();
	{
		tf_export_abort(res);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (write_success)
		tf_export_write_success(st, prefix, x);
	return res;
}

void
tf_export_write_success(TfStorage *st, const char *prefix, TfNodeExec *x)
{
	tf_storage_put(st, psprintf("%s%s", prefix, TF_SUCCESS), "", 0);
	tf_log(x, "wrote %s%s", prefix, TF_SUCCESS);
	tf_test_pause("after_success");
}

/* ---------- taskflow.export() ---------- */

/*
 * export(query text, server text, path text, format text DEFAULT 'csv',
 *		  options jsonb DEFAULT '{}') RETURNS TABLE(objects int, rows bigint, bytes bigint)
 */
Datum
tf_export_sql(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query,
			   *server,
			   *prefix;
	TfExportOptions o;
	TfStorage  *st;
	TfExportResult *res;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null",
							i == 0 ? "query" : i == 1 ? "server" : "path")));
	InitMaterializedSRF(fcinfo, 0);

	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	server = text_to_cstring(PG_GETARG_TEXT_PP(1));
	prefix = tf_export_normalize_prefix(text_to_cstring(PG_GETARG_TEXT_PP(2)));

	tf_export_options_init(&o);
	o.format = tf_format_parse(PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)));
	tf_export_options_apply(&o, PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4));

	st = tf_storage_open(server);
	res = tf_export_run(st, prefix, query, &o, NULL, true);

	values[0] = Int32GetDatum(list_length(res->parts));
	values[1] = Int64GetDatum(res->rows);
	values[2] = Int64GetDatum(res->bytes);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* ---------- taskflow.import() ---------- */

typedef struct TfImportSource
{
	TfObjectReader *r;
	bool		gz;
	bool		zs_active;
	bool		eof;			/* raw object fully read */
	z_stream	zs;
	ZSTD_DCtx  *zst;			/* csv.zst (malloc'd) */
	ZSTD_inBuffer zin;			/* csv.zst: raw bytes not yet decompressed */
	char	   *raw;
	pg_cryptohash_ctx *md5;
	int64		raw_bytes;
} TfImportSource;

#define TF_IMPORT_BUF (64 * 1024)

/* COPY's data source callback has no argument: the part being read */
static TfImportSource *tf_import_cur = NULL;

static void
tf_import_reset_callback(void *arg)
{
	TfImportSource *s = (TfImportSource *) arg;

	if (s->zs_active)
	{
		inflateEnd(&s->zs);
		s->zs_active = false;
	}
	if (s->zst)
		ZSTD_freeDCtx(s->zst);
	s->zst = NULL;
}

static size_t tf_import_raw(TfImportSource *s, char *buf, size_t len);

/* csv.zst: decompress into outbuf until minread bytes (or the end) */
static int
tf_import_read_zst(TfImportSource *s, char *outbuf, int minread, int maxread)
{
	ZSTD_outBuffer out = {outbuf, (size_t) maxread, 0};

	while ((int) out.pos < minread)
	{
		size_t		rc;

		if (s->zin.pos == s->zin.size && !s->eof)
		{
			s->zin.src = s->raw;
			s->zin.size = tf_import_raw(s, s->raw, TF_IMPORT_BUF);
			s->zin.pos = 0;
		}
		if (s->zin.pos == s->zin.size && s->eof)
			break;
		rc = ZSTD_decompressStream(s->zst, &out, &s->zin);
		if (ZSTD_isError(rc))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not decompress zstd data: %s",
							ZSTD_getErrorName(rc))));
	}
	return (int) out.pos;
}

static size_t
tf_import_raw(TfImportSource *s, char *buf, size_t len)
{
	size_t		n;

	if (s->eof)
		return 0;
	n = tf_storage_reader_read(s->r, buf, len);
	if (n == 0)
		s->eof = true;
	else
	{
		if (pg_cryptohash_update(s->md5, (uint8 *) buf, n) < 0)
			elog(ERROR, "could not update checksum");
		s->raw_bytes += n;
	}
	return n;
}

static int
tf_import_read_cb(void *outbuf, int minread, int maxread)
{
	TfImportSource *s = tf_import_cur;
	int			got = 0;

	CHECK_FOR_INTERRUPTS();
	if (s->zst)
		return tf_import_read_zst(s, (char *) outbuf, minread, maxread);
	if (!s->gz)
	{
		while (got < minread)
		{
			size_t		n = tf_import_raw(s, (char *) outbuf + got, maxread - got);

			if (n == 0)
				break;
			got += n;
		}
		return got;
	}

	s->zs.next_out = (Bytef *) outbuf;
	s->zs.avail_out = maxread;
	while ((int) (maxread - s->zs.avail_out) < minread)
	{
		int			rc;

		if (s->zs.avail_in == 0 && !s->eof)
		{
			s->zs.avail_in = tf_import_raw(s, s->raw, TF_IMPORT_BUF);
			s->zs.next_in = (Bytef *) s->raw;
		}
		if (s->zs.avail_in == 0 && s->eof)
			break;
		rc = inflate(&s->zs, Z_NO_FLUSH);
		if (rc == Z_STREAM_END)
		{
			/* concatenated gzip members are one stream */
			if (inflateReset(&s->zs) != Z_OK)
				elog(ERROR, "inflateReset failed");
			continue;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not decompress gzip data: %s",
							s->zs.msg ? s->zs.msg : "corrupt input")));
		if (rc == Z_BUF_ERROR && s->zs.avail_in == 0 && s->eof)
			break;
	}
	return maxread - s->zs.avail_out;
}

Jsonb *
tf_export_read_manifest(TfStorage *st, const char *prefix)
{
	char	   *mkey = psprintf("%s%s", prefix, TF_MANIFEST);
	TfObjectReader *r;
	StringInfoData buf;

	if (!tf_storage_head(st, mkey, NULL))
		return NULL;
	initStringInfo(&buf);
	r = tf_storage_reader_begin(st, mkey);
	for (;;)
	{
		size_t		n;

		enlargeStringInfo(&buf, 8192);
		n = tf_storage_reader_read(r, buf.data + buf.len, buf.maxlen - buf.len - 1);
		if (n == 0)
			break;
		buf.len += n;
		buf.data[buf.len] = '\0';
	}
	tf_storage_reader_end(r);
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

int64
tf_export_completed_rows(TfStorage *st, const char *prefix)
{
	Jsonb	   *jb;
	JsonbValue *v;

	if (!tf_storage_head(st, psprintf("%s%s", prefix, TF_SUCCESS), NULL))
		return -1;
	jb = tf_export_read_manifest(st, prefix);
	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return TF_COMPLETED_ROWS_UNKNOWN;
	v = getKeyJsonValueFromContainer(&jb->root, "rows", 4, NULL);
	if (v == NULL || v->type != jbvNumeric)
		return TF_COMPLETED_ROWS_UNKNOWN;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
}

char *
tf_export_manifest_digest(TfStorage *st, const char *prefix)
{
	Jsonb	   *jb = tf_export_read_manifest(st, prefix);
	JsonbValue *v;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return NULL;
	v = getKeyJsonValueFromContainer(&jb->root, "rows_digest", 11, NULL);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

List *
tf_import_parts_from_manifest(TfStorage *st, const char *prefix,
							  TfFileFormat fmt, bool *header, bool *found)
{
	char	   *mkey = psprintf("%s%s", prefix, TF_MANIFEST);
	Jsonb	   *jb;
	JsonbValue *v;
	List	   *parts = NIL;
	JsonbIterator *it;
	JsonbValue	jv;
	JsonbIteratorToken tok;
	TfImportPart *cur = NULL;
	char	   *key = NULL;
	int			depth = 0;

	*found = false;
	jb = tf_export_read_manifest(st, prefix);
	if (jb == NULL)
		return NIL;
	*found = true;

	v = getKeyJsonValueFromContainer(&jb->root, "format", 6, NULL);
	if (v && v->type == jbvString)
	{
		char	   *mf = pnstrdup(v->val.string.val, v->val.string.len);

		if (tf_format_parse(mf) != fmt)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("objects under \"%s\" are in format \"%s\", not \"%s\"",
							tf_storage_describe(st, prefix), mf, tf_format_name(fmt)),
					 errhint("Call taskflow.import(..., format => '%s').", mf)));
	}
	v = getKeyJsonValueFromContainer(&jb->root, "header", 6, NULL);
	if (v && v->type == jbvBool)
		*header = v->val.boolean;

	v = getKeyJsonValueFromContainer(&jb->root, "parts", 5, NULL);
	if (v == NULL || v->type != jbvBinary)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("manifest \"%s\" has no parts array",
						tf_storage_describe(st, mkey))));

	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &jv, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
		{
			depth++;
			if (tok == WJB_BEGIN_OBJECT && depth == 2)
			{
				cur = palloc0(sizeof(TfImportPart));
				cur->bytes = -1;
			}
		}
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
		{
			if (tok == WJB_END_OBJECT && depth == 2 && cur)
			{
				if (cur->key == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("manifest \"%s\" has a part without a name",
									tf_storage_describe(st, mkey))));
				cur->gz = (fmt == TF_FORMAT_CSV_GZ);
				cur->zst = (fmt == TF_FORMAT_CSV_ZST);
				parts = lappend(parts, cur);
				cur = NULL;
			}
			depth--;
		}
		else if (tok == WJB_KEY && depth == 2)
			key = pnstrdup(jv.val.string.val, jv.val.string.len);
		else if (tok == WJB_VALUE && depth == 2 && cur && key)
		{
			if (strcmp(key, "name") == 0 && jv.type == jbvString)
			{
				char	   *name = pnstrdup(jv.val.string.val, jv.val.string.len);

				if (!tf_is_part_name(name))
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("manifest \"%s\" names an invalid part \"%s\"",
									tf_storage_describe(st, mkey), name)));
				cur->key = psprintf("%s%s", prefix, name);
			}
			else if (strcmp(key, "bytes") == 0 && jv.type == jbvNumeric)
				cur->bytes = DatumGetInt64(DirectFunctionCall1(numeric_int8,
															   NumericGetDatum(jv.val.numeric)));
			else if (strcmp(key, "md5") == 0 && jv.type == jbvString)
				cur->md5 = pnstrdup(jv.val.string.val, jv.val.string.len);
		}
	}
	return parts;
}

int
tf_export_check_manifest_parts(TfStorage *st, const char *prefix,
							   TfFileFormat fmt, TfNodeExec *x)
{
	bool		header = true;
	bool		found;
	List	   *parts = tf_import_parts_from_manifest(st, prefix, fmt, &header, &found);
	ListCell   *lc;

	if (!found || parts == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the completed archive under \"%s\" has no manifest listing its parts",
						tf_storage_describe(st, prefix))));
	foreach(lc, parts)
	{
		TfImportPart *p = lfirst(lc);
		TfObjectInfo info;

		CHECK_FOR_INTERRUPTS();
		memset(&info, 0, sizeof(info));
		if (!tf_storage_head(st, p->key, &info))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("object \"%s\" listed in the manifest is missing",
							tf_storage_describe(st, p->key)),
					 errhint("The archive is damaged; its rows are still in the source.  Delete its _SUCCESS object with taskflow.delete_object() and rerun to write it again.")));
		if (p->bytes >= 0 && info.size != p->bytes)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("object \"%s\" has %lld bytes, the manifest says %lld",
							tf_storage_describe(st, p->key),
							(long long) info.size, (long long) p->bytes),
					 errhint("The archive is damaged; its rows are still in the source.  Delete its _SUCCESS object with taskflow.delete_object() and rerun to write it again.")));
	}
	tf_log(x, "verified the %d part(s) listed in the manifest of %s", list_length(parts),
		   tf_storage_describe(st, prefix));
	return list_length(parts);
}

static List *
tf_import_parts_from_listing(TfStorage *st, const char *prefix, TfFileFormat fmt)
{
	List	   *objs = tf_storage_list(st, prefix);
	List	   *parts = NIL;
	size_t		plen = strlen(prefix);
	const char *ext = tf_format_extension(fmt);
	size_t		elen = strlen(ext);
	int			other = 0;
	const char *other_fmt = "csv";
	ListCell   *lc;

	foreach(lc, objs)
	{
		TfObjectInfo *o = lfirst(lc);
		const char *name = o->key + plen;
		size_t		nlen;
		TfImportPart *p;

		if (strncmp(o->key, prefix, plen) != 0 || !tf_is_part_name(name))
			continue;
		nlen = strlen(name);
		if (nlen < elen || strcmp(name + nlen - elen, ext) != 0)
		{
			/* remember which format the first foreign part has, for the hint */
			if (other++ == 0)
				other_fmt = (nlen > 3 && strcmp(name + nlen - 3, ".gz") == 0) ? "csv.gz"
					: (nlen > 4 && strcmp(name + nlen - 4, ".zst") == 0) ? "csv.zst" : "csv";
			continue;
		}
		p = palloc0(sizeof(TfImportPart));
		p->key = pstrdup(o->key);
		p->bytes = -1;
		p->gz = (fmt == TF_FORMAT_CSV_GZ);
		p->zst = (fmt == TF_FORMAT_CSV_ZST);
		parts = lappend(parts, p);
	}
	if (parts == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no %s parts found under \"%s\"", tf_format_name(fmt),
						tf_storage_describe(st, prefix)),
				 other > 0 ? errhint("There are part-* objects in another format; pass format => '%s'.",
									 other_fmt) : 0));
	/* tf_storage_list returns keys in order; part numbers are zero-padded */
	return parts;
}

/*
 * A path that does not end in '/' and names an existing object is that one
 * object (a file another tool put in the bucket, as aws_s3's
 * table_import_from_s3 takes one key): a list of one part, read with the
 * given format and a header line.  NIL when path is a prefix.
 */
static List *
tf_import_single_object(TfStorage *st, const char *path, TfFileFormat fmt)
{
	TfObjectInfo info;
	TfImportPart *p;
	size_t		len = strlen(path);

	if (len == 0 || path[len - 1] == '/' || !tf_storage_head(st, path, &info))
		return NIL;
	if (fmt == TF_FORMAT_CSV && len > 3 && strcmp(path + len - 3, ".gz") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("object %s looks gzip-compressed but format is csv",
						tf_storage_describe(st, path)),
				 errhint("Pass format => 'csv.gz'.")));
	if (fmt == TF_FORMAT_CSV && len > 4 && strcmp(path + len - 4, ".zst") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("object %s looks zstd-compressed but format is csv",
						tf_storage_describe(st, path)),
				 errhint("Pass format => 'csv.zst'.")));
	p = palloc0(sizeof(TfImportPart));
	p->key = pstrdup(path);
	p->bytes = info.size;
	p->gz = (fmt == TF_FORMAT_CSV_GZ);
	p->zst = (fmt == TF_FORMAT_CSV_ZST);
	return list_make1(p);
}

static void
tf_import_check_target(ParseState *pstate, Relation rel)
{
	ParseNamespaceItem *nsitem;
	RangeTblEntry *rte;
	List	   *attnums;
	ListCell   *lc;

	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock,
										   NULL, false, false);
	rte = nsitem->p_rte;
	rte->requiredPerms = ACL_INSERT;
	attnums = CopyGetAttnums(RelationGetDescr(rel), rel, NIL);
	foreach(lc, attnums)
		rte->insertedCols = bms_add_member(rte->insertedCols,
										   lfirst_int(lc) - FirstLowInvalidHeapAttributeNumber);
	ExecCheckRTPerms(pstate->p_rtable, true);

	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("taskflow.import() is not supported for tables with row-level security"),
				 errhint("Use INSERT statements instead.")));
}

/*
 * Open part p for reading through tf_import_read_cb (see format.h): the
 * reader, gunzip state and checksum live in CurrentMemoryContext and are
 * released by its reset.
 */
TfImportSource *
tf_import_source_begin(TfStorage *st, TfImportPart *p)
{
	TfImportSource *s = palloc0(sizeof(TfImportSource));
	MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

	cb->func = tf_import_reset_callback;
	cb->arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);

	s->gz = p->gz;
	s->raw = palloc(TF_IMPORT_BUF);
	s->md5 = pg_cryptohash_create(PG_MD5);
	if (s->md5 == NULL || pg_cryptohash_init(s->md5) < 0)
		elog(ERROR, "could not initialize checksum context");
	if (s->gz)
	{
		s->zs.zalloc = Z_NULL;
		s->zs.zfree = Z_NULL;
		if (inflateInit2(&s->zs, 15 + 16) != Z_OK)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not initialize zlib")));
		s->zs_active = true;
	}
	else if (p->zst)
	{
		s->zst = ZSTD_createDCtx();
		if (s->zst == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not allocate a zstd decompressor")));
	}
	s->r = tf_storage_reader_begin(st, p->key);
	return s;
}

/* make s the source of the COPY data source callback returned */
copy_data_source_cb
tf_import_source_activate(TfImportSource *s)
{
	tf_import_cur = s;
	return tf_import_read_cb;
}

/*
 * After COPY reached the end of the data: read what is left (normally
 * nothing) so the checksum covers the object, close the reader, and check
 * the size and md5 against p (from the manifest; ERROR on a mismatch).
 */
void
tf_import_source_end(TfStorage *st, TfImportSource *s, TfImportPart *p)
{
	char		md5hex[33];

	if (tf_import_cur == s)
		tf_import_cur = NULL;
	while (tf_import_raw(s, s->raw, TF_IMPORT_BUF) > 0)
		;
	tf_storage_reader_end(s->r);
	{
		static const char hex[] = "0123456789abcdef";
		uint8		raw[MD5_DIGEST_LENGTH];

		if (pg_cryptohash_final(s->md5, raw, sizeof(raw)) < 0)
			elog(ERROR, "could not finalize checksum");
		pg_cryptohash_free(s->md5);
		s->md5 = NULL;
		for (int i = 0; i < MD5_DIGEST_LENGTH; i++)
		{
			md5hex[2 * i] = hex[raw[i] >> 4];
			md5hex[2 * i + 1] = hex[raw[i] & 0xf];
		}
		md5hex[32] = '\0';
	}
	if (p->bytes >= 0 && p->bytes != s->raw_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("object \"%s\" has %lld bytes, the manifest says %lld",
						tf_storage_describe(st, p->key),
						(long long) s->raw_bytes, (long long) p->bytes)));
	if (p->md5 && pg_strcasecmp(p->md5, md5hex) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("object \"%s\" has md5 %s, the manifest says %s",
						tf_storage_describe(st, p->key), md5hex, p->md5)));
}

/*
 * Stop reading before the end (LIMIT, rescan, end of a scan): close the
 * reader and free the checksum context without verifying anything.  Not
 * for error paths (resource owners and memory contexts clean up there).
 */
void
tf_import_source_close(TfImportSource *s)
{
	if (tf_import_cur == s)
		tf_import_cur = NULL;
	if (s->md5)
		pg_cryptohash_free(s->md5);
	s->md5 = NULL;
	tf_storage_reader_end(s->r);
	s->r = NULL;
}

static uint64
tf_import_part(ParseState *pstate, Relation rel, TfStorage *st,
			   TfImportPart *p, bool header)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "taskflow import part",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	TfImportSource *s = tf_import_source_begin(st, p);
	List	   *opts;
	CopyFromState cstate;
	volatile uint64 n = 0;

	opts = list_make2(makeDefElem("format", (Node *) makeString("csv"), -1),
					  makeDefElem("header", (Node *) makeString(header ? "true" : "false"), -1));

	PG_TRY();
	{
		cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false,
							   tf_import_source_activate(s), NIL, opts);
		n = CopyFrom(cstate);
		EndCopyFrom(cstate);
	}
	PG_FINALLY();
	{
		tf_import_cur = NULL;
	}
	PG_END_TRY();

	tf_import_source_end(st, s, p);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return n;
}

/*
 * The caller's rights on the import target, checked before it is locked (a
 * role without rights must not queue a lock that blocks the table), and
 * again after: the target exists, USAGE on its schema (a numeric OID
 * bypasses the name lookup that checks it), INSERT on the table or some
 * column (tf_import_check_target checks every column under the lock).
 */
static void
tf_import_precheck(Oid relid)
{
	Oid			userid = GetUserId();
	Oid			nsp = get_rel_namespace(relid);
	char	   *relname = get_rel_name(relid);

	if (relname == NULL || !OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("Pass the target table by name, e.g. 'myschema.mytable'.")));
	if (pg_namespace_aclcheck(nsp, userid, ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s", get_namespace_name(nsp)),
				 errhint("taskflow.import() needs USAGE on the target's schema and INSERT on the target.")));
	if (pg_class_aclcheck(relid, userid, ACL_INSERT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, userid, ACL_INSERT, ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", relname),
				 errhint("taskflow.import() needs USAGE on the target's schema and INSERT on the target.")));
}

/*
 * import(server text, path text, target regclass, format text DEFAULT 'csv')
 * RETURNS bigint
 */
Datum
tf_import_sql(PG_FUNCTION_ARGS)
{
	char	   *server,
			   *path,
			   *prefix;
	Oid			relid;
	TfFileFormat fmt;
	TfStorage  *st;
	List	   *parts;
	bool		header = true;
	bool		have_manifest;
	Relation	rel;
	ParseState *pstate;
	uint64		total = 0;
	ListCell   *lc;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null",
							i == 0 ? "server" : i == 1 ? "path" : "target")));
	server = text_to_cstring(PG_GETARG_TEXT_PP(0));
	path = text_to_cstring(PG_GETARG_TEXT_PP(1));
	prefix = tf_export_normalize_prefix(path);
	relid = PG_GETARG_OID(2);
	fmt = tf_format_parse(PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)));

	PreventCommandIfReadOnly("taskflow.import()");

	/* privileges before the lock, and again under it */
	tf_import_precheck(relid);
	rel = try_table_open(relid, RowExclusiveLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("It was dropped concurrently.")));
	tf_import_precheck(relid);
	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = "taskflow.import()";
	tf_import_check_target(pstate, rel);

	st = tf_storage_open(server);
	parts = tf_import_single_object(st, path, fmt);
	if (parts == NIL)
	{
		parts = tf_import_parts_from_manifest(st, prefix, fmt, &header, &have_manifest);
		if (!have_manifest)
			parts = tf_import_parts_from_listing(st, prefix, fmt);
	}

	foreach(lc, parts)
		total += tf_import_part(pstate, rel, st, lfirst(lc), header);

	table_close(rel, NoLock);
	PG_RETURN_INT64((int64) total);
}
