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
use crate::model::limits::{FALLBACK_MEMORY_BYTES, Limits, MemoryLimit, Stop};

pub(crate) static STOP: AtomicBool = AtomicBool::new(false);
pub(crate) static MAX_MEMORY: AtomicU64 = AtomicU64::new(0);

pub use crate::error::EXIT_INTERRUPTED;

/// Share of physical memory a functional run may use by default.
pub const DEFAULT_MEMORY_SHARE: f64 = 0.5;

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

/// Physical memory from `/proc/meminfo` (Linux), bytes.
pub fn physical_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The limit in force: `--max-memory`, else half of physical memory, else 4 GiB.
pub fn max_memory_bytes() -> u64 {
    match MAX_MEMORY.load(Ordering::Relaxed) {
        0 => physical_memory_bytes().map_or(FALLBACK_MEMORY_BYTES, |b| {
            (b as f64 * DEFAULT_MEMORY_SHARE) as u64
        }),
        b => b,
    }
}

/// Parses a size: bytes, or a number with K, M, G or T (powers of 1024; an optional `iB`
/// or `B` after the letter), e.g. `512M`, `4G`, `1.5GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let body = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (num, shift) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 10),
        Some('M') => (&body[..body.len() - 1], 20),
        Some('G') => (&body[..body.len() - 1], 30),
        Some('T') => (&body[..body.len() - 1], 40),
        _ => (body, 0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("--max-memory {s}: expected a size such as 512M, 4G or 1073741824"))?;
    let bytes = v * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < 2f64.powi(63)) {
        return Err(format!(
            "--max-memory {s}: must be at least 1 byte and below 8 EiB"
        ));
    }
    Ok(bytes as u64)
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
