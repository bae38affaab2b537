//! The Postgres side of the FDW: handler, validator, and the `extension_sql!` that creates the
//! wrapper. This is the only module that touches pgrx/pg_sys; everything it decides is done by
//! the pure modules it calls.

use crate::error::{FdwError, SqlState};
use crate::options::{self, OptionTarget};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, PgBox};
use std::ffi::CString;

/// Raises `e` as a Postgres ERROR with its SQLSTATE and hint.
pub fn report(e: &FdwError) -> ! {
    let code = match e.sqlstate() {
        SqlState::FdwInvalidOptionName => PgSqlErrorCode::ERRCODE_FDW_INVALID_OPTION_NAME,
        SqlState::FdwInvalidAttributeValue => PgSqlErrorCode::ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE,
        SqlState::FdwOptionNameNotFound => PgSqlErrorCode::ERRCODE_FDW_OPTION_NAME_NOT_FOUND,
    };
    let mut report = pgrx::pg_sys::panic::ErrorReport::new(code, e.to_string(), "cyberbiz_fdw");
    if let Some(h) = e.hint() {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
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
        report(&e);
    }
}

/// The handler: the callbacks Postgres calls to plan and run scans of CYBERBIZ tables.
#[pg_extern]
fn cyberbiz_fdw_handler() -> PgBox<pg_sys::FdwRoutine> {
    // SAFETY: makeNode-equivalent: a zeroed FdwRoutine in the current memory context, tagged.
    let mut routine = unsafe { PgBox::<pg_sys::FdwRoutine>::alloc_node(pg_sys::NodeTag::T_FdwRoutine) };
    routine.GetForeignRelSize = Some(get_foreign_rel_size);
    routine.into_pg_boxed()
}

/// Planning entry point. Scans are not wired yet: say so plainly instead of crashing.
#[pg_guard]
unsafe extern "C-unwind" fn get_foreign_rel_size(_root: *mut pg_sys::PlannerInfo, _baserel: *mut pg_sys::RelOptInfo, _foreigntable_id: pg_sys::Oid) {
    pgrx::ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        "scanning CYBERBIZ foreign tables is not available in this build yet"
    );
}

extension_sql!(
    r#"
CREATE FOREIGN DATA WRAPPER cyberbiz_fdw
    HANDLER cyberbiz_fdw_handler
    VALIDATOR cyberbiz_fdw_validator;
COMMENT ON FOREIGN DATA WRAPPER cyberbiz_fdw IS 'CYBERBIZ e-commerce API (https://app-store-api.cyberbiz.io) as foreign tables';
"#,
    name = "create_fdw",
    requires = [cyberbiz_fdw_handler, cyberbiz_fdw_validator]
);
