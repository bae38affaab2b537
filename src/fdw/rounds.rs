//! A sync worker (a dynamic background worker the scheduler starts, `scheduler.rs`): it claims
//! the round of the server due longest (`cyberbiz_round_claim`, sql/schedule.sql), runs it, and
//! claims the next, until none has been due for a while. A round runs the step every sync
//! driver runs (`cyberbiz_sync_step`), each step committed on its own: the incremental steps of
//! every table first, then first-sync windows for at most `WINDOWS_PER_ROUND` (the shop's next
//! round of windows is claimed after every other shop's due scheduled round), then the
//! verifications that are due.

use super::worker::{extension_schema, in_transaction, on_sigterm_die, reload_if_asked, schema_hazard, start, SYNC_INTERVAL, SYNC_WORKERS, VERIFY_INTERVAL};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// How long a round runs first-sync windows (a window is about 20 to 80 requests).
const WINDOWS_PER_ROUND: Duration = Duration::from_secs(10);
/// A worker with no round to claim for this long ends (the scheduler starts another when needed).
const IDLE_END: Duration = Duration::from_secs(3);
/// Longest an idle worker sleeps before it looks again (a new server, a reload).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What a claim got: a round (server, scheduled, its start); none, with the seconds until the
/// next scheduled round of a server no worker runs (None: unknown); or the end of this worker
/// (more run than `cyberbiz.sync_workers` allows).
enum Claim {
    Round(String, bool, TimestampWithTimeZone),
    Wait(Option<f64>),
    Retire,
}

/// The main loop of a sync worker.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn cyberbiz_fdw_sync_worker_main(_arg: pg_sys::Datum) {
    start();
    on_sigterm_die();
    let Ok(Ok(Some(ext))) = in_transaction(extension_schema) else { return };
    let mut idle = Instant::now();
    loop {
        pg_sys::check_for_interrupts!();
        reload_if_asked();
        if SYNC_INTERVAL.get() <= 0 {
            return;
        }
        let pause = match claim(&ext) {
            Claim::Retire => return,
            Claim::Round(server, scheduled, started) => {
                if round(&ext, &server, scheduled, started) {
                    idle = Instant::now();
                    continue;
                }
                // A round that could not run at all (its server stays due): not again at once.
                IDLE_POLL
            }
            Claim::Wait(_) if idle.elapsed() >= IDLE_END => return,
            Claim::Wait(secs) => secs.map_or(IDLE_POLL, |s| Duration::from_secs_f64(s.clamp(0.01, 1.0))),
        };
        if !BackgroundWorker::wait_latch(Some(pause)) {
            return;
        }
    }
}

/// Claims a round (`cyberbiz_round_claim`).
fn claim(ext: &str) -> Claim {
    let sql =
        format!("SELECT c.server::pg_catalog.text, c.scheduled, c.started, c.wait_seconds, c.retire FROM {ext}.cyberbiz_round_claim($1::pg_catalog.int4) c");
    let cap = SYNC_WORKERS.get();
    let claimed = in_transaction(move || -> Result<Claim, pgrx::spi::Error> {
        // The scheduler starts no worker while the extension must not be used (and says why).
        if schema_hazard()?.is_some() {
            return Ok(Claim::Retire);
        }
        Spi::connect(|c| {
            let row = c.select(&sql, None, &[cap.into()])?.first();
            Ok(match (row.get::<String>(1)?, row.get::<bool>(2)?, row.get::<TimestampWithTimeZone>(3)?) {
                (Some(server), Some(scheduled), Some(started)) => Claim::Round(server, scheduled, started),
                _ if row.get::<bool>(5)? == Some(true) => Claim::Retire,
                _ => Claim::Wait(row.get::<f64>(4)?),
            })
        })
    });
    match claimed {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            warning!("cyberbiz_fdw sync worker: {e}");
            Claim::Wait(None)
        }
        Err((_, msg)) => {
            warning!("cyberbiz_fdw sync worker: {msg}");
            Claim::Wait(None)
        }
    }
}

/// One round of `server`: a scheduled one syncs every table and verifies those due; either
/// kind runs first-sync windows for up to `WINDOWS_PER_ROUND` (a round of windows only skips
/// the tables `held` since a failure). False when it could not run at all.
fn round(ext: &str, server: &str, scheduled: bool, started: TimestampWithTimeZone) -> bool {
    let sql = format!("SELECT t.table_name, t.windows, t.held FROM {ext}.cyberbiz_round_tables($1::pg_catalog.name) t");
    let s = server.to_string();
    let tables = in_transaction(move || {
        Spi::connect(|c| {
            c.select(&sql, None, &[s.into()])?
                .map(|r| Ok((r.get::<String>(1)?.unwrap_or_default(), r.get::<bool>(2)?.unwrap_or(false), r.get::<bool>(3)?.unwrap_or(false))))
                .collect::<Result<Vec<_>, pgrx::spi::Error>>()
        })
    });
    let tables = match tables {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return end(ext, server, scheduled, Some(e.to_string())),
        Err((_, msg)) => return end(ext, server, scheduled, Some(msg)),
    };
    if scheduled {
        for (table, ..) in tables.iter().filter(|(_, windows, _)| !windows) {
            sync_table(ext, server, table, started, None);
        }
    }
    let until = Instant::now() + WINDOWS_PER_ROUND;
    for (table, ..) in tables.iter().filter(|(_, windows, held)| *windows && (scheduled || !held)) {
        sync_table(ext, server, table, started, Some(until));
    }
    let every = VERIFY_INTERVAL.get();
    if scheduled && every > 0 {
        for (table, ..) in &tables {
            pg_sys::check_for_interrupts!();
            verify_table(ext, server, table, every);
        }
    }
    end(ext, server, scheduled, None)
}

/// Ends the round (a scheduled one records its duration); `failure`: why it could not run
/// (then false).
fn end(ext: &str, server: &str, scheduled: bool, failure: Option<String>) -> bool {
    let ran = failure.is_none();
    if let Some(why) = failure {
        warning!("cyberbiz_fdw scheduled sync of {server}: {why}");
    }
    let sql = format!("SELECT {ext}.cyberbiz_round_end($1::pg_catalog.name, $2::pg_catalog.bool)");
    let s = server.to_string();
    let failed = match in_transaction(move || Spi::run_with_args(&sql, &[s.into(), scheduled.into()])) {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err((_, msg)) => Some(msg),
    };
    if let Some(msg) = failed {
        warning!("cyberbiz_fdw sync worker: ending the round of {server}: {msg}");
    }
    ran
}

/// The steps of one table, each in a transaction of its own, until it is done (or `until` has
/// passed: the rest of a first sync goes on in a later round). In a scheduled round (`until`
/// None) a server whose step another driver runs is left to the next round rather than waited
/// for; first-sync windows wait for that step, 30 s at most (a round of windows is due again as
/// soon as it ends, so skipping would only claim it again and again), then take turns with that
/// driver; a wait that times out is a failed step, recorded, tried again next scheduled round.
fn sync_table(ext: &str, server: &str, table: &str, started: TimestampWithTimeZone, until: Option<Instant>) {
    let wait = until.is_some();
    let step = format!("SELECT s.done, s.error FROM {ext}.cyberbiz_sync_step($1::pg_catalog.name, $2::pg_catalog.text, $3::pg_catalog.timestamptz, {wait}) s");
    loop {
        pg_sys::check_for_interrupts!();
        let (s, t, sql) = (server.to_string(), table.to_string(), step.clone());
        let step = in_transaction(move || {
            if wait {
                Spi::run("SET LOCAL lock_timeout = '30s'")?;
            }
            Spi::connect(|c| c.select(&sql, None, &[s.into(), t.into(), started.into()])?.first().get_two::<bool, String>())
        });
        let failure = match step {
            Ok(Ok((Some(false), _))) if until.is_some_and(|u| Instant::now() >= u) => return,
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

extension_sql_file!("../../sql/schedule.sql", name = "schedule", requires = ["replica"]);
