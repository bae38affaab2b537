//! The webhook receiver's main thread (a background worker): HTTP runs on threads of its own
//! (`crate::receiver`); every verified delivery is ingested here, one transaction each, answered
//! after the commit; the App Secrets are re-read every second; `cyberbiz_stat_receiver`.

use super::budget;
use super::worker::{extension_schema, in_transaction, reload_if_asked, schema_hazard, setting, start, LISTEN};
use crate::receiver::{self, Delivery, Outcome, Secrets};
use pgrx::bgworkers::BackgroundWorker;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

/// The App Secrets of the worker's role for every cyberbiz_fdw server, whether an ingest can
/// succeed (else why not: what `/healthz` says), and the extension's schema (quoted).
fn load_secrets() -> (Secrets, Option<String>) {
    let loaded = in_transaction(|| {
        let Some(ext) = extension_schema()? else {
            return Ok((Secrets { health: Err(format!("the extension is not created in database {}", database())), ..Secrets::default() }, None));
        };
        let shops = super::webhook::shops()?;
        let allowed = Spi::get_one::<bool>(&format!(
            "SELECT pg_catalog.has_function_privilege('{ext}.cyberbiz_ingest_webhook(pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.text, pg_catalog.name)', 'EXECUTE')
                AND pg_catalog.has_table_privilege('{ext}.cyberbiz_webhook_events', 'INSERT, SELECT')"
        ))?;
        let hazard = schema_hazard()?;
        let health = if let Some(why) = hazard {
            Err(why)
        } else if allowed != Some(true) {
            Err(format!(
                "role {} may not run {ext}.cyberbiz_ingest_webhook or write {ext}.cyberbiz_webhook_events (README: the receiver's role)",
                current_role()
            ))
        } else if shops.is_empty() {
            Err(format!("no cyberbiz_fdw server has a user mapping with an app_secret for role {}", current_role()))
        } else {
            Ok(())
        };
        Ok::<_, pgrx::spi::Error>((Secrets { shops, health, loaded: None }, Some(ext)))
    });
    let failed = match loaded {
        Ok(Ok(s)) => return s,
        Ok(Err(e)) => e.to_string(),
        Err((_, e)) => e,
    };
    (Secrets { health: Err(format!("cannot read the servers: {failed}")), ..Secrets::default() }, None)
}

fn current_role() -> String {
    Spi::get_one::<String>("SELECT pg_catalog.quote_ident(current_user)").ok().flatten().unwrap_or_default()
}

fn database() -> String {
    Spi::get_one::<String>("SELECT pg_catalog.quote_ident(pg_catalog.current_database())").ok().flatten().unwrap_or_default()
}

/// Ingests one verified delivery in a transaction of its own: the event id, and whether it was
/// a redelivery (the event row is not from this transaction). `ext`: the extension's schema.
fn ingest(d: &Delivery, ext: &str) -> Outcome {
    let ingest = format!(
        "SELECT {ext}.cyberbiz_ingest_webhook($1::pg_catalog.text, $2::pg_catalog.text, $3::pg_catalog.text, $4::pg_catalog.text, $5::pg_catalog.name)"
    );
    // A redelivery returns the existing event, whose row is not this transaction's.
    let redelivery = format!("SELECT e.xmin OPERATOR(pg_catalog.<>) pg_catalog.pg_current_xact_id()::pg_catalog.xid FROM {ext}.cyberbiz_webhook_events e WHERE e.id OPERATOR(pg_catalog.=) $1");
    let args = (d.body.clone(), d.event.clone(), d.signature.clone(), d.domain.clone(), d.server.clone());
    let r = in_transaction(move || {
        Spi::connect_mut(|c| {
            let id = c.update(&ingest, None, &[args.0.into(), args.1.into(), args.2.into(), args.3.into(), args.4.into()])?.first().get_one::<i64>()?;
            let dup = match id {
                Some(id) => c.update(&redelivery, None, &[id.into()])?.first().get_one::<bool>()?,
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

/// The receiver's main loop: (re)listens when `cyberbiz.webhook_listen` changes (and retries a
/// failed bind every few seconds), re-reads the App Secrets every second, and ingests
/// deliveries as they come. Ends with exit code 1 whatever stopped it (SIGTERM, the queue
/// gone), so the postmaster starts it again (`cyberbiz.webhook_*` registration: 5 s), except
/// when the cluster itself shuts down.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn cyberbiz_fdw_receiver_main(_arg: pg_sys::Datum) {
    start();
    let Some(stats) = budget::receiver_stats() else { return };
    // A row a sync step is writing is waited for a bounded time, then answered 503 (the
    // platform resends): the one ingest thread never hangs on a long step.
    let wait = format!("SET lock_timeout = '{}ms'", receiver::limits::LOCK_WAIT.as_millis());
    BackgroundWorker::transaction(|| Spi::run(&wait)).unwrap_or_else(|e| error!("cyberbiz_fdw webhook receiver: {e}"));
    stats.pid.store(std::process::id(), Relaxed);
    let mut held = Held { secrets: Arc::new(RwLock::new(Secrets::default())), schema: None };
    let (tx, rx) = mpsc::sync_channel::<Delivery>(receiver::QUEUE);
    let (mut listener, mut listening, mut tried): (Option<receiver::Listener>, String, Option<Instant>) = (None, String::new(), None);
    while BackgroundWorker::wait_latch(Some(Duration::from_millis(0))) {
        reload_if_asked();
        let want = setting(&LISTEN);
        if want != listening || (listener.is_none() && !want.is_empty() && tried.is_none_or(|t| t.elapsed() >= RETRY_BIND)) {
            drop(listener.take());
            stats.listening_since.store(0, Relaxed);
            listener = relisten(&want, &held.secrets, &tx, stats);
            (listening, tried) = (want, Some(Instant::now()));
        }
        if held.loaded().is_none_or(|r| r.elapsed() >= Duration::from_secs(1)) {
            held.refresh();
        }
        match rx.recv_timeout(Duration::from_millis(if listener.is_some() { 100 } else { 1000 })) {
            Ok(job) => held.work(job),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        // Under load, take what is queued before looking at signals again.
        for job in rx.try_iter().take(256) {
            held.work(job);
        }
    }
    drop(listener);
    stats.listening_since.store(0, Relaxed);
    stats.pid.store(0, Relaxed);
    // SAFETY: ends this worker process the way Postgres ends one, outside any transaction.
    unsafe { pg_sys::proc_exit(1) };
}

/// A failed bind (the port taken, say) is tried again this often.
const RETRY_BIND: Duration = Duration::from_secs(5);

/// What the main thread holds between deliveries: the App Secrets the HTTP threads verify
/// with (and when they were read), the extension's schema.
struct Held {
    secrets: Arc<RwLock<Secrets>>,
    schema: Option<String>,
}

impl Held {
    fn loaded(&self) -> Option<Instant> {
        self.secrets.read().unwrap_or_else(|e| e.into_inner()).loaded
    }

    fn work(&mut self, d: Delivery) {
        let outcome = match &self.schema {
            Some(ext) => ingest(&d, ext),
            None => Outcome::refused(503, "the extension is not created in cyberbiz.webhook_database"),
        };
        let _ = d.reply.send(outcome);
    }

    /// Reads the App Secrets and the schema again (once a second, whatever is refused: a
    /// refused delivery waits for the next reading rather than asking for one).
    fn refresh(&mut self) {
        let (fresh, schema) = load_secrets();
        *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = Secrets { loaded: Some(Instant::now()), ..fresh };
        self.schema = schema;
    }
}

fn relisten(addr: &str, secrets: &Arc<RwLock<Secrets>>, tx: &mpsc::SyncSender<Delivery>, stats: &'static receiver::Stats) -> Option<receiver::Listener> {
    if addr.is_empty() {
        stats.listen_errno.store(0, Relaxed);
        return None;
    }
    match receiver::listen(addr, secrets.clone(), tx.clone(), stats) {
        Ok(l) => {
            log!("cyberbiz_fdw webhook receiver listening on http://{}", l.addr);
            stats.listening_since.store(crate::progress::now_ms() / 1000, Relaxed);
            stats.port.store(l.addr.port() as u32, Relaxed);
            stats.listen_errno.store(0, Relaxed);
            Some(l)
        }
        Err((errno, e)) => {
            // Said once per failure, not at every retry.
            if stats.listen_errno.swap(errno, Relaxed) != errno {
                warning!("cyberbiz_fdw webhook receiver: {e} (tried again every {} s)", RETRY_BIND.as_secs());
            }
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
        name!(refused_busy, i64),
        name!(listen_error, Option<String>),
    ),
> {
    let Some(s) = budget::receiver_stats() else { return TableIterator::new(vec![]) };
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed) as i64;
    let answered =
        [&s.accepted, &s.duplicates, &s.rejected_signature, &s.rejected_too_large, &s.rejected_malformed, &s.unavailable, &s.errors, &s.refused_busy]
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
        n(&s.refused_busy),
        receiver::listen_error(s.listen_errno.load(Relaxed)),
    )])
}

extension_sql_file!("../../sql/receiver.sql", name = "receiver", requires = [cyberbiz_fdw_receiver_stats, "replica", "mirrors"]);

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
