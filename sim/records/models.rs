//! The records of `models`, `inspect` and `train-digits`.

use cram_workloads::load::LayerSummary;
use serde::Serialize;

/// One zoo entry with its totals.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ZooEntry {
    /// Zoo name.
    pub name: &'static str,
    /// What the network is.
    pub description: &'static str,
    /// Input shape, C×H×W.
    pub input: String,
    /// Layers after the input.
    pub layers: usize,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Parameters.
    pub params: u64,
}

/// `inspect` as JSON.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct InspectReport {
    /// The model as named (zoo name or file).
    pub model: String,
    /// Where it came from (zoo, project file, ONNX).
    pub source: String,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Parameters.
    pub params: u64,
    /// Every layer with its shapes and counts.
    pub layers: Vec<LayerSummary>,
    /// Operators skipped at import (`--skip-unsupported`).
    pub skipped: Vec<String>,
    /// Metrics recorded in the model file.
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// One trained model's record.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Trained {
    /// Model name.
    pub model: String,
    /// The description written.
    pub file: String,
    /// Held-out images classified correctly.
    pub held_out_correct: f64,
    /// Held-out images.
    pub held_out_images: f64,
    /// held_out_correct / held_out_images.
    pub held_out_accuracy: f64,
}
