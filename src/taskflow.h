/*-------------------------------------------------------------------------
 *
 * taskflow.h
 *	  Declarations shared between taskflow's modules: module init hooks,
 *	  schedule evaluation, variable rendering, and the contract between the
 *	  node worker (engine) and the node kinds (sql, archive, ...).
 *
 *	  Each file under src/ owns one concern and says so in its header comment:
 *	    taskflow.c    _PG_init, tf_node_log
 *	    schedule.c    cron / every / one-shot schedules, next_runs()
 *	    variables.c   ${var} rendering, quoting forms
 *	    shmem.c       shared memory: database and worker slots, latches, hooks
 *	    lock_guard.c  LOCK TABLE of the catalog refused to non-superusers,
 *	                  and DDL that would lock it before its privilege check;
 *	                  the engine's own transaction locks (taskflow._xact_lock,
 *	                  _in_scheduler)
 *	    ext_drop.c    DROP EXTENSION taskflow: the engine's own processes
 *	                  out of its way (running nodes stopped after 1 s)
 *	    bypassrls.c   BYPASSRLS roles that are not superusers: the catalog
 *	                  triggers' test (taskflow._rls_bypassed)
 *	    launcher.c    per-cluster launcher bgworker, engine GUCs
 *	    scheduler.c   per-database scheduler bgworker
 *	    worker.c      node worker bgworker (node attempts; warm: one owner, many nodes)
 *	    node_sql.c    the sql, wait and notify node kinds, NOTICE capture,
 *	                  output variables of sql nodes (first row captured)
 *	    node_check.c  check_rows / check_flow node kinds (conditions
 *	                  generated from options, run by the wait executor)
 *	    crossdb.c     sql nodes run in another database of the cluster
 *	    gate.c        privileged run operations (run_flow, cancel, ...)
 *	    s3.c          S3 client over libcurl (SigV4, multipart, retries), S3 GUCs
 *	    session_pin.c the settings of the engine's own sessions (pinned above
 *	                  the database's and roles' defaults)
 *	    md5x2.c       MD5 of two streams over the same bytes in one pass (a
 *	                  part's Content-MD5 and its object's md5)
 *	    storage.c     storage servers: FDW validator, options, user mappings,
 *	                  permission checks, dispatch to a backend,
 *	                  list/put/get/delete_object()
 *	    storage_backend.h  the storage backend interface (one file per backend)
 *	    storage_file.c     file:// backend (symlink-safe, atomic, staged)
 *	    storage_s3.c       s3:// backend (over s3.c)
 *	    storage_fdw.c foreign tables over Hive-partitioned archives (FDW
 *	                  handler: pruning, streaming reads, EXPLAIN, IMPORT)
 *	    format.c      CSV / CSV.gz writers fed by a DestReceiver
 *	    export.c      export() / import() SQL functions, manifests
 *	    parexport.c   parallel export of one table: a parallel context,
 *	                  block ranges per participant, parts handed to the leader
 *	    archive.c     the archive node kind
 *	    run_call.c    CALL taskflow.run(): run, commit, wait, report
 *	    api.c         C entry points of the definition API (templates)
 *	    defhist.c     the definition history's trigger (records the changing role)
 *	    define_fast.c C helpers of the definition path's hot checks (guard, row lock, _now)
 *	    define_create.c apply_flow: the C create path of a new flow (checked
 *	                  once, inserted with the per-row triggers skipped, history
 *	                  and wake written once), else the PL/pgSQL API path
 *	    define_direct.c that path's rows inserted without a statement
 *	                  (ExecSimpleRelationInsert; CHECKs and defaults prepared
 *	                  once per backend) where no row level security applies
 *	    node_kinds.c  the node-kind registry: kinds, option grammar,
 *	                  definition-time validation, the worker's dispatch
 *	    copy.c        the copy node kind (rows between databases)
 *	    node_branch.c the branch node kind (a boolean that chooses the path)
 *	    pqclient.c    libpq client of node kinds: this cluster's databases,
 *	                  postgres_fdw servers + user mappings, interruptible
 *	    alerts.c      alerts: taskflow_webhook validator, the scheduler's
 *	                  alert step (SLA misses), the delivery worker (NOTIFY,
 *	                  webhook POST over libcurl, retries, outcome)
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKFLOW_H
#define TASKFLOW_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#define TASKFLOW_SCHEMA "taskflow"

/* ---- module init (called from _PG_init) ---- */
extern void tf_engine_init(void);	/* GUCs, shmem, launcher (preload only) */
extern void tf_storage_init(void);	/* storage GUCs */

/* true when the library was loaded via shared_preload_libraries */
extern bool tf_preloaded;

/* ---- schedule.c ---- */

/*
 * Validate a schedule string; ereport(ERROR) with SQLSTATE 22023 and a hint
 * naming the bad field if it is malformed.  NULL means manual-only.
 */
extern void tf_schedule_validate(const char *schedule);

/*
 * Next fire time strictly after 'after' for 'schedule' evaluated in time
 * zone 'tz'.  Returns false when the schedule never fires again (one-shot in
 * the past, NULL schedule).
 */
extern bool tf_schedule_next(const char *schedule, const char *tz,
							 TimestampTz after, TimestampTz *next);

/* ---- variables.c ---- */

/*
 * Substitute ${name}, ${name:literal}, ${name:ident} in tmpl using the text
 * values of the jsonb object vars.  An unknown name is an ERROR (22023) that
 * names the variable and 'what' (e.g. "node \"extract\" body").
 */
extern char *tf_render(const char *tmpl, Jsonb *vars, const char *what);

/*
 * tmpl with a neutral stand-in for each variable reference (for parsing a
 * template at definition time); *plain: output offsets (int list) of the
 * stand-ins of plain ${name} references; *origmap: for each output byte, the
 * byte offset in tmpl it comes from.
 */
extern char *tf_render_placeholders(const char *tmpl, const char *what,
									List **plain, int **origmap);

/* text of a scalar jsonb value (NULL for JSON null); containers are an ERROR */
extern char *tf_jsonb_scalar_text(JsonbValue *v, const char *what);

/* ---- node execution contract (worker.c <-> node kinds) ---- */
typedef struct TfNodeExec
{
	int64		run_id;
	int64		node_run_id;
	int64		node_id;
	int			attempt;
	const char *flow_name;
	const char *node_name;
	const char *kind;
	Oid			owner;			/* flow owner; current user while running */
	const char *body;			/* raw body template, may be NULL */
	Jsonb	   *options;		/* raw options (templates inside) */
	Jsonb	   *vars;			/* resolved variable values: name -> text */

	/* filled by the node kind */
	char	   *rendered;		/* what actually ran, for node_runs.rendered */
	int64		rows;
	int64		bytes;
	StringInfoData log;			/* human-readable log lines */

	/* set by the worker for the kind's executor */
	const struct TfNodeKind *def;	/* registry entry of 'kind' */
	int64		timeout_ms;		/* node timeout, 0: none */
	void	   *worker_attempt;	/* worker.c's private view of the attempt */

	/* sql: its output variables as a JSON object text, NULL: none */
	char	   *outputs;
} TfNodeExec;

/* ---- node-kind registry (node_kinds.c) ---- */

/* the type of an option value; checked at definition and read at run time */
typedef enum TfOptType
{
	TF_OPT_TEXT,				/* JSON string; may contain ${...} templates */
	TF_OPT_BOOL,				/* JSON boolean (or the strings "true"/"false") */
	TF_OPT_INT,					/* JSON number or string: an integer in [min, max] */
	TF_OPT_INTERVAL,			/* JSON string: an interval in [min, max] seconds */
	TF_OPT_SIZE,				/* JSON number or string: bytes (tf_parse_size) >= min */
	TF_OPT_ENUM					/* JSON string: one of values[] */
} TfOptType;

typedef struct TfOptionDef
{
	const char *name;
	TfOptType	type;
	double		min;			/* INT / INTERVAL (seconds) / SIZE (bytes) */
	double		max;			/* INT / INTERVAL; 0: no upper bound */
	const char *range;			/* INTERVAL: the bounds in words, for errors */
	const char *const *values;	/* ENUM: NULL-terminated */
	const char *badvalue;		/* ENUM: errmsg format (value, what), or NULL */
	const char *hint;			/* errhint for a bad value */
} TfOptionDef;

/* how the worker runs a kind's executor */
typedef enum TfXactMode
{
	TF_XACT_ONE,				/* one transaction (READ COMMITTED) that also
								 * records success; executor raises on failure */
	TF_XACT_ONE_RR,				/* same, REPEATABLE READ */
	TF_XACT_OWN					/* called outside a transaction; the executor
								 * runs its own transactions and records its
								 * success (tf_node_succeeded_in_xact) */
} TfXactMode;

/* what the body of a node is */
typedef enum TfBodyKind
{
	TF_BODY_NONE,				/* no body (the kind's validate refuses one) */
	TF_BODY_SQL,				/* an SQL script: parsed at definition */
	TF_BODY_EXPR				/* an SQL boolean expression: parsed at definition */
} TfBodyKind;

#define TF_KIND_CROSSDB			0x01	/* option "database": run in another
										 * database through crossdb.c */
#define TF_KIND_RENDERED_XACT	0x02	/* x->rendered lives in the transaction */
#define TF_KIND_OWN_TIMEOUT		0x04	/* timeouts are reported by the kind */

typedef struct TfNodeKind
{
	const char *name;
	TfXactMode	xact;
	TfBodyKind	body;
	int			flags;
	const TfOptionDef *options; /* terminated by {NULL}; also the hint order */
	const char *const *render_order;	/* render(): NULL means options' order */
	/* definition-time checks past the option grammar (NULL: none) */
	void		(*validate) (const char *what, const char *body, Jsonb *options);
	/* further checks in SQL that need the catalog (function in schema taskflow) */
	const char *sql_check;
	/* run an attempt (see TfXactMode) */
	void		(*execute) (TfNodeExec *x);
} TfNodeKind;

/* the registry entry of 'kind'; NULL if unknown */
extern const TfNodeKind *tf_node_kind(const char *kind);
/* a string option of a node (NULL if absent or not a string) */
extern char *tf_node_option(Jsonb *options, const char *key);

/*
 * Node kinds run inside a transaction the worker started (as the flow owner)
 * and commits together with the node's success record.  They report failure
 * with ereport(ERROR).
 */
extern void tf_exec_archive(TfNodeExec *x);
extern void tf_exec_copy(TfNodeExec *x);
extern void tf_validate_copy_node(const char *what, const char *body, Jsonb *options);
/* node_branch.c: the branch node kind */
extern void tf_exec_branch(TfNodeExec *x);
extern void tf_validate_branch_node(const char *what, const char *body, Jsonb *options);

/* append a timestamped line to x->log */
extern void tf_node_log(TfNodeExec *x, const char *fmt,...) pg_attribute_printf(2, 3);

#endif							/* TASKFLOW_H */
