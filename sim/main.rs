//! The `cramulator` binary: parses the command line, runs it, maps errors to exit codes.
//!
//! Exit codes: 0 success, 1 a check failed (the run finished and a result differed from its
//! reference), 2 the command refused its input or could not do its work (usage,
//! configuration or file error; clap's own parse errors also exit 2), 3 an incomplete sweep
//! at merge, 130 stopped by SIGINT.

use std::process::ExitCode;

use cramulator::cli::{self, Outcome};
use cramulator::error::{EXIT_FAILURE, EXIT_INCOMPLETE, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = cli::parse();
    cramulator::guard::install_sigint();
    let result: anyhow::Result<Outcome> = cli::run(cli).map_err(anyhow::Error::from);
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(EXIT_FAILURE),
        Ok(Outcome::Incomplete) => ExitCode::from(EXIT_INCOMPLETE),
        Ok(Outcome::Interrupted) => ExitCode::from(cramulator::guard::EXIT_INTERRUPTED),
        Err(_) if cramulator::guard::interrupted() => {
            eprintln!("interrupted: stopped before finishing; nothing was written");
            ExitCode::from(cramulator::guard::EXIT_INTERRUPTED)
        }
        Err(e) => {
            // Every error exits 2: exit 1 means only that the simulation ran and a check
            // failed, so a script can tell a wrong result from a refused input.
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
