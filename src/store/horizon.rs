//! The read horizon: the first global position readers may not hand out yet.
//!
//! Positions follow transaction ids (`position`), so a reader may hand out
//! every position below the id of the oldest transaction that can still
//! commit an event there. PostgreSQL's own bound for that is the snapshot's
//! `xmin`, the oldest transaction running anywhere in the cluster: a session
//! idle in transaction in another database would hold every consumer back.
//! With the library preloaded, this module keeps a registry in shared memory
//! instead, one slot per backend, of the transactions that have appended to
//! `es.events` in each database, and the horizon is held back only by them.
//!
//! How it never skips an event:
//! - An appender stores its id in its slot at its first append (before it
//!   reserves a position) and clears it when it has ended (after
//!   PostgreSQL's commit made it visible to new snapshots).
//! - A reader first raises `published` to the next transaction id, then
//!   reads the slots; its horizon is the lowest base in the slots of its
//!   database, or that next id. Every event below it belongs to a
//!   transaction that has ended, so a snapshot taken after the reader's
//!   check sees it (`fresh`: es.read_all, es.poll and the worker take their
//!   snapshot after asking).
//! - A transaction that took its id long ago and appends only now may find
//!   `published` above its id (a reader has already moved past it). It then
//!   takes its positions from a subtransaction id assigned there and then,
//!   which is newer than anything published. The two atomic steps (slot
//!   stored then `published` read; `published` raised then slots read) are
//!   sequentially consistent, so either the reader sees the slot or the
//!   appender sees the reader's bound.
//! - A query that already has its snapshot (`es.read_horizon()` inside a
//!   query, any REPEATABLE READ or SERIALIZABLE transaction) also holds back
//!   at every transaction its snapshot still sees running that has ended
//!   since and may have appended (committed, not registered any more).
//! - Prepared transactions of the database hold it back at their ids: they
//!   may have appended, and their backend has moved on.
//!
//! Without the library preloaded (no shared memory), and on a standby, the
//! horizon is the snapshot's `xmin`, as before.
//!
//! A reader held back by an appender flags its slot; the appender, when it
//! ends without a notification of its own (es.notify off, or rolled back),
//! announces `{"horizon": position}` on `es_events`
//! (`notifications::notify`), so a consumer that only LISTENs never waits
//! for the next append.

use crate::pg::shmem;
use pgrx::pg_guard;
use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::CStr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::SeqCst};

const NAME: &CStr = c"pg_eventsource horizon";
/// Set in a slot's word by a reader that was held back by it.
const FLAG: u64 = 1 << 63;

/// One backend's appending transaction (`word == 0`: none).
#[repr(C)]
struct Slot {
    db: AtomicU32,
    /// The top-level transaction id (64-bit).
    top: AtomicU64,
    /// The id its positions start from, with `FLAG`.
    word: AtomicU64,
}

#[repr(C)]
struct Header {
    /// The highest bound any reader has computed (a next transaction id).
    published: AtomicU64,
    /// Announcement processes running (`notifications::announcer`), capped.
    announcers: AtomicU32,
    slots: usize,
}

/// At most this many announcement processes at a time: a writer rolling back
/// in a loop while readers wait must not use up `max_worker_processes`.
const MAX_ANNOUNCERS: u32 = 2;

unsafe extern "C" {
    /// max_prepared_transactions (access/twophase.h); pgrx does not bind it.
    static max_prepared_xacts: std::ffi::c_int;
}

static SHARED: AtomicPtr<Header> = AtomicPtr::new(std::ptr::null_mut());

thread_local! {
    /// This backend's slot holds the current transaction.
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
    /// The first position this transaction can take (for the announcement).
    static HELD_AT: Cell<i64> = const { Cell::new(0) };
}

fn slot_count() -> usize {
    // SAFETY: a plain read of a postmaster-computed global (set before shmem_request).
    unsafe { pg_sys::MaxBackends.max(0) as usize }
}

fn shmem_size() -> usize {
    size_of::<Header>() + slot_count() * size_of::<Slot>()
}

static SEGMENT: shmem::Segment = shmem::Segment {
    name: NAME,
    size: shmem_size,
    lwlocks: || 0,
    attach,
};

/// Reserves the registry (from `_PG_init`, only while preloading).
pub(crate) fn init() {
    shmem::add(&SEGMENT);
}

fn attach(base: *mut u8, created: bool) {
    if created {
        // SAFETY: the segment has `shmem_size()` bytes; all-zero atomics are valid, and the
        // slot count is written once, before any backend exists.
        unsafe {
            std::ptr::write_bytes(base, 0, shmem_size());
            (*base.cast::<Header>()).slots = slot_count();
        }
    }
    SHARED.store(base.cast(), SeqCst);
}

/// The registry, unless the library was not preloaded or this is a standby.
fn registry() -> Option<(&'static Header, &'static [Slot])> {
    let h = SHARED.load(SeqCst);
    // SAFETY: a plain call; on a standby nobody appends and its snapshots come from the primary.
    if h.is_null() || unsafe { pg_sys::RecoveryInProgress() } {
        return None;
    }
    // SAFETY: the segment holds a header followed by `slots` slots, for the life of the
    // server; its fields are atomics or set once at startup.
    unsafe {
        let slots = std::slice::from_raw_parts(h.add(1).cast::<Slot>(), (*h).slots);
        Some((&*h, slots))
    }
}

fn my_slot(slots: &[Slot]) -> &Slot {
    // SAFETY: MyProc is this backend's PGPROC, set before any transaction.
    let n = unsafe { (*pg_sys::MyProc).pgprocno } as usize;
    slots.get(n).unwrap_or_else(|| {
        crate::pg::error::fail(
            pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("process number {n} has no slot in the horizon registry"),
        )
    })
}

/// The 64-bit form of a 32-bit id no older than 2^31 ids before `next`.
fn widen(next: u64, xid: pg_sys::TransactionId) -> u64 {
    let xid = xid.into_inner();
    let epoch = (next >> 32) - u64::from(xid > next as u32 && next >> 32 > 0);
    (epoch << 32) | u64::from(xid)
}

/// The 32-bit form of a 64-bit transaction id.
fn xid32(x: u64) -> pg_sys::TransactionId {
    pg_sys::TransactionId::from_inner(x as u32)
}

/// The next transaction id to be assigned. Read without XidGenLock: a value
/// a moment old is only lower, which makes a horizon only lower.
fn next_xid() -> u64 {
    // SAFETY: ShmemVariableCache points into shared memory for the server's life; an aligned
    // 64-bit read is atomic here.
    unsafe { std::ptr::read_volatile(&raw const (*pg_sys::ShmemVariableCache).nextXid.value) }
}

/// At the first append of a transaction, before it reserves positions:
/// holds the horizon at `top`. True when a reader may already hold a
/// horizon above `top`: the positions must then start from a newer id
/// (and `moved` be told).
pub(crate) fn register(top: u64) -> bool {
    let Some((header, slots)) = registry() else {
        return false;
    };
    let s = my_slot(slots);
    // SAFETY: a plain read of a backend-global value.
    s.db.store(unsafe { pg_sys::MyDatabaseId }.to_u32(), SeqCst);
    s.top.store(top, SeqCst);
    s.word.store(top, SeqCst);
    REGISTERED.with(|r| r.set(true));
    header.published.load(SeqCst) > top
}

/// The transaction's positions start from `base`, newer than its id.
pub(crate) fn moved(base: u64) {
    if let Some((_, slots)) = registry().filter(|_| REGISTERED.with(|r| r.get())) {
        let s = my_slot(slots);
        let _ = s
            .word
            .fetch_update(SeqCst, SeqCst, |w| Some(base | (w & FLAG)));
    }
}

/// The first position the transaction can take (the announcement's figure).
pub(crate) fn held_at(position: i64) {
    HELD_AT.with(|h| h.set(position));
}

/// The first position this transaction can take.
pub(crate) fn held_position() -> i64 {
    HELD_AT.with(|h| h.get())
}

/// Whether a reader has been held back by this transaction so far.
pub(crate) fn flagged() -> bool {
    REGISTERED.with(|r| r.get())
        && registry().is_some_and(|(_, slots)| my_slot(slots).word.load(SeqCst) & FLAG != 0)
}

/// How an appending transaction ended: the first position it held back, and
/// whether a reader waited for it.
pub(crate) struct Ended {
    pub(crate) position: i64,
    pub(crate) flagged: bool,
}

/// At the end of every transaction (commit, abort, prepare), after
/// PostgreSQL has made its outcome visible: frees the slot. No error, no
/// allocation.
pub(crate) fn end() -> Option<Ended> {
    if !REGISTERED.with(|r| r.replace(false)) {
        return None;
    }
    let (_, slots) = registry()?;
    // SAFETY: MyProc is this backend's PGPROC; the slot exists (checked at registration).
    let n = unsafe { (*pg_sys::MyProc).pgprocno } as usize;
    let w = slots.get(n)?.word.swap(0, SeqCst);
    Some(Ended {
        position: HELD_AT.with(|h| h.get()),
        flagged: w & FLAG != 0,
    })
}

/// Claims one of the announcement processes' places; false when they are
/// all taken (the announcement is then left to the next notification).
pub(crate) fn claim_announcer() -> bool {
    registry().is_some_and(|(h, _)| {
        h.announcers
            .fetch_update(SeqCst, SeqCst, |n| (n < MAX_ANNOUNCERS).then_some(n + 1))
            .is_ok()
    })
}

/// Gives a place back (the process ends, or could not be started).
pub(crate) fn release_announcer() {
    let h = SHARED.load(SeqCst);
    if !h.is_null() {
        // SAFETY: the header lives for the server's life; the field is atomic.
        let _ = unsafe { &*h }
            .announcers
            .fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(1)));
    }
}

/// What holds the horizon where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Nothing: the next transaction id.
    Nothing,
    /// A transaction of this database that has appended and is running
    /// (`waited_on`: a reader has been held back by it, so its end is announced).
    Appending { pid: i32, top: u64, waited_on: bool },
    /// A prepared transaction of this database.
    Prepared { xid: u64 },
    /// A transaction the caller's snapshot sees running, ended since (and it may have appended).
    Ended { xid: u64 },
    /// Without the registry: the oldest transaction running anywhere.
    OldestRunning { xid: u64 },
}

/// The horizon as a transaction id, and what holds it there.
pub(crate) struct Horizon {
    pub(crate) xid: u64,
    pub(crate) holder: Holder,
}

/// The caller's snapshot (the running query's, or the transaction's).
fn snapshot() -> pg_sys::Snapshot {
    // SAFETY: plain calls; an active snapshot exists inside any query.
    unsafe {
        if pg_sys::ActiveSnapshotSet() {
            pg_sys::GetActiveSnapshot()
        } else {
            pg_sys::GetTransactionSnapshot()
        }
    }
}

/// The horizon. `fresh`: valid for snapshots taken after this call (in READ
/// COMMITTED; a transaction-wide snapshot is older, so it is treated as
/// not fresh). Otherwise valid for the caller's current snapshot. `flag`:
/// mark the appender that holds it, so that its end is announced.
pub(crate) fn compute(fresh: bool, flag: bool) -> Horizon {
    let Some((header, slots)) = registry() else {
        let next = next_xid();
        // SAFETY: the snapshot is valid for this call.
        let xmin = unsafe { (*snapshot()).xmin };
        let xid = widen(next, xmin);
        let holder = if xid < next {
            Holder::OldestRunning { xid }
        } else {
            Holder::Nothing
        };
        return Horizon { xid, holder };
    };
    let next = next_xid();
    header.published.fetch_max(next, SeqCst);
    // SAFETY: a plain read of a backend-global value.
    let xact_snapshot = unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32;
    let snap = (!fresh || xact_snapshot).then(snapshot);
    // SAFETY: plain reads of backend-global values and of the snapshot, valid for this call.
    let (db, mut h) = unsafe {
        (
            pg_sys::MyDatabaseId.to_u32(),
            snap.map_or(next, |s| widen(next, (*s).xmax)),
        )
    };
    let mut holder = Holder::Nothing;

    // Appenders of this database, lowest base first among those still holding.
    // This transaction's slot: a parallel worker's is its leader's.
    // SAFETY: MyProc is this backend's PGPROC; a lock group leader's PGPROC outlives its workers.
    let me = unsafe {
        let leader = (*pg_sys::MyProc).lockGroupLeader;
        if leader.is_null() {
            (*pg_sys::MyProc).pgprocno
        } else {
            (*leader).pgprocno
        }
    } as usize;
    let mut held: Vec<(u64, usize, u64, u64)> = Vec::new(); // (base, slot, word, top)
    for (i, s) in slots.iter().enumerate() {
        let w = s.word.load(SeqCst);
        if w == 0 || s.db.load(SeqCst) != db {
            continue;
        }
        held.push((w & !FLAG, i, w, s.top.load(SeqCst)));
    }
    held.sort_unstable();
    let mut chosen = None;
    for &(base, i, w, top) in &held {
        if base >= h {
            break;
        }
        // SAFETY: plain visibility checks of a transaction id against the process array and
        // the caller's snapshot.
        // The caller's own transaction holds it too (its events are not
        // handed out before it commits), as its id holds PostgreSQL's xmin.
        let holds = i == me
            || unsafe {
                match snap {
                    // A transaction that has ended is visible to any later snapshot.
                    None => pg_sys::TransactionIdIsInProgress(xid32(top)),
                    // Still invisible to the caller's snapshot: running when it was taken.
                    Some(s) => pg_sys::XidInMVCCSnapshot(xid32(top), s),
                }
            };
        if holds {
            // SAFETY: `i` is a slot index; PGPROCs of the first `slots` numbers are backends'.
            let pid = unsafe { (*(*pg_sys::ProcGlobal).allProcs.add(i)).pid };
            (h, holder, chosen) = (
                base,
                Holder::Appending {
                    pid,
                    top,
                    waited_on: w & FLAG != 0,
                },
                Some((i, w)),
            );
            break;
        }
    }

    // Prepared transactions of this database: their dummy PGPROCs
    // (PreparedXactProcs, max_prepared_transactions of them, after the
    // backends' and auxiliary processes').
    // SAFETY: the array lives in shared memory for the server's life and has
    // max_prepared_xacts entries; the fields read are single words, and a prepared
    // transaction's stay set while it is prepared.
    unsafe {
        let procs = pg_sys::PreparedXactProcs;
        let n = if procs.is_null() {
            0
        } else {
            max_prepared_xacts.max(0) as usize
        };
        for i in 0..n {
            let p = &*procs.add(i);
            let xid = std::ptr::read_volatile(&p.xid);
            if p.pid == 0 && xid != pg_sys::TransactionId::INVALID && p.databaseId.to_u32() == db {
                let x = widen(next, xid);
                // A dummy keeps its last xid after COMMIT/ROLLBACK PREPARED: check it still
                // runs (or, for a snapshot, that the snapshot still sees it running).
                let holds = match snap {
                    None => pg_sys::TransactionIdIsInProgress(xid),
                    Some(s) => pg_sys::XidInMVCCSnapshot(xid, s),
                };
                if x < h && holds {
                    (h, holder, chosen) = (x, Holder::Prepared { xid: x }, None);
                }
            }
        }
    }

    // A snapshot taken before this call: transactions it sees running that have
    // ended since may have appended (their slots are free again).
    if let Some(s) = snap {
        let tops: Vec<u64> = held.iter().map(|x| x.3).collect();
        // SAFETY: the snapshot's xip array has xcnt entries; the checks are plain calls.
        unsafe {
            let xip = if (*s).xip.is_null() || (*s).xcnt == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts((*s).xip, (*s).xcnt as usize)
            };
            for &x in xip {
                let fx = widen(next, x);
                if fx >= h || tops.contains(&fx) {
                    continue;
                }
                if !pg_sys::TransactionIdIsInProgress(x) && pg_sys::TransactionIdDidCommit(x) {
                    (h, holder, chosen) = (fx, Holder::Ended { xid: fx }, None);
                }
            }
        }
    }

    if let (true, Some((i, w))) = (flag, chosen) {
        let _ = slots[i].word.compare_exchange(w, w | FLAG, SeqCst, SeqCst);
    }
    Horizon { xid: h, holder }
}

crate::v1_function_info!(pg_finfo_es_snapshot_horizon_xid);
crate::v1_function_info!(pg_finfo_es_next_horizon_xid);
crate::v1_function_info!(pg_finfo_es_horizon_holder);

/// es._snapshot_horizon_xid() RETURNS bigint: for the calling query's snapshot.
///
/// # Safety
/// Called by PostgreSQL's function manager for the SQL signature in `sql/05_horizon.sql`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_snapshot_horizon_xid(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    pg_sys::Datum::from(compute(false, true).xid as i64)
}

/// es._next_horizon_xid() RETURNS bigint: for snapshots taken after the call.
///
/// # Safety
/// Called by PostgreSQL's function manager for the SQL signature in `sql/05_horizon.sql`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_next_horizon_xid(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    pg_sys::Datum::from(compute(true, true).xid as i64)
}

/// es._horizon_holder(OUT horizon_xid bigint, OUT held_by text, OUT holder_pid integer,
/// OUT holder_xid bigint, OUT readers_waiting boolean): what holds the horizon (nobody is flagged: this is monitoring).
///
/// # Safety
/// Called by PostgreSQL's function manager for the SQL signature in `sql/05_horizon.sql`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_horizon_holder(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    use pgrx::IntoDatum;
    let h = compute(true, false);
    let (kind, pid, xid, waited_on) = match h.holder {
        Holder::Nothing => (None, None, None, None),
        Holder::Appending {
            pid,
            top,
            waited_on,
        } => (Some("appending"), Some(pid), Some(top), Some(waited_on)),
        Holder::Prepared { xid } => (Some("prepared"), None, Some(xid), None),
        Holder::Ended { xid } => (Some("ended"), None, Some(xid), None),
        Holder::OldestRunning { xid } => (Some("running"), None, Some(xid), None),
    };
    // SAFETY: the SQL signature's result is a composite of these four columns.
    unsafe {
        crate::pg::fmgr::composite_result(
            fcinfo,
            &[
                Some(pg_sys::Datum::from(h.xid as i64)),
                kind.and_then(|k| k.into_datum()),
                pid.map(pg_sys::Datum::from),
                xid.map(|x| pg_sys::Datum::from(x as i64)),
                waited_on.map(pg_sys::Datum::from),
            ],
        )
    }
}
