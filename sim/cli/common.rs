//! Shared plumbing of the commands: outcomes, printing, and the argument groups.

use crate::error::Error;
use crate::model::kernels::GateSet;
use clap::ValueEnum;
use std::io::Write as _;

/// Gate set on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateSetArg {
    /// Majority-based (MAJ3/MAJ5 full adder).
    Maj,
    /// NAND-based (NOT, NAND, AND only).
    Nand,
}

impl From<GateSetArg> for GateSet {
    fn from(g: GateSetArg) -> Self {
        match g {
            GateSetArg::Maj => GateSet::Maj,
            GateSetArg::Nand => GateSet::Nand,
        }
    }
}

/// What a command ended with when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out.
    Success,
    /// The command ran but a check failed (e.g. a lane mismatched).
    CheckFailed,
    /// A sweep's results are incomplete (points missing or repeated; exit 3).
    Incomplete,
    /// Stopped by SIGINT with finished work kept (exit 130).
    Interrupted,
}

/// Writes `text` to stdout; a closed pipe is not an error.
pub fn emit(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// Execution mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Execute every lane bit by bit and check it; data-dependent energy.
    Functional,
    /// Count the op stream without values: counts, cycles, mean and worst energy.
    Analytical,
}
