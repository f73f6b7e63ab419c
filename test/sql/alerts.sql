-- Alerts: the taskflow_webhook wrapper's validator, add_alert / drop_alert
-- validation (every bad input an error with SQLSTATE + hint, nothing
-- changed), USAGE checks with the flow owner's rights, RLS on alerts and
-- alert_deliveries, secrets never shown.  Delivery itself: test/t/026_alerts.pl.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; hint text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || CASE WHEN hint <> '' THEN ' [hint: ' || hint || ']' ELSE '' END;
END $$;

SELECT fdwname, fdwvalidator::regproc, fdwhandler FROM pg_foreign_data_wrapper
 WHERE fdwname = 'taskflow_webhook';

-- ---------------------------------------------------------------------------
-- validator
-- ---------------------------------------------------------------------------
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'ftp://x/y')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'file:///etc/passwd')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https://user:pw@h/x')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https://h/a b')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https:///x')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https://h/x', timeout '0')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https://h/x', timeout '10s')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https://h/x', retries '21')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https://h/x', secret_header 'X Bad')$$);
SELECT pg_temp.try($$CREATE SERVER regress_hook_bad FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'https://h/x', bogus '1')$$);
SELECT count(*) AS bad_servers FROM pg_foreign_server WHERE srvname = 'regress_hook_bad';

CREATE SERVER regress_hooks FOREIGN DATA WRAPPER taskflow_webhook
    OPTIONS (url 'https://hooks.example.com/taskflow?team=data', timeout '5', retries '2',
             secret_header 'X-Hook-Token');
SELECT pg_temp.try($$ALTER SERVER regress_hooks OPTIONS (DROP url)$$);
SELECT pg_temp.try($$ALTER SERVER regress_hooks OPTIONS (SET retries 'many')$$);
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'regress_hooks';

-- user mappings: only "secret"; a bad value is not echoed
SELECT pg_temp.try($$CREATE USER MAPPING FOR CURRENT_USER SERVER regress_hooks OPTIONS (token 'x')$$);
SELECT pg_temp.try($$CREATE USER MAPPING FOR CURRENT_USER SERVER regress_hooks OPTIONS (secret E'top-secret-1\r\nX-Evil: 1')$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE regress_hook_t (a int) SERVER regress_hooks OPTIONS (path 'x')$$);

-- ---------------------------------------------------------------------------
-- add_alert / drop_alert
-- ---------------------------------------------------------------------------
CREATE ROLE regress_al_owner;
CREATE ROLE regress_al_other;
GRANT USAGE ON FOREIGN SERVER regress_hooks TO regress_al_owner;
CREATE USER MAPPING FOR regress_al_owner SERVER regress_hooks OPTIONS (secret 'top-secret-2');
CREATE SERVER regress_nohooks FOREIGN DATA WRAPPER taskflow_webhook OPTIONS (url 'http://127.0.0.1:1/');
CREATE SERVER regress_store FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file:///tmp/regress_al');
GRANT USAGE ON FOREIGN SERVER regress_store TO regress_al_owner;

SET ROLE regress_al_owner;
SELECT taskflow.create_flow('regress_al_flow', schedule => '0 5 * * *', timezone => 'Asia/Shanghai') > 0 AS created;
SELECT taskflow.add_node('regress_al_flow', 'a', 'sql', 'SELECT 1') > 0 AS node;

SELECT pg_temp.try($$SELECT taskflow.add_alert('nope', 'failure', notify_channel => 'c')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'failed', notify_channel => 'c')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', NULL, notify_channel => 'c')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'failure')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'failure', notify_channel => 'bad channel')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'failure', notify_channel => 'OpsAlerts')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'failure', server => 'regress_missing')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'failure', server => 'regress_store')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'failure', server => 'regress_nohooks')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'sla', notify_channel => 'c')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'sla', notify_channel => 'c', sla => '25:00')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'sla', notify_channel => 'c', sla => 'soon')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'sla', notify_channel => 'c', sla => '-1 hour')$$);
SELECT pg_temp.try($$SELECT taskflow.add_alert('regress_al_flow', 'failure', notify_channel => 'c', sla => '06:00')$$);
SELECT count(*) AS alerts_after_errors FROM taskflow.alerts;

SELECT taskflow.add_alert('regress_al_flow', 'failure', notify_channel => 'ops', server => 'regress_hooks') > 0 AS failure_alert;
SELECT taskflow.add_alert('regress_al_flow', 'success', notify_channel => 'ops') > 0 AS success_alert;
SELECT taskflow.add_alert('regress_al_flow', 'sla', server => 'regress_hooks', sla => '06:30') > 0 AS sla_at;
SELECT taskflow.add_alert('regress_al_flow', 'sla', notify_channel => 'ops', sla => '90 minutes') > 0 AS sla_after;
SELECT flow, event, notify_channel, server, sla, delivered, failed, pending, last_state
  FROM taskflow.alerts_status ORDER BY alert_id;

-- direct writes: the same CHECKs; users cannot write the outbox
SELECT pg_temp.try($$INSERT INTO taskflow.alerts (flow_id, event) SELECT id, 'failure' FROM taskflow.flows$$);
SELECT pg_temp.try($$INSERT INTO taskflow.alert_deliveries (alert_id, flow_id, run_id, event, target, payload) VALUES (1, 1, 1, 'failure', 'notify', '{}')$$);
SELECT pg_temp.try($$UPDATE taskflow.alert_deliveries SET state = 'delivered'$$);
-- direct INSERTs get add_alert's server checks (guard alerts_guard), nothing is written
SELECT count(*) AS alerts_before FROM taskflow.alerts \gset
SELECT pg_temp.try($$INSERT INTO taskflow.alerts (flow_id, event, server) SELECT id, 'failure', 'regress_missing' FROM taskflow.flows$$);
SELECT pg_temp.try($$INSERT INTO taskflow.alerts (flow_id, event, server) SELECT id, 'failure', 'regress_store' FROM taskflow.flows$$);
SELECT pg_temp.try($$INSERT INTO taskflow.alerts (flow_id, event, server) SELECT id, 'failure', 'regress_nohooks' FROM taskflow.flows$$);
SELECT count(*) = :alerts_before AS nothing_written FROM taskflow.alerts;

-- the SLA deadline: the first 06:30 Shanghai at or after the scheduled time
-- (same day, or the next day when the run is scheduled later in the day)
SELECT taskflow._alert_deadline('06:30', NULL, '2030-03-01 05:00+08', 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' AS same_day,
       taskflow._alert_deadline('06:30', NULL, '2030-03-01 23:00+08', 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' AS next_day,
       taskflow._alert_deadline(NULL, '90 minutes', '2030-03-01 05:00+08', 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' AS after;
RESET ROLE;

-- a stranger sees none of it and cannot drop it
SET ROLE regress_al_other;
SELECT count(*) AS seen_alerts FROM taskflow.alerts;
SELECT count(*) AS seen_status FROM taskflow.alerts_status;
SELECT pg_temp.try($$SELECT taskflow.drop_alert((SELECT min(id) FROM taskflow.alerts))$$);
SELECT pg_temp.try($$SELECT taskflow.drop_alert(1)$$);
RESET ROLE;
SELECT count(*) AS alerts_kept FROM taskflow.alerts;

-- secrets: not in any taskflow view or table
SELECT count(*) AS secret_leaks FROM taskflow.alerts_status s WHERE s::text LIKE '%top-secret%';
SELECT count(*) AS secret_leaks FROM taskflow.alerts a WHERE a::text LIKE '%top-secret%';

-- drop_alert, and dropping the flow drops its alerts
SET ROLE regress_al_owner;
SELECT taskflow.drop_alert((SELECT min(id) FROM taskflow.alerts));
SELECT count(*) AS alerts_left FROM taskflow.alerts;
SELECT taskflow.drop_flow('regress_al_flow');
SELECT count(*) AS alerts_left FROM taskflow.alerts;
RESET ROLE;

DROP USER MAPPING FOR regress_al_owner SERVER regress_hooks;
DROP SERVER regress_hooks, regress_nohooks, regress_store;
DROP ROLE regress_al_owner, regress_al_other;
