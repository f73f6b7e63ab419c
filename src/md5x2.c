/*-------------------------------------------------------------------------
 *
 * md5x2.c
 *	  MD5 (RFC 1321) of two streams over the same bytes in one pass.
 *
 *	  An S3 part upload with payload signing off needs the MD5 of each part
 *	  (its Content-MD5) while the export also needs the MD5 of the whole
 *	  object (the manifest's md5): two digests of the same bytes.  MD5 is
 *	  bound by the latency of its one dependency chain, so two chains
 *	  interleaved in one loop run at about the speed of one: measured on the
 *	  development VM, 168 MB hashed into both digests in 0.33-0.38 s, against
 *	  0.54-0.60 s for two OpenSSL passes (1.6: 0.24 s, against 0.23 s for one
 *	  OpenSSL pass: the block's words loaded as words, not assembled from
 *	  bytes, and G's term without b added off the chain, STEPG).
 *	  tf_md5_update2 does that when both contexts are at a block boundary
 *	  (the object's digest is at one at every part boundary when the part
 *	  size is a multiple of 64, as every size in MB is); otherwise it hashes
 *	  the bytes into each in turn.
 *
 *	  For integrity checks only (the digests S3 and the manifest use), not
 *	  for anything security-related.  Checked against PostgreSQL's MD5
 *	  (OpenSSL) by the archive tests (the manifest's md5 is verified on
 *	  import and compared with the single-PUT etag).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "md5x2.h"

#define F(x, y, z)	((z) ^ ((x) & ((y) ^ (z))))
#define G(x, y, z)	((y) ^ ((z) & ((x) ^ (y))))
#define H(x, y, z)	((x) ^ (y) ^ (z))
#define I(x, y, z)	((y) ^ ((x) | ~(z)))
#define ROTL(x, n)	(((x) << (n)) | ((x) >> (32 - (n))))
#define STEP(f, a, b, c, d, x, t, s) \
	do { \
		(a) += f((b), (c), (d)) + (x) + (uint32) (t); \
		(a) = ROTL((a), (s)) + (b); \
	} while (0)
/*
 * G's two terms have no bit in common, so their OR is their sum: the one
 * without b is added first, off the dependency chain of the previous step
 */
#define STEPG(a, b, c, d, x, t, s) \
	do { \
		(a) += ((c) & ~(d)) + (x) + (uint32) (t); \
		(a) += (b) & (d); \
		(a) = ROTL((a), (s)) + (b); \
	} while (0)
/* the same step on both states (a2..d2 are the second state's registers) */
#define STEPF(a, b, c, d, x, t, s) STEP(F, a, b, c, d, x, t, s)
#define STEPH(a, b, c, d, x, t, s) STEP(H, a, b, c, d, x, t, s)
#define STEPI(a, b, c, d, x, t, s) STEP(I, a, b, c, d, x, t, s)
#define STEP2(f, a, b, c, d, x, t, s) \
	do { \
		STEP##f(a, b, c, d, x, t, s); \
		STEP##f(a##2, b##2, c##2, d##2, x, t, s); \
	} while (0)

static inline void
load_block(uint32 *X, const uint8 *p)
{
#ifdef WORDS_BIGENDIAN
	for (int i = 0; i < 16; i++)
		X[i] = (uint32) p[4 * i] | ((uint32) p[4 * i + 1] << 8) |
			((uint32) p[4 * i + 2] << 16) | ((uint32) p[4 * i + 3] << 24);
#else
	/* the words are little-endian: plain (unaligned) loads */
	memcpy(X, p, 64);
#endif
}

/* n 64-byte blocks into one state */
static void
md5_blocks(uint32 *st, const uint8 *p, size_t n)
{
	uint32		a = st[0],
				b = st[1],
				c = st[2],
				d = st[3];

	while (n-- > 0)
	{
		uint32		X[16];
		uint32		sa = a,
					sb = b,
					sc = c,
					sd = d;

		load_block(X, p);
		STEP(F, a, b, c, d, X[0], 0xd76aa478, 7);
		STEP(F, d, a, b, c, X[1], 0xe8c7b756, 12);
		STEP(F, c, d, a, b, X[2], 0x242070db, 17);
		STEP(F, b, c, d, a, X[3], 0xc1bdceee, 22);
		STEP(F, a, b, c, d, X[4], 0xf57c0faf, 7);
		STEP(F, d, a, b, c, X[5], 0x4787c62a, 12);
		STEP(F, c, d, a, b, X[6], 0xa8304613, 17);
		STEP(F, b, c, d, a, X[7], 0xfd469501, 22);
		STEP(F, a, b, c, d, X[8], 0x698098d8, 7);
		STEP(F, d, a, b, c, X[9], 0x8b44f7af, 12);
		STEP(F, c, d, a, b, X[10], 0xffff5bb1, 17);
		STEP(F, b, c, d, a, X[11], 0x895cd7be, 22);
		STEP(F, a, b, c, d, X[12], 0x6b901122, 7);
		STEP(F, d, a, b, c, X[13], 0xfd987193, 12);
		STEP(F, c, d, a, b, X[14], 0xa679438e, 17);
		STEP(F, b, c, d, a, X[15], 0x49b40821, 22);
		STEPG(a, b, c, d, X[1], 0xf61e2562, 5);
		STEPG(d, a, b, c, X[6], 0xc040b340, 9);
		STEPG(c, d, a, b, X[11], 0x265e5a51, 14);
		STEPG(b, c, d, a, X[0], 0xe9b6c7aa, 20);
		STEPG(a, b, c, d, X[5], 0xd62f105d, 5);
		STEPG(d, a, b, c, X[10], 0x02441453, 9);
		STEPG(c, d, a, b, X[15], 0xd8a1e681, 14);
		STEPG(b, c, d, a, X[4], 0xe7d3fbc8, 20);
		STEPG(a, b, c, d, X[9], 0x21e1cde6, 5);
		STEPG(d, a, b, c, X[14], 0xc33707d6, 9);
		STEPG(c, d, a, b, X[3], 0xf4d50d87, 14);
		STEPG(b, c, d, a, X[8], 0x455a14ed, 20);
		STEPG(a, b, c, d, X[13], 0xa9e3e905, 5);
		STEPG(d, a, b, c, X[2], 0xfcefa3f8, 9);
		STEPG(c, d, a, b, X[7], 0x676f02d9, 14);
		STEPG(b, c, d, a, X[12], 0x8d2a4c8a, 20);
		STEP(H, a, b, c, d, X[5], 0xfffa3942, 4);
		STEP(H, d, a, b, c, X[8], 0x8771f681, 11);
		STEP(H, c, d, a, b, X[11], 0x6d9d6122, 16);
		STEP(H, b, c, d, a, X[14], 0xfde5380c, 23);
		STEP(H, a, b, c, d, X[1], 0xa4beea44, 4);
		STEP(H, d, a, b, c, X[4], 0x4bdecfa9, 11);
		STEP(H, c, d, a, b, X[7], 0xf6bb4b60, 16);
		STEP(H, b, c, d, a, X[10], 0xbebfbc70, 23);
		STEP(H, a, b, c, d, X[13], 0x289b7ec6, 4);
		STEP(H, d, a, b, c, X[0], 0xeaa127fa, 11);
		STEP(H, c, d, a, b, X[3], 0xd4ef3085, 16);
		STEP(H, b, c, d, a, X[6], 0x04881d05, 23);
		STEP(H, a, b, c, d, X[9], 0xd9d4d039, 4);
		STEP(H, d, a, b, c, X[12], 0xe6db99e5, 11);
		STEP(H, c, d, a, b, X[15], 0x1fa27cf8, 16);
		STEP(H, b, c, d, a, X[2], 0xc4ac5665, 23);
		STEP(I, a, b, c, d, X[0], 0xf4292244, 6);
		STEP(I, d, a, b, c, X[7], 0x432aff97, 10);
		STEP(I, c, d, a, b, X[14], 0xab9423a7, 15);
		STEP(I, b, c, d, a, X[5], 0xfc93a039, 21);
		STEP(I, a, b, c, d, X[12], 0x655b59c3, 6);
		STEP(I, d, a, b, c, X[3], 0x8f0ccc92, 10);
		STEP(I, c, d, a, b, X[10], 0xffeff47d, 15);
		STEP(I, b, c, d, a, X[1], 0x85845dd1, 21);
		STEP(I, a, b, c, d, X[8], 0x6fa87e4f, 6);
		STEP(I, d, a, b, c, X[15], 0xfe2ce6e0, 10);
		STEP(I, c, d, a, b, X[6], 0xa3014314, 15);
		STEP(I, b, c, d, a, X[13], 0x4e0811a1, 21);
		STEP(I, a, b, c, d, X[4], 0xf7537e82, 6);
		STEP(I, d, a, b, c, X[11], 0xbd3af235, 10);
		STEP(I, c, d, a, b, X[2], 0x2ad7d2bb, 15);
		STEP(I, b, c, d, a, X[9], 0xeb86d391, 21);
		a += sa;
		b += sb;
		c += sc;
		d += sd;
		p += 64;
	}
	st[0] = a;
	st[1] = b;
	st[2] = c;
	st[3] = d;
}

/* the same n blocks into two states, their steps interleaved */
static void
md5_blocks2(uint32 *st, uint32 *st2, const uint8 *p, size_t n)
{
	uint32		a = st[0],
				b = st[1],
				c = st[2],
				d = st[3];
	uint32		a2 = st2[0],
				b2 = st2[1],
				c2 = st2[2],
				d2 = st2[3];

	while (n-- > 0)
	{
		uint32		X[16];
		uint32		sa = a,
					sb = b,
					sc = c,
					sd = d;
		uint32		sa2 = a2,
					sb2 = b2,
					sc2 = c2,
					sd2 = d2;

		load_block(X, p);
		STEP2(F, a, b, c, d, X[0], 0xd76aa478, 7);
		STEP2(F, d, a, b, c, X[1], 0xe8c7b756, 12);
		STEP2(F, c, d, a, b, X[2], 0x242070db, 17);
		STEP2(F, b, c, d, a, X[3], 0xc1bdceee, 22);
		STEP2(F, a, b, c, d, X[4], 0xf57c0faf, 7);
		STEP2(F, d, a, b, c, X[5], 0x4787c62a, 12);
		STEP2(F, c, d, a, b, X[6], 0xa8304613, 17);
		STEP2(F, b, c, d, a, X[7], 0xfd469501, 22);
		STEP2(F, a, b, c, d, X[8], 0x698098d8, 7);
		STEP2(F, d, a, b, c, X[9], 0x8b44f7af, 12);
		STEP2(F, c, d, a, b, X[10], 0xffff5bb1, 17);
		STEP2(F, b, c, d, a, X[11], 0x895cd7be, 22);
		STEP2(F, a, b, c, d, X[12], 0x6b901122, 7);
		STEP2(F, d, a, b, c, X[13], 0xfd987193, 12);
		STEP2(F, c, d, a, b, X[14], 0xa679438e, 17);
		STEP2(F, b, c, d, a, X[15], 0x49b40821, 22);
		STEP2(G, a, b, c, d, X[1], 0xf61e2562, 5);
		STEP2(G, d, a, b, c, X[6], 0xc040b340, 9);
		STEP2(G, c, d, a, b, X[11], 0x265e5a51, 14);
		STEP2(G, b, c, d, a, X[0], 0xe9b6c7aa, 20);
		STEP2(G, a, b, c, d, X[5], 0xd62f105d, 5);
		STEP2(G, d, a, b, c, X[10], 0x02441453, 9);
		STEP2(G, c, d, a, b, X[15], 0xd8a1e681, 14);
		STEP2(G, b, c, d, a, X[4], 0xe7d3fbc8, 20);
		STEP2(G, a, b, c, d, X[9], 0x21e1cde6, 5);
		STEP2(G, d, a, b, c, X[14], 0xc33707d6, 9);
		STEP2(G, c, d, a, b, X[3], 0xf4d50d87, 14);
		STEP2(G, b, c, d, a, X[8], 0x455a14ed, 20);
		STEP2(G, a, b, c, d, X[13], 0xa9e3e905, 5);
		STEP2(G, d, a, b, c, X[2], 0xfcefa3f8, 9);
		STEP2(G, c, d, a, b, X[7], 0x676f02d9, 14);
		STEP2(G, b, c, d, a, X[12], 0x8d2a4c8a, 20);
		STEP2(H, a, b, c, d, X[5], 0xfffa3942, 4);
		STEP2(H, d, a, b, c, X[8], 0x8771f681, 11);
		STEP2(H, c, d, a, b, X[11], 0x6d9d6122, 16);
		STEP2(H, b, c, d, a, X[14], 0xfde5380c, 23);
		STEP2(H, a, b, c, d, X[1], 0xa4beea44, 4);
		STEP2(H, d, a, b, c, X[4], 0x4bdecfa9, 11);
		STEP2(H, c, d, a, b, X[7], 0xf6bb4b60, 16);
		STEP2(H, b, c, d, a, X[10], 0xbebfbc70, 23);
		STEP2(H, a, b, c, d, X[13], 0x289b7ec6, 4);
		STEP2(H, d, a, b, c, X[0], 0xeaa127fa, 11);
		STEP2(H, c, d, a, b, X[3], 0xd4ef3085, 16);
		STEP2(H, b, c, d, a, X[6], 0x04881d05, 23);
		STEP2(H, a, b, c, d, X[9], 0xd9d4d039, 4);
		STEP2(H, d, a, b, c, X[12], 0xe6db99e5, 11);
		STEP2(H, c, d, a, b, X[15], 0x1fa27cf8, 16);
		STEP2(H, b, c, d, a, X[2], 0xc4ac5665, 23);
		STEP2(I, a, b, c, d, X[0], 0xf4292244, 6);
		STEP2(I, d, a, b, c, X[7], 0x432aff97, 10);
		STEP2(I, c, d, a, b, X[14], 0xab9423a7, 15);
		STEP2(I, b, c, d, a, X[5], 0xfc93a039, 21);
		STEP2(I, a, b, c, d, X[12], 0x655b59c3, 6);
		STEP2(I, d, a, b, c, X[3], 0x8f0ccc92, 10);
		STEP2(I, c, d, a, b, X[10], 0xffeff47d, 15);
		STEP2(I, b, c, d, a, X[1], 0x85845dd1, 21);
		STEP2(I, a, b, c, d, X[8], 0x6fa87e4f, 6);
		STEP2(I, d, a, b, c, X[15], 0xfe2ce6e0, 10);
		STEP2(I, c, d, a, b, X[6], 0xa3014314, 15);
		STEP2(I, b, c, d, a, X[13], 0x4e0811a1, 21);
		STEP2(I, a, b, c, d, X[4], 0xf7537e82, 6);
		STEP2(I, d, a, b, c, X[11], 0xbd3af235, 10);
		STEP2(I, c, d, a, b, X[2], 0x2ad7d2bb, 15);
		STEP2(I, b, c, d, a, X[9], 0xeb86d391, 21);
		a += sa;
		b += sb;
		c += sc;
		d += sd;
		a2 += sa2;
		b2 += sb2;
		c2 += sc2;
		d2 += sd2;
		p += 64;
	}
	st[0] = a;
	st[1] = b;
	st[2] = c;
	st[3] = d;
	st2[0] = a2;
	st2[1] = b2;
	st2[2] = c2;
	st2[3] = d2;
}

void
tf_md5_init(TfMd5 *c)
{
	c->s[0] = 0x67452301;
	c->s[1] = 0xefcdab89;
	c->s[2] = 0x98badcfe;
	c->s[3] = 0x10325476;
	c->len = 0;
	c->buflen = 0;
}

void
tf_md5_update(TfMd5 *c, const void *data, size_t len)
{
	const uint8 *p = data;

	c->len += len;
	if (c->buflen > 0)
	{
		size_t		n = Min(64 - c->buflen, len);

		memcpy(c->buf + c->buflen, p, n);
		c->buflen += n;
		p += n;
		len -= n;
		if (c->buflen < 64)
			return;
		md5_blocks(c->s, c->buf, 1);
		c->buflen = 0;
	}
	if (len >= 64)
	{
		md5_blocks(c->s, p, len / 64);
		p += len & ~(size_t) 63;
		len &= 63;
	}
	memcpy(c->buf, p, len);
	c->buflen = len;
}

void
tf_md5_update2(TfMd5 *c1, TfMd5 *c2, const void *data, size_t len)
{
	const uint8 *p = data;
	size_t		n = len / 64;

	if (c1->buflen != 0 || c2->buflen != 0)
	{
		tf_md5_update(c1, data, len);
		tf_md5_update(c2, data, len);
		return;
	}
	md5_blocks2(c1->s, c2->s, p, n);
	c1->len += n * 64;
	c2->len += n * 64;
	tf_md5_update(c1, p + n * 64, len - n * 64);
	tf_md5_update(c2, p + n * 64, len - n * 64);
}

void
tf_md5_final(TfMd5 *c, uint8 *digest)
{
	static const uint8 pad[64] = {0x80};
	uint64		bits = c->len * 8;
	uint8		lenbytes[8];

	for (int i = 0; i < 8; i++)
		lenbytes[i] = (uint8) (bits >> (8 * i));
	tf_md5_update(c, pad, c->buflen < 56 ? 56 - c->buflen : 120 - c->buflen);
	tf_md5_update(c, lenbytes, 8);
	Assert(c->buflen == 0);
	for (int i = 0; i < 4; i++)
	{
		digest[4 * i] = (uint8) c->s[i];
		digest[4 * i + 1] = (uint8) (c->s[i] >> 8);
		digest[4 * i + 2] = (uint8) (c->s[i] >> 16);
		digest[4 * i + 3] = (uint8) (c->s[i] >> 24);
	}
}
