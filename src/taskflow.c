/*-------------------------------------------------------------------------
 *
 * taskflow.c
 *	  Library entry point: _PG_init.  Registers each module's GUCs and, when
 *	  loaded through shared_preload_libraries, the launcher background worker
 *	  and shared memory.  Loaded any other way, the SQL-side functions work
 *	  and a WARNING says that scheduling needs preload.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

bool		tf_preloaded = false;

void		_PG_init(void);

void
_PG_init(void)
{
	tf_preloaded = process_shared_preload_libraries_in_progress;

	tf_storage_init();
	tf_engine_init();

	if (!tf_preloaded)
		ereport(WARNING,
				(errmsg("taskflow is loaded without shared_preload_libraries: flows can be defined but will not run"),
				 errhint("Add taskflow to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * tf_node_log — append one timestamped line to a node attempt's log
 * (recorded in node_runs.log by the worker).
 */
void
tf_node_log(TfNodeExec *x, const char *fmt,...)
{
	va_list		args;
	int			needed;

	if (x->log.data == NULL)
		initStringInfo(&x->log);
	appendStringInfo(&x->log, "%s ", timestamptz_to_str(GetCurrentTimestamp()));
	for (;;)
	{
		va_start(args, fmt);
		needed = appendStringInfoVA(&x->log, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&x->log, needed);
	}
	appendStringInfoChar(&x->log, '\n');
}
