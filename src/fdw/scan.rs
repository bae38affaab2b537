//! Scan callbacks: size estimates, paths, plans, and the executor side that pulls pages from the
//! pump, decodes rows and fills slots. The decisions are made by `plan`, `pump` and `decode`.

use super::{attach_state, cstr, def_options, interrupt_pending, node_string, raise, string_node, wait, OrRaise};
use crate::catalog;
use crate::decode::{self, Cell, ColumnSpec, Row, Source, Target, Zone};
use crate::error::FdwError;
use crate::http::{Client, Settings, Stats};
use crate::options::{self, ServerOptions, TableSource};
use crate::limiter;
use crate::plan::{self, Op, Qual, ScanPlan, Value};
use crate::pump::{self, Pump};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::collections::{HashSet, VecDeque};
use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

/// Planner cost of one API request: at 5 requests/s a request is worth far more than any local
/// work, so the planner prefers plans that make fewer of them.
pub const REQUEST_COST: f64 = 1000.0;
/// Rows assumed for a large list (orders, customers, ...) whose size nobody told us: the
/// planner then prefers per-key GETs for joins from small local tables.
pub const DEFAULT_ROWS: f64 = 10_000.0;

pub fn install(routine: &mut pg_sys::FdwRoutine) {
    routine.GetForeignRelSize = Some(get_foreign_rel_size);
    routine.GetForeignPaths = Some(get_foreign_paths);
    routine.GetForeignPlan = Some(get_foreign_plan);
    routine.BeginForeignScan = Some(begin_foreign_scan);
    routine.IterateForeignScan = Some(iterate_foreign_scan);
    routine.ReScanForeignScan = Some(rescan_foreign_scan);
    routine.EndForeignScan = Some(end_foreign_scan);
    routine.ExplainForeignScan = Some(explain_foreign_scan);
}

/// The foreign table's catalog facts: name, source, server options.
pub(crate) struct TableInfo {
    pub name: String,
    pub source: TableSource,
    pub rows: Option<f64>,
    pub server: ServerOptions,
    pub server_name: String,
    pub server_oid: pg_sys::Oid,
}

pub(crate) unsafe fn table_info(relid: pg_sys::Oid) -> TableInfo {
    let ft = pg_sys::GetForeignTable(relid);
    let server = pg_sys::GetForeignServer((*ft).serverid);
    let table = options::parse_table(&def_options((*ft).options)).or_raise();
    let server_opts = options::parse_server(&def_options((*server).options), &|_| true).or_raise();
    TableInfo {
        name: cstr(pg_sys::get_rel_name(relid)),
        source: table.source,
        rows: table.rows,
        server: server_opts,
        server_name: cstr((*server).servername),
        server_oid: (*ft).serverid,
    }
}

/// The current user's API token for `server`.
pub(crate) unsafe fn api_token(info: &TableInfo) -> String {
    let um = pg_sys::GetUserMapping(pg_sys::GetUserId(), info.server_oid);
    match options::parse_user_mapping(&def_options((*um).options)) {
        Ok(u) => u.api_token,
        Err(_) => raise(FdwError::NoUserMapping { server: info.server_name.clone() }),
    }
}

/// A WHERE clause the API may apply: `col op expr` or `col = ANY(expr)`; `expr` is computable
/// before the scan (constants, parameters, stable functions, outer columns of a nested loop).
struct QualExpr {
    column: String,
    op: Op,
    expr: *mut pg_sys::Expr,
    is_array: bool,
}

/// Columns whose quals can become requests for this table.
fn pushable(source: &TableSource) -> Vec<&'static str> {
    match source {
        TableSource::Endpoint(_) => vec![],
        TableSource::Resource(r) => r.pushdown.iter().map(|p| p.column()).chain(r.key_column()).collect(),
    }
}

/// Columns a join can turn into per-key GETs (parameterized paths).
fn key_columns(source: &TableSource) -> Vec<&'static str> {
    match source {
        TableSource::Resource(r) => r.key_column().into_iter().collect(),
        TableSource::Endpoint(_) => vec![],
    }
}

unsafe fn strip_relabel(mut n: *mut pg_sys::Node) -> *mut pg_sys::Node {
    while !n.is_null() && (*n).type_ == pg_sys::NodeTag::T_RelabelType {
        n = (*(n as *mut pg_sys::RelabelType)).arg as *mut pg_sys::Node;
    }
    n
}

/// If `n` is a column of the scanned relation whose JSON path is the catalog's (so the API's
/// parameter means the same thing), its name.
unsafe fn our_column(n: *mut pg_sys::Node, relid: pg_sys::Index, table: pg_sys::Oid, source: &TableSource) -> Option<String> {
    let n = strip_relabel(n);
    if n.is_null() || (*n).type_ != pg_sys::NodeTag::T_Var {
        return None;
    }
    let v = n as *mut pg_sys::Var;
    if (*v).varno as pg_sys::Index != relid || (*v).varlevelsup != 0 || (*v).varattno <= 0 {
        return None;
    }
    let name = cstr(pg_sys::get_attname(table, (*v).varattno, false));
    let TableSource::Resource(r) = source else { return None };
    let catalog_col = r.column(&name)?;
    let opts = def_options(pg_sys::GetForeignColumnOptions(table, (*v).varattno));
    let path = opts.iter().find(|(k, _)| k == "json_path").map(|(_, v)| v.as_str()).unwrap_or(catalog_col.json_path());
    (path == catalog_col.json_path()).then_some(name)
}

/// Whether `n` can be computed before the scan: no column of this relation, nothing volatile.
unsafe fn is_value(root: *mut pg_sys::PlannerInfo, n: *mut pg_sys::Node, relid: pg_sys::Index) -> bool {
    !n.is_null()
        && !pg_sys::bms_is_member(relid as i32, pg_sys::pull_varnos(root, n))
        && !pg_sys::contain_volatile_functions(n)
        && !pg_sys::contain_agg_clause(n)
}

/// Types whose values the planner understands.
fn value_type(t: pg_sys::Oid) -> bool {
    [pg_sys::INT8OID, pg_sys::INT4OID, pg_sys::INT2OID, pg_sys::TEXTOID, pg_sys::VARCHAROID, pg_sys::BPCHAROID, pg_sys::TIMESTAMPTZOID].contains(&t)
}

fn op_of(name: &str, commuted: bool) -> Option<Op> {
    Some(match (name, commuted) {
        ("=", _) => Op::Eq,
        ("?", false) => Op::Has,
        ("<", false) | (">", true) => Op::Lt,
        ("<=", false) | (">=", true) => Op::Le,
        (">", false) | ("<", true) => Op::Gt,
        (">=", false) | ("<=", true) => Op::Ge,
        _ => return None,
    })
}

/// Splits `clauses` (RestrictInfos) into quals the API may apply, and a count of the rest
/// (which stay local only, and keep LIMIT from being pushed).
unsafe fn extract_quals(root: *mut pg_sys::PlannerInfo, clauses: *mut pg_sys::List, relid: pg_sys::Index, table: pg_sys::Oid, source: &TableSource) -> (Vec<QualExpr>, usize) {
    let cols = pushable(source);
    let mut out = Vec::new();
    let mut other = 0;
    for ri in PgList::<pg_sys::RestrictInfo>::from_pg(clauses).iter_ptr() {
        let clause = (*ri).clause as *mut pg_sys::Node;
        let found = match (*clause).type_ {
            pg_sys::NodeTag::T_NullTest => {
                let nt = clause as *mut pg_sys::NullTest;
                our_column((*nt).arg as *mut pg_sys::Node, relid, table, source).filter(|c| cols.contains(&c.as_str())).map(|column| {
                    let op = if (*nt).nulltesttype == pg_sys::NullTestType::IS_NULL { Op::IsNull } else { Op::IsNotNull };
                    // No value: an empty constant array stands in for the expression.
                    QualExpr { column, op, expr: std::ptr::null_mut(), is_array: false }
                })
            }
            pg_sys::NodeTag::T_OpExpr if cstr(pg_sys::get_opname((*(clause as *mut pg_sys::OpExpr)).opno)) == "?|" => {
                let op = clause as *mut pg_sys::OpExpr;
                let args = PgList::<pg_sys::Node>::from_pg((*op).args);
                match (args.len(), args.get_ptr(0), args.get_ptr(1)) {
                    (2, Some(l), Some(r)) => our_column(l, relid, table, source).and_then(|column| {
                        (cols.contains(&column.as_str()) && is_value(root, r, relid)).then_some(QualExpr { column, op: Op::Has, expr: r as *mut pg_sys::Expr, is_array: true })
                    }),
                    _ => None,
                }
            }
            pg_sys::NodeTag::T_OpExpr => {
                let op = clause as *mut pg_sys::OpExpr;
                let args = PgList::<pg_sys::Node>::from_pg((*op).args);
                let name = cstr(pg_sys::get_opname((*op).opno));
                match (args.len(), args.get_ptr(0), args.get_ptr(1)) {
                    (2, Some(l), Some(r)) => [(l, r, false), (r, l, true)].into_iter().find_map(|(col, val, commuted)| {
                        let column = our_column(col, relid, table, source)?;
                        let op = op_of(&name, commuted)?;
                        (cols.contains(&column.as_str()) && is_value(root, val, relid) && value_type(pg_sys::exprType(val)))
                            .then_some(QualExpr { column, op, expr: val as *mut pg_sys::Expr, is_array: false })
                    }),
                    _ => None,
                }
            }
            pg_sys::NodeTag::T_ScalarArrayOpExpr => {
                let op = clause as *mut pg_sys::ScalarArrayOpExpr;
                let args = PgList::<pg_sys::Node>::from_pg((*op).args);
                match (args.len(), args.get_ptr(0), args.get_ptr(1)) {
                    (2, Some(l), Some(r)) if (*op).useOr && cstr(pg_sys::get_opname((*op).opno)) == "=" => our_column(l, relid, table, source).and_then(|column| {
                        (cols.contains(&column.as_str()) && is_value(root, r, relid) && value_type(pg_sys::get_element_type(pg_sys::exprType(r))))
                            .then_some(QualExpr { column, op: Op::Eq, expr: r as *mut pg_sys::Expr, is_array: true })
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        match found {
            Some(q) => out.push(q),
            None => other += 1,
        }
    }
    (out, other)
}

/// Plan-time values of a qual's expression: constants (after folding), else None. A qual
/// without expression (IS NULL) has no values.
unsafe fn const_values(root: *mut pg_sys::PlannerInfo, expr: *mut pg_sys::Expr, is_array: bool) -> Option<Vec<Value>> {
    if expr.is_null() {
        return Some(vec![]);
    }
    let folded = if root.is_null() { expr as *mut pg_sys::Node } else { pg_sys::estimate_expression_value(root, expr as *mut pg_sys::Node) };
    let n = strip_relabel(folded);
    if (*n).type_ != pg_sys::NodeTag::T_Const {
        return None;
    }
    let c = n as *mut pg_sys::Const;
    if (*c).constisnull {
        return Some(vec![]);
    }
    Some(datum_values((*c).constvalue, (*c).consttype, is_array))
}

/// Values of a datum (a scalar, or an array when `is_array`).
unsafe fn datum_values(d: pg_sys::Datum, typ: pg_sys::Oid, is_array: bool) -> Vec<Value> {
    if !is_array {
        return value_of(d, typ).into_iter().collect();
    }
    let arr = pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as *mut pg_sys::ArrayType;
    let elem = (*arr).elemtype;
    let (mut typlen, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
    pg_sys::get_typlenbyvalalign(elem, &mut typlen, &mut byval, &mut align);
    let mut values: *mut pg_sys::Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut n: i32 = 0;
    pg_sys::deconstruct_array(arr, elem, typlen as i32, byval, align, &mut values, &mut nulls, &mut n);
    (0..n as usize).filter(|i| !*nulls.add(*i)).filter_map(|i| value_of(*values.add(i), elem)).collect()
}

/// Microseconds from 1970 to Postgres's 2000 epoch.
const PG_EPOCH_US: i64 = 946_684_800 * 1_000_000;

unsafe fn value_of(d: pg_sys::Datum, typ: pg_sys::Oid) -> Option<Value> {
    Some(match typ {
        t if t == pg_sys::INT8OID => Value::Int(d.value() as i64),
        t if t == pg_sys::INT4OID => Value::Int(d.value() as i32 as i64),
        t if t == pg_sys::INT2OID => Value::Int(d.value() as i16 as i64),
        t if t == pg_sys::TIMESTAMPTZOID => Value::Time(d.value() as i64 + PG_EPOCH_US),
        t if t == pg_sys::TEXTOID || t == pg_sys::VARCHAROID || t == pg_sys::BPCHAROID => {
            let p = pg_sys::text_to_cstring(d.cast_mut_ptr());
            let v = cstr(p);
            Value::Text(if t == pg_sys::BPCHAROID { v.trim_end().to_string() } else { v })
        }
        _ => return None,
    })
}

/// What the planner knows before execution: quals with constant values, and "other" quals.
fn plan_quals(quals: &[(String, Op, Option<Vec<Value>>)], other: usize) -> Vec<Qual> {
    let mut v: Vec<Qual> = quals.iter().map(|(c, op, vals)| Qual { column: c.clone(), op: *op, values: vals.clone() }).collect();
    v.extend((0..other).map(|_| Qual { column: String::new(), op: Op::Eq, values: None }));
    v
}

/// Base row count of a list: the table's `rows` option, else a default by kind of resource.
fn base_rows(info: &TableInfo) -> f64 {
    info.rows.unwrap_or(match &info.source {
        TableSource::Resource(r) if matches!(r.access, catalog::Access::Whole { .. }) => 10.0,
        TableSource::Resource(r) if matches!(r.name, "orders" | "customers" | "order_line_items" | "product_variants" | "products" | "affiliate_vendor_orders") => DEFAULT_ROWS,
        _ => 100.0,
    })
}

/// X-Total of a list request, asked with `per_page=1` (server option `use_remote_estimate`),
/// remembered by the backend for a minute.
unsafe fn remote_total(info: &TableInfo, request: &plan::RequestPlan) -> Option<f64> {
    use once_cell::sync::Lazy;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;
    static CACHE: Lazy<Mutex<HashMap<String, (f64, Instant)>>> = Lazy::new(|| Mutex::new(HashMap::new()));
    let plan::RequestPlan::List { path, params, .. } = request else { return None };
    if params.iter().any(|(_, v)| v == "?") {
        return None;
    }
    let query: String = params.iter().map(|(k, v)| format!("{k}={}&", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())).collect();
    let path = format!("{path}?{query}per_page=1&page=1");
    let key = format!("{}{path}", info.server.api_url);
    if let Some((n, at)) = CACHE.lock().ok()?.get(&key) {
        if at.elapsed() < Duration::from_secs(60) {
            return Some(*n);
        }
    }
    let client = Client::new(Settings::for_server(&info.server), api_token(info), info.name.clone(), None).or_raise();
    let reply = wait(|| crate::http::block_on(client.get(&path), &interrupt_pending)).or_raise();
    let total = reply.total? as f64;
    if let Ok(mut c) = CACHE.lock() {
        c.insert(key, (total, Instant::now()));
    }
    Some(total)
}

/// Row estimate, start-up and total cost of a scan planned from `quals`.
unsafe fn estimate(info: &TableInfo, quals: &[Qual], limit: Option<u64>) -> (f64, f64, f64) {
    let zone = decode::TAIPEI;
    let base = base_rows(info);
    let (rows, requests) = match plan::plan_scan(&info.name, &info.source, quals, limit, info.server.page_size, info.server.max_key_lookups, &zone) {
        Err(_) => (base, 1.0),
        Ok(p) => match info.server.use_remote_estimate.then(|| remote_total(info, &p.request)).flatten() {
            Some(total) => {
                let total = total.max(1.0);
                let rows = match &p.request {
                    plan::RequestPlan::List { cap: Some(c), .. } => total.min(*c as f64),
                    _ => total,
                };
                (rows, p.request.requests(total))
            }
            None => {
                let rows = match &p.request {
                    plan::RequestPlan::PerKey { keys, .. } => keys.as_ref().map(|k| k.len() as f64).unwrap_or(1.0),
                    plan::RequestPlan::Lookup { .. } => p.pushed.iter().filter_map(|&i| quals[i].values.as_ref()).map(|v| v.len() as f64).next().unwrap_or(1.0),
                    plan::RequestPlan::Nothing => 1.0,
                    plan::RequestPlan::Whole { .. } => base,
                    plan::RequestPlan::List { cap, .. } => {
                        // Each pushed qual narrows: equality lists a little per value, ranges by a third.
                        let mut sel = 1.0;
                        for &i in &p.pushed {
                            sel *= match (quals[i].op, &quals[i].values) {
                                (Op::Eq, Some(v)) => (0.2 * v.len() as f64).min(1.0),
                                (Op::Eq, None) => 0.2,
                                _ => 0.33,
                            };
                        }
                        let r = (base * sel).max(1.0);
                        cap.map(|c| r.min(c as f64)).unwrap_or(r)
                    }
                };
                let listed = if matches!(p.request, plan::RequestPlan::List { .. }) { rows } else { base };
                (rows, p.request.requests(listed))
            }
        },
    };
    let per_request = REQUEST_COST * limiter::SAFETY_MARGIN * 5.0 / info.server.requests_per_second;
    let startup = per_request.min(requests * per_request);
    let total = requests * per_request + rows * 0.01;
    (rows.max(1.0), startup, total.max(startup))
}

/// Planner state for one foreign relation, kept between the planning callbacks.
struct RelState {
    info: TableInfo,
    /// Rows, start-up and total cost of the unparameterized scan (planned once, in
    /// GetForeignRelSize; GetForeignPaths reuses it).
    estimate: (f64, f64, f64),
    /// Rows the query needs at most (LIMIT + OFFSET), when nothing else stands in between.
    limit: Option<u64>,
}

/// LIMIT + OFFSET when they apply directly to this scan: one relation, constant LIMIT, no
/// aggregate, grouping, DISTINCT, window, ORDER BY, set operation or locking in between.
unsafe fn scan_limit(root: *mut pg_sys::PlannerInfo) -> Option<u64> {
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
    let konst = |n: *mut pg_sys::Node| -> Option<Option<i64>> {
        if n.is_null() {
            return Some(None);
        }
        let n = pg_sys::estimate_expression_value(root, n);
        if (*n).type_ != pg_sys::NodeTag::T_Const {
            return None;
        }
        let c = n as *mut pg_sys::Const;
        Some(if (*c).constisnull { None } else { Some((*c).constvalue.value() as i64) })
    };
    let count = konst((*parse).limitCount)??;
    let offset = konst((*parse).limitOffset)?.unwrap_or(0);
    (count >= 0 && offset >= 0).then(|| (count + offset) as u64)
}

#[pg_guard]
unsafe extern "C-unwind" fn get_foreign_rel_size(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, relid: pg_sys::Oid) {
    let info = table_info(relid);
    let limit = scan_limit(root);
    let (quals, other) = extract_quals(root, (*baserel).baserestrictinfo, (*baserel).relid, relid, &info.source);
    let known: Vec<_> = quals.iter().map(|q| (q.column.clone(), q.op, const_values(root, q.expr, q.is_array))).collect();
    let estimate = estimate(&info, &plan_quals(&known, other), limit);
    (*baserel).rows = estimate.0;
    (*baserel).tuples = estimate.0;
    (*baserel).fdw_private = Box::into_raw(Box::new(RelState { info, estimate, limit })) as *mut std::ffi::c_void;
}

unsafe fn rel_state<'a>(baserel: *mut pg_sys::RelOptInfo) -> &'a RelState {
    &*((*baserel).fdw_private as *const RelState)
}

/// Matches equivalence-class members that are our key column (for parameterized paths).
unsafe extern "C-unwind" fn ec_member_is_key(
    _root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    _ec: *mut pg_sys::EquivalenceClass,
    em: *mut pg_sys::EquivalenceMember,
    arg: *mut std::ffi::c_void,
) -> bool {
    let attno = *(arg as *const i16);
    let e = strip_relabel((*em).em_expr as *mut pg_sys::Node);
    !e.is_null() && (*e).type_ == pg_sys::NodeTag::T_Var && (*(e as *mut pg_sys::Var)).varno as pg_sys::Index == (*rel).relid && (*(e as *mut pg_sys::Var)).varattno == attno
}

#[pg_guard]
unsafe extern "C-unwind" fn get_foreign_paths(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, relid: pg_sys::Oid) {
    let st = rel_state(baserel);
    let (rows, startup, total) = st.estimate;
    let path = pg_sys::create_foreignscan_path(root, baserel, std::ptr::null_mut(), rows, startup, total, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    pg_sys::add_path(baserel, path as *mut pg_sys::Path);

    // Parameterized paths: `key = outer.col` from a join becomes one GET per outer row, which
    // beats a full list when the outer side is small.
    for key in key_columns(&st.info.source) {
        let name = CString::new(key).unwrap_or_default();
        let attno = pg_sys::get_attnum(relid, name.as_ptr());
        if attno <= 0 {
            continue;
        }
        let mut clauses: Vec<*mut pg_sys::RestrictInfo> = Vec::new();
        let mut arg = attno;
        let implied = pg_sys::generate_implied_equalities_for_column(root, baserel, Some(ec_member_is_key), &mut arg as *mut i16 as *mut std::ffi::c_void, (*baserel).lateral_referencers);
        clauses.extend(PgList::<pg_sys::RestrictInfo>::from_pg(implied).iter_ptr());
        clauses.extend(PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).joininfo).iter_ptr());
        for ri in clauses {
            if !pg_sys::join_clause_is_movable_to(ri, baserel) {
                continue;
            }
            let mut one = PgList::<pg_sys::RestrictInfo>::new();
            one.push(ri);
            let (q, _) = extract_quals(root, one.as_ptr(), (*baserel).relid, relid, &st.info.source);
            if !q.iter().any(|q| q.column == key && q.op == Op::Eq) {
                continue;
            }
            let required_outer = pg_sys::bms_del_member(pg_sys::bms_copy((*ri).clause_relids), (*baserel).relid as i32);
            if pg_sys::bms_is_empty(required_outer) {
                continue;
            }
            let per_request = REQUEST_COST * limiter::SAFETY_MARGIN * 5.0 / st.info.server.requests_per_second;
            let path = pg_sys::create_foreignscan_path(root, baserel, std::ptr::null_mut(), 1.0, per_request, per_request, std::ptr::null_mut(), required_outer, std::ptr::null_mut(), std::ptr::null_mut());
            pg_sys::add_path(baserel, path as *mut pg_sys::Path);
        }
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Has => "?",
        Op::IsNull => "IS NULL",
        Op::IsNotNull => "IS NOT NULL",
        Op::Eq => "=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn get_foreign_plan(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    relid: pg_sys::Oid,
    _best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    let st = rel_state(baserel);
    // Every qual stays a local recheck: pushdown may narrow a result, never change it.
    let local = pg_sys::extract_actual_clauses(scan_clauses, false);
    let (quals, other) = extract_quals(root, scan_clauses, (*baserel).relid, relid, &st.info.source);
    let mut exprs = PgList::<pg_sys::Expr>::new();
    let mut private = PgList::<pg_sys::Node>::new();
    // fdw_private: needed columns, LIMIT rows, count of local-only quals, then per qual:
    // column, operator, "any"/"one" (fdw_exprs holds the value expressions, in order).
    private.push(string_node(&needed_columns(baserel)));
    private.push(string_node(&st.limit.map(|l| l.to_string()).unwrap_or_default()));
    private.push(string_node(&other.to_string()));
    for q in &quals {
        let e = if q.expr.is_null() {
            pg_sys::makeNullConst(pg_sys::INT8OID, -1, pg_sys::InvalidOid) as *mut pg_sys::Expr
        } else {
            pg_sys::copyObjectImpl(q.expr as *const std::ffi::c_void) as *mut pg_sys::Expr
        };
        exprs.push(e);
        private.push(string_node(&q.column));
        private.push(string_node(op_name(q.op)));
        private.push(string_node(if q.is_array { "any" } else { "one" }));
    }
    pg_sys::make_foreignscan(tlist, local, (*baserel).relid, exprs.into_pg(), private.into_pg(), std::ptr::null_mut(), std::ptr::null_mut(), outer_plan)
}

/// The columns the query reads (target list and quals), as `3,5,7`, or `*` for all (a
/// whole-row reference). Only these are decoded.
unsafe fn needed_columns(baserel: *mut pg_sys::RelOptInfo) -> String {
    let relid = (*baserel).relid;
    let mut attrs: *mut pg_sys::Bitmapset = std::ptr::null_mut();
    pg_sys::pull_varattnos((*(*baserel).reltarget).exprs as *mut pg_sys::Node, relid, &mut attrs);
    for ri in PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).baserestrictinfo).iter_ptr() {
        pg_sys::pull_varattnos((*ri).clause as *mut pg_sys::Node, relid, &mut attrs);
    }
    let mut out = Vec::new();
    let mut x = -1;
    loop {
        x = pg_sys::bms_next_member(attrs, x);
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

/// A Postgres column as the decoder and the slot filler see it.
pub(crate) struct PgColumn {
    pub typoid: pg_sys::Oid,
    pub typmod: i32,
    pub input: pg_sys::FmgrInfo,
    pub ioparam: pg_sys::Oid,
    pub dropped: bool,
}

/// A qual of the plan whose value the executor computes, and its executor state.
struct KeyExpr {
    column: String,
    op: Op,
    expr: *mut pg_sys::Expr,
    state: *mut pg_sys::ExprState,
    is_array: bool,
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
    other_quals: usize,
    limit: Option<u64>,
    plan: Option<ScanPlan>,
    pump: Option<Pump>,
    rows: VecDeque<Row>,
    seen: HashSet<i64>,
    cells: Vec<Cell>,
    stats: Arc<Stats>,
    first_total: Option<u64>,
    last_total: Option<u64>,
    econtext: *mut pg_sys::ExprContext,
}

/// A zone with daylight-saving rules, answered by Postgres's own zone database.
struct PgZone(*mut pg_sys::pg_tz);

impl Zone for PgZone {
    fn offset_at_local(&self, local_secs: i64) -> i64 {
        let days = local_secs.div_euclid(86400);
        let tod = local_secs.rem_euclid(86400);
        let (y, m, d) = crate::decode::civil_from_days(days);
        // SAFETY: DetermineTimeZoneOffset reads the broken-down time and the zone; main thread.
        unsafe {
            let mut tm: pg_sys::pg_tm = std::mem::zeroed();
            tm.tm_year = y as i32;
            tm.tm_mon = m as i32;
            tm.tm_mday = d as i32;
            tm.tm_hour = (tod / 3600) as i32;
            tm.tm_min = (tod % 3600 / 60) as i32;
            tm.tm_sec = (tod % 60) as i32;
            // Postgres returns seconds west of UTC.
            -(pg_sys::DetermineTimeZoneOffset(&mut tm, self.0) as i64)
        }
    }
}


pub(crate) unsafe fn zone_for(name: &str) -> Box<dyn Zone> {
    if name == "Asia/Taipei" {
        return Box::new(decode::TAIPEI);
    }
    let c = CString::new(name).unwrap_or_default();
    let tz = pg_sys::pg_tzset(c.as_ptr());
    if tz.is_null() {
        return Box::new(decode::TAIPEI);
    }
    Box::new(PgZone(tz))
}

fn target_of(t: pg_sys::Oid) -> Target {
    match t {
        t if t == pg_sys::INT2OID => Target::Int2,
        t if t == pg_sys::INT4OID => Target::Int4,
        t if t == pg_sys::INT8OID => Target::Int8,
        t if t == pg_sys::NUMERICOID => Target::Numeric,
        t if t == pg_sys::FLOAT4OID => Target::Float4,
        t if t == pg_sys::FLOAT8OID => Target::Float8,
        t if t == pg_sys::BOOLOID => Target::Bool,
        t if t == pg_sys::TIMESTAMPTZOID => Target::TimestampTz,
        t if t == pg_sys::TIMESTAMPOID => Target::Timestamp,
        t if t == pg_sys::DATEOID => Target::Date,
        t if t == pg_sys::JSONBOID => Target::Jsonb,
        t if t == pg_sys::JSONOID => Target::Json,
        _ => Target::Text,
    }
}

/// Where each column of the table reads from: `json_path` option, else the catalog's path for
/// a column of that name, else the JSON key of the column's name; `raw` is the whole object.
pub(crate) fn source_for(name: &str, json_path: Option<&str>, source: &TableSource) -> Source {
    if let Some(p) = json_path {
        return Source::parse(p);
    }
    if name == "raw" {
        return Source::Raw;
    }
    if let TableSource::Resource(r) = source {
        if let Some(c) = r.column(name) {
            return Source::parse(c.json_path());
        }
    }
    Source::Own(vec![name.to_string()])
}

pub(crate) unsafe fn build_columns(rel: pg_sys::Relation, info: &TableInfo) -> (Vec<ColumnSpec>, Vec<PgColumn>) {
    let tupdesc = (*rel).rd_att;
    let natts = (*tupdesc).natts as usize;
    let attrs = (*tupdesc).attrs.as_slice(natts);
    let mut specs = Vec::with_capacity(natts);
    let mut cols = Vec::with_capacity(natts);
    for (i, a) in attrs.iter().enumerate() {
        let name = cstr(a.attname.data.as_ptr());
        let opts = def_options(pg_sys::GetForeignColumnOptions((*rel).rd_id, (i + 1) as i16));
        let json_path = opts.iter().find(|(k, _)| k == "json_path").map(|(_, v)| v.as_str());
        specs.push(ColumnSpec { name: name.clone(), target: target_of(a.atttypid), source: source_for(&name, json_path, &info.source) });
        let (mut func, mut ioparam) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
        let mut input: pg_sys::FmgrInfo = std::mem::zeroed();
        if !a.attisdropped {
            pg_sys::getTypeInputInfo(a.atttypid, &mut func, &mut ioparam);
            pg_sys::fmgr_info(func, &mut input);
        }
        cols.push(PgColumn { typoid: a.atttypid, typmod: a.atttypmod, input, ioparam, dropped: a.attisdropped });
    }
    (specs, cols)
}

unsafe fn input(col: &mut PgColumn, text: &str) -> pg_sys::Datum {
    let c = CString::new(text.replace('\0', "")).unwrap_or_default();
    pg_sys::InputFunctionCall(&mut col.input, c.as_ptr() as *mut std::ffi::c_char, col.ioparam, col.typmod)
}

/// Turns a decoded cell into a Datum of the column's type.
pub(crate) unsafe fn to_datum(cell: &Cell, col: &mut PgColumn) -> Option<pg_sys::Datum> {
    let t = col.typoid;
    Some(match cell {
        Cell::Null => return None,
        Cell::Int(n) if t == pg_sys::INT8OID => pg_sys::Datum::from(*n),
        Cell::Int(n) if t == pg_sys::INT4OID => pg_sys::Datum::from(*n as i32),
        Cell::Int(n) if t == pg_sys::INT2OID => pg_sys::Datum::from(*n as i16),
        Cell::Int(n) => input(col, &n.to_string()),
        Cell::Float(f) if t == pg_sys::FLOAT8OID => f.into_datum()?,
        Cell::Float(f) if t == pg_sys::FLOAT4OID => (*f as f32).into_datum()?,
        Cell::Float(f) => input(col, &f.to_string()),
        Cell::Numeric(s) => input(col, s),
        Cell::Text(s) if t == pg_sys::TEXTOID => pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(s.as_ptr() as *const std::ffi::c_char, s.len() as i32)),
        Cell::Text(s) => input(col, s),
        Cell::Bool(b) if t == pg_sys::BOOLOID => pg_sys::Datum::from(*b),
        Cell::Bool(b) => input(col, if *b { "true" } else { "false" }),
        Cell::Timestamp(us) => pg_sys::Datum::from(*us),
        Cell::Date(d) => pg_sys::Datum::from(*d),
        Cell::Json(v) if t == pg_sys::TEXTOID => {
            let s = v.to_string();
            pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(s.as_ptr() as *const std::ffi::c_char, s.len() as i32))
        }
        Cell::Json(v) => input(col, &v.to_string()),
    })
}

/// Decodes `row` into `slot` (scans and RETURNING alike); a value that does not fit its column
/// raises an ERROR naming table, column, row id and value.
pub(crate) unsafe fn store_row(
    table: &str,
    specs: &[ColumnSpec],
    columns: &mut [PgColumn],
    zone: &dyn Zone,
    row: &Row,
    cells: &mut Vec<Cell>,
    slot: *mut pg_sys::TupleTableSlot,
) {
    if let Err(m) = decode::decode_row(row, specs, zone, cells) {
        raise(FdwError::ValueMismatch {
            table: table.to_string(),
            column: m.column,
            row_id: row.id().map(|i| i.to_string()).unwrap_or_else(|| "(none)".into()),
            value: m.value,
            expected: m.expected,
        });
    }
    pg_sys::ExecClearTuple(slot);
    for (i, cell) in cells.iter().enumerate() {
        let col = &mut columns[i];
        let d = if col.dropped { None } else { to_datum(cell, col) };
        *(*slot).tts_values.add(i) = d.unwrap_or(pg_sys::Datum::from(0usize));
        *(*slot).tts_isnull.add(i) = d.is_none();
    }
    pg_sys::ExecStoreVirtualTuple(slot);
}

unsafe fn state<'a>(node: *mut pg_sys::ForeignScanState) -> &'a mut ScanState {
    &mut *((*node).fdw_state as *mut ScanState)
}

#[pg_guard]
unsafe extern "C-unwind" fn begin_foreign_scan(node: *mut pg_sys::ForeignScanState, eflags: std::ffi::c_int) {
    let plan = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
    let rel = (*node).ss.ss_currentRelation;
    let info = table_info((*rel).rd_id);
    let explain_only = eflags as u32 & pg_sys::EXEC_FLAG_EXPLAIN_ONLY != 0;
    let token = if explain_only { None } else { Some(api_token(&info)) };
    let (specs, columns) = build_columns(rel, &info);
    let private = PgList::<pg_sys::Node>::from_pg((*plan).fdw_private);
    let exprs = PgList::<pg_sys::Expr>::from_pg((*plan).fdw_exprs);
    let (mut specs, columns) = (specs, columns);
    let text_at = |i: usize| private.get_ptr(i).map(|n| node_string(n)).unwrap_or_default();
    let needed = text_at(0);
    if needed != "*" {
        let keep: Vec<usize> = needed.split(',').filter_map(|a| a.parse::<usize>().ok()).collect();
        for (i, spec) in specs.iter_mut().enumerate() {
            if !keep.contains(&(i + 1)) {
                spec.source = Source::Skip;
            }
        }
    }
    let limit = text_at(1).parse::<u64>().ok();
    let other_quals = text_at(2).parse::<usize>().unwrap_or(0);
    let mut key_exprs = Vec::new();
    for (i, e) in exprs.iter_ptr().enumerate() {
        let op = match text_at(4 + 3 * i).as_str() {
            "?" => Op::Has,
            "IS NULL" => Op::IsNull,
            "IS NOT NULL" => Op::IsNotNull,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => Op::Eq,
        };
        key_exprs.push(KeyExpr { column: text_at(3 + 3 * i), op, expr: e, state: pg_sys::ExecInitExpr(e, node as *mut pg_sys::PlanState), is_array: text_at(5 + 3 * i) == "any" });
    }
    let zone = zone_for(&info.server.time_zone);
    let st = ScanState {
        info,
        token,
        specs,
        columns,
        zone,
        key_exprs,
        other_quals,
        limit,
        plan: None,
        pump: None,
        rows: VecDeque::new(),
        seen: HashSet::new(),
        cells: Vec::new(),
        stats: Arc::new(Stats::default()),
        first_total: None,
        last_total: None,
        econtext: (*node).ss.ps.ps_ExprContext,
    };
    attach_state(&mut (*node).fdw_state, st);
}

/// Evaluates the qual expressions (constants, parameters, stable functions) and plans the
/// requests.
unsafe fn plan_now(st: &mut ScanState) -> ScanPlan {
    let mut quals = Vec::new();
    for k in &st.key_exprs {
        let mut isnull = false;
        let d = pg_sys::ExecEvalExpr(k.state, st.econtext, &mut isnull);
        let typ = pg_sys::exprType(k.expr as *mut pg_sys::Node);
        let values = if isnull { vec![] } else { datum_values(d, typ, k.is_array) };
        quals.push((k.column.clone(), k.op, Some(values)));
    }
    let quals = plan_quals(&quals, st.other_quals);
    plan::plan_scan(&st.info.name, &st.info.source, &quals, st.limit, st.info.server.page_size, st.info.server.max_key_lookups, st.zone.as_ref()).or_raise()
}

unsafe fn start(st: &mut ScanState) {
    let p = plan_now(st);
    let settings = Settings::for_server(&st.info.server);
    let scope = match &st.info.source {
        TableSource::Resource(r) => r.read_scope(),
        TableSource::Endpoint(_) => None,
    };
    let mut client = Client::new(settings, st.token.clone().unwrap_or_default(), st.info.name.clone(), scope).or_raise();
    client.stats = st.stats.clone();
    st.pump = Some(pump::start(Arc::new(client), p.request.clone()));
    st.plan = Some(p);
}

#[pg_guard]
unsafe extern "C-unwind" fn iterate_foreign_scan(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    let st = state(node);
    let slot = (*node).ss.ss_ScanTupleSlot;
    pg_sys::ExecClearTuple(slot);
    loop {
        if let Some(row) = st.rows.pop_front() {
            if let Some(id) = row.id() {
                // Offset pagination shifts when the shop changes mid-scan: drop repeats.
                if !st.seen.insert(id) {
                    continue;
                }
            }
            store_row(&st.info.name, &st.specs, &mut st.columns, st.zone.as_ref(), &row, &mut st.cells, slot);
            return slot;
        }
        if st.pump.is_none() {
            if st.plan.is_some() {
                return slot;
            }
            start(st);
        }
        let page = match st.pump.as_mut() {
            Some(p) => wait(|| p.next(&interrupt_pending)).or_raise(),
            None => None,
        };
        let Some(page) = page else {
            st.pump = None;
            return slot;
        };
        if let Some(t) = page.total {
            st.first_total.get_or_insert(t);
            st.last_total = Some(t);
        }
        if let Some(plan) = &st.plan {
            let rows = decode::rows(&page.body, &plan.shape).map_err(|e| FdwError::BadBody { request: plan.request.describe(), detail: e.0 }).or_raise();
            st.rows.extend(rows);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn rescan_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    let st = state(node);
    st.pump = None;
    st.plan = None;
    st.rows.clear();
    st.seen.clear();
}

#[pg_guard]
unsafe extern "C-unwind" fn end_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    if (*node).fdw_state.is_null() {
        return;
    }
    let st = state(node);
    if let (Some(a), Some(b)) = (st.first_total, st.last_total) {
        if a != b {
            pgrx::warning!(
                "table \"{}\": the shop changed during the scan (X-Total went from {a} to {b}); rows added or removed meanwhile may be missing or repeated (repeats were dropped)",
                st.info.name
            );
        }
    }
    st.pump = None;
}

unsafe fn explain_text(label: &str, value: &str, es: *mut pg_sys::ExplainState) {
    let l = CString::new(label).unwrap_or_default();
    let v = CString::new(value).unwrap_or_default();
    pg_sys::ExplainPropertyText(l.as_ptr(), v.as_ptr(), es);
}

unsafe fn explain_int(label: &str, unit: Option<&str>, value: u64, es: *mut pg_sys::ExplainState) {
    let l = CString::new(label).unwrap_or_default();
    let u = unit.map(|u| CString::new(u).unwrap_or_default());
    pg_sys::ExplainPropertyInteger(l.as_ptr(), u.as_ref().map(|u| u.as_ptr()).unwrap_or(std::ptr::null()), value as i64, es);
}

#[pg_guard]
unsafe extern "C-unwind" fn explain_foreign_scan(node: *mut pg_sys::ForeignScanState, es: *mut pg_sys::ExplainState) {
    let st = state(node);
    // Plain EXPLAIN sends nothing: describe the plan from the constants we know.
    let known: Vec<_> = st.key_exprs.iter().map(|k| (k.column.clone(), k.op, const_values(std::ptr::null_mut(), k.expr, k.is_array))).collect();
    let quals = plan_quals(&known, st.other_quals);
    let planned = match &st.plan {
        Some(p) => Ok(p.clone()),
        None => plan::plan_scan(&st.info.name, &st.info.source, &quals, st.limit, st.info.server.page_size, st.info.server.max_key_lookups, st.zone.as_ref()),
    };
    let request = match &planned {
        Ok(p) => p.request.describe(),
        Err(e) => format!("none ({e})"),
    };
    explain_text("CYBERBIZ Request", &request, es);
    if (*es).verbose {
        let pushed: Vec<usize> = planned.as_ref().map(|p| p.pushed.clone()).unwrap_or_default();
        let show = |k: &KeyExpr| format!("{} {}{}", k.column, op_name(k.op), if k.is_array { " ANY" } else { "" });
        let sent: Vec<String> = st.key_exprs.iter().enumerate().filter(|(i, _)| pushed.contains(i)).map(|(_, k)| show(k)).collect();
        let mut kept: Vec<String> = st.key_exprs.iter().enumerate().filter(|(i, _)| !pushed.contains(i)).map(|(_, k)| show(k)).collect();
        if st.other_quals > 0 {
            kept.push(format!("{} other condition(s)", st.other_quals));
        }
        let join = |v: Vec<String>| if v.is_empty() { "none".to_string() } else { v.join(", ") };
        explain_text("CYBERBIZ Pushed", &join(sent), es);
        explain_text("CYBERBIZ Local Only", &join(kept), es);
        if let Some(l) = st.limit {
            let applied = planned.as_ref().is_ok_and(|p| matches!(p.request, plan::RequestPlan::List { cap: Some(_), .. }));
            explain_text("CYBERBIZ Limit", &format!("{l} rows{}", if applied { " (pushed)" } else { " (not pushed: some condition is checked locally)" }), es);
        }
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
