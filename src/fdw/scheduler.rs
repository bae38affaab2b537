//! The replica sync scheduler (a background worker of a preloaded cluster): while
//! `cyberbiz.sync_interval` is on, it starts sync workers (dynamic background workers,
//! `rounds.rs`) for the servers whose rounds are due, up to `cyberbiz.sync_workers` at once.
//! Each worker claims one server's round at a time (`sql/schedule.sql`), so every shop syncs at
//! its own token's pace and one shop's first sync holds no other shop.
//!
//! Why workers and not one process driving many shops' requests: a sync step is SQL (the FDW
//! scan, the apply, the bookkeeping) in a transaction of its own, the one path CALL
//! cyberbiz_sync, pg_cron and verification run too; one backend per shop syncing keeps that one
//! path, and a shop whose step fails or stalls holds only its own worker.

use super::worker::{extension_schema, in_transaction, on_sigterm_die, reload_if_asked, schema_hazard, start, SYNC_INTERVAL, SYNC_WORKERS};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// The type (pg_stat_activity.backend_type) of a sync worker; `cyberbiz_sync_workers` knows it.
pub(super) const SYNC_WORKER: &str = "cyberbiz_fdw sync worker";
/// A worker started this recently is taken to be claiming a round already.
const STARTING: Duration = Duration::from_secs(1);

/// The scheduler's main loop: twice a second (and whenever a worker it started ends), as many
/// new sync workers as rounds wait, within `cyberbiz.sync_workers` running at once.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn cyberbiz_fdw_scheduler_main(_arg: pg_sys::Datum) {
    start();
    on_sigterm_die();
    // When workers were started: one started this recently may not show in pg_stat_activity
    // yet, and is taken to be claiming a round already.
    let mut launched: Vec<Instant> = Vec::new();
    let mut warned: Option<Instant> = None;
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(500))) {
        pg_sys::check_for_interrupts!();
        reload_if_asked();
        if SYNC_INTERVAL.get() <= 0 {
            continue;
        }
        launched.retain(|at| at.elapsed() < STARTING);
        let (waiting, running) = rounds_waiting().unwrap_or_else(|e| {
            warn_now_and_then(&mut warned, &e);
            (0, 0)
        });
        let room = (SYNC_WORKERS.get().max(1) as usize).saturating_sub(running + launched.len());
        for _ in 0..waiting.saturating_sub(launched.len()).min(room) {
            if !launch() {
                let msg = format!("no background worker slot for a sync worker ({running} running): raise max_worker_processes");
                warn_now_and_then(&mut warned, &msg);
                break;
            }
            launched.push(Instant::now());
        }
    }
}

/// How many servers' rounds are due and unclaimed, and how many sync workers run (those of an
/// earlier scheduler process too); an error when the extension must not be used by a superuser
/// (`schema_hazard`) or the query fails.
fn rounds_waiting() -> Result<(usize, usize), String> {
    let waiting = in_transaction(|| -> Result<Result<(usize, usize), String>, pgrx::spi::Error> {
        let Some(ext) = extension_schema()? else { return Ok(Ok((0, 0))) };
        if let Some(why) = schema_hazard()? {
            return Ok(Err(format!("scheduled sync: not run: {why}")));
        }
        let sql = format!("SELECT w.waiting, w.running FROM {ext}.cyberbiz_rounds_waiting() w");
        let (waiting, running) = Spi::connect(|c| c.select(&sql, None, &[])?.first().get_two::<i64, i64>())?;
        Ok(Ok((waiting.unwrap_or(0).max(0) as usize, running.unwrap_or(0).max(0) as usize)))
    });
    match waiting {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        // A failed query in a 0.6.0 schema (no rounds yet): the workers would fail the same way.
        Err((_, msg)) => Err(format!("is the extension updated? ALTER EXTENSION cyberbiz_fdw UPDATE: {msg}")),
    }
}

/// Warns, at most once a minute per `last`.
fn warn_now_and_then(last: &mut Option<Instant>, msg: &str) {
    if last.is_none_or(|w| w.elapsed() > Duration::from_secs(60)) {
        warning!("cyberbiz_fdw scheduler: {msg}");
        *last = Some(Instant::now());
    }
}

/// Starts one sync worker, which tells this process (its latch) when it ends; false when no
/// slot is free. No handle is kept (the workers are counted in pg_stat_activity): a handle is
/// allocated for the life of this process, one per worker started.
fn launch() -> bool {
    let builder = BackgroundWorkerBuilder::new(SYNC_WORKER)
        .set_type(SYNC_WORKER)
        .set_library("cyberbiz_fdw")
        .set_function("cyberbiz_fdw_sync_worker_main")
        .enable_spi_access()
        .set_restart_time(None)
        // SAFETY: MyProcPid is this process's pid, set at its start.
        .set_notify_pid(unsafe { pg_sys::MyProcPid });
    let mut worker: pg_sys::BackgroundWorker = (&builder).into();
    // SAFETY: registers a copy of `worker`, a complete registration built by pgrx; a null handle
    // pointer asks for no handle.
    unsafe { pg_sys::RegisterDynamicBackgroundWorker(&mut worker, std::ptr::null_mut()) }
}
