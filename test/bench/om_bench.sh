#!/bin/bash
# test/bench/om_bench.sh — the typical O&M pages (flow_status, run_history,
# node_run_history) at FLOWS flows / RUNS runs / 3 node runs per run, timed as a plain
# owner (row level security) and as a superuser, on a throwaway cluster.  Not a timed test.
#
# The history is made with INSERT ... SELECT generate_series (triggers off for the fill:
# session_replication_role = replica), owned by OWNERS plain roles round robin; the
# plain owner om1 sees 1/OWNERS of it.  Each page runs REPS times (rows fetched in
# full, PL/pgSQL loop over EXECUTE), the median is printed per role, with the ratio
# owner / superuser and the goal (<= 50 ms as a plain owner).
#
#   sudo test/bench/om_bench.sh            # FLOWS=10000 RUNS=1000000 OWNERS=10 REPS=5
set -eu
cd "$(dirname "$0")/../.."
FLOWS=${FLOWS:-10000}
RUNS=${RUNS:-1000000}
OWNERS=${OWNERS:-10}
REPS=${REPS:-5}
DIR=${BENCH_DIR:-/tmp/taskflow-om-bench}
PORT=${BENCH_PORT:-54351}
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
fsync = off
synchronous_commit = off
max_wal_size = '4GB'
maintenance_work_mem = '256MB'
CONF

t0=$(date +%s)
psql_ >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION taskflow;
SELECT format('CREATE ROLE om%s LOGIN', g) FROM generate_series(1, $OWNERS) g \gexec
SET session_replication_role = replica;
-- no schedule: the scheduler never runs anything here
INSERT INTO taskflow.flows (name, owner)
SELECT 'flow_' || g, ('om' || (1 + g % $OWNERS))::regrole FROM generate_series(1, $FLOWS) g;
INSERT INTO taskflow.nodes (flow_id, name, kind, body)
SELECT f.id, n, 'sql', 'SELECT 1' FROM taskflow.flows f, unnest(ARRAY['a', 'b', 'c']) n;
INSERT INTO taskflow.edges (flow_id, from_node, to_node)
SELECT a.flow_id, a.id, b.id FROM taskflow.nodes a JOIN taskflow.nodes b
    ON b.flow_id = a.flow_id AND (a.name, b.name) IN (('a', 'b'), ('b', 'c'));
-- RUNS runs spread over the flows and over the last RUNS/FLOWS hours; 1 in 53 failed, every owner has some
INSERT INTO taskflow.runs (flow_id, scheduled_for, bizdate, trigger, state, created_at,
                           started_at, finished_at)
SELECT f.id, t, t::date, 'schedule', CASE WHEN g % 53 = 0 THEN 'failed' ELSE 'succeeded' END,
       t, t, t + interval '3 s'
  FROM generate_series(0, $RUNS - 1) g
  JOIN taskflow.flows f ON f.id = (SELECT min(id) FROM taskflow.flows) + g % $FLOWS
 CROSS JOIN LATERAL (SELECT now() - (g / $FLOWS) * interval '1 hour'
                                   - (g % $FLOWS) * interval '1 ms' AS t) x;
INSERT INTO taskflow.node_runs (run_id, node_id, attempt, state, started_at, finished_at,
                                rows, message, sqlstate)
SELECT r.id, n.id, 1,
       CASE WHEN r.state = 'failed' AND n.name = 'b' THEN 'failed'
            WHEN r.state = 'failed' AND n.name = 'c' THEN 'upstream_failed'
            ELSE 'succeeded' END,
       r.started_at + (ascii(n.name) - 97) * interval '1 s',
       r.started_at + (ascii(n.name) - 96) * interval '1 s', 1,
       CASE WHEN r.state = 'failed' AND n.name = 'b' THEN 'division by zero' END,
       CASE WHEN r.state = 'failed' AND n.name = 'b' THEN '22012' END
  FROM taskflow.runs r JOIN taskflow.nodes n ON n.flow_id = r.flow_id;
RESET session_replication_role;
VACUUM ANALYZE taskflow.flows, taskflow.nodes, taskflow.edges, taskflow.runs, taskflow.node_runs;
CREATE FUNCTION public.page_ms(q text, reps int) RETURNS numeric LANGUAGE plpgsql AS \$f\$
DECLARE
    t0 timestamptz; r record; ms numeric[] := '{}';
BEGIN
    FOR i IN 1..reps + 1 LOOP          -- (the first run warms the plan cache)
        t0 := clock_timestamp();
        FOR r IN EXECUTE q LOOP END LOOP;
        IF i > 1 THEN
            ms := ms || (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric;
        END IF;
    END LOOP;
    RETURN (SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 1) FROM unnest(ms) x);
END
\$f\$;
CREATE TABLE public.pages (k int, page text, q text);
GRANT SELECT ON public.pages TO PUBLIC;
SQL
t1=$(date +%s)

# a flow and a run of om1's, for the pages that name one
flow=$(psql_ -c "SELECT name FROM taskflow.flows WHERE owner = 'om1'::regrole ORDER BY id DESC LIMIT 1")
run=$(psql_ -c "SELECT r.id FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id
                 WHERE f.name = '$flow' AND r.state = 'failed' ORDER BY r.id DESC LIMIT 1")
[ -n "$run" ] || run=$(psql_ -c "SELECT max(r.id) FROM taskflow.runs r JOIN taskflow.flows f ON f.id = r.flow_id WHERE f.name = '$flow'")
psql_ >/dev/null <<SQL
INSERT INTO public.pages VALUES
 (1, 'flow_status LIMIT 50', \$\$SELECT * FROM taskflow.flow_status LIMIT 50\$\$),
 (2, 'flow_status WHERE last_state = failed LIMIT 50', \$\$SELECT * FROM taskflow.flow_status WHERE last_state = 'failed' LIMIT 50\$\$),
 (3, 'flow_status WHERE flow = x', \$\$SELECT * FROM taskflow.flow_status WHERE flow = '$flow'\$\$),
 (4, 'run_history ORDER BY started_at DESC LIMIT 50', \$\$SELECT * FROM taskflow.run_history ORDER BY started_at DESC LIMIT 50\$\$),
 (5, 'run_history WHERE flow = x ORDER BY started_at DESC LIMIT 20', \$\$SELECT * FROM taskflow.run_history WHERE flow = '$flow' ORDER BY started_at DESC LIMIT 20\$\$),
 (6, 'run_history WHERE state = failed ORDER BY started_at DESC LIMIT 20', \$\$SELECT * FROM taskflow.run_history WHERE state = 'failed' ORDER BY started_at DESC LIMIT 20\$\$),
 (7, 'node_run_history ORDER BY started_at DESC LIMIT 5', \$\$SELECT * FROM taskflow.node_run_history ORDER BY started_at DESC LIMIT 5\$\$),
 (8, 'node_run_history WHERE run_id = x', \$\$SELECT * FROM taskflow.node_run_history WHERE run_id = $run\$\$),
 (9, 'node_run_history WHERE state = failed ORDER BY started_at DESC LIMIT 20', \$\$SELECT * FROM taskflow.node_run_history WHERE state = 'failed' ORDER BY started_at DESC LIMIT 20\$\$),
 (10, 'node_run_history WHERE flow = x ORDER BY started_at DESC LIMIT 20', \$\$SELECT * FROM taskflow.node_run_history WHERE flow = '$flow' ORDER BY started_at DESC LIMIT 20\$\$);
SQL

echo "O&M bench: $FLOWS flows, $(psql_ -c "SELECT count(*) FROM taskflow.runs") runs, $(psql_ -c "SELECT count(*) FROM taskflow.node_runs") node runs (filled in $((t1 - t0)) s), $OWNERS owners; om1 (plain owner, RLS) sees 1/$OWNERS; median of $REPS; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
psql_ <<SQL
\pset footer off
\pset format aligned
\pset tuples_only off
CREATE TEMP TABLE t AS SELECT k, page, q, NULL::numeric AS superuser_ms, NULL::numeric AS owner_ms FROM public.pages;
UPDATE t SET superuser_ms = public.page_ms(q, $REPS);
SET ROLE om1;
CREATE TEMP TABLE o AS SELECT k, public.page_ms(q, $REPS) AS ms FROM public.pages;
RESET ROLE;
UPDATE t SET owner_ms = o.ms FROM o WHERE o.k = t.k;
SELECT page, owner_ms, superuser_ms, round(owner_ms / nullif(superuser_ms, 0), 1) AS owner_vs_su,
       CASE WHEN owner_ms <= 50 THEN 'ok' ELSE 'over' END AS goal_50ms
  FROM t ORDER BY k;
SQL
