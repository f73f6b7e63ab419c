-- taskflow 1.1.0 -> 1.2.0: the webhook foreign-data wrapper of alerts (twin of
-- sql/src/95_alerts_fdw.once.sql; a post_ part: its validator comes from the
-- replayable part 95_alerts.sql).
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
