-- Webhooks end to end: writes made through the FDW make the sandbox post signed webhooks to the
-- extension's receiver (a background worker; tests/test.sh sets cyberbiz.webhook_listen), which
-- ingests each in a transaction of its own; afterwards the mirror tables equal the API's state.
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SELECT pg_temp.sandbox_server('hooks', 'cyberbiz_test.hooks_url', $$, shop_domain 'sandbox.cyberbiz.co', requests_per_second '1000'$$,
                               $$, app_secret 'regress-app-secret'$$);
CREATE SCHEMA h;
IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (orders, customers, products) FROM SERVER hooks INTO h;
-- The receiver reads App Secrets every second (a delivery for a shop it does not know yet
-- waits for the next reading, then is answered 503: the platform may resend, the sandbox does not).
SELECT pg_sleep(1.5);

-- The mirror starts complete (backfill through the FDW), and a second run is incremental.
SELECT cyberbiz_backfill('h.orders') AS orders, cyberbiz_backfill('h.customers') AS customers, cyberbiz_backfill('h.products') AS products;
SELECT cyberbiz_backfill('h.orders') AS orders_again;
SELECT count(*) AS line_items FROM cyberbiz_order_line_items_mirror;

-- Writes through the FDW; the sandbox posts a signed webhook for each.
UPDATE h.orders SET note = '請改週五送達' WHERE id = (SELECT min(id) FROM h.orders);
UPDATE h.orders SET order_status = 'cancelled' WHERE id = (SELECT max(id) FROM h.orders WHERE order_status = 'open');
UPDATE h.customers SET note = 'VIP 客戶' WHERE id = (SELECT min(id) FROM h.customers);
INSERT INTO h.products (title, published, price, raw) VALUES ('新品 茶包', true, 99, '{"handle": "new-tea"}');
UPDATE h.products SET published = NOT published WHERE id = (SELECT min(id) FROM h.products);
DELETE FROM h.products WHERE id = (SELECT max(id) FROM h.products WHERE title <> '新品 茶包');
SELECT pg_sleep(3);

SELECT event, resource, count(*) FROM cyberbiz_webhook_events GROUP BY 1, 2 ORDER BY 1;

-- The mirrors equal the API.
SELECT count(*) AS orders_differing
FROM cyberbiz_orders_mirror m FULL JOIN (SELECT id, raw FROM h.orders OFFSET 0) a USING (id)
WHERE m.payload IS DISTINCT FROM a.raw;
SELECT count(*) AS customers_differing
FROM cyberbiz_customers_mirror m FULL JOIN (SELECT id, raw FROM h.customers OFFSET 0) a USING (id)
WHERE m.payload IS DISTINCT FROM a.raw;
SELECT count(*) AS products_differing
FROM cyberbiz_products_mirror m FULL JOIN (SELECT id, raw FROM h.products OFFSET 0) a USING (id)
WHERE (m.deleted_at IS NULL AND m.payload IS DISTINCT FROM a.raw) OR (m.deleted_at IS NOT NULL AND a.id IS NOT NULL);
SELECT count(*) AS deleted_products FROM cyberbiz_products_mirror WHERE deleted_at IS NOT NULL;
SELECT payload->>'note' AS note, order_status FROM cyberbiz_orders_mirror WHERE payload->>'note' = '請改週五送達' OR order_status = 'cancelled' ORDER BY id;

-- A delivery with a wrong signature is refused and stores nothing.
SELECT count(*) AS events_before FROM cyberbiz_webhook_events;
SELECT cyberbiz_ingest_webhook('{"id": 1, "updated_at": "2026-11-28 12:00:00"}', 'orders/update', 'deadbeef', 'sandbox.cyberbiz.co');
SELECT count(*) AS events_after FROM cyberbiz_webhook_events;
-- What the receiver counted (a wrong signature never reaches the database).
SELECT accepted > 0 AS accepted, rejected_signature, errors FROM cyberbiz_stat_receiver;

SET client_min_messages = warning;
DROP SCHEMA h CASCADE;
DROP SERVER hooks CASCADE;
