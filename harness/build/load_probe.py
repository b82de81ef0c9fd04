"""Load a linked CUDA extension without a GPU and report what it registered.

A CUDA build of torch imports and loads extensions on a machine with no GPU, so a
compile-only host (public CI) can still catch what only the loader sees: undefined
symbols (a launcher declared in the binding but never defined), a package whose
__init__ fails, ops registered for CPU only or not at all, the case's API missing.
It cannot say whether a kernel computes the right thing: that is the run check's job.

The child's report comes from the same process as the candidate's code, so it is
evidence for a compile-level finding, not a proof; nothing here is scored as a run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.execute.programs import programs_root
from sandbox.limits import Limits
from sandbox.programs.load_child import MARKER
from sandbox.run import run_sandboxed


@dataclass(frozen=True)
class LoadReport:
    ok: bool
    reason: str
    """One line a person can read: what loaded and registered, or why not."""
    ops: dict[str, list[str]] = field(default_factory=dict)
    """op name -> dispatch keys with a kernel."""
    torch: str = ""


def _report(stdout: str) -> dict | None:
    lines = [ln for ln in stdout.splitlines() if ln.startswith(MARKER)]
    if not lines:
        return None
    try:
        return json.loads(lines[-1][len(MARKER):])
    except json.JSONDecodeError:
        return None


def demangle(symbol: str) -> str:
    """`_Z4reluRN2at6TensorERKS0_` -> `relu(at::Tensor&, at::Tensor const&)` when c++filt exists."""
    tool = shutil.which("c++filt")
    if tool is None:
        return symbol
    try:
        out = subprocess.run([tool, symbol], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return symbol
    return out or symbol


def judge_load(data: dict, *, namespace: str, api: str | None) -> LoadReport:
    """Pure but for naming a missing symbol: the child's report -> pass/fail with a reason."""
    torch_v = str(data.get("torch", ""))
    if "import_error" in data:
        err = str(data["import_error"])
        if m := re.search(r"undefined symbol: (\S+)", err):
            return LoadReport(False, f"the extension does not load: undefined symbol {demangle(m.group(1))} "
                              "(declared and called, but no source defines it)", torch=torch_v)
        return LoadReport(False, f"the package does not import: {err}", torch=torch_v)
    ops: dict[str, list[str]] = data.get("ops") or {}
    if not ops:
        return LoadReport(False, f"the extension registered no op under {namespace}::", torch=torch_v)
    short = {n.split("::", 1)[1]: keys for n, keys in ops.items()}
    no_cuda = sorted(n for n, keys in short.items() if "CUDA" not in keys)
    if len(no_cuda) == len(short):
        return LoadReport(False, "no op has a CUDA kernel registered (" +
                          ", ".join(f"{n}: {'/'.join(k) or 'no kernel'}" for n, k in sorted(short.items())) + ")",
                          ops=ops, torch=torch_v)
    if api is not None and not data.get("api_callable"):
        return LoadReport(False, f"the package has no callable {api}()", ops=ops, torch=torch_v)
    reason = f"loaded against torch {torch_v}: " + ", ".join(
        f"{n} [{'/'.join(k) or 'no kernel'}]" for n, k in sorted(short.items()))
    return LoadReport(True, reason, ops=ops, torch=torch_v)


def probe_extension(package_dir: Path, namespace: str, *, api: str | None, workdir: Path,
                    sandbox: str = "auto", extra_ro: tuple[Path, ...] = (), timeout_s: float = 120) -> LoadReport:
    """Import `package_dir` (a folder holding __init__.py, _ops.py and the .so) in a
    sandboxed child of this interpreter and judge what it registered."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "sandbox.programs.load_child", str(package_dir.parent), package_dir.name, namespace,
           api or "__no_api__"]
    programs = programs_root()
    ro = tuple(dict.fromkeys((programs, Path(sys.prefix), Path(sys.base_prefix), package_dir.parent, *extra_ro)))
    result = run_sandboxed(cmd, cwd=workdir, backend=sandbox, ro_paths=ro,
                           env_extra={"PYTHONPATH": str(programs), "CUDA_VISIBLE_DEVICES": ""},
                           limits=Limits(wall_s=timeout_s, cpu_s=int(timeout_s) + 30, memory_mb=8192))
    data = _report(result.stdout)
    if data is None:
        if result.timed_out:
            return LoadReport(False, f"loading timed out after {timeout_s:.0f} s")
        tail = [ln for ln in (result.stderr or result.stdout).splitlines() if ln.strip()][-1:] or ["no output"]
        return LoadReport(False, f"the loader exited {result.returncode} without a report: {tail[0][:300]}")
    return judge_load(data, namespace=namespace, api=api)


__all__ = ["LoadReport", "judge_load", "probe_extension"]
