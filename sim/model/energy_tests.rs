//! Tests of `energy`.

use super::*;
use crate::model::engine::isa::Op;
use crate::model::kernels::check::{RunConfig, run_and_check};
use crate::model::kernels::{GateSet, KernelKind, KernelSpec};
use cram_arch::presets;

fn table() -> (GateLibrary, EnergyTable) {
    let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
    let org = presets::array("cram-1k").unwrap();
    let t = EnergyTable::derive(&lib, &org);
    (lib, t)
}

fn nand_program(extra_cols: usize, mask: Option<(u32, u32)>) -> Program {
    let mut ops = Vec::new();
    if let Some((lo, hi)) = mask {
        ops.push(Op::SetMask(LaneMask::Range { lo, hi }));
    }
    ops.push(Op::Gate {
        gate: GateKind::Nand,
        ins: [0, 1, 0, 0, 0],
        out: 2,
        preset: true,
    });
    Program::new(
        ops,
        vec![],
        (0..3 + extra_cols).map(|i| format!("c{i}")).collect(),
    )
    .unwrap()
}

const NAND: usize = GateKind::Nand as usize;

/// cram-1k's lines: 1024 rows in segments of 8.
fn lines() -> Lines {
    presets::array("cram-1k").unwrap().lines()
}

/// The table by hand from cram-1k's derived 22 nm periphery (docs/model.md §1.1.1): a line
/// of 0.280 fF/µm × 0.1 µm + 0.165 fF = 0.193 fF per cell; a logic word line of 1024 cells
/// swung by 0.8 V; the sense, decode, controller and bus prices of the node.
#[test]
fn table_entries_by_hand() {
    let (lib, t) = table();
    assert!((t.wll_pj - 0.193 * 1024.0 * 0.8 * 0.8 * 1e-3).abs() < 1e-12);
    assert!((t.sense_pj_per_bit - 0.150).abs() < 1e-12);
    assert!((t.decoder_pj - 0.114).abs() < 1e-12);
    // ¼ × 0.248 fF/µm × 0.64 V² per mm = 39.68 fJ/bit/mm, over a bank (the chip's side
    // / √8) and the chip (the side of its area, docs/model.md §1.1.3).
    let side_mm = presets::array("cram-1k").unwrap().chip_area_mm2().sqrt();
    let wire = |mm: f64| 0.03968 * mm;
    assert!((t.moved_pj_per_bit[0] - wire(side_mm / 8f64.sqrt())).abs() < 1e-12);
    assert!((t.moved_pj_per_bit[1] - wire(side_mm)).abs() < 1e-12);
    let sram = 10.0 * 22.0 / 45.0 * 0.64 / 0.81;
    assert!((t.controller_pj_per_command - (sram + 64.0 * wire(side_mm))).abs() < 1e-9);
    let nand = lib.get(GateKind::Nand);
    let per_cell = 0.193 * nand.bias_v * nand.bias_v * 1e-3;
    assert!((t.bsl_logic_pj_per_cell[NAND] - per_cell).abs() < 1e-18);
    assert_eq!(&t.pulse_pj[NAND][..3], nand.e_pulse_pj.as_slice());
    assert_eq!(
        t.cell_write_pj,
        [lib.device.e_preset_pj(false), lib.device.e_preset_pj(true)]
    );
    assert!(
        GateKind::ALL
            .iter()
            .enumerate()
            .all(|(i, g)| g.index() == i)
    );
}

/// One NAND step on a full subarray, every component by hand.
#[test]
fn one_gate_step_by_hand() {
    let (_, t) = table();
    let mut a = account(&nand_program(0, None), 1024, 1024, lines());
    assert_eq!(a.gate_steps, vec![(GateKind::Nand, 1024)]);
    // 1024 lanes with z = 0, 1, 2 in the proportions 1:2:1.
    a.actions.add_pulses(
        &a.gate_steps,
        PulseModel::Measured(&[[256, 512, 256, 0, 0, 0]]),
    );
    let e = energy(&a.actions, &t, Pricing::ByZeros);
    let p = &t.pulse_pj[NAND];
    assert!((e.logic_pulses_pj - (256.0 * p[0] + 512.0 * p[1] + 256.0 * p[2])).abs() < 1e-12);
    assert!((e.presets_pj - 1024.0 * t.cell_write_pj[0]).abs() < 1e-9);
    // Every segment of the three lines is driven: 1024 cells each.
    let lines = 1024.0 * (t.wll_pj + t.bsl_write_pj_per_cell + 3.0 * t.bsl_logic_pj_per_cell[NAND]);
    assert!((e.line_drivers_pj - lines).abs() < 1e-9);
    assert_eq!(e.peripherals_pj, t.decoder_pj);
    assert!(energy(&a.actions, &t, Pricing::Worst).logic_pulses_pj >= e.logic_pulses_pj);
}

/// Unselected lanes cost no pulse, preset or word-line energy; unused columns cost nothing.
#[test]
fn idle_lanes_and_columns_cost_nothing() {
    let (_, t) = table();
    let price = |p: &Program| energy(&account(p, 1024, 1024, lines()).actions, &t, Pricing::Worst);
    assert_eq!(
        price(&nand_program(0, None)),
        price(&nand_program(500, None))
    );
    let ten = account(&nand_program(0, Some((0, 10))), 1024, 1024, lines());
    assert_eq!(ten.gate_steps, vec![(GateKind::Nand, 10)]);
    let e = energy(&ten.actions, &t, Pricing::Worst);
    assert!((e.presets_pj - 10.0 * t.cell_write_pj[0]).abs() < 1e-12);
    assert!((e.logic_pulses_pj - 10.0 * t.pulse_pj[NAND][2]).abs() < 1e-12);
    // Word lines of 10 rows; the bit-select lines over the two 8-row segments holding
    // them (16 cells), not the whole subarray.
    let lines =
        10.0 * t.wll_pj + 16.0 * (t.bsl_write_pj_per_cell + 3.0 * t.bsl_logic_pj_per_cell[NAND]);
    assert!((e.line_drivers_pj - lines).abs() < 1e-12);
    assert_eq!(e.peripherals_pj, 2.0 * t.decoder_pj); // mask + step
}

/// A row move inside a bank and one across banks, by hand (cram-1k: 1024 columns, the
/// bank and global bus's and the sense amplifier's prices from the table).
#[test]
fn row_move_energy_by_hand() {
    use crate::model::timing::ChipOp;
    let (_, t) = table();
    let org = presets::array("cram-1k").unwrap();
    let mv = |dst| {
        energy(
            &transfer_actions(
                &ChipOp::MoveRow {
                    src: 0,
                    src_lane: 0,
                    dst,
                    dst_lane: 0,
                },
                &org,
            ),
            &t,
            Pricing::ByZeros,
        )
    };
    let (near, far) = (mv(1), mv(16));
    assert!((near.bus_pj - 1024.0 * t.moved_pj_per_bit[0]).abs() < 1e-9);
    assert!((far.bus_pj - 1024.0 * t.moved_pj_per_bit[1]).abs() < 1e-9);
    assert!((near.memory_reads_pj - 1024.0 * t.sense_pj_per_bit).abs() < 1e-9);
    let write = 512.0 * (t.cell_write_pj[0] + t.cell_write_pj[1]);
    assert!((near.memory_writes_pj - write).abs() < 1e-9);
    // 1024 bit lines, each over the destination row's 8-row segment.
    let lines = 1024.0 * 8.0 * t.bsl_write_pj_per_cell + t.wll_pj;
    assert!((near.line_drivers_pj - lines).abs() < 1e-9);
    assert_eq!(near.peripherals_pj, 2.0 * t.decoder_pj);
    assert_eq!(near.controller_pj, t.controller_pj_per_command);
    let host = energy(
        &transfer_actions(&ChipOp::HostLoad { dst: 0, lane: 0 }, &org),
        &t,
        Pricing::ByZeros,
    );
    assert!((host.host_io_pj - 1024.0 * 10.0).abs() < 1e-9 && host.bus_pj == 0.0);
}

/// Data-dependent pulse energy over N random lanes converges to the characterized mean.
/// Bound: a lane's pulse energy lies in [lo, hi] (sum over steps of the cheapest and the
/// dearest z of each gate), so its standard deviation is at most (hi − lo)/2 (Popoviciu);
/// the mean of N lanes and the M-lane characterization then differ by at most
/// 5 · (hi − lo)/2 · √(1/N + 1/M) per lane, except with probability below 1e-6.
#[test]
fn data_dependent_energy_converges_to_the_mean_model() {
    let (_, t) = table();
    let kernels = [
        (KernelKind::Add, GateSet::Maj),
        (KernelKind::Mul, GateSet::Nand),
        (KernelKind::Popcount, GateSet::Maj),
    ];
    for (kind, set) in kernels {
        let k = KernelSpec {
            kind,
            bits: 12,
            bits_b: 12,
            constant: 0,
            gate_set: set,
        }
        .build();
        let n: u64 = 60_000;
        let cfg = RunConfig {
            lanes: n as usize,
            lanes_per_subarray: 1024,
            seed: 5,
            error_rate: 0.0,
            error_rates_by_gate: None,
            track_zeros: true,
            stop: Default::default(),
        };
        let r = run_and_check(&k, &cfg);
        assert_eq!(r.mismatched_lanes, 0);
        let inputs: Vec<Col> = k.inputs.iter().flat_map(|o| o.cols.clone()).collect();
        let at = Placement {
            lanes: n,
            lines: lines(),
            cols: 1024,
            commands: k.program.ops().len() as u64,
        };
        let e = run_energy(&k.program, &inputs, &t, at, 5, Some(&r.zero_histograms));
        let measured = e.data_dependent.unwrap().logic_pulses_pj / n as f64;
        let mean = e.mean.logic_pulses_pj / n as f64;
        let steps = account(&k.program, 1, 1024, lines()).gate_steps;
        let range: f64 = steps
            .iter()
            .map(|(g, _)| {
                let p = &t.pulse_pj[g.index()][..=g.arity()];
                p.iter().copied().fold(0.0, f64::max)
                    - p.iter().copied().fold(f64::INFINITY, f64::min)
            })
            .sum();
        let bound =
            5.0 * range / 2.0 * (1.0 / n as f64 + 1.0 / CHARACTERIZATION_LANES as f64).sqrt();
        assert!(
            (measured - mean).abs() <= bound,
            "{kind:?}: {measured} vs {mean} (bound {bound})"
        );
        // The executor ran exactly the lanes the accountant counts.
        let lanes_run: u64 = r
            .zero_histograms
            .iter()
            .map(|h| h.iter().sum::<u64>())
            .sum();
        assert_eq!(lanes_run, steps.len() as u64 * n);
    }
}

/// Each energy boundary adds its own components to the one inside it, and the system's is
/// every component (docs/model.md §4.1).
#[test]
fn energy_boundaries_nest() {
    let e = EnergyBreakdown {
        logic_pulses_pj: 1.0,
        presets_pj: 2.0,
        memory_reads_pj: 4.0,
        memory_writes_pj: 8.0,
        line_drivers_pj: 16.0,
        peripherals_pj: 32.0,
        bus_pj: 64.0,
        host_io_pj: 128.0,
        controller_pj: 256.0,
        function_unit_pj: 1024.0,
        leakage_pj: 512.0,
    };
    let at: Vec<f64> = Boundary::ALL.iter().map(|&b| e.within_pj(b)).collect();
    assert_eq!(at, [27.0, 575.0, 1919.0, 2047.0]);
    assert_eq!(e.within_pj(Boundary::System), e.total_pj());
    let names: Vec<&str> = Boundary::ALL.iter().map(|b| b.name()).collect();
    assert_eq!(names, ["array", "macro", "chip", "system"]);
}

mod packed {
    use super::*;
    use proptest::prelude::*;

    /// Non-negative counts, a third of them +0.0 (whole gates too, so that some are left
    /// out), with fractions as the expected pulse model gives them.
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            0.0f64..1e9,
            (0u64..1 << 40).prop_map(|n| n as f64)
        ]
    }

    fn actions() -> impl Strategy<Value = Actions> {
        (
            prop::collection::vec(prop::collection::vec(value(), ZS), GATES),
            prop::collection::vec(any::<bool>(), GATES),
            prop::collection::vec(value(), 2 * GATES + 14),
        )
            .prop_map(|(pulses, used, v)| {
                let mut a = Actions::default();
                for g in (0..GATES).filter(|&g| used[g]) {
                    a.pulse_lanes[g].copy_from_slice(&pulses[g]);
                    (a.gate_lanes[g], a.bsl_logic_cells[g]) = (v[2 * g], v[2 * g + 1]);
                }
                let r = &v[2 * GATES..];
                a.preset_cells = [r[0], r[1]];
                (a.bsl_write_cells, a.wll_lanes, a.decodes, a.read_bits) = (r[2], r[3], r[4], r[5]);
                a.write_bits = [r[6], r[7]];
                a.commands = r[8];
                a.moved_bits = [r[9], r[10], r[11], r[12]];
                a.unit_ops = r[13];
                a
            })
    }

    proptest! {
        /// Packed actions unpack to the same bits, and a sum of scaled packed actions (a
        /// layer's streams, `repeat` times each) is bit for bit the sum of the unpacked
        /// ones, whichever gates each stream leaves out.
        #[test]
        fn packed_actions_sum_as_the_unpacked(
            streams in prop::collection::vec((actions(), 1u64..1 << 20), 1..6),
        ) {
            let (mut plain, mut packed) = (Actions::default(), Actions::default());
            for (a, k) in &streams {
                let p = PackedActions::from(a);
                prop_assert_eq!(format!("{:?}", p.unpacked()), format!("{a:?}"));
                plain.add_scaled(a, *k as f64);
                p.add_scaled_to(&mut packed, *k as f64);
            }
            prop_assert_eq!(format!("{packed:?}"), format!("{plain:?}"));
        }
    }

    /// A gate with no count is left out; one with any entry other than +0.0 is kept (a
    /// −0.0 too), in index order, the first two in place.
    #[test]
    fn only_counted_gates_are_kept() {
        let mut a = Actions::default();
        a.gate_lanes[GateKind::Nand.index()] = 3.0;
        a.pulse_lanes[GateKind::Not.index()][1] = 1.0;
        let p = PackedActions::from(&a);
        let kept = |p: &PackedActions| p.gates.iter().map(|g| g.0 as usize).collect::<Vec<_>>();
        let mut want = vec![GateKind::Not.index(), GateKind::Nand.index()];
        want.sort();
        assert_eq!(kept(&p), want);
        assert!(!p.gates.spilled());
        assert!(kept(&PackedActions::from(&Actions::default())).is_empty());
        // A line charge alone, or a −0.0, keeps its gate.
        a.bsl_logic_cells[GateKind::And.index()] = 2.0;
        a.gate_lanes[GateKind::Maj3.index()] = -0.0;
        let p = PackedActions::from(&a);
        assert_eq!(p.gates.len(), 4);
        assert!(kept(&p).contains(&GateKind::And.index()));
        assert!(kept(&p).contains(&GateKind::Maj3.index()));
        assert_eq!(format!("{:?}", p.unpacked()), format!("{a:?}"));
    }
}
