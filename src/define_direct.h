/*-------------------------------------------------------------------------
 *
 * define_direct.h
 *	  Direct inserts of the definition's catalog rows (define_direct.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TF_DEFINE_DIRECT_H
#define TF_DEFINE_DIRECT_H

typedef struct TfDirect TfDirect;

/* how the caller meets row level security where it applies (define_direct.c) */
typedef enum TfDirectRls
{
	TF_RLS_NONE,				/* it does not: the SPI path */
	TF_RLS_CHECK,				/* the shipped policy's WITH CHECK, evaluated per row */
	TF_RLS_NEW_FLOW				/* every row's flow_id: the flow just inserted, this call */
} TfDirectRls;

extern TfDirect *tf_direct_begin(const char *relname, const char *const *cols,
								 const Oid *types, int ncols, TfDirectRls rls);
extern void tf_direct_insert(TfDirect *d, const Datum *values, const bool *nulls);
extern Datum tf_direct_value(TfDirect *d, const char *attname, bool *isnull);
extern Datum tf_direct_image(TfDirect *d, const char *hidden);
extern void tf_direct_end(TfDirect *d);

/* bypassrls.c: not a superuser, BYPASSRLS (the C create path leaves it to the API) */
extern bool tf_role_bypasses_rls(void);

#endif							/* TF_DEFINE_DIRECT_H */
