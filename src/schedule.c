/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  Flow schedules: parsing, validation and evaluation of the next fire
 *	  time.  Owns tf_schedule_validate(), tf_schedule_next() and the SQL
 *	  functions taskflow._schedule_validate(text) and taskflow.next_runs(),
 *	  and the time zone name check taskflow._tz_canonical(text).
 *
 *	  Accepted forms (see docs/schedules.md):
 *	    - 5-field cron "min hour dom month dow" (lists, ranges, steps, month
 *	      and day names; Vixie cron day rule)
 *	    - @yearly @annually @monthly @weekly @daily @midnight @hourly
 *	    - "every N seconds|minutes|hours", aligned to the Unix epoch
 *	    - a one-shot timestamp (read in the schedule's time zone unless it
 *	      names one)
 *	    - NULL: manual runs only
 *
 *	  Cron schedules are evaluated on local wall-clock time in the flow's
 *	  time zone.  A local time that does not exist (spring forward) fires at
 *	  the instant PostgreSQL maps it to (02:30 -> 03:30 CEST); a local time
 *	  that exists twice (fall back) fires once, at its first occurrence.
 *
 *-------------------------------------------------------------------------
 */
#include "taskflow.h"

#include <ctype.h>

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(tf_schedule_validate_sql);
PG_FUNCTION_INFO_V1(tf_next_runs);

#define SCHEDULE_HINT \
	"A schedule is a 5-field cron expression \"minute hour day-of-month month day-of-week\" " \
	"(e.g. \"0 5 * * *\", \"*/15 * * * mon-fri\"), one of @yearly, @monthly, @weekly, " \
	"@daily, @hourly, \"every N seconds|minutes|hours\", a timestamp for a single run " \
	"(e.g. \"2026-12-01 05:00\"), or NULL for manual runs only."

/* how far ahead (in years) a cron schedule is searched before giving up */
#define CRON_SEARCH_YEARS 8

/* local times within this distance of a UTC offset change get extra care */
#define DST_WINDOW_USECS (INT64CONST(4) * USECS_PER_HOUR)

typedef enum TfSchedKind
{
	TF_SCHED_CRON,
	TF_SCHED_EVERY,
	TF_SCHED_ONCE
} TfSchedKind;

typedef struct TfSchedule
{
	TfSchedKind kind;
	/* cron */
	uint64		minutes;		/* bit n: minute n, 0-59 */
	uint32		hours;			/* bit n: hour n, 0-23 */
	uint32		doms;			/* bit n: day n, 1-31 */
	uint32		months;			/* bit n: month n, 1-12 */
	uint32		dows;			/* bit n: weekday n, 0-6, 0 = Sunday */
	bool		dom_star;		/* day-of-month field starts with '*' */
	bool		dow_star;		/* day-of-week field starts with '*' */
	/* every */
	int64		every_usecs;
	/* one-shot */
	bool		once_zoned;		/* the timestamp named its own time zone */
	TimestampTz once_at;		/* when once_zoned */
	struct pg_tm once_tm;		/* local wall-clock time otherwise */
	fsec_t		once_fsec;
} TfSchedule;

typedef struct CronField
{
	const char *name;
	int			min;
	int			max;
	const char *const *names;	/* names[i] means value min_name + i */
	int			min_name;
} CronField;

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL
};

static const char *const day_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

enum
{
	F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW
};

static const CronField cron_fields[5] = {
	{"minute", 0, 59, NULL, 0},
	{"hour", 0, 23, NULL, 0},
	{"day-of-month", 1, 31, NULL, 0},
	{"month", 1, 12, month_names, 1},
	{"day-of-week", 0, 7, day_names, 0},
};

static const struct
{
	const char *name;
	const char *cron;
}			cron_shortcuts[] = {
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

/* ---------------------------------------------------------------------
 * Parsing
 * ---------------------------------------------------------------------
 */

static void schedule_error(const char *schedule, const char *detail) pg_attribute_noreturn();
static void field_error(const char *schedule, const struct CronField *f,
						const char *text, const char *why) pg_attribute_noreturn();

static void
schedule_error(const char *schedule, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid schedule \"%s\"", schedule),
			 errdetail_internal("%s", detail),
			 errhint(SCHEDULE_HINT)));
}

static void
field_error(const char *schedule, const CronField *f, const char *text,
			const char *why)
{
	schedule_error(schedule,
				   psprintf("%s field \"%s\": %s", f->name, text, why));
}

/*
 * Parse one value (number or name) at *p; advance *p.  Errors name the
 * field.
 */
static int
parse_cron_value(const char *schedule, const CronField *f, const char *text,
				 const char **p)
{
	const char *s = *p;
	int			v = 0;

	if (isdigit((unsigned char) *s))
	{
		int			ndigits = 0;

		while (isdigit((unsigned char) *s))
		{
			if (++ndigits > 4)
				field_error(schedule, f, text,
							psprintf("value %s out of range %d-%d",
									 pnstrdup(*p, strspn(*p, "0123456789")),
									 f->min, f->max));
			v = v * 10 + (*s - '0');
			s++;
		}
		if (v < f->min || v > f->max)
			field_error(schedule, f, text,
						psprintf("value %d out of range %d-%d", v, f->min, f->max));
	}
	else if (isalpha((unsigned char) *s))
	{
		const char *start = s;
		char	   *word;
		int			i;

		while (isalpha((unsigned char) *s))
			s++;
		word = pnstrdup(start, s - start);
		if (f->names == NULL)
			field_error(schedule, f, text,
						psprintf("\"%s\" is not a number", word));
		for (i = 0; f->names[i] != NULL; i++)
			if (pg_strcasecmp(word, f->names[i]) == 0)
				break;
		if (f->names[i] == NULL)
			field_error(schedule, f, text,
						psprintf("unknown name \"%s\" (use %s)", word,
								 f->names == month_names ? "jan, feb, ... dec or 1-12"
								 : "sun, mon, ... sat or 0-7"));
		v = f->min_name + i;
	}
	else if (*s == '\0')
		field_error(schedule, f, text, "value missing");
	else
		field_error(schedule, f, text,
					psprintf("unexpected character \"%c\"", *s));
	*p = s;
	return v;
}

/*
 * Parse a cron field: comma-separated items, each "*", "a", "a-b", with an
 * optional "/step".  Returns the bit set of matching values.
 */
static uint64
parse_cron_field(const char *schedule, int fi, const char *text)
{
	const CronField *f = &cron_fields[fi];
	uint64		bits = 0;
	const char *p = text;

	for (;;)
	{
		int			lo,
					hi,
					step = 1;
		bool		star = false;
		bool		ranged = false;
		int			v;

		if (*p == ',' || *p == '\0')
			field_error(schedule, f, text, "empty list element");
		if (*p == '*')
		{
			star = true;
			lo = f->min;
			hi = (fi == F_DOW) ? 6 : f->max;
			p++;
		}
		else
		{
			lo = hi = parse_cron_value(schedule, f, text, &p);
			if (*p == '-')
			{
				p++;
				ranged = true;
				hi = parse_cron_value(schedule, f, text, &p);
				if (hi < lo)
					field_error(schedule, f, text,
								psprintf("range %d-%d is reversed", lo, hi));
			}
		}
		if (*p == '/')
		{
			int			ndigits = 0;
			int			span = f->max - f->min + 1;

			p++;
			if (!isdigit((unsigned char) *p))
				field_error(schedule, f, text, "step must be a positive number");
			step = 0;
			while (isdigit((unsigned char) *p))
			{
				if (++ndigits <= 4)
					step = step * 10 + (*p - '0');
				else
					step = span + 1;
				p++;
			}
			if (step < 1 || step > span)
				field_error(schedule, f, text,
							psprintf("step %d out of range 1-%d", step, span));
			/* "a/step" means from a to the end of the field */
			if (!star && !ranged)
				hi = Max(lo, (fi == F_DOW) ? 6 : f->max);
		}
		if (*p != ',' && *p != '\0')
			field_error(schedule, f, text,
						psprintf("unexpected character \"%c\"", *p));

		for (v = lo; v <= hi; v += step)
			bits |= UINT64CONST(1) << ((fi == F_DOW && v == 7) ? 0 : v);

		if (*p == '\0')
			break;
		p++;					/* skip ',' */
		if (*p == '\0')
			field_error(schedule, f, text, "empty list element");
	}
	return bits;
}

/* can any selected month contain any selected day-of-month? */
static bool
cron_days_possible(const TfSchedule *s)
{
	int			m,
				d;

	for (m = 1; m <= 12; m++)
	{
		if (!(s->months & (1u << m)))
			continue;
		for (d = 1; d <= day_tab[1][m - 1]; d++)
			if (s->doms & (1u << d))
				return true;
	}
	return false;
}

static bool
all_cron_chars(char **fields, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (fields[i][strspn(fields[i], "0123456789*,-/")] != '\0')
			return false;
	return true;
}

/* split on whitespace, at most maxf fields (count still reported) */
static int
split_fields(char *buf, char **fields, int maxf)
{
	int			n = 0;
	char	   *p = buf;

	for (;;)
	{
		while (*p && isspace((unsigned char) *p))
			p++;
		if (*p == '\0')
			break;
		if (n < maxf)
			fields[n] = p;
		n++;
		while (*p && !isspace((unsigned char) *p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static void
parse_cron(const char *schedule, char **fields, TfSchedule *s)
{
	s->kind = TF_SCHED_CRON;
	s->minutes = parse_cron_field(schedule, F_MINUTE, fields[0]);
	s->hours = (uint32) parse_cron_field(schedule, F_HOUR, fields[1]);
	s->doms = (uint32) parse_cron_field(schedule, F_DOM, fields[2]);
	s->months = (uint32) parse_cron_field(schedule, F_MONTH, fields[3]);
	s->dows = (uint32) parse_cron_field(schedule, F_DOW, fields[4]);
	s->dom_star = (fields[2][0] == '*');
	s->dow_star = (fields[4][0] == '*');

	/* "0 0 30 2 *" never fires: say so now rather than never run */
	if (!s->dom_star && s->dow_star && !cron_days_possible(s))
		schedule_error(schedule,
					   psprintf("day-of-month field \"%s\" never occurs in month field \"%s\"",
								fields[2], fields[3]));
}

/* "every N seconds|minutes|hours"; words are the fields after "every" */
static void
parse_every(const char *schedule, char **fields, int n, TfSchedule *s)
{
	const char *unit;
	int64		unit_usecs;
	int64		count = 0;
	const char *p;

	if (n != 3)
		schedule_error(schedule,
					   "expected \"every N seconds\", \"every N minutes\" or \"every N hours\"");
	for (p = fields[1]; *p; p++)
	{
		if (!isdigit((unsigned char) *p) || count > 100000000)
			schedule_error(schedule,
						   psprintf("interval count \"%s\" must be a whole number between 1 and 100000000",
									fields[1]));
		count = count * 10 + (*p - '0');
	}
	if (count < 1 || count > 100000000)
		schedule_error(schedule,
					   psprintf("interval count \"%s\" must be a whole number between 1 and 100000000",
								fields[1]));
	unit = fields[2];
	if (pg_strcasecmp(unit, "second") == 0 || pg_strcasecmp(unit, "seconds") == 0 ||
		pg_strcasecmp(unit, "sec") == 0 || pg_strcasecmp(unit, "secs") == 0)
		unit_usecs = USECS_PER_SEC;
	else if (pg_strcasecmp(unit, "minute") == 0 || pg_strcasecmp(unit, "minutes") == 0 ||
			 pg_strcasecmp(unit, "min") == 0 || pg_strcasecmp(unit, "mins") == 0)
		unit_usecs = USECS_PER_MINUTE;
	else if (pg_strcasecmp(unit, "hour") == 0 || pg_strcasecmp(unit, "hours") == 0)
		unit_usecs = USECS_PER_HOUR;
	else
		schedule_error(schedule,
					   psprintf("unknown unit \"%s\" (use seconds, minutes or hours; for days use cron, e.g. \"0 0 * * *\")",
								unit));
	s->kind = TF_SCHED_EVERY;
	s->every_usecs = count * unit_usecs;
}

/*
 * One-shot timestamp.  Returns false if the text is not a timestamp.  When
 * the text names no time zone, the wall-clock fields are kept and resolved
 * later in the schedule's time zone.
 */
static bool
parse_once(const char *schedule, TfSchedule *s)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	int			i;
	int			dterr;
	static const char *const relative[] = {
		"now", "today", "tomorrow", "yesterday", "epoch", "infinity",
		"-infinity", "allballs", NULL
	};

	if (ParseDateTime(schedule, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return false;
	for (i = 0; i < nf; i++)
	{
		int			j;

		for (j = 0; relative[j] != NULL; j++)
			if (pg_strcasecmp(field[i], relative[j]) == 0)
				schedule_error(schedule,
							   psprintf("\"%s\" is not allowed in a one-shot schedule: write the date and time",
										field[i]));
	}

	/* DecodeDateTime fails without tzp when the text names a zone */
	memset(&s->once_tm, 0, sizeof(s->once_tm));
	if (DecodeDateTime(field, ftype, nf, &dtype, &s->once_tm,
					   &s->once_fsec, NULL) == 0)
	{
		if (dtype != DTK_DATE)
			return false;
		s->kind = TF_SCHED_ONCE;
		s->once_zoned = false;
		return true;
	}

	/* ParseDateTime scribbles on nothing, but DecodeDateTime may: redo */
	if (ParseDateTime(schedule, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return false;
	memset(&s->once_tm, 0, sizeof(s->once_tm));
	dterr = DecodeDateTime(field, ftype, nf, &dtype, &s->once_tm,
						   &s->once_fsec, &tz);
	if (dterr == DTERR_FIELD_OVERFLOW || dterr == DTERR_MD_FIELD_OVERFLOW)
		schedule_error(schedule, "date/time field value out of range");
	if (dterr != 0 || dtype != DTK_DATE)
		return false;
	if (tm2timestamp(&s->once_tm, s->once_fsec, &tz, &s->once_at) != 0)
		schedule_error(schedule, "timestamp out of range");
	s->kind = TF_SCHED_ONCE;
	s->once_zoned = true;
	return true;
}

/*
 * Parse a schedule; ereport(ERROR) if malformed.  buf is a scratch copy of
 * schedule (split in place).
 */
static void
schedule_parse_buf(const char *schedule, char *buf, TfSchedule *s)
{
	char	   *fields[6];
	int			n;
	int			i;

	memset(s, 0, sizeof(*s));
	n = split_fields(buf, fields, lengthof(fields));

	if (n == 0)
		schedule_error(schedule,
					   "the schedule is empty (use NULL for manual runs only)");

	if (fields[0][0] == '@')
	{
		if (n != 1)
			schedule_error(schedule,
						   psprintf("shortcut \"%s\" must stand alone", fields[0]));
		for (i = 0; i < lengthof(cron_shortcuts); i++)
			if (pg_strcasecmp(fields[0], cron_shortcuts[i].name) == 0)
			{
				char	   *cbuf = pstrdup(cron_shortcuts[i].cron);
				char	   *cf[5];

				split_fields(cbuf, cf, 5);
				parse_cron(schedule, cf, s);
				pfree(cbuf);
				return;
			}
		schedule_error(schedule,
					   psprintf("unknown shortcut \"%s\" (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
								fields[0]));
	}

	if (pg_strcasecmp(fields[0], "every") == 0)
	{
		parse_every(schedule, fields, n, s);
		return;
	}

	/* minute and hour never have names: then it is meant as cron */
	if (n == 5 && all_cron_chars(fields, 2))
	{
		parse_cron(schedule, fields, s);
		return;
	}

	/* a timestamp, or a cron expression with names, or garbage */
	if ((n == 1 || !all_cron_chars(fields, Min(n, lengthof(fields)))) &&
		parse_once(schedule, s))
		return;

	if (n == 5)
	{
		/* a cron expression with names, or a bad one: report its field */
		parse_cron(schedule, fields, s);
		return;
	}
	if (all_cron_chars(fields, Min(n, lengthof(fields))))
		schedule_error(schedule,
					   psprintf("cron expression has %d field%s; expected 5 (minute hour day-of-month month day-of-week)",
								n, n == 1 ? "" : "s"));
	schedule_error(schedule,
				   "not a cron expression, @shortcut, \"every N unit\" or timestamp");
}

/*
 * Parse a schedule (not NULL); ereport(ERROR) if malformed.  Leaves nothing
 * allocated behind on success: the scheduler calls this in long-lived
 * contexts.
 */
static void
schedule_parse(const char *schedule, TfSchedule *s)
{
	char	   *buf = pstrdup(schedule);

	schedule_parse_buf(schedule, buf, s);
	pfree(buf);
}

/* ---------------------------------------------------------------------
 * Time zones
 * ---------------------------------------------------------------------
 */

static pg_tz *
schedule_tz(const char *tzname)
{
	pg_tz	   *tz;

	if (tzname == NULL)
		return session_timezone;
	tz = pg_tzset(tzname);
	if (tz == NULL || !pg_tz_acceptable(tz))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", tzname),
				 errhint("Use a name listed in pg_timezone_names, e.g. 'Asia/Shanghai' or 'UTC'.")));
	return tz;
}

/* UTC offset (PostgreSQL sign: seconds west of Greenwich) at instant t */
static int
offset_at(TimestampTz t, pg_tz *tz)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			off;

	if (timestamp2tm(t, &off, &tm, &fsec, NULL, tz) != 0)
		return 0;
	return off;
}

/* the local wall-clock time of instant t, as a zone-less Timestamp */
static bool
local_of(TimestampTz t, pg_tz *tz, Timestamp *local)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			off;

	if (timestamp2tm(t, &off, &tm, &fsec, NULL, tz) != 0)
		return false;
	return tm2timestamp(&tm, fsec, NULL, local) == 0;
}

/*
 * The instant at which local wall-clock time tm (+fsec) fires in zone tz.
 * Nonexistent times use PostgreSQL's mapping (the offset before the
 * transition); ambiguous times use their first occurrence.
 */
static bool
instant_of(struct pg_tm *tm, fsec_t fsec, pg_tz *tz, TimestampTz *result)
{
	struct pg_tm tmc = *tm;
	int			off;
	TimestampTz t;
	int			alt[2];
	int			i;

	off = DetermineTimeZoneOffset(&tmc, tz);
	if (tm2timestamp(&tmc, fsec, &off, &t) != 0)
		return false;

	/* near a transition?  then look for an earlier valid interpretation */
	alt[0] = offset_at(t - USECS_PER_DAY, tz);
	alt[1] = offset_at(t + USECS_PER_DAY, tz);
	if (alt[0] != off || alt[1] != off)
	{
		for (i = 0; i < 2; i++)
		{
			TimestampTz t2;

			tmc = *tm;
			if (alt[i] == off ||
				tm2timestamp(&tmc, fsec, &alt[i], &t2) != 0)
				continue;
			if (t2 < t && offset_at(t2, tz) == alt[i])
				t = t2;
		}
	}
	*result = t;
	return true;
}

/* ---------------------------------------------------------------------
 * Evaluation
 * ---------------------------------------------------------------------
 */

static bool
cron_day_matches(const TfSchedule *s, int y, int m, int d)
{
	bool		dom = (s->doms & (1u << d)) != 0;
	bool		dow = (s->dows & (1u << j2day(date2j(y, m, d)))) != 0;

	/* Vixie cron: both restricted -> either matches */
	if (s->dom_star || s->dow_star)
		return dom && dow;
	return dom || dow;
}

/* lowest set bit >= from in bits (up to max), or -1 */
static int
next_bit(uint64 bits, int from, int max)
{
	int			i;

	for (i = from; i <= max; i++)
		if (bits & (UINT64CONST(1) << i))
			return i;
	return -1;
}

/*
 * Advance local wall-clock time *tm (year, mon, mday, hour, min; seconds
 * ignored) to the first minute >= it that matches the cron fields, skipping
 * whole months, days and hours that cannot match.  false if none before
 * limit_year ends.
 */
static bool
cron_next_local(const TfSchedule *s, struct pg_tm *tm, int limit_year)
{
	int			y = tm->tm_year,
				mo = tm->tm_mon,
				d = tm->tm_mday,
				h = tm->tm_hour,
				mi = tm->tm_min;

	for (;;)
	{
		int			b;

		if (y > limit_year)
			return false;
		if (!(s->months & (1u << mo)) || d > day_tab[isleap(y)][mo - 1])
		{
			/* next month */
			d = 1;
			h = mi = 0;
			if (++mo > 12)
			{
				mo = 1;
				y++;
			}
			continue;
		}
		if (!cron_day_matches(s, y, mo, d))
		{
			d++;
			h = mi = 0;
			continue;
		}
		b = next_bit(s->hours, h, 23);
		if (b < 0)
		{
			d++;
			h = mi = 0;
			continue;
		}
		if (b != h)
		{
			h = b;
			mi = 0;
		}
		b = next_bit(s->minutes, mi, 59);
		if (b < 0)
		{
			h++;
			mi = 0;
			if (h > 23)
			{
				d++;
				h = 0;
			}
			continue;
		}
		mi = b;
		break;
	}
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = y;
	tm->tm_mon = mo;
	tm->tm_mday = d;
	tm->tm_hour = h;
	tm->tm_min = mi;
	return true;
}

static bool
tm_of_local(Timestamp local, struct pg_tm *tm)
{
	fsec_t		fsec;

	memset(tm, 0, sizeof(*tm));
	if (timestamp2tm(local, NULL, tm, &fsec, NULL, NULL) != 0)
		return false;
	tm->tm_sec = 0;
	return true;
}

/*
 * First cron fire time strictly after 'after'.  Away from UTC offset
 * changes, local time maps monotonically to instants and the first matching
 * local minute after local(after) is the answer.  Near one, local times a
 * few hours either side are examined and the earliest instant wins.
 */
static bool
cron_next(const TfSchedule *s, pg_tz *tz, TimestampTz after, TimestampTz *next)
{
	Timestamp	local;
	Timestamp	window_end = 0;
	struct pg_tm tm;
	bool		near;
	bool		found = false;
	TimestampTz best = 0;
	int			limit_year;

	near = offset_at(after - DST_WINDOW_USECS, tz) !=
		offset_at(after + DST_WINDOW_USECS, tz);
	if (!local_of(after, tz, &local))
		return false;
	/* truncate to the minute, then step to the next minute */
	local -= local % USECS_PER_MINUTE;
	if (local < 0 && (local % USECS_PER_MINUTE) != 0)
		local -= USECS_PER_MINUTE;
	local += USECS_PER_MINUTE;
	if (near)
		local -= DST_WINDOW_USECS;
	if (!tm_of_local(local, &tm))
		return false;
	limit_year = tm.tm_year + CRON_SEARCH_YEARS;

	for (;;)
	{
		TimestampTz t;

		CHECK_FOR_INTERRUPTS();
		if (!cron_next_local(s, &tm, limit_year))
			break;
		if (tm2timestamp(&tm, 0, NULL, &local) != 0)
			break;
		if (found && local > window_end)
			break;
		if (!instant_of(&tm, 0, tz, &t))
			break;
		if (t > after && (!found || t < best))
		{
			if (!found)
			{
				found = true;
				window_end = local + DST_WINDOW_USECS;
				if (!near &&
					offset_at(t - DST_WINDOW_USECS, tz) ==
					offset_at(t + DST_WINDOW_USECS, tz))
				{
					best = t;
					break;
				}
			}
			best = t;
		}
		/* next local minute */
		local += USECS_PER_MINUTE;
		if (!tm_of_local(local, &tm))
			break;
	}
	if (found)
		*next = best;
	return found;
}

static bool
every_next(const TfSchedule *s, TimestampTz after, TimestampTz *next)
{
	/* align to the Unix epoch, not PostgreSQL's 2000-01-01 */
	const int64 shift = (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	int64		u = after + shift;
	int64		q = u / s->every_usecs;

	if (u < 0 && u % s->every_usecs != 0)
		q--;
	*next = (q + 1) * s->every_usecs - shift;
	return IS_VALID_TIMESTAMP(*next);
}

static bool
schedule_next_parsed(const TfSchedule *s, pg_tz *tz, TimestampTz after,
					 TimestampTz *next)
{
	switch (s->kind)
	{
		case TF_SCHED_CRON:
			return cron_next(s, tz, after, next);
		case TF_SCHED_EVERY:
			return every_next(s, after, next);
		case TF_SCHED_ONCE:
			{
				TimestampTz t = s->once_at;
				struct pg_tm tm = s->once_tm;

				if (!s->once_zoned && !instant_of(&tm, s->once_fsec, tz, &t))
					return false;
				if (t <= after)
					return false;
				*next = t;
				return true;
			}
	}
	return false;
}

/* ---------------------------------------------------------------------
 * Public C API
 * ---------------------------------------------------------------------
 */

void
tf_schedule_validate(const char *schedule)
{
	TfSchedule	s;

	if (schedule == NULL)
		return;
	schedule_parse(schedule, &s);
}

bool
tf_schedule_next(const char *schedule, const char *tz,
				 TimestampTz after, TimestampTz *next)
{
	TfSchedule	s;

	if (schedule == NULL)
		return false;
	schedule_parse(schedule, &s);
	return schedule_next_parsed(&s, schedule_tz(tz), after, next);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/* taskflow._schedule_validate(schedule text) RETURNS void */
Datum
tf_schedule_validate_sql(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		tf_schedule_validate(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

typedef struct NextRunsState
{
	TfSchedule	sched;
	pg_tz	   *tz;
	TimestampTz after;
} NextRunsState;

/*
 * taskflow.next_runs(schedule text, "from" timestamptz, count int,
 *                    timezone text) RETURNS SETOF timestamptz
 */
Datum
tf_next_runs(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	NextRunsState *st;
	TimestampTz next;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;
		int32		count;
		char	   *schedule;

		funcctx = SRF_FIRSTCALL_INIT();
		if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) ||
			PG_ARGISNULL(3))
		{
			funcctx->max_calls = 0;
			SRF_RETURN_DONE(funcctx);
		}
		count = PG_GETARG_INT32(2);
		if (count < 1 || count > 1000)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("count must be between 1 and 1000, not %d", count)));

		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		st = palloc0(sizeof(NextRunsState));
		schedule = text_to_cstring(PG_GETARG_TEXT_PP(0));
		st->tz = schedule_tz(text_to_cstring(PG_GETARG_TEXT_PP(3)));
		schedule_parse(schedule, &st->sched);
		st->after = PG_GETARG_TIMESTAMPTZ(1);
		funcctx->user_fctx = st;
		funcctx->max_calls = count;
		MemoryContextSwitchTo(oldcxt);
	}

	funcctx = SRF_PERCALL_SETUP();
	st = (NextRunsState *) funcctx->user_fctx;
	if (funcctx->call_cntr < funcctx->max_calls &&
		!TIMESTAMP_NOT_FINITE(st->after) &&
		schedule_next_parsed(&st->sched, st->tz, st->after, &next))
	{
		st->after = next;
		SRF_RETURN_NEXT(funcctx, TimestampTzGetDatum(next));
	}
	SRF_RETURN_DONE(funcctx);
}

/*
 * taskflow._tz_canonical(name text) RETURNS text: the canonical spelling of a
 * time zone name of pg_timezone_names (case-insensitive, blanks trimmed), or
 * NULL when there is no such zone.  pg_timezone_names loads every zone file
 * on each query (44-60 ms); the names are read once per backend instead, so
 * create_flow/alter_flow validate a zone in microseconds (sorted: a binary
 * search).  An exact-case match wins over other case-insensitive matches,
 * then the smallest name.
 */
PG_FUNCTION_INFO_V1(tf_tz_canonical);

static char **tz_names = NULL;
static int	tz_count = 0;

static int
tz_name_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *) a;
	const char *y = *(const char *const *) b;
	int			c = pg_strcasecmp(x, y);

	return c != 0 ? c : strcmp(x, y);
}

static void
tf_tz_load(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	pg_tzenum  *e = pg_tzenumerate_start();
	pg_tz	   *tz;
	int			cap = 1024;
	char	  **names = palloc(cap * sizeof(char *));
	int			n = 0;

	while ((tz = pg_tzenumerate_next(e)) != NULL)
	{
		if (n == cap)
		{
			cap *= 2;
			names = repalloc(names, cap * sizeof(char *));
		}
		names[n++] = pstrdup(pg_get_timezone_name(tz));
	}
	pg_tzenumerate_end(e);
	MemoryContextSwitchTo(old);
	/* case-insensitive order, the exact spellings of one name in strcmp order */
	qsort(names, n, sizeof(char *), tz_name_cmp);
	tz_names = names;
	tz_count = n;
}

/*
 * Is name, spelled exactly so, one of the names tf_tz_load would read?
 * Without reading them all (1.7: that read, ~600 zone files, cost 33-85 ms
 * at the first call of every backend, more than 10 % of defining 2,000
 * flows in one session): pg_tzset loads one zone by name, from the file
 * pg_open_tzfile finds ignoring case, and names the zone with that file's
 * spelling; a name without digits cannot be the POSIX zone specification
 * pg_tzset falls back to (its offset is required and numeric).  So a name
 * with no digit, that loads, whose zone carries exactly that name and is
 * acceptable, is a zone file that pg_tzenumerate_next returns too (every
 * file that tzload loads and pg_tz_acceptable accepts, dot entries
 * skipped, as pg_open_tzfile skips them); an exact-case name wins in
 * tf_tz_canonical.  Anything else: the list.
 */
static bool
tz_exact(const char *name)
{
	pg_tz	   *tz;

	if (*name == '\0' || strlen(name) > TZ_STRLEN_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (isdigit((unsigned char) *p) || *p == '<' || *p == ':')
			return false;
	tz = pg_tzset(name);
	return tz != NULL && pg_tz_acceptable(tz) && strcmp(pg_get_timezone_name(tz), name) == 0;
}

Datum
tf_tz_canonical(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *start = name;
	char	   *end;
	const char *best = NULL;
	int			i;
	int			lo;
	int			hi;

	while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
		start++;
	end = start + strlen(start);
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	if (tz_names == NULL)
	{
		if (tz_exact(start))
			PG_RETURN_TEXT_P(cstring_to_text(start));
		tf_tz_load();
	}
	/*
	 * binary search for the first name equal to it ignoring case (a linear
	 * scan of the ~600 names cost 60-80 us per create_flow); the names equal
	 * ignoring case follow in strcmp order, so the first is the smallest
	 */
	lo = 0;
	hi = tz_count;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (pg_strcasecmp(tz_names[mid], start) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < tz_count && pg_strcasecmp(tz_names[i], start) == 0; i++)
	{
		if (best == NULL)
			best = tz_names[i];
		if (strcmp(tz_names[i], start) == 0)
		{
			best = tz_names[i];
			break;
		}
	}
	if (best == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(best));
}
