//! One layer on the chip: its candidate streams (a weighted layer by either strategy, an element-wise layer), chosen by the objective, and its report.

use super::*;
use crate::error::{Error, MapError};
use crate::model::bits::load_lanes;
use crate::model::energy::{self, Actions, Pricing};
use cram_workloads::golden::{self, Step};
use elem::Part;
use linear::Strategy;
use linear::{Linear, PlanKey, Source, SourceKind, StoredSpec, chunks};
use ndarray::Array3;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// A layer's costs, layout and (functional mode) output codes; `candidates` collects every
/// searched layout's (energy pJ, cycles) when the cost model chooses. `realize` (analytical
/// mode) prices the chosen streams with their generated programs, as a functional run does.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub(crate) fn layer_costs(
    prog: &golden::Program,
    i: usize,
    images: &[Array3<i64>],
    outs: &[Vec<Array3<i64>>],
    hw: &Hw,
    opts: &RunOptions,
    realize: bool,
    mut candidates: Option<&mut Vec<(Layout, f64, u64)>>,
) -> Result<(Vec<StreamCost>, Option<Layout>, Vec<Array3<i64>>), MapError> {
    let layer = &prog.network().layers[i];
    let shape = prog.shape(i);
    let n_img = images.len();
    let functional = opts.mode == Mode::Functional;
    let input = |k: usize| layer.inputs.get(k).copied().unwrap_or(0);
    let (costs, layout, y): (Vec<StreamCost>, Option<Layout>, Vec<Array3<i64>>) = match prog.step(i)
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
        Step::Linear { .. } => {
            let j = input(0);
            let l = Linear::at(prog, i).expect("a linear step");
            let x = functional.then(|| outs[j].as_slice());
            let layouts = layouts(&opts.choice, &l, n_img, hw)?;
            let (layout, (c, y)) = if let [one] = layouts[..] {
                (one, linear_layer(&l, one, hw, n_img, x, realize, opts, i)?)
            } else {
                // Every layout costed in closed form; the first of the cheapest runs.
                let mut best: Option<(f64, Layout, LayerOut)> = None;
                for (lay, out) in cost_layouts(&l, layouts, hw, n_img, opts, i)? {
                    let (score, e, t) = score(&opts.choice, &out.0, hw, n_img);
                    if let Some(c) = candidates.as_mut() {
                        c.push((lay, e, t));
                    }
                    if best.as_ref().is_none_or(|b| score < b.0) {
                        best = Some((score, lay, out));
                    }
                }
                let (_, lay, out) = best.expect("cost_layouts gives at least one");
                if x.is_some() || realize {
                    (lay, linear_layer(&l, lay, hw, n_img, x, realize, opts, i)?)
                } else {
                    (lay, out)
                }
            };
            (c, Some(layout), y)
        }
        // Softmax and LayerNorm in the array, in passes (`norm`).
        Step::Softmax(_) | Step::LayerNorm(_) => {
            let (c, y) = norm::layer(prog, i, outs, hw, n_img, (functional, realize), opts)?;
            (c, None, y)
        }
        Step::MaxPool
        | Step::SumPool(_)
        | Step::SumPoolCounted(_)
        | Step::Relu
        | Step::Relu6 { .. }
        | Step::Sign
        | Step::Add { .. }
        | Step::Concat(_)
        | Step::Downsample
        | Step::Move
        | Step::Host { .. }
        | Step::Attn(_)
        | Step::Lut { .. }
        | Step::Mul(_)
        | Step::Lookup { .. }
        | Step::Cache { .. }
        | Step::AddTable { .. } => {
            // A host layer's first pass is the function unit's (`unit`); its results are
            // written back in the second, as the parts' loads.
            let host = prog.step(i).on_unit();
            let (parts, charge) = elem::parts(prog, i, hw)?;
            let g = functional.then(|| elem::gather(prog, i, outs));
            let (c, mut y) = elem_layer(
                &parts,
                hw,
                n_img,
                shape,
                (g.as_deref(), realize),
                opts,
                (i as u64) << 32,
                charge,
            );
            // A cache's earlier entries are not recomputed: they are what earlier steps
            // wrote.
            if let Step::Cache { codes } = prog.step(i) {
                for yi in &mut y {
                    yi.slice_mut(ndarray::s![.., ..codes.dim().1, ..])
                        .assign(codes);
                }
            }
            let c = if host {
                let mut all = vec![unit::unit_stream(prog, i, n_img, hw)];
                all.extend(c.into_iter().map(|s| StreamCost { pass: 1, ..s }));
                all
            } else {
                c
            };
            (c, None, y)
        }
    };
    Ok((costs, layout, y))
}

/// Every one of `layouts` costed in closed form (in parallel), in order. A layout that does
/// not fit (columns, resident columns, a common multiplier) is passed over; with none left,
/// the first one's error stands.
pub(crate) fn cost_layouts(
    l: &Linear<'_>,
    layouts: Vec<Layout>,
    hw: &Hw,
    n_img: usize,
    opts: &RunOptions,
    layer: usize,
) -> Result<Vec<(Layout, LayerOut)>, MapError> {
    fitting(layouts, |lay| {
        linear_layer(l, lay, hw, n_img, None, false, opts, layer)
    })
}

/// `cost` of every one of `layouts` (in parallel), in order, passing over the layouts it
/// refuses; with none left, the first refusal stands.
pub(crate) fn fitting<T: Send>(
    layouts: Vec<Layout>,
    cost: impl Fn(Layout) -> Result<T, MapError> + Sync,
) -> Result<Vec<(Layout, T)>, MapError> {
    let outs = layouts.par_iter().map(|&lay| cost(lay).map(Some)).collect();
    first_fits(layouts, outs)
}

/// [`fitting`] for a run's own search under the energy objective. The layouts that reload
/// their weights and seldom score best (`const`, and `stored` with a program per channel
/// group) are costed after the others, each left out as soon as its first programs
/// already spend more than the lowest score among the layouts costed first that reload
/// (`reload_score`): `within(layout, bound_pj)` gives `None` then ([`linear_within`]).
/// Such a layout could never be chosen: `choose` takes the lowest score, or starts each
/// layer from its lowest-scoring reloading layout and only ever moves to lower scores.
pub(crate) fn fitting_within<T: Send>(
    layouts: Vec<Layout>,
    cost: impl Fn(Layout) -> Result<T, MapError> + Sync,
    within: impl Fn(Layout, f64) -> Result<Option<T>, MapError> + Sync,
    reload_score: impl Fn(&T) -> Option<f64>,
) -> Result<Vec<(Layout, T)>, MapError> {
    let later = |lay: &Layout| !lay.resident && (lay.strategy == Strategy::Const || !lay.shared);
    let mut outs: Vec<Result<Option<T>, MapError>> = layouts
        .par_iter()
        .map(|lay| (!later(lay)).then(|| cost(*lay)).transpose())
        .collect();
    let bound = outs
        .iter()
        .filter_map(|o| o.as_ref().ok()?.as_ref().and_then(&reload_score))
        .reduce(f64::min);
    let rest: Vec<(usize, Result<Option<T>, MapError>)> = layouts
        .par_iter()
        .enumerate()
        .filter(|(_, lay)| later(lay))
        .map(|(k, &lay)| {
            let out = match bound {
                Some(b) => within(lay, b),
                None => cost(lay).map(Some),
            };
            (k, out)
        })
        .collect();
    for (k, out) in rest {
        outs[k] = out;
    }
    first_fits(layouts, outs)
}

/// The layouts whose cost came out (in order), passing over those refused or left out
/// (`None`); with none left, the first refusal stands.
fn first_fits<T>(
    layouts: Vec<Layout>,
    outs: Vec<Result<Option<T>, MapError>>,
) -> Result<Vec<(Layout, T)>, MapError> {
    let mut first_error = None;
    let mut fit = Vec::new();
    for (lay, out) in layouts.into_iter().zip(outs) {
        match out {
            Ok(Some(out)) => fit.push((lay, out)),
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if fit.is_empty() => Err(e),
        _ => Ok(fit),
    }
}

/// The layouts `choice` leaves for a linear layer of `n_img` images, or why none.
pub(crate) fn layouts(
    choice: &Choice,
    l: &Linear<'_>,
    n_img: usize,
    hw: &Hw,
) -> Result<Vec<Layout>, MapError> {
    layouts_of(
        choice,
        (l.channels(), l.positions(), l.reduction()),
        n_img,
        hw,
    )
}

/// [`layouts`] of a layer of `(channels, positions, reduction)` ([`Linear::dims`]).
pub(crate) fn layouts_of(
    choice: &Choice,
    (channels, positions, reduction): (usize, usize, usize),
    n_img: usize,
    hw: &Hw,
) -> Result<Vec<Layout>, MapError> {
    let out = choice.layouts(
        channels,
        n_img * positions,
        reduction,
        hw.machine_lanes() as usize,
    );
    if out.is_empty() {
        return Err(MapError::NoLayout {
            pins: choice.describe(),
        });
    }
    Ok(out)
}

/// A layer's mapping error, naming the network, the layer and its op.
pub(crate) fn layer_error(prog: &golden::Program, i: usize, why: MapError) -> Error {
    let net = prog.network();
    let layer = &net.layers[i];
    Error::Layer {
        network: net.name.clone(),
        layer: layer.name.clone(),
        op: layer.op.name(),
        why: Box::new(why),
    }
}

/// A layer's report of its streams `costs` on `hw`.
pub(crate) fn report(
    name: String,
    op: &'static str,
    layout: Option<Layout>,
    costs: &[StreamCost],
    hw: &Hw,
) -> LayerReport {
    report_of(name, op, layout, costs, &stream_sums(costs, hw.lanes()), hw)
}

/// [`report`], from the streams' [`StreamSums`] (a chosen candidate's, summed once).
pub(crate) fn report_of(
    name: String,
    op: &'static str,
    layout: Option<Layout>,
    costs: &[StreamCost],
    sums: &StreamSums,
    hw: &Hw,
) -> LayerReport {
    let (mut runs, mut lanes, mut steps, mut evals, mut loaded) = (0, 0, 0, 0, 0);
    let mut written = 0;
    let (mut flips, mut shared_copies) = (0, 0);
    let mut by_gate = [0u64; cram_arch::GateKind::COUNT];
    let mut cols = 0usize;
    let mut lane_cycles = 0u128;
    let mut streams = 0;
    let (mut d_moved, mut d_written, mut d_longest) = (0, 0, 0);
    for c in costs {
        let k = c.repeat;
        d_moved += c.deploy.moved_bits * k;
        d_written += c.deploy.written_bits * k;
        d_longest = d_longest.max(c.deploy.writes * hw.steps.write_row);
        streams += k;
        // The function unit's pass (§2.5.1) is no run on a subarray's lanes.
        if c.unit_work == (0, 0) {
            runs += c.runs * k;
        }
        lanes += c.lanes * k;
        steps += c.counts.gate_steps * c.runs * k;
        evals += c.counts.lane_gate_evals * k;
        // Every op of a generated program selects all its lanes, so each kind's share of
        // the lane evaluations is its share of the steps.
        if c.counts.gate_steps > 0 {
            for (sum, &n) in by_gate.iter_mut().zip(&c.counts.by_gate) {
                *sum += (u128::from(c.counts.lane_gate_evals) * u128::from(n)
                    / u128::from(c.counts.gate_steps)) as u64
                    * k;
            }
        }
        loaded += c.loaded_bits * k;
        written += c.written_bits * k;
        flips += c.flips * k;
        shared_copies += c.shared_copies * k;
        lane_cycles += u128::from(c.lanes) * u128::from(c.cycles_per_run) * u128::from(k);
        cols = cols.max(c.cols);
    }
    let bus = hw.org.params.global_bus.width_bits as u64;
    let slots = u64::from(hw.org.params.issue_slots_per_cycle);
    let (actions, deploy) = with_commands(sums, hw);
    let (passes, d_commands) = (&sums.passes, sums.d_commands);
    // The layer's runs on the cycle-level timeline, alone on the machine (§2.11).
    let cycles = timeline::layer_cycles(costs, hw);
    let deployment = Deployment {
        moved_bits: d_moved,
        written_bits: d_written,
        // Every run writes its lanes' rows at once (one row write per lane), the runs on
        // all subarrays in parallel: the longest run, the commands or the bus.
        cycles: d_longest
            .max(d_commands.div_ceil(slots))
            .max(d_moved.div_ceil(bus * hw.chips))
            .max(link_cycles(hw, d_moved, hw.chips)),
        energy: energy::energy(&deploy, &hw.table, Pricing::ByZeros),
    };
    let chip_lanes = hw.machine_lanes();
    // Every lane-gate evaluation holds its lane for at least the shortest gate step, and the
    // chips evaluate at most `chip_lanes` at once (docs/model.md §2.8).
    let bound_cycles = (u128::from(evals) * u128::from(hw.steps.gate_no_preset))
        .div_ceil(u128::from(chip_lanes.max(1))) as u64;
    let lane_cycles = u64::try_from(lane_cycles).unwrap_or(u64::MAX);
    LayerReport {
        name,
        op,
        layout,
        streams,
        subarray_runs: runs,
        subarrays: passes
            .iter()
            .map(|p| p[4])
            .max()
            .unwrap_or(0)
            .min(hw.subarrays()),
        lanes_used: lanes,
        lane_utilization: if runs == 0 {
            0.0
        } else {
            lanes as f64 / (runs as f64 * hw.lanes() as f64)
        },
        column_utilization: cols as f64 / hw.cols() as f64,
        gate_steps: steps,
        lane_gate_evals: evals,
        lane_evals_by_gate: by_gate,
        loaded_bits: loaded,
        written_bits: written,
        cycles,
        lane_cycles,
        chip_lane_utilization: ratio(lane_cycles as f64, chip_lanes as f64 * cycles as f64, 0.0),
        bound_cycles,
        mapping_efficiency: ratio(bound_cycles as f64, cycles as f64, 1.0),
        energy: energy::energy(&actions, &hw.table, Pricing::ByZeros),
        flips,
        shared_copies,
        deployment,
    }
}

/// What a layer's streams add up to on any chip whose subarrays have `per` lanes: their
/// actions and deployment actions, each summed stream by stream in order, `repeat` times
/// each (what [`report`] prices once [`with_commands`] has set their commands), their
/// [`pass_sums`], deployment commands, busy subarray-cycles and resident bits. None of
/// them depends on the chip around the subarrays, so a candidate shared by a sweep's
/// points sums them once (`run::Candidate`).
#[derive(Debug, Clone)]
pub(crate) struct StreamSums {
    pub(crate) actions: Actions,
    pub(crate) deploy: Actions,
    pub(crate) passes: Vec<[u64; 5]>,
    pub(crate) d_commands: u64,
    /// Σ runs · cycles per run over the streams, `repeat` times each.
    pub(crate) busy: u64,
    /// As [`resident_bits`] gives them.
    pub(crate) resident_bits: u64,
    /// The lanes per subarray they were summed for.
    per: usize,
}

/// The [`StreamSums`] of `costs` on subarrays of `per` lanes.
pub(crate) fn stream_sums(costs: &[StreamCost], per: usize) -> StreamSums {
    let (mut actions, mut deploy) = (Actions::default(), Actions::default());
    let (mut d_commands, mut busy, mut resident) = (0u64, 0u64, 0u64);
    for c in costs {
        let k = c.repeat as f64;
        c.actions.add_scaled_to(&mut actions, k);
        // No deployment actions are zeros, which add nothing.
        if let Some(d) = &c.deploy.actions {
            d.add_scaled_to(&mut deploy, k);
        }
        d_commands += c.deploy.commands * c.repeat;
        busy += c.runs * c.cycles_per_run * c.repeat;
        resident += c.deploy.written_bits * c.repeat;
    }
    StreamSums {
        actions,
        deploy,
        passes: pass_sums(costs, per),
        d_commands,
        busy,
        resident_bits: resident,
        per,
    }
}

/// The [`StreamSums`]' actions with their commands: each chip that runs a pass issues its
/// programs' commands (docs/model.md §2.10), and every deployment write is one.
fn with_commands(sums: &StreamSums, hw: &Hw) -> (Actions, Actions) {
    debug_assert_eq!(sums.per, hw.lanes(), "sums of another subarray shape");
    let issued: u64 = sums.passes.iter().map(|p| p[2] * hw.chips_used(p[4])).sum();
    let (mut actions, mut deploy) = (sums.actions.clone(), sums.deploy.clone());
    actions.commands = issued as f64;
    deploy.commands = sums.d_commands as f64;
    (actions, deploy)
}

/// Energy (pJ) of a layer's streams and its deployment energy (pJ), as [`report`] gives
/// them, from the streams' [`StreamSums`].
pub(crate) fn energies_of(sums: &StreamSums, hw: &Hw) -> (f64, f64) {
    let (actions, deploy) = with_commands(sums, hw);
    (
        energy::energy(&actions, &hw.table, Pricing::ByZeros).total_pj(),
        energy::energy(&deploy, &hw.table, Pricing::ByZeros).total_pj(),
    )
}

/// Per pass of a layer's streams: (longest chain of runs on one subarray, Σ run cycles,
/// commands, moved bits, subarrays taken). A layout with copies chains each block's waves
/// on one subarray (a shorter last wave's block takes fewer cycles: its row writes are per
/// lane).
fn pass_sums(costs: &[StreamCost], per: usize) -> Vec<[u64; 5]> {
    let mut passes: Vec<[u64; 5]> = Vec::new();
    // Each run's cycles on its chain, (pass, program, block): a chain's total is their sum
    // in any order, and the longest chain is the largest total (every term is ≥ 0).
    let mut links: Vec<((usize, usize, usize), u64)> = Vec::new();
    for c in costs {
        let k = c.repeat;
        if passes.len() <= c.pass {
            passes.resize(c.pass + 1, [0; 5]);
        }
        let p = &mut passes[c.pass];
        if c.place.wave_lanes > 0 {
            let block = c.place.lanes.start % c.place.wave_lanes / per.max(1);
            links.push(((c.pass, c.place.program, block), c.cycles_per_run * k));
        } else {
            p[0] = p[0].max(c.cycles_per_run);
        }
        p[1] += c.cycles_per_run * c.runs * k;
        p[2] += c.commands * k;
        p[3] += c.loaded_bits * k;
        // A later wave of a layout with copies runs on subarrays an earlier one took.
        if c.new_subarrays {
            p[4] += c.runs * k;
        }
    }
    links.sort_unstable_by_key(|&(key, _)| key);
    for run in links.chunk_by(|a, b| a.0 == b.0) {
        let p = &mut passes[run[0].0.0];
        p[0] = p[0].max(run.iter().map(|&(_, t)| t).sum());
    }
    passes
}

/// The cycles a chip-link port needs for its share of `bits` spread over `chips` ports.
fn link_cycles(hw: &Hw, bits: u64, chips: u64) -> u64 {
    hw.chip_link().map_or(0, |l| {
        hw.org
            .link_cycles(&l, hw.link_bits(bits).div_ceil(chips.max(1)))
    })
}

/// A bound on a layer's cycles that its timeline ([`timeline::layer_cycles`]) on one chip
/// can only meet or exceed: per pass, in turn, the longest of its longest chain of runs on
/// one subarray, its work over the subarrays, its commands at the issue rate and its moves
/// at the bus width (docs/model.md §2.11).
#[cfg(test)]
pub(crate) fn pass_bounds(costs: &[StreamCost], hw: &Hw) -> u64 {
    let bus = hw.org.params.global_bus.width_bits as u64;
    let slots = u64::from(hw.org.params.issue_slots_per_cycle);
    pass_sums(costs, hw.lanes())
        .iter()
        .map(|&[longest, work, commands, loaded, subarrays]| {
            let chips = hw.chips_used(subarrays);
            longest
                .max(work.div_ceil(hw.subarrays()))
                .max(commands.div_ceil(slots))
                .max(loaded.div_ceil(bus * chips))
                .max(link_cycles(hw, loaded, chips))
        })
        .sum()
}

pub(crate) type LayerOut = (Vec<StreamCost>, Vec<Array3<i64>>);

/// Gives the values the lanes of a run load for an operand (functional mode): fills the
/// slice, one value per lane (what each lane reads is worked out once per run, not per
/// operand).
pub(crate) type Loader<'a> = &'a (dyn Fn(Source, &mut [i64]) + Sync);

/// Output codes read back from a job: (channel, lane index within the layer, code).
pub(crate) type Placed = Vec<(usize, usize, i64)>;

/// Streams in order, and what each placed (functional mode; nothing when counted), apart:
/// a stream's cost is moved from where it is made to where it is kept once (a cost is about
/// 600 bytes, and a ResNet-18 sweep keeps some 100,000).
#[derive(Debug, Default)]
pub(crate) struct Costed {
    pub(crate) costs: Vec<StreamCost>,
    pub(crate) placed: Vec<Placed>,
}

impl From<(Vec<StreamCost>, Vec<Placed>)> for Costed {
    fn from((costs, placed): (Vec<StreamCost>, Vec<Placed>)) -> Costed {
        Costed { costs, placed }
    }
}

/// The streams of one program (set or group), or why it could not be built.
pub(crate) type Streams = Result<Costed, MapError>;

/// A Dense or Conv2d layer's streams, counted in closed form, or with `x` (input codes)
/// executed bit by bit; `realize` prices the counted streams with their generated programs
/// (as execution does, copies included) without executing them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_layer(
    l: &Linear<'_>,
    layout: Layout,
    hw: &Hw,
    n_img: usize,
    x: Option<&[Array3<i64>]>,
    realize_programs: bool,
    opts: &RunOptions,
    layer: usize,
) -> Result<LayerOut, MapError> {
    let generate = x.is_some() || realize_programs;
    let p_n = l.positions();
    let c_out = l.channels();
    let results = match layout.strategy {
        Strategy::Const => const_streams(l, hw, n_img, x, generate, opts, layer, None)?,
        Strategy::Stored => stored_streams(l, hw, n_img, x, generate, opts, layer, layout, None)?,
    }
    .expect("never given up");
    // Built only when there are outputs (`vec![a; 0]` would still make and drop `a`).
    let images = if x.is_some() { n_img } else { 0 };
    let mut y: Vec<_> = (0..images)
        .map(|_| Array3::<i64>::zeros((c_out, l.out_shape.h, l.out_shape.w)))
        .collect();
    for (co, g, v) in results.placed.into_iter().flatten() {
        let (img, p) = (g / p_n, g % p_n);
        y[img][[co, p / l.out_shape.w, p % l.out_shape.w]] = v;
    }
    Ok((results.costs, y))
}

/// A layout of a linear layer that keeps no weights resident, costed in closed form
/// (analytical), or left out as soon as the dynamic energy of its first programs' streams
/// ([`dynamic_pj`]) exceeds `bound_pj`: then its whole score (energy objective) exceeds it
/// too, since every later stream, the leakage and the deployment share only add to it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_within(
    l: &Linear<'_>,
    layout: Layout,
    hw: &Hw,
    n_img: usize,
    opts: &RunOptions,
    layer: usize,
    bound_pj: f64,
) -> Result<Within, MapError> {
    // The streams judged last, kept when they are left out.
    let judged = std::sync::Mutex::new(Vec::new());
    // Priced as `choose` prices them; streams that keep data resident are never given
    // up (the bound is for layouts that reload).
    let going = |done: &[StreamCost]| {
        let mut costs = done.to_vec();
        reprice(&mut costs, hw);
        let going = resident_bits(&costs) > 0 || dynamic_pj(&costs, hw) <= bound_pj;
        if !going {
            *judged.lock().expect("not poisoned") = costs;
        }
        going
    };
    let streams = match layout.strategy {
        Strategy::Const => const_streams(l, hw, n_img, None, false, opts, layer, Some(&going))?,
        Strategy::Stored => {
            stored_streams(l, hw, n_img, None, false, opts, layer, layout, Some(&going))?
        }
    };
    Ok(match streams {
        Some(s) => {
            // Kept: without the room its batches grew into.
            let mut costs = s.costs;
            costs.shrink_to_fit();
            Within::Whole(costs)
        }
        None => Within::LeftOut(judged.into_inner().expect("not poisoned")),
    })
}

/// A candidate costed against a bound ([`linear_within`]).
#[derive(Debug)]
pub(crate) enum Within {
    /// Its streams, all of them.
    Whole(Vec<StreamCost>),
    /// Left out: its first streams, whose dynamic energy exceeded the bound. Another
    /// point's prices judge them again: left out as well when they exceed its bound.
    LeftOut(Vec<StreamCost>),
}

/// The energy (pJ) of `costs`' actions and commands, as [`energies_of`] prices them: no
/// leakage, no deployment. It only grows as streams are added after them (every action
/// count and price is non-negative, and floating-point sums in the same order are
/// monotone), so the dynamic energy of a candidate's first streams bounds its score from
/// below under the energy objective.
pub(crate) fn dynamic_pj(costs: &[StreamCost], hw: &Hw) -> f64 {
    let (actions, _) = with_commands(&stream_sums(costs, hw.lanes()), hw);
    energy::energy(&actions, &hw.table, Pricing::ByZeros).total_pj()
}

/// The bits a candidate's streams keep resident (written at deployment).
pub(crate) fn resident_bits(costs: &[StreamCost]) -> u64 {
    costs.iter().map(|c| c.deploy.written_bits * c.repeat).sum()
}

/// Whether to go on costing a candidate, given its streams so far (None: to the end).
pub(crate) type Going<'a> = Option<&'a (dyn Fn(&[StreamCost]) -> bool + Sync)>;

/// A candidate's streams, or `None` when it was given up ([`Going`]).
type MaybeStreams = Result<Option<Costed>, MapError>;

/// `each` of `items` (each a program's streams), in order: all at once in parallel, or
/// with `going`, in batches of 4, 4, 4, 4, 4, 5, 6, 7, 9, … items (a quarter of those so
/// far, at least 4), each batch in parallel, while `going` holds for `before`'s streams
/// and those so far. `None` once it stops holding before the last item.
fn in_batches<I: Sync>(
    items: &[I],
    each: impl Fn(usize, &I) -> Streams + Sync,
    going: Going<'_>,
    before: &[StreamCost],
) -> MaybeStreams {
    let mut done = Costed::default();
    // `before` and the streams so far, what `going` judges (kept only with `going`).
    let mut so_far: Vec<StreamCost> = going.map_or_else(Vec::new, |_| before.to_vec());
    let mut at = 0;
    let mut batch = if going.is_some() { 4 } else { items.len() };
    while at < items.len() {
        let end = (at + batch).min(items.len());
        let streams: Vec<Streams> = items[at..end]
            .par_iter()
            .enumerate()
            .map(|(k, item)| each(at + k, item))
            .collect();
        let new = done.costs.len();
        flatten_into(streams, &mut done)?;
        if let Some(going) = going.filter(|_| end < items.len()) {
            so_far.extend_from_slice(&done.costs[new..]);
            if !going(&so_far) {
                return Ok(None);
            }
        }
        // A batch of a quarter of the items so far (at least 4): a candidate is left out
        // at most max(4, a quarter of the items so far) items past the one where it passes
        // the bound, and the judging (which reprices every stream so far) stays linear in
        // the items.
        (at, batch) = (end, (end / 4).max(4));
    }
    Ok(Some(done))
}

/// The streams of a linear layer by the `const` strategy: lanes are (image, position),
/// one program per set of output channels, as many as fit beside the inputs. With `going`,
/// the sets are costed a batch at a time while it holds ([`in_batches`]).
#[allow(clippy::too_many_arguments)]
fn const_streams(
    l: &Linear<'_>,
    hw: &Hw,
    n_img: usize,
    x: Option<&[Array3<i64>]>,
    generate: bool,
    opts: &RunOptions,
    layer: usize,
    going: Going<'_>,
) -> MaybeStreams {
    let p_n = l.positions();
    let c_out = l.channels();
    let per = hw.lanes();
    let set = hw.set;
    let stream_of = |k: usize| ((layer as u64) << 32) | k as u64;
    let a_bits = l.x.bits as usize;
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
    let key = |chs: &Range<usize>, from| PlanKey {
        pass: 3,
        slices: (1, l.reduction()),
        resident: false,
        channels: chs.clone(),
        set,
        cols: hw.cols(),
        from,
    };
    let job = |chs: &Range<usize>| {
        let chs = chs.clone();
        move |chunk, within| linear::const_job_within(set, l, chs.clone(), chunk, true, within)
    };
    // The first set's chunk is where every other set's search starts.
    let first = fitted_once(
        l,
        hw,
        key(&sets[0], None),
        (l.reduction(), a_bits),
        job(&sets[0]),
    );
    let (chunk0, _) = fit_of(&first)?;
    // Functional: the input images padded once for every block's loads.
    let padded = x.map(|x| l.padded(x));
    let set_streams = |s: usize, chs: &Range<usize>| -> Streams {
        let fit = fitted_once(l, hw, key(chs, Some(chunk0)), (0, 0), job(chs));
        let (chunk, plan) = fit_of(&fit)?;
        let real = if generate {
            Some(realize(
                plan,
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
                // Per lane (functional): where it reads its input's taps
                // (`Padded::base`), from its image and output position.
                let at: Vec<usize> = match &padded {
                    Some(xp) => blk
                        .clone()
                        .map(|g| {
                            let (img, oy, ox) = l.place(g, p_n);
                            xp.base(img, oy, ox)
                        })
                        .collect(),
                    None => Vec::new(),
                };
                let loader = |src: Source, out: &mut [i64]| match src {
                    Source::X(r) => {
                        let xp = padded.as_ref().expect("functional");
                        let tap = xp.tap(l.tap(chs.start, r));
                        for (o, &base) in out.iter_mut().zip(&at) {
                            *o = xp.get(base + tap);
                        }
                    }
                    _ => unreachable!("const jobs load inputs only"),
                };
                let (mut cost, sa) = run_job(
                    real.as_ref().unwrap_or(plan),
                    real.as_ref(),
                    blk.len(),
                    hw,
                    opts,
                    stream_of(s * lane_blocks.len() + bi),
                    x.is_some().then_some(&loader as Loader<'_>),
                    true,
                    // Every lane is another (image, position): its own inputs, which
                    // the sets of one conv group share (multicast: they cross the bus
                    // with the group's first set).
                    &|_| {
                        let group = |c: usize| c / per_group;
                        let first = s == 0 || group(sets[s - 1].start) != group(chs.start);
                        if first { blk.len() as u64 } else { 0 }
                    },
                );
                // One broadcast stream per set.
                if bi > 0 {
                    cost.share_program();
                }
                cost.repeat = repeat;
                cost.place = Place {
                    program: s,
                    channels: chs.clone(),
                    lanes: blk.clone(),
                    chunk,
                    wave_lanes: 0,
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
            .unzip::<_, _, Vec<_>, Vec<_>>()
            .into())
    };
    in_batches(&sets, set_streams, going, &[])
}

/// The streams of a linear layer by the `stored` strategy: lanes are (channel, image,
/// position), channel-major, and blocks holding the same channels share one program (one
/// program for all of them when `layout.shared`). With `layout.slices` = s > 1 the
/// reduction is split in space: a first pass computes each slice's partial sum on lanes
/// (channel, image, position, slice), and a reducer pass adds a lane's s partial sums, moved
/// in from the slices' lanes, and requantizes (docs/model.md §2.2).
#[allow(clippy::too_many_arguments)]
fn stored_streams(
    l: &Linear<'_>,
    hw: &Hw,
    n_img: usize,
    x: Option<&[Array3<i64>]>,
    generate: bool,
    opts: &RunOptions,
    layer: usize,
    layout: Layout,
    going: Going<'_>,
) -> MaybeStreams {
    let s = layout.slices.clamp(1, l.reduction().max(1));
    let per_img = n_img * l.positions();
    // Output values by (channel, image and position).
    let order = Order::new(l, n_img, 1, layout.copies);
    let outputs = |mut streams: Costed| {
        // Counted only, no stream has outputs to renumber.
        if x.is_some() {
            for vals in &mut streams.placed {
                for (_, g, _) in vals.iter_mut() {
                    *g = order.decode(*g).1;
                }
            }
        }
        streams
    };
    let pass = |p: &Pass<'_>, partials: Option<&[i64]>, base: usize, before: &[StreamCost]| {
        stored_pass(
            l,
            hw,
            n_img,
            (x, partials),
            generate,
            opts,
            layer,
            layout,
            p,
            base,
            (going, before),
        )
    };
    if s == 1 {
        return Ok(pass(&Pass::Whole, None, 0, &[])?.map(outputs));
    }
    let ranges = slice_ranges(l, s);
    // Every channel's partial-sum interval per slice, for both passes.
    let table = l.partial_table_of(&ranges);
    let Some(first) = pass(&Pass::Slices(&ranges, &table), None, 0, &[])? else {
        return Ok(None);
    };
    // The partial sums by slice lane (functional mode).
    let partials: Option<Vec<i64>> = x.map(|_| {
        // Slice lane g·s + k holds reducer lane g's slice k, in either lane order.
        let mut p = vec![0; l.channels() * per_img * ranges.len()];
        for &(_, g, v) in first.placed.iter().flatten() {
            p[g] = v;
        }
        p
    });
    let base = first
        .costs
        .iter()
        .map(|c| c.place.program + 1)
        .max()
        .unwrap_or(0);
    let before: Vec<StreamCost> = match going {
        Some(_) => first.costs.clone(),
        None => Vec::new(),
    };
    let Some(second) = pass(
        &Pass::Reduce(&ranges, &table),
        partials.as_deref(),
        base,
        &before,
    )?
    else {
        return Ok(None);
    };
    // The slice pass's streams place no outputs; the reducer's follow them.
    let mut all = first;
    for placed in &mut all.placed {
        *placed = Vec::new();
    }
    let second = outputs(second);
    // Exactly: a candidate's streams are kept, and so would be any room to spare.
    all.costs.reserve_exact(second.costs.len());
    all.placed.reserve_exact(second.placed.len());
    all.costs.extend(second.costs);
    all.placed.extend(second.placed);
    Ok(Some(all))
}

/// A reduction cut into `s` slices of ⌈reduction / s⌉ inputs (the last may be shorter).
fn slice_ranges(l: &Linear<'_>, s: usize) -> Vec<Range<usize>> {
    chunks(l.reduction(), l.reduction().div_ceil(s))
}

/// The generated first program of a linear layer's `layout`, on channels `chs` with
/// `chunk` inputs per segment (as [`layer_costs`] placed it): a `const` set's, or a stored
/// layer's first pass (whole, or its slices' partial sums), every channel's when shared.
pub(crate) fn first_program(
    l: &Linear<'_>,
    layout: Layout,
    chs: Range<usize>,
    chunk: usize,
    set: crate::model::kernels::GateSet,
) -> Result<linear::Job, MapError> {
    if layout.strategy == Strategy::Const {
        return linear::const_job(set, l, chs, chunk, false);
    }
    let channels: Vec<usize> = if layout.shared {
        (0..l.channels()).collect()
    } else {
        chs.collect()
    };
    let s = layout.slices.clamp(1, l.reduction().max(1));
    let ranges = slice_ranges(l, s);
    let table = if s > 1 {
        l.partial_table_of(&ranges)
    } else {
        Default::default()
    };
    let spec = StoredSpec {
        channels: &channels,
        ranges: &ranges,
        partial: s > 1,
        partials: &table,
        resident: layout.resident,
    };
    linear::stored_job(set, l, &spec, chunk, false)
}

/// The columns of each subarray that may hold resident data: half of them (an assumption
/// of docs/model.md §2.7: the other half stays working space for whatever layer runs
/// there).
pub(crate) fn resident_cols(hw: &Hw) -> usize {
    hw.cols() / 2
}

/// One pass of a stored layer over its lanes; a split reduction's passes carry its slices
/// and every channel's partial-sum interval per slice ([`linear::partial_table`]).
enum Pass<'r> {
    /// Outputs, the reduction whole.
    Whole,
    /// Each slice's partial sum (lanes: channel, image, position, slice).
    Slices(&'r [Range<usize>], &'r Intervals),
    /// Outputs from the slices' partial sums.
    Reduce(&'r [Range<usize>], &'r Intervals),
}

/// Per channel, an interval per slice.
type Intervals = linear::PartialTable;

/// Which output a stored pass's lane g computes: (channel, round, slice), a round being an
/// (image, output position) (docs/model.md §2.2).
///
/// * `copies` 0 — a lane per output, channel-major: g = (co · rounds + t) · s + slice, so a
///   subarray holds few channels, each lane its own copy of its weights.
/// * `copies` R ≥ 1 — round-major: g = (t · c_out + co) · s + slice, in waves of R rounds
///   (R · c_out · s lanes, cut into subarray blocks); wave w's block b runs on the same
///   subarray as wave 0's block b, after it, so only wave 0 writes resident weights.
#[derive(Debug, Clone, Copy)]
struct Order {
    s: usize,
    c_out: usize,
    rounds: usize,
    copies: usize,
}

impl Order {
    fn new(l: &Linear<'_>, n_img: usize, s: usize, copies: usize) -> Order {
        Order {
            s,
            c_out: l.channels(),
            rounds: n_img * l.positions(),
            copies,
        }
    }

    /// (channel, round, slice) of lane g.
    fn decode(&self, g: usize) -> (usize, usize, usize) {
        let s = self.s;
        if self.copies == 0 {
            let per_ch = self.rounds * s;
            (g / per_ch, g % per_ch / s, g % s)
        } else {
            let per_round = self.c_out * s;
            (g % per_round / s, g / per_round, g % s)
        }
    }

    /// Lanes of one round.
    fn round_lanes(&self) -> usize {
        self.c_out * self.s
    }

    /// Lanes of one wave (0 for a lane per output).
    fn wave_lanes(&self) -> usize {
        self.copies * self.round_lanes()
    }

    /// The lane blocks of a lane per output, `per` lanes to a subarray.
    fn blocks(&self, per: usize) -> Vec<Range<usize>> {
        blocks(self.c_out * self.rounds * self.s, per)
    }

    /// Lane blocks of the pass, `per` lanes to a subarray.
    fn n_blocks(&self, per: usize) -> usize {
        if self.copies == 0 {
            (self.c_out * self.rounds * self.s).div_ceil(per)
        } else {
            self.wave_blocks(per).2
        }
    }

    /// Round-major: blocks per full wave, full waves, and the blocks of all of them and of
    /// a shorter last wave. No block spans two waves.
    fn wave_blocks(&self, per: usize) -> (usize, usize, usize) {
        let wave = self.wave_lanes();
        let b = wave.div_ceil(per);
        let full = self.rounds / self.copies;
        let last = (self.rounds % self.copies * self.round_lanes()).div_ceil(per);
        (b, full, b * full + last)
    }

    /// Round-major: lane block k (computed, not stored: a layout of one copy over many
    /// images has a block per wave).
    fn block(&self, k: usize, per: usize) -> Range<usize> {
        let wave = self.wave_lanes();
        let (b, _, _) = self.wave_blocks(per);
        let total = self.c_out * self.rounds * self.s;
        let (w, j) = (k / b, k % b);
        let start = w * wave + j * per;
        start..(start + per).min((w + 1) * wave).min(total)
    }

    /// Round-major: the blocks that run, as (block index, blocks it stands for, whether it
    /// writes the resident data): with values (`every`), each block (wave 0's writing);
    /// counted only, wave 0's blocks, the same blocks of the other full waves as one entry
    /// each, and the last wave's blocks when it is shorter.
    fn wave_runs(&self, per: usize, every: bool) -> Vec<(usize, u64, bool)> {
        let (b, full, n) = self.wave_blocks(per);
        if every {
            return (0..n).map(|k| (k, 1, k < b)).collect();
        }
        let mut out: Vec<(usize, u64, bool)> = (0..b.min(n)).map(|k| (k, 1, true)).collect();
        if full > 1 {
            out.extend((0..b).map(|k| (b + k, full as u64 - 1, false)));
        }
        out.extend((full.max(1) * b..n).map(|k| (k, 1, false)));
        out
    }
}

/// The streams of one [`Pass`]: `x` the inputs and the slices' partial sums by slice lane
/// (functional mode); programs are numbered from `base`. Its output values are (channel,
/// lane of the pass, value): output codes, or a slice pass's partial sums.
#[allow(clippy::too_many_arguments)]
fn stored_pass(
    l: &Linear<'_>,
    hw: &Hw,
    n_img: usize,
    (x, partials): (Option<&[Array3<i64>]>, Option<&[i64]>),
    generate: bool,
    opts: &RunOptions,
    layer: usize,
    layout: Layout,
    pass: &Pass<'_>,
    base: usize,
    (going, before): (Going<'_>, &[StreamCost]),
) -> MaybeStreams {
    let p_n = l.positions();
    let c_out = l.channels();
    let per = hw.lanes();
    let set = hw.set;
    let a_bits = l.x.bits as usize;
    #[allow(clippy::single_range_in_vec_init)] // one range: the whole reduction
    let whole = [0..l.reduction()];
    let none = Intervals::default();
    let (ranges, s, table): (&[Range<usize>], usize, &Intervals) = match pass {
        Pass::Whole => (&whole, 1, &none),
        Pass::Slices(r, t) => (r, r.len(), t),
        Pass::Reduce(r, t) => (r, 1, t),
    };
    let order = Order::new(l, n_img, s, layout.copies);
    // Functional: the input images padded once for every block's loads (not for a
    // reducer, which loads partial sums).
    let padded = x
        .filter(|_| !matches!(pass, Pass::Reduce(..)))
        .map(|x| l.padded(x));
    // Stream numbers (fault streams) after the slice pass's.
    let offset = match pass {
        Pass::Reduce(r, _) => Order::new(l, n_img, r.len(), layout.copies).n_blocks(per),
        Pass::Whole | Pass::Slices(..) => 0,
    };
    let stream_of = |k: usize| ((layer as u64) << 32) | (offset + k) as u64;
    // Lane = (co, image, p[, slice]), channel-major so a subarray holds few channels;
    // blocks holding the same channels share one program. Round-major (copies), one
    // shared program serves every block.
    let per_ch = n_img * p_n * s;
    let wbits = l.weight_coding().bits as usize;
    let lane_blocks = if layout.copies > 0 {
        Vec::new()
    } else {
        order.blocks(per)
    };
    let block = |k: usize| {
        if layout.copies > 0 {
            order.block(k, per)
        } else {
            lane_blocks[k].clone()
        }
    };
    let mut groups: Vec<(Range<usize>, Vec<usize>)> = Vec::new();
    if layout.copies > 0 {
        // One group, its first block 0 (the runs come from `Order::wave_runs`).
        groups.push((0..c_out, vec![0]));
    } else {
        for (k, blk) in lane_blocks.iter().enumerate() {
            let chs = blk.start / per_ch..(blk.end - 1) / per_ch + 1;
            match groups.last_mut() {
                Some((c, ks)) if *c == chs => ks.push(k),
                _ => groups.push((chs, vec![k])),
            }
        }
    }
    // A group of several blocks lies inside one channel (a block spanning two channels is
    // followed by one starting in the second), so its blocks differ only in length: what
    // the analytical repeat count assumes, distinct loads included.
    debug_assert!(layout.copies > 0 || groups.iter().all(|(c, ks)| ks.len() == 1 || c.len() == 1));
    let all: Vec<usize> = (0..c_out).collect();
    let program_channels = |chs: &Range<usize>| -> Vec<usize> {
        if layout.shared {
            all.clone()
        } else {
            chs.clone().collect()
        }
    };
    // The partial sums' intervals per slice over a program's channels.
    let parts = |channels: &[usize]| table.slice_unions(channels);
    // A counting job may be given up once its columns pass `within` (`fitted_within`).
    let make = |channels: &[usize], chunk: usize, counting: bool, within| match pass {
        Pass::Whole | Pass::Slices(..) => {
            let spec = StoredSpec {
                channels,
                ranges,
                partial: matches!(pass, Pass::Slices(..)),
                partials: table,
                resident: layout.resident,
            };
            linear::stored_job_with(set, l, &spec, chunk, counting, true, within)
                .map(|(job, _)| job)
        }
        Pass::Reduce(..) => {
            let parts = parts(channels);
            linear::reduce_job(set, l, channels, &parts, chunk, layout.resident, counting)
        }
    };
    let (len, per_r) = match pass {
        Pass::Whole | Pass::Slices(..) => (ranges[0].len(), a_bits + wbits),
        Pass::Reduce(r, _) => (r.len(), 32),
    };
    // Resident data may take at most the subarray's resident share of the columns: the
    // weights alone tell before any program is built.
    let budget = resident_cols(hw);
    let weight_cols = match pass {
        Pass::Whole | Pass::Slices(..) => len * wbits,
        Pass::Reduce(..) => 0,
    };
    if layout.resident && weight_cols > budget {
        return Err(MapError::ResidentColumns {
            needed: weight_cols,
            budget,
        });
    }
    // The first group's chunk is where every other group's search starts. Every fitted
    // program is kept in the layer's view (`LayerMemo`): candidates differing only in
    // copies share the first, and a sweep's subarray shapes share them all.
    let first = program_channels(&groups[0].0);
    let key = |channels: &[usize], from| PlanKey {
        pass: match pass {
            Pass::Whole => 0,
            Pass::Slices(..) => 1,
            Pass::Reduce(..) => 2,
        },
        slices: (ranges.len(), ranges[0].len()),
        resident: layout.resident,
        channels: channels[0]..channels[channels.len() - 1] + 1,
        set,
        cols: hw.cols(),
        from,
    };
    let fit = fitted_once(l, hw, key(&first, None), (len, per_r), |chunk, within| {
        make(&first, chunk, true, within)
    });
    let (chunk0, plan0) = fit_of(&fit)?;
    if plan0.resident_bits_per_lane() as usize > budget {
        return Err(MapError::ResidentColumns {
            needed: plan0.resident_bits_per_lane() as usize,
            budget,
        });
    }
    // One program for every group when shared: the first group's, whose channels are
    // all of them, generated once.
    let shared_job = if layout.shared {
        let real = if generate {
            Some(realize(plan0, make(&all, chunk0, false, None), hw)?)
        } else {
            None
        };
        Some((chunk0, plan0, real))
    } else {
        None
    };
    let group_streams = |gi: usize, (chs, ks): &(Range<usize>, Vec<usize>)| -> Streams {
        let channels = program_channels(chs);
        let (own, own_real);
        let (chunk, plan, real) = match &shared_job {
            Some((c, p, r)) => (*c, *p, r.as_ref()),
            None => {
                own = fitted_once(
                    l,
                    hw,
                    key(&channels, Some(chunk0)),
                    (0, 0),
                    |chunk, within| make(&channels, chunk, true, within),
                );
                let (chunk, plan) = fit_of(&own)?;
                let real = if generate {
                    Some(realize(plan, make(&channels, chunk, false, None), hw)?)
                } else {
                    None
                };
                own_real = real;
                (chunk, plan, own_real.as_ref())
            }
        };
        // Per-channel constants, once per group (the K load keeps their low bits), for the
        // loads of a functional run.
        let (mults, ks_c): (Vec<i128>, Vec<i128>) = match x {
            Some(_) => (
                l.common_mult(&channels).1,
                channels.iter().map(|&c| l.lane_constant(c)).collect(),
            ),
            None => Default::default(),
        };
        let runs: Vec<(usize, u64, bool)> = if layout.copies > 0 {
            order.wave_runs(per, x.is_some())
        } else {
            block_runs(&lane_blocks, ks, x.is_some())
                .into_iter()
                .map(|(k, r)| (k, r, true))
                .collect()
        };
        let wave = order.wave_lanes();
        let per_wave = if layout.copies > 0 {
            order.wave_blocks(per).0.max(1)
        } else {
            1
        };
        Ok(runs
            .par_iter()
            .map(|&(k, repeat, deploys)| {
                let blk = &block(k);
                // Per lane (functional): its channel, its slice, and where it reads its
                // input's taps (`Padded::base`; 0 for a reducer, which loads none).
                let at: Vec<(usize, usize, usize)> = match x {
                    Some(_) => blk
                        .clone()
                        .map(|g| {
                            let (co, t, slice) = order.decode(g);
                            let base = padded.as_ref().map_or(0, |xp| {
                                let (img, oy, ox) = l.place(t, p_n);
                                xp.base(img, oy, ox)
                            });
                            (co, slice, base)
                        })
                        .collect(),
                    None => Vec::new(),
                };
                let loader = |src: Source, out: &mut [i64]| {
                    let lanes = out.iter_mut().zip(&at);
                    // Neighbouring lanes mostly share a channel: its weight row and (per
                    // slice) the input's tap are looked up when it changes.
                    let mut at_co = usize::MAX;
                    if let Source::X(j) = src {
                        // The hot load. Per slice, the tap's offset, or None past a
                        // shorter slice's end (a product of 0).
                        let xp = padded.as_ref().expect("functional");
                        let mut taps: Vec<Option<usize>> = vec![None; ranges.len()];
                        let past = l.x_past_end();
                        for (o, &(co, slice, base)) in lanes {
                            if at_co != co {
                                at_co = co;
                                for (t, r) in taps.iter_mut().zip(ranges) {
                                    *t = (r.start + j < r.end)
                                        .then(|| xp.tap(l.tap(co, r.start + j)));
                                }
                            }
                            *o = taps[slice].map_or(past, |t| xp.get(base + t));
                        }
                        return;
                    }
                    if let Source::W(j) = src {
                        // A weight depends on the lane's channel and slice alone: per
                        // channel, each slice's (0 past a shorter slice's end).
                        let mut ws = vec![0; ranges.len()];
                        for (o, &(co, slice, _)) in lanes {
                            if at_co != co {
                                at_co = co;
                                let row = l.row(co);
                                for (w, r) in ws.iter_mut().zip(ranges) {
                                    *w = if r.start + j < r.end {
                                        i64::from(row[r.start + j])
                                    } else {
                                        0
                                    };
                                }
                            }
                            *o = ws[slice];
                        }
                        return;
                    }
                    for ((o, &(co, _, _)), g) in lanes.zip(blk.clone()) {
                        let ci = co - channels[0];
                        *o = match src {
                            Source::X(_) | Source::W(_) => unreachable!("loaded above"),
                            Source::K => ks_c[ci] as i64,
                            Source::M => mults[ci] as i64,
                            Source::MPos => i64::from(mults[ci] > 0),
                            Source::Partial(t) => {
                                partials.expect("functional")[g * ranges.len() + t]
                            }
                        };
                    }
                };
                // Multicast: lanes of one conv group at one (image, position, slice)
                // share their inputs, a (channel, slice)'s lanes its weights, a
                // channel's lanes its constants. Round-major, the copies of a wave
                // share its first round's weights and constants.
                let round = order.round_lanes();
                let distinct = |src: SourceKind| match (src, layout.copies) {
                    (SourceKind::Partial, _) => blk.len() as u64,
                    (SourceKind::X, 0) => first_lanes(blk, per_ch * c_out / l.groups, per_ch),
                    (SourceKind::W, 0) => first_lanes(blk, per_ch, s),
                    (SourceKind::K | SourceKind::M | SourceKind::MPos, 0) => {
                        first_lanes(blk, per_ch, 1)
                    }
                    (SourceKind::X, _) => first_lanes(blk, round / l.groups, s),
                    (SourceKind::W | SourceKind::K | SourceKind::M | SourceKind::MPos, _) => {
                        first_lanes(blk, wave, round)
                    }
                };
                let (mut cost, sa) = run_job(
                    real.unwrap_or(plan),
                    real,
                    blk.len(),
                    hw,
                    opts,
                    stream_of(k),
                    x.is_some().then_some(&loader as Loader<'_>),
                    true,
                    &distinct,
                );
                // The group's blocks run one program, broadcast (and so do all the
                // groups' blocks when the program is shared). Waves run one after
                // another, so each wave issues it again, with its first block.
                let shares = if layout.copies > 0 {
                    k % per_wave != 0
                } else {
                    k != ks[0] || (layout.shared && gi > 0)
                };
                if shares {
                    cost.share_program();
                }
                // A later wave finds the resident data where wave 0 wrote them, on the
                // subarrays wave 0 took.
                if !deploys {
                    cost.deploy = Default::default();
                    cost.new_subarrays = false;
                }
                cost.repeat = repeat;
                cost.pass = usize::from(matches!(pass, Pass::Reduce(..)));
                cost.place = Place {
                    program: base + if layout.shared { 0 } else { gi },
                    channels: if layout.shared { 0..c_out } else { chs.clone() },
                    lanes: blk.clone(),
                    chunk,
                    wave_lanes: wave,
                };
                let mut vals = Vec::new();
                if let (Some(sa), Some(job)) = (sa, real) {
                    for (lane, v) in load_lanes(&sa, &job.outputs[0], blk.len())
                        .into_iter()
                        .enumerate()
                    {
                        let g = blk.start + lane;
                        vals.push((order.decode(g).0, g, job.out.decode(v)));
                    }
                }
                (cost, vals)
            })
            .unzip::<_, _, Vec<_>, Vec<_>>()
            .into())
    };
    in_batches(&groups, group_streams, going, before)
}

/// The fitted program `key` names (its chunk and counted job, or why none fits), built by
/// `make(chunk, within)` ([`fitted_within`]) once per layer view and key
/// ([`linear::LayerMemo`]): searched from `key.from`, or from [`fitted`]'s first guess for
/// `reduction` inputs of `per_r` bits.
fn fitted_once(
    l: &Linear<'_>,
    hw: &Hw,
    key: PlanKey,
    (reduction, per_r): (usize, usize),
    make: impl FnMut(usize, Option<usize>) -> Result<linear::Job, MapError>,
) -> Arc<Result<(usize, linear::Job), MapError>> {
    let from = key.from;
    l.memo()
        .plans
        .get_or_build(key, || {
            let first = from.unwrap_or_else(|| first_chunk(hw, reduction, per_r));
            let fit = fitted_within(hw, first, make);
            Ok(fit.map(|(chunk, job)| (chunk, job.priced_only())))
        })
        .expect("a fit always builds")
}

/// A [`fitted_once`] program's chunk and job, or why none fits.
fn fit_of(fit: &Result<(usize, linear::Job), MapError>) -> Result<(usize, &linear::Job), MapError> {
    fit.as_ref().map(|(c, j)| (*c, j)).map_err(Clone::clone)
}

/// How many lanes of block `blk` are the first of their kind, lanes being numbered
/// `period`-major: the lanes g whose offset in their run of `period` lanes is below
/// `first`. A value the lanes of one kind share crosses the bus with the first of them
/// (docs/model.md §2.6): with g = (channel, position, slice) and `period` = a conv group's
/// lanes, `first` = one channel's lanes counts each input vector once; with `period` = a
/// channel's lanes, `first` = the slices counts each (channel, slice)'s weights once, and
/// `first` = 1 each channel's constants once.
pub(crate) fn first_lanes(blk: &Range<usize>, period: usize, first: usize) -> u64 {
    let period = period.max(1);
    let (a, b) = (blk.start / period, (blk.end - 1) / period);
    (a..=b)
        .map(|k| {
            let lo = blk.start.max(k * period);
            let hi = blk.end.min(k * period + first.min(period));
            hi.saturating_sub(lo) as u64
        })
        .sum()
}

/// Appends the streams of every program in order to `all`, or gives the first program's
/// error. Room for all of them is made first: growing `all` as it fills would copy (and
/// fault in) every stream again at each doubling; and one program's streams, the first,
/// are taken as they are.
pub(crate) fn flatten_into(per_program: Vec<Streams>, all: &mut Costed) -> Result<(), MapError> {
    let mut per_program = per_program.into_iter().collect::<Result<Vec<_>, _>>()?;
    if all.costs.is_empty() && per_program.len() == 1 {
        *all = per_program.pop().expect("one program");
        return Ok(());
    }
    let n: usize = per_program.iter().map(|p| p.costs.len()).sum();
    all.costs.reserve(n);
    all.placed.reserve(n);
    for streams in per_program {
        all.costs.extend(streams.costs);
        all.placed.extend(streams.placed);
    }
    Ok(())
}

/// Gives a lane's operand: (source, image, output channel, output position) → code.
pub(crate) type Gather<'a> = &'a (dyn Fn(Source, usize, usize, usize) -> i64 + Sync);

/// Runs (functional) or counts element-wise parts: lane = (image, channel, position) of each
/// part's channels, one broadcast program per part. Counted with `realize`, the streams
/// report the copies their programs made, as execution does. `charge_loads` is false for
/// programs that run in place on their producer's output columns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn elem_layer(
    parts: &[Part],
    hw: &Hw,
    n_img: usize,
    out: cram_workloads::Shape,
    (gather, realize): (Option<Gather<'_>>, bool),
    opts: &RunOptions,
    stream: u64,
    charge_loads: bool,
) -> LayerOut {
    let p_all = out.h * out.w;
    // Positions a part's lanes cover per channel.
    let p_of = |part: &Part| part.positions.as_ref().map_or(p_all, Vec::len);
    // (part, block index, lanes, how many blocks it stands for, stream number)
    let mut tasks: Vec<(usize, usize, Range<usize>, u64, usize)> = Vec::new();
    let mut streams = 0;
    for (pi, part) in parts.iter().enumerate() {
        let total = n_img * part.channels.len() * p_of(part);
        let bs = blocks(total, hw.lanes());
        let all: Vec<usize> = (0..bs.len()).collect();
        for (bi, repeat) in block_runs(&bs, &all, gather.is_some()) {
            tasks.push((pi, bi, bs[bi].clone(), repeat, streams + bi));
        }
        streams += bs.len();
    }
    let (costs, placed): (Vec<StreamCost>, Vec<Placed>) = tasks
        .par_iter()
        .map(|(pi, bi, blk, repeat, k)| {
            let part = &parts[*pi];
            let n_c = part.channels.len();
            let p_n = p_of(part);
            // Lane g of the part: image-major, then channel, then position.
            let place = |g: usize| {
                let (img, rest) = (g / (n_c * p_n), g % (n_c * p_n));
                let p = rest % p_n;
                let p = part.positions.as_ref().map_or(p, |at| at[p]);
                (img, part.channels.start + rest / p_n, p)
            };
            // Per lane: its image, channel and position (functional).
            let at: Vec<(usize, usize, usize)> = match gather {
                Some(_) => blk.clone().map(place).collect(),
                None => Vec::new(),
            };
            let loader = |src: Source, out: &mut [i64]| {
                let gather = gather.expect("functional");
                for (o, &(img, c, p)) in out.iter_mut().zip(&at) {
                    *o = gather(src, img, c, p);
                }
            };
            // Realized (priced as execution prices it) with values or when asked to.
            let (mut cost, sa) = run_job(
                &part.job,
                (gather.is_some() || realize).then_some(&part.job),
                blk.len(),
                hw,
                opts,
                stream | *k as u64,
                gather.is_some().then_some(&loader as Loader<'_>),
                charge_loads,
                // Every lane is another output element with its own operands.
                &|_| blk.len() as u64,
            );
            // One broadcast stream per part.
            if *bi > 0 {
                cost.share_program();
            }
            cost.repeat = *repeat;
            cost.place = Place {
                program: *pi,
                channels: part.channels.clone(),
                lanes: blk.clone(),
                chunk: 0,
                wave_lanes: 0,
            };
            let vals = sa.map_or(Vec::new(), |sa| {
                load_lanes(&sa, &part.job.outputs[0], blk.len())
                    .into_iter()
                    .enumerate()
                    .map(|(lane, v)| {
                        let (img, c, p) = place(blk.start + lane);
                        (c, img * p_all + p, part.job.out.decode(v))
                    })
                    .collect()
            });
            (cost, vals)
        })
        .unzip();
    let images = if gather.is_some() { n_img } else { 0 };
    let mut y: Vec<_> = (0..images)
        .map(|_| Array3::<i64>::zeros((out.c, out.h, out.w)))
        .collect();
    for (c, g, v) in placed.into_iter().flatten() {
        let (img, p) = (g / p_all, g % p_all);
        y[img][[c, p / out.w, p % out.w]] = v;
    }
    (costs, y)
}
