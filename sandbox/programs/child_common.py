"""Code shared by the candidate child (runner_child) and the reference child
(reference_child): the spec they receive, seeded input generation, the timing loop,
and the JSON-lines pipe back to the parent. One code path for every device; the
device strategy (sandbox/devices/) supplies timer, flush and sync.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from types import ModuleType
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, Field

# Bound before any candidate code can run in this process.
_os_write = os.write
_json_dumps = json.dumps


#: Poison written into every fresh floating buffer the candidate allocates: a NaN with a
#: payload, as (same-width integer dtype, bit pattern), so "never written" is recognisable.
POISON_BITS: dict[str, tuple[str, int]] = {
    "float32": ("int32", 0x7FA5A5A5),
    "float64": ("int64", 0x7FF5A5A5A5A5A5A5),
    "float16": ("int16", 0x7E5A),
    "bfloat16": ("int16", 0x7FA5),
}


def import_by_path(path: str | os.PathLike) -> ModuleType:
    """Import a Python file under a private name (the reference module, in either child).
    ImportError for a file that is not a module; the module's own errors propagate."""
    path = Path(path).resolve()
    name = f"kg_reference_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


class CallSpec(BaseModel):
    """One correctness call: fresh inputs from the reference generator with a secret seed."""

    id: int
    shape: list[int]
    dtype: str
    seed: int


class TimingSpec(BaseModel):
    shape: list[int]
    dtype: str
    seeds: list[int]
    """One per call, warm-up first: every call gets fresh inputs."""
    warmup: int
    save: list[int] = Field(default_factory=list)
    """Indices (into the timed calls, after warm-up) whose outputs are saved and checked."""


class ChildSpec(BaseModel):
    """What the parent writes to spec.json for a child."""

    mode: Literal["correctness", "timing", "outputs"]
    device: Literal["cpu", "cuda"]
    reference_path: str
    out_dir: str
    pipe_fd: int
    package_parent: str | None = None
    """Candidate only: the folder holding the built package."""
    package: str = ""
    api: str = ""
    ext_namespace: str = ""
    calls: list[CallSpec] = Field(default_factory=list)
    timing: TimingSpec | None = None
    trace: bool = True
    save_inputs: bool = True


def seed_for(base: int, index: int) -> int:
    """Per-call seed derived from the trial's secret base seed (replayable from the base)."""
    digest = hashlib.sha256(f"{base}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_inputs(ref: Any, shape: list[int], dtype: str, seed: int, device: str) -> tuple:
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    inputs = ref.make_inputs(tuple(shape), dtype, gen)
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def flatten_outputs(result: Any) -> list:
    """A tensor, or a tuple/list of them, as a flat list (anything else kept as is)."""
    if isinstance(result, (tuple, list)):
        return list(result)
    return [result]


class Pipe:
    """JSON lines to the parent over an inherited file descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, obj: dict) -> None:
        data = (_json_dumps(obj) + "\n").encode()
        view = memoryview(data)
        while view:
            written = _os_write(self.fd, view)
            view = view[written:]


def timing_loop(fn: Callable, args_for: Callable[[int], tuple], spec: TimingSpec, device: Any,
                keep: Callable[[int, Any], None]) -> list[int]:
    """Warm up, then time each call alone: flush caches, sync, time, sync.

    `args_for(i)` gives call i its own fresh inputs (pre-generated), so results cannot
    be carried from one timed call to the next. Returns nanoseconds per timed call.
    """
    flush = device.make_flush()
    timer = device.timer()
    for i in range(spec.warmup):
        fn(*args_for(i))
    device.sync()
    times: list[int] = []
    for j in range(len(spec.seeds) - spec.warmup):
        i = spec.warmup + j
        args = args_for(i)
        flush(i)
        device.sync()
        timer.start()
        out = fn(*args)
        times.append(timer.stop())
        keep(j, out)
    device.sync()
    return times


def tensor_files(out_dir: str, name: str) -> Path:
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


__all__ = ["POISON_BITS", "CallSpec", "ChildSpec", "Pipe", "TimingSpec", "flatten_outputs", "make_inputs",
           "seed_for", "timing_loop"]
