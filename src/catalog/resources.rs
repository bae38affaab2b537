//! The resources of the catalog, as data: columns, pushdown parameters, writes, order actions,
//! default row estimates and mirror tables of every resource the reference documents.

use super::*;

const ORDER_PUSH: &[Push] = &[
    Push::TimeRange { column: "created_at", from: "start_time", to: "end_time" },
    Push::TimeRange { column: "updated_at", from: "updated_at_start_time", to: "updated_at_end_time" },
    Push::TimeRange { column: "closed_at", from: "closed_at_start_time", to: "closed_at_end_time" },
    Push::TimeRange { column: "cancelled_at", from: "cancelled_at_start_time", to: "cancelled_at_end_time" },
    Push::TimeRange { column: "refund_at", from: "refund_at_start_time", to: "refund_at_end_time" },
    Push::AnyOf { column: "order_status", param: "statuses" },
    Push::AnyOf { column: "financial_status", param: "financial_statuses" },
    Push::AnyOf { column: "fulfillment_status", param: "fulfillment_statuses" },
    Push::AnyOf { column: "return_status", param: "return_statuses" },
    Push::Lookup { column: "order_number", path: "/v1/orders/get_order_id", param: "order_numbers", id_field: "order_id" },
    Push::Has { column: "tags", param: "tags" },
    // POS orders carry their POS shop; online (ec) orders have none.
    Push::NullTest { column: "pos_shop_id", param: "data_source", when_null: "ec", when_not_null: "pos" },
];

const CUSTOMER_PUSH: &[Push] = &[
    Push::TimeRange { column: "updated_at", from: "updated_at_start_time", to: "updated_at_end_time" },
    Push::Lookup { column: "email", path: "/v1/customers/get_customer_id", param: "customer_emails", id_field: "customer_id" },
    Push::Lookup { column: "mobile", path: "/v1/customers/get_customer_id", param: "customer_mobiles", id_field: "customer_id" },
    Push::IdList { path: "/v2/customers", param: "ids", max: 100 },
];

const AFFILIATE_PUSH: &[Push] =
    &[Push::TimeRange { column: "created_at", from: "start_time", to: "end_time" }, Push::AnyOf { column: "order_status", param: "statuses" }];

const COUPON_PUSH: &[Push] = &[Push::AnyOf { column: "coupon_type", param: "coupon_types" }];

const STOCK_INVOICE_PUSH: &[Push] = &[
    Push::One { column: "pos_shop_id", param: "pos_shop_id" },
    Push::One { column: "status", param: "status" },
    Push::One { column: "target_pos_shop_id", param: "target_pos_shop_id" },
    Push::DateRange { column: "created_at", from: "start_date", to: "end_date" },
];

const STOCK_RECEIPT_PUSH: &[Push] = &[
    Push::One { column: "pos_shop_id", param: "pos_shop_id" },
    Push::One { column: "status", param: "status" },
    Push::One { column: "source_pos_shop_id", param: "source_pos_shop_id" },
    Push::DateRange { column: "created_at", from: "start_date", to: "end_date" },
];

const STOCK_REQUISITION_PUSH: &[Push] =
    &[Push::One { column: "status", param: "status" }, Push::DateRange { column: "created_at", from: "start_date", to: "end_date" }];

const STOCK_ADJUSTMENT_PUSH: &[Push] = &[Push::One { column: "pos_shop_id", param: "pos_shop_id" }];

const EINVOICE_PUSH: &[Push] = &[Push::Direct { column: "invoice_no", path: "/v1/einvoices/get_einvoice", param: "invoice_no" }];

/// Orders cannot be PUT whole: their statuses change through these endpoints.
const ORDER_ACTIONS: &[Action] = &[
    Action {
        column: "order_status",
        values: ActionValues::Listed(&["cancelled"]),
        suffix: "cancelled",
        body: ActionBody::Fixed { json: r#"{"cancel_reason": "other"}"# },
    },
    Action { column: "order_status", values: ActionValues::Listed(&["open", "closed"]), suffix: "update_status", body: ActionBody::Value { key: "status" } },
    Action {
        column: "financial_status",
        values: ActionValues::Any { noun: "payment status" },
        suffix: "update_financial_status",
        body: ActionBody::Value { key: "financial_status" },
    },
];

const fn c(name: &'static str, ty: ColType, comment: &'static str) -> Column {
    Column { name, ty, path: "", comment }
}

const fn p(name: &'static str, ty: ColType, path: &'static str, comment: &'static str) -> Column {
    Column { name, ty, path, comment }
}

use ColType::*;

const RAW: Column = c("raw", Jsonb, "The whole API object as returned (原始資料)");
const ID: Column = c("id", BigInt, "ID");
const CREATED: Column = c("created_at", TimestampTz, "Created at (建立時間)");
const UPDATED: Column = c("updated_at", TimestampTz, "Last updated at (更新時間)");

const SHOP_COLUMNS: &[Column] = &[
    c("id", BigInt, "Shop ID (商店編號)"),
    c("name", Text, "Shop name (商店名稱)"),
    c("primary_domain", Text, "Primary domain (主網域)"),
    c("email", Text, "Shop e-mail"),
    c("language", Text, "Language (語系)"),
    c("currency", Text, "Currency (幣別)"),
    c("merchant_location", Text, "Merchant location"),
    c("market_location", Text, "Market location"),
    c("sms_prefix", Text, "SMS prefix (簡訊前綴)"),
    RAW,
];

const ORDER_COLUMNS: &[Column] = &[
    c("id", BigInt, "Order ID"),
    c("order_number", BigInt, "Order number (訂單編號)"),
    c("order_name", Text, "Order name, e.g. #1101"),
    CREATED,
    UPDATED,
    p("order_status", Text, "statuses.order_status", "Order status: open, closed, cancelled (訂單狀態)"),
    p("financial_status", Text, "statuses.financial_status", "Payment status: pending, paid, cod, remitted, failed, refunded... (付款狀態)"),
    p("fulfillment_status", Text, "statuses.fulfillment_status", "Shipping status: unshipped, preparing, fulfilled, received... (物流狀態)"),
    p("return_status", Text, "statuses.return_status", "Return status (退貨狀態)"),
    c("subtotal_price", Numeric, "Subtotal (小計)"),
    p("total_line_items_price", Numeric, "prices.total_line_items_price", "Total of line items (商品總額)"),
    p("shipping_rate_price", Numeric, "prices.shipping_rate_price", "Shipping fee (運費)"),
    p("total_price", Numeric, "prices.total_price", "Order total (訂單總額)"),
    c("total_bonus_redemption_price", Numeric, "Bonus points redeemed (紅利折抵)"),
    p("customer_id", BigInt, "customer.id", "Customer ID (顧客編號)"),
    p("customer_name", Text, "customer.name", "Customer name (顧客姓名)"),
    p("customer_email", Text, "customer.email", "Customer e-mail"),
    p("buyer_email", Text, "buyer.email", "Buyer e-mail (訂購人信箱)"),
    c("shipping_type", Text, "Shipping type"),
    c("shipping_name", Text, "Shipping method (配送方式)"),
    c("payment_name", Text, "Payment method name (付款方式)"),
    c("payment_method", Text, "Payment method"),
    c("delivery_date", Date, "Requested delivery date (指定到貨日)"),
    c("delivery_time", Integer, "Requested delivery time slot (指定時段)"),
    c("note", Text, "Order note (訂單備註)"),
    c("tags", Jsonb, "Order tags (訂單標籤)"),
    p("confirmed_at", TimestampTz, "timings.confirmed_at", "Confirmed at"),
    p("closed_at", TimestampTz, "timings.closed_at", "Closed at (結案時間)"),
    p("cancelled_at", TimestampTz, "timings.cancelled_at", "Cancelled at (取消時間)"),
    p("refund_at", TimestampTz, "timings.refund_at", "Refunded at (退款時間)"),
    p("return_at", TimestampTz, "timings.return_at", "Returned at"),
    p("pos_shop_id", BigInt, "pos_info.pos_shop_id", "POS shop of a POS order; null for online orders"),
    c("from_device", Text, "Device the order came from (下單裝置)"),
    c("merchant_trade_no", Text, "Merchant trade number"),
    c("customer", Jsonb, "Customer object"),
    c("buyer", Jsonb, "Buyer contact"),
    c("receiver", Jsonb, "Receiver and address (收件人)"),
    c("billing_address", Jsonb, "Billing address"),
    c("line_items", Jsonb, "Line items (訂單商品); also the order_line_items table"),
    c("prices", Jsonb, "Price breakdown"),
    c("einvoice", Jsonb, "E-invoice (電子發票)"),
    c("fulfillments", Jsonb, "Fulfillments (出貨紀錄)"),
    RAW,
];

const LINE_ITEM_COLUMNS: &[Column] = &[
    c("id", BigInt, "Line item ID"),
    p("order_id", BigInt, "^id", "Order ID (訂單)"),
    p("order_number", BigInt, "^order_number", "Order number (訂單編號)"),
    c("product_id", BigInt, "Product ID"),
    c("product_variant_id", BigInt, "Variant ID"),
    c("title", Text, "Product title (商品名稱)"),
    c("variant_title", Text, "Variant title (規格)"),
    c("sku", Text, "SKU (商品貨號)"),
    c("vendor", Text, "Vendor (供應商)"),
    c("price", Numeric, "Unit price (單價)"),
    c("cost", Numeric, "Unit cost (成本)"),
    c("quantity", Integer, "Quantity (數量)"),
    c("item_type", Text, "Item type"),
    c("total_price_after_discounts", Numeric, "Total after discounts"),
    c("total_discount", Numeric, "Discount"),
    c("return_status", Text, "Return status"),
    CREATED,
    RAW,
];

const CUSTOMER_COLUMNS: &[Column] = &[
    c("id", BigInt, "Customer ID (顧客編號)"),
    c("name", Text, "Name (姓名)"),
    c("email", Text, "E-mail"),
    c("mobile", Text, "Mobile (手機)"),
    c("status", Text, "Account status"),
    c("gender", Text, "Gender (性別)"),
    c("birthday", Date, "Birthday (生日)"),
    c("accepts_marketing", Boolean, "Accepts marketing (接收行銷訊息)"),
    c("tags", Jsonb, "Customer tags (顧客標籤)"),
    c("note", Text, "Note (備註)"),
    c("bonus_remain", Numeric, "Bonus points left (紅利點數)"),
    c("address", Jsonb, "Address"),
    CREATED,
    UPDATED,
    c("confirmed_at", TimestampTz, "Confirmed at"),
    RAW,
];

const PRODUCT_COLUMNS: &[Column] = &[
    c("id", BigInt, "Product ID (商品編號)"),
    c("title", Text, "Title (商品名稱)"),
    c("published", Boolean, "Published (上架)"),
    c("vendor", Text, "Vendor (供應商)"),
    c("price", Numeric, "Price (售價)"),
    c("product_type", Text, "Product type"),
    c("tags", Jsonb, "Tags (商品標籤)"),
    c("product_url", Text, "Storefront URL"),
    c("sell_from", TimestampTz, "On sale from"),
    c("sell_to", TimestampTz, "On sale until"),
    c("body_html", Text, "Description HTML"),
    c("product_variants", Jsonb, "Variants; also the product_variants table"),
    CREATED,
    UPDATED,
    RAW,
];

const VARIANT_COLUMNS: &[Column] = &[
    c("id", BigInt, "Variant ID"),
    p("product_id", BigInt, "^id", "Product ID (商品)"),
    c("name", Text, "Variant name (規格名稱)"),
    c("sku", Text, "SKU (商品貨號)"),
    c("position", Integer, "Position"),
    c("price", Numeric, "Price (售價)"),
    c("compare_at_price", Numeric, "Original price (原價)"),
    c("cost", Numeric, "Cost (成本)"),
    c("inventory_quantity", Integer, "Stock on hand (庫存)"),
    c("inventory_policy", Text, "deny or continue selling when out of stock"),
    c("inventory_management", Boolean, "Stock tracked"),
    c("sold", Integer, "Units sold"),
    c("weight", Numeric, "Weight"),
    c("option1", Text, "Option 1"),
    c("option2", Text, "Option 2"),
    c("option3", Text, "Option 3"),
    CREATED,
    UPDATED,
    RAW,
];

const COLLECTION_COLUMNS: &[Column] = &[
    ID,
    c("title", Text, "Title (分類名稱)"),
    c("handle", Text, "Handle"),
    c("published", Boolean, "Published"),
    c("position", Integer, "Position"),
    c("body_html", Text, "Description HTML"),
    c("products", Jsonb, "Products in the collection"),
    RAW,
];

const SMART_COLLECTION_COLUMNS: &[Column] = &[
    ID,
    c("title", Text, "Title (分類名稱)"),
    c("handle", Text, "Handle"),
    c("published", Boolean, "Published"),
    c("position", Integer, "Position"),
    c("rules", Jsonb, "Rules (條件)"),
    c("products", Jsonb, "Products in the collection"),
    RAW,
];

const INVENTORY_SYNC_COLUMNS: &[Column] = &[
    ID,
    c("title", Text, "Title"),
    c("inventory_quantity", Integer, "Shared stock (共用庫存)"),
    c("inventory_policy", Text, "Inventory policy"),
    c("variants", Jsonb, "Variants in the group"),
    RAW,
];

const PERIODIC_ORDER_COLUMNS: &[Column] = &[
    ID,
    c("number", Text, "Number"),
    c("customer_id", BigInt, "Customer ID"),
    c("preorders_count", Integer, "Child orders so far"),
    c("start_date", Date, "Start date"),
    c("next_date", Date, "Next order date (下次出貨日)"),
    c("last_date", Date, "Last date"),
    c("periodic", Jsonb, "Schedule"),
    c("sales_page", Jsonb, "Sales page"),
    c("note", Text, "Note"),
    CREATED,
    RAW,
];

const EINVOICE_COLUMNS: &[Column] = &[
    c("id", BigInt, "E-invoice ID"),
    c("order_id", BigInt, "Order ID"),
    c("invoice_no", Text, "Invoice number (發票號碼)"),
    c("invoice_status", Text, "Status"),
    c("invoice_at", TimestampTz, "Issued at (開立時間)"),
    c("invalid_at", TimestampTz, "Voided at (作廢時間)"),
    c("invoice_type", Text, "Type"),
    c("company_no", Text, "Buyer tax ID (統一編號)"),
    c("random_num", Text, "Random code (隨機碼)"),
    c("love_code", Text, "Donation code (愛心碼)"),
    c("phone_barcode", Text, "Mobile barcode carrier (手機條碼)"),
    RAW,
];

const AFFILIATE_COLUMNS: &[Column] = &[
    c("status_code", Text, "Status code"),
    c("uid", Text, "Affiliate uid"),
    c("cid", Text, "Click id"),
    c("vendor_name", Text, "Affiliate vendor (導購商)"),
    p("order_number", BigInt, "order.order_number", "Order number"),
    p("customer_id", BigInt, "order.customer_id", "Customer ID"),
    p("created_at", TimestampTz, "order.created_at", "Order created at"),
    p("order_status", Text, "order.statuses.order_status", "Order status"),
    p("total_price", Numeric, "order.prices.total_price", "Order total"),
    c("order", Jsonb, "The order"),
    RAW,
];

const DISCOUNT_COLUMNS: &[Column] = &[
    ID,
    c("name", Text, "Name (活動名稱)"),
    c("discount_type_name", Text, "Discount type"),
    c("discount_value", Text, "Discount value as shown"),
    c("threshold", Numeric, "Spending threshold (門檻)"),
    c("start_at", TimestampTz, "Starts at"),
    c("end_at", TimestampTz, "Ends at"),
    RAW,
];

const ADD_BUY_COLUMNS: &[Column] = &[
    ID,
    c("title", Text, "Title"),
    c("handle", Text, "Handle"),
    c("published", Boolean, "Published"),
    c("price", Numeric, "Add-on price (加價購價格)"),
    c("item_limit", Integer, "Item limit"),
    c("start_date", Date, "Start date"),
    c("end_date", Date, "End date"),
    c("products", Jsonb, "Products"),
    RAW,
];

const COUPON_COLUMNS: &[Column] = &[
    ID,
    c("title", Text, "Title"),
    c("code", Text, "Coupon code (優惠碼)"),
    c("coupon_type", Text, "Coupon type"),
    c("coupon_type_name", Text, "Coupon type as shown"),
    c("coupon_value", Text, "Value as shown"),
    c("order_price_threshold", Numeric, "Minimum order (門檻)"),
    c("start_date", Date, "Valid from"),
    c("end_date", Date, "Valid until"),
    c("usage_limit", BigInt, "Usage limit"),
    c("used_times", Integer, "Times used"),
    c("valid", Boolean, "Currently valid"),
    c("coupon_status", Text, "Status"),
    c("tags", Jsonb, "Customer tags it is limited to"),
    RAW,
];

const SPECIAL_COLLECTION_COLUMNS: &[Column] = &[
    ID,
    c("title", Text, "Title"),
    c("handle", Text, "Handle"),
    c("published", Boolean, "Published"),
    c("start_date", Date, "Start date"),
    c("end_date", Date, "End date"),
    c("special_collection_type", Jsonb, "Type"),
    c("type_rules", Jsonb, "Rules"),
    c("products", Jsonb, "Products"),
    RAW,
];

const VIP_GROUP_COLUMNS: &[Column] = &[
    ID,
    c("name", Text, "Group name (會員群組)"),
    c("position", Integer, "Position"),
    c("customer_tags", Jsonb, "Customer tags"),
    c("vip_group_levels", Jsonb, "Levels (會員等級)"),
    RAW,
];

const POS_SHOP_COLUMNS: &[Column] = &[
    ID,
    c("name", Text, "POS shop name (門市名稱)"),
    c("phone", Text, "Phone"),
    c("county", Text, "County (縣市)"),
    c("district", Text, "District (區)"),
    c("address", Text, "Address"),
    c("deadline", Date, "Service deadline"),
    RAW,
];

const STOCK_ADJUSTMENT_COLUMNS: &[Column] = &[ID, c("pos_shop_id", BigInt, "POS shop"), c("items", Jsonb, "Adjusted items"), RAW];

const STOCK_INVOICE_COLUMNS: &[Column] = &[
    ID,
    c("pos_shop_id", BigInt, "Source shop"),
    c("pos_shop_name", Text, "Source shop name"),
    c("target_pos_shop_id", BigInt, "Target shop"),
    c("target_pos_shop_name", Text, "Target shop name"),
    c("barcode", Text, "Barcode"),
    c("status", Text, "Status"),
    c("stock_receipt_id", BigInt, "Matching receipt"),
    c("items", Jsonb, "Items"),
    c("comment", Text, "Comment"),
    CREATED,
    RAW,
];

const STOCK_RECEIPT_COLUMNS: &[Column] = &[
    ID,
    c("pos_shop_id", BigInt, "Receiving shop"),
    c("pos_shop_name", Text, "Receiving shop name"),
    c("source_pos_shop_id", BigInt, "Source shop"),
    c("source_pos_shop_name", Text, "Source shop name"),
    c("barcode", Text, "Barcode"),
    c("status", Text, "Status"),
    c("stock_invoice_id", BigInt, "Matching invoice"),
    c("items", Jsonb, "Items"),
    c("check_logs", Jsonb, "Check logs"),
    c("comment", Text, "Comment"),
    CREATED,
    RAW,
];

const STOCK_REQUISITION_COLUMNS: &[Column] = &[
    ID,
    c("pos_shop_name", Text, "Shop name"),
    c("source_shop_name", Text, "Source shop name"),
    c("barcode", Text, "Barcode"),
    c("status", Text, "Status"),
    c("items", Jsonb, "Items"),
    c("comment", Text, "Comment"),
    CREATED,
    RAW,
];

const BRANCH_STORE_COLUMNS: &[Column] = &[
    ID,
    c("store_no", Text, "Store number (門市代號)"),
    c("name", Text, "Name (門市名稱)"),
    c("phone", Text, "Phone"),
    c("county", Text, "County"),
    c("district", Text, "District"),
    c("address", Text, "Address"),
    c("zip", Text, "Postal code"),
    c("opening_hours", Text, "Opening hours (營業時間)"),
    c("lat", Numeric, "Latitude"),
    c("lng", Numeric, "Longitude"),
    c("enabled", Boolean, "Enabled"),
    c("shipping_rates", Jsonb, "Shipping rates"),
    RAW,
];

const EDM_COLUMNS: &[Column] = &[ID, c("title", Text, "Title"), RAW];

const FEED_COLUMNS: &[Column] = &[c("name", Text, "Feed name"), c("url", Text, "Feed URL"), c("mime_type", Text, "MIME type"), RAW];

/// Default row estimates: large lists (the planner then prefers per-key GETs for joins from small
/// local tables), other lists, and resources answered by one request.
const LARGE_LIST: f64 = 10_000.0;
const SMALL_LIST: f64 = 100.0;
const ONE_REQUEST: f64 = 10.0;

const fn paged(name: &'static str, path: &'static str, scope_group: &'static str, columns: &'static [Column], comment: &'static str) -> Resource {
    Resource {
        name,
        path,
        scope_group,
        access: Access::Paged,
        get_by_id: true,
        parent: None,
        columns,
        pushdown: &[],
        writes: READ_ONLY,
        comment,
        default_rows: SMALL_LIST,
        mirror: None,
    }
}

pub static RESOURCES: &[Resource] = &[
    Resource {
        access: Access::Whole { rows_at: Some("shop_info") },
        get_by_id: false,
        default_rows: ONE_REQUEST,
        ..paged("shop", "/shop", "", SHOP_COLUMNS, "The shop itself (商店資訊)")
    },
    Resource {
        writes: Writes { create: false, update: true, delete: false, fields: &["note", "delivery_date", "delivery_time"], actions: ORDER_ACTIONS },
        pushdown: ORDER_PUSH,
        default_rows: LARGE_LIST,
        mirror: Some("cyberbiz_orders_mirror"),
        ..paged("orders", "/v1/orders", "orders", ORDER_COLUMNS, "Orders (訂單)")
    },
    Resource {
        parent: Some(Parent { resource: "orders", array: "line_items", key_column: "order_id" }),
        get_by_id: false,
        default_rows: LARGE_LIST,
        mirror: Some("cyberbiz_order_line_items_mirror"),
        ..paged("order_line_items", "/v1/orders", "orders", LINE_ITEM_COLUMNS, "Line items of orders (訂單商品), one row per item")
    },
    Resource {
        writes: Writes {
            create: true,
            update: true,
            delete: false,
            fields: &[
                "name",
                "status",
                "email",
                "mobile",
                "gender",
                "birthday",
                "note",
                "tags",
                "accepts_marketing",
                "address",
                "password",
                "enable_cvs_pickup",
                "enable_cvs_cod",
                "country_calling_code",
            ],
            actions: &[],
        },
        pushdown: CUSTOMER_PUSH,
        default_rows: LARGE_LIST,
        mirror: Some("cyberbiz_customers_mirror"),
        ..paged("customers", "/v1/customers", "customers", CUSTOMER_COLUMNS, "Customers (顧客)")
    },
    Resource {
        writes: crud(&[
            "title",
            "english_title",
            "handle",
            "published",
            "sell_from",
            "sell_to",
            "product_type",
            "product_type_code",
            "slogan",
            "brief",
            "body_html",
            "vendor",
            "tags",
            "price",
            "tax_type_id",
            "searchable",
            "sku",
            "custom_collection_ids",
        ]),
        default_rows: LARGE_LIST,
        mirror: Some("cyberbiz_products_mirror"),
        ..paged("products", "/v1/products", "products", PRODUCT_COLUMNS, "Products (商品)")
    },
    Resource {
        parent: Some(Parent { resource: "products", array: "product_variants", key_column: "product_id" }),
        get_by_id: false,
        default_rows: LARGE_LIST,
        mirror: Some("cyberbiz_product_variants_mirror"),
        writes: crud(&[
            "name",
            "position",
            "price",
            "cost",
            "compare_at_price",
            "weight",
            "option1",
            "option2",
            "option3",
            "inventory_management",
            "inventory_quantity",
            "sold",
            "safety_inventory_quantity",
            "inventory_policy",
            "sku",
            "qc",
            "requires_shipping",
        ]),
        ..paged("product_variants", "/v1/products", "products", VARIANT_COLUMNS, "Product variants (商品規格), one row per variant")
    },
    Resource {
        writes: crud(&["title", "handle", "published", "body_html", "products_order"]),
        ..paged("custom_collections", "/v1/custom_collections", "products", COLLECTION_COLUMNS, "Custom collections (自訂商品分類)")
    },
    Resource {
        writes: crud(&["title", "handle", "published", "body_html"]),
        ..paged("smart_collections", "/v1/smart_collections", "products", SMART_COLLECTION_COLUMNS, "Smart collections (智慧商品分類)")
    },
    Resource {
        writes: crud(&["title", "inventory_quantity", "inventory_policy"]),
        ..paged("inventory_sync_groups", "/v1/inventory_sync_groups", "products", INVENTORY_SYNC_COLUMNS, "Inventory sync groups (庫存同步群組)")
    },
    Resource {
        writes: Writes { create: false, update: true, delete: false, fields: &["note", "next_date", "delivery_time"], actions: &[] },
        get_by_id: false,
        ..paged("periodic_orders", "/v1/periodic_orders", "orders", PERIODIC_ORDER_COLUMNS, "Periodic (subscription) orders (定期定額訂單)")
    },
    Resource {
        access: Access::KeyRequired { key: "id" },
        pushdown: EINVOICE_PUSH,
        ..paged("einvoices", "/v1/einvoices", "orders", EINVOICE_COLUMNS, "Electronic invoices (電子發票)")
    },
    Resource {
        get_by_id: false,
        pushdown: AFFILIATE_PUSH,
        default_rows: LARGE_LIST,
        ..paged("affiliate_vendor_orders", "/v2/affiliate_vendor_orders", "affiliates", AFFILIATE_COLUMNS, "Affiliate vendor orders (導購訂單)")
    },
    Resource {
        writes: crud(&["name", "threshold", "start_at", "end_at", "discount_type", "value"]),
        ..paged("discounts", "/v1/discounts", "discounts", DISCOUNT_COLUMNS, "Shop-wide discount campaigns (全店折扣)")
    },
    Resource {
        writes: crud(&["title", "handle", "published", "price", "item_limit", "start_date", "end_date"]),
        ..paged("add_buy_collections", "/v1/add_buy_collections", "discounts", ADD_BUY_COLUMNS, "Add-on purchase collections (加價購)")
    },
    Resource {
        writes: crud(&[
            "title",
            "code",
            "coupon_type",
            "value",
            "order_price_threshold",
            "start_date",
            "end_date",
            "concurrently_apply",
            "usage_limit",
            "tags",
        ]),
        pushdown: COUPON_PUSH,
        ..paged("shop_coupons", "/v1/shop_coupons", "discounts", COUPON_COLUMNS, "Shop coupons (優惠券)")
    },
    Resource {
        writes: crud(&["title", "handle", "published", "start_date", "end_date", "body_html"]),
        ..paged("special_collections", "/v1/special_collections", "discounts", SPECIAL_COLLECTION_COLUMNS, "Special (mix-and-match) collections (任選優惠)")
    },
    Resource {
        writes: Writes { create: true, update: false, delete: true, fields: &["name", "customer_tags"], actions: &[] },
        access: Access::Whole { rows_at: Some("current") },
        default_rows: ONE_REQUEST,
        ..paged("vip_groups", "/v1/vip_groups", "discounts", VIP_GROUP_COLUMNS, "VIP groups in effect (VIP 會員群組)")
    },
    Resource {
        writes: Writes { create: false, update: true, delete: false, fields: &["name", "phone", "county", "district", "address"], actions: &[] },
        ..paged("pos_shops", "/v1/pos_shops", "pos", POS_SHOP_COLUMNS, "POS shops (POS 門市)")
    },
    Resource {
        writes: Writes { create: true, update: false, delete: false, fields: &["pos_shop_id", "items"], actions: &[] },
        pushdown: STOCK_ADJUSTMENT_PUSH,
        ..paged("stock_adjustments", "/v1/stock_adjustments", "pos", STOCK_ADJUSTMENT_COLUMNS, "Stock adjustments (庫存調整單)")
    },
    Resource {
        writes: Writes { create: true, update: false, delete: false, fields: &["pos_shop_id", "target_pos_shop_id", "items", "comment"], actions: &[] },
        pushdown: STOCK_INVOICE_PUSH,
        ..paged("stock_invoices", "/v1/stock_invoices", "pos", STOCK_INVOICE_COLUMNS, "Outbound stock invoices (出倉單)")
    },
    Resource {
        writes: Writes { create: true, update: false, delete: false, fields: &["pos_shop_id", "source_pos_shop_id", "items", "comment"], actions: &[] },
        pushdown: STOCK_RECEIPT_PUSH,
        ..paged("stock_receipts", "/v1/stock_receipts", "pos", STOCK_RECEIPT_COLUMNS, "Inbound stock receipts (進倉單)")
    },
    Resource {
        writes: Writes { create: true, update: false, delete: false, fields: &["pos_shop_id", "source_pos_shop_id", "items", "comment"], actions: &[] },
        pushdown: STOCK_REQUISITION_PUSH,
        ..paged("stock_requisitions", "/v1/stock_requisitions", "pos", STOCK_REQUISITION_COLUMNS, "Stock requisitions between warehouses (調倉單)")
    },
    Resource {
        writes: crud(&["store_no", "name", "phone", "county", "district", "address", "zip", "opening_hours", "lat", "lng", "enabled"]),
        ..paged("branch_stores", "/v1/branch_stores", "branch_stores", BRANCH_STORE_COLUMNS, "Branch stores (門市)")
    },
    Resource {
        access: Access::Unavailable {
            reason: "the CYBERBIZ API reference documents no endpoint for EDMs (the read_edms scope exists, but no path to read them is published)",
        },
        get_by_id: false,
        ..paged("edms", "", "edms", EDM_COLUMNS, "E-mail marketing campaigns (EDM); no documented endpoint")
    },
    Resource {
        access: Access::Whole { rows_at: Some("product_feeds") },
        get_by_id: false,
        default_rows: ONE_REQUEST,
        ..paged("product_feeds", "/v2/product_feeds", "public", FEED_COLUMNS, "Product feeds for ad platforms (商品資料饋送)")
    },
];

// Resources are equal by name (so option structs holding one can be compared).
