//! The model: gate programs, the executor, timing, energy, mapping and the baseline.
//!
//! This layer does no I/O: no file system, no stdout, no clap and no process globals.
//! Cancellation and limits come in as options ([`limits`]). Everything above it (experiment,
//! records, io, cli) may use it; it uses none of them.

pub mod baseline;
pub mod bits;
pub mod energy;
pub mod engine;
pub mod kernels;
pub mod limits;
pub mod map;
pub mod memo;
pub mod reliability;
pub mod timing;
