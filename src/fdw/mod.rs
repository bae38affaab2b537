//! The Postgres side of the FDW: handler, validator and the helpers every callback shares.
//! This directory is the only code that touches pgrx/pg_sys; everything it decides is done by
//! the pure modules. By job:
//! - `table.rs`: a foreign table's options, server and user mapping;
//! - `quals.rs`: which WHERE clauses may be pushed (operators, columns, values);
//! - `paths.rs`: estimates, paths and the ForeignScan plan; `private.rs`: its `fdw_private`;
//! - `exec.rs`: the executor and EXPLAIN; `datum.rs`: Datum conversion (shared with writes);
//! - `write.rs`: INSERT/UPDATE/DELETE (for `crate::write`); `import.rs`: IMPORT FOREIGN SCHEMA;
//! - `budget.rs`, `progress.rs`: `crate::pace::budget` and `crate::progress` in shared memory, and
//!   their views;
//! - `worker.rs`: what the background workers share (GUCs, registration, transactions);
//!   `receiver.rs`: the webhook receiver's main thread (for `crate::receiver`); `scheduler.rs`:
//!   the replica sync scheduler, which starts sync workers (`rounds.rs`: one server's round at a
//!   time);
//! - `webhook.rs`: the SQL functions webhook ingestion calls (for `crate::webhook`);
//!   `replica.rs`: those the replica calls (for `crate::replica`).

mod budget;
mod datum;
mod exec;
pub(crate) mod import;
mod paths;
mod private;
mod progress;
mod quals;
mod receiver;
mod replica;
mod rounds;
mod scheduler;
mod table;
mod verify;
mod webhook;
mod worker;
mod write;

pub(crate) use table::TableInfo;

/// For `_PG_init`: the shared memory (when preloaded) and the GUCs.
pub fn shared_init() {
    budget::init();
    progress::init();
    worker::init();
}

use crate::error::{FdwError, SqlState};
use crate::options::{self, OptionTarget};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{PgBox, PgList, PgSqlErrorCode};
use std::ffi::{CStr, CString};

/// Raises `e` as a Postgres ERROR with its SQLSTATE and hint.
pub fn raise(e: FdwError) -> ! {
    let code = match e.sqlstate() {
        SqlState::FdwInvalidOptionName => PgSqlErrorCode::ERRCODE_FDW_INVALID_OPTION_NAME,
        SqlState::FdwInvalidAttributeValue => PgSqlErrorCode::ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE,
        SqlState::FdwOptionNameNotFound => PgSqlErrorCode::ERRCODE_FDW_OPTION_NAME_NOT_FOUND,
        SqlState::FdwError => PgSqlErrorCode::ERRCODE_FDW_ERROR,
        SqlState::FdwUnableToEstablishConnection => PgSqlErrorCode::ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION,
        SqlState::InvalidAuthorization => PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
        SqlState::InsufficientPrivilege => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        SqlState::InvalidParameterValue => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        SqlState::InvalidTextRepresentation => PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        SqlState::FeatureNotSupported => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        SqlState::FdwUnableToCreateExecution => PgSqlErrorCode::ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION,
        SqlState::QueryCanceled => PgSqlErrorCode::ERRCODE_QUERY_CANCELED,
        SqlState::ProgramLimitExceeded => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
    };
    let mut report = pgrx::pg_sys::panic::ErrorReport::new(code, e.to_string(), "cyberbiz_fdw");
    if let Some(h) = e.hint() {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Unwraps, raising the error as a Postgres ERROR.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, FdwError> {
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}

/// Runs a wait (`f` polls `interrupt_pending`), letting Postgres process interrupts that arrive
/// meanwhile: a cancel or timeout raises its own ERROR; a harmless interrupt (sinval catch-up,
/// barrier) calls `f` again, so `f` must be safe to restart (a page from the pump is: its
/// requests run in tasks of their own). A single request waits with [`wait_for`] instead.
pub fn wait<T>(mut f: impl FnMut() -> Result<T, FdwError>) -> Result<T, FdwError> {
    loop {
        match f() {
            Err(FdwError::Interrupted) => {
                pgrx::check_for_interrupts!();
            }
            other => return other,
        }
    }
}

/// Waits for one request (and its retries) to finish, letting Postgres process interrupts that
/// arrive meanwhile without dropping or restarting the request: after a harmless interrupt the
/// same wait resumes, so nothing is sent twice. A cancel or timeout raises as usual, except
/// once a POST has left (`post` names it and says whether it was sent): it may have reached
/// the API, so the error says the row may have been created.
pub fn wait_for<T>(fut: impl std::future::Future<Output = Result<T, FdwError>>, post: Option<(&str, &dyn Fn() -> bool)>) -> Result<T, FdwError> {
    let mut fut = std::pin::pin!(fut);
    loop {
        match crate::runtime::poll_until(fut.as_mut(), &interrupt_pending) {
            Err(FdwError::Interrupted) => {
                if let Some((request, sent)) = post {
                    if cancel_pending() && sent() {
                        return Err(FdwError::outcome_unknown(request, "the statement was canceled while the request was in flight"));
                    }
                }
                pgrx::check_for_interrupts!();
            }
            other => return other,
        }
    }
}

/// Whether the pending interrupt ends the statement (a cancel, a timeout, or the backend's end).
fn cancel_pending() -> bool {
    // SAFETY: sig_atomic_t flags set by signal handlers; read on the backend's main thread.
    unsafe {
        std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::QueryCancelPending)) != 0 || std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::ProcDiePending)) != 0
    }
}

/// Whether a cancel or timeout is pending: polled while waiting on the network.
pub fn interrupt_pending() -> bool {
    // SAFETY: a sig_atomic_t flag set by signal handlers; read on the backend's main thread.
    unsafe { std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::InterruptPending)) != 0 }
}

/// A Rust string from a C string (empty for NULL; invalid UTF-8 replaced).
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string.
pub(crate) unsafe fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: the caller guarantees a NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// `(name, value)` pairs of a DefElem list.
///
/// # Safety
/// `list` must be NIL or a List of DefElem (an options list from the catalog).
pub(crate) unsafe fn def_options(list: *mut pg_sys::List) -> Vec<(String, String)> {
    // SAFETY: forwarded from the caller; defGetString raises an ERROR for a bad element.
    unsafe { PgList::<pg_sys::DefElem>::from_pg(list).iter_ptr().map(|d| (cstr((*d).defname), cstr(pg_sys::defGetString(d)))).collect() }
}

/// A String node (for fdw_private lists, which are copied with copyObject).
pub(crate) fn string_node(s: &str) -> *mut pg_sys::Node {
    let c = CString::new(s.replace('\0', "")).unwrap_or_default();
    // SAFETY: pstrdup copies the NUL-terminated string into the current memory context.
    unsafe { pg_sys::makeString(pg_sys::pstrdup(c.as_ptr())) as *mut pg_sys::Node }
}

/// The text of a String node.
///
/// # Safety
/// `n` must be a String node.
pub(crate) unsafe fn node_string(n: *mut pg_sys::Node) -> String {
    // SAFETY: forwarded from the caller.
    unsafe { cstr((*(n as *mut pg_sys::String)).sval) }
}

/// Stores `state` in `*slot` (`fdw_state`, `ri_FdwState`, a RelOptInfo's `fdw_private`) and
/// drops it when the current memory context is reset or deleted, so the Rust state is freed
/// even when an ERROR ends the query.
///
/// # Safety
/// `slot` must live in the current memory context (or longer) and be written by nobody else.
pub(crate) unsafe fn attach_state<T>(slot: *mut *mut std::ffi::c_void, state: T) {
    // SAFETY: forwarded from the caller; the callback struct is palloc'd in the same context,
    // so it lives exactly as long as the registration.
    unsafe {
        *slot = Box::into_raw(Box::new(state)) as *mut std::ffi::c_void;
        let cb = pg_sys::palloc0(std::mem::size_of::<pg_sys::MemoryContextCallback>()) as *mut pg_sys::MemoryContextCallback;
        (*cb).func = Some(drop_state::<T>);
        (*cb).arg = slot as *mut std::ffi::c_void;
        pg_sys::MemoryContextRegisterResetCallback(pg_sys::CurrentMemoryContext, cb);
    }
}

/// The memory-context reset callback of [`attach_state`]: drops the state once.
#[pg_guard]
extern "C-unwind" fn drop_state<T>(arg: *mut std::ffi::c_void) {
    let slot = arg as *mut *mut std::ffi::c_void;
    // SAFETY: `arg` is the slot attach_state registered, still alive (callbacks run before the
    // context's memory is freed); it holds a Box<T> from attach_state, or null once dropped.
    unsafe {
        if !(*slot).is_null() {
            drop(Box::from_raw(*slot as *mut T));
            *slot = std::ptr::null_mut();
        }
    }
}

/// Whether Postgres's time-zone database knows `name`.
fn zone_known(name: &str) -> bool {
    let Ok(c) = CString::new(name) else { return false };
    // SAFETY: pg_tzset only reads the NUL-terminated name; it returns NULL for unknown zones.
    unsafe { !pg_sys::pg_tzset(c.as_ptr()).is_null() }
}

/// Splits the validator's `name=value` strings.
fn split_options(options: Vec<Option<String>>) -> Vec<(String, String)> {
    options
        .into_iter()
        .flatten()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o, String::new()),
        })
        .collect()
}

/// Validates the options of every object that uses the wrapper, at CREATE and ALTER time.
#[pg_extern]
fn cyberbiz_fdw_validator(options: Vec<Option<String>>, catalog: Option<pg_sys::Oid>) {
    let target = match catalog {
        Some(pg_sys::ForeignDataWrapperRelationId) => OptionTarget::Wrapper,
        Some(pg_sys::ForeignServerRelationId) => OptionTarget::Server,
        Some(pg_sys::UserMappingRelationId) => OptionTarget::UserMapping,
        Some(pg_sys::ForeignTableRelationId) => OptionTarget::ForeignTable,
        Some(pg_sys::AttributeRelationId) => OptionTarget::Column,
        _ => return,
    };
    if let Err(e) = options::validate(target, &split_options(options), &zone_known) {
        raise(e);
    }
}

/// The handler: the callbacks Postgres calls to plan and run scans of CYBERBIZ tables.
#[pg_extern]
fn cyberbiz_fdw_handler() -> PgBox<pg_sys::FdwRoutine> {
    // SAFETY: makeNode-equivalent: a zeroed FdwRoutine in the current memory context, tagged.
    let mut routine = unsafe { PgBox::<pg_sys::FdwRoutine>::alloc_node(pg_sys::NodeTag::T_FdwRoutine) };
    paths::install(&mut routine);
    exec::install(&mut routine);
    import::install(&mut routine);
    write::install(&mut routine);
    routine.into_pg_boxed()
}

extension_sql_file!("../../sql/fdw.sql", name = "create_fdw", requires = [cyberbiz_fdw_handler, cyberbiz_fdw_validator]);

// Last in the script: a fixed search_path for every function of the extension.
extension_sql_file!("../../sql/search_path.sql", name = "search_path", finalize);
