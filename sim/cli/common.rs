//! Shared plumbing of the commands: outcomes, printing, and the argument groups.

use crate::error::Error;
use crate::model::kernels::GateSet;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

use crate::experiment::config::Config;
use crate::experiment::options::Options;
use crate::experiment::run::Provenance;
use std::io::Write as _;

/// Gate set on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateSetArg {
    /// Majority-based (MAJ3/MAJ5 full adder).
    Maj,
    /// NAND-based (NOT, NAND, AND only).
    Nand,
    /// NOT and NAND only (AND as NOT of NAND).
    NandNot,
}

impl From<GateSetArg> for GateSet {
    fn from(g: GateSetArg) -> Self {
        match g {
            GateSetArg::Maj => GateSet::Maj,
            GateSetArg::Nand => GateSet::Nand,
            GateSetArg::NandNot => GateSet::NandNot,
        }
    }
}

/// What a command ended with when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out.
    Success,
    /// The command ran but a check failed (e.g. a lane mismatched).
    CheckFailed,
    /// A sweep's results are incomplete (points missing or repeated; exit 3).
    Incomplete,
    /// Stopped by SIGINT with finished work kept (exit 130).
    Interrupted,
}

/// Writes `text` to stdout; a closed pipe is not an error.
pub fn emit(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Execution mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Execute every lane bit by bit and check it; data-dependent energy.
    Functional,
    /// Count the op stream without values: counts, cycles, mean and worst energy.
    Analytical,
}

/// The arguments of every command that reads a run configuration (`run`, `map`): the
/// configuration, its overrides, the mode, the IR-drop override and the threads.
#[derive(Debug, Args)]
pub struct ConfigArgs {
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
    /// Run even if the IR drop along a line segment leaves far rows outside a gate's window
    /// (sets `cram.allow_ir_violation`; the report lists the violations).
    #[arg(long)]
    pub allow_ir_violation: bool,
    /// Worker threads: 0 = one per core [default: SLURM_CPUS_PER_TASK, else one per core].
    /// Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl ConfigArgs {
    /// The `--set` overrides, then those the flags stand for (`--allow-ir-violation`,
    /// `--mode`), in the order they apply.
    pub fn overrides(&self) -> Vec<String> {
        let mut sets = self.set.clone();
        if self.allow_ir_violation {
            sets.push("cram.allow_ir_violation=true".to_owned());
        }
        if let Some(m) = self.mode {
            sets.push(format!(
                "run.mode={}",
                match m {
                    ModeArg::Functional => "functional",
                    ModeArg::Analytical => "analytical",
                }
            ));
        }
        sets
    }

    /// The configuration, and where it came from.
    pub fn load(&self) -> Result<(Config, Provenance), Error> {
        let sets = self.overrides();
        let config = Config::load_with(self.config.as_deref(), &sets)?;
        let provenance = Provenance {
            config_file: self.config.as_ref().map(|p| p.display().to_string()),
            overrides: sets,
        };
        Ok((config, provenance))
    }

    /// The options: `--threads`, SIGINT and `--max-memory`.
    pub fn options(&self) -> Options {
        options(self.threads)
    }
}

/// Options of a command run with `threads` (`--threads`), SIGINT as its stop flag and
/// `--max-memory` as its memory limit.
pub fn options(threads: Option<usize>) -> Options {
    Options {
        threads,
        limits: crate::cli::guard::limits(),
    }
}
