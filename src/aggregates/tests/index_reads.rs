//! In-backend tests of aggregates: es.load's reads straight from the indexes
//! (aggregates/index_reads.rs) give what its queries give: the same states,
//! and no more than the caller may read. (Row level security on the
//! extension's tables is tested in a database of its own:
//! tests/integration/tests/security_reads.rs.)

// pgrx-tests calls every test as "tests".<name>(): the module is the SQL schema `tests`.
#[pgrx::pg_schema]
mod tests {
    // The helpers of aggregates::tests, and through them the harness's.
    use super::super::*;
    use pgrx::prelude::*;

    /// An account of `n` events: opened, then deposits of 1..n-1.
    fn account(stream: &str, n: i64) {
        append(stream, "AccountOpened", r#"{"owner": "A"}"#);
        for i in 1..n {
            append(stream, "MoneyDeposited", &format!(r#"{{"amount": {i}}}"#));
        }
    }

    #[pg_test]
    fn a_load_reads_the_snapshot_and_events_after_it_as_its_query_does() {
        define_reducers("ir_a40", BANK, "{}", 3);
        account("ir_a40-a", 8);
        // snapshots at 3 and 6; at every version the load equals the fold
        for v in 1..=8 {
            let folded = fold_upto("ir_a40-a", v).expect("fold");
            assert_eq!(load("ir_a40-a", Some(v)), format!("{v} {folded}"), "at {v}");
        }
        assert_eq!(load("ir_a40-a", None), load("ir_a40-a", Some(8)));
        // a snapshot taken by another revision is not used; an unknown stream is empty
        run("DELETE FROM es.snapshots WHERE stream_id = 'ir_a40-a' AND version = 6");
        assert_eq!(
            load("ir_a40-a", Some(7)),
            format!("7 {}", fold_upto("ir_a40-a", 7).unwrap())
        );
        assert_eq!(load("ir_a40-none", None), "0 {}");
        // read with the statement's snapshot, as the query reads
        assert_eq!(
            one_text(
                "WITH a AS (SELECT es.append_event('ir_a40-a', 'MoneyDeposited', '{\"amount\": 100}'))
                 SELECT (SELECT count(*) FROM a)::text || ' ' || version FROM es.load('ir_a40-a')"
            ),
            "1 8",
            "a load does not see an append made by its own statement"
        );
        assert_eq!(load_state("ir_a40-a"), fold_upto("ir_a40-a", 9).unwrap());
    }

    #[pg_test]
    fn a_load_finds_the_newest_snapshot_however_far_below_it_lies() {
        // The scan looks first within snapshot_every versions below the
        // target (index_reads::latest_snapshot), then further down. Each
        // snapshot is marked, so the state says which one the load used.
        define_reducers("ir_a44", BANK, "{}", 3);
        account("ir_a44-a", 10);
        run(
            "UPDATE es.snapshots SET state = state || jsonb_build_object('from', version)
              WHERE stream_id = 'ir_a44-a'",
        );
        let from = |at: i64| {
            one_text(&format!(
                "SELECT coalesce(state->>'from', 'none') FROM es.load('ir_a44-a', {at})"
            ))
        };
        // near: snapshots 3, 6, 9
        assert_eq!(from(10), "9");
        assert_eq!(from(8), "6");
        assert_eq!(from(5), "3");
        assert_eq!(from(2), "none");
        // the nearest gone: the next one down, more than 3 versions below
        run("DELETE FROM es.snapshots WHERE stream_id = 'ir_a44-a' AND version = 9");
        assert_eq!(from(10), "6");
        assert_eq!(
            one_text("SELECT coalesce(state->>'from', 'none') FROM es.load('ir_a44-a')"),
            "6"
        );
        // whichever snapshot it starts from, the state is the fold's
        run("UPDATE es.snapshots SET state = state - 'from' WHERE stream_id = 'ir_a44-a'");
        for v in [5, 8, 10] {
            assert_eq!(
                load("ir_a44-a", Some(v)),
                format!("{v} {}", fold_upto("ir_a44-a", v).unwrap())
            );
        }
    }

    #[pg_test]
    fn a_load_of_an_archived_stream_reads_the_archive() {
        define_reducers("ir_a43", BANK, "{}", 0);
        account("ir_a43-a", 4);
        account("ir_a43-b", 3);
        let (a, b) = (load("ir_a43-a", None), load("ir_a43-b", None));
        run("SELECT es.archive_stream('ir_a43-a')");
        // the stream's row marks it archived: its events are read from es.archived_events
        assert_eq!(load("ir_a43-a", None), a);
        assert_eq!(
            load("ir_a43-a", Some(2)),
            format!("2 {}", fold_upto("ir_a43-b", 2).unwrap())
        );
        // the other stream is read from es.events as before
        assert_eq!(load("ir_a43-b", None), b);
        run("SELECT es.unarchive_stream('ir_a43-a')");
        assert_eq!(load("ir_a43-a", None), a);
    }

    #[pg_test]
    fn a_load_needs_the_rights_its_query_needs() {
        define_reducers("ir_a41", BANK, "{}", 2);
        account("ir_a41-a", 5);
        let full = load("ir_a41-a", None);
        run("CREATE ROLE ir_a41_reader; SELECT es.grant_reader('ir_a41_reader')");
        run("SET ROLE ir_a41_reader");
        assert_eq!(load("ir_a41-a", None), full);
        run("RESET ROLE");
        // SELECT on only some columns of es.events: the load fails, as its query does
        run("CREATE ROLE ir_a41_cols;
             GRANT USAGE ON SCHEMA es TO ir_a41_cols;
             GRANT SELECT ON es.streams, es.snapshots, es.archived_events TO ir_a41_cols;
             GRANT SELECT (global_position, stream_id, version) ON es.events TO ir_a41_cols");
        run("SET ROLE ir_a41_cols");
        assert_error(
            "PERFORM es.load('ir_a41-a')",
            "42501",
            "permission denied for table events",
        );
        run("RESET ROLE");
        // and without SELECT on es.snapshots
        run("CREATE ROLE ir_a41_nosnap;
             GRANT USAGE ON SCHEMA es TO ir_a41_nosnap;
             GRANT SELECT ON es.streams, es.events, es.archived_events TO ir_a41_nosnap");
        run("SET ROLE ir_a41_nosnap");
        assert_error(
            "PERFORM es.load('ir_a41-a')",
            "42501",
            "permission denied for table snapshots",
        );
        run("RESET ROLE");
    }
}
