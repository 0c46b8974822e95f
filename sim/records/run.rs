//! The record of a run: `report.json`, `manifest.json` and the rows of `layers.csv`.

use crate::records::{BaselineEnergy, ByBoundary, EnergyBreakdown};
use serde::{Deserialize, Serialize};

/// `manifest.json`: what produced a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Record layout version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// `cramulator` version.
    pub cramulator_version: String,
    /// Run identifier: the model and the first 12 hex digits of `config_hash`.
    pub run_id: String,
    /// FNV-1a 64-bit hash of `resolved.toml`, hex.
    pub config_hash: String,
    /// Seed of synthetic weights, random inputs and fault streams.
    pub seed: u64,
    /// Config file given on the command line, if any.
    pub config_file: Option<String>,
    /// `--set` overrides, in order.
    pub overrides: Vec<String>,
    /// Files written, relative to the run directory.
    pub files: Vec<String>,
}

/// The metrics of one machine running the workload, per inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Energy per inference, pJ.
    pub energy_pj: f64,
    /// Of which computing (CRAM: logic in the array, drivers, decoders, controller; baseline:
    /// arithmetic and instruction overhead), pJ.
    pub compute_pj: f64,
    /// Of which moving data (CRAM: memory-mode reads and writes, buses, host link;
    /// baseline: every memory level), pJ.
    pub data_movement_pj: f64,
    /// Of which static power × time, pJ (CRAM: its periphery's leakage over the run; the
    /// non-volatile cells leak nothing; docs/model.md §1.1.2).
    pub static_pj: f64,
    /// Latency of one inference, s.
    pub latency_s: f64,
    /// Inferences per second sustained over the batch the run prices: CRAM, its images ÷
    /// `batch_latency_s`; a baseline, 1 ÷ the time per inference in a batch of
    /// `compare.batch`.
    pub throughput_per_s: f64,
    /// Dense network ops (2 per MAC) per pJ, which is TOPS/W.
    pub tops_per_w: f64,
    /// Energy per inference × latency of one inference, J·s.
    pub edp_j_s: f64,
    /// Chip area, mm², where known.
    pub area_mm2: Option<f64>,
    /// Dense network ops (2 per MAC) per second at `throughput_per_s`, per mm² of
    /// `area_mm2`: TOPS/mm², where the area is known.
    pub tops_per_mm2: Option<f64>,
    /// For one inference alone: CRAM, lanes holding work over lanes of the subarrays run;
    /// a baseline, its achieved MAC rate over the peak.
    pub utilization: f64,
    /// CO2e of the electricity for one inference, g.
    pub co2e_g_per_inference: f64,
    /// CO2e of a million inferences, kg.
    pub co2e_kg_per_million: f64,
}

impl Metrics {
    /// Metrics from the energy split, the latency of one inference, the throughput and the
    /// work.
    pub fn new(
        (compute_pj, data_movement_pj, static_pj): (f64, f64, f64),
        (latency_s, throughput_per_s): (f64, f64),
        macs: u64,
        area_mm2: Option<f64>,
        utilization: f64,
        grid_gco2e_per_kwh: f64,
    ) -> Metrics {
        let energy_pj = compute_pj + data_movement_pj + static_pj;
        // 1 kWh = 3.6e6 J = 3.6e18 pJ.
        let co2e_g = energy_pj / 3.6e18 * grid_gco2e_per_kwh;
        Metrics {
            energy_pj,
            compute_pj,
            data_movement_pj,
            static_pj,
            latency_s,
            throughput_per_s,
            tops_per_w: if energy_pj > 0.0 {
                2.0 * macs as f64 / energy_pj
            } else {
                0.0
            },
            edp_j_s: energy_pj * 1e-12 * latency_s,
            area_mm2,
            tops_per_mm2: area_mm2
                .filter(|&a| a > 0.0)
                .map(|a| 2.0 * macs as f64 * throughput_per_s * 1e-12 / a),
            utilization,
            co2e_g_per_inference: co2e_g,
            co2e_kg_per_million: co2e_g * 1e6 / 1e3,
        }
    }
}

/// The IR-drop check of a run (`arch/src/ir.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IrSummary {
    /// Rows on one driven bit-select line segment.
    pub rows_per_line: u64,
    /// Line resistance per cell pitch, Ω.
    pub r_wire_ohm_per_cell: f64,
    /// The gates whose far row falls outside their window, with the numbers. Non-empty only
    /// when the run went on under `cram.allow_ir_violation`: its results then assume every
    /// gate still switches.
    pub violations: Vec<String>,
}

/// The warning line a text report prints for IR-drop violations (`how`: what went on
/// anyway); empty when there are none.
pub fn ir_warning(violations: &[String], how: &str) -> String {
    if violations.is_empty() {
        String::new()
    } else {
        format!(
            "WARNING: IR drop violated ({how}): {}\n",
            violations.join("; ")
        )
    }
}

/// What a run or a simulation went on under when the IR drop was violated.
pub const IR_ALLOWED: &str =
    "run under --allow-ir-violation; results assume every gate still switches";

/// The CRAM side of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CramSide {
    /// Device: the preset or file the configuration named, with the keys it overrode in
    /// brackets (`stt-projected [tmr = 4.0]`).
    pub device: String,
    /// Array, named the same way.
    pub array: String,
    /// The IR-drop check.
    pub ir: IrSummary,
    /// Gate set.
    pub gate_set: String,
    /// `functional` or `analytical`.
    pub mode: String,
    /// Images run (energy is their mean).
    pub images: usize,
    /// Images whose outputs equal the golden executor's (functional mode).
    pub bit_exact_images: Option<usize>,
    /// Correct predictions (labelled inputs, functional mode).
    pub correct: Option<usize>,
    /// Time for the whole batch of `images` on the chip at once (images share lanes and
    /// subarrays as the mapper places them), s. Equals `metrics.latency_s` for one image.
    pub batch_latency_s: f64,
    /// Metrics per inference.
    pub metrics: Metrics,
    /// One inference alone: Σ of the layers' lane-cycles ÷ (lanes on the chip × its
    /// cycles), the share of the chip's lanes kept busy over its time.
    pub chip_lane_utilization: f64,
    /// One inference alone: Σ of the layers' lower-bound cycles ÷ its cycles
    /// (docs/model.md §2.8).
    pub mapping_efficiency: f64,
    /// Energy per inference by component.
    pub energy: EnergyBreakdown,
    /// Energy per inference inside each boundary, pJ: the array, the macro, the chip and
    /// the system (`system` is `metrics.energy_pj`; docs/model.md §4.1).
    pub energy_by_boundary: ByBoundary,
    /// The chip: its area by component and its periphery's leakage.
    pub chip: ChipReport,
    /// Whether the weights stay resident in the cells, and what writing them costs.
    pub residency: ResidencyReport,
    /// Gate errors: each gate's derived error rate and what follows for an inference.
    pub reliability: Reliability,
}

/// One CRAM chip's area by component and its periphery's leakage (docs/model.md §1.1.2 and
/// §1.1.3). `metrics.area_mm2` is `chips` × the area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChipReport {
    /// Chips the run spans.
    pub chips: u64,
    /// One chip's area, mm²: the sum of `area_by_component`.
    pub area_mm2: f64,
    /// One chip's area by component, mm²: `cells`, `line drivers`, `sense amplifiers`,
    /// `decoders`, `controller`, `buses`, and `unattributed` (the rest, when the array file
    /// gives `array_efficiency` instead of a node).
    pub area_by_component: Vec<(String, f64)>,
    /// One chip's periphery leakage, mW (the cells leak nothing).
    pub leakage_mw: f64,
    /// Whether idle subarrays' periphery is power-gated.
    pub power_gating: bool,
}

/// The gates a run evaluates, their derived error probabilities (`cramulator gates`), and
/// the expected effect on one inference (docs/model.md §1.7.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reliability {
    /// `mapping.max_gate_error`: every gate the run evaluates is at or below it.
    pub max_gate_error: f64,
    /// Each gate kind the run evaluates.
    pub gates: Vec<GateErrors>,
    /// Expected gate-output flips per inference: Σ over gates of evaluations × p_err.
    pub expected_flips_per_inference: f64,
    /// Probability that an inference sees no flip: Π over gates of (1 − p_err)^evaluations.
    /// A lower bound on the share of bit-exact inferences (a flip may be masked).
    pub p_flip_free_inference: f64,
    /// The golden executor's accuracy on the labelled images (what an error-free device
    /// computes); absent for unlabelled inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_accuracy: Option<f64>,
    /// Expected accuracy under the gates' error rates, if every inference with a flip were
    /// wrong: `clean_accuracy × p_flip_free_inference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_accuracy_min: Option<f64>,
    /// ... and if every one were right: `expected_accuracy_min + 1 − p_flip_free_inference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_accuracy_max: Option<f64>,
    /// Whether the functional run flipped gate outputs at these rates
    /// (`run.inject_gate_errors`); its `bit_exact_images` and `correct` are then the
    /// device's.
    pub injected: bool,
    /// Flips injected over all images (injected runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected_flips: Option<u64>,
}

/// One gate kind a run evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateErrors {
    /// Mnemonic (`NAND`).
    pub gate: String,
    /// Derived error probability per evaluation.
    pub p_err: f64,
    /// Lane evaluations per inference.
    pub evaluations_per_inference: f64,
    /// `p_err × evaluations_per_inference`.
    pub expected_flips_per_inference: f64,
}

/// Whether a network's stored weights stay resident in the cells between runs, why, and
/// the one-time cost of writing them (docs/model.md §2.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidencyReport {
    /// Whether they are resident.
    pub resident: bool,
    /// What the mapper did, in words.
    pub decision: String,
    /// Resident bits the layouts the search preferred need.
    pub wanted_bits: u64,
    /// Resident bits the chips hold (half of every subarray's cells).
    pub capacity_bits: u64,
    /// Of which reserved for the key and value caches (a generation's at its end, or a
    /// decode step's), which the weights cannot use.
    pub reserved_bits: u64,
    /// Chips the network is spread over (`cram.chips`).
    pub chips: u64,
    /// Chips whose resident share would hold `wanted_bits` (what `cram.chips` needs for
    /// the preferred layouts to stay resident).
    pub chips_needed: u64,
    /// Inferences one deployment serves (`run.inferences_per_deployment`).
    pub inferences_per_deployment: u64,
    /// Bits the deployment moves over the global bus.
    pub deployment_moved_bits: u64,
    /// Cells the deployment writes, once each.
    pub deployment_written_bits: u64,
    /// Time of the deployment, s.
    pub deployment_latency_s: f64,
    /// Energy of the deployment by component.
    pub deployment_energy: EnergyBreakdown,
    /// The deployment's energy ÷ inferences per deployment, pJ: each inference's share,
    /// not included in `energy`.
    pub deployment_pj_per_inference: f64,
}

/// How CRAM compares with one baseline: baseline ÷ CRAM for costs, CRAM ÷ baseline for
/// throughput; above 1, CRAM is better.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ratios {
    /// Energy per inference, baseline ÷ CRAM.
    pub energy: f64,
    /// Latency of one inference, baseline ÷ CRAM (CRAM's speed-up).
    pub speedup: f64,
    /// Throughput, CRAM ÷ baseline (each at its batch; see `Metrics::throughput_per_s`).
    pub throughput: f64,
    /// Energy-delay product, baseline ÷ CRAM.
    pub edp: f64,
    /// Compute energy, baseline ÷ CRAM.
    pub compute_energy: f64,
    /// Data-movement energy, baseline ÷ CRAM.
    pub data_movement_energy: f64,
    /// The baseline's whole energy per inference ÷ CRAM's inside each boundary (`system`
    /// is `energy`; docs/model.md §4.1).
    pub energy_by_boundary: ByBoundary,
}

/// One baseline machine's side of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaselineSide {
    /// Preset name (or the `name` in its file).
    pub name: String,
    /// What machine it is.
    pub description: String,
    /// Inferences priced as one batch (`compare.batch`): energy per inference and
    /// throughput are the batch's, latency is one inference's alone.
    pub batch: usize,
    /// Metrics per inference.
    pub metrics: Metrics,
    /// Energy per inference by component.
    pub energy: BaselineEnergy,
    /// Names of the memory levels, innermost first (the order of `energy.levels_pj`).
    pub levels: Vec<String>,
    /// Layers whose latency is bound by compute / by memory.
    pub compute_bound_layers: usize,
    /// Layers whose latency is bound by a memory level.
    pub memory_bound_layers: usize,
    /// This baseline against CRAM.
    pub versus_cram: Ratios,
}

/// The workload of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSummary {
    /// Network name.
    pub model: String,
    /// Layers (the input excluded).
    pub layers: usize,
    /// Dense MACs per inference.
    pub macs: u64,
    /// Weights.
    pub weights: u64,
    /// Nonzero weights.
    pub nonzero_weights: u64,
    /// Where the weights came from (the file or seeded synthetic ones), who chose the
    /// integer codes (the file, the `workload.*` settings, the file's recorded bit-widths)
    /// and what the activation ranges were calibrated on.
    pub origin: cram_workloads::prepare::Origin,
}

/// `report.json`: one CRAM architecture × one workload × the baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// Record layout version.
    pub schema_version: u32,
    /// Run identifier (as in the manifest).
    pub run_id: String,
    /// The workload.
    pub workload: WorkloadSummary,
    /// Carbon intensity used, g CO2e per kWh.
    pub grid_gco2e_per_kwh: f64,
    /// CRAM.
    pub cram: CramSide,
    /// Each baseline.
    pub baselines: Vec<BaselineSide>,
    /// A language model's generation (`workload.decode_tokens` > 0): the prefill above, then
    /// each decode step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<GenerationReport>,
}

/// A language model's generation, one sequence: the prompt's prefill (the run itself), then
/// `decode_tokens` decode steps, step k attending over the prompt and the k tokens before
/// it (it feeds the (k+1)-th generated token and gives the next's logits), each priced analytically at its own cache length with one set of quantized weights
/// and activation formats (docs/model.md §2.1); and the key/value cache's cells and wear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationReport {
    /// Tokens of the prompt (`workload.seq_len`).
    pub prompt_tokens: usize,
    /// Decode steps after it, one per generated token (`workload.decode_tokens`).
    pub decode_tokens: usize,
    /// CRAM first, then each baseline (batch 1: one sequence).
    pub machines: Vec<GenerationSide>,
    /// The key/value cache.
    pub cache: CacheReport,
}

/// One machine over a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationSide {
    /// `cram` or the baseline's name.
    pub machine: String,
    /// The prompt's prefill, pJ (CRAM: the run's energy per inference; a baseline: the
    /// prefill at batch 1, which differs from its row in `baselines` when `compare.batch` >
    /// 1).
    pub prefill_energy_pj: f64,
    /// The prefill's latency, s.
    pub prefill_latency_s: f64,
    /// Energy of each decode step, in order, pJ.
    pub step_energy_pj: Vec<f64>,
    /// Latency of each decode step, in order, s.
    pub step_latency_s: Vec<f64>,
    /// Every decode step's energy, pJ.
    pub decode_energy_pj: f64,
    /// Every decode step's latency, one after the other, s.
    pub decode_latency_s: f64,
    /// Mean energy per generated token, pJ.
    pub energy_per_token_pj: f64,
    /// Mean latency per generated token, s.
    pub latency_per_token_s: f64,
    /// Prefill and decode, pJ.
    pub total_energy_pj: f64,
    /// Prefill and decode, s.
    pub total_latency_s: f64,
    /// Baselines: the last decode step's layers whose time the memory bounds (at batch 1).
    pub last_step_memory_bound_layers: Option<usize>,
    /// Baselines: the last decode step's layers.
    pub last_step_layers: Option<usize>,
}

/// The key/value cache of a generation: its size against the chips' resident capacity, and
/// how long its cells and the compute cells last at the write budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheReport {
    /// Bits one token adds: every layer's key and value features at their activation bits.
    pub bits_per_token: u64,
    /// Bits the caches hold after the generation (prompt and generated tokens): reserved in
    /// the resident share from the prefill on (a cache that does not fit is refused).
    pub bits_at_end: u64,
    /// Resident bits the chips hold (half of every subarray's cells).
    pub resident_capacity_bits: u64,
    /// Of the rest, what the last decode step's deployment writes (resident weights and
    /// their per-channel constants), bits.
    pub resident_weight_bits: u64,
    /// Writes a cell survives (`run.endurance_budget`).
    pub endurance_budget: f64,
    /// Writes on each cache cell per generation: an entry is written once, by the step of
    /// its token, and never rewritten.
    pub writes_per_cache_cell: u64,
    /// Generated tokens until the hottest cache cells reach the budget, generation after
    /// generation of this length written into the same cells: budget × `decode_tokens`.
    pub cache_tokens_to_budget: f64,
    /// Write events of a decode step outside the cache, mean per generated token: logic
    /// pulses on gate outputs and memory-mode operand writes (presets not counted).
    pub compute_writes_per_token: f64,
    /// Cells of the chips.
    pub chip_cells: u64,
    /// Generated tokens until the compute cells reach the budget, at most: budget × chip
    /// cells ÷ `compute_writes_per_token`, the lifetime if every write were spread evenly
    /// over every cell of the chips (ideal wear levelling; any real placement wears out
    /// sooner). None if a step writes nothing.
    pub compute_tokens_to_budget_at_most: Option<f64>,
}

/// One row of `layers.csv`: one layer on one machine (long format: the machines' rows
/// follow each other).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerRow {
    /// `cram` or the baseline's name.
    pub machine: String,
    /// Layer index in the network (the input is 0).
    pub index: usize,
    /// Layer name.
    pub layer: String,
    /// Op name.
    pub op: String,
    /// Dense MACs of the layer.
    pub macs: u64,
    /// Energy per inference, at the run's batch (CRAM: its images; baseline:
    /// `compare.batch`), pJ.
    pub energy_pj: f64,
    /// Of which computing, pJ.
    pub compute_pj: f64,
    /// Of which moving data, pJ.
    pub data_movement_pj: f64,
    /// Of which static, pJ.
    pub static_pj: f64,
    /// Latency of the layer for one inference alone, s.
    pub latency_s: f64,
    /// CRAM: the strategy (const, stored, or empty); baseline: what bounds that latency.
    pub detail: String,
    /// CRAM, one inference alone: the layer's lane-cycles ÷ (lanes on the chip × its
    /// cycles); empty for a baseline.
    pub chip_lane_utilization: Option<f64>,
    /// CRAM, one inference alone: the layer's lower-bound cycles ÷ its cycles
    /// (docs/model.md §2.8); empty for a baseline.
    pub mapping_efficiency: Option<f64>,
    /// CRAM: of `energy_pj` (the system's), the energy inside the array, pJ
    /// (docs/model.md §4.1); empty for a baseline.
    pub array_pj: Option<f64>,
    /// CRAM: inside the macro (the array and its periphery), pJ; empty for a baseline.
    pub macro_pj: Option<f64>,
    /// CRAM: inside the chip (the macros, buses and controller), pJ; empty for a baseline.
    pub chip_pj: Option<f64>,
}

/// The files of a run folder (`results/<run-id>/`), in the order the manifest lists them.
pub const RUN_FILES: [&str; 4] = [
    "resolved.toml",
    "manifest.json",
    "report.json",
    "layers.csv",
];

/// Everything `run` produced: the records of the four files of its folder.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// `resolved.toml`: the configuration with every preset and default filled in.
    pub resolved: String,
    /// `manifest.json`.
    pub manifest: Manifest,
    /// `report.json`.
    pub report: RunReport,
    /// The rows of `layers.csv`.
    pub rows: Vec<LayerRow>,
    /// Every image bit-exact (functional mode).
    pub ok: bool,
}

impl RunRecord {
    /// The bytes of each file of [`RUN_FILES`], by name.
    pub fn files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, crate::error::Error> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        for r in &self.rows {
            csv.serialize(r)
                .map_err(|e| crate::error::Error::usage(format!("layers.csv: {e}")))?;
        }
        let csv = csv
            .into_inner()
            .map_err(|e| crate::error::Error::usage(format!("layers.csv: {e}")))?;
        Ok(vec![
            (RUN_FILES[0], self.resolved.clone().into_bytes()),
            (RUN_FILES[1], super::to_json(&self.manifest).into_bytes()),
            (RUN_FILES[2], super::to_json(&self.report).into_bytes()),
            (RUN_FILES[3], csv),
        ])
    }
}
