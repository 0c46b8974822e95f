//! Code generation for Dense and Conv2d layers under the two mapping strategies of docs/model.md §2.2.
//!
//! Both see a layer as, per output channel co and output position p,
//! acc = Σ_r w[co,r]·(x_p[r] − z_x) + bias[co] over the receptive field r = (ci, kh, kw)
//! (a Dense layer is a 1×1 convolution), followed by requantization and saturation (or, into a
//! ±1 output, the sign). The constants are the golden executor's
//! (`cram_workloads::golden::Step::Linear`), so both compute from one derivation.
//!
//! * [`Strategy::Const`] — *lane = output element, weights in the instruction stream*: every
//!   lane of a subarray holds one output position (of one image); a program serves a set of
//!   output channels, whose weights are compile-time constants. Each multiply w·x becomes the
//!   shifted bits of x at w's CSD digits, all summed in one bit heap per channel and chunk, so
//!   a pruned weight emits nothing and a low-bit or binary weight emits little.
//! * [`Strategy::Stored`] — *lane = output neuron, weights in cells*: every lane holds one
//!   (co, image, p) output with its own weights loaded into columns; the generic bit-serial
//!   MAC sums the partial products x_i ∧ w_k. A partial-product column is skipped only when
//!   weight bit k of input r is 0 in every lane of the subarray.
//!
//! The reduction runs in chunks of `chunk` inputs: the runner loads a chunk's inputs (and,
//! for `Stored`, its weights) into the same columns before each segment, and the
//! accumulator stays in the lanes between chunks (a split over time).

pub use super::jobs::{
    PartialTable, StoredSpec, const_job, partial_table, reduce_job, stored_job, union,
};
pub(crate) use super::jobs::{const_job_within, stored_job_with};
use crate::error::MapError;
use std::ops::Range;
use std::sync::Arc;

use cram_workloads::golden::{self, Step};
use cram_workloads::net::{Op as NetOp, Shape, Window};
use cram_workloads::quant::{ActQuant, Requant};
use ndarray::Array4;

use super::arith::{self, Coding, Mult, Signal};
use crate::model::engine::isa::{Col, Program};
use crate::model::kernels::{Builder, GateSet, Tally, csd_digits};
use crate::model::memo::Memo;

/// How a layer is laid out on lanes (docs/model.md §2.2).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Lane = output element; weights are constants in the instruction stream.
    Const,
    /// Lane = output neuron; weights stored in cells, generic bit-serial MAC.
    Stored,
}

impl Strategy {
    /// Both strategies.
    pub const ALL: [Strategy; 2] = [Strategy::Const, Strategy::Stored];

    /// Command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Const => "const",
            Strategy::Stored => "stored",
        }
    }

    /// Short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Strategy::Const => "lane = output element, weights in the instruction stream",
            Strategy::Stored => "lane = output neuron, weights stored in cells",
        }
    }
}

/// How a Dense or Conv2d layer runs on lanes (docs/model.md §2.2): its strategy and, for
/// [`Strategy::Stored`], how many slices its reduction is split into across lanes (space)
/// and whether one program serves every lane block of a pass (`shared`: its weight-bit
/// columns skipped only where every channel's are zero) or each channel group has its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Where the weights live.
    pub strategy: Strategy,
    /// Reduction slices in space (1: the reduction whole in each lane).
    pub slices: usize,
    /// One program for every lane block.
    pub shared: bool,
    /// Weights and per-channel constants resident in their lanes' cells, written once at
    /// deployment (`stored` only): each lane holds its whole slice's weights in columns of
    /// their own.
    pub resident: bool,
    /// Copies of the weights (`stored`, resident and shared only; docs/model.md §2.2): 0 —
    /// a lane per output, so every output position holds its own copy of its channel's
    /// weights; R ≥ 1 — a lane per (channel, slice) in each of R copies, and the outputs
    /// (images × positions) take their turns on them, R at a time, in ⌈outputs / R⌉ waves
    /// on the same subarrays.
    pub copies: usize,
}

impl Layout {
    /// A strategy's first layout: the reduction whole, a program per channel group (or
    /// channel set).
    pub const fn plain(strategy: Strategy) -> Layout {
        Layout {
            strategy,
            slices: 1,
            shared: false,
            resident: false,
            copies: 0,
        }
    }

    /// Short name: `const`, `stored`, `stored/4` (four slices), `stored/4 shared`,
    /// `stored/4 shared resident`, `stored/4 shared resident ×2` (two copies, the outputs
    /// over time).
    pub fn name(self) -> String {
        let mut n = self.strategy.name().to_owned();
        if self.slices > 1 {
            n += &format!("/{}", self.slices);
        }
        if self.shared {
            n += " shared";
        }
        if self.resident {
            n += " resident";
        }
        if self.copies > 0 {
            n += &format!(" ×{}", self.copies);
        }
        n
    }
}

/// A Dense or Conv2d layer with its integer constants.
#[derive(Debug, Clone)]
pub struct Linear<'a> {
    /// Centred weight codes, [out, in/groups, kh, kw].
    pub w: &'a Array4<i32>,
    /// Bias in accumulator units.
    pub bias: &'a [i64],
    /// Requantization per output channel.
    pub rq: &'a [Requant],
    /// Input coding.
    pub x: Coding,
    /// Input zero point.
    pub x_zero: i64,
    /// Output format.
    pub out: ActQuant,
    /// Window (a Dense layer is 1×1, stride 1, no padding).
    pub window: Window,
    /// Groups.
    pub groups: usize,
    /// Input shape.
    pub in_shape: Shape,
    /// Output shape.
    pub out_shape: Shape,
    /// What the view computed from the weights, shared by every view of the layer that
    /// [`Linear::at_with`] builds from it.
    scan: Arc<Scan>,
}

/// What a layer's view computes from its weights and input coding, and what its candidate
/// layouts build alike: a function of the compiled layer alone, so the views of one layer
/// share it (a sweep's points, `map::PlanCache`).
#[derive(Debug)]
pub(crate) struct Scan {
    /// How the weights are stored in cells ([`Linear::weight_coding`]).
    stored: Coding,
    /// Per channel: the accumulator's interval.
    intervals: Vec<(i128, i128)>,
    /// Per channel: Σ_r w.
    wsum: Vec<i128>,
    /// Per channel: whether its requantization can give a nonzero output over its
    /// accumulator's interval (not [`arith::rounds_to_zero`]; [`Linear::common_mult`]).
    rq_live: Vec<bool>,
    /// Smallest weight, and the CSD digits (position, negative) of every weight from it up.
    digits: (i64, Vec<Vec<(u32, bool)>>),
    /// The same digits packed per weight value: byte 2j + neg counts digit (j, neg), when
    /// every position is below 8 (weights of up to 8 bits), so a chunk's digit histogram is
    /// one add per weight (the counting builder's hot loop).
    packed: Option<Vec<u128>>,
    /// Every weight as an i8, row by row, when every weight fits in one: what the row-range
    /// helpers ([`Linear::live_masks`], [`Linear::partial_interval`], the accumulator
    /// intervals) read, a quarter of the i32 weights' bytes.
    bytes: Option<Vec<i8>>,
    /// With `bytes`, per channel the running (Σw, Σ|w|) of its row at every [`BLOCK`]
    /// weights ([`block_sums`]): a long range's sums are a difference of two of them plus
    /// the few weights at its ends, so that the tables of slices 64 inputs or wider (one
    /// per slice width) do not each read every weight again.
    blocks: Option<Vec<(i32, i32)>>,
    /// What several candidate layouts of this layer would build alike, built once.
    pub(crate) memo: LayerMemo,
}

/// What candidate layouts of one layer share (the layout search costs dozens): the fitted
/// programs (their chunk and counted job, or why none fits) by [`PlanKey`], every
/// channel's partial-sum intervals and weight-bit masks by slice width. A program depends
/// on the columns but not on the lanes per subarray, so the points of a sweep over
/// subarray shapes that share the layer's view (`map::PlanCache`) build each program once.
#[derive(Debug, Default)]
pub(crate) struct LayerMemo {
    pub(crate) plans: Memo<PlanKey, Result<(usize, Job), MapError>>,
    pub(crate) tables: Memo<usize, PartialTable>,
    /// [`Linear::live_masks`] of every channel by slice width.
    lives: Memo<usize, Vec<Live>>,
}

/// The weight bits of one input position over a stored program's lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Live {
    /// Set in some lane.
    pub(crate) any: u64,
    /// Set in every lane.
    pub(crate) all: u64,
}

/// A layer's input images padded out to every tap's reach ([`Linear::padded`]).
#[derive(Debug)]
pub(crate) struct Padded {
    data: Vec<i64>,
    /// Codes per image.
    image: usize,
    /// Codes per input channel of an image.
    plane: usize,
    /// Codes per padded row.
    row: usize,
    /// The window's stride (rows, columns).
    stride: (usize, usize),
}

impl Padded {
    /// Where the lane of image `img` at output row `oy` and column `ox` reads tap (0, 0, 0).
    pub(crate) fn base(&self, img: usize, oy: usize, ox: usize) -> usize {
        img * self.image + oy * self.stride.0 * self.row + ox * self.stride.1
    }

    /// How far tap (input channel, kernel row, kernel column) lies from a lane's base.
    pub(crate) fn tap(&self, (ci, ky, kx): (usize, usize, usize)) -> usize {
        ci * self.plane + ky * self.row + kx
    }

    /// The code at `at` (a base plus a tap).
    pub(crate) fn get(&self, at: usize) -> i64 {
        self.data[at]
    }
}

/// What a fitted program depends on besides its layer: the program and the pass it runs,
/// its channels, the gate set, the columns, and the chunk its search starts from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PlanKey {
    /// 0 a stored pass with the reduction whole, 1 a stored pass of slices' partial sums, 2
    /// a reducer pass, 3 a `const` set.
    pub(crate) pass: u8,
    /// Slices, and the width of the first.
    pub(crate) slices: (usize, usize),
    /// Whether the weights stay resident.
    pub(crate) resident: bool,
    /// The program's channels.
    pub(crate) channels: Range<usize>,
    pub(crate) set: GateSet,
    pub(crate) cols: usize,
    /// The chunk the search starts from; `None`: the pass's own first guess
    /// (`stream::fitted`).
    pub(crate) from: Option<usize>,
}

impl Linear<'_> {
    /// Per input position j of a stored program over `channels` and the reduction slices
    /// `ranges`: which stored weight bits are set in some of its lanes and which in every
    /// lane (a lane past a shorter slice's end holds zero bits). A column of zeros needs
    /// no product, and on the XNOR route a column of zeros or of ones needs no XNOR.
    /// Every channel's (a shared program's) are computed once per layer and slice width
    /// (every candidate layout and every chunk size tried shares them); a channel group's
    /// are read from its rows when its program is built.
    pub(crate) fn live_masks(&self, channels: &[usize], ranges: &[Range<usize>]) -> Arc<Vec<Live>> {
        let len = ranges.iter().map(Range::len).max().unwrap_or(0);
        let build = || {
            // `Coding::encode`, with its case decided once.
            let code = self.scan.stored;
            let mask = if code.bits >= 64 {
                u64::MAX
            } else {
                (1u64 << code.bits) - 1
            };
            let encode = |w: i32| {
                if code.binary {
                    u64::from(w > 0)
                } else {
                    i64::from(w) as u64 & mask
                }
            };
            let r = self.reduction();
            match self.small() {
                // A byte holds a code of up to 8 bits: the low byte of the i64 encoding
                // (the case decided here too, so that the byte loop vectorizes).
                Some(s) if code.binary || code.bits <= 8 => {
                    let m = mask as u8;
                    let encode = |w: i8| {
                        if code.binary {
                            u8::from(w > 0)
                        } else {
                            w as u8 & m
                        }
                    };
                    fold_rows(|c| &s[c * r..(c + 1) * r], encode, channels, ranges, len)
                }
                _ => fold_rows(|c| self.row(c), encode, channels, ranges, len),
            }
        };
        let r = self.reduction();
        let every = !channels.is_empty()
            && channels.len() == self.channels()
            && channels.windows(2).all(|w| w[1] == w[0] + 1);
        if !every {
            // A channel group's (its program's own): read from its few rows each time, not
            // kept, as a sweep over subarray shapes meets thousands of groups.
            return Arc::new(build());
        }
        let whole = ranges.len() == 1 && ranges[0] == (0..r);
        let width = ranges.first().map_or(0, Range::len);
        self.scan
            .memo
            .lives
            .get_or_build(width, || {
                Ok(if whole || r == 0 {
                    build()
                } else {
                    // Each slice width's from the masks of every reduction position over
                    // all the rows, without reading every weight again.
                    slice_masks(
                        &self.live_masks(channels, std::slice::from_ref(&(0..r))),
                        ranges,
                        len,
                    )
                })
            })
            .expect("masks always build")
    }

    /// Every channel's partial-sum intervals over the slices `ranges` (all as wide as the
    /// first but the last, as [`chunks`] cuts them), computed once per layer and width.
    pub(crate) fn partial_table_of(&self, ranges: &[Range<usize>]) -> Arc<PartialTable> {
        let width = ranges.first().map_or(0, |r| r.len());
        self.scan
            .memo
            .tables
            .get_or_build(width, || Ok(partial_table(self, ranges)))
            .expect("a table always builds")
    }
}

/// [`Live`] per input position over the slices `ranges` (`len` positions, the longest
/// slice's), from `columns`, the masks of every reduction position over the same rows: a
/// position is live where it is in some slice, set in every lane where it is in every slice
/// (a lane past a shorter slice's end holds zero bits), as [`fold_rows`] finds it.
fn slice_masks(columns: &[Live], ranges: &[Range<usize>], len: usize) -> Vec<Live> {
    (0..len)
        .map(|j| {
            ranges.iter().fold(
                Live {
                    any: 0,
                    all: u64::MAX,
                },
                |m, r| match r.start + j {
                    at if at < r.end => Live {
                        any: m.any | columns[at].any,
                        all: m.all & columns[at].all,
                    },
                    _ => Live { all: 0, ..m },
                },
            )
        })
        .collect()
}

/// Weights per block of [`block_sums`].
const BLOCK: usize = 16;

/// Rows at least this long keep no [`block_sums`] (their sums could pass i32); their
/// ranges are summed weight by weight.
const MAX_BLOCKED_ROW: usize = 1 << 23;

/// Per row of `r` weights (`bytes` holds whole rows), the running (Σw, Σ|w|) at every
/// [`BLOCK`] weights: entries 0, BLOCK, 2·BLOCK, … up to ⌊r / BLOCK⌋·BLOCK, so
/// ⌊r / BLOCK⌋ + 1 per row. Exact in i32 for rows shorter than [`MAX_BLOCKED_ROW`]
/// (|w| ≤ 128).
fn block_sums(bytes: &[i8], r: usize) -> Vec<(i32, i32)> {
    if r == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(bytes.len() / r * (r / BLOCK + 1));
    for row in bytes.chunks_exact(r) {
        let mut at = (0i32, 0i32);
        out.push(at);
        for block in row.chunks_exact(BLOCK) {
            let (s, a) = byte_sums(block);
            at = (at.0 + s, at.1 + a);
            out.push(at);
        }
    }
    out
}

/// (Σw, Σ|w|) of fewer than 2^24 byte weights (a block, a narrow slice, a range's few end
/// bytes), in i32, which vectorizes better than i64.
fn byte_sums(w: &[i8]) -> (i32, i32) {
    debug_assert!(w.len() < 1 << 24, "{} bytes could pass i32", w.len());
    w.iter().fold((0, 0), |(s, a), &w| {
        let w = i32::from(w);
        (s + w, a + w.abs())
    })
}

/// (Σw, Σ|w|) of i32 weights that do not fit in bytes, term by term.
fn plain_sums(w: &[i32]) -> (i64, i64) {
    w.iter().fold((0, 0), |(s, a), &w| {
        let w = i64::from(w);
        (s + w, a + w.abs())
    })
}

/// The weight bits of each input position over `channels`' rows of `ranges`
/// ([`Linear::live_masks`]): `row(c)` is channel c's weights and `encode` gives a weight's
/// stored bits. Kept as two arrays while reduced over the rows, so that the word loops
/// vectorize, then paired.
fn fold_rows<'w, T: Copy + 'w, U>(
    row: impl Fn(usize) -> &'w [T],
    encode: impl Fn(T) -> U,
    channels: &[usize],
    ranges: &[Range<usize>],
    len: usize,
) -> Vec<Live>
where
    U: Copy
        + Into<u64>
        + std::ops::BitOrAssign
        + std::ops::BitAndAssign
        + std::ops::Not<Output = U>
        + Default,
{
    let mut any = vec![U::default(); len];
    let mut all = vec![!U::default(); len];
    for &c in channels {
        let row = row(c);
        for r in ranges {
            let src = &row[r.clone()];
            let n = src.len();
            for ((a, l), &w) in any[..n].iter_mut().zip(&mut all[..n]).zip(src) {
                let bits = encode(w);
                *a |= bits;
                *l &= bits;
            }
            // Past a shorter range's end the lanes hold zero bits.
            all[n..].fill(U::default());
        }
    }
    // With no rows, every lane's bits are all ones (as in u64, whatever U's width).
    let none = channels.is_empty();
    any.into_iter()
        .zip(all)
        .map(|(a, l)| Live {
            any: a.into(),
            all: if none { u64::MAX } else { l.into() },
        })
        .collect()
}

impl<'a> Linear<'a> {
    /// The linear view of layer `i` of a compiled network (None unless it is Dense or
    /// Conv2d); its input is the layer's first input.
    pub fn at(prog: &'a golden::Program, i: usize) -> Option<Linear<'a>> {
        Linear::at_with(prog, i, None)
    }

    /// [`Linear::at`], from the [`Scan`] of an earlier view of the same layer of the same
    /// program when given (then nothing is computed from the weights).
    pub(crate) fn at_with(
        prog: &'a golden::Program,
        i: usize,
        scan: Option<Arc<Scan>>,
    ) -> Option<Linear<'a>> {
        let layer = &prog.network().layers[i];
        let j = layer.inputs.first().copied().unwrap_or(0);
        Linear::of_with(
            &layer.op,
            prog.step(i),
            (prog.act(j), prog.act(i)),
            (prog.shape(j), prog.shape(i)),
            scan,
        )
    }

    /// Layer `i`'s (output channels, output positions per image, reduction length), as its
    /// view gives them, without building the view (None unless it is Dense or Conv2d).
    pub(crate) fn dims(prog: &golden::Program, i: usize) -> Option<(usize, usize, usize)> {
        let Step::Linear { w, .. } = prog.step(i) else {
            return None;
        };
        let d = w.dim();
        let out = prog.shape(i);
        Some((d.0, out.h * out.w, d.1 * d.2 * d.3))
    }

    /// The linear view of a compiled layer (None for other steps).
    pub fn of(
        op: &NetOp,
        step: &'a Step,
        x: ActQuant,
        out: ActQuant,
        in_shape: Shape,
        out_shape: Shape,
    ) -> Option<Linear<'a>> {
        Linear::of_with(op, step, (x, out), (in_shape, out_shape), None)
    }

    /// [`Linear::of`], from a given [`Scan`] of the same layer when there is one.
    fn of_with(
        op: &NetOp,
        step: &'a Step,
        (x, out): (ActQuant, ActQuant),
        (in_shape, out_shape): (Shape, Shape),
        scan: Option<Arc<Scan>>,
    ) -> Option<Linear<'a>> {
        let Step::Linear { w, bias, rq, .. } = step else {
            return None;
        };
        let (window, groups) = match *op {
            NetOp::Conv2d { window, groups, .. } => (window, groups),
            NetOp::Input { .. }
            | NetOp::Dense { .. }
            | NetOp::MaxPool { .. }
            | NetOp::AvgPool { .. }
            | NetOp::GlobalAvgPool
            | NetOp::Relu
            | NetOp::Relu6
            | NetOp::Add
            | NetOp::Concat
            | NetOp::Flatten
            | NetOp::BatchNorm { .. }
            | NetOp::Downsample { .. }
            | NetOp::Softmax
            | NetOp::Sign
            | NetOp::AttnScores { .. }
            | NetOp::AttnContext { .. }
            | NetOp::Shuffle { .. }
            | NetOp::Channels { .. }
            | NetOp::Lrn { .. }
            | NetOp::Unary { .. }
            | NetOp::Mul
            | NetOp::LayerNorm { .. }
            | NetOp::AttnSoftmax { .. }
            | NetOp::Embedding { .. }
            | NetOp::Positional { .. }
            | NetOp::KvCache { .. } => (
                Window {
                    kernel: [1, 1],
                    stride: [1, 1],
                    pad: [0; 4],
                    ceil: false,
                },
                1,
            ),
        };
        let fresh = scan.is_none();
        let mut l = Linear {
            scan: scan.unwrap_or_else(|| {
                // The weights read once for their range (the digit table's, the stored
                // coding's, and whether they fit in bytes).
                let stats = weight_stats(w);
                let digits = digit_table(stats);
                let packed = digits
                    .1
                    .iter()
                    .map(|ds| {
                        ds.iter().try_fold(0u128, |p, &(j, neg)| {
                            (j < 8)
                                .then(|| p + (1u128 << (8 * (2 * j as usize + usize::from(neg)))))
                        })
                    })
                    .collect();
                let (lo, hi, _) = stats;
                let bytes: Option<Vec<i8>> = (lo >= i64::from(i8::MIN) && hi <= i64::from(i8::MAX))
                    .then(|| {
                        let w = w.as_slice().expect("weights in standard layout");
                        w.iter().map(|&v| v as i8).collect()
                    });
                let reduction = w.len() / w.shape()[0].max(1);
                let blocks = bytes
                    .as_deref()
                    .filter(|_| reduction < MAX_BLOCKED_ROW)
                    .map(|b| block_sums(b, reduction));
                Arc::new(Scan {
                    stored: stored_coding(stats),
                    intervals: Vec::new(),
                    wsum: Vec::new(),
                    rq_live: Vec::new(),
                    digits,
                    packed,
                    bytes,
                    blocks,
                    memo: LayerMemo::default(),
                })
            }),
            w,
            bias,
            rq,
            x: Coding::of(&x),
            x_zero: i64::from(x.zero),
            out,
            window,
            groups,
            in_shape,
            out_shape,
        };
        if !fresh {
            return Some(l);
        }
        let (xl, xh) = l.x_centred();
        // Products and their row sums fit in i64: |x|, |w| < 2^17 and rows are shorter than
        // 2^28 (asserted), so each row is summed in i64 and widened once.
        let (xl, xh) = (i64::try_from(xl).ok()?, i64::try_from(xh).ok()?);
        let big = |v: i64| v.unsigned_abs() >= 1 << 17;
        let digits = &l.scan.digits;
        assert!(
            !big(xl)
                && !big(xh)
                && !big(digits.0)
                && !big(digits.0 + digits.1.len() as i64)
                && l.reduction() < 1 << 28,
            "operands beyond the i64 interval bound"
        );
        let (mut intervals, mut wsum) = (Vec::new(), Vec::new());
        let whole = 0..l.reduction();
        for co in 0..l.channels() {
            let sums = l.row_sums(co)(whole.clone());
            let (lo, hi) = product_bounds((xl, xh), sums);
            let bias = i128::from(l.bias[co]);
            intervals.push((bias + i128::from(lo), bias + i128::from(hi)));
            wsum.push(i128::from(sums.0));
        }
        let rq_live = intervals
            .iter()
            .zip(l.rq)
            .map(|(&(lo, hi), rq)| !arith::rounds_to_zero(lo, hi, i128::from(rq.mult), rq.shift))
            .collect();
        let scan = Arc::get_mut(&mut l.scan).expect("built here, not shared yet");
        (scan.intervals, scan.wsum, scan.rq_live) = (intervals, wsum, rq_live);
        Some(l)
    }

    /// What this view computed from the weights, to build the layer's other views from
    /// ([`Linear::at_with`]).
    pub(crate) fn scan(&self) -> Arc<Scan> {
        Arc::clone(&self.scan)
    }

    /// Every channel's accumulator interval.
    pub(crate) fn intervals(&self) -> &[(i128, i128)] {
        &self.scan.intervals
    }

    /// What several candidate layouts of this layer would build alike, built once.
    pub(crate) fn memo(&self) -> &LayerMemo {
        &self.scan.memo
    }

    /// Every weight as an i8, row by row, when every weight fits in one.
    fn small(&self) -> Option<&[i8]> {
        self.scan.bytes.as_deref()
    }

    /// Channel co's weights in reduction order (ci, kh, kw).
    pub fn row(&self, co: usize) -> &[i32] {
        let r = self.reduction();
        &self.w.as_slice().expect("weights in standard layout")[co * r..(co + 1) * r]
    }

    /// Histogram of the CSD digits of `row` by (position, negative), one past the highest
    /// position, and Σ row.
    pub(crate) fn digit_histogram(&self, row: &[i32]) -> ([[u64; 2]; 64], usize, i128) {
        let mut n = [[0u64; 2]; 64];
        let mut sw = 0i64;
        let mut top = 0usize;
        match &self.scan.packed {
            Some(packed) => {
                // Bytes count up to 255 digits each: flush every 255 weights.
                for part in row.chunks(255) {
                    let mut acc = 0u128;
                    for &w in part {
                        let w = i64::from(w);
                        sw += w;
                        acc += packed[(w - self.scan.digits.0) as usize];
                    }
                    for f in 0..16 {
                        n[f / 2][f % 2] += (acc >> (8 * f)) as u64 & 0xff;
                    }
                }
                top = (0..8).rev().find(|&j| n[j] != [0, 0]).map_or(0, |j| j + 1);
            }
            None => {
                for &w in row {
                    let w = i64::from(w);
                    sw += w;
                    for &(j, neg) in self.digits_of(w) {
                        n[j as usize][usize::from(neg)] += 1;
                        top = top.max(j as usize + 1);
                    }
                }
            }
        }
        (n, top, i128::from(sw))
    }

    /// The nonzero CSD digits of a weight: (position, negative).
    pub(crate) fn digits_of(&self, w: i64) -> &[(u32, bool)] {
        &self.scan.digits.1[(w - self.scan.digits.0) as usize]
    }

    /// Reduction length per output (C_in/groups·kh·kw).
    pub fn reduction(&self) -> usize {
        let d = self.w.dim();
        d.1 * d.2 * d.3
    }

    /// Output channels.
    pub fn channels(&self) -> usize {
        self.w.dim().0
    }

    /// Output positions per image.
    pub fn positions(&self) -> usize {
        self.out_shape.h * self.out_shape.w
    }

    /// Where reduction index r of output channel co reads its input: (input channel, kernel
    /// row, kernel column).
    pub(crate) fn tap(&self, co: usize, r: usize) -> (usize, usize, usize) {
        let (_, cin_g, kh, kw) = self.w.dim();
        let g = co / (self.channels() / self.groups);
        (g * cin_g + r / (kh * kw), r / kw % kh, r % kw)
    }

    /// The input images padded with the input's zero point out to every tap's reach, in
    /// one array, so that a lane at output row oy and column ox reads tap (ci, ky, kx),
    /// input row oy·stride + ky − pad and column ox·stride + kx − pad (the zero point in
    /// the padding), at [`Padded::base`] + [`Padded::tap`] with no bounds to check.
    pub(crate) fn padded(&self, x: &[ndarray::Array3<i64>]) -> Padded {
        let (sy, sx) = (self.window.stride[0], self.window.stride[1]);
        let (pt, pl) = (self.window.pad[0], self.window.pad[1]);
        let [kh, kw] = self.window.kernel;
        let (h, w) = (self.in_shape.h, self.in_shape.w);
        // Padded rows and columns: every tap (oy·sy + ky, in padded coordinates) and every
        // input row or column lie inside.
        let hp = (h + pt).max((self.out_shape.h.max(1) - 1) * sy + kh);
        let wp = (w + pl).max((self.out_shape.w.max(1) - 1) * sx + kw);
        let c = self.in_shape.c;
        let mut data = vec![self.x_zero; x.len() * c * hp * wp];
        for (img, xi) in x.iter().enumerate() {
            assert_eq!(
                xi.dim(),
                (c, h, w),
                "an input image of the layer's input shape"
            );
            for ((ci, y, xx), &v) in xi.indexed_iter() {
                data[((img * c + ci) * hp + y + pt) * wp + xx + pl] = v;
            }
        }
        Padded {
            data,
            image: c * hp * wp,
            plane: hp * wp,
            row: wp,
            stride: (sy, sx),
        }
    }

    /// The (image, output row, output column) of lane position g, g = image · `positions` +
    /// output position.
    pub(crate) fn place(&self, g: usize, positions: usize) -> (usize, usize, usize) {
        let (img, p) = (g / positions, g % positions);
        (img, p / self.out_shape.w, p % self.out_shape.w)
    }

    /// Centred input interval [x_lo − z, x_hi − z].
    pub(crate) fn x_centred(&self) -> (i128, i128) {
        let (lo, hi) = self.x.range();
        let z = i128::from(self.x_zero);
        if self.x.binary {
            (-1, 1)
        } else {
            (lo - z, hi - z)
        }
    }

    /// The exact interval of channel co's accumulator (bias included).
    pub fn acc_interval(&self, co: usize) -> (i128, i128) {
        self.scan.intervals[co]
    }

    /// The exact interval of channel co's partial sum over reduction range `rs`, Σ_r w·v
    /// with v the value of the input's stored bits without their offset (v = x − offset,
    /// see [`Linear::lane_constant`]): what a slice of a reduction split in space adds. On
    /// the XNOR route ([`Linear::xnor`]) a slice adds Σ_r 2·XNOR(a_r, b_r) instead, any
    /// value in [0, 2·|rs|].
    pub fn partial_interval(&self, co: usize, rs: Range<usize>) -> (i128, i128) {
        let (lo, hi) = self.partial_intervals(co, std::slice::from_ref(&rs))[0];
        (i128::from(lo), i128::from(hi))
    }

    /// [`Linear::partial_interval`] of channel co over each of `ranges`, what is common to
    /// them worked out once (a table of narrow slices makes many short ranges). The ends
    /// are i64, as they are computed (see [`product_bounds`]); a table keeps them in i32
    /// when they fit ([`PartialTable`]).
    pub fn partial_intervals(&self, co: usize, ranges: &[Range<usize>]) -> Vec<(i64, i64)> {
        if self.xnor() {
            return ranges.iter().map(|rs| (0, 2 * rs.len() as i64)).collect();
        }
        let (vl, vh) = self.centred_range();
        // Slices of up to a few blocks, cut as `chunks` cuts the row (a table of narrow
        // slices): summed along the row's bytes, a slice at a time, rather than from the
        // blocks' sums and the bytes at both ends of each.
        let r = self.reduction();
        let w = self.cut_width(ranges).filter(|&w| w < 4 * BLOCK);
        if let (Some(row), Some(w)) = (self.small(), w) {
            return row[co * r..(co + 1) * r]
                .chunks(w)
                .map(|slice| {
                    let (sum, abs) = byte_sums(slice);
                    product_bounds((vl, vh), (i64::from(sum), i64::from(abs)))
                })
                .collect();
        }
        let sums = self.row_sums(co);
        ranges
            .iter()
            .map(|rs| product_bounds((vl, vh), sums(rs.clone())))
            .collect()
    }

    /// The input range a partial sum's products take their ends from ([`product_bounds`]),
    /// centred: in i64, as the accumulator intervals are (`Linear::of` bounds |v|, |w| and
    /// the row length so that a row's sums fit).
    fn centred_range(&self) -> (i64, i64) {
        let (xl, xh) = self.x_centred();
        let a0 = self.x_centred_offset();
        ((xl - a0) as i64, (xh - a0) as i64)
    }

    /// The width of the slices `ranges` when they are cut as [`chunks`] cuts the row (all
    /// as wide as the first but the last), None otherwise or when empty.
    fn cut_width(&self, ranges: &[Range<usize>]) -> Option<usize> {
        let r = self.reduction();
        let w = ranges.first().map_or(0, Range::len);
        let cut = w > 0
            && ranges.len() == r.div_ceil(w)
            && ranges
                .iter()
                .enumerate()
                .all(|(k, rs)| *rs == (k * w..((k + 1) * w).min(r)));
        cut.then_some(w)
    }

    /// The partial-sum table of the slices `ranges` kept as every channel's weight sums
    /// (Σw, Σ|w|) over each slice, in i16 ([`PartialTable::of_sums`]; the intervals are
    /// [`product_bounds`] of them, as [`Linear::partial_intervals`] finds them). None unless
    /// the weights are bytes, the layer is not XNOR, and the slices are cut as [`chunks`]
    /// cuts the row, at most 255 inputs wide (their sums then fit in i16: |Σw|, Σ|w| ≤
    /// 255 · 128).
    pub(crate) fn slice_sums(&self, ranges: &[Range<usize>]) -> Option<PartialTable> {
        if self.xnor() {
            return None;
        }
        let bytes = self.small()?;
        let r = self.reduction();
        let w = self.cut_width(ranges).filter(|&w| w <= 255)?;
        let xs = self.centred_range();
        let mut sums = Vec::with_capacity(self.channels() * ranges.len());
        let mut unions = Vec::with_capacity(self.channels());
        for row in bytes.chunks_exact(r.max(1)).take(self.channels()) {
            let (mut lo, mut hi) = (0i64, 0i64);
            sums.extend(row.chunks(w).map(|slice| {
                let (sum, abs) = byte_sums(slice);
                let (a, b) = product_bounds(xs, (i64::from(sum), i64::from(abs)));
                (lo, hi) = (lo.min(a), hi.max(b));
                (sum as i16, abs as i16)
            }));
            unions.push((lo, hi));
        }
        Some(PartialTable::of_sums(ranges.len(), xs, sums, unions))
    }

    /// (Σw, Σ|w|) over a range of channel co's weights, the range given to the function
    /// returned: from the running sums of their bytes' blocks and the bytes at the range's
    /// ends when they fit in bytes, else from the i32 weights one by one. The row is looked
    /// up once for all the ranges of a table.
    fn row_sums(&self, co: usize) -> impl Fn(Range<usize>) -> (i64, i64) + '_ {
        let r = self.reduction();
        let bytes = self.small().map(|s| &s[co * r..(co + 1) * r]);
        let blocks = self
            .scan
            .blocks
            .as_deref()
            .map(|b| &b[co * (r / BLOCK + 1)..(co + 1) * (r / BLOCK + 1)]);
        let wide = self.row(co);
        move |rs: Range<usize>| match (bytes, blocks) {
            (Some(row), Some(p)) => {
                // The whole blocks inside the range, from the running sums.
                let (a, b) = (rs.start.div_ceil(BLOCK), rs.end / BLOCK);
                if a >= b {
                    let (s, a) = byte_sums(&row[rs]);
                    return (i64::from(s), i64::from(a));
                }
                let (hs, ha) = byte_sums(&row[rs.start..a * BLOCK]);
                let (ts, ta) = byte_sums(&row[b * BLOCK..rs.end]);
                (
                    i64::from(hs) + i64::from(ts) + i64::from(p[b].0 - p[a].0),
                    i64::from(ha) + i64::from(ta) + i64::from(p[b].1 - p[a].1),
                )
            }
            _ => plain_sums(&wide[rs]),
        }
    }

    /// Per-lane constant of channel co: bias + Σ_r w·(offset − z_x), where the input's stored
    /// bits carry value Σ ±2^i·b + offset. On the XNOR route, where the lanes sum
    /// 2·XNOR(a, b) = x·w + 1 per input, it is bias − n − z_x·Σw over the row's n inputs.
    pub fn lane_constant(&self, co: usize) -> i128 {
        let z = i128::from(self.x_zero);
        if self.xnor() {
            return i128::from(self.bias[co]) - self.reduction() as i128 - z * self.scan.wsum[co];
        }
        let a0 = self.x_offset() - z;
        i128::from(self.bias[co]) + a0 * self.scan.wsum[co]
    }

    /// Whether stored products take the XNOR route: a ±1 input (bit a, set for +1) times a
    /// ±1 weight (bit b) is 2·XNOR(a, b) − 1, one heap bit per input where the general
    /// product (2a − 1)(2b − 1) = 4ab − 2a − 2b + 1 needs two (the AND and ¬a; the −2b + 1
    /// folds into K). This is the XNOR-popcount of binary networks (XNOR-Net,
    /// docs/references.md [Rastegari2016], [R]), done in the array's bit heap.
    pub fn xnor(&self) -> bool {
        self.x.binary && self.scan.stored.binary
    }

    /// The code a lane past a shorter slice's end loads for its input, so that its product
    /// with the zero weight bits loaded there adds nothing: the code minimum (its bits are
    /// zero, and an AND with them is zero), or +1 on the XNOR route (XNOR(1, 0) = 0).
    pub(crate) fn x_past_end(&self) -> i64 {
        if self.xnor() {
            1
        } else {
            self.x_offset() as i64
        }
    }

    pub(crate) fn x_offset(&self) -> i128 {
        if self.x.binary { -1 } else { 0 }
    }

    /// How weights are stored in cells for [`Strategy::Stored`]: binary (one bit, set for
    /// +1) when every weight is ±1, else two's complement of the narrowest width holding
    /// them all.
    pub fn weight_coding(&self) -> Coding {
        self.scan.stored
    }

    /// Output coding.
    pub fn out_coding(&self) -> Coding {
        Coding::of(&self.out)
    }
}

/// A layer's smallest and largest weight (0 and 0 when it has none) and whether every
/// weight is ±1.
pub(crate) type WeightStats = (i64, i64, bool);

/// [`WeightStats`] of `w`, in one pass.
pub(crate) fn weight_stats(w: &Array4<i32>) -> WeightStats {
    if w.is_empty() {
        return (0, 0, true);
    }
    let fold = |(lo, hi, pm1): (i32, i32, bool), &v: &i32| {
        (lo.min(v), hi.max(v), pm1 & ((v == 1) | (v == -1)))
    };
    // Over the slice where the codes are in standard layout (as compiled): it vectorizes.
    let (lo, hi, pm1) = match w.as_slice() {
        Some(s) => s.iter().fold((i32::MAX, i32::MIN, true), fold),
        None => w.iter().fold((i32::MAX, i32::MIN, true), fold),
    };
    (i64::from(lo), i64::from(hi), pm1)
}

/// The interval of Σ_r w_r·x_r over x_r in [xl, xh], from the weights' (Σw, Σ|w|): the
/// positive and negative weights apart, Σw⁺ = (Σw + Σ|w|)/2 and Σw⁻ = (Σw − Σ|w|)/2, each
/// taking the end of the input range that makes its products smallest (largest). Exact
/// in i64 within `Linear::of`'s asserted bounds.
pub(crate) fn product_bounds((xl, xh): (i64, i64), (sum, abs): (i64, i64)) -> (i64, i64) {
    let (pos, neg) = ((sum + abs) / 2, (sum - abs) / 2);
    (xl * pos + xh * neg, xh * pos + xl * neg)
}

/// The smallest weight, and the CSD digits (position, negative) of every weight value from
/// it up to the largest.
pub(crate) fn digit_table((lo, hi, _): WeightStats) -> (i64, Vec<Vec<(u32, bool)>>) {
    let table = (lo..=hi)
        .map(|v| {
            csd_digits(i128::from(v))
                .iter()
                .enumerate()
                .filter(|(_, d)| **d != 0)
                .map(|(j, &d)| (j as u32, d < 0))
                .collect()
        })
        .collect();
    (lo, table)
}

/// How a layer's weights are stored in cells: one bit each when every weight is ±1, else
/// signed two's complement wide enough for their range.
pub(crate) fn stored_coding((lo, hi, pm1): WeightStats) -> Coding {
    // The range holds 0 (the cells' code of a missing weight).
    let (lo, hi) = (lo.min(0), hi.max(0));
    if pm1 {
        Coding {
            bits: 1,
            signed: false,
            binary: true,
        }
    } else {
        Coding::signed(arith::signed_width(i128::from(lo), i128::from(hi)))
    }
}

/// What the runner loads into a job's columns before a segment, per lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Input code for reduction index r (the lane's receptive field).
    X(usize),
    /// The lane's channel's weight r ([`Strategy::Stored`]).
    W(usize),
    /// The lane's channel's constant, modulo 2^width ([`Strategy::Stored`]).
    K,
    /// The lane's channel's requantization multiplier at the block's common shift.
    M,
    /// Whether that multiplier is non-zero.
    MPos,
    /// The lane's partial sum of reduction slice s ([`reduce_job`]).
    Partial(usize),
}

/// A [`Source`] without its index: what decides which lanes of a run share a loaded value
/// (`stream::Distinct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum SourceKind {
    /// [`Source::X`].
    X,
    /// [`Source::W`].
    W,
    /// [`Source::K`].
    K,
    /// [`Source::M`].
    M,
    /// [`Source::MPos`].
    MPos,
    /// [`Source::Partial`].
    Partial,
}

impl SourceKind {
    /// Its place in [`SourceKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Every kind.
    pub const ALL: [SourceKind; 6] = [
        SourceKind::X,
        SourceKind::W,
        SourceKind::K,
        SourceKind::M,
        SourceKind::MPos,
        SourceKind::Partial,
    ];
}

impl Source {
    /// Its kind.
    pub fn kind(self) -> SourceKind {
        match self {
            Source::X(_) => SourceKind::X,
            Source::W(_) => SourceKind::W,
            Source::K => SourceKind::K,
            Source::M => SourceKind::M,
            Source::MPos => SourceKind::MPos,
            Source::Partial(_) => SourceKind::Partial,
        }
    }
}

/// One operand written into every lane of a job before a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// What.
    pub source: Source,
    /// Columns, bit 0 first.
    pub cols: Arc<[Col]>,
    /// How the value is stored.
    pub coding: Coding,
    /// Written once, when the network is deployed (resident weights and constants), not
    /// before every run.
    pub resident: bool,
}

/// A run of ops preceded by operand loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Loads before the ops.
    pub loads: Vec<Load>,
    /// Op range in the job's program.
    pub ops: Range<usize>,
    /// Loads before the ops that a counting builder's job counts without listing them (the
    /// inputs and weights of a chunk: their sizes are all its cost needs); a generated job
    /// lists every load.
    pub counted: LoadCounts,
}

/// Load columns per lane by source kind (in [`SourceKind::ALL`]'s order) and residency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadCounts([[u64; 2]; 6]);

impl LoadCounts {
    /// Adds `n` loads of `cols` columns each of `kind`.
    pub fn add(&mut self, kind: SourceKind, resident: bool, cols: usize, n: usize) {
        self.0[kind.index()][usize::from(resident)] += (cols * n) as u64;
    }

    /// Load columns of `kind`, resident or not.
    pub fn get(&self, kind: SourceKind, resident: bool) -> u64 {
        self.0[kind.index()][usize::from(resident)]
    }

    /// Whether some load is not resident.
    fn loads_per_run(&self) -> bool {
        self.0.iter().any(|k| k[0] > 0)
    }
}

/// A generated program for one subarray's lanes, in segments.
#[derive(Debug, Clone)]
pub struct Job {
    /// The op stream.
    pub program: Program,
    /// Segments in order.
    pub segments: Vec<Segment>,
    /// Output columns: per channel of the set ([`Strategy::Const`]), or one entry for every
    /// lane's own channel ([`Strategy::Stored`]).
    pub outputs: Vec<Vec<Col>>,
    /// Output coding.
    pub out: Coding,
    /// The program's tally (also without the program: a counting builder's job).
    pub tally: Tally,
    /// Columns it needs: the program's, or a counting builder's bound.
    pub cols: usize,
    /// Copies made so that no gate reads a cell twice ([`Builder::shared_copies`]).
    pub shared_copies: u64,
    /// The segments' load columns per lane, listed and counted, summed once when the job
    /// is closed: what a run's loads cost depends on no more ([`super::stream::run_job`]).
    load_cols: LoadCounts,
    /// Segments that load something not resident before their ops.
    loading_segments: u64,
}

impl Job {
    /// Closes a builder into a job.
    pub fn new(b: Builder, segments: Vec<Segment>, outputs: Vec<Vec<Col>>, out: Coding) -> Job {
        let (tally, cols, shared_copies) = (b.tally(), b.cols(), b.shared_copies());
        let mut load_cols = LoadCounts::default();
        for s in &segments {
            for (k, counted) in load_cols.0.iter_mut().zip(&s.counted.0) {
                k[0] += counted[0];
                k[1] += counted[1];
            }
            for l in &s.loads {
                load_cols.add(l.source.kind(), l.resident, l.cols.len(), 1);
            }
        }
        let loading_segments = segments
            .iter()
            .filter(|s| s.counted.loads_per_run() || s.loads.iter().any(|l| !l.resident))
            .count() as u64;
        Job {
            program: b.finish(),
            segments,
            outputs,
            out,
            tally,
            cols,
            shared_copies,
            load_cols,
            loading_segments,
        }
    }

    /// The job without its segments, outputs and program: what pricing a counted job reads
    /// (its tally, columns and load counts), to keep many of them (`LayerMemo`).
    pub(crate) fn priced_only(self) -> Job {
        Job {
            program: Program::default(),
            segments: Vec::new(),
            outputs: Vec::new(),
            ..self
        }
    }

    /// Load columns per lane of `kind`, resident or not.
    pub fn load_cols(&self, kind: SourceKind, resident: bool) -> u64 {
        self.load_cols.get(kind, resident)
    }

    /// Its load columns per lane by kind and residency.
    pub fn load_counts(&self) -> LoadCounts {
        self.load_cols
    }

    /// Segments that load something not resident before their ops (a partial row write per
    /// lane each).
    pub fn loading_segments(&self) -> u64 {
        self.loading_segments
    }

    /// Bits written into each lane before every run (all segments' loads but the
    /// resident ones).
    pub fn loaded_bits_per_lane(&self) -> u64 {
        self.bits_per_lane(false)
    }

    /// Bits of each lane that are resident: written once, at deployment.
    pub fn resident_bits_per_lane(&self) -> u64 {
        self.bits_per_lane(true)
    }

    fn bits_per_lane(&self, resident: bool) -> u64 {
        self.load_cols
            .0
            .iter()
            .map(|k| k[usize::from(resident)])
            .sum()
    }
}

/// Chunks of the reduction dimension.
pub fn chunks(reduction: usize, chunk: usize) -> Vec<Range<usize>> {
    (0..reduction.div_ceil(chunk))
        .map(|k| k * chunk..((k + 1) * chunk).min(reduction))
        .collect()
}

/// Releases the temporaries among `cols` (index ≥ `first_temp`, not in `keep`), once each.
pub(crate) fn release_temps(b: &mut Builder, cols: &[Col], keep: &[Col], first_temp: Col) {
    let mut done: Vec<Col> = Vec::new();
    for &c in cols {
        if c >= first_temp && !keep.contains(&c) && !done.contains(&c) {
            done.push(c);
            b.release(c);
        }
    }
}

/// The epilogue of one accumulator: sign into a binary output, else requantize and
/// saturate; consumes the accumulator's temporaries.
pub(crate) fn epilogue(
    b: &mut Builder,
    l: &Linear<'_>,
    acc: &Signal,
    mult: &Mult<'_>,
    shift: u32,
    first_temp: Col,
) -> Result<Vec<Col>, MapError> {
    let out = l.out_coding();
    let mut temps: Vec<Col> = acc.bits.iter().map(|x| x.col).collect();
    let cols = if out.binary {
        // +1 (bit 1) iff acc ≥ 0: ¬sign.
        let top = acc.bits[acc.bits.len() - 1];
        vec![if acc.lo >= 0 {
            b.constant(true)
        } else if acc.hi < 0 {
            b.constant(false)
        } else {
            b.not(top.col)
        }]
    } else {
        let (lo, hi) = l.out.range();
        let (cols, more) = arith::requantize(
            b,
            acc,
            mult,
            shift,
            i64::from(l.out.zero),
            i128::from(lo),
            i128::from(hi),
            out,
        )?;
        temps.extend(more);
        cols
    };
    release_temps(b, &temps, &cols, first_temp);
    Ok(cols)
}

/// A builder for a job: counting (closed form, the analytical cost) or real.
pub(crate) fn builder(set: GateSet, counting: bool) -> Builder {
    if counting {
        Builder::counting(set)
    } else {
        Builder::new(set)
    }
}

impl Linear<'_> {
    pub(crate) fn x_centred_offset(&self) -> i128 {
        self.x_offset() - i128::from(self.x_zero)
    }

    /// The common requantization shift of a set of channels, and each channel's multiplier
    /// at that shift (round_shift(a·m, s) = round_shift(a·m·2^(S−s), S) exactly). A channel
    /// whose product never reaches half a step over its accumulator's interval rounds to 0
    /// in every lane ([`arith::rounds_to_zero`]): it gets multiplier 0 and does not raise
    /// the common shift (a near-empty pruned channel would otherwise widen every lane's
    /// multiplier and heaps by its large shift).
    pub fn common_mult(&self, channels: &[usize]) -> (u32, Vec<i128>) {
        let live = |c: usize| self.scan.rq_live[c];
        let s = channels
            .iter()
            .filter(|&&c| live(c))
            .map(|&c| self.rq[c].shift)
            .max()
            .unwrap_or(0);
        let m = channels
            .iter()
            .map(|&c| {
                if live(c) {
                    i128::from(self.rq[c].mult) << (s - self.rq[c].shift)
                } else {
                    0
                }
            })
            .collect();
        (s, m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A shared program's masks over the slices, taken from the masks of every
        /// reduction position ([`slice_masks`]), equal those read from the rows slice by
        /// slice ([`fold_rows`]), at a position past a shorter slice's end too: the rows'
        /// weights are all odd, so bit 0 is set in every lane but there.
        #[test]
        fn slice_masks_match_the_rows(
            rows in prop::collection::vec(
                prop::collection::vec(prop::sample::select(vec![-1i8, 3, 5, 7, -3]), 40), 1..5),
            width in 1usize..41,
        ) {
            let r = 40;
            let channels: Vec<usize> = (0..rows.len()).collect();
            let ranges = chunks(r, width);
            let len = ranges[0].len();
            let row = |c: usize| &rows[c][..];
            let encode = |w: i8| w as u8;
            let columns = fold_rows(row, encode, &channels, std::slice::from_ref(&(0..r)), r);
            prop_assert_eq!(
                slice_masks(&columns, &ranges, len),
                fold_rows(row, encode, &channels, &ranges, len)
            );
        }
    }
}
