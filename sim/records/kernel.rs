//! The record of a kernel run (`kernel --json`), with the model's counts, schedule, settings
//! and check results converted at the boundary.

use crate::model::engine::count;
use crate::model::engine::exec::Simd;
use crate::model::kernels::{self, GateSet, KernelKind, check};
use crate::model::timing;
use crate::records::energy::RunEnergy;
use cram_arch::{GateKind, IrCheck};
use serde::Serialize;
use std::collections::BTreeMap;

/// What was generated: kernel, widths, constant, gate set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct KernelSpec {
    /// Which kernel.
    pub kind: KernelKind,
    /// Width n of operand a (and of b for two-operand kernels other than multiply).
    pub bits: u32,
    /// Width m of operand b for `mul`/`smul`.
    pub bits_b: u32,
    /// The constant of `mulc`.
    pub constant: i64,
    /// Gate set the program was generated from.
    pub gate_set: GateSet,
}

impl From<&kernels::KernelSpec> for KernelSpec {
    fn from(k: &kernels::KernelSpec) -> Self {
        KernelSpec {
            kind: k.kind,
            bits: k.bits,
            bits_b: k.bits_b,
            constant: k.constant,
            gate_set: k.gate_set,
        }
    }
}

/// What a program does, counted op by op.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Counts {
    /// Logic steps (one gate pulse each, with its preset if it has one).
    pub gate_steps: u64,
    /// Gate steps by gate kind.
    pub by_gate: BTreeMap<GateKind, u64>,
    /// Output presets folded into gate steps.
    pub gate_presets: u64,
    /// Stand-alone column presets.
    pub column_presets: u64,
    /// Lane-mask changes.
    pub masks: u64,
    /// Memory-mode row reads.
    pub row_reads: u64,
    /// Memory-mode row writes.
    pub row_writes: u64,
    /// Σ over gate steps of the number of selected lanes.
    pub lane_gate_evals: u64,
    /// The most-written cell (its column), if any cell is written.
    pub hottest_col: Option<u16>,
    /// Writes to the most-written cell per run of the program.
    pub hottest: CellWrites,
}

/// Write events on one cell during one run of a program.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct CellWrites {
    /// Preset writes (stand-alone or folded into a gate step) and memory-mode row writes.
    pub presets: u64,
    /// Logic pulses that target the cell as a gate output.
    pub pulses: u64,
}

impl From<&count::Counts> for Counts {
    fn from(c: &count::Counts) -> Self {
        Counts {
            gate_steps: c.gate_steps,
            by_gate: c.by_gate.clone(),
            gate_presets: c.gate_presets,
            column_presets: c.column_presets,
            masks: c.masks,
            row_reads: c.row_reads,
            row_writes: c.row_writes,
            lane_gate_evals: c.lane_gate_evals,
            hottest_col: c.hottest_col,
            hottest: CellWrites {
                presets: c.hottest.presets,
                pulses: c.hottest.pulses,
            },
        }
    }
}

/// Cycles of each array-step kind on a device and organisation.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct StepCycles {
    /// Gate step with its output preset: preset + pulse + set-up.
    pub gate: u64,
    /// Gate step without preset: pulse + set-up.
    pub gate_no_preset: u64,
    /// Stand-alone column preset: write + set-up.
    pub preset: u64,
    /// Lane-mask change: set-up (at least one cycle).
    pub set_mask: u64,
    /// Memory-mode row read: sense + set-up.
    pub read_row: u64,
    /// Memory-mode row write: write + set-up.
    pub write_row: u64,
}

impl From<&timing::StepCycles> for StepCycles {
    fn from(s: &timing::StepCycles) -> Self {
        StepCycles {
            gate: s.gate,
            gate_no_preset: s.gate_no_preset,
            preset: s.preset,
            set_mask: s.set_mask,
            read_row: s.read_row,
            write_row: s.write_row,
        }
    }
}

/// A resource commands compete for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum Resource {
    /// The controller's issue slots.
    Issue,
    /// One subarray.
    Subarray(u32),
    /// The bus of one bank.
    BankBus(u32),
    /// The bus between banks.
    GlobalBus,
    /// The host link.
    HostLink,
}

impl From<timing::Resource> for Resource {
    fn from(r: timing::Resource) -> Self {
        match r {
            timing::Resource::Issue => Resource::Issue,
            timing::Resource::Subarray(s) => Resource::Subarray(s),
            timing::Resource::BankBus(b) => Resource::BankBus(b),
            timing::Resource::GlobalBus => Resource::GlobalBus,
            timing::Resource::HostLink => Resource::HostLink,
        }
    }
}

/// Busy time of one resource.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ResourceUse {
    /// Which resource.
    pub resource: Resource,
    /// Readable name.
    pub name: String,
    /// Cycles it was held.
    pub busy_cycles: u64,
    /// Busy cycles over total cycles (issue: commands over slots).
    pub utilization: f64,
}

/// Outcome of scheduling a program.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TimingReport {
    /// Cycles from the first issue to the end of the last command.
    pub cycles: u64,
    /// The same in ns.
    pub time_ns: f64,
    /// Commands scheduled.
    pub commands: u64,
    /// Every resource that was used, in resource order.
    pub resources: Vec<ResourceUse>,
    /// Commands on the critical path (the chain that ends last).
    pub critical_path_commands: u64,
    /// Cycles of the critical path spent holding each resource, by resource name.
    pub critical_path_cycles: BTreeMap<String, u64>,
}

impl From<&timing::TimingReport> for TimingReport {
    fn from(t: &timing::TimingReport) -> Self {
        TimingReport {
            cycles: t.cycles,
            time_ns: t.time_ns,
            commands: t.commands,
            resources: t
                .resources
                .iter()
                .map(|u| ResourceUse {
                    resource: u.resource.into(),
                    name: u.name.clone(),
                    busy_cycles: u.busy_cycles,
                    utilization: u.utilization,
                })
                .collect(),
            critical_path_commands: t.critical_path_commands,
            critical_path_cycles: t.critical_path_cycles.clone(),
        }
    }
}

/// How the kernel was run.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct RunConfig {
    /// Total lanes simulated.
    pub lanes: usize,
    /// Lanes per subarray.
    pub lanes_per_subarray: usize,
    /// Seed of the operand data (and, through a fixed key, of the injected faults).
    pub seed: u64,
    /// Probability that a gate step's output is wrong in a lane (0 = no fault injection);
    /// ignored when `error_rates_by_gate` is given.
    pub error_rate: f64,
    /// Per-gate error probabilities (gate index order), derived from the device's noise
    /// margins.
    pub error_rates_by_gate: Option<[f64; GateKind::COUNT]>,
    /// Every gate step's input-zero histogram was recorded (data-dependent energy).
    pub track_zeros: bool,
}

impl From<&check::RunConfig> for RunConfig {
    fn from(c: &check::RunConfig) -> Self {
        RunConfig {
            lanes: c.lanes,
            lanes_per_subarray: c.lanes_per_subarray,
            seed: c.seed,
            error_rate: c.error_rate,
            error_rates_by_gate: c.error_rates_by_gate,
            track_zeros: c.track_zeros,
        }
    }
}

/// One lane whose output disagreed with the reference.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Mismatch {
    /// Global lane index.
    pub lane: u64,
    /// Raw input patterns.
    pub inputs: Vec<u64>,
    /// Raw output patterns the array produced.
    pub got: Vec<u64>,
    /// Raw output patterns of the reference.
    pub expected: Vec<u64>,
}

/// The check of a functional kernel run.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// Lanes simulated and checked.
    pub lanes_checked: u64,
    /// Lanes whose output differed from the reference.
    pub mismatched_lanes: u64,
    /// The lowest-numbered mismatching lane, if any.
    pub first_mismatch: Option<Mismatch>,
    /// Order-independent digest of every output bit of every lane: equal digests mean equal
    /// results (compare runs with different thread counts).
    pub output_digest: u64,
    /// Gate-output flips injected (0 without an error rate).
    pub injected_flips: u64,
    /// Output bits checked (lanes × output width).
    pub output_bits: u64,
    /// Output bits that differ from the reference.
    pub output_bits_wrong: u64,
    /// Summed time inside the executor over all threads, seconds.
    pub exec_cpu_s: f64,
}

impl From<&check::CheckReport> for CheckReport {
    fn from(c: &check::CheckReport) -> Self {
        CheckReport {
            lanes_checked: c.lanes_checked,
            mismatched_lanes: c.mismatched_lanes,
            first_mismatch: c.first_mismatch.as_ref().map(|m| Mismatch {
                lane: m.lane,
                inputs: m.inputs.clone(),
                got: m.got.clone(),
                expected: m.expected.clone(),
            }),
            output_digest: c.output_digest,
            injected_flips: c.injected_flips,
            output_bits: c.output_bits,
            output_bits_wrong: c.output_bits_wrong,
            exec_cpu_s: c.exec_cpu_s,
        }
    }
}

/// Timing of a kernel run: one pass is the program broadcast to the subarrays in use.
#[derive(Debug, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Serialize, schemars::JsonSchema)]
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
