//! Notifications relayed where no relay has shared memory: a server where
//! the library is not preloaded (only `CREATE EXTENSION` was run), or
//! preloaded with no `es.worker_databases`.
//!
//! PostgreSQL commits notifying transactions of a database one at a time
//! (`relay` says why); the preloaded relay avoids that with a FIFO in shared
//! memory, which a library loaded on first use cannot ask for. Here the FIFO
//! is a table: a committing appender that finds the notification lock taken
//! and a relay alive inserts its payload into the unlogged table
//! `es.notify_outbox` (in its own transaction, so it is there only if the
//! transaction commits) and wakes the relay after its commit; the relay, a
//! background process started on demand (a dynamic background worker: no
//! preloading needed, one slot of `max_worker_processes`), deletes what is
//! there and sends it, in order, in one transaction of its own.
//!
//! The relay finds itself through `es.notify_outbox_relay` (its pid; a
//! session-level advisory lock makes it the only one per database), and
//! appenders check the pid belongs to a live background process of this
//! database before each use. It exits after `IDLE_EXIT` with nothing to send
//! (so that `DROP DATABASE`, which waits 5 s for sessions to leave, is not
//! held up), or when terminated, only after every appender that left it a
//! payload has ended (`EXIT_KEY`), sending what they left; the next appender
//! that finds none notifies by itself and starts one. Nothing is lost but
//! across a crash (the table is unlogged, and listeners' connections do not
//! survive one either).

use super::channel;
use crate::kept_plan;
use crate::pg::{roles, spi, tables};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::CStr;
use std::time::{Duration, Instant};

const KIND: &str = "pg_eventsource notify outbox";
/// The relay leaves after this long with nothing to send.
const IDLE_EXIT: Duration = Duration::from_secs(2);
/// A backend starts a relay at most this often (a start that fails, for
/// want of a free worker slot, is not retried at every commit).
const START_EVERY: Duration = Duration::from_secs(2);
/// A backend that found no relay reads the table again after this long.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// The advisory lock (session level, per database) that the relay holds.
const LOCK_KEY: i64 = 0x6573_5f6f_7574_626f; // "es_outbo"
/// The advisory lock an appender holds (shared, to its transaction's end)
/// from leaving a payload, and the relay takes (exclusive) before it leaves:
/// so it leaves only once every payload left for it is committed and sent,
/// and appenders that come while it waits notify by themselves.
const EXIT_KEY: i64 = 0x6573_5f6f_7574_6578; // "es_outex"

thread_local! {
    /// The relay's pid as last read from the table (checked before each use).
    static RELAY: Cell<Option<i32>> = const { Cell::new(None) };
    /// When the table was last read and named no live relay.
    static LOOKED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// When this backend last started a relay.
    static STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// After the commit: the relay to wake (a payload was left), or whether
    /// to start one (none was alive).
    static AFTER_COMMIT: Cell<After> = const { Cell::new(After::Nothing) };
}

#[derive(Clone, Copy)]
enum After {
    Nothing,
    Wake(i32),
    Start,
}

kept_plan!(
    READ_RELAY,
    c"SELECT pid FROM es.notify_outbox_relay LIMIT 1",
    []
);

/// Runs `f` (SPI statements, as the extension's owner) at PRE_COMMIT, where
/// the statement's snapshot is gone: with a snapshot of its own.
fn at_commit<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a fresh snapshot pushed for the statements in `f` and popped after (an
    // error in `f` aborts the transaction, which pops it).
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    let r = roles::as_user(tables::extension_owner(), || spi::connected(f));
    // SAFETY: pops the snapshot pushed above.
    unsafe { pg_sys::PopActiveSnapshot() };
    r
}

/// Whether `pid` is a live background process connected to this database.
fn alive(pid: i32) -> bool {
    // SAFETY: BackendPidGetProc takes ProcArrayLock and returns a PGPROC of shared memory
    // (or NULL); the fields read are plain values.
    unsafe {
        let proc = pg_sys::BackendPidGetProc(pid);
        !proc.is_null() && (*proc).databaseId == pg_sys::MyDatabaseId && (*proc).isBackgroundWorker
    }
}

/// What a backend knows of this database's outbox relay.
enum Relay {
    Alive(i32),
    /// The table names no live one.
    Absent,
    /// Not looked for again yet (`LOOK_EVERY`), or an extension not updated.
    Unknown,
}

/// This database's outbox relay. Inside a transaction.
fn relay() -> Relay {
    if let Some(pid) = RELAY.with(|r| r.get()) {
        if alive(pid) {
            return Relay::Alive(pid);
        }
        RELAY.with(|r| r.set(None));
    }
    if LOOKED
        .with(|l| l.get())
        .is_some_and(|t| t.elapsed() < LOOK_EVERY)
    {
        return Relay::Unknown;
    }
    LOOKED.with(|l| l.set(Some(Instant::now())));
    if tables::relation(c"notify_outbox_relay") == pg_sys::Oid::INVALID {
        return Relay::Unknown;
    }
    let pid = at_commit(|| {
        (READ_RELAY.run(&[], false) == 1)
            .then(|| spi::value_i64(0, 1))
            .flatten()
    })
    .map(|p| p as i32)
    .filter(|p| alive(*p));
    match pid {
        Some(pid) => {
            RELAY.with(|r| r.set(Some(pid)));
            Relay::Alive(pid)
        }
        None => Relay::Absent,
    }
}

/// At PRE_COMMIT, where no shared-memory relay serves the database: leaves
/// `payload` for the outbox relay and returns true when one is alive and
/// `busy()` says the notification lock is taken (then the relay is woken
/// after the commit); otherwise returns false (the caller notifies) and,
/// when the table names no live relay, has one started after the commit.
pub(crate) fn leave(payload: &CStr, busy: impl FnOnce() -> bool) -> bool {
    let pid = match relay() {
        Relay::Alive(pid) => pid,
        Relay::Absent => {
            // only when the table said so: a start per throttled look would
            // fork a process that finds the running relay and leaves
            AFTER_COMMIT.with(|a| a.set(After::Start));
            return false;
        }
        Relay::Unknown => return false,
    };
    if !busy() || !hold_exit_lock() {
        return false;
    }
    let table = tables::relation(c"notify_outbox");
    if table == pg_sys::Oid::INVALID {
        return false;
    }
    // A plain heap insert: the table has no index, trigger or constraint to
    // run, and at PRE_COMMIT a statement would need a snapshot of its own.
    // SAFETY: the table is opened and closed here with the lock an INSERT takes; the
    // tuple is formed from one text datum matching its one column.
    unsafe {
        let rel = pg_sys::table_open(table, pg_sys::RowExclusiveLock as i32);
        let text = pg_sys::cstring_to_text(payload.as_ptr());
        let mut values = [pg_sys::Datum::from(text)];
        let mut nulls = [false];
        let tuple = pg_sys::heap_form_tuple((*rel).rd_att, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::simple_heap_insert(rel, tuple);
        pg_sys::table_close(rel, pg_sys::RowExclusiveLock as i32);
    }
    AFTER_COMMIT.with(|a| a.set(After::Wake(pid)));
    true
}

/// Takes `EXIT_KEY` shared for this transaction, without waiting (as
/// `pg_try_advisory_xact_lock_shared` would); false when the relay is
/// leaving (it holds or waits for the lock exclusive).
fn hold_exit_lock() -> bool {
    // SAFETY: a plain read of a backend-global value.
    let db = unsafe { pg_sys::MyDatabaseId };
    // SET_LOCKTAG_INT64, as the SQL advisory-lock functions build it for a bigint key
    let tag = pg_sys::LOCKTAG {
        locktag_field1: db.to_u32(),
        locktag_field2: (EXIT_KEY >> 32) as u32,
        locktag_field3: EXIT_KEY as u32,
        locktag_field4: 1,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    };
    // SAFETY: a lock tag built above, taken for the transaction without waiting; it is
    // released at the transaction's end.
    let r = unsafe { pg_sys::LockAcquire(&tag, pg_sys::ShareLock as i32, false, true) };
    r != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

/// After the commit record: wakes the relay, or starts one. Raises no error.
pub(crate) fn committed() {
    match AFTER_COMMIT.with(|a| a.replace(After::Nothing)) {
        After::Nothing => {}
        After::Wake(pid) => {
            // SAFETY: as in `alive`; SetLatch on a live process's latch is what PostgreSQL's
            // own signalling does.
            let woken = unsafe {
                let proc = pg_sys::BackendPidGetProc(pid);
                !proc.is_null() && {
                    pg_sys::SetLatch(&mut (*proc).procLatch);
                    true
                }
            };
            if !woken {
                // it left meanwhile: a new one sends what is in the table
                STARTED.with(|s| s.set(None));
                start();
            }
        }
        After::Start => start(),
    }
}

/// The transaction did not commit: nothing to wake or start.
pub(crate) fn forget() {
    AFTER_COMMIT.with(|a| a.set(After::Nothing));
}

/// Starts a relay for this database (at most every `START_EVERY`); one that
/// finds another running leaves at once.
fn start() {
    if STARTED
        .with(|s| s.get())
        .is_some_and(|t| t.elapsed() < START_EVERY)
    {
        return;
    }
    STARTED.with(|s| s.set(Some(Instant::now())));
    // SAFETY: a plain read of a backend-global value.
    let db = unsafe { pg_sys::MyDatabaseId };
    // registering takes a lock and a slot, and raises no error
    let _ = BackgroundWorkerBuilder::new(KIND)
        .set_type(KIND)
        .set_library("pg_eventsource")
        .set_function("es_notify_outbox_main")
        .set_argument(Some(pg_sys::Datum::from(db.to_u32())))
        .enable_spi_access()
        .set_restart_time(None)
        .load_dynamic();
}

kept_plan!(
    CLAIM,
    c"SELECT pg_catalog.to_regclass('es.notify_outbox_relay') IS NOT NULL
         AND pg_catalog.pg_try_advisory_lock($1)",
    [pg_sys::INT8OID]
);
kept_plan!(FORGET_RELAY, c"DELETE FROM es.notify_outbox_relay", []);
kept_plan!(
    RECORD_RELAY,
    c"INSERT INTO es.notify_outbox_relay (pid) VALUES (pg_catalog.pg_backend_pid())",
    []
);
kept_plan!(
    AWAIT_APPENDERS,
    c"SELECT pg_catalog.pg_advisory_lock($1)",
    [pg_sys::INT8OID]
);
kept_plan!(TAKE, c"DELETE FROM es.notify_outbox RETURNING payload", []);

/// Sends every payload left in the table; returns how many.
fn drain() -> u64 {
    spi::connected(|| {
        let n = TAKE.run(&[], false);
        for r in 0..n as usize {
            if let Some(p) = spi::value(r, 1) {
                // SAFETY: a non-null text datum of the result; text_to_cstring copies it into
                // a NUL-terminated string in the current context, alive for the send.
                channel::send(unsafe { CStr::from_ptr(pg_sys::text_to_cstring(p.cast_mut_ptr())) });
            }
        }
        n
    })
}

/// The relay process: the database's oid as argument.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn es_notify_outbox_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM | SignalWakeFlags::SIGHUP);
    let db = pg_sys::Oid::from(arg.value() as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(db), None);
    let mine = BackgroundWorker::transaction(|| {
        spi::connected(|| {
            let claimed = CLAIM.run(&[Some(pg_sys::Datum::from(LOCK_KEY))], false) == 1
                && spi::value_bool(0, 1) == Some(true);
            if claimed {
                FORGET_RELAY.run(&[], false);
                RECORD_RELAY.run(&[], false);
            }
            claimed
        })
    });
    if !mine {
        return; // another relay serves the database (or the extension is gone)
    }
    let mut last_sent = Instant::now();
    loop {
        if BackgroundWorker::transaction(drain) > 0 {
            last_sent = Instant::now();
        }
        // (the outbox's deleted rows: autovacuum learns of them while the
        // relay runs, not when it exits)
        crate::pg::bgworker::report_stats();
        let stop = !BackgroundWorker::wait_latch(Some(Duration::from_millis(200)));
        if stop || last_sent.elapsed() >= IDLE_EXIT {
            break;
        }
        // Woken (or timed out): gather what else commits meanwhile into the
        // same transaction; appenders find the latch set and signal nothing
        // (as the preloaded relay does, `relay::GATHER`).
        std::thread::sleep(super::relay::GATHER);
    }
    // Once every appender that left a payload for this process has ended
    // (and none can start to), unregistered, and what they left is sent.
    BackgroundWorker::transaction(|| {
        spi::connected(|| {
            AWAIT_APPENDERS.run(&[Some(pg_sys::Datum::from(EXIT_KEY))], false);
            FORGET_RELAY.run(&[], false);
        });
        drain()
    });
}
