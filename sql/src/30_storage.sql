-- taskflow extension script, part 30: object storage (storage.c, s3.c).
-- Storage servers are foreign servers of the taskflow_storage wrapper:
--   CREATE SERVER archive FOREIGN DATA WRAPPER taskflow_storage
--       OPTIONS (url 's3://bucket/prefix', endpoint 'http://127.0.0.1:9000');
--   CREATE USER MAPPING FOR alice SERVER archive
--       OPTIONS (access_key_id '...', secret_access_key '...');
-- USAGE on the server is the permission to use it.  See docs/storage.md.

CREATE OR REPLACE FUNCTION taskflow._storage_validator(text[], oid) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_storage_validator' LANGUAGE C STRICT;

-- read-only foreign tables over Hive-partitioned archives (storage_fdw.c)
CREATE OR REPLACE FUNCTION taskflow._storage_handler() RETURNS fdw_handler
    AS 'MODULE_PATHNAME', 'tf_storage_handler' LANGUAGE C STRICT;

CREATE OR REPLACE FUNCTION taskflow.list_objects(server text, prefix text DEFAULT '')
    RETURNS TABLE (key text, size bigint, last_modified timestamptz, etag text)
    AS 'MODULE_PATHNAME', 'tf_list_objects' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.list_objects(text, text) IS
    'objects under a key prefix of a storage server (needs USAGE on the server)';

CREATE OR REPLACE FUNCTION taskflow.put_object(server text, key text, data bytea) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_put_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.put_object(text, text, bytea) IS
    'write one object (streaming writer; multipart on S3 when large)';

CREATE OR REPLACE FUNCTION taskflow.get_object(server text, key text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tf_get_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.get_object(text, text) IS
    'read one object (at most 1 GB)';

CREATE OR REPLACE FUNCTION taskflow.delete_object(server text, key text) RETURNS void
    AS 'MODULE_PATHNAME', 'tf_delete_object' LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION taskflow.delete_object(text, text) IS
    'delete one object (a missing object is not an error)';
