//! The record of `simulate`: the checked run, the fault sweep rows and the dense comparison.

use crate::model::map::{Mode, Strategy};
use crate::records::map::LayerReport;
use serde::Serialize;

/// One row of the accuracy-vs-error-rate table.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FaultRow {
    /// Gate error probability.
    pub error_rate: f64,
    /// Gate-output flips injected.
    pub flips: u64,
    /// Correct predictions (labelled inputs).
    pub correct: Option<usize>,
    /// Predictions equal to the fault-free golden executor's.
    pub agree_with_golden: usize,
}

/// The report of `simulate`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SimulateReport {
    /// Network name.
    pub model: String,
    /// Device preset (or inline label).
    pub device: String,
    /// Array preset (or inline label).
    pub array: String,
    /// Functional or analytical.
    pub mode: Mode,
    /// Images run.
    pub images: usize,
    /// CRAM energy per image, pJ.
    pub energy_pj_per_image: f64,
    /// Cycles of the whole batch.
    pub cycles: u64,
    /// Images whose final codes equal the golden executor's (functional).
    pub bit_exact_images: Option<usize>,
    /// Images classified correctly (labelled inputs only).
    pub correct: Option<usize>,
    /// Per-layer cost and placement.
    pub layers: Vec<LayerReport>,
    /// The fault sweep (`--error-rates`).
    pub faults: Vec<FaultRow>,
    /// A compressed zoo network against its dense int8 version, per strategy (analytical).
    pub versus_dense_int8: Vec<Versus>,
    /// Gates the IR drop keeps from switching in the far rows (run under
    /// `--allow-ir-violation`); empty when every gate switches.
    pub ir_violations: Vec<String>,
    /// Every image bit-exact (functional mode); not serialized.
    #[serde(skip)]
    pub ok: bool,
}

/// One strategy's cost on the compressed network and on its dense int8 version (same
/// network, activations and seed; weights not pruned, 8-bit), analytical, per image.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Versus {
    /// Strategy used for every weighted layer.
    pub strategy: Strategy,
    /// Energy of the compressed network, pJ.
    pub energy_pj: f64,
    /// Energy of the dense int8 network, pJ.
    pub dense_int8_energy_pj: f64,
    /// Latency of the compressed network, cycles.
    pub cycles: u64,
    /// Latency of the dense int8 network, cycles.
    pub dense_int8_cycles: u64,
    /// Per weighted layer: (name, energy pJ, dense int8 energy pJ, cycles, dense cycles).
    pub layers: Vec<(String, f64, f64, u64, u64)>,
}
