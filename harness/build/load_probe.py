"""Load a linked CUDA extension without a GPU and report what it registered.

A CUDA build of torch imports and loads extensions on a machine with no GPU, so a
compile-only host (public CI) can still catch what only the loader sees: undefined
symbols (a launcher declared in the binding but never defined), a package whose
__init__ fails, ops registered for CPU only or not at all, the case's API missing.
It cannot say whether a kernel computes the right thing: that is the run check's job.

The child's report comes from the same process as the candidate's code, so it is
evidence for a compile-level finding, not a proof; nothing here is scored as a run.

The report is cached by content (issue 20): the package's files (the .so first of all), the
loader program, the interpreter and its torch, the namespace, the API and the sandbox settings.
A warm re-check of an unchanged build starts no child (with a CUDA torch, the import alone
takes seconds).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
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
    cached: bool = False
    """The child's report came from the probe cache (same content, same torch): no child ran."""


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


def _torch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return ""


def probe_key(package_dir: Path, namespace: str, api: str | None, *, sandbox: str,
              extra_ro: tuple[Path, ...]) -> str:
    """What the child's report depends on, hashed: every file of the package (the .so's bytes
    included), the loader program (programs_root() is named by the sandbox sources' digest),
    the interpreter and its torch, and the settings."""
    h = hashlib.sha256(json.dumps([1, namespace, api, sandbox, [str(p) for p in extra_ro], str(programs_root()),
                                   sys.executable, _torch_version()]).encode())
    for path in sorted(p for p in package_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(f"\0{path.relative_to(package_dir)}\0".encode())
        with open(path, "rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def _cache_file(key: str) -> Path:
    from harness.common.paths import cache_dir

    return cache_dir() / "load-probe" / f"{key}.json"


def probe_extension(package_dir: Path, namespace: str, *, api: str | None, workdir: Path,
                    sandbox: str = "auto", extra_ro: tuple[Path, ...] = (), timeout_s: float = 120) -> LoadReport:
    """Import `package_dir` (a folder holding __init__.py, _ops.py and the .so) in a
    sandboxed child of this interpreter and judge what it registered; a report cached for
    the same content is judged without a child."""
    cached = _cache_file(probe_key(package_dir, namespace, api, sandbox=sandbox, extra_ro=extra_ro))
    try:
        data = json.loads(cached.read_text())
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict):
        report = judge_load(data, namespace=namespace, api=api)
        return LoadReport(report.ok, report.reason, ops=report.ops, torch=report.torch, cached=True)
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "sandbox.programs.load_child", str(package_dir.parent), package_dir.name, namespace,
           api or "__no_api__"]
    programs = programs_root()
    ro = tuple(dict.fromkeys((programs, Path(sys.prefix), Path(sys.base_prefix), package_dir.parent, *extra_ro)))
    result = run_sandboxed(cmd, cwd=workdir, backend=sandbox, ro_paths=ro,
                           env_extra={"PYTHONPATH": str(programs), "CUDA_VISIBLE_DEVICES": ""},
                           limits=Limits(wall_s=timeout_s, cpu_s=int(timeout_s) + 30, memory_mb=8192))
    data = _report(result.stdout)
    if data is None:  # not cached: a timeout or a crashed loader may not happen again
        if result.timed_out:
            return LoadReport(False, f"loading timed out after {timeout_s:.0f} s")
        tail = [ln for ln in (result.stderr or result.stdout).splitlines() if ln.strip()][-1:] or ["no output"]
        return LoadReport(False, f"the loader exited {result.returncode} without a report: {tail[0][:300]}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(cached)  # atomic: a concurrent check never reads half a report
    return judge_load(data, namespace=namespace, api=api)


__all__ = ["LoadReport", "judge_load", "probe_extension"]
