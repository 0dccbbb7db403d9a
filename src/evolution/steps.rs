//! Declarative upcasting steps: small edits of an event's data, compiled
//! once from `es.upcasters.steps` and applied in order.
//!
//! `{"rename": "a.b", "to": "c"}` moves a value, `{"set": "p", "value": v}`
//! writes a constant, `{"set": "p", "from": "$.x"}` copies another value of
//! the data, `{"unset": "p"}` removes one. Paths are dotted object keys from
//! the data's root. A step whose source is missing does nothing, and so does
//! one that would have to write through something that is not an object:
//! reading old events must never fail.

use crate::pg::json_value::Val;
use crate::pg::jsonb::{Container, Value};
use crate::pg::jsonb_build::{JsonbWrite, Pairs, Writer};
use pgrx::pg_sys;

#[derive(Debug)]
pub(crate) enum Step {
    Rename {
        from: Vec<String>,
        to: Vec<String>,
    },
    SetValue {
        path: Vec<String>,
        value: Val,
    },
    SetFrom {
        path: Vec<String>,
        from: Vec<String>,
    },
    Unset {
        path: Vec<String>,
    },
}

fn path(what: &str, v: Option<&Val>) -> Result<Vec<String>, String> {
    let Some(Val::Str(s)) = v else {
        return Err(format!(
            "\"{what}\" must be a dotted path such as \"amount\" or \"money.amount\""
        ));
    };
    let parts: Vec<String> = s.split('.').map(str::to_owned).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "\"{what}\": \"{s}\" is not a dotted path (empty key)"
        ));
    }
    Ok(parts)
}

/// `"$.a.b"` (or `"$"` for the whole data) as keys.
fn source(v: Option<&Val>) -> Result<Vec<String>, String> {
    let bad = || "\"from\" must be a path into the data such as \"$.amount\"".to_string();
    let Some(Val::Str(s)) = v else {
        return Err(bad());
    };
    if s == "$" {
        return Ok(Vec::new());
    }
    let Some(rest) = s.strip_prefix("$.") else {
        return Err(bad());
    };
    path("from", Some(&Val::Str(rest.to_owned())))
}

/// Compiles a steps array, saying which step is wrong and why.
pub(crate) fn compile(steps: &Val) -> Result<Vec<Step>, String> {
    let Val::Arr(items) = steps else {
        return Err("steps must be a JSON array of step objects".into());
    };
    if items.is_empty() {
        return Err("steps must not be empty".into());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, s)| compile_one(s).map_err(|e| format!("steps[{i}]: {e}")))
        .collect()
}

fn compile_one(s: &Val) -> Result<Step, String> {
    let Val::Obj(fields) = s else {
        return Err("a step must be a JSON object".into());
    };
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let allow = |keys: &[&str]| -> Result<(), String> {
        match fields.iter().find(|(k, _)| !keys.contains(&k.as_str())) {
            Some((k, _)) => Err(format!("unknown key \"{k}\" in this step")),
            None => Ok(()),
        }
    };
    if get("rename").is_some() {
        allow(&["rename", "to"])?;
        let from = path("rename", get("rename"))?;
        let to = path("to", get("to"))?;
        if from == to {
            return Err("\"rename\" and \"to\" name the same path".into());
        }
        return Ok(Step::Rename { from, to });
    }
    if get("set").is_some() {
        let p = path("set", get("set"))?;
        return match (get("value"), get("from")) {
            (Some(v), None) => {
                allow(&["set", "value"])?;
                Ok(Step::SetValue {
                    path: p,
                    value: v.clone(),
                })
            }
            (None, Some(_)) => {
                allow(&["set", "from"])?;
                Ok(Step::SetFrom {
                    path: p,
                    from: source(get("from"))?,
                })
            }
            _ => Err("\"set\" takes exactly one of \"value\" and \"from\"".into()),
        };
    }
    if get("unset").is_some() {
        allow(&["unset"])?;
        return Ok(Step::Unset {
            path: path("unset", get("unset"))?,
        });
    }
    Err(r#"a step is {"rename": p, "to": q}, {"set": p, "value": v}, {"set": p, "from": "$.x"} or {"unset": p}"#.into())
}

/// An object key, borrowed: bytes inside the stored jsonb or a compiled
/// step's path, both of which outlive the edit (`Edit::new`'s and
/// `Edit::apply`'s contracts). No key is copied per event.
#[derive(Clone, Copy)]
pub(crate) struct Key(*const u8, usize);

impl Key {
    fn of(s: &str) -> Key {
        Key(s.as_ptr(), s.len())
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the bytes of a key that outlives the edit (see the type's comment).
        unsafe { std::slice::from_raw_parts(self.0, self.1) }
    }

    fn is(&self, k: &str) -> bool {
        self.bytes() == k.as_bytes()
    }

    fn to_string_lossy(self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

/// The data being edited, expanded only along the steps' paths: values no
/// step touches stay in jsonb's binary form and are copied as they are
/// when the result is built (no conversion to a Rust tree and back).
pub(crate) enum Node {
    /// A value read out of the stored jsonb (a scalar, or a container in
    /// binary form).
    Raw(pg_sys::JsonbValue),
    /// An object expanded one level: its members in stored order.
    Obj(Vec<(Key, Node)>),
    /// A value a step wrote.
    New(Val),
}

impl Node {
    /// Expands a raw object into its members; other values stay as they are.
    fn expand(&mut self) {
        if let Node::Raw(v) = self {
            if let Some(c) = Value(*v).container().filter(|c| c.is_object()) {
                *self = Node::Obj(members(c));
            }
        }
    }

    fn is_object(&mut self) -> bool {
        self.expand();
        matches!(self, Node::Obj(_))
    }

    fn lookup(&mut self, keys: &[String]) -> Option<&mut Node> {
        let Some((first, rest)) = keys.split_first() else {
            return Some(self);
        };
        self.expand();
        let Node::Obj(o) = self else { return None };
        let (_, child) = o.iter_mut().find(|(k, _)| k.is(first))?;
        child.lookup(rest)
    }

    fn remove(&mut self, keys: &[String]) -> Option<Node> {
        let (last, init) = keys.split_last()?;
        let parent = self.lookup(init)?;
        parent.expand();
        let Node::Obj(o) = parent else { return None };
        let i = o.iter().position(|(k, _)| k.is(last))?;
        Some(o.remove(i).1)
    }

    /// Whether an object can be reached (or created) at `keys`.
    fn writable(&mut self, keys: &[String]) -> bool {
        if !self.is_object() {
            return false;
        }
        let Some((first, rest)) = keys.split_first() else {
            return true;
        };
        let Node::Obj(o) = self else { return false };
        match o.iter_mut().find(|(k, _)| k.is(first)) {
            Some((_, child)) => child.writable(rest),
            None => true,
        }
    }

    /// Writes `value` at `keys`, creating missing objects; gives it back
    /// where a step of the way exists and is not an object.
    fn set(&mut self, keys: &[String], value: Node) -> Result<(), Node> {
        let Some((last, init)) = keys.split_last() else {
            *self = value;
            return Ok(());
        };
        // checked first, so that a refused write creates nothing
        if !self.writable(init) {
            return Err(value);
        }
        let mut cur: &mut Node = self;
        for k in init {
            cur.expand();
            let Node::Obj(o) = cur else { return Err(value) };
            let i = match o.iter().position(|(n, _)| n.is(k)) {
                Some(i) => i,
                None => {
                    o.push((Key::of(k), Node::Obj(Vec::new())));
                    o.len() - 1
                }
            };
            cur = &mut o[i].1;
        }
        cur.expand();
        let Node::Obj(o) = cur else { return Err(value) };
        match o.iter_mut().find(|(n, _)| n.is(last)) {
            Some((_, slot)) => *slot = value,
            None => o.push((Key::of(last), value)),
        }
        Ok(())
    }
}

impl JsonbWrite for Node {
    fn write(&self, w: &mut Writer) -> u32 {
        match self {
            Node::New(v) => v.write(w),
            // SAFETY: a value read out of the stored jsonb, which outlives the edit.
            Node::Raw(v) => unsafe { w.stored(v) },
            Node::Obj(o) => {
                let mut pairs: Pairs = o
                    .iter()
                    .map(|(k, v)| (k.bytes(), v as &dyn JsonbWrite))
                    .collect();
                w.object(&mut pairs)
            }
        }
    }

    fn is_container(&self) -> bool {
        match self {
            Node::New(v) => v.is_container(),
            Node::Raw(v) => v.type_ == pg_sys::jbvType::jbvBinary,
            Node::Obj(_) => true,
        }
    }
}

/// The members of an object container, one level deep.
fn members(c: Container) -> Vec<(Key, Node)> {
    c.pairs()
        .into_iter()
        .map(|(k, v)| (Key::of(k), Node::Raw(v.0)))
        .collect()
}

/// An event's data being edited by the steps of one or more consecutive
/// upcasters: built back into jsonb once, at the end.
pub(crate) enum Edit {
    Object(Node),
    /// Data that is not an object: every step's path starts with an
    /// object key, so no step changes it.
    Other(pg_sys::Datum),
}

impl Edit {
    /// # Safety
    /// `data` is a non-null jsonb datum that outlives the edit.
    pub(crate) unsafe fn new(data: pg_sys::Datum) -> Edit {
        let root = Container::from_datum(data);
        if root.is_object() {
            Edit::Object(Node::Obj(members(root)))
        } else {
            Edit::Other(data)
        }
    }

    /// Applies steps in order.
    ///
    /// # Safety
    /// `steps` outlive the edit: keys they write are borrowed from them.
    pub(crate) unsafe fn apply(&mut self, steps: &[Step]) {
        let node = match self {
            Edit::Object(n) => n,
            Edit::Other(_) => return,
        };
        for s in steps {
            match s {
                Step::Rename { from, to } => {
                    if let Some(v) = node.remove(from) {
                        if let Err(v) = node.set(to, v) {
                            let _ = node.set(from, v);
                        }
                    }
                }
                Step::SetValue { path, value } => {
                    let _ = node.set(path, Node::New(value.clone()));
                }
                Step::SetFrom { path, from } => {
                    if let Some(v) = node.lookup(from) {
                        let copy = match v {
                            Node::Raw(r) => Node::Raw(*r),
                            Node::New(v) => Node::New(v.clone()),
                            Node::Obj(_) => Node::New(to_val(v)),
                        };
                        let _ = node.set(path, copy);
                    }
                }
                Step::Unset { path } => {
                    node.remove(path);
                }
            }
        }
    }

    /// The edited data as a jsonb datum (in the current memory context).
    pub(crate) fn finish(self) -> pg_sys::Datum {
        match self {
            Edit::Other(d) => d,
            // the raw values point into the stored jsonb, which outlives the edit
            // (`Edit::new`'s contract)
            Edit::Object(node) => crate::pg::jsonb_build::to_datum(&node),
        }
    }
}

/// An expanded node as a tree (for copying one that a later step may edit).
fn to_val(n: &Node) -> Val {
    match n {
        Node::Raw(v) => Val::from_jsonb_value(&Value(*v)),
        Node::New(v) => v.clone(),
        Node::Obj(o) => Val::Obj(
            o.iter()
                .map(|(k, v)| (k.to_string_lossy(), to_val(v)))
                .collect(),
        ),
    }
}
