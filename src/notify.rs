//! One `NOTIFY es_events` per committing transaction that appended events.
//!
//! Each append records what it wrote, tagged with its subtransaction: a
//! rolled-back subtransaction takes its records with it, a committed one
//! hands them to its parent. Just before commit the records become one JSON
//! payload (PostgreSQL delivers it only if the transaction commits, and
//! folds identical payloads of one transaction into one).
//!
//! Payload: {"events": n, "first_position": p, "last_position": q,
//! "streams": [...], "streams_truncated": bool, "stream_types": [...],
//! "event_types": [...]}. Lists are cut to keep it under NOTIFY's 8000-byte
//! limit (`streams_truncated`); positions and the count are always exact.
//! A prepared transaction (two-phase commit) sends nothing: PostgreSQL does
//! not allow NOTIFY in one.
//!
//! Where a relay serves the database (`relay`) and another transaction is
//! committing a notification right now, the payload is kept aside at
//! PRE_COMMIT and handed to the relay once the commit is done, instead of
//! being queued with NOTIFY here: PostgreSQL lets one notifying transaction
//! commit at a time (a lock held from queueing the notification to the end of
//! the commit, WAL flush included), so waiting for it would serialise
//! appenders. When nobody holds that lock the transaction takes it and
//! notifies itself: cheaper than waking the relay, and no wait.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::{CStr, CString};

const CHANNEL: &CStr = c"es_events";
/// Room for the stream ids in the payload; the rest of it stays small.
const STREAMS_BUDGET: usize = 5000;
const TYPES_BUDGET: usize = 1200;

struct Record {
    subxact: pg_sys::SubTransactionId,
    stream_id: String,
    stream_type: String,
    event_types: Vec<String>,
    first: i64,
    count: i64,
}

unsafe extern "C-unwind" {
    /// PostgreSQL's NOTIFY (commands/async.c); pgrx does not bind it.
    fn Async_Notify(channel: *const std::ffi::c_char, payload: *const std::ffi::c_char);
}

/// A payload waiting for the commit to finish, to go to the relay of `slot`.
struct Kept {
    slot: usize,
    built: Built,
}

thread_local! {
    static RECORDS: RefCell<Vec<Record>> = const { RefCell::new(Vec::new()) };
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
}

/// Takes, without waiting, the lock PostgreSQL's PreCommit_Notify takes
/// (commands/async.c: LockSharedObject(DatabaseRelationId, InvalidOid, 0,
/// AccessExclusiveLock)), held to the end of the transaction; false when
/// another transaction holds it. PRE_COMMIT callbacks run before
/// PreCommit_Notify, which then finds it already held.
fn take_notify_lock() -> bool {
    const DATABASE_RELATION_ID: u32 = 1262;
    let tag = pg_sys::LOCKTAG {
        locktag_field1: 0,
        locktag_field2: DATABASE_RELATION_ID,
        locktag_field3: 0,
        locktag_field4: 0,
        locktag_type: pg_sys::LockTagType::LOCKTAG_OBJECT as u8,
        locktag_lockmethodid: pg_sys::DEFAULT_LOCKMETHOD as u8,
    };
    let r = unsafe { pg_sys::LockAcquire(&tag, pg_sys::AccessExclusiveLock as i32, false, true) };
    r != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

/// NOTIFY es_events with `payload` in the current transaction.
pub fn send(payload: &CStr) {
    unsafe {
        pg_sys::ffi::pg_guard_ffi_boundary(|| Async_Notify(CHANNEL.as_ptr(), payload.as_ptr()))
    };
}

/// Registers the transaction callbacks (from `_PG_init`).
pub fn init() {
    unsafe {
        pg_sys::RegisterXactCallback(Some(xact_event), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subxact_event), std::ptr::null_mut());
    }
}

/// Notes an append of `count` events at positions `first..first + count`
/// (nothing when `es.notify` is off).
pub fn record(
    stream_id: &str,
    stream_type: &str,
    event_types: Vec<String>,
    first: i64,
    count: i64,
) {
    if !crate::guc::NOTIFY.get() {
        return;
    }
    let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
    RECORDS.with(|r| {
        r.borrow_mut().push(Record {
            subxact,
            stream_id: stream_id.to_owned(),
            stream_type: stream_type.to_owned(),
            event_types,
            first,
            count,
        })
    });
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT => {
            let built = RECORDS.with(|r| {
                let mut r = r.borrow_mut();
                let p = payload(&r);
                r.clear();
                p
            });
            if let Some(built) = built {
                let relayed = crate::relay::serving()
                    .filter(|_| crate::guc::NOTIFY_ALWAYS_RELAY.get() || !take_notify_lock());
                match relayed {
                    Some(slot) => KEPT.with(|k| *k.borrow_mut() = Some(Kept { slot, built })),
                    None => send(&built.text),
                }
            }
        }
        pg_sys::XactEvent::XACT_EVENT_COMMIT => {
            // After the commit record: no error, no allocation (see relay::hand_over).
            if let Some(Kept { slot, built: b }) = KEPT.with(|k| k.borrow_mut().take()) {
                crate::relay::hand_over(slot, &b.text, b.events, b.first, b.last);
            }
            RECORDS.with(|r| r.borrow_mut().clear());
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE
        | pg_sys::XactEvent::XACT_EVENT_PREPARE
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            KEPT.with(|k| k.borrow_mut().take());
            RECORDS.with(|r| r.borrow_mut().clear());
        }
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn subxact_event(
    event: pg_sys::SubXactEvent::Type,
    my: pg_sys::SubTransactionId,
    parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    // Subtransaction ids grow; when one ends, every record at or above its
    // id belongs to it or to one of its already-ended children.
    match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
            RECORDS.with(|r| r.borrow_mut().retain(|x| x.subxact < my));
        }
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => RECORDS.with(|r| {
            for x in r.borrow_mut().iter_mut().filter(|x| x.subxact >= my) {
                x.subxact = parent;
            }
        }),
        _ => {}
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON array of the distinct strings, in first-seen order, cut when it
/// would pass `budget` bytes. Returns the array and whether it was cut.
fn list<'a>(items: impl Iterator<Item = &'a str>, budget: usize) -> (String, bool) {
    let mut seen = std::collections::HashSet::new();
    let mut out = String::from("[");
    let mut cut = false;
    for s in items {
        if !seen.insert(s) {
            continue;
        }
        let mut one = String::new();
        json_str(&mut one, s);
        if out.len() + one.len() + 2 > budget {
            cut = true;
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(&one);
    }
    out.push(']');
    (out, cut)
}

/// A transaction's payload and the figures an overflow summary folds.
struct Built {
    text: CString,
    events: i64,
    first: i64,
    last: i64,
}

fn payload(records: &[Record]) -> Option<Built> {
    if records.is_empty() {
        return None;
    }
    let events: i64 = records.iter().map(|r| r.count).sum();
    let first = records.iter().map(|r| r.first).min().unwrap_or(0);
    let last = records
        .iter()
        .map(|r| r.first + r.count - 1)
        .max()
        .unwrap_or(0);
    let (streams, cut) = list(records.iter().map(|r| r.stream_id.as_str()), STREAMS_BUDGET);
    let (stream_types, cut_st) = list(records.iter().map(|r| r.stream_type.as_str()), TYPES_BUDGET);
    let (event_types, cut_et) = list(
        records
            .iter()
            .flat_map(|r| r.event_types.iter().map(|s| s.as_str())),
        TYPES_BUDGET,
    );
    let text = format!(
        "{{\"events\": {events}, \"first_position\": {first}, \"last_position\": {last}, \
         \"streams\": {streams}, \"streams_truncated\": {}, \"stream_types\": {stream_types}, \
         \"event_types\": {event_types}}}",
        cut || cut_st || cut_et
    );
    Some(Built {
        text: CString::new(text).expect("payload has no NUL"),
        events,
        first,
        last,
    })
}

/// The relay's one notification for transactions whose payloads did not fit
/// in its FIFO: exact count and position range, no lists.
pub fn overflow_payload(events: i64, first: i64, last: i64) -> String {
    format!(
        "{{\"events\": {events}, \"first_position\": {first}, \"last_position\": {last}, \
         \"streams\": [], \"streams_truncated\": true, \"stream_types\": [], \
         \"event_types\": []}}"
    )
}
