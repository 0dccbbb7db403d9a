//! Event ids: UUID version 7 (RFC 9562), time-ordered so that the unique
//! index on `event_id` is appended to at its right edge instead of written at
//! random places.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    // xorshift state, seeded from the strong random source on first use in
    // each backend (backends are forked, so seeding must happen after fork).
    static RNG: Cell<u64> = const { Cell::new(0) };
}

fn next_random() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        if x == 0 {
            let mut seed = [0u8; 8];
            // SAFETY: writes exactly the 8 bytes of `seed`.
            let ok = unsafe { pg_sys::pg_strong_random(seed.as_mut_ptr().cast(), 8) };
            x = u64::from_ne_bytes(seed) | 1;
            if !ok {
                x ^= (std::process::id() as u64) << 32 | now_ms();
            }
        }
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn uuid_v7() -> [u8; 16] {
    let ms = now_ms();
    let (a, b) = (next_random(), next_random());
    let mut u = [0u8; 16];
    u[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    u[6..8].copy_from_slice(&((a as u16 & 0x0fff) | 0x7000).to_be_bytes());
    u[8..].copy_from_slice(&((b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000).to_be_bytes());
    u
}

/// Parses a UUID exactly as PostgreSQL's uuid input does: 32 hex digits,
/// an optional hyphen after any group of four, optionally in braces.
pub(crate) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    let braces = b.first() == Some(&b'{');
    let mut p = usize::from(braces);
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        let hi = (*b.get(p)? as char).to_digit(16)?;
        let lo = (*b.get(p + 1)? as char).to_digit(16)?;
        *byte = (hi * 16 + lo) as u8;
        p += 2;
        if b.get(p) == Some(&b'-') && i % 2 == 1 && i < 15 {
            p += 1;
        }
    }
    if braces {
        if b.get(p) != Some(&b'}') {
            return None;
        }
        p += 1;
    }
    (p == b.len()).then_some(out)
}

/// A new time-ordered (version 7) UUID, the kind the store gives events.
#[pg_extern(volatile, parallel_safe, schema = "es")]
fn uuid_generate_v7() -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(uuid_v7())
}
