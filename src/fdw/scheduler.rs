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
    const READY: &str = "SELECT to_regproc('cyberbiz_sync_tables') IS NOT NULL";
    // Two arrays from one aggregation, in one order: a server's name may hold any character.
    const ROUND: &str = "SELECT clock_timestamp(), coalesce(array_agg(t.server_name::text), '{}'), coalesce(array_agg(t.table_name), '{}')
        FROM cyberbiz_sync_tables() t";
    let round = in_transaction(|| {
        if Spi::get_one::<bool>(READY)? != Some(true) {
            return Ok(None);
        }
        Spi::connect(|c| c.select(ROUND, None, &[])?.first().get_three::<TimestampWithTimeZone, Vec<String>, Vec<String>>().map(Some))
    });
    let (started, servers, tables) = match round {
        Ok(Ok(Some((Some(started), Some(servers), Some(tables))))) => (started, servers, tables),
        Ok(Ok(_)) => return,
        Ok(Err(e)) => return warning!("cyberbiz_fdw scheduled sync: {e}"),
        Err((_, msg)) => return warning!("cyberbiz_fdw scheduled sync (is the extension updated? ALTER EXTENSION cyberbiz_fdw UPDATE): {msg}"),
    };
    for (server, table) in servers.iter().zip(&tables) {
        sync_table(server, table, started);
    }
}

fn sync_table(server: &str, table: &str, started: TimestampWithTimeZone) {
    const STEP: &str = "SELECT done, error FROM cyberbiz_sync_step($1, $2, $3, false)";
    loop {
        pg_sys::check_for_interrupts!();
        let (s, t) = (server.to_string(), table.to_string());
        let step = in_transaction(move || Spi::connect(|c| c.select(STEP, None, &[s.into(), t.into(), started.into()])?.first().get_two::<bool, String>()));
        let failure = match step {
            Ok(Ok((Some(false), _))) => continue,
            // The step recorded its own error.
            Ok(Ok((_, Some(error)))) => return warning!("cyberbiz_fdw scheduled sync of {server}.{table}: {error}"),
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err((_, msg)) => msg,
        };
        // An error the step could not catch (a timeout, a cancel): recorded as the step records.
        warning!("cyberbiz_fdw scheduled sync of {server}.{table}: {failure}");
        let (s, t) = (server.to_string(), table.to_string());
        let _ = in_transaction(move || Spi::run_with_args("SELECT cyberbiz_sync_failed($1, $2, $3)", &[s.into(), t.into(), failure.into()]));
        return;
    }
}
