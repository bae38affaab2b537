//! The HTTP side: routing, auth and scopes, the per-token rate limit, the body-size limit, fault
//! injection, pagination, writes with signed webhooks, and the request log.

use crate::clock::{format_local, now_local_secs, now_unix_f64};
use crate::config::Config;
use crate::jwt::{self, TokenError};
use crate::rng::unit;
use crate::routes::{self, Listing, Route};
use crate::store::{compile, Compiled, Item, Store};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub const MSG_UNAUTHORIZED: &str = "無權使用該 API";
pub const MSG_NOT_FOUND: &str = "無此資源";
pub const MSG_SYSTEM: &str = "系統有誤，請聯絡 CYBERBIZ";
pub const MSG_RATE: &str = "Rate limit exceeded";
pub const MAX_PER_PAGE: usize = 50;

/// One line of `GET /__sandbox/requests`.
#[derive(Clone)]
pub struct LogEntry {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub request_bytes: usize,
    pub response_bytes: usize,
    pub timestamp: f64,
}

pub struct State {
    pub cfg: Config,
    pub store: RwLock<Store>,
    log: Mutex<Vec<LogEntry>>,
    webhooks: Arc<Mutex<Vec<Value>>>,
    /// Per token: (wall-clock second, requests counted in it).
    windows: Mutex<HashMap<String, (u64, u32)>>,
    counter: AtomicU64,
    http: reqwest::Client,
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
pub struct Dropped;

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// A finished answer, before it becomes an HTTP response.
pub struct Reply {
    status: StatusCode,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
    webhook: Option<(String, Bytes)>,
}

impl Reply {
    fn json(status: StatusCode, v: &Value) -> Self {
        Reply { status, body: Bytes::from(v.to_string()), headers: vec![], webhook: None }
    }

    fn raw(status: StatusCode, body: Bytes) -> Self {
        Reply { status, body, headers: vec![], webhook: None }
    }

    fn error(status: StatusCode, msg: &str) -> Self {
        Self::json(status, &json!({ "error": [msg] }))
    }

    fn with_webhook(mut self, event: Option<String>) -> Self {
        self.webhook = event.map(|e| (e, self.body.clone()));
        self
    }
}

impl State {
    pub fn new(cfg: Config, store: Store) -> Self {
        State {
            cfg,
            store: RwLock::new(store),
            log: Mutex::new(Vec::new()),
            webhooks: Arc::new(Mutex::new(Vec::new())),
            windows: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default(),
        }
    }

    fn record(&self, e: LogEntry) {
        if let Ok(mut log) = self.log.lock() {
            if log.len() >= 2_000_000 {
                log.clear();
            }
            log.push(e);
        }
    }

    /// Fixed one-second windows per token, counting every request (rejected ones too), as a
    /// Rack::Attack-style throttle on the platform would.
    fn over_rate(&self, token: &str) -> bool {
        if self.cfg.rps == 0 {
            return false;
        }
        let sec = now_unix_f64() as u64;
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() > 10_000 {
            w.retain(|_, (s, _)| *s == sec);
        }
        let slot = w.entry(token.to_string()).or_insert((sec, 0));
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
        slot.1 > self.cfg.rps
    }
}

pub async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let method = req.method().clone();
    let path_q = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));

    if path.starts_with("/__sandbox/") {
        return Ok(to_response(admin(&st, &method, &path, &query)));
    }

    let n = st.counter.fetch_add(1, Ordering::Relaxed);
    let declared_len = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let method_text = method.to_string();
    let entry = move |status: u16, req_bytes: usize, resp_bytes: usize| LogEntry {
        method: method_text.clone(),
        path: path_q.clone(),
        status,
        request_bytes: req_bytes,
        response_bytes: resp_bytes,
        timestamp: now_unix_f64(),
    };

    if st.cfg.drop_rate > 0.0 && unit(st.cfg.seed, 2 * n) < st.cfg.drop_rate {
        st.record(entry(0, declared_len.unwrap_or(0), 0));
        return Err(Dropped);
    }
    let token =
        req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string()).unwrap_or_default();
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = if declared_len.is_some_and(|l| l > st.cfg.max_body_bytes) {
        Err(declared_len.unwrap_or(0))
    } else {
        match Limited::new(req.into_body(), st.cfg.max_body_bytes).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(_) => Err(st.cfg.max_body_bytes + 1),
        }
    };
    // The request has fully arrived: like a real server, process it to the end even if the
    // client leaves meanwhile (during the injected latency, say). The work runs in a task of its
    // own, which dropping this connection's future does not cancel.
    let call = Call { method, path, query, token, content_type, n };
    let work = tokio::spawn(async move {
        if st.cfg.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(st.cfg.latency_ms)).await;
        }
        let (reply, req_bytes) = process(&st, &call, body);
        st.record(entry(reply.status.as_u16(), req_bytes, reply.body.len()));
        if let Some((event, body)) = reply.webhook.clone() {
            send_webhook(&st, event, body);
        }
        reply
    });
    match work.await {
        Ok(reply) => Ok(to_response(reply)),
        Err(_) => Err(Dropped),
    }
}

/// What `handle` needs of a request once its body is read.
struct Call {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    token: String,
    content_type: String,
    /// The request's sequence number (seeds the injected faults).
    n: u64,
}

/// The reply to a request whose body was read (`Err(size)`: it was over the body limit), and
/// the request's size.
fn process(st: &State, c: &Call, body: Result<Bytes, usize>) -> (Reply, usize) {
    if st.over_rate(&c.token) {
        return (Reply::error(StatusCode::TOO_MANY_REQUESTS, MSG_RATE), body.as_ref().map(|b| b.len()).unwrap_or_else(|n| *n));
    }
    match body {
        Err(size) => (too_large(st), size),
        Ok(_) if st.cfg.fail_rate > 0.0 && unit(st.cfg.seed, 2 * c.n + 1) < st.cfg.fail_rate => (Reply::error(StatusCode::SERVICE_UNAVAILABLE, MSG_SYSTEM), 0),
        Ok(body) => (dispatch(st, &c.method, &c.path, &c.query, &c.token, &c.content_type, &body), body.len()),
    }
}

fn too_large(st: &State) -> Reply {
    let mut r = Reply::error(StatusCode::PAYLOAD_TOO_LARGE, &format!("Request body exceeds {} bytes", st.cfg.max_body_bytes));
    r.headers.push(("Connection", "close".into()));
    r
}

fn to_response(r: Reply) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(r.body));
    *resp.status_mut() = r.status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("Content-Language", HeaderValue::from_static("zh-TW"));
    for (k, v) in r.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}

fn admin(st: &State, method: &Method, path: &str, q: &HashMap<String, String>) -> Reply {
    match (method, path) {
        // Benchmarks: the shop changes `count` orders at once (as its admin would), without
        // spending the token's requests: their updated_at becomes now, nothing else.
        (&Method::POST, "/__sandbox/touch") => {
            let count = q.get("count").and_then(|c| c.parse::<usize>().ok()).unwrap_or(1);
            let now = format_local(now_local_secs());
            let mut s = write_lock(st);
            let Some(t) = s.table_mut("orders") else { return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND) };
            let n = count.min(t.items.len());
            for it in t.items.iter_mut().take(n) {
                it.value["updated_at"] = Value::from(now.clone());
                *it = Item::new(std::mem::take(&mut it.value));
            }
            Reply::json(StatusCode::OK, &json!({"touched": n}))
        }
        // Tests and benchmarks: the shop's admin deletes an object in the back office (the API
        // has no delete for orders or customers, and no webhook tells of it).
        (&Method::POST, "/__sandbox/remove") => {
            let (Some(table), Some(id)) = (q.get("table"), q.get("id").and_then(|i| parse_id(i))) else {
                return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, "table and id are required");
            };
            let mut s = write_lock(st);
            let Some(t) = s.table_mut(table) else { return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND) };
            Reply::json(StatusCode::OK, &json!({"removed": t.remove(id).is_some()}))
        }
        (&Method::GET, "/__sandbox/requests") => {
            let log = st.log.lock().map(|l| l.clone()).unwrap_or_default();
            let v: Vec<Value> = log
                .iter()
                .map(|e| json!({"method": e.method, "path": e.path, "status": e.status, "request_bytes": e.request_bytes, "response_bytes": e.response_bytes, "timestamp": e.timestamp}))
                .collect();
            Reply::json(StatusCode::OK, &Value::Array(v))
        }
        (&Method::DELETE, "/__sandbox/requests") => {
            if let Ok(mut l) = st.log.lock() {
                l.clear();
            }
            Reply::json(StatusCode::OK, &json!({"cleared": true}))
        }
        (&Method::GET, "/__sandbox/webhooks") => Reply::json(StatusCode::OK, &Value::Array(st.webhooks.lock().map(|w| w.clone()).unwrap_or_default())),
        (&Method::DELETE, "/__sandbox/webhooks") => {
            if let Ok(mut w) = st.webhooks.lock() {
                w.clear();
            }
            Reply::json(StatusCode::OK, &json!({"cleared": true}))
        }
        _ => Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
    }
}

pub fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                Ok(x) => {
                    out.push(x);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Auth and scope: `None` when the token may call this; otherwise the 401 to send.
/// The platform answers 401 both for a bad token and for a missing scope.
fn authorize(st: &State, token: &str, group: &str, write: bool) -> Option<Reply> {
    let claims = match jwt::verify(&st.cfg.jwt_secret, token, now_unix_f64() as i64) {
        Ok(c) => c,
        Err(TokenError::Expired) | Err(TokenError::BadSignature) | Err(TokenError::Malformed) => {
            return Some(Reply::error(StatusCode::UNAUTHORIZED, MSG_UNAUTHORIZED))
        }
    };
    if group.is_empty() || group == "public" {
        return None;
    }
    let need = format!("{}_{group}", if write { "write" } else { "read" });
    if claims.scopes.contains(&need) {
        None
    } else {
        Some(Reply::error(StatusCode::UNAUTHORIZED, MSG_UNAUTHORIZED))
    }
}

fn dispatch(st: &State, method: &Method, path: &str, q: &HashMap<String, String>, token: &str, ctype: &str, body: &[u8]) -> Reply {
    let path = path.trim_end_matches('/');
    let write = method != Method::GET;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();

    // Endpoints outside the generic table.
    let group = match segs.as_slice() {
        ["shop"] => "",
        ["v1", "orders", ..] | ["v1", "einvoices", ..] => "orders",
        ["v1", "customers", ..] | ["v2", "customers"] => "customers",
        ["v1", "products", ..] => "products",
        _ => {
            // Generic resources: the group comes from the route table.
            let base = if segs.len() >= 2 { format!("/{}/{}", segs[0], segs[1]) } else { String::new() };
            match routes::find(&base) {
                Some(r) => r.group,
                None => return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
            }
        }
    };
    if let Some(denied) = authorize(st, token, group, write) {
        return denied;
    }

    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["shop"]) => Reply::json(StatusCode::OK, &st.store.read().map(|s| s.shop_info.clone()).unwrap_or(Value::Null)),
        (Method::GET, ["v1", "orders", "get_order_id"]) => lookup_order_ids(st, q),
        (Method::GET, ["v1", "customers", "get_customer_id"]) => lookup_customer_ids(st, q),
        (Method::GET, ["v1", "einvoices", "get_einvoice"]) => {
            let no = q.get("invoice_no").cloned().unwrap_or_default();
            let s = read(st);
            let found = s
                .table("einvoices")
                .and_then(|t| t.find_by(|v| v.get("invoice_no").and_then(Value::as_str) == Some(no.as_str())).next().map(|i| i.json.clone()));
            match found {
                Some(b) => Reply::raw(StatusCode::OK, b),
                None => Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
            }
        }
        (Method::GET, ["v2", "customers"]) => {
            let ids: Vec<i64> = q.get("ids").map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect()).unwrap_or_default();
            let s = read(st);
            let Some(t) = s.table("customers") else { return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND) };
            let items: Vec<&Item> = if ids.is_empty() { t.items.iter().collect() } else { ids.iter().filter_map(|id| t.get(*id)).collect() };
            paginate(&items, q)
        }
        (m, ["v1", "products", pid, "product_variants", rest @ ..]) => variants(st, m, pid, rest, ctype, body),
        (Method::PUT, ["v1", "orders", id, action]) => order_action(st, id, action, ctype, body),
        (m, [v, res, rest @ ..]) => {
            let Some(route) = routes::find(&format!("/{v}/{res}")) else { return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND) };
            generic(st, route, m, rest, q, ctype, body)
        }
        _ => Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
    }
}

fn read(st: &State) -> std::sync::RwLockReadGuard<'_, Store> {
    st.store.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock(st: &State) -> std::sync::RwLockWriteGuard<'_, Store> {
    st.store.write().unwrap_or_else(|e| e.into_inner())
}

fn generic(st: &State, route: &Route, m: Method, rest: &[&str], q: &HashMap<String, String>, ctype: &str, body: &[u8]) -> Reply {
    match (m, rest) {
        (Method::GET, []) => list(st, route, q),
        (Method::GET, [id]) if route.get => {
            let s = read(st);
            match parse_id(id).and_then(|id| s.table(route.name)?.get(id)) {
                Some(it) if route.get_without_id => {
                    let mut v = it.value.clone();
                    v.as_object_mut().map(|m| m.remove("id"));
                    Reply::json(StatusCode::OK, &v)
                }
                Some(it) => Reply::raw(StatusCode::OK, it.json.clone()),
                None => Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
            }
        }
        (Method::POST, []) if route.post => match parse_body(ctype, body) {
            Err(r) => r,
            Ok(fields) => create(st, route, fields),
        },
        (Method::PUT, [id]) if route.put => match parse_body(ctype, body) {
            Err(r) => r,
            Ok(fields) => update(st, route, id, fields),
        },
        (Method::DELETE, [id]) if route.delete => {
            let mut s = write_lock(st);
            match parse_id(id).and_then(|id| s.table_mut(route.name)?.remove(id)) {
                Some(it) => Reply::raw(StatusCode::OK, it.json).with_webhook(route.webhook(route.delete_verb)),
                None => Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
            }
        }
        _ => Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
    }
}

fn parse_id(s: &str) -> Option<i64> {
    s.parse().ok()
}

fn list(st: &State, route: &Route, q: &HashMap<String, String>) -> Reply {
    let mut compiled: Vec<Compiled> = Vec::new();
    for f in route.filters {
        if let Some(raw) = q.get(f.param) {
            match compile(f, raw) {
                Ok(c) => compiled.push(c),
                Err(msg) => return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, &msg),
            }
        }
    }
    let s = read(st);
    let Some(t) = s.table(route.name) else { return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND) };
    match route.listing {
        Listing::None => Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
        Listing::Whole { wrap } => {
            let arr = join(t.items.iter());
            let body = match wrap {
                Some("current") => format!("{{\"current\":{arr},\"draft\":[]}}"),
                Some(k) => format!("{{\"{k}\":{arr}}}"),
                None => arr,
            };
            Reply::raw(StatusCode::OK, Bytes::from(body))
        }
        Listing::Paged => {
            let items: Vec<&Item> =
                if compiled.is_empty() { t.items.iter().collect() } else { t.items.iter().filter(|it| compiled.iter().all(|c| c.keeps(&it.value))).collect() };
            paginate(&items, q)
        }
    }
}

fn join<'a>(items: impl Iterator<Item = &'a Item>) -> String {
    let mut out = String::from("[");
    for (i, it) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(std::str::from_utf8(&it.json).unwrap_or("null"));
    }
    out.push(']');
    out
}

/// The platform's pagination: `page` (1-based), `per_page` (default and maximum 50; above that
/// a 500), `offset`; the slice starts at `offset + (page - 1) * per_page`.
fn paginate(items: &[&Item], q: &HashMap<String, String>) -> Reply {
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(d);
    let per_page = match num("per_page", MAX_PER_PAGE) {
        0 => MAX_PER_PAGE,
        p => p,
    };
    if per_page > MAX_PER_PAGE {
        return Reply::error(StatusCode::INTERNAL_SERVER_ERROR, MSG_SYSTEM);
    }
    let page = num("page", 1).max(1);
    let offset = num("offset", 0);
    let total = items.len();
    let start = offset.saturating_add((page - 1).saturating_mul(per_page)).min(total);
    let end = (start + per_page).min(total);
    let total_pages = total.saturating_sub(offset).div_ceil(per_page);
    let mut r = Reply::raw(StatusCode::OK, Bytes::from(join(items[start..end].iter().copied())));
    r.headers = vec![
        ("X-Total", total.to_string()),
        ("X-Total-Pages", total_pages.to_string()),
        ("X-Page", page.to_string()),
        ("X-Per-Page", per_page.to_string()),
        ("X-Offset", offset.to_string()),
        ("X-Next-Page", if page < total_pages { (page + 1).to_string() } else { String::new() }),
        ("X-Prev-Page", if page > 1 { (page - 1).to_string() } else { String::new() }),
    ];
    r
}

fn lookup_order_ids(st: &State, q: &HashMap<String, String>) -> Reply {
    let wanted: Vec<i64> = q.get("order_numbers").map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect()).unwrap_or_default();
    let s = read(st);
    let found: Vec<Value> = s
        .table("orders")
        .map(|t| {
            t.find_by(|v| v.get("order_number").and_then(Value::as_i64).is_some_and(|n| wanted.contains(&n)))
                .map(|it| json!({"order_number": it.value["order_number"], "order_id": it.value["id"]}))
                .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        // Recorded quirk: nothing found is a 206 with an empty array.
        return Reply::json(StatusCode::PARTIAL_CONTENT, &json!([]));
    }
    Reply::json(StatusCode::OK, &Value::Array(found))
}

fn lookup_customer_ids(st: &State, q: &HashMap<String, String>) -> Reply {
    let split = |k: &str| q.get(k).map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect::<Vec<_>>()).unwrap_or_default();
    let (emails, mobiles) = (split("customer_emails"), split("customer_mobiles"));
    let s = read(st);
    let found: Vec<Value> = s
        .table("customers")
        .map(|t| {
            t.find_by(|v| {
                v.get("email").and_then(Value::as_str).is_some_and(|e| emails.iter().any(|x| x == e))
                    || v.get("mobile").and_then(Value::as_str).is_some_and(|m| mobiles.iter().any(|x| x == m))
            })
            .map(|it| json!({"customer_id": it.value["id"], "customer_email": it.value["email"], "customer_mobile": it.value["mobile"]}))
            .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        // Recorded quirk: nothing found is a 200 with a bare null.
        return Reply::raw(StatusCode::OK, Bytes::from_static(b"null"));
    }
    Reply::json(StatusCode::OK, &Value::Array(found))
}

/// A write body: JSON object, or form fields (values typed as JSON scalars where they parse).
fn parse_body(ctype: &str, body: &[u8]) -> Result<Map<String, Value>, Reply> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    if ctype.starts_with("application/x-www-form-urlencoded") {
        let text = String::from_utf8_lossy(body);
        return Ok(parse_query(&text)
            .into_iter()
            .map(|(k, v)| {
                let typed = match v.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => v.parse::<i64>().map(Value::from).or_else(|_| v.parse::<f64>().map(Value::from)).unwrap_or(Value::String(v)),
                };
                (k, typed)
            })
            .collect());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Reply::error(StatusCode::BAD_REQUEST, "請求內容必須是 JSON 物件")),
        Err(_) => Err(Reply::error(StatusCode::BAD_REQUEST, "JSON 格式錯誤")),
    }
}

const READ_ONLY: &[&str] = &["id", "created_at", "updated_at", "password"];
const MONEY_FIELDS: &[&str] = &["price", "cost", "compare_at_price", "order_price_threshold", "value", "threshold"];

fn validate(fields: &Map<String, Value>) -> Result<(), Reply> {
    for k in MONEY_FIELDS {
        if let Some(v) = fields.get(*k) {
            if !(v.is_number() || v.is_null() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok())) {
                return Err(Reply::error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{k} 不是數字")));
            }
        }
    }
    Ok(())
}

/// Copies writable fields into an object; `tags_text` is the platform's comma-separated tags.
fn apply(obj: &mut Map<String, Value>, fields: Map<String, Value>, now: &str) {
    for (k, v) in fields {
        if READ_ONLY.contains(&k.as_str()) {
            continue;
        }
        if k == "tags_text" {
            let tags: Vec<Value> = v.as_str().unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()).map(Value::from).collect();
            obj.insert("tags".into(), Value::Array(tags));
            continue;
        }
        let v = match (MONEY_FIELDS.contains(&k.as_str()), &v) {
            (true, Value::String(s)) => s.parse::<f64>().map(Value::from).unwrap_or(v),
            (true, Value::Number(n)) => n.as_f64().map(Value::from).unwrap_or(v),
            _ => v,
        };
        obj.insert(k, v);
    }
    obj.insert("updated_at".into(), Value::from(now));
}

fn create(st: &State, route: &Route, fields: Map<String, Value>) -> Reply {
    let missing: Vec<&str> = route.required.iter().copied().filter(|k| fields.get(*k).is_none_or(|v| v.is_null() || v.as_str() == Some(""))).collect();
    if !missing.is_empty() {
        let msgs: Vec<String> = missing.iter().map(|k| format!("{k} 不能是空白")).collect();
        return Reply::json(StatusCode::UNPROCESSABLE_ENTITY, &json!({ "error": msgs }));
    }
    if let Err(r) = validate(&fields) {
        return r;
    }
    let now = format_local(now_local_secs());
    let mut s = write_lock(st);
    let Some(t) = s.table_mut(route.name) else { return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND) };
    let id = t.max_id() + 1;
    let mut obj = Map::new();
    obj.insert("created_at".into(), Value::from(now.clone()));
    if route.name == "products" {
        obj.insert("tags".into(), json!([]));
        obj.insert("product_variants".into(), json!([]));
    }
    apply(&mut obj, fields, &now);
    if route.name == "products" {
        let price = obj.get("price").cloned().unwrap_or(Value::Null);
        let sku = obj.remove("sku").unwrap_or(Value::Null);
        obj.insert(
            "product_variants".into(),
            json!([{"product_id": id, "name": null, "position": 1, "price": price, "cost": null, "compare_at_price": price, "inventory_management": true, "inventory_quantity": 0, "inventory_policy": "deny", "sku": sku, "created_at": now, "updated_at": now, "id": id * 10 + 1}]),
        );
    }
    obj.insert("id".into(), Value::from(id));
    let value = Value::Object(obj);
    let item = Item::new(value.clone());
    let body = item.json.clone();
    t.insert(value, route.name == "products");
    Reply::raw(StatusCode::CREATED, body).with_webhook(route.webhook("create"))
}

fn update(st: &State, route: &Route, id: &str, mut fields: Map<String, Value>) -> Reply {
    if route.name == "orders" {
        // Only these are changeable through PUT /v1/orders/{id}; the rest is ignored.
        fields.retain(|k, _| matches!(k.as_str(), "note" | "delivery_date" | "delivery_time"));
    }
    if let Err(r) = validate(&fields) {
        return r;
    }
    let now = format_local(now_local_secs());
    let mut s = write_lock(st);
    let Some(it) = parse_id(id).and_then(|id| s.table_mut(route.name)?.get_mut(id)) else {
        return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND);
    };
    if let Value::Object(obj) = &mut it.value {
        apply(obj, fields, &now);
    }
    *it = Item::new(std::mem::take(&mut it.value));
    Reply::raw(StatusCode::OK, it.json.clone()).with_webhook(route.webhook("update"))
}

fn order_action(st: &State, id: &str, action: &str, ctype: &str, body: &[u8]) -> Reply {
    let fields = match parse_body(ctype, body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let now = format_local(now_local_secs());
    let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
    let (status_key, new_status, event) = match action {
        "cancelled" => {
            if text("cancel_reason").is_none() {
                return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, "cancel_reason 不能是空白");
            }
            ("order_status", "cancelled".to_string(), "orders/cancelled".to_string())
        }
        "update_status" => match text("status") {
            Some(s) if matches!(s.as_str(), "open" | "closed" | "cancelled") => {
                ("order_status", s.clone(), format!("orders/{}", if s == "open" { "opened".into() } else { s }))
            }
            _ => return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, "status 無效值"),
        },
        "update_financial_status" => match text("financial_status").or_else(|| text("status")) {
            Some(s) if matches!(s.as_str(), "pending" | "paid" | "cod" | "remitted" | "failed" | "refunded" | "partial_refunded") => {
                ("financial_status", s.clone(), if s == "paid" { "orders/paid".into() } else { "orders/update".into() })
            }
            _ => return Reply::error(StatusCode::UNPROCESSABLE_ENTITY, "financial_status 無效值"),
        },
        _ => return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND),
    };
    let mut s = write_lock(st);
    let Some(it) = parse_id(id).and_then(|id| s.table_mut("orders")?.get_mut(id)) else {
        return Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND);
    };
    if status_key == "order_status" && it.value["statuses"]["order_status"] == "cancelled" && new_status == "cancelled" {
        return Reply::error(StatusCode::FORBIDDEN, "訂單已取消");
    }
    let v = &mut it.value;
    v["statuses"][status_key] = Value::from(new_status.clone());
    match new_status.as_str() {
        "cancelled" => v["timings"]["cancelled_at"] = Value::from(now.clone()),
        "closed" => v["timings"]["closed_at"] = Value::from(now.clone()),
        "refunded" | "partial_refunded" => v["timings"]["refund_at"] = Value::from(now.clone()),
        _ => {}
    }
    if let Some(reason) = text("cancel_reason") {
        v["customer_cancel_reason_detail"] = Value::from(reason);
    }
    v["updated_at"] = Value::from(now);
    *it = Item::new(std::mem::take(&mut it.value));
    Reply::raw(StatusCode::OK, it.json.clone()).with_webhook(Some(event))
}

/// `/v1/products/{product_id}/product_variants[/{id}]`: variants live inside their product.
fn variants(st: &State, m: Method, pid: &str, rest: &[&str], ctype: &str, body: &[u8]) -> Reply {
    let not_found = || Reply::error(StatusCode::NOT_FOUND, MSG_NOT_FOUND);
    let Some(pid) = parse_id(pid) else { return not_found() };
    let vid = match rest {
        [] => None,
        [v] => match parse_id(v) {
            Some(v) => Some(v),
            None => return not_found(),
        },
        _ => return not_found(),
    };
    let fields = if matches!(m, Method::POST | Method::PUT) {
        match parse_body(ctype, body) {
            Ok(f) => f,
            Err(r) => return r,
        }
    } else {
        Map::new()
    };
    if let Err(r) = validate(&fields) {
        return r;
    }
    let now = format_local(now_local_secs());
    let mut s = write_lock(st);
    let Some(product) = s.table_mut("products").and_then(|t| t.get_mut(pid)) else { return not_found() };
    let mut pv = std::mem::take(&mut product.value);
    let reply = {
        let vars = pv.get_mut("product_variants").and_then(Value::as_array_mut);
        match (vars, &m, vid) {
            (None, _, _) => not_found(),
            (Some(vars), &Method::GET, None) => Reply::json(StatusCode::OK, &Value::Array(vars.clone())),
            (Some(vars), &Method::GET, Some(v)) => match vars.iter().find(|x| x["id"].as_i64() == Some(v)) {
                Some(x) => Reply::json(StatusCode::OK, x),
                None => not_found(),
            },
            (Some(vars), &Method::POST, None) => {
                let next = vars.iter().filter_map(|x| x["id"].as_i64()).max().unwrap_or(pid * 10) + 1;
                let mut obj = Map::new();
                obj.insert("product_id".into(), Value::from(pid));
                obj.insert("position".into(), Value::from(vars.len() as i64 + 1));
                obj.insert("created_at".into(), Value::from(now.clone()));
                apply(&mut obj, fields, &now);
                obj.insert("id".into(), Value::from(next));
                let v = Value::Object(obj);
                vars.push(v.clone());
                Reply::json(StatusCode::CREATED, &v).with_webhook(Some("variants/create".to_string()))
            }
            (Some(vars), &Method::PUT, Some(v)) => match vars.iter_mut().find(|x| x["id"].as_i64() == Some(v)) {
                Some(Value::Object(obj)) => {
                    apply(obj, fields, &now);
                    Reply::json(StatusCode::OK, &Value::Object(obj.clone())).with_webhook(Some("variants/update".to_string()))
                }
                _ => not_found(),
            },
            (Some(vars), &Method::DELETE, Some(v)) => match vars.iter().position(|x| x["id"].as_i64() == Some(v)) {
                Some(i) => {
                    let gone = vars.remove(i);
                    Reply::json(StatusCode::OK, &gone).with_webhook(Some("variants/delete".to_string()))
                }
                None => not_found(),
            },
            _ => not_found(),
        }
    };
    if reply.status.is_success() && m != Method::GET {
        pv["updated_at"] = Value::from(now);
    }
    *product = Item::new(pv);
    reply
}

/// Posts a signed webhook the way the platform does: the body is the resource object, signed
/// with HMAC-SHA256 (hex) under the app secret.
fn send_webhook(st: &Arc<State>, event: String, body: Bytes) {
    let Some(url) = st.cfg.webhook_url.clone() else { return };
    // An older shop's product webhook leaves the variants out.
    let resource = event.split('/').next().unwrap_or("");
    let restyled =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.as_object().and_then(|m| crate::style::webhook_object(st.cfg.style, resource, m)));
    let body = restyled.map(|m| Bytes::from(Value::Object(m).to_string())).unwrap_or(body);
    let sig = jwt::webhook_signature_hex(&st.cfg.app_secret, &body);
    let domain = st.cfg.shop_domain.clone();
    let domain_sig = jwt::webhook_signature_hex(&st.cfg.app_secret, domain.as_bytes());
    let http = st.http.clone();
    let log = st.webhooks.clone();
    tokio::spawn(async move {
        let res = http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("User-Agent", "CyberbizAppWebhook/1.0")
            .header("X-Cyberbiz-Event", &event)
            .header("X-Cyberbiz-Domain", &domain)
            .header("X-Cyberbiz-Shop-Domain", "www.sandbox-shop.example")
            .header("X-Cyberbiz-Hmac-Sha256", &sig)
            .header("X-Cyberbiz-Domain-Hmac-Sha256", &domain_sig)
            .body(body.clone())
            .send()
            .await;
        let status = match &res {
            Ok(r) => Value::from(r.status().as_u16()),
            Err(_) => Value::Null,
        };
        if let Ok(mut l) = log.lock() {
            l.push(json!({"event": event, "status": status, "bytes": body.len(), "timestamp": now_unix_f64()}));
        }
    });
}
