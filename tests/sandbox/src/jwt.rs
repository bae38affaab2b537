//! HS256 JSON Web Tokens shaped like the platform's API tokens
//! (payload `iat`, `exp`, `shop_id`, `scopes` as one space-separated string, `shop_domain`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub struct Claims {
    pub exp: i64,
    pub shop_id: i64,
    pub scopes: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

fn sign(secret: &str, data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn encode(secret: &str, scopes: &str, iat: i64, ttl_secs: i64, shop_id: i64, shop_domain: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = json!({
        "iat": iat,
        "exp": iat + ttl_secs,
        "shop_id": shop_id,
        "scopes": scopes,
        "shop_domain": shop_domain,
    });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signing_input = format!("{header}.{payload}");
    let sig = URL_SAFE_NO_PAD.encode(sign(secret, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

pub fn verify(secret: &str, token: &str, now_unix: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: Value = URL_SAFE_NO_PAD.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(TokenError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{h}.{p}").as_bytes());
    mac.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let payload: Value = URL_SAFE_NO_PAD.decode(p).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Malformed)?;
    let exp = payload.get("exp").and_then(Value::as_i64).ok_or(TokenError::Malformed)?;
    if exp <= now_unix {
        return Err(TokenError::Expired);
    }
    let scopes = payload.get("scopes").and_then(Value::as_str).unwrap_or("").split_whitespace().map(str::to_string).collect();
    Ok(Claims { exp, shop_id: payload.get("shop_id").and_then(Value::as_i64).unwrap_or(0), scopes })
}

/// Hex HMAC-SHA256 of a webhook body, as production sends in `X-Cyberbiz-Hmac-Sha256`.
pub fn webhook_signature_hex(secret: &str, body: &[u8]) -> String {
    sign(secret, body).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_failures() {
        let t = encode("s3", "read_orders write_products", 1000, 60, 7, "x.cyberbiz.co");
        let c = verify("s3", &t, 1030).unwrap();
        assert_eq!(c.scopes, vec!["read_orders", "write_products"]);
        assert_eq!(c.exp, 1060);
        assert_eq!(verify("s3", &t, 1060).err(), Some(TokenError::Expired));
        assert_eq!(verify("other", &t, 1030).err(), Some(TokenError::BadSignature));
        assert_eq!(verify("s3", "abc", 1030).err(), Some(TokenError::Malformed));
    }

    #[test]
    fn webhook_hex_is_64_chars() {
        let s = webhook_signature_hex("secret", b"{\"id\":1}");
        assert_eq!(s.len(), 64);
        assert!(s.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
