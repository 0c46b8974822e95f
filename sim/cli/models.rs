//! The `models` and `inspect` commands: the zoo with its totals, and one network layer by
//! layer (shapes, MACs, parameters, bit-widths, sparsity).

use crate::records::*;
use std::fmt::Write as _;

use clap::Args;
use cram_workloads::load::{self};
use cram_workloads::{train, zoo};

use crate::cli::{Outcome, emit, to_json};
use crate::error::Error;

/// Arguments of `cramulator models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `cramulator inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A zoo or shipped model (see `cramulator models`), a model description (`.toml`, with
    /// its safetensors weights beside it) or an ONNX file.
    pub model: String,
    /// List and skip ONNX nodes of unsupported op types (each passes its first input through)
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `cramulator train-digits`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Folder to write `<model>.toml` and `<model>.safetensors` into (created if missing).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `cramulator models`.
pub fn models(a: &ModelsArgs) -> Result<Outcome, Error> {
    let mut rows = Vec::new();
    let shipped = train::SHIPPED.iter().map(|s| {
        (
            s.0,
            "trained on the 8×8 digits, shipped (see `inspect` for its accuracy)",
        )
    });
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
    if a.json {
        emit(&to_json(&rows))?;
        return Ok(Outcome::Success);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:>12} {:>7} {:>16} {:>12}  description",
        "model", "input", "layers", "MACs", "params"
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "{:<18} {:>12} {:>7} {:>16} {:>12}  {}",
            r.name,
            r.input,
            r.layers,
            group(r.macs),
            group(r.params),
            r.description
        );
    }
    let _ = writeln!(
        s,
        "\nMACs count Dense, Conv and attention products; params include biases and BatchNorm γ/β."
    );
    emit(&s)?;
    Ok(Outcome::Success)
}

/// `cramulator inspect`.
pub fn inspect(a: &InspectArgs) -> Result<Outcome, Error> {
    crate::experiment::config::check_model_file(&a.model, crate::cli::guard::limits().memory)?;
    let loaded = load::load(&a.model, a.skip_unsupported).map_err(Error::from)?;
    let rows = load::summary(&loaded.net, loaded.weights.as_ref(), loaded.quant.as_ref())
        .map_err(Error::from)?;
    let (macs, _, params) = loaded.net.totals().map_err(Error::from)?;
    if a.json {
        emit(&to_json(&InspectReport {
            model: &loaded.net.name,
            source: &loaded.source,
            macs,
            params,
            layers: &rows,
            skipped: &loaded.skipped,
            metrics: &loaded.metrics,
        }))?;
        return Ok(Outcome::Success);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {} ({}): {} layers, {} MACs, {} parameters",
        loaded.net.name,
        loaded.source,
        rows.len() - 1,
        group(macs),
        group(params)
    );
    let _ = writeln!(
        s,
        "{:>4} {:<24} {:<12} {:>14} {:>15} {:>12} {:>6} {:>8}  inputs",
        "#", "layer", "op", "output", "MACs", "params", "bits", "sparsity"
    );
    for (i, r) in rows.iter().enumerate() {
        let bits = r
            .bits
            .map_or("-".to_owned(), |b| format!("w{}a{}", b.w, b.a));
        let sparsity = r
            .sparsity
            .map_or("-".to_owned(), |z| format!("{:.1}%", z * 100.0));
        let _ = writeln!(
            s,
            "{i:>4} {:<24} {:<12} {:>14} {:>15} {:>12} {:>6} {:>8}  {}",
            r.name,
            r.op,
            r.out.to_string(),
            group(r.macs),
            group(r.params),
            bits,
            sparsity,
            r.inputs.join(", ")
        );
    }
    for k in &loaded.skipped {
        let _ = writeln!(s, "skipped: {k}");
    }
    for (k, v) in &loaded.metrics {
        let _ = writeln!(s, "metric {k} = {v}");
    }
    emit(&s)?;
    Ok(Outcome::Success)
}

/// `cramulator train-digits`.
pub fn train_digits(a: &TrainArgs) -> Result<Outcome, Error> {
    std::fs::create_dir_all(&a.out).map_err(|e| {
        Error::from(cram_workloads::WorkloadError::File {
            path: a.out.display().to_string(),
            why: format!("cannot create the folder: {e}"),
        })
    })?;
    let cfg = train::TrainConfig {
        stop: Some(crate::cli::guard::interrupted),
        ..train::TrainConfig::default()
    };
    let models = train::digits_models(&cfg).map_err(Error::from)?;
    let mut rows = Vec::new();
    for m in &models {
        let path = a.out.join(format!("{}.toml", m.net.name));
        for (file, bytes) in m.files(&path).map_err(Error::from)? {
            crate::io::atomic::write(&file, &bytes)?;
        }
        let metric = |k: &str| m.metrics.get(k).copied().unwrap_or(f64::NAN);
        rows.push(Trained {
            model: m.net.name.clone(),
            file: path.display().to_string(),
            held_out_correct: metric("held_out_correct"),
            held_out_images: metric("held_out_images"),
            held_out_accuracy: metric("held_out_accuracy"),
        });
    }
    if a.json {
        emit(&to_json(&rows))?;
        return Ok(Outcome::Success);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<20} {:>9} {:>9}  file",
        "model", "held-out", "accuracy"
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "{:<20} {:>4}/{:<4} {:>8.2}%  {}",
            r.model,
            r.held_out_correct,
            r.held_out_images,
            r.held_out_accuracy * 100.0,
            r.file
        );
    }
    emit(&s)?;
    Ok(Outcome::Success)
}

/// 1234567 → "1,234,567".
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
