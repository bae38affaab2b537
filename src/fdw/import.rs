//! IMPORT FOREIGN SCHEMA cyberbiz: one CREATE FOREIGN TABLE per catalog resource. Comments
//! cannot travel in the statements Postgres accepts back, so an event trigger created by the
//! extension applies them from `cyberbiz_fdw_catalog_comments()` right after the import.

use super::{cstr, raise};
use crate::catalog::{self, RESOURCES};
use crate::error::FdwError;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::CString;

pub fn install(routine: &mut pg_sys::FdwRoutine) {
    routine.ImportForeignSchema = Some(import_foreign_schema);
}

/// Always quoted: catalog names include SQL keywords (`order`).
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The CREATE FOREIGN TABLE statement of one resource.
pub fn create_statement(r: &catalog::Resource, server: &str) -> String {
    let cols: Vec<String> = r
        .columns
        .iter()
        .map(|c| {
            let path = c.json_path();
            if c.name == "raw" || path == c.name {
                format!("{} {}", quote_ident(c.name), c.ty.sql())
            } else {
                format!("{} {} OPTIONS (json_path {})", quote_ident(c.name), c.ty.sql(), quote_literal(path))
            }
        })
        .collect();
    format!("CREATE FOREIGN TABLE {} ({}) SERVER {} OPTIONS (resource {})", quote_ident(r.name), cols.join(", "), quote_ident(server), quote_literal(r.name))
}

#[pg_guard]
extern "C-unwind" fn import_foreign_schema(stmt: *mut pg_sys::ImportForeignSchemaStmt, server_oid: pg_sys::Oid) -> *mut pg_sys::List {
    // SAFETY: Postgres passes the IMPORT statement and an existing server; lists are built in the current memory context.
    unsafe {
        let remote = cstr((*stmt).remote_schema);
        if remote != "cyberbiz" {
            raise(FdwError::ConflictingOptions {
                message: format!("CYBERBIZ has no remote schema \"{remote}\""),
                hint: "Use IMPORT FOREIGN SCHEMA cyberbiz FROM SERVER ... INTO ...".into(),
            });
        }
        let server = pg_sys::GetForeignServer(server_oid);
        let server_name = cstr((*server).servername);
        let listed: Vec<String> = PgList::<pg_sys::RangeVar>::from_pg((*stmt).table_list).iter_ptr().map(|rv| cstr((*rv).relname)).collect();
        // Core silently ignores unknown names in LIMIT TO / EXCEPT; a typo deserves an error.
        if let Some(bad) = listed.iter().find(|n| catalog::find(n).is_none()) {
            raise(FdwError::ConflictingOptions {
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
                let c = CString::new(create_statement(r, &server_name)).unwrap_or_default();
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

extension_sql_file!("../../sql/import.sql", name = "comment_imported", requires = [cyberbiz_fdw_catalog_comments]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_carry_types_paths_and_resource() {
        let s = create_statement(catalog::find("orders").unwrap(), "shop");
        assert!(s.starts_with("CREATE FOREIGN TABLE \"orders\" (\"id\" bigint, \"order_number\" bigint"), "{s}");
        assert!(s.contains("\"financial_status\" text OPTIONS (json_path 'statuses.financial_status')"));
        assert!(s.contains("\"raw\" jsonb) SERVER \"shop\" OPTIONS (resource 'orders')"));
        assert!(create_statement(catalog::find("order_line_items").unwrap(), "My Shop").contains("\"order_id\" bigint OPTIONS (json_path '^id')"));
        assert!(create_statement(catalog::find("affiliate_vendor_orders").unwrap(), "s").contains("\"order\" jsonb"));
        assert!(create_statement(catalog::find("shop").unwrap(), "My Shop").contains("SERVER \"My Shop\""));
    }
}
