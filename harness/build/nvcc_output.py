"""Reading nvcc's output: ptxas -v statistics per kernel and the first errors with file:line."""

from __future__ import annotations

import re
import shutil
import subprocess

from pydantic import BaseModel


class KernelStats(BaseModel):
    """ptxas -v figures for one entry function on one architecture."""

    name: str
    """Demangled where c++filt is available."""
    mangled: str
    arch: str
    registers: int | None = None
    smem_bytes: int = 0
    stack_bytes: int = 0
    spill_stores: int = 0
    spill_loads: int = 0


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")


_PROPS = re.compile(r"Function properties for (\S+)")


_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


_USED = re.compile(r"Used (\d+) registers")


_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas(text: str) -> list[KernelStats]:
    """Entry functions only: device functions also get 'Function properties' blocks,
    which must not be credited to the kernel compiled before them."""
    stats: list[KernelStats] = []
    current: KernelStats | None = None
    props_for: str | None = None
    for line in text.splitlines():
        if m := _ENTRY.search(line):
            current = KernelStats(name=m.group(1), mangled=m.group(1), arch=m.group(2))
            stats.append(current)
            props_for = None
            continue
        if m := _PROPS.search(line):
            props_for = m.group(1)
            continue
        if current is None:
            continue
        if (m := _FRAME.search(line)) and props_for == current.mangled:
            current.stack_bytes, current.spill_stores, current.spill_loads = map(int, m.groups())
        elif (m := _USED.search(line)) and current.registers is None:
            current.registers = int(m.group(1))
            if s := _SMEM.search(line):
                current.smem_bytes = int(s.group(1))
    _demangle(stats)
    return stats


def _demangle(stats: list[KernelStats]) -> None:
    cxxfilt = shutil.which("c++filt")
    if not stats or not cxxfilt:
        return
    try:
        out = subprocess.run([cxxfilt], input="\n".join(s.mangled for s in stats), capture_output=True,
                             text=True, timeout=30).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return
    if len(out) == len(stats):
        for s, name in zip(stats, out):
            s.name = name.strip() or s.mangled


class CompileError(BaseModel):
    file: str
    line: int | None
    message: str

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


_NVCC_ERR = re.compile(r"^(?P<file>[^\s:()][^:()]*)\((?P<line>\d+)\): (?:catastrophic )?error: (?P<msg>.*)$")


_GCC_ERR = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: (?P<msg>.*)$")


_TOOL_ERR = re.compile(r"^(?P<file>nvcc|ptxas|nvlink|cc1plus|c\+\+|g\+\+)\s*(?:fatal|error)\s*:\s*(?P<msg>.*)$",
                       re.IGNORECASE)


_PTXAS_ERR = re.compile(r"^ptxas (?:fatal|error)\s*: (?P<msg>.*)$")


def first_errors(text: str, *, limit: int = 5) -> list[CompileError]:
    """The first errors with file:line, in order, paths relative to the build workspace."""
    errors: list[CompileError] = []
    for raw in text.splitlines():
        line = raw.strip()
        m = _NVCC_ERR.match(line) or _GCC_ERR.match(line)
        if m:
            errors.append(CompileError(file=_unprefix(m.group("file")), line=int(m.group("line")),
                                       message=m.group("msg").strip()))
        elif m := (_PTXAS_ERR.match(line) or _TOOL_ERR.match(line)):
            errors.append(CompileError(file=m.groupdict().get("file") or "ptxas", line=None,
                                       message=m.group("msg").strip()))
        if len(errors) >= limit:
            break
    return errors


def _unprefix(path: str) -> str:
    """Sources are compiled as src/<rel>: show <rel>, the path in the project."""
    path = path.strip()
    return path[4:] if path.startswith("src/") else path


__all__ = ['CompileError', 'KernelStats', 'first_errors', 'parse_ptxas']
