//! Compression of a float network into an integer one: BatchNorm folding, seeded synthetic
//! weights for models without trained ones, pruning, weight quantization or binarization,
//! and min/max calibration of every activation format (post-training quantization, Jacob et
//! al. 2018 §3; ranges from a calibration set as in TFLite/ONNX Runtime's MinMax).

use std::collections::BTreeMap;

use ndarray::Array3;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::WorkloadError;
use crate::exec;
use crate::golden::Quant;
use crate::model::Model;
use crate::net::{Bits, Network, Op, Shape};
use crate::prune::Prune;
use crate::quant::{ActQuant, QWeight, WeightFormat, WeightMode, WeightScheme, min_max};
use crate::weights::{Data, Tensor, Weights};

/// What to do to a network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CompressSpec {
    /// Weight code of every Dense/Conv2d layer.
    pub weights: WeightScheme,
    /// Bits of every activation that is not fixed otherwise (1..=16).
    pub act_bits: u32,
    /// Signed symmetric activations instead of unsigned affine ones.
    pub act_symmetric: bool,
    /// The input's format (None: calibrated like any activation).
    pub input: Option<ActQuant>,
    /// Pruning applied to every Dense/Conv2d weight before quantization.
    pub prune: Option<Prune>,
    /// How activation ranges are chosen from the calibration values.
    pub calibration: Calibration,
    /// Binarization of the weighted layers (None: every layer takes `weights`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binarize: Option<Binarize>,
}

/// A binary network (XNOR-Net, Rastegari et al. 2016; BNN, Courbariaux et al. 2016): the
/// weighted layers (Dense, Conv2d) between the first and the last get ±α weights and, with
/// `acts`, ±1 inputs, a Sign inserted before each (+1 where the input is positive). The
/// first and the last keep `ends`, as binary networks usually do; `ends = None` binarizes
/// them too. The other activations (pooling, residual sums, the ends' outputs) keep
/// `CompressSpec::act_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Binarize {
    /// ±α weights for the binarized layers.
    pub weights: bool,
    /// ±1 inputs for the binarized layers.
    pub acts: bool,
    /// Weight scheme of the first and last weighted layers (None: binarized as well).
    pub ends: Option<WeightScheme>,
}

impl CompressSpec {
    /// 8-bit symmetric weights per output channel and 8-bit affine activations calibrated
    /// by min/max, nothing pruned or binarized.
    pub const INT8: CompressSpec = CompressSpec {
        weights: WeightScheme {
            bits: 8,
            mode: WeightMode::Symmetric,
            per_channel: true,
        },
        act_bits: 8,
        act_symmetric: false,
        input: None,
        prune: None,
        calibration: Calibration::MinMax,
        binarize: None,
    };
}

/// The binary weight scheme: ±1 codes, α per output channel.
pub const BINARY_WEIGHTS: WeightScheme = WeightScheme {
    bits: 1,
    mode: WeightMode::Binary,
    per_channel: true,
};

/// The weighted layers (those with a weight tensor) that are not per-channel scales, in
/// order.
fn weighted(net: &Network) -> Vec<usize> {
    let scales = channel_scales(net);
    (0..net.layers.len())
        .filter(|&i| exec::weight_dims(&net.layers[i].op, 0).is_some() && !scales[i])
        .collect()
}

/// For each layer, whether it is a per-channel scale: a depthwise 1×1 convolution with one
/// weight per channel, as [`fold_batchnorm`] makes of a BatchNorm it cannot fold. A single
/// weight per channel is exact at any weight code, so binarization (which would also put a
/// Sign before it) and pruning (which would zero whole channels) leave such layers alone.
pub fn channel_scales(net: &Network) -> Vec<bool> {
    let stats = net.stats().ok();
    net.layers
        .iter()
        .map(|l| {
            if let (
                Op::Conv2d {
                    window,
                    groups,
                    out_channels,
                    ..
                },
                Some(st),
            ) = (&l.op, &stats)
            {
                *window == crate::net::Window::square(1, 1, 0)
                    && groups == out_channels
                    && st[l.inputs[0]].out.c == *groups
            } else {
                false
            }
        })
        .collect()
}

/// `net` with a Sign before every layer `b` binarizes whose input is not already ±1 (a
/// Sign), the weight scheme of each weighted layer by name (`weights` unless `b` binarizes
/// it or it is an end `b` keeps), and how many layers `b` binarizes.
pub fn binarized(
    net: &Network,
    b: &Binarize,
    weights: WeightScheme,
) -> (Network, Vec<(String, WeightScheme)>, usize) {
    let w = weighted(net);
    let (first, last) = (w.first().copied(), w.last().copied());
    let binarizes = |i: usize| b.ends.is_none() || (Some(i) != first && Some(i) != last);
    let mut out = Network {
        name: net.name.clone(),
        layers: Vec::with_capacity(net.layers.len() + w.len()),
    };
    let mut map = vec![0usize; net.layers.len()];
    let mut schemes = Vec::with_capacity(w.len());
    let inner = w.iter().filter(|&&i| binarizes(i)).count();
    for (i, layer) in net.layers.iter().enumerate() {
        let mut l = layer.clone();
        l.inputs.iter_mut().for_each(|j| *j = map[*j]);
        if w.contains(&i) {
            let scheme = match (binarizes(i), b.ends) {
                (true, _) if b.weights => BINARY_WEIGHTS,
                (true, _) => weights,
                (false, Some(ends)) => ends,
                (false, None) => weights,
            };
            schemes.push((l.name.clone(), scheme));
            let x = l.inputs[0];
            if binarizes(i) && b.acts && out.layers[x].op != Op::Sign {
                out.layers.push(crate::net::Layer {
                    name: format!("{}.sign", l.name),
                    op: Op::Sign,
                    inputs: vec![x],
                    bits: None,
                    tied: None,
                });
                l.inputs[0] = out.layers.len() - 1;
            }
        }
        map[i] = out.layers.len();
        out.layers.push(l);
    }
    (out, schemes, inner)
}

/// How an activation's range is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// The observed minimum and maximum.
    MinMax,
    /// The observed range scaled by the factor in 0.05..=1 (steps of 0.01) that minimizes the
    /// mean squared quantization error over the calibration values (clipping outliers buys
    /// resolution; e.g. Banner et al., NeurIPS 2019, "ACIQ"; Nagel et al. 2021 white paper
    /// §3.1, MSE range setting).
    Mse,
}

/// One calibration image's range of every layer's output (and its values, for MSE).
struct Calibrated {
    range: Vec<(f32, f32)>,
    values: Vec<Vec<f32>>,
}

impl Calibrated {
    /// Takes in layer `i`'s output `y`.
    fn see(&mut self, i: usize, y: &Array3<f32>, keep_values: bool) {
        // Any order will do for a range.
        self.range[i] = match y.as_slice_memory_order() {
            Some(v) => min_max(v, self.range[i]),
            None => y
                .iter()
                .fold(self.range[i], |r, &v| (r.0.min(v), r.1.max(v))),
        };
        if keep_values {
            self.values[i].extend(y.iter().copied());
        }
    }

    /// Folds this image's ranges into every layer's `range`, and appends its values to
    /// `values` (images taken in order, so the values are in image order).
    fn fold_into(self, range: &mut [(f32, f32)], values: &mut [Vec<f32>]) {
        for (r, (lo, hi)) in range.iter_mut().zip(self.range) {
            *r = (r.0.min(lo), r.1.max(hi));
        }
        for (v, mine) in values.iter_mut().zip(self.values) {
            if v.is_empty() {
                *v = mine;
            } else {
                v.extend(mine);
            }
        }
    }
}

/// Folds every BatchNorm into the Dense/Conv2d layer it follows (its only reader):
/// W'[c] = W[c]·γ[c]/√(σ²[c] + ε), b'[c] = (b[c] − μ[c])·γ[c]/√(σ²[c] + ε) + β[c]
/// (Jacob et al. 2018 §3.2; Krishnamoorthi 2018 eq. 15). The BatchNorm layers disappear.
/// One that follows anything else (a pre-activation network's BatchNorm after a sum or a
/// concatenation, an input normalization) becomes the per-channel scale it is: a depthwise
/// 1×1 convolution of the same name, weights γ/√(σ² + ε), bias β − μ·γ/√(σ² + ε).
pub fn fold_batchnorm(
    net: &Network,
    weights: &Weights,
) -> Result<(Network, Weights), WorkloadError> {
    fold_batchnorm_owned(net, weights.clone())
}

/// [`fold_batchnorm`] of weights the caller gives up (folded in place, not copied).
pub fn fold_batchnorm_owned(
    net: &Network,
    mut w: Weights,
) -> Result<(Network, Weights), WorkloadError> {
    let stats = net.stats()?;
    let mut keep: Vec<bool> = vec![true; net.layers.len()];
    let mut layers = net.layers.clone();
    for (i, layer) in net.layers.iter().enumerate() {
        let Op::BatchNorm { eps, .. } = layer.op else {
            continue;
        };
        let j = layer.inputs[0];
        let readers = net.layers.iter().filter(|l| l.inputs.contains(&j)).count();
        let prev = &net.layers[j];
        let c = stats[j].out.c;
        let p = |role| exec::param(&w, &layer.name, role, c).map(<[f32]>::to_vec);
        let (g, beta, mean, var) = (p("gamma")?, p("beta")?, p("mean")?, p("var")?);
        let k: Vec<f32> = (0..c).map(|ch| g[ch] / (var[ch] + eps).sqrt()).collect();
        if !matches!(prev.op, Op::Dense { .. } | Op::Conv2d { .. }) || readers != 1 {
            let b: Vec<f32> = (0..c).map(|ch| beta[ch] - mean[ch] * k[ch]).collect();
            w.insert(&layer.name, "weight", Tensor::new(vec![c, 1, 1, 1], k));
            w.insert(&layer.name, "bias", Tensor::new(vec![c], b));
            for role in ["gamma", "beta", "mean", "var"] {
                w.tensors.remove(&format!("{}.{role}", layer.name));
            }
            layers[i].op = Op::Conv2d {
                out_channels: c,
                window: crate::net::Window::square(1, 1, 0),
                groups: c,
                bias: true,
            };
            continue;
        }
        let d = exec::weight_dims(&prev.op, stats[prev_input(net, j)].out.c).expect("weighted");
        exec::param(&w, &prev.name, "weight", d.0 * d.1 * d.2 * d.3)?;
        let wt = w
            .tensors
            .get_mut(&format!("{}.weight", prev.name))
            .ok_or_else(|| {
                WorkloadError::Network(format!("layer '{}' has no 'weight' tensor", prev.name))
            })?;
        let Data::F32(v) = &mut wt.data else {
            return Err(WorkloadError::Network(format!(
                "layer '{}': placeholder weights cannot be folded",
                prev.name
            )));
        };
        let per = v.len() / c;
        for (ch, row) in v.chunks_mut(per).enumerate() {
            row.iter_mut().for_each(|x| *x *= k[ch]);
        }
        let has_bias = matches!(
            prev.op,
            Op::Dense { bias: true, .. } | Op::Conv2d { bias: true, .. }
        );
        let b0 = if has_bias {
            exec::param(&w, &prev.name, "bias", c)?.to_vec()
        } else {
            vec![0.0; c]
        };
        let b: Vec<f32> = (0..c)
            .map(|ch| (b0[ch] - mean[ch]) * k[ch] + beta[ch])
            .collect();
        w.insert(&prev.name, "bias", Tensor::new(vec![c], b));
        match &mut layers[j].op {
            Op::Dense { bias, .. } | Op::Conv2d { bias, .. } => *bias = true,
            Op::Input { .. }
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
            | Op::KvCache { .. } => unreachable!(),
        }
        for role in ["gamma", "beta", "mean", "var"] {
            w.tensors.remove(&format!("{}.{role}", layer.name));
        }
        keep[i] = false;
    }
    // Renumber: a removed layer's readers read what it read.
    let mut map = vec![0usize; layers.len()];
    let mut out = Vec::new();
    for (i, mut l) in layers.into_iter().enumerate() {
        if keep[i] {
            l.inputs.iter_mut().for_each(|j| *j = map[*j]);
            map[i] = out.len();
            out.push(l);
        } else {
            map[i] = map[l.inputs[0]];
        }
    }
    Ok((
        Network {
            name: net.name.clone(),
            layers: out,
        },
        w,
    ))
}

/// The layer a layer reads first.
fn prev_input(net: &Network, j: usize) -> usize {
    net.layers[j].inputs[0]
}

/// A uniform f32 in [0, 1) from 24 random bits.
pub(crate) fn unit(rng: &mut ChaCha8Rng) -> f32 {
    unit_of(rng.next_u32())
}

/// [`unit`] of the word `r`.
fn unit_of(r: u32) -> f32 {
    (r >> 8) as f32 / (1u32 << 24) as f32
}

/// Fills `out` with `lo + (hi − lo)·u`, u drawn by [`unit`] from `rng`'s next words in
/// order (read a block of words at a time: the same words, little-endian, as one
/// `next_u32` each).
fn uniform_into(rng: &mut ChaCha8Rng, out: &mut [f32], lo: f32, hi: f32) {
    const WORDS: usize = 256;
    let mut bytes = [0u8; 4 * WORDS];
    for piece in out.chunks_mut(WORDS) {
        let bytes = &mut bytes[..4 * piece.len()];
        rng.fill_bytes(bytes);
        for (v, b) in piece.iter_mut().zip(bytes.chunks_exact(4)) {
            let r = u32::from_le_bytes(b.try_into().expect("four bytes"));
            *v = lo + (hi - lo) * unit_of(r);
        }
    }
}

/// Seeded synthetic parameters: He-uniform weights U(±√(6/fan_in)) (He et al., ICCV 2015),
/// biases U(±0.1), BatchNorm and LayerNorm γ, σ² ∈ U(0.8, 1.2) and β, μ ∈ U(±0.1), token
/// tables U(±0.1), position tables U(±0.02) and a decoder's cached keys and values U(±0.5)
/// (drawn after every parameter). One ChaCha8 stream in
/// layer order, so the same seed gives the same weights on every machine.
pub fn synthetic_weights(net: &Network, seed: u64) -> Result<Weights, WorkloadError> {
    let stats = net.stats()?;
    // Every tensor in stream order: (layer, role, dims, range), each value one word; a
    // decode step's caches (state, not parameters) after every parameter, so that a step
    // and the prefill it follows draw the same parameters.
    let mut tensors: Vec<(&str, &str, Vec<usize>, f32, f32)> = Vec::new();
    let mut caches: Vec<(&str, &str, Vec<usize>, f32, f32)> = Vec::new();
    for layer in &net.layers {
        if let Some(d) = layer
            .inputs
            .first()
            .and_then(|&j| exec::weight_dims(&layer.op, stats[j].out.c))
        {
            let bound = (6.0 / (d.1 * d.2 * d.3) as f32).sqrt();
            let dims = match layer.op {
                Op::Dense { .. } => vec![d.0, d.1],
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
                | Op::KvCache { .. } => vec![d.0, d.1, d.2, d.3],
            };
            // A tied layer's table is its source's, copied below.
            if layer.tied.is_none() {
                tensors.push((&layer.name, "weight", dims, -bound, bound));
            }
            if matches!(
                layer.op,
                Op::Dense { bias: true, .. } | Op::Conv2d { bias: true, .. }
            ) {
                tensors.push((&layer.name, "bias", vec![d.0], -0.1, 0.1));
            }
        }
        match layer.op {
            Op::Embedding { vocab, dim } => {
                tensors.push((&layer.name, "weight", vec![vocab, dim], -0.1, 0.1));
            }
            Op::KvCache { past } if past > 0 => {
                let c = stats[layer.inputs[0]].out.c;
                caches.push((&layer.name, "cache", vec![past, c], -0.5, 0.5));
            }
            Op::Positional {
                positions,
                token_types,
                ..
            } => {
                let c = stats[layer.inputs[0]].out.c;
                tensors.push((&layer.name, "weight", vec![positions, c], -0.02, 0.02));
                if token_types > 0 {
                    tensors.push((&layer.name, "types", vec![token_types, c], -0.02, 0.02));
                }
            }
            _ => {}
        }
        if let Op::LayerNorm { .. } = layer.op {
            let c = stats[layer.inputs[0]].out.c;
            tensors.push((&layer.name, "gamma", vec![c], 0.8, 1.2));
            tensors.push((&layer.name, "beta", vec![c], -0.1, 0.1));
        }
        if let Op::BatchNorm { .. } = layer.op {
            let c = stats[layer.inputs[0]].out.c;
            for (role, lo, hi) in [
                ("gamma", 0.8, 1.2),
                ("beta", -0.1, 0.1),
                ("mean", -0.1, 0.1),
                ("var", 0.8, 1.2),
            ] {
                tensors.push((&layer.name, role, vec![c], lo, hi));
            }
        }
    }
    tensors.extend(caches);
    // Each tensor draws its values from where the one stream is when it starts, so the
    // tensors are filled in parallel with the values a sequential draw gives.
    let mut at = 0u128;
    let starts: Vec<u128> = tensors
        .iter()
        .map(|t| {
            let start = at;
            at += t.2.iter().product::<usize>() as u128;
            start
        })
        .collect();
    // A large tensor is filled in pieces (in parallel too), each from its own word.
    const PIECE: usize = 1 << 16;
    let stream = ChaCha8Rng::seed_from_u64(seed);
    let filled: Vec<Tensor> = tensors
        .par_iter()
        .zip(&starts)
        .map(|((_, _, dims, lo, hi), &start)| {
            let mut v = vec![0.0f32; dims.iter().product::<usize>()];
            v.par_chunks_mut(PIECE).enumerate().for_each(|(k, piece)| {
                let mut rng = stream.clone();
                rng.set_word_pos(start + (k * PIECE) as u128);
                uniform_into(&mut rng, piece, *lo, *hi);
            });
            Tensor::new(dims.clone(), v)
        })
        .collect();
    let mut w = Weights::default();
    for ((layer, role, ..), t) in tensors.iter().zip(filled) {
        w.insert(layer, role, t);
    }
    for layer in &net.layers {
        if let Some(src) = &layer.tied {
            let t = w.get(src, "weight").cloned().ok_or_else(|| {
                WorkloadError::Network(format!(
                    "layer '{}' is tied to '{src}', which has no weight table",
                    layer.name
                ))
            })?;
            w.insert(&layer.name, "weight", t);
        }
    }
    Ok(w)
}

/// `n` seeded synthetic inputs of `shape`, uniform in [0, 1) (image-like, non-negative).
pub fn synthetic_inputs(shape: Shape, n: usize, seed: u64) -> Vec<Array3<f32>> {
    synthetic_inputs_range(shape, 0..n, seed)
}

/// Images `range` of [`synthetic_inputs`] (the same values, without drawing the ones
/// before: image i starts at word i·c·h·w of the stream).
pub fn synthetic_inputs_range(
    shape: Shape,
    range: std::ops::Range<usize>,
    seed: u64,
) -> Vec<Array3<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_word_pos(range.start as u128 * shape.len() as u128);
    range
        .map(|_| Array3::from_shape_simple_fn((shape.c, shape.h, shape.w), || unit(&mut rng)))
        .collect()
}

/// `n` seeded synthetic inputs of `net`: [`synthetic_inputs`] of its input shape, or for a
/// token network ([`Network::token_vocab`]) ids ⌊u·vocab⌋ of the same uniform draws.
pub fn synthetic_inputs_of(net: &Network, n: usize, seed: u64) -> Vec<Array3<f32>> {
    let mut x = synthetic_inputs(net.input_shape(), n, seed);
    if let Some(vocab) = net.token_vocab() {
        for a in &mut x {
            a.mapv_inplace(|u| ((u * vocab as f32) as usize).min(vocab - 1) as f32);
        }
    }
    x
}

/// A zoo network compressed with seeded synthetic weights ([`synthetic_weights`], seed
/// `seed`), calibrated on `calib` seeded synthetic inputs (seed `seed + 1`): the stand-in for
/// a trained model when only the shape and the compression matter (cost studies).
pub fn synthetic_model(
    net: &Network,
    spec: &CompressSpec,
    seed: u64,
    calib: usize,
) -> Result<Model, WorkloadError> {
    let w = synthetic_weights(net, seed)?;
    let inputs = synthetic_inputs_of(net, calib.max(1), seed.wrapping_add(1));
    Ok(compress_owned(net, w, spec, &inputs, &Recorded::default())?.model)
}

/// Compresses a float network: folds BatchNorm, prunes, quantizes or binarizes every
/// Dense/Conv2d weight, and calibrates every activation format on `calib` (min/max over all
/// calibration inputs, run with the quantized weights). Returns the integer model and each
/// weighted layer's achieved weight sparsity.
///
/// Formats: a layer whose only reader is ReLU (ReLU6) is calibrated on the clipped range, so
/// its requantization clamp is the activation (ReLU fusion, Jacob et al. 2018 §2.4); one
/// whose only reader is Sign gives ±1 directly; the ops that select, move or clip codes
/// ([`Op::keeps_format`]: MaxPool, ReLU, ReLU6, Flatten, Downsample, Softmax and the channel
/// moves) keep their input's format.
pub fn compress(
    net: &Network,
    weights: &Weights,
    spec: &CompressSpec,
    calib: &[Array3<f32>],
) -> Result<(Model, Vec<(String, f64)>), WorkloadError> {
    let c = compress_with(net, weights, spec, calib, &Recorded::default())?;
    Ok((c.model, c.sparsity))
}

/// What a quantized model file records, which [`compress_with`] keeps.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// The weight scheme of some layers, by name: those layers take it instead of
    /// `spec.weights` or the binarization's.
    pub weights: Vec<(String, WeightScheme)>,
    /// The activation format of some layers' outputs, by name (an ONNX file's
    /// QuantizeLinear scales and zero points): those layers take it instead of a calibrated
    /// one. A format recorded on an op that keeps its input's format ([`Op::keeps_format`],
    /// e.g. the ReLU after a convolution) or on a BatchNorm that folds into its producer is
    /// its producer's, and overrides the producer's own (the clipped range, as ReLU fusion).
    pub acts: BTreeMap<String, ActQuant>,
    /// The weight format of some layers, by name (an ONNX file's integer weights): those
    /// layers keep the file's codes where their weights still are exactly those codes'
    /// values ([`QWeight::from_format`]; a folded BatchNorm changes them), instead of being
    /// requantized.
    pub codes: BTreeMap<String, WeightFormat>,
}

/// A compressed model, with what [`compress_with`] measured and kept.
#[derive(Debug, Clone)]
pub struct Compressed {
    /// The integer model.
    pub model: Model,
    /// Each weighted layer's achieved weight sparsity.
    pub sparsity: Vec<(String, f64)>,
    /// Names of the layers whose activation format is a recorded one (not calibrated).
    pub recorded_acts: Vec<String>,
    /// Names of the layers whose weight codes are the recorded ones (not requantized).
    pub recorded_codes: Vec<String>,
}

/// The recorded formats of `recorded` moved to the layers that produce those codes in the
/// BatchNorm-folded form of `net` (see [`Recorded::acts`]); a format that names no layer of
/// `net` is dropped.
fn format_owners(
    net: &Network,
    recorded: &BTreeMap<String, ActQuant>,
) -> BTreeMap<String, ActQuant> {
    // How many layers read each layer (once however many of their inputs it is).
    let mut readers = vec![0usize; net.layers.len()];
    for l in &net.layers {
        for (k, &j) in l.inputs.iter().enumerate() {
            if !l.inputs[..k].contains(&j) {
                readers[j] += 1;
            }
        }
    }
    // A BatchNorm folds into a Dense/Conv2d producer that it alone reads (fold_batchnorm).
    let folds = |i: usize| {
        let l = &net.layers[i];
        matches!(l.op, Op::BatchNorm { .. })
            && matches!(
                net.layers[l.inputs[0]].op,
                Op::Dense { .. } | Op::Conv2d { .. }
            )
            && readers[l.inputs[0]] == 1
    };
    // The layers a BatchNorm folds into.
    let mut folded_into = vec![false; net.layers.len()];
    for (k, l) in net.layers.iter().enumerate() {
        if folds(k) {
            folded_into[l.inputs[0]] = true;
        }
    }
    let mut owners = BTreeMap::new();
    // In layer order, so a reader's format overrides its producer's.
    for (i, layer) in net.layers.iter().enumerate() {
        let Some(&act) = recorded.get(&layer.name) else {
            continue;
        };
        // The output of a layer that a BatchNorm folds into is the BatchNorm's once folded:
        // the format recorded before the BatchNorm describes nothing that remains.
        if folded_into[i] {
            continue;
        }
        if let Some(owner) = owner_of(net, i, &readers, &folds) {
            owners.insert(net.layers[owner].name.clone(), act);
        }
    }
    owners
}

/// The layer whose format a format recorded on layer `i` is: `i`, or up through the ops
/// that keep their input's codes and the BatchNorms that fold, each the sole reader of its
/// producer. `None` when the walk meets a producer with other readers (the format would
/// clip what they read: the ReLU of a convolution that a residual Add also reads) or a
/// Softmax (it passes the logits' codes on, docs/model.md: a format of its probabilities is
/// not theirs).
fn owner_of(
    net: &Network,
    i: usize,
    readers: &[usize],
    folds: &dyn Fn(usize) -> bool,
) -> Option<usize> {
    let mut owner = i;
    loop {
        let op = &net.layers[owner].op;
        if *op == Op::Softmax {
            return None;
        }
        if !(op.keeps_format() || folds(owner)) {
            return Some(owner);
        }
        let producer = net.layers[owner].inputs[0];
        if readers[producer] != 1 {
            return None;
        }
        owner = producer;
    }
}

/// [`compress`] keeping what a quantized model file records (`recorded`: some layers' weight
/// schemes and activation formats).
pub fn compress_with(
    net: &Network,
    weights: &Weights,
    spec: &CompressSpec,
    calib: &[Array3<f32>],
    recorded: &Recorded,
) -> Result<Compressed, WorkloadError> {
    compress_owned(net, weights.clone(), spec, calib, recorded)
}

/// [`compress_with`] of float weights the caller gives up: they are folded, pruned and
/// quantized in place, not copied first.
pub fn compress_owned(
    net: &Network,
    weights: Weights,
    spec: &CompressSpec,
    calib: &[Array3<f32>],
    recorded: &Recorded,
) -> Result<Compressed, WorkloadError> {
    let layers = &recorded.weights;
    let formats = format_owners(net, &recorded.acts);
    let bad = |why: String| WorkloadError::Network(format!("compressing '{}': {why}", net.name));
    spec.weights.validate().map_err(bad)?;
    if let Some(ends) = spec.binarize.and_then(|b| b.ends) {
        ends.validate().map_err(bad)?;
    }
    if !(1..=16).contains(&spec.act_bits) {
        return Err(bad(format!(
            "activation bits {} are outside 1..=16",
            spec.act_bits
        )));
    }
    if spec.prune.is_some()
        && (spec.weights.mode == WeightMode::Binary || spec.binarize.is_some_and(|b| b.weights))
    {
        return Err(bad(
            "binary weights are ±1 and cannot hold pruned zeros".into()
        ));
    }
    if calib.is_empty() {
        return Err(bad("calibration needs at least one input".into()));
    }
    let (folded, mut weights) = fold_batchnorm_owned(net, weights)?;
    let (mut net, schemes) = match &spec.binarize {
        Some(b) => {
            let (n, schemes, inner) = binarized(&folded, b, spec.weights);
            if inner == 0 {
                return Err(bad(format!(
                    "binarizing: none of its {} weighted layer(s) lies between the first and \
                     the last, which keep their bits",
                    schemes.len()
                )));
            }
            (n, schemes)
        }
        None => (folded, Vec::new()),
    };
    for (name, scheme) in layers.iter() {
        scheme
            .validate()
            .map_err(|e| bad(format!("layer '{name}': {e}")))?;
    }
    let scheme_of = |name: &str| {
        layers
            .iter()
            .chain(&schemes)
            .find(|(n, _)| n == name)
            .map_or(spec.weights, |s| s.1)
    };
    let mut quant = Quant::default();
    let mut sparsity = Vec::new();
    let mut recorded_codes = Vec::new();
    let scales = channel_scales(&net);
    // Each weighted layer's tensor pruned, quantized and replaced by its codes' values, the
    // layers in parallel (each on its own tensor); the first error in layer order stands.
    let weighted: Vec<usize> = (0..net.layers.len())
        .filter(|&i| exec::weight_dims(&net.layers[i].op, 0).is_some())
        .collect();
    let key = |i: usize| format!("{}.weight", net.layers[i].name);
    let mut tensors: Vec<Option<Tensor>> = weighted
        .iter()
        .map(|&i| weights.tensors.remove(&key(i)))
        .collect();
    let done: Vec<Result<(QWeight, bool, f64), WorkloadError>> = weighted
        .par_iter()
        .zip(tensors.par_iter_mut())
        .map(|(&i, t)| {
            let layer = &net.layers[i];
            let t = t.as_mut().ok_or_else(|| {
                WorkloadError::Network(format!("layer '{}' has no 'weight' tensor", layer.name))
            })?;
            if !t.is_dense() {
                return Err(bad(format!(
                    "layer '{}' has placeholder weights (structure-only model); compress the \
                     zoo model with synthetic weights instead",
                    layer.name
                )));
            }
            if let Some(p) = spec.prune.filter(|_| !scales[i]) {
                p.apply(t)
                    .map_err(|e| bad(format!("layer '{}': {e}", layer.name)))?;
            }
            let file = recorded
                .codes
                .get(&layer.name)
                .and_then(|f| QWeight::from_format(t, f));
            let from_file = file.is_some();
            let q = match file {
                Some(q) => q,
                None => QWeight::quantize(t, scheme_of(&layer.name))
                    .map_err(|e| bad(format!("layer '{}': {e}", layer.name)))?,
            };
            // In place when the tensor is stored (its dims are the codes').
            match &mut t.data {
                Data::F32(v) if t.dims == q.dims => q.dequantize_into(v),
                _ => *t = q.dequantize(),
            }
            let sparse = q.sparsity();
            Ok((q, from_file, sparse))
        })
        .collect();
    for ((&i, t), d) in weighted.iter().zip(tensors).zip(done) {
        let (q, from_file, sparse) = d?;
        let name = &net.layers[i].name;
        weights
            .tensors
            .insert(key(i), t.expect("a layer without its tensor failed above"));
        if from_file {
            recorded_codes.push(name.clone());
        }
        sparsity.push((name.clone(), sparse));
        quant.weights.insert(name.clone(), q);
    }
    // Ranges of every layer's output over the calibration set (and the values, for MSE).
    let mut range = vec![(f32::INFINITY, f32::NEG_INFINITY); net.layers.len()];
    let keep_values = spec.calibration == Calibration::Mse;
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); net.layers.len()];
    // As many images forward at once as there are threads (each forward is parallel within
    // its convolutions too, but its small layers keep a thread idle). Each pass takes in
    // every layer's output as it is made and drops it once read; the images' ranges and
    // values are then folded in image order, so they are those of one image at a time.
    let at_once = rayon::current_num_threads().max(1);
    let layers = net.layers.len();
    for batch in calib.chunks(at_once) {
        // Each image's ranges (and values) as its pass makes each output, which is then
        // dropped once read.
        let seen: Vec<Result<Calibrated, WorkloadError>> = batch
            .par_iter()
            .map(|x| {
                let mut c = Calibrated {
                    range: vec![(f32::INFINITY, f32::NEG_INFINITY); layers],
                    values: vec![Vec::new(); if keep_values { layers } else { 0 }],
                };
                exec::forward_each(&net, &weights, x, |i, y| c.see(i, y, keep_values))?;
                Ok(c)
            })
            .collect();
        for c in seen {
            c?.fold_into(&mut range, &mut values);
        }
    }
    let mut acts: Vec<ActQuant> = Vec::with_capacity(net.layers.len());
    let mut recorded_acts = Vec::new();
    for (i, layer) in net.layers.iter().enumerate() {
        let readers: Vec<&Op> = net
            .layers
            .iter()
            .filter(|l| l.inputs.contains(&i))
            .map(|l| &l.op)
            .collect();
        let sole = if readers.len() == 1 {
            Some(readers[0])
        } else {
            None
        };
        let (mut lo, mut hi) = range[i];
        let act = match layer.op {
            Op::Input { .. } if net.token_vocab().is_some() => ActQuant::TOKENS,
            Op::Input { .. } => spec
                .input
                .unwrap_or_else(|| ActQuant::from_range(lo, hi, spec.act_bits, spec.act_symmetric)),
            _ if layer.op.keeps_format() => acts[layer.inputs[0]],
            Op::Sign => ActQuant::BINARY,
            // Probabilities in [0, 1): I-BERT's fixed output scale 2^−bits.
            Op::AttnSoftmax { .. } => ActQuant::probabilities(spec.act_bits),
            Op::Dense { .. } | Op::Conv2d { .. } if sole == Some(&Op::Sign) => ActQuant::BINARY,
            // Every other op computes new values: calibrated.
            _ => {
                if let Some((low, high)) = sole.and_then(Op::clips_to) {
                    (lo, hi) = (lo.max(low), hi.min(high));
                }
                // As from_range does: the range holds 0 (also when clipping inverted it).
                let (lo, hi) = (lo.min(0.0), hi.max(0.0));
                let fit = |f: f32| {
                    ActQuant::from_range(lo * f, hi * f, spec.act_bits, spec.act_symmetric)
                };
                match spec.calibration {
                    Calibration::MinMax => fit(1.0),
                    Calibration::Mse => {
                        (5..=100)
                            .rev()
                            .map(|k| fit(k as f32 / 100.0))
                            .map(|a| {
                                let clip = |v: f32| v.clamp(lo, hi);
                                let err: f64 = values[i]
                                    .iter()
                                    .map(|&v| {
                                        f64::from(a.dequantize(a.quantize(clip(v))) - clip(v))
                                            .powi(2)
                                    })
                                    .sum();
                                (err, a)
                            })
                            .fold(None, |best: Option<(f64, ActQuant)>, c| match best {
                                Some(b) if b.0 <= c.0 => Some(b),
                                _ => Some(c),
                            })
                            .expect("96 candidates")
                            .1
                    }
                }
            }
        };
        // The file's format where it records one (never on a layer whose format is its
        // input's, see format_owners, nor on a ±1 binary one).
        let act = match formats.get(&layer.name) {
            Some(&file)
                if !layer.op.keeps_format()
                    && !act.binary
                    && !matches!(layer.op, Op::AttnSoftmax { .. }) =>
            {
                recorded_acts.push(layer.name.clone());
                file
            }
            _ => act,
        };
        act.validate()
            .map_err(|e| bad(format!("layer '{}': {e}", layer.name)))?;
        acts.push(act);
        quant.acts.insert(layer.name.clone(), act);
    }
    for layer in net.layers.iter_mut() {
        if let Some(q) = quant.weights.get(&layer.name) {
            let a = acts[layer.inputs[0]];
            layer.bits = Some(Bits {
                w: q.scheme.bits,
                a: a.bits,
            });
        }
    }
    Ok(Compressed {
        model: Model {
            net,
            weights,
            quant: Some(quant),
            metrics: Default::default(),
        },
        sparsity,
        recorded_acts,
        recorded_codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Filling a block of words at a time draws the values one `next_u32` each gives,
    /// from any word position and for lengths around the block size.
    #[test]
    fn uniform_fill_is_the_sequential_draw() {
        for (start, n) in [(0u128, 1usize), (3, 255), (17, 256), (1000, 257), (5, 1300)] {
            let mut a = ChaCha8Rng::seed_from_u64(9);
            a.set_word_pos(start);
            let (lo, hi) = (-0.3f32, 0.4f32);
            let want: Vec<f32> = (0..n).map(|_| lo + (hi - lo) * unit(&mut a)).collect();
            let mut b = ChaCha8Rng::seed_from_u64(9);
            b.set_word_pos(start);
            let mut got = vec![0.0; n];
            uniform_into(&mut b, &mut got, lo, hi);
            assert_eq!(got, want, "start {start}, {n} values");
            // The stream goes on where the sequential draw would.
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }

    /// A calibration pass that drops each output after its last reader sees the outputs
    /// the full forward pass keeps, each once and in layer order (residual adds read
    /// outputs several layers back).
    #[test]
    fn forward_each_sees_the_kept_outputs() {
        for name in ["resnet8", "mobilenetv2"] {
            let net = crate::zoo::model(name).unwrap();
            let (net, w) = fold_batchnorm(&net, &synthetic_weights(&net, 2).unwrap()).unwrap();
            let x = &synthetic_inputs_of(&net, 1, 4)[0];
            let all = exec::forward(&net, &w, x).unwrap();
            let mut seen = Vec::new();
            exec::forward_each(&net, &w, x, |i, y| seen.push((i, y.clone()))).unwrap();
            assert_eq!(seen.len(), all.len(), "{name}");
            for (k, ((i, y), want)) in seen.iter().zip(&all).enumerate() {
                assert_eq!((*i, y), (k, want), "{name}");
            }
        }
    }

    /// Binarizing LeNet-5 (5 weighted layers): the three inner ones get ±α weights and a
    /// Sign before them, the first and last keep 8 bits and their inputs; with no ends kept,
    /// all five; compressed, the inner layers are w1a1.
    #[test]
    fn binarizing_keeps_the_ends_and_signs_the_inner_inputs() {
        let net = crate::zoo::model("lenet5").unwrap();
        let w8 = WeightScheme {
            bits: 8,
            mode: WeightMode::Symmetric,
            per_channel: true,
        };
        let b = Binarize {
            weights: true,
            acts: true,
            ends: Some(w8),
        };
        let (bin, schemes, inner) = binarized(&net, &b, BINARY_WEIGHTS);
        assert_eq!((schemes.len(), inner), (5, 3));
        let modes: Vec<WeightMode> = schemes.iter().map(|s| s.1.mode).collect();
        use WeightMode::{Binary, Symmetric};
        assert_eq!(modes, [Symmetric, Binary, Binary, Binary, Symmetric]);
        assert_eq!(bin.layers.len(), net.layers.len() + 3);
        for (name, s) in &schemes {
            let i = bin.find(name).unwrap();
            let reads_sign = bin.layers[bin.layers[i].inputs[0]].op == Op::Sign;
            assert_eq!(reads_sign, s.mode == Binary, "{name}");
        }
        bin.stats().unwrap();
        let (_, _, all) = binarized(&net, &Binarize { ends: None, ..b }, BINARY_WEIGHTS);
        assert_eq!(all, 5);
        let spec = CompressSpec {
            weights: BINARY_WEIGHTS,
            act_bits: 8,
            act_symmetric: false,
            input: None,
            prune: None,
            calibration: Calibration::MinMax,
            binarize: Some(b),
        };
        let m = synthetic_model(&net, &spec, 1, 1).unwrap();
        let bits: Vec<(u32, u32)> = m
            .net
            .layers
            .iter()
            .filter_map(|l| l.bits.map(|b| (b.w, b.a)))
            .collect();
        assert_eq!(bits[1..4], [(1, 1); 3]);
        assert_eq!(bits[0].0, 8);
        assert_eq!(bits[4].0, 8);
    }

    /// A BatchNorm that follows no Dense or Conv2d becomes a depthwise 1×1 convolution of the
    /// same name that computes the same values; binarization leaves it alone (no Sign before
    /// it, not counted as the first layer) and pruning does not zero its channels.
    /// A decode step draws the same parameters as the prefill it follows: its caches come
    /// after every parameter in the stream.
    #[test]
    fn a_decode_step_shares_the_prefills_parameters() {
        let net = |past: usize| {
            let mut n = Network::new("t", Shape::new(1, 3, 1));
            n.then("emb", Op::Embedding { vocab: 10, dim: 4 });
            let k = n.then("k", crate::zoo::dense(4));
            let c = if past > 0 {
                n.then("k_cache", Op::KvCache { past })
            } else {
                k
            };
            n.push("out", crate::zoo::dense(2), &[c]);
            n
        };
        let (prefill, step) = (
            synthetic_weights(&net(0), 3).unwrap(),
            synthetic_weights(&net(5), 3).unwrap(),
        );
        for (layer, role) in [
            ("emb", "weight"),
            ("k", "weight"),
            ("k", "bias"),
            ("out", "weight"),
        ] {
            assert_eq!(
                prefill.get(layer, role),
                step.get(layer, role),
                "{layer}.{role}"
            );
        }
        assert_eq!(step.get("k_cache", "cache").unwrap().len(), 5 * 4);
    }

    #[test]
    fn an_unfoldable_batchnorm_becomes_a_channel_scale() {
        let mut net = Network::new("pre", Shape::new(3, 4, 4));
        net.then("relu", Op::Relu);
        net.then(
            "bn",
            Op::BatchNorm {
                eps: 1e-3,
                counted: true,
            },
        );
        net.then("conv", crate::zoo::conv(4, 3, 1, 1, 1, false));
        net.then("gap", Op::GlobalAvgPool);
        net.then("fc", crate::zoo::dense(2));
        let w = synthetic_weights(&net, 5).unwrap();
        let x = synthetic_inputs(net.input_shape(), 1, 9).remove(0);
        let before = exec::forward(&net, &w, &x).unwrap();
        let (folded, fw) = fold_batchnorm(&net, &w).unwrap();
        assert_eq!(folded.layers.len(), net.layers.len());
        assert!(matches!(folded.layers[2].op, Op::Conv2d { groups: 3, .. }));
        assert_eq!(
            channel_scales(&folded),
            [false, false, true, false, false, false]
        );
        let after = exec::forward(&folded, &fw, &x).unwrap();
        for (a, b) in before.last().unwrap().iter().zip(after.last().unwrap()) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
        let b = Binarize {
            weights: true,
            acts: true,
            ends: None,
        };
        let (bin, schemes, _) = binarized(&folded, &b, BINARY_WEIGHTS);
        assert_eq!(schemes.len(), 2, "{schemes:?}");
        assert_eq!(bin.layers[bin.find("bn").unwrap()].inputs, [1]);
        let spec = CompressSpec {
            weights: WeightScheme {
                bits: 4,
                mode: WeightMode::Symmetric,
                per_channel: true,
            },
            act_bits: 8,
            act_symmetric: false,
            input: None,
            prune: Some(Prune::Unstructured { sparsity: 0.9 }),
            calibration: Calibration::MinMax,
            binarize: None,
        };
        let (m, sparsity) = compress(&net, &w, &spec, &[x]).unwrap();
        let q = &m.quant.unwrap().weights["bn"];
        assert!(q.values.iter().all(|&v| v != 0), "{:?}", q.values);
        assert_eq!(sparsity.iter().find(|s| s.0 == "bn").unwrap().1, 0.0);
    }

    /// A recorded format never reaches a layer that something else also reads, nor the
    /// logits through a Softmax: a ReLU's is dropped when its convolution also feeds a
    /// residual Add (the Add would read clipped values), and a Flatten's after a Softmax is
    /// dropped (it is the probabilities'); the convolution keeps its own.
    #[test]
    fn recorded_formats_stop_at_shared_producers_and_softmax() {
        let mut net = Network::new("shared", Shape::new(2, 4, 4));
        let c1 = net.then("c1", crate::zoo::conv(2, 3, 1, 1, 1, true));
        let r1 = net.then("r1", Op::Relu);
        net.push("add", Op::Add, &[r1, c1]);
        net.then("gap", Op::GlobalAvgPool);
        net.then("sm", Op::Softmax);
        net.then("fl", Op::Flatten);
        let fmt = |scale: f32| ActQuant {
            bits: 8,
            signed: false,
            binary: false,
            scale,
            zero: 0,
        };
        let recorded: BTreeMap<String, ActQuant> = [("c1", 0.5), ("r1", 0.25), ("fl", 1.0 / 255.0)]
            .into_iter()
            .map(|(n, s)| (n.to_owned(), fmt(s)))
            .collect();
        let owners = format_owners(&net, &recorded);
        let got: Vec<(&str, f32)> = owners.iter().map(|(n, a)| (n.as_str(), a.scale)).collect();
        assert_eq!(got, [("c1", 0.5)]);
    }

    /// Recorded activation formats land on the layers that produce those codes: a ReLU's
    /// and a MaxPool's move to the convolution before them (the reader's overriding the
    /// convolution's own), a BatchNorm's to the convolution it folds into (whose own
    /// pre-BatchNorm format is dropped), a Softmax's nowhere; a name that is no layer is
    /// ignored. compress_with uses them and names the layers that kept one.
    #[test]
    fn recorded_formats_land_on_the_layers_that_produce_the_codes() {
        let mut net = Network::new("rec", Shape::new(3, 6, 6));
        net.then("c1", crate::zoo::conv(4, 3, 1, 1, 1, true));
        net.then("r1", Op::Relu);
        net.then(
            "p1",
            Op::MaxPool {
                window: crate::net::Window::square(2, 2, 0),
            },
        );
        net.then("c2", crate::zoo::conv(4, 1, 1, 0, 1, false));
        net.then(
            "bn",
            Op::BatchNorm {
                eps: 1e-5,
                counted: true,
            },
        );
        net.then("gap", Op::GlobalAvgPool);
        net.then("fc", crate::zoo::dense(3));
        net.then("sm", Op::Softmax);
        let fmt = |scale: f32, zero: i32| ActQuant {
            bits: 8,
            signed: false,
            binary: false,
            scale,
            zero,
        };
        let recorded: BTreeMap<String, ActQuant> = [
            ("input", fmt(1.0 / 255.0, 0)),
            ("c1", fmt(0.5, 100)),
            ("r1", fmt(0.25, 0)),
            ("p1", fmt(0.125, 0)),
            ("c2", fmt(0.75, 30)),
            ("bn", fmt(0.0625, 20)),
            ("sm", fmt(1.0 / 256.0, 0)),
            ("nowhere", fmt(1.0, 0)),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_owned(), a))
        .collect();
        let owners = format_owners(&net, &recorded);
        let got: Vec<(&str, f32)> = owners.iter().map(|(n, a)| (n.as_str(), a.scale)).collect();
        assert_eq!(got, [("c1", 0.125), ("c2", 0.0625), ("input", 1.0 / 255.0)]);
        let w = synthetic_weights(&net, 3).unwrap();
        let x = synthetic_inputs(net.input_shape(), 2, 4);
        let spec = CompressSpec::INT8;
        let keep = Recorded {
            acts: recorded,
            ..Recorded::default()
        };
        let c = compress_with(&net, &w, &spec, &x, &keep).unwrap();
        assert_eq!(c.recorded_acts, ["input", "c1", "c2"]);
        let acts = &c.model.quant.as_ref().unwrap().acts;
        assert_eq!(acts["r1"], owners["c1"]);
        assert_eq!(acts["p1"], owners["c1"]);
        assert_eq!(acts["c2"], owners["c2"]);
        // The rest are calibrated, as without a file.
        let plain = compress(&net, &w, &spec, &x).unwrap().0;
        let plain = &plain.quant.as_ref().unwrap().acts;
        for name in ["gap", "fc", "sm"] {
            assert_eq!(acts[name], plain[name], "{name}");
        }
    }

    /// A range of synthetic inputs equals the same images drawn from the start.
    #[test]
    fn input_ranges_equal_the_whole_draw() {
        let shape = crate::net::Shape { c: 3, h: 5, w: 7 };
        let all = super::synthetic_inputs(shape, 9, 4);
        assert_eq!(super::synthetic_inputs_range(shape, 4..9, 4), all[4..]);
        assert!(super::synthetic_inputs_range(shape, 3..3, 4).is_empty());
    }
}
