/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  Storage servers: the taskflow_storage foreign-data wrapper validator,
 *	  resolution of a server + user mapping into a TfStorage (permission
 *	  checks, option parsing), the file:// backend, dispatch of the
 *	  storage.h API to file:// or S3 (s3.c), the storage GUCs, and the SQL
 *	  utility functions list_objects / put_object / get_object /
 *	  delete_object.
 *
 *	  Secrets (user mapping options) are never put in an error, a log line
 *	  or a describe() string.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "common/file_perm.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "format.h"
#include "s3.h"
#include "storage.h"
#include "taskflow.h"

#define TF_STORAGE_FDW		"taskflow_storage"
#define FILE_BUF_SIZE		(64 * 1024)

/* GUCs */
int			tf_s3_max_retries = 5;
int			tf_s3_connect_timeout = 10;
int			tf_s3_timeout = 60;
int			tf_s3_part_size = 8 * 1024 * 1024;
int			tf_s3_max_parts = TF_S3_MAX_PARTS;

struct TfStorage
{
	char	   *server_name;
	bool		is_file;
	char	   *dir;			/* file://: absolute directory, no trailing / */
	char	   *prefix;			/* s3: "" or "prefix/" */
	TfS3Config	s3cfg;
	TfS3	   *s3;				/* created on first use, in mcxt */
	MemoryContext mcxt;			/* context of tf_storage_open's caller */
};

struct TfObjectWriter
{
	TfStorage  *st;
	char	   *key;
	TfS3Writer *s3w;
	/* file:// */
	int			fd;
	char	   *path;
	char	   *tmppath;
	int			dirfd;			/* the key's directory (see file_open_parent) */
	char	   *name;			/* last component of the key */
	char	   *tmpname;		/* its temporary file, in dirfd */
	char	   *buf;
	size_t		buflen;
	int64		size;
	bool		done;
	bool		staged;			/* finish leaves it invisible; publish shows it */
	bool		finished;
	MemoryContextCallback cb;
};

struct TfObjectReader
{
	TfS3Reader *s3r;
	int			fd;
	MemoryContextCallback cb;
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
	{"access_key_id", UserMappingRelationId},
	{"secret_access_key", UserMappingRelationId},
	{"session_token", UserMappingRelationId},
	{NULL, InvalidOid}
};

/* parsed server options */
typedef struct TfServerOpts
{
	bool		is_file;
	char	   *dir;
	char	   *bucket;
	char	   *prefix;
	char	   *endpoint;
	char	   *region;
	char	   *url_style;
	int			max_retries;
	int			connect_timeout;
	int			timeout;
	int			part_size;
	int			multipart_threshold;
	int			list_page_size;
} TfServerOpts;

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

static void
parse_url(const char *url, TfServerOpts *o)
{
	if (strncmp(url, "file://", 7) == 0)
	{
		char	   *dir = pstrdup(url + 7);
		size_t		n;

		if (dir[0] != '/')
			bad_value("url", url, "A file url must name an absolute directory on the database server, like file:///var/lib/taskflow/archive.");
		n = strlen(dir);
		while (n > 1 && dir[n - 1] == '/')
			dir[--n] = '\0';
		if (n > 1 && has_bad_component(dir + 1, false))
			bad_value("url", url, "The directory must not contain empty, \".\" or \"..\" components.");
		o->is_file = true;
		o->dir = dir;
	}
	else if (strncmp(url, "s3://", 5) == 0)
	{
		const char *b = url + 5;
		const char *slash = strchr(b, '/');
		size_t		blen = slash ? (size_t) (slash - b) : strlen(b);
		char	   *prefix;
		size_t		n;

		if (blen < 3 || blen > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz"
											"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") < blen)
			bad_value("url", url, "Expected s3://bucket or s3://bucket/prefix with a bucket name of 3 to 63 letters, digits, '.', '-' or '_'.");
		o->is_file = false;
		o->bucket = pnstrdup(b, blen);
		prefix = pstrdup(slash ? slash + 1 : "");
		n = strlen(prefix);
		while (n > 0 && prefix[n - 1] == '/')
			prefix[--n] = '\0';
		if (n > 0 && has_bad_component(prefix, false))
			bad_value("url", url, "The prefix must not contain empty, \".\" or \"..\" components.");
		o->prefix = n > 0 ? psprintf("%s/", prefix) : pstrdup("");
	}
	else
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
		if (o.is_file && !superuser())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only superusers can create or alter a file:// storage server"),
					 errdetail("A file:// server writes files on the database server as the server's operating system user."),
					 errhint("Ask a superuser to create the server and GRANT USAGE ON FOREIGN SERVER to you.")));
	}
	else if (catalog == UserMappingRelationId)
	{
		bool		has_key,
					has_secret;

		check_user_mapping_options(options, &has_key, &has_secret);
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
	ForeignDataWrapper *fdw;
	TfServerOpts o;
	TfStorage  *st;
	Oid			userid = GetUserId();

	server = GetForeignServerByName(server_name, true);
	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("storage server \"%s\" does not exist", server_name),
				 errhint("Create it with CREATE SERVER %s FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url '...').",
						 quote_identifier(server_name))));
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
	st->is_file = o.is_file;
	if (o.is_file)
	{
		if (!superuser_arg(server->owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("file:// storage server \"%s\" is not owned by a superuser", server_name),
					 errhint("Only a superuser may own a file:// server: ALTER SERVER %s OWNER TO a superuser.",
							 quote_identifier(server_name))));
		st->dir = o.dir;
	}
	else
	{
		List	   *um = NIL;
		ListCell   *lc;
		TfS3Config *c = &st->s3cfg;

		if (!lookup_user_mapping(userid, server->serverid, &um))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("no user mapping for role \"%s\" on storage server \"%s\"",
							GetUserNameFromId(userid, false), server_name),
					 errhint("CREATE USER MAPPING FOR %s SERVER %s OPTIONS (access_key_id '...', secret_access_key '...');",
							 quote_identifier(GetUserNameFromId(userid, false)),
							 quote_identifier(server_name))));
		foreach(lc, um)
		{
			DefElem    *def = lfirst_node(DefElem, lc);

			if (strcmp(def->defname, "access_key_id") == 0)
				c->access_key_id = defGetString(def);
			else if (strcmp(def->defname, "secret_access_key") == 0)
				c->secret_access_key = defGetString(def);
			else if (strcmp(def->defname, "session_token") == 0)
				c->session_token = defGetString(def);
		}
		st->prefix = o.prefix;
		c->bucket = o.bucket;
		c->endpoint = o.endpoint;
		c->region = o.region;
		c->path_style = strcmp(o.url_style, "path") == 0;
		c->max_retries = o.max_retries;
		c->connect_timeout = o.connect_timeout;
		c->timeout = o.timeout;
		c->part_size = o.part_size;
		c->multipart_threshold = o.multipart_threshold;
		c->list_page_size = o.list_page_size;
	}
	return st;
}

static TfS3 *
get_s3(TfStorage *st)
{
	if (st->s3 == NULL)
	{
		/* the client (and its curl handle) lives as long as the TfStorage */
		MemoryContext old = MemoryContextSwitchTo(st->mcxt);

		st->s3 = tf_s3_client(&st->s3cfg);
		MemoryContextSwitchTo(old);
	}
	return st->s3;
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

static char *
s3_full_key(TfStorage *st, const char *key)
{
	return psprintf("%s%s", st->prefix, key);
}

static char *
file_path(TfStorage *st, const char *key)
{
	return psprintf("%s/%s", strcmp(st->dir, "/") == 0 ? "" : st->dir, key);
}

char *
tf_storage_describe(TfStorage *st, const char *key)
{
	if (st->is_file)
		return psprintf("file://%s", file_path(st, key));
	return psprintf("s3://%s/%s%s", st->s3cfg.bucket, st->prefix, key);
}

/* ----------------------------------------------------------------
 * file:// backend
 * ----------------------------------------------------------------
 */
static void
file_writer_cleanup(void *arg)
{
	TfObjectWriter *w = (TfObjectWriter *) arg;

	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (!w->done && w->tmpname && w->dirfd >= 0)
		unlinkat(w->dirfd, w->tmpname, 0);
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = -1;
	w->done = true;
}

/*
 * file:// paths never follow a symbolic link inside the server's directory.
 * The directory itself (the url, set by a superuser) may contain links;
 * below it, every component of a key is opened relative to its parent with
 * O_NOFOLLOW (a planted link is an ERROR), and new files are created with
 * O_EXCL, so a link placed inside the directory can never redirect a read,
 * a write or a delete outside it.  See docs/security.md.
 */
static bool
file_is_link(int dfd, const char *name)
{
	struct stat sb;

	return fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode);
}

static void
file_refuse_link(TfStorage *st, const char *key, const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("object \"%s\": \"%s\" is a symbolic link",
					tf_storage_describe(st, key), name),
			 errdetail("taskflow does not follow symbolic links inside the directory of a file:// storage server."),
			 errhint("Replace the link by a real directory or file, or point the server's url at the real directory.")));
}

/*
 * Open the directory that holds key (creating the missing directories when
 * create); *base is set to the key's last component.  Returns the directory
 * fd (the caller closes it), or -1 with errno ENOENT/ENOTDIR when a
 * directory is missing and !create.
 */
static int
file_open_parent(TfStorage *st, const char *key, bool create, const char **base)
{
	char	   *rel = pstrdup(key);
	char	   *comp = rel;
	char	   *slash;
	int			dfd;

	if (create && pg_mkdir_p(pstrdup(st->dir), pg_dir_create_mode) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", st->dir)));
	dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
	{
		if (!create && (errno == ENOENT || errno == ENOTDIR))
			return -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", st->dir)));
	}
	while ((slash = strchr(comp, '/')) != NULL)
	{
		int			next;
		int			save_errno;

		*slash = '\0';
		next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create)
		{
			if (mkdirat(dfd, comp, pg_dir_create_mode) != 0 && errno != EEXIST)
			{
				save_errno = errno;
				close(dfd);
				errno = save_errno;
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not create directory for object \"%s\": %m",
								tf_storage_describe(st, key))));
			}
			next = openat(dfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0)
		{
			bool		link;

			save_errno = errno;
			link = file_is_link(dfd, comp);
			close(dfd);
			if (link)
				file_refuse_link(st, key, comp);
			errno = save_errno;
			if (!create && (errno == ENOENT || errno == ENOTDIR))
				return -1;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open directory \"%s\" of object \"%s\": %m",
							comp, tf_storage_describe(st, key))));
		}
		close(dfd);
		dfd = next;
		comp = slash + 1;
	}
	*base = key + (comp - rel);
	return dfd;
}

/*
 * Temporary name of an object being written: a hidden file in the same
 * directory, ".<name>.tmp.<pid>", which glob readers (Spark, Hive, Trino,
 * DuckDB's "part-*" / "*.csv.gz" patterns) skip: they ignore names starting
 * with "." or "_", and the name ends neither in the format's extension nor
 * starts with "part-".
 */
static char *
file_temp_path(const char *path)
{
	const char *slash = strrchr(path, '/');
	int			dirlen = slash ? (int) (slash - path + 1) : 0;

	return psprintf("%.*s.%s.tmp.%d", dirlen, path, path + dirlen, MyProcPid);
}

static TfObjectWriter *
file_writer_begin(TfStorage *st, const char *key)
{
	TfObjectWriter *w = palloc0(sizeof(TfObjectWriter));
	const char *base;
	int			flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | PG_BINARY;

	w->st = st;
	w->key = pstrdup(key);
	w->path = file_path(st, key);
	w->tmppath = file_temp_path(w->path);
	w->buf = palloc(FILE_BUF_SIZE);
	w->fd = -1;
	w->dirfd = -1;
	w->cb.func = file_writer_cleanup;
	w->cb.arg = w;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &w->cb);
	w->dirfd = file_open_parent(st, key, true, &base);
	w->name = pstrdup(base);
	/* the hidden temporary name of file_temp_path(), in the same directory */
	w->tmpname = psprintf(".%s.tmp.%d", base, MyProcPid);
	w->fd = openat(w->dirfd, w->tmpname, flags, pg_file_create_mode);
	/* a leftover of an earlier backend with our pid (or a planted link): remove it */
	if (w->fd < 0 && errno == EEXIST &&
		(unlinkat(w->dirfd, w->tmpname, 0) == 0 || errno == ENOENT))
		w->fd = openat(w->dirfd, w->tmpname, flags, pg_file_create_mode);
	if (w->fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", w->tmppath)));
	return w;
}

static void
file_flush(TfObjectWriter *w)
{
	size_t		off = 0;

	while (off < w->buflen)
	{
		ssize_t		n = write(w->fd, w->buf + off, w->buflen - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			if (n == 0)
				errno = ENOSPC;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write to file \"%s\": %m", w->tmppath)));
		}
		off += n;
	}
	w->buflen = 0;
}

static void
file_writer_write(TfObjectWriter *w, const char *data, size_t len)
{
	while (len > 0)
	{
		size_t		n = Min(len, FILE_BUF_SIZE - w->buflen);

		memcpy(w->buf + w->buflen, data, n);
		w->buflen += n;
		w->size += n;
		data += n;
		len -= n;
		if (w->buflen == FILE_BUF_SIZE)
		{
			CHECK_FOR_INTERRUPTS();
			file_flush(w);
		}
	}
}

/*
 * Rename the written temporary file into place, relative to its directory
 * (no path re-resolution: see file_open_parent), and fsync the directory.
 */
static void
file_writer_rename(TfObjectWriter *w)
{
	if (renameat(w->dirfd, w->tmpname, w->dirfd, w->name) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename file \"%s\" to \"%s\": %m", w->tmppath, w->path)));
	w->done = true;
	if (pg_fsync(w->dirfd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync the directory of \"%s\": %m", w->path)));
	close(w->dirfd);
	w->dirfd = -1;
}

static void
file_writer_finish(TfObjectWriter *w, int64 *size, char **etag)
{
	file_flush(w);
	if (pg_fsync(w->fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", w->tmppath)));
	if (close(w->fd) != 0)
	{
		w->fd = -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", w->tmppath)));
	}
	w->fd = -1;
	file_writer_rename(w);
	if (size)
		*size = w->size;
	if (etag)
		*etag = NULL;
}

/* staged: the data is durable under the temporary name, not yet visible */
static void
file_writer_stage(TfObjectWriter *w, int64 *size, char **etag)
{
	file_flush(w);
	if (pg_fsync(w->fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", w->tmppath)));
	if (close(w->fd) != 0)
	{
		w->fd = -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", w->tmppath)));
	}
	w->fd = -1;
	w->finished = true;
	if (size)
		*size = w->size;
	if (etag)
		*etag = NULL;
}

static void
file_reader_cleanup(void *arg)
{
	TfObjectReader *r = (TfObjectReader *) arg;

	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static TfObjectReader *
file_reader_begin(TfStorage *st, const char *key)
{
	TfObjectReader *r = palloc0(sizeof(TfObjectReader));
	const char *base;
	int			dfd = file_open_parent(st, key, false, &base);

	r->fd = -1;
	if (dfd >= 0)
	{
		int			save_errno;

		r->fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | PG_BINARY, 0);
		save_errno = errno;
		if (r->fd < 0 && file_is_link(dfd, base))
		{
			close(dfd);
			file_refuse_link(st, key, base);
		}
		close(dfd);
		errno = save_errno;
	}
	if (r->fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open object \"%s\": %m",
						tf_storage_describe(st, key))));
	r->cb.func = file_reader_cleanup;
	r->cb.arg = r;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &r->cb);
	return r;
}

static size_t
file_reader_read(TfObjectReader *r, char *buf, size_t len)
{
	for (;;)
	{
		ssize_t		n = read(r->fd, buf, len);

		if (n >= 0)
			return (size_t) n;
		if (errno != EINTR)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read object: %m")));
	}
}

static bool
is_temp_name(const char *name)
{
	const char *t = strstr(name, ".tmp.");

	while (t)
	{
		const char *d = t + 5;

		if (*d && strspn(d, "0123456789") == strlen(d))
			return true;
		t = strstr(t + 1, ".tmp.");
	}
	return false;
}

static bool
file_stat(TfStorage *st, const char *key, TfObjectInfo *info)
{
	struct stat sb;
	const char *base;
	int			dfd = file_open_parent(st, key, false, &base);
	int			rc;

	if (dfd < 0)
		return false;
	rc = fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	if (rc != 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			return false;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat object \"%s\": %m", tf_storage_describe(st, key))));
	}
	if (!S_ISREG(sb.st_mode))
		return false;
	if (info)
	{
		info->key = pstrdup(key);
		info->size = (int64) sb.st_size;
		info->last_modified = time_t_to_timestamptz(sb.st_mtime);
		info->etag = NULL;
	}
	return true;
}

/* an open directory of file_walk, closed on ERROR by a reset callback */
typedef struct FileWalkDir
{
	DIR		   *dir;
	MemoryContextCallback cb;
} FileWalkDir;

static void
file_walk_close(void *arg)
{
	FileWalkDir *d = (FileWalkDir *) arg;

	if (d->dir)
		closedir(d->dir);
	d->dir = NULL;
}

/*
 * Recursive walk of the directory open as dfd (relative name rel; the walk
 * takes the fd) collecting keys under prefix.  Entries are examined and
 * opened relative to their directory without following links (see
 * file_open_parent), so a directory swapped for a link meanwhile is not
 * entered.
 */
static void
file_walk(int dfd, const char *rel, const char *prefix, List **result)
{
	FileWalkDir *d = palloc0(sizeof(FileWalkDir));
	struct dirent *de;
	size_t		plen = strlen(prefix);

	d->dir = fdopendir(dfd);
	if (d->dir == NULL)
	{
		close(dfd);
		return;
	}
	d->cb.func = file_walk_close;
	d->cb.arg = d;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &d->cb);
	while ((de = readdir(d->dir)) != NULL)
	{
		char	   *key;
		struct stat sb;
		size_t		klen;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		CHECK_FOR_INTERRUPTS();
		key = rel[0] ? psprintf("%s/%s", rel, de->d_name) : pstrdup(de->d_name);
		if (fstatat(dirfd(d->dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;			/* vanished meanwhile */
		klen = strlen(key);
		if (S_ISDIR(sb.st_mode))
		{
			/* descend only where keys matching the prefix can be */
			if (strncmp(key, prefix, Min(klen, plen)) == 0)
			{
				int			sub = openat(dirfd(d->dir), de->d_name,
										 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

				if (sub >= 0)
					file_walk(sub, key, prefix, result);
			}
		}
		else if (S_ISREG(sb.st_mode) && strncmp(key, prefix, plen) == 0 &&
				 !is_temp_name(de->d_name))
		{
			TfObjectInfo *info = palloc0(sizeof(TfObjectInfo));

			info->key = key;
			info->size = (int64) sb.st_size;
			info->last_modified = time_t_to_timestamptz(sb.st_mtime);
			*result = lappend(*result, info);
		}
	}
	closedir(d->dir);
	d->dir = NULL;
}

static int
info_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(((TfObjectInfo *) lfirst(a))->key, ((TfObjectInfo *) lfirst(b))->key);
}

/* ----------------------------------------------------------------
 * storage.h API
 * ----------------------------------------------------------------
 */
TfObjectWriter *
tf_storage_writer_begin(TfStorage *st, const char *key)
{
	TfObjectWriter *w;

	check_key(key, false);
	if (st->is_file)
		return file_writer_begin(st, key);
	w = palloc0(sizeof(TfObjectWriter));
	w->st = st;
	w->key = pstrdup(key);
	w->fd = -1;
	w->dirfd = -1;
	w->s3w = tf_s3_writer_begin(get_s3(st), s3_full_key(st, key));
	return w;
}

void
tf_storage_writer_write(TfObjectWriter *w, const char *data, size_t len)
{
	if (w->s3w)
		tf_s3_writer_write(w->s3w, data, len);
	else
		file_writer_write(w, data, len);
}

TfObjectWriter *
tf_storage_writer_begin_staged(TfStorage *st, const char *key)
{
	TfObjectWriter *w;

	check_key(key, false);
	if (st->is_file)
	{
		w = file_writer_begin(st, key);
		w->staged = true;
		return w;
	}
	w = palloc0(sizeof(TfObjectWriter));
	w->st = st;
	w->key = pstrdup(key);
	w->fd = -1;
	w->staged = true;
	w->s3w = tf_s3_writer_begin_staged(get_s3(st), s3_full_key(st, key));
	return w;
}

void
tf_storage_writer_publish(TfObjectWriter *w, char **etag)
{
	if (etag)
		*etag = NULL;
	if (w->s3w)
	{
		tf_s3_writer_publish(w->s3w, etag);
		return;
	}
	if (!w->staged || !w->finished || w->done)
		elog(ERROR, "object \"%s\" is not ready to be published", w->path);
	/* the data was fsynced when staged */
	file_writer_rename(w);
}

/*
 * Remove what crashed attempts left under prefix (a directory-like prefix
 * ending in '/'): in-progress multipart uploads on S3, hidden temporary
 * files (".<name>.tmp.<pid>") of other processes in the prefix's directory
 * on file://.  Returns how many were removed.
 */
int
tf_storage_abort_stale(TfStorage *st, const char *prefix)
{
	int			removed = 0;
	ListCell   *lc;

	check_key(prefix, true);
	if (!st->is_file)
	{
		TfS3	   *s3 = get_s3(st);
		long		refused = 0;
		List	   *ups = tf_s3_list_uploads(s3, s3_full_key(st, prefix), strlen(st->prefix),
											 &refused);

		/*
		 * Leftover uploads are invisible to readers; they only cost storage
		 * until a lifecycle rule aborts them.  Not being allowed to list them
		 * must not stop the export.
		 */
		if (refused)
			ereport(WARNING,
					(errmsg("could not list in-progress multipart uploads under %s (HTTP %ld): uploads left by crashed attempts are not aborted",
							tf_storage_describe(st, prefix), refused),
					 errhint("Allow s3:ListBucketMultipartUploads and s3:AbortMultipartUpload, or configure a lifecycle rule that aborts incomplete multipart uploads.")));

		foreach(lc, ups)
		{
			TfS3Upload *u = lfirst(lc);

			CHECK_FOR_INTERRUPTS();
			tf_s3_abort_upload(s3, s3_full_key(st, u->key), u->upload_id);
			ereport(LOG,
					(errmsg("aborted a stale multipart upload of %s",
							tf_storage_describe(st, u->key))));
			removed++;
		}
		return removed;
	}
	else
	{
		const char *base;
		int			dfd = file_open_parent(st, prefix, false, &base);
		FileWalkDir *d;
		struct dirent *de;

		/* the prefix's directory, opened without following links */
		if (dfd < 0)
			return 0;
		d = palloc0(sizeof(FileWalkDir));
		d->dir = fdopendir(dfd);
		if (d->dir == NULL)
		{
			close(dfd);
			return 0;
		}
		d->cb.func = file_walk_close;
		d->cb.arg = d;
		MemoryContextRegisterResetCallback(CurrentMemoryContext, &d->cb);
		while ((de = readdir(d->dir)) != NULL)
		{
			char	   *key;

			CHECK_FOR_INTERRUPTS();
			/*
			 * every temporary file there: this attempt has not created any
			 * yet (also removes 1.0's visible "<name>.tmp.<pid>" files)
			 */
			if (!is_temp_name(de->d_name))
				continue;
			key = psprintf("%.*s%s", (int) (base - prefix), prefix, de->d_name);
			if (unlinkat(dirfd(d->dir), de->d_name, 0) != 0 && errno != ENOENT)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not remove stale temporary file of %s: %m",
								tf_storage_describe(st, key))));
			ereport(LOG,
					(errmsg("removed stale temporary file of %s", tf_storage_describe(st, key))));
			removed++;
		}
		file_walk_close(d);
		return removed;
	}
}

void
tf_storage_writer_finish(TfObjectWriter *w, int64 *size, char **etag)
{
	if (w->s3w)
		tf_s3_writer_finish(w->s3w, size, etag);
	else if (w->staged)
		file_writer_stage(w, size, etag);
	else
		file_writer_finish(w, size, etag);
}

void
tf_storage_writer_abort(TfObjectWriter *w)
{
	if (w == NULL)
		return;
	if (w->s3w)
		tf_s3_writer_abort(w->s3w);
	else
		file_writer_cleanup(w);
}

void
tf_storage_put(TfStorage *st, const char *key, const char *data, size_t len)
{
	check_key(key, false);
	if (st->is_file)
	{
		TfObjectWriter *w = file_writer_begin(st, key);

		file_writer_write(w, data, len);
		file_writer_finish(w, NULL, NULL);
	}
	else
		tf_s3_put(get_s3(st), s3_full_key(st, key), data, len, NULL);
}

TfObjectReader *
tf_storage_reader_begin(TfStorage *st, const char *key)
{
	TfObjectReader *r;

	check_key(key, false);
	if (st->is_file)
		return file_reader_begin(st, key);
	r = palloc0(sizeof(TfObjectReader));
	r->fd = -1;
	r->s3r = tf_s3_reader_begin(get_s3(st), s3_full_key(st, key));
	return r;
}

size_t
tf_storage_reader_read(TfObjectReader *r, char *buf, size_t len)
{
	if (r->s3r)
		return tf_s3_reader_read(r->s3r, buf, len);
	return file_reader_read(r, buf, len);
}

void
tf_storage_reader_end(TfObjectReader *r)
{
	if (r == NULL)
		return;
	if (r->s3r)
		tf_s3_reader_end(r->s3r);
	else
		file_reader_cleanup(r);
}

bool
tf_storage_head(TfStorage *st, const char *key, TfObjectInfo *info)
{
	check_key(key, false);
	if (st->is_file)
		return file_stat(st, key, info);
	if (!tf_s3_head(get_s3(st), s3_full_key(st, key), info))
		return false;
	if (info)
		info->key = pstrdup(key);
	return true;
}

List *
tf_storage_list(TfStorage *st, const char *prefix)
{
	List	   *result = NIL;

	if (prefix == NULL)
		prefix = "";
	check_key(prefix, true);
	if (st->is_file)
	{
		int			dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0 && errno != ENOENT && errno != ENOTDIR)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open directory \"%s\": %m", st->dir)));
		if (dfd >= 0)
			file_walk(dfd, "", prefix, &result);
		list_sort(result, info_cmp);
		return result;
	}
	return tf_s3_list(get_s3(st), s3_full_key(st, prefix), strlen(st->prefix));
}

void
tf_storage_delete(TfStorage *st, const char *key)
{
	check_key(key, false);
	if (st->is_file)
	{
		struct stat sb;
		const char *base;
		int			dfd = file_open_parent(st, key, false, &base);
		int			save_errno;

		if (dfd < 0)
			return;				/* no such directory: no such object */
		if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(sb.st_mode))
		{
			close(dfd);
			return;				/* not an object */
		}
		if (unlinkat(dfd, base, 0) == 0 || errno == ENOENT || errno == ENOTDIR)
		{
			close(dfd);
			return;
		}
		save_errno = errno;
		close(dfd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not delete object \"%s\": %m",
						tf_storage_describe(st, key))));
	}
	else
		tf_s3_delete(get_s3(st), s3_full_key(st, key));
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
	DefineCustomIntVariable("taskflow.s3_max_retries",
							"Retries of a failed S3 request (5xx, 429, timeouts, resets).",
							"A storage server's max_retries option overrides it.",
							&tf_s3_max_retries, 5, 0, 100,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.s3_connect_timeout",
							"Timeout for connecting to an S3 endpoint.",
							"A storage server's connect_timeout option overrides it.",
							&tf_s3_connect_timeout, 10, 1, 3600,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.s3_timeout",
							"An S3 request that makes no progress for this long is aborted (and retried).",
							"A storage server's timeout option overrides it.",
							&tf_s3_timeout, 60, 1, 86400,
							PGC_USERSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.s3_part_size",
							"Multipart upload part size for S3 (memory used per upload).",
							"A storage server's part_size option overrides it.",
							&tf_s3_part_size, 8 * 1024 * 1024,
							TF_S3_MIN_PART_SIZE, TF_S3_MAX_PART_SIZE,
							PGC_USERSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.s3_max_parts",
							"Highest part count of one multipart upload (S3 allows 10000; lower only for tests).",
							NULL,
							&tf_s3_max_parts, TF_S3_MAX_PARTS, 1, TF_S3_MAX_PARTS,
							PGC_USERSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							NULL, NULL, NULL);
	DefineCustomStringVariable("taskflow.test_pause_at",
							   "Tests only: phase of an archive/export at which to pause (before_upload, mid_upload, after_delete, after_parts, after_manifest, after_success, after_commit).",
							   "The process logs \"taskflow test pause at <phase> (pid N)\" and sleeps up to 60 s there.",
							   &tf_test_pause_at, "",
							   PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
}
