/*-------------------------------------------------------------------------
 *
 * s3.c
 *	  S3 client over libcurl: AWS SigV4 signing (CURLOPT_AWS_SIGV4 plus an
 *	  explicit x-amz-content-sha256 header: the body's SHA-256, or, with
 *	  payload signing off, UNSIGNED-PAYLOAD and a signed Content-MD5 on the
 *	  PUTs that carry data), path-style or virtual-host
 *	  addressing, PUT / HEAD / DELETE, multipart upload with two part
 *	  buffers (part N is sent by a curl multi handle, driven between the
 *	  writes that fill part N+1, so uploading overlaps producing; no
 *	  threads), a streaming reader made of ranged GETs, ListObjectsV2 with
 *	  continuation tokens, and retries with exponential backoff + jitter.
 *
 *	  Rules kept here:
 *	  - nothing thrown while libcurl is running (callbacks only copy bytes
 *	    into malloc'd / preallocated buffers and never ereport);
 *	  - interrupts abort a transfer (xferinfo callback), then
 *	    CHECK_FOR_INTERRUPTS runs once curl has returned;
 *	  - curl handles are freed, and a half-done multipart upload aborted,
 *	    by memory context reset callbacks, so an ERROR leaks nothing;
 *	  - secrets never reach an error message, a log line or curl's verbose
 *	    output (which stays off).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include <curl/curl.h>

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/md5.h"
#include "common/pg_prng.h"
#include "common/sha2.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "md5x2.h"
#include "s3.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_RESP_BODY (16 * 1024 * 1024)	/* XML answers, error bodies */
#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS 20000
#define CLEANUP_TIMEOUT_S 10
#define UPLOAD_BUFFER_SIZE (1024 * 1024)	/* curl's send chunk for large bodies */

/* GUCs (tf_s3_init registers them) */
int			tf_s3_max_retries = 5;
int			tf_s3_connect_timeout = 10;
int			tf_s3_timeout = 60;
int			tf_s3_part_size = 8 * 1024 * 1024;
int			tf_s3_max_parts = TF_S3_MAX_PARTS;

struct TfS3
{
	TfS3Config *cfg;
	CURL	   *curl;
	char	   *sigv4;			/* "aws:amz:<region>:s3" */
	MemoryContextCallback cb;
};

/* one HTTP exchange */
typedef struct S3Req
{
	/* request */
	const char *method;
	const char *key;			/* full object key, NULL for the bucket */
	const char *query;			/* canonical (sorted, encoded) or NULL */
	const char *body;
	size_t		body_len;
	const char *range;			/* "a-b" or NULL */
	const char *content_type;
	const char *if_match;
	const char *content_md5;	/* precomputed Content-MD5 (payload signing
								 * off), or NULL: computed when needed */
	/* GET into a caller buffer (2xx answers only) */
	char	   *dest;
	size_t		dest_cap;
	size_t		dest_len;
	/* response */
	long		status;
	char	   *resp;			/* malloc'd body (or error body) */
	size_t		resp_len;
	size_t		resp_cap;
	bool		overflow;
	char		etag[256];
	char		content_range[128];
	CURLcode	cc;
	int			attempts;
	char		errbuf[CURL_ERROR_SIZE];
	/* stall detection (xferinfo_cb): no byte moved for stall_ms */
	long		stall_ms;
	TimestampTz last_progress;
	curl_off_t	last_bytes;
	bool		stalled;
} S3Req;

struct TfS3Writer
{
	MemoryContext mcxt;			/* where the writer lives (begin's caller) */
	TfS3	   *s3;
	char	   *key;
	char	   *desc;
	char	   *buf;
	size_t		buflen;
	size_t		bufcap;
	int64		total;
	char	   *upload_id;
	List	   *etags;
	int			nparts;
	bool		done;
	bool		staged;			/* finish uploads, publish completes */
	bool		finished;		/* staged: every byte uploaded */
	bool		track_md5;		/* omd5: the MD5 of every byte written */
	TfMd5		omd5;

	/*
	 * Overlapped upload (see async_start): while part N is sent by a curl
	 * multi handle, driven between the writes that fill part N+1, the
	 * writer fills the other of two part buffers.  abuf is the buffer being
	 * sent (it must not change until the transfer ends), spare the free one.
	 */
	char	   *spare;
	CURLM	   *multi;
	CURL	   *acurl;
	struct curl_slist *aheaders;
	S3Req		areq;
	char	   *aurl;
	const char *abuf;
	size_t		alen;
	int			apartno;
	bool		arunning;		/* a part is in flight */

	/*
	 * The abort request is prepared in advance, in the writer's own memory:
	 * the reset callback must not palloc, nor rely on the client's memory.
	 */
	char	   *abort_url;
	TfS3Config	abort_cfg;
	char	   *abort_sigv4;
	MemoryContextCallback cb;
};

struct TfS3Reader
{
	MemoryContext mcxt;			/* where the reader lives (begin's caller) */
	TfS3	   *s3;
	char	   *key;
	char	   *desc;
	char	   *etag;
	int64		size;
	int64		offset;
	char	   *chunk;
	size_t		chunk_cap;
	size_t		chunk_len;
	size_t		chunk_pos;
	bool		eof;
};

static bool curl_initialized = false;

/* ----------------------------------------------------------------
 * small helpers
 * ----------------------------------------------------------------
 */
void
tf_s3_uri_encode(StringInfo buf, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
			c == '~' || (c == '/' && keep_slash))
			appendStringInfoChar(buf, (char) c);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[c >> 4]);
			appendStringInfoChar(buf, hex[c & 15]);
		}
	}
}

static char *
uri_encode(const char *s, bool keep_slash)
{
	StringInfoData buf;

	initStringInfo(&buf);
	tf_s3_uri_encode(&buf, s, keep_slash);
	return buf.data;
}

/* the one-shot digest of [data, data+len) into digest (size bytes) */
static void
s3_digest(pg_cryptohash_type type, const char *data, size_t len,
		  uint8 *digest, size_t size)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(type);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_cryptohash_final(ctx, digest, size) < 0)
		elog(ERROR, "could not compute %s: %s",
			 type == PG_MD5 ? "MD5" : "SHA-256", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}

static void
sha256_hex(const char *data, size_t len, char *out)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	if (len == 0)
	{
		strcpy(out, EMPTY_SHA256);
		return;
	}
	s3_digest(PG_SHA256, data, len, digest, sizeof(digest));
	out[hex_encode((const char *) digest, sizeof(digest), out)] = '\0';
}

/* base64 of the MD5 of [data, data+len): the Content-MD5 header value */
static void
md5_base64(const char *data, size_t len, char *out, int outlen)
{
	uint8		digest[MD5_DIGEST_LENGTH];
	int			n;

	s3_digest(PG_MD5, data, len, digest, sizeof(digest));
	n = pg_b64_encode((const char *) digest, MD5_DIGEST_LENGTH, out, outlen - 1);
	if (n < 0)
		elog(ERROR, "could not base64-encode an MD5 digest");
	out[n] = '\0';
}

/* XML entity decoding of [s, s+len) */
static char *
xml_decode(const char *s, size_t len)
{
	StringInfoData buf;
	const char *end = s + len;

	initStringInfo(&buf);
	while (s < end)
	{
		const char *semi;

		if (*s != '&' || (semi = memchr(s, ';', end - s)) == NULL)
		{
			appendStringInfoChar(&buf, *s++);
			continue;
		}
		if (semi - s == 4 && strncmp(s, "&amp", 4) == 0)
			appendStringInfoChar(&buf, '&');
		else if (semi - s == 3 && strncmp(s, "&lt", 3) == 0)
			appendStringInfoChar(&buf, '<');
		else if (semi - s == 3 && strncmp(s, "&gt", 3) == 0)
			appendStringInfoChar(&buf, '>');
		else if (semi - s == 5 && strncmp(s, "&quot", 5) == 0)
			appendStringInfoChar(&buf, '"');
		else if (semi - s == 5 && strncmp(s, "&apos", 5) == 0)
			appendStringInfoChar(&buf, '\'');
		else if (semi - s > 2 && s[1] == '#')
		{
			char	   *numend;
			unsigned long cp = (s[2] == 'x' || s[2] == 'X')
				? strtoul(s + 3, &numend, 16) : strtoul(s + 2, &numend, 10);
			char		utf8[8];

			if (numend != semi || cp == 0 || cp > 0x10FFFF)
			{
				appendStringInfoChar(&buf, *s++);
				continue;
			}
			unicode_to_utf8((pg_wchar) cp, (unsigned char *) utf8);
			appendBinaryStringInfo(&buf, utf8, pg_utf_mblen((unsigned char *) utf8));
		}
		else
		{
			appendStringInfoChar(&buf, *s++);
			continue;
		}
		s = semi + 1;
	}
	return buf.data;
}

/*
 * Find the first <tag>...</tag> in [s, end): start and stop delimit its raw
 * content (stop = the closing tag).  Tags here never carry attributes.
 */
static bool
xml_element(const char *s, const char *end, const char *tag,
			const char **start, const char **stop)
{
	char		open[64];
	char		close[64];
	size_t		olen;
	size_t		clen;
	const char *a;
	const char *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	olen = strlen(open);
	clen = strlen(close);
	for (a = s; a + olen <= end && memcmp(a, open, olen) != 0; a++)
		;
	if (a + olen > end)
		return false;
	a += olen;
	for (b = a; b + clen <= end && memcmp(b, close, clen) != 0; b++)
		;
	if (b + clen > end)
		return false;
	*start = a;
	*stop = b;
	return true;
}

/* entity-decoded text of the first <tag> in [s, end), or NULL */
static char *
xml_find(const char *s, const char *end, const char *tag, const char **next)
{
	const char *a;
	const char *b;

	if (!xml_element(s, end, tag, &a, &b))
		return NULL;
	if (next)
		*next = b;
	return xml_decode(a, b - a);
}

static char *
strip_quotes(char *s)
{
	size_t		n;

	if (s == NULL)
		return NULL;
	n = strlen(s);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
	{
		s[n - 1] = '\0';
		return s + 1;
	}
	return s;
}

/* ----------------------------------------------------------------
 * client
 * ----------------------------------------------------------------
 */
static void
client_cleanup(void *arg)
{
	TfS3	   *s3 = (TfS3 *) arg;

	if (s3->curl)
		curl_easy_cleanup(s3->curl);
	s3->curl = NULL;
}

TfS3 *
tf_s3_client(TfS3Config *config)
{
	TfS3	   *s3 = palloc0(sizeof(TfS3));

	if (!curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not initialize libcurl")));
		curl_initialized = true;
	}
	s3->cfg = config;
	s3->sigv4 = psprintf("aws:amz:%s:s3", config->region);
	s3->curl = curl_easy_init();
	if (s3->curl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	s3->cb.func = client_cleanup;
	s3->cb.arg = s3;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &s3->cb);
	return s3;
}

/* s3://bucket/key for messages */
static char *
s3_describe(TfS3 *s3, const char *key)
{
	return psprintf("s3://%s/%s", s3->cfg->bucket, key ? key : "");
}

static char *
s3_url(TfS3 *s3, const char *key, const char *query)
{
	StringInfoData buf;
	const char *ep = s3->cfg->endpoint;

	initStringInfo(&buf);
	if (s3->cfg->path_style)
		appendStringInfo(&buf, "%s/%s", ep, s3->cfg->bucket);
	else
	{
		const char *host = strstr(ep, "://") + 3;

		appendBinaryStringInfo(&buf, ep, host - ep);
		appendStringInfo(&buf, "%s.%s", s3->cfg->bucket, host);
		if (key == NULL)
			appendStringInfoChar(&buf, '/');
	}
	if (key)
	{
		appendStringInfoChar(&buf, '/');
		tf_s3_uri_encode(&buf, key, true);
	}
	if (query && query[0])
		appendStringInfo(&buf, "?%s", query);
	return buf.data;
}

/* ----------------------------------------------------------------
 * libcurl callbacks: never ereport in here
 * ----------------------------------------------------------------
 */
static size_t
resp_append(S3Req *req, const char *data, size_t n)
{
	if (req->resp_len + n > MAX_RESP_BODY)
	{
		req->overflow = true;
		return 0;
	}
	if (req->resp_len + n + 1 > req->resp_cap)
	{
		size_t		cap = Max(req->resp_cap * 2, req->resp_len + n + 1);
		char	   *p;

		cap = Max(cap, 4096);
		p = realloc(req->resp, cap);
		if (p == NULL)
			return 0;
		req->resp = p;
		req->resp_cap = cap;
	}
	memcpy(req->resp + req->resp_len, data, n);
	req->resp_len += n;
	req->resp[req->resp_len] = '\0';
	return n;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	S3Req	   *req = (S3Req *) arg;
	size_t		n = size * nmemb;

	if (req->dest)
	{
		/* the status line has been seen by now (header_cb) */
		if (req->status >= 200 && req->status < 300)
		{
			if (req->dest_len + n > req->dest_cap)
			{
				req->overflow = true;
				return 0;
			}
			memcpy(req->dest + req->dest_len, data, n);
			req->dest_len += n;
			return n;
		}
	}
	return resp_append(req, data, n);
}

static void
copy_header_value(const char *line, size_t n, size_t namelen, char *out, size_t outsz)
{
	const char *v = line + namelen;
	size_t		len;

	while (v < line + n && (*v == ' ' || *v == '\t'))
		v++;
	len = line + n - v;
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	if (len >= outsz)
		len = outsz - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

static size_t
header_cb(char *line, size_t size, size_t nmemb, void *arg)
{
	S3Req	   *req = (S3Req *) arg;
	size_t		n = size * nmemb;

	if (n > 5 && strncmp(line, "HTTP/", 5) == 0)
	{
		const char *sp = memchr(line, ' ', n);

		/* a new response (e.g. after 100 Continue): forget the old one */
		req->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		req->etag[0] = '\0';
		req->content_range[0] = '\0';
	}
	else if (n > 5 && pg_strncasecmp(line, "etag:", 5) == 0)
		copy_header_value(line, n, 5, req->etag, sizeof(req->etag));
	else if (n > 14 && pg_strncasecmp(line, "content-range:", 14) == 0)
		copy_header_value(line, n, 14, req->content_range, sizeof(req->content_range));
	return n;
}

/* abort the transfer when a cancel or terminate is pending and can be served */
static int
xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			curl_off_t ultotal, curl_off_t ulnow)
{
	S3Req	   *req = (S3Req *) arg;
	TimestampTz now;

	if ((QueryCancelPending || ProcDiePending) && INTERRUPTS_CAN_BE_PROCESSED())
		return 1;

	/*
	 * The 'timeout' option: no byte sent or received for that long.  Done
	 * here rather than with CURLOPT_LOW_SPEED_TIME, whose speed is an
	 * average over the last 5 seconds, so a stall after some bytes moved
	 * (e.g. a PUT whose body was sent) was only noticed up to 5 s late.
	 * libcurl calls this at least once a second while a transfer is idle.
	 */
	if (req->stall_ms > 0)
	{
		now = GetCurrentTimestamp();
		if (dlnow + ulnow != req->last_bytes || req->last_progress == 0)
		{
			req->last_bytes = dlnow + ulnow;
			req->last_progress = now;
		}
		else if (now - req->last_progress >= (TimestampTz) req->stall_ms * 1000)
		{
			req->stalled = true;
			return 1;
		}
	}
	return 0;
}

/* ----------------------------------------------------------------
 * one request, and the retry loop around it
 * ----------------------------------------------------------------
 */
static void
req_reset_response(S3Req *req)
{
	free(req->resp);
	req->resp = NULL;
	req->resp_len = req->resp_cap = 0;
	req->dest_len = 0;
	req->status = 0;
	req->overflow = false;
	req->etag[0] = '\0';
	req->content_range[0] = '\0';
	req->errbuf[0] = '\0';
	req->stalled = false;
	req->last_progress = 0;
	req->last_bytes = 0;
}

/*
 * Set up curl for req.  'headers' gets the slist to free afterwards.
 * Used by the normal path (palloc allowed) only.
 */
static void
setup_common(CURL *curl, TfS3Config *cfg, const char *sigv4, S3Req *req,
			 const char *url, struct curl_slist *headers)
{
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_VERBOSE, 0L);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "taskflow/1.0");
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long) cfg->connect_timeout);
	if (cfg->access_key_id && cfg->secret_access_key)
	{
		curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4);
		curl_easy_setopt(curl, CURLOPT_USERNAME, cfg->access_key_id);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, cfg->secret_access_key);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, req);

	if (strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0)
	{
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
		if (req->body_len >= UPLOAD_BUFFER_SIZE)
		{
			/*
			 * Large bodies (parts): bigger send chunks (the default 64 kB
			 * moves one chunk per curl_multi_perform of an overlapped part),
			 * and no "Expect: 100-continue" round trip before the body.
			 */
			curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, (long) UPLOAD_BUFFER_SIZE);
		}
		if (strcmp(req->method, "PUT") == 0)
			curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
	}
	else if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->range)
		curl_easy_setopt(curl, CURLOPT_RANGE, req->range);
}

static struct curl_slist *
build_headers(TfS3Config *cfg, S3Req *req, const char *payload_sha,
			  const char *content_md5)
{
	struct curl_slist *h = NULL;
	char		line[512];

	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", payload_sha);
	h = curl_slist_append(h, line);
	if (content_md5)
	{
		/* CURLOPT_AWS_SIGV4 signs it, like every header passed here */
		snprintf(line, sizeof(line), "Content-MD5: %s", content_md5);
		h = curl_slist_append(h, line);
	}
	if (req->body_len >= UPLOAD_BUFFER_SIZE)
		h = curl_slist_append(h, "Expect:");
	if (req->content_type)
	{
		snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
		h = curl_slist_append(h, line);
	}
	if (req->if_match)
	{
		snprintf(line, sizeof(line), "If-Match: \"%s\"", req->if_match);
		h = curl_slist_append(h, line);
	}
	if (cfg->session_token)
	{
		char	   *tok = psprintf("x-amz-security-token: %s", cfg->session_token);

		h = curl_slist_append(h, tok);
		pfree(tok);
	}
	if (h == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory building S3 request headers")));
	return h;
}

/*
 * The headers of req, with its payload hash.  A PUT carrying data (PUT
 * object, UploadPart) with payload signing off skips the SHA-256 of the
 * body: UNSIGNED-PAYLOAD plus a signed Content-MD5, which S3 checks against
 * the body (BadDigest), so a body changed in transit is still refused.
 * Everything else signs its (empty or small XML) payload.
 */
static struct curl_slist *
payload_headers(TfS3Config *cfg, S3Req *req)
{
	char		sha[65];
	char		md5[32];

	if (!cfg->sign_payload && strcmp(req->method, "PUT") == 0)
	{
		if (req->content_md5)
			return build_headers(cfg, req, "UNSIGNED-PAYLOAD", req->content_md5);
		md5_base64(req->body, req->body_len, md5, sizeof(md5));
		return build_headers(cfg, req, "UNSIGNED-PAYLOAD", md5);
	}
	sha256_hex(req->body, req->body_len, sha);
	return build_headers(cfg, req, sha, NULL);
}

static bool
curl_retryable(CURLcode cc)
{
	switch (cc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return true;
		default:
			return false;
	}
}

static bool
status_retryable(long status)
{
	return status >= 500 || status == 429 || status == 408;
}

/* sleep before retry 'attempt' (1-based): exponential backoff, full jitter */
static void
backoff_sleep(int attempt)
{
	double		cap = BACKOFF_BASE_MS * pow(2.0, Min(attempt - 1, 20));
	long		ms;
	TimestampTz until;

	cap = Min(cap, BACKOFF_MAX_MS);
	ms = (long) (cap / 2 + pg_prng_double(&pg_global_prng_state) * cap / 2);
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		CHECK_FOR_INTERRUPTS();
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* short description of what went wrong in an attempt, for LOG lines */
static char *
attempt_problem(S3Req *req)
{
	if (req->cc == CURLE_OPERATION_TIMEDOUT)
		return psprintf("timeout (%s)", req->errbuf[0] ? req->errbuf : curl_easy_strerror(req->cc));
	if (req->cc != CURLE_OK)
		return pstrdup(req->errbuf[0] ? req->errbuf : curl_easy_strerror(req->cc));
	if (req->resp)
	{
		char	   *code = xml_find(req->resp, req->resp + req->resp_len, "Code", NULL);

		if (code)
			return psprintf("%ld %s", req->status, code);
	}
	return psprintf("HTTP %ld", req->status);
}

/*
 * One attempt after another until success, a non-retryable answer or the
 * retry budget is spent.  May ERROR (interrupts, transport failure).
 */
static void
perform_loop(TfS3 *s3, S3Req *req, const char *desc, const char *url,
			 struct curl_slist *headers, int attempt)
{
	TfS3Config *cfg = s3->cfg;

	for (;;)
	{
		CURL	   *curl = s3->curl;

		CHECK_FOR_INTERRUPTS();
		req_reset_response(req);
		curl_easy_reset(curl);
		setup_common(curl, cfg, s3->sigv4, req, url, headers);
		/* 'timeout': see xferinfo_cb; connect_timeout: setup_common */
		req->stall_ms = (long) cfg->timeout * 1000L;
		req->last_progress = GetCurrentTimestamp();
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, req);

		req->cc = curl_easy_perform(curl);
		if (req->cc == CURLE_OK)
			curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &req->status);

		if (req->cc == CURLE_ABORTED_BY_CALLBACK && req->stalled)
		{
			/* our stall detection: a timeout like any other (retryable) */
			req->cc = CURLE_OPERATION_TIMEDOUT;
			snprintf(req->errbuf, sizeof(req->errbuf),
					 "no progress for %d s", cfg->timeout);
		}
		if (req->cc == CURLE_ABORTED_BY_CALLBACK)
		{
			/* a cancel or terminate is pending: serve it */
			CHECK_FOR_INTERRUPTS();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("S3 %s %s interrupted", req->method, desc)));
		}
		if (req->cc == CURLE_WRITE_ERROR && req->overflow)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("S3 %s %s failed: response larger than expected",
							req->method, desc)));
		if (!((req->cc != CURLE_OK && curl_retryable(req->cc)) ||
			  (req->cc == CURLE_OK && status_retryable(req->status))))
			break;
		if (attempt >= cfg->max_retries)
			break;
		attempt++;
		req->attempts = attempt + 1;
		ereport(LOG,
				(errmsg("S3 %s %s: %s, retrying (%d of %d)", req->method, desc,
						attempt_problem(req), attempt, cfg->max_retries)));
		req_reset_response(req);
		backoff_sleep(attempt);
	}

	if (req->cc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("S3 %s %s failed: %s", req->method, desc, attempt_problem(req)),
				 attempt > 0 ? errdetail("Gave up after %d attempts.", attempt + 1) : 0,
				 errhint("Check the server's endpoint and the taskflow.s3_* timeouts.")));
}

/*
 * Perform req with retries.  Returns with req->status set (any status the
 * caller must interpret; the body is in req->resp until req_reset_response);
 * ERRORs on transport failure after the retries and on interrupts, freeing
 * what it allocated with malloc.  desc names the object for messages.
 */
static void
s3_perform(TfS3 *s3, S3Req *req, const char *desc)
{
	char	   *url = s3_url(s3, req->key, req->query);
	struct curl_slist *headers;

	req->attempts = 1;
	headers = payload_headers(s3->cfg, req);
	PG_TRY();
	{
		perform_loop(s3, req, desc, url, headers, 0);
	}
	PG_CATCH();
	{
		curl_slist_free_all(headers);
		req_reset_response(req);
		PG_RE_THROW();
	}
	PG_END_TRY();
	curl_slist_free_all(headers);
}

/*
 * S3 error code for an answer without an error body (HEAD answers never have
 * one; proxies and load balancers often answer 5xx without one): the code S3
 * itself uses for that status, so that messages read the same either way.
 */
static const char *
status_code_name(long status)
{
	switch (status)
	{
		case 400:
			return "BadRequest";
		case 401:
			return "Unauthorized";
		case 403:
			return "AccessDenied";
		case 404:
			return "NotFound";
		case 405:
			return "MethodNotAllowed";
		case 409:
			return "Conflict";
		case 411:
			return "MissingContentLength";
		case 412:
			return "PreconditionFailed";
		case 416:
			return "InvalidRange";
		case 429:
			return "SlowDown";
		case 500:
			return "InternalError";
		case 501:
			return "NotImplemented";
		case 502:
			return "BadGateway";
		case 503:
			return "ServiceUnavailable";
		case 504:
			return "GatewayTimeout";
		default:
			return "UnknownError";
	}
}

/*
 * ERROR for an unexpected HTTP status, with S3's <Code> and <Message>, or,
 * for an answer without a body (HEAD), the code derived from the status:
 * the same message shape, SQLSTATE and hint either way.
 */
static void
s3_fail(S3Req *req, const char *desc)
{
	int			attempts = req->attempts;
	long		status = req->status;
	char	   *code = NULL;
	char	   *msg = NULL;
	bool		derived = false;
	int			errc;
	char	   *detail = NULL;
	char	   *hint = NULL;

	if (req->resp)
	{
		code = xml_find(req->resp, req->resp + req->resp_len, "Code", NULL);
		msg = xml_find(req->resp, req->resp + req->resp_len, "Message", NULL);
	}
	req_reset_response(req);
	if (code == NULL || code[0] == '\0')
	{
		code = pstrdup(status_code_name(status));
		derived = true;
	}
	if (status == 403 || status == 401)
		errc = ERRCODE_INSUFFICIENT_PRIVILEGE;
	else if (status == 404)
		errc = ERRCODE_UNDEFINED_FILE;
	else if (status >= 500 || status == 429)
		errc = ERRCODE_IO_ERROR;
	else
		errc = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;

	if (derived)
		detail = psprintf("The answer had no error body%s; the code is derived from the HTTP status.",
						  strcmp(req->method, "HEAD") == 0 ? " (HEAD answers never have one)" : "");
	if (attempts > 1)
		detail = psprintf("%s%sGave up after %d attempts.",
						  detail ? detail : "", detail ? " " : "", attempts);

	if (status == 403 || status == 401)
		hint = "Check the access_key_id / secret_access_key of the user mapping and the bucket policy.";
	else if (status == 404 && strcmp(req->method, "GET") != 0)
		hint = "Check the bucket (and prefix) in the server's url option.";
	else if (status >= 500 || status == 429)
		hint = psprintf("The storage service is unavailable or throttling requests; the request was tried %d time(s). Retry later, or raise the server's max_retries option (or taskflow.s3_max_retries).",
						attempts);

	ereport(ERROR,
			(errcode(errc),
			 errmsg("S3 %s %s failed: %ld %s%s%s", req->method, desc, status,
					code, msg ? ": " : "", msg ? msg : ""),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}

/* ----------------------------------------------------------------
 * simple operations
 * ----------------------------------------------------------------
 */
static void
s3_put(TfS3 *s3, const char *key, const char *data, size_t len, char **etag,
	   const char *content_md5)
{
	S3Req		req = {0};
	char	   *desc = s3_describe(s3, key);

	req.method = "PUT";
	req.key = key;
	req.body = data;
	req.body_len = len;
	req.content_type = "application/octet-stream";
	req.content_md5 = content_md5;
	s3_perform(s3, &req, desc);
	if (req.status != 200)
		s3_fail(&req, desc);
	if (etag)
		*etag = req.etag[0] ? pstrdup(strip_quotes(req.etag)) : NULL;
	req_reset_response(&req);
	elog(DEBUG1, "S3 PUT %s: %zu bytes", desc, len);
}

void
tf_s3_put(TfS3 *s3, const char *key, const char *data, size_t len, char **etag)
{
	s3_put(s3, key, data, len, etag, NULL);
}

bool
tf_s3_head(TfS3 *s3, const char *key, TfObjectInfo *info)
{
	S3Req		req = {0};
	char	   *desc = s3_describe(s3, key);
	curl_off_t	len = -1;
	long		filetime = -1;

	req.method = "HEAD";
	req.key = key;
	s3_perform(s3, &req, desc);
	if (req.status == 404)
	{
		req_reset_response(&req);
		return false;
	}
	if (req.status != 200)
		s3_fail(&req, desc);
	curl_easy_getinfo(s3->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
	if (info)
	{
		const char *lm = NULL;
		struct curl_header *h;

		memset(info, 0, sizeof(*info));
		info->key = pstrdup(key);
		info->size = (int64) len;
		info->etag = req.etag[0] ? pstrdup(strip_quotes(req.etag)) : NULL;
		if (curl_easy_header(s3->curl, "Last-Modified", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
			lm = h->value;
		if (lm)
			filetime = (long) curl_getdate(lm, NULL);
		info->last_modified = filetime >= 0 ? time_t_to_timestamptz((pg_time_t) filetime) : 0;
	}
	req_reset_response(&req);
	return true;
}

void
tf_s3_delete(TfS3 *s3, const char *key)
{
	S3Req		req = {0};
	char	   *desc = s3_describe(s3, key);

	req.method = "DELETE";
	req.key = key;
	s3_perform(s3, &req, desc);
	if (req.status != 204 && req.status != 200 && req.status != 404)
		s3_fail(&req, desc);
	req_reset_response(&req);
}

/* ----------------------------------------------------------------
 * ListObjectsV2
 * ----------------------------------------------------------------
 */
static TimestampTz
parse_iso_time(const char *s)
{
	return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
												   CStringGetDatum(s),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
}

/*
 * The answer of one page of a listing (ListObjectsV2, ListMultipartUploads):
 * an error unless 200, copied out of libcurl's malloc'd memory into a
 * NUL-terminated palloc'd string before anything can ERROR, and checked for
 * its closing root element — a 200 cut short would otherwise look like a
 * complete, shorter listing.  'what' names the request in messages.
 */
static char *
s3_list_page(S3Req *req, const char *desc, const char *what, const char *root,
			 size_t *body_len)
{
	char	   *body;
	char	   *closing;

	if (req->status != 200)
		s3_fail(req, desc);
	*body_len = req->resp_len;
	body = palloc(*body_len + 1);
	if (*body_len)
		memcpy(body, req->resp, *body_len);
	body[*body_len] = '\0';
	req_reset_response(req);

	closing = psprintf("</%s>", root);
	if (strstr(body, closing) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 %s %s: incomplete answer (no closing %s)", what, desc, closing),
				 errhint("The connection may have been cut; retry the operation.")));
	pfree(closing);
	return body;
}

List *
tf_s3_list(TfS3 *s3, const char *prefix, int strip_len)
{
	List	   *result = NIL;
	char	   *token = NULL;
	char	   *desc = s3_describe(s3, prefix);

	for (;;)
	{
		S3Req		req = {0};
		StringInfoData q;
		const char *p;
		const char *end;
		const char *cstart;
		const char *cend;
		char	   *truncated;
		char	   *body;
		size_t		body_len;

		initStringInfo(&q);
		if (token)
		{
			appendStringInfoString(&q, "continuation-token=");
			tf_s3_uri_encode(&q, token, false);
			appendStringInfoChar(&q, '&');
		}
		appendStringInfo(&q, "list-type=2&max-keys=%d&prefix=", s3->cfg->list_page_size);
		tf_s3_uri_encode(&q, prefix, false);
		req.method = "GET";
		req.query = q.data;
		s3_perform(s3, &req, desc);
		body = s3_list_page(&req, desc, "list", "ListBucketResult", &body_len);

		p = body;
		end = body + body_len;
		while (xml_element(p, end, "Contents", &cstart, &cend))
		{
			char	   *key = xml_find(cstart, cend, "Key", NULL);
			char	   *size = xml_find(cstart, cend, "Size", NULL);
			char	   *lm = xml_find(cstart, cend, "LastModified", NULL);
			TfObjectInfo *info;

			p = cend;
			if (key == NULL || strlen(key) < (size_t) strip_len)
				continue;
			info = palloc0(sizeof(TfObjectInfo));
			info->key = pstrdup(key + strip_len);
			info->size = size ? strtoi64(size, NULL, 10) : 0;
			info->last_modified = lm ? parse_iso_time(lm) : 0;
			info->etag = strip_quotes(xml_find(cstart, cend, "ETag", NULL));
			result = lappend(result, info);
		}
		truncated = xml_find(body, end, "IsTruncated", NULL);
		if (truncated == NULL || strcmp(truncated, "true") != 0)
			break;
		token = xml_find(body, end, "NextContinuationToken", NULL);
		if (token == NULL || token[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("S3 list %s: truncated answer without a continuation token", desc)));
		CHECK_FOR_INTERRUPTS();
	}
	return result;
}

/* ----------------------------------------------------------------
 * multipart writer
 * ----------------------------------------------------------------
 */

/*
 * Best-effort AbortMultipartUpload on a fresh curl handle, without palloc,
 * interrupts or ERROR: runs from a memory context reset callback.
 */
/*
 * Stop a part in flight and free the overlapped upload's curl handles.
 * Never ERRORs, no palloc: runs from the reset callback too.
 */
static void
async_release(TfS3Writer *w)
{
	if (w->multi && w->acurl && w->arunning)
		curl_multi_remove_handle(w->multi, w->acurl);
	w->arunning = false;
	if (w->acurl)
		curl_easy_cleanup(w->acurl);
	w->acurl = NULL;
	if (w->multi)
		curl_multi_cleanup(w->multi);
	w->multi = NULL;
	curl_slist_free_all(w->aheaders);
	w->aheaders = NULL;
	free(w->areq.resp);
	w->areq.resp = NULL;
	w->areq.resp_len = w->areq.resp_cap = 0;
}

static void
abort_upload_noerror(TfS3Writer *w)
{
	TfS3Config *cfg = &w->abort_cfg;
	CURL	   *curl;
	struct curl_slist *h = NULL;
	S3Req		req;
	CURLcode	cc;
	char		line[128];

	async_release(w);
	if (w->abort_url == NULL || w->done)
		return;
	w->done = true;
	curl = curl_easy_init();
	if (curl == NULL)
		return;

	/*
	 * No ERROR from here on: the LOG/DEBUG1 lines below end in errfinish's
	 * CHECK_FOR_INTERRUPTS, which would raise a pending cancel or a parallel
	 * worker's message (parexport.c aborts parts after terminating its
	 * workers) past the curl cleanup and into the caller's abort loop.
	 */
	HOLD_INTERRUPTS();
	memset(&req, 0, sizeof(req));
	req.method = "DELETE";
	h = curl_slist_append(h, "x-amz-content-sha256: " EMPTY_SHA256);
	if (h && cfg->session_token)
	{
		char	   *tok = malloc(strlen(cfg->session_token) + 32);

		if (tok)
		{
			sprintf(tok, "x-amz-security-token: %s", cfg->session_token);
			h = curl_slist_append(h, tok);
			free(tok);
		}
	}
	if (h)
	{
		setup_common(curl, cfg, w->abort_sigv4, &req, w->abort_url, h);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long) CLEANUP_TIMEOUT_S);
		curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long) Min(cfg->connect_timeout, CLEANUP_TIMEOUT_S));
		cc = curl_easy_perform(curl);
		if (cc == CURLE_OK)
			curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &req.status);
		snprintf(line, sizeof(line), "%ld", req.status);
		/* LOG is safe enough here; failing to log is not fatal either */
		if (cc != CURLE_OK || (req.status != 204 && req.status != 200))
			ereport(LOG,
					(errmsg("could not abort multipart upload of %s: %s",
							w->desc, cc != CURLE_OK ? curl_easy_strerror(cc) : line)));
		else
			ereport(DEBUG1, (errmsg("aborted multipart upload of %s", w->desc)));
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
	free(req.resp);
	RESUME_INTERRUPTS();
}

static void
writer_cleanup(void *arg)
{
	abort_upload_noerror((TfS3Writer *) arg);
}

TfS3Writer *
tf_s3_writer_begin(TfS3 *s3, const char *key)
{
	TfS3Writer *w = palloc0(sizeof(TfS3Writer));

	w->mcxt = CurrentMemoryContext;
	w->s3 = s3;
	w->key = pstrdup(key);
	w->desc = s3_describe(s3, key);
	w->bufcap = Max(s3->cfg->part_size, s3->cfg->multipart_threshold);
	w->buf = palloc(w->bufcap);
	w->cb.func = writer_cleanup;
	w->cb.arg = w;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &w->cb);
	return w;
}

/* the abort request of w's upload, prepared in the writer's own memory */
static void
prepare_abort(TfS3Writer *w)
{
	w->abort_url = s3_url(w->s3, w->key, psprintf("uploadId=%s", uri_encode(w->upload_id, false)));
	w->abort_cfg = *w->s3->cfg;
	w->abort_cfg.access_key_id = w->s3->cfg->access_key_id ? pstrdup(w->s3->cfg->access_key_id) : NULL;
	w->abort_cfg.secret_access_key = w->s3->cfg->secret_access_key ? pstrdup(w->s3->cfg->secret_access_key) : NULL;
	w->abort_cfg.session_token = w->s3->cfg->session_token ? pstrdup(w->s3->cfg->session_token) : NULL;
	w->abort_sigv4 = pstrdup(w->s3->sigv4);
}

static void
create_upload(TfS3Writer *w)
{
	S3Req		req = {0};
	char	   *id;

	req.method = "POST";
	req.key = w->key;
	req.query = "uploads=";
	req.content_type = "application/octet-stream";
	s3_perform(w->s3, &req, w->desc);
	if (req.status != 200)
		s3_fail(&req, w->desc);
	id = req.resp ? xml_find(req.resp, req.resp + req.resp_len, "UploadId", NULL) : NULL;
	req_reset_response(&req);
	if (id == NULL || id[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 POST %s: CreateMultipartUpload answer has no UploadId", w->desc)));
	w->upload_id = id;
	prepare_abort(w);
	elog(DEBUG1, "S3 multipart upload of %s started", w->desc);
}

/*
 * A request body leaves the writer (bodies leave in order: parts in part
 * order, or the one PUT): with track_md5, the object's MD5 takes its bytes,
 * and with payload signing off, its Content-MD5 is computed in the same pass
 * (md5x2.c) into out (base64, 25 bytes at least) and set on req.  Otherwise
 * nothing: payload_headers hashes the body as it always did.
 */
static void
writer_hash_body(TfS3Writer *w, S3Req *req, const char *data, size_t len,
				 char *out, int outlen)
{
	TfMd5		part;
	uint8		digest[TF_MD5_DIGEST_LENGTH];
	int			n;

	if (!w->track_md5)
		return;
	if (w->s3->cfg->sign_payload)
	{
		tf_md5_update(&w->omd5, data, len);
		return;
	}
	tf_md5_init(&part);
	tf_md5_update2(&w->omd5, &part, data, len);
	tf_md5_final(&part, digest);
	n = pg_b64_encode((const char *) digest, TF_MD5_DIGEST_LENGTH, out, outlen - 1);
	if (n < 0)
		elog(ERROR, "could not base64-encode an MD5 digest");
	out[n] = '\0';
	req->content_md5 = out;
}

static void
upload_part(TfS3Writer *w, const char *data, size_t len)
{
	S3Req		req = {0};
	int			partno = w->nparts + 1;
	char		md5[32];

	if (partno > tf_s3_max_parts)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("object %s is too large for part size %d: at most %d parts are allowed",
						w->desc, w->s3->cfg->part_size, tf_s3_max_parts),
				 errhint("Raise the server's part_size option (or taskflow.s3_part_size), or write smaller objects.")));
	req.method = "PUT";
	req.key = w->key;
	req.query = psprintf("partNumber=%d&uploadId=%s", partno, uri_encode(w->upload_id, false));
	req.body = data;
	req.body_len = len;
	writer_hash_body(w, &req, data, len, md5, sizeof(md5));
	s3_perform(w->s3, &req, w->desc);
	if (req.status != 200)
		s3_fail(&req, w->desc);
	if (req.etag[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 PUT %s part %d: answer has no ETag", w->desc, partno)));
	w->etags = lappend(w->etags, pstrdup(req.etag));
	w->nparts = partno;
	req_reset_response(&req);
}

/*
 * Overlapped UploadPart: start sending part w->nparts + 1 from data (which
 * must stay untouched until async_wait) on the writer's multi handle and
 * return at once.  async_progress (called by every write) moves bytes
 * without blocking; async_wait finishes the transfer, retries it the usual
 * way if it failed retryably, and records the part's ETag.  At most one
 * part is in flight, so parts complete in order.
 */
static void
async_start(TfS3Writer *w, const char *data, size_t len)
{
	TfS3	   *s3 = w->s3;
	int			partno = w->nparts + 1;
	int			still = 0;
	char		md5[32];

	Assert(!w->arunning);
	if (partno > tf_s3_max_parts)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("object %s is too large for part size %d: at most %d parts are allowed",
						w->desc, s3->cfg->part_size, tf_s3_max_parts),
				 errhint("Raise the server's part_size option (or taskflow.s3_part_size), or write smaller objects.")));
	if (w->multi == NULL)
	{
		w->multi = curl_multi_init();
		if (w->multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl multi handle")));
	}
	if (w->acurl == NULL)
	{
		w->acurl = curl_easy_init();
		if (w->acurl == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl handle")));
	}
	curl_slist_free_all(w->aheaders);
	w->aheaders = NULL;
	free(w->areq.resp);
	memset(&w->areq, 0, sizeof(S3Req));
	w->areq.method = "PUT";
	w->areq.key = w->key;
	w->areq.query = psprintf("partNumber=%d&uploadId=%s", partno,
							 uri_encode(w->upload_id, false));
	w->areq.body = data;
	w->areq.body_len = len;
	w->areq.attempts = 1;
	w->abuf = data;
	w->alen = len;
	w->apartno = partno;
	/* the payload's sha256 or Content-MD5, now that the buffer is full */
	writer_hash_body(w, &w->areq, data, len, md5, sizeof(md5));
	w->aheaders = payload_headers(s3->cfg, &w->areq);
	w->areq.content_md5 = NULL;	/* md5 is about to go out of scope */
	if (w->aurl)
		pfree(w->aurl);
	w->aurl = s3_url(s3, w->key, w->areq.query);

	curl_easy_reset(w->acurl);
	setup_common(w->acurl, s3->cfg, s3->sigv4, &w->areq, w->aurl, w->aheaders);
	w->areq.stall_ms = (long) s3->cfg->timeout * 1000L;
	w->areq.last_progress = GetCurrentTimestamp();
	curl_easy_setopt(w->acurl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(w->acurl, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(w->acurl, CURLOPT_XFERINFODATA, &w->areq);
	if (curl_multi_add_handle(w->multi, w->acurl) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start the upload of part %d of %s", partno, w->desc)));
	w->arunning = true;
	(void) curl_multi_perform(w->multi, &still);
}

/*
 * Move the part in flight along without blocking.  The time spent producing
 * rows between two calls is not a stall of the store: only waits count.
 */
static void
async_progress(TfS3Writer *w)
{
	int			still = 0;

	if (!w->arunning)
		return;
	w->areq.last_progress = GetCurrentTimestamp();
	(void) curl_multi_perform(w->multi, &still);
}

/* wait for the part in flight, retry it if needed, record its ETag */
static void
async_wait(TfS3Writer *w)
{
	TfS3	   *s3 = w->s3;
	S3Req	   *req = &w->areq;
	CURLMsg    *msg;
	int			still = 1;
	int			left;

	if (!w->arunning)
		return;
	w->areq.last_progress = GetCurrentTimestamp();
	for (;;)
	{
		CURLMcode	mc = curl_multi_perform(w->multi, &still);

		if (mc != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("S3 PUT %s part %d: %s", w->desc, w->apartno,
							curl_multi_strerror(mc))));
		if (still == 0)
			break;
		CHECK_FOR_INTERRUPTS();
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		(void) curl_multi_poll(w->multi, NULL, 0, 100, NULL);
		pgstat_report_wait_end();
	}
	req->cc = CURLE_OK;
	while ((msg = curl_multi_info_read(w->multi, &left)) != NULL)
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == w->acurl)
			req->cc = msg->data.result;
	curl_multi_remove_handle(w->multi, w->acurl);
	w->arunning = false;
	if (req->cc == CURLE_OK)
		curl_easy_getinfo(w->acurl, CURLINFO_RESPONSE_CODE, &req->status);
	if (req->cc == CURLE_ABORTED_BY_CALLBACK && req->stalled)
	{
		req->cc = CURLE_OPERATION_TIMEDOUT;
		snprintf(req->errbuf, sizeof(req->errbuf),
				 "no progress for %d s", s3->cfg->timeout);
	}
	if (req->cc == CURLE_ABORTED_BY_CALLBACK)
	{
		CHECK_FOR_INTERRUPTS();
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("S3 PUT %s interrupted", w->desc)));
	}
	if (req->cc == CURLE_WRITE_ERROR && req->overflow)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 PUT %s failed: response larger than expected", w->desc)));
	if (((req->cc != CURLE_OK && curl_retryable(req->cc)) ||
		 (req->cc == CURLE_OK && status_retryable(req->status))) &&
		s3->cfg->max_retries > 0)
	{
		/* the overlapped attempt was attempt 1: go on as perform_loop does */
		req->attempts = 2;
		ereport(LOG,
				(errmsg("S3 %s %s: %s, retrying (%d of %d)", req->method, w->desc,
						attempt_problem(req), 1, s3->cfg->max_retries)));
		req_reset_response(req);
		backoff_sleep(1);
		perform_loop(s3, req, w->desc, w->aurl, w->aheaders, 1);
	}
	else if (req->cc != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("S3 %s %s failed: %s", req->method, w->desc, attempt_problem(req)),
				 errhint("Check the server's endpoint and the taskflow.s3_* timeouts.")));
	if (req->status != 200)
		s3_fail(req, w->desc);
	if (req->etag[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("S3 PUT %s part %d: answer has no ETag", w->desc, w->apartno)));
	w->etags = lappend(w->etags, pstrdup(req->etag));
	w->nparts = w->apartno;
	req_reset_response(req);
	curl_slist_free_all(w->aheaders);
	w->aheaders = NULL;
	w->abuf = NULL;
}

static void
flush_parts(TfS3Writer *w)
{
	size_t		off = 0;
	size_t		part = w->s3->cfg->part_size;

	if (w->upload_id == NULL)
		create_upload(w);
	while (w->buflen - off >= part)
	{
		upload_part(w, w->buf + off, part);
		off += part;
	}
	if (off > 0)
	{
		memmove(w->buf, w->buf + off, w->buflen - off);
		w->buflen -= off;
	}
}

void
tf_s3_writer_write(TfS3Writer *w, const char *data, size_t len)
{
	async_progress(w);
	while (len > 0)
	{
		size_t		n;

		if (w->buflen == w->bufcap)
		{
			/* the upload id and part ETags must outlive the caller's context */
			MemoryContext old = MemoryContextSwitchTo(w->mcxt);

			if (w->bufcap == (size_t) w->s3->cfg->part_size)
			{
				/*
				 * One full part: send it in the background and fill the
				 * other buffer meanwhile (two part buffers at most).
				 */
				char	   *full = w->buf;

				if (w->upload_id == NULL)
					create_upload(w);
				async_wait(w);
				if (w->spare == NULL)
					w->spare = palloc(w->bufcap);
				w->buf = w->spare;
				w->spare = full;
				w->buflen = 0;
				async_start(w, full, w->bufcap);
			}
			else
				flush_parts(w);
			MemoryContextSwitchTo(old);
		}
		n = Min(len, w->bufcap - w->buflen);
		memcpy(w->buf + w->buflen, data, n);
		w->buflen += n;
		w->total += n;
		data += n;
		len -= n;
	}
}

static void
complete_upload(TfS3Writer *w, char **etag)
{
	S3Req		req = {0};
	StringInfoData xml;
	ListCell   *lc;
	int			i = 0;
	char	   *err;
	char	   *tag;

	initStringInfo(&xml);
	appendStringInfoString(&xml, "<CompleteMultipartUpload>");
	foreach(lc, w->etags)
		appendStringInfo(&xml, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
						 ++i, (char *) lfirst(lc));
	appendStringInfoString(&xml, "</CompleteMultipartUpload>");

	req.method = "POST";
	req.key = w->key;
	req.query = psprintf("uploadId=%s", uri_encode(w->upload_id, false));
	req.body = xml.data;
	req.body_len = xml.len;
	req.content_type = "application/xml";
	s3_perform(w->s3, &req, w->desc);
	/* S3 may answer 200 with an <Error> body */
	err = (req.status == 200 && req.resp)
		? xml_find(req.resp, req.resp + req.resp_len, "Code", NULL) : NULL;
	if (req.status != 200 || err)
	{
		if (req.status == 200)
			req.status = 500;
		s3_fail(&req, w->desc);
	}
	tag = req.resp ? xml_find(req.resp, req.resp + req.resp_len, "ETag", NULL) : NULL;
	req_reset_response(&req);
	if (etag)
		*etag = tag ? pstrdup(strip_quotes(tag)) : NULL;
}

void
tf_s3_writer_finish(TfS3Writer *w, int64 *size, char **etag)
{
	MemoryContext old = MemoryContextSwitchTo(w->mcxt);

	/* the part in flight first: parts complete in order */
	async_wait(w);
	async_release(w);
	if (w->spare)
		pfree(w->spare);
	w->spare = NULL;
	if (w->staged)
	{
		/*
		 * Upload everything, complete nothing: the object stays invisible
		 * (an in-progress multipart upload) until tf_s3_writer_publish.  The
		 * only or last part may be smaller than 5 MiB.  An ERROR before the
		 * publish aborts the upload (reset callback).
		 */
		if (w->upload_id == NULL)
			create_upload(w);
		flush_parts(w);
		if (w->buflen > 0 || w->nparts == 0)
			upload_part(w, w->buf, w->buflen);
		w->buflen = 0;
		w->finished = true;
		if (size)
			*size = w->total;
		if (etag)
			*etag = NULL;
		pfree(w->buf);
		w->buf = NULL;
		MemoryContextSwitchTo(old);
		return;
	}
	if (w->upload_id == NULL)
	{
		S3Req		dummy = {0};
		char		md5[32];

		writer_hash_body(w, &dummy, w->buf, w->buflen, md5, sizeof(md5));
		s3_put(w->s3, w->key, w->buf, w->buflen, etag, dummy.content_md5);
	}
	else
	{
		flush_parts(w);
		if (w->buflen > 0 || w->nparts == 0)
			upload_part(w, w->buf, w->buflen);
		w->buflen = 0;
		complete_upload(w, etag);
		elog(DEBUG1, "S3 multipart upload of %s completed: %d parts, " INT64_FORMAT " bytes",
			 w->desc, w->nparts, w->total);
	}
	w->done = true;
	if (size)
		*size = w->total;
	pfree(w->buf);
	w->buf = NULL;
	MemoryContextSwitchTo(old);
}

TfS3Writer *
tf_s3_writer_begin_staged(TfS3 *s3, const char *key)
{
	TfS3Writer *w = tf_s3_writer_begin(s3, key);

	w->staged = true;
	return w;
}

/*
 * Have the writer compute the MD5 of every byte written (before the first
 * write), in the pass that computes each part's Content-MD5 anyway.
 */
void
tf_s3_writer_track_md5(TfS3Writer *w)
{
	if (w->total > 0 || w->nparts > 0)
		elog(ERROR, "S3 upload of %s: MD5 tracking must start before the first write", w->desc);
	w->track_md5 = true;
	tf_md5_init(&w->omd5);
}

/* after finish: the hex MD5 of every byte written (33 bytes) */
void
tf_s3_writer_md5(TfS3Writer *w, char *hex)
{
	uint8		digest[TF_MD5_DIGEST_LENGTH];

	if (!w->track_md5 || w->buf != NULL)
		elog(ERROR, "S3 upload of %s: no MD5 tracked, or not finished", w->desc);
	tf_md5_final(&w->omd5, digest);
	hex[hex_encode((const char *) digest, TF_MD5_DIGEST_LENGTH, hex)] = '\0';
	w->track_md5 = false;
}

void
tf_s3_writer_publish(TfS3Writer *w, char **etag)
{
	MemoryContext old;

	Assert(w->staged);
	if (!w->finished || w->done)
		elog(ERROR, "S3 upload of %s is not ready to be published", w->desc);
	old = MemoryContextSwitchTo(w->mcxt);
	complete_upload(w, etag);
	w->done = true;
	elog(DEBUG1, "S3 multipart upload of %s completed: %d parts, " INT64_FORMAT " bytes",
		 w->desc, w->nparts, w->total);
	MemoryContextSwitchTo(old);
}

/*
 * Parallel export (storage.h): the token of a finished staged upload is its
 * upload id and the etags of its parts, one a line; the writer is disowned
 * (done), so neither an ERROR nor the exit of this process aborts it.
 */
char *
tf_s3_writer_handoff(TfS3Writer *w)
{
	StringInfoData b;
	ListCell   *lc;

	if (!w->staged || !w->finished || w->done || w->upload_id == NULL)
		elog(ERROR, "S3 upload of %s cannot be handed off", w->desc);
	initStringInfo(&b);
	appendStringInfoString(&b, w->upload_id);
	foreach(lc, w->etags)
		appendStringInfo(&b, "\n%s", (char *) lfirst(lc));
	w->done = true;
	return b.data;
}

/* a finished staged writer of key from a token of tf_s3_writer_handoff */
TfS3Writer *
tf_s3_writer_adopt(TfS3 *s3, const char *key, const char *token, int64 size)
{
	TfS3Writer *w = palloc0(sizeof(TfS3Writer));
	char	   *t = pstrdup(token);
	char	   *line;
	char	   *save = NULL;

	w->mcxt = CurrentMemoryContext;
	w->s3 = s3;
	w->key = pstrdup(key);
	w->desc = s3_describe(s3, key);
	w->staged = true;
	w->finished = true;
	w->total = size;
	line = strtok_r(t, "\n", &save);
	if (line == NULL || *line == '\0')
		elog(ERROR, "invalid handoff token for S3 upload of %s", w->desc);
	w->upload_id = pstrdup(line);
	while ((line = strtok_r(NULL, "\n", &save)) != NULL)
	{
		w->etags = lappend(w->etags, pstrdup(line));
		w->nparts++;
	}
	prepare_abort(w);
	w->cb.func = writer_cleanup;
	w->cb.arg = w;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &w->cb);
	return w;
}

/*
 * In-progress multipart uploads under prefix (ListMultipartUploads, paginated
 * by key-marker / upload-id-marker): List of TfS3Upload *, keys stripped of
 * the first strip_len bytes.
 */
List *
tf_s3_list_uploads(TfS3 *s3, const char *prefix, int strip_len, long *refused)
{
	List	   *result = NIL;
	char	   *key_marker = NULL;
	char	   *id_marker = NULL;
	char	   *desc = s3_describe(s3, prefix);

	for (;;)
	{
		S3Req		req = {0};
		StringInfoData q;
		const char *p;
		const char *end;
		const char *cstart;
		const char *cend;
		char	   *truncated;
		char	   *body;
		size_t		body_len;

		/* canonical query: parameters sorted by name */
		initStringInfo(&q);
		if (key_marker)
		{
			appendStringInfoString(&q, "key-marker=");
			tf_s3_uri_encode(&q, key_marker, false);
			appendStringInfoChar(&q, '&');
		}
		appendStringInfoString(&q, "prefix=");
		tf_s3_uri_encode(&q, prefix, false);
		if (id_marker)
		{
			appendStringInfoString(&q, "&upload-id-marker=");
			tf_s3_uri_encode(&q, id_marker, false);
		}
		appendStringInfoString(&q, "&uploads=");
		req.method = "GET";
		req.query = q.data;
		s3_perform(s3, &req, desc);
		if (refused && (req.status == 403 || req.status == 501 || req.status == 405))
		{
			/* no s3:ListBucketMultipartUploads, or a store without it */
			*refused = req.status;
			req_reset_response(&req);
			return result;
		}
		body = s3_list_page(&req, desc, "list uploads", "ListMultipartUploadsResult", &body_len);

		p = body;
		end = body + body_len;
		while (xml_element(p, end, "Upload", &cstart, &cend))
		{
			char	   *key = xml_find(cstart, cend, "Key", NULL);
			char	   *id = xml_find(cstart, cend, "UploadId", NULL);
			TfS3Upload *u;

			p = cend;
			if (key == NULL || id == NULL || strlen(key) < (size_t) strip_len)
				continue;
			u = palloc0(sizeof(TfS3Upload));
			u->key = pstrdup(key + strip_len);
			u->upload_id = id;
			result = lappend(result, u);
		}
		truncated = xml_find(body, end, "IsTruncated", NULL);
		if (truncated == NULL || strcmp(truncated, "true") != 0)
			break;
		key_marker = xml_find(body, end, "NextKeyMarker", NULL);
		id_marker = xml_find(body, end, "NextUploadIdMarker", NULL);
		if (key_marker == NULL || key_marker[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("S3 list uploads %s: truncated answer without a next marker", desc)));
		if (id_marker && id_marker[0] == '\0')
			id_marker = NULL;
		CHECK_FOR_INTERRUPTS();
	}
	return result;
}

/* AbortMultipartUpload; an upload that is already gone is not an error */
void
tf_s3_abort_upload(TfS3 *s3, const char *key, const char *upload_id)
{
	S3Req		req = {0};
	char	   *desc = s3_describe(s3, key);

	req.method = "DELETE";
	req.key = key;
	req.query = psprintf("uploadId=%s", uri_encode(upload_id, false));
	s3_perform(s3, &req, desc);
	if (req.status != 204 && req.status != 200 && req.status != 404)
		s3_fail(&req, desc);
	req_reset_response(&req);
}

void
tf_s3_writer_abort(TfS3Writer *w)
{
	abort_upload_noerror(w);
	w->done = true;
}

/* ----------------------------------------------------------------
 * streaming reader: ranged GETs of part_size bytes
 * ----------------------------------------------------------------
 */
static void
reader_fetch(TfS3Reader *r)
{
	S3Req		req = {0};
	char		range[64];
	const char *slash;

	snprintf(range, sizeof(range), INT64_FORMAT "-" INT64_FORMAT,
			 r->offset, r->offset + (int64) r->chunk_cap - 1);
	req.method = "GET";
	req.key = r->key;
	req.range = range;
	req.dest = r->chunk;
	req.dest_cap = r->chunk_cap;
	req.if_match = r->etag;
	s3_perform(r->s3, &req, r->desc);
	if (req.status == 404)
	{
		req_reset_response(&req);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("object %s does not exist", r->desc)));
	}
	if (req.status == 412)
	{
		req_reset_response(&req);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("object %s changed while it was being read", r->desc)));
	}
	if (req.status != 206 && req.status != 200)
		s3_fail(&req, r->desc);

	if (r->etag == NULL && req.etag[0])
		r->etag = pstrdup(strip_quotes(req.etag));
	if (req.status == 200)
	{
		/* range ignored: the whole object came, and it fit */
		r->size = req.dest_len;
	}
	else if ((slash = strchr(req.content_range, '/')) != NULL && slash[1] != '*')
		r->size = strtoi64(slash + 1, NULL, 10);
	r->chunk_len = req.dest_len;
	r->chunk_pos = 0;
	r->offset += req.dest_len;
	if (req.dest_len == 0 || (r->size >= 0 && r->offset >= r->size))
		r->eof = true;
	req_reset_response(&req);
}

TfS3Reader *
tf_s3_reader_begin(TfS3 *s3, const char *key)
{
	TfS3Reader *r = palloc0(sizeof(TfS3Reader));
	TfObjectInfo info;

	r->mcxt = CurrentMemoryContext;
	r->s3 = s3;
	r->key = pstrdup(key);
	r->desc = s3_describe(s3, key);
	r->size = -1;

	/*
	 * HEAD first: it tells a missing object, the size (a ranged GET of an
	 * empty object is an error on S3) and the ETag that pins the version
	 * the later ranged GETs must read (If-Match).
	 */
	if (!tf_s3_head(s3, key, &info))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("object %s does not exist", r->desc)));
	r->etag = info.etag;
	r->size = info.size;
	if (r->size == 0)
		r->eof = true;
	/* bounded by the part size, smaller for small objects */
	r->chunk_cap = r->size < 0 ? (size_t) s3->cfg->part_size :
		(size_t) Min((int64) s3->cfg->part_size, Max(r->size, 1));
	r->chunk = palloc(r->chunk_cap);
	return r;
}

size_t
tf_s3_reader_read(TfS3Reader *r, char *buf, size_t len)
{
	size_t		n;

	if (r->chunk_pos == r->chunk_len)
	{
		MemoryContext old;

		if (r->eof)
			return 0;
		old = MemoryContextSwitchTo(r->mcxt);
		reader_fetch(r);
		MemoryContextSwitchTo(old);
		if (r->chunk_len == 0)
			return 0;
	}
	n = Min(len, r->chunk_len - r->chunk_pos);
	memcpy(buf, r->chunk + r->chunk_pos, n);
	r->chunk_pos += n;
	return n;
}

void
tf_s3_reader_end(TfS3Reader *r)
{
	if (r->chunk)
		pfree(r->chunk);
	r->chunk = NULL;
	r->eof = true;
	r->chunk_len = r->chunk_pos = 0;
}

/* the S3 GUCs (defaults of the server options) */
void
tf_s3_init(void)
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
}
