//! es.fold's column form without `ORDER BY`: one stream's events in any
//! order (a sequential scan's, a hash aggregate's), folded in version order.
//!
//! Each run of consecutive versions the fold is handed becomes a segment
//! (one for a stream read in version order, a few for a table whose rows
//! moved). A segment does not know the state its first event found, so it
//! records what its events do to any state (a `Node` tree: places replaced,
//! numbers added to, arrays appended to, fields removed or merged) and what
//! that state must hold for them not to fail (`Check`s, each naming the step
//! that would fail). A segment that starts at a stream's first event, its
//! version 1, starts from the initial state and is folded as the ordered fold
//! folds. The final function sorts the segments by version and applies them
//! in order to the initial state: the state, and the first error, that
//! folding the events one by one in version order gives.

use crate::aggregates::definitions::{Def, Kind};
use crate::aggregates::reducer::{self, Op, Step};
use crate::pg::decimal::Num;
use crate::pg::fmgr::same_bytes;
use crate::pg::json_value::Val;
use crate::store::event::Event;
use rustc_hash::FxHashMap;
use std::rc::Rc;

/// What a segment's events did to one place of the state.
#[derive(Debug)]
enum Node {
    /// Untouched: whatever was there before (possibly nothing).
    Keep,
    /// Replaced by this value.
    Known(Val),
    /// Made an object (nothing, null and, for a merge, anything not an object
    /// became `{}`; a step through it checked the rest), these fields changed.
    Obj(Vec<(String, Node)>),
    /// Only removals below: applied if it is an object, else nothing.
    Edit(Vec<(String, Node)>),
    /// A number (nothing or null counting as 0) plus this.
    Delta(Num),
    /// An array (nothing or null counting as empty) with these appended.
    Tail(Vec<Val>),
    /// Removed.
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Object,
    Number,
    Array,
}

/// What the state before a segment must hold at `path` for the step `seq`
/// not to fail with `message`.
#[derive(Debug)]
struct Check {
    seq: u64,
    path: Vec<String>,
    want: Want,
    message: String,
}

/// The events of one stream from version `first` to `last`, consecutive.
#[derive(Debug)]
struct Segment {
    stream: String,
    first: i64,
    last: i64,
    root: Node,
    checks: Vec<Check>,
    /// The first step that fails whatever the state before (its `seq`, the
    /// message); the events after it change nothing.
    error: Option<(u64, String)>,
    /// Steps run so far: orders the checks and the error.
    steps: u64,
}

/// The fold of one group's events, in any order.
pub(crate) struct Unordered {
    pub(crate) def: Rc<Def>,
    segments: Vec<Segment>,
    /// The segment the last event went to.
    current: usize,
    /// Segment index by the version that continues it (for the segments
    /// left since).
    next: FxHashMap<i64, usize>,
}

impl Unordered {
    pub(crate) fn new(def: Rc<Def>) -> Unordered {
        Unordered {
            def,
            segments: Vec::new(),
            current: 0,
            next: FxHashMap::default(),
        }
    }

    /// Adds one event (of the definition's stream type: the caller checked).
    pub(crate) fn add(&mut self, ev: &Event) {
        let def = self.def.clone();
        let Kind::Reducers(reducers, initial) = &def.kind else {
            unreachable!("the column form folds with native reducers only")
        };
        let i = self.segment_for(ev.stream_id, ev.version, initial);
        let seg = &mut self.segments[i];
        seg.last = ev.version;
        // after an error nothing matters; the store's own markers ($...) are
        // skipped unless the reducers name them
        if seg.error.is_some() || ev.event_type.starts_with('$') && !reducers.names(ev.event_type) {
            return;
        }
        for step in reducers.steps_for(ev.event_type) {
            let Some(value) = reducer::operand(step, ev) else {
                continue; // the event lacks the step's source: skipped
            };
            seg.steps += 1;
            let at = At {
                seq: seg.steps,
                stream: ev.stream_id,
                version: ev.version,
                event_type: ev.event_type,
            };
            if let Err(e) = seg.run(step, value, &at) {
                seg.error = Some((at.seq, at.message(&e)));
                return;
            }
        }
    }

    /// The segment the event at `version` of `stream` continues, or a new
    /// one.
    fn segment_for(&mut self, stream: &str, version: i64, initial: &Val) -> usize {
        let continues = |s: &Segment| {
            s.last.checked_add(1) == Some(version)
                && same_bytes(s.stream.as_bytes(), stream.as_bytes())
        };
        // mostly the run the last event went to
        if let Some(s) = self.segments.get(self.current) {
            if continues(s) {
                return self.current;
            }
            // left: where it goes on, for when that event comes
            if let Some(n) = s.last.checked_add(1) {
                self.next.insert(n, self.current);
            }
        }
        let found = self
            .next
            .remove(&version)
            .filter(|&i| continues(&self.segments[i]));
        self.current = found.unwrap_or_else(|| {
            self.segments.push(Segment {
                stream: stream.to_owned(),
                first: version,
                last: version,
                // a stream's first event finds the initial state: what its
                // run does is then known, as in the ordered fold
                root: if version == 1 {
                    Node::Known(initial.clone())
                } else {
                    Node::Keep
                },
                checks: Vec::new(),
                error: None,
                steps: 0,
            });
            self.segments.len() - 1
        });
        self.current
    }

    /// The state: the segments in version order, applied to the initial
    /// state (the segments are left as they are).
    pub(crate) fn finish(&self) -> Result<Val, (pgrx::PgSqlErrorCode, String)> {
        use pgrx::PgSqlErrorCode::ERRCODE_DATA_EXCEPTION as DATA;
        let Kind::Reducers(_, initial) = &self.def.kind else {
            unreachable!("the column form folds with native reducers only")
        };
        let mut order: Vec<&Segment> = self.segments.iter().collect();
        order.sort_by(|a, b| a.stream.cmp(&b.stream).then(a.first.cmp(&b.first)));
        if let (Some(a), Some(b)) = (order.first(), order.last()) {
            if a.stream != b.stream {
                return Err((
                    DATA,
                    format!(
                        "es.fold without ORDER BY folds the events of one stream, and these are of \"{}\" and \"{}\"; give the order: es.fold(... ORDER BY ...)",
                        a.stream, b.stream
                    ),
                ));
            }
        }
        for w in order.windows(2) {
            if w[0].last >= w[1].first {
                return Err((
                    DATA,
                    format!(
                        "stream \"{}\" has version {} twice among the events folded; fold each event once",
                        w[1].stream, w[1].first
                    ),
                ));
            }
        }
        let mut state = initial.clone();
        for seg in order {
            // the first step to fail: a check the state does not pass, or the
            // segment's own error (after the checks of its step)
            let failed = seg
                .checks
                .iter()
                .find(|c| !holds(&mut state, &c.path, c.want))
                .map(|c| (c.seq, &c.message));
            let first = match (failed, &seg.error) {
                (Some(c), Some((seq, msg))) => Some(if c.0 <= *seq { c.1 } else { msg }),
                (Some(c), None) => Some(c.1),
                (None, Some((_, msg))) => Some(msg),
                (None, None) => None,
            };
            if let Some(msg) = first {
                return Err((DATA, msg.clone()));
            }
            apply(&seg.root, &mut state);
        }
        Ok(state)
    }
}

/// Where a step runs: for the messages of its errors.
struct At<'a> {
    seq: u64,
    stream: &'a str,
    version: i64,
    event_type: &'a str,
}

impl At<'_> {
    fn message(&self, e: &str) -> String {
        reducer::step_failed(self.stream, self.version, self.event_type, e)
    }
}

impl Segment {
    fn run(&mut self, s: &Step, value: Option<Val>, at: &At) -> Result<(), String> {
        // A run from a stream's first event holds a known state: its steps
        // run as the ordered fold runs them (no walk, no checks).
        if let Node::Known(v) = &mut self.root {
            return reducer::apply_at(s, v, 0, value);
        }
        match s.op {
            Op::Unset => {
                unset(&mut self.root, &s.path, 0);
                Ok(())
            }
            Op::Add | Op::Sub | Op::Inc => {
                // a value that is not a number fails before the state is looked at
                let n = reducer::number(s, value)?;
                walk(
                    &mut self.root,
                    s,
                    0,
                    Some(Val::Num(n)),
                    at,
                    &mut self.checks,
                )
            }
            _ => walk(&mut self.root, s, 0, value, at, &mut self.checks),
        }
    }
}

fn child<'a>(children: &'a mut Vec<(String, Node)>, key: &str) -> &'a mut Node {
    let i = match children.iter().position(|(k, _)| k == key) {
        Some(i) => i,
        None => {
            children.push((key.to_owned(), Node::Keep));
            children.len() - 1
        }
    };
    &mut children[i].1
}

/// Makes an untouched place, or one with only removals below, an object
/// (keeping the removals).
fn into_obj(node: &mut Node) {
    let kept = match std::mem::replace(node, Node::Keep) {
        Node::Edit(c) => c,
        _ => Vec::new(),
    };
    *node = Node::Obj(kept);
}

/// A step that finds its place as the sequential fold's `slot` does: `node`
/// is the place at the path's first `depth` keys.
fn walk(
    node: &mut Node,
    s: &Step,
    depth: usize,
    value: Option<Val>,
    at: &At,
    checks: &mut Vec<Check>,
) -> Result<(), String> {
    if depth == s.path.len() {
        return at_place(node, s, value, at, checks);
    }
    match node {
        Node::Known(v) => return reducer::apply_at(s, v, depth, value),
        Node::Gone => {
            // nothing there: the step creates it, as it does in any state
            *node = Node::Known(Val::Null);
            let Node::Known(v) = node else { unreachable!() };
            return reducer::apply_at(s, v, depth, value);
        }
        Node::Delta(_) | Node::Tail(_) => return Err(reducer::not_object(&s.path, depth)),
        Node::Keep | Node::Edit(_) => {
            checks.push(Check {
                seq: at.seq,
                path: s.path[..depth].to_vec(),
                want: Want::Object,
                message: at.message(&reducer::not_object(&s.path, depth)),
            });
            into_obj(node);
        }
        Node::Obj(_) => {}
    }
    let Node::Obj(children) = node else {
        unreachable!()
    };
    walk(
        child(children, &s.path[depth]),
        s,
        depth + 1,
        value,
        at,
        checks,
    )
}

/// The step at its place.
fn at_place(
    node: &mut Node,
    s: &Step,
    value: Option<Val>,
    at: &At,
    checks: &mut Vec<Check>,
) -> Result<(), String> {
    let depth = s.path.len();
    if let Node::Known(v) = node {
        return reducer::apply_at(s, v, depth, value);
    }
    let check = |want, message: String| Check {
        seq: at.seq,
        path: s.path.clone(),
        want,
        message: at.message(&message),
    };
    match s.op {
        Op::Set => *node = Node::Known(value.unwrap_or(Val::Null)),
        Op::Merge => merge(node, value.unwrap_or(Val::Null)),
        Op::Add | Op::Sub | Op::Inc => {
            let Some(Val::Num(n)) = value else {
                unreachable!("checked by Segment::run")
            };
            let sub = s.op == Op::Sub;
            let not_number = || format!("{} is not a number", reducer::place_name(&s.path));
            match node {
                Node::Gone => *node = Node::Known(Val::Num(Num::int(0).op(&n, sub))),
                Node::Keep | Node::Edit(_) => {
                    checks.push(check(Want::Number, not_number()));
                    *node = Node::Delta(Num::int(0).op(&n, sub));
                }
                Node::Delta(d) => *d = d.op(&n, sub),
                Node::Obj(_) | Node::Tail(_) => return Err(not_number()),
                Node::Known(_) => unreachable!(),
            }
        }
        Op::Append => {
            let v = value.unwrap_or(Val::Null);
            let not_array = || format!("append: {} is not an array", reducer::place_name(&s.path));
            match node {
                Node::Gone => *node = Node::Known(Val::Arr(vec![v])),
                Node::Keep | Node::Edit(_) => {
                    checks.push(check(Want::Array, not_array()));
                    *node = Node::Tail(vec![v]);
                }
                Node::Tail(items) => items.push(v),
                Node::Obj(_) | Node::Delta(_) => return Err(not_array()),
                Node::Known(_) => unreachable!(),
            }
        }
        Op::Unset => unreachable!("Segment::run"),
    }
    Ok(())
}

/// A JSON merge patch (RFC 7396) at a place, as `reducer::merge_patch`
/// would apply it to whatever is there.
fn merge(node: &mut Node, mut patch: Val) {
    patch.open();
    let Val::Obj(fields) = patch else {
        // not an object: it replaces the place
        *node = Node::Known(patch);
        return;
    };
    match node {
        Node::Known(v) => return reducer::merge_patch(v, Val::Obj(fields)),
        Node::Gone | Node::Delta(_) | Node::Tail(_) => {
            // nothing, a number or an array: replaced by an object
            let mut fresh = Val::Null;
            reducer::merge_patch(&mut fresh, Val::Obj(fields));
            *node = Node::Known(fresh);
            return;
        }
        Node::Keep | Node::Edit(_) => into_obj(node),
        Node::Obj(_) => {}
    }
    let Node::Obj(children) = node else {
        unreachable!()
    };
    for (k, v) in fields {
        let c = child(children, &k);
        if v == Val::Null {
            *c = Node::Gone;
        } else {
            merge(c, v);
        }
    }
}

/// An `unset` step below `node`, the place at the path's first `depth` keys.
fn unset(node: &mut Node, path: &[String], depth: usize) {
    if path.is_empty() {
        return;
    }
    match node {
        Node::Known(v) => return reducer::unset(v, &path[depth..]),
        // nothing there, or not an object: nothing to remove
        Node::Gone | Node::Delta(_) | Node::Tail(_) => return,
        Node::Keep => *node = Node::Edit(Vec::new()),
        Node::Edit(_) | Node::Obj(_) => {}
    }
    let (Node::Edit(children) | Node::Obj(children)) = node else {
        unreachable!()
    };
    let c = child(children, &path[depth]);
    if depth + 1 == path.len() {
        *c = Node::Gone;
    } else {
        unset(c, path, depth + 1);
    }
}

/// Whether the value at `path` of `state` is what a check wants (nothing
/// there passes every check: the step creates it).
fn holds(state: &mut Val, path: &[String], want: Want) -> bool {
    let mut cur = state;
    for key in path {
        cur.open();
        let Val::Obj(fields) = cur else {
            // an object above failed its own (earlier) check
            return true;
        };
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => cur = v,
            None => return true,
        }
    }
    cur.open();
    matches!(
        (want, &*cur),
        (_, Val::Null)
            | (Want::Object, Val::Obj(_))
            | (Want::Number, Val::Num(_))
            | (Want::Array, Val::Arr(_))
    )
}

/// Applies a segment's tree to the state before it.
fn apply(node: &Node, target: &mut Val) {
    match node {
        Node::Keep => {}
        Node::Known(v) => *target = v.clone(),
        Node::Delta(d) => match target {
            Val::Num(n) => *n = n.op(d, false),
            _ => *target = Val::Num(d.clone()), // null (a check refused anything else)
        },
        Node::Tail(items) => {
            target.open();
            match target {
                Val::Arr(a) => a.extend(items.iter().cloned()),
                _ => *target = Val::Arr(items.clone()),
            }
        }
        Node::Obj(children) => {
            target.open();
            if !matches!(target, Val::Obj(_)) {
                *target = Val::Obj(Vec::new());
            }
            let Val::Obj(fields) = target else {
                unreachable!()
            };
            apply_fields(children, fields);
        }
        Node::Edit(children) => {
            target.open();
            if let Val::Obj(fields) = target {
                apply_fields(children, fields);
            }
        }
        Node::Gone => *target = Val::Null, // (a field's removal is its parent's)
    }
}

fn apply_fields(children: &[(String, Node)], fields: &mut Vec<(String, Val)>) {
    for (k, c) in children {
        match c {
            Node::Keep => {}
            Node::Gone => fields.retain(|(f, _)| f != k),
            Node::Edit(_) => {
                if let Some((_, v)) = fields.iter_mut().find(|(f, _)| f == k) {
                    apply(c, v);
                }
            }
            c => {
                let i = match fields.iter().position(|(f, _)| f == k) {
                    Some(i) => i,
                    None => {
                        fields.push((k.clone(), Val::Null));
                        fields.len() - 1
                    }
                };
                apply(c, &mut fields[i].1);
            }
        }
    }
}
