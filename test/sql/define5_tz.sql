-- 1.7: taskflow._tz_canonical answers a name spelled exactly as a zone
-- file without reading every zone of the database first (src/schedule.c,
-- tz_exact).  Each name below is looked up first in a fresh session (the
-- short way where it applies) and then again after the whole list was read
-- (the way of 1.6): both answers must be the same.
CREATE TABLE public.d5_tz (ord int, n text, fast text, list text);
-- (the ids this file takes are handed back at the end: later files show ids)
CREATE TABLE public.d5_tz_seqs AS
  SELECT c.oid::regclass AS seq, pg_sequence_last_value(c.oid) AS last_value
    FROM pg_class c WHERE c.relkind = 'S' AND c.relnamespace = 'taskflow'::regnamespace;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (0, 'Asia/Shanghai', taskflow._tz_canonical('Asia/Shanghai'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 0;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (1, 'America/Argentina/Buenos_Aires', taskflow._tz_canonical('America/Argentina/Buenos_Aires'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 1;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (2, 'UTC', taskflow._tz_canonical('UTC'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 2;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (3, 'Factory', taskflow._tz_canonical('Factory'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 3;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (4, 'posixrules', taskflow._tz_canonical('posixrules'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 4;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (5, 'localtime', taskflow._tz_canonical('localtime'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 5;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (6, 'right/UTC', taskflow._tz_canonical('right/UTC'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 6;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (7, 'posix/Asia/Tokyo', taskflow._tz_canonical('posix/Asia/Tokyo'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 7;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (8, 'zone.tab', taskflow._tz_canonical('zone.tab'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 8;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (9, 'leapseconds', taskflow._tz_canonical('leapseconds'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 9;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (10, 'Asia', taskflow._tz_canonical('Asia'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 10;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (11, 'asia/shanghai', taskflow._tz_canonical('asia/shanghai'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 11;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (12, 'EST5EDT', taskflow._tz_canonical('EST5EDT'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 12;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (13, 'UTC+3', taskflow._tz_canonical('UTC+3'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 13;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (14, 'EST', taskflow._tz_canonical('EST'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 14;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (15, ':UTC', taskflow._tz_canonical(':UTC'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 15;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (16, 'Asia/../Asia/Shanghai', taskflow._tz_canonical('Asia/../Asia/Shanghai'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 16;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (17, 'Asia//Shanghai', taskflow._tz_canonical('Asia//Shanghai'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 17;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (18, '/Asia/Shanghai', taskflow._tz_canonical('/Asia/Shanghai'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 18;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (19, '', taskflow._tz_canonical(''));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 19;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (20, E'  Europe/Berlin\t', taskflow._tz_canonical(E'  Europe/Berlin\t'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 20;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (21, 'Etc/GMT+3', taskflow._tz_canonical('Etc/GMT+3'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 21;
\c
INSERT INTO public.d5_tz (ord, n, fast) VALUES (22, 'No/Such_Zone', taskflow._tz_canonical('No/Such_Zone'));
SELECT taskflow._tz_canonical('asia/shanghai') AS list_read;
UPDATE public.d5_tz SET list = taskflow._tz_canonical(n) WHERE ord = 22;
SELECT count(*) AS names, count(*) FILTER (WHERE fast IS NOT DISTINCT FROM list) AS same
  FROM public.d5_tz;
SELECT ord, n, fast, list FROM public.d5_tz WHERE fast IS DISTINCT FROM list ORDER BY ord;
-- the usual ones, spelled exactly: themselves
SELECT n, fast FROM public.d5_tz WHERE ord IN (0, 1, 2) ORDER BY ord;
-- and create_flow in a fresh session takes the canonical spelling either way
\c
SELECT taskflow.create_flow('d5_tz1', schedule => '0 5 * * *', timezone => 'Asia/Tokyo') > 0 AS created;
SELECT taskflow.create_flow('d5_tz2', schedule => '0 5 * * *', timezone => 'asia/tokyo') > 0 AS created;
SELECT name, timezone FROM taskflow.flows WHERE name LIKE 'd5\_tz%' ORDER BY name;
SELECT count(*) AS dropped FROM (SELECT taskflow.drop_flow(name) FROM taskflow.flows WHERE name LIKE 'd5\_tz%') d;
DROP TABLE public.d5_tz;
SELECT count(*) > 0 AS ids_back
  FROM (SELECT CASE WHEN last_value IS NULL THEN setval(seq, 1, false) ELSE setval(seq, last_value) END
          FROM public.d5_tz_seqs) s;
DROP TABLE public.d5_tz_seqs;
