//! Digit-recurrence arithmetic on lane values (docs/model.md §2.5.2): restoring division,
//! the integer square root digit by digit, a right shift by a per-lane amount (a barrel
//! shifter) and the square of a value. The in-array softmax and LayerNorm (`norm`) are
//! built from these and the bit-heap sums of `arith`.
//!
//! Division and square root decide one result bit per step, most significant first: a
//! trial subtraction (one bit-heap sum), its sign as the bit, and a multiplexer per
//! remainder bit that keeps the trial or the old remainder [derived: the textbook restoring
//! recurrences, e.g. Parhami, "Computer Arithmetic", ch. 13 and 21, tagged recalled]. Both
//! are exact on integers, so the array computes the floor quotient and ⌊√V⌋ that the golden
//! executor computes.

use super::arith::{Bit, Signal, Sum};
use super::linear::release_temps;
use crate::error::MapError;
use crate::model::engine::isa::Col;
use crate::model::kernels::{Builder, csd_digits};

/// One bit of a non-negative value: a constant or a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum B {
    /// 0 in every lane.
    Zero,
    /// 1 in every lane.
    One,
    /// A column.
    Col(Col),
}

impl B {
    /// Its column, a constant written as a constant column.
    pub fn col(self, b: &mut Builder) -> Col {
        match self {
            B::Col(c) => c,
            B::Zero => b.constant(false),
            B::One => b.constant(true),
        }
    }
}

/// A non-negative value in plain binary: bit i is `bits[i]` (absent bits are 0), known to
/// lie in [lo, hi].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    /// Bits, least significant first.
    pub bits: Vec<B>,
    /// Smallest value.
    pub lo: i128,
    /// Largest value.
    pub hi: i128,
}

/// Bits needed for the non-negative value `v` (at least 1).
pub fn bit_len(v: i128) -> u32 {
    debug_assert!(v >= 0);
    (128 - v.leading_zeros()).max(1)
}

impl Plain {
    /// The columns `cols` of an unsigned value in [lo, hi].
    pub fn of_cols(cols: &[Col], lo: i128, hi: i128) -> Plain {
        Plain {
            bits: cols.iter().map(|&c| B::Col(c)).collect(),
            lo,
            hi,
        }
    }

    /// A canonical two's-complement signal known to be ≥ 0 (`lo ≥ 0`): its sign bit is 0 in
    /// every lane and is dropped (released when it is a temporary, index ≥ `first_temp`).
    pub fn of_nonneg(b: &mut Builder, s: Signal, first_temp: Col) -> Plain {
        debug_assert!(s.lo >= 0 && s.offset == 0);
        let mut bits = Vec::with_capacity(s.bits.len());
        for x in &s.bits {
            debug_assert_eq!(x.shift as usize, bits.len());
            if x.neg {
                if x.col >= first_temp {
                    b.release(x.col);
                }
            } else {
                bits.push(B::Col(x.col));
            }
        }
        bits.truncate(bit_len(s.hi) as usize);
        Plain {
            bits,
            lo: s.lo,
            hi: s.hi,
        }
    }

    /// The constant `v` ≥ 0.
    pub fn constant(v: i128) -> Plain {
        Plain {
            bits: (0..bit_len(v))
                .map(|i| bit_const(v >> i & 1 == 1))
                .collect(),
            lo: v,
            hi: v,
        }
    }

    /// Bit i (0 beyond the stored bits).
    pub fn bit(&self, i: usize) -> B {
        self.bits.get(i).copied().unwrap_or(B::Zero)
    }

    /// The value times 2^k (k more low zero bits).
    pub fn shl(&self, k: u32) -> Plain {
        let mut bits = vec![B::Zero; k as usize];
        bits.extend_from_slice(&self.bits);
        Plain {
            bits,
            lo: self.lo << k,
            hi: self.hi << k,
        }
    }

    /// The value as a signal for bit-heap sums (constant bits in the offset).
    pub fn signal(&self) -> Signal {
        let mut s = Signal {
            bits: Vec::new(),
            offset: 0,
            lo: self.lo,
            hi: self.hi,
        };
        for (i, &x) in self.bits.iter().enumerate() {
            match x {
                B::Zero => {}
                B::One => s.offset += 1i128 << i,
                B::Col(col) => s.bits.push(Bit {
                    col,
                    shift: i as u32,
                    neg: false,
                }),
            }
        }
        s
    }

    /// Its columns, the `n` low bits, constants written as constant columns.
    pub fn cols(&self, b: &mut Builder, n: usize) -> Vec<Col> {
        (0..n).map(|i| self.bit(i).col(b)).collect()
    }

    /// Releases its temporary columns (index ≥ `first_temp`) not in `keep`.
    pub fn release(&self, b: &mut Builder, first_temp: Col, keep: &[Col]) {
        release_temps(b, &cols_of(&self.bits), keep, first_temp);
    }
}

/// The columns among `bits`.
pub fn cols_of(bits: &[B]) -> Vec<Col> {
    bits.iter()
        .filter_map(|x| match *x {
            B::Col(c) => Some(c),
            B::Zero | B::One => None,
        })
        .collect()
}

fn bit_const(v: bool) -> B {
    if v { B::One } else { B::Zero }
}

/// s ? take : keep for one bit, given ¬s as well (one multiplexer, or one gate when either
/// side is a constant).
pub fn select(b: &mut Builder, (s, not_s): (Col, Col), keep: B, take: B) -> B {
    match (keep, take) {
        (x, y) if x == y && x != B::Col(s) => x,
        (B::Zero, B::One) => B::Col(b.copy(s)),
        (B::One, B::Zero) => B::Col(b.copy(not_s)),
        (B::Col(a), B::Col(t)) => B::Col(b.mux(s, not_s, a, t)),
        (B::Col(a), B::Zero) => B::Col(b.and(a, not_s)),
        (B::Col(a), B::One) => B::Col(b.or(a, s)),
        (B::Zero, B::Col(t)) => B::Col(b.and(t, s)),
        (B::One, B::Col(t)) => B::Col(b.or(t, not_s)),
        (B::Zero | B::One, B::Zero | B::One) => unreachable!("equal constants returned above"),
    }
}

/// The outcome of a trial subtraction: its sign and what follows from it.
enum Trial {
    /// Never negative: the result bit is 1 in every lane.
    Always(Signal),
    /// Always negative: 0 in every lane.
    Never,
    /// Per lane: (the trial, its sign column, ¬sign).
    Lane(Signal, Col, Col),
}

/// `rem` − `sub` (a signal; its interval [sub_lo, sub_hi]) and its sign.
fn trial(
    b: &mut Builder,
    rem: &Plain,
    sub: &Signal,
    (sub_lo, sub_hi): (i128, i128),
) -> Result<Trial, MapError> {
    let (lo, hi) = (rem.lo - sub_hi, rem.hi - sub_lo);
    if hi < 0 {
        return Ok(Trial::Never);
    }
    let mut sum = Sum::new(b, lo, hi)?;
    sum.scaled(&rem.signal(), 1);
    sum.scaled(sub, -1);
    let t = sum.reduce(b);
    if lo >= 0 {
        return Ok(Trial::Always(t));
    }
    let sign = t.bits.last().expect("a sum has bits").col;
    let ge = b.not(sign);
    Ok(Trial::Lane(t, sign, ge))
}

/// One step of a restoring recurrence: the result bit and the new remainder (`n` bits, in
/// [0, hi]), from the old remainder and its trial. Frees the temporaries (index ≥
/// `first_temp`) of both that the result does not hold, except `protect`'s (a heap's result
/// may alias its inputs' columns, so the borrowed operands of the trial are protected).
fn restore(
    b: &mut Builder,
    rem: Plain,
    t: Trial,
    (n, hi): (usize, i128),
    first_temp: Col,
    protect: &[Col],
) -> (B, Plain) {
    // Bit i of a trial known to be ≥ 0 where it is kept (its sign bit is then 0).
    let tb = |t: &Signal, i: usize| match t.bits.get(i) {
        Some(x) if !x.neg => B::Col(x.col),
        _ => B::Zero,
    };
    let (bit, bits, t) = match t {
        Trial::Never => return (B::Zero, Plain { hi, ..rem }),
        Trial::Always(t) => (B::One, (0..n).map(|i| tb(&t, i)).collect(), t),
        Trial::Lane(t, sign, ge) => {
            let bits: Vec<B> = (0..n)
                .map(|i| select(b, (ge, sign), rem.bit(i), tb(&t, i)))
                .collect();
            (B::Col(ge), bits, t)
        }
    };
    let mut keep: Vec<Col> = protect.to_vec();
    keep.extend(cols_of(&bits));
    keep.extend(cols_of(&[bit]));
    let mut dead = t.cols();
    dead.extend(cols_of(&rem.bits));
    release_temps(b, &dead, &keep, first_temp);
    (bit, Plain { bits, lo: 0, hi })
}

/// ⌊num / den⌋ in `q_bits` bits and the remainder, by restoring division. `num` (consumed)
/// is ≥ 0; `den` ≥ 1 in every lane (a constant or columns) with num < den·2^q_bits. The
/// quotient's bits are new columns or constants; the remainder lies in [0, den.hi − 1].
pub fn divide(
    b: &mut Builder,
    num: Plain,
    den: &Plain,
    q_bits: u32,
    first_temp: Col,
) -> Result<(Plain, Plain), MapError> {
    debug_assert!(den.lo >= 1 && num.lo >= 0);
    let d = den.signal();
    let protect: Vec<Col> = d.bits.iter().map(|x| x.col).collect();
    let mut rem = num;
    let mut q = vec![B::Zero; q_bits as usize];
    let q_hi = (rem.hi / den.lo).min((1i128 << q_bits) - 1);
    for t in (0..q_bits).rev() {
        let step = 1i128 << t;
        let shifted = Signal {
            bits: d
                .bits
                .iter()
                .map(|x| Bit {
                    shift: x.shift + t,
                    ..*x
                })
                .collect(),
            offset: d.offset << t,
            lo: d.lo << t,
            hi: d.hi << t,
        };
        let tr = trial(b, &rem, &shifted, (den.lo * step, den.hi * step))?;
        // After the step the remainder is below den·2^t.
        let hi = rem.hi.min(den.hi * step - 1).max(0);
        let bit;
        (bit, rem) = restore(b, rem, tr, (bit_len(hi) as usize, hi), first_temp, &protect);
        q[t as usize] = bit;
    }
    Ok((
        Plain {
            bits: q,
            lo: 0,
            hi: q_hi,
        },
        rem,
    ))
}

/// ⌊√V⌋ of V = high·2^low + c (0 ≤ c < 2^low, `low` even; `high` ≥ 0, consumed), digit
/// by digit: with y the root's bits above t and R_t = ⌊(V − y²)/4^t⌋ (the old remainder
/// with V's next two bits brought down), bit t is set iff R_t ≥ 4·⌊y/2^(t+1)⌋ + 1, which is
/// then subtracted. Every remainder stays below 2^(K−t+3) for K root bits. The columns of
/// `protect` are never freed.
pub fn isqrt(
    b: &mut Builder,
    high: Plain,
    (low, c): (u32, i128),
    first_temp: Col,
    protect: &[Col],
) -> Result<Plain, MapError> {
    debug_assert!(low % 2 == 0 && (0..1i128 << low).contains(&c));
    let v_hi = (high.hi << low) + c;
    let v_lo = (high.lo << low) + c;
    let k = bit_len(v_hi).div_ceil(2);
    let v_bit = |i: u32| -> B {
        if i < low {
            bit_const(c >> i & 1 == 1)
        } else {
            high.bit((i - low) as usize)
        }
    };
    let mut root: Vec<B> = vec![B::Zero; k as usize];
    let mut rem = Plain {
        bits: Vec::new(),
        lo: 0,
        hi: 0,
    };
    for t in (0..k).rev() {
        // Bring down V's bits 2t and 2t+1 (all of V's bits above, on the first step).
        let mut bits = if t + 1 == k {
            (2 * t..2 * k).map(v_bit).collect::<Vec<B>>()
        } else {
            vec![v_bit(2 * t), v_bit(2 * t + 1)]
        };
        bits.extend_from_slice(&rem.bits);
        let r_hi = (v_hi >> (2 * t)).min(rem.hi * 4 + 3);
        let r = Plain {
            bits,
            lo: 0,
            hi: r_hi,
        };
        // y / 2^(t+1): the root's bits above t.
        let y = Plain {
            bits: root[t as usize + 1..].to_vec(),
            lo: 0,
            hi: (v_hi.isqrt() >> (t + 1)).max(0),
        };
        let mut sub = y.signal();
        for x in &mut sub.bits {
            x.shift += 2;
        }
        sub.offset = sub.offset * 4 + 1;
        let (s_lo, s_hi) = (1, y.hi * 4 + 1);
        (sub.lo, sub.hi) = (s_lo, s_hi);
        let tr = trial(b, &r, &sub, (s_lo, s_hi))?;
        // After the step R < 2·⌊y'/2^t⌋ + 1 for the root y' so far.
        let hi = r_hi.min(2 * (2 * y.hi + 1));
        let bit;
        let mut keep = cols_of(&root);
        keep.extend_from_slice(protect);
        (bit, rem) = restore(b, r, tr, (bit_len(hi) as usize, hi), first_temp, &keep);
        root[t as usize] = bit;
    }
    let mut keep = cols_of(&root);
    keep.extend_from_slice(protect);
    rem.release(b, first_temp, &keep);
    Ok(Plain {
        bits: root,
        lo: v_lo.max(0).isqrt(),
        hi: v_hi.isqrt(),
    })
}

/// ⌊x / 2^z⌋ for a per-lane amount z (its bits `z`, least significant first): one stage of
/// multiplexers per bit of z. `x` is consumed.
pub fn shift_right(b: &mut Builder, x: Plain, z: &[B], first_temp: Col) -> Plain {
    let mut cur = x;
    for (s, &zs) in z.iter().enumerate() {
        let k = 1usize << s;
        let next: Vec<B> = match zs {
            B::Zero => continue,
            B::One => cur.bits.iter().skip(k).copied().collect(),
            B::Col(sel) => {
                let not_sel = b.not(sel);
                let bits = (0..cur.bits.len())
                    .map(|i| select(b, (sel, not_sel), cur.bit(i), cur.bit(i + k)))
                    .collect();
                b.release(not_sel);
                bits
            }
        };
        cur.release(b, first_temp, &cols_of(&next));
        cur = Plain {
            bits: next,
            lo: 0,
            hi: cur.hi,
        };
    }
    cur
}

/// Adds m2·x² + m1·x to `sum`: with x = y + o (o its offset) and y = Σ ±2^wᵢ·bᵢ, each
/// bit bᵢ (a bit squared is itself) and each product bᵢ ∧ bₖ gets one integer coefficient,
/// added by its CSD digits, so no column enters one weight twice and no gate reads a column
/// twice; then the constant m2·o² + m1·o. The bits of `x` are distinct columns.
pub fn add_quadratic(sum: &mut Sum, x: &Signal, m2: i128, m1: i128) {
    use super::arith::Lit;
    let sgn = |neg: bool| if neg { -1i128 } else { 1 };
    let mut terms: Vec<(Lit, i128)> = Vec::new();
    for (i, p) in x.bits.iter().enumerate() {
        let w = 1i128 << p.shift;
        terms.push((
            Lit::Col(p.col),
            m2 * w * w + (2 * m2 * x.offset + m1) * sgn(p.neg) * w,
        ));
        for q in &x.bits[i + 1..] {
            let c = m2 * 2 * sgn(p.neg ^ q.neg) * (w << q.shift);
            terms.push((Lit::And(p.col, q.col), c));
        }
    }
    for (lit, c) in terms {
        for (j, &d) in csd_digits(c).iter().enumerate() {
            if d != 0 {
                sum.literal(j as u32, lit, d < 0);
            }
        }
    }
    sum.constant(m2 * x.offset * x.offset + m1 * x.offset);
}
