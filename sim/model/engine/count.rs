//! Op counter: the analytical view of an op stream (no values), used for step and gate
//! counts, lane-gate evaluation totals and per-cell write counts (endurance). Issue 3 grows
//! it into the full action-count accountant; the functional executor and this counter
//! consume the same stream.

use std::collections::BTreeMap;

use cram_arch::GateKind;

use super::isa::{Col, LaneMask, OpVisitor, Program};

/// What a program does, counted op by op.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Logic steps (one gate pulse each, with its preset if it has one).
    pub gate_steps: u64,
    /// Gate steps by gate kind.
    pub by_gate: BTreeMap<GateKind, u64>,
    /// Output presets folded into gate steps.
    pub gate_presets: u64,
    /// Stand-alone column presets ([`super::isa::Op::Preset`]).
    pub column_presets: u64,
    /// Lane-mask changes.
    pub masks: u64,
    /// Memory-mode row reads.
    pub row_reads: u64,
    /// Memory-mode row writes.
    pub row_writes: u64,
    /// Σ over gate steps of the number of selected lanes.
    pub lane_gate_evals: u64,
    /// The most-written cell (its column), if any cell is written.
    pub hottest_col: Option<Col>,
    /// Writes to the most-written cell per run of the program.
    pub hottest: CellWrites,
}

/// [`Counts`] without the hottest cell, and with the gate steps by kind in a table
/// indexed by [`GateKind::index`] instead of a map: what a stream's cost keeps
/// (`model::map`), a plain value that a sweep's hundred thousand streams do not each
/// allocate, copy and free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// As in [`Counts`].
    pub gate_steps: u64,
    /// Gate steps by gate kind ([`GateKind::index`]).
    pub by_gate: [u64; GateKind::COUNT],
    /// As in [`Counts`].
    pub gate_presets: u64,
    /// As in [`Counts`].
    pub column_presets: u64,
    /// As in [`Counts`].
    pub masks: u64,
    /// As in [`Counts`].
    pub row_reads: u64,
    /// As in [`Counts`].
    pub row_writes: u64,
    /// As in [`Counts`].
    pub lane_gate_evals: u64,
}

impl Counts {
    /// These counts but the hottest cell, as an [`OpCounts`].
    pub fn ops(&self) -> OpCounts {
        let mut by_gate = [0; GateKind::COUNT];
        for (g, &n) in &self.by_gate {
            by_gate[g.index()] = n;
        }
        OpCounts {
            gate_steps: self.gate_steps,
            by_gate,
            gate_presets: self.gate_presets,
            column_presets: self.column_presets,
            masks: self.masks,
            row_reads: self.row_reads,
            row_writes: self.row_writes,
            lane_gate_evals: self.lane_gate_evals,
        }
    }
}

/// Write events on one cell during one run (endurance, docs/model.md §1.7; each event is one
/// switching attempt, as the PIM endurance simulator counts them, docs/references.md L-A7 [C]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CellWrites {
    /// Preset writes (stand-alone or folded into a gate step) and memory-mode row writes.
    pub presets: u64,
    /// Logic pulses that target the cell as a gate output.
    pub pulses: u64,
}

impl CellWrites {
    /// All write events.
    pub fn total(&self) -> u64 {
        self.presets + self.pulses
    }
}

/// Counts ops for a subarray of a given number of lanes.
#[derive(Debug, Clone)]
pub struct Counter {
    lanes: u64,
    selected: u64,
    counts: Counts,
    /// Writes per column. Every lane of a column sees the same writes unless a lane mask or
    /// a row write singles lanes out; then this is an upper bound for any lane.
    col_writes: Vec<CellWrites>,
}

impl Counter {
    /// A counter for a subarray with `lanes` lanes (all selected) and `cols` columns.
    pub fn new(lanes: usize, cols: usize) -> Counter {
        Counter {
            lanes: lanes as u64,
            selected: lanes as u64,
            counts: Counts::default(),
            col_writes: vec![CellWrites::default(); cols],
        }
    }

    /// Counts a whole program.
    pub fn count(program: &Program, lanes: usize) -> Counts {
        let mut c = Counter::new(lanes, program.cols());
        program.visit(&mut c);
        c.finish()
    }

    /// The totals, with the hottest cell filled in.
    pub fn finish(mut self) -> Counts {
        // The first column with the most writes, so the answer is deterministic.
        let hottest = self
            .col_writes
            .iter()
            .enumerate()
            .filter(|(_, w)| w.total() > 0)
            .min_by_key(|&(i, w)| (std::cmp::Reverse(w.total()), i));
        if let Some((col, &writes)) = hottest {
            self.counts.hottest_col = Some(col as Col);
            self.counts.hottest = writes;
        }
        self.counts
    }

    fn writes(&mut self, col: Col) -> &mut CellWrites {
        &mut self.col_writes[usize::from(col)]
    }
}

impl OpVisitor for Counter {
    fn preset(&mut self, col: Col, _value: bool) {
        self.counts.column_presets += 1;
        self.writes(col).presets += 1;
    }

    fn gate(&mut self, gate: GateKind, _ins: &[Col], out: Col, preset: bool) {
        let c = &mut self.counts;
        c.gate_steps += 1;
        *c.by_gate.entry(gate).or_default() += 1;
        c.gate_presets += u64::from(preset);
        c.lane_gate_evals += self.selected;
        let w = self.writes(out);
        w.presets += u64::from(preset);
        w.pulses += 1;
    }

    fn set_mask(&mut self, mask: LaneMask) {
        self.counts.masks += 1;
        self.selected = mask.selected(self.lanes);
    }

    fn read_row(&mut self, _lane: u32) {
        self.counts.row_reads += 1;
    }

    fn write_row(&mut self, _lane: u32, _bits: &[u64]) {
        self.counts.row_writes += 1;
        // A row write writes every cell of its lane.
        for w in &mut self.col_writes {
            w.presets += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::engine::isa::Op;

    #[test]
    fn hottest_cell_counts_presets_and_pulses() {
        let g = |out: Col, preset: bool| Op::Gate {
            gate: GateKind::Nand,
            ins: [0, 1, 0, 0, 0],
            out,
            preset,
        };
        let ops = vec![
            Op::Preset {
                col: 2,
                value: false,
            },
            g(2, false),
            g(3, true),
            g(3, true),
            Op::SetMask(LaneMask::Range { lo: 0, hi: 10 }),
            g(2, true),
        ];
        let names = (0..4).map(|i| format!("c{i}")).collect();
        let p = Program::new(ops, vec![], names).unwrap();
        let c = Counter::count(&p, 100);
        // Column 3: 2 presets + 2 pulses; column 2: 1 + 1 + (1 + 1 under the mask) — a tie at
        // 4, broken toward the lower column.
        assert_eq!(c.hottest_col, Some(2));
        assert_eq!(
            c.hottest,
            CellWrites {
                presets: 2,
                pulses: 2
            }
        );
        assert_eq!(c.lane_gate_evals, 3 * 100 + 10);
    }
}
