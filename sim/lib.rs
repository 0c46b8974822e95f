//! cramulator: a bit-accurate, cycle-level simulator of spintronic computational RAM (CRAM).
//! Timing (`timing`) and energy (`energy`) are computed from the same op stream the executor runs.
//!
//! Bird's-eye view (ARCHITECTURE.md has the full map): `cram-arch` derives the gate library
//! from MTJ device physics; [`model::kernels`] generates micro-programs for a gate set; [`model::engine`]
//! decodes one op stream for several processors — the functional executor on `u64` columns,
//! the counter and the disassembler; [`cli`] is the command line.

pub mod cli;
pub mod error;
pub mod experiment;
pub mod io;
pub mod model;
pub mod records;
pub mod units;

pub use cram_arch as arch;
pub use cram_workloads as workloads;
