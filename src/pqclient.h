/*-------------------------------------------------------------------------
 *
 * pqclient.h
 *	  libpq client of node kinds (pqclient.c): connection parameters for a
 *	  database of this cluster or a postgres_fdw server, interruptible
 *	  connect and execution, remote errors raised as ours.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKFLOW_PQCLIENT_H
#define TASKFLOW_PQCLIENT_H

#include "libpq-fe.h"

/* libpq connection parameters of one side, and how errors name it */
#define TF_MAX_CONN_PARAMS	64
typedef struct TfConnParams
{
	char	   *label;			/* database "x" / server "y" */
	char	   *role;			/* for messages */
	bool		remote;			/* a foreign server (not this cluster) */
	bool		need_password;	/* refuse a connection that used none */
	int			n;
	char	   *keys[TF_MAX_CONN_PARAMS + 1];
	char	   *vals[TF_MAX_CONN_PARAMS + 1];
} TfConnParams;

extern void tf_conn_local(TfConnParams *cp, const char *dbname, const char *user);
extern void tf_conn_server(TfConnParams *cp, const char *server, Oid owner);
extern void tf_conn_add(TfConnParams *cp, const char *key, const char *val);
extern void tf_conn_forget(TfConnParams *cp);
extern PGconn *tf_pq_connect(TfConnParams *cp, int64 node_run_id);
extern void tf_pq_wait(PGconn *c, int events, long timeout_ms);
extern void tf_pq_error(PGconn *c, PGresult *r, const char *label, const char *doing) pg_attribute_noreturn();
extern PGresult *tf_pq_next_result(PGconn *c, const char *label);
extern PGresult *tf_pq_exec(PGconn *c, const char *sql, const char *label, const char *doing);
extern void tf_pq_close(PGconn *c);
extern char *tf_pq_value(PGconn *c, const char *sql, const char *label, const char *doing);

#endif							/* TASKFLOW_PQCLIENT_H */
