//! The paper files of `validate`: a published claim, its source and assumptions, and the
//! checks of our number against the reported one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cram_arch::{GateKind, presets};
use serde::Deserialize;

use super::{PAPERS, by_gate, spec};
use crate::error::Error;
use crate::experiment::config::Config;
use crate::model::energy::Boundary;
use crate::model::engine::count::Counter;
use crate::model::kernels::{GateSet, KernelKind, KernelSpec};
use crate::model::limits::Limits;
use crate::records::{CheckStatus, ValidationCheck};

/// `[paper]` of a paper file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Paper {
    /// The claim's ID in `docs/references.md` L-c (T1–T14).
    pub(super) id: String,
    /// What is claimed, as reported.
    pub(super) claim: String,
    /// Where it was reported, and how reliable the note is.
    pub(super) source: String,
    /// Every assumption between the paper text and this configuration.
    pub(super) assumptions: Vec<String>,
    /// A kernel claim: the kernel the checks count.
    pub(super) kernel: Option<PaperKernel>,
    /// An access-versus-compute claim on a baseline's energy table.
    pub(super) access: Option<AccessClaim>,
    /// The numbers compared.
    pub(super) check: Vec<PaperCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaperKernel {
    name: String,
    gate_set: GateSet,
}

/// Energy of moving operands off chip versus computing on them, from one baseline preset.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessClaim {
    baseline: String,
    bits: u32,
    reads: u32,
    writes: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PaperCheck {
    pub(super) name: String,
    /// Kernel files: `gate_steps` or a gate name (NAND, NOT, AND, MAJ3, …), or a sum of
    /// them with `+`. Run files: `energy_ratio:<baseline>` (at the system boundary) or
    /// `energy_ratio@<boundary>:<baseline>` (array, macro, chip, system),
    /// `speedup:<baseline>`, `throughput_ratio:<baseline>`. Access files:
    /// `access_over_compute`.
    pub(super) metric: String,
    pub(super) expected: f64,
    /// Kernel files: the operand width.
    pub(super) bits: Option<u32>,
    /// Tolerance as a factor either way (1 = exact).
    #[serde(default = "one")]
    pub(super) factor: f64,
    /// The claim is a lower bound ("at least").
    #[serde(default)]
    pub(super) at_least: bool,
    pub(super) required: bool,
    /// Why our number differs, printed when it diverges.
    pub(super) if_diverges: Option<String>,
    /// Why the claim itself is ambiguous (sources that read it differently), printed with
    /// the check whatever its status.
    pub(super) ambiguous: Option<String>,
    /// Run files: knobs solved for when the check diverges, each giving the value that
    /// would reproduce the claim beside ours (docs/validation.md, "what it would take").
    #[serde(default)]
    pub(super) what_it_takes: Vec<Knob>,
}

/// A configuration knob of a run file: keys set together to one value, searched over
/// `range` for the value at which the check's metric meets the claim.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Knob {
    /// Config keys, as `--set` takes them (e.g. both critical current densities).
    keys: Vec<String>,
    /// The values searched, [low, high].
    range: [f64; 2],
    /// Whether the keys take whole numbers (chips, images).
    #[serde(default)]
    integer: bool,
}

/// Steps of the search for a knob's value (bisection; on a logarithmic scale when the
/// range is positive).
const KNOB_STEPS: usize = 12;

pub(crate) fn one() -> f64 {
    1.0
}

pub(crate) fn paper_checks(
    dir: Option<&Path>,
    limits: Limits,
) -> Result<Vec<ValidationCheck>, Error> {
    let files: Vec<(String, String)> = match dir {
        None => PAPERS
            .iter()
            .map(|(n, t)| (format!("configs/papers/{n}"), (*t).to_owned()))
            .collect(),
        Some(d) => {
            let mut names: Vec<PathBuf> = std::fs::read_dir(d)
                .map_err(|e| Error::usage(format!("--papers {}: {e}", d.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            names.sort();
            if names.is_empty() {
                return Err(Error::usage(format!(
                    "--papers {}: no .toml paper files there",
                    d.display()
                )));
            }
            names
                .into_iter()
                .map(|p| {
                    std::fs::read_to_string(&p)
                        .map(|t| (p.display().to_string(), t))
                        .map_err(|e| Error::usage(format!("{}: {e}", p.display())))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let mut out = Vec::new();
    for (origin, text) in files {
        out.extend(paper_file(&origin, &text, limits)?);
    }
    Ok(out)
}

/// The checks of one paper file.
pub(crate) fn paper_file(
    origin: &str,
    text: &str,
    limits: Limits,
) -> Result<Vec<ValidationCheck>, Error> {
    let config = Config::from_text(text, &format!("paper file '{origin}'"))?;
    let paper: Paper = config
        .paper
        .clone()
        .ok_or_else(|| Error::usage(format!("paper file '{origin}': no [paper] section")))?
        .try_into()
        .map_err(|e: toml::de::Error| {
            Error::usage(format!(
                "paper file '{origin}': [paper]: {}",
                e.to_string().trim()
            ))
        })?;
    let bad = |what: String| Error::usage(format!("paper file '{origin}': {what}"));
    if paper.check.is_empty() {
        return Err(bad("[paper] needs at least one [[paper.check]]".to_owned()));
    }
    let run = if paper.kernel.is_none() && paper.access.is_none() {
        Some(crate::experiment::run::evaluate(&config, None, limits)?)
    } else {
        None
    };
    let mut out = Vec::new();
    for (i, c) in paper.check.iter().enumerate() {
        let key = |k: &str| format!("[[paper.check]] {} ('{}'): {k}", i + 1, c.name);
        if !(c.factor.is_finite() && c.factor >= 1.0) {
            return Err(bad(format!(
                "{} = {}: must be ≥ 1",
                key("factor"),
                c.factor
            )));
        }
        if !(c.expected.is_finite() && c.expected > 0.0) {
            return Err(bad(format!(
                "{} = {}: must be > 0",
                key("expected"),
                c.expected
            )));
        }
        let (obtained, setting) = if let Some(k) = &paper.kernel {
            let kind = k
                .name
                .parse::<KernelKind>()
                .map_err(|e| bad(format!("[paper.kernel] name = {:?}: {e}", k.name)))?;
            let bits = c
                .bits
                .ok_or_else(|| bad(format!("{} is missing", key("bits"))))?;
            let s = KernelSpec {
                bits_b: bits,
                ..spec(kind, bits, k.gate_set)
            };
            s.validate()
                .map_err(|e| bad(format!("{}: {e}", key("bits"))))?;
            let counts = Counter::count(&s.build().program, 1);
            let mut v = 0u64;
            for term in c.metric.split('+').map(str::trim) {
                v += match term {
                    "gate_steps" => counts.gate_steps,
                    g => by_gate(
                        &counts,
                        g.parse::<GateKind>().map_err(|_| {
                            bad(format!(
                                "{} = {:?}: '{g}' is neither gate_steps nor a gate name (NOT, \
                                 NAND, AND, OR, NOR, MAJ3, MAJ5, …)",
                                key("metric"),
                                c.metric
                            ))
                        })?,
                    ),
                };
            }
            (
                v as f64,
                format!("{} {bits}-bit, gate set {}", k.name, k.gate_set.name()),
            )
        } else if let Some(acc) = &paper.access {
            if c.metric != "access_over_compute" {
                return Err(bad(format!(
                    "{} = {:?}: an [paper.access] file has only access_over_compute",
                    key("metric"),
                    c.metric
                )));
            }
            access_over_compute(acc).map_err(|e| bad(format!("[paper.access]: {e}")))?
        } else {
            let e = run.as_ref().expect("a run file was evaluated");
            run_metric(&e.report, &c.metric).map_err(|w| bad(format!("{}: {w}", key("metric"))))?
        };
        let mut check = judge(&paper, c, obtained, setting);
        if check.status == CheckStatus::Diverges {
            for k in &c.what_it_takes {
                let what = match &run {
                    Some(e) => what_it_takes(&config, &e.resolved, c, k, limits)
                        .map_err(|w| bad(format!("{}: {w}", key("what_it_takes"))))?,
                    None => {
                        return Err(bad(format!(
                            "{}: only run files have knobs",
                            key("what_it_takes")
                        )));
                    }
                };
                check.what_it_would_take.push(what);
            }
        }
        out.push(check);
    }
    Ok(out)
}

/// What it would take for a run check to meet its claim (docs/validation.md): the value of
/// the knob's keys at which the metric reaches the claim, found by bisection over the
/// knob's range (the metric taken as monotonic there), beside our value of the first key
/// (from the run's `resolved.toml`); or, when the claim lies outside what the range gives,
/// the metric at both ends.
fn what_it_takes(
    config: &Config,
    resolved: &str,
    c: &PaperCheck,
    k: &Knob,
    limits: Limits,
) -> Result<String, String> {
    let [lo, hi] = k.range;
    if k.keys.is_empty() || !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(format!(
            "keys {:?}, range [{lo}, {hi}]: needs a key and a range [low, high] with low < high",
            k.keys
        ));
    }
    let value = |v: f64| {
        if k.integer {
            toml::Value::Integer(v.round() as i64)
        } else {
            toml::Value::Float(v)
        }
    };
    let metric = |v: f64| -> Result<f64, String> {
        let tv = value(v);
        let sets: Vec<(&str, &toml::Value)> =
            k.keys.iter().map(|key| (key.as_str(), &tv)).collect();
        let cfg = config.with_values(&sets).map_err(|e| e.to_string())?;
        let e = crate::experiment::run::evaluate(&cfg, None, limits).map_err(|e| e.to_string())?;
        run_metric(&e.report, &c.metric).map(|m| m.0)
    };
    let names = k.keys.join(", ");
    let show = |v: f64| {
        if k.integer {
            format!("{}", v.round())
        } else {
            format!("{v:.3e}")
        }
    };
    let ours = ours(resolved, &k.keys[0]);
    let ours = ours.parse::<f64>().map_or(ours, show);
    // A run that fails at a value (a gate outside its window, over the error budget) ends
    // the search with its reason.
    let fails = |v: f64, why: String| format!("{names} = {}: the run fails ({why})", show(v));
    let (f_lo, f_hi) = match (metric(lo), metric(hi)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(why), _) => return Ok(fails(lo, why)),
        (_, Err(why)) => return Ok(fails(hi, why)),
    };
    let target = c.expected;
    if (f_lo - target).signum() == (f_hi - target).signum() {
        return Ok(format!(
            "{names} over [{}, {}] (ours: {ours}) gives {f_lo:.4} to {f_hi:.4}: the claim's \
             {target} is out of that range",
            show(lo),
            show(hi)
        ));
    }
    let geometric = lo > 0.0;
    let (mut a, mut b, mut fa, mut fb) = (lo, hi, f_lo, f_hi);
    for _ in 0..KNOB_STEPS {
        if k.integer && b - a <= 1.0 {
            break;
        }
        let m = if geometric {
            (a * b).sqrt()
        } else {
            0.5 * (a + b)
        };
        let m = if k.integer {
            m.round().clamp(a + 1.0, b - 1.0)
        } else {
            m
        };
        let fm = match metric(m) {
            Ok(f) => f,
            Err(why) => return Ok(fails(m, why)),
        };
        if (fm - target).signum() == (fa - target).signum() {
            (a, fa) = (m, fm);
        } else {
            (b, fb) = (m, fm);
        }
    }
    // The end of the last bracket nearer the claim.
    let (v, f) = if (fa - target).abs() <= (fb - target).abs() {
        (a, fa)
    } else {
        (b, fb)
    };
    Ok(format!(
        "{names} = {} would give {f:.4} against the claim's {target} (ours: {ours})",
        show(v)
    ))
}

/// Our value of a `--set` key in a run's `resolved.toml`: the key itself, or a device or
/// array parameter from the device or array written out there.
fn ours(resolved: &str, key: &str) -> String {
    let Ok(doc) = resolved.parse::<toml::Table>() else {
        return "?".to_owned();
    };
    let doc = toml::Value::Table(doc);
    let find = |path: &str| {
        path.split('.')
            .try_fold(&doc, |v, part| v.get(part))
            .map(ToString::to_string)
    };
    find(key)
        .or_else(|| find(&key.replacen("cram.device_params.", "cram.device.", 1)))
        .or_else(|| find(&key.replacen("cram.array_params.", "cram.array.", 1)))
        .or_else(|| Config::omitted_default(key))
        .unwrap_or_else(|| "?".to_owned())
}

/// Our value of a run metric: `energy_ratio:<b>` (baseline ÷ CRAM energy per inference;
/// `energy_ratio@<boundary>:<b>`, the baseline's whole energy ÷ CRAM's inside that
/// boundary, docs/model.md §4.1; without one, the system's),
/// `speedup:<b>` (baseline ÷ CRAM latency of one inference), `throughput_ratio:<b>` (CRAM
/// inferences per second running the whole batch at once ÷ the baseline's at its
/// `compare.batch`), and the setting it was measured in.
pub(crate) fn run_metric(
    r: &crate::records::RunReport,
    metric: &str,
) -> Result<(f64, String), String> {
    let (what, name) = metric.split_once(':').ok_or_else(|| {
        format!("{metric:?}: expected energy_ratio:<baseline>, speedup:<baseline> or throughput_ratio:<baseline>")
    })?;
    let b = r
        .baselines
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| format!("{metric:?}: baseline '{name}' is not in compare.baselines"))?;
    let cram = &r.cram;
    let boundary = |name: &str| {
        Boundary::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| {
                format!("{metric:?}: boundary '{name}' is not array, macro, chip or system")
            })
    };
    let mut at = Boundary::System;
    let v = match what.split_once('@') {
        Some(("energy_ratio", name)) => {
            at = boundary(name)?;
            b.versus_cram.energy_by_boundary.at(at)
        }
        Some((other, _)) => {
            return Err(format!(
                "{metric:?}: '{other}' takes no boundary (only energy_ratio@<boundary> does)"
            ));
        }
        None => match what {
            "energy_ratio" => b.versus_cram.energy,
            "speedup" => b.versus_cram.speedup,
            "throughput_ratio" => b.versus_cram.throughput,
            _ => {
                return Err(format!(
                    "{metric:?}: '{what}' is not energy_ratio, energy_ratio@<boundary>, speedup \
                     or throughput_ratio"
                ));
            }
        },
    };
    Ok((
        v,
        format!(
            "{} on {} / {} ({}, {} image(s)): CRAM {:.3} nJ (inside the {}) and {:.3} µs per \
             inference, batch {:.3} µs; {} at a batch of {}: {:.3} nJ and {:.3} µs",
            r.workload.model,
            cram.device,
            cram.array,
            cram.mode,
            cram.images,
            cram.energy_by_boundary.at(at) / 1e3,
            at.name(),
            cram.metrics.latency_s * 1e6,
            cram.batch_latency_s * 1e6,
            b.name,
            b.batch,
            b.metrics.energy_pj / 1e3,
            b.metrics.latency_s * 1e6
        ),
    ))
}

/// Off-chip access energy of `reads + writes` operands of `bits` over the energy of one
/// `bits`-wide multiply-add, both from the baseline's own table (its multiply scales as
/// bits², its add linearly from the accumulator width, as `baseline.rs` prices them).
pub(crate) fn access_over_compute(a: &AccessClaim) -> Result<(f64, String), String> {
    let b = presets::baseline(&a.baseline).map_err(|e| e.to_string())?;
    let p = &b.params;
    let level = p
        .levels
        .iter()
        .find(|l| l.off_chip)
        .ok_or_else(|| format!("baseline '{}' has no off-chip level", p.name))?;
    if !(1..=1024).contains(&a.bits) {
        return Err(format!("bits = {}: must be in 1..=1024", a.bits));
    }
    let bits = f64::from(a.bits);
    let access_pj = f64::from(a.reads + a.writes) * bits * level.e_pj_per_bit;
    let native = f64::from(p.native_bits);
    let compute_pj =
        p.e_mul_pj * bits * bits / (native * native) + p.e_add_pj * bits / f64::from(p.acc_bits);
    Ok((
        access_pj / compute_pj,
        format!(
            "{}: {} + {} accesses × {} bits × {} pJ/bit ({}) = {access_pj:.0} pJ; {}-bit \
             multiply-add {compute_pj:.2} pJ",
            p.name, a.reads, a.writes, a.bits, level.e_pj_per_bit, level.name, a.bits
        ),
    ))
}

/// Compares our value with the reported one.
pub(crate) fn judge(
    paper: &Paper,
    c: &PaperCheck,
    obtained: f64,
    setting: String,
) -> ValidationCheck {
    let q = obtained / c.expected;
    let equal = (q - 1.0).abs() <= 1e-9;
    let (status, off) = if c.at_least {
        if obtained >= c.expected {
            (CheckStatus::Reproduced, None)
        } else if obtained * c.factor >= c.expected {
            (CheckStatus::WithinTolerance, None)
        } else {
            (CheckStatus::Diverges, Some(c.expected / obtained))
        }
    } else if equal {
        (CheckStatus::Reproduced, None)
    } else if c.factor > 1.0 && q <= c.factor && q >= 1.0 / c.factor {
        (CheckStatus::WithinTolerance, None)
    } else {
        (
            CheckStatus::Diverges,
            Some(if q > 1.0 { q } else { 1.0 / q }),
        )
    };
    let reason = off.map(|f| {
        let side = if q > 1.0 { "above" } else { "below" };
        let mut r = format!("ours is {f:.3e}× {side} the claim");
        if let Some(why) = &c.if_diverges {
            let _ = write!(r, "; {why}");
        }
        r
    });
    let fmt = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{v:.0}")
        } else {
            format!("{v:.4}")
        }
    };
    ValidationCheck {
        group: String::new(),
        id: format!("{}/{}", paper.id, c.name),
        name: paper.claim.clone(),
        expected: format!(
            "{}{} ({})",
            if c.at_least { "≥ " } else { "" },
            fmt(c.expected),
            c.metric
        ),
        obtained: format!("{} — {setting}", fmt(obtained)),
        tolerance: if c.factor == 1.0 {
            "exact".to_owned()
        } else if c.at_least {
            format!("at least claim ÷ {}", c.factor)
        } else {
            format!("within a factor of {} either way", c.factor)
        },
        status,
        reason,
        source: paper.source.clone(),
        required: c.required,
        assumptions: paper.assumptions.clone(),
        ambiguous: c.ambiguous.clone(),
        what_it_would_take: Vec::new(),
    }
}
