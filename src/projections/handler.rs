//! A projection's handler function, in either of its two forms:
//! `(event es.events) RETURNS void`, called once per event, or
//! `(events es.events[]) RETURNS void`, called once per batch with the
//! batch's events in global order (a set-based handler: one `INSERT ...
//! SELECT ... FROM unnest(events)` for a whole batch).
//!
//! The batch form is what makes an async read model cheap under load: a
//! statement per event costs its executor start-up, its constraint and
//! generated-column set-up and, for a row every event updates (a daily
//! total), a walk of that row's update chain, which grows with every update
//! of the transaction (bench/results/). Inline projections and rebuilds call
//! a batch handler too: with the one event appended, or with each chunk of
//! the replay.

use crate::pg::call::UserFunction;
use pgrx::pg_sys::{self, Datum, Oid};

pub(crate) struct Handler {
    f: UserFunction,
    /// For the batch form, the element type of its array argument (es.events)
    /// with its length, by-value flag and alignment.
    element: Option<(Oid, i16, bool, std::ffi::c_char)>,
}

impl Handler {
    /// Looks the function up (a dropped function's error is PostgreSQL's own).
    pub(crate) fn new(proc: Oid) -> Handler {
        let f = UserFunction::new(proc);
        // SAFETY: catalog lookups of a type that exists (the function's argument type).
        let element = unsafe {
            let elem = pg_sys::get_element_type(f.first_arg);
            (elem != Oid::INVALID).then(|| {
                let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
                pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
                (elem, len, byval, align)
            })
        };
        Handler { f, element }
    }

    /// Whether the handler takes a batch (`es.events[]`).
    pub(crate) fn batched(&self) -> bool {
        self.element.is_some()
    }

    /// Hands `rows` (es.events rows, in global order) to the handler: one
    /// call per row, or, for the batch form, one call with all of them
    /// (`one_by_one`: a one-event batch per row, to find the event a failing
    /// batch fails on). `done` counts the rows handed over by calls that
    /// returned. Errors come back as Rust panics (`UserFunction::call`).
    /// Nothing is called for no rows.
    pub(crate) fn handle(&self, rows: &[Datum], one_by_one: bool, done: &mut usize) {
        if rows.is_empty() {
            return;
        }
        match self.element {
            None => {
                for row in rows {
                    self.f.call(&[*row]);
                    *done += 1;
                }
            }
            Some(_) if one_by_one => {
                for row in rows {
                    self.f.call(&[self.array(std::slice::from_ref(row))]);
                    *done += 1;
                }
            }
            Some(_) => {
                self.f.call(&[self.array(rows)]);
                *done += rows.len();
            }
        }
    }

    /// An es.events[] of `rows`, in the current memory context.
    fn array(&self, rows: &[Datum]) -> Datum {
        let (elem, len, byval, align) = self.element.expect("the batch form");
        // SAFETY: `rows` are datums of the element type (es.events rows); construct_array
        // copies them into a new array.
        let array = unsafe {
            pg_sys::construct_array(
                rows.as_ptr() as *mut Datum,
                rows.len() as i32,
                elem,
                len.into(),
                byval,
                align,
            )
        };
        Datum::from(array)
    }
}
