//! How an experiment runs: its worker threads, its stop flag and its memory limit. None of
//! them changes a result: the same inputs give the same bytes on any thread count.

use crate::error::Error;
use crate::model::limits::Limits;

/// How to run an experiment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Worker threads: `Some(0)` one per core; `None` Slurm's `SLURM_CPUS_PER_TASK` when
    /// set, else one per core ([`threads`]).
    pub threads: Option<usize>,
    /// When to stop, and the most memory the work may hold.
    pub limits: Limits,
}

impl Options {
    /// A pool of [`Options::threads`] workers; errors name `--threads`.
    pub fn pool(&self) -> Result<rayon::ThreadPool, Error> {
        pool(self.threads, "--threads")
    }

    /// The number of workers [`Options::pool`] starts, checked without starting them.
    pub fn workers(&self) -> Result<usize, Error> {
        threads(self.threads, "--threads")
    }
}

/// Share of physical memory a functional run may use by default.
pub const DEFAULT_MEMORY_SHARE: f64 = 0.5;

/// Physical memory from `/proc/meminfo` (Linux), bytes.
pub fn physical_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory limit when none is given: [`DEFAULT_MEMORY_SHARE`] of physical memory, else
/// 4 GiB.
pub fn default_memory_bytes() -> u64 {
    physical_memory_bytes().map_or(crate::model::limits::FALLBACK_MEMORY_BYTES, |b| {
        (b as f64 * DEFAULT_MEMORY_SHARE) as u64
    })
}

/// Parses a size: bytes, or a number with K, M, G or T (powers of 1024; an optional `iB`
/// or `B` after the letter), e.g. `512M`, `4G`, `1.5GiB`. Errors name the option `name`
/// (`--max-memory`, or the Python binding's keyword), the value and what is allowed.
pub fn parse_size(s: &str, name: &str) -> Result<u64, String> {
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
        .map_err(|_| format!("{name} {s}: expected a size such as 512M, 4G or 1073741824"))?;
    let bytes = v * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < 2f64.powi(63)) {
        return Err(format!(
            "{name} {s}: must be at least 1 byte and below 8 EiB"
        ));
    }
    Ok(bytes as u64)
}

/// Most worker threads a command may run, whatever the machine.
pub const MAX_THREADS: usize = 1024;

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Most worker threads `--threads` accepts here: 4 per core (a little oversubscription
/// can hide I/O; more only costs memory and start-up time), at most [`MAX_THREADS`].
pub fn max_threads() -> usize {
    (4 * cores()).min(MAX_THREADS)
}

/// The worker threads a command runs with: `given` (`--threads`; 0 = one per core), else
/// Slurm's `SLURM_CPUS_PER_TASK` when set, else one per core. The same meaning and bound in
/// every command; errors name the flag or the variable, the value and what is allowed.
pub fn threads(given: Option<usize>, flag: &str) -> Result<usize, Error> {
    let (n, from) = match given {
        Some(n) => (n, format!("{flag} {n}")),
        None => match std::env::var("SLURM_CPUS_PER_TASK") {
            Ok(v) => {
                let n = v.trim().parse::<usize>().map_err(|_| {
                    Error::usage(format!(
                        "SLURM_CPUS_PER_TASK={v}: expected a number of CPUs (or pass {flag})"
                    ))
                })?;
                (n, format!("SLURM_CPUS_PER_TASK={n}"))
            }
            Err(_) => (0, String::new()),
        },
    };
    let max = max_threads();
    if n > max {
        return Err(Error::usage(format!(
            "{from}: must be in 0..={max} (0 = one per core; at most 4 per core of the {} \
             this process may use, and never above {MAX_THREADS})",
            cores()
        )));
    }
    Ok(if n == 0 { cores() } else { n })
}

/// A rayon pool of the workers `--threads` (`given`, named `flag` in errors) asks for, as
/// [`threads`] resolves it.
pub fn pool(given: Option<usize>, flag: &str) -> Result<rayon::ThreadPool, Error> {
    let threads = threads(given, flag)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::usage(format!("{flag} {threads}: cannot start the threads: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19 item 9: one meaning of `--threads` everywhere (0 = one per core) and a
    /// bound that names itself.
    #[test]
    fn threads_mean_the_same_everywhere() {
        assert_eq!(threads(Some(0), "--threads").unwrap(), cores());
        assert_eq!(threads(Some(1), "--threads").unwrap(), 1);
        let e = threads(Some(10_000), "--threads").unwrap_err().to_string();
        assert!(
            e.contains("--threads 10000") && e.contains("0 = one per core"),
            "{e}"
        );
        assert!(threads(Some(max_threads()), "--threads").is_ok());
        assert!(threads(Some(max_threads() + 1), "--threads").is_err());
    }
}
