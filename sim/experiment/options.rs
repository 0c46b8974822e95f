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
