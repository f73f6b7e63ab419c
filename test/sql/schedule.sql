-- Schedules: grammar, errors, DST, next_runs().  (owner: schedule.c)
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default

-- a helper view of fire times in a zone
CREATE FUNCTION pg_temp.fires(sched text, "from" timestamptz, n int, tz text)
RETURNS TABLE (utc timestamptz, local timestamp, dow text)
LANGUAGE sql AS $$
  SELECT t, t AT TIME ZONE tz, to_char(t AT TIME ZONE tz, 'Dy')
  FROM taskflow.next_runs(sched, "from", n, tz) t $$;

-- the reference scenario: 05:00 daily in Asia/Shanghai = 21:00 UTC the day before
SELECT * FROM pg_temp.fires('0 5 * * *', '2026-06-01 00:00+08', 3, 'Asia/Shanghai');
-- strictly after "from": a fire exactly at "from" is not repeated
SELECT * FROM taskflow.next_runs('0 5 * * *', '2026-06-01 05:00+08', 2, 'Asia/Shanghai');

-- lists, ranges, steps, names
SELECT * FROM pg_temp.fires('*/15 9-10 * * *', '2026-06-01', 9, 'UTC');
SELECT * FROM pg_temp.fires('0,30 12 1-3 * *', '2026-06-01', 7, 'UTC');
SELECT * FROM pg_temp.fires('5-30/10 1 * * *', '2026-06-01', 4, 'UTC');
SELECT * FROM pg_temp.fires('50/5 1 * * *', '2026-06-01', 3, 'UTC');  -- a/step = a-59/step
SELECT * FROM pg_temp.fires('0 6 * * MON-fri', '2026-06-05', 3, 'UTC');
SELECT * FROM pg_temp.fires('0 6 * * sat,SUN', '2026-06-01', 4, 'UTC');
SELECT * FROM pg_temp.fires('0 6 * * 7', '2026-06-01', 2, 'UTC');     -- 7 = Sunday
SELECT * FROM pg_temp.fires('0 6 * * 5-7', '2026-06-01', 4, 'UTC');   -- Fri, Sat, Sun
SELECT * FROM pg_temp.fires('0 0 1 jan,Jul *', '2026-06-01', 3, 'UTC');
SELECT * FROM pg_temp.fires('0 0 1 */4 *', '2026-06-01', 3, 'UTC');   -- Sep, Jan, May
SELECT * FROM pg_temp.fires('0 0 * * */2', '2026-06-01', 4, 'UTC');   -- Sun, Tue, Thu, Sat
-- Vixie rule: dom and dow both restricted -> either matches
SELECT * FROM pg_temp.fires('0 0 13 * fri', '2026-01-01', 5, 'UTC');
-- a field starting with * counts as unrestricted: */10 days AND Fridays
SELECT * FROM pg_temp.fires('0 0 */10 * fri', '2026-01-01', 3, 'UTC');

-- shortcuts
SELECT s, array_agg(t ORDER BY t) FROM
  unnest(ARRAY['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly', '@DAILY']) s,
  LATERAL taskflow.next_runs(s, '2026-06-03 10:30', 2, 'UTC') t
GROUP BY s ORDER BY s;

-- every N seconds|minutes|hours: multiples of N since the Unix epoch
SELECT * FROM taskflow.next_runs('every 15 minutes', '2026-06-01 00:07', 3);
SELECT * FROM taskflow.next_runs('every 1 minute', '2026-06-01 00:07:30', 2);
SELECT * FROM taskflow.next_runs('every 30 seconds', '2026-06-01 00:00', 3);
SELECT * FROM taskflow.next_runs('Every 7 Seconds', '1970-01-01 00:00:01', 2);
SELECT * FROM taskflow.next_runs('every 2 hours', '2026-06-01 00:00', 2, 'Asia/Kolkata');
SELECT * FROM taskflow.next_runs('every 1 hour', '2026-06-01 00:59:59.999', 1);

-- one-shot timestamps: read in the schedule's zone unless they name one
SELECT * FROM taskflow.next_runs('2026-12-01 05:00', '2026-06-01', 5, 'Asia/Shanghai');
SELECT * FROM taskflow.next_runs('2026-12-01 05:00+00', '2026-06-01', 5, 'Asia/Shanghai');
SELECT * FROM taskflow.next_runs('2026-12-01 05:00 America/New_York', '2026-06-01', 5, 'Asia/Shanghai');
SELECT * FROM taskflow.next_runs('Dec 1 2026 05:00', '2026-06-01', 5, 'UTC');
SELECT * FROM taskflow.next_runs('2026-12-01', '2026-06-01', 5, 'UTC');
SELECT count(*) AS past FROM taskflow.next_runs('2026-01-01 05:00', '2026-06-01', 5, 'UTC');
SELECT count(*) AS at_from FROM taskflow.next_runs('2026-06-01 00:00', '2026-06-01', 5, 'UTC');

-- NULL = manual only: no rows; NULL arguments give no rows either
SELECT count(*) FROM taskflow.next_runs(NULL, '2026-06-01', 5, 'UTC');
SELECT count(*) FROM taskflow.next_runs('@daily', NULL, 5, 'UTC');
SELECT taskflow._schedule_validate(NULL);
SELECT taskflow._schedule_validate('0 5 * * *');
-- defaults: from now(), count 5, session time zone
SELECT count(*) FROM taskflow.next_runs('@hourly');

-- DST, Europe/Berlin.  Spring forward 2026-03-29 02:00 -> 03:00: 02:30
-- does not exist and fires at 03:30 CEST (01:30 UTC), as PostgreSQL reads it.
SELECT * FROM pg_temp.fires('30 2 * * *', '2026-03-27', 4, 'Europe/Berlin');
-- Fall back 2026-10-25 03:00 -> 02:00: 02:30 happens twice, fires once (the first).
SELECT * FROM pg_temp.fires('30 2 * * *', '2026-10-23', 4, 'Europe/Berlin');
-- hourly: 23 fires on the short day, 24 on the long day (local hours 0-23)
SELECT (t AT TIME ZONE 'Europe/Berlin')::date AS day, count(*)
FROM taskflow.next_runs('0 * * * *', '2026-03-27 22:59Z', 100, 'Europe/Berlin') t
WHERE t < '2026-03-30 22:00Z'
GROUP BY 1 ORDER BY 1;
SELECT (t AT TIME ZONE 'Europe/Berlin')::date AS day, count(*)
FROM taskflow.next_runs('0 * * * *', '2026-10-23 21:59Z', 100, 'Europe/Berlin') t
WHERE t < '2026-10-26 23:00Z'
GROUP BY 1 ORDER BY 1;
SELECT * FROM pg_temp.fires('0 * * * *', '2026-03-29 00:00Z', 4, 'Europe/Berlin');
SELECT * FROM pg_temp.fires('0 * * * *', '2026-10-24 23:00Z', 4, 'Europe/Berlin');
-- starting inside the repeated hour (second pass): 02:30 was already fired
SELECT * FROM pg_temp.fires('30 2,3 * * *', '2026-10-25 01:10Z', 2, 'Europe/Berlin');
-- starting after the gap: the nonexistent 02:45 maps to 01:45 UTC, still ahead
SELECT * FROM pg_temp.fires('45 2 * * *', '2026-03-29 01:30Z', 2, 'Europe/Berlin');
-- every-minute across the spring gap: no duplicates, strictly increasing
SELECT count(*), count(DISTINCT t), bool_and(t > '2026-03-29 00:30Z')
FROM taskflow.next_runs('* * * * *', '2026-03-29 00:30Z', 120, 'Europe/Berlin') t;
-- New York
SELECT * FROM pg_temp.fires('30 1 * * *', '2026-10-31', 3, 'America/New_York');

-- day 31 only in months that have it; leap day
SELECT * FROM pg_temp.fires('0 5 31 * *', '2026-01-01', 7, 'UTC');
SELECT * FROM pg_temp.fires('0 0 29 2 *', '2026-01-01', 3, 'UTC');
SELECT * FROM pg_temp.fires('0 0 29 2 *', '2096-03-01', 1, 'UTC');  -- 2100 is no leap year
-- efficient: 1000 leap days (4000 years ahead) are found quickly
SELECT count(*), max(t) FROM taskflow.next_runs('0 0 29 2 *', '2000-01-01', 1000, 'UTC') t;

-- errors: one per field kind and form (full report once, then SQLSTATE + detail)
SELECT taskflow._schedule_validate('0 25 * * *');
CREATE FUNCTION pg_temp.err(sched text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text;
BEGIN
  PERFORM taskflow._schedule_validate(sched);
  RETURN 'valid';
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
  RETURN st || ': ' || det;
END $$;
SELECT s AS schedule, pg_temp.err(s) FROM unnest(ARRAY[
  '60 * * * *', '0 24 * * *', '0 0 0 * *', '0 0 32 * *', '0 0 * 0 *', '0 0 * 13 *',
  '0 0 * * 8', '99999 * * * *', '0 0 * foo *', '0 0 * * funday', '0 0 L * *', 'x * * * *',
  '5-1 * * * *', '0 0 * * fri-mon', '0 0 * dec-jan *', '*/0 * * * *', '0 */25 * * *',
  '0 0 1/ * *', '0 0 1/x * *', '0 0 1,,2 * *', '0 0 1, * *', '0 0 ,1 * *', '1-2-3 * * * *',
  '1-* * * * *', '0 5 * *', '0 0 5 * * *', '1 2 3', '5', '0 0 30 2 *', '0 0 31 4,6 *',
  '@reboot', '@daily 5', 'every 0 minutes', 'every 5 days', 'every minute', 'every -5 minutes',
  'every 5', 'every 1.5 hours', '', '   ', 'tomorrow 05:00', 'now', 'hello world',
  '2026-02-30 05:00', '2026-12-01 25:00',
  -- and some valid ones that look odd
  '0 0 31 2,3 *', '0 0 30 2 mon', '  0   5  *  *  *  ', 'Dec 1 2026 05:00 UTC', '@Hourly',
  'every 90 minutes', 'every 1 sec', '0 0 * * 0-7']) s;
SELECT * FROM taskflow.next_runs('0 0 * * *', '2026-06-01', 0, 'UTC');
SELECT * FROM taskflow.next_runs('0 0 * * *', '2026-06-01', 1001, 'UTC');
SELECT * FROM taskflow.next_runs('0 0 * * *', '2026-06-01', 1, 'Mars/Olympus');
SELECT * FROM taskflow.next_runs('0 0 * * *', '2026-06-01', 1, 'Asia/shanghai');  -- case-insensitive
