//! Tests that need a real backend (`cargo pgrx test`), sectioned by area like postgres_fdw.sql:
//! options, reads, pushdown, writes, webhooks, limits, replica, receiver. The sandboxes they
//! talk to start once per run (`harness.rs`, the `pg_test` module pgrx calls); `fixtures.rs`
//! connects tests to them.
//! Each section is its own `#[pg_schema] mod tests` (pgrx runs pg_tests in schema `tests`).

/// Where the test backend finds the sandboxes and tokens of this run: a file beside its data
/// directory (`--runas` passes only CARGO*/RUST* variables to the server, and a fixed path
/// would be shared by concurrent runs).
pub const FIXTURE_FILE: &str = "cyberbiz_fdw_fixtures";

mod fixtures;
mod limits;
mod options;
mod pushdown;
mod read;
mod receiver;
mod replica;
mod webhooks;
mod writes;
