//! `cramulator simulate MODEL`: one network, bit-exact, with faults and the dense comparison.

use crate::cli::{ModeArg, Outcome, emit};
use crate::error::Error;
use crate::experiment::config::{
    Config, CramConfig, MappingConfig, RunSection, StrategyChoice, WorkloadConfig,
};
use crate::io::render::{Format, render};
use crate::model::kernels::GateSet;
use crate::model::map::{Mode, Objective};
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
    /// A zoo network (see `cramulator models`, seeded synthetic weights), a shipped digits
    /// model (digits-mlp, -int8, -int4, -w4a4, -binary), an `.onnx` file or an own-format
    /// `.toml` file. A float model is compressed here by `--weight-bits`, `--act-bits` and
    /// `--sparsity`; a quantized file runs at its recorded bits.
    pub model: String,
    /// Weight bits (symmetric, per output channel; default 8; 1: binary ±α weights between
    /// the first and last layers, docs/model.md §2.1).
    #[arg(long)]
    pub weight_bits: Option<u32>,
    /// Activation bits (unsigned affine; default 8; 1: ±1 inputs to the layers between the
    /// first and last).
    #[arg(long)]
    pub act_bits: Option<u32>,
    /// Unstructured magnitude-pruning sparsity of the weights, in [0, 1).
    #[arg(long)]
    pub sparsity: Option<f64>,
    /// A model file's calibration inputs: a NumPy `.npy` array `[N, C, H, W]` (default: two
    /// seeded uniform [0, 1) inputs).
    #[arg(long)]
    pub calibration_data: Option<String>,
    /// Device preset or TOML file.
    #[arg(long, default_value = "stt-projected")]
    pub device: String,
    /// Array preset or TOML file.
    #[arg(long, default_value = "cram-1k")]
    pub array: String,
    /// Gate set the programs are generated from (maj, nand, nand-not).
    #[arg(long, default_value = "nand-not")]
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
    /// Override a config key of the run these flags describe, e.g.
    /// `--set cram.device_params.tmr=3` (repeatable, applied in order after the flags).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// `cramulator simulate`.
pub fn simulate(a: &SimulateArgs) -> Result<Outcome, Error> {
    if let Some(p) = a.error_rates.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(Error::usage(format!(
            "--error-rates {p}: must be probabilities in [0, 1]"
        )));
    }
    let config = config(a)?.with_sets(&a.set)?;
    let options = crate::cli::common::options(a.threads);
    let report = crate::experiment::simulate::simulate(&config, &a.error_rates, &options)?;
    emit(&render(&report, Format::of_flags(a.json, false))?)?;
    Ok(if report.ok {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// The run configuration the flags describe.
pub(crate) fn config(a: &SimulateArgs) -> Result<Config, Error> {
    let gate_set: GateSet = a
        .gate_set
        .parse()
        .map_err(|e| Error::usage(format!("--gate-set {}: {e}", a.gate_set)))?;
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
            binary_ends_bits: None,
            seed: None,
            calibration_data: a.calibration_data.clone(),
            seq_len: None,
            cached_tokens: None,
            decode_tokens: None,
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
            ..MappingConfig::default()
        },
        run: RunSection {
            mode: match a.mode {
                ModeArg::Functional => Mode::Functional,
                ModeArg::Analytical => Mode::Analytical,
            },
            seed: a.seed,
            images: a.images,
            ..RunSection::default()
        },
        compare: Default::default(),
        paper: None,
        from_flags: true,
    })
}
