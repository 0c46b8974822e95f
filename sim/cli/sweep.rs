//! `cramulator sweep plan|run|merge|sbatch`.

use crate::cli::{Outcome, emit};
use crate::error::Error;
use crate::experiment::sweep::*;
use crate::io::shard::*;
use crate::io::slurm::*;
use crate::records::*;
use clap::{Args, Subcommand};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `cramulator sweep …`.
#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Expand a sweep file into DIR/plan.jsonl (one line per point), DIR/manifest.json and
    /// DIR/base.toml. Deterministic: the same file gives the same bytes.
    Plan(PlanArgs),
    /// Run the points of one shard (id mod N = I) on rayon, appending one record per point
    /// to DIR/shards/; re-running skips the points already recorded.
    Run(RunShardArgs),
    /// Check that every point was run exactly once and write DIR/results.csv,
    /// DIR/results.jsonl and DIR/summary.json (exit 3 with the shards to resubmit if not).
    Merge(MergeArgs),
    /// Print a Slurm job-array script for a plan and write it, the dependent merge job and a
    /// submit script into DIR/slurm/.
    Sbatch(SbatchArgs),
}

/// Arguments of `sweep plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Sweep file (TOML; see configs/sweeps/).
    pub sweep: PathBuf,
    /// Folder for the plan and, later, the shards and results [default: results/sweeps/NAME].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `sweep run`.
#[derive(Debug, Args)]
pub struct RunShardArgs {
    /// Plan folder (written by `sweep plan`).
    pub dir: PathBuf,
    /// This process's share: `I/N` (points with id mod N = I), or `auto` (Slurm's
    /// SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT).
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Worker threads: 1..=1024, or 0 for one per core [default: SLURM_CPUS_PER_TASK,
    /// else one per core]. Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run again the points recorded as failed (status error), e.g. after fixing a file
    /// they read; their old records are dropped.
    #[arg(long)]
    pub retry_failed: bool,
}

/// Arguments of `sweep merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Plan folder.
    pub dir: PathBuf,
}

/// Arguments of `sweep sbatch`.
#[derive(Debug, Args)]
pub struct SbatchArgs {
    /// Plan folder.
    pub dir: PathBuf,
    /// Array tasks (shards) [default: 4, or the points if fewer].
    #[arg(long)]
    pub shards: Option<u32>,
    /// CPUs per task (the shard's rayon threads).
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Wall-time limit per task (Slurm's format).
    #[arg(long, default_value = "00:30:00")]
    pub time: String,
    /// Most tasks running at once (`%M` of `--array`).
    #[arg(long)]
    pub max_running: Option<u32>,
    /// Slurm partition (or a comma-separated list).
    #[arg(long)]
    pub partition: Option<String>,
    /// Memory per task, in Slurm's form (`4G`, `4000M`; default: the cluster's).
    #[arg(long)]
    pub mem: Option<String>,
    /// Slurm account to charge.
    #[arg(long)]
    pub account: Option<String>,
    /// The cramulator binary the jobs run [default: this one].
    #[arg(long)]
    pub bin: Option<PathBuf>,
}

/// `cramulator sweep …`.
pub fn sweep(c: &SweepCommand) -> Result<Outcome, Error> {
    match c {
        SweepCommand::Plan(a) => plan_cmd(a),
        SweepCommand::Run(a) => run_cmd(a),
        SweepCommand::Merge(a) => merge_cmd(a),
        SweepCommand::Sbatch(a) => sbatch_cmd(a),
    }
}

pub(crate) fn plan_cmd(a: &PlanArgs) -> Result<Outcome, Error> {
    let t = Instant::now();
    let plan = Plan::from_file(&a.sweep, crate::cli::guard::limits().stop)?;
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results/sweeps").join(&plan.manifest.name));
    // Planning again over the same plan is harmless (the same bytes); over another plan
    // whose shards exist it would orphan them.
    if let Ok(old) = Plan::read(&dir)
        && old.manifest.plan_hash != plan.manifest.plan_hash
        && dir.join("shards").is_dir()
    {
        return Err(Error::usage(format!(
            "'{}' holds another plan ({}, this one is {}) with shards; give another --out or \
             remove the folder",
            dir.display(),
            old.manifest.plan_hash,
            plan.manifest.plan_hash
        )));
    }
    crate::io::shard::write_plan(&plan, &dir, crate::cli::guard::limits().stop)?;
    let m = &plan.manifest;
    emit(&crate::io::render::sweep::planned(
        m,
        t.elapsed().as_secs_f64(),
        &dir,
    ))?;
    Ok(Outcome::Success)
}

// ----- running a shard -------------------------------------------------------------------

pub(crate) fn run_cmd(a: &RunShardArgs) -> Result<Outcome, Error> {
    let plan = Plan::read(&a.dir)?;
    let (shard, of) = crate::experiment::sweep::parse_shard(&a.shard, "--shard")?;
    let options = crate::cli::common::options(a.threads);
    // The thread count is refused before any file is touched.
    options.workers()?;
    let m = &plan.manifest;
    let shards = a.dir.join("shards");
    std::fs::create_dir_all(&shards).map_err(|e| Error::file(&shards, e))?;
    let done_path = shards.join(shard_name(shard, of));
    let part_path = shards.join(format!("{}.part", shard_name(shard, of)));
    // One process per shard: a second one is told who runs it.
    let _lock = crate::io::lock::Lock::acquire(&lock_of(&done_path))
        .map_err(|e| Error::usage(format!("shard {shard}/{of} of '{}': {e}", a.dir.display())))?;
    let header = ShardHeader {
        plan_hash: m.plan_hash.clone(),
        shard,
        of,
    };
    let mine: Vec<u64> = (shard..m.points).step_by(of as usize).collect();
    let paths = ShardPaths {
        done: &done_path,
        part: &part_path,
    };
    let Some((part, finished)) = open_shard(a, &header, m.points, mine.len(), &paths)? else {
        return Ok(Outcome::Success);
    };
    let todo: Vec<u64> = mine
        .iter()
        .copied()
        .filter(|id| !finished.contains(id))
        .collect();
    let t0 = Instant::now();
    let ran = run_todo(&plan, &todo, &options, &part);
    // The part file is closed (its finished lines kept) whatever the run did.
    let closed = part.close();
    let ran = ran?;
    closed?;
    if ran.interrupted {
        let kept = finished.len() as u64 + ran.ran;
        eprintln!(
            "shard {shard}/{of}: interrupted; {kept} finished point(s) kept in {}; run the same \
             command again to run the rest",
            part_path.display()
        );
        return Ok(Outcome::Interrupted);
    }
    publish(&part_path, &done_path)?;
    let secs = t0.elapsed().as_secs_f64();
    let failed = ran.failed;
    emit(&format!(
        "shard {shard}/{of}: {} points run in {secs:.2} s ({:.1} points/s, {} threads){}{} → {}\n",
        todo.len(),
        todo.len() as f64 / secs.max(1e-9),
        ran.threads,
        if finished.is_empty() {
            String::new()
        } else {
            format!(", {} already done", finished.len())
        },
        if failed > 0 {
            format!(", {failed} failed (status error; see the records)")
        } else {
            String::new()
        },
        done_path.display()
    ))?;
    Ok(Outcome::Success)
}

/// The two files of a shard: finished, and part (while it runs).
struct ShardPaths<'a> {
    done: &'a Path,
    part: &'a Path,
}

/// Opens the part file of a shard to append to, with the points already finished in it.
/// Resumes from the finished file, else the part file: keeps its good records; a finished
/// shard with every point is done (`None`, said so); otherwise the part file is rewritten
/// without the rest (bad, repeated or foreign lines, a torn tail, retried points), and the
/// missing points run.
fn open_shard(
    a: &RunShardArgs,
    header: &ShardHeader,
    points: u64,
    mine: usize,
    paths: &ShardPaths,
) -> Result<Option<(PartFile, BTreeSet<u64>)>, Error> {
    let ShardHeader { shard, of, .. } = *header;
    let (done_path, part_path) = (paths.done, paths.part);
    let earlier = [done_path, part_path].into_iter().find(|p| p.exists());
    let mut finished = BTreeSet::new();
    let file = if let Some(path) = earlier {
        let f = read_shard(path)?;
        if let Some(h) = f.header.as_ref().filter(|h| **h != *header) {
            return Err(Error::usage(format!(
                "'{}' belongs to another plan or sharding ({} shard {}/{}, this is {} shard \
                 {shard}/{of}); remove it",
                path.display(),
                h.plan_hash,
                h.shard,
                h.of,
                header.plan_hash
            )));
        }
        let (kept, dropped) = keep_records(&f, shard, of, points, a.retry_failed);
        let whole = f.header.is_some() && dropped.is_empty() && !f.torn;
        if path == done_path && whole && kept.len() == mine {
            emit(&format!(
                "shard {shard}/{of}: all {} points already done ({})\n",
                mine,
                done_path.display()
            ))?;
            return Ok(None);
        }
        for (n, why) in &dropped {
            eprintln!("{}:{n}: {why}; dropped", path.display());
        }
        finished.extend(kept.iter().map(|r| r.id));
        if path == done_path || !whole {
            let kept: Vec<PointRecord> = kept.into_iter().cloned().collect();
            let part =
                PartFile::rewrite(part_path, header, &kept, crate::cli::guard::limits().stop)?;
            if path == done_path {
                std::fs::remove_file(done_path).map_err(|e| Error::file(done_path, e))?;
            }
            part
        } else {
            PartFile::append_to(part_path)?
        }
    } else {
        PartFile::create(part_path, header)?
    };
    Ok(Some((file, finished)))
}

/// Runs the points `todo` of `plan`, each appended to `part` as it finishes, with a
/// progress bar.
fn run_todo(
    plan: &Plan,
    todo: &[u64],
    options: &crate::experiment::options::Options,
    part: &PartFile,
) -> Result<PointsRun, Error> {
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} points  {per_sec}  ETA {eta}",
        )
        .expect("a valid template"),
    );
    let ran = run_points(plan, todo, options, &|rec: &PointRecord| {
        part.append(rec);
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    Ok(ran)
}

pub(crate) fn merge_cmd(a: &MergeArgs) -> Result<Outcome, Error> {
    let plan = Plan::read(&a.dir)?;
    let m = &plan.manifest;
    let shards = a.dir.join("shards");
    let files = shard_files(&shards);
    // Merge holds every record at once: about twice their JSON.
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    crate::model::limits::MemoryEstimate {
        records_bytes: bytes.saturating_mul(2),
        advice: "merge on a machine with more memory, or give a larger --max-memory",
        ..Default::default()
    }
    .check(
        &format!("merging sweep {}", m.name),
        crate::cli::guard::limits().memory,
    )?;
    let mut reading = read_shards(&files, m)?;
    if reading.ns.len() > 1 {
        reading.problems.push(format!(
            "shard files of different N ({}) are mixed in '{}': keep one sharding",
            reading
                .ns
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            shards.display()
        ));
    }
    let missing: Vec<u64> = (0..m.points)
        .filter(|id| !reading.by_id.contains_key(id))
        .collect();
    if !missing.is_empty() || !reading.problems.is_empty() {
        eprint!(
            "{}",
            crate::io::render::sweep::incomplete(m, &a.dir, reading, &missing, files.is_empty())
        );
        return Ok(Outcome::Incomplete);
    }
    let merged = merge(m, reading.by_id.into_values().map(|(r, _)| r).collect())?;
    write_merged(&a.dir, &merged)?;
    emit(&crate::io::render::sweep::merged(
        m,
        &merged,
        files.len(),
        &a.dir,
    ))?;
    Ok(Outcome::Success)
}

/// Writes `results.csv`, `results.jsonl` and `summary.json` of a merged sweep into `dir`.
fn write_merged(dir: &Path, merged: &Merged) -> Result<(), Error> {
    crate::io::atomic::write_with(
        &dir.join("results.csv"),
        crate::cli::guard::interrupted,
        |w| w.write_all(&merged.csv),
    )?;
    crate::io::atomic::write_with(
        &dir.join("results.jsonl"),
        crate::cli::guard::interrupted,
        |w| {
            for r in &merged.records {
                w.write_all(serde_json::to_string(r).expect("JSON").as_bytes())?;
                w.write_all(b"\n")?;
            }
            Ok(())
        },
    )?;
    let json = serde_json::to_string_pretty(&merged.summary).expect("JSON") + "\n";
    crate::io::atomic::write_with(
        &dir.join("summary.json"),
        crate::cli::guard::interrupted,
        |w| w.write_all(json.as_bytes()),
    )?;
    Ok(())
}

// ----- Slurm -----------------------------------------------------------------------------

pub(crate) fn sbatch_cmd(a: &SbatchArgs) -> Result<Outcome, Error> {
    let plan = Plan::read(&a.dir)?;
    let m = &plan.manifest;
    let shards = checked_shards(a, m.points)?;
    // Jobs run from wherever Slurm starts them: every path in the scripts is absolute.
    let absolute = |p: &Path, what: &str| {
        std::path::absolute(p).map_err(|e| Error::usage(format!("{what} '{}': {e}", p.display())))
    };
    let bin = match &a.bin {
        Some(b) => absolute(b, "--bin")?,
        None => std::env::current_exe()
            .map_err(|e| Error::usage(format!("locating this binary: {e}")))?,
    };
    let plan_dir = absolute(&a.dir, "plan folder")?;
    // `#SBATCH --output=` takes the path unquoted.
    if plan_dir.to_str().is_none_or(|p| {
        p.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    }) {
        return Err(Error::usage(format!(
            "plan folder '{}': a Slurm directive cannot hold a path with spaces or quotes; \
             move the plan to a plainer path",
            plan_dir.display()
        )));
    }
    let Scripts {
        array,
        merge,
        submit,
    } = scripts(
        m,
        &ArrayJob {
            shards,
            cpus: a.cpus,
            time: &a.time,
            max_running: a.max_running,
            partition: a.partition.as_deref(),
            account: a.account.as_deref(),
            mem: a.mem.as_deref(),
            bin: &bin,
            plan_dir: &plan_dir,
        },
    );
    let slurm = plan_dir.join("slurm");
    let logs = slurm.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::file(&logs, e))?;
    for (name, text) in [
        ("array.sbatch", &array),
        ("merge.sbatch", &merge),
        ("submit.sh", &submit),
    ] {
        crate::io::atomic::write_with(&slurm.join(name), crate::cli::guard::interrupted, |w| {
            w.write_all(text.as_bytes())
        })?;
    }
    emit(&format!(
        "{array}\n# The merge job ({}), submitted after the array by {}:\n#   sbatch --dependency=afterok:$JID {}\n",
        slurm.join("merge.sbatch").display(),
        slurm.join("submit.sh").display(),
        slurm.join("merge.sbatch").display()
    ))?;
    Ok(Outcome::Success)
}

/// Checks the settings of `sweep sbatch` for a plan of `points` points; returns the number
/// of shards.
fn checked_shards(a: &SbatchArgs, points: u64) -> Result<u32, Error> {
    let shards = a.shards.unwrap_or(points.clamp(1, 4) as u32);
    if shards == 0 || shards > 10_000 {
        return Err(Error::usage(format!(
            "--shards {}: must be in 1..=10000 (Slurm's MaxArraySize is often 1001; check \
             `scontrol show config`)",
            shards
        )));
    }
    if u64::from(shards) > points {
        return Err(Error::usage(format!(
            "--shards {}: the plan has {} point(s), so at most {} shard(s) have work",
            shards, points, points
        )));
    }
    let most = crate::experiment::options::MAX_THREADS as u32;
    if a.cpus == 0 || a.cpus > most {
        return Err(Error::usage(format!(
            "--cpus {}: must be in 1..={most} (each task's `sweep run --threads`)",
            a.cpus
        )));
    }
    if a.max_running == Some(0) {
        return Err(Error::usage(
            "--max-running 0: must be at least 1 (tasks running at once)",
        ));
    }
    slurm_time(&a.time).map_err(|why| Error::usage(format!("--time {:?}: {why}", a.time)))?;
    let names = [("--partition", &a.partition), ("--account", &a.account)];
    for (flag, v) in names {
        if let Some(v) = v
            && (v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.,-".contains(c)))
        {
            return Err(Error::usage(format!(
                "{flag} {v:?}: use letters, digits, '_', '.', '-' (and ',' between names)"
            )));
        }
    }
    if let Some(mem) = &a.mem {
        let digits = mem.trim_end_matches(['K', 'M', 'G', 'T']);
        if digits.is_empty()
            || !digits.chars().all(|c| c.is_ascii_digit())
            || mem.len() - digits.len() > 1
        {
            return Err(Error::usage(format!(
                "--mem {mem:?}: expected Slurm's form, a number with an optional K, M, G or T \
                 (e.g. 4G or 4000M)"
            )));
        }
    }
    Ok(shards)
}
