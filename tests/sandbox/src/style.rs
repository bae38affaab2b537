//! The shape of the shop's objects: `Current` as the SDK's goldens record them, or `Older`, as
//! older shops send them (../shared/reference/field-notes.md): money as integers when whole
//! (and some as numeric strings), times with ` +0800`, flags and small numbers as strings,
//! optional keys missing, `tax_type_id` a code, and product webhooks without
//! `product_variants`. Same data either way: the decoded rows must be the same.

use crate::data::Shop;
use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    #[default]
    Current,
    Older,
}

impl std::str::FromStr for Style {
    type Err = String;
    fn from_str(s: &str) -> Result<Style, String> {
        match s {
            "current" => Ok(Style::Current),
            "older" => Ok(Style::Older),
            _ => Err(format!("--style: current or older, not {s:?}")),
        }
    }
}

/// Keys older order payloads lack (the field notes list about thirty; these four are columns).
const ORDER_KEYS_MISSING: &[&str] = &["subtotal_price", "billing_address", "shipping_vendor", "payment_method"];
/// Flags older payloads send as strings.
const FLAGS_AS_TEXT: &[&str] = &["published", "requires_shipping", "inventory_management", "accepts_marketing"];
/// Small numbers older payloads send as strings.
const NUMBERS_AS_TEXT: &[&str] = &["position", "inventory_quantity", "quantity"];

/// Restyles every object of `shop` as `style` has them.
pub fn restyle(shop: &mut Shop, style: Style) {
    if style == Style::Current {
        return;
    }
    for (name, objects) in shop.collections.iter_mut() {
        for o in objects.iter_mut() {
            older(name, o);
        }
    }
}

/// One object of collection `name`, as an older shop sends it.
fn older(name: &str, o: &mut Value) {
    let id = o.get("id").and_then(Value::as_i64).unwrap_or(0);
    // Products carry zoned times; a third of the orders too (both forms occur in one list).
    let zoned = name == "products" || name.ends_with("collections") || (name == "orders" && id % 3 == 0);
    let text_money = id % 5 == 0;
    if let Some(m) = o.as_object_mut() {
        if name == "orders" {
            for k in ORDER_KEYS_MISSING {
                m.remove(*k);
            }
        }
        if m.get("tax_type_id").and_then(Value::as_str) == Some("inclusive_tax") {
            m.insert("tax_type_id".into(), Value::from(1));
        }
    }
    walk(o, zoned, text_money);
}

/// Restyles the values under `v`: whole floats become integers (or, with `text_money`, numeric
/// strings), times gain ` +0800` when `zoned`, the flags and small numbers above become strings.
fn walk(v: &mut Value, zoned: bool, text_money: bool) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                restyle_value(k, x, zoned, text_money);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| walk(x, zoned, text_money)),
        _ => {}
    }
}

fn restyle_value(key: &str, x: &mut Value, zoned: bool, text_money: bool) {
    match x {
        Value::Object(_) | Value::Array(_) => walk(x, zoned, text_money),
        Value::Bool(b) if FLAGS_AS_TEXT.contains(&key) => *x = Value::from(b.to_string()),
        Value::Number(n) if NUMBERS_AS_TEXT.contains(&key) && n.is_i64() => *x = Value::from(n.to_string()),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e15 {
                *x = if text_money { Value::from(format!("{}", f as i64)) } else { Value::from(f as i64) };
            }
        }
        Value::String(s) if zoned && is_local_time(s) => s.push_str(" +0800"),
        _ => {}
    }
}

/// `YYYY-MM-DD HH:MM:SS`, as the sandbox writes times.
fn is_local_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[16] == b':'
}

/// The body of a webhook about `object` of collection `name`: older shops' product webhooks
/// leave `product_variants` out (variants come as events of their own).
pub fn webhook_object(style: Style, name: &str, object: &Map<String, Value>) -> Option<Map<String, Value>> {
    if style == Style::Older && name == "products" && object.contains_key("product_variants") {
        let mut m = object.clone();
        m.remove("product_variants");
        return Some(m);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn older_objects_take_the_field_notes_forms() {
        let mut o = json!({"id": 15, "price": 850.0, "cost": 12.5, "published": true, "created_at": "2026-11-21 13:05:09",
            "product_variants": [{"position": 1, "price": 900.0, "requires_shipping": false}], "tax_type_id": "inclusive_tax"});
        older("products", &mut o);
        assert_eq!(o["price"], json!("850"), "id 15: money as a numeric string");
        assert_eq!(o["cost"], json!(12.5), "a fraction stays a float");
        assert_eq!((o["published"].clone(), o["tax_type_id"].clone()), (json!("true"), json!(1)));
        assert_eq!(o["created_at"], json!("2026-11-21 13:05:09 +0800"));
        assert_eq!(o["product_variants"][0], json!({"position": "1", "price": "900", "requires_shipping": "false"}));
        let mut order = json!({"id": 7, "subtotal_price": 100.0, "total_price": 180.0, "created_at": "2026-11-21 13:05:09", "billing_address": null});
        older("orders", &mut order);
        assert_eq!(order, json!({"id": 7, "total_price": 180, "created_at": "2026-11-21 13:05:09"}));
    }

    #[test]
    fn older_product_webhooks_leave_out_variants() {
        let p = json!({"id": 1, "product_variants": []});
        let m = p.as_object().unwrap();
        assert!(!webhook_object(Style::Older, "products", m).unwrap().contains_key("product_variants"));
        assert!(webhook_object(Style::Current, "products", m).is_none());
        assert!(webhook_object(Style::Older, "orders", m).is_none());
    }
}
