//! `cramulator run [CONFIG]`: runs the main job and writes `results/<run-id>/`.

use crate::cli::common::ConfigArgs;
use crate::cli::{Outcome, emit};
use crate::error::Error;
use crate::io::render::{Format, RunView, render};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `cramulator run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Folder under which `<run-id>/` is written.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Print report.json instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the run's HTML report, `<run-id>/report.html` (`cramulator report`).
    #[arg(long)]
    pub html: bool,
}

/// `cramulator run`.
pub fn run(a: &RunArgs) -> Result<Outcome, Error> {
    let (config, provenance) = a.config.load()?;
    let options = a.config.options();
    let record = crate::experiment::run::run(&config, &provenance, &options)?;
    let dir = crate::io::atomic::write_folder(&a.out, &record.manifest.run_id, &record.files()?)?;
    let view = RunView {
        report: &record.report,
        dir: &dir,
    };
    emit(&render(&view, Format::of_flags(a.json, false))?)?;
    if a.html {
        let page = crate::cli::report::write(&dir, &dir.join("report.html"))?;
        if !a.json {
            emit(&format!("report: {}\n", page.display()))?;
        }
    }
    Ok(if record.ok {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}
