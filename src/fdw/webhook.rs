//! Webhook ingestion, the Postgres side: the signature check against the App Secret of the
//! caller's user mapping (the secret never leaves this function) and the event -> resource
//! lookup, for the extension's SQL (`sql/webhooks.sql`: `cyberbiz_ingest_webhook` verifies,
//! stores the event once, and applies it to the server's replica, or to the 0.1.0 mirrors of a
//! server without one).

use super::{def_options, raise};
use crate::error::{FdwError, WebhookReason};
use crate::options;
use crate::webhook::{self, Refusal};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CString;

/// Checks a delivery's signature against the App Secret of `server` (the current user's user
/// mapping). Raises 28000 on a missing or wrong signature, 54000 on an oversized body.
#[pg_extern(parallel_unsafe)]
fn cyberbiz_fdw_verify_webhook(body: &str, signature: Option<&str>, server: &str) {
    let name = CString::new(server).unwrap_or_default();
    // SAFETY: catalog lookups on the main thread; missing_ok=false raises a clear ERROR.
    let secret = unsafe {
        let srv = pg_sys::GetForeignServerByName(name.as_ptr(), false);
        let um = pg_sys::GetUserMapping(pg_sys::GetUserId(), (*srv).serverid);
        options::parse_user_mapping(&def_options((*um).options)).ok().and_then(|u| u.app_secret)
    };
    let Some(secret) = secret else {
        raise(FdwError::WebhookRejected {
            message: format!("the user mapping for server \"{server}\" has no app_secret to verify webhooks with"),
            hint: "ALTER USER MAPPING ... OPTIONS (ADD app_secret '<the custom app App Secret>')".into(),
            reason: WebhookReason::Unverified,
        })
    };
    match webhook::verify(body.as_bytes(), signature.unwrap_or(""), secret.as_bytes()) {
        Ok(()) => {}
        Err(Refusal::Missing) => raise(FdwError::WebhookRejected {
            message: "webhook rejected: no X-Cyberbiz-Hmac-Sha256 signature".into(),
            hint: "Pass the X-Cyberbiz-Hmac-Sha256 header value as the signature argument.".into(),
            reason: WebhookReason::Unverified,
        }),
        Err(Refusal::Mismatch) => raise(FdwError::WebhookRejected {
            message: "webhook rejected: the signature does not match the body (HMAC-SHA256 under the App Secret, hex or base64)".into(),
            hint: "Pass the raw body text exactly as received (not through json/jsonb, which reorders keys).".into(),
            reason: WebhookReason::Unverified,
        }),
        Err(Refusal::TooLarge(n)) => raise(FdwError::WebhookRejected {
            message: format!("webhook rejected: the body is {n} bytes, over the {} byte limit", webhook::MAX_BODY_BYTES),
            hint: String::new(),
            reason: WebhookReason::TooLarge,
        }),
    }
}

/// The resource an event is about; raises 22023 for an event CYBERBIZ does not send.
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_webhook_resource(event: &str) -> &'static str {
    match crate::catalog::webhook_kind(event) {
        Some(r) => r,
        None => raise(FdwError::WebhookRejected {
            message: format!("unknown CYBERBIZ webhook event \"{event}\""),
            hint: "Events are named resource/action, e.g. orders/paid, products/update, apps/uninstall (the X-Cyberbiz-Event header).".into(),
            reason: WebhookReason::UnknownEvent,
        }),
    }
}

extension_sql_file!("../../sql/webhooks.sql", name = "webhooks", requires = [cyberbiz_fdw_verify_webhook, cyberbiz_fdw_webhook_resource]);
