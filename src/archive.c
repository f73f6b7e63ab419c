/*
 * archive.c — placeholder until the archive node lands (owned by the archive work).
 */
#include "taskflow.h"

void
tf_exec_archive(TfNodeExec *x)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("archive nodes are not available in this build")));
}
