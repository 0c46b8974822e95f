//! Command-line interface: clap definitions, validation into typed requests, and the
//! commands' text and JSON output.

pub mod common;
pub mod gates;
pub mod guard;
pub mod kernel;
pub mod map;
pub mod misc;
pub mod models;
pub mod plot;
pub mod report;
pub mod run;
pub mod simulate;
pub mod sweep;
pub mod validate;

pub use crate::records::to_json;
pub use common::{ModeArg, Outcome, emit};

use clap::{Parser, Subcommand};

use crate::error::Error;

/// cramulator — a bit-accurate, cycle-level simulator of spintronic computational RAM (CRAM).
#[derive(Debug, Parser)]
#[command(name = "cramulator", version, about, long_about = None)]
pub struct Cli {
    /// Largest memory a functional run may hold (e.g. 512M, 4G); a run whose estimate
    /// exceeds it is refused with the estimate. Default: half of physical memory.
    #[arg(long, global = true, value_parser = crate::cli::guard::parse_size)]
    pub max_memory: Option<u64>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job: one CRAM architecture × one workload × von-Neumann baselines. Prints
    /// the comparison and writes results/<run-id>/ (resolved.toml, manifest.json,
    /// report.json, layers.csv). Without CONFIG: digits-mlp-int4, bit-exact, on
    /// stt-projected CRAM against cpu-ddr4 and nmp.
    Run(run::RunArgs),
    /// Reproduce three measured systems with the baseline model (Eyeriss AlexNet CONV,
    /// MLPerf Tiny ResNet-8 on a Cortex-M4, MLPerf ResNet-50 on a Jetson AGX Orin) and
    /// print model ÷ measured with the assumptions.
    Calibrate(misc::CalibrateArgs),
    /// Print (or write) the JSON Schema of every result record.
    Schema(misc::SchemaArgs),
    /// Print the gate table of a device: derived device quantities, then per gate its preset,
    /// threshold, voltage window, bias, noise margin, energy and latency.
    Gates(gates::GatesArgs),
    /// Generate a kernel, run it bit by bit on random data in every lane, and check every lane
    /// against the integer reference.
    Kernel(kernel::KernelArgs),
    /// List the model zoo with each network's input, layers, MACs and parameters.
    Models(crate::cli::models::ModelsArgs),
    /// Show a network layer by layer: shapes, MACs, parameters, bit-widths, sparsity.
    Inspect(crate::cli::models::InspectArgs),
    /// Train digits-mlp from the embedded 8×8 digits and write it and its int8, int4, W4A4
    /// and binary variants (deterministic: the same bytes on every run).
    TrainDigits(crate::cli::models::TrainArgs),
    /// Map a quantized network onto a CRAM chip and run it layer by layer: bit-exact
    /// against the golden executor (functional) or counted (analytical), with per-layer
    /// placement, steps, cycles and energy, and accuracy versus gate error rate.
    Simulate(simulate::SimulateArgs),
    /// Show where a run configuration's network lands on the chip: per layer its strategy,
    /// programs, subarray runs and utilization; with --layer, which subarrays and lanes,
    /// what every column holds and what moves where.
    Map(crate::cli::map::MapArgs),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(misc::ConfigCommand),
    /// Design-space sweeps: plan a sweep file into points, run them in shards (on rayon;
    /// under Slurm job arrays or any loop), merge the shards, print a Slurm job array.
    #[command(subcommand)]
    Sweep(sweep::SweepCommand),
    /// Draw a figure (SVG, or PNG by the file name) and write the CSV it was drawn from.
    Plot(plot::PlotArgs),
    /// Write one self-contained HTML page of a run folder or a merged sweep folder: the
    /// comparison, energy, layers, mapping, reliability, configuration and assumptions
    /// (a sweep: its Pareto front, lines, heat map and results), inline SVG, no script.
    Report(report::ReportArgs),
    /// The validation suite: physics, kernels, networks, baseline calibration and published
    /// paper claims; per check the expected and obtained values, the tolerance, the status
    /// and the source. Exits 1 when a required check diverges.
    Validate(validate::ValidateArgs),
}

/// The command line, with negative numbers taken as values in every subcommand (so that
/// `--seed -1` is refused by the flag's own parser, which names the flag, rather than read
/// as an unknown option).
pub fn command() -> clap::Command {
    fn negatives(c: clap::Command) -> clap::Command {
        c.allow_negative_numbers(true).mut_subcommands(negatives)
    }
    negatives(<Cli as clap::CommandFactory>::command())
}

/// Parses the process's arguments ([`command`]); exits with clap's message on an error.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    crate::cli::guard::set_max_memory(cli.max_memory.unwrap_or(0));
    match cli.command {
        Command::Run(a) => run::run(&a),
        Command::Calibrate(a) => misc::calibrate(&a),
        Command::Schema(a) => misc::schema(&a),
        Command::Gates(a) => gates::gates(&a),
        Command::Config(misc::ConfigCommand::Defaults { device, array }) => {
            misc::config_defaults(&device, &array)
        }
        Command::Kernel(a) => kernel::kernel(&a),
        Command::Models(a) => crate::cli::models::models(&a),
        Command::Inspect(a) => crate::cli::models::inspect(&a),
        Command::TrainDigits(a) => crate::cli::models::train_digits(&a),
        Command::Simulate(a) => simulate::simulate(&a),
        Command::Map(a) => crate::cli::map::map(&a),
        Command::Sweep(c) => sweep::sweep(&c),
        Command::Plot(a) => plot::plot(&a),
        Command::Report(a) => report::report(&a),
        Command::Validate(a) => validate::validate(&a),
    }
}
