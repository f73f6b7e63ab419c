/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  Declarations private to taskflow's engine: the shared-memory state
 *	  (shmem.c), the launcher (launcher.c), the per-database scheduler
 *	  (scheduler.c), the node worker (worker.c), the run-operation gate
 *	  (gate.c), the built-in node kinds (node_sql.c) and cross-database sql
 *	  nodes (crossdb.c).
 *
 *	  Shared memory holds two fixed arrays:
 *	    dbs[]      one slot per database the launcher knows about: the
 *	               scheduler's pid and latch, and whether the extension is
 *	               installed there (learned by the scheduler itself);
 *	    workers[]  one slot per node worker process (cluster-wide cap
 *	               taskflow.max_workers): which database / owner it serves
 *	               and which node run it runs; a warm (pooled) worker that
 *	               waits for its next node run is "idle" (node_run_id 0)
 *	               and is handed the next one through its slot + latch.
 *	  Everything is protected by one spinlock; critical sections are a few
 *	  loads and stores.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TASKFLOW_ENGINE_H
#define TASKFLOW_ENGINE_H

#include "taskflow.h"

#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/spin.h"

#define TF_MAX_DBS			256
#define TF_MAX_WORKERS		64
#define TF_READY_AHEAD		64	/* ready node runs handed ahead per database */

/* what a database slot knows about the extension in its database */
typedef enum TfDbState
{
	TF_DB_FREE = 0,				/* slot unused */
	TF_DB_UNKNOWN,				/* not probed yet (or a hint said "look again") */
	TF_DB_PRESENT,				/* extension installed: keep a scheduler */
	TF_DB_ABSENT				/* extension not installed */
} TfDbState;

typedef struct TfDbSlot
{
	Oid			dboid;
	TfDbState	state;
	char		dbname[NAMEDATALEN];
	pid_t		pid;			/* scheduler pid, 0 if none */
	Latch	   *latch;			/* scheduler latch, NULL if none */
	TimestampTz blocked_until;	/* DROP DATABASE in progress: do not start */
	bool		hint;			/* a backend changed the extension here */
	bool		waiting;		/* ready nodes held back (cap): wake when a
								 * worker slot frees anywhere */
	int			waiting_rank;	/* running workers of the owner of the first
								 * node held back (INT_MAX: only capped
								 * owners wait) */
	Oid			waiting_owner;	/* that owner (InvalidOid: several tie);
								 * its warm workers may go on with their
								 * run (worker.c, tf_worker_next_in_run) */
	pid_t		alerts_pid;		/* alert delivery worker (alerts.c), 0 if
								 * none; terminated by DROP DATABASE */
	bool		backlog;		/* ready work the last dispatch did not hand
								 * out (ready nodes held back, due runs left
								 * for the next pass): only then do warm
								 * workers pull another run's ready node of
								 * their owner (worker.c) */
	/*
	 * Handed ahead (1.7): the ready node runs of this database that the last
	 * ready-node read ranked beyond the free worker slots, in its order
	 * (fair share between owners, priority within one); a warm worker whose
	 * own run has nothing more ready takes the first one of its owner here
	 * instead of asking the database (worker.c, tf_worker_next_in_run).
	 * Hints: the node run stays pending until a worker's _node_begin marks
	 * it running; replaced by every read (scheduler.c, tf_dispatch_hand).
	 */
	int			nahead;
	uint64		ahead_taken;	/* node runs taken off the list (statistics:
								 * taskflow._ahead_taken()) */
	int64		ahead_id[TF_READY_AHEAD];
	Oid			ahead_owner[TF_READY_AHEAD];
} TfDbSlot;

typedef struct TfWorkerSlot
{
	bool		in_use;
	uint32		generation;		/* bumped at each reservation */
	Oid			dboid;
	Oid			owner;			/* flow owner (runs as this role) */
	bool		owner_login;	/* owner may log in: connect as it */
	pid_t		scheduler_pid;	/* who reserved the slot */
	pid_t		pid;			/* worker pid once started, else 0 */
	int64		node_run_id;
	int64		run_id;
	TimestampTz reserved_at;
	Oid			remote_dboid;	/* cross-database node: the second worker's */
	pid_t		remote_pid;		/* database and pid (0 if none) */
	/* warm workers (worker.c, scheduler.c) */
	Latch	   *latch;			/* the worker's latch once started, else NULL */
	bool		idle;			/* waiting for its next node run: node_run_id
								 * and run_id are 0; the scheduler of dboid
								 * may hand it a node run of the same owner */
	bool		exit_requested;	/* never hand it another node run; it exits
								 * after the current one (or now, if idle) */
	int			nodes;			/* node runs handed to this process */
} TfWorkerSlot;

typedef struct TfShared
{
	slock_t		mutex;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan;			/* launcher: re-read pg_database now */
	TfDbSlot	dbs[TF_MAX_DBS];
	TfWorkerSlot workers[TF_MAX_WORKERS];
} TfShared;

/* shmem.c */
extern TfShared *tf_shared;
extern void tf_shmem_init(void);
extern void tf_wake_launcher_now(bool rescan);
extern void tf_wake_scheduler_now(Oid dboid);
extern void tf_wake_at_commit(bool launcher, bool scheduler);
extern int	tf_workers_busy(void);
extern void tf_wake_waiting_schedulers(Oid except);
extern void tf_hooks_init(void);

/* lock_guard.c: LOCK TABLE of the catalog by non-superusers */
extern void tf_lock_guard_before(Node *parsetree);
/* ext_drop.c: DROP EXTENSION taskflow does not wait for running nodes */
extern void tf_ext_drop_clear_way(Node *parsetree);
extern void tf_lock_guard_after(Node *parsetree);

/* GUCs (launcher.c) */
extern int	tf_max_workers;
extern int	tf_run_sweep_interval;	/* s, taskflow.run_sweep_interval */
extern char *tf_history_retention;
extern char *tf_test_clock;
extern int	tf_launcher_rescan_interval;
extern int	tf_history_purge_interval;
extern int	tf_max_workers_per_owner;
extern bool tf_allow_group_owner;
extern int	tf_wait_timeout;
extern int	tf_max_catchup_runs;
extern bool tf_worker_reuse;
extern int	tf_worker_idle_timeout;
extern int	tf_worker_max_nodes;
extern bool tf_scheduler_rehearsal;
extern bool tf_scheduler_prepare_due;
extern bool tf_scheduler_ready_incremental;

/* bgworker entry points */
extern PGDLLEXPORT void tf_launcher_main(Datum arg);
extern PGDLLEXPORT void tf_scheduler_main(Datum arg);
extern PGDLLEXPORT void tf_worker_main(Datum arg);
extern PGDLLEXPORT void tf_crossdb_main(Datum arg);
extern PGDLLEXPORT void tf_alerts_main(Datum arg);

/* alerts.c: the scheduler's alert step (SLA misses, delivery worker) */
extern void tf_alerts_pass(TimestampTz now, TimestampTz *next_sla);

/* scheduler.c: "now" as the scheduler sees it (taskflow.test_clock) */
extern TimestampTz tf_scheduler_now(void);
/* scheduler.c: share-lock the extension in this transaction (false: gone) */
extern bool tf_lock_extension(void);

/* session_pin.c: the engine's own sessions ignore the database's defaults */
extern void tf_pin_session_settings(bool search_path);

/* worker.c: memory of the node run in progress (NULL outside a node worker) */
extern MemoryContext tf_node_memory;

/* node_sql.c: built-in node kinds run by worker.c */
extern void tf_render_sql(TfNodeExec *x);
/* shmem.c: describe one of our dynamic background workers */
extern void tf_bgworker_init(BackgroundWorker *worker, const char *function,
							 const char *type, const char *name);

extern void tf_exec_sql(TfNodeExec *x);
#define TF_OUTPUT_MAX_VALUE (64 * 1024)	/* output variables: bytes of one value */
#define TF_OUTPUT_MAX_TOTAL (1024 * 1024)	/* ... of all values of a node */
struct SPITupleTable;
extern void tf_capture_outputs(TfNodeExec *x, struct SPITupleTable *tt, uint64 processed);
/* sql nodes in autocommit mode (option "autocommit", or VACUUM & co.) */
#define TF_AUTOCOMMIT_AUTO	(-1)	/* option absent: the script decides */
#define TF_AUTOCOMMIT_OFF	0
#define TF_AUTOCOMMIT_ON	1
extern int	tf_sql_autocommit_option(Jsonb *options);
extern bool tf_sql_autocommit(const char *script, int option, const char **reason);
extern void tf_exec_sql_autocommit(TfNodeExec *x, const char *script);
extern void tf_autocommit_reset_session(void);
extern void tf_exec_notify(TfNodeExec *x);
extern void tf_exec_sql_remote(TfNodeExec *x, const char *server);
extern bool tf_wait_check(TfNodeExec *x, const char *condition);
extern void tf_capture_begin(TfNodeExec *x);
extern void tf_capture_end(void);

/*
 * worker.c: services for executors of TF_XACT_OWN kinds (node_kinds.c).
 * Transactions begin as the bootstrap superuser; switch to the owner before
 * running any of the node's code.
 */
extern void tf_node_xact_begin(bool repeatable_read);
extern void tf_node_xact_commit(void);
extern void tf_node_as_owner(void);
extern void tf_node_as_superuser(void);	/* book-keeping only */
extern Jsonb *tf_node_vars(TfNodeExec *x);	/* as the owner, in a transaction */
extern void tf_node_succeeded_in_xact(TfNodeExec *x, bool atomic, const char *where);
extern void tf_node_arm_timeout(TfNodeExec *x);
extern void tf_node_disarm_timeout(void);
/* worker.c: the executors of sql and wait nodes */
extern void tf_worker_run_sql(TfNodeExec *x);
extern void tf_worker_run_wait(TfNodeExec *x);
extern void tf_worker_run_wait_on(TfNodeExec *x, const char *condition);

/* node_check.c: check_rows / check_flow (the wait executor on a condition) */
extern void tf_validate_check_rows(const char *what, const char *body, Jsonb *options);
extern void tf_validate_check_flow(const char *what, const char *body, Jsonb *options);
extern void tf_exec_check_rows(TfNodeExec *x);
extern void tf_exec_check_flow(TfNodeExec *x);
extern Datum tf_check_sql(PG_FUNCTION_ARGS);	/* validate.c */

/* crossdb.c: sql nodes with option "database" */
typedef struct TfCrossDbTarget
{
	Oid			dboid;
	bool		owner_login;	/* connect as the owner (else superuser + switch) */
	char		dbname[NAMEDATALEN];
} TfCrossDbTarget;
extern void tf_crossdb_target(const char *database, Oid owner, TfCrossDbTarget *t);
extern void tf_crossdb_run(TfNodeExec *x, const TfCrossDbTarget *t, int64 timeout_ms,
						   int slot, uint32 generation);

#endif							/* TASKFLOW_ENGINE_H */
