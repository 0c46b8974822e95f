//! `cramulator run [CONFIG]`: the main job. One CRAM architecture × one workload × one or
//! more von-Neumann baselines (DESIGN §5): the network runs on CRAM (bit-exact and checked
//! in functional mode, or counted), the same layers are priced on each baseline
//! (`baseline.rs`), and the comparison is printed and written atomically to
//! `results/<run-id>/` as `resolved.toml`, `manifest.json`, `report.json` and `layers.csv`
//! (records in `records.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use cram_arch::presets;
use cram_workloads::net::Network;

use crate::baseline::{self, BaselineRun, LayerWork, work_of_program};
use crate::cli::{CliError, ModeArg, Outcome, emit, to_json};
use crate::config::{Config, ProgramCache, Resolved};
use crate::energy::EnergyBreakdown;
use crate::error::UsageError;
use crate::map::{self, NetRun, RunOptions};
use crate::memo::Memo;
use crate::records::{
    BaselineSide, CramSide, IrSummary, LayerRow, Manifest, Metrics, Ratios, RunReport,
    SCHEMA_VERSION, WorkloadSummary, fnv1a64,
};
use crate::simulate::{Images, one_image, run_checked};

/// Arguments of `cramulator run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run configuration (TOML, see configs/). Without it: digits-mlp-int4, bit-exact on
    /// every held-out image, on stt-projected CRAM against cpu-ddr4 and nmp.
    pub config: Option<PathBuf>,
    /// Override a config key, e.g. `--set workload.sparsity=0.5` or
    /// `--set compare.baselines=gpu-hbm2,nmp` (repeatable, applied in order).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Functional (every gate executed, outputs checked) or analytical (counted); overrides
    /// `run.mode`.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Folder under which `<run-id>/` is written.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Print report.json instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run even if the IR drop along a line segment leaves far rows outside a gate's window
    /// (sets `cram.allow_ir_violation`; the report lists the violations).
    #[arg(long)]
    pub allow_ir_violation: bool,
    /// Worker threads: 0 = one per core [default: SLURM_CPUS_PER_TASK, else one per core].
    /// Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Everything a run produced: the evaluation and its manifest.
struct Outputs {
    e: Evaluation,
    manifest: Manifest,
}

/// `cramulator run`.
pub fn run(a: &RunArgs) -> Result<Outcome, CliError> {
    let mut sets = a.set.clone();
    if a.allow_ir_violation {
        sets.push("cram.allow_ir_violation=true".to_owned());
    }
    if let Some(m) = a.mode {
        sets.push(format!(
            "run.mode={}",
            match m {
                ModeArg::Functional => "functional",
                ModeArg::Analytical => "analytical",
            }
        ));
    }
    let config = Config::load_with(a.config.as_deref(), &sets)?;
    let pool = crate::guard::pool(a.threads, "--threads")?;
    let out = pool.install(|| execute(&config, a, &sets))?;
    let dir = write_atomically(&a.out, &out)?;
    if a.json {
        emit(&to_json(&out.e.report))?;
    } else {
        emit(&table(&out.e.report, &dir))?;
    }
    Ok(if out.e.ok {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

fn execute(config: &Config, a: &RunArgs, sets: &[String]) -> Result<Outputs, UsageError> {
    let e = evaluate(config, None)?;
    let manifest = Manifest {
        schema_version: SCHEMA_VERSION,
        cramulator_version: env!("CARGO_PKG_VERSION").to_owned(),
        run_id: e.report.run_id.clone(),
        config_hash: e.hash.clone(),
        seed: config.run.seed,
        config_file: a.config.as_ref().map(|p| p.display().to_string()),
        overrides: sets.to_vec(),
        files: FILES.iter().map(|f| (*f).to_owned()).collect(),
    };
    Ok(Outputs { e, manifest })
}

/// What one configuration gives: its resolved text and hash, the report, the per-layer
/// rows, and whether every image was bit-exact (functional mode).
pub struct Evaluation {
    /// `resolved.toml`.
    pub resolved: String,
    /// Its hash (16 hex digits).
    pub hash: String,
    /// `report.json`.
    pub report: RunReport,
    /// `layers.csv`.
    pub rows: Vec<LayerRow>,
    /// Every image bit-exact (functional mode).
    pub ok: bool,
}

/// Compiled networks and analytical layer plans shared by the points of a sweep.
#[derive(Debug, Default)]
pub struct Caches {
    /// Networks by workload.
    pub programs: ProgramCache,
    /// Analytical layer plans by program, gate set, organisation and choice.
    pub plans: map::PlanCache,
    /// The baseline work of each program (counting a large network's nonzero weights costs
    /// more than pricing it), by program address.
    pub work: Memo<usize, Vec<LayerWork>>,
}

/// Runs one configuration (the work of `run` and of every sweep point); `cache` shares
/// compiled networks and analytical plans between configurations.
pub fn evaluate(config: &Config, cache: Option<&Caches>) -> Result<Evaluation, UsageError> {
    let resolved_config = config.resolve_with(cache.map(|c| &c.programs))?;
    let baselines = config
        .compare
        .baselines
        .iter()
        .map(|b| presets::baseline_from(b).map_err(UsageError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let mut frozen = config.frozen(&resolved_config, &baselines);
    let Resolved {
        prog,
        hw,
        choice,
        ir,
        ..
    } = resolved_config;
    let plans = cache.map(|c| &c.plans);
    let images = Images::of(&prog, config.run.images, config.run.seed)?;
    let n = images.len();
    frozen.run.images = Some(n);
    let model = prog.network().name.clone();
    let mode = config.run.mode;
    let opts = RunOptions {
        mode,
        choice,
        error_rate: 0.0,
        seed: config.run.seed,
    };
    // Latency and utilization are those of one inference alone: an analytical run of one
    // image gives them; a run of one image is its own.
    let single = (n > 1)
        .then(|| one_image(&prog, &hw, &opts, plans))
        .transpose()?;
    let checked = run_checked(&prog, &images, &hw, &opts, plans)?;
    let (batch, exact, correct) = (checked.run, checked.exact, checked.correct);
    let single = single.unwrap_or_else(|| batch.clone());
    let org = &hw.org.params;
    let cycle_s = 1e-9 / org.clock_ghz;
    let work = match cache {
        None => std::sync::Arc::new(work_of_program(&prog)?),
        Some(c) => c
            .work
            .get_or_build(std::sync::Arc::as_ptr(&prog) as usize, || {
                work_of_program(&prog).map_err(|e| e.to_string())
            })
            .map_err(UsageError::new)?,
    };
    let macs: u64 = work.iter().map(|l| l.macs).sum();
    let grid = config.compare.grid_gco2e_per_kwh;
    let mut energy = EnergyBreakdown::default();
    for l in &batch.layers {
        energy.add_scaled(&l.energy, 1.0 / n as f64);
    }
    let lanes = org.lanes_per_subarray as f64;
    let (used, offered) = single.layers.iter().fold((0.0, 0.0), |(u, o), l| {
        (u + l.lanes_used as f64, o + l.subarray_runs as f64 * lanes)
    });
    let cram_latency_s = single.cycles() as f64 * cycle_s;
    let batch_latency_s = batch.cycles() as f64 * cycle_s;
    let cram_metrics = Metrics::new(
        (energy.compute_pj(), energy.data_movement_pj(), 0.0),
        (cram_latency_s, per_second(n as f64, batch_latency_s)),
        macs,
        Some(org.chip_area_mm2()),
        if offered > 0.0 { used / offered } else { 0.0 },
        grid,
    );
    let mut rows = cram_rows(&batch, &single, &work, n, cycle_s);
    // Equal footing: each baseline batches as many inferences as CRAM ran, unless the
    // config says otherwise; latency is one inference alone on both sides.
    let baseline_batch = config.compare.batch.unwrap_or(n);
    frozen.compare.batch = Some(baseline_batch);
    let resolved = toml::to_string(&frozen).expect("a config serializes");
    let hash = format!("{:016x}", fnv1a64(resolved.as_bytes()));
    let run_id = format!("{model}-{}", &hash[..12]);
    let mut sides = Vec::new();
    for b in &baselines {
        let r = baseline::evaluate(b, &work, baseline_batch as u32);
        let alone = if baseline_batch == 1 {
            r.clone()
        } else {
            baseline::evaluate(b, &work, 1)
        };
        let p = &b.params;
        let executed: u64 = alone.layers.iter().map(|l| l.macs_executed).sum();
        let peak = p.macs_per_cycle * p.clock_ghz * 1e9;
        let metrics = Metrics::new(
            (
                r.energy.compute_pj(),
                r.energy.data_movement_pj(),
                r.energy.static_pj,
            ),
            (alone.latency_s, per_second(1.0, r.latency_s)),
            macs,
            p.die_area_mm2,
            executed as f64 / (alone.latency_s * peak).max(f64::MIN_POSITIVE),
            grid,
        );
        let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { f64::INFINITY };
        let versus_cram = Ratios {
            energy: ratio(metrics.energy_pj, cram_metrics.energy_pj),
            speedup: ratio(metrics.latency_s, cram_metrics.latency_s),
            throughput: ratio(cram_metrics.throughput_per_s, metrics.throughput_per_s),
            edp: ratio(metrics.edp_j_s, cram_metrics.edp_j_s),
            compute_energy: ratio(metrics.compute_pj, cram_metrics.compute_pj),
            data_movement_energy: ratio(metrics.data_movement_pj, cram_metrics.data_movement_pj),
        };
        rows.extend(baseline_rows(prog.network(), &r, &alone, &work, &p.name));
        let compute_bound = alone.layers.iter().filter(|l| l.bound == "compute").count();
        sides.push(BaselineSide {
            name: p.name.clone(),
            description: p.description.clone(),
            batch: baseline_batch,
            metrics,
            energy: r.energy.clone(),
            levels: p.levels.iter().map(|l| l.name.clone()).collect(),
            compute_bound_layers: compute_bound,
            memory_bound_layers: r.layers.len() - compute_bound,
            versus_cram,
        });
    }
    let report = RunReport {
        schema_version: SCHEMA_VERSION,
        run_id,
        workload: WorkloadSummary {
            model,
            layers: work.len(),
            macs,
            weights: work.iter().map(|l| l.weights).sum(),
            nonzero_weights: work.iter().map(|l| l.nonzero_weights).sum(),
        },
        grid_gco2e_per_kwh: grid,
        cram: CramSide {
            device: frozen.device_label(),
            array: frozen.array_label(),
            ir: IrSummary {
                rows_per_line: ir.rows_per_line,
                r_wire_ohm_per_cell: ir.r_wire_ohm_per_cell,
                violations: ir.violations(),
            },
            gate_set: config.cram.gate_set.name().to_owned(),
            mode: format!("{mode:?}").to_lowercase(),
            images: n,
            bit_exact_images: exact,
            correct,
            batch_latency_s,
            metrics: cram_metrics,
            energy,
        },
        baselines: sides,
    };
    Ok(Evaluation {
        resolved,
        hash,
        report,
        rows,
        ok: exact.is_none_or(|e| e == n),
    })
}

const FILES: [&str; 4] = [
    "resolved.toml",
    "manifest.json",
    "report.json",
    "layers.csv",
];

/// CRAM's rows: energy per inference from the batch, latency from one inference; `work`
/// holds the layers after the input, in order.
fn cram_rows(
    batch: &NetRun,
    single: &NetRun,
    work: &[LayerWork],
    n: usize,
    cycle_s: f64,
) -> Vec<LayerRow> {
    let k = 1.0 / n as f64;
    batch
        .layers
        .iter()
        .zip(&single.layers)
        .filter(|(l, _)| l.op != "input")
        .zip(work)
        .enumerate()
        .map(|(i, ((l, s), w))| LayerRow {
            machine: "cram".into(),
            index: i + 1,
            layer: l.name.clone(),
            op: l.op.to_owned(),
            macs: w.macs,
            energy_pj: k * l.energy.total_pj(),
            compute_pj: k * l.energy.compute_pj(),
            data_movement_pj: k * l.energy.data_movement_pj(),
            static_pj: 0.0,
            latency_s: s.cycles as f64 * cycle_s,
            detail: l
                .strategy
                .map(|s| format!("{s:?}").to_lowercase())
                .unwrap_or_default(),
        })
        .collect()
}

/// One baseline's rows, in the order of `work`: energy from the batched run `r`, latency
/// and its bound from the run of one inference `alone`.
fn baseline_rows(
    net: &Network,
    r: &BaselineRun,
    alone: &BaselineRun,
    work: &[LayerWork],
    name: &str,
) -> Vec<LayerRow> {
    r.layers
        .iter()
        .zip(&alone.layers)
        .zip(work)
        .enumerate()
        .map(|(i, ((l, a), w))| LayerRow {
            machine: name.to_owned(),
            index: i + 1,
            layer: l.name.clone(),
            op: net.layers[i + 1].op.name().to_owned(),
            macs: w.macs,
            energy_pj: l.energy.total_pj(),
            compute_pj: l.energy.compute_pj(),
            data_movement_pj: l.energy.data_movement_pj(),
            static_pj: l.energy.static_pj,
            latency_s: a.latency_s,
            detail: format!("{}-bound", a.bound),
        })
        .collect()
}

/// Writes the run's files into a temporary folder beside `out/<run-id>` and renames it into
/// place, so a reader sees either the whole previous run or the whole new one.
fn write_atomically(out: &Path, o: &Outputs) -> Result<PathBuf, UsageError> {
    let io = |what: &Path, e: std::io::Error| {
        UsageError::new(format!("writing results '{}': {e}", what.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let id = &o.manifest.run_id;
    let dir = out.join(id);
    if dir.exists() && !dir.is_dir() {
        return Err(UsageError::new(format!(
            "writing results '{}': it exists and is not a folder; move it away and run again",
            dir.display()
        )));
    }
    let tmp = out.join(format!(".{id}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in &o.e.rows {
        csv.serialize(r)
            .map_err(|e| UsageError::new(format!("layers.csv: {e}")))?;
    }
    let csv = csv
        .into_inner()
        .map_err(|e| UsageError::new(format!("layers.csv: {e}")))?;
    let files: [(&str, Vec<u8>); 4] = [
        ("resolved.toml", o.e.resolved.clone().into_bytes()),
        ("manifest.json", to_json(&o.manifest).into_bytes()),
        ("report.json", to_json(&o.e.report).into_bytes()),
        ("layers.csv", csv),
    ];
    for (name, bytes) in &files {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
    }
    // A folder of the same id holds the same bytes (the id is the hash of everything the run
    // read, and no record holds a time): replace it, or, if another process renamed its copy
    // into place between these steps, keep that one.
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

/// `value` with an SI prefix and `unit`, 3 significant digits. A bare number (no unit) takes
/// no prefix below 1 (0.411, not "411 m"); a value beyond the prefixes (above 999 T or
/// below 1 a) is printed in e-notation.
pub(crate) fn si(value: f64, unit: &str) -> String {
    const P: [(f64, &str); 11] = [
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
        (1e-15, "f"),
        (1e-18, "a"),
    ];
    let join = |num: String, prefix: &str| {
        if prefix.is_empty() && unit.is_empty() {
            num
        } else {
            format!("{num} {prefix}{unit}")
        }
    };
    if value == 0.0 || !value.is_finite() {
        return join(format!("{value}"), "");
    }
    let a = value.abs();
    let found = if unit.is_empty() && a < 1.0 {
        None
    } else {
        // The largest prefix the value reaches once rounded to 3 digits (999.7 k is 1.00 M).
        P.iter().find(|(s, _)| a >= 0.9995 * *s).copied()
    };
    let sci = || join(format!("{value:.2e}"), "");
    let Some((scale, prefix)) = found else {
        return if unit.is_empty() && a >= 1e-3 {
            format!("{:.3}", value)
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        } else {
            sci()
        };
    };
    let v = value / scale;
    if v.abs() >= 999.5 {
        return sci();
    }
    let digits = if v.abs() >= 99.95 {
        0
    } else if v.abs() >= 9.995 {
        1
    } else {
        2
    };
    join(format!("{v:.digits$}"), prefix)
}

/// `count` inferences in `seconds`, per second (0 when no time passed).
fn per_second(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { count / seconds } else { 0.0 }
}

/// A ratio as `123×`, `4.5×`, `0.31×` or `5.2e-4×`.
fn times(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.1e}×")
    }
}

fn table(r: &RunReport, dir: &Path) -> String {
    let mut s = String::new();
    let c = &r.cram;
    let _ = write!(
        s,
        "{} ({} MACs) on CRAM {} / {} ({}), {} image(s)",
        r.workload.model,
        si(r.workload.macs as f64, ""),
        c.device,
        c.array,
        c.mode,
        c.images
    );
    if let Some(e) = c.bit_exact_images {
        let _ = write!(s, ", bit-exact {e}/{}", c.images);
    }
    if let Some(k) = c.correct {
        let _ = write!(s, ", accuracy {:.2} %", 100.0 * k as f64 / c.images as f64);
    }
    let _ = writeln!(s);
    s.push_str(&crate::records::ir_warning(
        &c.ir.violations,
        crate::records::IR_ALLOWED,
    ));
    if let Some(b) = r.baselines.first() {
        let _ = writeln!(
            s,
            "energy and inf/s at a batch of {} on CRAM and {} on each baseline; latency and util \
             of one inference alone",
            c.images, b.batch
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10} {:>9} {:>6} {:>11}",
        "per inference",
        "energy",
        "compute",
        "data mv.",
        "static",
        "TOPS/W",
        "latency",
        "inf/s",
        "EDP",
        "area",
        "util",
        "CO2e"
    );
    let mut line = |name: &str, m: &Metrics| {
        let _ = writeln!(
            s,
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>8.3} {:>10} {:>10} {:>10} {:>9} {:>5.1}% {:>11}",
            name,
            si(m.energy_pj * 1e-12, "J"),
            si(m.compute_pj * 1e-12, "J"),
            si(m.data_movement_pj * 1e-12, "J"),
            si(m.static_pj * 1e-12, "J"),
            m.tops_per_w,
            si(m.latency_s, "s"),
            si(m.throughput_per_s, ""),
            si(m.edp_j_s, "J·s"),
            m.area_mm2.map_or("–".into(), |a| format!("{a:.1} mm²")),
            100.0 * m.utilization,
            si(m.co2e_g_per_inference, "g"),
        );
    };
    line("cram", &c.metrics);
    for b in &r.baselines {
        line(&b.name, &b.metrics);
    }
    let _ = writeln!(
        s,
        "\nCRAM's gain      {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  where the baseline's time goes",
        "energy", "compute", "data mv.", "latency", "inf/s", "EDP"
    );
    for b in &r.baselines {
        let v = &b.versus_cram;
        // A component the baseline does not model apart (0 pJ) has no ratio.
        let part = |ratio: f64, pj: f64| if pj > 0.0 { times(ratio) } else { "–".into() };
        let _ = writeln!(
            s,
            "{:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  {} of {} layers memory-bound",
            b.name,
            times(v.energy),
            part(v.compute_energy, b.metrics.compute_pj),
            part(v.data_movement_energy, b.metrics.data_movement_pj),
            times(v.speedup),
            times(v.throughput),
            times(v.edp),
            b.memory_bound_layers,
            b.memory_bound_layers + b.compute_bound_layers
        );
    }
    if !r.baselines.is_empty() {
        let _ = writeln!(
            s,
            "(baseline ÷ CRAM for energy, latency and EDP, CRAM ÷ baseline for inf/s: above 1, \
             CRAM is better)"
        );
    }
    let _ = writeln!(
        s,
        "\nCO2e per million inferences at {} g/kWh: cram {}{}",
        r.grid_gco2e_per_kwh,
        si(c.metrics.co2e_kg_per_million * 1e3, "g"),
        r.baselines
            .iter()
            .map(|b| format!(
                ", {} {}",
                b.name,
                si(b.metrics.co2e_kg_per_million * 1e3, "g")
            ))
            .collect::<String>()
    );
    let _ = writeln!(
        s,
        "results: {} (resolved.toml, manifest.json, report.json, layers.csv)",
        dir.display()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep's caches give the very report an uncached run gives, on another device and
    /// array than the one that filled them, under every strategy choice.
    #[test]
    fn cached_plans_price_like_a_fresh_run() {
        let caches = Caches::default();
        let config = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
            Config::load_with(None, &sets).unwrap()
        };
        for model in ["resnet8", "digits-mlp-int4"] {
            for strategy in ["auto", "const", "stored"] {
                let m = format!("workload.model={model}");
                let st = format!("mapping.strategy={strategy}");
                let common = [m.as_str(), st.as_str(), "run.mode=analytical"];
                let first = config(&[&common[..], &["cram.device=stt-today"]].concat());
                evaluate(&first, Some(&caches)).unwrap();
                for extra in [
                    &["cram.device=she-projected"][..],
                    &["cram.device_params.tmr=3.0", "mapping.objective=latency"][..],
                ] {
                    let c = config(&[&common[..], extra].concat());
                    let cached = evaluate(&c, Some(&caches)).unwrap();
                    let fresh = evaluate(&c, None).unwrap();
                    assert_eq!(
                        to_json(&cached.report),
                        to_json(&fresh.report),
                        "{model} {strategy} {extra:?}"
                    );
                }
            }
        }
    }

    /// Both sides run the same batch by default: a baseline's energy and throughput are
    /// those of `compare.batch` inferences sharing their weight fetches, its latency (in the
    /// report and in every layer row) and utilization those of one inference alone; CRAM's
    /// throughput is its images over the batch's time.
    #[test]
    fn baselines_batch_like_cram_unless_told() {
        let config = |sets: &[&str]| {
            let mut v = vec![
                "workload.model=lenet5".to_owned(),
                "run.mode=analytical".to_owned(),
                "run.images=8".to_owned(),
                "compare.baselines=nmp,gpu-hbm2".to_owned(),
            ];
            v.extend(sets.iter().map(|s| (*s).to_owned()));
            Config::load_with(None, &v).unwrap()
        };
        let prog = config(&[]).resolve_with(None).unwrap().prog;
        let work = work_of_program(&prog).unwrap();
        let machines = ["nmp", "gpu-hbm2"].map(|n| presets::baseline(n).unwrap());
        // The test tells the two runs apart: nmp's weight reads from DRAM and the GPU's
        // kernel launches are shared by a batch.
        let at = |m: usize, batch: u32| baseline::evaluate(&machines[m], &work, batch);
        assert!(at(0, 8).energy.total_pj() < 0.9 * at(0, 1).energy.total_pj());
        assert!(at(1, 8).latency_s < 0.5 * at(1, 1).latency_s);
        for (sets, batch) in [(&[][..], 8), (&["compare.batch=1"][..], 1)] {
            let e = evaluate(&config(sets), None).unwrap();
            assert!(
                e.resolved.contains(&format!("batch = {batch}")),
                "{}",
                e.resolved
            );
            let c = &e.report.cram;
            assert_eq!(c.metrics.throughput_per_s, 8.0 / c.batch_latency_s);
            for (k, b) in e.report.baselines.iter().enumerate() {
                let (r, alone) = (at(k, batch), at(k, 1));
                assert_eq!(b.batch, batch as usize);
                assert_eq!(b.energy, r.energy);
                assert_eq!(b.metrics.latency_s, alone.latency_s);
                assert_eq!(b.metrics.throughput_per_s, 1.0 / r.latency_s);
                let p = &machines[k].params;
                let executed: u64 = alone.layers.iter().map(|l| l.macs_executed).sum();
                let peak = p.macs_per_cycle * p.clock_ghz * 1e9;
                assert_eq!(
                    b.metrics.utilization,
                    executed as f64 / (alone.latency_s * peak)
                );
                let gain = c.metrics.throughput_per_s / b.metrics.throughput_per_s;
                assert_eq!(b.versus_cram.throughput, gain);
                let rows: Vec<&LayerRow> = e.rows.iter().filter(|x| x.machine == b.name).collect();
                assert_eq!(rows.len(), alone.layers.len());
                for (row, (l, a)) in rows.iter().zip(r.layers.iter().zip(&alone.layers)) {
                    assert_eq!(row.energy_pj, l.energy.total_pj(), "{}", row.layer);
                    assert_eq!(row.latency_s, a.latency_s, "{}", row.layer);
                    assert_eq!(row.detail, format!("{}-bound", a.bound));
                }
            }
        }
    }

    /// Issue 19 item 14: attojoule-seconds, bare numbers below 1 and without a unit.
    #[test]
    fn si_prefixes() {
        assert_eq!(si(1.234e-6, "J"), "1.23 µJ");
        assert_eq!(si(45.6e-3, "s"), "45.6 ms");
        assert_eq!(si(123_456.0, ""), "123 k");
        assert_eq!(si(4.19e-18, "J·s"), "4.19 aJ·s");
        assert_eq!(si(4.19e-21, "J·s"), "4.19e-21 J·s");
        assert_eq!(si(160.0, ""), "160");
        assert_eq!(si(0.411, ""), "0.411");
        assert_eq!(si(0.5, ""), "0.5");
        assert_eq!(si(2.5e-5, ""), "2.50e-5");
        assert_eq!(si(9.9996, "s"), "10.0 s");
        assert_eq!(si(999.7e3, "J"), "1.00 MJ");
        assert_eq!(si(3e15, "J"), "3.00e15 J");
        assert_eq!(si(0.0, "J"), "0 J");
        assert_eq!(times(2.5), "2.50×");
        assert_eq!(times(1234.0), "1234×");
        assert_eq!(times(5.2e-4), "5.2e-4×");
        assert_eq!(times(0.0107), "1.1e-2×");
        assert_eq!(times(0.55), "0.55×");
    }
}
