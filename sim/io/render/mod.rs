//! Records rendered for a person: text tables and Markdown, one module per command, behind
//! one trait so a command prints any record in any format through one call.

use serde::Serialize;

use crate::error::Error;
use crate::records::{
    CalibrationReport, GateTable, InspectReport, KernelRunReport, MapReport, RunReport,
    SimulateReport, Trained, ValidationReport, ZooEntry, to_json,
};

pub mod gates;
pub mod kernel;
pub mod map;
pub mod models;
pub mod run;
pub mod simulate;
pub mod sweep;
pub mod validate;

/// How a record reads for a person.
pub trait Render: Serialize {
    /// Plain text for a terminal.
    fn text(&self) -> String;

    /// A Markdown document, for the records that have one.
    fn markdown(&self) -> Option<String> {
        None
    }
}

/// The formats a command prints a record in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// [`Render::text`].
    Text,
    /// The record's JSON ([`to_json`]).
    Json,
    /// [`Render::markdown`].
    Markdown,
}

impl Format {
    /// The format of the usual `--json` and `--markdown` flags (text when neither is set).
    pub fn of_flags(json: bool, markdown: bool) -> Format {
        match (json, markdown) {
            (true, _) => Format::Json,
            (false, true) => Format::Markdown,
            (false, false) => Format::Text,
        }
    }
}

/// `record` in `format`.
pub fn render<R: Render>(record: &R, format: Format) -> Result<String, Error> {
    match format {
        Format::Text => Ok(record.text()),
        Format::Json => Ok(to_json(record)),
        Format::Markdown => record
            .markdown()
            .ok_or_else(|| Error::usage("--markdown: this command prints text or JSON only")),
    }
}

impl Render for Vec<ZooEntry> {
    fn text(&self) -> String {
        models::zoo(self)
    }
}

impl Render for InspectReport {
    fn text(&self) -> String {
        models::inspect(self)
    }
}

impl Render for Vec<Trained> {
    fn text(&self) -> String {
        models::trained(self)
    }
}

impl Render for CalibrationReport {
    fn text(&self) -> String {
        models::calibration(self)
    }
}

impl Render for SimulateReport {
    fn text(&self) -> String {
        simulate::text(self)
    }
}

impl Render for KernelRunReport {
    fn text(&self) -> String {
        kernel::kernel_text(self)
    }
}

impl Render for ValidationReport {
    fn text(&self) -> String {
        validate::text(self)
    }

    fn markdown(&self) -> Option<String> {
        Some(validate::markdown(self))
    }
}

impl Render for GateTable {
    fn text(&self) -> String {
        gates::gate_table(&self.library, &self.org)
    }
}

/// A placement report as `map` shows it: the summary of every layer, or one layer in
/// detail. Its JSON is the report's.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct MapView<'a> {
    /// The report.
    pub report: &'a MapReport,
    /// One layer in detail (`map --layer`).
    #[serde(skip)]
    pub detail: bool,
}

impl Render for MapView<'_> {
    fn text(&self) -> String {
        if self.detail {
            map::detail(self.report)
        } else {
            map::summary(self.report)
        }
    }
}

/// A run's report with the folder it was written to (the table names it). Its JSON is
/// the report's.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct RunView<'a> {
    /// The report.
    pub report: &'a RunReport,
    /// Where the run folder was written.
    #[serde(skip)]
    pub dir: &'a std::path::Path,
}

impl Render for RunView<'_> {
    fn text(&self) -> String {
        run::table(self.report, self.dir)
    }
}
