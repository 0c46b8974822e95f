//! Tests of the mapper.

use super::Strategy;
use super::tests::hw;
use super::*;
use cram_workloads::golden;

/// The compression of the default configuration (8-bit symmetric per-channel weights,
/// 8-bit activations), with `sparsity` of the weights pruned.
pub(super) fn spec(sparsity: Option<f64>) -> CompressSpec {
    CompressSpec {
        prune: sparsity
            .filter(|&s| s > 0.0)
            .map(|sparsity| Prune::Unstructured { sparsity }),
        ..CompressSpec::INT8
    }
}

/// Zoo network `name` with synthetic weights of `seed`, compressed by `spec`.
fn zoo_program(name: &str, spec: &CompressSpec, seed: u64) -> golden::Program {
    let net = cram_workloads::zoo::model(name).unwrap();
    let m = cram_workloads::compress::synthetic_model(&net, spec, seed, 2).unwrap();
    golden::Program::compile(&m.net, &m.weights, m.quant.as_ref().unwrap()).unwrap()
}
use cram_workloads::compress::{
    BINARY_WEIGHTS, Binarize, Calibration, CompressSpec, compress, synthetic_inputs,
    synthetic_weights,
};
use cram_workloads::net::{Network, Op as NetOp, Shape, UnaryFn, Window};
use cram_workloads::prune::Prune;
use cram_workloads::quant::{WeightMode, WeightScheme};
use cram_workloads::zoo::{conv, dense};
use proptest::prelude::*;

fn run(prog: &golden::Program, images: &[Array3<i64>], mode: Mode, s: Layout) -> NetRun {
    run_network(
        prog,
        images,
        &hw_for(prog),
        &options(mode, Choice::layout(s)),
    )
    .unwrap()
}

/// Error-free run options of `mode` and `choice`, seed 3.
pub(super) fn options(mode: Mode, choice: Choice) -> RunOptions {
    RunOptions {
        mode,
        choice,
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 3,
        limits: Default::default(),
    }
}

/// cram-1k with its organisation changed by `f`.
fn hw_with(f: impl FnOnce(&mut cram_arch::org::OrgParams)) -> Hw {
    let mut org = hw().org.params.clone();
    f(&mut org);
    Hw::new(hw().lib, org.validate("test").unwrap(), GateSet::Maj)
}

/// cram-1k, with its subarrays widened to 4,096 columns when an activation is wider than
/// 8 bits: a table over 12–16-bit codes takes 1,500–2,200 columns, which cram-1k's 1,024
/// refuse (`MapError::Columns`, tested in `map::tests`).
pub(super) fn hw_for(prog: &golden::Program) -> Hw {
    let wide = (0..prog.network().layers.len()).any(|i| prog.act(i).bits > 8);
    if !wide {
        return hw();
    }
    hw_with(|org| org.cols_per_subarray = 4096)
}

fn images(prog: &golden::Program, n: usize, seed: u64) -> Vec<Array3<i64>> {
    let (lo, hi) = prog.act(0).range();
    synthetic_inputs(prog.network().input_shape(), n, seed)
        .iter()
        .map(|x| x.mapv(|v| (lo + ((hi - lo + 1) as f32 * v) as i64).min(hi)))
        .collect()
}

/// The functional run is bit-exact and its every layer's counts and cycles equal the
/// closed-form analytical run's, except in a layer whose programs had to copy a column
/// read twice by one gate: there the analytical run is short by those copies. Returns
/// how many such layers there were.
pub(super) fn check_equal(prog: &golden::Program, images: &[Array3<i64>], s: Layout) -> usize {
    let f = run(prog, images, Mode::Functional, s);
    let a = run(prog, images, Mode::Analytical, s);
    for (x, got) in images.iter().zip(&f.outputs) {
        assert_eq!(got, prog.run(x).unwrap().last().unwrap(), "{s:?}");
    }
    mapping_measures_are_bounded(&f);
    mapping_measures_are_bounded(&a);
    analytical_matches(&f, &a).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// The lower bound of docs/model.md §2.8 is below every layer's cycles, and the lane-cycles
/// fit in the chip's lanes over them: both measures lie in [0, 1], per layer and network.
fn mapping_measures_are_bounded(r: &NetRun) {
    let chip_lanes = hw().org.lanes();
    for l in &r.layers {
        assert!(
            l.bound_cycles <= l.cycles,
            "{}: bound {} > {} cycles",
            l.name,
            l.bound_cycles,
            l.cycles
        );
        assert!(
            u128::from(l.lane_cycles) <= u128::from(chip_lanes) * u128::from(l.cycles),
            "{}: {} lane-cycles in {} cycles",
            l.name,
            l.lane_cycles,
            l.cycles
        );
        // A value crosses the bus at most once per lane that loads it; a lane of an
        // element-wise part loads its own operands. A layer of the function unit also moves
        // its inputs out of their lanes to the unit (docs/model.md §2.5.1).
        if l.energy.function_unit_pj > 0.0 {
            assert!(l.loaded_bits > l.written_bits, "{}", l.name);
        } else {
            assert!(l.loaded_bits <= l.written_bits, "{}", l.name);
            if l.layout.is_none() {
                assert_eq!(l.loaded_bits, l.written_bits, "{}", l.name);
            }
        }
        for m in [l.chip_lane_utilization, l.mapping_efficiency] {
            assert!((0.0..=1.0).contains(&m), "{}: {m}", l.name);
        }
    }
    for m in [r.chip_lane_utilization(chip_lanes), r.mapping_efficiency()] {
        assert!((0.0..=1.0).contains(&m), "network: {m}");
    }
}

/// A network with every op the mapper knows beside Dense/Conv2d (average pooling with and
/// without padding in its divisor, by `k`).
fn every_op(c: usize, k: usize, pool: bool) -> Network {
    let mut n = Network::new("every-op", Shape { c, h: 6, w: 6 });
    n.then("c1", conv(4, k, 1, k / 2, 1, true));
    n.then("r1", NetOp::Relu);
    let m = if pool {
        n.then(
            "mp",
            NetOp::MaxPool {
                window: Window::square(2, 2, 0),
            },
        )
    } else {
        n.then(
            "ap",
            NetOp::AvgPool {
                window: Window::square(3, 2, 1),
                // Padding in the divisor, or out of it (a program per cell count).
                count_pad: k == 1,
            },
        )
    };
    let b = n.then("c2", conv(4, 1, 1, 0, 1, false));
    n.push("add", NetOp::Add, &[m, b]);
    let d = n.then(
        "ds",
        NetOp::Downsample {
            stride: 2,
            out_channels: 6,
        },
    );
    let e = n.push("c3", conv(3, 1, 1, 0, 1, true), &[d]);
    n.push("cat", NetOp::Concat, &[d, e]);
    n.then("shuffle", NetOp::Shuffle { groups: 3 });
    n.then("channels", NetOp::Channels { start: 2, len: 5 });
    // Tables (hard-swish, sigmoid, tanh) and products of two activations: a per-channel
    // gate (squeeze-and-excitation) and a same-shaped one.
    let hs = n.then(
        "hswish",
        NetOp::Unary {
            f: UnaryFn::HardSwish,
        },
    );
    n.then("se_gap", NetOp::GlobalAvgPool);
    let g = n.then(
        "se_sigmoid",
        NetOp::Unary {
            f: UnaryFn::Sigmoid,
        },
    );
    let m = n.push("se_mul", NetOp::Mul, &[hs, g]);
    let t = n.then("tanh", NetOp::Unary { f: UnaryFn::Tanh });
    n.push("mul", NetOp::Mul, &[m, t]);
    n.then("gap", NetOp::GlobalAvgPool);
    n.then("fc", dense(5));
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Analytical == functional (counts, cycles) and bit-exact, on random small networks
    /// with every mapped op, random weight bits, signedness and sparsity, both strategies'
    /// plain layouts and a random stored layout (reduction slices, program sharing).
    #[test]
    fn analytical_equals_functional(
        c in 1usize..4, k in prop_oneof![Just(1usize), Just(3)], pool in any::<bool>(),
        bits in 2u32..9, act_bits in 2u32..9, symmetric in any::<bool>(),
        sparsity in prop_oneof![Just(0.0f64), Just(0.5), Just(0.9)], seed in 0u64..1000,
        slices in 1usize..12, shared in any::<bool>(), resident in any::<bool>(),
        copies in 0usize..5,
    ) {
        check_every_op(c, k, pool, bits, act_bits, symmetric, sparsity, seed);
        let prog = every_op_program(c, k, pool, (bits, act_bits, symmetric), sparsity, seed);
        let imgs = images(&prog, 3, seed + 2);
        // Copies (outputs over time, in waves) are of resident shared weights.
        let copies = if shared && resident { copies } else { 0 };
        let layout = Layout { strategy: Strategy::Stored, slices, shared, resident, copies };
        // A resident layout whose weights exceed the resident columns is refused.
        match run_network(&prog, &imgs, &hw(), &RunOptions {
            mode: Mode::Analytical,
            choice: Choice::layout(layout),
            error_rates: [0.0; cram_arch::GateKind::COUNT],
            seed: 3,
            limits: Default::default(),
        }) {
            Ok(_) => {
                check_equal(&prog, &imgs, layout);
            }
            Err(e) => prop_assert!(resident && e.to_string().contains("resident"), "{e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// The same on binarized networks, whose ±1 × ±1 stored products take the XNOR route
    /// ([`Linear::xnor`]): the inner weighted layers (or all of them) at ±1 weights and
    /// inputs, the ends at `bits`, under a random stored layout whose reductions are whole
    /// or split in slices of unequal length (a shorter slice's lanes load inputs that add
    /// nothing past its end).
    #[test]
    fn binary_analytical_equals_functional(
        c in 1usize..4, k in prop_oneof![Just(1usize), Just(3)], pool in any::<bool>(),
        bits in 2u32..9, all in any::<bool>(), seed in 0u64..1000,
        slices in 1usize..12, shared in any::<bool>(), resident in any::<bool>(),
    ) {
        let binarize = Binarize {
            weights: true,
            acts: true,
            ends: (!all).then_some(BINARY_WEIGHTS),
        };
        let prog = every_op_compressed(c, k, pool, (bits, 8, false), 0.0, Some(binarize), seed);
        let imgs = images(&prog, 3, seed + 2);
        for s in Strategy::ALL {
            check_equal(&prog, &imgs, Layout::plain(s));
        }
        let layout = Layout { strategy: Strategy::Stored, slices, shared, resident, copies: 0 };
        match run_network(&prog, &imgs, &hw(), &analytical(Choice::layout(layout))) {
            Ok(_) => {
                check_equal(&prog, &imgs, layout);
            }
            Err(e) => prop_assert!(resident && e.to_string().contains("resident"), "{e}"),
        }
    }
}

/// [`every_op`] compressed with seeded synthetic weights: (weight bits, activation bits,
/// signed activations), unstructured pruning to `sparsity`.
fn every_op_program(
    c: usize,
    k: usize,
    pool: bool,
    (bits, act_bits, symmetric): (u32, u32, bool),
    sparsity: f64,
    seed: u64,
) -> golden::Program {
    every_op_compressed(
        c,
        k,
        pool,
        (bits, act_bits, symmetric),
        sparsity,
        None,
        seed,
    )
}

/// [`every_op_program`], binarized by `binarize` when given (its weighted layers between
/// the ends, or all of them, at ±1 weights and inputs; `bits` is then the ends' width).
fn every_op_compressed(
    c: usize,
    k: usize,
    pool: bool,
    (bits, act_bits, symmetric): (u32, u32, bool),
    sparsity: f64,
    binarize: Option<Binarize>,
    seed: u64,
) -> golden::Program {
    let net = every_op(c, k, pool);
    let w = synthetic_weights(&net, seed).unwrap();
    let scheme = WeightScheme {
        bits,
        mode: WeightMode::Symmetric,
        per_channel: true,
    };
    let spec = CompressSpec {
        weights: if binarize.is_some() {
            BINARY_WEIGHTS
        } else {
            scheme
        },
        act_bits,
        act_symmetric: symmetric,
        input: None,
        prune: (sparsity > 0.0).then_some(Prune::Unstructured { sparsity }),
        calibration: Calibration::MinMax,
        binarize: binarize.map(|b| Binarize {
            ends: b.ends.map(|_| scheme),
            ..b
        }),
    };
    let calib = synthetic_inputs(net.input_shape(), 3, seed + 1);
    compress(&net, &w, &spec, &calib)
        .unwrap()
        .0
        .program()
        .unwrap()
}

/// One case of `analytical_equals_functional`; returns the layers that needed copies.
#[allow(clippy::too_many_arguments)]
fn check_every_op(
    c: usize,
    k: usize,
    pool: bool,
    bits: u32,
    act_bits: u32,
    symmetric: bool,
    sparsity: f64,
    seed: u64,
) -> usize {
    let prog = every_op_program(c, k, pool, (bits, act_bits, symmetric), sparsity, seed);
    let imgs = images(&prog, 3, seed + 2);
    Strategy::ALL
        .into_iter()
        .map(|s| check_equal(&prog, &imgs, Layout::plain(s)))
        .sum()
}

/// Cases the property test once found where a gate was given the same column twice: an
/// all-pruned channel (its accumulator is a constant), and an accumulator holding one
/// input column at two weights (a single live weight of two CSD digits).
#[test]
fn found_cases_stay_fixed() {
    assert_eq!(check_every_op(1, 1, false, 2, 4, false, 0.9, 189), 0);
    assert!(check_every_op(3, 1, false, 8, 2, false, 0.5, 108) > 0);
}

/// Settings that once failed with "a sum … needs 65 bits" (issue 19): 16-bit weights
/// and activations, whose requantization no longer fits one 64-bit heap, and heavy
/// pruning, whose near-empty channels carry tiny multipliers with large shifts. Both
/// strategies: bit-exact, and analytical == functional.
#[test]
fn wide_formats_and_heavy_pruning_are_exact() {
    for (bits, act_bits, sparsity) in [(16, 16, 0.0), (16, 12, 0.5), (14, 14, 0.9)] {
        for seed in [1, 2] {
            check_every_op(3, 3, false, bits, act_bits, false, sparsity, seed);
        }
    }
    let prog = zoo_program("resnet20", &spec(Some(0.8)), 1);
    let opts = analytical(Choice::auto(Objective::Energy));
    let r = run_network(&prog, &images(&prog, 1, 5), &hw(), &opts).unwrap();
    mapping_measures_are_bounded(&r);
}

/// A network with LRN (AlexNet's place for it: after a ReLU, before a pool): the periphery's
/// function unit computes it (docs/model.md §2.5.1). Under every strategy the run is
/// bit-exact and analytical == functional; the LRN layer's energy holds the unit's
/// multiply-adds at the array file's price, its input's read-out and its results'
/// write-back, and its cycles at least the unit's; a second pass (the write-back) follows
/// the unit's. A faster unit shortens the layer and leaves its energy but the unit's.
#[test]
fn lrn_runs_on_the_function_unit_exactly() {
    let mut net = Network::new("lrn", Shape { c: 3, h: 6, w: 6 });
    net.then("c1", conv(5, 3, 1, 1, 1, true));
    net.then("r1", NetOp::Relu);
    net.then(
        "norm",
        NetOp::Lrn {
            size: 3,
            alpha: 1e-2,
            beta: 0.75,
            bias: 1.0,
        },
    );
    net.then(
        "mp",
        NetOp::MaxPool {
            window: Window::square(2, 2, 0),
        },
    );
    net.then("fc", dense(4));
    let w = synthetic_weights(&net, 3).unwrap();
    let calib = synthetic_inputs(net.input_shape(), 3, 4);
    let prog = compress(&net, &w, &spec(None), &calib)
        .unwrap()
        .0
        .program()
        .unwrap();
    let imgs = images(&prog, 3, 5);
    for s in Strategy::ALL {
        check_equal(&prog, &imgs, Layout::plain(s));
    }
    let layer_of = |h: &Hw| {
        let r = run_network(
            &prog,
            &imgs,
            h,
            &analytical(Choice::auto(Objective::Energy)),
        )
        .unwrap();
        r.layers.into_iter().find(|l| l.name == "norm").unwrap()
    };
    let h = hw();
    let l = layer_of(&h);
    let elements = 3.0 * 5.0 * 6.0 * 6.0;
    let ops = elements * (3 + super::unit::LRN_TAIL_OPS) as f64;
    let price = h.table.function_unit_pj_per_op;
    assert!(price > 0.0);
    assert!((l.energy.function_unit_pj - ops * price).abs() <= 1e-9 * ops * price);
    assert!(l.energy.memory_reads_pj > 0.0 && l.energy.memory_writes_pj > 0.0);
    let fu = h.org.params.function_unit;
    let unit = (ops as u64)
        .div_ceil(u64::from(fu.ops_per_cycle))
        .max(elements as u64)
        + u64::from(fu.latency_cycles);
    assert!(
        l.cycles > unit,
        "{} cycles, the unit alone {unit}",
        l.cycles
    );
    // `map` lists the write-back's runs on subarrays, which are the layer's subarray runs
    // (the unit's pass is none).
    let norm = prog.network().find("norm").unwrap();
    let p = super::place::place(&prog, norm, &h, Choice::auto(Objective::Energy), None).unwrap();
    let runs: usize = p.programs.iter().map(|q| q.runs.len()).sum();
    assert_eq!(runs as u64, p.report.subarray_runs);
    let fast = hw_with(|org| {
        org.function_unit.ops_per_cycle *= 64;
        org.issue_slots_per_cycle = 64;
    });
    let f = layer_of(&fast);
    assert!(f.cycles < l.cycles, "{} vs {}", f.cycles, l.cycles);
    assert_eq!(f.energy.function_unit_pj, l.energy.function_unit_pj);
}

/// An element-wise program is one program however wide: a table over 16-bit codes (about
/// 2,000 columns) is refused on cram-1k's 1,024-column subarrays, in either mode, naming
/// the columns; over 8-bit codes (under 50 columns) it runs.
#[test]
fn a_table_wider_than_the_subarray_is_refused() {
    for mode in [Mode::Analytical, Mode::Functional] {
        let opts = options(mode, Choice::auto(Objective::Energy));
        let wide = every_op_program(1, 1, false, (8, 16, false), 0.0, 1);
        let e = run_network(&wide, &images(&wide, 1, 2), &hw(), &opts).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("the subarray has 1024 (cols_per_subarray)"),
            "{e}"
        );
        let narrow = every_op_program(1, 1, false, (8, 8, false), 0.0, 1);
        run_network(&narrow, &images(&narrow, 1, 2), &hw(), &opts).unwrap();
    }
}

/// Issue 19 item 8: a functional run in waves (here of 2 images) checks every image and
/// reports what one run of all the images reports: the same streams, counts, cycles and
/// flips, and the same energy but for the summation order; analytical mode prices all
/// the images at once, counting equal lane blocks once.
#[test]
fn waves_report_what_one_run_of_every_image_does() {
    for (sparsity, seed) in [(0.0, 4), (0.9, 189)] {
        let prog = every_op_program(2, 3, true, (4, 6, false), sparsity, seed);
        let imgs = images(&prog, 5, 7);
        let choices = [
            Choice::force(Strategy::Const),
            Choice::force(Strategy::Stored),
            Choice::auto(Objective::Energy),
        ];
        for choice in choices {
            for error_rate in [0.0, 0.01] {
                let opts = RunOptions {
                    mode: Mode::Functional,
                    choice,
                    error_rates: [error_rate; cram_arch::GateKind::COUNT],
                    seed: 3,
                    limits: Default::default(),
                };
                let whole = run_network(&prog, &imgs, &hw(), &opts).unwrap();
                let mut seen = Vec::new();
                let mut wave_flips = Vec::new();
                let waves = run_waves(
                    &prog,
                    5,
                    2,
                    &hw(),
                    &opts,
                    None,
                    &mut |r| Ok(imgs[r].to_vec()),
                    &mut |r, x, run| {
                        seen.push(r.clone());
                        wave_flips.push(run.layers.iter().map(|l| l.flips).collect::<Vec<_>>());
                        for (x, got) in x.iter().zip(&run.outputs) {
                            let golden = prog.run(x).unwrap();
                            assert!(error_rate > 0.0 || got == golden.last().unwrap());
                        }
                        Ok(())
                    },
                )
                .unwrap();
                assert_eq!(seen, [0..2, 2..4, 4..5]);
                // Each wave draws its own faults: two waves of the same size do not
                // repeat each other's flips.
                if error_rate > 0.0 {
                    assert_ne!(wave_flips[0], wave_flips[1]);
                }
                for (a, b) in whole.layers.iter().zip(&waves.layers) {
                    // Faults fall on other lanes when the lanes are other blocks: only
                    // the fault-free energies agree.
                    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(1e-9);
                    assert!(
                        error_rate > 0.0 || close(a.energy.total_pj(), b.energy.total_pj()),
                        "{}: {:?} vs {:?}",
                        a.name,
                        a.energy,
                        b.energy
                    );
                    let strip = |l: &LayerReport| LayerReport {
                        energy: EnergyBreakdown::default(),
                        flips: 0,
                        ..l.clone()
                    };
                    assert_eq!(format!("{:?}", strip(a)), format!("{:?}", strip(b)));
                    if error_rate == 0.0 {
                        assert_eq!(a.flips, b.flips);
                    }
                }
                // Analytical: all at once, equal to the plain run.
                let counted = RunOptions {
                    mode: Mode::Analytical,
                    ..opts
                };
                let a = run_waves(
                    &prog,
                    5,
                    2,
                    &hw(),
                    &counted,
                    None,
                    &mut |_| unreachable!(),
                    &mut |_, _, _| unreachable!(),
                )
                .unwrap();
                let plain = run_network(&prog, &imgs, &hw(), &counted).unwrap();
                assert_eq!(format!("{:?}", a.layers), format!("{:?}", plain.layers));
            }
        }
    }
}

/// Every layer of ResNet-20 (int8, one image): bit-exact, and the analytical counts and
/// cycles equal the functional ones, in both strategies' plain layouts, with every
/// reduction split over 8 slices under one shared program, and resident in 3 copies over
/// 16 slices, the outputs in waves. (Resident with a lane per output, its stored lanes
/// would hold 335 Mbit of weight copies, more than a chip: see
/// `residency_that_does_not_fit`.)
#[test]
fn resnet20_analytical_equals_functional() {
    let prog = zoo_program("resnet20", &spec(None), 1);
    let imgs = images(&prog, 1, 5);
    let sliced = Layout {
        strategy: Strategy::Stored,
        slices: 8,
        shared: true,
        resident: false,
        copies: 0,
    };
    // Resident in 3 copies, the 1024 positions of layer 1 in 342 waves.
    let waves = Layout {
        slices: 16,
        resident: true,
        copies: 3,
        ..sliced
    };
    for s in Strategy::ALL
        .map(Layout::plain)
        .into_iter()
        .chain([sliced, waves])
    {
        check_equal(&prog, &imgs, s);
    }
}

/// Strategy A (weights in the instruction stream) gets cheaper in energy and latency as
/// the weights get sparser: ResNet-20 at 0, 50 and 90 % unstructured pruning.
#[test]
fn const_strategy_cost_falls_with_sparsity() {
    let img = vec![Array3::zeros((3, 32, 32))];
    let costs: Vec<(f64, u64)> = [None, Some(0.5), Some(0.9)]
        .into_iter()
        .map(|sparsity| {
            let prog = zoo_program("resnet20", &spec(sparsity), 1);
            let r = run(
                &prog,
                &img,
                Mode::Analytical,
                Layout::plain(Strategy::Const),
            );
            (r.energy_pj(), r.cycles())
        })
        .collect();
    for w in costs.windows(2) {
        assert!(w[1].0 < w[0].0 && w[1].1 < w[0].1, "{costs:?}");
    }
    // Half the weights pruned saves a good part of the energy, not a rounding error.
    assert!(costs[1].0 < 0.8 * costs[0].0, "{costs:?}");
}

/// A program that several lane blocks run is broadcast: its ops and its operand row writes
/// are issued once, each row write addressing that row in every block (docs/model.md §2.6).
/// So a stored layer's commands are its programs' ops plus, per program, the row writes of
/// its longest block: 16 images of a 6×6 conv give 576 lanes per channel, 9 blocks of 64
/// lanes, 2 of 288 or 1 of 576, with the same programs, and the commands grow by the same
/// count per lane of a block. The split run, whose analytical form counts a group's equal
/// blocks once with a repeat count, equals the functional run that executes every block,
/// and is bit-exact.
#[test]
fn a_broadcast_program_is_issued_once_whatever_the_blocks() {
    let prog = every_op_program(2, 3, false, (4, 6, false), 0.0, 7);
    let imgs = images(&prog, 16, 8);
    let run_on = |lanes: u32, mode: Mode| {
        let h = hw_with(|org| {
            org.lanes_per_subarray = lanes;
            org.peripherals.lanes_per_line_segment =
                lanes.min(org.peripherals.lanes_per_line_segment);
        });
        let opts = options(mode, Choice::force(Strategy::Stored));
        (
            run_network(&prog, &imgs, &h, &opts).unwrap(),
            h.table.controller_pj_per_command,
        )
    };
    let commands = |(r, price): &(NetRun, f64)| {
        let c1 = r.layers.iter().find(|l| l.name == "c1").unwrap();
        assert_eq!(c1.strategy(), Some(Strategy::Stored));
        (c1.energy.controller_pj / price, c1.subarray_runs)
    };
    let split = run_on(64, Mode::Analytical);
    let (split_commands, runs_split) = commands(&split);
    let (half_commands, runs_half) = commands(&run_on(288, Mode::Analytical));
    let (whole_commands, runs_whole) = commands(&run_on(576, Mode::Analytical));
    assert_eq!((runs_split, runs_half, runs_whole), (4 * 9, 4 * 2, 4));
    assert!(0.0 < split_commands && split_commands < half_commands);
    // The same row writes per lane of the longest block: 224 more lanes add 224/288 of
    // what 288 more add.
    assert!(
        ((half_commands - split_commands) * 288.0 - (whole_commands - half_commands) * 224.0).abs()
            < 1e-6,
        "{split_commands}, {half_commands}, {whole_commands} commands"
    );
    let functional = run_on(64, Mode::Functional);
    for (x, got) in imgs.iter().zip(&functional.0.outputs) {
        assert_eq!(got, prog.run(x).unwrap().last().unwrap());
    }
    analytical_matches(&functional.0, &split.0).unwrap();
    assert!((commands(&functional).0 - split_commands).abs() < 1e-6);
    // Blocks of 100 lanes straddle channels (576 per channel): groups of one block over two
    // channels, whose shared inputs are counted across the channel boundary.
    let (f, a) = (run_on(100, Mode::Functional), run_on(100, Mode::Analytical));
    analytical_matches(&f.0, &a.0).unwrap();
    let c1 = a.0.layers.iter().find(|l| l.name == "c1").unwrap();
    assert!(c1.loaded_bits < c1.written_bits);
}

/// Every objective minimizes over the same candidate layouts, so per layer the latency
/// objective never gives more cycles than the energy objective, nor the energy objective
/// more energy than the latency one; EDP lies between on both. This holds per layer while
/// every layer's preferred layout fits the chips (asserted); once it does not, the choice
/// trades layers against each other (docs/model.md §2.7), so the run spans enough chips.
/// The periphery leaks nothing here: leakage is shared among the layers by their spans
/// after the choice (see `leakage_pulls_the_energy_objective_toward_speed`).
#[test]
fn each_objective_wins_its_own_measure() {
    for (name, sparsity, n) in [
        ("resnet20", Some(0.5), 1),
        ("mlp-784-256-10", None, 4),
        ("lenet5", Some(0.9), 2),
    ] {
        let prog = zoo_program(name, &spec(sparsity), 1);
        let s = prog.network().input_shape();
        let imgs = vec![Array3::zeros((s.c, s.h, s.w)); n];
        let run = |objective| {
            let opts = analytical(Choice::auto(objective));
            let run = run_network(&prog, &imgs, &no_leakage(hw().with_chips(8)), &opts).unwrap();
            assert!(!run.residency.spilled(), "{name} {objective:?}");
            run
        };
        let (e, t, p) = (
            run(Objective::Energy),
            run(Objective::Latency),
            run(Objective::Edp),
        );
        let mut differ = 0;
        for ((a, b), c) in e.layers.iter().zip(&t.layers).zip(&p.layers) {
            let (ea, eb, ec) = (
                a.energy.total_pj(),
                b.energy.total_pj(),
                c.energy.total_pj(),
            );
            assert!(
                b.cycles <= a.cycles && b.cycles <= c.cycles,
                "{name} {}",
                a.name
            );
            assert!(ea <= eb && ea <= ec, "{name} {}: {ea} vs {eb}", a.name);
            differ += usize::from(a.layout != b.layout);
        }
        // The objectives do pick different layouts somewhere (the test is not vacuous).
        assert!(differ > 0, "{name}");
    }
}

/// Analytical options under `choice`, error-free, seed 1.
pub(super) fn analytical(choice: Choice) -> RunOptions {
    RunOptions {
        mode: Mode::Analytical,
        choice,
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 1,
        limits: Default::default(),
    }
}

/// `hw` with a periphery that leaks nothing.
fn no_leakage(mut hw: Hw) -> Hw {
    hw.org.periphery.leakage_nw_per_sense_amp = 0.0;
    hw.org.periphery.leakage_nw_per_row = 0.0;
    hw
}

/// The energy objective counts the periphery's leakage over each layout's cycles
/// (docs/model.md §1.1.2): on an MLP whose energy and latency objectives pick different
/// layouts without leakage, cram-1k's 19.8 mW per chip makes the energy objective pick
/// faster ones, and the run's energy then includes the leakage over its timeline, all of
/// it shared among the layers.
#[test]
fn leakage_pulls_the_energy_objective_toward_speed() {
    let prog = zoo_program("mlp-784-256-10", &spec(None), 1);
    let s = prog.network().input_shape();
    let imgs = vec![Array3::zeros((s.c, s.h, s.w)); 4];
    let opts = analytical(Choice::auto(Objective::Energy));
    let leaky = hw().with_chips(8);
    let (with, without) = (
        run_network(&prog, &imgs, &leaky, &opts).unwrap(),
        run_network(&prog, &imgs, &no_leakage(leaky.clone()), &opts).unwrap(),
    );
    assert!(
        with.cycles() < without.cycles(),
        "{} vs {}",
        with.cycles(),
        without.cycles()
    );
    let leak: f64 = with.layers.iter().map(|l| l.energy.leakage_pj).sum();
    let want = leaky.org.leakage_pj(8, with.cycles(), 0);
    assert!((leak - want).abs() <= 1e-9 * want, "{leak} vs {want}");
    assert!(without.layers.iter().all(|l| l.energy.leakage_pj == 0.0));
}

/// A network whose resident layouts do not fit the chip. With a lane per output (every
/// position its own copy of the weights, 335 Mbit): pinned resident, the run is refused
/// with the bits it needs, the chip's and the chips that would hold them; searched, the
/// layers that gain most per bit stay resident within the chip and the others reload; on
/// that many chips the same pin fits. With copies searched, pinned resident fits one chip
/// by taking fewer copies.
#[test]
fn residency_that_does_not_fit() {
    let prog = zoo_program("resnet20", &spec(None), 1);
    let img = vec![Array3::zeros((3, 32, 32))];
    let per_output = Choice {
        strategy: Some(Strategy::Stored),
        slices: Some(16),
        copies: Some(0),
        ..Choice::auto(Objective::Energy)
    };
    let run = |choice: Choice, hw: &Hw| {
        let opts = RunOptions {
            mode: Mode::Analytical,
            choice,
            error_rates: [0.0; cram_arch::GateKind::COUNT],
            seed: 1,
            limits: Default::default(),
        };
        run_network(&prog, &img, hw, &opts)
    };
    let pinned = |c: Choice| Choice {
        resident: Some(true),
        shared: Some(true),
        ..c
    };
    let e = run(pinned(per_output), &hw()).unwrap_err().to_string();
    assert!(
        e.contains("resident weights and constants need at least")
            && e.contains("67108864")
            && e.contains("cram.chips = 5"),
        "{e}"
    );
    // Searched: as much as fits stays resident, the rest reloads.
    let r = run(per_output, &hw()).unwrap();
    let d = &r.residency;
    assert!(d.spilled() && d.held_bits <= d.capacity_bits, "{d:?}");
    assert_eq!(r.deployment().written_bits, d.held_bits);
    assert_eq!(d.reloading, r.reloading());
    assert!(d.describe().contains("cram.chips = "), "{}", d.describe());
    // Five chips hold the pinned layouts.
    let five = hw().with_chips(5);
    let r = run(pinned(per_output), &five).unwrap();
    assert!(
        r.residency.resident && r.reloading() == 0,
        "{:?}",
        r.residency
    );
    assert!(r.deployment().written_bits > 67_108_864);
    // Copies searched: fewer copies fit one chip, every layer resident.
    let copies = Choice {
        copies: None,
        ..per_output
    };
    let r = run(pinned(copies), &hw()).unwrap();
    assert!(
        r.residency.resident && r.reloading() == 0,
        "{:?}",
        r.residency
    );
    assert!(r.residency.held_bits <= 67_108_864);
    assert!(
        r.layers
            .iter()
            .any(|l| l.layout.is_some_and(|l| l.copies > 0))
    );
}

/// Bits reserved for a model's state (a generation's key and value caches) come out of
/// the weights' share: what fitted beside nothing spills beside the reservation, the
/// resident bits held stay within what it leaves, a pinned network that no longer fits is
/// refused with the reservation named, and a reservation larger than the chips is refused
/// with the chips it needs, for any network.
#[test]
fn a_reserved_state_takes_its_bits_from_the_weights_share() {
    let prog = zoo_program("resnet20", &spec(None), 1);
    let img = vec![Array3::zeros((3, 32, 32))];
    let opts = |choice| RunOptions {
        mode: Mode::Analytical,
        choice,
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 1,
        limits: Default::default(),
    };
    let auto = Choice::auto(Objective::Energy);
    // Eight chips hold every layer's preferred resident layout.
    let eight = || hw().with_chips(8);
    let free = run_network(&prog, &img, &eight(), &opts(auto)).unwrap();
    let r0 = free.residency;
    assert!(
        !r0.spilled() && r0.held_bits > 0 && r0.reserved_bits == 0,
        "{r0:?}"
    );
    let cells = resident_cells(&eight());
    assert_eq!(r0.capacity_bits, cells);
    // Leave the weights half of what they held.
    let reserved = cells - r0.held_bits / 2;
    let hw_r = eight().with_state(reserved);
    assert_eq!(resident_capacity(&hw_r), r0.held_bits / 2);
    let r = run_network(&prog, &img, &hw_r, &opts(auto)).unwrap();
    let d = r.residency;
    assert_eq!((d.capacity_bits, d.reserved_bits), (cells, reserved));
    assert_eq!(d.wanted_bits, r0.wanted_bits);
    assert!(d.spilled() && d.held_bits <= d.free_bits(), "{d:?}");
    assert_eq!(r.deployment().written_bits, d.held_bits);
    assert!(d.chips_needed() > 8, "{d:?}");
    let words = d.describe();
    assert!(
        words.contains(&format!(
            "{reserved} resident bits are reserved for the key and value caches"
        )),
        "{words}"
    );
    // Less resident, so more reloaded: the run costs more than with the whole share.
    assert!(r.energy_pj() > free.energy_pj());
    // Pinned resident, with one bit left them, the weights do not fit.
    let pinned = Choice {
        resident: Some(true),
        ..auto
    };
    let e = run_network(&prog, &img, &eight().with_state(cells - 1), &opts(pinned))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "{} of them reserved for the key and value caches",
            cells - 1
        )),
        "{e}"
    );
    // A reservation the chips cannot hold is refused, naming the chips that would.
    let cells = resident_cells(&hw());
    let e = run_network(&prog, &img, &hw().with_state(2 * cells + 1), &opts(auto))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key and value caches need") && e.contains("cram.chips = 3"),
        "{e}"
    );
    let three = hw().with_chips(3).with_state(2 * cells + 1);
    assert!(run_network(&prog, &img, &three, &opts(auto)).is_ok());
}

/// A functional run's memory estimate holds a split reduction's partial sums: every slice
/// lane's value while the reducer runs, so pinning many slices is refused up front rather
/// than run past `--max-memory`.
#[test]
fn the_memory_estimate_counts_the_partial_sums() {
    let prog = zoo_program("lenet5", &spec(None), 1);
    let img = vec![Array3::zeros((1, 32, 32))];
    let plan = |slices| {
        let opts = RunOptions {
            mode: Mode::Analytical,
            choice: Choice::layout(Layout {
                strategy: Strategy::Stored,
                slices,
                shared: false,
                resident: false,
                copies: 0,
            }),
            error_rates: [0.0; cram_arch::GateKind::COUNT],
            seed: 1,
            limits: Default::default(),
        };
        let r = run_network(&prog, &img, &hw(), &opts).unwrap();
        (functional_memory(&prog, 1, &hw(), &r).activations_bytes, r)
    };
    let (whole, _) = plan(1);
    let (split, r) = plan(64);
    let lanes = r
        .layers
        .iter()
        .filter(|l| l.layout.is_some_and(|l| l.slices > 1))
        .map(|l| l.lanes_used)
        .max()
        .unwrap();
    assert_eq!(split, whole + 32 * lanes);
}

/// cram-1k and the candidates the search prices (under the latency objective, which costs
/// every layout) for every layer of a network with each mapped op.
fn every_op_plans() -> (Hw, Vec<LayerPlan>) {
    let prog = every_op_program(3, 3, true, (4, 4, false), 0.5, 7);
    let imgs = images(&prog, 40, 1);
    let opts = RunOptions {
        mode: Mode::Analytical,
        choice: Choice::auto(Objective::Latency),
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 3,
        limits: Default::default(),
    };
    let hw = hw();
    let plans = plan_network(&prog, &imgs, &hw, &opts, None).unwrap();
    (hw, plans)
}

/// Every layout the search prices, of every layer of a network with each mapped op, on one
/// chip and on three: the layer's timeline (docs/model.md §2.11) never beats the per-pass
/// bound (each pass's longest chain of runs on a subarray, its work over the subarrays,
/// its commands at the issue rate, its moves at the bus width). On one chip the timeline is
/// one chip's, so the bound holds in full.
#[test]
fn the_timeline_meets_the_pass_bounds() {
    let (hw, plans) = every_op_plans();
    let mut priced = 0;
    for p in &plans {
        for (layout, costs) in &p.options {
            let t = timeline::layer_cycles(costs, &hw);
            let b = pass_bounds(costs, &hw);
            assert!(t >= b, "{} {layout:?}: timeline {t} < bound {b}", p.name);
            priced += 1;
        }
    }
    assert!(priced > 2 * plans.len(), "{priced} candidates");
}

/// A candidate's [`layer::StreamSums`], of every layout the search prices on a network with
/// each mapped op, equal their stream-by-stream definitions: each pass's longest chain of
/// runs on one subarray as the running maximum of its chains' running sums, its work,
/// commands, moves and subarrays, and the deployment commands, busy subarray-cycles and
/// resident bits.
#[test]
fn stream_sums_match_their_definitions() {
    let (hw, plans) = every_op_plans();
    let per = hw.lanes();
    let mut chained = 0;
    for p in &plans {
        for (layout, costs) in &p.options {
            let mut passes: Vec<[u64; 5]> = Vec::new();
            let mut chains = std::collections::BTreeMap::new();
            for c in costs.iter() {
                let k = c.repeat;
                if passes.len() <= c.pass {
                    passes.resize(c.pass + 1, [0; 5]);
                }
                let q = &mut passes[c.pass];
                if c.place.wave_lanes > 0 {
                    let block = c.place.lanes.start % c.place.wave_lanes / per;
                    let chain = chains.entry((c.pass, c.place.program, block)).or_insert(0);
                    *chain += c.cycles_per_run * k;
                    q[0] = q[0].max(*chain);
                    chained += 1;
                } else {
                    q[0] = q[0].max(c.cycles_per_run);
                }
                q[1] += c.cycles_per_run * c.runs * k;
                q[2] += c.commands * k;
                q[3] += c.loaded_bits * k;
                q[4] += if c.new_subarrays { c.runs * k } else { 0 };
            }
            let sums = layer::stream_sums(costs, per);
            let total = |f: &dyn Fn(&StreamCost) -> u64| -> u64 {
                costs.iter().map(|c| f(c) * c.repeat).sum()
            };
            let at = format!("{} {layout:?}", p.name);
            assert_eq!(sums.passes, passes, "{at}");
            assert_eq!(sums.d_commands, total(&|c| c.deploy.commands), "{at}");
            assert_eq!(sums.busy, total(&|c| c.runs * c.cycles_per_run), "{at}");
            assert_eq!(sums.resident_bits, layer::resident_bits(costs), "{at}");
        }
    }
    assert!(chained > 0, "no layout with copies chains its waves");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The per-layer helpers that sum or mask a row range in one pass (the interval of a
    /// slice's partial sum, also as the layer's table keeps it, the weight-bit masks of a
    /// channel set) equal their term-by-term definitions, on 4-, 8- and 12-bit and
    /// binarized layers (weights read as bytes, with their blocks' running sums or slice by
    /// slice for narrow slices, and as i64 where they do not fit in one), for any channel
    /// set (every channel too), slice width and range.
    #[test]
    fn row_range_helpers_match_their_definitions(
        seed in any::<u64>(), binary in any::<bool>(), first in 0usize..16, n in 1usize..8,
        width in 1usize..80, bits in prop::sample::select(vec![4u32, 8, 12]),
        at in 0usize..144, len in 0usize..144,
    ) {
        let (prog, c2) = c2_program(seed, bits, binary);
        let l = linear::Linear::at(&prog, c2).unwrap();
        let red = l.reduction();
        let ranges = linear::chunks(red, width.min(red));
        let tables = linear::partial_table(&l, &ranges);
        let channels: Vec<usize> = (first..(first + n).min(l.channels())).collect();
        prop_assume!(!channels.is_empty());
        let (xl, xh) = l.x_centred();
        let a0 = l.x_centred_offset();
        // A slice's partial-sum interval, term by term.
        let partial = |c: usize, r: std::ops::Range<usize>| {
            if l.xnor() {
                return (0, 2 * r.len() as i128);
            }
            let (mut lo, mut hi) = (0i128, 0i128);
            for &w in &l.row(c)[r] {
                let (u, v) = ((xl - a0) * i128::from(w), (xh - a0) * i128::from(w));
                lo += u.min(v);
                hi += u.max(v);
            }
            (lo, hi)
        };
        for &c in &channels {
            // The accumulator's interval, bias included, over the input's whole range.
            let (xl0, xh0) = l.x_centred();
            let (mut lo, mut hi) = (i128::from(l.bias[c]), i128::from(l.bias[c]));
            for &w in l.row(c) {
                let (u, v) = (xl0 * i128::from(w), xh0 * i128::from(w));
                lo += u.min(v);
                hi += u.max(v);
            }
            prop_assert_eq!(l.acc_interval(c), (lo, hi));
            let table = l.partial_intervals(c, &ranges);
            for (k, (r, &got)) in ranges.iter().zip(&table).enumerate() {
                let want = partial(c, r.clone());
                prop_assert_eq!((i128::from(got.0), i128::from(got.1)), want);
                prop_assert_eq!(l.partial_interval(c, r.clone()), want);
                // The layer's table, whichever way it keeps its entries.
                let kept = tables.at(c, k);
                prop_assert_eq!((i128::from(kept.0), i128::from(kept.1)), want);
            }
            // Any range, however it meets the blocks of the bytes' running sums.
            let r = at.min(red)..(at + len).min(red);
            prop_assert_eq!(l.partial_interval(c, r.clone()), partial(c, r));
        }
        // The table's unions: slice by slice over the channel set (a reducer's), and of
        // each channel's slices (a partial-sum program's accumulator).
        let want: Vec<(i128, i128)> = ranges
            .iter()
            .map(|r| linear::union(channels.iter().map(|&c| partial(c, r.clone()))))
            .collect();
        prop_assert_eq!(tables.slice_unions(&channels), want);
        for &c in &channels {
            let (lo, hi) = tables.channel_union(c);
            let want = linear::union(ranges.iter().map(|r| partial(c, r.clone())));
            prop_assert_eq!((i128::from(lo), i128::from(hi)), want);
        }
        // A channel set, and every channel (a shared program's, whose masks come from
        // the masks of every reduction position over all the rows).
        let every: Vec<usize> = (0..l.channels()).collect();
        for channels in [&channels, &every] {
            let lives = l.live_masks(channels, &ranges);
            prop_assert_eq!(lives.len(), ranges[0].len());
            for (j, live) in lives.iter().enumerate() {
                let bits: Vec<u64> = channels
                    .iter()
                    .flat_map(|&c| ranges.iter().map(move |r| (c, r)))
                    .map(|(c, r)| if r.start + j < r.end { l.weight_coding().encode(i64::from(l.row(c)[r.start + j])) } else { 0 })
                    .collect();
                prop_assert_eq!(live.any, bits.iter().fold(0, |a, &b| a | b));
                prop_assert_eq!(live.all, bits.iter().fold(u64::MAX, |a, &b| a & b));
            }
        }
    }
}

/// The programs the search's shortcuts are tested on: ResNet-8, the every-op network and a
/// stem of two convolutions (`channels` each) on `side`×`side` images (at 128×128 with 64
/// channels, its many positions make `const` its choice).
fn search_programs(side: usize, channels: usize) -> [golden::Program; 3] {
    let mut stem = Network::new("stem", Shape::new(3, side, side));
    stem.then("c1", conv(channels, 7, 2, 3, 1, true));
    stem.then("r1", NetOp::Relu);
    stem.then("c2", conv(channels, 3, 1, 1, 1, true));
    let m = cram_workloads::compress::synthetic_model(&stem, &spec(None), 3, 2).unwrap();
    [
        zoo_program("resnet8", &spec(None), 5),
        every_op_program(3, 3, true, (4, 4, false), 0.5, 7),
        golden::Program::compile(&m.net, &m.weights, m.quant.as_ref().unwrap()).unwrap(),
    ]
}

/// A run's own search (energy objective) leaves out the reloading layouts
/// whose first programs already spend more than the best other reloading layout scores
/// (`fitting_within`); it must choose exactly what the whole search chooses. On ResNet-8,
/// the every-op network and a stem that chooses `const`, on cram-1k with and without leakage and on a chip too small
/// for every layer's resident weights (so that residency is shared out greedily), for 1 and
/// 3 images: the chosen runs are identical, and ResNet-8 has layouts left out.
#[test]
fn layouts_left_out_by_the_bound_are_never_chosen() {
    let mut left_out = [0usize; 2];
    // A stem on 128×128 images, whose many positions make `const` the choice: its
    // channel sets are costed in several batches, each checked against the bound.
    let progs = search_programs(128, 64);
    let opts = analytical(Choice::auto(Objective::Energy));
    let small = hw_with(|org| {
        org.banks = 1;
        org.subarrays_per_bank = 2;
    });
    for prog in &progs {
        for hw in [hw(), no_leakage(hw()), small.clone()] {
            for n in [1, 3] {
                let imgs = images(prog, n, 2);
                let whole = plan_layers(prog, &imgs, &hw, &opts, None, false).unwrap();
                let bounded = plan_network(prog, &imgs, &hw, &opts, None).unwrap();
                let count = |p: &[LayerPlan]| p.iter().map(|l| l.options.len()).sum::<usize>();
                let name = &prog.network().name;
                assert!(count(&bounded) <= count(&whole), "{name}");
                left_out[usize::from(name != "resnet8")] += count(&whole) - count(&bounded);
                let a = choose(prog, &whole, &hw, &opts, n).unwrap();
                let b = choose(prog, &bounded, &hw, &opts, n).unwrap();
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{name} {n} images");
            }
        }
    }
    assert!(left_out[0] > 0, "ResNet-8: nothing left out ({left_out:?})");
}

/// The choice leaves unrun the timelines of candidates whose floor (score without the
/// leakage) exceeds another candidate's score; it must choose and report exactly what
/// running every timeline does. On ResNet-8, the every-op network and a small stem, on
/// cram-1k with no leakage, its own and a thousand times it, and on a chip too small for
/// every layer's resident weights (where every score is needed), for 1 and 3 images,
/// under each objective: the runs are identical, and some timelines are left unrun.
#[test]
fn timelines_left_unrun_never_change_the_choice() {
    let progs = search_programs(64, 32);
    let small = hw_with(|org| {
        org.banks = 1;
        org.subarrays_per_bank = 2;
    });
    // A thousand times the leakage, so that the candidate with the lowest floor is often
    // not the one with the lowest score.
    let mut leaky = hw();
    leaky.org.periphery.leakage_nw_per_sense_amp *= 1000.0;
    leaky.org.periphery.leakage_nw_per_row *= 1000.0;
    let (mut unrun, mut over) = (0, 0);
    for prog in &progs {
        for (hw, fits) in [
            (hw(), true),
            (no_leakage(hw()), true),
            (leaky.clone(), true),
            (small.clone(), false),
        ] {
            for objective in [Objective::Energy, Objective::Latency, Objective::Edp] {
                let opts = analytical(Choice::auto(objective));
                for n in [1, 3] {
                    let imgs = images(prog, n, 2);
                    let plans = plan_layers(prog, &imgs, &hw, &opts, None, false).unwrap();
                    let (a, skipped) = choose_with(prog, &plans, &hw, &opts, n, true).unwrap();
                    let (b, none) = choose_with(prog, &plans, &hw, &opts, n, false).unwrap();
                    let name = &prog.network().name;
                    assert_eq!(
                        format!("{a:?}"),
                        format!("{b:?}"),
                        "{name} {objective:?} {n}"
                    );
                    assert_eq!(none, 0);
                    if objective != Objective::Energy {
                        assert_eq!(skipped, 0, "only the energy objective has a floor");
                    }
                    let r = &a.residency;
                    if fits {
                        unrun += skipped;
                    } else if r.wanted_bits > r.held_bits {
                        // The first picks did not fit: every timeline was run.
                        assert_eq!(skipped, 0, "{name} {objective:?} {n}");
                        over += 1;
                    }
                }
            }
        }
    }
    assert!(unrun > 0, "no timeline left unrun");
    assert!(over > 0, "the small chip never needed every score");
}

/// A sweep's points share what each left out (`PlanCache`): a later point judges a left-out
/// layout again at its own prices and costs it whole when it may win there. On ResNet-8 and
/// points whose prices rank the layouts apart (a chip too small for every layer's resident
/// weights, with and without leakage, with dearer cell writes, with dearer buses), in
/// either order, every point keeps at least the layouts its own search keeps, and chooses
/// and reports what its own run does. Dearer writes choose `const` in layers where dearer
/// buses leave it out, so the judging again and the plans kept per price are tested.
#[test]
fn a_sweep_judges_left_out_layouts_again_at_each_points_prices() {
    let prog = zoo_program("resnet8", &spec(None), 5);
    let opts = analytical(Choice::auto(Objective::Energy));
    let imgs = images(&prog, 1, 2);
    let small = hw_with(|org| {
        org.banks = 1;
        org.subarrays_per_bank = 2;
    });
    let priced = |f: &dyn Fn(&mut crate::model::energy::EnergyTable)| {
        let mut hw = small.clone();
        f(&mut hw.table);
        hw
    };
    let points = [
        small.clone(),
        no_leakage(small.clone()),
        priced(&|t| t.cell_write_pj = t.cell_write_pj.map(|e| e * 40.0)),
        priced(&|t| t.moved_pj_per_bit = t.moved_pj_per_bit.map(|e| e * 40.0)),
    ];
    let kept = |plans: &[LayerPlan]| -> Vec<Vec<Option<Layout>>> {
        plans
            .iter()
            .map(|l| l.options.iter().map(|(lay, _)| *lay).collect())
            .collect()
    };
    let own: Vec<_> = points
        .iter()
        .map(|hw| plan_network(&prog, &imgs, hw, &opts, None).unwrap())
        .collect();
    let owns: Vec<_> = own.iter().map(|p| kept(p)).collect();
    // Some point chooses a layout another point leaves out.
    let chosen: Vec<Vec<Option<Layout>>> = points
        .iter()
        .zip(&own)
        .map(|(hw, plans)| {
            let run = choose(&prog, plans, hw, &opts, 1).unwrap();
            run.layers.iter().map(|l| l.layout).collect()
        })
        .collect();
    let apart = chosen.iter().any(|picks| {
        picks
            .iter()
            .enumerate()
            .any(|(i, pick)| pick.is_some() && owns.iter().any(|o| !o[i].contains(pick)))
    });
    assert!(apart, "no point chooses a layout another point leaves out");
    for reversed in [false, true] {
        let mut order: Vec<usize> = (0..points.len()).collect();
        if reversed {
            order.reverse();
        }
        let cache = PlanCache::default();
        for k in order {
            let hw = &points[k];
            let shared = plan_network(&prog, &imgs, hw, &opts, Some(&cache)).unwrap();
            for (i, (mine, all)) in owns[k].iter().zip(kept(&shared)).enumerate() {
                for lay in mine {
                    assert!(all.contains(lay), "point {k}, layer {i}: {lay:?} left out");
                }
            }
            let a = choose(&prog, &shared, hw, &opts, 1).unwrap();
            let b = choose(&prog, &own[k], hw, &opts, 1).unwrap();
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "point {k}");
            let swept = run_network_with(&prog, &imgs, hw, &opts, Some(&cache)).unwrap();
            let alone = run_network(&prog, &imgs, hw, &opts).unwrap();
            assert_eq!(format!("{swept:?}"), format!("{alone:?}"), "point {k}");
        }
    }
}

/// A sweep's subarray shapes share each layer's fitted programs (`LayerMemo`), which
/// depend on the columns but not on the lanes per subarray: on ResNet-8 and the every-op
/// network, points of 256 to 2,048 lanes and 512 or 1,024 columns, in either order, twice
/// over and with one cache for all (which keeps only the shapes used last,
/// `SHAPES_PER_THREAD`), each report what the point's own run reports.
#[test]
fn a_sweeps_subarray_shapes_share_programs_not_results() {
    let progs = [
        zoo_program("resnet8", &spec(None), 5),
        every_op_program(3, 3, true, (4, 4, false), 0.5, 7),
    ];
    let opts = analytical(Choice::auto(Objective::Energy));
    let mut points = Vec::new();
    for lanes in [256, 512, 2048] {
        for cols in [512, 1024] {
            points.push(hw_with(|org| {
                org.lanes_per_subarray = lanes;
                org.cols_per_subarray = cols;
            }));
        }
    }
    for prog in &progs {
        let imgs = images(prog, 1, 2);
        let alone: Vec<String> = points
            .iter()
            .map(|hw| format!("{:?}", run_network(prog, &imgs, hw, &opts).unwrap()))
            .collect();
        for reversed in [false, true] {
            let cache = PlanCache::default();
            let mut order: Vec<usize> = (0..points.len()).collect();
            if reversed {
                order.reverse();
            }
            // Twice: the cache keeps the shapes used last, so the second time round some
            // shapes are costed again.
            for &k in order.iter().chain(&order) {
                let swept = run_network_with(prog, &imgs, &points[k], &opts, Some(&cache));
                assert_eq!(format!("{:?}", swept.unwrap()), alone[k], "point {k}");
            }
        }
    }
}

/// Layer "c2" (16 channels, 3×3 over 16 inputs: a reduction of 144) of a small network with
/// synthetic weights of `seed` coded in `bits` bits, or binarized.
fn c2_program(seed: u64, bits: u32, binary: bool) -> (golden::Program, usize) {
    let mut net = Network::new("t", Shape::new(3, 6, 6));
    net.then("c1", conv(16, 3, 1, 1, 1, true));
    net.then("r1", NetOp::Relu);
    net.then("c2", conv(16, 3, 1, 1, 1, true));
    let mut sp = spec(None);
    sp.weights.bits = bits;
    if binary {
        sp.weights = BINARY_WEIGHTS;
        sp.binarize = Some(Binarize {
            weights: true,
            acts: true,
            ends: None,
        });
    }
    let w = synthetic_weights(&net, seed).unwrap();
    let (m, _) = compress(&net, &w, &sp, &synthetic_inputs(net.input_shape(), 2, seed)).unwrap();
    let prog = golden::Program::compile(&m.net, &m.weights, m.quant.as_ref().unwrap()).unwrap();
    let c2 = prog
        .network()
        .layers
        .iter()
        .position(|x| x.name == "c2")
        .unwrap();
    (prog, c2)
}

/// `l`'s reduction cut into `slices` slices, and their partial-sum table.
fn sliced(
    l: &linear::Linear<'_>,
    slices: usize,
) -> (Vec<std::ops::Range<usize>>, linear::PartialTable) {
    let red = l.reduction();
    let ranges = linear::chunks(red, red.div_ceil(slices));
    let table = linear::partial_table(l, &ranges);
    (ranges, table)
}

/// A counting stored job of `l` over `channels` (whole, or the partial sums of `slices`
/// slices), once tallying a chunk like the steady one before it and once reducing every
/// chunk: the jobs, and how many chunks the first tallied without reducing them.
fn both_counted(
    l: &linear::Linear<'_>,
    set: GateSet,
    channels: &[usize],
    (slices, resident): (usize, bool),
    chunk: usize,
) -> Option<(linear::Job, linear::Job, usize)> {
    let (ranges, table) = sliced(l, slices);
    let spec = linear::StoredSpec {
        channels,
        ranges: &ranges,
        partial: slices > 1,
        partials: &table,
        resident,
    };
    let reused = linear::stored_job_with(set, l, &spec, chunk, true, true, None);
    let plain = linear::stored_job_with(set, l, &spec, chunk, true, false, None);
    match (reused, plain) {
        (Ok((a, n)), Ok((b, none))) => {
            assert_eq!(none, 0);
            Some((a, b, n))
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            None
        }
        (a, b) => panic!("one failed: {:?} vs {:?}", a.map(|x| x.1), b.map(|x| x.1)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// A counting stored job that tallies a chunk like the steady chunk before it, without
    /// reducing it, comes out as the one that reduces every chunk (the same tally, column
    /// bound, segments, loads and outputs), and as its generated program counts: on 2-,
    /// 4- and 8-bit and binarized layers, every gate set, any channel set, chunk, slice
    /// count and residency.
    #[test]
    fn steady_chunks_tally_as_reduced_ones(
        seed in any::<u64>(), binary in any::<bool>(), first in 0usize..16, n in 1usize..17,
        chunk in 1usize..24, bits in prop::sample::select(vec![2u32, 4, 8]),
        set in prop::sample::select(GateSet::ALL.to_vec()), slices in 1usize..4,
        resident in any::<bool>(),
    ) {
        let (prog, c2) = c2_program(seed, bits, binary);
        let l = linear::Linear::at(&prog, c2).unwrap();
        let channels: Vec<usize> = (first..(first + n).min(l.channels())).collect();
        prop_assume!(!channels.is_empty());
        let Some((a, b, _)) = both_counted(&l, set, &channels, (slices, resident), chunk) else {
            return Ok(());
        };
        prop_assert_eq!(a.tally, b.tally);
        prop_assert_eq!(a.cols, b.cols);
        prop_assert_eq!(&a.segments, &b.segments);
        prop_assert_eq!(a.load_counts(), b.load_counts());
        prop_assert_eq!(a.loading_segments(), b.loading_segments());
        prop_assert_eq!(a.outputs.iter().map(Vec::len).collect::<Vec<_>>(),
            b.outputs.iter().map(Vec::len).collect::<Vec<_>>());
        prop_assert_eq!(a.out, b.out);
        // The generated program: the same tally, within the bound.
        let (ranges, table) = sliced(&l, slices);
        let spec = linear::StoredSpec {
            channels: &channels,
            ranges: &ranges,
            partial: slices > 1,
            partials: &table,
            resident,
        };
        let real = linear::stored_job(set, &l, &spec, chunk, false).unwrap();
        prop_assert_eq!(real.tally, a.tally);
        prop_assert!(real.program.cols() <= a.cols);
    }
}

/// [`fitted_within`] on `make` as given (free to cut a job short past the columns) and on
/// `make` told no bound (every job built whole): the fits, each as (chunk, tally, columns,
/// segments), or the error.
#[allow(clippy::type_complexity)]
fn fit_both(
    hw: &Hw,
    first: usize,
    mut make: impl FnMut(usize, Option<usize>) -> Result<linear::Job, crate::error::MapError>,
) -> [Result<(usize, crate::model::kernels::Tally, usize, usize), crate::error::MapError>; 2] {
    let short = fitted_within(hw, first, &mut make);
    let whole = fitted_within(hw, first, |c, _| make(c, None));
    [short, whole].map(|f| f.map(|(c, j)| (c, j.tally, j.cols, j.segments.len())))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// A search for the chunk that fits, whose counting jobs stop at the first chunk that
    /// takes more columns than the subarray has, finds the chunk and job (tally, column
    /// bound, segments) that building every job whole finds, or the same error: `stored`
    /// (whole or slices' partial sums, resident or not) and `const` programs on 2-, 4- and
    /// 8-bit and binarized layers, every gate set, subarrays of 128 to 1,024 columns and
    /// any first chunk.
    #[test]
    fn jobs_cut_short_fit_as_whole_ones(
        seed in any::<u64>(), binary in any::<bool>(), first in 0usize..16, n in 1usize..17,
        chunk in 1usize..145, bits in prop::sample::select(vec![2u32, 4, 8]),
        set in prop::sample::select(GateSet::ALL.to_vec()), slices in 1usize..4,
        resident in any::<bool>(), cols in prop::sample::select(vec![128u32, 256, 512, 1024]),
    ) {
        let (prog, c2) = c2_program(seed, bits, binary);
        let l = linear::Linear::at(&prog, c2).unwrap();
        let channels: Vec<usize> = (first..(first + n).min(l.channels())).collect();
        prop_assume!(!channels.is_empty());
        let hw = hw_with(|org| org.cols_per_subarray = cols);
        let (ranges, table) = sliced(&l, slices);
        let spec = linear::StoredSpec {
            channels: &channels,
            ranges: &ranges,
            partial: slices > 1,
            partials: &table,
            resident,
        };
        let [a, b] = fit_both(&hw, chunk, |c, w| {
            linear::stored_job_with(set, &l, &spec, c, true, true, w).map(|(job, _)| job)
        });
        prop_assert_eq!(a, b);
        let chs = channels[0]..channels[channels.len() - 1] + 1;
        let [a, b] = fit_both(&hw, chunk, |c, w| {
            linear::const_job_within(set, &l, chs.clone(), c, true, w)
        });
        prop_assert_eq!(a, b);
    }
}

/// A counting job past the columns stops after its first chunk: a search from a chunk of
/// every input on 1,024 columns gives up its first tries (`stored` and `const`) after one
/// segment each, and ends where the whole jobs' search ends.
#[test]
fn jobs_past_the_columns_stop_after_their_first_chunk() {
    let (prog, c2) = c2_program(5, 8, false);
    let l = linear::Linear::at(&prog, c2).unwrap();
    let hw = hw_with(|org| org.cols_per_subarray = 1024);
    let channels: Vec<usize> = (0..l.channels()).collect();
    let ranges = linear::chunks(l.reduction(), l.reduction());
    let table = linear::PartialTable::default();
    let spec = linear::StoredSpec {
        channels: &channels,
        ranges: &ranges,
        partial: false,
        partials: &table,
        resident: false,
    };
    let chs = 0..l.channels();
    for stored in [true, false] {
        let mut short = Vec::new();
        let make = |c: usize, w: Option<usize>| {
            if stored {
                linear::stored_job_with(GateSet::NandNot, &l, &spec, c, true, true, w)
                    .map(|(job, _)| job)
            } else {
                linear::const_job_within(GateSet::NandNot, &l, chs.clone(), c, true, w)
            }
        };
        let fit = fitted_within(&hw, l.reduction(), |c, w| {
            let job = make(c, w)?;
            if job.cols > hw.cols() {
                short.push(job.segments.len());
            }
            Ok(job)
        })
        .unwrap();
        // The given-up tries: the first chunk's segment and the closing one.
        assert!(!short.is_empty(), "stored {stored}: no try was too wide");
        assert!(short.iter().all(|&n| n == 2), "stored {stored}: {short:?}");
        let whole = fitted_within(&hw, l.reduction(), |c, _| make(c, None)).unwrap();
        assert_eq!(fit.0, whole.0);
        assert_eq!((fit.1.tally, fit.1.cols), (whole.1.tally, whole.1.cols));
    }
}

/// The shortcut is taken where it can be: every channel of a 2-bit layer has its low weight
/// bits set in some lane at every input, so chunks of equal length enter the heap alike,
/// and all but the first few (the constants' chunk, and those that add columns) are
/// tallied without being reduced.
#[test]
fn steady_chunks_are_tallied_without_a_reduction() {
    let (prog, c2) = c2_program(5, 2, false);
    let l = linear::Linear::at(&prog, c2).unwrap();
    let channels: Vec<usize> = (0..l.channels()).collect();
    let (a, b, reused) = both_counted(&l, GateSet::NandNot, &channels, (1, false), 4).unwrap();
    // 144 inputs in 36 chunks of 4.
    assert_eq!(a.segments.len(), 37);
    assert!(reused >= 30, "{reused} of 36 chunks tallied as steady");
    assert_eq!((a.tally, a.cols), (b.tally, b.cols));
}
