//! The background worker: keeps async projections caught up without a
//! client loop, when the library is in `shared_preload_libraries`.
//!
//! One worker per database named in `es.worker_databases`. While an async
//! projection is running, a committed append sets its latch (`pg::wakeup`,
//! from the commit callback in `notifications::notify`), so it wakes at
//! once; it also wakes every `es.worker_interval` milliseconds (the
//! fallback: restored events wake nobody, for instance). It does not
//! `LISTEN`: PostgreSQL signals a listener with `kill()` for every notifying
//! commit of its database (and every listener of the server now and then),
//! and under 8 writers those signals and the wake-ups that read them cost
//! about 8% of the machine (`bench/results/`). Each wake runs every async
//! projection whose status is running, one `es.run_projection` call per
//! transaction, until a call returns less than a full batch. Failed
//! projections wait for `es.run_projection` after the fix.
//!
//! Every `es.retention_interval` seconds it also runs `es.apply_retention`
//! (sql/12_lifecycle.sql), in batches of `es.worker_batch_size` events, one
//! transaction each, until a batch removes less than a full one.
//!
//! While appends keep coming, a catch-up that found events is followed by
//! a pause of `GATHER` before the next: what commits meanwhile goes into one
//! batch (a sleep, not a wait on the latch: commits meanwhile find the latch
//! set and signal nothing). A catch-up costs a few transactions, a commit
//! flush and queries of its own whatever its size; taken once per notifying
//! commit, that was about a third of the worker's time under 8 writers (a
//! fifth of the machine's on 2 cores). Read models lag by at most `GATHER`
//! more.
//!
//! A database with no running async projection costs the worker one look
//! per `es.worker_interval`, not one per commit (it disarms its wake-up):
//! two queries per commit were a fifth of a single-client append's time. So
//! a new async projection is picked up within that interval (or at once by
//! `es.run_projection`).

use crate::pg::{spi, wakeup};
use crate::settings::{worker_databases, RETENTION_INTERVAL, WORKER_BATCH_SIZE, WORKER_INTERVAL};
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::{Duration, Instant};

/// The pause after a catch-up that found events (see the module's comment).
const GATHER: Duration = Duration::from_millis(10);

/// Registers one worker per database in `es.worker_databases` (from `_PG_init`).
pub(crate) fn register() {
    // SAFETY: a plain read of a backend-global flag.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    let dbs = worker_databases();
    wakeup::reserve(dbs.len());
    crate::pg::bgworker::register_each("pg_eventsource projections", "es_worker_main", &dbs);
}

fn interval() -> Duration {
    Duration::from_millis(WORKER_INTERVAL.get().max(10) as u64)
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn es_worker_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let db = BackgroundWorker::get_extra().to_owned();
    BackgroundWorker::connect_worker_to_spi(Some(&db), None);
    let slot = arg.value();
    wakeup::publish(slot);
    let mut ready = false;
    // Until when to skip catch-ups because the last look found nothing to run.
    let mut idle_until: Option<Instant> = None;
    let mut last_retention: Option<Instant> = None;
    loop {
        if BackgroundWorker::sighup_received() {
            // SAFETY: called in the worker's main loop, outside a transaction, as PostgreSQL's
            // own processes do.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if !ready {
            ready = BackgroundWorker::transaction(installed);
        }
        let mut handled = 0;
        if ready && idle_until.is_none_or(|t| Instant::now() >= t) {
            // Armed before the look: what commits after it wakes the worker.
            wakeup::arm(slot, true);
            let (any, n) = catch_up();
            if !any {
                wakeup::arm(slot, false);
            }
            idle_until = (!any).then(|| Instant::now() + interval());
            handled = n;
        }
        // (the interval is read each time: a reload that changes it applies
        // to the run after the last one, not after the one planned before)
        let every = Duration::from_secs(RETENTION_INTERVAL.get().max(0) as u64);
        if ready && !every.is_zero() && last_retention.is_none_or(|t| t.elapsed() >= every) {
            apply_retention();
            last_retention = Some(Instant::now());
        }
        // (else autovacuum never learns of the rows the handlers and
        // es.apply_retention wrote and removed while the worker runs)
        crate::pg::bgworker::report_stats();
        if handled > 0 {
            // events may have committed during the pause: look again at once
            if !gather() {
                break;
            }
            continue;
        }
        if !BackgroundWorker::wait_latch(Some(interval())) {
            break;
        }
    }
    // Asked to stop (pg_terminate_backend, DROP DATABASE ... FORCE, or
    // shutdown). A worker that returns exits with 0, which the postmaster
    // takes as "done for good"; exit 1 has it restarted after its restart
    // time (at shutdown nothing is restarted).
    // SAFETY: ends the process; nothing after it runs.
    unsafe { pg_sys::proc_exit(1) };
}

fn installed() -> bool {
    // The registry is checked too: a database still at 0.1.0 (between
    // installing a new build and ALTER EXTENSION ... UPDATE) has none.
    crate::pg::tables::installed_with(c"projection_registry")
}

/// Sleeps `GATHER` without resetting the latch (commits meanwhile set it
/// without a signal; the next wait returns at once); false when it must stop.
fn gather() -> bool {
    std::thread::sleep(GATHER);
    !BackgroundWorker::sigterm_received()
}

/// Runs every running async projection until it has no full batch left;
/// returns whether there was any, and how many events were handled.
fn catch_up() -> (bool, i64) {
    let names = BackgroundWorker::transaction(|| {
        if installed() {
            spi::connected(crate::projections::registry::running_async)
        } else {
            Vec::new()
        }
    });
    let batch = WORKER_BATCH_SIZE.get().max(1) as i64;
    let any = !names.is_empty();
    let mut handled = 0;
    for name in names {
        loop {
            if BackgroundWorker::sigterm_received() {
                return (any, handled);
            }
            let n =
                BackgroundWorker::transaction(|| crate::projections::catch_up::run(&name, batch));
            handled += n;
            if n < batch {
                break;
            }
        }
    }
    (any, handled)
}

/// Runs es.apply_retention in batches until one removes less than a full
/// batch; an error is logged and ends this run (the next interval retries).
fn apply_retention() {
    let batch = WORKER_BATCH_SIZE.get().max(1) as i64;
    loop {
        if BackgroundWorker::sigterm_received() {
            return;
        }
        let removed = BackgroundWorker::transaction(|| {
            // (a database not updated to 0.3.0 has no retention table)
            if !installed()
                || crate::pg::tables::relation(c"retention") == pg_sys::Oid::INVALID
                || !matches!(
                    Spi::get_one::<bool>("SELECT EXISTS (SELECT FROM es.retention)"),
                    Ok(Some(true))
                )
            {
                return 0;
            }
            let mut n = 0;
            let r = crate::pg::xact::in_subtransaction(|| {
                n = Spi::get_one_with_args::<i64>("SELECT es.apply_retention($1)", &[batch.into()])
                    .ok()
                    .flatten()
                    .unwrap_or(0);
            });
            if let Err(e) = r {
                pgrx::warning!("pg_eventsource: es.apply_retention failed: {e}");
                return 0;
            }
            n
        });
        if removed < batch {
            return;
        }
    }
}
