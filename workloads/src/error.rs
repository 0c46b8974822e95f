//! Typed errors of the `cram-workloads` crate.

/// Everything that can go wrong while building workloads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// A bit-width outside 1..=64.
    #[error("bit-width {bits} is not allowed: integer formats have 1..=64 bits")]
    BadBits {
        /// The width asked for.
        bits: u32,
    },
    /// A value that does not fit the tensor's format.
    #[error("value {value} at index {index} does not fit {format} (range {min}..={max})")]
    OutOfRange {
        /// The value.
        value: i64,
        /// Flat index of the value.
        index: usize,
        /// Format name, e.g. `i8`.
        format: String,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// The caller asked to stop (e.g. Ctrl-C during training).
    #[error("stopped before finishing")]
    Stopped,
    /// A network that is not well formed (names the network, layer and why).
    #[error("{0}")]
    Network(String),
    /// A model or data file that cannot be read or used.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What is wrong, with the part of the file concerned.
        why: String,
    },
    /// Shapes that do not match the operation.
    #[error("shape mismatch: {0}")]
    Shape(String),
}
