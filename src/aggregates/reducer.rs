//! Native reducers: a declarative fold, compiled once per definition and run
//! in Rust with no SQL call per event.
//!
//! ```json
//! {"MoneyDeposited": [{"add": "balance", "from": "$.amount"}, {"inc": "transactionCount"}]}
//! ```
//! Each event type maps to steps run in order on the state; `"*"` steps run
//! for every event, after the type's own. A `from` path that the event does
//! not have skips its step. `from` may also be an object whose values are
//! sources (`{"type": "$event_type", "amount": "$.amount"}`): it builds that
//! object from the event, leaving out the fields the event does not have.

use crate::pg::decimal::Num;
use crate::pg::fmgr::same_bytes;
use crate::pg::json_value::Val;
use crate::store::event::Event;
use rustc_hash::FxHashMap;
use std::cell::Cell;

#[derive(Debug)]
enum Source {
    Const(Val),
    Data(Vec<String>),
    Metadata(Vec<String>),
    Version,
    GlobalPosition,
    RecordedAt,
    EventType,
    StreamId,
    StreamType,
    EventId,
    /// An object built from the event, field by field.
    Object(Vec<(String, Source)>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Set,
    Add,
    Sub,
    Inc,
    Append,
    Merge,
    Unset,
}

const OPS: [(&str, Op); 7] = [
    ("set", Op::Set),
    ("add", Op::Add),
    ("sub", Op::Sub),
    ("inc", Op::Inc),
    ("append", Op::Append),
    ("merge", Op::Merge),
    ("unset", Op::Unset),
];

#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) op: Op,
    pub(crate) path: Vec<String>,
    src: Option<Source>,
    /// Where each key of `path` was found last time (a fold's states keep
    /// their fields in one order, so the next event finds them there at once).
    hints: Vec<Cell<u32>>,
}

#[derive(Debug, Default)]
pub(crate) struct Reducers {
    /// Each event type's steps, looked up once per event: by comparing
    /// the few a definition usually has, or for more through `index`.
    by_type: Vec<(String, Vec<Step>)>,
    /// Positions in `by_type` (FxHash, not SipHash: its keys are the
    /// definition's own event types; lookups cannot grow it).
    index: FxHashMap<String, usize>,
    every: Vec<Step>,
}

impl Source {
    fn row_only(&self) -> Option<&'static str> {
        match self {
            Source::GlobalPosition => Some("$global_position"),
            Source::RecordedAt => Some("$recorded_at"),
            Source::EventId => Some("$event_id"),
            Source::Object(fields) => fields.iter().find_map(|(_, s)| s.row_only()),
            _ => None,
        }
    }
}

fn parse_path(p: &str, allow_whole: bool) -> Result<Vec<String>, String> {
    if p.is_empty() {
        return if allow_whole {
            Ok(Vec::new())
        } else {
            Err("path must not be empty".into())
        };
    }
    let segs: Vec<String> = p.split('.').map(str::to_owned).collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(format!("\"{p}\" is not a path (empty segment)"));
    }
    Ok(segs)
}

fn parse_source(s: &str) -> Result<Source, String> {
    Ok(match s {
        "$" => Source::Data(Vec::new()),
        "$version" => Source::Version,
        "$global_position" => Source::GlobalPosition,
        "$recorded_at" => Source::RecordedAt,
        "$event_type" => Source::EventType,
        "$stream_id" => Source::StreamId,
        "$stream_type" => Source::StreamType,
        "$event_id" => Source::EventId,
        "$metadata" => Source::Metadata(Vec::new()),
        _ => {
            if let Some(rest) = s.strip_prefix("$metadata.") {
                Source::Metadata(parse_path(rest, false)?)
            } else if let Some(rest) = s.strip_prefix("$.") {
                Source::Data(parse_path(rest, false)?)
            } else {
                return Err(format!(
                    "\"from\": \"{s}\" is not a source: use \"$\", \"$.a.b\", \"$version\", \"$recorded_at\", \
                     \"$event_type\", \"$stream_id\", \"$stream_type\", \"$global_position\", \"$event_id\" or \"$metadata[.a.b]\""
                ));
            }
        }
    })
}

/// A `from` object template: every value a source string or a nested template.
fn parse_template(fields: &[(String, Val)]) -> Result<Source, String> {
    let mut out = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        let src = match v {
            Val::Str(s) => parse_source(s)?,
            Val::Obj(inner) => parse_template(inner)?,
            _ => {
                return Err(format!(
                    "\"from\" object: \"{k}\" must be a source string such as \"$.amount\" (or an object of them)"
                ))
            }
        };
        out.push((k.clone(), src));
    }
    Ok(Source::Object(out))
}

fn compile_step(v: &Val) -> Result<Step, String> {
    let Val::Obj(fields) = v else {
        return Err("a step must be a JSON object".into());
    };
    let mut op = None;
    let mut src = None;
    for (k, val) in fields {
        if let Some((_, o)) = OPS.iter().find(|(name, _)| name == k) {
            if op.is_some() {
                return Err(
                    "a step has exactly one of set, add, sub, inc, append, merge, unset".into(),
                );
            }
            let Val::Str(p) = val else {
                return Err(format!("\"{k}\" must name a path as a string"));
            };
            op = Some((*o, parse_path(p, *o == Op::Merge)?));
        } else if k == "from" {
            if src.is_some() {
                return Err("a step has \"from\" or \"value\", not both".into());
            }
            src = Some(match val {
                Val::Str(s) => parse_source(s)?,
                Val::Obj(fields) => parse_template(fields)?,
                _ => return Err("\"from\" must be a source string or an object of them".into()),
            });
        } else if k == "value" {
            if src.is_some() {
                return Err("a step has \"from\" or \"value\", not both".into());
            }
            src = Some(Source::Const(val.clone()));
        } else {
            return Err(format!(
                "unknown key \"{k}\" (steps are set, add, sub, inc, append, merge, unset, with from or value)"
            ));
        }
    }
    let Some((op, path)) = op else {
        return Err("a step needs one of set, add, sub, inc, append, merge, unset".into());
    };
    let name = OPS
        .iter()
        .find(|(_, o)| *o == op)
        .map(|(n, _)| *n)
        .unwrap_or("");
    match (op, &src) {
        (Op::Inc | Op::Unset, Some(_)) => {
            return Err(format!("\"{name}\" takes no \"from\" or \"value\""))
        }
        (Op::Inc | Op::Unset, None) => {}
        (_, None) => return Err(format!("\"{name}\" needs \"from\" or \"value\"")),
        (Op::Add | Op::Sub, Some(Source::Const(v))) if !matches!(v, Val::Num(_)) => {
            return Err(format!("\"{name}\" needs a number as \"value\""))
        }
        (Op::Add | Op::Sub, Some(Source::Object(_))) => {
            return Err(format!(
                "\"{name}\" needs a number, not an object built by \"from\""
            ))
        }
        (Op::Merge, Some(Source::Const(v))) if !matches!(v, Val::Obj(_)) => {
            return Err("\"merge\" needs an object as \"value\"".into())
        }
        _ => {}
    }
    let hints = path.iter().map(|_| Cell::new(0)).collect();
    Ok(Step {
        op,
        path,
        src,
        hints,
    })
}

impl Reducers {
    /// Compiles (and so validates) a reducers definition.
    pub(crate) fn compile(def: &Val) -> Result<Reducers, String> {
        let Val::Obj(types) = def else {
            return Err(
                "reducers must be a JSON object mapping event types to lists of steps".into(),
            );
        };
        let mut r = Reducers::default();
        for (event_type, steps) in types {
            if event_type.is_empty() {
                return Err("an event type must not be empty".into());
            }
            let Val::Arr(list) = steps else {
                return Err(format!(
                    "reducers.{event_type} must be a JSON array of steps"
                ));
            };
            let mut compiled = Vec::with_capacity(list.len());
            for (i, s) in list.iter().enumerate() {
                compiled
                    .push(compile_step(s).map_err(|e| format!("reducers.{event_type}[{i}]: {e}"))?);
            }
            if event_type == "*" {
                r.every = compiled;
            } else {
                // (a JSON object's keys are unique; a repeated one would replace)
                match r.index.get(event_type.as_str()) {
                    Some(&i) => r.by_type[i].1 = compiled,
                    None => {
                        r.index.insert(event_type.clone(), r.by_type.len());
                        r.by_type.push((event_type.clone(), compiled));
                    }
                }
            }
        }
        Ok(r)
    }

    /// Whether the reducers name this event type (the store's own `$` types
    /// reach them only then).
    pub(crate) fn names(&self, event_type: &str) -> bool {
        self.find(event_type).is_some()
    }

    /// A source the steps read that only a whole `es.events` row carries
    /// (not among the columns es.fold's column form is given), if any.
    pub(crate) fn row_only_source(&self) -> Option<&'static str> {
        self.by_type
            .iter()
            .flat_map(|(_, steps)| steps)
            .chain(&self.every)
            .find_map(|s| s.src.as_ref()?.row_only())
    }

    /// The steps an event of this type runs, in order.
    pub(crate) fn steps_for<'a>(&'a self, event_type: &str) -> impl Iterator<Item = &'a Step> {
        self.find(event_type)
            .into_iter()
            .flatten()
            .chain(&self.every)
    }

    /// The steps of an event type, if the reducers name it.
    fn find(&self, event_type: &str) -> Option<&Vec<Step>> {
        const FEW: usize = 8;
        if self.by_type.len() <= FEW {
            let t = event_type.as_bytes();
            self.by_type
                .iter()
                .find(|(k, _)| same_bytes(k.as_bytes(), t))
                .map(|(_, steps)| steps)
        } else {
            self.index.get(event_type).map(|&i| &self.by_type[i].1)
        }
    }

    /// Applies one event to the state.
    pub(crate) fn apply(&self, state: &mut Val, ev: &Event) -> Result<(), String> {
        for s in self.steps_for(ev.event_type) {
            run_step(s, state, ev)?;
        }
        Ok(())
    }
}

fn source_value(src: &Source, ev: &Event) -> Option<Val> {
    Some(match src {
        Source::Const(v) => v.clone(),
        Source::Data(p) if p.is_empty() => Val::from_container(ev.data),
        Source::Data(p) => Val::from_jsonb_value(&ev.data.path(p)?),
        Source::Metadata(p) if p.is_empty() => Val::from_container(ev.metadata()),
        Source::Metadata(p) => Val::from_jsonb_value(&ev.metadata().path(p)?),
        Source::Version => Val::Num(Num::int(ev.version)),
        Source::GlobalPosition => Val::Num(Num::int(ev.global_position)),
        Source::RecordedAt => Val::Str(ev.recorded_at_text()),
        Source::EventType => Val::Str(ev.event_type.to_owned()),
        Source::StreamId => Val::Str(ev.stream_id.to_owned()),
        Source::StreamType => Val::Str(ev.stream_type.to_owned()),
        Source::EventId => Val::Str(ev.event_id_text()),
        Source::Object(fields) => Val::Obj(
            fields
                .iter()
                .filter_map(|(k, s)| source_value(s, ev).map(|v| (k.clone(), v)))
                .collect(),
        ),
    })
}

/// The place a path names, created (as null) when missing. `state` is the
/// value at the path's first `depth` keys (the whole state for 0). `hints`:
/// one per key, the index it was found at last time, tried first.
fn slot<'a>(
    state: &'a mut Val,
    path: &[String],
    hints: &[Cell<u32>],
    depth: usize,
) -> Result<&'a mut Val, String> {
    let mut cur = state;
    for i in depth..path.len() {
        let (key, hint) = (path[i].as_bytes(), &hints[i]);
        cur.open();
        if matches!(cur, Val::Null) {
            *cur = Val::Obj(Vec::new());
        }
        let Val::Obj(fields) = cur else {
            return Err(not_object(path, i));
        };
        let h = hint.get() as usize;
        let idx = if fields
            .get(h)
            .is_some_and(|(k, _)| same_bytes(k.as_bytes(), key))
        {
            h
        } else {
            let idx = match fields
                .iter()
                .position(|(k, _)| same_bytes(k.as_bytes(), key))
            {
                Some(idx) => idx,
                None => {
                    fields.push((path[i].clone(), Val::Null));
                    fields.len() - 1
                }
            };
            hint.set(idx as u32);
            idx
        };
        cur = &mut fields[idx].1;
    }
    Ok(cur)
}

/// The error of a step whose path passes through something not an object
/// at its first `i` keys.
pub(crate) fn not_object(path: &[String], i: usize) -> String {
    format!(
        "state.{} is not an object",
        if i == 0 {
            "(root)".to_owned()
        } else {
            path[..i].join(".")
        }
    )
}

/// The message of a step that failed with `e` on an event.
pub(crate) fn step_failed(stream_id: &str, version: i64, event_type: &str, e: &str) -> String {
    format!("folding stream \"{stream_id}\" version {version} ({event_type}): {e}")
}

/// How errors name the place a path names.
pub(crate) fn place_name(path: &[String]) -> String {
    if path.is_empty() {
        "state".to_owned()
    } else {
        format!("state.{}", path.join("."))
    }
}

pub(crate) fn unset(state: &mut Val, path: &[String]) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut cur = state;
    for key in init {
        cur.open();
        let Val::Obj(fields) = cur else { return };
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => cur = v,
            None => return,
        }
    }
    cur.open();
    if let Val::Obj(fields) = cur {
        fields.retain(|(k, _)| k != last);
    }
}

/// JSON merge patch (RFC 7396).
pub(crate) fn merge_patch(target: &mut Val, patch: Val) {
    match patch {
        Val::Obj(p) => {
            target.open();
            if !matches!(target, Val::Obj(_)) {
                *target = Val::Obj(Vec::new());
            }
            let Val::Obj(fields) = target else {
                unreachable!()
            };
            for (k, v) in p {
                if v == Val::Null {
                    fields.retain(|(fk, _)| *fk != k);
                } else {
                    match fields.iter_mut().find(|(fk, _)| *fk == k) {
                        Some((_, existing)) => merge_patch(existing, v),
                        None => {
                            let mut fresh = Val::Null;
                            merge_patch(&mut fresh, v);
                            fields.push((k, fresh));
                        }
                    }
                }
            }
        }
        other => *target = other,
    }
}

fn run_step(s: &Step, state: &mut Val, ev: &Event) -> Result<(), String> {
    match operand(s, ev) {
        Some(value) => apply_at(s, state, 0, value),
        None => Ok(()), // the event lacks this field: skip the step
    }
}

/// The value a step applies: `None` when the event lacks its source (the
/// step is skipped), `Some(None)` for a step that takes none.
pub(crate) fn operand(s: &Step, ev: &Event) -> Option<Option<Val>> {
    match &s.src {
        Some(src) => source_value(src, ev).map(Some),
        None => Some(None),
    }
}

/// What an `add` or `sub` step is handed, when it is a number (it fails
/// otherwise, before it looks at the state); 1 for `inc`.
pub(crate) fn number(s: &Step, value: Option<Val>) -> Result<Num, String> {
    match value {
        None => Ok(Num::int(1)),
        Some(Val::Num(n)) => Ok(n),
        Some(_) => Err(format!(
            "{}: the event's value for {} is not a number",
            if s.op == Op::Sub { "sub" } else { "add" },
            place_name(&s.path)
        )),
    }
}

/// Runs a step with its operand on `place`, the value at the first `depth`
/// keys of the step's path (the state itself for 0).
pub(crate) fn apply_at(
    s: &Step,
    place: &mut Val,
    depth: usize,
    value: Option<Val>,
) -> Result<(), String> {
    match s.op {
        Op::Unset => unset(place, &s.path[depth..]),
        Op::Set => *slot(place, &s.path, &s.hints, depth)? = value.unwrap_or(Val::Null),
        Op::Merge => merge_patch(
            slot(place, &s.path, &s.hints, depth)?,
            value.unwrap_or(Val::Null),
        ),
        Op::Append => {
            let place = slot(place, &s.path, &s.hints, depth)?;
            place.open();
            match place {
                Val::Null => *place = Val::Arr(vec![value.unwrap_or(Val::Null)]),
                Val::Arr(a) => a.push(value.unwrap_or(Val::Null)),
                _ => return Err(format!("append: {} is not an array", place_name(&s.path))),
            }
        }
        Op::Add | Op::Sub | Op::Inc => {
            let operand = number(s, value)?;
            let place = slot(place, &s.path, &s.hints, depth)?;
            // the number is replaced in place (no state value dropped per event)
            let sub = s.op == Op::Sub;
            match place {
                Val::Null => *place = Val::Num(Num::int(0).op(&operand, sub)),
                Val::Num(n) => *n = n.op(&operand, sub),
                _ => return Err(format!("{} is not a number", place_name(&s.path))),
            }
        }
    }
    Ok(())
}
