//! Planning: which requests a scan makes, decided from the table and the key values its WHERE
//! clause pins. Pure Rust; EXPLAIN prints `describe()`.

use crate::catalog::{Access, Resource};
use crate::decode::Shape;
use crate::error::FdwError;
use crate::options::TableSource;

/// A key the WHERE clause fixes: `id = 5`, `id IN (1, 2)`, `order_id = $1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFilter {
    pub column: String,
    /// None while the values are not known yet (a parameter at plan time).
    pub values: Option<Vec<i64>>,
}

/// The requests one scan makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPlan {
    /// Page through a list: `GET {path}?per_page=N&page=1..`.
    List { path: String, page_size: u32 },
    /// One request returns everything.
    Whole { path: String },
    /// One GET per key: `GET {path_prefix}/{id}{path_suffix}`; a 404 or `null` is no row.
    PerKey { path_prefix: String, path_suffix: String, keys: Option<Vec<i64>> },
}

impl RequestPlan {
    /// What EXPLAIN shows as `CYBERBIZ Request`.
    pub fn describe(&self) -> String {
        match self {
            RequestPlan::List { path, page_size } => format!("GET {path}?per_page={page_size}"),
            RequestPlan::Whole { path } => format!("GET {path}"),
            RequestPlan::PerKey { path_prefix, path_suffix, keys } => match keys {
                Some(k) if k.len() == 1 => format!("GET {path_prefix}/{}{path_suffix}", k[0]),
                Some(k) => format!("GET {path_prefix}/{{id}}{path_suffix} x {}", k.len()),
                None => format!("GET {path_prefix}/{{id}}{path_suffix} per key"),
            },
        }
    }

    /// Paths in request order, for per-key plans whose keys are known.
    pub fn key_paths(&self) -> Vec<String> {
        match self {
            RequestPlan::PerKey { path_prefix, path_suffix, keys: Some(keys) } => {
                let mut seen = std::collections::HashSet::new();
                keys.iter().filter(|k| seen.insert(**k)).map(|k| format!("{path_prefix}/{k}{path_suffix}")).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The full decision for one scan.
#[derive(Debug, Clone)]
pub struct ScanPlan {
    pub request: RequestPlan,
    pub shape: Shape,
    /// The column whose values were used as keys (rechecked locally like every qual).
    pub key_column: Option<String>,
}

fn key_values<'a>(filters: &'a [KeyFilter], column: &str) -> Option<&'a KeyFilter> {
    filters.iter().find(|f| f.column == column)
}

/// Plans a scan of `source` given the key filters found in the WHERE clause.
pub fn plan_scan(table: &str, source: &TableSource, filters: &[KeyFilter], page_size: u32, max_keys: u32) -> Result<ScanPlan, FdwError> {
    let r: &Resource = match source {
        TableSource::Endpoint(path) => {
            return Ok(ScanPlan { request: RequestPlan::List { path: path.clone(), page_size }, shape: Shape { rows_at: None, child_array: None }, key_column: None })
        }
        TableSource::Resource(r) => r,
    };
    let bounded = |f: &KeyFilter| f.values.as_ref().is_none_or(|v| v.len() <= max_keys as usize);
    if let Access::Unavailable { reason } = r.access {
        return Err(FdwError::Unavailable { table: table.to_string(), reason: reason.to_string() });
    }
    // Child tables: the parent's key narrows to that parent's row(s).
    if let Some(parent) = &r.parent {
        let shape = Shape { rows_at: None, child_array: Some(parent.array.to_string()) };
        if let Some(f) = key_values(filters, parent.key_column).filter(|f| bounded(f)) {
            return Ok(ScanPlan {
                request: RequestPlan::PerKey { path_prefix: r.path.to_string(), path_suffix: String::new(), keys: f.values.clone() },
                shape,
                key_column: Some(parent.key_column.to_string()),
            });
        }
        return Ok(ScanPlan { request: RequestPlan::List { path: r.path.to_string(), page_size }, shape, key_column: None });
    }
    let shape = Shape { rows_at: None, child_array: None };
    if let Access::KeyRequired { key } = r.access {
        return match key_values(filters, key) {
            Some(f) if bounded(f) => Ok(ScanPlan {
                request: RequestPlan::PerKey { path_prefix: r.path.to_string(), path_suffix: String::new(), keys: f.values.clone() },
                shape,
                key_column: Some(key.to_string()),
            }),
            Some(_) => Err(FdwError::KeyRequired {
                table: table.to_string(),
                key: key.to_string(),
                reason: format!("the list of {key} values is longer than the server's max_key_lookups ({max_keys})"),
                hint: "Raise max_key_lookups on the server, or look up fewer keys at a time.".into(),
            }),
            None => Err(FdwError::KeyRequired {
                table: table.to_string(),
                key: key.to_string(),
                reason: format!("the CYBERBIZ API has no list endpoint for {}", r.name),
                hint: format!("Add WHERE {key} = <value> (or {key} IN (...), or join on {key}) to the query."),
            }),
        };
    }
    if r.get_by_id {
        if let Some(f) = key_values(filters, "id").filter(|f| bounded(f)) {
            return Ok(ScanPlan {
                request: RequestPlan::PerKey { path_prefix: r.path.to_string(), path_suffix: String::new(), keys: f.values.clone() },
                shape,
                key_column: Some("id".into()),
            });
        }
    }
    let request = match r.access {
        Access::Whole { rows_at } => {
            return Ok(ScanPlan { request: RequestPlan::Whole { path: r.path.to_string() }, shape: Shape { rows_at: rows_at.map(str::to_string), child_array: None }, key_column: None })
        }
        _ => RequestPlan::List { path: r.path.to_string(), page_size },
    };
    Ok(ScanPlan { request, shape, key_column: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;

    fn res(name: &str) -> TableSource {
        TableSource::Resource(find(name).unwrap())
    }
    fn key(c: &str, v: &[i64]) -> KeyFilter {
        KeyFilter { column: c.into(), values: Some(v.to_vec()) }
    }

    #[test]
    fn lists_and_keys() {
        let p = plan_scan("orders", &res("orders"), &[], 50, 50).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/orders?per_page=50");
        let p = plan_scan("orders", &res("orders"), &[key("id", &[5])], 50, 50).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/orders/5");
        let p = plan_scan("orders", &res("orders"), &[key("id", &[5, 6, 5])], 50, 50).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/orders/{id} x 3");
        assert_eq!(p.request.key_paths(), vec!["/v1/orders/5", "/v1/orders/6"]);
        let p = plan_scan("orders", &res("orders"), &[key("id", &[1, 2, 3])], 50, 2).unwrap();
        assert!(matches!(p.request, RequestPlan::List { .. }), "too many keys: list instead");
        let p = plan_scan("order_line_items", &res("order_line_items"), &[key("order_id", &[9])], 50, 50).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/orders/9");
        assert_eq!(p.shape.child_array.as_deref(), Some("line_items"));
        let p = plan_scan("vip_groups", &res("vip_groups"), &[], 50, 50).unwrap();
        assert_eq!((p.request.describe(), p.shape.rows_at.as_deref()), ("GET /v1/vip_groups".to_string(), Some("current")));
        let p = plan_scan("blogs", &TableSource::Endpoint("/v1/blogs".into()), &[], 20, 50).unwrap();
        assert_eq!(p.request.describe(), "GET /v1/blogs?per_page=20");
    }

    #[test]
    fn required_keys_and_missing_endpoints_fail_before_any_request() {
        let e = plan_scan("einvoices", &res("einvoices"), &[], 50, 50).unwrap_err();
        assert!(e.to_string().contains("can only be read by id"), "{e}");
        assert!(e.hint().unwrap().contains("WHERE id = "));
        assert!(plan_scan("einvoices", &res("einvoices"), &[key("id", &[7000001])], 50, 50).is_ok());
        let e = plan_scan("edms", &res("edms"), &[], 50, 50).unwrap_err();
        assert!(e.to_string().contains("documents no endpoint"), "{e}");
    }
}
