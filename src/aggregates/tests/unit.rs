//! Plain Rust tests (no PostgreSQL): exact decimals while they fit in an
//! i128 with a scale up to 38. Past that they go through PostgreSQL's numeric, which a test binary
//! without a server cannot link: those cases are in-backend (`reducers.rs`).

use crate::aggregates::reducer::Reducers;
use crate::pg::decimal::Num;
use crate::pg::json_value::Val;

fn num(s: &str) -> Num {
    Num::parse_exact(s).unwrap_or_else(|| panic!("{s} parses"))
}

#[test]
fn decimals_read_and_write_json_numbers_exactly() {
    for (text, shown) in [
        ("0.1", "0.1"),
        ("25.50", "25.50"),
        ("-0.01", "-0.01"),
        ("1e2", "100"),
        ("-1.5E-3", "-0.0015"),
        ("0", "0"),
        (
            "12345678901234567890.123456789",
            "12345678901234567890.123456789",
        ),
    ] {
        assert_eq!(num(text).to_string(), shown, "{text}");
    }
    assert_eq!(Num::int(-42).to_string(), "-42");
    for bad in ["", ".", "1.2.3", "abc", "1e", "--1"] {
        assert!(Num::parse_exact(bad).is_none(), "{bad:?} must not parse");
    }
    // 40 digits do not fit an i128: PostgreSQL's numeric takes over (in-backend).
    assert!(Num::parse_exact("1000000000000000000000000000000000000000").is_none());
    assert!(Num::parse_exact("1e-39").is_none(), "a scale over 38");
}

#[test]
fn decimals_add_and_subtract_exactly() {
    let add = |a: &str, b: &str| num(a).exact_op(&num(b), false).map(|n| n.to_string());
    let sub = |a: &str, b: &str| num(a).exact_op(&num(b), true).map(|n| n.to_string());
    assert_eq!(add("0.1", "0.2").as_deref(), Some("0.3"));
    assert_eq!(add("100", "25.50").as_deref(), Some("125.50"));
    assert_eq!(sub("10", "10.01").as_deref(), Some("-0.01"));
    assert_eq!(add("-1.5E-3", "1").as_deref(), Some("0.9985"));
    // the result would not fit: left to PostgreSQL's numeric
    let max = "170141183460469231731687303715884105727"; // i128::MAX
    assert_eq!(add(max, "1"), None);
}

fn obj(pairs: Vec<(&str, Val)>) -> Val {
    Val::Obj(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn text(s: &str) -> Val {
    Val::Str(s.to_owned())
}

#[test]
fn reducer_definitions_compile_or_say_what_is_wrong() {
    let deposit = obj(vec![("add", text("balance")), ("from", text("$.amount"))]);
    let ok = obj(vec![
        ("Deposited", Val::Arr(vec![deposit.clone()])),
        ("*", Val::Arr(vec![obj(vec![("inc", text("count"))])])),
    ]);
    assert!(Reducers::compile(&ok).is_ok());
    for (def, wanted) in [
        (Val::Arr(vec![]), "must be a JSON object"),
        (obj(vec![("", Val::Arr(vec![]))]), "must not be empty"),
        (
            obj(vec![("Deposited", deposit)]),
            "must be a JSON array of steps",
        ),
        (
            obj(vec![(
                "Deposited",
                Val::Arr(vec![obj(vec![("fly", text("x"))])]),
            )]),
            "reducers.Deposited[0]",
        ),
    ] {
        match Reducers::compile(&def) {
            Ok(_) => panic!("compiled, but should say {wanted:?}"),
            Err(e) => assert!(e.contains(wanted), "{e:?} does not say {wanted:?}"),
        }
    }
}
