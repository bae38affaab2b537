//! cyberbiz_fdw: a PostgreSQL foreign data wrapper for the CYBERBIZ e-commerce API.
//!
//! Layout follows the design's nouns: `catalog` (resources as data), `options` (what may be
//! configured, validated), `error` (one error type, SQLSTATEs), and `fdw` (the only module that
//! talks to Postgres through pgrx/pg_sys).

pub mod catalog;
pub mod decode;
pub mod error;
pub mod fdw;
pub mod options;

::pgrx::pg_module_magic!(name, version);

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    use std::sync::OnceLock;

    static SANDBOX: OnceLock<cyberbiz_sandbox::Background> = OnceLock::new();

    pub fn setup(_options: Vec<&str>) {
        let cfg = cyberbiz_sandbox::Config {
            rps: 0,
            anchor: cyberbiz_sandbox::clock::parse_local("2026-11-28 12:00:00", false),
            ..Default::default()
        };
        let sb = cyberbiz_sandbox::spawn_background(cfg).expect("start the sandbox for pg_tests");
        std::fs::write(crate::pg_tests::SANDBOX_URL_FILE, &sb.url).expect("write the sandbox URL file");
        let _ = SANDBOX.set(sb);
    }

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
