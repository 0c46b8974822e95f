//! `cramulator._cramulator`: the Python binding's native module, a thin layer over the
//! library API the command line calls (`experiment::run::run`, `experiment::gates::gates`,
//! `experiment::kernel::run`, `experiment::sweep`). It returns the records' bytes (JSON,
//! CSV); the pure-Python package `cramulator` turns them into dicts and pandas DataFrames.
//! Nothing here writes a file but `save_folder`, the same atomic folder writer as
//! `cramulator run`.
//!
//! Every call runs on a worker thread with the GIL released; the calling thread polls for
//! signals, so Ctrl-C sets the work's stop flag, waits for it to stop at its next layer,
//! block or sweep point, and raises `KeyboardInterrupt` (nothing half-done is returned).
//! Errors raise exceptions whose message is the command line's (`error: …`, without the
//! prefix); a panic raises `CramulatorError` instead of taking the interpreter down.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use cramulator::error::Error;
use cramulator::experiment::config::Config;
use cramulator::experiment::kernel::{ErrorRate, KernelRequest};
use cramulator::experiment::options::{self, Options};
use cramulator::experiment::run::Provenance;
use cramulator::experiment::sweep::{Plan, merge, parse_shard, run_points};
use cramulator::model::kernels::{GateSet, KernelKind};
use cramulator::model::limits::{Limits, MemoryLimit, Stop};
use cramulator::model::map::Mode;
use cramulator::records::{PointRecord, SCHEMA_VERSION, to_json};

create_exception!(
    _cramulator,
    CramulatorError,
    PyException,
    "Any error of cramulator; the message is the command line's."
);
create_exception!(
    _cramulator,
    UsageError,
    CramulatorError,
    "A refused input: a configuration key, file, preset, model or argument. The message \
     names it, the value and what is allowed."
);
create_exception!(
    _cramulator,
    MemoryLimitError,
    CramulatorError,
    "The work would hold more memory than the limit in force (`max_memory`)."
);
create_exception!(
    _cramulator,
    OutputError,
    CramulatorError,
    "Writing or reading an output failed."
);

/// How often the calling thread looks for signals while the work runs.
const POLL: Duration = Duration::from_millis(50);

/// The message `cramulator` prints after `error: ` for `e`.
fn message(e: Error) -> String {
    format!("{:#}", anyhow::Error::from(e))
}

/// The Python exception for `e`, with the command line's message.
fn to_py(e: Error) -> PyErr {
    let raise: fn(String) -> PyErr = match &e {
        Error::Interrupted => PyKeyboardInterrupt::new_err,
        Error::Memory(_) => MemoryLimitError::new_err,
        Error::Io(_) => OutputError::new_err,
        _ => UsageError::new_err,
    };
    raise(message(e))
}

/// The memory limit: `max_memory` (a size such as `4G`), else the command line's default
/// (half of physical memory).
fn memory_limit(max_memory: Option<&str>) -> PyResult<MemoryLimit> {
    Ok(match max_memory {
        Some(s) => MemoryLimit {
            bytes: options::parse_size(s, "max_memory").map_err(UsageError::new_err)?,
            given: true,
        },
        None => MemoryLimit {
            bytes: options::default_memory_bytes(),
            given: false,
        },
    })
}

/// The text of a panic's payload.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// Stack of the worker thread: the command line's main thread's (config loading and ONNX
/// import recurse), not a spawned thread's 2 MiB default.
const WORKER_STACK_BYTES: usize = 8 << 20;

/// Runs `work` on a worker thread with the GIL released, its stop flag set by Ctrl-C: the
/// first waits for the work to stop at its next layer, block or point; a second returns at
/// once and leaves the worker to finish on its own (its result is dropped).
fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    max_memory: Option<&str>,
    work: impl FnOnce(Limits) -> Result<T, Error> + Send + 'static,
) -> PyResult<T> {
    let memory = memory_limit(max_memory)?;
    // One flag per call (a byte), alive as long as any work that holds it.
    let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let limits = Limits {
        stop: Stop::on(flag),
        memory,
    };
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("cramulator".to_owned())
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(work(limits));
        })
        .map_err(|e| CramulatorError::new_err(format!("cannot start a worker thread: {e}")))?;
    // Behind a lock, so that the detached closure may borrow it from another thread.
    let rx = Mutex::new(rx);
    let recv = || {
        rx.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv_timeout(POLL)
    };
    let mut interrupt: Option<PyErr> = None;
    loop {
        match py.detach(recv) {
            Ok(result) => {
                let _ = worker.join();
                return match interrupt {
                    Some(e) => Err(e),
                    None => result.map_err(to_py),
                };
            }
            Err(RecvTimeoutError::Disconnected) => {
                let why = match worker.join() {
                    Err(p) => panic_message(p.as_ref()),
                    Ok(()) => "the worker ended without a result".to_owned(),
                };
                return Err(CramulatorError::new_err(format!(
                    "internal error, please report it: {why}"
                )));
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    if interrupt.is_some() {
                        // A second Ctrl-C: do not wait any longer.
                        return Err(e);
                    }
                    flag.store(true, Ordering::SeqCst);
                    interrupt = Some(e);
                }
            }
        }
    }
}

/// The files of a results folder, name → bytes.
fn files_dict<'py>(py: Python<'py>, files: &[(&str, Vec<u8>)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, bytes) in files {
        d.set_item(*name, PyBytes::new(py, bytes))?;
    }
    Ok(d)
}

/// Runs a configuration, as `cramulator run [config] --set KEY=VALUE …` does: the bytes of
/// each file of its results folder (`resolved.toml`, `manifest.json`, `report.json`,
/// `layers.csv`) by name, and whether every image was bit-exact (the command line exits 1
/// when not).
#[pyfunction]
#[pyo3(signature = (config=None, sets=Vec::new(), threads=None, max_memory=None))]
fn run<'py>(
    py: Python<'py>,
    config: Option<PathBuf>,
    sets: Vec<String>,
    threads: Option<usize>,
    max_memory: Option<&str>,
) -> PyResult<(Bound<'py, PyDict>, bool)> {
    let record = interruptible(py, max_memory, move |limits| {
        let cfg = Config::load_with(config.as_deref(), &sets)?;
        let provenance = Provenance {
            config_file: config.as_ref().map(|p| p.display().to_string()),
            overrides: sets,
        };
        cramulator::experiment::run::run(&cfg, &provenance, &Options { threads, limits })
    })?;
    let files = record.files().map_err(to_py)?;
    Ok((files_dict(py, &files)?, record.ok))
}

/// Writes the results folder `<out>/<run_id>/` atomically from `files` (name → bytes), as
/// `cramulator run --out out` does; returns its path.
#[pyfunction]
fn save_folder(
    py: Python<'_>,
    out: PathBuf,
    run_id: &str,
    files: Vec<(String, Bound<'_, PyBytes>)>,
) -> PyResult<String> {
    let files: Vec<(&str, Vec<u8>)> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_bytes().to_vec()))
        .collect();
    // Whatever went wrong, it was writing the output.
    let dir = py
        .detach(|| cramulator::io::atomic::write_folder(&out, run_id, &files))
        .map_err(|e| OutputError::new_err(message(e)))?;
    Ok(dir.display().to_string())
}

/// The gate table of `device` on `array` (`cramulator gates --json`), as JSON.
#[pyfunction]
#[pyo3(signature = (device="stt-projected", array="cram-1k"))]
fn gates(device: &str, array: &str) -> PyResult<String> {
    let t = cramulator::experiment::gates::gates(device, array).map_err(to_py)?;
    Ok(to_json(&t))
}

/// One kernel run bit by bit in every lane (`cramulator kernel KIND --json`), as JSON.
#[pyfunction]
#[pyo3(signature = (
    kind, bits, *, bits_b=None, constant=None, gate_set="maj", device="stt-projected",
    array="cram-1k", lanes=4096, lanes_per_subarray=None, subarrays=None, seed=1,
    error_rate="0", mode="functional", data_energy=false, allow_ir_violation=false,
    endurance_budget=None, report=false, threads=None
))]
#[allow(clippy::too_many_arguments)]
fn kernel(
    py: Python<'_>,
    kind: &str,
    bits: u32,
    bits_b: Option<u32>,
    constant: Option<i64>,
    gate_set: &str,
    device: &str,
    array: &str,
    lanes: usize,
    lanes_per_subarray: Option<usize>,
    subarrays: Option<u32>,
    seed: u64,
    error_rate: &str,
    mode: &str,
    data_energy: bool,
    allow_ir_violation: bool,
    endurance_budget: Option<f64>,
    report: bool,
    threads: Option<usize>,
) -> PyResult<String> {
    let kind: KernelKind = kind.parse().map_err(to_py)?;
    let gate_set: GateSet = gate_set
        .parse()
        .map_err(|e| UsageError::new_err(format!("gate_set: {e}")))?;
    let mode = match mode {
        "functional" => Mode::Functional,
        "analytical" => Mode::Analytical,
        m => {
            return Err(UsageError::new_err(format!(
                "mode {m:?}: expected \"functional\" or \"analytical\""
            )));
        }
    };
    let request = KernelRequest {
        bits_b,
        constant,
        gate_set,
        device: device.to_owned(),
        array: array.to_owned(),
        lanes,
        lanes_per_subarray,
        subarrays,
        seed,
        error_rate: ErrorRate::parse(error_rate, "error_rate").map_err(to_py)?,
        mode,
        data_energy,
        allow_ir_violation,
        endurance_budget: endurance_budget
            .unwrap_or(cramulator::experiment::config::DEFAULT_ENDURANCE_BUDGET),
        full_report: report,
        ..KernelRequest::new(kind, bits)
    };
    let r = interruptible(py, None, move |limits| {
        cramulator::experiment::kernel::run(&request, &Options { threads, limits }, &mut |_| Ok(()))
    })?;
    Ok(to_json(&r))
}

/// A sweep file's points (all, or one shard `I/N`) run in memory and merged: the bytes of
/// `results.csv`, `summary.json` and the plan's `manifest.json`, as `cramulator sweep plan`,
/// `run` and `merge` would write them. Writes nothing.
#[pyfunction]
#[pyo3(signature = (file, shard=None, threads=None, max_memory=None))]
fn sweep<'py>(
    py: Python<'py>,
    file: PathBuf,
    shard: Option<String>,
    threads: Option<usize>,
    max_memory: Option<&str>,
) -> PyResult<(Bound<'py, PyBytes>, String, String)> {
    let (csv, summary, manifest) = interruptible(py, max_memory, move |limits| {
        let plan = Plan::from_file(&file, limits.stop)?;
        let m = &plan.manifest;
        let ids: Vec<u64> = match shard {
            None => (0..m.points).collect(),
            Some(s) => {
                let (i, n) = parse_shard(&s, "shard")?;
                (i..m.points).step_by(n as usize).collect()
            }
        };
        let records: Mutex<Vec<PointRecord>> = Mutex::new(Vec::with_capacity(ids.len()));
        let ran = run_points(&plan, &ids, &Options { threads, limits }, &|r| {
            records.lock().expect("no sink panics").push(r.clone());
        })?;
        if ran.interrupted {
            return Err(Error::Interrupted);
        }
        let records = records.into_inner().expect("no sink panics");
        let merged = merge(m, records)?;
        Ok((merged.csv, to_json(&merged.summary), to_json(m)))
    })?;
    Ok((PyBytes::new(py, &csv), summary, manifest))
}

/// The schema version of every record this build writes.
#[pyfunction]
fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// The native module.
#[pymodule]
fn _cramulator(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CramulatorError", py.get_type::<CramulatorError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("MemoryLimitError", py.get_type::<MemoryLimitError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(save_folder, m)?)?;
    m.add_function(wrap_pyfunction!(gates, m)?)?;
    m.add_function(wrap_pyfunction!(kernel, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(schema_version, m)?)?;
    Ok(())
}
