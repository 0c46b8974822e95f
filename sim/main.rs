//! The `cramulator` binary: parses the command line, runs it, maps errors to exit codes.
//!
//! Exit codes: 0 success, 1 a check failed or an unexpected error, 2 usage or configuration
//! error (clap's own parse errors also exit 2), 3 an incomplete sweep at merge.

use std::process::ExitCode;

use clap::Parser;
use cramulator::cli::{self, Cli, CliError, Outcome};
use cramulator::error::{EXIT_FAILURE, EXIT_INCOMPLETE, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            eprintln!("error: {e:#}");
            let usage = matches!(e.downcast_ref::<CliError>(), Some(CliError::Usage(_)));
            ExitCode::from(if usage { EXIT_USAGE } else { EXIT_FAILURE })
        }
    }
}
