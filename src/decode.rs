//! Decoding: API response bodies into rows, and JSON values into typed cells. Pure Rust; the FFI
//! layer only turns finished cells into Datums.

use serde_json::Value;
use std::fmt;

/// Seconds from 1970-01-01 UTC to Postgres's epoch, 2000-01-01 UTC.
pub const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;

/// The Postgres type a column is decoded into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
    Text,
    Bool,
    TimestampTz,
    Timestamp,
    Date,
    Jsonb,
    Json,
}

impl Target {
    pub fn sql(self) -> &'static str {
        match self {
            Target::Int2 => "smallint",
            Target::Int4 => "integer",
            Target::Int8 => "bigint",
            Target::Numeric => "numeric",
            Target::Float4 => "real",
            Target::Float8 => "double precision",
            Target::Text => "text",
            Target::Bool => "boolean",
            Target::TimestampTz => "timestamp with time zone",
            Target::Timestamp => "timestamp",
            Target::Date => "date",
            Target::Jsonb => "jsonb",
            Target::Json => "json",
        }
    }
}

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The whole row object (`raw`).
    Raw,
    /// A path inside the row object.
    Own(Vec<String>),
    /// A path inside the parent object of a child row (`^id`).
    Parent(Vec<String>),
    /// Not read by the query: left NULL without decoding.
    Skip,
}

impl Source {
    /// Parses a catalog/`json_path` path: `statuses.financial_status`, `^id`.
    pub fn parse(path: &str) -> Source {
        match path.strip_prefix('^') {
            Some(rest) => Source::Parent(rest.split('.').map(str::to_string).collect()),
            None => Source::Own(path.split('.').map(str::to_string).collect()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ColumnSpec {
    pub name: String,
    pub target: Target,
    pub source: Source,
}

/// A decoded value, ready for the FFI layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    /// Decimal text (`9999.0`), parsed by numeric_in.
    Numeric(String),
    Text(String),
    Bool(bool),
    /// Microseconds since 2000-01-01 00:00:00 UTC (timestamptz) or local (timestamp).
    Timestamp(i64),
    /// Days since 2000-01-01.
    Date(i32),
    Json(Value),
}

/// A value that does not fit its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub column: String,
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column \"{}\": value {} does not fit {}", self.column, self.value, self.expected)
    }
}

/// Offset from UTC of local wall-clock times in the server's `time_zone`.
pub trait Zone {
    /// `local_secs`: seconds since 1970-01-01 of the local wall-clock time. Returns seconds east
    /// of UTC that apply at that local time.
    fn offset_at_local(&self, local_secs: i64) -> i64;
}

/// A zone without daylight saving: Asia/Taipei has been UTC+8 since 1979.
pub struct FixedZone(pub i64);

impl Zone for FixedZone {
    fn offset_at_local(&self, _local_secs: i64) -> i64 {
        self.0
    }
}

pub const TAIPEI: FixedZone = FixedZone(8 * 3600);

fn show(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 80 {
        let mut cut = 77;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `YYYY-MM-DD` to days since 1970.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&s[0..4])?;
    let m = digits(&s[5..7])? as u32;
    let d = digits(&s[8..10])? as u32;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// A parsed platform timestamp: local seconds since 1970, microseconds, and an explicit
/// offset when the string carried one (`Z`, `+08:00`).
pub struct LocalTime {
    pub secs: i64,
    pub micros: i64,
    pub offset: Option<i64>,
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff][Z|±HH:MM]` (a `T` separator is accepted too).
pub fn parse_timestamp(s: &str) -> Option<LocalTime> {
    if s.len() < 19 {
        return None;
    }
    let days = parse_date(s.get(0..10)?)?;
    let sep = s.as_bytes()[10];
    if sep != b' ' && sep != b'T' {
        return None;
    }
    let t = s.get(11..19)?;
    let tb = t.as_bytes();
    if tb[2] != b':' || tb[5] != b':' {
        return None;
    }
    let (h, mi, se) = (digits(&t[0..2])?, digits(&t[3..5])?, digits(&t[6..8])?);
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let mut f = frac[..n.min(6)].to_string();
        while f.len() < 6 {
            f.push('0');
        }
        micros = f.parse().ok()?;
        rest = &frac[n..];
    }
    let offset = match rest.trim() {
        "" => None,
        "Z" | "z" => Some(0),
        z => {
            let sign = match z.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = z[1..].replace(':', "");
            if hm.len() != 4 || !hm.is_ascii() {
                return None;
            }
            Some(sign * (digits(&hm[0..2])? * 3600 + digits(&hm[2..4])? * 60))
        }
    };
    Some(LocalTime { secs: days * 86400 + h * 3600 + mi * 60 + se, micros, offset })
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    let mut cur = v;
    for k in path {
        match cur.get(k.as_str()) {
            Some(x) => cur = x,
            None => return &Value::Null,
        }
    }
    cur
}

/// Decodes one JSON value into a cell of type `target`.
pub fn convert(v: &Value, target: Target, column: &str, zone: &dyn Zone) -> Result<Cell, Mismatch> {
    let bad = || Mismatch { column: column.to_string(), value: show(v), expected: target.sql() };
    if v.is_null() {
        return Ok(Cell::Null);
    }
    Ok(match target {
        Target::Jsonb | Target::Json => Cell::Json(v.clone()),
        Target::Int2 | Target::Int4 | Target::Int8 => {
            let n = match v {
                Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(bad)?;
            let fits = match target {
                Target::Int2 => i16::try_from(n).is_ok(),
                Target::Int4 => i32::try_from(n).is_ok(),
                _ => true,
            };
            if !fits {
                return Err(bad());
            }
            Cell::Int(n)
        }
        Target::Numeric => match v {
            Value::Number(n) => Cell::Numeric(n.to_string()),
            Value::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => Cell::Numeric(s.trim().to_string()),
            Value::String(s) if s.trim().is_empty() => Cell::Null,
            _ => return Err(bad()),
        },
        Target::Float4 | Target::Float8 => match v {
            Value::Number(n) => Cell::Float(n.as_f64().ok_or_else(bad)?),
            Value::String(s) => Cell::Float(s.trim().parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        Target::Text => match v {
            Value::String(s) => Cell::Text(s.clone()),
            Value::Number(n) => Cell::Text(n.to_string()),
            Value::Bool(b) => Cell::Text(b.to_string()),
            other => Cell::Text(other.to_string()),
        },
        Target::Bool => match v {
            Value::Bool(b) => Cell::Bool(*b),
            Value::String(s) if s == "true" => Cell::Bool(true),
            Value::String(s) if s == "false" => Cell::Bool(false),
            Value::Number(n) if n.as_i64() == Some(0) => Cell::Bool(false),
            Value::Number(n) if n.as_i64() == Some(1) => Cell::Bool(true),
            _ => return Err(bad()),
        },
        Target::Date => match v {
            Value::String(s) if s.trim().is_empty() => Cell::Null,
            Value::String(s) => {
                let days = parse_date(s.get(0..10).ok_or_else(bad)?).ok_or_else(bad)?;
                if s.len() > 10 && parse_timestamp(s).is_none() {
                    return Err(bad());
                }
                Cell::Date((days - PG_EPOCH_UNIX_SECS / 86400) as i32)
            }
            _ => return Err(bad()),
        },
        Target::TimestampTz | Target::Timestamp => match v {
            Value::String(s) if s.trim().is_empty() => Cell::Null,
            Value::String(s) => {
                let t = parse_timestamp(s.trim())
                    .or_else(|| parse_date(s.trim()).map(|d| LocalTime { secs: d * 86400, micros: 0, offset: None }))
                    .ok_or_else(bad)?;
                let secs = if target == Target::Timestamp { t.secs } else { t.secs - t.offset.unwrap_or_else(|| zone.offset_at_local(t.secs)) };
                Cell::Timestamp((secs - PG_EPOCH_UNIX_SECS) * 1_000_000 + t.micros)
            }
            _ => return Err(bad()),
        },
    })
}

/// How rows sit in a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Key of the object holding the rows (`product_feeds`), or None for a bare array; a
    /// single object (a get-by-id answer, `/shop`'s `shop_info`) is one row.
    pub rows_at: Option<String>,
    /// For child tables: the array inside each parent row whose elements are the rows.
    pub child_array: Option<String>,
    /// The body is a page of a list, which the API answers with a JSON array: anything else
    /// (an object, `null`) is an error, never a row.
    pub array: bool,
}

/// One row: its object, and for a child row the parent object (without the child array).
#[derive(Debug, Clone)]
pub struct Row {
    pub value: Value,
    pub parent: Option<std::rc::Rc<Value>>,
}

impl Row {
    /// The object's id: a number, or a string of digits (older payloads send small numbers
    /// as strings).
    pub fn id(&self) -> Option<i64> {
        match self.value.get("id")? {
            Value::String(s) if !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
            v => v.as_i64(),
        }
    }
}

/// Why a body could not be read as rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub String);

/// Splits a response body into rows. `null` and `[]` (the platform's "nothing found") are no rows.
pub fn rows(body: &[u8], shape: &Shape) -> Result<Vec<Row>, BodyError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let preview = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        BodyError(format!("the API answered with malformed JSON ({e}) starting {preview:?}"))
    })?;
    let v = match (&shape.rows_at, v) {
        (Some(k), Value::Object(mut m)) => m.remove(k.as_str()).unwrap_or(Value::Null),
        (_, v) => v,
    };
    let items = match v {
        Value::Array(a) => a,
        other if shape.array => return Err(BodyError(format!("expected a JSON array (a page of the list), got {}", show(&other)))),
        Value::Null => Vec::new(),
        obj @ Value::Object(_) => vec![obj],
        other => return Err(BodyError(format!("expected a JSON array or object of rows, got {}", show(&other)))),
    };
    let Some(child) = &shape.child_array else {
        return Ok(items.into_iter().map(|value| Row { value, parent: None }).collect());
    };
    let mut out = Vec::new();
    for mut parent in items {
        let children = match parent.get_mut(child.as_str()).map(Value::take) {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        let parent = std::rc::Rc::new(parent);
        out.extend(children.into_iter().map(|value| Row { value, parent: Some(parent.clone()) }));
    }
    Ok(out)
}

/// Decodes the columns of one row.
pub fn decode_row(row: &Row, columns: &[ColumnSpec], zone: &dyn Zone, out: &mut Vec<Cell>) -> Result<(), Mismatch> {
    out.clear();
    for c in columns {
        let cell = match &c.source {
            Source::Skip => Cell::Null,
            Source::Raw => match c.target {
                Target::Jsonb | Target::Json | Target::Text => convert(&row.value, c.target, &c.name, zone)?,
                _ => return Err(Mismatch { column: c.name.clone(), value: "(the whole object)".into(), expected: c.target.sql() }),
            },
            Source::Own(path) => convert(lookup(&row.value, path), c.target, &c.name, zone)?,
            Source::Parent(path) => match &row.parent {
                Some(p) => convert(lookup(p, path), c.target, &c.name, zone)?,
                None => Cell::Null,
            },
        };
        out.push(cell);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(v: Value, t: Target) -> Result<Cell, Mismatch> {
        convert(&v, t, "c", &TAIPEI)
    }

    /// A multibyte character in a timestamp's offset panicked (found reading the code; the
    /// property tests now cover timestamps of any text).
    #[test]
    fn timestamps_with_multibyte_offsets_are_refused() {
        assert!(parse_timestamp("2026-11-28 12:00:00+0é8").is_none());
        assert!(parse_timestamp("2026-11-28 12:00:00-é:00").is_none());
        assert!(convert(&json!("2026-11-28 12:00:00+0é8"), Target::TimestampTz, "t", &TAIPEI).is_err());
    }

    #[test]
    fn taipei_timestamps_become_utc_across_day_boundaries() {
        // 2026-11-28 07:59:59 in Taipei is 2026-11-27 23:59:59 UTC.
        let Cell::Timestamp(us) = conv(json!("2026-11-28 07:59:59"), Target::TimestampTz).unwrap() else { panic!() };
        let utc = us / 1_000_000 + PG_EPOCH_UNIX_SECS;
        assert_eq!(utc, days_from_civil(2026, 11, 27) * 86400 + 23 * 3600 + 59 * 60 + 59);
        let Cell::Timestamp(us) = conv(json!("2026-01-01 00:00:00"), Target::TimestampTz).unwrap() else { panic!() };
        assert_eq!(us / 1_000_000 + PG_EPOCH_UNIX_SECS, days_from_civil(2025, 12, 31) * 86400 + 16 * 3600);
        // An explicit zone wins over the server's.
        let Cell::Timestamp(a) = conv(json!("2026-11-28T00:00:00Z"), Target::TimestampTz).unwrap() else { panic!() };
        assert_eq!(a / 1_000_000 + PG_EPOCH_UNIX_SECS, days_from_civil(2026, 11, 28) * 86400);
        let Cell::Timestamp(b) = conv(json!("2026-11-28 08:00:00.5"), Target::TimestampTz).unwrap() else { panic!() };
        assert_eq!(b - a, 500_000);
        assert_eq!(conv(json!(""), Target::TimestampTz).unwrap(), Cell::Null);
        assert!(conv(json!("2026-02-30 00:00:00"), Target::TimestampTz).is_err());
        assert!(conv(json!("yesterday"), Target::TimestampTz).is_err());
    }

    #[test]
    fn values_that_do_not_fit_are_mismatches() {
        assert_eq!(conv(json!(56943817), Target::Int8).unwrap(), Cell::Int(56943817));
        assert_eq!(conv(json!("1101"), Target::Int8).unwrap(), Cell::Int(1101));
        assert_eq!(conv(json!(9999.0), Target::Int4).unwrap(), Cell::Int(9999));
        let e = conv(json!(70000), Target::Int2).unwrap_err();
        assert_eq!(e.to_string(), "column \"c\": value 70000 does not fit smallint");
        assert!(conv(json!("abc"), Target::Int8).is_err());
        assert!(conv(json!(1.5), Target::Int8).is_err());
        assert!(conv(json!({"a": 1}), Target::Numeric).is_err());
        assert_eq!(conv(json!(9999.0), Target::Numeric).unwrap(), Cell::Numeric("9999.0".into()));
        assert_eq!(conv(json!(0.1), Target::Numeric).unwrap(), Cell::Numeric("0.1".into()));
        assert_eq!(conv(json!(true), Target::Bool).unwrap(), Cell::Bool(true));
        assert!(conv(json!("yes"), Target::Bool).is_err());
        assert_eq!(conv(json!("1990-01-01"), Target::Date).unwrap(), Cell::Date(-3652));
        assert_eq!(conv(json!(null), Target::Int8).unwrap(), Cell::Null);
        assert_eq!(conv(json!("哥本組"), Target::Text).unwrap(), Cell::Text("哥本組".into()));
        let long = "x".repeat(500);
        assert!(conv(json!(long), Target::Int8).unwrap_err().value.len() <= 83);
    }

    #[test]
    fn bodies_split_into_rows() {
        let shape = Shape { rows_at: None, child_array: None, array: false };
        assert_eq!(rows(b"[{\"id\":1},{\"id\":2}]", &shape).unwrap().len(), 2);
        assert!(rows(b"null", &shape).unwrap().is_empty());
        assert!(rows(b"[]", &shape).unwrap().is_empty());
        assert_eq!(rows(b"{\"id\":3}", &shape).unwrap()[0].id(), Some(3));
        assert!(rows(b"[{\"id\":1}", &shape).unwrap_err().0.contains("malformed JSON"));
        assert!(rows(b"42", &shape).is_err());
        // A page of a list must be an array: an object or null is an error, not a row.
        let page = Shape { array: true, ..shape.clone() };
        assert_eq!(rows(b"[{\"id\":1}]", &page).unwrap().len(), 1);
        assert_eq!(rows(b"{\"id\":3}", &page).unwrap_err().0, "expected a JSON array (a page of the list), got {\"id\":3}");
        assert!(rows(b"null", &page).unwrap_err().0.contains("got null"));
        let feeds = Shape { rows_at: Some("product_feeds".into()), child_array: None, array: false };
        assert_eq!(rows(br#"{"product_feeds":[{"name":"a"},{"name":"b"}]}"#, &feeds).unwrap().len(), 2);
        let items = Shape { rows_at: None, child_array: Some("line_items".into()), array: false };
        let r = rows(br#"[{"id":7,"line_items":[{"id":70},{"id":71}]},{"id":8,"line_items":[]}]"#, &items).unwrap();
        assert_eq!(r.len(), 2);
        let cols = vec![
            ColumnSpec { name: "id".into(), target: Target::Int8, source: Source::parse("id") },
            ColumnSpec { name: "order_id".into(), target: Target::Int8, source: Source::parse("^id") },
            ColumnSpec { name: "raw".into(), target: Target::Jsonb, source: Source::Raw },
        ];
        let mut out = Vec::new();
        decode_row(&r[1], &cols, &TAIPEI, &mut out).unwrap();
        assert_eq!(out[..2], [Cell::Int(71), Cell::Int(7)]);
        assert_eq!(out[2], Cell::Json(json!({"id": 71})));
    }
}
