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
 *	    launcher.c    per-cluster launcher bgworker, engine GUCs
 *	    scheduler.c   per-database scheduler bgworker
 *	    worker.c      node worker bgworker (node attempts; warm: one owner, many nodes)
 *	    node_sql.c    the sql, wait and notify node kinds, NOTICE capture
 *	    crossdb.c     sql nodes run in another database of the cluster
 *	    gate.c        privileged run operations (run_flow, cancel, ...)
 *	    s3.c          S3 client over libcurl (SigV4, multipart, retries), S3 GUCs
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
 *	    archive.c     the archive node kind
 *	    run_call.c    CALL taskflow.run(): run, commit, wait, report
 *	    api.c         C entry points of the definition API (templates)
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
} TfNodeExec;

/*
 * Node kinds run inside a transaction the worker started (as the flow owner)
 * and commits together with the node's success record.  They report failure
 * with ereport(ERROR).
 */
extern void tf_exec_archive(TfNodeExec *x);

/* append a timestamped line to x->log */
extern void tf_node_log(TfNodeExec *x, const char *fmt,...) pg_attribute_printf(2, 3);

#endif							/* TASKFLOW_H */
