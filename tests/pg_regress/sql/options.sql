-- The wrapper, its validator, and every option it accepts or rejects.
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc FROM pg_foreign_data_wrapper WHERE fdwname = 'cyberbiz_fdw';

-- SQLSTATE and message of a statement that fails.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN others THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Unknown options are rejected, listing the valid ones for that object.
CREATE SERVER bad FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (bogus 'x');
CREATE SERVER shop FOREIGN DATA WRAPPER cyberbiz_fdw;
CREATE USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (token 'x');
CREATE FOREIGN TABLE t (id bigint) SERVER shop OPTIONS (resourse 'orders');
CREATE FOREIGN TABLE t (id bigint OPTIONS (path 'x')) SERVER shop OPTIONS (resource 'orders');
CREATE FOREIGN DATA WRAPPER cyberbiz_fdw2 HANDLER cyberbiz_fdw_handler VALIDATOR cyberbiz_fdw_validator OPTIONS (x '1');

-- Bad values name the option and the allowed range, with SQLSTATE HV024.
SELECT pg_temp.try(format('CREATE SERVER b FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (%s %L)', o, v))
FROM (VALUES ('page_size', '500'), ('page_size', '0'), ('page_size', 'ten'),
             ('requests_per_second', '6'), ('requests_per_second', '0'),
             ('api_url', 'not-a-url'), ('api_url', 'ftp://example.com'), ('api_url', 'https://user:pw@example.com'),
             ('timeout', '-1'), ('max_retries', '11'), ('max_request_bytes', '3000000'),
             ('time_zone', 'Mars/Olympus'), ('use_remote_estimate', 'sometimes'), ('max_key_lookups', '0'),
             ('shop_domain', 'https://x.cyberbiz.co/')) AS x(o, v);

-- Valid values are accepted, and ALTER is validated the same way.
SELECT pg_temp.try($$ALTER SERVER shop OPTIONS (ADD api_url 'http://127.0.0.1:9/', ADD page_size '50', ADD requests_per_second '2.5', ADD timeout '15', ADD max_retries '5', ADD max_request_bytes '2048', ADD time_zone 'Asia/Taipei', ADD use_remote_estimate 'true', ADD max_key_lookups '100', ADD shop_domain 'demo.cyberbiz.co')$$);
SELECT pg_temp.try($$ALTER SERVER shop OPTIONS (SET page_size '51')$$);
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'shop';

-- User mappings: api_token is required; secrets never appear in messages.
SELECT pg_temp.try($$CREATE USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (app_secret 'x')$$);
SELECT pg_temp.try($$CREATE USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (api_token 'has a secret space')$$);
SELECT pg_temp.try($$CREATE USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (api_token 'a.b.c', app_secret '')$$);
SELECT pg_temp.try($$CREATE USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (api_token 'a.b.c', app_secret 's')$$);
SELECT pg_temp.try($$ALTER USER MAPPING FOR CURRENT_USER SERVER shop OPTIONS (DROP api_token)$$);

-- Foreign tables: resource or endpoint, not both, not neither; json_path on columns.
SELECT pg_temp.try($$CREATE FOREIGN TABLE t1 (id bigint) SERVER shop$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE t1 (id bigint) SERVER shop OPTIONS (resource 'order')$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE t1 (id bigint) SERVER shop OPTIONS (resource 'orders', endpoint '/v1/orders')$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE t1 (id bigint) SERVER shop OPTIONS (endpoint 'v1/blogs')$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE t1 (id bigint) SERVER shop OPTIONS (endpoint '/v1/blogs?page=2')$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE t1 (id bigint) SERVER shop OPTIONS (resource 'orders', rows '-1')$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE t1 (x text OPTIONS (json_path '.x')) SERVER shop OPTIONS (resource 'orders')$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE t1 (id bigint, fs text OPTIONS (json_path 'statuses.financial_status')) SERVER shop OPTIONS (resource 'orders', rows '2500')$$);
SELECT pg_temp.try($$CREATE FOREIGN TABLE t2 (id bigint, raw jsonb) SERVER shop OPTIONS (endpoint '/v1/blogs')$$);
SELECT pg_temp.try($$ALTER FOREIGN TABLE t1 ALTER COLUMN fs OPTIONS (SET json_path 'statuses..x')$$);

DROP SERVER shop CASCADE;
