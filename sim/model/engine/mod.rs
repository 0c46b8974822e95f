//! The CRAM engine: the subarray ISA and the processors that consume it.
//!
//! * [`isa`] — ops, programs, the [`isa::OpVisitor`] trait;
//! * [`exec`] — functional executor on `u64` columns;
//! * [`count`] — op and lane-gate counts without executing values;
//! * [`trace`] — disassembler.

pub mod count;
pub mod exec;
pub mod isa;
pub mod trace;

pub use count::{CellWrites, Counter, Counts, OpCounts};
pub use exec::{Simd, Subarray};
pub use isa::{Col, LaneMask, Op, OpVisitor, Program, ProgramError};
pub use trace::Tracer;
