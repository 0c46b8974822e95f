//! The `simulate` text report.

use crate::model::map::Strategy;
use crate::records::*;
use std::fmt::Write as _;

pub(crate) fn text(r: &SimulateReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {} / {} ({:?}), {} image(s): {:.1} pJ per image, {} cycles for the batch",
        r.model, r.device, r.array, r.mode, r.images, r.energy_pj_per_image, r.cycles
    );
    s.push_str(&crate::records::ir_warning(
        &r.ir_violations,
        crate::records::IR_ALLOWED,
    ));
    if let Some(e) = r.bit_exact_images {
        let _ = writeln!(
            s,
            "bit-exact against the golden executor: {e}/{} images",
            r.images
        );
    }
    if let Some(c) = r.correct {
        let _ = writeln!(
            s,
            "accuracy: {c}/{} = {:.2} %",
            r.images,
            100.0 * c as f64 / r.images as f64
        );
    }
    let _ = writeln!(
        s,
        "{:<10} {:<8} {:<7} {:>7} {:>9} {:>6} {:>6} {:>12} {:>14} {:>12} {:>14}",
        "layer",
        "op",
        "strat",
        "streams",
        "subarrays",
        "lanes",
        "cols",
        "gate steps",
        "loaded bits",
        "cycles",
        "energy pJ"
    );
    for l in &r.layers {
        let _ = writeln!(
            s,
            "{:<10} {:<8} {:<7} {:>7} {:>9} {:>5.0}% {:>5.0}% {:>12} {:>14} {:>12} {:>14.1}",
            l.name,
            l.op,
            l.strategy.map_or("-", Strategy::name),
            l.streams,
            l.subarrays,
            100.0 * l.lane_utilization,
            100.0 * l.column_utilization,
            l.gate_steps,
            l.loaded_bits,
            l.cycles,
            l.energy.total_pj()
        );
    }
    for v in &r.versus_dense_int8 {
        let _ = writeln!(
            s,
            "\nstrategy {} against dense int8 (analytical, one image): energy {:.1} vs {:.1} pJ \
             ({:.2}× less), latency {} vs {} cycles ({:.2}× less)",
            v.strategy.name(),
            v.energy_pj,
            v.dense_int8_energy_pj,
            v.dense_int8_energy_pj / v.energy_pj,
            v.cycles,
            v.dense_int8_cycles,
            v.dense_int8_cycles as f64 / v.cycles as f64
        );
        let _ = writeln!(
            s,
            "{:<24} {:>14} {:>14} {:>8} {:>12} {:>12} {:>8}",
            "layer", "energy pJ", "dense int8", "saving", "cycles", "dense int8", "speedup"
        );
        for (name, e, de, c, dc) in &v.layers {
            let _ = writeln!(
                s,
                "{:<24} {:>14.1} {:>14.1} {:>7.2}× {:>12} {:>12} {:>7.2}×",
                name,
                e,
                de,
                de / e,
                c,
                dc,
                *dc as f64 / *c as f64
            );
        }
    }
    if !r.faults.is_empty() {
        let _ = writeln!(
            s,
            "\n{:>10} {:>12} {:>10} {:>18}",
            "error rate", "flips", "accuracy", "agree with golden"
        );
        for f in &r.faults {
            let acc = f.correct.map_or("-".to_owned(), |c| {
                format!("{:.2} %", 100.0 * c as f64 / r.images as f64)
            });
            let _ = writeln!(
                s,
                "{:>10.0e} {:>12} {:>10} {:>13}/{}",
                f.error_rate, f.flips, acc, f.agree_with_golden, r.images
            );
        }
    }
    s
}
