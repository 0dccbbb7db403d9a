//! In-backend tests of the glue that writes jsonb's binary form (every
//! shape comes out byte for byte as `jsonb_in` writes it), that reads
//! text columns in place, and that finds the extension's tables (its kept
//! oids follow tables made, dropped, renamed and rolled back).

#[pgrx::pg_schema]
mod tests {
    use crate::pg::json_value::Val;
    use crate::pg::jsonb::from_text;
    use pgrx::pg_sys;
    use pgrx::prelude::*;

    /// The bytes of a jsonb datum (header included).
    fn bytes(d: pg_sys::Datum) -> Vec<u8> {
        // SAFETY: a non-null jsonb datum made in this test; detoasted into the current context.
        unsafe {
            let v = pg_sys::pg_detoast_datum(d.cast_mut_ptr());
            let n = pgrx::varsize_any(v);
            std::slice::from_raw_parts(v as *const u8, n).to_vec()
        }
    }

    fn text(v: &Val) -> String {
        let mut s = String::new();
        v.write_json(&mut s);
        s
    }

    const DOCS: &[&str] = &[
        r#"{}"#,
        r#"[]"#,
        r#""just a string""#,
        r#"12.50"#,
        r#"true"#,
        r#"null"#,
        r#"{"amount": 10, "currency": "EUR"}"#,
        r#"{"b": 1, "aa": 2, "a": 3, "ab": 4, "": 5, "ba": [1, 2, {"z": null}]}"#,
        r#"{"n": -0.000123, "big": 123456789012345678901234567890.123456789, "neg": -42, "e": 1e100, "z": 0}"#,
        r#"{"s": "quote \" backslash \\ newline \n tab \t unicode é ü 漢字 \u0001", "émoji 🎉": true}"#,
        r#"[1, "two", 3.5, null, false, true, [], {}, [[[]]], {"a": {"b": {"c": [1, {"d": "e"}]}}}]"#,
        r#"{"nested": {"deeper": {"deepest": {"list": [1, 2, 3], "x": "y"}}, "s": "t"}, "top": 1}"#,
    ];

    #[pg_test]
    fn written_jsonb_is_byte_identical_to_jsonb_in() {
        let mut docs: Vec<String> = DOCS.iter().map(|s| s.to_string()).collect();
        // more than one offset stride (32 entries) in objects and arrays, and keys
        // of many lengths
        let many: Vec<String> = (0..100)
            .map(|i| format!(r#""{}": {}"#, "k".repeat(i % 7 + 1) + &i.to_string(), i))
            .collect();
        docs.push(format!("{{{}}}", many.join(", ")));
        let arr: Vec<String> = (0..150)
            .map(|i| format!(r#"{{"i": {i}, "s": "{}"}}"#, "x".repeat(i % 5)))
            .collect();
        docs.push(format!("[{}]", arr.join(", ")));
        docs.push(format!(
            r#"{{"long": "{}", "n": 1.5}}"#,
            "y".repeat(100_000)
        ));
        for doc in &docs {
            let stored = from_text(doc);
            // SAFETY: a jsonb datum made just above.
            let v = unsafe { Val::from_datum(stored) };
            let written = v.to_jsonb();
            let expected = from_text(&text(&v));
            assert_eq!(bytes(written), bytes(expected), "{doc}");
        }
    }

    #[pg_test]
    fn a_key_is_found_as_postgresql_finds_it() {
        // keys of many lengths, more than one offset stride (32 entries), values of every kind
        let many: Vec<String> = (0..100)
            .map(|i| match i % 4 {
                0 => format!(r#""{}": {i}"#, "k".repeat(i % 7 + 1) + &i.to_string()),
                1 => format!(r#""{}": "s{i}""#, "k".repeat(i % 7 + 1) + &i.to_string()),
                2 => format!(
                    r#""{}": {{"n": [{i}]}}"#,
                    "k".repeat(i % 7 + 1) + &i.to_string()
                ),
                _ => format!(r#""{}": null"#, "k".repeat(i % 7 + 1) + &i.to_string()),
            })
            .collect();
        let doc = format!("{{{}, \"\": true, \"é\": false}}", many.join(", "));
        let d = from_text(&doc);
        // SAFETY: a jsonb datum made just above, alive for the whole test.
        let c = unsafe { crate::pg::jsonb::Container::from_datum(d) };
        let mut keys: Vec<String> = (0..100)
            .map(|i| "k".repeat(i % 7 + 1) + &i.to_string())
            .collect();
        keys.extend([
            "".into(),
            "é".into(),
            "missing".into(),
            "k".into(),
            "kkkkkkkk99".into(),
        ]);
        for k in &keys {
            let ours = c.get(k).map(|v| Val::from_jsonb_value(&v));
            // SAFETY: PostgreSQL's own look-up on the same container; the key is passed with
            // its length.
            let theirs = unsafe {
                let mut res = std::mem::MaybeUninit::<pg_sys::JsonbValue>::uninit();
                let found = pg_sys::getKeyJsonValueFromContainer(
                    c.as_ptr(),
                    k.as_ptr() as *const std::ffi::c_char,
                    k.len() as i32,
                    res.as_mut_ptr(),
                );
                (!found.is_null())
                    .then(|| Val::from_jsonb_value(&crate::pg::jsonb::Value(res.assume_init())))
            };
            assert_eq!(ours, theirs, "key {k:?}");
        }
        assert!(c.get("k0").is_some() && c.get("missing").is_none());
    }

    /// Opens every level of a value read lazily.
    fn open_all(v: &mut Val) {
        v.open();
        match v {
            Val::Arr(a) => a.iter_mut().for_each(open_all),
            Val::Obj(o) => o.iter_mut().for_each(|(_, x)| open_all(x)),
            _ => {}
        }
    }

    #[pg_test]
    fn a_state_read_lazily_is_written_back_byte_for_byte() {
        let mut docs: Vec<String> = DOCS.iter().map(|s| s.to_string()).collect();
        let arr: Vec<String> = (0..150)
            .map(|i| {
                format!(
                    r#"{{"i": {i}, "s": "{}", "l": [{i}, "x"]}}"#,
                    "x".repeat(i % 5)
                )
            })
            .collect();
        docs.push(format!(r#"{{"list": [{}], "n": 2}}"#, arr.join(", ")));
        for doc in &docs {
            let stored = from_text(doc);
            let expected = bytes(stored);
            // SAFETY: a detoasted jsonb datum made just above, alive for the whole test.
            let lazy = unsafe { Val::lazy_from_datum(stored) };
            assert_eq!(bytes(lazy.to_jsonb()), expected, "unread: {doc}");
            let mut one = lazy.clone();
            one.open();
            assert_eq!(bytes(one.to_jsonb()), expected, "one level read: {doc}");
            let mut all = lazy.clone();
            open_all(&mut all);
            assert_eq!(bytes(all.to_jsonb()), expected, "all read: {doc}");
            // SAFETY: as above.
            assert_eq!(all, unsafe { Val::from_datum(stored) }, "{doc}");
            assert_eq!(text(&lazy), text(&all), "{doc}");
        }
    }

    #[pg_test]
    fn changing_a_state_read_lazily_gives_what_changing_it_read_whole_gives() {
        let doc = r#"{"list": [{"a": 1}, [2, 3], "s", 4.5], "obj": {"k": {"deep": [1]}, "z": null}, "n": 1}"#;
        let stored = from_text(doc);
        // SAFETY: a detoasted jsonb datum made just above, alive for the whole test.
        let (mut lazy, mut whole) =
            unsafe { (Val::lazy_from_datum(stored), Val::from_datum(stored)) };
        for v in [&mut lazy, &mut whole] {
            v.open();
            let Val::Obj(fields) = v else {
                panic!("an object")
            };
            for (k, x) in fields.iter_mut() {
                x.open();
                match (k.as_str(), x) {
                    ("list", Val::Arr(a)) => a.push(Val::Str("new".into())),
                    ("obj", Val::Obj(o)) => o.push(("added".into(), Val::Bool(true))),
                    _ => {}
                }
            }
        }
        assert_eq!(bytes(lazy.to_jsonb()), bytes(whole.to_jsonb()));
        assert_eq!(
            text(&lazy),
            r#"{"n":1,"obj":{"k":{"deep":[1]},"z":null,"added":true},"list":[{"a":1},[2,3],"s",4.5,"new"]}"#
        );
    }

    #[pg_test]
    fn duplicate_keys_keep_the_last_value_as_jsonb_in_does() {
        let v = Val::Obj(vec![
            ("a".into(), Val::Str("first".into())),
            ("bb".into(), Val::Bool(true)),
            ("a".into(), Val::Str("second".into())),
            ("a".into(), Val::Null),
            ("c".into(), Val::Arr(vec![])),
        ]);
        assert_eq!(bytes(v.to_jsonb()), bytes(from_text(&text(&v))));
        assert_eq!(
            bytes(v.to_jsonb()),
            bytes(from_text(r#"{"a": null, "bb": true, "c": []}"#))
        );
    }

    /// A text datum's bytes, read as folds read a column: with a 1-byte
    /// header (as a stored row holds a short value), a 4-byte one (as a
    /// function makes it), and compressed (read by detoasting).
    #[pg_test]
    fn text_is_read_in_every_storage() {
        use crate::pg::fmgr::{stored, text_datum_str, Stored};
        Spi::run("CREATE TEMP TABLE es_test_texts (s text)").unwrap();
        Spi::run("ALTER TABLE es_test_texts ALTER COLUMN s SET STORAGE MAIN").unwrap();
        Spi::run(
            "INSERT INTO es_test_texts VALUES (''), ('a'), ('acct-42'), ('MoneyDeposited'), \
             ('é漢字 seventeen+'), (repeat('ab', 50000))",
        )
        .unwrap();
        let mut kinds = (0, 0, 0);
        // SAFETY: plain SPI in this test's transaction; each datum is read while the
        // result table (and so the rows) lives, before SPI_finish.
        unsafe {
            pg_sys::SPI_connect();
            let q = c"SELECT s, s || '' FROM es_test_texts";
            assert!(pg_sys::SPI_execute(q.as_ptr(), false, 0) > 0);
            let table = pg_sys::SPI_tuptable;
            for i in 0..pg_sys::SPI_processed as usize {
                let row = *(*table).vals.add(i);
                let mut null = false;
                let stored_d = pg_sys::SPI_getbinval(row, (*table).tupdesc, 1, &mut null);
                let made = std::ffi::CStr::from_ptr(pg_sys::SPI_getvalue(row, (*table).tupdesc, 2))
                    .to_str()
                    .unwrap()
                    .to_owned();
                match stored(stored_d.cast_mut_ptr()) {
                    Stored::Short(_) => kinds.0 += 1,
                    Stored::Plain(_) => kinds.1 += 1,
                    Stored::Other => kinds.2 += 1,
                }
                assert_eq!(text_datum_str(stored_d), made);
                let four = made.as_str().into_datum().unwrap();
                assert!(matches!(stored(four.cast_mut_ptr()), Stored::Plain(_)));
                assert_eq!(text_datum_str(four), made);
            }
            pg_sys::SPI_finish();
        }
        // the short ones come with a 1-byte header, the long one compressed
        assert_eq!(kinds, (5, 0, 1));
    }

    #[pg_test]
    fn same_bytes_is_slice_equality() {
        use crate::pg::fmgr::same_bytes;
        let base: Vec<u8> = (0u8..40).collect();
        for n in 0..base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &base[..n + 1]));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert!(!same_bytes(a, &b), "length {n}, byte {i}");
            }
        }
    }

    /// The oid of `es.<name>` as PostgreSQL resolves it now.
    fn regclass(name: &str) -> pg_sys::Oid {
        Spi::get_one::<pg_sys::Oid>(&format!("SELECT pg_catalog.to_regclass('es.{name}')::oid"))
            .unwrap()
            .unwrap_or(pg_sys::Oid::INVALID)
    }

    #[pg_test]
    fn relation_follows_tables_made_and_dropped() {
        use crate::pg::tables::relation;
        // a miss is remembered too, and forgotten once the table exists
        assert_eq!(relation(c"relation_cache_probe"), pg_sys::Oid::INVALID);
        Spi::run("CREATE TABLE es.relation_cache_probe (x int)").unwrap();
        let first = relation(c"relation_cache_probe");
        assert_ne!(first, pg_sys::Oid::INVALID);
        assert_eq!(first, regclass("relation_cache_probe"));
        assert_eq!(relation(c"events"), regclass("events"));
        // dropped, then made again under another oid
        Spi::run("DROP TABLE es.relation_cache_probe").unwrap();
        assert_eq!(relation(c"relation_cache_probe"), pg_sys::Oid::INVALID);
        Spi::run("CREATE TABLE es.relation_cache_probe (y text)").unwrap();
        let second = relation(c"relation_cache_probe");
        assert_ne!(second, first);
        assert_eq!(second, regclass("relation_cache_probe"));
        // renamed away: the old name no longer resolves
        Spi::run("ALTER TABLE es.relation_cache_probe RENAME TO relation_cache_probe2").unwrap();
        assert_eq!(relation(c"relation_cache_probe"), pg_sys::Oid::INVALID);
        assert_eq!(relation(c"relation_cache_probe2"), second);
        // a savepoint rolled back takes its table with it
        let r = crate::pg::xact::in_subtransaction(|| {
            Spi::run("CREATE TABLE es.relation_cache_probe3 ()").unwrap();
            assert_ne!(relation(c"relation_cache_probe3"), pg_sys::Oid::INVALID);
            pgrx::error!("rolled back");
        });
        assert!(r.is_err());
        assert_eq!(relation(c"relation_cache_probe3"), pg_sys::Oid::INVALID);
    }
}
