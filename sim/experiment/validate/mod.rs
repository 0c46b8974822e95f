//! `cramulator validate`: the validation suite. Check by check it says what the simulator
//! reproduces, within what tolerance, and what it cannot reproduce and why (docs/model.md §6,
//! `docs/references.md` L-c). Groups:
//!
//! * physics — gate truth tables from the threshold model, window edges, the majority
//!   full-adder identity, the IR-drop trend (max rows falls as R_wire^−½, T14);
//! * kernels — NAND ripple add = 9n − 4 steps (T1), majority full adder and ripple add step
//!   counts, multiply gate counts (T2), every kernel bit-exact in every gate set, and the
//!   analytical cost model equal to the functional run on whole networks;
//! * networks — digits-mlp variants and digits-transformer bit-exact against the golden
//!   integer executor, the zoo's MAC and parameter totals against the published ones;
//! * baseline — the three calibration points (`calibrate.rs`);
//! * papers — one file per reproducible published claim in `configs/papers/` (shipped in the
//!   binary; `--papers DIR` reads another folder): its claim, source, every assumption, and
//!   checks of our number against the reported one.
//!
//! A check is *required* or informational. The command exits 1 when a required check
//! diverges; an informational one (a paper claim whose setup is not public) reports its
//! divergence with the reason and does not fail the run. The report has no timings, so the
//! same build gives the same bytes (`docs/validation.md` is generated from it).

use std::path::Path;

use cram_arch::{GateKind, GateLibrary, ir, presets};

use crate::error::Error;
use crate::experiment::config::Config;
use crate::experiment::options::Options;
use crate::experiment::simulate::Images;
use crate::model::engine::count::Counter;
use crate::model::kernels::check::{RunConfig, run_and_check};
use crate::model::kernels::{GateSet, KernelKind, KernelSpec};
use crate::model::limits::Limits;
use crate::model::map::{self, Choice, Mode, RunOptions, Strategy};
use crate::records::{
    CheckStatus, NotAttempted, SCHEMA_VERSION, ValidationCheck, ValidationReport,
};

mod papers;
use papers::paper_checks;

/// A group of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// Truth tables, window edges, the majority full adder, the IR-drop trend.
    Physics,
    /// Kernel step and gate counts, bit-exact kernels, analytical == functional.
    Kernels,
    /// Bit-exact networks and the zoo's published totals.
    Networks,
    /// The baseline's three calibration points.
    Baseline,
    /// The published claims of configs/papers/.
    Papers,
}

impl Group {
    /// Every group, in the order they run.
    pub const ALL: [Group; 5] = [
        Group::Physics,
        Group::Kernels,
        Group::Networks,
        Group::Baseline,
        Group::Papers,
    ];

    /// What the group checks.
    pub fn description(self) -> &'static str {
        match self {
            Group::Physics => {
                "Truth tables, window edges, the majority full adder, the IR-drop trend"
            }
            Group::Kernels => {
                "Kernel step and gate counts, bit-exact kernels, analytical == functional"
            }
            Group::Networks => "Bit-exact networks and the zoo's published totals",
            Group::Baseline => "The baseline's three calibration points",
            Group::Papers => "The published claims of configs/papers/",
        }
    }

    /// The group's name (`--group NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Group::Physics => "physics",
            Group::Kernels => "kernels",
            Group::Networks => "networks",
            Group::Baseline => "baseline",
            Group::Papers => "papers",
        }
    }
}

/// The shipped paper files, built into the binary (a test holds them equal to
/// `configs/papers/`).
pub const PAPERS: [(&str, &str); 5] = [
    (
        "t1-nand-ripple-add.toml",
        include_str!("../../../configs/papers/t1-nand-ripple-add.toml"),
    ),
    (
        "t2-nand-multiply.toml",
        include_str!("../../../configs/papers/t2-nand-multiply.toml"),
    ),
    (
        "t4-mnist-vs-nmp.toml",
        include_str!("../../../configs/papers/t4-mnist-vs-nmp.toml"),
    ),
    (
        "t5-ai-energy-1000x.toml",
        include_str!("../../../configs/papers/t5-ai-energy-1000x.toml"),
    ),
    (
        "t13-data-movement.toml",
        include_str!("../../../configs/papers/t13-data-movement.toml"),
    ),
];

/// The claims of `docs/references.md` L-c with no paper file, and why.
pub(crate) const NOT_ATTEMPTED: [(&str, &str, &str); 8] = [
    (
        "T3",
        "dot-product instruction counts over N lanes (public PIM endurance simulator)",
        "the count includes that simulator's READ/WRITE transfers between lanes; cramulator \
         reduces within a lane's columns and moves partial sums over buses, so the schedules \
         differ by construction (its multiply, T2, is reproduced gate for gate)",
    ),
    (
        "T6",
        "SNN inference and learning engine: up to 164.1× lower energy than an ASIC",
        "no spiking-network model and no numbers of the ASIC baseline in the sources",
    ),
    (
        "T7",
        "TC 2019: convolution and binary inference, 'significant' gains",
        "no numbers in the readable abstract",
    ),
    (
        "T8",
        "PIMBALL BNN classifiers and a genomics kernel",
        "no numbers in the readable abstract",
    ),
    (
        "T9",
        "SpinPM pattern matching",
        "no numbers in the readable abstract; no pattern-matching workload",
    ),
    (
        "T10",
        "MOUSE intermittent-power inference",
        "no numbers in the readable abstracts; no intermittent-power model",
    ),
    (
        "T11",
        "CRAM-ER: latency down by up to two orders of magnitude with a CMOS adder tree",
        "no hybrid CRAM + CMOS adder-tree model",
    ),
    (
        "T12",
        "measured gate and full-adder accuracy of the 2024 demonstration",
        "the measured per-gate error rates are not readable in the sources",
    ),
];

pub(crate) const LIT: &str = "docs/references.md";

/// Runs the groups of checks (with the paper files of `papers`, else the shipped ones) and
/// collects the report.
///
/// ```
/// use cramulator::experiment::validate::{Group, report};
///
/// let r = report(&[Group::Physics], None, &Default::default())?;
/// assert!(r.passed);
/// # Ok::<(), cramulator::error::Error>(())
/// ```
pub fn report(
    groups: &[Group],
    papers: Option<&Path>,
    options: &Options,
) -> Result<ValidationReport, Error> {
    options
        .pool()?
        .install(|| report_in(groups, papers, options.limits))
}

fn report_in(
    groups: &[Group],
    papers: Option<&Path>,
    limits: Limits,
) -> Result<ValidationReport, Error> {
    let mut checks = Vec::new();
    for &g in groups {
        let mut got = match g {
            Group::Physics => physics()?,
            Group::Kernels => kernels(limits)?,
            Group::Networks => networks(limits)?,
            Group::Baseline => baseline()?,
            Group::Papers => paper_checks(papers, limits)?,
        };
        for c in &mut got {
            c.group = g.name().to_owned();
        }
        checks.extend(got);
    }
    let required_failed = checks
        .iter()
        .filter(|c| c.required && c.status == CheckStatus::Diverges)
        .count();
    Ok(ValidationReport {
        schema_version: SCHEMA_VERSION,
        cramulator_version: env!("CARGO_PKG_VERSION").to_owned(),
        groups: groups.iter().map(|g| g.name().to_owned()).collect(),
        passed: required_failed == 0,
        required_failed,
        checks,
        not_attempted: if groups.contains(&Group::Papers) {
            NOT_ATTEMPTED
                .iter()
                .map(|&(id, claim, reason)| NotAttempted {
                    id: id.to_owned(),
                    claim: claim.to_owned(),
                    reason: reason.to_owned(),
                })
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// A required check that holds exactly or not at all.
pub(crate) fn exact(
    id: String,
    name: &str,
    expected: String,
    obtained: String,
    failure: Option<String>,
    source: &str,
) -> ValidationCheck {
    ValidationCheck {
        group: String::new(),
        id,
        name: name.to_owned(),
        expected,
        obtained,
        tolerance: "exact".to_owned(),
        status: if failure.is_none() {
            CheckStatus::Reproduced
        } else {
            CheckStatus::Diverges
        },
        reason: failure,
        source: source.to_owned(),
        required: true,
        assumptions: Vec::new(),
        ambiguous: None,
        what_it_would_take: Vec::new(),
    }
}

/// Every input row of an n-input gate.
pub(crate) fn input_rows(n: usize) -> impl Iterator<Item = Vec<bool>> {
    (0..1u32 << n).map(move |m| (0..n).map(|i| m >> i & 1 == 1).collect())
}

/// The first of `items` that failed, and how many did.
pub(crate) fn first_failure(failed: &[String]) -> Option<String> {
    failed
        .first()
        .map(|f| format!("{} failed, first: {f}", failed.len()))
}

pub(crate) fn physics() -> Result<Vec<ValidationCheck>, Error> {
    let mut out = Vec::new();
    let org = presets::array("cram-1k").map_err(Error::from)?;
    let r_w = org.params.peripherals.r_wire_ohm_per_cell;
    for name in presets::NAMES {
        let lib = GateLibrary::derive(&presets::device(name).map_err(Error::from)?);
        let available: Vec<_> = lib.gates.iter().filter(|g| g.available()).collect();
        // Truth tables at each gate's chosen bias.
        let (mut rows, mut wrong) = (0, Vec::new());
        for g in &available {
            for ins in input_rows(g.inputs) {
                rows += 1;
                if g.evaluate(&ins, g.bias_v) != g.kind.truth(&ins) {
                    wrong.push(format!("{} at {ins:?}", g.kind));
                }
            }
        }
        out.push(exact(
            format!("truth-tables/{name}"),
            "threshold model at each gate's bias = its truth table",
            format!("{rows}/{rows} input rows of {} gates", available.len()),
            format!("{}/{rows}", rows - wrong.len()),
            first_failure(&wrong),
            &format!("{LIT} L-A2 (threshold switching), docs/model.md §1.2"),
        ));
        // Window edges: exact just inside [V_min, V_max), wrong just outside.
        let mut wrong = Vec::new();
        for g in &available {
            let exact_at =
                |v: f64| input_rows(g.inputs).all(|i| g.evaluate(&i, v) == g.kind.truth(&i));
            if !exact_at(g.v_min_v * (1.0 + 1e-9)) || !exact_at(g.v_max_v * (1.0 - 1e-9)) {
                wrong.push(format!("{} inexact just inside its window", g.kind));
            }
            if exact_at(g.v_min_v * (1.0 - 1e-9)) || exact_at(g.v_max_v * (1.0 + 1e-9)) {
                wrong.push(format!("{} still exact just outside its window", g.kind));
            }
        }
        out.push(exact(
            format!("window-edges/{name}"),
            "exact just inside [V_min, V_max), wrong just outside (±1e-9 relative)",
            format!("{} of {} gates", available.len(), available.len()),
            format!(
                "{} of {}",
                available.len() - wrong.len().min(available.len()),
                available.len()
            ),
            first_failure(&wrong),
            &format!("{LIT} L-A2, L-c self-check (i)"),
        ));
        out.push(ir_trend(name, &lib, r_w));
    }
    // The majority full adder: Cout = MAJ3(a, b, c), S = MAJ5(a, b, c, ¬Cout, ¬Cout).
    let wrong: Vec<String> = input_rows(3)
        .filter(|r| {
            let cout = GateKind::Maj3.truth(r);
            let s = GateKind::Maj5.truth(&[r[0], r[1], r[2], !cout, !cout]);
            let sum = r.iter().filter(|&&b| b).count();
            (cout, s) != (sum >= 2, sum % 2 == 1)
        })
        .map(|r| format!("{r:?}"))
        .collect();
    out.push(exact(
        "majority-full-adder".to_owned(),
        "Cout = MAJ3(a,b,c), S = MAJ5(a,b,c,¬Cout,¬Cout) over all 8 rows",
        "8/8 rows".to_owned(),
        format!("{}/8", 8 - wrong.len()),
        first_failure(&wrong),
        &format!("{LIT} L-A6 [D], L-c self-check (ii)"),
    ));
    Ok(out)
}

/// The binding gate's IR-drop row limit S over wire resistances ¼× to 16× the cram-1k
/// value: it must fall monotonically, and since the far row's drop grows as S(S+1)·R (T14:
/// IR drop ∝ rows²), S(S+1) must scale as R^−1 (whole rows blur the exponent a little).
pub(crate) fn ir_trend(device: &str, lib: &GateLibrary, r_w: f64) -> ValidationCheck {
    let scales = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
    let rows: Vec<u64> = scales
        .iter()
        .map(|s| {
            lib.gates
                .iter()
                .filter(|g| g.available())
                .filter_map(|g| ir::max_rows(g, r_w * s).max_rows)
                .min()
                .unwrap_or(0)
        })
        .collect();
    let pairs = |s: u64| (s * (s + 1)) as f64;
    let (first, last) = (pairs(rows[0]), pairs(rows[rows.len() - 1]));
    let exponent = (last / first).ln() / 64f64.ln();
    let monotone = rows.windows(2).all(|w| w[1] <= w[0]) && last < first;
    let ok = monotone && (exponent + 1.0).abs() <= 0.1;
    let listed: Vec<String> = scales
        .iter()
        .zip(&rows)
        .map(|(s, r)| format!("{s}×R: {r}"))
        .collect();
    ValidationCheck {
        group: String::new(),
        id: format!("ir-drop-trend/{device}"),
        name: "max rows S per driven line falls as the wire resistance R rises".to_owned(),
        expected: "monotone fall; S(S+1) ∝ R^−1".to_owned(),
        obtained: format!(
            "S at {} (exponent of S(S+1): {exponent:.3})",
            listed.join(", ")
        ),
        tolerance: "monotone; exponent −1 ± 0.1 (S is a whole number of rows)".to_owned(),
        status: if ok {
            CheckStatus::WithinTolerance
        } else {
            CheckStatus::Diverges
        },
        reason: (!ok).then(|| format!("rows {listed:?}, exponent {exponent:.3}")),
        source: format!(
            "{LIT} T14 (Zabihi et al., JxCDC 2020: IR drop ∝ rows²), L-c self-check (iv); \
             binding gate of the device; R of cram-1k = {r_w} Ω per cell"
        ),
        required: true,
        assumptions: Vec::new(),
        ambiguous: None,
        what_it_would_take: Vec::new(),
    }
}

pub(crate) fn spec(kind: KernelKind, bits: u32, gate_set: GateSet) -> KernelSpec {
    KernelSpec {
        kind,
        bits,
        bits_b: bits,
        constant: if kind == KernelKind::Mulc { -45 } else { 0 },
        gate_set,
    }
}

/// Gate steps and per-gate counts of a kernel.
pub(crate) fn counts(
    kind: KernelKind,
    bits: u32,
    set: GateSet,
) -> crate::model::engine::count::Counts {
    Counter::count(&spec(kind, bits, set).build().program, 1)
}

pub(crate) fn by_gate(c: &crate::model::engine::count::Counts, g: GateKind) -> u64 {
    c.by_gate.get(&g).copied().unwrap_or(0)
}

/// The public simulator whose step and gate counts T1 and T2 are taken from.
const C1: &str = "public PIM endurance simulator (software/adders.cpp, operations.cpp)";

pub(crate) fn kernels(limits: Limits) -> Result<Vec<ValidationCheck>, Error> {
    let mut out = vec![nand_add(), majority_add(), nand_multiply()];
    // Every kernel bit-exact on random data in 1,024 lanes, in every gate set.
    for set in GateSet::ALL {
        out.push(bit_exact(set, limits));
    }
    // Analytical == functional on whole networks.
    for (model, images) in [("digits-mlp-int4", 32), ("lenet5", 1)] {
        out.push(analytical_equals_functional(model, images, limits)?);
    }
    Ok(out)
}

/// T1: the NAND ripple add is 9n − 4 steps of NAND and NOT.
fn nand_add() -> ValidationCheck {
    let wrong: Vec<String> = (1..=crate::model::kernels::MAX_BITS)
        .filter_map(|n| {
            let c = counts(KernelKind::Add, n, GateSet::Nand);
            let only_nand = c
                .by_gate
                .keys()
                .all(|g| matches!(g, GateKind::Nand | GateKind::Not));
            (c.gate_steps != u64::from(9 * n - 4) || !only_nand)
                .then(|| format!("n = {n}: {} steps, gates {:?}", c.gate_steps, c.by_gate))
        })
        .collect();
    exact(
        "nand-add-9n-4".to_owned(),
        "NAND-set n-bit ripple add = 9n − 4 steps of NAND/NOT, n = 1..32",
        "32, 68, 140, 284 steps at n = 4, 8, 16, 32".to_owned(),
        format!(
            "{} steps at n = 4, 8, 16, 32; {}/32 widths exact",
            [4, 8, 16, 32]
                .map(|n| counts(KernelKind::Add, n, GateSet::Nand)
                    .gate_steps
                    .to_string())
                .join(", "),
            32 - wrong.len()
        ),
        first_failure(&wrong),
        &format!("{LIT} T1 [C], {C1}"),
    )
}

/// The majority full adder is MAJ3 + 2 INVMAJ3 + MAJ5 (4 steps) and the n-bit ripple add
/// 4n steps.
fn majority_add() -> ValidationCheck {
    let fa = counts(KernelKind::Fa, 1, GateSet::Maj);
    let fa_ok = fa.gate_steps == 4
        && by_gate(&fa, GateKind::Maj3) == 1
        && by_gate(&fa, GateKind::InvMaj3) == 2
        && by_gate(&fa, GateKind::Maj5) == 1;
    let wrong: Vec<String> = (1..=crate::model::kernels::MAX_BITS)
        .filter_map(|n| {
            let s = counts(KernelKind::Add, n, GateSet::Maj).gate_steps;
            (s != u64::from(4 * n)).then(|| format!("n = {n}: {s} steps"))
        })
        .collect();
    let failure = if fa_ok {
        first_failure(&wrong)
    } else {
        Some(format!(
            "full adder: {} steps, {:?}",
            fa.gate_steps, fa.by_gate
        ))
    };
    exact(
        "majority-full-adder-steps".to_owned(),
        "majority full adder = MAJ3 + 2 INVMAJ3 + MAJ5 (4 steps); n-bit ripple add = 4n",
        "4 steps; 4n steps for n = 1..32".to_owned(),
        format!(
            "{} steps ({}); {}/32 widths at 4n",
            fa.gate_steps,
            fa.by_gate
                .iter()
                .map(|(g, n)| format!("{g} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            32 - wrong.len()
        ),
        failure,
        &format!(
            "{LIT} L-A6 ([D] identity; a cell joins a gate once, so ¬Cout is made twice), \
             docs/model.md §1.4"
        ),
    )
}

/// T2: NAND multiply gate counts, B = 2..32 (the C1 table's four points and the array
/// multiplier they imply: B² AND, B(B − 2) full and B half adders).
fn nand_multiply() -> ValidationCheck {
    let wrong: Vec<String> = (2..=crate::model::kernels::MAX_BITS)
        .filter_map(|b| {
            let c = counts(KernelKind::Mul, b, GateSet::Nand);
            let b = u64::from(b);
            let want = (9 * b * (b - 2) + 4 * b, b, b * b);
            let got = (
                by_gate(&c, GateKind::Nand),
                by_gate(&c, GateKind::Not),
                by_gate(&c, GateKind::And),
            );
            (got != want).then(|| format!("B = {b}: (NAND, NOT, AND) {got:?}, want {want:?}"))
        })
        .collect();
    exact(
        "nand-multiply-counts".to_owned(),
        "NAND-set B×B multiply: NAND = 9B(B−2) + 4B, NOT = B, AND = B², B = 2..32",
        "NAND 88 / 464 / 2080 / 8768 at B = 4, 8, 16, 32".to_owned(),
        format!(
            "NAND {} at B = 4, 8, 16, 32; {}/31 widths exact",
            [4, 8, 16, 32]
                .map(
                    |b| by_gate(&counts(KernelKind::Mul, b, GateSet::Nand), GateKind::Nand)
                        .to_string()
                )
                .join(" / "),
            31 - wrong.len()
        ),
        first_failure(&wrong),
        &format!("{LIT} L-A6 table and T2 [C], {C1}"),
    )
}

/// Every kernel at 8 bits in `set`, executed bit by bit in 1,024 random lanes, equals the
/// integer reference.
fn bit_exact(set: GateSet, limits: Limits) -> ValidationCheck {
    let cfg = RunConfig {
        lanes: 1024,
        lanes_per_subarray: 1024,
        seed: 7,
        error_rate: 0.0,
        error_rates_by_gate: None,
        track_zeros: false,
        stop: limits.stop,
    };
    let wrong: Vec<String> = KernelKind::ALL
        .iter()
        .filter_map(|&k| {
            let r = run_and_check(&spec(k, 8, set).build(), &cfg);
            (r.mismatched_lanes > 0)
                .then(|| format!("{}: {} lanes wrong", k.name(), r.mismatched_lanes))
        })
        .collect();
    let n = KernelKind::ALL.len();
    exact(
        format!("kernels-bit-exact/{}", set.name()),
        "every kernel at 8 bits, executed bit by bit in 1,024 random lanes, = integer reference",
        format!("{n}/{n} kernels, 0 wrong lanes"),
        format!("{}/{n} kernels exact", n - wrong.len()),
        first_failure(&wrong),
        "sim/kernels (reference integer semantics per kernel)",
    )
}

/// The closed-form analytical run of `model` on `images` images equals the functional run,
/// layer by layer, with both strategies.
fn analytical_equals_functional(
    model: &str,
    images: usize,
    limits: Limits,
) -> Result<ValidationCheck, Error> {
    let mut config = Config::default();
    config.workload.model = model.to_owned();
    let r = config.resolve(limits.memory)?;
    let source = Images::of(&r.prog, Some(images), 1)?;
    let imgs = source.get(0..source.len());
    let mut layers = 0;
    let mut failed = Vec::new();
    let mut copies = 0;
    for s in Strategy::ALL {
        let run = |mode| {
            let opts = RunOptions {
                mode,
                choice: Choice::force(s),
                error_rates: [0.0; cram_arch::GateKind::COUNT],
                seed: 1,
                limits,
            };
            map::run_network(&r.prog, &imgs, &r.hw, &opts)
        };
        let (f, a) = (run(Mode::Functional)?, run(Mode::Analytical)?);
        layers += f.layers.len();
        match map::analytical_matches(&f, &a) {
            Ok(c) => copies += c,
            Err(e) => failed.push(format!("{s:?}: {e}")),
        }
    }
    let mut c = exact(
        format!("analytical-equals-functional/{model}"),
        "closed-form analytical run = functional run, layer by layer, both strategies",
        format!("{layers}/{layers} layers: equal counts, cycles, preset and bus energy"),
        format!(
            "{}/{layers} layers equal{}",
            if failed.is_empty() { layers } else { 0 },
            if copies > 0 {
                format!(" ({copies} with column copies the closed form cannot see)")
            } else {
                String::new()
            }
        ),
        first_failure(&failed),
        "sim/map (analytical mode), docs/model.md §1.5",
    );
    c.assumptions.push(format!(
        "{images} image(s){}",
        if model.starts_with("digits") {
            " of the held-out digits"
        } else {
            ", seeded synthetic weights and inputs"
        }
    ));
    Ok(c)
}

pub(crate) fn networks(limits: Limits) -> Result<Vec<ValidationCheck>, Error> {
    let mut out = Vec::new();
    for model in [
        "digits-mlp-int4",
        "digits-mlp-int8",
        "digits-mlp-binary",
        "digits-transformer",
    ] {
        let mut config = Config::default();
        config.workload.model = model.to_owned();
        config.compare.baselines.clear();
        let e = crate::experiment::run::evaluate(&config, None, limits)?;
        let cram = &e.report.cram;
        let n = cram.images;
        let exact_n = cram.bit_exact_images.unwrap_or(0);
        let accuracy = cram.correct.unwrap_or(0) as f64 / n as f64;
        out.push(exact(
            format!("bit-exact/{model}"),
            "every held-out digit run gate by gate on CRAM = the golden integer executor",
            format!("{n}/{n} images bit-exact"),
            format!(
                "{exact_n}/{n} bit-exact; accuracy {:.2} %",
                accuracy * 100.0
            ),
            (exact_n != n).then(|| format!("{} images differ", n - exact_n)),
            "UCI 8×8 digits (CC BY 4.0), held-out split; golden executor cram_workloads::exec",
        ));
    }
    let mut wrong = Vec::new();
    let mut shown = Vec::new();
    for (name, macs, _, params) in cram_workloads::zoo::PUBLISHED {
        let (got_macs, _, got_params) =
            cram_workloads::zoo::model(name)
                .and_then(|m| m.totals())
                .map_err(|e| Error::usage(format!("zoo model {name}: {e}")))?;
        if (got_macs, got_params) != (macs, params) {
            wrong.push(format!(
                "{name}: {got_macs} MACs / {got_params} parameters, published {macs} / {params}"
            ));
        }
        shown.push(format!("{name} {:.4} G", got_macs as f64 / 1e9));
    }
    let n = cram_workloads::zoo::PUBLISHED.len();
    out.push(exact(
        "zoo-totals".to_owned(),
        "each zoo network's MAC and parameter totals = the published ones",
        format!("{n}/{n} networks"),
        format!("{}/{n} equal ({})", n - wrong.len(), shown.join(", ")),
        first_failure(&wrong),
        "docs/references.md B1/B2 (torchvision, the LeNet/VGG/ResNet/BERT/GPT-2 papers)",
    ));
    Ok(out)
}

pub(crate) fn baseline() -> Result<Vec<ValidationCheck>, Error> {
    let macros = crate::experiment::calibrate::macro_calibration()?
        .into_iter()
        .map(|p| {
            let obtained = format!(
                "{:.3} pJ/bit (model ÷ published = {:.2}; {} at {} nm, {}-bit row read: \
                 sensing {:.3}, decode {:.2e} pJ/bit)",
                p.model_pj_per_bit,
                p.ratio,
                p.array,
                p.node_nm,
                p.access_bits,
                p.sense_pj_per_bit,
                p.decode_pj_per_bit
            );
            calibration_check(
                (&p.name, format!("{}: read energy per bit", p.system)),
                (
                    format!("{:.3} pJ/bit (published)", p.measured_pj_per_bit),
                    obtained,
                ),
                ("published", p.ratio, p.within_band()),
                p.source,
                p.assumptions,
            )
        });
    Ok(crate::experiment::calibrate::calibration()?
        .into_iter()
        .map(|p| {
            let obtained = format!(
                "{:.3} mJ (model ÷ measured = {:.2}; preset {}, {}-bit, batch {})",
                p.model_mj, p.ratio, p.preset, p.bits, p.batch
            );
            calibration_check(
                (&p.name, format!("{} ({})", p.system, p.scope)),
                (
                    format!("{:.3} mJ per inference (measured)", p.measured_mj),
                    obtained,
                ),
                ("measured", p.ratio, p.within_band()),
                p.source,
                p.assumptions,
            )
        })
        .chain(macros)
        .collect())
}

/// A calibration point as a required check: within tolerance while model ÷ `against` is
/// inside [0.5, 2], diverging otherwise.
fn calibration_check(
    (name, title): (&str, String),
    (expected, obtained): (String, String),
    (against, ratio, ok): (&str, f64, bool),
    source: String,
    assumptions: Vec<String>,
) -> ValidationCheck {
    ValidationCheck {
        group: String::new(),
        id: format!("calibration/{name}"),
        name: title,
        expected,
        obtained,
        tolerance: format!("model ÷ {against} in [0.5, 2]"),
        status: if ok {
            CheckStatus::WithinTolerance
        } else {
            CheckStatus::Diverges
        },
        reason: (!ok).then(|| format!("ratio {ratio:.2} outside [0.5, 2]")),
        source,
        required: true,
        assumptions,
        ambiguous: None,
        what_it_would_take: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
