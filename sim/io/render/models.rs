//! The zoo list, one inspected network, the trained digits models and the calibration
//! points as text.

use crate::records::{CalibrationReport, InspectReport, Trained, ZooEntry};
use crate::units::group;
use std::fmt::Write as _;

/// The zoo table.
pub(crate) fn zoo(rows: &[ZooEntry]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:>12} {:>7} {:>16} {:>12}  description",
        "model", "input", "layers", "MACs", "params"
    );
    for r in rows {
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
        "\nMACs count Dense, Conv and attention products; params include biases and BatchNorm and LayerNorm γ/β, a tied table once."
    );
    s
}

/// One network, layer by layer.
pub(crate) fn inspect(r: &InspectReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {} ({}): {} layers, {} MACs, {} parameters",
        r.model,
        r.source,
        r.layers.len() - 1,
        group(r.macs),
        group(r.params)
    );
    let _ = writeln!(
        s,
        "{:>4} {:<24} {:<12} {:>14} {:>15} {:>12} {:>6} {:>8}  inputs",
        "#", "layer", "op", "output", "MACs", "params", "bits", "sparsity"
    );
    for (i, l) in r.layers.iter().enumerate() {
        let bits = l
            .bits
            .map_or("-".to_owned(), |b| format!("w{}a{}", b.w, b.a));
        let sparsity = l
            .sparsity
            .map_or("-".to_owned(), |z| format!("{:.1}%", z * 100.0));
        let _ = writeln!(
            s,
            "{i:>4} {:<24} {:<12} {:>14} {:>15} {:>12} {:>6} {:>8}  {}",
            l.name,
            l.op,
            l.out.to_string(),
            group(l.macs),
            group(l.params),
            bits,
            sparsity,
            l.inputs.join(", ")
        );
    }
    for k in &r.skipped {
        let _ = writeln!(s, "skipped: {k}");
    }
    for (k, v) in &r.metrics {
        let _ = writeln!(s, "metric {k} = {v}");
    }
    s
}

/// The trained models with their held-out accuracy.
pub(crate) fn trained(rows: &[Trained]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<20} {:>9} {:>9}  file",
        "model", "held-out", "accuracy"
    );
    for r in rows {
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
    s
}

/// The calibration points, model against measurement.
pub(crate) fn calibration(r: &CalibrationReport) -> String {
    let mut s = String::new();
    for p in &r.baselines {
        let _ = writeln!(s, "{}: {}", p.name, p.system);
        let _ = writeln!(
            s,
            "  measured  {:>9.3} mJ/inference, {:>9.3} ms ({})",
            p.measured_mj, p.measured_ms, p.scope
        );
        let _ = writeln!(
            s,
            "  model     {:>9.3} mJ/inference, {:>9.3} ms (preset {}, {}-bit, batch {})",
            p.model_mj, p.model_ms, p.preset, p.bits, p.batch
        );
        ratio_source_assumptions(
            &mut s,
            "measured",
            p.ratio,
            p.within_band(),
            &p.source,
            &p.assumptions,
        );
        s.push('\n');
    }
    for p in &r.macros {
        let _ = writeln!(s, "{}: {}", p.name, p.system);
        let _ = writeln!(
            s,
            "  published {:>9.3} pJ/bit read ({}-bit access, {} nm)",
            p.measured_pj_per_bit, p.access_bits, p.node_nm
        );
        let _ = writeln!(
            s,
            "  model     {:>9.3} pJ/bit read (array {} at {} nm: sensing {:.3}, decode {:.2e})",
            p.model_pj_per_bit, p.array, p.node_nm, p.sense_pj_per_bit, p.decode_pj_per_bit
        );
        ratio_source_assumptions(
            &mut s,
            "published",
            p.ratio,
            p.within_band(),
            &p.source,
            &p.assumptions,
        );
    }
    s
}

/// A calibration point's closing lines: model ÷ `against` and whether it is within the
/// band, its source and its assumptions.
fn ratio_source_assumptions(
    s: &mut String,
    against: &str,
    ratio: f64,
    within: bool,
    source: &str,
    assumptions: &[String],
) {
    let band = if within {
        "within [0.5, 2]"
    } else {
        "OUTSIDE [0.5, 2]"
    };
    let _ = writeln!(s, "  model ÷ {against} = {ratio:.2} ({band})");
    let _ = writeln!(s, "  source: {source}");
    for a in assumptions {
        let _ = writeln!(s, "  assumes: {a}");
    }
}
