"""What the candidate's built library can reach, read from outside: its dynamic imports.

A trace taken inside the candidate's process can be switched off from inside it; what the
`.so` imports is fixed when it is linked, and the parent reads it from the file (`nm -D`,
else `readelf`), never from the process. A kernel that does its own work has no use for:

  * PyTorch's dispatcher and the switches of its hooks: c10::Dispatcher look-ups (an op found
    by a name built at run time), turning RecordFunction (the profiler's hooks) off or
    removing its callbacks, CUPTI and the profiler start/stop calls on CUDA: `hidden_torch`,
    "calls PyTorch from inside its own op";
  * starting processes, fault handlers and memory protection, loading libraries at run time,
    reading other processes, raw system-call instructions: `library`.
Warnings only: dlsym (torch's stable-ABI headers use it), PyTorch's compute entry points
(at::_ops::<op>::call, at::native::<op>, at::cpu::<op>, ...; one library may serve several
APIs or hold a fallback that never runs, so the runtime trace decides), side streams and
managed memory (the stream rule decides).
Not flagged, because ordinary builds import them too: the Python C API (pybind11 modules),
dispatch-key guards (inline in torch's headers), RecordFunction itself (RECORD_FUNCTION).

An import is evidence the candidate cannot hide, but not every route shows as one: code
that finds a function by address (no import) is left to the other rules (docs/validation.md).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.execute.judge import classify_ops

#: (kind, what it means, name prefixes or exact names) for the C and C++ imports a kernel never needs.
RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("hidden_torch", "dispatcher look-ups", ("c10::Dispatcher::", "c10::OperatorHandle::", "c10::impl::OperatorEntry::")),
    ("hidden_torch", "switches for the profiler's hooks", (
        "at::enableRecordFunction", "at::clearCallbacks", "at::removeCallback", "at::addThreadLocalCallback",
        "at::addGlobalCallback", "at::clearThreadLocalCallbacks", "at::clearGlobalCallbacks", "at::disableCallback",
        "at::reenableCallback", "torch::profiler::", "torch::autograd::profiler::", "cupti", "=cuProfilerStop",
        "=cuProfilerStart", "=cudaProfilerStop", "=cudaProfilerStart")),
    ("library", "process creation", (
        "=fork", "=vfork", "=clone", "=clone3", "=__clone", "=syscall", "=setsid", "=setpgid", "=daemon",
        "=posix_spawn", "=posix_spawnp", "=execv", "=execve", "=execvp", "=execvpe", "=execl", "=execle", "=execlp",
        "=fexecve", "=system", "=popen")),
    ("library", "fault handlers and memory protection", (
        "=sigaction", "=signal", "=sigset", "=bsd_signal", "=__sysv_signal", "=mprotect", "=pkey_mprotect",
        "=memfd_create", "=userfaultfd", "=mremap")),
    ("library", "libraries loaded at run time, other processes", (
        "=dlopen", "=dlmopen", "=ptrace", "=process_vm_readv", "=process_vm_writev", "=prctl", "=perf_event_open")),
]
#: Imports worth a warning only (the runtime stream rule decides).
WARN_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("streams of its own", ("cudaStreamCreate", "cuStreamCreate")),
    # torch's stable-ABI headers look optional functions up with dlsym, so this is no error.
    ("functions found by name at run time", ("=dlsym", "=dlvsym")),
    ("managed memory", ("cudaMallocManaged", "cuMemAllocManaged")),
]
#: Namespaces whose functions named after an aten op compute that op outside the dispatcher.
OP_NAMESPACES = ("at::_ops::", "at::native::", "at::cpu::", "at::cuda::", "at::meta::",
                 "at::compositeexplicitautograd::", "at::compositeimplicitautograd::",
                 "at::compositeexplicitautogradnonfunctional::")
_RAW_SYSCALL = re.compile(r"\t(syscall|sysenter|int\s+\$0x80|svc\s+#?0x?0?)\b")


@dataclass
class LibraryReport:
    imports: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _tool(name: str) -> str | None:
    return shutil.which(name)


def undefined_symbols(path: Path) -> list[str] | None:
    """Demangled names the library imports (version suffixes dropped), or None without a tool."""
    if nm := _tool("nm"):
        out = subprocess.run([nm, "-D", "--undefined-only", "--demangle", str(path)], capture_output=True,
                             text=True, timeout=120)
        if out.returncode == 0:
            return sorted({ln.split(None, 1)[1].split("@")[0].strip() for ln in out.stdout.splitlines()
                           if ln.strip().startswith("U ") or " U " in ln})
    if readelf := _tool("readelf"):
        out = subprocess.run([readelf, "--dyn-syms", "-W", "--demangle", str(path)], capture_output=True,
                             text=True, timeout=120)
        if out.returncode == 0:
            names = set()
            for ln in out.stdout.splitlines():
                cols = ln.split(None, 7)
                if len(cols) == 8 and cols[6] == "UND" and cols[7].strip():
                    names.add(cols[7].split("@")[0].strip())
            return sorted(names)
    return None


def raw_syscalls(path: Path) -> int | None:
    """System-call instructions in the library's own code (a kernel's go through libc)."""
    objdump = _tool("objdump")
    if objdump is None:
        return None
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True,
                         timeout=300)
    return len(_RAW_SYSCALL.findall(out.stdout)) if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def aten_names() -> frozenset[str]:
    """Base names of every aten op this torch knows (to tell at::cuda::add from at::cuda::getCurrentCUDAStream)."""
    import torch

    return frozenset(n.split("::", 1)[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith("aten::"))


def _matches(symbol: str, patterns: tuple[str, ...]) -> bool:
    bare = symbol.split("(")[0]
    for p in patterns:
        if p.startswith("="):
            if bare == p[1:]:
                return True
        elif symbol.startswith(p) or bare.startswith(p):
            return True
    return False


def op_calls(symbols: list[str]) -> list[str]:
    """aten::<op> for every import that computes an aten op outside or through the dispatcher."""
    names = aten_names()
    found = set()
    for sym in symbols:
        bare = sym.split("(")[0]
        for ns in OP_NAMESPACES:
            if bare.startswith(ns):
                op = bare[len(ns):].split("::")[0]
                base = re.sub(r"_(Tensor|Scalar|out|dim|int|self|other|input)(_\w+)?$", "", op)
                if op in names or base in names:
                    found.add(f"aten::{base if base in names else op}")
    return sorted(found)


def _short(names: list[str], keep: int = 4) -> str:
    cut = [n.split("(")[0] for n in names[:keep]]
    return ", ".join(cut) + (f" and {len(names) - keep} more" if len(names) > keep else "")


def read_library(paths: list[Path], *, ext_namespace: str, replaced: list[str]) -> LibraryReport:
    """The findings for the candidate's built libraries (usually one .so)."""
    report = LibraryReport()
    for path in paths:
        symbols = undefined_symbols(path)
        if symbols is None:
            report.notes.append(f"{path.name}: imports not read (no nm or readelf here)")
            continue
        report.imports += symbols
        for kind, what, patterns in RULES:
            hits = [s for s in symbols if _matches(s, patterns)]
            if not hits:
                continue
            if kind == "hidden_torch":
                msg = (f"calls PyTorch from inside its own op: {path.name} imports {what} ({_short(hits)}), which "
                       f"a kernel doing its own work never needs")
            else:
                msg = f"{path.name} imports {what} ({_short(hits)}), which a kernel never needs"
            report.problems.append((kind, msg))
        # One library may serve several functions, and a fallback path may never run: which
        # PyTorch ops a call computes with is the runtime trace's to say; here it is a warning.
        torch_op, compute = classify_ops(op_calls(symbols), ext_namespace, replaced)
        if torch_op or compute:
            report.warnings.append(f"{path.name} imports PyTorch compute ops ({', '.join((torch_op + compute)[:6])})")
        for what, patterns in WARN_RULES:
            hits = [s for s in symbols if _matches(s, patterns)]
            if hits:
                report.warnings.append(f"{path.name} imports {what} ({_short(hits)})")
        n = raw_syscalls(path)
        if n:
            report.problems.append(("library", f"{path.name} holds {n} raw system-call instruction(s), which a "
                                               f"kernel never needs (system calls go through libc)"))
    return report


def libraries_of(package_dir: Path) -> list[Path]:
    """The built extension(s) of a package folder."""
    return sorted(p for p in Path(package_dir).rglob("*.so") if p.is_file())


__all__ = ["LibraryReport", "OP_NAMESPACES", "RULES", "aten_names", "libraries_of", "op_calls", "raw_syscalls",
           "read_library", "undefined_symbols"]
