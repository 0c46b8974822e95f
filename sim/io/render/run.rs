//! The `run` table: the comparison a person reads.

use crate::records::{Metrics, RunReport};
use std::fmt::Write as _;
use std::path::Path;

/// The chip line: one chip's area by component and its periphery's leakage (docs/model.md
/// §1.1.2 and §1.1.3).
fn chip_line(s: &mut String, c: &crate::records::ChipReport) {
    use crate::units::si;
    let parts: Vec<String> = c
        .area_by_component
        .iter()
        .filter(|(_, a)| *a > 0.0)
        .map(|(name, a)| format!("{name} {}", si(*a, "")))
        .collect();
    let _ = writeln!(
        s,
        "cram chip: {} mm² per chip × {} ({} mm²); periphery leakage {} per chip, {} \
         (docs/model.md §1.1.2-1.1.3)",
        si(c.area_mm2, ""),
        c.chips,
        parts.join(", "),
        si(c.leakage_mw * 1e-3, "W"),
        if c.power_gating {
            "idle subarrays power-gated"
        } else {
            "not power-gated"
        },
    );
}

/// The gate-error line: each gate's derived rate and evaluations per inference, the
/// expected flips, the flip-free share and the expected accuracy (docs/model.md §1.7.1).
fn reliability_line(s: &mut String, q: &crate::records::Reliability) {
    let gates: Vec<String> = q
        .gates
        .iter()
        .map(|g| {
            format!(
                "{} {:.2e} × {}",
                g.gate,
                g.p_err,
                crate::units::si(g.evaluations_per_inference, "")
            )
        })
        .collect();
    let _ = write!(
        s,
        "cram gate errors (p_err × evaluations per inference, budget {:e}): {}; {:.3e} \
         expected flips per inference, {} of inferences flip-free",
        q.max_gate_error,
        gates.join(", "),
        q.expected_flips_per_inference,
        crate::units::percent(q.p_flip_free_inference),
    );
    if let (Some(c), Some(lo), Some(hi)) = (
        q.clean_accuracy,
        q.expected_accuracy_min,
        q.expected_accuracy_max,
    ) {
        let _ = write!(
            s,
            "; expected accuracy {:.2}–{:.2} % (error-free {:.2} %)",
            100.0 * lo,
            100.0 * hi,
            100.0 * c
        );
    }
    match q.injected_flips {
        Some(f) => {
            let _ = writeln!(s, "; injected: {f} flips, the check above is the device's");
        }
        None => {
            let _ = writeln!(s, "; not injected (run.inject_gate_errors)");
        }
    }
}

/// The `run` table: the workload and its check, CRAM's and each baseline's metrics per
/// inference, CRAM's gains, the carbon footprint and where the results are.
pub(crate) fn table(r: &RunReport, dir: &Path) -> String {
    let mut s = String::new();
    let c = &r.cram;
    let _ = write!(
        s,
        "{} ({} MACs) on CRAM {} / {} ({}), {} image(s)",
        r.workload.model,
        crate::units::si(r.workload.macs as f64, ""),
        c.device,
        c.array,
        c.mode,
        c.images
    );
    if let Some(e) = c.bit_exact_images {
        let _ = write!(s, ", bit-exact {e}/{}", c.images);
    }
    if let Some(k) = c.correct {
        let _ = write!(s, ", accuracy {:.2} %", 100.0 * k as f64 / c.images as f64);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", origin_line(&r.workload.origin));
    s.push_str(&crate::records::ir_warning(
        &c.ir.violations,
        crate::records::IR_ALLOWED,
    ));
    if let Some(b) = r.baselines.first() {
        let _ = writeln!(
            s,
            "energy and inf/s at a batch of {} on CRAM and {} on each baseline; latency and util \
             of one inference alone",
            c.images, b.batch
        );
    }
    let _ = writeln!(s);
    metrics_table(&mut s, r);
    let _ = writeln!(
        s,
        "cram mapping (one inference): chip lanes busy {}, mapping efficiency {} (lower bound \
         ÷ cycles, docs/model.md §2.8)",
        crate::units::percent(c.chip_lane_utilization),
        crate::units::percent(c.mapping_efficiency)
    );
    let b = &c.energy_by_boundary;
    let _ = writeln!(
        s,
        "cram energy by boundary: array {}, macro {}, chip {}, system {} (the tables: system; \
         docs/model.md §4.1)",
        crate::units::si(b.array * 1e-12, "J"),
        crate::units::si(b.macro_ * 1e-12, "J"),
        crate::units::si(b.chip * 1e-12, "J"),
        crate::units::si(b.system * 1e-12, "J"),
    );
    chip_line(&mut s, &c.chip);
    reliability_line(&mut s, &c.reliability);
    let d = &c.residency;
    let _ = writeln!(s, "cram weights: {}", d.decision);
    if d.resident {
        let e = d.deployment_energy.total_pj();
        let _ = writeln!(
            s,
            "cram deployment: {} and {} once, {} per inference over {} inferences (not in \
             the table)",
            crate::units::si(e * 1e-12, "J"),
            crate::units::si(d.deployment_latency_s, "s"),
            crate::units::si(d.deployment_pj_per_inference * 1e-12, "J"),
            d.inferences_per_deployment
        );
    }
    gains_table(&mut s, r);
    let _ = writeln!(
        s,
        "\nCO2e per million inferences at {} g/kWh: cram {}{}",
        r.grid_gco2e_per_kwh,
        crate::units::si(c.metrics.co2e_kg_per_million * 1e3, "g"),
        r.baselines
            .iter()
            .map(|b| format!(
                ", {} {}",
                b.name,
                crate::units::si(b.metrics.co2e_kg_per_million * 1e3, "g")
            ))
            .collect::<String>()
    );
    if let Some(g) = &r.generation {
        generation_table(&mut s, g);
    }
    let _ = writeln!(
        s,
        "results: {} (resolved.toml, manifest.json, report.json, layers.csv)",
        dir.display()
    );
    s
}

/// A generation: the prefill, the decode steps (first, last, mean per token), the totals,
/// and the cache's size and wear.
fn generation_table(s: &mut String, g: &crate::records::GenerationReport) {
    use crate::units::si;
    let j = |pj: f64| si(pj * 1e-12, "J");
    let _ = writeln!(
        s,
        "\ngeneration: a {}-token prompt's prefill (the run above), then {} generated token(s), \
         each decode step priced at its own cache length (analytical, batch 1)",
        g.prompt_tokens, g.decode_tokens
    );
    let _ = writeln!(
        s,
        "{:<14} {:>19} {:>25} {:>19} {:>19} {:>19}",
        "", "prefill", "token 1 → last", "per token (mean)", "decode", "whole"
    );
    for m in &g.machines {
        let first_last = |v: &[f64], f: &dyn Fn(f64) -> String| match (v.first(), v.last()) {
            (Some(&a), Some(&b)) => format!("{} → {}", f(a), f(b)),
            _ => "–".to_owned(),
        };
        let t = |x: f64| si(x, "s");
        let _ = writeln!(
            s,
            "{:<14} {:>19} {:>25} {:>19} {:>19} {:>19}",
            m.machine,
            format!("{}, {}", j(m.prefill_energy_pj), t(m.prefill_latency_s)),
            first_last(&m.step_energy_pj, &j),
            format!("{}, {}", j(m.energy_per_token_pj), t(m.latency_per_token_s)),
            format!("{}, {}", j(m.decode_energy_pj), t(m.decode_latency_s)),
            format!("{}, {}", j(m.total_energy_pj), t(m.total_latency_s)),
        );
    }
    let bound: Vec<String> = g
        .machines
        .iter()
        .filter_map(|m| {
            Some(format!(
                "{} {} of {}",
                m.machine, m.last_step_memory_bound_layers?, m.last_step_layers?
            ))
        })
        .collect();
    if !bound.is_empty() {
        let _ = writeln!(
            s,
            "baseline layers memory-bound in the last decode step: {}",
            bound.join(", ")
        );
    }
    let c = &g.cache;
    let _ = writeln!(
        s,
        "KV cache: {} bits per token, {} after the generation, reserved in the chips' \
         resident share of {} from the prefill on; resident weights take {} of the rest",
        c.bits_per_token,
        si(c.bits_at_end as f64, "bit"),
        si(c.resident_capacity_bits as f64, "bit"),
        si(c.resident_weight_bits as f64, "bit"),
    );
    let _ = writeln!(
        s,
        "KV cache endurance at {:e} writes per cell: each cache cell is written {} time(s) per \
         generation, so generations of {} tokens into the same cells last {:.3e} generated \
         tokens; the compute cells take {:.3e} writes per token{} (docs/model.md §1.7)",
        c.endurance_budget,
        c.writes_per_cache_cell,
        g.decode_tokens,
        c.cache_tokens_to_budget,
        c.compute_writes_per_token,
        c.compute_tokens_to_budget_at_most
            .map_or(String::new(), |t| format!(
                ", so {t:.3e} tokens at most even with every write spread over all {} cells",
                si(c.chip_cells as f64, "")
            )),
    );
}

/// Every side's metrics per inference.
fn metrics_table(s: &mut String, r: &RunReport) {
    let _ = writeln!(
        s,
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10} {:>9} {:>6} {:>11}",
        "per inference",
        "energy",
        "compute",
        "data mv.",
        "static",
        "TOPS/W",
        "latency",
        "inf/s",
        "EDP",
        "area",
        "util",
        "CO2e"
    );
    let mut line = |name: &str, m: &Metrics| {
        let _ = writeln!(
            s,
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>8.3} {:>10} {:>10} {:>10} {:>9} {:>5.1}% {:>11}",
            name,
            crate::units::si(m.energy_pj * 1e-12, "J"),
            crate::units::si(m.compute_pj * 1e-12, "J"),
            crate::units::si(m.data_movement_pj * 1e-12, "J"),
            crate::units::si(m.static_pj * 1e-12, "J"),
            m.tops_per_w,
            crate::units::si(m.latency_s, "s"),
            crate::units::si(m.throughput_per_s, ""),
            crate::units::si(m.edp_j_s, "J·s"),
            m.area_mm2.map_or("–".into(), |a| format!("{a:.1} mm²")),
            100.0 * m.utilization,
            crate::units::si(m.co2e_g_per_inference, "g"),
        );
    };
    line("cram", &r.cram.metrics);
    for b in &r.baselines {
        line(&b.name, &b.metrics);
    }
}

/// CRAM's gain over each baseline, and where the baseline's time goes.
fn gains_table(s: &mut String, r: &RunReport) {
    let _ = writeln!(
        s,
        "\nCRAM's gain      {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  where the baseline's time goes",
        "energy", "compute", "data mv.", "latency", "inf/s", "EDP"
    );
    for b in &r.baselines {
        let v = &b.versus_cram;
        // A component the baseline does not model apart (0 pJ) has no ratio.
        let part = |ratio: f64, pj: f64| {
            if pj > 0.0 {
                crate::units::times(ratio)
            } else {
                "–".into()
            }
        };
        let _ = writeln!(
            s,
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  {} of {} layers memory-bound",
            b.name,
            crate::units::times(v.energy),
            part(v.compute_energy, b.metrics.compute_pj),
            part(v.data_movement_energy, b.metrics.data_movement_pj),
            crate::units::times(v.speedup),
            crate::units::times(v.throughput),
            crate::units::times(v.edp),
            b.memory_bound_layers,
            b.memory_bound_layers + b.compute_bound_layers
        );
    }
    if !r.baselines.is_empty() {
        let _ = writeln!(
            s,
            "(baseline ÷ CRAM for energy, latency and EDP, CRAM ÷ baseline for inf/s: above 1, \
             CRAM is better; energy at the system boundary)"
        );
        let _ = writeln!(
            s,
            "\nenergy gain by boundary (the baseline's whole energy ÷ CRAM's inside it)\n{:<16} \
             {:>10} {:>10} {:>10} {:>10}",
            "", "array", "macro", "chip", "system"
        );
        for b in &r.baselines {
            let v = &b.versus_cram.energy_by_boundary;
            let _ = writeln!(
                s,
                "{:<16} {:>10} {:>10} {:>10} {:>10}",
                b.name,
                crate::units::times(v.array),
                crate::units::times(v.macro_),
                crate::units::times(v.chip),
                crate::units::times(v.system)
            );
        }
    }
}

/// One line on where a workload's weights and codes came from.
pub(crate) fn origin_line(o: &cram_workloads::prepare::Origin) -> String {
    use cram_workloads::prepare::{QuantizedBy, WeightsFrom};
    let weights = match o.weights_from {
        WeightsFrom::File => "weights from the model",
        WeightsFrom::Synthetic => "seeded synthetic weights (the model holds none)",
    };
    let codes = match (o.quantized_by, o.file_weights) {
        (QuantizedBy::File, _) => "quantized as the model file gives it".to_owned(),
        (QuantizedBy::Settings, _) => "compressed by the workload.* settings".to_owned(),
        (QuantizedBy::RecordedBits, 0) => {
            "requantized at the bit-widths the file records".to_owned()
        }
        (QuantizedBy::RecordedBits, n) => {
            format!("at the bit-widths the file records, with its own weight codes in {n} layer(s)")
        }
    };
    match (&o.calibration, o.file_formats) {
        (Some(c), 0) => format!("workload: {weights}; {codes}; activations calibrated on {c}"),
        (Some(c), n) => format!(
            "workload: {weights}; {codes}; activations at the file's scales and zero points \
             in {n} layer(s), elsewhere calibrated on {c}"
        ),
        (None, _) => format!("workload: {weights}; {codes}"),
    }
}
