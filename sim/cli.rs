//! Command-line interface: clap definitions, validation into typed requests, and the
//! commands' text and JSON output.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use cram_arch::{GateLibrary, IrCheck, IrLimit, Org, ir, presets};
use serde::Serialize;

use crate::energy::{EnergyBreakdown, EnergyTable, Placement, RunEnergy, run_energy};
use crate::engine::Tracer;
use crate::engine::count::{Counter, Counts};
use crate::engine::exec::Simd;
use crate::engine::isa::Col;
use crate::error::UsageError;
use crate::kernels::check::{CheckReport, RunConfig, run_and_check};
use crate::kernels::{GateSet, KernelKind, KernelSpec};
use crate::timing::{self, Resource, ResourceUse, StepCycles, TimingReport};

/// cramulator — a bit-accurate, cycle-level simulator of spintronic computational RAM (CRAM).
#[derive(Debug, Parser)]
#[command(name = "cramulator", version, about, long_about = None)]
pub struct Cli {
    /// Largest memory a functional run may hold (e.g. 512M, 4G); a run whose estimate
    /// exceeds it is refused with the estimate. Default: half of physical memory.
    #[arg(long, global = true, value_parser = crate::guard::parse_size)]
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
    Run(crate::run::RunArgs),
    /// Reproduce three measured systems with the baseline model (Eyeriss AlexNet CONV,
    /// MLPerf Tiny ResNet-8 on a Cortex-M4, MLPerf ResNet-50 on a Jetson AGX Orin) and
    /// print model ÷ measured with the assumptions.
    Calibrate(CalibrateArgs),
    /// Print (or write) the JSON Schema of every result record.
    Schema(SchemaArgs),
    /// Print the gate table of a device: derived device quantities, then per gate its preset,
    /// threshold, voltage window, bias, noise margin, energy and latency.
    Gates(GatesArgs),
    /// Generate a kernel, run it bit by bit on random data in every lane, and check every lane
    /// against the integer reference.
    Kernel(KernelArgs),
    /// List the model zoo with each network's input, layers, MACs and parameters.
    Models(crate::models::ModelsArgs),
    /// Show a network layer by layer: shapes, MACs, parameters, bit-widths, sparsity.
    Inspect(crate::models::InspectArgs),
    /// Train digits-mlp from the embedded 8×8 digits and write it and its int8, int4, W4A4
    /// and binary variants (deterministic: the same bytes on every run).
    TrainDigits(crate::models::TrainArgs),
    /// Map a quantized network onto a CRAM chip and run it layer by layer: bit-exact
    /// against the golden executor (functional) or counted (analytical), with per-layer
    /// placement, steps, cycles and energy, and accuracy versus gate error rate.
    Simulate(crate::simulate::SimulateArgs),
    /// Show where a run configuration's network lands on the chip: per layer its strategy,
    /// programs, subarray runs and utilization; with --layer, which subarrays and lanes,
    /// what every column holds and what moves where.
    Map(crate::mapping::MapArgs),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Design-space sweeps: plan a sweep file into points, run them in shards (on rayon;
    /// under Slurm job arrays or any loop), merge the shards, print a Slurm job array.
    #[command(subcommand)]
    Sweep(crate::sweep::SweepCommand),
    /// Draw a figure (SVG, or PNG by the file name) and write the CSV it was drawn from.
    Plot(crate::plot::PlotArgs),
    /// The validation suite: physics, kernels, networks, baseline calibration and published
    /// paper claims; per check the expected and obtained values, the tolerance, the status
    /// and the source. Exits 1 when a required check diverges.
    Validate(crate::validate::ValidateArgs),
}

/// Arguments of `cramulator calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `cramulator schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Write `<name>.schema.json` files into this folder instead of printing them.
    #[arg(long)]
    pub write: Option<std::path::PathBuf>,
}

/// `cramulator config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the fully defaulted configuration (device and array) as TOML.
    Defaults {
        /// Device preset or TOML file.
        #[arg(long, default_value = "stt-projected")]
        device: String,
        /// Array preset or TOML file.
        #[arg(long, default_value = "cram-1k")]
        array: String,
    },
}

/// Arguments of `cramulator gates`.
#[derive(Debug, Args)]
pub struct GatesArgs {
    /// Device preset (stt-today, stt-projected, she-projected) or path to a device TOML file.
    #[arg(long, default_value = "stt-projected")]
    pub device: String,
    /// Array preset or TOML file whose line resistance sets the IR-drop row limits.
    #[arg(long, default_value = "cram-1k")]
    pub array: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Gate set on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateSetArg {
    /// Majority-based (MAJ3/MAJ5 full adder).
    Maj,
    /// NAND-based (NOT, NAND, AND only).
    Nand,
}

impl From<GateSetArg> for GateSet {
    fn from(g: GateSetArg) -> Self {
        match g {
            GateSetArg::Maj => GateSet::Maj,
            GateSetArg::Nand => GateSet::Nand,
        }
    }
}

/// Arguments of `cramulator kernel`.
#[derive(Debug, Args)]
pub struct KernelArgs {
    /// Kernel: copy, not, and, or, xor, xnor, fa, add, sub, mul, smul, mulc, popcount, lt,
    /// ltu, max, relu.
    #[arg(value_parser = parse_kernel)]
    pub name: KernelKind,
    /// Operand width n in bits (1..=32).
    #[arg(long)]
    pub bits: u32,
    /// Width m of operand b for mul and smul (default: same as --bits).
    #[arg(long)]
    pub bits_b: Option<u32>,
    /// The constant of mulc (default: drawn from the seed, n bits signed).
    #[arg(long, allow_hyphen_values = true)]
    pub constant: Option<i64>,
    /// Number of lanes simulated (every one is checked).
    #[arg(long, default_value_t = 4096)]
    pub lanes: usize,
    /// Lanes per subarray (default: the array's); the lanes are spread over
    /// ⌈lanes / this⌉ subarrays.
    #[arg(long)]
    pub lanes_per_subarray: Option<usize>,
    /// Chip organisation: array preset (cram-1k) or TOML file.
    #[arg(long, default_value = "cram-1k")]
    pub array: String,
    /// Subarrays the kernel may use at once (default: every subarray of the chip). Lanes
    /// beyond subarrays × lanes-per-subarray run in further passes.
    #[arg(long)]
    pub subarrays: Option<u32>,
    /// Print the full per-resource utilization table and energy breakdown in pJ.
    #[arg(long)]
    pub report: bool,
    /// functional: execute and check every lane (data-dependent energy); analytical: count
    /// the op stream only (counts, cycles, mean and worst energy).
    #[arg(long, value_enum, default_value_t = ModeArg::Functional)]
    pub mode: ModeArg,
    /// Functional mode: also price every lane's actual input pattern (data-dependent energy).
    /// Costs a histogram per gate step, so it is off by default.
    #[arg(long)]
    pub data_energy: bool,
    /// Gate set the kernel is generated from.
    #[arg(long, value_enum, default_value_t = GateSetArg::Maj)]
    pub gate_set: GateSetArg,
    /// Device preset or TOML file; the kernel may use only gates it can build.
    #[arg(long, default_value = "stt-projected")]
    pub device: String,
    /// Seed of the random operands.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads: 0 = one per core [default: SLURM_CPUS_PER_TASK, else one per core].
    /// Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the program (disassembly) before running it (to stderr with --json).
    #[arg(long)]
    pub trace: bool,
    /// Fault injection: a probability (0..=1) that a gate step's output is wrong in a lane, or
    /// `derived` for each gate's own probability from its noise margin and the device's I_c
    /// spread. The run then measures the output bit-error and wrong-result rates.
    #[arg(long, default_value = "0")]
    pub error_rate: String,
    /// Write budget per cell for the endurance estimate (default 1e7, the upper budget the
    /// public PIM endurance simulator studies; a setting, not device data).
    #[arg(long, default_value_t = 1e7)]
    pub endurance_budget: f64,
    /// Run even if the IR drop along the shared lines would leave far rows outside a gate's
    /// window (the results then assume every gate still switches).
    #[arg(long)]
    pub allow_ir_violation: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Largest `--lanes` accepted (2^40): beyond it a run would take days.
const MAX_LANES: usize = 1 << 40;

fn parse_kernel(s: &str) -> Result<KernelKind, String> {
    s.parse::<KernelKind>().map_err(|e| e.to_string())
}

/// Errors a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user's input was wrong (exit 2).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// Writing output failed. (Not a `source`: the message already holds it, and `{:#}`
    /// would print it twice.)
    #[error("writing output: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::Io(e)
    }
}

impl CliError {
    /// A usage error with this message (exit 2).
    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(UsageError::new(msg))
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
pub fn run(cli: Cli) -> Result<Outcome, CliError> {
    crate::guard::set_max_memory(cli.max_memory.unwrap_or(0));
    match cli.command {
        Command::Run(a) => crate::run::run(&a),
        Command::Calibrate(a) => calibrate(&a),
        Command::Schema(a) => schema(&a),
        Command::Gates(a) => gates(&a),
        Command::Config(ConfigCommand::Defaults { device, array }) => {
            config_defaults(&device, &array)
        }
        Command::Kernel(a) => kernel(&a),
        Command::Models(a) => crate::models::models(&a),
        Command::Inspect(a) => crate::models::inspect(&a),
        Command::TrainDigits(a) => crate::models::train_digits(&a),
        Command::Simulate(a) => crate::simulate::simulate(&a),
        Command::Map(a) => crate::mapping::map(&a),
        Command::Sweep(c) => crate::sweep::sweep(&c),
        Command::Plot(a) => crate::plot::plot(&a),
        Command::Validate(a) => crate::validate::validate(&a),
    }
}

/// `cramulator calibrate`.
fn calibrate(a: &CalibrateArgs) -> Result<Outcome, CliError> {
    let points = crate::calibrate::calibration()?;
    let ok = points.iter().all(|p| (0.5..=2.0).contains(&p.ratio));
    if a.json {
        emit(&to_json(&points))?;
    } else {
        let mut s = String::new();
        for p in &points {
            let _ = writeln!(s, "{}: {}", p.name, p.system);
            let _ = writeln!(
                s,
                "  measured  {:>9.3} mJ/inference, {:>9.3} ms ({})",
                p.measured_mj, p.measured_ms, p.scope
            );
            let _ = writeln!(
                s,
                "  model     {:>9.3} mJ/inference, {:>9.3} ms (preset {}, {}-bit, batch {})",
                p.model_mj, p.model_ms, p.preset, p.bits, p.batch
            );
            let _ = writeln!(
                s,
                "  model ÷ measured = {:.2} ({})",
                p.ratio,
                if (0.5..=2.0).contains(&p.ratio) {
                    "within [0.5, 2]"
                } else {
                    "OUTSIDE [0.5, 2]"
                }
            );
            let _ = writeln!(s, "  source: {}", p.source);
            for a in &p.assumptions {
                let _ = writeln!(s, "  assumes: {a}");
            }
            s.push('\n');
        }
        emit(&s)?;
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// `cramulator schema`.
fn schema(a: &SchemaArgs) -> Result<Outcome, CliError> {
    let schemas = crate::records::schemas();
    match &a.write {
        Some(dir) => {
            if dir.exists() && !dir.is_dir() {
                return Err(CliError::usage(format!(
                    "--write '{}': is a file, not a folder; give the folder the \
                     <name>.schema.json files go into",
                    dir.display()
                )));
            }
            let io = |p: &std::path::Path, e: std::io::Error| {
                CliError::usage(format!("--write '{}': {e}", p.display()))
            };
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            for (name, text) in schemas {
                let p = dir.join(name);
                crate::sweep::write_atomic(&p, |w| w.write_all(text.as_bytes()))?;
            }
        }
        None => {
            for (name, text) in schemas {
                emit(&format!("// {name}\n{text}"))?;
            }
        }
    }
    Ok(Outcome::Success)
}

/// Writes `text` to stdout; a closed pipe is not an error.
pub(crate) fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Pretty JSON with a final newline.
pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("report types serialize");
    s.push('\n');
    s
}

fn config_defaults(device: &str, array: &str) -> Result<Outcome, CliError> {
    #[derive(Serialize)]
    struct Resolved<'a> {
        device: &'a cram_arch::DeviceParams,
        array: &'a cram_arch::OrgParams,
    }
    let device = presets::device(device).map_err(UsageError::from)?;
    let org = presets::array(array).map_err(UsageError::from)?;
    let body = toml::to_string(&Resolved {
        device: &device.params,
        array: &org.params,
    })
    .expect("params serialize to TOML");
    emit(&format!(
        "# cramulator configuration with every field filled in (device {}, array {}).\n\
         # Field meanings and units: arch/src/device.rs and arch/src/org.rs.\n\n{body}",
        device.params.name, org.params.name
    ))?;
    Ok(Outcome::Success)
}

fn gates(a: &GatesArgs) -> Result<Outcome, CliError> {
    let device = presets::device(&a.device).map_err(UsageError::from)?;
    let org = presets::array(&a.array).map_err(UsageError::from)?;
    let lib = GateLibrary::derive(&device);
    let r_w = org.params.peripherals.r_wire_ohm_per_cell;
    let ir: Vec<IrLimit> = lib.gates.iter().map(|g| ir::max_rows(g, r_w)).collect();
    emit(&if a.json {
        #[derive(Serialize)]
        struct GatesJson<'a> {
            #[serde(flatten)]
            library: &'a GateLibrary,
            array: &'a str,
            r_wire_ohm_per_cell: f64,
            lanes_per_line_segment: u32,
            ir_max_rows: &'a [IrLimit],
        }
        to_json(&GatesJson {
            library: &lib,
            array: &org.params.name,
            r_wire_ohm_per_cell: r_w,
            lanes_per_line_segment: org.params.peripherals.lanes_per_line_segment,
            ir_max_rows: &ir,
        })
    } else {
        gate_table(&lib, &org)
    })?;
    Ok(Outcome::Success)
}

/// The gate table as text: the derived device quantities first, so every window can be
/// checked by hand (V = I_c · R_tot); the IR-drop row limit uses `org`'s line resistance.
pub fn gate_table(lib: &GateLibrary, org: &Org) -> String {
    let (p, d) = (&lib.device.params, &lib.device.derived);
    let mut s = String::new();
    let _ = writeln!(s, "device {} ({:?})", p.name, p.variant);
    let _ = writeln!(
        s,
        "  MTJ: diameter {} nm (area {:.1} nm²), RA {} Ω·µm², TMR {:.0} %, t_switch {} ns",
        p.diameter_nm,
        d.area_nm2,
        p.ra_ohm_um2,
        p.tmr * 100.0,
        p.t_switch_ns
    );
    let _ = writeln!(
        s,
        "  R_P = {:.1} Ω   R_AP = {:.1} Ω   R_T (access on) = {:.1} Ω{}",
        d.r_p_ohm,
        d.r_ap_ohm,
        d.r_access_ohm,
        if d.r_channel_ohm > 0.0 {
            format!("   R_channel = {:.1} Ω", d.r_channel_ohm)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "  I_c P→AP (0→1) = {:.3} µA   I_c AP→P (1→0) = {:.3} µA   bias limit {} V   min noise margin {:.2} %",
        d.i_c_p_to_ap_ua,
        d.i_c_ap_to_p_ua,
        p.v_bias_max_v,
        p.min_noise_margin * 100.0
    );
    let r_out = match p.variant {
        cram_arch::Variant::Stt => "R_out(preset: R_P or R_AP)",
        cram_arch::Variant::She => "R_channel",
    };
    let _ = writeln!(
        s,
        "  R_tot(z) = R_T + {r_out} + 1/(z/(R_T+R_P) + (n−z)/(R_T+R_AP)); V_min = I_c·R_tot(k), V_max = I_c·R_tot(k−1)"
    );
    if p.variant == cram_arch::Variant::She {
        let _ = writeln!(
            s,
            "  input MTJ (STT) critical currents, the input-disturb limits: P→AP {:.3} µA, AP→P {:.3} µA",
            d.i_disturb_p_to_ap_ua, d.i_disturb_ap_to_p_ua
        );
    }
    let _ = writeln!(
        s,
        "  V_dist = lowest bias that switches an input cell; bias = midpoint of [V_min, min(V_max, V_dist, bias limit)); margin on that window"
    );
    let _ = writeln!(
        s,
        "  p_err = wrong-output probability of the most vulnerable input pattern for an I_c spread of σ = {:.1} % (ic_sigma_rel)",
        p.ic_sigma_rel * 100.0
    );
    let per = &org.params.peripherals;
    let _ = writeln!(
        s,
        "  rows = most rows one driven line may hold before the far row drops below V_min (IR drop, r_wire_ohm_per_cell = {} Ω of array {}; it has {} per line segment)",
        per.r_wire_ohm_per_cell, org.params.name, per.lanes_per_line_segment
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<8} {:>1} {:>1} {:>6} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>7} {:>9} {:>9}  E_pulse for z = 0..n input zeros",
        "gate",
        "n",
        "k",
        "preset",
        "V_min",
        "V_max",
        "V_dist",
        "bias",
        "margin",
        "p_err",
        "rows",
        "E_preset",
        "latency"
    );
    let _ = writeln!(
        s,
        "{:<8} {:>1} {:>1} {:>6} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>7} {:>9} {:>9}  pJ",
        "", "", "", "", "V", "V", "V", "V", "", "", "", "pJ", "ns"
    );
    for g in &lib.gates {
        let energies: Vec<String> = g.e_pulse_pj.iter().map(|&e| pj(e)).collect();
        let rows = ir::max_rows(g, per.r_wire_ohm_per_cell)
            .max_rows
            .map_or_else(|| "∞".to_owned(), |r| r.to_string());
        let _ = writeln!(
            s,
            "{:<8} {:>1} {:>1} {:>6} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>6.2}% {:>9.2e} {:>7} {:>9} {:>9.1}  {}",
            g.kind.mnemonic(),
            g.inputs,
            g.k,
            u8::from(g.preset),
            g.v_min_v,
            g.v_max_v,
            g.v_disturb_v,
            g.bias_v,
            g.noise_margin * 100.0,
            g.error_prob,
            rows,
            pj(g.e_preset_pj),
            g.latency_ns,
            energies.join(" ")
        );
    }
    let unavailable: Vec<&str> = lib
        .gates
        .iter()
        .filter_map(|g| g.unavailable.as_deref())
        .collect();
    let _ = writeln!(s);
    if unavailable.is_empty() {
        let _ = writeln!(s, "all gates buildable");
    } else {
        for u in unavailable {
            let _ = writeln!(s, "UNAVAILABLE: {u}");
        }
    }
    s
}

/// An energy in pJ with four significant digits (scientific below 0.01 pJ).
fn pj(e: f64) -> String {
    if e >= 0.01 {
        format!("{e:.4}")
    } else {
        format!("{e:.3e}")
    }
}

/// Timing of a kernel run: one pass is the program broadcast to the subarrays in use.
#[derive(Debug, Serialize)]
pub struct KernelTiming {
    /// Array preset or file name.
    pub array: String,
    /// Cycles per step kind.
    pub steps: StepCycles,
    /// Subarrays running the program at once.
    pub subarrays_in_parallel: u64,
    /// Back-to-back passes needed to cover every lane (operand loading between passes is not
    /// modelled yet).
    pub passes: u64,
    /// Cycles of all passes.
    pub cycles: u64,
    /// Time of all passes, ns.
    pub time_ns: f64,
    /// Schedule of one pass.
    pub pass: TimingReport,
}

/// Everything `cramulator kernel --json` prints.
#[derive(Debug, Serialize)]
pub struct KernelRunReport {
    /// Kernel name.
    pub kernel: &'static str,
    /// What was generated.
    pub spec: KernelSpec,
    /// Device name.
    pub device: String,
    /// `functional` (every lane executed and checked) or `analytical` (counted only).
    pub mode: &'static str,
    /// Op counts of the program for one full subarray.
    pub counts: Counts,
    /// Columns the program uses.
    pub columns: usize,
    /// Lanes in all.
    pub lanes: u64,
    /// Subarrays the lanes fill.
    pub subarrays: u64,
    /// Σ gate steps × lanes.
    pub lane_gate_evals: u64,
    /// Cycles and utilization of the kernel on the chip.
    pub timing: KernelTiming,
    /// IR drop of the gates used, on the rows that share a line.
    pub ir: IrCheck,
    /// Energy of the run (all lanes), by model and component.
    pub energy: RunEnergy,
    /// Run settings.
    pub config: RunConfig,
    /// Worker threads used.
    pub threads: usize,
    /// Vector level of the executor's word loops (`CRAMULATOR_SIMD=portable` forces the
    /// baseline).
    pub simd: Simd,
    /// Check results (functional mode).
    #[serde(flatten)]
    pub check: Option<CheckReport>,
    /// Host wall time of the whole run, seconds.
    pub wall_s: f64,
    /// Lane-gate evaluations per second of wall time, end to end.
    pub lane_gate_evals_per_s_wall: f64,
    /// Lane-gate evaluations per second of executor time on one thread (functional mode).
    pub lane_gate_evals_per_s_exec_thread: Option<f64>,
    /// Write budget per cell used for `runs_to_endurance_budget`.
    pub endurance_budget: f64,
    /// Whether the text output lists every resource and energy component.
    #[serde(skip)]
    pub full_report: bool,
    /// Name of the hottest column (`t3`, `sum[0]`, …).
    pub hottest_col_name: Option<String>,
    /// Runs of the kernel until the hottest cell reaches the budget (None if nothing is
    /// written).
    pub runs_to_endurance_budget: Option<f64>,
    /// Seconds until the hottest cell reaches the budget if the chip runs the program back to
    /// back (each subarray executes it once per pass).
    pub lifetime_s_continuous: Option<f64>,
}

/// Execution mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Execute every lane bit by bit and check it; data-dependent energy.
    Functional,
    /// Count the op stream without values: counts, cycles, mean and worst energy.
    Analytical,
}

fn kernel(a: &KernelArgs) -> Result<Outcome, CliError> {
    if !(1..=MAX_LANES).contains(&a.lanes) {
        return Err(UsageError::new(format!(
            "--lanes {}: must be in 1..={MAX_LANES} (2^40)",
            a.lanes
        ))
        .into());
    }
    let pool = crate::guard::pool(a.threads, "--threads")?;
    let threads = pool.current_num_threads();
    if !(a.endurance_budget.is_finite() && a.endurance_budget >= 1.0) {
        return Err(UsageError::new(format!(
            "--endurance-budget {}: must be a number of writes ≥ 1",
            a.endurance_budget
        ))
        .into());
    }
    let derived_errors = a.error_rate == "derived";
    let error_rate = if derived_errors {
        0.0
    } else {
        match a.error_rate.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => p,
            _ => {
                return Err(UsageError::new(format!(
                    "--error-rate {}: must be a probability in [0, 1] or `derived`",
                    a.error_rate
                ))
                .into());
            }
        }
    };
    let faults_on = derived_errors || error_rate > 0.0;
    let analytical = a.mode == ModeArg::Analytical;
    if analytical && a.data_energy {
        return Err(UsageError::new(
            "--data-energy needs --mode functional (it prices executed values)",
        )
        .into());
    }
    if analytical && faults_on {
        return Err(
            UsageError::new("--error-rate needs --mode functional (faults change values)").into(),
        );
    }
    let device = presets::device(&a.device).map_err(UsageError::from)?;
    let org = presets::array(&a.array).map_err(UsageError::from)?;
    let lanes_per_subarray = a
        .lanes_per_subarray
        .unwrap_or(org.params.lanes_per_subarray as usize);
    if !(1..=1 << 20).contains(&lanes_per_subarray) {
        return Err(UsageError::new(format!(
            "--lanes-per-subarray {lanes_per_subarray}: must be in 1..=1048576"
        ))
        .into());
    }
    let chip_subarrays = org.subarrays();
    if a.subarrays
        .is_some_and(|s| s == 0 || u64::from(s) > chip_subarrays)
    {
        return Err(UsageError::new(format!(
            "--subarrays {}: array '{}' has {chip_subarrays} subarrays; use 1..={chip_subarrays}",
            a.subarrays.unwrap_or(0),
            org.params.name
        ))
        .into());
    }
    let subarrays = a.subarrays.map_or(chip_subarrays, u64::from);
    let lib = GateLibrary::derive(&device);
    let mut spec = KernelSpec {
        kind: a.name,
        bits: a.bits,
        bits_b: a.bits_b.unwrap_or(a.bits),
        constant: a.constant.unwrap_or(0),
        gate_set: a.gate_set.into(),
    };
    spec.validate()?;
    if a.constant.is_none() && spec.kind == KernelKind::Mulc {
        spec.constant = default_constant(a.seed, spec.bits);
        spec.validate()?;
    }
    let kernel = spec.build();
    kernel.check_buildable(&lib)?;
    let cols = org.params.cols_per_subarray as usize;
    if kernel.program.cols() > cols {
        return Err(UsageError::new(format!(
            "kernel {} needs {} columns but array '{}' has {cols} per subarray (cols_per_subarray)",
            spec.kind.name(),
            kernel.program.cols(),
            org.params.name
        ))
        .into());
    }
    let counts = Counter::count(&kernel.program, lanes_per_subarray.min(a.lanes));
    let ir = IrCheck::new(
        &lib,
        &org,
        lanes_per_subarray.min(a.lanes) as u64,
        counts.by_gate.keys().copied(),
    );
    if !ir.ok() && !a.allow_ir_violation {
        return Err(UsageError::new(ir.refusal(
            &a.array,
            &device.params.name,
            "pass --allow-ir-violation (or a smaller --lanes-per-subarray)",
        ))
        .into());
    }
    let cfg = RunConfig {
        lanes: a.lanes,
        lanes_per_subarray,
        seed: a.seed,
        error_rate,
        error_rates_by_gate: derived_errors
            .then(|| std::array::from_fn(|i| lib.gates[i].error_prob)),
        track_zeros: a.data_energy,
    };
    if a.trace {
        let listing = Tracer::disassemble(&kernel.program);
        if a.json {
            eprint!("{listing}");
        } else {
            emit(&listing)?;
        }
    }
    let t = Instant::now();
    if !analytical {
        // The executor holds one block of subarrays per thread, whatever the lane count.
        let block = crate::kernels::check::executor_block(&kernel, lanes_per_subarray).min(a.lanes);
        let words = block.div_ceil(64) as u64;
        crate::guard::MemoryEstimate {
            cells_bytes: threads as u64 * words * 8 * kernel.program.cols() as u64,
            advice: "use fewer threads or a smaller --lanes-per-subarray, or a larger \
                     --max-memory",
            ..Default::default()
        }
        .check(&format!("kernel {} on {} lanes", spec.kind.name(), a.lanes))?;
    }
    let check = (!analytical).then(|| pool.install(|| run_and_check(&kernel, &cfg)));
    if check.as_ref().is_some_and(|c| c.interrupted) {
        eprintln!("interrupted: stopped before every lane ran; nothing printed");
        return Ok(Outcome::Interrupted);
    }
    // Timing: the program broadcast to the subarrays in use, once per pass.
    let lanes = a.lanes as u64;
    let needed = lanes.div_ceil(lanes_per_subarray as u64);
    let in_parallel = needed.min(subarrays);
    let passes = needed.div_ceil(in_parallel);
    let pass = timing::schedule(
        &device,
        &org,
        &timing::broadcast(&kernel.program, in_parallel as u32),
    );
    let commands = pass.commands * passes;

    let kernel_timing = KernelTiming {
        array: org.params.name.clone(),
        steps: StepCycles::derive(&device, &org),
        subarrays_in_parallel: in_parallel,
        passes,
        cycles: pass.cycles * passes,
        time_ns: pass.time_ns * passes as f64,
        pass,
    };
    let table = EnergyTable::derive(&lib, &org);
    let inputs: Vec<Col> = kernel
        .inputs
        .iter()
        .flat_map(|o| o.cols.iter().copied())
        .collect();
    let placement = Placement {
        lanes,
        lines: cram_arch::Lines::new(
            lanes_per_subarray as u64,
            u64::from(org.params.peripherals.lanes_per_line_segment),
        ),
        cols: cols as u64,
        commands,
    };
    let measured = check
        .as_ref()
        .filter(|_| a.data_energy)
        .map(|c| c.zero_histograms.as_slice());
    let energy = run_energy(
        &kernel.program,
        &inputs,
        &table,
        placement,
        a.seed,
        measured,
    );
    let wall_s = t.elapsed().as_secs_f64();
    let lane_gate_evals = counts.gate_steps.saturating_mul(lanes);
    let pass_time_ns = kernel_timing.pass.time_ns;
    let report = KernelRunReport {
        kernel: spec.kind.name(),
        spec,
        device: device.params.name.clone(),
        mode: if analytical {
            "analytical"
        } else {
            "functional"
        },
        columns: kernel.program.cols(),
        lanes,
        subarrays: needed,
        lane_gate_evals,
        timing: kernel_timing,
        ir,
        energy,
        config: cfg,
        threads,
        simd: Simd::best(),
        lane_gate_evals_per_s_wall: lane_gate_evals as f64 / wall_s,
        lane_gate_evals_per_s_exec_thread: check
            .as_ref()
            .map(|c| lane_gate_evals as f64 / c.exec_cpu_s.max(1e-12)),
        endurance_budget: a.endurance_budget,
        full_report: a.report,
        hottest_col_name: counts
            .hottest_col
            .map(|c| kernel.program.col_name(c).to_owned()),
        runs_to_endurance_budget: (counts.hottest.total() > 0)
            .then(|| a.endurance_budget / counts.hottest.total() as f64),
        lifetime_s_continuous: (counts.hottest.total() > 0)
            .then(|| a.endurance_budget / counts.hottest.total() as f64 * pass_time_ns * 1e-9),
        counts,
        check,
        wall_s,
    };
    emit(&if a.json {
        to_json(&report)
    } else {
        kernel_text(&report)
    })?;
    // With fault injection, wrong lanes are the measurement, not a failure.
    let clean = report
        .check
        .as_ref()
        .is_none_or(|c| c.mismatched_lanes == 0);
    Ok(if clean || faults_on {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// The `mulc` constant when none is given: a seeded non-zero signed value of n bits (2 to 31).
fn default_constant(seed: u64, bits: u32) -> i64 {
    use rand_core::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xC0_57A7);
    let f = cram_workloads::IntFormat::signed(bits.clamp(2, 31));
    loop {
        let c = f.from_bits(rng.next_u64()) as i64;
        if c != 0 {
            return c;
        }
    }
}

fn kernel_text(r: &KernelRunReport) -> String {
    let mut s = String::new();
    let widths = match r.spec.kind {
        KernelKind::Mul | KernelKind::Smul => format!("{}×{}-bit", r.spec.bits, r.spec.bits_b),
        KernelKind::Mulc => format!("{}-bit × constant {}", r.spec.bits, r.spec.constant),
        _ => format!("{}-bit", r.spec.bits),
    };
    let _ = writeln!(
        s,
        "kernel {} ({widths}), gate set {}, device {}, {} mode",
        r.kernel,
        r.spec.gate_set.name(),
        r.device,
        r.mode
    );
    let by_gate: Vec<String> = r
        .counts
        .by_gate
        .iter()
        .map(|(g, n)| format!("{g} {n}"))
        .collect();
    let _ = writeln!(
        s,
        "  steps            {} gate steps ({})",
        r.counts.gate_steps,
        by_gate.join(", ")
    );
    let _ = writeln!(
        s,
        "  presets          {} folded into gate steps, {} stand-alone column presets",
        r.counts.gate_presets, r.counts.column_presets
    );
    let _ = writeln!(s, "  columns          {}", r.columns);
    let _ = writeln!(
        s,
        "  lanes            {} in {} subarray(s) of up to {} lanes, seed {}",
        r.lanes, r.subarrays, r.config.lanes_per_subarray, r.config.seed
    );
    let _ = writeln!(
        s,
        "  lane-gate evals  {} ({:.3e})",
        r.lane_gate_evals, r.lane_gate_evals as f64
    );
    match (&r.check, r.lane_gate_evals_per_s_exec_thread) {
        (Some(c), Some(exec)) => {
            let _ = writeln!(
                s,
                "  host wall time   {:.3} s on {} thread(s), {:?} word loops; executor {:.3} s summed over threads",
                r.wall_s, r.threads, r.simd, c.exec_cpu_s
            );
            let _ = writeln!(
                s,
                "  throughput       {:.3e} lane-gate evals/s end to end (incl. data generation and checking); {exec:.3e} /s per executor thread",
                r.lane_gate_evals_per_s_wall
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "  host wall time   {:.4} s (nothing executed but the characterization sample)",
                r.wall_s
            );
        }
    }
    let t = &r.timing;
    let _ = writeln!(
        s,
        "  timing           {} cycles = {:.1} ns on array {}: {} subarray(s) in parallel × {} pass(es); gate step {} cycles (preset + pulse + set-up)",
        t.cycles, t.time_ns, t.array, t.subarrays_in_parallel, t.passes, t.steps.gate
    );
    let subs: Vec<&ResourceUse> = t
        .pass
        .resources
        .iter()
        .filter(|u| matches!(u.resource, Resource::Subarray(_)))
        .collect();
    let mean_util = subs.iter().map(|u| u.utilization).sum::<f64>() / subs.len().max(1) as f64;
    let issue = t
        .pass
        .resources
        .iter()
        .find(|u| u.resource == Resource::Issue)
        .map_or(0.0, |u| u.utilization);
    let path: Vec<String> = t
        .pass
        .critical_path_cycles
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        s,
        "  utilization      subarrays {:.1} % (mean of {}), controller issue {:.1} %; critical path {} commands ({} cycles)",
        mean_util * 100.0,
        subs.len(),
        issue * 100.0,
        t.pass.critical_path_commands,
        path.join(", ")
    );
    let ir = &r.ir;
    let limit = ir.binding().map_or_else(
        || "no limit (lines without resistance)".to_owned(),
        |l| format!("limit {} rows ({})", l.max_rows.unwrap_or(0), l.gate),
    );
    let _ = writeln!(
        s,
        "  IR drop          {} rows share a line at {} Ω per cell; {limit}; {}",
        ir.rows_per_line,
        ir.r_wire_ohm_per_cell,
        if ir.ok() {
            "every gate switches in every row".to_owned()
        } else {
            format!(
                "VIOLATED (run anyway by --allow-ir-violation; results assume every gate switches): {}",
                ir.violations().join("; ")
            )
        }
    );
    let e = &r.energy;
    let primary = e.data_dependent.as_ref().unwrap_or(&e.mean);
    let label = if e.data_dependent.is_some() {
        "data-dependent"
    } else {
        "mean"
    };
    let per_eval = primary.total_pj() / r.lane_gate_evals.max(1) as f64;
    let _ = writeln!(
        s,
        "  energy           {label} {} ({} per lane, {} per lane-gate eval); mean {}, worst {}",
        joules(primary.total_pj()),
        joules(primary.total_pj() / r.lanes.max(1) as f64),
        joules(per_eval),
        joules(e.mean.total_pj()),
        joules(e.worst_total_pj)
    );
    let _ = writeln!(s, "  breakdown        {}", breakdown_shares(primary));
    if r.full_report {
        let _ = writeln!(s, "  resources (one pass of {} cycles):", t.pass.cycles);
        for u in &t.pass.resources {
            let _ = writeln!(
                s,
                "    {:<18} busy {:>10} cycles  {:>6.1} %",
                u.name,
                u.busy_cycles,
                u.utilization * 100.0
            );
        }
        let _ = writeln!(s, "  energy by component ({label}), pJ:");
        for (name, v) in components(primary) {
            let _ = writeln!(s, "    {name:<18} {v:>14.3}");
        }
    }
    if let Some(runs) = r.runs_to_endurance_budget {
        let _ = writeln!(
            s,
            "  endurance        hottest cells: column {} with {} presets + {} pulses per run; {:.3e} runs to a {:e}-write budget ({:.3e} s of back-to-back runs)",
            r.hottest_col_name.as_deref().unwrap_or("?"),
            r.counts.hottest.presets,
            r.counts.hottest.pulses,
            runs,
            r.endurance_budget,
            r.lifetime_s_continuous.unwrap_or(0.0)
        );
    }
    let Some(c) = &r.check else {
        return s;
    };
    if r.config.error_rate > 0.0 || r.config.error_rates_by_gate.is_some() {
        let rate = match &r.config.error_rates_by_gate {
            None => format!("{:e}", r.config.error_rate),
            Some(p) => {
                let used: Vec<String> = r
                    .counts
                    .by_gate
                    .keys()
                    .map(|g| format!("{g} {:.2e}", p[g.index()]))
                    .collect();
                format!("derived from noise margins ({})", used.join(", "))
            }
        };
        let _ = writeln!(
            s,
            "  faults           p = {} per gate output per lane: {} flips injected (rate {:.3e}); \
             output bit-error rate {:.3e} ({} of {} bits); wrong results {:.3e} ({} of {} lanes)",
            rate,
            c.injected_flips,
            c.injected_flips as f64 / r.lane_gate_evals.max(1) as f64,
            c.output_bits_wrong as f64 / c.output_bits.max(1) as f64,
            c.output_bits_wrong,
            c.output_bits,
            c.mismatched_lanes as f64 / c.lanes_checked.max(1) as f64,
            c.mismatched_lanes,
            c.lanes_checked
        );
        return s;
    }
    match &c.first_mismatch {
        None => {
            let _ = writeln!(
                s,
                "  check            all {} lanes equal the integer reference",
                c.lanes_checked
            );
        }
        Some(m) => {
            let _ = writeln!(
                s,
                "  check            FAILED: {} of {} lanes differ; first: lane {} inputs {:?} got {:?} expected {:?}",
                c.mismatched_lanes, c.lanes_checked, m.lane, m.inputs, m.got, m.expected
            );
        }
    }
    s
}

/// The components of a breakdown with their names.
fn components(e: &EnergyBreakdown) -> [(&'static str, f64); 9] {
    [
        ("logic pulses", e.logic_pulses_pj),
        ("presets", e.presets_pj),
        ("memory reads", e.memory_reads_pj),
        ("memory writes", e.memory_writes_pj),
        ("line drivers", e.line_drivers_pj),
        ("peripherals", e.peripherals_pj),
        ("bus", e.bus_pj),
        ("host I/O", e.host_io_pj),
        ("controller", e.controller_pj),
    ]
}

/// Non-zero components as shares of the total.
fn breakdown_shares(e: &EnergyBreakdown) -> String {
    let total = e.total_pj().max(f64::MIN_POSITIVE);
    let parts: Vec<String> = components(e)
        .into_iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(n, v)| format!("{n} {:.1} %", 100.0 * v / total))
        .collect();
    parts.join(", ")
}

/// An energy given in pJ, printed with an SI prefix.
fn joules(pj: f64) -> String {
    let (v, unit) = if pj >= 1e9 {
        (pj / 1e9, "mJ")
    } else if pj >= 1e6 {
        (pj / 1e6, "µJ")
    } else if pj >= 1e3 {
        (pj / 1e3, "nJ")
    } else if pj >= 1.0 {
        (pj, "pJ")
    } else {
        (pj * 1e3, "fJ")
    };
    format!("{v:.4} {unit}")
}
