//! Verification of a replica against the API, the Postgres side: the API's X-Total of an
//! `updated_at` range, and the replica's side of the same ranges, read as the table's owner.
//! What to count, where to bisect and what to repair is `sql/verify.sql`.

use super::replica::{as_table_owner, resource, server_zone, READ};
use super::table::table_info;
use super::{cstr, datum, raise, OrRaise};
use crate::error::FdwError;
use crate::options::TableSource;
use crate::plan::{self, Limits, Op, Qual, Query, RequestPlan, Value};
use crate::replica;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{Array, JsonB};

/// Microseconds since 1970 of a timestamp (the planner's `Value::Time`).
fn unix_micros(t: TimestampWithTimeZone) -> i64 {
    pg_sys::TimestampTz::from(t).saturating_add(crate::decode::PG_EPOCH_UNIX_SECS * 1_000_000)
}

/// Raises unless `relid` is a foreign table of this wrapper that the current user may read
/// (SELECT on it, USAGE on its schema: the count is a read of it, made with the user's own
/// mapping). Locks it as a query would.
fn check_readable(relid: pg_sys::Oid) {
    // SAFETY: locks the relation as a SELECT would (a relation dropped meanwhile is then gone
    // from the catalogs), then catalog lookups on the main thread; a missing relation gives
    // relkind 0 and namespace InvalidOid (refused below before anything else is read).
    let (kind, allowed) = unsafe {
        pg_sys::LockRelationOid(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let kind = pg_sys::get_rel_relkind(relid) as u8;
        let user = pg_sys::GetUserId();
        let schema = pg_sys::get_rel_namespace(relid);
        let allowed = kind == pg_sys::RELKIND_FOREIGN_TABLE
            && pg_sys::pg_namespace_aclcheck(schema, user, pg_sys::ACL_USAGE as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
            && pg_sys::pg_class_aclcheck(relid, user, pg_sys::ACL_SELECT as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK;
        (kind, allowed)
    };
    let ours = allowed
        // SAFETY: an existing foreign table, locked above: its catalog entries, its server and
        // wrapper.
        && unsafe {
            let ft = pg_sys::GetForeignTable(relid);
            let fdw = pg_sys::GetForeignDataWrapper((*pg_sys::GetForeignServer((*ft).serverid)).fdwid);
            cstr((*fdw).fdwname) == "cyberbiz_fdw"
        };
    if kind != pg_sys::RELKIND_FOREIGN_TABLE || !ours {
        raise(FdwError::BadArgument {
            message: format!("relation {} is not a CYBERBIZ foreign table you may read", relid.to_u32()),
            hint: "Count through a foreign table of cyberbiz_fdw on which you have SELECT (and USAGE on its schema).".into(),
        });
    }
}

/// The API's count (X-Total, one request now, never cached) of the rows of CYBERBIZ foreign
/// table `source` with `updated_at` in [`since`, `before`) (a NULL bound is open: with both
/// NULL, every row). NULL when the API's list gives no total. An error when the API cannot
/// filter the table by `updated_at` exactly (the count would be of other rows).
#[pg_extern(volatile)]
fn cyberbiz_fdw_api_count(source: pg_sys::Oid, since: Option<TimestampWithTimeZone>, before: Option<TimestampWithTimeZone>) -> Option<i64> {
    check_readable(source);
    let info = table_info(source, pg_sys::InvalidOid);
    let time = |op, t: TimestampWithTimeZone| Qual { column: "updated_at".into(), op, values: Some(vec![Value::Time(unix_micros(t))]) };
    let quals: Vec<Qual> = since.map(|t| time(Op::Ge, t)).into_iter().chain(before.map(|t| time(Op::Lt, t))).collect();
    let zone = datum::zone_for(&info.server.time_zone);
    let limits = Limits::for_server(&info.server, zone.as_ref());
    let p = plan::plan_scan(&info.name, &info.source, &Query { quals, local_only: 0, limit: None }, &limits).or_raise();
    if !p.exact || !matches!(info.source, TableSource::Resource(_)) {
        raise(FdwError::BadArgument {
            message: format!("the CYBERBIZ API cannot count the rows of {} by updated_at", info.name),
            hint: "Count a resource whose list filters by updated_at (orders, customers), or the whole table.".into(),
        });
    }
    match p.request {
        RequestPlan::Nothing => Some(0),
        ref request => super::paths::list_total(&info, request).or_raise().map(|n| n as i64),
    }
}

/// The live rows of replica table `resource` in `schema` with `updated_at` in [`since`,
/// `before`) (`replica::span_sql`): how many, the cut points splitting them into `parts` about
/// equal parts, and the live rows without `updated_at`. Read as the table's owner.
#[pg_extern(volatile)]
fn cyberbiz_fdw_replica_span(
    resource: &str,
    schema: &str,
    since: Option<TimestampWithTimeZone>,
    before: Option<TimestampWithTimeZone>,
    parts: i32,
) -> TableIterator<'static, (name!(rows, i64), name!(cuts, Vec<TimestampWithTimeZone>), name!(undated, i64))> {
    let r = self::resource(resource);
    if !(1..=64).contains(&parts) {
        raise(FdwError::BadArgument { message: format!("parts must be 1 to 64, not {parts}"), hint: "Cut a range into at most 64 parts.".into() });
    }
    let sql = replica::span_sql(r, schema);
    let fractions: Vec<f64> = (1..parts).map(|k| k as f64 / parts as f64).collect();
    let read = as_table_owner(schema, r.name, READ, || {
        Spi::connect(|c| {
            c.select(sql.as_str(), None, &[since.into(), before.into(), fractions.into()])?.first().get_three::<i64, Vec<TimestampWithTimeZone>, i64>()
        })
    });
    let (rows, cuts, undated) = read.unwrap_or_else(|e| error!("cyberbiz_fdw: reading the replica's {} failed: {e}", r.name));
    TableIterator::once((rows.unwrap_or(0), cuts.unwrap_or_default(), undated.unwrap_or(0)))
}

/// Compares the API's objects `objects` of one `updated_at` range [`since`, `before`) of
/// replica table `resource` in `schema` (decoded as the sync decodes them, in `server`'s time
/// zone) with the replica (`replica::compare_sql`, as the table's owner): the positions (from
/// 1) of the objects the replica lacks or holds older, and the ids of the range's live rows
/// written before `written_before` that the API did not list. A table without a key: every
/// position when its rows are not the objects, else none.
#[pg_extern(volatile)]
fn cyberbiz_fdw_replica_compare(
    server: &str,
    resource: &str,
    schema: &str,
    since: Option<TimestampWithTimeZone>,
    before: Option<TimestampWithTimeZone>,
    objects: Array<'_, JsonB>,
    written_before: TimestampWithTimeZone,
) -> TableIterator<'static, (name!(stale, Vec<i32>), name!(unseen, Vec<i64>))> {
    let r = self::resource(resource);
    let Some(sql) = replica::compare_sql(r, schema) else {
        raise(FdwError::BadArgument { message: format!("replica table {} is compared with its parent", r.name), hint: "Compare the parent table.".into() })
    };
    let (ids, stamps) = if replica::key(r).is_empty() { (vec![], vec![]) } else { id_stamps(r, server, &objects) };
    let array_oid = Array::<JsonB>::type_oid();
    // SAFETY: each value's type is the oid it is declared with.
    let args = unsafe {
        [
            DatumWithOid::new(since, pg_sys::TIMESTAMPTZOID),
            DatumWithOid::new(before, pg_sys::TIMESTAMPTZOID),
            DatumWithOid::new(ids, pg_sys::INT8ARRAYOID),
            DatumWithOid::new(stamps, pg_sys::TEXTARRAYOID),
            DatumWithOid::new(written_before, pg_sys::TIMESTAMPTZOID),
            DatumWithOid::new(objects, array_oid),
        ]
    };
    let read = as_table_owner(schema, r.name, READ, || Spi::connect(|c| c.select(sql.as_str(), None, &args)?.first().get_two::<Vec<i32>, Vec<i64>>()));
    let (stale, unseen) = read.unwrap_or_else(|e| error!("cyberbiz_fdw: comparing the replica's {} failed: {e}", r.name));
    TableIterator::once((stale.unwrap_or_default(), unseen.unwrap_or_default()))
}

/// The id and `updated_at` (as timestamp text, or NULL) of each object, decoded as the apply
/// decodes it; an object without a numeric id gets id 0 (no row has it). A value that does
/// not fit its column raises as the apply would.
fn id_stamps(r: &'static crate::catalog::Resource, server: &str, objects: &Array<'_, JsonB>) -> (Vec<i64>, Vec<Option<String>>) {
    let zone = server_zone(server);
    let mut ids = Vec::with_capacity(objects.len());
    let mut stamps = Vec::with_capacity(objects.len());
    for o in objects.iter() {
        let o = o.map(|j| j.0).unwrap_or(serde_json::Value::Null);
        let row = match replica::decode_object(r, &o, zone.as_ref()) {
            Ok(rows) => rows.into_iter().next().unwrap_or_default(),
            Err(m) => {
                let row_id = o.get("id").map(|v| v.to_string()).unwrap_or_else(|| "(none)".into());
                raise(FdwError::ValueMismatch { table: r.name.to_string(), column: m.column, row_id, value: m.value, expected: m.expected })
            }
        };
        ids.push(row.get("id").and_then(|v| v.as_i64()).unwrap_or(0));
        stamps.push(row.get("updated_at").and_then(|v| v.as_str()).map(String::from));
    }
    (ids, stamps)
}

extension_sql_file!(
    "../../sql/verify.sql",
    name = "verify",
    requires = ["replica", cyberbiz_fdw_api_count, cyberbiz_fdw_replica_span, cyberbiz_fdw_replica_compare]
);
