//! Helpers every pg_test section uses: the fixture file written by `harness.rs` (sandbox URLs,
//! tokens), servers on those sandboxes, their request logs, and caught errors.

use pgrx::prelude::*;

/// A value written by pg_test::setup: a sandbox URL (`main`, `limited`, ...) or a token.
pub(crate) fn fixture(name: &str) -> String {
    let data = Spi::get_one::<String>("SELECT current_setting('data_directory')").unwrap().unwrap();
    let file = std::path::Path::new(&data).parent().unwrap().join(super::FIXTURE_FILE);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("fixture file {file:?} written by pg_test::setup: {e}"));
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' '))).unwrap_or_else(|| panic!("no fixture {name}")).to_string()
}

pub(crate) fn sandbox_url() -> String {
    fixture("main")
}

/// A server on sandbox `which` with a user mapping holding token `token`, and every table imported
/// into schema `schema`.
pub(crate) fn connect(schema: &str, which: &str, token: &str, server_options: &str) {
    let url = fixture(which);
    let tok = fixture(token);
    let extra = if server_options.is_empty() { String::new() } else { format!(", {server_options}") };
    Spi::run(&format!("CREATE SERVER {schema}_srv FOREIGN DATA WRAPPER cyberbiz_fdw OPTIONS (api_url '{url}'{extra})")).unwrap();
    Spi::run(&format!("CREATE USER MAPPING FOR CURRENT_USER SERVER {schema}_srv OPTIONS (api_token '{tok}')")).unwrap();
    Spi::run(&format!("CREATE SCHEMA {schema}")).unwrap();
    Spi::run(&format!("IMPORT FOREIGN SCHEMA cyberbiz FROM SERVER {schema}_srv INTO {schema}")).unwrap();
}

/// The sandbox's request log (method, path, status, timestamp).
pub(crate) fn request_log(which: &str) -> Vec<serde_json::Value> {
    let url = format!("{}/__sandbox/requests", fixture(which));
    crate::runtime::runtime().block_on(async { reqwest::get(&url).await.unwrap().json::<Vec<serde_json::Value>>().await.unwrap() })
}

pub(crate) fn clear_log(which: &str) {
    let url = format!("{}/__sandbox/requests", fixture(which));
    crate::runtime::runtime().block_on(async { reqwest::Client::new().delete(&url).send().await.unwrap() });
}

/// The shop of sandbox `which` changes `count` orders (their updated_at becomes now).
pub(crate) fn touch_orders(which: &str, count: usize) {
    let url = format!("{}/__sandbox/touch?count={count}", fixture(which));
    crate::runtime::runtime().block_on(async { reqwest::Client::new().post(&url).send().await.unwrap() });
}

/// The shop of sandbox `which` loses object `id` of `table`, as when its admin deletes it in
/// the back office: no webhook, and for orders and customers no API call could have.
pub(crate) fn remove_object(which: &str, table: &str, id: i64) {
    let url = format!("{}/__sandbox/remove?table={table}&id={id}", fixture(which));
    let removed =
        crate::runtime::runtime().block_on(async { reqwest::Client::new().post(&url).send().await.unwrap().json::<serde_json::Value>().await.unwrap() });
    assert_eq!(removed["removed"], serde_json::json!(true), "{table} {id} removed from the shop");
}

/// Runs `sql`, returning the error message it raised (None if it succeeded).
pub(crate) fn error_of(sql: &str) -> Option<(String, String)> {
    PgTryBuilder::new(|| {
        Spi::run(sql).unwrap();
        None
    })
    .catch_others(|e| match e {
        pgrx::pg_sys::panic::CaughtError::PostgresError(r)
        | pgrx::pg_sys::panic::CaughtError::ErrorReport(r)
        | pgrx::pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => Some((format!("{:?}", r.sql_error_code()), r.message().to_string())),
    })
    .execute()
}

/// Runs `sql` in a subtransaction (rolled back on error, as the statement's own transaction
/// would be, so the test's transaction goes on): its error message, or None.
pub(crate) fn attempt(sql: &str) -> Option<String> {
    Spi::run(
        "CREATE OR REPLACE FUNCTION pg_temp.attempt(q text) RETURNS text LANGUAGE plpgsql AS $$
         BEGIN EXECUTE q; RETURN NULL; EXCEPTION WHEN others THEN RETURN SQLERRM; END $$",
    )
    .unwrap();
    Spi::get_one_with_args::<String>("SELECT pg_temp.attempt($1)", &[sql.into()]).unwrap()
}

/// The NOTICEs another session received.
pub(crate) type Notices = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Runs `f` on a thread of its own that blocks every signal (signals sent to this backend
/// must reach its main thread) and talks to the test server like another session would; the
/// session's NOTICEs are collected in `notices`.
pub(crate) fn other_session_noting<T: Send + 'static>(
    notices: Notices,
    f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let port = Spi::get_one::<String>("SELECT current_setting('port')").unwrap().unwrap();
    let user = Spi::get_one::<String>("SELECT current_user::text").unwrap().unwrap();
    let db = Spi::get_one::<String>("SELECT current_database()::text").unwrap().unwrap();
    let conninfo = format!("host=localhost port={port} user={user} dbname={db}");
    // The helper never calls into Postgres.
    crate::runtime::with_signals_blocked(|| {
        std::thread::spawn(move || {
            let mut config: postgres::Config = conninfo.parse().expect("a connection string");
            config.notice_callback(move |n| notices.lock().unwrap().push(n.message().to_string()));
            let mut c = config.connect(postgres::NoTls).expect("connect as another session");
            f(&mut c)
        })
    })
}

/// `other_session_noting`, ignoring NOTICEs.
pub(crate) fn other_session<T: Send + 'static>(f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    other_session_noting(Notices::default(), f)
}
