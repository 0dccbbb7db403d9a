//! In-backend tests of es.fold's column form without ORDER BY: events in
//! any order (shuffled, a sequential scan's), against the same events folded
//! one by one in version order.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

    const COLUMNS: &str =
        "stream_id, stream_type, version, event_type, data, metadata, schema_version";

    /// Steps of every kind, on nested places, that fail on some states:
    /// `F` can make `n` a string (then `A`'s add fails), `E` adds to `a.b`
    /// (which `A` sets to anything), `H` subtracts from `list`, `D` merges
    /// into the whole state.
    const REDUCERS: &str = r#"{
        "A": [{"set": "a.b", "from": "$.v"}, {"add": "n", "from": "$.n"}],
        "B": [{"append": "list", "from": "$.v"}, {"inc": "count"}],
        "C": [{"unset": "a.b"}, {"merge": "m", "from": "$.patch"}],
        "D": [{"merge": "", "from": "$.root"}],
        "E": [{"add": "a.b", "from": "$.n"}],
        "F": [{"set": "n", "from": "$.v"}],
        "G": [{"unset": "a"}, {"append": "a.c", "from": "$.v"}],
        "H": [{"sub": "list", "value": 1}],
        "I": [{"unset": "m.k.z"}, {"add": "m.k.z", "from": "$.n"}],
        "J": [{"set": "m", "from": "$.v"}, {"inc": "m.q"}]
    }"#;

    /// A fold's jsonb text, or "ERROR <sqlstate>: <message>".
    fn try_fold(query: &str) -> String {
        run(&format!(
            "DO $do$ DECLARE r text; BEGIN
               EXECUTE $q${query}$q$ INTO r;
               PERFORM set_config('es_test.fold', coalesce(r, 'NULL'), true);
             EXCEPTION WHEN OTHERS THEN
               PERFORM set_config('es_test.fold', 'ERROR ' || SQLSTATE || ': ' || SQLERRM, true);
             END $do$"
        ));
        one_text("SELECT current_setting('es_test.fold')")
    }

    /// A small deterministic generator (the same streams on every run).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.next(xs.len() as u64) as usize]
        }
    }

    #[pg_test]
    fn fold_in_any_order_matches_the_fold_in_version_order() {
        define_reducers("fu_a41", REDUCERS, r#"{"n": 0}"#, 0);
        let values = [r#"1"#, r#"2.50"#, r#""s""#, r#"{"x": 1}"#, r#"[1]"#, "null"];
        let numbers = [r#"1.5"#, r#"2"#, r#"-0.25"#, r#"3"#, r#"1e2"#, r#""x""#];
        let patches = [
            r#"{"k": 1}"#,
            r#"{"k": null}"#,
            r#"{"k": {"z": 2}}"#,
            r#"5"#,
            r#"{"k": {"z": null, "w": [1]}}"#,
        ];
        let roots = [
            r#"{"n": 3}"#,
            r#"{"a": null}"#,
            r#"{"list": [9]}"#,
            r#"{"m": {"k": {"z": 1}}}"#,
        ];
        let mut rng = Lcg(40);
        let (mut ok, mut failed) = (0, 0);
        for s in 0..60 {
            let stream = format!("fu_a41-{s}");
            // mostly harmless steps, so that many streams fold to the end
            let types = if s % 3 == 0 {
                vec!["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]
            } else {
                vec!["A", "B", "B", "C", "D", "G", "I", "I"]
            };
            for _ in 0..(5 + rng.next(30)) {
                let t = rng.pick(&types);
                let data = format!(
                    r#"{{"v": {}, "n": {}, "patch": {}, "root": {}}}"#,
                    rng.pick(&values),
                    if s % 3 == 0 {
                        rng.pick(&numbers)
                    } else {
                        rng.pick(&numbers[..5])
                    },
                    rng.pick(&patches),
                    rng.pick(&roots)
                );
                append(&stream, t, &data);
            }
            let ordered = try_fold(&format!(
                "SELECT es.fold({COLUMNS} ORDER BY version)::text FROM es.events WHERE stream_id = '{stream}'"
            ));
            // shuffled: runs of versions in every order, so most events start a segment
            for seed in ["x", "y"] {
                let shuffled = try_fold(&format!(
                    "SELECT es.fold({COLUMNS})::text
                       FROM (SELECT * FROM es.events WHERE stream_id = '{stream}'
                              ORDER BY md5(version::text || '{seed}')) e"
                ));
                assert_eq!(shuffled, ordered, "{stream} shuffled ({seed})");
            }
            // backwards, and in order
            for order in ["version DESC", "version"] {
                let got = try_fold(&format!(
                    "SELECT es.fold({COLUMNS})::text
                       FROM (SELECT * FROM es.events WHERE stream_id = '{stream}' ORDER BY {order}) e"
                ));
                assert_eq!(got, ordered, "{stream} ORDER BY {order}");
            }
            if ordered.starts_with("ERROR") {
                failed += 1;
            } else {
                ok += 1;
            }
        }
        // both kinds of outcome were compared, many times
        assert!(ok >= 15 && failed >= 10, "{ok} folded, {failed} failed");
    }

    #[pg_test]
    fn fold_in_any_order_takes_a_table_scan_as_it_comes() {
        define_reducers("fv_a41", BANK, "{}", 0);
        // appended round-robin, as accounts are used: each stream's events
        // are spread over the table
        for s in 1..=4 {
            append(&format!("fv_a41-{s}"), "AccountOpened", r#"{"owner": "A"}"#);
        }
        for i in 0..20 {
            for s in 1..=4 {
                let stream = format!("fv_a41-{s}");
                append(
                    &stream,
                    "MoneyDeposited",
                    &format!(r#"{{"amount": {i}.25}}"#),
                );
                if i % s == 0 {
                    append(&stream, "MoneyWithdrawn", r#"{"amount": 0.5}"#);
                }
            }
        }
        // what a user writes for every stream's state: PostgreSQL reads the
        // table (no index order) and hashes the groups
        run("SET LOCAL enable_indexscan = off");
        run("SET LOCAL enable_bitmapscan = off");
        run("SET LOCAL enable_sort = off");
        let query = format!(
            "SELECT stream_id, es.fold({COLUMNS}) AS state FROM es.events
              WHERE stream_type = 'fv_a41' GROUP BY stream_id"
        );
        let explained = explain(&query);
        assert!(
            explained.contains("HashAggregate") && explained.contains("Seq Scan"),
            "{explained}"
        );
        assert!(one_bool(&format!(
            "SELECT count(*) = 4 AND bool_and(f.state = l.state)
               FROM ({query}) f, LATERAL es.load(f.stream_id) l"
        )));
        // the ordered form of the same
        assert!(one_bool(&format!(
            "SELECT bool_and(f.state = o.state)
               FROM ({query}) f
               JOIN (SELECT stream_id, es.fold({COLUMNS} ORDER BY version) AS state FROM es.events
                      WHERE stream_type = 'fv_a41' GROUP BY stream_id) o USING (stream_id)"
        )));
        // one stream's events folded twice: refused, not summed twice
        assert_error(
            &format!(
                "PERFORM es.fold({COLUMNS}) FROM (SELECT * FROM es.events WHERE stream_id = 'fv_a41-1'
                   UNION ALL SELECT * FROM es.events WHERE stream_id = 'fv_a41-1') e"
            ),
            "22000",
            "has version 1 twice",
        );
        // several streams in one group need an order
        assert_error(
            &format!("PERFORM es.fold({COLUMNS}) FROM es.events WHERE stream_type = 'fv_a41'"),
            "22000",
            "give the order",
        );
        assert!(one_bool(&format!(
            "SELECT es.fold({COLUMNS} ORDER BY stream_id, version) IS NOT NULL
               FROM es.events WHERE stream_type = 'fv_a41'"
        )));
        // a NULL column, and no rows: as with ORDER BY
        assert_error(
            "PERFORM es.fold(stream_id, stream_type, version, event_type, NULL, metadata, schema_version)
               FROM es.events WHERE stream_id = 'fv_a41-2'",
            "22004",
            "an event's data must not be NULL",
        );
        assert!(one_bool(&format!(
            "SELECT es.fold({COLUMNS}) IS NULL FROM es.events WHERE stream_id = 'fv_a41-none'"
        )));
    }

    /// The plan of a query, one line per node.
    fn explain(query: &str) -> String {
        run(&format!(
            "DO $do$ DECLARE l text; p text := ''; BEGIN
               FOR l IN EXECUTE 'EXPLAIN ' || $q${query}$q$ LOOP p := p || l || E'\\n'; END LOOP;
               PERFORM set_config('es_test.plan', p, true); END $do$"
        ));
        one_text("SELECT current_setting('es_test.plan')")
    }
}
