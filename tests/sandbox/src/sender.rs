//! `cyberbiz-sandbox send`: a load generator for webhook receivers, as the platform delivers:
//! signed order payloads (about 5 KB each, unique ids) POSTed by concurrent senders, each
//! retried on 5xx or a dropped connection until acknowledged (the platform redelivers what
//! was not), plus redeliveries of acknowledged bodies and deliveries with wrong signatures.
//! Prints one JSON line: counts, deliveries/s, latency p50/p99; `--acked FILE` gets the ids
//! acknowledged with 2xx, one per line.

use hmac::{Hmac, Mac};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Load {
    pub url: String,
    pub secret: String,
    pub domain: String,
    pub count: usize,
    pub concurrency: usize,
    pub duplicates: usize,
    pub bad_signatures: usize,
    pub first_id: i64,
    pub acked: Option<String>,
}

fn sign(body: &str, secret: &str) -> String {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(body.as_bytes());
    m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// An order payload of about 5 KB.
fn payload(id: i64) -> String {
    let items: Vec<_> = (0..8)
        .map(|i| json!({"id": id * 10 + i, "product_id": 1000 + i, "sku": format!("SKU-{i:04}"), "title": "烏龍茶 Oolong tea 300g", "quantity": 1 + i % 3, "price": 350.0, "total_price_after_discounts": 350.0, "item_type": "normal", "vendor": "茶行"}))
        .collect();
    json!({"id": id, "order_number": id - 50_000_000, "order_name": format!("#{}", id - 50_000_000), "created_at": "2026-11-28 10:00:00", "updated_at": "2026-11-28 10:00:00",
        "statuses": {"order_status": "open", "financial_status": "paid", "fulfillment_status": "unshipped"}, "subtotal_price": 2800.0, "prices": {"total_price": 2800.0, "shipping": 0.0},
        "line_items": items, "note": "x".repeat(1500), "customer": {"id": 23300001, "name": "王小明", "email": "ming@example.tw"}})
    .to_string()
}

struct Tally {
    latencies_ms: Vec<f64>,
    acked: Vec<i64>,
    statuses: std::collections::BTreeMap<u16, usize>,
}

/// Posts until a 2xx or a 4xx (5xx and dropped connections are retried, up to 20 times).
async fn deliver(client: &reqwest::Client, load: &Load, body: &str, signature: &str) -> (u16, f64) {
    let t0 = Instant::now();
    for attempt in 0..20u64 {
        let sent = client
            .post(&load.url)
            .header("X-Cyberbiz-Event", "orders/paid")
            .header("X-Cyberbiz-Hmac-Sha256", signature)
            .header("X-Cyberbiz-Domain", &load.domain)
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().as_u16() < 500 => return (r.status().as_u16(), t0.elapsed().as_secs_f64() * 1000.0),
            _ => tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await,
        }
    }
    (599, t0.elapsed().as_secs_f64() * 1000.0)
}

/// Runs the load and prints the summary.
pub fn run(load: Load) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let load = Arc::new(load);
    let tally = Arc::new(Mutex::new(Tally { latencies_ms: Vec::new(), acked: Vec::new(), statuses: Default::default() }));
    let next = Arc::new(AtomicUsize::new(0));
    let total = load.count + load.duplicates + load.bad_signatures;
    let started = Instant::now();
    rt.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(load.concurrency).build().map_err(|e| e.to_string())?;
        let tasks: Vec<_> = (0..load.concurrency.max(1))
            .map(|_| {
                let (client, load, tally, next) = (client.clone(), load.clone(), tally.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= total {
                            break;
                        }
                        // Fresh deliveries, then redeliveries of the first ones, then forgeries.
                        let (id, forged) = if n < load.count {
                            (load.first_id + n as i64, false)
                        } else if n < load.count + load.duplicates {
                            (load.first_id + (n - load.count) as i64, false)
                        } else {
                            (load.first_id + n as i64, true)
                        };
                        let body = payload(id);
                        let signature = if forged { sign(&body, "not-the-app-secret") } else { sign(&body, &load.secret) };
                        let (status, ms) = deliver(&client, &load, &body, &signature).await;
                        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                        *t.statuses.entry(status).or_default() += 1;
                        t.latencies_ms.push(ms);
                        if (200..300).contains(&status) && n < load.count {
                            t.acked.push(id);
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        Ok::<(), String>(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let mut t = tally.lock().map_err(|e| e.to_string())?;
    t.latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| t.latencies_ms.get(((t.latencies_ms.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    if let Some(file) = &load.acked {
        let text: String = t.acked.iter().map(|id| format!("{id}\n")).collect();
        std::fs::write(file, text).map_err(|e| format!("{file}: {e}"))?;
    }
    let statuses: serde_json::Map<String, serde_json::Value> = t.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    println!(
        "{}",
        json!({"deliveries": total, "acked_fresh": t.acked.len(), "statuses": statuses, "seconds": secs, "per_second": total as f64 / secs, "p50_ms": pct(0.5), "p99_ms": pct(0.99)})
    );
    Ok(())
}
