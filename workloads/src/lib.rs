//! `cram-workloads`: the software side of cramulator — integer number formats, integer
//! tensors and the integer reference arithmetic that every CRAM kernel is checked against.
//!
//! This crate knows nothing about hardware (ARCHITECTURE.md invariant): it never depends on
//! `cram-arch` or on the simulator.

pub mod compress;
pub mod digest;
pub mod digits;
pub mod error;
pub mod exec;
pub mod golden;
pub mod ibert;
pub mod int;
pub mod load;
pub mod model;
pub mod net;
pub mod npy;
pub mod onnx;
pub mod prepare;
pub mod prune;
pub mod quant;
mod simd;
pub mod tensor;
pub mod train;
pub mod train_tf;
pub mod weights;
pub mod zoo;

pub use error::WorkloadError;
pub use int::{IntFormat, Overflow};
pub use net::{Bits, Layer, LayerStats, Network, Op, Shape, Window};
pub use tensor::IntTensor;
