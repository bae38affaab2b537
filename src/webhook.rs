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
        assert_eq!(crate::catalog::webhook_kind("orders/paid"), Some("orders"));
        assert_eq!(crate::catalog::webhook_kind("variants/delete"), Some("product_variants_deleted"));
        assert_eq!(crate::catalog::webhook_kind("apps/uninstall"), Some("app"));
        assert_eq!(crate::catalog::webhook_kind("orders/exploded"), None);
    }
}
