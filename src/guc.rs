//! Settings (`SET es.max_event_size = '2MB'`, or in postgresql.conf).

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

/// Largest event payload accepted, in bytes.
pub static MAX_EVENT_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);

pub fn init() {
    GucRegistry::define_int_guc(
        c"es.max_event_size",
        c"Largest event payload (data) that es.append_event and es.append_events accept.",
        c"Appends whose data is larger fail with SQLSTATE 54000 and write nothing.",
        &MAX_EVENT_SIZE,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_BYTE,
    );
}
