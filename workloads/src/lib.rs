//! `cram-workloads`: the software side of cramulator — integer number formats, integer
//! tensors and the integer reference arithmetic that every CRAM kernel is checked against.
//!
//! This crate knows nothing about hardware (ARCHITECTURE.md invariant): it never depends on
//! `cram-arch` or on the simulator.

pub mod error;
pub mod int;
pub mod tensor;

pub use error::WorkloadError;
pub use int::{IntFormat, Overflow};
pub use tensor::IntTensor;
