//! Shared memory for a preloaded library: one pair of PostgreSQL hooks that
//! reserves and attaches every segment registered with `add` from
//! `_PG_init`, so each user states only its size and how to initialise it.

use pgrx::pg_guard;
use pgrx::pg_sys;
use std::ffi::CStr;
use std::sync::Mutex;

/// One named segment.
pub(crate) struct Segment {
    pub(crate) name: &'static CStr,
    /// Its bytes; asked in the postmaster's request hook (`MaxBackends` is known by then).
    pub(crate) size: fn() -> usize,
    /// LWLocks wanted in a tranche of the segment's name (0: none).
    pub(crate) lwlocks: fn() -> usize,
    /// Called with the segment's address under AddinShmemInitLock, in the
    /// postmaster; `created`: the first time (the bytes are not zeroed).
    pub(crate) attach: fn(*mut u8, bool),
}

static SEGMENTS: Mutex<Vec<&'static Segment>> = Mutex::new(Vec::new());
static mut PREV_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

/// Registers `segment`; nothing unless the library is being preloaded.
/// Returns whether it was registered.
pub(crate) fn add(segment: &'static Segment) -> bool {
    // SAFETY: a plain read of a backend-global flag.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return false;
    }
    let mut segments = SEGMENTS.lock().unwrap_or_else(|e| e.into_inner());
    if segments.is_empty() {
        // SAFETY: the hooks are installed once, from _PG_init while preloading, keeping the
        // previous ones.
        unsafe {
            PREV_REQUEST_HOOK = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(shmem_request);
            PREV_STARTUP_HOOK = pg_sys::shmem_startup_hook;
            pg_sys::shmem_startup_hook = Some(shmem_startup);
        }
    }
    segments.push(segment);
    true
}

fn segments() -> Vec<&'static Segment> {
    SEGMENTS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// # Safety
/// Called once by the postmaster as its shared-memory request hook.
#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    // SAFETY: PostgreSQL's shmem_request hook contract: called once by the postmaster.
    unsafe {
        if let Some(prev) = PREV_REQUEST_HOOK {
            pg_sys::ffi::pg_guard_ffi_boundary(|| prev());
        }
        for s in segments() {
            pg_sys::RequestAddinShmemSpace((s.size)());
            let n = (s.lwlocks)();
            if n > 0 {
                pg_sys::RequestNamedLWLockTranche(s.name.as_ptr(), n as i32);
            }
        }
    }
}

/// # Safety
/// Called by the postmaster (and each backend without fork) as its shared-memory startup hook.
#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    // SAFETY: PostgreSQL's shmem_startup hook contract: segments are set up under
    // AddinShmemInitLock (MainLWLockArray[21], a macro in C).
    unsafe {
        if let Some(prev) = PREV_STARTUP_HOOK {
            pg_sys::ffi::pg_guard_ffi_boundary(|| prev());
        }
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        for s in segments() {
            let mut found = false;
            let base = pg_sys::ShmemInitStruct(s.name.as_ptr(), (s.size)(), &mut found);
            (s.attach)(base.cast(), !found);
        }
        pg_sys::LWLockRelease(init_lock);
    }
}

/// The LWLocks of a segment's tranche (asked for with `Segment::lwlocks`).
///
/// # Safety
/// Only in `Segment::attach` (after the tranche was requested), with `i` below the count asked.
pub(crate) unsafe fn lwlock(name: &CStr, i: usize) -> *mut pg_sys::LWLock {
    // SAFETY: the caller's contract: the tranche exists and has more than `i` locks.
    unsafe { &raw mut (*pg_sys::GetNamedLWLockTranche(name.as_ptr()).add(i)).lock }
}
