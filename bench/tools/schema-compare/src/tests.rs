//! Every supported keyword accepted and rejected, the messages and paths,
//! and the compile errors for bad schemas.

use crate::instance::lit;
use crate::json_schema::{Decimal, Lit, Schema};
use serde_json::{json, Value};
use std::cmp::Ordering;

fn compile(s: Value) -> Schema {
    Schema::compile(&lit(&s)).unwrap_or_else(|e| panic!("{s} should compile: {e}"))
}

fn compile_err(s: Value) -> String {
    match Schema::compile(&lit(&s)) {
        Ok(_) => panic!("{s} should not compile"),
        Err(e) => e,
    }
}

fn check(s: &Schema, v: Value) -> Result<(), String> {
    s.validate("data", &&v)
}

fn ok(s: &Schema, v: Value) {
    if let Err(e) = check(s, v.clone()) {
        panic!("{v} should pass: {e}");
    }
}

fn bad(s: &Schema, v: Value) -> String {
    check(s, v.clone()).expect_err(&format!("{v} should fail"))
}

fn num(t: &str) -> Lit {
    Lit::Num(t.to_owned())
}

fn check_lit(s: &Schema, v: &Lit) -> Result<(), String> {
    s.validate("data", &v)
}

// ---- Decimal

fn dec(t: &str) -> Decimal {
    Decimal::parse(t).unwrap_or_else(|| panic!("{t} parses"))
}

#[test]
fn decimal_parse_normalises() {
    for (t, m, scale) in [
        ("0", 0, 0),
        ("-0.000", 0, 0),
        ("1.0", 1, 0),
        ("100.10", 1001, 1),
        ("-12.5e1", -125, 0),
        ("1e3", 1000, 0),
        ("1.5E-3", 15, 4),
        ("0.00000000000000000000000000000000000001", 1, 38),
    ] {
        match dec(t) {
            Decimal::Exact { m: gm, scale: gs } => assert_eq!((gm, gs), (m, scale), "{t}"),
            Decimal::Approx(_) => panic!("{t} should be exact"),
        }
    }
    for t in [
        "", "-", "1.", ".5", "01x", "1e", "1e+", "--1", "1.2.3", "NaN",
    ] {
        assert!(Decimal::parse(t).is_none(), "{t:?} should not parse");
    }
    // beyond i128 / 38 fraction digits: f64
    assert!(matches!(dec("1e-50"), Decimal::Approx(_)));
    assert!(matches!(dec("1e40"), Decimal::Approx(_)));
    assert!(matches!(
        dec("123456789012345678901234567890123456789012"),
        Decimal::Approx(_)
    ));
    // trailing zeros do not count against the range
    assert!(matches!(
        dec("1000000000000000000000000000000000000000000e-10"),
        Decimal::Exact { .. }
    ));
}

#[test]
fn decimal_compare_and_integer() {
    assert_eq!(dec("100.10").cmp(&dec("100.1")), Ordering::Equal);
    assert_eq!(
        dec("100.100000000000000000001").cmp(&dec("100.1")),
        Ordering::Greater
    );
    assert_eq!(dec("0.3").cmp(&dec("0.30000000000000004")), Ordering::Less);
    assert_eq!(dec("-1").cmp(&dec("-0.5")), Ordering::Less);
    assert_eq!(
        dec("1e37").cmp(&dec("0.00000000000000000000000000000000000001")),
        Ordering::Greater
    );
    assert_eq!(dec("-1e37").cmp(&dec("0.1")), Ordering::Less);
    assert_eq!(dec("1e40").cmp(&dec("5")), Ordering::Greater);
    // not normalised, as PostgreSQL's numeric can hand over
    let a = Decimal::Exact { m: 1000, scale: 3 };
    assert_eq!(a.cmp(&dec("1")), Ordering::Equal);
    assert!(a.is_integer());
    assert!(dec("1.0").is_integer());
    assert!(dec("-3e2").is_integer());
    assert!(!dec("1.5").is_integer());
    assert!(!Decimal::Exact { m: 1001, scale: 3 }.is_integer());
}

#[test]
fn decimal_multiple_of() {
    assert!(dec("0.3").is_multiple_of(&dec("0.1")));
    assert!(dec("19.99").is_multiple_of(&dec("0.01")));
    assert!(!dec("19.999").is_multiple_of(&dec("0.01")));
    assert!(dec("1e30").is_multiple_of(&dec("0.1")));
    assert!(dec("7.5").is_multiple_of(&dec("2.5")));
    assert!(!dec("7").is_multiple_of(&dec("5")));
    assert!(dec("-10").is_multiple_of(&dec("5")));
    assert!(dec("0").is_multiple_of(&dec("0.7")));
    // the scaled-up value passes i128: computed by remainder
    assert!(dec("170141183460469231731687303715884105727")
        .is_multiple_of(&dec("0.00000000000000000000000000000000000001")));
    assert!(!dec("3").is_multiple_of(&dec("170141183460469231731687303715884105727")));
}

// ---- type

#[test]
fn type_single_and_several() {
    let cases = [
        ("null", json!(null), json!(0), "data: 0 is not null"),
        (
            "boolean",
            json!(true),
            json!("true"),
            "data: \"true\" is not a boolean",
        ),
        (
            "number",
            json!(1.5),
            json!("x"),
            "data: \"x\" is not a number",
        ),
        (
            "integer",
            json!(-7),
            json!(1.5),
            "data: 1.5 is not an integer",
        ),
        ("string", json!("s"), json!(1), "data: 1 is not a string"),
        ("array", json!([]), json!({}), "data: {} is not an array"),
        ("object", json!({}), json!([]), "data: [] is not an object"),
    ];
    for (t, good, wrong, msg) in cases {
        let s = compile(json!({ "type": t }));
        ok(&s, good);
        assert_eq!(bad(&s, wrong), msg);
    }
    let s = compile(json!({"type": ["string", "null"]}));
    ok(&s, json!(null));
    ok(&s, json!("x"));
    assert_eq!(bad(&s, json!(1)), "data: 1 is not null or a string");
    let s = compile(json!({"type": ["integer", "number"]}));
    ok(&s, json!(1.5));
}

#[test]
fn integer_includes_zero_fractions() {
    let s = compile(json!({"type": "integer"}));
    ok(&s, json!(1.0));
    ok(&s, json!(-0.0));
    ok(&s, json!(1e3));
    assert!(check_lit(&s, &num("2.000")).is_ok());
    assert!(check_lit(&s, &num("10000000000000000000000000000000000000000000")).is_ok());
    assert_eq!(
        check_lit(&s, &num("2.0000000000000000000001")).unwrap_err(),
        "data: 2.0000000000000000000001 is not an integer"
    );
}

// ---- objects

#[test]
fn properties_required_additional() {
    let s = compile(json!({
        "type": "object",
        "required": ["account_id", "amount"],
        "properties": {"account_id": {"type": "string"}, "amount": {"type": "number"}},
        "additionalProperties": false
    }));
    ok(&s, json!({"account_id": "a", "amount": 1}));
    assert_eq!(
        bad(&s, json!({"amount": 1})),
        "data: missing required property \"account_id\""
    );
    assert_eq!(
        bad(&s, json!({"account_id": "a", "amount": "x"})),
        "data.amount: \"x\" is not a number"
    );
    assert_eq!(
        bad(&s, json!({"account_id": "a", "amount": 1, "extra": 0})),
        "data: property \"extra\" is not allowed"
    );
    // properties apply only to objects
    let s = compile(json!({"properties": {"a": {"type": "string"}}}));
    ok(&s, json!(5));
    ok(&s, json!({"b": 1}));
}

#[test]
fn required_without_properties_and_additional_schema() {
    let s = compile(json!({"required": ["x"], "additionalProperties": {"type": "integer"}}));
    ok(&s, json!({"x": 1, "y": 2}));
    assert_eq!(
        bad(&s, json!({"y": 2})),
        "data: missing required property \"x\""
    );
    assert_eq!(
        bad(&s, json!({"x": 1, "y": "no"})),
        "data.y: \"no\" is not an integer"
    );
    ok(&s, json!([1]));
}

#[test]
fn pattern_properties() {
    let s = compile(json!({
        "properties": {"id": {"type": "string"}},
        "patternProperties": {"^x-": {"type": "string"}, "^x-n": {"type": "number"}},
        "additionalProperties": false
    }));
    ok(&s, json!({"id": "1", "x-a": "s"}));
    assert_eq!(
        bad(&s, json!({"x-a": 1})),
        "data[\"x-a\"]: 1 is not a string"
    );
    // both patterns apply to "x-n..."
    assert_eq!(
        bad(&s, json!({"x-n": 1})),
        "data[\"x-n\"]: 1 is not a string"
    );
    assert_eq!(
        bad(&s, json!({"y": 1})),
        "data: property \"y\" is not allowed"
    );
    // a listed property that also matches a pattern gets both
    let s = compile(
        json!({"properties": {"ab": {"type": "string"}}, "patternProperties": {"b": {"minLength": 2}}}),
    );
    ok(&s, json!({"ab": "xy"}));
    assert_eq!(
        bad(&s, json!({"ab": "x"})),
        "data.ab: \"x\" is shorter than 2 characters"
    );
}

#[test]
fn paths_quote_odd_names() {
    let s = compile(
        json!({"properties": {"a b": {"properties": {"c\"d": {"type": "null"}, "_ok$1": {"type": "null"}}}}}),
    );
    assert_eq!(
        bad(&s, json!({"a b": {"c\"d": 1}})),
        "data[\"a b\"][\"c\\\"d\"]: 1 is not null"
    );
    assert_eq!(
        bad(&s, json!({"a b": {"_ok$1": 1}})),
        "data[\"a b\"]._ok$1: 1 is not null"
    );
    let s = compile(json!({"properties": {"1x": false}}));
    assert_eq!(
        bad(&s, json!({"1x": 1})),
        "data[\"1x\"]: 1 is not allowed here (the schema is false)"
    );
}

#[test]
fn min_max_properties() {
    let s = compile(json!({"minProperties": 1, "maxProperties": 2}));
    ok(&s, json!({"a": 1}));
    ok(&s, json!("not an object"));
    assert_eq!(
        bad(&s, json!({})),
        "data: the object has 0 properties, fewer than the minimum 1"
    );
    assert_eq!(
        bad(&s, json!({"a": 1, "b": 2, "c": 3})),
        "data: the object has 3 properties, more than the maximum 2"
    );
}

// ---- enum / const

#[test]
fn enum_values() {
    let s = compile(json!({"properties": {"currency": {"enum": ["EUR", "USD"]}}}));
    ok(&s, json!({"currency": "USD"}));
    assert_eq!(
        bad(&s, json!({"currency": "XYZ"})),
        "data.currency: \"XYZ\" is not one of [\"EUR\",\"USD\"]"
    );
    let s = compile(json!({"enum": [1, null, {"a": [1, 2]}, [true]]}));
    ok(&s, json!(1.0));
    ok(&s, json!(null));
    ok(&s, json!({"a": [1.0, 2]}));
    ok(&s, json!([true]));
    bad(&s, json!({"a": [1, 2], "b": 0}));
    bad(&s, json!([true, true]));
    bad(&s, json!("1"));
    bad(&s, json!(false));
}

#[test]
fn const_deep_equality() {
    let s = compile(json!({"const": {"a": [1, {"b": "x"}], "c": null}}));
    ok(&s, json!({"c": null, "a": [1.0, {"b": "x"}]}));
    assert_eq!(
        bad(&s, json!({"a": [1, {"b": "y"}], "c": null})),
        "data: {\"a\":[1,{\"b\":\"y\"}],\"c\":null} is not {\"a\":[1,{\"b\":\"x\"}],\"c\":null}"
    );
    // key order of the instance does not matter (Lit keeps the given order)
    let v = Lit::Obj(vec![
        ("c".into(), Lit::Null),
        (
            "a".into(),
            Lit::Arr(vec![
                num("1.00"),
                Lit::Obj(vec![("b".into(), Lit::Str("x".into()))]),
            ]),
        ),
    ]);
    assert!(check_lit(&s, &v).is_ok());
    let s = compile(json!({"const": 0.1}));
    assert!(check_lit(&s, &num("0.10")).is_ok());
    assert!(check_lit(&s, &num("0.1000000000000000000001")).is_err());
    let s = compile(json!({"const": "a"}));
    assert_eq!(bad(&s, json!("b")), "data: \"b\" is not \"a\"");
}

// ---- numbers

#[test]
fn number_bounds() {
    let s = compile(json!({"minimum": 1, "maximum": 10}));
    ok(&s, json!(1));
    ok(&s, json!(10.0));
    ok(&s, json!("strings are not numbers: bounds do not apply"));
    assert_eq!(bad(&s, json!(0.5)), "data: 0.5 is less than the minimum 1");
    assert_eq!(
        bad(&s, json!(11)),
        "data: 11 is greater than the maximum 10"
    );
    let s = compile(json!({"exclusiveMinimum": 0, "exclusiveMaximum": 100}));
    ok(&s, json!(0.0001));
    ok(&s, json!(99.9999));
    assert_eq!(
        bad(&s, json!(0)),
        "data: 0 is not greater than the exclusive minimum 0"
    );
    assert_eq!(
        bad(&s, json!(100)),
        "data: 100 is not less than the exclusive maximum 100"
    );
}

#[test]
fn exact_decimal_bounds() {
    let s = compile(json!({"maximum": 100.10}));
    // serde_json spells it 100.1; the bound keeps the schema's text in Lit form
    let s2 = Schema::compile(&Lit::Obj(vec![("maximum".into(), num("100.10"))])).expect("compiles");
    for s in [&s, &s2] {
        assert!(check_lit(s, &num("100.1")).is_ok());
        assert!(check_lit(s, &num("100.10000")).is_ok());
        assert!(check_lit(s, &num("10.01e1")).is_ok());
        assert_eq!(
            check_lit(s, &num("100.100000000000000000001"))
                .unwrap_err()
                .split(" is ")
                .next(),
            Some("data: 100.100000000000000000001")
        );
    }
    assert_eq!(
        check_lit(&s2, &num("100.100000000000000000001")).unwrap_err(),
        "data: 100.100000000000000000001 is greater than the maximum 100.10"
    );
    // no binary floating point drift
    let s = compile(json!({"maximum": 0.3, "minimum": 0.3}));
    ok(&s, json!(0.3));
    assert!(check_lit(&s, &num("0.30000000000000004")).is_err());
}

#[test]
fn multiple_of() {
    let s = compile(json!({"multipleOf": 0.01}));
    ok(&s, json!(0.3));
    ok(&s, json!(19.99));
    ok(&s, json!(1e10));
    assert_eq!(
        bad(&s, json!(0.001)),
        "data: 0.001 is not a multiple of 0.01"
    );
    let s = compile(json!({"multipleOf": 5}));
    ok(&s, json!(-15));
    assert_eq!(bad(&s, json!(7)), "data: 7 is not a multiple of 5");
    assert!(check_lit(&s, &num("1e30")).is_ok());
    assert!(check_lit(&s, &num("5.000000000000000000000000001")).is_err());
}

// ---- strings

#[test]
fn lengths_count_code_points() {
    let s = compile(json!({"minLength": 3, "maxLength": 4}));
    ok(&s, json!("abc"));
    ok(&s, json!("日本語"));
    ok(&s, json!("😀😀😀😀"));
    ok(&s, json!("héllo".chars().take(4).collect::<String>()));
    assert_eq!(
        bad(&s, json!("ab")),
        "data: \"ab\" is shorter than 3 characters"
    );
    assert_eq!(
        bad(&s, json!("😀😀")),
        "data: \"😀😀\" is shorter than 3 characters"
    );
    assert_eq!(
        bad(&s, json!("abcde")),
        "data: \"abcde\" is longer than 4 characters"
    );
    assert_eq!(
        bad(&s, json!("日本語日本")),
        "data: \"日本語日本\" is longer than 4 characters"
    );
    let s = compile(json!({"minLength": 1, "maxLength": 1}));
    assert_eq!(bad(&s, json!("")), "data: \"\" is shorter than 1 character");
    assert_eq!(
        bad(&s, json!("ab")),
        "data: \"ab\" is longer than 1 character"
    );
    ok(&s, json!(12345));
}

#[test]
fn pattern_is_an_unanchored_search() {
    let s = compile(json!({"pattern": "b+"}));
    ok(&s, json!("abbc"));
    ok(&s, json!(1));
    assert_eq!(
        bad(&s, json!("ac")),
        "data: \"ac\" does not match the pattern \"b+\""
    );
    let s = compile(json!({"pattern": "^[A-Z]{3}$"}));
    ok(&s, json!("EUR"));
    bad(&s, json!("EURO"));
}

#[test]
fn format_date_time() {
    let s = compile(json!({"format": "date-time"}));
    for good in [
        "2024-05-01T12:34:56Z",
        "2024-05-01T12:34:56.789+02:00",
        "2024-05-01t12:34:56.1z",
        "2024-02-29T00:00:00-23:59",
        "2016-12-31T23:59:60Z",
        "1990-12-31T15:59:60-08:00",
    ] {
        ok(&s, json!(good));
    }
    for wrong in [
        "2024-05-01T12:34:56",
        "2024-05-01 12:34:56Z",
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2024-05-01T12:00:00.Z",
        "2024-05-01T12:00:00+0200",
        "2024-05-01T12:00:00+24:00",
        "2016-12-31T12:00:60Z",
        "2024-05-01",
        "",
    ] {
        assert_eq!(
            bad(&s, json!(wrong)),
            format!("data: \"{wrong}\" is not a valid date-time")
        );
    }
    ok(&s, json!(5));
}

#[test]
fn format_date() {
    let s = compile(json!({"format": "date"}));
    for good in ["2024-02-29", "2000-02-29", "1999-12-31", "0001-01-01"] {
        ok(&s, json!(good));
    }
    for wrong in [
        "2023-02-29",
        "1900-02-29",
        "2024-04-31",
        "2024-1-01",
        "2024-00-10",
        "2024-01-00",
        "2024-01-01T00:00:00Z",
        "２０２４-01-01",
    ] {
        assert_eq!(
            bad(&s, json!(wrong)),
            format!("data: \"{wrong}\" is not a valid date")
        );
    }
}

#[test]
fn format_uuid() {
    let s = compile(json!({"format": "uuid"}));
    ok(&s, json!("5f0c6a8e-2d3b-4c1a-9e7f-1b2c3d4e5f60"));
    ok(&s, json!("5F0C6A8E-2D3B-4C1A-9E7F-1B2C3D4E5F60"));
    ok(&s, json!("00000000-0000-0000-0000-000000000000"));
    for wrong in [
        "5f0c6a8e2d3b4c1a9e7f1b2c3d4e5f60",
        "5f0c6a8e-2d3b-4c1a-9e7f-1b2c3d4e5f6",
        "5f0c6a8e-2d3b-4c1a-9e7f-1b2c3d4e5f600",
        "5f0c6a8e-2d3b-4c1a-9e7f-1b2c3d4e5f6g",
        "5f0c6a8e2-d3b-4c1a-9e7f-1b2c3d4e5f60",
        "{5f0c6a8e-2d3b-4c1a-9e7f-1b2c3d4e5f6}",
    ] {
        assert_eq!(
            bad(&s, json!(wrong)),
            format!("data: \"{wrong}\" is not a valid uuid")
        );
    }
}

#[test]
fn format_email() {
    let s = compile(json!({"format": "email"}));
    for good in ["a@b.co", "first.last+tag@mail.example.org", "ü@exämple.de"] {
        ok(&s, json!(good));
    }
    for wrong in [
        "a b@c.de", "@b.co", "a@b", "a@@b.co", "a@b@c.co", "a@b..co", "a@.b.co", "a@b.co.",
        "a@b.co ", "plain", "a@b.c\tx",
    ] {
        assert_eq!(
            bad(&s, json!(wrong)),
            format!("data: {} is not a valid email address", json!(wrong))
        );
    }
}

// ---- arrays

#[test]
fn items_and_paths() {
    let s = compile(json!({
        "properties": {"items": {"type": "array", "items": {
            "type": "object", "required": ["sku"], "properties": {"sku": {"type": "string", "minLength": 3}}
        }}}
    }));
    ok(&s, json!({"items": []}));
    ok(&s, json!({"items": [{"sku": "abc"}, {"sku": "abcd"}]}));
    assert_eq!(
        bad(
            &s,
            json!({"items": [{"sku": "abc"}, {"sku": "abcd"}, {"sku": "ab"}]})
        ),
        "data.items[2].sku: \"ab\" is shorter than 3 characters"
    );
    assert_eq!(
        bad(&s, json!({"items": [{}]})),
        "data.items[0]: missing required property \"sku\""
    );
}

#[test]
fn prefix_items() {
    let s = compile(
        json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": {"type": "boolean"}}),
    );
    ok(&s, json!([]));
    ok(&s, json!(["a"]));
    ok(&s, json!(["a", 1, true, false]));
    assert_eq!(bad(&s, json!([1])), "data[0]: 1 is not a string");
    assert_eq!(
        bad(&s, json!(["a", 1, true, 0])),
        "data[3]: 0 is not a boolean"
    );
    let s = compile(json!({"prefixItems": [true, true], "items": false}));
    ok(&s, json!([1, 2]));
    assert_eq!(
        bad(&s, json!([1, 2, 3])),
        "data[2]: 3 is not allowed here (the schema is false)"
    );
}

#[test]
fn min_max_unique_items() {
    let s = compile(json!({"minItems": 1, "maxItems": 3, "uniqueItems": true}));
    ok(&s, json!([1, "1", [1]]));
    ok(&s, json!({"not": "an array"}));
    assert_eq!(
        bad(&s, json!([])),
        "data: the array has 0 items, fewer than the minimum 1"
    );
    assert_eq!(
        bad(&s, json!([1, 2, 3, 4])),
        "data: the array has 4 items, more than the maximum 3"
    );
    assert_eq!(
        bad(&s, json!([1, 2, 1.0])),
        "data: the array items [0] and [2] are equal"
    );
    assert_eq!(
        bad(&s, json!([{"a": [1], "b": 2}, {"b": 2.0, "a": [1.0]}])),
        "data: the array items [0] and [1] are equal"
    );
    ok(&s, json!([{"a": 1}, {"a": 1, "b": 2}]));
    ok(&s, json!([[1, 2], [2, 1]]));
    ok(&s, json!([0, false, null]));
    let s = compile(json!({"uniqueItems": false}));
    ok(&s, json!([1, 1]));
    let s = compile(json!({"minItems": 2}));
    assert_eq!(
        bad(&s, json!([1])),
        "data: the array has 1 item, fewer than the minimum 2"
    );
}

// ---- combinators

#[test]
fn all_any_one_not() {
    let s = compile(json!({"allOf": [{"type": "integer"}, {"minimum": 2}]}));
    ok(&s, json!(2));
    assert_eq!(bad(&s, json!(1)), "data: 1 is less than the minimum 2");
    assert_eq!(bad(&s, json!(2.5)), "data: 2.5 is not an integer");

    let s =
        compile(json!({"properties": {"x": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}));
    ok(&s, json!({"x": null}));
    ok(&s, json!({"x": "s"}));
    assert_eq!(
        bad(&s, json!({"x": 5})),
        "data.x: 5 does not match any of the schemas in \"anyOf\""
    );

    let s = compile(json!({"oneOf": [{"multipleOf": 3}, {"multipleOf": 5}]}));
    ok(&s, json!(9));
    ok(&s, json!(10));
    assert_eq!(
        bad(&s, json!(15)),
        "data: 15 matches more than one of the schemas in \"oneOf\" ([0] and [1])"
    );
    assert_eq!(
        bad(&s, json!(7)),
        "data: 7 does not match any of the schemas in \"oneOf\""
    );

    let s = compile(json!({"not": {"type": "string"}}));
    ok(&s, json!(1));
    assert_eq!(
        bad(&s, json!("s")),
        "data: \"s\" matches the schema in \"not\""
    );
}

// ---- $ref

#[test]
fn ref_recursion_tree() {
    let s = compile(json!({
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#"}}
        },
        "additionalProperties": false
    }));
    ok(
        &s,
        json!({"value": 1, "children": [{"value": 2}, {"value": 3, "children": [{"value": 4}]}]}),
    );
    assert_eq!(
        bad(
            &s,
            json!({"value": 1, "children": [{"value": 2}, {"value": 3, "children": [{"value": "x"}]}]})
        ),
        "data.children[1].children[0].value: \"x\" is not an integer"
    );
    assert_eq!(
        bad(
            &s,
            json!({"value": 1, "children": [{"value": 2, "other": 1}]})
        ),
        "data.children[0]: property \"other\" is not allowed"
    );
}

#[test]
fn ref_defs_and_definitions() {
    let s = compile(json!({
        "$defs": {
            "money": {"type": "object", "required": ["amount"], "properties": {"amount": {"$ref": "#/$defs/amount"}}},
            "amount": {"type": "number", "minimum": 0},
            "a b/c~d": {"const": 1}
        },
        "definitions": {"node": {"type": "array", "items": {"$ref": "#/definitions/node"}}},
        "properties": {
            "price": {"$ref": "#/$defs/money"},
            "tree": {"$ref": "#/definitions/node"},
            "odd": {"$ref": "#/$defs/a%20b~1c~0d"}
        }
    }));
    ok(
        &s,
        json!({"price": {"amount": 3}, "tree": [[], [[]]], "odd": 1}),
    );
    assert_eq!(
        bad(&s, json!({"price": {"amount": -1}})),
        "data.price.amount: -1 is less than the minimum 0"
    );
    assert_eq!(
        bad(&s, json!({"tree": [[], [[1]]]})),
        "data.tree[1][0][0]: 1 is not an array"
    );
    assert_eq!(bad(&s, json!({"odd": 2})), "data.odd: 2 is not 1");
    // $ref with siblings: both apply (2020-12)
    let s = compile(json!({"$defs": {"n": {"type": "number"}}, "$ref": "#/$defs/n", "maximum": 5}));
    ok(&s, json!(5));
    bad(&s, json!(6));
    bad(&s, json!("x"));
}

#[test]
fn ref_compile_errors() {
    assert_eq!(
        compile_err(json!({"properties": {"a": {"$ref": "#/$defs/missing"}}})),
        "at properties.a: \"$ref\" \"#/$defs/missing\": the root's \"$defs\" has no entry \"missing\""
    );
    assert_eq!(
        compile_err(json!({"definitions": {"x": true}, "$ref": "#/$defs/x"})),
        "at the root: \"$ref\" \"#/$defs/x\": the root's \"$defs\" has no entry \"x\""
    );
    for r in [
        "https://example.com/s.json",
        "other.json#/$defs/x",
        "#/properties/a",
        "#/$defs/a/properties/b",
        "#foo",
        "#/$defs/%zz",
    ] {
        let e = compile_err(json!({"$defs": {"a": true}, "$ref": r}));
        assert_eq!(
            e,
            format!("at the root: \"$ref\" {} is not supported: only \"#\", \"#/$defs/NAME\" and \"#/definitions/NAME\" are; nothing is fetched from outside the schema", json!(r))
        );
    }
    assert_eq!(
        compile_err(json!({"$ref": 5})),
        "at the root: \"$ref\" must be a string"
    );
}

#[test]
fn ref_cycles_without_descent_are_rejected() {
    assert!(compile_err(json!({"$ref": "#"})).contains("endless recursion"));
    assert!(compile_err(json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"not": {"$ref": "#/$defs/a"}}]}}})).contains("endless recursion"));
    // descending through properties/items is fine
    compile(json!({"properties": {"next": {"$ref": "#"}}}));
}

#[test]
fn deep_recursion_is_bounded() {
    let s = compile(json!({"type": "array", "items": {"$ref": "#"}}));
    let mut v = json!([]);
    for _ in 0..200 {
        v = json!([v]);
    }
    ok(&s, v.clone());
    for _ in 0..400 {
        v = json!([v]);
    }
    assert!(bad(&s, v).contains("nested too deeply"));
}

// ---- boolean schemas, annotations

#[test]
fn boolean_schemas() {
    let s = compile(json!(true));
    ok(&s, json!({"anything": [1]}));
    let s = compile(json!(false));
    assert_eq!(
        bad(&s, json!(1)),
        "data: 1 is not allowed here (the schema is false)"
    );
    let s = compile(json!({"properties": {"a": false, "b": true}, "additionalProperties": true}));
    ok(&s, json!({"b": 1, "c": 2}));
    assert_eq!(
        bad(&s, json!({"a": 1})),
        "data.a: 1 is not allowed here (the schema is false)"
    );
    let s = compile(json!({"items": false}));
    ok(&s, json!([]));
    bad(&s, json!([1]));
    let s = compile(json!({"anyOf": [false, true]}));
    ok(&s, json!(1));
    let s = compile(json!({"not": true}));
    bad(&s, json!(1));
}

#[test]
fn annotations_are_accepted() {
    let s = compile(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.com/money-deposited",
        "$comment": "c", "title": "t", "description": "d", "default": 1, "examples": [1],
        "deprecated": false, "readOnly": true, "writeOnly": false,
        "properties": {"a": {"title": "a", "description": "x", "default": "z", "type": "string"}}
    }));
    ok(&s, json!({"a": "s"}));
    bad(&s, json!({"a": 1}));
}

#[test]
fn long_values_are_shortened_in_messages() {
    let s = compile(json!({"type": "number"}));
    let long = "x".repeat(500);
    let e = bad(&s, json!(long));
    assert!(
        e.len() < 150 && e.contains('…') && e.ends_with("… is not a number"),
        "{e}"
    );
}

#[test]
fn works_over_lit_instances_too() {
    let s = compile(
        json!({"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}, "additionalProperties": false}),
    );
    let v = Lit::Obj(vec![("n".into(), num("3.0"))]);
    assert!(check_lit(&s, &v).is_ok());
    let v = Lit::Obj(vec![("n".into(), num("3.01"))]);
    assert_eq!(
        check_lit(&s, &v).unwrap_err(),
        "data.n: 3.01 is not an integer"
    );
    let v = Lit::Obj(vec![("n".into(), num("3")), ("m".into(), Lit::Null)]);
    assert_eq!(
        check_lit(&s, &v).unwrap_err(),
        "data: property \"m\" is not allowed"
    );
}

// ---- compile errors

#[test]
fn unsupported_keywords() {
    for k in [
        "dependentRequired",
        "if",
        "additionalItems",
        "contains",
        "unevaluatedProperties",
        "$anchor",
        "propertyNames",
        "minContains",
        "dependencies",
        "$dynamicRef",
        "nullable",
    ] {
        assert_eq!(
            compile_err(json!({ k: true })),
            format!("at the root: unsupported keyword \"{k}\"")
        );
    }
    assert_eq!(
        compile_err(json!({"properties": {"amount": {"type": "number", "exclusiveMinimun": 0}}})),
        "at properties.amount: unsupported keyword \"exclusiveMinimun\""
    );
    assert_eq!(
        compile_err(json!({"items": {"allOf": [true, {"foo": 1}]}})),
        "at items.allOf[1]: unsupported keyword \"foo\""
    );
    assert_eq!(
        compile_err(json!({"$defs": {"x y": {"properties": {"a-b": {"bar": 1}}}}})),
        "at $defs[\"x y\"].properties[\"a-b\"]: unsupported keyword \"bar\""
    );
    assert_eq!(
        compile_err(json!({"properties": {"x": {"$defs": {"y": {"baz": 1}}}}})),
        "at properties.x.$defs.y: unsupported keyword \"baz\""
    );
}

#[test]
fn wrongly_typed_keyword_values() {
    let cases = [
        (json!({"properties": {"amount": {"minimum": "5"}}}), "at properties.amount: \"minimum\" must be a number"),
        (json!({"maximum": null}), "at the root: \"maximum\" must be a number"),
        (json!({"exclusiveMinimum": true}), "at the root: \"exclusiveMinimum\" must be a number"),
        (json!({"exclusiveMaximum": [1]}), "at the root: \"exclusiveMaximum\" must be a number"),
        (json!({"multipleOf": 0}), "at the root: \"multipleOf\" must be a number greater than 0"),
        (json!({"multipleOf": -0.5}), "at the root: \"multipleOf\" must be a number greater than 0"),
        (json!({"multipleOf": "1"}), "at the root: \"multipleOf\" must be a number"),
        (json!({"minLength": -1}), "at the root: \"minLength\" must be a non-negative integer"),
        (json!({"maxLength": 1.5}), "at the root: \"maxLength\" must be a non-negative integer"),
        (json!({"minItems": "3"}), "at the root: \"minItems\" must be a non-negative integer"),
        (json!({"maxItems": true}), "at the root: \"maxItems\" must be a non-negative integer"),
        (json!({"minProperties": -2}), "at the root: \"minProperties\" must be a non-negative integer"),
        (json!({"maxProperties": null}), "at the root: \"maxProperties\" must be a non-negative integer"),
        (json!({"required": "a"}), "at the root: \"required\" must be an array of strings"),
        (json!({"required": ["a", 1]}), "at the root: \"required\" must be an array of strings"),
        (json!({"required": ["a", "a"]}), "at the root: \"required\" lists \"a\" twice"),
        (json!({"type": "text"}), "at the root: \"type\" names an unknown type \"text\" (known: null, boolean, integer, number, string, array, object)"),
        (json!({"type": ["string", "string"]}), "at the root: \"type\" lists \"string\" twice"),
        (json!({"type": []}), "at the root: \"type\" must be a type name or a non-empty array of type names"),
        (json!({"type": [1]}), "at the root: \"type\" must be a type name or a non-empty array of type names"),
        (json!({"enum": []}), "at the root: \"enum\" must be a non-empty array"),
        (json!({"enum": "a"}), "at the root: \"enum\" must be a non-empty array"),
        (json!({"properties": []}), "at the root: \"properties\" must be an object of schemas"),
        (json!({"properties": {"a": 5}}), "at properties.a: a schema must be an object or a boolean"),
        (json!({"properties": {"a": {"items": "x"}}}), "at properties.a.items: a schema must be an object or a boolean"),
        (json!({"additionalProperties": 5}), "at additionalProperties: a schema must be an object or a boolean"),
        (json!({"patternProperties": {"(": true}}), "at patternProperties: \"(\" is not a valid regular expression (unclosed group)"),
        (json!({"patternProperties": []}), "at the root: \"patternProperties\" must be an object of schemas"),
        (json!({"pattern": 5}), "at the root: \"pattern\" must be a string"),
        (json!({"uniqueItems": "yes"}), "at the root: \"uniqueItems\" must be a boolean"),
        (json!({"prefixItems": {}}), "at the root: \"prefixItems\" must be a non-empty array of schemas"),
        (json!({"prefixItems": [1]}), "at prefixItems[0]: a schema must be an object or a boolean"),
        (json!({"allOf": []}), "at the root: \"allOf\" must be a non-empty array of schemas"),
        (json!({"anyOf": {}}), "at the root: \"anyOf\" must be a non-empty array of schemas"),
        (json!({"oneOf": [true, 3]}), "at oneOf[1]: a schema must be an object or a boolean"),
        (json!({"not": 3}), "at not: a schema must be an object or a boolean"),
        (json!({"format": 5}), "at the root: \"format\" must be a string"),
        (json!({"format": "hostname"}), "at the root: \"format\" \"hostname\" is not supported (supported: date-time, date, uuid, email)"),
        (json!({"$defs": []}), "at the root: \"$defs\" must be an object of schemas"),
        (json!({"$defs": {"a": 1}}), "at $defs.a: a schema must be an object or a boolean"),
        (json!({"properties": {"a": {"definitions": 1}}}), "at properties.a: \"definitions\" must be an object of schemas"),
        (json!({"properties": {"a": {"$id": "x"}}}), "at properties.a: \"$id\" is only accepted at the root (a nested \"$id\" would change what \"$ref\" means)"),
        (json!({"items": [{"type": "string"}]}), "at the root: \"items\" as an array (the draft-07 tuple form) is not supported: use \"prefixItems\" for per-position schemas and \"items\" for the rest"),
        (json!([]), "the schema must be an object or a boolean"),
        (json!("string"), "the schema must be an object or a boolean"),
        (json!(null), "the schema must be an object or a boolean"),
    ];
    for (schema, msg) in cases {
        assert_eq!(compile_err(schema.clone()), msg, "for {schema}");
    }
    // integers written with a zero fraction are integers
    compile(json!({"minLength": 2.0, "maxItems": 1e2}));
}

#[test]
fn pattern_compile_errors() {
    assert_eq!(
        compile_err(json!({"properties": {"s": {"pattern": "(ab"}}})),
        "at properties.s: \"pattern\" \"(ab\" is not a valid regular expression (unclosed group)"
    );
    // look-around is not in the regex crate's syntax: refused, not ignored
    assert!(compile_err(json!({"pattern": "a(?=b)"}))
        .starts_with("at the root: \"pattern\" \"a(?=b)\" is not a valid regular expression ("));
}
