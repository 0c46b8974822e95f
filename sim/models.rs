//! The `models` and `inspect` commands: the zoo with its totals, and one network layer by
//! layer (shapes, MACs, parameters, bit-widths, sparsity).

use std::fmt::Write as _;

use clap::Args;
use cram_workloads::load::{self, LayerSummary};
use cram_workloads::zoo;
use serde::Serialize;

use crate::cli::{CliError, Outcome, emit, to_json};
use crate::error::UsageError;

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
    /// A zoo model (see `cramulator models`) or an ONNX file.
    pub model: String,
    /// List and skip ONNX nodes of unsupported op types (each passes its first input through)
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One zoo entry with its totals.
#[derive(Debug, Serialize)]
struct ZooEntry {
    name: &'static str,
    description: &'static str,
    input: String,
    layers: usize,
    macs: u64,
    params: u64,
}

/// `cramulator models`.
pub fn models(a: &ModelsArgs) -> Result<Outcome, CliError> {
    let mut rows = Vec::new();
    for (name, description) in zoo::MODELS {
        let net = zoo::model(name).map_err(UsageError::from)?;
        let (macs, _, params) = net.totals().map_err(UsageError::from)?;
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
        "{:<16} {:>12} {:>7} {:>16} {:>12}  description",
        "model", "input", "layers", "MACs", "params"
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "{:<16} {:>12} {:>7} {:>16} {:>12}  {}",
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

/// `inspect` as JSON.
#[derive(Debug, Serialize)]
struct InspectReport<'a> {
    model: &'a str,
    source: &'a str,
    macs: u64,
    params: u64,
    layers: &'a [LayerSummary],
    skipped: &'a [String],
}

/// `cramulator inspect`.
pub fn inspect(a: &InspectArgs) -> Result<Outcome, CliError> {
    let loaded = load::load(&a.model, a.skip_unsupported).map_err(UsageError::from)?;
    let rows = load::summary(&loaded.net, loaded.weights.as_ref()).map_err(UsageError::from)?;
    let (macs, _, params) = loaded.net.totals().map_err(UsageError::from)?;
    if a.json {
        emit(&to_json(&InspectReport {
            model: &loaded.net.name,
            source: &loaded.source,
            macs,
            params,
            layers: &rows,
            skipped: &loaded.skipped,
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
    emit(&s)?;
    Ok(Outcome::Success)
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
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
