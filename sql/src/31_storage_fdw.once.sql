-- taskflow extension script, part 31: the storage foreign-data wrapper (install-only).
-- 1.1.0 added the HANDLER (read-only foreign tables over archives, storage_fdw.c);
-- its twin for updates is upgrade/1.0.0--1.1.0/post_70_fdw.sql (a post_ part:
-- the handler function comes from the replayable part 30_storage.sql).

CREATE FOREIGN DATA WRAPPER taskflow_storage
    HANDLER taskflow._storage_handler VALIDATOR taskflow._storage_validator;
COMMENT ON FOREIGN DATA WRAPPER taskflow_storage IS
    'taskflow object storage servers (s3:// or file://); see taskflow docs/storage.md';
