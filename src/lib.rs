//! cyberbiz_fdw: a PostgreSQL foreign data wrapper for the CYBERBIZ e-commerce API.
//!
//! Two layers. The pure modules decide everything and are covered by plain unit tests:
//! `catalog` (resources as data, and their DDL text), `options` (what may be configured,
//! validated), `error` (one error type, SQLSTATEs), `plan`, `decode`, `http` (requests, retries,
//! error mapping), `pace` (the interval, the shared budget, the per-backend limiter, the wait),
//! `runtime` (the backend's async runtime, signals, interruptible waits), `pump`, `progress`,
//! `write`, `webhook`, `receiver`, `replica`. `fdw/` is the only code that talks to Postgres (pgrx, pg_sys); a file there bears
//! the name of the pure module it serves (a source test holds the rule):
//!
//! | pure            | Postgres side                                                          |
//! |-----------------|------------------------------------------------------------------------|
//! | `plan`          | `fdw/quals.rs`, `fdw/paths.rs`, `fdw/private.rs`, `fdw/exec.rs`         |
//! | `decode`        | `fdw/datum.rs`                                                         |
//! | `write`         | `fdw/write.rs`                                                         |
//! | `pace::budget`  | `fdw/budget.rs` (shared memory, also of `progress` and the receiver)   |
//! | `progress`      | `fdw/progress.rs`                                                      |
//! | `webhook`       | `fdw/webhook.rs`                                                       |
//! | `receiver`      | `fdw/receiver.rs` (and `fdw/worker.rs`, what both workers share)       |
//! | `replica`       | `fdw/replica.rs`, `fdw/scheduler.rs`, `fdw/rounds.rs`, `sql/replica.sql`, `sql/schedule.sql` |
//! | `catalog::ddl`  | `fdw/import.rs`                                                        |
//!
//! Three paths to follow:
//! - a scan: `fdw/paths.rs` (quals from `fdw/quals.rs` -> `plan::Planner` -> a ForeignScan whose
//!   `fdw_private` is `fdw/private.rs`) -> `fdw/exec.rs` (pages from `pump` over `http`) ->
//!   `decode` -> `fdw/datum.rs` (slots);
//! - a webhook: `receiver` (HTTP threads: size, HMAC via `webhook`, the server) -> a queue ->
//!   `fdw/receiver.rs` (one transaction) -> `cyberbiz_ingest_webhook` in `sql/webhooks.sql` (the
//!   event row) -> `cyberbiz_replica_apply_event` in `sql/replica.sql` ->
//!   `cyberbiz_fdw_replica_apply` in `fdw/replica.rs` (the statement of `replica::apply_sql`);
//! - a request's pacing: `fdw/budget.rs::settings` hands the cluster's budgets to
//!   `http::Client`, whose `pace::Pacer` takes the token's shared budget (or the per-backend
//!   `pace::limiter`) -> each request waits for its slot (`Pacer::acquire`, on the `runtime`,
//!   interruptible) -> a 429 moves the budget for every backend on the token (`Pacer::throttle`).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod catalog;
pub mod decode;
pub mod error;
pub mod fdw;
pub mod http;
pub mod options;
pub mod pace;
pub mod plan;
pub mod progress;
pub mod pump;
pub mod receiver;
pub mod replica;
pub mod runtime;
pub mod webhook;
pub mod write;

use pgrx::prelude::pg_guard;

::pgrx::pg_module_magic!(name, version);

/// Runs when the library loads: in the postmaster when preloaded (then the cluster-wide request
/// budgets get their shared memory), else in the first backend that uses the wrapper.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    fdw::shared_init();
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

#[cfg(test)]
mod source_tests;

#[cfg(test)]
mod property_tests;

/// Required by `cargo pgrx test`: starts the sandboxes the pg_tests talk to.
#[cfg(test)]
#[path = "pg_tests/harness.rs"]
pub mod pg_test;
