//! `cramulator simulate`: one quantized network mapped onto a CRAM chip, run layer by layer
//! (functional: bit-exact, checked against the golden executor; or analytical), with the
//! per-layer report and, for the digits models, the held-out accuracy and its dependence on
//! the gate error rate.

use crate::records::*;
use std::ops::Range;

use cram_workloads::digits::{self, Digits, SPLIT_SEED};
use cram_workloads::golden;
use cram_workloads::train;
use ndarray::Array3;

use crate::error::Error;
use crate::experiment::config::{Config, Resolved};
use crate::experiment::options::Options;
use crate::model::limits::Limits;
use crate::model::map::{self, Choice, Hw, Mode, NetRun, RunOptions, Strategy};

/// Both strategies on `prog` and on `dense`, analytically, one image.
pub(crate) fn versus_dense(
    prog: &golden::Program,
    dense: &golden::Program,
    hw: &Hw,
    limits: crate::model::limits::Limits,
) -> Result<Vec<Versus>, Error> {
    let s = prog.network().input_shape();
    let img = vec![Array3::zeros((s.c, s.h, s.w))];
    Strategy::ALL
        .iter()
        .map(|&strategy| {
            let opts = RunOptions {
                mode: Mode::Analytical,
                choice: Choice::force(strategy),
                error_rates: [0.0; cram_arch::GateKind::COUNT],
                seed: 0,
                limits,
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
                    .filter(|(l, _)| l.layout.is_some())
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
) -> Result<NetRun, Error> {
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
) -> Result<Checked, Error> {
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
) -> Result<Vec<Array3<i64>>, Error> {
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

pub(crate) enum ImageKind {
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
    ) -> Result<Images, Error> {
        let shape = prog.network().input_shape();
        let digits_like = digits::digits_layout(shape) && prog.act(0) == train::DIGITS_INPUT;
        if digits_like {
            let (_, test) = Digits::embedded().split(SPLIT_SEED);
            let n = images.unwrap_or(test.len());
            if n == 0 || n > test.len() {
                return Err(Error::usage(format!(
                    "--images {n} (run.images): the held-out digits are {} images; use 1..={}",
                    test.len(),
                    test.len()
                )));
            }
            let codes = digits::code_inputs(&test, shape)
                .into_iter()
                .take(n)
                .collect();
            let labels = test.labels.iter().take(n).map(|&y| y as usize).collect();
            return Ok(Images {
                n,
                kind: ImageKind::Digits { codes, labels },
            });
        }
        let n = images.unwrap_or(1);
        if n == 0 || n > 1 << 16 {
            return Err(Error::usage(format!("--images {n}: must be in 1..=65536")));
        }
        let (lo, hi) = prog.act(0).range();
        // A token network's inputs are ids inside its table.
        let hi = prog
            .network()
            .token_vocab()
            .map_or(hi, |v| hi.min(v as i64 - 1));
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

/// Runs one network on CRAM: every image executed and checked against the golden integer
/// executor (functional) or counted (analytical), then the same images with each gate error
/// rate of `error_rates` injected, and a compressed zoo network costed against its dense
/// int8 version. The images, seed, mode and mapping come from `config`.
pub fn simulate(
    config: &Config,
    error_rates: &[f64],
    options: &Options,
) -> Result<SimulateReport, Error> {
    options
        .pool()?
        .install(|| simulate_in(config, error_rates, options.limits))
}

fn simulate_in(
    config: &Config,
    error_rates: &[f64],
    limits: Limits,
) -> Result<SimulateReport, Error> {
    if let Some(p) = error_rates.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(Error::usage(format!(
            "--error-rates {p}: must be probabilities in [0, 1]"
        )));
    }
    let mode = config.run.mode;
    if mode == Mode::Analytical && !error_rates.is_empty() {
        return Err(Error::usage(
            "--error-rates needs --mode functional (faults change values)",
        ));
    }
    let Resolved {
        prog,
        hw,
        choice,
        ir,
        ..
    } = config.resolve(limits.memory)?;
    let images = Images::of(&prog, config.run.images, config.run.seed)?;
    let opts = RunOptions {
        mode,
        choice,
        error_rates: [0.0; cram_arch::GateKind::COUNT],
        seed: config.run.seed,
        limits,
    };
    let checked = run_checked(&prog, &images, &hw, &opts, None)?;
    crate::experiment::config::check_layer_gates(
        &checked.run,
        &hw.lib,
        config.mapping.max_gate_error,
    )?;
    let (run, exact, correct) = (checked.run, checked.exact, checked.correct);
    let mut faults = Vec::new();
    for &p in error_rates {
        let faulty = RunOptions {
            error_rates: [p; cram_arch::GateKind::COUNT],
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
        let dense = config.dense_int8().resolve(limits.memory)?.prog;
        versus_dense(&prog, &dense, &hw, limits)?
    } else {
        Vec::new()
    };
    let n = images.len();
    let report = SimulateReport {
        model: prog.network().name.clone(),
        device: hw.lib.device.params.name.clone(),
        array: hw.org.params.name.clone(),
        mode,
        images: n,
        energy_pj_per_image: run.energy_pj() / n as f64,
        cycles: run.cycles(),
        bit_exact_images: exact,
        correct,
        layers: run.layers.iter().map(Into::into).collect(),
        faults,
        versus_dense_int8: versus,
        ir_violations: ir.violations(),
        ok: exact.is_none_or(|e| e == n),
    };
    Ok(report)
}
