/*-------------------------------------------------------------------------
 *
 * format.h
 *	  CSV / CSV.gz export of a query into object storage (format.c), and the
 *	  full export pipeline shared by taskflow.export() and the archive node
 *	  (export.c): staged parts, publishing, verification, stale part removal,
 *	  manifest, _SUCCESS, the row digest.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKFLOW_FORMAT_H
#define TASKFLOW_FORMAT_H

#include "postgres.h"
#include "commands/copy.h"
#include "nodes/pg_list.h"
#include "port/atomics.h"
#include "tcop/dest.h"
#include "utils/jsonb.h"

#include "storage.h"
#include "taskflow.h"

#define TF_DEFAULT_MAX_FILE_SIZE	(INT64CONST(256) * 1024 * 1024)
#define TF_MIN_MAX_FILE_SIZE		INT64CONST(1024)
#define TF_PARALLEL_MAX			64	/* bound of the option "parallel" */

typedef enum TfFileFormat
{
	TF_FORMAT_CSV,
	TF_FORMAT_CSV_GZ,			/* gzip members (libdeflate) */
	TF_FORMAT_CSV_ZST			/* one zstd frame per part */
} TfFileFormat;

typedef enum TfChecksumKind
{
	TF_CHECKSUM_MD5,			/* md5 of the bytes written (= S3 etag) */
	TF_CHECKSUM_SHA256			/* sha256 in addition to md5 */
} TfChecksumKind;

typedef struct TfExportOptions
{
	TfFileFormat format;
	int64		max_file_size;	/* bytes written per part (compressed) */
	bool		header;			/* header line in every part */
	int			compression_level;	/* 1..9 (csv.gz, csv.zst), 0: the format's default */
	TfChecksumKind checksum;
	bool		staged;			/* parts stay invisible until published */
	int			parallel;		/* processes: -1 automatic, 0/1 serial, N (parexport.c) */
} TfExportOptions;

typedef struct TfPartInfo
{
	char	   *key;			/* key relative to the server prefix */
	char	   *name;			/* part-00000.csv[.gz] */
	int64		rows;
	int64		bytes;			/* bytes written (compressed for csv.gz) */
	char		md5[33];		/* hex */
	char		sha256[65];		/* hex, "" unless checksum = sha256 */
	char	   *etag;			/* as returned by the store, may be NULL */
	TfObjectWriter *staged;		/* staged, not yet published (or NULL) */
} TfPartInfo;

typedef struct TfColumnInfo
{
	char	   *name;
	char	   *type;			/* format_type_with_typemod() */
} TfColumnInfo;

typedef struct TfExportResult
{
	List	   *parts;			/* TfPartInfo *, in part order */
	List	   *columns;		/* TfColumnInfo * */
	int64		rows;
	int64		bytes;
	int			removed;		/* stale objects removed */
	char		digest[33];		/* order-independent digest of the rows */
	uint64		sum1;			/* the digest's two sums (see below) */
	uint64		sum2;
	int			participants;	/* processes that exported (1 = serial) */
} TfExportResult;

/*
 * The row digest: every data row's CSV line (as written, before compression,
 * with its LF) hashed with hash_bytes_extended() under two seeds, each sum
 * taken mod 2^64; printed as 32 hex digits (seed-1 sum, then seed-2 sum).
 * Independent of row order and part boundaries; the same rows formatted the
 * same way give the same digest.
 */
#define TF_DIGEST_SEED1		UINT64CONST(0x7461736b666c6f77)	/* "taskflow" */
#define TF_DIGEST_SEED2		UINT64CONST(0x6172636869766521)	/* "archive!" */

/* format.c */
extern const char *tf_format_name(TfFileFormat f);
extern const char *tf_format_extension(TfFileFormat f);
extern TfFileFormat tf_format_parse(const char *s);
extern void tf_export_options_init(TfExportOptions *o);

/*
 * Run 'query' (a single row-returning statement) and write its rows as
 * parts under 'prefix' (ends in '/' or is empty).  Streams: memory stays
 * bounded whatever the result size.  Only writes the parts.
 */
extern TfExportResult *tf_format_write(TfStorage *st, const char *prefix,
									   const char *query,
									   const TfExportOptions *o);

/*
 * The same in steps, for one participant of a parallel export
 * (parexport.c): begin, then run any number of queries returning the same
 * columns into tf_format_receiver() (their rows continue the open part),
 * then finish (closes the open part; with empty_part an export that wrote
 * no part writes one holding the header) or, in PG_CATCH, abort (the open
 * and the staged parts).  With partno the part numbers come from that
 * shared counter (distinct names across processes), else 0, 1, ...
 */
typedef struct TfCsvDest TfFormatState;
extern TfFormatState *tf_format_begin(TfStorage *st, const char *prefix,
									  const TfExportOptions *o,
									  pg_atomic_uint32 *partno);
extern DestReceiver *tf_format_receiver(TfFormatState *f);
extern TfExportResult *tf_format_finish(TfFormatState *f, bool empty_part);
extern void tf_format_abort(TfFormatState *f);
/* the digest's hex form from its two sums */
extern void tf_format_digest_hex(uint64 sum1, uint64 sum2, char *out);

/*
 * Run 'query' and compute only its row count and row digest, formatting the
 * rows exactly as tf_format_write does (nothing is written).
 */
extern void tf_format_digest(const char *query, const TfExportOptions *o,
							 int64 *rows, char *digest);

/* export.c */

/*
 * taskflow.test_pause_at (tests only): at the named phase of an archive or
 * export, log "taskflow test pause at <phase> (pid N)" and sleep (up to 60 s)
 * so that a test can kill the process there.
 */
extern char *tf_test_pause_at;
extern void tf_test_pause(const char *phase);

/* "256MB", "1 GB", "1048576", 1048576 (jsonb number or string) -> bytes */
extern int64 tf_parse_size(const char *s, const char *what);

/* apply an options jsonb (max_file_size, header, compression_level, checksum) */
extern void tf_export_options_apply(TfExportOptions *o, Jsonb *options);

/* validate a path and return it normalized: no leading '/', trailing '/' */
extern char *tf_export_normalize_prefix(const char *path);

/* _manifest.json under prefix parsed, or NULL if there is none */
extern Jsonb *tf_export_read_manifest(TfStorage *st, const char *prefix);

/*
 * rows of the completed export (_SUCCESS present) under prefix, -1 if there
 * is no _SUCCESS, TF_COMPLETED_ROWS_UNKNOWN if there is one but no manifest
 * that tells the row count (e.g. written by another tool)
 */
#define TF_COMPLETED_ROWS_UNKNOWN	(-2)
extern int64 tf_export_completed_rows(TfStorage *st, const char *prefix);

/*
 * The whole export: tf_export_stage (leftovers of killed attempts removed,
 * every part written staged, invisible), then tf_export_publish (remove an
 * old _SUCCESS, complete the parts, verify every part with a HEAD, remove
 * stale part-* objects from an earlier attempt, write _manifest.json,
 * replacing the old one, which until then makes an import of a
 * half-published prefix fail its checksums) and (if write_success)
 * _SUCCESS.  An ERROR aborts the parts not yet published.
 * Log lines go to x (may be NULL).  ERROR on any failure.
 */
extern TfExportResult *tf_export_run(TfStorage *st, const char *prefix,
									 const char *query,
									 const TfExportOptions *o,
									 TfNodeExec *x, bool write_success);

/*
 * every part listed in the manifest under prefix exists with the size the
 * manifest gives (HEAD); returns the part count, ERROR otherwise
 */
extern int	tf_export_check_manifest_parts(TfStorage *st, const char *prefix,
										   TfFileFormat fmt, TfNodeExec *x);

/* the rows_digest of the manifest under prefix, NULL if none */
extern char *tf_export_manifest_digest(TfStorage *st, const char *prefix);

/*
 * The export in two steps, for the archive node (which runs its source
 * action in between).  stage: remove _SUCCESS, abort what crashed attempts
 * left (S3 multipart uploads, temporary files), write every part staged
 * (invisible).  publish: complete the parts (CompleteMultipartUpload /
 * rename), verify them with HEAD, remove stale part-* objects, write
 * _manifest.json.  abort: drop staged parts not yet published (best effort,
 * never ERRORs; a memory context reset does the same).
 */
extern TfExportResult *tf_export_stage(TfStorage *st, const char *prefix,
									   const char *query,
									   const TfExportOptions *o,
									   TfNodeExec *x);
extern void tf_export_publish(TfStorage *st, const char *prefix,
							  const TfExportOptions *o,
							  TfExportResult *res, TfNodeExec *x);
extern void tf_export_abort(TfExportResult *res);

/*
 * Reading parts (import(), the foreign tables of storage_fdw.c): a part to
 * read, and a source streaming it (ranged GETs / file reads, gunzip) into
 * COPY FROM's data source callback in bounded memory.
 */
typedef struct TfImportPart
{
	char	   *key;
	int64		bytes;			/* -1 if unknown */
	char	   *md5;			/* NULL if unknown */
	bool		gz;
	bool		zst;
} TfImportPart;

typedef struct TfImportSource TfImportSource;

/*
 * parts listed in the manifest under prefix (*found false and NIL if there
 * is none; ERROR if it names another format); *header from the manifest
 */
extern List *tf_import_parts_from_manifest(TfStorage *st, const char *prefix,
										   TfFileFormat fmt, bool *header,
										   bool *found);
extern TfImportSource *tf_import_source_begin(TfStorage *st, TfImportPart *p);
/* the callback for BeginCopyFrom; call again before every NextCopyFrom */
extern copy_data_source_cb tf_import_source_activate(TfImportSource *s);
/* after the end of data: checksum and size against p, close; ERROR if bad */
extern void tf_import_source_end(TfStorage *st, TfImportSource *s, TfImportPart *p);
/* stop before the end: close, free, verify nothing (not for error paths) */
extern void tf_import_source_close(TfImportSource *s);

/*
 * parexport.c: the parallel export of the rows of a query over one table
 * (docs/archive.md "Parallel export").  Returns NULL when the export runs
 * serially (o->parallel 0/1, or the automatic choice, or a query that cannot
 * be split); otherwise the staged parts of every participant (adopted by
 * this process, so publish / abort work as for a serial export), the row
 * count and the digest of all rows.
 */
extern TfExportResult *tf_parexport_write(TfStorage *st, const char *prefix,
										  const char *query,
										  const TfExportOptions *o);

/* the empty _SUCCESS object, written last */
extern void tf_export_write_success(TfStorage *st, const char *prefix,
									TfNodeExec *x);

#endif							/* TASKFLOW_FORMAT_H */
