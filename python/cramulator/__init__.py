"""cramulator from Python: the simulator's runs, gate tables, kernels and sweeps as dicts
and pandas DataFrames.

A thin layer over the Rust library the ``cramulator`` command calls: the same functions,
so the same numbers, byte for byte in the JSON. Nothing is written unless you ask
(``Run.save``).

>>> import cramulator
>>> r = cramulator.run(set={"run.mode": "analytical"})
>>> r.summary["cram"]["energy_pj"] > 0
True
>>> list(r.layers.columns[:4])
['machine', 'index', 'layer', 'op']

Calls release the GIL while they run, and Ctrl-C stops them at the next layer, block or
sweep point with ``KeyboardInterrupt``. Errors raise :class:`CramulatorError` (its
subclasses :class:`UsageError`, :class:`MemoryLimitError`, :class:`OutputError`) with the
message the command line prints.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Dict, Mapping, Optional, Union

import pandas as pd

from . import _cramulator as _native
from ._cramulator import CramulatorError, MemoryLimitError, OutputError, UsageError

__all__ = [
    "CramulatorError",
    "MemoryLimitError",
    "OutputError",
    "Run",
    "UsageError",
    "SCHEMA_VERSION",
    "gates",
    "kernel",
    "load",
    "run",
    "sweep",
]

__version__: str = _native.__version__
#: The schema version of every record this build writes (``report.json``'s
#: ``schema_version``); :func:`load` refuses records of another.
SCHEMA_VERSION: int = _native.schema_version()

PathLike = Union[str, "os.PathLike[str]"]

#: The files of a run folder, in the order ``cramulator run`` lists them.
RUN_FILES = ("resolved.toml", "manifest.json", "report.json", "layers.csv")


def _value(v: Any) -> str:
    """A ``--set`` value from a Python value: lists join with commas, booleans are
    lowercase, everything else is ``str``."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(_value(x) for x in v)
    return str(v)


def _csv(data: bytes) -> pd.DataFrame:
    """A DataFrame of CSV bytes: an empty cell or ``NaN`` is missing; other text such as
    ``NA`` or ``null`` (a layer's name) stays text."""
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=["", "NaN"])


class Run:
    """A run's results: what ``cramulator run`` writes to ``results/<run_id>/``.

    Attributes:
        run_id: ``<model>-<hash of the resolved configuration>``.
        ok: every image bit-exact (functional mode); the command line exits 1 otherwise.
        report: ``report.json`` as a dict.
        manifest: ``manifest.json`` as a dict.
        resolved: ``resolved.toml``, the configuration with every default written out.
        layers: ``layers.csv`` as a DataFrame, one row per layer and machine.
        summary: the headline metrics, by machine (see :attr:`summary`).
        files: the bytes of each file, by name.
    """

    def __init__(self, files: Mapping[str, bytes], ok: Optional[bool] = None) -> None:
        missing = [f for f in RUN_FILES if f not in files]
        if missing:
            raise UsageError(
                f"a run folder holds {', '.join(RUN_FILES)}; missing {', '.join(missing)}"
            )
        self.files: Dict[str, bytes] = {f: bytes(files[f]) for f in RUN_FILES}
        self.report: Dict[str, Any] = json.loads(self.files["report.json"])
        self.manifest: Dict[str, Any] = json.loads(self.files["manifest.json"])
        self.resolved: str = self.files["resolved.toml"].decode("utf-8")
        self.layers: pd.DataFrame = _csv(self.files["layers.csv"])
        self.run_id: str = self.report["run_id"]
        cram = self.report["cram"]
        exact = cram.get("bit_exact_images")
        # As the command decides: flips injected on purpose are the result, not a failure.
        injected = cram.get("reliability", {}).get("injected", False)
        self.ok: bool = (
            ok if ok is not None else injected or exact is None or exact == cram["images"]
        )

    @property
    def summary(self) -> Dict[str, Any]:
        """The headline metrics: the run's identity, then for ``cram`` and each baseline
        its ``metrics`` (energy in pJ per inference, latency in s, throughput per s,
        TOPS/W, EDP in J·s, area in mm², CO2e), and for each baseline ``versus_cram``
        (baseline ÷ CRAM for costs, CRAM ÷ baseline for throughput: above 1, CRAM is
        better)."""
        r = self.report
        cram = r["cram"]
        out: Dict[str, Any] = {
            "run_id": r["run_id"],
            "model": r["workload"]["model"],
            "mode": cram["mode"],
            "images": cram["images"],
            "bit_exact_images": cram.get("bit_exact_images"),
            "correct": cram.get("correct"),
            "cram": dict(cram["metrics"]),
        }
        for b in r["baselines"]:
            out[b["name"]] = dict(b["metrics"], versus_cram=dict(b["versus_cram"]))
        if r.get("generation") is not None:
            out["generation"] = r["generation"]
        return out

    def save(self, out: PathLike = "results") -> str:
        """Writes the results folder ``<out>/<run_id>/`` atomically, as ``cramulator run
        --out out`` does, and returns its path. A loaded run is written back as read."""
        return _native.save_folder(os.fspath(out), self.run_id, list(self.files.items()))

    def __repr__(self) -> str:
        m = self.report["cram"]["metrics"]
        return (
            f"<cramulator.Run {self.run_id}: {m['energy_pj']:.4g} pJ, "
            f"{m['latency_s']:.4g} s per inference on CRAM; "
            f"{len(self.report['baselines'])} baseline(s)>"
        )


def run(
    config: Optional[PathLike] = None,
    set: Optional[Mapping[str, Any]] = None,  # noqa: A002 - the CLI's name for it
    mode: Optional[str] = None,
    *,
    threads: Optional[int] = None,
    max_memory: Optional[str] = None,
) -> Run:
    """Runs a configuration, as ``cramulator run [config] --set KEY=VALUE … [--mode M]``.

    Args:
        config: a run configuration (TOML); None for the built-in default (the digits
            classifier on stt-projected CRAM against cpu-ddr4 and nmp).
        set: overrides, ``{"workload.model": "resnet20", "compare.baselines":
            ["gpu-hbm2", "nmp"]}``, applied in order after the file.
        mode: ``"functional"`` (every gate executed and checked) or ``"analytical"``
            (counted); overrides ``run.mode``.
        threads: worker threads (0 or None: one per core); results do not depend on it.
        max_memory: the most memory the run may hold, e.g. ``"4G"`` (default: half of
            physical memory).

    Returns:
        The :class:`Run`; nothing is written until :meth:`Run.save`.
    """
    sets = [f"{k}={_value(v)}" for k, v in (set or {}).items()]
    if mode is not None:
        sets.append(f"run.mode={mode}")
    files, ok = _native.run(
        None if config is None else os.fspath(config), sets, threads, max_memory
    )
    return Run(files, ok)


def gates(device: str = "stt-projected", array: str = "cram-1k") -> pd.DataFrame:
    """The gate table of ``device`` on ``array`` (``cramulator gates --json``): one row per
    gate with its derived physics (critical current in µA, resistances in Ω, voltage window
    in V, pulse and preset energy in pJ, latency in ns, error probability) and
    ``ir_max_rows``, the most rows one driven line may hold. ``attrs`` holds the rest of
    the table (device, array, wire resistance)."""
    t = json.loads(_native.gates(device, array))
    df = pd.DataFrame(t["gates"])
    df["ir_max_rows"] = [r["max_rows"] for r in t["ir_max_rows"]]
    df.attrs.update({k: v for k, v in t.items() if k not in ("gates", "ir_max_rows")})
    return df


def kernel(kind: str, bits: int, **options: Any) -> Dict[str, Any]:
    """One arithmetic kernel run bit by bit in every lane, as ``cramulator kernel KIND
    --bits BITS --json``: the report as a dict (counts, cycles, energy, lanes checked).

    Keyword options, as the command's flags: ``bits_b``, ``constant``, ``gate_set``
    (``"maj"``, ``"nand"``, ``"nand-not"``), ``device``, ``array``, ``lanes``,
    ``lanes_per_subarray``, ``subarrays``, ``seed``, ``error_rate`` (a probability or
    ``"derived"``), ``mode``, ``data_energy``, ``allow_ir_violation``,
    ``endurance_budget``, ``report``, ``threads``.
    """
    if "error_rate" in options:
        options["error_rate"] = _value(options["error_rate"])
    return json.loads(_native.kernel(kind, bits, **options))


def _sweep_frame(csv: bytes, summary: str, manifest: str) -> pd.DataFrame:
    df = _csv(csv)
    df.attrs["summary"] = json.loads(summary)
    df.attrs["manifest"] = json.loads(manifest)
    return df


def sweep(
    file: PathLike,
    shard: Optional[str] = None,
    *,
    threads: Optional[int] = None,
    max_memory: Optional[str] = None,
) -> pd.DataFrame:
    """Runs a sweep file's points and merges them, as ``cramulator sweep plan``, ``run``
    and ``merge`` do, in memory: a DataFrame of ``results.csv`` (one row per point, the
    axes then the metrics), with ``attrs["summary"]`` (``summary.json``) and
    ``attrs["manifest"]`` (the plan). ``shard="I/N"`` runs every N-th point from I only:
    the rows and the summary's ``ok``, ``failed``, ``best`` and ``ranges`` are that shard's,
    its ``points`` the whole plan's. Writes nothing."""
    csv, summary, manifest = _native.sweep(os.fspath(file), shard, threads, max_memory)
    return _sweep_frame(csv, summary, manifest)


def _check_schema(what: str, record: Mapping[str, Any]) -> None:
    v = record.get("schema_version")
    if v != SCHEMA_VERSION:
        raise UsageError(
            f"'{what}': schema_version {v}; this cramulator reads {SCHEMA_VERSION} "
            "(re-run it with this version)"
        )


def load(path: PathLike) -> Union[Run, pd.DataFrame]:
    """Reads a results folder: a run folder (``report.json``, ``layers.csv`` …) as a
    :class:`Run`, or a merged sweep folder (``results.csv``, ``summary.json``) as the
    DataFrame :func:`sweep` returns. Records of another schema version are refused."""
    p = os.fspath(path)
    has = lambda name: os.path.isfile(os.path.join(p, name))  # noqa: E731
    read = lambda name: open(os.path.join(p, name), "rb").read()  # noqa: E731
    if has("report.json"):
        files = {f: read(f) for f in RUN_FILES if has(f)}
        _check_schema(os.path.join(p, "report.json"), json.loads(files["report.json"]))
        return Run(files)
    if has("results.csv") and has("summary.json"):
        manifest = read("manifest.json").decode() if has("manifest.json") else "{}"
        df = _sweep_frame(read("results.csv"), read("summary.json").decode(), manifest)
        _check_schema(os.path.join(p, "manifest.json"), df.attrs["manifest"])
        return df
    if not os.path.isdir(p):
        raise UsageError(f"'{p}': no such folder")
    raise UsageError(
        f"'{p}': neither a run folder (report.json, layers.csv) nor a merged sweep folder "
        "(results.csv, summary.json; run `cramulator sweep merge` first)"
    )
