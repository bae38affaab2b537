//! cyberbiz-sandbox: an emulator of the CYBERBIZ API (https://app-store-api.cyberbiz.io) for
//! trying cyberbiz_fdw without a shop, and for its tests and benchmarks.

#![recursion_limit = "512"]

pub mod clock;
pub mod config;
pub mod data;
pub mod jwt;
pub mod rng;
pub mod routes;
pub mod sender;
pub mod server;
pub mod store;
pub mod style;

pub use config::Config;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Every scope the platform's custom apps can have.
pub const ALL_SCOPES: &str = "public read_products write_products read_customers write_customers read_orders write_orders read_affiliates read_discounts write_discounts read_pos write_pos read_branch_stores write_branch_stores read_edms";

pub fn build_state(cfg: Config) -> server::State {
    let anchor = cfg.anchor.unwrap_or_else(clock::now_local_secs);
    let sizes = data::Sizes { orders: cfg.orders, customers: cfg.customers, products: cfg.products };
    let mut shop = data::generate(cfg.seed, &sizes, anchor);
    style::restyle(&mut shop, cfg.style);
    server::State::new(cfg, store::Store::new(shop))
}

/// Binds the listener; the returned future serves until dropped.
pub async fn bind(cfg: Config) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(build_state(cfg));
    let serve = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let st = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| server::handle(st.clone(), req));
                let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    };
    Ok((addr, serve))
}

/// A sandbox running on its own threads, for tests: stops when dropped.
pub struct Background {
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

pub fn spawn_background(cfg: Config) -> std::io::Result<Background> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let (addr, serve) = rt.block_on(bind(cfg))?;
    rt.spawn(serve);
    Ok(Background { url: format!("http://{addr}"), _runtime: rt })
}

pub fn token(secret: &str, scopes: &str, ttl_secs: i64) -> String {
    let now = clock::now_unix_f64() as i64;
    jwt::encode(secret, scopes, now, ttl_secs, 7109, "sandbox.cyberbiz.co")
}
