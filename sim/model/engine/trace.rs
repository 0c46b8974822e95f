//! Disassembler: prints an op stream readably, one numbered line per op, with column names.
//!
//! ```text
//!      0  NAND     t0      <- a[0], b[0]
//!      1  PRESET   zero    <- 0
//! ```
//! A gate line presets its output first unless it is marked `(no preset)`.

use std::fmt::Write as _;

use cram_arch::GateKind;

use super::isa::{Col, LaneMask, OpVisitor, Program};

/// Writes the disassembly of a program into a string.
pub struct Tracer<'p> {
    program: &'p Program,
    out: String,
    index: usize,
}

impl<'p> Tracer<'p> {
    /// Disassembles a whole program.
    pub fn disassemble(program: &'p Program) -> String {
        let mut t = Tracer {
            program,
            out: String::new(),
            index: 0,
        };
        program.visit(&mut t);
        t.out
    }

    fn line(&mut self, mnemonic: &str, rest: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.out, "{:>6}  {mnemonic:<8} {rest}", self.index);
        self.index += 1;
    }

    fn name(&self, col: Col) -> &'p str {
        self.program.col_name(col)
    }
}

impl OpVisitor for Tracer<'_> {
    fn preset(&mut self, col: Col, value: bool) {
        let name = self.name(col);
        self.line("PRESET", format_args!("{name:<7} <- {}", u8::from(value)));
    }

    fn gate(&mut self, gate: GateKind, ins: &[Col], out: Col, preset: bool) {
        let args: Vec<&str> = ins.iter().map(|&c| self.name(c)).collect();
        let (out, args) = (self.name(out), args.join(", "));
        let note = if preset { "" } else { "   (no preset)" };
        self.line(gate.mnemonic(), format_args!("{out:<7} <- {args}{note}"));
    }

    fn set_mask(&mut self, mask: LaneMask) {
        match mask {
            LaneMask::All => self.line("MASK", format_args!("all lanes")),
            LaneMask::Range { lo, hi } => self.line("MASK", format_args!("lanes {lo}..{hi}")),
        }
    }

    fn read_row(&mut self, lane: u32) {
        self.line("READ", format_args!("row {lane}"));
    }

    fn write_row(&mut self, lane: u32, bits: &[u64]) {
        let hex: Vec<String> = bits.iter().rev().map(|w| format!("{w:016x}")).collect();
        self.line("WRITE", format_args!("row {lane} <- 0x{}", hex.join("_")));
    }
}
