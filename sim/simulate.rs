//! `cramulator simulate`: one quantized network mapped onto a CRAM chip, run layer by layer
//! (functional: bit-exact, checked against the golden executor; or analytical), with the
//! per-layer report and, for the digits models, the held-out accuracy and its dependence on
//! the gate error rate.

use std::fmt::Write as _;
use std::ops::Range;

use clap::{Args, ValueEnum};
use cram_workloads::digits::{Digits, SPLIT_SEED};
use cram_workloads::golden;
use cram_workloads::train::code_inputs;
use ndarray::Array3;
use serde::Serialize;

use crate::cli::{CliError, ModeArg, Outcome, emit, to_json};
use crate::config::{
    Config, CramConfig, MappingConfig, Resolved, RunSection, StrategyChoice, WorkloadConfig,
};
use crate::error::UsageError;
use crate::kernels::GateSet;
use crate::map::{self, Choice, Hw, LayerReport, Mode, NetRun, Objective, RunOptions, Strategy};

/// Per-layer strategy on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// Chosen per layer by the cost model under `--objective`.
    Auto,
    /// Lane = output element, weights in the instruction stream.
    Const,
    /// Lane = output neuron, weights stored in cells.
    Stored,
}

/// Objective on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    /// Energy per inference.
    Energy,
    /// Latency.
    Latency,
    /// Energy × latency.
    Edp,
}

/// Arguments of `cramulator simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A quantized model: a shipped name (digits-mlp-int8, -int4, -w4a4, -binary) or an
    /// own-format `.toml` file; or a zoo network (see `cramulator models`), compressed here
    /// with seeded synthetic weights by `--weight-bits`, `--act-bits` and `--sparsity`.
    pub model: String,
    /// Weight bits of a zoo network (symmetric, per output channel).
    #[arg(long)]
    pub weight_bits: Option<u32>,
    /// Activation bits of a zoo network (unsigned affine).
    #[arg(long)]
    pub act_bits: Option<u32>,
    /// Unstructured magnitude-pruning sparsity of a zoo network's weights, in [0, 1).
    #[arg(long)]
    pub sparsity: Option<f64>,
    /// Device preset or TOML file.
    #[arg(long, default_value = "stt-projected")]
    pub device: String,
    /// Array preset or TOML file.
    #[arg(long, default_value = "cram-1k")]
    pub array: String,
    /// Gate set the programs are generated from.
    #[arg(long, default_value = "maj")]
    pub gate_set: String,
    /// Functional (every gate executed, outputs checked) or analytical (counted).
    #[arg(long, value_enum, default_value = "functional")]
    pub mode: ModeArg,
    /// Per-layer mapping strategy.
    #[arg(long, value_enum, default_value = "auto")]
    pub strategy: StrategyArg,
    /// What `--strategy auto` minimizes.
    #[arg(long, value_enum, default_value = "energy")]
    pub objective: ObjectiveArg,
    /// Images: the held-out digits for digits models (all 360 by default), else the
    /// number of seeded random inputs (default 1).
    #[arg(long)]
    pub images: Option<usize>,
    /// Gate error rates for the accuracy table (comma-separated probabilities; functional).
    #[arg(long, value_delimiter = ',')]
    pub error_rates: Vec<f64>,
    /// Seed of the fault streams and random inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Run even if the IR drop along a line segment leaves far rows outside a gate's window
    /// (the report lists the violations; results assume every gate switches).
    #[arg(long)]
    pub allow_ir_violation: bool,
    /// Worker threads: 0 = one per core [default: SLURM_CPUS_PER_TASK, else one per core].
    /// Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// One row of the accuracy-vs-error-rate table.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRow {
    /// Gate error probability.
    pub error_rate: f64,
    /// Gate-output flips injected.
    pub flips: u64,
    /// Correct predictions (labelled inputs).
    pub correct: Option<usize>,
    /// Predictions equal to the fault-free golden executor's.
    pub agree_with_golden: usize,
}

/// The report of `simulate`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    model: &'a str,
    device: &'a str,
    array: &'a str,
    mode: Mode,
    images: usize,
    energy_pj_per_image: f64,
    cycles: u64,
    /// Images whose final codes equal the golden executor's (functional).
    bit_exact_images: Option<usize>,
    correct: Option<usize>,
    layers: &'a [LayerReport],
    faults: &'a [FaultRow],
    /// A compressed zoo network against its dense int8 version, per strategy (analytical).
    versus_dense_int8: &'a [Versus],
    /// Gates the IR drop keeps from switching in the far rows (run under
    /// `--allow-ir-violation`); empty when every gate switches.
    ir_violations: Vec<String>,
}

/// One strategy's cost on the compressed network and on its dense int8 version (same
/// network, activations and seed; weights not pruned, 8-bit), analytical, per image.
#[derive(Debug, Clone, Serialize)]
pub struct Versus {
    /// Strategy used for every weighted layer.
    pub strategy: Strategy,
    /// Energy of the compressed network, pJ.
    pub energy_pj: f64,
    /// Energy of the dense int8 network, pJ.
    pub dense_int8_energy_pj: f64,
    /// Latency of the compressed network, cycles.
    pub cycles: u64,
    /// Latency of the dense int8 network, cycles.
    pub dense_int8_cycles: u64,
    /// Per weighted layer: (name, energy pJ, dense int8 energy pJ, cycles, dense cycles).
    pub layers: Vec<(String, f64, f64, u64, u64)>,
}

/// Both strategies on `prog` and on `dense`, analytically, one image.
fn versus_dense(
    prog: &golden::Program,
    dense: &golden::Program,
    hw: &Hw,
) -> Result<Vec<Versus>, UsageError> {
    let s = prog.network().input_shape();
    let img = vec![Array3::zeros((s.c, s.h, s.w))];
    Strategy::ALL
        .iter()
        .map(|&strategy| {
            let opts = RunOptions {
                mode: Mode::Analytical,
                choice: Choice::Force(strategy),
                error_rate: 0.0,
                seed: 0,
            };
            let (c, d) = (
                map::run_network(prog, &img, hw, &opts)?,
                map::run_network(dense, &img, hw, &opts)?,
            );
            Ok(Versus {
                strategy,
                energy_pj: c.energy_pj(),
                dense_int8_energy_pj: d.energy_pj(),
                cycles: c.cycles(),
                dense_int8_cycles: d.cycles(),
                layers: c
                    .layers
                    .iter()
                    .zip(&d.layers)
                    .filter(|(l, _)| l.strategy.is_some())
                    .map(|(l, m)| {
                        (
                            l.name.clone(),
                            l.energy.total_pj(),
                            m.energy.total_pj(),
                            l.cycles,
                            m.cycles,
                        )
                    })
                    .collect(),
            })
        })
        .collect()
}

/// `cramulator simulate`.
pub fn simulate(a: &SimulateArgs) -> Result<Outcome, CliError> {
    let pool = crate::guard::pool(a.threads, "--threads")?;
    pool.install(|| simulate_in(a))
}

fn simulate_in(a: &SimulateArgs) -> Result<Outcome, CliError> {
    if let Some(p) = a.error_rates.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(UsageError::new(format!(
            "--error-rates {p}: must be probabilities in [0, 1]"
        ))
        .into());
    }
    let config = config(a)?;
    let mode = config.run.mode;
    if mode == Mode::Analytical && !a.error_rates.is_empty() {
        return Err(UsageError::new(
            "--error-rates needs --mode functional (faults change values)",
        )
        .into());
    }
    let Resolved {
        prog,
        hw,
        choice,
        ir,
        ..
    } = config.resolve()?;
    let images = Images::of(&prog, a.images, a.seed)?;
    let opts = RunOptions {
        mode,
        choice,
        error_rate: 0.0,
        seed: a.seed,
    };
    let checked = run_checked(&prog, &images, &hw, &opts, None)?;
    let (run, exact, correct) = (checked.run, checked.exact, checked.correct);
    let mut faults = Vec::new();
    for &p in &a.error_rates {
        let faulty = RunOptions {
            error_rate: p,
            ..opts
        };
        let r = run_checked(&prog, &images, &hw, &faulty, None)?;
        faults.push(FaultRow {
            error_rate: p,
            flips: r.run.layers.iter().map(|l| l.flips).sum(),
            correct: r.correct,
            agree_with_golden: r.agree.unwrap_or(0),
        });
    }
    // A compressed zoo network is also costed against its dense int8 version.
    let versus = if config.compressed() {
        let dense = config.dense_int8().resolve()?.prog;
        versus_dense(&prog, &dense, &hw)?
    } else {
        Vec::new()
    };
    let n = images.len();
    let report = Report {
        model: &prog.network().name,
        device: &hw.lib.device.params.name,
        array: &hw.org.params.name,
        mode,
        images: n,
        energy_pj_per_image: run.energy_pj() / n as f64,
        cycles: run.cycles(),
        bit_exact_images: exact,
        correct,
        layers: &run.layers,
        faults: &faults,
        versus_dense_int8: &versus,
        ir_violations: ir.violations(),
    };
    let ok = exact.is_none_or(|e| e == n);
    if a.json {
        emit(&to_json(&report))?;
    } else {
        emit(&text(&report))?;
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::CheckFailed
    })
}

/// The run configuration the flags describe.
fn config(a: &SimulateArgs) -> Result<Config, UsageError> {
    let gate_set = match a.gate_set.as_str() {
        "maj" => GateSet::Maj,
        "nand" => GateSet::Nand,
        s => {
            return Err(UsageError::new(format!(
                "--gate-set {s}: expected maj or nand"
            )));
        }
    };
    Ok(Config {
        cram: CramConfig {
            device: a.device.as_str().into(),
            array: a.array.as_str().into(),
            gate_set,
            allow_ir_violation: a.allow_ir_violation,
            ..CramConfig::default()
        },
        workload: WorkloadConfig {
            model: a.model.clone(),
            weight_bits: a.weight_bits,
            act_bits: a.act_bits,
            sparsity: a.sparsity,
            seed: None,
            model_hash: None,
        },
        mapping: MappingConfig {
            strategy: match a.strategy {
                StrategyArg::Auto => StrategyChoice::Auto,
                StrategyArg::Const => StrategyChoice::Const,
                StrategyArg::Stored => StrategyChoice::Stored,
            },
            objective: match a.objective {
                ObjectiveArg::Energy => Objective::Energy,
                ObjectiveArg::Latency => Objective::Latency,
                ObjectiveArg::Edp => Objective::Edp,
            },
        },
        run: RunSection {
            mode: match a.mode {
                ModeArg::Functional => Mode::Functional,
                ModeArg::Analytical => Mode::Analytical,
            },
            seed: a.seed,
            images: a.images,
        },
        compare: Default::default(),
        paper: None,
        from_flags: true,
    })
}

/// A network run over every image of a run, in waves, with (functional mode) each wave's
/// outputs checked against the golden executor.
pub(crate) struct Checked {
    /// The waves together.
    pub run: NetRun,
    /// Images whose final codes equal the golden executor's (functional).
    pub exact: Option<usize>,
    /// Correct predictions (functional, labelled images).
    pub correct: Option<usize>,
    /// Predictions equal to the golden executor's (functional).
    pub agree: Option<usize>,
}

/// An analytical run of one image (its latency and utilization, and the wave size).
pub(crate) fn one_image(
    prog: &golden::Program,
    hw: &Hw,
    opts: &RunOptions,
    cache: Option<&map::PlanCache>,
) -> Result<NetRun, UsageError> {
    let one = RunOptions {
        mode: Mode::Analytical,
        ..*opts
    };
    map::run_network_with(prog, &[Array3::zeros((1, 1, 1))], hw, &one, cache)
}

/// Runs every image ([`map::run_waves`]: functional mode executes them in waves of
/// [`map::wave_size`]), refusing first a wave whose memory estimate exceeds `--max-memory`;
/// in functional mode each wave's outputs are checked against the golden executor (and the
/// labels) and dropped.
pub(crate) fn run_checked(
    prog: &golden::Program,
    images: &Images,
    hw: &Hw,
    opts: &RunOptions,
    cache: Option<&map::PlanCache>,
) -> Result<Checked, UsageError> {
    let n = images.len();
    map::check_memory(prog, n, hw, opts, cache)?;
    let functional = opts.mode == Mode::Functional;
    let (mut exact, mut correct, mut agree) = (0, 0, 0);
    let argmax = cram_workloads::exec::argmax;
    let run = map::run_waves(
        prog,
        n,
        map::wave_size(prog),
        hw,
        opts,
        cache,
        &mut |r| Ok(images.get(r)),
        &mut |r, imgs, run| {
            let golden = golden_outputs(prog, imgs)?;
            exact += run
                .outputs
                .iter()
                .zip(&golden)
                .filter(|(x, g)| x == g)
                .count();
            let pred: Vec<usize> = run.outputs.iter().map(argmax).collect();
            agree += pred
                .iter()
                .zip(golden.iter().map(argmax))
                .filter(|(p, g)| **p == *g)
                .count();
            if let Some(labels) = images.labels(r) {
                correct += pred.iter().zip(labels).filter(|(p, y)| p == y).count();
            }
            Ok(())
        },
    )?;
    Ok(Checked {
        run,
        exact: functional.then_some(exact),
        correct: (functional && images.labels(0..0).is_some()).then_some(correct),
        agree: functional.then_some(agree),
    })
}

/// The golden executor's final-layer codes for each image.
pub(crate) fn golden_outputs(
    prog: &golden::Program,
    images: &[Array3<i64>],
) -> Result<Vec<Array3<i64>>, UsageError> {
    Ok(images
        .iter()
        .map(|x| prog.run(x).map(|mut v| v.pop().expect("layers")))
        .collect::<Result<_, _>>()?)
}

/// The images of a run: the held-out digits with their labels (digits models), or seeded
/// random input codes, generated a wave at a time so that a run never holds them all.
pub(crate) struct Images {
    n: usize,
    kind: ImageKind,
}

enum ImageKind {
    Digits {
        codes: Vec<Array3<i64>>,
        labels: Vec<usize>,
    },
    Random {
        shape: cram_workloads::net::Shape,
        lo: i64,
        hi: i64,
        seed: u64,
    },
}

impl Images {
    /// `images` of the held-out digits for digits models (all 360 by default), else
    /// `images` seeded random inputs (default 1).
    pub(crate) fn of(
        prog: &golden::Program,
        images: Option<usize>,
        seed: u64,
    ) -> Result<Images, UsageError> {
        let shape = prog.network().input_shape();
        let digits_like = shape.c == 64 && shape.h == 1 && shape.w == 1 && prog.act(0).bits == 5;
        if digits_like {
            let (_, test) = Digits::embedded().split(SPLIT_SEED);
            let n = images.unwrap_or(test.len());
            if n == 0 || n > test.len() {
                return Err(UsageError::new(format!(
                    "--images {n} (run.images): the held-out digits are {} images; use 1..={}",
                    test.len(),
                    test.len()
                )));
            }
            let codes = code_inputs(&test).into_iter().take(n).collect();
            let labels = test.labels.iter().take(n).map(|&y| y as usize).collect();
            return Ok(Images {
                n,
                kind: ImageKind::Digits { codes, labels },
            });
        }
        let n = images.unwrap_or(1);
        if n == 0 || n > 1 << 16 {
            return Err(UsageError::new(format!(
                "--images {n}: must be in 1..=65536"
            )));
        }
        let (lo, hi) = prog.act(0).range();
        Ok(Images {
            n,
            kind: ImageKind::Random {
                shape,
                lo,
                hi,
                seed,
            },
        })
    }

    /// How many.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// The input codes of images `r`.
    pub(crate) fn get(&self, r: Range<usize>) -> Vec<Array3<i64>> {
        match &self.kind {
            ImageKind::Digits { codes, .. } => codes[r].to_vec(),
            ImageKind::Random {
                shape,
                lo,
                hi,
                seed,
            } => cram_workloads::compress::synthetic_inputs_range(*shape, r, *seed)
                .iter()
                .map(|x| x.mapv(|v| (lo + ((hi - lo + 1) as f32 * v) as i64).min(*hi)))
                .collect(),
        }
    }

    /// The labels of images `r` (labelled data only).
    pub(crate) fn labels(&self, r: Range<usize>) -> Option<&[usize]> {
        match &self.kind {
            ImageKind::Digits { labels, .. } => Some(&labels[r]),
            ImageKind::Random { .. } => None,
        }
    }
}

fn text(r: &Report<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} on {} / {} ({:?}), {} image(s): {:.1} pJ per image, {} cycles for the batch",
        r.model, r.device, r.array, r.mode, r.images, r.energy_pj_per_image, r.cycles
    );
    s.push_str(&crate::records::ir_warning(
        &r.ir_violations,
        crate::records::IR_ALLOWED,
    ));
    if let Some(e) = r.bit_exact_images {
        let _ = writeln!(
            s,
            "bit-exact against the golden executor: {e}/{} images",
            r.images
        );
    }
    if let Some(c) = r.correct {
        let _ = writeln!(
            s,
            "accuracy: {c}/{} = {:.2} %",
            r.images,
            100.0 * c as f64 / r.images as f64
        );
    }
    let _ = writeln!(
        s,
        "{:<10} {:<8} {:<7} {:>7} {:>9} {:>6} {:>6} {:>12} {:>14} {:>12} {:>14}",
        "layer",
        "op",
        "strat",
        "streams",
        "subarrays",
        "lanes",
        "cols",
        "gate steps",
        "loaded bits",
        "cycles",
        "energy pJ"
    );
    for l in r.layers {
        let _ = writeln!(
            s,
            "{:<10} {:<8} {:<7} {:>7} {:>9} {:>5.0}% {:>5.0}% {:>12} {:>14} {:>12} {:>14.1}",
            l.name,
            l.op,
            l.strategy.map_or("-", Strategy::name),
            l.streams,
            l.subarrays,
            100.0 * l.lane_utilization,
            100.0 * l.column_utilization,
            l.gate_steps,
            l.loaded_bits,
            l.cycles,
            l.energy.total_pj()
        );
    }
    for v in r.versus_dense_int8 {
        let _ = writeln!(
            s,
            "\nstrategy {} against dense int8 (analytical, one image): energy {:.1} vs {:.1} pJ \
             ({:.2}× less), latency {} vs {} cycles ({:.2}× less)",
            v.strategy.name(),
            v.energy_pj,
            v.dense_int8_energy_pj,
            v.dense_int8_energy_pj / v.energy_pj,
            v.cycles,
            v.dense_int8_cycles,
            v.dense_int8_cycles as f64 / v.cycles as f64
        );
        let _ = writeln!(
            s,
            "{:<24} {:>14} {:>14} {:>8} {:>12} {:>12} {:>8}",
            "layer", "energy pJ", "dense int8", "saving", "cycles", "dense int8", "speedup"
        );
        for (name, e, de, c, dc) in &v.layers {
            let _ = writeln!(
                s,
                "{:<24} {:>14.1} {:>14.1} {:>7.2}× {:>12} {:>12} {:>7.2}×",
                name,
                e,
                de,
                de / e,
                c,
                dc,
                *dc as f64 / *c as f64
            );
        }
    }
    if !r.faults.is_empty() {
        let _ = writeln!(
            s,
            "\n{:>10} {:>12} {:>10} {:>18}",
            "error rate", "flips", "accuracy", "agree with golden"
        );
        for f in r.faults {
            let acc = f.correct.map_or("-".to_owned(), |c| {
                format!("{:.2} %", 100.0 * c as f64 / r.images as f64)
            });
            let _ = writeln!(
                s,
                "{:>10.0e} {:>12} {:>10} {:>13}/{}",
                f.error_rate, f.flips, acc, f.agree_with_golden, r.images
            );
        }
    }
    s
}
