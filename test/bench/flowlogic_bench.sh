#!/bin/bash
# test/bench/flowlogic_bench.sh — what trigger rules cost the scheduler's hot path
# (docs/flow_logic.md). Not a timed test.
#
# RUNS running runs of a fan-out flow (root -> WIDTH children); in each the root's node
# run is set succeeded (then failed) by hand, inside a transaction that is rolled back, so
# the scheduler never sees them. Timed, REPS times each, in the same session:
#   ready:  the pending node runs that may start, by the 1.1 predicate (every upstream
#           succeeded or skipped: NOT EXISTS over edges, inline) against the 1.2 one
#           (taskflow._fl_ready_ids: trigger rules, branch labels, the finalizer);
#   settle: a failed root marks every child upstream_failed: the 1.1 UPDATE against
#           taskflow._fl_settle (rolled back to a savepoint between repetitions).
# Prints milliseconds per pass and the ratios new / old.
#
#   sudo test/bench/flowlogic_bench.sh          # RUNS=20 WIDTH=200 REPS=5
set -eu
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-20}
WIDTH=${WIDTH:-200}
REPS=${REPS:-5}
DIR=${BENCH_DIR:-/tmp/taskflow-flowlogic-bench}
PORT=${BENCH_PORT:-54351}
. test/bench/lib.sh
bench_cluster_start <<CONF
shared_preload_libraries = 'taskflow'
CONF
psql_ -c "CREATE EXTENSION taskflow" >/dev/null
psql_ <<SQL >/dev/null
SELECT taskflow.create_flow('wide');
SELECT taskflow.add_node('wide', 'root', 'sql', 'SELECT 1');
SELECT taskflow.add_node('wide', 'c' || i, 'sql', 'SELECT 1', after => ARRAY['root'])
  FROM generate_series(1, $WIDTH) i;
SQL
psql_ <<SQL
BEGIN;
SELECT taskflow.run_flow('wide', bizdate => '2024-01-01'::date + i) FROM generate_series(1, $RUNS) i;
UPDATE taskflow.runs SET state = 'running';
UPDATE taskflow.node_runs nr SET state = 'succeeded'
  FROM taskflow.nodes n WHERE n.id = nr.node_id AND n.name = 'root';
CREATE TEMP TABLE t (what text, ms float8);
DO \$\$
DECLARE t0 timestamptz; k bigint;
BEGIN
  FOR i IN 1..$REPS LOOP
    t0 := clock_timestamp();
    SELECT count(*) INTO k FROM taskflow.runs r JOIN taskflow.node_runs nr ON nr.run_id = r.id
     WHERE r.state = 'running' AND nr.state = 'pending'
       AND NOT EXISTS (SELECT 1 FROM taskflow.edges e
                         JOIN taskflow.node_runs up ON up.run_id = nr.run_id AND up.node_id = e.from_node
                        WHERE e.flow_id = r.flow_id AND e.to_node = nr.node_id
                          AND up.state NOT IN ('succeeded', 'skipped'));
    INSERT INTO t VALUES ('ready_old', extract(epoch FROM clock_timestamp() - t0) * 1000);
    t0 := clock_timestamp();
    SELECT count(*) INTO k FROM taskflow.runs r JOIN taskflow.node_runs nr ON nr.run_id = r.id
     WHERE r.state = 'running' AND nr.state = 'pending'
       AND nr.id IN (SELECT taskflow._fl_ready_ids());
    INSERT INTO t VALUES ('ready_new', extract(epoch FROM clock_timestamp() - t0) * 1000);
    IF k <> $RUNS * $WIDTH THEN RAISE EXCEPTION 'expected % ready, got %', $RUNS * $WIDTH, k; END IF;
  END LOOP;
END
\$\$;
UPDATE taskflow.node_runs nr SET state = 'failed'
  FROM taskflow.nodes n WHERE n.id = nr.node_id AND n.name = 'root';
DO \$\$
DECLARE t0 timestamptz; k bigint; ids bigint[] := ARRAY(SELECT id FROM taskflow.runs); ms float8;
BEGIN
  FOR i IN 1..$REPS LOOP
    BEGIN
      t0 := clock_timestamp();
      UPDATE taskflow.node_runs nr
         SET state = 'upstream_failed', finished_at = clock_timestamp(),
             message = 'an upstream node did not succeed'
        FROM taskflow.runs r
       WHERE r.id = ANY (ids) AND r.state = 'running'
         AND nr.run_id = r.id AND nr.state = 'pending'
         AND EXISTS (SELECT 1 FROM taskflow.edges e
                       JOIN taskflow.node_runs up ON up.run_id = nr.run_id AND up.node_id = e.from_node
                      WHERE e.flow_id = r.flow_id AND e.to_node = nr.node_id
                        AND up.state IN ('failed', 'upstream_failed', 'canceled'));
      ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
      RAISE EXCEPTION 'undo' USING ERRCODE = 'P0002';
    EXCEPTION WHEN no_data_found THEN NULL;
    END;
    INSERT INTO t VALUES ('settle_old', ms);
    BEGIN
      t0 := clock_timestamp();
      k := taskflow._fl_settle(ids);
      ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
      IF k <> $RUNS * $WIDTH THEN RAISE EXCEPTION 'expected % settled, got %', $RUNS * $WIDTH, k; END IF;
      RAISE EXCEPTION 'undo' USING ERRCODE = 'P0002';
    EXCEPTION WHEN no_data_found THEN NULL;
    END;
    INSERT INTO t VALUES ('settle_new', ms);
  END LOOP;
END
\$\$;
SELECT format('%s pending node runs (%s runs x %s), median of %s:', $RUNS * $WIDTH, $RUNS, $WIDTH, $REPS);
SELECT format('ready:  1.1 %s ms, 1.2 %s ms, ratio %s',
              round(o::numeric, 1), round(n::numeric, 1), round((n / o)::numeric, 2))
  FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE what = 'ready_old') o,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE what = 'ready_new') n FROM t) x;
SELECT format('settle: 1.1 %s ms, 1.2 %s ms, ratio %s',
              round(o::numeric, 1), round(n::numeric, 1), round((n / o)::numeric, 2))
  FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE what = 'settle_old') o,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE what = 'settle_new') n FROM t) x;
ROLLBACK;
SQL
