//! The background workers of a preloaded cluster, what they share: their GUCs, their
//! registration (restarted by the postmaster after a crash), the connection to
//! `cyberbiz.webhook_database`, reloads and one transaction per unit of work. The workers
//! themselves: `receiver.rs` (the webhook receiver's main thread; its HTTP side is
//! `crate::receiver`), `scheduler.rs` (the replica sync scheduler) and `rounds.rs` (its sync workers).

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;
use std::time::Duration;

pub(super) static LISTEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"postgres"));
static ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub(super) static SYNC_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(0);
pub(super) static VERIFY_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub(super) static SYNC_WORKERS: GucSetting<i32> = GucSetting::<i32>::new(2);

/// Called from `_PG_init`: when preloading, the GUCs and the two workers (the workers exist only
/// in a preloaded cluster, and Postgres refuses postmaster-level GUCs defined later).
pub(crate) fn init() {
    // SAFETY: a plain flag Postgres sets while it loads shared_preload_libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    GucRegistry::define_string_guc(
        c"cyberbiz.webhook_listen",
        c"Address the webhook receiver listens on, e.g. 127.0.0.1:8787 (empty: off).",
        c"The cyberbiz_fdw background worker (shared_preload_libraries) serves HTTP there; a reload applies a change.",
        &LISTEN,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"cyberbiz.webhook_database",
        c"Database the webhook receiver and the sync scheduler work in.",
        c"It must have the cyberbiz_fdw extension, the servers and their user mappings.",
        &DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"cyberbiz.webhook_role",
        c"Role the background workers connect as (empty: the bootstrap superuser).",
        c"Its user mappings hold the App Secrets and API tokens used.",
        &ROLE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"cyberbiz.sync_interval",
        c"Seconds between the starts of scheduled sync rounds of each replicated server (0: off).",
        c"Run by cyberbiz_fdw sync workers, up to cyberbiz.sync_workers at once: the step CALL cyberbiz_sync runs, for every table of the server.",
        &SYNC_INTERVAL,
        0,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"cyberbiz.verify_interval",
        c"Seconds between the scheduler's verifications of each replica table (0: off).",
        c"After a sync round, the scheduler runs cyberbiz_verify for each table last verified (or first synced) that long ago; it runs only while cyberbiz.sync_interval is on.",
        &VERIFY_INTERVAL,
        0,
        30 * 86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"cyberbiz.sync_workers",
        c"Most servers (shops) the scheduler syncs at once, one sync worker each.",
        c"Each is a background worker: max_worker_processes (8 by default, 4 of them taken by the receiver, the scheduler, pg_cron and logical replication) must leave room for them and for parallel queries.",
        &SYNC_WORKERS,
        1,
        1_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    for (name, function) in [("cyberbiz_fdw webhook receiver", "cyberbiz_fdw_receiver_main"), ("cyberbiz_fdw sync scheduler", "cyberbiz_fdw_scheduler_main")] {
        BackgroundWorkerBuilder::new(name)
            .set_type(name)
            .set_library("cyberbiz_fdw")
            .set_function(function)
            .enable_spi_access()
            .set_restart_time(Some(Duration::from_secs(5)))
            .load();
    }
}

pub(super) fn setting(s: &GucSetting<Option<CString>>) -> String {
    s.get().map(|c| c.to_string_lossy().trim().to_string()).unwrap_or_default()
}

/// Attaches the signal handlers and connects to `cyberbiz.webhook_database`.
pub(super) fn start() {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = setting(&DATABASE);
    let role = setting(&ROLE);
    BackgroundWorker::connect_worker_to_spi(Some(if db.is_empty() { "postgres" } else { &db }), (!role.is_empty()).then_some(role.as_str()));
    // Nothing anyone created is found by an unqualified name: the session's search_path (it
    // outranks ALTER DATABASE/ROLE ... SET and the configuration file) holds only the
    // built-ins, and every call of the extension names its schema (`extension_schema`).
    BackgroundWorker::transaction(|| Spi::run("SET search_path = pg_catalog, pg_temp")).unwrap_or_else(|e| error!("cyberbiz_fdw worker: {e}"));
}

/// The schema of the extension, quoted for SQL text (None when the extension is not created):
/// the workers call the extension's functions by this qualified name only, with argument types
/// spelled out, so no function another role created (in any schema) can be chosen instead.
pub(super) fn extension_schema() -> Result<Option<String>, pgrx::spi::Error> {
    Spi::get_one::<String>(
        "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
         JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'cyberbiz_fdw'",
    )
}

/// Why a worker running as a superuser must not use the extension (None: it may): roles that
/// can log in, are not superusers, and may create objects in the extension's schema (its owner,
/// or one granted CREATE, or the owner of a database whose `public` holds it). Such a role could
/// put there a function or operator that matches an argument type more closely than the one
/// meant, and the superuser would run it. A worker running as another role risks only that
/// role's rights.
pub(super) fn schema_hazard() -> Result<Option<String>, pgrx::spi::Error> {
    // SAFETY: reads the current user's flag, on the main thread.
    if !unsafe { pg_sys::superuser() } {
        return Ok(None);
    }
    let roles = Spi::get_one::<String>(
        "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(r.rolname), ', ' ORDER BY r.rolname)
         FROM pg_catalog.pg_roles r, pg_catalog.pg_extension e
         WHERE e.extname = 'cyberbiz_fdw' AND r.rolcanlogin AND NOT r.rolsuper
           AND pg_catalog.has_schema_privilege(r.oid, e.extnamespace, 'CREATE')",
    )?;
    Ok(roles.map(|r| {
        format!(
            "role(s) {r} may create objects in the extension's schema, and this worker runs as a superuser: \
             set cyberbiz.webhook_role to a role of its own (README: the workers' role), or install the \
             extension into a schema only superusers create in"
        )
    }))
}

/// SIGTERM as in any backend: a FATAL at the next interrupt check, so a long sync step
/// (its HTTP waits check interrupts) stops at once, its transaction rolled back.
pub(super) fn on_sigterm_die() {
    // SAFETY: installs Postgres's own handler for this process's main thread.
    unsafe { pg_sys::pqsignal(libc::SIGTERM, Some(on_sigterm)) };
}

/// Postgres's `die`: sets the interrupt flags and the latch; the FATAL comes at the next check.
#[pg_guard]
extern "C-unwind" fn on_sigterm(signal: std::ffi::c_int) {
    // SAFETY: die only sets flags and the process latch, as it does in every backend.
    unsafe { pg_sys::die(signal) }
}

/// Applies a pending reload of the configuration (SIGHUP).
pub(super) fn reload_if_asked() {
    if BackgroundWorker::sighup_received() {
        // SAFETY: called on the worker's main thread, outside any transaction.
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    }
}

/// Runs `f` in a transaction of its own; an ERROR rolls it back and is returned (SQLSTATE,
/// message) instead of ending the worker.
pub(super) fn in_transaction<R>(f: impl FnOnce() -> R + std::panic::UnwindSafe + std::panic::RefUnwindSafe) -> Result<R, (String, String)> {
    PgTryBuilder::new(|| Ok(BackgroundWorker::transaction(f)))
        .catch_others(|e| {
            // SAFETY: the ERROR left the transaction failed; aborting it is what the executor's
            // own error recovery does, on the main thread.
            unsafe { pg_sys::AbortCurrentTransaction() };
            Err(match e {
                pg_sys::panic::CaughtError::PostgresError(r)
                | pg_sys::panic::CaughtError::ErrorReport(r)
                | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => (sqlstate(r.sql_error_code() as i32), r.message().to_string()),
            })
        })
        .execute()
}

/// The five characters of a SQLSTATE from its packed form (Postgres's MAKE_SQLSTATE).
pub(super) fn sqlstate(packed: i32) -> String {
    (0..5).map(|i| (((packed >> (6 * i)) & 0x3F) as u8 + b'0') as char).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqlstates_unpack() {
        assert_eq!(super::sqlstate(pgrx::PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION as i32), "22P02");
    }
}
