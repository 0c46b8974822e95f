//! The extension points and the library boundary of issue 20: the baseline model is chosen
//! by its preset's `model` key, an unknown kind is refused by name, and a run through the
//! library gives the bytes the command writes.

use crate::common::{arg, assert_usage_error, cram, edited, json, ok, scratch};

/// `model = "roofline"` is the default: a preset without the key prices the same, and an
/// unknown kind is refused with the key, the value and what is allowed.
#[test]
fn the_baseline_model_is_chosen_by_its_key() {
    let d = scratch("baseline-model");
    let without = edited("configs/baselines/nmp.toml", &d, "nmp-default.toml", |s| {
        s.lines()
            .filter(|l| !l.starts_with("model ="))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let energy = |baseline: &str| {
        let o = cram(&[
            "run",
            "--mode",
            "analytical",
            "--json",
            "--out",
            arg(&d),
            "--set",
            &format!("compare.baselines={baseline}"),
        ]);
        json(&o)["baselines"][0]["metrics"]["energy_pj"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(energy("nmp"), energy(arg(&without)));
    let unknown = edited("configs/baselines/nmp.toml", &d, "nmp-x.toml", |s| {
        s.replace("model = \"roofline\"", "model = \"spreadsheet\"")
    });
    let o = cram(&[
        "run",
        "--mode",
        "analytical",
        "--out",
        arg(&d),
        "--set",
        &format!("compare.baselines={}", arg(&unknown)),
    ]);
    assert_usage_error(&o, &["nmp-x.toml", "spreadsheet", "roofline"]);
}

/// The library's `run` gives the files `cramulator run` writes, byte for byte.
#[test]
fn the_library_run_writes_what_the_command_writes() {
    use cramulator::experiment::{config::Config, options::Options, run};
    let d = scratch("library-run");
    let o = cram(&["run", "--mode", "analytical", "--out", arg(&d)]);
    ok(&o);
    let config = Config::load_with(None, &["run.mode=analytical".to_owned()]).unwrap();
    let provenance = run::Provenance {
        config_file: None,
        overrides: vec!["run.mode=analytical".to_owned()],
    };
    let record = run::run(&config, &provenance, &Options::default()).unwrap();
    let dir = d.join(&record.manifest.run_id);
    for (name, bytes) in record.files().unwrap() {
        assert_eq!(std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
    }
}

/// One error type at the boundary prints each cause once (an unreadable preset file's I/O
/// error is part of its message, not chained a second time).
#[test]
fn an_unreadable_preset_names_its_cause_once() {
    let d = scratch("missing-preset");
    let missing = d.join("missing.toml");
    let o = cram(&["gates", "--device", arg(&missing)]);
    assert_usage_error(&o, &["missing.toml"]);
    let err = crate::common::stderr(&o);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}
