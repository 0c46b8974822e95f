//! Unit tests of the executor: gates, masks, faults, row access and the vector levels.

use super::*;
use crate::model::engine::isa::{MAX_INPUTS, Op};

fn gate_op(gate: GateKind, ins: &[Col], out: Col, preset: bool) -> Op {
    let mut a = [0; MAX_INPUTS];
    a[..ins.len()].copy_from_slice(ins);
    Op::Gate {
        gate,
        ins: a,
        out,
        preset,
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

/// Every gate, every input combination, every old output value, with and without the
/// preset, against the Boolean truth table of `cram-arch`.
#[test]
fn word_kernels_match_truth_tables_exhaustively() {
    for gate in GateKind::ALL {
        let n = gate.arity();
        // One lane per (inputs, old output) combination.
        let lanes = 1usize << (n + 1);
        for (preset, simd) in [true, false]
            .into_iter()
            .flat_map(|p| Simd::supported().into_iter().map(move |s| (p, s)))
        {
            let mut sa = Subarray::new(lanes, n + 1);
            assert!(sa.set_simd(simd));
            for lane in 0..lanes {
                for i in 0..=n {
                    sa.set(lane, i as Col, lane >> i & 1 == 1);
                }
            }
            let ins: Vec<Col> = (0..n as Col).collect();
            let p = Program::new(
                vec![gate_op(gate, &ins, n as Col, preset)],
                vec![],
                names(n + 1),
            )
            .unwrap();
            sa.run(&p).unwrap();
            for lane in 0..lanes {
                let inputs: Vec<bool> = (0..n).map(|i| lane >> i & 1 == 1).collect();
                let old = lane >> n & 1 == 1;
                let f = gate.truth(&inputs);
                let expect = match (preset, gate.preset()) {
                    (true, _) => f,
                    (false, false) => old | f,
                    (false, true) => old & f,
                };
                assert_eq!(
                    sa.get(lane, n as Col),
                    expect,
                    "{gate} preset={preset} lane {lane}"
                );
            }
        }
    }
}

#[test]
fn mask_limits_presets_and_gates_to_selected_lanes() {
    for simd in Simd::supported() {
        mask_case(simd);
    }
}

fn mask_case(simd: Simd) {
    let lanes = 200;
    let mut sa = Subarray::new(lanes, 3);
    assert!(sa.set_simd(simd));
    let ops = vec![
        Op::Preset {
            col: 0,
            value: true,
        },
        Op::SetMask(LaneMask::Range { lo: 60, hi: 130 }),
        Op::Preset {
            col: 1,
            value: true,
        },
        gate_op(GateKind::Nand, &[0, 1], 2, true),
        Op::SetMask(LaneMask::All),
    ];
    sa.run(&Program::new(ops, vec![], names(3)).unwrap())
        .unwrap();
    for lane in 0..lanes {
        let inside = (60..130).contains(&lane);
        assert_eq!(sa.get(lane, 1), inside, "lane {lane}");
        // NAND(1, 1) = 0 inside the mask; outside the gate never ran and col 2 stays 0.
        assert!(!sa.get(lane, 2), "lane {lane}");
    }
}

#[test]
fn rows_round_trip_through_memory_mode() {
    let mut sa = Subarray::new(130, 70);
    let row: Vec<u64> = vec![0xDEAD_BEEF_0123_4567, 0b10_1101];
    let p = Program::new(
        vec![
            Op::WriteRow { lane: 129, row: 0 },
            Op::ReadRow { lane: 129 },
            Op::ReadRow { lane: 3 },
        ],
        vec![row.clone()],
        names(70),
    )
    .unwrap();
    sa.run(&p).unwrap();
    assert_eq!(sa.reads()[0], row);
    assert_eq!(sa.reads()[1], vec![0, 0]);
}

#[test]
fn zero_histograms_count_selected_lanes_by_input_zeros() {
    // 200 lanes; column 0 = lane bit 0, column 1 = lane bit 1, so lanes cycle through
    // (0,0), (1,0), (0,1), (1,1): z = 2, 1, 1, 0.
    let lanes = 200;
    let mut sa = Subarray::new(lanes, 3);
    for l in 0..lanes {
        sa.set(l, 0, l & 1 == 1);
        sa.set(l, 1, l & 2 == 2);
    }
    sa.set_track_zeros(true);
    let ops = vec![
        gate_op(GateKind::Nand, &[0, 1], 2, true),
        Op::SetMask(LaneMask::Range { lo: 0, hi: 8 }),
        gate_op(GateKind::Nand, &[0, 1], 2, true),
    ];
    sa.run(&Program::new(ops, vec![], names(3)).unwrap())
        .unwrap();
    let h = sa.zero_histograms();
    assert_eq!(&h[0][..3], &[50, 100, 50]);
    assert_eq!(&h[1][..3], &[2, 4, 2]);
}

/// Every flip lands on a selected lane of a gate output, and the count is binomial(N, p):
/// within 5 σ of N·p.
#[test]
fn fault_rate_is_binomial_and_only_hits_selected_lanes() {
    let lanes = 1000;
    let steps = 400;
    let ops: Vec<Op> = (0..steps)
        .map(|_| gate_op(GateKind::Copy, &[0], 1, true))
        .collect();
    let p = Program::new(ops, vec![], names(2)).unwrap();
    for prob in [1e-3, 0.02, 0.5] {
        let mut sa = Subarray::new(lanes, 2);
        sa.set_faults(Some(Faults::new(prob, 9, 0)));
        sa.run(&p).unwrap();
        let f = sa.faults().unwrap();
        let n = (lanes * steps) as f64;
        let sigma = (n * prob * (1.0 - prob)).sqrt();
        assert_eq!(f.evaluations(), n as u64);
        assert!(
            (f.flips() as f64 - n * prob).abs() <= 5.0 * sigma,
            "p={prob}: {} flips of {n}",
            f.flips()
        );
    }
    // With a lane mask, lanes outside it are never touched.
    let ops = vec![
        Op::SetMask(LaneMask::Range { lo: 100, hi: 200 }),
        gate_op(GateKind::Copy, &[0], 1, true),
    ];
    let mut sa = Subarray::new(lanes, 2);
    sa.set_faults(Some(Faults::new(1.0, 1, 0)));
    sa.run(&Program::new(ops, vec![], names(2)).unwrap())
        .unwrap();
    assert_eq!(sa.faults().unwrap().flips(), 100);
    assert!((0..lanes).all(|l| sa.get(l, 1) == (100..200).contains(&l)));
}

#[test]
fn maj5_counts_ones() {
    for m in 0u32..32 {
        let w: Vec<u64> = (0..5)
            .map(|i| if m >> i & 1 == 1 { u64::MAX } else { 0 })
            .collect();
        let expect = if m.count_ones() >= 3 { u64::MAX } else { 0 };
        assert_eq!(maj5(w[0], w[1], w[2], w[3], w[4]), expect);
    }
}

proptest::proptest! {
    /// The input-zero histogram of a gate step, at every vector level, equals a lane-by-lane
    /// count over the selected lanes, for every arity, lane count (up to 18 words, partial
    /// last word included) and lane range, with or without a lane mask (every lane
    /// selected); the per-gate sums (`set_sum_zeros`) equal it too.
    #[test]
    fn zero_histograms_match_a_lane_by_lane_count(
        lanes in 1usize..1200, gate_i in 0usize..GateKind::ALL.len(), seed in proptest::prelude::any::<u64>(),
        lo in 0u32..1200, len in 1u32..1200,
    ) {
        let gate = GateKind::ALL[gate_i];
        let n = gate.arity();
        let cell = |l: usize, c: usize| (seed.rotate_left((l * 7 + c * 13) as u32 % 64) ^ (l as u64 * 0x9E37_79B9)) >> (c % 5) & 1 == 1;
        let lo = lo % lanes as u32;
        let hi = (lo + len).min(lanes as u32);
        let ins: Vec<Col> = (0..n as Col).collect();
        let count = |range: std::ops::Range<usize>| {
            let mut want = [0u64; MAX_INPUTS + 1];
            for l in range {
                want[(0..n).filter(|&c| !cell(l, c)).count()] += 1;
            }
            want
        };
        for simd in Simd::supported() {
            for masked in [true, false] {
                let mut sa = Subarray::new(lanes, n + 1);
                proptest::prop_assert!(sa.set_simd(simd));
                for l in 0..lanes {
                    for c in 0..n {
                        sa.set(l, c as Col, cell(l, c));
                    }
                }
                sa.set_track_zeros(true);
                sa.set_sum_zeros(true);
                let mut ops = vec![gate_op(gate, &ins, n as Col, true)];
                let want = if masked {
                    ops.insert(0, Op::SetMask(LaneMask::Range { lo, hi }));
                    count(lo as usize..hi as usize)
                } else {
                    count(0..lanes)
                };
                sa.run(&Program::new(ops, vec![], names(n + 1)).unwrap()).unwrap();
                proptest::prop_assert_eq!(sa.zero_histograms()[0], want, "{:?}", simd);
                proptest::prop_assert_eq!(sa.zero_sums()[gate.index()], want, "{:?}", simd);
            }
        }
    }
}

/// Columns filled a buffer at a time hold the words `next_u64` returns in turn, whatever
/// the column length (a partial buffer included) and the number of columns.
#[test]
fn fill_random_draws_the_next_u64_sequence() {
    use rand_chacha::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};
    for lanes in [1, 64, 65, 4096, 4097 + 64 * 70] {
        let cols: Vec<Col> = vec![2, 0, 3];
        let mut sa = Subarray::new(lanes, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        rng.set_stream(5);
        sa.fill_random(&cols, &mut rng);
        let mut want = ChaCha8Rng::seed_from_u64(11);
        want.set_stream(5);
        for &c in &cols {
            for (w, &got) in sa.column(c).iter().enumerate() {
                assert_eq!(got, want.next_u64(), "lanes {lanes}, column {c}, word {w}");
            }
        }
        assert_eq!(
            rng.next_u64(),
            want.next_u64(),
            "both streams at the same place"
        );
    }
}
