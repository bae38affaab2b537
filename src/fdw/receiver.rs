//! The webhook receiver's main thread (a background worker): HTTP runs on threads of its own
//! (`crate::receiver`); every verified delivery is ingested here, one transaction each, answered
//! after the commit; the App Secrets are re-read every second; `cyberbiz_stat_receiver`.

use super::budget;
use super::worker::{in_transaction, reload_if_asked, setting, start, LISTEN};
use crate::receiver::{self, Delivery, Job, Outcome, Secrets};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

/// The App Secrets of the worker's role for every cyberbiz_fdw server, and whether the
/// extension exists in the database.
fn load_secrets() -> Secrets {
    const READY: &str = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'cyberbiz_fdw')";
    let loaded = in_transaction(|| {
        let ready = Spi::get_one::<bool>(READY)?.unwrap_or(false);
        Ok::<_, pgrx::spi::Error>(Secrets { shops: super::webhook::shops()?, ready })
    });
    match loaded {
        Ok(Ok(s)) => s,
        _ => Secrets::default(),
    }
}

/// Ingests one verified delivery in a transaction of its own: the event id, and whether it was
/// a redelivery (the event row is not from this transaction).
fn ingest(d: &Delivery) -> Outcome {
    const INGEST: &str = "SELECT cyberbiz_ingest_webhook($1, $2, $3, $4, $5)";
    // A redelivery returns the existing event, whose row is not this transaction's.
    const REDELIVERY: &str = "SELECT xmin <> pg_current_xact_id()::xid FROM cyberbiz_webhook_events WHERE id = $1";
    let args = (d.body.clone(), d.event.clone(), d.signature.clone(), d.domain.clone(), d.server.clone());
    let r = in_transaction(move || {
        Spi::connect_mut(|c| {
            let id = c.update(INGEST, None, &[args.0.into(), args.1.into(), args.2.into(), args.3.into(), args.4.into()])?.first().get_one::<i64>()?;
            let dup = match id {
                Some(id) => c.update(REDELIVERY, None, &[id.into()])?.first().get_one::<bool>()?,
                None => None,
            };
            Ok::<_, pgrx::spi::Error>((id, dup))
        })
    });
    match r {
        Ok(Ok((Some(id), dup))) => Outcome::Stored { id, duplicate: dup.unwrap_or(false) },
        Ok(_) => Outcome::refused(500, "the ingest returned no event"),
        Err((code, msg)) => Outcome::refused(status_of(&code), msg),
    }
}

/// The HTTP status of an ingest error, by SQLSTATE.
fn status_of(code: &str) -> u16 {
    match code {
        c if c.starts_with("28") => 401,
        "54000" => 413,
        c if c.starts_with("22") => 400,
        _ => 503,
    }
}

/// The receiver's main loop: (re)listens when `cyberbiz.webhook_listen` changes, refreshes the
/// App Secrets every second, and ingests deliveries as they come.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn cyberbiz_fdw_receiver_main(_arg: pg_sys::Datum) {
    start();
    let Some(stats) = budget::receiver_stats() else { return };
    stats.pid.store(std::process::id(), std::sync::atomic::Ordering::Relaxed);
    let secrets = Arc::new(RwLock::new(Secrets::default()));
    let (tx, rx) = mpsc::sync_channel::<Job>(receiver::QUEUE);
    let (mut listener, mut listening): (Option<receiver::Listener>, String) = (None, String::new());
    let mut refreshed = Instant::now() - Duration::from_secs(60);
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(0))) {
        reload_if_asked();
        let want = setting(&LISTEN);
        if want != listening {
            drop(listener.take());
            stats.listening_since.store(0, std::sync::atomic::Ordering::Relaxed);
            listener = relisten(&want, &secrets, &tx, stats);
            listening = want;
        }
        if refreshed.elapsed() >= Duration::from_secs(1) {
            refresh(&secrets, &mut refreshed);
        }
        match rx.recv_timeout(Duration::from_millis(if listener.is_some() { 100 } else { 1000 })) {
            Ok(job) => work(job, &secrets, &mut refreshed),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        // Under load, take what is queued before looking at signals again.
        for job in rx.try_iter().take(256) {
            work(job, &secrets, &mut refreshed);
        }
    }
    drop(listener);
}

fn work(job: Job, secrets: &RwLock<Secrets>, refreshed: &mut Instant) {
    match job {
        Job::Deliver(d) => {
            let outcome = ingest(&d);
            let _ = d.reply.send(outcome);
        }
        Job::Refresh(done) => {
            // Many refused deliveries at once need one reading of the catalogs, not one each.
            if refreshed.elapsed() >= Duration::from_millis(100) {
                refresh(secrets, refreshed);
            }
            let _ = done.send(());
        }
    }
}

fn refresh(secrets: &RwLock<Secrets>, refreshed: &mut Instant) {
    let fresh = load_secrets();
    if let Ok(mut s) = secrets.write() {
        *s = fresh;
    }
    *refreshed = Instant::now();
}

fn relisten(addr: &str, secrets: &Arc<RwLock<Secrets>>, tx: &mpsc::SyncSender<Job>, stats: &'static receiver::Stats) -> Option<receiver::Listener> {
    if addr.is_empty() {
        return None;
    }
    match receiver::listen(addr, secrets.clone(), tx.clone(), stats) {
        Ok(l) => {
            log!("cyberbiz_fdw webhook receiver listening on http://{}", l.addr);
            stats.listening_since.store(crate::progress::now_ms() / 1000, std::sync::atomic::Ordering::Relaxed);
            stats.port.store(l.addr.port() as u32, std::sync::atomic::Ordering::Relaxed);
            Some(l)
        }
        Err(e) => {
            warning!("cyberbiz_fdw webhook receiver: {e}");
            None
        }
    }
}

/// The webhook receiver's counters since the cluster started: deliveries accepted, redeliveries
/// (stored once), refusals by reason, database errors, latency; where it listens.
#[pg_extern]
#[allow(clippy::type_complexity)] // one row of the view's columns, as pgrx declares them
fn cyberbiz_fdw_receiver_stats() -> TableIterator<
    'static,
    (
        name!(pid, Option<i32>),
        name!(port, Option<i32>),
        name!(listening_since, Option<i64>),
        name!(accepted, i64),
        name!(duplicates, i64),
        name!(rejected_signature, i64),
        name!(rejected_too_large, i64),
        name!(rejected_malformed, i64),
        name!(unavailable, i64),
        name!(errors, i64),
        name!(mean_latency_ms, Option<f64>),
        name!(max_latency_ms, f64),
    ),
> {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(s) = budget::receiver_stats() else { return TableIterator::new(vec![]) };
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed) as i64;
    let answered = [&s.accepted, &s.duplicates, &s.rejected_signature, &s.rejected_too_large, &s.rejected_malformed, &s.unavailable, &s.errors]
        .iter()
        .map(|a| n(a))
        .sum::<i64>();
    let since = s.listening_since.load(Relaxed);
    let (pid, port) = (s.pid.load(Relaxed) as i32, s.port.load(Relaxed) as i32);
    TableIterator::new(vec![(
        (pid != 0).then_some(pid),
        (since != 0).then_some(port),
        (since != 0).then_some(since as i64),
        n(&s.accepted),
        n(&s.duplicates),
        n(&s.rejected_signature),
        n(&s.rejected_too_large),
        n(&s.rejected_malformed),
        n(&s.unavailable),
        n(&s.errors),
        (answered > 0).then(|| n(&s.latency_us) as f64 / answered as f64 / 1000.0),
        n(&s.latency_max_us) as f64 / 1000.0,
    )])
}

extension_sql_file!("../../sql/receiver.sql", name = "receiver", requires = [cyberbiz_fdw_receiver_stats]);

#[cfg(test)]
mod tests {
    #[test]
    fn sqlstates_map_to_statuses() {
        use super::super::worker::sqlstate;
        assert_eq!(super::status_of(&sqlstate(pgrx::PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION as i32)), 401);
        assert_eq!(super::status_of("22P02"), 400);
        assert_eq!(super::status_of("53300"), 503);
    }
}
