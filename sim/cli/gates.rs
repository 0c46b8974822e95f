//! `cramulator gates`: the gate table of a device.

use crate::cli::common::*;
use crate::error::Error;
use crate::io::render::{Format, render};
use clap::Args;

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
    let table = crate::experiment::gates::gates(&a.device, &a.array)?;
    emit(&render(&table, Format::of_flags(a.json, false))?)?;
    Ok(Outcome::Success)
}
