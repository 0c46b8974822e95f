//! Tests of `arith`.

use super::*;
use crate::model::engine::Subarray;
use crate::model::kernels::GateSet;
use cram_workloads::quant::{Requant, round_shift};
use proptest::prelude::*;

fn run(b: Builder, loads: &[(&[Col], Vec<u64>)], outs: &[Col]) -> Vec<u64> {
    let p = b.finish();
    let lanes = loads[0].1.len();
    let mut sa = Subarray::new(lanes, p.cols());
    for (cols, vals) in loads {
        for (lane, &v) in vals.iter().enumerate() {
            for (i, &c) in cols.iter().enumerate() {
                sa.set(lane, c, v >> i & 1 == 1);
            }
        }
    }
    sa.run(&p).unwrap();
    (0..lanes)
        .map(|l| {
            outs.iter()
                .enumerate()
                .map(|(i, &c)| u64::from(sa.get(l, c)) << i)
                .sum()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Requantizing in the array equals the golden rule for every lane.
    #[test]
    fn requantize_equals_round_shift_and_clamp(
        bits in 2u32..10, signed in any::<bool>(), m in 0.0f64..4.0,
        zero in -20i64..20, xs in proptest::collection::vec(any::<u64>(), 1..40),
        set in prop_oneof![Just(GateSet::Maj), Just(GateSet::Nand), Just(GateSet::NandNot)],
    ) {
        let rq = Requant::from_real(m).unwrap();
        let code = Coding::signed(bits);
        let mut b = Builder::new(set);
        let x = b.operand("x", bits);
        let s = code.signal(&x);
        let out = Coding { bits: 8, signed: false, binary: false };
        let (y, _) = requantize(&mut b, &s, &Mult::Const(rq.mult), rq.shift, zero, 0, 255, out).unwrap();
        let vals: Vec<u64> = xs.iter().map(|v| v & ((1 << bits) - 1)).collect();
        let got = run(b, &[(&x, vals.clone())], &y);
        for (v, g) in vals.iter().zip(&got) {
            let a = code.decode(*v);
            let want = (zero + round_shift(i128::from(a) * i128::from(rq.mult), rq.shift)).clamp(0, 255);
            prop_assert_eq!(*g as i64, want, "acc {} m {:?} signed {}", a, rq, signed);
        }
    }

    /// Wide accumulators times large multipliers and shifts, past one 64-bit heap (the
    /// chunked path): every lane equals the golden rule, for one constant multiplier
    /// and for a per-lane stored one (zero in some lanes), in every gate set; and the
    /// counting builder's closed form tallies the same ops as the real program.
    #[test]
    fn wide_requantize_equals_round_shift_and_clamp(
        bits in 20u32..58, m_bits in 1u32..=44, shift in 0u32..=62, zero in 0i64..256,
        xs in proptest::collection::vec(any::<u64>(), 1..24),
        ms in proptest::collection::vec(any::<u64>(), 24),
        stored in any::<bool>(),
        set in prop_oneof![Just(GateSet::Maj), Just(GateSet::Nand), Just(GateSet::NandNot)],
    ) {
        // Beyond this the rounded quotient itself needs more than 64 bits (refused).
        prop_assume!(bits + m_bits <= shift + 60);
        let code = Coding::signed(bits);
        let out = Coding { bits: 8, signed: false, binary: false };
        let lanes = xs.len();
        let mask = |v: u64, n: u32| v & ((1u64 << n) - 1);
        let lane_m: Vec<u64> = if stored {
            ms[..lanes].iter().map(|&m| if m % 3 == 0 { 0 } else { mask(m, m_bits) }).collect()
        } else {
            vec![mask(ms[0], m_bits.min(31)); lanes]
        };
        let build = |b: &mut Builder| {
            let x = b.operand("x", bits);
            let mc = b.operand("m", m_bits);
            let flag = b.operand("f", 1)[0];
            let acc = code.signal(&x);
            let max = i128::from(*lane_m.iter().max().unwrap());
            let live: Vec<bool> = (0..m_bits).map(|k| lane_m.iter().any(|m| m >> k & 1 == 1)).collect();
            let pos = if lane_m.iter().all(|&m| m > 0) {
                Nonzero::All
            } else if lane_m.iter().all(|&m| m == 0) {
                Nonzero::None
            } else {
                Nonzero::Flag(flag)
            };
            let mult = if stored {
                Mult::Stored { cols: &mc, live: &live, max, pos }
            } else {
                Mult::Const(lane_m[0] as i64)
            };
            let (y, _) = requantize(b, &acc, &mult, shift, zero, 0, 255, out).unwrap();
            (x, mc, flag, y)
        };
        let mut counting = Builder::counting(set);
        build(&mut counting);
        let mut b = Builder::new(set);
        let (x, mc, flag, y) = build(&mut b);
        prop_assert_eq!(counting.tally(), b.tally());
        let vals: Vec<u64> = xs.iter().map(|&v| mask(v, bits)).collect();
        let flags: Vec<u64> = lane_m.iter().map(|&m| u64::from(m > 0)).collect();
        let got = run(b, &[(&x, vals.clone()), (&mc, lane_m.clone()), (&[flag], flags)], &y);
        for ((v, m), g) in vals.iter().zip(&lane_m).zip(&got) {
            let a = code.decode(*v);
            let want = (zero + round_shift(i128::from(a) * i128::from(*m), shift)).clamp(0, 255);
            prop_assert_eq!(*g as i64, want, "acc {} m {} shift {} stored {}", a, m, shift, stored);
        }
    }

    /// XNOR-popcount, the product of binary networks: Σ ±2·XNOR(a_i, e_i) + c over n pairs
    /// of bits (for ±1 values x·w = 2·XNOR − 1) is exact in every lane and gate set, and a
    /// counting heap given the same literals by count tallies the same ops.
    #[test]
    fn xnor_popcount_is_exact(
        n in 1usize..24, negs in proptest::collection::vec(any::<bool>(), 24), c in -50i128..50,
        a in proptest::collection::vec(any::<u64>(), 24),
        e in proptest::collection::vec(any::<u64>(), 24), lanes in 1usize..=64,
        set in prop_oneof![Just(GateSet::Maj), Just(GateSet::Nand), Just(GateSet::NandNot)],
    ) {
        let (lo, hi) = (c - 2 * n as i128, c + 2 * n as i128);
        let build = |b: &mut Builder| {
            let cols: Vec<(Col, Col)> =
                (0..n).map(|_| (b.operand("a", 1)[0], b.operand("e", 1)[0])).collect();
            let mut sum = Sum::new(b, lo, hi).unwrap();
            sum.constant(c);
            if b.is_counting() {
                let neg = negs[..n].iter().filter(|&&g| g).count() as u64;
                let lit = Lit::Xnor(cols[0].0, cols[0].1);
                sum.literal_n(1, lit, false, n as u64 - neg);
                sum.literal_n(1, lit, true, neg);
            } else {
                for (&(x, w), &g) in cols.iter().zip(&negs) {
                    sum.literal(1, Lit::Xnor(x, w), g);
                }
            }
            (cols, sum.reduce_raw(b))
        };
        let mut counting = Builder::counting(set);
        build(&mut counting);
        let mut b = Builder::new(set);
        let (cols, out) = build(&mut b);
        prop_assert_eq!(counting.tally(), b.tally());
        let lane_bits = |v: u64| (0..lanes).map(|l| v >> l & 1).collect::<Vec<u64>>();
        let loads: Vec<(&[Col], Vec<u64>)> = cols
            .iter()
            .zip(a.iter().zip(&e))
            .flat_map(|(p, (&va, &ve))| {
                [(std::slice::from_ref(&p.0), lane_bits(va)), (std::slice::from_ref(&p.1), lane_bits(ve))]
            })
            .collect();
        let got = run(b, &loads, &out);
        let code = Coding::signed(out.len() as u32);
        for (l, g) in got.iter().enumerate() {
            let want: i128 = c + (0..n)
                .map(|i| {
                    let xnor = i128::from((a[i] >> l & 1) == (e[i] >> l & 1));
                    if negs[i] { -2 * xnor } else { 2 * xnor }
                })
                .sum::<i128>();
            prop_assert_eq!(i128::from(code.decode(*g)), want, "lane {}", l);
        }
    }

    /// A running sum reduced chunk by chunk in one kept sum (`Sum::reduce_raw_and_empty`,
    /// as the stored and `const` jobs reduce their chunks) emits what a fresh sum per
    /// chunk emits: the same result columns, columns in all, tally and program, on a real
    /// and on a counting builder. The real program's total is exact in every lane.
    #[test]
    fn a_kept_sum_reduces_chunks_as_fresh_sums_do(
        chunks in proptest::collection::vec(
            proptest::collection::vec((0u32..6, any::<bool>()), 1..6), 1..5),
        c in -20i128..20, xs in proptest::collection::vec(any::<u64>(), 20),
        set in prop_oneof![Just(GateSet::Maj), Just(GateSet::Nand), Just(GateSet::NandNot)],
    ) {
        // At most 20 terms of magnitude 32 or less, and the constant.
        let (lo, hi) = (-700i128, 700i128);
        let build = |b: &mut Builder, keep: bool| {
            let ins: Vec<Vec<Col>> = chunks
                .iter()
                .map(|ch| ch.iter().map(|_| b.operand("x", 1)[0]).collect())
                .collect();
            let fill = |sum: &mut Sum, acc: &[Col], k: usize| {
                for (i, &col) in acc.iter().enumerate() {
                    sum.literal(i as u32, Lit::Owned(col), false);
                }
                if k == 0 {
                    sum.constant(c);
                }
                for (&(w, neg), &x) in chunks[k].iter().zip(&ins[k]) {
                    sum.literal(w, Lit::Col(x), neg);
                }
            };
            let mut kept: Option<Sum> = None;
            let mut acc = Vec::new();
            for k in 0..chunks.len() {
                acc = if keep {
                    let sum = match &mut kept {
                        Some(sum) => sum,
                        None => kept.insert(Sum::new(b, lo, hi).unwrap()),
                    };
                    fill(sum, &acc, k);
                    sum.reduce_raw_and_empty(b)
                } else {
                    let mut sum = Sum::new(b, lo, hi).unwrap();
                    fill(&mut sum, &acc, k);
                    sum.reduce_raw(b)
                };
            }
            (ins, acc)
        };
        for counting in [false, true] {
            let new = || if counting { Builder::counting(set) } else { Builder::new(set) };
            let (mut fresh, mut kept) = (new(), new());
            let (_, want) = build(&mut fresh, false);
            let (_, got) = build(&mut kept, true);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(kept.cols(), fresh.cols());
            prop_assert_eq!(kept.tally(), fresh.tally());
            prop_assert_eq!(kept.finish(), fresh.finish());
        }
        let mut b = Builder::new(set);
        let (ins, out) = build(&mut b, true);
        let lane_bits = |v: u64| (0..8).map(|l| v >> l & 1).collect::<Vec<u64>>();
        let cols: Vec<Col> = ins.iter().flatten().copied().collect();
        let loads: Vec<(&[Col], Vec<u64>)> = cols
            .iter()
            .zip(&xs)
            .map(|(col, &v)| (std::slice::from_ref(col), lane_bits(v)))
            .collect();
        let got = run(b, &loads, &out);
        let terms: Vec<(u32, bool)> = chunks.iter().flatten().copied().collect();
        let code = Coding::signed(out.len() as u32);
        for (l, g) in got.iter().enumerate() {
            let want: i128 = c + terms
                .iter()
                .zip(&xs)
                .map(|(&(w, neg), &v)| {
                    let t = i128::from(v >> l & 1) << w;
                    if neg { -t } else { t }
                })
                .sum::<i128>();
            prop_assert_eq!(i128::from(code.decode(*g)), want, "lane {}", l);
        }
    }

    /// Compares with a constant agree with `<` for signed and unsigned signals.
    #[test]
    fn compare_const_is_exact(bits in 1u32..9, signed in any::<bool>(), k in -300i128..300,
                              ge in any::<bool>(), xs in proptest::collection::vec(any::<u64>(), 1..40)) {
        let code = Coding { bits, signed: signed && bits > 1, binary: false };
        let (lo, hi) = code.range();
        prop_assume!(lo < k && k <= hi);
        let mut b = Builder::new(GateSet::Maj);
        let x = b.operand("x", bits);
        let (r, _) = compare_const(&mut b, &code.signal(&x), k, ge);
        let vals: Vec<u64> = xs.iter().map(|v| v & ((1 << bits) - 1)).collect();
        let got = run(b, &[(&x, vals.clone())], &[r]);
        for (v, g) in vals.iter().zip(&got) {
            let a = i128::from(code.decode(*v));
            prop_assert_eq!(*g == 1, (a < k) ^ ge);
        }
    }
}

#[test]
fn csd_reconstructs() {
    for c in [-1000i128, -3, -1, 0, 1, 7, 255, 1 << 40, (1 << 62) + 12345] {
        let v: i128 = csd_digits(c)
            .iter()
            .enumerate()
            .map(|(j, &d)| i128::from(d) << j)
            .sum();
        assert_eq!(v, c);
    }
    assert_eq!(signed_width(-128, 127), 8);
    assert_eq!(signed_width(0, 128), 9);
    assert_eq!(signed_width(0, 0), 1);
}
