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
//! Where the library is not preloaded (or no database has a relay), the
//! same happens through a table and a relay started on demand (`outbox`).
//!
//! Where a relay serves the database (`relay`) and another transaction is
//! committing a notification right now, the payload is kept aside at
//! PRE_COMMIT and handed to the relay once the commit is done, instead of
//! being queued with NOTIFY here: PostgreSQL lets one notifying transaction
//! commit at a time (a lock held from queueing the notification to the end of
//! the commit, WAL flush included), so waiting for it would serialise
//! appenders. When nobody holds that lock the transaction takes it and
//! notifies itself: cheaper than waking the relay, and no wait.

use super::{announcer, channel, outbox, relay};
use crate::pg::wakeup;
use crate::store::appended::{self, Record};
use crate::store::horizon;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CString;

/// Room for the stream ids in the payload; the rest of it stays small.
const STREAMS_BUDGET: usize = 5000;
const TYPES_BUDGET: usize = 1200;

/// A payload waiting for the commit to finish, to go to the relay of `slot`.
struct Kept {
    slot: usize,
    built: Built,
}

thread_local! {
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
    // SAFETY: a lock tag built above, taken without waiting; it is released at transaction end
    // like PostgreSQL's own.
    let r = unsafe { pg_sys::LockAcquire(&tag, pg_sys::AccessExclusiveLock as i32, false, true) };
    r != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

/// Registers the transaction callbacks (from `_PG_init`).
pub(crate) fn init() {
    // SAFETY: registers a static callback once, from _PG_init.
    unsafe {
        pg_sys::RegisterXactCallback(Some(xact_event), std::ptr::null_mut());
    }
}

/// # Safety
/// Called by PostgreSQL as a registered transaction callback.
#[pg_guard]
unsafe extern "C-unwind" fn xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT => {
            let mut built = payload(&appended::take());
            if built.is_none() && horizon::flagged() {
                // A reader waits for this transaction to end and no notification of its own
                // will tell it: announce the horizon instead.
                built = Some(horizon_payload(horizon::held_position()));
            }
            ANNOUNCED.with(|a| a.set(built.is_some()));
            if let Some(built) = built {
                let always = crate::settings::NOTIFY_ALWAYS_RELAY.get();
                if relay::preloaded() {
                    match relay::serving().filter(|_| always || !take_notify_lock()) {
                        Some(slot) => KEPT.with(|k| *k.borrow_mut() = Some(Kept { slot, built })),
                        None => channel::send(&built.text),
                    }
                } else if !outbox::leave(&built.text, || always || !take_notify_lock()) {
                    channel::send(&built.text);
                }
            }
        }
        pg_sys::XactEvent::XACT_EVENT_COMMIT => {
            // After the commit record: no error, no allocation (see relay::hand_over).
            if let Some(Kept { slot, built: b }) = KEPT.with(|k| k.borrow_mut().take()) {
                relay::hand_over(slot, &b.text, b.events, b.first, b.last);
            }
            outbox::committed();
            appended::take();
            if ANNOUNCED.with(|a| a.get()) {
                // The projection worker, if it watches this database (it does not LISTEN).
                wakeup::wake();
            }
            ended(true);
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            KEPT.with(|k| k.borrow_mut().take());
            outbox::forget();
            appended::take();
            ANNOUNCED.with(|a| a.set(false));
            ended(false);
        }
        pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE => {
            KEPT.with(|k| k.borrow_mut().take());
            outbox::forget();
            appended::take();
        }
        pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            // The prepared transaction holds the horizon by itself (store::horizon).
            let _ = horizon::end();
        }
        _ => {}
    }
}

/// The transaction has ended: frees its place in the horizon registry and,
/// when a reader waited for it and no notification of this transaction told
/// it (rolled back, or flagged after PRE_COMMIT), announces the horizon
/// through the relay, or where the database has none through a process
/// started for it (`announcer`). No error: this runs after the commit or
/// abort record.
fn ended(committed: bool) {
    let Some(e) = horizon::end() else {
        return;
    };
    let announced = ANNOUNCED.with(|a| a.replace(false)) && committed;
    if !e.flagged || announced {
        return;
    }
    let p = horizon_payload(e.position);
    wakeup::wake();
    match relay::serving() {
        Some(slot) => relay::hand_over(slot, &p.text, p.events, p.first, p.last),
        None => {
            announcer::start(&p.text);
        }
    }
}

thread_local! {
    /// This transaction's commit carries a notification (its own or a horizon one).
    static ANNOUNCED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The announcement that events from `position` on, held back by a
/// transaction that has now ended, may be readable: `{"horizon": p}`. (A
/// Rust allocation, so also fine after the commit record: it raises no
/// PostgreSQL error.)
fn horizon_payload(position: i64) -> Built {
    Built {
        text: CString::new(format!("{{\"horizon\": {position}}}")).expect("payload has no NUL"),
        events: 0,
        first: position,
        last: position,
    }
}

/// Appends to `out` a JSON array of the distinct strings, in first-seen
/// order, cut when it would pass `budget` bytes. Returns whether it was cut.
/// (Written in place, with a linear search for repeats while the list is
/// short: most transactions name one stream and one type, and this runs in
/// every appending commit.)
fn list<'a>(items: impl Iterator<Item = &'a str>, budget: usize, out: &mut String) -> bool {
    let start = out.len();
    out.push('[');
    let mut seen: Vec<&str> = Vec::new();
    let mut many: Option<std::collections::HashSet<&str>> = None;
    let mut cut = false;
    for s in items {
        let repeat = match &mut many {
            Some(set) => !set.insert(s),
            None if seen.contains(&s) => true,
            None => {
                seen.push(s);
                if seen.len() > 16 {
                    many = Some(seen.drain(..).collect());
                }
                false
            }
        };
        if repeat {
            continue;
        }
        let before = out.len();
        let comma = before > start + 1;
        if comma {
            out.push(',');
        }
        crate::pg::json_text::write_string(s, out);
        // the list so far, this string, a comma and the closing bracket
        let one = out.len() - before - usize::from(comma);
        if before - start + one + 2 > budget {
            out.truncate(before);
            cut = true;
        }
    }
    out.push(']');
    cut
}

/// A transaction's payload and the figures an overflow summary folds.
pub(crate) struct Built {
    pub(crate) text: CString,
    events: i64,
    first: i64,
    last: i64,
}

pub(crate) fn payload(records: &[Record]) -> Option<Built> {
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
    use std::fmt::Write;
    let mut text = String::with_capacity(160);
    let _ = write!(
        text,
        "{{\"events\": {events}, \"first_position\": {first}, \"last_position\": {last}, \"streams\": "
    );
    let mut cut = list(
        records.iter().map(|r| r.stream_id.as_str()),
        STREAMS_BUDGET,
        &mut text,
    );
    // (the flag's place is kept and filled once every list is written)
    text.push_str(", \"streams_truncated\": false, \"stream_types\": ");
    let flag = text.len() - ", \"stream_types\": ".len() - "false".len();
    cut |= list(
        records.iter().map(|r| r.stream_type.as_str()),
        TYPES_BUDGET,
        &mut text,
    );
    text.push_str(", \"event_types\": ");
    cut |= list(
        records
            .iter()
            .flat_map(|r| r.event_types.iter().map(|s| s.as_str())),
        TYPES_BUDGET,
        &mut text,
    );
    text.push('}');
    if cut {
        text.replace_range(flag..flag + "false".len(), "true");
    }
    Some(Built {
        text: CString::new(text).expect("payload has no NUL"),
        events,
        first,
        last,
    })
}
