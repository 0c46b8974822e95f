//! Errors at the simulator's boundary and the exit codes they map to.
//!
//! Exit codes: 0 success; 1 a check failed (a lane disagreed with the reference) or an
//! unexpected error; 2 a usage or configuration error (bad flag, preset, file or value); 3 an
//! incomplete sweep (`sweep merge`: points missing or repeated).

use std::fmt;

/// Exit code for a failed check or an unexpected error.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for an incomplete result: `sweep merge` found points missing or repeated.
pub const EXIT_INCOMPLETE: u8 = 3;

/// A mistake in what the user asked for; the message names the flag or key, the value and
/// what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(String);

impl UsageError {
    /// A usage error with this message.
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError(message.into())
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl From<cram_arch::ArchError> for UsageError {
    fn from(e: cram_arch::ArchError) -> Self {
        UsageError(e.to_string())
    }
}

impl From<cram_workloads::WorkloadError> for UsageError {
    fn from(e: cram_workloads::WorkloadError) -> Self {
        UsageError(e.to_string())
    }
}
