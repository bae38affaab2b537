//! Deterministic seeded shop data, shaped like the platform's recorded responses: nested orders
//! (customer, line items, prices, statuses, timings), products with variants, zone-less Taipei
//! timestamps, money as JSON floats, nulls where the platform has them and zh-TW text.
//! The values are invented; only the shapes follow the platform.

use crate::clock::{format_date, format_local};
use crate::rng::Rng;
use serde_json::{json, Value};

pub struct Sizes {
    pub orders: usize,
    pub customers: usize,
    pub products: usize,
}

/// Everything a shop holds, by collection name, each in the order the API lists it.
pub struct Shop {
    pub collections: Vec<(&'static str, Vec<Value>)>,
    pub shop_info: Value,
    pub product_feeds: Value,
    pub vip_groups: Value,
}

const SURNAMES: &[&str] = &["陳", "林", "黃", "張", "李", "王", "吳", "劉", "蔡", "楊"];
const GIVEN: &[&str] = &["怡君", "志明", "雅婷", "家豪", "淑芬", "俊傑", "美玲", "冠宇", "佳穎", "建宏"];
const CITIES: &[(&str, &str)] = &[("台北市", "大安區"), ("新北市", "板橋區"), ("台中市", "西屯區"), ("高雄市", "苓雅區"), ("台南市", "東區")];
const PRODUCT_NAMES: &[&str] =
    &["高山烏龍茶", "手工皂禮盒", "有機糙米", "竹編收納籃", "檜木精油", "鳳梨酥禮盒", "Hi Rocket Tea", "陶瓷馬克杯", "棉麻圍裙", "Coffee Drip Bag"];
const SIZES: &[&str] = &["150g", "300g", "小", "大", "經典款", "禮盒裝"];
const VENDORS: &[Option<&str>] = &[Some("茶山行"), Some("Acme Trading"), None, Some("禾豐農場")];
const ORDER_TAGS: &[&str] = &["VIP", "團購", "預購", "急件"];
const SHIPPING: &[(&str, &str, f64)] = &[("cyberbiz", "門市取貨", 0.0), ("home_delivery", "宅配", 80.0), ("cvs", "超商取貨", 60.0)];
const PAYMENTS: &[&str] = &["信用卡", "銀行轉帳", "貨到付款", "LINE Pay"];

fn money(x: f64) -> Value {
    // Always a float on the wire (9999.0), as the platform sends money.
    Value::from((x * 100.0).round() / 100.0)
}

fn address(r: &mut Rng, name: &str) -> Value {
    let (city, district) = *r.pick(CITIES);
    json!({
        "name": name,
        "country_calling_code": null,
        "phone": format!("09{:08}", r.below(100_000_000)),
        "address": format!("{city}{district}忠孝東路{}號", r.range(1, 300)),
        "detail_address": {
            "zip": format!("{}", r.range(100, 999)),
            "country": null,
            "province": null,
            "city": city,
            "district": district,
            "address1": format!("忠孝東路{}號", r.range(1, 300)),
            "address2": null
        }
    })
}

fn customers(r: &mut Rng, n: usize, anchor: i64) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    let mut id = 23_300_000i64;
    let span = 3 * 365 * 86400i64;
    for i in 0..n {
        id += r.range(1, 40);
        let created = anchor - span + (span * i as i64) / (n.max(1) as i64) + r.range(0, 3000);
        let updated = (created + r.range(0, 400 * 86400)).min(anchor);
        let name = format!("{}{}", r.pick(SURNAMES), r.pick(GIVEN));
        let email = if r.chance(0.9) { Value::from(format!("customer{}@example.com", i + 1)) } else { Value::Null };
        let mobile = if r.chance(0.85) { Value::from(format!("09{:08}", 10_000_000 + i)) } else { Value::Null };
        let mut addr = address(r, &name);
        if let Some(o) = addr.as_object_mut() {
            o.remove("name");
            o.insert("company".into(), Value::Null);
        }
        let tags: Vec<&str> = if r.chance(0.2) { vec!["VIP"] } else { vec![] };
        // Every other customer with a mobile number confirmed it by SMS.
        let sms_confirmed = if i % 2 == 0 && !mobile.is_null() { Value::from(format_local(created)) } else { Value::Null };
        out.push(json!({
            "name": name,
            "status": if r.chance(0.97) { "enabled" } else { "disabled" },
            "email": email,
            "country_calling_code": null,
            "mobile": mobile,
            "enable_cvs_pickup": true,
            "enable_cvs_cod": r.chance(0.8),
            "enable_home_delivery_cod": if r.chance(0.5) { Value::Null } else { Value::from(true) },
            "accepts_marketing": r.chance(0.6),
            "accepts_email_notification": true,
            "tags": tags,
            "address": addr,
            "gender": *r.pick(&[Value::from("female"), Value::from("male"), Value::Null]),
            "birthday": if r.chance(0.6) { Value::from(format!("{}-{:02}-{:02}", r.range(1960, 2004), r.range(1, 12), r.range(1, 28))) } else { Value::Null },
            "other_accumulated_consumption": 0,
            "other_accumulated_consumption_expired_at": null,
            "note": if r.chance(0.1) { Value::from("常客，偏好下午收件") } else { Value::Null },
            "custom_fields": [],
            "created_at": format_local(created),
            "updated_at": format_local(updated),
            "confirmed_at": format_local(created),
            "mobile_sms_confirmed_at": sms_confirmed,
            "bonus_remain": money(r.range(0, 5000) as f64),
            "uid_providers": [],
            "id": id
        }));
    }
    out
}

fn products(r: &mut Rng, n: usize, anchor: i64) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    let mut id = 69_400_000i64;
    let mut variant_id = 84_600_000i64;
    let span = 2 * 365 * 86400i64;
    for i in 0..n {
        id += r.range(1, 50);
        let created = anchor - span + (span * i as i64) / (n.max(1) as i64);
        let updated = (created + r.range(0, 200 * 86400)).min(anchor);
        let title = format!("{} {}", r.pick(PRODUCT_NAMES), r.pick(SIZES));
        let base = (r.range(5, 300) * 10) as f64;
        let vendor = *r.pick(VENDORS);
        let nvar = r.range(1, 3);
        let mut variants = Vec::new();
        for v in 0..nvar {
            variant_id += r.range(1, 20);
            let price = base + (v * 50) as f64;
            variants.push(json!({
                "product_id": id,
                "name": if nvar == 1 { Value::Null } else { Value::from(["經典", "加大", "禮盒"][v as usize]) },
                "position": v + 1,
                "price": money(price),
                "cost": if r.chance(0.7) { money(price * 0.6) } else { Value::Null },
                "compare_at_price": money(price * 1.2),
                "meas": 0.0,
                "max_usable_bonus": 0.0,
                "weight": money(r.range(1, 30) as f64 / 10.0),
                "option1": if nvar == 1 { Value::Null } else { Value::from(["經典", "加大", "禮盒"][v as usize]) },
                "option2": null,
                "option3": null,
                "inventory_management": true,
                "inventory_quantity": r.range(0, 500),
                "sold": r.range(0, 2000),
                "safety_inventory_quantity": null,
                "inventory_policy": if r.chance(0.8) { "deny" } else { "continue" },
                "sku": format!("SKU-{:06x}", variant_id & 0xFFFFFF),
                "qc": if r.chance(0.5) { Value::from(format!("WARE{:04}", i + 1)) } else { Value::Null },
                "requires_shipping": true,
                "created_at": format_local(created),
                "updated_at": format_local(updated),
                "honeycomb_sync": true,
                "vendor": vendor,
                "id": variant_id
            }));
        }
        let tags: Vec<&str> = if r.chance(0.3) { vec!["熱銷"] } else { vec![] };
        out.push(json!({
            "title": title,
            "english_title": null,
            "product_url": format!("//sandbox.cyberbiz.co/products/p{id}"),
            "published": r.chance(0.85),
            "sell_from": null,
            "sell_to": null,
            "product_type": null,
            "product_type_code": null,
            "slogan": "",
            "brief": "",
            "brief_text": null,
            "brief_includes_html": false,
            "body_html": "<p>台灣在地好物</p>",
            "vendor": vendor,
            "price": money(base),
            "sell_weight": 0,
            "tax_type_id": "inclusive_tax",
            "custom_collections": [],
            "special_collection": null,
            "tags": tags,
            "product_variants": variants,
            "product_options": [],
            "pos_shop": null,
            "photos": [],
            "channel": null,
            "related_collections": [],
            "branch_store": null,
            "created_at": format_local(created),
            "updated_at": format_local(updated),
            "temperature_types": ["normal"],
            "searchable": true,
            "google_product_category_id": null,
            "seo_meta_tags": {"title": title, "description": null, "keywords": null},
            "id": id
        }));
    }
    // The platform lists products newest first.
    out.reverse();
    out
}

struct OrderState {
    order_status: &'static str,
    financial_status: &'static str,
    fulfillment_status: &'static str,
    return_status: &'static str,
}

fn order_state(r: &mut Rng) -> OrderState {
    let roll = r.below(100);
    let (o, f, s, ret) = match roll {
        0..=14 => ("open", "pending", "unshipped", "no_need"),
        15..=29 => ("open", "paid", "unshipped", "no_need"),
        30..=39 => ("open", "paid", "preparing", "no_need"),
        40..=49 => ("open", "cod", "fulfilled", "no_need"),
        50..=74 => ("closed", "paid", "received", "no_need"),
        75..=79 => ("closed", "cod", "received", "no_need"),
        80..=84 => ("open", "remitted", "unshipped", "no_need"),
        85..=91 => ("cancelled", "pending", "unshipped", "no_need"),
        92..=95 => ("closed", "refunded", "returned", "returned"),
        96..=97 => ("open", "partial_refunded", "received", "checking"),
        _ => ("open", "failed", "unshipped", "no_need"),
    };
    OrderState { order_status: o, financial_status: f, fulfillment_status: s, return_status: ret }
}

fn orders(r: &mut Rng, n: usize, anchor: i64, customers: &[Value], products: &[Value], einvoices: &mut Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    let mut id = 56_900_000i64;
    let mut line_id = 126_300_000i64;
    let span = 365 * 86400i64;
    for i in 0..n {
        id += r.range(1, 200);
        // Oldest first, the last one a few minutes before the anchor.
        let created = anchor - span + (span * (i as i64 + 1)) / (n.max(1) as i64) - r.range(60, 600);
        let st = order_state(r);
        let customer = if customers.is_empty() { Value::Null } else { customers[r.below(customers.len() as u64) as usize].clone() };
        let cname = customer.get("name").and_then(Value::as_str).unwrap_or("訪客").to_string();
        let mut items = Vec::new();
        let mut subtotal = 0.0;
        for _ in 0..r.range(1, 4) {
            if products.is_empty() {
                break;
            }
            let p = &products[r.below(products.len() as u64) as usize];
            let vs = p["product_variants"].as_array().cloned().unwrap_or_default();
            let Some(v) = vs.get(r.below(vs.len().max(1) as u64) as usize) else { continue };
            let qty = r.range(1, 3);
            let price = v["price"].as_f64().unwrap_or(0.0);
            subtotal += price * qty as f64;
            line_id += r.range(1, 30);
            items.push(json!({
                "id": line_id,
                "product_id": p["id"],
                "product_variant_id": v["id"],
                "title": p["title"],
                "variant_title": v["name"].as_str().map(|n| format!("{} - {n}", p["title"].as_str().unwrap_or(""))).unwrap_or_default(),
                "sku": v["sku"],
                "qc": v["qc"],
                "vendor": p["vendor"],
                "price": money(price),
                "cost": v["cost"],
                "quantity": qty,
                "item_type": "normal",
                "return_status": null,
                "discount_name": "",
                "discounts": [],
                "total_price_before_discounts": money(price * qty as f64),
                "total_discount": 0,
                "total_price_after_discounts": money(price * qty as f64),
                "tax_type_id": "inclusive_tax",
                "bonus_redemption_price": null,
                "related_items": [],
                "created_at": format_local(created),
                "channel": null,
                "weight": v["weight"],
                "photo": null,
                "custom_fields": []
            }));
        }
        let (shipping_type, shipping_name, ship_fee) = *r.pick(SHIPPING);
        let vip_discount = if r.chance(0.2) { (subtotal * 0.05).round() } else { 0.0 };
        let total = subtotal + ship_fee - vip_discount;
        // Within 20 days of creation and never after "now"; recent orders are spread between
        // their creation and now (clamping them all to now would give thousands of orders one
        // updated_at second, which no shop has).
        let updated = match created + r.range(0, 20 * 86400) {
            u if u <= anchor => u,
            u => created + (u - created) % (anchor - created + 1).max(1),
        };
        let closed_at = (st.order_status == "closed").then(|| format_local(updated));
        let cancelled_at = (st.order_status == "cancelled").then(|| format_local(updated));
        let refund_at = matches!(st.financial_status, "refunded" | "partial_refunded").then(|| format_local(updated));
        let pos = r.chance(0.1);
        let mut tags = Vec::new();
        if r.chance(0.3) {
            tags.push(*r.pick(ORDER_TAGS));
        }
        let einvoice = if matches!(st.financial_status, "paid" | "refunded" | "partial_refunded") && r.chance(0.8) {
            let inv = json!({
                "title": "電子發票",
                "order_id": id,
                "company_no": if r.chance(0.2) { Value::from(format!("{:08}", r.below(100_000_000))) } else { Value::Null },
                "invoice_no": format!("{}{:08}", ["AB", "CD", "EF"][r.below(3) as usize], r.below(100_000_000)),
                "invoice_status": if st.financial_status == "refunded" { "invalid" } else { "issued" },
                "invoice_at": format_local(created + 60),
                "invalid_at": if st.financial_status == "refunded" { Value::from(format_local(updated)) } else { Value::Null },
                "random_num": format!("{:04}", r.below(10_000)),
                "invoice_type": "B2C",
                "love_code": null,
                "phone_barcode": if r.chance(0.3) { Value::from("/ABC1234") } else { Value::Null },
                "nature_person": null,
                "id": 7_000_000 + einvoices.len() as i64 + 1
            });
            einvoices.push(inv.clone());
            inv
        } else {
            Value::Null
        };
        let mut receiver = address(r, &cname);
        if let Some(o) = receiver.as_object_mut() {
            o.insert("cvs_store_id".into(), Value::Null);
            o.insert("allpay_logistics_id".into(), Value::Null);
        }
        let buyer = json!({"email": customer.get("email").cloned().unwrap_or(Value::Null), "mobile": null});
        out.push(json!({
            "id": id,
            "subtotal_price": money(subtotal),
            "created_at": format_local(created),
            "updated_at": format_local(updated),
            "order_number": 1001 + i as i64,
            "order_name": format!("#{}", 1001 + i),
            "customer": customer,
            "buyer": buyer,
            "receiver": receiver,
            "billing_address": address(r, &cname),
            "line_items": items,
            "shipping_type": shipping_type,
            "shipping_name": shipping_name,
            "shipping_vendor": {"type": "custom", "name": "黑貓宅急便"},
            "logistics_id": null,
            "delivery_date": if r.chance(0.1) { Value::from(format_date(created + 3 * 86400)) } else { Value::Null },
            "delivery_time": 0,
            "delegate": customer.get("email").cloned().unwrap_or(Value::Null),
            "fulfillments": [],
            "payment_name": *r.pick(PAYMENTS),
            "payment_method": "credit_card",
            "payment_url": null,
            "multiple_payment_infos": [],
            "prices": {
                "total_line_items_price": money(subtotal),
                "shipping_rate_price": money(ship_fee),
                "discounts": {
                    "special_collection_discount": 0,
                    "vip_discount": money(vip_discount),
                    "shop_discount": null,
                    "coupon_discount": null,
                    "coupon_discounts": [],
                    "bonus_consumed": 0.0,
                    "vip_shipping_discount": 0,
                    "coupon_shipping_discount": 0,
                    "price_discount": 0,
                    "third_party_discount": 0
                },
                "total_price": money(total)
            },
            "card4no": null,
            "transaction_number": null,
            "merchant_trade_no": format!("CB{id}"),
            "einvoice": einvoice,
            "paper_invoice_no": null,
            "paper_company_no": null,
            "statuses": {
                "order_status": st.order_status,
                "financial_status": st.financial_status,
                "fulfillment_status": st.fulfillment_status,
                "return_status": st.return_status
            },
            "timings": {
                "request_return_at": null,
                "return_at": if st.return_status == "returned" { Value::from(format_local(updated)) } else { Value::Null },
                "refund_at": refund_at,
                "closed_at": closed_at,
                "cancelled_at": cancelled_at,
                "expired_at": null,
                "confirmed_at": format_local(created)
            },
            "return_histories": [],
            "note": if r.chance(0.15) { Value::from("請於下午送達，謝謝") } else { Value::Null },
            "branch_store": null,
            "referral_code": null,
            "checkout_referral_code": null,
            "checkout_referral_user_name": null,
            "register_referral_code": null,
            "total_bonus_redemption_price": 0.0,
            "pos_info": {
                "pos_user_id": null,
                "pos_user_email": null,
                "pos_shop_id": if pos { Value::from(1446) } else { Value::Null },
                "pos_info": "",
                "pos_id": if pos { Value::from(3) } else { Value::Null },
                "pos_name": if pos { Value::from("信義門市 1 號機") } else { Value::Null }
            },
            "exchange_histories": [],
            "linked_order_info": {"source": "非導購訂單"},
            "tags": tags,
            "express_delivery_branch_store": null,
            "shipping_status": null,
            "extra_info": null,
            "from_device": if pos { "POS" } else { *r.pick(&["桌機", "手機"]) },
            "customer_cancel_reason_detail": null,
            "serial_numbers": [],
            "warehouse_type_id": null,
            "utm_tracking": null,
            "token": format!("{:016x}", r.next_u64())
        }));
    }
    out
}

fn product_refs(products: &[Value], r: &mut Rng, k: usize) -> Vec<Value> {
    (0..k.min(products.len()))
        .map(|i| {
            let p = &products[r.below(products.len() as u64) as usize];
            json!({"id": p["id"], "title": p["title"], "position": i + 1})
        })
        .collect()
}

/// Generates the whole shop for `seed`, with `anchor` (local Taipei seconds) as "now".
pub fn generate(seed: u64, sizes: &Sizes, anchor: i64) -> Shop {
    let mut r = Rng::new(seed);
    let customers = customers(&mut r, sizes.customers, anchor);
    let products = products(&mut r, sizes.products, anchor);
    let mut einvoices = Vec::new();
    let orders = orders(&mut r, sizes.orders, anchor, &customers, &products, &mut einvoices);
    let day = |d: i64| format_date(anchor + d * 86400);
    let ts = |d: i64| format_local(anchor + d * 86400);

    let custom_collections: Vec<Value> = ["本月新品", "茶葉專區", "生活雜貨", "送禮首選", "所有商品"]
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"title": t, "handle": format!("collection-{}", i + 1), "published": i != 2, "body_html": null, "products_order_name": "按標題拼音升序: A-Z", "position": i + 1, "products": product_refs(&products, &mut r, 3), "id": 310_000 + i as i64 * 7}))
        .collect();
    let smart_collections: Vec<Value> = ["熱銷商品", "高價精選", "特價品"]
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"title": t, "handle": format!("smart-{}", i + 1), "published": true, "body_html": "", "position": i + 1, "rules": [{"id": 900 + i, "filter": "price > 500"}], "products": product_refs(&products, &mut r, 2), "id": 420_000 + i as i64 * 3}))
        .collect();
    let inventory_sync_groups: Vec<Value> = (0..3)
        .map(|i| json!({"title": format!("庫存同步群組 {}", i + 1), "inventory_quantity": r.range(0, 900), "inventory_policy": "deny", "variants": [], "id": 5_100 + i}))
        .collect();
    let periodic_orders: Vec<Value> = (0..8)
        .map(|i| {
            let c = customers.get(i as usize).map(|c| c["id"].clone()).unwrap_or(Value::Null);
            json!({"customer_id": c, "number": format!("P{:06}", 1000 + i), "sales_page": {"id": 12, "title": "每月茶葉訂閱"}, "recent_preorder_id": null, "preorders_count": r.range(1, 12), "order_prepare_days": 3, "periodic": {"type": "month", "month": 1, "week": null, "day": 5}, "start_date": day(-200 + i * 10), "next_date": day(5 + i), "last_date": null, "delivery_time": 0, "note": null, "billing_address": null, "created_at": ts(-200 + i * 10), "affiliate_vendor": null, "id": 88_000 + i})
        })
        .collect();
    let discounts: Vec<Value> = (0..4)
        .map(|i| json!({"name": (["滿千折百", "週年慶 9 折", "新會員優惠", "免運活動"][i as usize]), "discount_type_name": if i == 1 { "折扣" } else { "金額" }, "discount_value": (["100.0元", "90%", "50.0元", "60.0元"][i as usize]), "threshold": money([1000.0, 0.0, 500.0, 800.0][i as usize]), "start_at": if i % 2 == 0 { Value::from(ts(-30)) } else { Value::Null }, "end_at": if i % 2 == 0 { Value::from(ts(30)) } else { Value::Null }, "sales_channel_id": 1, "id": 72_600 + i}))
        .collect();
    let add_buy_collections: Vec<Value> = (0..3)
        .map(|i| json!({"title": format!("加價購 {}", i + 1), "handle": format!("add-buy-{}", i + 1), "published": true, "products_order_name": "手動排序", "position": i + 1, "start_date": day(-10), "end_date": day(20), "price": money(99.0 + i as f64 * 50.0), "item_limit": 1, "products": product_refs(&products, &mut r, 2), "id": 6_300 + i}))
        .collect();
    let shop_coupons: Vec<Value> = (0..6)
        .map(|i| json!({"title": format!("測試優惠碼 {}", i + 1), "code": format!("SAVE{:04}", 100 + i), "coupon_type_name": if i % 2 == 0 { "金額" } else { "折扣" }, "coupon_type": if i % 2 == 0 { "price" } else { "percentage" }, "coupon_value": if i % 2 == 0 { "50.0元" } else { "95%" }, "order_price_threshold": money((i * 200) as f64), "start_date": if i < 3 { Value::Null } else { Value::from(day(-5)) }, "end_date": if i < 3 { Value::Null } else { Value::from(day(25)) }, "concurrently_apply": true, "usage_limit": 1000, "can_accumulate_bonus": true, "usage_unlimited": false, "used_times": r.range(0, 40), "gift_order_id": null, "gift_days": null, "account_usage_limit_enabled": false, "account_usage_limit": 0, "restrict_strategy": "unrestricted", "restrict_campaigns": [], "tags": if i == 1 { vec!["VIP"] } else { vec![] }, "pos_shop_ids": [], "coupon_status": if i < 3 { "no_expire_date" } else { "valid" }, "gift_order_status": "", "valid": i != 5, "customer_used_times": 0, "customer_usable": true, "id": 345_196_100 + i, "product_ids": []}))
        .collect();
    let special_collections: Vec<Value> = (0..3)
        .map(|i| json!({"title": format!("任選 {} 件優惠", i + 2), "handle": format!("mix-{}", i + 1), "published": true, "start_date": day(-3), "end_date": day(27), "body_html": "", "position": i + 1, "special_collection_type": {"name": "任選折扣", "code": "mix_and_match"}, "type_rules": [{"id": 40 + i, "quantity": i + 2, "price": null, "percentage": 90}], "rest_include_discount": false, "products": product_refs(&products, &mut r, 2).into_iter().map(|mut p| { if let Some(o) = p.as_object_mut() { o.remove("position"); } p }).collect::<Vec<_>>(), "id": 5_800 + i}))
        .collect();
    let pos_shops: Vec<Value> = [(1446, "信義門市", "台北市", "信義區"), (1554, "板橋門市", "新北市", "板橋區")]
        .iter()
        .map(|(id, n, c, d)| json!({"id": id, "name": n, "phone": "0227200000", "county": c, "district": d, "address": "", "VAT_number": "12345678", "deadline": day(300), "can_find_others_order": true, "can_access_customers": true}))
        .collect();
    let sku_of = |k: usize| -> Value {
        products.get(k % products.len().max(1)).and_then(|p| p["product_variants"][0].get("sku").cloned()).unwrap_or(Value::from("SKU-000000"))
    };
    let stock_adjustments: Vec<Value> = (0..6)
        .map(|i| json!({"id": 9_336_500 + i * 11, "items": [{"sku": sku_of(i as usize), "qc": null, "name": "盤點調整", "quantity": r.range(0, 50), "note": null, "type": if i % 2 == 0 { "surplus" } else { "shortage" }, "created_at": ts(-60 + i)}], "pos_shop_id": if i % 2 == 0 { 1446 } else { 1554 }}))
        .collect();
    let stock_invoices: Vec<Value> = (0..6)
        .map(|i| json!({"id": 370_600 + i, "pos_shop_name": "官網", "pos_shop_id": 0, "target_pos_shop_name": if i % 2 == 0 { "信義門市" } else { "板橋門市" }, "target_pos_shop_id": if i % 2 == 0 { 1446 } else { 1554 }, "barcode": format!("出倉單{:08}", 370_600 + i), "status": if i < 4 { "done" } else { "pending" }, "stock_receipt_id": 979_300 + i, "items": [{"sku": sku_of(i as usize), "quantity": r.range(1, 20)}], "created_at": ts(-40 + i * 3), "comment": ""}))
        .collect();
    let stock_receipts: Vec<Value> = (0..6)
        .map(|i| json!({"id": 979_300 + i, "pos_shop_name": if i % 2 == 0 { "信義門市" } else { "板橋門市" }, "pos_shop_id": if i % 2 == 0 { 1446 } else { 1554 }, "source_pos_shop_name": "官網", "source_pos_shop_id": 0, "barcode": format!("進倉單{:08}", 979_300 + i), "status": if i < 4 { "done" } else { "pending" }, "stock_invoice_id": 370_600 + i, "items": [{"sku": sku_of(i as usize), "quantity": r.range(1, 20)}], "check_logs": [], "created_at": ts(-40 + i * 3), "comment": null}))
        .collect();
    let stock_requisitions: Vec<Value> = (0..5)
        .map(|i| json!({"id": 87_300 + i, "pos_shop_name": "官網", "pos_shop_id": 0, "source_shop_name": "信義門市", "source_pos_shop_id": 1446, "barcode": format!("調倉單{:08}", 87_300 + i), "status": if i < 3 { "done" } else { "pending" }, "items": [{"sku": sku_of(i as usize + 1), "quantity": r.range(1, 9)}], "created_at": ts(-20 + i * 2), "comment": ""}))
        .collect();
    let branch_stores: Vec<Value> = [("A001", "台北旗艦店", "台北市", "中山區", 25.05, 121.52), ("A002", "台中門市", "台中市", "西屯區", 24.16, 120.64), ("A003", "高雄門市", "高雄市", "苓雅區", 22.62, 120.31)]
        .iter()
        .enumerate()
        .map(|(i, (no, n, c, d, lat, lng))| json!({"store_no": no, "name": n, "phone": "0225000000", "county": c, "district": d, "address": "中山北路一段 1 號", "zip": "104", "opening_hours": "10:00-21:00", "lat": lat, "lng": lng, "enabled": i != 2, "shipping_rates": [{"name": "門市自取", "min_order_subtotal": 0.0, "price": 0.0, "payments": [], "id": 10 + i}], "source_type": null, "source_id": null, "id": 2_200 + i as i64}))
        .collect();
    let affiliate_vendor_orders: Vec<Value> = orders
        .iter()
        .take(5)
        .enumerate()
        .map(|(i, o)| {
            let mut order = o.clone();
            if let Some(m) = order.as_object_mut() {
                let cid = m.get("customer").and_then(|c| c.get("id")).cloned().unwrap_or(Value::Null);
                for k in ["id", "customer", "receiver", "billing_address", "fulfillments", "payment_name", "payment_method", "payment_url", "multiple_payment_infos", "card4no", "einvoice", "paper_invoice_no", "paper_company_no", "branch_store", "referral_code", "checkout_referral_code", "checkout_referral_user_name", "register_referral_code", "pos_info", "exchange_histories", "tags", "express_delivery_branch_store", "customer_cancel_reason_detail", "serial_numbers", "warehouse_type_id", "utm_tracking", "token", "logistics_id", "shipping_vendor"] {
                    m.remove(k);
                }
                m.insert("customer_id".into(), cid);
            }
            json!({"status_code": "create_succeed", "uid": format!("U{:032x}", i + 1), "cid": format!("{:032x}", 0xabc + i), "vendor_name": "導購夥伴", "order": order})
        })
        .collect();

    let collections = vec![
        ("customers", customers),
        ("products", products),
        ("orders", orders),
        ("einvoices", einvoices),
        ("custom_collections", custom_collections),
        ("smart_collections", smart_collections),
        ("inventory_sync_groups", inventory_sync_groups),
        ("periodic_orders", periodic_orders),
        ("discounts", discounts),
        ("add_buy_collections", add_buy_collections),
        ("shop_coupons", shop_coupons),
        ("special_collections", special_collections),
        ("pos_shops", pos_shops),
        ("stock_adjustments", stock_adjustments),
        ("stock_invoices", stock_invoices),
        ("stock_receipts", stock_receipts),
        ("stock_requisitions", stock_requisitions),
        ("branch_stores", branch_stores),
        ("affiliate_vendor_orders", affiliate_vendor_orders),
    ];
    let shop_info = json!({"shop_info": {
        "primary_domain": "sandbox.cyberbiz.co",
        "name": "沙盒小舖",
        "id": 7109,
        "email": "owner@example.com",
        "og_image_url": null,
        "shop_line_chat_bot": null,
        "shop_line": {"login_enable": false, "liff_id": null, "liff_enable": false},
        "language": "zh-TW",
        "currency": "TWD",
        "sms_prefix": "【沙盒小舖】",
        "merchant_location": "Taiwan",
        "market_location": "Taiwan"
    }});
    let feed = |name: &str, path: &str, mime: &str| json!({"name": name, "url": format!("https://sandbox.cyberbiz.co/{path}"), "mime_type": mime});
    let product_feeds = json!({"product_feeds": [
        feed("facebook", "products/fbcatalog/5a1d0c", "text/csv"),
        feed("google", "products/google_product_feed/5a1d0c", "text/csv"),
        feed("shopdotcom", "shopdotcom.xml", "text/xml"),
        feed("line", "line_shopping/5a1d0c/product_full.json", "application/json"),
    ]});
    let vip_groups = json!({"current": [
        {"id": 3920, "name": "一般會員", "position": 1, "description_url": null, "customer_tags": [], "vip_group_levels": [{"id": 1, "name": "銅卡", "threshold": 0.0}]},
        {"id": 3921, "name": "尊榮會員", "position": 2, "description_url": null, "customer_tags": ["VIP"], "vip_group_levels": [{"id": 2, "name": "金卡", "threshold": 10000.0}]}
    ], "draft": []});
    Shop { collections, shop_info, product_feeds, vip_groups }
}
