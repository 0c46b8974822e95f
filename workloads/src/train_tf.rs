//! Deterministic training of `digits-transformer`: a one-layer pre-norm encoder over the 8
//! rows of an 8×8 digit (8 tokens of 8 pixels), trained by back-propagation through the
//! network graph itself, so the float model trained is exactly the `Network` that is
//! shipped, compressed and executed (`exec::forward`).
//!
//! The back-propagation covers the ops a small encoder uses (Dense, Positional, LayerNorm,
//! AttnScores, AttnSoftmax, AttnContext, Add, GELU, GlobalAvgPool); a network with another
//! op is refused. Loss: softmax cross-entropy; optimizer: Adam (Kingma & Ba, ICLR 2015)
//! with a linearly decaying step. Determinism as `train`'s: one thread, explicit loops in a
//! fixed order (no BLAS, whose kernels pick FMA by CPU), no fused multiply-add, and
//! [`exp_det`] in place of the platform's exp.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::compress::{CompressSpec, compress, unit};
use crate::digits::{Digits, ROW, SPLIT_SEED, float_inputs, token_rows};
use crate::error::WorkloadError;
use crate::ibert::exp_det;
use crate::model::Model;
use crate::net::{Network, Op, Shape, UnaryFn};
use crate::train::{DIGITS_INPUT, correct, record};
use crate::weights::{Tensor, Weights};
use crate::zoo::dense;

/// Sizes of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderShape {
    /// Features per token.
    pub dim: usize,
    /// Attention heads (dividing `dim`).
    pub heads: usize,
    /// Hidden units of the feed-forward block.
    pub ffn: usize,
    /// Encoder layers.
    pub layers: usize,
}

/// The shipped model's sizes (`workloads/models/README.md`).
pub const DIGITS_ENCODER: EncoderShape = EncoderShape {
    dim: 32,
    heads: 2,
    ffn: 64,
    layers: 1,
};

/// LayerNorm ε of the encoder.
const EPS: f32 = 1e-5;

/// The encoder as a network on 8 features × 8 tokens: a per-token Dense embedding and
/// learned positions, `layers` pre-norm blocks (LayerNorm, multi-head self-attention,
/// residual add, LayerNorm, Dense-GELU-Dense, residual add), a final LayerNorm, the mean
/// over tokens and a 10-way classifier.
pub fn encoder_network(name: &str, s: EncoderShape) -> Network {
    let d = s.dim;
    let mut n = Network::new(name, Shape::new(ROW, ROW, 1));
    n.then("embed", dense(d));
    let mut x = n.then(
        "pos",
        Op::Positional {
            positions: ROW,
            offset: 0,
            token_types: 0,
        },
    );
    for l in 0..s.layers {
        let p = format!("l{l}");
        let h = n.push(format!("{p}.ln1"), Op::LayerNorm { eps: EPS }, &[x]);
        let q = n.push(format!("{p}.q"), dense(d), &[h]);
        let k = n.push(format!("{p}.k"), dense(d), &[h]);
        let v = n.push(format!("{p}.v"), dense(d), &[h]);
        let heads = s.heads;
        n.push(format!("{p}.scores"), Op::AttnScores { heads }, &[q, k]);
        let causal = false;
        n.then(format!("{p}.softmax"), Op::AttnSoftmax { heads, causal });
        let sm = n.layers.len() - 1;
        n.push(format!("{p}.context"), Op::AttnContext { heads }, &[sm, v]);
        let a = n.then(format!("{p}.out"), dense(d));
        let r = n.push(format!("{p}.add1"), Op::Add, &[a, x]);
        n.push(format!("{p}.ln2"), Op::LayerNorm { eps: EPS }, &[r]);
        n.then(format!("{p}.up"), dense(s.ffn));
        n.then(format!("{p}.gelu"), Op::Unary { f: UnaryFn::Gelu });
        let f = n.then(format!("{p}.down"), dense(d));
        x = n.push(format!("{p}.add2"), Op::Add, &[f, r]);
    }
    n.push("ln_f", Op::LayerNorm { eps: EPS }, &[x]);
    n.then("pool", Op::GlobalAvgPool);
    n.then("classifier", dense(10));
    n
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct EncoderTraining {
    /// Passes over the training set.
    pub epochs: usize,
    /// Adam's initial step; it decays linearly to zero over the epochs.
    pub lr: f32,
    /// Mini-batch size.
    pub batch: usize,
    /// Seed of the initial weights and of the per-epoch shuffles.
    pub seed: u64,
}

impl Default for EncoderTraining {
    /// The shipped model's settings (`workloads/models/README.md`).
    fn default() -> Self {
        EncoderTraining {
            epochs: 40,
            lr: 5e-3,
            batch: 32,
            seed: 0x5EED_7F00,
        }
    }
}

/// A value of features × tokens, v[c·s + t].
#[derive(Debug, Clone, PartialEq)]
struct Act {
    c: usize,
    s: usize,
    v: Vec<f32>,
}

impl Act {
    fn zeros(c: usize, s: usize) -> Act {
        Act {
            c,
            s,
            v: vec![0.0; c * s],
        }
    }

    fn at(&self, c: usize, t: usize) -> f32 {
        self.v[c * self.s + t]
    }

    fn add(&mut self, other: &Act) {
        self.v.iter_mut().zip(&other.v).for_each(|(a, b)| *a += b);
    }
}

/// One trainable tensor: its layer, role, dimensions and offset in the flat parameters.
#[derive(Debug, Clone)]
struct Slot {
    layer: String,
    role: &'static str,
    dims: Vec<usize>,
    at: usize,
}

/// A network's parameters, flat, with where each tensor lives.
#[derive(Debug, Clone)]
struct Params {
    slots: Vec<Slot>,
    v: Vec<f32>,
}

impl Params {
    /// The tensors of `net`, initialized: Dense weights uniform in ±√(6/fan_in) (He), biases
    /// and β zero, γ one, positions uniform in ±0.02.
    fn new(net: &Network, rng: &mut ChaCha8Rng) -> Result<Params, WorkloadError> {
        let stats = net.stats()?;
        let mut p = Params {
            slots: Vec::new(),
            v: Vec::new(),
        };
        for (layer, st) in net.layers.iter().zip(&stats) {
            let c_in = layer.inputs.first().map_or(0, |&i| stats[i].out.c);
            let c = st.out.c;
            match layer.op {
                Op::Dense { bias, .. } => {
                    let b = (6.0 / c_in as f32).sqrt();
                    p.push(layer, "weight", vec![c, c_in], |_| unit(rng) * 2.0 * b - b);
                    if bias {
                        p.push(layer, "bias", vec![c], |_| 0.0);
                    }
                }
                Op::Positional {
                    positions,
                    offset: 0,
                    token_types: 0,
                } => p.push(layer, "weight", vec![positions, c], |_| {
                    unit(rng) * 0.04 - 0.02
                }),
                Op::LayerNorm { .. } => {
                    p.push(layer, "gamma", vec![c], |_| 1.0);
                    p.push(layer, "beta", vec![c], |_| 0.0);
                }
                Op::Input { .. }
                | Op::AttnScores { .. }
                | Op::AttnSoftmax { causal: false, .. }
                | Op::AttnContext { .. }
                | Op::Add
                | Op::Unary { f: UnaryFn::Gelu }
                | Op::GlobalAvgPool => {}
                ref op => {
                    return Err(WorkloadError::Network(format!(
                        "training '{}': layer '{}' ({}) has no back-propagation here",
                        net.name,
                        layer.name,
                        op.name()
                    )));
                }
            }
        }
        Ok(p)
    }

    fn push(
        &mut self,
        layer: &crate::net::Layer,
        role: &'static str,
        dims: Vec<usize>,
        mut init: impl FnMut(usize) -> f32,
    ) {
        let n: usize = dims.iter().product();
        self.slots.push(Slot {
            layer: layer.name.clone(),
            role,
            dims,
            at: self.v.len(),
        });
        self.v.extend((0..n).map(&mut init));
    }

    /// Where tensor `role` of `layer` starts, and its length.
    fn find(&self, layer: &str, role: &str) -> (usize, usize) {
        let s = self
            .slots
            .iter()
            .find(|s| s.layer == layer && s.role == role)
            .expect("every trained layer's tensors are slotted");
        (s.at, s.dims.iter().product())
    }

    fn get(&self, layer: &str, role: &str) -> &[f32] {
        let (at, n) = self.find(layer, role);
        &self.v[at..at + n]
    }

    fn weights(&self) -> Weights {
        let mut w = Weights::default();
        for s in &self.slots {
            let n: usize = s.dims.iter().product();
            let t = Tensor::new(s.dims.clone(), self.v[s.at..s.at + n].to_vec());
            w.insert(&s.layer, s.role, t);
        }
        w
    }
}

/// What a forward pass keeps for the backward one: every layer's output, and each
/// LayerNorm's normalized values and reciprocal deviations.
struct Tape {
    outs: Vec<Act>,
    norm: Vec<Option<(Act, Vec<f32>)>>,
}

/// The derivative of GELU(x) = x·Φ(x) ([`crate::ibert::gelu`], the network's own float
/// GELU): Φ(x) + x·φ(x), Φ by `ibert::erf` (whose large-|x| branch uses [`exp_det`]).
fn gelu_grad(x: f32) -> f32 {
    let x = f64::from(x);
    let cdf = (1.0 + crate::ibert::erf(x / std::f64::consts::SQRT_2)) / 2.0;
    let pdf = exp_det(-x * x / 2.0) / (2.0 * std::f64::consts::PI).sqrt();
    (cdf + x * pdf) as f32
}

/// The forward pass of `net` on `input` (c×s).
fn forward(net: &Network, p: &Params, input: &Act) -> Tape {
    let mut tape = Tape {
        outs: Vec::with_capacity(net.layers.len()),
        norm: Vec::with_capacity(net.layers.len()),
    };
    for layer in &net.layers {
        let x = |k: usize| &tape.outs[layer.inputs[k]];
        let mut norm = None;
        let y = match layer.op {
            Op::Input { .. } => input.clone(),
            Op::Dense {
                out_features: o,
                bias,
            } => {
                let (x, w) = (x(0), p.get(&layer.name, "weight"));
                let b = bias.then(|| p.get(&layer.name, "bias"));
                let mut y = Act::zeros(o, x.s);
                for oc in 0..o {
                    for t in 0..x.s {
                        let b0 = b.map_or(0.0, |b| b[oc]);
                        y.v[oc * x.s + t] =
                            (0..x.c).fold(b0, |a, i| a + w[oc * x.c + i] * x.at(i, t));
                    }
                }
                y
            }
            Op::Positional { .. } => {
                let (mut y, pos) = (x(0).clone(), p.get(&layer.name, "weight"));
                for c in 0..y.c {
                    for t in 0..y.s {
                        y.v[c * y.s + t] += pos[t * y.c + c];
                    }
                }
                y
            }
            Op::LayerNorm { eps } => {
                let x = x(0);
                let (g, b) = (p.get(&layer.name, "gamma"), p.get(&layer.name, "beta"));
                let (mut y, mut xhat) = (Act::zeros(x.c, x.s), Act::zeros(x.c, x.s));
                let mut rstd = vec![0f32; x.s];
                for (t, rs) in rstd.iter_mut().enumerate() {
                    let mean = (0..x.c).map(|c| f64::from(x.at(c, t))).sum::<f64>() / x.c as f64;
                    let var = (0..x.c)
                        .map(|c| {
                            let d = f64::from(x.at(c, t)) - mean;
                            d * d
                        })
                        .sum::<f64>()
                        / x.c as f64;
                    let r = 1.0 / (var + f64::from(eps)).sqrt();
                    *rs = r as f32;
                    for c in 0..x.c {
                        let h = (f64::from(x.at(c, t)) - mean) * r;
                        xhat.v[c * x.s + t] = h as f32;
                        y.v[c * x.s + t] = (f64::from(g[c]) * h + f64::from(b[c])) as f32;
                    }
                }
                norm = Some((xhat, rstd));
                y
            }
            Op::AttnScores { heads } => {
                let (q, k) = (x(0), x(1));
                let dh = q.c / heads;
                let scale = 1.0 / (dh as f32).sqrt();
                let mut y = Act::zeros(heads * k.s, q.s);
                for h in 0..heads {
                    for j in 0..k.s {
                        for i in 0..q.s {
                            let dot = (0..dh)
                                .fold(0.0f32, |a, d| a + q.at(h * dh + d, i) * k.at(h * dh + d, j));
                            y.v[(h * k.s + j) * q.s + i] = dot * scale;
                        }
                    }
                }
                y
            }
            Op::AttnSoftmax { heads, .. } => {
                let x = x(0);
                let keys = x.c / heads;
                let mut y = Act::zeros(x.c, x.s);
                for h in 0..heads {
                    for i in 0..x.s {
                        let row = |j: usize| f64::from(x.at(h * keys + j, i));
                        let m = (0..keys).map(row).fold(f64::NEG_INFINITY, f64::max);
                        let e: Vec<f64> = (0..keys).map(|j| exp_det(row(j) - m)).collect();
                        let sum: f64 = e.iter().sum();
                        for (j, e) in e.iter().enumerate() {
                            y.v[(h * keys + j) * x.s + i] = (e / sum) as f32;
                        }
                    }
                }
                y
            }
            Op::AttnContext { heads } => {
                let (sc, v) = (x(0), x(1));
                let dh = v.c / heads;
                let mut y = Act::zeros(v.c, sc.s);
                for hd in 0..v.c {
                    let h = hd / dh;
                    for i in 0..sc.s {
                        y.v[hd * sc.s + i] =
                            (0..v.s).fold(0.0f32, |a, j| a + sc.at(h * v.s + j, i) * v.at(hd, j));
                    }
                }
                y
            }
            Op::Add => {
                let mut y = x(0).clone();
                y.add(x(1));
                y
            }
            Op::Unary { .. } => {
                let mut y = x(0).clone();
                y.v.iter_mut()
                    .for_each(|v| *v = crate::ibert::gelu(f64::from(*v)) as f32);
                y
            }
            Op::GlobalAvgPool => {
                let x = x(0);
                let mut y = Act::zeros(x.c, 1);
                for c in 0..x.c {
                    y.v[c] = (0..x.s).fold(0.0f32, |a, t| a + x.at(c, t)) / x.s as f32;
                }
                y
            }
            _ => unreachable!("Params::new refuses other ops"),
        };
        tape.outs.push(y);
        tape.norm.push(norm);
    }
    tape
}

/// Back-propagates `dy` (the gradient of the loss at the last layer's output) through the
/// pass `tape`, adding the parameter gradients into `grad` (laid out as `p.v`).
fn backward(net: &Network, p: &Params, tape: &Tape, dy: Act, grad: &mut [f32]) {
    let n = net.layers.len();
    let mut g: Vec<Option<Act>> = vec![None; n];
    g[n - 1] = Some(dy);
    let acc = |g: &mut Vec<Option<Act>>, i: usize, d: Act| match &mut g[i] {
        Some(a) => a.add(&d),
        slot @ None => *slot = Some(d),
    };
    for (li, layer) in net.layers.iter().enumerate().rev() {
        let Some(gy) = g[li].take() else { continue };
        let x = |k: usize| &tape.outs[layer.inputs[k]];
        match layer.op {
            Op::Input { .. } => {}
            Op::Dense { bias, .. } => {
                let (x, w) = (x(0), p.get(&layer.name, "weight"));
                let (wa, _) = p.find(&layer.name, "weight");
                let mut dx = Act::zeros(x.c, x.s);
                for oc in 0..gy.c {
                    for t in 0..x.s {
                        let d = gy.at(oc, t);
                        for i in 0..x.c {
                            grad[wa + oc * x.c + i] += d * x.at(i, t);
                            dx.v[i * x.s + t] += w[oc * x.c + i] * d;
                        }
                    }
                }
                if bias {
                    let (ba, _) = p.find(&layer.name, "bias");
                    for oc in 0..gy.c {
                        grad[ba + oc] += (0..gy.s).fold(0.0f32, |a, t| a + gy.at(oc, t));
                    }
                }
                acc(&mut g, layer.inputs[0], dx);
            }
            Op::Positional { .. } => {
                let (pa, _) = p.find(&layer.name, "weight");
                for c in 0..gy.c {
                    for t in 0..gy.s {
                        grad[pa + t * gy.c + c] += gy.at(c, t);
                    }
                }
                acc(&mut g, layer.inputs[0], gy);
            }
            Op::LayerNorm { .. } => {
                let (xhat, rstd) = tape.norm[li].as_ref().expect("kept by forward");
                let gamma = p.get(&layer.name, "gamma");
                let ((ga, _), (ba, _)) =
                    (p.find(&layer.name, "gamma"), p.find(&layer.name, "beta"));
                let (c_n, s) = (gy.c, gy.s);
                let mut dx = Act::zeros(c_n, s);
                for (t, &rs) in rstd.iter().enumerate() {
                    let (mut m1, mut m2) = (0.0f32, 0.0f32);
                    for c in 0..c_n {
                        let (d, h) = (gy.at(c, t), xhat.at(c, t));
                        grad[ga + c] += d * h;
                        grad[ba + c] += d;
                        let dh = d * gamma[c];
                        m1 += dh;
                        m2 += dh * h;
                    }
                    let (m1, m2) = (m1 / c_n as f32, m2 / c_n as f32);
                    for (c, &gm) in gamma.iter().enumerate() {
                        let dh = gy.at(c, t) * gm;
                        dx.v[c * s + t] = rs * (dh - m1 - xhat.at(c, t) * m2);
                    }
                }
                acc(&mut g, layer.inputs[0], dx);
            }
            Op::AttnScores { heads } => {
                let (q, k) = (x(0), x(1));
                let dh = q.c / heads;
                let scale = 1.0 / (dh as f32).sqrt();
                let (mut dq, mut dk) = (Act::zeros(q.c, q.s), Act::zeros(k.c, k.s));
                for h in 0..heads {
                    for j in 0..k.s {
                        for i in 0..q.s {
                            let d = gy.at(h * k.s + j, i) * scale;
                            for e in h * dh..(h + 1) * dh {
                                dq.v[e * q.s + i] += d * k.at(e, j);
                                dk.v[e * k.s + j] += d * q.at(e, i);
                            }
                        }
                    }
                }
                acc(&mut g, layer.inputs[0], dq);
                acc(&mut g, layer.inputs[1], dk);
            }
            Op::AttnSoftmax { heads, .. } => {
                let y = &tape.outs[li];
                let keys = y.c / heads;
                let mut dx = Act::zeros(y.c, y.s);
                for h in 0..heads {
                    for i in 0..y.s {
                        let r = |j: usize| (h * keys + j) * y.s + i;
                        let dot = (0..keys).fold(0.0f32, |a, j| a + y.v[r(j)] * gy.v[r(j)]);
                        for j in 0..keys {
                            dx.v[r(j)] = y.v[r(j)] * (gy.v[r(j)] - dot);
                        }
                    }
                }
                acc(&mut g, layer.inputs[0], dx);
            }
            Op::AttnContext { heads } => {
                let (sc, v) = (x(0), x(1));
                let dh = v.c / heads;
                let (mut ds, mut dv) = (Act::zeros(sc.c, sc.s), Act::zeros(v.c, v.s));
                for hd in 0..v.c {
                    let h = hd / dh;
                    for i in 0..sc.s {
                        let d = gy.at(hd, i);
                        for j in 0..v.s {
                            ds.v[(h * v.s + j) * sc.s + i] += d * v.at(hd, j);
                            dv.v[hd * v.s + j] += d * sc.at(h * v.s + j, i);
                        }
                    }
                }
                acc(&mut g, layer.inputs[0], ds);
                acc(&mut g, layer.inputs[1], dv);
            }
            Op::Add => {
                acc(&mut g, layer.inputs[1], gy.clone());
                acc(&mut g, layer.inputs[0], gy);
            }
            Op::Unary { .. } => {
                let x = x(0);
                let mut dx = gy;
                dx.v.iter_mut()
                    .zip(&x.v)
                    .for_each(|(d, &xv)| *d *= gelu_grad(xv));
                acc(&mut g, layer.inputs[0], dx);
            }
            Op::GlobalAvgPool => {
                let x = x(0);
                let mut dx = Act::zeros(x.c, x.s);
                for c in 0..x.c {
                    for t in 0..x.s {
                        dx.v[c * x.s + t] = gy.v[c] / x.s as f32;
                    }
                }
                acc(&mut g, layer.inputs[0], dx);
            }
            _ => unreachable!("Params::new refuses other ops"),
        }
    }
}

/// Softmax cross-entropy of `logits` for class `y`: the loss and its gradient.
fn cross_entropy(logits: &Act, y: usize) -> (f64, Act) {
    let m = logits.v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits
        .v
        .iter()
        .map(|&v| exp_det(f64::from(v - m)))
        .collect();
    let total: f64 = e.iter().sum();
    let mut d = logits.clone();
    for (o, v) in d.v.iter_mut().enumerate() {
        *v = (e[o] / total) as f32 - if o == y { 1.0 } else { 0.0 };
    }
    ((total / e[y]).ln(), d)
}

/// Adam's moments.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    /// β₁ᵗ and β₂ᵗ, kept as running products (no `powi`).
    b1t: f32,
    b2t: f32,
}

impl Adam {
    const B1: f32 = 0.9;
    const B2: f32 = 0.999;
    const EPS: f32 = 1e-8;

    fn step(&mut self, w: &mut [f32], g: &[f32], lr: f32) {
        self.b1t *= Self::B1;
        self.b2t *= Self::B2;
        let (c1, c2) = (1.0 - self.b1t, 1.0 - self.b2t);
        for i in 0..w.len() {
            self.m[i] = Self::B1 * self.m[i] + (1.0 - Self::B1) * g[i];
            self.v[i] = Self::B2 * self.v[i] + (1.0 - Self::B2) * g[i] * g[i];
            w[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + Self::EPS);
        }
    }
}

/// The float input of a digit (pixel/16), features × tokens.
fn input(img: &[u8; 64]) -> Act {
    let a = token_rows(img, |p| f32::from(p) / 16.0);
    Act {
        c: ROW,
        s: ROW,
        v: a.iter().copied().collect(),
    }
}

/// Trains `net` (an [`encoder_network`]) on `train` and returns its float weights.
/// `stop`, polled between epochs, ends the training early with [`WorkloadError::Stopped`].
pub fn train_encoder(
    net: &Network,
    train: &Digits,
    cfg: &EncoderTraining,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<Weights, WorkloadError> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut p = Params::new(net, &mut rng)?;
    let xs: Vec<Act> = train.images.iter().map(input).collect();
    let mut opt = Adam {
        m: vec![0.0; p.v.len()],
        v: vec![0.0; p.v.len()],
        b1t: 1.0,
        b2t: 1.0,
    };
    let mut order: Vec<usize> = (0..train.len()).collect();
    let batch = cfg.batch.max(1);
    for e in 0..cfg.epochs {
        if stop.is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
            return Err(WorkloadError::Stopped);
        }
        crate::digits::shuffle(&mut order, &mut rng);
        let lr = cfg.lr * (cfg.epochs - e) as f32 / cfg.epochs as f32;
        for chunk in order.chunks(batch) {
            let mut grad = vec![0f32; p.v.len()];
            for &s in chunk {
                let tape = forward(net, &p, &xs[s]);
                let logits = tape.outs.last().expect("layers");
                let (_, d) = cross_entropy(logits, train.labels[s] as usize);
                backward(net, &p, &tape, d, &mut grad);
            }
            let k = 1.0 / chunk.len() as f32;
            grad.iter_mut().for_each(|g| *g *= k);
            opt.step(&mut p.v, &grad, lr);
        }
    }
    Ok(p.weights())
}

/// The shipped encoder's name.
pub const DIGITS_TRANSFORMER: &str = "digits-transformer";

/// `digits-transformer`, trained and compressed from scratch: the [`DIGITS_ENCODER`]
/// trained on the training split, then W8A8 (per-channel symmetric weights, min/max
/// activation ranges on the training images, the 5-bit pixel codes as input) with I-BERT's
/// integer softmax, GELU and LayerNorm. Its metrics hold the held-out accuracy of the
/// integer model and, beside it, the float model's (`float_held_out_*`).
pub fn digits_transformer(
    cfg: &EncoderTraining,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<Model, WorkloadError> {
    let (train, test) = Digits::embedded().split(SPLIT_SEED);
    let net = encoder_network(DIGITS_TRANSFORMER, DIGITS_ENCODER);
    let weights = train_encoder(&net, &train, cfg, stop)?;
    let float = Model {
        net: net.clone(),
        weights,
        quant: None,
        metrics: Default::default(),
    };
    let float_correct = correct(&float, &test)?;
    let spec = CompressSpec {
        input: Some(DIGITS_INPUT),
        ..CompressSpec::INT8
    };
    let calib = float_inputs(&train, net.input_shape());
    let (mut m, _) = compress(&net, &float.weights, &spec, &calib)?;
    record(&mut m, &test)?;
    m.metrics
        .insert("float_held_out_correct".into(), float_correct as f64);
    m.metrics.insert(
        "float_held_out_accuracy".into(),
        float_correct as f64 / test.len() as f64,
    );
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small encoder for the gradient check: 8 pixels → 4 features, 2 heads, FFN 6.
    fn tiny() -> (Network, Params, Act) {
        let s = EncoderShape {
            dim: 4,
            heads: 2,
            ffn: 6,
            layers: 1,
        };
        let net = encoder_network("tiny", s);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut p = Params::new(&net, &mut rng).unwrap();
        // Non-trivial γ, β, biases and positions, so every gradient path carries signal.
        for v in p.v.iter_mut() {
            *v += unit(&mut rng) * 0.6 - 0.3;
        }
        let x = Act {
            c: ROW,
            s: ROW,
            v: (0..64).map(|_| unit(&mut rng)).collect(),
        };
        (net, p, x)
    }

    fn loss(net: &Network, p: &Params, x: &Act, y: usize) -> f64 {
        cross_entropy(forward(net, p, x).outs.last().unwrap(), y).0
    }

    /// Back-propagation equals central differences of the loss for every parameter.
    #[test]
    fn gradients_match_finite_differences() {
        let (net, mut p, x) = tiny();
        let y = 3;
        let tape = forward(&net, &p, &x);
        let (_, d) = cross_entropy(tape.outs.last().unwrap(), y);
        let mut grad = vec![0f32; p.v.len()];
        backward(&net, &p, &tape, d, &mut grad);
        let h = 1e-2f32;
        let mut worst = 0.0f64;
        for (i, &gi) in grad.iter().enumerate() {
            let w0 = p.v[i];
            p.v[i] = w0 + h;
            let up = loss(&net, &p, &x, y);
            p.v[i] = w0 - h;
            let down = loss(&net, &p, &x, y);
            p.v[i] = w0;
            let fd = (up - down) / (2.0 * f64::from(h));
            let err = (fd - f64::from(gi)).abs() / (1e-2 + fd.abs());
            worst = worst.max(err);
        }
        assert!(worst < 0.05, "worst relative gradient error {worst}");
        // Every tensor receives a gradient (no path is cut), except the key bias: it adds
        // q·b to all of a query's scores alike, which the softmax cancels.
        for slot in &p.slots {
            let n: usize = slot.dims.iter().product();
            let g = &grad[slot.at..slot.at + n];
            let largest = g.iter().fold(0.0f32, |m, g| m.max(g.abs()));
            let name = format!("{}.{}", slot.layer, slot.role);
            if name == "l0.k.bias" {
                assert!(largest < 1e-5, "{name}: {largest}");
            } else {
                assert!(largest > 1e-4, "{name}: {largest}");
            }
        }
    }

    /// The shipped encoder's totals, counted by hand. MACs per token: embedding 8·32, Q, K,
    /// V and output 4·32², FFN 2·32·64 (8,448), times 8 tokens, plus scores and context
    /// 2·8·8·32 and the classifier's 32·10: 72,000. Parameters: embedding 288, positions
    /// 256, three LayerNorms 3·64, Q/K/V/output 4·1,056, FFN 2,112 + 2,080, classifier 330:
    /// 9,482.
    #[test]
    fn the_encoder_totals_are_counted_by_hand() {
        let net = encoder_network(DIGITS_TRANSFORMER, DIGITS_ENCODER);
        let (macs, _, params) = net.totals().unwrap();
        assert_eq!(
            macs,
            8 * (8 * 32 + 4 * 32 * 32 + 2 * 32 * 64) + 2 * 8 * 8 * 32 + 320
        );
        assert_eq!(macs, 72_000);
        assert_eq!(params, 288 + 256 + 3 * 64 + 4 * 1056 + 2112 + 2080 + 330);
        assert_eq!(params, 9_482);
    }

    /// The trainer's forward pass is `exec::forward` on the same network and weights.
    #[test]
    fn the_forward_pass_is_the_networks() {
        let (net, p, x) = tiny();
        let ours = forward(&net, &p, &x);
        let input = ndarray::Array3::from_shape_vec((ROW, ROW, 1), x.v.clone()).unwrap();
        let theirs = crate::exec::forward(&net, &p.weights(), &input).unwrap();
        for (a, b) in ours.outs.iter().zip(&theirs) {
            for (u, v) in a.v.iter().zip(b.iter()) {
                assert!((u - v).abs() <= 1e-5 * (1.0 + v.abs()), "{u} vs {v}");
            }
        }
    }

    #[test]
    fn other_ops_are_refused() {
        let mut net = encoder_network("x", DIGITS_ENCODER);
        net.then("relu", Op::Relu);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let e = Params::new(&net, &mut rng).unwrap_err().to_string();
        assert!(e.contains("'relu'"), "{e}");
    }
}
