//! `cramulator kernel KIND`: one arithmetic kernel, gate by gate, every lane checked.

use crate::cli::common::*;
use crate::error::Error;
use crate::io::render::kernel::*;
use crate::model::energy::{EnergyTable, Placement, run_energy};
use crate::model::engine::Tracer;
use crate::model::engine::count::Counter;
use crate::model::engine::exec::Simd;
use crate::model::engine::isa::Col;
use crate::model::kernels::check::{RunConfig, run_and_check};
use crate::model::kernels::{KernelKind, KernelSpec};
use crate::model::timing::{self, StepCycles};
use crate::records::*;
use clap::Args;
use cram_arch::{GateLibrary, IrCheck, presets};
use std::time::Instant;

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
pub(crate) const MAX_LANES: usize = 1 << 40;

pub(crate) fn parse_kernel(s: &str) -> Result<KernelKind, String> {
    s.parse::<KernelKind>().map_err(|e| e.to_string())
}

/// `cramulator kernel`.
pub fn kernel(a: &KernelArgs) -> Result<Outcome, Error> {
    if !(1..=MAX_LANES).contains(&a.lanes) {
        return Err(Error::usage(format!(
            "--lanes {}: must be in 1..={MAX_LANES} (2^40)",
            a.lanes
        )));
    }
    let pool = crate::cli::guard::pool(a.threads, "--threads")?;
    let threads = pool.current_num_threads();
    if !(a.endurance_budget.is_finite() && a.endurance_budget >= 1.0) {
        return Err(Error::usage(format!(
            "--endurance-budget {}: must be a number of writes ≥ 1",
            a.endurance_budget
        )));
    }
    let derived_errors = a.error_rate == "derived";
    let error_rate = if derived_errors {
        0.0
    } else {
        match a.error_rate.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => p,
            _ => {
                return Err(Error::usage(format!(
                    "--error-rate {}: must be a probability in [0, 1] or `derived`",
                    a.error_rate
                )));
            }
        }
    };
    let faults_on = derived_errors || error_rate > 0.0;
    let analytical = a.mode == ModeArg::Analytical;
    if analytical && a.data_energy {
        return Err(Error::usage(
            "--data-energy needs --mode functional (it prices executed values)",
        ));
    }
    if analytical && faults_on {
        return Err(Error::usage(
            "--error-rate needs --mode functional (faults change values)",
        ));
    }
    let device = presets::device(&a.device).map_err(Error::from)?;
    let org = presets::array(&a.array).map_err(Error::from)?;
    let lanes_per_subarray = a
        .lanes_per_subarray
        .unwrap_or(org.params.lanes_per_subarray as usize);
    if !(1..=1 << 20).contains(&lanes_per_subarray) {
        return Err(Error::usage(format!(
            "--lanes-per-subarray {lanes_per_subarray}: must be in 1..=1048576"
        )));
    }
    let chip_subarrays = org.subarrays();
    if a.subarrays
        .is_some_and(|s| s == 0 || u64::from(s) > chip_subarrays)
    {
        return Err(Error::usage(format!(
            "--subarrays {}: array '{}' has {chip_subarrays} subarrays; use 1..={chip_subarrays}",
            a.subarrays.unwrap_or(0),
            org.params.name
        )));
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
        return Err(Error::usage(format!(
            "kernel {} needs {} columns but array '{}' has {cols} per subarray (cols_per_subarray)",
            spec.kind.name(),
            kernel.program.cols(),
            org.params.name
        )));
    }
    let counts = Counter::count(&kernel.program, lanes_per_subarray.min(a.lanes));
    let ir = IrCheck::new(
        &lib,
        &org,
        lanes_per_subarray.min(a.lanes) as u64,
        counts.by_gate.keys().copied(),
    );
    if !ir.ok() && !a.allow_ir_violation {
        return Err(Error::usage(ir.refusal(
            &a.array,
            &device.params.name,
            "pass --allow-ir-violation (or a smaller --lanes-per-subarray)",
        )));
    }
    let cfg = RunConfig {
        lanes: a.lanes,
        lanes_per_subarray,
        seed: a.seed,
        error_rate,
        error_rates_by_gate: derived_errors
            .then(|| std::array::from_fn(|i| lib.gates[i].error_prob)),
        track_zeros: a.data_energy,
        stop: crate::cli::guard::limits().stop,
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
        let block =
            crate::model::kernels::check::executor_block(&kernel, lanes_per_subarray).min(a.lanes);
        let words = block.div_ceil(64) as u64;
        crate::model::limits::MemoryEstimate {
            cells_bytes: threads as u64 * words * 8 * kernel.program.cols() as u64,
            advice: "use fewer threads or a smaller --lanes-per-subarray, or a larger \
                     --max-memory",
            ..Default::default()
        }
        .check(
            &format!("kernel {} on {} lanes", spec.kind.name(), a.lanes),
            crate::cli::guard::limits().memory,
        )?;
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
pub(crate) fn default_constant(seed: u64, bits: u32) -> i64 {
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
