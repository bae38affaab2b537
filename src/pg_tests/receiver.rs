//! pg_tests: the webhook receiver, a background worker of the preloaded test server: answers
//! after the commit, refuses before any database work, counts, and follows a reload.

#[pgrx::pg_schema]
mod tests {
    use crate::pg_tests::fixtures::*;
    use pgrx::prelude::*;

    fn sign(body: &[u8], secret: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(body);
        m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The port the receiver listens on, once it does (and, with `not`, once it moved off it).
    fn port(not: Option<i32>) -> i32 {
        // The worker may be waiting out its 5 s restart delay (the test database did not
        // exist when the server started).
        for _ in 0..600 {
            let p = Spi::get_one::<i32>("SELECT port FROM cyberbiz_stat_receiver").unwrap();
            if let Some(p) = p.filter(|p| Some(*p) != not) {
                return p;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the receiver does not listen");
    }

    fn post(port: i32, event: &str, body: &[u8], signature: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{port}/webhooks");
        let body = body.to_vec();
        let (event, signature) = (event.to_string(), signature.to_string());
        crate::runtime::runtime().block_on(async move {
            let r = reqwest::Client::new()
                .post(&url)
                .header("X-Cyberbiz-Event", event)
                .header("X-Cyberbiz-Hmac-Sha256", signature)
                .header("X-Cyberbiz-Domain", "recv.cyberbiz.co")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap_or(-1)
    }

    fn stat(column: &str) -> i64 {
        count(&format!("SELECT {column} FROM cyberbiz_stat_receiver"))
    }

    /// Deliveries are stored once and acknowledged after the commit; a redelivery is a 200 that
    /// stores nothing; a wrong or missing signature is 401, a body over 2 MB 413, malformed JSON
    /// 400, and none of them stores a row; /healthz answers; the counters count. Then a reload
    /// with a new cyberbiz.webhook_listen moves the receiver (one test: the receiver is one).
    #[pg_test]
    fn the_receiver_stores_verified_deliveries_once_and_follows_reloads() {
        stores_verified_deliveries_once();
        a_reload_moves_the_receiver();
    }

    fn stores_verified_deliveries_once() {
        let url = fixture("main");
        other_session(move |c| {
            c.batch_execute(&format!(
                "CREATE SERVER recv FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}', shop_domain 'recv.cyberbiz.co');
                 CREATE USER MAPPING FOR CURRENT_USER SERVER recv OPTIONS (api_token 'a.b.c', app_secret 'recv-secret');
                 SELECT cyberbiz_replicate('recv', 'recv_rep', ARRAY['orders'])"
            ))
            .unwrap()
        })
        .join()
        .unwrap();
        let port = port(None);
        std::thread::sleep(std::time::Duration::from_millis(1200)); // the worker reads App Secrets every second
        let health =
            crate::runtime::runtime().block_on(async move { reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.unwrap().status().as_u16() });
        assert_eq!(health, 200);
        let before = (stat("accepted"), stat("duplicates"), stat("rejected_signature"), stat("rejected_too_large"), stat("rejected_malformed"));
        let body = br#"{"id": 880001, "order_number": 1, "updated_at": "2026-11-28 10:00:00"}"#;
        let (status, text) = post(port, "orders/paid", body, &sign(body, "recv-secret"));
        assert_eq!(status, 200, "{text}");
        let id: i64 = text.trim().parse().unwrap_or_else(|_| panic!("an event id: {text}"));
        assert_eq!(count(&format!("SELECT count(*) FROM cyberbiz_webhook_events WHERE id = {id} AND server = 'recv'")), 1, "committed before the 200");
        // (Into the server's replica, so the tests of the shared 0.1.0 mirrors see nothing of it.)
        assert_eq!(count("SELECT count(*) FROM recv_rep.orders WHERE id = 880001"), 1);
        let (status, text) = post(port, "orders/paid", body, &sign(body, "recv-secret"));
        assert_eq!((status, text.trim().to_string()), (200, format!("{id} (duplicate)")));
        let other = br#"{"id": 880002, "updated_at": "2026-11-28 10:00:00"}"#;
        assert_eq!(post(port, "orders/paid", other, &sign(other, "not-the-secret")).0, 401);
        assert_eq!(post(port, "orders/paid", other, "").0, 401);
        let big = vec![b' '; crate::webhook::MAX_BODY_BYTES + 10];
        assert_eq!(post(port, "orders/paid", &big, "00").0, 413);
        let bad = br#"{"id": 880003, "#;
        assert_eq!(post(port, "orders/paid", bad, &sign(bad, "recv-secret")).0, 400);
        assert_eq!(count("SELECT count(*) FROM cyberbiz_webhook_events WHERE resource_id IN (880002, 880003)"), 0, "refusals store nothing");
        let after = (stat("accepted"), stat("duplicates"), stat("rejected_signature"), stat("rejected_too_large"), stat("rejected_malformed"));
        assert_eq!(after, (before.0 + 1, before.1 + 1, before.2 + 2, before.3 + 1, before.4 + 1));
        assert!(count("SELECT (mean_latency_ms >= 0)::int FROM cyberbiz_stat_receiver") == 1);
        // A delivery that must wait on a row lock (here: its own event, inserted by this
        // transaction, not committed) is answered 503 after a bounded wait, and counted.
        let held = r#"{"id": 880004, "updated_at": "2026-11-28 10:00:00"}"#;
        let signature = sign(held.as_bytes(), "recv-secret");
        Spi::run_with_args("SELECT cyberbiz_ingest_webhook($1, 'orders/paid', $2, 'recv.cyberbiz.co')", &[held.into(), signature.as_str().into()]).unwrap();
        let unavailable = stat("unavailable");
        let started = std::time::Instant::now();
        let (status, text) = post(port, "orders/paid", held.as_bytes(), &signature);
        let waited = started.elapsed();
        assert_eq!(status, 503, "{text}");
        let wait = crate::receiver::limits::LOCK_WAIT;
        assert!(waited >= wait - std::time::Duration::from_millis(500) && waited < wait * 3, "{waited:?}");
        assert_eq!(stat("unavailable"), unavailable + 1);
    }

    fn a_reload_moves_the_receiver() {
        let old = port(None);
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let set = move |v: String| {
            // Separate statements: ALTER SYSTEM refuses to run in a (multi-statement) transaction.
            other_session(move |c| {
                c.batch_execute(&format!("ALTER SYSTEM SET cyberbiz.webhook_listen = '{v}'")).unwrap();
                c.batch_execute("SELECT pg_reload_conf()").unwrap()
            })
            .join()
            .unwrap()
        };
        set(format!("127.0.0.1:{free}"));
        let moved = port(Some(old));
        assert_eq!(moved, free as i32);
        set("127.0.0.1:0".into());
        assert_ne!(port(Some(moved)), moved);
    }
}
