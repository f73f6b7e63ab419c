/*
 * storage.c — placeholder until storage lands (owned by the storage work).
 */
#include "taskflow.h"

void
tf_storage_init(void)
{
}
