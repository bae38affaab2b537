-- Webhook ingestion: the events table and cyberbiz_ingest_webhook, which verifies, stores and
-- applies a delivery (cyberbiz_fdw_verify_webhook, cyberbiz_fdw_webhook_kind,
-- cyberbiz_fdw_webhook_resource and cyberbiz_fdw_webhook_server come from Rust, declared before
-- this file by pgrx). The 0.1.0 mirrors are sql/mirrors.sql.
-- Every accepted delivery, once per server. Deliveries carry no id: (event, resource id,
-- payload updated_at) identifies one; events without an id (apps/uninstall) use the body's
-- hash. The same body may come for two shops: it is each one's delivery.
CREATE TABLE cyberbiz_webhook_events (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    event text NOT NULL,
    shop_domain text,
    server name NOT NULL,
    resource text NOT NULL,
    resource_id bigint,
    resource_updated_at timestamptz,
    payload jsonb COMPRESSION lz4 NOT NULL,
    body text COMPRESSION lz4 NOT NULL,
    dedupe_key text NOT NULL,
    UNIQUE (server, dedupe_key)
);
COMMENT ON TABLE cyberbiz_webhook_events IS 'CYBERBIZ webhook deliveries accepted by cyberbiz_ingest_webhook (verified, deduplicated)';
-- An event is about one thing.
ALTER FUNCTION cyberbiz_fdw_webhook_kind(text) ROWS 1;
-- pg_dump keeps the data of this extension table, and where its id sequence stands (without
-- the sequence, a restored database's first ingest collides with event 1).
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_webhook_events', '');
SELECT pg_catalog.pg_extension_config_dump('cyberbiz_webhook_events_id_seq', '');

-- Taipei wall-clock text -> timestamptz (NULL for NULL or empty). STABLE, not IMMUTABLE: the
-- text -> timestamp cast it uses is STABLE (it reads DateStyle and the zone database).
CREATE FUNCTION cyberbiz_taipei(t text) RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN t IS NULL OR t = '' THEN NULL ELSE t::timestamp AT TIME ZONE 'Asia/Taipei' END $$;

-- Verified deliveries no event could be found for: kept, applied to nothing. Look at them, and
-- refresh what they name (CALL cyberbiz_sync) if they matter.
CREATE VIEW cyberbiz_webhook_unclassified AS
SELECT e.id, e.received_at, e.event, e.shop_domain, e.server, e.resource_id, e.payload
FROM cyberbiz_webhook_events e WHERE e.resource = 'unclassified';
COMMENT ON VIEW cyberbiz_webhook_unclassified IS 'CYBERBIZ webhook deliveries stored without a known event (no or an unknown X-Cyberbiz-Event, and a payload of no clear shape)';

-- Verifies, stores and applies one webhook delivery; returns the event's id (the existing id
-- for a duplicate delivery, which stores nothing new). Pass the raw body text exactly as
-- received (never through json/jsonb: that reorders keys and breaks the signature), the
-- X-Cyberbiz-Event, X-Cyberbiz-Hmac-Sha256 and X-Cyberbiz-Domain header values. The server
-- whose user mapping holds the app_secret is `server`, else the one the receiver would pick
-- (cyberbiz_fdw_webhook_server: the server whose shop_domain is the delivery's, else the only
-- server with an app_secret, unless it is for another shop). The events table's `resource`
-- is the 0.1.0 kind name (products_deleted for products/delete).
-- JIT is off inside: every statement here is small, and a session's own jit settings (a BI
-- role's jit_above_cost = 0, say) must not make each delivery compile code.
CREATE FUNCTION cyberbiz_ingest_webhook(body text, event text, signature text, shop_domain text DEFAULT NULL, server name DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
    srv name := server;
    ev text;
    k record;
    p jsonb;
    kind text;
    rid bigint;
    upd timestamptz;
    key text;
    new_id bigint;
BEGIN
    IF body IS NULL THEN
        RAISE EXCEPTION 'webhook body is required' USING ERRCODE = '22004';
    END IF;
    IF srv IS NULL THEN
        srv := cyberbiz_fdw_webhook_server(cyberbiz_ingest_webhook.shop_domain);
    END IF;
    PERFORM cyberbiz_fdw_verify_webhook(body, signature, srv);
    BEGIN
        p := body::jsonb;
    EXCEPTION WHEN others THEN
        RAISE EXCEPTION 'webhook body is not valid JSON: %', SQLERRM USING ERRCODE = '22P02';
    END;
    IF jsonb_typeof(p) <> 'object' THEN
        RAISE EXCEPTION 'webhook body is a JSON %, not an object', jsonb_typeof(p) USING ERRCODE = '22023';
    END IF;
    -- The event it is: the header when CYBERBIZ documents it, else what the payload's shape says
    -- without doubt, else none: stored as unclassified (cyberbiz_webhook_unclassified), applied
    -- to nothing, never refused (the platform would drop it after its resends).
    ev := cyberbiz_fdw_webhook_event(nullif(event, ''), p);
    IF ev IS NULL THEN
        kind := 'unclassified';
        rid := CASE WHEN (p->>'id') ~ '^-?[0-9]{1,18}$' THEN (p->>'id')::bigint END;
    ELSE
        SELECT * INTO STRICT k FROM cyberbiz_fdw_webhook_kind(ev);
        kind := cyberbiz_fdw_webhook_resource(ev);
        IF jsonb_typeof(p->'id') = 'number' THEN
            rid := (p->>'id')::bigint;
        ELSIF k.resource <> 'app' THEN
            RAISE EXCEPTION 'webhook payload for % has no numeric id', ev USING ERRCODE = '22023';
        END IF;
        BEGIN
            upd := cyberbiz_taipei(p->>'updated_at');
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'webhook payload has an unreadable updated_at: %', p->>'updated_at' USING ERRCODE = '22007';
        END;
    END IF;
    -- A redelivery is the same body again; two changes of one object within one second (the
    -- resolution of updated_at) are two bodies, both stored and applied.
    key := coalesce(ev, event, '') || '|' || coalesce(rid::text, '') || '|' || coalesce(p->>'updated_at', '') || '|' || md5(body);
    INSERT INTO cyberbiz_webhook_events (event, shop_domain, server, resource, resource_id, resource_updated_at, payload, body, dedupe_key)
    VALUES (coalesce(ev, event, ''), cyberbiz_ingest_webhook.shop_domain, srv, kind, rid, upd, p, body, key)
    ON CONFLICT ON CONSTRAINT cyberbiz_webhook_events_server_dedupe_key_key DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN
        SELECT e.id INTO new_id FROM cyberbiz_webhook_events e WHERE e.server = srv AND e.dedupe_key = key;
        RETURN new_id;
    END IF;
    IF ev IS NULL THEN
        RETURN new_id;
    END IF;
    -- The server's replica when it has one (sql/replica.sql), else the 0.1.0 mirrors
    -- (sql/mirrors.sql, which take the 0.1.0 kind name).
    IF NOT cyberbiz_replica_apply_event(srv, k.resource, k.deletes, p, k.verb = 'create') AND NOT EXISTS (SELECT 1 FROM cyberbiz_replicas r WHERE r.server = srv) THEN
        PERFORM cyberbiz_mirror_apply(kind, p, k.verb = 'create');
    END IF;
    RETURN new_id;
END
$fn$;
