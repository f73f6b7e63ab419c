/*-------------------------------------------------------------------------
 *
 * storage_s3.c
 *	  The s3:// storage backend: adapts s3.c (the libcurl S3 client) to the
 *	  storage backend interface.  Keys get the server's url prefix here;
 *	  staged writers are multipart uploads completed at publish; stale
 *	  uploads of crashed attempts are found with ListMultipartUploads.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "s3.h"
#include "storage_backend.h"

typedef struct S3Storage
{
	char	   *prefix;			/* "" or "prefix/" */
	TfS3Config	cfg;
	TfS3	   *s3;				/* created on first use, in st->mcxt */
} S3Storage;

typedef struct S3Writer
{
	TfObjectWriter hdr;
	TfS3Writer *w;
} S3Writer;

typedef struct S3Reader
{
	TfObjectReader hdr;
	TfS3Reader *r;
} S3Reader;

#define S3ST(st)	((S3Storage *) (st)->priv)

static TfS3 *
get_s3(TfStorage *st)
{
	S3Storage  *s = S3ST(st);

	if (s->s3 == NULL)
	{
		/* the client (and its curl handle) lives as long as the TfStorage */
		MemoryContext old = MemoryContextSwitchTo(st->mcxt);

		s->s3 = tf_s3_client(&s->cfg);
		MemoryContextSwitchTo(old);
	}
	return s->s3;
}

static char *
full_key(TfStorage *st, const char *key)
{
	return psprintf("%s%s", S3ST(st)->prefix, key);
}

static void
s3_parse_url(const char *url, TfServerOpts *o)
{
	const char *b = url + 5;
	const char *slash = strchr(b, '/');
	size_t		blen = slash ? (size_t) (slash - b) : strlen(b);
	char	   *prefix;
	size_t		n;

	if (blen < 3 || blen > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz"
										"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") < blen)
		tf_storage_bad_value("url", url, "Expected s3://bucket or s3://bucket/prefix with a bucket name of 3 to 63 letters, digits, '.', '-' or '_'.");
	o->bucket = pnstrdup(b, blen);
	prefix = pstrdup(slash ? slash + 1 : "");
	n = strlen(prefix);
	while (n > 0 && prefix[n - 1] == '/')
		prefix[--n] = '\0';
	if (n > 0 && tf_storage_has_bad_component(prefix, false))
		tf_storage_bad_value("url", url, "The prefix must not contain empty, \".\" or \"..\" components.");
	o->prefix = n > 0 ? psprintf("%s/", prefix) : pstrdup("");
}

static void
s3_open(TfStorage *st, const TfServerOpts *o, List *um_options)
{
	S3Storage  *s = palloc0(sizeof(S3Storage));
	TfS3Config *c = &s->cfg;
	ListCell   *lc;

	foreach(lc, um_options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "access_key_id") == 0)
			c->access_key_id = defGetString(def);
		else if (strcmp(def->defname, "secret_access_key") == 0)
			c->secret_access_key = defGetString(def);
		else if (strcmp(def->defname, "session_token") == 0)
			c->session_token = defGetString(def);
	}
	s->prefix = o->prefix;
	c->bucket = o->bucket;
	c->endpoint = o->endpoint;
	c->region = o->region;
	c->path_style = strcmp(o->url_style, "path") == 0;
	/* auto: TLS already protects the body over https, as the AWS SDKs assume */
	c->sign_payload = strcmp(o->payload_signing, "on") == 0 ||
		(strcmp(o->payload_signing, "auto") == 0 &&
		 strncmp(o->endpoint, "http://", 7) == 0);
	c->max_retries = o->max_retries;
	c->connect_timeout = o->connect_timeout;
	c->timeout = o->timeout;
	c->part_size = o->part_size;
	c->multipart_threshold = o->multipart_threshold;
	c->list_page_size = o->list_page_size;
	st->priv = s;
}

static char *
s3_describe(TfStorage *st, const char *key)
{
	return psprintf("s3://%s/%s%s", S3ST(st)->cfg.bucket, S3ST(st)->prefix, key);
}

static TfObjectWriter *
s3_writer_begin(TfStorage *st, const char *key, bool staged)
{
	S3Writer   *w = palloc0(sizeof(S3Writer));

	w->hdr.st = st;
	w->hdr.staged = staged;
	w->w = staged ? tf_s3_writer_begin_staged(get_s3(st), full_key(st, key))
		: tf_s3_writer_begin(get_s3(st), full_key(st, key));
	return &w->hdr;
}

static void
s3_writer_write(TfObjectWriter *w, const char *data, size_t len)
{
	tf_s3_writer_write(((S3Writer *) w)->w, data, len);
}

/* plain and staged alike: tf_s3_writer_finish knows which it is */
static void
s3_writer_finish(TfObjectWriter *w, int64 *size, char **etag)
{
	tf_s3_writer_finish(((S3Writer *) w)->w, size, etag);
}

static void
s3_writer_publish(TfObjectWriter *w, char **etag)
{
	if (etag)
		*etag = NULL;
	tf_s3_writer_publish(((S3Writer *) w)->w, etag);
}

static void
s3_writer_abort(TfObjectWriter *w)
{
	tf_s3_writer_abort(((S3Writer *) w)->w);
}

/*
 * With payload signing off every part's MD5 is computed for its Content-MD5:
 * the object's MD5 comes in the same pass (md5x2.c).  With it on, the parts
 * are hashed with SHA-256, and the caller's own MD5 (OpenSSL) is as good.
 */
static bool
s3_writer_track_md5(TfObjectWriter *w)
{
	S3Storage  *s = S3ST(w->st);

	if (s->cfg.sign_payload || s->cfg.part_size % 64 != 0)
		return false;
	tf_s3_writer_track_md5(((S3Writer *) w)->w);
	return true;
}

static void
s3_writer_md5(TfObjectWriter *w, char *hex)
{
	tf_s3_writer_md5(((S3Writer *) w)->w, hex);
}

static char *
s3_writer_handoff(TfObjectWriter *w)
{
	return tf_s3_writer_handoff(((S3Writer *) w)->w);
}

static TfObjectWriter *
s3_writer_adopt(TfStorage *st, const char *key, const char *token, int64 size)
{
	S3Writer   *w = palloc0(sizeof(S3Writer));

	w->hdr.st = st;
	w->hdr.staged = true;
	w->w = tf_s3_writer_adopt(get_s3(st), full_key(st, key), token, size);
	return &w->hdr;
}

static void
s3_put(TfStorage *st, const char *key, const char *data, size_t len)
{
	tf_s3_put(get_s3(st), full_key(st, key), data, len, NULL);
}

static TfObjectReader *
s3_reader_begin(TfStorage *st, const char *key)
{
	S3Reader   *r = palloc0(sizeof(S3Reader));

	r->hdr.st = st;
	r->r = tf_s3_reader_begin(get_s3(st), full_key(st, key));
	return &r->hdr;
}

static size_t
s3_reader_read(TfObjectReader *r, char *buf, size_t len)
{
	return tf_s3_reader_read(((S3Reader *) r)->r, buf, len);
}

static void
s3_reader_end(TfObjectReader *r)
{
	tf_s3_reader_end(((S3Reader *) r)->r);
}

static bool
s3_head(TfStorage *st, const char *key, TfObjectInfo *info)
{
	if (!tf_s3_head(get_s3(st), full_key(st, key), info))
		return false;
	if (info)
		info->key = pstrdup(key);
	return true;
}

static List *
s3_list(TfStorage *st, const char *prefix)
{
	return tf_s3_list(get_s3(st), full_key(st, prefix), strlen(S3ST(st)->prefix));
}

static void
s3_delete(TfStorage *st, const char *key)
{
	tf_s3_delete(get_s3(st), full_key(st, key));
}

/* in-progress multipart uploads of our object names directly under prefix */
static int
s3_abort_stale(TfStorage *st, const char *prefix,
			   bool (*is_ours) (const char *name, bool hidden_ok))
{
	TfS3	   *s3 = get_s3(st);
	long		refused = 0;
	int			removed = 0;
	List	   *ups = tf_s3_list_uploads(s3, full_key(st, prefix), strlen(S3ST(st)->prefix),
										 &refused);
	ListCell   *lc;

	/*
	 * Leftover uploads are invisible to readers; they only cost storage until
	 * a lifecycle rule aborts them.  Not being allowed to list them must not
	 * stop the export.
	 */
	if (refused)
		ereport(WARNING,
				(errmsg("could not list in-progress multipart uploads under %s (HTTP %ld): uploads left by crashed attempts are not aborted",
						s3_describe(st, prefix), refused),
				 errhint("Allow s3:ListBucketMultipartUploads and s3:AbortMultipartUpload, or configure a lifecycle rule that aborts incomplete multipart uploads.")));

	foreach(lc, ups)
	{
		TfS3Upload *u = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		if (strncmp(u->key, prefix, strlen(prefix)) != 0 ||
			!is_ours(u->key + strlen(prefix), false))
			continue;			/* deeper, or not ours */
		tf_s3_abort_upload(s3, full_key(st, u->key), u->upload_id);
		ereport(LOG,
				(errmsg("aborted a stale multipart upload of %s",
						s3_describe(st, u->key))));
		removed++;
	}
	return removed;
}

/* a non-multipart S3 etag is the md5 of the object */
static bool
s3_etag_is_md5(const char *etag)
{
	return etag && strlen(etag) == 32 && strchr(etag, '-') == NULL;
}

const TfStorageBackend tf_storage_s3_backend = {
	.scheme = "s3://",
	.superuser_only = false,
	.needs_user_mapping = true,
	.parse_url = s3_parse_url,
	.open = s3_open,
	.describe = s3_describe,
	.writer_begin = s3_writer_begin,
	.writer_write = s3_writer_write,
	.writer_finish = s3_writer_finish,
	.writer_stage = s3_writer_finish,
	.writer_publish = s3_writer_publish,
	.writer_abort = s3_writer_abort,
	.writer_track_md5 = s3_writer_track_md5,
	.writer_md5 = s3_writer_md5,
	.writer_handoff = s3_writer_handoff,
	.writer_adopt = s3_writer_adopt,
	.put = s3_put,
	.reader_begin = s3_reader_begin,
	.reader_read = s3_reader_read,
	.reader_end = s3_reader_end,
	.head = s3_head,
	.list = s3_list,
	.delete = s3_delete,
	.abort_stale = s3_abort_stale,
	.etag_is_md5 = s3_etag_is_md5,
};
