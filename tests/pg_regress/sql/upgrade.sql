-- Upgrades keep data. 0.1.0 as released (sql/cyberbiz_fdw--0.1.0.sql, installed beside the
-- current version by tests/setup.sh) stores webhook events, mirror rows and backfill state;
-- ALTER EXTENSION cyberbiz_fdw UPDATE then keeps every row usable, and leaves every object of
-- the extension defined exactly as a fresh install of the current version defines it. The same
-- from 0.2.0 (sql/cyberbiz_fdw--0.2.0.sql) with a replica holding rows.
\set VERBOSITY default
\set SHOW_CONTEXT never
\set regress_db :DBNAME
-- The setup of a database at an old version (pg_regress gives psql its input directory).
\getenv abs_srcdir PG_ABS_SRCDIR
\set old_version_setup :abs_srcdir '/sql/upgrade_old_version.psql'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
DROP DATABASE IF EXISTS cyberbiz_fdw_upgraded;
DROP DATABASE IF EXISTS cyberbiz_fdw_fresh;
DROP DATABASE IF EXISTS cyberbiz_fdw_from_020;
CREATE DATABASE cyberbiz_fdw_upgraded;
CREATE DATABASE cyberbiz_fdw_fresh;
CREATE DATABASE cyberbiz_fdw_from_020;
RESET client_min_messages;

-- Every member object of the extension with its definition: functions, tables (columns,
-- defaults, compression, constraints, indexes), comments, and what pg_dump keeps.
CREATE FUNCTION describe_cyberbiz_fdw() RETURNS TABLE (obj text, def text) LANGUAGE sql AS $fn$
    SELECT pg_describe_object(d.classid, d.objid, 0),
           coalesce(CASE d.classid
               WHEN 'pg_proc'::regclass THEN pg_get_functiondef(d.objid)
               WHEN 'pg_class'::regclass THEN
                   (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                      || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                                      || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
                                      || coalesce(' compression ' || nullif(a.attcompression::text, ''), ''), ', ' ORDER BY a.attnum)
                    FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                    WHERE a.attrelid = d.objid AND a.attnum > 0 AND NOT a.attisdropped)
                   || coalesce(' | ' || (SELECT string_agg(pg_get_constraintdef(c.oid), ', ' ORDER BY 1) FROM pg_constraint c WHERE c.conrelid = d.objid), '')
                   || coalesce(' | ' || (SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY 1) FROM pg_index i WHERE i.indrelid = d.objid), '')
               END, '') || coalesce(' -- ' || obj_description(d.objid, d.classid::regclass::name), '')
    FROM pg_depend d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'cyberbiz_fdw')
    UNION ALL
    SELECT 'dumped tables', array_to_string(ARRAY(SELECT c::regclass::text FROM unnest(extconfig) c ORDER BY 1), ', ')
    FROM pg_extension WHERE extname = 'cyberbiz_fdw'
$fn$;
SELECT dblink_exec('dbname=' || db, pg_get_functiondef('describe_cyberbiz_fdw'::regproc)) AS created
FROM unnest(ARRAY['cyberbiz_fdw_upgraded', 'cyberbiz_fdw_fresh', 'cyberbiz_fdw_from_020']) db;

\c cyberbiz_fdw_upgraded
\set version '0.1.0'
\i :old_version_setup
CREATE FOREIGN TABLE orders_ft (id bigint, updated_at timestamptz, raw jsonb) SERVER shop OPTIONS (resource 'orders');

-- Rows in every table of 0.1.0: events, each mirror, line items, variants, backfill state.
SELECT ingest('{"id": 9001, "order_number": 1001, "created_at": "2026-11-01 10:00:00", "updated_at": "2026-11-01 10:00:00", "statuses": {"order_status": "open", "financial_status": "paid", "fulfillment_status": "unshipped"}, "prices": {"total_price": 150.0}, "line_items": [{"id": 1, "product_id": 7, "product_variant_id": 70, "sku": "TEA-1", "title": "烏龍茶", "quantity": 2, "price": 50.0}, {"id": 2, "product_id": 8, "sku": "CUP-1", "title": "茶杯", "quantity": 1, "price": 50.0}]}', 'orders/create') AS order_event;
SELECT ingest('{"id": 501, "name": "王小明", "email": "ming@example.tw", "mobile": "0912345678", "updated_at": "2026-11-02 09:00:00"}', 'customers/create') AS customer_event;
SELECT ingest('{"id": 7, "title": "烏龍茶", "published": true, "updated_at": "2026-11-03 08:00:00", "product_variants": [{"id": 70, "sku": "TEA-1", "price": 50.0, "inventory_quantity": 12, "updated_at": "2026-11-03 08:00:00"}]}', 'products/create') AS product_event;
SELECT ingest('{"id": 8, "title": "茶杯", "updated_at": "2026-11-03 09:00:00"}', 'products/delete') AS delete_event;
INSERT INTO cyberbiz_backfill_state (source, resource, last_updated_at, last_run_at)
VALUES ('orders_ft', 'orders', '2026-11-01 10:00:00+08', '2026-11-04 00:00:00+08');
CREATE TABLE counts_before AS
SELECT (SELECT count(*) FROM cyberbiz_webhook_events) AS events, (SELECT count(*) FROM cyberbiz_orders_mirror) AS orders,
       (SELECT count(*) FROM cyberbiz_order_line_items_mirror) AS line_items, (SELECT count(*) FROM cyberbiz_customers_mirror) AS customers,
       (SELECT count(*) FROM cyberbiz_products_mirror) AS products, (SELECT count(*) FROM cyberbiz_product_variants_mirror) AS variants,
       (SELECT count(*) FROM cyberbiz_backfill_state) AS backfill_state;
SELECT * FROM counts_before;

ALTER EXTENSION cyberbiz_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'cyberbiz_fdw';

-- Every row is still there, with its values.
SELECT (SELECT count(*) FROM cyberbiz_webhook_events) AS events, (SELECT count(*) FROM cyberbiz_orders_mirror) AS orders,
       (SELECT count(*) FROM cyberbiz_order_line_items_mirror) AS line_items, (SELECT count(*) FROM cyberbiz_customers_mirror) AS customers,
       (SELECT count(*) FROM cyberbiz_products_mirror) AS products, (SELECT count(*) FROM cyberbiz_product_variants_mirror) AS variants,
       (SELECT count(*) FROM cyberbiz_backfill_state) AS backfill_state
EXCEPT SELECT * FROM counts_before;
SELECT event, resource, resource_id, resource_updated_at FROM cyberbiz_webhook_events ORDER BY id;
SELECT id, order_number, order_status, financial_status, total_price, updated_at FROM cyberbiz_orders_mirror;
SELECT order_id, id, sku, title, quantity, price FROM cyberbiz_order_line_items_mirror ORDER BY id;
SELECT id, name, email, mobile FROM cyberbiz_customers_mirror;
SELECT id, title, published, deleted_at IS NOT NULL AS deleted FROM cyberbiz_products_mirror ORDER BY id;
SELECT id, product_id, sku, inventory_quantity FROM cyberbiz_product_variants_mirror;
SELECT source, resource, last_updated_at FROM cyberbiz_backfill_state;

-- ... and usable: a redelivery is recognised, a newer payload applies, an older one does not.
SELECT ingest('{"id": 501, "name": "王小明", "email": "ming@example.tw", "mobile": "0912345678", "updated_at": "2026-11-02 09:00:00"}', 'customers/create') = 2 AS redelivery_is_event_2;
SELECT ingest('{"id": 9001, "order_number": 1001, "created_at": "2026-11-01 10:00:00", "updated_at": "2026-11-05 12:00:00", "statuses": {"order_status": "closed", "financial_status": "paid"}, "prices": {"total_price": 150.0}, "line_items": []}', 'orders/closed') > 4 AS new_event;
SELECT ingest('{"id": 9001, "order_number": 1001, "updated_at": "2026-11-01 11:00:00", "statuses": {"order_status": "cancelled"}, "line_items": []}', 'orders/cancelled') > 5 AS old_event;
SELECT order_status, updated_at FROM cyberbiz_orders_mirror WHERE id = 9001;
SELECT count(*) AS line_items_of_9001 FROM cyberbiz_order_line_items_mirror WHERE order_id = 9001;
SELECT provolatile FROM pg_proc WHERE proname = 'cyberbiz_taipei';

\c cyberbiz_fdw_from_020
\set version '0.2.0'
\i :old_version_setup
SELECT cyberbiz_replicate('shop', 'shop_rep', ARRAY['orders']);
-- Rows as a 0.2.0 sync left them, and the sync's bookkeeping.
INSERT INTO shop_rep.orders (id, order_number, updated_at, order_status, raw)
VALUES (9001, 1001, '2026-11-01 10:00:00+08', 'open', '{"id": 9001, "order_number": 1001, "updated_at": "2026-11-01 10:00:00", "statuses": {"order_status": "open"}, "line_items": [{"id": 1, "sku": "TEA-1"}, {"id": 2, "sku": "CUP-1"}]}');
INSERT INTO shop_rep.order_line_items (order_id, id, sku, raw) VALUES (9001, 1, 'TEA-1', '{"id": 1, "sku": "TEA-1"}'), (9001, 2, 'CUP-1', '{"id": 2, "sku": "CUP-1"}');
UPDATE cyberbiz_replica_state SET last_full_sync = '2026-11-02 00:00:00+08', fresh_as_of = '2026-11-02 00:00:00+08', watermark = '2026-11-01 10:00:00+08'
WHERE server = 'shop' AND table_name = 'orders';

ALTER EXTENSION cyberbiz_fdw UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'cyberbiz_fdw';
SELECT id, order_number, updated_at, order_status FROM shop_rep.orders;
SELECT order_id, id, sku FROM shop_rep.order_line_items ORDER BY id;
SELECT table_name, rows, state, last_full_sync FROM cyberbiz_replica_status ORDER BY 1;
-- The 0.3.0 apply on those rows: a newer payload replaces the order and its line items, an
-- older one changes nothing.
SELECT ingest('{"id": 9001, "order_number": 1001, "updated_at": "2026-11-05 12:00:00", "statuses": {"order_status": "closed"}, "line_items": [{"id": 2, "sku": "CUP-1"}, {"id": 3, "sku": "POT-1"}]}', 'orders/closed') IS NOT NULL AS applied;
SELECT ingest('{"id": 9001, "order_number": 1001, "updated_at": "2026-11-01 11:00:00", "statuses": {"order_status": "cancelled"}, "line_items": []}', 'orders/cancelled') IS NOT NULL AS stored;
SELECT id, updated_at, order_status FROM shop_rep.orders;
SELECT order_id, id, sku FROM shop_rep.order_line_items ORDER BY id;

\c cyberbiz_fdw_fresh
SET client_min_messages = warning;
CREATE EXTENSION cyberbiz_fdw;
RESET client_min_messages;

\c :regress_db
-- The updated extension and a fresh install define the same objects the same way.
SELECT count(*) AS objects FROM dblink('dbname=cyberbiz_fdw_fresh', 'SELECT * FROM describe_cyberbiz_fdw()') AS f(obj text, def text);
SELECT coalesce(u.obj, f.obj) AS differs, u.def AS upgraded, f.def AS fresh
FROM dblink('dbname=cyberbiz_fdw_upgraded', 'SELECT * FROM describe_cyberbiz_fdw()') AS u(obj text, def text)
FULL JOIN dblink('dbname=cyberbiz_fdw_fresh', 'SELECT * FROM describe_cyberbiz_fdw()') AS f(obj text, def text) ON f.obj = u.obj
WHERE u.def IS DISTINCT FROM f.def;
-- So does the extension updated from 0.2.0.
SELECT coalesce(u.obj, f.obj) AS differs, u.def AS upgraded, f.def AS fresh
FROM dblink('dbname=cyberbiz_fdw_from_020', 'SELECT * FROM describe_cyberbiz_fdw()') AS u(obj text, def text)
FULL JOIN dblink('dbname=cyberbiz_fdw_fresh', 'SELECT * FROM describe_cyberbiz_fdw()') AS f(obj text, def text) ON f.obj = u.obj
WHERE u.def IS DISTINCT FROM f.def;
SET client_min_messages = warning;
DROP DATABASE cyberbiz_fdw_upgraded;
DROP DATABASE cyberbiz_fdw_fresh;
DROP DATABASE cyberbiz_fdw_from_020;
DROP FUNCTION describe_cyberbiz_fdw();
DROP EXTENSION dblink;
