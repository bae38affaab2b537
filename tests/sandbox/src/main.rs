//! `cyberbiz-sandbox serve ...` runs the emulator (first stdout line: its base URL);
//! `cyberbiz-sandbox token ...` prints a JWT it accepts.

use cyberbiz_sandbox::{bind, config::DEFAULT_JWT_SECRET, token, Config, ALL_SCOPES};
use std::io::Write;

const USAGE: &str = "usage:
  cyberbiz-sandbox serve [--listen ADDR] [--seed N] [--orders N] [--customers N] [--products N]
                         [--rps N] [--latency-ms N] [--max-body-bytes N] [--fail-rate F]
                         [--drop-rate F] [--jwt-secret S] [--webhook-url URL] [--app-secret S]
                         [--shop-domain D] [--now 'YYYY-MM-DD HH:MM:SS']
  cyberbiz-sandbox token [--scopes \"read_orders write_products ...\"] [--ttl-secs N] [--jwt-secret S]
  cyberbiz-sandbox send --url URL --secret S [--domain D] [--count N] [--concurrency N]
                        [--duplicates N] [--bad-signatures N] [--first-id N] [--acked FILE]
      (a load of signed webhook deliveries for a receiver, e.g. cyberbiz_fdw's background worker)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("token") => print_token(&args[1..]),
        Some("send") => send(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    if let Err(msg) = code {
        eprintln!("cyberbiz-sandbox: {msg}");
        std::process::exit(2);
    }
}

fn serve(args: &[String]) -> Result<(), String> {
    let cfg = Config::from_args(args)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (addr, serve) = bind(cfg).await.map_err(|e| format!("cannot listen: {e}"))?;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "http://{addr}");
        let _ = out.flush();
        tokio::select! {
            _ = serve => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}

fn send(args: &[String]) -> Result<(), String> {
    let mut load = cyberbiz_sandbox::sender::Load {
        url: String::new(),
        secret: String::new(),
        domain: "sandbox.cyberbiz.co".into(),
        count: 1000,
        concurrency: 16,
        duplicates: 0,
        bad_signatures: 0,
        first_id: 70_000_000,
        acked: None,
    };
    let mut it = args.iter();
    let number = |flag: &str, v: &str| v.parse::<usize>().map_err(|_| format!("{flag}: invalid value {v:?}"));
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => load.url = v.clone(),
            "--secret" => load.secret = v.clone(),
            "--domain" => load.domain = v.clone(),
            "--count" => load.count = number(flag, v)?,
            "--concurrency" => load.concurrency = number(flag, v)?,
            "--duplicates" => load.duplicates = number(flag, v)?,
            "--bad-signatures" => load.bad_signatures = number(flag, v)?,
            "--first-id" => load.first_id = number(flag, v)? as i64,
            "--acked" => load.acked = Some(v.clone()),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    if load.url.is_empty() || load.secret.is_empty() {
        return Err(format!("--url and --secret are required\n{USAGE}"));
    }
    cyberbiz_sandbox::sender::run(load)
}

fn print_token(args: &[String]) -> Result<(), String> {
    let mut scopes = ALL_SCOPES.to_string();
    let mut ttl: i64 = 86_400;
    let mut secret = DEFAULT_JWT_SECRET.to_string();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--scopes" => scopes = v.clone(),
            "--ttl-secs" => ttl = v.parse().map_err(|_| format!("--ttl-secs: invalid value {v:?}"))?,
            "--jwt-secret" => secret = v.clone(),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    println!("{}", token(&secret, &scopes, ttl));
    Ok(())
}
