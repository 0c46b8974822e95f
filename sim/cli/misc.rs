//! `cramulator calibrate`, `schema` and `config defaults`.

use crate::cli::common::*;
use crate::error::Error;
use crate::io::render::{Format, render};
use clap::{Args, Subcommand};
use cram_arch::presets;
use serde::Serialize;

/// Arguments of `cramulator calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `cramulator schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Write `<name>.schema.json` files into this folder instead of printing them.
    #[arg(long)]
    pub write: Option<std::path::PathBuf>,
}

/// `cramulator config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the fully defaulted configuration (device and array) as TOML.
    Defaults {
        /// Device preset or TOML file.
        #[arg(long, default_value = "stt-projected")]
        device: String,
        /// Array preset or TOML file.
        #[arg(long, default_value = "cram-1k")]
        array: String,
    },
}

/// `cramulator calibrate`.
pub fn calibrate(a: &CalibrateArgs) -> Result<Outcome, Error> {
    let report = crate::experiment::calibrate::report()?;
    emit(&render(&report, Format::of_flags(a.json, false))?)?;
    Ok(if report.within_band() {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// `cramulator schema`.
pub fn schema(a: &SchemaArgs) -> Result<Outcome, Error> {
    let schemas = crate::records::schemas();
    match &a.write {
        Some(dir) => {
            if dir.exists() && !dir.is_dir() {
                return Err(Error::usage(format!(
                    "--write '{}': is a file, not a folder; give the folder the \
                     <name>.schema.json files go into",
                    dir.display()
                )));
            }
            let io = |p: &std::path::Path, e: std::io::Error| {
                Error::usage(format!("--write '{}': {e}", p.display()))
            };
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            for (name, text) in schemas {
                let p = dir.join(name);
                crate::io::atomic::write(&p, text.as_bytes())?;
            }
        }
        None => {
            for (name, text) in schemas {
                emit(&format!("// {name}\n{text}"))?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// `cramulator config defaults`.
pub fn config_defaults(device: &str, array: &str) -> Result<Outcome, Error> {
    #[derive(Serialize)]
    struct Resolved<'a> {
        device: &'a cram_arch::DeviceParams,
        array: &'a cram_arch::OrgParams,
    }
    let device = presets::device(device).map_err(Error::from)?;
    let org = presets::array(array).map_err(Error::from)?;
    let body = toml::to_string(&Resolved {
        device: &device.params,
        array: &org.params,
    })
    .expect("params serialize to TOML");
    emit(&format!(
        "# cramulator configuration with every field filled in (device {}, array {}).\n\
         # Field meanings and units: arch/src/device.rs and arch/src/org.rs.\n\n{body}",
        device.params.name, org.params.name
    ))?;
    Ok(Outcome::Success)
}
