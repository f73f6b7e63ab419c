/*-------------------------------------------------------------------------
 *
 * pqclient.c
 *	  The libpq client of node kinds (copy nodes, remote sql nodes):
 *	    - connection parameters: a database of this cluster (over the Unix
 *	      socket, as the flow owner's role, without a password: pg_hba.conf
 *	      must let the owner in locally, see docs/copy.md), or a postgres_fdw
 *	      FOREIGN SERVER with the owner's USER MAPPING (as dblink and
 *	      postgres_fdw read them; USAGE checked; a non-superuser owner must
 *	      connect with a password);
 *	    - connect and run statements without blocking: every wait is a latch
 *	      wait, so cancel, the node's timeout and shutdown interrupt it;
 *	      connecting is bounded by connect_timeout (default 30 s);
 *	    - a remote error is raised here with its SQLSTATE, message, detail
 *	      and hint, and a context naming the database or server.
 *	  Secrets (password) live in this process's memory only, are wiped once
 *	  the connection is made, and never reach logs, errors or the ps title.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"
#include "pqclient.h"

#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define TF_PQ_CONNECT_TIMEOUT_MS	30000

/* wait for the socket (or the latch), then check for interrupts */
void
tf_pq_wait(PGconn *c, int events, long timeout_ms)
{
	int			rc;

	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | WL_TIMEOUT | events,
						   PQsocket(c), timeout_ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* the remote error of result r (or of the connection) as our ERROR */
void
tf_pq_error(PGconn *c, PGresult *r, const char *label, const char *doing)
{
	const char *f;
	char	   *sqlstate = NULL;
	char	   *primary = NULL;
	char	   *detail = NULL;
	char	   *hint = NULL;

	if (r)
	{
		if ((f = PQresultErrorField(r, PG_DIAG_SQLSTATE)))
			sqlstate = pstrdup(f);
		if ((f = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)))
			primary = pstrdup(f);
		if ((f = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)))
			detail = pstrdup(f);
		if ((f = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT)))
			hint = pstrdup(f);
		PQclear(r);
	}
	if (primary == NULL)
		primary = pchomp(PQerrorMessage(c));
	ereport(ERROR,
			(sqlstate ? errcode(MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
											  sqlstate[3], sqlstate[4]))
			 : errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("%s", primary),
			 detail ? errdetail("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 errcontext("%s in %s", doing, label)));
}


void
tf_conn_add(TfConnParams *cp, const char *key, const char *val)
{
	for (int i = 0; i < cp->n; i++)
		if (strcmp(cp->keys[i], key) == 0)
		{
			cp->vals[i] = MemoryContextStrdup(TopMemoryContext, val);
			return;
		}
	if (cp->n >= TF_MAX_CONN_PARAMS)
		return;
	cp->keys[cp->n] = MemoryContextStrdup(TopMemoryContext, key);
	cp->vals[cp->n] = MemoryContextStrdup(TopMemoryContext, val);
	cp->n++;
	cp->keys[cp->n] = NULL;
	cp->vals[cp->n] = NULL;
}

/* forget the secrets (after connecting, or on error) */
void
tf_conn_forget(TfConnParams *cp)
{
	for (int i = 0; i < cp->n; i++)
		if (cp->vals[i] && (strcmp(cp->keys[i], "password") == 0 ||
							strcmp(cp->keys[i], "sslpassword") == 0))
			explicit_bzero(cp->vals[i], strlen(cp->vals[i]));
}

/*
 * Database dbname of this cluster, as role 'user', over the Unix socket,
 * without a password (see the banner).
 */
void
tf_conn_local(TfConnParams *cp, const char *dbname, const char *user)
{
	char	   *dirs = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
	char	   *comma = strchr(dirs, ',');
	char		port[16];

	memset(cp, 0, sizeof(*cp));
	if (comma)
		*comma = '\0';
	snprintf(port, sizeof(port), "%d", PostPortNumber);
	cp->label = MemoryContextStrdup(TopMemoryContext, psprintf("database \"%s\"", dbname));
	cp->role = MemoryContextStrdup(TopMemoryContext, user);
	tf_conn_add(cp, "host", dirs[0] ? dirs : "/tmp");
	tf_conn_add(cp, "port", port);
	tf_conn_add(cp, "dbname", dbname);
	tf_conn_add(cp, "user", user);
}

/* is key a libpq connection option that a server or user mapping may set? */
static bool
tf_libpq_option(const char *key)
{
	static const char *const own[] = {"application_name", "fallback_application_name",
	"client_encoding", "replication", NULL};
	PQconninfoOption *opts = PQconndefaults();
	bool		found = false;

	for (const char *const *o = own; *o; o++)
		if (strcmp(*o, key) == 0)
			return false;
	if (opts == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, key) == 0 && strchr(o->dispchar, 'D') == NULL)
			found = true;
	PQconninfoFree(opts);
	return found;
}

/*
 * A postgres_fdw foreign server and the owner's user mapping (the way
 * dblink and postgres_fdw read them): the owner needs USAGE on the server
 * and a user mapping; a non-superuser owner must connect with a password
 * (unless a superuser set password_required 'false' in the mapping), so
 * that the server's own trust is never lent to a flow.  Inside a
 * transaction.  The secrets stay in this process's memory only.
 */
void
tf_conn_server(TfConnParams *cp, const char *server, Oid owner)
{
	ForeignServer *srv = GetForeignServerByName(server, false);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(srv->fdwid);
	UserMapping *um;
	AclResult	acl;
	ListCell   *lc;
	bool		password_required = true;
	bool		has_password = false;

	memset(cp, 0, sizeof(*cp));
	cp->label = MemoryContextStrdup(TopMemoryContext, psprintf("server \"%s\"", server));
	cp->remote = true;
	if (strcmp(fdw->fdwname, "postgres_fdw") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a postgres_fdw server", server),
				 errhint("Name a server created with FOREIGN DATA WRAPPER postgres_fdw.")));
	acl = pg_foreign_server_aclcheck(srv->serverid, owner, ACL_USAGE);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_FOREIGN_SERVER, server);
	um = GetUserMapping(owner, srv->serverid);
	foreach(lc, srv->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (tf_libpq_option(d->defname))
			tf_conn_add(cp, d->defname, defGetString(d));
	}
	foreach(lc, um->options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, "password_required") == 0)
			password_required = defGetBoolean(d);
		else if (tf_libpq_option(d->defname))
		{
			tf_conn_add(cp, d->defname, defGetString(d));
			if (strcmp(d->defname, "password") == 0)
				has_password = true;
		}
	}
	/* the role: the mapping's "user", else the owner's name */
	cp->role = NULL;
	for (int i = 0; i < cp->n; i++)
		if (strcmp(cp->keys[i], "user") == 0)
			cp->role = cp->vals[i];
	if (cp->role == NULL)
	{
		tf_conn_add(cp, "user", GetUserNameFromId(owner, false));
		cp->role = cp->vals[cp->n - 1];
	}
	cp->need_password = password_required && !superuser_arg(owner);
	if (cp->need_password && !has_password)
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required to connect to server \"%s\"", server),
				 errdetail("Non-superusers must provide a password in the user mapping.")));
}

/* connect (interruptibly, with a deadline); ERROR naming the side */
PGconn *
tf_pq_connect(TfConnParams *cp, int64 node_run_id)
{
	char		appname[NAMEDATALEN];
	PGconn	   *c;
	TimestampTz deadline;
	long		timeout_ms = TF_PQ_CONNECT_TIMEOUT_MS;

	snprintf(appname, sizeof(appname), "taskflow node run " INT64_FORMAT, node_run_id);
	tf_conn_add(cp, "application_name", appname);
	tf_conn_add(cp, "client_encoding", GetDatabaseEncodingName());
	for (int i = 0; i < cp->n; i++)
		if (strcmp(cp->keys[i], "connect_timeout") == 0 && atoi(cp->vals[i]) > 0)
			timeout_ms = atoi(cp->vals[i]) * 1000L;

	c = PQconnectStartParams((const char *const *) cp->keys, (const char *const *) cp->vals, 0);
	tf_conn_forget(cp);
	if (c == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while connecting to %s", cp->label)));
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	if (PQstatus(c) != CONNECTION_BAD)
	{
		PostgresPollingStatusType st = PGRES_POLLING_WRITING;

		for (;;)
		{
			if (st == PGRES_POLLING_OK || st == PGRES_POLLING_FAILED)
				break;
			if (GetCurrentTimestamp() >= deadline)
			{
				PQfinish(c);
				ereport(ERROR,
						(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
						 errmsg("could not connect to %s as role \"%s\": timed out after %ld ms",
								cp->label, cp->role, timeout_ms)));
			}
			PG_TRY();
			{
				tf_pq_wait(c, st == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
						   1000);
			}
			PG_CATCH();
			{
				PQfinish(c);
				PG_RE_THROW();
			}
			PG_END_TRY();
			st = PQconnectPoll(c);
		}
	}
	if (PQstatus(c) != CONNECTION_OK)
	{
		char	   *msg = pchomp(PQerrorMessage(c));

		PQfinish(c);
		if (cp->remote)
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to %s as role \"%s\": %s", cp->label, cp->role, msg),
					 errhint("Check the server's options and the user mapping (CREATE USER MAPPING ... SERVER ...).")));
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to %s as role \"%s\": %s", cp->label, cp->role, msg),
				 errhint("taskflow connects over the local socket as the flow owner without a password: "
						 "pg_hba.conf must allow it (trust, or peer with a map), and the owner needs LOGIN and CONNECT.")));
	}
	if (cp->need_password && !PQconnectionUsedPassword(c))
	{
		PQfinish(c);
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required to connect to %s", cp->label),
				 errdetail("Non-superuser cannot connect if the server does not request a password."),
				 errhint("Target server's authentication method must be changed or set password_required=false in the user mapping attributes.")));
	}
	return c;
}

/* the next result of c, waiting interruptibly */
PGresult *
tf_pq_next_result(PGconn *c, const char *label)
{
	while (PQisBusy(c))
	{
		tf_pq_wait(c, WL_SOCKET_READABLE, 1000);
		if (!PQconsumeInput(c))
			tf_pq_error(c, NULL, label, "reading a result");
	}
	return PQgetResult(c);
}

/*
 * Run sql on c; return its last result (the caller PQclears it), or the
 * COPY result when it starts a COPY.  Remote errors are raised as ours.
 */
PGresult *
tf_pq_exec(PGconn *c, const char *sql, const char *label, const char *doing)
{
	PGresult   *last = NULL;
	PGresult   *r;

	if (!PQsendQuery(c, sql))
		tf_pq_error(c, NULL, label, doing);
	while ((r = tf_pq_next_result(c, label)) != NULL)
	{
		ExecStatusType st = PQresultStatus(r);

		if (st == PGRES_COPY_OUT || st == PGRES_COPY_IN)
		{
			if (last)
				PQclear(last);
			return r;
		}
		if (st == PGRES_FATAL_ERROR)
		{
			if (last)
				PQclear(last);
			/* drain, so that the error is the one we report */
			while (PQisBusy(c) && PQconsumeInput(c))
				tf_pq_wait(c, WL_SOCKET_READABLE, 1000);
			tf_pq_error(c, r, label, doing);
		}
		if (last)
			PQclear(last);
		last = r;
	}
	return last;
}

/* run sql on c; the first value of its result (palloc'd) or NULL */
char *
tf_pq_value(PGconn *c, const char *sql, const char *label, const char *doing)
{
	PGresult   *r = tf_pq_exec(c, sql, label, doing);
	char	   *v = NULL;

	if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = pstrdup(PQgetvalue(r, 0, 0));
	if (r)
		PQclear(r);
	return v;
}


/*
 * Close c; a statement still running there is canceled first (closing the
 * socket alone would let it run on until it next writes to us).
 */
void
tf_pq_close(PGconn *c)
{
	if (c == NULL)
		return;
	if (PQtransactionStatus(c) == PQTRANS_ACTIVE)
	{
		PGcancel   *cancel = PQgetCancel(c);
		char		errbuf[256];

		if (cancel)
		{
			(void) PQcancel(cancel, errbuf, sizeof(errbuf));
			PQfreeCancel(cancel);
		}
	}
	PQfinish(c);
}
