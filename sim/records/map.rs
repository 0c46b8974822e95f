//! The record of `map`: every layer placed.

use crate::model::map::place::LayerPlacement;
use serde::Serialize;

/// The placement report.
#[derive(Debug, Serialize)]
pub struct MapReport {
    /// Network name.
    pub model: String,
    /// Device preset (or inline label).
    pub device: String,
    /// Array preset (or inline label).
    pub array: String,
    /// Lanes (rows) per subarray.
    pub lanes_per_subarray: u32,
    /// Columns per subarray.
    pub cols_per_subarray: u32,
    /// Subarrays on the chip.
    pub subarrays: u64,
    /// The strategy choice in force.
    pub strategy: String,
    /// Gates the IR drop keeps from switching in the far rows (under
    /// `--allow-ir-violation`); empty when every gate switches.
    pub ir_violations: Vec<String>,
    /// Every layer placed.
    pub layers: Vec<LayerPlacement>,
}
