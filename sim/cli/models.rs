//! The `models` and `inspect` commands: the zoo with its totals, and one network layer by
//! layer (shapes, MACs, parameters, bit-widths, sparsity).

use clap::Args;

use crate::cli::common::*;
use crate::error::Error;
use crate::io::render::{Format, render};

/// Arguments of `cramulator models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `cramulator inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A zoo or shipped model (see `cramulator models`), a model description (`.toml`, with
    /// its safetensors weights beside it) or an ONNX file.
    pub model: String,
    /// List and skip ONNX nodes of unsupported op types (each passes its first input through)
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `cramulator train-digits`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Folder to write `<model>.toml` and `<model>.safetensors` into (created if missing).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `cramulator models`.
pub fn models(a: &ModelsArgs) -> Result<Outcome, Error> {
    let rows = crate::experiment::models::zoo()?;
    emit(&render(&rows, Format::of_flags(a.json, false))?)?;
    Ok(Outcome::Success)
}

/// `cramulator inspect`.
pub fn inspect(a: &InspectArgs) -> Result<Outcome, Error> {
    let report = crate::experiment::models::inspect(&a.model, a.skip_unsupported, &options(None))?;
    emit(&render(&report, Format::of_flags(a.json, false))?)?;
    Ok(Outcome::Success)
}

/// `cramulator train-digits`.
pub fn train_digits(a: &TrainArgs) -> Result<Outcome, Error> {
    std::fs::create_dir_all(&a.out).map_err(|e| {
        Error::from(cram_workloads::WorkloadError::File {
            path: a.out.display().to_string(),
            why: format!("cannot create the folder: {e}"),
        })
    })?;
    let trained = crate::experiment::models::train_digits(&a.out, &options(None))?;
    for (file, bytes) in &trained.files {
        crate::io::atomic::write(file, bytes)?;
    }
    emit(&render(&trained.models, Format::of_flags(a.json, false))?)?;
    Ok(Outcome::Success)
}
