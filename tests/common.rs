//! Helpers shared by the integration tests that drive the binary.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the binary with these arguments.
pub fn cram<P: AsRef<OsStr>>(args: &[P]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard output of a run that must succeed.
pub fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// A usage error: exit 2, one `error:` line naming every fragment, no panic.
pub fn assert_usage_error(o: &Output, fragments: &[&str]) {
    let e = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "stderr: {e}\nstdout: {}",
        stdout(o)
    );
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(e.matches("error:").count(), 1, "{e}");
    for f in fragments {
        assert!(e.contains(f), "missing {f:?} in: {e}");
    }
}

/// A fresh, empty folder under the test target's temporary directory.
pub fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("robust")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A copy of a shipped file (path relative to the repository) in `dir`, edited.
pub fn edited(shipped: &str, dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let base =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(shipped)).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, edit(base)).unwrap();
    path
}

/// The path as a `&str` argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The JSON a successful command printed.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).expect("valid JSON")
}
