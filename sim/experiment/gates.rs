//! The gates experiment: a device's gate library derived from its physics, on an array.

use cram_arch::{GateLibrary, IrLimit, ir, presets};

use crate::error::Error;
use crate::records::GateTable;

/// The gate table of `device` (preset or file) on `array`: every gate derived from the
/// device physics and its IR-drop row limit on the array's lines.
///
/// ```
/// let t = cramulator::experiment::gates::gates("stt-today", "cram-1k")?;
/// assert_eq!(t.ir_max_rows.len(), t.library.gates.len());
/// # Ok::<(), cramulator::error::Error>(())
/// ```
pub fn gates(device: &str, array: &str) -> Result<GateTable, Error> {
    let device = presets::device(device)?;
    let org = presets::array(array)?;
    let library = GateLibrary::derive(&device);
    let r_w = org.params.peripherals.r_wire_ohm_per_cell;
    let ir_max_rows: Vec<IrLimit> = library.gates.iter().map(|g| ir::max_rows(g, r_w)).collect();
    Ok(GateTable {
        library,
        array: org.params.name.clone(),
        r_wire_ohm_per_cell: r_w,
        lanes_per_line_segment: org.params.peripherals.lanes_per_line_segment,
        ir_max_rows,
        org,
    })
}
