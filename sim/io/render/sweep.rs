//! What the sweep commands say: a plan written, a sweep that cannot be merged yet, a merged
//! sweep.

use crate::experiment::sweep::Merged;
use crate::experiment::sweep::ranges;
use crate::io::shard::ShardReading;
use crate::records::SweepManifest;
use std::fmt::Write as _;
use std::path::Path;

/// What `sweep plan` says: the points, the axes, the time and where the plan went.
pub(crate) fn planned(m: &SweepManifest, secs: f64, dir: &Path) -> String {
    let mut s = format!(
        "sweep {}: {} points ({}) in {:.2} s → {}\n",
        m.name,
        m.points,
        m.axes
            .iter()
            .map(|a| format!(
                "{} × {}{}",
                a.values.len(),
                a.key,
                a.group
                    .as_ref()
                    .map(|g| format!(" [zip {g}]"))
                    .unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join(", "),
        secs,
        dir.display()
    );
    let _ = writeln!(
        s,
        "next: cramulator sweep run {d} [--shard I/N]; cramulator sweep merge {d}",
        d = dir.display()
    );
    s
}

/// The message of a sweep that cannot be merged yet: every problem, the points missing and
/// (with one sharding) the shards to re-run.
pub(crate) fn incomplete(
    m: &SweepManifest,
    dir: &Path,
    reading: ShardReading,
    missing: &[u64],
    no_files: bool,
) -> String {
    let ShardReading {
        problems,
        mut rerun,
        ns,
        ..
    } = reading;
    let mut s = String::new();
    for p in &problems {
        let _ = writeln!(s, "sweep {}: {p}", m.name);
    }
    if !missing.is_empty() {
        let _ = write!(
            s,
            "sweep {}: {} of {} points missing",
            m.name,
            missing.len(),
            m.points
        );
        if no_files {
            let _ = writeln!(
                s,
                " (no shard files: run `cramulator sweep run {}` first)",
                dir.display()
            );
        } else {
            let _ = writeln!(s);
        }
    }
    // With one sharding, every shard that lost, repeated or misplaced a point reruns.
    if let (1, Some(&n)) = (ns.len(), ns.first()) {
        rerun.extend(missing.iter().map(|id| (id % n, n)));
        if !rerun.is_empty() {
            let sh: Vec<u64> = rerun.iter().map(|r| r.0).collect();
            let _ = writeln!(
                s,
                "shards to re-run (of {n}): {}; `cramulator sweep run {} --shard I/{n}` \
                 keeps each shard's good lines and runs the rest (resubmit: sbatch \
                 --array={} …)",
                ranges(&sh),
                dir.display(),
                ranges(&sh)
            );
        }
    }
    s
}

/// What `sweep merge` says of a merged sweep: the files written, the failed points and the
/// best point of each metric.
pub(crate) fn merged(m: &SweepManifest, merged: &Merged, files: usize, dir: &Path) -> String {
    let summary = &merged.summary;
    let mut s = format!(
        "sweep {}: {} points merged from {} shard file(s) → {}/results.csv, results.jsonl, \
         summary.json\n",
        m.name,
        merged.records.len(),
        files,
        dir.display()
    );
    if summary.failed > 0 {
        let _ = writeln!(
            s,
            "{} point(s) failed (status error): ids {}",
            summary.failed,
            ranges(&summary.failed_ids)
        );
    }
    for b in &summary.best {
        let _ = writeln!(
            s,
            "lowest {:<10} point {:>6}: {} = {}  ({})",
            b.metric,
            b.id,
            b.metric,
            b.value,
            b.set
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s
}
