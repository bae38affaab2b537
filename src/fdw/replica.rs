//! The replica, the Postgres side: the SQL functions `sql/replica.sql` calls to create replica
//! tables and to decode API objects into their rows (the pure work is `crate::replica`).

use super::{datum, def_options, raise};
use crate::catalog::Resource;
use crate::error::FdwError;
use crate::options;
use crate::replica;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::ffi::CString;

/// The catalog resource of a replica table, or an ERROR naming what the replica keeps.
fn resource(name: &str) -> &'static Resource {
    match replica::find(name) {
        Ok(r) => r,
        Err(message) => raise(FdwError::ConflictingOptions { message, hint: "See SELECT * FROM cyberbiz_replica_status.".into() }),
    }
}

/// The time zone of `server` (its `time_zone` option), in which zone-less API times are read.
fn server_zone(server: &str) -> Box<dyn crate::decode::Zone> {
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
        raise(FdwError::ConflictingOptions { message, hint: "Pass table names of IMPORT FOREIGN SCHEMA cyberbiz, or NULL for all.".into() })
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

/// The statement applying `pg_temp.cyberbiz_stage` to replica table `resource` in `schema`
/// and its children (`$1`: the server); `whole`: rows missing from the stage are deleted.
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_replica_apply_sql(resource: &str, schema: &str, whole: bool) -> String {
    replica::apply_sql(self::resource(resource), schema, whole)
}

extension_sql_file!(
    "../../sql/replica.sql",
    name = "replica",
    requires =
        ["webhooks", cyberbiz_fdw_decode, cyberbiz_fdw_replica_tables, cyberbiz_fdw_replica_ddl, cyberbiz_fdw_replica_source, cyberbiz_fdw_replica_apply_sql]
);
