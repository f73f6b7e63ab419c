/*-------------------------------------------------------------------------
 *
 * md5x2.h
 *	  MD5 of two streams over the same bytes in one pass (md5x2.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKFLOW_MD5X2_H
#define TASKFLOW_MD5X2_H

#define TF_MD5_DIGEST_LENGTH 16

typedef struct TfMd5
{
	uint32		s[4];
	uint64		len;			/* bytes hashed so far */
	uint8		buf[64];		/* a partial block */
	size_t		buflen;
} TfMd5;

extern void tf_md5_init(TfMd5 *c);
extern void tf_md5_update(TfMd5 *c, const void *data, size_t len);
/* the same bytes into both (in one pass when both are at a block boundary) */
extern void tf_md5_update2(TfMd5 *c1, TfMd5 *c2, const void *data, size_t len);
extern void tf_md5_final(TfMd5 *c, uint8 *digest);

#endif							/* TASKFLOW_MD5X2_H */
