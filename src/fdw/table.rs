//! A foreign table's facts as the callbacks need them: its name, source (catalog resource or
//! endpoint), row estimate, server options, and the API token of the user mapping in force.

use super::{cstr, def_options, raise, OrRaise};
use crate::error::FdwError;
use crate::options::{self, ServerOptions, TableSource};
use pgrx::pg_sys;

/// The foreign table's catalog facts: name, source, server options.
pub(crate) struct TableInfo {
    pub name: String,
    pub source: TableSource,
    pub rows: Option<f64>,
    /// A replica's source table: scans are capped at the server's sync_requests_per_second.
    pub sync: bool,
    pub server: ServerOptions,
    pub server_name: String,
    pub server_oid: pg_sys::Oid,
    /// The role whose user mapping holds the token: the range table entry's checkAsUser when
    /// set (a view's owner, for a query through the view), else the current user, as
    /// postgres_fdw does (and as ExecCheckRTPerms checks permissions).
    pub user: pg_sys::Oid,
}

/// Reads the options of foreign table `relid` and its server (raising on invalid ones);
/// `check_as_user` is the range table entry's checkAsUser (InvalidOid: the current user).
pub(crate) fn table_info(relid: pg_sys::Oid, check_as_user: pg_sys::Oid) -> TableInfo {
    // SAFETY: catalog lookups of an existing foreign table (the planner or executor holds a lock
    // on it) and its server; they raise an ERROR rather than return NULL.
    let (ft, server, name) = unsafe {
        let ft = pg_sys::GetForeignTable(relid);
        (ft, pg_sys::GetForeignServer((*ft).serverid), cstr(pg_sys::get_rel_name(relid)))
    };
    // SAFETY: `ft` and `server` are valid palloc'd catalog copies (above).
    let (table_opts, server_opts, server_name, server_oid) =
        unsafe { (def_options((*ft).options), def_options((*server).options), cstr((*server).servername), (*ft).serverid) };
    let table = options::parse_table(&table_opts).or_raise();
    let server = options::parse_server(&server_opts, &|_| true).or_raise();
    // SAFETY: GetUserId reads the backend's current user.
    let user = if check_as_user != pg_sys::InvalidOid { check_as_user } else { unsafe { pg_sys::GetUserId() } };
    TableInfo { name, source: table.source, rows: table.rows, sync: table.sync, server, server_name, server_oid, user }
}

/// The API token of the user mapping of `info.user` (or PUBLIC) for the table's server.
pub(crate) fn api_token(info: &TableInfo) -> String {
    // SAFETY: GetUserMapping raises a clear ERROR when there is none; the options list is read
    // at once on the main thread.
    let opts = unsafe {
        let um = pg_sys::GetUserMapping(info.user, info.server_oid);
        def_options((*um).options)
    };
    match options::parse_user_mapping(&opts) {
        Ok(u) => u.api_token,
        Err(_) => raise(FdwError::NoUserMapping { server: info.server_name.clone() }),
    }
}

/// An HTTP client for reads of the table with `token`: from the token's budget, capped at the
/// server's sync_requests_per_second for a replica's source table, with the resource's read
/// scope named in errors.
pub(crate) fn read_client(info: &TableInfo, token: String) -> Result<crate::http::Client, FdwError> {
    let mut settings = super::budget::settings(&info.server, &info.server_name);
    if info.sync {
        settings.cap_requests_per_second = info.server.sync_requests_per_second;
    }
    let scope = match &info.source {
        TableSource::Resource(r) => r.read_scope(),
        TableSource::Endpoint(_) => None,
    };
    crate::http::Client::new(settings, token, info.name.clone(), scope)
}

/// The checkAsUser of range table entry `rti` of a running statement.
///
/// # Safety
/// `estate` must be the executor state of the statement whose range table holds `rti`.
pub(crate) unsafe fn check_as_user(estate: *mut pg_sys::EState, rti: pg_sys::Index) -> pg_sys::Oid {
    // SAFETY: forwarded from the caller; exec_rt_fetch returns the entry of a valid index.
    unsafe { (*pg_sys::exec_rt_fetch(rti, estate)).checkAsUser }
}
