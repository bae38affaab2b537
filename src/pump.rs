//! The page pump: runs a scan's requests on the backend's runtime and hands finished bodies to
//! the main thread in order through a small bounded channel, so the whole result is never held
//! in memory. Once the first page has told the total, the next pages are kept in flight (as the
//! limiter allows), so API latency does not lower throughput below the limiter's pace.

use crate::error::FdwError;
use crate::http::{runtime, Client, Reply};
use crate::plan::RequestPlan;
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
    pub status: u16,
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
        crate::http::block_on(async { Ok(rx.recv().await) }, interrupted)?.transpose()
    }
}

fn page_of(r: Reply) -> Page {
    Page { body: r.body, total: r.total, status: r.status }
}

/// For lists, a 404 means the endpoint does not exist (only per-key reads treat it as no row).
fn found(r: Result<Reply, FdwError>, request: &str) -> Result<Reply, FdwError> {
    match r {
        Ok(r) if r.status == 404 => Err(FdwError::Api { status: 404, request: request.to_string(), message: crate::http::api_message(&r.body) }),
        other => other,
    }
}

/// Counts the elements of a top-level JSON array without building values.
fn array_len(body: &[u8]) -> Option<usize> {
    serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body).ok().map(|v| v.len())
}

pub fn start(client: Arc<Client>, plan: RequestPlan) -> Pump {
    let (tx, rx) = mpsc::channel(BUFFERED_PAGES);
    let task = runtime().spawn(async move {
        let result = match plan {
            RequestPlan::Whole { path } => match found(client.get(&path).await, &format!("GET {path}")) {
                Ok(r) => tx.send(Ok(page_of(r))).await.map_err(|_| ()),
                Err(e) => tx.send(Err(e)).await.map_err(|_| ()),
            },
            RequestPlan::PerKey { .. } => per_key(client, plan.key_paths(), &tx).await,
            RequestPlan::List { path, page_size } => list(client, path, page_size, &tx).await,
        };
        let _ = result;
    });
    Pump { rx, task }
}

async fn ordered(handles: &mut VecDeque<JoinHandle<Result<Reply, FdwError>>>) -> Option<Result<Reply, FdwError>> {
    let h = handles.pop_front()?;
    Some(h.await.unwrap_or_else(|e| Err(FdwError::Transport { request: "a page request".into(), attempts: 0, cause: e.to_string() })))
}

async fn per_key(client: Arc<Client>, paths: Vec<String>, tx: &mpsc::Sender<Result<Page, FdwError>>) -> Result<(), ()> {
    let mut queue: VecDeque<String> = paths.into();
    let mut inflight = VecDeque::new();
    loop {
        while inflight.len() < IN_FLIGHT {
            let Some(p) = queue.pop_front() else { break };
            let c = client.clone();
            inflight.push_back(tokio::spawn(async move { c.get(&p).await }));
        }
        let Some(r) = ordered(&mut inflight).await else { return Ok(()) };
        let page = match r {
            // A key that does not exist is no row, not an error.
            Ok(r) if r.status == 404 => continue,
            Ok(r) => Ok(page_of(r)),
            Err(e) => Err(e),
        };
        let stop = page.is_err();
        tx.send(page).await.map_err(|_| ())?;
        if stop {
            return Ok(());
        }
    }
}

async fn list(client: Arc<Client>, path: String, page_size: u32, tx: &mpsc::Sender<Result<Page, FdwError>>) -> Result<(), ()> {
    let url = |page: u64| format!("{path}?per_page={page_size}&page={page}");
    let first = match found(client.get(&url(1)).await, &format!("GET {}", url(1))) {
        Ok(r) => r,
        Err(e) => return tx.send(Err(e)).await.map_err(|_| ()),
    };
    let total_pages = first.total_pages;
    let first_len = array_len(&first.body);
    client.stats.pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tx.send(Ok(page_of(first))).await.map_err(|_| ())?;
    match total_pages {
        // The total is known: keep the following pages in flight.
        Some(tp) => {
            let mut next = 2;
            let mut inflight = VecDeque::new();
            loop {
                while inflight.len() < IN_FLIGHT && next <= tp {
                    let (c, u) = (client.clone(), url(next));
                    inflight.push_back(tokio::spawn(async move { found(c.get(&u).await, &format!("GET {u}")) }));
                    next += 1;
                }
                let Some(r) = ordered(&mut inflight).await else { return Ok(()) };
                let stop = r.is_err();
                if r.is_ok() {
                    client.stats.pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tx.send(r.map(page_of)).await.map_err(|_| ())?;
                if stop {
                    return Ok(());
                }
            }
        }
        // No pagination headers (an endpoint outside the catalog): page until a short page.
        None => {
            let mut len = first_len;
            let mut page = 2;
            while len.is_some_and(|n| n >= page_size as usize) {
                let r = found(client.get(&url(page)).await, &format!("GET {}", url(page)));
                len = r.as_ref().ok().and_then(|r| array_len(&r.body));
                let stop = r.is_err();
                if r.is_ok() {
                    client.stats.pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tx.send(r.map(page_of)).await.map_err(|_| ())?;
                if stop {
                    return Ok(());
                }
                page += 1;
            }
            Ok(())
        }
    }
}
