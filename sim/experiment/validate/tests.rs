//! Tests of the validation suite: the shipped paper files and the grading of a claim.

use super::papers::{Paper, PaperCheck, judge};
use super::*;

#[test]
fn shipped_papers_are_the_files_in_configs_papers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/papers");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut shipped: Vec<String> = PAPERS.iter().map(|(n, _)| (*n).to_owned()).collect();
    shipped.sort();
    assert_eq!(on_disk, shipped, "add new paper files to validate::PAPERS");
    for (n, t) in PAPERS {
        assert_eq!(std::fs::read_to_string(dir.join(n)).unwrap(), t);
    }
}

#[test]
fn every_paper_file_states_source_and_assumptions() {
    for (n, t) in PAPERS {
        let c = Config::from_text(t, n).unwrap();
        let p: Paper = c.paper.unwrap().try_into().unwrap();
        assert!(!p.source.trim().is_empty(), "{n}");
        assert!(p.assumptions.len() >= 2, "{n}: state every assumption");
        assert!(p.id.starts_with('T'), "{n}");
    }
}

/// Issue 22 Deliver 6: T4 and T5 compare energy at every boundary (the system's, and
/// inside the array, the macros and the chip), and each diverging energy row says what it
/// would take; T4 is a binarized MNIST network over the 10,000 test images, and its speed
/// claim is marked ambiguous with a knob for the chips.
#[test]
fn t4_and_t5_are_checked_at_every_boundary_with_what_it_would_take() {
    for (file, baseline) in [
        ("t4-mnist-vs-nmp.toml", "nmp"),
        ("t5-ai-energy-1000x.toml", "cpu-ddr4"),
    ] {
        let t = PAPERS.iter().find(|(n, _)| *n == file).unwrap().1;
        let c = Config::from_text(t, file).unwrap();
        let p: Paper = c.paper.clone().unwrap().try_into().unwrap();
        let metrics: Vec<&str> = p.check.iter().map(|k| k.metric.as_str()).collect();
        for m in [
            "energy_ratio",
            "energy_ratio@array",
            "energy_ratio@macro",
            "energy_ratio@chip",
        ] {
            let m = format!("{m}:{baseline}");
            let k = p.check.iter().find(|k| k.metric == m);
            let k = k.unwrap_or_else(|| panic!("{file}: no {m} in {metrics:?}"));
            assert!(
                !k.what_it_takes.is_empty(),
                "{file}: {m} says what it would take"
            );
        }
        if file.starts_with("t4") {
            assert_eq!(c.workload.model, "mlp-784-256-10");
            assert_eq!(
                (c.workload.weight_bits, c.workload.act_bits),
                (Some(1), Some(1))
            );
            assert_eq!(c.run.images, Some(10_000));
            let speed = p
                .check
                .iter()
                .find(|k| k.metric == "throughput_ratio:nmp")
                .unwrap();
            assert!(speed.ambiguous.is_some() && !speed.what_it_takes.is_empty());
        }
    }
}

#[test]
fn physics_group_holds() {
    let r = report(&[Group::Physics], None, &Default::default()).unwrap();
    assert!(r.passed, "{:#?}", r.checks);
    assert_eq!(r.checks.len(), 3 * presets::NAMES.len() + 1);
}

#[test]
fn judge_grades_exact_tolerant_and_divergent_values() {
    let paper = Paper {
        id: "T0".into(),
        claim: "c".into(),
        source: "s".into(),
        assumptions: vec![],
        kernel: None,
        access: None,
        check: vec![],
    };
    let check = |factor, at_least| PaperCheck {
        name: "n".into(),
        metric: "m".into(),
        expected: 100.0,
        bits: None,
        factor,
        at_least,
        required: true,
        if_diverges: Some("because".into()),
        ambiguous: None,
        what_it_takes: vec![],
    };
    let st = |c: &PaperCheck, v| judge(&paper, c, v, String::new()).status;
    assert_eq!(st(&check(1.0, false), 100.0), CheckStatus::Reproduced);
    assert_eq!(st(&check(1.0, false), 101.0), CheckStatus::Diverges);
    assert_eq!(st(&check(10.0, false), 11.0), CheckStatus::WithinTolerance);
    assert_eq!(st(&check(10.0, false), 9.0), CheckStatus::Diverges);
    assert_eq!(st(&check(10.0, false), 999.0), CheckStatus::WithinTolerance);
    assert_eq!(st(&check(10.0, true), 5000.0), CheckStatus::Reproduced);
    assert_eq!(st(&check(10.0, true), 10.0), CheckStatus::WithinTolerance);
    let d = judge(&paper, &check(10.0, true), 5.0, String::new());
    assert_eq!(d.status, CheckStatus::Diverges);
    assert!(
        d.reason
            .unwrap()
            .contains("2.000e1× below the claim; because")
    );
}

/// What it would take (docs/validation.md): a claim set to our own metric at a known
/// switching time is met by the knob near that time, with our 1 ns beside it; a claim
/// beyond what the knob's range gives says so with the range's values; a knob on a kernel
/// file is refused.
#[test]
fn what_it_would_take_finds_the_knob_value() {
    let run = "[workload]\nmodel = 'digits-mlp-int4'\n[run]\nmode = 'analytical'\nimages = 8\n\
               [compare]\nbaselines = ['cpu-ddr4']\n";
    let at = Config::from_text(
        &format!("{run}[cram]\ndevice_params = {{ t_switch_ns = 0.25 }}\n"),
        "t",
    )
    .unwrap();
    let e = crate::experiment::run::evaluate(&at, None, Default::default()).unwrap();
    let claim = papers::run_metric(&e.report, "energy_ratio:cpu-ddr4")
        .unwrap()
        .0;
    let paper = |expected: f64| {
        format!(
            "[paper]\nid = 'T0'\nclaim = 'c'\nsource = 's'\nassumptions = ['a', 'b']\n\
             [[paper.check]]\nname = 'n'\nmetric = 'energy_ratio:cpu-ddr4'\n\
             expected = {expected}\nrequired = false\nwhat_it_takes = [{{ keys = \
             ['cram.device_params.t_switch_ns'], range = [0.01, 1.0] }}]\n{run}"
        )
    };
    let c = papers::paper_file("t", &paper(claim), Default::default()).unwrap();
    assert_eq!(c[0].status, CheckStatus::Diverges);
    let w = &c[0].what_it_would_take[0];
    let v: f64 = w
        .split(" = ")
        .nth(1)
        .and_then(|x| x.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((v / 0.25 - 1.0).abs() < 0.01, "{w}");
    assert!(w.contains("(ours: 1.000e0)"), "{w}");
    let far = papers::paper_file("t", &paper(1e9), Default::default()).unwrap();
    assert!(
        far[0].what_it_would_take[0].contains("out of that range"),
        "{:?}",
        far[0].what_it_would_take
    );
}
