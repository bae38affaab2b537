-- Writes: what each statement sends (EXPLAIN), RETURNING from the API's answer, and what the
-- API cannot do failing before any request.
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SELECT pg_temp.sandbox_server('wr', 'cyberbiz_test.api_url', $$, max_request_bytes '2048'$$);
CREATE SCHEMA w;
IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (products, product_variants, orders, customers, custom_collections) FROM SERVER wr INTO w;

EXPLAIN (COSTS OFF) INSERT INTO w.products (title, published, price) VALUES ('x', true, 1);
EXPLAIN (COSTS OFF) UPDATE w.products SET published = false WHERE id = 69400647;
EXPLAIN (COSTS OFF) UPDATE w.product_variants SET price = 99 WHERE product_id = 69400647;
EXPLAIN (COSTS OFF) UPDATE w.orders SET note = 'x', order_status = 'cancelled' WHERE id = 56900174;
EXPLAIN (COSTS OFF) DELETE FROM w.custom_collections WHERE id = 310000;

-- Round trip: the API answers with the ids and timestamps it set.
INSERT INTO w.custom_collections (title, handle, published) VALUES ('秋季選物', 'autumn', true)
RETURNING title, handle, published, id > 310000 AS new_id;
UPDATE w.custom_collections SET title = '秋冬選物' WHERE handle = 'autumn' RETURNING title, published;
SELECT title FROM w.custom_collections WHERE handle = 'autumn';
DELETE FROM w.custom_collections WHERE handle = 'autumn' RETURNING title;
SELECT count(*) FROM w.custom_collections WHERE handle = 'autumn';
UPDATE w.orders SET note = '請改週五送達' WHERE id = 56900174 RETURNING id, note, order_status;

-- What the API cannot do fails before any request.
INSERT INTO w.orders (note) VALUES ('x');
DELETE FROM w.customers WHERE id = 23300010;
UPDATE w.orders SET total_price = 1 WHERE id = 56900174;
UPDATE w.products SET created_at = now() WHERE id = 69400647;
UPDATE w.orders SET order_status = 'lost' WHERE id = 56900174;
-- The API's own message, with a data-exception SQLSTATE.
INSERT INTO w.products (title) VALUES ('缺少 handle');
-- Bodies over max_request_bytes (2 KB, as on the apidemo account) are never sent.
UPDATE w.products SET body_html = repeat('長', 1000) WHERE id = 69400647;

SET client_min_messages = warning;
DROP SCHEMA w CASCADE;
DROP SERVER wr CASCADE;
