//! Run configuration: one CRAM architecture × one workload × a mapping, as a TOML file
//! (docs/model.md §8), parsed with unknown keys refused and validated into the objects a run
//! needs ([`Resolved`]). `cramulator map` reads it; `simulate` builds one from its flags.
//!
//! ```toml
//! [cram]
//! device = "stt-projected"    # preset name or device TOML file (or an inline table)
//! array = "cram-1k"           # preset name or array TOML file
//! gate_set = "maj"            # maj | nand
//!
//! [workload]
//! model = "resnet20"          # zoo network, shipped digits model, .onnx or own-format .toml
//! weight_bits = 4             # default 8 (a quantized file: its recorded bits); 1: binary
//! act_bits = 8                # default 8 (a quantized file: its recorded bits)
//! sparsity = 0.5              # unstructured, in [0, 1)
//! calibration_data = "x.npy"  # a float model file's calibration inputs, [N, C, H, W]
//! seq_len = 128               # bert-base, gpt2-small: tokens; gpt2-small-decode: new ones
//! cached_tokens = 128         # gpt2-small-decode: tokens already in its KV caches
//! decode_tokens = 8           # gpt2-small: tokens generated after the prompt (0: none)
//!
//! [mapping]                   # docs/model.md §2.2, §2.7; each key pins one dimension
//! strategy = "auto"           # auto | const | stored
//! objective = "energy"        # energy | latency | edp (what the search minimizes)
//! slices = "auto"             # "auto" | reduction slices across lanes (stored)
//! programs = "auto"           # auto | per-group | shared (stored)
//! residency = "auto"          # auto | resident | reload (stored weights)
//!
//! [run]
//! mode = "analytical"         # functional | analytical
//! seed = 1
//! images = 1                  # digits: held-out images (default 360); else random inputs
//! inferences_per_deployment = 1000000   # resident weights are written once per deployment
//! endurance_budget = 1e7      # writes a cell survives (a generation's cache endurance)
//!
//! [compare]
//! baselines = ["cpu-ddr4", "nmp"]   # presets (configs/baselines/) or TOML files
//! grid_gco2e_per_kwh = 436.0        # carbon intensity of the electricity
//! batch = 360                       # inferences a baseline batches (default: run.images)
//! ```
//!
//! A relative file path in a config file is taken relative to the file's folder.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use cram_arch::{BaselineParams, IrCheck, Source, presets};
use cram_workloads::compress::{BINARY_WEIGHTS, Binarize, Calibration, CompressSpec};
use cram_workloads::prepare::Origin;
use cram_workloads::prune::Prune;
use cram_workloads::quant::{WeightMode, WeightScheme};
use cram_workloads::{golden, zoo};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::kernels::GateSet;
use crate::model::map::{Choice, DEFAULT_INFERENCES_PER_DEPLOYMENT, Hw, Mode, Objective, Strategy};
use crate::model::memo::Memo;

mod keys;
mod resolve;

pub use keys::check_key;
use keys::{flatten_keys, forget_model_hash, insert, labelled, parse_doc, relative_to, set_value};
use resolve::{DIGITS_FLOAT, compresses, is_file};
pub use resolve::{check_layer_gates, check_model_file, synthetic_model, zoo_program};

/// A run configuration; every section and key has a default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The CRAM chip.
    pub cram: CramConfig,
    /// The network and its compression.
    pub workload: WorkloadConfig,
    /// How layers are placed.
    pub mapping: MappingConfig,
    /// Mode and seed.
    pub run: RunSection,
    /// The machines CRAM is compared with (`cramulator run`).
    pub compare: CompareSection,
    /// `[paper]`: the claim, source and assumptions of a paper-validation file
    /// (`configs/papers/`). `cramulator validate` reads it; a run ignores it, and it is not
    /// part of the resolved config or its hash.
    #[serde(skip_serializing)]
    pub paper: Option<toml::Table>,
    /// Whether the values came from command-line flags (errors then name the flag).
    #[serde(skip)]
    pub from_flags: bool,
}

/// `[cram]`: device, array and gate set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CramConfig {
    /// Device preset name or TOML file, or the device's keys inline (`resolved.toml`).
    pub device: Source,
    /// Array preset name or TOML file, or the array's keys inline.
    pub array: Source,
    /// Gate set the programs are generated from.
    pub gate_set: GateSet,
    /// Overrides of the device's keys (those of a `configs/devices/` file), e.g.
    /// `tmr = 4.0`: sweeps reach device physics through these.
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub device_params: toml::Table,
    /// Overrides of the array's keys (those of a `configs/arrays/` file), e.g.
    /// `lanes_per_subarray = 512` or `global_bus.width_bits = 256`.
    #[serde(skip_serializing_if = "toml::Table::is_empty")]
    pub array_params: toml::Table,
    /// Run even when the IR drop along a line segment leaves its far rows outside a gate's
    /// window (`arch/src/ir.rs`); the report then says so and assumes every gate switches.
    /// Without it such a configuration is refused with the numbers.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_ir_violation: bool,
    /// Identical chips of the array the network is spread over (1..=4096), joined by the
    /// array's `[chip_link]` (docs/model.md §2.10). Several chips hold more resident
    /// weights and add lanes; data crossing between them pays the link.
    #[serde(skip_serializing_if = "is_one")]
    pub chips: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for CramConfig {
    fn default() -> Self {
        CramConfig {
            device: "stt-projected".into(),
            array: "cram-1k".into(),
            gate_set: GateSet::NandNot,
            device_params: toml::Table::new(),
            array_params: toml::Table::new(),
            allow_ir_violation: false,
            chips: 1,
        }
    }
}

/// `[workload]`: the network and, for zoo networks, its compression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// Zoo network name, shipped digits model, `.onnx` file or own-format `.toml` file.
    pub model: String,
    /// Weight bits of a zoo network (symmetric, per output channel; default 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_bits: Option<u32>,
    /// Activation bits of a zoo network (unsigned affine; default 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_bits: Option<u32>,
    /// Unstructured magnitude-pruning sparsity of a zoo network, in [0, 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparsity: Option<f64>,
    /// In a binary network (`weight_bits` or `act_bits` = 1): the weight bits of its first
    /// and last weighted layers, which keep 8-bit inputs (default 8; 1 binarizes them too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_ends_bits: Option<u32>,
    /// Seed of a zoo network's synthetic weights (default: `run.seed`). A sweep fixes it, so
    /// every design point runs the same network while `run.seed` varies per point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// A model file's calibration inputs: a NumPy `.npy` array of N inputs, `[N, C, H, W]`
    /// (or `[N, features]`), float or 8-bit (default: two seeded uniform [0, 1) inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration_data: Option<String>,
    /// Tokens a transformer zoo network runs on: `bert-base`'s and `gpt2-small`'s sequence
    /// (default 128), a `gpt2-small-decode` step's new tokens (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_len: Option<usize>,
    /// Tokens already in a `gpt2-small-decode` step's key and value caches (default 128).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<usize>,
    /// Tokens a language model (`gpt2-small`) generates after its `seq_len`-token prompt
    /// (default [`zoo::DECODE_TOKENS`]; 0: the prefill alone). The run prices the prefill,
    /// then every decode step at its own cache length (`report.json`'s `generation`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_tokens: Option<usize>,
    /// Digest of the model file's bytes (16 hex digits), as `resolved.toml` records it: a run
    /// refuses a model file whose bytes no longer match, instead of running other weights
    /// under the same id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_hash: Option<String>,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            model: "digits-mlp-int4".into(),
            weight_bits: None,
            act_bits: None,
            sparsity: None,
            binary_ends_bits: None,
            seed: None,
            calibration_data: None,
            seq_len: None,
            cached_tokens: None,
            decode_tokens: None,
            model_hash: None,
        }
    }
}

/// Per-layer strategy choice in a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategyChoice {
    /// Chosen per layer by the cost model under the objective.
    Auto,
    /// Lane = output element, weights in the instruction stream.
    Const,
    /// Lane = output neuron, weights stored in cells.
    Stored,
}

/// `mapping.slices`: how many slices a stored layer's reduction is split into across
/// lanes, searched (`"auto"`) or pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlicesChoice {
    /// Searched per layer.
    Auto,
    /// This many (at most each layer's reduction length).
    Fixed(usize),
}

impl Serialize for SlicesChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SlicesChoice::Auto => s.serialize_str("auto"),
            SlicesChoice::Fixed(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for SlicesChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WordsOrCount {
            key: "slices",
            want: "\"auto\" or a whole number from 1 to 65536",
            words: &[("auto", SlicesChoice::Auto)],
            count: SlicesChoice::Fixed,
        })
    }
}

/// Reads a key that is one of some words or a whole number from 1 to 65536 (`count` makes
/// the value of a number); a message names the key, the value and `want`.
struct WordsOrCount<T: 'static> {
    key: &'static str,
    want: &'static str,
    words: &'static [(&'static str, T)],
    count: fn(usize) -> T,
}

impl<T: Copy> serde::de::Visitor<'_> for WordsOrCount<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.want)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        self.words
            .iter()
            .find(|(w, _)| *w == v)
            .map(|&(_, t)| t)
            .ok_or_else(|| E::custom(format!("{} = \"{v}\": expected {}", self.key, self.want)))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        match usize::try_from(v) {
            Ok(n) if (1..=65536).contains(&n) => Ok((self.count)(n)),
            _ => Err(E::custom(format!(
                "{} = {v}: expected {}",
                self.key, self.want
            ))),
        }
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(-1))
    }
}

/// `mapping.programs`: whether a stored layer's lane blocks each run their channel
/// group's program or all run one shared program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProgramsChoice {
    /// Searched per layer.
    Auto,
    /// A program per channel group (its all-zero weight-bit columns skipped).
    PerGroup,
    /// One program broadcast to every block.
    Shared,
}

/// `mapping.residency`: whether stored weights stay in the cells between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResidencyChoice {
    /// Resident where the search prefers it and the network fits; reload otherwise.
    Auto,
    /// Every stored layer resident (refused when the network does not fit).
    Resident,
    /// Weights written before every run.
    Reload,
}

/// `mapping.copies`: how many copies of a resident, shared stored layer's weights the
/// outputs take turns on (docs/model.md §2.2), searched, a lane per output, or pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopiesChoice {
    /// Searched per layer.
    Auto,
    /// A lane per output, each holding its own copy of its channel's weights.
    PerOutput,
    /// This many copies (at most each layer's images × output positions).
    Fixed(usize),
}

impl Serialize for CopiesChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CopiesChoice::Auto => s.serialize_str("auto"),
            CopiesChoice::PerOutput => s.serialize_str("per-output"),
            CopiesChoice::Fixed(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for CopiesChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WordsOrCount {
            key: "copies",
            want: "\"auto\", \"per-output\" or a whole number from 1 to 65536",
            words: &[
                ("auto", CopiesChoice::Auto),
                ("per-output", CopiesChoice::PerOutput),
            ],
            count: CopiesChoice::Fixed,
        })
    }
}

/// `[mapping]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingConfig {
    /// Per-layer strategy.
    pub strategy: StrategyChoice,
    /// What the search minimizes.
    pub objective: Objective,
    /// Reduction slices of stored layers.
    pub slices: SlicesChoice,
    /// Program sharing of stored layers.
    pub programs: ProgramsChoice,
    /// Weight residency of stored layers.
    pub residency: ResidencyChoice,
    /// Copies of a resident, shared stored layer's weights.
    pub copies: CopiesChoice,
    /// The largest derived error probability a gate the programs use may have (docs/model.md
    /// §1.7.1): a gate set with a gate above it is refused, and so is a layer whose
    /// programs would use one.
    pub max_gate_error: f64,
}

/// Default of `mapping.max_gate_error`: a gate may fail at most once in a million
/// evaluations (an assumption of this project, docs/model.md §1.7.1).
pub const DEFAULT_MAX_GATE_ERROR: f64 = 1e-6;

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            strategy: StrategyChoice::Auto,
            objective: Objective::Energy,
            slices: SlicesChoice::Auto,
            programs: ProgramsChoice::Auto,
            residency: ResidencyChoice::Auto,
            copies: CopiesChoice::Auto,
            max_gate_error: DEFAULT_MAX_GATE_ERROR,
        }
    }
}

impl MappingConfig {
    /// The layout choice these keys make, with resident energy shared over `inferences`
    /// per deployment, or why they contradict each other.
    pub fn choice(&self, inferences: u64) -> Result<Choice, String> {
        let strategy = match self.strategy {
            StrategyChoice::Const => Some(Strategy::Const),
            StrategyChoice::Stored => Some(Strategy::Stored),
            StrategyChoice::Auto => None,
        };
        let slices = match self.slices {
            SlicesChoice::Auto => None,
            SlicesChoice::Fixed(n) => Some(n),
        };
        let shared = match self.programs {
            ProgramsChoice::Auto => None,
            ProgramsChoice::PerGroup => Some(false),
            ProgramsChoice::Shared => Some(true),
        };
        let resident = match self.residency {
            ResidencyChoice::Auto => None,
            ResidencyChoice::Resident => Some(true),
            ResidencyChoice::Reload => Some(false),
        };
        if strategy == Some(Strategy::Const) && resident == Some(true) {
            return Err(
                "mapping.residency = \"resident\" with mapping.strategy = \"const\": \
                 const weights live in the instruction stream, not in cells; use strategy \
                 \"stored\" or \"auto\", or residency = \"reload\""
                    .to_owned(),
            );
        }
        if strategy == Some(Strategy::Const) {
            if let Some(n) = slices.filter(|&n| n > 1) {
                return Err(format!(
                    "mapping.slices = {n} with mapping.strategy = \"const\": a const layer \
                     runs its reduction whole in each lane; use strategy \"stored\" or \
                     \"auto\", or slices = 1"
                ));
            }
            if shared == Some(true) {
                return Err(
                    "mapping.programs = \"shared\" with mapping.strategy = \"const\": \
                     const channel sets are different programs; use strategy \"stored\" or \
                     \"auto\", or programs = \"per-group\""
                        .to_owned(),
                );
            }
        }
        let copies = match self.copies {
            CopiesChoice::Auto => None,
            CopiesChoice::PerOutput => Some(0),
            CopiesChoice::Fixed(n) => Some(n),
        };
        let (shared, resident) = match copies {
            Some(n @ 1..) => {
                let clash = [
                    (
                        strategy == Some(Strategy::Const),
                        "mapping.strategy = \"const\"",
                    ),
                    (shared == Some(false), "mapping.programs = \"per-group\""),
                    (resident == Some(false), "mapping.residency = \"reload\""),
                ];
                if let Some((_, key)) = clash.iter().find(|c| c.0) {
                    return Err(format!(
                        "mapping.copies = {n} with {key}: copies are of resident weights \
                         under one shared program of a stored layer; use copies = \"auto\" \
                         or \"per-output\", or leave {key} to \"auto\""
                    ));
                }
                (Some(true), Some(true))
            }
            _ => (shared, resident),
        };
        // A const layer has one slice and its own programs: pins that only it could meet
        // are the plain layout's.
        let (slices, shared, resident, copies) = match strategy {
            Some(Strategy::Const) => (Some(1), Some(false), Some(false), Some(0)),
            _ => (slices, shared, resident, copies),
        };
        Ok(Choice {
            objective: self.objective,
            strategy,
            slices,
            shared,
            resident,
            copies,
            inferences_per_deployment: inferences,
        })
    }
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Functional or analytical.
    pub mode: Mode,
    /// Seed of synthetic weights, random inputs and fault streams.
    pub seed: u64,
    /// Images: of the held-out digits for digits models (default all 360), else seeded
    /// random inputs (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<usize>,
    /// Inferences one deployment of the network serves: resident weights are written once
    /// per deployment, and their energy is shared over these inferences.
    pub inferences_per_deployment: u64,
    /// Functional mode: flip each gate's output at the gate's derived error probability
    /// (`cramulator gates`), so the values are those the modelled device would compute.
    #[serde(skip_serializing_if = "is_false")]
    pub inject_gate_errors: bool,
    /// Writes a cell survives, for the endurance estimates of a generation's key/value
    /// cache (default [`DEFAULT_ENDURANCE_BUDGET`]; a simulation setting, as `kernel
    /// --endurance-budget`, not device data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endurance_budget: Option<f64>,
}

/// Writes per cell the endurance estimates assume unless told: 1e7, the upper end of the
/// 10⁶–10⁷ budgets the public PIM endurance simulator studies (docs/model.md §1.7).
pub const DEFAULT_ENDURANCE_BUDGET: f64 = 1e7;

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            mode: Mode::Functional,
            seed: 1,
            images: None,
            inferences_per_deployment: DEFAULT_INFERENCES_PER_DEPLOYMENT,
            inject_gate_errors: false,
            endurance_budget: None,
        }
    }
}

/// `[compare]`: baselines and the carbon intensity of electricity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareSection {
    /// Baseline presets (`configs/baselines/`) or TOML files, or their keys inline.
    pub baselines: Vec<Source>,
    /// Carbon intensity of the electricity, g CO2e per kWh. Default: the 2022 world average
    /// of power generation, 436 g/kWh (Ember, Global Electricity Review 2023).
    pub grid_gco2e_per_kwh: f64,
    /// Inferences each baseline runs back to back as one batch, sharing every weight fetch
    /// (`baseline::evaluate`); energy per inference and throughput come from this batch,
    /// latency from one inference alone. Default: the CRAM run's image count, so both sides
    /// amortise what a batch shares over the same number of inferences. 1 prices each
    /// inference on its own, as the CRAM papers' near-memory baseline does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
}

impl Default for CompareSection {
    fn default() -> Self {
        CompareSection {
            baselines: vec!["cpu-ddr4".into(), "nmp".into()],
            grid_gco2e_per_kwh: 436.0,
            batch: None,
        }
    }
}

/// Compiled networks (and the digest of the model bytes they came from) by workload, shared
/// by the points of a sweep.
#[derive(Debug, Default)]
pub struct ProgramCache(Memo<String, Compiled>);

/// A compiled network and the digest of the model file's bytes (None for zoo networks).
pub(crate) type Compiled = (Arc<golden::Program>, Option<String>, Origin);

/// A validated configuration: the compiled network and the hardware it maps onto.
#[derive(Debug)]
pub struct Resolved {
    /// The integer program of the workload.
    pub prog: Arc<golden::Program>,
    /// The chip.
    pub hw: Hw,
    /// The strategy choice.
    pub choice: Choice,
    /// Whether the model is a zoo network (synthetic weights, random inputs).
    pub zoo: bool,
    /// Where its weights came from and who chose its codes.
    pub origin: Origin,
    /// The IR-drop check of the gate set's gates on the array's line segments (passed, or
    /// failed and allowed by `cram.allow_ir_violation`).
    pub ir: IrCheck,
    /// Digest of the bytes the model was read from (shipped or file models), for
    /// `workload.model_hash`.
    pub model_digest: Option<String>,
    /// The device as read, inline (before the config's overrides).
    pub device: Source,
    /// The array as read, inline (before the config's overrides).
    pub array: Source,
}

impl Config {
    /// A config from a file (or the built-in default when `path` is `None`) with `--set
    /// key.path=value` overrides applied in order. Errors name the file or the override,
    /// the key and the value; an unknown key lists the nearest valid ones.
    pub fn load_with(path: Option<&Path>, sets: &[String]) -> Result<Config, Error> {
        let origin = path.map_or("built-in default".to_owned(), |p| {
            format!("config '{}'", p.display())
        });
        let text = match path {
            Some(p) => {
                std::fs::read_to_string(p).map_err(|e| Error::usage(format!("{origin}: {e}")))?
            }
            None => String::new(),
        };
        let dir = path.map(|p| p.parent().unwrap_or(Path::new("")));
        Config::parse_with(&text, &origin, dir, sets)
    }

    /// A config from TOML text; errors start with `origin` (e.g. "config 'x.toml'").
    /// Preset names resolve as in a file; file paths are taken as they are.
    pub fn from_text(text: &str, origin: &str) -> Result<Config, Error> {
        Config::parse_with(text, origin, None, &[])
    }

    /// [`Config::load_with`] on text already read; `dir` is the config file's folder.
    fn parse_with(
        text: &str,
        origin: &str,
        dir: Option<&Path>,
        sets: &[String],
    ) -> Result<Config, Error> {
        let mut doc: toml::Table = toml::from_str(text)
            .map_err(|e| Error::usage(format!("{origin}: {}", e.to_string().trim_end())))?;
        toml::from_str::<Config>(text)
            .map_err(|e| Error::usage(format!("{origin}: {}", e.to_string().trim_end())))?;
        for set in sets {
            let Some((key, raw)) = set.split_once('=') else {
                return Err(Error::usage(format!(
                    "--set {set}: expected key.path=value, e.g. --set workload.sparsity=0.5"
                )));
            };
            let key = key.trim();
            check_key(key).map_err(|e| Error::usage(format!("--set {set}: {e}")))?;
            forget_model_hash(&mut doc, key);
            insert(&mut doc, key, set_value(key, raw.trim()))
                .and_then(|()| parse_doc(&doc).map(drop))
                .map_err(|e| Error::usage(format!("--set {set}: {e}")))?;
        }
        let mut c = parse_doc(&doc).map_err(|e| Error::usage(format!("{origin}: {e}")))?;
        if let Some(dir) = dir {
            c.relativize(dir);
        }
        c.validate().map_err(|e| {
            let via = if sets.is_empty() {
                String::new()
            } else {
                format!(" with --set {}", sets.join(" --set "))
            };
            Error::usage(format!("{origin}{via}: {e}"))
        })?;
        Ok(c)
    }

    /// File paths in the config taken relative to `dir` (the config file's folder).
    fn relativize(&mut self, dir: &Path) {
        let sources = [&mut self.cram.device, &mut self.cram.array]
            .into_iter()
            .chain(self.compare.baselines.iter_mut());
        for src in sources {
            if let Source::Named(v) = src {
                *v = relative_to(dir, v);
            }
        }
        self.workload.model = relative_to(dir, &self.workload.model);
        if let Some(c) = &mut self.workload.calibration_data {
            *c = relative_to(dir, c);
        }
    }

    /// This config with `sets` (`KEY=VALUE`, as `--set` takes them) applied in order, by
    /// the same rules as [`Config::load_with`]; a config built from a command's flags stays
    /// one.
    pub fn with_sets(&self, sets: &[String]) -> Result<Config, Error> {
        if sets.is_empty() {
            return Ok(self.clone());
        }
        let text = toml::to_string(self).expect("a config serializes");
        let c = Config::parse_with(&text, "the command's flags", None, sets)?;
        Ok(Config {
            from_flags: self.from_flags,
            ..c
        })
    }

    /// This config with some keys set to values (a sweep point): every key must be one of
    /// [`Config::keys`]; the result is validated. The error names the key and value.
    pub fn with_values(&self, values: &[(&str, &toml::Value)]) -> Result<Config, Error> {
        let mut doc = toml::Table::try_from(self).expect("a config serializes");
        for &(key, value) in values {
            check_key(key).map_err(Error::usage)?;
            forget_model_hash(&mut doc, key);
            insert(&mut doc, key, value.clone()).map_err(Error::usage)?;
        }
        let listed = || {
            values
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let c = parse_doc(&doc).map_err(|e| Error::usage(format!("{}: {e}", listed())))?;
        c.validate()
            .map_err(|e| Error::usage(format!("{}: {e}", listed())))?;
        Ok(Config {
            from_flags: self.from_flags,
            ..c
        })
    }

    /// Reads a config file; errors name the file and the offending key or value.
    pub fn read(path: &Path) -> Result<Config, Error> {
        Config::load_with(Some(path), &[])
    }

    /// `key` and `value` as the user wrote them: `section.key = value` in a file,
    /// `--key value` on the command line.
    fn named(&self, key: &str, value: impl std::fmt::Display) -> String {
        if self.from_flags {
            let flag = key.rsplit('.').next().unwrap_or(key).replace('_', "-");
            format!("--{flag} {value}")
        } else {
            format!("{key} = {value}")
        }
    }

    /// Checks every value that the types do not; the message names the key.
    pub fn validate(&self) -> Result<(), Error> {
        let n = self.run.inferences_per_deployment;
        if n == 0 {
            return Err(Error::usage(format!(
                "{}: must be at least 1",
                self.named("run.inferences_per_deployment", n)
            )));
        }
        self.mapping.choice(n).map_err(Error::usage)?;
        if let Some(b) = self.run.endurance_budget
            && !(b.is_finite() && b >= 1.0)
        {
            return Err(Error::usage(format!(
                "{}: must be a number of writes ≥ 1",
                self.named("run.endurance_budget", b)
            )));
        }
        let budget = self.mapping.max_gate_error;
        if !(budget > 0.0 && budget <= 1.0) {
            return Err(Error::usage(format!(
                "{}: must be a probability in (0, 1]",
                self.named("mapping.max_gate_error", budget)
            )));
        }
        if self.run.inject_gate_errors && self.run.mode == Mode::Analytical {
            return Err(Error::usage(format!(
                "{} with run.mode = \"analytical\": injected errors change values, which \
                 only a functional run computes (an analytical run states the expected \
                 errors instead); set run.mode = \"functional\"",
                self.named("run.inject_gate_errors", true)
            )));
        }
        let chips = self.cram.chips;
        if !(1..=4096).contains(&chips) {
            return Err(Error::usage(format!(
                "{}: must be in 1..=4096",
                self.named("cram.chips", chips)
            )));
        }
        let g = self.compare.grid_gco2e_per_kwh;
        if !(g.is_finite() && (0.0..=5000.0).contains(&g)) {
            return Err(Error::usage(format!(
                "compare.grid_gco2e_per_kwh = {g}: must be in [0, 5000] g CO2e per kWh"
            )));
        }
        for (key, n) in [
            ("run.images", self.run.images),
            ("compare.batch", self.compare.batch),
        ] {
            if let Some(n) = n
                && !(1..=1 << 16).contains(&n)
            {
                return Err(Error::usage(format!(
                    "{}: must be in 1..=65536",
                    self.named(key, n)
                )));
            }
        }
        let named: Vec<String> = self.compare.baselines.iter().map(Source::label).collect();
        if let Some((i, b)) = named
            .iter()
            .enumerate()
            .find(|(i, b)| named[..*i].contains(b))
        {
            return Err(Error::usage(format!(
                "{}: '{b}' is listed twice (entry {}); list each baseline once",
                self.named("compare.baselines", named.join(",")),
                i + 1
            )));
        }
        let w = &self.workload;
        if let Some(s) = w.sparsity
            && !(0.0..1.0).contains(&s)
        {
            return Err(Error::usage(format!(
                "{}: must be in [0, 1)",
                self.named("workload.sparsity", s)
            )));
        }
        self.compress_spec()?;
        // The token count first, then the cache beside it: an error names the key it
        // comes from.
        for (key, value, cached) in [
            ("workload.seq_len", w.seq_len, None),
            ("workload.cached_tokens", w.cached_tokens, w.cached_tokens),
        ] {
            if let Some(v) = value {
                zoo::model_sized(&w.model, w.seq_len, cached)
                    .map_err(|e| Error::usage(format!("{}: {e}", self.named(key, v))))?;
            }
        }
        let generated = w.decode_tokens.is_none_or(|n| n > 0);
        if let Some(n) = w.decode_tokens {
            let key = self.named("workload.decode_tokens", n);
            let Some(most) = zoo::generates(&w.model) else {
                return Err(Error::usage(format!(
                    "{key}: tokens are generated by a language model (gpt2-small); '{}' \
                     generates none",
                    w.model
                )));
            };
            let prompt = w
                .seq_len
                .or_else(|| zoo::default_tokens(&w.model))
                .unwrap_or(1);
            if prompt + n > most {
                return Err(Error::usage(format!(
                    "{key}: the {prompt}-token prompt and {n} generated tokens exceed \
                     the {most} positions of '{}'; use 0 to {}",
                    w.model,
                    most - prompt
                )));
            }
        }
        if let Some(b) = self.run.endurance_budget
            && (zoo::generates(&w.model).is_none() || !generated)
        {
            return Err(Error::usage(format!(
                "{}: the write budget applies to a generation's cache (a language model, \
                 gpt2-small, with workload.decode_tokens ≥ 1); '{}' generates nothing here",
                self.named("run.endurance_budget", b),
                w.model
            )));
        }
        if let Some(path) = &w.calibration_data
            && !is_file(&w.model)
        {
            return Err(Error::usage(format!(
                "{}: calibration inputs apply to model files (.onnx, .toml); '{}' is not one",
                self.named("workload.calibration_data", path),
                w.model
            )));
        }
        let c = &self.cram;
        presets::device_from(&c.device, &c.device_params)?;
        presets::array_from(&c.array, &c.array_params)?;
        let set = [
            ("workload.weight_bits", w.weight_bits.is_some()),
            ("workload.act_bits", w.act_bits.is_some()),
            ("workload.sparsity", w.sparsity.is_some()),
            ("workload.binary_ends_bits", w.binary_ends_bits.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|k| k.1)
            && !compresses(&w.model)
        {
            return Err(Error::usage(format!(
                "{}: weight bits, activation bits and sparsity compress zoo networks, the \
                 float {DIGITS_FLOAT} and model files (.onnx, .toml); '{}' is none of them \
                 (zoo: {})",
                self.named(key, "…"),
                w.model,
                zoo::MODELS.map(|m| m.0).join(", ")
            )));
        }
        Ok(())
    }

    /// The compression of a zoo network: symmetric per-channel weights of `weight_bits`
    /// (default 8), unsigned affine activations of `act_bits` (default 8), min/max
    /// calibrated, optionally pruned to `sparsity` (unstructured, by magnitude). One bit of
    /// either makes a binary network (docs/model.md §2.1): the weighted layers between the
    /// first and the last get ±α weights (`weight_bits = 1`) and ±1 inputs (`act_bits = 1`),
    /// the ends keep `binary_ends_bits`-bit weights (default 8) and 8-bit inputs, and every
    /// other activation keeps 8 bits.
    pub fn compress_spec(&self) -> Result<CompressSpec, Error> {
        let w = &self.workload;
        let (wb, ab) = (w.weight_bits.unwrap_or(8), w.act_bits.unwrap_or(8));
        let binary = wb == 1 || ab == 1;
        let symmetric = |bits| WeightScheme {
            bits,
            mode: WeightMode::Symmetric,
            per_channel: true,
        };
        if let Some(e) = w.binary_ends_bits {
            if !binary {
                return Err(Error::usage(format!(
                    "{}: applies to binary networks only (workload.weight_bits or \
                     workload.act_bits = 1)",
                    self.named("workload.binary_ends_bits", e)
                )));
            }
            if !(1..=16).contains(&e) {
                return Err(Error::usage(format!(
                    "{}: must be in 1..=16 (1 binarizes the first and last layers too)",
                    self.named("workload.binary_ends_bits", e)
                )));
            }
        }
        let ends = match w.binary_ends_bits.unwrap_or(8) {
            1 => None,
            e => Some(symmetric(e)),
        };
        let spec = CompressSpec {
            weights: if wb == 1 {
                BINARY_WEIGHTS
            } else {
                symmetric(wb)
            },
            act_bits: if ab == 1 { 8 } else { ab },
            act_symmetric: false,
            input: None,
            prune: w
                .sparsity
                .filter(|&s| s > 0.0)
                .map(|sparsity| Prune::Unstructured { sparsity }),
            calibration: Calibration::MinMax,
            binarize: binary.then_some(Binarize {
                weights: wb == 1,
                acts: ab == 1,
                ends,
            }),
        };
        spec.weights.validate().map_err(|e| {
            Error::usage(format!(
                "{}: {e}",
                self.named("workload.weight_bits", spec.weights.bits)
            ))
        })?;
        if !(1..=16).contains(&ab) {
            return Err(Error::usage(format!(
                "{}: must be in 1..=16 (1: binary inputs)",
                self.named("workload.act_bits", ab)
            )));
        }
        if wb == 1 && spec.prune.is_some() {
            return Err(Error::usage(format!(
                "{}: binary weights are ±1 and cannot hold pruned zeros",
                self.named("workload.sparsity", w.sparsity.unwrap_or(0.0))
            )));
        }
        Ok(spec)
    }

    /// Whether the config sets the compression (`workload.weight_bits`, `act_bits`,
    /// `sparsity` or `binary_ends_bits`).
    pub fn explicit_compression(&self) -> bool {
        let w = &self.workload;
        w.weight_bits.is_some()
            || w.act_bits.is_some()
            || w.sparsity.is_some()
            || w.binary_ends_bits.is_some()
    }

    /// Whether the workload is compressed below dense int8 (pruned or fewer weight bits).
    pub fn compressed(&self) -> bool {
        let w = &self.workload;
        w.weight_bits.is_some_and(|b| b != 8) || w.sparsity.is_some_and(|s| s > 0.0)
    }

    /// The configuration with every default written out (what `resolved.toml` records):
    /// a zoo network's weight bits, activation bits and sparsity included.
    pub fn filled(&self) -> Config {
        let mut c = self.clone();
        if is_file(&c.workload.model) {
            // A model file's compression defaults depend on what it holds (its recorded
            // bits), so they stay unwritten (its digest covers it); the seed of synthetic
            // weights and calibration inputs is fixed as a zoo network's is.
            c.workload.seed.get_or_insert(self.run.seed);
        } else if compresses(&c.workload.model) {
            let w = &mut c.workload;
            w.weight_bits.get_or_insert(8);
            w.act_bits.get_or_insert(8);
            w.sparsity.get_or_insert(0.0);
            if w.weight_bits == Some(1) || w.act_bits == Some(1) {
                w.binary_ends_bits.get_or_insert(8);
            }
            w.seed.get_or_insert(self.run.seed);
            if let Some(&(_, (t, cached), _, decode)) = zoo::SIZED.iter().find(|s| s.0 == w.model) {
                w.seq_len.get_or_insert(t);
                if decode {
                    w.cached_tokens.get_or_insert(cached);
                }
            }
            // As many as the model's positions leave after the prompt, up to the default.
            if let (Some(most), Some(prompt)) = (zoo::generates(&w.model), w.seq_len) {
                let n = *w
                    .decode_tokens
                    .get_or_insert(zoo::DECODE_TOKENS.min(most.saturating_sub(prompt)));
                if n > 0 {
                    c.run
                        .endurance_budget
                        .get_or_insert(DEFAULT_ENDURANCE_BUDGET);
                }
            }
        }
        c
    }

    /// What `resolved.toml` records: [`Config::filled`] with the device and the array
    /// written out inline with every key they hold (named as the config named them; the
    /// `cram.*_params` overrides stay apart and still apply), every baseline inline, and the
    /// model's content digest. Running it repeats the run whatever the preset and model
    /// files hold later (a changed model file is refused), and its hash, the run id, changes
    /// whenever anything the run read does.
    pub fn frozen(&self, r: &Resolved, baselines: &[cram_arch::Baseline]) -> Config {
        let params: Vec<&BaselineParams> = baselines.iter().map(|b| &b.params).collect();
        self.freeze(
            r.device.clone(),
            r.array.clone(),
            &params,
            r.model_digest.clone(),
        )
    }

    /// [`Config::frozen`] without running anything: reads the device, the array, the
    /// baselines and the model's bytes (`sweep plan` freezes a sweep's base this way).
    pub fn frozen_sources(&self) -> Result<Config, Error> {
        let c = &self.cram;
        let device = presets::inline_device(&c.device)?;
        let array = presets::inline_array(&c.array)?;
        let baselines = self
            .compare
            .baselines
            .iter()
            .map(presets::baseline_from)
            .collect::<Result<Vec<_>, _>>()?;
        let params: Vec<&BaselineParams> = baselines.iter().map(|b| &b.params).collect();
        let digest = self.model_digest()?;
        Ok(self.freeze(device, array, &params, digest))
    }

    fn freeze(
        &self,
        device: Source,
        array: Source,
        baselines: &[&BaselineParams],
        digest: Option<String>,
    ) -> Config {
        let mut c = self.filled();
        c.cram.device = device;
        c.cram.array = array;
        c.compare.baselines = baselines.iter().map(presets::inline).collect();
        c.workload.model_hash = digest;
        c
    }

    /// How reports name the device: as the config names it, with the keys it overrides in
    /// brackets (`stt-projected [tmr = 4.0]`).
    pub fn device_label(&self) -> String {
        labelled(&self.cram.device, &self.cram.device_params)
    }

    /// How reports name the array (see [`Config::device_label`]).
    pub fn array_label(&self) -> String {
        labelled(&self.cram.array, &self.cram.array_params)
    }

    /// The seed of a zoo network's synthetic weights.
    pub fn weights_seed(&self) -> u64 {
        self.workload.seed.unwrap_or(self.run.seed)
    }

    /// The value `resolved.toml` stands for when it leaves `key` out: the keys written only
    /// away from their default (so that adding them kept earlier run ids), at that default.
    pub(crate) fn omitted_default(key: &str) -> Option<String> {
        let c = Config::default();
        match key {
            "cram.chips" => Some(c.cram.chips.to_string()),
            "cram.allow_ir_violation" => Some(c.cram.allow_ir_violation.to_string()),
            "run.inject_gate_errors" => Some(c.run.inject_gate_errors.to_string()),
            _ => None,
        }
    }

    /// Every settable key, dotted (`cram.device`, `workload.sparsity`, …); listed once per
    /// process (sweeps check keys at every point).
    pub fn keys() -> &'static [String] {
        static KEYS: OnceLock<Vec<String>> = OnceLock::new();
        KEYS.get_or_init(Config::list_keys)
    }

    fn list_keys() -> Vec<String> {
        let mut c = Config::default();
        c.workload.weight_bits = Some(8);
        c.workload.act_bits = Some(8);
        c.workload.sparsity = Some(0.0);
        c.workload.binary_ends_bits = Some(8);
        c.workload.seed = Some(1);
        c.workload.calibration_data = Some("inputs.npy".into());
        c.workload.seq_len = Some(128);
        c.workload.cached_tokens = Some(128);
        c.workload.decode_tokens = Some(8);
        c.run.endurance_budget = Some(DEFAULT_ENDURANCE_BUDGET);
        c.run.images = Some(1);
        c.compare.batch = Some(1);
        c.cram.allow_ir_violation = true;
        c.cram.chips = 2;
        c.run.inject_gate_errors = true;
        let v = toml::Value::try_from(&c).expect("a config serializes");
        let mut out = Vec::new();
        flatten_keys(&v, "", &mut out);
        // The device and array keys, from every shipped preset (the SHE channel's too).
        let sources = presets::NAMES
            .iter()
            .map(|n| ("cram.device_params", presets::preset_source(n)))
            .chain(
                presets::ARRAY_NAMES
                    .iter()
                    .map(|n| ("cram.array_params", presets::array_source(n))),
            );
        for (section, src) in sources {
            let t: toml::Value =
                toml::from_str(src.expect("a shipped preset")).expect("a shipped preset parses");
            let mut keys = Vec::new();
            flatten_keys(&t, section, &mut keys);
            for k in keys {
                if !k.ends_with(".name") && !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        // The array keys a preset may leave to its node (docs/model.md §1.1.1, §1.1.3).
        for k in cram_arch::org::DERIVED_KEYS
            .iter()
            .chain(&["array_efficiency"])
        {
            let k = format!("cram.array_params.{k}");
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// The same workload at dense int8 weights (activations unchanged).
    pub fn dense_int8(&self) -> Config {
        let mut c = self.clone();
        c.workload.weight_bits = None;
        c.workload.sparsity = None;
        c
    }
}

#[cfg(test)]
mod tests;
