-- taskflow 1.7.0 -> 1.8.0: twin of sql/src/99_deferred_idx.once.sql (1.8.0;
-- must stay identical in effect): an index for the
-- lookups of taskflow.deferred by run -- _defer's "noted already?" and
-- _alerts_pass's "deferred already?" (part 95_alerts), both at every pass
-- while entries accumulate (docs/security.md, "Review of 1.7").
CREATE INDEX deferred_run ON taskflow.deferred (run_id);
