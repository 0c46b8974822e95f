//! Mapping compressed networks onto CRAM cell blocks, and running them layer by layer
//! (docs/model.md §2): the only place that sees both the architecture and the workload.
//!
//! [`run_network`] takes a compiled integer network (the golden executor's
//! `cram_workloads::golden::Program`, so both sides use one set of constants), places every
//! layer on subarrays and plans its CRAM programs ([`linear`], [`unary`], [`elem`]). The plan
//! of a Dense or Conv2d layer — its gate tally, reduction chunk and column bound — comes from
//! a counting builder in closed form, in both modes. Analytical mode prices the plan;
//! functional mode also generates each program, checks it against the plan and executes it
//! bit by bit, reading every layer's outputs back out of the simulated cells and feeding them
//! to the next layer. Each layer gets a [`LayerReport`]: placement, utilization, steps,
//! cycles and energy by component.
//!
//! Data movement is counted, not assumed free: before each segment of a job the runner
//! writes the lanes' operands (receptive-field inputs, pooling windows, addends, stored
//! weights) as partial row writes, each bit sensed at its source, carried over the global
//! bus and written into its cell (`Actions` fields `read_bits`, `moved_bits`, `write_bits`,
//! `bsl_write_cells`). ReLU, ReLU6 and Sign run in place on their producer's output columns;
//! Flatten and Softmax (the identity on codes) cost nothing.
//!
//! Layer latency is a bound-based schedule, not the cycle-by-cycle [`crate::model::timing`]
//! timeline: streams on disjoint subarrays overlap, so a layer takes the longest of its
//! longest stream, its total array work spread over the chip's subarrays, its controller
//! commands at the issue rate and its bus traffic at the bus width.
//!
//! Many images ([`run_waves`]) are mapped onto the chip together, and what the simulator
//! holds does not grow with their number: an analytical run prices equal lane blocks once
//! (`StreamCost::repeat`), and a functional run executes the images in waves of a fixed
//! activation budget ([`wave_size`]), checks and drops each wave's values, and reports
//! what one run of all the images reports.

pub mod arith;
pub mod elem;
pub mod linear;
pub mod place;
pub mod unary;

use std::ops::Range;

use cram_arch::{GateKind, GateLibrary, Org};
use cram_workloads::golden::{self, Step};
use ndarray::Array3;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use elem::Part;
pub use linear::Strategy;
use linear::{Job, Linear, Source};

use crate::error::Error;
use crate::model::bits::{load_lanes, store_lanes};
use crate::model::energy::{self, Actions, EnergyBreakdown, EnergyTable, Pricing, PulseModel};
use crate::model::engine::Counts;
use crate::model::engine::exec::{Faults, Subarray};
use crate::model::kernels::GateSet;
use crate::model::limits::{Limits, MemoryEstimate};
use crate::model::memo::Memo;
use crate::model::timing::{StepCycles, broadcast_cycles};

/// What the per-layer strategy choice minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Energy per inference.
    Energy,
    /// Latency.
    Latency,
    /// Energy × latency.
    Edp,
}

impl Objective {
    /// What the choice minimizes, from a layer's energy (pJ) and cycles.
    fn score(self, e_pj: f64, cycles: u64) -> f64 {
        match self {
            Objective::Energy => e_pj,
            Objective::Latency => cycles as f64,
            Objective::Edp => e_pj * cycles as f64,
        }
    }
}

/// How each layer's strategy is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Choice {
    /// By the cost model, per layer.
    Auto(Objective),
    /// The same strategy for every layer.
    Force(Strategy),
}

/// Functional (every bit executed) or analytical (counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Execute every gate in every lane.
    Functional,
    /// Count the same programs without executing them.
    Analytical,
}

/// The hardware a network is mapped onto.
#[derive(Debug, Clone)]
pub struct Hw {
    /// Gate library of the device.
    pub lib: GateLibrary,
    /// Chip organisation.
    pub org: Org,
    /// Gate set the programs are generated from.
    pub set: GateSet,
    /// Energy prices.
    pub table: EnergyTable,
    /// Step latencies.
    pub steps: StepCycles,
    /// Mean input-zero split per gate kind (analytical pricing), see [`gate_fractions`].
    fractions: [[f64; 6]; GateKind::COUNT],
}

impl Hw {
    /// Derives prices and step latencies.
    pub fn new(lib: GateLibrary, org: Org, set: GateSet) -> Hw {
        let table = EnergyTable::derive(&lib, &org);
        let steps = StepCycles::derive(&lib.device, &org);
        Hw {
            lib,
            org,
            set,
            table,
            steps,
            fractions: gate_fractions(set),
        }
    }

    fn lanes(&self) -> usize {
        self.org.params.lanes_per_subarray as usize
    }

    fn cols(&self) -> usize {
        self.org.params.cols_per_subarray as usize
    }
}

/// Options of a network run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Functional or analytical.
    pub mode: Mode,
    /// Strategy choice.
    pub choice: Choice,
    /// Gate-output error probability (functional mode), the same for every gate.
    pub error_rate: f64,
    /// Seed of the fault streams.
    pub seed: u64,
    /// When to stop, and the memory limit of functional runs.
    pub limits: Limits,
}

/// Cost and placement of one layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Strategy (weighted layers).
    pub strategy: Option<Strategy>,
    /// Independent op streams (programs).
    pub streams: u64,
    /// Subarray runs (one stream on one subarray).
    pub subarray_runs: u64,
    /// Largest number of subarrays busy at once.
    pub subarrays: u64,
    /// Lanes holding work, over all subarray runs.
    pub lanes_used: u64,
    /// lanes_used / (subarray_runs × lanes per subarray).
    pub lane_utilization: f64,
    /// Largest column count of a program / columns per subarray.
    pub column_utilization: f64,
    /// Gate steps over all streams.
    pub gate_steps: u64,
    /// Σ over gate steps of the lanes they ran in.
    pub lane_gate_evals: u64,
    /// Bits written into lanes before segments (inputs and stored weights).
    pub loaded_bits: u64,
    /// Cycles (bound-based schedule, see the module doc).
    pub cycles: u64,
    /// Energy by component (data-dependent in functional mode, mean in analytical mode).
    pub energy: EnergyBreakdown,
    /// Gate-output flips injected (functional mode with faults).
    pub flips: u64,
    /// Copies the generated programs made so that no gate reads a cell twice (functional
    /// mode only: the analytical closed form cannot see them, so it is short by these).
    pub shared_copies: u64,
}

/// A network run.
#[derive(Debug, Clone)]
pub struct NetRun {
    /// One report per layer.
    pub layers: Vec<LayerReport>,
    /// Final layer's codes per image (functional mode; empty otherwise).
    pub outputs: Vec<Array3<i64>>,
}

impl NetRun {
    /// Σ of the layers' energy, pJ.
    pub fn energy_pj(&self) -> f64 {
        self.layers.iter().map(|l| l.energy.total_pj()).sum()
    }

    /// Σ of the layers' cycles (layers run one after another).
    pub fn cycles(&self) -> u64 {
        self.layers.iter().map(|l| l.cycles).sum()
    }
}

/// Most memory one functional wave of images may hold (activations of its images): a
/// fixed budget, not `--max-memory`, so that the waves, and with them every number a run
/// reports, do not depend on the machine.
pub const WAVE_BYTES: u64 = 256 << 20;

/// Images per functional wave: as many as [`WAVE_BYTES`] of activations hold (at least 1).
pub fn wave_size(prog: &golden::Program) -> usize {
    let per_image = activation_bytes(prog, 1).max(1);
    usize::try_from((WAVE_BYTES / per_image).max(1)).unwrap_or(usize::MAX)
}

/// The activations a functional run of `images` images holds at its peak: every layer's
/// output codes (8 bytes each) plus the layer being run's results (24 bytes per value).
fn activation_bytes(prog: &golden::Program, images: usize) -> u64 {
    let net = prog.network();
    let outs: Vec<u64> = net
        .stats()
        .map(|s| s.iter().map(|l| l.out.len() as u64).collect())
        .unwrap_or_default();
    let input = net.input_shape().len() as u64;
    let largest = outs.iter().copied().max().unwrap_or(0);
    let n = images as u64;
    (input + outs.iter().sum::<u64>()) * n * 8 + largest * n * 24
}

/// A wave's input codes, by image range.
pub type WaveImages<'a> = dyn FnMut(Range<usize>) -> Result<Vec<Array3<i64>>, Error> + 'a;
/// What sees each functional wave: its image range, input codes and run.
pub type WaveVisit<'a> = dyn FnMut(Range<usize>, &[Array3<i64>], &NetRun) -> Result<(), Error> + 'a;

/// Runs `n` images on the chip at once (outputs are not kept). Analytical: counted, in
/// memory that does not grow with `n` (equal lane blocks are priced once). Functional: the
/// images are executed in waves of `wave` ([`wave_size`]), each handed to `visit` (to check
/// it against the golden executor) and dropped, so memory is one wave's whatever `n`. With
/// one wave, that run is the result. With more, the chip's work is still all `n` images at
/// once: the placement, counts, cycles and energy are those of all `n` images priced with
/// the generated programs (as execution prices them), and the logic pulses' data-dependent
/// energy and the injected flips are the waves' measured sums.
#[allow(clippy::too_many_arguments)]
pub fn run_waves(
    prog: &golden::Program,
    n: usize,
    wave: usize,
    hw: &Hw,
    opts: &RunOptions,
    cache: Option<&PlanCache>,
    images: &mut WaveImages<'_>,
    visit: &mut WaveVisit<'_>,
) -> Result<NetRun, Error> {
    let dummies = |k: usize| vec![Array3::zeros((1, 1, 1)); k];
    if opts.mode == Mode::Analytical {
        return run_network_with(prog, &dummies(n), hw, opts, cache);
    }
    let wave = wave.clamp(1, n.max(1));
    if n <= wave {
        let imgs = images(0..n)?;
        let run = run_network(prog, &imgs, hw, opts)?;
        visit(0..n, &imgs, &run)?;
        return Ok(run);
    }
    // The strategies are chosen for all the images at once; every wave runs them.
    // All `n` images counted at once, every layer priced by its generated programs (their
    // own tallies, copies included) instead of the closed form.
    let counted = RunOptions {
        mode: Mode::Analytical,
        ..*opts
    };
    let mut priced = run_layers(prog, &dummies(n), hw, &counted, None, true)?;
    let strategies: Vec<Option<Strategy>> = priced.layers.iter().map(|l| l.strategy).collect();
    let mut pulses = vec![0.0f64; priced.layers.len()];
    let mut flips = vec![0u64; pulses.len()];
    let mut start = 0;
    while start < n {
        let range = start..(start + wave).min(n);
        let imgs = images(range.clone())?;
        // Each wave draws its own faults (the streams are numbered within a wave).
        let wave_opts = RunOptions {
            seed: opts
                .seed
                .wrapping_add((start as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            ..*opts
        };
        let run = run_layers(prog, &imgs, hw, &wave_opts, Some(&strategies), false)?;
        visit(range.clone(), &imgs, &run)?;
        for (i, l) in run.layers.iter().enumerate() {
            pulses[i] += l.energy.logic_pulses_pj;
            flips[i] += l.flips;
        }
        start = range.end;
    }
    for (i, l) in priced.layers.iter_mut().enumerate() {
        l.energy.logic_pulses_pj = pulses[i];
        l.flips = flips[i];
    }
    Ok(priced)
}

/// Checks that an analytical run `a` agrees with a functional run `f` of the same network,
/// images and options: every layer's streams, subarray runs, lanes, gate steps, lane-gate
/// evaluations, loaded bits, cycles and column utilization are equal, and so are the
/// preset and bus energies (the rest differs only through the pulses' data-dependent zero
/// split). A layer whose functional programs had to copy a column read twice by one gate
/// is the exception the closed form cannot see: there the analytical run must be short
/// (fewer steps and evaluations). Returns how many such layers there were; the error names
/// the first layer that disagrees.
pub fn analytical_matches(f: &NetRun, a: &NetRun) -> Result<usize, String> {
    if f.layers.len() != a.layers.len() {
        return Err(format!(
            "{} functional layers vs {} analytical",
            f.layers.len(),
            a.layers.len()
        ));
    }
    let mut with_copies = 0;
    for (lf, la) in f.layers.iter().zip(&a.layers) {
        if la.shared_copies != 0 {
            return Err(format!("layer {}: the closed form counted copies", la.name));
        }
        if lf.shared_copies > 0 {
            if !(lf.gate_steps > la.gate_steps && lf.lane_gate_evals > la.lane_gate_evals) {
                return Err(format!(
                    "layer {}: {} copies, yet {} vs {} steps",
                    lf.name, lf.shared_copies, lf.gate_steps, la.gate_steps
                ));
            }
            with_copies += 1;
            continue;
        }
        let key = |l: &LayerReport| {
            (
                l.streams,
                l.subarray_runs,
                l.lanes_used,
                l.gate_steps,
                l.lane_gate_evals,
                l.loaded_bits,
                l.cycles,
                l.column_utilization,
            )
        };
        if key(lf) != key(la) {
            return Err(format!(
                "layer {}: functional (streams, runs, lanes, steps, evals, loaded bits, cycles, \
                 column use) {:?} vs analytical {:?}",
                lf.name,
                key(lf),
                key(la)
            ));
        }
        let (ef, ea) = (&lf.energy, &la.energy);
        if ef.presets_pj != ea.presets_pj || ef.bus_pj != ea.bus_pj {
            return Err(format!(
                "layer {}: preset/bus energy {} / {} pJ functional vs {} / {} pJ analytical",
                lf.name, ef.presets_pj, ef.bus_pj, ea.presets_pj, ea.bus_pj
            ));
        }
    }
    Ok(with_copies)
}

/// Refuses a functional run whose [`functional_memory`] estimate for one wave of its images
/// ([`wave_size`]) exceeds `--max-memory` (`guard`); the estimate comes from an analytical
/// run of the same work (through `cache`). Analytical runs pass here (their memory does not
/// grow with the images; the network itself is checked when it is compiled).
pub fn check_memory(
    prog: &golden::Program,
    images: usize,
    hw: &Hw,
    opts: &RunOptions,
    cache: Option<&PlanCache>,
) -> Result<(), Error> {
    if opts.mode != Mode::Functional {
        return Ok(());
    }
    let wave = images.min(wave_size(prog));
    let counted = RunOptions {
        mode: Mode::Analytical,
        ..*opts
    };
    let dummies = vec![Array3::zeros((1, 1, 1)); wave];
    let planned = run_network_with(prog, &dummies, hw, &counted, cache)?;
    let what = if wave < images {
        format!(
            "{} on {images} image(s), {wave} at a time",
            prog.network().name
        )
    } else {
        format!("{} on {images} image(s)", prog.network().name)
    };
    functional_memory(prog, wave, hw, &planned).check(&what, opts.limits.memory)
}

/// The memory a functional run of `prog` on `images` images would hold at its peak,
/// estimated from an analytical run of the same work (`planned`): every layer's output
/// codes are kept (8 bytes each) for the layers that read them, the layer being run holds
/// its results (24 bytes per value) and, at most, every generated program of the layer (one
/// [`crate::model::engine::isa::Op`] per gate step), and each worker thread simulates one
/// subarray's cells. The README compares it with measured peak RSS ("Bad input, memory and
/// Ctrl-C").
pub fn functional_memory(
    prog: &golden::Program,
    images: usize,
    hw: &Hw,
    planned: &NetRun,
) -> MemoryEstimate {
    let op = std::mem::size_of::<crate::model::engine::isa::Op>() as u64;
    let threads = rayon::current_num_threads() as u64;
    // Every program of the layer, as if all were held at once (an upper bound).
    let steps = planned
        .layers
        .iter()
        .map(|l| l.gate_steps)
        .max()
        .unwrap_or(0);
    MemoryEstimate {
        activations_bytes: activation_bytes(prog, images),
        programs_bytes: steps.saturating_mul(op),
        cells_bytes: threads * (hw.lanes() * hw.cols()).div_ceil(8) as u64,
        advice: "run with --mode analytical, fewer images, or a larger --max-memory",
        ..Default::default()
    }
}

/// One stream's cost: a program run on some subarrays.
#[derive(Debug, Clone, Default)]
struct StreamCost {
    counts: Counts,
    actions: Actions,
    runs: u64,
    lanes: u64,
    cycles_per_run: u64,
    /// Partial row writes per run (loads), priced at the device's write latency.
    load_writes: u64,
    commands: u64,
    loaded_bits: u64,
    cols: usize,
    flips: u64,
    shared_copies: u64,
    place: Place,
    /// How many consecutive lane blocks this cost stands for (analytical mode prices equal
    /// blocks once; `place.lanes` is the first, the others follow it).
    repeat: u64,
}

/// Where a stream ran: which program (channel set, stored group or element-wise part) on
/// which lanes of the layer's lane order, for `cramulator map`.
#[derive(Debug, Clone, Default)]
struct Place {
    /// Index of the program within the layer.
    program: usize,
    /// Output channels the program computes.
    channels: Range<usize>,
    /// The run's lanes in the layer's lane order (see [`place::lane_order`]).
    lanes: Range<usize>,
    /// Reduction inputs per segment (0 for programs without a chunked reduction).
    chunk: usize,
}

/// Runs (functional) or counts (analytical) `prog` on `images` (input codes; one per image,
/// also in analytical mode, where only their number matters).
pub fn run_network(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
) -> Result<NetRun, Error> {
    run_layers(prog, images, hw, opts, None, false)
}

/// [`run_network`], with each weighted layer's strategy forced to `strategies[i]` when
/// given (a functional wave runs the strategies chosen for all the images); `realize`
/// (analytical) prices each layer with its generated programs ([`layer_costs`]).
fn run_layers(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
    strategies: Option<&[Option<Strategy>]>,
    realize: bool,
) -> Result<NetRun, Error> {
    let net = prog.network();
    let functional = opts.mode == Mode::Functional;
    let mut outs: Vec<Vec<Array3<i64>>> = Vec::with_capacity(net.layers.len());
    let mut reports = Vec::with_capacity(net.layers.len());
    for (i, layer) in net.layers.iter().enumerate() {
        opts.limits.stop.check()?;
        let forced = strategies.and_then(|s| s[i]).map(|s| RunOptions {
            choice: Choice::Force(s),
            ..*opts
        });
        let layer_opts = forced.as_ref().unwrap_or(opts);
        let (costs, strategy, y) =
            layer_costs(prog, i, images, &outs, hw, layer_opts, realize, None)
                .map_err(|why| layer_error(prog, i, why))?;
        reports.push(report(
            layer.name.clone(),
            layer.op.name(),
            strategy,
            &costs,
            hw,
        ));
        outs.push(y);
    }
    let outputs = if functional {
        outs.pop().unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(NetRun {
        layers: reports,
        outputs,
    })
}

/// Analytical plans of networks, shared by the points of a sweep: a layer's streams (gate
/// counts, actions, placement) depend on the program, the gate set, the organisation and
/// the strategy choice, not on the device, whose prices and step latencies are applied per
/// point ([`run_network_with`]).
#[derive(Debug, Default)]
pub struct PlanCache(Memo<String, Vec<LayerPlan>>);

/// One layer's candidate stream sets: one, or both strategies when the choice is the cost
/// model's.
#[derive(Debug)]
pub struct LayerPlan {
    name: String,
    op: &'static str,
    options: Vec<(Option<Strategy>, Vec<StreamCost>)>,
}

/// [`run_network`] in analytical mode with the layer plans taken from `cache` when an
/// earlier run had the same program, gate set, organisation, choice and image count; then
/// priced on this `hw`'s device. Gives the same report as [`run_network`] (tested).
/// Functional runs, or no cache, go straight to [`run_network`].
pub fn run_network_with(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
    cache: Option<&PlanCache>,
) -> Result<NetRun, Error> {
    let Some(cache) = cache.filter(|_| opts.mode == Mode::Analytical) else {
        return run_network(prog, images, hw, opts);
    };
    let key = format!(
        "{:p}|{:?}|{:?}|{:?}|{}",
        prog as *const golden::Program,
        hw.set,
        hw.org.params,
        opts.choice,
        images.len()
    );
    let plans = cache
        .0
        .get_or_build(key, || {
            plan_network(prog, images, hw, opts).map_err(|e| e.to_string())
        })
        .map_err(Error::usage)?;
    let layers = plans
        .iter()
        .map(|p| {
            let mut options: Vec<(Option<Strategy>, Vec<StreamCost>, f64)> = p
                .options
                .iter()
                .map(|(s, costs)| {
                    let mut costs = costs.clone();
                    reprice(&mut costs, hw);
                    let score = match opts.choice {
                        Choice::Auto(obj) => {
                            let (e, t) = totals(&costs, hw);
                            obj.score(e, t)
                        }
                        Choice::Force(_) => 0.0,
                    };
                    (*s, costs, score)
                })
                .collect();
            // The first of the cheapest, as `layer_costs` chooses.
            let best =
                (1..options.len()).fold(0, |b, k| if options[k].2 < options[b].2 { k } else { b });
            let (strategy, costs, _) = options.swap_remove(best);
            report(p.name.clone(), p.op, strategy, &costs, hw)
        })
        .collect();
    Ok(NetRun {
        layers,
        outputs: Vec::new(),
    })
}

/// Every layer's candidate streams (analytical).
fn plan_network(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
) -> Result<Vec<LayerPlan>, Error> {
    let net = prog.network();
    let n_img = images.len();
    let mut out = Vec::with_capacity(net.layers.len());
    for (i, layer) in net.layers.iter().enumerate() {
        let step = prog.step(i);
        let options = match (step, opts.choice) {
            (Step::Linear { .. }, Choice::Auto(_)) => {
                let l = Linear::at(prog, i).expect("a linear step");
                Strategy::ALL
                    .into_iter()
                    .map(|s| {
                        linear_layer(&l, s, hw, n_img, None, false, opts, i).map(|o| (Some(s), o.0))
                    })
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|why| layer_error(prog, i, why))?
            }
            _ => {
                let (costs, strategy, _) = layer_costs(prog, i, images, &[], hw, opts, false, None)
                    .map_err(|why| layer_error(prog, i, why))?;
                vec![(strategy, costs)]
            }
        };
        out.push(LayerPlan {
            name: layer.name.clone(),
            op: layer.op.name(),
            options,
        });
    }
    Ok(out)
}

/// Sets the streams' cycles from this device's step latencies (the only device-dependent
/// part of a stream's cost besides the prices `report` applies).
fn reprice(costs: &mut [StreamCost], hw: &Hw) {
    for c in costs {
        c.cycles_per_run =
            broadcast_cycles(&c.counts, &hw.steps) + c.load_writes * hw.steps.write_row;
    }
}

/// A layer's costs, strategy and (functional mode) output codes; `candidates` collects
/// both strategies' (energy pJ, cycles) when the cost model chooses. `realize` (analytical
/// mode) prices the chosen streams with their generated programs, as a functional run does.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
fn layer_costs(
    prog: &golden::Program,
    i: usize,
    images: &[Array3<i64>],
    outs: &[Vec<Array3<i64>>],
    hw: &Hw,
    opts: &RunOptions,
    realize: bool,
    mut candidates: Option<&mut Vec<(Strategy, f64, u64)>>,
) -> Result<(Vec<StreamCost>, Option<Strategy>, Vec<Array3<i64>>), String> {
    let layer = &prog.network().layers[i];
    let shape = prog.shape(i);
    let n_img = images.len();
    let functional = opts.mode == Mode::Functional;
    let input = |k: usize| layer.inputs.get(k).copied().unwrap_or(0);
    let (costs, strategy, y): (Vec<StreamCost>, Option<Strategy>, Vec<Array3<i64>>) =
        match prog.step(i) {
            Step::Input => (Vec::new(), None, images.to_vec()),
            Step::Pass => {
                let y = if functional {
                    outs[input(0)]
                        .iter()
                        .map(|x: &Array3<i64>| {
                            Array3::from_shape_vec(
                                (shape.c, shape.h, shape.w),
                                x.iter().copied().collect(),
                            )
                            .expect("same element count")
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (Vec::new(), None, y)
            }
            Step::Linear { .. } => {
                let j = input(0);
                let l = Linear::at(prog, i).expect("a linear step");
                let x = functional.then(|| outs[j].as_slice());
                let (strategy, (c, y)) = match opts.choice {
                    Choice::Force(s) => (s, linear_layer(&l, s, hw, n_img, x, realize, opts, i)?),
                    Choice::Auto(obj) => {
                        // Both strategies costed in closed form; the cheaper one runs.
                        let mut best: Option<(f64, Strategy, LayerOut)> = None;
                        for s in Strategy::ALL {
                            let out = linear_layer(&l, s, hw, n_img, None, false, opts, i)?;
                            let (e, t) = totals(&out.0, hw);
                            if let Some(c) = candidates.as_mut() {
                                c.push((s, e, t));
                            }
                            let score = obj.score(e, t);
                            if best.as_ref().is_none_or(|b| score < b.0) {
                                best = Some((score, s, out));
                            }
                        }
                        let (_, s, out) = best.expect("two strategies");
                        if x.is_some() || realize {
                            (s, linear_layer(&l, s, hw, n_img, x, realize, opts, i)?)
                        } else {
                            (s, out)
                        }
                    }
                };
                (c, Some(strategy), y)
            }
            _ => {
                let (parts, charge) = elem::parts(prog, i, hw)?;
                let g = functional.then(|| elem::gather(prog, i, outs));
                let (c, y) = elem_layer(
                    &parts,
                    hw,
                    n_img,
                    shape,
                    (g.as_deref(), realize),
                    opts,
                    i,
                    charge,
                );
                (c, None, y)
            }
        };
    Ok((costs, strategy, y))
}

/// A layer's mapping error, naming the network, the layer and its op.
fn layer_error(prog: &golden::Program, i: usize, why: String) -> Error {
    let net = prog.network();
    let layer = &net.layers[i];
    Error::usage(format!(
        "network '{}', layer '{}' ({}): {why}",
        net.name,
        layer.name,
        layer.op.name()
    ))
}

/// Energy (pJ) and cycles of a layer's streams.
fn totals(costs: &[StreamCost], hw: &Hw) -> (f64, u64) {
    let r = report(String::new(), "", None, costs, hw);
    (r.energy.total_pj(), r.cycles)
}

fn report(
    name: String,
    op: &'static str,
    strategy: Option<Strategy>,
    costs: &[StreamCost],
    hw: &Hw,
) -> LayerReport {
    let mut actions = Actions::default();
    let (mut runs, mut lanes, mut steps, mut evals, mut loaded) = (0, 0, 0, 0, 0);
    let (mut flips, mut shared_copies) = (0, 0);
    let (mut work, mut longest, mut commands, mut cols) = (0u64, 0u64, 0u64, 0usize);
    let mut streams = 0;
    for c in costs {
        let k = c.repeat;
        actions.add_scaled(&c.actions, k as f64);
        streams += k;
        runs += c.runs * k;
        lanes += c.lanes * k;
        steps += c.counts.gate_steps * c.runs * k;
        evals += c.counts.lane_gate_evals * k;
        loaded += c.loaded_bits * k;
        flips += c.flips * k;
        shared_copies += c.shared_copies * k;
        work += c.cycles_per_run * c.runs * k;
        longest = longest.max(c.cycles_per_run);
        commands += c.commands * k;
        cols = cols.max(c.cols);
    }
    actions.commands = commands as f64;
    let chip = hw.org.subarrays();
    let bus = hw.org.params.global_bus.width_bits as u64;
    let cycles = longest
        .max(work.div_ceil(chip))
        .max(commands.div_ceil(u64::from(hw.org.params.issue_slots_per_cycle)))
        .max(loaded.div_ceil(bus));
    LayerReport {
        name,
        op,
        strategy,
        streams,
        subarray_runs: runs,
        subarrays: runs.min(chip),
        lanes_used: lanes,
        lane_utilization: if runs == 0 {
            0.0
        } else {
            lanes as f64 / (runs as f64 * hw.lanes() as f64)
        },
        column_utilization: cols as f64 / hw.cols() as f64,
        gate_steps: steps,
        lane_gate_evals: evals,
        loaded_bits: loaded,
        cycles,
        energy: energy::energy(&actions, &hw.table, Pricing::ByZeros),
        flips,
        shared_copies,
    }
}

/// Expected fraction of lanes per input-zero count for each gate kind, characterized once
/// per gate set on a seeded sample of a signed 8×8 multiply (the mean pulse model of
/// analytical runs: the internal signals of adders are neither uniform nor independent, so
/// a Binomial model would be biased; see `energy`).
fn gate_fractions(set: GateSet) -> [[f64; 6]; GateKind::COUNT] {
    use crate::model::kernels::{KernelKind, KernelSpec};
    let k = KernelSpec {
        kind: KernelKind::Smul,
        bits: 8,
        bits_b: 8,
        constant: 0,
        gate_set: set,
    }
    .build();
    let inputs: Vec<_> = k.inputs.iter().flat_map(|o| o.cols.clone()).collect();
    let per_step = energy::characterize(&k.program, &inputs, energy::CHARACTERIZATION_KEY);
    let mut sum = [[0.0f64; 6]; GateKind::COUNT];
    let mut n = [0.0f64; GateKind::COUNT];
    let lines = cram_arch::Lines::new(1, 1);
    let steps = energy::account(&k.program, 1, k.program.cols() as u64, lines).gate_steps;
    for ((g, _), f) in steps.iter().zip(&per_step) {
        for z in 0..6 {
            sum[g.index()][z] += f[z];
        }
        n[g.index()] += 1.0;
    }
    std::array::from_fn(|g| {
        if n[g] == 0.0 {
            // A gate the sample does not use: inputs taken as independent fair bits.
            let arity = GateKind::ALL[g].arity();
            std::array::from_fn(|z| {
                if z > arity {
                    0.0
                } else {
                    binomial(arity, z) / f64::from(1u32 << arity)
                }
            })
        } else {
            std::array::from_fn(|z| sum[g][z] / n[g])
        }
    })
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Costs one job on `lanes` lanes from its tally (`plan`, which may come from a counting
/// builder) and, in functional mode, executes `real` (the same program, generated) with
/// operands from `load`.
#[allow(clippy::too_many_arguments)]
fn run_job(
    plan: &Job,
    real: Option<&Job>,
    lanes: usize,
    hw: &Hw,
    opts: &RunOptions,
    stream: u64,
    load: Option<Loader<'_>>,
    charge_loads: bool,
) -> (StreamCost, Option<Subarray>) {
    let counts = plan.tally.counts(lanes as u64);
    let lines = hw.org.lines();
    let mut actions = plan.tally.actions(lanes as u64, lines);
    let mut flips = 0;
    let sa = real.zip(load).map(|(job, load)| {
        let mut sa = Subarray::new(lanes, job.program.cols());
        sa.set_track_zeros(true);
        if opts.error_rate > 0.0 {
            sa.set_faults(Some(Faults::new(opts.error_rate, opts.seed, stream)));
        }
        for seg in &job.segments {
            for l in &seg.loads {
                let vals: Vec<u64> = (0..lanes)
                    .map(|lane| l.coding.encode(load(l.source, lane)))
                    .collect();
                store_lanes(&mut sa, &l.cols, &vals);
            }
            sa.run_segment(&job.program, seg.ops.clone())
                .expect("a job fits its own columns");
        }
        flips = sa.faults().map_or(0, |f| f.flips());
        sa
    });
    match (&sa, real) {
        (Some(sa), Some(job)) => {
            let steps: Vec<(GateKind, u64)> = job
                .program
                .ops()
                .iter()
                .filter_map(|op| match *op {
                    crate::model::engine::Op::Gate { gate, .. } => Some((gate, lanes as u64)),
                    _ => None,
                })
                .collect();
            actions.add_pulses(&steps, PulseModel::Measured(sa.zero_histograms()));
        }
        _ => {
            for (g, z) in hw.fractions.iter().enumerate() {
                for (k, p) in z.iter().enumerate() {
                    actions.pulse_lanes[g][k] += actions.gate_lanes[g] * p;
                }
            }
        }
    }
    // Operand loads: per segment, one partial row write per lane (none for a job that runs
    // in place on its producer's columns).
    let (bits, writes) = if charge_loads {
        (
            plan.loaded_bits_per_lane() as f64 * lanes as f64,
            plan.segments.iter().filter(|s| !s.loads.is_empty()).count() as f64 * lanes as f64,
        )
    } else {
        (0.0, 0.0)
    };
    actions.read_bits += bits;
    actions.moved_bits[1] += bits;
    actions.write_bits[0] += bits / 2.0;
    actions.write_bits[1] += bits / 2.0;
    // Each lane's partial row write drives its columns over the lane's line segment.
    if charge_loads {
        actions.bsl_write_cells +=
            plan.loaded_bits_per_lane() as f64 * lines.row_cells_sum(lanes as u64) as f64;
    }
    actions.wll_lanes += writes;
    actions.decodes += 2.0 * writes;
    let load_cycles = writes as u64 * hw.steps.write_row;
    (
        StreamCost {
            cycles_per_run: broadcast_cycles(&counts, &hw.steps) + load_cycles,
            load_writes: writes as u64,
            commands: plan.tally.ops() + writes as u64,
            counts,
            actions,
            runs: 1,
            lanes: lanes as u64,
            loaded_bits: bits as u64,
            cols: plan.cols,
            flips,
            shared_copies: real.map_or(0, |j| j.shared_copies),
            place: Place::default(),
            repeat: 1,
        },
        sa,
    )
}

/// The lane blocks that run, as (block index, how many blocks its cost stands for): with
/// values (`every`), each block; counted only, block 0 (a broadcast's commands are issued
/// with it), the full blocks after it as one, and a shorter last block. Counts and actions
/// depend on a block's length only, so the cost of a whole layer stays one entry per
/// program and block length, whatever the number of images.
fn block_runs(blocks: &[Range<usize>], ks: &[usize], every: bool) -> Vec<(usize, u64)> {
    if every || ks.len() <= 2 {
        return ks.iter().map(|&k| (k, 1)).collect();
    }
    let len = |k: usize| blocks[k].len();
    let last = ks[ks.len() - 1];
    let partial = len(last) != len(ks[0]);
    let middle = ks.len() - 1 - usize::from(partial);
    let mut out = vec![(ks[0], 1)];
    if middle > 0 {
        out.push((ks[1], middle as u64));
    }
    if partial {
        out.push((last, 1));
    }
    out
}

/// Lane blocks of `total` lanes, `per` to a subarray.
fn blocks(total: usize, per: usize) -> Vec<Range<usize>> {
    (0..total.div_ceil(per))
        .map(|b| b * per..((b + 1) * per).min(total))
        .collect()
}

/// Fits a job into the subarray: starts from a chunk of half the columns' worth of
/// operands and shrinks until the job fits. `make(chunk)` builds the job (a counting one
/// for linear layers, whose column bound then decides the chunk in both modes).
fn fitted<F>(hw: &Hw, reduction: usize, per_r: usize, make: F) -> Result<(usize, Job), String>
where
    F: FnMut(usize) -> Result<Job, String>,
{
    fitted_from(
        hw,
        (hw.cols() / 2 / per_r.max(1)).clamp(1, reduction.max(1)),
        make,
    )
}

/// [`fitted`] from a given first chunk.
fn fitted_from<F>(hw: &Hw, first: usize, mut make: F) -> Result<(usize, Job), String>
where
    F: FnMut(usize) -> Result<Job, String>,
{
    let mut chunk = first;
    loop {
        let job = make(chunk)?;
        if job.cols <= hw.cols() {
            return Ok((chunk, job));
        }
        if chunk == 1 {
            return Err(format!(
                "needs {} columns even one input at a time; the subarray has {} (cols_per_subarray)",
                job.cols,
                hw.cols()
            ));
        }
        chunk = chunk * 3 / 4;
    }
}

/// The generated program of a planned job, checked against the plan: the same tally, and
/// no more columns than the plan's bound (the closed form and the generator must agree).
/// The one allowed difference is the copies the generator made so that no gate reads a
/// cell twice (`Builder::distinct`, invisible to the closed form): such a program must still
/// fit the subarray, and functional mode then prices it from its own tally. Either way the
/// job reports the plan's column bound (at least), as analytical mode does.
fn realize(plan: &Job, real: Result<Job, String>, hw: &Hw) -> Result<Job, String> {
    let mut real = real?;
    real.cols = real.cols.max(plan.cols);
    if real.shared_copies > 0 {
        if real.program.cols() > hw.cols() {
            return Err(format!(
                "needs {} columns once inputs read twice in a gate are copied; the subarray has {} \
                 (cols_per_subarray)",
                real.program.cols(),
                hw.cols()
            ));
        }
        return Ok(real);
    }
    if real.tally != plan.tally || real.program.cols() > plan.cols {
        return Err(format!(
            "internal error: the closed-form cost model disagrees with the generated program \
             ({} vs {} ops, {} columns vs a bound of {}); please report it",
            plan.tally.ops(),
            real.tally.ops(),
            real.program.cols(),
            plan.cols
        ));
    }
    Ok(real)
}

type LayerOut = (Vec<StreamCost>, Vec<Array3<i64>>);

/// Gives the value a lane loads for an operand (functional mode).
type Loader<'a> = &'a (dyn Fn(Source, usize) -> i64 + Sync);

/// Output codes read back from a job: (channel, lane index within the layer, code).
type Placed = Vec<(usize, usize, i64)>;

/// The streams of one program (set or group), or why it could not be built.
type Streams = Result<Vec<(StreamCost, Placed)>, String>;

/// A Dense or Conv2d layer's streams, counted in closed form, or with `x` (input codes)
/// executed bit by bit; `realize` prices the counted streams with their generated programs
/// (as execution does, copies included) without executing them.
#[allow(clippy::too_many_arguments)]
fn linear_layer(
    l: &Linear<'_>,
    strategy: Strategy,
    hw: &Hw,
    n_img: usize,
    x: Option<&[Array3<i64>]>,
    realize_programs: bool,
    opts: &RunOptions,
    layer: usize,
) -> Result<LayerOut, String> {
    let generate = x.is_some() || realize_programs;
    let p_n = l.positions();
    let c_out = l.channels();
    let per = hw.lanes();
    let set = hw.set;
    let stream_of = |k: usize| ((layer as u64) << 32) | k as u64;
    let a_bits = l.x.bits as usize;
    let results: Vec<(StreamCost, Placed)> = match strategy {
        Strategy::Const => {
            // Channel sets within one group, as many as fit beside the inputs.
            let per_group = c_out / l.groups;
            let acc_bits = (0..c_out)
                .map(|c| {
                    let (lo, hi) = l.acc_interval(c);
                    arith::signed_width(lo, hi) as usize
                })
                .max()
                .unwrap_or(1);
            let g_max = (hw.cols() / 4 / (acc_bits + l.out.bits as usize)).clamp(1, per_group);
            let sets: Vec<Range<usize>> = (0..l.groups)
                .flat_map(|g| {
                    let (lo, hi) = (g * per_group, (g + 1) * per_group);
                    (lo..hi).step_by(g_max).map(move |a| a..(a + g_max).min(hi))
                })
                .collect();
            let lane_blocks = blocks(n_img * p_n, per);
            let all_blocks: Vec<usize> = (0..lane_blocks.len()).collect();
            // The first set's chunk is where every other set's search starts.
            let (chunk0, _) = fitted(hw, l.reduction(), a_bits, |chunk| {
                linear::const_job(set, l, sets[0].clone(), chunk, true)
            })?;
            let per_set: Vec<Streams> = sets
                .par_iter()
                .enumerate()
                .map(|(s, chs)| {
                    let (chunk, plan) = fitted_from(hw, chunk0, |chunk| {
                        linear::const_job(set, l, chs.clone(), chunk, true)
                    })?;
                    let real = if generate {
                        Some(realize(
                            &plan,
                            linear::const_job(set, l, chs.clone(), chunk, false),
                            hw,
                        )?)
                    } else {
                        None
                    };
                    Ok(block_runs(&lane_blocks, &all_blocks, x.is_some())
                        .par_iter()
                        .map(|&(bi, repeat)| {
                            let blk = &lane_blocks[bi];
                            let loader = |src: Source, lane: usize| -> i64 {
                                let g = blk.start + lane;
                                let (img, p) = (g / p_n, g % p_n);
                                match src {
                                    Source::X(r) => {
                                        l.gather(&x.expect("functional")[img], chs.start, p, r)
                                    }
                                    _ => unreachable!("const jobs load inputs only"),
                                }
                            };
                            let (mut cost, sa) = run_job(
                                real.as_ref().unwrap_or(&plan),
                                real.as_ref(),
                                blk.len(),
                                hw,
                                opts,
                                stream_of(s * lane_blocks.len() + bi),
                                x.is_some().then_some(&loader as Loader<'_>),
                                true,
                            );
                            // One broadcast stream per set: its commands are issued once.
                            if bi > 0 {
                                cost.commands = 0;
                            }
                            cost.repeat = repeat;
                            cost.place = Place {
                                program: s,
                                channels: chs.clone(),
                                lanes: blk.clone(),
                                chunk,
                            };
                            let mut vals = Vec::new();
                            if let (Some(sa), Some(job)) = (sa, &real) {
                                for (i, co) in chs.clone().enumerate() {
                                    for (lane, v) in load_lanes(&sa, &job.outputs[i], blk.len())
                                        .into_iter()
                                        .enumerate()
                                    {
                                        vals.push((co, blk.start + lane, job.out.decode(v)));
                                    }
                                }
                            }
                            (cost, vals)
                        })
                        .collect())
                })
                .collect();
            flatten(per_set)?
        }
        Strategy::Stored => {
            // Lane = (co, image, p), channel-major so a subarray holds few channels; blocks
            // holding the same channels share one program.
            let per_img = n_img * p_n;
            let wbits = l.weight_coding().bits as usize;
            let lane_blocks = blocks(c_out * per_img, per);
            let mut groups: Vec<(Range<usize>, Vec<usize>)> = Vec::new();
            for (k, blk) in lane_blocks.iter().enumerate() {
                let chs = blk.start / per_img..(blk.end - 1) / per_img + 1;
                match groups.last_mut() {
                    Some((c, ks)) if *c == chs => ks.push(k),
                    _ => groups.push((chs, vec![k])),
                }
            }
            // The first group's chunk is where every other group's search starts.
            let first: Vec<usize> = groups[0].0.clone().collect();
            let (chunk0, _) = fitted(hw, l.reduction(), a_bits + wbits, |chunk| {
                linear::stored_job(set, l, &first, chunk, true)
            })?;
            let per_group: Vec<Streams> = groups
                .par_iter()
                .enumerate()
                .map(|(gi, (chs, ks))| {
                    let channels: Vec<usize> = chs.clone().collect();
                    let (chunk, plan) = fitted_from(hw, chunk0, |chunk| {
                        linear::stored_job(set, l, &channels, chunk, true)
                    })?;
                    let real = if generate {
                        Some(realize(
                            &plan,
                            linear::stored_job(set, l, &channels, chunk, false),
                            hw,
                        )?)
                    } else {
                        None
                    };
                    let (_, mults) = l.common_mult(&channels);
                    // Per-channel constants, once per group (the K load keeps their low bits).
                    let ks_c: Vec<i128> = channels.iter().map(|&c| l.lane_constant(c)).collect();
                    Ok(block_runs(&lane_blocks, ks, x.is_some())
                        .par_iter()
                        .map(|&(k, repeat)| {
                            let blk = &lane_blocks[k];
                            let loader = |src: Source, lane: usize| -> i64 {
                                let g = blk.start + lane;
                                let co = g / per_img;
                                let (img, p) = (g % per_img / p_n, g % p_n);
                                let ci = co - channels[0];
                                match src {
                                    Source::X(r) => {
                                        l.gather(&x.expect("functional")[img], co, p, r)
                                    }
                                    Source::W(r) => l.row(co)[r],
                                    Source::K => ks_c[ci] as i64,
                                    Source::M => mults[ci] as i64,
                                    Source::MPos => i64::from(mults[ci] > 0),
                                }
                            };
                            let (mut cost, sa) = run_job(
                                real.as_ref().unwrap_or(&plan),
                                real.as_ref(),
                                blk.len(),
                                hw,
                                opts,
                                stream_of(k),
                                x.is_some().then_some(&loader as Loader<'_>),
                                true,
                            );
                            cost.repeat = repeat;
                            cost.place = Place {
                                program: gi,
                                channels: chs.clone(),
                                lanes: blk.clone(),
                                chunk,
                            };
                            let mut vals = Vec::new();
                            if let (Some(sa), Some(job)) = (sa, &real) {
                                for (lane, v) in load_lanes(&sa, &job.outputs[0], blk.len())
                                    .into_iter()
                                    .enumerate()
                                {
                                    let g = blk.start + lane;
                                    let (co, rest) = (g / per_img, g % per_img);
                                    vals.push((co, rest, job.out.decode(v)));
                                }
                            }
                            (cost, vals)
                        })
                        .collect())
                })
                .collect();
            flatten(per_group)?
        }
    };
    let mut y = vec![
        Array3::<i64>::zeros((c_out, l.out_shape.h, l.out_shape.w));
        if x.is_some() { n_img } else { 0 }
    ];
    let mut costs = Vec::with_capacity(results.len());
    for (cost, vals) in results {
        for (co, g, v) in vals {
            let (img, p) = (g / p_n, g % p_n);
            y[img][[co, p / l.out_shape.w, p % l.out_shape.w]] = v;
        }
        costs.push(cost);
    }
    Ok((costs, y))
}

/// The streams of every program in order, or the first program's error.
fn flatten(per_program: Vec<Streams>) -> Streams {
    let mut all = Vec::new();
    for streams in per_program {
        all.extend(streams?);
    }
    Ok(all)
}

/// Gives a lane's operand: (source, image, output channel, output position) → code.
type Gather<'a> = &'a (dyn Fn(Source, usize, usize, usize) -> i64 + Sync);

/// Runs (functional) or counts element-wise parts: lane = (image, channel, position) of each
/// part's channels, one broadcast program per part. Counted with `realize`, the streams
/// report the copies their programs made, as execution does. `charge_loads` is false for
/// programs that run in place on their producer's output columns.
#[allow(clippy::too_many_arguments)]
fn elem_layer(
    parts: &[Part],
    hw: &Hw,
    n_img: usize,
    out: cram_workloads::Shape,
    (gather, realize): (Option<Gather<'_>>, bool),
    opts: &RunOptions,
    layer: usize,
    charge_loads: bool,
) -> LayerOut {
    let p_n = out.h * out.w;
    // (part, block index, lanes, how many blocks it stands for, stream number)
    let mut tasks: Vec<(usize, usize, Range<usize>, u64, usize)> = Vec::new();
    let mut streams = 0;
    for (pi, part) in parts.iter().enumerate() {
        let total = n_img * part.channels.len() * p_n;
        let bs = blocks(total, hw.lanes());
        let all: Vec<usize> = (0..bs.len()).collect();
        for (bi, repeat) in block_runs(&bs, &all, gather.is_some()) {
            tasks.push((pi, bi, bs[bi].clone(), repeat, streams + bi));
        }
        streams += bs.len();
    }
    let results: Vec<(StreamCost, Placed)> = tasks
        .par_iter()
        .map(|(pi, bi, blk, repeat, k)| {
            let part = &parts[*pi];
            let n_c = part.channels.len();
            // Lane g of the part: image-major, then channel, then position.
            let place = |g: usize| {
                let (img, rest) = (g / (n_c * p_n), g % (n_c * p_n));
                (img, part.channels.start + rest / p_n, rest % p_n)
            };
            let loader = |src: Source, lane: usize| -> i64 {
                let (img, c, p) = place(blk.start + lane);
                gather.expect("functional")(src, img, c, p)
            };
            // Realized (priced as execution prices it) with values or when asked to.
            let (mut cost, sa) = run_job(
                &part.job,
                (gather.is_some() || realize).then_some(&part.job),
                blk.len(),
                hw,
                opts,
                ((layer as u64) << 32) | *k as u64,
                gather.is_some().then_some(&loader as Loader<'_>),
                charge_loads,
            );
            // One broadcast stream per part: its commands are issued once.
            if *bi > 0 {
                cost.commands = 0;
            }
            cost.repeat = *repeat;
            cost.place = Place {
                program: *pi,
                channels: part.channels.clone(),
                lanes: blk.clone(),
                chunk: 0,
            };
            let vals = sa.map_or(Vec::new(), |sa| {
                load_lanes(&sa, &part.job.outputs[0], blk.len())
                    .into_iter()
                    .enumerate()
                    .map(|(lane, v)| {
                        let (img, c, p) = place(blk.start + lane);
                        (c, img * p_n + p, part.job.out.decode(v))
                    })
                    .collect()
            });
            (cost, vals)
        })
        .collect();
    let mut y =
        vec![Array3::<i64>::zeros((out.c, out.h, out.w)); if gather.is_some() { n_img } else { 0 }];
    let mut costs = Vec::with_capacity(results.len());
    for (cost, vals) in results {
        for (c, g, v) in vals {
            let (img, p) = (g / p_n, g % p_n);
            y[img][[c, p / out.w, p % out.w]] = v;
        }
        costs.push(cost);
    }
    (costs, y)
}

#[cfg(test)]
mod conv_tests {
    use super::tests::hw;
    use super::*;
    use cram_workloads::compress::{
        Calibration, CompressSpec, compress, synthetic_inputs, synthetic_weights,
    };
    use cram_workloads::net::{Network, Op as NetOp, Shape};
    use cram_workloads::prune::Prune;
    use cram_workloads::quant::{WeightMode, WeightScheme};
    use cram_workloads::zoo::{conv, dense};

    /// A small CNN with every conv variant the mapper handles: grouped, strided, padded,
    /// depthwise, a signed-activation chain and a Dense head on a spatial map.
    fn small_cnn() -> Network {
        let mut n = Network::new("small-cnn", Shape { c: 4, h: 6, w: 6 });
        n.then("c1", conv(6, 3, 2, 1, 2, true));
        n.then("r1", NetOp::Relu);
        n.then("dw", conv(6, 3, 1, 1, 6, false));
        n.then("r2", NetOp::Relu6);
        n.then("pw", conv(5, 1, 1, 0, 1, true));
        n.then("fc", dense(7));
        n
    }

    fn model(
        bits: u32,
        mode: WeightMode,
        symmetric: bool,
        prune: Option<Prune>,
    ) -> golden::Program {
        let net = small_cnn();
        let w = synthetic_weights(&net, 7).unwrap();
        let calib = synthetic_inputs(net.input_shape(), 8, 3);
        let spec = CompressSpec {
            weights: WeightScheme {
                bits,
                mode,
                per_channel: true,
            },
            act_bits: 6,
            act_symmetric: symmetric,
            input: None,
            prune,
            calibration: Calibration::MinMax,
        };
        compress(&net, &w, &spec, &calib)
            .unwrap()
            .0
            .program()
            .unwrap()
    }

    /// Convolutions in both strategies equal the golden executor on every image, for
    /// symmetric and affine weights, signed and unsigned activations, and a pruned model.
    #[test]
    fn small_cnn_is_bit_exact() {
        let hw = hw();
        let cases = [
            model(8, WeightMode::Symmetric, false, None),
            model(4, WeightMode::Affine, true, None),
            model(
                5,
                WeightMode::Symmetric,
                false,
                Some(Prune::Unstructured { sparsity: 0.5 }),
            ),
        ];
        for prog in &cases {
            let (lo, hi) = prog.act(0).range();
            let images: Vec<Array3<i64>> = synthetic_inputs(prog.network().input_shape(), 5, 9)
                .iter()
                .map(|x| x.mapv(|v| lo + ((hi - lo) as f32 * v) as i64))
                .collect();
            for s in Strategy::ALL {
                let run = run_network(
                    prog,
                    &images,
                    &hw,
                    &RunOptions {
                        mode: Mode::Functional,
                        choice: Choice::Force(s),
                        error_rate: 0.0,
                        seed: 0,
                        limits: Default::default(),
                    },
                )
                .unwrap();
                assert_eq!(run.outputs.len(), images.len());
                for (x, got) in images.iter().zip(&run.outputs) {
                    assert_eq!(got, prog.run(x).unwrap().last().unwrap(), "{s:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod analytical_tests {
    use super::Strategy;
    use super::tests::hw;
    use super::*;

    /// The compression of the default configuration (8-bit symmetric per-channel weights,
    /// 8-bit activations), with `sparsity` of the weights pruned.
    fn spec(sparsity: Option<f64>) -> CompressSpec {
        CompressSpec {
            weights: WeightScheme {
                bits: 8,
                mode: WeightMode::Symmetric,
                per_channel: true,
            },
            act_bits: 8,
            act_symmetric: false,
            input: None,
            prune: sparsity
                .filter(|&s| s > 0.0)
                .map(|sparsity| Prune::Unstructured { sparsity }),
            calibration: Calibration::MinMax,
        }
    }

    /// Zoo network `name` with synthetic weights of `seed`, compressed by `spec`.
    fn zoo_program(name: &str, spec: &CompressSpec, seed: u64) -> golden::Program {
        let net = cram_workloads::zoo::model(name).unwrap();
        let m = cram_workloads::compress::synthetic_model(&net, spec, seed, 2).unwrap();
        golden::Program::compile(&m.net, &m.weights, m.quant.as_ref().unwrap()).unwrap()
    }
    use cram_workloads::compress::{
        Calibration, CompressSpec, compress, synthetic_inputs, synthetic_weights,
    };
    use cram_workloads::net::{Network, Op as NetOp, Shape, Window};
    use cram_workloads::prune::Prune;
    use cram_workloads::quant::{WeightMode, WeightScheme};
    use cram_workloads::zoo::{conv, dense};
    use proptest::prelude::*;

    fn run(prog: &golden::Program, images: &[Array3<i64>], mode: Mode, s: Strategy) -> NetRun {
        let opts = RunOptions {
            mode,
            choice: Choice::Force(s),
            error_rate: 0.0,
            seed: 3,
            limits: Default::default(),
        };
        run_network(prog, images, &hw(), &opts).unwrap()
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
    fn check_equal(prog: &golden::Program, images: &[Array3<i64>], s: Strategy) -> usize {
        let f = run(prog, images, Mode::Functional, s);
        let a = run(prog, images, Mode::Analytical, s);
        for (x, got) in images.iter().zip(&f.outputs) {
            assert_eq!(got, prog.run(x).unwrap().last().unwrap(), "{s:?}");
        }
        analytical_matches(&f, &a).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// A network with every op the mapper knows beside Dense/Conv2d.
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
        n.then("gap", NetOp::GlobalAvgPool);
        n.then("fc", dense(5));
        n
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]

        /// Analytical == functional (counts, cycles) and bit-exact, on random small networks
        /// with every mapped op, random weight bits, signedness and sparsity, both strategies.
        #[test]
        fn analytical_equals_functional(
            c in 1usize..4, k in prop_oneof![Just(1usize), Just(3)], pool in any::<bool>(),
            bits in 2u32..9, act_bits in 2u32..9, symmetric in any::<bool>(),
            sparsity in prop_oneof![Just(0.0f64), Just(0.5), Just(0.9)], seed in 0u64..1000,
        ) {
            check_every_op(c, k, pool, bits, act_bits, symmetric, sparsity, seed);
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
        let net = every_op(c, k, pool);
        let w = synthetic_weights(&net, seed).unwrap();
        let spec = CompressSpec {
            weights: WeightScheme {
                bits,
                mode: WeightMode::Symmetric,
                per_channel: true,
            },
            act_bits,
            act_symmetric: symmetric,
            input: None,
            prune: (sparsity > 0.0).then_some(Prune::Unstructured { sparsity }),
            calibration: Calibration::MinMax,
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
            .map(|s| check_equal(&prog, &imgs, s))
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
        let opts = RunOptions {
            mode: Mode::Analytical,
            choice: Choice::Auto(Objective::Energy),
            error_rate: 0.0,
            seed: 1,
            limits: Default::default(),
        };
        run_network(&prog, &images(&prog, 1, 5), &hw(), &opts).unwrap();
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
                Choice::Force(Strategy::Const),
                Choice::Force(Strategy::Stored),
                Choice::Auto(Objective::Energy),
            ];
            for choice in choices {
                for error_rate in [0.0, 0.01] {
                    let opts = RunOptions {
                        mode: Mode::Functional,
                        choice,
                        error_rate,
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
    /// cycles equal the functional ones, in both strategies.
    #[test]
    fn resnet20_analytical_equals_functional() {
        let prog = zoo_program("resnet20", &spec(None), 1);
        let imgs = images(&prog, 1, 5);
        for s in Strategy::ALL {
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
                let r = run(&prog, &img, Mode::Analytical, Strategy::Const);
                (r.energy_pj(), r.cycles())
            })
            .collect();
        for w in costs.windows(2) {
            assert!(w[1].0 < w[0].0 && w[1].1 < w[0].1, "{costs:?}");
        }
        // Half the weights pruned saves a good part of the energy, not a rounding error.
        assert!(costs[1].0 < 0.8 * costs[0].0, "{costs:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cram_arch::presets;
    use cram_workloads::digits::{Digits, SPLIT_SEED};
    use cram_workloads::train::{code_inputs, shipped};

    pub(crate) fn hw() -> Hw {
        let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
        Hw::new(lib, presets::array("cram-1k").unwrap(), GateSet::Maj)
    }

    fn opts(mode: Mode, strategy: Strategy) -> RunOptions {
        RunOptions {
            mode,
            choice: Choice::Force(strategy),
            error_rate: 0.0,
            seed: 1,
            limits: Default::default(),
        }
    }

    /// Every shipped quantized digits model, both strategies: every held-out image's final
    /// codes equal the golden executor's.
    #[test]
    fn digits_models_are_bit_exact_in_both_strategies() {
        let (_, test) = Digits::embedded().split(SPLIT_SEED);
        let images = code_inputs(&test);
        let hw = hw();
        for name in [
            "digits-mlp-int8",
            "digits-mlp-int4",
            "digits-mlp-w4a4",
            "digits-mlp-binary",
        ] {
            let prog = shipped(name).unwrap().unwrap().program().unwrap();
            let want: Vec<Array3<i64>> = images
                .iter()
                .map(|x| prog.run(x).unwrap().pop().unwrap())
                .collect();
            for s in Strategy::ALL {
                let run = run_network(&prog, &images, &hw, &opts(Mode::Functional, s)).unwrap();
                assert_eq!(run.outputs.len(), want.len());
                for (i, (got, want)) in run.outputs.iter().zip(&want).enumerate() {
                    assert_eq!(got, want, "{name} {s:?} image {i}");
                }
                assert!(run.energy_pj() > 0.0 && run.cycles() > 0);
            }
        }
    }
}
