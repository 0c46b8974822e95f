//! The `kernel` text report.

use crate::model::kernels::KernelKind;
use crate::records::*;
use cram_arch::IrCheck;
use std::fmt::Write as _;

/// The text report of a kernel run.
pub(crate) fn kernel_text(r: &KernelRunReport) -> String {
    let mut s = String::new();
    program_lines(&mut s, r);
    host_lines(&mut s, r);
    timing_lines(&mut s, &r.timing);
    ir_line(&mut s, &r.ir);
    energy_lines(&mut s, r);
    if let Some(runs) = r.runs_to_endurance_budget {
        endurance_line(&mut s, r, runs);
    }
    if let Some(c) = &r.check {
        check_lines(&mut s, r, c);
    }
    s
}

/// The kernel, its program's steps and columns, its lanes and lane-gate evaluations.
fn program_lines(s: &mut String, r: &KernelRunReport) {
    let widths = match r.spec.kind {
        KernelKind::Mul | KernelKind::Smul => format!("{}×{}-bit", r.spec.bits, r.spec.bits_b),
        KernelKind::Mulc => format!("{}-bit × constant {}", r.spec.bits, r.spec.constant),
        _ => format!("{}-bit", r.spec.bits),
    };
    let _ = writeln!(
        s,
        "kernel {} ({widths}), gate set {}, device {}, {} mode",
        r.kernel,
        r.spec.gate_set.name(),
        r.device,
        r.mode
    );
    let by_gate: Vec<String> = r
        .counts
        .by_gate
        .iter()
        .map(|(g, n)| format!("{g} {n}"))
        .collect();
    let _ = writeln!(
        s,
        "  steps            {} gate steps ({})",
        r.counts.gate_steps,
        by_gate.join(", ")
    );
    let _ = writeln!(
        s,
        "  presets          {} folded into gate steps, {} stand-alone column presets",
        r.counts.gate_presets, r.counts.column_presets
    );
    let _ = writeln!(s, "  columns          {}", r.columns);
    let _ = writeln!(
        s,
        "  lanes            {} in {} subarray(s) of up to {} lanes, seed {}",
        r.lanes, r.subarrays, r.config.lanes_per_subarray, r.config.seed
    );
    let _ = writeln!(
        s,
        "  lane-gate evals  {} ({:.3e})",
        r.lane_gate_evals, r.lane_gate_evals as f64
    );
}

/// The host's wall time and throughput.
fn host_lines(s: &mut String, r: &KernelRunReport) {
    match (&r.check, r.lane_gate_evals_per_s_exec_thread) {
        (Some(c), Some(exec)) => {
            let _ = writeln!(
                s,
                "  host wall time   {:.3} s on {} thread(s), {:?} word loops; executor {:.3} s summed over threads",
                r.wall_s, r.threads, r.simd, c.exec_cpu_s
            );
            let _ = writeln!(
                s,
                "  throughput       {:.3e} lane-gate evals/s end to end (incl. data generation and checking); {exec:.3e} /s per executor thread",
                r.lane_gate_evals_per_s_wall
            );
        }
        _ => {
            let _ = writeln!(
                s,
                "  host wall time   {:.4} s (nothing executed but the characterization sample)",
                r.wall_s
            );
        }
    }
}

/// The timing of the run and the utilization of one pass.
fn timing_lines(s: &mut String, t: &KernelTiming) {
    let _ = writeln!(
        s,
        "  timing           {} cycles = {:.1} ns on array {}: {} subarray(s) in parallel × {} pass(es); gate step {} cycles (preset + pulse + set-up)",
        t.cycles, t.time_ns, t.array, t.subarrays_in_parallel, t.passes, t.steps.gate
    );
    let subs: Vec<&ResourceUse> = t
        .pass
        .resources
        .iter()
        .filter(|u| matches!(u.resource, Resource::Subarray(_)))
        .collect();
    let mean_util = subs.iter().map(|u| u.utilization).sum::<f64>() / subs.len().max(1) as f64;
    let issue = t
        .pass
        .resources
        .iter()
        .find(|u| u.resource == Resource::Issue)
        .map_or(0.0, |u| u.utilization);
    let path: Vec<String> = t
        .pass
        .critical_path_cycles
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        s,
        "  utilization      subarrays {:.1} % (mean of {}), controller issue {:.1} %; critical path {} commands ({} cycles)",
        mean_util * 100.0,
        subs.len(),
        issue * 100.0,
        t.pass.critical_path_commands,
        path.join(", ")
    );
}

/// The IR drop check of the gates used.
fn ir_line(s: &mut String, ir: &IrCheck) {
    let limit = ir.binding().map_or_else(
        || "no limit (lines without resistance)".to_owned(),
        |l| format!("limit {} rows ({})", l.max_rows.unwrap_or(0), l.gate),
    );
    let _ = writeln!(
        s,
        "  IR drop          {} rows share a line at {} Ω per cell; {limit}; {}",
        ir.rows_per_line,
        ir.r_wire_ohm_per_cell,
        if ir.ok() {
            "every gate switches in every row".to_owned()
        } else {
            format!(
                "VIOLATED (run anyway by --allow-ir-violation; results assume every gate switches): {}",
                ir.violations().join("; ")
            )
        }
    );
}

/// The energy, its breakdown and (full report) every resource and energy component.
fn energy_lines(s: &mut String, r: &KernelRunReport) {
    let t = &r.timing;
    let e = &r.energy;
    let primary = e.data_dependent.as_ref().unwrap_or(&e.mean);
    let label = if e.data_dependent.is_some() {
        "data-dependent"
    } else {
        "mean"
    };
    let per_eval = primary.total_pj() / r.lane_gate_evals.max(1) as f64;
    let _ = writeln!(
        s,
        "  energy           {label} {} ({} per lane, {} per lane-gate eval); mean {}, worst {}",
        crate::units::joules(primary.total_pj()),
        crate::units::joules(primary.total_pj() / r.lanes.max(1) as f64),
        crate::units::joules(per_eval),
        crate::units::joules(e.mean.total_pj()),
        crate::units::joules(e.worst_total_pj)
    );
    let _ = writeln!(s, "  breakdown        {}", breakdown_shares(primary));
    if r.full_report {
        let _ = writeln!(s, "  resources (one pass of {} cycles):", t.pass.cycles);
        for u in &t.pass.resources {
            let _ = writeln!(
                s,
                "    {:<18} busy {:>10} cycles  {:>6.1} %",
                u.name,
                u.busy_cycles,
                u.utilization * 100.0
            );
        }
        let _ = writeln!(s, "  energy by component ({label}), pJ:");
        // A kernel runs in the array: the periphery's function unit (LRN) never takes part.
        for (name, v) in primary.components() {
            if name == "function unit" && v == 0.0 {
                continue;
            }
            let _ = writeln!(s, "    {name:<18} {v:>14.3}");
        }
    }
}

/// The hottest cells and the runs until they reach the write budget.
fn endurance_line(s: &mut String, r: &KernelRunReport, runs: f64) {
    let _ = writeln!(
        s,
        "  endurance        hottest cells: column {} with {} presets + {} pulses per run; {:.3e} runs to a {:e}-write budget ({:.3e} s of back-to-back runs)",
        r.hottest_col_name.as_deref().unwrap_or("?"),
        r.counts.hottest.presets,
        r.counts.hottest.pulses,
        runs,
        r.endurance_budget,
        r.lifetime_s_continuous.unwrap_or(0.0)
    );
}

/// The check of the lanes: the injected faults and their effect, or whether every lane
/// equals the integer reference.
fn check_lines(s: &mut String, r: &KernelRunReport, c: &CheckReport) {
    if r.config.error_rate > 0.0 || r.config.error_rates_by_gate.is_some() {
        let rate = match &r.config.error_rates_by_gate {
            None => format!("{:e}", r.config.error_rate),
            Some(p) => {
                let used: Vec<String> = r
                    .counts
                    .by_gate
                    .keys()
                    .map(|g| format!("{g} {:.2e}", p[g.index()]))
                    .collect();
                format!("derived from noise margins ({})", used.join(", "))
            }
        };
        let _ = writeln!(
            s,
            "  faults           p = {} per gate output per lane: {} flips injected (rate {:.3e}); \
             output bit-error rate {:.3e} ({} of {} bits); wrong results {:.3e} ({} of {} lanes)",
            rate,
            c.injected_flips,
            c.injected_flips as f64 / r.lane_gate_evals.max(1) as f64,
            c.output_bits_wrong as f64 / c.output_bits.max(1) as f64,
            c.output_bits_wrong,
            c.output_bits,
            c.mismatched_lanes as f64 / c.lanes_checked.max(1) as f64,
            c.mismatched_lanes,
            c.lanes_checked
        );
        return;
    }
    match &c.first_mismatch {
        None => {
            let _ = writeln!(
                s,
                "  check            all {} lanes equal the integer reference",
                c.lanes_checked
            );
        }
        Some(m) => {
            let _ = writeln!(
                s,
                "  check            FAILED: {} of {} lanes differ; first: lane {} inputs {:?} got {:?} expected {:?}",
                c.mismatched_lanes, c.lanes_checked, m.lane, m.inputs, m.got, m.expected
            );
        }
    }
}

/// Non-zero components as shares of the total.
pub(crate) fn breakdown_shares(e: &EnergyBreakdown) -> String {
    let total = e.total_pj().max(f64::MIN_POSITIVE);
    let parts: Vec<String> = e
        .components()
        .into_iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(n, v)| format!("{n} {:.1} %", 100.0 * v / total))
        .collect();
    parts.join(", ")
}
