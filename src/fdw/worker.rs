//! The background workers of a preloaded cluster: the webhook receiver (HTTP on threads of its
//! own, `crate::receiver`; every delivery is ingested here, on the worker's main thread, one
//! transaction each, answered after the commit) and the replica sync scheduler. Both are
//! restarted by the postmaster after a crash.

use super::shared;
use crate::receiver::{self, Delivery, Job, Outcome, Secrets, ShopSecret};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

static LISTEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"postgres"));
static ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static SYNC_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(0);

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
        c"Seconds between scheduled replica syncs of every replicated server (0: off).",
        c"Run by a cyberbiz_fdw background worker; each is CALL cyberbiz_sync(server) for every server in cyberbiz_replicas.",
        &SYNC_INTERVAL,
        0,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
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

fn setting(s: &GucSetting<Option<CString>>) -> String {
    s.get().map(|c| c.to_string_lossy().trim().to_string()).unwrap_or_default()
}

/// Attaches the signal handlers and connects to `cyberbiz.webhook_database`.
fn start() {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = setting(&DATABASE);
    let role = setting(&ROLE);
    BackgroundWorker::connect_worker_to_spi(Some(if db.is_empty() { "postgres" } else { &db }), (!role.is_empty()).then_some(role.as_str()));
}

/// Applies a pending reload of the configuration (SIGHUP).
fn reload_if_asked() {
    if BackgroundWorker::sighup_received() {
        // SAFETY: called on the worker's main thread, outside any transaction.
        unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
    }
}

/// Runs `f` in a transaction of its own; an ERROR rolls it back and is returned (SQLSTATE,
/// message) instead of ending the worker.
fn in_transaction<R>(f: impl FnOnce() -> R + std::panic::UnwindSafe + std::panic::RefUnwindSafe) -> Result<R, (String, String)> {
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
fn sqlstate(packed: i32) -> String {
    (0..5).map(|i| (((packed >> (6 * i)) & 0x3F) as u8 + b'0') as char).collect()
}

/// The App Secrets of the worker's role for every cyberbiz_fdw server, and whether the
/// extension exists in the database.
fn load_secrets() -> Secrets {
    const SQL: &str = "SELECT s.srvname::text,
            (SELECT lower(substr(o, 13)) FROM unnest(s.srvoptions) o WHERE o LIKE 'shop_domain=%'),
            (SELECT substr(o, 12) FROM unnest(m.umoptions) o WHERE o LIKE 'app_secret=%')
        FROM pg_foreign_server s
        JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'cyberbiz_fdw'
        JOIN LATERAL (SELECT um.umoptions FROM pg_user_mappings um WHERE um.srvid = s.oid AND (um.usename = current_user OR um.umuser = 0)
                      ORDER BY um.umuser DESC LIMIT 1) m ON true";
    let loaded = in_transaction(|| {
        Spi::connect(|c| {
            let ready =
                c.select("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'cyberbiz_fdw')", None, &[])?.first().get_one::<bool>()?.unwrap_or(false);
            let mut shops = Vec::new();
            for row in c.select(SQL, None, &[])? {
                if let (Some(server), Some(app_secret)) = (row.get::<String>(1)?, row.get::<String>(3)?) {
                    shops.push(ShopSecret { server, shop_domain: row.get::<String>(2)?, app_secret });
                }
            }
            Ok::<_, pgrx::spi::Error>(Secrets { shops, ready })
        })
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
    let Some(stats) = shared::receiver_stats() else { return };
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
    let Some(s) = shared::receiver_stats() else { return TableIterator::new(vec![]) };
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
    fn sqlstates_unpack() {
        assert_eq!(super::sqlstate(pgrx::PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION as i32), "22P02");
        assert_eq!(super::status_of(&super::sqlstate(pgrx::PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION as i32)), 401);
        assert_eq!(super::status_of("53300"), 503);
    }
}
