//! The one error type of the library, and the exit codes the binary maps it to.
//!
//! A leaf module: every layer returns [`Error`], and it depends on no layer. Exit codes: 0
//! success; 1 a check failed (the run finished and a result differed from its reference);
//! 2 any [`Error`] but [`Error::Interrupted`]; 3 an incomplete sweep (`sweep merge`: points
//! missing or repeated); 130 [`Error::Interrupted`].

use std::fmt;

/// Exit code for a failed check.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a refused input or work that could not be done.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for an incomplete result: `sweep merge` found points missing or repeated.
pub const EXIT_INCOMPLETE: u8 = 3;
/// Exit status after SIGINT (128 + 2, the shell convention).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Why a library call did not return its result.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mistake in what the caller asked for; the message names the flag, key or file, the
    /// value and what is allowed.
    #[error("{0}")]
    Usage(String),
    /// A device, array or baseline preset (or its parameters) was refused. (Its message
    /// already holds any I/O cause; it is not chained again, or `{:#}` would print it twice.)
    #[error("{0}")]
    Arch(cram_arch::ArchError),
    /// A network, model file or compression setting was refused.
    #[error("{0}")]
    Workload(cram_workloads::WorkloadError),
    /// The mapper cannot run a layer of a network.
    #[error("network '{network}', layer '{layer}' ({op}): {why}")]
    Layer {
        /// The network.
        network: String,
        /// The layer's name.
        layer: String,
        /// The layer's op.
        op: &'static str,
        /// Why. (Part of the message; not named `source`, which would print it twice.)
        why: Box<MapError>,
    },
    /// The work would hold more memory than the limit in force.
    #[error(transparent)]
    Memory(#[from] MemoryRefusal),
    /// Stopped by the caller's stop flag (SIGINT in the binary) before finishing. Nothing
    /// half-done was returned; work already written (a sweep's finished points) is kept.
    #[error("interrupted by SIGINT")]
    Interrupted,
    /// Writing or reading an output failed. (Not a `source`: the message already holds it,
    /// and `{:#}` would print it twice.)
    #[error("writing output: {0}")]
    Io(std::io::Error),
}

impl Error {
    /// A usage error with this message.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }

    /// A file that could not be read or written: its path and why.
    pub fn file(path: &std::path::Path, why: impl fmt::Display) -> Error {
        Error::Usage(format!("'{}': {why}", path.display()))
    }
}

impl From<cram_arch::ArchError> for Error {
    fn from(e: cram_arch::ArchError) -> Error {
        Error::Arch(e)
    }
}

impl From<cram_workloads::WorkloadError> for Error {
    /// The workloads' own stop (training asked to stop) is [`Error::Interrupted`].
    fn from(e: cram_workloads::WorkloadError) -> Error {
        match e {
            cram_workloads::WorkloadError::Stopped => Error::Interrupted,
            e => Error::Workload(e),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(e)
    }
}

/// A refusal for memory: what was asked, the estimate by part, and the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRefusal {
    /// What would have run.
    pub what: String,
    /// The estimate's non-zero parts, by name, bytes.
    pub parts: Vec<(&'static str, u64)>,
    /// The estimate's total, bytes.
    pub total_bytes: u64,
    /// The limit in force, bytes.
    pub limit_bytes: u64,
    /// Whether the user set the limit (`--max-memory`) or it is the default.
    pub given: bool,
    /// What to change.
    pub advice: &'static str,
}

impl fmt::Display for MemoryRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(n, b)| format!("{n} {}", crate::units::bytes(*b)))
            .collect();
        write!(
            f,
            "{}: would hold about {} ({}), above --max-memory {} ({}); {}",
            self.what,
            crate::units::bytes(self.total_bytes),
            parts.join(", "),
            crate::units::bytes(self.limit_bytes),
            if self.given {
                "as given"
            } else {
                "the default: half of physical memory"
            },
            self.advice
        )
    }
}

impl std::error::Error for MemoryRefusal {}

/// Why the mapper cannot build or run a layer's programs, or why a check of its own
/// consistency failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// A bit-heap sum wider than the heaps.
    #[error("a sum in [{lo}, {hi}] needs {width} bits, more than the {max}-bit bit heaps")]
    SumTooWide {
        /// Lowest value of the sum.
        lo: i128,
        /// Highest value of the sum.
        hi: i128,
        /// Bits it needs.
        width: u32,
        /// The heaps' width.
        max: u32,
    },
    /// A requantization whose rounded product no chunking fits into the heaps.
    #[error(
        "requantizing an accumulator in [{lo}, {hi}] by a {m_bits}-bit multiplier and shift \
         {shift}: the rounded product needs {width} bits, more than the {max}-bit bit heaps \
         (the layer's output scale is far below its input's times its weights')"
    )]
    RequantTooWide {
        /// Lowest accumulator value.
        lo: i128,
        /// Highest accumulator value.
        hi: i128,
        /// Multiplier bits.
        m_bits: u32,
        /// Right shift.
        shift: u32,
        /// Bits the rounded product needs.
        width: u32,
        /// The heaps' width.
        max: u32,
    },
    /// Channels whose requantization shifts differ too much to share one multiplier.
    #[error(
        "channels {first}..={last} need a common requantization multiplier of {bits} bits \
         (their shifts differ by more than 32), more than the 63 a stored operand holds; map \
         this layer with mapping.strategy = \"const\""
    )]
    CommonMultiplier {
        /// First channel of the set.
        first: usize,
        /// Last channel of the set.
        last: usize,
        /// Bits the multiplier needs.
        bits: u32,
    },
    /// A resident layout's weights take more than the subarray's resident columns.
    #[error(
        "its resident weights and constants need {needed} columns per lane; at most {budget} \
         (half of cols_per_subarray) may be resident: split the reduction into more slices \
         (mapping.slices) or reload the weights (mapping.residency = \"reload\")"
    )]
    ResidentColumns {
        /// Resident columns per lane.
        needed: usize,
        /// The resident share of a subarray's columns.
        budget: usize,
    },
    /// The mapping pins leave no layout for a weighted layer.
    #[error(
        "no layout fits the pins ({pins}): const runs one slice with a program per channel \
         set; drop mapping.slices or mapping.programs, or set mapping.strategy = \"stored\""
    )]
    NoLayout {
        /// The pins, as reports show them.
        pins: String,
    },
    /// A program wider than the subarray even one input at a time.
    #[error(
        "needs {needed} columns even one input at a time; the subarray has {have} \
         (cols_per_subarray)"
    )]
    Columns {
        /// Columns the program needs.
        needed: usize,
        /// Columns per subarray.
        have: usize,
    },
    /// A program that no longer fits once inputs read twice by one gate are copied.
    #[error(
        "needs {needed} columns once inputs read twice in a gate are copied; the subarray has \
         {have} (cols_per_subarray)"
    )]
    CopiedColumns {
        /// Columns the program needs.
        needed: usize,
        /// Columns per subarray.
        have: usize,
    },
    /// The closed-form cost model and the generated program disagree (a bug).
    #[error(
        "internal error: the closed-form cost model disagrees with the generated program ({planned} \
         vs {generated} ops, {cols} columns vs a bound of {bound}); please report it"
    )]
    CostModel {
        /// Ops the closed form counted.
        planned: u64,
        /// Ops the program has.
        generated: u64,
        /// Columns the program uses.
        cols: usize,
        /// The closed form's column bound.
        bound: usize,
    },
    /// A LayerNorm whose row statistics do not fit the one 63-bit code a lane hands on.
    #[error(
        "LayerNorm over {features} features: its statistics (the row sum and σ) need {bits} \
         bits per position, more than the 63 one lane's code holds"
    )]
    NormStats {
        /// Features normalized together.
        features: usize,
        /// Bits the statistics need.
        bits: u32,
    },
    /// ReLU of a ±1 activation.
    #[error("ReLU of a binary (±1) activation is not defined here")]
    BinaryRelu,
    /// A step that is not element-wise where one was expected.
    #[error("not an element-wise step")]
    NotElementWiseStep,
    /// A layer that is not element-wise where one was expected.
    #[error("this op is not an element-wise layer")]
    NotElementWiseLayer,
    /// An analytical run that disagrees with the functional run of the same work.
    #[error("{0}")]
    Disagree(String),
}
