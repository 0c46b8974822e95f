//! Property tests of the in-array softmax and LayerNorm (`norm`) and their digit-recurrence
//! arithmetic (`digit`): every lane equals the golden integer function exactly
//! (`cram_workloads::ibert`), in every gate set. The float error of those functions is
//! bounded in `ibert`'s own tests.

use super::arith::Coding;
use super::digit::{self, Plain};
use super::linear::{Job, Source};
use super::norm::{self, Stats};
use crate::model::bits::{load_lanes, store_lanes};
use crate::model::engine::Subarray;
use crate::model::engine::isa::Col;
use crate::model::kernels::{Builder, GateSet};
use cram_workloads::ibert::{Exp, LayerNorm, Softmax};
use cram_workloads::quant::ActQuant;
use proptest::prelude::*;

/// Runs `job` on `lanes` lanes, loading `value(source, lane)`, and decodes its outputs.
fn run(job: &Job, lanes: usize, value: impl Fn(Source, usize) -> i64) -> Vec<i64> {
    let mut sa = Subarray::new(lanes, job.program.cols());
    for seg in &job.segments {
        for l in &seg.loads {
            let codes: Vec<u64> = (0..lanes)
                .map(|k| l.coding.encode(value(l.source, k)))
                .collect();
            store_lanes(&mut sa, &l.cols, &codes);
        }
        sa.run_segment(&job.program, seg.ops.clone()).unwrap();
    }
    load_lanes(&sa, &job.outputs[0], lanes)
        .into_iter()
        .map(|v| job.out.decode(v))
        .collect()
}

/// Runs a builder's program on lanes whose `inputs` columns hold `values` (one per lane),
/// reading `out`'s columns.
fn run_cols(b: Builder, inputs: &[(&[Col], Vec<u64>)], out: &[Col]) -> Vec<u64> {
    let p = b.finish();
    let lanes = inputs[0].1.len();
    let mut sa = Subarray::new(lanes, p.cols());
    for (cols, vals) in inputs {
        store_lanes(&mut sa, cols, vals);
    }
    sa.run(&p).unwrap();
    load_lanes(&sa, out, lanes)
}

fn sets() -> impl Strategy<Value = GateSet> {
    prop_oneof![
        Just(GateSet::Maj),
        Just(GateSet::Nand),
        Just(GateSet::NandNot)
    ]
}

/// A coding of `bits` bits, signed or not.
fn coding(bits: u32, signed: bool) -> Coding {
    if signed {
        Coding::signed(bits)
    } else {
        Coding::unsigned(bits)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Restoring division by a per-lane divisor gives the floor quotient and the remainder.
    #[test]
    fn division_is_exact(
        pairs in proptest::collection::vec((0u64..1 << 20, 1u64..1 << 12), 1..70),
        set in sets(),
    ) {
        let mut b = Builder::new(set);
        let (n, d) = (b.operand("n", 20), b.operand("d", 12));
        let first = b.cols() as Col;
        // n < d·2^20 for every d ≥ 1: 20 quotient bits.
        let (q, r) = digit::divide(
            &mut b,
            Plain::of_cols(&n, 0, (1 << 20) - 1),
            &Plain::of_cols(&d, 1, (1 << 12) - 1),
            20,
            first,
        )
        .unwrap();
        let mut out = q.cols(&mut b, 20);
        out.extend(r.cols(&mut b, 12));
        let got = run_cols(
            b,
            &[(&n, pairs.iter().map(|p| p.0).collect()), (&d, pairs.iter().map(|p| p.1).collect())],
            &out,
        );
        for (&(x, y), g) in pairs.iter().zip(got) {
            prop_assert_eq!((g & ((1 << 20) - 1), g >> 20), (x / y, x % y), "{} / {}", x, y);
        }
    }

    /// The digit-by-digit square root of H·2^low + c is ⌊√·⌋.
    #[test]
    fn square_root_is_exact(
        hs in proptest::collection::vec(0u64..1 << 24, 1..70),
        low in (0u32..6).prop_map(|k| 2 * k),
        c in any::<u64>(),
        set in sets(),
    ) {
        let c = i128::from(c) & ((1i128 << low) - 1);
        let mut b = Builder::new(set);
        let h = b.operand("h", 24);
        let first = b.cols() as Col;
        let root = digit::isqrt(&mut b, Plain::of_cols(&h, 0, (1 << 24) - 1), (low, c), first, &[])
            .unwrap();
        let n = root.bits.len();
        let out = root.cols(&mut b, n);
        let got = run_cols(b, &[(&h, hs.clone())], &out);
        for (&x, g) in hs.iter().zip(got) {
            let v = (u128::from(x) << low) + c as u128;
            prop_assert_eq!(u128::from(g), v.isqrt(), "V = {}", v);
        }
    }

    /// I-BERT's exponential of a score less its row's maximum, in the array.
    #[test]
    fn exp_equals_ibert(
        bits in 2u32..10, signed in any::<bool>(), log_s in -12.0f64..1.0,
        pairs in proptest::collection::vec((any::<u64>(), any::<u64>()), 1..70),
        set in sets(),
    ) {
        let x = coding(bits, signed);
        let e = Exp::new(2f64.powf(log_s)).unwrap();
        let job = norm::exp(set, x, &e).unwrap();
        let (lo, hi) = x.range();
        let span = (hi - lo + 1) as u64;
        // (score, maximum ≥ score) per lane.
        let lanes: Vec<(i64, i64)> = pairs
            .iter()
            .map(|&(a, b)| {
                let (a, b) = ((lo + (a % span) as i128) as i64, (lo + (b % span) as i128) as i64);
                (a.min(b), a.max(b))
            })
            .collect();
        let got = run(&job, lanes.len(), |src, k| match src {
            Source::W(_) => lanes[k].1,
            _ => lanes[k].0,
        });
        for (&(q, m), g) in lanes.iter().zip(got) {
            prop_assert_eq!(g, e.eval(q - m), "q {} max {} {:?}", q, m, e);
        }
    }

    /// A softmax row in the array (maximum and sum in chunks, exponentials and quotients a
    /// lane each) equals `ibert::Softmax::row`.
    #[test]
    fn softmax_equals_ibert(
        bits in 2u32..10, out_bits in 1u32..12, log_s in -10.0f64..0.5,
        rows in proptest::collection::vec(proptest::collection::vec(any::<u64>(), 1..24), 1..6),
        chunk in 1usize..9,
        set in sets(),
    ) {
        let x = coding(bits, true);
        let sm = Softmax::new(2f64.powf(log_s), out_bits).unwrap();
        let out = ActQuant::probabilities(out_bits);
        let (lo, hi) = x.range();
        let span = (hi - lo + 1) as u64;
        let rows: Vec<Vec<i64>> = rows
            .iter()
            .map(|r| r.iter().map(|&v| (lo + (v % span) as i128) as i64).collect())
            .collect();
        let n = rows.iter().map(Vec::len).max().unwrap();
        // Shorter rows pad as the layer does: the code minimum, then e = 0.
        let maxes = run(&norm::row_max(set, x, n, chunk), rows.len(), |src, k| {
            let r = match src { Source::X(r) => r, _ => unreachable!() };
            rows[k].get(r).copied().unwrap_or(lo as i64)
        });
        let exp = norm::exp(set, x, &sm.exp).unwrap();
        let cells: Vec<(usize, usize)> = rows
            .iter()
            .enumerate()
            .flat_map(|(k, r)| (0..r.len()).map(move |j| (k, j)))
            .collect();
        let es = run(&exp, cells.len(), |src, c| {
            let (k, j) = cells[c];
            match src { Source::W(_) => maxes[k], _ => rows[k][j] }
        });
        let at = |k: usize, j: usize| cells.iter().position(|&c| c == (k, j)).unwrap();
        let sum_job = norm::row_sum(set, exp.out, n, chunk).unwrap();
        let sums = run(&sum_job, rows.len(), |src, k| {
            let r = match src { Source::X(r) => r, _ => unreachable!() };
            if r < rows[k].len() { es[at(k, r)] } else { 0 }
        });
        let div = norm::quotient(set, exp.out, sum_job.out, out_bits, &out).unwrap();
        let ps = run(&div, cells.len(), |src, c| match src {
            Source::W(_) => sums[cells[c].0],
            _ => es[c],
        });
        for (k, row) in rows.iter().enumerate() {
            let mut want = vec![0; row.len()];
            sm.row(row, &mut want);
            let got: Vec<i64> = (0..row.len()).map(|j| ps[at(k, j)]).collect();
            prop_assert_eq!(got, want, "row {:?}", row);
        }
    }

    /// A LayerNorm in the array (statistics in chunks, or from slices' partial sums, then
    /// an output lane per element) equals `ibert::LayerNorm::row`, with ε or without.
    #[test]
    fn layer_norm_equals_ibert(
        bits in 2u32..10, signed in any::<bool>(), zero in -3i64..4,
        features in proptest::collection::vec((-2.0f32..2.0, -1.0f32..1.0), 1..20),
        eps in prop_oneof![Just(0.0), 1e-6f64..1e-2],
        log_s in -8.0f64..0.0, log_sy in -8.0f64..0.0,
        positions in proptest::collection::vec(proptest::collection::vec(any::<u64>(), 20), 1..5),
        chunk in 1usize..8, slice in 1usize..8,
        set in sets(),
    ) {
        let x = coding(bits, signed);
        let n = features.len();
        let (gamma, beta): (Vec<f32>, Vec<f32>) = features.iter().copied().unzip();
        let out = ActQuant::from_range(-4.0, 4.0, 8, false);
        let (y_lo, y_hi) = out.range();
        let ln = LayerNorm::new(
            &gamma, &beta, eps, 2f64.powf(log_s),
            (2f64.powf(log_sy).max(f64::from(out.scale)), i64::from(out.zero), y_lo, y_hi),
        );
        prop_assume!(ln.is_ok());
        let ln = ln.unwrap();
        let (lo, hi) = x.range();
        let span = (hi - lo + 1) as u64;
        let codes: Vec<Vec<i64>> = positions
            .iter()
            .map(|p| p[..n].iter().map(|&v| (lo + (v % span) as i128) as i64).collect())
            .collect();
        prop_assume!(Stats::of(x, zero, n, ln.eps).is_ok());
        let stats = run(
            &norm::ln_stats(set, (x, zero), (n, norm::Terms::Codes, n), chunk, ln.eps).unwrap(),
            codes.len(),
            |src, p| match src { Source::X(r) => codes[p][r], _ => unreachable!() },
        );
        // The same statistics from slices of `slice` features: partial sums, then a reducer.
        let m = n.div_ceil(slice);
        let partial = |k: usize| norm::ln_partial(set, (x, zero), slice.min(n - k * slice), slice).unwrap();
        let sums: Vec<Vec<i64>> = (0..m)
            .map(|k| run(&partial(k), codes.len(), |src, p| match src {
                Source::X(r) => codes[p][k * slice + r],
                _ => unreachable!(),
            }))
            .collect();
        let terms = norm::Terms::Partials(norm::Partial::of(x, zero, slice).unwrap());
        let reduced = run(
            &norm::ln_stats(set, (x, zero), (n, terms, m), chunk, ln.eps).unwrap(),
            codes.len(),
            |src, p| match src { Source::X(k) => sums[k][p], _ => unreachable!() },
        );
        prop_assert_eq!(&reduced, &stats);
        let job = norm::ln_out(set, (x, zero), n, &ln, &out).unwrap();
        let got = run(&job, codes.len() * n, |src, k| {
            let (p, c) = (k / n, k % n);
            match src {
                Source::W(_) => stats[p],
                Source::M => ln.mult[c],
                Source::K => ln.bias[c],
                _ => codes[p][c],
            }
        });
        for (p, row) in codes.iter().enumerate() {
            let centred: Vec<i64> = row.iter().map(|&v| v - zero).collect();
            let mut want = vec![0; n];
            ln.row(&centred, &mut want);
            prop_assert_eq!(&got[p * n..(p + 1) * n], &want[..], "codes {:?}", row);
        }
    }
}
