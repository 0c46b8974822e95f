//! Resolving a config: loading the presets and the model, compiling the network (zoo,
//! digits or a quantized model), the model's digest, and the gate and IR-drop checks.

use std::sync::Arc;

use cram_arch::{GateKind, GateLibrary, IrCheck, Org, presets};
use cram_workloads::compress::{CompressSpec, compress};
use cram_workloads::digits::{Digits, SPLIT_SEED};
use cram_workloads::prepare::{
    Origin, QuantizedBy, Settings, WeightsFrom, prepare, synthetic_calibration,
};
use cram_workloads::{golden, load, npy, train, zoo};

use super::{Compiled, Config, ProgramCache, Resolved};
use crate::error::Error;
use crate::model::kernels::GateSet;
use crate::model::limits::MemoryLimit;
use crate::model::map::Hw;

impl Config {
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
        self.resolve_reserving(cache, memory, 0)
    }

    /// [`Config::resolve_with`] with `reserved` resident bits set aside for a generation's
    /// caches ([`Hw::with_state`]), refused before the network is compiled when they alone
    /// outgrow the chips.
    pub fn resolve_reserving(
        &self,
        cache: Option<&ProgramCache>,
        memory: MemoryLimit,
        reserved: u64,
    ) -> Result<Resolved, Error> {
        self.validate()?;
        let c = &self.cram;
        // Each file is read once: its keys as read are what the run uses and records.
        let device = presets::inline_device(&c.device)?;
        let array = presets::inline_array(&c.array)?;
        let lib = GateLibrary::derive(&presets::device_from(&device, &c.device_params)?);
        check_gates(
            &lib,
            &self.device_label(),
            c.gate_set,
            self.mapping.max_gate_error,
        )?;
        let org = presets::array_from(&array, &c.array_params)?;
        let ir = self.ir_check(&lib, &org)?;
        if c.chips > 1 && org.params.chip_link.is_none() {
            return Err(Error::usage(format!(
                "cram.chips = {}: array '{}' has no [chip_link] (bandwidth_gb_s, \
                 latency_cycles, e_pj_per_bit) to join its chips; add one to the array file \
                 or set cram.chips = 1",
                c.chips,
                c.array.label()
            )));
        }
        let hw = Hw::new(lib, org, self.cram.gate_set)
            .with_chips(u64::from(c.chips))
            .with_state(reserved);
        crate::model::map::state_fits(&self.workload.model, &hw)?;
        let zoo = is_zoo(&self.workload.model);
        let build = || -> Result<Compiled, Error> {
            let (prog, digest, origin) = if zoo {
                let spec = self.compress_spec()?;
                (
                    synthetic_program(
                        &zoo::model_sized(
                            &self.workload.model,
                            self.workload.seq_len,
                            self.workload.cached_tokens,
                        )?,
                        &spec,
                        self.weights_seed(),
                        memory,
                    )?,
                    None,
                    Origin {
                        weights_from: WeightsFrom::Synthetic,
                        quantized_by: QuantizedBy::Settings,
                        calibration: Some(synthetic_calibration(
                            self.weights_seed().wrapping_add(1),
                        )),
                        file_formats: 0,
                        file_weights: 0,
                    },
                )
            } else if self.workload.model == DIGITS_FLOAT {
                let (prog, digest) = digits_program(&self.compress_spec()?)?;
                let origin = Origin {
                    weights_from: WeightsFrom::File,
                    quantized_by: QuantizedBy::Settings,
                    calibration: Some("the digits' training split".into()),
                    file_formats: 0,
                    file_weights: 0,
                };
                (prog, digest, origin)
            } else {
                self.file_program(memory)?
            };
            Ok((Arc::new(prog), digest, origin))
        };
        let (prog, model_digest, origin) = match cache {
            None => build()?,
            Some(cache) => {
                let key = format!("{:?}|{}", self.filled().workload, self.weights_seed());
                cache
                    .0
                    .get_or_build(key, || build().map_err(|e| e.to_string()))
                    .map_err(Error::usage)?
                    .as_ref()
                    .clone()
            }
        };
        if let (Some(want), Some(got)) = (&self.workload.model_hash, &model_digest)
            && want != got
        {
            return Err(Error::usage(format!(
                "workload.model '{}'{}: its bytes changed since this configuration was resolved \
                 (workload.model_hash = \"{want}\", the file now hashes to \"{got}\"); restore \
                 the file, or remove workload.model_hash to run what it holds now",
                self.workload.model,
                self.workload
                    .calibration_data
                    .as_ref()
                    .map_or(String::new(), |c| format!(" or its calibration data '{c}'"))
            )));
        }
        let choice = self
            .mapping
            .choice(self.run.inferences_per_deployment)
            .map_err(Error::usage)?;
        // A decode step's caches take their cells out of the resident share.
        let state = crate::model::map::state_bits(&prog).max(reserved);
        Ok(Resolved {
            prog,
            hw: hw.with_state(state),
            choice,
            zoo,
            origin,
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
            self.cram.gate_set.gates().iter().copied(),
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
    synthetic_program(&zoo::model(name)?, spec, seed, memory)
}

/// Network `net` compressed by `spec` with seeded synthetic weights (calibrated on two
/// seeded synthetic inputs) and compiled to integer steps.
pub fn synthetic_program(
    net: &cram_workloads::Network,
    spec: &CompressSpec,
    seed: u64,
    memory: MemoryLimit,
) -> Result<golden::Program, Error> {
    Ok(synthetic_model(net, spec, seed, memory)?.into_program()?)
}

/// Network `net` compressed by `spec` with seeded synthetic weights (calibrated on two
/// seeded synthetic inputs), refused first if its parameters would exceed `memory`.
pub fn synthetic_model(
    net: &cram_workloads::Network,
    spec: &CompressSpec,
    seed: u64,
    memory: MemoryLimit,
) -> Result<cram_workloads::model::Model, Error> {
    let (_, _, params) = net.totals()?;
    let name = &net.name;
    crate::model::limits::check_network(
        &format!("network '{name}' ({params} parameters)"),
        params,
        memory,
    )?;
    Ok(cram_workloads::compress::synthetic_model(
        net, spec, seed, 2,
    )?)
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
        &cram_workloads::digits::float_inputs(&train_set, float.net.input_shape()),
    )?;
    let quant = m.quant.as_ref().expect("compressed");
    Ok((golden::Program::compile(&m.net, &m.weights, quant)?, digest))
}

/// The float digits model, which `workload.weight_bits`, `act_bits` and `sparsity` compress.
pub(crate) const DIGITS_FLOAT: &str = "digits-mlp";

/// Whether `workload.weight_bits`, `act_bits` and `sparsity` may apply: zoo networks, the
/// float digits model and model files (a file quantized by itself refuses them when it is
/// read).
pub(crate) fn compresses(model: &str) -> bool {
    is_zoo(model) || model == DIGITS_FLOAT || is_file(model)
}

/// Whether `model` names a model file (`.onnx` or cramulator's own `.toml`).
pub(crate) fn is_file(model: &str) -> bool {
    model.ends_with(".onnx") || model.ends_with(".toml")
}

impl Config {
    /// A model file or a shipped quantized model, prepared for integer execution
    /// (`cram_workloads::prepare`: compressed by the `workload.*` settings, or at its
    /// recorded bit-widths, or as quantized by its file; synthetic weights for a
    /// structure-only file), compiled, with the digest of everything read.
    fn file_program(
        &self,
        memory: MemoryLimit,
    ) -> Result<(golden::Program, Option<String>, Origin), Error> {
        let w = &self.workload;
        check_model_file(&w.model, memory)?;
        let loaded = load::load(&w.model, false)?;
        let calibration = match &w.calibration_data {
            None => None,
            Some(path) => {
                let bytes = read_calibration(path)?;
                let shape = loaded.net.input_shape();
                let inputs = npy::inputs(&bytes, path, shape)?;
                Some((format!("{} inputs of '{path}'", inputs.len()), inputs))
            }
        };
        let settings = Settings {
            spec: self.compress_spec()?,
            explicit: self.explicit_compression(),
            seed: self.weights_seed(),
            calibration,
        };
        let (m, origin) = prepare(&loaded, &settings)
            .map_err(|e| Error::usage(format!("workload.model = \"{}\": {e}", w.model)))?;
        if origin.calibration.is_none() && w.calibration_data.is_some() {
            return Err(Error::usage(format!(
                "workload.calibration_data = \"{}\": model '{}' is quantized by its file, \
                 so nothing is calibrated; remove the key",
                w.calibration_data.as_deref().unwrap_or_default(),
                w.model
            )));
        }
        let quant = m.quant.as_ref().expect("prepared models are quantized");
        let prog = golden::Program::compile(&m.net, &m.weights, quant)?;
        Ok((prog, self.workload_digest(loaded.digest)?, origin))
    }

    /// The digest of what the workload reads: the model's bytes and, if given, the
    /// calibration file's.
    fn workload_digest(&self, model: Option<String>) -> Result<Option<String>, Error> {
        Ok(match (&self.workload.calibration_data, model) {
            (None, d) => d,
            (Some(path), d) => Some(
                cram_workloads::digest::Fnv::default()
                    .part(d.unwrap_or_default().as_bytes())
                    .part(&read_calibration(path)?)
                    .hex(),
            ),
        })
    }

    /// The digest of the bytes a workload reads: None for a zoo network (built from code
    /// and a seed), the embedded bytes of a shipped model (and of the float digits model the
    /// `workload.*` keys compress), the model file's bytes otherwise, with the calibration
    /// file's.
    pub(crate) fn model_digest(&self) -> Result<Option<String>, Error> {
        let model = &self.workload.model;
        if is_zoo(model) {
            return Ok(None);
        }
        if let Some(d) = train::shipped_digest(model) {
            return Ok(Some(d.hex()));
        }
        self.workload_digest(load::load(model, false)?.digest)
    }
}

/// The bytes of a calibration file.
fn read_calibration(path: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        Error::usage(format!(
            "workload.calibration_data = \"{path}\": cannot read: {e}"
        ))
    })
}

/// Refuses a gate set whose gates the device cannot run, or whose derived error
/// probabilities exceed `mapping.max_gate_error` (naming the gates, the budget and the sets
/// within it).
pub(crate) fn check_gates(
    lib: &GateLibrary,
    device: &str,
    set: GateSet,
    max_gate_error: f64,
) -> Result<(), Error> {
    let missing: Vec<String> = set
        .gates()
        .iter()
        .filter_map(|&g| lib.get(g).unavailable.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "gate set {} cannot run on device '{}': {} (see `cramulator gates`)",
            set.name(),
            device,
            missing.join("; ")
        )));
    }
    let over = over_budget(lib, set, max_gate_error);
    if over.is_empty() {
        return Ok(());
    }
    let within: Vec<&str> = GateSet::ALL
        .iter()
        .filter(|s| over_budget(lib, **s, max_gate_error).is_empty())
        .filter(|s| s.gates().iter().all(|&g| lib.get(g).available()))
        .map(|s| s.name())
        .collect();
    let worst = over
        .iter()
        .map(|g| lib.get(*g).error_prob)
        .fold(0.0, f64::max);
    Err(Error::usage(format!(
        "cram.gate_set = \"{}\" on device '{}': {} above mapping.max_gate_error = {:e} \
         (derived error probability per evaluation, see `cramulator gates`); {}, or raise \
         mapping.max_gate_error to at least {:.3e} to run these gates anyway",
        set.name(),
        device,
        over.iter()
            .map(|g| format!("{} has p_err {:.3e}", g.mnemonic(), lib.get(*g).error_prob))
            .collect::<Vec<_>>()
            .join(", "),
        max_gate_error,
        if within.is_empty() {
            "no gate set is within it on this device".to_owned()
        } else {
            format!("gate sets within it: {}", within.join(", "))
        },
        worst,
    )))
}

/// Refuses a run whose layers evaluate a gate above `mapping.max_gate_error`, naming the
/// first such layer: a gate set's own gates are checked before the run
/// ([`check_gates`]); this catches what its programs add (the maj set's COPY).
pub fn check_layer_gates(
    run: &crate::model::map::NetRun,
    lib: &GateLibrary,
    max_gate_error: f64,
) -> Result<(), Error> {
    for l in &run.layers {
        for g in GateKind::ALL {
            let p = lib.get(g).error_prob;
            if l.lane_evals_by_gate[g.index()] > 0 && p > max_gate_error {
                return Err(Error::usage(format!(
                    "layer '{}' ({}): its programs evaluate {} (p_err {p:.3e}{}), above \
                     mapping.max_gate_error = {max_gate_error:e}; choose a gate set whose \
                     programs avoid it (cram.gate_set), or raise mapping.max_gate_error to at \
                     least {p:.3e}",
                    l.name,
                    l.op,
                    g.mnemonic(),
                    lib.get(g)
                        .unavailable
                        .as_ref()
                        .map_or(String::new(), |why| format!("; unavailable: {why}")),
                )));
            }
        }
    }
    Ok(())
}

/// The gates of `set` whose derived error probability exceeds `max_gate_error`.
pub(crate) fn over_budget(lib: &GateLibrary, set: GateSet, max_gate_error: f64) -> Vec<GateKind> {
    set.gates()
        .iter()
        .copied()
        .filter(|&g| lib.get(g).error_prob > max_gate_error)
        .collect()
}
