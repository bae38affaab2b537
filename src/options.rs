//! Server, user-mapping, foreign-table and column options: the table of what is valid, the
//! checks behind `CREATE/ALTER ... OPTIONS`, and typed values for the rest of the FDW.
//! Pure Rust; the validator in `fdw/mod.rs` only hands the option list over.

use crate::catalog;
use crate::error::{FdwError, Result};

pub const DEFAULT_API_URL: &str = "https://app-store-api.cyberbiz.io";
/// The platform's limits (seed: at most 5 requests per second, `crate::pace`, and 2 MB per
/// request).
pub const MAX_REQUESTS_PER_SECOND: f64 = crate::pace::PLATFORM_REQUESTS_PER_SECOND;
pub const MAX_REQUEST_BYTES: u64 = 2 * 1024 * 1024;
/// Above the platform's limit, only for an `api_url` on this machine (the sandbox, benchmarks).
pub const MAX_LOOPBACK_REQUESTS_PER_SECOND: f64 = 1000.0;
/// The API's largest page (`per_page` above 50 answers 500).
pub const MAX_PAGE_SIZE: u32 = 50;

/// Which kind of object an option list belongs to (the validator's `catalog` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionTarget {
    Wrapper,
    Server,
    UserMapping,
    ForeignTable,
    Column,
}

impl OptionTarget {
    fn object(self) -> &'static str {
        match self {
            OptionTarget::Wrapper => "the cyberbiz_fdw foreign-data wrapper",
            OptionTarget::Server => "a CYBERBIZ server",
            OptionTarget::UserMapping => "a CYBERBIZ user mapping",
            OptionTarget::ForeignTable => "a CYBERBIZ foreign table",
            OptionTarget::Column => "a column of a CYBERBIZ foreign table",
        }
    }

    pub fn valid_options(self) -> &'static [&'static str] {
        match self {
            OptionTarget::Wrapper => &[],
            OptionTarget::Server => &[
                "api_url",
                "requests_per_second",
                "page_size",
                "timeout",
                "max_retries",
                "max_request_bytes",
                "max_response_bytes",
                "time_zone",
                "use_remote_estimate",
                "max_key_lookups",
                "shop_domain",
                "sync_requests_per_second",
            ],
            OptionTarget::UserMapping => &["api_token", "app_secret"],
            OptionTarget::ForeignTable => &["resource", "endpoint", "rows", "sync"],
            OptionTarget::Column => &["json_path"],
        }
    }
}

/// Default and largest `max_response_bytes`: 64 MiB, 1 GiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024 * 1024;

/// Options whose values are never repeated in a message.
const SECRET_OPTIONS: &[&str] = &["api_token", "app_secret"];

#[derive(Debug, Clone, PartialEq)]
pub struct ServerOptions {
    pub api_url: String,
    pub requests_per_second: f64,
    pub page_size: u32,
    /// Per request, in seconds.
    pub timeout_secs: f64,
    pub max_retries: u32,
    pub max_request_bytes: u64,
    /// Largest response body read; a larger one fails the statement (the API's pages are
    /// far smaller: 50 orders are about 250 KB).
    pub max_response_bytes: u64,
    pub time_zone: String,
    pub use_remote_estimate: bool,
    /// Upper bound on per-key GETs one scan may make for `id IN (...)`.
    pub max_key_lookups: u32,
    /// The shop's CYBERBIZ domain (`X-Cyberbiz-Domain` of its webhooks).
    pub shop_domain: Option<String>,
    /// Cap on the request rate of replica syncs (scans of tables with the `sync` option), to
    /// leave room in the token's budget for live queries; None: the server's rate.
    pub sync_requests_per_second: Option<f64>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            api_url: DEFAULT_API_URL.to_string(),
            requests_per_second: MAX_REQUESTS_PER_SECOND,
            page_size: MAX_PAGE_SIZE,
            timeout_secs: 30.0,
            max_retries: 3,
            max_request_bytes: MAX_REQUEST_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            time_zone: "Asia/Taipei".to_string(),
            use_remote_estimate: false,
            max_key_lookups: 50,
            shop_domain: None,
            sync_requests_per_second: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMappingOptions {
    pub api_token: String,
    pub app_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableSource {
    Resource(&'static catalog::Resource),
    Endpoint(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    pub source: TableSource,
    pub rows: Option<f64>,
    /// The table is a replica's source (cyberbiz_replicate creates it): its scans are capped
    /// at the server's `sync_requests_per_second`.
    pub sync: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnOptions {
    pub json_path: Option<Vec<String>>,
}

fn invalid(name: &'static str, problem: impl Into<String>) -> FdwError {
    FdwError::InvalidOptionValue { name, problem: problem.into() }
}

fn shown(name: &str, value: &str) -> String {
    if SECRET_OPTIONS.contains(&name) {
        "(value hidden)".to_string()
    } else {
        format!("\"{value}\"")
    }
}

fn number(name: &'static str, value: &str, lo: f64, hi: f64, what: &str) -> Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= lo && x <= hi => Ok(x),
        _ => Err(invalid(name, format!("must be {what} from {lo} to {hi}, got {}", shown(name, value)))),
    }
}

fn integer(name: &'static str, value: &str, lo: u64, hi: u64) -> Result<u64> {
    match value.trim().parse::<u64>() {
        Ok(x) if x >= lo && x <= hi => Ok(x),
        _ => Err(invalid(name, format!("must be an integer from {lo} to {hi}, got {}", shown(name, value)))),
    }
}

fn boolean(name: &'static str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(invalid(name, format!("must be true or false, got {}", shown(name, value)))),
    }
}

fn api_url(value: &str) -> Result<String> {
    let problem = || invalid("api_url", format!("must be an http:// or https:// URL such as {DEFAULT_API_URL}, got \"{value}\""));
    let parsed = url::Url::parse(value.trim()).map_err(|_| problem())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(problem());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("api_url", "must not carry credentials, a query or a fragment; put the token in a user mapping's api_token"));
    }
    Ok(value.trim().trim_end_matches('/').to_string())
}

/// Splits `statuses.financial_status` into its keys.
pub fn parse_json_path(value: &str) -> Result<Vec<String>> {
    let parts: Vec<String> = value.split('.').map(|s| s.trim().to_string()).collect();
    if value.trim().is_empty() || parts.iter().any(String::is_empty) {
        return Err(invalid("json_path", format!("must be dot-separated JSON keys such as statuses.financial_status, got \"{value}\"")));
    }
    Ok(parts)
}

fn endpoint(value: &str) -> Result<String> {
    let v = value.trim();
    let ok = v.starts_with('/') && !v.contains("://") && !v.contains(['?', '#', ' ']) && v.len() > 1;
    if !ok {
        return Err(invalid("endpoint", format!("must be an API path such as /v1/blogs (no host, no query), got \"{value}\"")));
    }
    Ok(v.trim_end_matches('/').to_string())
}

/// Rejects names not valid for `target`, naming the valid ones.
fn check_names(target: OptionTarget, options: &[(String, String)]) -> Result<()> {
    let valid = target.valid_options();
    for (name, _) in options {
        if !valid.contains(&name.as_str()) {
            return Err(FdwError::UnknownOption { name: name.clone(), object: target.object(), valid: valid.to_vec() });
        }
    }
    Ok(())
}

/// `zone_ok` decides whether a time-zone name is known (Postgres's own zone database decides,
/// through the FFI layer).
/// Whether `url` points at this machine (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &str) -> bool {
    match url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

pub fn parse_server(options: &[(String, String)], zone_ok: &dyn Fn(&str) -> bool) -> Result<ServerOptions> {
    check_names(OptionTarget::Server, options)?;
    let mut s = ServerOptions::default();
    // The platform allows 5 requests per second; only a sandbox on this machine may go faster.
    let url = options.iter().find(|(k, _)| k == "api_url").map(|(_, v)| v.as_str()).unwrap_or(DEFAULT_API_URL);
    let max_rps = if is_loopback(url) { MAX_LOOPBACK_REQUESTS_PER_SECOND } else { MAX_REQUESTS_PER_SECOND };
    for (name, value) in options {
        match name.as_str() {
            "api_url" => s.api_url = api_url(value)?,
            "requests_per_second" => {
                let what = if max_rps > MAX_REQUESTS_PER_SECOND {
                    "a number of requests per second (a loopback api_url allows more than the platform's 5)"
                } else {
                    "a number of requests per second (the platform allows 5)"
                };
                s.requests_per_second = number("requests_per_second", value, 0.1, max_rps, what)?
            }
            "page_size" => s.page_size = integer("page_size", value, 1, MAX_PAGE_SIZE as u64)? as u32,
            "timeout" => s.timeout_secs = number("timeout", value, 0.1, 3600.0, "a number of seconds")?,
            "max_retries" => s.max_retries = integer("max_retries", value, 0, 10)? as u32,
            "max_request_bytes" => s.max_request_bytes = integer("max_request_bytes", value, 256, MAX_REQUEST_BYTES)?,
            "max_response_bytes" => s.max_response_bytes = integer("max_response_bytes", value, 1024, MAX_RESPONSE_BYTES)?,
            "time_zone" => {
                if !zone_ok(value.trim()) {
                    return Err(invalid("time_zone", format!("must be a time zone Postgres knows, such as Asia/Taipei, got \"{value}\"")));
                }
                s.time_zone = value.trim().to_string();
            }
            "use_remote_estimate" => s.use_remote_estimate = boolean("use_remote_estimate", value)?,
            "max_key_lookups" => s.max_key_lookups = integer("max_key_lookups", value, 1, 1000)? as u32,
            "shop_domain" => {
                let v = value.trim();
                if v.is_empty() || v.contains(['/', ' ', ':']) {
                    return Err(invalid("shop_domain", format!("must be a host name such as example.cyberbiz.co, got \"{value}\"")));
                }
                s.shop_domain = Some(v.to_ascii_lowercase());
            }
            "sync_requests_per_second" => {
                s.sync_requests_per_second = Some(number("sync_requests_per_second", value, 0.1, max_rps, "a number of requests per second for replica syncs")?)
            }
            _ => unreachable!("names were checked"),
        }
    }
    Ok(s)
}

pub fn parse_user_mapping(options: &[(String, String)]) -> Result<UserMappingOptions> {
    check_names(OptionTarget::UserMapping, options)?;
    let mut token = None;
    let mut secret = None;
    for (name, value) in options {
        let v = value.trim();
        match name.as_str() {
            "api_token" => {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    return Err(invalid("api_token", "must be the custom app's API token (a JWT without spaces); the value is hidden"));
                }
                token = Some(v.to_string());
            }
            "app_secret" => {
                if v.is_empty() {
                    return Err(invalid("app_secret", "must be the custom app's App Secret and not empty; the value is hidden"));
                }
                secret = Some(v.to_string());
            }
            _ => unreachable!("names were checked"),
        }
    }
    let api_token = token.ok_or(FdwError::MissingOption {
        name: "api_token",
        object: OptionTarget::UserMapping.object(),
        hint: "Add OPTIONS (api_token '<the custom app API token>'); CYBERBIZ shows it once when the custom app is created.",
    })?;
    Ok(UserMappingOptions { api_token, app_secret: secret })
}

pub fn parse_table(options: &[(String, String)]) -> Result<TableOptions> {
    check_names(OptionTarget::ForeignTable, options)?;
    let mut source = None;
    let mut rows = None;
    let mut sync = false;
    for (name, value) in options {
        match name.as_str() {
            "resource" | "endpoint" => {
                if source.is_some() {
                    return Err(FdwError::ConflictingOptions {
                        message: "a CYBERBIZ foreign table takes either \"resource\" or \"endpoint\", not both".into(),
                        hint: "Use resource for tables the catalog knows, endpoint '/v1/...' for any other list endpoint.".into(),
                    });
                }
                source = Some(if name == "resource" {
                    let r = catalog::find(value.trim()).ok_or_else(|| {
                        invalid("resource", format!("\"{value}\" is not a CYBERBIZ resource; known resources: {}", catalog::names().join(", ")))
                    })?;
                    TableSource::Resource(r)
                } else {
                    TableSource::Endpoint(endpoint(value)?)
                });
            }
            "rows" => rows = Some(number("rows", value, 0.0, 1e12, "a row count")?),
            "sync" => sync = boolean("sync", value)?,
            _ => unreachable!("names were checked"),
        }
    }
    let source = source.ok_or(FdwError::MissingOption {
        name: "resource",
        object: OptionTarget::ForeignTable.object(),
        hint: "Add OPTIONS (resource 'orders') for a catalog resource, or OPTIONS (endpoint '/v1/blogs') for any other list endpoint; IMPORT FOREIGN SCHEMA cyberbiz creates them all.",
    })?;
    Ok(TableOptions { source, rows, sync })
}

pub fn parse_column(options: &[(String, String)]) -> Result<ColumnOptions> {
    check_names(OptionTarget::Column, options)?;
    let mut c = ColumnOptions::default();
    for (name, value) in options {
        if name == "json_path" {
            c.json_path = Some(parse_json_path(value)?);
        }
    }
    Ok(c)
}

/// What the validator runs: full checks for each kind of object.
pub fn validate(target: OptionTarget, options: &[(String, String)], zone_ok: &dyn Fn(&str) -> bool) -> Result<()> {
    match target {
        OptionTarget::Wrapper => check_names(target, options),
        OptionTarget::Server => parse_server(options, zone_ok).map(|_| ()),
        OptionTarget::UserMapping => parse_user_mapping(options).map(|_| ()),
        OptionTarget::ForeignTable => parse_table(options).map(|_| ()),
        OptionTarget::Column => parse_column(options).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
    fn any_zone(_: &str) -> bool {
        true
    }

    #[test]
    fn server_defaults_and_values() {
        let s = parse_server(&[], &any_zone).unwrap();
        assert_eq!(s, ServerOptions::default());
        let s = parse_server(
            &opts(&[("api_url", "http://127.0.0.1:4000/"), ("page_size", "20"), ("requests_per_second", "2.5"), ("use_remote_estimate", "on")]),
            &any_zone,
        )
        .unwrap();
        assert_eq!(s.api_url, "http://127.0.0.1:4000");
        assert_eq!(s.page_size, 20);
        assert_eq!(s.requests_per_second, 2.5);
        assert!(s.use_remote_estimate);
    }

    #[test]
    fn unknown_option_lists_valid_ones() {
        let e = parse_server(&opts(&[("bogus", "x")]), &any_zone).unwrap_err();
        assert_eq!(e.to_string(), "invalid option \"bogus\" for a CYBERBIZ server");
        let hint = e.hint().unwrap();
        assert!(hint.contains("api_url") && hint.contains("requests_per_second") && hint.contains("page_size"), "{hint}");
    }

    #[test]
    fn bad_values_name_option_and_range() {
        let cases = [
            ("page_size", "500", "from 1 to 50"),
            ("page_size", "0", "from 1 to 50"),
            ("requests_per_second", "6", "from 0.1 to 5"),
            ("requests_per_second", "fast", "from 0.1 to 5"),
            ("requests_per_second", "1001", "from 0.1 to 5"),
            ("timeout", "-1", "from 0.1 to 3600"),
            ("max_request_bytes", "3000000", "from 256 to 2097152"),
            ("max_retries", "11", "from 0 to 10"),
            ("api_url", "not a url", "http:// or https://"),
            ("api_url", "ftp://x.example", "http:// or https://"),
            ("use_remote_estimate", "maybe", "true or false"),
        ];
        for (name, value, expect) in cases {
            let e = parse_server(&opts(&[(name, value)]), &any_zone).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(name) && msg.contains(expect), "{name}={value}: {msg}");
        }
        // A sandbox on this machine may be driven faster than the platform; nothing else may.
        assert!(parse_server(&opts(&[("api_url", "http://127.0.0.1:4000"), ("requests_per_second", "500")]), &any_zone).is_ok());
        assert!(parse_server(&opts(&[("api_url", "http://localhost:4000"), ("requests_per_second", "1000")]), &any_zone).is_ok());
        assert!(parse_server(&opts(&[("api_url", "https://app-store-api.cyberbiz.io"), ("requests_per_second", "6")]), &any_zone).is_err());
        assert!(parse_server(&opts(&[("api_url", "http://10.0.0.5"), ("requests_per_second", "6")]), &any_zone).is_err());
        let e = parse_server(&opts(&[("time_zone", "Mars/Olympus")]), &|z| z == "Asia/Taipei").unwrap_err();
        assert!(e.to_string().contains("time_zone"));
    }

    #[test]
    fn user_mapping_requires_token_and_hides_secrets() {
        let e = parse_user_mapping(&[]).unwrap_err();
        assert!(matches!(e, FdwError::MissingOption { name: "api_token", .. }));
        let e = parse_user_mapping(&opts(&[("api_token", "abc def-secret")])).unwrap_err();
        assert!(!e.to_string().contains("def-secret"));
        let u = parse_user_mapping(&opts(&[("api_token", "a.b.c"), ("app_secret", "s")])).unwrap();
        assert_eq!(u.app_secret.as_deref(), Some("s"));
        let e = parse_user_mapping(&opts(&[("token", "x")])).unwrap_err();
        assert!(e.hint().unwrap().contains("api_token, app_secret"));
    }

    #[test]
    fn table_and_column_options() {
        let t = parse_table(&opts(&[("resource", "orders"), ("rows", "2500")])).unwrap();
        assert!(matches!(t.source, TableSource::Resource(r) if r.name == "orders"));
        assert_eq!(t.rows, Some(2500.0));
        assert!(matches!(parse_table(&opts(&[("endpoint", "/v1/blogs")])).unwrap().source, TableSource::Endpoint(ref p) if p == "/v1/blogs"));
        assert!(parse_table(&opts(&[("resource", "nope")])).unwrap_err().to_string().contains("known resources"));
        assert!(parse_table(&opts(&[("endpoint", "https://x/v1/blogs")])).is_err());
        assert!(parse_table(&opts(&[("resource", "orders"), ("endpoint", "/v1/blogs")])).is_err());
        assert!(matches!(parse_table(&[]).unwrap_err(), FdwError::MissingOption { .. }));
        assert_eq!(parse_column(&opts(&[("json_path", "statuses.financial_status")])).unwrap().json_path.unwrap(), vec!["statuses", "financial_status"]);
        assert!(parse_column(&opts(&[("json_path", "a..b")])).is_err());
    }
}
