//! Op counter: the analytical view of an op stream (no values), used for step and gate
//! counts and lane-gate evaluation totals. Issue 3 grows it into the full action-count
//! accountant; the functional executor and this counter consume the same stream.

use std::collections::BTreeMap;

use cram_arch::GateKind;
use serde::Serialize;

use super::isa::{Col, LaneMask, OpVisitor, Program};

/// What a program does, counted op by op.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Logic steps (one gate pulse each, with its preset if it has one).
    pub gate_steps: u64,
    /// Gate steps by gate kind.
    pub by_gate: BTreeMap<GateKind, u64>,
    /// Output presets folded into gate steps.
    pub gate_presets: u64,
    /// Stand-alone column presets ([`super::isa::Op::Preset`]).
    pub column_presets: u64,
    /// Memory-mode row reads.
    pub row_reads: u64,
    /// Memory-mode row writes.
    pub row_writes: u64,
    /// Σ over gate steps of the number of selected lanes.
    pub lane_gate_evals: u64,
}

/// Counts ops for a subarray of a given number of lanes.
#[derive(Debug, Clone)]
pub struct Counter {
    lanes: u64,
    selected: u64,
    /// The running totals.
    pub counts: Counts,
}

impl Counter {
    /// A counter for a subarray with `lanes` lanes, all selected.
    pub fn new(lanes: usize) -> Counter {
        Counter {
            lanes: lanes as u64,
            selected: lanes as u64,
            counts: Counts::default(),
        }
    }

    /// Counts a whole program.
    pub fn count(program: &Program, lanes: usize) -> Counts {
        let mut c = Counter::new(lanes);
        program.visit(&mut c);
        c.counts
    }
}

impl OpVisitor for Counter {
    fn preset(&mut self, _col: Col, _value: bool) {
        self.counts.column_presets += 1;
    }

    fn gate(&mut self, gate: GateKind, _ins: &[Col], _out: Col, preset: bool) {
        let c = &mut self.counts;
        c.gate_steps += 1;
        *c.by_gate.entry(gate).or_default() += 1;
        c.gate_presets += u64::from(preset);
        c.lane_gate_evals += self.selected;
    }

    fn set_mask(&mut self, mask: LaneMask) {
        self.selected = match mask {
            LaneMask::All => self.lanes,
            LaneMask::Range { lo, hi } => u64::from(hi.min(self.lanes as u32).saturating_sub(lo)),
        };
    }

    fn read_row(&mut self, _lane: u32) {
        self.counts.row_reads += 1;
    }

    fn write_row(&mut self, _lane: u32, _bits: &[u64]) {
        self.counts.row_writes += 1;
    }
}
