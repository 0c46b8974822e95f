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

pub use super::jobs::{StoredSpec, const_job, partial_table, reduce_job, stored_job, union};
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
    pub w: &'a Array4<i64>,
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
    /// Smallest weight, and the CSD digits (position, negative) of every weight from it up.
    digits: (i64, Vec<Vec<(u32, bool)>>),
    /// The same digits packed per weight value: byte 2j + neg counts digit (j, neg), when
    /// every position is below 8 (weights of up to 8 bits), so a chunk's digit histogram is
    /// one add per weight (the counting builder's hot loop).
    packed: Option<Vec<u128>>,
    /// What several candidate layouts of this layer would build alike, built once.
    pub(crate) memo: LayerMemo,
}

/// What candidate layouts of one layer share (the layout search costs dozens): the fitted
/// programs (their chunk and counted job, or why none fits) by [`PlanKey`], and every
/// channel's partial-sum intervals by slice count. A program depends on the columns but not
/// on the lanes per subarray, so the points of a sweep over subarray shapes that share the
/// layer's view (`map::PlanCache`) build each program once.
#[derive(Debug, Default)]
pub(crate) struct LayerMemo {
    pub(crate) plans: Memo<PlanKey, Result<(usize, Job), MapError>>,
    pub(crate) tables: Memo<usize, Vec<Vec<(i128, i128)>>>,
    /// [`Linear::live_masks`] by (program channels, slice width).
    lives: Memo<(Range<usize>, usize), Vec<Live>>,
}

/// The weight bits of one input position over a stored program's lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Live {
    /// Set in some lane.
    pub(crate) any: u64,
    /// Set in every lane.
    pub(crate) all: u64,
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
    /// Computed once per layer for each contiguous channel set and slice width (every
    /// candidate layout and every chunk size tried shares it), row by row.
    pub(crate) fn live_masks(&self, channels: &[usize], ranges: &[Range<usize>]) -> Arc<Vec<Live>> {
        let len = ranges.iter().map(Range::len).max().unwrap_or(0);
        let build = || {
            let mut lives = vec![
                Live {
                    any: 0,
                    all: u64::MAX
                };
                len
            ];
            // `Coding::encode`, with its case decided once.
            let code = self.scan.stored;
            let mask = if code.bits >= 64 {
                u64::MAX
            } else {
                (1u64 << code.bits) - 1
            };
            for &c in channels {
                let row = self.row(c);
                for r in ranges {
                    let src = &row[r.clone()];
                    let (head, tail) = lives.split_at_mut(src.len());
                    if code.binary {
                        for (live, &w) in head.iter_mut().zip(src) {
                            let bits = u64::from(w > 0);
                            live.any |= bits;
                            live.all &= bits;
                        }
                    } else {
                        for (live, &w) in head.iter_mut().zip(src) {
                            let bits = w as u64 & mask;
                            live.any |= bits;
                            live.all &= bits;
                        }
                    }
                    // Past a shorter range's end the lanes hold zero bits.
                    for live in tail {
                        live.all = 0;
                    }
                }
            }
            lives
        };
        let contiguous = channels.windows(2).all(|w| w[1] == w[0] + 1);
        match (channels.first(), channels.last()) {
            (Some(&first), Some(&last)) if contiguous => self
                .scan
                .memo
                .lives
                .get_or_build(
                    (first..last + 1, ranges.first().map_or(0, Range::len)),
                    || Ok(build()),
                )
                .expect("masks always build"),
            _ => Arc::new(build()),
        }
    }

    /// Every channel's partial-sum intervals over the slices `ranges` (all as wide as the
    /// first but the last, as [`chunks`] cuts them), computed once per layer and width.
    pub(crate) fn partial_table_of(&self, ranges: &[Range<usize>]) -> Arc<Vec<Vec<(i128, i128)>>> {
        let width = ranges.first().map_or(0, |r| r.len());
        self.scan
            .memo
            .tables
            .get_or_build(width, || Ok(partial_table(self, ranges)))
            .expect("a table always builds")
    }
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
                let digits = digit_table(w);
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
                Arc::new(Scan {
                    stored: stored_coding(w),
                    intervals: Vec::new(),
                    wsum: Vec::new(),
                    digits,
                    packed,
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
        for co in 0..l.channels() {
            let (mut lo, mut hi, mut sw) = (0i64, 0i64, 0i64);
            for &w in l.row(co) {
                let (a, b) = if w >= 0 { (xl, xh) } else { (xh, xl) };
                lo += a * w;
                hi += b * w;
                sw += w;
            }
            let bias = i128::from(l.bias[co]);
            intervals.push((bias + i128::from(lo), bias + i128::from(hi)));
            wsum.push(i128::from(sw));
        }
        let scan = Arc::get_mut(&mut l.scan).expect("built here, not shared yet");
        (scan.intervals, scan.wsum) = (intervals, wsum);
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

    /// Channel co's weights in reduction order (ci, kh, kw).
    pub fn row(&self, co: usize) -> &[i64] {
        let r = self.reduction();
        &self.w.as_slice().expect("weights in standard layout")[co * r..(co + 1) * r]
    }

    /// Histogram of the CSD digits of `row` by (position, negative), one past the highest
    /// position, and Σ row.
    pub(crate) fn digit_histogram(&self, row: &[i64]) -> ([[u64; 2]; 64], usize, i128) {
        let mut n = [[0u64; 2]; 64];
        let mut sw = 0i64;
        let mut top = 0usize;
        match &self.scan.packed {
            Some(packed) => {
                // Bytes count up to 255 digits each: flush every 255 weights.
                for part in row.chunks(255) {
                    let mut acc = 0u128;
                    for &w in part {
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

    /// The input code a lane (image input `x`, output row oy and column ox) loads at `tap`
    /// ([`Linear::tap`]): the zero point in the padding.
    pub(crate) fn gather_tap(
        &self,
        x: &ndarray::Array3<i64>,
        (ci, ky, kx): (usize, usize, usize),
        oy: usize,
        ox: usize,
    ) -> i64 {
        let y = (oy * self.window.stride[0] + ky) as isize - self.window.pad[0] as isize;
        let xx = (ox * self.window.stride[1] + kx) as isize - self.window.pad[1] as isize;
        if y < 0 || xx < 0 || y as usize >= self.in_shape.h || xx as usize >= self.in_shape.w {
            self.x_zero
        } else {
            x[[ci, y as usize, xx as usize]]
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
        if self.xnor() {
            return (0, 2 * rs.len() as i128);
        }
        let (xl, xh) = self.x_centred();
        let a0 = self.x_centred_offset();
        // In i64, as the accumulator intervals are (`Linear::of` bounds |v|, |w| and the
        // row length so that a row's sums fit).
        let (vl, vh) = ((xl - a0) as i64, (xh - a0) as i64);
        // Σ_{w≥0} vl·w + Σ_{w<0} vh·w = vl·Σw⁺ + vh·Σw⁻ (and the same for hi): the
        // positive and negative weights summed apart, exactly, as Σw⁺ = (Σw + Σ|w|)/2 and
        // Σw⁻ = (Σw − Σ|w|)/2 (two plain sums, which vectorize).
        let (sum, abs) = self.row(co)[rs]
            .iter()
            .fold((0i64, 0i64), |(s, a), &w| (s + w, a + w.abs()));
        let (pos, neg) = ((sum + abs) / 2, (sum - abs) / 2);
        (
            i128::from(vl * pos + vh * neg),
            i128::from(vh * pos + vl * neg),
        )
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

pub(crate) fn digit_table(w: &Array4<i64>) -> (i64, Vec<Vec<(u32, bool)>>) {
    let lo = w.iter().copied().min().unwrap_or(0);
    let hi = w.iter().copied().max().unwrap_or(0);
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

pub(crate) fn stored_coding(w: &Array4<i64>) -> Coding {
    let (mut lo, mut hi) = (0i64, 0i64);
    let mut pm1 = true;
    for &v in w.iter() {
        lo = lo.min(v);
        hi = hi.max(v);
        pm1 &= v == 1 || v == -1;
    }
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
        let live = |c: usize| {
            let (lo, hi) = self.acc_interval(c);
            !arith::rounds_to_zero(lo, hi, i128::from(self.rq[c].mult), self.rq[c].shift)
        };
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
