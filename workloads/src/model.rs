//! A model: network, float parameters, optional quantization and recorded metrics, and the
//! project's own file format for it (`docs/references.md` B5): a TOML description
//! (`NAME.toml`: the layer list, activation formats, weight schemes, metrics) next to a
//! safetensors file (`NAME.safetensors`: float tensors as F32, weight codes as I8/U8/I16/U16
//! with `<layer>.weight_scale` F32 and `<layer>.weight_zero` I32).
//!
//! Reading checks everything a corrupt or hand-edited file can get wrong (format tag, layer
//! graph, tensor dtypes, every tensor's dims against its layer, code ranges, scales and zero
//! points) and names the file and the key; writing returns the files' bytes for the caller to write
//! (the simulator writes them atomically).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::digest::Fnv;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::error::WorkloadError;
use crate::exec;
use crate::golden::{Program, Quant};
use crate::net::{Network, Op};
use crate::quant::{ActQuant, QWeight, WeightMode, WeightScheme};
use crate::weights::{Data, Tensor, Weights};

/// The `format` tag of a description.
pub const FORMAT: &str = "cramulator-model";
/// The description version this build reads and writes.
pub const VERSION: u32 = 1;

/// A network with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The graph (compressed layers carry their bit-widths).
    pub net: Network,
    /// Float parameters; for quantized layers `weight` holds the dequantized codes.
    pub weights: Weights,
    /// Weight codes and activation formats, if quantized.
    pub quant: Option<Quant>,
    /// Recorded measurements, e.g. `held_out_accuracy`.
    pub metrics: BTreeMap<String, f64>,
}

/// The TOML description.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Description {
    format: String,
    version: u32,
    /// The safetensors file, a name in the same folder (absent: structure only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weights: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    metrics: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    weight_codes: BTreeMap<String, WeightScheme>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    activations: BTreeMap<String, ActQuant>,
    network: Network,
}

impl Model {
    /// Compiles the integer golden program (the model must be quantized).
    pub fn program(&self) -> Result<Program, WorkloadError> {
        let q = self.quant.as_ref().ok_or_else(|| {
            WorkloadError::Network(format!("model '{}' is not quantized", self.net.name))
        })?;
        Program::compile(&self.net, &self.weights, q)
    }

    /// [`Model::program`] of a model the caller is done with: its weight codes become the
    /// program's instead of being copied.
    pub fn into_program(self) -> Result<Program, WorkloadError> {
        let q = self.quant.ok_or_else(|| {
            WorkloadError::Network(format!("model '{}' is not quantized", self.net.name))
        })?;
        Program::compile_owned(&self.net, &self.weights, q)
    }

    /// A decode step of this model with `past` cached tokens instead of its own: every
    /// [`Op::KvCache`] keeps its first `past` entries (the earlier tokens' keys and values,
    /// a prefix of the longer cache) and every [`Op::Positional`] moves its offset by as
    /// much, so the new token sits at position `past`. Weights, biases and activation
    /// formats stay: one quantized model serving a growing context, as a deployed one does.
    /// Refused if the model has no cache, its caches differ in length, or `past` is 0 or
    /// more than the caches hold.
    pub fn with_past(&mut self, past: usize) -> Result<(), WorkloadError> {
        let pasts: Vec<usize> = self
            .net
            .layers
            .iter()
            .filter_map(|l| match l.op {
                Op::KvCache { past } => Some(past),
                _ => None,
            })
            .collect();
        let name = &self.net.name;
        let Some(&own) = pasts.first() else {
            return Err(WorkloadError::Network(format!(
                "model '{name}' has no key or value cache to shorten"
            )));
        };
        if pasts.iter().any(|&p| p != own) || past == 0 || past > own {
            return Err(WorkloadError::Network(format!(
                "model '{name}': {past} cached token(s) from caches of {pasts:?}: \
                 1 to {own}, from caches of one length"
            )));
        }
        for layer in &mut self.net.layers {
            match &mut layer.op {
                Op::KvCache { past: p } => {
                    *p = past;
                    let key = format!("{}.cache", layer.name);
                    let t = self.weights.tensors.get_mut(&key).ok_or_else(|| {
                        WorkloadError::Network(format!("model '{name}': no tensor '{key}'"))
                    })?;
                    let [rows, features] = t.dims[..] else {
                        return Err(WorkloadError::Network(format!(
                            "model '{name}': tensor '{key}' has dims {:?}, not [{own}, features]",
                            t.dims
                        )));
                    };
                    if rows != own {
                        return Err(WorkloadError::Network(format!(
                            "model '{name}': tensor '{key}' holds {rows} entries, not {own}"
                        )));
                    }
                    t.truncate_rows(past, features);
                }
                Op::Positional { offset, .. } => {
                    *offset = (*offset + past).checked_sub(own).ok_or_else(|| {
                        WorkloadError::Network(format!(
                            "model '{name}', layer '{}': its positions start at {offset}, \
                             before the {own} cached tokens",
                            layer.name
                        ))
                    })?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The description text and the safetensors bytes (None if there are no tensors), with
    /// the description naming `weights_file`.
    pub fn to_bytes(&self, weights_file: &str) -> Result<(String, Option<Vec<u8>>), WorkloadError> {
        let bad = |why: String| WorkloadError::Network(format!("model '{}': {why}", self.net.name));
        let quant = self.quant.clone().unwrap_or_default();
        let mut blobs: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (key, t) in &self.weights.tensors {
            let Data::F32(v) = &t.data else {
                return Err(bad(format!(
                    "'{key}' is a placeholder fill and cannot be saved"
                )));
            };
            blobs.insert(
                key.clone(),
                (
                    Dtype::F32,
                    t.dims.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
            );
        }
        for (layer, q) in &quant.weights {
            let (dtype, bytes): (Dtype, Vec<u8>) = match (q.scheme.bits, q.scheme.mode) {
                (..=8, WeightMode::Affine) => {
                    (Dtype::U8, q.values.iter().map(|&v| v as u8).collect())
                }
                (..=8, _) => (Dtype::I8, q.values.iter().map(|&v| v as i8 as u8).collect()),
                (_, WeightMode::Affine) => (
                    Dtype::U16,
                    q.values
                        .iter()
                        .flat_map(|&v| (v as u16).to_le_bytes())
                        .collect(),
                ),
                _ => (
                    Dtype::I16,
                    q.values
                        .iter()
                        .flat_map(|&v| (v as i16).to_le_bytes())
                        .collect(),
                ),
            };
            blobs.insert(format!("{layer}.weight"), (dtype, q.dims.clone(), bytes));
            let n = q.scale.len();
            blobs.insert(
                format!("{layer}.weight_scale"),
                (
                    Dtype::F32,
                    vec![n],
                    q.scale.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
            );
            blobs.insert(
                format!("{layer}.weight_zero"),
                (
                    Dtype::I32,
                    vec![n],
                    q.zero.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
            );
        }
        let st = if blobs.is_empty() {
            None
        } else {
            let views: Vec<(String, TensorView<'_>)> = blobs
                .iter()
                .map(|(k, (d, dims, b))| Ok((k.clone(), TensorView::new(*d, dims.clone(), b)?)))
                .collect::<Result<_, safetensors::SafeTensorError>>()
                .map_err(|e| bad(format!("safetensors: {e}")))?;
            Some(
                safetensors::serialize(views, None)
                    .map_err(|e| bad(format!("safetensors: {e}")))?,
            )
        };
        let desc = Description {
            format: FORMAT.into(),
            version: VERSION,
            weights: st.as_ref().map(|_| weights_file.to_owned()),
            metrics: self.metrics.clone(),
            weight_codes: quant
                .weights
                .iter()
                .map(|(k, q)| (k.clone(), q.scheme))
                .collect(),
            activations: quant.acts.clone(),
            network: self.net.clone(),
        };
        let text = toml::to_string(&desc).map_err(|e| bad(format!("TOML: {e}")))?;
        Ok((text, st))
    }

    /// Parses a description and its safetensors bytes (if it names a file). `origin` is the
    /// description's path, quoted in errors with `weights_origin` for the tensors.
    pub fn from_bytes(
        desc: &str,
        origin: &str,
        tensors: Option<(&[u8], &str)>,
    ) -> Result<Model, WorkloadError> {
        let file = |path: &str, why: String| WorkloadError::File {
            path: path.to_owned(),
            why,
        };
        let d: Description = toml::from_str(desc)
            .map_err(|e| file(origin, format!("not a model description: {e}")))?;
        if d.format != FORMAT || d.version != VERSION {
            return Err(file(
                origin,
                format!(
                    "format = '{}', version = {}: this build reads format = '{FORMAT}', version = {VERSION}",
                    d.format, d.version
                ),
            ));
        }
        let stats = d.network.stats().map_err(|e| file(origin, e.to_string()))?;
        let mut weights = Weights::default();
        let mut quant = Quant {
            weights: BTreeMap::new(),
            acts: d.activations.clone(),
        };
        match (&d.weights, tensors) {
            (None, _) => {}
            (Some(name), None) => {
                return Err(file(origin, format!("weights = '{name}' was not loaded")));
            }
            (Some(_), Some((bytes, st_origin))) => {
                let sbad = |why: String| file(st_origin, why);
                let st = SafeTensors::deserialize(bytes)
                    .map_err(|e| sbad(format!("not a readable safetensors file: {e}")))?;
                let mut names: Vec<&str> = st.names().into_iter().collect();
                names.sort_unstable();
                for name in names {
                    let t = st
                        .tensor(name)
                        .map_err(|e| sbad(format!("tensor '{name}': {e}")))?;
                    let (layer, role) = name.rsplit_once('.').ok_or_else(|| {
                        sbad(format!("tensor '{name}' is not named <layer>.<role>"))
                    })?;
                    if d.network.find(layer).is_none() {
                        return Err(sbad(format!(
                            "tensor '{name}' names no layer of the network"
                        )));
                    }
                    let coded = role == "weight" && d.weight_codes.contains_key(layer);
                    let dims = t.shape().to_vec();
                    let data = t.data();
                    let v = match (t.dtype(), coded) {
                        (Dtype::F32, false) => Values::F(
                            data.chunks_exact(4)
                                .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                                .collect(),
                        ),
                        (Dtype::I32, _) if role == "weight_zero" => Values::I(
                            data.chunks_exact(4)
                                .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
                                .collect(),
                        ),
                        (Dtype::I8, true) => {
                            Values::I(data.iter().map(|&b| i32::from(b as i8)).collect())
                        }
                        (Dtype::U8, true) => {
                            Values::I(data.iter().map(|&b| i32::from(b)).collect())
                        }
                        (Dtype::I16, true) => Values::I(
                            data.chunks_exact(2)
                                .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]])))
                                .collect(),
                        ),
                        (Dtype::U16, true) => Values::I(
                            data.chunks_exact(2)
                                .map(|c| i32::from(u16::from_le_bytes([c[0], c[1]])))
                                .collect(),
                        ),
                        (dt, _) => {
                            return Err(sbad(format!(
                                "tensor '{name}' has dtype {dt:?}; allowed: F32 for float tensors and \
                                 scales, I32 for zero points, I8/U8/I16/U16 for the codes of layers \
                                 listed in [weight_codes]"
                            )));
                        }
                    };
                    match v {
                        Values::F(v) => weights.insert(layer, role, Tensor::new(dims, v)),
                        Values::I(v) if role == "weight_zero" => {
                            codes(&mut quant, &d, layer, &sbad)?.zero = v;
                        }
                        Values::I(v) => {
                            let q = codes(&mut quant, &d, layer, &sbad)?;
                            q.dims = dims;
                            q.values = v;
                        }
                    }
                }
                // Scales arrived as float tensors: move them into the codes.
                for (layer, q) in quant.weights.iter_mut() {
                    let s = weights
                        .tensors
                        .remove(&format!("{layer}.weight_scale"))
                        .ok_or_else(|| {
                            sbad(format!(
                                "layer '{layer}' has codes but no '{layer}.weight_scale'"
                            ))
                        })?;
                    q.scale = s.to_vec();
                    q.validate()
                        .map_err(|e| sbad(format!("layer '{layer}' codes: {e}")))?;
                    weights.insert(layer, "weight", q.dequantize());
                }
                check_params(&d.network, &stats, &weights).map_err(|e| sbad(e.to_string()))?;
            }
        }
        if let Some(layer) = d
            .weight_codes
            .keys()
            .find(|l| !quant.weights.contains_key(*l))
        {
            return Err(file(
                origin,
                format!("[weight_codes] lists '{layer}', whose codes are not in the weights file"),
            ));
        }
        for (name, a) in &quant.acts {
            if d.network.find(name).is_none() {
                return Err(file(origin, format!("[activations.{name}] names no layer")));
            }
            a.validate()
                .map_err(|e| file(origin, format!("[activations.{name}]: {e}")))?;
        }
        let quantized = !quant.acts.is_empty() || !quant.weights.is_empty();
        let model = Model {
            net: d.network,
            weights,
            quant: quantized.then_some(quant),
            metrics: d.metrics,
        };
        if quantized {
            model.program().map_err(|e| file(origin, e.to_string()))?;
        }
        Ok(model)
    }

    /// Reads `NAME.toml` and the safetensors file it names (in the same folder).
    pub fn read(path: &Path) -> Result<Model, WorkloadError> {
        Model::read_digest(path).map(|(m, _)| m)
    }

    /// [`Model::read`], with the digest of the bytes it read (the description, then the
    /// weights file if any).
    pub fn read_digest(path: &Path) -> Result<(Model, Fnv), WorkloadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| WorkloadError::File {
            path: shown.clone(),
            why: format!("cannot read: {e}"),
        })?;
        let name = toml::from_str::<toml::Table>(&text)
            .ok()
            .and_then(|t| t.get("weights").and_then(|v| v.as_str().map(str::to_owned)));
        let digest = Fnv::default().part(text.as_bytes());
        let Some(name) = name else {
            return Ok((Model::from_bytes(&text, &shown, None)?, digest));
        };
        if name.contains(['/', '\\']) || name == ".." || name.is_empty() {
            return Err(WorkloadError::File {
                path: shown,
                why: format!("weights = '{name}' must be a file name in the same folder"),
            });
        }
        let st_path = path.with_file_name(&name);
        let st_shown = st_path.display().to_string();
        let bytes = std::fs::read(&st_path).map_err(|e| WorkloadError::File {
            path: st_shown.clone(),
            why: format!("cannot read: {e}"),
        })?;
        let model = Model::from_bytes(&text, &shown, Some((&bytes, &st_shown)))?;
        Ok((model, digest.part(&bytes)))
    }

    /// The files that store this model at `path` (a `.toml` description): the safetensors
    /// file beside it with the same stem when there are tensors, then the description. The
    /// caller writes them (the simulator through its one atomic writer), weights first, so a
    /// description never names a weights file not yet written.
    pub fn files(&self, path: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, WorkloadError> {
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            return Err(WorkloadError::File {
                path: path.display().to_string(),
                why: "a model description is written to a .toml path".into(),
            });
        }
        let st_path = path.with_extension("safetensors");
        let st_name = st_path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("weights.safetensors")
            .to_owned();
        let (text, st) = self.to_bytes(&st_name)?;
        let mut files = Vec::new();
        if let Some(bytes) = st {
            files.push((st_path, bytes));
        }
        files.push((path.to_path_buf(), text.into_bytes()));
        Ok(files)
    }
}

enum Values {
    F(Vec<f32>),
    I(Vec<i32>),
}

/// The code entry of `layer`, created from its scheme in the description.
fn codes<'a>(
    quant: &'a mut Quant,
    d: &Description,
    layer: &str,
    bad: &dyn Fn(String) -> WorkloadError,
) -> Result<&'a mut QWeight, WorkloadError> {
    let scheme = *d.weight_codes.get(layer).ok_or_else(|| {
        bad(format!(
            "zero points for '{layer}', which [weight_codes] does not list"
        ))
    })?;
    Ok(quant
        .weights
        .entry(layer.to_owned())
        .or_insert_with(|| QWeight {
            scheme,
            dims: vec![],
            values: vec![],
            scale: vec![],
            zero: vec![],
        }))
}

/// Checks that every parameter a layer needs is present with the right element count, and
/// that no tensor is left over.
pub fn check_params(
    net: &Network,
    stats: &[crate::net::LayerStats],
    w: &Weights,
) -> Result<(), WorkloadError> {
    let mut used = 0;
    for layer in &net.layers {
        let in_c = layer.inputs.first().map_or(0, |&j| stats[j].out.c);
        let mut need = |role: &str, n: usize| -> Result<(), WorkloadError> {
            used += 1;
            let t = w.get(&layer.name, role).ok_or_else(|| {
                WorkloadError::Network(format!("layer '{}' has no '{role}' tensor", layer.name))
            })?;
            if t.len() != n {
                return Err(WorkloadError::Network(format!(
                    "layer '{}': '{role}' has dims {:?} ({} elements), the layer needs {n}",
                    layer.name,
                    t.dims,
                    t.len()
                )));
            }
            Ok(())
        };
        if let Some(d) = exec::weight_dims(&layer.op, in_c) {
            need("weight", d.0 * d.1 * d.2 * d.3)?;
            let want = match layer.op {
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
            let got = &w.get(&layer.name, "weight").expect("checked").dims;
            if *got != want {
                return Err(WorkloadError::Network(format!(
                    "layer '{}': 'weight' has dims {got:?}, the layer needs {want:?} ({})",
                    layer.name,
                    if want.len() == 2 {
                        "[out, in]"
                    } else {
                        "[out, in/groups, kh, kw]"
                    }
                )));
            }
        }
        match layer.op {
            Op::Dense {
                bias: true,
                out_features: n,
            } => need("bias", n)?,
            Op::Conv2d {
                bias: true,
                out_channels: n,
                ..
            } => need("bias", n)?,
            Op::BatchNorm { .. } => {
                for role in ["gamma", "beta", "mean", "var"] {
                    need(role, in_c)?;
                }
            }
            Op::LayerNorm { .. } => {
                for role in ["gamma", "beta"] {
                    need(role, in_c)?;
                }
            }
            Op::Embedding { vocab, dim } => need("weight", vocab * dim)?,
            Op::KvCache { past } if past > 0 => need("cache", past * in_c)?,
            Op::Positional {
                positions,
                token_types,
                ..
            } => {
                need("weight", positions * in_c)?;
                if token_types > 0 {
                    need("types", token_types * in_c)?;
                }
            }
            _ => {}
        }
    }
    if used != w.tensors.len() {
        let extra: Vec<&String> = w
            .tensors
            .keys()
            .filter(|k| {
                let (l, r) = k.rsplit_once('.').unwrap_or((k, ""));
                net.find(l).is_none_or(|i| !uses(&net.layers[i].op, r))
            })
            .collect();
        return Err(WorkloadError::Network(format!(
            "tensors no layer uses: {extra:?}"
        )));
    }
    Ok(())
}

/// Whether `op` takes a parameter in `role`.
fn uses(op: &Op, role: &str) -> bool {
    match op {
        Op::Dense { bias, .. } | Op::Conv2d { bias, .. } => {
            role == "weight" || (*bias && role == "bias")
        }
        Op::BatchNorm { .. } => ["gamma", "beta", "mean", "var"].contains(&role),
        Op::LayerNorm { .. } => ["gamma", "beta"].contains(&role),
        Op::Input { .. }
        | Op::MaxPool { .. }
        | Op::AvgPool { .. }
        | Op::GlobalAvgPool
        | Op::Relu
        | Op::Relu6
        | Op::Add
        | Op::Concat
        | Op::Flatten
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
        | Op::AttnSoftmax { .. } => false,
        Op::Embedding { .. } => role == "weight",
        Op::KvCache { past } => *past > 0 && role == "cache",
        Op::Positional { token_types, .. } => {
            role == "weight" || (*token_types > 0 && role == "types")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::{
        Calibration, CompressSpec, compress, synthetic_inputs, synthetic_weights,
    };
    use crate::prune::Prune;

    fn shipped(name: &str) -> (String, Vec<u8>) {
        let m = crate::train::shipped(name).unwrap().unwrap();
        let (t, b) = m.to_bytes(&format!("{name}.safetensors")).unwrap();
        (t, b.unwrap())
    }

    fn err(desc: &str, st: Option<&[u8]>) -> String {
        Model::from_bytes(desc, "m.toml", st.map(|b| (b, "m.safetensors")))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_weight_code_round_trips_through_the_files() {
        let net = crate::zoo::model("lenet5").unwrap();
        let w = synthetic_weights(&net, 1).unwrap();
        let calib = synthetic_inputs(net.input_shape(), 2, 2);
        for (bits, mode, per_channel, prune) in [
            (8, WeightMode::Symmetric, true, None),
            (
                3,
                WeightMode::Affine,
                false,
                Some(Prune::Unstructured { sparsity: 0.5 }),
            ),
            (
                12,
                WeightMode::Symmetric,
                false,
                Some(Prune::Filters { fraction: 0.25 }),
            ),
            (16, WeightMode::Affine, true, None),
            (1, WeightMode::Binary, true, None),
        ] {
            let spec = CompressSpec {
                weights: WeightScheme {
                    bits,
                    mode,
                    per_channel,
                },
                act_bits: 6,
                act_symmetric: mode == WeightMode::Affine,
                input: None,
                prune,
                calibration: Calibration::MinMax,
                binarize: None,
            };
            let (m, sparsity) = compress(&net, &w, &spec, &calib).unwrap();
            if let Some(Prune::Unstructured { sparsity: s }) = prune {
                assert!(
                    sparsity.iter().all(|(_, z)| (*z - s).abs() < 0.01),
                    "{sparsity:?}"
                );
            }
            let (text, st) = m.to_bytes("x.safetensors").unwrap();
            let back =
                Model::from_bytes(&text, "x.toml", Some((&st.unwrap(), "x.safetensors"))).unwrap();
            assert_eq!(back, m, "{bits} {mode:?}");
        }
    }

    #[test]
    fn files_are_written_and_read_back() {
        let dir = std::env::temp_dir().join(format!("cram-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let m = crate::train::shipped("digits-mlp-int4").unwrap().unwrap();
        let path = dir.join("int4.toml");
        let write = |m: &Model, path: &Path| {
            for (p, bytes) in m.files(path).unwrap() {
                std::fs::write(p, bytes).unwrap();
            }
        };
        write(&m, &path);
        assert!(dir.join("int4.safetensors").exists());
        assert_eq!(Model::read(&path).unwrap(), m);
        // A structure-only model has no weights file.
        let s = Model {
            net: crate::zoo::model("resnet20").unwrap(),
            weights: Weights::default(),
            quant: None,
            metrics: Default::default(),
        };
        write(&s, &dir.join("r20.toml"));
        assert!(!dir.join("r20.safetensors").exists());
        assert_eq!(Model::read(&dir.join("r20.toml")).unwrap(), s);
        // The weights file must sit beside the description.
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "weights = \"int4.safetensors\"",
            "weights = \"../x.safetensors\"",
        );
        std::fs::write(&path, text).unwrap();
        let e = Model::read(&path).unwrap_err().to_string();
        assert!(e.contains("same folder"), "{e}");
        std::fs::remove_file(dir.join("int4.safetensors")).unwrap();
        let e = Model::read(&dir.join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing.toml") && e.contains("cannot read"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_or_corrupt_safetensors_are_named_errors() {
        let (text, st) = shipped("digits-mlp-int8");
        for cut in [0, 4, 8, 9, 100, st.len() / 2, st.len() - 1] {
            let e = err(&text, Some(&st[..cut]));
            assert!(e.starts_with("m.safetensors:"), "cut {cut}: {e}");
        }
        // A huge header length, and garbage in the header.
        let mut bad = st.clone();
        bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(err(&text, Some(&bad)).contains("not a readable safetensors"));
        let mut bad = st.clone();
        bad[12] = b'{';
        assert!(err(&text, Some(&bad)).starts_with("m.safetensors:"));
        // Every single-byte flip either reads back or fails with a named error, never panics.
        for i in (0..st.len()).step_by(7) {
            let mut b = st.clone();
            b[i] ^= 0x5A;
            if let Err(e) = Model::from_bytes(&text, "m.toml", Some((&b, "m.safetensors"))) {
                assert!(e.to_string().starts_with("m."), "{e}");
            }
        }
    }

    #[test]
    fn inconsistent_descriptions_are_named_errors() {
        let (text, st) = shipped("digits-mlp-int8");
        let st = Some(&st[..]);
        for (from, to, want) in [
            (
                "format = \"cramulator-model\"",
                "format = \"onnx\"",
                "format = 'onnx'",
            ),
            ("version = 1", "version = 7", "version = 7"),
            ("out_features = 64", "out_features = 65", "'fc1'"),
            (
                "[activations.fc1]\nbits = 8",
                "[activations.fc1]\nbits = 40",
                "activations.fc1",
            ),
            ("op = \"dense\"", "op = \"lstm\"", "lstm"),
            ("[metrics]", "[metrics]\nbogus = \"x\"", "bogus"),
            (
                "[weight_codes.fc2]\nbits = 8",
                "[weight_codes.fc2]\nbits = 4",
                "outside",
            ),
            ("scale = ", "scale = -", "scale"),
        ] {
            assert!(text.contains(from), "{from}");
            let e = err(&text.replacen(from, to, 1), st);
            assert!(
                e.starts_with("m.") && e.contains(want),
                "{from} → {to}: {e}"
            );
        }
        // Weights stored transposed ([in, out]) are refused by dims, not misread.
        let m = crate::train::shipped("digits-mlp").unwrap().unwrap();
        let mut t = m.clone();
        t.weights.tensors.get_mut("fc2.weight").unwrap().dims = vec![64, 10];
        let (d, b) = t.to_bytes("m.safetensors").unwrap();
        let e = err(&d, b.as_deref());
        assert!(e.contains("'fc2'") && e.contains("[10, 64]"), "{e}");
        assert!(m.files(std::path::Path::new("x.safetensors")).is_err());
        assert!(err("", None).contains("m.toml"));
        assert!(err(&text[..text.len() / 2], st).starts_with("m.toml"));
        assert!(err(&text, None).contains("was not loaded"));
        // Weights for a description of another network.
        let (other, _) = shipped("digits-mlp-binary");
        let e = err(&other, st);
        assert!(e.starts_with("m."), "{e}");
    }

    /// A decode step shortened to fewer cached tokens keeps its caches' first entries,
    /// moves its positions with them (the new token at position 2) and compiles; 0, more than it holds, or a model
    /// without caches are refused.
    #[test]
    fn a_decode_step_shortens_to_fewer_cached_tokens() {
        use crate::net::{Network, Shape};
        use crate::zoo::dense;
        let heads = 2;
        let mut small = Network::new("d", Shape::new(1, 1, 1));
        small.then("emb", Op::Embedding { vocab: 8, dim: 4 });
        small.then(
            "pos",
            Op::Positional {
                positions: 9,
                offset: 4,
                token_types: 0,
            },
        );
        let q = small.then("q", dense(4));
        let k = small.push("k", dense(4), &[q - 1]);
        let k = small.push("k_cache", Op::KvCache { past: 4 }, &[k]);
        let s = small.push("scores", Op::AttnScores { heads }, &[q, k]);
        let causal = true;
        small.push("softmax", Op::AttnSoftmax { heads, causal }, &[s]);
        let mut m = crate::compress::synthetic_model(&small, &CompressSpec::INT8, 5, 1).unwrap();
        let before = m.weights.get("k_cache", "cache").unwrap().to_vec();
        m.with_past(2).unwrap();
        let k = m.weights.get("k_cache", "cache").unwrap();
        assert_eq!(k.dims, vec![2, 4]);
        assert_eq!(k.to_vec(), before[..2 * 4]);
        for l in &m.net.layers {
            match l.op {
                Op::KvCache { past } => assert_eq!(past, 2),
                Op::Positional { offset, .. } => assert_eq!(offset, 2),
                _ => {}
            }
        }
        let prog = m.program().unwrap();
        let sm = m.net.find("softmax").unwrap();
        assert_eq!(prog.shape(sm).c, heads * 3);
        for bad in [0, 3] {
            let e = m.with_past(bad).unwrap_err().to_string();
            assert!(e.contains("1 to 2"), "{e}");
        }
        let mut uneven = m.clone();
        uneven.net.layers.iter_mut().for_each(|l| {
            if let Op::KvCache { past } = &mut l.op {
                *past = 1;
            }
        });
        let kk = uneven.net.find("k").unwrap();
        uneven.net.push("v_cache", Op::KvCache { past: 2 }, &[kk]);
        let e = uneven.with_past(1).unwrap_err().to_string();
        assert!(e.contains("one length"), "{e}");
        let mut plain = shipped_model("digits-mlp-int8");
        assert!(
            plain
                .with_past(1)
                .unwrap_err()
                .to_string()
                .contains("no key or value cache")
        );
    }

    fn shipped_model(name: &str) -> Model {
        crate::train::shipped(name).unwrap().unwrap()
    }
}
