//! The shop's state: every collection as a list of items in API order, each kept both as a JSON
//! value (for filters and writes) and pre-serialized (so a page is a concatenation of bytes and
//! the sandbox is never the bottleneck of a benchmark).

use crate::clock::parse_local;
use crate::data::Shop;
use crate::routes::{Filter, Op};
use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;

pub struct Item {
    pub value: Value,
    pub json: Bytes,
}

impl Item {
    pub fn new(value: Value) -> Self {
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Item { value, json }
    }

    pub fn id(&self) -> Option<i64> {
        self.value.get("id").and_then(Value::as_i64)
    }
}

#[derive(Default)]
pub struct Table {
    pub items: Vec<Item>,
    by_id: HashMap<i64, usize>,
}

impl Table {
    fn from_values(values: Vec<Value>) -> Self {
        let mut t = Table { items: values.into_iter().map(Item::new).collect(), by_id: HashMap::new() };
        t.reindex();
        t
    }

    fn reindex(&mut self) {
        self.by_id = self.items.iter().enumerate().filter_map(|(i, it)| it.id().map(|id| (id, i))).collect();
    }

    pub fn get(&self, id: i64) -> Option<&Item> {
        self.by_id.get(&id).map(|&i| &self.items[i])
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Item> {
        match self.by_id.get(&id) {
            Some(&i) => Some(&mut self.items[i]),
            None => None,
        }
    }

    pub fn max_id(&self) -> i64 {
        self.by_id.keys().copied().max().unwrap_or(1000)
    }

    /// Appends (or, for lists the platform shows newest first, prepends) a new item.
    pub fn insert(&mut self, value: Value, newest_first: bool) {
        if newest_first {
            self.items.insert(0, Item::new(value));
        } else {
            self.items.push(Item::new(value));
        }
        self.reindex();
    }

    pub fn remove(&mut self, id: i64) -> Option<Item> {
        let i = *self.by_id.get(&id)?;
        let it = self.items.remove(i);
        self.reindex();
        Some(it)
    }

    pub fn find_by<'a>(&'a self, pred: impl Fn(&Value) -> bool + 'a) -> impl Iterator<Item = &'a Item> + 'a {
        self.items.iter().filter(move |it| pred(&it.value))
    }
}

pub struct Store {
    pub tables: HashMap<&'static str, Table>,
    pub shop_info: Value,
}

impl Store {
    pub fn new(shop: Shop) -> Self {
        let mut tables: HashMap<&'static str, Table> = shop.collections.into_iter().map(|(name, values)| (name, Table::from_values(values))).collect();
        let feeds = shop.product_feeds.get("product_feeds").and_then(Value::as_array).cloned().unwrap_or_default();
        tables.insert("product_feeds", Table::from_values(feeds));
        let vip = shop.vip_groups.get("current").and_then(Value::as_array).cloned().unwrap_or_default();
        tables.insert("vip_groups", Table::from_values(vip));
        Store { tables, shop_info: shop.shop_info }
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    pub fn table_mut(&mut self, name: &str) -> Option<&mut Table> {
        self.tables.get_mut(name)
    }
}

/// Values found at a dotted path; arrays along the way are flattened
/// (`line_items.vendor` yields every line item's vendor).
pub fn values_at<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut cur = vec![v];
    for key in path.split('.') {
        let mut next = Vec::new();
        for c in cur {
            match c.get(key) {
                Some(Value::Array(a)) => next.extend(a.iter()),
                Some(x) => next.push(x),
                None => {
                    if let Value::Array(a) = c {
                        next.extend(a.iter().filter_map(|e| e.get(key)));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A filter ready to run: the parameter's value parsed once.
pub enum Compiled {
    From(&'static str, i64),
    To(&'static str, i64),
    AnyOf(&'static str, Vec<String>),
    NoneOf(&'static str, Vec<String>),
    AtMost(&'static str, f64),
    OnlyTrue(&'static str),
    Pos(&'static str, bool),
    Pass,
}

/// Parses a filter's parameter; `Err` carries the platform-style 422 message.
pub fn compile(f: &Filter, raw: &str) -> Result<Compiled, String> {
    let list = || raw.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
    Ok(match f.op {
        Op::From => Compiled::From(f.path, parse_local(raw, false).ok_or_else(|| format!("{} 格式錯誤", f.param))?),
        Op::To => Compiled::To(f.path, parse_local(raw, true).ok_or_else(|| format!("{} 格式錯誤", f.param))?),
        Op::AnyOf => Compiled::AnyOf(f.path, list()),
        Op::NoneOf => Compiled::NoneOf(f.path, list()),
        Op::AtMost => Compiled::AtMost(f.path, raw.trim().parse().map_err(|_| format!("{} 格式錯誤", f.param))?),
        Op::OnlyTrue => {
            if raw.trim() == "true" {
                Compiled::OnlyTrue(f.path)
            } else {
                Compiled::Pass
            }
        }
        Op::DataSource => match raw.trim() {
            "pos" => Compiled::Pos(f.path, true),
            "ec" => Compiled::Pos(f.path, false),
            "" => Compiled::Pass,
            _ => return Err(format!("{} 格式錯誤", f.param)),
        },
    })
}

impl Compiled {
    pub fn keeps(&self, v: &Value) -> bool {
        let time_at = |path: &str| values_at(v, path).first().and_then(|x| x.as_str()).and_then(|s| parse_local(s, false));
        match self {
            Compiled::From(p, t) => time_at(p).is_some_and(|x| x >= *t),
            Compiled::To(p, t) => time_at(p).is_some_and(|x| x <= *t),
            Compiled::AnyOf(p, set) => set.is_empty() || values_at(v, p).iter().filter_map(|x| scalar_text(x)).any(|s| set.contains(&s)),
            Compiled::NoneOf(p, set) => !values_at(v, p).iter().filter_map(|x| scalar_text(x)).any(|s| set.contains(&s)),
            Compiled::AtMost(p, n) => values_at(v, p).first().and_then(|x| x.as_f64()).is_some_and(|x| x <= *n),
            Compiled::OnlyTrue(p) => values_at(v, p).first().and_then(|x| x.as_bool()) == Some(true),
            Compiled::Pos(p, pos) => values_at(v, p).first().is_some_and(|x| !x.is_null()) == *pos,
            Compiled::Pass => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_flatten_arrays() {
        let v = json!({"line_items": [{"vendor": "A"}, {"vendor": null}, {"vendor": "B"}], "statuses": {"order_status": "open"}});
        assert_eq!(values_at(&v, "line_items.vendor").len(), 3);
        assert_eq!(values_at(&v, "statuses.order_status"), vec![&json!("open")]);
        assert!(values_at(&v, "missing.key").is_empty());
    }

    #[test]
    fn filters_are_inclusive_and_null_safe() {
        let f = Filter { param: "end_time", path: "created_at", op: Op::To };
        let c = compile(&f, "2026-11-21").unwrap();
        assert!(c.keeps(&json!({"created_at": "2026-11-21 23:59:59"})));
        assert!(!c.keeps(&json!({"created_at": "2026-11-22 00:00:00"})));
        assert!(!c.keeps(&json!({"created_at": null})));
        let f = Filter { param: "tags", path: "tags", op: Op::NoneOf };
        let c = compile(&f, "VIP,急件").unwrap();
        assert!(c.keeps(&json!({"tags": ["團購"]})));
        assert!(!c.keeps(&json!({"tags": ["急件"]})));
        assert!(compile(&Filter { param: "start_time", path: "created_at", op: Op::From }, "soon").is_err());
    }
}
