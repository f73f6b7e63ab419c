/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  Storage servers, the generic part: the taskflow_storage foreign-data
 *	  wrapper validator (server, user mapping and foreign table options),
 *	  resolution of a server + user mapping into a TfStorage (permission
 *	  checks, option parsing), key checks, dispatch of the storage.h API to
 *	  the backend chosen by the url (storage_backend.h: storage_file.c,
 *	  storage_s3.c), the SQL utility functions list_objects / put_object /
 *	  get_object / delete_object, and the registration of the storage GUCs.
 *
 *	  Secrets (user mapping options) are never put in an error, a log line
 *	  or a describe() string.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "format.h"
#include "s3.h"
#include "storage.h"
#include "storage_backend.h"
#include "taskflow.h"

#define TF_STORAGE_FDW		"taskflow_storage"

/* the backends, chosen by the url's scheme */
static const TfStorageBackend *const tf_backends[] = {
	&tf_storage_file_backend,
	&tf_storage_s3_backend,
	NULL
};

/* ----------------------------------------------------------------
 * Options
 * ----------------------------------------------------------------
 */
typedef struct TfOption
{
	const char *name;
	Oid			context;
} TfOption;

static const TfOption tf_options[] = {
	{"url", ForeignServerRelationId},
	{"endpoint", ForeignServerRelationId},
	{"region", ForeignServerRelationId},
	{"url_style", ForeignServerRelationId},
	{"max_retries", ForeignServerRelationId},
	{"connect_timeout", ForeignServerRelationId},
	{"timeout", ForeignServerRelationId},
	{"part_size", ForeignServerRelationId},
	{"multipart_threshold", ForeignServerRelationId},
	{"list_page_size", ForeignServerRelationId},
	{"payload_signing", ForeignServerRelationId},
	{"access_key_id", UserMappingRelationId},
	{"secret_access_key", UserMappingRelationId},
	{"session_token", UserMappingRelationId},
	{"path", ForeignTableRelationId},
	{"format", ForeignTableRelationId},
	{"partition_columns", ForeignTableRelationId},
	{"header", ForeignTableRelationId},
	{"require_success", ForeignTableRelationId},
	{NULL, InvalidOid}
};


static void
unknown_option_error(const char *name, Oid context)
{
	StringInfoData buf;
	const TfOption *opt;

	initStringInfo(&buf);
	for (opt = tf_options; opt->name; opt++)
	{
		if (opt->context == context)
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", opt->name);
	}
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\" for taskflow_storage", name),
			 buf.len > 0
			 ? errhint("Valid options in this context are: %s.", buf.data)
			 : errhint("There are no valid options in this context.")));
}

static void
bad_value(const char *option, const char *value, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", option, value),
			 hint ? errhint("%s", hint) : 0));
}

/* true if some path component of s (split on '/') is "", "." or ".." */
static bool
has_bad_component(const char *s, bool allow_trailing_empty)
{
	const char *p = s;

	for (;;)
	{
		const char *slash = strchr(p, '/');
		size_t		n = slash ? (size_t) (slash - p) : strlen(p);

		if ((n == 0 && (slash || !allow_trailing_empty)) ||
			(n == 1 && p[0] == '.') ||
			(n == 2 && p[0] == '.' && p[1] == '.'))
			return true;
		if (!slash)
			return false;
		p = slash + 1;
	}
}


void
tf_storage_bad_value(const char *option, const char *value, const char *hint)
{
	bad_value(option, value, hint);
	pg_unreachable();
}

bool
tf_storage_has_bad_component(const char *s, bool allow_trailing_empty)
{
	return has_bad_component(s, allow_trailing_empty);
}

static void
parse_url(const char *url, TfServerOpts *o)
{
	for (int i = 0; tf_backends[i]; i++)
	{
		const char *scheme = tf_backends[i]->scheme;

		if (strncmp(url, scheme, strlen(scheme)) == 0)
		{
			o->backend = tf_backends[i];
			o->url = pstrdup(url);
			tf_backends[i]->parse_url(url, o);
			return;
		}
	}
	bad_value("url", url, "Supported urls are s3://bucket[/prefix] and file:///absolute/directory.");
}

static int
parse_int_option(const char *name, const char *value, int flags,
				 int min, int max)
{
	int			result;
	const char *hint = NULL;

	if (!parse_int(value, &result, flags, &hint))
		bad_value(name, value, hint ? hint : "Expected an integer.");
	if (result < min || result > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value for option \"%s\" is out of range: \"%s\"", name, value),
				 errhint("Valid values are between %d and %d%s.", min, max,
						 (flags & GUC_UNIT_BYTE) ? " bytes" :
						 (flags & GUC_UNIT_S) ? " seconds" : "")));
	return result;
}

/*
 * Parse (and validate) server options.  Options not given get defaults from
 * the GUCs.  A missing url is an error.
 */
static void
parse_server_options(List *options, TfServerOpts *o)
{
	ListCell   *lc;
	bool		have_url = false;

	memset(o, 0, sizeof(*o));
	o->max_retries = tf_s3_max_retries;
	o->connect_timeout = tf_s3_connect_timeout;
	o->timeout = tf_s3_timeout;
	o->part_size = tf_s3_part_size;
	o->multipart_threshold = -1;
	o->list_page_size = 1000;

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);
		char	   *val = defGetString(def);

		if (strcmp(def->defname, "url") == 0)
		{
			parse_url(val, o);
			have_url = true;
		}
		else if (strcmp(def->defname, "endpoint") == 0)
		{
			size_t		n = strlen(val);
			const char *host;

			while (n > 0 && val[n - 1] == '/')
				n--;
			o->endpoint = pnstrdup(val, n);
			host = strncmp(o->endpoint, "http://", 7) == 0 ? o->endpoint + 7 :
				strncmp(o->endpoint, "https://", 8) == 0 ? o->endpoint + 8 : NULL;
			if (host == NULL || host[0] == '\0' || strpbrk(host, "/?#@ ") != NULL)
				bad_value("endpoint", val, "Expected http://host[:port] or https://host[:port], without a path.");
		}
		else if (strcmp(def->defname, "region") == 0)
		{
			if (val[0] == '\0' || strspn(val, "abcdefghijklmnopqrstuvwxyz0123456789-") < strlen(val))
				bad_value("region", val, "A region looks like us-east-1.");
			o->region = val;
		}
		else if (strcmp(def->defname, "url_style") == 0)
		{
			if (strcmp(val, "path") != 0 && strcmp(val, "virtual") != 0)
				bad_value("url_style", val, "Valid values are \"path\" and \"virtual\".");
			o->url_style = val;
		}
		else if (strcmp(def->defname, "max_retries") == 0)
			o->max_retries = parse_int_option(def->defname, val, 0, 0, 100);
		else if (strcmp(def->defname, "connect_timeout") == 0)
			o->connect_timeout = parse_int_option(def->defname, val, GUC_UNIT_S, 1, 3600);
		else if (strcmp(def->defname, "timeout") == 0)
			o->timeout = parse_int_option(def->defname, val, GUC_UNIT_S, 1, 86400);
		else if (strcmp(def->defname, "part_size") == 0)
			o->part_size = parse_int_option(def->defname, val, GUC_UNIT_BYTE,
											TF_S3_MIN_PART_SIZE, TF_S3_MAX_PART_SIZE);
		else if (strcmp(def->defname, "multipart_threshold") == 0)
			o->multipart_threshold = parse_int_option(def->defname, val, GUC_UNIT_BYTE,
													  TF_S3_MIN_PART_SIZE, TF_S3_MAX_PART_SIZE);
		else if (strcmp(def->defname, "list_page_size") == 0)
			o->list_page_size = parse_int_option(def->defname, val, 0, 1, 1000);
		else if (strcmp(def->defname, "payload_signing") == 0)
		{
			if (strcmp(val, "auto") != 0 && strcmp(val, "on") != 0 &&
				strcmp(val, "off") != 0)
				bad_value("payload_signing", val,
						  "Valid values are \"auto\" (off over https, on over http), \"on\" (sign the SHA-256 of every uploaded body) and \"off\" (UNSIGNED-PAYLOAD with a signed Content-MD5).");
			o->payload_signing = val;
		}
		else
			unknown_option_error(def->defname, ForeignServerRelationId);
	}

	if (!have_url)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a taskflow_storage server needs the option \"url\""),
				 errhint("For example OPTIONS (url 's3://bucket/prefix') or OPTIONS (url 'file:///var/lib/taskflow/archive').")));
	if (o->region == NULL)
		o->region = "us-east-1";
	if (o->multipart_threshold < 0)
		o->multipart_threshold = o->part_size;
	if (o->url_style == NULL)
		o->url_style = o->endpoint ? "path" : "virtual";
	if (o->endpoint == NULL)
		o->endpoint = psprintf("https://s3.%s.amazonaws.com", o->region);
	if (o->payload_signing == NULL)
		o->payload_signing = "auto";
}

/* user mapping options: check names only; values are secrets, never echoed */
static void
check_user_mapping_options(List *options, bool *has_key, bool *has_secret)
{
	ListCell   *lc;

	*has_key = *has_secret = false;
	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "access_key_id") == 0)
			*has_key = true;
		else if (strcmp(def->defname, "secret_access_key") == 0)
			*has_secret = true;
		else if (strcmp(def->defname, "session_token") != 0)
			unknown_option_error(def->defname, UserMappingRelationId);
	}
	if (*has_key != *has_secret)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("options \"access_key_id\" and \"secret_access_key\" must be given together"),
				 errhint("Omit both for anonymous access to a public bucket.")));
}

PG_FUNCTION_INFO_V1(tf_storage_validator);

/*
 * taskflow._storage_validator(text[], oid): validator of the
 * taskflow_storage foreign-data wrapper.  Runs at CREATE/ALTER SERVER and
 * USER MAPPING (as the user running that command).
 */
Datum
tf_storage_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);

	if (catalog == ForeignServerRelationId)
	{
		TfServerOpts o;

		parse_server_options(options, &o);
		if (o.backend->superuser_only && !superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only superusers can create or alter a %s storage server",
							o.backend->scheme),
					 errdetail("A %s server writes files on the database server as the server's operating system user.",
							   o.backend->scheme),
					 errhint("Ask a superuser to create the server and GRANT USAGE ON FOREIGN SERVER to you.")));
	}
	else if (catalog == UserMappingRelationId)
	{
		bool		has_key,
					has_secret;

		check_user_mapping_options(options, &has_key, &has_secret);
	}
	else if (catalog == ForeignTableRelationId)
	{
		ListCell   *lc;

		foreach(lc, options)
		{
			const char *name = lfirst_node(DefElem, lc)->defname;
			const TfOption *opt;

			for (opt = tf_options; opt->name; opt++)
				if (opt->context == catalog && strcmp(opt->name, name) == 0)
					break;
			if (opt->name == NULL)
				unknown_option_error(name, catalog);
		}
		tf_storage_fdw_validate_options(options);
	}
	else if (options != NIL)
		unknown_option_error(linitial_node(DefElem, options)->defname, catalog);

	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * Resolving a server
 * ----------------------------------------------------------------
 */

/* options of the user mapping for (userid or PUBLIC, serverid); false if none */
static bool
lookup_user_mapping(Oid userid, Oid serverid, List **options)
{
	HeapTuple	tp;
	Datum		datum;
	bool		isnull;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return false;
	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
							Anum_pg_user_mapping_umoptions, &isnull);
	*options = isnull ? NIL : untransformRelOptions(datum);
	ReleaseSysCache(tp);
	return true;
}

TfStorage *
tf_storage_open(const char *server_name)
{
	ForeignServer *server;

	server = GetForeignServerByName(server_name, true);
	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("storage server \"%s\" does not exist", server_name),
				 errhint("Create it with CREATE SERVER %s FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url '...').",
						 quote_identifier(server_name))));
	return tf_storage_open_server(server->serverid, GetUserId());
}

TfStorage *
tf_storage_open_server(Oid serverid, Oid userid)
{
	ForeignServer *server = GetForeignServer(serverid);
	const char *server_name = server->servername;
	ForeignDataWrapper *fdw;
	TfServerOpts o;
	TfStorage  *st;
	List	   *um = NIL;

	fdw = GetForeignDataWrapper(server->fdwid);
	if (strcmp(fdw->fdwname, TF_STORAGE_FDW) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a taskflow storage server", server_name),
				 errdetail("It uses the foreign-data wrapper \"%s\", not taskflow_storage.",
						   fdw->fdwname)));
	if (pg_foreign_server_aclcheck(server->serverid, userid, ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for storage server \"%s\"", server_name),
				 errhint("A superuser or the server's owner can run: GRANT USAGE ON FOREIGN SERVER %s TO %s;",
						 quote_identifier(server_name),
						 quote_identifier(GetUserNameFromId(userid, false)))));

	parse_server_options(server->options, &o);

	st = palloc0(sizeof(TfStorage));
	st->mcxt = CurrentMemoryContext;
	st->server_name = pstrdup(server_name);
	st->backend = o.backend;
	if (o.backend->superuser_only && !superuser_arg(server->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s storage server \"%s\" is not owned by a superuser",
						o.backend->scheme, server_name),
				 errhint("Only a superuser may own a %s server: ALTER SERVER %s OWNER TO a superuser.",
						 o.backend->scheme, quote_identifier(server_name))));
	if (o.backend->needs_user_mapping &&
		!lookup_user_mapping(userid, server->serverid, &um))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no user mapping for role \"%s\" on storage server \"%s\"",
						GetUserNameFromId(userid, false), server_name),
				 errhint("CREATE USER MAPPING FOR %s SERVER %s OPTIONS (access_key_id '...', secret_access_key '...');",
						 quote_identifier(GetUserNameFromId(userid, false)),
						 quote_identifier(server_name))));
	o.backend->open(st, &o, um);
	return st;
}

/*
 * Keys are relative, '/'-separated, with no empty, "." or ".." component
 * (so a file:// key can never leave the server's directory, and S3 keys
 * are not rewritten by URL normalization).  A list prefix may end in '/'.
 */
static void
check_key(const char *key, bool is_prefix)
{
	if (is_prefix && key[0] == '\0')
		return;
	if (key[0] == '\0' || key[0] == '/' || has_bad_component(key, is_prefix))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid object %s \"%s\"", is_prefix ? "prefix" : "key", key),
				 errdetail("Object keys are relative paths: no leading '/', no empty, \".\" or \"..\" components%s.",
						   is_prefix ? "" : ", no trailing '/'")));
}


const char *
tf_storage_name(TfStorage *st)
{
	return st->server_name;
}

char *
tf_storage_describe(TfStorage *st, const char *key)
{
	return st->backend->describe(st, key);
}

/* ----------------------------------------------------------------
 * storage.h API: key checks, then the backend
 * ----------------------------------------------------------------
 */
TfObjectWriter *
tf_storage_writer_begin(TfStorage *st, const char *key)
{
	check_key(key, false);
	return st->backend->writer_begin(st, key, false);
}

TfObjectWriter *
tf_storage_writer_begin_staged(TfStorage *st, const char *key)
{
	check_key(key, false);
	return st->backend->writer_begin(st, key, true);
}

void
tf_storage_writer_write(TfObjectWriter *w, const char *data, size_t len)
{
	w->st->backend->writer_write(w, data, len);
}

void
tf_storage_writer_finish(TfObjectWriter *w, int64 *size, char **etag)
{
	if (w->staged)
		w->st->backend->writer_stage(w, size, etag);
	else
		w->st->backend->writer_finish(w, size, etag);
}

bool
tf_storage_writer_track_md5(TfObjectWriter *w)
{
	return w->st->backend->writer_track_md5 != NULL &&
		w->st->backend->writer_track_md5(w);
}

void
tf_storage_writer_md5(TfObjectWriter *w, char *hex)
{
	Assert(w->st->backend->writer_md5 != NULL);
	w->st->backend->writer_md5(w, hex);
}

void
tf_storage_writer_publish(TfObjectWriter *w, char **etag)
{
	w->st->backend->writer_publish(w, etag);
}

char *
tf_storage_writer_handoff(TfObjectWriter *w)
{
	Assert(w->staged);
	return w->st->backend->writer_handoff(w);
}

TfObjectWriter *
tf_storage_writer_adopt(TfStorage *st, const char *key, const char *token, int64 size)
{
	check_key(key, false);
	return st->backend->writer_adopt(st, key, token, size);
}

void
tf_storage_writer_abort(TfObjectWriter *w)
{
	if (w == NULL)
		return;
	w->st->backend->writer_abort(w);
}

/*
 * Is name (relative to the prefix) one of the export's own objects directly
 * under it: part-*, _manifest.json, _SUCCESS (for file:// temporary files
 * also with the leading '.' of the hidden name)?  Nothing else is touched.
 */
static bool
is_export_object_name(const char *name, bool hidden_ok)
{
	if (hidden_ok && name[0] == '.')
		name++;
	if (strchr(name, '/') != NULL)
		return false;
	return strncmp(name, "part-", 5) == 0 ||
		strncmp(name, "_manifest.json", 14) == 0 ||
		strncmp(name, "_SUCCESS", 8) == 0;
}

/*
 * Remove what crashed attempts left directly under prefix (a directory-like
 * prefix ending in '/'), for the export's own object names only (part-*,
 * _manifest.json, _SUCCESS): in-progress multipart uploads on S3, temporary
 * files (".<name>.tmp.<pid>") in the prefix's directory on file://.
 * Returns how many were removed.
 */
int
tf_storage_abort_stale(TfStorage *st, const char *prefix)
{
	check_key(prefix, true);
	return st->backend->abort_stale(st, prefix, is_export_object_name);
}

void
tf_storage_put(TfStorage *st, const char *key, const char *data, size_t len)
{
	check_key(key, false);
	st->backend->put(st, key, data, len);
}

TfObjectReader *
tf_storage_reader_begin(TfStorage *st, const char *key)
{
	check_key(key, false);
	return st->backend->reader_begin(st, key);
}

size_t
tf_storage_reader_read(TfObjectReader *r, char *buf, size_t len)
{
	return r->st->backend->reader_read(r, buf, len);
}

void
tf_storage_reader_end(TfObjectReader *r)
{
	if (r == NULL)
		return;
	r->st->backend->reader_end(r);
}

bool
tf_storage_head(TfStorage *st, const char *key, TfObjectInfo *info)
{
	check_key(key, false);
	return st->backend->head(st, key, info);
}

List *
tf_storage_list(TfStorage *st, const char *prefix)
{
	if (prefix == NULL)
		prefix = "";
	check_key(prefix, true);
	return st->backend->list(st, prefix);
}

void
tf_storage_delete(TfStorage *st, const char *key)
{
	check_key(key, false);
	st->backend->delete(st, key);
}

bool
tf_storage_etag_is_md5(TfStorage *st, const char *etag)
{
	return etag != NULL && st->backend->etag_is_md5(etag);
}



/* ----------------------------------------------------------------
 * SQL functions
 * ----------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(tf_list_objects);
PG_FUNCTION_INFO_V1(tf_put_object);
PG_FUNCTION_INFO_V1(tf_get_object);
PG_FUNCTION_INFO_V1(tf_delete_object);

/* list_objects(server text, prefix text DEFAULT '') → (key, size, last_modified, etag) */
Datum
tf_list_objects(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TfStorage  *st;
	List	   *objs;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	st = tf_storage_open(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	objs = tf_storage_list(st, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	foreach(lc, objs)
	{
		TfObjectInfo *info = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(info->key);
		values[1] = Int64GetDatum(info->size);
		values[2] = TimestampTzGetDatum(info->last_modified);
		if (info->etag)
			values[3] = CStringGetTextDatum(info->etag);
		else
			nulls[3] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* put_object(server text, key text, data bytea) → void, via the streaming writer */
Datum
tf_put_object(PG_FUNCTION_ARGS)
{
	TfStorage  *st = tf_storage_open(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bytea	   *data = PG_GETARG_BYTEA_PP(2);
	const char *p = VARDATA_ANY(data);
	size_t		len = VARSIZE_ANY_EXHDR(data);
	TfObjectWriter *w = tf_storage_writer_begin(st, key);
	MemoryContext piece_cxt;
	MemoryContext old;

	/*
	 * Feed it in 1 MB pieces like a real producer would, each from a
	 * short-lived context reset after the call (as a DestReceiver's
	 * per-tuple context is): the writer must keep its state elsewhere.
	 */
	piece_cxt = AllocSetContextCreate(CurrentMemoryContext, "put_object piece",
									  ALLOCSET_SMALL_SIZES);
	while (len > 0)
	{
		size_t		n = Min(len, 1024 * 1024);

		old = MemoryContextSwitchTo(piece_cxt);
		tf_storage_writer_write(w, p, n);
		MemoryContextSwitchTo(old);
		MemoryContextReset(piece_cxt);
		p += n;
		len -= n;
	}
	old = MemoryContextSwitchTo(piece_cxt);
	tf_storage_writer_finish(w, NULL, NULL);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(piece_cxt);
	PG_RETURN_VOID();
}

/* get_object(server text, key text) → bytea */
Datum
tf_get_object(PG_FUNCTION_ARGS)
{
	TfStorage  *st = tf_storage_open(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TfObjectReader *r;
	StringInfoData buf;
	bytea	   *result;
	MemoryContext piece_cxt;
	MemoryContext old;

	initStringInfo(&buf);
	r = tf_storage_reader_begin(st, key);
	/* read from a short-lived context, like a COPY data source callback */
	piece_cxt = AllocSetContextCreate(CurrentMemoryContext, "get_object piece",
									  ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		size_t		n;

		enlargeStringInfo(&buf, 1024 * 1024);
		old = MemoryContextSwitchTo(piece_cxt);
		n = tf_storage_reader_read(r, buf.data + buf.len, buf.maxlen - buf.len - 1);
		MemoryContextSwitchTo(old);
		MemoryContextReset(piece_cxt);
		if (n == 0)
			break;
		buf.len += n;
	}
	MemoryContextDelete(piece_cxt);
	tf_storage_reader_end(r);
	result = (bytea *) palloc(buf.len + VARHDRSZ);
	SET_VARSIZE(result, buf.len + VARHDRSZ);
	memcpy(VARDATA(result), buf.data, buf.len);
	PG_RETURN_BYTEA_P(result);
}

/* delete_object(server text, key text) → void */
Datum
tf_delete_object(PG_FUNCTION_ARGS)
{
	TfStorage  *st = tf_storage_open(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	tf_storage_delete(st, text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}
/* ----------------------------------------------------------------
 * GUCs
 * ----------------------------------------------------------------
 */
void
tf_storage_init(void)
{
	tf_s3_init();
	DefineCustomStringVariable("taskflow.test_pause_at",
							   "Tests only: phase of an archive/export at which to pause (before_upload, mid_upload, after_delete, after_parts, after_manifest, after_success, after_commit).",
							   "The process logs \"taskflow test pause at <phase> (pid N)\" and sleeps up to 60 s there.",
							   &tf_test_pause_at, "",
							   PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
}
