//! In-backend tests (`cargo pgrx test`). Each runs in its own rolled-back
//! transaction, in parallel with the others: every test uses its own streams.

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn append_event_returns_new_version() {
        let v =
            Spi::get_one::<i64>("SELECT es.append_event('t1-a', 'Opened', '{\"x\":1}')").unwrap();
        assert_eq!(v, Some(1));
    }
}
