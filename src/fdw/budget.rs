//! The cluster-wide request budgets in Postgres's shared memory (for `crate::pace::budget`, when the
//! library is in shared_preload_libraries), the fallback to per-backend pacing (with a WARNING
//! once per backend), and the view of the budgets. The same one shared-memory setup places the
//! table of running scans (`crate::progress`, read by `progress.rs`) and the receiver's
//! counters (`crate::receiver`, read by `receiver.rs`).

use crate::http::Settings;
use crate::options::ServerOptions;
use crate::pace::budget::{self, Budgets};
use crate::progress::Activities;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, pg_sys, PGRXSharedMemory, PgAtomic};
use std::sync::atomic::{AtomicBool, Ordering};

// SAFETY: Budgets is repr(C) and made of atomics only (no pointers, no heap), so it means the
// same in every process that maps the segment, and every access is an atomic operation.
unsafe impl PGRXSharedMemory for Budgets {}

// SAFETY: Activities is repr(C) and made of atomics only, like Budgets.
unsafe impl PGRXSharedMemory for Activities {}

// SAFETY: receiver::Stats is repr(C) and made of atomics only, like Budgets.
unsafe impl PGRXSharedMemory for crate::receiver::Stats {}

// SAFETY: the names are ours alone.
static BUDGETS: PgAtomic<Budgets> = unsafe { PgAtomic::new(c"cyberbiz_fdw budgets") };
// SAFETY: as above.
static ACTIVITY: PgAtomic<Activities> = unsafe { PgAtomic::new(c"cyberbiz_fdw activity") };
// SAFETY: as above.
static RECEIVER: PgAtomic<crate::receiver::Stats> = unsafe { PgAtomic::new(c"cyberbiz_fdw receiver") };
/// Whether this library was preloaded (set in the postmaster, inherited by every backend).
static PRELOADED: AtomicBool = AtomicBool::new(false);
static WARNED: AtomicBool = AtomicBool::new(false);

/// Called from `_PG_init`: asks for the shared memory when preloading.
pub(crate) fn init() {
    // SAFETY: a plain flag Postgres sets while it loads shared_preload_libraries.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(BUDGETS = Budgets::new());
        pg_shmem_init!(ACTIVITY = Activities::new());
        pg_shmem_init!(RECEIVER = crate::receiver::Stats::new());
        PRELOADED.store(true, Ordering::Relaxed);
    }
}

/// The cluster's budgets, or None when the library was not preloaded.
pub(crate) fn budgets() -> Option<&'static Budgets> {
    PRELOADED.load(Ordering::Relaxed).then(|| BUDGETS.get())
}

/// The cluster's table of running scans, or None when the library was not preloaded.
pub(crate) fn activities() -> Option<&'static Activities> {
    PRELOADED.load(Ordering::Relaxed).then(|| ACTIVITY.get())
}

/// The webhook receiver's counters, or None when the library was not preloaded.
pub(crate) fn receiver_stats() -> Option<&'static crate::receiver::Stats> {
    PRELOADED.load(Ordering::Relaxed).then(|| RECEIVER.get())
}

/// The HTTP settings of a server: its options, and the cluster's budgets when preloaded. Not
/// preloaded, requests are paced per backend, and the first such request of a backend warns.
pub(crate) fn settings(server: &ServerOptions, server_name: &str) -> Settings {
    let mut s = Settings::for_server(server);
    s.budgets = budgets();
    s.server_name = server_name.to_string();
    if s.budgets.is_none() && !WARNED.swap(true, Ordering::Relaxed) {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_WARNING,
            "cyberbiz_fdw is not in shared_preload_libraries: each session paces its own requests, so concurrent sessions on one API token can together exceed the platform's 5 requests per second",
            "cyberbiz_fdw",
        )
        .set_hint("Preload it for one budget per token across the cluster: ALTER SYSTEM SET shared_preload_libraries = 'cyberbiz_fdw'; then restart PostgreSQL.")
        .report(PgLogLevel::WARNING);
    }
    s
}

/// One row per request budget in use: the server that first used it, requests in the last
/// minute, sent and throttled (429) since it was claimed, requests waiting, and how soon the
/// next may go. Never the token. Empty when the library is not preloaded.
#[pg_extern]
fn cyberbiz_fdw_budgets() -> TableIterator<
    'static,
    (
        name!(server, String),
        name!(requests_last_minute, i64),
        name!(requests, i64),
        name!(throttled, i64),
        name!(waiting, i64),
        name!(next_free_ms, i64),
        name!(interval_ms, f64),
    ),
> {
    let rows = budgets().map(|b| b.status(budget::now_ns())).unwrap_or_default();
    TableIterator::new(
        rows.into_iter()
            .map(|s| (s.server, s.requests_last_minute as i64, s.sent as i64, s.throttled as i64, s.waiting as i64, s.next_free_ms as i64, s.interval_ms)),
    )
}

/// Whether this backend paces requests with the cluster's shared budgets.
#[pg_extern]
fn cyberbiz_fdw_shared_budgets() -> bool {
    budgets().is_some()
}

extension_sql_file!("../../sql/stats.sql", name = "stats", requires = [cyberbiz_fdw_budgets]);
