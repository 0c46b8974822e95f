//! The `map` text report: the placement of every layer.

use crate::model::map::Layout;
use crate::records::*;
use std::fmt::Write as _;

pub(crate) fn header(r: &MapReport) -> String {
    let subarrays = if r.chips > 1 {
        format!(
            "{} subarrays on each of {} chips",
            r.subarrays / r.chips,
            r.chips
        )
    } else {
        format!("{} subarrays", r.subarrays)
    };
    let mut s = format!(
        "{} on {} / {} ({} lanes × {} columns per subarray, {subarrays}), one image, \
         strategy {}\n",
        r.model, r.device, r.array, r.lanes_per_subarray, r.cols_per_subarray, r.strategy
    );
    s.push_str(&crate::records::ir_warning(
        &r.ir_violations,
        "placed under --allow-ir-violation",
    ));
    s
}

pub(crate) fn waves(l: &LayerPlacement) -> u64 {
    l.programs
        .iter()
        .flat_map(|p| &p.runs)
        .map(|r| r.wave + 1)
        .max()
        .unwrap_or(0)
}

/// One line per layer.
pub(crate) fn summary(r: &MapReport) -> String {
    let mut s = header(r);
    let _ = writeln!(
        s,
        "{:>3} {:<22} {:<10} {:<30} {:>8} {:>7} {:>5} {:>10} {:>6} {:>6} {:>6} {:>12} {:>10} {:>6} {:>6} {:>10} {:>10}",
        "#",
        "layer",
        "op",
        "strategy",
        "programs",
        "runs",
        "waves",
        "lanes",
        "lane%",
        "col%",
        "chunk",
        "loaded bits",
        "cycles",
        "chip%",
        "eff%",
        "start",
        "end"
    );
    for l in &r.layers {
        let rep = &l.report;
        let _ = writeln!(
            s,
            "{:>3} {:<22} {:<10} {:<30} {:>8} {:>7} {:>5} {:>10} {:>6.1} {:>6.1} {:>6} {:>12} {:>10} {:>6.1} {:>6.1} {:>10} {:>10}",
            l.index,
            l.name,
            l.op,
            layout_name(rep),
            l.programs.len(),
            rep.subarray_runs,
            waves(l),
            rep.lanes_used,
            100.0 * rep.lane_utilization,
            100.0 * rep.column_utilization,
            l.programs
                .first()
                .filter(|p| p.chunk > 0)
                .map_or("-".to_owned(), |p| p.chunk.to_string()),
            rep.loaded_bits,
            rep.cycles,
            100.0 * rep.chip_lane_utilization,
            100.0 * rep.mapping_efficiency,
            l.start_cycle,
            l.end_cycle
        );
    }
    let cycles = r.cycles;
    let lane_cycles: u64 = r.layers.iter().map(|l| l.report.lane_cycles).sum();
    let bound: u64 = r.layers.iter().map(|l| l.report.bound_cycles).sum();
    let chip_lanes = u64::from(r.lanes_per_subarray) * r.subarrays;
    let share = |x: u64, y: u64, none: f64| crate::model::map::ratio(x as f64, y as f64, none);
    let _ = writeln!(
        s,
        "\nnetwork: {cycles} cycles on the timeline (the layers alone, one after another: {}; \
         start and end above, docs/model.md §2.11), chip lanes busy {}, mapping efficiency {} \
         (lower bound {bound} cycles: every lane-gate evaluation on the whole chip at the \
         shortest step, §2.8)",
        r.layers_cycles,
        crate::units::percent(share(lane_cycles, chip_lanes.saturating_mul(cycles), 0.0)),
        crate::units::percent(share(bound, cycles, 1.0))
    );
    let chips = r.chips.max(1);
    let _ = writeln!(
        s,
        "busy over the timeline: subarrays {}, global buses {}, controllers {}{}",
        crate::units::percent(share(
            r.busy.subarray_cycles,
            r.subarrays.saturating_mul(cycles),
            0.0
        )),
        crate::units::percent(share(r.busy.bus_cycles, chips.saturating_mul(cycles), 0.0)),
        crate::units::percent(share(
            r.busy.issue_cycles,
            chips.saturating_mul(cycles),
            0.0
        )),
        if chips > 1 {
            format!(
                ", chip-link ports {}",
                crate::units::percent(share(r.busy.link_cycles, chips.saturating_mul(cycles), 0.0))
            )
        } else {
            String::new()
        }
    );
    let _ = writeln!(s, "weights: {} (docs/model.md §2.7)", r.residency);
    s.push_str(
        "\n`cramulator map [CONFIG] --layer N` shows one layer's subarrays, columns and moves.\n",
    );
    s
}

/// Programs listed of a layer (and output channels).
const MAX_PROGRAMS: usize = 12;
/// Subarray runs listed of a program.
const MAX_RUNS: usize = 4;

/// Everything about one layer.
pub(crate) fn detail(r: &MapReport) -> String {
    let mut s = header(r);
    for l in &r.layers {
        let rep = &l.report;
        layer_heading(&mut s, l);
        if l.programs.is_empty() {
            let _ = writeln!(s, "no programs: this layer moves no data and runs no gates");
            continue;
        }
        programs(&mut s, l);
        columns(&mut s, l, r.cols_per_subarray);
        if l.in_place {
            let _ = writeln!(
                s,
                "\nno moves: runs in place on its producer's output columns"
            );
        } else {
            moves(&mut s, l);
        }
        let _ = writeln!(
            s,
            "outputs stay in their output columns; consumers load them from there\n\ntotal: \
             {} bits moved ({} written), {} gate steps, {} cycles, {:.1} pJ",
            rep.loaded_bits,
            rep.written_bits,
            rep.gate_steps,
            rep.cycles,
            rep.energy.total_pj()
        );
    }
    s
}

/// The layer's inputs and output, its strategy and the cost model's candidates.
fn layer_heading(s: &mut String, l: &LayerPlacement) {
    let rep = &l.report;
    let inputs: Vec<String> = l
        .inputs
        .iter()
        .map(|(n, sh)| format!("'{n}' {}×{}×{}", sh.c, sh.h, sh.w))
        .collect();
    let _ = writeln!(
        s,
        "\nlayer {} '{}' ({}): {} → {}×{}×{}",
        l.index,
        l.name,
        l.op,
        if inputs.is_empty() {
            "network input".to_owned()
        } else {
            inputs.join(" + ")
        },
        l.output.c,
        l.output.h,
        l.output.w
    );
    if let Some(st) = rep.strategy {
        let _ = writeln!(s, "strategy {}: {}", layout_name(rep), st.describe());
    }
    // The chosen layout and the few best others by energy and by cycles, in search order.
    let name = |c: &Candidate| {
        Layout {
            strategy: c.strategy,
            slices: c.slices as usize,
            shared: c.shared_program,
            resident: c.resident,
            copies: c.copies as usize,
        }
        .name()
    };
    let chosen = layout_name(rep);
    let mut shown: Vec<bool> = l.candidates.iter().map(|c| name(c) == chosen).collect();
    for key in [
        (|c: &Candidate| c.energy_pj) as fn(&Candidate) -> f64,
        |c: &Candidate| c.cycles as f64,
    ] {
        let mut order: Vec<usize> = (0..l.candidates.len()).collect();
        order.sort_by(|&a, &b| key(&l.candidates[a]).total_cmp(&key(&l.candidates[b])));
        for &k in order.iter().take(BEST_CANDIDATES) {
            shown[k] = true;
        }
    }
    for (c, _) in l.candidates.iter().zip(&shown).filter(|(_, s)| **s) {
        let _ = writeln!(
            s,
            "  cost model: {:<30} {:>14.1} pJ {:>12} cycles{}",
            name(c),
            c.energy_pj,
            c.cycles,
            if name(c) == chosen { "  (chosen)" } else { "" }
        );
    }
    let hidden = shown.iter().filter(|s| !**s).count();
    if hidden > 0 {
        let _ = writeln!(
            s,
            "  … {hidden} more candidate(s), not among the {BEST_CANDIDATES} lowest in energy or \
             cycles (`map --json` lists every one)"
        );
    }
}

/// Candidates listed beside the chosen layout: the lowest this many by energy and by
/// cycles.
const BEST_CANDIDATES: usize = 4;

/// A weighted layer's layout as the search names it (`-` for other layers).
fn layout_name(rep: &LayerReport) -> String {
    match (
        rep.strategy,
        rep.slices,
        rep.shared_program,
        rep.resident,
        rep.copies,
    ) {
        (Some(strategy), Some(slices), Some(shared), Some(resident), Some(copies)) => Layout {
            strategy,
            slices: slices as usize,
            shared,
            resident,
            copies: copies as usize,
        }
        .name(),
        _ => "-".to_owned(),
    }
}

/// The lane order, the reduction, the programs and their subarray runs.
fn programs(s: &mut String, l: &LayerPlacement) {
    let rep = &l.report;
    let _ = writeln!(s, "lane order: {}", l.lane_order);
    if let (Some(red), Some(p)) = (l.reduction, l.programs.first()) {
        let slices = rep.slices.unwrap_or(1).clamp(1, red.max(1) as u64) as usize;
        let per = red.div_ceil(slices);
        if slices > 1 {
            let _ = write!(
                s,
                "reduction {red} inputs in {slices} slices of up to {per} across lanes, each \
                 in chunks of {} → {} segment(s); a reducer pass adds each output's \
                 {slices} partial sums; ",
                p.chunk,
                per.div_ceil(p.chunk.max(1))
            );
        } else {
            let _ = write!(
                s,
                "reduction {red} inputs in chunks of {} → {} segment(s) per program; ",
                p.chunk,
                red.div_ceil(p.chunk.max(1))
            );
        }
        let _ = writeln!(
            s,
            "partial sums stay in the lanes' accumulator columns between segments"
        );
    }
    let _ = writeln!(
        s,
        "{} program(s), {} subarray run(s) on {} subarray(s) in {} wave(s); lanes used {} \
         ({:.1} %), columns up to {:.1} %",
        l.programs.len(),
        rep.subarray_runs,
        rep.subarrays,
        waves(l),
        rep.lanes_used,
        100.0 * rep.lane_utilization,
        100.0 * rep.column_utilization
    );
    let _ = writeln!(
        s,
        "{} cycles alone on the chips (cycles {}..{} of the network's timeline, docs/model.md \
         §2.11); chip lanes busy {} of them; mapping efficiency {} (lower bound {} cycles, §2.8)",
        rep.cycles,
        l.start_cycle,
        l.end_cycle,
        crate::units::percent(rep.chip_lane_utilization),
        crate::units::percent(rep.mapping_efficiency),
        rep.bound_cycles
    );
    let _ = writeln!(
        s,
        "\n  {:>7} {:>11} {:>7} {:>7}  runs: subarray (bank, wave) lanes",
        "program", "channels", "chunk", "columns"
    );
    for (k, p) in l.programs.iter().enumerate().take(MAX_PROGRAMS) {
        let mut runs: Vec<String> = p
            .runs
            .iter()
            .take(MAX_RUNS)
            .map(|r| {
                format!(
                    "s{} (b{}, w{}) {}..{}",
                    r.subarray, r.bank, r.wave, r.lanes[0], r.lanes[1]
                )
            })
            .collect();
        if p.runs.len() > MAX_RUNS {
            runs.push(format!("… {} more", p.runs.len() - MAX_RUNS));
        }
        let _ = writeln!(
            s,
            "  {:>7} {:>11} {:>7} {:>7}  {}",
            k,
            format!("{}..{}", p.channels[0], p.channels[1]),
            if p.chunk > 0 {
                p.chunk.to_string()
            } else {
                "-".into()
            },
            p.cols,
            runs.join(", ")
        );
    }
    if l.programs.len() > MAX_PROGRAMS {
        let _ = writeln!(s, "  … {} more programs", l.programs.len() - MAX_PROGRAMS);
    }
}

/// The columns of program 0 and the output columns.
fn columns(s: &mut String, l: &LayerPlacement, cols_per_subarray: u32) {
    let _ = writeln!(
        s,
        "\ncolumns of program 0 (its generated code uses {}; the plan reserves {} of {} \
         per subarray):",
        l.columns.last().map_or(0, |c| c.end),
        l.programs[0].cols,
        cols_per_subarray
    );
    for c in &l.columns {
        let _ = writeln!(
            s,
            "  {:>11}  {}",
            format!("{}..{}", c.first, c.end),
            c.holds
        );
    }
    if !l.outputs.is_empty() {
        let _ = writeln!(s, "output columns (bit 0 first):");
        for (ch, cols) in l.outputs.iter().take(MAX_PROGRAMS) {
            let cols: Vec<String> = cols.iter().map(usize::to_string).collect();
            let who = ch.map_or("each lane's own channel".to_owned(), |c| {
                format!("channel {c}")
            });
            let _ = writeln!(s, "  {who:>13}: {}", cols.join(" "));
        }
        if l.outputs.len() > MAX_PROGRAMS {
            let _ = writeln!(s, "  … {} more channels", l.outputs.len() - MAX_PROGRAMS);
        }
    }
}

/// The moves before each segment of program 0 and where each kind of operand comes from.
fn moves(s: &mut String, l: &LayerPlacement) {
    let _ = writeln!(
        s,
        "\nmoves before each segment (program 0; every lane of each run):"
    );
    let segs = l.moves.last().map_or(0, |m| m.segment + 1);
    let mut elided = false;
    for m in &l.moves {
        if segs > 6 && (3..segs - 1).contains(&m.segment) {
            if !elided {
                let _ = writeln!(
                    s,
                    "  … segments 3..={} load the next chunks alike",
                    segs - 2
                );
                elided = true;
            }
            continue;
        }
        let _ = writeln!(
            s,
            "  seg {:>3}  {:<12} → cols {}..{}, {} b/lane",
            m.segment, m.operands, m.cols[0], m.cols[1], m.bits_per_lane
        );
    }
    let mut sources: Vec<(&str, &str)> = Vec::new();
    for m in &l.moves {
        if !sources.iter().any(|(k, _)| *k == m.kind) {
            sources.push((m.kind, &m.from));
        }
    }
    for (kind, from) in sources {
        let _ = writeln!(s, "  {kind:>5}  from {from}");
    }
}
