"""Type stubs of the native module (Rust, pyo3); use the `cramulator` package instead."""

from typing import Dict, List, Optional, Tuple

__version__: str

class CramulatorError(Exception):
    """Any error of cramulator; the message is the command line's."""

class UsageError(CramulatorError):
    """A refused input: the message names the key, file or argument, the value and what is
    allowed."""

class MemoryLimitError(CramulatorError):
    """The work would hold more memory than the limit in force."""

class OutputError(CramulatorError):
    """Writing or reading an output failed."""

def run(
    config: Optional[str] = None,
    sets: List[str] = ...,
    threads: Optional[int] = None,
    max_memory: Optional[str] = None,
) -> Tuple[Dict[str, bytes], bool]: ...
def save_folder(out: str, run_id: str, files: List[Tuple[str, bytes]]) -> str: ...
def gates(device: str = "stt-projected", array: str = "cram-1k") -> str: ...
def kernel(
    kind: str,
    bits: int,
    *,
    bits_b: Optional[int] = None,
    constant: Optional[int] = None,
    gate_set: str = "maj",
    device: str = "stt-projected",
    array: str = "cram-1k",
    lanes: int = 4096,
    lanes_per_subarray: Optional[int] = None,
    subarrays: Optional[int] = None,
    seed: int = 1,
    error_rate: str = "0",
    mode: str = "functional",
    data_energy: bool = False,
    allow_ir_violation: bool = False,
    endurance_budget: Optional[float] = None,
    report: bool = False,
    threads: Optional[int] = None,
) -> str: ...
def sweep(
    file: str,
    shard: Optional[str] = None,
    threads: Optional[int] = None,
    max_memory: Optional[str] = None,
) -> Tuple[bytes, str, str]: ...
def schema_version() -> int: ...
