//! pg_tests: Writes: INSERT/UPDATE/DELETE against the API, RETURNING, refusals before any request, partial writes, body limits, lost POSTs.

#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::fixtures::*;
    use pgrx::prelude::*;

    fn methods_of(which: &str) -> Vec<String> {
        request_log(which).iter().map(|e| format!("{} {}", e["method"].as_str().unwrap_or(""), e["path"].as_str().unwrap_or(""))).collect()
    }

    #[pg_test]
    fn writes_change_the_shop_and_return_what_the_api_answered() {
        connect("w1", "writes", "token", "");
        // INSERT -> POST, RETURNING the id and timestamps the server set.
        let (id, created) = Spi::get_two::<i64, String>(
            "INSERT INTO w1.products (title, published, price, tags, raw) VALUES ('新品 茶包', true, 120, '[\"熱銷\"]', '{\"handle\": \"new-tea\"}') RETURNING id, created_at::text",
        )
        .unwrap();
        let id = id.unwrap();
        assert!(created.is_some());
        let (title, tags) = Spi::get_two::<String, pgrx::JsonB>(&format!("SELECT title, tags FROM w1.products WHERE id = {id}")).unwrap();
        assert_eq!(title.as_deref(), Some("新品 茶包"));
        assert_eq!(tags.unwrap().0, serde_json::json!(["熱銷"]), "tags travel as tags_text");
        // UPDATE -> PUT with only the changed columns.
        clear_log("writes");
        let published = Spi::get_one::<bool>(&format!("UPDATE w1.products SET published = false WHERE id = {id} RETURNING published")).unwrap();
        assert_eq!(published, Some(false));
        assert_eq!(methods_of("writes").iter().filter(|m| m.starts_with("PUT")).cloned().collect::<Vec<_>>(), vec![format!("PUT /v1/products/{id}")]);
        assert_eq!(Spi::get_one::<bool>(&format!("SELECT published FROM w1.products WHERE id = {id}")).unwrap(), Some(false));
        // Variants are written under their product.
        let vid = Spi::get_one::<i64>(&format!("SELECT id FROM w1.product_variants WHERE product_id = {id}")).unwrap().unwrap();
        Spi::run(&format!("UPDATE w1.product_variants SET price = 345, inventory_quantity = 7 WHERE product_id = {id} AND id = {vid}")).unwrap();
        let v = Spi::get_two::<pgrx::AnyNumeric, i32>(&format!("SELECT price, inventory_quantity FROM w1.product_variants WHERE product_id = {id}")).unwrap();
        assert_eq!((v.0.map(|n| n.to_string()), v.1), (Some("345.0".into()), Some(7)));
        let new_vid =
            Spi::get_one::<i64>(&format!("INSERT INTO w1.product_variants (product_id, name, price, sku) VALUES ({id}, '大包', 200, 'SKU-NEW') RETURNING id"))
                .unwrap()
                .unwrap();
        Spi::run(&format!("DELETE FROM w1.product_variants WHERE product_id = {id} AND id = {new_vid}")).unwrap();
        assert_eq!(Spi::get_one::<i64>(&format!("SELECT count(*) FROM w1.product_variants WHERE product_id = {id}")).unwrap(), Some(1));
        // DELETE -> DELETE.
        let gone = Spi::get_one::<i64>(&format!("DELETE FROM w1.products WHERE id = {id} RETURNING id")).unwrap();
        assert_eq!(gone, Some(id));
        assert_eq!(Spi::get_one::<i64>(&format!("SELECT count(*) FROM w1.products WHERE id = {id}")).unwrap(), Some(0));
        // Orders: notes through PUT, statuses through their action endpoints.
        let oid = Spi::get_one::<i64>("SELECT id FROM w1.orders WHERE order_status = 'open' LIMIT 1").unwrap().unwrap();
        clear_log("writes");
        Spi::run(&format!("UPDATE w1.orders SET note = '改到週五', order_status = 'cancelled' WHERE id = {oid}")).unwrap();
        let puts: Vec<String> = methods_of("writes").into_iter().filter(|m| m.starts_with("PUT")).collect();
        assert_eq!(puts, vec![format!("PUT /v1/orders/{oid}/cancelled"), format!("PUT /v1/orders/{oid}")]);
        let o = Spi::get_two::<String, String>(&format!("SELECT note, order_status FROM w1.orders WHERE id = {oid}")).unwrap();
        assert_eq!(o, (Some("改到週五".into()), Some("cancelled".into())));
        // Collections and coupons.
        let cid =
            Spi::get_one::<i64>("INSERT INTO w1.custom_collections (title, handle, published) VALUES ('秋季', 'autumn', true) RETURNING id").unwrap().unwrap();
        Spi::run(&format!("UPDATE w1.custom_collections SET title = '秋冬' WHERE id = {cid}")).unwrap();
        assert_eq!(Spi::get_one::<String>(&format!("SELECT title FROM w1.custom_collections WHERE id = {cid}")).unwrap().as_deref(), Some("秋冬"));
        Spi::run(&format!("DELETE FROM w1.custom_collections WHERE id = {cid}")).unwrap();
        let coupon = Spi::get_one::<i64>("INSERT INTO w1.shop_coupons (title, code, coupon_type, order_price_threshold, usage_limit, raw) VALUES ('雙十一', 'DOUBLE11', 'price', 0, 100, '{\"value\": 50, \"concurrently_apply\": true}') RETURNING id").unwrap();
        assert!(coupon.is_some());
        Spi::run("UPDATE w1.customers SET note = 'VIP 客戶' WHERE id = (SELECT min(id) FROM w1.customers)").unwrap();
        assert_eq!(Spi::get_one::<String>("SELECT note FROM w1.customers WHERE id = (SELECT min(id) FROM w1.customers)").unwrap().as_deref(), Some("VIP 客戶"));
    }

    #[pg_test]
    fn every_writable_resource_round_trips() {
        connect("w7", "round_trips", "token", "");
        // (table, INSERT columns and values, the column an UPDATE changes, its new value)
        let cases = [
            ("custom_collections", "title, handle, published", "'c', 'c', true", "title", "'c2'"),
            ("smart_collections", "title, handle, published", "'s', 's', true", "title", "'s2'"),
            ("inventory_sync_groups", "title, inventory_quantity", "'g', 5", "title", "'g2'"),
            ("discounts", "name, threshold", "'d', 100", "name", "'d2'"),
            ("add_buy_collections", "title, handle, price", "'a', 'a', 99", "title", "'a2'"),
            ("special_collections", "title, handle, published", "'p', 'p', true", "title", "'p2'"),
            ("branch_stores", "name, store_no", "'b', 'B9'", "name", "'b2'"),
            (
                "shop_coupons",
                "title, code, coupon_type, order_price_threshold, usage_limit, raw",
                "'k', 'K1', 'price', 0, 5, '{\"value\": 10, \"concurrently_apply\": true}'",
                "title",
                "'k2'",
            ),
        ];
        for (table, cols, vals, col, new) in cases {
            let id = Spi::get_one::<i64>(&format!("INSERT INTO w7.{table} ({cols}) VALUES ({vals}) RETURNING id"))
                .unwrap()
                .unwrap_or_else(|| panic!("{table}: no id"));
            Spi::run(&format!("UPDATE w7.{table} SET {col} = {new} WHERE id = {id}")).unwrap();
            let now = Spi::get_one::<String>(&format!("SELECT {col}::text FROM w7.{table} WHERE id = {id}")).unwrap();
            assert_eq!(now.as_deref(), Some(new.trim_matches('\'')), "{table}");
            Spi::run(&format!("DELETE FROM w7.{table} WHERE id = {id}")).unwrap();
            assert_eq!(Spi::get_one::<i64>(&format!("SELECT count(*) FROM w7.{table} WHERE id = {id}")).unwrap(), Some(0), "{table}");
        }
        let vg = Spi::get_one::<i64>("INSERT INTO w7.vip_groups (name) VALUES ('鑽石會員') RETURNING id").unwrap().unwrap();
        Spi::run(&format!("DELETE FROM w7.vip_groups WHERE id = {vg}")).unwrap();
        let ps = Spi::get_one::<i64>("SELECT min(id) FROM w7.pos_shops").unwrap().unwrap();
        Spi::run(&format!("UPDATE w7.pos_shops SET phone = '0222222222' WHERE id = {ps}")).unwrap();
        assert_eq!(Spi::get_one::<String>(&format!("SELECT phone FROM w7.pos_shops WHERE id = {ps}")).unwrap().as_deref(), Some("0222222222"));
        let st =
            Spi::get_one::<i64>("INSERT INTO w7.stock_adjustments (pos_shop_id, items) VALUES (1446, '[{\"sku\": \"SKU-1\", \"quantity\": 3}]') RETURNING id")
                .unwrap();
        assert!(st.is_some());
        let cu = Spi::get_one::<i64>("INSERT INTO w7.customers (name, email, raw) VALUES ('王小明', 'wang@example.com', '{\"password\": \"pw-123456\", \"enable_cvs_pickup\": true, \"accepts_marketing\": false}') RETURNING id").unwrap();
        assert!(cu.is_some());
    }

    #[pg_test]
    fn impossible_writes_fail_before_any_request() {
        connect("w2", "writes_refused", "token", "");
        clear_log("writes_refused");
        for (sql, expect) in [
            ("INSERT INTO w2.orders (note) VALUES ('x')", "the CYBERBIZ API cannot create orders"),
            ("DELETE FROM w2.customers WHERE id = 1", "customers cannot be deleted through the CYBERBIZ API"),
            ("UPDATE w2.orders SET created_at = now() WHERE id = 1", "column \"created_at\" of table \"orders\" cannot be changed through the CYBERBIZ API"),
            ("UPDATE w2.shop SET name = 'x'", "cannot be updated"),
        ] {
            let (code, msg) = error_of(sql).unwrap();
            assert!(msg.contains(expect), "{sql}: {msg}");
            assert!(
                code.contains("FEATURE_NOT_SUPPORTED") || code.contains("OBJECT_NOT_IN_PREREQUISITE_STATE") || code.contains("WRONG_OBJECT_TYPE"),
                "{sql}: {code}"
            );
        }
        assert!(request_log("writes_refused").iter().all(|e| e["method"] == "GET"), "no write request was sent");
    }

    #[pg_test]
    fn write_errors_keep_the_api_message_and_count_written_rows() {
        connect("w3", "writes_errors", "token", "");
        // 422 with the API's own (zh-TW) message.
        let (code, msg) = error_of("INSERT INTO w3.products (title) VALUES ('缺 handle')").unwrap();
        assert!(code.contains("INVALID_PARAMETER_VALUE"), "{code}");
        assert!(msg.contains("不能是空白"), "{msg}");
        // A failure after earlier rows says how many were already written.
        // Keys are fetched in ascending order: the smaller id is written first and succeeds.
        let ids: Vec<i64> = Spi::connect(|c| {
            c.select("SELECT id FROM (SELECT id FROM w3.products LIMIT 2) x ORDER BY id", None, &[])
                .unwrap()
                .filter_map(|r| r.get::<i64>(1).ok().flatten())
                .collect()
        });
        let sql = format!(
            "UPDATE w3.products SET raw = CASE WHEN id = {} THEN '{{\"title\": \"ok\"}}'::jsonb ELSE '{{\"price\": \"abc\"}}'::jsonb END WHERE id IN ({}, {})",
            ids[0], ids[0], ids[1]
        );
        let (_, msg) = error_of(&sql).unwrap();
        assert!(msg.contains("1 row(s) of this statement were already written"), "{msg}");
        // A token without write_products.
        connect("w4", "writes_errors", "token_products", "");
        let (code, msg) = error_of(&format!("UPDATE w4.products SET title = 'x' WHERE id = {}", ids[0])).unwrap();
        assert!(code.contains("INSUFFICIENT_PRIVILEGE") && msg.contains("write_products"), "{code}: {msg}");
    }

    #[pg_test]
    fn body_limits_and_lost_posts() {
        connect("w5", "apidemo", "token", "max_request_bytes '2048'");
        clear_log("apidemo");
        let id = Spi::get_one::<i64>("SELECT id FROM w5.products LIMIT 1").unwrap().unwrap();
        let (code, msg) = error_of(&format!("UPDATE w5.products SET body_html = repeat('好', 1000) WHERE id = {id}")).unwrap();
        assert!(code.contains("PROGRAM_LIMIT_EXCEEDED"), "{code}");
        assert!(msg.contains(&format!("products id {id}")) && msg.contains("max_request_bytes (2048)"), "{msg}");
        assert!(request_log("apidemo").iter().all(|e| e["method"] == "GET"), "nothing sent");
        Spi::run(&format!("UPDATE w5.products SET body_html = '<p>短</p>' WHERE id = {id}")).unwrap();
        // A POST whose connection drops is not retried: the row may exist.
        Spi::run(&format!("CREATE SERVER w6_srv FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{}', max_retries '5')", fixture("dropping"))).unwrap();
        Spi::run(&format!("CREATE USER MAPPING FOR CURRENT_USER SERVER w6_srv OPTIONS (api_token '{}')", fixture("token"))).unwrap();
        Spi::run("CREATE FOREIGN TABLE w6_products (id bigint, title text, raw jsonb) SERVER w6_srv OPTIONS (resource 'products')").unwrap();
        clear_log("dropping");
        let (_, msg) = error_of("INSERT INTO w6_products (title, raw) VALUES ('x', '{\"handle\": \"x\", \"published\": true, \"price\": 1}')").unwrap();
        assert!(msg.contains("may have been created"), "{msg}");
        let posts = request_log("dropping").iter().filter(|e| e["method"] == "POST").count();
        assert_eq!(posts, 1, "the POST was sent once");
    }

    /// Harmless interrupts (another session asking this backend to log its memory contexts, as
    /// client_connection_check_interval or a ProcSignalBarrier would) while a 3-row INSERT waits
    /// on a slow API: each row is POSTed exactly once. 0.1.0 sent 23 POSTs here.
    #[pg_test]
    fn interrupts_during_an_insert_never_send_a_post_twice() {
        connect("w9", "sluggish", "token", "requests_per_second '1000'");
        clear_log("sluggish");
        let pid = Spi::get_one::<i32>("SELECT pg_backend_pid()").unwrap().unwrap();
        let signals = other_session(move |c| {
            let mut sent = 0;
            for _ in 0..20 {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if c.execute("SELECT pg_log_backend_memory_contexts($1)", &[&pid]).is_ok() {
                    sent += 1;
                }
            }
            sent
        });
        let raw = |h: &str| format!("'{{\"handle\": \"{h}\", \"published\": true, \"price\": 1}}'");
        Spi::run(&format!("INSERT INTO w9.products (title, raw) VALUES ('a', {}), ('b', {}), ('c', {})", raw("ia"), raw("ib"), raw("ic"))).unwrap();
        assert_eq!(signals.join().unwrap(), 20, "every interrupt was sent");
        let posts = request_log("sluggish").iter().filter(|e| e["method"] == "POST").count();
        assert_eq!(posts, 3, "one POST per row");
    }

    /// A cancel (pg_cancel_backend, statement_timeout) while a POST is in flight: the statement
    /// ends with the error saying the row may have been created (not a plain cancel that hides
    /// it), and the POST, which the API received, was sent once.
    #[pg_test]
    fn a_cancel_during_a_post_says_the_row_may_exist() {
        connect("w10", "tardy", "token", "requests_per_second '1000'");
        clear_log("tardy");
        let pid = Spi::get_one::<i32>("SELECT pg_backend_pid()").unwrap().unwrap();
        let canceller = other_session(move |c| {
            std::thread::sleep(std::time::Duration::from_millis(1000));
            c.query_one("SELECT pg_cancel_backend($1)", &[&pid]).unwrap().get::<_, bool>(0)
        });
        let caught = error_of("INSERT INTO w10.products (title, raw) VALUES ('late', '{\"handle\": \"late\", \"published\": true, \"price\": 1}')");
        // SAFETY: the test goes on inside the statement the cancel ended; in a session, the
        // ERROR's recovery clears the flag.
        unsafe { pgrx::pg_sys::QueryCancelPending = 0 };
        assert!(canceller.join().unwrap(), "the cancel was sent");
        let (code, msg) = caught.expect("the INSERT fails");
        assert!(msg.contains("may have been created") && msg.contains("canceled while the request was in flight"), "{code}: {msg}");
        std::thread::sleep(std::time::Duration::from_millis(3500));
        let posts = request_log("tardy").iter().filter(|e| e["method"] == "POST").count();
        assert_eq!(posts, 1, "the API got the POST once");
    }
}
