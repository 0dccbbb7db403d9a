//! Adversarial: a router (`pg_eventsource_router`) must not let a caller act
//! on the partitions as anyone but itself. Role `secpart_nobody` (no rights in
//! the partition databases) and role `secpart_w` (a writer there) try to
//! choose the user the router connects as: a user mapping of their own with
//! another user name, changing the server's connection strings, calling
//! `es.configure_partitions`, dropping the guard. Every try fails with 42501
//! and the nobody role still cannot write or read through the router; the
//! writer appends as itself.

use pg_eventsource_integration::{
    code_of, connect, connect_as, create_empty_database, describe, drop_database,
    drop_role_if_exists, exec, host, one_i64, port, TestDb,
};
use postgres::Client;

const NOBODY: &str = "secpart_nobody";
const WRITER: &str = "secpart_w";

fn as_role(db: &str, role: &str) -> Client {
    let mut c = connect_as(db, role);
    exec(&mut c, "SET client_min_messages = warning");
    c
}

/// `sql` as `c` must fail with SQLSTATE `code`.
fn refused(c: &mut Client, sql: &str, code: &str) {
    match c.batch_execute(sql) {
        Ok(()) => panic!("{sql}: succeeded, expected {code}"),
        Err(e) => assert_eq!(code_of(&e), code, "{sql}: {}", describe(&e)),
    }
}

#[test]
fn callers_reach_the_partitions_only_as_themselves() {
    let parts = [TestDb::create("secpart_p0"), TestDb::create("secpart_p1")];
    let router = "es_it_secpart_router";
    create_empty_database(router);
    let mut su = connect("postgres");
    drop_role_if_exists(NOBODY);
    drop_role_if_exists(WRITER);
    exec(
        &mut su,
        &format!("CREATE ROLE {NOBODY} LOGIN; CREATE ROLE {WRITER} LOGIN"),
    );
    for db in &parts {
        exec(
            &mut db.connect(),
            &format!("SELECT es.grant_writer('{WRITER}')"),
        );
    }
    let mut r = connect(router);
    exec(
        &mut r,
        "SET client_min_messages = warning; CREATE EXTENSION pg_eventsource_router CASCADE",
    );
    let connstrs: Vec<String> = parts
        .iter()
        .map(|db| format!("host={} port={} dbname={}", host(), port(), db.name))
        .collect();
    r.execute("SELECT es.configure_partitions($1)", &[&connstrs])
        .unwrap();

    // credentials in a connection string would make every caller that user
    for bad in [
        "host=127.0.0.1 dbname=x user=postgres",
        "host=127.0.0.1 dbname=x password=secret",
        "service=admin",
        "postgresql://postgres@127.0.0.1/x",
    ] {
        let e = r
            .execute(
                "SELECT es.configure_partitions(ARRAY[$1, $2])",
                &[&bad, &connstrs[1]],
            )
            .unwrap_err();
        assert_eq!(code_of(&e), "22023", "{bad}: {}", describe(&e));
    }

    for role in [NOBODY, WRITER] {
        let mut c = as_role(router, role);
        // a mapping of its own, naming a superuser: PL/Proxy would connect with it
        refused(
            &mut c,
            &format!(
                "CREATE USER MAPPING FOR {role} SERVER es_partitions OPTIONS (user 'postgres')"
            ),
            "42501",
        );
        refused(
            &mut c,
            "ALTER USER MAPPING FOR PUBLIC SERVER es_partitions OPTIONS (ADD user 'postgres')",
            "42501",
        );
        refused(
            &mut c,
            "ALTER SERVER es_partitions OPTIONS (SET p0 'host=127.0.0.1 dbname=postgres user=postgres')",
            "42501",
        );
        refused(
            &mut c,
            "SELECT es.configure_partitions(ARRAY['host=127.0.0.1 dbname=a', 'host=127.0.0.1 dbname=b'])",
            "42501",
        );
        refused(&mut c, "DROP EVENT TRIGGER es_guard_user_mappings", "42501");
        refused(
            &mut c,
            "ALTER EVENT TRIGGER es_guard_user_mappings DISABLE",
            "42501",
        );
    }
    // nothing changed: no mapping but PUBLIC's, the same strings
    assert_eq!(
        one_i64(
            &mut r,
            "SELECT count(*) FROM pg_user_mappings WHERE srvname = 'es_partitions'"
        ),
        1
    );
    let now: Vec<String> = r
        .query(
            "SELECT connstr FROM es.partitions() ORDER BY partition",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(now, connstrs);

    // the nobody role reaches the partitions as itself: their privileges refuse it
    let mut n = as_role(router, NOBODY);
    for stream in ["sp-a", "sp-b", "sp-c", "sp-d"] {
        let e = n
            .query_one("SELECT es.append_event($1, 'Planted', '{}')", &[&stream])
            .unwrap_err();
        assert_eq!(code_of(&e), "42501", "{stream}: {}", describe(&e));
        let e = n
            .query("SELECT * FROM es.read_stream($1)", &[&stream])
            .unwrap_err();
        assert_eq!(code_of(&e), "42501", "{stream}: {}", describe(&e));
    }
    // the writer appends, as itself
    let mut w = as_role(router, WRITER);
    for stream in ["sp-a", "sp-b", "sp-c", "sp-d"] {
        let v: i64 = w
            .query_one("SELECT es.append_event($1, 'Written', '{}', 0)", &[&stream])
            .unwrap_or_else(|e| panic!("{stream}: {}", describe(&e)))
            .get(0);
        assert_eq!(v, 1);
    }
    let mut total = 0;
    for db in &parts {
        let mut c = db.connect();
        assert_eq!(
            one_i64(
                &mut c,
                "SELECT count(*) FROM es.events WHERE event_type = 'Planted'"
            ),
            0
        );
        total += one_i64(
            &mut c,
            "SELECT count(*) FROM es.events WHERE event_type = 'Written'",
        );
    }
    assert_eq!(total, 4);

    // a superuser still may (passwords for roles whose names differ belong there)
    exec(
        &mut r,
        &format!("CREATE USER MAPPING FOR {WRITER} SERVER es_partitions OPTIONS (user '{WRITER}')"),
    );
    drop(r);
    drop(n);
    drop(w);
    drop_database(router);
    drop(parts);
    drop_role_if_exists(NOBODY);
    drop_role_if_exists(WRITER);
}
