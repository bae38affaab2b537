//! The sandbox's behaviours, each proven over real HTTP on loopback.

use cyberbiz_sandbox::{clock, jwt, spawn_background, token, Background, Config, ALL_SCOPES};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

const SECRET: &str = cyberbiz_sandbox::config::DEFAULT_JWT_SECRET;

fn start(cfg: Config) -> Background {
    spawn_background(Config { anchor: clock::parse_local("2026-11-28 12:00:00", false), ..cfg }).unwrap()
}

fn unlimited() -> Config {
    Config { rps: 0, ..Default::default() }
}

fn all() -> String {
    token(SECRET, ALL_SCOPES, 3600)
}

fn get(sb: &Background, tok: &str, path: &str) -> Response {
    Client::new().get(format!("{}{path}", sb.url)).bearer_auth(tok).send().unwrap()
}

fn header(r: &Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_else(|| panic!("missing header {name}"))
}

#[test]
fn pagination_follows_the_platform() {
    let sb = start(Config { orders: 120, ..unlimited() });
    let t = all();
    let r = get(&sb, &t, "/v1/orders?page=2&per_page=50");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "X-Total"), "120");
    assert_eq!(header(&r, "X-Total-Pages"), "3");
    assert_eq!(header(&r, "X-Page"), "2");
    assert_eq!(header(&r, "X-Per-Page"), "50");
    assert_eq!(header(&r, "X-Offset"), "0");
    assert_eq!(header(&r, "X-Next-Page"), "3");
    assert_eq!(header(&r, "X-Prev-Page"), "1");
    let page2: Vec<Value> = r.json().unwrap();
    assert_eq!(page2.len(), 50);
    assert_eq!(page2[0]["order_number"], 1051, "v1 orders are listed oldest first");

    let r = get(&sb, &t, "/v1/orders?page=3");
    assert_eq!(header(&r, "X-Next-Page"), "");
    assert_eq!(r.json::<Vec<Value>>().unwrap().len(), 20);
    let r = get(&sb, &t, "/v1/orders?page=1");
    assert_eq!(header(&r, "X-Prev-Page"), "");

    // A page past the end is an empty array.
    assert_eq!(get(&sb, &t, "/v1/orders?page=9").json::<Value>().unwrap(), json!([]));
    // offset shifts the slice: record offset + (page-1)*per_page + 1 comes first.
    let r: Vec<Value> = get(&sb, &t, "/v1/orders?page=2&per_page=10&offset=5").json().unwrap();
    assert_eq!(r[0]["order_number"], 1016);
    // per_page above 50 is the platform's 500.
    let r = get(&sb, &t, "/v1/orders?per_page=51");
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().unwrap(), json!({"error": ["系統有誤，請聯絡 CYBERBIZ"]}));
}

#[test]
fn data_is_shaped_like_recorded_responses_and_deterministic() {
    let a = start(unlimited());
    let b = start(unlimited());
    let c = start(Config { seed: 2, ..unlimited() });
    let t = all();
    let oa: Vec<Value> = get(&a, &t, "/v1/orders?per_page=5").json().unwrap();
    let ob: Vec<Value> = get(&b, &t, "/v1/orders?per_page=5").json().unwrap();
    let oc: Vec<Value> = get(&c, &t, "/v1/orders?per_page=5").json().unwrap();
    assert_eq!(oa, ob, "same seed, same data");
    assert_ne!(oa, oc, "another seed, other data");
    let o = &oa[0];
    for k in ["id", "order_number", "customer", "line_items", "prices", "statuses", "timings", "created_at", "updated_at"] {
        assert!(o.get(k).is_some(), "order lacks {k}");
    }
    assert!(o["id"].is_i64());
    assert!(o["prices"]["total_price"].is_f64(), "money is a JSON float");
    let created = o["created_at"].as_str().unwrap();
    assert!(clock::parse_local(created, false).is_some() && created.len() == 19 && !created.contains('T'), "{created}");
    assert!(o["timings"].as_object().unwrap().values().any(Value::is_null), "nulls where the platform has them");
    let p: Vec<Value> = get(&a, &t, "/v1/products?per_page=2").json().unwrap();
    assert!(p[0]["product_variants"].as_array().is_some_and(|v| !v.is_empty()));
    assert!(p[0]["id"].as_i64() > p[1]["id"].as_i64(), "products are listed newest first");
    let text = get(&a, &t, "/v1/customers?per_page=50").text().unwrap();
    assert!(text.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)), "zh-TW text present");
    let shop: Value = get(&a, &t, "/shop").json().unwrap();
    assert_eq!(shop["shop_info"]["currency"], "TWD");
}

#[test]
fn order_filters_are_inclusive_in_taipei_time() {
    let sb = start(Config { orders: 300, ..unlimited() });
    let t = all();
    let every: Vec<Value> = (1..=6).flat_map(|p| get(&sb, &t, &format!("/v1/orders?page={p}")).json::<Vec<Value>>().unwrap()).collect();
    assert_eq!(every.len(), 300);
    let pick = &every[150]["created_at"].as_str().unwrap().to_string();
    let day = &pick[..10];
    let want: Vec<i64> = every
        .iter()
        .filter(|o| o["created_at"].as_str().unwrap() >= pick.as_str() && o["created_at"].as_str().unwrap()[..10] <= *day)
        .filter(|o| matches!(o["statuses"]["financial_status"].as_str(), Some("paid" | "cod")))
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    let q = format!("/v1/orders?start_time={}&end_time={day}&financial_statuses=paid,cod", pick.replace(' ', "%20"));
    let got: Vec<i64> = get(&sb, &t, &q).json::<Vec<Value>>().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    assert_eq!(got, want);
    assert!(!got.is_empty());

    let tagged: Vec<Value> = get(&sb, &t, "/v1/orders?tags=VIP").json().unwrap();
    assert!(!tagged.is_empty() && tagged.iter().all(|o| o["tags"].as_array().unwrap().contains(&json!("VIP"))));
    let pos: Vec<Value> = get(&sb, &t, "/v1/orders?data_source=pos").json().unwrap();
    assert!(!pos.is_empty() && pos.iter().all(|o| !o["pos_info"]["pos_shop_id"].is_null()));
    let r = get(&sb, &t, "/v1/orders?start_time=yesterday");
    assert_eq!(r.status(), 422);
    let upd = get(&sb, &t, "/v1/customers?updated_at_start_time=2026-06-01&updated_at_end_time=2026-06-30");
    let cs: Vec<Value> = upd.json().unwrap();
    assert!(cs.iter().all(|c| c["updated_at"].as_str().unwrap().starts_with("2026-06")));
}

#[test]
fn auth_scopes_and_public_endpoints() {
    let sb = start(unlimited());
    let c = Client::new();
    let missing = c.get(format!("{}/v1/orders", sb.url)).send().unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.json::<Value>().unwrap(), json!({"error": ["無權使用該 API"]}));
    assert_eq!(get(&sb, "not.a.jwt", "/v1/orders").status(), 401);
    let forged = token("another-secret", ALL_SCOPES, 3600);
    assert_eq!(get(&sb, &forged, "/v1/orders").status(), 401);
    let now = clock::now_unix_f64() as i64;
    let expired = jwt::encode(SECRET, ALL_SCOPES, now - 7200, 3600, 1, "x.cyberbiz.co");
    assert_eq!(get(&sb, &expired, "/v1/orders").status(), 401);

    let products_only = token(SECRET, "read_products", 3600);
    assert_eq!(get(&sb, &products_only, "/v1/products").status(), 200);
    assert_eq!(get(&sb, &products_only, "/v1/orders").status(), 401, "read_orders missing");
    assert_eq!(get(&sb, &products_only, "/v2/product_feeds").status(), 200, "public");
    let r = Client::new().put(format!("{}/v1/products/1", sb.url)).bearer_auth(&products_only).json(&json!({"title": "x"})).send().unwrap();
    assert_eq!(r.status(), 401, "write_products missing");
    assert_eq!(get(&sb, &products_only, "/v1/edms").status(), 404, "no documented endpoint");
}

#[test]
fn rate_limit_is_per_token() {
    let sb = start(Config { rps: 5, ..Default::default() });
    let a = token(SECRET, ALL_SCOPES, 3600);
    let b = token(SECRET, "read_orders", 3601);
    // Align to the start of a wall-clock second so the burst falls in one window.
    let frac = clock::now_unix_f64().fract();
    std::thread::sleep(Duration::from_secs_f64(1.0 - frac + 0.01));
    let statuses: Vec<u16> = (0..7).map(|_| get(&sb, &a, "/v1/orders?per_page=1").status().as_u16()).collect();
    assert_eq!(&statuses[..5], &[200; 5]);
    assert_eq!(statuses[5], 429);
    assert_eq!(get(&sb, &b, "/v1/orders?per_page=1").status(), 200, "another token has its own budget");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(get(&sb, &a, "/v1/orders?per_page=1").status(), 200, "the next second is a new window");
}

#[test]
fn oversized_bodies_are_rejected_unprocessed() {
    let sb = start(Config { max_body_bytes: 2048, ..unlimited() });
    let t = all();
    let c = Client::new();
    let p: Vec<Value> = get(&sb, &t, "/v1/products?per_page=1").json().unwrap();
    let id = p[0]["id"].as_i64().unwrap();
    let big = json!({"title": "x".repeat(3000)});
    let r = c.put(format!("{}/v1/products/{id}", sb.url)).bearer_auth(&t).json(&big).send().unwrap();
    assert_eq!(r.status(), 413);
    let after: Value = get(&sb, &t, &format!("/v1/products/{id}")).json().unwrap();
    assert_eq!(after["title"], p[0]["title"], "nothing was processed");
    let small = c.put(format!("{}/v1/products/{id}", sb.url)).bearer_auth(&t).json(&json!({"title": "新名稱"})).send().unwrap();
    assert_eq!(small.status(), 200);
}

#[test]
fn lookups_answer_with_the_recorded_quirks() {
    let sb = start(unlimited());
    let t = all();
    let r = get(&sb, &t, "/v1/orders/get_order_id?order_numbers=1003,1001");
    assert_eq!(r.status(), 200);
    let ids: Vec<Value> = r.json().unwrap();
    assert_eq!(ids.len(), 2);
    let r = get(&sb, &t, "/v1/orders/get_order_id?order_numbers=999999");
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().unwrap(), "[]");
    let r = get(&sb, &t, "/v1/customers/get_customer_id?customer_emails=nobody@example.com");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "null");
    let r: Vec<Value> = get(&sb, &t, "/v1/customers/get_customer_id?customer_emails=customer2@example.com,customer3@example.com").json().unwrap();
    assert!(!r.is_empty() && r.iter().all(|x| x["customer_id"].is_i64()));
    assert_eq!(get(&sb, &t, "/v1/orders/1").status(), 404);
    assert_eq!(get(&sb, &t, "/v1/einvoices").status(), 404, "einvoices have no list endpoint");
}

/// A POST as the receiver got it: headers (names lowercased) and body.
type Delivery = (Vec<(String, String)>, Vec<u8>);

/// A one-shot HTTP receiver: returns (headers lowercased, body) of each POST it gets.
fn receiver(n: usize) -> (String, mpsc::Receiver<Delivery>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..n {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap();
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            let len: usize = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut s = s;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
            tx.send((headers, body)).unwrap();
        }
    });
    (url, rx)
}

#[test]
fn writes_change_state_and_send_signed_webhooks() {
    let (hook, rx) = receiver(3);
    let sb = start(Config { webhook_url: Some(hook), app_secret: "shh".into(), ..unlimited() });
    let t = all();
    let c = Client::new();
    let created = c
        .post(format!("{}/v1/products", sb.url))
        .bearer_auth(&t)
        .json(&json!({"title": "新品 茶包", "handle": "new-tea", "published": true, "price": 120}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let p: Value = created.json().unwrap();
    let id = p["id"].as_i64().unwrap();
    assert_eq!(p["price"], json!(120.0), "money stored as float");
    let first: Vec<Value> = get(&sb, &t, "/v1/products?per_page=1").json().unwrap();
    assert_eq!(first[0]["id"], id, "a new product lists first");

    let (h, body) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let hv = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(hv("x-cyberbiz-event"), "products/create");
    assert_eq!(hv("x-cyberbiz-domain"), "sandbox.cyberbiz.co");
    assert_eq!(hv("x-cyberbiz-hmac-sha256"), jwt::webhook_signature_hex("shh", &body));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["id"], id);

    let upd = c.put(format!("{}/v1/products/{id}", sb.url)).bearer_auth(&t).json(&json!({"published": false})).send().unwrap();
    assert_eq!(upd.status(), 200);
    assert_eq!(get(&sb, &t, &format!("/v1/products/{id}")).json::<Value>().unwrap()["published"], false);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().0.iter().find(|(k, _)| k == "x-cyberbiz-event").unwrap().1, "products/update");

    let del = c.delete(format!("{}/v1/products/{id}", sb.url)).bearer_auth(&t).send().unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(get(&sb, &t, &format!("/v1/products/{id}")).status(), 404);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().0.iter().find(|(k, _)| k == "x-cyberbiz-event").unwrap().1, "products/delete");

    // Validation: a POST without the documented required fields is a 422 naming them.
    let bad = c.post(format!("{}/v1/products", sb.url)).bearer_auth(&t).json(&json!({"title": "x"})).send().unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().unwrap().contains("handle"));
    // Orders: only note/delivery fields change; the cancel endpoint changes the status.
    let o: Vec<Value> = get(&sb, &t, "/v1/orders?statuses=open&per_page=1").json().unwrap();
    let oid = o[0]["id"].as_i64().unwrap();
    let r = c.put(format!("{}/v1/orders/{oid}", sb.url)).bearer_auth(&t).json(&json!({"note": "改到週五", "order_number": 1})).send().unwrap();
    assert_eq!(r.status(), 200);
    let after: Value = get(&sb, &t, &format!("/v1/orders/{oid}")).json().unwrap();
    assert_eq!((after["note"].clone(), after["order_number"].clone()), (json!("改到週五"), o[0]["order_number"].clone()));
    let r = c.put(format!("{}/v1/orders/{oid}/cancelled", sb.url)).bearer_auth(&t).json(&json!({"cancel_reason": "out_of_stock"})).send().unwrap();
    assert_eq!(r.status(), 200);
    let after: Value = get(&sb, &t, &format!("/v1/orders/{oid}")).json().unwrap();
    assert_eq!(after["statuses"]["order_status"], "cancelled");
    assert!(after["timings"]["cancelled_at"].is_string());
    // Variants live inside their product.
    let p: Vec<Value> = get(&sb, &t, "/v1/products?per_page=1").json().unwrap();
    let (pid, vid) = (p[0]["id"].as_i64().unwrap(), p[0]["product_variants"][0]["id"].as_i64().unwrap());
    let r = c
        .put(format!("{}/v1/products/{pid}/product_variants/{vid}", sb.url))
        .bearer_auth(&t)
        .form(&[("price", "345"), ("inventory_quantity", "7")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = get(&sb, &t, &format!("/v1/products/{pid}/product_variants/{vid}")).json().unwrap();
    assert_eq!((v["price"].clone(), v["inventory_quantity"].clone()), (json!(345.0), json!(7)));
}

#[test]
fn faults_are_injected_as_configured() {
    let failing = start(Config { fail_rate: 1.0, ..unlimited() });
    let r = get(&failing, &all(), "/v1/orders");
    assert_eq!(r.status(), 503);
    let dropping = start(Config { drop_rate: 1.0, ..unlimited() });
    let e = Client::new().get(format!("{}/v1/orders", dropping.url)).bearer_auth(all()).send();
    assert!(e.is_err(), "the connection is closed without an answer");
    // Half the requests fail, and which ones is fixed by the seed.
    let pattern = |seed| {
        let sb = start(Config { seed, fail_rate: 0.5, ..unlimited() });
        (0..40).map(|_| get(&sb, &all(), "/v1/orders?per_page=1").status().as_u16()).collect::<Vec<_>>()
    };
    let (p1, p2) = (pattern(7), pattern(7));
    assert_eq!(p1, p2);
    let fails = p1.iter().filter(|s| **s == 503).count();
    assert!((8..=32).contains(&fails), "{fails} of 40 failed");
    let slow = start(Config { latency_ms: 150, ..unlimited() });
    let t0 = std::time::Instant::now();
    get(&slow, &all(), "/v1/orders?per_page=1");
    assert!(t0.elapsed() >= Duration::from_millis(150));
}

#[test]
fn request_log_records_and_clears() {
    let sb = start(unlimited());
    let t = all();
    get(&sb, &t, "/v1/orders?per_page=3&page=2");
    Client::new().put(format!("{}/v1/orders/1", sb.url)).bearer_auth(&t).json(&json!({"note": "x"})).send().unwrap();
    let log: Vec<Value> = Client::new().get(format!("{}/__sandbox/requests", sb.url)).send().unwrap().json().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0]["method"].as_str(), log[0]["path"].as_str(), log[0]["status"].as_u64()), (Some("GET"), Some("/v1/orders?per_page=3&page=2"), Some(200)));
    assert_eq!((log[1]["method"].as_str(), log[1]["status"].as_u64(), log[1]["request_bytes"].as_u64()), (Some("PUT"), Some(404), Some(12)));
    assert!(log[0]["timestamp"].as_f64().unwrap() > 1.7e9);
    Client::new().delete(format!("{}/__sandbox/requests", sb.url)).send().unwrap();
    let log: Vec<Value> = Client::new().get(format!("{}/__sandbox/requests", sb.url)).send().unwrap().json().unwrap();
    assert!(log.is_empty());
}

#[test]
fn every_seed_resource_answers() {
    let sb = start(unlimited());
    let t = all();
    for path in [
        "/shop",
        "/v1/orders",
        "/v1/customers",
        "/v1/products",
        "/v1/custom_collections",
        "/v1/smart_collections",
        "/v1/inventory_sync_groups",
        "/v1/periodic_orders",
        "/v2/affiliate_vendor_orders",
        "/v1/discounts",
        "/v1/add_buy_collections",
        "/v1/shop_coupons",
        "/v1/special_collections",
        "/v1/vip_groups",
        "/v1/pos_shops",
        "/v1/stock_adjustments",
        "/v1/stock_invoices",
        "/v1/stock_receipts",
        "/v1/stock_requisitions",
        "/v1/branch_stores",
        "/v2/product_feeds",
        "/v2/customers?ids=1,2",
    ] {
        let r = get(&sb, &t, path);
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().unwrap();
        assert!(v.is_array() || v.is_object(), "{path}");
    }
    let inv: Vec<Value> = get(&sb, &t, "/v1/orders?financial_statuses=paid&per_page=50").json().unwrap();
    let e = inv.iter().find(|o| !o["einvoice"].is_null()).expect("some paid order has an e-invoice");
    let eid = e["einvoice"]["id"].as_i64().unwrap();
    assert_eq!(get(&sb, &t, &format!("/v1/einvoices/{eid}")).json::<Value>().unwrap()["order_id"], e["id"]);
    let no = e["einvoice"]["invoice_no"].as_str().unwrap();
    assert_eq!(get(&sb, &t, &format!("/v1/einvoices/get_einvoice?invoice_no={no}")).status(), 200);
    let vip: Value = get(&sb, &t, "/v1/vip_groups").json().unwrap();
    assert!(vip["current"].is_array() && vip["draft"].is_array());
}

/// A real server processes a request that has fully arrived whether or not the client waits for
/// the answer: a POST whose client gives up during the injected latency still creates the
/// product, once, and is logged.
#[test]
fn requests_that_arrived_are_processed_even_if_the_client_leaves() {
    let sb = start(Config { latency_ms: 600, products: 3, ..unlimited() });
    let t = all();
    let impatient = Client::builder().timeout(Duration::from_millis(150)).build().unwrap();
    let body = json!({"title": "急單", "handle": "rush", "published": true, "price": 10});
    let sent = impatient.post(format!("{}/v1/products", sb.url)).bearer_auth(&t).json(&body).send();
    assert!(sent.is_err(), "the client timed out before the answer");
    std::thread::sleep(Duration::from_millis(900));
    let log: Vec<Value> = Client::new().get(format!("{}/__sandbox/requests", sb.url)).send().unwrap().json().unwrap();
    let posts: Vec<&Value> = log.iter().filter(|e| e["method"] == "POST").collect();
    assert_eq!(posts.len(), 1, "{log:?}");
    assert_eq!(posts[0]["status"], 201);
    let products: Vec<Value> = get(&sb, &t, "/v1/products?per_page=50").json().unwrap();
    assert_eq!(products.iter().filter(|p| p["title"] == "急單").count(), 1);
}

#[test]
fn the_admin_removes_an_order_without_a_webhook() {
    let sb = start(unlimited());
    let t = all();
    let first: Vec<Value> = get(&sb, &t, "/v1/orders?per_page=1").json().unwrap();
    let id = first[0]["id"].as_i64().unwrap();
    let total = |sb: &Background| header(&get(sb, &t, "/v1/orders?per_page=1"), "X-Total").parse::<i64>().unwrap();
    let before = total(&sb);
    let removed: Value = Client::new().post(format!("{}/__sandbox/remove?table=orders&id={id}", sb.url)).send().unwrap().json().unwrap();
    assert_eq!(removed["removed"], json!(true));
    assert_eq!(total(&sb), before - 1);
    let status = Client::new().get(format!("{}/v1/orders/{id}", sb.url)).bearer_auth(&t).send().unwrap().status().as_u16();
    assert_eq!(status, 404);
    let again: Value = Client::new().post(format!("{}/__sandbox/remove?table=orders&id={id}", sb.url)).send().unwrap().json().unwrap();
    assert_eq!(again["removed"], json!(false));
}

#[test]
fn an_older_style_shop_filters_as_the_current_one() {
    let (old, cur) = (start(Config { style: cyberbiz_sandbox::style::Style::Older, ..unlimited() }), start(unlimited()));
    let t = all();
    let q = "/v1/orders?per_page=50&updated_at_start_time=2026-10-01%2000:00:00&updated_at_end_time=2026-11-20%2000:00:00";
    let total = |sb: &Background| header(&get(sb, &t, q), "X-Total");
    assert_ne!(total(&cur), "0");
    assert_eq!(total(&old), total(&cur), "zoned times are filtered as zoneless ones");
    let orders: Vec<Value> = get(&old, &t, "/v1/orders?per_page=50").json().unwrap();
    assert!(orders.iter().any(|o| o["updated_at"].as_str().is_some_and(|s| s.ends_with(" +0800"))), "some orders carry +0800");
    assert!(orders.iter().all(|o| o.get("subtotal_price").is_none()), "older orders lack subtotal_price");
    let products: Vec<Value> = get(&old, &t, "/v1/products?per_page=5").json().unwrap();
    assert!(products.iter().all(|p| p["published"].is_string() && p["updated_at"].as_str().unwrap().ends_with(" +0800")));
}

#[test]
fn a_product_read_by_id_has_no_id_as_on_the_platform() {
    let sb = start(unlimited());
    let t = all();
    let list: Vec<Value> = get(&sb, &t, "/v1/products?per_page=1").json().unwrap();
    let id = list[0]["id"].as_i64().unwrap();
    let one: Value = get(&sb, &t, &format!("/v1/products/{id}")).json().unwrap();
    assert!(one.get("id").is_none(), "the golden of GET /v1/products/{{id}} has no id");
    assert_eq!(one["title"], list[0]["title"]);
}
