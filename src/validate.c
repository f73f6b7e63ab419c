/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Definition-time helpers of the flow API (sql/src/10_api.sql):
 *
 *	  taskflow._check_sql(body text, what text, expression boolean)
 *	      parses an sql node's script (or a wait node's condition) without
 *	      running it: each ${...} becomes a neutral stand-in (see
 *	      tf_render_placeholders), then raw_parser().  A syntax error
 *	      (42601, with the position in the body) and transaction control
 *	      statements (2D000: the engine owns the transactions, see
 *	      tf_sql_autocommit) are refused.  A syntax error at or after a
 *	      plain ${name} outside quotes is not reported: such a reference
 *	      may stand for any SQL text, so only the run can tell.
 *
 *	  taskflow._raise(sqlstate, message, detail, hint, context, wrapper)
 *	      re-raises an error caught by a top-level API function, with
 *	      'context' (the user's objects: flow, node) as the only CONTEXT
 *	      line instead of the frames of taskflow's internal PL/pgSQL
 *	      functions (and of the SQL function 'wrapper' around the raising
 *	      one); frames of the caller (a user's own function) stay.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include "format.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(tf_check_sql);
PG_FUNCTION_INFO_V1(tf_raise);
PG_FUNCTION_INFO_V1(tf_size_bytes);

/* taskflow._size_bytes(value text, what text) RETURNS bigint (STRICT) */
Datum
tf_size_bytes(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(tf_parse_size(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								  text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

/*
 * Mark the bytes of sql[0..len) that are inside a string constant, a quoted
 * identifier or a comment.
 */
static bool *
quoted_bytes(const char *sql, int len)
{
	bool	   *q = palloc0(len + 1);
	int			i = 0;

	while (i < len)
	{
		int			start = i;

		if (sql[i] == '-' && sql[i + 1] == '-')
		{
			while (i < len && sql[i] != '\n')
				i++;
		}
		else if (sql[i] == '/' && sql[i + 1] == '*')
		{
			int			depth = 1;

			i += 2;
			while (i < len && depth > 0)
			{
				if (sql[i] == '/' && sql[i + 1] == '*')
					depth++, i++;
				else if (sql[i] == '*' && sql[i + 1] == '/')
					depth--, i++;
				i++;
			}
		}
		else if (sql[i] == '\'' || sql[i] == '"')
		{
			char		c = sql[i];
			bool		esc = c == '\'' && i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E');

			i++;
			while (i < len)
			{
				if (esc && sql[i] == '\\' && i + 1 < len)
					i += 2;
				else if (sql[i] == c && sql[i + 1] == c)
					i += 2;
				else if (sql[i++] == c)
					break;
			}
		}
		else if (sql[i] == '$' && (i == 0 || !(isalnum((unsigned char) sql[i - 1]) || sql[i - 1] == '_')))
		{
			int			j = i + 1;

			while (j < len && (isalpha((unsigned char) sql[j]) || sql[j] == '_' ||
							   (j > i + 1 && isdigit((unsigned char) sql[j]))))
				j++;
			if (j < len && sql[j] == '$')
			{
				int			taglen = j - i + 1;
				const char *p = sql + j + 1;

				i = len;		/* unterminated: quoted to the end */
				while ((p = strchr(p, '$')) != NULL && p < sql + len)
				{
					if (strncmp(p, sql + start, taglen) == 0)
					{
						i = (p - sql) + taglen;
						break;
					}
					p++;
				}
			}
		}
		if (i == start)
			i++;				/* an ordinary byte */
		else
			memset(q + start, true, Min(i, len) - start);
	}
	return q;
}

/* 1-based character position in tmpl of output byte 'off' */
static int
template_position(const char *tmpl, const char *out, const int *map, int off)
{
	int			outlen = strlen(out);
	int			orig = off < outlen ? map[off] : (int) strlen(tmpl);

	return pg_mbstrlen_with_len(tmpl, orig) + 1;
}

/* line number (1-based) of character position pos (1-based) in s */
static int
line_of(const char *s, int pos)
{
	int			line = 1;
	int			n = 0;

	while (*s && n < pos - 1)
	{
		if (*s == '\n')
			line++;
		s += pg_mblen(s);
		n++;
	}
	return line;
}

/* taskflow._check_sql(body text, what text, expression boolean) RETURNS void */
Datum
tf_check_sql(PG_FUNCTION_ARGS)
{
	char	   *body;
	char	   *what;
	bool		expression;
	const char *prefix;
	List	   *plain = NIL;
	int		   *map;
	char	   *sub;
	char	   *sql;
	int			shift;
	List	   *raw = NIL;
	ErrorData  *edata = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	ListCell   *lc;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	body = text_to_cstring(PG_GETARG_TEXT_PP(0));
	what = PG_ARGISNULL(1) ? "body" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	expression = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);

	sub = tf_render_placeholders(body, what, &plain, &map);
	/* a wait condition runs as SELECT (<condition>)::boolean (node_sql.c) */
	prefix = expression ? "SELECT (" : "";
	shift = strlen(prefix);
	sql = expression ? psprintf("%s%s)::boolean", prefix, sub) : sub;

	PG_TRY();
	{
		/*
		 * No context callbacks: the caller's (SPI's) would turn the error
		 * position into a position in the calling query.  PG_CATCH restores
		 * the stack.
		 */
		ErrorContextCallback *save = error_context_stack;

		error_context_stack = NULL;
		raw = raw_parser(sql, RAW_PARSE_DEFAULT);
		error_context_stack = save;
	}
	PG_CATCH();
	{
		/* the raw parser holds no resources: catching without a subxact is safe */
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();

	if (edata != NULL)
	{
		int			off = -1;
		int			pos;

		/* cursorpos: 1-based character position in sql */
		if (edata->cursorpos > 0)
		{
			const char *p = sql;
			int			n;

			for (n = 1; n < edata->cursorpos && *p; n++)
				p += pg_mblen(p);
			off = (p - sql) - shift;
			if (off < 0)
				off = 0;
		}
		else
			off = strlen(sub);

		/* an error at or after a plain ${name} outside quotes: undecidable */
		if (plain != NIL)
		{
			bool	   *q = quoted_bytes(sub, strlen(sub));

			foreach(lc, plain)
				if (lfirst_int(lc) <= off && !q[lfirst_int(lc)])
					PG_RETURN_VOID();
		}
		pos = template_position(body, sub, map, off);
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("%s in %s at position %d (line %d)",
						edata->message, what, pos, line_of(body, pos)),
				 errhint(expression
						 ? "A condition (wait, branch, check_rows where) is one SQL boolean expression; it runs as SELECT (<condition>)::boolean."
						 : "The body is checked with every ${...} replaced by a stand-in ('x' for :literal, \"x\" for :ident); fix the SQL or the variable reference.")));
	}

	if (expression && list_length(raw) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("%s is not a single expression", what),
				 errhint("A condition (wait, branch, check_rows where) is one SQL boolean expression; it runs as SELECT (<condition>)::boolean.")));
	foreach(lc, raw)
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);

		if (IsA(rs->stmt, TransactionStmt))
		{
			int			loc = rs->stmt_location;
			int			pos;

			/* a statement's location includes the blanks and comments before it */
			for (;;)
			{
				while (isspace((unsigned char) sql[loc]))
					loc++;
				if (sql[loc] == '-' && sql[loc + 1] == '-')
					while (sql[loc] && sql[loc] != '\n')
						loc++;
				else if (sql[loc] == '/' && sql[loc + 1] == '*' && strstr(sql + loc, "*/"))
					loc = strstr(sql + loc, "*/") - sql + 2;
				else
					break;
			}
			pos = template_position(body, sub, map, loc - shift);

			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
					 errmsg("%s contains a transaction control statement (%s) at position %d (line %d)",
							what, GetCommandTagName(CreateCommandTag(rs->stmt)),
							pos, line_of(body, pos)),
					 errdetail("An sql node runs its script in one transaction, or in autocommit mode each statement in a transaction of its own; the engine commits."),
					 errhint("Leave out BEGIN, COMMIT, ROLLBACK, SAVEPOINT and the like; use option \"autocommit\": true for statements that need their own transaction.")));
		}
	}
	PG_RETURN_VOID();
}

/* ---- _raise ---- */

/* the text after the first line of s */
static const char *
skip_line(const char *s)
{
	const char *nl = strchr(s, '\n');

	return nl ? nl + 1 : s + strlen(s);
}

/* taskflow._raise(sqlstate, message, detail, hint, context, wrapper text) */
Datum
tf_raise(PG_FUNCTION_ARGS)
{
	char	   *state = PG_ARGISNULL(0) ? "P0001" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *message = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *detail = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *hint = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *context = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	char	   *wrapper = PG_NARGS() < 6 || PG_ARGISNULL(5) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(5));
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *edata;
	int			code;

	if (strlen(state) != 5 || strspn(state, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 5)
		state = "XX000";
	code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
	if (detail && *detail == '\0')
		detail = NULL;
	if (hint && *hint == '\0')
		hint = NULL;

	PG_TRY();
	{
		ereport(ERROR,
				(errcode(code),
				 errmsg_internal("%s", message),
				 detail ? errdetail_internal("%s", detail) : 0,
				 hint ? errhint("%s", hint) : 0));
	}
	PG_CATCH();
	{
		StringInfoData ctx;
		const char *rest;
		const char *frame;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();

		/*
		 * The context collected so far: the frames of this call (the SPI
		 * statement "SELECT taskflow._raise(...)" and the PL/pgSQL API
		 * function at PERFORM), then the frames of whoever called the API
		 * function.  Replace the first two with 'context'; when the text
		 * does not look as expected (e.g. translated messages) keep it.
		 */
		rest = edata->context;
		if (rest != NULL &&
			strncmp(rest, "SQL statement \"SELECT taskflow._raise(", 38) == 0 &&
			(frame = strstr(rest, "\nPL/pgSQL function taskflow.")) != NULL)
		{
			rest = skip_line(frame + 1);
			/* the SQL function that called the raising function */
			if (wrapper != NULL)
			{
				char	   *line = psprintf("SQL function \"%s\"", wrapper);

				if (strncmp(rest, line, strlen(line)) == 0)
					rest = skip_line(rest);
			}
		}
		initStringInfo(&ctx);
		if (context && *context)
			appendStringInfoString(&ctx, context);
		if (rest && *rest)
			appendStringInfo(&ctx, "%s%s", ctx.len ? "\n" : "", rest);
		edata->context = ctx.len ? ctx.data : NULL;
		ReThrowError(edata);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}
