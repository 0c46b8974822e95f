//! `cramulator map [CONFIG] [--layer N]`: where a run configuration's network lands on the
//! chip — per layer its strategy, programs, subarray runs and utilization; for one layer,
//! which subarrays and lanes each program runs on, what every column holds, and what moves
//! where before each segment (docs/model.md §2.8, §8).

use crate::cli::common::ConfigArgs;
use crate::io::render::{Format, MapView, render};

use clap::Args;

use crate::cli::{Outcome, emit};
use crate::error::Error;

/// Arguments of `cramulator map`.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// The configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// One layer in detail: its index or name.
    #[arg(long)]
    pub layer: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// `cramulator map`.
pub fn map(a: &MapArgs) -> Result<Outcome, Error> {
    let (config, _) = a.config.load()?;
    let report = crate::experiment::map::map(&config, a.layer.as_deref(), &a.config.options())?;
    let view = MapView {
        report: &report,
        detail: a.layer.is_some(),
    };
    emit(&render(&view, Format::of_flags(a.json, false))?)?;
    Ok(Outcome::Success)
}
