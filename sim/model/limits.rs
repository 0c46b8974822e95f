//! Cancellation and memory limits, passed into the model as options.
//!
//! The model holds no process globals: a caller that wants long loops to stop (the binary,
//! on SIGINT) hands them a [`Stop`] flag, and a caller that bounds memory hands them a
//! [`MemoryLimit`]. Both travel together as [`Limits`].

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, MemoryRefusal};

/// A stop flag that long loops poll between units of work (a network layer, an executor
/// block, a sweep point). The default never stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stop(Option<&'static AtomicBool>);

impl PartialEq for Stop {
    /// Two stops are equal when they poll the same flag.
    fn eq(&self, other: &Stop) -> bool {
        match (self.0, other.0) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl Stop {
    /// Polls `flag`.
    pub fn on(flag: &'static AtomicBool) -> Stop {
        Stop(Some(flag))
    }

    /// The flag polled, if any (for loops below the simulator that poll it themselves).
    pub fn flag(&self) -> Option<&'static AtomicBool> {
        self.0
    }

    /// Whether the flag is set.
    pub fn requested(&self) -> bool {
        self.0.is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// `Err(Error::Interrupted)` once the flag is set.
    pub fn check(&self) -> Result<(), Error> {
        if self.requested() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// Default limit when the caller does not give one and physical memory is unknown: 4 GiB.
pub const FALLBACK_MEMORY_BYTES: u64 = 4 << 30;

/// The most memory a command may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    /// The limit, bytes.
    pub bytes: u64,
    /// Whether the user set it (`--max-memory`) rather than taking the default; messages
    /// say which.
    pub given: bool,
}

impl Default for MemoryLimit {
    fn default() -> MemoryLimit {
        MemoryLimit {
            bytes: FALLBACK_MEMORY_BYTES,
            given: false,
        }
    }
}

/// Cancellation and limits of one call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// When to stop early.
    pub stop: Stop,
    /// The memory limit.
    pub memory: MemoryLimit,
}

/// Bytes a compiled network holds per parameter, at most: its float weights, their integer
/// codes and the mapper's per-weight tables (measured: 16.6 B per parameter for ResNet-50,
/// analytical, in the README's "Bad input, memory and Ctrl-C").
pub const BYTES_PER_PARAM: u64 = 24;

/// Refuses a network whose compiled form would exceed `limit` (every mode holds it):
/// `params` parameters at [`BYTES_PER_PARAM`].
pub fn check_network(what: &str, params: u64, limit: MemoryLimit) -> Result<(), Error> {
    MemoryEstimate {
        plans_bytes: params.saturating_mul(BYTES_PER_PARAM),
        advice: "use a smaller network, or a larger --max-memory",
        ..MemoryEstimate::default()
    }
    .check(what, limit)
}

/// An estimate of the memory a command holds at its peak, by part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Every layer's output codes, kept for the layers that read them later, bytes.
    pub activations_bytes: u64,
    /// The largest layer's generated programs, bytes.
    pub programs_bytes: u64,
    /// The simulated cells of the subarrays running at once (one per worker thread), bytes.
    pub cells_bytes: u64,
    /// The compiled network and its analytical plans, bytes.
    pub plans_bytes: u64,
    /// Records read into memory (a sweep's merge), bytes.
    pub records_bytes: u64,
    /// What to change when the estimate is over the limit.
    pub advice: &'static str,
}

impl MemoryEstimate {
    /// The sum, bytes.
    pub fn total_bytes(&self) -> u64 {
        self.activations_bytes
            .saturating_add(self.programs_bytes)
            .saturating_add(self.cells_bytes)
            .saturating_add(self.plans_bytes)
            .saturating_add(self.records_bytes)
    }

    /// Refuses the work (`what`) when the estimate exceeds `limit`; the message gives the
    /// estimate, its parts and what to change.
    pub fn check(&self, what: &str, limit: MemoryLimit) -> Result<(), Error> {
        if self.total_bytes() <= limit.bytes {
            return Ok(());
        }
        let parts = [
            ("activations", self.activations_bytes),
            ("programs", self.programs_bytes),
            ("simulated cells", self.cells_bytes),
            ("network and plans", self.plans_bytes),
            ("records", self.records_bytes),
        ]
        .into_iter()
        .filter(|p| p.1 > 0)
        .collect();
        Err(Error::Memory(MemoryRefusal {
            what: what.to_owned(),
            parts,
            total_bytes: self.total_bytes(),
            limit_bytes: limit.bytes,
            given: limit.given,
            advice: self.advice,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_estimate_parts_and_limit() {
        let e = MemoryEstimate {
            activations_bytes: 3 << 20,
            programs_bytes: 1 << 20,
            cells_bytes: 1 << 10,
            ..Default::default()
        };
        let limit = |bytes, given| MemoryLimit { bytes, given };
        let msg = e
            .check("resnet18", limit(1 << 20, true))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("about 4.0 MiB") && msg.contains("1.0 MiB (as given)"),
            "{msg}"
        );
        assert!(e.check("resnet18", limit(1 << 40, false)).is_ok());
    }

    #[test]
    fn a_stop_flag_stops() {
        static FLAG: AtomicBool = AtomicBool::new(false);
        let stop = Stop::on(&FLAG);
        assert!(stop.check().is_ok() && Stop::default().check().is_ok());
        FLAG.store(true, Ordering::Relaxed);
        assert!(matches!(stop.check(), Err(Error::Interrupted)));
    }
}
