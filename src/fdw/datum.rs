//! Datum conversion, both ways: decoded cells -> Datums of a foreign table's columns (scans and
//! RETURNING), Datums -> planner values (pushed quals) and -> JSON (write bodies).

use super::{cstr, def_options, raise, TableInfo};
use crate::decode::{self, Cell, ColumnSpec, Row, Source, Target, Zone, PG_EPOCH_UNIX_SECS};
use crate::error::FdwError;
use crate::options::TableSource;
use crate::plan::Value;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CString;

/// Microseconds from 1970 to Postgres's 2000 epoch.
const PG_EPOCH_US: i64 = PG_EPOCH_UNIX_SECS * 1_000_000;

/// A Postgres column as the decoder and the slot filler see it.
pub(crate) struct PgColumn {
    pub typoid: pg_sys::Oid,
    pub typmod: i32,
    pub input: pg_sys::FmgrInfo,
    pub ioparam: pg_sys::Oid,
    pub dropped: bool,
}

/// A zone with daylight-saving rules, answered by Postgres's own zone database.
struct PgZone(*mut pg_sys::pg_tz);

impl Zone for PgZone {
    fn offset_at_local(&self, local_secs: i64) -> i64 {
        let days = local_secs.div_euclid(86400);
        let tod = local_secs.rem_euclid(86400);
        let (y, m, d) = decode::civil_from_days(days);
        // SAFETY: a zeroed pg_tm is a valid broken-down time; DetermineTimeZoneOffset only reads
        // it and the zone (from pg_tzset, never freed); called on the backend's main thread.
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

/// The zone `name` (the server's `time_zone`, checked by the validator); Taipei if unknown.
pub(crate) fn zone_for(name: &str) -> Box<dyn Zone> {
    if name == "Asia/Taipei" {
        return Box::new(decode::TAIPEI);
    }
    let c = CString::new(name).unwrap_or_default();
    // SAFETY: pg_tzset reads the NUL-terminated name and returns a cached zone or NULL.
    let tz = unsafe { pg_sys::pg_tzset(c.as_ptr()) };
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

/// The `json_path` option of column `attno` of foreign table `relid`, if set.
pub(crate) fn json_path_option(relid: pg_sys::Oid, attno: i16) -> Option<String> {
    // SAFETY: a catalog lookup of an existing column (callers pass attnos of the relation);
    // returns a palloc'd list read at once.
    let opts = unsafe { def_options(pg_sys::GetForeignColumnOptions(relid, attno)) };
    opts.into_iter().find(|(k, _)| k == "json_path").map(|(_, v)| v)
}

/// The decoder's view (specs) and the slot filler's view (input functions) of `rel`'s columns.
///
/// # Safety
/// `rel` must be an open relation (its tuple descriptor is read).
pub(crate) unsafe fn build_columns(rel: pg_sys::Relation, info: &TableInfo) -> (Vec<ColumnSpec>, Vec<PgColumn>) {
    // SAFETY: the caller guarantees `rel` is open; rd_att has natts attributes.
    let (relid, attrs) = unsafe {
        let tupdesc = (*rel).rd_att;
        ((*rel).rd_id, (*tupdesc).attrs.as_slice((*tupdesc).natts as usize))
    };
    let mut specs = Vec::with_capacity(attrs.len());
    let mut cols = Vec::with_capacity(attrs.len());
    for (i, a) in attrs.iter().enumerate() {
        // SAFETY: attname is a NUL-terminated NameData.
        let name = unsafe { cstr(a.attname.data.as_ptr()) };
        let json_path = json_path_option(relid, (i + 1) as i16);
        specs.push(ColumnSpec { name: name.clone(), target: target_of(a.atttypid), source: source_for(&name, json_path.as_deref(), &info.source) });
        let (mut func, mut ioparam) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
        // SAFETY: FmgrInfo is plain data; zeroed is its "not set" state, filled by fmgr_info.
        let mut input: pg_sys::FmgrInfo = unsafe { std::mem::zeroed() };
        if !a.attisdropped {
            // SAFETY: catalog lookups for the column's existing type, on the main thread.
            unsafe {
                pg_sys::getTypeInputInfo(a.atttypid, &mut func, &mut ioparam);
                pg_sys::fmgr_info(func, &mut input);
            }
        }
        cols.push(PgColumn { typoid: a.atttypid, typmod: a.atttypmod, input, ioparam, dropped: a.attisdropped });
    }
    (specs, cols)
}

/// A Datum from text through the column's input function (raises on bad input).
fn input(col: &mut PgColumn, text: &str) -> pg_sys::Datum {
    let c = CString::new(text.replace('\0', "")).unwrap_or_default();
    // SAFETY: `col.input` was filled by fmgr_info for this type; the string is NUL-terminated.
    unsafe { pg_sys::InputFunctionCall(&mut col.input, c.as_ptr() as *mut std::ffi::c_char, col.ioparam, col.typmod) }
}

/// A text Datum holding `s` (a palloc'd copy).
fn text_datum(s: &str) -> pg_sys::Datum {
    let s = s.replace('\0', "");
    // SAFETY: copies `s.len()` bytes from a live buffer into a new text in the current context.
    pg_sys::Datum::from(unsafe { pg_sys::cstring_to_text_with_len(s.as_ptr() as *const std::ffi::c_char, s.len() as i32) })
}

/// Turns a decoded cell into a Datum of the column's type.
pub(crate) fn to_datum(cell: &Cell, col: &mut PgColumn) -> Option<pg_sys::Datum> {
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
        Cell::Text(s) if t == pg_sys::TEXTOID => text_datum(s),
        Cell::Text(s) => input(col, s),
        Cell::Bool(b) if t == pg_sys::BOOLOID => pg_sys::Datum::from(*b),
        Cell::Bool(b) => input(col, if *b { "true" } else { "false" }),
        Cell::Timestamp(us) => pg_sys::Datum::from(*us),
        Cell::Date(d) => pg_sys::Datum::from(*d),
        Cell::Json(v) if t == pg_sys::TEXTOID => text_datum(&v.to_string()),
        Cell::Json(v) => input(col, &v.to_string()),
    })
}

/// Decodes `row` into `slot` (scans and RETURNING alike); a value that does not fit its column
/// raises an ERROR naming table, column, row id and value.
///
/// # Safety
/// `slot` must be a valid virtual-capable slot whose descriptor has `columns.len()` attributes.
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
        let row_id = row.id().map(|i| i.to_string()).unwrap_or_else(|| "(none)".into());
        raise(FdwError::ValueMismatch { table: table.to_string(), column: m.column, row_id, value: m.value, expected: m.expected });
    }
    // SAFETY: the caller guarantees the slot; tts_values/tts_isnull have one entry per column.
    unsafe {
        pg_sys::ExecClearTuple(slot);
        for (i, cell) in cells.iter().enumerate() {
            let col = &mut columns[i];
            let d = if col.dropped { None } else { to_datum(cell, col) };
            *(*slot).tts_values.add(i) = d.unwrap_or(pg_sys::Datum::from(0usize));
            *(*slot).tts_isnull.add(i) = d.is_none();
        }
        pg_sys::ExecStoreVirtualTuple(slot);
    }
}

/// The planner value of a scalar Datum of type `typ`, for the types quals may push.
///
/// # Safety
/// `d` must be a valid, non-null Datum of type `typ`.
pub(crate) unsafe fn value_of(d: pg_sys::Datum, typ: pg_sys::Oid) -> Option<Value> {
    Some(match typ {
        t if t == pg_sys::INT8OID => Value::Int(d.value() as i64),
        t if t == pg_sys::INT4OID => Value::Int(d.value() as i32 as i64),
        t if t == pg_sys::INT2OID => Value::Int(d.value() as i16 as i64),
        // ±infinity (i64::MIN/MAX) saturate: the planner then keeps such a bound local.
        t if t == pg_sys::TIMESTAMPTZOID => Value::Time((d.value() as i64).saturating_add(PG_EPOCH_US)),
        t if t == pg_sys::TEXTOID || t == pg_sys::VARCHAROID || t == pg_sys::BPCHAROID => {
            // SAFETY: the caller guarantees a text-like varlena; text_to_cstring detoasts it.
            let v = unsafe { cstr(pg_sys::text_to_cstring(d.cast_mut_ptr())) };
            Value::Text(if t == pg_sys::BPCHAROID { v.trim_end().to_string() } else { v })
        }
        _ => return None,
    })
}

/// Values of a datum: a scalar, or the non-null elements of an array when `is_array`.
///
/// # Safety
/// `d` must be a valid, non-null Datum of type `typ` (an array type when `is_array`).
pub(crate) unsafe fn datum_values(d: pg_sys::Datum, typ: pg_sys::Oid, is_array: bool) -> Vec<Value> {
    if !is_array {
        // SAFETY: forwarded from the caller.
        return unsafe { value_of(d, typ) }.into_iter().collect();
    }
    // SAFETY: the caller guarantees an array Datum; it is detoasted, then deconstructed into
    // palloc'd element and null arrays of `n` entries, read within bounds.
    unsafe {
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
}

/// A column value as JSON, the way the API writes it (money as floats, local timestamps).
///
/// # Safety
/// `d` must be a valid, non-null Datum of type `typ`.
pub(crate) unsafe fn datum_json(d: pg_sys::Datum, typ: pg_sys::Oid, zone: &dyn Zone) -> serde_json::Value {
    use serde_json::Value as J;
    let text = || {
        let (mut func, mut varlena) = (pg_sys::InvalidOid, false);
        // SAFETY: the type's output function applied to a Datum of that type (caller's promise).
        unsafe {
            pg_sys::getTypeOutputInfo(typ, &mut func, &mut varlena);
            cstr(pg_sys::OidOutputFunctionCall(func, d))
        }
    };
    match typ {
        t if t == pg_sys::INT8OID => J::from(d.value() as i64),
        t if t == pg_sys::INT4OID => J::from(d.value() as i32),
        t if t == pg_sys::INT2OID => J::from(d.value() as i16),
        t if t == pg_sys::BOOLOID => J::from(d.value() != 0),
        t if t == pg_sys::NUMERICOID || t == pg_sys::FLOAT8OID || t == pg_sys::FLOAT4OID => {
            let s = text();
            s.parse::<f64>().ok().filter(|f| f.is_finite()).map(J::from).unwrap_or(J::String(s))
        }
        t if t == pg_sys::TIMESTAMPTZOID => J::from(crate::plan::local_text((d.value() as i64).div_euclid(1_000_000) + PG_EPOCH_UNIX_SECS, zone)),
        t if t == pg_sys::DATEOID => J::from(text()),
        t if t == pg_sys::JSONBOID || t == pg_sys::JSONOID => serde_json::from_str(&text()).unwrap_or(J::Null),
        _ => J::from(text()),
    }
}
