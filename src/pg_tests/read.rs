//! pg_tests: Reads: every table, types, paging, required keys, bad bodies, custom endpoints, IMPORT FOREIGN SCHEMA, rows shifted by concurrent changes.

#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::fixtures::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn every_table_answers_a_query() {
        connect("r1", "main", "token", "");
        for (table, expect) in [
            ("shop", Some(1)),
            ("orders", Some(250)),
            ("customers", Some(120)),
            ("products", Some(60)),
            ("custom_collections", Some(5)),
            ("smart_collections", Some(3)),
            ("inventory_sync_groups", Some(3)),
            ("periodic_orders", Some(8)),
            ("affiliate_vendor_orders", Some(5)),
            ("discounts", Some(4)),
            ("add_buy_collections", Some(3)),
            ("shop_coupons", Some(6)),
            ("special_collections", Some(3)),
            ("vip_groups", Some(2)),
            ("pos_shops", Some(2)),
            ("stock_adjustments", Some(6)),
            ("stock_invoices", Some(6)),
            ("stock_receipts", Some(6)),
            ("stock_requisitions", Some(5)),
            ("branch_stores", Some(3)),
            ("product_feeds", Some(4)),
            ("order_line_items", None),
            ("product_variants", None),
        ] {
            let n = Spi::get_one::<i64>(&format!("SELECT count(*) FROM r1.{table}")).unwrap().unwrap();
            match expect {
                Some(e) => assert_eq!(n, e, "{table}"),
                None => assert!(n > 60, "{table}: {n}"),
            }
        }
        let v = Spi::get_one::<String>("SELECT currency FROM r1.shop").unwrap();
        assert_eq!(v.as_deref(), Some("TWD"));
        // A child row carries its parent's key, and the sum of line items matches the orders.
        let mismatched = Spi::get_one::<i64>(
            "SELECT count(*) FROM r1.orders o WHERE o.total_line_items_price <> (SELECT sum(price * quantity) FROM r1.order_line_items li WHERE li.order_id = o.id)",
        )
        .unwrap();
        assert_eq!(mismatched, Some(0));
    }

    #[pg_test]
    fn types_nulls_and_taipei_time() {
        connect("r2", "main", "token", "");
        // Every timestamp is the API's Taipei wall-clock time.
        let off = Spi::get_one::<i64>(
            "SELECT count(*) FROM r2.orders WHERE to_char(created_at AT TIME ZONE 'Asia/Taipei', 'YYYY-MM-DD HH24:MI:SS') <> raw->>'created_at'",
        )
        .unwrap();
        assert_eq!(off, Some(0));
        Spi::run("SET TIME ZONE 'UTC'").unwrap();
        // An order placed before 08:00 in Taipei is on the previous day in UTC.
        let shifted = Spi::get_one::<i64>(
            "SELECT count(*) FROM r2.orders WHERE (raw->>'created_at')::timestamp::time < '08:00' AND created_at::date <> (raw->>'created_at')::date - 1",
        )
        .unwrap();
        assert_eq!(shifted, Some(0));
        let nulls = Spi::get_one::<i64>("SELECT count(*) FROM r2.orders WHERE closed_at IS NULL AND order_status <> 'closed'").unwrap().unwrap();
        assert!(nulls > 0);
        let money = Spi::get_one::<String>("SELECT pg_typeof(total_price)::text FROM r2.orders LIMIT 1").unwrap();
        assert_eq!(money.as_deref(), Some("numeric"));
        let name = Spi::get_one::<String>("SELECT customer_name FROM r2.orders WHERE customer_name IS NOT NULL LIMIT 1").unwrap().unwrap();
        assert!(name.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{name}");
        let bday = Spi::get_one::<String>("SELECT pg_typeof(birthday)::text FROM r2.customers LIMIT 1").unwrap();
        assert_eq!(bday.as_deref(), Some("date"));
    }

    #[pg_test]
    fn exactly_two_page_requests_for_sixty_rows() {
        connect("r3", "counted", "token", "");
        clear_log("counted");
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM r3.products").unwrap(), Some(60));
        let log = request_log("counted");
        let paths: Vec<&str> = log.iter().filter_map(|e| e["path"].as_str()).collect();
        assert_eq!(paths, vec!["/v1/products?per_page=50&page=1", "/v1/products?per_page=50&page=2"]);
    }

    #[pg_test]
    fn required_keys_missing_endpoints_and_bad_bodies() {
        connect("r11", "keys", "token", "");
        clear_log("keys");
        let (code, msg) = error_of("SELECT * FROM r11.einvoices").unwrap();
        assert!(code.contains("FEATURE_NOT_SUPPORTED") && msg.contains("can only be read by id"), "{code}: {msg}");
        assert!(request_log("keys").is_empty(), "no request before the error");
        let eid = Spi::get_one::<i64>("SELECT (einvoice->>'id')::bigint FROM r11.orders WHERE einvoice IS NOT NULL LIMIT 1").unwrap().unwrap();
        let oid = Spi::get_one::<i64>(&format!("SELECT order_id FROM r11.einvoices WHERE id = {eid}")).unwrap();
        assert!(oid.is_some());
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM r11.einvoices WHERE id = 1").unwrap(), Some(0), "404 is no row");
        let (_, msg) = error_of("SELECT * FROM r11.edms").unwrap();
        assert!(msg.contains("no endpoint"), "{msg}");
        let url = fixture("garbage");
        Spi::run(&format!("CREATE SERVER junk FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}')")).unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER junk OPTIONS (api_token 'a.b.c')").unwrap();
        Spi::run("CREATE FOREIGN TABLE junk_products (id bigint, title text) SERVER junk OPTIONS (resource 'products')").unwrap();
        let (code, msg) = error_of("SELECT * FROM junk_products").unwrap();
        assert!(msg.contains("malformed JSON"), "{code}: {msg}");
    }

    /// A list answered with an object, a redirect, an answer over max_response_bytes: each is
    /// an ERROR naming the request, never rows.
    #[pg_test]
    fn wrong_answers_are_errors_naming_the_request() {
        for (name, which) in [("obj", "object"), ("redir", "redirect")] {
            let url = fixture(which);
            Spi::run(&format!("CREATE SERVER {name} FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}')")).unwrap();
            Spi::run(&format!("CREATE USER MAPPING FOR CURRENT_USER SERVER {name} OPTIONS (api_token 'a.b.c')")).unwrap();
            Spi::run(&format!("CREATE FOREIGN TABLE {name}_orders (id bigint, raw jsonb) SERVER {name} OPTIONS (resource 'orders')")).unwrap();
        }
        let (code, msg) = error_of("SELECT * FROM obj_orders").unwrap();
        assert!(msg.contains("GET /v1/orders?per_page=50") && msg.contains("expected a JSON array (a page of the list), got {"), "{code}: {msg}");
        assert_eq!(Spi::get_one::<i64>("SELECT id FROM obj_orders WHERE id = 1").unwrap(), Some(1), "a get by id answers an object");
        let (code, msg) = error_of("SELECT * FROM redir_orders").unwrap();
        assert!(msg.contains("redirect (302) to host elsewhere.example.com;") && !msg.contains("elsewhere.example.com/"), "{code}: {msg}");
        // A NUL inside a JSON string cannot live in a text value: it is dropped.
        let url = fixture("nul");
        Spi::run(&format!("CREATE SERVER nul FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}')")).unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER nul OPTIONS (api_token 'a.b.c')").unwrap();
        Spi::run("CREATE FOREIGN TABLE nul_products (id bigint, title text) SERVER nul OPTIONS (resource 'products')").unwrap();
        assert_eq!(Spi::get_one::<bool>("SELECT title = 'teapot' FROM nul_products").unwrap(), Some(true));
        // A write answered 201 whose body breaks off: an error saying it was applied.
        let url = fixture("cutoff");
        Spi::run(&format!("CREATE SERVER cutoff FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}')")).unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER cutoff OPTIONS (api_token 'a.b.c')").unwrap();
        Spi::run("CREATE FOREIGN TABLE cutoff_products (id bigint, title text, raw jsonb) SERVER cutoff OPTIONS (resource 'products')").unwrap();
        let (code, msg) = error_of("INSERT INTO cutoff_products (title) VALUES ('x') RETURNING id").unwrap();
        assert!(
            msg.contains("answered POST /v1/products with 201, but the answer could not be read") && msg.contains("the write was applied"),
            "{code}: {msg}"
        );
        connect("big", "main", "token", "max_response_bytes '1024'");
        let (code, msg) = error_of("SELECT * FROM big.orders").unwrap();
        assert!(code.contains("PROGRAM_LIMIT_EXCEEDED") && msg.contains("more than the server's max_response_bytes (1024 bytes)"), "{code}: {msg}");
    }

    #[pg_test]
    fn values_that_do_not_fit_name_table_column_row_and_value() {
        connect("r12", "main", "token", "");
        Spi::run("CREATE FOREIGN TABLE r12.bad_orders (id bigint, order_name integer) SERVER r12_srv OPTIONS (resource 'orders')").unwrap();
        let (code, msg) = error_of("SELECT * FROM r12.bad_orders").unwrap();
        assert!(code.contains("INVALID_TEXT_REPRESENTATION"), "{code}");
        assert!(msg.contains("table \"bad_orders\", column \"order_name\", row id 569") && msg.contains("\"#1001\""), "{msg}");
    }

    #[pg_test]
    fn custom_endpoints_and_json_paths() {
        connect("r13", "main", "token", "");
        Spi::run("CREATE FOREIGN TABLE r13.people (id bigint, email text, city text OPTIONS (json_path 'address.detail_address.city'), raw jsonb) SERVER r13_srv OPTIONS (endpoint '/v1/customers')").unwrap();
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM r13.people").unwrap(), Some(120));
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM r13.people WHERE city IS NULL OR raw->'address'->'detail_address'->>'city' <> city").unwrap(),
            Some(0)
        );
    }

    #[pg_test]
    fn import_honours_limit_to_and_except_and_comments() {
        Spi::run(&format!("CREATE SERVER imp FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{}')", sandbox_url())).unwrap();
        Spi::run("CREATE SCHEMA a; CREATE SCHEMA b").unwrap();
        Spi::run("IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (orders, shop) FROM SERVER imp INTO a").unwrap();
        Spi::run("IMPORT FOREIGN SCHEMA cyberbiz EXCEPT (orders, edms) FROM SERVER imp INTO b").unwrap();
        let a = Spi::get_one::<i64>("SELECT count(*) FROM pg_class WHERE relnamespace = 'a'::regnamespace").unwrap();
        let b = Spi::get_one::<i64>("SELECT count(*) FROM pg_class WHERE relnamespace = 'b'::regnamespace").unwrap();
        assert_eq!((a, b), (Some(2), Some(crate::catalog::RESOURCES.len() as i64 - 2)));
        let c = Spi::get_one::<String>("SELECT col_description('a.orders'::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = 'a.orders'::regclass AND attname = 'financial_status'))").unwrap();
        assert!(c.unwrap().contains("付款狀態"));
        assert!(Spi::get_one::<String>("SELECT obj_description('a.orders'::regclass)").unwrap().unwrap().contains("訂單"));
        let (_, msg) = error_of("IMPORT FOREIGN SCHEMA cyberbiz LIMIT TO (ordrs) FROM SERVER imp INTO b").unwrap();
        assert!(msg.contains("no table \"ordrs\""), "{msg}");
    }

    #[pg_test]
    fn rows_shifted_by_a_concurrent_insert_are_not_repeated() {
        connect("r14", "shifting", "token", "page_size '10'");
        let (url, token) = (fixture("shifting"), fixture("token"));
        // Products list newest first: a product created mid-scan shifts every later page by one.
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            crate::runtime::runtime().block_on(async {
                let body = serde_json::json!({"title": "新品", "handle": "new", "published": true, "price": 100});
                reqwest::Client::new().post(format!("{url}/v1/products")).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
            })
        });
        let counts = Spi::get_two::<i64, i64>("SELECT count(*), count(DISTINCT id) FROM r14.products").unwrap();
        assert_eq!(writer.join().unwrap(), 201);
        let log = request_log("shifting");
        let post = log.iter().find(|e| e["method"] == "POST").unwrap()["timestamp"].as_f64().unwrap();
        let last_get = log.iter().filter(|e| e["method"] == "GET").map(|e| e["timestamp"].as_f64().unwrap()).fold(0.0, f64::max);
        assert!(post < last_get, "the insert landed during the scan");
        assert_eq!(counts.0, counts.1, "no row repeated");
        assert_eq!(counts.0, Some(60));
    }
}
