//! `cramulator run [CONFIG]`: the main job. One CRAM architecture × one workload × one or
//! more von-Neumann baselines (docs/model.md §4, §8): the network runs on CRAM (bit-exact and checked
//! in functional mode, or counted), the same layers are priced on each baseline
//! (`baseline.rs`), and the comparison is printed and written atomically to
//! `results/<run-id>/` as `resolved.toml`, `manifest.json`, `report.json` and `layers.csv`
//! (records in `records.rs`).

use cram_arch::{Baseline, Org, presets};
use cram_workloads::golden;
use cram_workloads::net::Network;

use crate::error::Error;
use crate::experiment::config::{Config, ProgramCache, Resolved, check_layer_gates};
use crate::experiment::generation::{self, Generation};
use crate::experiment::options::Options;
use crate::experiment::simulate::{Images, golden_outputs, one_image, run_checked};
use crate::model::baseline::{self, BaselineRun, LayerWork, work_of_program};
use crate::model::energy::{Boundary, EnergyBreakdown};
use crate::model::limits::Limits;
use crate::model::map::{self, NetRun, RunOptions};
use crate::model::memo::Memo;
use crate::model::reliability::{self, Estimate};
use crate::records::{
    BaselineSide, CramSide, IrSummary, LayerRow, Manifest, Metrics, RUN_FILES, Ratios, RunRecord,
    RunReport, SCHEMA_VERSION, WorkloadSummary, fnv1a64,
};
use crate::records::{ByBoundary, ChipReport, GateErrors, Reliability, ResidencyReport};

/// Where a run's configuration came from; the manifest records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The configuration file, as given (none: the built-in default).
    pub config_file: Option<String>,
    /// The `KEY=VALUE` overrides applied to it, in order.
    pub overrides: Vec<String>,
}

/// The main job: one CRAM architecture × one workload × the configured baselines. The
/// network runs on CRAM (bit-exact and checked in functional mode, or counted in analytical
/// mode), the same layers are priced on each baseline, and the comparison is returned as
/// the records of a run folder (`resolved.toml`, `manifest.json`, `report.json`,
/// `layers.csv`); [`RunRecord::files`] gives their bytes. Runs on `options`' threads; the
/// result does not depend on their number.
///
/// ```
/// use cramulator::experiment::{config::Config, options::Options, run};
///
/// let config = Config::from_text("[run]\nmode = \"analytical\"\n", "example.toml")?;
/// let record = run::run(&config, &run::Provenance::default(), &Options::default())?;
/// assert!(record.report.cram.metrics.energy_pj > 0.0);
/// assert_eq!(record.manifest.run_id, record.report.run_id);
/// assert_eq!(record.report.baselines.len(), 2); // cpu-ddr4 and nmp by default
/// # Ok::<(), cramulator::error::Error>(())
/// ```
pub fn run(
    config: &Config,
    provenance: &Provenance,
    options: &Options,
) -> Result<RunRecord, Error> {
    options.pool()?.install(|| {
        let e = evaluate(config, None, options.limits)?;
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            cramulator_version: env!("CARGO_PKG_VERSION").to_owned(),
            run_id: e.report.run_id.clone(),
            config_hash: e.hash,
            seed: config.run.seed,
            config_file: provenance.config_file.clone(),
            overrides: provenance.overrides.clone(),
            files: RUN_FILES.iter().map(|f| (*f).to_owned()).collect(),
        };
        Ok(RunRecord {
            resolved: e.resolved,
            manifest,
            report: e.report,
            rows: e.rows,
            ok: e.ok,
        })
    })
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

/// The run's gate errors: each gate's derived rate and evaluations per inference, the
/// expected flips and flip-free share (docs/model.md §1.7.1), and for labelled images the
/// golden executor's accuracy and the expected accuracy's bounds.
fn reliability_report(
    run: &NetRun,
    lib: &cram_arch::GateLibrary,
    (prog, images): (&golden::Program, &Images),
    max_gate_error: f64,
    injected: bool,
) -> Result<Reliability, Error> {
    let n = images.len();
    let e = Estimate::new(&run.lane_evals_by_gate(), n, lib);
    let clean = match images.labels(0..n) {
        Some(labels) => {
            let golden = golden_outputs(prog, &images.get(0..n))?;
            let right = golden
                .iter()
                .map(cram_workloads::exec::argmax)
                .zip(labels)
                .filter(|(p, y)| p == *y)
                .count();
            Some(right as f64 / n as f64)
        }
        None => None,
    };
    let bounds = clean.map(|c| e.accuracy_bounds(c));
    Ok(Reliability {
        max_gate_error,
        gates: e
            .gates
            .iter()
            .map(|&(g, p, evals)| GateErrors {
                gate: g.mnemonic().to_owned(),
                p_err: p,
                evaluations_per_inference: evals,
                expected_flips_per_inference: p * evals,
            })
            .collect(),
        expected_flips_per_inference: e.expected_flips,
        p_flip_free_inference: e.p_flip_free,
        clean_accuracy: clean,
        expected_accuracy_min: bounds.map(|b| b.0),
        expected_accuracy_max: bounds.map(|b| b.1),
        injected,
        injected_flips: injected.then(|| run.layers.iter().map(|l| l.flips).sum()),
    })
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

/// What a run's residency and deployment say (docs/model.md §2.7).
fn residency_report(run: &NetRun, inferences: u64, cycle_s: f64) -> ResidencyReport {
    let r = run.residency;
    let d = run.deployment();
    let decision = r.describe();
    let e = d.energy.total_pj();
    ResidencyReport {
        resident: r.resident,
        decision,
        wanted_bits: r.wanted_bits,
        capacity_bits: r.capacity_bits,
        reserved_bits: r.reserved_bits,
        chips: r.chips,
        chips_needed: r.chips_needed(),
        inferences_per_deployment: inferences,
        deployment_moved_bits: d.moved_bits,
        deployment_written_bits: d.written_bits,
        deployment_latency_s: d.cycles as f64 * cycle_s,
        deployment_energy: (&d.energy).into(),
        deployment_pj_per_inference: e / inferences.max(1) as f64,
    }
}

/// Runs one configuration (the work of `run` and of every sweep point); `cache` shares
/// compiled networks and analytical plans between configurations.
pub fn evaluate(
    config: &Config,
    cache: Option<&Caches>,
    limits: Limits,
) -> Result<Evaluation, Error> {
    // A generation's caches at its end take their cells from the prefill on (as a deployed
    // model reserves its context): sized from the longest decode step, compiled alone before
    // the prefill's program, so the two are never held at once (the configuration checked
    // first, so that a mistake is not reported after a compile).
    config.validate()?;
    let decode = generation::decode_network(&config.filled())?;
    let reserved = decode
        .as_ref()
        .map(|(net, _, _)| {
            generation::cache_bits_at_end(
                net,
                &config.compress_spec()?,
                config.weights_seed(),
                limits.memory,
            )
        })
        .transpose()?
        .unwrap_or(0);
    let resolved_config =
        config.resolve_reserving(cache.map(|c| &c.programs), limits.memory, reserved)?;
    let baselines = config
        .compare
        .baselines
        .iter()
        .map(|b| presets::baseline_from(b).map_err(Error::from))
        .collect::<Result<Vec<_>, _>>()?;
    let mut frozen = config.frozen(&resolved_config, &baselines);
    let Resolved {
        prog,
        hw,
        choice,
        ir,
        origin,
        ..
    } = resolved_config;
    let plans = cache.map(|c| &c.plans);
    let images = Images::of(&prog, config.run.images, config.run.seed)?;
    let n = images.len();
    frozen.run.images = Some(n);
    let model = prog.network().name.clone();
    let mode = config.run.mode;
    let injected = config.run.inject_gate_errors;
    let opts = RunOptions {
        mode,
        choice,
        error_rates: if injected {
            reliability::derived_rates(&hw.lib)
        } else {
            [0.0; cram_arch::GateKind::COUNT]
        },
        seed: config.run.seed,
        limits,
    };
    // Latency and utilization are those of one inference alone: an analytical run of one
    // image gives them; a run of one image is its own.
    let single = (n > 1)
        .then(|| one_image(&prog, &hw, &opts, plans))
        .transpose()?;
    let checked = run_checked(&prog, &images, &hw, &opts, plans)?;
    let (batch, exact, correct) = (checked.run, checked.exact, checked.correct);
    check_layer_gates(&batch, &hw.lib, config.mapping.max_gate_error)?;
    let reliability = reliability_report(
        &batch,
        &hw.lib,
        (&prog, &images),
        config.mapping.max_gate_error,
        injected,
    )?;
    let single = single.unwrap_or_else(|| batch.clone());
    let org = &hw.org.params;
    let cycle_s = 1e-9 / org.clock_ghz;
    let work = program_work(&prog, cache)?;
    let macs: u64 = work.iter().map(|l| l.macs).sum();
    let grid = config.compare.grid_gco2e_per_kwh;
    let (energy, cram_metrics, batch_latency_s) =
        cram_side_metrics(&batch, &single, (&hw.org, hw.chips), n, macs, grid);
    let by_boundary = ByBoundary::of(&energy);
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
        let (side, their_rows) = baseline_side(
            b,
            &work,
            baseline_batch,
            (macs, grid),
            (&cram_metrics, &by_boundary),
            prog.network(),
        );
        rows.extend(their_rows);
        sides.push(side);
    }
    let mut report = RunReport {
        schema_version: SCHEMA_VERSION,
        run_id,
        workload: WorkloadSummary {
            model,
            layers: work.len(),
            macs,
            weights: work.iter().map(|l| l.weights).sum(),
            nonzero_weights: work.iter().map(|l| l.nonzero_weights).sum(),
            origin: origin.clone(),
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
            chip_lane_utilization: single.chip_lane_utilization(hw.machine_lanes()),
            mapping_efficiency: single.mapping_efficiency(),
            energy: (&energy).into(),
            energy_by_boundary: by_boundary,
            chip: chip_report(&hw.org, hw.chips),
            residency: residency_report(&batch, choice.inferences_per_deployment, cycle_s),
            reliability,
        },
        baselines: sides,
        generation: None,
    };
    // The prefill's compiled network is not needed any more: a generation compiles its
    // own decode steps, and a large model's two programs need not be held at once.
    drop(prog);
    if let Some((decode, prompt, tokens)) = decode {
        let g = Generation {
            decode,
            prompt,
            tokens,
            spec: config.compress_spec()?,
            seed: config.weights_seed(),
            endurance_budget: frozen
                .run
                .endurance_budget
                .unwrap_or(crate::experiment::config::DEFAULT_ENDURANCE_BUDGET),
            prefill: (report.cram.metrics.energy_pj, report.cram.metrics.latency_s),
            prefill_work: &work,
        };
        report.generation = Some(generation::price(&g, &hw, &opts, &baselines)?);
    }
    Ok(Evaluation {
        resolved,
        hash,
        report,
        rows,
        // Flips injected on purpose are the device's result, not a failed check.
        ok: injected || exact.is_none_or(|e| e == n),
    })
}

/// The baseline work of each layer of `prog`, shared through `cache` between the points of
/// a sweep.
fn program_work(
    prog: &std::sync::Arc<golden::Program>,
    cache: Option<&Caches>,
) -> Result<std::sync::Arc<Vec<LayerWork>>, Error> {
    Ok(match cache {
        None => std::sync::Arc::new(work_of_program(prog)?),
        Some(c) => c
            .work
            .get_or_build(std::sync::Arc::as_ptr(prog) as usize, || {
                work_of_program(prog).map_err(|e| e.to_string())
            })
            .map_err(Error::usage)?,
    })
}

/// One chip's area by component and leakage, for the report.
fn chip_report(org: &Org, chips: u64) -> ChipReport {
    ChipReport {
        chips,
        area_mm2: org.chip_area_mm2(),
        area_by_component: org
            .area
            .components()
            .iter()
            .map(|&(name, a)| (name.to_owned(), a))
            .collect(),
        leakage_mw: org.leakage_w() * 1e3,
        power_gating: org.params.peripherals.power_gating,
    }
}

/// CRAM's energy per inference (from the batch of `n` images), its metrics (latency and
/// utilization from one inference alone) and the latency of the whole batch.
fn cram_side_metrics(
    batch: &NetRun,
    single: &NetRun,
    (chip, chips): (&Org, u64),
    n: usize,
    macs: u64,
    grid: f64,
) -> (EnergyBreakdown, Metrics, f64) {
    let org = &chip.params;
    let cycle_s = 1e-9 / org.clock_ghz;
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
        (
            energy.compute_pj(),
            energy.data_movement_pj(),
            energy.leakage_pj,
        ),
        (cram_latency_s, per_second(n as f64, batch_latency_s)),
        macs,
        // Every chip's area.
        Some(chip.chip_area_mm2() * chips as f64),
        if offered > 0.0 { used / offered } else { 0.0 },
        grid,
    );
    (energy, cram_metrics, batch_latency_s)
}

/// One baseline's side of the comparison (its batch of `batch` inferences, latency of one
/// alone) against CRAM's metrics `cram`, and its per-layer rows; `(macs, grid)` are the
/// workload's MACs and the grid's carbon intensity.
fn baseline_side(
    b: &Baseline,
    work: &[LayerWork],
    batch: usize,
    (macs, grid): (u64, f64),
    (cram, cram_within): (&Metrics, &ByBoundary),
    network: &Network,
) -> (BaselineSide, Vec<LayerRow>) {
    let r = baseline::evaluate(b, work, batch as u32);
    let alone = if batch == 1 {
        r.clone()
    } else {
        baseline::evaluate(b, work, 1)
    };
    let p = &b.params;
    let executed: u64 = alone.layers.iter().map(|l| l.slots).sum();
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
        energy: ratio(metrics.energy_pj, cram.energy_pj),
        speedup: ratio(metrics.latency_s, cram.latency_s),
        throughput: ratio(cram.throughput_per_s, metrics.throughput_per_s),
        edp: ratio(metrics.edp_j_s, cram.edp_j_s),
        compute_energy: ratio(metrics.compute_pj, cram.compute_pj),
        data_movement_energy: ratio(metrics.data_movement_pj, cram.data_movement_pj),
        energy_by_boundary: cram_within.map(|e| ratio(metrics.energy_pj, e)),
    };
    let rows = baseline_rows(network, &r, &alone, work, &p.name);
    let compute_bound = alone.layers.iter().filter(|l| l.bound == "compute").count();
    let side = BaselineSide {
        name: p.name.clone(),
        description: p.description.clone(),
        batch,
        metrics,
        energy: (&r.energy).into(),
        levels: p.levels.iter().map(|l| l.name.clone()).collect(),
        compute_bound_layers: compute_bound,
        memory_bound_layers: r.layers.len() - compute_bound,
        versus_cram,
    };
    (side, rows)
}

/// CRAM's rows: energy per inference from the batch, latency from one inference; `work`
/// holds the layers after the input, in order.
pub(crate) fn cram_rows(
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
            static_pj: k * l.energy.leakage_pj,
            latency_s: s.cycles as f64 * cycle_s,
            // A layer computed by the periphery's function unit says so (its energy is in
            // compute_pj, its cycles in latency_s).
            detail: match l.layout {
                Some(lay) => lay.name(),
                None if l.energy.function_unit_pj > 0.0 => {
                    format!("function unit {:.3e} pJ", k * l.energy.function_unit_pj)
                }
                None => String::new(),
            },
            chip_lane_utilization: Some(s.chip_lane_utilization),
            mapping_efficiency: Some(s.mapping_efficiency),
            array_pj: Some(k * l.energy.within_pj(Boundary::Array)),
            macro_pj: Some(k * l.energy.within_pj(Boundary::Macro)),
            chip_pj: Some(k * l.energy.within_pj(Boundary::Chip)),
        })
        .collect()
}

/// One baseline's rows, in the order of `work`: energy from the batched run `r`, latency
/// and its bound from the run of one inference `alone`.
pub(crate) fn baseline_rows(
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
            chip_lane_utilization: None,
            mapping_efficiency: None,
            array_pj: None,
            macro_pj: None,
            chip_pj: None,
        })
        .collect()
}

/// `count` inferences in `seconds`, per second (0 when no time passed).
pub(crate) fn per_second(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 { count / seconds } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::to_json;

    /// The stated estimate (docs/model.md §1.7.1) against functional injection on the
    /// digits: with the critical-current spread raised to 5.5 % (NAND fails about once in
    /// 3,000 evaluations, half a flip per image), over three seeds of injected faults,
    /// - the flips injected are the expected flips within 5 σ (Poisson);
    /// - the bit-exact images are at least the flip-free share, less 4 σ (binomial);
    /// - the accuracy lies inside the stated bounds, widened by 4 σ;
    /// - an analytical run states the same estimate as the functional run.
    #[test]
    fn estimate_meets_injection_on_digits() {
        let sets = |extra: &[&str]| -> Config {
            let mut s: Vec<String> = [
                "cram.device_params.ic_sigma_rel=0.055",
                "mapping.max_gate_error=1e-3",
            ]
            .map(String::from)
            .to_vec();
            s.extend(extra.iter().map(|x| x.to_string()));
            Config::load_with(None, &s).unwrap()
        };
        let counted = evaluate(&sets(&["run.mode=analytical"]), None, Limits::default())
            .unwrap()
            .report
            .cram;
        let qa = counted.reliability;
        assert!(!qa.injected && qa.injected_flips.is_none());
        let n = 360.0;
        let lambda = qa.expected_flips_per_inference;
        let p0 = qa.p_flip_free_inference;
        assert!(
            (0.1..3.0).contains(&lambda) && (0.05..0.95).contains(&p0),
            "{qa:?}"
        );
        for seed in 1..=3 {
            let seed = format!("run.seed={seed}");
            let e = evaluate(
                &sets(&["run.inject_gate_errors=true", &seed]),
                None,
                Limits::default(),
            )
            .unwrap();
            assert!(
                e.ok,
                "injected flips are the device's result, not a failed check"
            );
            let c = e.report.cram;
            let q = &c.reliability;
            assert!(q.injected);
            let rel = (q.expected_flips_per_inference - lambda).abs() / lambda;
            assert!(rel < 1e-9, "analytical {lambda} vs functional {q:?}");
            assert_eq!(q.gates.len(), qa.gates.len());
            let flips = q.injected_flips.unwrap() as f64;
            let want = n * lambda;
            assert!(
                (flips - want).abs() <= 5.0 * want.sqrt(),
                "{flips} vs {want}"
            );
            let exact = c.bit_exact_images.unwrap() as f64;
            assert!(exact < n, "flips were injected: {exact}");
            let sd = |p: f64| (p * (1.0 - p) / n).sqrt();
            assert!(exact / n >= p0 - 4.0 * sd(p0), "{exact} vs {p0}");
            let acc = c.correct.unwrap() as f64 / n;
            let (lo, hi) = (
                q.expected_accuracy_min.unwrap(),
                q.expected_accuracy_max.unwrap(),
            );
            assert!(
                acc >= lo - 4.0 * sd(lo) && acc <= hi + 4.0 * sd(hi),
                "{acc} outside [{lo}, {hi}]"
            );
            assert_eq!(q.clean_accuracy, qa.clean_accuracy);
        }
    }

    /// A gate set with a gate above the budget is refused, naming the gates, the budget and
    /// the sets within it; raising the budget runs it and states the expected flips; a
    /// budget outside (0, 1] and injection in analytical mode are refused.
    #[test]
    fn the_gate_budget_refuses_gates_above_it() {
        let load = |s: &[&str]| {
            Config::load_with(None, &s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
        };
        let refused = |set: &str| {
            let c = load(&[set]).unwrap();
            evaluate(&c, None, Limits::default())
                .err()
                .unwrap()
                .to_string()
        };
        let e = refused("cram.gate_set=maj");
        for want in [
            "MAJ5 has p_err 4.36",
            "mapping.max_gate_error = 1e-6",
            "within it: nand-not",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        let e = refused("cram.gate_set=nand");
        assert!(e.contains("AND has p_err 3.80"), "{e}");
        let ok = evaluate(
            &load(&[
                "cram.gate_set=maj",
                "mapping.max_gate_error=0.45",
                "run.mode=analytical",
            ])
            .unwrap(),
            None,
            Limits::default(),
        )
        .unwrap();
        let q = ok.report.cram.reliability;
        assert!(q.gates.iter().any(|g| g.gate == "MAJ5" && g.p_err > 0.4));
        assert!(q.p_flip_free_inference < 1e-100, "{q:?}");
        for bad in ["0", "-1", "1.5", "nan"] {
            let set = format!("mapping.max_gate_error={bad}");
            let e = load(&[set.as_str()]);
            assert!(e.is_err() || e.unwrap().validate().is_err(), "{bad}");
        }
        let e = load(&["run.inject_gate_errors=true", "run.mode=analytical"]).unwrap_err();
        assert!(e.to_string().contains("only a functional run"), "{e}");
    }

    /// A sweep's caches give the very report an uncached run gives, on another device, chip
    /// and subarray than the one that filled them, under every strategy choice.
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
                // Unbudgeted: two of the devices have no gate set within the default.
                let common = [&common[..], &["mapping.max_gate_error=1"]].concat();
                let first = config(&[&common[..], &["cram.device=stt-today"]].concat());
                evaluate(&first, Some(&caches), Limits::default()).unwrap();
                for extra in [
                    &["cram.device=she-projected"][..],
                    &["cram.device_params.tmr=3.0", "mapping.objective=latency"][..],
                    // The chip around the subarrays: its size, chips (the link's share of
                    // moved bits), clock and buses; then another subarray shape.
                    &[
                        "cram.array_params.subarrays_per_bank=4",
                        "cram.array_params.banks=2",
                    ][..],
                    &["cram.chips=3", "cram.array_params.clock_ghz=2.0"][..],
                    &["cram.array_params.global_bus.width_bits=128"][..],
                    &["cram.array_params.lanes_per_subarray=512"][..],
                ] {
                    let c = config(&[&common[..], extra].concat());
                    let cached = evaluate(&c, Some(&caches), Limits::default()).unwrap();
                    let fresh = evaluate(&c, None, Limits::default()).unwrap();
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
        let prog = config(&[])
            .resolve_with(None, Default::default())
            .unwrap()
            .prog;
        let work = work_of_program(&prog).unwrap();
        let machines = ["nmp", "gpu-hbm2"].map(|n| presets::baseline(n).unwrap());
        // The test tells the two runs apart: nmp's weight reads from DRAM and the GPU's
        // kernel launches are shared by a batch.
        let at = |m: usize, batch: u32| baseline::evaluate(&machines[m], &work, batch);
        assert!(at(0, 8).energy.total_pj() < 0.9 * at(0, 1).energy.total_pj());
        assert!(at(1, 8).latency_s < 0.5 * at(1, 1).latency_s);
        for (sets, batch) in [(&[][..], 8), (&["compare.batch=1"][..], 1)] {
            let e = evaluate(&config(sets), None, Limits::default()).unwrap();
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
                assert_eq!(b.energy, (&r.energy).into());
                assert_eq!(b.metrics.latency_s, alone.latency_s);
                assert_eq!(b.metrics.throughput_per_s, 1.0 / r.latency_s);
                let p = &machines[k].params;
                let executed: u64 = alone.layers.iter().map(|l| l.slots).sum();
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
}
