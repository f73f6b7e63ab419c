-- taskflow_storage servers: validator, file:// backend, permissions.
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- the wrapper exists and has a validator
SELECT fdwname, fdwvalidator::regproc FROM pg_foreign_data_wrapper WHERE fdwname = 'taskflow_storage';

-- ---------------------------------------------------------------------------
-- validator
-- ---------------------------------------------------------------------------
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage;
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', bogus 'x');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'http://bkt/x');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://b');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt/a/../b');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file://relative/dir');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file:///tmp/../etc');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', endpoint 'ftp://x');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', endpoint 'http://h:9000/path');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', region 'US East');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', url_style 'dns');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', part_size '1MB');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', part_size 'lots');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', max_retries '-1');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', timeout '0');
CREATE SERVER regress_bad FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt', list_page_size '5000');
ALTER FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://bkt');
-- good ones, with units
CREATE SERVER regress_s3 FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 's3://regress-bkt/some/prefix/', endpoint 'http://127.0.0.1:9/',
             region 'eu-west-1', part_size '5MB', multipart_threshold '16MB',
             timeout '2min', connect_timeout '5', max_retries '0', list_page_size '100');
ALTER SERVER regress_s3 OPTIONS (DROP timeout);
ALTER SERVER regress_s3 OPTIONS (DROP url);
ALTER SERVER regress_s3 OPTIONS (ADD url_style 'sideways');
-- user mappings
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_s3 OPTIONS (password 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_s3 OPTIONS (access_key_id 'AK');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_s3 OPTIONS (secret_access_key 'hunter2');

-- ---------------------------------------------------------------------------
-- file:// server
-- ---------------------------------------------------------------------------
CREATE SERVER regress_files FOREIGN DATA WRAPPER taskflow_storage
    OPTIONS (url 'file:///tmp/taskflow_regress_storage/');
-- start from an empty directory whatever an earlier run left
SELECT count(taskflow.delete_object('regress_files', key)) >= 0 AS cleaned
  FROM taskflow.list_objects('regress_files');
SELECT * FROM taskflow.list_objects('regress_files');
SELECT taskflow.put_object('regress_files', 'a/y=2020/m=06/part-0.csv', convert_to(E'id,name\n1,x\n', 'UTF8'));
SELECT taskflow.put_object('regress_files', 'a/y=2020/m=07/part-0.csv', convert_to(repeat('z', 200000), 'UTF8'));
SELECT taskflow.put_object('regress_files', 'b/with space=é.txt', ''::bytea);
SELECT taskflow.put_object('regress_files', 'a/_SUCCESS', 'ok');
SELECT key, size, last_modified > now() - interval '1 hour' AS recent, etag
  FROM taskflow.list_objects('regress_files');
SELECT key FROM taskflow.list_objects('regress_files', 'a/y=2020/m=0');
SELECT key FROM taskflow.list_objects('regress_files', 'a/y=2020/m=07/');
SELECT key FROM taskflow.list_objects('regress_files', 'nothing/here');
SELECT convert_from(taskflow.get_object('regress_files', 'a/y=2020/m=06/part-0.csv'), 'UTF8');
SELECT length(taskflow.get_object('regress_files', 'a/y=2020/m=07/part-0.csv'));
SELECT length(taskflow.get_object('regress_files', 'b/with space=é.txt'));
-- overwrite replaces the object
SELECT taskflow.put_object('regress_files', 'a/_SUCCESS', 'again');
SELECT convert_from(taskflow.get_object('regress_files', 'a/_SUCCESS'), 'UTF8');
SELECT taskflow.get_object('regress_files', 'a/missing');
-- delete (a missing object is fine)
SELECT taskflow.delete_object('regress_files', 'a/_SUCCESS');
SELECT taskflow.delete_object('regress_files', 'a/_SUCCESS');
SELECT key FROM taskflow.list_objects('regress_files', 'a/');
-- keys cannot escape the directory
SELECT taskflow.put_object('regress_files', '../escape', 'x');
SELECT taskflow.put_object('regress_files', '/etc/escape', 'x');
SELECT taskflow.put_object('regress_files', 'a/../../escape', 'x');
SELECT taskflow.get_object('regress_files', 'a/../../../etc/passwd');
SELECT taskflow.put_object('regress_files', 'a//b', 'x');
SELECT taskflow.put_object('regress_files', 'a/', 'x');
SELECT taskflow.put_object('regress_files', '', 'x');
SELECT * FROM taskflow.list_objects('regress_files', '../');
SELECT taskflow.delete_object('regress_files', '../x');
-- not a storage server / missing server
CREATE FOREIGN DATA WRAPPER regress_other;
CREATE SERVER regress_other_srv FOREIGN DATA WRAPPER regress_other;
SELECT * FROM taskflow.list_objects('regress_other_srv');
SELECT * FROM taskflow.list_objects('regress_nope');
SELECT pg_temp.try($$SELECT taskflow.list_objects('regress_nope')$$);

-- ---------------------------------------------------------------------------
-- permissions
-- ---------------------------------------------------------------------------
CREATE ROLE regress_tf_alice;
CREATE ROLE regress_tf_bob;
SET ROLE regress_tf_alice;
SELECT * FROM taskflow.list_objects('regress_files');
SELECT pg_temp.try($$SELECT taskflow.put_object('regress_files', 'x', 'y')$$);
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER regress_files TO regress_tf_alice;
SET ROLE regress_tf_alice;
SELECT count(*) FROM taskflow.list_objects('regress_files');
SELECT taskflow.put_object('regress_files', 'alice.txt', 'from alice');
SELECT convert_from(taskflow.get_object('regress_files', 'alice.txt'), 'UTF8');
SELECT taskflow.delete_object('regress_files', 'alice.txt');
RESET ROLE;
SET ROLE regress_tf_bob;
SELECT taskflow.get_object('regress_files', 'a/y=2020/m=06/part-0.csv');
RESET ROLE;
REVOKE USAGE ON FOREIGN SERVER regress_files FROM regress_tf_alice;
SET ROLE regress_tf_alice;
SELECT pg_temp.try($$SELECT taskflow.list_objects('regress_files')$$);
RESET ROLE;

-- a non-superuser may create S3 servers (given USAGE on the wrapper) but not file:// ones
SET ROLE regress_tf_alice;
CREATE SERVER regress_alice_s3 FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://alice-bkt');
RESET ROLE;
GRANT USAGE ON FOREIGN DATA WRAPPER taskflow_storage TO regress_tf_alice;
SET ROLE regress_tf_alice;
SELECT pg_temp.try($$CREATE SERVER regress_alice_files FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 'file:///tmp/alice')$$);
CREATE SERVER regress_alice_s3 FOREIGN DATA WRAPPER taskflow_storage OPTIONS (url 's3://alice-bkt');
ALTER SERVER regress_alice_s3 OPTIONS (SET url 'file:///tmp/alice');
-- no user mapping yet
SELECT pg_temp.try($$SELECT taskflow.list_objects('regress_alice_s3')$$);
SELECT * FROM taskflow.list_objects('regress_alice_s3');
CREATE USER MAPPING FOR regress_tf_alice SERVER regress_alice_s3
    OPTIONS (access_key_id 'AKIDALICE', secret_access_key 'alice-secret-value');
-- the owner and the mapped user see their own options
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'regress_alice_s3';
RESET ROLE;
-- another role sees the mapping but not its options
GRANT USAGE ON FOREIGN SERVER regress_alice_s3 TO regress_tf_bob;
SET ROLE regress_tf_bob;
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'regress_alice_s3';
SELECT pg_temp.try($$SELECT umoptions FROM pg_user_mapping$$);
-- and has no mapping of its own
SELECT * FROM taskflow.list_objects('regress_alice_s3');
RESET ROLE;

-- a file:// server handed to a non-superuser stops working
ALTER SERVER regress_files OWNER TO regress_tf_alice;
SELECT * FROM taskflow.list_objects('regress_files');
ALTER SERVER regress_files OWNER TO CURRENT_USER;
SELECT count(*) FROM taskflow.list_objects('regress_files');

-- ---------------------------------------------------------------------------
-- clean up
-- ---------------------------------------------------------------------------
SELECT count(taskflow.delete_object('regress_files', key)) FROM taskflow.list_objects('regress_files');
SELECT * FROM taskflow.list_objects('regress_files');
DROP SERVER regress_alice_s3 CASCADE;
DROP SERVER regress_files;
DROP SERVER regress_s3;
DROP SERVER regress_other_srv;
DROP FOREIGN DATA WRAPPER regress_other;
REVOKE USAGE ON FOREIGN DATA WRAPPER taskflow_storage FROM regress_tf_alice;
DROP ROLE regress_tf_alice;
DROP ROLE regress_tf_bob;
