//! Property tests: external input (response bodies, timestamps, numbers, headers, webhook
//! signatures) and planning with random quals never panic, and keep their promises. Each
//! property runs 100,000 cases; a failure found here becomes a unit test beside the code.

use crate::catalog::RESOURCES;
use crate::decode::{self, ColumnSpec, Shape, Source, Target, TAIPEI};
use crate::options::TableSource;
use crate::plan::{self, Limits, Op, Qual, Query, RequestPlan, Value};
use proptest::prelude::*;
use serde_json::Value as J;

const CASES: u32 = 100_000;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() }
}

/// JSON values of every kind, nested a few levels, with keys the decoder looks for.
fn json() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::from),
        any::<i64>().prop_map(J::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(J::Number).unwrap_or(J::Null)),
        "\\PC{0,12}".prop_map(J::from),
        timestamp_text().prop_map(J::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
            prop::collection::vec(
                (prop_oneof![Just("id".to_string()), Just("line_items".to_string()), Just("product_feeds".to_string()), "[a-z]{1,6}"], inner),
                0..5
            )
            .prop_map(|kv| J::Object(kv.into_iter().collect())),
        ]
    })
}

/// Strings shaped like the API's timestamps, valid or nearly so (odd offsets, fractions, bytes).
fn timestamp_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,9})?(Z|z|[+-][0-9é:]{0,6}| ?\\PC{0,3})?",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        "\\PC{0,30}",
    ]
}

fn targets() -> Vec<Target> {
    use Target::*;
    vec![Int2, Int4, Int8, Numeric, Float4, Float8, Text, Bool, TimestampTz, Timestamp, Date, Jsonb, Json]
}

fn shapes() -> impl Strategy<Value = Shape> {
    (any::<bool>(), prop::option::of(Just("product_feeds".to_string())), prop::option::of(Just("line_items".to_string())))
        .prop_map(|(array, rows_at, child_array)| Shape { rows_at, child_array, array })
}

proptest! {
    #![proptest_config(config())]

    /// Any body, as bytes or as JSON of any shape, splits into rows or fails cleanly, and every
    /// row decodes into every type or names the value that does not fit.
    #[test]
    fn bodies_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..64), value in json(), shape in shapes()) {
        let _ = decode::rows(&bytes, &shape);
        let body = serde_json::to_vec(&value).unwrap();
        if let Ok(rows) = decode::rows(&body, &shape) {
            let columns: Vec<ColumnSpec> = targets().into_iter().enumerate().flat_map(|(i, target)| {
                [Source::parse("id"), Source::parse("a.b"), Source::parse("^id"), Source::Raw].into_iter().map(move |source| ColumnSpec { name: format!("c{i}"), target, source })
            }).collect();
            let mut out = Vec::new();
            for row in rows.iter().take(4) {
                let _ = decode::decode_row(row, &columns, &TAIPEI, &mut out);
            }
        }
    }

    /// Timestamps: never a panic; a well-formed local time parses to exactly its parts.
    #[test]
    fn timestamps_parse_or_fail_cleanly(s in timestamp_text(), y in 1970i64..9999, mo in 1u32..=12, d in 1u32..=28, h in 0i64..24, mi in 0i64..60, se in 0i64..60, us in 0i64..1_000_000) {
        let _ = decode::parse_timestamp(&s);
        for target in [Target::TimestampTz, Target::Timestamp, Target::Date] {
            let _ = decode::convert(&J::from(s.clone()), target, "t", &TAIPEI);
        }
        let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{se:02}.{us:06}");
        let t = decode::parse_timestamp(&text).expect("a well-formed timestamp");
        prop_assert_eq!((t.secs, t.micros, t.offset), (decode::days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se, us, None));
    }

    /// Numbers and numeric text into every numeric type: a value or a mismatch, never a panic;
    /// integers that fit come back unchanged.
    #[test]
    fn numbers_decode_exactly_or_fail_cleanly(i in any::<i64>(), f in any::<f64>(), s in "[-+ ]?[0-9.eE]{0,24}|\\PC{0,8}") {
        for target in [Target::Int2, Target::Int4, Target::Int8, Target::Numeric, Target::Float4, Target::Float8, Target::Bool] {
            for v in [J::from(i), serde_json::Number::from_f64(f).map(J::Number).unwrap_or(J::Null), J::from(s.clone())] {
                let _ = decode::convert(&v, target, "n", &TAIPEI);
            }
        }
        prop_assert_eq!(decode::convert(&J::from(i), Target::Int8, "n", &TAIPEI), Ok(decode::Cell::Int(i)));
    }

    /// Error bodies, JWTs and header values of any bytes: a message, never a panic.
    #[test]
    fn api_messages_and_tokens_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), token in "\\PC{0,80}", value in json()) {
        let _ = crate::http::api_message(&bytes);
        let _ = crate::http::api_message(&serde_json::to_vec(&serde_json::json!({"error": value})).unwrap());
        let _ = crate::http::token_claims(&token);
        let dotted = format!("a.{}.c", token.replace('.', ""));
        let _ = crate::http::token_claims(&dotted);
    }

    /// Webhook signatures of any text (multibyte included) are refused cleanly; the right
    /// HMAC, in hex or base64, is accepted; a different body is refused.
    #[test]
    fn webhook_signatures_verify_exactly(body in prop::collection::vec(any::<u8>(), 0..200), sig in "\\PC{0,70}", secret in prop::collection::vec(any::<u8>(), 1..40)) {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let _ = crate::webhook::verify(&body, &sig, &secret);
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
        m.update(&body);
        let mac = m.finalize().into_bytes();
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        prop_assert_eq!(crate::webhook::verify(&body, &hex, &secret), Ok(()));
        prop_assert_eq!(crate::webhook::verify(&body, &base64::engine::general_purpose::STANDARD.encode(mac), &secret), Ok(()));
        let mut other = body.clone();
        other.push(b'x');
        prop_assert!(crate::webhook::verify(&other, &hex, &secret).is_err());
    }

    /// Planning with random quals on random tables: never a panic, and its promises hold:
    /// pushed quals exist, LIMIT is capped only when every qual is pushed and none is local,
    /// every value it sends can be said, and the request prints.
    #[test]
    fn plans_keep_their_promises(table in 0usize..RESOURCES.len(), quals in prop::collection::vec(qual(), 0..5), local_only in 0usize..2, limit in prop::option::of(0u64..200), page_size in 1u32..=50, max_keys in 1u32..100) {
        let r = &RESOURCES[table];
        let source = TableSource::Resource(r);
        let columns: Vec<&str> = r.pushdown.iter().map(|p| p.column()).chain(r.key_column()).chain(["note", "id"]).collect();
        let quals: Vec<Qual> = quals.into_iter().map(|(c, op, values)| Qual { column: columns[c % columns.len()].to_string(), op, values }).collect();
        let q = Query { quals: quals.clone(), local_only, limit };
        let limits = Limits { page_size, max_keys, zone: &TAIPEI };
        if let Ok(p) = plan::plan_scan(r.name, &source, &q, &limits) {
            prop_assert!(p.pushed.iter().all(|&i| i < quals.len()));
            let _ = p.request.describe();
            if let RequestPlan::List { path, params, cap, .. } = &p.request {
                prop_assert!(cap.is_none() || (p.pushed.len() == quals.len() && local_only == 0), "LIMIT capped with a local qual: {:?}", p.request);
                let _ = plan::url_path(path, params);
            }
            for &i in &p.pushed {
                if quals[i].op != Op::Eq || quals[i].column != r.key_column().unwrap_or("") {
                    prop_assert!(quals[i].values.iter().flatten().all(plan::sayable), "pushed a value the API cannot say: {:?}", quals[i]);
                }
            }
        }
    }
}

/// A qual: a column (by index into the table's pushable columns), an operator, and values of
/// every class (ints, odd and plain text, times from -infinity to +infinity), or unknown.
fn qual() -> impl Strategy<Value = (usize, Op, Option<Vec<Value>>)> {
    let op = prop_oneof![Just(Op::Eq), Just(Op::Lt), Just(Op::Le), Just(Op::Gt), Just(Op::Ge), Just(Op::Has), Just(Op::IsNull), Just(Op::IsNotNull)];
    let value = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        (-3i64..5_000_000).prop_map(Value::Int),
        prop_oneof![Just("paid".to_string()), Just("a,b".to_string()), Just(" x".to_string()), Just(String::new()), "\\PC{0,8}"].prop_map(Value::Text),
        prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), 0i64..2_000_000_000_000_000].prop_map(Value::Time),
    ];
    (0usize..8, op, prop::option::of(prop::collection::vec(value, 0..4)))
}
