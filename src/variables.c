/*-------------------------------------------------------------------------
 *
 * variables.c
 *	  ${var} substitution in node bodies and options.  Owns tf_render() and
 *	  the SQL functions taskflow._render_text(template, vars, what),
 *	  _render_text_dry() and taskflow._template_vars(template).
 *	  Output variables ${node.column} are keys "node.column" of the vars
 *	  (taskflow._output_variables(), sql/src/91_outvars.sql).
 *
 *	  Syntax (see docs/variables.md):
 *	    ${name}          the value as text
 *	    ${name:literal}  the value as a SQL literal (quote_literal), NULL if
 *	                     the value is JSON null
 *	    ${name:ident}    the value as a SQL identifier (quote_identifier)
 *	    $${              a literal "${"
 *	  Names are [A-Za-z_][A-Za-z0-9_]*.  Values come from a jsonb object:
 *	  strings as-is, numbers and booleans as their JSON text, null as the
 *	  empty string (plain form), arrays/objects as JSON text.
 *
 *	  Variable values (bizdate, cyctime, flow variables, run params) are
 *	  computed in SQL by taskflow._variables(); this file only substitutes.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include <ctype.h>

#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(tf_render_text);
PG_FUNCTION_INFO_V1(tf_render_text_dry);
PG_FUNCTION_INFO_V1(tf_template_vars);

typedef enum VarForm
{
	VAR_PLAIN,
	VAR_LITERAL,
	VAR_IDENT
} VarForm;

/*
 * called for each ${...} reference (at: its "${" in the template); returns
 * the replacement or NULL
 */
typedef const char *(*var_callback) (const char *name, VarForm form,
									 const char *at, void *arg);

#define TEMPLATE_HINT \
	"Write ${name}, ${name:literal} or ${name:ident}; names match [A-Za-z_][A-Za-z0-9_]*; write $${ for a literal \"${\"."

static int
char_position(const char *tmpl, const char *p)
{
	return pg_mbstrlen_with_len(tmpl, p - tmpl) + 1;
}

/*
 * Just enough of the SQL lexer to know whether a ${...} reference stands
 * inside a dollar-quoted string ($$...$$, $tag$...$tag$): quoted strings,
 * quoted identifiers and comments are skipped so that a "$$" in them does
 * not count.  Only the template's own text is scanned, never a value.
 */
typedef enum LexMode
{
	LEX_NORMAL,
	LEX_SQUOTE,					/* '...' */
	LEX_ESQUOTE,				/* E'...' (backslash escapes) */
	LEX_DQUOTE,					/* "..." */
	LEX_LINE_COMMENT,			/* -- ... */
	LEX_BLOCK_COMMENT,			/* nestable */
	LEX_DOLLAR					/* $tag$ ... $tag$ */
} LexMode;

typedef struct LexState
{
	LexMode		mode;
	int			depth;			/* block comment nesting */
	char	   *delim;			/* "$tag$" while in LEX_DOLLAR */
} LexState;

static bool
is_ident_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* length of a dollar-quote delimiter "$tag$" at p, or 0 */
static int
dollar_delim_len(const char *p)
{
	const char *q = p + 1;

	if (*p != '$')
		return 0;
	if (*q != '$')
	{
		if (!(isalpha((unsigned char) *q) || *q == '_' || (unsigned char) *q >= 0x80))
			return 0;
		while (isalnum((unsigned char) *q) || *q == '_' || (unsigned char) *q >= 0x80)
			q++;
		if (*q != '$')
			return 0;
	}
	return q - p + 1;
}

/* consume the template text at p (not a variable reference): how many bytes */
static int
lex_step(LexState *ls, const char *tmpl, const char *p)
{
	int			n;

	switch (ls->mode)
	{
		case LEX_NORMAL:
			if (*p == '\'')
			{
				ls->mode = (p > tmpl && (p[-1] == 'E' || p[-1] == 'e') &&
							(p - 1 == tmpl || !is_ident_char((unsigned char) p[-2])))
					? LEX_ESQUOTE : LEX_SQUOTE;
				return 1;
			}
			if (*p == '"')
			{
				ls->mode = LEX_DQUOTE;
				return 1;
			}
			if (p[0] == '-' && p[1] == '-')
			{
				ls->mode = LEX_LINE_COMMENT;
				return 2;
			}
			if (p[0] == '/' && p[1] == '*')
			{
				ls->mode = LEX_BLOCK_COMMENT;
				ls->depth = 1;
				return 2;
			}
			if (*p == '$' && (p == tmpl || !is_ident_char((unsigned char) p[-1])) &&
				(n = dollar_delim_len(p)) > 0)
			{
				ls->mode = LEX_DOLLAR;
				ls->delim = pnstrdup(p, n);
				return n;
			}
			return 1;
		case LEX_SQUOTE:
		case LEX_ESQUOTE:
			if (ls->mode == LEX_ESQUOTE && p[0] == '\\' && p[1] != '\0')
				return 2;
			if (p[0] == '\'' && p[1] == '\'')
				return 2;
			if (*p == '\'')
				ls->mode = LEX_NORMAL;
			return 1;
		case LEX_DQUOTE:
			if (p[0] == '"' && p[1] == '"')
				return 2;
			if (*p == '"')
				ls->mode = LEX_NORMAL;
			return 1;
		case LEX_LINE_COMMENT:
			if (*p == '\n')
				ls->mode = LEX_NORMAL;
			return 1;
		case LEX_BLOCK_COMMENT:
			if (p[0] == '/' && p[1] == '*')
			{
				ls->depth++;
				return 2;
			}
			if (p[0] == '*' && p[1] == '/')
			{
				if (--ls->depth == 0)
					ls->mode = LEX_NORMAL;
				return 2;
			}
			return 1;
		case LEX_DOLLAR:
			n = strlen(ls->delim);
			if (strncmp(p, ls->delim, n) == 0)
			{
				ls->mode = LEX_NORMAL;
				pfree(ls->delim);
				ls->delim = NULL;
				return n;
			}
			return 1;
	}
	return 1;
}

/*
 * Append len bytes of s to out; with origmap, also one int per byte: the
 * byte offset in the template that the output byte comes from.
 */
static void
emit(StringInfo out, StringInfo origmap, const char *s, int len, int orig)
{
	int			i;

	appendBinaryStringInfo(out, s, len);
	if (origmap)
		for (i = 0; i < len; i++)
			appendBinaryStringInfo(origmap, (char *) &orig, sizeof(int));
}

/*
 * Scan tmpl; append literal text and each callback result to out (if out is
 * not NULL; origmap: see emit()).  Errors name the position (in characters,
 * 1-based) and 'what'.
 */
static void
scan_template_map(const char *tmpl, const char *what, StringInfo out,
				  StringInfo origmap, var_callback cb, void *arg)
{
	const char *p = tmpl;
	const char *start = tmpl;
	LexState	ls = {LEX_NORMAL, 0, NULL};

	while (*p)
	{
		const char *name_end;
		char	   *name;
		VarForm		form = VAR_PLAIN;
		const char *value;

		if (p[0] != '$' || (p[1] != '{' && !(p[1] == '$' && p[2] == '{')))
		{
			int			n = lex_step(&ls, tmpl, p);

			if (out)
			{
				int			i;

				for (i = 0; i < n; i++)
					emit(out, origmap, p + i, 1, p + i - tmpl);
			}
			p += n;
			continue;
		}
		if (p[1] == '$')
		{
			/* $${ -> ${ */
			if (out)
				emit(out, origmap, "${", 2, p - tmpl);
			p += 3;
			continue;
		}

		start = p;
		p += 2;
		if (!(isalpha((unsigned char) *p) || *p == '_'))
		{
			if (strchr(p, '}') == NULL)
				goto unterminated;
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid variable reference at position %d in %s",
							char_position(tmpl, start), what),
					 errdetail("A variable name must start with a letter or an underscore."),
					 errhint(TEMPLATE_HINT)));
		}
		while (isalnum((unsigned char) *p) || *p == '_')
			p++;
		if (*p == '.' || *p == '-')
		{
			/*
			 * an output variable ${node.column}: node names may also hold
			 * "-", column names are variable names; anything else is left
			 * to the "unexpected character" error below
			 */
			const char *q = p;

			while (isalnum((unsigned char) *q) || *q == '_' || *q == '-')
				q++;
			if (*q == '.' && (isalpha((unsigned char) q[1]) || q[1] == '_'))
			{
				p = q + 1;
				while (isalnum((unsigned char) *p) || *p == '_')
					p++;
			}
		}
		name_end = p;
		if (*p == ':')
		{
			const char *mod = ++p;
			char	   *modname;

			while (isalnum((unsigned char) *p) || *p == '_')
				p++;
			if (*p != '}')
				goto unterminated;
			modname = pnstrdup(mod, p - mod);
			if (strcmp(modname, "literal") == 0)
				form = VAR_LITERAL;
			else if (strcmp(modname, "ident") == 0)
				form = VAR_IDENT;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown modifier \"%s\" for variable \"%s\" at position %d in %s",
								modname, pnstrdup(start + 2, name_end - start - 2),
								char_position(tmpl, start), what),
						 errhint("The modifiers are :literal (a quoted SQL literal) and :ident (a quoted SQL identifier).")));
		}
		if (*p != '}')
		{
			if (strchr(p, '}') == NULL)
				goto unterminated;
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid variable reference at position %d in %s",
							char_position(tmpl, start), what),
					 errdetail("Unexpected character \"%c\" after \"%s\".",
							   *p, pnstrdup(start, p - start)),
					 errhint(TEMPLATE_HINT)));
		}
		p++;					/* skip '}' */

		name = pnstrdup(start + 2, name_end - start - 2);
		value = cb(name, form, start, arg);

		/*
		 * A quoted value inside a dollar-quoted string must not end it: a
		 * value holding the closing "$tag$" would break out of the string
		 * (quote_literal does not escape "$").
		 */
		if (value && form != VAR_PLAIN && ls.mode == LEX_DOLLAR &&
			strstr(value, ls.delim) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value of variable \"%s\" contains \"%s\" and cannot be used as ${%s:%s} at position %d in %s",
							name, ls.delim, name, form == VAR_LITERAL ? "literal" : "ident",
							char_position(tmpl, start), what),
					 errdetail("The reference stands inside a string quoted with %s ... %s, which the value would end.",
							   ls.delim, ls.delim),
					 errhint("Quote that string with a tag the value cannot contain (e.g. $body$ ... $body$), or pass the value as a function argument outside the dollar-quoted string.")));
		if (out && value)
			emit(out, origmap, value, strlen(value), start - tmpl);
		pfree(name);
	}
	return;

unterminated:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unterminated variable reference \"${\" at position %d in %s",
					char_position(tmpl, start), what),
			 errhint(TEMPLATE_HINT)));
}

static void
scan_template(const char *tmpl, const char *what, StringInfo out,
			  var_callback cb, void *arg)
{
	scan_template_map(tmpl, what, out, NULL, cb, arg);
}

/* ---- rendering ---- */

typedef struct RenderState
{
	Jsonb	   *vars;
	const char *what;
	bool		keep_outputs;	/* leave ${node.column} as written (dry run) */
} RenderState;

static int
cmp_cstring_cell(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

/* "a, b, c": the sorted keys of the vars object */
static char *
known_names(Jsonb *vars)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *names = NIL;
	StringInfoData buf;
	ListCell   *lc;

	if (vars == NULL || !JB_ROOT_IS_OBJECT(vars))
		return NULL;
	it = JsonbIteratorInit(&vars->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_KEY)
			names = lappend(names, pnstrdup(v.val.string.val, v.val.string.len));
	if (names == NIL)
		return NULL;
	list_sort(names, cmp_cstring_cell);
	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", (char *) lfirst(lc));
	return buf.data;
}

/*
 * Text of a scalar jsonb value: strings as they are, numbers and booleans as
 * their JSON text, NULL for JSON null.  A container is an ERROR naming
 * 'what' (e.g. "archive option \"path\"").  Shared by every place that reads
 * options or variable values out of jsonb.
 */
char *
tf_jsonb_scalar_text(JsonbValue *v, const char *what)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvNull:
			return NULL;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be a string, number or boolean", what)));
	}
	return NULL;				/* keep compiler quiet */
}

/* variable values may also be arrays/objects: they render as JSON text */
static char *
jsonb_value_text(JsonbValue *v)
{
	if (v->type == jbvBinary)
		return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	return tf_jsonb_scalar_text(v, "variable value");
}

/* "a.x, a.y": the sorted output variables of node in vars, or NULL */
static char *
known_outputs(Jsonb *vars, const char *node)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *names = NIL;
	StringInfoData buf;
	ListCell   *lc;
	size_t		len = strlen(node);

	if (vars == NULL || !JB_ROOT_IS_OBJECT(vars))
		return NULL;
	it = JsonbIteratorInit(&vars->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_KEY && v.val.string.len > len &&
			strncmp(v.val.string.val, node, len) == 0 && v.val.string.val[len] == '.')
			names = lappend(names, pnstrdup(v.val.string.val, v.val.string.len));
	if (names == NIL)
		return NULL;
	list_sort(names, cmp_cstring_cell);
	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", (char *) lfirst(lc));
	return buf.data;
}

static const char *
render_var(const char *name, VarForm form, const char *at, void *arg)
{
	RenderState *st = (RenderState *) arg;
	JsonbValue *v = NULL;
	char	   *text;

	if (st->vars != NULL && JB_ROOT_IS_OBJECT(st->vars))
		v = getKeyJsonValueFromContainer(&st->vars->root, name, strlen(name),
										 NULL);
	if (v == NULL && strchr(name, '.') != NULL)
	{
		const char *dot = strchr(name, '.');
		char	   *node = pnstrdup(name, dot - name);

		if (st->keep_outputs)
			return pnstrdup(at, strchr(at, '}') - at + 1);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("output variable \"%s\" has no value in %s", name, st->what),
				 errdetail("Node \"%s\" recorded %s.", node,
						   known_outputs(st->vars, node) ? psprintf("the outputs %s", known_outputs(st->vars, node))
						   : "no outputs in this run"),
				 errhint("An sql node records the first row of its last statement when that statement returns rows (SELECT, VALUES, ... RETURNING); each column named like a variable becomes ${node.column}.")));
	}
	if (v == NULL)
	{
		char	   *known = known_names(st->vars);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown variable \"%s\" in %s", name, st->what),
				 known ? errhint("Known variables: %s.", known)
				 : errhint("No variables are defined.")));
	}

	text = jsonb_value_text(v);
	switch (form)
	{
		case VAR_PLAIN:
			return text ? text : "";
		case VAR_LITERAL:
			return text ? quote_literal_cstr(text) : "NULL";
		case VAR_IDENT:
			if (text == NULL || text[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("variable \"%s\" is %s and cannot be used as an identifier in %s",
								name, text ? "empty" : "null", st->what)));
			return quote_identifier(text);
	}
	return NULL;
}

static char *
render_template(const char *tmpl, Jsonb *vars, const char *what, bool keep_outputs)
{
	StringInfoData out;
	RenderState st;

	if (tmpl == NULL)
		return NULL;
	if (what == NULL)
		what = "template";
	if (vars != NULL && !JB_ROOT_IS_OBJECT(vars))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("variables must be a jsonb object")));
	st.vars = vars;
	st.what = what;
	st.keep_outputs = keep_outputs;
	initStringInfo(&out);
	scan_template(tmpl, what, &out, render_var, &st);
	return out.data;
}

char *
tf_render(const char *tmpl, Jsonb *vars, const char *what)
{
	return render_template(tmpl, vars, what, false);
}

/* ---- SQL functions ---- */

/* taskflow._render_text(template text, vars jsonb, what text) RETURNS text */
Datum
tf_render_text(PG_FUNCTION_ARGS)
{
	char	   *tmpl;
	Jsonb	   *vars = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	char	   *what = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	tmpl = text_to_cstring(PG_GETARG_TEXT_PP(0));
	PG_RETURN_TEXT_P(cstring_to_text(tf_render(tmpl, vars, what)));
}

/*
 * taskflow._render_text_dry(template text, vars jsonb, what text) RETURNS
 * text: as _render_text, but output variables without a value stay as
 * written (render() without a run: their values exist only in a run).
 */
Datum
tf_render_text_dry(PG_FUNCTION_ARGS)
{
	char	   *tmpl;
	Jsonb	   *vars = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	char	   *what = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	tmpl = text_to_cstring(PG_GETARG_TEXT_PP(0));
	PG_RETURN_TEXT_P(cstring_to_text(render_template(tmpl, vars, what, true)));
}

static const char *
collect_var(const char *name, VarForm form, const char *at, void *arg)
{
	List	  **names = (List **) arg;
	ListCell   *lc;

	foreach(lc, *names)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return NULL;
	*names = lappend(*names, pstrdup(name));
	return NULL;
}

/*
 * taskflow._template_vars(template text) RETURNS SETOF text: distinct names
 * referenced, in order of first appearance.
 */
Datum
tf_template_vars(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *names = NIL;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	scan_template(text_to_cstring(PG_GETARG_TEXT_PP(0)), "template", NULL,
				  collect_var, &names);
	foreach(lc, names)
	{
		Datum		value = CStringGetTextDatum((char *) lfirst(lc));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}

/* ---- placeholders (definition-time checks of sql bodies) ---- */

/*
 * A stand-in for each reference, so that a template can be parsed before
 * any value is known: ${x:literal} -> 'x' (a string literal), ${x:ident} ->
 * "x" (a quoted identifier), ${x} -> tf_var, or 1 right after a digit (a
 * plain reference glued to a number).  A plain reference may stand for any
 * text (a keyword, a whole clause): the offsets of plain stand-ins in the
 * output are collected so that the caller can tell such cases apart.
 */
typedef struct PlaceholderState
{
	const char *tmpl;
	StringInfo	out;
	List	   *plain;			/* output offsets of plain stand-ins */
} PlaceholderState;

static const char *
placeholder_var(const char *name, VarForm form, const char *at, void *arg)
{
	PlaceholderState *st = (PlaceholderState *) arg;

	switch (form)
	{
		case VAR_LITERAL:
			return "'x'";
		case VAR_IDENT:
			return "\"x\"";
		case VAR_PLAIN:
			st->plain = lappend_int(st->plain, st->out->len);
			if (at > st->tmpl && isdigit((unsigned char) at[-1]))
				return "1";
			return "tf_var";
	}
	return NULL;
}

char *
tf_render_placeholders(const char *tmpl, const char *what, List **plain,
					   int **origmap)
{
	StringInfoData out;
	StringInfoData map;
	PlaceholderState st;

	initStringInfo(&out);
	initStringInfo(&map);
	st.tmpl = tmpl;
	st.out = &out;
	st.plain = NIL;
	scan_template_map(tmpl, what, &out, &map, placeholder_var, &st);
	*plain = st.plain;
	*origmap = (int *) map.data;
	return out.data;
}
