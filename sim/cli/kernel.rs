//! `cramulator kernel KIND`: one arithmetic kernel, gate by gate, every lane checked.

use crate::cli::common::*;
use crate::error::Error;
use crate::experiment::kernel::{ErrorRate, KernelRequest};
use crate::io::render::{Format, render};
use crate::model::kernels::KernelKind;
use crate::model::map::Mode;
use clap::Args;

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
    #[arg(long, default_value_t = crate::experiment::config::DEFAULT_ENDURANCE_BUDGET)]
    pub endurance_budget: f64,
    /// Run even if the IR drop along the shared lines would leave far rows outside a gate's
    /// window (the results then assume every gate still switches).
    #[arg(long)]
    pub allow_ir_violation: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn parse_kernel(s: &str) -> Result<KernelKind, String> {
    s.parse::<KernelKind>().map_err(|e| e.to_string())
}

/// `cramulator kernel`.
pub fn kernel(a: &KernelArgs) -> Result<Outcome, Error> {
    let error_rate = ErrorRate::parse(&a.error_rate, "--error-rate")?;
    let request = KernelRequest {
        kind: a.name,
        bits: a.bits,
        bits_b: a.bits_b,
        constant: a.constant,
        gate_set: a.gate_set.into(),
        device: a.device.clone(),
        array: a.array.clone(),
        lanes: a.lanes,
        lanes_per_subarray: a.lanes_per_subarray,
        subarrays: a.subarrays,
        seed: a.seed,
        error_rate,
        mode: match a.mode {
            ModeArg::Functional => Mode::Functional,
            ModeArg::Analytical => Mode::Analytical,
        },
        data_energy: a.data_energy,
        allow_ir_violation: a.allow_ir_violation,
        endurance_budget: a.endurance_budget,
        full_report: a.report,
    };
    let options = crate::cli::common::options(a.threads);
    let report = crate::experiment::kernel::run(&request, &options, &mut |listing| {
        if !a.trace {
            Ok(())
        } else if a.json {
            eprint!("{listing}");
            Ok(())
        } else {
            emit(listing)
        }
    })?;
    emit(&render(&report, Format::of_flags(a.json, false))?)?;
    // With fault injection, wrong lanes are the measurement, not a failure.
    let clean = report
        .check
        .as_ref()
        .is_none_or(|c| c.mismatched_lanes == 0);
    Ok(if clean || request.error_rate.injects() {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}
