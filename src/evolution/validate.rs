//! Checking an event's data against its type's schema on append, reading
//! jsonb in its binary form (no conversion to text or to a Rust tree).

use crate::evolution::json_schema::{Decimal, Instance, Kind, Lit, Schema};
use crate::evolution::registry::{self, Mode};
use crate::pg::decimal::Num;
use crate::pg::error::fail_hint;
use crate::pg::json_value::Val;
use crate::pg::jsonb::{Container, Value};
use pgrx::pg_sys::{self, Datum};
use pgrx::prelude::*;
use pgrx::IntoDatum;
use std::mem::MaybeUninit;

/// A schema document (or a constant) in the compiler's terms.
pub(crate) fn lit(v: &Val) -> Lit {
    match v {
        Val::Null => Lit::Null,
        Val::Bool(b) => Lit::Bool(*b),
        Val::Num(n) => Lit::Num(n.to_string()),
        Val::Str(s) => Lit::Str(s.clone()),
        Val::Arr(a) => Lit::Arr(a.iter().map(lit).collect()),
        Val::Obj(o) => Lit::Obj(o.iter().map(|(k, v)| (k.clone(), lit(v))).collect()),
        Val::Raw(r) => lit(&Val::from_container(r.container())),
    }
}

/// One jsonb value: an object or array (a container), or a scalar.
#[derive(Clone, Copy)]
pub(crate) enum J {
    Container(Container),
    Scalar(Value),
}

impl J {
    /// The root of a jsonb datum (a scalar root is unwrapped).
    ///
    /// # Safety
    /// `d` must be a non-null jsonb datum, alive while the value is used.
    pub(crate) unsafe fn root(d: Datum) -> J {
        J::from_container(Container::from_datum(d))
    }

    fn from_container(c: Container) -> J {
        if c.is_object() || c.is_array() {
            J::Container(c)
        } else {
            // a raw scalar: an array of one element flagged as scalar
            J::Scalar(c.ith(0).expect("a scalar root holds its value"))
        }
    }

    /// A value taken out of a container.
    pub(crate) fn of(v: Value) -> J {
        match v.container() {
            Some(c) => J::from_container(c),
            None => J::Scalar(v),
        }
    }
}

impl Instance for J {
    fn kind(&self) -> Kind {
        match self {
            J::Container(c) if c.is_object() => Kind::Object,
            J::Container(_) => Kind::Array,
            J::Scalar(v) => match v.0.type_ {
                pg_sys::jbvType::jbvNull => Kind::Null,
                pg_sys::jbvType::jbvBool => Kind::Bool,
                pg_sys::jbvType::jbvNumeric => Kind::Number,
                _ => Kind::String,
            },
        }
    }

    fn as_bool(&self) -> Option<bool> {
        match self {
            J::Scalar(v) if v.0.type_ == pg_sys::jbvType::jbvBool => {
                // SAFETY: the union member read is the one the type tag names.
                Some(unsafe { v.0.val.boolean })
            }
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            J::Scalar(v) => v.as_str(),
            _ => None,
        }
    }

    fn as_decimal(&self) -> Option<Decimal> {
        match self {
            J::Scalar(v) if v.0.type_ == pg_sys::jbvType::jbvNumeric => {
                // SAFETY: a numeric value's pointer, inside the container.
                match unsafe { Num::from_numeric(v.0.val.numeric) } {
                    Num::Dec { m, scale } => Some(Decimal::Exact { m, scale }),
                    Num::Big(s) => Decimal::parse(&s),
                }
            }
            _ => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            J::Container(c) => c.len() as usize,
            J::Scalar(_) => 0,
        }
    }

    fn get(&self, key: &str) -> Option<J> {
        match self {
            J::Container(c) => c.get(key).map(J::of),
            J::Scalar(_) => None,
        }
    }

    fn element(&self, i: usize) -> Option<J> {
        match self {
            J::Container(c) if c.is_array() => c.ith(i as u32).map(J::of),
            _ => None,
        }
    }

    fn for_each_member(&self, f: &mut dyn FnMut(&str, J) -> bool) {
        let J::Container(c) = self else { return };
        if !c.is_object() {
            return;
        }
        // SAFETY: `c` points into a detoasted jsonb that outlives the iteration; with
        // skipNested the values of nested containers come back as jbvBinary.
        let mut it = unsafe { pg_sys::JsonbIteratorInit(c.as_ptr()) };
        let mut key: Option<&str> = None;
        loop {
            let mut v = MaybeUninit::<pg_sys::JsonbValue>::zeroed();
            // SAFETY: `it` is the iterator made above; PostgreSQL frees it at WJB_DONE.
            let tok = unsafe { pg_sys::JsonbIteratorNext(&mut it, v.as_mut_ptr(), true) };
            // SAFETY: JsonbIteratorNext filled the value for the tokens read below.
            let v = Value(unsafe { v.assume_init() });
            use pg_sys::JsonbIteratorToken::*;
            match tok {
                WJB_DONE => return,
                WJB_KEY => key = v.as_str(),
                // the rest of the iteration is not needed; its memory goes with the
                // call's context
                WJB_VALUE if !f(key.unwrap_or_default(), J::of(v)) => return,
                _ => {}
            }
        }
    }

    fn to_text(&self) -> String {
        let v = match self {
            J::Container(c) => Val::from_container(*c),
            J::Scalar(v) => Val::from_jsonb_value(v),
        };
        let mut s = String::new();
        v.write_json(&mut s);
        if s.chars().count() > 60 {
            let cut: String = s.chars().take(57).collect();
            return format!("{cut}...");
        }
        s
    }
}

/// Checks the data of one event about to be appended (`place` names it in
/// the message: `data`, `events[2].data`) and returns the schema version it
/// is stored at. 23514 in enforce mode, a WARNING in warn mode.
pub(crate) fn check_append(event_type: &str, data: J, place: impl FnOnce() -> String) -> i32 {
    let reg = registry::get();
    let Some(entry) = reg.types.get(event_type) else {
        return 1;
    };
    if let Some((schema, mode)) = &entry.schema {
        if *mode != Mode::Off {
            let outcome = match schema {
                Ok(s) => s.validate(&place(), &data),
                Err(e) => Err(format!(
                    "the schema of event type \"{event_type}\" no longer compiles ({e}); define it again"
                )),
            };
            if let Err(msg) = outcome {
                let msg = format!("event type \"{event_type}\": {msg}");
                if *mode == Mode::Enforce {
                    fail_hint(
                        PgSqlErrorCode::ERRCODE_CHECK_VIOLATION,
                        msg,
                        "The event's data does not match its type's schema (es.event_types); nothing was appended.",
                    );
                }
                pgrx::warning!("{msg}");
            }
        }
    }
    entry.append_version()
}

crate::v1_function_info!(pg_finfo_es_check_event_schema);

/// es._check_event_schema(jsonb): compiles a schema or says what is wrong (22023).
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_check_event_schema(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let doc = Val::from_datum(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, 0));
    if let Err(e) = Schema::compile(&lit(&doc)) {
        fail_hint(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid event schema: {e}"),
            "A JSON Schema subset: type, properties, required, additionalProperties, enum, const, \
             minimum/maximum, minLength/maxLength, pattern, items, minItems/maxItems, format, \
             allOf/anyOf/oneOf/not, $ref to $defs (docs/schema-evolution.md).",
        );
    }
    pgrx::fcinfo::pg_return_void()
}

crate::v1_function_info!(pg_finfo_es_check_event);

/// es.check_event(event_type, data): NULL when the data matches the type's
/// schema (or the type has none), otherwise what is wrong; checks whatever
/// the type's mode, raises nothing.
///
/// # Safety
/// Called by PostgreSQL's function manager, with the `fcinfo` of a call whose
/// arguments match the function's SQL signature in `sql/`.
#[pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn es_check_event(fcinfo: pg_sys::FunctionCallInfo) -> Datum {
    let event_type = crate::pg::fmgr::arg_str(fcinfo, 0);
    let data = crate::pg::fmgr::arg_datum(fcinfo, 1);
    let (Some(event_type), Some(data)) = (event_type, data) else {
        return pgrx::fcinfo::pg_return_null(fcinfo);
    };
    let reg = registry::get();
    let outcome = match reg.types.get(event_type).and_then(|t| t.schema.as_ref()) {
        None => Ok(()),
        Some((Ok(s), _)) => s.validate("data", &J::root(data)),
        Some((Err(e), _)) => Err(format!("the schema no longer compiles: {e}")),
    };
    match outcome {
        Ok(()) => pgrx::fcinfo::pg_return_null(fcinfo),
        Err(msg) => msg
            .into_datum()
            .unwrap_or_else(|| pgrx::fcinfo::pg_return_null(fcinfo)),
    }
}
