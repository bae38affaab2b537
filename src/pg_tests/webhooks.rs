//! pg_tests: Webhooks: verification, deduplication, ordering, refusals, and the mirror backfill through the FDW.

#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::fixtures::*;
    use pgrx::prelude::*;

    fn sign_hex(body: &str, secret: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(body.as_bytes());
        m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn sign_b64(body: &str, secret: &str) -> String {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(body.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    }

    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    fn ingest(body: &str, event: &str, sig: &str) -> Option<i64> {
        Spi::get_one::<i64>(&format!("SELECT cyberbiz_ingest_webhook({}, {}, {}, 'wh.cyberbiz.co')", quote(body), quote(event), quote(sig))).unwrap()
    }

    fn webhook_server() {
        Spi::run("CREATE SERVER wh FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (shop_domain 'wh.cyberbiz.co')").unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER wh OPTIONS (api_token 'a.b.c', app_secret 'hook-secret')").unwrap();
    }

    /// A delivery's server is the receiver's pick (`webhook::pick_server`), over the servers and
    /// user mappings as they are now: the list is kept per session and dropped when either
    /// changes. A server without an app_secret, or for another shop, is never picked.
    #[pg_test]
    fn deliveries_find_their_server_as_servers_change() {
        Spi::run("CREATE SERVER whp FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (shop_domain 'whp-a.cyberbiz.co')").unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER whp OPTIONS (api_token 'a.b.c', app_secret 'whp-secret')").unwrap();
        // The pick, or its error (other tests' servers exist too: some may be picked instead).
        Spi::run(
            "CREATE FUNCTION pg_temp.pick(d text) RETURNS text LANGUAGE plpgsql AS $$
             BEGIN RETURN cyberbiz_fdw_webhook_server(d); EXCEPTION WHEN others THEN RETURN 'error: ' || SQLERRM; END $$",
        )
        .unwrap();
        let server = |d: &str| Spi::get_one::<String>(&format!("SELECT pg_temp.pick('{d}')")).unwrap().unwrap_or_default();
        assert_eq!(server("WHP-A.cyberbiz.co"), "whp");
        Spi::run("ALTER SERVER whp OPTIONS (SET shop_domain 'whp-b.cyberbiz.co')").unwrap();
        assert_eq!(server("whp-b.cyberbiz.co"), "whp", "a changed shop_domain counts at once");
        assert_ne!(server("whp-a.cyberbiz.co"), "whp", "not the server's shop any more");
        Spi::run("ALTER USER MAPPING FOR CURRENT_USER SERVER whp OPTIONS (DROP app_secret)").unwrap();
        assert_ne!(server("whp-b.cyberbiz.co"), "whp", "a server without an app_secret is never picked");
    }

    /// The same delivery for two shops is each one's: stored and applied for both (0.2.0's
    /// dedupe key omitted the server and gave the second shop the first one's event).
    #[pg_test]
    fn a_delivery_is_deduplicated_per_shop() {
        for (srv, domain) in [("whs1", "whs1.cyberbiz.co"), ("whs2", "whs2.cyberbiz.co")] {
            Spi::run(&format!("CREATE SERVER {srv} FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (shop_domain '{domain}')")).unwrap();
            Spi::run(&format!("CREATE USER MAPPING FOR CURRENT_USER SERVER {srv} OPTIONS (api_token 'a.b.c', app_secret 'shared-secret')")).unwrap();
        }
        let body = r#"{"id": 8801, "name": "陳先生", "updated_at": "2026-11-28 09:00:00"}"#;
        let sig = sign_hex(body, "shared-secret");
        let ingest_for = |domain: &str| {
            let sql = format!("SELECT cyberbiz_ingest_webhook({}, 'customers/update', {}, '{domain}')", quote(body), quote(&sig));
            Spi::get_one::<i64>(&sql).unwrap().unwrap()
        };
        let first = ingest_for("whs1.cyberbiz.co");
        let second = ingest_for("whs2.cyberbiz.co");
        assert_ne!(first, second, "the second shop's delivery is its own event");
        assert_eq!(ingest_for("whs2.cyberbiz.co"), second, "and its redelivery is recognised");
        let servers =
            Spi::get_one::<String>("SELECT string_agg(server::text, ',' ORDER BY server) FROM cyberbiz_webhook_events WHERE resource_id = 8801").unwrap();
        assert_eq!(servers.as_deref(), Some("whs1,whs2"));
    }

    #[pg_test]
    fn webhooks_are_verified_deduplicated_and_ordered() {
        webhook_server();
        let v1 = r#"{"id": 501, "order_number": 9001, "updated_at": "2026-11-28 10:00:00", "statuses": {"order_status": "open", "financial_status": "pending"}, "prices": {"total_price": 100.0}, "line_items": [{"id": 1, "sku": "A", "quantity": 2, "price": 50.0}]}"#;
        let v2 = r#"{"id": 501, "order_number": 9001, "updated_at": "2026-11-28 10:00:05", "statuses": {"order_status": "open", "financial_status": "paid"}, "prices": {"total_price": 100.0}, "line_items": [{"id": 1, "sku": "A", "quantity": 2, "price": 50.0}]}"#;
        // hex (production) and base64 (documented) signatures.
        let id2 = ingest(v2, "orders/paid", &sign_hex(v2, "hook-secret")).unwrap();
        let id1 = ingest(v1, "orders/create", &sign_b64(v1, "hook-secret")).unwrap();
        assert_ne!(id1, id2);
        // The older payload, arriving second, did not overwrite the newer one.
        assert_eq!(Spi::get_one::<String>("SELECT financial_status FROM cyberbiz_orders_mirror WHERE id = 501").unwrap().as_deref(), Some("paid"));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_order_line_items_mirror WHERE order_id = 501").unwrap(), Some(1));
        // A duplicate delivery returns the existing id and stores nothing.
        assert_eq!(ingest(v2, "orders/paid", &sign_hex(v2, "hook-secret")), Some(id2));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_webhook_events WHERE server = 'wh'").unwrap(), Some(2));
        // Customers, products, variants, deletes and uninstall.
        let c = r#"{"id": 77, "name": "林小姐", "email": "lin@example.com", "updated_at": "2026-11-28 09:00:00"}"#;
        ingest(c, "customers/create", &sign_hex(c, "hook-secret")).unwrap();
        let p = r#"{"id": 900, "title": "茶", "published": true, "updated_at": "2026-11-28 09:00:00", "product_variants": [{"id": 9001, "sku": "T-1", "price": 10.0, "inventory_quantity": 3}, {"id": 9002, "sku": "T-2", "price": 12.0}]}"#;
        ingest(p, "products/create", &sign_hex(p, "hook-secret")).unwrap();
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_product_variants_mirror WHERE product_id = 900").unwrap(), Some(2));
        let vd = r#"{"id": 9002, "product_id": 900, "updated_at": "2026-11-28 09:30:00"}"#;
        ingest(vd, "variants/delete", &sign_hex(vd, "hook-secret")).unwrap();
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_product_variants_mirror WHERE product_id = 900").unwrap(), Some(1));
        let pd = r#"{"id": 900, "title": "茶", "updated_at": "2026-11-28 10:00:00"}"#;
        ingest(pd, "products/delete", &sign_hex(pd, "hook-secret")).unwrap();
        assert_eq!(Spi::get_one::<bool>("SELECT deleted_at IS NOT NULL FROM cyberbiz_products_mirror WHERE id = 900").unwrap(), Some(true));
        let u = r#"{"app_uuid": "u-1", "app_version_uuid": "v-1", "app_client_id": "c-1"}"#;
        assert!(ingest(u, "apps/uninstall", &sign_hex(u, "hook-secret")).is_some());
        assert_eq!(Spi::get_one::<String>("SELECT resource FROM cyberbiz_webhook_events WHERE event = 'apps/uninstall'").unwrap().as_deref(), Some("app"));
        assert_eq!(Spi::get_one::<String>("SELECT name FROM cyberbiz_customers_mirror WHERE id = 77").unwrap().as_deref(), Some("林小姐"));
    }

    #[pg_test]
    fn bad_webhooks_are_rejected_and_nothing_is_stored() {
        webhook_server();
        let body = r#"{"id": 1, "updated_at": "2026-11-28 10:00:00"}"#;
        let good = sign_hex(body, "hook-secret");
        let tampered = r#"{"id": 2, "updated_at": "2026-11-28 10:00:00"}"#;
        let too_big = format!("{{\"id\": 1, \"pad\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
        let big_sig = sign_hex(&too_big, "hook-secret");
        let cases: Vec<(String, &str, String, &str, &str)> = vec![
            (body.into(), "orders/paid", sign_hex(body, "wrong-secret"), "INVALID_AUTHORIZATION", "signature does not match"),
            (tampered.into(), "orders/paid", good.clone(), "INVALID_AUTHORIZATION", "signature does not match"),
            (body.into(), "orders/paid", String::new(), "INVALID_AUTHORIZATION", "no X-Cyberbiz-Hmac-Sha256"),
            ("{not json".into(), "orders/paid", sign_hex("{not json", "hook-secret"), "INVALID_TEXT_REPRESENTATION", "not valid JSON"),
            (r#"{"name": "x"}"#.into(), "customers/update", sign_hex(r#"{"name": "x"}"#, "hook-secret"), "INVALID_PARAMETER_VALUE", "has no numeric id"),
            (too_big, "orders/paid", big_sig, "PROGRAM_LIMIT_EXCEEDED", "over the 2097152 byte limit"),
        ];
        for (b, event, sig, code, text) in cases {
            let sql = format!("SELECT cyberbiz_ingest_webhook({}, {}, {}, 'wh.cyberbiz.co')", quote(&b), quote(event), quote(&sig));
            let (c, m) = error_of(&sql).unwrap_or_else(|| panic!("{event} must fail"));
            assert!(c.contains(code) && m.contains(text), "{event}: {c}: {m}");
            assert!(!m.contains("hook-secret"));
        }
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_webhook_events WHERE server = 'wh'").unwrap(), Some(0));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_orders_mirror").unwrap(), Some(0));
    }

    /// A verified delivery is never lost for want of a known event: without X-Cyberbiz-Event
    /// (as the field saw for product and inventory deliveries), or with one this version does
    /// not know, it is taken for what its payload's shape says without doubt, else stored as
    /// unclassified (the view lists it), once per body. 0.4.0 refused both.
    #[pg_test]
    fn deliveries_without_a_known_event_are_kept() {
        webhook_server();
        let ingest_as = |b: &str, event: Option<&str>| {
            let e = event.map_or("NULL".to_string(), quote);
            Spi::get_one::<i64>(&format!("SELECT cyberbiz_ingest_webhook({}, {e}, {}, 'wh.cyberbiz.co')", quote(b), quote(&sign_hex(b, "hook-secret"))))
                .unwrap()
                .unwrap()
        };
        let order = r#"{"id": 4401, "order_number": 4401, "updated_at": "2026-11-28 10:00:00", "line_items": []}"#;
        ingest_as(order, None);
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_orders_mirror WHERE id = 4401").unwrap(), Some(1), "an order's shape: applied");
        let event = Spi::get_one::<String>("SELECT event FROM cyberbiz_webhook_events WHERE resource_id = 4401").unwrap();
        assert_eq!(event.as_deref(), Some("orders/update"));
        let odd = r#"{"id": 4402, "points": 10, "updated_at": "2026-11-28 10:00:00"}"#;
        let first = ingest_as(odd, Some("orders/exploded"));
        assert_eq!(ingest_as(odd, Some("orders/exploded")), first, "a redelivery is the stored event");
        let listed = Spi::get_one::<String>(&format!("SELECT event FROM cyberbiz_webhook_unclassified WHERE id = {first}")).unwrap();
        assert_eq!(listed.as_deref(), Some("orders/exploded"), "kept, unclassified");
        let bare = r#"{"note": "no id, no shape"}"#;
        let kept = ingest_as(bare, Some(""));
        assert_eq!(
            Spi::get_one::<i64>(&format!("SELECT count(*) FROM cyberbiz_webhook_unclassified WHERE id = {kept} AND resource_id IS NULL")).unwrap(),
            Some(1)
        );
    }

    #[pg_test]
    fn backfill_fills_the_mirror_through_the_fdw() {
        connect("bf", "main", "token", "requests_per_second '1000'");
        assert_eq!(Spi::get_one::<i64>("SELECT cyberbiz_backfill('bf.orders')").unwrap(), Some(250));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_orders_mirror").unwrap(), Some(250));
        let same = Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_orders_mirror m JOIN (SELECT id, raw FROM (SELECT * FROM bf.orders OFFSET 0) o) o USING (id) WHERE m.payload = o.raw").unwrap();
        assert_eq!(same, Some(250));
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_order_line_items_mirror").unwrap(),
            Spi::get_one::<i64>("SELECT count(*) FROM (SELECT * FROM bf.order_line_items OFFSET 0) x").unwrap()
        );
        // Incremental: the second run reads only rows updated since the newest seen, and changes nothing.
        assert_eq!(Spi::get_one::<i64>("SELECT cyberbiz_backfill('bf.orders')").unwrap(), Some(0));
        assert_eq!(Spi::get_one::<i64>("SELECT cyberbiz_backfill('bf.customers')").unwrap(), Some(120));
    }
}
