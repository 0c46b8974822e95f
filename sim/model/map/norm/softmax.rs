//! I-BERT's integer softmax as gate programs (docs/model.md §2.5.2): a row's running
//! maximum and sum in chunks, an element's exponential and its probability by restoring
//! division; `super` runs them in passes.

use super::super::arith::{self, Coding, Sum};
use super::super::digit::{self, B, Plain, bit_len, cols_of};
use super::super::elem::{self, job, load};
use super::super::linear::release_temps;
use super::super::linear::{Job, Segment, Source, chunks};
use crate::error::MapError;
use crate::model::engine::isa::Col;
use crate::model::kernels::{Builder, GateSet};
use cram_workloads::ibert::{EXP_CLAMP, Exp};
use cram_workloads::quant::ActQuant;

/// The running maximum of a row of `n` codes of `x` coding in chunks of `chunk`: operands
/// `X(0..n)`.
pub fn row_max(set: GateSet, x: Coding, n: usize, chunk: usize) -> Job {
    let mut b = Builder::new(set);
    let slots: Vec<Vec<Col>> = (0..chunk.min(n))
        .map(|r| b.operand_at("x", r, x.bits))
        .collect();
    let first_temp = b.cols() as Col;
    let parts = chunks(n, chunk);
    let mut acc: Option<Vec<Col>> = None;
    let mut segments = Vec::with_capacity(parts.len());
    for (k, rs) in parts.iter().enumerate() {
        let start = b.len();
        let loads = rs
            .clone()
            .enumerate()
            .map(|(j, r)| load(Source::X(r), &slots[j], x))
            .collect();
        let level: Vec<Vec<Col>> = acc
            .take()
            .into_iter()
            .chain(slots[..rs.len()].iter().cloned())
            .collect();
        let mut top = elem::max_tree(&mut b, x, level, first_temp);
        // A lone slot would be overwritten by the next chunk's loads.
        if top[0] < first_temp && k + 1 < parts.len() {
            top = top.iter().map(|&c| b.copy(c)).collect();
        }
        acc = Some(top);
        segments.push(Segment {
            loads,
            ops: start..b.len(),
            ..Default::default()
        });
    }
    job(b, segments, acc.expect("n ≥ 1"), x)
}

/// min and max of r² − b·r + c over the integers r in [0, r_hi].
fn poly_interval(r_hi: i128, b: i128, c: i128) -> (i128, i128) {
    let f = |r: i128| r * r - b * r + c;
    let v = (b / 2).clamp(0, r_hi);
    let at = [0, r_hi, v, (v + 1).min(r_hi)];
    let lo = at.iter().map(|&r| f(r)).min().expect("4");
    (lo, f(0).max(f(r_hi)))
}

/// I-BERT's exponential of a score `X(0)` less its row's maximum `W(0)` (both codes of `x`
/// coding): v = min((max − q)·2^k, 30·|x0|), z = ⌊v/|x0|⌋ and r = v − |x0|·z by restoring
/// division, L = r² − b·r + c (as p·(p + b) + c of `ibert::Exp::eval` with p = −r), and
/// max(L, 0) shifted right by z. The output is unsigned.
pub fn exp(set: GateSet, x: Coding, e: &Exp) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let (xs, ms) = (b.operand("x", x.bits), b.operand("max", x.bits));
    let first_temp = b.cols() as Col;
    let (lo, hi) = x.range();
    let mut sum = Sum::new(&b, 0, hi - lo)?;
    sum.scaled(&x.signal(&ms), 1);
    sum.scaled(&x.signal(&xs), -1);
    let u = sum.reduce(&mut b);
    let x0 = -i128::from(e.x0);
    let cap = i128::from(EXP_CLAMP) * x0;
    let thr = (cap + (1 << e.k) - 1) >> e.k;
    // A compare answered by one of u's own columns is copied: u's sign column is freed
    // below.
    let sat = (u.hi >= thr).then(|| match arith::compare_const(&mut b, &u, thr, true) {
        (s, false) => b.copy(s),
        (s, true) => s,
    });
    let up = Plain::of_nonneg(&mut b, u, first_temp).shl(e.k);
    let v = match sat {
        None => up,
        Some(s) => {
            let ns = b.not(s);
            let capped = Plain::constant(cap);
            let bits: Vec<B> = (0..bit_len(cap) as usize)
                .map(|i| digit::select(&mut b, (s, ns), up.bit(i), capped.bit(i)))
                .collect();
            up.release(&mut b, first_temp, &cols_of(&bits));
            b.release(ns);
            b.release(s);
            Plain {
                bits,
                lo: 0,
                hi: cap,
            }
        }
    };
    let z_bits = bit_len(i128::from(EXP_CLAMP));
    let (z, r) = digit::divide(&mut b, v, &Plain::constant(x0), z_bits, first_temp)?;
    let (l_lo, l_hi) = poly_interval(r.hi, i128::from(e.b), i128::from(e.c));
    let mut sum = Sum::new(&b, l_lo, l_hi.max(0))?;
    digit::add_quadratic(&mut sum, &r.signal(), 1, -i128::from(e.b));
    sum.constant(i128::from(e.c));
    let l = sum.reduce(&mut b);
    r.release(&mut b, first_temp, &l.cols());
    let n = bit_len(l_hi.max(0));
    let lp = if l_lo < 0 {
        let cols = arith::clamp(&mut b, &l, 0, l_hi.max(0), Coding::unsigned(n));
        release_temps(&mut b, &l.cols(), &cols, first_temp);
        Plain::of_cols(&cols, 0, l_hi.max(0))
    } else {
        Plain::of_nonneg(&mut b, l, first_temp)
    };
    let shifted = digit::shift_right(&mut b, lp, &z.bits, first_temp);
    z.release(&mut b, first_temp, &cols_of(&shifted.bits));
    let outputs = shifted.cols(&mut b, n as usize);
    let segments = vec![Segment {
        loads: vec![load(Source::X(0), &xs, x), load(Source::W(0), &ms, x)],
        ops: 0..b.len(),
        ..Default::default()
    }];
    Ok(job(b, segments, outputs, Coding::unsigned(n)))
}

/// Σ of a row of `n` unsigned codes of `e` coding in chunks of `chunk`: operands
/// `X(0..n)`; the sum in two's complement (its top bit 0).
pub fn row_sum(set: GateSet, e: Coding, n: usize, chunk: usize) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let slots: Vec<Vec<Col>> = (0..chunk.min(n))
        .map(|r| b.operand_at("e", r, e.bits))
        .collect();
    let hi = e.range().1 * n as i128;
    let (acc, segments) = elem::accumulate(
        &mut b,
        n,
        chunk,
        (0, hi),
        |r, j| vec![load(Source::X(r), &slots[j], e)],
        |sum, j| sum.scaled(&e.signal(&slots[j]), 1),
    )?;
    let coding = Coding::signed(acc.len() as u32);
    Ok(job(b, segments, acc, coding))
}

/// A probability min(⌊e·2^bits / Σ⌋, 2^bits − 1) of `e` (`X(0)`) and its row's sum `Σ`
/// (`W(0)`, two's complement, ≥ e and ≥ 1), by restoring division, into `out`.
pub fn quotient(
    set: GateSet,
    e: Coding,
    s: Coding,
    bits: u32,
    out: &ActQuant,
) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let (es, ss) = (b.operand("e", e.bits), b.operand("sum", s.bits));
    let first_temp = b.cols() as Col;
    let num = Plain::of_cols(&es, 0, e.range().1).shl(bits);
    let den = Plain::of_cols(&ss[..ss.len() - 1], 1, s.range().1);
    let (q, r) = digit::divide(&mut b, num, &den, bits + 1, first_temp)?;
    r.release(&mut b, first_temp, &cols_of(&q.bits));
    let qc = q.cols(&mut b, bits as usize + 1);
    let top = (1i128 << bits) - 1;
    let outputs = arith::clamp(
        &mut b,
        &Coding::unsigned(bits + 1).signal(&qc),
        0,
        top,
        Coding::of(out),
    );
    release_temps(&mut b, &qc, &outputs, first_temp);
    let segments = vec![Segment {
        loads: vec![load(Source::X(0), &es, e), load(Source::W(0), &ss, s)],
        ops: 0..b.len(),
        ..Default::default()
    }];
    Ok(job(b, segments, outputs, Coding::of(out)))
}
