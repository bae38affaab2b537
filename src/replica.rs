//! The local replica, as pure Rust: which resources are replicated, the DDL of their tables (the
//! columns, types and comments IMPORT FOREIGN SCHEMA gives, from the same catalog declaration,
//! plus a key, indexes and two bookkeeping columns), the statement that applies API
//! objects to a table and its child tables, and the decoding of one API object into rows for
//! `jsonb_populate_record` (the decoder of API pages, so a synced row and a webhook's row are
//! the same). The SQL that drives it is `sql/replica.sql`.

use crate::catalog::ddl::{create_foreign_table, qualified, quote_ident, quote_literal, ForeignTable};
use crate::catalog::{self, Access, ColType, Push, Resource, RESOURCES};
use crate::decode::{self, Cell, ColumnSpec, Mismatch, Row, Source, Target, Zone};
use serde_json::{Map, Value};

/// When the row was seen gone from the shop (a webhook's delete, or missing from a whole
/// refresh); NULL for a live row.
pub const DELETED: &str = "_deleted_at";
/// When a sync or webhook last wrote the row.
pub const SYNCED: &str = "_synced_at";

/// Whether `r` is replicated: every list resource and its child tables (not `shop`, a single
/// object; not key-required or undocumented resources, which cannot be listed).
pub fn replicated(r: &Resource) -> bool {
    match &r.parent {
        Some(p) => catalog::find(p.resource).is_some_and(replicated),
        None => r.name != "shop" && matches!(r.access, Access::Paged | Access::Whole { .. }),
    }
}

/// The child tables filled from `r`'s objects (orders -> order_line_items).
pub fn children(r: &Resource) -> Vec<&'static Resource> {
    RESOURCES.iter().filter(|c| c.parent.as_ref().is_some_and(|p| p.resource == r.name)).collect()
}

/// The replica's tables for a request: `None` is every replicated table; a child brings its
/// parent and a parent its children (they are filled together). Unknown or unreplicated names
/// are an error naming them.
pub fn tables_for(names: Option<&[String]>) -> Result<Vec<&'static Resource>, String> {
    let all = RESOURCES.iter().filter(|r| replicated(r));
    let Some(names) = names else { return Ok(all.collect()) };
    let roots: Vec<&str> = names.iter().map(|n| find(n).map(root)).collect::<Result<_, _>>()?;
    Ok(all.filter(|r| roots.contains(&root(r))).collect())
}

/// The replicated table `name`, or an error naming the tables the replica keeps.
pub fn find(name: &str) -> Result<&'static Resource, String> {
    catalog::find(name.trim()).filter(|r| replicated(r)).ok_or_else(|| {
        let known: Vec<&str> = RESOURCES.iter().filter(|r| replicated(r)).map(|r| r.name).collect();
        format!("\"{name}\" is not a table the replica keeps; it keeps {}", known.join(", "))
    })
}

/// The table a resource is synced with: its parent, or itself.
fn root(r: &'static Resource) -> &'static str {
    r.parent.as_ref().map_or(r.name, |p| p.resource)
}

/// The columns that identify a row: a child's parent key and id, else id; empty when the
/// resource has no id (its table is replaced whole on each refresh).
pub fn key(r: &Resource) -> Vec<&'static str> {
    match (&r.parent, r.column("id")) {
        (Some(p), Some(_)) => vec![p.key_column, "id"],
        (None, Some(_)) => vec!["id"],
        _ => vec![],
    }
}

/// Whether a sync can ask for the rows changed in a time range (`updated_at` is pushed down);
/// other tables are refreshed whole.
pub fn incremental(r: &Resource) -> bool {
    r.parent.is_none() && r.pushdown.iter().any(|p| matches!(p, Push::TimeRange { column: "updated_at", .. }))
}

/// Columns people filter and join on: what the API can filter by, ids of other objects,
/// creation and update times. B-tree for scalars, GIN for jsonb (tags).
pub fn index_columns(r: &Resource) -> Vec<&'static str> {
    let key = key(r);
    let mut out: Vec<&'static str> = Vec::new();
    let pushed = r.pushdown.iter().map(|p| p.column());
    let named = r.columns.iter().map(|c| c.name).filter(|n| n.ends_with("_id") || *n == "created_at" || *n == "updated_at");
    for c in pushed.chain(named) {
        if c != "id" && key.first() != Some(&c) && r.column(c).is_some() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn table(schema: &str, r: &Resource) -> String {
    qualified(Some(schema), r.name)
}

/// The statements that create `r`'s replica table in `schema` if it is missing: the import's
/// columns, types and comments, the bookkeeping columns, the key, the indexes.
pub fn create_sql(r: &Resource, schema: &str) -> Vec<String> {
    let t = table(schema, r);
    // lz4 for the JSON documents (raw objects of several KB): pglz took a twentieth of each
    // webhook's apply compressing them.
    let compression = |c: &catalog::Column| if c.ty == ColType::Jsonb { " COMPRESSION lz4" } else { "" };
    let cols: Vec<String> = r.columns.iter().map(|c| format!("{} {}{}", quote_ident(c.name), c.ty.sql(), compression(c))).collect();
    let key = key(r);
    let pk = if key.is_empty() { String::new() } else { format!(", PRIMARY KEY ({})", idents(&key)) };
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {t} ({}, {DELETED} timestamp with time zone, {SYNCED} timestamp with time zone NOT NULL DEFAULT now(){pk})",
        cols.join(", ")
    )];
    if key.is_empty() {
        // No key: logical replication identifies its rows by every column.
        out.push(format!("ALTER TABLE {t} REPLICA IDENTITY FULL"));
    }
    out.push(format!("COMMENT ON TABLE {t} IS {}", quote_literal(&format!("{} (replica kept by cyberbiz_sync and webhooks)", r.comment))));
    for c in r.columns {
        out.push(format!("COMMENT ON COLUMN {t}.{} IS {}", quote_ident(c.name), quote_literal(c.comment)));
    }
    out.push(format!("COMMENT ON COLUMN {t}.{DELETED} IS 'When the row was seen deleted in the shop (NULL: live)'"));
    out.push(format!("COMMENT ON COLUMN {t}.{SYNCED} IS 'When a sync or webhook last wrote the row'"));
    for c in index_columns(r) {
        let using = if r.column(c).is_some_and(|c| c.ty == ColType::Jsonb) { "USING gin " } else { "" };
        out.push(format!("CREATE INDEX IF NOT EXISTS {} ON {t} {using}({})", quote_ident(&format!("{}_{}_idx", r.name, c)), quote_ident(c)));
    }
    out
}

/// The ids of live rows of `r`'s replica table in `schema` that a whole refresh did not see
/// (`$1`: the ids it saw) and that were written before it began (`$2`): the candidates for
/// deletion, each to be confirmed gone by the API before it is marked (a row written during the
/// scan, or skipped by pages that shifted under it, is not gone). None for a table without ids.
pub fn missing_sql(r: &Resource, schema: &str) -> Option<String> {
    (key(r) == ["id"]).then(|| {
        format!("SELECT coalesce(array_agg(m.id), '{{}}') FROM {} m WHERE m.{DELETED} IS NULL AND m.{SYNCED} < $2 AND m.id <> ALL ($1)", table(schema, r))
    })
}

/// The live rows of `r`'s replica table in `schema` with `updated_at` in [`$1`, `$2`) (a NULL
/// bound is open; with both NULL, every live row), what `cyberbiz_verify` compares with the
/// API's X-Total of the same range: their number, the cut points splitting them at the fractions
/// `$3` (whole seconds strictly inside the range, distinct, ascending), and the live rows without
/// `updated_at` (in no range). A table without `updated_at` has no ranges: every live row.
pub fn span_sql(r: &Resource, schema: &str) -> String {
    let t = table(schema, r);
    if r.column("updated_at").is_none() {
        return format!("SELECT count(*), '{{}}'::timestamptz[], 0::bigint FROM {t} m WHERE m.{DELETED} IS NULL");
    }
    format!(
        "WITH r AS (SELECT m.updated_at FROM {t} m WHERE m.{DELETED} IS NULL{}) \
         SELECT (SELECT count(*) FROM r), \
                (SELECT coalesce(array_agg(DISTINCT c ORDER BY c), '{{}}') \
                 FROM unnest((SELECT percentile_disc($3::float8[]) WITHIN GROUP (ORDER BY r.updated_at) FROM r)) q, date_trunc('second', q) c \
                 WHERE ($1 IS NULL OR c > $1) AND ($2 IS NULL OR c < $2)), \
                (SELECT count(*) FROM {t} m WHERE m.{DELETED} IS NULL AND m.updated_at IS NULL)",
        range_filter("m")
    )
}

/// `updated_at` in [`$1`, `$2`), a NULL bound open (with both NULL, no condition at all).
fn range_filter(alias: &str) -> String {
    format!(
        " AND ($1::timestamptz IS NULL AND $2::timestamptz IS NULL OR ($1 IS NULL OR {alias}.updated_at >= $1) AND ($2 IS NULL OR {alias}.updated_at < $2))"
    )
}

/// For the API's objects `$6` of one `updated_at` range [`$1`, `$2`) of `r` (their ids `$3`
/// and `updated_at` `$4`, in order): the positions (from 1) of those the replica lacks or holds
/// older (no live row of that id at that `updated_at` or later), and the ids of live replica rows
/// of the range that are not among them and were written before `$5` (each to be asked for by
/// id: gone from the shop, or changed out of the range). A table without a key (whole lists
/// only): every position when the live rows' `raw` differ from the objects as a multiset, else
/// none. None for a child table.
pub fn compare_sql(r: &Resource, schema: &str) -> Option<String> {
    let t = table(schema, r);
    if key(r).is_empty() {
        return Some(format!(
            "SELECT CASE WHEN EXISTS (SELECT o FROM unnest($6::jsonb[]) o EXCEPT ALL SELECT m.raw FROM {t} m WHERE m.{DELETED} IS NULL) \
                          OR EXISTS (SELECT m.raw FROM {t} m WHERE m.{DELETED} IS NULL EXCEPT ALL SELECT o FROM unnest($6::jsonb[]) o) \
                     THEN ARRAY(SELECT generate_series(1, cardinality($6::jsonb[]))) ELSE '{{}}'::int[] END, '{{}}'::bigint[]"
        ));
    }
    let dated = r.column("updated_at").is_some();
    let newer = if dated { " AND (a.updated_at IS NULL OR m.updated_at >= a.updated_at)" } else { "" };
    let range = if dated { range_filter("m") } else { " AND $1::timestamptz IS NULL AND $2::timestamptz IS NULL".into() };
    (key(r) == ["id"]).then(|| {
        format!(
            "SELECT (SELECT coalesce(array_agg(a.n::int ORDER BY a.n), '{{}}') FROM unnest($3::bigint[], $4::timestamptz[]) WITH ORDINALITY a(id, updated_at, n) \
                     WHERE NOT EXISTS (SELECT 1 FROM {t} m WHERE m.id = a.id AND m.{DELETED} IS NULL{newer})), \
                    (SELECT coalesce(array_agg(m.id ORDER BY m.id), '{{}}') FROM {t} m \
                     WHERE m.{DELETED} IS NULL AND m.{SYNCED} < $5{range} AND m.id <> ALL ($3::bigint[]))"
        )
    })
}

/// What a delete webhook does to row `$1` of `r`'s replica table in `schema`: a child row
/// (order_line_items) is deleted, a parent row marked deleted at `$2` (else now).
pub fn delete_sql(r: &Resource, schema: &str) -> String {
    let t = table(schema, r);
    if r.parent.is_some() {
        format!("DELETE FROM {t} WHERE id = $1")
    } else {
        format!("UPDATE {t} SET {DELETED} = coalesce($2, now()), {SYNCED} = now() WHERE id = $1 AND {DELETED} IS NULL")
    }
}

/// The foreign table a sync reads `r` through: `raw` only, marked `sync` (capped at the
/// server's sync_requests_per_second). Children are read through their parent.
pub fn source_sql(r: &Resource, source_schema: &str, server: &str) -> String {
    create_foreign_table(r, &ForeignTable { schema: Some(source_schema), server, if_not_exists: true, sync: true })
}

fn idents(names: &[&str]) -> String {
    names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", ")
}

/// Whether the object `st.raw` carries its children's array `array` (else it did not send them).
fn sent(array: &str) -> String {
    format!("jsonb_typeof(st.raw->{}) = 'array'", quote_literal(array))
}

/// The ids a CTE returned, as one array computed once (an InitPlan): filtering by it never
/// re-runs the decoding under a nested loop, whatever the planner guesses of the CTE's size.
fn ids_of(cte: &str) -> String {
    format!("(SELECT coalesce(array_agg(id), '{{}}') FROM {cte})::bigint[]")
}

/// One CTE pair for table `r` from the objects `$2`: `{alias}_rows` (decoded, one per key,
/// newest first) and `{alias}_up` (the upsert, newest `updated_at` wins, identical rows
/// untouched). `only_parents`: restrict to children of parents just applied.
fn upsert_ctes(r: &Resource, schema: &str, alias: &str, only_parents: Option<&str>, creates: bool) -> String {
    let t = table(schema, r);
    let cols: Vec<&str> = r.columns.iter().map(|c| c.name).collect();
    let key = key(r);
    let newest = if r.column("updated_at").is_some() { ", x.\"updated_at\" DESC NULLS LAST" } else { "" };
    let keys: Vec<String> = key.iter().map(|k| format!("x.{}", quote_ident(k))).collect();
    let distinct = if key.is_empty() { String::new() } else { format!("DISTINCT ON ({}) ", keys.join(", ")) };
    let order = if key.is_empty() { String::new() } else { format!(" ORDER BY {}{newest}", keys.join(", ")) };
    // A child row comes only from a parent just applied whose object carries the children's
    // array (an object without it did not send its children: they stay as they are).
    let filter = match (only_parents, &r.parent) {
        (Some(up), Some(p)) => format!(" WHERE {} AND x.{} = ANY ({})", sent(p.array), quote_ident(key[0]), ids_of(up)),
        _ => String::new(),
    };
    // A top-level row's raw is its object as given (the decoder leaves it out).
    let select: Vec<String> =
        cols.iter().map(|c| if *c == "raw" && r.parent.is_none() { "st.raw".to_string() } else { format!("x.{}", quote_ident(c)) }).collect();
    let rows = format!(
        "{alias}_rows AS (SELECT {distinct}{} FROM unnest($2::jsonb[]) st(raw), cyberbiz_fdw_decode($1, {}, st.raw) j, \
         jsonb_populate_record(NULL::{t}, j) x{filter}{order})",
        select.join(", "),
        quote_literal(r.name)
    );
    let list = idents(&cols);
    let insert = format!("INSERT INTO {t} AS m ({list}, {SYNCED}) SELECT {list}, now() FROM {alias}_rows");
    if key.is_empty() {
        return format!("{rows}, {alias}_gone AS (DELETE FROM {t}), {alias}_up AS ({insert} RETURNING 1)");
    }
    let set: Vec<String> = cols.iter().filter(|c| !key.contains(c)).map(|c| format!("{0} = excluded.{0}", quote_ident(c))).collect();
    // Newest wins; an object without updated_at never replaces a row that has one; at an equal
    // updated_at (a second's resolution) a creation never replaces what came after it.
    let op = if creates { ">" } else { ">=" };
    let newer = if r.column("updated_at").is_some() {
        format!(" AND (m.\"updated_at\" IS NULL OR excluded.\"updated_at\" {op} m.\"updated_at\")")
    } else {
        String::new()
    };
    // A parent's rows come back with their object (`raw`): which of them sent their children's
    // arrays is read from there, not by joining the upsert back to its input (a join of two
    // CTEs the planner sizes at 10 rows: a nested loop, quadratic in the window's objects).
    let returning = match (key == ["id"], only_parents.is_none() && !children(r).is_empty()) {
        (true, true) => "m.id AS id, m.\"raw\" AS raw",
        (true, false) => "m.id AS id",
        _ => "1 AS id",
    };
    format!(
        "{rows}, {alias}_up AS ({insert} ON CONFLICT ({}) DO UPDATE SET {}, {DELETED} = NULL, {SYNCED} = now() \
         WHERE (m.\"raw\" IS DISTINCT FROM excluded.\"raw\" OR m.{DELETED} IS NOT NULL){newer} RETURNING {returning})",
        idents(&key),
        set.join(", ")
    )
}

/// The statement that applies the API objects `$2` (a `jsonb[]`) to `r`'s replica table in
/// `schema` and to its child tables (the children of each applied object are replaced by the
/// object's own), `$1` being the server's name. `whole`: `$2` holds every object of the shop (a
/// table without a key is replaced by them; rows of other tables missing from them are found
/// by `missing_sql` and confirmed gone before they are marked). `creates`: the objects are
/// creations (a `*/create` webhook), which never replace a row of the same `updated_at`.
/// Returns the number of rows of `r` written and the newest `updated_at` applied.
///
/// The objects come as a parameter, not a table whose size the planner must guess:
/// `fdw/replica.rs` prepares the statement once per session, so its first plans see the real
/// array (a webhook's one object costs a few hundred, far below any JIT threshold) and the
/// plan it keeps estimates `unnest` at 10 objects.
pub fn apply_sql(r: &Resource, schema: &str, whole: bool, creates: bool) -> String {
    if key(r).is_empty() && !whole {
        // One object cannot say which row of a table without a key it replaces: such a table
        // is only ever replaced whole, by a sync (the next one brings a webhook's change).
        return "SELECT 0::bigint, NULL::timestamptz".into();
    }
    let mut ctes = vec![upsert_ctes(r, schema, "p", None, creates)];
    for (i, c) in children(r).iter().enumerate() {
        let alias = format!("c{i}");
        ctes.push(upsert_ctes(c, schema, &alias, Some("p_up"), false));
        let ck = key(c);
        // Keys are never NULL, so NOT IN is exact here, and runs as a hashed subplan.
        let o: Vec<String> = ck.iter().map(|k| format!("o.{}", quote_ident(k))).collect();
        let n: Vec<String> = ck.iter().map(|k| format!("n.{}", quote_ident(k))).collect();
        let array = c.parent.as_ref().map_or("", |p| p.array);
        let replaced = format!("(SELECT coalesce(array_agg(st.id), '{{}}') FROM p_up st WHERE {})::bigint[]", sent(array));
        ctes.push(format!(
            "{alias}_old AS (DELETE FROM {} o WHERE o.{} = ANY ({replaced}) AND ({}) NOT IN (SELECT {} FROM {alias}_rows n))",
            table(schema, c),
            quote_ident(ck[0]),
            o.join(", "),
            n.join(", ")
        ));
    }
    let newest = if r.column("updated_at").is_some() { "(SELECT max(\"updated_at\") FROM p_rows)" } else { "NULL::timestamptz" };
    format!("WITH {} SELECT (SELECT count(*) FROM p_up), {newest}", ctes.join(", "))
}

/// The decoder's column specs of a resource, as its foreign table declares them.
fn specs(r: &Resource) -> Vec<ColumnSpec> {
    r.columns
        .iter()
        .map(|c| {
            let target = match c.ty {
                ColType::BigInt => Target::Int8,
                ColType::Integer => Target::Int4,
                ColType::Numeric => Target::Numeric,
                ColType::Text => Target::Text,
                ColType::Boolean => Target::Bool,
                ColType::TimestampTz => Target::TimestampTz,
                ColType::Date => Target::Date,
                ColType::Jsonb => Target::Jsonb,
            };
            let source = if c.name == "raw" { Source::Raw } else { Source::parse(c.json_path()) };
            ColumnSpec { name: c.name.to_string(), target, source }
        })
        .collect()
}

/// The rows of `r` in one API object, each as a JSON object of column -> value in the text
/// form of the column's type: for `orders`, the order; for `order_line_items`, the order's
/// line items; for a child object on its own (a `variants/update` webhook), that object, its
/// parent key read from its own field of that name. A top-level row's `raw` (the object
/// itself) is left out: the apply statement takes it from its input as it is, rather than
/// have the object copied, printed and parsed once more.
pub fn decode_object(r: &Resource, object: &Value, zone: &dyn Zone) -> Result<Vec<Map<String, Value>>, Mismatch> {
    let rows = match &r.parent {
        None => vec![Row { value: object.clone(), parent: None }],
        Some(p) => match object.get(p.array) {
            Some(Value::Array(items)) => {
                let mut parent = object.clone();
                if let Some(o) = parent.as_object_mut() {
                    o.remove(p.array);
                }
                let parent = std::rc::Rc::new(parent);
                items.iter().map(|v| Row { value: v.clone(), parent: Some(parent.clone()) }).collect()
            }
            Some(_) => vec![],
            None => vec![Row { value: object.clone(), parent: Some(std::rc::Rc::new(parent_of(r, object))) }],
        },
    };
    let mut specs = specs(r);
    if r.parent.is_none() {
        specs.retain(|s| s.source != Source::Raw);
    }
    let mut cells = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        decode::decode_row(row, &specs, zone, &mut cells)?;
        let mut m = Map::new();
        for (spec, cell) in specs.iter().zip(cells.drain(..)) {
            if let Some(v) = cell_json(cell) {
                m.insert(spec.name.clone(), v);
            }
        }
        out.push(m);
    }
    Ok(out)
}

/// For a child object on its own: the parent fields its `^path` columns read, taken from the
/// child's fields of the columns' names (`product_id` -> the parent's `id`).
fn parent_of(r: &Resource, child: &Value) -> Value {
    let mut parent = Map::new();
    for c in r.columns {
        if let (Some(path), Some(v)) = (c.json_path().strip_prefix('^'), child.get(c.name)) {
            if !path.contains('.') {
                parent.insert(path.to_string(), v.clone());
            }
        }
    }
    Value::Object(parent)
}

/// A cell in the JSON form `jsonb_populate_record` reads back exactly: numbers and times as
/// text for the type's input function; None for NULL.
fn cell_json(cell: Cell) -> Option<Value> {
    Some(match cell {
        Cell::Null => return None,
        Cell::Int(n) => Value::from(n),
        Cell::Float(f) => serde_json::Number::from_f64(f).map(Value::Number)?,
        Cell::Numeric(s) => Value::String(s),
        Cell::Text(s) => Value::String(s.replace('\0', "")),
        Cell::Bool(b) => Value::Bool(b),
        Cell::Timestamp(us) => Value::String(timestamp_text(us)),
        Cell::Date(d) => {
            let (y, m, d) = decode::civil_from_days(d as i64 + decode::PG_EPOCH_UNIX_SECS / 86400);
            Value::String(format!("{y:04}-{m:02}-{d:02}"))
        }
        Cell::Json(v) => v,
    })
}

/// Microseconds since 2000-01-01 UTC as `YYYY-MM-DD HH:MM:SS.ffffff+00`.
fn timestamp_text(us: i64) -> String {
    let secs = us.div_euclid(1_000_000) + decode::PG_EPOCH_UNIX_SECS;
    let micros = us.rem_euclid(1_000_000);
    let (y, m, d) = decode::civil_from_days(secs.div_euclid(86400));
    let tod = secs.rem_euclid(86400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}+00", tod / 3600, tod % 3600 / 60, tod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn which_tables_and_keys() {
        let names: Vec<&str> = tables_for(None).unwrap().iter().map(|r| r.name).collect();
        for n in ["orders", "order_line_items", "customers", "products", "product_variants", "vip_groups", "product_feeds", "shop_coupons"] {
            assert!(names.contains(&n), "{n} is replicated");
        }
        for n in ["shop", "einvoices", "edms"] {
            assert!(!names.contains(&n), "{n} is not");
        }
        let one: Vec<&str> = tables_for(Some(&["order_line_items".into()])).unwrap().iter().map(|r| r.name).collect();
        assert_eq!(one, ["orders", "order_line_items"]);
        let err = tables_for(Some(&["einvoices".into()])).unwrap_err();
        assert!(err.contains("\"einvoices\" is not a table the replica keeps") && err.contains("orders"), "{err}");
        assert_eq!(key(catalog::find("order_line_items").unwrap()), ["order_id", "id"]);
        assert_eq!(key(catalog::find("orders").unwrap()), ["id"]);
        assert!(key(catalog::find("product_feeds").unwrap()).is_empty());
        for child in tables_for(None).unwrap().iter().filter(|r| r.parent.is_some()) {
            assert_eq!(key(child).len(), 2, "{}: children are keyed by parent key and id", child.name);
        }
        assert!(incremental(catalog::find("orders").unwrap()) && incremental(catalog::find("customers").unwrap()));
        assert!(!incremental(catalog::find("products").unwrap()));
        let idx = index_columns(catalog::find("orders").unwrap());
        assert!(idx.contains(&"updated_at") && idx.contains(&"order_number") && idx.contains(&"financial_status") && !idx.contains(&"id"), "{idx:?}");
        assert!(index_columns(catalog::find("order_line_items").unwrap()).contains(&"product_id"));
    }

    #[test]
    fn ddl_has_the_imported_columns_a_key_and_indexes() {
        let orders = catalog::find("orders").unwrap();
        let sql = create_sql(orders, "shop a");
        assert!(sql[0].starts_with("CREATE TABLE IF NOT EXISTS \"shop a\".\"orders\" (\"id\" bigint, \"order_number\" bigint"), "{}", sql[0]);
        assert!(sql[0].ends_with("_synced_at timestamp with time zone NOT NULL DEFAULT now(), PRIMARY KEY (\"id\"))"), "{}", sql[0]);
        assert!(sql.iter().any(|s| s == "COMMENT ON COLUMN \"shop a\".\"orders\".\"order_name\" IS 'Order name, e.g. #1101'"));
        assert!(sql.iter().any(|s| s.contains("USING gin (\"tags\")")) || orders.column("tags").is_none());
        let src = source_sql(orders, "src", "my shop");
        assert!(src.starts_with("CREATE FOREIGN TABLE IF NOT EXISTS \"src\".\"orders\" (\"id\" bigint"), "{src}");
        assert!(src.ends_with("SERVER \"my shop\" OPTIONS (resource 'orders', sync 'true')"), "{src}");
    }

    #[test]
    fn apply_statement_covers_children_and_deletions() {
        let sql = apply_sql(catalog::find("orders").unwrap(), "r", false, false);
        assert!(sql.contains("cyberbiz_fdw_decode($1, 'orders', st.raw)") && sql.contains("cyberbiz_fdw_decode($1, 'order_line_items', st.raw)"), "{sql}");
        assert!(sql.contains("ON CONFLICT (\"order_id\", \"id\")") && sql.contains("c0_old AS (DELETE FROM \"r\".\"order_line_items\""));
        assert!(
            apply_sql(catalog::find("orders").unwrap(), "r", false, true).contains("excluded.\"updated_at\" > m.\"updated_at\""),
            "a creation never wins a tie"
        );
        assert!(sql.contains("excluded.\"updated_at\" >= m.\"updated_at\"") && !sql.contains("p_deleted"));
        assert!(!apply_sql(catalog::find("products").unwrap(), "r", true, false).contains("_deleted_at = now()"), "a refresh marks nothing by itself");
        assert_eq!(
            missing_sql(catalog::find("products").unwrap(), "r").as_deref(),
            Some("SELECT coalesce(array_agg(m.id), '{}') FROM \"r\".\"products\" m WHERE m._deleted_at IS NULL AND m._synced_at < $2 AND m.id <> ALL ($1)")
        );
        assert_eq!(missing_sql(catalog::find("product_feeds").unwrap(), "r"), None);
        assert!(!apply_sql(catalog::find("product_feeds").unwrap(), "r", false, false).contains("product_feeds"), "a webhook never writes a keyless table");
        let feeds = apply_sql(catalog::find("product_feeds").unwrap(), "r", true, false);
        assert!(feeds.contains("p_gone AS (DELETE FROM \"r\".\"product_feeds\")") && !feeds.contains("ON CONFLICT"), "{feeds}");
    }

    #[test]
    fn verification_reads_half_open_ranges_of_live_rows() {
        let orders = catalog::find("orders").unwrap();
        let span = span_sql(orders, "r");
        assert!(span.contains("FROM \"r\".\"orders\" m WHERE m._deleted_at IS NULL AND"), "live rows only: {span}");
        assert!(span.contains("m.updated_at >= $1") && span.contains("m.updated_at < $2"), "[since, before): {span}");
        assert!(span.contains("$1::timestamptz IS NULL AND $2::timestamptz IS NULL OR"), "no bounds: every live row, undated ones too: {span}");
        assert!(span.contains("percentile_disc($3::float8[])") && span.contains("date_trunc('second', q)"), "cut points in whole seconds: {span}");
        assert!(span.contains("OR c > $1)") && span.contains("OR c < $2)"), "cuts strictly inside the range: {span}");
        assert!(span.contains("m.updated_at IS NULL)"), "rows without updated_at counted apart: {span}");
        let compare = compare_sql(orders, "r").unwrap();
        assert!(compare.contains("m.updated_at >= a.updated_at"), "a replica row as new as the API's is not stale: {compare}");
        assert!(
            compare.contains("m._synced_at < $5") && compare.contains("m.id <> ALL ($3::bigint[])"),
            "unseen: written before the read, not listed: {compare}"
        );
        let feeds = compare_sql(catalog::find("product_feeds").unwrap(), "r").unwrap();
        assert!(feeds.contains("EXCEPT ALL SELECT m.raw") && !feeds.contains("m.id"), "no ids: the rows compared as a multiset: {feeds}");
        assert_eq!(compare_sql(catalog::find("order_line_items").unwrap(), "r"), None, "children are compared with their parents");
        let undated: Vec<&Resource> = tables_for(None).unwrap().into_iter().filter(|r| key(r) == ["id"] && r.column("updated_at").is_none()).collect();
        assert!(!undated.is_empty(), "some replica tables have ids but no updated_at");
        for r in undated {
            assert!(!span_sql(r, "r").contains("updated_at"), "{} has no ranges", r.name);
            assert!(!compare_sql(r, "r").unwrap().contains("m.updated_at"), "{}", r.name);
        }
    }

    #[test]
    fn objects_decode_to_typed_text() {
        let order = json!({"id": 7, "order_number": 1101, "created_at": "2024-03-01 10:00:00", "statuses": {"financial_status": "paid"},
            "subtotal_price": "120.50", "line_items": [{"id": 1, "price": 60, "quantity": 2}, {"id": 2, "price": "0.5", "quantity": 1}]});
        let rows = decode_object(catalog::find("orders").unwrap(), &order, &decode::TAIPEI).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["created_at"], "2024-03-01 02:00:00.000000+00");
        assert_eq!(rows[0]["financial_status"], "paid");
        assert_eq!(rows[0]["subtotal_price"], "120.50");
        assert!(rows[0].get("updated_at").is_none(), "NULL is left out");
        assert!(rows[0].get("raw").is_none(), "a top-level row's raw is the object itself, not copied");
        let items = decode_object(catalog::find("order_line_items").unwrap(), &order, &decode::TAIPEI).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[0]["order_id"].clone(), items[1]["price"].clone(), items[1]["order_number"].clone()), (json!(7), json!("0.5"), json!(1101)));
        let variant = json!({"id": 51, "product_id": 5, "price": 10});
        let v = decode_object(catalog::find("product_variants").unwrap(), &variant, &decode::TAIPEI).unwrap();
        assert_eq!((v[0]["id"].clone(), v[0]["product_id"].clone()), (json!(51), json!(5)));
        let bad = json!({"id": "x7"});
        let e = decode_object(catalog::find("orders").unwrap(), &bad, &decode::TAIPEI).unwrap_err();
        assert_eq!((e.column.as_str(), e.value.as_str()), ("id", "\"x7\""));
        assert_eq!(timestamp_text(-1), "1999-12-31 23:59:59.999999+00");
    }
}
