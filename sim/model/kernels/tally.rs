//! What a generated program costs, without its ops: gate steps by kind and column presets.
//!
//! A program the [`super::Builder`] emits has only gate steps (each with its output preset)
//! and column presets, one lane mask (all lanes) and no row access, so its counts
//! ([`crate::model::engine::OpCounts`]) and its energy actions ([`crate::model::energy::account`], pulses
//! aside) are linear in these few numbers. The mapper's analytical mode computes a
//! [`Tally`] in closed form instead of generating the program (docs/model.md §1.5: analytical ==
//! functional); a test checks both against the walkers over generated programs.

use cram_arch::{GateKind, Lines};

use crate::model::energy::Actions;
use crate::model::engine::OpCounts;
use crate::model::engine::isa::{Op, Program};

/// Gate steps by kind and column presets by value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Gate steps (each with its output preset) by [`GateKind::index`].
    pub gates: [u64; GateKind::COUNT],
    /// Stand-alone column presets to 0 and to 1.
    pub presets: [u64; 2],
}

impl Tally {
    /// The tally of a builder-made program (gate steps all preset their output).
    pub fn of(program: &Program) -> Tally {
        Tally::of_ops(program.ops())
    }

    /// The tally of builder ops (gate steps and column presets only).
    pub fn of_ops(ops: &[Op]) -> Tally {
        let mut t = Tally::default();
        for op in ops {
            match *op {
                Op::Gate { gate, .. } => t.gates[gate.index()] += 1,
                Op::Preset { value, .. } => t.presets[usize::from(value)] += 1,
                _ => unreachable!("builder programs have gates and presets only"),
            }
        }
        t
    }

    /// Adds `n` times `other`.
    pub fn add(&mut self, other: &Tally, n: u64) {
        for (a, b) in self.gates.iter_mut().zip(&other.gates) {
            *a += b * n;
        }
        for (a, b) in self.presets.iter_mut().zip(&other.presets) {
            *a += b * n;
        }
    }

    /// What this tally adds to `earlier`, a tally it grew from (every count only grows).
    pub fn minus(&self, earlier: &Tally) -> Tally {
        let mut d = *self;
        for (a, b) in d.gates.iter_mut().zip(&earlier.gates) {
            *a -= b;
        }
        for (a, b) in d.presets.iter_mut().zip(&earlier.presets) {
            *a -= b;
        }
        d
    }

    /// Gate steps.
    pub fn gate_steps(&self) -> u64 {
        self.gates.iter().sum()
    }

    /// Ops (gate steps and column presets).
    pub fn ops(&self) -> u64 {
        self.gate_steps() + self.presets[0] + self.presets[1]
    }

    /// The counts of the program on `lanes` lanes, as [`crate::model::engine::Counter`] gives them
    /// (`Counter::count(..).ops()`: without the hottest cell, which needs the ops).
    pub fn counts(&self, lanes: u64) -> OpCounts {
        let steps = self.gate_steps();
        OpCounts {
            gate_steps: steps,
            by_gate: self.gates,
            gate_presets: steps,
            column_presets: self.presets[0] + self.presets[1],
            masks: 0,
            row_reads: 0,
            row_writes: 0,
            lane_gate_evals: steps * lanes,
        }
    }

    /// The actions [`crate::model::energy::account`] gives the program on `lanes` lanes (pulses'
    /// zero split aside) of a subarray with bit-select lines `lines`: the logic word lines
    /// rise once, then every op selects all lanes, charging the segments that hold them.
    pub fn actions(&self, lanes: u64, lines: Lines) -> Actions {
        let mut a = Actions::default();
        let sel = lanes as f64;
        let cells = lines.cells(0, lanes) as f64;
        if self.ops() > 0 {
            a.wll_lanes = sel;
        }
        for (v, &n) in self.presets.iter().enumerate() {
            a.preset_cells[v] += n as f64 * sel;
            a.bsl_write_cells += n as f64 * cells;
            a.decodes += n as f64;
        }
        for g in GateKind::ALL {
            let n = self.gates[g.index()] as f64;
            if n == 0.0 {
                continue;
            }
            a.preset_cells[usize::from(g.preset())] += n * sel;
            a.bsl_write_cells += n * cells;
            a.bsl_logic_cells[g.index()] += n * (g.arity() + 1) as f64 * cells;
            a.gate_lanes[g.index()] += n * sel;
            a.decodes += n;
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::engine::Counter;
    use crate::model::kernels::{GateSet, KernelKind, KernelSpec};

    /// On real kernels the tally's counts and actions equal the walkers'.
    #[test]
    fn tally_matches_the_walkers() {
        for set in GateSet::ALL {
            for kind in [KernelKind::Add, KernelKind::Smul, KernelKind::Popcount] {
                let k = KernelSpec {
                    kind,
                    bits: 6,
                    bits_b: 5,
                    constant: 0,
                    gate_set: set,
                }
                .build();
                let t = Tally::of(&k.program);
                let want = Counter::count(&k.program, 77).ops();
                assert_eq!(t.counts(77), want);
                for lines in [
                    Lines::new(1024, 8),
                    Lines::new(100, 64),
                    Lines::new(77, 1 << 20),
                ] {
                    let acc = crate::model::energy::account(
                        &k.program,
                        77,
                        k.program.cols() as u64,
                        lines,
                    );
                    assert_eq!(
                        format!("{:?}", t.actions(77, lines)),
                        format!("{:?}", acc.actions)
                    );
                }
            }
        }
    }
}
