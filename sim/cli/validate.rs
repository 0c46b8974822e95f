//! `cramulator validate`: the paper-validation suite.

use crate::cli::{Outcome, emit, to_json};
use crate::error::Error;
use crate::experiment::validate::*;
use crate::io::render::validate::*;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `cramulator validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Run only this group (repeatable; default: every group).
    #[arg(long, value_enum)]
    pub group: Vec<Group>,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the report as a Markdown document (docs/validation.md is this output).
    #[arg(long)]
    pub markdown: bool,
    /// Read the paper files from this folder instead of the shipped configs/papers/.
    #[arg(long)]
    pub papers: Option<PathBuf>,
}

/// `cramulator validate`.
pub fn validate(a: &ValidateArgs) -> Result<Outcome, Error> {
    let mut groups = if a.group.is_empty() {
        Group::ALL.to_vec()
    } else {
        a.group.clone()
    };
    groups.sort();
    groups.dedup();
    let report = report(&groups, a.papers.as_deref(), crate::cli::guard::limits())?;
    emit(&if a.json {
        to_json(&report)
    } else if a.markdown {
        markdown(&report)
    } else {
        text(&report)
    })?;
    Ok(if report.passed {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}
