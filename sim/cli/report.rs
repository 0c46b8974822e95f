//! `cramulator report INPUT --out FILE`: one self-contained HTML page of a run folder or a
//! merged sweep folder (`io::report`).

use crate::cli::{Outcome, emit};
use crate::error::Error;
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `cramulator report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder (`results/<run-id>/`) or a merged sweep folder.
    pub input: PathBuf,
    /// The page to write [default: INPUT/report.html].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `cramulator report`.
pub fn report(a: &ReportArgs) -> Result<Outcome, Error> {
    let out = a.out.clone().unwrap_or_else(|| a.input.join("report.html"));
    let path = write(&a.input, &out)?;
    emit(&format!("report → {}\n", path.display()))?;
    Ok(Outcome::Success)
}

/// Writes the page of `input` to `out` atomically (an `.html` name); returns `out`.
pub(crate) fn write(input: &Path, out: &Path) -> Result<PathBuf, Error> {
    if out.extension().and_then(|e| e.to_str()) != Some("html") {
        return Err(Error::usage(format!(
            "--out {}: the file name must end in .html",
            out.display()
        )));
    }
    let page = crate::io::report::html(input, crate::cli::guard::limits().memory)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    }
    crate::io::atomic::write(out, page.as_bytes())?;
    Ok(out.to_path_buf())
}
