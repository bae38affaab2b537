//! What may be pushed: which WHERE clauses of a scan the API can apply, as `(column, op, value
//! expression)`. One function per node type, like postgres_fdw's `foreign_expr_walker`; every
//! clause not recognised here stays local only (and keeps LIMIT local).

use super::cstr;
use super::datum::{datum_values, json_path_option};
use crate::options::TableSource;
use crate::plan::{Op, Value};
use pgrx::pg_sys;
use pgrx::PgList;

/// A WHERE clause the API may apply: `col op expr` or `col = ANY(expr)`; `expr` is computable
/// before the scan (constants, parameters, stable functions, outer columns of a nested loop).
/// `expr` is null for IS [NOT] NULL, which has no value.
pub(crate) struct QualExpr {
    pub column: String,
    pub op: Op,
    pub expr: *mut pg_sys::Expr,
    pub is_array: bool,
}

/// The scan a clause is looked at for: planner, relation index, table and its source.
pub(crate) struct ScanRel<'a> {
    pub root: *mut pg_sys::PlannerInfo,
    pub relid: pg_sys::Index,
    pub table: pg_sys::Oid,
    pub source: &'a TableSource,
}

/// Columns whose quals can become requests for this table.
fn pushable(source: &TableSource) -> Vec<&'static str> {
    match source {
        TableSource::Endpoint(_) => vec![],
        TableSource::Resource(r) => r.pushdown.iter().map(|p| p.column()).chain(r.key_column()).collect(),
    }
}

/// Columns a join can turn into per-key GETs (parameterized paths).
pub(crate) fn key_columns(source: &TableSource) -> Vec<&'static str> {
    match source {
        TableSource::Resource(r) => r.key_column().into_iter().collect(),
        TableSource::Endpoint(_) => vec![],
    }
}

/// `n` without binary-compatible casts (varchar -> text).
///
/// # Safety
/// `n` must be null or a valid expression node.
pub(crate) unsafe fn strip_relabel(mut n: *mut pg_sys::Node) -> *mut pg_sys::Node {
    // SAFETY: the caller guarantees a valid node tree; RelabelType.arg is a node of it.
    unsafe {
        while !n.is_null() && (*n).type_ == pg_sys::NodeTag::T_RelabelType {
            n = (*(n as *mut pg_sys::RelabelType)).arg as *mut pg_sys::Node;
        }
    }
    n
}

impl ScanRel<'_> {
    /// If `n` is a column of the scanned relation that the API can filter on, with the catalog's
    /// JSON path (so the API's parameter means the same thing): its name and collation.
    ///
    /// # Safety
    /// `n` must be a valid expression node of this relation's query.
    unsafe fn our_column(&self, n: *mut pg_sys::Node) -> Option<(String, pg_sys::Oid)> {
        // SAFETY: forwarded from the caller; a Var node is read only after its tag is checked.
        let (varno, levels, attno, collation) = unsafe {
            let n = strip_relabel(n);
            if n.is_null() || (*n).type_ != pg_sys::NodeTag::T_Var {
                return None;
            }
            let v = n as *mut pg_sys::Var;
            ((*v).varno as pg_sys::Index, (*v).varlevelsup, (*v).varattno, (*v).varcollid)
        };
        if varno != self.relid || levels != 0 || attno <= 0 {
            return None;
        }
        // SAFETY: an existing attribute of the table (a Var of it); missing_ok = false.
        let name = unsafe { cstr(pg_sys::get_attname(self.table, attno, false)) };
        let TableSource::Resource(r) = self.source else { return None };
        let catalog_col = r.column(&name)?;
        let path = json_path_option(self.table, attno);
        let same = path.as_deref().unwrap_or(catalog_col.json_path()) == catalog_col.json_path();
        (same && pushable(self.source).contains(&name.as_str())).then_some((name, collation))
    }

    /// The column of a comparison whose operator and collation mean what the API's parameter
    /// means: a built-in operator (by OID: a user-defined `=` may mean anything), and for a
    /// collatable column the column's own collation, deterministic (a nondeterministic one
    /// makes `'OPEN' = 'open'` true, which the API does not know).
    ///
    /// # Safety
    /// `col` must be a valid expression node of this relation's query.
    unsafe fn shippable(&self, col: *mut pg_sys::Node, opno: pg_sys::Oid, input_collation: pg_sys::Oid) -> Option<String> {
        if opno.to_u32() >= pg_sys::FirstGenbkiObjectId {
            return None;
        }
        // SAFETY: forwarded from the caller.
        let (column, column_collation) = unsafe { self.our_column(col) }?;
        let deterministic = || {
            // SAFETY: a syscache lookup of a collation the planner resolved (it exists).
            input_collation == pg_sys::InvalidOid || unsafe { pg_sys::get_collation_isdeterministic(input_collation) }
        };
        let same = column_collation == pg_sys::InvalidOid || column_collation == input_collation;
        (same && deterministic()).then_some(column)
    }

    /// Whether `n` can be computed before the scan: no column of this relation, nothing volatile.
    ///
    /// # Safety
    /// `n` must be null or a valid expression node of the query planned under `root`.
    unsafe fn is_value(&self, n: *mut pg_sys::Node) -> bool {
        // SAFETY: planner walkers over a valid expression tree, on the main thread.
        !n.is_null()
            && unsafe {
                !pg_sys::bms_is_member(self.relid as i32, pg_sys::pull_varnos(self.root, n))
                    && !pg_sys::contain_volatile_functions(n)
                    && !pg_sys::contain_agg_clause(n)
            }
    }

    /// The qual a clause stands for, if the API may apply it.
    ///
    /// # Safety
    /// `clause` must be a valid expression node of the query planned under `root`.
    unsafe fn qual_of(&self, clause: *mut pg_sys::Node) -> Option<QualExpr> {
        // SAFETY: forwarded from the caller; each arm casts after checking the node tag.
        unsafe {
            match (*clause).type_ {
                pg_sys::NodeTag::T_NullTest => self.null_test(clause as *mut pg_sys::NullTest),
                pg_sys::NodeTag::T_OpExpr => self.op_expr(clause as *mut pg_sys::OpExpr),
                pg_sys::NodeTag::T_ScalarArrayOpExpr => self.any_expr(clause as *mut pg_sys::ScalarArrayOpExpr),
                _ => None,
            }
        }
    }

    /// `col IS [NOT] NULL`.
    ///
    /// # Safety
    /// `nt` must be a valid NullTest of the query planned under `root`.
    unsafe fn null_test(&self, nt: *mut pg_sys::NullTest) -> Option<QualExpr> {
        // SAFETY: `nt` is a valid NullTest (qual_of checked the tag).
        let (arg, kind) = unsafe { ((*nt).arg as *mut pg_sys::Node, (*nt).nulltesttype) };
        // SAFETY: `arg` is a node of the same tree.
        let (column, _) = unsafe { self.our_column(arg) }?;
        let op = if kind == pg_sys::NullTestType::IS_NULL { Op::IsNull } else { Op::IsNotNull };
        Some(QualExpr { column, op, expr: std::ptr::null_mut(), is_array: false })
    }

    /// `col op value` or `value op col` (comparisons, jsonb `?`), and `col ?| array`.
    ///
    /// # Safety
    /// `op` must be a valid OpExpr of the query planned under `root`.
    unsafe fn op_expr(&self, op: *mut pg_sys::OpExpr) -> Option<QualExpr> {
        // SAFETY: `op` is a valid OpExpr (qual_of checked the tag); its opno names an operator.
        let (opno, collation, name, args) =
            unsafe { ((*op).opno, (*op).inputcollid, cstr(pg_sys::get_opname((*op).opno)), PgList::<pg_sys::Node>::from_pg((*op).args)) };
        let (2, Some(l), Some(r)) = (args.len(), args.get_ptr(0), args.get_ptr(1)) else { return None };
        if name == "?|" {
            // SAFETY: `l` and `r` are nodes of the same tree.
            let column = unsafe { self.shippable(l, opno, collation) }?;
            return unsafe { self.is_value(r) }.then_some(QualExpr { column, op: Op::Has, expr: r as *mut pg_sys::Expr, is_array: true });
        }
        [(l, r, false), (r, l, true)].into_iter().find_map(|(col, val, commuted)| {
            // SAFETY: `col` and `val` are nodes of the same tree.
            let column = unsafe { self.shippable(col, opno, collation) }?;
            let op = op_of(&name, commuted)?;
            // SAFETY: as above.
            let typ = unsafe { pg_sys::exprType(val) };
            (unsafe { self.is_value(val) } && value_type(typ)).then_some(QualExpr { column, op, expr: val as *mut pg_sys::Expr, is_array: false })
        })
    }

    /// `col = ANY(array)` (IN lists).
    ///
    /// # Safety
    /// `op` must be a valid ScalarArrayOpExpr of the query planned under `root`.
    unsafe fn any_expr(&self, op: *mut pg_sys::ScalarArrayOpExpr) -> Option<QualExpr> {
        // SAFETY: `op` is a valid ScalarArrayOpExpr (qual_of checked the tag).
        let (use_or, opno, collation, name, args) =
            unsafe { ((*op).useOr, (*op).opno, (*op).inputcollid, cstr(pg_sys::get_opname((*op).opno)), PgList::<pg_sys::Node>::from_pg((*op).args)) };
        let (2, Some(l), Some(r)) = (args.len(), args.get_ptr(0), args.get_ptr(1)) else { return None };
        if !use_or || name != "=" {
            return None;
        }
        // SAFETY: `l` and `r` are nodes of the same tree.
        let column = unsafe { self.shippable(l, opno, collation) }?;
        let elem = unsafe { pg_sys::get_element_type(pg_sys::exprType(r)) };
        (unsafe { self.is_value(r) } && value_type(elem)).then_some(QualExpr { column, op: Op::Eq, expr: r as *mut pg_sys::Expr, is_array: true })
    }

    /// Splits `clauses` (RestrictInfos) into quals the API may apply, and a count of the rest
    /// (which stay local only, and keep LIMIT from being pushed).
    ///
    /// # Safety
    /// `clauses` must be a List of RestrictInfo of the query planned under `root`.
    pub(crate) unsafe fn extract(&self, clauses: *mut pg_sys::List) -> (Vec<QualExpr>, usize) {
        let mut out = Vec::new();
        let mut local_only = 0;
        // SAFETY: forwarded from the caller.
        for ri in unsafe { PgList::<pg_sys::RestrictInfo>::from_pg(clauses) }.iter_ptr() {
            // SAFETY: every element is a valid RestrictInfo whose clause is an expression.
            match unsafe { self.qual_of((*ri).clause as *mut pg_sys::Node) } {
                Some(q) => out.push(q),
                None => local_only += 1,
            }
        }
        (out, local_only)
    }
}

/// Types whose values the planner understands.
fn value_type(t: pg_sys::Oid) -> bool {
    [pg_sys::INT8OID, pg_sys::INT4OID, pg_sys::INT2OID, pg_sys::TEXTOID, pg_sys::VARCHAROID, pg_sys::BPCHAROID, pg_sys::TIMESTAMPTZOID].contains(&t)
}

/// The qual operator of an operator name, seen from the column's side.
fn op_of(name: &str, commuted: bool) -> Option<Op> {
    Some(match (name, commuted) {
        ("=", _) => Op::Eq,
        ("?", false) => Op::Has,
        ("<", false) | (">", true) => Op::Lt,
        ("<=", false) | (">=", true) => Op::Le,
        (">", false) | ("<", true) => Op::Gt,
        (">=", false) | ("<=", true) => Op::Ge,
        _ => return None,
    })
}

/// Plan-time values of a qual's expression: constants (folded when `root` is given), else None.
/// A qual without expression (IS NULL) has no values.
///
/// # Safety
/// `expr` must be null or a valid expression node; `root` null or its planner.
pub(crate) unsafe fn const_values(root: *mut pg_sys::PlannerInfo, expr: *mut pg_sys::Expr, is_array: bool) -> Option<Vec<Value>> {
    if expr.is_null() {
        return Some(vec![]);
    }
    // SAFETY: forwarded from the caller; a Const is read only after its tag is checked.
    unsafe {
        let folded = if root.is_null() { expr as *mut pg_sys::Node } else { pg_sys::estimate_expression_value(root, expr as *mut pg_sys::Node) };
        let n = strip_relabel(folded);
        if (*n).type_ != pg_sys::NodeTag::T_Const {
            return None;
        }
        let c = n as *mut pg_sys::Const;
        if (*c).constisnull {
            return Some(vec![]);
        }
        Some(datum_values((*c).constvalue, (*c).consttype, is_array))
    }
}
