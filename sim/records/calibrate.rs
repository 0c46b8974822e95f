//! The record of `calibrate`: each measured system against the model of it.

use serde::{Deserialize, Serialize};

/// One measured system against the model of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalibrationPoint {
    /// Short name.
    pub name: String,
    /// The measured system and workload.
    pub system: String,
    /// Where the measurement comes from.
    pub source: String,
    /// Baseline preset that models it.
    pub preset: String,
    /// Zoo network run.
    pub model: String,
    /// Weight and activation bits.
    pub bits: u32,
    /// Inferences sharing each weight fetch.
    pub batch: u32,
    /// What the energy covers (chip only, board, wall).
    pub scope: String,
    /// Measured energy per inference, mJ.
    pub measured_mj: f64,
    /// Model energy per inference over the same scope, mJ.
    pub model_mj: f64,
    /// model / measured.
    pub ratio: f64,
    /// Measured time per inference (1 / throughput), ms.
    pub measured_ms: f64,
    /// Model time per inference, ms.
    pub model_ms: f64,
    /// Assumptions between the measurement and the model.
    pub assumptions: Vec<String>,
}

impl CalibrationPoint {
    /// The band model ÷ measured must fall in for the calibration to hold.
    pub const BAND: std::ops::RangeInclusive<f64> = 0.5..=2.0;

    /// Whether model ÷ measured is within [`CalibrationPoint::BAND`].
    pub fn within_band(&self) -> bool {
        Self::BAND.contains(&self.ratio)
    }
}
