//! The integer golden executor: the exact expected output of a quantized, binarized or
//! pruned network, and so the oracle the simulator's results are checked against.
//!
//! Everything here is integer arithmetic on i64 codes (products and sums exact in i64/i128;
//! requantization by [`Requant`], i.e. an integer multiplier and a shift). The float scales
//! are used once, at [`Program::compile`], to derive those integers (Jacob et al., CVPR 2018,
//! eqs. 4–7), and never while running. Per layer, with r = s·(q − z):
//! * Dense/Conv2d: acc[o] = Σ (w − z_w[o])·(x − z_x) + round(b[o] / (s_x·s_w[o]));
//!   y = clamp(z_y + R[o](acc)) with R[o] ≈ s_x·s_w[o]/s_y; into a binary (±1) output,
//!   y = +1 if acc ≥ 0 else −1 (BatchNorm and bias folded into the threshold). With binary
//!   weights and binary inputs the dot product is computed as XNOR-popcount,
//!   Σ w·x = 2·popcount(XNOR(w, x)) − n, bit-identical to the ±1 dot product (Dense; a
//!   binary Conv2d computes the same ±1 sums with the generic kernel).
//! * AvgPool/GlobalAvgPool: y = clamp(z_y + R(Σ (x − z_x))) with R ≈ s_x/(area·s_y).
//! * Add: one rounding of m_a·(a − z_a) + m_b·(b − z_b) at a common shift; Concat requantizes
//!   each input to the output format.
//! * MaxPool, ReLU (max(q, z)), ReLU6 (clamped at z + round(6/s)), Flatten, Downsample (new
//!   channels hold z) and Softmax (the identity: monotone) keep their input's format.
//! * Sign: +1 if q > z (a positive value) else −1. Attention products: exact dot products of
//!   centred codes, then requantized (the scores' 1/√dₕ in their multiplier).
//! * Transformer layers (`ibert`): I-BERT's integer softmax and LayerNorm, GELU as a table
//!   of I-BERT's polynomial, a token lookup, a position table added, a decoder's cache.

use std::collections::BTreeMap;

use ndarray::{Array3, Array4, ArrayView3, Zip};
use rayon::prelude::*;

use crate::error::WorkloadError;
use crate::exec::{self, weight_dims};
use crate::ibert;
use crate::net::{Network, Op, Shape, UnaryFn};
use crate::quant::{ActQuant, QWeight, Requant, WeightMode, round_shift};
use crate::weights::Weights;

/// A network's quantization: weight codes of every Dense/Conv2d layer and the format of every
/// layer's output, by layer name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quant {
    /// Weight codes by layer name.
    pub weights: BTreeMap<String, QWeight>,
    /// Output format by layer name (every layer, the input included).
    pub acts: BTreeMap<String, ActQuant>,
}

/// One compiled layer: the integer constants the layer runs with. The simulator maps these
/// same constants onto CRAM programs, so both sides compute from one derivation.
#[derive(Debug, Clone)]
pub enum Step {
    /// The input layer (codes given).
    Input,
    /// Dense or Conv2d.
    Linear {
        /// Centred weight codes w − z_w, [out, in/groups, kh, kw] (codes have at most 16
        /// bits, so their differences fit).
        w: Array4<i32>,
        /// Bias in accumulator units.
        bias: Vec<i64>,
        /// Per output channel (unused into a binary output).
        rq: Vec<Requant>,
        /// Packed ±1 weight rows (bit set for +1) when weights and input are binary (Dense).
        xnor: Option<Vec<Vec<u64>>>,
    },
    /// Max pooling (codes keep their format).
    MaxPool,
    /// Average or global average pooling: the sum of centred codes, requantized.
    SumPool(Requant),
    /// Average pooling that leaves padding out of the divisor: the sum of centred codes,
    /// requantized by element k for a window of k cells inside the input.
    SumPoolCounted(Vec<Requant>),
    /// max(q, z).
    Relu,
    /// clamp(q, z, hi).
    Relu6 {
        /// Top code.
        hi: i64,
    },
    /// +1 if q ≥ z else −1.
    Sign,
    /// round((m_a·(a − z_a) + m_b·(b − z_b)) / 2^shift).
    Add {
        /// Multipliers of the two inputs.
        mults: [i64; 2],
        /// Common shift.
        shift: u32,
    },
    /// Each input requantized to the output format.
    Concat(Vec<Requant>),
    /// Flatten and Softmax: codes unchanged.
    Pass,
    /// The option-A shortcut.
    Downsample,
    /// Codes moved between channels, unchanged (Shuffle, Channels).
    Move,
    /// A function not computed in integer arithmetic (LRN): evaluated in f64 on the
    /// dequantized input codes, as the host or periphery unit that computes it would, and
    /// requantized to the output format (round half to even).
    Host {
        /// The input's scale and zero point.
        x: (f64, i64),
        /// The output's scale.
        y_scale: f64,
    },
    /// Attention products, requantized.
    Attn(Requant),
    /// An element-wise function ([`Op::Unary`]) as a table over the input's codes: input
    /// code `lo + k` gives output code `table[k]`. Each entry is the function evaluated in
    /// f64 on the dequantized code and rounded half to even into the output format, once
    /// at compile time, so any function of one value runs exactly.
    Lut {
        /// The input format's lowest code.
        lo: i64,
        /// Output codes, one per input code from `lo` up.
        table: Vec<i64>,
    },
    /// Product of two activations ([`Op::Mul`]): clamp(z_y + R((a − z_a)·(b − z_b))) with
    /// R ≈ s_a·s_b/s_y, the second factor broadcast over positions when it is per channel.
    Mul(Requant),
    /// I-BERT's integer softmax over each head's keys ([`Op::AttnSoftmax`]): probabilities
    /// of scale 2^−bits.
    Softmax(ibert::Softmax),
    /// I-BERT's integer LayerNorm over channels ([`Op::LayerNorm`]), γ and β folded in.
    LayerNorm(ibert::LayerNorm),
    /// A token lookup ([`Op::Embedding`]): the input codes are token ids, and token t's
    /// output codes are `lo + table[t·dim + d]` (the table rounded into the output format
    /// once, as activations are: to nearest, ties away from zero).
    Lookup {
        /// The output format's lowest code.
        lo: i64,
        /// Codes minus `lo`, [vocab, dim] row-major.
        table: Vec<u16>,
    },
    /// A decoder's cache ([`Op::KvCache`]): its cached entries' codes (features×past, in
    /// the input's format), then the input's.
    Cache {
        /// The cached entries' codes.
        codes: Array3<i64>,
    },
    /// A constant table added to the input ([`Op::Positional`]): as [`Step::Add`] with the
    /// second operand the table's codes, in a signed format of its own (`table_format`).
    AddTable {
        /// Multipliers of the input and the table.
        mults: [i64; 2],
        /// Common shift.
        shift: u32,
        /// The table's codes, features×seq.
        table: Array3<i64>,
        /// The table's format (signed, symmetric).
        format: ActQuant,
    },
}

/// The output code of a real value `v` in a format of scale `y_scale` whose codes are
/// `clamp(z + r)`: r = round(v / y_scale), half to even; NaN gives the zero point and
/// ±∞ saturate.
fn real_to_code(v: f64, y_scale: f64, clamp: impl Fn(i64) -> i64) -> i64 {
    let q = (v / y_scale).round_ties_even();
    if q.is_nan() {
        clamp(0)
    } else {
        clamp(q.clamp(i64::MIN as f64, i64::MAX as f64) as i64)
    }
}

/// A network compiled to integer steps.
#[derive(Debug, Clone)]
pub struct Program {
    net: Network,
    shapes: Vec<Shape>,
    acts: Vec<ActQuant>,
    steps: Vec<Step>,
}

impl Step {
    /// Whether the periphery's function unit computes the layer rather than the array
    /// (LRN): its output is [`Program::host`]'s.
    pub fn on_unit(&self) -> bool {
        match self {
            Step::Host { .. } => true,
            Step::Input
            | Step::Softmax(_)
            | Step::LayerNorm(_)
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
            | Step::Attn(_)
            | Step::Lut { .. }
            | Step::Mul(_)
            | Step::Lookup { .. }
            | Step::Cache { .. }
            | Step::AddTable { .. } => false,
        }
    }
}

/// A weighted step compiled without its codes yet: (step index, its layer's name, the
/// weight tensor's dims), filled in after the checks of [`Program::compile`].
type PendingCodes<'n> = (usize, &'n str, (usize, usize, usize, usize));

impl Program {
    /// Compiles `net` with its float parameters (`weights`: biases) and `quant`. BatchNorm
    /// must be folded first ([`crate::compress::fold_batchnorm`]).
    pub fn compile(
        net: &Network,
        weights: &Weights,
        quant: &Quant,
    ) -> Result<Program, WorkloadError> {
        let (mut prog, pending) = Program::without_codes(net, weights, quant)?;
        let codes = pending
            .par_iter()
            .map(|&(_, name, _)| quant.weights[name].centred())
            .collect();
        prog.set_codes(&pending, codes);
        Ok(prog)
    }

    /// [`Program::compile`] of a quantization the caller gives up: the codes' memory
    /// becomes the program's (centred in place), not copied.
    pub fn compile_owned(
        net: &Network,
        weights: &Weights,
        mut quant: Quant,
    ) -> Result<Program, WorkloadError> {
        let (mut prog, pending) = Program::without_codes(net, weights, &quant)?;
        // Layer names are unique (Network::stats checks them), so each is taken once.
        let taken: Vec<QWeight> = pending
            .iter()
            .map(|&(_, name, _)| quant.weights.remove(name).expect("checked in the loop"))
            .collect();
        let codes = taken.into_par_iter().map(QWeight::into_centred).collect();
        prog.set_codes(&pending, codes);
        Ok(prog)
    }

    /// The program with every check done and every constant derived but the weighted
    /// steps' codes, and those steps (to fill with [`Program::set_codes`]).
    fn without_codes<'n>(
        net: &'n Network,
        weights: &Weights,
        quant: &Quant,
    ) -> Result<(Program, Vec<PendingCodes<'n>>), WorkloadError> {
        let stats = net.stats()?;
        let mut acts = Vec::with_capacity(net.layers.len());
        let mut steps = Vec::with_capacity(net.layers.len());
        // The weighted steps still to receive their codes.
        let mut pending: Vec<PendingCodes<'_>> = Vec::new();
        for layer in &net.layers {
            let bad = |why: String| {
                WorkloadError::Network(format!(
                    "network '{}', layer '{}' ({}): {why}",
                    net.name,
                    layer.name,
                    layer.op.name()
                ))
            };
            let act = *quant
                .acts
                .get(&layer.name)
                .ok_or_else(|| bad("has no activation format".into()))?;
            act.validate()
                .map_err(|e| bad(format!("activation format: {e}")))?;
            let input = |k: usize| -> ActQuant { acts[layer.inputs[k]] };
            let same = |what: &str| -> Result<(), WorkloadError> {
                if act == input(0) {
                    Ok(())
                } else {
                    Err(bad(format!(
                        "{what} keeps its input's format {:?}, but is given {act:?}",
                        input(0)
                    )))
                }
            };
            let requant = |m: f64| Requant::from_real(m).map_err(&bad);
            let step = match &layer.op {
                Op::Input { .. } => Step::Input,
                op @ (Op::Dense { bias, .. } | Op::Conv2d { bias, .. }) => {
                    let x = input(0);
                    let in_c = stats[layer.inputs[0]].out.c;
                    let dims = weight_dims(op, in_c).expect("weighted");
                    let q = quant
                        .weights
                        .get(&layer.name)
                        .ok_or_else(|| bad("has no quantized weights".into()))?;
                    q.validate().map_err(|e| bad(format!("weights: {e}")))?;
                    let want = match op {
                        Op::Dense { .. } => vec![dims.0, dims.1],
                        Op::Input { .. }
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
                        | Op::KvCache { .. } => vec![dims.0, dims.1, dims.2, dims.3],
                    };
                    if q.dims != want {
                        return Err(bad(format!(
                            "weights have dims {:?}, the layer needs {dims:?}",
                            q.dims
                        )));
                    }
                    // The codes are filled in after the loop, every layer's in parallel.
                    pending.push((steps.len(), &layer.name, dims));
                    let b = if *bias {
                        exec::param(weights, &layer.name, "bias", dims.0)?.to_vec()
                    } else {
                        vec![0.0; dims.0]
                    };
                    let mut bias_q = Vec::with_capacity(dims.0);
                    let mut rq = Vec::with_capacity(dims.0);
                    for (o, &bo) in b.iter().enumerate() {
                        let acc_scale = f64::from(x.scale) * f64::from(q.channel(o).0);
                        // Into a ±1 output the bias is a threshold: s·acc + b ≥ 0 exactly when
                        // acc + ⌊b/s⌋ ≥ 0 (acc is an integer), so floor, not round.
                        let bq = if act.binary {
                            (f64::from(bo) / acc_scale).floor()
                        } else {
                            (f64::from(bo) / acc_scale).round()
                        };
                        if !bq.is_finite() || bq.abs() > 2f64.powi(53) {
                            return Err(bad(format!(
                                "bias {bo} of channel {o} does not fit the accumulator (scale \
                                 {acc_scale})"
                            )));
                        }
                        bias_q.push(bq as i64);
                        rq.push(if act.binary {
                            Requant { mult: 0, shift: 0 }
                        } else {
                            requant(acc_scale / f64::from(act.scale))?
                        });
                    }
                    let xnor = (x.binary
                        && q.scheme.mode == WeightMode::Binary
                        && matches!(op, Op::Dense { .. }))
                    .then(Vec::new);
                    Step::Linear {
                        w: Array4::zeros((0, 0, 0, 0)),
                        bias: bias_q,
                        rq,
                        xnor,
                    }
                }
                Op::MaxPool { .. } => {
                    same("max pooling")?;
                    Step::MaxPool
                }
                Op::AvgPool { window, count_pad } => {
                    let area = window.kernel[0] * window.kernel[1];
                    let m =
                        |n: usize| f64::from(input(0).scale) / (n as f64 * f64::from(act.scale));
                    if *count_pad {
                        Step::SumPool(requant(m(area))?)
                    } else {
                        // No window of a valid pooling lies wholly in the padding; k = 0
                        // stays a zero multiplier.
                        let mut rqs = vec![Requant { mult: 0, shift: 0 }];
                        for k in 1..=area {
                            rqs.push(requant(m(k))?);
                        }
                        Step::SumPoolCounted(rqs)
                    }
                }
                Op::GlobalAvgPool => {
                    let s = stats[layer.inputs[0]].out;
                    let area = (s.h * s.w) as f64;
                    Step::SumPool(requant(
                        f64::from(input(0).scale) / (area * f64::from(act.scale)),
                    )?)
                }
                Op::Relu => {
                    same("ReLU")?;
                    Step::Relu
                }
                Op::Relu6 => {
                    same("ReLU6")?;
                    let hi = f64::from(act.zero) + (6.0 / f64::from(act.scale)).round();
                    let (lo_q, hi_q) = act.range();
                    Step::Relu6 {
                        hi: hi.clamp(lo_q as f64, hi_q as f64) as i64,
                    }
                }
                Op::Sign => {
                    if act != ActQuant::BINARY {
                        return Err(bad(format!("a sign output is binary, not {act:?}")));
                    }
                    Step::Sign
                }
                Op::Add => {
                    let m = |k: usize| f64::from(input(k).scale) / f64::from(act.scale);
                    let (mults, shift) = Requant::common(&[m(0), m(1)]).map_err(&bad)?;
                    Step::Add {
                        mults: [mults[0], mults[1]],
                        shift,
                    }
                }
                Op::Concat => Step::Concat(
                    (0..layer.inputs.len())
                        .map(|k| requant(f64::from(input(k).scale) / f64::from(act.scale)))
                        .collect::<Result<_, _>>()?,
                ),
                Op::Flatten => {
                    same("flatten")?;
                    Step::Pass
                }
                Op::Softmax => {
                    same("softmax (the identity on codes)")?;
                    Step::Pass
                }
                Op::Downsample { .. } => {
                    same("the option-A shortcut")?;
                    Step::Downsample
                }
                Op::Shuffle { .. } | Op::Channels { .. } => {
                    same("a channel move")?;
                    Step::Move
                }
                Op::Lrn { .. } => Step::Host {
                    x: (f64::from(input(0).scale), i64::from(input(0).zero)),
                    y_scale: f64::from(act.scale),
                },
                Op::AttnSoftmax { .. } => {
                    let want = ActQuant::probabilities(act.bits);
                    if act != want {
                        return Err(bad(format!(
                            "softmax probabilities are unsigned with scale 2^-bits and zero \
                             point 0 ({want:?}), not {act:?}"
                        )));
                    }
                    Step::Softmax(
                        ibert::Softmax::new(f64::from(input(0).scale), act.bits).map_err(&bad)?,
                    )
                }
                Op::Embedding { vocab, dim } => {
                    let token = ActQuant::TOKENS;
                    if input(0) != token {
                        return Err(bad(format!(
                            "a lookup reads token ids as codes of {token:?}, not {:?}",
                            input(0)
                        )));
                    }
                    let e = exec::param(weights, &layer.name, "weight", vocab * dim)?;
                    let lo = act.range().0;
                    // A code of a format of at most 16 bits, minus its lowest: 0..2^16.
                    let table = e.iter().map(|&v| (act.quantize(v) - lo) as u16).collect();
                    Step::Lookup { lo, table }
                }
                op @ Op::Positional { .. } => {
                    let s = stats[layer.inputs[0]].out;
                    let real = exec::position_rows(weights, &layer.name, op, s.c, s.h)?;
                    let (min, max) = real
                        .iter()
                        .fold((0f32, 0f32), |(a, b), &v| (a.min(v), b.max(v)));
                    let format = ActQuant::from_range(min, max, act.bits.max(2), true);
                    let table = real.mapv(|v| format.quantize(v));
                    let (mults, shift) = Requant::common(&[
                        f64::from(input(0).scale) / f64::from(act.scale),
                        f64::from(format.scale) / f64::from(act.scale),
                    ])
                    .map_err(&bad)?;
                    Step::AddTable {
                        mults: [mults[0], mults[1]],
                        shift,
                        table,
                        format,
                    }
                }
                Op::KvCache { past } => {
                    same("a key or value cache")?;
                    let c = stats[layer.inputs[0]].out.c;
                    let cache = exec::cached_entries(weights, &layer.name, *past, c)?;
                    Step::Cache {
                        codes: Array3::from_shape_fn((c, *past, 1), |(d, j, _)| {
                            act.quantize(cache[j * c + d])
                        }),
                    }
                }
                Op::LayerNorm { eps } => {
                    let c = stats[layer.inputs[0]].out.c;
                    let p = |role| exec::param(weights, &layer.name, role, c);
                    let (lo, hi) = act.range();
                    Step::LayerNorm(
                        ibert::LayerNorm::new(
                            p("gamma")?,
                            p("beta")?,
                            f64::from(*eps),
                            f64::from(input(0).scale),
                            (f64::from(act.scale), i64::from(act.zero), lo, hi),
                        )
                        .map_err(&bad)?,
                    )
                }
                // I-BERT's GELU polynomial, evaluated once per input code into a table.
                Op::Unary { f: UnaryFn::Gelu } => {
                    let x = input(0);
                    let (lo, hi) = x.range();
                    let zx = i64::from(x.zero);
                    let g =
                        ibert::Gelu::new(f64::from(x.scale), f64::from(act.scale)).map_err(&bad)?;
                    let (ylo, yhi) = act.range();
                    let zy = i64::from(act.zero);
                    let table = (lo..=hi)
                        .map(|q| zy.saturating_add(g.eval(q - zx)).clamp(ylo, yhi))
                        .collect();
                    Step::Lut { lo, table }
                }
                Op::Unary { f } => {
                    let x = input(0);
                    let (lo, hi) = x.range();
                    let (sx, zx) = (f64::from(x.scale), i64::from(x.zero));
                    let (ylo, yhi) = act.range();
                    let zy = i64::from(act.zero);
                    let table = (lo..=hi)
                        .map(|q| {
                            real_to_code(f.eval((q - zx) as f64 * sx), f64::from(act.scale), |r| {
                                zy.saturating_add(r).clamp(ylo, yhi)
                            })
                        })
                        .collect();
                    Step::Lut { lo, table }
                }
                Op::Mul => Step::Mul(requant(
                    f64::from(input(0).scale) * f64::from(input(1).scale) / f64::from(act.scale),
                )?),
                Op::AttnScores { heads } => {
                    let dh = stats[layer.inputs[0]].out.c / heads;
                    Step::Attn(requant(
                        f64::from(input(0).scale) * f64::from(input(1).scale)
                            / ((dh as f64).sqrt() * f64::from(act.scale)),
                    )?)
                }
                Op::AttnContext { .. } => Step::Attn(requant(
                    f64::from(input(0).scale) * f64::from(input(1).scale) / f64::from(act.scale),
                )?),
                Op::BatchNorm { .. } => {
                    return Err(bad(
                        "BatchNorm must be folded into the layer before it for integer \
                         execution (compress::fold_batchnorm)"
                            .into(),
                    ));
                }
            };
            if act.binary && !matches!(step, Step::Linear { .. } | Step::Sign) {
                return Err(bad(
                    "only Dense, Conv2d and Sign layers can give binary outputs".into(),
                ));
            }
            acts.push(act);
            steps.push(step);
        }
        let prog = Program {
            net: net.clone(),
            shapes: stats.iter().map(|s| s.out).collect(),
            acts,
            steps,
        };
        Ok((prog, pending))
    }

    /// Gives each pending weighted step its centred codes (in the stored, standard order),
    /// and a ±1 dense layer its signs, packed from them.
    fn set_codes(&mut self, pending: &[PendingCodes<'_>], codes: Vec<Vec<i32>>) {
        for (&(k, _, dims), codes) in pending.iter().zip(codes) {
            let w = Array4::from_shape_vec(dims, codes).expect("dims checked in the loop");
            if let Step::Linear { w: slot, xnor, .. } = &mut self.steps[k] {
                if let Some(signs) = xnor {
                    *signs = w
                        .outer_iter()
                        .map(|row| pack_signs(row.iter().map(|&v| i64::from(v))))
                        .collect();
                }
                *slot = w;
            }
        }
    }

    /// The network it runs.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The output format of layer `i`.
    pub fn act(&self, i: usize) -> ActQuant {
        self.acts[i]
    }

    /// The compiled step of layer `i` (its integer constants).
    pub fn step(&self, i: usize) -> &Step {
        &self.steps[i]
    }

    /// The output shape of layer `i`.
    pub fn shape(&self, i: usize) -> Shape {
        self.shapes[i]
    }

    /// The output codes of layer `i`, a step the function unit computes ([`Step::on_unit`]),
    /// from its input codes `x`: LRN in f64 on the dequantized codes, requantized; the
    /// integer softmax and LayerNorm exactly as [`Program::run`] computes them.
    ///
    /// # Panics
    /// If layer `i` is not a function-unit step.
    pub fn host(&self, i: usize, x: ArrayView3<'_, i64>) -> Array3<i64> {
        let act = self.acts[i];
        let (lo, hi) = act.range();
        let zy = i64::from(act.zero);
        let clamp = |r: i64| zy.saturating_add(r).clamp(lo, hi);
        match (&self.steps[i], &self.net.layers[i].op) {
            (
                Step::Host {
                    x: (sx, zx),
                    y_scale,
                },
                Op::Lrn {
                    size,
                    alpha,
                    beta,
                    bias,
                },
            ) => {
                let real = x.mapv(|q| (q - zx) as f64 * sx);
                let y = exec::lrn(real.view(), *size, (*alpha, *beta, *bias));
                y.mapv(|v| real_to_code(v, *y_scale, clamp))
            }
            (Step::Softmax(sm), Op::AttnSoftmax { heads, causal }) => {
                ibert::softmax_heads(sm, x, *heads, *causal)
            }
            (Step::LayerNorm(ln), Op::LayerNorm { .. }) => {
                let z = i64::from(self.acts[self.net.layers[i].inputs[0]].zero);
                ibert::layer_norm_positions(ln, x.mapv(|v| v - z).view())
            }
            _ => panic!("layer {i} is not a function-unit step (LRN, softmax, LayerNorm)"),
        }
    }

    /// The output codes of lookup layer `i` ([`Step::Lookup`]) for token-id codes `ids`, or
    /// the first id outside the table.
    ///
    /// # Panics
    /// If layer `i` is not a lookup.
    pub fn lookup(&self, i: usize, ids: ArrayView3<'_, i64>) -> Result<Array3<i64>, i64> {
        let (Step::Lookup { lo, table }, Op::Embedding { vocab, dim }) =
            (&self.steps[i], &self.net.layers[i].op)
        else {
            panic!("layer {i} is not a lookup");
        };
        let (vocab, dim) = (*vocab as i64, *dim);
        if let Some(&bad) = ids.iter().find(|&&t| !(0..vocab).contains(&t)) {
            return Err(bad);
        }
        let seq = ids.len();
        Ok(Array3::from_shape_fn((dim, seq, 1), |(d, i, _)| {
            lo + i64::from(table[ids[[0, i, 0]] as usize * dim + d])
        }))
    }

    /// Every layer's output codes for one input (codes in the input layer's format).
    pub fn run(&self, input: &Array3<i64>) -> Result<Vec<Array3<i64>>, WorkloadError> {
        let want = self.net.input_shape();
        if input.dim() != (want.c, want.h, want.w) {
            return Err(WorkloadError::Shape(format!(
                "network '{}' takes {want}, got {:?}",
                self.net.name,
                input.dim()
            )));
        }
        let (lo, hi) = self.acts[0].range();
        if let Some((i, v)) = input
            .iter()
            .enumerate()
            .find(|(_, v)| !(lo..=hi).contains(*v))
        {
            return Err(WorkloadError::OutOfRange {
                value: *v,
                index: i,
                format: format!("{:?}", self.acts[0]),
                min: lo,
                max: hi,
            });
        }
        let mut outs: Vec<Array3<i64>> = Vec::with_capacity(self.steps.len());
        for (i, (layer, step)) in self.net.layers.iter().zip(&self.steps).enumerate() {
            let act = self.acts[i];
            let (lo, hi) = act.range();
            let zy = i64::from(act.zero);
            // z_y + r, saturating (requantization saturates at the i64 range), then clamped.
            let clamp = |r: i64| zy.saturating_add(r).clamp(lo, hi);
            let x = |k: usize| outs[layer.inputs[k]].view();
            let centred = |k: usize| {
                let z = i64::from(self.acts[layer.inputs[k]].zero);
                outs[layer.inputs[k]].mapv(|v| v - z)
            };
            let y = match step {
                Step::Input => input.clone(),
                Step::Linear { w, bias, rq, xnor } => {
                    let mut acc = match xnor {
                        Some(rows) => xnor_dense(x(0), rows),
                        // A ±1 input's padding is −1: its code cannot hold 0.
                        None => exec::apply_weight_padded(
                            &layer.op,
                            centred(0).view(),
                            w.mapv(i64::from).view(),
                            if self.acts[layer.inputs[0]].binary {
                                -1
                            } else {
                                0
                            },
                        ),
                    };
                    for (o, mut plane) in acc.outer_iter_mut().enumerate() {
                        plane.mapv_inplace(|a| {
                            let a = a + bias[o];
                            if act.binary {
                                if a >= 0 { 1 } else { -1 }
                            } else {
                                clamp(rq[o].apply(a))
                            }
                        });
                    }
                    acc
                }
                Step::MaxPool => match layer.op {
                    Op::MaxPool { window } => exec::max_pool(x(0), &window, zy),
                    Op::Input { .. }
                    | Op::Dense { .. }
                    | Op::Conv2d { .. }
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
                    | Op::KvCache { .. } => unreachable!(),
                },
                Step::SumPool(r) => {
                    let c = centred(0);
                    let sum = match layer.op {
                        Op::AvgPool { window, .. } => exec::sum_pool(c.view(), &window),
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
                        | Op::KvCache { .. } => exec::sum_spatial(c.view()),
                    };
                    sum.mapv(|v| clamp(r.apply(v)))
                }
                Step::SumPoolCounted(rqs) => {
                    let Op::AvgPool { window, .. } = layer.op else {
                        unreachable!("counted pooling is an AvgPool")
                    };
                    let (_, h, w) = x(0).dim();
                    let counts = exec::window_counts(&window, h, w);
                    let mut sum = exec::sum_pool(centred(0).view(), &window);
                    for mut plane in sum.outer_iter_mut() {
                        for (v, &n) in plane.iter_mut().zip(&counts) {
                            *v = clamp(rqs[n].apply(*v));
                        }
                    }
                    sum
                }
                Step::Relu => x(0).mapv(|v| v.max(zy)),
                Step::Relu6 { hi } => x(0).mapv(|v| v.clamp(zy, *hi)),
                Step::Sign => {
                    let z = i64::from(self.acts[layer.inputs[0]].zero);
                    x(0).mapv(|v| if v > z { 1 } else { -1 })
                }
                Step::Add { mults, shift } => {
                    add_rounded(centred(0).view(), centred(1).view(), *mults, *shift, clamp)
                }
                Step::Concat(rqs) => {
                    let parts: Vec<Array3<i64>> = rqs
                        .iter()
                        .enumerate()
                        .map(|(k, r)| centred(k).mapv(|v| clamp(r.apply(v))))
                        .collect();
                    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                    exec::concat(&views)
                }
                Step::Pass => {
                    let v: Vec<i64> = x(0).iter().copied().collect();
                    let s = self.shapes[i];
                    Array3::from_shape_vec((s.c, s.h, s.w), v).expect("same element count")
                }
                Step::Move => exec::move_channels(&layer.op, x(0)),
                Step::Host { .. } => self.host(i, x(0)),
                Step::Lut { lo, table } => x(0).mapv(|q| table[(q - lo) as usize]),
                Step::Softmax(_) | Step::LayerNorm(_) => self.host(i, x(0)),
                Step::Lookup { .. } => self.lookup(i, x(0)).map_err(|id| {
                    WorkloadError::Network(format!(
                        "network '{}', layer '{}': token id {id} is outside its table",
                        self.net.name, layer.name
                    ))
                })?,
                Step::Cache { codes } => {
                    ndarray::concatenate(ndarray::Axis(1), &[codes.view(), x(0)])
                        .expect("features checked by Network::stats")
                }
                Step::AddTable {
                    mults,
                    shift,
                    table,
                    format,
                } => {
                    let zt = i64::from(format.zero);
                    let t = table.mapv(|v| v - zt);
                    add_rounded(centred(0).view(), t.view(), *mults, *shift, clamp)
                }
                Step::Mul(r) => exec::product(centred(0).view(), centred(1).view(), |a, b| {
                    clamp(r.apply(a * b))
                }),
                Step::Downsample => match layer.op {
                    Op::Downsample {
                        stride,
                        out_channels,
                    } => exec::downsample(x(0), stride, out_channels, zy),
                    _ => unreachable!(),
                },
                Step::Attn(r) => {
                    let (a, b) = (centred(0), centred(1));
                    let acc = match layer.op {
                        Op::AttnScores { heads } => exec::attn_scores(a.view(), b.view(), heads),
                        Op::AttnContext { heads } => exec::attn_context(a.view(), b.view(), heads),
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
                        | Op::Shuffle { .. }
                        | Op::Channels { .. }
                        | Op::Lrn { .. }
                        | Op::Unary { .. }
                        | Op::Mul
                        | Op::LayerNorm { .. }
                        | Op::AttnSoftmax { .. }
                        | Op::Embedding { .. }
                        | Op::Positional { .. }
                        | Op::KvCache { .. } => unreachable!(),
                    };
                    acc.mapv(|v| clamp(r.apply(v)))
                }
            };
            outs.push(y);
        }
        Ok(outs)
    }

    /// The arg-max of the last layer's codes for one input.
    pub fn predict(&self, input: &Array3<i64>) -> Result<usize, WorkloadError> {
        Ok(exec::argmax(
            self.run(input)?.last().expect("layer 0 exists"),
        ))
    }
}

/// clamp(round((m_a·a + m_b·b) / 2^shift)) of centred codes `a` and `b`, element by element:
/// one rounding of a sum at a common shift ([`Step::Add`], [`Step::AddTable`]).
fn add_rounded(
    a: ArrayView3<i64>,
    b: ArrayView3<i64>,
    mults: [i64; 2],
    shift: u32,
    clamp: impl Fn(i64) -> i64,
) -> Array3<i64> {
    let mut y = Array3::zeros(a.dim());
    Zip::from(&mut y).and(&a).and(&b).for_each(|y, &a, &b| {
        let p = i128::from(a) * i128::from(mults[0]) + i128::from(b) * i128::from(mults[1]);
        *y = clamp(round_shift(p, shift));
    });
    y
}

/// Packs ±1 values into u64 words, bit i set for +1 (word i/64, bit i%64).
pub fn pack_signs(v: impl Iterator<Item = i64>) -> Vec<u64> {
    let mut words = Vec::new();
    for (i, x) in v.enumerate() {
        if i % 64 == 0 {
            words.push(0);
        }
        if x > 0 {
            *words.last_mut().expect("pushed") |= 1 << (i % 64);
        }
    }
    words
}

/// Σ aᵢ·bᵢ of two ±1 vectors of length `n` packed by [`pack_signs`]: 2·popcount(XNOR) − n,
/// i.e. n − 2·popcount(a XOR b) (the tail bits of both are zero, so they never differ).
pub fn xnor_dot(a: &[u64], b: &[u64], n: usize) -> i64 {
    let differ: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
    n as i64 - 2 * i64::from(differ)
}

/// A binary Dense layer on binary inputs: XNOR-popcount per output and position.
fn xnor_dense(x: ArrayView3<i64>, rows: &[Vec<u64>]) -> Array3<i64> {
    let (c, h, w) = x.dim();
    let mut out = Array3::zeros((rows.len(), h, w));
    for y in 0..h {
        for q in 0..w {
            let packed = pack_signs((0..c).map(|ch| x[[ch, y, q]]));
            for (o, row) in rows.iter().enumerate() {
                out[[o, y, q]] = xnor_dot(row, &packed, c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::{
        Calibration, CompressSpec, compress, synthetic_inputs, synthetic_weights,
    };
    use crate::net::{Shape, Window};
    use crate::quant::WeightScheme;
    use crate::zoo::{conv, dense};
    use ndarray::Array2;
    use proptest::prelude::*;

    /// Direct 7-loop convolution with explicit bounds checks (the naive reference).
    fn naive_conv(x: &Array3<i64>, w: &Array4<i64>, win: &Window, groups: usize) -> Array3<i64> {
        let (c, h, wd) = x.dim();
        let (o_n, cin_g, kh, kw) = w.dim();
        let (oh, ow) = win.output(h, wd).unwrap();
        let mut out = Array3::zeros((o_n, oh, ow));
        for o in 0..o_n {
            let g = o / (o_n / groups);
            for y in 0..oh {
                for q in 0..ow {
                    let mut acc = 0i64;
                    for ci in 0..cin_g {
                        for r in 0..kh {
                            for t in 0..kw {
                                let iy = (y * win.stride[0] + r) as i64 - win.pad[0] as i64;
                                let ix = (q * win.stride[1] + t) as i64 - win.pad[1] as i64;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    acc += w[[o, ci, r, t]]
                                        * x[[g * cin_g + ci, iy as usize, ix as usize]];
                                }
                            }
                        }
                    }
                    out[[o, y, q]] = acc;
                }
            }
        }
        assert_eq!(c, cin_g * groups);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn conv_equals_naive_i64(
            groups in 1usize..=3, cin_g in 1usize..=3, cout_g in 1usize..=3,
            kh in 1usize..=3, kw in 1usize..=3, sh in 1usize..=3, sw in 1usize..=2,
            pad in proptest::array::uniform4(0usize..=2), h in 3usize..=7, wd in 3usize..=7,
            seed in any::<u64>(),
        ) {
            let win = Window { kernel: [kh, kw], stride: [sh, sw], pad, ceil: false };
            prop_assume!(win.output(h, wd).is_ok());
            let mut s = seed;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 33) % 511) as i64 - 255 };
            let x = Array3::from_shape_simple_fn((groups * cin_g, h, wd), &mut next);
            let w = Array4::from_shape_simple_fn((groups * cout_g, cin_g, kh, kw), &mut next);
            prop_assert_eq!(exec::conv2d(x.view(), w.view(), &win, groups), naive_conv(&x, &w, &win, groups));
        }

        #[test]
        fn dense_equals_naive_i64(
            rows in proptest::collection::vec(proptest::collection::vec(-(1i64 << 20)..(1i64 << 20), 7), 1..6),
            x in proptest::collection::vec(-(1i64 << 20)..(1i64 << 20), 7 * 3),
        ) {
            let w = Array2::from_shape_vec((rows.len(), 7), rows.concat()).unwrap();
            let x3 = Array3::from_shape_vec((7, 3, 1), x.clone()).unwrap();
            let got = exec::dense(x3.view(), w.view());
            for o in 0..rows.len() {
                for p in 0..3 {
                    let want: i64 = (0..7).map(|i| rows[o][i] * x[i * 3 + p]).sum();
                    prop_assert_eq!(got[[o, p, 0]], want);
                }
            }
        }

        #[test]
        fn xnor_popcount_equals_the_pm1_dot_product(
            pairs in proptest::collection::vec((any::<bool>(), any::<bool>()), 1..300),
        ) {
            let a: Vec<i64> = pairs.iter().map(|p| if p.0 { 1 } else { -1 }).collect();
            let b: Vec<i64> = pairs.iter().map(|p| if p.1 { 1 } else { -1 }).collect();
            let want: i64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let got = xnor_dot(&pack_signs(a.iter().copied()), &pack_signs(b.iter().copied()), a.len());
            prop_assert_eq!(got, want);
        }

        #[test]
        fn requant_is_the_rounded_real_product(m in 1e-9f64..1e3, v in -(1i64 << 40)..(1i64 << 40)) {
            let r = Requant::from_real(m).unwrap();
            let exact = v as f64 * r.real();
            // The fixed-point multiplier is m to 31 significant bits; the result is the
            // rounding of v·mult/2^shift, so within ½ of the exact product of the two.
            prop_assert!((r.apply(v) as f64 - exact).abs() <= 0.5 + exact.abs() * 1e-12);
            prop_assert!((r.real() - m).abs() <= m * 2f64.powi(-30));
        }
    }

    /// A two-layer Dense network worked by hand end to end.
    #[test]
    fn hand_worked_dense_layer() {
        let mut net = Network::new("hand", Shape::vector(2));
        net.then("fc", dense(1));
        let mut w = Weights::default();
        w.insert(
            "fc",
            "bias",
            crate::weights::Tensor::new(vec![1], vec![0.3]),
        );
        let mut quant = Quant::default();
        // x = 0.1·(q − 1); weights 0.05·code; y = 0.25·(q − 3).
        quant.acts.insert(
            "input".into(),
            ActQuant {
                bits: 4,
                signed: false,
                binary: false,
                scale: 0.1,
                zero: 1,
            },
        );
        quant.acts.insert(
            "fc".into(),
            ActQuant {
                bits: 4,
                signed: false,
                binary: false,
                scale: 0.25,
                zero: 3,
            },
        );
        quant.weights.insert(
            "fc".into(),
            QWeight {
                scheme: WeightScheme {
                    bits: 4,
                    mode: WeightMode::Symmetric,
                    per_channel: false,
                },
                dims: vec![1, 2],
                values: vec![7, -3],
                scale: vec![0.05],
                zero: vec![0],
            },
        );
        let p = Program::compile(&net, &w, &quant).unwrap();
        // x codes [9, 4] → centred [8, 3]; acc = 7·8 − 3·3 = 47; bias 0.3/(0.1·0.05) = 60;
        // acc 107 · M (0.005/0.25 = 0.02) = 2.14 → 2; y = 3 + 2 = 5 (real 0.5; float: 0.535).
        let out = p
            .run(&Array3::from_shape_vec((2, 1, 1), vec![9, 4]).unwrap())
            .unwrap();
        assert_eq!(out[1][[0, 0, 0]], 5);
        // Saturation: x [15, 0] → centred [14, −1]: 98 + 3 + 60 = 161 · 0.02 = 3.22 → 3 + 3 = 6.
        let out = p
            .run(&Array3::from_shape_vec((2, 1, 1), vec![15, 0]).unwrap())
            .unwrap();
        assert_eq!(out[1][[0, 0, 0]], 6);
        // Out-of-range input codes are refused.
        let e = p
            .run(&Array3::from_shape_vec((2, 1, 1), vec![16, 0]).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("16"), "{e}");
        let mut bad = quant.clone();
        bad.acts.remove("fc");
        let e = Program::compile(&net, &w, &bad).unwrap_err().to_string();
        assert!(e.contains("'fc'") && e.contains("activation format"), "{e}");
    }

    fn spec(bits: u32) -> CompressSpec {
        CompressSpec {
            weights: WeightScheme {
                bits,
                mode: WeightMode::Symmetric,
                per_channel: true,
            },
            act_bits: bits,
            act_symmetric: false,
            input: None,
            prune: None,
            calibration: Calibration::MinMax,
            binarize: None,
        }
    }

    /// The integer program's dequantized outputs track the float network's (with the same
    /// quantized weights) on inputs it was not calibrated on.
    fn tracks_float(net: &Network, bits: u32, tolerance: f32) {
        let w = synthetic_weights(net, 7).unwrap();
        let calib = synthetic_inputs(net.input_shape(), 8, 1);
        let (m, _) = compress(net, &w, &spec(bits), &calib).unwrap();
        let p = m.program().unwrap();
        let last = m.net.layers.len() - 1;
        for x in synthetic_inputs(net.input_shape(), 3, 2) {
            let want = exec::forward(&m.net, &m.weights, &x)
                .unwrap()
                .pop()
                .unwrap();
            let a0 = p.act(0);
            let codes = x.mapv(|v| a0.quantize(v));
            let got = p
                .run(&codes)
                .unwrap()
                .pop()
                .unwrap()
                .mapv(|q| p.act(last).dequantize(q));
            let range = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            let err = want
                .iter()
                .zip(&got)
                .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
            assert!(
                err <= tolerance * range,
                "{}: error {err} vs range {range}",
                net.name
            );
        }
    }

    #[test]
    fn every_op_in_integer_tracks_float() {
        let mut n = Network::new("every-op", Shape::new(4, 8, 8));
        n.then("c1", conv(8, 3, 1, 1, 1, false));
        n.then(
            "bn1",
            Op::BatchNorm {
                eps: 1e-5,
                counted: true,
            },
        );
        let r6 = n.then("r6", Op::Relu6);
        n.then("dw", conv(8, 3, 1, 1, 8, true));
        n.then("r", Op::Relu);
        let ap = n.then(
            "ap",
            Op::AvgPool {
                window: Window::square(2, 2, 0),
                count_pad: true,
            },
        );
        let ds = n.push(
            "ds",
            Op::Downsample {
                stride: 2,
                out_channels: 8,
            },
            &[r6],
        );
        let add = n.push("add", Op::Add, &[ap, ds]);
        n.push("cat", Op::Concat, &[add, ap]);
        n.then(
            "mp",
            Op::MaxPool {
                window: Window::square(2, 2, 0),
            },
        );
        n.then("gap", Op::GlobalAvgPool);
        n.then("fc", dense(10));
        n.then("sm", Op::Softmax);
        tracks_float(&n, 8, 0.08);

        let mut a = Network::new("attention", Shape::new(8, 4, 1));
        let q = a.then("q", dense(8));
        let k = a.push("k", dense(8), &[0]);
        let v = a.push("v", dense(8), &[0]);
        let s = a.push("scores", Op::AttnScores { heads: 2 }, &[q, k]);
        a.push("ctx", Op::AttnContext { heads: 2 }, &[s, v]);
        a.then("out", dense(4));
        tracks_float(&a, 8, 0.08);
    }

    #[test]
    fn zoo_networks_compile_and_track_float() {
        tracks_float(&crate::zoo::model("lenet5").unwrap(), 8, 0.08);
        tracks_float(&crate::zoo::model("resnet20").unwrap(), 8, 0.15);
    }

    #[test]
    fn binary_dense_uses_xnor_and_agrees_with_the_generic_path() {
        let mut net = Network::new("bnn", Shape::vector(100));
        net.then("fc1", dense(70));
        net.then("s1", Op::Sign);
        net.then("fc2", dense(10));
        let w = synthetic_weights(&net, 3).unwrap();
        let mut sp = spec(8);
        sp.weights = WeightScheme {
            bits: 1,
            mode: WeightMode::Binary,
            per_channel: true,
        };
        let calib = synthetic_inputs(net.input_shape(), 4, 5);
        let (m, _) = compress(&net, &w, &sp, &calib).unwrap();
        let p = m.program().unwrap();
        assert!(matches!(&p.steps[3], Step::Linear { xnor: Some(_), .. }));
        assert!(matches!(&p.steps[1], Step::Linear { xnor: None, .. }));
        let mut generic = p.clone();
        if let Step::Linear { xnor, .. } = &mut generic.steps[3] {
            *xnor = None;
        }
        for x in synthetic_inputs(net.input_shape(), 5, 9) {
            let codes = x.mapv(|v| p.act(0).quantize(v));
            let (a, b) = (p.run(&codes).unwrap(), generic.run(&codes).unwrap());
            assert_eq!(a, b);
            assert!(a[2].iter().all(|&v| v == 1 || v == -1));
        }
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;
    use crate::net::{Shape, UnaryFn};
    use proptest::prelude::{any, prop_assert};

    fn act(bits: u32, scale: f32, zero: i32) -> ActQuant {
        ActQuant {
            bits,
            signed: false,
            binary: false,
            scale,
            zero,
        }
    }

    /// A softmax's output format is I-BERT's (unsigned, scale 2^−bits, zero point 0); a
    /// file that gives it another is refused, naming the format allowed.
    #[test]
    fn a_softmax_into_another_format_is_refused() {
        let mut net = Network::new("t", Shape::new(4, 2, 1));
        net.then(
            "p",
            Op::AttnSoftmax {
                heads: 2,
                causal: false,
            },
        );
        let mut q = Quant::default();
        q.acts.insert("input".into(), act(8, 0.1, 0));
        q.acts.insert("p".into(), act(8, 0.01, 0));
        let e = Program::compile(&net, &Weights::default(), &q)
            .unwrap_err()
            .to_string();
        assert!(e.contains("softmax") && e.contains("0.00390625"), "{e}");
        q.acts.insert("p".into(), act(8, 1.0 / 256.0, 0));
        let p = Program::compile(&net, &Weights::default(), &q).unwrap();
        let x = Array3::from_shape_vec((4, 2, 1), vec![10, 0, 10, 0, 3, 5, 3, 5]).unwrap();
        let y = p.run(&x).unwrap().pop().unwrap();
        // Equal scores share the probability (each head's two keys, at both queries).
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), [128; 8]);
    }

    /// An input code, its real value, the output code and its real value.
    type TableRow = (i64, f64, i64, f64);

    /// Layer `f` from format `x` to `y` run on every input code: per code (the code, its
    /// real value, the output code, its real value), and the output format's real range.
    fn table_outputs(f: UnaryFn, x: ActQuant, y: ActQuant) -> (Vec<TableRow>, (f64, f64)) {
        let (lo, hi) = x.range();
        let n = (hi - lo + 1) as usize;
        let mut net = Network::new("t", Shape::vector(n));
        net.then("f", Op::Unary { f });
        let mut q = Quant::default();
        q.acts.insert("input".into(), x);
        q.acts.insert("f".into(), y);
        let p = Program::compile(&net, &Weights::default(), &q).unwrap();
        let codes = Array3::from_shape_fn((n, 1, 1), |(i, _, _)| lo + i as i64);
        let out = p.run(&codes).unwrap().pop().unwrap();
        let (sx, sy, zy) = (x.scale as f64, y.scale as f64, i64::from(y.zero));
        let (ylo, yhi) = y.range();
        let outs = out
            .iter()
            .enumerate()
            .map(|(i, &code)| {
                let q = lo + i as i64;
                let r = (q - i64::from(x.zero)) as f64 * sx;
                (q, r, code, sy * (code - zy) as f64)
            })
            .collect();
        (outs, (sy * (ylo - zy) as f64, sy * (yhi - zy) as f64))
    }

    fn functions() -> Vec<UnaryFn> {
        vec![
            UnaryFn::Sigmoid,
            UnaryFn::Tanh,
            UnaryFn::HardSigmoid {
                alpha: 1.0 / 6.0,
                beta: 0.5,
            },
            UnaryFn::HardSwish,
            UnaryFn::Clip {
                min: -0.5,
                max: 1.5,
            },
            // min > max: every output is max (ONNX).
            UnaryFn::Clip {
                min: 1.0,
                max: -0.5,
            },
            UnaryFn::LeakyRelu { alpha: 0.1 },
            UnaryFn::Elu { alpha: 1.0 },
            UnaryFn::Selu {
                alpha: 1.673_263_2,
                gamma: 1.050_701,
            },
            UnaryFn::Celu { alpha: 0.5 },
            UnaryFn::Softplus,
            UnaryFn::Softsign,
            UnaryFn::Mish,
            UnaryFn::ThresholdedRelu { alpha: 0.3 },
            UnaryFn::Erf,
        ]
    }

    proptest::proptest! {
        /// A table's output is the function of the dequantized input, rounded to the
        /// nearest output step (error ≤ half a step), or the format's bound when the value
        /// lies beyond it; for every input code of any input and output format.
        #[test]
        fn a_table_is_the_function_rounded_to_the_output_step(
            f in proptest::sample::select(functions()), bits in 2u32..=10, signed in any::<bool>(),
            sx in 0.001f32..0.2, out_bits in 2u32..=10, sy in 0.001f32..0.2, zy in 0i32..4,
        ) {
            let x = ActQuant { bits, signed, binary: false, scale: sx, zero: 0 };
            let y = ActQuant { bits: out_bits, signed: false, binary: false, scale: sy, zero: zy };
            let (outs, (bottom, top)) = table_outputs(f, x, y);
            for (q, r, code, got) in outs {
                let want = f.eval(r);
                let bound = want.clamp(bottom, top);
                prop_assert!((got - bound).abs() <= sy as f64 / 2.0 * (1.0 + 1e-9),
                    "{f:?}: x code {q} → {code}, f = {want}");
            }
        }

        /// GELU's table is I-BERT's integer GELU: within `ibert::GELU_ERROR`·max(1, |x|)
        /// plus half an output step of the exact GELU (or of the format's bound), for every
        /// input code of any 8-bit input and output format.
        #[test]
        fn gelu_is_ibert_within_its_bound(
            signed in any::<bool>(), sx in 0.002f32..0.2, sy in 0.002f32..0.2, zy in 0i32..64,
        ) {
            let x = ActQuant { bits: 8, signed, binary: false, scale: sx, zero: if signed { 0 } else { 128 } };
            let y = ActQuant { bits: 8, signed: false, binary: false, scale: sy, zero: zy };
            let (outs, (bottom, top)) = table_outputs(UnaryFn::Gelu, x, y);
            for (_, r, _, got) in outs {
                let want = crate::ibert::gelu(r);
                let bound = crate::ibert::GELU_ERROR * r.abs().max(1.0) + sy as f64 / 2.0 + 1e-9;
                prop_assert!((got - want.clamp(bottom, top)).abs() <= bound,
                    "x {r}: got {got}, GELU {want}");
            }
        }

        /// A product of two activations (a per-channel gate or a same-shaped one) is the
        /// real product of the two layers' values rounded to the output step, within the
        /// requantizer's relative error.
        #[test]
        fn a_product_is_the_real_product_rounded(
            sa in 0.001f32..0.5, sb in 0.001f32..0.5, sy in 0.001f32..0.5, za in 0i32..200,
            per_channel in any::<bool>(),
            codes in proptest::collection::vec(0i64..256, 12),
        ) {
            let (c, h) = (3usize, 4usize);
            let mut net = Network::new("t", Shape::new(c, h, 1));
            let g = if per_channel {
                net.then("b", Op::GlobalAvgPool)
            } else {
                net.then("b", Op::AvgPool { window: crate::net::Window::square(1, 1, 0), count_pad: true })
            };
            net.push("m", Op::Mul, &[0, g]);
            let mut q = Quant::default();
            q.acts.insert("input".into(), act(8, sa, za));
            q.acts.insert("b".into(), ActQuant { bits: 8, signed: true, binary: false, scale: sb, zero: 0 });
            q.acts.insert("m".into(), ActQuant { bits: 16, signed: true, binary: false, scale: sy, zero: 0 });
            let p = Program::compile(&net, &Weights::default(), &q).unwrap();
            let x = Array3::from_shape_vec((c, h, 1), codes).unwrap();
            let outs = p.run(&x).unwrap();
            let (a, b, y) = (&outs[0], &outs[1], &outs[2]);
            for ((ch, i, _), &got) in y.indexed_iter() {
                let bv = if per_channel { b[[ch, 0, 0]] } else { b[[ch, i, 0]] };
                let want = f64::from(sa) * (a[[ch, i, 0]] - za as i64) as f64
                    * f64::from(sb) * bv as f64;
                // The output format saturates at its bounds.
                let want = want.clamp(-32768.0 * f64::from(sy), 32767.0 * f64::from(sy));
                let err = (f64::from(sy) * got as f64 - want).abs();
                prop_assert!(err <= f64::from(sy) / 2.0 + want.abs() * 1e-6, "{got} vs {want}");
            }
        }
    }

    #[test]
    fn relu6_with_a_tiny_scale_clamps_at_the_top_code() {
        let mut net = Network::new("r6", Shape::vector(3));
        net.then("r6", Op::Relu6);
        let mut q = Quant::default();
        for l in ["input", "r6"] {
            q.acts.insert(l.into(), act(8, 1e-20, 1));
        }
        let p = Program::compile(&net, &Weights::default(), &q).unwrap();
        let x = Array3::from_shape_vec((3, 1, 1), vec![0, 1, 255]).unwrap();
        assert_eq!(
            p.run(&x).unwrap()[1].iter().copied().collect::<Vec<_>>(),
            [1, 1, 255]
        );
    }

    #[test]
    fn a_binary_threshold_floors_the_bias() {
        // acc = −3 with b/s = 2.7: s·acc + b < 0, so −1 (rounding the bias to 3 would give +1).
        let mut net = Network::new("t", Shape::vector(1));
        net.then("fc", crate::zoo::dense(1));
        let mut w = Weights::default();
        w.insert(
            "fc",
            "bias",
            crate::weights::Tensor::new(vec![1], vec![2.7]),
        );
        let mut q = Quant::default();
        q.acts.insert(
            "input".into(),
            ActQuant {
                bits: 4,
                signed: true,
                binary: false,
                scale: 1.0,
                zero: 0,
            },
        );
        q.acts.insert("fc".into(), ActQuant::BINARY);
        q.weights.insert(
            "fc".into(),
            QWeight {
                scheme: crate::quant::WeightScheme {
                    bits: 1,
                    mode: WeightMode::Binary,
                    per_channel: false,
                },
                dims: vec![1, 1],
                values: vec![1],
                scale: vec![1.0],
                zero: vec![0],
            },
        );
        let p = Program::compile(&net, &w, &q).unwrap();
        let run = |v: i64| p.run(&Array3::from_elem((1, 1, 1), v)).unwrap()[1][[0, 0, 0]];
        assert_eq!((run(-3), run(-2)), (-1, 1));
        // Weight codes laid out for another shape are refused, not misread.
        let mut bad = q.clone();
        bad.weights.get_mut("fc").unwrap().dims = vec![1, 1, 1, 1];
        let e = Program::compile(&net, &w, &bad).unwrap_err().to_string();
        assert!(e.contains("dims"), "{e}");
    }

    #[test]
    fn degenerate_graphs_are_refused() {
        let empty = Network {
            name: "e".into(),
            layers: vec![],
        };
        assert!(empty.stats().unwrap_err().to_string().contains("no layer"));
        let mut n = Network::new("c", Shape::new(1, 5, 5));
        let mut w = crate::net::Window::square(2, 2, 0);
        w.ceil = true;
        n.then(
            "c",
            Op::Conv2d {
                out_channels: 1,
                window: w,
                groups: 1,
                bias: false,
            },
        );
        assert!(n.stats().unwrap_err().to_string().contains("ceil"));
    }
}
