/*-------------------------------------------------------------------------
 *
 * alerts.c
 *	  Alerts (docs/alerts.md): the taskflow_webhook foreign-data wrapper's
 *	  validator, the scheduler's alert step, and the per-database delivery
 *	  worker that drains the outbox taskflow.alert_deliveries.
 *
 *	  Deliveries never run in the scheduler's loop.  They are queued in
 *	  SQL (sql/src/95_alerts.sql): failure/success alerts by the trigger
 *	  runs_alert in the transaction that ends the run, SLA misses by
 *	  taskflow._alerts_pass, which the scheduler calls once per pass
 *	  (tf_alerts_pass: one short query).  When deliveries are due, the
 *	  scheduler starts the delivery worker of its database ("taskflow
 *	  alerts <db>", a dynamic bgworker that is not one of the
 *	  taskflow.max_workers node workers) or pokes it (SIGUSR1 sets its latch).
 *	  The worker takes one due delivery at a time (_alert_claim commits the
 *	  attempt first), sends it outside any transaction, records the outcome
 *	  (_alert_record: attempts, HTTP status, last error, delivered_at,
 *	  backoff), sleeps on its latch until the next retry is due, and exits
 *	  when nothing is pending; its exit wakes the scheduler (bgw_notify_pid),
 *	  which starts it again if a delivery came in meanwhile.  A worker that
 *	  died leaves deliveries 'sending': the next one sends them again
 *	  (receivers get X-Taskflow-Delivery to drop duplicates).
 *
 *	  A webhook is sent with the flow owner's rights: USAGE on the server
 *	  and the owner's (or PUBLIC) user mapping, checked at each attempt.
 *	  libcurl rules kept: http(s) only, no redirects, a total timeout (the
 *	  server's option) and a connect timeout, the response body is read
 *	  into a bounded buffer (at most TF_ALERT_MAX_BODY bytes are kept, more
 *	  aborts the transfer), the handle and header list are freed on every
 *	  path, a pending SIGTERM / cancel aborts the transfer (progress
 *	  callback) and is served once curl has returned.  The secret (user
 *	  mapping option "secret") goes into one request header only: never
 *	  into a log line, an error, last_error or curl's verbose output.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include <ctype.h>
#include <signal.h>

#include <curl/curl.h>

#include "access/reloptions.h"
#include "access/xact.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define TF_WEBHOOK_FDW		"taskflow_webhook"
#define TF_ALERT_MAX_BODY	(64 * 1024)	/* response bytes read at most */
#define TF_ALERT_MAX_WAIT_MS 10000L	/* worker: re-check the outbox this often */
#define TF_ALERT_NOTIFY_RETRIES 5	/* a NOTIFY that failed (queue full) */

/* ----------------------------------------------------------------
 * Options of webhook servers and user mappings
 * ----------------------------------------------------------------
 */

typedef struct TfWebhookOpts
{
	const char *url;
	int			timeout;		/* seconds, whole request */
	int			retries;		/* attempts after the first */
	const char *secret_header;	/* header that carries the secret */
} TfWebhookOpts;

static void
webhook_bad_value(const char *option, const char *value, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", option, value),
			 errhint("%s", hint)));
}

static int
webhook_int(const char *option, const char *value, int min, int max, const char *hint)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		webhook_bad_value(option, value, hint);
	return (int) v;
}

/* http:// or https://, no credentials in the URL, no blanks or controls */
static void
webhook_check_url(const char *url)
{
	const char *rest;
	const char *p;
	size_t		authority;

	if (pg_strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (pg_strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else
		webhook_bad_value("url", url, "A webhook URL starts with http:// or https://.");
	for (p = url; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f)
			webhook_bad_value("url", url, "Percent-encode blanks and control characters.");
	authority = strcspn(rest, "/?#");
	if (authority == 0)
		webhook_bad_value("url", url, "The URL needs a host: https://host[:port]/path.");
	if (memchr(rest, '@', authority) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"url\": credentials in the URL"),
				 errhint("Put the secret into the user mapping: CREATE USER MAPPING ... OPTIONS (secret '...').")));
}

static void
webhook_unknown_option(const char *name, Oid catalog)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\" for taskflow_webhook", name),
			 catalog == ForeignServerRelationId
			 ? errhint("Valid options in this context are: url, timeout, retries, secret_header.")
			 : catalog == UserMappingRelationId
			 ? errhint("Valid options in this context are: secret.")
			 : errhint("There are no valid options in this context.")));
}

static void
webhook_server_options(List *options, TfWebhookOpts *o)
{
	ListCell   *lc;

	o->url = NULL;
	o->timeout = 10;
	o->retries = 3;
	o->secret_header = "Authorization";
	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);
		const char *v = defGetString(def);

		if (strcmp(def->defname, "url") == 0)
		{
			webhook_check_url(v);
			o->url = v;
		}
		else if (strcmp(def->defname, "timeout") == 0)
			o->timeout = webhook_int("timeout", v, 1, 300,
									 "Give the whole request's timeout in seconds, from 1 to 300.");
		else if (strcmp(def->defname, "retries") == 0)
			o->retries = webhook_int("retries", v, 0, 20,
									 "Give the number of retries after a failed attempt, from 0 to 20.");
		else if (strcmp(def->defname, "secret_header") == 0)
		{
			const char *p;

			if (*v == '\0' || strlen(v) > 64)
				webhook_bad_value("secret_header", v, "Give an HTTP header name such as Authorization or X-Hook-Token.");
			for (p = v; *p; p++)
				if (!(isalnum((unsigned char) *p) || *p == '-' || *p == '_'))
					webhook_bad_value("secret_header", v, "Give an HTTP header name such as Authorization or X-Hook-Token.");
			o->secret_header = v;
		}
		else
			webhook_unknown_option(def->defname, ForeignServerRelationId);
	}
	if (o->url == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a taskflow_webhook server needs the option \"url\""),
				 errhint("CREATE SERVER hooks FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https://...');")));
}

/* user mapping: only "secret"; its value is never echoed */
static const char *
webhook_mapping_secret(List *options)
{
	ListCell   *lc;
	const char *secret = NULL;

	foreach(lc, options)
	{
		DefElem    *def = lfirst_node(DefElem, lc);

		if (strcmp(def->defname, "secret") != 0)
			webhook_unknown_option(def->defname, UserMappingRelationId);
		secret = defGetString(def);
		if (strpbrk(secret, "\r\n") != NULL || strlen(secret) > 4096)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"secret\""),
					 errhint("The secret is sent as one header value: at most 4096 characters, no line breaks.")));
	}
	return secret;
}

PG_FUNCTION_INFO_V1(tf_webhook_validator);

/* taskflow._webhook_validator(text[], oid): CREATE/ALTER SERVER, USER MAPPING */
Datum
tf_webhook_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);

	if (catalog == ForeignServerRelationId)
	{
		TfWebhookOpts o;

		webhook_server_options(options, &o);
	}
	else if (catalog == UserMappingRelationId)
		(void) webhook_mapping_secret(options);
	else if (options != NIL)
		webhook_unknown_option(linitial_node(DefElem, options)->defname, catalog);
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * The scheduler's step
 * ----------------------------------------------------------------
 */

static BackgroundWorkerHandle *alerts_handle = NULL;

/*
 * Start the delivery worker, or poke the running one (due: deliveries wait;
 * otherwise only a delivery is 'sending': start a worker if none runs, so
 * that one left by a worker that died is sent again).
 */
static void
tf_alerts_kick(bool due)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	MemoryContext old;
	pid_t		pid;

	if (alerts_handle != NULL)
	{
		BgwHandleStatus st = GetBackgroundWorkerPid(alerts_handle, &pid);

		if (st == BGWH_STARTED)
		{
			if (due)
				(void) kill(pid, SIGUSR1);	/* sets its latch */
			return;
		}
		if (st == BGWH_NOT_YET_STARTED)
			return;
		pfree(alerts_handle);
		alerts_handle = NULL;
	}
	tf_bgworker_init(&worker, "tf_alerts_main", "taskflow alerts",
					 psprintf("taskflow alerts %s", get_database_name(MyDatabaseId)));
	worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
	worker.bgw_notify_pid = MyProcPid;
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (RegisterDynamicBackgroundWorker(&worker, &handle))
		alerts_handle = handle;
	else
		ereport(WARNING,
				(errmsg("taskflow scheduler: could not start the alert delivery worker"),
				 errhint("Raise max_worker_processes (alerts need one more background worker per database while they are delivered).")));
	MemoryContextSwitchTo(old);
}

/*
 * Once per scheduler pass: queue SLA misses, start or poke the delivery
 * worker when deliveries are due.  *next_sla: the next SLA deadline
 * (scheduler clock), 0 if none.  Errors are reported and swallowed: alerts
 * must not stop scheduling.
 */
void
tf_alerts_pass(TimestampTz now, TimestampTz *next_sla)
{
	MemoryContext cxt = CurrentMemoryContext;

	*next_sla = 0;

	/*
	 * The extension's lock first, as every engine transaction (see
	 * tf_lock_extension): without it, _alerts_pass read taskflow.deferred
	 * (the newest table, which DROP EXTENSION locks last) and then runs and
	 * alerts, which a DROP EXTENSION waiting for deferred held already: the
	 * user's DROP EXTENSION failed with "deadlock detected" (test
	 * 089_race6_drop_create).  Dropped meanwhile: nothing to do, the
	 * scheduler's next look at the extension exits.  (Before PG_TRY: a
	 * cancel while waiting for the lock goes to the scheduler's loop.)
	 */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!tf_lock_extension())
	{
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		return;
	}
	PG_TRY();
	{
		Oid			argtypes[1] = {TIMESTAMPTZOID};
		Datum		values[1] = {TimestampTzGetDatum(now)};
		bool		isnull;
		bool		due;
		bool		sending;
		Datum		d;

		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "taskflow scheduler: alerts");
		if (SPI_execute_with_args("SELECT next_sla, due, sending FROM taskflow._alerts_pass($1)",
								  1, argtypes, values, NULL, false, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "taskflow._alerts_pass failed");
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			*next_sla = DatumGetTimestampTz(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		due = !isnull && DatumGetBool(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		sending = !isnull && DatumGetBool(d);
		if (due || sending)
			tf_alerts_kick(due);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
		*next_sla = 0;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

/* ----------------------------------------------------------------
 * HTTP POST through libcurl
 * ----------------------------------------------------------------
 */

typedef struct TfHookResp
{
	size_t		len;			/* bytes received */
	bool		overflow;
} TfHookResp;

static size_t
hook_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
	TfHookResp *r = (TfHookResp *) arg;
	size_t		n = size * nmemb;

	/* nothing of the body is kept: only its size is bounded */
	if (r->len + n > TF_ALERT_MAX_BODY)
	{
		r->overflow = true;
		return 0;				/* aborts the transfer (CURLE_WRITE_ERROR) */
	}
	r->len += n;
	return n;
}

static int
hook_xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow,
				 curl_off_t ultotal, curl_off_t ulnow)
{
	if (ProcDiePending || QueryCancelPending || ShutdownRequestPending)
		return 1;
	return 0;
}

/*
 * POST body to url.  Returns true on a 2xx answer; otherwise *error says
 * what went wrong (without the URL or any header) and *retryable whether
 * another attempt may help.  *status: the HTTP status (0 if none).
 */
static bool
tf_webhook_post(const TfWebhookOpts *o, const char *secret, int64 delivery_id,
				const char *body, long *status, char **error, bool *retryable)
{
	CURL	   *curl;
	struct curl_slist *headers = NULL;
	TfHookResp	resp = {0};
	CURLcode	cc;
	char		line[128];
	char	   *secret_line = NULL;

	*status = 0;
	*error = NULL;
	*retryable = true;

	/* built first: nothing may throw between curl_easy_init and the cleanup */
	if (secret != NULL)
		secret_line = psprintf("%s: %s", o->secret_header, secret);
	curl = curl_easy_init();
	if (curl == NULL)
	{
		if (secret_line != NULL)
		{
			explicit_bzero(secret_line, strlen(secret_line));
			pfree(secret_line);
		}
		*error = pstrdup("could not initialize libcurl");
		return false;
	}

	headers = curl_slist_append(headers, "Content-Type: application/json");
	snprintf(line, sizeof(line), "X-Taskflow-Delivery: " INT64_FORMAT, delivery_id);
	headers = curl_slist_append(headers, line);
	headers = curl_slist_append(headers, "Expect:");
	if (secret_line != NULL)
	{
		headers = curl_slist_append(headers, secret_line);
		explicit_bzero(secret_line, strlen(secret_line));
		pfree(secret_line);
	}

	curl_easy_setopt(curl, CURLOPT_URL, o->url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_VERBOSE, 0L);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "taskflow-alerts/1.2");
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long) o->timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long) Min(o->timeout, 10));
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, hook_write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, hook_xferinfo_cb);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, NULL);

	cc = curl_easy_perform(curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);	/* frees the copy of the secret line */

	/* an interrupt made curl stop: serve it now that nothing is held */
	CHECK_FOR_INTERRUPTS();

	if (cc == CURLE_OK && *status >= 200 && *status < 300)
		return true;
	if (cc == CURLE_WRITE_ERROR && resp.overflow)
	{
		*error = psprintf("response body larger than %d bytes", TF_ALERT_MAX_BODY);
		*retryable = false;
	}
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		*error = psprintf("timeout after %d s", o->timeout);
	else if (cc != CURLE_OK)
		*error = pstrdup(curl_easy_strerror(cc));
	else if (*status >= 300 && *status < 400)
	{
		*error = psprintf("HTTP %ld (redirects are not followed)", *status);
		*retryable = false;
	}
	else
	{
		*error = psprintf("HTTP %ld", *status);
		*retryable = *status >= 500 || *status == 408 || *status == 429;
	}
	return false;
}

/* ----------------------------------------------------------------
 * The delivery worker
 * ----------------------------------------------------------------
 */

static void
alerts_begin(const char *what)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* the extension's lock first, as the scheduler (tf_alerts_pass) */
	if (!tf_lock_extension())
	{
		elog(LOG, "taskflow alerts: extension dropped, exiting");
		proc_exit(0);
	}
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
}

static void
alerts_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

static void
alerts_record(int64 id, bool ok, long status, const char *error, int retries,
			  bool permanent)
{
	Oid			argtypes[6] = {INT8OID, BOOLOID, INT4OID, TEXTOID, INT4OID, BOOLOID};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = Int64GetDatum(id);
	values[1] = BoolGetDatum(ok);
	values[2] = Int32GetDatum((int32) status);
	if (status == 0)
		nulls[2] = 'n';
	values[3] = error ? CStringGetTextDatum(error) : (Datum) 0;
	if (error == NULL)
		nulls[3] = 'n';
	values[4] = Int32GetDatum(retries);
	values[5] = BoolGetDatum(permanent);
	alerts_begin("taskflow alerts: record");
	if (SPI_execute_with_args("SELECT taskflow._alert_record($1, $2, $3, $4, $5, $6)",
							  6, argtypes, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._alert_record failed");
	alerts_commit();
}

/*
 * The webhook server of a delivery, as the flow owner may use it: USAGE,
 * options, the owner's (or PUBLIC) user mapping's secret.  In a
 * transaction; copies into 'cxt'.  Errors are the delivery's permanent
 * failure (the caller records them).
 */
static void
alerts_resolve(const char *server_name, Oid owner, MemoryContext cxt,
			   TfWebhookOpts *o, char **secret)
{
	ForeignServer *server = GetForeignServerByName(server_name, true);
	ForeignDataWrapper *fdw;
	HeapTuple	tp;
	MemoryContext old;
	TfWebhookOpts parsed;
	const char *s = NULL;

	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("webhook server \"%s\" does not exist", server_name)));
	fdw = GetForeignDataWrapper(server->fdwid);
	if (strcmp(fdw->fdwname, TF_WEBHOOK_FDW) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a taskflow webhook server", server_name)));
	if (pg_foreign_server_aclcheck(server->serverid, owner, ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for webhook server \"%s\" (flow owner %s)",
						server_name, GetUserNameFromId(owner, true))));
	webhook_server_options(server->options, &parsed);

	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(owner),
						 ObjectIdGetDatum(server->serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(server->serverid));
	if (HeapTupleIsValid(tp))
	{
		bool		isnull;
		Datum		datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
											Anum_pg_user_mapping_umoptions, &isnull);

		if (!isnull)
			s = webhook_mapping_secret(untransformRelOptions(datum));
		ReleaseSysCache(tp);
	}

	old = MemoryContextSwitchTo(cxt);
	o->url = pstrdup(parsed.url);
	o->timeout = parsed.timeout;
	o->retries = parsed.retries;
	o->secret_header = pstrdup(parsed.secret_header);
	*secret = s ? pstrdup(s) : NULL;
	MemoryContextSwitchTo(old);
}

/* one due delivery; false when none was due (*next_at: the next, or 0) */
static bool
alerts_deliver_one(MemoryContext cxt, TimestampTz *next_at)
{
	int64		id;
	char	   *target;
	char	   *payload;
	Oid			owner;
	char	   *server;
	char	   *channel;
	int			attempt;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	desc;
	MemoryContext old;
	TfWebhookOpts o;
	char	   *secret = NULL;
	char	   *error = NULL;
	long		status = 0;
	bool		retryable = true;
	bool		ok;

	*next_at = 0;
	alerts_begin("taskflow alerts: claim");

	/*
	 * The claim is durable before the alert is sent, whatever the database's
	 * synchronous_commit: the scheduler's tick that queued it commits
	 * asynchronously (scheduler.c, tf_pass_tick), and flushing this commit
	 * flushes the tick's before it (docs/performance.md, "Durability of the
	 * tick").
	 */
	if (synchronous_commit < SYNCHRONOUS_COMMIT_LOCAL_FLUSH)
		(void) set_config_option("synchronous_commit", "local", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	if (SPI_execute("SELECT * FROM taskflow._alert_claim()", false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow._alert_claim failed");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	(void) SPI_getbinval(tup, desc, 1, &isnull);
	if (isnull)
	{
		Datum		d = SPI_getbinval(tup, desc, 8, &isnull);

		if (!isnull)
			*next_at = DatumGetTimestampTz(d);
		alerts_commit();
		return false;
	}
	old = MemoryContextSwitchTo(cxt);
	id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	target = SPI_getvalue(tup, desc, 2);
	payload = SPI_getvalue(tup, desc, 3);
	owner = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
	server = SPI_getvalue(tup, desc, 5);
	channel = SPI_getvalue(tup, desc, 6);
	attempt = DatumGetInt32(SPI_getbinval(tup, desc, 7, &isnull));
	MemoryContextSwitchTo(old);
	alerts_commit();

	if (strcmp(target, "notify") == 0)
	{
		/*
		 * NOTIFY: sent and recorded in one transaction.  A payload over
		 * NOTIFY's limit becomes a short one (the full body stays in
		 * alert_deliveries).
		 */
		Oid			argtypes[3] = {TEXTOID, TEXTOID, INT8OID};
		Datum		values[3];

		values[0] = CStringGetTextDatum(channel);
		values[1] = CStringGetTextDatum(payload);
		values[2] = Int64GetDatum(id);
		PG_TRY();
		{
			alerts_begin("taskflow alerts: notify");
			if (SPI_execute_with_args("SELECT pg_catalog.pg_notify($1, CASE WHEN octet_length($2) < 7900 THEN $2 "
									  "ELSE (jsonb_build_object('delivery_id', $3, 'truncated', true) "
									  "      || ($2::jsonb - 'failed_nodes' - 'message'))::text END), "
									  "taskflow._alert_record($3, true, NULL::integer, NULL::text, 0, false)",
									  3, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "pg_notify failed");
			alerts_commit();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			/* e.g. the NOTIFY queue is full: retried like a webhook */
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			alerts_record(id, false, 0, edata->message, TF_ALERT_NOTIFY_RETRIES, false);
			ereport(LOG,
					(errmsg("taskflow alerts: delivery " INT64_FORMAT " (NOTIFY %s), attempt %d of %d: %s",
							id, channel, attempt, TF_ALERT_NOTIFY_RETRIES + 1, edata->message)));
		}
		PG_END_TRY();
		return true;
	}

	/* webhook: resolve as the owner may use it, then send outside a transaction */
	PG_TRY();
	{
		alerts_begin("taskflow alerts: resolve");
		alerts_resolve(server, owner, cxt, &o, &secret);
		alerts_commit();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		alerts_record(id, false, 0, edata->message, 0, true);
		ereport(LOG,
				(errmsg("taskflow alerts: delivery " INT64_FORMAT " failed: %s",
						id, edata->message)));
		return true;
	}
	PG_END_TRY();

	pgstat_report_activity(STATE_RUNNING, "taskflow alerts: webhook");
	ok = tf_webhook_post(&o, secret, id, payload, &status, &error, &retryable);
	pgstat_report_activity(STATE_IDLE, NULL);
	if (secret != NULL)
	{
		explicit_bzero(secret, strlen(secret));
		pfree(secret);
	}
	alerts_record(id, ok, status, error, o.retries, !retryable);
	if (!ok)
		ereport(LOG,
				(errmsg("taskflow alerts: delivery " INT64_FORMAT " to server \"%s\", attempt %d of %d: %s",
						id, server, attempt, o.retries + 1, error)));
	return true;
}

/* the delivery worker's pid in its database's slot (DROP DATABASE ends it) */
static void
alerts_set_pid(Oid dboid, pid_t pid, pid_t expected)
{
	int			i;

	SpinLockAcquire(&tf_shared->mutex);
	for (i = 0; i < TF_MAX_DBS; i++)
	{
		TfDbSlot   *d = &tf_shared->dbs[i];

		if (d->state != TF_DB_FREE && d->dboid == dboid && d->alerts_pid == expected)
		{
			d->alerts_pid = pid;
			break;
		}
	}
	SpinLockRelease(&tf_shared->mutex);
}

static void
alerts_detach(int code, Datum arg)
{
	alerts_set_pid(DatumGetObjectId(arg), 0, MyProcPid);
}

void
tf_alerts_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	alerts_set_pid(dboid, MyProcPid, 0);
	before_shmem_exit(alerts_detach, ObjectIdGetDatum(dboid));
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	/* a superuser session running no user code: pg_catalog names only (as the scheduler) */
	tf_pin_session_settings(true);
	SetConfigOption("application_name", "taskflow alerts", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname("taskflow alerts");

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR, (errmsg("could not initialize libcurl")));

	cxt = AllocSetContextCreate(TopMemoryContext, "taskflow alerts",
								ALLOCSET_DEFAULT_SIZES);

	/* a delivery worker that died left some 'sending': send them again */
	alerts_begin("taskflow alerts: recover");
	if (SPI_execute("SELECT taskflow._alert_recover()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow._alert_recover failed");
	alerts_commit();

	for (;;)
	{
		TimestampTz next_at;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(cxt);
		if (alerts_deliver_one(cxt, &next_at))
			continue;
		if (next_at == 0)
			break;				/* nothing pending: exit (the scheduler
								 * starts us again when needed) */
		wait_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_at) + 1;
		wait_ms = Min(wait_ms, TF_ALERT_MAX_WAIT_MS);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}
