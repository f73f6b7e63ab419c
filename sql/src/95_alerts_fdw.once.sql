-- taskflow extension script, part 95 (install-only): the webhook
-- foreign-data wrapper of alerts (owner: alerts).  After the replayable part
-- 95_alerts.sql, which defines its validator; its twin for updates is
-- sql/upgrade/1.1.0--1.2.0/post_95_alerts_fdw.sql (a post_ part for the
-- same reason).  See docs/alerts.md.
--
--   CREATE SERVER hooks FOREIGN DATA WRAPPER taskflow_webhook
--       OPTIONS (url 'https://hooks.example.com/taskflow', timeout '10', retries '3');
--   CREATE USER MAPPING FOR alice SERVER hooks OPTIONS (secret 'Bearer ...');
-- No USAGE on the wrapper is granted: a superuser creates webhook servers
-- (they make the database server send HTTP requests) and grants USAGE on
-- them.

CREATE FOREIGN DATA WRAPPER taskflow_webhook VALIDATOR taskflow._webhook_validator;
COMMENT ON FOREIGN DATA WRAPPER taskflow_webhook IS
    'taskflow alert webhooks (http:// or https:// endpoints); see taskflow docs/alerts.md';
