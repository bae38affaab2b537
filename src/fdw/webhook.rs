//! Webhook ingestion, the Postgres side (for `crate::webhook`): the signature check against the
//! App Secret of the caller's user mapping (the secret never leaves this function), the server
//! a delivery belongs to (`webhook::pick_server` over the servers and user mappings, read as the
//! validator reads them; the receiver reads the same list), and what an event is about, as data
//! (`cyberbiz_fdw_webhook_kind`). The SQL is `sql/webhooks.sql` (`cyberbiz_ingest_webhook`
//! verifies, stores the event once, and applies it to the server's replica) and
//! `sql/mirrors.sql` (the 0.1.0 mirrors of a server without a replica, until 0.5.0).

use super::{def_options, raise};
use crate::catalog::WebhookEvent;
use crate::error::{FdwError, WebhookReason};
use crate::options;
use crate::webhook::{self, Refusal, Shop};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::rc::Rc;

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

/// Webhook `event` as the catalog declares it; raises 22023 for an event CYBERBIZ does not send.
fn kind(event: &str) -> &'static WebhookEvent {
    match crate::catalog::webhook_kind(event) {
        Some(k) => k,
        None => raise(FdwError::WebhookRejected {
            message: format!("unknown CYBERBIZ webhook event \"{event}\""),
            hint: "Events are named resource/action, e.g. orders/paid, products/update, apps/uninstall (the X-Cyberbiz-Event header).".into(),
            reason: WebhookReason::UnknownEvent,
        }),
    }
}

/// What webhook `event` is about, as data: the resource, the verb, and whether it says the
/// object is gone.
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_webhook_kind(event: &str) -> TableIterator<'static, (name!(resource, String), name!(verb, String), name!(deletes, bool))> {
    let k = kind(event);
    TableIterator::once((k.resource.to_string(), k.verb().to_string(), k.deletes))
}

/// The event webhook `event` is taken for: itself when CYBERBIZ documents it, else (no header,
/// or one this version does not know) what the payload's shape says without doubt
/// (`catalog::webhook_from_payload`), else NULL: the delivery is stored as unclassified.
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_webhook_event(event: Option<&str>, payload: JsonB) -> Option<String> {
    match event.filter(|e| crate::catalog::webhook_kind(e).is_some()) {
        Some(e) => Some(e.to_string()),
        None => crate::catalog::webhook_from_payload(&payload.0).map(String::from),
    }
}

/// The name 0.1.0 gave an event's kind (`products_deleted`), which the events table's
/// `resource` column and the 0.1.0 mirrors still take.
#[pg_extern(immutable, parallel_safe)]
fn cyberbiz_fdw_webhook_resource(event: &str) -> String {
    kind(event).legacy_kind()
}

/// The options of the current user's user mapping on `server` (else PUBLIC's), as
/// `GetUserMapping` finds it for the signature check; None without one.
fn user_mapping_options(server: pg_sys::Oid) -> Option<Vec<(String, String)>> {
    let key = pg_sys::SysCacheIdentifier::USERMAPPINGUSERSERVER as std::ffi::c_int;
    // SAFETY: syscache lookups and GetUserMapping on the main thread; GetUserMapping (which
    // raises when there is none) is called only after one was found for the user or PUBLIC.
    unsafe {
        let user = pg_sys::GetUserId();
        let exists = |u: pg_sys::Oid| pg_sys::SearchSysCacheExists(key, u.into(), server.into(), 0.into(), 0.into());
        if !exists(user) && !exists(pg_sys::InvalidOid) {
            return None;
        }
        Some(def_options((*pg_sys::GetUserMapping(user, server)).options))
    }
}

/// Every cyberbiz_fdw server whose user mapping for the current user (or PUBLIC) holds an App
/// Secret, with its shop's domain (its `shop_domain` option, else its token's `shop_domain`
/// claim): options read as the validator reads them.
pub(super) fn shops() -> Result<Vec<Shop>, pgrx::spi::Error> {
    const SERVERS: &str = "SELECT s.oid FROM pg_catalog.pg_foreign_server s
        JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'cyberbiz_fdw' ORDER BY s.srvname";
    let oids: Vec<pg_sys::Oid> =
        Spi::connect(|c| c.select(SERVERS, None, &[])?.map(|row| row.get::<pg_sys::Oid>(1)).collect::<Result<Vec<_>, _>>())?.into_iter().flatten().collect();
    let mut shops = Vec::new();
    for oid in oids {
        // SAFETY: a catalog lookup of a server just listed, on the main thread.
        let (server, opts) = unsafe {
            let srv = pg_sys::GetForeignServer(oid);
            (super::cstr((*srv).servername), def_options((*srv).options))
        };
        let srv = options::parse_server(&opts, &|_| true);
        let um = user_mapping_options(oid).map(|o| options::parse_user_mapping(&o));
        if let (Ok(srv), Some(Ok(options::UserMappingOptions { app_secret: Some(app_secret), api_token, .. }))) = (srv, um) {
            // The shop: the server's option, else what its token was issued for.
            let shop_domain = srv.shop_domain.or_else(|| crate::http::token_shop_domain(&api_token));
            shops.push(Shop { server, shop_domain, app_secret });
        }
    }
    Ok(shops)
}

/// The shops a user may receive for, as read after a number of catalog changes.
type KeptShops = (pg_sys::Oid, u64, Rc<Vec<Shop>>);

thread_local! {
    /// `shops()` for a user, as of a count of catalog changes: kept while no server or user
    /// mapping changes (read per delivery, it cost 0.4 ms, more than the rest of an ingest).
    static SHOPS: RefCell<Option<KeptShops>> = const { RefCell::new(None) };
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    /// Server and user mapping changes seen (this session's, or another's at its next transaction).
    static CHANGES: Cell<u64> = const { Cell::new(0) };
}

#[pg_guard]
extern "C-unwind" fn count_change(_arg: pg_sys::Datum, _cache: std::ffi::c_int, _hash: u32) {
    CHANGES.set(CHANGES.get() + 1);
}

/// `shops()` of the current user, read again only after a server or user mapping changed (a
/// list read while a change came in is not kept).
fn cached_shops() -> Rc<Vec<Shop>> {
    if !WATCHING.replace(true) {
        for cache in [pg_sys::SysCacheIdentifier::FOREIGNSERVEROID, pg_sys::SysCacheIdentifier::USERMAPPINGOID] {
            // SAFETY: registers a callback (a plain function, for the life of the backend) on
            // the main thread; Postgres calls it when the catalog changes.
            unsafe { pg_sys::CacheRegisterSyscacheCallback(cache as std::ffi::c_int, Some(count_change), pg_sys::Datum::from(0)) };
        }
    }
    // SAFETY: reads the backend's current user id.
    let user = unsafe { pg_sys::GetUserId() };
    let seen = CHANGES.get();
    let kept = SHOPS.with_borrow(|s| s.as_ref().filter(|(u, at, _)| *u == user && *at == seen).map(|(_, _, shops)| shops.clone()));
    if let Some(shops) = kept {
        return shops;
    }
    let shops = Rc::new(shops().unwrap_or_else(|e| error!("cyberbiz_fdw: reading the servers failed: {e}")));
    SHOPS.with_borrow_mut(|s| *s = Some((user, seen, shops.clone())));
    shops
}

/// The server a delivery from shop `shop_domain` belongs to (`webhook::pick_server`, as the
/// receiver picks it); raises 28000 saying why when none can be told.
#[pg_extern(stable, parallel_safe)]
fn cyberbiz_fdw_webhook_server(shop_domain: Option<&str>) -> String {
    let shops = cached_shops();
    match webhook::pick_server(&shops, shop_domain) {
        Ok(s) => s.server.clone(),
        Err(message) => raise(FdwError::WebhookRejected {
            message,
            hint: "Set the server option shop_domain to the shop's X-Cyberbiz-Domain, give its user mapping the app_secret, or pass server => 'name'.".into(),
            reason: WebhookReason::Unverified,
        }),
    }
}

extension_sql_file!(
    "../../sql/webhooks.sql",
    name = "webhooks",
    requires = [cyberbiz_fdw_verify_webhook, cyberbiz_fdw_webhook_resource, cyberbiz_fdw_webhook_kind, cyberbiz_fdw_webhook_server, cyberbiz_fdw_webhook_event]
);

extension_sql_file!("../../sql/mirrors.sql", name = "mirrors", requires = ["webhooks", "comment_imported"]);
