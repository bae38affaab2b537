//! cyberbiz_fdw: a PostgreSQL foreign data wrapper for the CYBERBIZ e-commerce API.
//!
//! Layout follows the design's nouns: `catalog` (resources as data), `options` (what may be
//! configured, validated), `error` (one error type, SQLSTATEs), and `fdw` (the only module that
//! talks to Postgres through pgrx/pg_sys).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod catalog;
pub mod decode;
pub mod error;
pub mod fdw;
pub mod http;
pub mod limiter;
pub mod options;
pub mod plan;
pub mod pump;
pub mod webhook;
pub mod write;

::pgrx::pg_module_magic!(name, version);

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
