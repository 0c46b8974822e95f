//! Mapping compressed networks onto CRAM cell blocks, and running them layer by layer
//! (DESIGN §2): the only place that sees both the architecture and the workload.
//!
//! [`run_network`] takes a compiled integer network (the golden executor's
//! `cram_workloads::golden::Program`, so both sides use one set of constants), places every
//! layer on subarrays, generates its CRAM programs ([`linear`], [`unary`]) and then either
//! executes them bit by bit on the functional executor (reading every layer's outputs back
//! out of the simulated cells and feeding them to the next layer) or only counts them. Each
//! layer gets a [`LayerReport`]: placement, utilization, steps, cycles and energy by
//! component.
//!
//! Data movement is counted, not assumed free: before each segment of a job the runner
//! writes the lanes' operands (receptive-field inputs, and stored weights) as partial row
//! writes, each bit sensed at its source, carried over the global bus and written into its
//! cell (`Actions` fields `read_bits`, `moved_bits`, `write_bits`, `bsl_write_lines`).
//! Unary layers (ReLU, ReLU6, Sign) run in place on their producer's output columns;
//! Flatten and Softmax (the identity on codes) cost nothing.
//!
//! Layer latency is a bound-based schedule, not the cycle-by-cycle [`crate::timing`]
//! timeline: streams on disjoint subarrays overlap, so a layer takes the longest of its
//! longest stream, its total array work spread over the chip's subarrays, its controller
//! commands at the issue rate and its bus traffic at the bus width.

pub mod arith;
pub mod linear;
pub mod unary;

use std::ops::Range;

use cram_arch::{GateKind, GateLibrary, Org};
use cram_workloads::golden::{self, Step};
use ndarray::Array3;
use rayon::prelude::*;
use serde::Serialize;

pub use linear::Strategy;
use linear::{Job, Linear, Source};

use crate::bits::{load_lanes, store_lanes};
use crate::energy::{self, Actions, EnergyBreakdown, EnergyTable, Pricing, PulseModel};
use crate::engine::exec::{Faults, Subarray, ZeroHistogram};
use crate::engine::{Counter, Counts};
use crate::error::UsageError;
use crate::kernels::GateSet;
use crate::timing::{StepCycles, broadcast_cycles};

/// What the per-layer strategy choice minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Energy per inference.
    Energy,
    /// Latency.
    Latency,
    /// Energy × latency.
    Edp,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// One stream's cost: a program run on some subarrays.
#[derive(Debug, Clone, Default)]
struct StreamCost {
    counts: Counts,
    actions: Actions,
    runs: u64,
    lanes: u64,
    cycles_per_run: u64,
    commands: u64,
    loaded_bits: u64,
    cols: usize,
    flips: u64,
}

/// Runs (functional) or counts (analytical) `prog` on `images` (input codes; one per image,
/// also in analytical mode, where only their number matters).
pub fn run_network(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
) -> Result<NetRun, UsageError> {
    let net = prog.network();
    let n_img = images.len();
    let functional = opts.mode == Mode::Functional;
    let mut outs: Vec<Vec<Array3<i64>>> = Vec::with_capacity(net.layers.len());
    let mut reports = Vec::with_capacity(net.layers.len());
    for (i, layer) in net.layers.iter().enumerate() {
        let shape = prog.shape(i);
        let act = prog.act(i);
        let bad = |why: String| {
            UsageError::new(format!(
                "network '{}', layer '{}' ({}): {why}",
                net.name,
                layer.name,
                layer.op.name()
            ))
        };
        let input = |k: usize| layer.inputs.get(k).copied().unwrap_or(0);
        let (costs, strategy, y): (Vec<StreamCost>, Option<Strategy>, Vec<Array3<i64>>) = match prog
            .step(i)
        {
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
            step @ Step::Linear { .. } => {
                let j = input(0);
                let l = Linear::of(&layer.op, step, prog.act(j), act, prog.shape(j), shape)
                    .expect("a linear step");
                let strategy = match opts.choice {
                    Choice::Force(s) => s,
                    Choice::Auto(obj) => {
                        let score = |s: Strategy| -> Result<f64, UsageError> {
                            let c = linear_layer(&l, s, hw, n_img, None, opts, i).map_err(&bad)?;
                            let (e, t) = totals(&c.0, hw);
                            Ok(match obj {
                                Objective::Energy => e,
                                Objective::Latency => t as f64,
                                Objective::Edp => e * t as f64,
                            })
                        };
                        let (a, b) = (score(Strategy::Const)?, score(Strategy::Stored)?);
                        if b < a {
                            Strategy::Stored
                        } else {
                            Strategy::Const
                        }
                    }
                };
                let x = functional.then(|| outs[j].as_slice());
                let (c, y) = linear_layer(&l, strategy, hw, n_img, x, opts, i).map_err(&bad)?;
                (c, Some(strategy), y)
            }
            Step::Relu | Step::Relu6 { .. } | Step::Sign => {
                let j = input(0);
                let job = unary::job(hw.set, prog.step(i), prog.act(j), act).map_err(&bad)?;
                let x = functional.then(|| outs[j].as_slice());
                let (c, y) = unary_layer(&job, hw, n_img, prog.shape(j), x, opts, i);
                (c, None, y)
            }
            _ => {
                return Err(bad(
                    "this op is not mapped onto CRAM yet (mapped: Dense, Conv2d, ReLU, \
                         ReLU6, Sign, Flatten, Softmax)"
                        .into(),
                ));
            }
        };
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
    let (mut runs, mut lanes, mut steps, mut evals, mut loaded, mut flips) = (0, 0, 0, 0, 0, 0);
    let (mut work, mut longest, mut commands, mut cols) = (0u64, 0u64, 0u64, 0usize);
    for c in costs {
        actions.add_scaled(&c.actions, 1.0);
        runs += c.runs;
        lanes += c.lanes;
        steps += c.counts.gate_steps * c.runs;
        evals += c.counts.lane_gate_evals;
        loaded += c.loaded_bits;
        flips += c.flips;
        work += c.cycles_per_run * c.runs;
        longest = longest.max(c.cycles_per_run);
        commands += c.commands;
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
        streams: costs.len() as u64,
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
    }
}

/// Expected fraction of lanes per input-zero count for each gate kind, characterized once
/// per gate set on a seeded sample of a signed 8×8 multiply (the mean pulse model of
/// analytical runs: the internal signals of adders are neither uniform nor independent, so
/// a Binomial model would be biased; see `energy`).
fn gate_fractions(set: GateSet) -> [[f64; 6]; GateKind::COUNT] {
    use crate::kernels::{KernelKind, KernelSpec};
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
    let steps = energy::account(&k.program, 1, k.program.cols() as u64).gate_steps;
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

/// Runs one job on `lanes` lanes (functional) or counts it, given a per-lane loader.
#[allow(clippy::too_many_arguments)]
fn run_job(
    job: &Job,
    lanes: usize,
    hw: &Hw,
    opts: &RunOptions,
    stream: u64,
    fractions: Option<&[[f64; 6]; GateKind::COUNT]>,
    load: Option<Loader<'_>>,
    charge_loads: bool,
) -> (StreamCost, Option<Subarray>) {
    let cols = job.program.cols();
    let counts = Counter::count(&job.program, lanes);
    let acc = energy::account(&job.program, lanes as u64, cols as u64);
    let mut actions = acc.actions;
    let mut flips = 0;
    let sa = load.map(|load| {
        let mut sa = Subarray::new(lanes, cols);
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
    let hist: Option<&[ZeroHistogram]> = sa.as_ref().map(|s| s.zero_histograms());
    match (hist, fractions) {
        (Some(h), _) => actions.add_pulses(&acc.gate_steps, PulseModel::Measured(h)),
        (None, Some(f)) => {
            for (g, z) in f.iter().enumerate() {
                for (k, p) in z.iter().enumerate() {
                    actions.pulse_lanes[g][k] += actions.gate_lanes[g] * p;
                }
            }
        }
        (None, None) => {}
    }
    // Operand loads: per segment, one partial row write per lane (none for a job that runs
    // in place on its producer's columns).
    let (bits, writes) = if charge_loads {
        (
            job.loaded_bits_per_lane() as f64 * lanes as f64,
            job.segments.iter().filter(|s| !s.loads.is_empty()).count() as f64 * lanes as f64,
        )
    } else {
        (0.0, 0.0)
    };
    actions.read_bits += bits;
    actions.moved_bits[1] += bits;
    actions.write_bits[0] += bits / 2.0;
    actions.write_bits[1] += bits / 2.0;
    actions.bsl_write_lines += bits;
    actions.wll_lanes += writes;
    actions.decodes += 2.0 * writes;
    let load_cycles = writes as u64 * hw.steps.write_row;
    (
        StreamCost {
            cycles_per_run: broadcast_cycles(&counts, &hw.steps) + load_cycles,
            counts,
            actions,
            runs: 1,
            lanes: lanes as u64,
            commands: job.program.ops().len() as u64 + writes as u64,
            loaded_bits: bits as u64,
            cols,
            flips,
        },
        sa,
    )
}

/// Lane blocks of `total` lanes, `per` to a subarray.
fn blocks(total: usize, per: usize) -> Vec<Range<usize>> {
    (0..total.div_ceil(per))
        .map(|b| b * per..((b + 1) * per).min(total))
        .collect()
}

/// Fits a job into the subarray: starts from a chunk of half the columns' worth of
/// operands and shrinks until the generated program fits.
fn fitted<F>(hw: &Hw, reduction: usize, per_r: usize, mut make: F) -> Result<Job, String>
where
    F: FnMut(usize) -> Result<Job, String>,
{
    let mut chunk = (hw.cols() / 2 / per_r.max(1)).clamp(1, reduction.max(1));
    loop {
        let job = make(chunk)?;
        if job.program.cols() <= hw.cols() {
            return Ok(job);
        }
        if chunk == 1 {
            return Err(format!(
                "needs {} columns even one input at a time; the subarray has {}",
                job.program.cols(),
                hw.cols()
            ));
        }
        chunk = chunk * 3 / 4;
    }
}

type LayerOut = (Vec<StreamCost>, Vec<Array3<i64>>);

/// Gives the value a lane loads for an operand (functional mode).
type Loader<'a> = &'a (dyn Fn(Source, usize) -> i64 + Sync);

/// Output codes read back from a job: (channel, lane index within the layer, code).
type Placed = Vec<(usize, usize, i64)>;

fn linear_layer(
    l: &Linear<'_>,
    strategy: Strategy,
    hw: &Hw,
    n_img: usize,
    x: Option<&[Array3<i64>]>,
    opts: &RunOptions,
    layer: usize,
) -> Result<LayerOut, String> {
    let fractions = x.is_none().then_some(&hw.fractions);
    let p_n = l.positions();
    let c_out = l.channels();
    let per = hw.lanes();
    let mut y = vec![
        Array3::<i64>::zeros((c_out, l.out_shape.h, l.out_shape.w));
        if x.is_some() { n_img } else { 0 }
    ];
    let stream_of = |k: usize| ((layer as u64) << 32) | k as u64;
    let mut costs = Vec::new();
    match strategy {
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
            let lanes_total = n_img * p_n;
            let lane_blocks = blocks(lanes_total, per);
            let jobs: Vec<Job> = sets
                .iter()
                .map(|chs| {
                    fitted(hw, l.reduction(), l.x.bits as usize, |chunk| {
                        linear::const_job(hw.set, l, chs.clone(), chunk)
                    })
                })
                .collect::<Result<_, _>>()?;
            let tasks: Vec<(usize, usize)> = (0..sets.len())
                .flat_map(|s| (0..lane_blocks.len()).map(move |b| (s, b)))
                .collect();
            let results: Vec<(StreamCost, Placed)> = tasks
                .par_iter()
                .enumerate()
                .map(|(k, &(s, bi))| {
                    let (job, blk, chs) = (&jobs[s], &lane_blocks[bi], &sets[s]);
                    let co0 = chs.start;
                    let loader = |src: Source, lane: usize| -> i64 {
                        let g = blk.start + lane;
                        let (img, p) = (g / p_n, g % p_n);
                        match src {
                            Source::X(r) => l.gather(&x.expect("functional")[img], co0, p, r),
                            _ => unreachable!("const jobs load inputs only"),
                        }
                    };
                    let (mut cost, sa) = run_job(
                        job,
                        blk.len(),
                        hw,
                        opts,
                        stream_of(k),
                        fractions,
                        x.is_some().then_some(&loader as Loader<'_>),
                        true,
                    );
                    // One broadcast stream per set: its commands are issued once.
                    if bi > 0 {
                        cost.commands = 0;
                    }
                    let mut vals = Vec::new();
                    if let Some(sa) = sa {
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
                .collect();
            for (cost, vals) in results {
                for (co, g, v) in vals {
                    let (img, p) = (g / p_n, g % p_n);
                    y[img][[co, p / l.out_shape.w, p % l.out_shape.w]] = v;
                }
                costs.push(cost);
            }
        }
        Strategy::Stored => {
            // Lane = (co, image, p), channel-major so a subarray holds few channels.
            let lanes_total = c_out * n_img * p_n;
            let lane_blocks = blocks(lanes_total, per);
            let per_img = n_img * p_n;
            let wbits = l.weight_coding().bits as usize;
            let results: Vec<Result<(StreamCost, Placed), String>> = lane_blocks
                .par_iter()
                .enumerate()
                .map(|(k, blk)| {
                    let channels: Vec<usize> =
                        (blk.start / per_img..=(blk.end - 1) / per_img).collect();
                    let job = fitted(hw, l.reduction(), l.x.bits as usize + wbits, |chunk| {
                        linear::stored_job(hw.set, l, &channels, chunk)
                    })?;
                    let (_, mults) = l.common_mult(&channels);
                    // Per-channel constants, once per block (the K load keeps their low bits).
                    let ks: Vec<i128> = channels.iter().map(|&c| l.lane_constant(c)).collect();
                    let loader = |src: Source, lane: usize| -> i64 {
                        let g = blk.start + lane;
                        let co = g / per_img;
                        let (img, p) = (g % per_img / p_n, g % p_n);
                        let ci = co - channels[0];
                        match src {
                            Source::X(r) => l.gather(&x.expect("functional")[img], co, p, r),
                            Source::W(r) => l.weight(co, r),
                            Source::K => ks[ci] as i64,
                            Source::M => mults[ci] as i64,
                            Source::MPos => i64::from(mults[ci] > 0),
                        }
                    };
                    let (cost, sa) = run_job(
                        &job,
                        blk.len(),
                        hw,
                        opts,
                        stream_of(k),
                        fractions,
                        x.is_some().then_some(&loader as Loader<'_>),
                        true,
                    );
                    let mut vals = Vec::new();
                    if let Some(sa) = sa {
                        for (lane, v) in load_lanes(&sa, &job.outputs[0], blk.len())
                            .into_iter()
                            .enumerate()
                        {
                            let g = blk.start + lane;
                            vals.push((g / per_img, g % per_img, job.out.decode(v)));
                        }
                    }
                    Ok((cost, vals))
                })
                .collect();
            for r in results {
                let (cost, vals) = r?;
                for (co, g, v) in vals {
                    let (img, p) = (g / p_n, g % p_n);
                    y[img][[co, p / l.out_shape.w, p % l.out_shape.w]] = v;
                }
                costs.push(cost);
            }
        }
    }
    Ok((costs, y))
}

fn unary_layer(
    job: &Job,
    hw: &Hw,
    n_img: usize,
    shape: cram_workloads::Shape,
    x: Option<&[Array3<i64>]>,
    opts: &RunOptions,
    layer: usize,
) -> LayerOut {
    let fractions = x.is_none().then_some(&hw.fractions);
    let (c, h, w) = (shape.c, shape.h, shape.w);
    let per_img = c * h * w;
    let total = n_img * per_img;
    let lane_blocks = blocks(total, hw.lanes());
    let results: Vec<(StreamCost, Vec<i64>)> = lane_blocks
        .par_iter()
        .enumerate()
        .map(|(k, blk)| {
            let loader = |_: Source, lane: usize| -> i64 {
                let g = blk.start + lane;
                let xs = x.expect("functional");
                xs[g / per_img].as_slice().expect("standard layout")[g % per_img]
            };
            let (mut cost, sa) = run_job(
                job,
                blk.len(),
                hw,
                opts,
                ((layer as u64) << 32) | k as u64,
                fractions,
                x.is_some().then_some(&loader as Loader<'_>),
                false,
            );
            if k > 0 {
                cost.commands = 0;
            }
            let vals = sa.map_or(Vec::new(), |sa| {
                load_lanes(&sa, &job.outputs[0], blk.len())
                    .into_iter()
                    .map(|v| job.out.decode(v))
                    .collect()
            });
            (cost, vals)
        })
        .collect();
    let mut y = Vec::new();
    let mut flat = Vec::with_capacity(total);
    let mut costs = Vec::new();
    for (cost, vals) in results {
        flat.extend(vals);
        costs.push(cost);
    }
    if x.is_some() {
        for i in 0..n_img {
            y.push(
                Array3::from_shape_vec((c, h, w), flat[i * per_img..(i + 1) * per_img].to_vec())
                    .expect("shape"),
            );
        }
    }
    (costs, y)
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
