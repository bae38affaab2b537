//! The replica, the Postgres side: the SQL functions `sql/replica.sql` calls to create replica
//! tables and to decode API objects into their rows (the pure work is `crate::replica`).

use super::{datum, def_options, raise};
use crate::catalog::Resource;
use crate::error::FdwError;
use crate::options;
use crate::replica;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{Array, JsonB, PgOid};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::rc::Rc;

/// The catalog resource of a replica table, or an ERROR naming what the replica keeps.
pub(super) fn resource(name: &str) -> &'static Resource {
    match replica::find(name) {
        Ok(r) => r,
        Err(message) => raise(FdwError::BadArgument { message, hint: "See SELECT * FROM cyberbiz_replica_status.".into() }),
    }
}

/// The time zone of `server` (its `time_zone` option), in which zone-less API times are read.
pub(super) fn server_zone(server: &str) -> Box<dyn crate::decode::Zone> {
    let name = CString::new(server).unwrap_or_default();
    // SAFETY: catalog lookup on the main thread; missing_ok=false raises a clear ERROR.
    let opts = unsafe { def_options((*pg_sys::GetForeignServerByName(name.as_ptr(), false)).options) };
    let zone = options::parse_server(&opts, &|_| true).map(|s| s.time_zone).unwrap_or_else(|e| raise(e));
    datum::zone_for(&zone)
}

/// The rows of replica table `resource` in one API object, as JSON objects for
/// `jsonb_populate_record` (decoded as the FDW decodes API pages, in `server`'s time zone).
/// A value that does not fit its column raises 22P02 naming table, column, row id and value.
#[pg_extern(stable, parallel_safe)]
fn cyberbiz_fdw_decode(server: &str, resource: &str, object: JsonB) -> SetOfIterator<'static, JsonB> {
    let r = self::resource(resource);
    let zone = server_zone(server);
    match replica::decode_object(r, &object.0, zone.as_ref()) {
        Ok(rows) => SetOfIterator::new(rows.into_iter().map(|m| JsonB(serde_json::Value::Object(m)))),
        Err(m) => {
            let row_id = object.0.get("id").map(|v| v.to_string()).unwrap_or_else(|| "(none)".into());
            raise(FdwError::ValueMismatch { table: r.name.to_string(), column: m.column, row_id, value: m.value, expected: m.expected })
        }
    }
}

/// The replica's tables for `tables` (NULL: all), parents before their children: name, parent,
/// whether a sync asks for changes by `updated_at` (else refreshes whole), and its key columns.
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_replica_tables(
    tables: Option<Vec<String>>,
) -> TableIterator<'static, (name!(table_name, String), name!(parent, Option<String>), name!(incremental, bool), name!(key, Vec<String>))> {
    let list = replica::tables_for(tables.as_deref()).unwrap_or_else(|message| {
        raise(FdwError::BadArgument { message, hint: "Pass table names of IMPORT FOREIGN SCHEMA cyberbiz, or NULL for all.".into() })
    });
    TableIterator::new(list.into_iter().map(|r| {
        let key = replica::key(r).into_iter().map(String::from).collect();
        (r.name.to_string(), r.parent.as_ref().map(|p| p.resource.to_string()), replica::incremental(r), key)
    }))
}

/// The statements creating replica table `resource` in `schema` (idempotent).
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_replica_ddl(resource: &str, schema: &str) -> SetOfIterator<'static, String> {
    SetOfIterator::new(replica::create_sql(self::resource(resource), schema))
}

/// The statement creating the foreign table a sync reads `resource` through.
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_replica_source(resource: &str, source_schema: &str, server: &str) -> String {
    replica::source_sql(self::resource(resource), source_schema, server)
}

/// The statement applying the API objects `$2` (`jsonb[]`) to replica table `resource` in
/// `schema` and its children (`$1`: the server); `whole`: `$2` is every object of the shop.
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_replica_apply_sql(resource: &str, schema: &str, whole: bool) -> String {
    replica::apply_sql(self::resource(resource), schema, whole, false)
}

/// An apply statement's identity: schema, table, whole, creates.
type PlanKey = (String, String, bool, bool);

thread_local! {
    /// This backend's prepared apply statements, by (schema, table, whole, creates): a webhook's apply
    /// is planned once per session, not per delivery (planning the statement cost more than
    /// running it). Postgres's plan cache re-plans them when the tables change. Held by `Rc`
    /// so that no borrow of the map lasts while a statement runs (a trigger on a replica table
    /// may apply again).
    static APPLY_PLANS: RefCell<HashMap<PlanKey, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// Applies the API objects `objects` to replica table `resource` in `schema` and its children
/// (newest `updated_at` wins; `whole`: `objects` are every object of the shop, the only way a
/// table without a key is written; `creates`: they are creations, which never replace a row of
/// the same `updated_at`), with the statement `replica::apply_sql` gives, prepared once per
/// session. Returns rows written and the newest `updated_at` applied. The array is handed to the statement as it came
/// (its elements are never converted here).
#[pg_extern(volatile)]
fn cyberbiz_fdw_replica_apply(
    server: &str,
    resource: &str,
    schema: &str,
    whole: bool,
    objects: Array<'_, JsonB>,
    creates: default!(bool, false),
) -> TableIterator<'static, (name!(written, i64), name!(newest, Option<TimestampWithTimeZone>))> {
    let r = self::resource(resource);
    let key = (schema.to_string(), r.name.to_string(), whole, creates);
    let array_oid = Array::<JsonB>::type_oid();
    let result = Spi::connect_mut(|client| {
        let kept = APPLY_PLANS.with_borrow(|plans| plans.get(&key).cloned());
        let stmt = match kept {
            Some(stmt) => stmt,
            None => {
                let sql = replica::apply_sql(r, schema, whole, creates);
                let stmt = Rc::new(client.prepare_mut(sql.as_str(), &[PgOid::from(pg_sys::TEXTOID), PgOid::from(array_oid)])?.keep());
                APPLY_PLANS.with_borrow_mut(|plans| plans.insert(key, stmt.clone()));
                stmt
            }
        };
        // SAFETY: the values match the statement's declared parameter types (text, jsonb[]).
        let args = unsafe { [DatumWithOid::new(server, pg_sys::TEXTOID), DatumWithOid::new(objects, array_oid)] };
        as_table_owner(schema, r.name, WRITE, || client.update(&*stmt, None, &args)?.first().get_two::<i64, TimestampWithTimeZone>())
    });
    let (written, newest) = result.unwrap_or_else(|e: pgrx::spi::SpiError| error!("cyberbiz_fdw: the replica apply of {} failed: {e}", r.name));
    TableIterator::once((written.unwrap_or(0), newest))
}

/// Marks row `id` of replica table `resource` in `schema` deleted (`at`, else now), or for a
/// child table (order_line_items) deletes it: what a delete webhook does.
#[pg_extern(volatile)]
fn cyberbiz_fdw_replica_delete(resource: &str, schema: &str, id: i64, at: Option<TimestampWithTimeZone>) {
    let r = self::resource(resource);
    let sql = replica::delete_sql(r, schema);
    let done = as_table_owner(schema, r.name, WRITE, || Spi::connect_mut(|c| c.update(sql.as_str(), None, &[id.into(), at.into()]).map(|_| ())));
    done.unwrap_or_else(|e| error!("cyberbiz_fdw: the replica delete in {} failed: {e}", r.name))
}

/// The ids of live rows of replica table `resource` in `schema` that a whole refresh did not
/// see (`seen`: the ids it saw) and that were written before `before` (its start): each is to
/// be confirmed gone by the API before `cyberbiz_fdw_replica_delete` marks it. Read as the
/// table's owner, as the writes are (`replica::missing_sql`); empty for a table without ids.
#[pg_extern(volatile)]
fn cyberbiz_fdw_replica_missing(resource: &str, schema: &str, seen: Vec<i64>, before: TimestampWithTimeZone) -> Vec<i64> {
    let r = self::resource(resource);
    let Some(sql) = replica::missing_sql(r, schema) else { return vec![] };
    let found =
        as_table_owner(schema, r.name, READ, || Spi::connect(|c| c.select(sql.as_str(), None, &[seen.into(), before.into()])?.first().get_one::<Vec<i64>>()));
    found.unwrap_or_else(|e| error!("cyberbiz_fdw: reading the replica's {} failed: {e}", r.name)).unwrap_or_default()
}

/// The rights a reading (`READ`) or writing (`WRITE`) use of the replica's tables needs.
pub(super) const READ: u64 = pg_sys::ACL_SELECT as u64;
pub(super) const WRITE: u64 = (pg_sys::ACL_SELECT | pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE | pg_sys::ACL_DELETE) as u64;

/// Runs `f` as the owner of replica table `schema`.`table` (and its children, which must have
/// the same owner), in a security-restricted operation, when the caller is not that owner but
/// is a superuser or holds every right of `mode` (`READ`, `WRITE`) on all those tables anyway: the workers, an administrator's CALL or
/// a role granted the rights never write as themselves into tables another role owns, whose
/// triggers would then run with their rights. A caller without the rights writes as itself
/// (and Postgres refuses it). An ERROR inside ends the (sub)transaction, which restores the user.
pub(super) fn as_table_owner<R>(schema: &str, table: &str, mode: u64, f: impl FnOnce() -> R) -> R {
    let (mut user, mut context) = (pg_sys::Oid::INVALID, 0);
    // SAFETY: writes the two values it is given.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let Some((relid, owner, secured)) = table_owner(schema, table) else { return f() };
    // SAFETY: reads the current user's flag on the main thread.
    if mode == READ && secured && owner != user && !unsafe { pg_sys::superuser() } {
        // Read as the owner, its policies would not hide rows from the caller; read as the
        // caller, the owner's policy code would run with the caller's rights.
        error!("cyberbiz_fdw: replica table {schema}.{table} has row level security: compare it as its owner (or a superuser)");
    }
    let mut written = vec![relid];
    for child in replica::children(self::resource(table)) {
        match table_owner(schema, child.name) {
            Some((_, o, _)) if o != owner => {
                error!("cyberbiz_fdw: replica tables {schema}.{table} and {schema}.{} have different owners; give them one owner", child.name)
            }
            Some((r, _, _)) => written.push(r),
            None => {}
        }
    }
    // SAFETY: reads the current user's flag, and privileges from the catalogs, on the main thread.
    let entitled = unsafe { pg_sys::superuser() }
        || written.iter().all(|r| {
            let mode = mode as pg_sys::AclMode;
            // SAFETY: a privilege check of a relation just looked up, on the main thread.
            unsafe { pg_sys::pg_class_aclmask(*r, user, mode, pg_sys::AclMaskHow::ACLMASK_ALL) == mode }
        });
    if owner == user || !entitled {
        return f();
    }
    let restricted = context | pg_sys::SECURITY_RESTRICTED_OPERATION as i32 | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32;
    // SAFETY: what REFRESH MATERIALIZED VIEW and maintenance commands do around user code: a
    // GUC nesting level, so that a setting the owner's code makes (even a session-level
    // set_config) is undone when it ends, and the owner's identity, restricted.
    let level = unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::SetUserIdAndSecContext(owner, restricted);
        level
    };
    let result = f();
    // SAFETY: restores what was read above, and rolls the settings back to before.
    unsafe {
        pg_sys::AtEOXact_GUC(false, level);
        pg_sys::SetUserIdAndSecContext(user, context);
    }
    result
}

/// The oid and owner of `schema`.`table`, and whether it has row level security on (None if
/// there is no such relation), from the relation cache.
fn table_owner(schema: &str, table: &str) -> Option<(pg_sys::Oid, pg_sys::Oid, bool)> {
    let (schema, table) = (CString::new(schema).ok()?, CString::new(table).ok()?);
    // SAFETY: catalog cache lookups on the main thread; a missing schema or table gives InvalidOid.
    let relid = unsafe { pg_sys::get_relname_relid(table.as_ptr(), pg_sys::get_namespace_oid(schema.as_ptr(), true)) };
    if relid == pg_sys::InvalidOid {
        return None;
    }
    // SAFETY: opened with AccessShareLock (the statement that writes it locks it more strongly).
    let rel = unsafe { pgrx::PgRelation::with_lock(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE) };
    // SAFETY: rd_rel of an open relation is its pg_class row.
    Some(unsafe { (relid, (*rel.rd_rel).relowner, (*rel.rd_rel).relrowsecurity) })
}

extension_sql_file!(
    "../../sql/replica.sql",
    name = "replica",
    requires = [
        "webhooks",
        cyberbiz_fdw_decode,
        cyberbiz_fdw_replica_tables,
        cyberbiz_fdw_replica_ddl,
        cyberbiz_fdw_replica_source,
        cyberbiz_fdw_replica_apply_sql,
        cyberbiz_fdw_replica_apply,
        cyberbiz_fdw_replica_delete,
        cyberbiz_fdw_replica_missing
    ]
);
