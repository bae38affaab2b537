//! DDL text from the catalog, pure: quoting, qualified names, and the CREATE FOREIGN TABLE
//! statement of a resource (IMPORT FOREIGN SCHEMA returns it as is; the replica's sync reads
//! through one in a schema of its own, marked `sync`).

use super::Resource;

/// Always quoted: catalog names include SQL keywords (`order`).
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `"schema"."name"`, or `"name"` without a schema.
pub fn qualified(schema: Option<&str>, name: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(name)),
        None => quote_ident(name),
    }
}

/// Where and how a foreign table of a resource is created.
pub struct ForeignTable<'a> {
    /// `None`: unqualified (IMPORT FOREIGN SCHEMA places it).
    pub schema: Option<&'a str>,
    pub server: &'a str,
    pub if_not_exists: bool,
    /// The table option `sync 'true'`: scans are held to the server's sync_requests_per_second.
    pub sync: bool,
}

/// The CREATE FOREIGN TABLE statement of `r`: every catalog column with its type, and its
/// `json_path` where the path is not the column's name.
pub fn create_foreign_table(r: &Resource, t: &ForeignTable) -> String {
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
    let exists = if t.if_not_exists { "IF NOT EXISTS " } else { "" };
    let sync = if t.sync { ", sync 'true'" } else { "" };
    format!(
        "CREATE FOREIGN TABLE {exists}{} ({}) SERVER {} OPTIONS (resource {}{sync})",
        qualified(t.schema, r.name),
        cols.join(", "),
        quote_ident(t.server),
        quote_literal(r.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn import(r: &str, server: &str) -> String {
        create_foreign_table(catalog::find(r).unwrap(), &ForeignTable { schema: None, server, if_not_exists: false, sync: false })
    }

    #[test]
    fn statements_carry_types_paths_and_resource() {
        let s = import("orders", "shop");
        assert!(s.starts_with("CREATE FOREIGN TABLE \"orders\" (\"id\" bigint, \"order_number\" bigint"), "{s}");
        assert!(s.contains("\"financial_status\" text OPTIONS (json_path 'statuses.financial_status')"));
        assert!(s.contains("\"raw\" jsonb) SERVER \"shop\" OPTIONS (resource 'orders')"));
        assert!(import("order_line_items", "My Shop").contains("\"order_id\" bigint OPTIONS (json_path '^id')"));
        assert!(import("affiliate_vendor_orders", "s").contains("\"order\" jsonb"));
        assert!(import("shop", "My Shop").contains("SERVER \"My Shop\""));
    }

    #[test]
    fn sync_sources_are_qualified_and_marked() {
        let t = ForeignTable { schema: Some("src \"1\""), server: "s", if_not_exists: true, sync: true };
        let s = create_foreign_table(catalog::find("customers").unwrap(), &t);
        assert!(s.starts_with("CREATE FOREIGN TABLE IF NOT EXISTS \"src \"\"1\"\"\".\"customers\" ("), "{s}");
        assert!(s.ends_with("SERVER \"s\" OPTIONS (resource 'customers', sync 'true')"), "{s}");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
