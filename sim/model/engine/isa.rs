//! The CRAM subarray ISA: one decoded op stream, consumed by several processors.
//!
//! A [`Program`] is a list of [`Op`]s for one subarray. Processors implement [`OpVisitor`]
//! and are driven by [`Program::visit`] (the rrs pattern: one decoder, many processors):
//! the functional executor ([`super::exec::Subarray`]), the counter
//! ([`super::count::Counter`]) and the disassembler ([`super::trace::Tracer`]).
//!
//! Axes (docs/model.md §1.1): a *lane* is a row of the array (one SIMD lane: every logic step runs
//! in all selected lanes at once); a *column* is a bit position within a lane. Logic ops
//! address columns; memory-mode ops address one lane.

use cram_arch::GateKind;

/// Column index within a subarray.
pub type Col = u16;

/// Largest number of gate inputs (MAJ5).
pub const MAX_INPUTS: usize = 5;

/// Which lanes (rows) the logic word lines select for the following logic ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LaneMask {
    /// Every lane of the subarray.
    #[default]
    All,
    /// Lanes `lo..hi` (half-open).
    Range {
        /// First selected lane.
        lo: u32,
        /// One past the last selected lane.
        hi: u32,
    },
}

impl LaneMask {
    /// How many of a subarray's `lanes` lanes the mask selects.
    pub fn selected(self, lanes: u64) -> u64 {
        match self {
            LaneMask::All => lanes,
            LaneMask::Range { lo, hi } => u64::from(hi).min(lanes).saturating_sub(u64::from(lo)),
        }
    }
}

/// One instruction of the subarray ISA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Write `value` into column `col` of every selected lane (parallel preset write).
    Preset {
        /// Target column.
        col: Col,
        /// Value written.
        value: bool,
    },
    /// One logic step: if `preset`, first preset `out` to the gate's preset value, then apply
    /// the gate's pulse over `ins[..gate.arity()]` in every selected lane. Without the preset
    /// the pulse acts on whatever `out` holds: it can only move it away from the preset value,
    /// so `out` becomes `out | f` for preset-0 gates and `out & f` for preset-1 gates.
    Gate {
        /// Which gate.
        gate: GateKind,
        /// Input columns; only the first `gate.arity()` are used, the rest are 0.
        ins: [Col; MAX_INPUTS],
        /// Output column; never one of the inputs.
        out: Col,
        /// Whether the step includes the output preset (the normal case).
        preset: bool,
    },
    /// Select the lanes that following logic ops (presets and gates) act on.
    SetMask(LaneMask),
    /// Memory mode: read all columns of one lane into the host buffer.
    ReadRow {
        /// The lane read.
        lane: u32,
    },
    /// Memory mode: write all columns of one lane from the program's row table.
    WriteRow {
        /// The lane written.
        lane: u32,
        /// Index into [`Program::rows`].
        row: u32,
    },
}

impl Op {
    /// The input columns of a gate op (empty for other ops).
    pub fn inputs(&self) -> &[Col] {
        match self {
            Op::Gate { gate, ins, .. } => &ins[..gate.arity()],
            _ => &[],
        }
    }
}

/// A processor of the op stream. Each method receives one decoded op.
pub trait OpVisitor {
    /// [`Op::Preset`].
    fn preset(&mut self, col: Col, value: bool);
    /// [`Op::Gate`]; `ins` has exactly `gate.arity()` entries.
    fn gate(&mut self, gate: GateKind, ins: &[Col], out: Col, preset: bool);
    /// [`Op::SetMask`].
    fn set_mask(&mut self, mask: LaneMask);
    /// [`Op::ReadRow`].
    fn read_row(&mut self, lane: u32);
    /// [`Op::WriteRow`]; `bits` holds one bit per column, packed little-endian in `u64`s.
    fn write_row(&mut self, lane: u32, bits: &[u64]);
}

/// A validated op stream for one subarray, with names for its columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    ops: Vec<Op>,
    rows: Vec<Vec<u64>>,
    col_names: Vec<String>,
    max_lane: Option<u32>,
}

/// Why an op stream was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// A column outside the program's declared columns.
    #[error("op {index} ({op:?}) uses column {col}, but the program has {cols} columns")]
    ColumnOutOfRange {
        /// Position in the stream.
        index: usize,
        /// The op.
        op: Op,
        /// The column.
        col: Col,
        /// Declared column count.
        cols: usize,
    },
    /// A gate whose output is also an input, or that repeats an input.
    #[error("op {index} ({op:?}): a gate's output and inputs must be distinct cells")]
    SharedCell {
        /// Position in the stream.
        index: usize,
        /// The op.
        op: Op,
    },
    /// A row-table index out of range.
    #[error("op {index} writes row {row}, but the program has {rows} rows of data")]
    RowOutOfRange {
        /// Position in the stream.
        index: usize,
        /// Row index.
        row: u32,
        /// Table size.
        rows: usize,
    },
    /// An empty or inverted lane range.
    #[error("op {index}: lane mask {lo}..{hi} is empty")]
    EmptyMask {
        /// Position in the stream.
        index: usize,
        /// First lane.
        lo: u32,
        /// End lane.
        hi: u32,
    },
    /// The subarray is too small for the program.
    #[error(
        "program needs {need_cols} columns and lane {need_lane}, subarray has {cols} columns × {lanes} lanes"
    )]
    DoesNotFit {
        /// Columns the program uses.
        need_cols: usize,
        /// Highest lane the program addresses explicitly.
        need_lane: u32,
        /// Subarray columns.
        cols: usize,
        /// Subarray lanes.
        lanes: usize,
    },
}

impl Program {
    /// Checks an op stream: columns in range, gate cells distinct, row indices valid, masks
    /// non-empty. `col_names` declares the columns (its length is the column count).
    pub fn new(
        ops: Vec<Op>,
        rows: Vec<Vec<u64>>,
        col_names: Vec<String>,
    ) -> Result<Program, ProgramError> {
        let cols = col_names.len();
        let mut max_lane: Option<u32> = None;
        for (index, op) in ops.iter().enumerate() {
            let check = |col: Col| {
                if usize::from(col) < cols {
                    Ok(())
                } else {
                    Err(ProgramError::ColumnOutOfRange {
                        index,
                        op: *op,
                        col,
                        cols,
                    })
                }
            };
            match *op {
                Op::Preset { col, .. } => check(col)?,
                Op::Gate { out, .. } => {
                    check(out)?;
                    let ins = op.inputs();
                    for (i, &c) in ins.iter().enumerate() {
                        check(c)?;
                        if c == out || ins[..i].contains(&c) {
                            return Err(ProgramError::SharedCell { index, op: *op });
                        }
                    }
                }
                Op::SetMask(LaneMask::Range { lo, hi }) => {
                    if lo >= hi {
                        return Err(ProgramError::EmptyMask { index, lo, hi });
                    }
                    max_lane = max_lane.max(Some(hi - 1));
                }
                Op::SetMask(LaneMask::All) => {}
                Op::ReadRow { lane } => max_lane = max_lane.max(Some(lane)),
                Op::WriteRow { lane, row } => {
                    if row as usize >= rows.len() {
                        return Err(ProgramError::RowOutOfRange {
                            index,
                            row,
                            rows: rows.len(),
                        });
                    }
                    max_lane = max_lane.max(Some(lane));
                }
            }
        }
        Ok(Program {
            ops,
            rows,
            col_names,
            max_lane,
        })
    }

    /// A program with other ops over the same columns and row data (validated again).
    pub fn with_ops(&self, ops: Vec<Op>) -> Result<Program, ProgramError> {
        Program::new(ops, self.rows.clone(), self.col_names.clone())
    }

    /// The ops.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Row data referenced by [`Op::WriteRow`].
    pub fn rows(&self) -> &[Vec<u64>] {
        &self.rows
    }

    /// Whether any op addresses individual lanes (a lane-range mask or a row access). Only
    /// programs that do not can run on several subarrays packed into one executor block.
    pub fn addresses_lanes(&self) -> bool {
        self.max_lane.is_some()
    }

    /// Number of columns the program uses.
    pub fn cols(&self) -> usize {
        self.col_names.len()
    }

    /// Human-readable name of a column (`a[3]`, `t12`, …).
    pub fn col_name(&self, col: Col) -> &str {
        &self.col_names[usize::from(col)]
    }

    /// Checks the program fits a subarray of `lanes` × `cols`.
    pub fn check_fits(&self, lanes: usize, cols: usize) -> Result<(), ProgramError> {
        let lane_ok = self.max_lane.is_none_or(|l| (l as usize) < lanes);
        if self.cols() <= cols && lane_ok {
            Ok(())
        } else {
            Err(ProgramError::DoesNotFit {
                need_cols: self.cols(),
                need_lane: self.max_lane.unwrap_or(0),
                cols,
                lanes,
            })
        }
    }

    /// Drives a processor through the op stream in order.
    #[inline]
    pub fn visit<V: OpVisitor + ?Sized>(&self, v: &mut V) {
        self.visit_range(0..self.ops.len(), v);
    }

    /// Drives a processor through ops `range` of the stream (one segment of a program
    /// whose operands are reloaded between segments).
    #[inline]
    pub fn visit_range<V: OpVisitor + ?Sized>(&self, range: std::ops::Range<usize>, v: &mut V) {
        for op in &self.ops[range] {
            match *op {
                Op::Preset { col, value } => v.preset(col, value),
                Op::Gate {
                    gate,
                    ref ins,
                    out,
                    preset,
                } => v.gate(gate, &ins[..gate.arity()], out, preset),
                Op::SetMask(mask) => v.set_mask(mask),
                Op::ReadRow { lane } => v.read_row(lane),
                Op::WriteRow { lane, row } => v.write_row(lane, &self.rows[row as usize]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn op_is_small() {
        assert!(
            std::mem::size_of::<Op>() <= 16,
            "{}",
            std::mem::size_of::<Op>()
        );
    }

    #[test]
    fn bad_programs_are_refused() {
        let g = |ins: [Col; 2], out| Op::Gate {
            gate: GateKind::Nand,
            ins: [ins[0], ins[1], 0, 0, 0],
            out,
            preset: true,
        };
        assert!(matches!(
            Program::new(vec![g([0, 1], 1)], vec![], names(3)),
            Err(ProgramError::SharedCell { .. })
        ));
        assert!(matches!(
            Program::new(vec![g([0, 0], 2)], vec![], names(3)),
            Err(ProgramError::SharedCell { .. })
        ));
        assert!(matches!(
            Program::new(vec![g([0, 1], 3)], vec![], names(3)),
            Err(ProgramError::ColumnOutOfRange { .. })
        ));
        assert!(matches!(
            Program::new(vec![Op::WriteRow { lane: 0, row: 0 }], vec![], names(1)),
            Err(ProgramError::RowOutOfRange { .. })
        ));
        assert!(matches!(
            Program::new(
                vec![Op::SetMask(LaneMask::Range { lo: 4, hi: 4 })],
                vec![],
                names(1)
            ),
            Err(ProgramError::EmptyMask { .. })
        ));
        let p = Program::new(
            vec![g([0, 1], 2), Op::ReadRow { lane: 99 }],
            vec![],
            names(3),
        )
        .unwrap();
        assert!(p.check_fits(100, 3).is_ok());
        assert!(p.check_fits(99, 3).is_err() && p.check_fits(100, 2).is_err());
    }
}
