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
