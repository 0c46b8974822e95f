//! Run guards: the memory limit of functional runs (`--max-memory`) and the SIGINT stop flag
//! that lets `run` and `sweep run` stop cleanly with finished work kept.
//!
//! SIGINT (Ctrl-C) sets a flag; long loops poll [`interrupted`] between units of work (a
//! network layer, a sweep point) and return. A `run` then writes nothing (its results are
//! written atomically at the end, so nothing half-written appears); a `sweep run` keeps
//! every finished point's line and leaves the shard's `.part` file for the re-run. Both
//! exit 130. A second SIGINT exits at once, as an unhandled one would.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use crate::experiment::options::MAX_THREADS;
use crate::model::limits::{Limits, MemoryLimit, Stop};

pub(crate) static STOP: AtomicBool = AtomicBool::new(false);
pub(crate) static MAX_MEMORY: AtomicU64 = AtomicU64::new(0);

pub use crate::error::EXIT_INTERRUPTED;

pub use crate::experiment::options::DEFAULT_MEMORY_SHARE;

/// Installs the SIGINT handler (once, from `main`).
pub fn install_sigint() {
    // Failing to install (another handler exists) leaves the default: the process dies.
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!(
            "\ninterrupted: stopping at the next layer, block or sweep point (Ctrl-C again to quit \
             at once)"
        );
    });
}

/// The limits in force: SIGINT as the stop flag, `--max-memory` (or its default) as the
/// memory limit.
pub fn limits() -> Limits {
    Limits {
        stop: Stop::on(&STOP),
        memory: MemoryLimit {
            bytes: max_memory_bytes(),
            given: MAX_MEMORY.load(Ordering::Relaxed) != 0,
        },
    }
}

/// Whether SIGINT arrived.
pub fn interrupted() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Sets `--max-memory` in bytes (0 = the default).
pub fn set_max_memory(bytes: u64) {
    MAX_MEMORY.store(bytes, Ordering::Relaxed);
}

/// The limit in force: `--max-memory`, else half of physical memory, else 4 GiB.
pub fn max_memory_bytes() -> u64 {
    match MAX_MEMORY.load(Ordering::Relaxed) {
        0 => crate::experiment::options::default_memory_bytes(),
        b => b,
    }
}

/// Parses `--max-memory` ([`crate::experiment::options::parse_size`]).
pub fn parse_size(s: &str) -> Result<u64, String> {
    crate::experiment::options::parse_size(s, "--max-memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("4g").unwrap(), 4 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("2KB").unwrap(), 2048);
        for bad in ["", "G", "-1G", "0", "lots", "1e30T", "NaN"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("--max-memory"), "{bad}: {e}");
        }
    }
}
