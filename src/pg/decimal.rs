//! Exact decimal numbers for native reducers.
//!
//! Most amounts fit an `i128` mantissa with a decimal scale, which adds and
//! subtracts in a few nanoseconds: `0.1 + 0.2` is exactly `0.3`, and a million
//! deposits of `0.01` are exactly `10000.00`. Anything larger (or a sum that
//! would overflow) falls back to PostgreSQL's own `numeric`, so results are
//! always exact.

use pgrx::pg_sys;
use pgrx::{AnyNumeric, FromDatum};
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Num {
    /// mantissa × 10^-scale
    Dec { m: i128, scale: u32 },
    /// Text of a PostgreSQL numeric too large for `Dec`.
    Big(String),
}

const MAX_SCALE: u32 = 38;

/// 10^0 ..= 10^38, the powers an `i128` holds: looked up, not computed, on
/// every sum of two scales (a fold adds once per event).
const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

fn pow10(n: u32) -> Option<i128> {
    POW10.get(n as usize).copied()
}

impl Num {
    /// The number as a bigint, when it is integral and fits.
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Num::Dec { m, scale } => {
                let p = pow10(*scale)?;
                (m % p == 0).then(|| i64::try_from(m / p).ok()).flatten()
            }
            Num::Big(_) => None,
        }
    }

    pub(crate) fn int(v: i64) -> Num {
        Num::Dec {
            m: v as i128,
            scale: 0,
        }
    }

    /// Parses a JSON number's text (past 38 digits through PostgreSQL's numeric).
    pub(crate) fn parse(s: &str) -> Option<Num> {
        Num::parse_exact(s).or_else(|| {
            AnyNumeric::from_str(s)
                .ok()
                .map(|n| Num::Big(n.to_string()))
        })
    }

    /// Parses a JSON number's text when it fits in 38 digits; pure Rust.
    pub(crate) fn parse_exact(s: &str) -> Option<Num> {
        let (neg, body) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (mant, exp) = match body.find(['e', 'E']) {
            Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
            None => (body, 0),
        };
        let (int, frac) = match mant.find('.') {
            Some(i) => (&mant[..i], &mant[i + 1..]),
            None => (mant, ""),
        };
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let fits = || -> Option<Num> {
            let mut m: i128 = 0;
            for b in int.bytes().chain(frac.bytes()) {
                m = m.checked_mul(10)?.checked_add((b - b'0') as i128)?;
            }
            let mut scale = frac.len() as i64 - exp as i64;
            if scale < 0 {
                m = m.checked_mul(pow10((-scale) as u32)?)?;
                scale = 0;
            }
            if scale > MAX_SCALE as i64 {
                return None;
            }
            Some(Num::Dec {
                m: if neg { -m } else { m },
                scale: scale as u32,
            })
        };
        fits()
    }

    /// Decodes a PostgreSQL numeric in place (as found inside jsonb), without
    /// going through text when it fits.
    ///
    /// # Safety
    /// `n` must point to a valid, untoasted numeric varlena.
    pub(crate) unsafe fn from_numeric(n: pg_sys::Numeric) -> Num {
        const NUMERIC_SIGN_MASK: u16 = 0xC000;
        const NUMERIC_NEG: u16 = 0x4000;
        const NUMERIC_SHORT: u16 = 0x8000;
        const NUMERIC_SPECIAL: u16 = 0xC000;
        const SHORT_SIGN_MASK: u16 = 0x2000;
        const SHORT_DSCALE_MASK: u16 = 0x1F80;
        const SHORT_DSCALE_SHIFT: u16 = 7;
        const SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
        const SHORT_WEIGHT_MASK: u16 = 0x003F;
        const DSCALE_MASK: u16 = 0x3FFF;

        let p = n as *const u8;
        let total = pgrx::varsize_any(p as *const pg_sys::varlena);
        // jsonb keeps numerics with whichever varlena header they had: 1 or 4 bytes
        let hdr = if *p & 0x01 == 0x01 { 1 } else { 4 };
        let base = p.add(hdr);
        let head = (base as *const u16).read_unaligned();
        let (neg, weight, dscale, digits_at) = if head & NUMERIC_SIGN_MASK == NUMERIC_SPECIAL {
            return Num::Big(big_text(n));
        } else if head & NUMERIC_SIGN_MASK == NUMERIC_SHORT {
            let w = (head & SHORT_WEIGHT_MASK) as i32;
            let weight = if head & SHORT_WEIGHT_SIGN_MASK != 0 {
                w - (SHORT_WEIGHT_MASK as i32 + 1)
            } else {
                w
            };
            (
                head & SHORT_SIGN_MASK != 0,
                weight,
                ((head & SHORT_DSCALE_MASK) >> SHORT_DSCALE_SHIFT) as i32,
                2usize,
            )
        } else {
            let weight = (base.add(2) as *const i16).read_unaligned() as i32;
            (
                head & NUMERIC_SIGN_MASK == NUMERIC_NEG,
                weight,
                (head & DSCALE_MASK) as i32,
                4usize,
            )
        };
        let ndigits = (total - hdr - digits_at) / 2;
        let digits = base.add(digits_at) as *const i16;
        let decoded = (|| -> Option<Num> {
            // acc is in units of 10000^(weight - ndigits + 1); rescale to dscale.
            let e = 4 * (weight - ndigits as i32 + 1) + dscale;
            let m = if ndigits <= 4 && (-18..=0).contains(&e) {
                // the usual amount: at most 16 digits, trailing zeros to drop
                // (1.25 is stored as 1|2500), in 64 bits: an i128 division
                // costs a call per event
                let mut acc: u64 = 0;
                for i in 0..ndigits {
                    acc = acc * 10_000 + digits.add(i).read_unaligned() as u64;
                }
                let div = POW10[(-e) as usize] as u64;
                if !acc.is_multiple_of(div) {
                    return None;
                }
                (acc / div) as i128
            } else {
                let mut acc: i128 = 0;
                for i in 0..ndigits {
                    let d = digits.add(i).read_unaligned() as i128;
                    acc = acc.checked_mul(10_000)?.checked_add(d)?;
                }
                if e >= 0 {
                    acc.checked_mul(pow10(e as u32)?)?
                } else {
                    let div = pow10((-e) as u32)?;
                    if acc % div != 0 {
                        return None;
                    }
                    acc / div
                }
            };
            if dscale as u32 > MAX_SCALE {
                return None;
            }
            Some(Num::Dec {
                m: if neg { -m } else { m },
                scale: dscale as u32,
            })
        })();
        decoded.unwrap_or_else(|| Num::Big(big_text(n)))
    }

    fn to_any(&self) -> AnyNumeric {
        AnyNumeric::from_str(&self.to_string()).expect("a decimal's text is a valid numeric")
    }

    /// The sum (or difference) when both fit in 38 digits and so does the
    /// result; pure Rust.
    pub(crate) fn exact_op(&self, other: &Num, negate: bool) -> Option<Num> {
        let (Num::Dec { m: a, scale: sa }, Num::Dec { m: b, scale: sb }) = (self, other) else {
            return None;
        };
        // only the operand with the smaller scale is rescaled (none, mostly)
        let s = (*sa).max(*sb);
        let a = rescale(*a, s - sa)?;
        let b = rescale(*b, s - sb)?;
        let m = if negate {
            a.checked_sub(b)?
        } else {
            a.checked_add(b)?
        };
        Some(Num::Dec { m, scale: s })
    }

    /// `self + other`, or `self - other` when `negate`.
    pub(crate) fn op(&self, other: &Num, negate: bool) -> Num {
        if let Some(r) = self.exact_op(other, negate) {
            return r;
        }
        let r = if negate {
            self.to_any() - other.to_any()
        } else {
            self.to_any() + other.to_any()
        };
        Num::parse(&r.to_string()).unwrap_or_else(|| Num::Big(r.to_string()))
    }
}

/// `m × 10^k`, when it fits; in 64 bits when it can (an overflow-checked
/// 128-bit multiplication is a call).
fn rescale(m: i128, k: u32) -> Option<i128> {
    if k == 0 {
        return Some(m);
    }
    if let (Ok(small), Some(p)) = (i64::try_from(m), POW10.get(k as usize)) {
        if let Some(r) = i64::try_from(*p).ok().and_then(|p| small.checked_mul(p)) {
            return Some(r as i128);
        }
    }
    m.checked_mul(pow10(k)?)
}

/// # Safety
/// `n` is a valid numeric datum.
unsafe fn big_text(n: pg_sys::Numeric) -> String {
    AnyNumeric::from_datum(pg_sys::Datum::from(n), false)
        .map(|a| a.to_string())
        .unwrap_or_else(|| "0".into())
}

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Num::Big(s) => f.write_str(s),
            Num::Dec { m, scale } => {
                let digits = m.unsigned_abs().to_string();
                if *m < 0 {
                    f.write_str("-")?;
                }
                let scale = *scale as usize;
                if scale == 0 {
                    return f.write_str(&digits);
                }
                if digits.len() <= scale {
                    write!(f, "0.{}{}", "0".repeat(scale - digits.len()), digits)
                } else {
                    let (i, fr) = digits.split_at(digits.len() - scale);
                    write!(f, "{i}.{fr}")
                }
            }
        }
    }
}
