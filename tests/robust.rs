//! What a new-user trial broke (issue 19), each case held by a test that failed before its
//! fix: silent wrong results, lost data, hangs, crashes and misleading messages.

use crate::common::*;

/// The stt-today preset with cram-1k's lines edited: `r_ohm` per cell, `segment` rows per
/// driven segment.
fn array_file(dir: &std::path::Path, name: &str, r_ohm: f64, segment: u32) -> std::path::PathBuf {
    edited("configs/arrays/cram-1k.toml", dir, name, |s| {
        s.replace(
            "r_wire_ohm_per_cell = 1.0",
            &format!("r_wire_ohm_per_cell = {r_ohm:?}"),
        )
        .replace(
            "lanes_per_line_segment = 8",
            &format!("lanes_per_line_segment = {segment}"),
        )
    })
}

/// Item 1: `run`, `simulate`, `map` and sweeps apply the IR-drop check `kernel` applies:
/// refused with the numbers, or run under `--allow-ir-violation` and said so in the report.
/// And the segmentation the check assumes is what energy and timing price.
#[test]
fn every_command_checks_the_ir_drop_and_prices_the_segments() {
    let d = scratch("ir");
    let out = d.join("results");
    let long = array_file(&d, "seg1024.toml", 1.0, 100_000);
    let resistive = array_file(&d, "r1000.toml", 1000.0, 8);
    for arr in [&long, &resistive] {
        let name = arr.file_name().unwrap().to_str().unwrap();
        let want = ["IR drop", name, "stt-today", "MAJ5", "--allow-ir-violation"];
        let set = format!("cram.array={}", arg(arr));
        let run = ["run", "--set", "cram.device=stt-today", "--set", &set];
        assert_usage_error(&cram(&[&run[..], &["--out", arg(&out)]].concat()), &want);
        assert_usage_error(
            &cram(&[
                "simulate",
                "digits-mlp-int4",
                "--device",
                "stt-today",
                "--array",
                arg(arr),
            ]),
            &want,
        );
        let config = d.join(format!("{name}.run.toml"));
        std::fs::write(
            &config,
            format!("[cram]\ndevice = \"stt-today\"\narray = \"{}\"\n", arg(arr)),
        )
        .unwrap();
        assert_usage_error(&cram(&["map", arg(&config)]), &want);
        assert_usage_error(
            &cram(&["run", arg(&config), "--out", arg(&out)]),
            &["cram.allow_ir_violation"],
        );
        assert_usage_error(
            &cram(&[
                "kernel",
                "add",
                "--bits",
                "8",
                "--device",
                "stt-today",
                "--array",
                arg(arr),
            ]),
            &want[..3],
        );
    }
    assert!(!out.exists(), "a refused run wrote results");

    // Allowed: the run goes on, and the table and the report say so.
    let analytical = |arr: &std::path::Path, allow: bool| {
        let set = format!("cram.array={}", arg(arr));
        let mut args = vec![
            "run",
            "--set",
            "cram.device=stt-today",
            "--set",
            &set,
            "--mode",
            "analytical",
            "--out",
            arg(&out),
        ];
        if allow {
            args.push("--allow-ir-violation");
        }
        let text = ok(&cram(&args));
        args.push("--json");
        (text, json(&cram(&args)))
    };
    let (text, allowed) = analytical(&long, true);
    assert!(text.contains("WARNING: IR drop violated"), "{text}");
    let violations = allowed["cram"]["ir"]["violations"].as_array().unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v.as_str().unwrap().contains("MAJ5"))
    );
    assert_eq!(allowed["cram"]["ir"]["rows_per_line"], 1024);

    // Priced: one 1024-row segment charges whole lines where 8-row segments charge only
    // those holding the lanes in use (digits-mlp fills few lanes per subarray).
    let shipped = array_file(&d, "shipped.toml", 1.0, 8);
    let (_, base) = analytical(&shipped, false);
    assert!(
        base["cram"]["ir"]["violations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let lines = |v: &serde_json::Value| v["cram"]["energy"]["line_drivers_pj"].as_f64().unwrap();
    assert!(
        lines(&allowed) > 5.0 * lines(&base),
        "{} vs {}",
        lines(&allowed),
        lines(&base)
    );
    // And timed: 1024 cells of 1 kΩ and 0.1 fF settle in r·c·S²/2 = 52 ns, far beyond the
    // 0.5 ns driver set-up, so every step takes longer.
    let slow = array_file(&d, "slow.toml", 1000.0, 100_000);
    let (_, slow) = analytical(&slow, true);
    let latency = |v: &serde_json::Value| v["cram"]["metrics"]["latency_s"].as_f64().unwrap();
    assert!(
        latency(&slow) > 5.0 * latency(&base),
        "{} vs {}",
        latency(&slow),
        latency(&base)
    );

    // A sweep point on the violating array fails with the reason; allowed, it runs.
    for (allow, status) in [(false, "error"), (true, "ok")] {
        let sweep = d.join(format!("sweep-{allow}.toml"));
        std::fs::write(
            &sweep,
            format!(
                "[sweep]\nname = \"ir\"\nset = [\"run.mode=analytical\", \
                 \"cram.device=stt-today\", \"cram.allow_ir_violation={allow}\"]\n\
                 [[axis]]\nkey = \"cram.array\"\nvalues = [\"{}\"]\n",
                arg(&long)
            ),
        )
        .unwrap();
        let plan = d.join(format!("plan-{allow}"));
        ok(&cram(&["sweep", "plan", arg(&sweep), "--out", arg(&plan)]));
        ok(&cram(&["sweep", "run", arg(&plan)]));
        ok(&cram(&["sweep", "merge", arg(&plan)]));
        let rec: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(plan.join("results.jsonl"))
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(rec["status"], status, "{rec}");
        if !allow {
            assert!(rec["error"].as_str().unwrap().contains("IR drop"), "{rec}");
        }
    }
}
