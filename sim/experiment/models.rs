//! The network experiments: the zoo with its totals, one network inspected layer by layer,
//! and the training of the shipped digits models.

use std::path::{Path, PathBuf};

use cram_workloads::load;
use cram_workloads::{train, zoo};

use crate::error::Error;
use crate::experiment::options::Options;
use crate::records::{InspectReport, Trained, ZooEntry};

/// Every zoo network and shipped model with its input, layers, MACs and parameters.
pub fn zoo() -> Result<Vec<ZooEntry>, Error> {
    let shipped = train::SHIPPED.iter().map(|s| (s.0, s.1));
    let mut rows = Vec::new();
    for (name, description) in zoo::MODELS.into_iter().chain(shipped) {
        let net = match train::shipped(name) {
            Some(m) => m.map_err(Error::from)?.net,
            None => zoo::model(name).map_err(Error::from)?,
        };
        let (macs, _, params) = net.totals().map_err(Error::from)?;
        rows.push(ZooEntry {
            name,
            description,
            input: net.input_shape().to_string(),
            layers: net.layers.len() - 1,
            macs,
            params,
        });
    }
    Ok(rows)
}

/// One network layer by layer: a zoo or shipped name, a model description or an ONNX file
/// (`skip_unsupported` passes unsupported ONNX nodes through and lists them). A model file
/// larger than the memory limit is refused before it is read.
pub fn inspect(
    model: &str,
    skip_unsupported: bool,
    options: &Options,
) -> Result<InspectReport, Error> {
    crate::experiment::config::check_model_file(model, options.limits.memory)?;
    let loaded = load::load(model, skip_unsupported).map_err(Error::from)?;
    let layers = load::summary(&loaded.net, loaded.weights.as_ref(), loaded.quant.as_ref())
        .map_err(Error::from)?;
    let (macs, _, params) = loaded.net.totals().map_err(Error::from)?;
    Ok(InspectReport {
        model: loaded.net.name,
        source: loaded.source,
        macs,
        params,
        layers,
        skipped: loaded.skipped,
        metrics: loaded.metrics,
    })
}

/// The trained digits models: their records and the files that hold them.
#[derive(Debug)]
pub struct Training {
    /// One record per model.
    pub models: Vec<Trained>,
    /// Each model's description (`<out>/<model>.toml`) and weights, as (path, bytes).
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

/// Trains the shipped digits models (stopping between epochs when `options` says so) and
/// returns their records with the files to write into `out`.
pub fn train_digits(out: &Path, options: &Options) -> Result<Training, Error> {
    let cfg = train::TrainConfig {
        stop: options.limits.stop.flag(),
        ..train::TrainConfig::default()
    };
    let models = train::digits_models(&cfg).map_err(Error::from)?;
    let (mut rows, mut files) = (Vec::new(), Vec::new());
    for m in &models {
        let path = out.join(format!("{}.toml", m.net.name));
        files.extend(m.files(&path).map_err(Error::from)?);
        let metric = |k: &str| m.metrics.get(k).copied().unwrap_or(f64::NAN);
        rows.push(Trained {
            model: m.net.name.clone(),
            file: path.display().to_string(),
            held_out_correct: metric("held_out_correct"),
            held_out_images: metric("held_out_images"),
            held_out_accuracy: metric("held_out_accuracy"),
        });
    }
    Ok(Training {
        models: rows,
        files,
    })
}
