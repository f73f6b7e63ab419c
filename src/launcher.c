/*
 * launcher.c — placeholder until the engine lands (owned by the engine work).
 */
#include "taskflow.h"

void
tf_engine_init(void)
{
}
