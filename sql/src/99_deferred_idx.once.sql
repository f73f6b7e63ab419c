-- taskflow extension script, part 99_deferred_idx (install-only, 1.8.0;
-- twin: sql/upgrade/1.7.0--1.8.0/pre_99_deferred_idx.sql): an index for the
-- lookups of taskflow.deferred by run -- _defer's "noted already?" and
-- _alerts_pass's "deferred already?" (part 95_alerts), both at every pass
-- while entries accumulate (docs/security.md, "Review of 1.7").
CREATE INDEX deferred_run ON taskflow.deferred (run_id);
