//! The replica sync scheduler (a background worker): every `cyberbiz.sync_interval` seconds a
//! round over every table of every replica, through the step every sync driver runs.

use super::worker::{in_transaction, reload_if_asked, start, SYNC_INTERVAL};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// The scheduler's main loop: every `cyberbiz.sync_interval` seconds, a sync of every server in
/// cyberbiz_replicas, one committed step at a time (as CALL cyberbiz_sync does).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn cyberbiz_fdw_scheduler_main(_arg: pg_sys::Datum) {
    start();
    // SIGTERM as in any backend: a FATAL at the next interrupt check, so a long sync step
    // (its HTTP waits check interrupts) stops at once, its transaction rolled back.
    // SAFETY: installs Postgres's own handler for this process's main thread.
    unsafe { pg_sys::pqsignal(libc::SIGTERM, Some(on_sigterm)) };
    let mut last: Option<Instant> = None;
    while BackgroundWorker::wait_latch(Some(Duration::from_secs(1))) {
        pg_sys::check_for_interrupts!();
        reload_if_asked();
        let interval = SYNC_INTERVAL.get();
        if interval <= 0 || last.is_some_and(|l| l.elapsed() < Duration::from_secs(interval as u64)) {
            continue;
        }
        last = Some(Instant::now());
        sync_all();
    }
}

/// Postgres's `die`: sets the interrupt flags and the latch; the FATAL comes at the next check.
#[pg_guard]
extern "C-unwind" fn on_sigterm(signal: std::ffi::c_int) {
    // SAFETY: die only sets flags and the process latch, as it does in every backend.
    unsafe { pg_sys::die(signal) }
}

/// One scheduled round: every parent table of every replica, through the step every sync
/// driver runs (`cyberbiz_sync_step` in sql/replica.sql: it locks the server for the step,
/// skips tables another driver brought up to date during the round, records errors), each step
/// committed on its own. A server whose step another driver is running is left to the next
/// round rather than waited for.
fn sync_all() {
    const ROUND: &str = "SELECT clock_timestamp(), (SELECT array_agg(t.server_name::text || '.' || t.table_name) FROM cyberbiz_sync_tables() t)
        WHERE to_regproc('cyberbiz_sync_tables') IS NOT NULL";
    let Ok(Ok(Some((Some(started), Some(tables))))) =
        in_transaction(|| Spi::connect(|c| c.select(ROUND, None, &[])?.first().get_two::<TimestampWithTimeZone, Vec<String>>().map(Some)))
    else {
        return;
    };
    for (server, table) in tables.iter().filter_map(|t| t.split_once('.')) {
        sync_table(server, table, started);
    }
}

fn sync_table(server: &str, table: &str, started: TimestampWithTimeZone) {
    const STEP: &str = "SELECT done, error FROM cyberbiz_sync_step($1, $2, $3, false)";
    loop {
        pg_sys::check_for_interrupts!();
        let (s, t) = (server.to_string(), table.to_string());
        let step = in_transaction(move || Spi::connect(|c| c.select(STEP, None, &[s.into(), t.into(), started.into()])?.first().get_two::<bool, String>()));
        match step {
            Ok(Ok((Some(false), _))) => continue,
            Ok(Ok((_, Some(error)))) => return warning!("cyberbiz_fdw scheduled sync of {server}.{table}: {error}"),
            Ok(Ok(_)) => return,
            Ok(Err(e)) => return warning!("cyberbiz_fdw scheduled sync of {server}.{table}: {e}"),
            Err((_, msg)) => return warning!("cyberbiz_fdw scheduled sync of {server}.{table}: {msg}"),
        }
    }
}
