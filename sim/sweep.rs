//! Design-space sweeps: a sweep file (a base run configuration plus axes over any config key)
//! expanded into a deterministic plan, run in shards on rayon, merged, and handed to Slurm.
//!
//! The tool never schedules jobs itself (engineering note §3.5): a shard only knows "I am
//! shard I of N" (`--shard I/N`, or `auto` from Slurm's array variables), so the same binary
//! runs unchanged under a Slurm job array, GNU parallel or a shell loop. Correctness rests on
//! four rules:
//! - **Per-point seeds**: point `id` runs with `run.seed` = the first word (63 bits) of ChaCha8 seeded by
//!   the sweep seed on stream `id`, and the workload's weights with `workload.seed` = the
//!   sweep seed, so a point's record depends on nothing but the plan and its id: not on N,
//!   the shard, the thread count or the order of completion.
//! - **Records are lines**: a shard appends one JSON line per finished point to
//!   `shards/shard-I-of-N.jsonl.part` (one `write` per line) and renames it to `.jsonl` when
//!   the shard is done. A re-run keeps every complete line, cuts a torn last line (`kill -9`
//!   mid-write) and runs only the points not yet recorded.
//! - **Merge checks**: every point of the plan exactly once, every shard file of this plan
//!   and of one N; otherwise exit 3 with the shards to resubmit as an `--array=` list.
//! - **Sorted output**: `results.csv` and `results.jsonl` are in point order, with numbers
//!   printed shortest-round-trip, so 1 shard or 3, 1 thread or 2, give the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use clap::{Args, Subcommand};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cli::{CliError, Outcome, emit};
use crate::config::Config;
use crate::error::UsageError;
use crate::records::{RunReport, SCHEMA_VERSION, fnv1a64};
use crate::run::Caches;

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
pub fn sweep(c: &SweepCommand) -> Result<Outcome, CliError> {
    match c {
        SweepCommand::Plan(a) => plan_cmd(a),
        SweepCommand::Run(a) => run_cmd(a),
        SweepCommand::Merge(a) => merge_cmd(a),
        SweepCommand::Sbatch(a) => sbatch_cmd(a),
    }
}

// ----- the sweep file --------------------------------------------------------------------

/// A sweep file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    sweep: SweepSection,
    #[serde(default)]
    axis: Vec<AxisSpec>,
}

/// `[sweep]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepSection {
    /// Name (folder name of the results).
    name: String,
    /// Global seed.
    #[serde(default = "one")]
    seed: u64,
    /// Base run configuration, relative to the sweep file (default: the built-in one).
    base: Option<String>,
    /// Overrides of the base, `key=value` as for `run --set`.
    #[serde(default)]
    set: Vec<String>,
}

fn one() -> u64 {
    1
}

/// `[[axis]]`: a config key and its values (exactly one of `values`, `range`, `log`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AxisSpec {
    key: String,
    values: Option<Vec<toml::Value>>,
    range: Option<RangeSpec>,
    log: Option<LogSpec>,
    /// Axes of one group are zipped (equal lengths, stepped together); groups and ungrouped
    /// axes combine as a product.
    group: Option<String>,
}

/// `range = { start, stop, step }`: start, start + step, … up to stop inclusive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeSpec {
    start: toml::Value,
    stop: toml::Value,
    step: toml::Value,
}

/// `log = { start, stop, num }`: num values evenly spaced in log from start to stop.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSpec {
    start: toml::Value,
    stop: toml::Value,
    num: usize,
}

/// An expanded axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// Dotted config key.
    pub key: String,
    /// Its values, in order.
    pub values: Vec<serde_json::Value>,
    /// Zip group, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<String>,
}

/// Most points a plan may hold.
pub const MAX_POINTS: u64 = 50_000_000;
/// Most values one axis may hold.
const MAX_AXIS_VALUES: usize = 1_000_000;

/// `DIR/manifest.json` of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepManifest {
    /// Record schema version.
    pub schema_version: u32,
    /// The cramulator that planned it.
    pub cramulator_version: String,
    /// Sweep name.
    pub name: String,
    /// The sweep file as given.
    pub sweep_file: String,
    /// FNV-1a of base.toml, the axes and the seed: shard files carry it.
    pub plan_hash: String,
    /// Global seed.
    pub seed: u64,
    /// Points in the plan.
    pub points: u64,
    /// Axes in order (the first varies slowest).
    pub axes: Vec<Axis>,
    /// The files of the plan.
    pub files: Vec<String>,
}

/// One line of `plan.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanPoint {
    /// Point id, 0-based.
    pub id: u64,
    /// Its `run.seed`.
    pub seed: u64,
    /// Axis key → value.
    pub set: serde_json::Map<String, serde_json::Value>,
}

/// One line of a shard file and of `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointRecord {
    /// Point id.
    pub id: u64,
    /// Its `run.seed`.
    pub seed: u64,
    /// Axis key → value.
    pub set: serde_json::Map<String, serde_json::Value>,
    /// `ok`, or `error` (the configuration was refused or failed; see `error`).
    pub status: String,
    /// Why the point failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The run's report (as `cramulator run` writes it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub report: Option<RunReport>,
}

/// First line of a shard file: which plan and which share it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardHeader {
    plan_hash: String,
    shard: u64,
    of: u64,
}

/// `run.seed` of point `id`: ChaCha8 seeded by the sweep seed, on stream `id`; 63 bits, as a
/// TOML integer holds.
pub fn point_seed(global: u64, id: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(global);
    rng.set_stream(id);
    rng.next_u64() >> 1
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::usage(format!("'{}': {e}", path.display()))
}

/// A number rounded to 12 significant digits (so 0.1 + 0.2 steps print as 0.3).
fn round12(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}")
        .parse()
        .expect("a formatted float parses")
}

/// The values of one axis spec; errors name the axis.
fn expand_axis(a: &AxisSpec, at: &str) -> Result<Vec<toml::Value>, String> {
    let given = [a.values.is_some(), a.range.is_some(), a.log.is_some()];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(format!(
            "{at}: give exactly one of `values = [..]`, `range = {{ start, stop, step }}` or \
             `log = {{ start, stop, num }}`"
        ));
    }
    let num = |v: &toml::Value, what: &str| -> Result<f64, String> {
        match v {
            toml::Value::Integer(i) => Ok(*i as f64),
            toml::Value::Float(f) if f.is_finite() => Ok(*f),
            v => Err(format!("{at}: {what} = {v}: must be a finite number")),
        }
    };
    let values = if let Some(v) = &a.values {
        v.clone()
    } else if let Some(r) = &a.range {
        let (start, stop, step) = (
            num(&r.start, "range.start")?,
            num(&r.stop, "range.stop")?,
            num(&r.step, "range.step")?,
        );
        if step <= 0.0 || stop < start {
            return Err(format!(
                "{at}: range {start}..={stop} step {step}: needs step > 0 and stop ≥ start"
            ));
        }
        let n = ((stop - start) / step * (1.0 + 1e-12)).floor() + 1.0;
        if n > MAX_AXIS_VALUES as f64 {
            return Err(format!(
                "{at}: range gives {n} values; at most {MAX_AXIS_VALUES}"
            ));
        }
        let ints = [&r.start, &r.stop, &r.step].iter().all(|v| v.is_integer());
        (0..n as usize)
            .map(|i| {
                let x = start + i as f64 * step;
                if ints {
                    toml::Value::Integer(x.round() as i64)
                } else {
                    toml::Value::Float(round12(x))
                }
            })
            .collect()
    } else {
        let l = a.log.as_ref().expect("one is given");
        let (start, stop) = (num(&l.start, "log.start")?, num(&l.stop, "log.stop")?);
        if !(start > 0.0 && stop > 0.0 && (2..=MAX_AXIS_VALUES).contains(&l.num)) {
            return Err(format!(
                "{at}: log from {start} to {stop} in {} values: needs start, stop > 0 and \
                 num in 2..={MAX_AXIS_VALUES}",
                l.num
            ));
        }
        let ints = l.start.is_integer() && l.stop.is_integer();
        let (a0, a1) = (start.ln(), stop.ln());
        let v: Vec<toml::Value> = (0..l.num)
            .map(|i| {
                let x = (a0 + (a1 - a0) * i as f64 / (l.num - 1) as f64).exp();
                if ints {
                    toml::Value::Integer(x.round() as i64)
                } else {
                    toml::Value::Float(round12(x))
                }
            })
            .collect();
        if ints && v.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!(
                "{at}: log from {start} to {stop} in {} integer values repeats a value; use \
                 fewer values or float bounds",
                l.num
            ));
        }
        v
    };
    if values.is_empty() {
        return Err(format!("{at}: no values"));
    }
    if values.len() > MAX_AXIS_VALUES {
        return Err(format!(
            "{at}: {} values; at most {MAX_AXIS_VALUES}",
            values.len()
        ));
    }
    Ok(values)
}

/// Zipped groups of axes: (axis indices, length), in order of first appearance.
fn dims(axes: &[Axis]) -> Result<Vec<(Vec<usize>, usize)>, String> {
    let mut out: Vec<(Option<String>, Vec<usize>, usize)> = Vec::new();
    for (i, a) in axes.iter().enumerate() {
        let n = a.values.len();
        match out.iter_mut().find(|d| d.0.is_some() && d.0 == a.group) {
            Some(d) => {
                if d.2 != n {
                    return Err(format!(
                        "axis '{}' has {n} values but the other axes of group '{}' have {}: \
                         zipped axes need equal lengths",
                        a.key,
                        a.group.as_deref().unwrap_or_default(),
                        d.2
                    ));
                }
                d.1.push(i);
            }
            None => out.push((a.group.clone(), vec![i], n)),
        }
    }
    Ok(out.into_iter().map(|d| (d.1, d.2)).collect())
}

/// Value index per axis of point `id` (mixed radix over the groups, the first slowest).
fn indices(dims: &[(Vec<usize>, usize)], n_axes: usize, mut id: u64) -> Vec<usize> {
    let mut idx = vec![0; n_axes];
    for (axes, len) in dims.iter().rev() {
        let k = (id % *len as u64) as usize;
        id /= *len as u64;
        for &a in axes {
            idx[a] = k;
        }
    }
    idx
}

/// A plan in memory: the manifest, the base config and its text.
pub struct Plan {
    /// The manifest.
    pub manifest: SweepManifest,
    /// The base configuration every point starts from.
    pub base: Config,
    /// base.toml.
    pub base_text: String,
}

impl Plan {
    /// Reads a sweep file and expands it (every axis value checked against the base config).
    pub fn from_file(path: &Path) -> Result<Plan, UsageError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError::new(format!("sweep file '{}': {e}", path.display())))?;
        Plan::from_text(&text, path)
    }

    /// [`Plan::from_file`] on text already read from `path` (named in errors and the
    /// manifest; its folder anchors a relative `sweep.base`).
    pub fn from_text(text: &str, path: &Path) -> Result<Plan, UsageError> {
        let origin = format!("sweep file '{}'", path.display());
        let dir = path.parent().unwrap_or(Path::new(""));
        let file: SweepFile = toml::from_str(text)
            .map_err(|e| UsageError::new(format!("{origin}: {}", e.to_string().trim_end())))?;
        let s = &file.sweep;
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(UsageError::new(format!(
                "{origin}: sweep.name = \"{}\": use letters, digits, '-', '_' or '.' (it names \
                 the results folder)",
                s.name
            )));
        }
        let base_path = s.base.as_ref().map(|b| dir.join(b));
        let mut base = Config::load_with(base_path.as_deref(), &s.set)
            .map_err(|e| UsageError::new(format!("{origin}: base: {e}")))?;
        base.workload.seed.get_or_insert(s.seed);
        // Frozen: the device, array and baselines written out inline and the model's digest,
        // so every shard runs what the files held at plan time.
        let base = base
            .frozen_sources()
            .map_err(|e| UsageError::new(format!("{origin}: base: {e}")))?;
        let mut axes = Vec::new();
        for (i, a) in file.axis.iter().enumerate() {
            let at = format!("{origin}: axis {} ('{}')", i + 1, a.key);
            crate::config::check_key(&a.key).map_err(|e| UsageError::new(format!("{at}: {e}")))?;
            if axes.iter().any(|x: &Axis| x.key == a.key) {
                return Err(UsageError::new(format!("{at}: the key is swept twice")));
            }
            let values = expand_axis(a, &at).map_err(UsageError::new)?;
            axes.push(Axis {
                key: a.key.clone(),
                values: values
                    .iter()
                    .map(|v| serde_json::to_value(v).expect("a TOML value is JSON"))
                    .collect(),
                group: a.group.clone(),
            });
        }
        let dims = dims(&axes).map_err(|e| UsageError::new(format!("{origin}: {e}")))?;
        let mut points: u64 = 1;
        for (_, n) in &dims {
            points = points.saturating_mul(*n as u64);
        }
        if points > MAX_POINTS {
            return Err(UsageError::new(format!(
                "{origin}: {points} points; a plan holds at most {MAX_POINTS} (split the sweep)"
            )));
        }
        // Every value (every zipped tuple) must make a valid config on the base.
        for (group, n) in &dims {
            for k in 0..*n {
                if crate::guard::interrupted() {
                    return Err(crate::guard::stopped());
                }
                let set: Vec<(&str, toml::Value)> = group
                    .iter()
                    .map(|&a| (axes[a].key.as_str(), to_toml(&axes[a].values[k])))
                    .collect();
                let refs: Vec<(&str, &toml::Value)> = set.iter().map(|(k, v)| (*k, v)).collect();
                base.with_values(&refs)
                    .map_err(|e| UsageError::new(format!("{origin}: {e}")))?;
            }
        }
        let base_text = toml::to_string(&base).expect("a config serializes");
        let mut manifest = SweepManifest {
            schema_version: SCHEMA_VERSION,
            cramulator_version: env!("CARGO_PKG_VERSION").to_owned(),
            name: s.name.clone(),
            sweep_file: path.display().to_string(),
            plan_hash: String::new(),
            seed: s.seed,
            points,
            axes,
            files: PLAN_FILES.iter().map(|f| (*f).to_owned()).collect(),
        };
        manifest.plan_hash = plan_hash(&manifest, &base_text);
        Ok(Plan {
            manifest,
            base,
            base_text,
        })
    }

    /// Reads a plan folder (manifest.json and base.toml; plan.jsonl is checked by `run`).
    pub fn read(dir: &Path) -> Result<Plan, UsageError> {
        let m = dir.join("manifest.json");
        let text = std::fs::read_to_string(&m).map_err(|e| {
            UsageError::new(format!(
                "'{}': {e} (is '{}' a folder written by `cramulator sweep plan`?)",
                m.display(),
                dir.display()
            ))
        })?;
        let manifest: SweepManifest = serde_json::from_str(&text)
            .map_err(|e| UsageError::new(format!("'{}': {e}", m.display())))?;
        let b = dir.join("base.toml");
        let base_text = std::fs::read_to_string(&b)
            .map_err(|e| UsageError::new(format!("'{}': {e}", b.display())))?;
        if plan_hash(&manifest, &base_text) != manifest.plan_hash {
            return Err(UsageError::new(format!(
                "'{}': base.toml or the axes changed since `sweep plan` (hash mismatch); plan \
                 again",
                dir.display()
            )));
        }
        let base = Config::read(&b)?;
        Ok(Plan {
            manifest,
            base,
            base_text,
        })
    }

    /// The plan line of point `id`.
    pub fn point(&self, id: u64) -> PlanPoint {
        let axes = &self.manifest.axes;
        let d = dims(axes).expect("a checked plan");
        let idx = indices(&d, axes.len(), id);
        PlanPoint {
            id,
            seed: point_seed(self.manifest.seed, id),
            set: axes
                .iter()
                .zip(idx)
                .map(|(a, k)| (a.key.clone(), a.values[k].clone()))
                .collect(),
        }
    }

    /// Writes plan.jsonl, base.toml and manifest.json into `dir` (each atomically).
    pub fn write(&self, dir: &Path) -> Result<(), CliError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let axes = &self.manifest.axes;
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
        write_atomic(&dir.join("plan.jsonl"), |w| {
            let mut line = String::new();
            for id in 0..self.manifest.points {
                if id % 65_536 == 0 && crate::guard::interrupted() {
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
                    point_seed(self.manifest.seed, id)
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
        })?;
        write_atomic(&dir.join("base.toml"), |w| {
            w.write_all(self.base_text.as_bytes())
        })?;
        let json = serde_json::to_string_pretty(&self.manifest).expect("JSON") + "\n";
        write_atomic(&dir.join("manifest.json"), |w| w.write_all(json.as_bytes()))
    }
}

const PLAN_FILES: [&str; 3] = ["manifest.json", "base.toml", "plan.jsonl"];

fn plan_hash(m: &SweepManifest, base_text: &str) -> String {
    let axes = serde_json::to_string(&m.axes).expect("JSON");
    let text = format!("{base_text}\n{axes}\n{}\n{}", m.seed, m.points);
    format!("{:016x}", fnv1a64(text.as_bytes()))
}

fn to_toml(v: &serde_json::Value) -> toml::Value {
    match v {
        serde_json::Value::Number(n) if n.is_i64() => toml::Value::Integer(n.as_i64().unwrap_or(0)),
        _ => toml::Value::deserialize(v.clone()).unwrap_or(toml::Value::String(v.to_string())),
    }
}

/// Writes `path` through a temporary file beside it and a rename.
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    let mut w = std::io::BufWriter::new(file);
    let written = f(&mut w).and_then(|()| w.flush());
    drop(w);
    // A failed or interrupted write leaves nothing behind.
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        if crate::guard::interrupted() {
            return Err(crate::guard::stopped().into());
        }
        return Err(io_err(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, e)
    })
}

fn plan_cmd(a: &PlanArgs) -> Result<Outcome, CliError> {
    let t = Instant::now();
    let plan = Plan::from_file(&a.sweep)?;
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
        return Err(CliError::usage(format!(
            "'{}' holds another plan ({}, this one is {}) with shards; give another --out or \
             remove the folder",
            dir.display(),
            old.manifest.plan_hash,
            plan.manifest.plan_hash
        )));
    }
    plan.write(&dir)?;
    let m = &plan.manifest;
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
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    let _ = writeln!(
        s,
        "next: cramulator sweep run {d} [--shard I/N]; cramulator sweep merge {d}",
        d = dir.display()
    );
    emit(&s)?;
    Ok(Outcome::Success)
}

// ----- running a shard -------------------------------------------------------------------

/// `I/N` or `auto`.
fn parse_shard(s: &str) -> Result<(u64, u64), CliError> {
    let (i, n) = if s == "auto" {
        let var = |k: &str| std::env::var(k).ok();
        match (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
            (Some(i), Some(n)) => (i, n),
            _ => {
                return Err(CliError::usage(
                    "--shard auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set \
                     (not in a Slurm job array); give --shard I/N",
                ));
            }
        }
    } else {
        match s.split_once('/') {
            Some((i, n)) => (i.to_owned(), n.to_owned()),
            None => {
                return Err(CliError::usage(format!(
                    "--shard {s}: expected I/N (e.g. 3/64) or auto"
                )));
            }
        }
    };
    match (i.trim().parse::<u64>(), n.trim().parse::<u64>()) {
        (Ok(i), Ok(n)) if n >= 1 && i < n => Ok((i, n)),
        _ => Err(CliError::usage(format!(
            "--shard {s} (= {i}/{n}): expected I/N with 0 ≤ I < N"
        ))),
    }
}

/// File name of shard `i` of `n` (finished; `.part` while running).
fn shard_name(i: u64, n: u64) -> String {
    format!("shard-{i:04}-of-{n:04}.jsonl")
}

/// Shard `(i, n)` of a shard file's name (`shard-IIII-of-NNNN.jsonl[.part]`).
fn shard_of_name(path: &Path) -> Option<(u64, u64)> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("shard-")?;
    let (i, rest) = rest.split_once("-of-")?;
    let n = rest.split('.').next()?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// The lock file of a shard file.
fn lock_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    path.with_file_name(format!("{}.lock", name.trim_end_matches(".part")))
}

/// A shard file as read back: its header, its records with their line numbers, and every
/// line that is not a record (with why). A last line without its newline (a writer killed
/// mid-line) is neither: it is `torn`.
struct ShardFile {
    header: Option<ShardHeader>,
    records: Vec<(usize, PointRecord)>,
    bad: Vec<(usize, String)>,
    torn: bool,
}

/// Reads a shard file line by line; nothing after a bad line is lost.
fn read_shard(path: &Path) -> Result<ShardFile, CliError> {
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
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
            .map_err(|e| io_err(path, e))?;
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
type Dropped = Vec<(usize, String)>;

/// The records of `f` this shard keeps (its own points, each once; failed ones too unless
/// `retry_failed`) and the lines it drops, with why.
fn keep_records(
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

fn run_cmd(a: &RunShardArgs) -> Result<Outcome, CliError> {
    let plan = Plan::read(&a.dir)?;
    let (shard, of) = parse_shard(&a.shard)?;
    let pool = crate::guard::pool(a.threads, "--threads")?;
    let m = &plan.manifest;
    let shards = a.dir.join("shards");
    std::fs::create_dir_all(&shards).map_err(|e| io_err(&shards, e))?;
    let done_path = shards.join(shard_name(shard, of));
    let part_path = shards.join(format!("{}.part", shard_name(shard, of)));
    // One process per shard: a second one is told who runs it.
    let _lock = crate::lock::Lock::acquire(&lock_of(&done_path)).map_err(|e| {
        CliError::usage(format!("shard {shard}/{of} of '{}': {e}", a.dir.display()))
    })?;
    let header = ShardHeader {
        plan_hash: m.plan_hash.clone(),
        shard,
        of,
    };
    let mine: Vec<u64> = (shard..m.points).step_by(of as usize).collect();
    // Resume from the finished file, else the part file: keep its good records; a
    // finished shard with every point is done; otherwise the part file is rewritten without
    // the rest (bad, repeated or foreign lines, a torn tail, retried points), and the
    // missing points run.
    let earlier = [&done_path, &part_path].into_iter().find(|p| p.exists());
    let mut finished = BTreeSet::new();
    let mut file = if let Some(path) = earlier {
        let f = read_shard(path)?;
        if let Some(h) = f.header.as_ref().filter(|h| **h != header) {
            return Err(CliError::usage(format!(
                "'{}' belongs to another plan or sharding ({} shard {}/{}, this is {} shard \
                 {shard}/{of}); remove it",
                path.display(),
                h.plan_hash,
                h.shard,
                h.of,
                m.plan_hash
            )));
        }
        let (kept, dropped) = keep_records(&f, shard, of, m.points, a.retry_failed);
        let whole = f.header.is_some() && dropped.is_empty() && !f.torn;
        if *path == done_path && whole && kept.len() == mine.len() {
            emit(&format!(
                "shard {shard}/{of}: all {} points already done ({})\n",
                mine.len(),
                done_path.display()
            ))?;
            return Ok(Outcome::Success);
        }
        for (n, why) in &dropped {
            eprintln!("{}:{n}: {why}; dropped", path.display());
        }
        finished.extend(kept.iter().map(|r| r.id));
        if *path == done_path || !whole {
            write_atomic(&part_path, |w| {
                writeln!(w, "{}", serde_json::to_string(&header).expect("JSON"))?;
                for r in &kept {
                    writeln!(w, "{}", serde_json::to_string(r).expect("JSON"))?;
                }
                Ok(())
            })?;
            if *path == done_path {
                std::fs::remove_file(&done_path).map_err(|e| io_err(&done_path, e))?;
            }
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&part_path)
            .map_err(|e| io_err(&part_path, e))?
    } else {
        let mut f = std::fs::File::create(&part_path).map_err(|e| io_err(&part_path, e))?;
        writeln!(f, "{}", serde_json::to_string(&header).expect("JSON"))
            .map_err(|e| io_err(&part_path, e))?;
        f
    };
    let todo: Vec<u64> = mine
        .iter()
        .copied()
        .filter(|id| !finished.contains(id))
        .collect();
    let t0 = Instant::now();
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} points  {per_sec}  ETA {eta}",
        )
        .expect("a valid template"),
    );
    let cache = Caches::default();
    let writer = Mutex::new((&mut file, None::<std::io::Error>));
    let failed = std::sync::atomic::AtomicU64::new(0);
    let written = std::sync::atomic::AtomicU64::new(0);
    pool.install(|| {
        todo.par_iter().for_each(|&id| {
            if crate::guard::interrupted() {
                return;
            }
            let rec = run_point(&plan, id, &cache);
            if rec.status != "ok" {
                // A point stopped by SIGINT is not recorded: the re-run runs it.
                if crate::guard::interrupted() {
                    return;
                }
                failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let line = serde_json::to_string(&rec).expect("a record is JSON") + "\n";
            let mut w = writer.lock().expect("the writer lock is not poisoned");
            if w.1.is_none()
                && let Err(e) = w.0.write_all(line.as_bytes())
            {
                w.1 = Some(e);
            }
            drop(w);
            written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            bar.inc(1);
        });
    });
    bar.finish_and_clear();
    let (_, err) = writer
        .into_inner()
        .expect("the writer lock is not poisoned");
    if let Some(e) = err {
        return Err(io_err(&part_path, e));
    }
    file.sync_all().map_err(|e| io_err(&part_path, e))?;
    drop(file);
    if crate::guard::interrupted() {
        let kept = finished.len() as u64 + written.into_inner();
        eprintln!(
            "shard {shard}/{of}: interrupted; {kept} finished point(s) kept in {}; run the same \
             command again to run the rest",
            part_path.display()
        );
        return Ok(Outcome::Interrupted);
    }
    std::fs::rename(&part_path, &done_path).map_err(|e| io_err(&done_path, e))?;
    let secs = t0.elapsed().as_secs_f64();
    let failed = failed.into_inner();
    emit(&format!(
        "shard {shard}/{of}: {} points run in {secs:.2} s ({:.1} points/s, {} threads){}{} → {}\n",
        todo.len(),
        todo.len() as f64 / secs.max(1e-9),
        pool.current_num_threads(),
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

/// Runs point `id`: the base config with the point's values and seed.
pub fn run_point(plan: &Plan, id: u64, cache: &Caches) -> PointRecord {
    let p = plan.point(id);
    let values: Vec<(String, toml::Value)> =
        p.set.iter().map(|(k, v)| (k.clone(), to_toml(v))).collect();
    let mut refs: Vec<(&str, &toml::Value)> = values.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let seed = toml::Value::Integer(p.seed as i64);
    if !p.set.contains_key("run.seed") {
        refs.push(("run.seed", &seed));
    }
    let result = plan
        .base
        .with_values(&refs)
        .and_then(|c| crate::run::evaluate(&c, Some(cache)));
    let (status, error, report) = match result {
        Ok(e) => (
            if e.ok { "ok" } else { "error" }.to_owned(),
            (!e.ok).then(|| "functional run not bit-exact".to_owned()),
            Some(e.report),
        ),
        Err(e) => ("error".to_owned(), Some(e.to_string()), None),
    };
    PointRecord {
        id,
        // An axis over run.seed overrides the derived seed.
        seed: p
            .set
            .get("run.seed")
            .and_then(|v| v.as_u64())
            .unwrap_or(p.seed),
        set: p.set,
        status,
        error,
        report,
    }
}

// ----- merging ---------------------------------------------------------------------------

/// `a,b,c-d` for sorted indices.
fn ranges(ix: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ix.len() {
        let mut j = i;
        while j + 1 < ix.len() && ix[j + 1] == ix[j] + 1 {
            j += 1;
        }
        out.push(if j == i {
            ix[i].to_string()
        } else {
            format!("{}-{}", ix[i], ix[j])
        });
        i = j + 1;
    }
    out.join(",")
}

fn merge_cmd(a: &MergeArgs) -> Result<Outcome, CliError> {
    let plan = Plan::read(&a.dir)?;
    let m = &plan.manifest;
    let shards = a.dir.join("shards");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&shards) {
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
    // Merge holds every record at once: about twice their JSON.
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    crate::guard::MemoryEstimate {
        records_bytes: bytes.saturating_mul(2),
        advice: "merge on a machine with more memory, or give a larger --max-memory",
        ..Default::default()
    }
    .check(&format!("merging sweep {}", m.name))?;
    // Every problem, with the file and line it is on; the shards it concerns are re-run.
    let mut problems: Vec<String> = Vec::new();
    let mut rerun: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut by_id: BTreeMap<u64, (PointRecord, String)> = BTreeMap::new();
    let mut ns = BTreeSet::new();
    for f in &files {
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
            return Err(CliError::usage(format!(
                "'{shown}' belongs to another plan ({}, this one is {}); remove it",
                h.plan_hash, m.plan_hash
            )));
        }
        ns.insert(h.of);
        if let Some(holder) = crate::lock::Lock::holder(&lock_of(f)) {
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
    if ns.len() > 1 {
        problems.push(format!(
            "shard files of different N ({}) are mixed in '{}': keep one sharding",
            ns.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
            shards.display()
        ));
    }
    let missing: Vec<u64> = (0..m.points).filter(|id| !by_id.contains_key(id)).collect();
    if !missing.is_empty() || !problems.is_empty() {
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
            if files.is_empty() {
                let _ = writeln!(
                    s,
                    " (no shard files: run `cramulator sweep run {}` first)",
                    a.dir.display()
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
                    a.dir.display(),
                    ranges(&sh)
                );
            }
        }
        eprint!("{s}");
        return Ok(Outcome::Incomplete);
    }
    let records: Vec<PointRecord> = by_id.into_values().map(|(r, _)| r).collect();
    let csv = results_csv(m, &records)?;
    write_atomic(&a.dir.join("results.csv"), |w| w.write_all(&csv))?;
    write_atomic(&a.dir.join("results.jsonl"), |w| {
        for r in &records {
            w.write_all(serde_json::to_string(r).expect("JSON").as_bytes())?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    let summary = summary(m, &records);
    let json = serde_json::to_string_pretty(&summary).expect("JSON") + "\n";
    write_atomic(&a.dir.join("summary.json"), |w| {
        w.write_all(json.as_bytes())
    })?;
    let mut s = format!(
        "sweep {}: {} points merged from {} shard file(s) → {}/results.csv, results.jsonl, \
         summary.json\n",
        m.name,
        records.len(),
        files.len(),
        a.dir.display()
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
    emit(&s)?;
    Ok(Outcome::Success)
}

/// CRAM metric columns of results.csv.
pub const CRAM_COLUMNS: [&str; 10] = [
    "cram_energy_pj",
    "cram_compute_pj",
    "cram_data_movement_pj",
    "cram_latency_s",
    "cram_throughput_per_s",
    "cram_tops_per_w",
    "cram_edp_j_s",
    "cram_area_mm2",
    "cram_utilization",
    "cram_co2e_g_per_inference",
];

/// Metric columns of results.csv per baseline, each prefixed `<baseline>_`.
pub const BASELINE_COLUMNS: [&str; 6] = [
    "energy_pj",
    "latency_s",
    "throughput_per_s",
    "energy_ratio",
    "speedup",
    "throughput_ratio",
];

/// results.csv: one row per point, axis values then metrics (blank for a failed point).
fn results_csv(m: &SweepManifest, records: &[PointRecord]) -> Result<Vec<u8>, CliError> {
    let mut baselines: Vec<String> = Vec::new();
    for r in records {
        for b in r.report.iter().flat_map(|r| &r.baselines) {
            if !baselines.contains(&b.name) {
                baselines.push(b.name.clone());
            }
        }
    }
    let mut header: Vec<String> = vec!["id".into(), "seed".into()];
    header.extend(m.axes.iter().map(|a| a.key.clone()));
    header.extend(
        [
            "status",
            "error",
            "model",
            "macs",
            "images",
            "bit_exact_images",
            "accuracy",
        ]
        .map(String::from),
    );
    header.extend(CRAM_COLUMNS.map(String::from));
    for b in &baselines {
        for c in BASELINE_COLUMNS {
            header.push(format!("{b}_{c}"));
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| CliError::usage(format!("results.csv: {e}"));
    w.write_record(&header).map_err(csv_err)?;
    let num = |x: f64| format!("{x}");
    for r in records {
        let mut row: Vec<String> = vec![r.id.to_string(), r.seed.to_string()];
        row.extend(m.axes.iter().map(|a| match r.set.get(&a.key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }));
        row.push(r.status.clone());
        row.push(r.error.clone().unwrap_or_default());
        match &r.report {
            Some(rep) => {
                let c = &rep.cram.metrics;
                let cr = &rep.cram;
                row.push(rep.workload.model.clone());
                row.push(rep.workload.macs.to_string());
                row.push(cr.images.to_string());
                row.push(
                    cr.bit_exact_images
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                );
                row.push(
                    cr.correct
                        .map(|k| num(k as f64 / cr.images as f64))
                        .unwrap_or_default(),
                );
                row.extend(
                    [
                        c.energy_pj,
                        c.compute_pj,
                        c.data_movement_pj,
                        c.latency_s,
                        c.throughput_per_s,
                        c.tops_per_w,
                        c.edp_j_s,
                        c.area_mm2.unwrap_or(f64::NAN),
                        c.utilization,
                        c.co2e_g_per_inference,
                    ]
                    .map(num),
                );
                for name in &baselines {
                    match rep.baselines.iter().find(|b| &b.name == name) {
                        Some(b) => row.extend(
                            [
                                b.metrics.energy_pj,
                                b.metrics.latency_s,
                                b.metrics.throughput_per_s,
                                b.versus_cram.energy,
                                b.versus_cram.speedup,
                                b.versus_cram.throughput,
                            ]
                            .map(num),
                        ),
                        None => {
                            row.extend(std::iter::repeat_n(String::new(), BASELINE_COLUMNS.len()))
                        }
                    }
                }
            }
            None => row.extend(std::iter::repeat_n(
                String::new(),
                5 + CRAM_COLUMNS.len() + BASELINE_COLUMNS.len() * baselines.len(),
            )),
        }
        w.write_record(&row).map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| CliError::usage(format!("results.csv: {e}")))
}

/// summary.json.
#[derive(Debug, Serialize)]
struct Summary {
    name: String,
    plan_hash: String,
    points: u64,
    ok: u64,
    failed: u64,
    failed_ids: Vec<u64>,
    axes: Vec<Axis>,
    best: Vec<Best>,
    ranges: BTreeMap<String, [f64; 2]>,
}

/// The point with the lowest value of a metric.
#[derive(Debug, Serialize)]
struct Best {
    metric: String,
    id: u64,
    value: f64,
    set: serde_json::Map<String, serde_json::Value>,
}

/// A metric read off a report.
type Metric = fn(&RunReport) -> f64;

fn summary(m: &SweepManifest, records: &[PointRecord]) -> Summary {
    let ok: Vec<&PointRecord> = records.iter().filter(|r| r.status == "ok").collect();
    let metrics: [(&str, Metric); 3] = [
        ("energy_pj", |r| r.cram.metrics.energy_pj),
        ("latency_s", |r| r.cram.metrics.latency_s),
        ("edp_j_s", |r| r.cram.metrics.edp_j_s),
    ];
    let mut best = Vec::new();
    let mut ranges = BTreeMap::new();
    for (name, f) in metrics {
        let with: Vec<(&PointRecord, f64)> = ok
            .iter()
            .filter_map(|r| r.report.as_ref().map(|rep| (*r, f(rep))))
            .collect();
        if let Some((r, v)) = with
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.id.cmp(&b.0.id)))
        {
            best.push(Best {
                metric: name.to_owned(),
                id: r.id,
                value: *v,
                set: r.set.clone(),
            });
            let hi = with.iter().map(|x| x.1).fold(f64::MIN, f64::max);
            ranges.insert(format!("cram_{name}"), [*v, hi]);
        }
    }
    let failed_ids: Vec<u64> = records
        .iter()
        .filter(|r| r.status != "ok")
        .map(|r| r.id)
        .collect();
    Summary {
        name: m.name.clone(),
        plan_hash: m.plan_hash.clone(),
        points: m.points,
        ok: ok.len() as u64,
        failed: failed_ids.len() as u64,
        failed_ids,
        axes: m.axes.clone(),
        best,
        ranges,
    }
}

// ----- Slurm -----------------------------------------------------------------------------

fn sbatch_cmd(a: &SbatchArgs) -> Result<Outcome, CliError> {
    let plan = Plan::read(&a.dir)?;
    let m = &plan.manifest;
    let shards = a.shards.unwrap_or(m.points.clamp(1, 4) as u32);
    if shards == 0 || shards > 10_000 {
        return Err(CliError::usage(format!(
            "--shards {}: must be in 1..=10000 (Slurm's MaxArraySize is often 1001; check \
             `scontrol show config`)",
            shards
        )));
    }
    if u64::from(shards) > m.points {
        return Err(CliError::usage(format!(
            "--shards {}: the plan has {} point(s), so at most {} shard(s) have work",
            shards, m.points, m.points
        )));
    }
    let most = crate::guard::MAX_THREADS as u32;
    if a.cpus == 0 || a.cpus > most {
        return Err(CliError::usage(format!(
            "--cpus {}: must be in 1..={most} (each task's `sweep run --threads`)",
            a.cpus
        )));
    }
    if a.max_running == Some(0) {
        return Err(CliError::usage(
            "--max-running 0: must be at least 1 (tasks running at once)",
        ));
    }
    slurm_time(&a.time).map_err(|why| CliError::usage(format!("--time {:?}: {why}", a.time)))?;
    let names = [("--partition", &a.partition), ("--account", &a.account)];
    for (flag, v) in names {
        if let Some(v) = v
            && (v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.,-".contains(c)))
        {
            return Err(CliError::usage(format!(
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
            return Err(CliError::usage(format!(
                "--mem {mem:?}: expected Slurm's form, a number with an optional K, M, G or T \
                 (e.g. 4G or 4000M)"
            )));
        }
    }
    // Jobs run from wherever Slurm starts them: every path in the scripts is absolute.
    let absolute = |p: &Path, what: &str| {
        std::path::absolute(p)
            .map_err(|e| CliError::usage(format!("{what} '{}': {e}", p.display())))
    };
    let bin = match &a.bin {
        Some(b) => absolute(b, "--bin")?,
        None => std::env::current_exe()
            .map_err(|e| CliError::usage(format!("locating this binary: {e}")))?,
    };
    let plan_dir = absolute(&a.dir, "plan folder")?;
    // `#SBATCH --output=` takes the path unquoted.
    if plan_dir.to_str().is_none_or(|p| {
        p.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
    }) {
        return Err(CliError::usage(format!(
            "plan folder '{}': a Slurm directive cannot hold a path with spaces or quotes; \
             move the plan to a plainer path",
            plan_dir.display()
        )));
    }
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let dir = q(&plan_dir);
    let logs = plan_dir.join("slurm").join("logs");
    let mut part = String::new();
    for (key, v) in [
        ("partition", &a.partition),
        ("account", &a.account),
        ("mem", &a.mem),
    ] {
        if let Some(v) = v {
            let _ = writeln!(part, "#SBATCH --{key}={v}");
        }
    }
    let array = format!(
        "#!/bin/bash\n# cramulator sweep {name}: {points} points in {n} shards (plan {hash}).\n\
         # Submit with slurm/submit.sh (this array, then the merge job after it).\n\
         #SBATCH --job-name=cramulator-{name}\n\
         #SBATCH --array=0-{last}{max}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --time={time}\n\
         #SBATCH --output={logs}/%A_%a.out\n{part}\
         set -euo pipefail\n\
         exec {bin} sweep run {dir} \\\n  --shard \"${{SLURM_ARRAY_TASK_ID}}/${{SLURM_ARRAY_TASK_COUNT}}\" \\\n  --threads \"${{SLURM_CPUS_PER_TASK}}\"\n",
        name = m.name,
        points = m.points,
        n = shards,
        hash = m.plan_hash,
        last = shards - 1,
        max = a.max_running.map(|x| format!("%{x}")).unwrap_or_default(),
        cpus = a.cpus,
        time = a.time,
        logs = logs.display(),
        bin = q(&bin),
    );
    let merge = format!(
        "#!/bin/bash\n# Merges the shards of cramulator sweep {name} once the array is done.\n\
         #SBATCH --job-name=cramulator-{name}-merge\n\
         #SBATCH --cpus-per-task=1\n\
         #SBATCH --time=00:10:00\n\
         #SBATCH --output={logs}/merge_%j.out\n{part}\
         set -euo pipefail\n\
         exec {bin} sweep merge {dir}\n",
        name = m.name,
        logs = logs.display(),
        bin = q(&bin),
    );
    let slurm = plan_dir.join("slurm");
    let submit = format!(
        "#!/bin/bash\n# Submits the array, then the merge job to run after every task succeeded.\n\
         set -euo pipefail\n\
         JID=$(sbatch --parsable {array})\n\
         MID=$(sbatch --parsable --dependency=afterok:\"${{JID%%;*}}\" {merge})\n\
         echo \"array job $JID, merge job $MID\"\n",
        array = q(&slurm.join("array.sbatch")),
        merge = q(&slurm.join("merge.sbatch")),
    );
    std::fs::create_dir_all(&logs).map_err(|e| io_err(&logs, e))?;
    for (name, text) in [
        ("array.sbatch", &array),
        ("merge.sbatch", &merge),
        ("submit.sh", &submit),
    ] {
        write_atomic(&slurm.join(name), |w| w.write_all(text.as_bytes()))?;
    }
    emit(&format!(
        "{array}\n# The merge job ({}), submitted after the array by {}:\n#   sbatch --dependency=afterok:$JID {}\n",
        slurm.join("merge.sbatch").display(),
        slurm.join("submit.sh").display(),
        slurm.join("merge.sbatch").display()
    ))?;
    Ok(Outcome::Success)
}

/// Checks a Slurm time limit: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS.
fn slurm_time(t: &str) -> Result<(), &'static str> {
    let form = "expected minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS";
    let num = |p: &str| !p.is_empty() && p.len() <= 6 && p.chars().all(|c| c.is_ascii_digit());
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, t),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let ok = days.is_none_or(num) && parts.iter().all(|p| num(p)) && parts.len() <= 3;
    if ok { Ok(()) } else { Err(form) }
}

/// A word for the shell, quoted when it needs to be.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_seeds_differ_and_are_stable() {
        let s: BTreeSet<u64> = (0..1000).map(|id| point_seed(7, id)).collect();
        assert_eq!(s.len(), 1000);
        assert_eq!(point_seed(7, 3), point_seed(7, 3));
        assert_ne!(point_seed(7, 3), point_seed(8, 3));
    }

    #[test]
    fn mixed_radix_with_zip_groups() {
        let ax = |key: &str, n: usize, group: Option<&str>| Axis {
            key: key.into(),
            values: (0..n).map(|i| serde_json::json!(i)).collect(),
            group: group.map(String::from),
        };
        let axes = [
            ax("a", 2, None),
            ax("b", 3, Some("g")),
            ax("c", 3, Some("g")),
        ];
        let d = dims(&axes).unwrap();
        assert_eq!(d.len(), 2);
        let all: Vec<Vec<usize>> = (0..6).map(|id| indices(&d, 3, id)).collect();
        assert_eq!(all[0], [0, 0, 0]);
        assert_eq!(all[1], [0, 1, 1]);
        assert_eq!(all[3], [1, 0, 0]);
        assert_eq!(all[5], [1, 2, 2]);
        let bad = [ax("b", 3, Some("g")), ax("c", 2, Some("g"))];
        assert!(dims(&bad).unwrap_err().contains("equal lengths"));
    }

    #[test]
    fn ranges_and_logs_expand_exactly() {
        let spec = |t: &str| -> AxisSpec { toml::from_str(&format!("key = \"k\"\n{t}")).unwrap() };
        let v = expand_axis(
            &spec("range = { start = 0.1, stop = 0.5, step = 0.1 }"),
            "x",
        )
        .unwrap();
        assert_eq!(
            v,
            [0.1, 0.2, 0.3, 0.4, 0.5].map(toml::Value::Float).to_vec()
        );
        let v = expand_axis(&spec("range = { start = 2, stop = 8, step = 2 }"), "x").unwrap();
        assert_eq!(v, [2, 4, 6, 8].map(toml::Value::Integer).to_vec());
        let v = expand_axis(&spec("log = { start = 128, stop = 1024, num = 4 }"), "x").unwrap();
        assert_eq!(v, [128, 256, 512, 1024].map(toml::Value::Integer).to_vec());
        let v = expand_axis(&spec("log = { start = 1e-3, stop = 1.0, num = 4 }"), "x").unwrap();
        assert_eq!(v, [1e-3, 1e-2, 1e-1, 1.0].map(toml::Value::Float).to_vec());
        let e = expand_axis(
            &spec("values = [1]\nlog = { start = 1, stop = 2, num = 2 }"),
            "x",
        );
        assert!(e.unwrap_err().contains("exactly one"));
        let e = expand_axis(&spec("range = { start = 3, stop = 1, step = 1 }"), "x");
        assert!(e.unwrap_err().contains("stop ≥ start"));
    }

    #[test]
    fn ranges_print_compactly() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(ranges(&[]), "");
    }
}
