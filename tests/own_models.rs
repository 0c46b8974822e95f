//! A user's own model wherever a model name is accepted (issue 24): a float ONNX model
//! compressed on the fly (any bits, binarized, pruned, calibrated on the user's data), a QDQ
//! model at its recorded bits, a structure-only model with synthetic weights, in `run`,
//! `simulate`, `map` and sweeps, with what was done to it in the record.

use crate::common::{arg, assert_usage_error, cram, json, ok, scratch};
use std::path::PathBuf;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("workloads/fixtures/onnx")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `run FILE.onnx` with `--set` overrides, as JSON.
fn run(model: &str, sets: &[&str]) -> serde_json::Value {
    let model = format!("workload.model={model}");
    let mut args = vec![
        "run",
        "--set",
        &model,
        "--json",
        "--set",
        "compare.baselines=cpu-ddr4",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    json(&cram(&args))
}

#[test]
fn a_float_onnx_model_is_compressed_by_the_settings_and_runs_bit_exact() {
    let f = fixture("tiny_cnn_float.onnx");
    let v = run(&f, &["run.mode=functional", "run.images=2"]);
    assert_eq!(v["cram"]["bit_exact_images"], 2);
    assert_eq!(v["workload"]["macs"], 129_184);
    let o = &v["workload"]["origin"];
    assert_eq!(o["weights_from"], "file");
    assert_eq!(o["quantized_by"], "settings");
    assert!(
        o["calibration"].as_str().unwrap().contains("2 seeded"),
        "{o}"
    );
    // Binarized (issue 22's last point): the inner layer gets ±α weights and ±1 inputs,
    // bit-exact; 4-bit and pruned weights too, each a different network.
    let energy = |v: &serde_json::Value| v["cram"]["metrics"]["energy_pj"].as_f64().unwrap();
    let mut seen = vec![energy(&v)];
    for sets in [
        vec!["workload.weight_bits=1", "workload.act_bits=1"],
        vec!["workload.weight_bits=4"],
        vec!["workload.weight_bits=4", "workload.sparsity=0.5"],
    ] {
        let mut all = vec!["run.mode=functional", "run.images=2"];
        all.extend(&sets);
        let b = run(&f, &all);
        assert_eq!(b["cram"]["bit_exact_images"], 2, "{sets:?}");
        assert!(!seen.contains(&energy(&b)), "{sets:?} changed nothing");
        seen.push(energy(&b));
    }
    let b = run(&f, &["workload.weight_bits=4", "workload.sparsity=0.5"]);
    let (w, nz) = (&b["workload"]["weights"], &b["workload"]["nonzero_weights"]);
    assert!(
        nz.as_u64().unwrap() * 2 <= w.as_u64().unwrap() + 8,
        "{w} {nz}"
    );
}

/// The graph plumbing of real exports (an NHWC input, an input normalization, Pad, an
/// unfolded pre-activation BatchNorm after a Concat, a three-input Sum, ReduceMean, a torch
/// flatten subgraph; a channel shuffle, Split, Slice and Gather of channels, average pooling
/// without its padding in the divisor; the activations and gates of mobile networks, as
/// tables and products of two activations) imports and runs bit-exact at 8, 3 and 1 bits.
#[test]
fn graph_plumbing_runs_bit_exact_at_every_compression() {
    for f in [
        fixture("tiny_graph_ops.onnx"),
        fixture("tiny_shuffle.onnx"),
        fixture("tiny_activations.onnx"),
    ] {
        runs_bit_exact_compressed(&f);
    }
}

/// A user's transformer from ONNX (a BERT layer, and a GPT-2 layer with its causal mask,
/// attention written as the exporters write it) runs bit-exact on CRAM at 8 and 4 weight
/// bits, its softmax and LayerNorms in the array (no function-unit energy).
#[test]
fn onnx_transformers_run_bit_exact() {
    for f in [fixture("tiny_encoder.onnx"), fixture("tiny_decoder.onnx")] {
        for sets in [vec![], vec!["workload.weight_bits=4"]] {
            let mut all = vec!["run.mode=functional", "run.images=2"];
            all.extend(&sets);
            let v = run(&f, &all);
            assert_eq!(v["cram"]["bit_exact_images"], 2, "{f} {sets:?}");
            assert_eq!(v["cram"]["energy"]["function_unit_pj"], 0.0, "{f}");
        }
    }
}

/// LRN (after a convolution, odd and even windows) runs on the periphery's function unit
/// (docs/model.md §2.5.1): bit-exact, its energy a component of the report in both modes
/// (the same in each), and each LRN layer's row in layers.csv names the unit.
#[test]
fn lrn_runs_on_the_function_unit() {
    let f = fixture("tiny_lrn.onnx");
    let v = run(&f, &["run.mode=functional", "run.images=2"]);
    assert_eq!(v["cram"]["bit_exact_images"], 2);
    let unit = &v["cram"]["energy"]["function_unit_pj"];
    assert!(unit.as_f64().unwrap() > 0.0, "{unit}");
    let a = run(&f, &["run.mode=analytical", "run.images=2"]);
    assert_eq!(&a["cram"]["energy"]["function_unit_pj"], unit);
    let (_, dir) = run_to(&f, "run.mode=functional", "own-lrn");
    let csv = std::fs::read_to_string(dir.join("layers.csv")).unwrap();
    let lrn: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("cram,") && l.contains(",lrn,"))
        .collect();
    assert_eq!(lrn.len(), 2, "{csv}");
    assert!(lrn.iter().all(|l| l.contains("function unit")), "{lrn:?}");
}

/// `run` of `model` with `set` against cpu-ddr4 into a new scratch folder `name`: its text
/// and its one results folder.
fn run_to(model: &str, set: &str, name: &str) -> (String, PathBuf) {
    let out = scratch(name);
    let text = ok(&cram(&[
        "run",
        "--set",
        &format!("workload.model={model}"),
        "--set",
        set,
        "--set",
        "compare.baselines=cpu-ddr4",
        "--out",
        arg(&out),
    ]));
    let dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (text, dir)
}

/// `f` runs bit-exact at 8 bits, at 3 bits pruned, and binarized.
fn runs_bit_exact_compressed(f: &str) {
    for sets in [
        vec![],
        vec!["workload.weight_bits=3", "workload.sparsity=0.6"],
        vec!["workload.weight_bits=1", "workload.act_bits=1"],
    ] {
        let mut all = vec!["run.mode=functional", "run.images=2"];
        all.extend(&sets);
        let v = run(f, &all);
        assert_eq!(v["cram"]["bit_exact_images"], 2, "{f} {sets:?}");
    }
}

#[test]
fn a_qdq_model_keeps_its_recorded_bits_unless_told() {
    let q = fixture("tiny_cnn_qdq.onnx");
    let v = run(&q, &["run.mode=functional", "run.images=2"]);
    assert_eq!(v["cram"]["bit_exact_images"], 2);
    assert_eq!(v["workload"]["origin"]["quantized_by"], "recorded_bits");
    // The input's, conv1's (on relu1), conv2's (on relu2) and the pool's; fc is float in
    // the file.
    assert_eq!(v["workload"]["origin"]["file_formats"], 4);
    assert_eq!(v["workload"]["origin"]["file_weights"], 3);
    let w4 = run(&q, &["workload.weight_bits=4"]);
    assert_eq!(w4["workload"]["origin"]["quantized_by"], "settings");
    // The shipped int4 digits model is quantized by its own file: no settings apply.
    let o = cram(&[
        "run",
        "--set",
        "workload.model=digits-mlp-int4",
        "--set",
        "workload.weight_bits=4",
    ]);
    assert_usage_error(&o, &["workload.weight_bits", "digits-mlp-int4", ".onnx"]);
}

#[test]
fn a_structure_only_model_gets_synthetic_weights_and_says_so() {
    let s = fixture("light_squeezenet.onnx");
    let (text, dir) = run_to(&s, "run.mode=analytical", "own-squeezenet");
    assert!(
        text.contains("seeded synthetic weights (the model holds none)"),
        "{text}"
    );
    // resolved.toml pins the file's bytes and the seed of its synthetic weights.
    let resolved = std::fs::read_to_string(dir.join("resolved.toml")).unwrap();
    assert!(
        resolved.contains("model_hash = ") && resolved.contains("seed = 1"),
        "{resolved}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["workload"]["origin"]["weights_from"], "synthetic");
    // Re-running the resolved file repeats the run id.
    let again = scratch("own-squeezenet-again");
    ok(&cram(&[
        "run",
        arg(&dir.join("resolved.toml")),
        "--out",
        arg(&again),
    ]));
    assert!(again.join(dir.file_name().unwrap()).is_dir());
}

#[test]
fn calibration_data_is_read_digested_and_checked() {
    let dir = scratch("own-calibration");
    std::fs::create_dir_all(&dir).unwrap();
    let f = fixture("tiny_cnn_float.onnx");
    let shape = (3, 16, 16);
    let inputs: Vec<ndarray::Array3<f32>> = (0..3)
        .map(|k| {
            ndarray::Array3::from_shape_fn(shape, |(c, h, w)| ((c + h * w + k) % 7) as f32 / 7.0)
        })
        .collect();
    let npy = dir.join("cal.npy");
    std::fs::write(&npy, cram_workloads::npy::to_bytes(&inputs)).unwrap();
    let cal = format!("workload.calibration_data={}", arg(&npy));
    let a = run(&f, &[&cal]);
    assert!(
        a["workload"]["origin"]["calibration"]
            .as_str()
            .unwrap()
            .starts_with("3 inputs of"),
        "{}",
        a["workload"]["origin"]
    );
    // Other calibration data, another run id.
    let b = run(&f, &[]);
    assert_ne!(a["run_id"], b["run_id"]);
    // The wrong shape, a missing file, and data for a zoo network are refused by name.
    let bad = dir.join("bad.npy");
    std::fs::write(
        &bad,
        cram_workloads::npy::to_bytes(&[ndarray::Array3::zeros((3, 8, 8))]),
    )
    .unwrap();
    let model = format!("workload.model={f}");
    for (value, fragments) in [
        (arg(&bad).to_owned(), vec!["bad.npy", "768 elements"]),
        (
            arg(&dir.join("missing.npy")).to_owned(),
            vec!["workload.calibration_data", "missing.npy", "cannot read"],
        ),
    ] {
        let set = format!("workload.calibration_data={value}");
        let o = cram(&["run", "--set", &model, "--set", &set]);
        assert_usage_error(&o, &fragments);
    }
    let o = cram(&["run", "--set", "workload.model=resnet8", "--set", &cal]);
    assert_usage_error(&o, &["workload.calibration_data", "model files"]);
}

#[test]
fn simulate_map_and_sweeps_take_model_files() {
    let f = fixture("tiny_cnn_float.onnx");
    let v = json(&cram(&["simulate", &f, "--images", "2", "--json"]));
    assert_eq!(v["bit_exact_images"], 2, "{v}");
    let m = ok(&cram(&[
        "map",
        "--set",
        &format!("workload.model={f}"),
        "--layer",
        "conv2",
    ]));
    assert!(m.contains("conv2"), "{m}");
    let dir = scratch("own-sweep");
    std::fs::create_dir_all(&dir).unwrap();
    let sweep = dir.join("s.toml");
    std::fs::write(
        &sweep,
        format!(
            "[sweep]\nname = \"own\"\nseed = 1\nset = [\"workload.model={f}\", \
             \"run.mode=analytical\", \"compare.baselines=cpu-ddr4\"]\n\n[[axis]]\n\
             key = \"workload.weight_bits\"\nvalues = [4, 8]\n"
        ),
    )
    .unwrap();
    let plan = dir.join("plan");
    ok(&cram(&["sweep", "plan", arg(&sweep), "--out", arg(&plan)]));
    ok(&cram(&["sweep", "run", arg(&plan)]));
    let merged = ok(&cram(&["sweep", "merge", arg(&plan)]));
    assert!(merged.contains('2'), "{merged}");
}
