-- taskflow extension script, part 31: the storage foreign-data wrapper (install-only).

CREATE FOREIGN DATA WRAPPER taskflow_storage VALIDATOR taskflow._storage_validator;
COMMENT ON FOREIGN DATA WRAPPER taskflow_storage IS
    'taskflow object storage servers (s3:// or file://); see taskflow docs/storage.md';
