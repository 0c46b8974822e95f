"""Tests of the Python binding against the command line: the same configuration gives the
same bytes, bad input raises with the command's message, Ctrl-C interrupts, and the GIL is
free while a run works.

The command line is ``target/release/cramulator`` of this checkout (``cargo build
--release``), or the binary ``CRAMULATOR_CLI`` names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import cramulator

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("CRAMULATOR_CLI", str(ROOT / "target" / "release" / "cramulator"))


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The command line's run of ``args``, its output captured."""
    if not Path(CLI).is_file():
        pytest.fail(f"no command line at {CLI}: run `cargo build --release` or set CRAMULATOR_CLI")
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True)


def cli_run(tmp_path: Path, *args: str) -> Path:
    """The folder ``cramulator run ARGS --out TMP`` writes."""
    out = tmp_path / "cli"
    p = cli("run", *args, "--out", str(out))
    assert p.returncode == 0, p.stderr
    (folder,) = out.iterdir()
    return folder


@pytest.mark.parametrize(
    "kwargs, flags",
    [
        ({}, []),
        (
            {"set": {"workload.model": "resnet20", "compare.baselines": ["gpu-hbm2", "nmp"]},
             "mode": "analytical"},
            ["--set", "workload.model=resnet20", "--set", "compare.baselines=gpu-hbm2,nmp",
             "--mode", "analytical"],
        ),
        ({"config": ROOT / "configs" / "resnet20-w4-sparse.toml"},
         [str(ROOT / "configs" / "resnet20-w4-sparse.toml")]),
    ],
    ids=["default", "sets-and-mode", "config-file"],
)
def test_a_run_gives_the_command_lines_bytes(tmp_path, kwargs, flags):
    """Every file of the results folder equals the command's, byte for byte; the frames
    and dicts are those files read."""
    r = cramulator.run(**kwargs)
    folder = cli_run(tmp_path, *flags)
    assert folder.name == r.run_id
    for name in cramulator.RUN_FILES:
        assert r.files[name] == (folder / name).read_bytes(), name
    assert r.report == json.loads((folder / "report.json").read_bytes())
    pd.testing.assert_frame_equal(r.layers, pd.read_csv(folder / "layers.csv", keep_default_na=False, na_values=[""]))
    assert list(r.layers.columns) == (folder / "layers.csv").read_text().splitlines()[0].split(",")
    assert r.ok
    # The summary is the report's headline, by machine.
    s = r.summary
    assert s["run_id"] == r.run_id
    assert s["cram"]["energy_pj"] == r.report["cram"]["metrics"]["energy_pj"]
    for b in r.report["baselines"]:
        assert s[b["name"]]["latency_s"] == b["metrics"]["latency_s"]
        assert s[b["name"]]["versus_cram"]["energy"] == b["versus_cram"]["energy"]


def test_save_writes_the_command_lines_folder_and_load_reads_it_back(tmp_path):
    r = cramulator.run(mode="analytical")
    path = Path(r.save(tmp_path / "py"))
    assert path == tmp_path / "py" / r.run_id
    folder = cli_run(tmp_path, "--mode", "analytical")
    for name in cramulator.RUN_FILES:
        assert (path / name).read_bytes() == (folder / name).read_bytes(), name
    back = cramulator.load(path)
    assert isinstance(back, cramulator.Run)
    assert back.files == r.files and back.ok
    pd.testing.assert_frame_equal(back.layers, r.layers)
    # Saving again replaces the folder whole, as a second `cramulator run` does.
    (path / "stray.txt").write_text("left by hand")
    assert Path(r.save(tmp_path / "py")) == path
    assert sorted(p.name for p in path.iterdir()) == sorted(cramulator.RUN_FILES)


def test_gates_and_kernel_equal_the_command_lines_json():
    t = cramulator.gates("stt-today")
    p = cli("gates", "--device", "stt-today", "--json")
    want = json.loads(p.stdout)
    assert list(t["kind"]) == [g["kind"] for g in want["gates"]]
    assert list(t["e_preset_pj"]) == [g["e_preset_pj"] for g in want["gates"]]
    assert list(t["ir_max_rows"]) == [r["max_rows"] for r in want["ir_max_rows"]]
    assert t.attrs["array"] == want["array"]
    k = cramulator.kernel("mul", 8, lanes=1024, seed=3)
    p = cli("kernel", "mul", "--bits", "8", "--lanes", "1024", "--seed", "3", "--json")
    want = json.loads(p.stdout)
    timing = {"threads", "simd", "exec_cpu_s", "wall_s", "lane_gate_evals_per_s_wall",
              "lane_gate_evals_per_s_exec_thread"}
    for key in want.keys() - timing:
        assert k[key] == want[key], key
    assert k["mismatched_lanes"] == 0 and k["lanes_checked"] == 1024
    k = cramulator.kernel("add", 16, error_rate=0.01, lanes=512)
    assert k["injected_flips"] > 0


SWEEP = """
[sweep]
name = "py-digits"
seed = 1
set = ["workload.model=digits-mlp", "run.mode=analytical"]

[[axis]]
key = "workload.weight_bits"
values = [2, 4, 8]

[[axis]]
key = "workload.sparsity"
values = [0.0, 0.5]
"""


def test_a_sweep_equals_the_command_lines_merge(tmp_path):
    f = tmp_path / "sweep.toml"
    f.write_text(SWEEP)
    df = cramulator.sweep(f)
    out = tmp_path / "planned"
    for args in (["plan", str(f), "--out", str(out)], ["run", str(out)], ["merge", str(out)]):
        p = cli("sweep", *args)
        assert p.returncode == 0, p.stderr
    merged = cramulator.load(out)
    pd.testing.assert_frame_equal(df, merged)
    assert df.attrs["summary"] == json.loads((out / "summary.json").read_text())
    assert len(df) == 6 and (df["status"] == "ok").all()
    # One shard: every second point from the first.
    half = cramulator.sweep(f, shard="0/2")
    assert list(half["id"]) == [0, 2, 4]
    pd.testing.assert_frame_equal(half.reset_index(drop=True), df.iloc[[0, 2, 4]].reset_index(drop=True),
                                  check_dtype=False)


@pytest.mark.parametrize(
    "call, flags, names",
    [
        (lambda: cramulator.run(set={"workload.modle": "lenet5"}), ["run", "--set", "workload.modle=lenet5"],
         ["workload.modle"]),
        (lambda: cramulator.run(set={"workload.model": "nonet"}), ["run", "--set", "workload.model=nonet"],
         ["nonet"]),
        (lambda: cramulator.run(mode="fast"), ["run", "--set", "run.mode=fast"], ["run.mode", "fast"]),
        (lambda: cramulator.run(config="/nonexistent/run.toml"), ["run", "/nonexistent/run.toml"],
         ["/nonexistent/run.toml"]),
        (lambda: cramulator.run(set={"cram.chips": 0}), ["run", "--set", "cram.chips=0"], ["cram.chips"]),
        (lambda: cramulator.gates("no-such-device"), ["gates", "--device", "no-such-device"],
         ["no-such-device"]),
        (lambda: cramulator.kernel("add", 0), ["kernel", "add", "--bits", "0"], ["0"]),
        (lambda: cramulator.kernel("nope", 8), ["kernel", "nope", "--bits", "8"], ["nope"]),
        (lambda: cramulator.sweep("/nonexistent/sweep.toml"), ["sweep", "plan", "/nonexistent/sweep.toml"],
         ["/nonexistent/sweep.toml"]),
    ],
    ids=["unknown-key", "unknown-model", "bad-mode", "missing-file", "zero-chips", "bad-device",
         "zero-bits", "bad-kernel", "missing-sweep"],
)
def test_bad_input_raises_the_command_lines_message(call, flags, names):
    with pytest.raises(cramulator.UsageError) as e:
        call()
    message = str(e.value)
    for n in names:
        assert n in message, message
    p = cli(*flags)
    assert p.returncode == 2
    # The command prints the same message (clap's own errors aside: a bad kernel name).
    if flags[0] != "kernel" or "nope" not in flags:
        assert f"error: {message}" in p.stderr, (message, p.stderr)


def test_other_bad_input_raises():
    with pytest.raises(cramulator.UsageError, match="shard"):
        cramulator.sweep(ROOT / "configs" / "sweeps" / "digits-bits-sparsity.toml", shard="3/2")
    with pytest.raises(cramulator.UsageError, match="error_rate"):
        cramulator.kernel("add", 8, error_rate=2)
    with pytest.raises(cramulator.UsageError, match="gate_set"):
        cramulator.kernel("add", 8, gate_set="xor")
    with pytest.raises(cramulator.UsageError, match="max_memory"):
        cramulator.run(max_memory="lots")
    with pytest.raises(cramulator.UsageError, match="neither a run folder"):
        cramulator.load(ROOT)
    with pytest.raises(cramulator.UsageError, match="no such folder"):
        cramulator.load(ROOT / "no-such-results")
    with pytest.raises(TypeError):
        cramulator.kernel("add", "eight")
    # A memory limit far below the work is a MemoryLimitError, not a crash.
    with pytest.raises(cramulator.MemoryLimitError):
        cramulator.run(set={"workload.model": "resnet18", "run.mode": "functional"}, max_memory="1M")


def test_save_writes_nothing_outside_its_folder(tmp_path):
    """A run id that is not one plain name (a tampered report.json) is refused, and nothing
    beside the output folder is touched."""
    r = cramulator.run(mode="analytical")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    for bad in ("../victim", "..", "a/b"):
        r.run_id = bad
        with pytest.raises(cramulator.OutputError, match="not a plain"):
            r.save(tmp_path / "out")
    assert (victim / "keep.txt").read_text() == "mine"


def test_a_loaded_fault_injection_run_is_ok_as_the_command_says(tmp_path):
    r = cramulator.run(set={"run.inject_gate_errors": True, "run.images": 20})
    back = cramulator.load(r.save(tmp_path))
    assert back.report["cram"]["reliability"]["injected"]
    assert back.ok == r.ok


def test_a_record_of_another_schema_is_refused(tmp_path):
    r = cramulator.run(mode="analytical")
    path = Path(r.save(tmp_path))
    report = json.loads((path / "report.json").read_text())
    report["schema_version"] = cramulator.SCHEMA_VERSION - 1
    (path / "report.json").write_text(json.dumps(report))
    with pytest.raises(cramulator.UsageError, match="schema_version"):
        cramulator.load(path)
    # Refused before anything else is read: a record of another shape is no KeyError.
    (path / "report.json").write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(cramulator.UsageError, match="schema_version"):
        cramulator.load(path)


LONG = {"workload.model": "resnet20", "run.mode": "functional", "run.images": 64}


def test_ctrl_c_stops_a_run_with_keyboard_interrupt():
    """SIGINT during a long functional run raises KeyboardInterrupt within seconds, and the
    interpreter goes on (the next call works)."""
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cramulator.run(set=LONG)
    elapsed = time.monotonic() - t0
    timer.join()
    # Uninterrupted, these 64 images take over a minute on the 2-core machine; stopped,
    # the run ends at the layer it is in.
    assert elapsed < 15, elapsed
    assert cramulator.run(mode="analytical").ok


def test_the_gil_is_released_while_a_run_works():
    """Another Python thread keeps running while the native code works."""
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    t0 = time.monotonic()
    cramulator.run(set={"workload.model": "resnet20", "run.mode": "functional", "run.images": 2})
    elapsed = time.monotonic() - t0
    stop.set()
    t.join()
    during = [x for x in ticks if t0 <= x <= t0 + elapsed]
    # About one tick per 10 ms: at least a third of them while the run held no GIL.
    assert len(during) >= elapsed / 0.01 / 3, (len(during), elapsed)


def test_the_package_is_typed_and_documented():
    pkg = Path(cramulator.__file__).parent
    assert (pkg / "py.typed").is_file() and (pkg / "_cramulator.pyi").is_file()
    for f in (cramulator.run, cramulator.gates, cramulator.kernel, cramulator.load, cramulator.sweep,
              cramulator.Run):
        assert f.__doc__ and len(f.__doc__) > 80, f
    # The binding is the command line's build.
    assert cli("--version").stdout.split() == ["cramulator", cramulator.__version__]
    r = cramulator.run(mode="analytical")
    assert r.report["schema_version"] == cramulator.SCHEMA_VERSION
