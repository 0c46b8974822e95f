//! Sweeps and plots through the binary: determinism across shards and threads, recovery
//! from `kill -9`, merge's completeness check, sbatch scripts, and every plot kind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cram<P: AsRef<std::ffi::OsStr>>(args: &[P]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn ok(o: Output) -> String {
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "stdout: {out}\nstderr: {err}");
    out
}

/// A fresh folder under the target's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("sweeps")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A sweep file in `dir`.
fn sweep_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("sweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Six analytical points of the default workload: two devices × three array sizes (zipped
/// rows and columns), with the per-point seed visible in the records.
const SMALL: &str = r#"
[sweep]
name = "small"
seed = 5
set = ["run.mode=analytical", "run.images=2", "mapping.max_gate_error=1"]

[[axis]]
key = "cram.device"
values = ["stt-projected", "she-projected"]

[[axis]]
key = "cram.array_params.lanes_per_subarray"
values = [256, 512, 1024]
group = "size"

[[axis]]
key = "cram.array_params.cols_per_subarray"
values = [256, 512, 1024]
group = "size"
"#;

fn plan(dir: &Path, text: &str, out: &str) -> PathBuf {
    let f = sweep_file(dir, text);
    let out = dir.join(out);
    ok(cram(&[
        "sweep".as_ref(),
        "plan".as_ref(),
        f.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]));
    out
}

fn run_shard(dir: &Path, shard: &str, threads: &str) -> String {
    ok(cram(&[
        "sweep".as_ref(),
        "run".as_ref(),
        dir.as_os_str(),
        "--shard".as_ref(),
        shard.as_ref(),
        "--threads".as_ref(),
        threads.as_ref(),
    ]))
}

fn merge(dir: &Path) -> Output {
    cram(&["sweep".as_ref(), "merge".as_ref(), dir.as_os_str()])
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn merged_results_do_not_depend_on_shards_or_threads() {
    let d = scratch("determinism");
    let mut outputs = Vec::new();
    for (name, shards, threads) in [("a", 1, "1"), ("b", 3, "1"), ("c", 1, "2"), ("d", 3, "2")] {
        let p = plan(&d, SMALL, name);
        for i in 0..shards {
            run_shard(&p, &format!("{i}/{shards}"), threads);
        }
        ok(merge(&p));
        outputs.push((read(&p.join("results.csv")), read(&p.join("results.jsonl"))));
        // The plan itself is byte-identical too.
        assert_eq!(
            read(&p.join("plan.jsonl")),
            read(&d.join("a").join("plan.jsonl"))
        );
    }
    for o in &outputs[1..] {
        assert!(o.0 == outputs[0].0, "results.csv differs");
        assert!(o.1 == outputs[0].1, "results.jsonl differs");
    }
    let csv = String::from_utf8(outputs[0].0.clone()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7, "{csv}");
    assert!(lines[0].starts_with("id,seed,cram.device,cram.array_params.lanes_per_subarray,"));
    // Every point ran (status ok) with its own seed, and the array size reached the chip.
    let seeds: std::collections::BTreeSet<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(seeds.len(), 6);
    assert!(lines[1..].iter().all(|l| l.contains(",ok,")), "{csv}");
    let area = |l: &str| -> f64 {
        let h: Vec<&str> = lines[0].split(',').collect();
        let i = h.iter().position(|c| *c == "cram_area_mm2").unwrap();
        l.split(',').nth(i).unwrap().parse().unwrap()
    };
    assert!(area(lines[1]) < area(lines[2]) && area(lines[2]) < area(lines[3]));
}

/// Twelve functional points on all 360 digits: slow enough to be stopped mid-shard.
fn slow_sweep(name: &str, seed: u64) -> String {
    format!(
        r#"
[sweep]
name = "{name}"
seed = {seed}
set = ["workload.model=digits-mlp", "run.mode=functional"]

[[axis]]
key = "workload.weight_bits"
range = {{ start = 2, stop = 7, step = 1 }}

[[axis]]
key = "workload.sparsity"
values = [0.0, 0.5]
"#
    )
}

/// Starts `sweep run` on the single shard of plan `p` (one thread) and returns once its
/// `.part` file holds `lines` lines (the header and records), the shard still running.
fn start_shard_until(p: &Path, lines: usize, stderr: Stdio) -> std::process::Child {
    let part = p.join("shards").join("shard-0000-of-0001.jsonl.part");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cramulator"))
        .args(["sweep", "run"])
        .arg(p)
        .args(["--threads", "1"])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::fs::read_to_string(&part).map_or(0, |s| s.lines().count()) < lines {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "no records appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the shard ended before it could be stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn kill_9_then_rerun_loses_and_repeats_nothing() {
    let d = scratch("kill");
    let text = slow_sweep("kill", 3);
    let p = plan(&d, &text, "killed");
    let part = p.join("shards").join("shard-0000-of-0001.jsonl.part");
    let mut child = start_shard_until(&p, 3, Stdio::null());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // A kill can also land mid-line: leave a torn record behind.
    let before = std::fs::read_to_string(&part).unwrap();
    let done_before = before.lines().count() - 1;
    assert!(done_before < 12, "the shard finished before the kill");
    std::fs::write(&part, format!("{before}{{\"id\":11,\"seed\":12")).unwrap();
    let out = run_shard(&p, "0/1", "2");
    assert!(out.contains("already done"), "{out}");
    ok(merge(&p));
    let jsonl = String::from_utf8(read(&p.join("results.jsonl"))).unwrap();
    let ids: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, (0..12).collect::<Vec<_>>());
    // And the records equal an uninterrupted run's.
    let clean = plan(&d, &text, "clean");
    run_shard(&clean, "0/1", "2");
    ok(merge(&clean));
    assert!(read(&clean.join("results.csv")) == read(&p.join("results.csv")));
    let csv = String::from_utf8(read(&p.join("results.csv"))).unwrap();
    assert!(csv.lines().skip(1).all(|l| l.contains(",ok,")), "{csv}");
}

#[test]
fn merge_names_the_shards_to_resubmit() {
    let d = scratch("missing");
    let p = plan(&d, SMALL, "p");
    run_shard(&p, "0/3", "1");
    run_shard(&p, "2/3", "1");
    let o = merge(&p);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("2 of 6 points missing"), "{e}");
    assert!(e.contains("shards to re-run (of 3): 1"), "{e}");
    assert!(e.contains("--array=1"), "{e}");
    assert!(!p.join("results.csv").exists());
    // Shards of another N mixed in: points twice.
    run_shard(&p, "0/1", "1");
    let o = merge(&p);
    assert_eq!(o.status.code(), Some(3));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("recorded twice") && e.contains("different N (1, 3)"),
        "{e}"
    );
    // A finished shard is not run again.
    assert!(run_shard(&p, "0/3", "1").contains("already done"));
}

#[test]
fn bad_sweep_files_are_usage_errors() {
    let d = scratch("bad");
    let cases = [
        (
            SMALL.replace("cram.device\"", "cram.devise\""),
            "nearest valid keys: cram.device",
        ),
        (
            format!("{SMALL}\n[[axis]]\nkey = \"run.images\"\nvalues = [1, 2]\ngroup = \"size\"\n"),
            "equal lengths",
        ),
        (
            SMALL.replace("\"she-projected\"", "\"she-future\""),
            "she-future",
        ),
        (
            SMALL.replace(
                "values = [\"stt-projected\", \"she-projected\"]",
                "range = { start = 1, stop = 0, step = 1 }",
            ),
            "stop ≥ start",
        ),
        (
            SMALL.replace("seed = 5", "seed = 5\nsed = 1"),
            "unknown field `sed`",
        ),
    ];
    for (text, want) in cases {
        let f = sweep_file(&d, &text);
        let out = d.join("never");
        let o = cram(&[
            "sweep".as_ref(),
            "plan".as_ref(),
            f.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "want {want:?}: {e}");
        assert!(!out.exists());
        assert!(e.contains(want), "want {want:?} in: {e}");
        assert!(e.contains("sweep.toml"), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    let o = cram(&["sweep", "run", "/nonexistent-plan"]);
    assert_eq!(o.status.code(), Some(2));
    let p = plan(&d, SMALL, "p");
    for bad in ["3/3", "x", "1/0"] {
        let o = cram(&[
            "sweep".as_ref(),
            "run".as_ref(),
            p.as_os_str(),
            "--shard".as_ref(),
            bad.as_ref(),
        ]);
        assert_eq!(o.status.code(), Some(2), "--shard {bad}");
    }
}

#[test]
fn a_large_plan_is_written_in_full() {
    let d = scratch("large");
    // 100,000 points (10 × 100 × 100); the expansion time is measured in the README.
    let text = r#"
[sweep]
name = "large"
set = ["run.mode=analytical"]

[[axis]]
key = "workload.model"
values = ["digits-mlp-int4", "digits-mlp-int8", "digits-mlp-w4a4", "digits-mlp-binary", "digits-mlp-int4", "digits-mlp-int8", "digits-mlp-w4a4", "digits-mlp-binary", "digits-mlp-int4", "digits-mlp-int8"]
group = "m"

[[axis]]
key = "run.images"
values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
group = "m"

[[axis]]
key = "cram.device_params.tmr"
range = { start = 1.0, stop = 10.9, step = 0.1 }

[[axis]]
key = "compare.grid_gco2e_per_kwh"
log = { start = 10.0, stop = 1000.0, num = 100 }
"#;
    let p = plan(&d, text, "p");
    let plan = String::from_utf8(read(&p.join("plan.jsonl"))).unwrap();
    assert_eq!(plan.lines().count(), 100_000);
    let last: serde_json::Value = serde_json::from_str(plan.lines().last().unwrap()).unwrap();
    assert_eq!(last["id"], 99_999);
    assert_eq!(last["set"]["cram.device_params.tmr"], 10.9);
    assert_eq!(last["set"]["compare.grid_gco2e_per_kwh"], 1000.0);
}

#[test]
fn sbatch_prints_an_array_and_its_merge_job() {
    let d = scratch("sbatch");
    let p = plan(&d, SMALL, "p");
    let out = ok(cram(&[
        "sweep".as_ref(),
        "sbatch".as_ref(),
        p.as_os_str(),
        "--shards".as_ref(),
        "4".as_ref(),
        "--max-running".as_ref(),
        "2".as_ref(),
    ]));
    assert!(out.contains("#SBATCH --array=0-3%2"), "{out}");
    assert!(out.contains("--shard \"${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}\""));
    assert!(out.contains("--dependency=afterok:$JID"), "{out}");
    let merge = std::fs::read_to_string(p.join("slurm/merge.sbatch")).unwrap();
    assert!(merge.contains("sweep merge"), "{merge}");
    let submit = std::fs::read_to_string(p.join("slurm/submit.sh")).unwrap();
    assert!(submit.contains("--dependency=afterok:"), "{submit}");
}

/// The SMALL sweep planned in a fresh scratch folder `name`, run in one shard and merged:
/// (the scratch folder, the sweep folder).
fn merged_small(name: &str) -> (PathBuf, PathBuf) {
    let d = scratch(name);
    let p = plan(&d, SMALL, "p");
    run_shard(&p, "0/1", "2");
    ok(merge(&p));
    (d, p)
}

/// An analytical `run` with `extra` flags into `d/runs`: its folder and what it printed.
fn one_run(d: &Path, extra: &[&str]) -> (PathBuf, String) {
    let runs = d.join("runs");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "run".as_ref(),
        "--mode".as_ref(),
        "analytical".as_ref(),
        "--out".as_ref(),
        runs.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = ok(cram(&args));
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    (run, out)
}

#[test]
fn every_plot_kind_draws_and_writes_its_data() {
    let (d, p) = merged_small("plots");
    let (run, _) = one_run(&d, &[]);
    let cases: [(&str, &Path, &[&str]); 6] = [
        ("layers", &run, &[]),
        ("breakdown", &run, &[]),
        ("line", &p, &["--x", "cram.array_params.lanes_per_subarray"]),
        ("pareto", &p, &[]),
        ("heatmap", &p, &["--metric", "cram_latency_s"]),
        (
            "line",
            &p,
            &["--x", "cram.device", "--metric", "cram_edp_j_s"],
        ),
    ];
    for (i, (kind, input, extra)) in cases.iter().enumerate() {
        for ext in ["svg", "png"] {
            let out = d.join(format!("{i}-{kind}.{ext}"));
            let mut args: Vec<&std::ffi::OsStr> = vec![
                "plot".as_ref(),
                kind.as_ref(),
                input.as_os_str(),
                "--out".as_ref(),
                out.as_os_str(),
            ];
            args.extend(extra.iter().map(std::ffi::OsStr::new));
            ok(cram(&args));
            let bytes = read(&out);
            if ext == "png" {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
                assert!(bytes.len() > 10_000, "{kind}: a nearly empty PNG");
            } else {
                let svg = String::from_utf8(bytes).unwrap();
                assert!(svg.trim_end().ends_with("</svg>"), "{kind}");
                assert!(svg.contains("<text"), "{kind}: no labels");
            }
            let csv = String::from_utf8(read(&out.with_extension("csv"))).unwrap();
            assert!(csv.lines().count() >= 2, "{kind}: {csv}");
        }
    }
    // Bad input: a clear error, no panic, no file.
    let o = cram(&["plot".as_ref(), "heatmap".as_ref(), run.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sweep merge"));
    let o = cram(&[
        "plot".as_ref(),
        "line".as_ref(),
        p.as_os_str(),
        "--x".as_ref(),
        "nope".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("axes: cram.device"));
}

/// A whole HTML page that loads nothing: no script, no linked or imported resource.
fn self_contained_text(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..60]);
    assert!(html.trim_end().ends_with("</html>"));
    for banned in ["<script", " src=", " href=", "@import", "url("] {
        assert!(!html.contains(banned), "{banned}");
    }
}

/// `cramulator report` writes one self-contained page (no script, nothing fetched, every
/// section) of a run folder and of a merged sweep folder, `run --html` the run's beside its
/// records; the figures it and `plot` draw name a small network's layers, sum a large one's
/// by op kind and label the Pareto points; bad input is refused with a clear message.
#[test]
fn report_pages_hold_every_section_and_fetch_nothing() {
    let (d, p) = merged_small("report");
    let (run, out) = one_run(&d, &["--set", "workload.model=resnet20", "--html"]);
    assert!(out.contains("report: "), "{out}");
    let self_contained = |html: &str| {
        self_contained_text(html);
        assert!(html.contains("<svg"), "no figure");
    };
    let page = String::from_utf8(read(&run.join("report.html"))).unwrap();
    self_contained(&page);
    for section in [
        "Headline: CRAM against each baseline",
        "Where CRAM&#39;s energy goes",
        "Per layer",
        "Mapping",
        "Reliability: gate error rates",
        "Configuration and assumptions",
        "array preset &#39;cram-1k&#39;",
        "resolved.toml",
    ] {
        let section = section.replace("&#39;", "'");
        assert!(page.contains(&section), "{section}");
    }
    // 51 layers: summed by op kind below the per-layer markers; by component too.
    assert!(page.contains("op kind (its layers summed)"));
    assert!(page.contains("CRAM component"));
    // The page written by `report` is the one `run --html` wrote.
    let again = d.join("again.html");
    ok(cram(&[
        "report".as_ref(),
        run.as_os_str(),
        "--out".as_ref(),
        again.as_os_str(),
    ]));
    assert_eq!(read(&again), page.as_bytes());
    let sweep_page = d.join("sweep.html");
    ok(cram(&[
        "report".as_ref(),
        p.as_os_str(),
        "--out".as_ref(),
        sweep_page.as_os_str(),
    ]));
    let page = String::from_utf8(read(&sweep_page)).unwrap();
    self_contained(&page);
    for section in [
        "Axes",
        "Best points",
        "Energy against latency",
        "Along the axes",
        "Every point",
    ] {
        assert!(page.contains(section), "{section}");
    }
    // Labelled points on the Pareto figure.
    assert!(
        page.contains(">\n#0") || page.contains(">\n#1"),
        "no point label"
    );
    // A sweep whose every point failed still gets its page, saying why a figure is missing.
    let failing = plan(
        &d,
        r#"
[sweep]
name = "failing"
set = ["run.mode=analytical", "cram.gate_set=maj"]

[[axis]]
key = "run.seed"
values = [1, 2]
"#,
        "failing",
    );
    run_shard(&failing, "0/1", "1");
    let _ = merge(&failing);
    let failed_page = d.join("failed.html");
    ok(cram(&[
        "report".as_ref(),
        failing.as_os_str(),
        "--out".as_ref(),
        failed_page.as_os_str(),
    ]));
    let page = String::from_utf8(read(&failed_page)).unwrap();
    self_contained_text(&page);
    assert!(
        page.contains("Figure not drawn"),
        "no note of the missing figure"
    );
    assert!(page.contains("2 point(s), 0 ok, 2 failed"));
    // Bad input: a clear error, exit 2, no file.
    let o = cram(&["report".as_ref(), d.join("nowhere").as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such folder"));
    let o = cram(&["report".as_ref(), d.as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("neither a run folder"));
    let bad = d.join("report.txt");
    let o = cram(&[
        "report".as_ref(),
        run.as_os_str(),
        "--out".as_ref(),
        bad.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("must end in .html"));
    assert!(!bad.exists());
}

/// Sends SIGINT to a child process.
fn sigint(child: &std::process::Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT failed");
}

#[test]
fn sigint_stops_a_shard_cleanly_and_the_rerun_finishes_it() {
    let d = scratch("sigint");
    let text = slow_sweep("sigint", 5);
    let p = plan(&d, &text, "stopped");
    let part = p.join("shards").join("shard-0000-of-0001.jsonl.part");
    let child = start_shard_until(&p, 3, Stdio::piped());
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("kept in"),
        "{stderr}"
    );
    // Every line on disk is a whole record; the shard is not marked done.
    let kept = std::fs::read_to_string(&part).unwrap();
    assert!(kept.ends_with('\n'));
    let records = kept.lines().count() - 1;
    assert!((2..12).contains(&records), "{records} records");
    for l in kept.lines().skip(1) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["status"], "ok", "{l}");
    }
    assert!(!p.join("shards").join("shard-0000-of-0001.jsonl").exists());
    // The re-run runs only the rest, and the merge equals an uninterrupted run.
    let rerun = run_shard(&p, "0/1", "2");
    assert!(
        rerun.contains(&format!("{records} already done")),
        "{rerun}"
    );
    ok(merge(&p));
    let clean = plan(&d, &text, "clean");
    run_shard(&clean, "0/1", "2");
    ok(merge(&clean));
    assert!(read(&clean.join("results.csv")) == read(&p.join("results.csv")));
}
