//! From a loaded model file to an integer model: a float model is compressed by the caller's
//! settings, a structure-only one (no weight values in the file) gets seeded synthetic
//! weights first, and a quantized one (ONNX QDQ, QLinear or Integer ops) keeps its file's
//! weight codes and activation formats where the file records them, and runs at the
//! bit-widths it records elsewhere, unless the caller asks for other ones. Every path says
//! what it did in an [`Origin`].

use ndarray::Array3;
use serde::{Deserialize, Serialize};

use crate::compress::{
    CompressSpec, Recorded, compress_owned, synthetic_inputs_of, synthetic_weights,
};
use crate::error::WorkloadError;
use crate::exec;
use crate::load::Loaded;
use crate::model::Model;
use crate::net::Op;
use crate::quant::{WeightMode, WeightScheme};
use crate::weights::Weights;

/// Where a model's weight values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WeightsFrom {
    /// The model file (or the shipped model).
    File,
    /// Seeded synthetic weights ([`synthetic_weights`]): a zoo network, or a model file that
    /// holds only the structure.
    Synthetic,
}

/// Who chose a model's integer codes and formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuantizedBy {
    /// The file: a quantized model run as it is.
    File,
    /// cramulator, by the `workload.*` settings (a float model, a zoo network).
    Settings,
    /// cramulator, at the bit-widths the file records (a quantized ONNX model: its weights
    /// keep the file's codes ([`Origin::file_weights`]), or are requantized symmetric per
    /// channel at each layer's recorded weight bits where the file's cannot be kept; its
    /// activations take the file's scales and zero points where it records them
    /// ([`Origin::file_formats`]), and are calibrated at the recorded activation bits
    /// elsewhere).
    RecordedBits,
}

/// What was done to a model before it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// Where the weights came from.
    pub weights_from: WeightsFrom,
    /// Who chose the codes.
    pub quantized_by: QuantizedBy,
    /// The inputs the activation ranges were calibrated on (None: the file's own formats).
    pub calibration: Option<String>,
    /// How many layers' activation formats are the file's own scales and zero points
    /// (QuantizeLinear or QLinear outputs), not calibrated; 0 unless `quantized_by` is
    /// `recorded_bits`.
    #[serde(default)]
    pub file_formats: usize,
    /// How many weighted layers run at the file's own weight codes (its integer weights,
    /// scales and zero points), not requantized; 0 unless `quantized_by` is `recorded_bits`.
    #[serde(default)]
    pub file_weights: usize,
}

/// How to prepare a model.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The compression of a float model (and of a quantized one when `explicit`).
    pub spec: CompressSpec,
    /// Whether the caller chose the compression (else a quantized model keeps its recorded
    /// bit-widths).
    pub explicit: bool,
    /// Seed of synthetic weights (and, plus one, of synthetic calibration inputs).
    pub seed: u64,
    /// The calibration inputs and what they are (None: two seeded uniform [0, 1) inputs).
    pub calibration: Option<(String, Vec<Array3<f32>>)>,
}

/// Calibration inputs a model gets when the caller gives none.
pub const SYNTHETIC_CALIBRATION_INPUTS: usize = 2;

/// What [`Origin::calibration`] says of the synthetic calibration inputs drawn with `seed`.
pub fn synthetic_calibration(seed: u64) -> String {
    format!("{SYNTHETIC_CALIBRATION_INPUTS} seeded uniform [0, 1) inputs (seed {seed})")
}

/// Whether `weights` lacks a value of some weighted or BatchNorm layer of `net` (a
/// structure-only file: missing tensors or placeholder fills).
pub fn structure_only(net: &crate::net::Network, weights: &Weights) -> bool {
    net.layers.iter().any(|l| {
        let roles: &[&str] = if matches!(l.op, Op::BatchNorm { .. }) {
            &["gamma", "beta", "mean", "var"]
        } else if matches!(l.op, Op::LayerNorm { .. }) {
            &["gamma", "beta"]
        } else if exec::weight_dims(&l.op, 0).is_some() {
            &["weight"]
        } else {
            &[]
        };
        roles
            .iter()
            .any(|r| weights.get(&l.name, r).is_none_or(|t| !t.is_dense()))
    })
}

/// The integer model of `loaded` (see the module documentation) and what was done to it.
pub fn prepare(loaded: &Loaded, s: &Settings) -> Result<(Model, Origin), WorkloadError> {
    let net = &loaded.net;
    if let (Some(quant), Some(weights)) = (&loaded.quant, &loaded.weights) {
        if s.explicit {
            return Err(WorkloadError::Network(format!(
                "model '{}' is already quantized by its file (cramulator's own format); \
                 the workload.* compression settings apply to float models, zoo networks \
                 and ONNX files",
                net.name
            )));
        }
        return Ok((
            Model {
                net: net.clone(),
                weights: weights.clone(),
                quant: Some(quant.clone()),
                metrics: loaded.metrics.clone(),
            },
            Origin {
                weights_from: WeightsFrom::File,
                quantized_by: QuantizedBy::File,
                calibration: None,
                file_formats: 0,
                file_weights: 0,
            },
        ));
    }
    let synthetic = loaded
        .weights
        .as_ref()
        .is_none_or(|w| structure_only(net, w));
    let weights = if synthetic {
        synthetic_weights(net, s.seed)?
    } else {
        loaded.weights.clone().expect("checked")
    };
    let recorded: Vec<(String, crate::net::Bits)> = net
        .layers
        .iter()
        .filter_map(|l| l.bits.map(|b| (l.name.clone(), b)))
        .collect();
    let mut spec = s.spec;
    let mut keep = Recorded::default();
    let quantized_by = if recorded.is_empty() || s.explicit {
        QuantizedBy::Settings
    } else {
        spec.act_bits = recorded.iter().map(|r| r.1.a).max().expect("not empty");
        // The file's activation scales belong to its weights, not to synthetic stand-ins.
        if !synthetic {
            keep.acts = loaded.acts.clone();
            keep.codes = loaded.weights_q.clone();
        }
        keep.weights = recorded
            .iter()
            .map(|(name, b)| {
                (
                    name.clone(),
                    WeightScheme {
                        bits: b.w,
                        mode: WeightMode::Symmetric,
                        per_channel: true,
                    },
                )
            })
            .collect();
        QuantizedBy::RecordedBits
    };
    let (what, inputs) = match &s.calibration {
        Some((what, inputs)) => (what.clone(), inputs.clone()),
        None => (
            synthetic_calibration(s.seed.wrapping_add(1)),
            synthetic_inputs_of(net, SYNTHETIC_CALIBRATION_INPUTS, s.seed.wrapping_add(1)),
        ),
    };
    let c = compress_owned(net, weights, &spec, &inputs, &keep)?;
    Ok((
        c.model,
        Origin {
            weights_from: if synthetic {
                WeightsFrom::Synthetic
            } else {
                WeightsFrom::File
            },
            quantized_by,
            calibration: Some(what),
            file_formats: c.recorded_acts.len(),
            file_weights: c.recorded_codes.len(),
        },
    ))
}
