/*-------------------------------------------------------------------------
 *
 * bypassrls.c
 *	  Roles with BYPASSRLS that are not superusers (review of 1.6,
 *	  docs/security.md).
 *
 *	  Row level security is what keeps a role to the flows of the owners it
 *	  is a member of; a BYPASSRLS role skips it.  Such a role (granted for
 *	  dumps or reports) could add a node to, or change a node, edge or
 *	  variable of, a superuser's flow -- through the API or a direct INSERT
 *	  -- and the node then ran as that superuser.  Reading stays what
 *	  BYPASSRLS grants; writing another owner's definition does not:
 *
 *	  taskflow._rls_bypassed() -> boolean
 *	      the current user is not a superuser and has BYPASSRLS: the WHEN
 *	      of the catalog triggers taskflow._bypassrls_guard (part
 *	      99_review4), which check membership of the row's owner as the
 *	      policies would; and the C create path (define_create.c) leaves
 *	      such a role's calls to the API path, whose statements fire them.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"

#include "define_direct.h"

PG_FUNCTION_INFO_V1(tf_rls_bypassed);

bool
tf_role_bypasses_rls(void)
{
	Oid			user = GetUserId();

	return !superuser_arg(user) && has_bypassrls_privilege(user);
}

Datum
tf_rls_bypassed(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(tf_role_bypasses_rls());
}
