//! What a ForeignScan plan carries to the executor in `fdw_private`: a List of nodes indexed by
//! [`Private`], written once by [`encode`] and read once by [`decode`]. Only Nodes go in (plans
//! are copied with copyObject: cached plans, prepared statements).

use super::{node_string, string_node};
use crate::plan::Op;
use pgrx::pg_sys;
use pgrx::PgList;

/// Positions in `fdw_private`.
#[derive(Clone, Copy)]
enum Private {
    /// The columns to decode: `3,5,7`, or `*` for all (a whole-row reference).
    Needed = 0,
    /// LIMIT + OFFSET rows, or empty.
    Limit,
    /// Count of quals that stay local only.
    LocalOnly,
    /// A List of (column, operator, "any"/"one") String triples, one per qual in `fdw_exprs`.
    Quals,
}

/// A qual of the plan, without its value (the value expression is in `fdw_exprs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QualSpec {
    pub column: String,
    pub op: Op,
    pub is_array: bool,
}

/// The executor's inputs from the plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ScanPrivate {
    pub needed: String,
    pub limit: Option<u64>,
    pub local_only: usize,
    pub quals: Vec<QualSpec>,
}

/// `fdw_private` for `p`, in the current memory context.
pub(crate) fn encode(p: &ScanPrivate) -> *mut pg_sys::List {
    let mut quals = PgList::<pg_sys::Node>::new();
    for q in &p.quals {
        quals.push(string_node(&q.column));
        quals.push(string_node(q.op.sql()));
        quals.push(string_node(if q.is_array { "any" } else { "one" }));
    }
    let mut list = PgList::<pg_sys::Node>::new();
    list.push(string_node(&p.needed));
    list.push(string_node(&p.limit.map(|l| l.to_string()).unwrap_or_default()));
    list.push(string_node(&p.local_only.to_string()));
    list.push(quals.into_pg() as *mut pg_sys::Node);
    list.into_pg()
}

/// Reads what [`encode`] wrote.
///
/// # Safety
/// `list` must be an `fdw_private` written by [`encode`] (or a copy of one).
pub(crate) unsafe fn decode(list: *mut pg_sys::List) -> ScanPrivate {
    // SAFETY: forwarded from the caller: String nodes at the scalar positions, a List at Quals.
    unsafe {
        let items = PgList::<pg_sys::Node>::from_pg(list);
        let text = |i: Private| items.get_ptr(i as usize).map(|n| node_string(n)).unwrap_or_default();
        let quals = items.get_ptr(Private::Quals as usize).map(|n| PgList::<pg_sys::Node>::from_pg(n as *mut pg_sys::List));
        let strings: Vec<String> = quals.map(|q| q.iter_ptr().map(|n| node_string(n)).collect()).unwrap_or_default();
        let quals =
            strings.chunks_exact(3).map(|t| QualSpec { column: t[0].clone(), op: Op::from_sql(&t[1]).unwrap_or(Op::Eq), is_array: t[2] == "any" }).collect();
        ScanPrivate {
            needed: text(Private::Needed),
            limit: text(Private::Limit).parse().ok(),
            local_only: text(Private::LocalOnly).parse().unwrap_or(0),
            quals,
        }
    }
}
