//! The kernel experiment: one arithmetic kernel, gate by gate, every lane checked.

use std::time::Instant;

use cram_arch::{Device, GateLibrary, IrCheck, Org, presets};

use crate::error::Error;
use crate::experiment::options::Options;
use crate::model::energy::{EnergyTable, Placement, RunEnergy, run_energy};
use crate::model::engine::Tracer;
use crate::model::engine::count::{Counter, Counts};
use crate::model::engine::exec::Simd;
use crate::model::engine::isa::Col;
use crate::model::kernels::check::{CheckReport, RunConfig, run_and_check};
use crate::model::kernels::{GateSet, Kernel, KernelKind, KernelSpec};
use crate::model::map::Mode;
use crate::model::timing::{self, StepCycles};
use crate::records::{KernelRunReport, KernelTiming};

/// Most lanes a kernel runs in: 2^40.
pub const MAX_LANES: usize = 1 << 40;

/// Gate-output faults to inject.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErrorRate {
    /// The same probability for every gate (0 = none).
    Fixed(f64),
    /// Each gate's probability from the device's noise margins.
    Derived,
}

impl ErrorRate {
    /// Parses `derived` or a probability in [0, 1]; errors name the option `name` (the
    /// flag, or a keyword of the Python binding), the value and what is allowed.
    pub fn parse(value: &str, name: &str) -> Result<ErrorRate, Error> {
        if value == "derived" {
            return Ok(ErrorRate::Derived);
        }
        match value.parse::<f64>() {
            Ok(p) if (0.0..=1.0).contains(&p) => Ok(ErrorRate::Fixed(p)),
            _ => Err(Error::usage(format!(
                "{name} {value}: must be a probability in [0, 1] or `derived`"
            ))),
        }
    }

    /// Whether faults are injected.
    pub fn injects(self) -> bool {
        match self {
            ErrorRate::Fixed(p) => p > 0.0,
            ErrorRate::Derived => true,
        }
    }
}

/// A kernel run, as `cramulator kernel` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelRequest {
    /// The kernel.
    pub kind: KernelKind,
    /// Operand width, bits.
    pub bits: u32,
    /// Width of the second operand (default `bits`).
    pub bits_b: Option<u32>,
    /// The constant of `mulc` (default: a seeded nonzero one).
    pub constant: Option<i64>,
    /// The gate set the program is generated from.
    pub gate_set: GateSet,
    /// Device preset or TOML file.
    pub device: String,
    /// Array preset or TOML file.
    pub array: String,
    /// Lanes simulated.
    pub lanes: usize,
    /// Lanes per subarray (default: the array's).
    pub lanes_per_subarray: Option<usize>,
    /// Subarrays in parallel (default: the chip's).
    pub subarrays: Option<u32>,
    /// Seed of the operands and faults.
    pub seed: u64,
    /// Faults to inject (functional mode).
    pub error_rate: ErrorRate,
    /// Executed or counted.
    pub mode: Mode,
    /// Price the executed values' data-dependent energy (functional).
    pub data_energy: bool,
    /// Run although the IR drop keeps far rows from switching.
    pub allow_ir_violation: bool,
    /// Writes a cell endures.
    pub endurance_budget: f64,
    /// Report every component of the energy and timing.
    pub full_report: bool,
}

impl KernelRequest {
    /// `kind` at `bits` with every other setting at the command line's default: 4096 lanes
    /// of stt-projected on cram-1k, the maj gate set, functional, seed 1, no faults.
    pub fn new(kind: KernelKind, bits: u32) -> KernelRequest {
        KernelRequest {
            kind,
            bits,
            bits_b: None,
            constant: None,
            gate_set: GateSet::Maj,
            device: "stt-projected".into(),
            array: "cram-1k".into(),
            lanes: 4096,
            lanes_per_subarray: None,
            subarrays: None,
            seed: 1,
            error_rate: ErrorRate::Fixed(0.0),
            mode: Mode::Functional,
            data_energy: false,
            allow_ir_violation: false,
            endurance_budget: crate::experiment::config::DEFAULT_ENDURANCE_BUDGET,
            full_report: false,
        }
    }
}

/// Runs one kernel: builds its program for the gate set, checks it fits the array and the
/// device (IR drop), runs it in `lanes` lanes of seeded random data with every lane checked
/// against the integer reference (functional mode) or counts it (analytical), and prices
/// its cycles and energy. `trace` gets the program's listing before it runs (the caller
/// decides whether to show it).
///
/// ```
/// use cramulator::experiment::kernel::{KernelRequest, run};
/// use cramulator::experiment::options::Options;
/// use cramulator::model::kernels::KernelKind;
///
/// let request = KernelRequest::new(KernelKind::Add, 8);
/// let report = run(&request, &Options::default(), &mut |_| Ok(()))?;
/// let check = report.check.as_ref().expect("functional mode checks every lane");
/// assert_eq!(check.mismatched_lanes, 0);
/// assert_eq!(report.lanes, 4096);
/// # Ok::<(), cramulator::error::Error>(())
/// ```
pub fn run(
    a: &KernelRequest,
    options: &Options,
    trace: &mut dyn FnMut(&str) -> Result<(), Error>,
) -> Result<KernelRunReport, Error> {
    if !(1..=MAX_LANES).contains(&a.lanes) {
        return Err(Error::usage(format!(
            "--lanes {}: must be in 1..={MAX_LANES} (2^40)",
            a.lanes
        )));
    }
    let pool = options.pool()?;
    let threads = pool.current_num_threads();
    let (derived_errors, error_rate) = checked_settings(a)?;
    let analytical = a.mode == Mode::Analytical;
    let p = prepare(a, options, derived_errors, error_rate)?;
    trace(&Tracer::disassemble(&p.kernel.program))?;
    let t = Instant::now();
    if !analytical {
        check_memory(a, options, &p, threads)?;
    }
    let check = (!analytical).then(|| pool.install(|| run_and_check(&p.kernel, &p.cfg)));
    if check.as_ref().is_some_and(|c| c.interrupted) {
        return Err(Error::Interrupted);
    }
    let lanes = a.lanes as u64;
    let (kernel_timing, commands, needed) = kernel_timing(a, &p);
    let mut energy = price_energy(a, &p, commands, check.as_ref());
    // One chip's periphery leaks over the whole run (docs/model.md §1.1.2); power-gated,
    // each subarray the lanes fill only over its passes' cycles.
    let per_pass = kernel_timing.cycles / kernel_timing.passes.max(1);
    energy.add_leakage(
        p.org
            .leakage_pj(1, kernel_timing.cycles, needed.saturating_mul(per_pass)),
    );
    let wall_s = t.elapsed().as_secs_f64();
    let counts = p.counts;
    let lane_gate_evals = counts.gate_steps.saturating_mul(lanes);
    let pass_time_ns = kernel_timing.pass.time_ns;
    let report = KernelRunReport {
        kernel: p.spec.kind.name(),
        spec: (&p.spec).into(),
        device: p.device.params.name.clone(),
        mode: if analytical {
            "analytical"
        } else {
            "functional"
        },
        columns: p.kernel.program.cols(),
        lanes,
        subarrays: needed,
        lane_gate_evals,
        timing: kernel_timing,
        ir: p.ir,
        energy: (&energy).into(),
        config: (&p.cfg).into(),
        threads,
        simd: Simd::best(),
        lane_gate_evals_per_s_wall: lane_gate_evals as f64 / wall_s,
        lane_gate_evals_per_s_exec_thread: check
            .as_ref()
            .map(|c| lane_gate_evals as f64 / c.exec_cpu_s.max(1e-12)),
        endurance_budget: a.endurance_budget,
        full_report: a.full_report,
        hottest_col_name: counts
            .hottest_col
            .map(|c| p.kernel.program.col_name(c).to_owned()),
        runs_to_endurance_budget: (counts.hottest.total() > 0)
            .then(|| a.endurance_budget / counts.hottest.total() as f64),
        lifetime_s_continuous: (counts.hottest.total() > 0)
            .then(|| a.endurance_budget / counts.hottest.total() as f64 * pass_time_ns * 1e-9),
        counts: (&counts).into(),
        check: check.as_ref().map(Into::into),
        wall_s,
    };
    Ok(report)
}

/// Checks the endurance budget, the error rate and the settings the analytical mode refuses;
/// returns whether the error rates are derived and the fixed error rate.
fn checked_settings(a: &KernelRequest) -> Result<(bool, f64), Error> {
    if !(a.endurance_budget.is_finite() && a.endurance_budget >= 1.0) {
        return Err(Error::usage(format!(
            "--endurance-budget {}: must be a number of writes ≥ 1",
            a.endurance_budget
        )));
    }
    let (derived_errors, error_rate) = match a.error_rate {
        ErrorRate::Derived => (true, 0.0),
        ErrorRate::Fixed(p) if (0.0..=1.0).contains(&p) => (false, p),
        ErrorRate::Fixed(p) => {
            return Err(Error::usage(format!(
                "--error-rate {p}: must be a probability in [0, 1] or `derived`"
            )));
        }
    };
    let faults_on = a.error_rate.injects();
    let analytical = a.mode == Mode::Analytical;
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
    Ok((derived_errors, error_rate))
}

/// A kernel ready to run: its device and array, its program, its counts and IR check, and
/// the run's settings.
struct Prepared {
    device: Device,
    org: Org,
    lanes_per_subarray: usize,
    subarrays: u64,
    lib: GateLibrary,
    spec: KernelSpec,
    kernel: Kernel,
    cols: usize,
    counts: Counts,
    ir: IrCheck,
    cfg: RunConfig,
}

/// Loads the device and array, checks the lane and subarray settings, builds the kernel's
/// program and checks it fits the array and the device (IR drop).
fn prepare(
    a: &KernelRequest,
    options: &Options,
    derived_errors: bool,
    error_rate: f64,
) -> Result<Prepared, Error> {
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
        kind: a.kind,
        bits: a.bits,
        bits_b: a.bits_b.unwrap_or(a.bits),
        constant: a.constant.unwrap_or(0),
        gate_set: a.gate_set,
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
        error_rates_by_gate: derived_errors.then(|| crate::model::reliability::derived_rates(&lib)),
        track_zeros: a.data_energy,
        stop: options.limits.stop,
    };
    Ok(Prepared {
        device,
        org,
        lanes_per_subarray,
        subarrays,
        lib,
        spec,
        kernel,
        cols,
        counts,
        ir,
        cfg,
    })
}

/// Refuses a functional run whose executor blocks (one per thread) would pass the memory
/// limit.
fn check_memory(
    a: &KernelRequest,
    options: &Options,
    p: &Prepared,
    threads: usize,
) -> Result<(), Error> {
    // The executor holds one block of subarrays per thread, whatever the lane count.
    let block =
        crate::model::kernels::check::executor_block(&p.kernel, p.lanes_per_subarray).min(a.lanes);
    let words = block.div_ceil(64) as u64;
    crate::model::limits::MemoryEstimate {
        cells_bytes: threads as u64 * words * 8 * p.kernel.program.cols() as u64,
        advice: "use fewer threads or a smaller --lanes-per-subarray, or a larger \
                 --max-memory",
        ..Default::default()
    }
    .check(
        &format!("kernel {} on {} lanes", p.spec.kind.name(), a.lanes),
        options.limits.memory,
    )?;
    Ok(())
}

/// The kernel's timing: the program broadcast to the subarrays in use, once per pass.
/// Returns the timing, the commands of all passes and the subarrays the lanes fill.
fn kernel_timing(a: &KernelRequest, p: &Prepared) -> (KernelTiming, u64, u64) {
    let lanes = a.lanes as u64;
    let needed = lanes.div_ceil(p.lanes_per_subarray as u64);
    let in_parallel = needed.min(p.subarrays);
    let passes = needed.div_ceil(in_parallel);
    let pass = timing::schedule(
        &p.device,
        &p.org,
        &timing::broadcast(&p.kernel.program, in_parallel as u32),
    );
    let commands = pass.commands * passes;

    let kernel_timing = KernelTiming {
        array: p.org.params.name.clone(),
        steps: (&StepCycles::derive(&p.device, &p.org)).into(),
        subarrays_in_parallel: in_parallel,
        passes,
        cycles: pass.cycles * passes,
        time_ns: pass.time_ns * passes as f64,
        pass: (&pass).into(),
    };
    (kernel_timing, commands, needed)
}

/// The energy of the run, with the executed values' zero histograms when `--data-energy`.
fn price_energy(
    a: &KernelRequest,
    p: &Prepared,
    commands: u64,
    check: Option<&CheckReport>,
) -> RunEnergy {
    let table = EnergyTable::derive(&p.lib, &p.org);
    let inputs: Vec<Col> = p
        .kernel
        .inputs
        .iter()
        .flat_map(|o| o.cols.iter().copied())
        .collect();
    let placement = Placement {
        lanes: a.lanes as u64,
        lines: cram_arch::Lines::new(
            p.lanes_per_subarray as u64,
            u64::from(p.org.params.peripherals.lanes_per_line_segment),
        ),
        cols: p.cols as u64,
        commands,
    };
    let measured = check
        .filter(|_| a.data_energy)
        .map(|c| c.zero_histograms.as_slice());
    run_energy(
        &p.kernel.program,
        &inputs,
        &table,
        placement,
        a.seed,
        measured,
    )
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
