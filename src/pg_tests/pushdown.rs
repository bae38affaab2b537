//! pg_tests: Pushdown: the requests each WHERE/LIMIT/join makes, remote estimates, and results equal to a full scan.

#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::fixtures::*;
    use pgrx::prelude::*;

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
        assert_eq!(
            paths_of("pushdown", &format!("SELECT * FROM pd.orders WHERE order_number = {number}")),
            vec![format!("/v1/orders/get_order_id?order_numbers={number}"), format!("/v1/orders/{id}")]
        );
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

    /// Operators and collations that must never be pushed, in `schema`: a user-defined `=`
    /// (plpgsql, so it is not inlined away) and a nondeterministic collation `ci` under which
    /// 'OPEN' = 'open'.
    fn create_unshippable(schema: &str) {
        Spi::run(&format!("CREATE COLLATION {schema}.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)")).unwrap();
        Spi::run(&format!(
            "CREATE FUNCTION {schema}.loose_eq(text, text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN lower($1) = lower($2); END $$"
        ))
        .unwrap();
        Spi::run(&format!("CREATE OPERATOR {schema}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {schema}.loose_eq)")).unwrap();
    }

    /// One of `v`, at random.
    fn pick<'a>(rnd: &mut dyn FnMut(u64) -> u64, v: &[&'a str]) -> &'a str {
        v[rnd(v.len() as u64) as usize]
    }

    /// A random WHERE condition on orders, from every class of value: plain ones the API can
    /// apply, values it cannot say (separators, odd spaces, non-ASCII, NULL, empty), infinite
    /// and far bounds, collations and a user-defined operator.
    fn random_condition(rnd: &mut dyn FnMut(u64) -> u64, ids: &[i64]) -> String {
        let statuses = ["'paid'", "'cod'", "'pending'", "'refunded'", "'failed'"];
        let odd = ["'x,cod'", "' paid'", "'paid '", "'付款'", "NULL", "'100%'", "'a+b'", "''", "'Paid'"];
        let far = ["'infinity'", "'-infinity'", "'10000-01-01'", "'1960-01-01'", "'294276-12-31'", "'4713-01-01 BC'"];
        let days = ["2025-12-01", "2026-03-15", "2026-06-30", "2026-09-09", "2026-11-01", "2026-11-20"];
        match rnd(15) {
            0 => format!("financial_status IN ({}, {})", pick(rnd, &statuses), pick(rnd, &statuses)),
            1 => format!("order_status = '{}'", pick(rnd, &["open", "closed", "cancelled"])),
            2 => {
                format!("created_at {} '{} {:02}:{:02}:{:02}.{}+08'", pick(rnd, &[">=", ">", "<", "<="]), pick(rnd, &days), rnd(24), rnd(60), rnd(60), rnd(10))
            }
            3 => format!("updated_at >= '{}' AND updated_at < '{}'", pick(rnd, &days[..3]), pick(rnd, &days[3..])),
            4 => format!("id IN ({}, {}, {})", ids[rnd(ids.len() as u64) as usize], ids[rnd(ids.len() as u64) as usize], 1),
            5 => format!("order_number IN ({}, {})", 1001 + rnd(400), 1001 + rnd(400)),
            6 => format!("closed_at <= '{}'", pick(rnd, &days)),
            7 => format!("fulfillment_status = '{}'", pick(rnd, &["unshipped", "received", "fulfilled"])),
            9 => format!("financial_status IN ({}, {})", pick(rnd, &statuses), pick(rnd, &odd)),
            10 => format!("{} {} {}", pick(rnd, &["created_at", "updated_at", "closed_at"]), pick(rnd, &["<", "<=", ">", ">=", "="]), pick(rnd, &far)),
            11 => format!(
                "order_status {} '{}'{}",
                pick(rnd, &["= ", "OPERATOR(df.=)"]),
                pick(rnd, &["OPEN", "Open", "open", "closed"]),
                pick(rnd, &[" COLLATE df.ci", " COLLATE \"C\"", ""])
            ),
            12 => format!("order_status = ANY('{{{}}}'::text[])", pick(rnd, &["", "open", "open,NULL", "\"a,b\""])),
            13 => format!("tags ?| array[{}, {}]", pick(rnd, &["'VIP'", "'團購'", "'新客'"]), pick(rnd, &odd)),
            _ => format!("total_price > {}", rnd(20000)),
        }
    }

    #[pg_test]
    fn pushdown_results_equal_a_full_scan() {
        connect("df", "differential", "token", "requests_per_second '1000'");
        Spi::run("CREATE TEMP TABLE lo AS SELECT * FROM (SELECT * FROM df.orders OFFSET 0) o; CREATE TEMP TABLE lc AS SELECT * FROM (SELECT * FROM df.customers OFFSET 0) c").unwrap();
        let ids: Vec<i64> =
            Spi::connect(|c| c.select("SELECT id FROM lo ORDER BY id", None, &[]).unwrap().filter_map(|r| r.get::<i64>(1).ok().flatten()).collect());
        let mut seed = 12345u64;
        let mut rnd = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        create_unshippable("df");
        let mut checked = 0;
        for _ in 0..300 {
            let conds: Vec<String> = (0..(1 + rnd(3))).map(|_| random_condition(&mut rnd, &ids)).collect();
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
        for w in [
            "updated_at >= '2026-06-01'",
            "updated_at < '2025-01-01 08:00:00+08'",
            "email = 'customer7@example.com'",
            "mobile IN ('0910000010', '0910000011')",
            "id IN (SELECT id FROM lc ORDER BY id LIMIT 7)",
        ] {
            let remote = Spi::get_one::<String>(&format!("SELECT coalesce(array_agg(id ORDER BY id)::text, '{{}}') FROM df.customers WHERE {w}")).unwrap();
            let local = Spi::get_one::<String>(&format!("SELECT coalesce(array_agg(id ORDER BY id)::text, '{{}}') FROM lc WHERE {w}")).unwrap();
            assert_eq!(remote, local, "customers WHERE {w}");
        }
        let joined =
            Spi::get_one::<i64>("SELECT count(*) FROM (SELECT id FROM lo ORDER BY id LIMIT 15) p JOIN df.order_line_items li ON li.order_id = p.id").unwrap();
        let local_joined = Spi::get_one::<i64>("SELECT sum(jsonb_array_length(line_items)) FROM (SELECT * FROM lo ORDER BY id LIMIT 15) p").unwrap();
        assert_eq!(joined, local_joined);
        assert_eq!(checked, 300);
    }

    /// The cases where pushdown once changed a result, each against a local copy: collations,
    /// a user-defined `=`, list values holding the separator, ±infinity, odd values, NULLs in IN
    /// lists, empty arrays, generic plans, correlated subqueries (rescans with new values) and
    /// LIMIT/OFFSET with local quals.
    #[pg_test]
    fn pushdown_never_changes_a_result() {
        connect("nc", "differential", "token", "requests_per_second '1000'");
        Spi::run("CREATE TEMP TABLE nco AS SELECT * FROM (SELECT * FROM nc.orders OFFSET 0) o").unwrap();
        create_unshippable("nc");
        let same = |select: &str| {
            let q = |t: &str| format!("SELECT coalesce(array_agg(x ORDER BY x)::text, '{{}}') FROM ({}) r(x)", select.replace("{t}", t));
            let (remote, local) = (Spi::get_one::<String>(&q("nc.orders")).unwrap(), Spi::get_one::<String>(&q("nco")).unwrap());
            assert_eq!(remote, local, "{select}");
            remote
        };
        let open = same("SELECT id FROM {t} WHERE order_status = 'OPEN' COLLATE nc.ci");
        assert_ne!(open.as_deref(), Some("{}"), "the nondeterministic collation matches the open orders");
        same("SELECT id FROM {t} WHERE order_status OPERATOR(nc.=) 'OPEN'");
        same("SELECT id FROM {t} WHERE order_status = 'open' COLLATE \"C\"");
        same("SELECT id FROM (SELECT id FROM {t} WHERE financial_status IN ('paid', 'x,cod') LIMIT 10) l");
        for w in [
            "created_at < 'infinity'",
            "created_at > '-infinity'",
            "created_at < '-infinity'",
            "created_at > 'infinity'",
            "created_at <= '10000-01-01'",
            "created_at >= '1900-01-01'",
        ] {
            same(&format!("SELECT id FROM {{t}} WHERE {w}"));
        }
        for w in [
            "order_status = ' open'",
            "order_status IN ('open', NULL)",
            "order_status = ANY('{}'::text[])",
            "tags ? '團購 A+'",
            "tags ?| array['VIP', '100%', 'a,b']",
            "order_status = ''",
        ] {
            same(&format!("SELECT id FROM {{t}} WHERE {w}"));
        }
        // LIMIT/OFFSET with a qual only Postgres can check.
        same("SELECT id FROM (SELECT id FROM {t} WHERE financial_status = 'paid' AND total_price > 500 LIMIT 5 OFFSET 3) l");
        // Correlated subqueries: the inner scan reruns with new pushed values.
        same("SELECT s || ':' || (SELECT count(*) FROM {t} o WHERE o.financial_status = v.s) FROM (VALUES ('paid'), ('cod'), ('x,cod'), ('refunded')) v(s)");
        same("SELECT s || ':' || (SELECT count(*) FROM {t} o WHERE o.created_at < v.s::timestamptz) FROM (VALUES ('2026-06-01'), ('infinity'), ('-infinity')) v(s)");
        // Generic plans: the values come at execution.
        Spi::run("SET LOCAL plan_cache_mode = force_generic_plan").unwrap();
        for t in ["nc.orders", "nco"] {
            Spi::run(&format!(
                "PREPARE nc_{}(text[], timestamptz) AS SELECT id FROM {t} WHERE financial_status = ANY($1) AND created_at < $2",
                t.replace('.', "_")
            ))
            .unwrap();
        }
        for (arr, ts) in [("{paid,\"x,cod\"}", "infinity"), ("{paid,cod}", "2026-10-01"), ("{}", "2026-10-01"), ("{paid,NULL}", "-infinity")] {
            let q = |name: &str| {
                format!("SELECT coalesce(array_agg(id ORDER BY id)::text, '{{}}') FROM (SELECT id FROM {name} WHERE id IN (SELECT id FROM nco)) x")
            };
            Spi::run(&format!("CREATE TEMP TABLE nc_r1 AS EXECUTE nc_nc_orders('{arr}', '{ts}')")).unwrap();
            Spi::run(&format!("CREATE TEMP TABLE nc_r2 AS EXECUTE nc_nco('{arr}', '{ts}')")).unwrap();
            assert_eq!(Spi::get_one::<String>(&q("nc_r1")).unwrap(), Spi::get_one::<String>(&q("nc_r2")).unwrap(), "EXECUTE ({arr}, {ts})");
            Spi::run("DROP TABLE nc_r1, nc_r2").unwrap();
        }
        Spi::run("DEALLOCATE nc_nc_orders; DEALLOCATE nc_nco").unwrap();
    }
}
