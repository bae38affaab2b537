//! pg_tests: Limits and failures: the rate limiter, 429/5xx retries, exhausted retries, cancellation, auth errors, secrets kept out of messages.

#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::fixtures::*;
    use pgrx::prelude::*;

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

    /// Signals sent to a backend (cancel, terminate, procsignals) reach its main thread: every
    /// other thread (the HTTP runtime's worker and its blocking pool, used for DNS) blocks them.
    #[pg_test]
    fn helper_threads_block_postgres_signals() {
        connect("sig", "main", "token", "requests_per_second '1000'");
        Spi::run("SELECT count(*) FROM sig.orders").unwrap();
        let pid = std::process::id().to_string();
        let mut helpers = 0;
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            if task.file_name().to_string_lossy() == pid {
                continue;
            }
            let status = std::fs::read_to_string(task.path().join("status")).unwrap();
            let blocked = status.lines().find_map(|l| l.strip_prefix("SigBlk:")).map(|v| u64::from_str_radix(v.trim(), 16).unwrap()).unwrap();
            for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM, libc::SIGTERM] {
                assert!(blocked & (1 << (sig - 1)) != 0, "thread {:?} does not block signal {sig}: SigBlk {blocked:x}", task.file_name());
            }
            helpers += 1;
        }
        assert!(helpers >= 1, "the HTTP runtime runs a worker thread");
    }

    /// A view owned by a role that has a user mapping, read by a role that has none: the view
    /// owner's mapping is used (the range table entry's checkAsUser), as postgres_fdw does.
    #[pg_test]
    fn views_read_with_their_owners_user_mapping() {
        let (url, tok) = (fixture("main"), fixture("token"));
        Spi::run("CREATE ROLE cv_owner; CREATE ROLE cv_analyst").unwrap();
        Spi::run(&format!("CREATE SERVER cv FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}', requests_per_second '1000')")).unwrap();
        Spi::run(&format!("CREATE USER MAPPING FOR cv_owner SERVER cv OPTIONS (api_token '{tok}')")).unwrap();
        Spi::run("CREATE SCHEMA cv AUTHORIZATION cv_owner").unwrap();
        Spi::run("CREATE FOREIGN TABLE cv.orders (id bigint, order_status text) SERVER cv OPTIONS (resource 'orders')").unwrap();
        Spi::run("CREATE VIEW cv.open_orders AS SELECT id FROM cv.orders WHERE order_status = 'open'").unwrap();
        Spi::run("ALTER FOREIGN TABLE cv.orders OWNER TO cv_owner; ALTER VIEW cv.open_orders OWNER TO cv_owner").unwrap();
        Spi::run("GRANT USAGE ON SCHEMA cv TO cv_analyst; GRANT SELECT ON cv.open_orders TO cv_analyst").unwrap();
        Spi::run("SET LOCAL ROLE cv_analyst").unwrap();
        let through_view = Spi::get_one::<i64>("SELECT count(*) FROM cv.open_orders").unwrap().unwrap();
        assert!(through_view > 0, "the analyst reads through the view with its owner's token");
        Spi::run("RESET ROLE").unwrap();
        let (_, msg) = error_of("SELECT count(*) FROM cv.orders").unwrap();
        assert!(msg.contains("user mapping not found"), "the superuser itself has no mapping: {msg}");
    }

    /// Four sessions scan one token's shop at once: together they stay within the platform's
    /// 5 requests per second (the sandbox, like the platform, answers 429 above it), because
    /// every backend takes its sends from the token's one budget in shared memory.
    #[pg_test]
    fn concurrent_sessions_share_one_budget_per_token() {
        assert_eq!(Spi::get_one::<bool>("SELECT cyberbiz_fdw_shared_budgets()").unwrap(), Some(true), "the test server preloads the library");
        clear_log("shared");
        let sessions: Vec<_> = (0..4)
            .map(|i| {
                let (url, tok) = (fixture("shared"), fixture("token"));
                other_session(move |c| {
                    let mut tx = c.transaction().unwrap();
                    tx.batch_execute(&format!(
                        "CREATE SERVER sb{i} FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}', page_size '10');
                         CREATE USER MAPPING FOR CURRENT_USER SERVER sb{i} OPTIONS (api_token '{tok}');
                         CREATE FOREIGN TABLE sb{i}_customers (id bigint) SERVER sb{i} OPTIONS (resource 'customers')"
                    ))
                    .unwrap();
                    let n: i64 = tx.query_one(&format!("SELECT count(*) FROM sb{i}_customers"), &[]).unwrap().get(0);
                    let budgets: i64 =
                        tx.query_one("SELECT count(*) FROM cyberbiz_fdw_budgets() WHERE server LIKE 'sb_' AND requests > 0", &[]).unwrap().get(0);
                    tx.rollback().unwrap();
                    (n, budgets)
                })
            })
            .collect();
        for s in sessions {
            assert_eq!(s.join().unwrap(), (120, 1), "every session read every row, through one budget");
        }
        let log = request_log("shared");
        assert_eq!(log.len(), 48, "12 pages per session, no retry");
        assert_eq!(log.iter().filter(|e| e["status"] == 429).count(), 0, "no 429: one budget for the token");
    }

    /// Backends terminated again and again in the middle of their scans (their HTTP threads
    /// in the token's budget at that moment) leave the budget usable: the budgets view answers
    /// at once, and another session scans the whole table at the token's pace, with no 429.
    #[pg_test]
    fn terminated_scanners_leave_the_budget_usable() {
        // Each session makes its own server (uncommitted, so other sessions never wait on it).
        let scan = |app: &'static str, srv: String| {
            let (url, tok) = (fixture("terminated"), fixture("token"));
            other_session(move |c| {
                let mut tx = c.transaction().ok()?;
                tx.batch_execute(&format!(
                    "SET LOCAL application_name = '{app}';
                     CREATE SERVER {srv} FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}', page_size '10');
                     CREATE USER MAPPING FOR CURRENT_USER SERVER {srv} OPTIONS (api_token '{tok}');
                     CREATE FOREIGN TABLE {srv}_customers (id bigint) SERVER {srv} OPTIONS (resource 'customers')"
                ))
                .ok()?;
                tx.query_one(&format!("SELECT count(*) FROM {srv}_customers"), &[]).ok().map(|r| r.get::<_, i64>(0))
            })
        };
        for round in 0..8u64 {
            let victims: Vec<_> = (0..3).map(|i| scan("tb_victim", format!("tb_{round}_{i}"))).collect();
            std::thread::sleep(std::time::Duration::from_millis(400 + 150 * round));
            // (From another session: this transaction's view of pg_stat_activity is a snapshot.)
            other_session(|c| c.batch_execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tb_victim'").unwrap())
                .join()
                .unwrap();
            for v in victims {
                assert_eq!(v.join().unwrap(), None, "terminated mid-scan");
            }
        }
        let readable = other_session(|c| {
            c.batch_execute("SET statement_timeout = '2s'").unwrap();
            c.query_one("SELECT count(*) FROM cyberbiz_stat_budgets", &[]).map(|r| r.get::<_, i64>(0)).map_err(|e| e.to_string())
        });
        assert!(readable.join().unwrap().is_ok(), "the budgets view answers");
        assert_eq!(scan("tb_after", "tb_after".into()).join().unwrap(), Some(120), "another session scans everything");
    }

    /// A long scan shows in cyberbiz_stat_activity while it runs (pages done of total, rows,
    /// requests) and, with cyberbiz.progress_interval set, tells its progress in NOTICEs.
    #[pg_test]
    fn long_scans_show_their_progress() {
        let (url, tok) = (fixture("progress"), fixture("token"));
        let notices = Notices::default();
        let scan = other_session_noting(notices.clone(), move |c| {
            let mut tx = c.transaction().unwrap();
            tx.batch_execute(&format!(
                "SET LOCAL cyberbiz.progress_interval = 1;
                 CREATE SERVER pr FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}', page_size '10');
                 CREATE USER MAPPING FOR CURRENT_USER SERVER pr OPTIONS (api_token '{tok}');
                 CREATE FOREIGN TABLE pr_orders (id bigint) SERVER pr OPTIONS (resource 'orders')"
            ))
            .unwrap();
            let n: i64 = tx.query_one("SELECT count(*) FROM pr_orders", &[]).unwrap().get(0);
            tx.rollback().unwrap();
            n
        });
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let seen = Spi::get_one::<String>("SELECT pages_done || ' of ' || pages_total || ', ' || rows || ' rows, ' || (estimated_finish > started) FROM cyberbiz_stat_activity WHERE table_name = 'pr_orders'").unwrap();
        assert_eq!(scan.join().unwrap(), 250);
        let seen = seen.expect("the running scan is in the view");
        assert!(seen.contains(" of 25, ") && seen.ends_with(" rows, true") && !seen.starts_with("0 of"), "{seen}");
        let notices = notices.lock().unwrap().clone();
        assert!(notices.iter().any(|n| n.starts_with("pr_orders: page ") && n.contains(" of 25, ") && n.ends_with(" s left")), "{notices:?}");
        assert_eq!(Spi::get_one::<i64>("SELECT count(*) FROM cyberbiz_stat_activity WHERE table_name = 'pr_orders'").unwrap(), Some(0), "gone when done");
    }
}
