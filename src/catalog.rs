//! The resource catalog: one declaration per CYBERBIZ resource, read by every other part of the
//! FDW (validation, planning, scanning, import). Data, not code.

/// How rows of a resource are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A paginated list endpoint (`page`, `per_page`, `offset`, X-Total headers).
    Paged,
    /// One request returns every row (no pagination parameters).
    Whole,
    /// No list endpoint: a WHERE clause on the key is required (e.g. einvoices by id).
    KeyRequired { key: &'static str },
    /// The reference documents no endpoint at all; the reason is shown to the user.
    Unavailable { reason: &'static str },
}

#[derive(Debug)]
pub struct Resource {
    /// Table name, and the value of the `resource` table option.
    pub name: &'static str,
    /// List (or item-base) path.
    pub path: &'static str,
    /// Scope group: reads need `read_{group}`, writes `write_{group}`; `public` needs none.
    pub scope_group: &'static str,
    pub access: Access,
    /// For child tables: the parent resource and the key column that names the parent row.
    pub parent: Option<(&'static str, &'static str)>,
    pub comment: &'static str,
}

const fn paged(name: &'static str, path: &'static str, scope_group: &'static str, comment: &'static str) -> Resource {
    Resource { name, path, scope_group, access: Access::Paged, parent: None, comment }
}

pub static RESOURCES: &[Resource] = &[
    Resource { access: Access::Whole, ..paged("shop", "/shop", "", "The shop itself (商店資訊)") },
    paged("orders", "/v1/orders", "orders", "Orders (訂單)"),
    Resource { parent: Some(("orders", "order_id")), ..paged("order_line_items", "/v1/orders", "orders", "Line items of orders (訂單商品), one row per item") },
    paged("customers", "/v1/customers", "customers", "Customers (顧客)"),
    paged("products", "/v1/products", "products", "Products (商品)"),
    Resource { parent: Some(("products", "product_id")), ..paged("product_variants", "/v1/products", "products", "Product variants (商品規格), one row per variant") },
    paged("custom_collections", "/v1/custom_collections", "products", "Custom collections (自訂商品分類)"),
    paged("smart_collections", "/v1/smart_collections", "products", "Smart collections (智慧商品分類)"),
    paged("inventory_sync_groups", "/v1/inventory_sync_groups", "products", "Inventory sync groups (庫存同步群組)"),
    paged("periodic_orders", "/v1/periodic_orders", "orders", "Periodic (subscription) orders (定期定額訂單)"),
    Resource { access: Access::KeyRequired { key: "id" }, ..paged("einvoices", "/v1/einvoices", "orders", "Electronic invoices (電子發票)") },
    paged("affiliate_vendor_orders", "/v2/affiliate_vendor_orders", "affiliates", "Affiliate vendor orders (導購訂單)"),
    paged("discounts", "/v1/discounts", "discounts", "Shop-wide discount campaigns (全店折扣)"),
    paged("add_buy_collections", "/v1/add_buy_collections", "discounts", "Add-on purchase collections (加價購)"),
    paged("shop_coupons", "/v1/shop_coupons", "discounts", "Shop coupons (優惠券)"),
    paged("special_collections", "/v1/special_collections", "discounts", "Special (mix-and-match) collections (任選優惠)"),
    Resource { access: Access::Whole, ..paged("vip_groups", "/v1/vip_groups", "discounts", "VIP groups (VIP 會員群組)") },
    paged("pos_shops", "/v1/pos_shops", "pos", "POS shops (POS 門市)"),
    paged("stock_adjustments", "/v1/stock_adjustments", "pos", "Stock adjustments (庫存調整單)"),
    paged("stock_invoices", "/v1/stock_invoices", "pos", "Outbound stock invoices (出倉單)"),
    paged("stock_receipts", "/v1/stock_receipts", "pos", "Inbound stock receipts (進倉單)"),
    paged("stock_requisitions", "/v1/stock_requisitions", "pos", "Stock requisitions between warehouses (調倉單)"),
    paged("branch_stores", "/v1/branch_stores", "branch_stores", "Branch stores (門市)"),
    Resource {
        access: Access::Unavailable {
            reason: "the CYBERBIZ API reference documents no endpoint for EDMs (the read_edms scope exists, but no path to read them is published)",
        },
        ..paged("edms", "", "edms", "E-mail marketing campaigns (EDM); no documented endpoint")
    },
    Resource { access: Access::Whole, ..paged("product_feeds", "/v2/product_feeds", "public", "Product feeds for ad platforms (商品資料饋送)") },
];

pub fn find(name: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.name == name)
}

pub fn names() -> Vec<&'static str> {
    RESOURCES.iter().map(|r| r.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_every_seed_resource_once() {
        let seed = [
            "shop", "orders", "customers", "products", "custom_collections", "smart_collections", "inventory_sync_groups",
            "periodic_orders", "einvoices", "affiliate_vendor_orders", "discounts", "add_buy_collections", "shop_coupons",
            "special_collections", "vip_groups", "pos_shops", "stock_adjustments", "stock_invoices", "stock_receipts",
            "stock_requisitions", "branch_stores", "edms", "product_feeds",
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
    }
}
