//! `cramulator simulate MODEL`: one network, bit-exact, with faults and the dense comparison.

use crate::cli::{ModeArg, Outcome, emit, to_json};
use crate::error::Error;
use crate::experiment::config::{
    Config, CramConfig, MappingConfig, Resolved, RunSection, StrategyChoice, WorkloadConfig,
};
use crate::experiment::simulate::*;
use crate::io::render::simulate::*;
use crate::model::kernels::GateSet;
use crate::model::map::{Mode, Objective, RunOptions};
use crate::records::*;
use clap::{Args, ValueEnum};

/// Per-layer strategy on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// Chosen per layer by the cost model under `--objective`.
    Auto,
    /// Lane = output element, weights in the instruction stream.
    Const,
    /// Lane = output neuron, weights stored in cells.
    Stored,
}

/// Objective on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    /// Energy per inference.
    Energy,
    /// Latency.
    Latency,
    /// Energy × latency.
    Edp,
}

/// Arguments of `cramulator simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A quantized model: a shipped name (digits-mlp-int8, -int4, -w4a4, -binary) or an
    /// own-format `.toml` file; or a zoo network (see `cramulator models`), compressed here
    /// with seeded synthetic weights by `--weight-bits`, `--act-bits` and `--sparsity`.
    pub model: String,
    /// Weight bits of a zoo network (symmetric, per output channel).
    #[arg(long)]
    pub weight_bits: Option<u32>,
    /// Activation bits of a zoo network (unsigned affine).
    #[arg(long)]
    pub act_bits: Option<u32>,
    /// Unstructured magnitude-pruning sparsity of a zoo network's weights, in [0, 1).
    #[arg(long)]
    pub sparsity: Option<f64>,
    /// Device preset or TOML file.
    #[arg(long, default_value = "stt-projected")]
    pub device: String,
    /// Array preset or TOML file.
    #[arg(long, default_value = "cram-1k")]
    pub array: String,
    /// Gate set the programs are generated from.
    #[arg(long, default_value = "maj")]
    pub gate_set: String,
    /// Functional (every gate executed, outputs checked) or analytical (counted).
    #[arg(long, value_enum, default_value = "functional")]
    pub mode: ModeArg,
    /// Per-layer mapping strategy.
    #[arg(long, value_enum, default_value = "auto")]
    pub strategy: StrategyArg,
    /// What `--strategy auto` minimizes.
    #[arg(long, value_enum, default_value = "energy")]
    pub objective: ObjectiveArg,
    /// Images: the held-out digits for digits models (all 360 by default), else the
    /// number of seeded random inputs (default 1).
    #[arg(long)]
    pub images: Option<usize>,
    /// Gate error rates for the accuracy table (comma-separated probabilities; functional).
    #[arg(long, value_delimiter = ',')]
    pub error_rates: Vec<f64>,
    /// Seed of the fault streams and random inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Run even if the IR drop along a line segment leaves far rows outside a gate's window
    /// (the report lists the violations; results assume every gate switches).
    #[arg(long)]
    pub allow_ir_violation: bool,
    /// Worker threads: 0 = one per core [default: SLURM_CPUS_PER_TASK, else one per core].
    /// Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// `cramulator simulate`.
pub fn simulate(a: &SimulateArgs) -> Result<Outcome, Error> {
    let pool = crate::cli::guard::pool(a.threads, "--threads")?;
    pool.install(|| simulate_in(a))
}

pub(crate) fn simulate_in(a: &SimulateArgs) -> Result<Outcome, Error> {
    if let Some(p) = a.error_rates.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(Error::usage(format!(
            "--error-rates {p}: must be probabilities in [0, 1]"
        )));
    }
    let config = config(a)?;
    let mode = config.run.mode;
    if mode == Mode::Analytical && !a.error_rates.is_empty() {
        return Err(Error::usage(
            "--error-rates needs --mode functional (faults change values)",
        ));
    }
    let Resolved {
        prog,
        hw,
        choice,
        ir,
        ..
    } = config.resolve(crate::cli::guard::limits().memory)?;
    let images = Images::of(&prog, a.images, a.seed)?;
    let opts = RunOptions {
        mode,
        choice,
        error_rate: 0.0,
        seed: a.seed,
        limits: crate::cli::guard::limits(),
    };
    let checked = run_checked(&prog, &images, &hw, &opts, None)?;
    let (run, exact, correct) = (checked.run, checked.exact, checked.correct);
    let mut faults = Vec::new();
    for &p in &a.error_rates {
        let faulty = RunOptions {
            error_rate: p,
            ..opts
        };
        let r = run_checked(&prog, &images, &hw, &faulty, None)?;
        faults.push(FaultRow {
            error_rate: p,
            flips: r.run.layers.iter().map(|l| l.flips).sum(),
            correct: r.correct,
            agree_with_golden: r.agree.unwrap_or(0),
        });
    }
    // A compressed zoo network is also costed against its dense int8 version.
    let versus = if config.compressed() {
        let dense = config
            .dense_int8()
            .resolve(crate::cli::guard::limits().memory)?
            .prog;
        versus_dense(&prog, &dense, &hw, crate::cli::guard::limits())?
    } else {
        Vec::new()
    };
    let n = images.len();
    let report = SimulateReport {
        model: &prog.network().name,
        device: &hw.lib.device.params.name,
        array: &hw.org.params.name,
        mode,
        images: n,
        energy_pj_per_image: run.energy_pj() / n as f64,
        cycles: run.cycles(),
        bit_exact_images: exact,
        correct,
        layers: &run.layers,
        faults: &faults,
        versus_dense_int8: &versus,
        ir_violations: ir.violations(),
    };
    let ok = exact.is_none_or(|e| e == n);
    if a.json {
        emit(&to_json(&report))?;
    } else {
        emit(&text(&report))?;
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// The run configuration the flags describe.
pub(crate) fn config(a: &SimulateArgs) -> Result<Config, Error> {
    let gate_set = match a.gate_set.as_str() {
        "maj" => GateSet::Maj,
        "nand" => GateSet::Nand,
        s => {
            return Err(Error::usage(format!(
                "--gate-set {s}: expected maj or nand"
            )));
        }
    };
    Ok(Config {
        cram: CramConfig {
            device: a.device.as_str().into(),
            array: a.array.as_str().into(),
            gate_set,
            allow_ir_violation: a.allow_ir_violation,
            ..CramConfig::default()
        },
        workload: WorkloadConfig {
            model: a.model.clone(),
            weight_bits: a.weight_bits,
            act_bits: a.act_bits,
            sparsity: a.sparsity,
            seed: None,
            model_hash: None,
        },
        mapping: MappingConfig {
            strategy: match a.strategy {
                StrategyArg::Auto => StrategyChoice::Auto,
                StrategyArg::Const => StrategyChoice::Const,
                StrategyArg::Stored => StrategyChoice::Stored,
            },
            objective: match a.objective {
                ObjectiveArg::Energy => Objective::Energy,
                ObjectiveArg::Latency => Objective::Latency,
                ObjectiveArg::Edp => Objective::Edp,
            },
        },
        run: RunSection {
            mode: match a.mode {
                ModeArg::Functional => Mode::Functional,
                ModeArg::Analytical => Mode::Analytical,
            },
            seed: a.seed,
            images: a.images,
        },
        compare: Default::default(),
        paper: None,
        from_flags: true,
    })
}
