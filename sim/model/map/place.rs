//! Placement of one layer on the chip, for `cramulator map`: which programs it runs, on
//! which subarrays and lanes, what each column of a program holds, and what moves where
//! before each segment (docs/model.md §2.8). It is read off the same plan the runner prices.
//!
//! Subarrays are assigned in stream order, round-robin over the chip: subarray run k goes to
//! subarray k mod S (bank ⌊(k mod S) / subarrays per bank⌋) in wave ⌊k / S⌋: all subarrays
//! busy before any takes a second run, as the timeline ([`super::timeline`]) takes them on
//! an idle chip.

use std::ops::Range;

use cram_workloads::golden;
use cram_workloads::{Op, Shape};
use ndarray::Array3;

use super::elem;
use super::linear::{Job, Linear, Source, Strategy};
use super::{
    Choice, Hw, LayerReport, Layout, Mode, RunOptions, StreamCost, first_program, layer_costs,
    layer_error, report,
};
use crate::error::{Error, MapError};

/// The lane order of a layer's runs: which output a lane computes.
pub fn lane_order(layout: Option<Layout>) -> &'static str {
    match layout {
        Some(Layout {
            strategy: Strategy::Const,
            ..
        }) => "(image, output y, output x); every lane of a run computes the program's channels",
        Some(Layout {
            strategy: Strategy::Stored,
            copies: 1..,
            ..
        }) => {
            "(image, output y, output x, output channel[, reduction slice]), round-major in \
             waves of as many (image, position) rounds as the layout has copies, each wave on \
             the same subarrays; then the reducer's (image, output y, output x, output channel)"
        }
        Some(Layout {
            strategy: Strategy::Stored,
            slices: 2..,
            ..
        }) => {
            "(output channel, image, output y, output x, reduction slice), channel-major; then \
             the reducer's (output channel, image, output y, output x)"
        }
        Some(Layout {
            strategy: Strategy::Stored,
            ..
        }) => "(output channel, image, output y, output x), channel-major",
        None => "(image, channel within the program's channels, output y, output x)",
    }
}

/// One subarray run of a program.
#[derive(Debug, Clone)]
pub struct Run {
    /// Subarray index on the chip.
    pub subarray: u64,
    /// Its bank.
    pub bank: u64,
    /// Wave: how many runs the subarray took before this one.
    pub wave: u64,
    /// Lanes in the layer's lane order (first..end).
    pub lanes: [usize; 2],
}

/// One program of a layer and where it runs.
#[derive(Debug, Clone)]
pub struct ProgramPlace {
    /// Output channels it computes (first..end).
    pub channels: [usize; 2],
    /// Reduction inputs per segment (0: no chunked reduction).
    pub chunk: usize,
    /// Columns it needs (the plan's bound).
    pub cols: usize,
    /// Its subarray runs.
    pub runs: Vec<Run>,
}

/// A range of columns of a program and what it holds.
#[derive(Debug, Clone)]
pub struct ColumnUse {
    /// First column.
    pub first: usize,
    /// One past the last column.
    pub end: usize,
    /// What the columns hold.
    pub holds: String,
}

/// An operand written into every lane of a run before a segment.
#[derive(Debug, Clone)]
pub struct Move {
    /// Segment index.
    pub segment: usize,
    /// Operand kind: x (input), w (weight), k (channel constant), m (multiplier), m>0.
    pub kind: &'static str,
    /// Operands (as named in the column map).
    pub operands: String,
    /// Destination columns (first..end of the span).
    pub cols: [usize; 2],
    /// Bits written per lane.
    pub bits_per_lane: usize,
    /// Where each lane's value comes from.
    pub from: String,
}

/// The placement of one layer.
#[derive(Debug, Clone)]
pub struct LayerPlacement {
    /// Layer index.
    pub index: usize,
    /// Layer name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Input layers and their output shapes.
    pub inputs: Vec<(String, Shape)>,
    /// Output shape.
    pub output: Shape,
    /// Every searched layout's (energy pJ, cycles) when the cost model chose (weighted
    /// layers).
    pub candidates: Vec<(Layout, f64, u64)>,
    /// Which output a lane computes.
    pub lane_order: &'static str,
    /// Reduction length (weighted layers).
    pub reduction: Option<usize>,
    /// Programs and their runs.
    pub programs: Vec<ProgramPlace>,
    /// Column map of the first program (its generated code).
    pub columns: Vec<ColumnUse>,
    /// Output columns of the first program, bit 0 first: per channel of the program
    /// ([`Strategy::Const`]), or one entry (channel None) for each lane's own channel.
    pub outputs: Vec<(Option<usize>, Vec<usize>)>,
    /// Operand moves of the first program, per segment.
    pub moves: Vec<Move>,
    /// Whether the layer runs in place on its producer's output columns (no moves).
    pub in_place: bool,
    /// The layer's cost report (one image).
    pub report: LayerReport,
}

/// Places layer `i` of `prog` for one image under `choice` (analytical; the first program
/// is generated to show its columns), in `chosen` layout when the network's choice fixed
/// it (the candidates the choice leaves are still listed).
pub fn place(
    prog: &golden::Program,
    i: usize,
    hw: &Hw,
    choice: Choice,
    chosen: Option<Layout>,
) -> Result<LayerPlacement, Error> {
    let net = prog.network();
    let layer = &net.layers[i];
    let bad = |why: MapError| layer_error(prog, i, why);
    let opts = RunOptions {
        mode: Mode::Analytical,
        choice,
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: 0,
        limits: Default::default(),
    };
    let s = net.input_shape();
    let image = [Array3::zeros((s.c, s.h, s.w))];
    let mut candidates = Vec::new();
    let (mut costs, mut strategy, _) = layer_costs(
        prog,
        i,
        &image,
        &[],
        hw,
        &opts,
        false,
        Some(&mut candidates),
    )
    .map_err(bad)?;
    if let Some(l) = chosen.filter(|&l| Some(l) != strategy) {
        let forced = RunOptions {
            choice: Choice::layout(l),
            ..opts
        };
        (costs, strategy, _) =
            layer_costs(prog, i, &image, &[], hw, &forced, false, None).map_err(bad)?;
    }
    let r = report(layer.name.clone(), layer.op.name(), strategy, &costs, hw);
    let programs = programs(&costs, hw);
    let linear = Linear::at(prog, i);
    let (job, in_place) = match (&linear, strategy, programs.first()) {
        (Some(l), Some(s), Some(p)) => {
            let chs = p.channels[0]..p.channels[1];
            let job = first_program(l, s, chs, p.chunk, hw.set);
            (Some(job.map_err(bad)?), false)
        }
        (None, _, Some(_)) => {
            let (mut parts, charged) = elem::parts(prog, i, hw).map_err(bad)?;
            (Some(parts.swap_remove(0).job), !charged)
        }
        _ => (None, false),
    };
    let first_channel = programs.first().map_or(0, |p| p.channels[0]);
    let per_channel = strategy.is_some_and(|l| l.strategy == Strategy::Const);
    let (columns, moves) = job.as_ref().map_or((Vec::new(), Vec::new()), |job| {
        (
            column_map(job, linear.is_some()),
            if in_place {
                Vec::new()
            } else {
                moves(job, prog, i)
            },
        )
    });
    let outputs = job.as_ref().map_or(Vec::new(), |job| {
        job.outputs
            .iter()
            .enumerate()
            .map(|(k, cols)| {
                (
                    per_channel.then_some(first_channel + k),
                    cols.iter().map(|&c| c as usize).collect(),
                )
            })
            .collect()
    });
    Ok(LayerPlacement {
        index: i,
        name: layer.name.clone(),
        op: layer.op.name(),
        inputs: layer
            .inputs
            .iter()
            .map(|&j| (net.layers[j].name.clone(), prog.shape(j)))
            .collect(),
        output: prog.shape(i),
        candidates,
        lane_order: lane_order(strategy),
        reduction: linear.as_ref().map(Linear::reduction),
        programs,
        columns,
        outputs,
        moves,
        in_place,
        report: r,
    })
}

/// Groups a layer's streams by program and assigns subarrays round-robin in stream order.
fn programs(costs: &[StreamCost], hw: &Hw) -> Vec<ProgramPlace> {
    let chip = hw.subarrays();
    let per_bank = u64::from(hw.org.params.subarrays_per_bank);
    let mut out: Vec<ProgramPlace> = Vec::new();
    let per = hw.lanes();
    // A cost standing for several equal blocks expands into its runs, one block apart (or,
    // for a layout in waves, one wave apart).
    // The function unit's pass (an LRN layer's first) runs on no subarray's lanes.
    let expanded = costs
        .iter()
        .filter(|c| c.unit_work == (0, 0))
        .flat_map(|c| {
            let step = match c.place.wave_lanes {
                0 => c.place.lanes.len(),
                w => w,
            };
            (0..c.repeat as usize).map(move |r| {
                let mut place = c.place.clone();
                place.lanes = place.lanes.start + r * step..place.lanes.end + r * step;
                (c, place)
            })
        });
    // Runs in waves stay on their block's subarray; the others go round-robin.
    let mut k = 0u64;
    for (c, place) in expanded {
        let p = &place;
        if out.len() <= p.program {
            out.resize_with(p.program + 1, || ProgramPlace {
                channels: [0, 0],
                chunk: 0,
                cols: 0,
                runs: Vec::new(),
            });
        }
        let prog = &mut out[p.program];
        prog.channels = [p.channels.start, p.channels.end];
        prog.chunk = p.chunk;
        prog.cols = c.cols;
        let (sub, wave) = match p.wave_lanes {
            0 => {
                let n = k;
                k += 1;
                (n % chip, n / chip)
            }
            w => (
                (p.lanes.start % w / per) as u64 % chip,
                (p.lanes.start / w) as u64,
            ),
        };
        prog.runs.push(Run {
            subarray: sub,
            bank: sub / per_bank,
            wave,
            lanes: [p.lanes.start, p.lanes.end],
        });
    }
    out
}

/// What a load column holds: operand kind and index.
type Role = (&'static str, usize);

/// Name and index of what a load column holds.
fn operand(src: Source) -> Role {
    match src {
        Source::X(r) => ("x", r),
        Source::W(r) => ("w", r),
        Source::K => ("k", 0),
        Source::M => ("m", 0),
        Source::MPos => ("m>0", 0),
        Source::Partial(s) => ("p", s),
    }
}

/// What each column of `job` holds, in runs of columns: loaded operands (from the first
/// segment that loads them) and working columns (accumulators, temporaries and, at the end,
/// the output bits). `w` operands are weights in a linear layer, else second operands.
fn column_map(job: &Job, linear: bool) -> Vec<ColumnUse> {
    let n = job.program.cols();
    let mut role: Vec<Option<Role>> = vec![None; n];
    for seg in &job.segments {
        for l in &seg.loads {
            for &c in l.cols.iter() {
                role[c as usize].get_or_insert(operand(l.source));
            }
        }
    }
    // (columns, role of the first, index of the last)
    let mut out: Vec<(Range<usize>, Option<Role>, usize)> = Vec::new();
    for (c, r) in role.into_iter().enumerate() {
        match out.last_mut() {
            Some((cols, Some((kind, _)), last))
                if r.is_some_and(|(k, i)| k == *kind && (i == *last || i == *last + 1)) =>
            {
                cols.end = c + 1;
                *last = r.expect("some").1;
            }
            Some((cols, None, _)) if r.is_none() => cols.end = c + 1,
            _ => out.push((c..c + 1, r, r.map_or(0, |r| r.1))),
        }
    }
    out.into_iter()
        .map(|(cols, r, last)| {
            let holds = match r {
                None => {
                    "working: accumulators, partial products, temporaries, output bits".to_owned()
                }
                Some((kind, first)) => {
                    let span = if first == last {
                        format!("{kind}{first}")
                    } else {
                        format!("{kind}{first}..{kind}{last}")
                    };
                    let what = match kind {
                        "x" => "inputs",
                        "w" if linear => "weights",
                        "w" => "second operands",
                        "k" => "channel constant (bias and zero-point terms)",
                        "m" => "requantization multiplier",
                        _ => "multiplier sign",
                    };
                    format!("{span}: {what}")
                }
            };
            ColumnUse {
                first: cols.start,
                end: cols.end,
                holds,
            }
        })
        .collect()
}

/// The operand loads of `job`, per segment and operand kind, with where they come from.
fn moves(job: &Job, prog: &golden::Program, i: usize) -> Vec<Move> {
    let mut out: Vec<Move> = Vec::new();
    for (k, seg) in job.segments.iter().enumerate() {
        // Per operand kind of this segment: (kind, first index, last index, its move).
        let mut spans: Vec<(&'static str, usize, usize, Move)> = Vec::new();
        for l in &seg.loads {
            let (kind, idx) = operand(l.source);
            let lo = *l.cols.iter().min().expect("a load has columns") as usize;
            let hi = *l.cols.iter().max().expect("a load has columns") as usize + 1;
            match spans.iter_mut().find(|s| s.0 == kind) {
                Some((_, _, last, m)) => {
                    *last = idx;
                    m.bits_per_lane += l.cols.len();
                    m.cols = [m.cols[0].min(lo), m.cols[1].max(hi)];
                }
                None => spans.push((
                    kind,
                    idx,
                    idx,
                    Move {
                        segment: k,
                        kind,
                        operands: String::new(),
                        cols: [lo, hi],
                        bits_per_lane: l.cols.len(),
                        from: source_rule(prog, i, l.source),
                    },
                )),
            }
        }
        out.extend(spans.into_iter().map(|(kind, first, last, mut m)| {
            m.operands = if first == last {
                format!("{kind}{first}")
            } else {
                format!("{kind}{first}..{kind}{last}")
            };
            m
        }));
    }
    out
}

/// Where a lane's operand `src` of layer `i` comes from, as a rule over the lane's output
/// coordinates (channel c, position y, x).
fn source_rule(prog: &golden::Program, i: usize, src: Source) -> String {
    let net = prog.network();
    let layer = &net.layers[i];
    let name = |k: usize| {
        layer
            .inputs
            .get(k)
            .map_or("?", |&j| net.layers[j].name.as_str())
    };
    let via = "sensed in its producer's lane, over the global bus";
    match (src, &layer.op) {
        (Source::X(_), Op::Conv2d { window, groups, .. }) => format!(
            "'{}' output at (ci, y·{}+ky−{}, x·{}+kx−{}) for x_r, r = (ci, ky, kx) over the \
             receptive field{}; the zero point where that is padding; {via}",
            name(0),
            window.stride[0],
            window.pad[0],
            window.stride[1],
            window.pad[1],
            if *groups > 1 {
                format!(" of c's group (of {groups})")
            } else {
                String::new()
            }
        ),
        (Source::X(_), Op::Dense { .. }) => {
            format!("'{}' output element r for x_r; {via}", name(0))
        }
        (Source::X(_), Op::MaxPool { window } | Op::AvgPool { window, .. }) => format!(
            "'{}' output at (c, y·{}+ky−{}, x·{}+kx−{}) for window element r = (ky, kx); \
             padding loads the code minimum (max) or the zero point (average); {via}",
            name(0),
            window.stride[0],
            window.pad[0],
            window.stride[1],
            window.pad[1]
        ),
        (Source::X(_), Op::GlobalAvgPool) => {
            format!("'{}' output at (c, r / W, r mod W); {via}", name(0))
        }
        (Source::X(_), Op::Concat) => format!(
            "the input holding channel c ({}) at (c − its channel offset, y, x); {via}",
            (0..layer.inputs.len())
                .map(|k| format!("'{}'", name(k)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Source::X(_), Op::Shuffle { groups }) => format!(
            "'{}' output at ((c mod {groups})·C/{groups} + ⌊c/{groups}⌋, y, x); {via}",
            name(0)
        ),
        (Source::X(_), Op::AttnSoftmax { heads, .. }) => format!(
            "the first pass (row maxima, docs/model.md §2.5.2), a lane per head and query y: \
             '{}' (scores) at (head·n + r, y) for x_r, r over the row's visible keys (the code \
             minimum past them), n = C/{heads}; {via}",
            name(0)
        ),
        (Source::X(_), Op::LayerNorm { .. }) => format!(
            "the first pass (statistics, docs/model.md §2.5.2), a lane per position (y, x), or \
             per slice k of L features and position when a position's features do not fit \
             one chunk: '{}' output at (r, y, x), or (k·L + r, y, x), for x_r; {via}",
            name(0)
        ),
        (Source::X(_), Op::Lrn { .. }) => format!(
            "the periphery's function unit, its result at (c, y, x) (every code of '{}' is \
             read out and sent to it over the global bus); {via}",
            name(0)
        ),
        (Source::X(_), Op::Embedding { .. }) => format!(
            "the token table's row for the id '{}' holds at position y (the table priced as \
             these loads, not as cells of its own); {via}",
            name(0)
        ),
        (Source::X(_), Op::KvCache { past }) => format!(
            "'{}' output at (c, y − {past}), the new entries only (the {past} cached ones \
             stay where earlier steps wrote them); {via}",
            name(0)
        ),
        (Source::X(_), Op::Positional { .. }) => {
            format!("'{}' output at (c, y, x); {via}", name(0))
        }
        (Source::W(_), Op::Positional { .. }) => "the position table's row offset + y, feature \
                                                  c (the table priced as these loads, not as \
                                                  cells of its own), over the global bus"
            .to_owned(),
        (Source::X(_), Op::Channels { start, .. }) => {
            format!("'{}' output at (c + {start}, y, x); {via}", name(0))
        }
        (Source::X(_), Op::Downsample { stride, .. }) => {
            format!("'{}' output at (c, y·{stride}, x·{stride}); {via}", name(0))
        }
        (Source::X(_), Op::AttnScores { .. }) => format!(
            "'{}' (query) at (head·d + r, position y) for x_r; {via}",
            name(0)
        ),
        (Source::W(_), Op::AttnScores { .. }) => {
            format!("'{}' (key) at (head·d + r, key j) for w_r; {via}", name(1))
        }
        (Source::X(_), Op::AttnContext { .. }) => format!(
            "'{}' (scores) at (head·n + r, position y) for x_r; {via}",
            name(0)
        ),
        (Source::W(_), Op::AttnContext { .. }) => {
            format!("'{}' (values) at (c, value r) for w_r; {via}", name(1))
        }
        (Source::W(_), Op::Add) => format!("'{}' output at (c, y, x); {via}", name(1)),
        (Source::W(_), Op::Mul) => format!(
            "'{}' output at (c, y, x), or at (c, 0, 0) when it holds one factor per channel; \
             {via}",
            name(1)
        ),
        (
            Source::X(_),
            Op::Input { .. }
            | Op::Relu
            | Op::Relu6
            | Op::Add
            | Op::Flatten
            | Op::BatchNorm { .. }
            | Op::Softmax
            | Op::Sign
            | Op::Unary { .. }
            | Op::Mul,
        ) => format!("'{}' output at (c, y, x); {via}", name(0)),
        (
            Source::W(_),
            Op::Input { .. }
            | Op::Dense { .. }
            | Op::Conv2d { .. }
            | Op::MaxPool { .. }
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
            | Op::Relu
            | Op::Relu6
            | Op::Concat
            | Op::Flatten
            | Op::BatchNorm { .. }
            | Op::Downsample { .. }
            | Op::Softmax
            | Op::Sign
            | Op::Shuffle { .. }
            | Op::Channels { .. }
            | Op::Lrn { .. }
            | Op::Unary { .. }
            | Op::LayerNorm { .. }
            | Op::AttnSoftmax { .. }
            | Op::Embedding { .. }
            | Op::KvCache { .. },
        ) => "the layer's weight store in CRAM (weight r of the lane's output \
                               channel for w_r), sensed and moved over the global bus"
            .to_owned(),
        (Source::K, _) => "the weight store (the lane's channel constant)".to_owned(),
        (Source::M | Source::MPos, _) => {
            "the weight store (the lane's channel's requantization multiplier)".to_owned()
        }
        (Source::Partial(_), _) => "the lane's partial sum of reduction slice s, from the \
                                    slice pass's lanes, sensed and moved over the global bus"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::map::tests::hw;
    use cram_workloads::train::shipped;

    /// Every layer of a digits model places; the placement's runs and lanes agree with the
    /// cost report, and every program's columns fit the subarray.
    #[test]
    fn digits_placement_agrees_with_the_report() {
        let prog = shipped("digits-mlp-int8")
            .unwrap()
            .unwrap()
            .program()
            .unwrap();
        let hw = hw();
        for s in Strategy::ALL {
            for i in 0..prog.network().layers.len() {
                let p = place(&prog, i, &hw, Choice::force(s), None).unwrap();
                let runs: usize = p.programs.iter().map(|q| q.runs.len()).sum();
                assert_eq!(runs as u64, p.report.subarray_runs, "layer {i}");
                let lanes: usize = p
                    .programs
                    .iter()
                    .flat_map(|q| &q.runs)
                    .map(|r| r.lanes[1] - r.lanes[0])
                    .sum();
                assert_eq!(lanes as u64, p.report.lanes_used, "layer {i}");
                assert!(p.programs.iter().all(|q| q.cols <= 1024));
                if p.report.loaded_bits > 0 {
                    // What the moves of the first program write, every lane of its runs.
                    let per_lane: usize = p.moves.iter().map(|m| m.bits_per_lane).sum();
                    let lanes0: usize = p.programs[0]
                        .runs
                        .iter()
                        .map(|r| r.lanes[1] - r.lanes[0])
                        .sum();
                    assert!(per_lane * lanes0 <= p.report.written_bits as usize);
                    assert!(per_lane > 0 && !p.columns.is_empty());
                }
            }
        }
    }
}
