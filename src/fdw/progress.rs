//! Live progress of scans (for `crate::progress`): each scan's entry in the shared activity
//! table (placed in shared memory by `budget.rs`),
//! the `cyberbiz_stat_activity` view over it, and the progress NOTICEs that the GUC
//! `cyberbiz.progress_interval` turns on (every N seconds of a long scan).

use super::budget::activities;
use crate::plan::RequestPlan;
use crate::progress::{self, Claim, Counts};
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Seconds between progress NOTICEs of a long scan; 0 (the default) for none.
static PROGRESS_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Called from `_PG_init`: the GUC.
pub(crate) fn init() {
    GucRegistry::define_int_guc(
        c"cyberbiz.progress_interval",
        c"Seconds between NOTICEs reporting a CYBERBIZ scan's progress (0: none).",
        c"Long scans then say, every N seconds: orders: page 40 of 200, 2,000 rows, about 32 s left.",
        &PROGRESS_INTERVAL,
        0,
        3600,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
}

/// Whether process `pid` exists (entries of backends that died are hidden and reused).
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) }
}

/// A scan's progress: published in the activity table, and told in NOTICEs when asked for.
/// Dropping it (the scan ended, or an ERROR freed its state) frees the entry.
pub(crate) struct Progress {
    table: String,
    claim: Option<Claim>,
    started_ms: u64,
    last_notice_ms: u64,
    counts: Counts,
}

impl Progress {
    /// A scan of `table` starting the requests of `plan`.
    pub(crate) fn start(table: &str, plan: &RequestPlan) -> Progress {
        let now = progress::now_ms();
        let claim = activities().and_then(|a| a.claim(std::process::id(), table, &plan.describe(), now, &alive));
        // Requests known before the first answer: one per key, or the one request.
        let pages_total = matches!(plan, RequestPlan::PerKey { keys: Some(_), .. } | RequestPlan::Whole { .. }).then(|| plan.requests(0.0) as u64);
        Progress { table: table.to_string(), claim, started_ms: now, last_notice_ms: now, counts: Counts { pages_total, ..Counts::default() } }
    }

    /// A page of `rows` rows arrived; `total` is the list's X-Total when it said one.
    pub(crate) fn page(&mut self, plan: &RequestPlan, rows: usize, total: Option<u64>, stats: &crate::http::Stats) {
        use crate::http::Stats as S;
        // A list's pages, once X-Total says how many rows it has (up to a LIMIT's cap).
        let pages_total = match (plan, total) {
            (RequestPlan::List { .. }, Some(t)) => Some(plan.requests(t as f64) as u64),
            _ => self.counts.pages_total,
        };
        self.counts = Counts {
            pages_done: self.counts.pages_done + 1,
            pages_total,
            rows: self.counts.rows + rows as u64,
            requests: S::get(&stats.requests),
            throttled: S::get(&stats.throttled),
            wait_us: S::get(&stats.limiter_wait_us),
        };
        if let (Some(a), Some(c)) = (activities(), self.claim) {
            a.update(c, &self.counts);
        }
        let every = PROGRESS_INTERVAL.get();
        let now = progress::now_ms();
        if every > 0 && now.saturating_sub(self.last_notice_ms) >= every as u64 * 1000 {
            self.last_notice_ms = now;
            pgrx::notice!("{}", progress::message(&self.table, &self.counts, self.started_ms, now));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let (Some(a), Some(c)) = (activities(), self.claim.take()) {
            a.release(c);
        }
    }
}

/// One row per running CYBERBIZ scan of the cluster (when preloaded): the backend, the table,
/// the request, pages done of total, rows, requests, 429s, limiter wait, start and estimated
/// finish (unix milliseconds; the view shows timestamps).
// pgrx reads the column names from this signature, so it cannot hide behind a type alias.
#[allow(clippy::type_complexity)]
#[pg_extern]
fn cyberbiz_fdw_activity() -> TableIterator<
    'static,
    (
        name!(pid, i32),
        name!(table_name, String),
        name!(request, String),
        name!(pages_done, i64),
        name!(pages_total, Option<i64>),
        name!(rows, i64),
        name!(requests, i64),
        name!(throttled, i64),
        name!(limiter_wait_ms, i64),
        name!(started_ms, i64),
        name!(finish_ms, Option<i64>),
    ),
> {
    let rows = activities().map(|a| a.rows(progress::now_ms(), &alive)).unwrap_or_default();
    TableIterator::new(rows.into_iter().map(|r| {
        let c = r.counts;
        (
            r.pid as i32,
            r.table,
            r.request,
            c.pages_done as i64,
            c.pages_total.map(|t| t as i64),
            c.rows as i64,
            c.requests as i64,
            c.throttled as i64,
            (c.wait_us / 1000) as i64,
            r.started_ms as i64,
            r.finish_ms.map(|f| f as i64),
        )
    }))
}

extension_sql_file!("../../sql/activity.sql", name = "activity", requires = [cyberbiz_fdw_activity]);
