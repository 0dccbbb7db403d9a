//! The validator's `Instance` over serde_json values (what the jsonschema
//! crate reads) and over `Lit` (numbers kept as text, like jsonb's numeric).

use crate::json_schema::{Decimal, Instance, Kind, Lit};
use serde_json::Value;
use std::fmt::Write as _;

/// A schema document in the compiler's terms.
pub fn lit(v: &Value) -> Lit {
    match v {
        Value::Null => Lit::Null,
        Value::Bool(b) => Lit::Bool(*b),
        Value::Number(n) => Lit::Num(n.to_string()),
        Value::String(s) => Lit::Str(s.clone()),
        Value::Array(a) => Lit::Arr(a.iter().map(lit).collect()),
        Value::Object(o) => Lit::Obj(o.iter().map(|(k, v)| (k.clone(), lit(v))).collect()),
    }
}

/// Room for the shortest round-trip text of an f64 in exponent form.
struct Buf {
    b: [u8; 40],
    n: usize,
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

impl Instance for &Value {
    fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    fn as_bool(&self) -> Option<bool> {
        Value::as_bool(self)
    }

    fn as_str(&self) -> Option<&str> {
        Value::as_str(self)
    }

    fn as_decimal(&self) -> Option<Decimal> {
        let Value::Number(n) = self else { return None };
        if let Some(i) = n.as_i64() {
            return Some(Decimal::Exact {
                m: i128::from(i),
                scale: 0,
            });
        }
        if let Some(u) = n.as_u64() {
            return Some(Decimal::Exact {
                m: i128::from(u),
                scale: 0,
            });
        }
        // serde_json keeps only the f64; the decimal with the fewest fraction
        // digits that rounds to it is what the document spelled (100.1, not
        // 100.09999999999999). Scaling finds it for ordinary amounts without
        // formatting; the rest go through the shortest text.
        let f = n.as_f64()?;
        let mut p = 1.0f64;
        for scale in 0..=15u32 {
            let m = (f * p).round();
            if m.abs() < 9.0e15 && m / p == f {
                return Some(Decimal::Exact {
                    m: m as i128,
                    scale,
                });
            }
            p *= 10.0;
        }
        let mut buf = Buf { b: [0; 40], n: 0 };
        write!(buf, "{f:e}").ok()?;
        Decimal::parse(std::str::from_utf8(&buf.b[..buf.n]).ok()?)
    }

    fn len(&self) -> usize {
        match self {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        }
    }

    fn get(&self, key: &str) -> Option<Self> {
        self.as_object()?.get(key)
    }

    fn element(&self, i: usize) -> Option<Self> {
        self.as_array()?.get(i)
    }

    fn for_each_member(&self, f: &mut dyn FnMut(&str, Self) -> bool) {
        if let Some(o) = self.as_object() {
            for (k, v) in o {
                if !f(k, v) {
                    break;
                }
            }
        }
    }

    fn to_text(&self) -> String {
        self.to_string()
    }
}

/// Numbers stay as their text here, as in jsonb, so exact decimals that an
/// f64 cannot hold can be tested.
impl Instance for &Lit {
    fn kind(&self) -> Kind {
        match self {
            Lit::Null => Kind::Null,
            Lit::Bool(_) => Kind::Bool,
            Lit::Num(_) => Kind::Number,
            Lit::Str(_) => Kind::String,
            Lit::Arr(_) => Kind::Array,
            Lit::Obj(_) => Kind::Object,
        }
    }

    fn as_bool(&self) -> Option<bool> {
        match self {
            Lit::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Lit::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Lit::Num(t) => Decimal::parse(t),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            Lit::Arr(a) => a.len(),
            Lit::Obj(o) => o.len(),
            _ => 0,
        }
    }

    fn get(&self, key: &str) -> Option<Self> {
        match self {
            Lit::Obj(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn element(&self, i: usize) -> Option<Self> {
        match self {
            Lit::Arr(a) => a.get(i),
            _ => None,
        }
    }

    fn for_each_member(&self, f: &mut dyn FnMut(&str, Self) -> bool) {
        if let Lit::Obj(o) = self {
            for (k, v) in o {
                if !f(k, v) {
                    break;
                }
            }
        }
    }

    fn to_text(&self) -> String {
        self.to_json()
    }
}
