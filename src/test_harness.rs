//! The in-backend tests' harness (`cargo pgrx test`): the `pg_test` module
//! pgrx looks for at the crate's root, and the helpers every `tests` module
//! uses. Each module folder keeps its tests beside its code.

use pgrx::prelude::*;

pub(crate) fn run(sql: &str) {
    Spi::run(sql).unwrap();
}

pub(crate) fn one_i64(sql: &str) -> i64 {
    Spi::get_one::<i64>(sql).unwrap().unwrap()
}

pub(crate) fn one_text(sql: &str) -> String {
    Spi::get_one::<String>(sql).unwrap().unwrap()
}

pub(crate) fn opt_text(sql: &str) -> Option<String> {
    Spi::get_one::<String>(sql).unwrap()
}

pub(crate) fn one_bool(sql: &str) -> bool {
    Spi::get_one::<bool>(sql).unwrap().unwrap()
}

/// Runs a PL/pgSQL statement in a subtransaction and returns
/// "SQLSTATE message" of the error it raised ("00000" if none).
pub(crate) fn error_of(stmt: &str) -> String {
    Spi::run(&format!(
        "DO $do$ BEGIN {stmt}; PERFORM set_config('es_test.err', '00000', true);
         EXCEPTION WHEN OTHERS THEN
           PERFORM set_config('es_test.err', SQLSTATE || ' ' || SQLERRM, true); END $do$"
    ))
    .unwrap();
    one_text("SELECT current_setting('es_test.err')")
}

pub(crate) fn assert_error(stmt: &str, sqlstate: &str, fragment: &str) {
    let e = error_of(stmt);
    assert!(
        e.starts_with(sqlstate) && e.contains(fragment),
        "{stmt}\n expected {sqlstate} containing {fragment:?}\n got {e}"
    );
}

pub(crate) fn events_in(stream: &str) -> i64 {
    one_i64(&format!(
        "SELECT count(*) FROM es.events WHERE stream_id = '{stream}'"
    ))
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // The horizon registry lives in shared memory (src/store/horizon.rs).
        vec!["shared_preload_libraries = 'pg_eventsource'"]
    }
}
