-- The 0.1.0 mirrors: one table per resource kept by the webhooks of a server without a replica,
-- filled by cyberbiz_backfill through the FDW. Superseded by the replica (sql/replica.sql);
-- kept with their rows for servers that have none, and to be removed in 0.5.0 (their rows
-- then go to a replica, or stay in tables the upgrade leaves behind). They take the 0.1.0 kind
-- name of an event (cyberbiz_fdw_webhook_resource: products_deleted for products/delete).
-- Local copies kept by webhooks and cyberbiz_backfill: one row per resource, newest payload wins.
CREATE TABLE cyberbiz_orders_mirror (
    id bigint PRIMARY KEY,
    order_number bigint,
    created_at timestamptz,
    updated_at timestamptz,
    order_status text,
    financial_status text,
    fulfillment_status text,
    total_price numeric,
    deleted_at timestamptz,
    payload jsonb COMPRESSION lz4 NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now()
);
-- Line items as rows (the full objects stay in the order's payload).
CREATE TABLE cyberbiz_order_line_items_mirror (
    order_id bigint NOT NULL REFERENCES cyberbiz_orders_mirror (id) ON DELETE CASCADE,
    id bigint NOT NULL,
    product_id bigint,
    product_variant_id bigint,
    sku text,
    title text,
    quantity integer,
    price numeric,
    PRIMARY KEY (order_id, id)
);
CREATE TABLE cyberbiz_customers_mirror (
    id bigint PRIMARY KEY,
    name text,
    email text,
    mobile text,
    updated_at timestamptz,
    deleted_at timestamptz,
    payload jsonb COMPRESSION lz4 NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cyberbiz_products_mirror (
    id bigint PRIMARY KEY,
    title text,
    published boolean,
    updated_at timestamptz,
    deleted_at timestamptz,
    payload jsonb COMPRESSION lz4 NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cyberbiz_product_variants_mirror (
    id bigint PRIMARY KEY,
    product_id bigint,
    sku text,
    price numeric,
    inventory_quantity integer,
    updated_at timestamptz,
    payload jsonb NOT NULL
);
CREATE TABLE cyberbiz_backfill_state (
    source regclass PRIMARY KEY,
    resource text NOT NULL,
    last_updated_at timestamptz,
    last_run_at timestamptz NOT NULL
);
-- pg_dump keeps the data of these extension tables.
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_orders_mirror', '');
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_order_line_items_mirror', '');
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_customers_mirror', '');
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_products_mirror', '');
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_product_variants_mirror', '');
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_backfill_state', '');

-- Applies one payload to the mirrors. An older payload never overwrites a newer one; at equal
-- updated_at a create event does not overwrite (creates come first in the platform's order).
-- Identical payloads change nothing. Returns whether the mirror changed.
CREATE FUNCTION cyberbiz_mirror_apply(kind text, p jsonb, is_create boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    rid bigint := (p->>'id')::bigint;
    upd timestamptz := cyberbiz_taipei(p->>'updated_at');
    applied boolean := false;
BEGIN
    IF kind = 'orders' THEN
        INSERT INTO cyberbiz_orders_mirror AS m (id, order_number, created_at, updated_at, order_status, financial_status, fulfillment_status, total_price, payload)
        VALUES (rid, (p->>'order_number')::bigint, cyberbiz_taipei(p->>'created_at'), upd, p->'statuses'->>'order_status', p->'statuses'->>'financial_status',
                p->'statuses'->>'fulfillment_status', (p->'prices'->>'total_price')::numeric, p)
        ON CONFLICT (id) DO UPDATE SET order_number = excluded.order_number, created_at = excluded.created_at, updated_at = excluded.updated_at,
            order_status = excluded.order_status, financial_status = excluded.financial_status, fulfillment_status = excluded.fulfillment_status,
            total_price = excluded.total_price, payload = excluded.payload, deleted_at = NULL, synced_at = now()
        WHERE m.payload IS DISTINCT FROM excluded.payload
          AND (m.updated_at IS NULL OR excluded.updated_at > m.updated_at OR (excluded.updated_at = m.updated_at AND NOT is_create))
        RETURNING true INTO applied;
        IF applied THEN
            DELETE FROM cyberbiz_order_line_items_mirror WHERE order_id = rid;
            INSERT INTO cyberbiz_order_line_items_mirror (order_id, id, product_id, product_variant_id, sku, title, quantity, price)
            SELECT rid, (li->>'id')::bigint, (li->>'product_id')::bigint, (li->>'product_variant_id')::bigint, li->>'sku', li->>'title',
                   (li->>'quantity')::integer, (li->>'price')::numeric
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p->'line_items') = 'array' THEN p->'line_items' ELSE '[]' END) li
            WHERE li ? 'id'
            ON CONFLICT DO NOTHING;
        END IF;
    ELSIF kind = 'customers' THEN
        INSERT INTO cyberbiz_customers_mirror AS m (id, name, email, mobile, updated_at, payload)
        VALUES (rid, p->>'name', p->>'email', p->>'mobile', upd, p)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, mobile = excluded.mobile, updated_at = excluded.updated_at,
            payload = excluded.payload, deleted_at = NULL, synced_at = now()
        WHERE m.payload IS DISTINCT FROM excluded.payload
          AND (m.updated_at IS NULL OR excluded.updated_at > m.updated_at OR (excluded.updated_at = m.updated_at AND NOT is_create))
        RETURNING true INTO applied;
    ELSIF kind IN ('products', 'products_deleted') THEN
        INSERT INTO cyberbiz_products_mirror AS m (id, title, published, updated_at, deleted_at, payload)
        VALUES (rid, p->>'title', (p->>'published')::boolean, upd, CASE WHEN kind = 'products_deleted' THEN coalesce(upd, now()) END, p)
        ON CONFLICT (id) DO UPDATE SET title = excluded.title, published = excluded.published, updated_at = excluded.updated_at,
            deleted_at = excluded.deleted_at, payload = excluded.payload, synced_at = now()
        WHERE (m.payload IS DISTINCT FROM excluded.payload OR m.deleted_at IS DISTINCT FROM excluded.deleted_at)
          AND (m.updated_at IS NULL OR excluded.updated_at IS NULL OR excluded.updated_at > m.updated_at
               OR (excluded.updated_at = m.updated_at AND (NOT is_create OR kind = 'products_deleted')))
        RETURNING true INTO applied;
        IF applied AND kind = 'products' AND jsonb_typeof(p->'product_variants') = 'array' THEN
            DELETE FROM cyberbiz_product_variants_mirror WHERE product_id = rid
              AND id NOT IN (SELECT (v->>'id')::bigint FROM jsonb_array_elements(p->'product_variants') v);
            PERFORM cyberbiz_mirror_apply('product_variants', v || jsonb_build_object('product_id', rid), is_create)
            FROM jsonb_array_elements(p->'product_variants') v WHERE v ? 'id';
        END IF;
    ELSIF kind = 'product_variants' THEN
        INSERT INTO cyberbiz_product_variants_mirror AS m (id, product_id, sku, price, inventory_quantity, updated_at, payload)
        VALUES (rid, (p->>'product_id')::bigint, p->>'sku', (p->>'price')::numeric, (p->>'inventory_quantity')::integer, upd, p)
        ON CONFLICT (id) DO UPDATE SET product_id = excluded.product_id, sku = excluded.sku, price = excluded.price,
            inventory_quantity = excluded.inventory_quantity, updated_at = excluded.updated_at, payload = excluded.payload
        WHERE m.payload IS DISTINCT FROM excluded.payload
          AND (m.updated_at IS NULL OR excluded.updated_at > m.updated_at OR (excluded.updated_at = m.updated_at AND NOT is_create))
        RETURNING true INTO applied;
    ELSIF kind = 'product_variants_deleted' THEN
        DELETE FROM cyberbiz_product_variants_mirror m WHERE m.id = rid AND (m.updated_at IS NULL OR upd IS NULL OR m.updated_at <= upd);
        applied := FOUND;
    END IF;
    RETURN coalesce(applied, false);
END
$fn$;

-- Fills or refreshes a mirror through the FDW from a foreign table of orders, customers or
-- products (incrementally: rows updated since the last run, with the updated_at pushed down
-- where the API allows). Runs at the limiter's pace and can be cancelled.
CREATE FUNCTION cyberbiz_backfill(foreign_table regclass) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    res text;
    since timestamptz;
    newest timestamptz;
    n bigint := 0;
    r record;
BEGIN
    res := cyberbiz_fdw_table_resource(foreign_table);
    IF res IS NULL OR res NOT IN ('orders', 'customers', 'products') THEN
        RAISE EXCEPTION '% is not a CYBERBIZ foreign table of orders, customers or products', foreign_table USING ERRCODE = '22023';
    END IF;
    SELECT st.last_updated_at INTO since FROM cyberbiz_backfill_state st WHERE st.source = foreign_table;
    FOR r IN EXECUTE CASE WHEN since IS NULL THEN format('SELECT raw FROM %s', foreign_table)
                          ELSE format('SELECT raw FROM %s WHERE updated_at >= $1', foreign_table) END USING since LOOP
        IF cyberbiz_mirror_apply(res, r.raw, false) THEN
            n := n + 1;
        END IF;
        newest := greatest(newest, cyberbiz_taipei(r.raw->>'updated_at'));
    END LOOP;
    INSERT INTO cyberbiz_backfill_state AS s (source, resource, last_updated_at, last_run_at)
    VALUES (foreign_table, res, coalesce(newest, since), now())
    ON CONFLICT (source) DO UPDATE SET last_updated_at = greatest(s.last_updated_at, excluded.last_updated_at), last_run_at = now();
    RETURN n;
END
$fn$;
