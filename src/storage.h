/*-------------------------------------------------------------------------
 *
 * storage.h
 *	  Object storage API used by export/import/archive: a resolved storage
 *	  server (S3 or file://) and streaming object writers/readers.  Keys are
 *	  relative to the server's url prefix ('dla_demo/y=2020/m=06/d=01/part-00000.csv').
 *
 *	  Everything allocated here lives in the CurrentMemoryContext of the call
 *	  that created it; libcurl handles and open files are released by a
 *	  memory context reset callback, so an ERROR anywhere leaks nothing.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKFLOW_STORAGE_H
#define TASKFLOW_STORAGE_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

typedef struct TfStorage TfStorage;			/* resolved server + credentials */
typedef struct TfObjectWriter TfObjectWriter;
typedef struct TfObjectReader TfObjectReader;

typedef struct TfObjectInfo
{
	char	   *key;			/* relative to the server prefix */
	int64		size;
	TimestampTz last_modified;
	char	   *etag;			/* without quotes; NULL for file:// */
} TfObjectInfo;

/*
 * Resolve a taskflow_storage foreign server by name for the current user:
 * checks USAGE on the server, reads the user mapping (current user, then
 * PUBLIC).  ERROR (with SQLSTATE and hint, never a secret) if missing.
 */
extern TfStorage *tf_storage_open(const char *server_name);
/* the same for a server given by OID, for role userid (foreign tables) */
extern TfStorage *tf_storage_open_server(Oid serverid, Oid userid);

/* the foreign server's name (parallel export workers open it again) */
extern const char *tf_storage_name(TfStorage *st);

/* human-readable location of a key, e.g. s3://bucket/prefix/key (no secrets) */
extern char *tf_storage_describe(TfStorage *st, const char *key);

/* streaming upload of one object; memory bounded by two multipart part sizes */
extern TfObjectWriter *tf_storage_writer_begin(TfStorage *st, const char *key);
extern void tf_storage_writer_write(TfObjectWriter *w, const char *data, size_t len);
/* completes the object; returns its size and etag (palloc'd, may be NULL) */
extern void tf_storage_writer_finish(TfObjectWriter *w, int64 *size, char **etag);
/* best effort cleanup (abort multipart, remove temp file); never ERRORs */
extern void tf_storage_writer_abort(TfObjectWriter *w);

/*
 * The MD5 of every byte written, computed by the backend where that is
 * cheaper than by the caller (S3 with payload signing off hashes each part
 * for its Content-MD5 anyway: both digests in one pass).  track, before the
 * first write: true if the backend will compute it; then, after finish,
 * md5 gives it (hex, 33 bytes).
 */
extern bool tf_storage_writer_track_md5(TfObjectWriter *w);
extern void tf_storage_writer_md5(TfObjectWriter *w, char *hex);

/*
 * Staged writer: finish makes the bytes durable but invisible (an S3
 * multipart upload not yet completed, a hidden temporary file on file://);
 * publish makes the object appear (CompleteMultipartUpload, rename).  An
 * ERROR before publish removes it (memory context reset), as does abort.
 */
extern TfObjectWriter *tf_storage_writer_begin_staged(TfStorage *st, const char *key);
extern void tf_storage_writer_publish(TfObjectWriter *w, char **etag);

/*
 * Parallel export: a staged object finished by one process is published (or
 * aborted) by another.  handoff, after finish, returns a token naming the
 * staged object (file://: its hidden temporary file; S3: the upload id and
 * the part etags) and disowns it: neither an ERROR nor the exit of this
 * process removes it any more.  adopt recreates, in the calling process, a
 * finished staged writer of key (size bytes) from that token: publish,
 * abort and an ERROR (memory context reset) act as on the original.
 */
extern char *tf_storage_writer_handoff(TfObjectWriter *w);
extern TfObjectWriter *tf_storage_writer_adopt(TfStorage *st, const char *key,
											   const char *token, int64 size);

/*
 * Remove leftovers of crashed attempts under a prefix ending in '/': S3
 * in-progress multipart uploads, file:// hidden temporary files of other
 * processes in that directory.  Returns the count removed.
 */
extern int	tf_storage_abort_stale(TfStorage *st, const char *prefix);

/* small object in one request (manifest, _SUCCESS) */
extern void tf_storage_put(TfStorage *st, const char *key, const char *data, size_t len);

/* streaming download; read returns 0 at end of object */
extern TfObjectReader *tf_storage_reader_begin(TfStorage *st, const char *key);
extern size_t tf_storage_reader_read(TfObjectReader *r, char *buf, size_t len);
extern void tf_storage_reader_end(TfObjectReader *r);

/* metadata of one object; false if it does not exist */
extern bool tf_storage_head(TfStorage *st, const char *key, TfObjectInfo *info);

/* all objects under a key prefix (paginated internally), List of TfObjectInfo * */
extern List *tf_storage_list(TfStorage *st, const char *prefix);

/* delete one object; deleting a missing object is not an error */
extern void tf_storage_delete(TfStorage *st, const char *key);

/* is etag (from a HEAD or a listing) the md5 of the object's bytes? */
extern bool tf_storage_etag_is_md5(TfStorage *st, const char *etag);

/* storage_fdw.c: validate the options of a foreign table (validator) */
extern void tf_storage_fdw_validate_options(List *options);

#endif							/* TASKFLOW_STORAGE_H */
