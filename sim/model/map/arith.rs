//! In-array integer arithmetic for mapped layers: values held bit-serially in columns with a
//! known interval, scaled sums reduced in one bit heap, requantization, compares with
//! constants and saturation — every step emitted as CRAM ops through a [`Builder`].
//!
//! A [`Signal`] is Σ ±2^shift·bit + offset over columns, with a compile-time interval
//! [lo, hi] of the values it can take. Interval arithmetic fixes every heap's width: a sum
//! whose exact range fits w signed bits is computed modulo 2^w and is therefore exact. Scaled
//! terms enter the heap by the canonical-signed-digit (CSD) digits of the scale
//! (Reitwiesner), so zero digits cost nothing; a negative term −2^k·b enters as ¬b at weight k
//! plus the constant −2^k (two's complement), so only bits are ever summed.
//!
//! Requantization follows the integer scheme of Jacob et al. (CVPR 2018, eq. 6) exactly as
//! `cram_workloads::quant::round_shift` defines it (ties away from zero):
//! round(p/2^S) = ⌊(p + 2^(S−1) − [p<0]) / 2^S⌋, and the output zero point folds in as
//! + z·2^S before the shift.

use crate::error::MapError;
use crate::model::engine::isa::Col;
use crate::model::kernels::heap::{BitHeap, HeapBit};
use crate::model::kernels::{Builder, csd_digits};
use cram_workloads::quant::ActQuant;

/// Widest heap (the executor's bit heaps are at most 64 bits wide).
pub const MAX_WIDTH: u32 = 64;

/// One bit of a signal: contributes ±2^shift when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bit {
    /// The column.
    pub col: Col,
    /// Weight exponent.
    pub shift: u32,
    /// Whether the weight is negative (the sign bit of a two's-complement value).
    pub neg: bool,
}

/// A value held in columns: Σ ±2^shift·bit + offset, known to lie in [lo, hi].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The bits.
    pub bits: Vec<Bit>,
    /// Constant added.
    pub offset: i128,
    /// Smallest value.
    pub lo: i128,
    /// Largest value.
    pub hi: i128,
}

/// How an activation code is stored in a lane: `bits` columns, two's complement if `signed`;
/// a binary (±1) code is one bit, set for +1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coding {
    /// Columns.
    pub bits: u32,
    /// Two's complement.
    pub signed: bool,
    /// ±1 in one bit.
    pub binary: bool,
}

impl Coding {
    /// The coding of an activation format.
    pub fn of(q: &ActQuant) -> Coding {
        Coding {
            bits: q.bits,
            signed: q.signed && !q.binary,
            binary: q.binary,
        }
    }

    /// A two's-complement coding of `bits` bits.
    pub fn signed(bits: u32) -> Coding {
        Coding {
            bits,
            signed: true,
            binary: false,
        }
    }

    /// An unsigned coding of `bits` bits.
    pub fn unsigned(bits: u32) -> Coding {
        Coding {
            bits,
            signed: false,
            binary: false,
        }
    }

    /// The bits stored for a code (low `bits` bits).
    pub fn encode(self, code: i64) -> u64 {
        if self.binary {
            u64::from(code > 0)
        } else if self.bits >= 64 {
            code as u64
        } else {
            code as u64 & ((1u64 << self.bits) - 1)
        }
    }

    /// The code of stored bits.
    pub fn decode(self, bits: u64) -> i64 {
        if self.binary {
            if bits & 1 == 1 { 1 } else { -1 }
        } else if self.signed && self.bits < 64 {
            let s = 64 - self.bits;
            ((bits << s) as i64) >> s
        } else {
            bits as i64
        }
    }

    /// The code range [lo, hi].
    pub fn range(self) -> (i128, i128) {
        if self.binary {
            (-1, 1)
        } else if self.signed {
            (-(1i128 << (self.bits - 1)), (1i128 << (self.bits - 1)) - 1)
        } else {
            (0, (1i128 << self.bits) - 1)
        }
    }

    /// The value of columns `cols` holding a code of this coding.
    pub fn signal(self, cols: &[Col]) -> Signal {
        debug_assert_eq!(cols.len(), self.bits as usize);
        let (lo, hi) = self.range();
        if self.binary {
            // ±1 = 2·b − 1.
            return Signal {
                bits: vec![Bit {
                    col: cols[0],
                    shift: 1,
                    neg: false,
                }],
                offset: -1,
                lo,
                hi,
            };
        }
        Signal::binary(cols, self.signed, lo, hi)
    }
}

impl Signal {
    /// Its columns.
    pub fn cols(&self) -> Vec<Col> {
        self.bits.iter().map(|x| x.col).collect()
    }

    /// The raw columns of a sum (its value modulo 2^n, bit 0 first) as a canonical
    /// two's-complement signal known to lie in [lo, hi].
    pub fn raw(cols: &[Col], lo: i128, hi: i128) -> Signal {
        Signal::binary(cols, true, lo, hi)
    }

    /// Positional binary columns, bit 0 first; the top bit weighs −2^(n−1) when `signed`.
    fn binary(cols: &[Col], signed: bool, lo: i128, hi: i128) -> Signal {
        let n = cols.len();
        Signal {
            bits: cols
                .iter()
                .enumerate()
                .map(|(i, &col)| Bit {
                    col,
                    shift: i as u32,
                    neg: signed && i == n - 1,
                })
                .collect(),
            offset: 0,
            lo,
            hi,
        }
    }
}

/// Smallest two's-complement width holding every value of [lo, hi].
pub fn signed_width(lo: i128, hi: i128) -> u32 {
    let need = |v: i128| {
        if v >= 0 {
            129 - v.leading_zeros()
        } else {
            129 - (!v).leading_zeros()
        }
    };
    need(lo).max(need(hi)).max(1)
}

/// The interval of m·[lo, hi].
pub fn scale_interval(lo: i128, hi: i128, m: i128) -> (i128, i128) {
    if m >= 0 {
        (lo * m, hi * m)
    } else {
        (hi * m, lo * m)
    }
}

/// A sum under construction: a bit heap plus the interval of its exact value.
#[derive(Debug)]
pub struct Sum {
    heap: BitHeap,
    width: u32,
    lo: i128,
    hi: i128,
}

impl Sum {
    /// An empty sum whose exact value is known to lie in [lo, hi], to be reduced on `b` (a
    /// counting builder's sum keeps counts only); fails if that range needs more than
    /// [`MAX_WIDTH`] bits.
    pub fn new(b: &Builder, lo: i128, hi: i128) -> Result<Sum, MapError> {
        let width = signed_width(lo, hi);
        if width > MAX_WIDTH {
            return Err(MapError::SumTooWide {
                lo,
                hi,
                width,
                max: MAX_WIDTH,
            });
        }
        Ok(Sum {
            heap: if b.is_counting() {
                BitHeap::counting(width)
            } else {
                BitHeap::new(width)
            },
            width,
            lo,
            hi,
        })
    }

    /// The heap's width.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Adds a constant.
    pub fn constant(&mut self, c: i128) {
        self.heap.add_constant(c);
    }

    /// Adds ±2^w·lit: a positive term is the literal itself, a negative one its complement
    /// plus −2^w.
    pub fn literal(&mut self, w: u32, lit: Lit, negative: bool) {
        if w >= self.width {
            return;
        }
        let bit = heap_bit(lit, negative);
        self.heap.push(w, bit);
        if negative {
            self.heap.add_constant(-(1i128 << w));
        }
    }

    /// Adds `n` terms like [`Sum::literal`]'s by count only, for a counting builder's closed
    /// form (the columns are placeholders: only the literal's kind matters).
    #[inline]
    pub fn literal_n(&mut self, w: u32, lit: Lit, negative: bool, n: u64) {
        if w >= self.width || n == 0 {
            return;
        }
        self.heap.push_n(w, heap_bit(lit, negative), n);
        if negative {
            self.heap
                .add_constant(-(1i128 << w).wrapping_mul(i128::from(n)));
        }
    }

    /// Adds n·m·s by count only (see [`Sum::literal_n`]).
    pub fn scaled_n(&mut self, s: &Signal, m: i128, n: u64) {
        if m == 0 || n == 0 {
            return;
        }
        if s.lo == s.hi {
            self.heap
                .add_constant(m.wrapping_mul(s.lo).wrapping_mul(i128::from(n)));
            return;
        }
        for b in &s.bits {
            for (j, &d) in csd_digits(m).iter().enumerate() {
                if d != 0 {
                    self.literal_n(b.shift + j as u32, Lit::Col(b.col), (d < 0) ^ b.neg, n);
                }
            }
        }
        self.heap
            .add_constant(m.wrapping_mul(s.offset).wrapping_mul(i128::from(n)));
    }

    /// Adds m·s (its bits by m's CSD digits, and m·offset). A signal whose interval is one
    /// value adds as that constant: its columns are then constant too, and a heap given one
    /// column at several weights could meet it twice in one gate (a carry of x + 1 is x).
    pub fn scaled(&mut self, s: &Signal, m: i128) {
        if m == 0 {
            return;
        }
        if s.lo == s.hi {
            self.heap.add_constant(m.wrapping_mul(s.lo));
            return;
        }
        let digits = csd_digits(m);
        self.scaled_digits(s, &digits);
        self.heap.add_constant(m.wrapping_mul(s.offset));
    }

    /// Adds m·s given m's CSD digits, without s's offset.
    pub fn scaled_digits(&mut self, s: &Signal, digits: &[i8]) {
        for b in &s.bits {
            for (j, &d) in digits.iter().enumerate() {
                if d != 0 {
                    self.literal(b.shift + j as u32, Lit::Col(b.col), (d < 0) ^ b.neg);
                }
            }
        }
    }

    /// Adds x·y of two signals: the partial products x_i ∧ y_k (lazy ANDs), the offsets'
    /// cross terms and their product.
    pub fn product(&mut self, x: &Signal, y: &Signal) {
        for a in &x.bits {
            for c in &y.bits {
                self.literal(a.shift + c.shift, Lit::And(a.col, c.col), a.neg ^ c.neg);
            }
        }
        let bare = |s: &Signal| Signal {
            offset: 0,
            ..s.clone()
        };
        self.scaled(&bare(x), y.offset);
        self.scaled(&bare(y), x.offset);
        self.heap.add_constant(x.offset.wrapping_mul(y.offset));
    }

    /// Emits the reduction; the result is the exact value as a two's-complement signal.
    pub fn reduce(self, b: &mut Builder) -> Signal {
        let n = self.width;
        let cols = self.heap.reduce(b);
        Signal {
            bits: cols
                .into_iter()
                .enumerate()
                .map(|(i, col)| Bit {
                    col,
                    shift: i as u32,
                    neg: i as u32 == n - 1,
                })
                .collect(),
            offset: 0,
            lo: self.lo,
            hi: self.hi,
        }
    }

    /// Emits the reduction and returns the raw result columns (the value modulo 2^width).
    pub fn reduce_raw(self, b: &mut Builder) -> Vec<Col> {
        self.heap.reduce(b)
    }

    /// [`Sum::reduce_raw`], leaving the sum empty for another of the same interval (a
    /// chunked reduction's next chunk), its heap kept rather than allocated again.
    pub fn reduce_raw_and_empty(&mut self, b: &mut Builder) -> Vec<Col> {
        self.heap.reduce_and_empty(b)
    }
}

fn heap_bit(lit: Lit, negative: bool) -> HeapBit {
    match (lit, negative) {
        (Lit::Col(c), false) => HeapBit::Col {
            col: c,
            owned: false,
        },
        (Lit::Owned(c), false) => HeapBit::Col {
            col: c,
            owned: true,
        },
        (Lit::Col(c) | Lit::Owned(c), true) => HeapBit::Not(c),
        (Lit::And(a, b), false) => HeapBit::And(a, b),
        (Lit::And(a, b), true) => HeapBit::Nand(a, b),
        (Lit::Xnor(a, b), false) => HeapBit::Xnor(a, b),
        (Lit::Xnor(a, b), true) => HeapBit::Xor(a, b),
    }
}

/// A literal entering a sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lit {
    /// A column (kept).
    Col(Col),
    /// A temporary column the sum frees once consumed.
    Owned(Col),
    /// a ∧ b, emitted lazily.
    And(Col, Col),
    /// ¬(a ⊕ b), emitted lazily.
    Xnor(Col, Col),
}

/// ⌊s / 2^k⌋ of a two's-complement signal (as [`Sum::reduce`] returns): drops the low bits.
pub fn shift_right(s: &Signal, k: u32) -> Signal {
    let n = s.bits.len() as u32;
    let top = s.bits[n as usize - 1];
    let mut bits: Vec<Bit> = s
        .bits
        .iter()
        .filter(|b| !b.neg && b.shift >= k)
        .map(|b| Bit {
            shift: b.shift - k,
            ..*b
        })
        .collect();
    bits.push(Bit {
        col: top.col,
        shift: (n - 1).saturating_sub(k),
        neg: true,
    });
    let d = 1i128 << k;
    Signal {
        bits,
        offset: 0,
        lo: s.lo.div_euclid(d),
        hi: s.hi.div_euclid(d),
    }
}

/// Carry-only compare of a canonical signal (bits at weights 0..n, the top possibly
/// negative, no offset) with a constant: returns the column holding `s < k`, or `s ≥ k`
/// if `ge`, and whether that column is a new temporary (false: it is one of `s`'s own
/// columns). The caller makes sure the answer is not a constant (lo < k ≤ hi).
///
/// s − k in n+1 bits: s sign-extended plus K = (−k) mod 2^(n+1); only the carries into each
/// weight are formed (one AND or OR per bit, constant carries fold), then
/// sign = s_ext ⊕ K_n ⊕ c_n.
pub fn compare_const(b: &mut Builder, s: &Signal, k: i128, ge: bool) -> (Col, bool) {
    debug_assert!(s.offset == 0 && s.lo < k && k <= s.hi);
    let n = s.bits.len();
    debug_assert!(
        s.bits
            .iter()
            .enumerate()
            .all(|(i, x)| x.shift as usize == i)
    );
    let top_neg = s.bits[n - 1].neg;
    let m = n as u32 + 1;
    let kk = (-k).rem_euclid(1i128 << m);
    // The carry into weight i: None is the constant 0 (it never becomes the constant 1:
    // from 0 a set constant bit gives t_i, a clear one keeps 0), else (column, owned).
    let mut carry: Option<(Col, bool)> = None;
    for i in 0..n {
        let t = s.bits[i].col;
        let ki = kk >> i & 1 == 1;
        carry = match (ki, carry) {
            (true, None) => Some((t, false)),
            (false, None) => None,
            (_, Some((c, owned))) => {
                // MAJ(t, k, c) with k constant: t ∨ c for k = 1, t ∧ c for k = 0.
                let r = if ki { b.or(t, c) } else { b.and(t, c) };
                if owned {
                    b.release(c);
                }
                Some((r, true))
            }
        };
    }
    let kn = kk >> n & 1 == 1;
    // sign = ext ⊕ kn ⊕ carry; the result wanted is sign (lt) or ¬sign (ge).
    let flip = kn ^ ge;
    let x = top_neg.then(|| s.bits[n - 1].col);
    let c_col = carry;
    match (x, c_col) {
        (None, None) => (b.constant(flip), true),
        (Some(x), None) | (None, Some((x, false))) => {
            if flip {
                (b.not(x), true)
            } else {
                (x, false)
            }
        }
        (None, Some((c, true))) => {
            if flip {
                let r = b.not(c);
                b.release(c);
                (r, true)
            } else {
                (c, true)
            }
        }
        (Some(x), Some((c, owned))) => {
            let r = if flip { b.xnor(x, c) } else { b.xor(x, c) };
            if owned {
                b.release(c);
            }
            (r, true)
        }
    }
}

/// Saturates a canonical signal to [lo, hi] and returns the output code's columns in
/// `out` coding (not binary). Compares are emitted only where the interval can leave the
/// range; a value that always saturates becomes constant columns.
pub fn clamp(b: &mut Builder, t: &Signal, lo: i128, hi: i128, out: Coding) -> Vec<Col> {
    debug_assert!(!out.binary);
    let n_out = out.bits as usize;
    let bit_of = |v: i128, i: usize| v >> i & 1 == 1;
    if t.hi < lo || t.lo > hi {
        let v = if t.hi < lo { lo } else { hi };
        return (0..n_out).map(|i| b.constant(bit_of(v, i))).collect();
    }
    let under_o = (t.lo < lo).then(|| compare_const(b, t, lo, false));
    let over_o = (t.hi > hi).then(|| compare_const(b, t, hi + 1, true));
    let (under, over) = (under_o.map(|u| u.0), over_o.map(|o| o.0));
    let n_t = t.bits.len();
    let top = t.bits[n_t - 1];
    // Bit i of t's two's-complement value (sign-extended above its width).
    let t_bit = |i: usize| -> Option<Col> {
        if i < n_t - 1 || (i == n_t - 1 && !top.neg) {
            Some(t.bits[i].col)
        } else if top.neg {
            Some(top.col)
        } else {
            None
        }
    };
    let inr = match (under, over) {
        (None, None) => None,
        (Some(u), None) => Some(b.not(u)),
        (None, Some(o)) => Some(b.not(o)),
        (Some(u), Some(o)) => Some(b.nor(u, o)),
    };
    let mut cols = Vec::with_capacity(n_out);
    for i in 0..n_out {
        let Some(inr) = inr else {
            cols.push(match t_bit(i) {
                Some(c) => c,
                None => b.constant(false),
            });
            continue;
        };
        let mut v = match t_bit(i) {
            Some(c) => b.and(c, inr),
            None => b.constant(false),
        };
        for (sat, limit) in [(under, lo), (over, hi)] {
            if let Some(s) = sat
                && bit_of(limit, i)
            {
                let r = b.or(v, s);
                b.release(v);
                v = r;
            }
        }
        cols.push(v);
    }
    for (c, owned) in [under_o, over_o, inr.map(|c| (c, true))]
        .into_iter()
        .flatten()
    {
        if owned {
            b.release(c);
        }
    }
    cols
}

/// The multiplier of a requantization.
#[derive(Debug, Clone)]
pub enum Mult<'a> {
    /// One compile-time multiplier for every lane.
    Const(i64),
    /// A per-lane multiplier stored in `cols` (unsigned, bit 0 first); `live[k]` tells
    /// whether column k is non-zero in some lane (all-zero columns are skipped), `max` is
    /// the largest value; `pos` is how many lanes have a non-zero multiplier: `All`, `None`
    /// or `Some(col)` holding the per-lane flag.
    Stored {
        /// Multiplier columns.
        cols: &'a [Col],
        /// Per column: set in some lane.
        live: &'a [bool],
        /// Largest multiplier.
        max: i128,
        /// Which lanes have a non-zero multiplier.
        pos: Nonzero,
    },
}

/// Which lanes have a non-zero stored multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nonzero {
    /// Every lane.
    All,
    /// No lane.
    None,
    /// The lanes whose flag column is set.
    Flag(Col),
}

/// y = clamp(z + round(acc·m / 2^shift), lo, hi) into `out` coding, rounding ties away from
/// zero exactly as `round_shift` does. `acc` is a canonical signal. Returns the output
/// columns and the product's columns (temporaries the caller releases once done, minding
/// that they may alias `acc`'s columns or the outputs).
///
/// The rounded quotient is ⌊P / 2^S⌋ with P = acc·m + 2^(S−1) + z·2^S − [acc·m < 0]. When P
/// fits one [`MAX_WIDTH`]-bit heap it is reduced there and shifted. When it does not (wide
/// accumulators times 31-bit multipliers, or a large shift times the zero point), m and the
/// constant are split into bit chunks at positions b_0 = 0 < b_1 < … ≤ S and reduced chunk
/// by chunk from the bottom, each heap taking the carry of the one below:
/// ⌊(A·2^k + B) / 2^S⌋ = ⌊(A + ⌊B / 2^k⌋) / 2^(S−k)⌋ for integers A, B and k ≤ S, so the
/// result is exact. A constant multiplier whose product can never reach half a step
/// (|acc·m| < 2^(S−1) over acc's interval) rounds to 0 in every lane: the output is then
/// the constant clamp(z).
#[allow(clippy::too_many_arguments)]
pub fn requantize(
    b: &mut Builder,
    acc: &Signal,
    m: &Mult<'_>,
    shift: u32,
    zero: i64,
    lo: i128,
    hi: i128,
    out: Coding,
) -> Result<(Vec<Col>, Vec<Col>), MapError> {
    if let Mult::Const(k) = m
        && rounds_to_zero(acc.lo, acc.hi, i128::from(*k), shift)
    {
        let v = i128::from(zero).clamp(lo, hi);
        let cols = (0..out.bits as usize)
            .map(|i| b.constant(v >> i & 1 == 1))
            .collect();
        return Ok((cols, Vec::new()));
    }
    let half = if shift == 0 { 0 } else { 1i128 << (shift - 1) };
    let c = half + (i128::from(zero) << shift);
    let (m_lo, m_hi) = match m {
        Mult::Const(k) => (i128::from(*k), i128::from(*k)),
        Mult::Stored { max, .. } => (0, *max),
    };
    let (p_lo, p_hi) = product_interval(acc, m_lo, m_hi);
    if signed_width(p_lo + c - 1, p_hi + c) > MAX_WIDTH {
        return requantize_chunked(b, acc, m, shift, c, (lo, hi), out);
    }
    let mut sum = Sum::new(b, p_lo + c - 1, p_hi + c)?;
    sum.constant(c);
    add_product(&mut sum, acc, m, 0, None);
    add_negative_correction(&mut sum, acc, m);
    let v = sum.reduce(b);
    let t = shift_right(&v, shift);
    let cols = clamp(b, &t, lo, hi, out);
    Ok((cols, v.bits.iter().map(|x| x.col).collect()))
}

/// Whether round_shift(a·m, s) is 0 for every a in [lo, hi]: |a·m| < 2^(s−1) (or m = 0).
pub fn rounds_to_zero(lo: i128, hi: i128, m: i128, s: u32) -> bool {
    if m == 0 || (lo == 0 && hi == 0) {
        return true;
    }
    if s == 0 || s > 126 {
        return false;
    }
    let a = lo.unsigned_abs().max(hi.unsigned_abs());
    a.checked_mul(m.unsigned_abs())
        .is_some_and(|p| p < 1u128 << (s - 1))
}

/// The interval of acc·m for m in [m_lo, m_hi].
fn product_interval(acc: &Signal, m_lo: i128, m_hi: i128) -> (i128, i128) {
    let (p1, p2) = scale_interval(acc.lo, acc.hi, m_lo);
    let (p3, p4) = scale_interval(acc.lo, acc.hi, m_hi);
    (p1.min(p2).min(p3).min(p4), p1.max(p2).max(p3).max(p4))
}

/// Adds acc·(the multiplier's bits in `bits_from..bits_to`, shifted down by `bits_from`); the
/// whole multiplier when `bits_to` is `None` and `bits_from` is 0.
fn add_product(sum: &mut Sum, acc: &Signal, m: &Mult<'_>, from: u32, to: Option<u32>) {
    match m {
        Mult::Const(k) => sum.scaled(acc, bit_chunk(i128::from(*k), from, to)),
        Mult::Stored { cols, live, .. } => {
            let to = to.map_or(cols.len(), |t| (t as usize).min(cols.len()));
            for a in &acc.bits {
                for k in from as usize..to {
                    if live[k] {
                        let lit = Lit::And(a.col, cols[k]);
                        sum.literal(a.shift + (k as u32 - from), lit, a.neg);
                    }
                }
            }
        }
    }
}

/// Adds −[acc·m < 0]: the sign of acc in the lanes whose multiplier is positive.
fn add_negative_correction(sum: &mut Sum, acc: &Signal, m: &Mult<'_>) {
    let top = acc.bits[acc.bits.len() - 1];
    match m {
        Mult::Const(k) => {
            // −[p < 0] = −[acc < 0] when k > 0: ¬sign − 1 (a constant for a constant acc).
            if *k > 0 && acc.lo == acc.hi {
                sum.constant(-i128::from(acc.lo < 0));
            } else if *k > 0 && top.neg {
                sum.literal(0, Lit::Col(top.col), true);
            }
        }
        Mult::Stored { pos, .. } => {
            if top.neg {
                match pos {
                    Nonzero::All => sum.literal(0, Lit::Col(top.col), true),
                    Nonzero::None => {}
                    Nonzero::Flag(f) => sum.literal(0, Lit::And(top.col, *f), true),
                }
            }
        }
    }
}

/// [`requantize`] when the product does not fit one heap: the multiplier and the constant in
/// bit chunks, each chunk's heap taking the carry ⌊T / 2^k⌋ of the one below (see there).
fn requantize_chunked(
    b: &mut Builder,
    acc: &Signal,
    m: &Mult<'_>,
    shift: u32,
    c: i128,
    (lo, hi): (i128, i128),
    out: Coding,
) -> Result<(Vec<Col>, Vec<Col>), MapError> {
    let m_bits = match m {
        Mult::Const(k) => 64 - k.unsigned_abs().leading_zeros(),
        Mult::Stored { cols, .. } => cols.len() as u32,
    };
    // The interval of chunk [from, to)'s multiplier (the last chunk: every bit from `from`).
    let m_range = |from: u32, to: Option<u32>| -> (i128, i128) {
        match m {
            Mult::Const(k) => {
                let part = bit_chunk(i128::from(*k), from, to);
                (part, part)
            }
            Mult::Stored { max, .. } => {
                let top = max >> from;
                (0, to.map_or(top, |to| top.min((1i128 << (to - from)) - 1)))
            }
        }
    };
    // The interval of chunk heap T = acc·m_part + c_part + carry (− 1 for the sign term).
    let heap_interval = |from: u32, to: Option<u32>, carry: (i128, i128)| -> (i128, i128) {
        let (ml, mh) = m_range(from, to);
        let (pl, ph) = product_interval(acc, ml, mh);
        let cp = bit_chunk(c, from, to);
        (pl + cp + carry.0 - 1, ph + cp + carry.1)
    };
    // The heap below's columns, freed once the carry they hold has been consumed.
    let mut below: Vec<Col> = Vec::new();
    let mut carry: Option<Signal> = None;
    let mut from = 0u32;
    loop {
        let carry_iv = carry.as_ref().map_or((0, 0), |s| (s.lo, s.hi));
        let (l, h) = heap_interval(from, None, carry_iv);
        let last = signed_width(l, h) <= MAX_WIDTH && from <= shift;
        // The widest next chunk [from, to) with to ≤ shift whose heap fits.
        let to = if last {
            None
        } else {
            (from + 1..=shift).rev().find(|&to| {
                let (l, h) = heap_interval(from, Some(to), carry_iv);
                signed_width(l, h) <= MAX_WIDTH
            })
        };
        if !last && to.is_none() {
            return Err(MapError::RequantTooWide {
                lo: acc.lo,
                hi: acc.hi,
                m_bits,
                shift,
                width: signed_width(l, h),
                max: MAX_WIDTH,
            });
        }
        let (l, h) = heap_interval(from, to, carry_iv);
        let mut sum = Sum::new(b, l, h)?;
        sum.constant(bit_chunk(c, from, to));
        add_product(&mut sum, acc, m, from, to);
        if from == 0 {
            add_negative_correction(&mut sum, acc, m);
        }
        if let Some(cs) = &carry {
            sum.scaled(cs, 1);
        }
        let v = sum.reduce(b);
        // A heap may hand back an input column unchanged (a lone term): keep what the new
        // value or the accumulator still holds.
        below.sort_unstable();
        below.dedup();
        for c in below.drain(..) {
            if !v.bits.iter().chain(&acc.bits).any(|x| x.col == c) {
                b.release(c);
            }
        }
        match to {
            Some(to) => {
                below.extend(v.bits.iter().map(|x| x.col));
                carry = Some(shift_right(&v, to - from));
                from = to;
            }
            None => {
                let t = shift_right(&v, shift - from);
                let cols = clamp(b, &t, lo, hi, out);
                return Ok((cols, v.bits.iter().map(|x| x.col).collect()));
            }
        }
    }
}

/// Bits [from, to) of `c` shifted down by `from` (without `to`: every bit from `from`,
/// arithmetic): a chunk of the multiplier or of the constant.
fn bit_chunk(c: i128, from: u32, to: Option<u32>) -> i128 {
    match to {
        Some(to) => (c >> from) & ((1i128 << (to - from)) - 1),
        None => c >> from,
    }
}

#[cfg(test)]
#[path = "arith_tests.rs"]
mod tests;
