/*-------------------------------------------------------------------------
 *
 * format.c
 *	  CSV / CSV.gz writers fed by a DestReceiver.
 *
 *	  A query runs through SPI with our DestReceiver as its destination, so
 *	  the executor streams rows straight into the writer (no tuplestore).
 *	  Each row is formatted exactly like COPY ... TO (FORMAT csv, HEADER):
 *	  cached output functions per column (those of int2/4/8, float4/8, date
 *	  and text/varchar/bpchar inlined, see TfColKind), ',' delimiter, '"' quote, NULL as
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

#include <math.h>

#include <libdeflate.h>
#include <zstd.h>

#include "access/htup_details.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/md5.h"
#include "common/sha2.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "format.h"

#define TF_INBUF_SIZE	(64 * 1024)	/* csv: bytes buffered before writing */
#define TF_GZ_BLOCK		(256 * 1024)	/* csv.gz: bytes per gzip member */
#define TF_GZ_DEFAULT_LEVEL	6		/* as gzip's and zlib's default */
#define TF_ZST_DEFAULT_LEVEL	3		/* as zstd's default */

/*
 * How a column's values are formatted.  TF_COL_GENERIC calls the type's
 * output function (as COPY does); the others are the same output functions'
 * code inlined for the common built-in types, chosen by the output
 * function's OID (so a domain over one of them qualifies too), writing
 * straight into the row buffer without the fmgr call, the palloc'd
 * cstring, its strlen and, for numbers, the quoting scan (no digit, sign,
 * '.', 'e', "NaN" or "Infinity" needs quoting).  The bytes are those of the
 * output function: tested against COPY TO under every setting they read
 * (extra_float_digits, DateStyle).
 */
typedef enum TfColKind
{
	TF_COL_GENERIC = 0,
	TF_COL_INT2,				/* int2out: pg_itoa */
	TF_COL_INT4,				/* int4out: pg_ltoa */
	TF_COL_INT8,				/* int8out: pg_lltoa */
	TF_COL_FLOAT4,				/* float4out: shortest decimal when
								 * extra_float_digits > 0, else generic */
	TF_COL_FLOAT8,				/* float8out: the same */
	TF_COL_DATE,				/* date_out: EncodeDateOnly (DateStyle) */
	TF_COL_TEXT					/* textout, varcharout, bpcharout: the bytes */
} TfColKind;

/*
 * A date column's recent values and their text, in TF_DATE_SLOTS slots
 * indexed by the date's low bits (direct-mapped): a table's dates are mostly
 * a few days or runs of consecutive days, which map to distinct slots, so
 * j2date + EncodeDateOnly run once per distinct date instead of once per
 * change of date from one row to the next.  A slot is valid for the
 * DateStyle and DateOrder it was made with.
 */
#define TF_DATE_SLOTS 64
typedef struct TfDateCache
{
	bool		valid;
	DateADT		date;
	int			style;			/* DateStyle and DateOrder it was made with */
	int			order;
	int			len;
	char		txt[MAXDATELEN + 1];
} TfDateCache;

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
	TfColKind  *kinds;			/* per column: how to format it */
	TfDateCache **dates;		/* per column: a date column's TF_DATE_SLOTS
								 * slots (NULL for other columns) */
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

/*
 * Room for n more bytes in buf (and its NUL): the inline check of
 * enlargeStringInfo, whose call is then rare (inbuf is allocated with room
 * for TF_INBUF_SIZE and flushed at it).
 */
#define TF_RESERVE(buf, n) \
	do { \
		if (unlikely((buf)->len + (n) >= (buf)->maxlen)) \
			enlargeStringInfo((buf), (n)); \
	} while (0)

/* appendBinaryStringInfo, inline */
static inline void
tf_buf_append(StringInfo buf, const char *s, int len)
{
	TF_RESERVE(buf, len);
	memcpy(buf->data + buf->len, s, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

static inline bool
tf_csv_needs_quote(const char *s, int len)
{
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c == ',' || c == '"' || c == '\n' || c == '\r')
			return true;
	}
	return false;
}

/* append the value s (len bytes, no NUL inside) as a CSV field */
static inline void
tf_csv_append_n(StringInfo buf, const char *s, int len, bool single_attr)
{
	const char *end = s + len;

	/* an empty string is quoted so that it differs from NULL */
	if (len == 0)
	{
		appendBinaryStringInfo(buf, "\"\"", 2);
		return;
	}
	if (!(single_attr && len == 2 && s[0] == '\\' && s[1] == '.') &&
		!tf_csv_needs_quote(s, len))
	{
		tf_buf_append(buf, s, len);
		return;
	}

	appendStringInfoCharMacro(buf, '"');
	for (;;)
	{
		const char *q = memchr(s, '"', end - s);

		if (q == NULL)
		{
			appendBinaryStringInfo(buf, s, end - s);
			break;
		}
		/* copy through the quote, then double it */
		appendBinaryStringInfo(buf, s, q - s + 1);
		appendStringInfoCharMacro(buf, '"');
		s = q + 1;
	}
	appendStringInfoCharMacro(buf, '"');
}

static inline void
tf_csv_append(StringInfo buf, const char *s, bool single_attr)
{
	tf_csv_append_n(buf, s, strlen(s), single_attr);
}

/* "00" .. "99" */
static const char tf_digit_pairs[201] =
"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
"8081828384858687888990919293949596979899";

/*
 * float8out's text of v (extra_float_digits > 0: the shortest decimal that
 * reads back as v, src/common/d2s.c) when v is a short decimal, the usual
 * case of amounts and measures, without Ryu's 128-bit arithmetic; 0 when it
 * is not one (the caller runs double_to_shortest_decimal_buf).
 *
 * v is a short decimal when D = n / 10^6 (n = v * 10^6 rounded to an
 * integer, |n| < 2^51) rounds back to v: n and 10^6 are exact doubles and
 * the division is correctly rounded, so (double) n / 1e6 == v proves that
 * D's nearest double is v.  If D has at most 15 significant digits it is
 * the only decimal of at most 15 digits whose nearest double is v (DBL_DIG
 * = 15: distinct decimals of 15 digits map to distinct normal doubles), so
 * it is the shortest one, which is what d2s prints; d2s prints it in fixed
 * notation ("123.45", "0.00012", "100") when its leading digit's exponent
 * is in [-4, 15), as here.  Zero (and -0), NaN, infinities, |v| < 1e-4 and
 * |v| >= 2e9 go to d2s.  Printed as the integer part (pg_ultoa_n) and
 * six decimals from a table of digit pairs, their trailing zeros cut: no
 * division loop per digit.  Tested against COPY by export_fast.
 */
static inline int
tf_float8_short(double v, char *out)
{
	double		a = fabs(v);
	int64		n;
	uint64		u;
	uint32		ip,
				fr;
	char	   *p = out;

	if (!(a >= 1e-4 && a < 2e9))
		return 0;
	n = (int64) llrint(v * 1e6);
	if ((double) n / 1e6 != v)
		return 0;
	u = n < 0 ? (uint64) -n : (uint64) n;
	/* D = ip.fr (fr: six decimals); u < 2^51, ip < 2^31 */
	ip = (uint32) (u / 1000000);
	fr = (uint32) (u % 1000000);
	/*
	 * Its leading digit's exponent must be >= -4 (u >= 100), and it must have
	 * at most 15 significant digits: u has at most 16 (u <= 2e15), 16 only
	 * with a ten-digit ip and a last decimal that is not 0.
	 */
	if (u < 100 || (ip >= 1000000000 && fr % 10 != 0))
		return 0;
	if (v < 0)
		*p++ = '-';
	if (ip > 0)
		p += pg_ultoa_n(ip, p);
	else
		*p++ = '0';
	if (fr != 0)
	{
		/* six digits, then without their trailing zeros */
		uint32		hi = fr / 10000,
					mid = (fr / 100) % 100,
					lo = fr % 100;

		*p++ = '.';
		memcpy(p, tf_digit_pairs + 2 * hi, 2);
		memcpy(p + 2, tf_digit_pairs + 2 * mid, 2);
		memcpy(p + 4, tf_digit_pairs + 2 * lo, 2);
		p += 6;
		while (p[-1] == '0')
			p--;
	}
	*p = '\0';
	return p - out;
}

/*
 * Append one non-null value of column i, formatted as its output function
 * would (see TfColKind).
 */
static inline void
tf_csv_append_value(TfCsvDest *d, int i, Datum v)
{
	StringInfo	buf = &d->inbuf;

	switch (d->kinds[i])
	{
		case TF_COL_INT2:
			TF_RESERVE(buf, 7);
			buf->len += pg_itoa(DatumGetInt16(v), buf->data + buf->len);
			return;
		case TF_COL_INT4:
			TF_RESERVE(buf, 12);
			buf->len += pg_ltoa(DatumGetInt32(v), buf->data + buf->len);
			return;
		case TF_COL_INT8:
			TF_RESERVE(buf, MAXINT8LEN + 1);
			buf->len += pg_lltoa(DatumGetInt64(v), buf->data + buf->len);
			return;
		case TF_COL_FLOAT4:
			if (extra_float_digits > 0)
			{
				TF_RESERVE(buf, FLOAT_SHORTEST_DECIMAL_LEN);
				buf->len += float_to_shortest_decimal_buf(DatumGetFloat4(v),
														  buf->data + buf->len);
				return;
			}
			break;
		case TF_COL_FLOAT8:
			if (extra_float_digits > 0)
			{
				double		f = DatumGetFloat8(v);
				int			n;

				TF_RESERVE(buf, DOUBLE_SHORTEST_DECIMAL_LEN);
				n = tf_float8_short(f, buf->data + buf->len);
#ifdef USE_ASSERT_CHECKING
				if (n > 0)
				{
					char		ryu[DOUBLE_SHORTEST_DECIMAL_LEN];

					Assert(double_to_shortest_decimal_buf(f, ryu) == n &&
						   memcmp(ryu, buf->data + buf->len, n) == 0);
				}
#endif
				if (n == 0)
					n = double_to_shortest_decimal_buf(f, buf->data + buf->len);
				buf->len += n;
				return;
			}
			break;
		case TF_COL_DATE:
			{
				DateADT		date = DatumGetDateADT(v);
				TfDateCache *c = &d->dates[i][(uint32) date & (TF_DATE_SLOTS - 1)];

				if (!c->valid || c->date != date || c->style != DateStyle ||
					c->order != DateOrder)
				{
					struct pg_tm tm;

					if (DATE_NOT_FINITE(date))
						EncodeSpecialDate(date, c->txt);
					else
					{
						j2date(date + POSTGRES_EPOCH_JDATE,
							   &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
						EncodeDateOnly(&tm, DateStyle, c->txt);
					}
					c->len = strlen(c->txt);
					c->date = date;
					c->style = DateStyle;
					c->order = DateOrder;
					c->valid = true;
				}
				/*
				 * no quoting: a date's text (digits, "-/. ", "BC",
				 * "infinity") has no comma, quote or line break, is not
				 * empty and is not "\\."
				 */
				tf_buf_append(buf, c->txt, c->len);
				return;
			}
		case TF_COL_TEXT:
			{
				/* detoasted into the row context, reset per row */
				struct varlena *t = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(v));

				tf_csv_append_n(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
								d->single_attr);
				return;
			}
		case TF_COL_GENERIC:
			break;
	}
	tf_csv_append(buf, OutputFunctionCall(&d->out_functions[i], v),
				  d->single_attr);
}

static TfColKind
tf_col_kind(Oid outfunc)
{
	switch (outfunc)
	{
		case F_INT2OUT:
			return TF_COL_INT2;
		case F_INT4OUT:
			return TF_COL_INT4;
		case F_INT8OUT:
			return TF_COL_INT8;
		case F_FLOAT4OUT:
			return TF_COL_FLOAT4;
		case F_FLOAT8OUT:
			return TF_COL_FLOAT8;
		case F_DATE_OUT:
			return TF_COL_DATE;
		case F_TEXTOUT:
		case F_VARCHAROUT:
		case F_BPCHAROUT:
			return TF_COL_TEXT;
		default:
			return TF_COL_GENERIC;
	}
}

/* ---------- the row digest ---------- */

#define TF_ROT(x, k) pg_rotate_left32(x, k)
#define TF_MIX(a, b, c) \
do { \
	a -= c; a ^= TF_ROT(c, 4); c += b; \
	b -= a; b ^= TF_ROT(a, 6); a += c; \
	c -= b; c ^= TF_ROT(b, 8); b += a; \
	a -= c; a ^= TF_ROT(c, 16); c += b; \
	b -= a; b ^= TF_ROT(a, 19); a += c; \
	c -= b; c ^= TF_ROT(b, 4); b += a; \
} while (0)
#define TF_FINAL(a, b, c) \
do { \
	c ^= b; c -= TF_ROT(b, 14); \
	a ^= c; a -= TF_ROT(c, 11); \
	b ^= a; b -= TF_ROT(a, 25); \
	c ^= b; c -= TF_ROT(b, 16); \
	a ^= c; a -= TF_ROT(c, 4); \
	b ^= a; b -= TF_ROT(a, 14); \
	c ^= b; c -= TF_ROT(b, 24); \
} while (0)

/*
 * hash_bytes_extended(k, len, seed1) and (k, len, seed2) in one pass: the
 * same function (src/common/hashfn.c, little-endian arm; its aligned and
 * unaligned paths give the same result) run as two interleaved lanes, so
 * the two independent dependency chains overlap and the bytes are loaded
 * once.  Checked against hash_bytes_extended on every export's first row
 * (tf_dest_receive) and against hashtextextended() by the regression test
 * export_fast.
 */
static inline void
tf_hash2(const unsigned char *k, int keylen, uint64 seed1, uint64 seed2,
		 uint64 *h1, uint64 *h2)
{
#ifdef WORDS_BIGENDIAN
	*h1 = hash_bytes_extended(k, keylen, seed1);
	*h2 = hash_bytes_extended(k, keylen, seed2);
#else
	uint32		len = keylen;
	uint32		a1,
				b1,
				c1,
				a2,
				b2,
				c2;
	uint32		w[3];
	unsigned char tail[12];

	a1 = b1 = c1 = a2 = b2 = c2 = 0x9e3779b9 + len + 3923095;
	/* both seeds are non-zero (TF_DIGEST_SEED1/2) */
	a1 += (uint32) (seed1 >> 32);
	b1 += (uint32) seed1;
	a2 += (uint32) (seed2 >> 32);
	b2 += (uint32) seed2;
	TF_MIX(a1, b1, c1);
	TF_MIX(a2, b2, c2);
	while (len >= 12)
	{
		memcpy(w, k, 12);
		a1 += w[0];
		b1 += w[1];
		c1 += w[2];
		a2 += w[0];
		b2 += w[1];
		c2 += w[2];
		TF_MIX(a1, b1, c1);
		TF_MIX(a2, b2, c2);
		k += 12;
		len -= 12;
	}
	/* the last 0-11 bytes; the lowest byte of c is reserved for the length */
	memset(tail, 0, sizeof(tail));
	memcpy(tail, k, len);
	memcpy(w, tail, 12);
	a1 += w[0];
	b1 += w[1];
	c1 += w[2] << 8;
	a2 += w[0];
	b2 += w[1];
	c2 += w[2] << 8;
	TF_FINAL(a1, b1, c1);
	TF_FINAL(a2, b2, c2);
	*h1 = ((uint64) b1 << 32) | c1;
	*h2 = ((uint64) b2 << 32) | c2;
#endif
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
	d->kinds = palloc0(sizeof(TfColKind) * Max(d->natts, 1));
	d->dates = palloc0(sizeof(TfDateCache *) * Max(d->natts, 1));
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
		d->kinds[i] = tf_col_kind(func);
		if (d->kinds[i] == TF_COL_DATE)
			d->dates[i] = palloc0(sizeof(TfDateCache) * TF_DATE_SLOTS);

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
			tf_csv_append_value(d, i, slot->tts_values[i]);
	}
	appendStringInfoCharMacro(&d->inbuf, '\n');
	MemoryContextSwitchTo(old);

	{
		const unsigned char *line = (const unsigned char *) d->inbuf.data + start;
		int			len = d->inbuf.len - start;
		uint64		h1,
					h2;

		tf_hash2(line, len, TF_DIGEST_SEED1, TF_DIGEST_SEED2, &h1, &h2);
		/* the digest is a format: the first row proves the two-lane hash */
		if (unlikely(d->res->rows == 0) &&
			(h1 != hash_bytes_extended(line, len, TF_DIGEST_SEED1) ||
			 h2 != hash_bytes_extended(line, len, TF_DIGEST_SEED2)))
			elog(ERROR, "row digest: two-lane hash differs from hash_bytes_extended");
		d->sum1 += h1;
		d->sum2 += h2;
	}
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
