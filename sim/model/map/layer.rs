//! One layer on the chip: its candidate streams (a weighted layer by either strategy, an element-wise layer), chosen by the objective, and its report.

use super::*;
use crate::error::{Error, MapError};
use crate::model::bits::load_lanes;
use crate::model::energy::{self, Actions, Pricing};
use cram_workloads::golden::{self, Step};
use elem::Part;
use linear::Strategy;
use linear::{Linear, Source};
use ndarray::Array3;
use rayon::prelude::*;
use std::ops::Range;

/// A layer's costs, strategy and (functional mode) output codes; `candidates` collects
/// both strategies' (energy pJ, cycles) when the cost model chooses. `realize` (analytical
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
    mut candidates: Option<&mut Vec<(Strategy, f64, u64)>>,
) -> Result<(Vec<StreamCost>, Option<Strategy>, Vec<Array3<i64>>), MapError> {
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
            Step::MaxPool
            | Step::SumPool(_)
            | Step::Relu
            | Step::Relu6 { .. }
            | Step::Sign
            | Step::Add { .. }
            | Step::Concat(_)
            | Step::Downsample
            | Step::Attn(_) => {
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

pub(crate) fn report(
    name: String,
    op: &'static str,
    strategy: Option<Strategy>,
    costs: &[StreamCost],
    hw: &Hw,
) -> LayerReport {
    let mut actions = Actions::default();
    let (mut runs, mut lanes, mut steps, mut evals, mut loaded) = (0, 0, 0, 0, 0);
    let mut written = 0;
    let (mut flips, mut shared_copies) = (0, 0);
    let (mut work, mut longest, mut commands, mut cols) = (0u64, 0u64, 0u64, 0usize);
    let mut lane_cycles = 0u128;
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
        written += c.written_bits * k;
        flips += c.flips * k;
        shared_copies += c.shared_copies * k;
        work += c.cycles_per_run * c.runs * k;
        lane_cycles += u128::from(c.lanes) * u128::from(c.cycles_per_run) * u128::from(k);
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
    let chip_lanes = hw.org.lanes();
    // Every lane-gate evaluation holds its lane for at least the shortest gate step, and the
    // chip evaluates at most `chip_lanes` at once (docs/model.md §2.8).
    let bound_cycles = (u128::from(evals) * u128::from(hw.steps.gate_no_preset))
        .div_ceil(u128::from(chip_lanes.max(1))) as u64;
    let lane_cycles = u64::try_from(lane_cycles).unwrap_or(u64::MAX);
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
        written_bits: written,
        cycles,
        lane_cycles,
        chip_lane_utilization: ratio(lane_cycles as f64, chip_lanes as f64 * cycles as f64, 0.0),
        bound_cycles,
        mapping_efficiency: ratio(bound_cycles as f64, cycles as f64, 1.0),
        energy: energy::energy(&actions, &hw.table, Pricing::ByZeros),
        flips,
        shared_copies,
    }
}

pub(crate) type LayerOut = (Vec<StreamCost>, Vec<Array3<i64>>);

/// Gives the value a lane loads for an operand (functional mode).
pub(crate) type Loader<'a> = &'a (dyn Fn(Source, usize) -> i64 + Sync);

/// Output codes read back from a job: (channel, lane index within the layer, code).
pub(crate) type Placed = Vec<(usize, usize, i64)>;

/// The streams of one program (set or group), or why it could not be built.
pub(crate) type Streams = Result<Vec<(StreamCost, Placed)>, MapError>;

/// A Dense or Conv2d layer's streams, counted in closed form, or with `x` (input codes)
/// executed bit by bit; `realize` prices the counted streams with their generated programs
/// (as execution does, copies included) without executing them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_layer(
    l: &Linear<'_>,
    strategy: Strategy,
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
    let results = match strategy {
        Strategy::Const => const_streams(l, hw, n_img, x, generate, opts, layer)?,
        Strategy::Stored => stored_streams(l, hw, n_img, x, generate, opts, layer)?,
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

/// The streams of a linear layer by the `const` strategy: lanes are (image, position),
/// one program per set of output channels, as many as fit beside the inputs.
#[allow(clippy::too_many_arguments)]
fn const_streams(
    l: &Linear<'_>,
    hw: &Hw,
    n_img: usize,
    x: Option<&[Array3<i64>]>,
    generate: bool,
    opts: &RunOptions,
    layer: usize,
) -> Streams {
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
                            Source::X(r) => l.gather(&x.expect("functional")[img], chs.start, p, r),
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
                        // Every lane is another (image, position): its own inputs.
                        &|_| blk.len() as u64,
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
    flatten(per_set)
}

/// The streams of a linear layer by the `stored` strategy: lanes are (channel, image,
/// position), channel-major, and blocks holding the same channels share one program.
#[allow(clippy::too_many_arguments)]
fn stored_streams(
    l: &Linear<'_>,
    hw: &Hw,
    n_img: usize,
    x: Option<&[Array3<i64>]>,
    generate: bool,
    opts: &RunOptions,
    layer: usize,
) -> Streams {
    let p_n = l.positions();
    let c_out = l.channels();
    let per = hw.lanes();
    let set = hw.set;
    let stream_of = |k: usize| ((layer as u64) << 32) | k as u64;
    let a_bits = l.x.bits as usize;
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
    // A group of several blocks lies inside one channel (a block spanning two channels is
    // followed by one starting in the second), so its blocks differ only in length: what
    // the analytical repeat count assumes, distinct loads included.
    debug_assert!(groups.iter().all(|(c, ks)| ks.len() == 1 || c.len() == 1));
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
                            Source::X(r) => l.gather(&x.expect("functional")[img], co, p, r),
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
                        &|src: Source| match src {
                            Source::X(_) => stored_x_distinct(blk, per_img, c_out / l.groups),
                            Source::W(_) | Source::K | Source::M | Source::MPos => chs.len() as u64,
                        },
                    );
                    // The group's blocks run one program, broadcast.
                    if k != ks[0] {
                        cost.share_program();
                    }
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
    flatten(per_group)
}

/// The distinct input vectors a block of stored lanes loads: lanes are (channel, image,
/// position), channel-major, `per_img` = images × positions per channel; lanes of one
/// convolution group (`per_group` channels) at the same image and position read the same
/// inputs, so each group's lanes in the block load min(their number, `per_img`) distinct
/// vectors.
pub(crate) fn stored_x_distinct(blk: &Range<usize>, per_img: usize, per_group: usize) -> u64 {
    let group_lanes = per_group.max(1) * per_img;
    let (first, last) = (blk.start / group_lanes, (blk.end - 1) / group_lanes);
    (first..=last)
        .map(|g| {
            let lo = blk.start.max(g * group_lanes);
            let hi = blk.end.min((g + 1) * group_lanes);
            (hi - lo).min(per_img) as u64
        })
        .sum()
}

/// The streams of every program in order, or the first program's error.
pub(crate) fn flatten(per_program: Vec<Streams>) -> Streams {
    let mut all = Vec::new();
    for streams in per_program {
        all.extend(streams?);
    }
    Ok(all)
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
