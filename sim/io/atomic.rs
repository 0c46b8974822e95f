//! The one atomic writer: every file and run folder the program writes goes through here.
//!
//! A file is written to a hidden temporary file of this process beside it (`.NAME.tmp-PID`)
//! and renamed into place, so a reader sees the whole old file or the whole new one, never
//! half of one, and two processes writing one path never share a temporary file. A run
//! folder is written the same way: a hidden temporary folder, renamed into place.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The hidden temporary path of this process for `path`, with `suffix` after it.
pub(crate) fn temporary(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}{suffix}", std::process::id()))
}

/// Writes `path` through `write`, which gets a buffered writer of the temporary file. A
/// failed write leaves nothing behind; a write that failed because the stop flag was set
/// (`stopped()` true) is [`Error::Interrupted`].
pub fn write_with(
    path: &Path,
    stopped: impl Fn() -> bool,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), Error> {
    let tmp = temporary(path, "");
    let file = std::fs::File::create(&tmp).map_err(|e| Error::file(&tmp, e))?;
    let mut w = std::io::BufWriter::new(file);
    let written = write(&mut w).and_then(|()| w.flush());
    drop(w);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        if stopped() {
            return Err(Error::Interrupted);
        }
        return Err(Error::file(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::file(path, e)
    })
}

/// Writes `bytes` to `path`.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_with(path, || false, |w| w.write_all(bytes))
}

/// Writes `path` through `draw`, which writes a whole file at the temporary path it is
/// given (a plotting backend that opens the file itself). The temporary path ends in `.ext`
/// so the drawer can tell the format from it.
pub fn write_by_path(
    path: &Path,
    ext: &str,
    draw: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), Error> {
    let tmp = temporary(path, &format!(".{ext}"));
    if let Err(e) = draw(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::usage(format!("drawing {}: {e}", path.display())));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::file(path, e)
    })
}

/// Writes the folder `out/id` holding `files` (name, bytes): into a temporary folder beside
/// it, renamed into place, so a reader sees either the whole previous folder or the whole
/// new one. A folder of the same id holds the same bytes (the id is the hash of everything
/// the run read, and no record holds a time): it is replaced, or, if another process
/// renamed its copy into place between these steps, that one is kept. Returns `out/id`.
/// The id and every file name must be one path component (no separator, not `.` or `..`),
/// so nothing is written or replaced outside `out/id`.
pub fn write_folder(out: &Path, id: &str, files: &[(&str, Vec<u8>)]) -> Result<PathBuf, Error> {
    let plain = |n: &str| !matches!(n, "" | "." | "..") && !n.contains(['/', '\\', '\0']);
    if let Some(bad) = std::iter::once(id)
        .chain(files.iter().map(|f| f.0))
        .find(|n| !plain(n))
    {
        return Err(Error::usage(format!(
            "writing results into '{}': {bad:?} is not a plain file or folder name (one path \
             component: no '/' or '\\', not '.' or '..')",
            out.display()
        )));
    }
    let io = |what: &Path, e: std::io::Error| {
        Error::usage(format!("writing results '{}': {e}", what.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let dir = out.join(id);
    if dir.exists() && !dir.is_dir() {
        return Err(Error::usage(format!(
            "writing results '{}': it exists and is not a folder; move it away and run again",
            dir.display()
        )));
    }
    let tmp = out.join(format!(".{id}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
    for (name, bytes) in files {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
    }
    if dir.exists() {
        let old = out.join(format!(".{id}.old-{}", std::process::id()));
        match std::fs::rename(&dir, &old) {
            Ok(()) => {}
            Err(_) if !dir.exists() => {}
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(io(&dir, e));
            }
        }
        let placed = std::fs::rename(&tmp, &dir);
        let _ = std::fs::remove_dir_all(&old);
        if placed.is_err() && dir.is_dir() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        } else {
            placed.map_err(|e| io(&dir, e))?;
        }
    } else if let Err(e) = std::fs::rename(&tmp, &dir) {
        if dir.is_dir() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        } else {
            return Err(io(&dir, e));
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_nothing_and_a_good_one_replaces() {
        let dir = std::env::temp_dir().join(format!("cram-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write(&p, b"one").unwrap();
        let failed = write_with(
            &p,
            || false,
            |w| {
                w.write_all(b"half")?;
                Err(std::io::Error::other("disk full"))
            },
        );
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        let stopped = write_with(&p, || true, |_| Err(std::io::Error::other("stop")));
        assert!(matches!(stopped, Err(Error::Interrupted)));
        write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
        let run = write_folder(&dir, "r1", &[("x", b"1".to_vec())]).unwrap();
        let again = write_folder(&dir, "r1", &[("x", b"2".to_vec())]).unwrap();
        assert_eq!(run, again);
        assert_eq!(std::fs::read(run.join("x")).unwrap(), b"2");
        // Nothing is written or replaced outside out/id: an id or a file name that is not
        // one path component is refused, a run id with spaces or accents is not.
        for (id, file) in [
            ("..", "x"),
            ("../r1", "x"),
            ("a/b", "x"),
            ("r2", "../x"),
            ("", "x"),
        ] {
            let e = write_folder(&dir.join("out"), id, &[(file, b"3".to_vec())]).unwrap_err();
            assert!(
                e.to_string().contains("not a plain file or folder name"),
                "{e}"
            );
        }
        assert_eq!(std::fs::read(run.join("x")).unwrap(), b"2");
        assert!(write_folder(&dir, "my model+ü-1", &[("x", b"4".to_vec())]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
