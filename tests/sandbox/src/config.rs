//! The sandbox's settings and the command-line contract other tooling depends on.

use std::net::SocketAddr;

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub seed: u64,
    pub orders: usize,
    pub customers: usize,
    pub products: usize,
    /// Requests per second allowed per token; 0 = unlimited.
    pub rps: u32,
    pub latency_ms: u64,
    pub max_body_bytes: usize,
    /// Share of requests answered 503 (after reading the body, without processing it).
    pub fail_rate: f64,
    /// Share of connections closed without an answer.
    pub drop_rate: f64,
    pub jwt_secret: String,
    pub webhook_url: Option<String>,
    pub app_secret: String,
    pub shop_domain: String,
    /// "Now" for the generated data, Taipei local seconds; None = the real clock at start-up.
    pub anchor: Option<i64>,
    /// The shape of the shop's objects (`--style current|older`).
    pub style: crate::style::Style,
}

pub const DEFAULT_JWT_SECRET: &str = "cyberbiz-sandbox-jwt-secret";
pub const DEFAULT_APP_SECRET: &str = "cyberbiz-sandbox-app-secret";

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:0".parse().expect("valid literal address"),
            seed: 1,
            orders: 250,
            customers: 120,
            products: 60,
            rps: 5,
            latency_ms: 0,
            max_body_bytes: 2 * 1024 * 1024,
            fail_rate: 0.0,
            drop_rate: 0.0,
            jwt_secret: DEFAULT_JWT_SECRET.into(),
            webhook_url: None,
            app_secret: DEFAULT_APP_SECRET.into(),
            shop_domain: "sandbox.cyberbiz.co".into(),
            anchor: None,
            style: crate::style::Style::Current,
        }
    }
}

fn value<'a>(args: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a String, String> {
    args.next().ok_or_else(|| format!("{flag} needs a value"))
}

fn parse<T: std::str::FromStr>(v: &str, flag: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: invalid value {v:?}"))
}

fn rate(v: &str, flag: &str) -> Result<f64, String> {
    let x: f64 = parse(v, flag)?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{flag} must be between 0 and 1"))
    }
}

impl Config {
    /// Parses the options of `serve`.
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut c = Config::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let f = flag.as_str();
            match f {
                "--listen" => c.listen = parse(value(&mut it, f)?, f)?,
                "--seed" => c.seed = parse(value(&mut it, f)?, f)?,
                "--orders" => c.orders = parse(value(&mut it, f)?, f)?,
                "--customers" => c.customers = parse(value(&mut it, f)?, f)?,
                "--products" => c.products = parse(value(&mut it, f)?, f)?,
                "--rps" => c.rps = parse(value(&mut it, f)?, f)?,
                "--latency-ms" => c.latency_ms = parse(value(&mut it, f)?, f)?,
                "--max-body-bytes" => c.max_body_bytes = parse(value(&mut it, f)?, f)?,
                "--fail-rate" => c.fail_rate = rate(value(&mut it, f)?, f)?,
                "--drop-rate" => c.drop_rate = rate(value(&mut it, f)?, f)?,
                "--jwt-secret" => c.jwt_secret = value(&mut it, f)?.clone(),
                "--webhook-url" => c.webhook_url = Some(value(&mut it, f)?.clone()),
                "--app-secret" => c.app_secret = value(&mut it, f)?.clone(),
                "--shop-domain" => c.shop_domain = value(&mut it, f)?.clone(),
                "--style" => c.style = value(&mut it, f)?.parse()?,
                "--now" => {
                    let v = value(&mut it, f)?;
                    c.anchor =
                        Some(crate::clock::parse_local(v, false).ok_or_else(|| format!("--now: expected 'YYYY-MM-DD[ HH:MM:SS]' (Asia/Taipei), got {v:?}"))?);
                }
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(c)
    }
}
