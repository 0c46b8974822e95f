//! Networks on the chip: a run layer by layer, functional waves, the analytical plan cache, the memory estimate and the analytical = functional check.

use super::*;
use crate::error::{Error, MapError};
use crate::model::limits::MemoryEstimate;
use crate::model::memo::Memo;
use crate::model::timing::broadcast_cycles;
use cram_workloads::golden::{self, Step};
use linear::Linear;
use ndarray::Array3;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use timeline::Scheduler;

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
pub(crate) fn activation_bytes(prog: &golden::Program, images: usize) -> u64 {
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
    let layouts: Vec<Option<Layout>> = priced.layers.iter().map(|l| l.layout).collect();
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
        let run = run_layers(prog, &imgs, hw, &wave_opts, Some(&layouts), false)?;
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
/// evaluations, loaded (moved) and written bits, cycles, column utilization, lane-cycles and
/// lower bounds are equal, and so are the
/// preset, bus and function-unit energies (the rest differs only through the pulses' data-dependent zero
/// split), and the network's timelines (docs/model.md §2.11: the analytical run schedules
/// each equal block its streams stand for, the functional run each block it executed). A
/// layer whose functional programs had to copy a column read twice by one gate
/// is the exception the closed form cannot see: there the analytical run must be short
/// (fewer steps and evaluations). Returns how many such layers there were; the error names
/// the first layer that disagrees.
pub fn analytical_matches(f: &NetRun, a: &NetRun) -> Result<usize, MapError> {
    if f.layers.len() != a.layers.len() {
        return Err(MapError::Disagree(format!(
            "{} functional layers vs {} analytical",
            f.layers.len(),
            a.layers.len()
        )));
    }
    let mut with_copies = 0;
    for (lf, la) in f.layers.iter().zip(&a.layers) {
        if la.shared_copies != 0 {
            return Err(MapError::Disagree(format!(
                "layer {}: the closed form counted copies",
                la.name
            )));
        }
        if lf.shared_copies > 0 {
            if !(lf.gate_steps > la.gate_steps && lf.lane_gate_evals > la.lane_gate_evals) {
                return Err(MapError::Disagree(format!(
                    "layer {}: {} copies, yet {} vs {} steps",
                    lf.name, lf.shared_copies, lf.gate_steps, la.gate_steps
                )));
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
                (l.lane_gate_evals, l.lane_evals_by_gate),
                l.loaded_bits,
                l.written_bits,
                l.cycles,
                l.column_utilization,
                l.lane_cycles,
                l.bound_cycles,
                (
                    l.deployment.moved_bits,
                    l.deployment.written_bits,
                    l.deployment.cycles,
                ),
            )
        };
        if key(lf) != key(la) {
            return Err(MapError::Disagree(format!(
                "layer {}: functional (streams, runs, lanes, steps, evals, loaded bits, written \
                 bits, cycles, column use, lane-cycles, bound, deployment moved, written and \
                 cycles) {:?} vs analytical {:?}",
                lf.name,
                key(lf),
                key(la)
            )));
        }
        let (ef, ea) = (&lf.energy, &la.energy);
        if ef.presets_pj != ea.presets_pj
            || ef.bus_pj != ea.bus_pj
            || ef.function_unit_pj != ea.function_unit_pj
        {
            return Err(MapError::Disagree(format!(
                "layer {}: preset/bus/function-unit energy {} / {} / {} pJ functional vs {} / \
                 {} / {} pJ analytical",
                lf.name,
                ef.presets_pj,
                ef.bus_pj,
                ef.function_unit_pj,
                ea.presets_pj,
                ea.bus_pj,
                ea.function_unit_pj
            )));
        }
    }
    if with_copies == 0 && f.timeline != a.timeline {
        return Err(MapError::Disagree(format!(
            "timeline: functional {} cycles, spans {:?}, busy {:?} vs analytical {} cycles, \
             spans {:?}, busy {:?}",
            f.timeline.cycles,
            f.timeline.spans,
            f.timeline.busy,
            a.timeline.cycles,
            a.timeline.spans,
            a.timeline.busy
        )));
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
    // A reduction split over slices holds every slice lane's partial sum while its
    // reducer runs (the value read back, 24 bytes, and the partial sum, 8).
    let partials = planned
        .layers
        .iter()
        .filter(|l| l.layout.is_some_and(|l| l.slices > 1))
        .map(|l| l.lanes_used.saturating_mul(32))
        .max()
        .unwrap_or(0);
    MemoryEstimate {
        activations_bytes: activation_bytes(prog, images).saturating_add(partials),
        programs_bytes: steps.saturating_mul(op),
        cells_bytes: threads * (hw.lanes() * hw.cols()).div_ceil(8) as u64,
        advice: "run with --mode analytical, fewer images, or a larger --max-memory",
        ..Default::default()
    }
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

/// [`run_network`], with each weighted layer's layout forced to `layouts[i]` when given (a
/// functional wave runs the layouts chosen for all the images); `realize`
/// (analytical) prices each layer with its generated programs ([`layer_costs`]).
/// Otherwise the layouts are chosen for the whole network on the closed form
/// ([`plan_network`], [`choose`]): a functional run then executes them.
pub(crate) fn run_layers(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
    layouts: Option<&[Option<Layout>]>,
    realize: bool,
) -> Result<NetRun, Error> {
    state_fits(&prog.network().name, hw)?;
    if let Some(l) = layouts {
        let mut r = run_layers_once(prog, images, hw, opts, Some(l), realize)?;
        let held = r.deployment().written_bits;
        r.residency = Residency {
            wanted_bits: held,
            capacity_bits: resident_cells(hw),
            reserved_bits: hw.state_bits,
            chips: hw.chips,
            held_bits: held,
            reloading: r.reloading(),
            resident: held > 0,
        };
        return Ok(r);
    }
    let counted = RunOptions {
        mode: Mode::Analytical,
        ..*opts
    };
    let plans = plan_network(prog, images, hw, &counted, None)?;
    let chosen = choose(prog, &plans, hw, opts, images.len())?;
    if opts.mode == Mode::Analytical && !realize {
        return Ok(chosen);
    }
    let layouts: Vec<Option<Layout>> = chosen.layers.iter().map(|l| l.layout).collect();
    let mut r = run_layers_once(prog, images, hw, opts, Some(&layouts), realize)?;
    r.residency = chosen.residency;
    Ok(r)
}

/// Resident bits the chips hold: the resident share of every subarray's cells (§2.7).
pub fn resident_cells(hw: &Hw) -> u64 {
    hw.subarrays() * u64::from(hw.org.params.lanes_per_subarray) * resident_cols(hw) as u64
}

/// Resident bits left for the weights: the chips' resident share less the bits reserved
/// for the model's state ([`Hw::state_bits`]).
pub fn resident_capacity(hw: &Hw) -> u64 {
    resident_cells(hw).saturating_sub(hw.state_bits)
}

/// Bits a decode step's key and value caches hold (`Op::KvCache`, every entry, cached and
/// new, at its activation bits): what [`Hw::with_state`] reserves for a model run alone.
pub fn state_bits(prog: &golden::Program) -> u64 {
    let net = prog.network();
    (0..net.layers.len())
        .filter(|&i| matches!(net.layers[i].op, cram_workloads::net::Op::KvCache { .. }))
        .map(|i| {
            let s = prog.shape(i);
            (s.c * s.h * s.w) as u64 * u64::from(prog.act(i).bits)
        })
        .sum()
}

/// Refuses a run whose reserved state (a generation's key and value caches) alone does not
/// fit the chips' resident share.
pub fn state_fits(model: &str, hw: &Hw) -> Result<(), Error> {
    let cells = resident_cells(hw);
    if hw.state_bits > cells {
        let per_chip = (cells / hw.chips).max(1);
        return Err(Error::usage(format!(
            "{}: its key and value caches need {} resident bits; {} chip(s) hold {cells} \
             (half of every subarray's cells): set cram.chips = {} (each chip one more of \
             the array, joined by its chip link), or fewer tokens (workload.seq_len, \
             workload.decode_tokens, workload.cached_tokens)",
            model,
            hw.state_bits,
            hw.chips,
            hw.state_bits.div_ceil(per_chip)
        )));
    }
    Ok(())
}

/// One layer's candidate, priced on `hw`: its layout, costs, score and resident bits.
struct Priced {
    layout: Option<Layout>,
    costs: Arc<Candidate>,
    score: f64,
    bits: u64,
}

/// Picks one candidate per layer for the whole network (docs/model.md §2.7): each layer's
/// first of the cheapest under the objective, when the resident bits of those picks fit
/// the chips. Otherwise, from every layer's best layout that reloads (or, pinned resident,
/// its layout with the fewest resident bits), layers move to better layouts while the
/// resident bits still fit, the move with the most score gained per resident bit added
/// first, so that the layers that gain most from residency keep it. Pinned resident, a
/// network whose fewest resident bits do not fit is refused.
pub(crate) fn choose(
    prog: &golden::Program,
    plans: &[LayerPlan],
    hw: &Hw,
    opts: &RunOptions,
    images: usize,
) -> Result<NetRun, Error> {
    choose_with(prog, plans, hw, opts, images, true).map(|(run, _)| run)
}

/// [`choose`], leaving unrun (`floors`) the timelines of the candidates whose floor shows
/// they cannot be picked, or running every one; also gives how many timelines it left
/// unrun in the end (none when the resident bits do not fit, which needs every score).
pub(crate) fn choose_with(
    prog: &golden::Program,
    plans: &[LayerPlan],
    hw: &Hw,
    opts: &RunOptions,
    images: usize,
    floors: bool,
) -> Result<(NetRun, usize), Error> {
    let pin = opts.choice.resident;
    let scored = |c: &Arc<Candidate>| score_of(&opts.choice, c, c.sums(), hw, images).0;
    // The same from the energies its floor was made of (not priced again).
    let scored_from = |c: &Arc<Candidate>, floor: Option<Floor>| match floor {
        Some((_, energies)) => score_from(&opts.choice, c, c.sums(), energies, hw, images).0,
        None => scored(c),
    };
    // Each candidate priced on its own, in parallel; the order and so the choice do not
    // depend on the threads. Under the energy objective a
    // candidate whose floor (its score without the leakage, `score_floor`) exceeds the
    // score of the candidate with the lowest floor cannot be the first of the lowest: its
    // timeline is left unrun (an infinite score here), unless the resident bits of the
    // layers' first picks do not fit and every score is needed (below).
    let mut layers: Vec<Vec<Priced>> = plans
        .par_iter()
        .map(|p| {
            let several = p.options.len() > 1;
            // (Pinned reload, the plans hold no resident candidate.)
            let mut o: Vec<(Priced, Option<Floor>)> = p
                .options
                .par_iter()
                .map(|(s, costs)| {
                    let costs = repriced(costs, hw);
                    let floor = (several && floors)
                        .then(|| score_floor(&opts.choice, costs.sums(), hw, images))
                        .flatten();
                    let bits = costs.sums().resident_bits;
                    let priced = Priced {
                        layout: *s,
                        costs,
                        score: if several { f64::NAN } else { 0.0 },
                        bits,
                    };
                    (priced, floor)
                })
                .collect();
            if several {
                // Only finite floors and a finite reference score leave timelines unrun, so
                // that no NaN meets a skipped candidate in `first_min`.
                let lowest = o
                    .iter()
                    .map(|(_, f)| f.map(|f| f.0).filter(|f| f.is_finite()))
                    .collect::<Option<Vec<f64>>>()
                    .map(|fs| {
                        let k = (0..fs.len()).fold(0, |b, k| if fs[k] < fs[b] { k } else { b });
                        let s = scored_from(&o[k].0.costs, o[k].1);
                        o[k].0.score = s;
                        s
                    })
                    .filter(|s| s.is_finite());
                o.par_iter_mut()
                    .filter(|(c, _)| c.score.is_nan())
                    .for_each(|(c, floor)| {
                        c.score = match (*floor, lowest) {
                            (Some((f, _)), Some(s)) if f > s => f64::INFINITY,
                            _ => scored_from(&c.costs, *floor),
                        };
                    });
            }
            o.into_iter().map(|(c, _)| c).collect()
        })
        .collect();
    // The first of the lowest by `key` among a layer's candidates that `keep`.
    let first_min =
        |opts: &[Priced], keep: &dyn Fn(&Priced) -> bool, key: &dyn Fn(&Priced) -> (f64, f64)| {
            (0..opts.len())
                .filter(|&k| keep(&opts[k]))
                .fold(None, |b: Option<usize>, k| match b {
                    Some(b) if key(&opts[k]) >= key(&opts[b]) => Some(b),
                    _ => Some(k),
                })
        };
    let fewest_bits = |c: &Priced| (c.bits as f64, c.score);
    let capacity = resident_capacity(hw);
    let by_score = |o: &Priced| (o.score, 0.0);
    let preferred: Vec<usize> = layers
        .iter()
        // Every layer has a candidate (`fitting` fails when none fits).
        .map(|o| first_min(o, &|_| true, &by_score).unwrap_or(0))
        .collect();
    let total = |layers: &[Vec<Priced>], pick: &[usize]| -> u64 {
        pick.iter().zip(layers).map(|(&k, o)| o[k].bits).sum()
    };
    let wanted = total(&layers, &preferred);
    let mut pick = preferred;
    let mut unrun = layers
        .iter()
        .flatten()
        .filter(|c| c.score == f64::INFINITY)
        .count();
    if wanted > capacity {
        // Every candidate's score, the ones left unrun included.
        layers
            .par_iter_mut()
            .flat_map(|o| o.par_iter_mut())
            .filter(|c| c.score == f64::INFINITY)
            .for_each(|c| c.score = scored(&c.costs));
        unrun = 0;
        pick = layers
            .iter()
            .map(|o| {
                // A layer with no candidate that reloads (its layouts pinned resident)
                // starts from its fewest resident bits.
                let reload = (pin != Some(true))
                    .then(|| first_min(o, &|c| c.bits == 0, &by_score))
                    .flatten();
                reload
                    .or_else(|| first_min(o, &|_| true, &fewest_bits))
                    .unwrap_or(0)
            })
            .collect();
        let least = total(&layers, &pick);
        if least > capacity {
            let r = Residency {
                wanted_bits: least,
                capacity_bits: resident_cells(hw),
                reserved_bits: hw.state_bits,
                chips: hw.chips,
                held_bits: 0,
                reloading: 0,
                resident: false,
            };
            does_not_fit(prog, &r)?;
        }
        // Greedy moves to better candidates while the resident bits fit.
        let mut held = least;
        loop {
            let mut best: Option<(f64, usize, usize)> = None;
            for (i, o) in layers.iter().enumerate() {
                let cur = &o[pick[i]];
                for (k, c) in o.iter().enumerate() {
                    let gain = cur.score - c.score;
                    if gain <= 0.0 || held - cur.bits + c.bits > capacity {
                        continue;
                    }
                    let extra = c.bits as f64 - cur.bits as f64;
                    let merit = if extra <= 0.0 {
                        f64::INFINITY
                    } else {
                        gain / extra
                    };
                    if best.is_none_or(|b| merit > b.0) {
                        best = Some((merit, i, k));
                    }
                }
            }
            let Some((_, i, k)) = best else { break };
            held = held - layers[i][pick[i]].bits + layers[i][k].bits;
            pick[i] = k;
        }
    }
    let held = total(&layers, &pick);
    let net = prog.network();
    let mut timeline = Scheduler::new(hw);
    let layers = plans
        .iter()
        .zip(layers)
        .zip(&pick)
        .zip(&net.layers)
        .map(|(((p, mut o), &k), layer)| {
            let c = o.swap_remove(k);
            timeline.layer(&c.costs, &layer.inputs);
            report_of(p.name.clone(), p.op, c.layout, &c.costs, c.costs.sums(), hw)
        })
        .collect();
    let mut r = NetRun {
        layers,
        outputs: Vec::new(),
        residency: Residency::default(),
        timeline: timeline.timeline(),
    };
    r.add_leakage(hw);
    r.residency = Residency {
        wanted_bits: wanted,
        capacity_bits: resident_cells(hw),
        reserved_bits: hw.state_bits,
        chips: hw.chips,
        held_bits: held,
        reloading: r.reloading(),
        resident: held > 0,
    };
    Ok((r, unrun))
}

/// Refuses a network pinned resident whose resident data do not fit the chip.
fn does_not_fit(prog: &golden::Program, r: &Residency) -> Result<(), Error> {
    if r.spilled() {
        return Err(Error::usage(format!(
            "{}: its resident weights and constants need at least {} bits; {} chip(s) hold {} \
             resident bits (half of every subarray's cells){}: set cram.chips = {} (each chip \
             one more of the array, joined by its chip link), or mapping.residency = \
             \"reload\" or \"auto\"",
            prog.network().name,
            r.wanted_bits,
            r.chips,
            r.capacity_bits,
            match r.reserved_bits {
                0 => String::new(),
                b => format!(", {b} of them reserved for the key and value caches"),
            },
            r.chips_needed()
        )));
    }
    Ok(())
}

/// [`run_layers`] with the layouts as the choice (or `layouts`) gives them, residency not
/// checked.
fn run_layers_once(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
    layouts: Option<&[Option<Layout>]>,
    realize: bool,
) -> Result<NetRun, Error> {
    let net = prog.network();
    let functional = opts.mode == Mode::Functional;
    let mut outs: Vec<Vec<Array3<i64>>> = Vec::with_capacity(net.layers.len());
    let mut reports = Vec::with_capacity(net.layers.len());
    let mut timeline = Scheduler::new(hw);
    for (i, layer) in net.layers.iter().enumerate() {
        opts.limits.stop.check()?;
        let forced = layouts.and_then(|s| s[i]).map(|s| RunOptions {
            choice: Choice::layout(s),
            ..*opts
        });
        let layer_opts = forced.as_ref().unwrap_or(opts);
        let (costs, strategy, y) =
            layer_costs(prog, i, images, &outs, hw, layer_opts, realize, None)
                .map_err(|why| layer_error(prog, i, why))?;
        timeline.layer(&costs, &layer.inputs);
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
    let mut r = NetRun {
        layers: reports,
        outputs,
        residency: Residency::default(),
        timeline: timeline.timeline(),
    };
    r.add_leakage(hw);
    Ok(r)
}

/// Analytical layer candidates, shared by the points of a sweep. A candidate's streams (gate
/// counts, actions, placement) depend on the program, the layer, its layout, the gate set,
/// the subarray's lanes, columns and line segments and the image count. The rest of the
/// chip (how many subarrays, banks and chips, the clock, buses and links) and the device
/// only decide which layouts a choice admits, and price and place the candidates, per point
/// ([`run_network_with`], [`reprice`]). So each candidate is costed once per subarray shape
/// (and its programs once per column count, in the layer's `linear::Scan`, kept here per
/// program and layer), and a whole plan (every layer's admitted candidates) is kept per
/// subarray shape, chip lane count and choice.
///
/// Under the energy objective a point leaves out the layouts that cannot win at its prices
/// ([`fitting_within`]), as a run does. A left-out candidate keeps the streams it was
/// judged by; a later point prices them again and leaves the candidate out as well when
/// they exceed its own bound, and costs it whole otherwise. A whole plan then depends on
/// the prices too, so under that objective a plan is kept per hardware.
///
/// A subarray shape's candidates take tens to hundreds of megabytes (ResNet-18: about 50,000
/// streams), so the cache keeps those of the [`SHAPES_PER_THREAD`] × threads shapes used
/// last, and a long sweep over shapes holds a few shapes', not all of them. A shape dropped
/// and needed again is costed again, to the same streams (costing is deterministic).
#[derive(Debug, Default)]
pub struct PlanCache {
    /// The subarray shapes' caches by [`plan_shape`], the one used last at the end.
    shapes: std::sync::Mutex<Vec<(String, Arc<ShapeCache>)>>,
    /// What each weighted layer's view computes from its weights, by program and layer.
    scans: Memo<String, Arc<linear::Scan>>,
}

/// Subarray shapes a [`PlanCache`] keeps per thread of the pool it runs on.
pub const SHAPES_PER_THREAD: usize = 1;

/// One subarray shape's candidates and plans ([`PlanCache`]).
#[derive(Debug, Default)]
struct ShapeCache {
    /// Whole plans by chip lanes, choice and (energy objective) hardware.
    plans: Memo<String, Vec<LayerPlan>>,
    /// Candidates by layer and layout.
    candidates: Memo<String, Result<Options, MapError>>,
    /// The later layouts of [`fitting_within`], each costed against the bound of the first
    /// point that needed it.
    judged: Memo<String, Result<Judged, MapError>>,
}

impl PlanCache {
    /// The cache of subarray shape `shape`, kept as the one used last.
    fn shape(&self, shape: &str) -> Arc<ShapeCache> {
        let mut shapes = self.shapes.lock().expect("not poisoned");
        let kept = match shapes.iter().position(|(k, _)| k == shape) {
            Some(at) => shapes.remove(at),
            None => (shape.to_owned(), Arc::default()),
        };
        let cache = Arc::clone(&kept.1);
        shapes.push(kept);
        let most = SHAPES_PER_THREAD * rayon::current_num_threads().max(1);
        if shapes.len() > most {
            let over = shapes.len() - most;
            shapes.drain(..over);
        }
        cache
    }
}

/// A layer's candidates: each layout (None: the layer's one way) with its streams.
type Options = Vec<(Option<Layout>, Arc<Candidate>)>;

/// A later layout costed against a point's bound ([`layer::Within`]).
#[derive(Debug, Clone)]
enum Judged {
    Whole(Options),
    /// The first streams, which exceeded that point's bound.
    LeftOut(Arc<Candidate>),
}

/// One candidate's streams, which the cache, its whole plans and the points pricing them
/// share, with their [`StreamSums`], summed the first time a point scores them.
#[derive(Debug)]
pub(crate) struct Candidate {
    costs: Vec<StreamCost>,
    sums: OnceLock<StreamSums>,
    /// The lanes per subarray its streams were cut for.
    per: usize,
    /// What its streams' [`priced`] parts were computed from.
    prices: Prices,
}

/// Everything [`priced`] reads of the hardware: the step latencies, the function unit's
/// issue and throughput, and the chip count (the link's share of the moved bits). Streams
/// priced under equal `Prices` have equal cycles and link bits, so a point whose `Prices`
/// are a candidate's shares its streams without repricing each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Prices {
    steps: crate::model::timing::StepCycles,
    issue_slots: u32,
    unit: (u32, u32),
    chips: u64,
}

impl Prices {
    fn of(hw: &Hw) -> Prices {
        let p = &hw.org.params;
        Prices {
            steps: hw.steps,
            issue_slots: p.issue_slots_per_cycle,
            unit: (
                p.function_unit.ops_per_cycle,
                p.function_unit.latency_cycles,
            ),
            chips: hw.chips,
        }
    }
}

impl Candidate {
    /// `costs` as run on `hw`.
    fn new(costs: Vec<StreamCost>, hw: &Hw) -> Arc<Candidate> {
        // What `repriced` relies on to share the streams at equal `Prices`.
        debug_assert!(costs.iter().all(|c| priced_as(c, hw)));
        Arc::new(Candidate {
            costs,
            sums: OnceLock::new(),
            per: hw.lanes(),
            prices: Prices::of(hw),
        })
    }

    /// The streams' [`StreamSums`].
    fn sums(&self) -> &StreamSums {
        self.sums.get_or_init(|| stream_sums(&self.costs, self.per))
    }
}

impl std::ops::Deref for Candidate {
    type Target = [StreamCost];

    fn deref(&self) -> &[StreamCost] {
        &self.costs
    }
}

/// One layer's candidate stream sets: one, or every layout the choice leaves.
#[derive(Debug)]
pub struct LayerPlan {
    pub(crate) name: String,
    pub(crate) op: &'static str,
    pub(crate) options: Options,
}

/// [`run_network`] in analytical mode with the layer candidates taken from `cache` when an
/// earlier run costed them ([`PlanCache`]); then chosen and priced on this `hw`. Gives the
/// same report as [`run_network`] (tested). Functional runs, or no cache, go straight to
/// [`run_network`].
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
    // What the layouts left out depend on: the prices, so all of the hardware.
    let prices = match opts.choice.objective {
        Objective::Energy => format!("{hw:?}"),
        _ => String::new(),
    };
    let key = format!("{}|{:?}|{prices}", hw.machine_lanes(), opts.choice);
    let plans = cache
        .shape(&plan_shape(prog, hw, images.len()))
        .plans
        .get_or_build(key, || {
            plan_network(prog, images, hw, opts, Some(cache)).map_err(|e| e.to_string())
        })
        .map_err(Error::usage)?;
    choose(prog, &plans, hw, opts, images.len())
}

/// What a candidate's streams depend on besides its layer and layout (see [`PlanCache`]).
fn plan_shape(prog: &golden::Program, hw: &Hw, n_img: usize) -> String {
    format!(
        "{:p}|{:?}|{}|{}|{}|{n_img}",
        prog as *const golden::Program,
        hw.set,
        hw.org.params.lanes_per_subarray,
        hw.org.params.cols_per_subarray,
        hw.org.params.peripherals.lanes_per_line_segment,
    )
}

/// Every layer's candidate streams (analytical), each taken from `cache` when an earlier
/// run costed it ([`PlanCache`]), leaving out under the energy objective the layouts that
/// cannot win ([`fitting_within`]).
pub(crate) fn plan_network(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
    cache: Option<&PlanCache>,
) -> Result<Vec<LayerPlan>, Error> {
    plan_layers(prog, images, hw, opts, cache, true)
}

/// [`plan_network`], with (`bounded`) or without the layouts that cannot win.
pub(crate) fn plan_layers(
    prog: &golden::Program,
    images: &[Array3<i64>],
    hw: &Hw,
    opts: &RunOptions,
    cache: Option<&PlanCache>,
    bounded: bool,
) -> Result<Vec<LayerPlan>, Error> {
    let net = prog.network();
    let n_img = images.len();
    let shaped = cache.map(|c| c.shape(&plan_shape(prog, hw, n_img)));
    let shape_prog = format!("{:p}", prog as *const golden::Program);
    let cached = |key: String, build: &dyn Fn() -> Result<Options, MapError>| match &shaped {
        Some(c) => c
            .candidates
            .get_or_build(key, || Ok(build()))
            .expect("a candidate always builds")
            .as_ref()
            .clone(),
        None => build(),
    };
    // The layers in parallel as well as each layer's layouts, so that one layer's costly
    // layouts do not leave a thread idle; the first error in layer order stands.
    let plan_layer =
        |(i, layer): (usize, &cram_workloads::net::Layer)| -> Result<LayerPlan, Error> {
            let step = prog.step(i);
            let bad = |why| layer_error(prog, i, why);
            let options = match step {
                Step::Linear { .. } if !opts.choice.is_pinned() => {
                    // The layer's view (its weights scanned) is built only when a candidate is
                    // not cached, and then once for all of them.
                    let view = OnceLock::new();
                    let l = || {
                        view.get_or_init(|| {
                            // A sweep's points share what the view computes from the weights.
                            let scan = cache.map(|c| {
                                c.scans
                                    .get_or_build(format!("{shape_prog}|{i}"), || {
                                        Ok(Linear::at(prog, i).expect("a linear step").scan())
                                    })
                                    .expect("a view always builds")
                            });
                            Linear::at_with(prog, i, scan.map(|s| Arc::clone(s.as_ref())))
                                .expect("a linear step")
                        })
                    };
                    let dims = Linear::dims(prog, i).expect("a linear step");
                    let all = layouts_of(&opts.choice, dims, n_img, hw).map_err(bad)?;
                    let cost = |lay: Layout| {
                        cached(format!("{i}|{lay:?}"), &|| {
                            let l = l();
                            let (costs, _) = linear_layer(l, lay, hw, n_img, None, false, opts, i)?;
                            Ok(vec![(Some(lay), Candidate::new(costs, hw))])
                        })
                    };
                    let fit = if bounded && opts.choice.objective == Objective::Energy {
                        // Scored as `choose` scores them.
                        let reload_score = |o: &Options| {
                            let c = repriced(&o[0].1, hw);
                            (resident_bits(&c) == 0)
                                .then(|| score_of(&opts.choice, &c, c.sums(), hw, n_img).0)
                        };
                        let within = |lay: Layout, bound_pj: f64| -> Result<Option<Options>, MapError> {
                            let judge = || {
                                Ok(match linear_within(l(), lay, hw, n_img, opts, i, bound_pj)? {
                                    Within::Whole(c) => Judged::Whole(vec![(Some(lay), Candidate::new(c, hw))]),
                                    Within::LeftOut(c) => Judged::LeftOut(Candidate::new(c, hw)),
                                })
                            };
                            let judged = match &shaped {
                                // A run's own search: judged at its own prices only.
                                None => {
                                    return Ok(match judge()? {
                                        Judged::Whole(o) => Some(o),
                                        Judged::LeftOut(_) => None,
                                    });
                                }
                                Some(c) => {
                                    let key = format!("{i}|{lay:?}");
                                    // Costed whole for an earlier point.
                                    if let Some(Ok(o)) = c.candidates.get(&key) {
                                        return o.as_ref().clone().map(Some);
                                    }
                                    c.judged
                                        .get_or_build(key, || Ok(judge()))
                                        .expect("a judgement always builds")
                                        .as_ref()
                                        .clone()?
                                }
                            };
                            match judged {
                                Judged::Whole(o) => Ok(Some(o)),
                                // Left out at the prices of the point that first
                                // needed it (maybe this one): judged at this point's.
                                Judged::LeftOut(first) => {
                                    let first = repriced(&first, hw);
                                    if resident_bits(&first) == 0 && dynamic_pj(&first, hw) > bound_pj {
                                        Ok(None)
                                    } else {
                                        cost(lay).map(Some)
                                    }
                                }
                            }
                        };
                        fitting_within(all, cost, within, reload_score)
                    } else {
                        fitting(all, cost)
                    };
                    fit.map_err(bad)?
                    .into_iter()
                    .flat_map(|(_, options)| options)
                    .collect()
                }
                Step::Input
                | Step::Linear { .. }
                | Step::MaxPool
                | Step::SumPool(_)
                | Step::SumPoolCounted(_)
                | Step::Relu
                | Step::Relu6 { .. }
                | Step::Sign
                | Step::Add { .. }
                | Step::Concat(_)
                | Step::Pass
                | Step::Downsample
                | Step::Move
                | Step::Host { .. }
                // The one way of a layer (a pinned layout's copies are bounded by the chip's
                // lanes).
                | Step::Attn(_) | Step::Lut { .. } | Step::Mul(_) | Step::Softmax(_)
                | Step::LayerNorm(_)
                | Step::Lookup { .. }
                | Step::Cache { .. }
                | Step::AddTable { .. } => cached(
                    format!("{i}|{:?}|{}", opts.choice, hw.machine_lanes()),
                    &|| {
                        let (costs, strategy, _) =
                            layer_costs(prog, i, images, &[], hw, opts, false, None)?;
                        Ok(vec![(strategy, Candidate::new(costs, hw))])
                    },
                )
                .map_err(bad)?,
            };
            Ok(LayerPlan {
                name: layer.name.clone(),
                op: layer.op.name(),
                options,
            })
        };
    let plans: Vec<Result<LayerPlan, Error>> =
        net.layers.par_iter().enumerate().map(plan_layer).collect();
    plans.into_iter().collect()
}

/// Sets the streams' cycles from this device's step latencies, and the share of their
/// moved bits that crosses the chip link from this chip count: the parts of a stream's
/// cost that depend on more than the subarray ([`PlanCache`]) besides the prices `report`
/// applies. Both are what `run_job` computes (`charge_writes` is the only writer of the
/// link share).
pub(crate) fn reprice(costs: &mut [StreamCost], hw: &Hw) {
    for c in costs {
        let deploy_link;
        (c.cycles_per_run, c.actions.moved_bits[3], deploy_link) = priced(c, hw);
        // A run without resident data moves none at deployment.
        if let Some(d) = &mut c.deploy.actions {
            d.moved_bits[3] = deploy_link;
        }
    }
}

/// What [`reprice`] sets a stream's cycles per run and chip-link bits (run, deployment) to.
fn priced(c: &StreamCost, hw: &Hw) -> (u64, f64, f64) {
    (
        broadcast_cycles(&c.counts, &hw.steps)
            + c.load_writes * hw.steps.write_row
            + unit::cycles(c.unit_work, hw),
        hw.link_bits(c.loaded_bits) as f64,
        hw.link_bits(c.deploy.moved_bits) as f64,
    )
}

/// Whether stream `c`'s cycles and chip-link bits are what [`priced`] gives them on `hw`.
fn priced_as(c: &StreamCost, hw: &Hw) -> bool {
    let (cycles, link, deploy_link) = priced(c, hw);
    cycles == c.cycles_per_run
        && link.to_bits() == c.actions.moved_bits[3].to_bits()
        && c.deploy
            .actions
            .as_ref()
            .is_none_or(|d| deploy_link.to_bits() == d.moved_bits[3].to_bits())
}

/// `costs` [`reprice`]d on `hw`: the same shared streams when they already are priced so (a
/// sweep point that changes only the subarrays, banks or buses around them: at once when
/// its [`Prices`] are those the streams were priced at, else stream by stream), a repriced
/// copy otherwise.
fn repriced(costs: &Arc<Candidate>, hw: &Hw) -> Arc<Candidate> {
    if costs.prices == Prices::of(hw) || costs.iter().all(|c| priced_as(c, hw)) {
        return Arc::clone(costs);
    }
    let mut copy = costs.costs.clone();
    reprice(&mut copy, hw);
    Candidate::new(copy, hw)
}
