//! Tests that need a real backend (`cargo pgrx test`); the sandbox runs for the whole run.

/// Where the test backend finds the sandboxes and tokens of this run: a file beside its data
/// directory (`--runas` passes only CARGO*/RUST* variables to the server, and a fixed path
/// would be shared by concurrent runs).
pub const FIXTURE_FILE: &str = "cyberbiz_fdw_fixtures";

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// A value written by pg_test::setup: a sandbox URL (`main`, `limited`, ...) or a token.
    fn fixture(name: &str) -> String {
        let data = Spi::get_one::<String>("SELECT current_setting('data_directory')").unwrap().unwrap();
        let file = std::path::Path::new(&data).parent().unwrap().join(super::FIXTURE_FILE);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("fixture file {file:?} written by pg_test::setup: {e}"));
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' '))).unwrap_or_else(|| panic!("no fixture {name}")).to_string()
    }

    fn sandbox_url() -> String {
        fixture("main")
    }

    /// A server on sandbox `which` with a user mapping holding token `token`, and every table imported
    /// into schema `schema`.
    fn connect(schema: &str, which: &str, token: &str, server_options: &str) {
        let url = fixture(which);
        let tok = fixture(token);
        let extra = if server_options.is_empty() { String::new() } else { format!(", {server_options}") };
        Spi::run(&format!("CREATE SERVER {schema}_srv FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}'{extra})")).unwrap();
        Spi::run(&format!("CREATE USER MAPPING FOR CURRENT_USER SERVER {schema}_srv OPTIONS (api_token '{tok}')")).unwrap();
        Spi::run(&format!("CREATE SCHEMA {schema}")).unwrap();
        Spi::run(&format!("IMPORT FOREIGN SCHEMA cyberbiz FROM SERVER {schema}_srv INTO {schema}")).unwrap();
    }

    /// The sandbox's request log (method, path, status, timestamp).
    fn request_log(which: &str) -> Vec<serde_json::Value> {
        let url = format!("{}/__sandbox/requests", fixture(which));
        crate::http::runtime().block_on(async { reqwest::get(&url).await.unwrap().json::<Vec<serde_json::Value>>().await.unwrap() })
    }

    fn clear_log(which: &str) {
        let url = format!("{}/__sandbox/requests", fixture(which));
        crate::http::runtime().block_on(async { reqwest::Client::new().delete(&url).send().await.unwrap() });
    }

    /// Runs `sql`, returning the error message it raised (None if it succeeded).
    fn error_of(sql: &str) -> Option<(String, String)> {
        PgTryBuilder::new(|| {
            Spi::run(sql).unwrap();
            None
        })
        .catch_others(|e| match e {
            pgrx::pg_sys::panic::CaughtError::PostgresError(r) | pgrx::pg_sys::panic::CaughtError::ErrorReport(r) | pgrx::pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => {
                Some((format!("{:?}", r.sql_error_code()), r.message().to_string()))
            }
        })
        .execute()
    }

    #[pg_test]
    fn wrapper_handler_and_validator_exist() {
        let row = Spi::get_two::<String, String>(
            "SELECT fdwhandler::regproc::text, fdwvalidator::regproc::text FROM pg_foreign_data_wrapper WHERE fdwname = 'cyberbiz_fdw'",
        )
        .unwrap();
        assert_eq!(row, (Some("cyberbiz_fdw_handler".into()), Some("cyberbiz_fdw_validator".into())));
    }

    #[pg_test]
    fn server_user_mapping_and_table_accept_valid_options() {
        let url = sandbox_url();
        Spi::run(&format!(
            "CREATE SERVER sb FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}', requests_per_second '5', page_size '50', timeout '10', max_retries '2', max_request_bytes '2048', time_zone 'Asia/Taipei', use_remote_estimate 'false')"
        ))
        .unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER sb OPTIONS (api_token 'a.b.c', app_secret 's')").unwrap();
        Spi::run("CREATE FOREIGN TABLE t_orders (id bigint, financial_status text OPTIONS (json_path 'statuses.financial_status')) SERVER sb OPTIONS (resource 'orders', rows '2500')").unwrap();
        Spi::run("CREATE FOREIGN TABLE t_blogs (id bigint, raw jsonb) SERVER sb OPTIONS (endpoint '/v1/blogs')").unwrap();
        let n = Spi::get_one::<i64>("SELECT count(*) FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE s.srvname = 'sb'").unwrap();
        assert_eq!(n, Some(2));
        Spi::run("ALTER SERVER sb OPTIONS (SET page_size '10')").unwrap();
    }

    #[pg_test(error = "invalid option \"bogus\" for a CYBERBIZ server")]
    fn unknown_server_option_is_rejected() {
        Spi::run("CREATE SERVER s1 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (bogus 'x')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"page_size\": must be an integer from 1 to 50, got \"500\"")]
    fn page_size_above_api_maximum_is_rejected() {
        Spi::run("CREATE SERVER s2 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (page_size '500')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"requests_per_second\": must be a number of requests per second (the platform allows 5) from 0.1 to 5, got \"6\"")]
    fn requests_per_second_above_platform_limit_is_rejected() {
        Spi::run("CREATE SERVER s3 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (requests_per_second '6')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"api_url\": must be an http:// or https:// URL such as https://app-store-api.cyberbiz.io, got \"not-a-url\"")]
    fn non_url_api_url_is_rejected() {
        Spi::run("CREATE SERVER s4 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url 'not-a-url')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"timeout\": must be a number of seconds from 0.1 to 3600, got \"-5\"")]
    fn negative_timeout_is_rejected() {
        Spi::run("CREATE SERVER s5 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (timeout '-5')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"time_zone\": must be a time zone Postgres knows, such as Asia/Taipei, got \"Mars/Olympus\"")]
    fn unknown_time_zone_is_rejected() {
        Spi::run("CREATE SERVER s6 FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (time_zone 'Mars/Olympus')").unwrap();
    }

    #[pg_test(error = "option \"api_token\" is required for a CYBERBIZ user mapping")]
    fn user_mapping_without_token_is_rejected() {
        Spi::run("CREATE SERVER s7 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER s7 OPTIONS (app_secret 'x')").unwrap();
    }

    #[pg_test(error = "option \"api_token\" is required for a CYBERBIZ user mapping")]
    fn dropping_the_token_is_rejected() {
        Spi::run("CREATE SERVER s8 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER s8 OPTIONS (api_token 'a.b.c')").unwrap();
        Spi::run("ALTER USER MAPPING FOR CURRENT_USER SERVER s8 OPTIONS (DROP api_token)").unwrap();
    }

    #[pg_test(error = "invalid option \"resourse\" for a CYBERBIZ foreign table")]
    fn misspelled_table_option_is_rejected() {
        Spi::run("CREATE SERVER s9 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        Spi::run("CREATE FOREIGN TABLE t9 (id bigint) SERVER s9 OPTIONS (resourse 'orders')").unwrap();
    }

    #[pg_test(error = "invalid value for option \"json_path\": must be dot-separated JSON keys such as statuses.financial_status, got \"statuses..x\"")]
    fn malformed_json_path_is_rejected() {
        Spi::run("CREATE SERVER s10 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        Spi::run("CREATE FOREIGN TABLE t10 (x text OPTIONS (json_path 'statuses..x')) SERVER s10 OPTIONS (resource 'orders')").unwrap();
    }

    #[pg_test]
    fn every_table_answers_a_query() {
        connect("r1", "main", "token", "");
        for (table, expect) in [
            ("shop", Some(1)), ("orders", Some(250)), ("customers", Some(120)), ("products", Some(60)),
            ("custom_collections", Some(5)), ("smart_collections", Some(3)), ("inventory_sync_groups", Some(3)),
            ("periodic_orders", Some(8)), ("affiliate_vendor_orders", Some(5)), ("discounts", Some(4)),
            ("add_buy_collections", Some(3)), ("shop_coupons", Some(6)), ("special_collections", Some(3)),
            ("vip_groups", Some(2)), ("pos_shops", Some(2)), ("stock_adjustments", Some(6)), ("stock_invoices", Some(6)),
            ("stock_receipts", Some(6)), ("stock_requisitions", Some(5)), ("branch_stores", Some(3)), ("product_feeds", Some(4)),
            ("order_line_items", None), ("product_variants", None),
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
    fn requests_are_spaced_by_the_limiter() {
        connect("r4", "paced", "token", "page_size '10'");
        clear_log("paced");
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM r4.customers").unwrap(), Some(120));
        let log = request_log("paced");
        assert_eq!(log.len(), 12);
        assert!(log.iter().all(|e| e["status"] == 200), "no 429 at the API's own limit");
        let ts: Vec<f64> = log.iter().map(|e| e["timestamp"].as_f64().unwrap()).collect();
        let mut sorted = ts.clone();
        sorted.sort_by(f64::total_cmp);
        for w in sorted.windows(6) {
            assert!(w[5] - w[0] >= 1.0, "six requests within one second: {w:?}");
        }
    }

    #[pg_test]
    fn throttling_and_faults_are_retried() {
        connect("r5", "limited", "token", "page_size '10'");
        assert_eq!(Spi::get_one::<i64>("SELECT count(DISTINCT id) FROM r5.customers").unwrap(), Some(120));
        let throttled = request_log("limited").iter().filter(|e| e["status"] == 429).count();
        assert!(throttled > 0, "a 2 req/s sandbox must have throttled a 5 req/s scan");
        connect("r6", "flaky", "token", "max_retries '8'");
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM r6.orders").unwrap(), Some(250));
        assert!(request_log("flaky").iter().any(|e| e["status"] == 503 || e["status"] == 0));
    }

    #[pg_test]
    fn exhausted_retries_fail_clearly() {
        connect("r7", "flaky", "token", "max_retries '0'");
        let mut failed = None;
        for _ in 0..10 {
            if let Some(e) = error_of("SELECT count(*) FROM r7.orders") {
                failed = Some(e);
                break;
            }
        }
        let (code, msg) = failed.expect("a 50% fault rate without retries fails");
        assert!(msg.contains("GET /v1/orders?per_page=50&page="), "{msg}");
        assert!(code.contains("FDW"), "{code}: {msg}");
    }

    #[pg_test]
    fn cancel_stops_a_waiting_scan() {
        connect("r8", "slow", "token", "");
        // What pg_cancel_backend does: SIGINT to the backend, here from a helper thread after 1 s
        // (statement_timeout is covered by pg_regress, where statements are top-level).
        let pid = std::process::id().to_string();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(1));
            let _ = std::process::Command::new("kill").args(["-INT", &pid]).status();
        });
        let t0 = std::time::Instant::now();
        let (code, msg) = error_of("SELECT count(*) FROM r8.orders").expect("the cancel interrupts the scan");
        assert!(msg.contains("canceling statement due to user request"), "{code}: {msg}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(10), "cancelled long before the 20 s answer");
    }

    #[pg_test]
    fn auth_errors_say_why_without_the_token() {
        connect("r9", "main", "token_expired", "");
        let (code, msg) = error_of("SELECT * FROM r9.orders").unwrap();
        assert!(code.contains("INVALID_AUTHORIZATION"), "{code}");
        assert!(msg.contains("expired"), "{msg}");
        assert!(!msg.contains(&fixture("token_expired")));
        connect("r10", "main", "token_products", "");
        let (code, msg) = error_of("SELECT * FROM r10.orders").unwrap();
        assert!(code.contains("INSUFFICIENT_PRIVILEGE"), "{code}");
        assert!(msg.contains("read_orders"), "{msg}");
        assert!(Spi::get_one::<i64>("SELECT count(*) FROM r10.products").unwrap().unwrap() > 0);
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
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM r13.people WHERE city IS NULL OR raw->'address'->'detail_address'->>'city' <> city").unwrap(), Some(0));
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
            crate::http::runtime().block_on(async {
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

    /// The paths a query sent to sandbox `which`.
    fn paths_of(which: &str, sql: &str) -> Vec<String> {
        clear_log(which);
        Spi::run(sql).unwrap();
        request_log(which).iter().filter_map(|e| e["path"].as_str().map(str::to_string)).collect()
    }

    #[pg_test]
    fn pushdown_makes_the_minimum_requests() {
        connect("pd", "pushdown", "token", "");
        let first = Spi::get_two::<i64, i64>("SELECT id, order_number FROM (SELECT * FROM pd.orders OFFSET 0) o ORDER BY id LIMIT 1").unwrap();
        let (id, number) = (first.0.unwrap(), first.1.unwrap());
        assert_eq!(paths_of("pushdown", &format!("SELECT * FROM pd.orders WHERE id = {id}")), vec![format!("/v1/orders/{id}")]);
        assert_eq!(paths_of("pushdown", &format!("SELECT * FROM pd.orders WHERE order_number = {number}")), vec![format!("/v1/orders/get_order_id?order_numbers={number}"), format!("/v1/orders/{id}")]);
        assert_eq!(paths_of("pushdown", "SELECT * FROM pd.orders LIMIT 10"), vec!["/v1/orders?per_page=10&page=1"]);
        assert_eq!(paths_of("pushdown", &format!("SELECT * FROM pd.order_line_items WHERE order_id = {id}")), vec![format!("/v1/orders/{id}")]);
        assert_eq!(
            paths_of("pushdown", "SELECT * FROM pd.orders WHERE financial_status IN ('paid', 'cod') AND created_at >= '2026-11-21 00:00:00+08'"),
            vec!["/v1/orders?start_time=2026-11-21+00%3A00%3A00&financial_statuses=cod,paid&per_page=50&page=1"]
        );
        assert!(paths_of("pushdown", "SELECT * FROM pd.orders WHERE order_status = 'open' AND order_status = 'closed'").is_empty());
        // A join from 20 local ids runs as 20 GETs in a nested loop, not a list of every order.
        Spi::run("CREATE TEMP TABLE picked AS SELECT id FROM (SELECT id FROM pd.orders OFFSET 0) o ORDER BY id LIMIT 20; ANALYZE picked").unwrap();
        let paths = paths_of("pushdown", "SELECT o.order_number FROM picked p JOIN pd.orders o ON o.id = p.id");
        assert_eq!(paths.len(), 20, "{paths:?}");
        assert!(paths.iter().all(|p| p.starts_with("/v1/orders/")));
        // Prepared statements push their parameters too.
        Spi::run("SET plan_cache_mode = force_generic_plan").unwrap();
        Spi::run("PREPARE by_id(bigint[]) AS SELECT * FROM pd.orders WHERE id = ANY($1)").unwrap();
        assert_eq!(paths_of("pushdown", &format!("EXECUTE by_id(ARRAY[{id}])")), vec![format!("/v1/orders/{id}")]);
    }

    #[pg_test]
    fn remote_estimates_read_x_total_once() {
        connect("est", "estimate", "token", "use_remote_estimate 'true'");
        clear_log("estimate");
        let plan_rows = |sql: &str| -> f64 {
            let j = Spi::get_one::<pgrx::Json>(&format!("EXPLAIN (FORMAT JSON) {sql}")).unwrap().unwrap().0;
            j[0]["Plan"]["Plan Rows"].as_f64().unwrap()
        };
        let paid = Spi::get_one::<i64>("SELECT count(*) FROM (SELECT * FROM est.orders OFFSET 0) o WHERE financial_status = 'paid'").unwrap().unwrap();
        clear_log("estimate");
        assert_eq!(plan_rows("SELECT * FROM est.orders WHERE financial_status = 'paid'"), paid as f64);
        assert_eq!(plan_rows("SELECT * FROM est.orders WHERE financial_status = 'paid'"), paid as f64, "cached");
        let log = request_log("estimate");
        let paths: Vec<&str> = log.iter().filter_map(|e| e["path"].as_str()).collect();
        assert_eq!(paths, vec!["/v1/orders?financial_statuses=paid&per_page=1&page=1"], "one request, then the cache; plain EXPLAIN fetches no rows");
    }

    #[pg_test]
    fn pushdown_results_equal_a_full_scan() {
        connect("df", "differential", "token", "requests_per_second '1000'");
        Spi::run("CREATE TEMP TABLE lo AS SELECT * FROM (SELECT * FROM df.orders OFFSET 0) o; CREATE TEMP TABLE lc AS SELECT * FROM (SELECT * FROM df.customers OFFSET 0) c").unwrap();
        let ids: Vec<i64> = Spi::connect(|c| c.select("SELECT id FROM lo ORDER BY id", None, &[]).unwrap().filter_map(|r| r.get::<i64>(1).ok().flatten()).collect());
        let mut seed = 12345u64;
        let mut rnd = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let statuses = ["'paid'", "'cod'", "'pending'", "'refunded'", "'failed'"];
        let days = ["2025-12-01", "2026-03-15", "2026-06-30", "2026-09-09", "2026-11-01", "2026-11-20"];
        let mut checked = 0;
        for _ in 0..200 {
            let mut conds = Vec::new();
            for _ in 0..(1 + rnd(3)) {
                conds.push(match rnd(9) {
                    0 => format!("financial_status IN ({}, {})", statuses[rnd(5) as usize], statuses[rnd(5) as usize]),
                    1 => format!("order_status = '{}'", ["open", "closed", "cancelled"][rnd(3) as usize]),
                    2 => format!("created_at {} '{} {:02}:{:02}:{:02}.{}+08'", [">=", ">", "<", "<="][rnd(4) as usize], days[rnd(6) as usize], rnd(24), rnd(60), rnd(60), rnd(10)),
                    3 => format!("updated_at >= '{}' AND updated_at < '{}'", days[rnd(3) as usize], days[3 + rnd(3) as usize]),
                    4 => format!("id IN ({}, {}, {})", ids[rnd(ids.len() as u64) as usize], ids[rnd(ids.len() as u64) as usize], 1),
                    5 => format!("order_number IN ({}, {})", 1001 + rnd(400), 1001 + rnd(400)),
                    6 => format!("closed_at <= '{}'", days[rnd(6) as usize]),
                    7 => format!("fulfillment_status = '{}'", ["unshipped", "received", "fulfilled"][rnd(3) as usize]),
                    _ => format!("total_price > {}", rnd(20000)),
                });
            }
            let w = conds.join(" AND ");
            let remote = Spi::get_one::<String>(&format!("SELECT coalesce(array_agg(id ORDER BY id)::text, '{{}}') FROM df.orders WHERE {w}")).unwrap();
            let local = Spi::get_one::<String>(&format!("SELECT coalesce(array_agg(id ORDER BY id)::text, '{{}}') FROM lo WHERE {w}")).unwrap();
            assert_eq!(remote, local, "WHERE {w}");
            let limit = 1 + rnd(60);
            let n_remote = Spi::get_one::<i64>(&format!("SELECT count(*) FROM (SELECT id FROM df.orders WHERE {w} LIMIT {limit}) x")).unwrap();
            let n_local = Spi::get_one::<i64>(&format!("SELECT count(*) FROM (SELECT id FROM lo WHERE {w} LIMIT {limit}) x")).unwrap();
            assert_eq!(n_remote, n_local, "WHERE {w} LIMIT {limit}");
            checked += 1;
        }
        for w in ["updated_at >= '2026-06-01'", "updated_at < '2025-01-01 08:00:00+08'", "email = 'customer7@example.com'", "mobile IN ('0910000010', '0910000011')", "id IN (SELECT id FROM lc ORDER BY id LIMIT 7)"] {
            let remote = Spi::get_one::<String>(&format!("SELECT coalesce(array_agg(id ORDER BY id)::text, '{{}}') FROM df.customers WHERE {w}")).unwrap();
            let local = Spi::get_one::<String>(&format!("SELECT coalesce(array_agg(id ORDER BY id)::text, '{{}}') FROM lc WHERE {w}")).unwrap();
            assert_eq!(remote, local, "customers WHERE {w}");
        }
        let joined = Spi::get_one::<i64>("SELECT count(*) FROM (SELECT id FROM lo ORDER BY id LIMIT 15) p JOIN df.order_line_items li ON li.order_id = p.id").unwrap();
        let local_joined = Spi::get_one::<i64>("SELECT sum(jsonb_array_length(line_items)) FROM (SELECT * FROM lo ORDER BY id LIMIT 15) p").unwrap();
        assert_eq!(joined, local_joined);
        assert_eq!(checked, 200);
    }

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
        let new_vid = Spi::get_one::<i64>(&format!("INSERT INTO w1.product_variants (product_id, name, price, sku) VALUES ({id}, '大包', 200, 'SKU-NEW') RETURNING id")).unwrap().unwrap();
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
        let cid = Spi::get_one::<i64>("INSERT INTO w1.custom_collections (title, handle, published) VALUES ('秋季', 'autumn', true) RETURNING id").unwrap().unwrap();
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
        connect("w7", "writes", "token", "");
        // (table, INSERT columns and values, the column an UPDATE changes, its new value)
        let cases = [
            ("custom_collections", "title, handle, published", "'c', 'c', true", "title", "'c2'"),
            ("smart_collections", "title, handle, published", "'s', 's', true", "title", "'s2'"),
            ("inventory_sync_groups", "title, inventory_quantity", "'g', 5", "title", "'g2'"),
            ("discounts", "name, threshold", "'d', 100", "name", "'d2'"),
            ("add_buy_collections", "title, handle, price", "'a', 'a', 99", "title", "'a2'"),
            ("special_collections", "title, handle, published", "'p', 'p', true", "title", "'p2'"),
            ("branch_stores", "name, store_no", "'b', 'B9'", "name", "'b2'"),
            ("shop_coupons", "title, code, coupon_type, order_price_threshold, usage_limit, raw", "'k', 'K1', 'price', 0, 5, '{\"value\": 10, \"concurrently_apply\": true}'", "title", "'k2'"),
        ];
        for (table, cols, vals, col, new) in cases {
            let id = Spi::get_one::<i64>(&format!("INSERT INTO w7.{table} ({cols}) VALUES ({vals}) RETURNING id")).unwrap().unwrap_or_else(|| panic!("{table}: no id"));
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
        let st = Spi::get_one::<i64>("INSERT INTO w7.stock_adjustments (pos_shop_id, items) VALUES (1446, '[{\"sku\": \"SKU-1\", \"quantity\": 3}]') RETURNING id").unwrap();
        assert!(st.is_some());
        let cu = Spi::get_one::<i64>("INSERT INTO w7.customers (name, email, raw) VALUES ('王小明', 'wang@example.com', '{\"password\": \"pw-123456\", \"enable_cvs_pickup\": true, \"accepts_marketing\": false}') RETURNING id").unwrap();
        assert!(cu.is_some());
    }

    #[pg_test]
    fn impossible_writes_fail_before_any_request() {
        connect("w2", "writes", "token", "");
        clear_log("writes");
        for (sql, expect) in [
            ("INSERT INTO w2.orders (note) VALUES ('x')", "the CYBERBIZ API cannot create orders"),
            ("DELETE FROM w2.customers WHERE id = 1", "customers cannot be deleted through the CYBERBIZ API"),
            ("UPDATE w2.orders SET created_at = now() WHERE id = 1", "column \"created_at\" of table \"orders\" cannot be changed through the CYBERBIZ API"),
            ("UPDATE w2.shop SET name = 'x'", "cannot be updated"),
        ] {
            let (code, msg) = error_of(sql).unwrap();
            assert!(msg.contains(expect), "{sql}: {msg}");
            assert!(code.contains("FEATURE_NOT_SUPPORTED") || code.contains("OBJECT_NOT_IN_PREREQUISITE_STATE") || code.contains("WRONG_OBJECT_TYPE"), "{sql}: {code}");
        }
        assert!(request_log("writes").iter().all(|e| e["method"] == "GET"), "no write request was sent");
    }

    #[pg_test]
    fn write_errors_keep_the_api_message_and_count_written_rows() {
        connect("w3", "writes", "token", "");
        // 422 with the API's own (zh-TW) message.
        let (code, msg) = error_of("INSERT INTO w3.products (title) VALUES ('缺 handle')").unwrap();
        assert!(code.contains("INVALID_PARAMETER_VALUE"), "{code}");
        assert!(msg.contains("不能是空白"), "{msg}");
        // A failure after earlier rows says how many were already written.
        // Keys are fetched in ascending order: the smaller id is written first and succeeds.
        let ids: Vec<i64> = Spi::connect(|c| c.select("SELECT id FROM (SELECT id FROM w3.products LIMIT 2) x ORDER BY id", None, &[]).unwrap().filter_map(|r| r.get::<i64>(1).ok().flatten()).collect());
        let sql = format!(
            "UPDATE w3.products SET raw = CASE WHEN id = {} THEN '{{\"title\": \"ok\"}}'::jsonb ELSE '{{\"price\": \"abc\"}}'::jsonb END WHERE id IN ({}, {})",
            ids[0], ids[0], ids[1]
        );
        let (_, msg) = error_of(&sql).unwrap();
        assert!(msg.contains("1 row(s) of this statement were already written"), "{msg}");
        // A token without write_products.
        connect("w4", "writes", "token_products", "");
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
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_webhook_events").unwrap(), Some(2));
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
            (body.into(), "orders/exploded", good.clone(), "INVALID_PARAMETER_VALUE", "unknown CYBERBIZ webhook event"),
            (r#"{"name": "x"}"#.into(), "customers/update", sign_hex(r#"{"name": "x"}"#, "hook-secret"), "INVALID_PARAMETER_VALUE", "has no numeric id"),
            (too_big, "orders/paid", big_sig, "PROGRAM_LIMIT_EXCEEDED", "over the 2097152 byte limit"),
        ];
        for (b, event, sig, code, text) in cases {
            let sql = format!("SELECT cyberbiz_ingest_webhook({}, {}, {}, 'wh.cyberbiz.co')", quote(&b), quote(event), quote(&sig));
            let (c, m) = error_of(&sql).unwrap_or_else(|| panic!("{event} must fail"));
            assert!(c.contains(code) && m.contains(text), "{event}: {c}: {m}");
            assert!(!m.contains("hook-secret"));
        }
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_webhook_events").unwrap(), Some(0));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_orders_mirror").unwrap(), Some(0));
    }

    #[pg_test]
    fn backfill_fills_the_mirror_through_the_fdw() {
        connect("bf", "main", "token", "requests_per_second '1000'");
        assert_eq!(Spi::get_one::<i64>("SELECT cyberbiz_backfill('bf.orders')").unwrap(), Some(250));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_orders_mirror").unwrap(), Some(250));
        let same = Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_orders_mirror m JOIN (SELECT id, raw FROM (SELECT * FROM bf.orders OFFSET 0) o) o USING (id) WHERE m.payload = o.raw").unwrap();
        assert_eq!(same, Some(250));
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_order_line_items_mirror").unwrap(), Spi::get_one::<i64>("SELECT count(*) FROM (SELECT * FROM bf.order_line_items OFFSET 0) x").unwrap());
        // Incremental: the second run reads only rows updated since the newest seen, and changes nothing.
        assert_eq!(Spi::get_one::<i64>("SELECT cyberbiz_backfill('bf.orders')").unwrap(), Some(0));
        assert_eq!(Spi::get_one::<i64>("SELECT cyberbiz_backfill('bf.customers')").unwrap(), Some(120));
    }

    #[pg_test]
    fn token_never_appears_in_errors() {
        Spi::run("CREATE SERVER s11 FOREIGN DATA WRAPPER cyberbiz_fdw").unwrap();
        let err = PgTryBuilder::new(|| {
            Spi::run("CREATE USER MAPPING FOR CURRENT_USER SERVER s11 OPTIONS (api_token 'very secret token')").unwrap();
            None
        })
        .catch_others(|e| match e {
            pgrx::pg_sys::panic::CaughtError::PostgresError(r) => Some(r.message().to_string()),
            _ => Some("other".into()),
        })
        .execute();
        let msg = err.expect("the mapping must be rejected");
        assert!(msg.contains("api_token") && !msg.contains("very secret"), "{msg}");
    }
}
