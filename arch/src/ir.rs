//! IR drop along the bit-select lines a logic step shares between rows, and the largest number
//! of rows each gate tolerates (docs/model.md §1.3.2; method of Zabihi et al., "Analyzing the effects of
//! interconnect parasitics in the STT CRAM in-memory computational platform", IEEE JxCDC 6(1)
//! 2020 — `docs/references.md` L-A4/T14: IR drop ∝ rows², the gate's window caps the size).
//!
//! Model (closed form; an estimate, not a proven bound — see the last paragraph):
//!
//! * A logic step drives the bit-select lines (BSLs) of its columns from one end of a line
//!   segment of S rows: the inputs' lines at the bias V, the output's line at ground. Every row
//!   of the segment runs the gate at once, each row drawing its current through the shared
//!   lines; one cell pitch of line has resistance `r_w`.
//! * Every row draws the gate's largest current, `I_max = V / min_z R_tot(z)`, split equally
//!   over its n inputs (exact when all inputs hold the same value). The wire cell between rows
//!   j−1 and j carries the current of rows j..S, so the row farthest from the drivers sees on
//!   the output line a drop of `r_w·I_max·S(S+1)/2`, and on each input line `r_w·I_max/n·S(S+1)/2`.
//! * The far row therefore sees `V_eff = V·(1 − f(S))` with
//!   `f(S) = r_w·S(S+1)/2 · (1 + 1/n) / min_z R_tot(z)`.
//!   The drop only lowers the voltage, so the near row stays below the upper window edge; the
//!   gate works in every row iff `V_eff ≥ V_min` at the chosen bias, i.e.
//!   `S(S+1) ≤ 2·(1 − V_min/V)·min_z R_tot(z) / (r_w·(1 + 1/n))`.
//!
//! Not modelled (each stated so a reader can weigh it): the row currents fall as the lines
//! droop (the true drop is smaller); input lines carry unequal shares when a row's inputs
//! differ (for AND and MAJ on `stt-projected` one input line can carry more than I_max/n,
//! which a first-order estimate puts at 4–10 % more drop, 1–4 rows fewer); the logic line's own
//! resistance between the operand columns (a per-row series term, not shared); the global grid
//! that feeds the segment drivers; the smaller margin left to far rows for fault rates.

use serde::Serialize;

use crate::gates::{GateKind, GateLibrary, GateSpec};
use crate::org::Org;

/// The IR-drop limit of one gate on one line resistance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IrLimit {
    /// The gate.
    pub gate: GateKind,
    /// Largest number of rows on one driven line segment for which the far row still switches
    /// (`None`: no limit, the wire has no resistance). 0 for a gate that cannot be built.
    pub max_rows: Option<u64>,
}

/// Relative drop f(S) = ΔV/V seen by the row farthest from the drivers when `rows` rows run
/// `gate` at once on lines of `r_wire_ohm_per_cell` per cell pitch.
pub fn far_row_drop_rel(gate: &GateSpec, rows: u64, r_wire_ohm_per_cell: f64) -> f64 {
    let r_min_ohm = gate.r_tot_ohm.iter().copied().fold(f64::INFINITY, f64::min);
    let s = rows as f64;
    r_wire_ohm_per_cell * s * (s + 1.0) / 2.0 * (1.0 + 1.0 / gate.inputs as f64) / r_min_ohm
}

/// The largest row count for which `gate` still switches in every row (see the module doc).
pub fn max_rows(gate: &GateSpec, r_wire_ohm_per_cell: f64) -> IrLimit {
    let max_rows = if !gate.available() {
        Some(0)
    } else if r_wire_ohm_per_cell <= 0.0 {
        None
    } else {
        let r_min_ohm = gate.r_tot_ohm.iter().copied().fold(f64::INFINITY, f64::min);
        let budget = 1.0 - gate.v_min_v / gate.bias_v;
        // S(S+1) ≤ b.
        let b = 2.0 * budget * r_min_ohm / (r_wire_ohm_per_cell * (1.0 + 1.0 / gate.inputs as f64));
        let fits = |s: u64| far_row_drop_rel(gate, s, r_wire_ohm_per_cell) <= budget;
        // Closed-form start, then settle exactly against the same inequality the check uses.
        let mut s = (((1.0 + 4.0 * b).sqrt() - 1.0) / 2.0).clamp(0.0, 1e15) as u64;
        while s > 0 && !fits(s) {
            s -= 1;
        }
        while s < 1_000_000_000_000_000 && fits(s + 1) {
            s += 1;
        }
        Some(s)
    };
    IrLimit {
        gate: gate.kind,
        max_rows,
    }
}

/// One gate of a program checked against the rows that share a line.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IrGateCheck {
    /// The gate and its limit.
    pub limit: IrLimit,
    /// Voltage the row farthest from the drivers sees at the gate's bias, V.
    pub far_row_v: f64,
    /// The gate's lower window edge, V.
    pub v_min_v: f64,
    /// Whether the far row still switches (`far_row_v ≥ v_min_v`).
    pub ok: bool,
}

/// The IR-drop check of the gates one program uses, on one organisation.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IrCheck {
    /// Rows sharing one driven line: min(lanes per line segment, lanes per subarray).
    pub rows_per_line: u64,
    /// Line resistance per cell pitch, Ω.
    pub r_wire_ohm_per_cell: f64,
    /// One entry per gate used, in [`GateKind::ALL`] order.
    pub gates: Vec<IrGateCheck>,
}

impl IrCheck {
    /// Checks `gates` of `lib` on `org` when subarrays hold `lanes_per_subarray` lanes.
    pub fn new(
        lib: &GateLibrary,
        org: &Org,
        lanes_per_subarray: u64,
        gates: impl IntoIterator<Item = GateKind>,
    ) -> IrCheck {
        let per = &org.params.peripherals;
        let rows = lanes_per_subarray.min(u64::from(per.lanes_per_line_segment));
        let r_w = per.r_wire_ohm_per_cell;
        let mut used: Vec<GateKind> = gates.into_iter().collect();
        used.sort();
        used.dedup();
        let gates = used
            .into_iter()
            .map(|kind| {
                let g = lib.get(kind);
                // The linear drop model stops meaning anything past a full drop: floor at 0 V.
                let far_row_v = g.bias_v * (1.0 - far_row_drop_rel(g, rows, r_w)).max(0.0);
                let limit = max_rows(g, r_w);
                IrGateCheck {
                    limit,
                    far_row_v,
                    v_min_v: g.v_min_v,
                    // The same inequality as `max_rows`, so the two never disagree at the edge.
                    ok: g.available() && limit.max_rows.is_none_or(|m| rows <= m),
                }
            })
            .collect();
        IrCheck {
            rows_per_line: rows,
            r_wire_ohm_per_cell: r_w,
            gates,
        }
    }

    /// True if every gate switches in every row.
    pub fn ok(&self) -> bool {
        self.gates.iter().all(|g| g.ok)
    }

    /// The gate with the smallest row limit, if any gate is limited.
    pub fn binding(&self) -> Option<IrLimit> {
        self.gates
            .iter()
            .filter_map(|g| g.limit.max_rows.map(|m| (m, g.limit)))
            .min_by_key(|&(m, _)| m)
            .map(|(_, l)| l)
    }

    /// The refusal of a check that failed: the array, the device and each failing gate with
    /// its numbers, then what to change; `how` names the way to go on anyway (a flag or a
    /// config key).
    pub fn refusal(&self, array: &str, device: &str, how: &str) -> String {
        format!(
            "IR drop on array '{array}' with device '{device}': {} rows share a driven line \
             segment at r_wire_ohm_per_cell = {} Ω, and the far row falls below these gates' \
             window: {}. Shorten peripherals.lanes_per_line_segment (or the subarray), lower \
             peripherals.r_wire_ohm_per_cell, or {how} to run anyway (the results then assume \
             every gate still switches)",
            self.rows_per_line,
            self.r_wire_ohm_per_cell,
            self.violations().join("; ")
        )
    }

    /// One line per gate that fails, with the numbers (empty if none fails).
    pub fn violations(&self) -> Vec<String> {
        self.gates
            .iter()
            .filter(|g| !g.ok)
            .map(|g| {
                format!(
                    "{} stays in its window for at most {} rows, but {} rows share a line \
                     (far row {:.4} V < V_min = {:.4} V)",
                    g.limit.gate,
                    g.limit.max_rows.unwrap_or(0),
                    self.rows_per_line,
                    g.far_row_v,
                    g.v_min_v
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GateLibrary, presets};

    #[test]
    fn hand_computed_limit_for_nand_on_stt_projected() {
        let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
        let g = lib.get(GateKind::Nand);
        let r_w = 1.0;
        // NAND: n = 2, so f(S) = r_w·S(S+1)/2·1.5/R_min. R_min is R_tot(z = 2) (both inputs P).
        let r_min = g.r_tot_ohm[2];
        assert!(g.r_tot_ohm.iter().all(|&r| r >= r_min));
        let budget = 1.0 - g.v_min_v / g.bias_v;
        let s = max_rows(g, r_w).max_rows.unwrap();
        let f = |s: f64| r_w * s * (s + 1.0) / 2.0 * 1.5 / r_min;
        assert!(f(s as f64) <= budget && f(s as f64 + 1.0) > budget);
        // Far-row voltage at the limit still reaches V_min; one row more falls below it.
        assert!(g.bias_v * (1.0 - far_row_drop_rel(g, s, r_w)) >= g.v_min_v);
        assert!(g.bias_v * (1.0 - far_row_drop_rel(g, s + 1, r_w)) < g.v_min_v);
    }

    #[test]
    fn limit_falls_as_wire_resistance_rises_and_vanishes_without_it() {
        for name in presets::NAMES {
            let lib = GateLibrary::derive(&presets::device(name).unwrap());
            for g in lib.gates.iter().filter(|g| g.available()) {
                assert_eq!(max_rows(g, 0.0).max_rows, None);
                let mut last = u64::MAX;
                for r_w in [0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0] {
                    let s = max_rows(g, r_w).max_rows.unwrap();
                    assert!(s <= last, "{name} {}: {s} rows at {r_w} Ω > {last}", g.kind);
                    last = s;
                }
                // Quadratic in S: 4× the resistance roughly halves the row count.
                let (a, b) = (
                    max_rows(g, 0.01).max_rows.unwrap() as f64,
                    max_rows(g, 0.04).max_rows.unwrap() as f64,
                );
                assert!((a / b - 2.0).abs() < 0.1, "{name} {}: {a} / {b}", g.kind);
            }
        }
    }

    #[test]
    fn check_refuses_rows_beyond_the_limit_and_names_the_numbers() {
        let lib = GateLibrary::derive(&presets::device("stt-projected").unwrap());
        let mut org = presets::array("cram-1k").unwrap();
        let limit = max_rows(lib.get(GateKind::Maj5), 1.0).max_rows.unwrap();
        org.params.peripherals.r_wire_ohm_per_cell = 1.0;
        org.params.peripherals.lanes_per_line_segment = 1 << 20;
        let gates = [GateKind::Maj3, GateKind::Maj5, GateKind::Maj3];
        let at = IrCheck::new(&lib, &org, limit, gates);
        assert!(at.ok(), "{:?}", at.violations());
        assert_eq!(at.gates.len(), 2);
        assert_eq!(at.binding().unwrap().gate, GateKind::Maj5);
        let beyond = IrCheck::new(&lib, &org, limit + 1, gates);
        assert!(!beyond.ok());
        let v = beyond.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("MAJ5") && v[0].contains(&format!("at most {limit} rows")));
        // A shorter line segment brings the same subarray back inside the window.
        org.params.peripherals.lanes_per_line_segment = limit as u32;
        assert!(IrCheck::new(&lib, &org, 1 << 20, gates).ok());
    }

    #[test]
    fn unbuildable_gate_allows_no_rows() {
        let lib = GateLibrary::derive(&presets::device("stt-today").unwrap());
        let copy = lib.get(GateKind::Copy);
        assert!(!copy.available());
        assert_eq!(max_rows(copy, 1.0).max_rows, Some(0));
    }
}
