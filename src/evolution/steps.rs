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

fn lookup<'a>(v: &'a Val, keys: &[String]) -> Option<&'a Val> {
    keys.iter().try_fold(v, |cur, k| match cur {
        Val::Obj(o) => o.iter().find(|(n, _)| n == k).map(|(_, v)| v),
        _ => None,
    })
}

fn remove(v: &mut Val, keys: &[String]) -> Option<Val> {
    let (last, init) = keys.split_last()?;
    let mut cur = v;
    for k in init {
        cur = match cur {
            Val::Obj(o) => o.iter_mut().find(|(n, _)| n == k).map(|(_, v)| v)?,
            _ => return None,
        };
    }
    match cur {
        Val::Obj(o) => {
            let i = o.iter().position(|(n, _)| n == last)?;
            Some(o.remove(i).1)
        }
        _ => None,
    }
}

/// Writes `value` at `keys`, creating missing objects on the way; gives the
/// value back where a step of the way exists and is not an object.
fn set(v: &mut Val, keys: &[String], value: Val) -> Result<(), Val> {
    let Some((last, init)) = keys.split_last() else {
        *v = value;
        return Ok(());
    };
    // checked before anything is created, so a refused write leaves no trace
    let mut probe: &Val = v;
    for k in init {
        match probe {
            Val::Obj(o) => match o.iter().find(|(n, _)| n == k) {
                Some((_, next)) => probe = next,
                None => break,
            },
            _ => return Err(value),
        }
    }
    if !matches!(probe, Val::Obj(_)) {
        return Err(value);
    }
    let mut cur = v;
    for k in init {
        let Val::Obj(o) = cur else {
            return Err(value);
        };
        let i = match o.iter().position(|(n, _)| n == k) {
            Some(i) => i,
            None => {
                o.push((k.clone(), Val::Obj(Vec::new())));
                o.len() - 1
            }
        };
        cur = &mut o[i].1;
    }
    let Val::Obj(o) = cur else {
        return Err(value);
    };
    match o.iter_mut().find(|(n, _)| n == last) {
        Some((_, slot)) => *slot = value,
        None => o.push((last.clone(), value)),
    }
    Ok(())
}

/// Applies the steps in order to an event's data.
pub(crate) fn apply(steps: &[Step], data: &mut Val) {
    for s in steps {
        match s {
            Step::Rename { from, to } => {
                if let Some(v) = remove(data, from) {
                    if let Err(v) = set(data, to, v) {
                        // the target cannot be written: keep the value where it was
                        let _ = set(data, from, v);
                    }
                }
            }
            Step::SetValue { path, value } => {
                let _ = set(data, path, value.clone());
            }
            Step::SetFrom { path, from } => {
                if let Some(v) = lookup(data, from).cloned() {
                    let _ = set(data, path, v);
                }
            }
            Step::Unset { path } => {
                remove(data, path);
            }
        }
    }
}
