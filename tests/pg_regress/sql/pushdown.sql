-- Pushdown: which WHERE clauses and LIMITs become request parameters (EXPLAIN VERBOSE), and
-- that results stay those of a full scan.
\getenv abs_srcdir PG_ABS_SRCDIR
\set setup :abs_srcdir '/sql/setup.psql'
\i :setup
SELECT pg_temp.sandbox_server('pd', 'cyberbiz_test.api_url');
CREATE SCHEMA cb;
IMPORT FOREIGN SCHEMA cyberbiz FROM SERVER pd INTO cb;

-- ids and lookups
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE id = 56900174;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE id IN (56900174, 56900356, 56900553);
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE order_number = 1001;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE order_number IN (1001, 1002);
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.customers WHERE id IN (23300010, 23300020);
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.customers WHERE email = 'customer7@example.com';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.customers WHERE mobile = '0910000010';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.einvoices WHERE invoice_no = 'CD09197910';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.order_line_items WHERE order_id = 56900174;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.product_variants WHERE product_id IN (69400647, 69400876);

-- time ranges in Taipei local time (inclusive; strict and sub-second bounds made exact)
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE created_at >= '2026-11-21' AND created_at < '2026-11-28';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE created_at > '2026-11-21 00:00:00.5+08';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE updated_at BETWEEN '2026-11-01 00:00:00+00' AND '2026-11-02 00:00:00+00';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE closed_at <= '2026-10-01' AND cancelled_at IS NULL;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE refund_at >= '2026-01-01';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.customers WHERE updated_at >= '2026-06-01';

-- statuses as comma lists; several quals on one column intersect
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE financial_status IN ('paid', 'cod') AND created_at >= '2026-11-21';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE order_status = 'open' AND fulfillment_status IN ('unshipped', 'preparing') AND return_status = 'no_need';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE financial_status IN ('paid', 'cod') AND financial_status IN ('cod', 'pending');
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE order_status IN ('open', 'closed') AND order_status = 'cancelled';
SELECT count(*) AS none FROM cb.orders WHERE order_status IN ('open', 'closed') AND order_status = 'cancelled';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.stock_invoices WHERE status = 'done' AND created_at >= '2026-10-20';
-- tags (jsonb ? / ?|) and data_source (POS orders have a pos_shop_id)
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE tags ? 'VIP' AND pos_shop_id IS NULL;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE tags ?| array['VIP', '急件'] AND pos_shop_id IS NOT NULL;
SELECT (SELECT count(*) FROM cb.orders WHERE tags ? 'VIP' AND pos_shop_id IS NULL)
     = (SELECT count(*) FROM (SELECT * FROM cb.orders OFFSET 0) o WHERE tags ? 'VIP' AND pos_shop_id IS NULL) AS same_count;

-- LIMIT: pushed only when every qual is pushed and nothing stands between scan and LIMIT
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders LIMIT 10;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE financial_status = 'paid' LIMIT 5 OFFSET 20;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE note IS NULL LIMIT 10;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders ORDER BY id LIMIT 10;
EXPLAIN (COSTS OFF) SELECT count(*) FROM cb.orders LIMIT 10;

-- parameters: prepared statements (generic plans) and stable expressions
SET plan_cache_mode = force_generic_plan;
PREPARE by_ids(bigint[]) AS SELECT id FROM cb.orders WHERE id = ANY($1);
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE by_ids(ARRAY[56900174, 56900356]);
EXECUTE by_ids(ARRAY[56900174, 56900356]);
PREPARE since(timestamptz) AS SELECT count(*) FROM cb.orders WHERE created_at >= $1 AND financial_status = 'paid';
EXPLAIN (COSTS OFF) EXECUTE since('2026-11-01');
EXECUTE since('2026-11-01');
RESET plan_cache_mode;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE created_at >= now() - interval '7 days';

-- a join from a small local table: per-key GETs in a nested loop
CREATE TEMP TABLE wanted (order_id bigint);
INSERT INTO wanted VALUES (56900174), (56900356), (56900553), (1);
ANALYZE wanted;
EXPLAIN (COSTS OFF) SELECT o.order_number FROM wanted w JOIN cb.orders o ON o.id = w.order_id;
SELECT o.order_number FROM wanted w JOIN cb.orders o ON o.id = w.order_id ORDER BY 1;
EXPLAIN (COSTS OFF) SELECT li.title FROM wanted w JOIN cb.order_line_items li ON li.order_id = w.order_id;

-- results equal those of a full scan (the subquery's OFFSET 0 keeps quals out of the scan)
SELECT (SELECT count(*) FROM cb.orders WHERE financial_status IN ('paid', 'cod') AND created_at >= '2026-11-01' AND created_at < '2026-11-20 12:00:00.5')
     = (SELECT count(*) FROM (SELECT * FROM cb.orders OFFSET 0) o WHERE financial_status IN ('paid', 'cod') AND created_at >= '2026-11-01' AND created_at < '2026-11-20 12:00:00.5') AS same_count;
SELECT (SELECT array_agg(id ORDER BY id) FROM cb.orders WHERE order_number IN (1001, 1005, 99999))
     = (SELECT array_agg(id ORDER BY id) FROM (SELECT * FROM cb.orders OFFSET 0) o WHERE order_number IN (1001, 1005, 99999)) AS same_ids;
SELECT count(*) AS ten FROM (SELECT id FROM cb.orders LIMIT 10) x;

-- what is never pushed: a user-defined "=", a nondeterministic collation, a list value holding
-- the separator, an infinite bound; each stays a local filter (and keeps LIMIT local)
CREATE FUNCTION cb.loose_eq(text, text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN lower($1) = lower($2); END $$;
CREATE OPERATOR cb.= (LEFTARG = text, RIGHTARG = text, FUNCTION = cb.loose_eq);
CREATE COLLATION cb.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE order_status OPERATOR(cb.=) 'OPEN' LIMIT 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE order_status = 'OPEN' COLLATE cb.ci;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE financial_status IN ('paid', 'x,cod') LIMIT 10;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM cb.orders WHERE created_at < 'infinity' AND created_at >= '2026-11-01';
SELECT count(*) AS open_any_case FROM cb.orders WHERE order_status = 'OPEN' COLLATE cb.ci;
SELECT count(*) AS all_finite FROM cb.orders WHERE created_at < 'infinity';
SELECT count(*) AS ten_paid FROM (SELECT id FROM cb.orders WHERE financial_status IN ('paid', 'x,cod') LIMIT 10) x;

-- a correlated subquery rescans with new pushed values: each run is its own list (no warning
-- that the shop changed)
SELECT s, (SELECT count(*) FROM cb.orders o WHERE o.financial_status = v.s) AS orders FROM (VALUES ('paid'), ('cod'), ('refunded')) v(s);

SET client_min_messages = warning;
DROP SCHEMA cb CASCADE;
DROP SERVER pd CASCADE;
