//! The command line as a user meets it: outputs, exit codes and error messages for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn cram(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Runs the binary with whitespace-separated arguments.
fn cram_line(args: &str) -> Output {
    cram(&args.split_whitespace().collect::<Vec<_>>())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A usage error: exit 2, one `error:` line naming every fragment, no panic.
fn assert_usage_error(o: &Output, fragments: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {e}");
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(e.matches("error:").count(), 1, "{e}");
    for f in fragments {
        assert!(e.contains(f), "missing {f:?} in: {e}");
    }
}

/// A copy of a shipped config file (path relative to the repository) with lines edited.
fn config_file(shipped: &str, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let base =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(shipped)).unwrap();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, edit(base)).unwrap();
    path
}

/// A device file derived from the shipped stt-today preset with one line replaced or added.
fn device_file(name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    config_file("configs/devices/stt-today.toml", name, edit)
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("valid JSON")
}

#[test]
fn unknown_preset() {
    let o = cram_line("gates --device stt-tomorrow");
    assert_usage_error(
        &o,
        &["stt-tomorrow", "stt-today, stt-projected, she-projected"],
    );
    let o = cram_line("kernel add --bits 8 --device nope");
    assert_usage_error(&o, &["nope"]);
}

#[test]
fn missing_device_file() {
    let o = cram_line("gates --device no/such/device.toml");
    assert_usage_error(&o, &["no/such/device.toml"]);
}

#[test]
fn unknown_config_key() {
    let f = device_file("unknown-key.toml", |s| {
        format!("{s}\nr_acess_on_ohm = 5.0\n")
    });
    let o = cram(&["gates", "--device", f.to_str().unwrap()]);
    assert_usage_error(
        &o,
        &["unknown-key.toml", "r_acess_on_ohm", "r_access_on_ohm"],
    );
}

#[test]
fn negative_resistance() {
    let f = device_file("negative-r.toml", |s| {
        s.replace("r_access_on_ohm = 1000.0", "r_access_on_ohm = -250.0")
    });
    let o = cram(&["gates", "--device", f.to_str().unwrap()]);
    assert_usage_error(&o, &["negative-r.toml", "r_access_on_ohm", "-250", "≥ 0"]);
    let f = device_file("negative-ra.toml", |s| {
        s.replace("ra_ohm_um2 = 5.0", "ra_ohm_um2 = -5.0")
    });
    let o = cram(&[
        "kernel",
        "add",
        "--bits",
        "4",
        "--device",
        f.to_str().unwrap(),
    ]);
    assert_usage_error(&o, &["ra_ohm_um2", "-5", "between 0.01 and 1000"]);
}

#[test]
fn malformed_toml() {
    let f = device_file("broken.toml", |s| s.replace("tmr = 1.33", "tmr = = 1.33"));
    let o = cram(&["gates", "--device", f.to_str().unwrap()]);
    assert_usage_error(&o, &["broken.toml"]);
}

#[test]
fn gate_set_the_device_cannot_build() {
    // At a 5 % margin requirement stt-today loses MAJ5 (0.79 %), MAJ3, OR, INVMAJ3, INVMAJ5.
    let f = device_file("strict.toml", |s| {
        s.replace("min_noise_margin = 0.005", "min_noise_margin = 0.05")
    });
    let dev = f.to_str().unwrap();
    let add8 = |set: &str| {
        cram(&[
            "kernel",
            "add",
            "--bits",
            "8",
            "--gate-set",
            set,
            "--device",
            dev,
        ])
    };
    assert_usage_error(&add8("maj"), &["gate set maj", "MAJ5", "0.79 %", "5.00 %"]);
    // NOT, NAND and AND keep margins above 5 %, so the NAND set still runs.
    let o = add8("nand");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The gate table shows the unavailable gates with their numbers.
    let t = stdout(&cram(&["gates", "--device", dev]));
    assert!(t.contains("UNAVAILABLE: MAJ5 noise margin 0.79 %"), "{t}");
}

#[test]
fn bad_widths_and_names() {
    assert_usage_error(&cram_line("kernel add --bits 0"), &["--bits 0", "1..=32"]);
    assert_usage_error(&cram_line("kernel mul --bits 33"), &["--bits 33", "1..=32"]);
    assert_usage_error(
        &cram_line("kernel mul --bits 8 --bits-b 0"),
        &["--bits-b 0"],
    );
    assert_usage_error(
        &cram_line("kernel mulc --bits 8 --constant -4294967296"),
        &["--constant", "2^31"],
    );
    assert_usage_error(&cram_line("kernel add --bits 8 --lanes 0"), &["--lanes 0"]);
    assert_usage_error(
        &cram_line("kernel frobnicate --bits 8"),
        &["frobnicate", "add", "popcount"],
    );
    assert_usage_error(
        &cram_line("kernel add --bits 8 --gate-set xor"),
        &["xor", "maj", "nand"],
    );
    assert_usage_error(&cram_line("kernel add --bits eight"), &["eight"]);
}

#[test]
fn kernel_json_reports_counts_and_a_clean_check() {
    let v = json(&cram_line(
        "kernel add --bits 8 --lanes 1000 --gate-set nand --json",
    ));
    assert_eq!(v["counts"]["gate_steps"], 9 * 8 - 4);
    assert_eq!(v["mismatched_lanes"], 0);
    assert_eq!(v["lanes"], 1000);
    assert_eq!(v["lane_gate_evals"], 1000 * (9 * 8 - 4));
    assert!(v["lane_gate_evals_per_s_wall"].as_f64().unwrap() > 0.0);
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let digest = |threads: &str| {
        let v = json(&cram(&[
            "kernel",
            "smul",
            "--bits",
            "12",
            "--lanes",
            "20000",
            "--threads",
            threads,
            "--json",
        ]));
        v["output_digest"].as_u64().unwrap()
    };
    assert_eq!(digest("1"), digest("2"));
}

#[test]
fn fault_injection_is_measured_not_failed() {
    let args = [
        "kernel",
        "add",
        "--bits",
        "16",
        "--lanes",
        "50000",
        "--error-rate",
        "1e-3",
        "--json",
    ];
    let v = json(&cram(&args));
    let flips = v["injected_flips"].as_u64().unwrap() as f64;
    let evals = v["lane_gate_evals"].as_u64().unwrap() as f64;
    let sigma = (evals * 1e-3 * (1.0 - 1e-3)).sqrt();
    assert!(
        (flips - evals * 1e-3).abs() <= 5.0 * sigma,
        "{flips} flips in {evals}"
    );
    assert!(v["mismatched_lanes"].as_u64().unwrap() > 0);
    // Same seed, same faults: a second run reproduces flips, wrong lanes and outputs exactly.
    let again = json(&cram(&args));
    for key in [
        "injected_flips",
        "mismatched_lanes",
        "output_bits_wrong",
        "output_digest",
    ] {
        assert_eq!(v[key], again[key], "{key}");
    }
    let text = stdout(&cram_line(
        "kernel add --bits 16 --lanes 5000 --error-rate 0.01",
    ));
    assert!(
        text.contains("output bit-error rate") && text.contains("wrong results"),
        "{text}"
    );
    assert_usage_error(
        &cram_line("kernel add --bits 8 --error-rate 1.5"),
        &["--error-rate 1.5", "[0, 1]"],
    );
}

#[test]
fn kernel_timing_and_array_options() {
    // 8-bit majority add: 32 gate steps of 3 cycles each (stt-projected on cram-1k), in 4
    // subarrays at once, one pass.
    let v = json(&cram_line("kernel add --bits 8 --json"));
    assert_eq!(v["timing"]["cycles"], 96);
    assert_eq!(v["timing"]["subarrays_in_parallel"], 4);
    assert_eq!(v["timing"]["passes"], 1);
    // Limiting the chip to 2 subarrays doubles the passes and the cycles.
    let v = json(&cram_line("kernel add --bits 8 --subarrays 2 --json"));
    assert_eq!(
        (
            v["timing"]["passes"].as_u64(),
            v["timing"]["cycles"].as_u64()
        ),
        (Some(2), Some(192))
    );
    assert_usage_error(
        &cram_line("kernel add --bits 8 --subarrays 0"),
        &["--subarrays 0", "1..=128"],
    );
    assert_usage_error(
        &cram_line("kernel add --bits 8 --subarrays 129"),
        &["--subarrays 129"],
    );
    assert_usage_error(
        &cram_line("kernel add --bits 8 --array cram-2k"),
        &["cram-2k", "cram-1k"],
    );
    let text = stdout(&cram_line("kernel add --bits 8 --report"));
    assert!(
        text.contains("subarray 3") && text.contains("controller issue"),
        "{text}"
    );
}

#[test]
fn ir_drop_beyond_the_row_limit_is_refused_unless_allowed() {
    // MAJ5 on stt-projected holds 32 rows at 1 Ω per cell (`gates` prints it); 64-row line
    // segments break it, the NAND gate set (NAND ≤ 97 rows, NOT ≤ 120, AND ≤ 95) still fits.
    let long = config_file("configs/arrays/cram-1k.toml", "seg64.toml", |s| {
        s.replace("lanes_per_line_segment = 8", "lanes_per_line_segment = 64")
    });
    let arr = long.to_str().unwrap();
    // `kernel add --bits 8 --array <long segments>` plus more arguments.
    let add8 = |more: &str| {
        let mut args = vec!["kernel", "add", "--bits", "8", "--array", arr];
        args.extend(more.split_whitespace());
        cram(&args)
    };
    let limits = stdout(&cram(&["gates", "--array", arr]));
    assert!(limits.contains("r_wire_ohm_per_cell = 1 Ω"), "{limits}");
    assert_usage_error(
        &add8(""),
        &[
            "IR drop",
            "seg64.toml",
            "MAJ5 stays in its window for at most 32 rows, but 64 rows share a line",
            "--allow-ir-violation",
        ],
    );
    let v = json(&add8("--allow-ir-violation --json"));
    assert_eq!(v["ir"]["rows_per_line"], 64);
    assert_eq!(v["mismatched_lanes"], 0);
    let v = json(&add8("--gate-set nand --json"));
    let ok: Vec<bool> = v["ir"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["ok"].as_bool().unwrap())
        .collect();
    assert!(!ok.is_empty() && ok.iter().all(|&b| b), "{v}");
    // Fewer lanes per subarray than the segment: only the rows in use share the line.
    let v = json(&add8("--lanes-per-subarray 32 --json"));
    assert_eq!(v["ir"]["rows_per_line"], 32);
    // Default array: 8-row segments keep every gate inside its window.
    let v = json(&cram_line("kernel add --bits 8 --json"));
    assert_eq!(v["ir"]["rows_per_line"], 8);
}

#[test]
fn config_defaults_is_complete_toml() {
    let o = cram_line("config defaults --device stt-today");
    assert_eq!(o.status.code(), Some(0));
    let t: toml::Table = toml::from_str(&stdout(&o)).expect("valid TOML");
    assert_eq!(t["device"]["name"].as_str(), Some("stt-today"));
    assert_eq!(t["array"]["lanes_per_subarray"].as_integer(), Some(1024));
    assert!(t["array"]["bank_bus"]["width_bits"].is_integer());
}

#[test]
fn analytical_mode_matches_functional_counts_cycles_and_mean_energy() {
    let f = json(&cram_line(
        "kernel mul --bits 6 --lanes 5000 --data-energy --json",
    ));
    let a = json(&cram_line(
        "kernel mul --bits 6 --lanes 5000 --mode analytical --json",
    ));
    assert_eq!(a["mode"], "analytical");
    assert!(a.get("mismatched_lanes").is_none() && f["mismatched_lanes"] == 0);
    for key in ["counts", "lane_gate_evals", "timing"] {
        assert_eq!(a[key], f[key], "{key}");
    }
    assert_eq!(a["energy"]["mean"], f["energy"]["mean"]);
    assert!(a["energy"]["data_dependent"].is_null() && f["energy"]["data_dependent"].is_object());
    let worst = f["energy"]["worst_total_pj"].as_f64().unwrap();
    let sum: f64 = f["energy"]["data_dependent"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!(sum > 0.0 && sum <= worst * (1.0 + 1e-12), "{sum} > {worst}");
    assert_usage_error(
        &cram_line("kernel add --bits 8 --mode analytical --error-rate 0.1"),
        &["--error-rate", "functional"],
    );
    assert_usage_error(
        &cram_line("kernel add --bits 8 --mode analytical --data-energy"),
        &["--data-energy"],
    );
    // Without --data-energy a functional run reports the mean and worst models only.
    let plain = json(&cram_line("kernel mul --bits 6 --lanes 5000 --json"));
    assert!(plain["energy"]["data_dependent"].is_null());
}

#[test]
fn derived_error_rates_follow_the_gates_margins() {
    // NAND-set add on stt-projected: NOT, NAND (≥ 35 % margins) have p_err < 1e-6.
    let nand = json(&cram_line(
        "kernel add --bits 8 --gate-set nand --lanes 20000 --error-rate derived --json",
    ));
    assert!(
        nand["injected_flips"].as_u64().unwrap() <= 5,
        "{}",
        nand["injected_flips"]
    );
    // Majority set: MAJ5 sits in a 0.8 % window, so about a third of its outputs flip.
    let maj = json(&cram_line(
        "kernel add --bits 8 --lanes 20000 --error-rate derived --json",
    ));
    assert!(
        maj["mismatched_lanes"].as_u64().unwrap() > 10_000,
        "{}",
        maj["mismatched_lanes"]
    );
    assert_usage_error(
        &cram_line("kernel add --bits 8 --error-rate often"),
        &["--error-rate often", "derived"],
    );
    let t = stdout(&cram_line("gates --device stt-projected"));
    assert!(t.contains("p_err"), "{t}");
}

#[test]
fn trace_lists_every_step() {
    let o = cram_line("kernel add --bits 3 --lanes 64 --trace");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0));
    // 3-bit majority add: 4 steps per bit (half adder at bit 0, full adders above).
    let steps = out
        .lines()
        .filter(|l| l.trim_start().starts_with(char::is_numeric))
        .count();
    assert_eq!(steps, 12, "{out}");
    assert!(out.contains("MAJ5     sum[1]  <- a[1], b[1]"), "{out}");
}

#[test]
fn gates_json_and_table() {
    let v = json(&cram_line("gates --device stt-today --json"));
    assert_eq!(v["gates"].as_array().unwrap().len(), 10);
    assert!((v["device"]["derived"]["r_p_ohm"].as_f64().unwrap() - 3143.8).abs() < 0.1);
    let t = stdout(&cram_line("gates --device she-projected"));
    assert!(t.contains("R_channel") && t.contains("INVMAJ5"), "{t}");
}

#[test]
fn models_lists_the_zoo_with_published_totals() {
    let t = stdout(&cram_line("models"));
    assert!(
        t.contains("resnet18") && t.contains("1,814,073,344") && t.contains("11,689,512"),
        "{t}"
    );
    let v = json(&cram_line("models --json"));
    let vgg = v
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "vgg8-cifar")
        .unwrap();
    assert_eq!(vgg["macs"], 615_917_568u64);
}

#[test]
fn inspect_zoo_and_onnx_and_refuses_unsupported_ops() {
    let v = json(&cram_line("inspect mobilenetv2 --json"));
    assert_eq!(v["macs"], 300_774_272u64);
    assert_eq!(v["params"], 3_504_872u64);
    let alex = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/workloads/fixtures/onnx/light_bvlc_alexnet.onnx"
    );
    let v = json(&cram(&["inspect", alex, "--json"]));
    assert_eq!(v["macs"], 654_560_384u64);
    assert_eq!(v["skipped"].as_array().unwrap().len(), 0);
    let t = stdout(&cram(&["inspect", alex]));
    assert!(t.contains("conv(g)") && t.contains(" lrn "), "{t}");
    // An op the importer lacks (Loop, a control-flow op, where the small CNN has its first Relu) stops the
    // import, naming the node; inspect --skip-unsupported lists it and passes its input on.
    let mut bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/workloads/fixtures/onnx/tiny_cnn_float.onnx"
    ))
    .unwrap();
    let at = bytes.windows(4).position(|w| w == b"Relu").unwrap();
    bytes[at..at + 4].copy_from_slice(b"Loop");
    let looped = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("loop.onnx");
    std::fs::write(&looped, bytes).unwrap();
    let looped = looped.to_str().unwrap();
    assert_usage_error(
        &cram(&["inspect", looped]),
        &["loop.onnx", "node 'relu1'", "Loop", "--skip-unsupported"],
    );
    let v = json(&cram(&["inspect", looped, "--skip-unsupported", "--json"]));
    assert_eq!(v["skipped"].as_array().unwrap().len(), 1);
    assert_usage_error(
        &cram(&["run", "--set", &format!("workload.model={looped}")]),
        &["loop.onnx", "Loop"],
    );
    assert_usage_error(&cram_line("inspect resnet-19"), &["resnet-19", "resnet18"]);
    let junk = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("junk.onnx");
    std::fs::write(&junk, b"\x0a\xff\xff\xff\xff\x0f").unwrap();
    assert_usage_error(
        &cram(&["inspect", junk.to_str().unwrap()]),
        &["junk.onnx", "not a readable ONNX model"],
    );
}

#[test]
fn inspect_shipped_and_own_format_models() {
    let t = stdout(&cram_line("inspect digits-mlp-binary"));
    assert!(
        t.contains("(shipped)") && t.contains("sign") && t.contains("w1a5") && t.contains("w1a1"),
        "{t}"
    );
    assert!(t.contains("metric held_out_correct"), "{t}");
    let v = json(&cram_line("inspect digits-mlp-int8 --json"));
    assert_eq!(v["macs"], 64 * 64 + 64 * 10);
    assert!(v["metrics"]["held_out_accuracy"].as_f64().unwrap() >= 0.97);
    let models = json(&cram_line("models --json"));
    let names: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for n in [
        "digits-mlp",
        "digits-mlp-int4",
        "digits-mlp-w4a4",
        "resnet20",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    // A pruned, quantized model in the project's own format, written by the library.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("own-format");
    std::fs::create_dir_all(&dir).unwrap();
    let m = cram_workloads::train::shipped("digits-mlp")
        .unwrap()
        .unwrap();
    let mut w = m.weights.clone();
    let t = w.tensors.get_mut("fc1.weight").unwrap();
    cram_workloads::prune::Prune::NM { n: 2, m: 4 }
        .apply(t)
        .unwrap();
    let pruned = cram_workloads::model::Model { weights: w, ..m };
    let path = dir.join("pruned.toml");
    for (p, bytes) in pruned.files(&path).unwrap() {
        std::fs::write(p, bytes).unwrap();
    }
    let t = stdout(&cram(&["inspect", path.to_str().unwrap()]));
    assert!(t.contains("50.0%"), "{t}");
    // A truncated weights file and a broken description are usage errors naming the file.
    let st = dir.join("pruned.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() - 10]).unwrap();
    assert_usage_error(
        &cram(&["inspect", path.to_str().unwrap()]),
        &["pruned.safetensors", "not a readable safetensors file"],
    );
    std::fs::write(
        &path,
        "format = \"cramulator-model\"\nversion = 1\n[network\n",
    )
    .unwrap();
    assert_usage_error(
        &cram(&["inspect", path.to_str().unwrap()]),
        &["pruned.toml", "not a model description"],
    );
}

/// `simulate` runs the digits classifier bit-exactly in both strategies; the fault table is
/// seeded (two runs give the same JSON) and bad flags are usage errors.
#[test]
fn simulate_digits_bit_exact_and_reproducible_faults() {
    for strategy in ["const", "stored"] {
        let o = cram_line(&format!(
            "simulate digits-mlp-binary --images 60 --strategy {strategy} --json"
        ));
        assert!(o.status.success(), "{}", stderr(&o));
        let j = json(&o);
        assert_eq!(j["bit_exact_images"], 60);
        assert!(j["energy_pj_per_image"].as_f64().unwrap() > 0.0);
    }
    let args = "simulate digits-mlp-int8 --images 50 --error-rates 1e-3,0.02 --json";
    let (a, b) = (cram_line(args), cram_line(args));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    let j = json(&a);
    let rows = j["faults"].as_array().unwrap();
    assert!(rows[1]["flips"].as_u64().unwrap() > rows[0]["flips"].as_u64().unwrap());
    assert!(rows[1]["agree_with_golden"].as_u64().unwrap() < 50);
    assert_usage_error(
        &cram_line("simulate digits-mlp-int8 --error-rates 2"),
        &["--error-rates", "[0, 1]"],
    );
    assert_usage_error(
        &cram_line("simulate digits-mlp-int8 --sparsity 0.5"),
        &["--sparsity", "zoo networks", "resnet20"],
    );
    assert_usage_error(
        &cram_line("simulate lenet5 --sparsity 1.5"),
        &["--sparsity 1.5", "[0, 1)"],
    );
    assert_usage_error(
        &cram_line("simulate lenet5 --weight-bits 17"),
        &["--weight-bits"],
    );
    assert_usage_error(&cram_line("simulate lenet5 --act-bits 0"), &["--act-bits"]);
}

/// A zoo network compressed on the fly runs bit-exactly, and a pruned one is costed against
/// its dense int8 version in both strategies (strategy A cheaper with the pruning).
#[test]
fn simulate_zoo_network_against_dense_int8() {
    let o = cram_line("simulate lenet5 --json");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["bit_exact_images"], 1);
    let o = cram_line("simulate lenet5 --mode analytical --sparsity 0.5 --json");
    assert!(o.status.success(), "{}", stderr(&o));
    let j = json(&o);
    let v = j["versus_dense_int8"].as_array().unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["strategy"], "const");
    let f = |k: &str| v[0][k].as_f64().unwrap();
    assert!(f("energy_pj") < f("dense_int8_energy_pj"));
    assert!(f("cycles") < f("dense_int8_cycles"));
    assert_eq!(v[1]["layers"].as_array().unwrap().len(), 5);
}

/// The int8 MNIST MLP that T4 ran before it was binarized (mlp-784-256-10 on the
/// `nand-not` set), for `map`.
const INT8_MLP: &str = "--set workload.model=mlp-784-256-10 --set cram.gate_set=nand-not";

/// A value several lanes of a run load crosses the bus once (docs/model.md §2.6): fc1 of
/// the int8 MNIST MLP at one image runs `stored`, one lane per output channel, and its 784
/// int8 inputs are the same in all 256 lanes, so they move once while every lane writes
/// them.
#[test]
fn a_shared_input_crosses_the_bus_once() {
    let j = json(&cram_line(&format!(
        "map {INT8_MLP} --layer fc1 --json --set mapping.slices=1 \
         --set mapping.programs=per-group"
    )));
    let r = &j["layers"][0]["report"];
    assert_eq!(r["strategy"], "stored");
    assert_eq!(r["lanes_used"], 256);
    let (moved, written) = (
        r["loaded_bits"].as_u64().unwrap(),
        r["written_bits"].as_u64().unwrap(),
    );
    assert_eq!(
        written - moved,
        255 * 784 * 8,
        "moved {moved}, written {written}"
    );
}

/// Issue 21's T4 criterion: fc1 of the int8 MNIST MLP at one image, weights resident, moves at
/// most a tenth of the 3,225,344 bits it moved when every lane loaded its weights and
/// inputs; the deployment (every weight written once) is reported apart.
#[test]
fn resident_weights_leave_fc1_a_tenth_of_its_moves() {
    let j = json(&cram_line(&format!("map {INT8_MLP} --layer fc1 --json")));
    assert_eq!(j["resident"], true);
    let r = &j["layers"][0]["report"];
    assert_eq!(r["resident"], true, "{r}");
    let moved = r["loaded_bits"].as_u64().unwrap();
    assert!(moved <= 322_534, "{moved} bits moved");
    let d = &r["deployment"];
    assert!(d["written_bits"].as_u64().unwrap() >= 784 * 256 * 8, "{d}");
    assert!(d["moved_bits"].as_u64().unwrap() >= 784 * 256 * 8, "{d}");
    assert!(d["energy"]["bus_pj"].as_f64().unwrap() > 0.0, "{d}");
}

/// Issue 21's fit criterion on a network the tests can afford: ResNet-20 int8 pinned
/// resident with a lane per output position (335 Mbit of weight copies) is refused on one
/// cram-1k with the chips that would hold it; on that many chips it runs resident, with
/// their area and a chip link's share of the moves; searched copies fit one chip; an array
/// without a chip link refuses more than one chip.
#[test]
fn chips_hold_what_one_chip_cannot() {
    let pinned = "run --mode analytical --out target/chips --set workload.model=resnet20 \
                  --set workload.weight_bits=8 --set workload.act_bits=8 \
                  --set mapping.strategy=stored --set mapping.slices=16 \
                  --set mapping.residency=resident";
    let o = cram_line(&format!("{pinned} --set mapping.copies=per-output"));
    assert_usage_error(
        &o,
        &["resnet20", "need at least", "67108864", "cram.chips = 5"],
    );
    let five = json(&cram_line(&format!(
        "{pinned} --set mapping.copies=per-output --set cram.chips=5 --json"
    )));
    let r = &five["cram"]["residency"];
    assert_eq!(r["resident"], true, "{r}");
    assert_eq!(r["chips"], 5, "{r}");
    assert!(
        r["deployment_written_bits"].as_u64().unwrap() > 67_108_864,
        "{r}"
    );
    let copies = json(&cram_line(&format!("{pinned} --json")));
    let r1 = &copies["cram"]["residency"];
    assert_eq!(r1["resident"], true, "{r1}");
    assert_eq!(r1["chips"], 1, "{r1}");
    assert!(
        r1["deployment_written_bits"].as_u64().unwrap() <= 67_108_864,
        "{r1}"
    );
    // Five chips' area; the chip link carries part of the moves (off-chip energy).
    let area = |j: &serde_json::Value| j["cram"]["metrics"]["area_mm2"].as_f64().unwrap();
    assert!((area(&five) / area(&copies) - 5.0).abs() < 1e-9);
    let host = |j: &serde_json::Value| j["cram"]["energy"]["host_io_pj"].as_f64().unwrap();
    assert!(
        host(&five) > host(&copies),
        "{} vs {}",
        host(&five),
        host(&copies)
    );
    let nolink = config_file("configs/arrays/cram-1k.toml", "cram-nolink.toml", |s| {
        // Cut the [chip_link] table, up to the next table.
        let start = s.find("[chip_link]").unwrap();
        let end = start + s[start..].find("\n[").unwrap() + 1;
        format!("{}{}", &s[..start], &s[end..])
    });
    let o = cram(&[
        "run",
        "--mode",
        "analytical",
        "--set",
        &format!("cram.array={}", nolink.display()),
        "--set",
        "cram.chips=2",
    ]);
    assert_usage_error(&o, &["cram.chips = 2", "[chip_link]"]);
    let o = cram_line("run --set cram.chips=0");
    assert_usage_error(&o, &["cram.chips = 0", "1..=4096"]);
}

/// `map` with no config places the built-in default; with a shipped config and `--layer`
/// it shows one conv layer's subarrays, columns and moves, consistent with its cost report.
#[test]
fn map_shows_placement() {
    let o = cram_line("map");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("digits-mlp-int4") && out.contains("fc1"),
        "{out}"
    );
    let j = json(&cram_line(
        "map configs/resnet20-w4-sparse.toml --layer layer1.0.conv2 --json --set \
         mapping.slices=1 --set mapping.programs=per-group",
    ));
    let l = &j["layers"][0];
    assert_eq!(l["name"], "layer1.0.conv2");
    assert_eq!(l["report"]["strategy"], "const");
    assert_eq!(l["candidates"].as_array().unwrap().len(), 2);
    let programs = l["programs"].as_array().unwrap();
    let runs: Vec<&serde_json::Value> = programs
        .iter()
        .flat_map(|p| p["runs"].as_array().unwrap())
        .collect();
    assert_eq!(
        runs.len() as u64,
        l["report"]["subarray_runs"].as_u64().unwrap()
    );
    // Every output position of the one image has a lane in every channel set.
    let lanes: u64 = runs
        .iter()
        .map(|r| r["lanes"][1].as_u64().unwrap() - r["lanes"][0].as_u64().unwrap())
        .sum();
    assert_eq!(lanes, 32 * 32 * programs.len() as u64);
    // Inputs first, in 8-bit operands; moves land on them; the reduction is 16·3·3.
    assert_eq!(l["reduction"], 144);
    assert!(
        l["columns"][0]["holds"]
            .as_str()
            .unwrap()
            .starts_with("x0..")
    );
    let moves = l["moves"].as_array().unwrap();
    let bits: u64 = moves
        .iter()
        .map(|m| m["bits_per_lane"].as_u64().unwrap())
        .sum();
    assert_eq!(bits, 144 * 8);
    assert!(
        moves[0]["from"]
            .as_str()
            .unwrap()
            .contains("layer1.0.conv1.relu")
    );
    assert_usage_error(
        &cram_line("map configs/resnet20-w4-sparse.toml --layer 99"),
        &["--layer 99", "0..=51", "layer1.0.conv2"],
    );
    let bad = config_file("configs/digits-int4.toml", "map-bad.toml", |t| {
        t.replace("strategy = \"auto\"", "strategy = \"fastest\"")
    });
    assert_usage_error(
        &cram(&["map", bad.to_str().unwrap()]),
        &["map-bad.toml", "fastest", "const", "stored"],
    );
}

/// A fresh results folder under the test target's tmp dir.
fn results_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The single run folder written under `out`.
fn run_folder(out: &std::path::Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// Reads a record file and checks it matches its type exactly: it deserializes with unknown
/// fields refused, and serializes back to the same bytes.
fn strict<T: serde::de::DeserializeOwned + serde::Serialize>(path: &std::path::Path) -> T {
    let text = std::fs::read_to_string(path).unwrap();
    let v: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut again = serde_json::to_string_pretty(&v).unwrap();
    again.push('\n');
    assert_eq!(again, text, "{} does not round-trip", path.display());
    v
}

/// Checks `v` against the JSON Schema subset the committed schemas use (`type`, `properties`,
/// `required`, `additionalProperties: false`, `items`, `$ref` into `$defs`, `minimum`);
/// returns the first violation with its JSON path.
fn schema_violation(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) -> Option<String> {
    use serde_json::Value;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local refs only");
        return schema_violation(root, &root["$defs"][name], v, at);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_u64() || v.is_i64(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Some(format!("{at}: {v} is not of type {types:?}"));
        }
    }
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64())
        && x < min
    {
        return Some(format!("{at}: {x} < minimum {min}"));
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !obj.contains_key(r) {
                return Some(format!("{at}: required field '{r}' missing"));
            }
        }
        for (k, x) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => {
                    if let Some(e) = schema_violation(root, s, x, &format!("{at}.{k}")) {
                        return Some(e);
                    }
                }
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Some(format!("{at}: field '{k}' is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            if let Some(e) = schema_violation(root, items, x, &format!("{at}[{i}]")) {
                return Some(e);
            }
        }
    }
    None
}

/// Validates a JSON file against a committed schema in docs/schema/.
fn assert_valid(file: &std::path::Path, schema: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("docs/schema")
        .join(schema);
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root).unwrap()).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    if let Some(e) = schema_violation(&schema, &schema, &v, "$") {
        panic!("{}: {e}", file.display());
    }
    // The validator is not vacuous: an unknown field and a wrong type are caught.
    let mut bad = v.clone();
    bad["unexpected"] = serde_json::Value::Bool(true);
    assert!(schema_violation(&schema, &schema, &bad, "$").is_some());
    let mut bad = v;
    bad["schema_version"] = serde_json::Value::String("one".into());
    assert!(schema_violation(&schema, &schema, &bad, "$").is_some());
}

#[test]
fn run_default_compares_cram_with_cpu_and_nmp() {
    use cramulator::records::{LayerRow, Manifest, RunReport};
    let out = results_dir("run-default");
    let o = cram(&["run", "--out", out.to_str().unwrap()]);
    let s = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        s.contains("bit-exact 360/360") && s.contains("accuracy 97.50 %"),
        "{s}"
    );
    for name in [
        "cram",
        "cpu-ddr4",
        "nmp",
        "CRAM's gain",
        "at a batch of 360 on CRAM and 360 on each baseline",
        "CO2e per million",
        "cram energy by boundary: array",
        "energy gain by boundary",
    ] {
        assert!(s.contains(name), "missing {name} in {s}");
    }
    let dir = run_folder(&out);
    let report: RunReport = strict(&dir.join("report.json"));
    let manifest: Manifest = strict(&dir.join("manifest.json"));
    assert_valid(&dir.join("report.json"), "report.schema.json");
    assert_valid(&dir.join("manifest.json"), "manifest.schema.json");
    assert_eq!(report.run_id, manifest.run_id);
    assert!(dir.ends_with(&manifest.run_id));
    assert_eq!(report.workload.model, "digits-mlp-int4");
    assert_eq!(report.cram.bit_exact_images, Some(360));
    let names: Vec<&str> = report.baselines.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["cpu-ddr4", "nmp"]);
    for b in &report.baselines {
        assert_eq!(b.batch, 360);
        let m = &b.metrics;
        assert!(m.energy_pj > 0.0 && m.latency_s > 0.0);
        let split = m.compute_pj + m.data_movement_pj + m.static_pj;
        assert!((split - m.energy_pj).abs() < 1e-9 * m.energy_pj);
        assert!((b.versus_cram.energy - m.energy_pj / report.cram.metrics.energy_pj).abs() < 1e-9);
        // At each boundary, the baseline's whole energy over CRAM's inside it.
        let (r, e) = (
            &b.versus_cram.energy_by_boundary,
            &report.cram.energy_by_boundary,
        );
        for (ratio, inside) in [(r.array, e.array), (r.macro_, e.macro_), (r.chip, e.chip)] {
            assert!((ratio * inside - m.energy_pj).abs() < 1e-9 * m.energy_pj);
        }
        assert!((r.system - b.versus_cram.energy).abs() < 1e-9 * r.system);
    }
    // The boundaries nest, and the system's is the energy the tables give.
    let e = &report.cram.energy_by_boundary;
    assert!(0.0 < e.array && e.array < e.macro_ && e.macro_ < e.chip && e.chip <= e.system);
    let total = report.cram.metrics.energy_pj;
    assert!((e.system - total).abs() < 1e-9 * total, "{e:?} vs {total}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    for k in ["array", "macro", "chip", "system"] {
        assert!(json["cram"]["energy_by_boundary"][k].is_number(), "{k}");
        assert!(json["baselines"][0]["versus_cram"]["energy_by_boundary"][k].is_number());
    }
    // resolved.toml is a complete config that reproduces the run.
    let resolved = std::fs::read_to_string(dir.join("resolved.toml")).unwrap();
    for key in [
        "[cram]",
        "[cram.device]",
        "name = \"stt-projected\"",
        "[compare]",
        "grid_gco2e_per_kwh",
        "seed = 1",
    ] {
        assert!(resolved.contains(key), "{resolved}");
    }
    // layers.csv: one row per layer and machine, each a LayerRow.
    let mut rows = csv::Reader::from_path(dir.join("layers.csv")).unwrap();
    let rows: Vec<LayerRow> = rows.deserialize().map(|r| r.unwrap()).collect();
    let machines: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r.machine.as_str()).collect();
    assert_eq!(
        machines.into_iter().collect::<Vec<_>>(),
        ["cpu-ddr4", "cram", "nmp"]
    );
    let cram_pj: f64 = rows
        .iter()
        .filter(|r| r.machine == "cram")
        .map(|r| r.energy_pj)
        .sum();
    assert!((cram_pj - report.cram.metrics.energy_pj).abs() < 1e-6 * cram_pj);
    // CRAM rows split their energy by boundary; baseline rows leave it empty.
    for r in &rows {
        let inside = [r.array_pj, r.macro_pj, r.chip_pj];
        if r.machine == "cram" {
            let [a, m, c] = inside.map(Option::unwrap);
            assert!(
                a <= m && m <= c && c <= r.energy_pj * (1.0 + 1e-12),
                "{r:?}"
            );
        } else {
            assert_eq!(inside, [None; 3], "{r:?}");
        }
    }
    let sum = |f: fn(&LayerRow) -> Option<f64>| -> f64 { rows.iter().filter_map(f).sum() };
    assert!((sum(|r| r.array_pj) - e.array).abs() < 1e-6 * e.array);
    assert!((sum(|r| r.chip_pj) - e.chip).abs() < 1e-6 * e.chip);
    // The same run again, on one thread: byte-identical files, replaced atomically.
    let o = Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(["run", "--threads", "1", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let again = run_folder(&out);
    for f in &manifest.files {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// The `.toml` files of `configs/<sub>`, sorted.
fn shipped(sub: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// Every run config in configs/ (the top level and the paper files that are run configs)
/// runs, and so does every device, array and baseline preset in its folder.
#[test]
fn run_every_shipped_config() {
    use cramulator::records::RunReport;
    let is_run_config = |p: &PathBuf| {
        let v: toml::Table = std::fs::read_to_string(p).unwrap().parse().unwrap();
        let paper = v.get("paper").and_then(|p| p.as_table());
        !paper.is_some_and(|p| p.contains_key("kernel") || p.contains_key("access"))
    };
    let configs: Vec<PathBuf> = shipped("")
        .into_iter()
        .chain(shipped("papers").into_iter().filter(is_run_config))
        .collect();
    assert!(configs.len() >= 4, "{configs:?}");
    let stem = |p: &PathBuf| p.file_stem().unwrap().to_str().unwrap().to_owned();
    let check = |name: &str, args: &[&str]| -> RunReport {
        let out = results_dir(&format!("run-config-{name}"));
        let mut all = vec!["run", "--out", out.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = cram(&all);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let report: RunReport = strict(&run_folder(&out).join("report.json"));
        assert_valid(&run_folder(&out).join("report.json"), "report.schema.json");
        assert!(!report.baselines.is_empty() && report.cram.metrics.energy_pj > 0.0);
        report
    };
    // Every shipped run config keeps the default gate-error budget and evaluates only gates
    // within it (issue 22: a result the modelled device could compute).
    for c in &configs {
        let r = check(&stem(c), &[c.to_str().unwrap()]);
        let q = &r.cram.reliability;
        assert_eq!(q.max_gate_error, 1e-6, "{c:?}");
        assert!(!q.gates.is_empty(), "{c:?}");
        for g in &q.gates {
            assert!(g.p_err <= q.max_gate_error, "{c:?}: {g:?}");
        }
    }
    let baselines: Vec<String> = shipped("baselines").iter().map(stem).collect();
    let all = format!("compare.baselines={}", baselines.join(","));
    for device in shipped("devices").iter().map(stem) {
        for array in shipped("arrays").iter().map(stem) {
            let (d, a) = (
                format!("cram.device={device}"),
                format!("cram.array={array}"),
            );
            let name = format!("{device}-{array}");
            // A device with no gate set inside the default budget is refused with the
            // numbers; unbudgeted, it runs and states its expected flips.
            let out = results_dir(&format!("run-budget-{name}"));
            let o = cram(&[
                "run",
                "--out",
                out.to_str().unwrap(),
                "--set",
                &d,
                "--set",
                &a,
            ]);
            if o.status.code() != Some(0) {
                let e = stderr(&o);
                assert_eq!(o.status.code(), Some(2), "{name}: {e}");
                assert!(
                    e.contains("mapping.max_gate_error = 1e-6") && e.contains("p_err"),
                    "{e}"
                );
            }
            let free = "mapping.max_gate_error=1";
            let r = check(
                &name,
                &["--set", &d, "--set", &a, "--set", &all, "--set", free],
            );
            assert!(r.cram.reliability.expected_flips_per_inference >= 0.0);
            assert_eq!(
                (r.cram.device.as_str(), r.cram.array.as_str()),
                (&*device, &*array)
            );
            let got: Vec<&str> = r.baselines.iter().map(|b| b.name.as_str()).collect();
            assert_eq!(got, baselines, "{name}");
        }
    }
}

#[test]
fn run_overrides_and_bad_overrides() {
    use cramulator::records::RunReport;
    let out = results_dir("run-set");
    let o = cram(&[
        "run",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "workload.model=lenet5",
        "--set",
        "workload.weight_bits=4",
        "--set",
        "compare.baselines=gpu-hbm2,mcu-cortex-m4",
        "--mode",
        "analytical",
        "--json",
    ]);
    let v = json(&o);
    let report: RunReport = serde_json::from_value(v).unwrap();
    assert_eq!(report.workload.model, "lenet5");
    assert_eq!(report.cram.mode, "analytical");
    assert_eq!(report.baselines.len(), 2);
    let resolved = std::fs::read_to_string(run_folder(&out).join("resolved.toml")).unwrap();
    assert!(
        resolved.contains("weight_bits = 4") && resolved.contains("act_bits = 8"),
        "{resolved}"
    );
    // A bad path lists the nearest valid keys; a bad value names the key, value and choices.
    let o = cram_line("run --set workload.sparsty=0.5");
    assert_usage_error(&o, &["unknown key 'workload.sparsty'", "workload.sparsity"]);
    let o = cram_line("run --set mapping.strategy=fastest");
    assert_usage_error(
        &o,
        &[
            "--set mapping.strategy=fastest",
            "`auto`, `const`, `stored`",
        ],
    );
    let o = cram_line("run --set workload.model=resnet20 --set workload.sparsity=1.5");
    assert_usage_error(&o, &["workload.sparsity = 1.5", "[0, 1)"]);
    let o = cram_line("run --set compare.baselines=tpu");
    assert_usage_error(&o, &["baseline preset 'tpu'", "cpu-ddr4"]);
    let out = results_dir("run-images");
    let o = cram(&[
        "run",
        "--set",
        "run.images=10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout(&o).contains("bit-exact 10/10"), "{}", stdout(&o));
    let resolved = std::fs::read_to_string(run_folder(&out).join("resolved.toml")).unwrap();
    assert!(resolved.contains("images = 10"), "{resolved}");
    let o = cram_line("run --set run.images=0");
    assert_usage_error(&o, &["run.images = 0", "1..=65536"]);
    let o = cram_line("run --set compare.batch=0");
    assert_usage_error(&o, &["compare.batch = 0", "1..=65536"]);
    let o = cram_line("run --set compare.bacth=1");
    assert_usage_error(&o, &["unknown key 'compare.bacth'", "compare.batch"]);
    let o = cram_line("run --set oops");
    assert_usage_error(&o, &["--set oops", "key.path=value"]);
}

/// The chip's area and leakage (docs/model.md §1.1.2–1.1.3): the report's components add
/// up to the chip, the metrics' area is every chip's and TOPS/mm² follows from it, the
/// leakage is the static energy, power gating lowers it, and an array efficiency given
/// replaces the components by cells ÷ that fraction.
#[test]
fn area_and_leakage_follow_the_chip() {
    let run = |sets: &str| {
        json(&cram_line(&format!(
            "run --mode analytical --set run.images=8 {sets} --json"
        )))
    };
    let v = run("");
    let (c, m) = (&v["cram"]["chip"], &v["cram"]["metrics"]);
    let area = c["area_mm2"].as_f64().unwrap();
    let parts: f64 = c["area_by_component"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .sum();
    assert!(
        (parts - area).abs() < 1e-9 * area && area > 1.0,
        "{parts} vs {area}"
    );
    assert!((m["area_mm2"].as_f64().unwrap() - area).abs() < 1e-12);
    let macs = v["workload"]["macs"].as_f64().unwrap();
    let tops = 2.0 * macs * m["throughput_per_s"].as_f64().unwrap() * 1e-12 / area;
    assert!((m["tops_per_mm2"].as_f64().unwrap() - tops).abs() < 1e-9 * tops);
    let static_pj = m["static_pj"].as_f64().unwrap();
    assert!(static_pj > 0.0 && c["leakage_mw"].as_f64().unwrap() > 1.0);
    assert_eq!(
        v["cram"]["energy"]["leakage_pj"].as_f64().unwrap(),
        static_pj
    );
    let two = run("--set cram.chips=2");
    let a2 = two["cram"]["metrics"]["area_mm2"].as_f64().unwrap();
    assert!((a2 - 2.0 * area).abs() < 1e-9 * area, "{a2}");
    let gated = run("--set cram.array_params.peripherals.power_gating=true");
    assert!(gated["cram"]["metrics"]["static_pj"].as_f64().unwrap() < static_pj);
    let given = run("--set cram.array_params.array_efficiency=0.5");
    let g = &given["cram"]["chip"];
    let cells = c["area_by_component"][0][1].as_f64().unwrap();
    assert!((g["area_mm2"].as_f64().unwrap() - 2.0 * cells).abs() < 1e-9);
    assert_eq!(g["area_by_component"][6][0], "unattributed");
    let o = cram_line("run --mode analytical --set cram.array_params.array_efficiency=0");
    assert_usage_error(&o, &["array_efficiency", "0"]);
}

/// Binary networks (docs/model.md §2.1): a zoo network with 1-bit weights and activations
/// runs functionally and bit-exactly, its inner weighted layers at w1a1 and its first and
/// last at 8 bits, cheaper than at int8 on CRAM and on the bit-packed baseline; the ends
/// can be binarized too; a network whose weighted layers are all ends is refused until
/// they are; 1-bit weights cannot be pruned; the shipped binary digits model runs
/// bit-exactly at its recorded accuracy.
#[test]
fn binary_networks_run_bit_exact() {
    let run = |model: &str, sets: &str| {
        cram_line(&format!(
            "run --set workload.model={model} --mode functional --set run.images=1 \
             --set compare.baselines=cpu-ddr4 {sets} --json"
        ))
    };
    let bnn = "--set workload.weight_bits=1 --set workload.act_bits=1";
    for model in ["resnet20", "lenet5"] {
        let v = json(&run(model, bnn));
        assert_eq!(v["cram"]["bit_exact_images"], 1, "{model}");
        let int8 = json(&run(model, ""));
        let e = |v: &serde_json::Value, side: &str| match side {
            "cram" => v["cram"]["metrics"]["energy_pj"].as_f64().unwrap(),
            _ => v["baselines"][0]["metrics"]["energy_pj"].as_f64().unwrap(),
        };
        assert!(e(&v, "cram") < e(&int8, "cram"), "{model}");
        assert!(e(&v, "cpu") < e(&int8, "cpu"), "{model}");
    }
    let all = json(&run(
        "lenet5",
        &format!("{bnn} --set workload.binary_ends_bits=1"),
    ));
    assert_eq!(all["cram"]["bit_exact_images"], 1);
    let o = run("mlp-784-256-10", bnn);
    assert_usage_error(&o, &["none of its 2 weighted layer(s)"]);
    // T4's network (configs/papers/t4-mnist-vs-nmp.toml), functional on two images: every
    // layer XNOR-popcount, bit-exact.
    let t4 = json(&cram_line(
        "run configs/papers/t4-mnist-vs-nmp.toml --mode functional --set run.images=2 --json",
    ));
    assert_eq!(t4["cram"]["bit_exact_images"], 2);
    let o = run(
        "lenet5",
        "--set workload.weight_bits=1 --set workload.sparsity=0.5",
    );
    assert_usage_error(&o, &["workload.sparsity", "pruned"]);
    let o = run("lenet5", "--set workload.binary_ends_bits=4");
    assert_usage_error(&o, &["workload.binary_ends_bits", "binary networks only"]);
    let d = json(&cram_line(
        "run --set workload.model=digits-mlp-binary --set compare.baselines=cpu-ddr4 --json",
    ));
    assert_eq!(d["cram"]["bit_exact_images"], 360);
    assert_eq!(d["cram"]["correct"], 339);
}

/// The periphery follows `node_nm` (docs/model.md §1.1.1): another node re-prices the run, a
/// node outside 22–65 nm is refused naming the key, and a price given overrides the node's.
#[test]
fn the_periphery_follows_the_node() {
    let energy = |sets: &str| {
        let v = json(&cram_line(&format!(
            "run --mode analytical --set run.images=8 {sets} --json"
        )));
        v["cram"]["metrics"]["energy_pj"].as_f64().unwrap()
    };
    let (n22, n45) = (energy(""), energy("--set cram.array_params.node_nm=45"));
    assert!((n45 / n22 - 1.0).abs() > 0.01, "{n45} vs {n22}");
    // A cheaper command (12.6 pJ derived at 22 nm) can only lower the energy objective's
    // best.
    let one = energy("--set cram.array_params.peripherals.e_controller_pj_per_command=1");
    assert!(one < n22, "{one} vs {n22}");
    let o = cram_line("run --mode analytical --set cram.array_params.node_nm=10");
    assert_usage_error(&o, &["node_nm", "10", "between 22 and 65 nm"]);
}

#[test]
fn calibrate_prints_three_ratios_within_a_factor_of_two() {
    let o = cram_line("calibrate --json");
    let v = json(&o);
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("calibration.json");
    std::fs::write(&file, &o.stdout).unwrap();
    let schema =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/schema/calibration.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema).unwrap()).unwrap();
    assert_eq!(schema_violation(&schema, &schema, &v, "$"), None);
    let points = v["baselines"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    let macros = v["macros"].as_array().unwrap();
    assert!(!macros.is_empty());
    for p in points.iter().chain(macros) {
        let r = p["ratio"].as_f64().unwrap();
        assert!((0.5..=2.0).contains(&r), "{p}");
    }
}

#[test]
fn memory_guard_refuses_with_the_estimate_and_writes_nothing() {
    let out = results_dir("memory-guard");
    let o = cram(&["run", "--max-memory", "1K", "--out", out.to_str().unwrap()]);
    assert_usage_error(
        &o,
        &[
            "digits-mlp-int4 on 360 image(s)",
            "would hold about",
            "activations",
            "programs",
            "above --max-memory 1.0 KiB (as given)",
            "--mode analytical",
        ],
    );
    assert!(!out.exists(), "a refused run wrote results");
    // The same run fits a realistic limit; an analytical run holds far less than a
    // functional one (its network, no activations or simulated cells).
    let o = cram(&["run", "--max-memory", "1G", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cram(&["simulate", "lenet5", "--max-memory", "2M"]);
    assert_usage_error(&o, &["lenet5 on 1 image(s)", "above --max-memory"]);
    let o = cram(&[
        "simulate",
        "lenet5",
        "--mode",
        "analytical",
        "--max-memory",
        "2M",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cram(&["simulate", "lenet5", "--max-memory", "1K"]);
    assert_usage_error(
        &o,
        &["network 'lenet5'", "parameters", "above --max-memory"],
    );
    let o = cram(&["run", "--max-memory", "lots"]);
    assert_usage_error(&o, &["--max-memory lots", "512M"]);
}

#[test]
fn sigint_stops_a_run_with_nothing_half_written() {
    let out = results_dir("sigint-run");
    // A functional ResNet-20: seconds of work, so the signal lands mid-network.
    let child = Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(["run", "--set", "workload.model=resnet20", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{e}");
    assert!(e.contains("interrupted") && !e.contains("panicked"), "{e}");
    // Results are written atomically at the end: no run folder, no temporary left.
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn validate_runs_a_group_and_writes_json_with_every_field() {
    let o = cram(&["validate", "--group", "kernels", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: cramulator::records::ValidationReport =
        serde_json::from_slice(&o.stdout).expect("a validation report");
    assert!(r.passed && r.required_failed == 0);
    assert_eq!(r.groups, ["kernels"]);
    assert!(r.checks.iter().any(|c| c.id == "nand-add-9n-4"));
    for c in &r.checks {
        assert!(!c.expected.is_empty() && !c.obtained.is_empty() && !c.source.is_empty());
    }
    let o = cram(&["validate", "--group", "nonsense"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn validate_fails_on_a_diverging_required_paper_check() {
    let dir = results_dir("papers-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let t1 = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/papers/t1-nand-ripple-add.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("t1.toml"),
        t1.replace("expected = 68", "expected = 69"),
    )
    .unwrap();
    let validate_papers = || {
        cram(&[
            "validate",
            "--group",
            "papers",
            "--papers",
            dir.to_str().unwrap(),
        ])
    };
    let o = validate_papers();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("[diverges] T1/add-8"), "{text}");
    assert!(text.contains("REQUIRED CHECKS FAIL"), "{text}");
    // A malformed paper file is a usage error naming the file and key.
    std::fs::write(
        dir.join("t1.toml"),
        t1.replace("metric = \"gate_steps\"", "metric = \"GATES\""),
    )
    .unwrap();
    let o = validate_papers();
    assert_usage_error(&o, &["t1.toml", "metric", "GATES"]);
}
