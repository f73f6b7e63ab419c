-- taskflow extension script, part 31: the storage foreign-data wrapper (install-only).

CREATE FOREIGN DATA WRAPPER taskflow_storage VALIDATOR taskflow._storage_validator;
COMMENT ON FOREIGN DATA WRAPPER taskflow_storage IS
    'taskflow object storage servers (s3:// or file://); see taskflow docs/storage.md';

-- 1.1.0: foreign tables over archives (twin: upgrade/1.0.0--1.1.0/post_70_fdw.sql)
ALTER FOREIGN DATA WRAPPER taskflow_storage HANDLER taskflow._storage_handler;
