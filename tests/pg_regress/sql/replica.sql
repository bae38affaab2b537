-- The local replica on the regress sandbox (seed 1): created beside the imported foreign
-- tables, filled by CALL cyberbiz_sync, equal to the foreign tables row for row; BI queries on
-- it make no request; a pg_cron job (Debian's postgresql-15-cron) keeps it synced.
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SELECT pg_temp.sandbox_server('replica_shop', 'cyberbiz_test.api_url', $$, sync_requests_per_second '200'$$);
CREATE SCHEMA replica_live;
IMPORT FOREIGN SCHEMA cyberbiz FROM SERVER replica_shop INTO replica_live;

SELECT * FROM cyberbiz_replicate('replica_shop', 'shop_replica', ARRAY['orders', 'customers', 'products', 'discounts']) ORDER BY 1;
\d shop_replica.discounts
SELECT table_name, state, rows FROM cyberbiz_replica_status WHERE server = 'replica_shop' ORDER BY table_name;

CALL cyberbiz_sync('replica_shop');
SELECT table_name, state, rows > 0 AS has_rows, last_error FROM cyberbiz_replica_status WHERE server = 'replica_shop' ORDER BY table_name;

-- Row for row the foreign tables' rows.
CREATE FUNCTION replica_differences(t text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    n bigint;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
    WHERE attrelid = format('replica_live.%I', t)::regclass AND attnum > 0;
    EXECUTE format('SELECT count(*) FROM ((SELECT %1$s FROM shop_replica.%2$I WHERE _deleted_at IS NULL EXCEPT ALL SELECT %1$s FROM replica_live.%2$I)
                    UNION ALL (SELECT %1$s FROM replica_live.%2$I EXCEPT ALL SELECT %1$s FROM shop_replica.%2$I WHERE _deleted_at IS NULL)) d', cols, t) INTO n;
    RETURN n;
END $$;
SELECT t AS table_name, replica_differences(t) AS differences
FROM unnest(ARRAY['orders', 'order_line_items', 'customers', 'products', 'product_variants', 'discounts']) t ORDER BY 1;

-- A dashboard query on the replica: a plain local plan, no request (statistics taken first, so
-- that the plan does not depend on whether autovacuum has analyzed the table yet).
ANALYZE shop_replica.orders;
EXPLAIN (COSTS OFF) SELECT financial_status, count(*) FROM shop_replica.orders WHERE _deleted_at IS NULL GROUP BY 1;
SELECT (SELECT array_agg(x ORDER BY x) FROM (SELECT financial_status || ':' || count(*) FROM shop_replica.orders GROUP BY financial_status) r(x))
     = (SELECT array_agg(x ORDER BY x) FROM (SELECT financial_status || ':' || count(*) FROM replica_live.orders GROUP BY financial_status) l(x)) AS same_answer;

-- An incremental sync asks only for what changed since the last one.
UPDATE replica_live.customers SET note = 'VIP since the regress test' WHERE id = (SELECT min(id) FROM replica_live.customers);
CALL cyberbiz_sync('replica_shop', ARRAY['customers']);
SELECT raw->>'note' AS note FROM shop_replica.customers WHERE id = (SELECT min(id) FROM shop_replica.customers);
SELECT replica_differences('customers') AS customer_differences;

-- Bad input: an unknown table, a server without a replica.
SELECT cyberbiz_replicate('replica_shop', 'shop_replica', ARRAY['blogs']);
CALL cyberbiz_sync('no_such_server');

-- Scheduling with pg_cron: a job in database postgres (cron.database_name) runs the sync in
-- this database every minute; within about a minute the replica's last sync moves.
CREATE TABLE cron_check AS SELECT fresh_as_of AS before FROM cyberbiz_replica_state WHERE server = 'replica_shop' AND table_name = 'orders';
\c postgres
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pg_cron;
RESET client_min_messages;
SELECT cron.schedule_in_database('cyberbiz-regress-sync', '* * * * *', $$CALL cyberbiz_sync('replica_shop')$$, 'cyberbiz_fdw_regress') > 0 AS scheduled;
\c cyberbiz_fdw_regress
CREATE FUNCTION cron_synced() RETURNS boolean LANGUAGE sql AS $$
    SELECT s.fresh_as_of > c.before FROM cyberbiz_replica_state s, cron_check c WHERE s.server = 'replica_shop' AND s.table_name = 'orders'
$$;
DO $$
BEGIN
    FOR i IN 1..170 LOOP
        EXIT WHEN cron_synced();
        PERFORM pg_sleep(0.5);
    END LOOP;
END $$;
SELECT cron_synced() AS synced_by_cron;
\c postgres
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        EXIT WHEN EXISTS (SELECT 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                          WHERE j.jobname = 'cyberbiz-regress-sync' AND d.status IN ('succeeded', 'failed'));
        PERFORM pg_sleep(0.5);
    END LOOP;
END $$;
SELECT status, return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
WHERE j.jobname = 'cyberbiz-regress-sync' AND d.status IN ('succeeded', 'failed') ORDER BY runid LIMIT 1;
SELECT cron.unschedule('cyberbiz-regress-sync');
\c cyberbiz_fdw_regress

-- The extension's own sync scheduler (a background worker; cyberbiz.sync_interval, off by
-- default) keeps it synced as well. Meanwhile a CALL runs the first sync of another shop that
-- the scheduler syncs too: both drivers run the same step, one at a time per server, so no
-- window of updated_at is asked twice, and the replica ends equal to the shop.
\i :setup
SELECT pg_temp.sandbox_server('concurrent_shop', 'cyberbiz_test.concurrent_url', $$, sync_requests_per_second '4', page_size '50'$$);
CREATE SCHEMA concurrent_live;
IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (orders, order_line_items) FROM SERVER concurrent_shop INTO concurrent_live;
SELECT count(*) AS tables FROM cyberbiz_replicate('concurrent_shop', 'concurrent_replica', ARRAY['orders']);
-- The sandbox's request log, read with curl (as the server's user).
CREATE TABLE sandbox_log (body text);
CREATE FUNCTION sandbox_requests() RETURNS SETOF jsonb LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sandbox_log;
    EXECUTE format('COPY sandbox_log FROM PROGRAM %L WITH (FORMAT csv, QUOTE E''\x01'', DELIMITER E''\x02'')',
                   'curl -s ' || current_setting('cyberbiz_test.concurrent_url') || '/__sandbox/requests');
    RETURN QUERY SELECT e FROM sandbox_log, jsonb_array_elements(body::jsonb) e;
END $$;
SELECT count(*) >= 0 AS log_read FROM sandbox_requests();
UPDATE cron_check SET before = (SELECT fresh_as_of FROM cyberbiz_replica_state WHERE server = 'replica_shop' AND table_name = 'orders');
ALTER SYSTEM SET cyberbiz.sync_interval = 1;
SELECT pg_reload_conf();
CALL cyberbiz_sync('concurrent_shop');
SELECT table_name, state, last_error FROM cyberbiz_replica_status WHERE server = 'concurrent_shop' ORDER BY 1;
WITH windows AS (SELECT e->>'path' AS path FROM sandbox_requests() e WHERE e->>'path' LIKE '%updated_at_end_time=%')
SELECT count(*) > 3 AS several_windows, count(*) - count(DISTINCT path) AS asked_twice FROM windows;
SELECT count(*) AS differences FROM (
    (SELECT id, updated_at, raw FROM concurrent_replica.orders EXCEPT SELECT id, updated_at, raw FROM concurrent_live.orders)
    UNION ALL (SELECT id, updated_at, raw FROM concurrent_live.orders EXCEPT SELECT id, updated_at, raw FROM concurrent_replica.orders)) d;
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        EXIT WHEN cron_synced();
        PERFORM pg_sleep(0.5);
    END LOOP;
END $$;
SELECT cron_synced() AS synced_by_the_scheduler;
-- The scheduler verifies every table as well, each cyberbiz.verify_interval (3600 s by default).
ALTER SYSTEM SET cyberbiz.verify_interval = 1;
SELECT pg_reload_conf();
DO $$
BEGIN
    FOR i IN 1..120 LOOP
        EXIT WHEN (SELECT verified_at IS NOT NULL FROM cyberbiz_replica_state WHERE server = 'concurrent_shop' AND table_name = 'orders');
        PERFORM pg_sleep(0.5);
    END LOOP;
END $$;
SELECT table_name, verify_result, api_rows = replica_rows AND api_rows > 0 AS counts_agree, verified_through < last_full_sync AS below_the_sync
FROM cyberbiz_replica_status WHERE server = 'concurrent_shop' ORDER BY 1;
ALTER SYSTEM RESET cyberbiz.verify_interval;
ALTER SYSTEM RESET cyberbiz.sync_interval;
SELECT pg_reload_conf();
