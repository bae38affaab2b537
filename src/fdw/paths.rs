//! Planning callbacks: row estimates and costs (GetForeignRelSize), the plain and parameterized
//! paths (GetForeignPaths), and the plan the executor gets (GetForeignPlan). What a scan
//! requests is decided by `plan::plan_scan`; this file only asks it and prices the answer.

use super::datum::zone_for;
use super::private::{self, QualSpec, ScanPrivate};
use super::quals::{const_values, key_columns, strip_relabel, QualExpr, ScanRel};
use super::table::{api_token, table_info, TableInfo};
use super::{attach_state, wait_for, OrRaise};
use crate::pace;
use crate::plan::{self, Limits, Op, Qual, Query, RequestPlan};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::CString;
use std::time::Duration;

/// Planner cost of one API request: at 5 requests/s a request is worth far more than any local
/// work, so the planner prefers plans that make fewer of them.
pub const REQUEST_COST: f64 = 1000.0;

pub fn install(routine: &mut pg_sys::FdwRoutine) {
    routine.GetForeignRelSize = Some(get_foreign_rel_size);
    routine.GetForeignPaths = Some(get_foreign_paths);
    routine.GetForeignPlan = Some(get_foreign_plan);
}

/// Planner state for one foreign relation, kept between the planning callbacks in
/// `RelOptInfo.fdw_private` and freed with the planner's memory context.
struct RelState {
    info: TableInfo,
    /// Rows, start-up and total cost of the unparameterized scan (planned once, in
    /// GetForeignRelSize; GetForeignPaths reuses it).
    estimate: (f64, f64, f64),
    /// Rows the query needs at most (LIMIT + OFFSET), when nothing else stands in between.
    limit: Option<u64>,
}

/// The query as the planner knows it before execution: quals with their constant values.
///
/// # Safety
/// `root` must be the planner of the quals' expressions.
unsafe fn planned_query(root: *mut pg_sys::PlannerInfo, quals: &[QualExpr], local_only: usize, limit: Option<u64>) -> Query {
    // SAFETY: forwarded from the caller.
    let quals = quals.iter().map(|q| Qual { column: q.column.clone(), op: q.op, values: unsafe { const_values(root, q.expr, q.is_array) } }).collect();
    Query { quals, local_only, limit }
}

/// X-Total of a list request, asked with `per_page=1` (server option `use_remote_estimate`),
/// remembered by the backend for a minute.
fn remote_total(info: &TableInfo, request: &RequestPlan) -> Option<f64> {
    use once_cell::sync::Lazy;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;
    static CACHE: Lazy<Mutex<HashMap<String, (f64, Instant)>>> = Lazy::new(|| Mutex::new(HashMap::new()));
    let key = format!("{}{}", info.server.api_url, total_path(request)?);
    if let Some((n, at)) = CACHE.lock().ok()?.get(&key) {
        if at.elapsed() < Duration::from_secs(60) {
            return Some(*n);
        }
    }
    let total = list_total(info, request).or_raise()? as f64;
    if let Ok(mut c) = CACHE.lock() {
        c.insert(key, (total, Instant::now()));
    }
    Some(total)
}

/// The path of the one-row page whose X-Total counts what a list request lists (None: not a
/// list, or a parameter unknown before execution).
fn total_path(request: &RequestPlan) -> Option<String> {
    let RequestPlan::List { path, params, .. } = request else { return None };
    if params.iter().any(|(_, v)| v == "?") {
        return None;
    }
    let mut params = params.clone();
    params.extend([("per_page".to_string(), "1".to_string()), ("page".to_string(), "1".to_string())]);
    Some(crate::plan::url_path(path, &params))
}

/// X-Total of a list request, asked now (one request from the token's budget, at a replica
/// source table's sync pace): None when `request` is not a list or the API sent no total.
pub(super) fn list_total(info: &TableInfo, request: &RequestPlan) -> Result<Option<u64>, crate::error::FdwError> {
    let Some(path) = total_path(request) else { return Ok(None) };
    let client = super::table::read_client(info, api_token(info))?;
    Ok(wait_for(client.get(&path), None)?.total)
}

/// Rows a plan returns without remote estimate: keys and lookups one per value, lists the base
/// narrowed by each pushed qual (equality lists a little per value, ranges by a third).
fn local_rows(plan: &plan::ScanPlan, q: &Query, base: f64) -> f64 {
    match &plan.request {
        RequestPlan::PerKey { keys, .. } => keys.as_ref().map(|k| k.len() as f64).unwrap_or(1.0),
        RequestPlan::Lookup { .. } => plan.pushed.iter().filter_map(|&i| q.quals[i].values.as_ref()).map(|v| v.len() as f64).next().unwrap_or(1.0),
        RequestPlan::Nothing => 1.0,
        RequestPlan::Whole { .. } => base,
        RequestPlan::List { cap, .. } => {
            let sel: f64 = plan
                .pushed
                .iter()
                .map(|&i| match (q.quals[i].op, &q.quals[i].values) {
                    (Op::Eq, Some(v)) => (0.2 * v.len() as f64).min(1.0),
                    (Op::Eq, None) => 0.2,
                    _ => 0.33,
                })
                .product();
            let r = (base * sel).max(1.0);
            cap.map(|c| r.min(c as f64)).unwrap_or(r)
        }
    }
}

/// The planner cost of one request at the server's rate.
fn request_cost(info: &TableInfo) -> f64 {
    REQUEST_COST * pace::SAFETY_MARGIN * pace::PLATFORM_REQUESTS_PER_SECOND / info.server.requests_per_second
}

/// Row estimate, start-up and total cost of a scan of `q`.
fn estimate(info: &TableInfo, q: &Query) -> (f64, f64, f64) {
    let zone = zone_for(&info.server.time_zone);
    let limits = Limits::for_server(&info.server, zone.as_ref());
    let base = info.rows.unwrap_or(match &info.source {
        crate::options::TableSource::Resource(r) => r.default_rows,
        crate::options::TableSource::Endpoint(_) => 100.0,
    });
    let (rows, requests) = match plan::plan_scan(&info.name, &info.source, q, &limits) {
        Err(_) => (base, 1.0),
        Ok(p) => match info.server.use_remote_estimate.then(|| remote_total(info, &p.request)).flatten() {
            Some(total) => {
                let total = total.max(1.0);
                let rows = match &p.request {
                    RequestPlan::List { cap: Some(c), .. } => total.min(*c as f64),
                    _ => total,
                };
                (rows, p.request.requests(total))
            }
            None => {
                let rows = local_rows(&p, q, base);
                let listed = if matches!(p.request, RequestPlan::List { .. }) { rows } else { base };
                (rows, p.request.requests(listed))
            }
        },
    };
    let per_request = request_cost(info);
    let startup = per_request.min(requests * per_request);
    let total = requests * per_request + rows * 0.01;
    (rows.max(1.0), startup, total.max(startup))
}

/// LIMIT + OFFSET when they apply directly to this scan: one relation, constant LIMIT, no
/// aggregate, grouping, DISTINCT, window, ORDER BY, set operation or locking in between.
///
/// # Safety
/// `root` must be the planner of the current query.
unsafe fn scan_limit(root: *mut pg_sys::PlannerInfo) -> Option<u64> {
    // SAFETY: the caller guarantees `root`; its parse tree is read only.
    let (count, offset) = unsafe {
        let parse = (*root).parse;
        if parse.is_null()
            || (*parse).commandType != pg_sys::CmdType::CMD_SELECT
            || (*parse).hasAggs
            || (*parse).hasWindowFuncs
            || (*parse).hasTargetSRFs
            || !(*parse).groupClause.is_null()
            || !(*parse).groupingSets.is_null()
            || !(*parse).distinctClause.is_null()
            || !(*parse).sortClause.is_null()
            || !(*parse).setOperations.is_null()
            || !(*parse).havingQual.is_null()
            || !(*parse).rowMarks.is_null()
            || (*parse).limitOption != pg_sys::LimitOption::LIMIT_OPTION_COUNT
            || pg_sys::bms_membership((*root).all_baserels) != pg_sys::BMS_Membership::BMS_SINGLETON
        {
            return None;
        }
        (const_int(root, (*parse).limitCount)??, const_int(root, (*parse).limitOffset)?.unwrap_or(0))
    };
    (count >= 0 && offset >= 0).then(|| (count + offset) as u64)
}

/// The value of a LIMIT/OFFSET expression: Some(None) when absent or NULL, None when not a
/// constant at plan time.
///
/// # Safety
/// `n` must be null or an expression of the query planned under `root`.
unsafe fn const_int(root: *mut pg_sys::PlannerInfo, n: *mut pg_sys::Node) -> Option<Option<i64>> {
    if n.is_null() {
        return Some(None);
    }
    // SAFETY: forwarded from the caller; the Const is read after its tag is checked.
    unsafe {
        let n = pg_sys::estimate_expression_value(root, n);
        if (*n).type_ != pg_sys::NodeTag::T_Const {
            return None;
        }
        let c = n as *mut pg_sys::Const;
        Some(if (*c).constisnull { None } else { Some((*c).constvalue.value() as i64) })
    }
}

/// Estimates the scan's rows and cost once, and keeps them with the table's facts for the
/// other planning callbacks.
#[pg_guard]
extern "C-unwind" fn get_foreign_rel_size(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, relid: pg_sys::Oid) {
    // SAFETY: Postgres passes its planner, the relation being planned and its table's OID; the
    // relation's range table entry is in the planner's array.
    unsafe {
        let rte = *(*root).simple_rte_array.add((*baserel).relid as usize);
        let info = table_info(relid, (*rte).checkAsUser);
        let limit = scan_limit(root);
        let rel = ScanRel { root, relid: (*baserel).relid, table: relid, source: &info.source };
        let (quals, local_only) = rel.extract((*baserel).baserestrictinfo);
        let estimate = estimate(&info, &planned_query(root, &quals, local_only, limit));
        (*baserel).rows = estimate.0;
        (*baserel).tuples = estimate.0;
        // Freed when the planner's memory context goes (the callback runs before its memory is).
        attach_state(&mut (*baserel).fdw_private, RelState { info, estimate, limit });
    }
}

/// # Safety
/// `baserel` must be a relation planned by [`get_foreign_rel_size`].
unsafe fn rel_state<'a>(baserel: *mut pg_sys::RelOptInfo) -> &'a RelState {
    // SAFETY: get_foreign_rel_size stored a RelState there, alive for the planner's context.
    unsafe { &*((*baserel).fdw_private as *const RelState) }
}

/// Matches equivalence-class members that are our key column (for parameterized paths).
#[pg_guard]
extern "C-unwind" fn ec_member_is_key(
    _root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    _ec: *mut pg_sys::EquivalenceClass,
    em: *mut pg_sys::EquivalenceMember,
    arg: *mut std::ffi::c_void,
) -> bool {
    // SAFETY: generate_implied_equalities_for_column passes its relation, a member, and the
    // attribute number get_foreign_paths gave it as `arg`.
    unsafe {
        let attno = *(arg as *const i16);
        let e = strip_relabel((*em).em_expr as *mut pg_sys::Node);
        !e.is_null()
            && (*e).type_ == pg_sys::NodeTag::T_Var
            && (*(e as *mut pg_sys::Var)).varno as pg_sys::Index == (*rel).relid
            && (*(e as *mut pg_sys::Var)).varattno == attno
    }
}

/// The plain path, plus one parameterized path per join clause on a key column: `key =
/// outer.col` becomes one GET per outer row, which beats a full list when the outer side is small.
#[pg_guard]
extern "C-unwind" fn get_foreign_paths(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, relid: pg_sys::Oid) {
    // SAFETY: Postgres passes its planner and the relation get_foreign_rel_size planned.
    unsafe {
        let st = rel_state(baserel);
        let (rows, startup, total) = st.estimate;
        let path = pg_sys::create_foreignscan_path(
            root,
            baserel,
            std::ptr::null_mut(),
            rows,
            startup,
            total,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        pg_sys::add_path(baserel, path as *mut pg_sys::Path);
        for key in key_columns(&st.info.source) {
            add_key_paths(root, baserel, relid, st, key);
        }
    }
}

/// Adds a parameterized path for every movable join clause `key = outer expression`.
///
/// # Safety
/// As [`get_foreign_paths`]: its planner, relation and state.
unsafe fn add_key_paths(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, relid: pg_sys::Oid, st: &RelState, key: &str) {
    let name = CString::new(key).unwrap_or_default();
    // SAFETY: forwarded from the caller; lists and bitmapsets are the planner's own.
    unsafe {
        let mut attno = pg_sys::get_attnum(relid, name.as_ptr());
        if attno <= 0 {
            return;
        }
        let arg = &mut attno as *mut i16 as *mut std::ffi::c_void;
        let implied = pg_sys::generate_implied_equalities_for_column(root, baserel, Some(ec_member_is_key), arg, (*baserel).lateral_referencers);
        let mut clauses: Vec<*mut pg_sys::RestrictInfo> = PgList::<pg_sys::RestrictInfo>::from_pg(implied).iter_ptr().collect();
        clauses.extend(PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).joininfo).iter_ptr());
        let rel = ScanRel { root, relid: (*baserel).relid, table: relid, source: &st.info.source };
        for ri in clauses {
            if !pg_sys::join_clause_is_movable_to(ri, baserel) {
                continue;
            }
            let mut one = PgList::<pg_sys::RestrictInfo>::new();
            one.push(ri);
            let (q, _) = rel.extract(one.as_ptr());
            if !q.iter().any(|q| q.column == key && q.op == Op::Eq) {
                continue;
            }
            let required_outer = pg_sys::bms_del_member(pg_sys::bms_copy((*ri).clause_relids), (*baserel).relid as i32);
            if pg_sys::bms_is_empty(required_outer) {
                continue;
            }
            let cost = request_cost(&st.info);
            let path = pg_sys::create_foreignscan_path(
                root,
                baserel,
                std::ptr::null_mut(),
                1.0,
                cost,
                cost,
                std::ptr::null_mut(),
                required_outer,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            pg_sys::add_path(baserel, path as *mut pg_sys::Path);
        }
    }
}

/// The ForeignScan: every qual stays a local recheck (pushdown may narrow a result, never
/// change it); the pushable ones travel in `fdw_exprs` (their values) and `fdw_private`.
#[pg_guard]
extern "C-unwind" fn get_foreign_plan(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    relid: pg_sys::Oid,
    _best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    // SAFETY: Postgres passes its planner, the relation get_foreign_rel_size planned and the
    // chosen path's clauses; expressions are copied into the plan's memory context.
    unsafe {
        let st = rel_state(baserel);
        let local = pg_sys::extract_actual_clauses(scan_clauses, false);
        let rel = ScanRel { root, relid: (*baserel).relid, table: relid, source: &st.info.source };
        let (quals, local_only) = rel.extract(scan_clauses);
        let mut exprs = PgList::<pg_sys::Expr>::new();
        for q in &quals {
            exprs.push(if q.expr.is_null() {
                pg_sys::makeNullConst(pg_sys::INT8OID, -1, pg_sys::InvalidOid) as *mut pg_sys::Expr
            } else {
                pg_sys::copyObjectImpl(q.expr as *const std::ffi::c_void) as *mut pg_sys::Expr
            });
        }
        let specs = quals.iter().map(|q| QualSpec { column: q.column.clone(), op: q.op, is_array: q.is_array }).collect();
        let private = private::encode(&ScanPrivate { needed: needed_columns(baserel), limit: st.limit, local_only, quals: specs });
        pg_sys::make_foreignscan(tlist, local, (*baserel).relid, exprs.into_pg(), private, std::ptr::null_mut(), std::ptr::null_mut(), outer_plan)
    }
}

/// The columns the query reads (target list and quals), as `3,5,7`, or `*` for all (a
/// whole-row reference). Only these are decoded.
///
/// # Safety
/// `baserel` must be a base relation being planned.
unsafe fn needed_columns(baserel: *mut pg_sys::RelOptInfo) -> String {
    let mut attrs: *mut pg_sys::Bitmapset = std::ptr::null_mut();
    // SAFETY: forwarded from the caller; pull_varattnos adds to a bitmapset of our own.
    unsafe {
        let relid = (*baserel).relid;
        pg_sys::pull_varattnos((*(*baserel).reltarget).exprs as *mut pg_sys::Node, relid, &mut attrs);
        for ri in PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).baserestrictinfo).iter_ptr() {
            pg_sys::pull_varattnos((*ri).clause as *mut pg_sys::Node, relid, &mut attrs);
        }
    }
    let mut out = Vec::new();
    let mut x = -1;
    loop {
        // SAFETY: iterates the bitmapset built above.
        x = unsafe { pg_sys::bms_next_member(attrs, x) };
        if x < 0 {
            break;
        }
        let attno = x + pg_sys::FirstLowInvalidHeapAttributeNumber;
        if attno == 0 {
            return "*".into();
        }
        if attno > 0 {
            out.push(attno.to_string());
        }
    }
    out.join(",")
}
