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
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
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
unsafe extern "C-unwind" fn import_foreign_schema(stmt: *mut pg_sys::ImportForeignSchemaStmt, server_oid: pg_sys::Oid) -> *mut pg_sys::List {
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

extension_sql!(
    r#"
CREATE FUNCTION cyberbiz_fdw_comment_imported() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    r record;
    res text;
    c record;
BEGIN
    IF tg_tag <> 'IMPORT FOREIGN SCHEMA' THEN
        RETURN;
    END IF;
    FOR r IN
        SELECT d.objid
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_foreign_table ft ON ft.ftrelid = d.objid
        JOIN pg_foreign_server s ON s.oid = ft.ftserver
        JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
        WHERE d.object_type = 'foreign table' AND w.fdwname = 'cyberbiz_fdw'
    LOOP
        SELECT split_part(o, '=', 2) INTO res
        FROM pg_foreign_table ft, unnest(ft.ftoptions) o
        WHERE ft.ftrelid = r.objid AND o LIKE 'resource=%';
        FOR c IN SELECT * FROM cyberbiz_fdw_catalog_comments() cc WHERE cc.resource = res LOOP
            IF c.column_name IS NULL THEN
                EXECUTE format('COMMENT ON FOREIGN TABLE %s IS %L', r.objid::regclass, c.comment);
            ELSIF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.objid AND a.attname = c.column_name AND NOT a.attisdropped) THEN
                EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', r.objid::regclass, c.column_name, c.comment);
            END IF;
        END LOOP;
    END LOOP;
END
$fn$;
CREATE EVENT TRIGGER cyberbiz_fdw_comment_imported ON ddl_command_end
    WHEN TAG IN ('IMPORT FOREIGN SCHEMA')
    EXECUTE FUNCTION cyberbiz_fdw_comment_imported();
"#,
    name = "comment_imported",
    requires = [cyberbiz_fdw_catalog_comments]
);

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
