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

impl Op {
    /// The SQL spelling, as EXPLAIN VERBOSE shows it and `fdw_private` stores it.
    pub fn sql(self) -> &'static str {
        match self {
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

    /// The operator `sql()` spells.
    pub fn from_sql(s: &str) -> Option<Op> {
        ALL_OPS.into_iter().find(|o| o.sql() == s)
    }
}

const ALL_OPS: [Op; 8] = [Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Has, Op::IsNull, Op::IsNotNull];

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
    /// One request answers everything: `path?params`.
    Whole { path: String, params: Vec<(String, String)> },
    /// One GET per key: `{prefix}/{id}{suffix}`; a 404 or `null` is no row.
    PerKey { prefix: String, suffix: String, keys: Option<Vec<i64>> },
    /// A lookup (`get_order_id?order_numbers=...`) whose `id_field`s are then fetched per key.
    Lookup { path: String, params: Vec<(String, String)>, id_field: String, prefix: String },
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
            RequestPlan::Whole { path, params } => format!("GET {}", shown(path, params)),
            RequestPlan::PerKey { prefix, suffix, keys } => match keys {
                Some(k) if k.len() == 1 => format!("GET {prefix}/{}{suffix}", k[0]),
                Some(k) => format!("GET {prefix}/{{id}}{suffix} x {}", distinct(k).len()),
                None => format!("GET {prefix}/{{id}}{suffix} per key"),
            },
            RequestPlan::Lookup { path, params, prefix, .. } => format!("GET {}, then GET {prefix}/{{id}} per match", shown(path, params)),
            RequestPlan::Nothing => "none (the WHERE clause matches nothing)".into(),
        }
    }

    /// Paths of a per-key plan, in order, without repeats, each with the key whose object it
    /// answers with (None when a suffix names something else: `{prefix}/{k}/...`).
    pub fn key_paths(&self) -> Vec<(String, Option<i64>)> {
        match self {
            RequestPlan::PerKey { prefix, suffix, keys: Some(keys) } => {
                distinct(keys).iter().map(|k| (format!("{prefix}/{k}{suffix}"), suffix.is_empty().then_some(*k))).collect()
            }
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

/// `path?k=v&...` as EXPLAIN shows it (values as they are, `?` when known only at execution).
fn shown(path: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", q.join("&"))
}

/// `path?k=v&...` as sent: values percent-encoded (`+`, `&`, `%`, spaces, non-ASCII), commas
/// kept (they separate the API's list values; a value holding one is never pushed). Every
/// request with parameters (pages, lookups, estimates) is built here.
pub fn url_path(path: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> =
        params.iter().map(|(k, v)| format!("{k}={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>().replace("%2C", ","))).collect();
    format!("{path}?{}", q.join("&"))
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

/// Formats UTC seconds (since 1970) as the API's local `YYYY-MM-DD HH:MM:SS` in `zone`.
pub fn local_text(unix_secs: i64, zone: &dyn Zone) -> String {
    // The offset at the instant: try the offset at the naive local time, then confirm it.
    let guess = unix_secs + zone.offset_at_local(unix_secs);
    let local = unix_secs + zone.offset_at_local(guess);
    let days = local.div_euclid(86400);
    let tod = local.rem_euclid(86400);
    let (y, m, d) = crate::decode::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", tod / 3600, tod % 3600 / 60, tod % 60)
}

/// What a scan asks for: the quals the API might apply, how many quals stay local only
/// (they can never be pushed, and keep LIMIT local), and LIMIT + OFFSET.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub quals: Vec<Qual>,
    pub local_only: usize,
    /// Rows the query needs at most (LIMIT + OFFSET), when nothing stands in between.
    pub limit: Option<u64>,
}

/// The server settings planning depends on.
pub struct Limits<'a> {
    pub page_size: u32,
    pub max_keys: u32,
    pub zone: &'a dyn Zone,
}

impl<'a> Limits<'a> {
    pub fn for_server(server: &crate::options::ServerOptions, zone: &'a dyn Zone) -> Limits<'a> {
        Limits { page_size: server.page_size, max_keys: server.max_key_lookups, zone }
    }
}

/// Inclusive whole-second bounds [lo, hi] that timestamps of second precision satisfy exactly
/// when they satisfy the quals: `> t` is `>= floor(t) + 1`, `<= t` is `<= floor(t)`, and so on.
/// The flag is false when some bound is unknown at plan time.
fn second_bounds(quals: &[&Qual]) -> (Option<i64>, Option<i64>, bool) {
    let (mut lo, mut hi): (Option<i64>, Option<i64>) = (None, None);
    let mut known = true;
    let raise = |b: &mut Option<i64>, v: i64| *b = Some(b.map_or(v, |x| x.max(v)));
    let lower = |b: &mut Option<i64>, v: i64| *b = Some(b.map_or(v, |x| x.min(v)));
    for q in quals {
        let Some(vals) = &q.values else {
            known = false;
            continue;
        };
        let Some(Value::Time(us)) = vals.first() else { continue };
        let (floor, ceil) = (us.div_euclid(1_000_000), (us + 999_999).div_euclid(1_000_000));
        match q.op {
            Op::Ge => raise(&mut lo, ceil),
            Op::Gt => raise(&mut lo, floor + 1),
            Op::Le => lower(&mut hi, floor),
            Op::Lt => lower(&mut hi, ceil - 1),
            Op::Has | Op::IsNull | Op::IsNotNull => {}
            // No whole-second timestamp equals a sub-second one.
            Op::Eq if us % 1_000_000 != 0 => return (Some(1), Some(0), known),
            Op::Eq => {
                raise(&mut lo, floor);
                lower(&mut hi, floor);
            }
        }
    }
    (lo, hi, known)
}

/// Values every `=`/`IN` qual on a column allows (the intersection): None if no such qual,
/// Some(None) if some value is unknown at plan time.
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

/// Microseconds since 1970 of the earliest and latest instants sent as time bounds:
/// 1970-01-01 and 9999-12-31 23:59:59 UTC. Beyond them (±infinity, year 10000 and later, far
/// past) a bound stays a local filter: the API's `YYYY-MM-DD HH:MM:SS` cannot say it.
const EARLIEST_BOUND_US: i64 = 0;
const LATEST_BOUND_US: i64 = 253_402_300_799 * 1_000_000;

/// Whether the API's parameter can carry `v` exactly. Text must be non-empty, without leading
/// or trailing spaces (which the API may trim), control characters, or commas (which separate
/// the values of the API's lists: even a single-valued parameter may be split at one). Times
/// must be within the range the API's `YYYY-MM-DD HH:MM:SS` can say.
pub fn sayable(v: &Value) -> bool {
    match v {
        Value::Int(_) => true,
        Value::Time(us) => (EARLIEST_BOUND_US..=LATEST_BOUND_US).contains(us),
        Value::Text(s) => !(s.is_empty() || s.trim() != s || s.chars().any(char::is_control) || s.contains(',')),
    }
}

fn comma_list(vals: &[Value]) -> String {
    vals.iter().map(Value::text).collect::<Vec<_>>().join(",")
}

/// One scan being planned: the resource, the query and the limits.
struct Planner<'a> {
    table: &'a str,
    r: &'static Resource,
    q: &'a Query,
    limits: &'a Limits<'a>,
    shape: Shape,
}

impl Planner<'_> {
    fn on(&self, column: &str) -> Vec<&Qual> {
        self.q.quals.iter().filter(|q| q.column == column).collect()
    }

    /// Whether every value the `=`/`IN` quals on `column` know can be said in the parameter.
    fn sayable_on(&self, column: &str) -> bool {
        self.on(column).iter().filter(|q| q.op == Op::Eq).flat_map(|q| q.values.iter().flatten()).all(sayable)
    }

    fn indexes(&self, column: &str, ops: &[Op]) -> Vec<usize> {
        let hit = |q: &Qual| q.column == column && ops.contains(&q.op);
        self.q.quals.iter().enumerate().filter(|(_, q)| hit(q)).map(|(i, _)| i).collect()
    }

    /// A plan whose request applies the quals `pushed`; exact when that is every qual.
    fn plan(&self, request: RequestPlan, pushed: Vec<usize>) -> ScanPlan {
        let exact = matches!(request, RequestPlan::Nothing) || (pushed.len() == self.q.quals.len() && self.q.local_only == 0);
        let shape = Shape { array: matches!(request, RequestPlan::List { .. }), ..self.shape.clone() };
        ScanPlan { request, shape, pushed, exact }
    }

    /// Per-key GETs on the key column (id, a child's parent key, a key-required table's key),
    /// or one `ids=` list request where the API has one.
    fn keys(&self) -> Option<ScanPlan> {
        let col = self.r.key_column()?;
        let keys = allowed(&self.on(col))?.map(|v| ints(&v));
        let pushed = self.indexes(col, &[Op::Eq]);
        let n = keys.as_ref().map(|k| distinct(k).len()).unwrap_or(1);
        if let (Some((path, param, max)), Some(k)) = (self.id_list(), &keys) {
            if n > 1 && n <= max {
                let list = distinct(k).iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                let params = vec![(param.to_string(), list)];
                return Some(self.plan(RequestPlan::List { path: path.to_string(), params, page_size: self.limits.page_size, cap: None }, pushed));
            }
        }
        if keys.as_ref().is_some_and(|k| k.is_empty()) {
            return Some(self.plan(RequestPlan::Nothing, pushed));
        }
        (n <= self.limits.max_keys as usize).then(|| self.plan(RequestPlan::PerKey { prefix: self.r.path.to_string(), suffix: String::new(), keys }, pushed))
    }

    fn id_list(&self) -> Option<(&'static str, &'static str, usize)> {
        self.r.pushdown.iter().find_map(|p| match p {
            Push::IdList { path, param, max } => Some((*path, *param, *max)),
            _ => None,
        })
    }

    /// Lookups (order_number, e-mail, mobile) and direct answers (invoice_no), in catalog order.
    fn lookups(&self) -> Option<ScanPlan> {
        self.r.pushdown.iter().find_map(|p| match *p {
            Push::Lookup { column, path, param, id_field } => self.lookup(column, path, param, id_field),
            Push::Direct { column, path, param } => self.direct(column, path, param),
            _ => None,
        })
    }

    fn lookup(&self, column: &str, path: &str, param: &str, id_field: &str) -> Option<ScanPlan> {
        let vals = allowed(&self.on(column)).filter(|_| self.sayable_on(column))?;
        let lookup = |list: String| RequestPlan::Lookup {
            path: path.to_string(),
            params: vec![(param.to_string(), list)],
            id_field: id_field.to_string(),
            prefix: self.r.path.to_string(),
        };
        let request = match vals {
            Some(v) if v.is_empty() => RequestPlan::Nothing,
            Some(v) => lookup(comma_list(&v)),
            None => lookup("?".into()),
        };
        Some(self.plan(request, self.indexes(column, &[Op::Eq])))
    }

    fn direct(&self, column: &str, path: &str, param: &str) -> Option<ScanPlan> {
        let request = match allowed(&self.on(column)).filter(|_| self.sayable_on(column))? {
            Some(v) if v.is_empty() => RequestPlan::Nothing,
            Some(v) if v.len() == 1 => RequestPlan::Whole { path: path.to_string(), params: vec![(param.to_string(), v[0].text())] },
            None => RequestPlan::Whole { path: path.to_string(), params: vec![(param.to_string(), "?".into())] },
            Some(_) => return None,
        };
        Some(self.plan(request, self.indexes(column, &[Op::Eq])))
    }

    /// The error for a key-required table scanned without (enough of) its key.
    fn key_required(&self, key: &str) -> FdwError {
        let add = format!("Add WHERE {key} = <value> (or {key} IN (...), or join on {key})");
        let alt = self.r.pushdown.iter().find_map(|p| if let Push::Direct { column, .. } = p { Some(*column) } else { None });
        let hint = match alt {
            Some(alt) => format!("{add}, or WHERE {alt} = <value>, to the query."),
            None => format!("{add} to the query."),
        };
        let reason = if self.on(key).iter().any(|q| q.op == Op::Eq) {
            format!("the list of {key} values is longer than the server's max_key_lookups ({})", self.limits.max_keys)
        } else {
            format!("the CYBERBIZ API has no list endpoint for {}", self.r.name)
        };
        FdwError::KeyRequired { table: self.table.to_string(), key: key.to_string(), reason, hint }
    }

    /// A paged list, narrowed by the parameters the API documents.
    fn list(&self) -> ScanPlan {
        let mut b = ListParams::default();
        for p in self.r.pushdown {
            match *p {
                Push::TimeRange { column, from, to } => self.push_range(&mut b, column, from, to, false),
                Push::DateRange { column, from, to } => self.push_range(&mut b, column, from, to, true),
                Push::AnyOf { column, param } => self.push_values(&mut b, column, param, true),
                Push::One { column, param } => self.push_values(&mut b, column, param, false),
                Push::Has { column, param } => self.push_has(&mut b, column, param),
                Push::NullTest { column, param, when_null, when_not_null } => self.push_null_test(&mut b, column, param, when_null, when_not_null),
                Push::Lookup { .. } | Push::Direct { .. } | Push::IdList { .. } => {}
            }
        }
        if b.nothing {
            return self.plan(RequestPlan::Nothing, b.pushed);
        }
        b.pushed.sort_unstable();
        b.pushed.dedup();
        let mut plan = self.plan(RequestPlan::List { path: self.r.path.to_string(), params: b.params, page_size: self.limits.page_size, cap: None }, b.pushed);
        // LIMIT can only cap what is fetched when the request applies every qual exactly (and a
        // child table's rows are not one per parent).
        if let RequestPlan::List { cap, .. } = &mut plan.request {
            *cap = if plan.exact && self.r.parent.is_none() { self.q.limit } else { None };
        }
        plan
    }

    /// Range quals on a time column -> inclusive `from`/`to` parameters (whole seconds, or
    /// whole days for date parameters, which then only narrow: the quals stay local).
    fn push_range(&self, b: &mut ListParams, column: &str, from: &str, to: &str, date_only: bool) {
        // A bound the API cannot say (±infinity, beyond year 9999) stays local; the rest narrow.
        let mut idx = self.indexes(column, &[Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge]);
        idx.retain(|&i| self.q.quals[i].values.as_ref().is_none_or(|v| v.iter().all(sayable)));
        let qs: Vec<&Qual> = idx.iter().map(|&i| &self.q.quals[i]).collect();
        // An IN list of times is not a range: leave it local.
        if qs.is_empty() || qs.iter().any(|q| q.values.as_ref().is_some_and(|v| v.len() != 1 || !matches!(v[0], Value::Time(_)))) {
            return;
        }
        let (lo, hi, known) = second_bounds(&qs);
        if !known {
            if qs.iter().any(|q| matches!(q.op, Op::Ge | Op::Gt | Op::Eq)) {
                b.params.push((from.to_string(), "?".into()));
            }
            if qs.iter().any(|q| matches!(q.op, Op::Le | Op::Lt | Op::Eq)) {
                b.params.push((to.to_string(), "?".into()));
            }
        } else {
            b.nothing |= matches!((lo, hi), (Some(l), Some(h)) if l > h);
            let fmt = |secs: i64| {
                let t = local_text(secs, self.limits.zone);
                if date_only {
                    t[..10].to_string()
                } else {
                    t
                }
            };
            b.params.extend(lo.map(|l| (from.to_string(), fmt(l))));
            b.params.extend(hi.map(|h| (to.to_string(), fmt(h))));
        }
        if !date_only {
            b.pushed.extend(idx);
        }
    }

    /// `= / IN` -> a comma list (`many`) or a single-valued parameter.
    fn push_values(&self, b: &mut ListParams, column: &str, param: &str, many: bool) {
        let Some(vals) = allowed(&self.on(column)).filter(|_| self.sayable_on(column)) else { return };
        match vals {
            Some(v) if v.is_empty() => b.nothing = true,
            Some(v) if !many && v.len() > 1 => return,
            Some(v) => b.params.push((param.to_string(), comma_list(&v))),
            None => b.params.push((param.to_string(), "?".into())),
        }
        b.pushed.extend(self.indexes(column, &[Op::Eq]));
    }

    /// `tags ? x` / `?| array[...]`: only one tag list can be sent (the API ORs it); a second
    /// `?` stays local.
    fn push_has(&self, b: &mut ListParams, column: &str, param: &str) {
        let sayable_has = |&&i: &&usize| self.q.quals[i].values.as_ref().is_none_or(|v| v.iter().all(sayable));
        let Some(&i) = self.indexes(column, &[Op::Has]).iter().find(sayable_has) else { return };
        match &self.q.quals[i].values {
            Some(v) if v.is_empty() => b.nothing = true,
            Some(v) => b.params.push((param.to_string(), comma_list(v))),
            None => b.params.push((param.to_string(), "?".into())),
        }
        b.pushed.push(i);
    }

    fn push_null_test(&self, b: &mut ListParams, column: &str, param: &str, when_null: &str, when_not_null: &str) {
        let nulls = self.indexes(column, &[Op::IsNull]);
        let not_nulls = self.indexes(column, &[Op::IsNotNull]);
        match (nulls.is_empty(), not_nulls.is_empty()) {
            (false, false) => b.nothing = true,
            (false, true) => b.params.push((param.to_string(), when_null.to_string())),
            (true, false) => b.params.push((param.to_string(), when_not_null.to_string())),
            (true, true) => return,
        }
        b.pushed.extend(nulls);
        b.pushed.extend(not_nulls);
    }
}

/// A list request's parameters as they are collected.
#[derive(Default)]
struct ListParams {
    params: Vec<(String, String)>,
    pushed: Vec<usize>,
    /// Some qual can match nothing: no request at all.
    nothing: bool,
}

/// Plans a scan of `source`: the fewest requests that return every row the quals can match.
pub fn plan_scan(table: &str, source: &TableSource, q: &Query, limits: &Limits) -> Result<ScanPlan, FdwError> {
    let r: &'static Resource = match source {
        TableSource::Endpoint(path) => return Ok(plan_endpoint(path, q, limits)),
        TableSource::Resource(r) => r,
    };
    let shape = Shape { rows_at: None, child_array: r.parent.as_ref().map(|p| p.array.to_string()), array: false };
    let planner = Planner { table, r, q, limits, shape };
    if let Access::Unavailable { reason } = r.access {
        return Err(FdwError::Unavailable { table: table.to_string(), reason: reason.to_string() });
    }
    if let Some(plan) = planner.keys().or_else(|| planner.lookups()) {
        return Ok(plan);
    }
    match r.access {
        Access::KeyRequired { key } => Err(planner.key_required(key)),
        Access::Whole { rows_at } => {
            let shape = Shape { rows_at: rows_at.map(str::to_string), child_array: None, array: false };
            Ok(ScanPlan { shape, ..planner.plan(RequestPlan::Whole { path: r.path.to_string(), params: vec![] }, vec![]) })
        }
        Access::Paged | Access::Unavailable { .. } => Ok(planner.list()),
    }
}

/// A table on any list path: nothing is pushed; LIMIT only when no qual is there at all.
fn plan_endpoint(path: &str, q: &Query, limits: &Limits) -> ScanPlan {
    let exact = q.quals.is_empty() && q.local_only == 0;
    let cap = if exact { q.limit } else { None };
    let request = RequestPlan::List { path: path.to_string(), params: vec![], page_size: limits.page_size, cap };
    ScanPlan { request, shape: Shape { rows_at: None, child_array: None, array: true }, pushed: vec![], exact }
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
    const LIMITS: Limits = Limits { page_size: 50, max_keys: 50, zone: &TAIPEI };
    fn query(quals: &[Qual], limit: Option<u64>) -> Query {
        Query { quals: quals.to_vec(), local_only: 0, limit }
    }
    fn plan(t: &str, quals: &[Qual], limit: Option<u64>) -> ScanPlan {
        plan_scan(t, &res(t), &query(quals, limit), &LIMITS).unwrap()
    }

    #[test]
    fn keys_become_gets() {
        assert_eq!(plan("orders", &[], None).request.describe(), "GET /v1/orders?per_page=50");
        let p = plan("orders", &[q("id", Op::Eq, ints(&[5]))], None);
        assert_eq!((p.request.describe(), p.exact), ("GET /v1/orders/5".to_string(), true));
        let p = plan("orders", &[q("id", Op::Eq, ints(&[5, 6, 5]))], None);
        assert_eq!(p.request.describe(), "GET /v1/orders/{id} x 2");
        assert_eq!(p.request.key_paths(), vec![("/v1/orders/5".to_string(), Some(5)), ("/v1/orders/6".to_string(), Some(6))]);
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
        let p = plan(
            "orders",
            &[q("updated_at", Op::Gt, vec![Value::Time(NOV21 + 500_000)]), q("updated_at", Op::Lt, vec![Value::Time(NOV21 + 86_400_000_000)])],
            None,
        );
        assert_eq!(p.request.describe(), "GET /v1/orders?updated_at_start_time=2026-11-21 00:00:01&updated_at_end_time=2026-11-21 23:59:59&per_page=50");
        // A local-only qual keeps LIMIT local, whether the API lacks the column or the qual.
        let p = plan("orders", &[q("financial_status", Op::Eq, texts(&["paid"])), q("note", Op::Eq, texts(&["x"]))], Some(10));
        assert_eq!(p.request.describe(), "GET /v1/orders?financial_statuses=paid&per_page=50");
        assert!(!p.exact);
        let one_local = Query { local_only: 1, ..query(&[q("financial_status", Op::Eq, texts(&["paid"]))], Some(10)) };
        let p = plan_scan("orders", &res("orders"), &one_local, &LIMITS).unwrap();
        assert_eq!((p.request.describe(), p.exact), ("GET /v1/orders?financial_statuses=paid&per_page=50".to_string(), false));
        let endpoint = TableSource::Endpoint("/v1/blogs".into());
        let p = plan_scan("blogs", &endpoint, &Query { local_only: 1, ..query(&[], Some(3)) }, &LIMITS).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/blogs?per_page=50");
        let p = plan_scan("blogs", &endpoint, &query(&[], Some(3)), &LIMITS).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/blogs?per_page=3 (first 3 rows)");
        // Empty ranges and empty intersections send nothing.
        assert_eq!(
            plan("orders", &[q("created_at", Op::Gt, vec![Value::Time(NOV21)]), q("created_at", Op::Lt, vec![Value::Time(NOV21)])], None).request,
            RequestPlan::Nothing
        );
        assert_eq!(
            plan("orders", &[q("order_status", Op::Eq, texts(&["open"])), q("order_status", Op::Eq, texts(&["closed"]))], None).request,
            RequestPlan::Nothing
        );
        // Parameters unknown at plan time still show where they go.
        let p = plan_scan("orders", &res("orders"), &query(&[Qual { column: "created_at".into(), op: Op::Ge, values: None }], None), &LIMITS).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/orders?start_time=?&per_page=50");
        // Single-valued parameters are not sent lists.
        let p = plan("stock_invoices", &[q("status", Op::Eq, texts(&["done", "pending"]))], None);
        assert_eq!(p.request.describe(), "GET /v1/stock_invoices?per_page=50");
        let p = plan("stock_invoices", &[q("status", Op::Eq, texts(&["done"])), q("created_at", Op::Ge, vec![Value::Time(NOV21)])], Some(5));
        assert_eq!(p.request.describe(), "GET /v1/stock_invoices?status=done&start_date=2026-11-21&per_page=50");
    }

    #[test]
    fn required_keys_and_missing_endpoints_fail_before_any_request() {
        let e = plan_scan("einvoices", &res("einvoices"), &query(&[], None), &LIMITS).unwrap_err();
        assert!(e.to_string().contains("can only be read by id"), "{e}");
        assert!(e.hint().unwrap().contains("WHERE id = "));
        let e = plan_scan("edms", &res("edms"), &query(&[], None), &LIMITS).unwrap_err();
        assert!(e.to_string().contains("documents no endpoint"), "{e}");
    }

    #[test]
    fn tags_and_data_source() {
        let p = plan(
            "orders",
            &[q("tags", Op::Has, texts(&["VIP", "團購"])), Qual { column: "pos_shop_id".into(), op: Op::IsNull, values: Some(vec![]) }],
            Some(5),
        );
        assert_eq!(p.request.describe(), "GET /v1/orders?tags=VIP,團購&data_source=ec&per_page=5 (first 5 rows)");
        let p = plan("orders", &[Qual { column: "pos_shop_id".into(), op: Op::IsNotNull, values: Some(vec![]) }], None);
        assert_eq!(p.request.describe(), "GET /v1/orders?data_source=pos&per_page=50");
    }

    #[test]
    fn values_the_api_cannot_say_stay_local() {
        // A list value holding the separator: the column stays local, and LIMIT with it.
        let p = plan("orders", &[q("financial_status", Op::Eq, texts(&["paid", "x,cod"]))], Some(10));
        assert_eq!((p.request.describe(), p.exact), ("GET /v1/orders?per_page=50".to_string(), false));
        for odd in ["a,b", " paid", "paid ", "", "pa\nid"] {
            let p = plan("stock_invoices", &[q("status", Op::Eq, texts(&[odd]))], Some(3));
            assert_eq!((p.request.describe(), p.exact), ("GET /v1/stock_invoices?per_page=50".to_string(), false), "{odd:?}");
            let p = plan("customers", &[q("email", Op::Eq, texts(&[odd]))], None);
            assert!(matches!(p.request, RequestPlan::List { .. }), "{odd:?}: no lookup");
        }
        // Non-ASCII, `+`, `%` and inner spaces are fine: they are percent-encoded when sent.
        let p = plan("orders", &[q("tags", Op::Has, texts(&["團購 A+", "100%"]))], Some(5));
        assert!(p.exact && p.request.describe().contains("tags=團購 A+,100%"), "{}", p.request.describe());
        // ±infinity and bounds beyond year 9999 stay local; finite ones on the column narrow.
        for far in [i64::MAX, i64::MIN + 946_684_800_000_000, 253_402_300_800 * 1_000_000] {
            let p = plan("orders", &[q("created_at", Op::Lt, vec![Value::Time(far)])], Some(5));
            assert_eq!((p.request.describe(), p.exact), ("GET /v1/orders?per_page=50".to_string(), false));
        }
        let p = plan("orders", &[q("created_at", Op::Gt, vec![Value::Time(i64::MIN)]), q("created_at", Op::Lt, vec![Value::Time(NOV21)])], None);
        assert_eq!((p.request.describe(), p.pushed.clone()), ("GET /v1/orders?end_time=2026-11-20 23:59:59&per_page=50".to_string(), vec![1]));
    }

    #[test]
    fn parameters_are_percent_encoded_except_list_commas() {
        let p = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(url_path("/v1/orders", &[]), "/v1/orders");
        assert_eq!(
            url_path("/v1/customers/get_customer_id", &p(&[("customer_emails", "a+b@x.tw,c d@x.tw")])),
            "/v1/customers/get_customer_id?customer_emails=a%2Bb%40x.tw,c+d%40x.tw"
        );
        assert_eq!(
            url_path("/v1/orders", &p(&[("start_time", "2026-11-21 00:00:00"), ("tags", "團購,100%")])),
            "/v1/orders?start_time=2026-11-21+00%3A00%3A00&tags=%E5%9C%98%E8%B3%BC,100%25"
        );
    }

    #[test]
    fn operators_round_trip_through_their_sql() {
        for op in ALL_OPS {
            assert_eq!(Op::from_sql(op.sql()), Some(op));
        }
        assert_eq!(Op::from_sql("~~"), None);
    }

    #[test]
    fn request_counts() {
        assert_eq!(plan("orders", &[], None).request.requests(5000.0), 100.0);
        assert_eq!(plan("orders", &[], Some(10)).request.requests(5000.0), 1.0);
        assert_eq!(plan("orders", &[q("id", Op::Eq, ints(&[1, 2, 3]))], None).request.requests(5000.0), 3.0);
    }
}
