//! One stream: a program run on some subarrays, executed or counted, its lane blocks, its fit to the subarray and its cost.

use super::*;
use crate::error::MapError;
use crate::model::bits::store_lanes;
use crate::model::energy::{self, Actions, PackedActions};
use crate::model::engine::OpCounts;
use crate::model::engine::exec::{Faults, Subarray};
use crate::model::kernels::GateSet;
use crate::model::timing::broadcast_cycles;
use cram_arch::GateKind;
use linear::{Job, SourceKind};
use std::ops::Range;

/// One stream's cost: a program run on some subarrays.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamCost {
    pub(crate) counts: OpCounts,
    /// Its actions, without the gates it does not use.
    pub(crate) actions: PackedActions,
    pub(crate) runs: u64,
    pub(crate) lanes: u64,
    pub(crate) cycles_per_run: u64,
    /// Partial row writes per run (loads), priced at the device's write latency.
    pub(crate) load_writes: u64,
    pub(crate) commands: u64,
    /// Bits moved over the global bus into the run (each distinct operand value once).
    pub(crate) loaded_bits: u64,
    /// Bits written into the run's cells by its loads (every lane's operands).
    pub(crate) written_bits: u64,
    pub(crate) cols: usize,
    pub(crate) flips: u64,
    pub(crate) shared_copies: u64,
    pub(crate) place: Place,
    /// How many consecutive lane blocks this cost stands for (analytical mode prices equal
    /// blocks once; `place.lanes` is the first, the others follow it).
    pub(crate) repeat: u64,
    /// Writing the run's resident data once, at deployment.
    pub(crate) deploy: Deploy,
    /// Which pass of its layer the run belongs to: a split reduction's reducer pass (1)
    /// starts when its slice pass (0) has ended (docs/model.md §2.8).
    pub(crate) pass: usize,
    /// Whether its runs take subarrays of their own (false for a later wave of a layout
    /// with copies, which runs where wave 0 ran).
    pub(crate) new_subarrays: bool,
    /// Whether its runs work in place on their producer's output columns (an element-wise
    /// layer with no operand loads), and so on its producer's subarrays.
    pub(crate) in_place: bool,
    /// A run's work on the periphery's function unit, (lane reads, multiply-adds)
    /// (`unit::unit_stream`; zero for a run in the array): its cycles
    /// (`unit::cycles`) are part of `cycles_per_run`.
    pub(crate) unit_work: (u64, u64),
}

/// The deployment of a run's resident weights and constants: one partial row write per
/// lane, each value sensed at the weight store and moved over the global bus once for the
/// layer (as per-run loads are, docs/model.md §2.6).
#[derive(Debug, Clone, Default)]
pub(crate) struct Deploy {
    /// Its actions; none when the run writes no resident data (most streams, and a later
    /// wave that finds its data where wave 0 wrote them), so the cached candidates of a
    /// sweep do not each carry a table of zeros.
    pub(crate) actions: Option<Box<PackedActions>>,
    /// Bits moved over the global bus.
    pub(crate) moved_bits: u64,
    /// Bits written into cells: the run's resident footprint.
    pub(crate) written_bits: u64,
    /// Row writes per run.
    pub(crate) writes: u64,
    /// Controller commands (a broadcast program's row writes issued once).
    pub(crate) commands: u64,
}

impl StreamCost {
    /// Makes this a later block of a program broadcast to several blocks: the program's
    /// commands, its ops and its operand row writes (each addressing one row in every
    /// subarray of the broadcast, the data coming over the bus), are issued once, with its
    /// first block, which is the longest (docs/model.md §2.6).
    pub(crate) fn share_program(&mut self) {
        self.commands = 0;
        self.deploy.commands = 0;
    }
}

/// Where a stream ran: which program (channel set, stored group or element-wise part) on
/// which lanes of the layer's lane order, for `cramulator map`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Place {
    /// Index of the program within the layer.
    pub(crate) program: usize,
    /// Output channels the program computes.
    pub(crate) channels: Range<usize>,
    /// The run's lanes in the layer's lane order (see [`place::lane_order`]).
    pub(crate) lanes: Range<usize>,
    /// Reduction inputs per segment (0 for programs without a chunked reduction).
    pub(crate) chunk: usize,
    /// Lanes of a wave, when the layout runs its outputs in waves on pinned subarrays
    /// (copies; 0 otherwise): a cost standing for several blocks stands for the same block
    /// of consecutive waves, this many lanes apart, on one subarray.
    pub(crate) wave_lanes: usize,
}

/// What the search minimizes for a layer's streams over `images` images: the objective of
/// its energy, with the periphery's leakage over its cycles (docs/model.md §1.1.2; over
/// its runs' subarray-cycles when power-gated) and each image's 1/N share of the
/// deployment (N inferences per deployment), and its cycles. Also gives that energy and
/// the cycles.
pub(crate) fn score(
    choice: &Choice,
    costs: &[StreamCost],
    hw: &Hw,
    images: usize,
) -> (f64, f64, u64) {
    score_of(choice, costs, &stream_sums(costs, hw.lanes()), hw, images)
}

/// [`score`], from the streams' [`StreamSums`].
pub(crate) fn score_of(
    choice: &Choice,
    costs: &[StreamCost],
    sums: &StreamSums,
    hw: &Hw,
    images: usize,
) -> (f64, f64, u64) {
    score_from(choice, costs, sums, energies_of(sums, hw), hw, images)
}

/// [`score_of`], from the streams' energy and deployment energy ([`energies_of`]): adds
/// the leakage over the layer's timeline and the deployment's share.
pub(crate) fn score_from(
    choice: &Choice,
    costs: &[StreamCost],
    sums: &StreamSums,
    (e, d): (f64, f64),
    hw: &Hw,
    images: usize,
) -> (f64, f64, u64) {
    let t = timeline::layer_cycles(costs, hw);
    let e = e + hw.org.leakage_pj(hw.chips, t, sums.busy) + deployed_share(choice, d, images);
    (choice.objective.score(e, t), e, t)
}

/// The share of a deployment's energy `d_pj` one run of `images` images carries.
fn deployed_share(choice: &Choice, d_pj: f64, images: usize) -> f64 {
    d_pj * images as f64 / choice.inferences_per_deployment.max(1) as f64
}

/// A [`score_floor`] and the (energy, deployment energy) in pJ it is made of.
pub(crate) type Floor = (f64, (f64, f64));

/// A floor under [`score_of`] that needs no timeline, under the energy objective (None
/// under the others, whose scores need the cycles): the score without the leakage. The
/// leakage is never negative (a device with a negative leakage gets no floor), and a
/// rounded sum never falls when one of its terms grows, so the floor never exceeds the
/// score. Also gives the energies it is made of, for [`score_from`].
pub(crate) fn score_floor(
    choice: &Choice,
    sums: &StreamSums,
    hw: &Hw,
    images: usize,
) -> Option<Floor> {
    let leaks = hw.org.leakage_w().partial_cmp(&0.0);
    if choice.objective != Objective::Energy || leaks.is_none_or(|o| o.is_lt()) {
        return None;
    }
    let (e, d) = energies_of(sums, hw);
    Some((e + 0.0 + deployed_share(choice, d, images), (e, d)))
}

/// Expected fraction of lanes per input-zero count for each gate kind, characterized once
/// per gate set on a seeded sample of a signed 8×8 multiply (the mean pulse model of
/// analytical runs: the internal signals of adders are neither uniform nor independent, so
/// a Binomial model would be biased; see `energy`).
pub(crate) fn gate_fractions(set: GateSet) -> [[f64; 6]; GateKind::COUNT] {
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

pub(crate) fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// How many of an operand source's values a run's lanes load that cross the global bus
/// for it (at most the lanes): a value several lanes of a layer load crosses the bus once,
/// with the first run that loads it, and every subarray that loads it latches it then
/// (multicast, docs/model.md §2.6).
pub(crate) type Distinct<'a> = &'a (dyn Fn(SourceKind) -> u64 + Sync);

/// Costs one job on `lanes` lanes from its tally (`plan`, which may come from a counting
/// builder) and, in functional mode, executes `real` (the same program, generated) with
/// operands from `load`; `distinct` counts each source's distinct values over the lanes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_job(
    plan: &Job,
    real: Option<&Job>,
    lanes: usize,
    hw: &Hw,
    opts: &RunOptions,
    stream: u64,
    load: Option<Loader<'_>>,
    charge_loads: bool,
    distinct: Distinct<'_>,
) -> (StreamCost, Option<Subarray>) {
    let counts = plan.tally.counts(lanes as u64);
    let lines = hw.org.lines();
    let mut actions = plan.tally.actions(lanes as u64, lines);
    let mut flips = 0;
    let sa = real.zip(load).map(|(job, load)| {
        let mut sa = Subarray::new(lanes, job.program.cols());
        sa.set_sum_zeros(true);
        if opts.error_rates.iter().any(|&p| p > 0.0) {
            sa.set_faults(Some(Faults::per_gate(opts.error_rates, opts.seed, stream)));
        }
        let (mut vals, mut codes) = (vec![0i64; lanes], vec![0u64; lanes]);
        for seg in &job.segments {
            for l in &seg.loads {
                load(l.source, &mut vals);
                for (c, &v) in codes.iter_mut().zip(&vals) {
                    *c = l.coding.encode(v);
                }
                store_lanes(&mut sa, &l.cols, &codes);
            }
            sa.run_segment(&job.program, seg.ops.clone())
                .expect("a job fits its own columns");
        }
        flips = sa.faults().map_or(0, |f| f.flips());
        sa
    });
    match (&sa, real) {
        (Some(sa), Some(_)) => actions.add_pulse_sums(sa.zero_sums()),
        _ => {
            for (g, z) in hw.fractions.iter().enumerate() {
                for (k, p) in z.iter().enumerate() {
                    actions.pulse_lanes[g][k] += actions.gate_lanes[g] * p;
                }
            }
        }
    }
    // Operand loads: per segment, one partial row write per lane (none for a job that runs
    // in place on its producer's columns). Each distinct value is sensed at its source and
    // crosses the global bus once; the subarray's write drivers keep it for every row that
    // loads it. Resident loads are written once, at deployment, one row write per lane.
    let moved_by = |resident: bool| -> u64 {
        SourceKind::ALL
            .iter()
            .map(|&k| match plan.load_cols(k, resident) {
                0 => 0,
                cols => cols * distinct(k).min(lanes as u64),
            })
            .sum()
    };
    let (bits, writes, moved) = if charge_loads {
        (
            plan.loaded_bits_per_lane() * lanes as u64,
            plan.loading_segments() * lanes as u64,
            moved_by(false),
        )
    } else {
        (0, 0, 0)
    };
    let per_lane = if charge_loads {
        plan.loaded_bits_per_lane()
    } else {
        0
    };
    charge_writes(&mut actions, (moved, bits, writes), per_lane, lanes, hw);
    let mut deploy = Deploy::default();
    let resident = plan.resident_bits_per_lane();
    if resident > 0 {
        deploy.moved_bits = moved_by(true);
        deploy.written_bits = resident * lanes as u64;
        deploy.writes = lanes as u64;
        deploy.commands = deploy.writes;
        let counts = (deploy.moved_bits, deploy.written_bits, deploy.writes);
        let mut actions = Actions::default();
        charge_writes(&mut actions, counts, resident, lanes, hw);
        actions.commands = deploy.commands as f64;
        deploy.actions = Some(Box::new(PackedActions::from(&actions)));
    }
    let load_cycles = writes * hw.steps.write_row;
    (
        StreamCost {
            cycles_per_run: broadcast_cycles(&counts, &hw.steps) + load_cycles,
            load_writes: writes,
            commands: plan.tally.ops() + writes,
            counts,
            actions: PackedActions::from(&actions),
            runs: 1,
            lanes: lanes as u64,
            loaded_bits: moved,
            written_bits: bits,
            cols: plan.cols,
            flips,
            shared_copies: real.map_or(0, |j| j.shared_copies),
            place: Place::default(),
            repeat: 1,
            deploy,
            pass: 0,
            new_subarrays: true,
            in_place: !charge_loads,
            unit_work: (0, 0),
        },
        sa,
    )
}

/// Charges operand loads to `actions`: `moved` bits sensed at their source and carried over
/// the global bus (and, across chips, the share [`Hw::link_bits`] over the chip link), `written` bits written into cells (half zeros, half ones), `writes`
/// partial row writes (a word line and two decodes each), each lane's `per_lane` bits
/// driving their columns over the lane's line segment.
fn charge_writes(
    actions: &mut Actions,
    (moved, written, writes): (u64, u64, u64),
    per_lane: u64,
    lanes: usize,
    hw: &Hw,
) {
    let link = hw.link_bits(moved) as f64;
    let (moved, written, writes) = (moved as f64, written as f64, writes as f64);
    actions.read_bits += moved;
    actions.moved_bits[1] += moved;
    actions.moved_bits[3] += link;
    actions.write_bits[0] += written / 2.0;
    actions.write_bits[1] += written / 2.0;
    actions.bsl_write_cells += per_lane as f64 * hw.org.lines().row_cells_sum(lanes as u64) as f64;
    actions.wll_lanes += writes;
    actions.decodes += 2.0 * writes;
}

/// The lane blocks that run, as (block index, how many blocks its cost stands for): with
/// values (`every`), each block; counted only, block 0 (a broadcast program's ops are issued
/// with it), the full blocks after it as one, and a shorter last block. Counts and actions
/// depend on a block's length only (and on the channels it holds, which are the same for
/// every block of one stored group), so the cost of a whole layer stays one entry per
/// program and block length, whatever the number of images.
pub(crate) fn block_runs(blocks: &[Range<usize>], ks: &[usize], every: bool) -> Vec<(usize, u64)> {
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
pub(crate) fn blocks(total: usize, per: usize) -> Vec<Range<usize>> {
    (0..total.div_ceil(per))
        .map(|b| b * per..((b + 1) * per).min(total))
        .collect()
}

/// Fits a job into the subarray: starts from a chunk of half the columns' worth of
/// operands and shrinks until the job fits. `make(chunk)` builds the job (a counting one
/// for linear layers, whose column bound then decides the chunk in both modes).
pub(crate) fn fitted<F>(
    hw: &Hw,
    reduction: usize,
    per_r: usize,
    mut make: F,
) -> Result<(usize, Job), MapError>
where
    F: FnMut(usize) -> Result<Job, MapError>,
{
    fitted_within(hw, first_chunk(hw, reduction, per_r), |chunk, _| {
        make(chunk)
    })
}

/// [`fitted`]'s first chunk: half the columns' worth of operands of `per_r` bits, at least
/// one and at most the `reduction`.
pub(crate) fn first_chunk(hw: &Hw, reduction: usize, per_r: usize) -> usize {
    (hw.cols() / 2 / per_r.max(1)).clamp(1, reduction.max(1))
}

/// [`fitted`] from a given first chunk, `make(chunk, within)` free to give up a job once
/// its columns pass `within` and give it as it stands (its columns, which only grow, past
/// `within`): every try but one of a single input, which is built whole so that the error
/// of a job that fits nowhere counts all its columns.
pub(crate) fn fitted_within<F>(hw: &Hw, first: usize, mut make: F) -> Result<(usize, Job), MapError>
where
    F: FnMut(usize, Option<usize>) -> Result<Job, MapError>,
{
    let mut chunk = first;
    loop {
        let job = make(chunk, (chunk > 1).then(|| hw.cols()))?;
        if job.cols <= hw.cols() {
            return Ok((chunk, job));
        }
        if chunk == 1 {
            return Err(MapError::Columns {
                needed: job.cols,
                have: hw.cols(),
            });
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
pub(crate) fn realize(plan: &Job, real: Result<Job, MapError>, hw: &Hw) -> Result<Job, MapError> {
    let mut real = real?;
    real.cols = real.cols.max(plan.cols);
    if real.shared_copies > 0 {
        if real.program.cols() > hw.cols() {
            return Err(MapError::CopiedColumns {
                needed: real.program.cols(),
                have: hw.cols(),
            });
        }
        return Ok(real);
    }
    // The plan counts the loads its generated program lists.
    debug_assert_eq!(real.load_counts(), plan.load_counts());
    debug_assert_eq!(real.loading_segments(), plan.loading_segments());
    if real.tally != plan.tally || real.program.cols() > plan.cols {
        return Err(MapError::CostModel {
            planned: plan.tally.ops(),
            generated: real.tally.ops(),
            cols: real.program.cols(),
            bound: plan.cols,
        });
    }
    Ok(real)
}
