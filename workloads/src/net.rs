//! The network IR: a DAG of layers in topological order, with shape inference and MAC and
//! parameter counts (docs/model.md §2.1; counting conventions of `docs/references.md` B2).
//!
//! Conventions:
//! * Activations are C×H×W (batch 1). A vector is C×1×1; a token sequence is features×seq×1,
//!   and `Dense` applies to every position (H·W of them), like a 1×1 convolution.
//! * MACs count the multiply-accumulates of Dense, Conv2d and the two attention products only
//!   (no BatchNorm, pooling, activation or residual adds), as the published totals do.
//! * Parameters count weights, biases and BatchNorm's γ and β (two per channel; the running
//!   mean and variance are statistics, not parameters, as in torchvision's counts).

use serde::{Deserialize, Serialize};

use crate::error::WorkloadError;

/// Activation shape, channels × height × width (batch 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Shape {
    /// Channels (features for vectors and sequences).
    pub c: usize,
    /// Height (sequence length for token sequences).
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Shape {
    /// C×H×W.
    pub const fn new(c: usize, h: usize, w: usize) -> Shape {
        Shape { c, h, w }
    }

    /// A vector of `n` features (n×1×1).
    pub const fn vector(n: usize) -> Shape {
        Shape { c: n, h: 1, w: 1 }
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// True if the shape holds no element.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.h == 1 && self.w == 1 {
            write!(f, "{}", self.c)
        } else {
            write!(f, "{}×{}×{}", self.c, self.h, self.w)
        }
    }
}

/// A 2-D window: kernel, stride and padding (top, left, bottom, right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Round the output size up instead of down (pooling only; ONNX `ceil_mode`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ceil: bool,
}

impl Window {
    /// A square k×k window with stride s and symmetric padding p.
    pub const fn square(k: usize, s: usize, p: usize) -> Window {
        Window {
            kernel: [k, k],
            stride: [s, s],
            pad: [p, p, p, p],
            ceil: false,
        }
    }

    /// Output height and width for an input of `h`×`w`, or why there is none.
    pub fn output(&self, h: usize, w: usize) -> Result<(usize, usize), String> {
        let dim = |n: usize, k: usize, s: usize, lo: usize, hi: usize| {
            let span = n
                .checked_add(lo)
                .and_then(|v| v.checked_add(hi))
                .ok_or_else(|| format!("padding {lo} + {hi} overflows"))?;
            if k == 0 || s == 0 {
                return Err(format!("kernel {k} and stride {s} must be positive"));
            }
            if span < k {
                return Err(format!(
                    "kernel {k} is larger than the padded input {span} ({n} + {lo} + {hi})"
                ));
            }
            Ok(if self.ceil {
                // As ONNX and PyTorch: a last window that would start in the end padding is
                // dropped.
                let out = (span - k).div_ceil(s) + 1;
                if (out - 1) * s >= n + lo {
                    out - 1
                } else {
                    out
                }
            } else {
                (span - k) / s + 1
            })
        };
        Ok((
            dim(h, self.kernel[0], self.stride[0], self.pad[0], self.pad[2])?,
            dim(w, self.kernel[1], self.stride[1], self.pad[1], self.pad[3])?,
        ))
    }
}

/// What a layer computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The network input.
    Input {
        /// Its shape.
        shape: Shape,
    },
    /// Fully connected: out[o] = Σ_i W[o,i]·x[i] (+ b[o]) at every spatial position.
    Dense {
        /// Output features.
        out_features: usize,
        /// Whether a bias is added.
        bias: bool,
    },
    /// 2-D convolution with groups (groups = channels is depthwise).
    Conv2d {
        /// Output channels.
        out_channels: usize,
        /// Kernel, stride, padding.
        window: Window,
        /// Channel groups.
        groups: usize,
        /// Whether a bias is added.
        bias: bool,
    },
    /// Max pooling.
    MaxPool {
        /// Kernel, stride, padding (padding never wins the max).
        window: Window,
    },
    /// Average pooling: padding counts as zeros in the sum; the divisor is the kernel area,
    /// or with `count_pad` false the number of window cells inside the input (ONNX
    /// `count_include_pad = 0`).
    AvgPool {
        /// Kernel, stride, padding.
        window: Window,
        /// Whether padding cells count in the divisor.
        #[serde(default = "counts_pad", skip_serializing_if = "bool::clone")]
        count_pad: bool,
    },
    /// Mean over H×W per channel.
    GlobalAvgPool,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6) (MobileNetV2).
    Relu6,
    /// Element-wise sum of two inputs of the same shape (residual connections).
    Add,
    /// Concatenation of the inputs along channels.
    Concat,
    /// C×H×W → (C·H·W)×1×1, row-major.
    Flatten,
    /// Per-channel affine y = γ·(x − μ)/√(σ² + ε) + β; folded into the previous layer's scale
    /// and bias before integer execution.
    BatchNorm {
        /// ε of the normalization.
        eps: f32,
        /// Whether γ and β count as parameters: false for the affine of an element-wise
        /// multiply or add by one scalar (an export's constant, such as an input transform,
        /// which published totals leave out).
        #[serde(default = "yes", skip_serializing_if = "bool::clone")]
        counted: bool,
    },
    /// Option-A shortcut of He et al. 2016: every `stride`-th row and column, channels padded
    /// with zeros up to `out_channels`.
    Downsample {
        /// Spatial step.
        stride: usize,
        /// Channels after zero padding (≥ the input's).
        out_channels: usize,
    },
    /// Softmax over channels: monotone, so the integer reference passes logits through.
    Softmax,
    /// Binary activation: +1 if x ≥ 0, else −1 (BNN sign; Courbariaux, Hubara et al. 2016).
    Sign,
    /// Scaled attention scores per head (Vaswani et al. 2017):
    /// S[h][i][j] = Σ_d Q[h·dₕ+d][i]·K[h·dₕ+d][j] / √dₕ (inputs Q and K, features×seq;
    /// output (heads·keys)×queries). The 1/√dₕ is a constant of the requantization.
    AttnScores {
        /// Number of heads.
        heads: usize,
    },
    /// Attention context per head: O[h·dₕ+d][i] = Σ_j S[h][i][j]·V[h·dₕ+d][j]
    /// (inputs S and V; output features×seq).
    AttnContext {
        /// Number of heads.
        heads: usize,
    },
    /// Channel shuffle (ShuffleNet, Zhang et al. 2018): output channel j is input channel
    /// (j mod g)·(C/g) + ⌊j/g⌋, the reshape to g × C/g, transpose and flatten of exports.
    Shuffle {
        /// Groups g (dividing the channels).
        groups: usize,
    },
    /// Channels `start..start + len` of the input (a Slice, Split or Gather on channels).
    Channels {
        /// First channel kept.
        start: usize,
        /// Channels kept.
        len: usize,
    },
    /// Local response normalization across channels (Krizhevsky et al. 2012; the ONNX LRN
    /// operator): y_c = x_c / (bias + alpha/size · Σ x_i²)^beta, the sum over channels
    /// c − ⌊(size − 1)/2⌋ … c + ⌈(size − 1)/2⌉ inside the input.
    Lrn {
        /// Channels in the window.
        size: usize,
        /// Scale of the sum of squares.
        alpha: f32,
        /// Exponent.
        beta: f32,
        /// Additive constant.
        bias: f32,
    },
    /// An element-wise function of one input ([`UnaryFn`]): sigmoid, tanh, the hard
    /// activations of MobileNetV3, a general clip and the like.
    Unary {
        /// The function.
        f: UnaryFn,
    },
    /// Element-wise product of two activations (squeeze-and-excitation gates, SiLU's
    /// x·σ(x)): the second input has the first's shape, or its channels at 1×1, one factor
    /// per channel for every position.
    Mul,
    /// Layer normalization over channels at every position (Ba et al. 2016):
    /// y_c = γ_c·(x_c − mean)/√(var + ε) + β_c, the mean and variance over the C channels;
    /// γ and β are the layer's `gamma` and `beta` (2·C parameters). Integer execution is
    /// I-BERT's (`ibert::LayerNorm`).
    LayerNorm {
        /// ε of the normalization.
        eps: f32,
    },
    /// Softmax over the keys of an attention score matrix ([`Op::AttnScores`]' output,
    /// (heads·keys)×queries): at every query position, over each head's `keys = C/heads`
    /// channels. With `causal`, query i sees keys j ≤ i + (keys − queries) only (a
    /// decoder's mask; the others get probability 0). Integer execution is I-BERT's
    /// (`ibert::Softmax`), into probabilities of scale 2^−bits.
    AttnSoftmax {
        /// Number of heads.
        heads: usize,
        /// Whether a query sees only keys up to its own position.
        causal: bool,
    },
    /// Token embedding lookup: a 1×seq input of token ids (integer values in 0..vocab) to
    /// dim×seq, out[d][i] = E[idᵢ][d], E the layer's `weight` [vocab, dim].
    Embedding {
        /// Number of tokens in the table.
        vocab: usize,
        /// Features per token.
        dim: usize,
    },
    /// Learned position embeddings (and BERT's token-type embeddings) added to a dim×seq
    /// input: out[d][i] = x[d][i] + P[offset + i][d] + T[0][d], P the layer's `weight`
    /// [positions, dim] and T its `types` [token_types, dim] (every token in segment 0).
    Positional {
        /// Rows of the position table.
        positions: usize,
        /// Position of the first token of the input.
        offset: usize,
        /// Rows of the token-type table (0: none).
        token_types: usize,
    },
    /// A decoder's key or value cache: the `past` entries of earlier tokens, then the
    /// input's (features×seq): out[d][j] = C[j][d] for j < past, else x[d][j − past]. C is
    /// the layer's `cache` [past, features], state written by earlier decode steps (not a
    /// parameter); in CRAM it stays resident in cells and each step writes only its new
    /// entries. Codes keep the input's format.
    KvCache {
        /// Entries already cached.
        past: usize,
    },
}

impl Op {
    /// Short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Dense { .. } => "dense",
            Op::Conv2d { groups, .. } if *groups > 1 => "conv(g)",
            Op::Conv2d { .. } => "conv",
            Op::MaxPool { .. } => "maxpool",
            Op::AvgPool { .. } => "avgpool",
            Op::GlobalAvgPool => "gap",
            Op::Relu => "relu",
            Op::Relu6 => "relu6",
            Op::Add => "add",
            Op::Concat => "concat",
            Op::Flatten => "flatten",
            Op::BatchNorm { .. } => "batchnorm",
            Op::Downsample { .. } => "downsample",
            Op::Softmax => "softmax",
            Op::Sign => "sign",
            Op::AttnScores { .. } => "attn-scores",
            Op::AttnContext { .. } => "attn-context",
            Op::Shuffle { .. } => "shuffle",
            Op::Channels { .. } => "channels",
            Op::Lrn { .. } => "lrn",
            Op::Unary { f } => f.name(),
            Op::Mul => "mul",
            Op::LayerNorm { .. } => "layernorm",
            Op::AttnSoftmax { .. } => "attn-softmax",
            Op::Embedding { .. } => "embedding",
            Op::Positional { .. } => "positional",
            Op::KvCache { .. } => "kv-cache",
        }
    }

    /// Whether the op's output codes are in its (first) input's format: it selects, moves or
    /// clips codes without rescaling them (compression gives it its producer's format).
    pub fn keeps_format(&self) -> bool {
        match self {
            Op::MaxPool { .. }
            | Op::Relu
            | Op::Relu6
            | Op::Flatten
            | Op::Downsample { .. }
            | Op::Softmax
            | Op::Shuffle { .. }
            | Op::Channels { .. }
            | Op::KvCache { .. } => true,
            Op::Input { .. }
            | Op::Dense { .. }
            | Op::Conv2d { .. }
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
            | Op::Add
            | Op::Concat
            | Op::BatchNorm { .. }
            | Op::Sign
            | Op::AttnScores { .. }
            | Op::AttnContext { .. }
            | Op::Lrn { .. }
            | Op::Unary { .. }
            | Op::Mul
            | Op::LayerNorm { .. }
            | Op::AttnSoftmax { .. }
            | Op::Embedding { .. }
            | Op::Positional { .. } => false,
        }
    }

    /// The input channel output channel `j` copies, for the ops that only move channels
    /// (Shuffle, Channels); `None` for any other op.
    pub fn source_channel(&self, j: usize, in_channels: usize) -> Option<usize> {
        match *self {
            Op::Shuffle { groups } => Some((j % groups) * (in_channels / groups) + j / groups),
            Op::Channels { start, .. } => Some(start + j),
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
            | Op::AttnScores { .. }
            | Op::AttnContext { .. }
            | Op::Lrn { .. }
            | Op::Unary { .. }
            | Op::Mul
            | Op::LayerNorm { .. }
            | Op::AttnSoftmax { .. }
            | Op::Embedding { .. }
            | Op::Positional { .. }
            | Op::KvCache { .. } => None,
        }
    }

    /// The range an element-wise clipping op limits its input to, (low, high); `None` for
    /// an op that does not clip (calibration narrows a producer's range by its consumer's).
    pub fn clips_to(&self) -> Option<(f32, f32)> {
        match self {
            Op::Relu => Some((0.0, f32::INFINITY)),
            Op::Relu6 => Some((0.0, 6.0)),
            // min > max makes every output max (ONNX), which narrows nothing upstream.
            Op::Unary {
                f: UnaryFn::Clip { min, max },
            } => (min <= max).then_some((*min, *max)),
            Op::Unary { .. } | Op::Mul => None,
            Op::Input { .. }
            | Op::Dense { .. }
            | Op::Conv2d { .. }
            | Op::MaxPool { .. }
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
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
            | Op::LayerNorm { .. }
            | Op::AttnSoftmax { .. }
            | Op::Embedding { .. }
            | Op::Positional { .. }
            | Op::KvCache { .. } => None,
        }
    }

    /// Number of inputs the op takes (`None`: two or more).
    fn arity(&self) -> Option<usize> {
        match self {
            Op::Input { .. } => Some(0),
            Op::Add | Op::Mul | Op::AttnScores { .. } | Op::AttnContext { .. } => Some(2),
            Op::Concat => None,
            Op::Dense { .. }
            | Op::Conv2d { .. }
            | Op::MaxPool { .. }
            | Op::AvgPool { .. }
            | Op::GlobalAvgPool
            | Op::Relu
            | Op::Relu6
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
            | Op::Positional { .. }
            | Op::KvCache { .. } => Some(1),
        }
    }
}

/// An element-wise activation function y = f(x) ([`Op::Unary`]), with the ONNX operator's
/// definition (ONNX operator specification, opset 22 [verified: onnx/onnx
/// docs/Operators.md]). Integer execution evaluates it once per input code into a lookup
/// table (`golden::Step::Lut`), so any function of one value runs bit-exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fn", rename_all = "snake_case")]
pub enum UnaryFn {
    /// 1 / (1 + e^−x).
    Sigmoid,
    /// tanh x.
    Tanh,
    /// max(0, min(1, α·x + β)) (ONNX defaults α = 0.2, β = 0.5; PyTorch's is α = 1/6).
    HardSigmoid {
        /// Slope α.
        alpha: f32,
        /// Offset β.
        beta: f32,
    },
    /// x · max(0, min(1, x/6 + 1/2)) (MobileNetV3, Howard et al. 2019).
    HardSwish,
    /// min(max(x, min), max).
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// x if x ≥ 0, else α·x.
    LeakyRelu {
        /// Slope below zero.
        alpha: f32,
    },
    /// x if x > 0, else α·(eˣ − 1).
    Elu {
        /// Scale below zero.
        alpha: f32,
    },
    /// γ·x if x > 0, else γ·α·(eˣ − 1).
    Selu {
        /// α.
        alpha: f32,
        /// γ.
        gamma: f32,
    },
    /// max(0, x) + min(0, α·(e^(x/α) − 1)).
    Celu {
        /// α.
        alpha: f32,
    },
    /// ln(1 + eˣ).
    Softplus,
    /// x / (1 + |x|).
    Softsign,
    /// x · tanh(ln(1 + eˣ)).
    Mish,
    /// x if x > α, else 0.
    ThresholdedRelu {
        /// Threshold α.
        alpha: f32,
    },
    /// x·(1 + erf(x/√2))/2 (Hendrycks & Gimpel 2016; BERT's and GPT-2's activation).
    /// Integer execution is I-BERT's polynomial (`ibert::Gelu`), not the exact function.
    Gelu,
    /// The error function erf(x) (ONNX's Erf: the exact GELU as exporters before opset 20
    /// write it, x·0.5·(1 + erf(x/√2))).
    Erf,
}

impl UnaryFn {
    /// Short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryFn::Sigmoid => "sigmoid",
            UnaryFn::Tanh => "tanh",
            UnaryFn::HardSigmoid { .. } => "hardsigmoid",
            UnaryFn::HardSwish => "hardswish",
            UnaryFn::Clip { .. } => "clip",
            UnaryFn::LeakyRelu { .. } => "leakyrelu",
            UnaryFn::Elu { .. } => "elu",
            UnaryFn::Selu { .. } => "selu",
            UnaryFn::Celu { .. } => "celu",
            UnaryFn::Softplus => "softplus",
            UnaryFn::Softsign => "softsign",
            UnaryFn::Mish => "mish",
            UnaryFn::ThresholdedRelu { .. } => "thresholdedrelu",
            UnaryFn::Gelu => "gelu",
            UnaryFn::Erf => "erf",
        }
    }

    /// f(x), in f64.
    pub fn eval(&self, x: f64) -> f64 {
        let softplus = |x: f64| {
            // ln(1 + eˣ) without overflow: x + ln(1 + e^−x) for x > 0.
            if x > 0.0 {
                x + (-x).exp().ln_1p()
            } else {
                x.exp().ln_1p()
            }
        };
        match *self {
            UnaryFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryFn::Tanh => x.tanh(),
            UnaryFn::HardSigmoid { alpha, beta } => {
                (f64::from(alpha) * x + f64::from(beta)).clamp(0.0, 1.0)
            }
            UnaryFn::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            UnaryFn::Clip { min, max } => x.max(f64::from(min)).min(f64::from(max)),
            UnaryFn::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    f64::from(alpha) * x
                }
            }
            UnaryFn::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    f64::from(alpha) * x.exp_m1()
                }
            }
            UnaryFn::Selu { alpha, gamma } => {
                let g = f64::from(gamma);
                if x > 0.0 {
                    g * x
                } else {
                    g * f64::from(alpha) * x.exp_m1()
                }
            }
            UnaryFn::Celu { alpha } => {
                let a = f64::from(alpha);
                x.max(0.0) + (a * (x / a).exp_m1()).min(0.0)
            }
            UnaryFn::Softplus => softplus(x),
            UnaryFn::Softsign => x / (1.0 + x.abs()),
            UnaryFn::Mish => x * softplus(x).tanh(),
            UnaryFn::ThresholdedRelu { alpha } => {
                if x > f64::from(alpha) {
                    x
                } else {
                    0.0
                }
            }
            UnaryFn::Gelu => crate::ibert::gelu(x),
            UnaryFn::Erf => crate::ibert::erf(x),
        }
    }

    /// Its constants are finite (and a clip's bounds ordered, a CELU's α nonzero).
    fn validate(&self) -> Result<(), String> {
        let consts: &[f32] = match self {
            UnaryFn::Sigmoid
            | UnaryFn::Tanh
            | UnaryFn::HardSwish
            | UnaryFn::Softplus
            | UnaryFn::Softsign
            | UnaryFn::Mish
            | UnaryFn::Gelu
            | UnaryFn::Erf => &[],
            UnaryFn::HardSigmoid { alpha, beta } => &[*alpha, *beta],
            UnaryFn::Clip { min, max } => {
                // ONNX's unbounded sides are ±∞, and min > max sets every output to max
                // (which `eval`'s max-then-min does); NaN bounds are refused.
                if min.is_nan() || max.is_nan() {
                    return Err(format!("clip bounds [{min}, {max}] must be numbers"));
                }
                &[]
            }
            UnaryFn::LeakyRelu { alpha }
            | UnaryFn::Elu { alpha }
            | UnaryFn::ThresholdedRelu { alpha } => &[*alpha],
            UnaryFn::Celu { alpha } => {
                if *alpha == 0.0 {
                    return Err("CELU's alpha must be nonzero".into());
                }
                &[*alpha]
            }
            UnaryFn::Selu { alpha, gamma } => &[*alpha, *gamma],
        };
        if consts.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(format!(
                "{} has constants {consts:?}; they must be finite",
                self.name()
            ))
        }
    }
}

/// The default of `AvgPool::count_pad`: padding counts, as in every framework's default.
fn counts_pad() -> bool {
    true
}

/// The default of `BatchNorm::counted`.
fn yes() -> bool {
    true
}

/// Bit-widths of a compressed layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Bits {
    /// Weight bits (1 for binary ±1 weights).
    pub w: u32,
    /// Input activation bits.
    pub a: u32,
}

/// One layer: a name, an op and the layers it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Unique name.
    pub name: String,
    /// What it computes.
    #[serde(flatten)]
    pub op: Op,
    /// Indices of the layers it reads, all earlier in the list.
    pub inputs: Vec<usize>,
    /// Bit-widths once compressed (None: not quantized yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<Bits>,
    /// Weight tying: the earlier layer whose table this layer's `weight` is (GPT-2's LM head
    /// reads the token embedding's table), so its weights are not counted again as
    /// parameters. The layer still reads them: its weight count and traffic stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tied: Option<String>,
}

/// A network: layers in topological order; layer 0 is the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Name (zoo key or file stem).
    pub name: String,
    /// Layers, inputs first.
    pub layers: Vec<Layer>,
}

/// Shapes and counts of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LayerStats {
    /// Output shape.
    pub out: Shape,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Weights (without bias).
    pub weights: u64,
    /// Parameters: weights, bias, BatchNorm γ and β.
    pub params: u64,
}

impl Network {
    /// A network holding only its input layer.
    pub fn new(name: &str, input: Shape) -> Network {
        Network {
            name: name.to_owned(),
            layers: vec![Layer {
                name: "input".to_owned(),
                op: Op::Input { shape: input },
                inputs: vec![],
                bits: None,
                tied: None,
            }],
        }
    }

    /// Appends a layer reading `inputs` and returns its index.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[usize]) -> usize {
        self.layers.push(Layer {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            bits: None,
            tied: None,
        });
        self.layers.len() - 1
    }

    /// Appends a layer reading the last one and returns its index.
    pub fn then(&mut self, name: impl Into<String>, op: Op) -> usize {
        let last = self.layers.len() - 1;
        self.push(name, op, &[last])
    }

    /// Index of the layer called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|l| l.name == name)
    }

    /// Shape, MACs and parameters of every layer, checking the graph on the way: inputs
    /// earlier in the list, arities, channel and shape agreement, names unique.
    pub fn stats(&self) -> Result<Vec<LayerStats>, WorkloadError> {
        if self.layers.is_empty() {
            return Err(WorkloadError::Network(format!(
                "network '{}' has no layer (layer 0 must be the input)",
                self.name
            )));
        }
        let mut out: Vec<LayerStats> = Vec::with_capacity(self.layers.len());
        let mut names = std::collections::HashSet::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if !names.insert(layer.name.as_str()) {
                return Err(self.layer_error(i, "the name is used twice".into()));
            }
            out.push(self.stats_at(i, &out)?);
        }
        Ok(out)
    }

    /// The stats of layer `i` given those of every earlier layer (`earlier`), with the same
    /// checks as [`Network::stats`] but the names' uniqueness: a builder that adds layers
    /// one at a time calls it once per layer, in time linear in the network.
    pub fn stats_at(&self, i: usize, earlier: &[LayerStats]) -> Result<LayerStats, WorkloadError> {
        let layer = &self.layers[i];
        let bad = |why: String| self.layer_error(i, why);
        if (i == 0) != matches!(layer.op, Op::Input { .. }) {
            return Err(bad("layer 0, and only layer 0, must be the input".into()));
        }
        match layer.op.arity() {
            Some(n) if layer.inputs.len() != n => {
                return Err(bad(format!(
                    "takes {n} input(s), has {}",
                    layer.inputs.len()
                )));
            }
            None if layer.inputs.len() < 2 => {
                return Err(bad("takes two or more inputs".into()));
            }
            _ => {}
        }
        if let Some(&j) = layer.inputs.iter().find(|&&j| j >= i || j >= earlier.len()) {
            return Err(bad(format!(
                "reads layer {j}, which is not earlier in the list"
            )));
        }
        let ins: Vec<Shape> = layer.inputs.iter().map(|&j| earlier[j].out).collect();
        let mut s = layer_stats(&layer.op, &ins).map_err(bad)?;
        if let Some(t) = &layer.tied {
            let j = self.layers[..i]
                .iter()
                .position(|l| &l.name == t)
                .ok_or_else(|| bad(format!("is tied to '{t}', which is not an earlier layer")))?;
            if s.weights == 0 || earlier[j].weights != s.weights {
                return Err(bad(format!(
                    "is tied to '{t}', whose {} weights are not its {}",
                    earlier[j].weights, s.weights
                )));
            }
            s.params -= s.weights;
        }
        Ok(s)
    }

    fn layer_error(&self, i: usize, why: String) -> WorkloadError {
        let layer = &self.layers[i];
        WorkloadError::Network(format!(
            "network '{}', layer {i} '{}' ({}): {why}",
            self.name,
            layer.name,
            layer.op.name()
        ))
    }

    /// Σ MACs, Σ weights and Σ parameters.
    pub fn totals(&self) -> Result<(u64, u64, u64), WorkloadError> {
        let s = self.stats()?;
        let sum = |f: fn(&LayerStats) -> u64| {
            s.iter()
                .try_fold(0u64, |a, l| a.checked_add(f(l)))
                .ok_or_else(|| {
                    WorkloadError::Network(format!(
                        "network '{}': a total overflows 64 bits",
                        self.name
                    ))
                })
        };
        Ok((sum(|l| l.macs)?, sum(|l| l.weights)?, sum(|l| l.params)?))
    }

    /// The table size of a token network: `Some(vocab)` when an [`Op::Embedding`] reads the
    /// input (whose values are then token ids).
    pub fn token_vocab(&self) -> Option<usize> {
        self.layers.iter().find_map(|l| match l.op {
            Op::Embedding { vocab, .. } if l.inputs.first() == Some(&0) => Some(vocab),
            _ => None,
        })
    }

    /// The input shape.
    pub fn input_shape(&self) -> Shape {
        match self.layers[0].op {
            Op::Input { shape } => shape,
            Op::Dense { .. }
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
            | Op::KvCache { .. } => unreachable!("stats() checks layer 0 is the input"),
        }
    }
}

/// Largest element count of one activation (2^40): beyond it a shape is corrupt, not a network.
const MAX_ELEMENTS: u64 = 1 << 40;

/// Product of counts, or an error if it overflows u64 (corrupt shapes, not real networks).
fn product(xs: &[usize]) -> Result<u64, String> {
    xs.iter()
        .try_fold(1u64, |a, &x| a.checked_mul(x as u64))
        .ok_or_else(|| format!("the count {xs:?} overflows 64 bits"))
}

fn layer_stats(op: &Op, ins: &[Shape]) -> Result<LayerStats, String> {
    let s = layer_stats_unchecked(op, ins)?;
    let n = product(&[s.out.c, s.out.h, s.out.w])?;
    if n > MAX_ELEMENTS {
        return Err(format!(
            "output {} has {n} elements, more than the 2^40 allowed",
            s.out
        ));
    }
    Ok(s)
}

fn layer_stats_unchecked(op: &Op, ins: &[Shape]) -> Result<LayerStats, String> {
    let plain = |out: Shape| LayerStats {
        out,
        macs: 0,
        weights: 0,
        params: 0,
    };
    let x = ins.first().copied().unwrap_or(Shape::vector(0));
    Ok(match *op {
        Op::Input { shape } => {
            if shape.is_empty() {
                return Err(format!("input shape {shape} has no element"));
            }
            plain(shape)
        }
        Op::Dense { out_features, bias } => {
            if out_features == 0 {
                return Err("out_features must be positive".into());
            }
            let weights = product(&[x.c, out_features])?;
            LayerStats {
                out: Shape::new(out_features, x.h, x.w),
                macs: product(&[x.c, out_features, x.h, x.w])?,
                weights,
                params: weights
                    .checked_add(if bias { out_features as u64 } else { 0 })
                    .ok_or("the parameter count overflows")?,
            }
        }
        Op::Conv2d {
            out_channels,
            window,
            groups,
            bias,
        } => {
            if groups == 0 || x.c % groups != 0 || out_channels % groups != 0 || out_channels == 0 {
                return Err(format!(
                    "groups {groups} must divide both the input channels {} and the output \
                     channels {out_channels}",
                    x.c
                ));
            }
            if window.ceil {
                return Err("ceil mode is for pooling windows only".into());
            }
            let padded = product(&[
                x.c,
                x.h + window.pad[0] + window.pad[2],
                x.w + window.pad[1] + window.pad[3],
            ])?;
            if padded > MAX_ELEMENTS {
                return Err(format!(
                    "the padded input has {padded} elements, more than 2^40"
                ));
            }
            let (h, w) = window.output(x.h, x.w)?;
            let per_out = [
                x.c / groups,
                window.kernel[0],
                window.kernel[1],
                out_channels,
            ];
            let weights = product(&per_out)?;
            LayerStats {
                out: Shape::new(out_channels, h, w),
                macs: product(&[&per_out[..], &[h, w]].concat())?,
                weights,
                params: weights
                    .checked_add(if bias { out_channels as u64 } else { 0 })
                    .ok_or("the parameter count overflows")?,
            }
        }
        Op::MaxPool { window } | Op::AvgPool { window, .. } => {
            let (h, w) = window.output(x.h, x.w)?;
            plain(Shape::new(x.c, h, w))
        }
        Op::GlobalAvgPool => plain(Shape::vector(x.c)),
        Op::Relu | Op::Relu6 | Op::Softmax | Op::Sign => plain(x),
        Op::BatchNorm { counted, .. } => LayerStats {
            out: x,
            macs: 0,
            weights: 0,
            params: if counted { 2 * x.c as u64 } else { 0 },
        },
        Op::Add => {
            if ins[0] != ins[1] {
                return Err(format!("adds shapes {} and {} that differ", ins[0], ins[1]));
            }
            plain(x)
        }
        Op::Concat => {
            if ins.iter().any(|s| (s.h, s.w) != (x.h, x.w)) {
                let all: Vec<String> = ins.iter().map(Shape::to_string).collect();
                return Err(format!(
                    "concatenates shapes {} whose H×W differ",
                    all.join(", ")
                ));
            }
            let c = ins.iter().try_fold(0usize, |a, s| a.checked_add(s.c));
            plain(Shape::new(c.ok_or("too many channels")?, x.h, x.w))
        }
        Op::Flatten => plain(Shape::vector(product(&[x.c, x.h, x.w])? as usize)),
        Op::Downsample {
            stride,
            out_channels,
        } => {
            if stride == 0 || out_channels < x.c {
                return Err(format!(
                    "stride {stride} must be positive and out_channels {out_channels} at least the \
                     input's {}",
                    x.c
                ));
            }
            plain(Shape::new(
                out_channels,
                x.h.div_ceil(stride),
                x.w.div_ceil(stride),
            ))
        }
        Op::Shuffle { groups } => {
            if groups == 0 || !x.c.is_multiple_of(groups) {
                return Err(format!(
                    "{groups} shuffle groups must divide the {} channels",
                    x.c
                ));
            }
            plain(x)
        }
        Op::Lrn {
            size,
            alpha,
            beta,
            bias,
        } => {
            if size == 0 || ![alpha, beta, bias].iter().all(|v| v.is_finite()) {
                return Err(format!(
                    "LRN size {size}, alpha {alpha}, beta {beta}, bias {bias}: the size must \
                     be positive and the constants finite"
                ));
            }
            plain(x)
        }
        Op::Unary { f } => {
            f.validate()?;
            plain(x)
        }
        Op::Mul => {
            let b = ins[1];
            if b != x && b != Shape::vector(x.c) {
                return Err(format!(
                    "multiplies {x} by {b}: the second factor has the first's shape or {}",
                    Shape::vector(x.c)
                ));
            }
            plain(x)
        }
        Op::Channels { start, len } => {
            if len == 0 || start.checked_add(len).is_none_or(|end| end > x.c) {
                return Err(format!(
                    "channels {start}..{} of {} (at least one, within the input)",
                    start.saturating_add(len),
                    x.c
                ));
            }
            plain(Shape::new(len, x.h, x.w))
        }
        Op::AttnScores { heads } => {
            let (q, k) = (ins[0], ins[1]);
            if heads == 0 || q.c != k.c || q.c % heads != 0 || q.w != 1 || k.w != 1 {
                return Err(format!(
                    "Q {q} and K {k} must be features×seq with equal features divisible by \
                     {heads} heads"
                ));
            }
            LayerStats {
                out: Shape::new(product(&[heads, k.h])? as usize, q.h, 1),
                macs: product(&[q.h, k.h, q.c])?,
                weights: 0,
                params: 0,
            }
        }
        Op::LayerNorm { eps } => {
            if !(eps.is_finite() && eps >= 0.0) {
                return Err(format!("LayerNorm eps {eps} is not a finite eps ≥ 0"));
            }
            LayerStats {
                out: x,
                macs: 0,
                weights: 0,
                params: 2 * x.c as u64,
            }
        }
        Op::Embedding { vocab, dim } => {
            if vocab == 0 || dim == 0 || x.c != 1 || x.w != 1 {
                return Err(format!(
                    "a lookup of {vocab} tokens × {dim} features reads 1×seq token ids, not {x}"
                ));
            }
            if vocab > 1 << 16 {
                return Err(format!(
                    "a table of {vocab} tokens: token ids are 16-bit codes, at most 65,536 \
                     tokens"
                ));
            }
            let weights = product(&[vocab, dim])?;
            LayerStats {
                out: Shape::new(dim, x.h, 1),
                macs: 0,
                weights,
                params: weights,
            }
        }
        Op::Positional {
            positions,
            offset,
            token_types,
        } => {
            if x.w != 1 || offset.checked_add(x.h).is_none_or(|end| end > positions) {
                return Err(format!(
                    "positions {offset}..{} of a {positions}-row table for input {x} \
                     (features×seq, within the table)",
                    offset.saturating_add(x.h)
                ));
            }
            let rows = positions
                .checked_add(token_types)
                .ok_or("the table's rows overflow")?;
            let weights = product(&[rows, x.c])?;
            LayerStats {
                out: x,
                macs: 0,
                weights,
                params: weights,
            }
        }
        Op::KvCache { past } => {
            if x.w != 1 {
                return Err(format!("a cache appends to features×seq, not {x}"));
            }
            let len = past.checked_add(x.h).ok_or("the cache length overflows")?;
            plain(Shape::new(x.c, len, 1))
        }
        Op::AttnSoftmax { heads, causal } => {
            if heads == 0 || !x.c.is_multiple_of(heads) || x.w != 1 {
                return Err(format!(
                    "scores {x} must be (heads·keys)×queries with {heads} heads dividing the \
                     channels"
                ));
            }
            if causal && x.c / heads < x.h {
                return Err(format!(
                    "a causal mask needs at least as many keys ({}) as queries ({})",
                    x.c / heads,
                    x.h
                ));
            }
            plain(x)
        }
        Op::AttnContext { heads } => {
            let (s, v) = (ins[0], ins[1]);
            if heads == 0
                || Some(s.c) != heads.checked_mul(v.h)
                || !v.c.is_multiple_of(heads)
                || v.w != 1
                || s.w != 1
            {
                return Err(format!(
                    "scores {s} must be (heads·seq)×seq for V {v} with {heads} heads"
                ));
            }
            LayerStats {
                out: Shape::new(v.c, s.h, 1),
                macs: product(&[s.h, v.h, v.c])?,
                weights: 0,
                params: 0,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_output_sizes() {
        assert_eq!(Window::square(3, 1, 1).output(32, 32), Ok((32, 32)));
        assert_eq!(Window::square(3, 2, 1).output(224, 224), Ok((112, 112)));
        assert_eq!(Window::square(7, 2, 3).output(224, 224), Ok((112, 112)));
        // 3×3/s2 pooling of 55: floor gives 27, ceil gives 27 as well; of 56: 27 vs 28.
        let mut w = Window::square(3, 2, 0);
        assert_eq!(w.output(56, 56), Ok((27, 27)));
        w.ceil = true;
        assert_eq!(w.output(56, 56), Ok((28, 28)));
        assert!(Window::square(5, 1, 0).output(4, 4).is_err());
        // k 1, s 2, pads 1/1 on 4: ceil would give 4 windows, the last starting in the end
        // padding, which ONNX drops: 3.
        let mut w = Window::square(1, 2, 1);
        w.ceil = true;
        assert_eq!(w.output(4, 4), Ok((3, 3)));
    }

    #[test]
    fn bad_graphs_are_named() {
        let mut n = Network::new("t", Shape::new(3, 8, 8));
        n.then(
            "c",
            Op::Conv2d {
                out_channels: 4,
                window: Window::square(3, 1, 1),
                groups: 2,
                bias: false,
            },
        );
        let e = n.stats().unwrap_err().to_string();
        assert!(e.contains("'c'") && e.contains("groups 2"), "{e}");
        let mut n = Network::new("t", Shape::vector(4));
        n.then("a", Op::Relu);
        n.push("sum", Op::Add, &[0, 2]);
        let e = n.stats().unwrap_err().to_string();
        assert!(e.contains("not earlier"), "{e}");
        let mut n = Network::new("t", Shape::vector(4));
        n.then("input", Op::Relu);
        assert!(n.stats().unwrap_err().to_string().contains("twice"));
    }
}
