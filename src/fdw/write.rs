//! Modify callbacks: INSERT -> POST, UPDATE -> PUT (changed columns only, or an action endpoint
//! for orders' statuses), DELETE -> DELETE, with RETURNING filled from the API's answer.
//! What the API cannot do fails at plan time, before any request.
//!
//! Writes are sent as each row is processed, not at commit: the API has no transactions, so a
//! ROLLBACK does not undo them (README: Limitations).

use super::datum::{build_columns, datum_json, store_row, zone_for, PgColumn};
use super::table::{api_token, check_as_user, table_info, TableInfo};
use super::{attach_state, cstr, node_string, raise, string_node, wait_for, OrRaise};
use crate::catalog::Resource;
use crate::decode::{self, ColumnSpec, Row, Shape, Source, Zone};
use crate::error::FdwError;
use crate::http::{Client, Stats};
use crate::options::TableSource;
use crate::write::{self, Verb, WriteColumn};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use serde_json::Value;
use std::ffi::CString;

const ROWID: &str = "cyberbiz_id";
const PARENT: &str = "cyberbiz_parent";

pub fn install(routine: &mut pg_sys::FdwRoutine) {
    routine.AddForeignUpdateTargets = Some(add_foreign_update_targets);
    routine.PlanForeignModify = Some(plan_foreign_modify);
    routine.BeginForeignModify = Some(begin_foreign_modify);
    routine.ExecForeignInsert = Some(exec_foreign_insert);
    routine.ExecForeignUpdate = Some(exec_foreign_update);
    routine.ExecForeignDelete = Some(exec_foreign_delete);
    routine.EndForeignModify = Some(end_foreign_modify);
    routine.IsForeignRelUpdatable = Some(is_foreign_rel_updatable);
    routine.ExplainForeignModify = Some(explain_foreign_modify);
}

fn resource_of(info: &TableInfo) -> &'static Resource {
    match &info.source {
        TableSource::Resource(r) => r,
        TableSource::Endpoint(p) => raise(FdwError::WriteUnsupported {
            message: format!("table \"{}\" reads the endpoint {p} and cannot be written", info.name),
            hint: "Writes need a catalog resource (OPTIONS (resource '...')).".into(),
        }),
    }
}

///
/// # Safety
/// `rel` must be an open relation.
unsafe fn attno_of(rel: pg_sys::Relation, name: &str) -> Option<(i16, pg_sys::Oid, i32)> {
    // SAFETY: reads the open relation's tuple descriptor.
    unsafe {
        let tupdesc = (*rel).rd_att;
        let attrs = (*tupdesc).attrs.as_slice((*tupdesc).natts as usize);
        attrs.iter().enumerate().find(|(_, a)| !a.attisdropped && cstr(a.attname.data.as_ptr()) == name).map(|(i, a)| ((i + 1) as i16, a.atttypid, a.atttypmod))
    }
}

/// UPDATE and DELETE need the row's id (and a variant's product id) from the scan.
#[pg_guard]
extern "C-unwind" fn add_foreign_update_targets(
    root: *mut pg_sys::PlannerInfo,
    rtindex: pg_sys::Index,
    _rte: *mut pg_sys::RangeTblEntry,
    rel: pg_sys::Relation,
) {
    // SAFETY: Postgres passes its planner, the result relation index and the open relation.
    unsafe {
        let info = table_info((*rel).rd_id, pg_sys::InvalidOid);
        let r = resource_of(&info);
        let mut wanted = vec![("id", ROWID)];
        if let Some(p) = &r.parent {
            wanted.push((p.key_column, PARENT));
        }
        for (col, junk) in wanted {
            let Some((attno, typ, typmod)) = attno_of(rel, col) else {
                raise(FdwError::WriteUnsupported {
                    message: format!("table \"{}\" needs a column \"{col}\" for UPDATE and DELETE", info.name),
                    hint: "IMPORT FOREIGN SCHEMA creates it; add it to hand-written tables.".into(),
                })
            };
            let var = pg_sys::makeVar(rtindex as i32, attno, typ, typmod, pg_sys::InvalidOid, 0);
            let name = CString::new(junk).unwrap_or_default();
            pg_sys::add_row_identity_var(root, var, rtindex, pg_sys::pstrdup(name.as_ptr()));
        }
    }
}

/// The JSON key a column writes, if it is a top-level key.
fn key_of(spec: &ColumnSpec) -> Option<String> {
    match &spec.source {
        Source::Own(p) if p.len() == 1 => Some(p[0].clone()),
        _ => None,
    }
}

/// Checks the statement against what the API can do (before any request) and records the
/// columns an UPDATE changes.
#[pg_guard]
extern "C-unwind" fn plan_foreign_modify(
    root: *mut pg_sys::PlannerInfo,
    plan: *mut pg_sys::ModifyTable,
    result_relation: pg_sys::Index,
    _subplan_index: std::ffi::c_int,
) -> *mut pg_sys::List {
    // SAFETY: Postgres passes its planner, the ModifyTable and a valid result relation index; the relation is opened and closed here.
    unsafe {
        let rte = *(*root).simple_rte_array.add(result_relation as usize);
        let relid = (*rte).relid;
        let info = table_info(relid, pg_sys::InvalidOid);
        let r = resource_of(&info);
        let verb = match (*plan).operation {
            pg_sys::CmdType::CMD_INSERT => Verb::Insert,
            pg_sys::CmdType::CMD_UPDATE => Verb::Update,
            _ => Verb::Delete,
        };
        let rel = pg_sys::RelationIdGetRelation(relid);
        let (specs, _) = build_columns(rel, &info);
        let mut changed = Vec::new();
        if verb == Verb::Update {
            let mut x = -1;
            loop {
                x = pg_sys::bms_next_member((*rte).updatedCols, x);
                if x < 0 {
                    break;
                }
                let attno = x + pg_sys::FirstLowInvalidHeapAttributeNumber;
                if attno > 0 {
                    if let Some(s) = specs.get(attno as usize - 1) {
                        changed.push(WriteColumn { name: s.name.clone(), key: key_of(s) });
                    }
                }
            }
        }
        pg_sys::RelationClose(rel);
        write::check(&info.name, r, verb, &changed).or_raise();
        let mut private = PgList::<pg_sys::Node>::new();
        private.push(string_node(&changed.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(",")));
        private.into_pg()
    }
}

/// Executor state of one modified table.
struct ModifyState {
    info: TableInfo,
    resource: &'static Resource,
    client: Option<Client>,
    specs: Vec<ColumnSpec>,
    columns: Vec<PgColumn>,
    changed: Vec<String>,
    zone: Box<dyn Zone>,
    rowid: i16,
    parent: i16,
    written: u64,
}

#[pg_guard]
extern "C-unwind" fn begin_foreign_modify(
    mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    fdw_private: *mut pg_sys::List,
    _subplan_index: std::ffi::c_int,
    eflags: std::ffi::c_int,
) {
    // SAFETY: Postgres passes the ModifyTable state and the result relation of this foreign table.
    unsafe {
        let rel = (*rinfo).ri_RelationDesc;
        let user = check_as_user((*mtstate).ps.state, (*rinfo).ri_RangeTableIndex);
        let info = table_info((*rel).rd_id, user);
        let resource = resource_of(&info);
        let explain_only = eflags as u32 & pg_sys::EXEC_FLAG_EXPLAIN_ONLY != 0;
        let client = if explain_only {
            None
        } else {
            let settings = super::budget::settings(&info.server, &info.server_name);
            Some(Client::new(settings, api_token(&info), info.name.clone(), resource.write_scope()).or_raise())
        };
        let (specs, columns) = build_columns(rel, &info);
        let private = PgList::<pg_sys::Node>::from_pg(fdw_private);
        let changed = private.get_ptr(0).map(|n| node_string(n)).unwrap_or_default();
        let changed = changed.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
        let (mut rowid, mut parent) = (0, 0);
        let outer = (*mtstate).ps.lefttree;
        if !outer.is_null() && (*mtstate).operation != pg_sys::CmdType::CMD_INSERT {
            let tlist = (*(*outer).plan).targetlist;
            let n = CString::new(ROWID).unwrap_or_default();
            rowid = pg_sys::ExecFindJunkAttributeInTlist(tlist, n.as_ptr());
            let n = CString::new(PARENT).unwrap_or_default();
            parent = pg_sys::ExecFindJunkAttributeInTlist(tlist, n.as_ptr());
        }
        let zone = zone_for(&info.server.time_zone);
        let st = ModifyState { info, resource, client, specs, columns, changed, zone, rowid, parent, written: 0 };
        attach_state(&mut (*rinfo).ri_FdwState, st);
    }
}

///
/// # Safety
/// `rinfo` must be a result relation begun by begin_foreign_modify.
unsafe fn state<'a>(rinfo: *mut pg_sys::ResultRelInfo) -> &'a mut ModifyState {
    // SAFETY: begin_foreign_modify stored a ModifyState there, alive for the executor's context.
    unsafe { &mut *((*rinfo).ri_FdwState as *mut ModifyState) }
}

/// Runs `f`, turning a failure after earlier rows were written into an error that says so.
fn counted<T>(st: &ModifyState, r: Result<T, FdwError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) if st.written > 0 => raise(FdwError::PartiallyWritten { inner: Box::new(e), written: st.written }),
        Err(e) => raise(e),
    }
}

/// Sends one write and waits for its answer; a POST is sent at most once, whatever interrupts
/// arrive meanwhile (see `wait_for`).
fn send(st: &mut ModifyState, method: reqwest::Method, path: &str, body: Option<Value>, row: &str) -> crate::http::Reply {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap_or_default());
    let max = st.info.server.max_request_bytes;
    let client = st.client.as_ref().expect("a client outside EXPLAIN");
    let before = Stats::get(&client.stats.requests);
    let sent = || Stats::get(&client.stats.requests) > before;
    let request = format!("{method} {path}");
    let post = (method == reqwest::Method::POST).then_some((request.as_str(), &sent as &dyn Fn() -> bool));
    let r = wait_for(client.send(method.clone(), path, bytes.as_deref(), max, row), post);
    counted(st, r)
}

/// Fills `slot` from the API's answer (for RETURNING); `fallback` when it sent no object.
///
/// # Safety
/// `slot` must be a slot with the target table's descriptor.
unsafe fn fill_slot(st: &mut ModifyState, slot: *mut pg_sys::TupleTableSlot, body: &[u8], parent: Option<i64>) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe {
        let shape = Shape { rows_at: None, child_array: None, array: false };
        let Ok(mut rows) = decode::rows(body, &shape) else { return false };
        let Some(mut row) = rows.pop() else { return false };
        if !row.value.is_object() {
            return false;
        }
        if let Some(p) = parent {
            row = Row { value: row.value, parent: Some(std::rc::Rc::new(serde_json::json!({ "id": p }))) };
        }
        store_row(&st.info.name, &st.specs, &mut st.columns, st.zone.as_ref(), &row, &mut Vec::new(), slot);
        true
    }
}

///
/// # Safety
/// `slot` must be a valid slot.
unsafe fn all_attrs(slot: *mut pg_sys::TupleTableSlot) {
    // SAFETY: forwarded from the caller; the slot deforms its own attributes.
    unsafe {
        let natts = (*(*slot).tts_tupleDescriptor).natts;
        if ((*slot).tts_nvalid as i32) < natts {
            pg_sys::slot_getsomeattrs_int(slot, natts);
        }
    }
}

///
/// # Safety
/// `slot` must be the plan slot of an UPDATE or DELETE.
unsafe fn junk(slot: *mut pg_sys::TupleTableSlot, attno: i16) -> Option<i64> {
    // SAFETY: forwarded from the caller; attno was found in the plan's target list.
    unsafe {
        if attno <= 0 {
            return None;
        }
        let mut isnull = false;
        let d = pg_sys::ExecGetJunkAttribute(slot, attno, &mut isnull);
        (!isnull).then(|| d.value() as i64)
    }
}

/// The id of the row an UPDATE or DELETE targets (the scan's junk column).
///
/// # Safety
/// `plan_slot` must be the plan slot of an UPDATE or DELETE.
unsafe fn row_id(st: &ModifyState, plan_slot: *mut pg_sys::TupleTableSlot, verb: &str) -> i64 {
    // SAFETY: forwarded from the caller.
    unsafe {
        match junk(plan_slot, st.rowid) {
            Some(id) => id,
            None => raise(FdwError::WriteUnsupported { message: format!("a row of \"{}\" without id cannot be {verb}", st.info.name), hint: String::new() }),
        }
    }
}

/// The row an UPDATE or DELETE targets: its id, its parent's id (variants), and how errors name it.
///
/// # Safety
/// `plan_slot` must be the plan slot of an UPDATE or DELETE.
unsafe fn target(st: &ModifyState, plan_slot: *mut pg_sys::TupleTableSlot, verb: &str) -> (i64, Option<i64>, String) {
    // SAFETY: forwarded from the caller.
    let (id, parent) = unsafe { (row_id(st, plan_slot, verb), junk(plan_slot, st.parent)) };
    (id, parent, format!("{} id {id}", st.info.name))
}

/// `{path}/{id}`, or a variant's `/v1/products/{product_id}/product_variants/{id}`.
fn item_path(r: &Resource, id: i64, parent: Option<i64>) -> String {
    match (&r.parent, parent) {
        (Some(p), Some(pid)) => format!("{}/{pid}/{}/{id}", r.path, p.array),
        _ => format!("{}/{id}", r.path),
    }
}

#[pg_guard]
extern "C-unwind" fn exec_foreign_insert(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    _plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: Postgres passes the result relation begun by begin_foreign_modify and a slot with its descriptor.
    unsafe {
        let st = state(rinfo);
        all_attrs(slot);
        let mut set = Vec::new();
        let mut values = Vec::new();
        let mut raw = None;
        let mut parent = None;
        let parent_key = st.resource.parent.as_ref().map(|p| p.key_column);
        for (i, spec) in st.specs.iter().enumerate() {
            if st.columns[i].dropped || *(*slot).tts_isnull.add(i) {
                continue;
            }
            let v = datum_json(*(*slot).tts_values.add(i), st.columns[i].typoid, st.zone.as_ref());
            if Some(spec.name.as_str()) == parent_key {
                parent = v.as_i64();
            } else if spec.name == "raw" {
                raw = Some(v);
                continue;
            } else if let Some(k) = key_of(spec) {
                values.push((k, v));
            }
            set.push(WriteColumn { name: spec.name.clone(), key: key_of(spec) });
        }
        counted(st, write::check(&st.info.name, st.resource, Verb::Insert, &set));
        let path = match (&st.resource.parent, parent) {
            (Some(p), Some(pid)) => format!("{}/{pid}/{}", st.resource.path, p.array),
            (Some(p), None) => counted(
                st,
                Err(FdwError::WriteUnsupported {
                    message: format!("a new row of \"{}\" needs {}", st.info.name, p.key_column),
                    hint: format!("Set {} to the parent's id.", p.key_column),
                }),
            ),
            _ => st.resource.path.to_string(),
        };
        let body = Value::Object(write::body(&values, raw.as_ref()));
        let row = values.iter().find(|(k, _)| k == "title" || k == "name").map(|(_, v)| format!("the new row {v}")).unwrap_or_else(|| "the new row".into());
        let reply = send(st, reqwest::Method::POST, &path, Some(body), &row);
        st.written += 1;
        fill_slot(st, slot, &reply.body, parent);
        slot
    }
}

#[pg_guard]
extern "C-unwind" fn exec_foreign_update(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: Postgres passes the result relation begun by begin_foreign_modify, the new row slot and the plan slot holding the junk columns.
    unsafe {
        let st = state(rinfo);
        let (id, parent, row) = target(st, plan_slot, "updated");
        all_attrs(slot);
        let mut fields = Vec::new();
        let mut raw = None;
        let mut actions = Vec::new();
        for (i, spec) in st.specs.iter().enumerate() {
            if !st.changed.contains(&spec.name) {
                continue;
            }
            let v = if *(*slot).tts_isnull.add(i) { Value::Null } else { datum_json(*(*slot).tts_values.add(i), st.columns[i].typoid, st.zone.as_ref()) };
            if st.resource.writes.is_action(&spec.name) {
                actions.push((spec.name.clone(), v));
            } else if spec.name == "raw" {
                raw = Some(v);
            } else if let Some(k) = key_of(spec) {
                fields.push((k, v));
            }
        }
        let base = item_path(st.resource, id, parent);
        let mut last = None;
        for (col, v) in actions {
            let (suffix, body) = counted(st, write::action_request(st.resource, &col, v.as_str().unwrap_or("")));
            last = Some(send(st, reqwest::Method::PUT, &format!("{base}/{suffix}"), Some(body), &row));
        }
        if !fields.is_empty() || raw.is_some() {
            let body = Value::Object(write::body(&fields, raw.as_ref()));
            last = Some(send(st, reqwest::Method::PUT, &base, Some(body), &row));
        }
        st.written += 1;
        // RETURNING shows what the API answered; the new values if it answered nothing usable.
        if let Some(reply) = last {
            fill_slot(st, slot, &reply.body, parent);
        }
        slot
    }
}

#[pg_guard]
extern "C-unwind" fn exec_foreign_delete(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: Postgres passes the result relation begun by begin_foreign_modify, a slot with its descriptor and the plan slot holding the junk columns.
    unsafe {
        let st = state(rinfo);
        let (id, parent, row) = target(st, plan_slot, "deleted");
        let reply = send(st, reqwest::Method::DELETE, &item_path(st.resource, id, parent), None, &row);
        st.written += 1;
        if !fill_slot(st, slot, &reply.body, parent) {
            pg_sys::ExecClearTuple(slot);
            let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
            for i in 0..natts {
                *(*slot).tts_isnull.add(i) = true;
            }
            if let Some((attno, _, _)) = attno_of((*rinfo).ri_RelationDesc, "id") {
                *(*slot).tts_values.add(attno as usize - 1) = pg_sys::Datum::from(id);
                *(*slot).tts_isnull.add(attno as usize - 1) = false;
            }
            pg_sys::ExecStoreVirtualTuple(slot);
        }
        slot
    }
}

#[pg_guard]
extern "C-unwind" fn end_foreign_modify(_estate: *mut pg_sys::EState, rinfo: *mut pg_sys::ResultRelInfo) {
    // SAFETY: Postgres passes the result relation; ri_FdwState is null if begin_foreign_modify did not run.
    unsafe {
        if !(*rinfo).ri_FdwState.is_null() {
            state(rinfo).client = None;
        }
    }
}

#[pg_guard]
extern "C-unwind" fn is_foreign_rel_updatable(rel: pg_sys::Relation) -> std::ffi::c_int {
    // SAFETY: Postgres passes an open relation of this foreign table.
    let info = table_info(unsafe { (*rel).rd_id }, pg_sys::InvalidOid);
    let TableSource::Resource(r) = info.source else { return 0 };
    let mut mask = 0;
    if r.writes.create {
        mask |= 1 << pg_sys::CmdType::CMD_INSERT as i32;
    }
    if r.writes.update {
        mask |= 1 << pg_sys::CmdType::CMD_UPDATE as i32;
    }
    if r.writes.delete {
        mask |= 1 << pg_sys::CmdType::CMD_DELETE as i32;
    }
    mask
}

#[pg_guard]
extern "C-unwind" fn explain_foreign_modify(
    mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    _fdw_private: *mut pg_sys::List,
    _subplan_index: std::ffi::c_int,
    es: *mut pg_sys::ExplainState,
) {
    // SAFETY: Postgres passes the ModifyTable state, the result relation begun by begin_foreign_modify and its ExplainState.
    unsafe {
        let st = state(rinfo);
        let r = st.resource;
        let item = match &r.parent {
            Some(p) => format!("{}/{{{}}}/{}/{{id}}", r.path, p.key_column, p.array),
            None => format!("{}/{{id}}", r.path),
        };
        let text = match (*mtstate).operation {
            pg_sys::CmdType::CMD_INSERT => match &r.parent {
                Some(p) => format!("POST {}/{{{}}}/{} per row", r.path, p.key_column, p.array),
                None => format!("POST {} per row", r.path),
            },
            pg_sys::CmdType::CMD_UPDATE => {
                let actions: Vec<&String> = st.changed.iter().filter(|c| r.writes.is_action(c)).collect();
                let fields: Vec<&String> = st.changed.iter().filter(|c| !r.writes.is_action(c)).collect();
                let mut parts = Vec::new();
                if !actions.is_empty() {
                    parts.push(format!("PUT {item}/<action for {}>", actions.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
                }
                if !fields.is_empty() {
                    parts.push(format!("PUT {item} ({})", fields.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
                }
                format!("{} per row", parts.join(" + "))
            }
            _ => format!("DELETE {item} per row"),
        };
        let l = CString::new("CYBERBIZ Write").unwrap_or_default();
        let v = CString::new(text).unwrap_or_default();
        pg_sys::ExplainPropertyText(l.as_ptr(), v.as_ptr(), es);
    }
}
