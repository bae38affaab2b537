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
    pub server: ServerOptions,
    pub server_name: String,
    pub server_oid: pg_sys::Oid,
}

/// Reads the options of foreign table `relid` and its server (raising on invalid ones).
pub(crate) fn table_info(relid: pg_sys::Oid) -> TableInfo {
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
    TableInfo { name, source: table.source, rows: table.rows, server, server_name, server_oid }
}

/// The API token of the current user's user mapping for the table's server.
pub(crate) fn api_token(info: &TableInfo) -> String {
    // SAFETY: GetUserMapping raises a clear ERROR when there is none; the options list is read
    // at once on the main thread.
    let opts = unsafe {
        let um = pg_sys::GetUserMapping(pg_sys::GetUserId(), info.server_oid);
        def_options((*um).options)
    };
    match options::parse_user_mapping(&opts) {
        Ok(u) => u.api_token,
        Err(_) => raise(FdwError::NoUserMapping { server: info.server_name.clone() }),
    }
}
