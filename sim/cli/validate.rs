//! `cramulator validate`: the paper-validation suite.

use crate::cli::{Outcome, emit};
use crate::error::Error;
use crate::experiment::validate::*;
use crate::io::render::{Format, render};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `cramulator validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Run only this group (repeatable; default: every group).
    #[arg(long, value_parser = group_parser())]
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

/// `--group NAME`: every group by name, with its description in the help.
fn group_parser() -> impl clap::builder::TypedValueParser<Value = Group> {
    use clap::builder::TypedValueParser as _;
    let values =
        Group::ALL.map(|g| clap::builder::PossibleValue::new(g.name()).help(g.description()));
    clap::builder::PossibleValuesParser::new(values).map(|name| {
        Group::ALL
            .into_iter()
            .find(|g| g.name() == name)
            .expect("the parser accepts listed names only")
    })
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
    let report = report(
        &groups,
        a.papers.as_deref(),
        &crate::cli::common::options(None),
    )?;
    emit(&render(&report, Format::of_flags(a.json, a.markdown))?)?;
    Ok(if report.passed {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}
