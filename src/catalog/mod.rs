//! The resource catalog: one declaration per CYBERBIZ resource, read by every other part of the
//! FDW (validation, planning, scanning, import). Data, not code.

pub mod ddl;
mod resources;
mod webhooks;

pub use resources::RESOURCES;
pub use webhooks::WEBHOOK_EVENTS;

/// How rows of a resource are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A paginated list endpoint (`page`, `per_page`, `offset`, X-Total headers).
    Paged,
    /// One request returns every row (no pagination parameters); `rows_at` names the key of the
    /// response object that holds the rows (a single object becomes one row).
    Whole { rows_at: Option<&'static str> },
    /// No list endpoint: a WHERE clause on `key` is required (e.g. einvoices by id).
    KeyRequired { key: &'static str },
    /// The reference documents no endpoint at all; the reason is shown to the user.
    Unavailable { reason: &'static str },
}

/// SQL types the catalog uses (design: ids bigint, money numeric, Taipei timestamps
/// timestamptz, dates date, flags boolean, nested values jsonb).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    BigInt,
    Integer,
    Numeric,
    Text,
    Boolean,
    TimestampTz,
    Date,
    Jsonb,
}

impl ColType {
    pub fn sql(self) -> &'static str {
        match self {
            ColType::BigInt => "bigint",
            ColType::Integer => "integer",
            ColType::Numeric => "numeric",
            ColType::Text => "text",
            ColType::Boolean => "boolean",
            ColType::TimestampTz => "timestamp with time zone",
            ColType::Date => "date",
            ColType::Jsonb => "jsonb",
        }
    }
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
    /// Dotted JSON path inside the row object; empty means the column's name. A leading `^`
    /// reads from the parent object of a child row (`^id` is the order's id for a line item).
    pub path: &'static str,
    pub comment: &'static str,
}

impl Column {
    pub fn json_path(&self) -> &'static str {
        if self.path.is_empty() {
            self.name
        } else {
            self.path
        }
    }
}

/// A child table's rows are the elements of an array inside each parent row.
#[derive(Debug)]
pub struct Parent {
    pub resource: &'static str,
    pub array: &'static str,
    /// The child's column that holds the parent's id.
    pub key_column: &'static str,
}

/// How a WHERE clause on a column becomes part of a request (from the reference's parameters).
#[derive(Debug, Clone, Copy)]
pub enum Push {
    /// Ranges on a timestamp column -> inclusive `from`/`to` parameters in the server's zone
    /// (`YYYY-MM-DD HH:MM:SS`).
    TimeRange { column: &'static str, from: &'static str, to: &'static str },
    /// Ranges on a timestamp column -> inclusive `from`/`to` date parameters (`YYYY-MM-DD`).
    DateRange { column: &'static str, from: &'static str, to: &'static str },
    /// `= / IN` -> one comma-separated parameter.
    AnyOf { column: &'static str, param: &'static str },
    /// `=` with one value -> one parameter (the API documents no lists for it).
    One { column: &'static str, param: &'static str },
    /// `= / IN` on a column the API can only look up: `path?param=v1,v2` answers objects whose
    /// `id_field` are the ids to GET.
    Lookup { column: &'static str, path: &'static str, param: &'static str, id_field: &'static str },
    /// `=` -> one request answering the object itself (`get_einvoice?invoice_no=`).
    Direct { column: &'static str, path: &'static str, param: &'static str },
    /// `id IN (...)` -> `path?param=1,2,3` in one request, up to `max` ids.
    IdList { path: &'static str, param: &'static str, max: usize },
    /// `tags ? 'x'` / `tags ?| array[...]` on a jsonb array -> one comma-separated parameter.
    Has { column: &'static str, param: &'static str },
    /// `col IS NULL` / `IS NOT NULL` -> `param=when_null` / `param=when_not_null`.
    NullTest { column: &'static str, param: &'static str, when_null: &'static str, when_not_null: &'static str },
}

impl Push {
    pub fn column(&self) -> &'static str {
        match self {
            Push::TimeRange { column, .. }
            | Push::DateRange { column, .. }
            | Push::AnyOf { column, .. }
            | Push::One { column, .. }
            | Push::Lookup { column, .. }
            | Push::Direct { column, .. }
            | Push::Has { column, .. }
            | Push::NullTest { column, .. } => column,
            Push::IdList { .. } => "id",
        }
    }
}

/// What INSERT / UPDATE / DELETE may do on a resource (from the reference's write endpoints).
#[derive(Debug, Clone, Copy)]
pub struct Writes {
    /// INSERT -> POST to the list path.
    pub create: bool,
    /// UPDATE -> PUT `{path}/{id}` with the changed writable fields.
    pub update: bool,
    /// DELETE -> DELETE `{path}/{id}`.
    pub delete: bool,
    /// JSON keys the API accepts in bodies (`tags` is sent as the platform's `tags_text`).
    pub fields: &'static [&'static str],
    /// Columns changed through action endpoints instead of PUT (orders' statuses).
    pub actions: &'static [Action],
}

impl Writes {
    /// Whether `column` is changed through an action endpoint.
    pub fn is_action(&self, column: &str) -> bool {
        self.actions.iter().any(|a| a.column == column)
    }

    /// The action endpoint that sets `column` to `value`, if any.
    pub fn action(&self, column: &str, value: &str) -> Option<&'static Action> {
        self.actions.iter().find(|a| {
            a.column == column
                && match a.values {
                    ActionValues::Listed(v) => v.contains(&value),
                    ActionValues::Any { .. } => true,
                }
        })
    }

    /// What the action endpoints can do, for hints: `order_status can become cancelled, open
    /// or closed; financial_status any payment status`.
    pub fn actions_hint(&self) -> String {
        let mut columns: Vec<&str> = Vec::new();
        for a in self.actions {
            if !columns.contains(&a.column) {
                columns.push(a.column);
            }
        }
        let say = |col: &&str| {
            let of_col = || self.actions.iter().filter(move |a| a.column == *col);
            if let Some(noun) = of_col().find_map(|a| if let ActionValues::Any { noun } = a.values { Some(noun) } else { None }) {
                return format!("{col} any {noun}");
            }
            let values: Vec<&str> = of_col().flat_map(|a| if let ActionValues::Listed(v) = a.values { v.to_vec() } else { vec![] }).collect();
            match values.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{col} can become {} or {last}", rest.join(", ")),
                _ => format!("{col} can become {}", values.join("")),
            }
        };
        columns.iter().map(say).collect::<Vec<_>>().join("; ")
    }
}

/// `PUT {path}/{id}/{suffix}`: how an action endpoint sets a column to a value.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    pub column: &'static str,
    pub values: ActionValues,
    pub suffix: &'static str,
    pub body: ActionBody,
}

/// The values an action endpoint sets.
#[derive(Debug, Clone, Copy)]
pub enum ActionValues {
    Listed(&'static [&'static str]),
    /// Any value (`noun` says of what, for hints).
    Any {
        noun: &'static str,
    },
}

/// The body an action endpoint takes.
#[derive(Debug, Clone, Copy)]
pub enum ActionBody {
    /// `{"key": value}`.
    Value { key: &'static str },
    /// A fixed JSON object, whatever the value.
    Fixed { json: &'static str },
}

pub const READ_ONLY: Writes = Writes { create: false, update: false, delete: false, fields: &[], actions: &[] };

const fn crud(fields: &'static [&'static str]) -> Writes {
    Writes { create: true, update: true, delete: true, fields, actions: &[] }
}

#[derive(Debug)]
pub struct Resource {
    /// Table name, and the value of the `resource` table option.
    pub name: &'static str,
    /// List (or item-base) path; single rows are `{path}/{id}`.
    pub path: &'static str,
    /// Scope group: reads need `read_{group}`, writes `write_{group}`; `public` needs none.
    pub scope_group: &'static str,
    pub access: Access,
    /// Whether `GET {path}/{id}` exists.
    pub get_by_id: bool,
    pub parent: Option<Parent>,
    pub columns: &'static [Column],
    /// WHERE clauses the API can apply (beyond `id` and parent keys).
    pub pushdown: &'static [Push],
    pub writes: Writes,
    pub comment: &'static str,
    /// Rows the planner assumes when nobody said (the table option `rows` overrides it).
    pub default_rows: f64,
    /// The 0.1.0 webhook mirror table that keeps a local copy, if any.
    pub mirror: Option<&'static str>,
}

impl Resource {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The scope a read of this resource needs, if any.
    pub fn read_scope(&self) -> Option<String> {
        self.scope("read")
    }

    /// The scope a write of this resource needs, if any.
    pub fn write_scope(&self) -> Option<String> {
        self.scope("write")
    }

    fn scope(&self, kind: &str) -> Option<String> {
        match self.scope_group {
            "" | "public" => None,
            g => Some(format!("{kind}_{g}")),
        }
    }

    /// The column whose values become per-key GETs: a child's parent key, a key-required
    /// table's key, or `id` where the API can get one row by id.
    pub fn key_column(&self) -> Option<&'static str> {
        match (&self.parent, self.access) {
            (Some(p), _) => Some(p.key_column),
            (None, Access::KeyRequired { key }) => Some(key),
            (None, _) if self.get_by_id => Some("id"),
            _ => None,
        }
    }
}

/// A webhook event the platform sends (the X-Cyberbiz-Event header) and what it is about: the
/// resource (`orders`, `product_variants`; `app` for apps/uninstall), the verb (the event's
/// second part: `paid`, `delete`), and whether it says the object is gone.
#[derive(Debug, Clone, Copy)]
pub struct WebhookEvent {
    pub event: &'static str,
    pub resource: &'static str,
    pub deletes: bool,
}

impl WebhookEvent {
    pub fn verb(&self) -> &'static str {
        self.event.split_once('/').map_or("", |(_, v)| v)
    }

    /// The name 0.1.0 gave the event's kind (`products_deleted` for a deletion): what the events
    /// table's `resource` column and the 0.1.0 mirrors still take, until the mirrors go.
    pub fn legacy_kind(&self) -> String {
        if self.deletes {
            format!("{}_deleted", self.resource)
        } else {
            self.resource.to_string()
        }
    }
}

/// Webhook `event`, or None for an event CYBERBIZ does not send.
pub fn webhook_kind(event: &str) -> Option<&'static WebhookEvent> {
    WEBHOOK_EVENTS.iter().find(|e| e.event == event)
}

/// The event a payload delivered without (or with an unknown) `X-Cyberbiz-Event` header is,
/// when its shape says so without doubt: an order (`line_items` or `order_number`), a product
/// (`product_variants`, or `handle` and `title` without `product_id`), a variant or inventory
/// change (`product_id` with `sku`, `inventory_quantity` or `price`), a customer (`email` with a
/// name or `orders_count`, and no order number). Always an update (a creation at an equal
/// `updated_at` could not replace what came after it). None: not unambiguous.
pub fn webhook_from_payload(p: &serde_json::Value) -> Option<&'static str> {
    let has = |k: &str| p.get(k).is_some_and(|v| !v.is_null());
    let order = has("line_items") || has("order_number");
    let product = has("product_variants") || (has("handle") && has("title") && !has("product_id"));
    let variant = has("product_id") && (has("sku") || has("inventory_quantity") || has("price"));
    let customer = has("email") && (has("first_name") || has("last_name") || has("name") || has("orders_count")) && !has("order_number");
    match (order, product, variant, customer) {
        (true, false, false, false) => Some("orders/update"),
        (false, true, false, false) => Some("products/update"),
        (false, false, true, false) => Some("variants/update"),
        (false, false, false, true) => Some("customers/update"),
        _ => None,
    }
    .filter(|e| webhook_kind(e).is_some())
}

impl PartialEq for Resource {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Resource {}

pub fn find(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.name == name)
}

pub fn names() -> Vec<&'static str> {
    RESOURCES.iter().map(|r| r.name).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn payloads_without_an_event_are_classified_only_when_unambiguous() {
        use serde_json::json;
        let c = |v| super::webhook_from_payload(&v);
        assert_eq!(c(json!({"id": 1, "order_number": 1001, "line_items": []})), Some("orders/update"));
        assert_eq!(c(json!({"id": 2, "title": "tea", "handle": "tea"})), Some("products/update"));
        assert_eq!(c(json!({"id": 3, "product_id": 2, "inventory_quantity": 7})), Some("variants/update"));
        assert_eq!(c(json!({"id": 4, "email": "a@b.tw", "first_name": "A"})), Some("customers/update"));
        assert_eq!(c(json!({"id": 5, "order_number": 1, "email": "a@b.tw", "name": "x", "product_variants": []})), None, "two shapes");
        assert_eq!(c(json!({"id": 6, "points": 10})), None, "no known shape");
    }

    use super::*;

    #[test]
    fn covers_every_seed_resource_once() {
        let seed = [
            "shop",
            "orders",
            "customers",
            "products",
            "custom_collections",
            "smart_collections",
            "inventory_sync_groups",
            "periodic_orders",
            "einvoices",
            "affiliate_vendor_orders",
            "discounts",
            "add_buy_collections",
            "shop_coupons",
            "special_collections",
            "vip_groups",
            "pos_shops",
            "stock_adjustments",
            "stock_invoices",
            "stock_receipts",
            "stock_requisitions",
            "branch_stores",
            "edms",
            "product_feeds",
        ];
        for s in seed {
            assert!(find(s).is_some(), "catalog lacks {s}");
        }
        let mut names = names();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate resource names");
        assert!(find("order_line_items").unwrap().parent.is_some());
        for r in RESOURCES {
            assert_eq!(r.columns.last().map(|c| c.name), Some("raw"), "{} ends with raw", r.name);
            let mut cols: Vec<_> = r.columns.iter().map(|c| c.name).collect();
            cols.sort();
            let n = cols.len();
            cols.dedup();
            assert_eq!(n, cols.len(), "{} has duplicate columns", r.name);
            if let Some(p) = &r.parent {
                assert!(find(p.resource).is_some() && r.column(p.key_column).is_some());
            }
        }
    }

    /// The sandbox serves the API as the catalog describes it: same resources, paths, scope
    /// groups, listing kinds, verbs and filter parameters, and every webhook event it sends is
    /// one the catalog knows. The emulator and the wrapper cannot drift apart.
    #[test]
    fn sandbox_routes_agree_with_the_catalog() {
        use cyberbiz_sandbox::routes::{self, Listing};
        for route in routes::ROUTES {
            assert!(find(route.name).is_some(), "the sandbox serves {}, which the catalog lacks", route.name);
        }
        for r in RESOURCES.iter().filter(|r| r.parent.is_none() && r.name != "shop" && !matches!(r.access, Access::Unavailable { .. })) {
            let route = routes::by_name(r.name).unwrap_or_else(|| panic!("the sandbox lacks {}", r.name));
            assert_eq!((route.path, route.group), (r.path, r.scope_group), "{}: path and scope group", r.name);
            let listing = match r.access {
                Access::Paged => Listing::Paged,
                Access::Whole { rows_at } => Listing::Whole { wrap: rows_at },
                _ => Listing::None,
            };
            assert_eq!(route.listing, listing, "{}: listing", r.name);
            assert_eq!(route.get, r.get_by_id, "{}: GET by id", r.name);
            assert_eq!((route.post, route.put, route.delete), (r.writes.create, r.writes.update, r.writes.delete), "{}: write verbs", r.name);
            for param in list_params(r) {
                assert!(route.filters.iter().any(|f| f.param == param), "{}: the sandbox ignores the parameter {param}", r.name);
            }
            let sent = [(route.post, "create"), (route.put, "update"), (route.delete, route.delete_verb)];
            for event in sent.iter().filter(|(on, _)| *on).filter_map(|(_, verb)| route.webhook(verb)) {
                assert!(webhook_kind(&event).is_some(), "{}: the sandbox sends {event}, which the catalog does not know", r.name);
            }
        }
    }

    /// The list query parameters a resource's pushdown sends.
    fn list_params(r: &Resource) -> Vec<&'static str> {
        r.pushdown
            .iter()
            .flat_map(|p| match *p {
                Push::TimeRange { from, to, .. } | Push::DateRange { from, to, .. } => vec![from, to],
                Push::AnyOf { param, .. } | Push::One { param, .. } | Push::Has { param, .. } | Push::NullTest { param, .. } => vec![param],
                Push::Lookup { .. } | Push::Direct { .. } | Push::IdList { .. } => vec![],
            })
            .collect()
    }

    /// The lookups the planner sends exist in the sandbox and find what they look up (real HTTP
    /// over loopback), with values read from the sandbox's own lists.
    #[test]
    fn sandbox_answers_every_lookup_the_planner_sends() {
        let sb = cyberbiz_sandbox::spawn_background(cyberbiz_sandbox::Config { rps: 0, ..Default::default() }).expect("start a sandbox");
        let token = cyberbiz_sandbox::token(cyberbiz_sandbox::config::DEFAULT_JWT_SECRET, cyberbiz_sandbox::ALL_SCOPES, 600);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let get = |path: &str| -> (u16, serde_json::Value) {
            rt.block_on(async {
                let r = reqwest::Client::new().get(format!("{}{path}", sb.url)).bearer_auth(&token).send().await.expect("request");
                (r.status().as_u16(), r.json().await.unwrap_or(serde_json::Value::Null))
            })
        };
        let (_, orders) = get("/v1/orders?per_page=50");
        let (_, customers) = get("/v1/customers?per_page=50");
        let with = |key: &str| -> String {
            let found = customers.as_array().and_then(|c| c.iter().find_map(|c| c[key].as_str().filter(|v| !v.is_empty())));
            found.expect("a customer with that field").to_string()
        };
        let invoiced = orders.as_array().and_then(|o| o.iter().find(|o| o["einvoice"].is_object())).expect("an order with an e-invoice");
        let value = |param: &str| -> String {
            match param {
                "order_numbers" => orders[0]["order_number"].to_string(),
                "customer_emails" => with("email"),
                "customer_mobiles" => with("mobile"),
                "invoice_no" => invoiced["einvoice"]["invoice_no"].as_str().unwrap_or_default().to_string(),
                _ => customers[0]["id"].to_string(),
            }
        };
        for r in RESOURCES {
            for p in r.pushdown {
                let (path, param) = match *p {
                    Push::Lookup { path, param, .. } | Push::Direct { path, param, .. } | Push::IdList { path, param, .. } => (path, param),
                    _ => continue,
                };
                let query = url::form_urlencoded::Serializer::new(String::new()).append_pair(param, &value(param)).finish();
                let (status, body) = get(&format!("{path}?{query}"));
                let found = body.as_array().map_or(body.is_object(), |a| !a.is_empty());
                assert!(status == 200 && found, "{}: GET {path}?{query} answered {status} {body}", r.name);
            }
        }
    }

    /// Every mirror table the catalog names is created by the extension's SQL.
    #[test]
    fn mirror_tables_exist_in_the_extension_sql() {
        let sql = include_str!("../../sql/mirrors.sql");
        for m in RESOURCES.iter().filter_map(|r| r.mirror) {
            assert!(sql.contains(&format!("CREATE TABLE {m} (")), "sql/mirrors.sql lacks {m}");
        }
        let created = sql.lines().filter(|l| l.starts_with("CREATE TABLE") && l.contains("_mirror (")).count();
        assert_eq!(RESOURCES.iter().filter(|r| r.mirror.is_some()).count(), created, "mirror tables in the SQL but not the catalog");
    }
}
