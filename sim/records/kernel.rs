//! The record of a kernel run (`kernel --json`).

use crate::model::energy::RunEnergy;
use crate::model::engine::count::Counts;
use crate::model::engine::exec::Simd;
use crate::model::kernels::KernelSpec;
use crate::model::kernels::check::{CheckReport, RunConfig};
use crate::model::timing::{StepCycles, TimingReport};
use cram_arch::IrCheck;
use serde::Serialize;

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
