//! cyberbiz_fdw: a PostgreSQL foreign data wrapper for the CYBERBIZ e-commerce API.
//!
//! Layout follows the design's nouns: `catalog` (resources as data), `options` (what may be
//! configured, validated), `error` (one error type, SQLSTATEs), and `fdw` (the only module that
//! talks to Postgres through pgrx/pg_sys).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod budget;
pub mod catalog;
pub mod decode;
pub mod error;
pub mod fdw;
pub mod http;
pub mod limiter;
pub mod options;
pub mod plan;
pub mod progress;
pub mod pump;
pub mod receiver;
pub mod replica;
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
