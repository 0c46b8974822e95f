//! `cram-workloads`: the software side of cramulator — integer number formats, integer
//! tensors and the integer reference arithmetic that every CRAM kernel is checked against.
//!
//! This crate knows nothing about hardware (ARCHITECTURE.md invariant): it never depends on
//! `cram-arch` or on the simulator.

pub mod digits;
pub mod error;
pub mod int;
pub mod load;
pub mod net;
pub mod onnx;
pub mod tensor;
pub mod weights;
pub mod zoo;

pub use error::WorkloadError;
pub use int::{IntFormat, Overflow};
pub use net::{Bits, Layer, LayerStats, Network, Op, Shape, Window};
pub use tensor::IntTensor;
