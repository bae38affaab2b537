//! The page pump: runs a scan's requests on the backend's runtime and hands finished bodies to
//! the main thread in order through a small bounded channel, so the whole result is never held
//! in memory. Once the first page has told the total, the next pages are kept in flight (as the
//! limiter allows), so API latency does not lower throughput below the limiter's pace.

use crate::error::FdwError;
use crate::http::{Client, Reply};
use crate::plan::{effective_page_size, url_path, RequestPlan};
use crate::runtime::runtime;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Requests of one scan in flight at most, and finished pages buffered ahead of the reader.
pub const IN_FLIGHT: usize = 4;
pub const BUFFERED_PAGES: usize = 2;

/// A finished response body, with what its headers said about the list.
#[derive(Debug)]
pub struct Page {
    pub body: Bytes,
    pub total: Option<u64>,
}

/// The body of a GET of one object by its key, with the key as its `id` when it has none
/// (`GET /v1/products/{id}` answers without one): a read by id finds its row, and a deletion is
/// never inferred from an `id` the body left out.
fn with_key(body: Bytes, key: Option<i64>) -> Bytes {
    let Some(key) = key else { return body };
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut m)) if !m.contains_key("id") => {
            m.insert("id".into(), serde_json::Value::from(key));
            Bytes::from(serde_json::Value::Object(m).to_string())
        }
        _ => body,
    }
}

pub struct Pump {
    rx: mpsc::Receiver<Result<Page, FdwError>>,
    task: JoinHandle<()>,
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Pump {
    /// The next page, or None at the end. Waits on the runtime; `interrupted` is polled.
    pub fn next(&mut self, interrupted: &dyn Fn() -> bool) -> Result<Option<Page>, FdwError> {
        let rx = &mut self.rx;
        crate::runtime::block_on(async { Ok(rx.recv().await) }, interrupted)?.transpose()
    }
}

fn page_of(r: Reply) -> Page {
    Page { body: r.body, total: r.total }
}

/// For lists, a 404 means the endpoint does not exist (only per-key reads treat it as no row).
fn found(r: Result<Reply, FdwError>, request: &str) -> Result<Reply, FdwError> {
    match r {
        Ok(r) if r.status == 404 => Err(FdwError::Api { status: 404, request: request.to_string(), message: crate::http::api_message(&r.body) }),
        other => other,
    }
}

/// The ids a lookup answered: an array of objects carrying `id_field`; `null`, `[]` (the
/// platform's 206) and 404 mean none.
fn lookup_ids(r: &Reply, request: &str, id_field: &str) -> Result<Vec<i64>, FdwError> {
    if r.status == 404 {
        return Ok(vec![]);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&r.body).map_err(|e| FdwError::BadBody { request: format!("GET {request}"), detail: format!("malformed JSON ({e})") })?;
    let items = match v {
        serde_json::Value::Null => vec![],
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    Ok(items.iter().filter_map(|o| o.get(id_field).and_then(|x| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())))).collect())
}

/// Counts the elements of a top-level JSON array without building values.
fn array_len(body: &[u8]) -> Option<usize> {
    serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body).ok().map(|v| v.len())
}

pub fn start(client: Arc<Client>, plan: RequestPlan) -> Pump {
    let (tx, rx) = mpsc::channel(BUFFERED_PAGES);
    let task = runtime().spawn(async move {
        let result = match plan {
            RequestPlan::Whole { path, params } => match found(client.get(&url_path(&path, &params)).await, &format!("GET {path}")) {
                Ok(r) => tx.send(Ok(page_of(r))).await.map_err(|_| ()),
                Err(e) => tx.send(Err(e)).await.map_err(|_| ()),
            },
            RequestPlan::PerKey { .. } => per_key(client, plan.key_paths(), &tx).await,
            RequestPlan::List { path, params, page_size, cap } => {
                let base = format!("{}{}", url_path(&path, &params), if params.is_empty() { "?" } else { "&" });
                list(client, base, effective_page_size(page_size, cap), cap, &tx).await
            }
            RequestPlan::Lookup { path, params, id_field, prefix } => {
                match client.get(&url_path(&path, &params)).await.and_then(|r| lookup_ids(&r, &path, &id_field)) {
                    Ok(ids) => per_key(client, ids.iter().map(|id| (format!("{prefix}/{id}"), Some(*id))).collect(), &tx).await,
                    Err(e) => tx.send(Err(e)).await.map_err(|_| ()),
                }
            }
            RequestPlan::Nothing => Ok(()),
        };
        let _ = result;
    });
    Pump { rx, task }
}

fn join_error(e: tokio::task::JoinError) -> FdwError {
    FdwError::Transport { request: "a page request".into(), attempts: 0, cause: e.to_string() }
}

/// A spawned request, aborted (and so never sent, if it still waits for the limiter) when dropped.
pub struct Request(JoinHandle<Result<Reply, FdwError>>);

impl Drop for Request {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::future::Future for Request {
    type Output = Result<Result<Reply, FdwError>, tokio::task::JoinError>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

async fn ordered(handles: &mut VecDeque<Request>) -> Option<Result<Reply, FdwError>> {
    let h = handles.pop_front()?;
    Some(h.await.unwrap_or_else(|e| Err(join_error(e))))
}

async fn per_key(client: Arc<Client>, paths: Vec<(String, Option<i64>)>, tx: &mpsc::Sender<Result<Page, FdwError>>) -> Result<(), ()> {
    let mut queue: VecDeque<(String, Option<i64>)> = paths.into();
    let mut inflight = VecDeque::new();
    let mut keys = VecDeque::new();
    loop {
        while inflight.len() < IN_FLIGHT {
            let Some((p, key)) = queue.pop_front() else { break };
            let c = client.clone();
            inflight.push_back(Request(tokio::spawn(async move { c.get(&p).await })));
            keys.push_back(key);
        }
        let Some(r) = ordered(&mut inflight).await else { return Ok(()) };
        let key = keys.pop_front().flatten();
        let page = match r {
            // A key that does not exist is no row, not an error.
            Ok(r) if r.status == 404 => continue,
            Ok(r) => Ok(Page { body: with_key(r.body, key), total: r.total }),
            Err(e) => Err(e),
        };
        let stop = page.is_err();
        tx.send(page).await.map_err(|_| ())?;
        if stop {
            return Ok(());
        }
    }
}

/// What the scan knows about the list's length.
enum Extent {
    /// Page 1 has not answered yet: page 2 may be prepared speculatively.
    Unknown,
    /// X-Total-Pages said so (followed upwards if rows are added during the scan).
    Pages(u64),
    /// No pagination headers (an endpoint outside the catalog): page until a short page.
    UntilShort { done: bool },
}

/// Pages a list in order. Limiter slots are taken here, one page after another, so requests
/// leave in page order; each request then runs as its own task so several can be in flight.
async fn list(client: Arc<Client>, base: String, page_size: u32, cap: Option<u64>, tx: &mpsc::Sender<Result<Page, FdwError>>) -> Result<(), ()> {
    let url = |page: u64| format!("{base}per_page={page_size}&page={page}");
    // With a LIMIT cap, never ask for pages past it.
    let cap_pages = cap.map(|c| c.div_ceil(page_size as u64).max(1)).unwrap_or(u64::MAX);
    let launch = |page: u64| {
        let (c, u) = (client.clone(), url(page));
        Request(tokio::spawn(async move { found(c.get_paced(&u).await, &format!("GET {u}")) }))
    };
    let mut extent = Extent::Unknown;
    let mut next: u64 = 1;
    let mut head: Option<Request> = None;
    let mut queue: VecDeque<Request> = VecDeque::new();
    loop {
        let in_flight = head.is_some() as usize + queue.len();
        let may_launch = in_flight < IN_FLIGHT
            && next <= cap_pages
            && match extent {
                // Page 2 waits for its slot meanwhile, and is never sent if page 1 answers
                // first that there is no page 2: with a slow API this saves a round trip.
                Extent::Unknown => next <= 2,
                Extent::Pages(tp) => next <= tp,
                Extent::UntilShort { done } => !done && in_flight == 0,
            };
        if head.is_none() {
            head = queue.pop_front();
        }
        if head.is_none() && !may_launch {
            return Ok(());
        }
        tokio::select! {
            biased;
            r = async { head.as_mut().expect("checked").await }, if head.is_some() => {
                head = None;
                let r = r.unwrap_or_else(|e| Err(join_error(e)));
                let stop = r.is_err();
                if let Ok(reply) = &r {
                    client.stats.pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    extent = match (&extent, reply.total_pages) {
                        // Rows added during the scan push the last ones onto a new page: follow them.
                        (Extent::Unknown, Some(tp)) => Extent::Pages(tp),
                        (Extent::Pages(tp), Some(now)) => Extent::Pages((*tp).max(now)),
                        (Extent::Pages(tp), None) => Extent::Pages(*tp),
                        (_, None) => Extent::UntilShort { done: array_len(&reply.body).is_none_or(|n| n < page_size as usize) },
                        (Extent::UntilShort { .. }, Some(tp)) => Extent::Pages(tp),
                    };
                    // A speculative page beyond the end is dropped (unsent if it still waits).
                    let last = match extent {
                        Extent::Pages(tp) => tp,
                        Extent::UntilShort { done: true } => next - 1 - queue.len() as u64,
                        _ => u64::MAX,
                    };
                    while next - 1 > last && queue.pop_back().is_some() {
                        next -= 1;
                    }
                }
                tx.send(r.map(page_of)).await.map_err(|_| ())?;
                if stop {
                    return Ok(());
                }
            }
            _ = client.acquire(), if may_launch => {
                queue.push_back(launch(next));
                next += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_read_by_key_gets_its_id() {
        let body = with_key(Bytes::from_static(br#"{"title": "tea"}"#), Some(7));
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap(), serde_json::json!({"title": "tea", "id": 7}));
        let kept = Bytes::from_static(br#"{"id": 8}"#);
        assert_eq!(with_key(kept.clone(), Some(7)), kept, "an id it has is kept");
        assert_eq!(with_key(Bytes::from_static(b"[]"), Some(7)), Bytes::from_static(b"[]"));
        assert_eq!(with_key(Bytes::from_static(b"{}"), None), Bytes::from_static(b"{}"));
    }
}
