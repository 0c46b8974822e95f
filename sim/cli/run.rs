//! `cramulator run [CONFIG]`: runs the main job and writes `results/<run-id>/`.

use crate::cli::{ModeArg, Outcome, emit, to_json};
use crate::error::Error;
use crate::experiment::config::Config;
use crate::experiment::run::*;
use crate::io::render::run::*;
use crate::records::{Manifest, SCHEMA_VERSION};
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `cramulator run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run configuration (TOML, see configs/). Without it: digits-mlp-int4, bit-exact on
    /// every held-out image, on stt-projected CRAM against cpu-ddr4 and nmp.
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. `--set workload.sparsity=0.5` or
    /// `--set compare.baselines=gpu-hbm2,nmp` (repeatable, applied in order).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Functional (every gate executed, outputs checked) or analytical (counted); overrides
    /// `run.mode`.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Folder under which `<run-id>/` is written.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Print report.json instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run even if the IR drop along a line segment leaves far rows outside a gate's window
    /// (sets `cram.allow_ir_violation`; the report lists the violations).
    #[arg(long)]
    pub allow_ir_violation: bool,
    /// Worker threads: 0 = one per core [default: SLURM_CPUS_PER_TASK, else one per core].
    /// Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Everything a run produced: the evaluation and its manifest.
pub(crate) struct Outputs {
    e: Evaluation,
    manifest: Manifest,
}

/// `cramulator run`.
pub fn run(a: &RunArgs) -> Result<Outcome, Error> {
    let mut sets = a.set.clone();
    if a.allow_ir_violation {
        sets.push("cram.allow_ir_violation=true".to_owned());
    }
    if let Some(m) = a.mode {
        sets.push(format!(
            "run.mode={}",
            match m {
                ModeArg::Functional => "functional",
                ModeArg::Analytical => "analytical",
            }
        ));
    }
    let config = Config::load_with(a.config.as_deref(), &sets)?;
    let pool = crate::cli::guard::pool(a.threads, "--threads")?;
    let out = pool.install(|| execute(&config, a, &sets))?;
    let dir = write_atomically(&a.out, &out)?;
    if a.json {
        emit(&to_json(&out.e.report))?;
    } else {
        emit(&table(&out.e.report, &dir))?;
    }
    Ok(if out.e.ok {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

pub(crate) fn execute(config: &Config, a: &RunArgs, sets: &[String]) -> Result<Outputs, Error> {
    let e = evaluate(config, None, crate::cli::guard::limits())?;
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        cramulator_version: env!("CARGO_PKG_VERSION").to_owned(),
        run_id: e.report.run_id.clone(),
        config_hash: e.hash.clone(),
        seed: config.run.seed,
        config_file: a.config.as_ref().map(|p| p.display().to_string()),
        overrides: sets.to_vec(),
        files: FILES.iter().map(|f| (*f).to_owned()).collect(),
    };
    Ok(Outputs { e, manifest })
}

pub(crate) const FILES: [&str; 4] = [
    "resolved.toml",
    "manifest.json",
    "report.json",
    "layers.csv",
];

/// Writes the run's files atomically as the folder `out/<run-id>`.
pub(crate) fn write_atomically(out: &Path, o: &Outputs) -> Result<PathBuf, Error> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in &o.e.rows {
        csv.serialize(r)
            .map_err(|e| Error::usage(format!("layers.csv: {e}")))?;
    }
    let csv = csv
        .into_inner()
        .map_err(|e| Error::usage(format!("layers.csv: {e}")))?;
    let files: [(&str, Vec<u8>); 4] = [
        ("resolved.toml", o.e.resolved.clone().into_bytes()),
        ("manifest.json", to_json(&o.manifest).into_bytes()),
        ("report.json", to_json(&o.e.report).into_bytes()),
        ("layers.csv", csv),
    ];
    crate::io::atomic::write_folder(out, &o.manifest.run_id, &files)
}
