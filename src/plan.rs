//! Planning: which requests a scan makes, decided from the table, the WHERE clauses the API can
//! apply, and LIMIT. Pure Rust; EXPLAIN prints `describe()`.
//!
//! Every qual also stays a local recheck in the plan (Postgres evaluates it on each row), so
//! pushdown can only narrow what is fetched, never change a result.

use crate::catalog::{Access, Push, Resource};
use crate::decode::{Shape, Zone};
use crate::error::FdwError;
use crate::options::TableSource;
use std::collections::BTreeSet;

/// A comparison value, evaluated from a constant, parameter or stable expression.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Int(i64),
    Text(String),
    /// Microseconds since 1970-01-01 UTC.
    Time(i64),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Text(s) => s.clone(),
            Value::Time(t) => t.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`, or `= ANY(array)` (IN) when there are several values.
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    /// jsonb `?` (one value) or `?|` (any of several values).
    Has,
    IsNull,
    IsNotNull,
}

/// A WHERE clause on one column: `col op value(s)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qual {
    pub column: String,
    pub op: Op,
    /// None while unknown (a parameter at plan time).
    pub values: Option<Vec<Value>>,
}

/// The requests one scan makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPlan {
    /// Page through `path?params&per_page=N&page=1..`; `cap` stops after that many rows.
    List { path: String, params: Vec<(String, String)>, page_size: u32, cap: Option<u64> },
    /// One request answers everything.
    Whole { path: String },
    /// One GET per key: `{prefix}/{id}{suffix}`; a 404 or `null` is no row.
    PerKey { prefix: String, suffix: String, keys: Option<Vec<i64>> },
    /// A lookup (`get_order_id?order_numbers=...`) whose `id_field`s are then fetched per key.
    Lookup { lookup: String, id_field: String, prefix: String },
    /// The WHERE clause cannot match anything (e.g. `id IN ()`, an empty range): no request.
    Nothing,
}

impl RequestPlan {
    /// What EXPLAIN shows as `CYBERBIZ Request`.
    pub fn describe(&self) -> String {
        match self {
            RequestPlan::List { path, params, page_size, cap } => {
                let mut q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                q.push(format!("per_page={}", effective_page_size(*page_size, *cap)));
                let mut s = format!("GET {path}?{}", q.join("&"));
                if let Some(c) = cap {
                    s.push_str(&format!(" (first {c} rows)"));
                }
                s
            }
            RequestPlan::Whole { path } => format!("GET {path}"),
            RequestPlan::PerKey { prefix, suffix, keys } => match keys {
                Some(k) if k.len() == 1 => format!("GET {prefix}/{}{suffix}", k[0]),
                Some(k) => format!("GET {prefix}/{{id}}{suffix} x {}", distinct(k).len()),
                None => format!("GET {prefix}/{{id}}{suffix} per key"),
            },
            RequestPlan::Lookup { lookup, prefix, .. } => format!("GET {lookup}, then GET {prefix}/{{id}} per match"),
            RequestPlan::Nothing => "none (the WHERE clause matches nothing)".into(),
        }
    }

    /// Paths of a per-key plan, in order, without repeats.
    pub fn key_paths(&self) -> Vec<String> {
        match self {
            RequestPlan::PerKey { prefix, suffix, keys: Some(keys) } => distinct(keys).iter().map(|k| format!("{prefix}/{k}{suffix}")).collect(),
            _ => Vec::new(),
        }
    }

    /// Requests the plan makes when the list has `rows` rows (for costs and the P2 benchmark).
    pub fn requests(&self, rows: f64) -> f64 {
        match self {
            RequestPlan::List { page_size, cap, .. } => {
                let n = cap.map(|c| (c as f64).min(rows)).unwrap_or(rows);
                (n / effective_page_size(*page_size, *cap) as f64).ceil().max(1.0)
            }
            RequestPlan::Whole { .. } => 1.0,
            RequestPlan::PerKey { keys, .. } => keys.as_ref().map(|k| distinct(k).len()).unwrap_or(1) as f64,
            RequestPlan::Lookup { .. } => 2.0,
            RequestPlan::Nothing => 0.0,
        }
    }
}

/// With a LIMIT cap below a page, ask for just that many rows.
pub fn effective_page_size(page_size: u32, cap: Option<u64>) -> u32 {
    match cap {
        Some(c) if c >= 1 && c < page_size as u64 => c as u32,
        _ => page_size,
    }
}

fn distinct(keys: &[i64]) -> Vec<i64> {
    let mut seen = BTreeSet::new();
    keys.iter().copied().filter(|k| seen.insert(*k)).collect()
}

/// The full decision for one scan.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub request: RequestPlan,
    pub shape: Shape,
    /// Quals the request applies exactly (by index into the quals given).
    pub pushed: Vec<usize>,
    /// True when every qual is applied exactly by the request (LIMIT may then be pushed).
    pub exact: bool,
}

/// Formats UTC microseconds as the API's local `YYYY-MM-DD HH:MM:SS`.
pub fn local_text(unix_secs: i64, zone: &dyn Zone) -> String {
    // The offset at the instant: try the offset at the naive local time, then confirm it.
    let guess = unix_secs + zone.offset_at_local(unix_secs);
    let local = unix_secs + zone.offset_at_local(guess);
    let days = local.div_euclid(86400);
    let tod = local.rem_euclid(86400);
    let (y, m, d) = crate::decode::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", tod / 3600, tod % 3600 / 60, tod % 60)
}


/// Inclusive whole-second bounds [lo, hi] that timestamps of second precision satisfy exactly
/// when they satisfy the quals: `> t` is `>= floor(t) + 1`, `<= t` is `<= floor(t)`, and so on.
fn second_bounds(quals: &[&Qual]) -> (Option<i64>, Option<i64>, bool) {
    let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
    let mut known = true;
    for q in quals {
        let Some(vals) = &q.values else {
            known = false;
            continue;
        };
        let Some(Value::Time(us)) = vals.first() else { continue };
        let (floor, ceil) = (us.div_euclid(1_000_000), (us + 999_999).div_euclid(1_000_000));
        match q.op {
            Op::Ge => lo = Some(lo.map_or(ceil, |l| l.max(ceil))),
            Op::Gt => lo = Some(lo.map_or(floor + 1, |l| l.max(floor + 1))),
            Op::Le => hi = Some(hi.map_or(floor, |h| h.min(floor))),
            Op::Lt => hi = Some(hi.map_or(ceil - 1, |h| h.min(ceil - 1))),
            Op::Has | Op::IsNull | Op::IsNotNull => {}
            Op::Eq => {
                if us % 1_000_000 != 0 {
                    // No whole-second timestamp equals it.
                    return (Some(1), Some(0), known);
                }
                lo = Some(lo.map_or(floor, |l| l.max(floor)));
                hi = Some(hi.map_or(floor, |h| h.min(floor)));
            }
        }
    }
    (lo, hi, known)
}

/// Values every `=`/`IN` qual on a column allows (the intersection), or None if there is none.
fn allowed(quals: &[&Qual]) -> Option<Option<Vec<Value>>> {
    let eqs: Vec<&&Qual> = quals.iter().filter(|q| q.op == Op::Eq).collect();
    if eqs.is_empty() {
        return None;
    }
    let mut set: Option<BTreeSet<Value>> = None;
    for q in eqs {
        let Some(vals) = &q.values else { return Some(None) };
        let these: BTreeSet<Value> = vals.iter().cloned().collect();
        set = Some(match set {
            None => these,
            Some(s) => s.intersection(&these).cloned().collect(),
        });
    }
    Some(set.map(|s| s.into_iter().collect()))
}

fn ints(vals: &[Value]) -> Vec<i64> {
    vals.iter()
        .filter_map(|v| match v {
            Value::Int(i) => Some(*i),
            Value::Text(t) => t.trim().parse().ok(),
            Value::Time(_) => None,
        })
        .collect()
}

fn indexes(quals: &[Qual], column: &str, ops: &[Op]) -> Vec<usize> {
    quals.iter().enumerate().filter(|(_, q)| q.column == column && ops.contains(&q.op)).map(|(i, _)| i).collect()
}

/// Plans a scan of `source` from its quals and an optional LIMIT (limit + offset rows needed).
pub fn plan_scan(
    table: &str,
    source: &TableSource,
    quals: &[Qual],
    limit: Option<u64>,
    page_size: u32,
    max_keys: u32,
    zone: &dyn Zone,
) -> Result<ScanPlan, FdwError> {
    let plain = Shape { rows_at: None, child_array: None };
    let r: &Resource = match source {
        TableSource::Endpoint(path) => {
            let exact = quals.is_empty();
            let cap = if exact { limit } else { None };
            return Ok(ScanPlan { request: RequestPlan::List { path: path.clone(), params: vec![], page_size, cap }, shape: plain, pushed: vec![], exact });
        }
        TableSource::Resource(r) => r,
    };
    if let Access::Unavailable { reason } = r.access {
        return Err(FdwError::Unavailable { table: table.to_string(), reason: reason.to_string() });
    }
    let on = |col: &str| -> Vec<&Qual> { quals.iter().filter(|q| q.column == col).collect() };
    let eq_idx = |col: &str| indexes(quals, col, &[Op::Eq]);
    let all_pushed = |pushed: &Vec<usize>| pushed.len() == quals.len();

    // 1. Keys: per-key GETs (id, a child's parent key, a key-required table's key).
    let shape = match &r.parent {
        Some(p) => Shape { rows_at: None, child_array: Some(p.array.to_string()) },
        None => plain.clone(),
    };
    let prefix = r.path;
    if let Some(col) = r.key_column() {
        if let Some(vals) = allowed(&on(col)) {
            let keys = vals.map(|v| ints(&v));
            let n = keys.as_ref().map(|k| distinct(k).len()).unwrap_or(1);
            // customers: several ids in one /v2/customers?ids= request.
            let id_list = r.pushdown.iter().find_map(|p| match p {
                Push::IdList { path, param, max } => Some((*path, *param, *max)),
                _ => None,
            });
            if let (Some((path, param, max)), Some(k)) = (id_list, &keys) {
                if n > 1 && n <= max {
                    let list = distinct(k).iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
                    let pushed = eq_idx(col);
                    let exact = all_pushed(&pushed);
                    return Ok(ScanPlan {
                        request: RequestPlan::List { path: path.to_string(), params: vec![(param.to_string(), list)], page_size, cap: None },
                        shape,
                        exact,
                        pushed,
                    });
                }
            }
            if keys.as_ref().is_some_and(|k| k.is_empty()) {
                return Ok(ScanPlan { request: RequestPlan::Nothing, shape, pushed: eq_idx(col), exact: true });
            }
            if n <= max_keys as usize {
                let pushed = eq_idx(col);
                let exact = all_pushed(&pushed);
                return Ok(ScanPlan { request: RequestPlan::PerKey { prefix: prefix.to_string(), suffix: String::new(), keys }, shape, pushed, exact });
            }
        }
    }

    // 2. Lookups (order_number, e-mail, mobile) and direct answers (invoice_no).
    for p in r.pushdown {
        match *p {
            Push::Lookup { column, path, param, id_field } => {
                if let Some(vals) = allowed(&on(column)) {
                    let pushed = eq_idx(column);
                    let exact = all_pushed(&pushed);
                    let request = match vals {
                        Some(v) if v.is_empty() => RequestPlan::Nothing,
                        Some(v) => {
                            let list = v.iter().map(Value::text).collect::<Vec<_>>().join(",");
                            RequestPlan::Lookup { lookup: format!("{path}?{param}={list}"), id_field: id_field.to_string(), prefix: r.path.to_string() }
                        }
                        None => RequestPlan::Lookup { lookup: format!("{path}?{param}=?"), id_field: id_field.to_string(), prefix: r.path.to_string() },
                    };
                    return Ok(ScanPlan { request, shape, pushed, exact });
                }
            }
            Push::Direct { column, path, param } => {
                if let Some(vals) = allowed(&on(column)) {
                    let pushed = eq_idx(column);
                    let exact = all_pushed(&pushed);
                    let request = match vals {
                        Some(v) if v.is_empty() => RequestPlan::Nothing,
                        Some(v) if v.len() == 1 => RequestPlan::Whole { path: format!("{path}?{param}={}", v[0].text()) },
                        None => RequestPlan::Whole { path: format!("{path}?{param}=?") },
                        Some(_) => continue,
                    };
                    return Ok(ScanPlan { request, shape, pushed, exact });
                }
            }
            _ => {}
        }
    }

    if let Access::KeyRequired { key } = r.access {
        let hint = match r.pushdown.iter().find_map(|p| if let Push::Direct { column, .. } = p { Some(*column) } else { None }) {
            Some(alt) => format!("Add WHERE {key} = <value> (or {key} IN (...), or join on {key}), or WHERE {alt} = <value>, to the query."),
            None => format!("Add WHERE {key} = <value> (or {key} IN (...), or join on {key}) to the query."),
        };
        let reason = if on(key).iter().any(|q| q.op == Op::Eq) {
            format!("the list of {key} values is longer than the server's max_key_lookups ({max_keys})")
        } else {
            format!("the CYBERBIZ API has no list endpoint for {}", r.name)
        };
        return Err(FdwError::KeyRequired { table: table.to_string(), key: key.to_string(), reason, hint });
    }
    if let Access::Whole { rows_at } = r.access {
        return Ok(ScanPlan { request: RequestPlan::Whole { path: r.path.to_string() }, shape: Shape { rows_at: rows_at.map(str::to_string), child_array: None }, pushed: vec![], exact: quals.is_empty() });
    }

    // 3. A list, narrowed by the parameters the API documents.
    let mut params: Vec<(String, String)> = Vec::new();
    let mut pushed: Vec<usize> = Vec::new();
    let mut nothing = false;
    let child = r.parent.is_some();
    for p in r.pushdown {
        match *p {
            Push::TimeRange { column, from, to } | Push::DateRange { column, from, to } => {
                let range_ops = [Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge];
                let idx = indexes(quals, column, &range_ops);
                if idx.is_empty() {
                    continue;
                }
                let qs: Vec<&Qual> = idx.iter().map(|&i| &quals[i]).collect();
                // An IN list of times is not a range: leave it local.
                if qs.iter().any(|q| q.values.as_ref().is_some_and(|v| v.len() != 1 || !matches!(v[0], Value::Time(_)))) {
                    continue;
                }
                let (lo, hi, known) = second_bounds(&qs);
                let date_only = matches!(p, Push::DateRange { .. });
                let fmt = |secs: i64| {
                    let t = local_text(secs, zone);
                    if date_only {
                        t[..10].to_string()
                    } else {
                        t
                    }
                };
                if !known {
                    if qs.iter().any(|q| matches!(q.op, Op::Ge | Op::Gt | Op::Eq)) {
                        params.push((from.to_string(), "?".into()));
                    }
                    if qs.iter().any(|q| matches!(q.op, Op::Le | Op::Lt | Op::Eq)) {
                        params.push((to.to_string(), "?".into()));
                    }
                } else {
                    if let (Some(l), Some(h)) = (lo, hi) {
                        if l > h {
                            nothing = true;
                        }
                    }
                    if let Some(l) = lo {
                        params.push((from.to_string(), fmt(l)));
                    }
                    if let Some(h) = hi {
                        params.push((to.to_string(), fmt(h)));
                    }
                }
                // Date parameters only narrow to whole days: the rest stays a local filter.
                if !date_only {
                    pushed.extend(idx);
                }
            }
            Push::AnyOf { column, param } | Push::One { column, param } => {
                if let Some(vals) = allowed(&on(column)) {
                    match vals {
                        Some(v) if v.is_empty() => nothing = true,
                        Some(v) if matches!(p, Push::One { .. }) && v.len() > 1 => continue,
                        Some(v) => params.push((param.to_string(), v.iter().map(Value::text).collect::<Vec<_>>().join(","))),
                        None => params.push((param.to_string(), "?".into())),
                    }
                    pushed.extend(eq_idx(column));
                }
            }
            Push::Has { column, param } => {
                let idx = indexes(quals, column, &[Op::Has]);
                // Only one tag list can be sent (the API ORs it); a second `?` stays local.
                if let Some(&i) = idx.first() {
                    match &quals[i].values {
                        Some(v) if v.is_empty() => nothing = true,
                        Some(v) => params.push((param.to_string(), v.iter().map(Value::text).collect::<Vec<_>>().join(","))),
                        None => params.push((param.to_string(), "?".into())),
                    }
                    pushed.push(i);
                }
            }
            Push::NullTest { column, param, when_null, when_not_null } => {
                let nulls = indexes(quals, column, &[Op::IsNull]);
                let not_nulls = indexes(quals, column, &[Op::IsNotNull]);
                match (nulls.is_empty(), not_nulls.is_empty()) {
                    (false, false) => nothing = true,
                    (false, true) => params.push((param.to_string(), when_null.to_string())),
                    (true, false) => params.push((param.to_string(), when_not_null.to_string())),
                    (true, true) => continue,
                }
                pushed.extend(nulls);
                pushed.extend(not_nulls);
            }
            _ => {}
        }
    }
    if nothing {
        return Ok(ScanPlan { request: RequestPlan::Nothing, shape, pushed, exact: true });
    }
    pushed.sort_unstable();
    pushed.dedup();
    // LIMIT can only cap what is fetched when the request applies every qual exactly (and a
    // child table's rows are not one per parent).
    let exact = all_pushed(&pushed);
    let cap = if exact && !child { limit } else { None };
    Ok(ScanPlan { request: RequestPlan::List { path: r.path.to_string(), params, page_size, cap }, shape, pushed, exact })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;
    use crate::decode::TAIPEI;

    fn res(name: &str) -> TableSource {
        TableSource::Resource(find(name).unwrap())
    }
    fn q(c: &str, op: Op, v: Vec<Value>) -> Qual {
        Qual { column: c.into(), op, values: Some(v) }
    }
    fn ints(v: &[i64]) -> Vec<Value> {
        v.iter().map(|i| Value::Int(*i)).collect()
    }
    fn texts(v: &[&str]) -> Vec<Value> {
        v.iter().map(|s| Value::Text(s.to_string())).collect()
    }
    /// 2026-11-21 00:00:00 Taipei = 2026-11-20 16:00:00 UTC, in microseconds.
    const NOV21: i64 = 1_795_190_400 * 1_000_000;
    fn plan(t: &str, quals: &[Qual], limit: Option<u64>) -> ScanPlan {
        plan_scan(t, &res(t), quals, limit, 50, 50, &TAIPEI).unwrap()
    }

    #[test]
    fn keys_become_gets() {
        assert_eq!(plan("orders", &[], None).request.describe(), "GET /v1/orders?per_page=50");
        let p = plan("orders", &[q("id", Op::Eq, ints(&[5]))], None);
        assert_eq!((p.request.describe(), p.exact), ("GET /v1/orders/5".to_string(), true));
        let p = plan("orders", &[q("id", Op::Eq, ints(&[5, 6, 5]))], None);
        assert_eq!(p.request.describe(), "GET /v1/orders/{id} x 2");
        assert_eq!(p.request.key_paths(), vec!["/v1/orders/5", "/v1/orders/6"]);
        let many: Vec<i64> = (1..=60).collect();
        assert!(matches!(plan("orders", &[q("id", Op::Eq, ints(&many))], None).request, RequestPlan::List { .. }), "too many keys: list");
        assert_eq!(plan("orders", &[q("id", Op::Eq, ints(&[1])), q("id", Op::Eq, ints(&[2]))], None).request, RequestPlan::Nothing);
        let p = plan("order_line_items", &[q("order_id", Op::Eq, ints(&[9]))], None);
        assert_eq!((p.request.describe(), p.shape.child_array.as_deref()), ("GET /v1/orders/9".to_string(), Some("line_items")));
        let p = plan("customers", &[q("id", Op::Eq, ints(&[3, 1, 2]))], None);
        assert_eq!(p.request.describe(), "GET /v2/customers?ids=1,2,3&per_page=50");
        let p = plan("customers", &[q("id", Op::Eq, ints(&[3]))], None);
        assert_eq!(p.request.describe(), "GET /v1/customers/3");
    }

    #[test]
    fn lookups() {
        let p = plan("orders", &[q("order_number", Op::Eq, ints(&[1101, 1102]))], None);
        assert_eq!(p.request.describe(), "GET /v1/orders/get_order_id?order_numbers=1101,1102, then GET /v1/orders/{id} per match");
        let p = plan("customers", &[q("email", Op::Eq, texts(&["a@x.tw"]))], None);
        assert!(p.request.describe().starts_with("GET /v1/customers/get_customer_id?customer_emails=a@x.tw"));
        let p = plan("einvoices", &[q("invoice_no", Op::Eq, texts(&["AB12345678"]))], None);
        assert_eq!(p.request.describe(), "GET /v1/einvoices/get_einvoice?invoice_no=AB12345678");
    }

    #[test]
    fn ranges_statuses_and_limit() {
        let quals = [q("financial_status", Op::Eq, texts(&["paid", "cod"])), q("created_at", Op::Ge, vec![Value::Time(NOV21)])];
        let p = plan("orders", &quals, Some(10));
        assert_eq!(p.request.describe(), "GET /v1/orders?start_time=2026-11-21 00:00:00&financial_statuses=cod,paid&per_page=10 (first 10 rows)");
        assert!(p.exact);
        // Strict and sub-second bounds become exact whole-second bounds.
        let p = plan("orders", &[q("updated_at", Op::Gt, vec![Value::Time(NOV21 + 500_000)]), q("updated_at", Op::Lt, vec![Value::Time(NOV21 + 86_400_000_000)])], None);
        assert_eq!(p.request.describe(), "GET /v1/orders?updated_at_start_time=2026-11-21 00:00:01&updated_at_end_time=2026-11-21 23:59:59&per_page=50");
        // A local-only qual keeps LIMIT local.
        let p = plan("orders", &[q("financial_status", Op::Eq, texts(&["paid"])), q("note", Op::Eq, texts(&["x"]))], Some(10));
        assert_eq!(p.request.describe(), "GET /v1/orders?financial_statuses=paid&per_page=50");
        assert!(!p.exact);
        // Empty ranges and empty intersections send nothing.
        assert_eq!(plan("orders", &[q("created_at", Op::Gt, vec![Value::Time(NOV21)]), q("created_at", Op::Lt, vec![Value::Time(NOV21)])], None).request, RequestPlan::Nothing);
        assert_eq!(plan("orders", &[q("order_status", Op::Eq, texts(&["open"])), q("order_status", Op::Eq, texts(&["closed"]))], None).request, RequestPlan::Nothing);
        // Parameters unknown at plan time still show where they go.
        let p = plan_scan("orders", &res("orders"), &[Qual { column: "created_at".into(), op: Op::Ge, values: None }], None, 50, 50, &TAIPEI).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/orders?start_time=?&per_page=50");
        // Single-valued parameters are not sent lists.
        let p = plan("stock_invoices", &[q("status", Op::Eq, texts(&["done", "pending"]))], None);
        assert_eq!(p.request.describe(), "GET /v1/stock_invoices?per_page=50");
        let p = plan("stock_invoices", &[q("status", Op::Eq, texts(&["done"])), q("created_at", Op::Ge, vec![Value::Time(NOV21)])], Some(5));
        assert_eq!(p.request.describe(), "GET /v1/stock_invoices?status=done&start_date=2026-11-21&per_page=50");
    }

    #[test]
    fn required_keys_and_missing_endpoints_fail_before_any_request() {
        let e = plan_scan("einvoices", &res("einvoices"), &[], None, 50, 50, &TAIPEI).unwrap_err();
        assert!(e.to_string().contains("can only be read by id"), "{e}");
        assert!(e.hint().unwrap().contains("WHERE id = "));
        let e = plan_scan("edms", &res("edms"), &[], None, 50, 50, &TAIPEI).unwrap_err();
        assert!(e.to_string().contains("documents no endpoint"), "{e}");
    }

    #[test]
    fn tags_and_data_source() {
        let p = plan("orders", &[q("tags", Op::Has, texts(&["VIP", "團購"])), Qual { column: "pos_shop_id".into(), op: Op::IsNull, values: Some(vec![]) }], Some(5));
        assert_eq!(p.request.describe(), "GET /v1/orders?tags=VIP,團購&data_source=ec&per_page=5 (first 5 rows)");
        let p = plan("orders", &[Qual { column: "pos_shop_id".into(), op: Op::IsNotNull, values: Some(vec![]) }], None);
        assert_eq!(p.request.describe(), "GET /v1/orders?data_source=pos&per_page=50");
    }

    #[test]
    fn request_counts() {
        assert_eq!(plan("orders", &[], None).request.requests(5000.0), 100.0);
        assert_eq!(plan("orders", &[], Some(10)).request.requests(5000.0), 1.0);
        assert_eq!(plan("orders", &[q("id", Op::Eq, ints(&[1, 2, 3]))], None).request.requests(5000.0), 3.0);
    }
}
