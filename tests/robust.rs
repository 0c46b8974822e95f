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

/// Replaces `from` with `to` in the file at `path`.
fn replace_in(path: &std::path::Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// A `run` of one sweep point's configuration on its own (analytical, two images, the
/// record's seed, the sweep's weights seed 1) with `sets` on top; its report.
fn point_alone(
    rec: &serde_json::Value,
    sets: &[String],
    out: &std::path::Path,
) -> serde_json::Value {
    let mut args: Vec<String> = ["run", "--mode", "analytical", "--json", "--out"]
        .map(String::from)
        .to_vec();
    args.push(arg(out).to_owned());
    let seed = format!("run.seed={}", rec["seed"]);
    for set in ["run.images=2", "workload.seed=1", seed.as_str()]
        .into_iter()
        .chain(sets.iter().map(String::as_str))
    {
        args.extend(["--set".to_owned(), set.to_owned()]);
    }
    json(&cram(&args))
}

/// The first record of a merged sweep.
fn first_record(plan: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(plan.join("results.jsonl")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// Item 1: `run`, `simulate`, `map` and sweeps apply the IR-drop check `kernel` applies:
/// refused with the numbers, or run under `--allow-ir-violation` and said so in the report.
/// And the segmentation the check assumes is what energy and timing price.
#[test]
fn every_command_checks_the_ir_drop_and_prices_the_segments() {
    // The maj set (MAJ5 has the fewest rows), unbudgeted: this is about the IR drop.
    const MAJ: [&str; 4] = [
        "--set",
        "cram.gate_set=maj",
        "--set",
        "mapping.max_gate_error=1",
    ];
    let d = scratch("ir");
    let out = d.join("results");
    let long = array_file(&d, "seg1024.toml", 1.0, 100_000);
    let resistive = array_file(&d, "r1000.toml", 1000.0, 8);
    for arr in [&long, &resistive] {
        let name = arr.file_name().unwrap().to_str().unwrap();
        let want = ["IR drop", name, "stt-today", "MAJ5", "--allow-ir-violation"];
        let set = format!("cram.array={}", arg(arr));
        let run = [
            &["run", "--set", "cram.device=stt-today", "--set", &set][..],
            &MAJ,
        ]
        .concat();
        assert_usage_error(&cram(&[&run[..], &["--out", arg(&out)]].concat()), &want);
        assert_usage_error(
            &cram(&[
                "simulate",
                "digits-mlp-int4",
                "--device",
                "stt-today",
                "--array",
                arg(arr),
                "--gate-set",
                "maj",
                "--set",
                "mapping.max_gate_error=1",
            ]),
            &want,
        );
        let config = d.join(format!("{name}.run.toml"));
        std::fs::write(
            &config,
            format!(
                "[cram]\ndevice = \"stt-today\"\narray = \"{}\"\ngate_set = \"maj\"\n\
                 [mapping]\nmax_gate_error = 1.0\n",
                arg(arr)
            ),
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
        // One layout on every array, so that the arrays price the same work.
        let mut args = [
            &["run", "--set", "cram.device=stt-today", "--set", &set][..],
            &MAJ,
            &["--set", "mapping.strategy=const", "--mode"],
        ]
        .concat();
        args.extend(["analytical", "--out", arg(&out)]);
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
                 \"cram.device=stt-today\", \"cram.allow_ir_violation={allow}\", \
                 \"cram.gate_set=maj\", \"mapping.max_gate_error=1\"]\n\
                 [[axis]]\nkey = \"cram.array\"\nvalues = [\"{}\"]\n",
                arg(&long)
            ),
        )
        .unwrap();
        let plan = d.join(format!("plan-{allow}"));
        ok(&cram(&["sweep", "plan", arg(&sweep), "--out", arg(&plan)]));
        ok(&cram(&["sweep", "run", arg(&plan)]));
        ok(&cram(&["sweep", "merge", arg(&plan)]));
        let rec = first_record(&plan);
        assert_eq!(rec["status"], status, "{rec}");
        if !allow {
            assert!(rec["error"].as_str().unwrap().contains("IR drop"), "{rec}");
        }
    }
}

/// The single run folder under `out` whose name is not in `before`.
fn new_run(out: &std::path::Path, before: &[std::path::PathBuf]) -> std::path::PathBuf {
    let mut fresh: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    fresh.pop().unwrap()
}

fn folders(out: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(out)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Item 2: a run's id covers the content of every file it read, not the file names; its
/// `resolved.toml` holds the resolved parameters and the model's digest, so running it
/// repeats the run after the files change, and a changed model file is refused.
#[test]
fn run_ids_cover_file_contents_and_resolved_runs_repeat() {
    let d = scratch("ids");
    let out = d.join("results");
    let dev = edited("configs/devices/stt-today.toml", &d, "dev.toml", |s| s);
    let config = d.join("run.toml");
    std::fs::write(
        &config,
        "[cram]\ndevice = \"dev.toml\"\n[mapping]\nmax_gate_error = 1.0\n[run]\n\
         mode = \"analytical\"\nimages = 4\n",
    )
    .unwrap();
    ok(&cram(&["run", arg(&config), "--out", arg(&out)]));
    let first = new_run(&out, &[]);
    let report = std::fs::read(first.join("report.json")).unwrap();
    let saved = d.join("saved-resolved.toml");
    std::fs::copy(first.join("resolved.toml"), &saved).unwrap();
    // TMR 1.33 → 1.5 in the file the config names: a new id, the first result untouched.
    replace_in(&dev, "tmr = 1.33", "tmr = 1.5");
    ok(&cram(&["run", arg(&config), "--out", arg(&out)]));
    let second = new_run(&out, std::slice::from_ref(&first));
    assert_ne!(second, first);
    assert_eq!(std::fs::read(first.join("report.json")).unwrap(), report);
    let e = |dir: &std::path::Path| {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
        v["cram"]["metrics"]["energy_pj"].as_f64().unwrap()
    };
    assert_ne!(e(&first), e(&second));
    // The saved resolved.toml repeats the first run: same id, same bytes.
    let again = d.join("again");
    ok(&cram(&["run", arg(&saved), "--out", arg(&again)]));
    let repeat = new_run(&again, &[]);
    assert_eq!(repeat.file_name(), first.file_name());
    assert_eq!(std::fs::read(repeat.join("report.json")).unwrap(), report);
    let resolved = std::fs::read_to_string(&saved).unwrap();
    assert!(
        resolved.contains("tmr = 1.33") && resolved.contains("[cram.device]"),
        "{resolved}"
    );

    // A model file: its digest is recorded, and a changed file is refused, not run.
    let model = d.join("m.toml");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workloads/models/digits-mlp-int4.toml"),
        &model,
    )
    .unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("workloads/models/digits-mlp-int4.safetensors"),
        d.join("digits-mlp-int4.safetensors"),
    )
    .unwrap();
    let set = format!("workload.model={}", arg(&model));
    let models = d.join("models");
    ok(&cram(&[
        "run",
        "--set",
        &set,
        "--mode",
        "analytical",
        "--out",
        arg(&models),
    ]));
    let run = new_run(&models, &[]);
    let text = std::fs::read_to_string(run.join("resolved.toml")).unwrap();
    assert!(text.contains("model_hash = \""), "{text}");
    let mut w = std::fs::read(d.join("digits-mlp-int4.safetensors")).unwrap();
    let last = w.len() - 1;
    w[last] ^= 1;
    std::fs::write(d.join("digits-mlp-int4.safetensors"), w).unwrap();
    assert_usage_error(
        &cram(&[
            "run",
            arg(&run.join("resolved.toml")),
            "--out",
            arg(&models),
        ]),
        &["m.toml", "workload.model_hash", "changed"],
    );
}

/// Item 2, sweeps: `sweep plan` freezes the base's files, so a file edited between plan and
/// run does not change (or split) the sweep's results.
#[test]
fn sweep_plans_freeze_the_files_they_read() {
    let d = scratch("ids-sweep");
    let dev = edited("configs/devices/stt-today.toml", &d, "dev.toml", |s| s);
    let sweep = d.join("s.toml");
    std::fs::write(
        &sweep,
        "[sweep]\nname = \"frozen\"\nset = [\"run.mode=analytical\", \"run.images=2\", \
         \"cram.device=dev.toml\", \"mapping.max_gate_error=1\"]\n[[axis]]\n\
         key = \"mapping.objective\"\n\
         values = [\"energy\", \"latency\"]\n",
    )
    .unwrap();
    let plan = d.join("plan");
    let cwd_run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cramulator"))
            .args(args)
            .current_dir(&d)
            .output()
            .unwrap()
    };
    ok(&cwd_run(&["sweep", "plan", "s.toml", "--out", "plan"]));
    replace_in(&dev, "tmr = 1.33", "tmr = 1.5");
    ok(&cwd_run(&["sweep", "run", "plan"]));
    ok(&cwd_run(&["sweep", "merge", "plan"]));
    let rec = first_record(&plan);
    // The point equals a run of the original file (TMR 1.33).
    let orig = edited("configs/devices/stt-today.toml", &d, "orig.toml", |s| s);
    let v = point_alone(
        &rec,
        &[
            format!("cram.device={}", arg(&orig)),
            "mapping.max_gate_error=1".to_owned(),
        ],
        &d.join("r"),
    );
    assert_eq!(
        rec["report"]["cram"]["metrics"]["energy_pj"],
        v["cram"]["metrics"]["energy_pj"]
    );
}

/// Twelve functional points of the float digits model on all 360 held-out digits: slow
/// enough to catch a shard mid-run.
const SLOW_SWEEP: &str = r#"
[sweep]
name = "slow"
set = ["workload.model=digits-mlp", "run.mode=functional"]

[[axis]]
key = "workload.weight_bits"
range = { start = 2, stop = 7, step = 1 }

[[axis]]
key = "workload.sparsity"
values = [0.0, 0.5]
"#;

/// A plan of `text` in `dir/name`.
fn plan(dir: &std::path::Path, text: &str, name: &str) -> std::path::PathBuf {
    let f = dir.join(format!("{name}.toml"));
    std::fs::write(&f, text).unwrap();
    let p = dir.join(name);
    ok(&cram(&["sweep", "plan", arg(&f), "--out", arg(&p)]));
    p
}

/// `sweep run` of shard 0/1 on one thread, started in the background; returns once the
/// shard's part file holds `lines` lines.
fn start_shard(p: &std::path::Path, lines: usize) -> std::process::Child {
    let part = p.join("shards/shard-0000-of-0001.jsonl.part");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(["sweep", "run", arg(p), "--threads", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while std::fs::read_to_string(&part).map_or(0, |s| s.lines().count()) < lines {
        assert!(t.elapsed().as_secs() < 300, "no records appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the shard ended too soon"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child
}

/// Item 3: a second `sweep run` of a shard that is running is refused and names the holder;
/// a shard damaged later (a torn line mid-file, a repeated record) is reported by `merge`
/// with file:line and repaired by `sweep run`, which keeps the good lines and reruns the
/// rest; the result equals an undisturbed run's.
#[test]
fn a_shard_runs_once_at_a_time_and_damage_is_repaired() {
    let d = scratch("lock");
    let p = plan(&d, SLOW_SWEEP, "locked");
    let mut first = start_shard(&p, 2);
    let second = cram(&["sweep", "run", arg(&p), "--threads", "1"]);
    assert_usage_error(
        &second,
        &["shard 0/1", "held by pid", &first.id().to_string(), ".lock"],
    );
    // Merge while it runs: incomplete, and it says the shard is running.
    let o = cram(&["sweep", "merge", arg(&p)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("still running"), "{}", stderr(&o));
    assert!(first.wait().unwrap().success());
    ok(&cram(&["sweep", "merge", arg(&p)]));
    let clean = std::fs::read(p.join("results.jsonl")).unwrap();

    // Damage the finished shard: cut line 4 in half, repeat line 6.
    let done = p.join("shards/shard-0000-of-0001.jsonl");
    let text = std::fs::read_to_string(&done).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let half = lines[3].len() / 2;
    lines[3].truncate(half);
    let repeated = lines[5].clone();
    lines.push(repeated);
    std::fs::write(&done, lines.join("\n") + "\n").unwrap();
    let o = cram(&["sweep", "merge", arg(&p)]);
    assert_eq!(o.status.code(), Some(3));
    let e = stderr(&o);
    let at = |n: usize| format!("shard-0000-of-0001.jsonl:{n}");
    assert!(
        e.contains(&at(4)) && e.contains("not a point record"),
        "{e}"
    );
    assert!(
        e.contains("recorded twice") && e.contains(&at(6)) && e.contains(&at(14)),
        "{e}"
    );
    assert!(
        e.contains("11 of 12") || e.contains("1 of 12 points missing"),
        "{e}"
    );
    let o = cram(&["sweep", "run", arg(&p), "--threads", "1"]);
    let out = ok(&o);
    assert!(
        out.contains("1 points run") && out.contains("11 already done"),
        "{out}"
    );
    assert!(stderr(&o).contains(&at(4)), "{}", stderr(&o));
    ok(&cram(&["sweep", "merge", arg(&p)]));
    assert!(std::fs::read(p.join("results.jsonl")).unwrap() == clean);
}

/// Item 11: merge names what is wrong (an empty shard file, a corrupt line mid-file without
/// losing the lines after it); `schema --write` to a file and a results folder that is a
/// file are usage errors naming the path, and leave nothing behind.
#[test]
fn merge_and_writers_name_what_is_wrong() {
    let d = scratch("merge-msgs");
    let small = "[sweep]\nname = \"m\"\nset = [\"run.mode=analytical\", \"run.images=2\"]\n\
                 [[axis]]\nkey = \"mapping.objective\"\nvalues = [\"energy\", \"latency\", \
                 \"edp\"]\n";
    let p = plan(&d, small, "m");
    ok(&cram(&["sweep", "run", arg(&p)]));
    let done = p.join("shards/shard-0000-of-0001.jsonl");
    let text = std::fs::read_to_string(&done).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{\"id\": 1, \"oops\"";
    std::fs::write(&done, lines.join("\n") + "\n").unwrap();
    let o = cram(&["sweep", "merge", arg(&p)]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("shard-0000-of-0001.jsonl:3"), "{e}");
    // Only point 1 is missing: the line after the bad one was read.
    assert!(e.contains("1 of 3 points missing"), "{e}");
    std::fs::write(&done, "").unwrap();
    let e = stderr(&cram(&["sweep", "merge", arg(&p)]));
    assert!(
        e.contains("empty") && e.contains("shard-0000-of-0001.jsonl"),
        "{e}"
    );
    assert!(!e.contains("no shard files"), "{e}");

    // schema --write to a file.
    let f = d.join("not-a-folder");
    std::fs::write(&f, "x").unwrap();
    assert_usage_error(
        &cram(&["schema", "--write", arg(&f)]),
        &["not-a-folder", "folder"],
    );
    // results/<run-id> is a file.
    let out = d.join("results");
    ok(&cram(&["run", "--set", "run.images=1", "--out", arg(&out)]));
    let run = new_run(&out, &[]);
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::write(&run, "in the way").unwrap();
    let o = cram(&["run", "--set", "run.images=1", "--out", arg(&out)]);
    assert_usage_error(
        &o,
        &[run.file_name().unwrap().to_str().unwrap(), "not a folder"],
    );
    let left: Vec<_> = folders(&out);
    assert_eq!(left, vec![run.clone()], "leftovers: {left:?}");
}

/// Item 12: `sweep run --retry-failed` runs the failed points again, e.g. once the file
/// they read exists.
#[test]
fn failed_points_can_be_retried() {
    let d = scratch("retry");
    let model = d.join("late.toml");
    let text = format!(
        "[sweep]\nname = \"r\"\nset = [\"run.mode=analytical\", \"run.images=2\"]\n\
         [[axis]]\nkey = \"workload.model\"\nvalues = [\"digits-mlp-int4\", \"{}\"]\n",
        arg(&model)
    );
    let p = plan(&d, &text, "r");
    let out = ok(&cram(&["sweep", "run", arg(&p)]));
    assert!(out.contains("1 failed"), "{out}");
    // Without the flag nothing reruns; with it the failed point does.
    assert!(ok(&cram(&["sweep", "run", arg(&p)])).contains("already done"));
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/models");
    std::fs::copy(repo.join("digits-mlp-int4.toml"), &model).unwrap();
    std::fs::copy(
        repo.join("digits-mlp-int4.safetensors"),
        d.join("digits-mlp-int4.safetensors"),
    )
    .unwrap();
    let out = ok(&cram(&["sweep", "run", arg(&p), "--retry-failed"]));
    assert!(
        out.contains("1 points run") && !out.contains("failed"),
        "{out}"
    );
    ok(&cram(&["sweep", "merge", arg(&p)]));
    let jsonl = std::fs::read_to_string(p.join("results.jsonl")).unwrap();
    assert_eq!(jsonl.matches("\"status\":\"ok\"").count(), 2, "{jsonl}");
}

/// `cramulator` with these arguments started in the background; SIGINT after `after`; its
/// exit status and how long it took to stop.
fn interrupt_after(args: &[&str], after: std::time::Duration) -> (Option<i32>, f64, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let t = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Items 5 and 10: a kernel over 2^40 lanes no longer allocates by the lane count (it ran
/// into a 36 GB allocation and aborted) — its memory is one block per thread, checked
/// against --max-memory — and the first Ctrl-C stops it at the next block.
#[test]
fn huge_kernels_run_in_flat_memory_and_stop_on_the_first_ctrl_c() {
    let (code, secs, err) = interrupt_after(
        &[
            "kernel",
            "add",
            "--bits",
            "8",
            "--lanes",
            "1099511627776",
            "--threads",
            "2",
        ],
        std::time::Duration::from_millis(700),
    );
    assert_eq!(code, Some(130), "{err}");
    assert!(secs < 5.0, "took {secs} s to stop: {err}");
    assert!(
        err.contains("interrupted") && !err.contains("panicked"),
        "{err}"
    );
    // The estimate names its parts and the limit.
    assert_usage_error(
        &cram(&[
            "--max-memory",
            "64K",
            "kernel",
            "add",
            "--bits",
            "8",
            "--lanes",
            "1048576",
            "--lanes-per-subarray",
            "1048576",
        ]),
        &[
            "kernel add on 1048576 lanes",
            "simulated cells",
            "--max-memory 64.0 KiB (as given)",
        ],
    );
}

/// Item 6: a heatmap of a sweep whose points all failed is refused at once (it looped).
#[test]
fn a_heatmap_without_values_is_refused() {
    let d = scratch("heat");
    // Model files that do not exist: every point fails when it runs.
    let text = format!(
        "[sweep]\nname = \"h\"\nset = [\"run.mode=analytical\"]\n\
         [[axis]]\nkey = \"workload.model\"\nvalues = [\"{}\", \"{}\"]\n\
         [[axis]]\nkey = \"run.images\"\nvalues = [1, 2]\n",
        arg(&d.join("a.toml")),
        arg(&d.join("b.toml"))
    );
    let p = plan(&d, &text, "h");
    ok(&cram(&["sweep", "run", arg(&p)]));
    ok(&cram(&["sweep", "merge", arg(&p)]));
    for metric in ["cram_energy_pj", "status"] {
        let o = cram(&[
            "plot",
            "heatmap",
            arg(&p),
            "--metric",
            metric,
            "--out",
            arg(&d.join("h.svg")),
        ]);
        assert_usage_error(&o, &["no point has a numeric value", metric]);
    }
}

/// Item 9: `--threads` means the same in every command (0 = one per core), with one bound.
#[test]
fn threads_mean_the_same_everywhere() {
    let d = scratch("threads");
    let small = "[sweep]\nname = \"t\"\nset = [\"run.mode=analytical\", \"run.images=1\"]\n\
                 [[axis]]\nkey = \"mapping.objective\"\nvalues = [\"energy\", \"latency\"]\n";
    let p = plan(&d, small, "t");
    let out = d.join("results");
    for cmd in [
        vec!["kernel", "add", "--bits", "8"],
        vec!["run", "--set", "run.images=1", "--out", arg(&out)],
        vec!["simulate", "digits-mlp-int4", "--images", "1"],
        vec!["sweep", "run", arg(&p)],
    ] {
        assert_usage_error(
            &cram(&[&cmd[..], &["--threads", "10000"]].concat()),
            &["--threads 10000", "0 = one per core"],
        );
        ok(&cram(&[&cmd[..], &["--threads", "0"]].concat()));
    }
}

/// Item 13: Slurm scripts use absolute paths, refuse flags that would inject lines, take
/// --mem and --account, and refuse more shards than points.
#[test]
fn sbatch_scripts_are_safe_and_absolute() {
    let d = scratch("sbatch");
    let small = "[sweep]\nname = \"s\"\nset = [\"run.mode=analytical\"]\n[[axis]]\n\
                 key = \"run.seed\"\nvalues = [1, 2, 3, 4, 5, 6]\n";
    plan(&d, small, "s");
    let sbatch = |more: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cramulator"))
            .args([&["sweep", "sbatch", "s"][..], more].concat())
            .current_dir(&d)
            .output()
            .unwrap()
    };
    let text = ok(&sbatch(&["--mem", "4G", "--account", "proj-1"]));
    assert!(text.contains("#SBATCH --mem=4G") && text.contains("#SBATCH --account=proj-1"));
    let abs = std::fs::canonicalize(d.join("s")).unwrap();
    let script = std::fs::read_to_string(d.join("s/slurm/array.sbatch")).unwrap();
    assert!(
        script.contains(&format!("sweep run {}", abs.display())),
        "{script}"
    );
    assert!(script.contains(&format!("--output={}", abs.join("slurm/logs").display())));
    for (flag, value) in [
        ("--partition", "gpu\n#SBATCH --exclusive"),
        ("--time", "00:30:00\n#SBATCH --qos=high"),
        ("--time", "forever"),
        ("--account", "a b"),
        ("--mem", "lots"),
        ("--cpus", "2048"),
        ("--max-running", "0"),
    ] {
        assert_usage_error(&sbatch(&[flag, value]), &[flag]);
    }
    // A path a directive cannot hold.
    let spaced = plan(&d, small, "with space");
    assert_usage_error(
        &cram(&["sweep", "sbatch", arg(&spaced)]),
        &["with space", "spaces"],
    );
    assert_usage_error(&sbatch(&["--shards", "64"]), &["--shards 64", "6 point(s)"]);
}

/// Item 14: the run table prints small EDPs, bare numbers and MAC counts as numbers, and
/// names the keys a config overrode.
#[test]
fn the_run_table_prints_what_it_means() {
    let d = scratch("table");
    let out = ok(&cram(&[
        "run",
        "--set",
        "workload.model=lenet5",
        "--set",
        "cram.device_params.tmr=4.0",
        "--set",
        "mapping.max_gate_error=1e-5",
        "--set",
        "run.mode=analytical",
        "--out",
        arg(&d),
    ]));
    let head = out.lines().next().unwrap();
    assert!(head.contains("stt-projected [tmr = 4.0]"), "{head}");
    assert!(!out.contains("  MACs") && !out.contains("0.00 fJ"), "{out}");
    assert!(!out.contains(" m ") && !out.contains("0.00 "), "{out}");
}

/// `cramulator` under an address-space limit of `kib` KiB (`ulimit -v`).
fn cram_limited(kib: u64, args: &[&str]) -> std::process::Output {
    let mut line = format!(
        "ulimit -v {kib}; exec '{}'",
        env!("CARGO_BIN_EXE_cramulator")
    );
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    std::process::Command::new("sh")
        .args(["-c", &line])
        .output()
        .unwrap()
}

/// Item 8: memory does not grow with the image count. Analytical runs price equal lane
/// blocks once (65,536 ResNet-20 images ran in 5.5 GB; now within a 1 GiB address space);
/// functional runs go in waves, and the guard checks one wave's estimate (the unit test
/// `waves_report_what_one_run_of_every_image_does` shows waves give one run's numbers).
#[test]
fn memory_stays_flat_in_the_image_count() {
    let d = scratch("flat");
    for n in ["1", "65536"] {
        let o = cram_limited(
            1 << 20,
            &[
                "run",
                "--set",
                "workload.model=resnet20",
                "--mode",
                "analytical",
                "--set",
                &format!("run.images={n}"),
                "--set",
                "compare.baselines=nmp",
                "--json",
                "--out",
                arg(&d),
            ],
        );
        let v = json(&o);
        assert_eq!(v["cram"]["images"], n.parse::<u64>().unwrap());
    }
    // A functional run of many images is checked one wave at a time: the estimate names
    // the wave, not all 65,536 images at once.
    let o = cram(&[
        "--max-memory",
        "20M",
        "simulate",
        "resnet20",
        "--images",
        "65536",
    ]);
    assert_usage_error(
        &o,
        &[
            "resnet20 on 65536 image(s),",
            "at a time",
            "--max-memory 20.0 MiB",
        ],
    );
    // The network itself is checked before it is compiled, in every mode.
    let o = cram(&[
        "--max-memory",
        "64M",
        "run",
        "--set",
        "workload.model=resnet50",
        "--mode",
        "analytical",
        "--out",
        arg(&d),
    ]);
    assert_usage_error(
        &o,
        &["network 'resnet50'", "parameters", "--max-memory 64.0 MiB"],
    );
}

/// Runs `cramulator` with `args`, killing it after `secs` seconds (None: it hung).
fn cram_within(args: &[&str], secs: u64) -> Option<std::process::Output> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed().as_secs() >= secs {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// Every numeric flag of every command at the numeric extremes: it runs (exit 0) or is
/// refused (exit 2) naming the flag — never a panic, a hang or another exit code.
#[test]
fn every_numeric_flag_at_extremes() {
    let d = scratch("flags");
    let small = "[sweep]\nname = \"f\"\nset = [\"run.mode=analytical\", \"run.images=1\"]\n\
                 [[axis]]\nkey = \"run.seed\"\nvalues = [1, 2]\n";
    let p = plan(&d, small, "f");
    let out = d.join("results");
    let kernel = ["kernel", "add", "--bits", "8", "--lanes", "256"];
    let simulate = ["simulate", "digits-mlp-int4", "--images", "2"];
    let zoo = ["simulate", "lenet5", "--mode", "analytical"];
    let run = ["run", "--set", "run.images=1", "--out", arg(&out)];
    let sweep = ["sweep", "run", arg(&p)];
    let sbatch = ["sweep", "sbatch", arg(&p)];
    let map = ["map"];
    let cases: Vec<(&[&str], &str)> = vec![
        (&kernel, "--bits"),
        (&kernel, "--bits-b"),
        (&kernel, "--constant"),
        (&kernel, "--lanes-per-subarray"),
        (&kernel, "--subarrays"),
        (&kernel, "--seed"),
        (&kernel, "--threads"),
        (&kernel, "--error-rate"),
        (&kernel, "--endurance-budget"),
        (&simulate, "--images"),
        (&simulate, "--error-rates"),
        (&simulate, "--seed"),
        (&simulate, "--threads"),
        (&zoo, "--weight-bits"),
        (&zoo, "--act-bits"),
        (&zoo, "--sparsity"),
        (&run, "--threads"),
        (&run, "--max-memory"),
        (&sweep, "--threads"),
        (&sweep, "--shard"),
        (&sbatch, "--shards"),
        (&sbatch, "--cpus"),
        (&sbatch, "--max-running"),
        (&map, "--layer"),
    ];
    let values = [
        "0",
        "-1",
        "1",
        "4294967296",
        "18446744073709551616",
        "1e308",
        "nan",
        "inf",
        "",
        "x",
    ];
    let mut failures = Vec::new();
    for (base, flag) in &cases {
        for v in values {
            let mut args = base.to_vec();
            args.extend([flag, v]);
            let shown = args.join(" ");
            let Some(o) = cram_within(&args, 120) else {
                failures.push(format!("{shown}: no answer within 120 s"));
                continue;
            };
            let e = stderr(&o);
            match o.status.code() {
                Some(0) => {
                    if stdout(&o).contains("NaN") {
                        failures.push(format!("{shown}: NaN in the output"));
                    }
                }
                Some(2) if e.contains(flag.trim_start_matches('-')) && !e.contains("panicked") => {}
                code => failures.push(format!("{shown}: exit {code:?}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Signals during every long command: the first Ctrl-C stops it within seconds with exit
/// 130 and nothing half-written (`run`, `sweep run` and `kernel` have their own tests).
#[test]
fn the_first_ctrl_c_stops_every_long_command() {
    let d = scratch("signals");
    let big = d.join("big.toml");
    std::fs::write(
        &big,
        "[sweep]\nname = \"big\"\n[[axis]]\nkey = \"run.seed\"\n\
         range = { start = 1, stop = 1000000, step = 1 }\n[[axis]]\n\
         key = \"mapping.objective\"\nvalues = [\"energy\", \"latency\", \"edp\"]\n",
    )
    .unwrap();
    let trained = d.join("trained");
    let plan = d.join("plan");
    let cases: Vec<(Vec<&str>, Option<&std::path::Path>)> = vec![
        (vec!["validate"], None),
        (vec!["train-digits", "--out", arg(&trained)], Some(&trained)),
        (
            vec!["sweep", "plan", arg(&big), "--out", arg(&plan)],
            Some(&plan),
        ),
        (vec!["simulate", "resnet20", "--images", "4"], None),
    ];
    for (args, out) in cases {
        let (code, secs, err) = interrupt_after(&args, std::time::Duration::from_millis(800));
        assert_eq!(code, Some(130), "{args:?}: {err}");
        assert!(secs < 5.0, "{args:?}: {secs} s to stop");
        assert!(err.contains("nothing was written"), "{args:?}: {err}");
        if let Some(out) = out {
            let left: Vec<_> = std::fs::read_dir(out)
                .map(|rd| rd.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{args:?} left {left:?}");
        }
    }
}

/// Two processes on every file the tool writes, at once: each ends with exit 0 (or, for a
/// sweep shard, one is told who holds it) and what is left is whole and the same as one
/// process alone writes.
#[test]
fn two_processes_on_every_file_the_tool_writes() {
    let d = scratch("two");
    let small = "[sweep]\nname = \"t\"\nset = [\"run.mode=analytical\", \"run.images=2\"]\n\
                 [[axis]]\nkey = \"mapping.objective\"\nvalues = [\"energy\", \"latency\"]\n";
    let sweep = d.join("t.toml");
    std::fs::write(&sweep, small).unwrap();
    let p = d.join("plan");
    let out = d.join("results");
    let svg = d.join("line.svg");
    let both = |args: &[&str]| {
        let spawn = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_cramulator"))
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()]
    };
    for r in both(&["sweep", "plan", arg(&sweep), "--out", arg(&p)]) {
        assert!(r.status.success(), "{}", stderr(&r));
    }
    let shard = both(&["sweep", "run", arg(&p)]);
    assert!(shard.iter().any(|r| r.status.success()));
    for r in &shard {
        assert!(
            r.status.success() || stderr(r).contains("held by"),
            "{}",
            stderr(r)
        );
    }
    let models = d.join("models");
    for args in [
        vec!["sweep", "merge", arg(&p)],
        vec!["plot", "line", arg(&p), "--out", arg(&svg)],
        vec!["run", "--set", "run.images=2", "--out", arg(&out)],
        vec!["schema", "--write", arg(&d.join("schema"))],
        vec!["train-digits", "--out", arg(&models)],
    ] {
        for r in both(&args) {
            assert!(r.status.success(), "{args:?}: {}", stderr(&r));
        }
    }
    let runs = folders(&out);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let lines = std::fs::read_to_string(p.join("results.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
    // Nothing temporary is left beside the outputs.
    // Both trainings wrote the same bytes the shipped models hold.
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads/models");
    for f in ["digits-mlp-int4.toml", "digits-mlp-int4.safetensors"] {
        assert!(std::fs::read(models.join(f)).unwrap() == std::fs::read(shipped.join(f)).unwrap());
    }
    for dir in [&d, &p, &out, &d.join("schema"), &models] {
        for f in folders(dir) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.contains(".tmp-") && !name.contains(".old-"),
                "{}",
                f.display()
            );
        }
    }
}

/// Asking for more held-out digits than there are is refused, not quietly cut to 360, and
/// so is a baseline listed twice.
#[test]
fn more_digits_than_held_out_are_refused() {
    let d = scratch("digits");
    assert_usage_error(
        &cram(&["run", "--set", "run.images=361", "--out", arg(&d)]),
        &["run.images", "360"],
    );
    assert_usage_error(
        &cram(&["simulate", "digits-mlp-int4", "--images", "1000"]),
        &["--images 1000", "360"],
    );
    ok(&cram(&[
        "run",
        "--set",
        "run.images=360",
        "--mode",
        "analytical",
        "--out",
        arg(&d),
    ]));
}

/// A sweep's base overrides of the device stay in force on every point, also when an axis
/// replaces the device (freezing the base must not fold them into the base's device).
#[test]
fn base_overrides_survive_an_axis_over_the_device() {
    let d = scratch("overrides");
    let text = "[sweep]\nname = \"o\"\nset = [\"run.mode=analytical\", \"run.images=2\", \
                \"cram.device_params.tmr=2.0\", \"mapping.max_gate_error=1\"]\n[[axis]]\n\
                key = \"cram.device\"\n\
                values = [\"stt-projected\", \"stt-today\"]\n";
    let p = plan(&d, text, "o");
    ok(&cram(&["sweep", "run", arg(&p)]));
    ok(&cram(&["sweep", "merge", arg(&p)]));
    let jsonl = std::fs::read_to_string(p.join("results.jsonl")).unwrap();
    for (line, device) in jsonl.lines().zip(["stt-projected", "stt-today"]) {
        let rec: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            rec["report"]["cram"]["device"],
            format!("{device} [tmr = 2.0]")
        );
        let sets = [
            format!("cram.device={device}"),
            "cram.device_params.tmr=2.0".to_owned(),
            "mapping.max_gate_error=1".to_owned(),
        ];
        let alone = point_alone(&rec, &sets, &d.join("r"));
        assert_eq!(
            rec["report"]["cram"]["metrics"]["energy_pj"], alone["cram"]["metrics"]["energy_pj"],
            "{device}"
        );
    }
}

/// A shard line that is not UTF-8 is named, and the line after it is kept.
#[test]
fn a_binary_line_in_a_shard_loses_nothing_else() {
    let d = scratch("binary-line");
    let small = "[sweep]\nname = \"b\"\nset = [\"run.mode=analytical\", \"run.images=2\"]\n\
                 [[axis]]\nkey = \"mapping.objective\"\nvalues = [\"energy\", \"latency\", \
                 \"edp\"]\n";
    let p = plan(&d, small, "b");
    ok(&cram(&["sweep", "run", arg(&p)]));
    let done = p.join("shards/shard-0000-of-0001.jsonl");
    let mut lines: Vec<Vec<u8>> = std::fs::read(&done)
        .unwrap()
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    lines[2] = vec![0xff, 0xfe, b'x'];
    std::fs::write(&done, lines.join(&b'\n')).unwrap();
    let o = cram(&["sweep", "merge", arg(&p)]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains("shard-0000-of-0001.jsonl:3") && e.contains("UTF-8"),
        "{e}"
    );
    assert!(e.contains("1 of 3 points missing"), "{e}");
}
