//! Webhooks: signature checks (the event names are catalog data). Pure Rust, used by the
//! receiver's HTTP threads (`receiver.rs`) and by `fdw/webhook.rs`, which finds the App Secret
//! for `cyberbiz_ingest_webhook` (it stores the event and applies it to the replica or mirrors).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Largest body accepted (the platform's request limit).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Why a delivery is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No signature header value.
    Missing,
    /// Neither the hex (production) nor the base64 (documented) HMAC matches.
    Mismatch,
    TooLarge(usize),
}

/// Verifies `signature` = HMAC-SHA256(body, secret) in hex or base64, in constant time.
pub fn verify(body: &[u8], signature: &str, secret: &[u8]) -> Result<(), Refusal> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal::TooLarge(body.len()));
    }
    let sig = signature.trim();
    if sig.is_empty() {
        return Err(Refusal::Missing);
    }
    let mac = || {
        let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        m.update(body);
        m
    };
    // Hex digits are ASCII: a 64-byte signature holding other characters is not hex (and must
    // not be sliced by byte index).
    let hex = (sig.len() == 64 && sig.is_ascii())
        .then(|| (0..32).map(|i| u8::from_str_radix(&sig[2 * i..2 * i + 2], 16).ok()).collect::<Option<Vec<u8>>>())
        .flatten();
    if let Some(bytes) = hex {
        if mac().verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(sig) {
        if bytes.len() == 32 && mac().verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(Refusal::Mismatch)
}

/// A server a delivery may belong to: its `shop_domain` option and the App Secret of the
/// user mapping in use (servers without one cannot verify a delivery and are never picked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shop {
    pub server: String,
    pub shop_domain: Option<String>,
    pub app_secret: String,
}

/// The server a delivery from shop `domain` (X-Cyberbiz-Domain) belongs to: the one whose shop
/// is that domain (`Shop::shop_domain`: the server's option, else its token's claim); a
/// delivery naming no shop, the only server. A delivery naming a shop no server is known to be
/// for is refused, even with one server (an app's App Secret is shared by every shop that
/// installed it). Anything else is an error saying why. The receiver and
/// `cyberbiz_ingest_webhook` both pick with this.
pub fn pick_server<'a>(shops: &'a [Shop], domain: Option<&str>) -> Result<&'a Shop, String> {
    let domain = domain.map(|d| d.trim().to_ascii_lowercase()).filter(|d| !d.is_empty());
    let matching: Vec<&Shop> = shops.iter().filter(|s| s.shop_domain.is_some() && s.shop_domain == domain).collect();
    match (matching.as_slice(), shops) {
        ([one], _) => Ok(*one),
        ([], [only]) if domain.is_none() => Ok(only),
        ([], [only]) => Err(match &only.shop_domain {
            Some(d) => format!(
                "the webhook is from shop \"{}\", but the only server with an app_secret, \"{}\", is for shop \"{d}\"",
                domain.unwrap_or_default(),
                only.server
            ),
            None => format!(
                "the webhook is from shop \"{}\", but the only server with an app_secret, \"{}\", does not say which shop it is for (set its shop_domain option; its token has no shop_domain claim)",
                domain.unwrap_or_default(),
                only.server
            ),
        }),
        (_, _) => Err(format!(
            "cannot tell which CYBERBIZ server a webhook from shop \"{}\" belongs to ({} servers with an app_secret, {} for that shop)",
            domain.unwrap_or_default(),
            shops.len(),
            matching.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_sig(body: &[u8], secret: &[u8]) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        m.update(body);
        m.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A 64-byte signature with multibyte characters panicked (found reading the code; the
    /// property tests now cover signatures of any text).
    #[test]
    fn signatures_with_multibyte_characters_are_refused() {
        for sig in [format!("{}é{}", "a".repeat(61), "a"), format!("{}a", "團".repeat(21))] {
            assert_eq!(sig.len(), 64);
            assert_eq!(verify(b"{}", &sig, b"secret"), Err(Refusal::Mismatch), "{sig}");
        }
    }

    #[test]
    fn hex_and_base64_signatures() {
        let body = br#"{"id":1,"updated_at":"2026-11-28 12:00:00"}"#;
        let hex = hex_sig(body, b"s3cret");
        assert_eq!(verify(body, &hex, b"s3cret"), Ok(()));
        assert_eq!(verify(body, &hex.to_uppercase(), b"s3cret"), Ok(()));
        let raw: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(verify(body, &b64, b"s3cret"), Ok(()));
        assert_eq!(verify(body, &hex, b"wrong"), Err(Refusal::Mismatch));
        assert_eq!(verify(br#"{"id":2,"updated_at":"2026-11-28 12:00:00"}"#, &hex, b"s3cret"), Err(Refusal::Mismatch), "tampered body");
        assert_eq!(verify(body, "", b"s3cret"), Err(Refusal::Missing));
        assert_eq!(verify(body, "zz", b"s3cret"), Err(Refusal::Mismatch));
        assert!(matches!(verify(&vec![b' '; MAX_BODY_BYTES + 1], &hex, b"s3cret"), Err(Refusal::TooLarge(_))));
    }

    #[test]
    fn events() {
        let kind = |e: &str| crate::catalog::webhook_kind(e).map(|k| (k.resource, k.verb(), k.deletes, k.legacy_kind()));
        assert_eq!(kind("orders/paid"), Some(("orders", "paid", false, "orders".into())));
        assert_eq!(kind("variants/delete"), Some(("product_variants", "delete", true, "product_variants_deleted".into())));
        assert_eq!(kind("apps/uninstall"), Some(("app", "uninstall", false, "app".into())));
        assert!(kind("orders/exploded").is_none());
    }

    #[test]
    fn deliveries_go_to_their_shops_server() {
        let shop = |s: &str, d: Option<&str>| Shop { server: s.into(), shop_domain: d.map(str::to_string), app_secret: "k".into() };
        let two = [shop("a", Some("a.cyberbiz.co")), shop("b", Some("b.cyberbiz.co"))];
        let pick = |shops: &[Shop], d: Option<&str>| pick_server(shops, d).map(|s| s.server.clone());
        assert_eq!(pick(&two, Some("B.cyberbiz.co")), Ok("b".into()), "by shop_domain, any case");
        assert!(pick(&two, Some("c.cyberbiz.co")).unwrap_err().contains("2 servers with an app_secret, 0 for that shop"));
        assert!(pick(&two, None).is_err(), "two servers and no domain");
        let unknown = pick(&[shop("a", None)], Some("c.cyberbiz.co")).unwrap_err();
        assert!(unknown.contains("does not say which shop"), "not even the only server, when it cannot tell: {unknown}");
        assert_eq!(pick(&[shop("a", Some("a.cyberbiz.co"))], None), Ok("a".into()), "the only server, for a delivery naming no shop");
        let other = pick(&[shop("a", Some("a.cyberbiz.co"))], Some("c.cyberbiz.co")).unwrap_err();
        assert!(other.contains("\"c.cyberbiz.co\"") && other.contains("is for shop \"a.cyberbiz.co\""), "never another shop's server: {other}");
        assert!(pick(&[shop("a", Some("x.co")), shop("b", Some("x.co"))], Some("x.co")).unwrap_err().contains("2 for that shop"));
        assert!(pick(&[], None).is_err());
    }
}
