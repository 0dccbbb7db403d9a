//! Waking a background process of a database without `LISTEN`.
//!
//! A process that waits for work done in its database (the projection
//! worker) publishes its latch here and says whether it wants to be woken;
//! a backend whose transaction made work for it sets that latch after its
//! commit. `NOTIFY` would do the same at a higher price: PostgreSQL signals
//! a listener with `kill()` for every notifying commit, and every listener
//! on the server (of any database) now and then to move the queue's tail.
//! Setting a latch that is already set costs a memory barrier, so a process
//! that is busy or gathering is not interrupted again.
//!
//! One slot per database the process serves, in the order it was registered
//! (its background-worker argument). Shared memory exists only when the
//! library is preloaded; without it `wake` does nothing.

use pgrx::pg_sys;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

const NAME: &CStr = c"pg_eventsource wakeup";

#[repr(C)]
struct Slot {
    /// The database served; `InvalidOid` until the process has connected.
    dboid: AtomicU32,
    latch: AtomicPtr<pg_sys::Latch>,
    /// Whether the process wants to be woken by `wake` (it has work to watch for).
    armed: AtomicBool,
}

static SHARED: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
static SLOTS: AtomicUsize = AtomicUsize::new(0);

static SEGMENT: super::shmem::Segment = super::shmem::Segment {
    name: NAME,
    size: || SLOTS.load(Ordering::Relaxed) * size_of::<Slot>(),
    lwlocks: || 0,
    attach,
};

/// Reserves `slots` slots (from `_PG_init`, while preloading; otherwise nothing).
pub(crate) fn reserve(slots: usize) {
    if slots == 0 {
        return;
    }
    SLOTS.store(slots, Ordering::Relaxed);
    super::shmem::add(&SEGMENT);
}

fn attach(base: *mut u8, created: bool) {
    let base = base.cast::<Slot>();
    if created {
        for i in 0..SLOTS.load(Ordering::Relaxed) {
            // SAFETY: `i` is below the slot count the segment was sized for; the bytes are
            // written before any process reads them (under AddinShmemInitLock, in the
            // postmaster).
            unsafe {
                base.add(i).write(Slot {
                    dboid: AtomicU32::new(pg_sys::InvalidOid.to_u32()),
                    latch: AtomicPtr::new(std::ptr::null_mut()),
                    armed: AtomicBool::new(false),
                })
            };
        }
    }
    SHARED.store(base, Ordering::Release);
}

fn slots() -> &'static [Slot] {
    let base = SHARED.load(Ordering::Acquire);
    if base.is_null() {
        return &[];
    }
    // SAFETY: the segment holds `SLOTS` initialised slots for the life of the server; every
    // field is atomic, so shared references are sound.
    unsafe { std::slice::from_raw_parts(base, SLOTS.load(Ordering::Relaxed)) }
}

/// The calling process publishes its latch in slot `i` for its database,
/// not armed yet; `withdraw` takes it back (at exit).
pub(crate) fn publish(i: usize) {
    let Some(s) = slots().get(i) else {
        return;
    };
    s.armed.store(false, Ordering::Relaxed);
    // SAFETY: plain reads of this process's globals, set once it connected.
    let (db, latch) = unsafe { (pg_sys::MyDatabaseId, pg_sys::MyLatch) };
    s.latch.store(latch, Ordering::Relaxed);
    s.dboid.store(db.to_u32(), Ordering::Release);
    // SAFETY: registers a callback with the slot's index, run once at exit.
    unsafe { pg_sys::before_shmem_exit(Some(withdraw), pg_sys::Datum::from(i)) };
}

/// # Safety
/// Called by PostgreSQL at the publishing process's exit, with its slot's index.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn withdraw(_code: std::ffi::c_int, arg: pg_sys::Datum) {
    if let Some(s) = slots().get(arg.value()) {
        s.armed.store(false, Ordering::Relaxed);
        s.dboid
            .store(pg_sys::InvalidOid.to_u32(), Ordering::Release);
        s.latch.store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// Whether the process in slot `i` wants `wake` to set its latch. It arms
/// before it looks for work, so that work committed after the look wakes it.
pub(crate) fn arm(i: usize, armed: bool) {
    if let Some(s) = slots().get(i) {
        s.armed.store(armed, Ordering::SeqCst);
    }
}

/// Wakes the armed process of this backend's database, if any. No error and
/// no allocation: this runs after the commit record.
pub(crate) fn wake() {
    // SAFETY: a plain read of a backend-global value.
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
    for s in slots() {
        if s.dboid.load(Ordering::Acquire) != db || !s.armed.load(Ordering::SeqCst) {
            continue;
        }
        let latch = s.latch.load(Ordering::Acquire);
        if !latch.is_null() {
            // SAFETY: the latch lives in the process's PGPROC, which outlives it: at worst a
            // stale pointer (the process exited since the load) wakes whoever took that
            // PGPROC, once. SetLatch raises no error.
            unsafe { pg_sys::SetLatch(latch) };
        }
    }
}
