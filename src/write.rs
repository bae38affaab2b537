//! Writes: what INSERT / UPDATE / DELETE may do on a resource, decided before any request, and
//! the request bodies built from typed columns. Pure Rust.

use crate::catalog::{ActionBody, Resource};
use crate::error::FdwError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Insert,
    Update,
    Delete,
}

/// A column of the target table as writes see it: its name and the JSON key it writes (None
/// for `raw`, nested paths and parent keys).
#[derive(Debug, Clone)]
pub struct WriteColumn {
    pub name: String,
    pub key: Option<String>,
}

/// Checks a statement before any request: the verb must exist for the resource, and every
/// column it sets must be writable (or an action column such as orders' `order_status`).
pub fn check(table: &str, r: &Resource, verb: Verb, set: &[WriteColumn]) -> Result<(), FdwError> {
    let w = &r.writes;
    let refuse = |message: String, hint: String| Err(FdwError::WriteUnsupported { message, hint });
    match verb {
        Verb::Insert if !w.create => {
            return refuse(
                format!("the CYBERBIZ API cannot create {}", r.name),
                "Create them in the CYBERBIZ admin; this table can be read (and updated where the API allows).".into(),
            )
        }
        Verb::Delete if !w.delete => {
            return refuse(format!("{} cannot be deleted through the CYBERBIZ API", r.name), "The API documents no DELETE endpoint for them.".into())
        }
        Verb::Update if !w.update => {
            return refuse(format!("{} cannot be updated through the CYBERBIZ API", r.name), "The API documents no update endpoint for them.".into())
        }
        _ => {}
    }
    if verb == Verb::Delete {
        return Ok(());
    }
    let mut writable: Vec<&str> = w.fields.to_vec();
    for a in w.actions {
        if !writable.contains(&a.column) {
            writable.push(a.column);
        }
    }
    for c in set {
        let ok = c.name == "raw"
            || w.is_action(&c.name)
            || c.key.as_deref().is_some_and(|k| w.fields.contains(&k))
            || r.parent.as_ref().is_some_and(|p| p.key_column == c.name && verb == Verb::Insert);
        if !ok {
            return refuse(
                format!(
                    "column \"{}\" of table \"{table}\" cannot be {} through the CYBERBIZ API",
                    c.name,
                    if verb == Verb::Insert { "set" } else { "changed" }
                ),
                format!(
                    "Writable columns: {}{}.",
                    writable.join(", "),
                    if verb == Verb::Insert { "; other fields the API accepts can go in raw (jsonb)" } else { "" }
                ),
            );
        }
    }
    Ok(())
}

/// The body of a write: `(json key, value)` of the columns set, plus the keys of `raw` that no
/// column sets. `tags` (a JSON array) goes as the platform's comma-separated `tags_text`.
pub fn body(values: &[(String, Value)], raw: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(Value::Object(m)) = raw {
        for (k, v) in m {
            out.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in values {
        if k == "tags" {
            if let Value::Array(items) = v {
                let text: Vec<String> = items.iter().map(|t| t.as_str().map(str::to_string).unwrap_or_else(|| t.to_string())).collect();
                out.remove("tags");
                out.insert("tags_text".into(), Value::from(text.join(",")));
                continue;
            }
        }
        out.insert(k.clone(), v.clone());
    }
    out
}

/// The request an action column change makes (orders' statuses): `(path suffix, body)`.
pub fn action_request(r: &Resource, column: &str, value: &str) -> Result<(String, Value), FdwError> {
    let Some(a) = r.writes.action(column, value) else {
        let message = format!("{}.{column} cannot be set to \"{value}\" through the CYBERBIZ API", r.name);
        return Err(FdwError::WriteUnsupported { message, hint: format!("{}.", r.writes.actions_hint()) });
    };
    let body = match a.body {
        ActionBody::Value { key } => serde_json::json!({ key: value }),
        ActionBody::Fixed { json } => serde_json::from_str(json).unwrap_or_else(|_| serde_json::json!({})),
    };
    Ok((a.suffix.to_string(), body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;
    use serde_json::json;

    fn cols(v: &[(&str, Option<&str>)]) -> Vec<WriteColumn> {
        v.iter().map(|(n, k)| WriteColumn { name: n.to_string(), key: k.map(str::to_string) }).collect()
    }

    #[test]
    fn unsupported_writes_fail_before_any_request() {
        let orders = find("orders").unwrap();
        assert_eq!(check("orders", orders, Verb::Insert, &[]).unwrap_err().to_string(), "the CYBERBIZ API cannot create orders");
        assert!(check("orders", orders, Verb::Delete, &[]).is_err());
        assert!(check("orders", orders, Verb::Update, &cols(&[("note", Some("note")), ("order_status", None)])).is_ok());
        let e = check("orders", orders, Verb::Update, &cols(&[("created_at", Some("created_at"))])).unwrap_err();
        assert_eq!(e.to_string(), "column \"created_at\" of table \"orders\" cannot be changed through the CYBERBIZ API");
        let customers = find("customers").unwrap();
        assert_eq!(check("customers", customers, Verb::Delete, &[]).unwrap_err().to_string(), "customers cannot be deleted through the CYBERBIZ API");
        assert!(check("product_variants", find("product_variants").unwrap(), Verb::Insert, &cols(&[("product_id", None), ("price", Some("price"))])).is_ok());
        assert!(check("shop", find("shop").unwrap(), Verb::Update, &[]).is_err());
    }

    #[test]
    fn bodies() {
        let b = body(&[("title".into(), json!("茶")), ("tags".into(), json!(["熱銷", "新品"]))], Some(&json!({"handle": "tea", "title": "ignored"})));
        assert_eq!(Value::Object(b), json!({"title": "茶", "tags_text": "熱銷,新品", "handle": "tea"}));
        let orders = crate::catalog::find("orders").unwrap();
        assert_eq!(action_request(orders, "order_status", "cancelled").unwrap(), ("cancelled".to_string(), json!({"cancel_reason": "other"})));
        assert_eq!(action_request(orders, "order_status", "open").unwrap(), ("update_status".to_string(), json!({"status": "open"})));
        assert_eq!(action_request(orders, "financial_status", "paid").unwrap(), ("update_financial_status".to_string(), json!({"financial_status": "paid"})));
        let e = action_request(orders, "order_status", "lost").unwrap_err();
        assert_eq!(e.hint().unwrap(), "order_status can become cancelled, open or closed; financial_status any payment status.");
    }
}
