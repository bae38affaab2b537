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
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a delivery may wait for the database before the answer is 503 (the platform
/// redelivers what was not acknowledged).
pub const DATABASE_WAIT: Duration = Duration::from_secs(30);
/// Deliveries queued for the main thread at most; beyond, 503 at once.
pub const QUEUE: usize = 1024;

/// What a peer can hold, and for how long. Beyond a cap the answer is 503 at once (counted in
/// `refused_busy`), never a wait; with them, 1,000 peers each holding a nearly complete 2 MB
/// body leave the receiver well under 256 MB (tests: `peers_cannot_hold_the_receiver` below;
/// measured: `bash tests/bench.sh p13`).
pub mod limits {
    use std::time::Duration;
    /// Open connections at most (each holds at most `READ_BUFFER` besides its body).
    pub const CONNECTIONS: usize = 1024;
    /// A connection's read buffer (the longest request head it accepts).
    pub const READ_BUFFER: usize = 64 * 1024;
    /// From the connection's start, or the end of its previous answer (keep-alive), to the end
    /// of a request's head; then the connection is closed.
    pub const HEAD: Duration = Duration::from_secs(10);
    /// From the end of the head to the end of the body.
    pub const BODY: Duration = Duration::from_secs(20);
    /// A connection's whole life (kept alive, however busy); then it answers what it has and
    /// closes, within `CLOSING`, or is dropped (a peer that stops reading its answers).
    pub const CONNECTION: Duration = Duration::from_secs(60);
    pub const CLOSING: Duration = Duration::from_secs(40);
    /// Bytes of bodies held at once (from the first byte read to the answer): bodies up to
    /// `SMALL` bytes share `SMALL_POOL`, larger ones (or of unknown length, counted at 2 MB)
    /// `LARGE_POOL`, so that large bodies cannot crowd out ordinary deliveries.
    pub const SMALL: usize = 256 * 1024;
    pub const SMALL_POOL: usize = 16 << 20;
    pub const LARGE_POOL: usize = 48 << 20;
    /// A body refused for its declared size is read (and dropped) up to this many bytes, so
    /// that its sender reads the 413.
    pub const DISCARD: usize = 8 << 20;
    /// A delivery waits at most this long for a row lock (a sync step writing the same row),
    /// then is answered 503 and counted `unavailable` (the platform resends it).
    pub const LOCK_WAIT: Duration = Duration::from_secs(5);
    /// After a failed `accept` (out of descriptors, say), the next try waits this long.
    pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
    /// A delivery for a shop no server is known for waits at most this long for the next
    /// reading of the App Secrets (once a second, by the main thread), then is checked again.
    pub const SECRETS_WAIT: Duration = Duration::from_millis(2500);
}

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
    /// Refused at once for want of room: connections or body bytes over `limits`.
    pub refused_busy: AtomicU64,
    /// Why the last bind failed (an OS error number; -1 for a bad address), 0 when it did not.
    pub listen_errno: AtomicI32,
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
            refused_busy: AtomicU64::new(0),
            listen_errno: AtomicI32::new(0),
        }
    }

    fn count(&self, outcome: &Outcome, since: Instant) {
        let c = match outcome {
            Outcome::Stored { duplicate: false, .. } => &self.accepted,
            Outcome::Stored { duplicate: true, .. } => &self.duplicates,
            Outcome::Refused { status: 401, .. } => &self.rejected_signature,
            Outcome::Refused { status: 413, .. } => &self.rejected_too_large,
            Outcome::Refused { status: 503, reason } if reason == BUSY => &self.refused_busy,
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

/// A verified delivery for the main thread (the only one that touches Postgres); it answers
/// through `reply`.
pub struct Delivery {
    pub body: String,
    pub event: String,
    pub signature: String,
    pub domain: Option<String>,
    /// The server whose App Secret verified it.
    pub server: String,
    pub reply: tokio::sync::oneshot::Sender<Outcome>,
}

/// The App Secrets the receiver verifies with, and whether an ingest can succeed.
#[derive(Debug)]
pub struct Secrets {
    pub shops: Vec<Shop>,
    /// Whether an ingest can succeed (the extension, the role's privileges, a server with an
    /// App Secret), else why not: every delivery is then 503, and so is `/healthz`.
    pub health: Result<(), String>,
    /// When the main thread read them.
    pub loaded: Option<Instant>,
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets { shops: vec![], health: Err("the receiver has not read the database yet".into()), loaded: None }
    }
}

impl Secrets {
    /// The server a delivery from `domain` belongs to (`webhook::pick_server`, as
    /// `cyberbiz_ingest_webhook` picks it).
    pub fn pick(&self, domain: Option<&str>) -> Result<&Shop, String> {
        webhook::pick_server(&self.shops, domain)
    }
}

/// Checks a delivery before any database work: a POST, a UTF-8 body within
/// 2 MB (checked while reading), a signature valid under the App Secret of its server, whose
/// name it returns.
pub fn check(secrets: &Secrets, signature: Option<&str>, domain: Option<&str>, body: &[u8]) -> Result<String, Outcome> {
    if let Err(why) = &secrets.health {
        return Err(Outcome::refused(503, why.clone()));
    }
    let shop = secrets.pick(domain).map_err(|e| Outcome::refused(503, e))?;
    match webhook::verify(body, signature.unwrap_or(""), shop.app_secret.as_bytes()) {
        Ok(()) => {}
        Err(Refusal::TooLarge(n)) => return Err(Outcome::refused(413, format!("the body is {n} bytes, over the 2 MB limit"))),
        Err(Refusal::Missing) => return Err(Outcome::refused(401, "no X-Cyberbiz-Hmac-Sha256 signature")),
        Err(Refusal::Mismatch) => return Err(Outcome::refused(401, "the signature does not match the body")),
    }
    std::str::from_utf8(body).map_err(|_| Outcome::refused(400, "the body is not UTF-8 text"))?;
    Ok(shop.server.clone())
}

/// The reason of a refusal for want of room (counted apart: `refused_busy`).
const BUSY: &str = "the receiver is busy; retry later";

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
    queue: mpsc::SyncSender<Delivery>,
    stats: &'static Stats,
    connections: Arc<Semaphore>,
    small_bodies: Arc<Semaphore>,
    large_bodies: Arc<Semaphore>,
}

impl Shared {
    /// Room for a body of `declared` bytes (None: unknown length, counted at the 2 MB limit),
    /// held until the delivery is answered; an Outcome when there is none.
    fn reserve(&self, declared: Option<u64>) -> Result<OwnedSemaphorePermit, Outcome> {
        let n = declared.unwrap_or(webhook::MAX_BODY_BYTES as u64);
        let pool = if declared.is_some() && n as usize <= limits::SMALL { &self.small_bodies } else { &self.large_bodies };
        pool.clone().try_acquire_many_owned(n.max(1) as u32).map_err(|_| Outcome::refused(503, BUSY))
    }

    /// Waits (without asking the database for anything) until the main thread has read the App
    /// Secrets after `since`, at most `limits::SECRETS_WAIT`.
    async fn secrets_read_after(&self, since: Instant) {
        let deadline = Instant::now() + limits::SECRETS_WAIT;
        while Instant::now() < deadline && self.secrets.read().map(|s| s.loaded.is_none_or(|l| l < since)).unwrap_or(false) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn check(&self, signature: Option<&str>, domain: Option<&str>, body: &[u8]) -> Result<String, Outcome> {
        match self.secrets.read() {
            Ok(s) => check(&s, signature, domain, body),
            Err(_) => Err(Outcome::refused(500, "internal error")),
        }
    }
}

async fn handle(sh: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let since = Instant::now();
    if req.method() == Method::GET && req.uri().path() == "/healthz" {
        let health = sh.secrets.read().map(|s| s.health.clone()).unwrap_or_else(|_| Err("internal error".into()));
        return Ok(match health {
            Ok(()) => answer(200, "ok\n".into()),
            Err(why) => answer(503, format!("{why}\n")),
        });
    }
    if req.method() != Method::POST {
        return Ok(answer(405, "POST webhooks here; GET /healthz for health\n".into()));
    }
    let outcome = receive(&sh, req, since).await;
    sh.stats.count(&outcome, since);
    let mut response = match outcome {
        Outcome::Stored { id, duplicate } => answer(200, format!("{id}{}\n", if duplicate { " (duplicate)" } else { "" })),
        Outcome::Refused { status, reason } => answer(status, format!("{reason}\n")),
    };
    if response.status() != StatusCode::OK {
        // A refused request's unread body is not drained: the connection ends with the answer.
        response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    }
    Ok(response)
}

async fn receive(sh: &Shared, req: Request<Incoming>, since: Instant) -> Outcome {
    let (event, signature, domain) = (header(&req, "x-cyberbiz-event"), header(&req, "x-cyberbiz-hmac-sha256"), header(&req, "x-cyberbiz-domain"));
    let declared = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > webhook::MAX_BODY_BYTES as u64) {
        discard(req.into_body()).await;
        return Outcome::refused(413, format!("the body is {n} bytes, over the 2 MB limit"));
    }
    let _room = match sh.reserve(declared) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let body = match tokio::time::timeout(limits::BODY, Limited::new(req.into_body(), webhook::MAX_BODY_BYTES).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Outcome::refused(413, "the body is over the 2 MB limit"),
        Ok(Err(_)) => return Outcome::refused(400, "the body could not be read"),
        Err(_) => return Outcome::refused(408, format!("the body did not arrive within {} s", limits::BODY.as_secs())),
    };
    let mut result = sh.check(signature.as_deref(), domain.as_deref(), &body);
    if matches!(result, Err(Outcome::Refused { status: 503, .. })) {
        // No server for the shop yet (one may have just been added): checked once more after
        // the main thread's next reading of the secrets. A wrong signature is answered at once
        // (a forgery holds nothing; after a secret's rotation the platform resends).
        sh.secrets_read_after(since).await;
        result = sh.check(signature.as_deref(), domain.as_deref(), &body);
    }
    let server = match result {
        Ok(v) => v,
        Err(o) => return o,
    };
    let Ok(body) = String::from_utf8(Vec::from(body)) else { return Outcome::refused(400, "the body is not UTF-8 text") };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let d = Delivery { body, event: event.unwrap_or_default(), signature: signature.unwrap_or_default(), domain, server, reply };
    if sh.queue.try_send(d).is_err() {
        return Outcome::refused(503, BUSY);
    }
    match tokio::time::timeout(DATABASE_WAIT, answer).await {
        Ok(Ok(o)) => o,
        _ => Outcome::refused(503, "the database did not answer in time"),
    }
}

/// Reads and drops a body refused for its declared size (so that the client, still sending,
/// reads the answer rather than a reset), holding none of it: at most `limits::DISCARD` bytes
/// within `limits::BODY`, then the connection ends.
async fn discard(body: Incoming) {
    let mut body = body;
    let mut seen = 0usize;
    let _ = tokio::time::timeout(limits::BODY, async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > limits::DISCARD {
                break;
            }
        }
    })
    .await;
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
pub fn listen(addr: &str, secrets: Arc<RwLock<Secrets>>, queue: mpsc::SyncSender<Delivery>, stats: &'static Stats) -> Result<Listener, (i32, String)> {
    let fail = |e: std::io::Error, what: &str| (e.raw_os_error().unwrap_or(-1), format!("{what}: {e}"));
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| fail(e, &format!("cannot listen on {addr}")))?;
    std_listener.set_nonblocking(true).map_err(|e| fail(e, "cannot listen"))?;
    let local = std_listener.local_addr().map_err(|e| fail(e, "cannot listen"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shared = Arc::new(Shared {
        secrets,
        queue,
        stats,
        connections: Arc::new(Semaphore::new(limits::CONNECTIONS)),
        small_bodies: Arc::new(Semaphore::new(limits::SMALL_POOL)),
        large_bodies: Arc::new(Semaphore::new(limits::LARGE_POOL)),
    });
    let thread = crate::runtime::with_signals_blocked(|| {
        std::thread::Builder::new().name("cyberbiz webhook receiver".into()).spawn(move || serve(std_listener, shared, stopped))
    })
    .map_err(|e| fail(e, "cannot start the receiver's thread"))?;
    Ok(Listener { addr: local, stop: Some(stop), thread: Some(thread) })
}

/// What `cyberbiz_stat_receiver.listen_error` says of a `Stats::listen_errno`.
pub fn listen_error(errno: i32) -> Option<String> {
    match errno {
        0 => None,
        -1 => Some("cannot listen: not an address (host:port)".into()),
        n => Some(format!("cannot listen: {}", std::io::Error::from_raw_os_error(n))),
    }
}

fn serve(std_listener: std::net::TcpListener, shared: Arc<Shared>, mut stopped: tokio::sync::oneshot::Receiver<()>) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() else { return };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => connection(&shared, stream),
                    // Out of descriptors, say: a pause, not a busy loop.
                    Err(_) => tokio::time::sleep(limits::ACCEPT_PAUSE).await,
                },
            }
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// Serves one connection within `limits`, or refuses it at once when `limits::CONNECTIONS`
/// are open.
fn connection(shared: &Arc<Shared>, stream: tokio::net::TcpStream) {
    let Ok(open) = shared.connections.clone().try_acquire_owned() else {
        shared.stats.refused_busy.fetch_add(1, Ordering::Relaxed);
        let _ = stream.try_write(b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 34\r\n\r\nthe receiver is busy; retry later\n");
        return;
    };
    let sh = shared.clone();
    tokio::spawn(async move {
        let svc = service_fn(move |req| handle(sh.clone(), req));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits::HEAD)
            .max_buf_size(limits::READ_BUFFER)
            .serve_connection(TokioIo::new(stream), svc);
        tokio::pin!(conn);
        // No connection outlives `limits::CONNECTION`: then it finishes what it is answering
        // and closes, and one that cannot (a peer that stops reading) is dropped.
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = tokio::time::sleep(limits::CONNECTION) => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(limits::CLOSING, conn).await;
            }
        }
        drop(open);
    });
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
        Secrets { shops: vec![shop("a", Some("a.cyberbiz.co"), "ka"), shop("b", Some("b.cyberbiz.co"), "kb")], health: Ok(()), loaded: None }
    }

    #[test]
    fn deliveries_are_checked_before_any_database_work() {
        let s = secrets();
        let body = br#"{"id": 1}"#;
        let ok = check(&s, Some(&sign(body, "kb")), Some("B.cyberbiz.co"), body);
        assert_eq!(ok, Ok("b".to_string()));
        let status = |r: Result<String, Outcome>| match r {
            Err(Outcome::Refused { status, .. }) => status,
            _ => 0,
        };
        assert_eq!(status(check(&s, Some(&sign(body, "ka")), Some("b.cyberbiz.co"), body)), 401, "another shop's secret");
        assert_eq!(status(check(&s, None, Some("a.cyberbiz.co"), body)), 401);
        // No X-Cyberbiz-Event: verified all the same (the ingest classifies it, or keeps it
        // unclassified: a verified delivery is never lost for want of the header).
        assert!(check(&s, Some(&sign(body, "ka")), Some("a.cyberbiz.co"), body).is_ok());
        assert_eq!(status(check(&s, Some("x"), Some("c.cyberbiz.co"), body)), 503, "no server for the shop");
        let big = vec![b' '; webhook::MAX_BODY_BYTES + 1];
        assert_eq!(status(check(&s, Some(&sign(&big, "ka")), Some("a.cyberbiz.co"), &big)), 413);
        let latin1 = b"{\"n\": \"\xe9\"}";
        assert_eq!(status(check(&s, Some(&sign(latin1, "ka")), Some("a.cyberbiz.co"), latin1)), 400);
        let not_ready = Secrets { health: Err("not ready".into()), ..secrets() };
        assert_eq!(status(check(&not_ready, Some(&sign(body, "ka")), Some("a.cyberbiz.co"), body)), 503);
        let one = Secrets { shops: vec![s.shops[0].clone()], ..secrets() };
        assert_eq!(one.pick(None).map(|s| s.server.as_str()), Ok("a"), "the only server takes deliveries without a domain");
    }

    /// A listener whose "main thread" stores every delivery at once, with the given secrets.
    fn serving() -> (Listener, &'static Stats) {
        let stats: &'static Stats = Box::leak(Box::new(Stats::new()));
        let (tx, rx) = mpsc::sync_channel::<Delivery>(QUEUE);
        std::thread::spawn(move || {
            for (id, d) in rx.iter().enumerate() {
                let _ = d.reply.send(Outcome::Stored { id: id as i64 + 1, duplicate: false });
            }
        });
        let held = Secrets { loaded: Some(Instant::now()), ..secrets() };
        (listen("127.0.0.1:0", Arc::new(RwLock::new(held)), tx, stats).unwrap(), stats)
    }

    fn delivery(body: &str) -> String {
        format!(
            "POST / HTTP/1.1\r\nhost: x\r\nx-cyberbiz-event: orders/paid\r\nx-cyberbiz-domain: a.cyberbiz.co\r\nx-cyberbiz-hmac-sha256: {}\r\ncontent-length: {}\r\n\r\n{body}",
            sign(body.as_bytes(), "ka"),
            body.len()
        )
    }

    /// Sends `request`, returns the status line's code (0: the connection closed first).
    async fn status_of(stream: &mut tokio::net::TcpStream, request: &[u8]) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if stream.write_all(request).await.is_err() {
            return 0;
        }
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.ok().and_then(Result::ok).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    }

    /// Whether the peer closed the connection within `within`.
    async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 256];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    #[test]
    fn peers_cannot_hold_the_receiver() {
        use tokio::io::AsyncWriteExt;
        let (l, stats) = serving();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let connect = || tokio::net::TcpStream::connect(l.addr);
            // A delivery is stored, and the connection kept alive for the next one.
            let mut real = connect().await.unwrap();
            assert_eq!(status_of(&mut real, delivery(r#"{"id": 1}"#).as_bytes()).await, 200);
            // Peers that each hold a nearly complete large body: the large bodies' pool admits
            // LARGE_POOL / 1.9 MB of them, the next one is refused at once; an ordinary delivery
            // still gets through.
            let big = 1_900_000usize;
            let held = limits::LARGE_POOL / big;
            let mut peers = Vec::new();
            for _ in 0..held {
                let mut p = connect().await.unwrap();
                let head = format!("POST / HTTP/1.1\r\nhost: x\r\nx-cyberbiz-event: orders/paid\r\ncontent-length: {big}\r\n\r\n");
                p.write_all(head.as_bytes()).await.unwrap();
                p.write_all(&vec![b' '; big - 1]).await.unwrap();
                peers.push(p);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut one_more = connect().await.unwrap();
            let head = format!("POST / HTTP/1.1\r\nhost: x\r\nx-cyberbiz-event: orders/paid\r\ncontent-length: {big}\r\n\r\n");
            assert_eq!(status_of(&mut one_more, head.as_bytes()).await, 503, "over the large bodies' pool");
            assert_eq!(stats.refused_busy.load(Ordering::Relaxed), 1);
            assert_eq!(status_of(&mut real, delivery(r#"{"id": 2}"#).as_bytes()).await, 200, "an ordinary delivery meanwhile");
            // Over 2 MB declared: 413, the body read and dropped (none of it held), so that
            // the sender, still sending, reads the answer.
            let mut huge = connect().await.unwrap();
            let mut request = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3000000\r\n\r\n".to_vec();
            request.extend(vec![b' '; 3_000_000]);
            assert_eq!(status_of(&mut huge, &request).await, 413);
            // A peer that stops mid-header, and an idle kept-alive connection, are closed within
            // the head timeout; so are the peers holding bodies, within the body timeout.
            let mut slow = connect().await.unwrap();
            slow.write_all(b"POST / HTTP/1.1\r\nhost: x\r\nx-cyberbiz-ev").await.unwrap();
            let started = std::time::Instant::now();
            assert!(closed_within(&mut slow, limits::HEAD + Duration::from_secs(2)).await, "mid-header");
            assert!(started.elapsed() >= limits::HEAD - Duration::from_secs(1));
            assert!(closed_within(&mut real, Duration::from_secs(2)).await, "idle since its last answer");
            for p in &mut peers {
                assert!(closed_within(p, limits::BODY).await, "holding a body");
            }
            // Every connection counts towards the cap until closed; over it, 503 at once.
            let mut open = Vec::new();
            for _ in 0..limits::CONNECTIONS {
                open.push(connect().await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut over = connect().await.unwrap();
            assert_eq!(status_of(&mut over, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await, 503, "over the connection cap");
            drop(open);
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(status_of(&mut connect().await.unwrap(), b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await, 200);
        });
    }
}
