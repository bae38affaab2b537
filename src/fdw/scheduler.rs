//! The replica sync scheduler (a background worker): every `cyberbiz.sync_interval` seconds a
//! round over every table of every replica, through the step every sync driver runs.

use super::worker::{extension_schema, in_transaction, reload_if_asked, schema_hazard, start, SYNC_INTERVAL, VERIFY_INTERVAL};
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
    // Two arrays from one aggregation, in one order: a server's name may hold any character.
    let round = in_transaction(|| {
        let Some(ext) = extension_schema()? else { return Ok(None) };
        if let Some(why) = schema_hazard()? {
            warning!("cyberbiz_fdw scheduled sync: not run: {why}");
            return Ok(None);
        }
        let round = format!(
            "SELECT pg_catalog.clock_timestamp(), coalesce(pg_catalog.array_agg(t.server_name::pg_catalog.text), '{{}}'),
                    coalesce(pg_catalog.array_agg(t.table_name), '{{}}')
             FROM {ext}.cyberbiz_sync_tables(NULL::pg_catalog.name, NULL::pg_catalog.text[]) t"
        );
        Spi::connect(|c| c.select(&round, None, &[])?.first().get_three::<TimestampWithTimeZone, Vec<String>, Vec<String>>().map(|r| Some((ext, r))))
    });
    let (ext, started, servers, tables) = match round {
        Ok(Ok(Some((ext, (Some(started), Some(servers), Some(tables)))))) => (ext, started, servers, tables),
        Ok(Ok(_)) => return,
        Ok(Err(e)) => return warning!("cyberbiz_fdw scheduled sync: {e}"),
        Err((_, msg)) => return warning!("cyberbiz_fdw scheduled sync (is the extension updated? ALTER EXTENSION cyberbiz_fdw UPDATE): {msg}"),
    };
    for (server, table) in servers.iter().zip(&tables) {
        sync_table(&ext, server, table, started);
    }
    let every = VERIFY_INTERVAL.get();
    if every > 0 {
        for (server, table) in servers.iter().zip(&tables) {
            pg_sys::check_for_interrupts!();
            verify_table(&ext, server, table, every);
        }
    }
}

/// The scheduled verification of one table when it is due (`cyberbiz_verify_due`): up to 3
/// passes of `cyberbiz_verify_table` (it records its result, a failure included), each in a
/// transaction of its own, until one repairs nothing. A server whose sync step another driver
/// runs is left for the next round.
fn verify_table(ext: &str, server: &str, table: &str, every: i32) {
    let due = format!("SELECT {ext}.cyberbiz_verify_due($1::pg_catalog.name, $2::pg_catalog.text, pg_catalog.make_interval(secs => $3::pg_catalog.float8))");
    let (s, t) = (server.to_string(), table.to_string());
    if !matches!(in_transaction(move || Spi::get_one_with_args::<bool>(&due, &[s.into(), t.into(), (every as f64).into()])), Ok(Ok(Some(true)))) {
        return;
    }
    let pass = format!(
        "SELECT v.repaired, v.changed, v.result FROM {ext}.cyberbiz_verify_table($1::pg_catalog.name, $2::pg_catalog.text, false, $3::pg_catalog.int8) v"
    );
    let mut repaired = 0i64;
    for _ in 0..3 {
        pg_sys::check_for_interrupts!();
        let (s, t, sql) = (server.to_string(), table.to_string(), pass.clone());
        let step =
            in_transaction(move || Spi::connect(|c| c.select(&sql, None, &[s.into(), t.into(), repaired.into()])?.first().get_three::<i64, i64, String>()));
        let (done, changed, result) = match step {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return warning!("cyberbiz_fdw scheduled verification of {server}.{table}: {e}"),
            Err((_, msg)) => return warning!("cyberbiz_fdw scheduled verification of {server}.{table}: {msg}"),
        };
        repaired = done.unwrap_or(repaired);
        if changed.unwrap_or(0) == 0 {
            if let Some(r) = result.filter(|r| r.starts_with("failed") || r.starts_with("differs")) {
                warning!("cyberbiz_fdw scheduled verification of {server}.{table}: {r}");
            }
            return;
        }
    }
}
fn sync_table(ext: &str, server: &str, table: &str, started: TimestampWithTimeZone) {
    let step = format!("SELECT s.done, s.error FROM {ext}.cyberbiz_sync_step($1::pg_catalog.name, $2::pg_catalog.text, $3::pg_catalog.timestamptz, false) s");
    loop {
        pg_sys::check_for_interrupts!();
        let (s, t, sql) = (server.to_string(), table.to_string(), step.clone());
        let step = in_transaction(move || Spi::connect(|c| c.select(&sql, None, &[s.into(), t.into(), started.into()])?.first().get_two::<bool, String>()));
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
        let failed = format!("SELECT {ext}.cyberbiz_sync_failed($1::pg_catalog.name, $2::pg_catalog.text, $3::pg_catalog.text)");
        let _ = in_transaction(move || Spi::run_with_args(&failed, &[s.into(), t.into(), failure.into()]));
        return;
    }
}
