//! Weight-free layers mapped with lane = output element, one program for every lane: max and
//! average pooling, residual Add, Concat's requantization, the option-A shortcut and the
//! attention products (both operands activations).
//!
//! Each program takes its operands by [`Source`]: `X(r)` is the lane's r-th gathered input
//! code (a pooling window cell, the first addend, the first factor of an attention product)
//! and `W(r)` the r-th code of the second operand (the second addend, the second factor). The
//! runner gathers them per lane; here only the arithmetic is generated, from the same
//! constants as the golden executor (`cram_workloads::golden::Step`).
//!
//! * Max pooling is a tree of carry-only compares (a − b's borrow chain: one NOT and one
//!   MAJ per bit) and multiplexers; window cells in the padding load the code minimum, so
//!   they never win.
//! * Average and global average pooling sum the centred codes in one heap (the padding loads
//!   the zero point, i.e. centred zero, as the golden sum does) and requantize.
//! * Add forms m_a·(a − z_a) + m_b·(b − z_b) exactly, then rounds and saturates it.
//! * The attention products are Σ (a − z_a)(b − z_b): partial products a_i ∧ b_k plus the
//!   zero-point cross terms, reduced in chunks like a stored-weight MAC.

use crate::error::MapError;
use std::ops::Range;

use cram_workloads::golden::{Program, Step};
use cram_workloads::net::{Op, Window};
use cram_workloads::quant::{ActQuant, Requant};
use ndarray::Array3;

use super::Hw;
use super::arith::{self, Coding, Lit, Mult, Signal, Sum};
use super::linear::{Job, Load, Segment, Source, chunks};
use crate::model::engine::isa::Col;
use crate::model::kernels::{Builder, GateSet};

/// A code of `coding` in `cols`, minus the zero point `z`.
pub(super) fn centred(coding: Coding, cols: &[Col], z: i64) -> Signal {
    let mut s = coding.signal(cols);
    let z = i128::from(z);
    s.offset -= z;
    s.lo -= z;
    s.hi -= z;
    s
}

/// A canonical two's-complement signal of `s`'s value (reduced only when it is not one).
pub(super) fn canonical(b: &mut Builder, s: &Signal) -> Result<Signal, MapError> {
    let n = s.bits.len();
    let plain = s.offset == 0
        && s.bits
            .iter()
            .enumerate()
            .all(|(i, x)| x.shift as usize == i && (!x.neg || i == n - 1));
    if plain {
        return Ok(s.clone());
    }
    let mut sum = Sum::new(b, s.lo, s.hi)?;
    sum.scaled(s, 1);
    Ok(sum.reduce(b))
}

/// y = clamp(z + round(acc·m / 2^shift)) into `out`, with the product's temporaries freed.
pub(super) fn requant_out(
    b: &mut Builder,
    acc: &Signal,
    m: i64,
    shift: u32,
    out: &ActQuant,
) -> Result<Vec<Col>, MapError> {
    let (lo, hi) = out.range();
    let (cols, temps) = arith::requantize(
        b,
        acc,
        &Mult::Const(m),
        shift,
        i64::from(out.zero),
        i128::from(lo),
        i128::from(hi),
        Coding::of(out),
    )?;
    let mut done: Vec<Col> = Vec::new();
    for c in temps {
        if !cols.contains(&c) && !done.contains(&c) && !acc.bits.iter().any(|x| x.col == c) {
            done.push(c);
            b.release(c);
        }
    }
    Ok(cols)
}

pub(super) fn load(source: Source, cols: &[Col], coding: Coding) -> Load {
    Load {
        source,
        cols: cols.into(),
        coding,
        resident: false,
    }
}

pub(super) fn job(b: Builder, segments: Vec<Segment>, outputs: Vec<Col>, out: Coding) -> Job {
    Job::new(b, segments, vec![outputs], out)
}

/// (x < y, x ≥ y) for two canonical signals of one width: the carry chain of x + ¬y + 1
/// (c₁ = x₀ ∨ ¬y₀, c_{i+1} = MAJ(x_i, ¬y_i, c_i)); the sign of the (n+1)-bit difference is
/// x_ext ⊕ ¬y_ext ⊕ c_n. Both returned columns are new temporaries.
pub fn less_than(b: &mut Builder, x: &Signal, y: &Signal) -> (Col, Col) {
    let n = x.bits.len();
    debug_assert_eq!(n, y.bits.len());
    let signed = x.bits[n - 1].neg;
    let mut carry: Option<Col> = None;
    for i in 0..n {
        let ny = b.not(y.bits[i].col);
        let c = match carry {
            None => b.or(x.bits[i].col, ny),
            Some(c) => {
                let r = b.maj3(x.bits[i].col, ny, c, false);
                b.release(c);
                r
            }
        };
        b.release(ny);
        carry = Some(c);
    }
    let c = carry.expect("n ≥ 1");
    if signed {
        let t = b.xnor(x.bits[n - 1].col, y.bits[n - 1].col);
        let (lt, ge) = (b.xor(t, c), b.xnor(t, c));
        b.release(t);
        b.release(c);
        (lt, ge)
    } else {
        (b.not(c), c)
    }
}

/// Max pooling over `n` window cells of `x` coding: operands `X(0..n)`.
pub fn max_pool(set: GateSet, x: Coding, n: usize) -> Job {
    let mut b = Builder::new(set);
    let ops: Vec<Vec<Col>> = (0..n).map(|r| b.operand_at("x", r, x.bits)).collect();
    let loads = ops
        .iter()
        .enumerate()
        .map(|(r, c)| load(Source::X(r), c, x))
        .collect();
    let first_temp = b.cols() as Col;
    let outputs = max_tree(&mut b, x, ops, first_temp);
    let n_ops = b.len();
    job(
        b,
        vec![Segment {
            loads,
            ops: 0..n_ops,
            ..Default::default()
        }],
        outputs,
        x,
    )
}

/// The largest of `level`'s codes of `x` coding by a balanced tree (each level keeps the
/// larger of each pair), freeing the losers' temporaries (index ≥ `first_temp`).
pub(super) fn max_tree(
    b: &mut Builder,
    x: Coding,
    mut level: Vec<Vec<Col>>,
    first_temp: Col,
) -> Vec<Col> {
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            let [p, q] = pair else {
                next.push(pair[0].clone());
                continue;
            };
            let (lt, ge) = less_than(b, &x.signal(p), &x.signal(q));
            let m: Vec<Col> = p
                .iter()
                .zip(q)
                .map(|(&a, &c)| b.mux(lt, ge, a, c))
                .collect();
            for c in [lt, ge].into_iter().chain(p.iter().chain(q).copied()) {
                if c >= first_temp {
                    b.release(c);
                }
            }
            next.push(m);
        }
        level = next;
    }
    level.pop().expect("n ≥ 1")
}

/// Σ over a chunked reduction of `n` terms into one accumulator known to lie in [lo, hi]:
/// before each chunk the runner performs `loads(r, j)` for the chunk's terms r (into operand
/// slot j), then `term(sum, j)` adds slot j's term; the accumulator stays in the lanes
/// between chunks. Returns the raw accumulator columns and the segments.
pub(super) fn accumulate(
    b: &mut Builder,
    n: usize,
    chunk: usize,
    (lo, hi): (i128, i128),
    mut loads: impl FnMut(usize, usize) -> Vec<Load>,
    mut term: impl FnMut(&mut Sum, usize),
) -> Result<(Vec<Col>, Vec<Segment>), MapError> {
    let mut acc: Vec<Col> = Vec::new();
    let mut segments = Vec::new();
    for rs in chunks(n, chunk) {
        let start = b.len();
        let mut sum = Sum::new(b, lo, hi)?;
        for (i, &c) in acc.iter().enumerate() {
            sum.literal(i as u32, Lit::Owned(c), false);
        }
        let mut seg_loads = Vec::new();
        for (j, r) in rs.enumerate() {
            seg_loads.extend(loads(r, j));
            term(&mut sum, j);
        }
        let raw = sum.reduce_raw(b);
        acc = owned(b, raw, &seg_loads);
        segments.push(Segment {
            loads: seg_loads,
            ops: start..b.len(),
            ..Default::default()
        });
    }
    Ok((acc, segments))
}

/// A sum's result columns, carried to the next chunk: a column that is one of this chunk's
/// operands (a heap passes a lone bit through) is copied, as the next chunk's loads
/// overwrite it.
pub(super) fn owned(b: &mut Builder, cols: Vec<Col>, loads: &[Load]) -> Vec<Col> {
    cols.into_iter()
        .map(|c| {
            if loads.iter().any(|l| l.cols.contains(&c)) {
                b.copy(c)
            } else {
                c
            }
        })
        .collect()
}

/// The epilogue of a chunked sum: requantize the accumulator in a last segment and close
/// the job.
fn requant_job(
    mut b: Builder,
    mut segments: Vec<Segment>,
    acc: &[Col],
    (lo, hi): (i128, i128),
    rq: Requant,
    out: &ActQuant,
) -> Result<Job, MapError> {
    let start = b.len();
    let outputs = requant_out(&mut b, &Signal::raw(acc, lo, hi), rq.mult, rq.shift, out)?;
    segments.push(Segment {
        loads: Vec::new(),
        ops: start..b.len(),
        ..Default::default()
    });
    Ok(job(b, segments, outputs, Coding::of(out)))
}

/// Average pooling: Σ (x_r − z) over `n` cells in chunks of `chunk`, requantized by `rq`.
pub fn sum_pool(
    set: GateSet,
    x: Coding,
    z: i64,
    n: usize,
    chunk: usize,
    rq: Requant,
    out: &ActQuant,
) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let slots: Vec<Vec<Col>> = (0..chunk.min(n))
        .map(|r| b.operand_at("x", r, x.bits))
        .collect();
    let one = centred(x, &slots[0], z);
    let (lo, hi) = (one.lo * n as i128, one.hi * n as i128);
    let (acc, segments) = accumulate(
        &mut b,
        n,
        chunk,
        (lo, hi),
        |r, j| vec![load(Source::X(r), &slots[j], x)],
        |sum, j| sum.scaled(&centred(x, &slots[j], z), 1),
    )?;
    requant_job(b, segments, &acc, (lo, hi), rq, out)
}

/// Residual add: clamp(z + round((m_a·(a − z_a) + m_b·(b − z_b)) / 2^shift)); operands
/// `X(0)` (a) and `W(0)` (b).
pub fn add(
    set: GateSet,
    (ca, za): (Coding, i64),
    (cb, zb): (Coding, i64),
    mults: [i64; 2],
    shift: u32,
    out: &ActQuant,
) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let (xa, xb) = (b.operand("a", ca.bits), b.operand("b", cb.bits));
    let (sa, sb) = (centred(ca, &xa, za), centred(cb, &xb, zb));
    let (ma, mb) = (i128::from(mults[0]), i128::from(mults[1]));
    let (a_lo, a_hi) = arith::scale_interval(sa.lo, sa.hi, ma);
    let (b_lo, b_hi) = arith::scale_interval(sb.lo, sb.hi, mb);
    let mut sum = Sum::new(&b, a_lo + b_lo, a_hi + b_hi)?;
    sum.scaled(&sa, ma);
    sum.scaled(&sb, mb);
    let p = sum.reduce(&mut b);
    let outputs = requant_out(&mut b, &p, 1, shift, out)?;
    let n = b.len();
    let loads = vec![load(Source::X(0), &xa, ca), load(Source::W(0), &xb, cb)];
    Ok(job(
        b,
        vec![Segment {
            loads,
            ops: 0..n,
            ..Default::default()
        }],
        outputs,
        Coding::of(out),
    ))
}

/// One input of a Concat: clamp(z + rq(x − z_x)) into the output format.
pub fn requant(
    set: GateSet,
    x: Coding,
    zx: i64,
    rq: Requant,
    out: &ActQuant,
) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let cols = b.operand("x", x.bits);
    let acc = canonical(&mut b, &centred(x, &cols, zx))?;
    let outputs = requant_out(&mut b, &acc, rq.mult, rq.shift, out)?;
    let n = b.len();
    let loads = vec![load(Source::X(0), &cols, x)];
    Ok(job(
        b,
        vec![Segment {
            loads,
            ops: 0..n,
            ..Default::default()
        }],
        outputs,
        Coding::of(out),
    ))
}

/// The option-A shortcut's kept channels: the selected codes are moved into the lanes
/// unchanged (no gate; the cost is the movement).
pub fn copy(x: Coding) -> Job {
    let mut b = Builder::new(GateSet::Maj);
    let cols = b.operand("x", x.bits);
    let loads = vec![load(Source::X(0), &cols, x)];
    job(
        b,
        vec![Segment {
            loads,
            ops: 0..0,
            ..Default::default()
        }],
        cols,
        x,
    )
}

/// The option-A shortcut's padded channels: the code `v` as constant columns.
pub fn fill(set: GateSet, v: i64, out: Coding) -> Job {
    let mut b = Builder::new(set);
    let bits = out.encode(v);
    let cols: Vec<Col> = (0..out.bits)
        .map(|i| b.constant(bits >> i & 1 == 1))
        .collect();
    let n = b.len();
    job(
        b,
        vec![Segment {
            loads: Vec::new(),
            ops: 0..n,
            ..Default::default()
        }],
        cols,
        out,
    )
}

/// An attention product: Σ_r (a_r − z_a)(b_r − z_b) over `n` terms in chunks, requantized by
/// `rq`; operands `X(r)` (a) and `W(r)` (b).
pub fn dot(
    set: GateSet,
    (ca, za): (Coding, i64),
    (cb, zb): (Coding, i64),
    n: usize,
    chunk: usize,
    rq: Requant,
    out: &ActQuant,
) -> Result<Job, MapError> {
    let mut b = Builder::new(set);
    let m = chunk.min(n);
    let xa: Vec<Vec<Col>> = (0..m).map(|r| b.operand_at("a", r, ca.bits)).collect();
    let xb: Vec<Vec<Col>> = (0..m).map(|r| b.operand_at("b", r, cb.bits)).collect();
    let (sa, sb) = (centred(ca, &xa[0], za), centred(cb, &xb[0], zb));
    let corners = [sa.lo * sb.lo, sa.lo * sb.hi, sa.hi * sb.lo, sa.hi * sb.hi];
    let (p_lo, p_hi) = (
        *corners.iter().min().expect("4"),
        *corners.iter().max().expect("4"),
    );
    let (lo, hi) = (p_lo * n as i128, p_hi * n as i128);
    let (acc, segments) = accumulate(
        &mut b,
        n,
        chunk,
        (lo, hi),
        |r, j| {
            vec![
                load(Source::X(r), &xa[j], ca),
                load(Source::W(r), &xb[j], cb),
            ]
        },
        |sum, j| sum.product(&centred(ca, &xa[j], za), &centred(cb, &xb[j], zb)),
    )?;
    requant_job(b, segments, &acc, (lo, hi), rq, out)
}

/// One program over a range of output channels of an element-wise layer (and, for a
/// program that differs by position, some of their positions).
pub struct Part {
    /// The program.
    pub job: Job,
    /// Output channels whose lanes run it.
    pub channels: Range<usize>,
    /// The output positions (row-major) whose lanes run it; `None`: all.
    pub positions: Option<Vec<usize>>,
}

/// The programs of weight-free layer `i` of `prog` and whether their operand loads are
/// charged (false: the program runs in place on its producer's output columns).
pub fn parts(prog: &Program, i: usize, hw: &Hw) -> Result<(Vec<Part>, bool), MapError> {
    let layer = &prog.network().layers[i];
    let out = prog.act(i);
    let shape = prog.shape(i);
    let input = |k: usize| layer.inputs[k];
    let x = |k: usize| {
        (
            Coding::of(&prog.act(input(k))),
            i64::from(prog.act(input(k)).zero),
        )
    };
    let all = |job: Job| {
        vec![Part {
            job,
            channels: 0..shape.c,
            positions: None,
        }]
    };
    let set = hw.set;
    let (parts, charged) = match (prog.step(i), &layer.op) {
        (step @ (Step::Relu | Step::Relu6 { .. } | Step::Sign | Step::Lut { .. }), _) => (
            all(super::unary::job(set, step, prog.act(input(0)), out)?),
            false,
        ),
        (Step::MaxPool, Op::MaxPool { window }) => (
            all(max_pool(set, x(0).0, window.kernel[0] * window.kernel[1])),
            true,
        ),
        (Step::SumPool(rq), op) => {
            let n = match op {
                Op::AvgPool { window, .. } => window.kernel[0] * window.kernel[1],
                Op::Input { .. }
                | Op::Dense { .. }
                | Op::Conv2d { .. }
                | Op::MaxPool { .. }
                | Op::GlobalAvgPool
                | Op::Relu
                | Op::Relu6
                | Op::Add
                | Op::Concat
                | Op::Flatten
                | Op::BatchNorm { .. }
                | Op::Downsample { .. }
                | Op::Softmax
                | Op::Sign
                | Op::AttnScores { .. }
                | Op::AttnContext { .. }
                | Op::Shuffle { .. }
                | Op::Channels { .. }
                | Op::Lrn { .. }
                | Op::Unary { .. }
                | Op::Mul
                | Op::LayerNorm { .. }
                | Op::AttnSoftmax { .. }
                | Op::Embedding { .. }
                | Op::Positional { .. }
                | Op::KvCache { .. } => {
                    let s = prog.shape(input(0));
                    s.h * s.w
                }
            };
            let (c, z) = x(0);
            let (_, job) = super::fitted(hw, n, c.bits as usize, |chunk| {
                sum_pool(set, c, z, n, chunk, *rq, &out)
            })?;
            (all(job), true)
        }
        // Padding left out of the divisor: one program per count of cells inside the input,
        // run by the positions whose windows hold that many.
        (Step::SumPoolCounted(rqs), Op::AvgPool { window, .. }) => {
            let s = prog.shape(input(0));
            let counts = cram_workloads::exec::window_counts(window, s.h, s.w);
            let n = window.kernel[0] * window.kernel[1];
            let (c, z) = x(0);
            let mut parts = Vec::new();
            for (k, rq) in rqs.iter().enumerate() {
                let at: Vec<usize> = (0..counts.len()).filter(|&p| counts[p] == k).collect();
                if at.is_empty() {
                    continue;
                }
                let (_, job) = super::fitted(hw, n, c.bits as usize, |chunk| {
                    sum_pool(set, c, z, n, chunk, *rq, &out)
                })?;
                parts.push(Part {
                    job,
                    channels: 0..shape.c,
                    positions: Some(at),
                });
            }
            (parts, true)
        }
        (Step::Add { mults, shift }, _) => (all(add(set, x(0), x(1), *mults, *shift, &out)?), true),
        // A product of two activations is a one-term attention product.
        (Step::Mul(rq), _) => (all(dot(set, x(0), x(1), 1, 1, *rq, &out)?), true),
        (Step::Concat(rqs), _) => {
            let mut parts = Vec::with_capacity(rqs.len());
            let mut c0 = 0;
            for (k, rq) in rqs.iter().enumerate() {
                let n = prog.shape(input(k)).c;
                let (c, z) = x(k);
                parts.push(Part {
                    job: requant(set, c, z, *rq, &out)?,
                    channels: c0..c0 + n,
                    positions: None,
                });
                c0 += n;
            }
            (parts, true)
        }
        // A channel move copies each code to the lane of its new channel (loaded from the
        // producer's lane over the bus, as the option-A shortcut's copies).
        (Step::Move, _) => (all(copy(Coding::of(&out))), true),
        // The periphery's function unit computes it (`unit_stream`); its results are written
        // back into the lanes of their elements over the bus, as the loads of a copy.
        (Step::Host { .. }, _) => (all(copy(Coding::of(&out))), true),
        // In the array, in passes (`norm`): the first pass's programs.
        (Step::Softmax(_) | Step::LayerNorm(_), _) => {
            (super::norm::first_parts(prog, i, hw)?, true)
        }
        // A token's codes are read from its table row and loaded into their lanes.
        (Step::Lookup { .. }, _) => (all(copy(Coding::of(&out))), true),
        // A cache writes only its new entries (its cached ones stay where earlier steps
        // wrote them).
        (Step::Cache { codes }, _) => {
            let past = codes.dim().1;
            (
                vec![Part {
                    job: copy(Coding::of(&out)),
                    channels: 0..shape.c,
                    positions: Some((past..shape.h).collect()),
                }],
                true,
            )
        }
        // A position table is the second addend, loaded from the weight store.
        (
            Step::AddTable {
                mults,
                shift,
                format,
                ..
            },
            _,
        ) => (
            all(add(
                set,
                x(0),
                (Coding::of(format), i64::from(format.zero)),
                *mults,
                *shift,
                &out,
            )?),
            true,
        ),
        (Step::Downsample, _) => {
            let c_in = prog.shape(input(0)).c;
            let code = Coding::of(&out);
            let mut parts = vec![Part {
                job: copy(code),
                channels: 0..c_in,
                positions: None,
            }];
            if shape.c > c_in {
                parts.push(Part {
                    job: fill(set, i64::from(out.zero), code),
                    channels: c_in..shape.c,
                    positions: None,
                });
            }
            (parts, true)
        }
        (Step::Attn(rq), op) => {
            let n = match *op {
                Op::AttnScores { heads } => prog.shape(input(0)).c / heads,
                Op::Input { .. }
                | Op::Dense { .. }
                | Op::Conv2d { .. }
                | Op::MaxPool { .. }
                | Op::AvgPool { .. }
                | Op::GlobalAvgPool
                | Op::Relu
                | Op::Relu6
                | Op::Add
                | Op::Concat
                | Op::Flatten
                | Op::BatchNorm { .. }
                | Op::Downsample { .. }
                | Op::Softmax
                | Op::Sign
                | Op::AttnContext { .. }
                | Op::Shuffle { .. }
                | Op::Channels { .. }
                | Op::Lrn { .. }
                | Op::Unary { .. }
                | Op::Mul
                | Op::LayerNorm { .. }
                | Op::AttnSoftmax { .. }
                | Op::Embedding { .. }
                | Op::Positional { .. }
                | Op::KvCache { .. } => prog.shape(input(1)).h,
            };
            let per = (x(0).0.bits + x(1).0.bits) as usize;
            let (_, job) = super::fitted(hw, n, per, |chunk| {
                dot(set, x(0), x(1), n, chunk, *rq, &out)
            })?;
            (all(job), true)
        }
        (
            Step::Input
            | Step::Linear { .. }
            | Step::MaxPool
            | Step::Pass
            | Step::SumPoolCounted(_),
            _,
        ) => {
            return Err(MapError::NotElementWiseLayer);
        }
    };
    // Chunked reductions were fitted above; a table, a max pool, an Add or a copy is one
    // program however wide, so it is refused here rather than run over columns that the
    // subarray does not have.
    fits(&parts, hw)?;
    Ok((parts, charged))
}

/// Refuses a program wider than the subarray (one that is not chunked cannot shrink).
pub(super) fn fits(parts: &[Part], hw: &Hw) -> Result<(), MapError> {
    match parts.iter().find(|p| p.job.cols > hw.cols()) {
        Some(wide) => Err(MapError::Columns {
            needed: wide.job.cols,
            have: hw.cols(),
        }),
        None => Ok(()),
    }
}

/// The operand gather of weight-free layer `i`: (source, image, output channel, output
/// position) → the input code the lane loads, from the producers' outputs `outs`.
pub fn gather<'a>(
    prog: &'a Program,
    i: usize,
    outs: &'a [Vec<Array3<i64>>],
) -> Box<dyn Fn(Source, usize, usize, usize) -> i64 + Sync + 'a> {
    let layer = &prog.network().layers[i];
    let ow = prog.shape(i).w;
    let inp = |k: usize| &outs[layer.inputs[k]];
    let (a, b) = (inp(0), layer.inputs.get(1).map(|&j| &outs[j]));
    match (prog.step(i), &layer.op) {
        (Step::MaxPool | Step::SumPool(_) | Step::SumPoolCounted(_), op) => {
            pool_gather(prog, i, op, a, ow)
        }
        (Step::Concat(_), _) => {
            let offsets: Vec<usize> = layer
                .inputs
                .iter()
                .scan(0, |c0, &j| {
                    let o = *c0;
                    *c0 += prog.shape(j).c;
                    Some(o)
                })
                .collect();
            Box::new(move |_, img, c, p| {
                let k = offsets.partition_point(|&o| o <= c) - 1;
                outs[layer.inputs[k]][img][[c - offsets[k], p / ow, p % ow]]
            })
        }
        (Step::Downsample, Op::Downsample { stride, .. }) => {
            let stride = *stride;
            Box::new(move |_, img, c, p| a[img][[c, p / ow * stride, p % ow * stride]])
        }
        (Step::Attn(_), Op::AttnScores { heads }) => {
            let (b, sk) = (b.expect("two inputs"), prog.shape(layer.inputs[1]).h);
            let dh = prog.shape(layer.inputs[0]).c / heads;
            Box::new(move |src, img, c, p| {
                let (h, j) = (c / sk, c % sk);
                match src {
                    Source::X(r) => a[img][[h * dh + r, p, 0]],
                    Source::W(r) => b[img][[h * dh + r, j, 0]],
                    _ => unreachable!("attention loads X and W"),
                }
            })
        }
        (Step::Attn(_), Op::AttnContext { heads }) => {
            let b = b.expect("two inputs");
            let sv = prog.shape(layer.inputs[1]).h;
            let dh = prog.shape(layer.inputs[1]).c / heads;
            Box::new(move |src, img, c, p| match src {
                Source::X(r) => a[img][[c / dh * sv + r, p, 0]],
                Source::W(r) => b[img][[c, r, 0]],
                _ => unreachable!("attention loads X and W"),
            })
        }
        (Step::Mul(_), _) => {
            let per_channel = prog.shape(layer.inputs[1]) != prog.shape(layer.inputs[0]);
            let b = b.expect("two inputs");
            Box::new(move |src, img, c, p| match src {
                Source::W(_) if per_channel => b[img][[c, 0, 0]],
                Source::W(_) => b[img][[c, p / ow, p % ow]],
                _ => a[img][[c, p / ow, p % ow]],
            })
        }
        // A token's table row; an id outside the table (which the golden executor refuses,
        // failing the run) loads the zero point.
        (Step::Lookup { .. }, _) => {
            let z = i64::from(prog.act(i).zero);
            let s = prog.shape(i);
            let ys: Vec<Array3<i64>> = a
                .iter()
                .map(|x| {
                    prog.lookup(i, x.view())
                        .unwrap_or_else(|_| Array3::from_elem((s.c, s.h, s.w), z))
                })
                .collect();
            Box::new(move |_, img, c, p| ys[img][[c, p / ow, p % ow]])
        }
        (Step::Cache { codes }, _) => {
            let past = codes.dim().1;
            Box::new(move |_, img, c, p| a[img][[c, p - past, 0]])
        }
        (Step::AddTable { table, .. }, _) => Box::new(move |src, img, c, p| match src {
            Source::W(_) => table[[c, p / ow, p % ow]],
            _ => a[img][[c, p / ow, p % ow]],
        }),
        // The function unit's results, each loaded into its element's lane.
        // Each pass of softmax and LayerNorm gathers its own operands (`norm`).
        (Step::Softmax(_) | Step::LayerNorm(_), _) => {
            unreachable!("softmax and LayerNorm run in passes with gathers of their own")
        }
        (Step::Host { .. }, _) => {
            let ys: Vec<Array3<i64>> = a.iter().map(|x| prog.host(i, x.view())).collect();
            Box::new(move |_, img, c, p| ys[img][[c, p / ow, p % ow]])
        }
        (Step::Move, op) => {
            let c_in = prog.shape(layer.inputs[0]).c;
            Box::new(move |_, img, c, p| {
                let from = op.source_channel(c, c_in).expect("a channel move");
                a[img][[from, p / ow, p % ow]]
            })
        }
        // Element-wise (unary, Add): operand k of the lane's own element.
        (
            Step::Input
            | Step::Linear { .. }
            | Step::Relu
            | Step::Relu6 { .. }
            | Step::Sign
            | Step::Add { .. }
            | Step::Pass
            | Step::Downsample
            | Step::Attn(_)
            | Step::Lut { .. },
            _,
        ) => Box::new(move |src, img, c, p| {
            let x = match src {
                Source::W(_) => b.expect("two inputs"),
                _ => a,
            };
            x[img][[c, p / ow, p % ow]]
        }),
    }
}

/// [`gather`] of a pooling layer: operand `r` of a lane is cell `r` of its output's window
/// over input `a` (padding: the zero point for sums; for max, the code minimum unless the
/// whole window is padding).
fn pool_gather<'a>(
    prog: &'a Program,
    i: usize,
    op: &Op,
    a: &'a [Array3<i64>],
    ow: usize,
) -> Box<dyn Fn(Source, usize, usize, usize) -> i64 + Sync + 'a> {
    let layer = &prog.network().layers[i];
    let s = prog.shape(layer.inputs[0]);
    let window = match *op {
        Op::MaxPool { window } | Op::AvgPool { window, .. } => window,
        Op::Input { .. }
        | Op::Dense { .. }
        | Op::Conv2d { .. }
        | Op::GlobalAvgPool
        | Op::Relu
        | Op::Relu6
        | Op::Add
        | Op::Concat
        | Op::Flatten
        | Op::BatchNorm { .. }
        | Op::Downsample { .. }
        | Op::Softmax
        | Op::Sign
        | Op::AttnScores { .. }
        | Op::AttnContext { .. }
        | Op::Shuffle { .. }
        | Op::Channels { .. }
        | Op::Lrn { .. }
        | Op::Unary { .. }
        | Op::Mul
        | Op::LayerNorm { .. }
        | Op::AttnSoftmax { .. }
        | Op::Embedding { .. }
        | Op::Positional { .. }
        | Op::KvCache { .. } => Window {
            kernel: [s.h, s.w],
            stride: [1, 1],
            pad: [0; 4],
            ceil: false,
        },
    };
    let act = prog.act(layer.inputs[0]);
    let z = i64::from(act.zero);
    // Padding: the zero point (a centred zero) for sums; for max, the code minimum
    // (it never wins) unless the whole window is padding (then the zero point).
    let pad = match prog.step(i) {
        Step::MaxPool => Some(act.range().0),
        Step::Input
        | Step::Linear { .. }
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
        | Step::Attn(_)
        | Step::Lut { .. }
        | Step::Mul(_)
        | Step::Softmax(_)
        | Step::LayerNorm(_)
        | Step::Lookup { .. }
        | Step::Cache { .. }
        | Step::AddTable { .. } => None,
    };
    let [kh, kw] = window.kernel;
    let cell = move |oy: usize, ox: usize, r: usize| -> Option<(usize, usize)> {
        let y = (oy * window.stride[0] + r / kw) as isize - window.pad[0] as isize;
        let x = (ox * window.stride[1] + r % kw) as isize - window.pad[1] as isize;
        (y >= 0 && x >= 0 && (y as usize) < s.h && (x as usize) < s.w)
            .then_some((y as usize, x as usize))
    };
    Box::new(move |src, img, c, p| {
        let (oy, ox, r) = (p / ow, p % ow, src_index(src));
        match cell(oy, ox, r) {
            Some((y, x)) => a[img][[c, y, x]],
            None => match pad {
                Some(min) if (0..kh * kw).any(|q| cell(oy, ox, q).is_some()) => min,
                _ => z,
            },
        }
    })
}

pub(super) fn src_index(src: Source) -> usize {
    match src {
        Source::X(r) | Source::W(r) => r,
        _ => 0,
    }
}
