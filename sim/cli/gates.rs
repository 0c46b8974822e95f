//! `cramulator gates`: the gate table of a device.

use crate::cli::common::*;
use crate::error::Error;
use crate::io::render::gates::*;
use crate::records::to_json;
use clap::Args;
use cram_arch::{GateLibrary, IrLimit, ir, presets};
use serde::Serialize;

/// Arguments of `cramulator gates`.
#[derive(Debug, Args)]
pub struct GatesArgs {
    /// Device preset (stt-today, stt-projected, she-projected) or path to a device TOML file.
    #[arg(long, default_value = "stt-projected")]
    pub device: String,
    /// Array preset or TOML file whose line resistance sets the IR-drop row limits.
    #[arg(long, default_value = "cram-1k")]
    pub array: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `cramulator gates`.
pub fn gates(a: &GatesArgs) -> Result<Outcome, Error> {
    let device = presets::device(&a.device).map_err(Error::from)?;
    let org = presets::array(&a.array).map_err(Error::from)?;
    let lib = GateLibrary::derive(&device);
    let r_w = org.params.peripherals.r_wire_ohm_per_cell;
    let ir: Vec<IrLimit> = lib.gates.iter().map(|g| ir::max_rows(g, r_w)).collect();
    emit(&if a.json {
        #[derive(Serialize)]
        struct GatesJson<'a> {
            #[serde(flatten)]
            library: &'a GateLibrary,
            array: &'a str,
            r_wire_ohm_per_cell: f64,
            lanes_per_line_segment: u32,
            ir_max_rows: &'a [IrLimit],
        }
        to_json(&GatesJson {
            library: &lib,
            array: &org.params.name,
            r_wire_ohm_per_cell: r_w,
            lanes_per_line_segment: org.params.peripherals.lanes_per_line_segment,
            ir_max_rows: &ir,
        })
    } else {
        gate_table(&lib, &org)
    })?;
    Ok(Outcome::Success)
}
