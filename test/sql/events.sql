-- Event triggers across flows, suspend/resume of a run, flow priority: the
-- API, its validation and its permissions (the engine's side is
-- test/t/013_events.pl).  alice and bob own flows; mallory is a stranger.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

CREATE ROLE regress_ev_alice;
CREATE ROLE regress_ev_bob;
CREATE ROLE regress_ev_mallory;

-- alice: a chain a1 -> a2 -> a3 of flows (event triggers)
SET ROLE regress_ev_alice;
SELECT taskflow.create_flow(n) > 0 AS created FROM unnest(ARRAY['ev_a1', 'ev_a2', 'ev_a3']) n;
SELECT taskflow.add_flow_trigger('ev_a2', 'ev_a1');
SELECT taskflow.add_flow_trigger('ev_a3', 'ev_a2');
-- twice: a notice, nothing changes
SELECT taskflow.add_flow_trigger('ev_a3', 'ev_a2');
SELECT flow, upstream, allowed FROM taskflow.event_triggers ORDER BY flow, upstream;
-- itself, cycles (direct and transitive) are refused
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_a1', 'ev_a1') $$);
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_a1', 'ev_a2') $$);
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_a1', 'ev_a3') $$);
-- unknown flows, nulls
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_a1', 'nope') $$);
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('nope', 'ev_a1') $$);
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_a1', NULL) $$);
SELECT regress.try($$ SELECT taskflow.drop_flow_trigger('ev_a3', 'ev_a1') $$);
-- several upstreams: a3 after a2 and a1
SELECT taskflow.add_flow_trigger('ev_a3', 'ev_a1');
SELECT taskflow.drop_flow_trigger('ev_a3', 'ev_a1');
RESET ROLE;

-- bob owns b1 and may not name alice's flows
SET ROLE regress_ev_bob;
SELECT taskflow.create_flow('ev_b1') > 0 AS created;
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_b1', 'ev_a1') $$);
-- the same error as for a flow that does not exist (no leak)
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_b1', 'ev_nothing') $$);
-- nor allow or disallow for them, nor drop their links
SELECT regress.try($$ SELECT taskflow.allow_trigger('ev_a1', 'regress_ev_bob') $$);
SELECT regress.try($$ SELECT taskflow.disallow_trigger('ev_a1', 'regress_ev_bob') $$);
SELECT regress.try($$ SELECT taskflow.drop_flow_trigger('ev_a2', 'ev_a1') $$);
SELECT count(*) AS links_seen FROM taskflow.flow_triggers;
RESET ROLE;

-- alice allows bob: now bob's flow may run after hers
SET ROLE regress_ev_alice;
SELECT taskflow.allow_trigger('ev_a1', 'regress_ev_bob');
SELECT taskflow.allow_trigger('ev_a1', 'regress_ev_bob');
SELECT f.name, g.grantee, g.granted_by FROM taskflow.trigger_grants g
  JOIN taskflow.flows f ON f.id = g.flow_id;
SELECT regress.try($$ SELECT taskflow.allow_trigger('ev_a1', NULL) $$);
RESET ROLE;
SET ROLE regress_ev_bob;
SELECT taskflow.add_flow_trigger('ev_b1', 'ev_a1');
-- still only allowed for a1, not a2
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_b1', 'ev_a2') $$);
SELECT flow, upstream, upstream_owner, allowed FROM taskflow.event_triggers;
-- bob sees his link, not alice's flows
SELECT count(*) AS links_seen, (SELECT count(*) FROM taskflow.flows) AS flows_seen
  FROM taskflow.flow_triggers;
-- a cycle through another owner's flows is refused too: bob lets alice's
-- flows run after b1, but a1 -> b1 -> a1 would be a cycle
SELECT taskflow.allow_trigger('ev_b1', 'regress_ev_alice');
RESET ROLE;
SET ROLE regress_ev_alice;
SELECT regress.try($$ SELECT taskflow.add_flow_trigger('ev_a1', 'ev_b1') $$);
-- a3 after b1 is fine (a DAG across owners)
SELECT taskflow.add_flow_trigger('ev_a3', 'ev_b1');
SELECT taskflow.drop_flow_trigger('ev_a3', 'ev_b1');
SELECT taskflow.create_flow('ev_a0') > 0 AS created;
RESET ROLE;
-- mallory sees nothing of it
SET ROLE regress_ev_mallory;
SELECT count(*) AS links, (SELECT count(*) FROM taskflow.trigger_grants) AS grants,
       (SELECT count(*) FROM taskflow.event_triggers) AS listed
  FROM taskflow.flow_triggers;
-- users cannot write the links or grants directly
SELECT regress.try($$ INSERT INTO taskflow.flow_triggers (flow_id, upstream_id, created_by)
                      SELECT 1, 2, 'regress_ev_mallory' $$);
SELECT regress.try($$ INSERT INTO taskflow.trigger_grants (flow_id, grantee, granted_by)
                      SELECT id, 'regress_ev_mallory', 'regress_ev_mallory' FROM taskflow.flows $$);
RESET ROLE;

-- alice takes the permission back: the link stays but may not fire
SET ROLE regress_ev_alice;
SELECT taskflow.disallow_trigger('ev_a1', 'regress_ev_bob');
SELECT taskflow.disallow_trigger('ev_a1', 'regress_ev_bob');
RESET ROLE;
SET ROLE regress_ev_bob;
SELECT flow, upstream, allowed FROM taskflow.event_triggers;
SELECT taskflow.drop_flow_trigger('ev_b1', 'ev_a1');
SELECT count(*) AS links_seen FROM taskflow.flow_triggers;
RESET ROLE;

-- the run trigger 'event' and the run state 'suspended' exist in the catalog
SELECT pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'taskflow.runs'::regclass AND conname IN ('runs_trigger_check', 'runs_state_check')
 ORDER BY conname;

------------------------------------------------------------------------------
-- suspend / resume: the ownership checks and the states
------------------------------------------------------------------------------
SET ROLE regress_ev_mallory;
SELECT regress.try($$ SELECT taskflow.suspend_run(-1) $$);
SELECT regress.try($$ SELECT taskflow.resume_run(-1) $$);
SELECT regress.try($$ SELECT taskflow.suspend_run(NULL) $$);
RESET ROLE;
-- a run of alice's flow (no nodes: it succeeds at once)
SET ROLE regress_ev_alice;
SELECT taskflow.run_flow('ev_a0', bizdate => '2024-01-01') AS rid \gset
RESET ROLE;
SELECT taskflow.wait_run(:rid, '60 s');
SET ROLE regress_ev_mallory;
SELECT regexp_replace(regress.try(format('SELECT taskflow.suspend_run(%s)', :rid)), 'run [0-9]+', 'run N');
SELECT regexp_replace(regress.try(format('SELECT taskflow.resume_run(%s)', :rid)), 'run [0-9]+', 'run N');
RESET ROLE;
SET ROLE regress_ev_alice;
SELECT regexp_replace(regress.try(format('SELECT taskflow.suspend_run(%s)', :rid)), 'run [0-9]+', 'run N');
SELECT regexp_replace(regress.try(format('SELECT taskflow.resume_run(%s)', :rid)), 'run [0-9]+', 'run N');
RESET ROLE;

------------------------------------------------------------------------------
-- priority
------------------------------------------------------------------------------
SET ROLE regress_ev_alice;
SELECT name, priority FROM taskflow.flows WHERE name = 'ev_a1';
SELECT taskflow.create_flow('ev_p', priority => 8) > 0 AS created;
SELECT regress.try($$ SELECT taskflow.create_flow('ev_q', priority => 11) $$);
SELECT name, priority FROM taskflow.flows WHERE name LIKE 'ev\_%' ORDER BY name;
SELECT taskflow.alter_flow('ev_a1', priority => 9);
SELECT taskflow.alter_flow('ev_a1', priority => 10);
SELECT name, priority FROM taskflow.flows WHERE name = 'ev_a1';
SELECT regress.try($$ SELECT taskflow.alter_flow('ev_a1', priority => 0) $$);
SELECT regress.try($$ SELECT taskflow.alter_flow('ev_a1', priority => 11) $$);
-- NULL: unchanged (like every alter_flow argument)
SELECT taskflow.alter_flow('ev_a1', priority => NULL);
SELECT regress.try($$ SELECT taskflow.alter_flow('nope', priority => 5) $$);
-- direct DML gets the same check
SELECT regress.try($$ UPDATE taskflow.flows SET priority = 42 WHERE name = 'ev_a1' $$);
SELECT regress.try($$ INSERT INTO taskflow.flows (name, priority) VALUES ('ev_direct', -1) $$);
UPDATE taskflow.flows SET priority = 3 WHERE name = 'ev_a1';
SELECT name, priority FROM taskflow.flows WHERE name = 'ev_a1';
RESET ROLE;
SET ROLE regress_ev_mallory;
SELECT regress.try($$ SELECT taskflow.alter_flow('ev_a1', priority => 1) $$);
RESET ROLE;

-- dropping a flow drops its links and grants
SET ROLE regress_ev_alice;
SELECT taskflow.allow_trigger('ev_a2', 'regress_ev_bob');
SELECT taskflow.drop_flow('ev_a2');
SELECT count(*) AS links, (SELECT count(*) FROM taskflow.trigger_grants) AS grants
  FROM taskflow.flow_triggers;
SELECT taskflow.drop_flow(n) FROM unnest(ARRAY['ev_a0', 'ev_a1', 'ev_a3', 'ev_p']) n;
RESET ROLE;
SET ROLE regress_ev_bob;
SELECT taskflow.drop_flow('ev_b1');
RESET ROLE;
DROP ROLE regress_ev_alice, regress_ev_bob, regress_ev_mallory;
