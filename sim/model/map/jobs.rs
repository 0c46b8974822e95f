//! The two strategies' programs for a set of channels: `const` (weights as constants of the program) and `stored` (weights loaded as operands), each reduction in chunks that fit the subarray.

use super::arith::{self, Coding, Lit, Mult, Nonzero, Signal, Sum};
use super::linear::*;
use crate::error::MapError;
use crate::model::engine::isa::Col;
use crate::model::kernels::{Builder, GateSet, Tally};
use std::ops::Range;
use std::sync::Arc;

/// [`Strategy::Const`]: one program for output channels `chs` on any lanes; `counting`
/// builds its tally in closed form instead (the weights' CSD digits counted per position).
pub fn const_job(
    set: GateSet,
    l: &Linear<'_>,
    chs: Range<usize>,
    chunk: usize,
    counting: bool,
) -> Result<Job, MapError> {
    const_job_within(set, l, chs, chunk, counting, None)
}

/// [`const_job`], a counting one given up as it stands after the first chunk that leaves
/// its columns past `within` ([`cut_short`]).
pub(crate) fn const_job_within(
    set: GateSet,
    l: &Linear<'_>,
    chs: Range<usize>,
    chunk: usize,
    counting: bool,
    within: Option<usize>,
) -> Result<Job, MapError> {
    let mut b = builder(set, counting);
    let a = l.x.bits;
    let x_cols = operands(&mut b, "x", chunk.min(l.reduction()), a);
    let first_temp = b.cols() as Col;
    let xsig0 = l.x.signal(&x_cols[0]);
    let xc = l.x_centred_offset();
    let intervals: Vec<(i128, i128)> = chs.clone().map(|co| l.acc_interval(co)).collect();
    let mut accs: Vec<Vec<Col>> = vec![Vec::new(); chs.len()];
    let mut segments = Vec::new();
    // One sum per channel, emptied by each chunk's reduction for the next.
    let mut heaps: Vec<Option<Sum>> = (0..chs.len()).map(|_| None).collect();
    for (k, rs) in chunks(l.reduction(), chunk).into_iter().enumerate() {
        let start = b.len();
        // A counting job counts the chunk's input loads by their size.
        let mut counted = LoadCounts::default();
        let loads = if counting {
            counted.add(SourceKind::X, false, x_cols[0].len(), rs.len());
            Vec::new()
        } else {
            rs.clone()
                .enumerate()
                .map(|(j, r)| Load {
                    source: Source::X(r),
                    cols: x_cols[j].clone(),
                    coding: l.x,
                    resident: false,
                })
                .collect()
        };
        for (i, co) in chs.clone().enumerate() {
            let (lo, hi) = intervals[i];
            let sum = match &mut heaps[i] {
                Some(sum) => sum,
                None => heaps[i].insert(Sum::new(&b, lo, hi)?),
            };
            for (bit, &c) in accs[i].iter().enumerate() {
                sum.literal(bit as u32, Lit::Owned(c), false);
            }
            if k == 0 {
                sum.constant(i128::from(l.bias[co]));
            }
            let row = &l.row(co)[rs.clone()];
            if counting {
                // Digits by position and sign over the chunk, then every x bit at once.
                let (n, top, sw) = l.digit_histogram(row);
                for xb in &xsig0.bits {
                    for (j, c) in n[..top].iter().enumerate() {
                        for neg in [false, true] {
                            let lit = Lit::Col(xb.col);
                            let w = xb.shift + j as u32;
                            sum.literal_n(w, lit, neg ^ xb.neg, c[usize::from(neg)]);
                        }
                    }
                }
                sum.constant(sw * xc);
            } else {
                for (j, &w) in row.iter().enumerate() {
                    for xb in &l.x.signal(&x_cols[j]).bits {
                        for &(d, neg) in l.digits_of(i64::from(w)) {
                            sum.literal(xb.shift + d, Lit::Col(xb.col), neg ^ xb.neg);
                        }
                    }
                    sum.constant(i128::from(w) * xc);
                }
            }
            accs[i] = sum.reduce_raw_and_empty(&mut b);
        }
        segments.push(Segment {
            loads,
            ops: start..b.len(),
            counted,
        });
        if cut_short(&b, counting, within) {
            let end = b.len();
            return Ok(finish(b, segments, end, Vec::new(), l.out_coding()));
        }
    }
    let start = b.len();
    let mut outputs = Vec::with_capacity(chs.len());
    for (i, co) in chs.clone().enumerate() {
        let acc = Signal::raw(&accs[i], intervals[i].0, intervals[i].1);
        let rq = l.rq[co];
        outputs.push(epilogue(
            &mut b,
            l,
            &acc,
            &Mult::Const(rq.mult),
            rq.shift,
            first_temp,
        )?);
    }
    Ok(finish(b, segments, start, outputs, l.out_coding()))
}

/// `n` operands of `bits` bits each, named `{prefix}{r}`: every one's columns for a
/// program; for a counting job only the first's (it reads no other: the chunk's loads and
/// products are counted from one operand's size and coding), the others declared without
/// a list of columns each, so that the columns come out the same.
fn operands(b: &mut Builder, prefix: &str, n: usize, bits: u32) -> Vec<Arc<[Col]>> {
    if b.is_counting() && n > 0 {
        let first = b.operand_at(prefix, 0, bits).into();
        b.declare_operands((n - 1) * bits as usize);
        return vec![first];
    }
    (0..n)
        .map(|r| b.operand_at(prefix, r, bits).into())
        .collect()
}

/// What one [`Strategy::Stored`] program serves.
#[derive(Debug, Clone, Copy)]
pub struct StoredSpec<'s> {
    /// The output channels its lanes hold (their weights decide which weight-bit columns
    /// are all zero, their intervals the accumulator's width).
    pub channels: &'s [usize],
    /// The reduction ranges its lanes cover, one per slice: a lane loads input `j` of its
    /// own range into the same columns as every other lane (`Source::X(j)`, relative to the
    /// range's start; a shorter range's lanes load zero bits past its end). The whole
    /// reduction (one range) for a program that computes outputs.
    pub ranges: &'s [Range<usize>],
    /// Whether it computes each slice's partial sum Σ w·v (raw two's complement, for a
    /// reducer: no constants, no epilogue) rather than the output.
    pub partial: bool,
    /// With `partial`: every channel's partial-sum interval over each of `ranges`
    /// ([`partial_table`]).
    pub partials: &'s PartialTable,
    /// Whether the weights (and constants) are resident: every input position of the range
    /// gets weight columns of its own, loaded once at deployment.
    pub resident: bool,
}

impl StoredSpec<'_> {
    /// The interval its accumulator lies in: the union over its channels (and ranges) of
    /// the output accumulator's, or the partial sums'.
    pub fn interval(&self, l: &Linear<'_>) -> (i128, i128) {
        if self.partial {
            union(
                self.channels
                    .iter()
                    .map(|&c| self.partials.channel_union(c)),
            )
        } else {
            union(self.channels.iter().map(|&c| l.intervals()[c]))
        }
    }

    /// Inputs per lane: the longest range.
    fn len(&self) -> usize {
        self.ranges.iter().map(Range::len).max().unwrap_or(0)
    }
}

/// Every channel's partial-sum interval over each reduction slice ([`partial_table`]), in
/// one array, channel-major. A narrow slice width makes a table large (ResNet-18's widest
/// layers have over a thousand two-input slices per channel), and a sweep keeps every
/// layer's table of every width it costed: slices of up to 255 byte weights keep their
/// weights' two sums in i16, from which an interval is worked out when read (4 bytes an
/// entry); other tables keep the ends, in i32 when every one fits (an 8-bit layer's do for
/// rows of up to about 65,000 inputs).
#[derive(Debug, Default)]
pub struct PartialTable {
    slices: usize,
    ends: Ends,
    /// Per channel, the union of its slices' intervals with 0 (what a partial-sum
    /// program's accumulator interval is made of, [`StoredSpec::interval`]).
    unions: Vec<(i64, i64)>,
}

/// A [`PartialTable`]'s interval ends.
#[derive(Debug)]
enum Ends {
    Narrow(Vec<(i32, i32)>),
    Wide(Vec<(i64, i64)>),
    /// The centred input range and each slice's (Σw, Σ|w|) ([`Linear::slice_sums`]): the
    /// interval is [`product_bounds`] of them, as [`Linear::partial_intervals`] finds it.
    Sums((i64, i64), Vec<(i16, i16)>),
}

impl Default for Ends {
    fn default() -> Ends {
        Ends::Narrow(Vec::new())
    }
}

impl PartialTable {
    /// Channel c's partial-sum interval over slice k.
    pub fn at(&self, c: usize, k: usize) -> (i64, i64) {
        let i = c * self.slices + k;
        match &self.ends {
            Ends::Narrow(v) => (i64::from(v[i].0), i64::from(v[i].1)),
            Ends::Wide(v) => v[i],
            Ends::Sums(xs, v) => product_bounds(*xs, (i64::from(v[i].0), i64::from(v[i].1))),
        }
    }

    /// Channel c's partial-sum intervals, slice by slice.
    pub fn channel(&self, c: usize) -> impl Iterator<Item = (i64, i64)> + '_ {
        (0..self.slices).map(move |k| self.at(c, k))
    }

    /// The smallest interval holding 0 and channel c's every slice's interval.
    pub fn channel_union(&self, c: usize) -> (i64, i64) {
        self.unions[c]
    }

    /// Per slice, the smallest interval holding 0 and the slice's interval of every one of
    /// `channels` ([`union`] slice by slice, the rows read in order).
    pub fn slice_unions(&self, channels: &[usize]) -> Vec<(i128, i128)> {
        fn widen(u: &mut [(i64, i64)], ends: impl Iterator<Item = (i64, i64)>) {
            for ((lo, hi), (a, b)) in u.iter_mut().zip(ends) {
                (*lo, *hi) = ((*lo).min(a), (*hi).max(b));
            }
        }
        let mut u = vec![(0i64, 0i64); self.slices];
        let row = |c: usize| c * self.slices..(c + 1) * self.slices;
        // Each row read in place (the kind of table decided once per row, not per entry).
        for &c in channels {
            match &self.ends {
                Ends::Narrow(v) => widen(
                    &mut u,
                    v[row(c)].iter().map(|&(a, b)| (i64::from(a), i64::from(b))),
                ),
                Ends::Wide(v) => widen(&mut u, v[row(c)].iter().copied()),
                Ends::Sums(xs, v) => widen(
                    &mut u,
                    v[row(c)]
                        .iter()
                        .map(|&(s, a)| product_bounds(*xs, (i64::from(s), i64::from(a)))),
                ),
            }
        }
        u.into_iter()
            .map(|(lo, hi)| (i128::from(lo), i128::from(hi)))
            .collect()
    }

    /// The table of `slices` intervals per channel kept as their weight sums `sums`
    /// (channel-major), read over the centred input range `xs`, and each channel's union.
    pub(crate) fn of_sums(
        slices: usize,
        xs: (i64, i64),
        sums: Vec<(i16, i16)>,
        unions: Vec<(i64, i64)>,
    ) -> PartialTable {
        PartialTable {
            slices,
            ends: Ends::Sums(xs, sums),
            unions,
        }
    }

    /// The table of `channels` rows of `slices` intervals each, in i32 while every end so
    /// far fits, switching to i64 (the entries so far widened) at the first that does not.
    fn from_rows(
        slices: usize,
        channels: usize,
        rows: impl Iterator<Item = Vec<(i64, i64)>>,
    ) -> PartialTable {
        let n = channels * slices;
        let mut ends = Ends::Narrow(Vec::with_capacity(n));
        let mut unions = Vec::with_capacity(channels);
        for row in rows {
            let (lo, hi) = union(row.iter().copied());
            unions.push((lo as i64, hi as i64));
            let fits =
                |&(lo, hi): &(i64, i64)| i32::try_from(lo).is_ok() && i32::try_from(hi).is_ok();
            ends = match ends {
                Ends::Narrow(mut v) if row.iter().all(fits) => {
                    v.extend(row.iter().map(|&(lo, hi)| (lo as i32, hi as i32)));
                    Ends::Narrow(v)
                }
                // An end past i32: the table so far, and the rest, in i64.
                Ends::Narrow(v) => {
                    let mut wide = Vec::with_capacity(n);
                    wide.extend(v.iter().map(|&(lo, hi)| (i64::from(lo), i64::from(hi))));
                    wide.extend(row);
                    Ends::Wide(wide)
                }
                Ends::Wide(mut v) => {
                    v.extend(row);
                    Ends::Wide(v)
                }
                Ends::Sums(..) => unreachable!("rows are kept as their ends"),
            };
        }
        PartialTable {
            slices,
            ends,
            unions,
        }
    }
}

/// Every channel's partial-sum interval over each reduction range
/// ([`Linear::partial_interval`]), computed once per layer and split.
pub fn partial_table(l: &Linear<'_>, ranges: &[Range<usize>]) -> PartialTable {
    if let Some(table) = l.slice_sums(ranges) {
        return table;
    }
    PartialTable::from_rows(
        ranges.len(),
        l.channels(),
        (0..l.channels()).map(|c| l.partial_intervals(c, ranges)),
    )
}

/// The smallest interval holding 0 and every one of `intervals` (i128 accumulator
/// intervals or i64 partial-sum ones).
pub fn union<T: Copy + Into<i128>>(intervals: impl Iterator<Item = (T, T)>) -> (i128, i128) {
    intervals.fold((0, 0), |(a, b), (c, d)| (a.min(c.into()), b.max(d.into())))
}

/// [`Strategy::Stored`]: the program for subarrays whose lanes hold outputs (or, for a
/// reduction split in space, partial sums) of `spec`'s channels.
pub fn stored_job(
    set: GateSet,
    l: &Linear<'_>,
    spec: &StoredSpec<'_>,
    chunk: usize,
    counting: bool,
) -> Result<Job, MapError> {
    stored_job_with(set, l, spec, chunk, counting, true, None).map(|(job, _)| job)
}

/// [`stored_job`], a counting one tallying a chunk like a steady one before it without
/// reducing it ([`Steady`]) only when `reuse`, and given up as it stands after the first
/// chunk that leaves its columns past `within` ([`cut_short`]); also gives how many chunks
/// it so tallied.
pub(crate) fn stored_job_with(
    set: GateSet,
    l: &Linear<'_>,
    spec: &StoredSpec<'_>,
    chunk: usize,
    counting: bool,
    reuse: bool,
    within: Option<usize>,
) -> Result<(Job, usize), MapError> {
    let mut b = builder(set, counting);
    let a = l.x.bits;
    let wc = l.weight_coding();
    let len = spec.len();
    let n = chunk.min(len);
    let x_cols = operands(&mut b, "x", n, a);
    let w_cols = operands(&mut b, "w", if spec.resident { len } else { n }, wc.bits);
    let (lo, hi) = spec.interval(l);
    let consts = if spec.partial {
        None
    } else {
        Some(Consts::new(
            &mut b,
            l,
            spec.channels,
            lo,
            hi,
            spec.resident,
        )?)
    };
    let first_temp = b.cols() as Col;
    let mut acc: Vec<Col> = Vec::new();
    let mut segments = Vec::new();
    // Per input position: which weight bits are set in some lane and which in every lane.
    let lives = l.live_masks(spec.channels, spec.ranges);
    let xnor = l.xnor();
    // One sum, emptied by each chunk's reduction for the next.
    let mut heap: Option<Sum> = None;
    // Counting: the last chunk, when it was steady; the chunks tallied as it.
    let mut steady: Option<Steady> = None;
    let mut reused = 0;
    for (k, rs) in chunks(len, chunk).into_iter().enumerate() {
        let start = b.len();
        // Two loads per input, and the constants' (K, M and its flag); a counting job
        // lists none past the first segment's constants (it counts them).
        let mut loads: Vec<Load> = Vec::with_capacity(if counting { 0 } else { 2 * rs.len() + 3 });
        let n_live = counting.then(|| LiveCounts::of(&lives[rs.clone()], wc.bits, xnor));
        if let (Some(st), Some(n)) = (&steady, &n_live)
            && reuse
            && st.inputs == rs.len()
            && st.n_live == *n
        {
            b.add_tally(&st.tally, 1);
            reused += 1;
            segments.push(Segment {
                loads,
                ops: start..b.len(),
                counted: st.counted,
            });
            continue;
        }
        // Counting: the builder as the chunk finds it (a generated job's tally would walk
        // its ops so far).
        let before = counting.then(|| (b.temp_state(), b.tally(), acc.len()));
        let sum = match &mut heap {
            Some(sum) => sum,
            None => heap.insert(Sum::new(&b, lo, hi)?),
        };
        for (i, &c) in acc.iter().enumerate() {
            sum.literal(i as u32, Lit::Owned(c), false);
        }
        if let (0, Some(c)) = (k, &consts) {
            loads.extend(c.loads(sum));
        }
        let mut counted = LoadCounts::default();
        if let (Some(n_live), Some((state, tally, width))) = (n_live, before) {
            // Counted: the chunk's inputs and weights by their sizes alone, their products
            // by the weight bits live at each input.
            counted.add(SourceKind::X, false, x_cols[0].len(), rs.len());
            counted.add(SourceKind::W, spec.resident, w_cols[0].len(), rs.len());
            let (x0, w0) = (l.x.signal(&x_cols[0]), wc.signal(&w_cols[0]));
            add_counted_products(sum, x0, w0, &n_live, rs.len() as u64, xnor);
            acc = sum.reduce_raw_and_empty(&mut b);
            steady = (k > 0 && state == b.temp_state() && width == acc.len()).then(|| Steady {
                inputs: rs.len(),
                n_live,
                tally: b.tally().minus(&tally),
                counted,
            });
        } else {
            for (j, r) in rs.clone().enumerate() {
                let w = &w_cols[if spec.resident { r } else { j }];
                loads.extend(input_loads(r, &x_cols[j], w, l.x, wc, spec.resident));
                add_products(sum, l.x.signal(&x_cols[j]), wc.signal(w), lives[r], xnor);
            }
            acc = sum.reduce_raw_and_empty(&mut b);
        }
        segments.push(Segment {
            loads,
            ops: start..b.len(),
            counted,
        });
        if cut_short(&b, counting, within) {
            let (end, coding) = (b.len(), Coding::signed(acc.len() as u32));
            return Ok((finish(b, segments, end, Vec::new(), coding), reused));
        }
    }
    let start = b.len();
    let Some(consts) = consts else {
        // A partial sum leaves as it is, for the reducer.
        let coding = Coding::signed(acc.len() as u32);
        return Ok((finish(b, segments, start, vec![acc], coding), reused));
    };
    let out = consts.epilogue(&mut b, l, &Signal::raw(&acc, lo, hi), first_temp)?;
    Ok((
        finish(b, segments, start, vec![out], l.out_coding()),
        reused,
    ))
}

/// The reducer of a reduction split in space: for subarrays whose lanes hold outputs of
/// `channels`, it loads the lane's partial sums (`Source::Partial(s)`, slice s lying in
/// `parts[s]`, `chunk` of them per segment), adds them to the channel constant K, and
/// requantizes as a whole [`stored_job`] does.
#[allow(clippy::too_many_arguments)]
pub fn reduce_job(
    set: GateSet,
    l: &Linear<'_>,
    channels: &[usize],
    parts: &[(i128, i128)],
    chunk: usize,
    resident: bool,
    counting: bool,
) -> Result<Job, MapError> {
    let mut b = builder(set, counting);
    let n = chunk.min(parts.len());
    let widths: Vec<u32> = parts
        .iter()
        .map(|&(lo, hi)| arith::signed_width(lo, hi))
        .collect();
    let w_max = widths.iter().copied().max().unwrap_or(1);
    let p_cols: Vec<Vec<Col>> = (0..n).map(|j| b.operand_at("p", j, w_max)).collect();
    let (lo, hi) = union(channels.iter().map(|&c| l.intervals()[c]));
    let consts = Consts::new(&mut b, l, channels, lo, hi, resident)?;
    let first_temp = b.cols() as Col;
    let mut acc: Vec<Col> = Vec::new();
    let mut segments = Vec::new();
    for (k, ss) in chunks(parts.len(), chunk).into_iter().enumerate() {
        let start = b.len();
        let mut loads: Vec<Load> = Vec::new();
        let mut sum = Sum::new(&b, lo, hi)?;
        for (i, &c) in acc.iter().enumerate() {
            sum.literal(i as u32, Lit::Owned(c), false);
        }
        if k == 0 {
            loads.extend(consts.loads(&mut sum));
        }
        for (j, s) in ss.enumerate() {
            let cols = &p_cols[j][..widths[s] as usize];
            loads.push(Load {
                source: Source::Partial(s),
                cols: cols.into(),
                coding: Coding::signed(widths[s]),
                resident: false,
            });
            let (plo, phi) = parts[s];
            sum.scaled(&Signal::raw(cols, plo, phi), 1);
        }
        acc = sum.reduce_raw(&mut b);
        segments.push(Segment {
            loads,
            ops: start..b.len(),
            ..Default::default()
        });
    }
    let start = b.len();
    let out = consts.epilogue(&mut b, l, &Signal::raw(&acc, lo, hi), first_temp)?;
    Ok(finish(b, segments, start, vec![out], l.out_coding()))
}

/// A stored program's per-lane constants: the accumulator offset K (in the accumulator's
/// width) and, unless the output is binary, the requantization multiplier M at the
/// channels' common shift and the flag of a nonzero M.
struct Consts {
    width: u32,
    k_cols: Vec<Col>,
    live_k: Vec<bool>,
    m_cols: Vec<Col>,
    m_bits: u32,
    live_m: Vec<bool>,
    m_max: i128,
    shift: u32,
    flag: Option<Col>,
    all_zero: bool,
    binary_out: bool,
    resident: bool,
}

impl Consts {
    /// Allocates the constants' columns for an accumulator in [lo, hi].
    fn new(
        b: &mut Builder,
        l: &Linear<'_>,
        channels: &[usize],
        lo: i128,
        hi: i128,
        resident: bool,
    ) -> Result<Consts, MapError> {
        let width = arith::signed_width(lo, hi);
        let k_cols = b.operand("k", width);
        let binary_out = l.out.binary;
        let (shift, mults) = l.common_mult(channels);
        let m_max = mults.iter().copied().max().unwrap_or(0);
        if m_max >= 1 << 63 {
            return Err(MapError::CommonMultiplier {
                first: channels[0],
                last: channels[channels.len() - 1],
                bits: 128 - m_max.leading_zeros(),
            });
        }
        let m_bits = if binary_out {
            0
        } else {
            (128 - m_max.leading_zeros()).max(1)
        };
        let m_cols = b.operand("m", m_bits);
        let any_zero = mults.contains(&0);
        let all_zero = mults.iter().all(|&m| m == 0);
        let flag = (!binary_out && any_zero && !all_zero).then(|| b.operand("mpos", 1)[0]);
        let ks: Vec<i128> = channels.iter().map(|&c| l.lane_constant(c)).collect();
        let live_k = (0..width)
            .map(|k| {
                ks.iter()
                    .any(|&c| c.rem_euclid(1i128 << width) >> k & 1 == 1)
            })
            .collect();
        let live_m = (0..m_bits)
            .map(|k| mults.iter().any(|&m| m >> k & 1 == 1))
            .collect();
        Ok(Consts {
            width,
            k_cols,
            live_k,
            m_cols,
            m_bits,
            live_m,
            m_max,
            shift,
            flag,
            all_zero,
            binary_out,
            resident,
        })
    }

    /// Their loads, K's live bits entered into `sum`.
    fn loads(&self, sum: &mut Sum) -> Vec<Load> {
        let m = (!self.binary_out).then_some((self.m_cols.as_slice(), self.m_bits, self.flag));
        let mut loads = constant_loads(sum, &self.k_cols, self.width, &self.live_k, m);
        for l in &mut loads {
            l.resident = self.resident;
        }
        loads
    }

    /// The epilogue of the accumulator `acc` with these constants.
    fn epilogue(
        &self,
        b: &mut Builder,
        l: &Linear<'_>,
        acc: &Signal,
        first_temp: Col,
    ) -> Result<Vec<Col>, MapError> {
        let pos = match self.flag {
            Some(f) => Nonzero::Flag(f),
            None if self.all_zero => Nonzero::None,
            None => Nonzero::All,
        };
        let mult = Mult::Stored {
            cols: &self.m_cols,
            live: &self.live_m,
            max: self.m_max,
            pos,
        };
        epilogue(b, l, acc, &mult, self.shift, first_temp)
    }
}

/// The first segment's loads of the per-lane constants: K (the accumulator's offset, its
/// live bits entered into `sum`), and, unless the output is binary, the multiplier M
/// (`m`: its columns and bits) and the flag of a nonzero multiplier.
fn constant_loads(
    sum: &mut Sum,
    k_cols: &[Col],
    width: u32,
    live_k: &[bool],
    m: Option<(&[Col], u32, Option<Col>)>,
) -> Vec<Load> {
    let coding = |bits: u32, signed: bool| Coding {
        bits,
        signed,
        binary: false,
    };
    let mut loads = vec![Load {
        source: Source::K,
        cols: k_cols.into(),
        coding: coding(width, true),
        resident: false,
    }];
    for (i, &c) in k_cols.iter().enumerate() {
        if live_k[i] {
            sum.literal(i as u32, Lit::Col(c), false);
        }
    }
    if let Some((m_cols, m_bits, flag)) = m {
        loads.push(Load {
            source: Source::M,
            cols: m_cols.into(),
            coding: coding(m_bits, false),
            resident: false,
        });
        if let Some(f) = flag {
            loads.push(Load {
                source: Source::MPos,
                cols: [f].into(),
                coding: coding(1, false),
                resident: false,
            });
        }
    }
    loads
}

/// The loads of input `r` of a segment: its activation `x` and its weight `w` (`resident`:
/// written at deployment).
fn input_loads(
    r: usize,
    x: &Arc<[Col]>,
    w: &Arc<[Col]>,
    xc: Coding,
    wc: Coding,
    resident: bool,
) -> [Load; 2] {
    [
        Load {
            source: Source::X(r),
            cols: x.clone(),
            coding: xc,
            resident: false,
        },
        Load {
            source: Source::W(r),
            cols: w.clone(),
            coding: wc,
            resident,
        },
    ]
}

/// A chunk of a counting [`stored_job`] that left the builder's temporaries as it found
/// them (its accumulator traded for a new one of the same width, no column added, no
/// higher peak): what it entered into the heap (its inputs and their live weight bits,
/// after the accumulator's bits) and what it added. A counting heap's reduction depends on
/// the bits of each kind waiting at each weight and on the constant alone ([`BitHeap`]'s
/// closed form), and a chunk empties the heap, so the next chunk that enters the same
/// adds the same ops, and leaves the temporaries as it found them too (up to which
/// columns hold what, which a counting builder never reads): it is tallied without being
/// reduced.
///
/// [`BitHeap`]: crate::model::kernels::heap::BitHeap
#[derive(Debug)]
struct Steady {
    inputs: usize,
    n_live: LiveCounts,
    tally: Tally,
    counted: LoadCounts,
}

/// [`Live`] counted over a chunk's inputs: per weight bit, how many inputs have it set in
/// some lane (`any`) and, on the XNOR route, in every lane (`all`; zero otherwise). For up
/// to [`LIVE_BITS`] weight bits: a chunk's counts are made, compared and kept once per
/// chunk, so they are no wider than a weight gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LiveCounts {
    any: [u64; LIVE_BITS],
    all: [u64; LIVE_BITS],
}

/// The most weight bits [`LiveCounts`] counts: more than any stored weight coding takes
/// (`Linear::of` asserts |w| < 2^17, 18 bits in two's complement).
const LIVE_BITS: usize = 32;

impl Default for LiveCounts {
    fn default() -> LiveCounts {
        LiveCounts {
            any: [0; LIVE_BITS],
            all: [0; LIVE_BITS],
        }
    }
}

impl LiveCounts {
    /// Counts the masks of `lives` (a chunk's inputs) at their `bits` low positions (a
    /// weight code's; the masks have no others): `any`, and `all` when `with_all` (only the
    /// XNOR route reads it). A position at a time over the whole chunk, without branches,
    /// so that the sums vectorize.
    fn of(lives: &[Live], bits: u32, with_all: bool) -> LiveCounts {
        assert!(
            bits as usize <= LIVE_BITS,
            "{bits}-bit weights: live counts hold {LIVE_BITS}"
        );
        let mut n = LiveCounts::default();
        let at = |mask: fn(&Live) -> u64, k: usize| -> u64 {
            lives.iter().map(|l| mask(l) >> k & 1).sum()
        };
        for k in 0..bits as usize {
            n.any[k] = at(|l| l.any, k);
            if with_all {
                n.all[k] = at(|l| l.all, k);
            }
        }
        n
    }
}

/// Adds the products of one input's bits with the weight bits set in some lane
/// (`live.any`) to `sum`; binary weights (w = 2e − 1) add their −Σ a_i part (the offsets
/// are in K). On the XNOR route ([`Linear::xnor`]) the product of ±1 bits a (input) and
/// e (weight) adds 2·XNOR(a, e) (the −1 is in K): 2·¬a where e is 0 in every lane, 2·a
/// where it is 1 in every lane, so only mixed positions emit an XNOR.
fn add_products(sum: &mut Sum, sig: Signal, wsig: Signal, live: Live, xnor: bool) {
    if xnor {
        let (a, e) = (sig.bits[0].col, wsig.bits[0].col);
        match (live.any & 1 == 1, live.all & 1 == 1) {
            (false, _) => {
                sum.literal(1, Lit::Col(a), true);
                sum.constant(2);
            }
            (true, true) => sum.literal(1, Lit::Col(a), false),
            (true, false) => sum.literal(1, Lit::Xnor(a, e), false),
        }
        return;
    }
    for (kb, wb) in wsig.bits.iter().enumerate() {
        if live.any >> kb & 1 == 0 {
            continue;
        }
        for xb in &sig.bits {
            sum.literal(
                xb.shift + wb.shift,
                Lit::And(xb.col, wb.col),
                xb.neg ^ wb.neg,
            );
        }
    }
    if wsig.offset != 0 {
        let bare = Signal { offset: 0, ..sig };
        sum.scaled(&bare, wsig.offset);
    }
}

/// The counted form of [`add_products`] over a chunk of `inputs` inputs.
fn add_counted_products(
    sum: &mut Sum,
    sig: Signal,
    wsig: Signal,
    n: &LiveCounts,
    inputs: u64,
    xnor: bool,
) {
    if xnor {
        let (a, e) = (sig.bits[0].col, wsig.bits[0].col);
        let zeros = inputs - n.any[0];
        sum.literal_n(1, Lit::Col(a), true, zeros);
        sum.constant(2 * i128::from(zeros));
        sum.literal_n(1, Lit::Col(a), false, n.all[0]);
        sum.literal_n(1, Lit::Xnor(a, e), false, n.any[0] - n.all[0]);
        return;
    }
    for (kb, wb) in wsig.bits.iter().enumerate() {
        for xb in &sig.bits {
            let lit = Lit::And(xb.col, wb.col);
            sum.literal_n(xb.shift + wb.shift, lit, xb.neg ^ wb.neg, n.any[kb]);
        }
    }
    if wsig.offset != 0 {
        let bare = Signal { offset: 0, ..sig };
        sum.scaled_n(&bare, wsig.offset, inputs);
    }
}

/// Whether a counting job may stop where it stands: its columns are past `within`. A
/// builder's columns only grow, so the whole job would take more than `within` as well, and
/// [`super::fitted_within`], which judges such a job by its columns alone, drops it.
fn cut_short(b: &Builder, counting: bool, within: Option<usize>) -> bool {
    counting && within.is_some_and(|cols| b.cols() > cols)
}

/// Closes a job: the epilogue segment (ops from `start`) and the program.
fn finish(
    b: Builder,
    mut segments: Vec<Segment>,
    start: usize,
    outputs: Vec<Vec<Col>>,
    out: Coding,
) -> Job {
    segments.push(Segment {
        loads: Vec::new(),
        ops: start..b.len(),
        ..Default::default()
    });
    Job::new(b, segments, outputs, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partial-sum table keeps i32 ends while they fit (i32::MIN and i32::MAX included)
    /// and switches to i64 at the first row with an end past them, the rows before it
    /// widened: every entry reads back as given, wherever the switch falls, and so do the
    /// unions of a channel's slices and of a slice's channels.
    #[test]
    fn a_partial_table_reads_back_its_rows() {
        let big = i64::from(i32::MAX) + 1;
        for wide_at in [None, Some(0), Some(2), Some(3)] {
            let rows: Vec<Vec<(i64, i64)>> = (0..4)
                .map(|c| {
                    (0..3)
                        .map(|k| match (Some(c) == wide_at, k) {
                            (true, 1) => (-5, big),
                            (false, 2) => (i64::from(i32::MIN), i64::from(i32::MAX)),
                            _ => (-(10 * c as i64 + k), 10 * c as i64 + k),
                        })
                        .collect()
                })
                .collect();
            let t = PartialTable::from_rows(3, 4, rows.clone().into_iter());
            assert_eq!(matches!(t.ends, Ends::Wide(_)), wide_at.is_some());
            for (c, row) in rows.iter().enumerate() {
                assert_eq!(t.channel(c).collect::<Vec<_>>(), *row, "{wide_at:?}");
                for (k, &end) in row.iter().enumerate() {
                    assert_eq!(t.at(c, k), end);
                }
                let (lo, hi) = union(row.iter().copied());
                assert_eq!(t.channel_union(c), (lo as i64, hi as i64));
            }
            // Slice by slice over some channels, in any order.
            for channels in [vec![2], vec![3, 0], vec![0, 1, 2, 3]] {
                let want: Vec<(i128, i128)> = (0..3)
                    .map(|k| union(channels.iter().map(|&c| rows[c][k])))
                    .collect();
                assert_eq!(t.slice_unions(&channels), want, "{channels:?}");
            }
        }
    }
}
