//! cramulator: a bit-accurate, cycle-level simulator of spintronic computational RAM (CRAM).
//! Timing (`timing`) and energy (`energy`) are computed from the same op stream the executor runs.
//!
//! Bird's-eye view (ARCHITECTURE.md has the full map): `cram-arch` derives the gate library
//! from MTJ device physics; [`kernels`] generates micro-programs for a gate set; [`engine`]
//! decodes one op stream for several processors — the functional executor on `u64` columns,
//! the counter and the disassembler; [`cli`] is the command line.

pub mod baseline;
pub mod bits;
pub mod calibrate;
pub mod cli;
pub mod config;
pub mod energy;
pub mod engine;
pub mod error;
pub mod guard;
pub mod kernels;
pub mod lock;
pub mod map;
pub mod mapping;
pub mod memo;
pub mod models;
pub mod plot;
pub mod records;
pub mod run;
pub mod simulate;
pub mod sweep;
pub mod timing;
pub mod validate;

pub use cram_arch as arch;
pub use cram_workloads as workloads;
