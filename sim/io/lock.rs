//! Exclusive locks on output files that several processes could write at once (a sweep
//! shard run twice by mistake, or by two job arrays over one plan).
//!
//! A lock is an OS file lock (`flock`, through `std::fs::File::try_lock`) on a small lock
//! file beside the output. The OS drops it when its holder exits, however it exits (`kill
//! -9` included), so a stale lock cannot outlive its process. While it holds the lock, a
//! process writes its pid, host and start time into the file, so a second process can say
//! who holds it.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A held lock; dropped, it is released.
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock at `path` (created if missing) or says who holds it: the error names
    /// the lock file and the holder's pid, host and start time.
    pub fn acquire(path: &Path) -> Result<Lock, String> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("lock file '{}': {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes who it is just after taking the lock: give it a moment.
                let mut holder = String::new();
                for _ in 0..25 {
                    holder.clear();
                    let _ = file.rewind();
                    let _ = file.read_to_string(&mut holder);
                    if !holder.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let holder = holder.trim();
                return Err(format!(
                    "held by {} (lock file '{}'); wait for that process to finish or stop it",
                    if holder.is_empty() {
                        "another process"
                    } else {
                        holder
                    },
                    path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!(
                    "lock file '{}': cannot lock it ({e}); the file system may not support \
                     locks",
                    path.display()
                ));
            }
        }
        let me = format!(
            "pid {} on host {} since unix time {}",
            std::process::id(),
            hostname(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        );
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.as_bytes()))
            .and_then(|()| file.flush());
        written.map_err(|e| format!("lock file '{}': {e}", path.display()))?;
        Ok(Lock {
            _file: file,
            path: path.to_owned(),
        })
    }

    /// Whether someone holds the lock at `path` now, and who (None: free or no lock file).
    pub fn holder(path: &Path) -> Option<String> {
        let file = std::fs::File::open(path).ok()?;
        match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => Some(
                std::fs::read_to_string(path)
                    .map(|s| s.trim().to_owned())
                    .ok()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "another process".to_owned()),
            ),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// This machine's host name (Linux: the kernel's; else `HOSTNAME`, else "unknown").
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_who_holds_the_lock() {
        let dir = std::env::temp_dir().join(format!("cramulator-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.lock");
        let held = Lock::acquire(&p).unwrap();
        let e = Lock::acquire(&p).unwrap_err();
        assert!(
            e.contains(&format!("pid {}", std::process::id())) && e.contains("x.lock"),
            "{e}"
        );
        assert!(Lock::holder(&p).is_some());
        drop(held);
        assert!(Lock::holder(&p).is_none());
        assert!(Lock::acquire(&p).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
