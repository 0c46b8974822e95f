//! The record of `calibrate`: each measured system against the model of it, and each
//! published MRAM macro against the model of a CRAM subarray's read.

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

/// A published STT-MRAM macro's read energy against the model of one row read of a CRAM
/// subarray at the macro's node and access width (docs/model.md §1.1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MacroPoint {
    /// Short name.
    pub name: String,
    /// The published macro.
    pub system: String,
    /// Where its number comes from.
    pub source: String,
    /// Array preset the model reads from (at the macro's node and access width).
    pub array: String,
    /// Process node, nm.
    pub node_nm: f64,
    /// Bits read per access.
    pub access_bits: u32,
    /// Published read energy, pJ per bit.
    pub measured_pj_per_bit: f64,
    /// Model read energy, pJ per bit.
    pub model_pj_per_bit: f64,
    /// Of which sensing, pJ per bit.
    pub sense_pj_per_bit: f64,
    /// Of which the access's decode, pJ per bit.
    pub decode_pj_per_bit: f64,
    /// model / measured.
    pub ratio: f64,
    /// Assumptions between the publication and the model.
    pub assumptions: Vec<String>,
}

impl MacroPoint {
    /// Whether model ÷ measured is within [`CalibrationPoint::BAND`].
    pub fn within_band(&self) -> bool {
        CalibrationPoint::BAND.contains(&self.ratio)
    }
}

/// `calibrate`: the baselines' measured systems and the published MRAM macros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalibrationReport {
    /// Measured systems against the baseline presets that model them.
    pub baselines: Vec<CalibrationPoint>,
    /// Published MRAM macros against the CRAM periphery model.
    pub macros: Vec<MacroPoint>,
}

impl CalibrationReport {
    /// Whether every point is within [`CalibrationPoint::BAND`].
    pub fn within_band(&self) -> bool {
        self.baselines.iter().all(CalibrationPoint::within_band)
            && self.macros.iter().all(MacroPoint::within_band)
    }
}
