//! `cramulator map [CONFIG] [--layer N]`: where a run configuration's network lands on the
//! chip — per layer its strategy, programs, subarray runs and utilization; for one layer,
//! which subarrays and lanes each program runs on, what every column holds, and what moves
//! where before each segment (docs/model.md §2.8, §8).

use crate::io::render::map::*;
use crate::records::*;
use std::path::Path;

use clap::Args;

use crate::cli::{Outcome, emit, to_json};
use crate::error::Error;
use crate::experiment::config::{Config, Resolved};
use crate::model::map::place::place;
use crate::model::map::{Choice, Objective};

/// Arguments of `cramulator map`.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// Run configuration (TOML: [cram], [workload], [mapping], [run]); without it, the
    /// built-in default (digits-mlp-int4 on stt-projected, cram-1k).
    pub config: Option<String>,
    /// One layer in detail: its index or name.
    #[arg(long)]
    pub layer: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Place the network even if the IR drop along a line segment leaves far rows outside a
    /// gate's window (the report lists the violations).
    #[arg(long)]
    pub allow_ir_violation: bool,
}

/// `cramulator map`.
pub fn map(a: &MapArgs) -> Result<Outcome, Error> {
    let sets: Vec<String> = if a.allow_ir_violation {
        vec!["cram.allow_ir_violation=true".to_owned()]
    } else {
        Vec::new()
    };
    let config = Config::load_with(a.config.as_deref().map(Path::new), &sets)?;
    let Resolved {
        prog,
        hw,
        choice,
        ir,
        ..
    } = config.resolve(crate::cli::guard::limits().memory)?;
    let layers = &prog.network().layers;
    let which: Vec<usize> = match &a.layer {
        None => (0..layers.len()).collect(),
        Some(s) => {
            let found = match s.parse::<usize>() {
                Ok(i) => (i < layers.len()).then_some(i),
                Err(_) => layers.iter().position(|l| l.name == *s),
            };
            vec![found.ok_or_else(|| {
                Error::usage(format!(
                    "--layer {s}: network '{}' has layers 0..={} ({})",
                    prog.network().name,
                    layers.len() - 1,
                    layers
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?]
        }
    };
    let placed = which
        .iter()
        .map(|&i| {
            if crate::cli::guard::interrupted() {
                return Err(crate::error::Error::Interrupted);
            }
            place(&prog, i, &hw, choice)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let p = &hw.org.params;
    let report = MapReport {
        model: &prog.network().name,
        device: &hw.lib.device.params.name,
        array: &p.name,
        lanes_per_subarray: p.lanes_per_subarray,
        cols_per_subarray: p.cols_per_subarray,
        subarrays: hw.org.subarrays(),
        strategy: match choice {
            Choice::Force(s) => s.name().to_owned(),
            Choice::Auto(o) => format!(
                "auto ({})",
                match o {
                    Objective::Energy => "energy",
                    Objective::Latency => "latency",
                    Objective::Edp => "edp",
                }
            ),
        },
        ir_violations: ir.violations(),
        layers: placed,
    };
    emit(&if a.json {
        to_json(&report)
    } else if a.layer.is_some() {
        detail(&report)
    } else {
        summary(&report)
    })?;
    Ok(Outcome::Success)
}
