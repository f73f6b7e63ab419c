/*-------------------------------------------------------------------------
 *
 * s3.h
 *	  S3 client over libcurl (SigV4 via CURLOPT_AWS_SIGV4, multipart upload,
 *	  ranged streaming reads, ListObjectsV2, retries with backoff) and the
 *	  taskflow.s3_* GUCs.  Used by storage_s3.c (and storage.c for option
 *	  defaults) only; everything else goes through storage.h.
 *
 *	  Keys passed here are full object keys (the server's url prefix already
 *	  prepended) and are percent-encoded here, never by the caller.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKFLOW_S3_H
#define TASKFLOW_S3_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "storage.h"

#define TF_S3_MIN_PART_SIZE		(5 * 1024 * 1024)
#define TF_S3_MAX_PART_SIZE		(512 * 1024 * 1024)
#define TF_S3_MAX_PARTS			10000

/* a resolved S3 location + credentials (storage.c fills it) */
typedef struct TfS3Config
{
	char	   *bucket;
	char	   *endpoint;		/* scheme://host[:port], no trailing slash */
	char	   *region;
	bool		path_style;
	bool		sign_payload;	/* false: PUT bodies go UNSIGNED-PAYLOAD +
								 * signed Content-MD5 */
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;	/* may be NULL */
	int			max_retries;
	int			connect_timeout;	/* seconds */
	int			timeout;		/* seconds of no progress before giving up */
	int			part_size;		/* multipart part size, bytes */
	int			multipart_threshold;	/* objects >= this use multipart */
	int			list_page_size; /* ListObjectsV2 max-keys */
} TfS3Config;

typedef struct TfS3 TfS3;		/* client: config + reusable curl handle */
typedef struct TfS3Writer TfS3Writer;
typedef struct TfS3Reader TfS3Reader;

/* GUCs, defaults of the server options; tf_s3_init registers them */
extern void tf_s3_init(void);
extern int	tf_s3_max_retries;
extern int	tf_s3_connect_timeout;
extern int	tf_s3_timeout;
extern int	tf_s3_part_size;
extern int	tf_s3_max_parts;

/* client lifetime = CurrentMemoryContext (curl handle freed by reset callback) */
extern TfS3 *tf_s3_client(TfS3Config *config);

extern void tf_s3_put(TfS3 *s3, const char *key, const char *data, size_t len,
					  char **etag);
extern bool tf_s3_head(TfS3 *s3, const char *key, TfObjectInfo *info);
extern void tf_s3_delete(TfS3 *s3, const char *key);

/* objects under prefix; the first strip_len bytes of each key are removed */
extern List *tf_s3_list(TfS3 *s3, const char *prefix, int strip_len);

extern TfS3Writer *tf_s3_writer_begin(TfS3 *s3, const char *key);
extern void tf_s3_writer_write(TfS3Writer *w, const char *data, size_t len);
extern void tf_s3_writer_finish(TfS3Writer *w, int64 *size, char **etag);
extern void tf_s3_writer_abort(TfS3Writer *w);
/* the MD5 of every byte written: track before the first write, read after finish */
extern void tf_s3_writer_track_md5(TfS3Writer *w);
extern void tf_s3_writer_md5(TfS3Writer *w, char *hex);

/*
 * Staged writer: finish uploads every byte as parts of a multipart upload
 * but completes nothing (the object is invisible); publish completes it.
 * Until then an ERROR (memory context reset) aborts the upload.
 */
extern TfS3Writer *tf_s3_writer_begin_staged(TfS3 *s3, const char *key);
extern void tf_s3_writer_publish(TfS3Writer *w, char **etag);
/* parallel export: hand a finished staged upload to another process */
extern char *tf_s3_writer_handoff(TfS3Writer *w);
extern TfS3Writer *tf_s3_writer_adopt(TfS3 *s3, const char *key,
									  const char *token, int64 size);

/* an in-progress multipart upload */
typedef struct TfS3Upload
{
	char	   *key;			/* stripped like tf_s3_list's keys */
	char	   *upload_id;
} TfS3Upload;

/*
 * ListMultipartUploads under prefix: List of TfS3Upload *.  With refused
 * non-NULL, a 403 / 405 / 501 answer (no s3:ListBucketMultipartUploads
 * permission, or a store without the call) is not an error: *refused gets
 * the status and the uploads listed so far are returned.
 */
extern List *tf_s3_list_uploads(TfS3 *s3, const char *prefix, int strip_len,
								long *refused);
extern void tf_s3_abort_upload(TfS3 *s3, const char *key, const char *upload_id);

extern TfS3Reader *tf_s3_reader_begin(TfS3 *s3, const char *key);
extern size_t tf_s3_reader_read(TfS3Reader *r, char *buf, size_t len);
extern void tf_s3_reader_end(TfS3Reader *r);

/* RFC 3986 percent-encoding into buf; '/' kept when keep_slash */
extern void tf_s3_uri_encode(StringInfo buf, const char *s, bool keep_slash);

#endif							/* TASKFLOW_S3_H */
