//! IMPORT FOREIGN SCHEMA cyberbiz: one CREATE FOREIGN TABLE per catalog resource. Comments
//! cannot travel in the statements Postgres accepts back, so an event trigger created by the
//! extension applies them from `cyberbiz_fdw_catalog_comments()` right after the import.

use super::{cstr, def_options, raise};
use crate::catalog::ddl::{create_foreign_table, ForeignTable};
use crate::catalog::{self, RESOURCES};
use crate::error::FdwError;
use crate::options;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::CString;

pub fn install(routine: &mut pg_sys::FdwRoutine) {
    routine.ImportForeignSchema = Some(import_foreign_schema);
}

#[pg_guard]
extern "C-unwind" fn import_foreign_schema(stmt: *mut pg_sys::ImportForeignSchemaStmt, server_oid: pg_sys::Oid) -> *mut pg_sys::List {
    // SAFETY: Postgres passes the IMPORT statement and an existing server; lists are built in the current memory context.
    unsafe {
        let remote = cstr((*stmt).remote_schema);
        if remote != "cyberbiz" {
            raise(FdwError::BadArgument {
                message: format!("CYBERBIZ has no remote schema \"{remote}\""),
                hint: "Use IMPORT FOREIGN SCHEMA cyberbiz FROM SERVER ... INTO ...".into(),
            });
        }
        let server = pg_sys::GetForeignServer(server_oid);
        let server_name = cstr((*server).servername);
        let listed: Vec<String> = PgList::<pg_sys::RangeVar>::from_pg((*stmt).table_list).iter_ptr().map(|rv| cstr((*rv).relname)).collect();
        // Core silently ignores unknown names in LIMIT TO / EXCEPT; a typo deserves an error.
        if let Some(bad) = listed.iter().find(|n| catalog::find(n).is_none()) {
            raise(FdwError::BadArgument {
                message: format!("CYBERBIZ has no table \"{bad}\" to import"),
                hint: format!("Known tables: {}.", catalog::names().join(", ")),
            });
        }
        let mut out = PgList::<std::ffi::c_char>::new();
        for r in RESOURCES {
            let keep = match (*stmt).list_type {
                pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_LIMIT_TO => listed.iter().any(|n| n == r.name),
                pg_sys::ImportForeignSchemaType::FDW_IMPORT_SCHEMA_EXCEPT => !listed.iter().any(|n| n == r.name),
                _ => true,
            };
            if keep {
                let t = ForeignTable { schema: None, server: &server_name, if_not_exists: false, sync: false };
                let c = CString::new(create_foreign_table(r, &t)).unwrap_or_default();
                out.push(pg_sys::pstrdup(c.as_ptr()));
            }
        }
        out.into_pg()
    }
}

/// The catalog's comments: one row per table (column NULL) and per column.
#[pg_extern]
fn cyberbiz_fdw_catalog_comments() -> TableIterator<'static, (name!(resource, String), name!(column_name, Option<String>), name!(comment, String))> {
    let mut rows = Vec::new();
    for r in RESOURCES {
        rows.push((r.name.to_string(), None, r.comment.to_string()));
        for c in r.columns {
            rows.push((r.name.to_string(), Some(c.name.to_string()), c.comment.to_string()));
        }
    }
    TableIterator::new(rows)
}

/// The catalog resource a CYBERBIZ foreign table reads (its `resource` option, read as the
/// validator reads it), for the comments of an import and `cyberbiz_backfill`; NULL for any
/// other relation.
#[pg_extern(stable, parallel_safe)]
fn cyberbiz_fdw_table_resource(foreign_table: pg_sys::Oid) -> Option<String> {
    // SAFETY: catalog lookups on the main thread; GetForeignTable is called only for a foreign
    // table (it raises for anything else).
    let opts = unsafe {
        if pg_sys::get_rel_relkind(foreign_table) != pg_sys::RELKIND_FOREIGN_TABLE as std::ffi::c_char {
            return None;
        }
        def_options((*pg_sys::GetForeignTable(foreign_table)).options)
    };
    match options::parse_table(&opts).ok()?.source {
        options::TableSource::Resource(r) => Some(r.name.to_string()),
        options::TableSource::Endpoint(_) => None,
    }
}

extension_sql_file!("../../sql/import.sql", name = "comment_imported", requires = [cyberbiz_fdw_catalog_comments, cyberbiz_fdw_table_resource]);
