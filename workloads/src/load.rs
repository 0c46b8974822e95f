//! Where networks come from: a zoo name or a model file (ONNX today), and the per-layer
//! summary `inspect` prints (shapes, MACs, parameters, bit-widths, sparsity).

use serde::Serialize;

use crate::error::WorkloadError;
use crate::golden::Quant;
use crate::model::Model;
use crate::net::{Bits, Network, Shape};
use crate::weights::{Data, Weights};
use crate::{onnx, train, zoo};

/// A network with whatever weights its source provides.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The graph.
    pub net: Network,
    /// Weights (None for zoo models, which get seeded synthetic weights when executed).
    pub weights: Option<Weights>,
    /// ONNX nodes skipped with `skip_unsupported`.
    pub skipped: Vec<String>,
    /// Where it came from: `zoo`, `shipped` (trained, in the repository) or the file.
    pub source: String,
    /// Weight codes and activation formats, if quantized.
    pub quant: Option<Quant>,
    /// Recorded measurements of a model file.
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// The activation formats an ONNX file records, by layer ([`crate::onnx::Imported::acts`];
    /// empty for any other model).
    pub acts: std::collections::BTreeMap<String, crate::quant::ActQuant>,
    /// The weight formats an ONNX file records, by layer
    /// ([`crate::onnx::Imported::weights_q`]; empty for any other model).
    pub weights_q: std::collections::BTreeMap<String, crate::quant::WeightFormat>,
    /// Digest of the bytes the model was read from (16 hex digits; None for zoo models,
    /// which are built from code and a seed).
    pub digest: Option<String>,
}

impl Loaded {
    fn from_model(m: Model, source: String, digest: crate::digest::Fnv) -> Loaded {
        Loaded {
            net: m.net,
            weights: Some(m.weights),
            skipped: vec![],
            source,
            quant: m.quant,
            metrics: m.metrics,
            acts: Default::default(),
            weights_q: Default::default(),
            digest: Some(digest.hex()),
        }
    }
}

/// Loads a shipped trained model or a zoo model by name, a model description (`.toml`, the
/// project's own format) or an `.onnx` file.
pub fn load(spec: &str, skip_unsupported: bool) -> Result<Loaded, WorkloadError> {
    if let (Some(m), Some(digest)) = (train::shipped(spec), train::shipped_digest(spec)) {
        return Ok(Loaded::from_model(m?, "shipped".into(), digest));
    }
    if spec.ends_with(".toml") {
        let (m, digest) = Model::read_digest(std::path::Path::new(spec))?;
        return Ok(Loaded::from_model(m, spec.to_owned(), digest));
    }
    if spec.ends_with(".onnx") {
        let bytes = std::fs::read(spec).map_err(|e| WorkloadError::File {
            path: spec.to_owned(),
            why: format!("cannot read: {e}"),
        })?;
        let im = onnx::import(&bytes, spec, skip_unsupported)?;
        return Ok(Loaded {
            net: im.net,
            weights: Some(im.weights),
            skipped: im.skipped,
            source: spec.to_owned(),
            quant: None,
            metrics: Default::default(),
            acts: im.acts,
            weights_q: im.weights_q,
            digest: Some(crate::digest::Fnv::default().part(&bytes).hex()),
        });
    }
    if spec.contains('.') || spec.contains('/') {
        return Err(WorkloadError::File {
            path: spec.to_owned(),
            why: "unknown model file type: model files are .toml (cramulator's own format) or \
                  .onnx (or give a zoo name, see `cramulator models`)"
                .into(),
        });
    }
    Ok(Loaded {
        net: zoo::model(spec)?,
        weights: None,
        skipped: vec![],
        source: "zoo".into(),
        quant: None,
        metrics: Default::default(),
        acts: Default::default(),
        weights_q: Default::default(),
        digest: None,
    })
}

/// One row of `inspect`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LayerSummary {
    /// Layer name.
    pub name: String,
    /// Op name.
    pub op: &'static str,
    /// Names of the layers it reads.
    pub inputs: Vec<String>,
    /// Output shape.
    pub out: Shape,
    /// Multiply-accumulates.
    pub macs: u64,
    /// Parameters.
    pub params: u64,
    /// Bit-widths, if compressed.
    pub bits: Option<Bits>,
    /// Fraction of zero weights, if the weights are known element by element.
    pub sparsity: Option<f64>,
}

/// The per-layer summary of a network (sparsity from the weight codes if quantized, else
/// from the float weights).
pub fn summary(
    net: &Network,
    weights: Option<&Weights>,
    quant: Option<&Quant>,
) -> Result<Vec<LayerSummary>, WorkloadError> {
    let stats = net.stats()?;
    Ok(net
        .layers
        .iter()
        .zip(&stats)
        .map(|(l, s)| LayerSummary {
            name: l.name.clone(),
            op: l.op.name(),
            inputs: l
                .inputs
                .iter()
                .map(|&i| net.layers[i].name.clone())
                .collect(),
            out: s.out,
            macs: s.macs,
            params: s.params,
            bits: l.bits,
            sparsity: match quant.and_then(|q| q.weights.get(&l.name)) {
                Some(q) => Some(q.sparsity()),
                None => weights
                    .and_then(|w| w.get(&l.name, "weight"))
                    .and_then(|t| match &t.data {
                        Data::F32(v) if !v.is_empty() => {
                            Some(v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64)
                        }
                        _ => None,
                    }),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_names_and_bad_paths() {
        let l = load("lenet5", false).unwrap();
        assert_eq!(l.source, "zoo");
        let rows = summary(&l.net, None, None).unwrap();
        assert_eq!(rows.iter().map(|r| r.macs).sum::<u64>(), 416_520);
        assert_eq!(rows[1].inputs, ["input"]);
        let e = load("model.h5", false).unwrap_err().to_string();
        assert!(e.contains("model.h5") && e.contains(".onnx"), "{e}");
        let e = load("missing/file.onnx", false).unwrap_err().to_string();
        assert!(
            e.contains("missing/file.onnx") && e.contains("cannot read"),
            "{e}"
        );
    }
}
