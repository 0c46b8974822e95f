//! The `cramulator` binary: parses the command line, runs it, maps errors to exit codes.
//!
//! Exit codes: 0 success, 1 a check failed (the run finished and a result differed from its
//! reference), 2 the command refused its input or could not do its work (usage,
//! configuration or file error; clap's own parse errors also exit 2), 3 an incomplete sweep
//! at merge, 130 stopped by SIGINT.

use std::process::ExitCode;

use cramulator::cli::{self, Outcome};
use cramulator::error::{EXIT_FAILURE, EXIT_INCOMPLETE, EXIT_USAGE};

/// Keeps the memory a run frees for its next allocations (glibc): blocks of up to 32 MiB
/// come from the heap, not from fresh mappings, and freed memory is not handed back to the
/// system mid-run. A run allocates and frees tensors and candidate tables of tens of
/// megabytes; by default each large one is a new mapping whose pages fault in afresh
/// (about 90,000 faults for an analytical ResNet-18, 53,000 with this). Results do not
/// depend on it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets two of glibc's allocator parameters; it is called once,
    // first thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = cli::parse();
    cramulator::cli::guard::install_sigint();
    match cli::run(cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(EXIT_FAILURE),
        Ok(Outcome::Incomplete) => ExitCode::from(EXIT_INCOMPLETE),
        Ok(Outcome::Interrupted) => ExitCode::from(cramulator::cli::guard::EXIT_INTERRUPTED),
        Err(cramulator::error::Error::Interrupted) => {
            eprintln!("interrupted: stopped before finishing; nothing was written");
            ExitCode::from(cramulator::cli::guard::EXIT_INTERRUPTED)
        }
        Err(e) => {
            // Every error exits 2: exit 1 means only that the simulation ran and a check
            // failed, so a script can tell a wrong result from a refused input.
            eprintln!("error: {:#}", anyhow::Error::from(e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}
