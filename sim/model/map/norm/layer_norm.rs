//! I-BERT's integer LayerNorm as gate programs (docs/model.md §2.5.2): a position's
//! statistics (S and Q, whole or from slices' partial sums, then σ by the digit-by-digit
//! square root) and an output's normalized value by restoring division and its
//! requantization; `super` runs them in passes.

use super::super::arith::{self, Coding, Signal, Sum, signed_width};
use super::super::digit::{self, B, Plain, bit_len, cols_of};
use super::super::elem::{self, centred, job, load};
use super::super::linear::release_temps;
use super::super::linear::{Job, Segment, Source, chunks};
use crate::error::MapError;
use crate::model::engine::isa::Col;
use crate::model::kernels::{Builder, GateSet};
use cram_workloads::ibert::{LAYERNORM_FRAC, LayerNorm};
use cram_workloads::quant::ActQuant;

/// The statistics a LayerNorm lane hands on, per position: S = Σx (centred codes) in
/// `s_bits` two's-complement bits, then σ in `sigma_bits` bits, one unsigned code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// S's interval.
    pub s: (i128, i128),
    /// S's bits.
    pub s_bits: u32,
    /// Q = Σx²'s largest value.
    pub q_hi: i128,
    /// σ's interval.
    pub sigma: (i128, i128),
    /// σ's bits.
    pub sigma_bits: u32,
}

/// Fraction bits of V's scaling (2^32: `ibert::LayerNorm::normalized`).
const V_SHIFT: u32 = 2 * LAYERNORM_FRAC;

/// The interval of Σx and the largest Σx² over `n` centred codes of `x` coding (zero point
/// `z`).
fn centred_sums(x: Coding, z: i64, n: usize) -> ((i128, i128), i128) {
    let (lo, hi) = x.range();
    let (lo, hi) = (lo - i128::from(z), hi - i128::from(z));
    let n = n as i128;
    ((n * lo, n * hi), n * lo.abs().max(hi.abs()).pow(2))
}

impl Stats {
    /// The statistics of `n` centred codes of `x` coding (zero point `z`) with ε `eps` (in
    /// V's units), or why one code cannot hold them.
    pub fn of(x: Coding, z: i64, n: usize, eps: i128) -> Result<Stats, MapError> {
        let n_ = n as i128;
        let (s, q_hi) = centred_sums(x, z, n);
        // Σd² = n²Q − nS² ≤ n²·Q.
        let v_hi = ((n_ * n_ * q_hi + (eps >> V_SHIFT)) << V_SHIFT) + (eps & ((1 << V_SHIFT) - 1));
        let sigma = (eps.isqrt(), v_hi.isqrt());
        let st = Stats {
            s,
            s_bits: signed_width(s.0, s.1),
            q_hi,
            sigma,
            sigma_bits: bit_len(sigma.1),
        };
        let bits = st.s_bits + st.sigma_bits;
        if bits > 63 {
            return Err(MapError::NormStats { features: n, bits });
        }
        Ok(st)
    }

    /// The one code's coding.
    pub fn coding(&self) -> Coding {
        Coding::unsigned(self.s_bits + self.sigma_bits)
    }
}

/// What a LayerNorm statistics lane sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terms {
    /// The position's codes: x and x² each.
    Codes,
    /// Slices' partial sums (S_k, Q_k), one code each.
    Partials(Partial),
}

/// A slice's partial sums S_k = Σx and Q_k = Σx² over at most `len` features, handed on as
/// one code: S_k in two's complement, then Q_k.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// S_k's interval.
    pub s: (i128, i128),
    /// S_k's bits.
    pub s_bits: u32,
    /// Q_k's largest value.
    pub q_hi: i128,
    /// Q_k's bits.
    pub q_bits: u32,
}

impl Partial {
    /// The partial sums of `len` centred codes of `x` coding (zero point `z`), or why one
    /// code cannot hold them.
    pub fn of(x: Coding, z: i64, len: usize) -> Result<Partial, MapError> {
        let (s, q_hi) = centred_sums(x, z, len);
        let p = Partial {
            s,
            s_bits: signed_width(s.0, s.1),
            q_hi,
            q_bits: bit_len(q_hi),
        };
        let bits = p.s_bits + p.q_bits;
        if bits > 63 {
            return Err(MapError::NormStats {
                features: len,
                bits,
            });
        }
        Ok(p)
    }

    /// The one code's coding.
    pub fn coding(&self) -> Coding {
        Coding::unsigned(self.s_bits + self.q_bits)
    }
}

/// S and Q over `n` terms `X(0..n)` in chunks of `chunk`, each kept in its lanes between
/// chunks: their raw columns (S in [s.0, s.1], Q in [0, q_hi]), the segments and the first
/// temporary column (the operands come before it).
#[allow(clippy::type_complexity)]
fn sums(
    b: &mut Builder,
    (x, z): (Coding, i64),
    terms: Terms,
    (n, chunk): (usize, usize),
    (s, q_hi): ((i128, i128), i128),
) -> Result<(Vec<Col>, Vec<Col>, Vec<Segment>, Col), MapError> {
    let code = match terms {
        Terms::Codes => x,
        Terms::Partials(p) => p.coding(),
    };
    let slots: Vec<Vec<Col>> = (0..chunk.min(n))
        .map(|r| b.operand_at("x", r, code.bits))
        .collect();
    let first_temp = b.cols() as Col;
    let (mut acc_s, mut acc_q): (Vec<Col>, Vec<Col>) = (Vec::new(), Vec::new());
    let mut segments = Vec::new();
    for rs in chunks(n, chunk) {
        let start = b.len();
        let mut ss = Sum::new(b, s.0, s.1)?;
        let mut sq = Sum::new(b, 0, q_hi)?;
        for (i, &c) in acc_s.iter().enumerate() {
            ss.literal(i as u32, arith::Lit::Owned(c), false);
        }
        for (i, &c) in acc_q.iter().enumerate() {
            sq.literal(i as u32, arith::Lit::Owned(c), false);
        }
        let mut loads = Vec::new();
        for (j, r) in rs.enumerate() {
            let slot = &slots[j];
            loads.push(load(Source::X(r), slot, code));
            match terms {
                Terms::Codes => {
                    let v = centred(x, slot, z);
                    ss.scaled(&v, 1);
                    digit::add_quadratic(&mut sq, &v, 1, 0);
                }
                Terms::Partials(p) => {
                    let k = p.s_bits as usize;
                    ss.scaled(&Signal::raw(&slot[..k], p.s.0, p.s.1), 1);
                    sq.scaled(&Coding::unsigned(p.q_bits).signal(&slot[k..]), 1);
                }
            }
        }
        let (raw_s, raw_q) = (ss.reduce_raw(b), sq.reduce_raw(b));
        acc_s = elem::owned(b, raw_s, &loads);
        acc_q = elem::owned(b, raw_q, &loads);
        segments.push(Segment {
            loads,
            ops: start..b.len(),
            ..Default::default()
        });
    }
    Ok((acc_s, acc_q, segments, first_temp))
}

/// A slice's partial sums ([`Partial`] of `len` features, `len` ≥ `n`) from its `n` codes
/// `X(0..n)` in one segment.
pub fn ln_partial(
    set: GateSet,
    (x, z): (Coding, i64),
    n: usize,
    len: usize,
) -> Result<Job, MapError> {
    let p = Partial::of(x, z, len)?;
    let mut b = Builder::new(set);
    let (acc_s, acc_q, segments, first_temp) =
        sums(&mut b, (x, z), Terms::Codes, (n, n), (p.s, p.q_hi))?;
    // Q ≥ 0: its sign column is dropped.
    let mut outputs = acc_s;
    outputs.extend_from_slice(&acc_q[..p.q_bits as usize]);
    release_temps(&mut b, &acc_q, &outputs, first_temp);
    Ok(job(b, segments, outputs, p.coding()))
}

/// A LayerNorm position's statistics over its `n` features from `m` terms (its codes, or
/// its slices' partial sums) in chunks of `chunk`: S and Q accumulated chunk by chunk, then
/// H = n²Q − nS² + ⌊E/2^32⌋ and σ = ⌊√(H·2^32 + E mod 2^32)⌋ (`ibert::LayerNorm`'s σ).
pub fn ln_stats(
    set: GateSet,
    (x, z): (Coding, i64),
    (n, terms, m): (usize, Terms, usize),
    chunk: usize,
    eps: i128,
) -> Result<Job, MapError> {
    let st = Stats::of(x, z, n, eps)?;
    let mut b = Builder::new(set);
    let (acc_s, acc_q, mut segments, first_temp) =
        sums(&mut b, (x, z), terms, (m, chunk), (st.s, st.q_hi))?;
    let start = b.len();
    let n_ = n as i128;
    let s = Signal::raw(&acc_s, st.s.0, st.s.1);
    let q = Signal::raw(&acc_q, 0, st.q_hi);
    let e_high = eps >> V_SHIFT;
    let mut h = Sum::new(&b, e_high, n_ * n_ * st.q_hi + e_high)?;
    h.scaled(&q, n_ * n_);
    digit::add_quadratic(&mut h, &s, -n_, 0);
    h.constant(e_high);
    let h = h.reduce(&mut b);
    release_temps(&mut b, &acc_q, &h.cols(), first_temp);
    let h = Plain::of_nonneg(&mut b, h, first_temp);
    let low = eps & ((1 << V_SHIFT) - 1);
    let sigma = digit::isqrt(&mut b, h, (V_SHIFT, low), first_temp, &acc_s)?;
    let mut outputs = acc_s;
    outputs.extend(sigma.cols(&mut b, st.sigma_bits as usize));
    segments.push(Segment {
        loads: Vec::new(),
        ops: start..b.len(),
        ..Default::default()
    });
    Ok(job(b, segments, outputs, st.coding()))
}

/// The requantization constants of a LayerNorm's output lanes: each channel's multiplier
/// (`Source::M`) and bias (`Source::K`) codings, from their ranges.
pub fn ln_constants(ln: &LayerNorm) -> (Coding, Coding) {
    let width = |v: &[i64]| {
        let lo = v.iter().copied().min().unwrap_or(0);
        let hi = v.iter().copied().max().unwrap_or(0);
        Coding::signed(signed_width(i128::from(lo), i128::from(hi)))
    };
    (width(&ln.mult), width(&ln.bias))
}

/// A LayerNorm output from its code `X(0)` of `x` coding (zero point `z`), its position's
/// statistics `W(0)` ([`Stats`]), its channel's multiplier `M` and bias `K`: d = n·x − S,
/// t = ⌊d·2^32/σ⌋ (by restoring division of |d|·2^32, negated and rounded down for d < 0;
/// 0 where σ = 0), then clamp(z_y + round((m·t + B)/2^shift)).
pub fn ln_out(
    set: GateSet,
    (x, z): (Coding, i64),
    n: usize,
    ln: &LayerNorm,
    out: &ActQuant,
) -> Result<Job, MapError> {
    let st = Stats::of(x, z, n, ln.eps)?;
    let (mc, kc) = ln_constants(ln);
    let mut b = Builder::new(set);
    let xs = b.operand("x", x.bits);
    let ss = b.operand("stats", st.s_bits + st.sigma_bits);
    let (ms, ks) = (b.operand("m", mc.bits), b.operand("b", kc.bits));
    let first_temp = b.cols() as Col;
    let n_ = n as i128;
    let s = Signal::raw(&ss[..st.s_bits as usize], st.s.0, st.s.1);
    let sigma = Plain::of_cols(&ss[st.s_bits as usize..], st.sigma.0.max(1), st.sigma.1);
    let xc = centred(x, &xs, z);
    let (d_lo, d_hi) = (n_ * xc.lo - st.s.1, n_ * xc.hi - st.s.0);
    let mut sum = Sum::new(&b, d_lo, d_hi)?;
    sum.scaled(&xc, n_);
    sum.scaled(&s, -1);
    let d = sum.reduce(&mut b);
    // |d| = Σ_{i<top} 2^i·(d_i ⊕ sign) + sign.
    let (a, neg) = if d.lo < 0 {
        let sign = d.bits.last().expect("a sum has bits").col;
        let mut sum = Sum::new(&b, 0, d.lo.abs().max(d.hi))?;
        for x in &d.bits[..d.bits.len() - 1] {
            let f = b.xor(x.col, sign);
            sum.literal(x.shift, arith::Lit::Owned(f), false);
        }
        sum.literal(0, arith::Lit::Col(sign), false);
        let a = sum.reduce(&mut b);
        let low = &d.cols()[..d.bits.len() - 1];
        release_temps(&mut b, low, &a.cols(), first_temp);
        (Plain::of_nonneg(&mut b, a, first_temp), Some(sign))
    } else {
        (Plain::of_nonneg(&mut b, d, first_temp), None)
    };
    // σ ≥ |d|·2^16, so |t| ≤ 2^16: 17 quotient bits.
    let t_max = 1i128 << LAYERNORM_FRAC;
    let nz = (ln.eps == 0).then(|| or_all(&mut b, &a.bits));
    let (mut q, r) = digit::divide(
        &mut b,
        a.shl(V_SHIFT),
        &sigma,
        LAYERNORM_FRAC + 1,
        first_temp,
    )?;
    q.hi = q.hi.min(t_max);
    if let Some(nz) = nz {
        // σ = 0 only where every d is 0: t = 0 there.
        for x in &mut q.bits {
            *x = match *x {
                B::Col(c) => {
                    let m = b.and(c, nz);
                    b.release(c);
                    B::Col(m)
                }
                B::One => B::Col(b.copy(nz)),
                B::Zero => B::Zero,
            };
        }
        b.release(nz);
    }
    let t = match neg {
        None => {
            r.release(&mut b, first_temp, &cols_of(&q.bits));
            let w = bit_len(t_max) + 1;
            let cols = q.cols(&mut b, w as usize - 1);
            let mut t = Coding::unsigned(w - 1).signal(&cols);
            t.hi = t_max;
            t
        }
        Some(sign) => {
            let rnz = or_all(&mut b, &r.bits);
            r.release(&mut b, first_temp, &cols_of(&q.bits));
            let mut sum = Sum::new(&b, -t_max - 1, 0)?;
            sum.scaled(&q.signal(), -1);
            sum.literal(0, arith::Lit::Col(rnz), true);
            let nq = sum.reduce(&mut b);
            b.release(rnz);
            let not_sign = b.not(sign);
            let w = signed_width(-t_max - 1, t_max) as usize;
            let cols: Vec<Col> = (0..w)
                .map(|i| {
                    let m = nq.bits[i.min(nq.bits.len() - 1)].col;
                    digit::select(&mut b, (sign, not_sign), q.bit(i), B::Col(m)).col(&mut b)
                })
                .collect();
            b.release(not_sign);
            let mut dead = nq.cols();
            dead.extend(cols_of(&q.bits));
            release_temps(&mut b, &dead, &cols, first_temp);
            if sign >= first_temp && !cols.contains(&sign) {
                b.release(sign);
            }
            Signal::raw(&cols, -t_max - 1, t_max)
        }
    };
    let (m, k) = (mc.signal(&ms), kc.signal(&ks));
    let corners = [t.lo * m.lo, t.lo * m.hi, t.hi * m.lo, t.hi * m.hi];
    let (p_lo, p_hi) = (
        corners.iter().min().expect("4") + k.lo,
        corners.iter().max().expect("4") + k.hi,
    );
    let mut sum = Sum::new(&b, p_lo, p_hi)?;
    sum.product(&t, &m);
    sum.scaled(&k, 1);
    let acc = sum.reduce(&mut b);
    release_temps(&mut b, &t.cols(), &acc.cols(), first_temp);
    let outputs = elem::requant_out(&mut b, &acc, 1, ln.shift, out)?;
    let segments = vec![Segment {
        loads: vec![
            load(Source::X(0), &xs, x),
            load(Source::W(0), &ss, st.coding()),
            load(Source::M, &ms, mc),
            load(Source::K, &ks, kc),
        ],
        ops: 0..b.len(),
        ..Default::default()
    }];
    Ok(job(b, segments, outputs, Coding::of(out)))
}

/// The OR of `bits` (a new column; a constant column when none is a column).
fn or_all(b: &mut Builder, bits: &[B]) -> Col {
    if bits.contains(&B::One) {
        return b.constant(true);
    }
    let cols = cols_of(bits);
    let Some((&first, rest)) = cols.split_first() else {
        return b.constant(false);
    };
    let mut acc = b.copy(first);
    for &c in rest {
        let o = b.or(acc, c);
        b.release(acc);
        acc = o;
    }
    acc
}
