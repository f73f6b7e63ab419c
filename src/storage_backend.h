/*-------------------------------------------------------------------------
 *
 * storage_backend.h
 *	  The storage backend interface: what one kind of object store (file://,
 *	  S3, ...) provides behind the storage.h API.  storage.c owns the
 *	  generic part (FDW validator, option parsing, server resolution,
 *	  permission checks, key checks, dispatch, SQL functions); a backend is
 *	  one file (storage_file.c, storage_s3.c) exporting one TfStorageBackend
 *	  and registered in storage.c's backend table.
 *
 *	  Private to the storage layer: only storage*.c include it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKFLOW_STORAGE_BACKEND_H
#define TASKFLOW_STORAGE_BACKEND_H

#include "postgres.h"
#include "nodes/pg_list.h"

#include "storage.h"

typedef struct TfStorageBackend TfStorageBackend;

/* parsed (validated) server options; S3-only options are ignored by file:// */
typedef struct TfServerOpts
{
	const TfStorageBackend *backend;	/* chosen by the url's scheme */
	char	   *url;
	char	   *dir;			/* file://: absolute directory, no trailing / */
	char	   *bucket;			/* s3:// */
	char	   *prefix;			/* s3://: "" or "prefix/" */
	char	   *endpoint;
	char	   *region;
	char	   *url_style;
	char	   *payload_signing;	/* "auto", "on" or "off" */
	int			max_retries;
	int			connect_timeout;
	int			timeout;
	int			part_size;
	int			multipart_threshold;
	int			list_page_size;
} TfServerOpts;

/* a resolved server: generic part + the backend's private state */
struct TfStorage
{
	char	   *server_name;
	const TfStorageBackend *backend;
	void	   *priv;			/* backend state */
	MemoryContext mcxt;			/* context of tf_storage_open's caller */
};

/* every backend's writer / reader struct starts with these headers */
struct TfObjectWriter
{
	TfStorage  *st;
	bool		staged;			/* finish leaves it invisible; publish shows it */
};

struct TfObjectReader
{
	TfStorage  *st;
};

/*
 * One backend.  Keys passed in are already checked (relative, no empty /
 * "." / ".." component).  Objects are allocated in CurrentMemoryContext and
 * release their OS / libcurl resources through reset callbacks.
 */
struct TfStorageBackend
{
	const char *scheme;			/* url prefix, e.g. "file://" */
	bool		superuser_only; /* servers may be created / owned by superusers only */
	bool		needs_user_mapping; /* a user mapping is required */

	/* parse the url into o (ERROR on a bad one, via tf_storage_bad_value) */
	void		(*parse_url) (const char *url, TfServerOpts *o);
	/* fill st->priv from the parsed options and the user mapping's options */
	void		(*open) (TfStorage *st, const TfServerOpts *o, List *um_options);
	/* human-readable location, never a secret */
	char	   *(*describe) (TfStorage *st, const char *key);

	TfObjectWriter *(*writer_begin) (TfStorage *st, const char *key, bool staged);
	void		(*writer_write) (TfObjectWriter *w, const char *data, size_t len);
	/* complete a plain writer's object */
	void		(*writer_finish) (TfObjectWriter *w, int64 *size, char **etag);
	/* staged writer: make the bytes durable but invisible */
	void		(*writer_stage) (TfObjectWriter *w, int64 *size, char **etag);
	/* staged writer: make the object appear */
	void		(*writer_publish) (TfObjectWriter *w, char **etag);
	/* best effort cleanup; never ERRORs */
	void		(*writer_abort) (TfObjectWriter *w);
	/* optional (NULL: not offered): compute the MD5 of every byte written? */
	bool		(*writer_track_md5) (TfObjectWriter *w);
	/* after finish, if track_md5 said yes: that MD5, hex */
	void		(*writer_md5) (TfObjectWriter *w, char *hex);
	/* staged writer, finished: a token naming it, and disown it (storage.h) */
	char	   *(*writer_handoff) (TfObjectWriter *w);
	/* a finished staged writer of key from a handoff token */
	TfObjectWriter *(*writer_adopt) (TfStorage *st, const char *key,
									 const char *token, int64 size);
	/* small object in one request */
	void		(*put) (TfStorage *st, const char *key, const char *data, size_t len);

	TfObjectReader *(*reader_begin) (TfStorage *st, const char *key);
	size_t		(*reader_read) (TfObjectReader *r, char *buf, size_t len);
	void		(*reader_end) (TfObjectReader *r);

	bool		(*head) (TfStorage *st, const char *key, TfObjectInfo *info);
	List	   *(*list) (TfStorage *st, const char *prefix);	/* sorted by key */
	void		(*delete) (TfStorage *st, const char *key);
	/* leftovers of crashed attempts whose name passes is_ours (see storage.c) */
	int			(*abort_stale) (TfStorage *st, const char *prefix,
								bool (*is_ours) (const char *name, bool hidden_ok));
	/* is this etag (of a HEAD) the md5 of the object's bytes? */
	bool		(*etag_is_md5) (const char *etag);
};

extern const TfStorageBackend tf_storage_file_backend;	/* storage_file.c */
extern const TfStorageBackend tf_storage_s3_backend;	/* storage_s3.c */

/* storage.c helpers for backends */
extern void tf_storage_bad_value(const char *option, const char *value,
								 const char *hint) pg_attribute_noreturn();
extern bool tf_storage_has_bad_component(const char *s, bool allow_trailing_empty);

#endif							/* TASKFLOW_STORAGE_BACKEND_H */
