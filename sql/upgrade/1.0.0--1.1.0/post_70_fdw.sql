-- taskflow 1.0.0 -> 1.1.0, foreign tables over archives (twin of the change to
-- sql/src/31_storage_fdw.once.sql; a post_ part: the handler function is
-- created by the replayable part 30_storage.sql).
ALTER FOREIGN DATA WRAPPER taskflow_storage HANDLER taskflow._storage_handler;
