//! Adversarial: `es.load` and `es.stream_version` read `es.streams`,
//! `es.snapshots` and `es.events` straight from their indexes, without the
//! executor. A role must get no more from them than its grants and the
//! tables' row level security policies let a query give it: hidden rows stay
//! hidden, columns it was not granted are refused (42501), and with
//! `row_security = off` a policy that would apply is an error, as for a query.
//! (Row level security is switched on for the extension's tables here, in a
//! database of the test's own: the in-backend tests share one database.)

use pg_eventsource_integration::{code_of, describe, exec, TestDb};
use postgres::Client;

const READER: &str = "es_it_sr_reader";
const COLUMNS: &str = "es_it_sr_columns";

/// "version balance" of es.load(stream), or the error's SQLSTATE and message.
fn load(c: &mut Client, stream: &str) -> String {
    match c.query_one(
        "SELECT version::text || ' ' || coalesce(state->>'balance', '-') FROM es.load($1)",
        &[&stream],
    ) {
        Ok(row) => row.get(0),
        Err(e) => format!("{} {}", code_of(&e), describe(&e)),
    }
}

fn version(c: &mut Client, stream: &str) -> String {
    match c.query_one("SELECT es.stream_version($1)", &[&stream]) {
        Ok(row) => row.get::<_, i64>(0).to_string(),
        Err(e) => format!("{} {}", code_of(&e), describe(&e)),
    }
}

fn drop_roles(c: &mut Client) {
    for r in [READER, COLUMNS] {
        exec(c, &format!("DROP ROLE IF EXISTS {r}"));
    }
}

#[test]
fn planless_reads_give_no_more_than_grants_and_policies() {
    let db = TestDb::create_warm("security_reads");
    let mut su = db.connect();
    drop_roles(&mut su);
    exec(
        &mut su,
        r#"SELECT es.define_aggregate('acct',
               reducers => '{"Deposited": [{"add": "balance", "from": "$.amount"}]}',
               initial_state => '{"balance": 0}', snapshot_every => 2);
           SELECT es.append_event('acct-1', 'Deposited', jsonb_build_object('amount', a))
             FROM unnest(ARRAY[1, 2, 4, 8, 16]) a;
           SELECT es.append_event('acct-2', 'Deposited', '{"amount": 100}');"#,
    );
    exec(
        &mut su,
        &format!(
            "CREATE ROLE {READER}; SELECT es.grant_reader('{READER}');
             CREATE ROLE {COLUMNS}; GRANT USAGE ON SCHEMA es TO {COLUMNS};
             GRANT EXECUTE ON FUNCTION es.load(text, bigint), es.stream_version(text) TO {COLUMNS};
             GRANT SELECT (stream_id, version) ON es.streams TO {COLUMNS};"
        ),
    );
    let as_role = |c: &mut Client, role: &str| exec(c, &format!("SET ROLE {role}"));

    // a reader reads everything, as the owner does
    as_role(&mut su, READER);
    assert_eq!(load(&mut su, "acct-1"), "5 31");
    assert_eq!(version(&mut su, "acct-1"), "5");
    exec(&mut su, "RESET ROLE");

    // some columns of es.streams only: es.stream_version's query needs no more and
    // answers; es.load needs the others and is refused, as a query is
    as_role(&mut su, COLUMNS);
    assert_eq!(version(&mut su, "acct-1"), "5");
    let refused = load(&mut su, "acct-1");
    assert!(
        refused.starts_with("42501") && refused.contains("permission denied for table"),
        "{refused}"
    );
    exec(&mut su, "RESET ROLE");

    // policies: the reader sees the streams but acct-2, snapshots up to version 2
    // and events up to version 3
    exec(
        &mut su,
        &format!(
            "ALTER TABLE es.streams ENABLE ROW LEVEL SECURITY;
             ALTER TABLE es.snapshots ENABLE ROW LEVEL SECURITY;
             ALTER TABLE es.events ENABLE ROW LEVEL SECURITY;
             CREATE POLICY sr_streams ON es.streams FOR SELECT TO {READER} USING (stream_id <> 'acct-2');
             CREATE POLICY sr_snapshots ON es.snapshots FOR SELECT TO {READER} USING (version <= 2);
             CREATE POLICY sr_events ON es.events FOR SELECT TO {READER} USING (version <= 3);"
        ),
    );
    as_role(&mut su, READER);
    assert_eq!(
        load(&mut su, "acct-1"),
        "3 7",
        "from the snapshot at 2 (1 + 2) and event 3 (4): 4 and 5 are hidden"
    );
    assert_eq!(version(&mut su, "acct-1"), "5");
    assert_eq!(version(&mut su, "acct-2"), "0", "its row is hidden");
    assert_eq!(load(&mut su, "acct-2"), "0 0");
    exec(&mut su, "SET row_security = off");
    let off = load(&mut su, "acct-1");
    assert!(
        off.starts_with("42501") && off.contains("row-level security"),
        "{off}"
    );
    let off = version(&mut su, "acct-1");
    assert!(
        off.starts_with("42501") && off.contains("row-level security"),
        "{off}"
    );
    exec(&mut su, "RESET row_security; RESET ROLE");
    // the owner (a superuser) is not subject to the policies
    assert_eq!(load(&mut su, "acct-1"), "5 31");
    assert_eq!(version(&mut su, "acct-2"), "1");

    exec(
        &mut su,
        "DROP POLICY sr_streams ON es.streams; DROP POLICY sr_snapshots ON es.snapshots;
         DROP POLICY sr_events ON es.events;",
    );
    exec(&mut su, &format!("DROP OWNED BY {READER}, {COLUMNS}"));
    drop(db);
    drop_roles(&mut pg_eventsource_integration::connect("postgres"));
}
