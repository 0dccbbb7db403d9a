//! In-backend tests of aggregates: snapshots: taken at the right versions, used by es.load, redefinitions.

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

    // ---- 3. snapshots -----------------------------------------------------

    #[pg_test]
    fn snapshots_are_taken_at_multiples_of_snapshot_every() {
        define_reducers("snap_a15", BANK, "{}", 3);
        append("snap_a15-a", "AccountOpened", r#"{"owner": "A"}"#);
        for i in 2..=10 {
            append(
                "snap_a15-a",
                "MoneyDeposited",
                &format!(r#"{{"amount": {i}.5}}"#),
            );
            let expected: Vec<String> = (1..=i)
                .filter(|v| v % 3 == 0)
                .map(|v| v.to_string())
                .collect();
            assert_eq!(snapshots_of("snap_a15-a"), expected.join(","), "after {i}");
        }
        let batch = |n: usize| {
            let items: Vec<&str> =
                vec![r#"{"type": "MoneyDeposited", "data": {"amount": 0.25}}"#; n];
            format!("[{}]", items.join(","))
        };
        // a batch from 0 to 7 crosses 3 and 6
        run(&format!(
            "SELECT es.append_events('snap_a15-b', '{}')",
            batch(7)
        ));
        assert_eq!(snapshots_of("snap_a15-b"), "3,6");
        run(&format!(
            "SELECT es.append_events('snap_a15-b', '{}', 7)",
            batch(6)
        ));
        assert_eq!(snapshots_of("snap_a15-b"), "3,6,9,12");
        append("snap_a15-b", "MoneyWithdrawn", r#"{"amount": 1}"#);
        assert_eq!(snapshots_of("snap_a15-b"), "3,6,9,12");
        run(&format!(
            "SELECT es.append_events('snap_a15-b', '{}')",
            batch(2)
        ));
        assert_eq!(snapshots_of("snap_a15-b"), "3,6,9,12,15");
        // what each snapshot records
        assert_eq!(
            one_text(
                "SELECT string_agg(DISTINCT stream_type || ':' || revision, ',') FROM es.snapshots
                  WHERE stream_id IN ('snap_a15-a', 'snap_a15-b')"
            ),
            "snap_a15:1"
        );
        // each snapshot's state is the fold from scratch up to its version
        assert!(one_bool(
            "SELECT count(*) = 8 AND bool_and(s.state::text =
                       (SELECT es.fold(e ORDER BY e.version)::text FROM es.events e
                         WHERE e.stream_id = s.stream_id AND e.version <= s.version))
               FROM es.snapshots s WHERE s.stream_id IN ('snap_a15-a', 'snap_a15-b')"
        ));
        assert_eq!(
            one_text("SELECT state->>'balance' FROM es.snapshots WHERE stream_id = 'snap_a15-b' AND version = 15"),
            "2.50"
        );
        assert_eq!(
            one_text("SELECT state::text FROM es.snapshots WHERE stream_id = 'snap_a15-a' AND version = 6"),
            canon(r#"{"owner": "A", "balance": 22.5, "isActive": true, "transactionCount": 6}"#)
        );
        // rows written directly (as a restore does) take none
        run(&format!(
            "INSERT INTO es.events (global_position, stream_id, stream_type, version, event_type, data, event_id)
             VALUES ({}, 'snap_a15-c', 'snap_a15', 3, 'X', '{{}}', es.uuid_generate_v7())",
            raw_position(1)
        ));
        assert_eq!(snapshots_of("snap_a15-c"), "");
    }

    #[pg_test]
    fn every_step_on_a_state_read_from_a_snapshot_gives_the_fold_from_scratch() {
        // A snapshot's state is read lazily: each step opens only what it
        // changes. Every step, on nested places inside the stored state, must
        // give what the fold of every event gives, at every version.
        define_reducers(
            "lazy_a31",
            r#"{
              "Opened":  [{"set": "meta", "value": {"tags": ["a"], "limits": {"day": 100, "month": 1000}}},
                          {"set": "entries", "value": []}],
              "Posted":  [{"append": "entries", "from": {"n": "$.n", "v": "$version"}},
                          {"add": "meta.limits.day", "from": "$.n"}],
              "Tagged":  [{"append": "meta.tags", "from": "$.tag"}],
              "Patched": [{"merge": "meta", "from": "$.patch"}],
              "Dropped": [{"unset": "meta.limits.month"}],
              "Named":   [{"set": "meta.owner.name", "from": "$.name"}],
              "Reset":   [{"set": "entries", "value": []}],
              "*":       [{"inc": "count"}]
            }"#,
            "{}",
            2,
        );
        let s = "lazy_a31-1";
        let events = [
            ("Opened", "{}"),
            ("Posted", r#"{"n": 1}"#),
            ("Posted", r#"{"n": 2.5}"#),
            ("Tagged", r#"{"tag": "b"}"#),
            ("Posted", r#"{"n": 3}"#),
            (
                "Patched",
                r#"{"patch": {"limits": {"week": 7, "day": null}, "tags": ["c"]}}"#,
            ),
            ("Posted", r#"{"n": 4}"#),
            ("Dropped", "{}"),
            ("Named", r#"{"name": "Ann"}"#),
            ("Tagged", r#"{"tag": "d"}"#),
            ("Posted", r#"{"n": 5}"#),
            ("Reset", "{}"),
            ("Posted", r#"{"n": 6}"#),
            ("Named", r#"{"name": "Bo"}"#),
        ];
        for (i, (t, d)) in events.iter().enumerate() {
            append(s, t, d);
            let v = i as i64 + 1;
            // es.load of the newest version starts from the snapshot at or below it
            let scratch = fold_upto(s, v).expect("a state");
            assert_eq!(load(s, Some(v)), format!("{v} {scratch}"), "version {v}");
        }
        assert_eq!(snapshots_of(s), "2,4,6,8,10,12,14");
        assert_eq!(
            load_state(s),
            canon(
                r#"{"meta": {"tags": ["c", "d"], "limits": {"week": 7, "day": 15}, "owner": {"name": "Bo"}},
                    "entries": [{"n": 6, "v": 13}], "count": 14}"#
            )
        );
    }

    #[pg_test]
    fn snapshot_every_zero_takes_none() {
        define_reducers("snapnone_a16", BANK, "{}", 0);
        for _ in 0..10 {
            append("snapnone_a16-1", "MoneyDeposited", r#"{"amount": 1}"#);
        }
        run(r#"SELECT es.append_events('snapnone_a16-1',
                 (SELECT jsonb_agg('{"type": "MoneyDeposited", "data": {"amount": 1}}'::jsonb) FROM generate_series(1, 100)))"#);
        assert_eq!(snapshots_of("snapnone_a16-1"), "");
        assert_eq!(
            one_text("SELECT version || ' ' || (state->>'balance') FROM es.load('snapnone_a16-1')"),
            "110 110"
        );
        // switching snapshots on later takes them from then on
        define_reducers("snapnone_a16", BANK, "{}", 50);
        append("snapnone_a16-1", "MoneyDeposited", r#"{"amount": 1}"#);
        assert_eq!(snapshots_of("snapnone_a16-1"), "");
        run(r#"SELECT es.append_events('snapnone_a16-1',
                 (SELECT jsonb_agg('{"type": "MoneyDeposited", "data": {"amount": 1}}'::jsonb) FROM generate_series(1, 100)))"#);
        assert_eq!(snapshots_of("snapnone_a16-1"), "150,200");
        assert_eq!(
            one_text("SELECT revision || ':' || (state->>'transactionCount') FROM es.snapshots WHERE stream_id = 'snapnone_a16-1' AND version = 200"),
            "2:200"
        );
    }

    #[pg_test]
    fn load_starts_from_snapshots_of_the_current_revision_only() {
        define_reducers("tamper_a17", BANK, "{}", 3);
        let s = "tamper_a17-1";
        append(s, "AccountOpened", r#"{"owner": "T"}"#);
        for _ in 2..=10 {
            append(s, "MoneyDeposited", r#"{"amount": 1}"#);
        }
        assert_eq!(snapshots_of(s), "3,6,9");
        let tampered = |v: i64| {
            one_bool(&format!(
                "SELECT coalesce((state->>'tampered')::boolean, false) FROM es.load('{s}', {v})"
            ))
        };
        run(&format!(
            "UPDATE es.snapshots SET state = state || '{{\"tampered\": true}}' WHERE stream_id = '{s}' AND version = 6"
        ));
        let seen: Vec<bool> = (0..=10).map(tampered).collect();
        assert_eq!(
            seen,
            [false, false, false, false, false, false, true, true, true, false, false]
        );
        // with no version given, the newest snapshot is used too
        run(&format!(
            "UPDATE es.snapshots SET state = state || '{{\"tampered\": true}}' WHERE stream_id = '{s}' AND version = 9"
        ));
        assert!(one_bool(&format!(
            "SELECT (state->>'tampered')::boolean AND version = 10 AND (state->>'balance') = '9' FROM es.load('{s}')"
        )));
        // es.fold never reads snapshots
        assert_eq!(
            fold_upto(s, 10).unwrap(),
            canon(r#"{"owner": "T", "balance": 9, "isActive": true, "transactionCount": 10}"#)
        );

        // redefining makes every old snapshot unusable
        define_reducers("tamper_a17", BANK, "{}", 3);
        assert_eq!(
            one_i64("SELECT revision FROM es.aggregates WHERE stream_type = 'tamper_a17'"),
            2
        );
        assert!((0..=10).all(|v| !tampered(v)));
        for v in 1..=10 {
            assert_eq!(
                load(s, Some(v)),
                format!("{v} {}", fold_upto(s, v).unwrap())
            );
        }
        // a new definition is seen at once, even where old snapshots exist
        define_reducers(
            "tamper_a17",
            r#"{"MoneyDeposited": [{"add": "deposits", "value": 10}]}"#,
            r#"{"deposits": 0}"#,
            3,
        );
        assert_eq!(
            one_i64("SELECT revision FROM es.aggregates WHERE stream_type = 'tamper_a17'"),
            3
        );
        assert_load(s, None, 10, r#"{"deposits": 90}"#);
        assert_load(s, Some(7), 7, r#"{"deposits": 60}"#);
        // new appends take snapshots of the new revision only, and load uses them
        append(s, "MoneyDeposited", r#"{"amount": 1}"#);
        append(s, "MoneyDeposited", r#"{"amount": 1}"#);
        assert_eq!(
            one_text(&format!(
                "SELECT string_agg(revision || ':' || version, ',' ORDER BY revision, version) FROM es.snapshots WHERE stream_id = '{s}'"
            )),
            "1:3,1:6,1:9,3:12"
        );
        assert_eq!(
            one_text(&format!(
                "SELECT state::text FROM es.snapshots WHERE stream_id = '{s}' AND revision = 3"
            )),
            r#"{"deposits": 110}"#
        );
        run(&format!(
            "UPDATE es.snapshots SET state = '{{\"deposits\": -1}}' WHERE stream_id = '{s}' AND revision = 3"
        ));
        assert_load(s, None, 12, r#"{"deposits": -1}"#);
        assert_load(s, Some(11), 11, r#"{"deposits": 100}"#);
    }

    #[pg_test]
    fn load_of_a_stream_recorded_under_another_type_uses_that_types_snapshots() {
        // es.load reads the stream's row and a snapshot in one statement,
        // guessing the type from the id: here the guess (idtype_a31, also
        // defined, at the same revision) is wrong.
        define_reducers("idtype_a31", BANK, "{}", 2);
        define_reducers("rectype_a31", BANK, "{}", 2);
        let s = "idtype_a31-1";
        run(&format!(
            "SELECT es.append_event('{s}', 'AccountOpened', '{{\"owner\": \"R\"}}', stream_type => 'rectype_a31')"
        ));
        for _ in 2..=5 {
            run(&format!(
                "SELECT es.append_event('{s}', 'MoneyDeposited', '{{\"amount\": 1}}')"
            ));
        }
        assert_eq!(snapshots_of(s), "2,4");
        assert_eq!(
            one_text(&format!(
                "SELECT string_agg(DISTINCT stream_type, ',') FROM es.snapshots WHERE stream_id = '{s}'"
            )),
            "rectype_a31"
        );
        run(&format!(
            "UPDATE es.snapshots SET state = state || '{{\"tampered\": true}}' WHERE stream_id = '{s}' AND version = 4"
        ));
        assert!(one_bool(&format!(
            "SELECT stream_type = 'rectype_a31' AND version = 5 AND (state->>'tampered')::boolean
                    AND (state->>'balance') = '4' FROM es.load('{s}')"
        )));
        assert!(one_bool(&format!(
            "SELECT state->>'tampered' IS NULL AND (state->>'balance') = '2' FROM es.load('{s}', 3)"
        )));
        // the id's own type gets a new revision: the guess now matches no snapshot
        define_reducers("idtype_a31", BANK, "{}", 2);
        assert!(one_bool(&format!(
            "SELECT (state->>'tampered')::boolean AND version = 5 FROM es.load('{s}')"
        )));
    }
}
