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
//! model = "resnet20"          # shipped digits model, own-format .toml, or zoo network
//! weight_bits = 4             # zoo networks only (default 8)
//! act_bits = 8                # zoo networks only (default 8)
//! sparsity = 0.5              # zoo networks only, unstructured, in [0, 1)
//!
//! [mapping]
//! strategy = "auto"           # auto | const | stored
//! objective = "energy"        # energy | latency | edp (for auto)
//!
//! [run]
//! mode = "analytical"         # functional | analytical
//! seed = 1
//! images = 1                  # digits: held-out images (default 360); else random inputs
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

use cram_arch::{BaselineParams, GateKind, GateLibrary, IrCheck, Org, Source, presets};
use cram_workloads::compress::{Calibration, CompressSpec, compress};
use cram_workloads::digits::{Digits, SPLIT_SEED};
use cram_workloads::prune::Prune;
use cram_workloads::quant::{WeightMode, WeightScheme};
use cram_workloads::{golden, load, train, zoo};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::model::kernels::GateSet;
use crate::model::limits::MemoryLimit;
use crate::model::map::{Choice, Hw, Mode, Objective, Strategy};
use crate::model::memo::Memo;

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
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for CramConfig {
    fn default() -> Self {
        CramConfig {
            device: "stt-projected".into(),
            array: "cram-1k".into(),
            gate_set: GateSet::Maj,
            device_params: toml::Table::new(),
            array_params: toml::Table::new(),
            allow_ir_violation: false,
        }
    }
}

/// `[workload]`: the network and, for zoo networks, its compression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// Shipped digits model, own-format `.toml` file, or zoo network name.
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
    /// Seed of a zoo network's synthetic weights (default: `run.seed`). A sweep fixes it, so
    /// every design point runs the same network while `run.seed` varies per point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
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
            seed: None,
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

/// `[mapping]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingConfig {
    /// Per-layer strategy.
    pub strategy: StrategyChoice,
    /// What `auto` minimizes.
    pub objective: Objective,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            strategy: StrategyChoice::Auto,
            objective: Objective::Energy,
        }
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
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            mode: Mode::Functional,
            seed: 1,
            images: None,
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
pub(crate) type Compiled = (Arc<golden::Program>, Option<String>);

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
        let c = &self.cram;
        presets::device_from(&c.device, &c.device_params)?;
        presets::array_from(&c.array, &c.array_params)?;
        let set = [
            ("workload.weight_bits", w.weight_bits.is_some()),
            ("workload.act_bits", w.act_bits.is_some()),
            ("workload.sparsity", w.sparsity.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|k| k.1)
            && !compresses(&w.model)
        {
            return Err(Error::usage(format!(
                "{}: weight bits, activation bits and sparsity compress zoo networks and the \
                 float {DIGITS_FLOAT}; '{}' is neither (zoo: {})",
                self.named(key, "…"),
                w.model,
                zoo::MODELS.map(|m| m.0).join(", ")
            )));
        }
        Ok(())
    }

    /// The compression of a zoo network: symmetric per-channel weights of `weight_bits`
    /// (default 8), unsigned affine activations of `act_bits` (default 8), min/max
    /// calibrated, optionally pruned to `sparsity` (unstructured, by magnitude).
    pub fn compress_spec(&self) -> Result<CompressSpec, Error> {
        let w = &self.workload;
        let spec = CompressSpec {
            weights: WeightScheme {
                bits: w.weight_bits.unwrap_or(8),
                mode: WeightMode::Symmetric,
                per_channel: true,
            },
            act_bits: w.act_bits.unwrap_or(8),
            act_symmetric: false,
            input: None,
            prune: w
                .sparsity
                .filter(|&s| s > 0.0)
                .map(|sparsity| Prune::Unstructured { sparsity }),
            calibration: Calibration::MinMax,
        };
        spec.weights.validate().map_err(|e| {
            Error::usage(format!(
                "{}: {e}",
                self.named("workload.weight_bits", spec.weights.bits)
            ))
        })?;
        if !(2..=16).contains(&spec.act_bits) {
            return Err(Error::usage(format!(
                "{}: must be in 2..=16",
                self.named("workload.act_bits", spec.act_bits)
            )));
        }
        Ok(spec)
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
        if compresses(&c.workload.model) {
            let w = &mut c.workload;
            w.weight_bits.get_or_insert(8);
            w.act_bits.get_or_insert(8);
            w.sparsity.get_or_insert(0.0);
            w.seed.get_or_insert(self.run.seed);
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
        let digest = model_digest(&self.workload.model)?;
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
        c.workload.seed = Some(1);
        c.run.images = Some(1);
        c.compare.batch = Some(1);
        c.cram.allow_ir_violation = true;
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
        out
    }

    /// The same workload at dense int8 weights (activations unchanged).
    pub fn dense_int8(&self) -> Config {
        let mut c = self.clone();
        c.workload.weight_bits = None;
        c.workload.sparsity = None;
        c
    }

    /// Loads presets and the model and compiles the network, refusing a network whose
    /// compiled form would exceed `memory`.
    pub fn resolve(&self, memory: MemoryLimit) -> Result<Resolved, Error> {
        self.resolve_with(None, memory)
    }

    /// [`Config::resolve`], taking the compiled network from `cache` when an earlier config
    /// had the same workload (compressing a large zoo network dominates an analytical run).
    pub fn resolve_with(
        &self,
        cache: Option<&ProgramCache>,
        memory: MemoryLimit,
    ) -> Result<Resolved, Error> {
        self.validate()?;
        let c = &self.cram;
        // Each file is read once: its keys as read are what the run uses and records.
        let device = presets::inline_device(&c.device)?;
        let array = presets::inline_array(&c.array)?;
        let lib = GateLibrary::derive(&presets::device_from(&device, &c.device_params)?);
        check_gates(&lib, c.gate_set)?;
        let org = presets::array_from(&array, &c.array_params)?;
        let ir = self.ir_check(&lib, &org)?;
        let zoo = is_zoo(&self.workload.model);
        let build = || -> Result<Compiled, Error> {
            let (prog, digest) = if zoo {
                let spec = self.compress_spec()?;
                (
                    zoo_program(&self.workload.model, &spec, self.weights_seed(), memory)?,
                    None,
                )
            } else if compresses(&self.workload.model) {
                digits_program(&self.compress_spec()?)?
            } else {
                quantized_program(&self.workload.model, memory)?
            };
            Ok((Arc::new(prog), digest))
        };
        let (prog, model_digest) = match cache {
            None => build()?,
            Some(cache) => {
                let key = format!("{:?}|{}", self.filled().workload, self.weights_seed());
                let hit = cache
                    .0
                    .get_or_build(key, || build().map_err(|e| e.to_string()))
                    .map_err(Error::usage)?;
                (hit.0.clone(), hit.1.clone())
            }
        };
        if let (Some(want), Some(got)) = (&self.workload.model_hash, &model_digest)
            && want != got
        {
            return Err(Error::usage(format!(
                "workload.model '{}': its bytes changed since this configuration was resolved \
                 (workload.model_hash = \"{want}\", the file now hashes to \"{got}\"); restore \
                 the file, or remove workload.model_hash to run what it holds now",
                self.workload.model
            )));
        }
        let choice = match self.mapping.strategy {
            StrategyChoice::Const => Choice::Force(Strategy::Const),
            StrategyChoice::Stored => Choice::Force(Strategy::Stored),
            StrategyChoice::Auto => Choice::Auto(self.mapping.objective),
        };
        Ok(Resolved {
            prog,
            hw: Hw::new(lib, org, self.cram.gate_set),
            choice,
            zoo,
            ir,
            model_digest,
            device,
            array,
        })
    }

    /// The IR-drop check every command applies (`kernel` checks the gates its program uses,
    /// the others every gate their gate set may emit, on rows of a full line segment):
    /// refused with the numbers unless `cram.allow_ir_violation`.
    pub fn ir_check(&self, lib: &GateLibrary, org: &Org) -> Result<IrCheck, Error> {
        let ir = IrCheck::new(
            lib,
            org,
            u64::from(org.params.lanes_per_subarray),
            gates_of(self.cram.gate_set).iter().copied(),
        );
        if ir.ok() || self.cram.allow_ir_violation {
            return Ok(ir);
        }
        let how = if self.from_flags {
            "pass --allow-ir-violation"
        } else {
            "pass --allow-ir-violation (or set cram.allow_ir_violation = true)"
        };
        Err(Error::usage(ir.refusal(
            &self.cram.array.label(),
            &lib.device.params.name,
            how,
        )))
    }
}

/// A `--set` value: TOML when it parses as one (numbers, booleans, quoted strings, arrays),
/// else a bare string; for a list-valued key, a comma-separated list of strings.
/// Refuses a key that is not one of [`Config::keys`], naming the three nearest.
pub fn check_key(key: &str) -> Result<(), String> {
    let keys = Config::keys();
    if keys.iter().any(|k| k == key) {
        Ok(())
    } else {
        Err(format!(
            "unknown key '{key}'; nearest valid keys: {}",
            nearest(key, keys, 3).join(", ")
        ))
    }
}

/// Parses a config document; on error, the parser's own message (it quotes a line of the
/// re-serialized document, which would only confuse).
pub(crate) fn parse_doc(doc: &toml::Table) -> Result<Config, String> {
    toml::from_str::<Config>(&doc.to_string()).map_err(|e| {
        let e = e.to_string();
        e.lines()
            .rfind(|l| {
                let t = l.trim_start();
                !t.is_empty() && !t.starts_with(['|', '^']) && !l.contains(" --> ")
            })
            .unwrap_or(&e)
            .trim()
            .to_owned()
    })
}

/// Before `key` is set: setting `workload.model` makes the digest of the previous model
/// (`workload.model_hash`, recorded by `resolved.toml` or a sweep's frozen base) stale.
pub(crate) fn forget_model_hash(doc: &mut toml::Table, key: &str) {
    if key == "workload.model"
        && let Some(w) = doc.get_mut("workload").and_then(toml::Value::as_table_mut)
    {
        w.remove("model_hash");
    }
}

/// Sets dotted `key` in a config document, creating tables on the way.
pub(crate) fn insert(doc: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let mut at = doc;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        at = at
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("'{part}' is not a table"))?;
    }
    at.insert(parts[parts.len() - 1].to_owned(), value);
    Ok(())
}

pub(crate) fn set_value(key: &str, raw: &str) -> toml::Value {
    if let Ok(t) = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        && let Some(v) = t.get("v")
    {
        return v.clone();
    }
    if key == "compare.baselines" {
        return toml::Value::Array(
            raw.split(',')
                .map(|s| toml::Value::String(s.trim().to_owned()))
                .collect(),
        );
    }
    toml::Value::String(raw.to_owned())
}

/// The `n` keys nearest to `key` by edit distance (ties in key order).
pub(crate) fn nearest(key: &str, keys: &[String], n: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = keys.iter().map(|k| (levenshtein(key, k), k)).collect();
    scored.sort_by_key(|&(d, _)| d);
    scored.into_iter().take(n).map(|(_, k)| k.clone()).collect()
}

/// Edit distance between two strings (insertions, deletions, substitutions).
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A source's label with the keys `overrides` sets in brackets.
pub(crate) fn labelled(src: &Source, overrides: &toml::Table) -> String {
    let mut listed = Vec::new();
    leaves(overrides, "", &mut listed);
    if listed.is_empty() {
        src.label()
    } else {
        format!("{} [{}]", src.label(), listed.join(", "))
    }
}

/// `prefix` + `key.path = value` for every leaf of `t`, in key order.
pub(crate) fn leaves(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in t {
        match v {
            toml::Value::Table(sub) => leaves(sub, &format!("{prefix}{k}."), out),
            v => out.push(format!("{prefix}{k} = {v}")),
        }
    }
}

pub(crate) fn flatten_keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_keys(v, &key, out);
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// `value` joined to `dir` when it names a file there (preset and model names stay).
pub(crate) fn relative_to(dir: &Path, value: &str) -> String {
    let p = Path::new(value);
    if p.is_relative() && dir.join(p).is_file() {
        dir.join(p).to_string_lossy().into_owned()
    } else {
        value.to_owned()
    }
}

/// Whether `model` names a zoo network (and not a shipped digits model).
pub(crate) fn is_zoo(model: &str) -> bool {
    train::shipped(model).is_none() && zoo::model(model).is_ok()
}

/// Refuses a model file (and the weights file beside it with the same stem) too large to
/// read and compile within the limit: its bytes bound the parameters it holds (at least
/// one byte each).
pub fn check_model_file(path: &str, memory: MemoryLimit) -> Result<(), Error> {
    let p = std::path::Path::new(path);
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let bytes = size(p) + size(&p.with_extension("safetensors"));
    if bytes == 0 {
        return Ok(());
    }
    crate::model::limits::check_network(
        &format!("model file '{path}' ({bytes} bytes)"),
        bytes,
        memory,
    )
}

/// Zoo network `name` compressed by `spec` with seeded synthetic weights (calibrated on two
/// seeded synthetic inputs) and compiled to integer steps.
pub fn zoo_program(
    name: &str,
    spec: &CompressSpec,
    seed: u64,
    memory: MemoryLimit,
) -> Result<golden::Program, Error> {
    let net = zoo::model(name)?;
    let (_, _, params) = net.totals()?;
    crate::model::limits::check_network(
        &format!("network '{name}' ({params} parameters)"),
        params,
        memory,
    )?;
    let m = cram_workloads::compress::synthetic_model(&net, spec, seed, 2)?;
    let quant = m.quant.as_ref().expect("compressed");
    Ok(golden::Program::compile(&m.net, &m.weights, quant)?)
}

/// The shipped float `digits-mlp` compressed by `spec` (its first layer reads the 5-bit
/// pixel codes; activations calibrated on the training split, as `train-digits` does), and
/// the digest of its embedded bytes.
pub(crate) fn digits_program(
    spec: &CompressSpec,
) -> Result<(golden::Program, Option<String>), Error> {
    let float = train::shipped(DIGITS_FLOAT).expect("digits-mlp is shipped")?;
    let digest = train::shipped_digest(DIGITS_FLOAT).map(|d| d.hex());
    let (train_set, _) = Digits::embedded().split(SPLIT_SEED);
    let spec = CompressSpec {
        input: Some(train::DIGITS_INPUT),
        ..*spec
    };
    let (m, _) = compress(
        &float.net,
        &float.weights,
        &spec,
        &train::float_inputs(&train_set),
    )?;
    let quant = m.quant.as_ref().expect("compressed");
    Ok((golden::Program::compile(&m.net, &m.weights, quant)?, digest))
}

/// The float digits model, which `workload.weight_bits`, `act_bits` and `sparsity` compress.
pub(crate) const DIGITS_FLOAT: &str = "digits-mlp";

/// Whether `workload.weight_bits`, `act_bits` and `sparsity` apply: zoo networks and the
/// float digits model.
pub(crate) fn compresses(model: &str) -> bool {
    is_zoo(model) || model == DIGITS_FLOAT
}

/// A quantized model as given (a shipped name or an own-format file), and the digest of the
/// bytes it was read from.
pub(crate) fn quantized_program(
    model: &str,
    memory: MemoryLimit,
) -> Result<(golden::Program, Option<String>), Error> {
    check_model_file(model, memory)?;
    let loaded = load::load(model, false)?;
    let (Some(quant), Some(weights)) = (loaded.quant.as_ref(), loaded.weights.as_ref()) else {
        return Err(Error::usage(format!(
            "model '{model}' is not quantized: a run needs integer codes (a shipped digits \
             model, a quantized .toml, or a zoo network name)"
        )));
    };
    Ok((
        golden::Program::compile(&loaded.net, weights, quant)?,
        loaded.digest.clone(),
    ))
}

/// The digest of the bytes a model is read from: None for a zoo network (built from code
/// and a seed), the embedded bytes of a shipped model (and of the float digits model the
/// `workload.*` keys compress), the file's bytes otherwise.
pub(crate) fn model_digest(model: &str) -> Result<Option<String>, Error> {
    if is_zoo(model) {
        return Ok(None);
    }
    if let Some(d) = train::shipped_digest(model) {
        return Ok(Some(d.hex()));
    }
    Ok(load::load(model, false)?.digest)
}

/// Gates each set may emit (the mapper's arithmetic uses no COPY).
pub(crate) fn gates_of(set: GateSet) -> &'static [GateKind] {
    match set {
        GateSet::Maj => &[
            GateKind::Not,
            GateKind::And,
            GateKind::Or,
            GateKind::Nand,
            GateKind::Nor,
            GateKind::Maj3,
            GateKind::InvMaj3,
            GateKind::Maj5,
        ],
        GateSet::Nand => &[GateKind::Not, GateKind::Nand, GateKind::And],
    }
}

/// Refuses a gate set whose gates the device cannot run.
pub(crate) fn check_gates(lib: &GateLibrary, set: GateSet) -> Result<(), Error> {
    let missing: Vec<String> = gates_of(set)
        .iter()
        .filter_map(|&g| lib.get(g).unavailable.clone())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "gate set {} cannot run on device '{}': {} (see `cramulator gates`)",
            set.name(),
            lib.device.params.name,
            missing.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_reads_bits_and_zeros_off_the_codes() {
        use crate::model::baseline::{LayerWork, work_of_program};
        let prog = |model: &str, bits: Option<u32>, sparsity: Option<f64>| {
            let c = Config {
                workload: WorkloadConfig {
                    model: model.into(),
                    weight_bits: bits,
                    sparsity,
                    ..Default::default()
                },
                ..Default::default()
            };
            work_of_program(&c.resolve(Default::default()).unwrap().prog).unwrap()
        };
        let fc_bits = |w: &[LayerWork]| -> Vec<u32> {
            w.iter().filter(|l| l.weighted).map(|l| l.w_bits).collect()
        };
        assert_eq!(fc_bits(&prog("digits-mlp-int8", None, None)), [8, 8]);
        assert_eq!(fc_bits(&prog("digits-mlp-int4", None, None)), [4, 4]);
        assert_eq!(fc_bits(&prog("digits-mlp-binary", None, None))[0], 1);
        // The digits input is 5-bit (pixel values 0..=16).
        assert_eq!(prog("digits-mlp-int8", None, None)[0].a_bits, 5);
        // A pruned zoo network: about half its weights are zero.
        let w = prog("lenet5", Some(4), Some(0.5));
        let (all, nz): (u64, u64) = w
            .iter()
            .fold((0, 0), |(a, n), l| (a + l.weights, n + l.nonzero_weights));
        let kept = nz as f64 / all as f64;
        assert!((0.45..0.55).contains(&kept), "{kept}");
        assert!(fc_bits(&w).iter().all(|&b| b <= 4));
    }

    fn parse(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(parse("").unwrap(), Config::default());
    }

    #[test]
    fn errors_name_the_key_and_value() {
        let e = parse("[cram]\ndevise = 'x'\n").unwrap_err();
        assert!(e.contains("devise") && e.contains("device"), "{e}");
        let e = parse("[mapping]\nstrategy = 'fast'\n").unwrap_err();
        assert!(e.contains("fast") && e.contains("const"), "{e}");
        let e = parse("[workload]\nmodel = 'resnet20'\nsparsity = 1.5\n").unwrap_err();
        assert!(
            e.contains("workload.sparsity = 1.5") && e.contains("[0, 1)"),
            "{e}"
        );
        let e = parse("[workload]\nmodel = 'digits-mlp-int8'\nweight_bits = 4\n").unwrap_err();
        assert!(
            e.contains("digits-mlp-int8") && e.contains("resnet20"),
            "{e}"
        );
        let e = parse("[workload]\nmodel = 'lenet5'\nact_bits = 40\n").unwrap_err();
        assert!(e.contains("workload.act_bits = 40"), "{e}");
    }

    #[test]
    fn set_overrides_and_names_bad_keys_and_values() {
        let c = Config::load_with(
            None,
            &[
                "workload.model=resnet20".into(),
                "workload.sparsity=0.5".into(),
                "compare.baselines=gpu-hbm2,nmp".into(),
                "run.mode=analytical".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.workload.sparsity, Some(0.5));
        assert_eq!(c.compare.baselines, ["gpu-hbm2".into(), "nmp".into()]);
        assert_eq!(c.run.mode, Mode::Analytical);
        let e = Config::load_with(None, &["cram.devise=x".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown key 'cram.devise'") && e.contains("cram.device"),
            "{e}"
        );
        let e = Config::load_with(None, &["mapping.strategy=fast".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--set mapping.strategy=fast") && e.contains("const"),
            "{e}"
        );
        let e = Config::load_with(None, &["run.seed=-3".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--set run.seed=-3"), "{e}");
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn config_round_trips_through_toml() {
        let c = parse(
            "[workload]\nmodel = 'resnet20'\nweight_bits = 4\nsparsity = 0.5\n\
             [mapping]\nstrategy = 'stored'\nobjective = 'edp'\n[run]\nmode = 'analytical'\n",
        )
        .unwrap();
        assert_eq!(parse(&toml::to_string(&c).unwrap()).unwrap(), c);
        assert!(c.compressed() && !c.dense_int8().compressed());
    }
}
