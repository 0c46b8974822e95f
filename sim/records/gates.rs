//! The record of `gates`: a device's gate library on an array, with each gate's IR-drop
//! limit.

use cram_arch::{GateLibrary, IrLimit, Org};
use serde::Serialize;

/// `gates --json`: the gate library (its fields at the top level), the array and the most
/// rows one driven line may hold for each gate.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GateTable {
    /// The device's derived gates.
    #[serde(flatten)]
    pub library: GateLibrary,
    /// Array preset (or file) name.
    pub array: String,
    /// Wire resistance per cell along a line, Ω.
    pub r_wire_ohm_per_cell: f64,
    /// Lanes per driven line segment.
    pub lanes_per_line_segment: u32,
    /// Per gate, the most rows a driven line may hold before the far row drops out of the
    /// gate's window.
    pub ir_max_rows: Vec<IrLimit>,
    /// The array (for the text table; not serialized).
    #[serde(skip)]
    pub org: Org,
}
