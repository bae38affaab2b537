//! The HTTP client: requests (each waits for its slot in `crate::pace`), retries with backoff,
//! error mapping, and statistics for EXPLAIN ANALYZE. Runs on the backend's runtime
//! (`crate::runtime`); no Postgres calls here: the FFI layer passes an `interrupted` probe for
//! waits.

use crate::error::FdwError;
use crate::pace::budget::Budgets;
use crate::pace::Pacer;
use bytes::Bytes;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters of one scan, shown by EXPLAIN ANALYZE.
#[derive(Default, Debug)]
pub struct Stats {
    pub requests: AtomicU64,
    pub pages: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub limiter_wait_us: AtomicU64,
    pub bytes: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub struct Settings {
    pub api_url: String,
    pub requests_per_second: f64,
    pub timeout: Duration,
    pub max_retries: u32,
    pub max_response_bytes: u64,
    /// The cluster's budgets (shared memory, when preloaded); None: pace per backend.
    pub budgets: Option<&'static Budgets>,
    /// The server's name, shown by the budgets view.
    pub server_name: String,
    /// A lower rate this client keeps to on top of the budget (replica syncs).
    pub cap_requests_per_second: Option<f64>,
}

impl Settings {
    pub fn for_server(server: &crate::options::ServerOptions) -> Settings {
        Settings {
            api_url: server.api_url.clone(),
            requests_per_second: server.requests_per_second,
            timeout: Duration::from_secs_f64(server.timeout_secs),
            max_retries: server.max_retries,
            max_response_bytes: server.max_response_bytes,
            budgets: None,
            server_name: String::new(),
            cap_requests_per_second: None,
        }
    }
}

/// What a successful request returned.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    pub total: Option<u64>,
    pub total_pages: Option<u64>,
}

pub struct Client {
    http: reqwest::Client,
    settings: Settings,
    token: String,
    pacer: Pacer,
    pub stats: Arc<Stats>,
    /// The table being read and the scope it needs, for error messages.
    pub table: String,
    pub scope: Option<String>,
}

fn header_u64(h: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The platform's error text from `{"error":[..]}`, `{"error":".."}`, `{"message":".."}` or
/// `{"messages":".."}`; otherwise the start of the body.
pub fn api_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        for k in ["error", "message", "messages", "errors"] {
            match v.get(k) {
                Some(Value::String(s)) => return s.clone(),
                Some(Value::Array(a)) => {
                    return a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect::<Vec<_>>().join("; ")
                }
                _ => {}
            }
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string();
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text
    }
}

/// The JWT's payload (its claims), unverified: what the token says about itself.
fn token_payload(token: &str) -> Option<Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What the JWT says about itself, to explain a 401 without a round trip: expiry and scopes.
pub fn token_claims(token: &str) -> Option<(Option<i64>, Vec<String>)> {
    let v = token_payload(token)?;
    let exp = v.get("exp").and_then(Value::as_i64);
    let scopes = v.get("scopes").and_then(Value::as_str).unwrap_or("").split_whitespace().map(str::to_string).collect();
    Some((exp, scopes))
}

/// The shop a token was issued for (its `shop_domain` claim), lower-cased: how a server knows
/// its shop when its `shop_domain` option is not set.
pub fn token_shop_domain(token: &str) -> Option<String> {
    token_payload(token)?.get("shop_domain").and_then(Value::as_str).map(|d| d.trim().to_ascii_lowercase()).filter(|d| !d.is_empty())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Cause chain of a transport error, without the URL (which is fine) or headers (never logged).
fn cause(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if e.is_timeout() {
        parts.push("timed out".to_string());
    }
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.contains(&t) {
            parts.push(t);
        }
        src = s.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// Why a response body could not be used.
enum BodyFailure {
    TooLarge,
    Transport(String),
}

/// Reads `resp`'s body, failing as soon as it exceeds `limit` bytes (nothing more is read).
async fn read_body(mut resp: reqwest::Response, limit: u64) -> Result<Bytes, BodyFailure> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyFailure::TooLarge);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| BodyFailure::Transport(cause(&e)))? {
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(BodyFailure::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The error for a 3xx answer, naming the host it pointed to (never its path or query).
fn redirected(request: &str, status: u16, headers: &reqwest::header::HeaderMap) -> FdwError {
    let location = headers.get("location").and_then(|v| v.to_str().ok());
    let host = location.and_then(|l| url::Url::parse(l).ok()).and_then(|u| u.host_str().map(|h| format!("host {h}")));
    let location = host.unwrap_or_else(|| if location.is_some() { "a path on the same host".into() } else { "no Location".into() });
    FdwError::Redirected { request: request.to_string(), status, location }
}

impl Client {
    pub fn new(settings: Settings, token: String, table: String, scope: Option<String>) -> Result<Client, FdwError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(8)
            // The API never redirects: a redirect is an error naming where it pointed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cyberbiz_fdw/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FdwError::Transport { request: settings.api_url.clone(), attempts: 0, cause: cause(&e) })?;
        let pacer =
            Pacer::new(&settings.api_url, &token, settings.requests_per_second, settings.cap_requests_per_second, settings.budgets, &settings.server_name);
        Ok(Client { http, settings, token, pacer, stats: Arc::new(Stats::default()), table, scope })
    }

    /// A 401 or 403: why the token was refused (expired, missing scope, ...).
    fn refused(&self, status: u16, request: String, body: &[u8]) -> FdwError {
        match (status, &self.scope) {
            (401, _) => self.describe_401(&request),
            (_, Some(scope)) => FdwError::MissingScope { table: self.table.clone(), scope: scope.clone(), request, status },
            (_, None) => FdwError::Api { status, request, message: api_message(body) },
        }
    }

    /// After failed attempt `attempt`: the error when no retry is left, else waits `wait` and
    /// doubles `backoff` (up to 8 s). 429s are the platform asking us to wait, not a failure of
    /// the request: they get five more tries than other errors.
    async fn retry_or_fail(&self, attempt: u32, failure: FdwError, wait: Duration, backoff: &mut Duration) -> Result<(), FdwError> {
        let limit = if matches!(failure, FdwError::RetriesExhausted { status: 429, .. }) { self.settings.max_retries + 5 } else { self.settings.max_retries };
        if attempt > limit {
            return Err(failure);
        }
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
        *backoff = (*backoff * 2).min(Duration::from_secs(8));
        Ok(())
    }

    /// Counts a 429 and says how long to wait: Retry-After if sent, else the backoff (>= 1 s).
    /// With a shared budget, every backend on the token waits as long.
    fn throttled(&self, headers: &reqwest::header::HeaderMap, backoff: Duration) -> Duration {
        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        let wait = header_u64(headers, "retry-after").map(|s| Duration::from_secs(s.min(60))).unwrap_or(backoff.max(Duration::from_secs(1)));
        self.pacer.throttle(wait);
        wait
    }

    fn describe_401(&self, request: &str) -> FdwError {
        let reason = match token_claims(&self.token) {
            None => "the token is not a CYBERBIZ API token (not a readable JWT)".to_string(),
            Some((Some(exp), _)) if exp <= now_unix() => {
                format!(
                    "the token expired {} minutes ago; create a new one in the CYBERBIZ admin and ALTER USER MAPPING ... OPTIONS (SET api_token '...')",
                    (now_unix() - exp) / 60
                )
            }
            Some((_, scopes)) => {
                if let Some(scope) = &self.scope {
                    if !scopes.iter().any(|s| s == scope) {
                        return FdwError::MissingScope { table: self.table.clone(), scope: scope.clone(), request: request.to_string(), status: 401 };
                    }
                }
                "the token is not expired and carries the needed scope; it may have been revoked, or the shop's plan does not include this feature".to_string()
            }
        };
        FdwError::Unauthorized { request: request.to_string(), reason }
    }

    /// GET `path_and_query` (relative to api_url) through the limiter, with retries:
    /// 429 waits `Retry-After` or backs off; 5xx, timeouts and dropped connections back off
    /// exponentially up to max_retries. 404 is returned to the caller (lookups treat it as none).
    pub async fn get(&self, path_and_query: &str) -> Result<Reply, FdwError> {
        self.acquire().await;
        self.get_paced(path_and_query).await
    }

    /// A response's status, headers and body (counted in the stats). A redirect or a body over
    /// max_response_bytes is an error at once; a body that broke off is `Err(cause)` inside,
    /// for the caller to retry or report.
    async fn received(&self, resp: reqwest::Response, request: &str) -> Result<(u16, reqwest::header::HeaderMap, Result<Bytes, String>), FdwError> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if (300..400).contains(&status) {
            return Err(redirected(request, status, &headers));
        }
        let limit = self.settings.max_response_bytes;
        let body = match read_body(resp, limit).await {
            Ok(b) => Ok(b),
            Err(BodyFailure::TooLarge) => return Err(FdwError::ResponseTooLarge { request: request.to_string(), limit }),
            Err(BodyFailure::Transport(cause)) => Err(cause),
        };
        if let Ok(b) = &body {
            self.stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
        Ok((status, headers, body))
    }

    /// Waits for the next send this client may make. Cancel-safe: dropping the wait takes no
    /// send (and leaves the shared budget's queue).
    pub async fn acquire(&self) {
        let t0 = Instant::now();
        self.pacer.acquire().await;
        self.stats.limiter_wait_us.fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    /// `get` for a caller that has already taken a limiter slot for the first attempt (so that
    /// a scan's pages are sent in order); retries wait for slots of their own.
    pub async fn get_paced(&self, path_and_query: &str) -> Result<Reply, FdwError> {
        let url = format!("{}{}", self.settings.api_url, path_and_query);
        let request = format!("GET {path_and_query}");
        let mut attempt: u32 = 0;
        let mut backoff = Duration::from_millis(500);
        loop {
            attempt += 1;
            if attempt > 1 {
                self.acquire().await;
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = self.http.get(&url).bearer_auth(&self.token).header("Accept", "application/json").send().await;
            let retry_wait: Duration;
            let failure: FdwError;
            match sent {
                Ok(resp) => {
                    let (status, headers, body) = self.received(resp, &request).await?;
                    let body = match body {
                        Ok(b) => b,
                        Err(cause) => {
                            let failure = FdwError::Transport { request: request.clone(), attempts: attempt, cause };
                            let wait = backoff;
                            self.retry_or_fail(attempt, failure, wait, &mut backoff).await?;
                            continue;
                        }
                    };
                    match status {
                        200..=299 | 404 => {
                            return Ok(Reply { status, total: header_u64(&headers, "x-total"), total_pages: header_u64(&headers, "x-total-pages"), body })
                        }
                        401 | 403 => return Err(self.refused(status, request, &body)),
                        429 => {
                            retry_wait = self.throttled(&headers, backoff);
                            failure = FdwError::RetriesExhausted { status, request: request.clone(), attempts: attempt, message: api_message(&body) };
                        }
                        500..=599 => {
                            retry_wait = backoff;
                            failure = FdwError::RetriesExhausted { status, request: request.clone(), attempts: attempt, message: api_message(&body) };
                        }
                        _ => return Err(FdwError::Api { status, request, message: api_message(&body) }),
                    }
                }
                Err(e) => {
                    retry_wait = backoff;
                    failure = FdwError::Transport { request: request.clone(), attempts: attempt, cause: cause(&e) };
                }
            }
            self.retry_or_fail(attempt, failure, retry_wait, &mut backoff).await?;
        }
    }
}

impl Client {
    /// A write: `method` (POST, PUT, DELETE) with a JSON body. Bodies over `max_bytes` fail
    /// before sending. PUT and DELETE retry like GET; a POST is retried only when it cannot
    /// have reached the server (connection refused, 429), and an unknown outcome is an error
    /// saying the row may have been created.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&[u8]>, max_bytes: u64, row: &str) -> Result<Reply, FdwError> {
        let size = body.map(|b| b.len()).unwrap_or(0);
        if size as u64 > max_bytes {
            return Err(FdwError::BodyTooLarge { row: row.to_string(), size, limit: max_bytes });
        }
        let url = format!("{}{}", self.settings.api_url, path);
        let request = format!("{method} {path}");
        let is_post = method == reqwest::Method::POST;
        let mut attempt: u32 = 0;
        let mut backoff = Duration::from_millis(500);
        loop {
            attempt += 1;
            self.acquire().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut rb = self.http.request(method.clone(), &url).bearer_auth(&self.token).header("Accept", "application/json");
            if let Some(b) = body {
                rb = rb.header("Content-Type", "application/json").body(b.to_vec());
            }
            let (wait, failure) = match rb.send().await {
                Ok(resp) => {
                    let (status, headers, body) = self.received(resp, &request).await?;
                    let body = match body {
                        Ok(b) => b,
                        Err(cause) if (200..300).contains(&status) => return Err(FdwError::UnreadableAnswer { request, status, cause }),
                        Err(_) => Bytes::new(),
                    };
                    match status {
                        200..=299 => return Ok(Reply { status, body, total: None, total_pages: None }),
                        401 | 403 => return Err(self.refused(status, request, &body)),
                        429 => (
                            self.throttled(&headers, backoff),
                            FdwError::RetriesExhausted { status, request: request.clone(), attempts: attempt, message: api_message(&body) },
                        ),
                        500..=599 if !is_post => {
                            (backoff, FdwError::RetriesExhausted { status, request: request.clone(), attempts: attempt, message: api_message(&body) })
                        }
                        500..=599 => return Err(FdwError::outcome_unknown(request, format!("the API answered {status}: {}", api_message(&body)))),
                        _ => return Err(FdwError::Api { status, request, message: api_message(&body) }),
                    }
                }
                Err(e) if is_post && !e.is_connect() => return Err(FdwError::outcome_unknown(request, cause(&e))),
                Err(e) => (backoff, FdwError::Transport { request: request.clone(), attempts: attempt, cause: cause(&e) }),
            };
            self.retry_or_fail(attempt, failure, wait, &mut backoff).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_messages_in_every_shape() {
        assert_eq!(api_message(r#"{"error":["無權使用該 API"]}"#.as_bytes()), "無權使用該 API");
        assert_eq!(api_message(br#"{"error":"Must have pos_shop_coupon plugin"}"#), "Must have pos_shop_coupon plugin");
        assert_eq!(api_message(r#"{"message":"無效的 Provider Type"}"#.as_bytes()), "無效的 Provider Type");
        assert_eq!(api_message(br#"{"messages":"Invoice is not ready."}"#), "Invoice is not ready.");
        assert_eq!(api_message(b"<html>Bad Gateway</html>"), "<html>Bad Gateway</html>");
        assert_eq!(api_message(b""), "(empty body)");
    }

    #[test]
    fn claims_read_from_the_jwt() {
        // {"exp":100,"scopes":"read_orders public"}
        let t = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjEwMCwic2NvcGVzIjoicmVhZF9vcmRlcnMgcHVibGljIn0.sig";
        assert_eq!(token_claims(t), Some((Some(100), vec!["read_orders".to_string(), "public".to_string()])));
        assert_eq!(token_claims("garbage"), None);
        use base64::Engine;
        let with_shop = format!("h.{}.s", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"shop_domain": "Demo.Cyberbiz.co"}"#));
        assert_eq!(token_shop_domain(&with_shop).as_deref(), Some("demo.cyberbiz.co"));
        assert_eq!(token_shop_domain(t), None);
    }
}
