-- Reading: IMPORT FOREIGN SCHEMA, typed rows from the sandbox (seed 1, "now" 2026-11-28 12:00
-- Taipei), the request each scan makes in EXPLAIN, and the errors of unreadable tables.
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SELECT pg_temp.sandbox_server('sandbox', 'cyberbiz_test.api_url'), pg_temp.sandbox_server('slow', 'cyberbiz_test.slow_url');
CREATE SCHEMA cyberbiz;
IMPORT FOREIGN SCHEMA cyberbiz FROM SERVER sandbox INTO cyberbiz;

-- Every resource is a table, with comments (English and the platform's zh-TW term).
SELECT c.relname AS table_name, obj_description(c.oid) AS comment
FROM pg_class c WHERE c.relnamespace = 'cyberbiz'::regnamespace ORDER BY 1;
\d cyberbiz.orders
SELECT col_description('cyberbiz.orders'::regclass, 7) AS financial_status_comment;

-- The request each scan will make; plain EXPLAIN sends none.
EXPLAIN (COSTS OFF) SELECT * FROM cyberbiz.orders;
EXPLAIN (COSTS OFF) SELECT * FROM cyberbiz.orders WHERE id = 56900174;
EXPLAIN (COSTS OFF) SELECT * FROM cyberbiz.orders WHERE id IN (56900174, 56900356);
EXPLAIN (COSTS OFF) SELECT * FROM cyberbiz.order_line_items WHERE order_id = 56900174;
EXPLAIN (COSTS OFF) SELECT * FROM cyberbiz.vip_groups;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cyberbiz.einvoices WHERE id = 7000001;

-- EXPLAIN ANALYZE adds what the scan did (the limiter's wait varies, so it is masked here).
CREATE FUNCTION pg_temp.explain_analyze(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE l text;
BEGIN
  FOR l IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
    RETURN NEXT regexp_replace(l, 'Limiter Wait: \d+', 'Limiter Wait: N');
  END LOOP;
END $$;
SELECT pg_temp.explain_analyze('SELECT count(*) FROM cyberbiz.products');
SELECT pg_temp.explain_analyze('SELECT * FROM cyberbiz.orders WHERE id IN (56900174, 1, 56900356)');

-- Rows.
SELECT id, order_number, order_name, created_at, order_status, financial_status, total_price, customer_name
FROM cyberbiz.orders ORDER BY id LIMIT 5;
SELECT financial_status, count(*), sum(total_price) FROM cyberbiz.orders GROUP BY 1 ORDER BY 1;
SELECT id, customer_id, customer_email, shipping_name, payment_name, jsonb_array_length(line_items) AS lines,
       einvoice->>'invoice_no' AS invoice_no, delivery_date, closed_at, raw->>'token' AS token
FROM cyberbiz.orders WHERE id = 56900174 \gx
SELECT order_id, title, variant_title, quantity, price FROM cyberbiz.order_line_items WHERE order_id = 56900174 ORDER BY id;
SELECT id, order_id, invoice_no, invoice_at FROM cyberbiz.einvoices WHERE id IN (7000001, 7000002) ORDER BY id;
SELECT name, currency, language FROM cyberbiz.shop;
SELECT name, mime_type FROM cyberbiz.product_feeds ORDER BY name;
SELECT id, name, customer_tags FROM cyberbiz.vip_groups ORDER BY id;
SELECT count(*) AS variants, count(DISTINCT product_id) AS products, sum(inventory_quantity) AS stock FROM cyberbiz.product_variants;

-- A join of line items with a local warehouse table.
CREATE TEMP TABLE warehouse (sku text PRIMARY KEY, on_hand int);
INSERT INTO warehouse SELECT sku, 100 FROM cyberbiz.product_variants ORDER BY id LIMIT 20;
SELECT count(*) AS lines, sum(li.quantity) AS units
FROM cyberbiz.order_line_items li JOIN warehouse w ON w.sku = li.sku;

-- Unreadable tables fail before any request, saying what to do.
SELECT * FROM cyberbiz.einvoices;
SELECT * FROM cyberbiz.edms;
SELECT count(*) AS no_such_order FROM cyberbiz.orders o WHERE o.id = 1;

-- A value that does not fit its column names table, column, row id and value.
CREATE FOREIGN TABLE public.odd_orders (id bigint, order_name integer) SERVER sandbox OPTIONS (resource 'orders');
SELECT * FROM public.odd_orders;

-- statement_timeout stops a scan that waits on a slow API.
CREATE FOREIGN TABLE public.slow_orders (id bigint) SERVER slow OPTIONS (resource 'orders');
SET statement_timeout = '1s';
SELECT count(*) FROM public.slow_orders;
RESET statement_timeout;

SET client_min_messages = warning;
DROP SCHEMA cyberbiz CASCADE;
DROP SERVER sandbox CASCADE;
DROP SERVER slow CASCADE;
