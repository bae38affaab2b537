//! The webhook events the platform sends, as data (the reference's docs/api/en/webhooks.md).

use super::WebhookEvent;

const fn ev(event: &'static str, resource: &'static str) -> WebhookEvent {
    WebhookEvent { event, resource, deletes: false }
}

/// An event saying the object is gone.
const fn gone(event: &'static str, resource: &'static str) -> WebhookEvent {
    WebhookEvent { event, resource, deletes: true }
}

/// Every event of the reference's webhook list (docs/api/en/webhooks.md).
pub static WEBHOOK_EVENTS: &[WebhookEvent] = &[
    ev("customers/create", "customers"),
    ev("customers/update", "customers"),
    ev("uid_providers/create", "customers"),
    ev("uid_providers/update", "customers"),
    ev("customer_tags/update", "customers"),
    ev("orders/create", "orders"),
    ev("orders/paid", "orders"),
    ev("orders/preparing", "orders"),
    ev("orders/fulfilled", "orders"),
    ev("orders/received", "orders"),
    ev("orders/arrived", "orders"),
    ev("orders/expired", "orders"),
    ev("orders/cancelled", "orders"),
    ev("orders/returned", "orders"),
    ev("orders/partial_return", "orders"),
    ev("orders/refunded", "orders"),
    ev("orders/partial_refunded", "orders"),
    ev("orders/closed", "orders"),
    ev("orders/request_return", "orders"),
    ev("orders/opened", "orders"),
    ev("orders/update", "orders"),
    ev("express_delivery_orders/update", "orders"),
    ev("products/create", "products"),
    ev("products/update", "products"),
    ev("products/update_photos", "products"),
    ev("products/update_options", "products"),
    gone("products/delete", "products"),
    ev("variants/create", "product_variants"),
    ev("variants/update", "product_variants"),
    gone("variants/delete", "product_variants"),
    ev("bonus_points/create", "bonus_points"),
    ev("bonus_points/update", "bonus_points"),
    ev("bonus_points/destroy", "bonus_points"),
    ev("comment_bonus/create", "bonus_points"),
    ev("coupons/create", "coupons"),
    ev("coupons/update", "coupons"),
    ev("coupons/destroy", "coupons"),
    ev("customer_vip_level/update", "customer_vip_level"),
    ev("affiliate_vendor_orders/create", "affiliate_vendor_orders"),
    ev("affiliate_vendor_orders/closed", "affiliate_vendor_orders"),
    ev("affiliate_vendor_orders/cancelled", "affiliate_vendor_orders"),
    ev("collections/create", "collections"),
    ev("collections/update", "collections"),
    ev("collections/delete", "collections"),
    ev("domains/create", "domains"),
    ev("domains/update", "domains"),
    ev("domains/destroy", "domains"),
    ev("menus/create", "menus"),
    ev("menus/update", "menus"),
    ev("menus/destroy", "menus"),
    ev("bulk_operations/finish", "bulk_operations"),
    ev("apps/uninstall", "app"),
];
