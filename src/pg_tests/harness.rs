//! The pg_test harness pgrx calls (`crate::pg_test`): starts the sandboxes once per run and
//! writes their URLs and tokens where the test backend reads them (`fixtures.rs`).

use cyberbiz_sandbox::{clock, spawn_background, Background, Config};
use std::io::{Read, Write};
use std::sync::OnceLock;

static SANDBOXES: OnceLock<Vec<Background>> = OnceLock::new();

/// An HTTP server that answers every request with `status`, `headers` and `body` (an API gone
/// wrong: truncated JSON, an object for a list, a redirect, a NUL in a string).
fn canned_server(status: &'static str, headers: &'static str, body: &'static [u8]) -> String {
    let head = move |len: usize| format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}content-length: {len}\r\nconnection: close\r\n\r\n");
    raw_server(move || [head(body.len()).as_bytes(), body].concat())
}

/// An HTTP server that answers every request with the bytes `response()` makes, then closes.
fn raw_server(response: impl Fn() -> Vec<u8> + Send + 'static) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ = s.write_all(&response());
        }
    });
    url
}

/// Starts the sandboxes the pg_tests talk to and writes their URLs where the backend reads them.
pub fn setup(_options: Vec<&str>) {
    SANDBOXES.get_or_init(start_all);
}

fn start_all() -> Vec<Background> {
    let now = clock::parse_local("2026-11-28 12:00:00", false);
    let base = Config { rps: 0, anchor: now, ..Default::default() };
    let configs = [
        ("main", base.clone()),
        // Tests that read a request log get a sandbox of their own (tests run in parallel).
        ("counted", base.clone()),
        ("keys", base.clone()),
        ("shifting", Config { latency_ms: 100, ..base.clone() }),
        ("pushdown", base.clone()),
        ("estimate", base.clone()),
        ("writes", base.clone()),
        // every_writable_resource_round_trips writes while another test reads the writes log.
        ("round_trips", base.clone()),
        ("writes_refused", base.clone()),
        ("writes_errors", base.clone()),
        ("apidemo", Config { max_body_bytes: 2048, ..base.clone() }),
        ("dropping", Config { drop_rate: 1.0, ..base.clone() }),
        ("differential", Config { orders: 400, customers: 150, ..base.clone() }),
        ("limited", Config { rps: 2, ..base.clone() }),
        ("flaky", Config { fail_rate: 0.3, drop_rate: 0.2, seed: 3, ..base.clone() }),
        ("slow", Config { latency_ms: 20_000, ..base.clone() }),
        ("sluggish", Config { latency_ms: 1500, ..base.clone() }),
        ("tardy", Config { latency_ms: 3000, ..base.clone() }),
        ("paced", Config { rps: 5, latency_ms: 50, ..base.clone() }),
        ("shared", Config { rps: 5, latency_ms: 50, ..base.clone() }),
        ("progress", Config { rps: 5, latency_ms: 50, ..base.clone() }),
        ("replica", Config { latency_ms: 150, orders: 300, ..base.clone() }),
        ("capped", Config { customers: 120, ..base.clone() }),
        ("locking", Config { latency_ms: 500, customers: 60, ..base.clone() }),
        ("busy", Config { latency_ms: 100, orders: 1500, ..base.clone() }),
        ("deleting", Config { latency_ms: 300, ..base.clone() }),
        ("verifying", Config { orders: 2000, ..base.clone() }),
        ("moving", Config { latency_ms: 300, ..base.clone() }),
        // One shop in two shapes (tests/sandbox/src/style.rs): the rows must decode the same.
        ("older", Config { style: cyberbiz_sandbox::style::Style::Older, ..base.clone() }),
        ("twin", base.clone()),
        ("terminated", Config { rps: 5, latency_ms: 50, ..base.clone() }),
    ];
    let mut lines = Vec::new();
    let mut keep = Vec::new();
    for (name, cfg) in configs {
        let sb = spawn_background(cfg).expect("start a sandbox for pg_tests");
        lines.push(format!("{name} {}", sb.url));
        keep.push(sb);
    }
    lines.push(format!("garbage {}", canned_server("200 OK", "", b"[{\"id\": 1, \"title\": \"broken")));
    lines.push(format!("object {}", canned_server("200 OK", "", b"{\"id\": 1, \"title\": \"not a list\"}")));
    lines.push(format!("nul {}", canned_server("200 OK", "", b"[{\"id\": 1, \"title\": \"tea\\u0000pot\"}]")));
    // A write answered 201 whose body breaks off: the answer cannot be read.
    lines
        .push(format!("cutoff {}", raw_server(|| b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"id\": 9".to_vec())));
    lines.push(format!("redirect {}", canned_server("302 Found", "location: https://elsewhere.example.com/v1/orders?page=1\r\n", b"")));
    let secret = cyberbiz_sandbox::config::DEFAULT_JWT_SECRET;
    let now_unix = clock::now_unix_f64() as i64;
    lines.push(format!("token {}", cyberbiz_sandbox::token(secret, cyberbiz_sandbox::ALL_SCOPES, 86_400)));
    lines.push(format!("token_products {}", cyberbiz_sandbox::token(secret, "read_products", 86_400)));
    lines.push(format!(
        "token_expired {}",
        cyberbiz_sandbox::jwt::encode(secret, cyberbiz_sandbox::ALL_SCOPES, now_unix - 7200, 3600, 7109, "sandbox.cyberbiz.co")
    ));
    let dir = std::env::var("CARGO_PGRX_TEST_PGDATA").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-pgdata").to_string());
    let _ = std::fs::create_dir_all(&dir);
    let file = std::path::Path::new(&dir).join(crate::pg_tests::FIXTURE_FILE);
    std::fs::write(&file, lines.join("\n")).expect("write the fixture file");
    keep
}

#[must_use]
pub fn postgresql_conf_options() -> Vec<&'static str> {
    // One request budget per token for the whole cluster (the fallback without it is tested by
    // pg_regress's `fallback`, on a server of its own).
    // The webhook receiver listens on a port of its choosing (shown by cyberbiz_stat_receiver).
    vec!["shared_preload_libraries = 'cyberbiz_fdw'", "cyberbiz.webhook_listen = '127.0.0.1:0'", "cyberbiz.webhook_database = 'pgrx_tests'"]
}
