//! What the sandbox serves: one declaration per API resource (path, scope group, verbs,
//! pagination, filters, webhook event names). The handler in `server.rs` is generic over it,
//! the way the FDW's own catalog drives its scans.

/// How a resource's list endpoint answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Listing {
    /// `page`/`per_page`/`offset` with the X-Total* headers; body is a bare JSON array.
    Paged,
    /// The whole list in one response; `wrap` names the object key holding it, if any.
    Whole { wrap: Option<&'static str> },
    /// No list endpoint at all (only get-by-id or lookups).
    None,
}

/// How a query parameter narrows a list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    /// Timestamp at `path` >= parameter (Taipei local; a bare date means its first second).
    From,
    /// Timestamp at `path` <= parameter (a bare date means its last second).
    To,
    /// Value at `path` (a string, number, or array of them) is one of the comma-separated values.
    AnyOf,
    /// No value at `path` is one of the comma-separated values.
    NoneOf,
    /// Number at `path` <= parameter.
    AtMost,
    /// Parameter `true` keeps only items whose `path` is true.
    OnlyTrue,
    /// `ec` / `pos`: whether the order came through a POS (path holds the POS shop id).
    DataSource,
}

#[derive(Clone, Copy, Debug)]
pub struct Filter {
    pub param: &'static str,
    pub path: &'static str,
    pub op: Op,
}

const fn f(param: &'static str, path: &'static str, op: Op) -> Filter {
    Filter { param, path, op }
}

#[derive(Debug)]
pub struct Route {
    /// Key of the collection in the store.
    pub name: &'static str,
    /// List path; item paths are `{path}/{id}`.
    pub path: &'static str,
    /// Scope group: GET needs `read_{group}`, writes need `write_{group}`; `public` needs none.
    pub group: &'static str,
    pub listing: Listing,
    pub get: bool,
    pub post: bool,
    pub put: bool,
    pub delete: bool,
    /// Fields a POST must carry (422 otherwise), from the reference's request schemas.
    pub required: &'static [&'static str],
    pub filters: &'static [Filter],
    /// Webhook event prefix (`products` -> `products/create`), and the verb for deletions; empty
    /// for resources whose changes the platform sends no webhook for (docs/api/en/webhooks.md).
    pub event: &'static str,
    pub delete_verb: &'static str,
    /// `GET {path}/{id}` answers without the object's `id`, as the platform's product does (the
    /// golden of GET /v1/products/{id}).
    pub get_without_id: bool,
}

const NO_FILTERS: &[Filter] = &[];

const ORDER_FILTERS: &[Filter] = &[
    f("start_time", "created_at", Op::From),
    f("end_time", "created_at", Op::To),
    f("updated_at_start_time", "updated_at", Op::From),
    f("updated_at_end_time", "updated_at", Op::To),
    f("closed_at_start_time", "timings.closed_at", Op::From),
    f("closed_at_end_time", "timings.closed_at", Op::To),
    f("refund_at_start_time", "timings.refund_at", Op::From),
    f("refund_at_end_time", "timings.refund_at", Op::To),
    f("cancelled_at_start_time", "timings.cancelled_at", Op::From),
    f("cancelled_at_end_time", "timings.cancelled_at", Op::To),
    f("statuses", "statuses.order_status", Op::AnyOf),
    f("financial_statuses", "statuses.financial_status", Op::AnyOf),
    f("fulfillment_statuses", "statuses.fulfillment_status", Op::AnyOf),
    f("return_statuses", "statuses.return_status", Op::AnyOf),
    f("tags", "tags", Op::AnyOf),
    f("excluded_tags", "tags", Op::NoneOf),
    f("data_source", "pos_info.pos_shop_id", Op::DataSource),
    f("vendor", "line_items.vendor", Op::AnyOf),
];

const fn route(name: &'static str, path: &'static str, group: &'static str) -> Route {
    Route {
        name,
        path,
        group,
        listing: Listing::Paged,
        get: true,
        post: false,
        put: false,
        delete: false,
        required: &[],
        filters: NO_FILTERS,
        event: "",
        delete_verb: "delete",
        get_without_id: false,
    }
}

const fn crud(name: &'static str, path: &'static str, group: &'static str, required: &'static [&'static str]) -> Route {
    Route { post: true, put: true, delete: true, required, ..route(name, path, group) }
}

pub static ROUTES: &[Route] = &[
    Route {
        event: "customers",
        post: true,
        put: true,
        required: &["name", "password", "enable_cvs_pickup", "accepts_marketing"],
        filters: &[f("updated_at_start_time", "updated_at", Op::From), f("updated_at_end_time", "updated_at", Op::To)],
        ..route("customers", "/v1/customers", "customers")
    },
    Route { event: "orders", put: true, filters: ORDER_FILTERS, ..route("orders", "/v1/orders", "orders") },
    Route { event: "products", get_without_id: true, ..crud("products", "/v1/products", "products", &["title", "handle", "published", "price"]) },
    Route { event: "collections", ..crud("custom_collections", "/v1/custom_collections", "products", &["title", "handle", "published"]) },
    Route { event: "collections", ..crud("smart_collections", "/v1/smart_collections", "products", &["title"]) },
    crud("inventory_sync_groups", "/v1/inventory_sync_groups", "products", &["title"]),
    Route { get: false, put: true, filters: &[f("preorder_start_at", "created_at", Op::From)], ..route("periodic_orders", "/v1/periodic_orders", "orders") },
    Route { listing: Listing::None, ..route("einvoices", "/v1/einvoices", "orders") },
    crud("discounts", "/v1/discounts", "discounts", &["name"]),
    crud("add_buy_collections", "/v1/add_buy_collections", "discounts", &["title"]),
    Route {
        event: "coupons",
        delete_verb: "destroy",
        filters: &[
            f("coupon_types", "coupon_type", Op::AnyOf),
            f("tags", "tags", Op::AnyOf),
            f("only_valid", "valid", Op::OnlyTrue),
            f("order_price_threshold_lteq", "order_price_threshold", Op::AtMost),
        ],
        ..crud(
            "shop_coupons",
            "/v1/shop_coupons",
            "discounts",
            &["title", "code", "coupon_type", "value", "order_price_threshold", "concurrently_apply", "usage_limit"],
        )
    },
    crud("special_collections", "/v1/special_collections", "discounts", &["title"]),
    Route {
        listing: Listing::Whole { wrap: Some("current") },
        post: true,
        delete: true,
        required: &["name"],
        ..route("vip_groups", "/v1/vip_groups", "discounts")
    },
    Route { put: true, ..route("pos_shops", "/v1/pos_shops", "pos") },
    Route { post: true, filters: &[f("pos_shop_id", "pos_shop_id", Op::AnyOf)], ..route("stock_adjustments", "/v1/stock_adjustments", "pos") },
    Route {
        post: true,
        filters: &[
            f("pos_shop_id", "pos_shop_id", Op::AnyOf),
            f("status", "status", Op::AnyOf),
            f("start_date", "created_at", Op::From),
            f("end_date", "created_at", Op::To),
            f("target_pos_shop_id", "target_pos_shop_id", Op::AnyOf),
        ],
        ..route("stock_invoices", "/v1/stock_invoices", "pos")
    },
    Route {
        post: true,
        filters: &[
            f("pos_shop_id", "pos_shop_id", Op::AnyOf),
            f("status", "status", Op::AnyOf),
            f("start_date", "created_at", Op::From),
            f("end_date", "created_at", Op::To),
            f("source_pos_shop_id", "source_pos_shop_id", Op::AnyOf),
        ],
        ..route("stock_receipts", "/v1/stock_receipts", "pos")
    },
    Route {
        post: true,
        filters: &[
            f("pos_shop_id", "pos_shop_id", Op::AnyOf),
            f("source_pos_shop_id", "source_pos_shop_id", Op::AnyOf),
            f("status", "status", Op::AnyOf),
            f("start_date", "created_at", Op::From),
            f("end_date", "created_at", Op::To),
        ],
        ..route("stock_requisitions", "/v1/stock_requisitions", "pos")
    },
    crud("branch_stores", "/v1/branch_stores", "branch_stores", &["name"]),
    Route {
        get: false,
        filters: &[
            f("start_time", "order.created_at", Op::From),
            f("end_time", "order.created_at", Op::To),
            f("closed_at_start_time", "order.timings.closed_at", Op::From),
            f("closed_at_end_time", "order.timings.closed_at", Op::To),
            f("statuses", "order.statuses.order_status", Op::AnyOf),
        ],
        ..route("affiliate_vendor_orders", "/v2/affiliate_vendor_orders", "affiliates")
    },
    Route { get: false, listing: Listing::Whole { wrap: Some("product_feeds") }, ..route("product_feeds", "/v2/product_feeds", "public") },
];

impl Route {
    /// The webhook event a change by `verb` (`create`, `update`, or the delete verb) sends.
    pub fn webhook(&self, verb: &str) -> Option<String> {
        (!self.event.is_empty()).then(|| format!("{}/{verb}", self.event))
    }
}

pub fn find(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path)
}

pub fn by_name(name: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.name == name)
}
