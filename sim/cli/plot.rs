//! `cramulator plot KIND INPUT`: a figure and the CSV it was drawn from.

use crate::cli::{Outcome, emit};
use crate::error::Error;
use crate::io::plot::*;
use clap::{Args, ValueEnum};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::PathBuf;

/// Figure kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlotKind {
    /// Per-layer energy of CRAM and each baseline (log scale); input: a run folder.
    Layers,
    /// Energy per inference split into compute, data movement and static, per machine;
    /// input: a run folder.
    Breakdown,
    /// A sweep metric against one axis, one series per value of the other axes; input: a
    /// merged sweep folder.
    Line,
    /// Energy against latency of every sweep point, marker area ∝ chip area, Pareto front
    /// highlighted; input: a merged sweep folder.
    Pareto,
    /// A sweep metric over two axes; input: a merged sweep folder.
    Heatmap,
}

/// Arguments of `cramulator plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// What to draw.
    #[arg(value_enum)]
    pub kind: PlotKind,
    /// A run folder (`results/<run-id>/`) or a merged sweep folder.
    pub input: PathBuf,
    /// Output file, `.svg` or `.png` [default: INPUT/<kind>.svg]; the CSV drawn from is
    /// written beside it with the extension `.csv`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Sweep axis on x (line, heatmap) [default: the first axis].
    #[arg(long)]
    pub x: Option<String>,
    /// Sweep axis on y (heatmap) [default: the second axis].
    #[arg(long)]
    pub y: Option<String>,
    /// Metric column of results.csv (line, heatmap) [default: cram_energy_pj].
    #[arg(long, default_value = "cram_energy_pj")]
    pub metric: String,
    /// Title [default: one made from the input].
    #[arg(long)]
    pub title: Option<String>,
}

/// `cramulator plot`.
pub fn plot(a: &PlotArgs) -> Result<Outcome, Error> {
    let kind = a.kind.to_possible_value().expect("no skipped kinds");
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| a.input.join(format!("{}.svg", kind.get_name())));
    let png = match out.extension().and_then(|e| e.to_str()) {
        Some("svg") => false,
        Some("png") => true,
        _ => {
            return Err(Error::usage(format!(
                "--out {}: the file name must end in .svg or .png",
                out.display()
            )));
        }
    };
    let sweep = SweepPlot {
        input: a.input.clone(),
        x: a.x.clone(),
        y: a.y.clone(),
        metric: a.metric.clone(),
        memory: crate::cli::guard::limits().memory,
    };
    let fig = match a.kind {
        PlotKind::Layers => layers(&a.input, sweep.memory)?,
        PlotKind::Breakdown => breakdown(&a.input, sweep.memory)?,
        PlotKind::Line => line(&sweep)?,
        PlotKind::Pareto => pareto(&sweep)?,
        PlotKind::Heatmap => heatmap(&sweep)?,
    };
    let fig = match &a.title {
        Some(t) => Figure {
            title: t.clone(),
            ..fig
        },
        None => fig,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::usage(format!("'{}': {e}", dir.display())))?;
    }
    let csv_path = out.with_extension("csv");
    crate::io::atomic::write(&csv_path, &fig.csv)?;
    register_font(FAMILY, FontStyle::Normal, FONT)
        .map_err(|_| Error::usage("the vendored font does not load"))?;
    // Drawn into a temporary file, then renamed: a reader never sees half a figure.
    crate::io::atomic::write_by_path(&out, if png { "png" } else { "svg" }, |tmp| {
        if png {
            draw(BitMapBackend::new(tmp, SIZE).into_drawing_area(), &fig)
        } else {
            draw(SVGBackend::new(tmp, SIZE).into_drawing_area(), &fig)
        }
    })?;
    emit(&format!(
        "{} → {} (data: {})\n",
        fig.title,
        out.display(),
        csv_path.display()
    ))?;
    Ok(Outcome::Success)
}
