//! A compiled validator for a subset of JSON Schema (draft 2020-12).
//!
//! The schema is compiled once into a flat list of nodes; validation reads
//! the instance through the [`Instance`] trait, so the extension checks
//! PostgreSQL's binary jsonb in place and the standalone harness
//! (`bench/tools/schema-compare`) checks serde_json values with the same
//! code. Nothing here depends on pgrx or PostgreSQL.
//!
//! Supported keywords: `type`, `enum`, `const`, `minimum`, `maximum`,
//! `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minLength`,
//! `maxLength`, `pattern`, `format` (`date-time`, `date`, `uuid`, `email`),
//! `items`, `prefixItems`, `minItems`, `maxItems`, `uniqueItems`,
//! `properties`, `required`, `additionalProperties`, `patternProperties`,
//! `minProperties`, `maxProperties`, `allOf`, `anyOf`, `oneOf`, `not`,
//! `$ref` (`#`, `#/$defs/NAME`, `#/definitions/NAME`), `$defs`,
//! `definitions`, and the annotations `$schema`, `$id` (root only),
//! `$comment`, `title`, `description`, `default`, `examples`, `deprecated`,
//! `readOnly`, `writeOnly`. Any other keyword is a compile error, so a schema
//! never seems to enforce something that is not checked.
//!
//! Numbers are compared as exact decimals ([`Decimal`]): a mantissa that fits
//! an i128 with at most 38 digits after the point. Only numbers outside that
//! range (over about 1.7e38, or with more than 38 significant fraction
//! digits) are compared as f64.
//!
//! `pattern` and `patternProperties` use the `regex` crate's syntax, an
//! unanchored search as JSON Schema says. It differs from ECMA-262 in that
//! look-around and backreferences are rejected at compile time and `\d`,
//! `\w`, `\s` match Unicode classes, not only ASCII.

use regex::Regex;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;

/// A JSON value as the schema compiler sees it (the schema document itself is
/// given in this form).
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    /// JSON number text, kept as text so no precision is lost.
    Num(String),
    Str(String),
    Arr(Vec<Lit>),
    Obj(Vec<(String, Lit)>),
}

impl Lit {
    /// Compact JSON text (numbers as given).
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        lit_json(self, &mut s);
        s
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// Exact decimal: `m * 10^-scale` with `scale <= 38`. Numbers whose
/// significant digits do not fit that fall back to f64 ([`Decimal::Approx`]);
/// comparisons that involve an `Approx` are f64 comparisons.
#[derive(Clone, Copy, Debug)]
pub enum Decimal {
    Exact { m: i128, scale: u32 },
    Approx(f64),
}

const MAX_SCALE: u32 = 38;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Decimal {
    /// Parses JSON number text (`-?digits[.digits][e[+-]digits]`). The result is
    /// normalised (no trailing zeros in the mantissa), so `1.0` and `1` parse
    /// alike. Allocates nothing.
    pub fn parse(text: &str) -> Option<Decimal> {
        let b = text.as_bytes();
        let mut i = 0;
        let neg = b.first() == Some(&b'-');
        if neg {
            i = 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int = &b[start..i];
        if int.is_empty() {
            return None;
        }
        let mut frac: &[u8] = &[];
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac = &b[s..i];
            if frac.is_empty() {
                return None;
            }
        }
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let eneg = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = exp
                    .saturating_mul(10)
                    .saturating_add(i64::from(b[i] - b'0'));
                i += 1;
            }
            if i == s {
                return None;
            }
            if eneg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return None;
        }
        let digits = || int.iter().chain(frac.iter()).copied();
        let total = int.len() + frac.len();
        let lead = digits().take_while(|&d| d == b'0').count();
        if lead == total {
            return Some(Decimal::Exact { m: 0, scale: 0 });
        }
        let trail = digits().rev().take_while(|&d| d == b'0').count();
        let sig = total - lead - trail;
        // value = significant digits * 10^e
        let e = exp
            .saturating_sub(frac.len() as i64)
            .saturating_add(trail as i64);
        let mut m: Option<i128> = Some(0);
        for d in digits().skip(lead).take(sig) {
            m = m
                .and_then(|m| m.checked_mul(10))
                .and_then(|m| m.checked_add(i128::from(d - b'0')));
        }
        if let Some(m) = m {
            let m = if neg { -m } else { m };
            if e >= 0 {
                let scaled = u32::try_from(e)
                    .ok()
                    .and_then(pow10)
                    .and_then(|p| m.checked_mul(p));
                if let Some(m) = scaled {
                    return Some(Decimal::Exact { m, scale: 0 });
                }
            } else if -e <= i64::from(MAX_SCALE) {
                return Some(Decimal::Exact {
                    m,
                    scale: (-e) as u32,
                });
            }
        }
        text.parse::<f64>().ok().map(Decimal::Approx)
    }

    /// Numeric order; exact unless one side is `Approx`.
    // Not `Ord`: that would also promise `Eq`, which the f64 fallback does not
    // structurally have; the name is the one callers expect.
    #[allow(clippy::should_implement_trait)]
    pub fn cmp(&self, other: &Decimal) -> Ordering {
        match (*self, *other) {
            (Decimal::Exact { m: a, scale: sa }, Decimal::Exact { m: b, scale: sb }) => {
                cmp_exact(a, sa, b, sb)
            }
            _ => self
                .to_f64()
                .partial_cmp(&other.to_f64())
                .unwrap_or(Ordering::Equal),
        }
    }

    /// A number with no fractional part (`1.0` is an integer).
    pub fn is_integer(&self) -> bool {
        match *self {
            Decimal::Exact { m, scale } => {
                scale == 0 || pow10(scale).map_or(m == 0, |p| m % p == 0)
            }
            Decimal::Approx(f) => f.is_finite() && f.fract() == 0.0,
        }
    }

    /// Whether `self / d` is an integer; exact for two exact decimals. `d` is
    /// never zero (the compiler requires `multipleOf` > 0).
    pub fn is_multiple_of(&self, d: &Decimal) -> bool {
        match (*self, *d) {
            (Decimal::Exact { m: a, scale: sa }, Decimal::Exact { m: b, scale: sb }) => {
                multiple_exact(a.unsigned_abs(), sa, b.unsigned_abs(), sb)
            }
            _ => {
                let q = self.to_f64() / d.to_f64();
                q.is_finite() && q.fract() == 0.0
            }
        }
    }

    fn to_f64(self) -> f64 {
        match self {
            Decimal::Exact { m, scale } => m as f64 / 10f64.powi(scale as i32),
            Decimal::Approx(f) => f,
        }
    }
}

fn cmp_exact(a: i128, sa: u32, b: i128, sb: u32) -> Ordering {
    if sa == sb || a == 0 || b == 0 {
        return a.cmp(&b);
    }
    if sa > sb {
        return cmp_exact(b, sb, a, sa).reverse();
    }
    match pow10(sb - sa).and_then(|p| a.checked_mul(p)) {
        Some(x) => x.cmp(&b),
        // |a| scaled up exceeds every i128, so its sign decides
        None if a > 0 => Ordering::Greater,
        None => Ordering::Less,
    }
}

/// `a * 10^-sa` is a multiple of `b * 10^-sb` (magnitudes, `b` > 0).
fn multiple_exact(a: u128, sa: u32, b: u128, sb: u32) -> bool {
    if a == 0 {
        return true;
    }
    if sa >= sb {
        // b * 10^(sa-sb) must divide a; past u128 it exceeds a, so it cannot
        match 10u128.checked_pow(sa - sb).and_then(|p| b.checked_mul(p)) {
            Some(b) => a.is_multiple_of(b),
            None => false,
        }
    } else {
        // (a * 10^(sb-sa)) mod b, a digit at a time so nothing overflows
        let mut r = a % b;
        for _ in 0..(sb - sa) {
            r = match r.checked_mul(10) {
                Some(x) => x % b,
                None => (0..10).fold(0u128, |acc, _| {
                    // acc, r < b <= 2^127, so the sum fits
                    let s = acc + r;
                    if s >= b {
                        s - b
                    } else {
                        s
                    }
                }),
            };
        }
        r == 0
    }
}

/// What the validator needs from an instance value.
pub trait Instance: Sized {
    fn kind(&self) -> Kind;
    fn as_bool(&self) -> Option<bool>;
    fn as_str(&self) -> Option<&str>;
    /// For numbers.
    fn as_decimal(&self) -> Option<Decimal>;
    /// Elements of an array, pairs of an object, 0 otherwise.
    fn len(&self) -> usize;
    /// Object member.
    fn get(&self, key: &str) -> Option<Self>;
    /// Array element.
    fn element(&self, i: usize) -> Option<Self>;
    /// Object pairs; stops when `f` returns false.
    fn for_each_member(&self, f: &mut dyn FnMut(&str, Self) -> bool);
    /// Short JSON text for error messages.
    fn to_text(&self) -> String;
}

// ---------------------------------------------------------------------------
// Compiled form

const T_NULL: u8 = 1;
const T_BOOL: u8 = 2;
const T_NUMBER: u8 = 4;
const T_STRING: u8 = 8;
const T_ARRAY: u8 = 16;
const T_OBJECT: u8 = 32;
const T_INTEGER: u8 = 64;

const TYPE_NAMES: [(&str, u8, &str); 7] = [
    ("null", T_NULL, "null"),
    ("boolean", T_BOOL, "a boolean"),
    ("integer", T_INTEGER, "an integer"),
    ("number", T_NUMBER, "a number"),
    ("string", T_STRING, "a string"),
    ("array", T_ARRAY, "an array"),
    ("object", T_OBJECT, "an object"),
];

/// Deepest nesting of schema applications checked: only a recursive `$ref`
/// can reach it, and the limit keeps the native stack bounded.
const MAX_DEPTH: u32 = 500;

/// A compiled schema.
pub struct Schema {
    /// Node 0 is the root; `$ref`s are indices into this list.
    nodes: Vec<Node>,
}

enum Node {
    Bool(bool),
    Kw(Box<Kw>),
}

#[derive(Default)]
struct Kw {
    /// Bit set of T_*; 0 = any type.
    types: u8,
    /// Numbers need parsing only for `integer` or numeric keywords.
    needs_decimal: bool,
    enum_: Option<(Vec<Const>, String)>,
    const_: Option<(Const, String)>,
    num: Option<Box<NumKw>>,
    str_: Option<Box<StrKw>>,
    arr: Option<Box<ArrKw>>,
    obj: Option<Box<ObjKw>>,
    ref_: Option<usize>,
    all_of: Vec<usize>,
    any_of: Vec<usize>,
    one_of: Vec<usize>,
    not: Option<usize>,
}

struct Bound {
    value: Decimal,
    /// The schema's own spelling, for messages.
    text: String,
}

#[derive(Default)]
struct NumKw {
    minimum: Option<Bound>,
    maximum: Option<Bound>,
    exclusive_minimum: Option<Bound>,
    exclusive_maximum: Option<Bound>,
    multiple_of: Option<Bound>,
}

#[derive(Clone, Copy)]
enum Format {
    DateTime,
    Date,
    Uuid,
    Email,
}

#[derive(Default)]
struct StrKw {
    min_len: Option<usize>,
    max_len: Option<usize>,
    pattern: Option<Regex>,
    format: Option<Format>,
}

#[derive(Default)]
struct ArrKw {
    min_items: Option<usize>,
    max_items: Option<usize>,
    prefix: Vec<usize>,
    items: Option<usize>,
    unique: bool,
}

struct Prop {
    name: String,
    node: usize,
    required: bool,
}

#[derive(Default)]
struct ObjKw {
    /// In schema order, which is the order failures are reported in.
    props: Vec<Prop>,
    /// Indices into `props` sorted by name, for membership tests.
    by_name: Vec<usize>,
    /// Required names that `properties` does not list.
    extra_required: Vec<String>,
    min_props: Option<usize>,
    max_props: Option<usize>,
    patterns: Vec<(Regex, usize)>,
    additional: Option<usize>,
    additional_false: bool,
}

impl ObjKw {
    fn has_prop(&self, k: &str) -> bool {
        self.by_name
            .binary_search_by(|&i| self.props[i].name.as_str().cmp(k))
            .is_ok()
    }
}

/// An `enum` or `const` value prepared for comparison.
enum Const {
    Null,
    Bool(bool),
    Num(Decimal),
    Str(String),
    Arr(Vec<Const>),
    /// Keys unique (the last duplicate wins, as in a JSON parser).
    Obj(Vec<(String, Const)>),
}

// ---------------------------------------------------------------------------
// Compiling

fn at(path: &str, msg: &str) -> String {
    if path.is_empty() {
        format!("at the root: {msg}")
    } else {
        format!("at {path}: {msg}")
    }
}

fn child(path: &str, key: &str) -> String {
    let mut s = path.to_owned();
    if s.is_empty() && is_ident(key) {
        s.push_str(key);
    } else {
        push_key(&mut s, key);
    }
    s
}

fn child_index(path: &str, key: &str, i: usize) -> String {
    let mut s = child(path, key);
    let _ = write!(s, "[{i}]");
    s
}

struct Compiler {
    nodes: Vec<Node>,
    /// Schema path of each node, for compile errors found after the walk.
    paths: Vec<String>,
    /// "$defs/NAME" or "definitions/NAME" of the root -> node.
    defs: HashMap<String, usize>,
}

impl Schema {
    /// Compiles a schema document; `Err` says what is wrong and where, e.g.
    /// `at properties.amount: "minimum" must be a number`.
    pub fn compile(doc: &Lit) -> Result<Schema, String> {
        let mut c = Compiler {
            nodes: Vec::new(),
            paths: Vec::new(),
            defs: HashMap::new(),
        };
        let root = c.reserve(String::new());
        let mut defs = Vec::new();
        match doc {
            Lit::Bool(_) => {}
            Lit::Obj(pairs) => {
                // root definitions get their nodes first so any $ref can name them
                for (k, v) in pairs {
                    if k == "$defs" || k == "definitions" {
                        let Lit::Obj(entries) = v else {
                            return Err(at("", &format!("\"{k}\" must be an object of schemas")));
                        };
                        for (name, d) in entries {
                            let path = child(k, name);
                            let i = c.reserve(path.clone());
                            c.defs.insert(format!("{k}/{name}"), i);
                            defs.push((i, d, path));
                        }
                    }
                }
            }
            _ => return Err("the schema must be an object or a boolean".to_owned()),
        }
        c.fill(root, doc, "", true)?;
        for (i, d, path) in defs {
            c.fill(i, d, &path, false)?;
        }
        c.check_cycles()?;
        Ok(Schema { nodes: c.nodes })
    }
}

impl Compiler {
    fn reserve(&mut self, path: String) -> usize {
        self.nodes.push(Node::Bool(true));
        self.paths.push(path);
        self.nodes.len() - 1
    }

    fn sub(&mut self, lit: &Lit, path: String) -> Result<usize, String> {
        let i = self.reserve(path.clone());
        self.fill(i, lit, &path, false)?;
        Ok(i)
    }

    fn subs(&mut self, v: &Lit, path: &str, key: &str) -> Result<Vec<usize>, String> {
        match v {
            Lit::Arr(a) if !a.is_empty() => a
                .iter()
                .enumerate()
                .map(|(i, s)| self.sub(s, child_index(path, key, i)))
                .collect(),
            _ => Err(at(
                path,
                &format!("\"{key}\" must be a non-empty array of schemas"),
            )),
        }
    }

    fn fill(&mut self, i: usize, lit: &Lit, path: &str, is_root: bool) -> Result<(), String> {
        self.nodes[i] = match lit {
            Lit::Bool(b) => Node::Bool(*b),
            Lit::Obj(pairs) => Node::Kw(Box::new(self.keywords(pairs, path, is_root)?)),
            _ => return Err(at(path, "a schema must be an object or a boolean")),
        };
        Ok(())
    }

    fn keywords(
        &mut self,
        pairs: &[(String, Lit)],
        path: &str,
        is_root: bool,
    ) -> Result<Kw, String> {
        let mut kw = Kw::default();
        let mut num = NumKw::default();
        let mut st = StrKw::default();
        let mut arr = ArrKw::default();
        let mut obj = ObjKw::default();
        let mut required: Vec<String> = Vec::new();
        let mut props: Vec<(String, usize)> = Vec::new();
        let (mut has_num, mut has_str, mut has_arr, mut has_obj) = (false, false, false, false);
        for (k, v) in pairs {
            let err = |m: &str| at(path, &format!("\"{k}\" {m}"));
            match k.as_str() {
                "$schema" | "$comment" | "title" | "description" | "default" | "examples"
                | "deprecated" | "readOnly" | "writeOnly" => {}
                "$id" if is_root => {}
                "$id" => {
                    return Err(err(
                        "is only accepted at the root (a nested \"$id\" would change what \"$ref\" means)",
                    ))
                }
                "$defs" | "definitions" => {
                    let Lit::Obj(entries) = v else {
                        return Err(err("must be an object of schemas"));
                    };
                    // the root's are compiled up front; nested ones are only
                    // checked, since no supported $ref form can reach them
                    if !is_root {
                        for (name, d) in entries {
                            self.sub(d, child(&child(path, k), name))?;
                        }
                    }
                }
                "type" => kw.types = parse_types(v).map_err(|m| err(&m))?,
                "enum" => {
                    let Lit::Arr(a) = v else {
                        return Err(err("must be a non-empty array"));
                    };
                    if a.is_empty() {
                        return Err(err("must be a non-empty array"));
                    }
                    let list = a.iter().map(prep).collect::<Result<_, _>>().map_err(|m| err(&m))?;
                    kw.enum_ = Some((list, truncate(v.to_json(), 200)));
                }
                "const" => {
                    kw.const_ = Some((prep(v).map_err(|m| err(&m))?, truncate(v.to_json(), 200)));
                }
                "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
                    let bound = match v {
                        Lit::Num(t) => Decimal::parse(t).map(|value| Bound {
                            value,
                            text: t.clone(),
                        }),
                        _ => None,
                    };
                    let Some(bound) = bound else {
                        return Err(err("must be a number"));
                    };
                    has_num = true;
                    let slot = match k.as_str() {
                        "minimum" => &mut num.minimum,
                        "maximum" => &mut num.maximum,
                        "exclusiveMinimum" => &mut num.exclusive_minimum,
                        "exclusiveMaximum" => &mut num.exclusive_maximum,
                        _ => {
                            if bound.value.cmp(&Decimal::Exact { m: 0, scale: 0 }) != Ordering::Greater {
                                return Err(err("must be a number greater than 0"));
                            }
                            &mut num.multiple_of
                        }
                    };
                    *slot = Some(bound);
                }
                "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
                | "maxProperties" => {
                    let n = count(v).ok_or_else(|| err("must be a non-negative integer"))?;
                    let slot = match k.as_str() {
                        "minLength" => {
                            has_str = true;
                            &mut st.min_len
                        }
                        "maxLength" => {
                            has_str = true;
                            &mut st.max_len
                        }
                        "minItems" => {
                            has_arr = true;
                            &mut arr.min_items
                        }
                        "maxItems" => {
                            has_arr = true;
                            &mut arr.max_items
                        }
                        "minProperties" => {
                            has_obj = true;
                            &mut obj.min_props
                        }
                        _ => {
                            has_obj = true;
                            &mut obj.max_props
                        }
                    };
                    *slot = Some(n);
                }
                "pattern" => {
                    let Lit::Str(p) = v else {
                        return Err(err("must be a string"));
                    };
                    st.pattern = Some(regex(p).map_err(|m| err(&m))?);
                    has_str = true;
                }
                "format" => {
                    let Lit::Str(f) = v else {
                        return Err(err("must be a string"));
                    };
                    st.format = Some(match f.as_str() {
                        "date-time" => Format::DateTime,
                        "date" => Format::Date,
                        "uuid" => Format::Uuid,
                        "email" => Format::Email,
                        _ => {
                            return Err(err(&format!(
                                "{} is not supported (supported: date-time, date, uuid, email)",
                                json_quote(f)
                            )))
                        }
                    });
                    has_str = true;
                }
                "items" => {
                    if let Lit::Arr(_) = v {
                        return Err(err(
                            "as an array (the draft-07 tuple form) is not supported: use \"prefixItems\" for per-position schemas and \"items\" for the rest",
                        ));
                    }
                    arr.items = Some(self.sub(v, child(path, k))?);
                    has_arr = true;
                }
                "prefixItems" => {
                    arr.prefix = self.subs(v, path, k)?;
                    has_arr = true;
                }
                "uniqueItems" => {
                    let Lit::Bool(b) = v else {
                        return Err(err("must be a boolean"));
                    };
                    arr.unique = *b;
                    has_arr |= *b;
                }
                "properties" => {
                    let Lit::Obj(entries) = v else {
                        return Err(err("must be an object of schemas"));
                    };
                    let ppath = child(path, k);
                    for (name, s) in entries {
                        let node = self.sub(s, child(&ppath, name))?;
                        match props.iter_mut().find(|(n, _)| n == name) {
                            Some(p) => p.1 = node,
                            None => props.push((name.clone(), node)),
                        }
                    }
                    has_obj = true;
                }
                "required" => {
                    let names = match v {
                        Lit::Arr(a) => a
                            .iter()
                            .map(|x| match x {
                                Lit::Str(s) => Some(s.clone()),
                                _ => None,
                            })
                            .collect::<Option<Vec<_>>>(),
                        _ => None,
                    };
                    let Some(names) = names else {
                        return Err(err("must be an array of strings"));
                    };
                    for (i, n) in names.iter().enumerate() {
                        if names[..i].contains(n) {
                            return Err(err(&format!("lists {} twice", json_quote(n))));
                        }
                    }
                    required = names;
                    has_obj = true;
                }
                "additionalProperties" => {
                    obj.additional = Some(self.sub(v, child(path, k))?);
                    obj.additional_false = matches!(v, Lit::Bool(false));
                    has_obj = true;
                }
                "patternProperties" => {
                    let Lit::Obj(entries) = v else {
                        return Err(err("must be an object of schemas"));
                    };
                    let ppath = child(path, k);
                    for (p, s) in entries {
                        let re = regex(p).map_err(|m| at(&ppath, &m))?;
                        obj.patterns.push((re, self.sub(s, child(&ppath, p))?));
                    }
                    has_obj = true;
                }
                "allOf" => kw.all_of = self.subs(v, path, k)?,
                "anyOf" => kw.any_of = self.subs(v, path, k)?,
                "oneOf" => kw.one_of = self.subs(v, path, k)?,
                "not" => kw.not = Some(self.sub(v, child(path, k))?),
                "$ref" => {
                    let Lit::Str(r) = v else {
                        return Err(err("must be a string"));
                    };
                    kw.ref_ = Some(self.resolve(r).map_err(|m| err(&m))?);
                }
                other => {
                    return Err(at(
                        path,
                        &format!("unsupported keyword {}", json_quote(other)),
                    ))
                }
            }
        }
        if has_obj {
            for (name, node) in props {
                let required = required.contains(&name);
                obj.props.push(Prop {
                    name,
                    node,
                    required,
                });
            }
            obj.extra_required = required
                .into_iter()
                .filter(|r| !obj.props.iter().any(|p| &p.name == r))
                .collect();
            let mut by_name: Vec<usize> = (0..obj.props.len()).collect();
            by_name.sort_by(|&a, &b| obj.props[a].name.cmp(&obj.props[b].name));
            obj.by_name = by_name;
            kw.obj = Some(Box::new(obj));
        }
        if has_num {
            kw.num = Some(Box::new(num));
        }
        if has_str {
            kw.str_ = Some(Box::new(st));
        }
        if has_arr {
            kw.arr = Some(Box::new(arr));
        }
        kw.needs_decimal =
            kw.num.is_some() || (kw.types & T_INTEGER != 0 && kw.types & T_NUMBER == 0);
        Ok(kw)
    }

    fn resolve(&self, r: &str) -> Result<usize, String> {
        if r == "#" {
            return Ok(0);
        }
        let unsupported = || {
            format!(
                "{} is not supported: only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\" are; nothing is fetched from outside the schema",
                json_quote(r)
            )
        };
        let (kw, raw) = if let Some(n) = r.strip_prefix("#/$defs/") {
            ("$defs", n)
        } else if let Some(n) = r.strip_prefix("#/definitions/") {
            ("definitions", n)
        } else {
            return Err(unsupported());
        };
        let name = percent_decode(raw).ok_or_else(unsupported)?;
        if name.contains('/') {
            return Err(unsupported());
        }
        let name = name.replace("~1", "/").replace("~0", "~");
        self.defs
            .get(&format!("{kw}/{name}"))
            .copied()
            .ok_or_else(|| {
                format!(
                    "{}: the root's \"{kw}\" has no entry {}",
                    json_quote(r),
                    json_quote(&name)
                )
            })
    }

    /// Rejects schemas that would apply themselves to the same value forever
    /// (`$ref`, `allOf`, `anyOf`, `oneOf`, `not` loops that never descend).
    fn check_cycles(&self) -> Result<(), String> {
        let mut state = vec![0u8; self.nodes.len()];
        for n in 0..self.nodes.len() {
            if state[n] == 0 {
                self.visit(n, &mut state)?;
            }
        }
        Ok(())
    }

    fn visit(&self, n: usize, state: &mut [u8]) -> Result<(), String> {
        state[n] = 1;
        if let Node::Kw(kw) = &self.nodes[n] {
            let next = kw
                .ref_
                .iter()
                .chain(&kw.all_of)
                .chain(&kw.any_of)
                .chain(&kw.one_of)
                .chain(kw.not.iter());
            for &m in next {
                match state[m] {
                    0 => self.visit(m, state)?,
                    1 => {
                        return Err(at(
                            &self.paths[m],
                            "this schema leads back to itself for the same value without descending into it (endless recursion)",
                        ))
                    }
                    _ => {}
                }
            }
        }
        state[n] = 2;
        Ok(())
    }
}

fn parse_types(v: &Lit) -> Result<u8, String> {
    let one = |s: &str| {
        TYPE_NAMES
            .iter()
            .find(|t| t.0 == s)
            .map(|t| t.1)
            .ok_or_else(|| {
                format!(
                    "names an unknown type {} (known: null, boolean, integer, number, string, array, object)",
                    json_quote(s)
                )
            })
    };
    match v {
        Lit::Str(s) => one(s),
        Lit::Arr(a) if !a.is_empty() => {
            let mut mask = 0;
            for x in a {
                let Lit::Str(s) = x else {
                    return Err("must be a type name or a non-empty array of type names".to_owned());
                };
                let bit = one(s)?;
                if mask & bit != 0 {
                    return Err(format!("lists {} twice", json_quote(s)));
                }
                mask |= bit;
            }
            Ok(mask)
        }
        _ => Err("must be a type name or a non-empty array of type names".to_owned()),
    }
}

fn count(v: &Lit) -> Option<usize> {
    let Lit::Num(t) = v else { return None };
    match Decimal::parse(t)? {
        d @ Decimal::Exact { m, scale } if m >= 0 && d.is_integer() => {
            let int = m / pow10(scale)?;
            Some(usize::try_from(int).unwrap_or(usize::MAX))
        }
        _ => None,
    }
}

fn regex(p: &str) -> Result<Regex, String> {
    Regex::new(p).map_err(|e| {
        // the regex crate's message spans lines; its last line names the problem
        let e = e.to_string();
        let why = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        let why = why.trim().trim_start_matches("error: ");
        format!(
            "{} is not a valid regular expression ({why})",
            json_quote(p)
        )
    })
}

fn prep(l: &Lit) -> Result<Const, String> {
    Ok(match l {
        Lit::Null => Const::Null,
        Lit::Bool(b) => Const::Bool(*b),
        Lit::Num(t) => {
            Const::Num(Decimal::parse(t).ok_or_else(|| format!("holds a malformed number {t}"))?)
        }
        Lit::Str(s) => Const::Str(s.clone()),
        Lit::Arr(a) => Const::Arr(a.iter().map(prep).collect::<Result<_, _>>()?),
        Lit::Obj(o) => {
            let mut out: Vec<(String, Const)> = Vec::with_capacity(o.len());
            for (k, v) in o {
                let v = prep(v)?;
                match out.iter_mut().find(|(n, _)| n == k) {
                    Some(slot) => slot.1 = v,
                    None => out.push((k.clone(), v)),
                }
            }
            Const::Obj(out)
        }
    })
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------
// Validating

#[derive(Clone, Copy)]
struct Cx {
    /// Inside anyOf/oneOf/not: only pass or fail matters, so no message is built.
    quiet: bool,
    depth: u32,
}

impl Cx {
    fn deeper(self) -> Cx {
        Cx {
            quiet: self.quiet,
            depth: self.depth + 1,
        }
    }

    fn quietly(self) -> Cx {
        Cx {
            quiet: true,
            depth: self.depth + 1,
        }
    }

    fn fail(self, msg: impl FnOnce() -> String) -> Fail {
        if self.quiet {
            Fail::default()
        } else {
            Fail {
                segs: Vec::new(),
                msg: msg(),
            }
        }
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

/// A failure on its way up; each level adds its path segment, so the path is
/// only built when something fails (and not at all when quiet).
#[derive(Default)]
struct Fail {
    /// Innermost first.
    segs: Vec<Seg>,
    msg: String,
}

impl Fail {
    fn key(mut self, k: &str, cx: Cx) -> Fail {
        if !cx.quiet {
            self.segs.push(Seg::Key(k.to_owned()));
        }
        self
    }

    fn index(mut self, i: usize, cx: Cx) -> Fail {
        if !cx.quiet {
            self.segs.push(Seg::Index(i));
        }
        self
    }

    fn render(self, root: &str) -> String {
        let mut s = root.to_owned();
        for seg in self.segs.iter().rev() {
            match seg {
                Seg::Key(k) => push_key(&mut s, k),
                Seg::Index(i) => {
                    let _ = write!(s, "[{i}]");
                }
            }
        }
        s.push_str(": ");
        s.push_str(&self.msg);
        s
    }
}

fn short<I: Instance>(v: &I) -> String {
    truncate(v.to_text(), 80)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Schema {
    /// `Ok(())` or `Err` naming the first failing place, rooted at `root`,
    /// e.g. `data.items[2].sku: "ab" is shorter than 3 characters`.
    /// Allocates nothing unless the value fails.
    pub fn validate<I: Instance>(&self, root: &str, value: &I) -> Result<(), String> {
        self.check(
            0,
            value,
            Cx {
                quiet: false,
                depth: 0,
            },
        )
        .map_err(|f| f.render(root))
    }

    fn check<I: Instance>(&self, n: usize, v: &I, cx: Cx) -> Result<(), Fail> {
        let kw = match &self.nodes[n] {
            Node::Bool(true) => return Ok(()),
            Node::Bool(false) => {
                return Err(
                    cx.fail(|| format!("{} is not allowed here (the schema is false)", short(v)))
                )
            }
            Node::Kw(kw) => kw,
        };
        if cx.depth > MAX_DEPTH {
            return Err(cx.fail(|| {
                format!("the value is nested too deeply to check (over {MAX_DEPTH} levels)")
            }));
        }
        let kind = v.kind();
        let dec = if kind == Kind::Number && kw.needs_decimal {
            match v.as_decimal() {
                Some(d) => Some(d),
                None => return Err(cx.fail(|| format!("{} cannot be read as a number", short(v)))),
            }
        } else {
            None
        };
        if kw.types != 0 && !type_ok(kw.types, kind, dec) {
            return Err(cx.fail(|| {
                let names: Vec<&str> = TYPE_NAMES
                    .iter()
                    .filter(|t| kw.types & t.1 != 0)
                    .map(|t| t.2)
                    .collect();
                format!("{} is not {}", short(v), names.join(" or "))
            }));
        }
        if let Some((list, text)) = &kw.enum_ {
            if !list.iter().any(|c| eq_const(v, c)) {
                return Err(cx.fail(|| format!("{} is not one of {text}", short(v))));
            }
        }
        if let Some((c, text)) = &kw.const_ {
            if !eq_const(v, c) {
                return Err(cx.fail(|| format!("{} is not {text}", short(v))));
            }
        }
        match kind {
            Kind::Number => {
                if let (Some(num), Some(d)) = (&kw.num, dec) {
                    check_number(num, d, v, cx)?;
                }
            }
            Kind::String => {
                if let Some(st) = &kw.str_ {
                    check_string(st, v, cx)?;
                }
            }
            Kind::Array => {
                if let Some(arr) = &kw.arr {
                    self.check_array(arr, v, cx)?;
                }
            }
            Kind::Object => {
                if let Some(obj) = &kw.obj {
                    self.check_object(obj, v, cx)?;
                }
            }
            Kind::Null | Kind::Bool => {}
        }
        if let Some(r) = kw.ref_ {
            self.check(r, v, cx.deeper())?;
        }
        for &s in &kw.all_of {
            self.check(s, v, cx.deeper())?;
        }
        if !kw.any_of.is_empty()
            && !kw
                .any_of
                .iter()
                .any(|&s| self.check(s, v, cx.quietly()).is_ok())
        {
            return Err(cx.fail(|| {
                format!(
                    "{} does not match any of the schemas in \"anyOf\"",
                    short(v)
                )
            }));
        }
        if !kw.one_of.is_empty() {
            let mut first = None;
            for (i, &s) in kw.one_of.iter().enumerate() {
                if self.check(s, v, cx.quietly()).is_ok() {
                    if let Some(f) = first {
                        return Err(cx.fail(|| {
                            format!(
                                "{} matches more than one of the schemas in \"oneOf\" ([{f}] and [{i}])",
                                short(v)
                            )
                        }));
                    }
                    first = Some(i);
                }
            }
            if first.is_none() {
                return Err(cx.fail(|| {
                    format!(
                        "{} does not match any of the schemas in \"oneOf\"",
                        short(v)
                    )
                }));
            }
        }
        if let Some(s) = kw.not {
            if self.check(s, v, cx.quietly()).is_ok() {
                return Err(cx.fail(|| format!("{} matches the schema in \"not\"", short(v))));
            }
        }
        Ok(())
    }

    fn check_array<I: Instance>(&self, arr: &ArrKw, v: &I, cx: Cx) -> Result<(), Fail> {
        let len = v.len();
        if let Some(min) = arr.min_items {
            if len < min {
                return Err(cx.fail(|| {
                    format!(
                        "the array has {}, fewer than the minimum {min}",
                        plural(len, "item", "items")
                    )
                }));
            }
        }
        if let Some(max) = arr.max_items {
            if len > max {
                return Err(cx.fail(|| {
                    format!(
                        "the array has {}, more than the maximum {max}",
                        plural(len, "item", "items")
                    )
                }));
            }
        }
        for (i, &s) in arr.prefix.iter().enumerate().take(len) {
            if let Some(e) = v.element(i) {
                self.check(s, &e, cx.deeper()).map_err(|f| f.index(i, cx))?;
            }
        }
        if let Some(s) = arr.items {
            for i in arr.prefix.len()..len {
                if let Some(e) = v.element(i) {
                    self.check(s, &e, cx.deeper()).map_err(|f| f.index(i, cx))?;
                }
            }
        }
        if arr.unique {
            for i in 1..len {
                let Some(a) = v.element(i) else { continue };
                for j in 0..i {
                    if v.element(j).is_some_and(|b| deep_eq(&a, &b)) {
                        return Err(
                            cx.fail(|| format!("the array items [{j}] and [{i}] are equal"))
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn check_object<I: Instance>(&self, obj: &ObjKw, v: &I, cx: Cx) -> Result<(), Fail> {
        let len = v.len();
        if let Some(min) = obj.min_props {
            if len < min {
                return Err(cx.fail(|| {
                    format!(
                        "the object has {}, fewer than the minimum {min}",
                        plural(len, "property", "properties")
                    )
                }));
            }
        }
        if let Some(max) = obj.max_props {
            if len > max {
                return Err(cx.fail(|| {
                    format!(
                        "the object has {}, more than the maximum {max}",
                        plural(len, "property", "properties")
                    )
                }));
            }
        }
        for r in &obj.extra_required {
            if v.get(r).is_none() {
                return Err(cx.fail(|| format!("missing required property {}", json_quote(r))));
            }
        }
        let mut found = 0;
        for p in &obj.props {
            match v.get(&p.name) {
                Some(c) => {
                    found += 1;
                    self.check(p.node, &c, cx.deeper())
                        .map_err(|f| f.key(&p.name, cx))?;
                }
                None if p.required => {
                    return Err(
                        cx.fail(|| format!("missing required property {}", json_quote(&p.name)))
                    )
                }
                None => {}
            }
        }
        // Keys are unique, so when every member was a listed property there is
        // nothing for additionalProperties to see: the usual case skips the scan.
        if obj.patterns.is_empty() && (obj.additional.is_none() || found == len) {
            return Ok(());
        }
        let mut out = Ok(());
        v.for_each_member(&mut |k, c| {
            let mut matched = false;
            for (re, s) in &obj.patterns {
                if re.is_match(k) {
                    matched = true;
                    if let Err(f) = self.check(*s, &c, cx.deeper()) {
                        out = Err(f.key(k, cx));
                        return false;
                    }
                }
            }
            if let Some(a) = obj.additional {
                if !matched && !obj.has_prop(k) {
                    if obj.additional_false {
                        out = Err(cx.fail(|| format!("property {} is not allowed", json_quote(k))));
                        return false;
                    }
                    if let Err(f) = self.check(a, &c, cx.deeper()) {
                        out = Err(f.key(k, cx));
                        return false;
                    }
                }
            }
            true
        });
        out
    }
}

fn type_ok(mask: u8, kind: Kind, dec: Option<Decimal>) -> bool {
    let bit = match kind {
        Kind::Null => T_NULL,
        Kind::Bool => T_BOOL,
        Kind::Number => T_NUMBER,
        Kind::String => T_STRING,
        Kind::Array => T_ARRAY,
        Kind::Object => T_OBJECT,
    };
    mask & bit != 0
        || (kind == Kind::Number && mask & T_INTEGER != 0 && dec.is_some_and(|d| d.is_integer()))
}

fn check_number<I: Instance>(num: &NumKw, d: Decimal, v: &I, cx: Cx) -> Result<(), Fail> {
    if let Some(b) = &num.minimum {
        if d.cmp(&b.value) == Ordering::Less {
            return Err(cx.fail(|| format!("{} is less than the minimum {}", short(v), b.text)));
        }
    }
    if let Some(b) = &num.maximum {
        if d.cmp(&b.value) == Ordering::Greater {
            return Err(cx.fail(|| format!("{} is greater than the maximum {}", short(v), b.text)));
        }
    }
    if let Some(b) = &num.exclusive_minimum {
        if d.cmp(&b.value) != Ordering::Greater {
            return Err(cx.fail(|| {
                format!(
                    "{} is not greater than the exclusive minimum {}",
                    short(v),
                    b.text
                )
            }));
        }
    }
    if let Some(b) = &num.exclusive_maximum {
        if d.cmp(&b.value) != Ordering::Less {
            return Err(cx.fail(|| {
                format!(
                    "{} is not less than the exclusive maximum {}",
                    short(v),
                    b.text
                )
            }));
        }
    }
    if let Some(b) = &num.multiple_of {
        if !d.is_multiple_of(&b.value) {
            return Err(cx.fail(|| format!("{} is not a multiple of {}", short(v), b.text)));
        }
    }
    Ok(())
}

fn check_string<I: Instance>(st: &StrKw, v: &I, cx: Cx) -> Result<(), Fail> {
    let Some(s) = v.as_str() else { return Ok(()) };
    // A code point is 1 to 4 bytes, so the byte length often decides alone.
    if let Some(min) = st.min_len {
        if s.len() < min || (s.len() < min.saturating_mul(4) && s.chars().count() < min) {
            return Err(cx.fail(|| {
                format!(
                    "{} is shorter than {}",
                    short(v),
                    plural(min, "character", "characters")
                )
            }));
        }
    }
    if let Some(max) = st.max_len {
        if s.len() > max && s.chars().count() > max {
            return Err(cx.fail(|| {
                format!(
                    "{} is longer than {}",
                    short(v),
                    plural(max, "character", "characters")
                )
            }));
        }
    }
    if let Some(re) = &st.pattern {
        if !re.is_match(s) {
            return Err(cx.fail(|| {
                format!(
                    "{} does not match the pattern {}",
                    short(v),
                    json_quote(re.as_str())
                )
            }));
        }
    }
    if let Some(f) = st.format {
        let (ok, name) = match f {
            Format::DateTime => (valid_date_time(s), "date-time"),
            Format::Date => (valid_date(s.as_bytes()), "date"),
            Format::Uuid => (valid_uuid(s), "uuid"),
            Format::Email => (valid_email(s), "email address"),
        };
        if !ok {
            return Err(cx.fail(|| format!("{} is not a valid {name}", short(v))));
        }
    }
    Ok(())
}

fn eq_const<I: Instance>(v: &I, c: &Const) -> bool {
    match (v.kind(), c) {
        (Kind::Null, Const::Null) => true,
        (Kind::Bool, Const::Bool(b)) => v.as_bool() == Some(*b),
        (Kind::Number, Const::Num(d)) => {
            v.as_decimal().is_some_and(|x| x.cmp(d) == Ordering::Equal)
        }
        (Kind::String, Const::Str(s)) => v.as_str() == Some(s.as_str()),
        (Kind::Array, Const::Arr(a)) => {
            v.len() == a.len()
                && a.iter()
                    .enumerate()
                    .all(|(i, c)| v.element(i).is_some_and(|e| eq_const(&e, c)))
        }
        (Kind::Object, Const::Obj(o)) => {
            v.len() == o.len()
                && o.iter()
                    .all(|(k, c)| v.get(k).is_some_and(|e| eq_const(&e, c)))
        }
        _ => false,
    }
}

/// JSON equality of two instance values (numbers as decimals, key order ignored).
fn deep_eq<I: Instance>(a: &I, b: &I) -> bool {
    let kind = a.kind();
    if kind != b.kind() {
        return false;
    }
    match kind {
        Kind::Null => true,
        Kind::Bool => a.as_bool() == b.as_bool(),
        Kind::Number => match (a.as_decimal(), b.as_decimal()) {
            (Some(x), Some(y)) => x.cmp(&y) == Ordering::Equal,
            _ => false,
        },
        Kind::String => a.as_str() == b.as_str(),
        Kind::Array => {
            let n = a.len();
            n == b.len()
                && (0..n).all(|i| match (a.element(i), b.element(i)) {
                    (Some(x), Some(y)) => deep_eq(&x, &y),
                    _ => false,
                })
        }
        Kind::Object => {
            if a.len() != b.len() {
                return false;
            }
            let mut eq = true;
            a.for_each_member(&mut |k, x| {
                eq = b.get(k).is_some_and(|y| deep_eq(&x, &y));
                eq
            });
            eq
        }
    }
}

// ---------------------------------------------------------------------------
// Formats

fn num2(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

/// `YYYY-MM-DD`, a real calendar date.
fn valid_date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (num2(&b[0..4]), num2(&b[5..7]), num2(&b[8..10])) else {
        return false;
    };
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// RFC 3339 `date-time`: date `T` time, optional fraction, then `Z` or
/// `+HH:MM`/`-HH:MM` (the offset is required). `T` and `Z` may be lower case
/// as RFC 3339 allows; second 60 only where it is 23:59:60 in UTC.
fn valid_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || !valid_date(&b[..10]) || !matches!(b[10], b'T' | b't') {
        return false;
    }
    let t = &b[11..];
    if t[2] != b':' || t[5] != b':' {
        return false;
    }
    let (Some(h), Some(mi), Some(sec)) = (num2(&t[0..2]), num2(&t[3..5]), num2(&t[6..8])) else {
        return false;
    };
    if h > 23 || mi > 59 || sec > 60 {
        return false;
    }
    let mut rest = &t[8..];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &rest[1 + n..];
    }
    let offset: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (Some(oh), Some(om)) = (num2(&[*h1, *h2]), num2(&[*m1, *m2])) else {
                return false;
            };
            if oh > 23 || om > 59 {
                return false;
            }
            let o = i64::from(oh * 60 + om);
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return false,
    };
    sec < 60 || (i64::from(h * 60 + mi) - offset).rem_euclid(1440) == 23 * 60 + 59
}

const HEX: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).is_ascii_hexdigit();
        i += 1;
    }
    t
};

/// 8-4-4-4-12 hex digits, either case.
fn valid_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    // a table and a fold without early exit: this runs for every id in every event
    b.len() == 36
        && b[8] == b'-'
        && b[13] == b'-'
        && b[18] == b'-'
        && b[23] == b'-'
        && b.iter().enumerate().fold(true, |ok, (i, &c)| {
            ok & (HEX[c as usize] | matches!(i, 8 | 13 | 18 | 23))
        })
}

/// A deliberately simple `local@domain.tld`: one `@`, a non-empty local part,
/// a domain of non-empty dot-separated labels with at least one dot, and no
/// whitespace or control characters anywhere.
fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|l| !l.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

// ---------------------------------------------------------------------------
// Text

/// A name that reads as `a.b` in a path; anything else is written `a["b c"]`.
fn is_ident(k: &str) -> bool {
    let mut cs = k.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn push_key(out: &mut String, k: &str) {
    if is_ident(k) {
        out.push('.');
        out.push_str(k);
    } else {
        out.push('[');
        json_str(k, out);
        out.push(']');
    }
}

fn json_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    json_str(s, &mut out);
    out
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn lit_json(l: &Lit, out: &mut String) {
    match l {
        Lit::Null => out.push_str("null"),
        Lit::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Lit::Num(t) => out.push_str(t),
        Lit::Str(s) => json_str(s, out),
        Lit::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                lit_json(x, out);
            }
            out.push(']');
        }
        Lit::Obj(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(k, out);
                out.push(':');
                lit_json(x, out);
            }
            out.push('}');
        }
    }
}

/// At most `max` characters, marking a cut with an ellipsis.
fn truncate(mut s: String, max: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
        s.push('…');
    }
    s
}
