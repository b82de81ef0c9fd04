"""Compile-only builds of a kernel-builder project's CUDA sources, the way the builder
would: flags from build.toml per capability, registration.h supplied by us, every
compile through the sandbox and the content-addressed cache.

One compile unit is one source file. Its cache entry holds the object, the full log
and `result.json` (ptxas statistics, first errors). Deterministic compile errors are
cached too (so a warm re-check of a broken project is instant); timeouts and
killed compilers are not (they may pass next time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from sandbox.builder_files import REGISTRATION_H
from sandbox.cache import BuildCache, content_key
from sandbox.exec import run_sandboxed
from sandbox.limits import Limits

log = logging.getLogger(__name__)

#: Bump when the way we build changes, so old cache entries are not reused.
SCHEME_VERSION = 1
#: Files copied into the build workspace (and hashed into the key): what a compile can read.
SOURCE_SUFFIXES = (".cu", ".cuh", ".h", ".hh", ".hpp", ".hxx", ".c", ".cc", ".cpp", ".cxx", ".inl", ".inc", ".tcc")
#: A torch-binding .cu needs ~3 GB of compiler memory (REFERENCE §5).
GB_PER_COMPILE = 3

# Flags kernel-builder passes for every CUDA kernel (a CMake Release build, C++17).
# torch's own extension flags define __CUDA_NO_HALF_OPERATORS__ and friends; the
# builder removes them, and we never add them, so half/bfloat operators work.
NVCC_BASE = ["-std=c++17", "-O3", "-DNDEBUG", "--expt-relaxed-constexpr", "-Xcompiler", "-fPIC"]
#: Per-kernel statistics: registers, shared memory, spills (parsed below).
NVCC_STATS = ["-Xptxas", "-v"]
CXX_BASE = ["-std=c++17", "-O3", "-DNDEBUG", "-fPIC"]
#: Compiling against the CPU torch wheel's CUDA headers (REFERENCE §5); and the
#: extension is a limited-API Python module as the builder makes it.
TORCH_DEFINES = ["-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE", "-DPy_LIMITED_API=0x03090000"]
_HALF_DEFINES = re.compile(r"^-D__CUDA_NO_(HALF|BFLOAT16)\w*__(=.*)?$")

H100_ARCHES = ("sm_90", "sm_90a")


@dataclass(frozen=True)
class Target:
    """One cuda-capabilities entry: "9.0" -> sm_90, "9.0a" -> sm_90a, "9.0+PTX" adds PTX."""

    capability: str
    arch: str
    """sm_90 / sm_90a"""
    ptx: bool = False

    @property
    def virtual(self) -> str:
        return self.arch.replace("sm_", "compute_")

    @property
    def gencode(self) -> list[str]:
        code = f"{self.arch},{self.virtual}" if self.ptx else self.arch
        return ["-gencode", f"arch={self.virtual},code={code}"]


_CAP = re.compile(r"^(\d{1,2})\.(\d)([af]?)(\+PTX)?$")


def parse_capability(cap: str) -> Target | None:
    """The builder's capability grammar; None for forms it does not understand ("sm_90", "90")."""
    m = _CAP.match(cap.strip())
    if not m:
        return None
    major, minor, suffix, ptx = m.groups()
    return Target(capability=cap, arch=f"sm_{major}{minor}{suffix}", ptx=bool(ptx))


def strip_half_defines(flags: list[str]) -> list[str]:
    """Drop `-D__CUDA_NO_HALF_OPERATORS__` and friends, as kernel-builder does."""
    return [f for f in flags if not _HALF_DEFINES.match(f)]


# ---------------------------------------------------------------- ptxas statistics

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


# ---------------------------------------------------------------- errors

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


# ---------------------------------------------------------------- units and results

Compiler = Literal["nvcc", "cxx"]


@dataclass
class CompileUnit:
    """One source to compile. `flags` exclude -c/-o and the source; include dirs inside
    the workspace are relative (src/, kg_include/), outside ones absolute."""

    rel: str
    """Source path relative to the project root."""
    compiler: Compiler
    flags: list[str]
    kind: Literal["kernel", "binding"]
    kernel: str
    """The [kernel.<name>] table, or "torch" for the binding."""
    arches: list[str] = field(default_factory=list)

    @property
    def object_name(self) -> str:
        return re.sub(r"[^0-9A-Za-z_.-]", "_", self.rel) + ".o"

    def command(self, tool: Path, src_prefix: str = "src") -> list[str]:
        return [str(tool), *self.flags, "-c", f"{src_prefix}/{self.rel}", "-o", self.object_name]


class UnitResult(BaseModel):
    rel: str
    kind: str
    kernel: str
    compiler: str
    ok: bool
    object_path: str | None = None
    log_path: str | None = None
    kernels: list[KernelStats] = Field(default_factory=list)
    errors: list[CompileError] = Field(default_factory=list)
    arches: list[str] = Field(default_factory=list)
    cache_hit: bool = False
    wall_s: float = 0.0
    """Compile wall time (for a cache hit: the time of the original compile)."""
    timed_out: bool = False
    returncode: int | None = None
    reason: str = ""
    command: list[str] = Field(default_factory=list)
    backend: str = ""


def project_sources(root: Path) -> dict[str, bytes]:
    """Every file a compile can include, by relative path (symlinks are not followed)."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.suffix not in SOURCE_SUFFIXES:
            continue
        rel = path.relative_to(root)
        if any(part.startswith(".") or part in ("build", "__pycache__") for part in rel.parts[:-1]):
            continue
        out[rel.as_posix()] = path.read_bytes()
    return out


def _populate(workspace: Path, files: dict[str, bytes]) -> None:
    src = workspace / "src"
    for rel, data in files.items():
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    inc = workspace / "kg_include"
    inc.mkdir(parents=True, exist_ok=True)
    (inc / "registration.h").write_text(REGISTRATION_H)


def _deterministic_failure(returncode: int | None, text: str) -> bool:
    """A compile error worth caching: a clean non-zero exit with a located error,
    not a compiler killed by a signal or by memory pressure."""
    if returncode is None or returncode <= 0:
        return False
    if re.search(r"died due to signal|Killed|out of memory|std::bad_alloc|virtual memory exhausted", text):
        return False
    return bool(first_errors(text, limit=1))


_GLOBAL_SLOTS: threading.BoundedSemaphore | None = None
_SLOTS_LOCK = threading.Lock()


def default_parallel() -> int:
    """Compiles at once: one per 3 GB of available memory, at most one per core.
    KERNELGRADE_COMPILE_JOBS overrides (e.g. 1 on a machine shared with other work)."""
    override = os.environ.get("KERNELGRADE_COMPILE_JOBS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    avail_gb = 0.0
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail_gb = int(line.split()[1]) / (1024 * 1024)
    except OSError:
        avail_gb = GB_PER_COMPILE
    return max(1, min(os.cpu_count() or 1, int(avail_gb // GB_PER_COMPILE)))


def _slots() -> threading.BoundedSemaphore:
    """One process-wide bound, so parallel trials in `eval` cannot stack compiles."""
    global _GLOBAL_SLOTS
    with _SLOTS_LOCK:
        if _GLOBAL_SLOTS is None:
            _GLOBAL_SLOTS = threading.BoundedSemaphore(default_parallel())
        return _GLOBAL_SLOTS


@dataclass
class BuildEnv:
    """Tools and versions shared by all units of one check."""

    nvcc: Path | None
    cxx: Path | None
    versions: dict[str, str]
    """Into every cache key: nvcc, cxx, torch, header pins."""
    ro_paths: tuple[Path, ...] = ()
    sandbox: str = "auto"
    timeout_s: float = 600.0
    memory_mb: int = 0
    """0: no address-space limit (cicc reserves large virtual ranges); the per-compile
    memory bound is the slot count above."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Host path -> label in cache keys (the venv's torch include dir -> "<torch>"), so a
    fresh clone elsewhere with the same toolchain still hits the cache."""


def unit_key(unit: CompileUnit, files: dict[str, bytes], env: BuildEnv) -> str:
    flags = list(unit.flags)
    for path, label in sorted(env.aliases.items(), key=lambda kv: -len(kv[0])):
        flags = [f.replace(path, label) for f in flags]
    return content_key(files=files, scheme=SCHEME_VERSION, rel=unit.rel, compiler=unit.compiler,
                       flags=flags, versions=env.versions,
                       registration=hashlib.sha256(REGISTRATION_H.encode()).hexdigest())


def compile_unit(unit: CompileUnit, files: dict[str, bytes], env: BuildEnv, *,
                 cache: BuildCache | None = None) -> UnitResult:
    """Compile one unit through the cache; never raises for the candidate's faults."""
    cache = cache or BuildCache("compile")
    tool = env.nvcc if unit.compiler == "nvcc" else env.cxx
    base = UnitResult(rel=unit.rel, kind=unit.kind, kernel=unit.kernel, compiler=unit.compiler,
                      ok=False, arches=unit.arches)
    if tool is None:
        base.reason = f"no {unit.compiler} found"
        return base
    key = unit_key(unit, files, env)
    outcome: dict[str, UnitResult] = {}

    def build(tmp: Path) -> bool:
        _populate(tmp, files)
        cmd = unit.command(tool)
        limits = Limits(wall_s=env.timeout_s, cpu_s=int(env.timeout_s * 2) + 60,
                        memory_mb=env.memory_mb, file_mb=2048)
        with _slots():
            res = run_sandboxed(cmd, cwd=tmp, limits=limits, backend=env.sandbox, ro_paths=env.ro_paths)
        text = (res.stdout + ("\n" if res.stdout and res.stderr else "") + res.stderr)
        (tmp / "compile.log").write_text("$ " + " ".join(cmd) + "\n" + text
                                         + "".join(f"\n[sandbox] {n}" for n in res.notes))
        shutil.rmtree(tmp / "src", ignore_errors=True)  # the cache keeps outputs, not inputs
        shutil.rmtree(tmp / "kg_include", ignore_errors=True)
        ok = res.ok and (tmp / unit.object_name).is_file()
        result = base.model_copy(update=dict(
            ok=ok, object_path=unit.object_name if ok else None, log_path="compile.log",
            kernels=parse_ptxas(text) if unit.compiler == "nvcc" else [],
            errors=[] if ok else first_errors(text), wall_s=round(res.wall_s, 3),
            timed_out=res.timed_out, returncode=res.returncode, command=cmd, backend=res.backend))
        if res.timed_out:
            result.reason = f"timed out after {env.timeout_s:g} s"
        elif not ok:
            result.reason = (result.errors[0].message if result.errors
                             else f"{unit.compiler} exited {res.returncode}" + (
                                 f" ({res.signal_name})" if res.signal_name else ""))
        (tmp / "result.json").write_text(result.model_dump_json(indent=1))
        outcome["result"] = result
        return ok or _deterministic_failure(res.returncode, text)

    entry, hit = cache.get_or_build(key, build)
    if hit:
        result = UnitResult.model_validate_json((entry / "result.json").read_text())
        result.cache_hit = True
    else:
        result = outcome["result"]
        if cache.lookup(key) is None and entry is not None and entry.name.startswith("."):
            # Not cached (timeout, killed compiler): keep only its log, drop the temp build.
            failed = cache.root / "failed"
            failed.mkdir(exist_ok=True)
            if (entry / "compile.log").is_file():
                shutil.copyfile(entry / "compile.log", failed / f"{key}.log")
            shutil.rmtree(entry, ignore_errors=True)
            entry, result.log_path = failed, f"{key}.log"
    # Paths become absolute into the cache entry (or the failed build's folder).
    if result.object_path:
        result.object_path = str(entry / result.object_path)
    if result.log_path:
        result.log_path = str(entry / result.log_path)
    return result


def compile_units(units: list[CompileUnit], files: dict[str, bytes], env: BuildEnv, *,
                  cache: BuildCache | None = None, parallel: int | None = None) -> list[UnitResult]:
    """Compile all units, at most `parallel` at once (default: by memory); order kept."""
    cache = cache or BuildCache("compile")
    workers = max(1, min(parallel or default_parallel(), len(units) or 1))
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kg-compile") as pool:
        results = list(pool.map(lambda u: compile_unit(u, files, env, cache=cache), units))
    log.info("compiled %d units in %.1f s (%d workers)", len(units), time.monotonic() - start, workers)
    return results


def dump_results(results: list[UnitResult], path: Path) -> None:
    path.write_text(json.dumps([r.model_dump() for r in results], indent=1))


__all__ = [
    "BuildEnv", "CompileError", "CompileUnit", "H100_ARCHES", "KernelStats", "Target", "UnitResult",
    "compile_unit", "compile_units", "default_parallel", "first_errors", "parse_capability",
    "parse_ptxas", "project_sources", "strip_half_defines",
]


# ---------------------------------------------------------------- planning from build.toml

#: Options a project's cuda-flags may not carry: they would redirect outputs or
#: load code from outside the project into the compiler.
_DENIED_FLAGS = re.compile(r"^(-o|--output-file|-ccbin|--compiler-bindir|-odir|--output-directory|--keep-dir"
                           r"|--run|-run|-fplugin.*|-B.*|--dryrun|-E|-M\w*|--linker-options|-Xlinker|-L.*)$")


@dataclass
class Plan:
    """What compile will build, plus notes and errors found while deriving it."""

    units: list[CompileUnit] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): not compiled, defaulted, ..."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): the project cannot be built as asked."""
    needs_torch: bool = False
    unsupplied: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): kernels left out because a dependency (CUTLASS, ...) is not available."""


@dataclass
class Includes:
    """Include folders outside the workspace, found by the toolchain."""

    torch: list[Path] = field(default_factory=list)
    python: Path | None = None
    math_headers: Path | None = None
    cuda: list[Path] = field(default_factory=list)
    """The toolkit's include dir, for host-compiled sources that include CUDA headers."""
    cxx_std: str = "c++17"
    """The language standard the torch headers require (torch 2.14 needs C++20)."""

    def external(self, *, host: bool) -> list[str]:
        dirs = [*self.torch, *([self.python] if self.python else []),
                *([self.math_headers] if self.math_headers else []), *(self.cuda if host else [])]
        return [f"-I{d}" for d in dirs]


def kernel_targets(caps: list[str] | None, requested: list[str] | None, key: str,
                   plan: Plan) -> list[Target]:
    """The H100 targets to compile for one kernel. Other valid capabilities are notes
    (only sm_90 / sm_90a are compiled in a check); requested ones missing are errors."""
    if caps is None:
        plan.notes.append((key, "no cuda-capabilities: the builder's default list; compiled its H100 target 9.0"))
        caps = ["9.0"]
    targets: list[Target] = []
    for cap in caps:
        target = parse_capability(str(cap))
        if target is None:
            plan.errors.append((key, f"{cap!r} is not a capability the builder understands (use \"9.0\" or \"9.0a\")"))
        elif target.arch in H100_ARCHES:
            targets.append(target)
        else:
            plan.notes.append((key, f"{cap} not compiled (checks compile H100 targets only)"))
    for want in requested or []:
        want_arch = parse_capability(want)
        arches = {t.arch for t in targets}
        if want_arch is None:
            continue
        ok = want_arch.arch in arches if want_arch.arch.endswith("a") else bool(arches & set(H100_ARCHES))
        if not ok:
            plan.errors.append((key, f"the case requires {want} but the kernel lists {list(caps)}"))
    if not targets and not any(k == key for k, _ in plan.errors):
        plan.errors.append((key, f"no H100 target (9.0 or 9.0a) in {list(caps)}"))
    return targets


def _user_flags(flags: list[str], key: str, plan: Plan) -> list[str]:
    kept: list[str] = []
    for flag in strip_half_defines(flags):
        if _DENIED_FLAGS.match(flag) or flag.startswith("-o"):
            plan.errors.append((key, f"flag {flag!r} is not allowed in a checked build"))
        else:
            kept.append(flag)
    return kept


def _with_std(base: list[str], std: str) -> list[str]:
    return [f"-std={std}" if f.startswith("-std=") else f for f in base]


def plan_cuda(project, *, ext_name: str, includes: Includes,
              requested: list[str] | None = None) -> Plan:
    """Units for every CUDA kernel source and the torch binding (with -DCUDA_KERNEL).

    `project` is a harness.project.ProjectInfo. Flags follow kernel-builder: gencode per
    capability, C++17 (C++20 where torch requires it), relaxed constexpr, FP8 enabled for sm_89+, the extension name,
    registration.h on the include path (kg_include/ in the workspace)."""
    plan = Plan()
    cuda_kernels = project.kernels_for("cuda")
    for other in project.kernels:
        if other.backend not in ("cuda", "cpu"):
            plan.notes.append((f"kernel.{other.name}", f"backend {other.backend!r} not checked here"))
    if not cuda_kernels:
        return plan
    plan.needs_torch = project.has_torch
    nvcc_base, cxx_base = _with_std(NVCC_BASE, includes.cxx_std), _with_std(CXX_BASE, includes.cxx_std)
    torch_defs = [*TORCH_DEFINES, f"-DTORCH_EXTENSION_NAME={ext_name}"] if project.has_torch else []
    all_targets: dict[str, Target] = {}
    for kernel in cuda_kernels:
        key = f"kernel.{kernel.name}"
        targets = kernel_targets(kernel.cuda_capabilities, requested, f"{key}.cuda-capabilities", plan)
        if not targets:
            continue
        all_targets.update({t.arch: t for t in targets})
        if any(d.startswith("cutlass") or d == "sycl_tla" for d in kernel.depends):
            # Not the project's fault: a skip that names the dependency (REFERENCE §3).
            plan.unsupplied.append((f"{key}.depends", "not compiled: needs a dependency this checker cannot "
                                    "supply: " + ", ".join(d for d in kernel.depends if d != "torch")))
            continue
        user = _user_flags(kernel.cuda_flags, f"{key}.cuda-flags", plan)
        incs = [f"-Isrc/{inc}" for inc in kernel.include]
        gencode = [f for t in targets for f in t.gencode]
        fp8 = ["-DENABLE_FP8"] if any(int(re.sub(r"\D", "", t.arch)) >= 89 for t in targets) else []
        for src in kernel.src:
            if not src.endswith(".cu"):
                continue  # headers are included, .cpp in a CUDA kernel is compiled by the host compiler below
            flags = [*nvcc_base, *gencode, *fp8, *torch_defs, "-Isrc", *incs, "-Ikg_include",
                     *includes.external(host=False), *user, *NVCC_STATS]
            plan.units.append(CompileUnit(rel=src, compiler="nvcc", flags=flags, kind="kernel",
                                          kernel=kernel.name, arches=[t.arch for t in targets]))
        for src in kernel.src:
            if Path(src).suffix in (".cpp", ".cc", ".cxx"):
                flags = [*cxx_base, *torch_defs, "-Isrc", *incs, "-Ikg_include", *includes.external(host=True),
                         *strip_half_defines(kernel.cxx_flags)]
                plan.units.append(CompileUnit(rel=src, compiler="cxx", flags=flags, kind="kernel",
                                              kernel=kernel.name))
    if project.has_torch and all_targets:
        for src in project.torch_src:
            suffix = Path(src).suffix
            if suffix == ".cu":
                gencode = [f for t in all_targets.values() for f in t.gencode]
                flags = [*nvcc_base, *gencode, *torch_defs, "-DCUDA_KERNEL", "-Isrc", "-Ikg_include",
                         *includes.external(host=False), *NVCC_STATS]
                plan.units.append(CompileUnit(rel=src, compiler="nvcc", flags=flags, kind="binding",
                                              kernel="torch", arches=list(all_targets)))
            elif suffix in (".cpp", ".cc", ".cxx"):
                flags = [*cxx_base, *torch_defs, "-DCUDA_KERNEL", "-Isrc", "-Ikg_include",
                         *includes.external(host=True)]
                plan.units.append(CompileUnit(rel=src, compiler="cxx", flags=flags, kind="binding",
                                              kernel="torch"))
    return plan
