/*-------------------------------------------------------------------------
 *
 * format.c
 *	  CSV / CSV.gz writers fed by a DestReceiver.
 *
 *	  A query runs through SPI with our DestReceiver as its destination, so
 *	  the executor streams rows straight into the writer (no tuplestore).
 *	  Each row is formatted exactly like COPY ... TO (FORMAT csv, HEADER):
 *	  cached output functions per column, ',' delimiter, '"' quote, NULL as
 *	  an empty unquoted field, "" for an empty string, quotes doubled, and a
 *	  value quoted when it holds a delimiter, quote, CR or LF (or is "\."
 *	  alone in a single-column row).  Output is in the server encoding.
 *
 *	  Formatting (rows -> bytes) and the part sink (bytes -> objects) are
 *	  kept apart: the receiver appends CSV lines to inbuf; tf_part_flush_input
 *	  turns inbuf into output bytes (as is for csv; for csv.gz each block of
 *	  up to TF_GZ_BLOCK bytes becomes one gzip member, compressed in one call
 *	  by libdeflate, 2-3x faster than zlib's deflate at the same level); the
 *	  sink (tf_part_emit) counts, hashes and writes them to a TfObjectWriter
 *	  (storage.h).  A concatenation of gzip members is one valid gzip file
 *	  (RFC 1952; gzip, zcat, DuckDB, Spark, Trino, and our own import read
 *	  it).  The output is split into parts part-00000.csv[.gz],
 *	  part-00001... when a part reaches max_file_size written (compressed)
 *	  bytes; each part is a complete CSV file (with header) and a complete
 *	  gzip file.  Per part we record rows, bytes, md5 (and optionally sha256)
 *	  of the bytes written.
 *
 *	  Resources: the libdeflate compressor (malloc'd) is freed by a memory
 *	  context reset callback (so also on ERROR); an unfinished object writer
 *	  is aborted in PG_CATCH; cryptohash contexts belong to the resource
 *	  owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <libdeflate.h>
#include <zstd.h>

#include "access/htup_details.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/md5.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "format.h"

#define TF_INBUF_SIZE	(64 * 1024)	/* csv: bytes buffered before writing */
#define TF_GZ_BLOCK		(256 * 1024)	/* csv.gz: bytes per gzip member */
#define TF_GZ_DEFAULT_LEVEL	6		/* as gzip's and zlib's default */
#define TF_ZST_DEFAULT_LEVEL	3		/* as zstd's default */

/* one part being written */
typedef struct TfPart
{
	TfPartInfo *info;
	TfObjectWriter *w;
	int64		gz_in;			/* csv.gz: bytes compressed into this part */
	pg_cryptohash_ctx *md5;
	pg_cryptohash_ctx *sha;
} TfPart;

typedef struct TfCsvDest
{
	DestReceiver pub;			/* must be first */

	TfStorage  *st;
	const char *prefix;
	TfExportOptions opts;
	MemoryContext cxt;			/* everything of the export lives here */
	MemoryContext rowcxt;		/* reset per row */

	/* set up in rStartup */
	int			natts;
	FmgrInfo   *out_functions;
	bool		single_attr;
	StringInfoData header;

	StringInfoData inbuf;		/* formatted, not yet written/compressed */
	struct libdeflate_compressor *gz;	/* csv.gz (malloc'd) */
	ZSTD_CCtx  *zst;			/* csv.zst (malloc'd) */
	char	   *outbuf;			/* csv.gz, csv.zst: compressed bytes */
	size_t		outcap;
	double		gz_ratio;		/* compressed / input bytes so far, 0 unknown */
	TfPart	   *part;			/* open part or NULL */
	int			nparts;
	TfExportResult *res;
	bool		digest_only;	/* format and digest rows, write nothing */
	bool		multi_run;		/* tf_format_begin: several queries, one tupdesc */
	pg_atomic_uint32 *partno;	/* shared part number counter, or NULL */
	uint64		sum1;			/* row digest sums (see format.h) */
	uint64		sum2;
} TfCsvDest;

static void tf_part_open(TfCsvDest *d);
static void tf_part_close(TfCsvDest *d);
static void tf_part_flush_input(TfCsvDest *d, bool end_frame);
static void tf_part_emit(TfCsvDest *d, const char *data, size_t len);

/* ---------- small helpers ---------- */

const char *
tf_format_name(TfFileFormat f)
{
	return f == TF_FORMAT_CSV_GZ ? "csv.gz" : f == TF_FORMAT_CSV_ZST ? "csv.zst" : "csv";
}

const char *
tf_format_extension(TfFileFormat f)
{
	return f == TF_FORMAT_CSV_GZ ? ".csv.gz" : f == TF_FORMAT_CSV_ZST ? ".csv.zst" : ".csv";
}

TfFileFormat
tf_format_parse(const char *s)
{
	if (s == NULL || pg_strcasecmp(s, "csv") == 0)
		return TF_FORMAT_CSV;
	if (pg_strcasecmp(s, "csv.gz") == 0 || pg_strcasecmp(s, "csv+gzip") == 0)
		return TF_FORMAT_CSV_GZ;
	if (pg_strcasecmp(s, "csv.zst") == 0 || pg_strcasecmp(s, "csv+zstd") == 0)
		return TF_FORMAT_CSV_ZST;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unsupported export format \"%s\"", s),
			 errhint("Supported formats are \"csv\", \"csv.gz\" and \"csv.zst\".")));
	return TF_FORMAT_CSV;		/* keep compiler quiet */
}

void
tf_export_options_init(TfExportOptions *o)
{
	o->format = TF_FORMAT_CSV;
	o->max_file_size = TF_DEFAULT_MAX_FILE_SIZE;
	o->header = true;
	o->compression_level = 0;	/* the format's default */
	o->checksum = TF_CHECKSUM_MD5;
	o->staged = false;
	o->parallel = -1;			/* automatic */
}

static void
tf_hex(const uint8 *b, int n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < n; i++)
	{
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static pg_cryptohash_ctx *
tf_hash_create(pg_cryptohash_type type)
{
	pg_cryptohash_ctx *c = pg_cryptohash_create(type);

	if (c == NULL || pg_cryptohash_init(c) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize checksum context: %s",
						pg_cryptohash_error(c))));
	return c;
}

static void
tf_hash_final(pg_cryptohash_ctx *c, int len, char *hexout)
{
	uint8		buf[PG_SHA256_DIGEST_LENGTH];

	if (pg_cryptohash_final(c, buf, len) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not finalize checksum: %s",
						pg_cryptohash_error(c))));
	tf_hex(buf, len, hexout);
}

/* the compressor is not palloc'd memory: free it when the context goes */
static void
tf_dest_reset_callback(void *arg)
{
	TfCsvDest  *d = (TfCsvDest *) arg;

	if (d->gz)
		libdeflate_free_compressor(d->gz);
	d->gz = NULL;
	if (d->zst)
		ZSTD_freeCCtx(d->zst);
	d->zst = NULL;
}

/*
 * csv.zst: compress inbuf into the part's zstd frame (flushed, so every
 * block's bytes are written at once; end_frame closes the frame).
 */
static void
tf_zst_compress(TfCsvDest *d, bool end_frame)
{
	ZSTD_inBuffer in = {d->inbuf.data, (size_t) d->inbuf.len, 0};

	for (;;)
	{
		ZSTD_outBuffer out = {d->outbuf, d->outcap, 0};
		size_t		rem = ZSTD_compressStream2(d->zst, &out, &in,
											   end_frame ? ZSTD_e_end : ZSTD_e_flush);

		if (ZSTD_isError(rem))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("zstd compression failed: %s", ZSTD_getErrorName(rem))));
		tf_part_emit(d, d->outbuf, out.pos);
		if (rem == 0 && in.pos == in.size)
			break;
	}
}

/* ---------- CSV formatting, identical to COPY TO (FORMAT csv) ---------- */

static inline void
tf_csv_append(StringInfo buf, const char *s, bool single_attr)
{
	const char *p;
	bool		quote = false;

	/* an empty string is quoted so that it differs from NULL */
	if (*s == '\0')
	{
		appendBinaryStringInfo(buf, "\"\"", 2);
		return;
	}
	if (single_attr && strcmp(s, "\\.") == 0)
		quote = true;
	else
	{
		for (p = s; *p; p++)
		{
			char		c = *p;

			if (c == ',' || c == '"' || c == '\n' || c == '\r')
			{
				quote = true;
				break;
			}
		}
		if (!quote)
		{
			appendBinaryStringInfo(buf, s, p - s);
			return;
		}
	}

	appendStringInfoCharMacro(buf, '"');
	for (;;)
	{
		const char *q = strchr(s, '"');

		if (q == NULL)
		{
			appendBinaryStringInfo(buf, s, strlen(s));
			break;
		}
		/* copy through the quote, then double it */
		appendBinaryStringInfo(buf, s, q - s + 1);
		appendStringInfoCharMacro(buf, '"');
		s = q + 1;
	}
	appendStringInfoCharMacro(buf, '"');
}

/* ---------- parts ---------- */

/* write bytes to the object, counting and hashing them */
static void
tf_part_emit(TfCsvDest *d, const char *data, size_t len)
{
	TfPart	   *p = d->part;

	if (len == 0)
		return;
	if ((p->md5 && pg_cryptohash_update(p->md5, (const uint8 *) data, len) < 0) ||
		(p->sha && pg_cryptohash_update(p->sha, (const uint8 *) data, len) < 0))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not update checksum")));
	tf_storage_writer_write(p->w, data, len);
	p->info->bytes += len;
}

/*
 * Push buffered CSV bytes out: as they are for csv; for csv.gz as one gzip
 * member (a part is a concatenation of members, itself a gzip file).
 */
static void
tf_part_flush_input(TfCsvDest *d, bool end_frame)
{
	TfPart	   *p = d->part;
	size_t		n;

	if (d->opts.format == TF_FORMAT_CSV)
	{
		tf_part_emit(d, d->inbuf.data, d->inbuf.len);
		resetStringInfo(&d->inbuf);
		return;
	}
	if (d->opts.format == TF_FORMAT_CSV_ZST)
	{
		int64		before = p->info->bytes;

		tf_zst_compress(d, end_frame);
		CHECK_FOR_INTERRUPTS();
		if (d->inbuf.len >= 512)
		{
			double		r = (double) (p->info->bytes - before) / d->inbuf.len;

			d->gz_ratio = d->gz_ratio > 0 ? (d->gz_ratio + r) / 2 : r;
		}
		resetStringInfo(&d->inbuf);
		return;
	}
	/* an empty member only where the part would otherwise be empty */
	if (d->inbuf.len == 0 && p->info->bytes > 0)
		return;
	n = libdeflate_gzip_compress_bound(d->gz, d->inbuf.len);
	if (n > d->outcap)
	{
		/* a block longer than TF_GZ_BLOCK: a row that was longer still */
		d->outbuf = repalloc(d->outbuf, n);
		d->outcap = n;
	}
	n = libdeflate_gzip_compress(d->gz, d->inbuf.data, d->inbuf.len,
								 d->outbuf, d->outcap);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("gzip compression of %d bytes failed", d->inbuf.len)));
	CHECK_FOR_INTERRUPTS();
	tf_part_emit(d, d->outbuf, n);
	p->gz_in += d->inbuf.len;
	if (d->inbuf.len >= 512)
	{
		/* the ratio of the last sizeable block predicts the next ones */
		double		r = (double) n / d->inbuf.len;

		d->gz_ratio = d->gz_ratio > 0 ? (d->gz_ratio + r) / 2 : r;
	}
	resetStringInfo(&d->inbuf);
}

static void
tf_part_open(TfCsvDest *d)
{
	MemoryContext old = MemoryContextSwitchTo(d->cxt);
	TfPart	   *p = palloc0(sizeof(TfPart));
	TfPartInfo *info = palloc0(sizeof(TfPartInfo));

	info->name = psprintf("part-%05d%s",
						  d->partno ? (int) pg_atomic_fetch_add_u32(d->partno, 1) : d->nparts,
						  tf_format_extension(d->opts.format));
	info->key = psprintf("%s%s", d->prefix, info->name);
	p->info = info;
	d->part = p;

	if (d->opts.checksum == TF_CHECKSUM_SHA256)
		p->sha = tf_hash_create(PG_SHA256);

	if (d->opts.format == TF_FORMAT_CSV_GZ && d->gz == NULL)
	{
		d->gz = libdeflate_alloc_compressor(d->opts.compression_level);
		if (d->gz == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not allocate a gzip compressor")));
		d->outcap = libdeflate_gzip_compress_bound(d->gz, TF_GZ_BLOCK);
		d->outbuf = palloc(d->outcap);
	}
	if (d->opts.format == TF_FORMAT_CSV_ZST)
	{
		size_t		rc;

		if (d->zst == NULL)
		{
			d->zst = ZSTD_createCCtx();
			if (d->zst == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not allocate a zstd compressor")));
			d->outcap = ZSTD_CStreamOutSize();
			d->outbuf = palloc(d->outcap);
		}
		/* a new frame per part; the context keeps its memory */
		rc = ZSTD_CCtx_reset(d->zst, ZSTD_reset_session_and_parameters);
		if (!ZSTD_isError(rc))
			rc = ZSTD_CCtx_setParameter(d->zst, ZSTD_c_compressionLevel,
										d->opts.compression_level);
		if (!ZSTD_isError(rc))
			rc = ZSTD_CCtx_setParameter(d->zst, ZSTD_c_checksumFlag, 1);
		if (ZSTD_isError(rc))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not set up zstd: %s", ZSTD_getErrorName(rc))));
	}

	p->w = d->opts.staged
		? tf_storage_writer_begin_staged(d->st, info->key)
		: tf_storage_writer_begin(d->st, info->key);
	/* the md5 of the part's bytes: the writer's, where it is cheaper */
	if (!tf_storage_writer_track_md5(p->w))
		p->md5 = tf_hash_create(PG_MD5);
	d->nparts++;
	MemoryContextSwitchTo(old);

	resetStringInfo(&d->inbuf);
	if (d->opts.header)
		appendBinaryStringInfo(&d->inbuf, d->header.data, d->header.len);
}

static void
tf_part_close(TfCsvDest *d)
{
	TfPart	   *p = d->part;
	MemoryContext old = MemoryContextSwitchTo(d->cxt);
	int64		size = -1;
	char	   *etag = NULL;
	bool		writer_md5 = (p->md5 == NULL);	/* the writer hashes */

	tf_part_flush_input(d, true);

	if (p->md5)
	{
		tf_hash_final(p->md5, MD5_DIGEST_LENGTH, p->info->md5);
		pg_cryptohash_free(p->md5);
		p->md5 = NULL;
	}
	if (p->sha)
	{
		tf_hash_final(p->sha, PG_SHA256_DIGEST_LENGTH, p->info->sha256);
		pg_cryptohash_free(p->sha);
		p->sha = NULL;
	}

	tf_storage_writer_finish(p->w, &size, &etag);
	if (writer_md5)
		tf_storage_writer_md5(p->w, p->info->md5);
	if (d->opts.staged)
		p->info->staged = p->w;
	p->w = NULL;
	if (size >= 0 && size != p->info->bytes)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("object \"%s\" has %lld bytes after upload, %lld were written",
						tf_storage_describe(d->st, p->info->key),
						(long long) size, (long long) p->info->bytes)));
	p->info->etag = etag;

	d->res->parts = lappend(d->res->parts, p->info);
	d->res->bytes += p->info->bytes;
	d->part = NULL;
	pfree(p);
	MemoryContextSwitchTo(old);
	/* every byte of a part uploaded, nothing visible yet (tests) */
	if (d->opts.staged)
		tf_test_pause("mid_upload");
}

/*
 * Estimated written size of the open part if it were closed now.  For
 * csv.gz we scale the input not yet compressed by the compression ratio
 * seen so far (1.0 until a first block was compressed), so a part closes
 * close to max_file_size compressed bytes.
 */
static int64
tf_part_estimate(TfCsvDest *d)
{
	TfPart	   *p = d->part;

	if (d->opts.format == TF_FORMAT_CSV)
		return p->info->bytes + d->inbuf.len;
	return p->info->bytes +
		(int64) (d->inbuf.len * (d->gz_ratio > 0 ? d->gz_ratio : 1.0));
}

/* ---------- DestReceiver ---------- */

static void
tf_dest_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	TfCsvDest  *d = (TfCsvDest *) self;
	MemoryContext old = MemoryContextSwitchTo(d->cxt);
	int			nlive = 0;

	if (d->out_functions != NULL && d->multi_run)
	{
		/* the next query of a participant: the same columns */
		if (typeinfo->natts != d->natts)
			elog(ERROR, "parallel export: a chunk query returned %d columns, not %d",
				 typeinfo->natts, d->natts);
		MemoryContextSwitchTo(old);
		return;
	}
	if (d->out_functions != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("export query must be a single statement")));

	d->natts = typeinfo->natts;
	d->out_functions = palloc0(sizeof(FmgrInfo) * Max(d->natts, 1));
	initStringInfo(&d->header);
	for (int i = 0; i < d->natts; i++)
		if (!TupleDescAttr(typeinfo, i)->attisdropped)
			nlive++;
	d->single_attr = (nlive == 1);
	nlive = 0;
	for (int i = 0; i < d->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(typeinfo, i);
		Oid			func;
		bool		isvarlena;
		TfColumnInfo *col;

		if (att->attisdropped)
			continue;
		getTypeOutputInfo(att->atttypid, &func, &isvarlena);
		fmgr_info(func, &d->out_functions[i]);

		col = palloc(sizeof(TfColumnInfo));
		col->name = pstrdup(NameStr(att->attname));
		col->type = format_type_with_typemod(att->atttypid, att->atttypmod);
		d->res->columns = lappend(d->res->columns, col);

		if (nlive++ > 0)
			appendStringInfoCharMacro(&d->header, ',');
		tf_csv_append(&d->header, NameStr(att->attname), d->single_attr);
	}
	appendStringInfoCharMacro(&d->header, '\n');
	MemoryContextSwitchTo(old);
}

static bool
tf_dest_receive(TupleTableSlot *slot, DestReceiver *self)
{
	TfCsvDest  *d = (TfCsvDest *) self;
	TupleDesc	desc = slot->tts_tupleDescriptor;
	MemoryContext old;
	bool		first = true;
	int			start;

	CHECK_FOR_INTERRUPTS();

	if (d->part == NULL && !d->digest_only)
		tf_part_open(d);
	if (d->digest_only)
		resetStringInfo(&d->inbuf);
	start = d->inbuf.len;

	MemoryContextReset(d->rowcxt);
	old = MemoryContextSwitchTo(d->rowcxt);
	slot_getallattrs(slot);
	for (int i = 0; i < d->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped)
			continue;
		if (!first)
			appendStringInfoCharMacro(&d->inbuf, ',');
		first = false;
		if (!slot->tts_isnull[i])
			tf_csv_append(&d->inbuf,
						  OutputFunctionCall(&d->out_functions[i],
											 slot->tts_values[i]),
						  d->single_attr);
	}
	appendStringInfoCharMacro(&d->inbuf, '\n');
	MemoryContextSwitchTo(old);

	d->sum1 += hash_bytes_extended((const unsigned char *) d->inbuf.data + start,
								   d->inbuf.len - start, TF_DIGEST_SEED1);
	d->sum2 += hash_bytes_extended((const unsigned char *) d->inbuf.data + start,
								   d->inbuf.len - start, TF_DIGEST_SEED2);
	d->res->rows++;
	if (d->digest_only)
		return true;
	d->part->info->rows++;

	if (d->opts.format == TF_FORMAT_CSV ? d->inbuf.len >= TF_INBUF_SIZE
		: (d->inbuf.len >= TF_GZ_BLOCK ||
		   /* learn the ratio early when parts are small */
		   (d->gz_ratio == 0 && d->inbuf.len >= d->opts.max_file_size)))
		tf_part_flush_input(d, false);
	if (tf_part_estimate(d) >= d->opts.max_file_size)
		tf_part_close(d);
	return true;
}

static void
tf_dest_shutdown(DestReceiver *self)
{
	/* parts are closed by tf_format_write once the query has finished */
}

static void
tf_dest_destroy(DestReceiver *self)
{
}

/* ---------- entry point ---------- */

static TfCsvDest *
tf_dest_create(TfStorage *st, const char *prefix, const TfExportOptions *o)
{
	MemoryContext cxt;
	TfCsvDest  *d;
	MemoryContextCallback *cb;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "taskflow export",
								ALLOCSET_DEFAULT_SIZES);
	d = MemoryContextAllocZero(cxt, sizeof(TfCsvDest));
	d->pub.receiveSlot = tf_dest_receive;
	d->pub.rStartup = tf_dest_startup;
	d->pub.rShutdown = tf_dest_shutdown;
	d->pub.rDestroy = tf_dest_destroy;
	d->pub.mydest = DestNone;
	d->st = st;
	d->prefix = MemoryContextStrdup(cxt, prefix);
	d->opts = *o;
	if (d->opts.compression_level <= 0)
		d->opts.compression_level = o->format == TF_FORMAT_CSV_ZST
			? TF_ZST_DEFAULT_LEVEL : TF_GZ_DEFAULT_LEVEL;
	d->cxt = cxt;
	d->rowcxt = AllocSetContextCreate(cxt, "taskflow export row",
									  ALLOCSET_DEFAULT_SIZES);
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		initStringInfo(&d->inbuf);
		enlargeStringInfo(&d->inbuf,
						  (o->format == TF_FORMAT_CSV ? TF_INBUF_SIZE : TF_GZ_BLOCK) + 1024);
		MemoryContextSwitchTo(old);
	}
	d->res = MemoryContextAllocZero(cxt, sizeof(TfExportResult));

	cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));
	cb->func = tf_dest_reset_callback;
	cb->arg = d;
	MemoryContextRegisterResetCallback(cxt, cb);
	return d;
}

void
tf_format_digest_hex(uint64 sum1, uint64 sum2, char *out)
{
	snprintf(out, 33, "%016llx%016llx",
			 (unsigned long long) sum1, (unsigned long long) sum2);
}

static void
tf_digest_hex(TfCsvDest *d)
{
	d->res->sum1 = d->sum1;
	d->res->sum2 = d->sum2;
	d->res->participants = 1;
	tf_format_digest_hex(d->sum1, d->sum2, d->res->digest);
}

/* abort every staged, unpublished part (best effort, never ERRORs) */
static void
tf_format_abort_staged(TfExportResult *res)
{
	ListCell   *lc;

	foreach(lc, res->parts)
	{
		TfPartInfo *p = lfirst(lc);

		if (p->staged)
			tf_storage_writer_abort(p->staged);
		p->staged = NULL;
	}
}

void
tf_format_digest(const char *query, const TfExportOptions *o,
				 int64 *rows, char *digest)
{
	TfCsvDest  *d = tf_dest_create(NULL, "", o);
	SPIPlanPtr	plan;
	SPIExecuteOptions eo;
	int			rc;

	d->digest_only = true;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("could not prepare query: %s",
						SPI_result_code_string(SPI_result))));
	memset(&eo, 0, sizeof(eo));
	eo.read_only = true;
	eo.dest = &d->pub;
	rc = SPI_execute_plan_extended(plan, &eo);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("query failed: %s", SPI_result_code_string(rc))));
	SPI_finish();
	tf_digest_hex(d);
	*rows = d->res->rows;
	memcpy(digest, d->res->digest, sizeof(d->res->digest));
	MemoryContextDelete(d->cxt);
}

TfExportResult *
tf_format_write(TfStorage *st, const char *prefix, const char *query,
				const TfExportOptions *o)
{
	TfCsvDest  *d = tf_dest_create(st, prefix, o);

	PG_TRY();
	{
		SPIPlanPtr	plan;
		SPIExecuteOptions eo;
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");

		plan = SPI_prepare(query, 0, NULL);
		if (plan == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("could not prepare export query: %s",
							SPI_result_code_string(SPI_result))));
		if (!SPI_is_cursor_plan(plan))
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("export query must be a single statement that returns rows"),
					 errhint("Use a SELECT (or TABLE, VALUES, ... RETURNING) statement.")));

		memset(&eo, 0, sizeof(eo));
		eo.read_only = false;
		eo.dest = &d->pub;
		rc = SPI_execute_plan_extended(plan, &eo);
		if (rc < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("export query failed: %s",
							SPI_result_code_string(rc))));

		if (d->out_functions == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("export query did not return a result")));

		/* an empty result still gives one part holding the header */
		if (d->part == NULL && d->nparts == 0)
			tf_part_open(d);
		if (d->part != NULL)
			tf_part_close(d);

		SPI_finish();
		tf_digest_hex(d);
	}
	PG_CATCH();
	{
		if (d->part && d->part->w)
			tf_storage_writer_abort(d->part->w);
		tf_format_abort_staged(d->res);
		PG_RE_THROW();
	}
	PG_END_TRY();

	return d->res;
}

/* ---------- in steps: one participant of a parallel export ---------- */

TfFormatState *
tf_format_begin(TfStorage *st, const char *prefix, const TfExportOptions *o,
				pg_atomic_uint32 *partno)
{
	TfCsvDest  *d = tf_dest_create(st, prefix, o);

	d->multi_run = true;
	d->partno = partno;
	return d;
}

DestReceiver *
tf_format_receiver(TfFormatState *f)
{
	return &f->pub;
}

TfExportResult *
tf_format_finish(TfFormatState *f, bool empty_part)
{
	if (f->part == NULL && f->nparts == 0 && empty_part)
	{
		if (f->out_functions == NULL)
			elog(ERROR, "export query did not return a result");
		tf_part_open(f);
	}
	if (f->part != NULL)
		tf_part_close(f);
	tf_digest_hex(f);
	return f->res;
}

void
tf_format_abort(TfFormatState *f)
{
	if (f->part && f->part->w)
		tf_storage_writer_abort(f->part->w);
	tf_format_abort_staged(f->res);
}
