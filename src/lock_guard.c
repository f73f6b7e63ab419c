/*-------------------------------------------------------------------------
 *
 * lock_guard.c
 *	  Locks a role could hold against the engine (review of 1.6,
 *	  docs/security.md): LOCK TABLE on taskflow's catalog by a role that is
 *	  not a superuser; the engine's own transaction locks.
 *
 *	  Every role holds table-level UPDATE or DELETE on shared tables of the
 *	  catalog (flows, nodes: DELETE for drop_flow/drop_node, which run as the
 *	  caller; edges, variables: all of them), and PostgreSQL lets a role that
 *	  holds UPDATE, DELETE or TRUNCATE on a table LOCK it in any mode.  So
 *	  any role could `BEGIN; LOCK TABLE taskflow.flows IN ACCESS EXCLUSIVE
 *	  MODE;` and stay idle: the scheduler of that database (every owner's
 *	  flows), every node worker's book-keeping and every other role's API
 *	  call and read of the catalog waited as long as it liked.  Row level
 *	  security keeps a role to its own rows; a table lock is not per row.
 *
 *	  tf_lock_guard_before refuses, before any lock is taken, a LOCK of a
 *	  relation in the taskflow schema in a mode stronger than ROW EXCLUSIVE
 *	  (what INSERT/UPDATE/DELETE take; those do not block other owners'
 *	  writes) by a role that is not a superuser, also through a view of the
 *	  role's own (LOCK of a view locks the tables it reads, checked against
 *	  the view owner's privileges; the views are followed in pg_depend, so
 *	  that no such request waits in the lock queue, where it would hold up
 *	  every later one).  tf_lock_guard_after checks once more after the
 *	  statement, from the locks held: the statement fails and its
 *	  transaction releases them.
 *
 *	  taskflow._xact_lock(key1 int, key2 int): the engine's own transaction
 *	  locks, in a key space of their own.  The event triggers of part 93
 *	  serialized their firing with pg_advisory_xact_lock(hashtext(
 *	  'taskflow.event'), hashtext(flow id || ' ' || bizdate)) -- in the
 *	  key space of every role's pg_advisory_lock: a role that held that key
 *	  of its own downstream flow (session lock, idle) stopped the scheduler's
 *	  tick that marked its upstream run succeeded, and with it every owner's
 *	  runs of the database.  The same keys in an advisory lock tag with
 *	  field4 = TF_LOCK_SPACE, which no SQL-level advisory lock function
 *	  produces (those use 1 and 2); revoked from PUBLIC (the triggers fire as
 *	  the bootstrap superuser: the scheduler, the gate, node workers'
 *	  book-keeping).
 *
 *	  tf_ddl_guard_before (review of 1.7): DDL that PostgreSQL runs with a
 *	  lock of a taskflow relation taken before its privilege check
 *	  (PARTITION OF, ATTACH/DETACH PARTITION, CREATE RULE, CREATE TRIGGER,
 *	  REFERENCES), refused before it can wait in that table's lock queue.
 *
 *	  taskflow._in_scheduler(): whether the session is a scheduler (the
 *	  condition of taskflow._lock_parents, part 99_review4).
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"
#include "engine.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_rewrite.h"
#include "rewrite/rewriteSupport.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "storage/lockdefs.h"
#include "utils/lsyscache.h"
#include "fmgr.h"
#include "postmaster/bgworker.h"

/* field4 of taskflow's own advisory lock tags ('tf'; SQL's are 1 and 2) */
#define TF_LOCK_SPACE 0x7466

PG_FUNCTION_INFO_V1(tf_xact_lock);
PG_FUNCTION_INFO_V1(tf_in_scheduler);

/*
 * taskflow._in_scheduler(): is this a scheduler process?  (taskflow.
 * _lock_parents: only the scheduler's tick must never wait for a user's
 * row lock; a user's own operation waits as before.)
 */
Datum
tf_in_scheduler(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(MyBgworkerEntry != NULL &&
				   strcmp(MyBgworkerEntry->bgw_type, "taskflow scheduler") == 0);
}

Datum
tf_xact_lock(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) PG_GETARG_INT32(0),
						 (uint32) PG_GETARG_INT32(1), TF_LOCK_SPACE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	PG_RETURN_VOID();
}

static bool
tf_lock_guarded(Node *parsetree)
{
	return IsA(parsetree, LockStmt) &&
		((LockStmt *) parsetree)->mode > RowExclusiveLock &&
		!superuser();
}

static void
tf_lock_refuse(Oid relid, int mode)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to lock taskflow.%s in %s mode",
					get_rel_name(relid), GetLockmodeName(DEFAULT_LOCKMETHOD, mode)),
			 errdetail("taskflow's catalog is shared by every flow owner of the database; "
					   "a lock of the whole table would stop its scheduler and other roles."),
			 errhint("Row locks of your own rows (SELECT ... FOR UPDATE, UPDATE) are allowed; "
					 "only a superuser may lock the table.")));
}

/*
 * The relation of the taskflow schema (nsp) that view viewid reads, directly
 * or through other views (its _RETURN rule's dependencies: what LOCK of the
 * view locks), or InvalidOid.  From the catalog only: no lock is taken.
 */
static Oid
tf_view_reaches(Oid viewid, Oid nsp, int depth)
{
	Oid			rule = get_rewrite_oid(viewid, "_RETURN", true);
	Oid			found = InvalidOid;
	Relation	dep;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;

	if (!OidIsValid(rule) || depth > 32)
		return InvalidOid;
	dep = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RewriteRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(rule));
	scan = systable_beginscan(dep, DependDependerIndexId, true, NULL, 2, key);
	while (!OidIsValid(found) && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

		if (d->refclassid != RelationRelationId || d->refobjid == viewid)
			continue;
		if (get_rel_namespace(d->refobjid) == nsp)
			found = d->refobjid;
		else if (get_rel_relkind(d->refobjid) == RELKIND_VIEW)
			found = tf_view_reaches(d->refobjid, nsp, depth + 1);
	}
	systable_endscan(scan);
	table_close(dep, AccessShareLock);
	return found;
}

/*
 * DDL that PostgreSQL runs with a lock of a relation it names taken before
 * its privilege check (review of 1.7, docs/security.md): CREATE TABLE ...
 * PARTITION OF and ALTER TABLE / ALTER INDEX ... ATTACH / DETACH PARTITION
 * (also FINALIZE; ACCESS EXCLUSIVE on the named table or index), CREATE RULE (ACCESS EXCLUSIVE), CREATE
 * TRIGGER and a FOREIGN KEY's REFERENCES (SHARE ROW EXCLUSIVE).  The
 * statement fails once the lock is granted, but while it waits for it --
 * behind the role's own open transaction that read or wrote the table --
 * it stays in the lock queue, and every later request that conflicts waits
 * behind it: the scheduler (every owner's runs), node workers, every
 * role's reads.  Refused here, before PostgreSQL locks anything, for a
 * relation of the taskflow schema the role does not own (for TRIGGER and
 * REFERENCES: does not hold the privilege), with the error PostgreSQL
 * raises once it has the lock (the same text: only the waiting is gone).
 */
static void
tf_ddl_check(RangeVar *rv, Oid nsp, AclMode priv)
{
	Oid			relid;
	bool		ok;

	if (rv == NULL)
		return;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid) || get_rel_namespace(relid) != nsp)
		return;
	if (priv == ACL_NO_RIGHTS)
		ok = pg_class_ownercheck(relid, GetUserId());
	else
		ok = pg_class_aclcheck(relid, GetUserId(), priv) == ACLCHECK_OK ||
			(priv == ACL_REFERENCES &&
			 pg_attribute_aclcheck_all(relid, GetUserId(), priv, ACLMASK_ANY) == ACLCHECK_OK);
	/* the error PostgreSQL raises once it holds the lock, before it */
	if (!ok)
		aclcheck_error(priv == ACL_NO_RIGHTS ? ACLCHECK_NOT_OWNER : ACLCHECK_NO_PRIV,
					   get_relkind_objtype(get_rel_relkind(relid)), get_rel_name(relid));
}

/* the FOREIGN KEYs among a list of constraints or column definitions */
static void
tf_ddl_check_fks(List *elts, Oid nsp)
{
	ListCell   *lc;

	foreach(lc, elts)
	{
		Node	   *n = lfirst(lc);

		if (IsA(n, ColumnDef))
			tf_ddl_check_fks(((ColumnDef *) n)->constraints, nsp);
		else if (IsA(n, Constraint) && ((Constraint *) n)->contype == CONSTR_FOREIGN)
			tf_ddl_check(((Constraint *) n)->pktable, nsp, ACL_REFERENCES);
	}
}

static void
tf_ddl_guard_before(Node *parsetree)
{
	Oid			nsp;
	ListCell   *lc;

	if (!(IsA(parsetree, CreateStmt) || IsA(parsetree, CreateForeignTableStmt) ||
		  IsA(parsetree, AlterTableStmt) || IsA(parsetree, CreateTrigStmt) ||
		  IsA(parsetree, RuleStmt)) || superuser())
		return;
	nsp = get_namespace_oid(TASKFLOW_SCHEMA, true);
	if (!OidIsValid(nsp))
		return;
	switch (nodeTag(parsetree))
	{
		case T_CreateStmt:
		case T_CreateForeignTableStmt:
			{
				CreateStmt *cs = (CreateStmt *) parsetree;

				if (cs->partbound)
					foreach(lc, cs->inhRelations)
						tf_ddl_check(lfirst(lc), nsp, ACL_NO_RIGHTS);
				tf_ddl_check_fks(cs->tableElts, nsp);
				tf_ddl_check_fks(cs->constraints, nsp);
				break;
			}
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
			{
				AlterTableCmd *cmd = lfirst(lc);

				if (cmd->subtype == AT_AttachPartition ||
					cmd->subtype == AT_DetachPartitionFinalize ||
					(cmd->subtype == AT_DetachPartition &&
					 !((PartitionCmd *) cmd->def)->concurrent))
					tf_ddl_check(((PartitionCmd *) cmd->def)->name, nsp, ACL_NO_RIGHTS);
				else if (cmd->subtype == AT_AddConstraint || cmd->subtype == AT_AddColumn)
					tf_ddl_check_fks(list_make1(cmd->def), nsp);
			}
			break;
		case T_CreateTrigStmt:
			tf_ddl_check(((CreateTrigStmt *) parsetree)->relation, nsp, ACL_TRIGGER);
			break;
		case T_RuleStmt:
			tf_ddl_check(((RuleStmt *) parsetree)->relation, nsp, ACL_NO_RIGHTS);
			break;
		default:
			break;
	}
}

/* before the statement: the relations named, and what the views named read (no lock taken) */
void
tf_lock_guard_before(Node *parsetree)
{
	LockStmt   *ls;
	Oid			nsp;
	ListCell   *lc;

	tf_ddl_guard_before(parsetree);
	if (!tf_lock_guarded(parsetree))
		return;
	ls = (LockStmt *) parsetree;
	nsp = get_namespace_oid(TASKFLOW_SCHEMA, true);
	if (!OidIsValid(nsp))
		return;
	foreach(lc, ls->relations)
	{
		Oid			relid = RangeVarGetRelid((RangeVar *) lfirst(lc), NoLock, true);

		if (!OidIsValid(relid))
			continue;
		if (get_rel_namespace(relid) == nsp)
			tf_lock_refuse(relid, ls->mode);
		if (get_rel_relkind(relid) == RELKIND_VIEW)
		{
			Oid			reached = tf_view_reaches(relid, nsp, 0);

			if (OidIsValid(reached))
				tf_lock_refuse(reached, ls->mode);
		}
	}
}

/* after it: a strong lock of ours on a taskflow relation (through a view) */
void
tf_lock_guard_after(Node *parsetree)
{
	LockData   *ld;
	Oid			nsp;

	if (!tf_lock_guarded(parsetree))
		return;
	nsp = get_namespace_oid(TASKFLOW_SCHEMA, true);
	if (!OidIsValid(nsp))
		return;
	ld = GetLockStatusData();
	for (int i = 0; i < ld->nelements; i++)
	{
		LockInstanceData *li = &ld->locks[i];
		Oid			relid;

		if (li->pid != MyProcPid || li->locktag.locktag_type != LOCKTAG_RELATION ||
			li->locktag.locktag_field1 != MyDatabaseId)
			continue;
		relid = li->locktag.locktag_field2;
		for (int m = ShareUpdateExclusiveLock; m <= AccessExclusiveLock; m++)
			if ((li->holdMask & LOCKBIT_ON(m)) && get_rel_namespace(relid) == nsp)
				tf_lock_refuse(relid, m);
	}
}
