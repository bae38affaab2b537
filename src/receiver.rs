//! The webhook receiver's HTTP side, pure Rust: an HTTP/1.1 server (hyper) on threads of its
//! own that checks each delivery's size and signature before any database work, then hands it
//! to the background worker's main thread (`fdw/receiver.rs`, the only thread that touches
//! Postgres) and answers when that thread has committed it. Counters live in shared memory so
//! every backend can read them (`cyberbiz_stat_receiver`).

use crate::webhook::{self, Refusal, Shop};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a delivery may wait for the database before the answer is 503 (the platform
/// redelivers what was not acknowledged).
pub const DATABASE_WAIT: Duration = Duration::from_secs(30);
/// Deliveries queued for the main thread at most; beyond, 503 at once.
pub const QUEUE: usize = 1024;

/// The receiver's counters, in shared memory (atomics only).
#[repr(C)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected_signature: AtomicU64,
    pub rejected_too_large: AtomicU64,
    pub rejected_malformed: AtomicU64,
    pub unavailable: AtomicU64,
    pub errors: AtomicU64,
    /// Microseconds from the request's arrival to its answer, summed over answered deliveries.
    pub latency_us: AtomicU64,
    pub latency_max_us: AtomicU64,
    /// Started (seconds since the epoch) and the worker's pid; 0 when not listening.
    pub listening_since: AtomicU64,
    pub pid: AtomicU32,
    pub port: AtomicU32,
}

impl Stats {
    pub const fn new() -> Stats {
        Stats {
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected_signature: AtomicU64::new(0),
            rejected_too_large: AtomicU64::new(0),
            rejected_malformed: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            latency_max_us: AtomicU64::new(0),
            listening_since: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            port: AtomicU32::new(0),
        }
    }

    fn count(&self, outcome: &Outcome, since: Instant) {
        let c = match outcome {
            Outcome::Stored { duplicate: false, .. } => &self.accepted,
            Outcome::Stored { duplicate: true, .. } => &self.duplicates,
            Outcome::Refused { status: 401, .. } => &self.rejected_signature,
            Outcome::Refused { status: 413, .. } => &self.rejected_too_large,
            Outcome::Refused { status: 503, .. } => &self.unavailable,
            Outcome::Refused { status: 500, .. } => &self.errors,
            Outcome::Refused { .. } => &self.rejected_malformed,
        };
        c.fetch_add(1, Ordering::Relaxed);
        let us = since.elapsed().as_micros() as u64;
        self.latency_us.fetch_add(us, Ordering::Relaxed);
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed (or already there: a redelivery), with its event id.
    Stored { id: i64, duplicate: bool },
    /// Not stored: the HTTP status and why.
    Refused { status: u16, reason: String },
}

impl Outcome {
    pub fn refused(status: u16, reason: impl Into<String>) -> Outcome {
        Outcome::Refused { status, reason: reason.into() }
    }
}

/// Work for the main thread.
pub enum Job {
    /// A verified delivery, answered through its `reply`.
    Deliver(Delivery),
    /// Read the App Secrets again now (a delivery failed the check with the ones held: a server
    /// or secret may have just been added or rotated); answered when done.
    Refresh(tokio::sync::oneshot::Sender<()>),
}

/// A verified delivery for the main thread; it answers through `reply`.
pub struct Delivery {
    pub body: String,
    pub event: String,
    pub signature: String,
    pub domain: Option<String>,
    /// The server whose App Secret verified it.
    pub server: String,
    pub reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// The App Secrets the receiver verifies with, and whether the database is ready.
#[derive(Debug, Default)]
pub struct Secrets {
    pub shops: Vec<Shop>,
    /// The extension exists in the worker's database (else every delivery is 503).
    pub ready: bool,
}

impl Secrets {
    /// The server a delivery from `domain` belongs to (`webhook::pick_server`, as
    /// `cyberbiz_ingest_webhook` picks it).
    pub fn pick(&self, domain: Option<&str>) -> Result<&Shop, String> {
        webhook::pick_server(&self.shops, domain)
    }
}

/// Checks a delivery before any database work: a POST, the event header, a UTF-8 body within
/// 2 MB (checked while reading), a signature valid under the App Secret of its server.
pub fn check(secrets: &Secrets, event: Option<&str>, signature: Option<&str>, domain: Option<&str>, body: &[u8]) -> Result<(String, String), Outcome> {
    if !secrets.ready {
        return Err(Outcome::refused(503, "the database is not ready (is the extension created in cyberbiz.webhook_database?)"));
    }
    if event.is_none_or(str::is_empty) {
        return Err(Outcome::refused(400, "no X-Cyberbiz-Event header"));
    }
    let shop = secrets.pick(domain).map_err(|e| Outcome::refused(503, e))?;
    match webhook::verify(body, signature.unwrap_or(""), shop.app_secret.as_bytes()) {
        Ok(()) => {}
        Err(Refusal::TooLarge(n)) => return Err(Outcome::refused(413, format!("the body is {n} bytes, over the 2 MB limit"))),
        Err(Refusal::Missing) => return Err(Outcome::refused(401, "no X-Cyberbiz-Hmac-Sha256 signature")),
        Err(Refusal::Mismatch) => return Err(Outcome::refused(401, "the signature does not match the body")),
    }
    let text = String::from_utf8(body.to_vec()).map_err(|_| Outcome::refused(400, "the body is not UTF-8 text"))?;
    Ok((text, shop.server.clone()))
}

fn answer(status: u16, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Everything a connection handler shares.
struct Shared {
    secrets: Arc<RwLock<Secrets>>,
    queue: mpsc::SyncSender<Job>,
    stats: &'static Stats,
}

async fn handle(sh: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let since = Instant::now();
    if req.method() == Method::GET && req.uri().path() == "/healthz" {
        let ready = sh.secrets.read().map(|s| s.ready).unwrap_or(false);
        return Ok(if ready { answer(200, "ok\n".into()) } else { answer(503, "database not ready\n".into()) });
    }
    if req.method() != Method::POST {
        return Ok(answer(405, "POST webhooks here; GET /healthz for health\n".into()));
    }
    let outcome = receive(&sh, req).await;
    sh.stats.count(&outcome, since);
    Ok(match outcome {
        Outcome::Stored { id, duplicate } => answer(200, format!("{id}{}\n", if duplicate { " (duplicate)" } else { "" })),
        Outcome::Refused { status, reason } => answer(status, format!("{reason}\n")),
    })
}

async fn receive(sh: &Shared, req: Request<Incoming>) -> Outcome {
    let (event, signature, domain) = (header(&req, "x-cyberbiz-event"), header(&req, "x-cyberbiz-hmac-sha256"), header(&req, "x-cyberbiz-domain"));
    let body = match Limited::new(req.into_body(), webhook::MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Outcome::refused(413, "the body is over the 2 MB limit"),
        Err(_) => return Outcome::refused(400, "the body could not be read"),
    };
    let checked = || match sh.secrets.read() {
        Ok(s) => check(&s, event.as_deref(), signature.as_deref(), domain.as_deref(), &body),
        Err(_) => Err(Outcome::refused(500, "internal error")),
    };
    let mut result = checked();
    if matches!(result, Err(Outcome::Refused { status: 401 | 503, .. })) {
        // Refused with the secrets held: read them again once, and check again.
        let (done, refreshed) = tokio::sync::oneshot::channel();
        if sh.queue.try_send(Job::Refresh(done)).is_ok() && tokio::time::timeout(DATABASE_WAIT, refreshed).await.is_ok() {
            result = checked();
        }
    }
    let (body, server) = match result {
        Ok(v) => v,
        Err(o) => return o,
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let d = Delivery { body, event: event.unwrap_or_default(), signature: signature.unwrap_or_default(), domain, server, reply };
    if sh.queue.try_send(Job::Deliver(d)).is_err() {
        return Outcome::refused(503, "the receiver is busy; retry later");
    }
    match tokio::time::timeout(DATABASE_WAIT, answer).await {
        Ok(Ok(o)) => o,
        _ => Outcome::refused(503, "the database did not answer in time"),
    }
}

/// A running listener: dropping it stops accepting and ends its thread.
pub struct Listener {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Listens on `addr` (bound before returning, so a bad address is an error here) and serves on
/// two threads of a runtime of its own, whose threads block every signal.
pub fn listen(addr: &str, secrets: Arc<RwLock<Secrets>>, queue: mpsc::SyncSender<Job>, stats: &'static Stats) -> Result<Listener, String> {
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    std_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = std_listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shared = Arc::new(Shared { secrets, queue, stats });
    let thread = crate::runtime::with_signals_blocked(|| {
        std::thread::Builder::new().name("cyberbiz webhook receiver".into()).spawn(move || serve(std_listener, shared, stopped))
    })
    .map_err(|e| format!("cannot start the receiver's thread: {e}"))?;
    Ok(Listener { addr: local, stop: Some(stop), thread: Some(thread) })
}

fn serve(std_listener: std::net::TcpListener, shared: Arc<Shared>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() else { return };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let sh = shared.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| handle(sh.clone(), req));
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(body: &[u8], secret: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(body);
        m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn secrets() -> Secrets {
        let shop = |s: &str, d: Option<&str>, k: &str| Shop { server: s.into(), shop_domain: d.map(str::to_string), app_secret: k.into() };
        Secrets { shops: vec![shop("a", Some("a.cyberbiz.co"), "ka"), shop("b", Some("b.cyberbiz.co"), "kb")], ready: true }
    }

    #[test]
    fn deliveries_are_checked_before_any_database_work() {
        let s = secrets();
        let body = br#"{"id": 1}"#;
        let ok = check(&s, Some("orders/paid"), Some(&sign(body, "kb")), Some("B.cyberbiz.co"), body);
        assert_eq!(ok, Ok((String::from_utf8(body.to_vec()).unwrap(), "b".to_string())));
        let status = |r: Result<(String, String), Outcome>| match r {
            Err(Outcome::Refused { status, .. }) => status,
            _ => 0,
        };
        assert_eq!(status(check(&s, Some("orders/paid"), Some(&sign(body, "ka")), Some("b.cyberbiz.co"), body)), 401, "another shop's secret");
        assert_eq!(status(check(&s, Some("orders/paid"), None, Some("a.cyberbiz.co"), body)), 401);
        assert_eq!(status(check(&s, None, Some(&sign(body, "ka")), Some("a.cyberbiz.co"), body)), 400);
        assert_eq!(status(check(&s, Some("orders/paid"), Some("x"), Some("c.cyberbiz.co"), body)), 503, "no server for the shop");
        let big = vec![b' '; webhook::MAX_BODY_BYTES + 1];
        assert_eq!(status(check(&s, Some("orders/paid"), Some(&sign(&big, "ka")), Some("a.cyberbiz.co"), &big)), 413);
        let latin1 = b"{\"n\": \"\xe9\"}";
        assert_eq!(status(check(&s, Some("orders/paid"), Some(&sign(latin1, "ka")), Some("a.cyberbiz.co"), latin1)), 400);
        let not_ready = Secrets { ready: false, ..secrets() };
        assert_eq!(status(check(&not_ready, Some("orders/paid"), Some(&sign(body, "ka")), Some("a.cyberbiz.co"), body)), 503);
        let one = Secrets { shops: vec![s.shops[0].clone()], ready: true };
        assert_eq!(one.pick(None).map(|s| s.server.as_str()), Ok("a"), "the only server takes deliveries without a domain");
    }
}
