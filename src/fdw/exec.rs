//! Executor callbacks and EXPLAIN: a scan evaluates its pushed values, plans its requests,
//! pulls pages from the pump, decodes rows into slots, and reports what it sent.

use super::datum::{build_columns, datum_values, store_row, zone_for, PgColumn};
use super::private::{self, QualSpec};
use super::progress::Progress;
use super::quals::const_values;
use super::table::{api_token, check_as_user, table_info, TableInfo};
use super::{attach_state, interrupt_pending, wait, OrRaise};
use crate::decode::{self, Cell, ColumnSpec, Row, Source, Zone};
use crate::error::FdwError;
use crate::http::{Client, Stats};
use crate::options::TableSource;
use crate::plan::{self, Limits, Qual, Query, RequestPlan, ScanPlan};
use crate::pump::{self, Pump};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::collections::{HashSet, VecDeque};
use std::ffi::CString;
use std::sync::Arc;

pub fn install(routine: &mut pg_sys::FdwRoutine) {
    routine.BeginForeignScan = Some(begin_foreign_scan);
    routine.IterateForeignScan = Some(iterate_foreign_scan);
    routine.ReScanForeignScan = Some(rescan_foreign_scan);
    routine.EndForeignScan = Some(end_foreign_scan);
    routine.ExplainForeignScan = Some(explain_foreign_scan);
}

/// A qual of the plan whose value the executor computes, and its executor state.
struct KeyExpr {
    spec: QualSpec,
    expr: *mut pg_sys::Expr,
    state: *mut pg_sys::ExprState,
}

/// Executor state of one scan, owned by `ForeignScanState.fdw_state`.
struct ScanState {
    info: TableInfo,
    token: Option<String>,
    specs: Vec<ColumnSpec>,
    columns: Vec<PgColumn>,
    zone: Box<dyn Zone>,
    key_exprs: Vec<KeyExpr>,
    /// Quals that stay local only (they keep LIMIT from being pushed).
    local_only: usize,
    limit: Option<u64>,
    plan: Option<ScanPlan>,
    /// Made by the first run and kept for rescans (a nested loop's inner side runs once per
    /// outer row: one HTTP client, one connection pool, for all of them).
    client: Option<Arc<Client>>,
    pump: Option<Pump>,
    rows: VecDeque<Row>,
    seen: HashSet<i64>,
    cells: Vec<Cell>,
    stats: Arc<Stats>,
    first_total: Option<u64>,
    last_total: Option<u64>,
    /// This run read its request to the end, and every row had an id (so `seen` counts the
    /// rows listed): what an X-Total can be compared with.
    ended: bool,
    unkeyed: bool,
    econtext: *mut pg_sys::ExprContext,
    /// Live progress of the running requests (the activity view, NOTICEs).
    progress: Option<Progress>,
}

impl ScanState {
    /// Plans the requests for `quals` (the key expressions' values, in order).
    fn plan_for(&self, quals: Vec<Qual>) -> Result<ScanPlan, FdwError> {
        let limits = Limits::for_server(&self.info.server, self.zone.as_ref());
        plan::plan_scan(&self.info.name, &self.info.source, &Query { quals, local_only: self.local_only, limit: self.limit }, &limits)
    }
}

/// Reads the plan's private data, prepares the value expressions and the column decoders.
#[pg_guard]
extern "C-unwind" fn begin_foreign_scan(node: *mut pg_sys::ForeignScanState, eflags: std::ffi::c_int) {
    // SAFETY: Postgres passes the scan's state node, whose plan is the ForeignScan that
    // get_foreign_plan made and whose relation is open.
    unsafe {
        let plan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
        let rel = (*node).ss.ss_currentRelation;
        let user = check_as_user((*node).ss.ps.state, (*plan).scan.scanrelid);
        let info = table_info((*rel).rd_id, user);
        let explain_only = eflags as u32 & pg_sys::EXEC_FLAG_EXPLAIN_ONLY != 0;
        let token = if explain_only { None } else { Some(api_token(&info)) };
        let (mut specs, columns) = build_columns(rel, &info);
        let p = private::decode((*plan).fdw_private);
        if p.needed != "*" {
            let keep: Vec<usize> = p.needed.split(',').filter_map(|a| a.parse::<usize>().ok()).collect();
            for (i, spec) in specs.iter_mut().enumerate() {
                if !keep.contains(&(i + 1)) {
                    spec.source = Source::Skip;
                }
            }
        }
        let exprs = PgList::<pg_sys::Expr>::from_pg((*plan).fdw_exprs);
        let key_exprs =
            exprs.iter_ptr().zip(p.quals).map(|(e, spec)| KeyExpr { spec, expr: e, state: pg_sys::ExecInitExpr(e, node as *mut pg_sys::PlanState) }).collect();
        let zone = zone_for(&info.server.time_zone);
        let st = ScanState {
            info,
            token,
            specs,
            columns,
            zone,
            key_exprs,
            local_only: p.local_only,
            limit: p.limit,
            plan: None,
            client: None,
            pump: None,
            rows: VecDeque::new(),
            seen: HashSet::new(),
            cells: Vec::new(),
            stats: Arc::new(Stats::default()),
            first_total: None,
            last_total: None,
            ended: false,
            unkeyed: false,
            econtext: (*node).ss.ps.ps_ExprContext,
            progress: None,
        };
        attach_state(&mut (*node).fdw_state, st);
    }
}

/// # Safety
/// `node` must be a scan begun by [`begin_foreign_scan`].
unsafe fn state<'a>(node: *mut pg_sys::ForeignScanState) -> &'a mut ScanState {
    // SAFETY: begin_foreign_scan stored a ScanState there, alive for the executor's context.
    unsafe { &mut *((*node).fdw_state as *mut ScanState) }
}

/// Evaluates the qual expressions (constants, parameters, stable functions, outer columns) and
/// plans the requests.
fn plan_now(st: &mut ScanState) -> ScanPlan {
    let mut quals = Vec::new();
    for k in &st.key_exprs {
        let mut isnull = false;
        // SAFETY: the expression state was initialised for this scan; the econtext is the
        // scan's own, holding the current outer tuple and parameters.
        let values = unsafe {
            let d = pg_sys::ExecEvalExpr(k.state, st.econtext, &mut isnull);
            let typ = pg_sys::exprType(k.expr as *mut pg_sys::Node);
            if isnull {
                vec![]
            } else {
                datum_values(d, typ, k.spec.is_array)
            }
        };
        quals.push(Qual { column: k.spec.column.clone(), op: k.spec.op, values: Some(values) });
    }
    st.plan_for(quals).or_raise()
}

/// The scan's HTTP client, made on first use.
fn client(st: &mut ScanState) -> Arc<Client> {
    if let Some(c) = &st.client {
        return c.clone();
    }
    let mut client = super::table::read_client(&st.info, st.token.clone().unwrap_or_default()).or_raise();
    client.stats = st.stats.clone();
    st.client.insert(Arc::new(client)).clone()
}

/// Plans the requests and starts the pump that fetches them.
fn start(st: &mut ScanState) {
    let p = plan_now(st);
    st.pump = Some(pump::start(client(st), p.request.clone()));
    st.progress = Some(Progress::start(&st.info.name, &p.request));
    st.plan = Some(p);
}

/// The next row of the scan, or None at the end; pages are fetched as rows run out.
fn next_row(st: &mut ScanState) -> Option<Row> {
    loop {
        if let Some(row) = st.rows.pop_front() {
            // Offset pagination shifts when the shop changes mid-scan: drop repeats.
            match row.id() {
                Some(id) if !st.seen.insert(id) => continue,
                Some(_) => {}
                None => st.unkeyed = true,
            }
            return Some(row);
        }
        if st.pump.is_none() {
            if st.plan.is_some() {
                return None;
            }
            start(st);
        }
        let page = match st.pump.as_mut() {
            Some(p) => wait(|| p.next(&interrupt_pending)).or_raise(),
            None => None,
        };
        let Some(page) = page else {
            st.pump = None;
            st.progress = None;
            st.ended = true;
            return None;
        };
        if let Some(t) = page.total {
            st.first_total.get_or_insert(t);
            st.last_total = Some(t);
        }
        if let Some(plan) = &st.plan {
            let rows = decode::rows(&page.body, &plan.shape).map_err(|e| FdwError::BadBody { request: plan.request.describe(), detail: e.0 }).or_raise();
            if let Some(p) = st.progress.as_mut() {
                p.page(&plan.request, rows.len(), page.total, &st.stats);
            }
            st.rows.extend(rows);
        }
    }
}

#[pg_guard]
extern "C-unwind" fn iterate_foreign_scan(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: Postgres passes a scan begun by begin_foreign_scan; its scan slot has the
    // foreign table's descriptor, which build_columns read.
    unsafe {
        let st = state(node);
        let slot = (*node).ss.ss_ScanTupleSlot;
        pg_sys::ExecClearTuple(slot);
        if let Some(row) = next_row(st) {
            store_row(&st.info.name, &st.specs, &mut st.columns, st.zone.as_ref(), &row, &mut st.cells, slot);
        }
        slot
    }
}

#[pg_guard]
extern "C-unwind" fn rescan_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    // SAFETY: Postgres passes a scan begun by begin_foreign_scan.
    let st = unsafe { state(node) };
    warn_if_shifted(st);
    st.pump = None;
    st.progress = None;
    st.plan = None;
    st.rows.clear();
    st.seen.clear();
    st.unkeyed = false;
}

thread_local! {
    /// Scans of this backend during which the shop's list shrank (X-Total fell).
    static SHIFTED_SCANS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
    /// Scans of this backend that read a whole list and found fewer rows than its X-Total.
    static SHORT_SCANS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// How many scans of this backend saw the shop's list shrink under them (X-Total fell while
/// they read it: later pages moved up, and a row may have been skipped): a sync step compares
/// it before and after reading a window, and reads the window again when it moved.
#[pg_extern(volatile, parallel_unsafe)]
fn cyberbiz_fdw_shifted_scans() -> i64 {
    SHIFTED_SCANS.get()
}

/// How many scans of this backend read a whole list and found fewer rows than its X-Total
/// said at both its first and its last page (a row left and another came while it read: the
/// total stayed, and a row was skipped): a sync step reads such a window again too.
#[pg_extern(volatile, parallel_unsafe)]
fn cyberbiz_fdw_short_scans() -> i64 {
    SHORT_SCANS.get()
}

/// Warns when the list's X-Total changed while this scan (one run of it: a rescan with new
/// values is a new list) read it, or when the whole list it read held fewer rows than its
/// X-Total; counts it when the total fell or rows are missing; then forgets the totals.
fn warn_if_shifted(st: &mut ScanState) {
    let listed = std::mem::take(&mut st.ended) && !st.unkeyed && whole_list(st);
    if let (Some(a), Some(b)) = (st.first_total.take(), st.last_total.take()) {
        let read = st.seen.len() as u64;
        // Rows left the list: later pages moved up, and a row may have been skipped (rows
        // added only repeat one, and repeats are dropped).
        if b < a {
            SHIFTED_SCANS.set(SHIFTED_SCANS.get() + 1);
        }
        // Fewer rows than the list held from start to end: one left and another came, and a
        // row was skipped though the total stayed (a row added after its page was read is not
        // one the list held at the start).
        let short = listed && read < a.min(b);
        if short {
            SHORT_SCANS.set(SHORT_SCANS.get() + 1);
        }
        if a != b {
            pgrx::warning!(
                "table \"{}\": the shop changed during the scan (X-Total went from {a} to {b}); rows added or removed meanwhile may be missing or repeated (repeats were dropped)",
                st.info.name
            );
        } else if short {
            pgrx::warning!("table \"{}\": the scan read {read} rows of the {b} the shop listed; rows moved between its pages while it read", st.info.name);
        }
    }
}

/// Whether this run's request is a list read whole (no LIMIT) of a table whose rows are the
/// list's objects (not a child table's rows, of which X-Total counts the parents).
fn whole_list(st: &ScanState) -> bool {
    let top = matches!(&st.info.source, TableSource::Resource(r) if r.parent.is_none());
    top && matches!(st.plan.as_ref().map(|p| &p.request), Some(RequestPlan::List { cap: None, .. }))
}

#[pg_guard]
extern "C-unwind" fn end_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    // SAFETY: Postgres passes the scan's node; fdw_state is null for EXPLAIN-only scans that
    // never began, else a ScanState.
    let st = unsafe {
        if (*node).fdw_state.is_null() {
            return;
        }
        state(node)
    };
    warn_if_shifted(st);
    st.pump = None;
    st.progress = None;
}

/// # Safety
/// `es` must be the ExplainState of the running EXPLAIN.
unsafe fn explain_text(label: &str, value: &str, es: *mut pg_sys::ExplainState) {
    let l = CString::new(label).unwrap_or_default();
    let v = CString::new(value).unwrap_or_default();
    // SAFETY: forwarded from the caller; both strings are NUL-terminated and copied.
    unsafe { pg_sys::ExplainPropertyText(l.as_ptr(), v.as_ptr(), es) };
}

/// # Safety
/// `es` must be the ExplainState of the running EXPLAIN.
unsafe fn explain_int(label: &str, unit: Option<&str>, value: u64, es: *mut pg_sys::ExplainState) {
    let l = CString::new(label).unwrap_or_default();
    let u = unit.map(|u| CString::new(u).unwrap_or_default());
    // SAFETY: forwarded from the caller; the strings are NUL-terminated and copied.
    unsafe { pg_sys::ExplainPropertyInteger(l.as_ptr(), u.as_ref().map(|u| u.as_ptr()).unwrap_or(std::ptr::null()), value as i64, es) };
}

/// The request EXPLAIN shows: the one made (ANALYZE), else planned from the constants known
/// now (plain EXPLAIN sends nothing).
fn explained_plan(st: &ScanState) -> Result<ScanPlan, FdwError> {
    if let Some(p) = &st.plan {
        return Ok(p.clone());
    }
    let known = |k: &KeyExpr| {
        // SAFETY: the expressions are the plan's own; no planner (root) is needed to read Consts.
        unsafe { const_values(std::ptr::null_mut(), k.expr, k.spec.is_array) }
    };
    let quals = st.key_exprs.iter().map(|k| Qual { column: k.spec.column.clone(), op: k.spec.op, values: known(k) }).collect();
    st.plan_for(quals)
}

/// EXPLAIN VERBOSE: which quals the request applies, which stay local, whether LIMIT went.
///
/// # Safety
/// `es` must be the ExplainState of the running EXPLAIN.
unsafe fn explain_verbose(st: &ScanState, planned: &Result<ScanPlan, FdwError>, es: *mut pg_sys::ExplainState) {
    let pushed: Vec<usize> = planned.as_ref().map(|p| p.pushed.clone()).unwrap_or_default();
    let show = |k: &KeyExpr| format!("{} {}{}", k.spec.column, k.spec.op.sql(), if k.spec.is_array { " ANY" } else { "" });
    let (sent, mut kept): (Vec<String>, Vec<String>) = (
        st.key_exprs.iter().enumerate().filter(|(i, _)| pushed.contains(i)).map(|(_, k)| show(k)).collect(),
        st.key_exprs.iter().enumerate().filter(|(i, _)| !pushed.contains(i)).map(|(_, k)| show(k)).collect(),
    );
    if st.local_only > 0 {
        kept.push(format!("{} other condition(s)", st.local_only));
    }
    let join = |v: Vec<String>| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    // SAFETY: forwarded from the caller.
    unsafe {
        explain_text("CYBERBIZ Pushed", &join(sent), es);
        explain_text("CYBERBIZ Local Only", &join(kept), es);
        if let Some(l) = st.limit {
            let applied = planned.as_ref().is_ok_and(|p| matches!(p.request, RequestPlan::List { cap: Some(_), .. }));
            explain_text("CYBERBIZ Limit", &format!("{l} rows{}", if applied { " (pushed)" } else { " (not pushed: some condition is checked locally)" }), es);
        }
    }
}

#[pg_guard]
extern "C-unwind" fn explain_foreign_scan(node: *mut pg_sys::ForeignScanState, es: *mut pg_sys::ExplainState) {
    // SAFETY: Postgres passes a scan begun by begin_foreign_scan and its ExplainState.
    unsafe {
        let st = state(node);
        let planned = explained_plan(st);
        let request = match &planned {
            Ok(p) => p.request.describe(),
            Err(e) => format!("none ({e})"),
        };
        explain_text("CYBERBIZ Request", &request, es);
        if (*es).verbose {
            explain_verbose(st, &planned, es);
        }
        if (*es).analyze {
            let s = &st.stats;
            explain_int("CYBERBIZ Requests", None, Stats::get(&s.requests), es);
            explain_int("CYBERBIZ Pages", None, Stats::get(&s.pages), es);
            explain_int("CYBERBIZ Retries", None, Stats::get(&s.retries), es);
            explain_int("CYBERBIZ Throttled (429)", None, Stats::get(&s.throttled), es);
            explain_int("CYBERBIZ Limiter Wait", Some("ms"), Stats::get(&s.limiter_wait_us) / 1000, es);
            explain_int("CYBERBIZ Bytes Read", Some("bytes"), Stats::get(&s.bytes), es);
        }
    }
}
