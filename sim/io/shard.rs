//! Sweep shard files: names, locks, reading a shard line by line with repair, and reading
//! every shard of a sweep back for a merge.

use crate::error::Error;
use crate::experiment::sweep::*;
use crate::model::limits::Stop;
use crate::records::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// File name of shard `i` of `n` (finished; `.part` while running).
pub(crate) fn shard_name(i: u64, n: u64) -> String {
    format!("shard-{i:04}-of-{n:04}.jsonl")
}

/// Shard `(i, n)` of a shard file's name (`shard-IIII-of-NNNN.jsonl[.part]`).
pub(crate) fn shard_of_name(path: &Path) -> Option<(u64, u64)> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("shard-")?;
    let (i, rest) = rest.split_once("-of-")?;
    let n = rest.split('.').next()?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// The lock file of a shard file.
pub(crate) fn lock_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    path.with_file_name(format!("{}.lock", name.trim_end_matches(".part")))
}

/// A shard file as read back: its header, its records with their line numbers, and every
/// line that is not a record (with why). A last line without its newline (a writer killed
/// mid-line) is neither: it is `torn`.
pub(crate) struct ShardFile {
    pub(crate) header: Option<ShardHeader>,
    pub(crate) records: Vec<(usize, PointRecord)>,
    pub(crate) bad: Vec<(usize, String)>,
    pub(crate) torn: bool,
}

/// Reads a shard file line by line; nothing after a bad line is lost.
pub(crate) fn read_shard(path: &Path) -> Result<ShardFile, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, e))?;
    let mut r = BufReader::new(file);
    let mut out = ShardFile {
        header: None,
        records: Vec::new(),
        bad: Vec::new(),
        torn: false,
    };
    let mut bytes = Vec::new();
    let mut n = 0usize;
    loop {
        bytes.clear();
        let len = r
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Error::file(path, e))?;
        if len == 0 {
            break;
        }
        n += 1;
        if bytes.last() != Some(&b'\n') {
            out.torn = true;
            break;
        }
        let Ok(line) = std::str::from_utf8(&bytes) else {
            out.bad.push((n, "not UTF-8 text".into()));
            continue;
        };
        if n == 1 {
            match serde_json::from_str::<ShardHeader>(line) {
                Ok(h) => out.header = Some(h),
                Err(e) => out.bad.push((n, format!("not a shard header ({e})"))),
            }
            continue;
        }
        match serde_json::from_str::<PointRecord>(line) {
            Ok(rec) => out.records.push((n, rec)),
            Err(e) => out.bad.push((n, format!("not a point record ({e})"))),
        }
    }
    Ok(out)
}

/// Lines of a shard file left out of a repaired copy, with why.
pub(crate) type Dropped = Vec<(usize, String)>;

/// The records of `f` this shard keeps (its own points, each once; failed ones too unless
/// `retry_failed`) and the lines it drops, with why.
pub(crate) fn keep_records(
    f: &ShardFile,
    shard: u64,
    of: u64,
    points: u64,
    retry_failed: bool,
) -> (Vec<&PointRecord>, Dropped) {
    let mut seen = BTreeMap::new();
    let mut kept = Vec::new();
    let mut dropped: Dropped = f.bad.clone();
    for (n, r) in &f.records {
        if r.id >= points || r.id % of != shard {
            dropped.push((
                *n,
                format!("point {} is not one of shard {shard}/{of}'s", r.id),
            ));
        } else if let Some(first) = seen.get(&r.id) {
            dropped.push((*n, format!("point {} again (first on line {first})", r.id)));
        } else if retry_failed && r.status != "ok" {
            seen.insert(r.id, *n);
            dropped.push((
                *n,
                format!("point {} failed; retried (--retry-failed)", r.id),
            ));
        } else {
            seen.insert(r.id, *n);
            kept.push(r);
        }
    }
    dropped.sort();
    (kept, dropped)
}

/// The shard files in a sweep's `shards` folder (finished and part files), sorted; none if
/// the folder cannot be read.
pub(crate) fn shard_files(shards: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(shards) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("shard-") && (n.ends_with(".jsonl") || n.ends_with(".jsonl.part"))
                })
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// The shard files of a sweep as read back for a merge: every good record by point id, every
/// problem with the file and line it is on, the shards they concern and the shardings seen.
pub(crate) struct ShardReading {
    /// Every point's first good record, with the file and line it is on.
    pub(crate) by_id: BTreeMap<u64, (PointRecord, String)>,
    /// Every problem, with the file and line it is on.
    pub(crate) problems: Vec<String>,
    /// The shards `(i, n)` to re-run.
    pub(crate) rerun: BTreeSet<(u64, u64)>,
    /// The shard counts `N` of the files.
    pub(crate) ns: BTreeSet<u64>,
}

/// Reads and checks every shard file of the plan `m`: a file of another plan is an error; a
/// missing header, a shard still running, bad or cut lines, points of another shard and
/// points recorded twice are problems.
pub(crate) fn read_shards(files: &[PathBuf], m: &SweepManifest) -> Result<ShardReading, Error> {
    // Every problem, with the file and line it is on; the shards it concerns are re-run.
    let mut problems: Vec<String> = Vec::new();
    let mut rerun: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut by_id: BTreeMap<u64, (PointRecord, String)> = BTreeMap::new();
    let mut ns = BTreeSet::new();
    for f in files {
        let sf = read_shard(f)?;
        let shown = f.display().to_string();
        let Some(h) = sf.header.clone() else {
            problems.push(if sf.records.is_empty() && sf.bad.len() <= 1 {
                format!("{shown}: empty, or cut before its header (its run stopped at once)")
            } else {
                format!("{shown}:1: not a shard header")
            });
            if let Some((i, n)) = shard_of_name(f) {
                rerun.insert((i, n));
                ns.insert(n);
            }
            continue;
        };
        if h.plan_hash != m.plan_hash {
            return Err(Error::usage(format!(
                "'{shown}' belongs to another plan ({}, this one is {}); remove it",
                h.plan_hash, m.plan_hash
            )));
        }
        ns.insert(h.of);
        if let Some(holder) = crate::io::lock::Lock::holder(&lock_of(f)) {
            problems.push(format!(
                "{shown}: shard {}/{} is still running ({holder})",
                h.shard, h.of
            ));
            continue;
        }
        for (n, why) in &sf.bad {
            problems.push(format!("{shown}:{n}: {why}"));
            rerun.insert((h.shard, h.of));
        }
        if sf.torn {
            problems.push(format!(
                "{shown}: its last line is cut (a writer was killed)"
            ));
            rerun.insert((h.shard, h.of));
        }
        for (n, r) in sf.records {
            if r.id >= m.points || r.id % h.of != h.shard {
                problems.push(format!(
                    "{shown}:{n}: point {} does not belong to shard {}/{}",
                    r.id, h.shard, h.of
                ));
                rerun.insert((h.shard, h.of));
                continue;
            }
            let at = format!("{shown}:{n}");
            if let Some((_, first)) = by_id.get(&r.id) {
                problems.push(format!(
                    "point {} is recorded twice: {first} and {at}",
                    r.id
                ));
                rerun.insert((h.shard, h.of));
                continue;
            }
            by_id.insert(r.id, (r, at));
        }
    }
    Ok(ShardReading {
        by_id,
        problems,
        rerun,
        ns,
    })
}

/// Writes `plan` as plan.jsonl, base.toml and manifest.json into `dir` (each atomically);
/// `stop` ends a long plan.jsonl early, leaving nothing half-written.
pub fn write_plan(plan: &Plan, dir: &Path, stop: Stop) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    let axes = &plan.manifest.axes;
    let d = dims(axes).expect("a checked plan");
    // Each value's JSON once; a line is then a few copies.
    let keys: Vec<String> = axes
        .iter()
        .map(|a| serde_json::to_string(&a.key).expect("a string is JSON"))
        .collect();
    let vals: Vec<Vec<String>> = axes
        .iter()
        .map(|a| {
            a.values
                .iter()
                .map(|v| serde_json::to_string(v).expect("JSON"))
                .collect()
        })
        .collect();
    crate::io::atomic::write_with(
        &dir.join("plan.jsonl"),
        || stop.requested(),
        |w| {
            let mut line = String::new();
            for id in 0..plan.manifest.points {
                if id % 65_536 == 0 && stop.requested() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "interrupted by SIGINT",
                    ));
                }
                let idx = indices(&d, axes.len(), id);
                line.clear();
                let _ = write!(
                    line,
                    "{{\"id\":{id},\"seed\":{},\"set\":{{",
                    point_seed(plan.manifest.seed, id)
                );
                for (a, &k) in idx.iter().enumerate() {
                    if a > 0 {
                        line.push(',');
                    }
                    line.push_str(&keys[a]);
                    line.push(':');
                    line.push_str(&vals[a][k]);
                }
                line.push_str("}}\n");
                w.write_all(line.as_bytes())?;
            }
            Ok(())
        },
    )?;
    crate::io::atomic::write_with(
        &dir.join("base.toml"),
        || stop.requested(),
        |w| w.write_all(plan.base_text.as_bytes()),
    )?;
    let json = serde_json::to_string_pretty(&plan.manifest).expect("JSON") + "\n";
    crate::io::atomic::write_with(
        &dir.join("manifest.json"),
        || stop.requested(),
        |w| w.write_all(json.as_bytes()),
    )
}

/// A shard's part file (`shard-I-of-N.jsonl.part`), open for appending finished points. It
/// starts with the shard's header; each point is one JSON line, appended as it finishes (an
/// interrupted run keeps every finished line; a torn last line is repaired on the next run).
/// The one file not written through [`crate::io::atomic`]: it streams.
#[derive(Debug)]
pub struct PartFile {
    path: PathBuf,
    /// The file, and the first append error (later points are not written after one).
    file: std::sync::Mutex<(std::fs::File, Option<std::io::Error>)>,
}

impl PartFile {
    /// A new part file holding only `header`.
    pub fn create(path: &Path, header: &ShardHeader) -> Result<PartFile, Error> {
        let mut f = std::fs::File::create(path).map_err(|e| Error::file(path, e))?;
        writeln!(f, "{}", serde_json::to_string(header).expect("JSON"))
            .map_err(|e| Error::file(path, e))?;
        Ok(PartFile::of(path, f))
    }

    /// The part file rewritten (atomically) as `header` and the `kept` records, then open
    /// for appending.
    pub fn rewrite(
        path: &Path,
        header: &ShardHeader,
        kept: &[PointRecord],
        stop: Stop,
    ) -> Result<PartFile, Error> {
        crate::io::atomic::write_with(
            path,
            || stop.requested(),
            |w| {
                writeln!(w, "{}", serde_json::to_string(header).expect("JSON"))?;
                for r in kept {
                    writeln!(w, "{}", serde_json::to_string(r).expect("JSON"))?;
                }
                Ok(())
            },
        )?;
        PartFile::append_to(path)
    }

    /// An existing part file, open for appending.
    pub fn append_to(path: &Path) -> Result<PartFile, Error> {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::file(path, e))?;
        Ok(PartFile::of(path, f))
    }

    fn of(path: &Path, file: std::fs::File) -> PartFile {
        PartFile {
            path: path.to_path_buf(),
            file: std::sync::Mutex::new((file, None)),
        }
    }

    /// Appends one finished point (from any thread). An error is kept for [`PartFile::close`].
    pub fn append(&self, rec: &PointRecord) {
        let line = serde_json::to_string(rec).expect("a record is JSON") + "\n";
        let mut w = self.file.lock().expect("the writer lock is not poisoned");
        if w.1.is_none()
            && let Err(e) = w.0.write_all(line.as_bytes())
        {
            w.1 = Some(e);
        }
    }

    /// Flushes the file to disk; the first append error, if any, is the result.
    pub fn close(self) -> Result<(), Error> {
        let (file, err) = self
            .file
            .into_inner()
            .expect("the writer lock is not poisoned");
        if let Some(e) = err {
            return Err(Error::file(&self.path, e));
        }
        file.sync_all().map_err(|e| Error::file(&self.path, e))
    }
}

/// Renames a finished shard's part file to its final name: the shard is then done.
pub fn publish(part: &Path, done: &Path) -> Result<(), Error> {
    std::fs::rename(part, done).map_err(|e| Error::file(done, e))
}
