//! Notifications relayed by a background process, so that appenders'
//! commits are not serialised.
//!
//! PostgreSQL commits notifying transactions of one database one at a time
//! (PreCommit_Notify holds a database-wide lock until the commit is flushed).
//! With the library preloaded, every database in `es.worker_databases` gets a
//! relay process and a slot in shared memory: an appender that committed
//! copies its payload into the slot's bounded FIFO and sets the relay's
//! latch; the relay sends what is queued, in order, in one transaction of its
//! own. Only the relay's transactions take that lock, so appenders commit
//! (and share WAL flushes) freely.
//!
//! A full FIFO neither blocks a commit nor drops a payload silently: the
//! payload is folded into the slot's overflow summary, sent after the FIFO's
//! payloads. Where no relay is alive (not preloaded, a database without one,
//! a relay that is restarting), appenders notify directly as before.

use super::channel;
use crate::pg::shmem;
use crate::settings;
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Shared memory segment and LWLock tranche name.
const NAME: &CStr = c"pg_eventsource notify relay";
/// How long a woken relay waits for more payloads before sending: the delay
/// it adds to a notification that an appender could not send itself.
pub(crate) const GATHER: Duration = Duration::from_millis(2);
/// Each FIFO entry: payload length (u32, native order), payload, NUL.
const ENTRY_OVERHEAD: usize = 5;

/// Payloads that did not fit in the FIFO, folded (`transactions == 0`: none).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Overflow {
    pub(crate) transactions: i64,
    pub(crate) events: i64,
    pub(crate) first: i64,
    pub(crate) last: i64,
}

impl Overflow {
    pub(crate) fn fold(&mut self, events: i64, first: i64, last: i64) {
        if self.transactions == 0 {
            *self = Overflow {
                transactions: 1,
                events,
                first,
                last,
            };
        } else {
            self.transactions += 1;
            self.events = self.events.saturating_add(events);
            self.first = self.first.min(first);
            self.last = self.last.max(last);
        }
    }
}

/// One database's relay; its FIFO's bytes follow it in shared memory.
#[repr(C)]
struct Slot {
    lock: *mut pg_sys::LWLock,
    /// Set by the relay once connected (the setting names databases, not oids).
    dboid: pg_sys::Oid,
    alive: bool,
    latch: *mut pg_sys::Latch,
    /// Bytes of the FIFO in use, oldest entry first.
    used: usize,
    overflow: Overflow,
}

/// Where shared memory starts (null: not preloaded, nothing to relay to).
/// Set in the postmaster; backends inherit it.
static SHARED: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static SLOTS: AtomicUsize = AtomicUsize::new(0);
static CAPACITY: AtomicUsize = AtomicUsize::new(0);

fn stride() -> usize {
    (size_of::<Slot>() + CAPACITY.load(Relaxed)).next_multiple_of(16)
}

fn shmem_size() -> usize {
    SLOTS.load(Relaxed) * stride()
}

fn slot(i: usize) -> Option<*mut Slot> {
    let base = SHARED.load(Relaxed);
    if base.is_null() || i >= SLOTS.load(Relaxed) {
        return None;
    }
    // SAFETY: `i` is below the slot count, so the offset stays inside the shared segment.
    Some(unsafe { base.add(i * stride()) }.cast())
}

/// The FIFO's bytes of a slot. Only with the slot's lock held.
///
/// # Safety
/// `s` is a live slot of the shared segment and the caller holds its lock.
unsafe fn fifo<'a>(s: *mut Slot) -> &'a mut [u8] {
    // SAFETY: a slot is followed by `CAPACITY` bytes of FIFO in the segment; the caller holds
    // its lock.
    unsafe {
        std::slice::from_raw_parts_mut(
            s.cast::<u8>().add(size_of::<Slot>()),
            CAPACITY.load(Relaxed),
        )
    }
}

/// A slot's lock, released when dropped. Acquiring and releasing raise no
/// error that can happen here (only "too many LWLocks taken").
struct Held(*mut pg_sys::LWLock);

impl Held {
    /// # Safety
    /// `s` is a live slot of the shared segment, its lock initialised at startup.
    unsafe fn new(s: *mut Slot, mode: pg_sys::LWLockMode::Type) -> Held {
        // SAFETY: `s` is a live slot of the shared segment and its lock was initialised at
        // startup.
        unsafe {
            let lock = (*s).lock;
            pg_sys::LWLockAcquire(lock, mode);
            Held(lock)
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: the lock was acquired by `Held::new` and is released once.
        unsafe { pg_sys::LWLockRelease(self.0) };
    }
}

/// Appends one payload; false when it does not fit.
pub(crate) fn fifo_push(buf: &mut [u8], used: &mut usize, payload: &[u8]) -> bool {
    let Ok(len) = u32::try_from(payload.len()) else {
        return false;
    };
    let Some(end) = used.checked_add(payload.len() + ENTRY_OVERHEAD) else {
        return false;
    };
    let Some(dst) = buf.get_mut(*used..end) else {
        return false;
    };
    let (head, rest) = dst.split_at_mut(4);
    let (body, nul) = rest.split_at_mut(payload.len());
    head.copy_from_slice(&len.to_ne_bytes());
    body.copy_from_slice(payload);
    nul.fill(0);
    *used = end;
    true
}

/// The payloads of a FIFO's bytes, oldest first.
pub(crate) fn fifo_entries(mut bytes: &[u8]) -> impl Iterator<Item = &CStr> {
    std::iter::from_fn(move || {
        let (head, rest) = bytes.split_first_chunk::<4>()?;
        let len = u32::from_ne_bytes(*head) as usize;
        let entry = rest.get(..len + 1)?;
        bytes = &rest[len + 1..];
        CStr::from_bytes_with_nul(entry).ok()
    })
}

/// Removes the first `n` bytes (whole entries) of the FIFO.
pub(crate) fn fifo_consume(buf: &mut [u8], used: &mut usize, n: usize) {
    let n = n.min(*used);
    buf.copy_within(n..*used, 0);
    *used -= n;
}

static SEGMENT: shmem::Segment = shmem::Segment {
    name: NAME,
    size: shmem_size,
    lwlocks: || SLOTS.load(Relaxed),
    attach,
};

/// Reserves shared memory and registers one relay per database in
/// `es.worker_databases` (from `_PG_init`, only while preloading).
pub(crate) fn init() {
    // SAFETY: a plain read of a backend-global flag.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    let dbs = settings::worker_databases();
    if dbs.is_empty() {
        return;
    }
    SLOTS.store(dbs.len(), Relaxed);
    CAPACITY.store(
        settings::NOTIFY_RELAY_BUFFER.get().max(16) as usize * 1024,
        Relaxed,
    );
    shmem::add(&SEGMENT);
    crate::pg::bgworker::register_each("pg_eventsource notify relay", "es_notify_relay_main", &dbs);
}

fn attach(base: *mut u8, created: bool) {
    SHARED.store(base, Relaxed);
    if created {
        for i in 0..SLOTS.load(Relaxed) {
            let s = slot(i).expect("slot within shared memory");
            // SAFETY: `s` lies inside the new segment; the tranche has one lock per slot.
            unsafe {
                s.write(Slot {
                    lock: shmem::lwlock(NAME, i),
                    dboid: pg_sys::InvalidOid,
                    alive: false,
                    latch: std::ptr::null_mut(),
                    used: 0,
                    overflow: Overflow::default(),
                })
            };
        }
    }
}

/// The slot of a live relay for this backend's database, if any.
/// Whether this server has the relays' shared memory (the library was
/// preloaded with at least one database in `es.worker_databases`).
pub(crate) fn preloaded() -> bool {
    !SHARED.load(Relaxed).is_null()
}

pub(crate) fn serving() -> Option<usize> {
    // SAFETY: a plain read of a backend-global value.
    let db = unsafe { pg_sys::MyDatabaseId };
    (0..SLOTS.load(Relaxed)).find(|&i| {
        // SAFETY: `s` is a live slot; the fields are read under its lock.
        slot(i).is_some_and(|s| unsafe {
            let _held = Held::new(s, pg_sys::LWLockMode::LW_SHARED);
            (*s).alive && (*s).dboid == db
        })
    })
}

/// Queues a committed transaction's payload for the relay of slot `i` and
/// wakes it. Runs at XACT_EVENT_COMMIT, after the commit record: nothing
/// here may raise an error or allocate. A relay that died since PRE_COMMIT
/// leaves the payload to the next one.
pub(crate) fn hand_over(i: usize, payload: &CStr, events: i64, first: i64, last: i64) {
    let Some(s) = slot(i) else {
        return;
    };
    // SAFETY: `s` is a live slot; its FIFO and fields are written under its exclusive lock.
    let latch = unsafe {
        let _held = Held::new(s, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let s = &mut *s;
        if !fifo_push(fifo(s), &mut s.used, payload.to_bytes()) {
            s.overflow.fold(events, first, last);
        }
        if s.alive {
            s.latch
        } else {
            std::ptr::null_mut()
        }
    };
    if !latch.is_null() {
        // The latch lives in the relay's PGPROC, which outlives it: at worst
        // a stale pointer wakes whoever took that PGPROC, once.
        // SAFETY: the latch lives in the relay's PGPROC, which outlives it: at worst a stale
        // pointer wakes whoever took that PGPROC, once.
        unsafe { pg_sys::SetLatch(latch) };
    }
}

/// Relay main: one per database in `es.worker_databases`; the argument is
/// its slot. It needs nothing of the extension's SQL objects.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn es_notify_relay_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let Some(s) = slot(arg.value()) else {
        ereport!(
            PgLogLevel::ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "pg_eventsource notify relay: no shared memory slot (is the library preloaded?)"
        );
        return;
    };
    let db = BackgroundWorker::get_extra().to_owned();
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    // SAFETY: the relay's own slot, written under its lock; the exit callback is registered
    // with the slot as argument.
    unsafe {
        // Its transactions write nothing but their commit record, and a
        // notification is never durable: no need to wait for the WAL flush
        // (listeners see it once the commit is visible, flushed or not).
        pg_sys::SetConfigOption(
            c"synchronous_commit".as_ptr(),
            c"off".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
        );
        // Registered after the connection's own exit callbacks, so it runs
        // before them: appenders stop handing over before the relay vanishes
        // from pg_stat_activity.
        pg_sys::before_shmem_exit(Some(relay_exit), arg);
        let _held = Held::new(s, pg_sys::LWLockMode::LW_EXCLUSIVE);
        (*s).dboid = pg_sys::MyDatabaseId;
        (*s).latch = pg_sys::MyLatch;
        (*s).alive = true;
    }
    let mut bytes = Vec::with_capacity(CAPACITY.load(Relaxed));
    loop {
        if BackgroundWorker::sighup_received() {
            // SAFETY: called in the relay's main loop, outside a transaction, as PostgreSQL's
            // own processes do.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        relay(s, &mut bytes);
        // The latch is reset before the next drain, so a payload queued
        // after this drain's copy sets it again and is not missed; the
        // timeout is only a safety net.
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(10))) {
            break;
        }
        // Woken: gather what else commits meanwhile into the same
        // transaction. A sleep, not a wait on the latch: appenders find it
        // set and signal nothing (a `kill()` per handed-over commit was the
        // relay's main cost under 8 writers).
        std::thread::sleep(GATHER);
    }
    // Asked to stop: exit 1 has the postmaster restart it after its restart
    // time (as the projection worker); appenders notify directly meanwhile.
    // SAFETY: ends the process; nothing after it runs.
    unsafe { pg_sys::proc_exit(1) };
}

/// # Safety
/// Called by PostgreSQL when the relay exits, with its slot number as argument.
#[pg_guard]
unsafe extern "C-unwind" fn relay_exit(_code: std::ffi::c_int, arg: pg_sys::Datum) {
    if let Some(s) = slot(arg.value()) {
        // SAFETY: the exiting relay's own slot, written under its lock (taken unless held
        // already).
        unsafe {
            // Held already only if an error struck mid-way through a copy.
            let _held = (!pg_sys::LWLockHeldByMe((*s).lock))
                .then(|| Held::new(s, pg_sys::LWLockMode::LW_EXCLUSIVE));
            (*s).alive = false;
            (*s).latch = std::ptr::null_mut();
        }
    }
}

/// Sends what the slot holds in one transaction, then removes it. Removing
/// only after the commit means a relay that fails or is killed mid-way
/// leaves the payloads to the next one (the overflow summary, taken at the
/// start, is lost then).
fn relay(s: *mut Slot, bytes: &mut Vec<u8>) {
    bytes.clear();
    // SAFETY: `s` is the relay's own slot; its FIFO is read under its exclusive lock.
    let overflow = unsafe {
        let _held = Held::new(s, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let s = &mut *s;
        // `bytes` has the FIFO's capacity: no allocation under the lock.
        bytes.extend_from_slice(&fifo(s)[..s.used]);
        std::mem::take(&mut s.overflow)
    };
    if bytes.is_empty() && overflow.transactions == 0 {
        return;
    }
    let summary = (overflow.transactions > 0).then(|| {
        CString::new(channel::overflow_payload(
            overflow.events,
            overflow.first,
            overflow.last,
        ))
        .expect("payload has no NUL")
    });
    let sent: &[u8] = bytes;
    BackgroundWorker::transaction(|| {
        for p in fifo_entries(sent) {
            channel::send(p);
        }
        if let Some(p) = &summary {
            channel::send(p);
        }
    });
    // SAFETY: the relay's own slot; the bytes sent are removed under its exclusive lock.
    unsafe {
        let _held = Held::new(s, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let s = &mut *s;
        fifo_consume(fifo(s), &mut s.used, sent.len());
    }
}
