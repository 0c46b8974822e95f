//! Design-space sweeps: a sweep file (a base run configuration plus axes over any config key)
//! expanded into a deterministic plan, run in shards on rayon, merged, and handed to Slurm.
//!
//! The tool never schedules jobs itself (docs/model.md §5.4): a shard only knows "I am
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

use crate::records::*;
use std::collections::BTreeMap;
use std::path::Path;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Deserialize;

use crate::error::Error;
use crate::experiment::config::Config;
use crate::experiment::options::Options;
use crate::experiment::run::Caches;
use crate::model::limits::{Limits, Stop};
use crate::records::{RunReport, SCHEMA_VERSION, fnv1a64};

// ----- the sweep file --------------------------------------------------------------------

/// A sweep file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SweepFile {
    sweep: SweepSection,
    #[serde(default)]
    axis: Vec<AxisSpec>,
}

/// `[sweep]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SweepSection {
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

pub(crate) fn one() -> u64 {
    1
}

/// `[[axis]]`: a config key and its values (exactly one of `values`, `range`, `log`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AxisSpec {
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
pub(crate) struct RangeSpec {
    start: toml::Value,
    stop: toml::Value,
    step: toml::Value,
}

/// `log = { start, stop, num }`: num values evenly spaced in log from start to stop.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSpec {
    start: toml::Value,
    stop: toml::Value,
    num: usize,
}

/// Most points a plan may hold.
pub const MAX_POINTS: u64 = 50_000_000;
/// Most values one axis may hold.
pub(crate) const MAX_AXIS_VALUES: usize = 1_000_000;

/// `run.seed` of point `id`: ChaCha8 seeded by the sweep seed, on stream `id`; 63 bits, as a
/// TOML integer holds.
pub fn point_seed(global: u64, id: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(global);
    rng.set_stream(id);
    rng.next_u64() >> 1
}

/// A number rounded to 12 significant digits (so 0.1 + 0.2 steps print as 0.3).
pub(crate) fn round12(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}")
        .parse()
        .expect("a formatted float parses")
}

/// The values of one axis spec; errors name the axis.
pub(crate) fn expand_axis(a: &AxisSpec, at: &str) -> Result<Vec<toml::Value>, String> {
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
pub(crate) fn dims(axes: &[Axis]) -> Result<Vec<(Vec<usize>, usize)>, String> {
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
pub(crate) fn indices(dims: &[(Vec<usize>, usize)], n_axes: usize, mut id: u64) -> Vec<usize> {
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
    pub fn from_file(path: &Path, stop: Stop) -> Result<Plan, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("sweep file '{}': {e}", path.display())))?;
        Plan::from_text(&text, path, stop)
    }

    /// [`Plan::from_file`] on text already read from `path` (named in errors and the
    /// manifest; its folder anchors a relative `sweep.base`).
    pub fn from_text(text: &str, path: &Path, stop: Stop) -> Result<Plan, Error> {
        let origin = format!("sweep file '{}'", path.display());
        let dir = path.parent().unwrap_or(Path::new(""));
        let file: SweepFile = toml::from_str(text)
            .map_err(|e| Error::usage(format!("{origin}: {}", e.to_string().trim_end())))?;
        let s = &file.sweep;
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(Error::usage(format!(
                "{origin}: sweep.name = \"{}\": use letters, digits, '-', '_' or '.' (it names \
                 the results folder)",
                s.name
            )));
        }
        let base_path = s.base.as_ref().map(|b| dir.join(b));
        let mut base = Config::load_with(base_path.as_deref(), &s.set)
            .map_err(|e| Error::usage(format!("{origin}: base: {e}")))?;
        base.workload.seed.get_or_insert(s.seed);
        // Frozen: the device, array and baselines written out inline and the model's digest,
        // so every shard runs what the files held at plan time.
        let base = base
            .frozen_sources()
            .map_err(|e| Error::usage(format!("{origin}: base: {e}")))?;
        let mut axes = Vec::new();
        for (i, a) in file.axis.iter().enumerate() {
            let at = format!("{origin}: axis {} ('{}')", i + 1, a.key);
            crate::experiment::config::check_key(&a.key)
                .map_err(|e| Error::usage(format!("{at}: {e}")))?;
            if axes.iter().any(|x: &Axis| x.key == a.key) {
                return Err(Error::usage(format!("{at}: the key is swept twice")));
            }
            let values = expand_axis(a, &at).map_err(Error::usage)?;
            axes.push(Axis {
                key: a.key.clone(),
                values: values
                    .iter()
                    .map(|v| serde_json::to_value(v).expect("a TOML value is JSON"))
                    .collect(),
                group: a.group.clone(),
            });
        }
        let dims = dims(&axes).map_err(|e| Error::usage(format!("{origin}: {e}")))?;
        let mut points: u64 = 1;
        for (_, n) in &dims {
            points = points.saturating_mul(*n as u64);
        }
        if points > MAX_POINTS {
            return Err(Error::usage(format!(
                "{origin}: {points} points; a plan holds at most {MAX_POINTS} (split the sweep)"
            )));
        }
        // Every value (every zipped tuple) must make a valid config on the base.
        for (group, n) in &dims {
            for k in 0..*n {
                stop.check()?;
                let set: Vec<(&str, toml::Value)> = group
                    .iter()
                    .map(|&a| (axes[a].key.as_str(), to_toml(&axes[a].values[k])))
                    .collect();
                let refs: Vec<(&str, &toml::Value)> = set.iter().map(|(k, v)| (*k, v)).collect();
                base.with_values(&refs)
                    .map_err(|e| Error::usage(format!("{origin}: {e}")))?;
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
    pub fn read(dir: &Path) -> Result<Plan, Error> {
        let m = dir.join("manifest.json");
        let text = std::fs::read_to_string(&m).map_err(|e| {
            Error::usage(format!(
                "'{}': {e} (is '{}' a folder written by `cramulator sweep plan`?)",
                m.display(),
                dir.display()
            ))
        })?;
        let manifest: SweepManifest = serde_json::from_str(&text)
            .map_err(|e| Error::usage(format!("'{}': {e}", m.display())))?;
        let b = dir.join("base.toml");
        let base_text = std::fs::read_to_string(&b)
            .map_err(|e| Error::usage(format!("'{}': {e}", b.display())))?;
        if plan_hash(&manifest, &base_text) != manifest.plan_hash {
            return Err(Error::usage(format!(
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
}

pub(crate) const PLAN_FILES: [&str; 3] = ["manifest.json", "base.toml", "plan.jsonl"];

pub(crate) fn plan_hash(m: &SweepManifest, base_text: &str) -> String {
    let axes = serde_json::to_string(&m.axes).expect("JSON");
    let text = format!("{base_text}\n{axes}\n{}\n{}", m.seed, m.points);
    format!("{:016x}", fnv1a64(text.as_bytes()))
}

pub(crate) fn to_toml(v: &serde_json::Value) -> toml::Value {
    match v {
        serde_json::Value::Number(n) if n.is_i64() => toml::Value::Integer(n.as_i64().unwrap_or(0)),
        _ => toml::Value::deserialize(v.clone()).unwrap_or(toml::Value::String(v.to_string())),
    }
}

/// Runs point `id`: the base config with the point's values and seed.
pub fn run_point(plan: &Plan, id: u64, cache: &Caches, limits: Limits) -> PointRecord {
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
        .and_then(|c| crate::experiment::run::evaluate(&c, Some(cache), limits));
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

/// CRAM metric columns of results.csv.
pub const CRAM_COLUMNS: [&str; 21] = [
    "cram_energy_pj",
    "cram_energy_array_pj",
    "cram_energy_macro_pj",
    "cram_energy_chip_pj",
    "cram_compute_pj",
    "cram_data_movement_pj",
    "cram_static_pj",
    "cram_latency_s",
    "cram_throughput_per_s",
    "cram_tops_per_w",
    "cram_edp_j_s",
    "cram_area_mm2",
    "cram_tops_per_mm2",
    "cram_utilization",
    "cram_co2e_g_per_inference",
    "cram_chip_lane_utilization",
    "cram_mapping_efficiency",
    "cram_resident_bits",
    "cram_deployment_pj_per_inference",
    "cram_expected_flips_per_inference",
    "cram_p_flip_free_inference",
];

/// Metric columns of results.csv per baseline, each prefixed `<baseline>_`.
pub const BASELINE_COLUMNS: [&str; 9] = [
    "energy_pj",
    "latency_s",
    "throughput_per_s",
    "energy_ratio",
    "energy_ratio_array",
    "energy_ratio_macro",
    "energy_ratio_chip",
    "speedup",
    "throughput_ratio",
];

/// results.csv: one row per point, axis values then metrics (blank for a failed point).
pub(crate) fn results_csv(m: &SweepManifest, records: &[PointRecord]) -> Result<Vec<u8>, Error> {
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
    let csv_err = |e: csv::Error| Error::usage(format!("results.csv: {e}"));
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
                        cr.energy_by_boundary.array,
                        cr.energy_by_boundary.macro_,
                        cr.energy_by_boundary.chip,
                        c.compute_pj,
                        c.data_movement_pj,
                        c.static_pj,
                        c.latency_s,
                        c.throughput_per_s,
                        c.tops_per_w,
                        c.edp_j_s,
                        c.area_mm2.unwrap_or(f64::NAN),
                        c.tops_per_mm2.unwrap_or(f64::NAN),
                        c.utilization,
                        c.co2e_g_per_inference,
                        cr.chip_lane_utilization,
                        cr.mapping_efficiency,
                        if cr.residency.resident {
                            cr.residency.deployment_written_bits as f64
                        } else {
                            0.0
                        },
                        cr.residency.deployment_pj_per_inference,
                        cr.reliability.expected_flips_per_inference,
                        cr.reliability.p_flip_free_inference,
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
                                b.versus_cram.energy_by_boundary.array,
                                b.versus_cram.energy_by_boundary.macro_,
                                b.versus_cram.energy_by_boundary.chip,
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
        .map_err(|e| Error::usage(format!("results.csv: {e}")))
}

/// A metric read off a report.
pub(crate) type Metric = fn(&RunReport) -> f64;

pub(crate) fn summary(m: &SweepManifest, records: &[PointRecord]) -> Summary {
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
            // A value that is not a number has no place in a best point or a range (and
            // JSON would write it as null).
            .filter(|(_, v)| v.is_finite())
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

// ----- merging ---------------------------------------------------------------------------

/// `a,b,c-d` for sorted indices.
pub(crate) fn ranges(ix: &[u64]) -> String {
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

/// A merged sweep: the records, the results table and the summary.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Every point's record, by id.
    pub records: Vec<PointRecord>,
    /// `results.csv`: one row per point, the axes then the metrics.
    pub csv: Vec<u8>,
    /// `summary.json`.
    pub summary: Summary,
}

/// Merges the records of every point of the plan `m` (in any order, each once) into the
/// results table and the summary.
pub fn merge(m: &SweepManifest, mut records: Vec<PointRecord>) -> Result<Merged, Error> {
    records.sort_by_key(|r| r.id);
    let csv = results_csv(m, &records)?;
    let summary = summary(m, &records);
    Ok(Merged {
        records,
        csv,
        summary,
    })
}

/// What [`run_points`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsRun {
    /// Points handed to the sink.
    pub ran: u64,
    /// Of those, points whose status is not `ok`.
    pub failed: u64,
    /// Worker threads.
    pub threads: usize,
    /// Stopped by the stop flag before every point ran.
    pub interrupted: bool,
}

/// A shard, `I/N` (0 ≤ I < N) or `auto` (Slurm's job array task); errors name the option
/// `name` (`--shard`, or the Python binding's keyword).
pub fn parse_shard(s: &str, name: &str) -> Result<(u64, u64), Error> {
    let (i, n) = if s == "auto" {
        let var = |k: &str| std::env::var(k).ok();
        match (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
            (Some(i), Some(n)) => (i, n),
            _ => {
                return Err(Error::usage(format!(
                    "{name} auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set \
                     (not in a Slurm job array); give {name} I/N"
                )));
            }
        }
    } else {
        match s.split_once('/') {
            Some((i, n)) => (i.to_owned(), n.to_owned()),
            None => {
                return Err(Error::usage(format!(
                    "{name} {s}: expected I/N (e.g. 3/64) or auto"
                )));
            }
        }
    };
    match (i.trim().parse::<u64>(), n.trim().parse::<u64>()) {
        (Ok(i), Ok(n)) if n >= 1 && i < n => Ok((i, n)),
        _ => Err(Error::usage(format!(
            "{name} {s} (= {i}/{n}): expected I/N with 0 ≤ I < N"
        ))),
    }
}

/// Runs the points `ids` of `plan` on `options`' threads, sharing compiled networks and
/// plans between them, and hands each finished point's record to `sink` as it finishes
/// (in finishing order; a merge orders them by id). Once the stop flag is set no point
/// starts, and a point it stopped is not handed over (a re-run runs it). A point's record
/// does not depend on the thread count or on which other points run.
pub fn run_points(
    plan: &Plan,
    ids: &[u64],
    options: &Options,
    sink: &(dyn Fn(&PointRecord) + Sync),
) -> Result<PointsRun, Error> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    let pool = options.pool()?;
    let stop = options.limits.stop;
    let cache = Caches::default();
    let (ran, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let one = |id: u64| {
        if stop.requested() {
            return;
        }
        let rec = run_point(plan, id, &cache, options.limits);
        if rec.status != "ok" {
            // A point stopped by the flag is not recorded: the re-run runs it.
            if stop.requested() {
                return;
            }
            failed.fetch_add(1, Ordering::Relaxed);
        }
        sink(&rec);
        ran.fetch_add(1, Ordering::Relaxed);
    };
    pool.install(|| {
        // The first point runs alone: what the points share (the compiled network, its
        // first plan) is then built on every thread, not on one while the others wait.
        if let Some((&first, rest)) = ids.split_first() {
            one(first);
            rest.par_iter().for_each(|&id| one(id));
        }
    });
    drop_aside(cache);
    Ok(PointsRun {
        ran: ran.into_inner(),
        failed: failed.into_inner(),
        threads: pool.current_num_threads(),
        interrupted: stop.requested(),
    })
}

/// Drops `value` on a thread of its own, so that the caller goes on meanwhile (inline when
/// no thread can be started: the failed spawn drops its closure). A sweep's caches hold
/// every shape's candidate streams: freeing them one allocation at a time takes a thread
/// about 10 ms of a 0.4 s ResNet-18 geometry sweep, while the caller merges and writes the
/// results.
fn drop_aside<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("drop".to_owned())
        .spawn(move || drop(value));
}

#[cfg(test)]
mod tests;
