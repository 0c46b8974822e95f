//! Integer formats and the scalar reference arithmetic (the oracle for CRAM kernels).
//!
//! Rules, stated once:
//! * A value of an `n`-bit format is stored as its `n`-bit two's-complement pattern (signed)
//!   or plain binary (unsigned).
//! * **Wrap** reduces the exact result modulo 2^n and reinterprets it in the format, exactly
//!   as an n-bit ripple adder that drops its carry-out does.
//! * **Saturate** clamps the exact result to the format's range.
//! * Products are exact: an n-bit × m-bit product always fits n+m bits (signed or unsigned),
//!   so [`mul`] never overflows.
//! * [`dot`] accumulates exactly (in i128) and applies the overflow rule once to the final
//!   sum. Under `Wrap` this equals wrapping after every addition (modular arithmetic); under
//!   `Saturate` there is no intermediate clamping.

use crate::error::WorkloadError;

/// A fixed-width integer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntFormat {
    bits: u32,
    signed: bool,
}

/// What to do with a result outside the format's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Keep the low `bits` bits (two's-complement wrap-around).
    Wrap,
    /// Clamp to the nearest representable value.
    Saturate,
}

impl IntFormat {
    /// A format of `bits` bits (1..=64).
    pub fn new(bits: u32, signed: bool) -> Result<Self, WorkloadError> {
        if (1..=64).contains(&bits) {
            Ok(IntFormat { bits, signed })
        } else {
            Err(WorkloadError::BadBits { bits })
        }
    }

    /// Signed `bits`-bit format. Panics on a width outside 1..=64 (use [`IntFormat::new`] for
    /// user input).
    pub fn signed(bits: u32) -> Self {
        Self::new(bits, true).expect("1..=64 bits")
    }

    /// Unsigned `bits`-bit format. Panics on a width outside 1..=64.
    pub fn unsigned(bits: u32) -> Self {
        Self::new(bits, false).expect("1..=64 bits")
    }

    /// Width in bits.
    pub fn bits(self) -> u32 {
        self.bits
    }

    /// Whether values are two's-complement signed.
    pub fn is_signed(self) -> bool {
        self.signed
    }

    /// Mask of the low `bits` bits.
    pub fn mask(self) -> u64 {
        if self.bits == 64 {
            u64::MAX
        } else {
            (1u64 << self.bits) - 1
        }
    }

    /// Smallest representable value.
    pub fn min(self) -> i128 {
        if self.signed {
            -(1i128 << (self.bits - 1))
        } else {
            0
        }
    }

    /// Largest representable value.
    pub fn max(self) -> i128 {
        if self.signed {
            (1i128 << (self.bits - 1)) - 1
        } else {
            (1i128 << self.bits) - 1
        }
    }

    /// Whether `v` is representable.
    pub fn contains(self, v: i128) -> bool {
        (self.min()..=self.max()).contains(&v)
    }

    /// The value whose bit pattern is the low `bits` bits of `raw`.
    pub fn from_bits(self, raw: u64) -> i128 {
        let raw = raw & self.mask();
        if self.signed && self.bits < 128 && raw >> (self.bits - 1) & 1 == 1 {
            raw as i128 - (1i128 << self.bits)
        } else {
            raw as i128
        }
    }

    /// The `bits`-bit pattern of `v` (two's complement), i.e. `v mod 2^bits`.
    pub fn to_bits(self, v: i128) -> u64 {
        (v as u64) & self.mask()
    }

    /// Applies the overflow rule to an exact result.
    pub fn fit(self, v: i128, overflow: Overflow) -> i128 {
        match overflow {
            Overflow::Wrap => self.from_bits(v as u64),
            Overflow::Saturate => v.clamp(self.min(), self.max()),
        }
    }

    /// Short name such as `i8` or `u4`.
    pub fn name(self) -> String {
        format!("{}{}", if self.signed { 'i' } else { 'u' }, self.bits)
    }
}

/// a + b in format `f` under the overflow rule.
pub fn add(a: i128, b: i128, f: IntFormat, overflow: Overflow) -> i128 {
    f.fit(a + b, overflow)
}

/// a − b in format `f` under the overflow rule.
pub fn sub(a: i128, b: i128, f: IntFormat, overflow: Overflow) -> i128 {
    f.fit(a - b, overflow)
}

/// Exact product; it fits `fa.bits() + fb.bits()` bits in the wider signedness.
pub fn mul(a: i128, b: i128) -> i128 {
    a * b
}

/// Σ a_i·b_i accumulated exactly, then fitted to `acc` under the overflow rule.
pub fn dot(
    a: &[i128],
    b: &[i128],
    acc: IntFormat,
    overflow: Overflow,
) -> Result<i128, WorkloadError> {
    if a.len() != b.len() {
        return Err(WorkloadError::Shape(format!(
            "dot of lengths {} and {}",
            a.len(),
            b.len()
        )));
    }
    Ok(acc.fit(a.iter().zip(b).map(|(x, y)| x * y).sum(), overflow))
}

/// Number of 1 bits in the low `bits` bits of `raw`.
pub fn popcount(raw: u64, f: IntFormat) -> i128 {
    i128::from((raw & f.mask()).count_ones())
}

/// Signed/unsigned less-than as 0/1.
pub fn less_than(a: i128, b: i128) -> i128 {
    i128::from(a < b)
}

/// max(a, b).
pub fn max(a: i128, b: i128) -> i128 {
    a.max(b)
}

/// ReLU: max(a, 0).
pub fn relu(a: i128) -> i128 {
    a.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_and_patterns() {
        let i4 = IntFormat::signed(4);
        assert_eq!((i4.min(), i4.max()), (-8, 7));
        assert_eq!(i4.to_bits(-1), 0xF);
        assert_eq!(i4.from_bits(0x8), -8);
        let u4 = IntFormat::unsigned(4);
        assert_eq!((u4.min(), u4.max()), (0, 15));
        assert_eq!(IntFormat::signed(1).min(), -1);
        assert_eq!(IntFormat::signed(64).max(), i64::MAX as i128);
        assert!(IntFormat::new(0, true).is_err() && IntFormat::new(65, false).is_err());
    }

    #[test]
    fn wrap_and_saturate_by_hand() {
        let i8f = IntFormat::signed(8);
        assert_eq!(add(100, 100, i8f, Overflow::Wrap), -56);
        assert_eq!(add(100, 100, i8f, Overflow::Saturate), 127);
        assert_eq!(sub(-100, 100, i8f, Overflow::Saturate), -128);
        assert_eq!(add(200, 100, IntFormat::unsigned(8), Overflow::Wrap), 44);
        assert_eq!(
            dot(&[127, 127], &[127, 127], i8f, Overflow::Saturate).unwrap(),
            127
        );
        assert_eq!(dot(&[3, -2], &[4, 5], i8f, Overflow::Wrap).unwrap(), 2);
        assert!(dot(&[1], &[1, 2], i8f, Overflow::Wrap).is_err());
    }

    proptest! {
        #[test]
        fn wrap_is_modular(bits in 1u32..=64, a in any::<i64>(), b in any::<i64>(), signed: bool) {
            let f = IntFormat::new(bits, signed).unwrap();
            let (a, b) = (f.fit(a as i128, Overflow::Wrap), f.fit(b as i128, Overflow::Wrap));
            let r = add(a, b, f, Overflow::Wrap);
            prop_assert!(f.contains(r));
            prop_assert_eq!(f.to_bits(r), f.to_bits(a).wrapping_add(f.to_bits(b)) & f.mask());
        }

        #[test]
        fn product_fits_sum_of_widths(n in 1u32..=32, m in 1u32..=32, signed: bool, x: i64, y: i64) {
            let (fa, fb) = (IntFormat::new(n, signed).unwrap(), IntFormat::new(m, signed).unwrap());
            let (a, b) = (fa.fit(x as i128, Overflow::Wrap), fb.fit(y as i128, Overflow::Wrap));
            prop_assert!(IntFormat::new(n + m, signed).unwrap().contains(mul(a, b)));
        }
    }
}
